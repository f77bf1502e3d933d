//! WASI `0.2.0-rc-2023-10-18`, the release candidate spin-sdk 2.x guests
//! import, served by Wasmtime's WASI 0.2 implementation.
//!
//! The candidate's types differ from the 0.2 releases' (the `error` variant
//! of `wasi:http/types`, the request options record, `poll-list`,
//! constructors taking borrowed headers...), so renaming cannot serve it
//! the way [`crate::engine::wasi_rc`] serves the 0.3 candidate. Instead its
//! imports get bindings of their own here, whose resources ARE the host
//! types `wasmtime-wasi` and `wasmtime-wasi-http` use for 0.2 (the same
//! table entries, the same `ResourceType`s), and whose functions forward to
//! the 0.2 implementations, converting what changed. Two things follow:
//! a request that reaches the guest through the 0.2 path can be read with
//! the candidate's functions, and the guest's
//! `wasi:http/incoming-handler@0.2.0-rc-2023-10-18` export has the type of
//! the 0.2 one, so the loader renames it to `@0.2.0` and serves it as any
//! other WASIp2 guest (see [`crate::engine::wasi_rc::ALIASES`]).
//!
//! Provided: `wasi:io`, `wasi:http` (types, outgoing-handler),
//! `wasi:clocks` (monotonic and wall clock), `wasi:random` and `wasi:cli`,
//! as the host's `wasi-2023-10-18` world lists them. The candidate's
//! `clocks/timezone`, `filesystem` and `sockets` are not: no spin-sdk 2.x
//! API uses them, and a guest importing them is refused at startup.

use wasmtime::component::{HasData, Linker, Resource, ResourceTable};
use wasmtime_wasi::cli::{WasiCli, WasiCliCtxView, WasiCliView};
use wasmtime_wasi::clocks::{WasiClocks, WasiClocksCtxView, WasiClocksView};
use wasmtime_wasi::p2::{DynPollable, StreamResult};
use wasmtime_wasi::random::{WasiRandom, WasiRandomCtx, WasiRandomView};
use wasmtime_wasi::{WasiView, p2::bindings as p2};
use wasmtime_wasi_http::p2::bindings::http as p2_http;
use wasmtime_wasi_http::p2::{HeaderError, HttpError};
use wasmtime_wasi_http::{WasiHttp, WasiHttpCtxView, WasiHttpView};

mod bindings {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "tributary:host/wasi-2023-10-18",
        imports: {
            // The functions whose 0.2 counterparts are async.
            "wasi:io/poll.poll-list": async | trappable,
            "wasi:io/poll.poll-one": async | trappable,
            "wasi:io/streams.[method]input-stream.blocking-read": async | trappable,
            "wasi:io/streams.[method]input-stream.blocking-skip": async | trappable,
            "wasi:io/streams.[drop]input-stream": async | trappable,
            "wasi:io/streams.[method]output-stream.blocking-write-and-flush": async | trappable,
            "wasi:io/streams.[method]output-stream.blocking-flush": async | trappable,
            "wasi:io/streams.[method]output-stream.blocking-write-zeroes-and-flush": async | trappable,
            "wasi:io/streams.[method]output-stream.blocking-splice": async | trappable,
            "wasi:io/streams.[method]output-stream.forward": async | trappable,
            "wasi:io/streams.[drop]output-stream": async | trappable,
            default: trappable,
        },
        trappable_error_type: {
            "wasi:io/streams.stream-error" => wasmtime_wasi::p2::StreamError,
        },
        with: {
            // The 0.2 host types, so both versions share resources.
            "wasi:io/poll.pollable": wasmtime_wasi::p2::DynPollable,
            "wasi:io/streams.input-stream": wasmtime_wasi::p2::DynInputStream,
            "wasi:io/streams.output-stream": wasmtime_wasi::p2::DynOutputStream,
            "wasi:io/streams.error": wasmtime_wasi::p2::IoError,
            "wasi:http/types.fields": wasmtime_wasi_http::FieldMap,
            "wasi:http/types.incoming-request": wasmtime_wasi_http::p2::types::HostIncomingRequest,
            "wasi:http/types.outgoing-request": wasmtime_wasi_http::p2::types::HostOutgoingRequest,
            "wasi:http/types.response-outparam": wasmtime_wasi_http::p2::types::HostResponseOutparam,
            "wasi:http/types.incoming-response": wasmtime_wasi_http::p2::types::HostIncomingResponse,
            "wasi:http/types.outgoing-response": wasmtime_wasi_http::p2::types::HostOutgoingResponse,
            "wasi:http/types.future-incoming-response": wasmtime_wasi_http::p2::types::HostFutureIncomingResponse,
            "wasi:http/types.incoming-body": wasmtime_wasi_http::p2::body::HostIncomingBody,
            "wasi:http/types.outgoing-body": wasmtime_wasi_http::p2::body::HostOutgoingBody,
            "wasi:http/types.future-trailers": wasmtime_wasi_http::p2::body::HostFutureTrailers,
            "wasi:cli/terminal-input.terminal-input": wasmtime_wasi::p2::bindings::cli::terminal_input::TerminalInput,
            "wasi:cli/terminal-output.terminal-output": wasmtime_wasi::p2::bindings::cli::terminal_output::TerminalOutput,
        },
        require_store_data_send: true,
    });
}

