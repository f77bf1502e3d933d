//! What every transform component shares.
//!
//! A transform's logic is a plain function over plain Rust types
//! ([`Event`], shared with the ingest service, [`Settings`], [`Output`]), so it is unit-tested natively;
//! [`transformer!`] binds such a function to the `transform` export of the
//! `tributary:pipeline/transformer` world (`wit/pipeline/pipeline.wit`),
//! for `wasm32` only.

pub mod json;
pub mod settings;

pub use settings::Settings;

/// One event, as in the WIT `event` record: the data app's one record type
/// (the ingest service and `trib transform run` use the same).
pub use event_model::Event;
/// The one field-by-field conversion between [`Event`] and a WIT binding's
/// record, which [`transformer!`] uses.
pub use event_model::wit_event_conversions;

/// An input event the transform refuses, as in the WIT `rejection` record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// Position of the event in the input batch.
    pub index: u32,
    /// Machine code, lower snake case.
    pub code: String,
    /// A sentence naming the field and the rule.
    pub reason: String,
}

impl Rejection {
    /// A rejection of the event at `index`.
    pub fn new(index: usize, code: &str, reason: impl Into<String>) -> Self {
        Self {
            index: u32::try_from(index).unwrap_or(u32::MAX),
            code: code.into(),
            reason: reason.into(),
        }
    }
}

/// What a transform returns, as in the WIT `batch-result` record.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Output {
    /// The events that go on, in input order.
    pub events: Vec<Event>,
    /// The refused events.
    pub rejections: Vec<Rejection>,
}

/// Code of a rejection for an event whose `properties` or `context` is not
/// a JSON object.
pub const INVALID_EVENT: &str = "invalid_event";

/// Binds `$run: fn(Vec<Event>, &Settings) -> Result<Output, String>` to the
/// `transform` export of the `transformer` world. Expands to nothing except
/// on `wasm32`, so the crate's logic builds and tests natively. The calling
/// crate must depend on `wit-bindgen` (for `wasm32`) and live at
/// `functions/transforms/<name>/`, since the WIT path is relative to it.
#[macro_export]
macro_rules! transformer {
    ($run:path) => {
        #[cfg(target_arch = "wasm32")]
        mod bindings {
            ::wit_bindgen::generate!({
                path: "../../../wit/pipeline",
                world: "tributary:pipeline/transformer",
            });

            use exports::tributary::pipeline::transform as wit;

            $crate::wit_event_conversions!(wit::Event);

            struct Component;

            impl wit::Guest for Component {
                fn transform(
                    batch: ::std::vec::Vec<wit::Event>,
                    settings: ::std::vec::Vec<(
                        ::std::string::String,
                        ::std::string::String,
                    )>,
                ) -> ::std::result::Result<wit::BatchResult, ::std::string::String> {
                    let batch = batch.into_iter().map($crate::Event::from).collect();
                    let out = $run(batch, &$crate::Settings::new(settings))?;
                    Ok(wit::BatchResult {
                        events: out.events.into_iter().map(wit::Event::from).collect(),
                        rejections: out
                            .rejections
                            .into_iter()
                            .map(|r| wit::Rejection {
                                index: r.index,
                                code: r.code,
                                reason: r.reason,
                            })
                            .collect(),
                    })
                }
            }

            export!(Component);
        }
    };
}
