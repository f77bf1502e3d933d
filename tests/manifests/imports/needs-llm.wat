;; A component importing Spin's LLM interface, which trib does not provide;
;; `trib up` must refuse it at startup (tests/integration/manifests.rs turns
;; this text into needs-llm.wasm in a temporary copy of the app).
(component
  (import "wasi:cli/environment@0.2.0" (instance))
  (import "fermyon:spin/llm@2.0.0" (instance
    (export "infer" (func (param "model" string) (param "prompt" string) (result string)))
  ))
)