use bindings::wasi::{cli, clocks, http, io, random};
use http::types::{Error as HttpErrorV, Method, Scheme};

/// `HasData` for the interfaces whose 0.2 implementations work on the
/// resource table alone (`wasi:io`).
struct HasTable;

impl HasData for HasTable {
    type Data<'a> = &'a mut ResourceTable;
}

/// Adds every candidate interface the host's `wasi-2023-10-18` world
/// lists to `linker`, so spin-sdk 2.x guests link.
pub fn add_to_linker<T>(linker: &mut Linker<T>) -> wasmtime::Result<()>
where
    T: WasiView + WasiHttpView + Send + 'static,
{
    let l = linker;
    io::poll::add_to_linker::<T, HasTable>(l, |t| WasiView::ctx(t).table)?;
    io::streams::add_to_linker::<T, HasTable>(l, |t| WasiView::ctx(t).table)?;
    http::types::add_to_linker::<T, WasiHttp>(l, T::http)?;
    http::outgoing_handler::add_to_linker::<T, WasiHttp>(l, T::http)?;
    clocks::monotonic_clock::add_to_linker::<T, WasiClocks>(l, T::clocks)?;
    clocks::wall_clock::add_to_linker::<T, WasiClocks>(l, T::clocks)?;
    random::random::add_to_linker::<T, WasiRandom>(l, T::random)?;
    random::insecure::add_to_linker::<T, WasiRandom>(l, T::random)?;
    random::insecure_seed::add_to_linker::<T, WasiRandom>(l, T::random)?;
    cli::environment::add_to_linker::<T, WasiCli>(l, T::cli)?;
    cli::exit::add_to_linker::<T, WasiCli>(l, T::cli)?;
    cli::stdin::add_to_linker::<T, WasiCli>(l, T::cli)?;
    cli::stdout::add_to_linker::<T, WasiCli>(l, T::cli)?;
    cli::stderr::add_to_linker::<T, WasiCli>(l, T::cli)?;
    cli::terminal_input::add_to_linker::<T, WasiCli>(l, T::cli)?;
    cli::terminal_output::add_to_linker::<T, WasiCli>(l, T::cli)?;
    cli::terminal_stdin::add_to_linker::<T, WasiCli>(l, T::cli)?;
    cli::terminal_stdout::add_to_linker::<T, WasiCli>(l, T::cli)?;
    cli::terminal_stderr::add_to_linker::<T, WasiCli>(l, T::cli)?;
    Ok(())
}

// ---- wasi:io ----

impl io::poll::Host for ResourceTable {
    async fn poll_list(&mut self, list: Vec<Resource<DynPollable>>) -> wasmtime::Result<Vec<u32>> {
        p2::io::poll::Host::poll(self, list).await
    }

    async fn poll_one(&mut self, pollable: Resource<DynPollable>) -> wasmtime::Result<()> {
        p2::io::poll::HostPollable::block(self, pollable).await
    }
}

impl io::poll::HostPollable for ResourceTable {
    fn drop(&mut self, pollable: Resource<DynPollable>) -> wasmtime::Result<()> {
        p2::io::poll::HostPollable::drop(self, pollable)
    }
}

impl io::streams::Host for ResourceTable {
    fn convert_stream_error(
        &mut self,
        err: wasmtime_wasi::p2::StreamError,
    ) -> wasmtime::Result<io::streams::StreamError> {
        Ok(
            match p2::io::streams::Host::convert_stream_error(self, err)? {
                p2::io::streams::StreamError::LastOperationFailed(e) => {
                    io::streams::StreamError::LastOperationFailed(e)
                }
                p2::io::streams::StreamError::Closed => io::streams::StreamError::Closed,
            },
        )
    }
}

impl io::streams::HostError for ResourceTable {
    fn to_debug_string(&mut self, err: Resource<io::streams::Error>) -> wasmtime::Result<String> {
        p2::io::error::HostError::to_debug_string(self, err)
    }

