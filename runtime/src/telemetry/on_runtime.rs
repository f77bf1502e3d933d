//! An OTLP exporter run on trib's tokio runtime from the SDK's batch
//! thread. The SDK's thread-based batch processor queues a finished span
//! without waking anything (it wakes its thread only when a batch is full
//! or the delay is up), where the async-runtime processor wakes its task
//! for every span: at one request at a time that was most of the cost of
//! tracing. Its thread has no tokio runtime, and our exporters (hyper,
//! tonic) need one, so each export is handed to the runtime and awaited.

use std::sync::Arc;
use std::time::Duration;

use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::{OTelSdkError, OTelSdkResult};
use opentelemetry_sdk::trace::{SpanData, SpanExporter};

/// `inner`, exporting on the runtime behind `handle`.
#[derive(Debug)]
pub struct OnRuntime<E> {
    inner: Arc<E>,
    handle: tokio::runtime::Handle,
}

impl<E> OnRuntime<E> {
    /// Wraps `inner`; `handle` must outlive the tracer provider (trib
    /// shuts the provider down before its runtime ends).
    pub fn new(inner: E, handle: tokio::runtime::Handle) -> Self {
        Self {
            inner: Arc::new(inner),
            handle,
        }
    }
}

impl<E: SpanExporter + 'static> SpanExporter for OnRuntime<E> {
    fn export(
        &self,
        batch: Vec<SpanData>,
    ) -> impl std::future::Future<Output = OTelSdkResult> + Send {
        let inner = self.inner.clone();
        let task = self.handle.spawn(async move { inner.export(batch).await });
        async move {
            task.await
                .unwrap_or_else(|e| Err(OTelSdkError::InternalFailure(e.to_string())))
        }
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.inner.force_flush()
    }

    fn set_resource(&mut self, resource: &Resource) {
        // Called while the provider is built, before the exporter is
        // shared.
        if let Some(inner) = Arc::get_mut(&mut self.inner) {
            inner.set_resource(resource);
        }
    }
}
