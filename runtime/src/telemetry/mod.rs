//! What trib tells an operator about each request beyond metrics: traces
//! exported over OTLP ([`export`], [`request`], [`host_calls`]) and its own
//! log lines ([`logs`]).

pub mod export;
pub mod host_calls;
pub mod logs;
pub mod on_runtime;
pub mod outbound;
pub mod record;
pub mod request;

pub use record::RequestRecord;
pub use request::{RequestInfo, RequestTrace, StoreTrace};