    fn drop(&mut self, err: Resource<io::streams::Error>) -> wasmtime::Result<()> {
        p2::io::error::HostError::drop(self, err)
    }
}

type InStream = Resource<io::streams::InputStream>;
type OutStream = Resource<io::streams::OutputStream>;

impl io::streams::HostInputStream for ResourceTable {
    fn read(&mut self, stream: InStream, len: u64) -> StreamResult<Vec<u8>> {
        p2::io::streams::HostInputStream::read(self, stream, len)
    }

    async fn blocking_read(&mut self, stream: InStream, len: u64) -> StreamResult<Vec<u8>> {
        p2::io::streams::HostInputStream::blocking_read(self, stream, len).await
    }

    fn skip(&mut self, stream: InStream, len: u64) -> StreamResult<u64> {
        p2::io::streams::HostInputStream::skip(self, stream, len)
    }

    async fn blocking_skip(&mut self, stream: InStream, len: u64) -> StreamResult<u64> {
        p2::io::streams::HostInputStream::blocking_skip(self, stream, len).await
    }

    fn subscribe(&mut self, stream: InStream) -> wasmtime::Result<Resource<DynPollable>> {
        p2::io::streams::HostInputStream::subscribe(self, stream)
    }

    async fn drop(&mut self, stream: InStream) -> wasmtime::Result<()> {
        p2::io::streams::HostInputStream::drop(self, stream).await
    }
}

/// Bytes `forward` moves per splice.
const FORWARD_CHUNK: u64 = 64 << 10;

impl io::streams::HostOutputStream for ResourceTable {
    fn check_write(&mut self, stream: OutStream) -> StreamResult<u64> {
        p2::io::streams::HostOutputStream::check_write(self, stream)
    }

    fn write(&mut self, stream: OutStream, contents: Vec<u8>) -> StreamResult<()> {
        p2::io::streams::HostOutputStream::write(self, stream, contents)
    }

    async fn blocking_write_and_flush(
        &mut self,
        stream: OutStream,
        contents: Vec<u8>,
    ) -> StreamResult<()> {
        p2::io::streams::HostOutputStream::blocking_write_and_flush(self, stream, contents).await
    }

    fn flush(&mut self, stream: OutStream) -> StreamResult<()> {
        p2::io::streams::HostOutputStream::flush(self, stream)
    }

    async fn blocking_flush(&mut self, stream: OutStream) -> StreamResult<()> {
        p2::io::streams::HostOutputStream::blocking_flush(self, stream).await
    }

    fn subscribe(&mut self, stream: OutStream) -> wasmtime::Result<Resource<DynPollable>> {
        p2::io::streams::HostOutputStream::subscribe(self, stream)
    }

    fn write_zeroes(&mut self, stream: OutStream, len: u64) -> StreamResult<()> {
        p2::io::streams::HostOutputStream::write_zeroes(self, stream, len)
    }

    async fn blocking_write_zeroes_and_flush(
        &mut self,
        stream: OutStream,
        len: u64,
    ) -> StreamResult<()> {
        p2::io::streams::HostOutputStream::blocking_write_zeroes_and_flush(self, stream, len).await
    }

    fn splice(&mut self, stream: OutStream, src: InStream, len: u64) -> StreamResult<u64> {
        p2::io::streams::HostOutputStream::splice(self, stream, src, len)
    }

    async fn blocking_splice(
        &mut self,
        stream: OutStream,
        src: InStream,
        len: u64,
    ) -> StreamResult<u64> {
        p2::io::streams::HostOutputStream::blocking_splice(self, stream, src, len).await
    }

    /// Gone from 0.2: splices until `src` ends (the candidate's meaning),
    /// and answers how many bytes moved.
    async fn forward(&mut self, stream: OutStream, src: InStream) -> StreamResult<u64> {
        let mut total = 0u64;
        loop {
            let (dst, from) = (
                Resource::new_borrow(stream.rep()),
                Resource::new_borrow(src.rep()),
            );
            match p2::io::streams::HostOutputStream::blocking_splice(self, dst, from, FORWARD_CHUNK)
                .await
            {
                Ok(n) => total = total.saturating_add(n),
                Err(wasmtime_wasi::p2::StreamError::Closed) if total > 0 => return Ok(total),
                Err(e) => return Err(e),
            }
        }
    }

    async fn drop(&mut self, stream: OutStream) -> wasmtime::Result<()> {
        p2::io::streams::HostOutputStream::drop(self, stream).await
    }
}

// ---- wasi:http ----

