//! The end of a request, told once to everything that keeps count: the
//! metrics, the request's span and the access log.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::logs;
use super::request::RequestTrace;
use crate::metrics::ComponentMetrics;

/// What is recorded when a request ends, whatever way it ends.
pub struct RequestRecord {
    /// The component's metric handles.
    pub metrics: ComponentMetrics,
    /// The request's span.
    pub trace: RequestTrace,
    /// The route pattern that matched (for the access log).
    pub route: Arc<str>,
    /// When routing started.
    pub started: Instant,
}

impl RequestRecord {
    /// Records the end of the request with `status`.
    pub fn done(&self, status: u16) {
        let elapsed: Duration = self.started.elapsed();
        self.metrics.request_done(status, elapsed);
        self.trace.finish(status);
        logs::request_done(
            self.metrics.component(),
            &self.route,
            status,
            elapsed,
            &self.trace,
        );
    }
}
