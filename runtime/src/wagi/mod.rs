//! Spin's Wagi executor (`executor = { type = "wagi" }`): the component is
//! a WASI command, run once per request as a CGI program. The request body
//! is its standard input, the request its arguments and environment
//! ([`cgi`]), and its standard output the response.
//!
//! Every request gets a fresh instance, as every Spin request does; the
//! request's admission, memory limit, timeout and client-gone handling are
//! the same as for `wasi:http` components.

pub mod cgi;

use std::sync::Arc;
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Full};
use wasmtime::{Engine, Store};
use wasmtime_wasi::p2::bindings::CommandPre;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi_http::handler::{ExpirationError, Request, Response};

use crate::host::{CommandIo, HostState, InstanceTemplate};
use crate::instances::LiveInstance;
use crate::outcome::RequestOutcome;

/// Bytes of standard output one run may write (its response, headers
/// included); a write past it fails in the guest, and the request is a 500.
pub const MAX_OUTPUT: usize = 64 << 20;

/// Runs one Wagi component's requests.
pub struct WagiHandler {
    engine: Engine,
    pre: CommandPre<HostState>,
    template: InstanceTemplate,
    argv: String,
    request_timeout: Option<Duration>,
}

impl WagiHandler {
    /// A handler running `pre` with `argv` (the trigger's, `${SCRIPT_NAME}`
    /// and `${ARGS}` unexpanded).
    pub fn new(
        engine: Engine,
        pre: CommandPre<HostState>,
        template: InstanceTemplate,
        argv: String,
        request_timeout: Option<Duration>,
    ) -> Self {
        Self {
            engine,
            pre,
            template,
            argv,
            request_timeout,
        }
    }

    /// Runs the program for `req` and turns its output into the response.
    /// Errors are the request's failure (a 500, or a 504/413 that
    /// `outcome` and the deadline explain).
    pub async fn handle(
        &self,
        outcome: Arc<RequestOutcome>,
        req: Request,
    ) -> Result<Response, wasmtime::Error> {
        let component = self.template.component.clone();
        let (parts, body) = req.into_parts();
        // CGI hands the whole body over before the program starts; a body
        // past the limit fails here (and `outcome` says why).
        let stdin = body
            .collect()
            .await
            .map_err(|e| wasmtime::format_err!("cannot read the request body: {e}"))?
            .to_bytes();
        let stdout = MemoryOutputPipe::new(MAX_OUTPUT);
        let io = CommandIo {
            env: cgi::environment(&parts, stdin.len()),
            args: cgi::args(&self.argv, parts.uri.path(), parts.uri.query()),
            stdin,
            stdout: stdout.clone(),
        };
        let started = Instant::now();
        let mut store = Store::new(&self.engine, self.template.command_state(io));
        store.limiter(|state| &mut state.limits);
        store.set_epoch_deadline(1);
        store.epoch_deadline_async_yield_and_update(1);
        store.data_mut().limits.outcomes.push(outcome);
        let _live = LiveInstance::enter();
        let run = async {
            let command = self.pre.instantiate_async(&mut store).await?;
            crate::metrics::instance_started(&component, started.elapsed());
            let _ended = InstanceEnded(&component);
            command.wasi_cli_run().call_run(&mut store).await
        };
        let limited = async {
            match self.request_timeout {
                Some(limit) => tokio::time::timeout(limit, run)
                    .await
                    .unwrap_or_else(|_| Err(wasmtime::Error::from(ExpirationError))),
                None => run.await,
            }
        };
        let ran = tokio::select! {
            ran = limited => ran,
            () = crate::instances::halted() => Err(wasmtime::format_err!("the server stopped")),
        };
        match ran.or_else(exit_status) {
            Ok(Ok(())) => {}
            // Spin still answers with what the program wrote.
            Ok(Err(())) => tracing::warn!(%component, "Wagi program exited with an error status"),
            Err(e) => {
                if stdout.contents().len() >= MAX_OUTPUT {
                    tracing::error!(%component, limit_bytes = MAX_OUTPUT, "Wagi program wrote more than the output limit");
                }
                return Err(e);
            }
        }
        drop(store);
        let resp = cgi::response(stdout.contents()).map_err(wasmtime::Error::from)?;
        Ok(resp.map(|body| {
            Full::new(body)
                .map_err(|never| match never {})
                .boxed_unsync()
        }))
    }
}

/// `exit(0)` is success; any other exit code stays an error.
fn exit_status(e: wasmtime::Error) -> Result<Result<(), ()>, wasmtime::Error> {
    match e.downcast_ref::<wasmtime_wasi::I32Exit>() {
        Some(wasmtime_wasi::I32Exit(0)) => Ok(Ok(())),
        _ => Err(e),
    }
}

/// Reports the instance gone when the run ends, however it ends.
struct InstanceEnded<'a>(&'a str);

impl Drop for InstanceEnded<'_> {
    fn drop(&mut self) {
        crate::metrics::instance_ended(self.0);
    }
}