impl From<p2_http::types::Method> for Method {
    fn from(m: p2_http::types::Method) -> Self {
        use p2_http::types::Method as M;
        match m {
            M::Get => Self::Get,
            M::Head => Self::Head,
            M::Post => Self::Post,
            M::Put => Self::Put,
            M::Delete => Self::Delete,
            M::Connect => Self::Connect,
            M::Options => Self::Options,
            M::Trace => Self::Trace,
            M::Patch => Self::Patch,
            M::Other(s) => Self::Other(s),
        }
    }
}

impl From<Method> for p2_http::types::Method {
    fn from(m: Method) -> Self {
        match m {
            Method::Get => Self::Get,
            Method::Head => Self::Head,
            Method::Post => Self::Post,
            Method::Put => Self::Put,
            Method::Delete => Self::Delete,
            Method::Connect => Self::Connect,
            Method::Options => Self::Options,
            Method::Trace => Self::Trace,
            Method::Patch => Self::Patch,
            Method::Other(s) => Self::Other(s),
        }
    }
}

impl From<p2_http::types::Scheme> for Scheme {
    fn from(s: p2_http::types::Scheme) -> Self {
        use p2_http::types::Scheme as S;
        match s {
            S::Http => Self::Http,
            S::Https => Self::Https,
            S::Other(s) => Self::Other(s),
        }
    }
}

impl From<Scheme> for p2_http::types::Scheme {
    fn from(s: Scheme) -> Self {
        match s {
            Scheme::Http => Self::Http,
            Scheme::Https => Self::Https,
            Scheme::Other(s) => Self::Other(s),
        }
    }
}

/// The candidate's four-way `error` for a 0.2 `error-code`.
fn candidate_error(code: p2_http::types::ErrorCode) -> HttpErrorV {
    use p2_http::types::ErrorCode as C;
    let text = format!("{code:?}");
    match code {
        C::DnsTimeout
        | C::ConnectionTimeout
        | C::ConnectionReadTimeout
        | C::ConnectionWriteTimeout
        | C::HttpResponseTimeout => HttpErrorV::TimeoutError(text),
        C::HttpRequestUriInvalid | C::HttpRequestUriTooLong => HttpErrorV::InvalidUrl(text),
        C::HttpProtocolError
        | C::HttpResponseIncomplete
        | C::HttpRequestMethodInvalid
        | C::HttpRequestLengthRequired
        | C::HttpResponseTransferCoding(_)
        | C::HttpResponseContentCoding(_)
        | C::HttpUpgradeFailed
        | C::TlsProtocolError
        | C::TlsCertificateError
        | C::TlsAlertReceived(_) => HttpErrorV::ProtocolError(text),
        _ => HttpErrorV::UnexpectedError(text),
    }
}

/// A 0.2 `error-code` for the candidate's `error` (which the guest set on
/// its response): an internal error carrying the candidate's words.
fn p2_error(err: HttpErrorV) -> p2_http::types::ErrorCode {
    let text = match err {
        HttpErrorV::InvalidUrl(s) => format!("invalid URL: {s}"),
        HttpErrorV::TimeoutError(s) => format!("timeout: {s}"),
        HttpErrorV::ProtocolError(s) => format!("protocol error: {s}"),
        HttpErrorV::UnexpectedError(s) => format!("unexpected error: {s}"),
    };
    p2_http::types::ErrorCode::InternalError(Some(text))
}

/// A header error where the candidate has no way to report one: a trap,
/// as the candidate's own hosts did.
fn header_trap(e: HeaderError) -> wasmtime::Error {
    match e.downcast() {
        Ok(code) => wasmtime::format_err!("invalid header: {code:?}"),
        Err(trap) => trap,
    }
}

/// An HTTP error where the candidate has no way to report one: a trap.
fn http_trap(e: HttpError) -> wasmtime::Error {
    match e.downcast() {
        Ok(code) => wasmtime::format_err!("HTTP error: {code:?}"),
        Err(trap) => trap,
    }
}

type Fields = Resource<http::types::Fields>;

impl http::types::Host for WasiHttpCtxView<'_> {}

