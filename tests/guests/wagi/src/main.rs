//! Wagi guest: a CGI program. `?mode=` picks what it writes to stdout:
//! - `echo` (default): its arguments, the CGI variables a test checks and
//!   its stdin, as text;
//! - `redirect`: only a `Location` header; `teapot`: `Status: 418` and a
//!   custom header; `plain`: text with no header block;
//! - `silent`: nothing; `fail`: a response, then exit code 3;
//! - `variable`: the `greeting` Spin variable (Spin APIs work in Wagi);
//! - `spin`: loops forever (the request timeout must stop it);
//! - `hog`: grows its memory by 512 MiB (the memory limit must stop it).

use std::io::{Read, Write};

const ECHOED: &[&str] = &[
    "REQUEST_METHOD",
    "SCRIPT_NAME",
    "PATH_INFO",
    "QUERY_STRING",
    "X_FULL_URL",
    "X_MATCHED_ROUTE",
    "X_PATH_MATCH_NAME",
    "CONTENT_LENGTH",
    "CONTENT_TYPE",
    "HTTP_X_TEST",
    "HTTP_AUTHORIZATION",
    "SERVER_NAME",
    "SERVER_SOFTWARE",
    "FROM_MANIFEST",
];

fn main() {
    let query = std::env::var("QUERY_STRING").unwrap_or_default();
    let mode = query
        .split('&')
        .find_map(|p| p.strip_prefix("mode="))
        .unwrap_or("echo");
    let mut out = std::io::stdout().lock();
    let written = match mode {
        "redirect" => write!(out, "Location: /elsewhere\n\n"),
        "teapot" => write!(
            out,
            "Status: 418 I'm a teapot\r\nContent-Type: text/plain\r\nX-Wagi: yes\r\n\r\nshort and stout"
        ),
        "plain" => write!(out, "no headers here"),
        "silent" => Ok(()),
        "fail" => {
            let _ = write!(out, "Content-Type: text/plain\n\nabout to fail");
            let _ = out.flush();
            std::process::exit(3);
        }
        "variable" => {
            let greeting = spin_sdk::variables::get("greeting").unwrap_or_else(|e| format!("error: {e}"));
            write!(out, "Content-Type: text/plain\n\ngreeting={greeting}")
        }
        "hog" => {
            let big = vec![1u8; 512 << 20];
            write!(out, "Content-Type: text/plain\n\n{}", big.iter().map(|&b| b as u64).sum::<u64>())
        }
        "spin" => {
            let mut n: u64 = 0;
            loop {
                n = std::hint::black_box(n.wrapping_add(1));
            }
        }
        _ => echo(&mut out),
    };
    written.expect("stdout");
}

fn echo(out: &mut impl Write) -> std::io::Result<()> {
    let mut stdin = String::new();
    std::io::stdin().read_to_string(&mut stdin)?;
    write!(out, "Content-Type: text/plain; charset=utf-8\n\n")?;
    let args: Vec<String> = std::env::args().collect();
    writeln!(out, "args={}", args.join("|"))?;
    for key in ECHOED {
        if let Ok(value) = std::env::var(key) {
            writeln!(out, "{key}={value}")?;
        }
    }
    write!(out, "stdin={stdin}")
}
