//! What every transform component shares.
//!
//! A transform's logic is a plain function over plain Rust types
//! ([`Event`], [`Settings`], [`Output`]), so it is unit-tested natively;
//! [`transformer!`] binds such a function to the `transform` export of the
//! `tributary:pipeline/transformer` world (`wit/pipeline/pipeline.wit`),
//! for `wasm32` only.

pub mod json;
pub mod settings;

pub use settings::Settings;

/// One event, as in the WIT `event` record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// The client's id for the message; transforms never change it.
    pub message_id: String,
    /// `track`, `identify`, `page`, `screen`, `group` or `alias`.
    pub kind: String,
    /// `event` for track, `name` for page and screen.
    pub name: Option<String>,
    /// `userId`.
    pub user_id: Option<String>,
    /// `anonymousId`.
    pub anonymous_id: Option<String>,
    /// Milliseconds since the Unix epoch, UTC.
    pub timestamp_ms: i64,
    /// `properties` as JSON text of an object.
    pub properties: String,
    /// `context` as JSON text of an object.
    pub context: String,
}

impl Event {
    /// A `track` event named `name` with the given JSON texts, for tests.
    pub fn track(name: &str, properties: &str, context: &str) -> Self {
        Self {
            message_id: format!("m-{name}"),
            kind: "track".into(),
            name: Some(name.into()),
            user_id: Some("u1".into()),
            anonymous_id: None,
            timestamp_ms: 0,
            properties: properties.into(),
            context: context.into(),
        }
    }
}

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

            struct Component;

            impl wit::Guest for Component {
                fn transform(
                    batch: ::std::vec::Vec<wit::Event>,
                    settings: ::std::vec::Vec<(
                        ::std::string::String,
                        ::std::string::String,
                    )>,
                ) -> ::std::result::Result<wit::BatchResult, ::std::string::String> {
                    let batch = batch
                        .into_iter()
                        .map(|e| $crate::Event {
                            message_id: e.message_id,
                            kind: e.kind,
                            name: e.name,
                            user_id: e.user_id,
                            anonymous_id: e.anonymous_id,
                            timestamp_ms: e.timestamp_ms,
                            properties: e.properties,
                            context: e.context,
                        })
                        .collect();
                    let out = $run(batch, &$crate::Settings::new(settings))?;
                    Ok(wit::BatchResult {
                        events: out
                            .events
                            .into_iter()
                            .map(|e| wit::Event {
                                message_id: e.message_id,
                                kind: e.kind,
                                name: e.name,
                                user_id: e.user_id,
                                anonymous_id: e.anonymous_id,
                                timestamp_ms: e.timestamp_ms,
                                properties: e.properties,
                                context: e.context,
                            })
                            .collect(),
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