impl http::types::HostFields for WasiHttpCtxView<'_> {
    fn new(&mut self, entries: Vec<(String, Vec<u8>)>) -> wasmtime::Result<Fields> {
        p2_http::types::HostFields::from_list(self, entries).map_err(header_trap)
    }

    fn get(&mut self, fields: Fields, name: String) -> wasmtime::Result<Vec<Vec<u8>>> {
        p2_http::types::HostFields::get(self, fields, name)
    }

    fn set(&mut self, fields: Fields, name: String, value: Vec<Vec<u8>>) -> wasmtime::Result<()> {
        p2_http::types::HostFields::set(self, fields, name, value).map_err(header_trap)
    }

    fn delete(&mut self, fields: Fields, name: String) -> wasmtime::Result<()> {
        p2_http::types::HostFields::delete(self, fields, name).map_err(header_trap)
    }

    fn append(&mut self, fields: Fields, name: String, value: Vec<u8>) -> wasmtime::Result<()> {
        p2_http::types::HostFields::append(self, fields, name, value).map_err(header_trap)
    }

    fn entries(&mut self, fields: Fields) -> wasmtime::Result<Vec<(String, Vec<u8>)>> {
        p2_http::types::HostFields::entries(self, fields)
    }

    fn clone(&mut self, fields: Fields) -> wasmtime::Result<Fields> {
        p2_http::types::HostFields::clone(self, fields)
    }

    fn drop(&mut self, fields: Fields) -> wasmtime::Result<()> {
        p2_http::types::HostFields::drop(self, fields)
    }
}

type IncomingRequest = Resource<http::types::IncomingRequest>;
type IncomingBody = Resource<http::types::IncomingBody>;

impl http::types::HostIncomingRequest for WasiHttpCtxView<'_> {
    fn method(&mut self, req: IncomingRequest) -> wasmtime::Result<Method> {
        Ok(p2_http::types::HostIncomingRequest::method(self, req)?.into())
    }

    fn path_with_query(&mut self, req: IncomingRequest) -> wasmtime::Result<Option<String>> {
        p2_http::types::HostIncomingRequest::path_with_query(self, req)
    }

    fn scheme(&mut self, req: IncomingRequest) -> wasmtime::Result<Option<Scheme>> {
        Ok(p2_http::types::HostIncomingRequest::scheme(self, req)?.map(Scheme::from))
    }

    fn authority(&mut self, req: IncomingRequest) -> wasmtime::Result<Option<String>> {
        p2_http::types::HostIncomingRequest::authority(self, req)
    }

    fn headers(&mut self, req: IncomingRequest) -> wasmtime::Result<Fields> {
        p2_http::types::HostIncomingRequest::headers(self, req)
    }

    fn consume(&mut self, req: IncomingRequest) -> wasmtime::Result<Result<IncomingBody, ()>> {
        p2_http::types::HostIncomingRequest::consume(self, req)
    }

    fn drop(&mut self, req: IncomingRequest) -> wasmtime::Result<()> {
        p2_http::types::HostIncomingRequest::drop(self, req)
    }
}

type OutgoingRequest = Resource<http::types::OutgoingRequest>;
type OutgoingBody = Resource<http::types::OutgoingBody>;

impl http::types::HostOutgoingRequest for WasiHttpCtxView<'_> {
    /// 0.2 builds a request from owned headers and setters; the candidate
    /// from everything at once, with borrowed headers (copied here).
    fn new(
        &mut self,
        method: Method,
        path_with_query: Option<String>,
        scheme: Option<Scheme>,
        authority: Option<String>,
        headers: Fields,
    ) -> wasmtime::Result<OutgoingRequest> {
        use p2_http::types::HostOutgoingRequest as R;
        let headers = p2_http::types::HostFields::clone(self, headers)?;
        let req = R::new(self, headers)?;
        let this = || Resource::new_borrow(req.rep());
        let set = [
            ("method", R::set_method(self, this(), method.into())?),
            (
                "path-with-query",
                R::set_path_with_query(self, this(), path_with_query)?,
            ),
            (
                "scheme",
                R::set_scheme(self, this(), scheme.map(Into::into))?,
            ),
            ("authority", R::set_authority(self, this(), authority)?),
        ];
        if let Some((what, _)) = set.iter().find(|(_, r)| r.is_err()) {
            R::drop(self, req)?;
            wasmtime::bail!("outgoing-request: invalid {what}");
        }
        Ok(req)
    }

    fn write(&mut self, req: OutgoingRequest) -> wasmtime::Result<Result<OutgoingBody, ()>> {
        p2_http::types::HostOutgoingRequest::body(self, req)
    }

    fn drop(&mut self, req: OutgoingRequest) -> wasmtime::Result<()> {
        p2_http::types::HostOutgoingRequest::drop(self, req)
    }
}

type ResponseOutparam = Resource<http::types::ResponseOutparam>;
type OutgoingResponse = Resource<http::types::OutgoingResponse>;

