//! The data every guest `Store` carries, and the linker that exposes it.
//!
//! One struct, one [`ResourceTable`]; each capability is reached through a
//! small `*View` borrow (`WasiView`, `WasiHttpView`) and wired by one
//! `add_to_linker` call, the way Wasmtime's own `serve` does it.

use std::net::SocketAddr;
use std::sync::Arc;

use wasmtime::component::{Linker, ResourceTable};
use wasmtime::{Engine, ResourceLimiter};
use wasmtime_wasi::p2::pipe::{MemoryInputPipe, MemoryOutputPipe};
use wasmtime_wasi::sockets::SocketAddrUse;
use wasmtime_wasi::{FsPerms, WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use crate::allowed_hosts::{AllowedHosts, Destination};
use crate::blocked_networks::BlockedNetworks;
use crate::files::Mount;
use crate::guest_output::ComponentOutput;
use crate::manifest::Component;
use crate::outbound::{OutboundHooks, OutboundHttp};
use crate::outcome::InstanceRequests;
use crate::spin_apis::{SpinCtx, SpinView};
use crate::telemetry::StoreTrace;

/// Per-store state of one guest instance.
pub struct HostState {
    table: ResourceTable,
    wasi: WasiCtx,
    http: WasiHttpCtx,
    outbound: OutboundHooks,
    spin: SpinCtx,
    /// Memory and table growth limits checked by Wasmtime.
    pub limits: MemoryLimit,
    /// The request this store works for, for spans and log lines.
    pub trace: Arc<StoreTrace>,
    /// When the instance was made (start, end), kept until the first
    /// request's trace records it; only set while traces are exported.
    pub instantiated: Option<(std::time::SystemTime, std::time::SystemTime)>,
}

/// Caps linear-memory growth and remembers that the cap was hit, so the
/// request can be answered and logged as a limit rather than a crash.
pub struct MemoryLimit {
    max_bytes: usize,
    exceeded: bool,
    /// Requests this instance is serving; flagged when the cap is hit.
    pub outcomes: InstanceRequests,
}

/// Table elements one table may grow to; far above what real guests use.
const MAX_TABLE_ELEMENTS: usize = 1 << 20;

impl MemoryLimit {
    /// Whether the guest hit the cap.
    pub fn exceeded(&self) -> bool {
        self.exceeded
    }

    /// The cap in bytes.
    pub fn max_bytes(&self) -> usize {
        self.max_bytes
    }
}

impl ResourceLimiter for MemoryLimit {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.max_bytes {
            self.exceeded = true;
            self.outcomes.memory_exceeded();
            return Ok(false);
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= MAX_TABLE_ELEMENTS)
    }
}

/// What every instance of one component starts with; built once at load,
/// so a request only copies a few `Arc`s.
#[derive(Debug, Clone)]
pub struct InstanceTemplate {
    /// The component ID, for logs.
    pub component: Arc<str>,
    environment: Arc<[(String, String)]>,
    max_memory: usize,
    spin: SpinCtx,
    outbound: Arc<OutboundHttp>,
    mounts: Arc<[Mount]>,
    /// Where stdout and stderr go (`None`: trib's own, as for `trib
    /// transform run`).
    output: Option<ComponentOutput>,
    /// Where `wasi:sockets` may connect (`None`: nowhere), and the
    /// runtime config's blocked networks, which win.
    sockets: Option<(Arc<AllowedHosts>, Arc<BlockedNetworks>)>,
}

impl InstanceTemplate {
    /// The template for `component`, with linear memories capped at
    /// `max_memory` bytes and the Spin APIs in `spin`.
    pub fn new(
        component: &Component,
        max_memory: usize,
        spin: SpinCtx,
        outbound: Arc<OutboundHttp>,
        mounts: Vec<Mount>,
    ) -> Self {
        Self {
            component: component.id.as_str().into(),
            environment: component
                .environment
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            max_memory,
            spin,
            outbound,
            mounts: mounts.into(),
            output: None,
            sockets: None,
        }
    }

