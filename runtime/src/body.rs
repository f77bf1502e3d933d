//! Body wrappers that enforce limits and keep request accounting alive
//! until the last byte.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};

use crate::outcome::{Delivery, RequestOutcome};

/// A request body that fails once more than `limit` bytes arrive, and
/// flags the request so the host can answer `413`.
pub struct LimitedBody<B> {
    inner: B,
    remaining: u64,
    limit: u64,
    outcome: Arc<RequestOutcome>,
}

impl<B> LimitedBody<B> {
    /// Wraps `inner` with a limit of `limit` bytes.
    pub fn new(inner: B, limit: u64, outcome: Arc<RequestOutcome>) -> Self {
        Self {
            inner,
            remaining: limit,
            limit,
            outcome,
        }
    }
}

impl<B> Body for LimitedBody<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<wasmtime_wasi_http::Error>,
{
    type Data = Bytes;
    type Error = wasmtime_wasi_http::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    let len = data.len() as u64;
                    if len > this.remaining {
                        this.outcome.body_too_large.store(true, Ordering::Release);
                        return Poll::Ready(Some(Err(
                            wasmtime_wasi_http::Error::HttpRequestBodySize(Some(this.limit)),
                        )));
                    }
                    this.remaining -= len;
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(e.into()))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// A response body that holds the request's capacity (pool slot, component
/// slot, in-flight mark) until it ends, then records the request's metrics.
pub struct TrackedBody<B> {
    inner: B,
    done: Option<Finish>,
}

/// What a [`TrackedBody`] releases and records when it ends.
pub struct Finish {
    /// Held until the response ends.
    pub guards: Box<dyn Send>,
    /// Marks the request abandoned if the body is dropped before its end
    /// (the client went away).
    pub delivery: Delivery,
    /// Where the request is recorded.
    pub record: crate::telemetry::RequestRecord,
    /// The status sent.
    pub status: u16,
}

impl Finish {
    fn record(self) {
        self.record.done(self.status);
    }
}

impl<B> TrackedBody<B> {
    /// Wraps `inner`; `finish` runs when the body ends or is dropped.
    pub fn new(inner: B, finish: Finish) -> Self {
        Self {
            inner,
            done: Some(finish),
        }
    }
}

impl<B> Drop for TrackedBody<B> {
    fn drop(&mut self) {
        if let Some(finish) = self.done.take() {
            finish.record();
        }
    }
}

impl<B> Body for TrackedBody<B>
where
    B: Body<Data = Bytes> + Unpin,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = &mut *self;
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        if matches!(polled, Poll::Ready(None) | Poll::Ready(Some(Err(_))))
            && let Some(mut finish) = this.done.take()
        {
            // Sent to the end, or failed by the guest: either way the
            // client was not the one to leave.
            finish.delivery.delivered();
            finish.record();
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