impl http::types::HostResponseOutparam for WasiHttpCtxView<'_> {
    fn set(
        &mut self,
        param: ResponseOutparam,
        response: Result<OutgoingResponse, HttpErrorV>,
    ) -> wasmtime::Result<()> {
        p2_http::types::HostResponseOutparam::set(self, param, response.map_err(p2_error))
    }

    fn drop(&mut self, param: ResponseOutparam) -> wasmtime::Result<()> {
        p2_http::types::HostResponseOutparam::drop(self, param)
    }
}

type IncomingResponse = Resource<http::types::IncomingResponse>;

impl http::types::HostIncomingResponse for WasiHttpCtxView<'_> {
    fn status(&mut self, resp: IncomingResponse) -> wasmtime::Result<u16> {
        p2_http::types::HostIncomingResponse::status(self, resp)
    }

    fn headers(&mut self, resp: IncomingResponse) -> wasmtime::Result<Fields> {
        p2_http::types::HostIncomingResponse::headers(self, resp)
    }

    fn consume(&mut self, resp: IncomingResponse) -> wasmtime::Result<Result<IncomingBody, ()>> {
        p2_http::types::HostIncomingResponse::consume(self, resp)
    }

    fn drop(&mut self, resp: IncomingResponse) -> wasmtime::Result<()> {
        p2_http::types::HostIncomingResponse::drop(self, resp)
    }
}

type FutureTrailers = Resource<http::types::FutureTrailers>;

impl http::types::HostIncomingBody for WasiHttpCtxView<'_> {
    fn stream(&mut self, body: IncomingBody) -> wasmtime::Result<Result<InStream, ()>> {
        p2_http::types::HostIncomingBody::stream(self, body)
    }

    fn finish(&mut self, body: IncomingBody) -> wasmtime::Result<FutureTrailers> {
        p2_http::types::HostIncomingBody::finish(self, body)
    }

    fn drop(&mut self, body: IncomingBody) -> wasmtime::Result<()> {
        p2_http::types::HostIncomingBody::drop(self, body)
    }
}

impl http::types::HostFutureTrailers for WasiHttpCtxView<'_> {
    fn subscribe(&mut self, trailers: FutureTrailers) -> wasmtime::Result<Resource<DynPollable>> {
        p2_http::types::HostFutureTrailers::subscribe(self, trailers)
    }

    /// The candidate cannot say "no trailers": an empty set stands in, and
    /// a second `get` (which 0.2 reports) traps.
    fn get(
        &mut self,
        trailers: FutureTrailers,
    ) -> wasmtime::Result<Option<Result<Fields, HttpErrorV>>> {
        Ok(
            match p2_http::types::HostFutureTrailers::get(self, trailers)? {
                None => None,
                Some(Ok(Ok(Some(fields)))) => Some(Ok(fields)),
                Some(Ok(Ok(None))) => Some(Ok(p2_http::types::HostFields::new(self)?)),
                Some(Ok(Err(code))) => Some(Err(candidate_error(code))),
                Some(Err(())) => wasmtime::bail!("future-trailers: trailers already taken"),
            },
        )
    }

    fn drop(&mut self, trailers: FutureTrailers) -> wasmtime::Result<()> {
        p2_http::types::HostFutureTrailers::drop(self, trailers)
    }
}

impl http::types::HostOutgoingResponse for WasiHttpCtxView<'_> {
    /// As for requests: 0.2 takes owned headers and a setter for the status.
    fn new(&mut self, status_code: u16, headers: Fields) -> wasmtime::Result<OutgoingResponse> {
        use p2_http::types::HostOutgoingResponse as R;
        let headers = p2_http::types::HostFields::clone(self, headers)?;
        let resp = R::new(self, headers)?;
        if R::set_status_code(self, Resource::new_borrow(resp.rep()), status_code)?.is_err() {
            R::drop(self, resp)?;
            wasmtime::bail!("outgoing-response: invalid status code {status_code}");
        }
        Ok(resp)
    }

    fn write(&mut self, resp: OutgoingResponse) -> wasmtime::Result<Result<OutgoingBody, ()>> {
        p2_http::types::HostOutgoingResponse::body(self, resp)
    }

    fn drop(&mut self, resp: OutgoingResponse) -> wasmtime::Result<()> {
        p2_http::types::HostOutgoingResponse::drop(self, resp)
    }
}

impl http::types::HostOutgoingBody for WasiHttpCtxView<'_> {
    fn write(&mut self, body: OutgoingBody) -> wasmtime::Result<Result<OutStream, ()>> {
        p2_http::types::HostOutgoingBody::write(self, body)
    }

    fn finish(&mut self, body: OutgoingBody, trailers: Option<Fields>) -> wasmtime::Result<()> {
        p2_http::types::HostOutgoingBody::finish(self, body, trailers).map_err(http_trap)
    }

    fn drop(&mut self, body: OutgoingBody) -> wasmtime::Result<()> {
        p2_http::types::HostOutgoingBody::drop(self, body)
    }
}