    /// Lets `wasi:sockets` TCP connect and UDP connect/send reach what
    /// `allowed` allows (see [`socket_allowed`]); without it every socket
    /// address is denied. An address in `blocked` is denied whatever
    /// `allowed` says.
    pub fn with_sockets(
        mut self,
        allowed: Arc<AllowedHosts>,
        blocked: Arc<BlockedNetworks>,
    ) -> Self {
        self.sockets = Some((allowed, blocked));
        self
    }

    /// Sends the guest's stdout and stderr to `output` (log files and the
    /// terminal, as `spin up` does) instead of trib's own streams.
    pub fn with_output(mut self, output: ComponentOutput) -> Self {
        self.output = Some(output);
        self
    }

    /// Fresh state for one instance.
    pub fn state(&self) -> HostState {
        self.build(None)
    }

    /// Fresh state for one run of a WASI command (Wagi): `io`'s standard
    /// input, output, arguments and environment (which wins over the
    /// component's `environment` where both name a variable); stderr goes
    /// where the component's always goes.
    pub fn command_state(&self, io: CommandIo) -> HostState {
        self.build(Some(io))
    }

    fn build(&self, io: Option<CommandIo>) -> HostState {
        let trace = Arc::new(StoreTrace::new(self.component.clone()));
        let mut wasi = WasiCtxBuilder::new();
        match &self.output {
            Some(output) => {
                wasi.stdout(output.stdout.for_store(&trace))
                    .stderr(output.stderr.for_store(&trace));
            }
            None => {
                wasi.inherit_stdout().inherit_stderr();
            }
        }
        match io {
            None => {
                wasi.envs(&self.environment);
            }
            Some(io) => {
                let own = self
                    .environment
                    .iter()
                    .filter(|(k, _)| !io.env.iter().any(|(set, _)| set == k));
                for (k, v) in own.chain(io.env.iter()) {
                    wasi.env(k, v);
                }
                wasi.args(&io.args)
                    .stdin(MemoryInputPipe::new(io.stdin))
                    .stdout(io.stdout);
            }
        }
        for mount in self.mounts.iter() {
            // Checked at load; a directory removed since then is skipped
            // rather than failing every request.
            if let Err(e) = wasi.preopened_dir(&mount.host, &mount.guest, FsPerms::ReadOnly) {
                tracing::warn!(component = %self.component, dir = %mount.host.display(), "cannot mount: {e}");
            }
        }
        if let Some((allowed, blocked)) = &self.sockets {
            let (allowed, blocked) = (allowed.clone(), blocked.clone());
            wasi.allow_tcp(true)
                .allow_udp(true)
                .allow_ip_name_lookup(false)
                .socket_addr_check(move |addr, used_for| {
                    let ok = socket_allowed(&allowed, addr, used_for)
                        && (addr.ip().is_unspecified() || !blocked.blocks(addr.ip()));
                    Box::pin(std::future::ready(ok))
                });
        }
        HostState {
            table: ResourceTable::new(),
            wasi: wasi.build(),
            http: WasiHttpCtx::new(),
            outbound: OutboundHooks {
                http: self.outbound.clone(),
                trace: trace.clone(),
            },
            spin: self.spin.clone(),
            limits: MemoryLimit {
                max_bytes: self.max_memory,
                exceeded: false,
                outcomes: InstanceRequests::default(),
            },
            trace,
            instantiated: None,
        }
    }
}

/// Standard input, output, arguments and environment of one WASI command
/// run.
pub struct CommandIo {
    /// Fed to the program as standard input.
    pub stdin: bytes::Bytes,
    /// Collects the program's standard output.
    pub stdout: MemoryOutputPipe,
    /// `argv`, the program name first.
    pub args: Vec<String>,
    /// Environment variables set for this run.
    pub env: Vec<(String, String)>,
}

