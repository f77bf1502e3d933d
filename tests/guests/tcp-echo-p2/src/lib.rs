//! spin-sdk 5 test guest for `wasi:sockets` through `std::net`:
//!
//! - `tcp?addr=IP:PORT&data=D`: connects, writes `D`, reads as many bytes
//!   back and answers `echo = ...`;
//! - `udp?addr=IP:PORT&data=D`: binds an ephemeral port, sends `D` as one
//!   datagram and answers `echo = ...` with the reply datagram (no read
//!   timeout: `SO_RCVTIMEO` is not available on WASI).
//!
//! A failure answers `error = KIND: TEXT` (the `std::io::ErrorKind` and the
//! error's text), with status 200, so a test reads what the guest saw.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};

use spin_sdk::http::{Request, Response};
use spin_sdk::http_component;

#[http_component]
fn handle(req: Request) -> Response {
    let query = req.query().to_owned();
    let param = |key: &str| -> String {
        query
            .split('&')
            .find_map(|pair| {
                pair.split_once('=')
                    .filter(|(k, _)| *k == key)
                    .map(|(_, v)| v.to_owned())
            })
            .unwrap_or_default()
    };
    let addr: SocketAddr = match param("addr").parse() {
        Ok(addr) => addr,
        Err(e) => return Response::new(400, format!("bad addr: {e}")),
    };
    let data = param("data").into_bytes();
    let tail = req.path().rsplit('/').next().unwrap_or_default().to_owned();
    let result = match tail.as_str() {
        "tcp" => tcp(addr, &data),
        "udp" => udp(addr, &data),
        other => return Response::new(404, format!("no route {other:?}")),
    };
    Response::new(
        200,
        match result {
            Ok(back) => format!("echo = {}", String::from_utf8_lossy(&back)),
            Err(e) => format!("error = {:?}: {e}", e.kind()),
        },
    )
}

fn tcp(addr: SocketAddr, data: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut stream = TcpStream::connect(addr)?;
    stream.write_all(data)?;
    let mut back = vec![0; data.len()];
    stream.read_exact(&mut back)?;
    Ok(back)
}

fn udp(addr: SocketAddr, data: &[u8]) -> std::io::Result<Vec<u8>> {
    let any: SocketAddr = if addr.is_ipv4() {
        "0.0.0.0:0"
    } else {
        "[::]:0"
    }
    .parse()
    .map_err(std::io::Error::other)?;
    let socket = UdpSocket::bind(any)?;
    socket.send_to(data, addr)?;
    let mut back = vec![0; 2048];
    let (n, _) = socket.recv_from(&mut back)?;
    back.truncate(n);
    Ok(back)
}