type FutureIncomingResponse = Resource<http::types::FutureIncomingResponse>;

impl http::types::HostFutureIncomingResponse for WasiHttpCtxView<'_> {
    fn get(
        &mut self,
        future: FutureIncomingResponse,
    ) -> wasmtime::Result<Option<Result<Result<IncomingResponse, HttpErrorV>, ()>>> {
        Ok(
            p2_http::types::HostFutureIncomingResponse::get(self, future)?
                .map(|r| r.map(|r| r.map_err(candidate_error))),
        )
    }

    fn subscribe(
        &mut self,
        future: FutureIncomingResponse,
    ) -> wasmtime::Result<Resource<DynPollable>> {
        p2_http::types::HostFutureIncomingResponse::subscribe(self, future)
    }

    fn drop(&mut self, future: FutureIncomingResponse) -> wasmtime::Result<()> {
        p2_http::types::HostFutureIncomingResponse::drop(self, future)
    }
}

impl http::outgoing_handler::Host for WasiHttpCtxView<'_> {
    /// The candidate's timeouts (a record, in milliseconds) become 0.2
    /// request options; a refusal the 0.2 handler reports as an
    /// `error-code` comes back in the candidate's words.
    fn handle(
        &mut self,
        request: OutgoingRequest,
        options: Option<http::types::RequestOptions>,
    ) -> wasmtime::Result<Result<FutureIncomingResponse, HttpErrorV>> {
        let options = match options {
            Some(o) => {
                let ms = |v: Option<u32>| v.map(|ms| std::time::Duration::from_millis(ms.into()));
                Some(self.table.push(wasmtime_wasi_http::RequestOptions {
                    connect_timeout: ms(o.connect_timeout_ms),
                    first_byte_timeout: ms(o.first_byte_timeout_ms),
                    between_bytes_timeout: ms(o.between_bytes_timeout_ms),
                })?)
            }
            None => None,
        };
        match p2_http::outgoing_handler::Host::handle(self, request, options) {
            Ok(future) => Ok(Ok(future)),
            Err(e) => Ok(Err(candidate_error(e.downcast()?))),
        }
    }
}

// ---- wasi:clocks ----

impl clocks::monotonic_clock::Host for WasiClocksCtxView<'_> {
    fn now(&mut self) -> wasmtime::Result<u64> {
        p2::clocks::monotonic_clock::Host::now(self)
    }

    fn resolution(&mut self) -> wasmtime::Result<u64> {
        p2::clocks::monotonic_clock::Host::resolution(self)
    }

    fn subscribe(&mut self, when: u64, absolute: bool) -> wasmtime::Result<Resource<DynPollable>> {
        if absolute {
            p2::clocks::monotonic_clock::Host::subscribe_instant(self, when)
        } else {
            p2::clocks::monotonic_clock::Host::subscribe_duration(self, when)
        }
    }
}

impl From<p2::clocks::wall_clock::Datetime> for clocks::wall_clock::Datetime {
    fn from(d: p2::clocks::wall_clock::Datetime) -> Self {
        Self {
            seconds: d.seconds,
            nanoseconds: d.nanoseconds,
        }
    }
}

impl clocks::wall_clock::Host for WasiClocksCtxView<'_> {
    fn now(&mut self) -> wasmtime::Result<clocks::wall_clock::Datetime> {
        Ok(p2::clocks::wall_clock::Host::now(self)?.into())
    }

    fn resolution(&mut self) -> wasmtime::Result<clocks::wall_clock::Datetime> {
        Ok(p2::clocks::wall_clock::Host::resolution(self)?.into())
    }
}

// ---- wasi:random ----

impl random::random::Host for WasiRandomCtx {
    fn get_random_bytes(&mut self, len: u64) -> wasmtime::Result<Vec<u8>> {
        p2::random::random::Host::get_random_bytes(self, len)
    }

    fn get_random_u64(&mut self) -> wasmtime::Result<u64> {
        p2::random::random::Host::get_random_u64(self)
    }
}

impl random::insecure::Host for WasiRandomCtx {
    fn get_insecure_random_bytes(&mut self, len: u64) -> wasmtime::Result<Vec<u8>> {
        p2::random::insecure::Host::get_insecure_random_bytes(self, len)
    }

