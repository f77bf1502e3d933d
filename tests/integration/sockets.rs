//! `wasi:sockets` as Spin gates it: a guest may connect over TCP (and send
//! over UDP) exactly where its `allowed_outbound_hosts` allow, by IP or
//! CIDR entries (names never match: name lookup is denied). The
//! `tcp-echo-p2` guest talks to echo servers this test runs on loopback.

use std::io::{Read, Write};
use std::net::{TcpListener, UdpSocket};
use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Duration;

use crate::support::{AppDir, Trib, build_wasm, repo_root, shared_cache};

const APP: &str = r#"
spin_manifest_version = 2
[application]
name = "sockets"
[variables]
prefix = { default = "127.0.0.0" }
len = { default = "8" }
port = { default = "{echo}" }
[[trigger.http]]
route = "/exact/..."
component = "exact"
[[trigger.http]]
route = "/cidr/..."
component = "cidr"
[[trigger.http]]
route = "/none/..."
component = "none"
[component.exact]
source = "{guest}"
allowed_outbound_hosts = ["tcp://127.0.0.1:{echo}", "udp://127.0.0.1:{udp}"]
[component.cidr]
source = "{guest}"
allowed_outbound_hosts = ["tcp://{{ prefix }}/{{ len }}:{{ port }}"]
[component.none]
source = "{guest}"
allowed_outbound_hosts = ["tcp://localhost:{echo}", "http://127.0.0.1:{echo}"]
"#;

fn guest() -> &'static PathBuf {
    static GUEST: OnceLock<PathBuf> = OnceLock::new();
    GUEST.get_or_init(|| build_wasm(&repo_root().join("tests/guests"), "tcp-echo-p2"))
}

/// A TCP echo server on loopback (each connection echoed until it
/// closes), running until the test process ends; returns its port.
fn tcp_echo() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind echo server");
    let port = listener.local_addr().expect("address").port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            std::thread::spawn(move || {
                let _ = stream.set_read_timeout(Some(Duration::from_secs(30)));
                let mut buf = [0u8; 4096];
                while let Ok(n) = stream.read(&mut buf) {
                    if n == 0 || stream.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
            });
        }
    });
    port
}

/// A UDP echo server on loopback; returns its port.
fn udp_echo() -> u16 {
    let socket = UdpSocket::bind("127.0.0.1:0").expect("bind UDP echo server");
    let port = socket.local_addr().expect("address").port();
    std::thread::spawn(move || {
        let mut buf = [0u8; 2048];
        while let Ok((n, from)) = socket.recv_from(&mut buf) {
            let _ = socket.send_to(&buf[..n], from);
        }
    });
    port
}

fn start(echo: u16, udp: u16) -> (AppDir, Trib) {
    let app = AppDir::new(
        &APP.replace("{guest}", &guest().display().to_string())
            .replace("{echo}", &echo.to_string())
            .replace("{udp}", &udp.to_string()),
    );
    let trib = Trib::start_with(&app, &shared_cache(), &[]);
    (app, trib)
}

/// What a guest sees when its connection is denied.
fn assert_denied((status, body): (u16, String), what: &str) {
    assert_eq!(status, 200, "{what}: {body}");
    assert!(
        body.starts_with("error = PermissionDenied"),
        "{what}: the guest sees access-denied, got {body:?}"
    );
}

#[test]
fn tcp_and_udp_reach_only_what_allowed_outbound_hosts_allow() {
    let (echo, other, udp) = (tcp_echo(), tcp_echo(), udp_echo());
    let (_app, trib) = start(echo, udp);

    // Allowed by an exact IP entry, and by a CIDR entry built from variables.
    assert_eq!(
        trib.get(&format!(
            "/exact/tcp?addr=127.0.0.1:{echo}&data=hello-exact"
        )),
        (200, "echo = hello-exact".to_owned())
    );
    assert_eq!(
        trib.get(&format!("/cidr/tcp?addr=127.0.0.1:{echo}&data=hello-cidr")),
        (200, "echo = hello-cidr".to_owned())
    );
    // 127.4.5.6 is inside 127.0.0.0/8, so the connect is attempted, and
    // refused: the echo server listens on 127.0.0.1 only.
    let (status, body) = trib.get(&format!("/cidr/tcp?addr=127.4.5.6:{echo}&data=x"));
    assert_eq!(status, 200, "{body}");
    assert!(body.starts_with("error = ConnectionRefused"), "{body}");
    assert_eq!(
        trib.get(&format!("/exact/udp?addr=127.0.0.1:{udp}&data=hello-udp")),
        (200, "echo = hello-udp".to_owned())
    );

    // Denied: another port (a real server listens there), another
    // address, the wrong protocol, and entries by name or for HTTP only.
    assert_denied(
        trib.get(&format!("/exact/tcp?addr=127.0.0.1:{other}&data=x")),
        "exact, other port",
    );
    assert_denied(
        trib.get(&format!("/cidr/tcp?addr=127.0.0.1:{other}&data=x")),
        "cidr, other port",
    );
    assert_denied(
        trib.get(&format!("/exact/tcp?addr=127.0.0.2:{echo}&data=x")),
        "exact, other address",
    );
    assert_denied(
        trib.get(&format!("/cidr/udp?addr=127.0.0.1:{udp}&data=x")),
        "cidr is tcp:// only",
    );
    assert_denied(
        trib.get(&format!("/none/tcp?addr=127.0.0.1:{echo}&data=x")),
        "a name entry and an http:// entry",
    );
}

#[test]
fn block_networks_win_over_allowed_outbound_hosts_for_sockets() {
    let (echo, udp) = (tcp_echo(), udp_echo());
    let app = AppDir::new(
        &APP.replace("{guest}", &guest().display().to_string())
            .replace("{echo}", &echo.to_string())
            .replace("{udp}", &udp.to_string()),
    );
    let rc = app.path().join("runtime-config.toml");
    std::fs::write(
        &rc,
        "[outbound_networking]\nblock_networks = [\"127.0.0.1/32\"]\n",
    )
    .expect("write runtime config");
    let rc = rc.display().to_string();
    let trib = Trib::start_with(&app, &shared_cache(), &["--runtime-config-file", &rc]);
    assert_denied(
        trib.get(&format!("/exact/tcp?addr=127.0.0.1:{echo}&data=x")),
        "blocked TCP",
    );
    assert_denied(
        trib.get(&format!("/exact/udp?addr=127.0.0.1:{udp}&data=x")),
        "blocked UDP",
    );
    // Outside the blocked /32 the CIDR entry still reaches the network:
    // the connect is attempted and refused (nothing listens on 127.0.0.2).
    let (status, body) = trib.get(&format!("/cidr/tcp?addr=127.0.0.2:{echo}&data=x"));
    assert_eq!(status, 200, "{body}");
    assert!(body.starts_with("error = ConnectionRefused"), "{body}");
}