/// Whether a guest may use `addr` for `used_for`, as Spin decides it:
/// a TCP connect needs a `tcp://` (or `*://`) entry allowing the IP and
/// port, a UDP connect, send or receive a `udp://` (or `*://`) one; the
/// destination is always an IP (name lookup is denied), so only IP and
/// CIDR entries (and `*`) can match. Binding is allowed only as the
/// implicit bind before a connect or send (the unspecified address, port
/// 0); listening and accepting are denied, so a guest never serves.
pub fn socket_allowed(allowed: &AllowedHosts, addr: SocketAddr, used_for: SocketAddrUse) -> bool {
    let scheme = match used_for {
        SocketAddrUse::TcpConnect => "tcp",
        SocketAddrUse::UdpSend | SocketAddrUse::UdpReceive => "udp",
        SocketAddrUse::TcpBind | SocketAddrUse::UdpBind => {
            return addr.ip().is_unspecified() && addr.port() == 0;
        }
        SocketAddrUse::TcpListen | SocketAddrUse::TcpAccept => return false,
    };
    let host = addr.ip().to_canonical().to_string();
    allowed.allows(&Destination {
        scheme,
        host: &host,
        port: addr.port(),
    })
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for HostState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.outbound,
        }
    }
}

fn spin_view(state: &mut HostState) -> SpinView<'_> {
    crate::telemetry::host_calls::note_caller(&state.trace);
    SpinView {
        ctx: &mut state.spin,
        table: &mut state.table,
    }
}

/// The linker with every interface a Spin HTTP component may import: WASI
/// 0.2 and 0.3 (CLI, clocks, random, filesystem, sockets, I/O),
/// `wasi:http` for both, and Spin's APIs for both SDK generations.
pub fn linker(engine: &Engine) -> anyhow::Result<Linker<HostState>> {
    let mut linker = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
    wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)?;
    wasmtime_wasi::p3::add_to_linker(&mut linker)?;
    wasmtime_wasi_http::p3::add_to_linker(&mut linker)?;
    crate::engine::wasi_2023_10_18::add_to_linker(&mut linker)?;
    crate::spin_apis::add_to_linker(&mut linker, spin_view)?;
    Ok(linker)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> SocketAddr {
        s.parse().expect("socket address")
    }

    #[test]
    fn sockets_follow_allowed_outbound_hosts() {
        let allowed = AllowedHosts::parse(&[
            "tcp://127.0.0.1:7000",
            "udp://10.0.0.0/8:53",
            "*://[fd00::]/8:9000..9002",
        ])
        .expect("rules");
        let ok = |a: &str, u| socket_allowed(&allowed, addr(a), u);
        use SocketAddrUse::*;
        assert!(ok("127.0.0.1:7000", TcpConnect));
        assert!(!ok("127.0.0.1:7001", TcpConnect));
        assert!(!ok("127.0.0.2:7000", TcpConnect));
        assert!(!ok("127.0.0.1:7000", UdpSend), "a tcp:// entry is TCP only");
        assert!(ok("[::ffff:127.0.0.1]:7000", TcpConnect), "IPv4-mapped");
        assert!(ok("10.1.2.3:53", UdpSend));
        assert!(ok("10.1.2.3:53", UdpReceive));
        assert!(!ok("10.1.2.3:53", TcpConnect), "a udp:// entry is UDP only");
        assert!(!ok("11.1.2.3:53", UdpSend));
        assert!(ok("[fd00::1]:9001", TcpConnect));
        assert!(ok("[fd00::1]:9001", UdpSend));
        assert!(!ok("[fd00::1]:9002", TcpConnect), "the range excludes 9002");
        // The implicit bind before a connect, and nothing else.
        assert!(ok("0.0.0.0:0", TcpBind));
        assert!(ok("[::]:0", UdpBind));
        assert!(!ok("0.0.0.0:8080", TcpBind));
        assert!(!ok("127.0.0.1:0", TcpBind));
        assert!(!ok("0.0.0.0:0", TcpListen));
        assert!(!ok("127.0.0.1:7000", TcpAccept));
        let none = AllowedHosts::default();
        assert!(!socket_allowed(&none, addr("127.0.0.1:7000"), TcpConnect));
    }
}