    fn get_insecure_random_u64(&mut self) -> wasmtime::Result<u64> {
        p2::random::insecure::Host::get_insecure_random_u64(self)
    }
}

impl random::insecure_seed::Host for WasiRandomCtx {
    fn insecure_seed(&mut self) -> wasmtime::Result<(u64, u64)> {
        p2::random::insecure_seed::Host::insecure_seed(self)
    }
}

// ---- wasi:cli ----

impl cli::environment::Host for WasiCliCtxView<'_> {
    fn get_environment(&mut self) -> wasmtime::Result<Vec<(String, String)>> {
        p2::cli::environment::Host::get_environment(self)
    }

    fn get_arguments(&mut self) -> wasmtime::Result<Vec<String>> {
        p2::cli::environment::Host::get_arguments(self)
    }

    fn initial_cwd(&mut self) -> wasmtime::Result<Option<String>> {
        p2::cli::environment::Host::initial_cwd(self)
    }
}

impl cli::exit::Host for WasiCliCtxView<'_> {
    fn exit(&mut self, status: Result<(), ()>) -> wasmtime::Result<()> {
        p2::cli::exit::Host::exit(self, status)
    }
}

impl cli::stdin::Host for WasiCliCtxView<'_> {
    fn get_stdin(&mut self) -> wasmtime::Result<InStream> {
        p2::cli::stdin::Host::get_stdin(self)
    }
}

impl cli::stdout::Host for WasiCliCtxView<'_> {
    fn get_stdout(&mut self) -> wasmtime::Result<OutStream> {
        p2::cli::stdout::Host::get_stdout(self)
    }
}

impl cli::stderr::Host for WasiCliCtxView<'_> {
    fn get_stderr(&mut self) -> wasmtime::Result<OutStream> {
        p2::cli::stderr::Host::get_stderr(self)
    }
}

type TerminalInput = Resource<cli::terminal_input::TerminalInput>;
type TerminalOutput = Resource<cli::terminal_output::TerminalOutput>;

impl cli::terminal_input::Host for WasiCliCtxView<'_> {}

impl cli::terminal_input::HostTerminalInput for WasiCliCtxView<'_> {
    fn drop(&mut self, terminal: TerminalInput) -> wasmtime::Result<()> {
        p2::cli::terminal_input::HostTerminalInput::drop(self, terminal)
    }
}

impl cli::terminal_output::Host for WasiCliCtxView<'_> {}

impl cli::terminal_output::HostTerminalOutput for WasiCliCtxView<'_> {
    fn drop(&mut self, terminal: TerminalOutput) -> wasmtime::Result<()> {
        p2::cli::terminal_output::HostTerminalOutput::drop(self, terminal)
    }
}

impl cli::terminal_stdin::Host for WasiCliCtxView<'_> {
    fn get_terminal_stdin(&mut self) -> wasmtime::Result<Option<TerminalInput>> {
        p2::cli::terminal_stdin::Host::get_terminal_stdin(self)
    }
}

impl cli::terminal_stdout::Host for WasiCliCtxView<'_> {
    fn get_terminal_stdout(&mut self) -> wasmtime::Result<Option<TerminalOutput>> {
        p2::cli::terminal_stdout::Host::get_terminal_stdout(self)
    }
}

impl cli::terminal_stderr::Host for WasiCliCtxView<'_> {
    fn get_terminal_stderr(&mut self) -> wasmtime::Result<Option<TerminalOutput>> {
        p2::cli::terminal_stderr::Host::get_terminal_stderr(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeouts_and_bad_urls_keep_their_kind_in_the_candidates_words() {
        use p2_http::types::ErrorCode as C;
        assert!(matches!(
            candidate_error(C::ConnectionTimeout),
            HttpErrorV::TimeoutError(_)
        ));
        assert!(matches!(
            candidate_error(C::HttpRequestUriInvalid),
            HttpErrorV::InvalidUrl(_)
        ));
        assert!(matches!(
            candidate_error(C::HttpProtocolError),
            HttpErrorV::ProtocolError(_)
        ));
        match candidate_error(C::HttpRequestDenied) {
            HttpErrorV::UnexpectedError(s) => assert_eq!(s, "ErrorCode::HttpRequestDenied"),
            other => panic!("denied is unexpected: {other:?}"),
        }
    }

    #[test]
    fn a_guest_set_error_reaches_the_host_as_an_internal_error_saying_it() {
        match p2_error(HttpErrorV::TimeoutError("slow".into())) {
            p2_http::types::ErrorCode::InternalError(Some(s)) => assert_eq!(s, "timeout: slow"),
            other => panic!("not internal: {other:?}"),
        }
    }
}
