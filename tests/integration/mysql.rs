//! Spin's MySQL API (`fermyon:spin/mysql@2.0.0` for spin-sdk 5,
//! `spin:mysql/mysql@3.0.0` for spin-sdk 7) against the machine's real
//! MariaDB, through the `mysql-p2` and `mysql-p3` guests: what one SDK
//! writes the other reads back, and both see Spin's errors.

use std::path::PathBuf;
use std::sync::OnceLock;

use crate::support::{
    AppDir, Trib, backend_available, build_wasm, client, repo_root, shared_cache,
};

const SERVER: &str = "127.0.0.1:3306";
const ADDRESS: &str = "mysql://root@127.0.0.1:3306/test";
/// A password the tests put in addresses: it must never be shown.
const PASSWORD: &str = "hunter2-mysql-secret";

const APP: &str = r#"
spin_manifest_version = 2
[application]
name = "mysql"
[variables]
mysql_host = { default = "127.0.0.1:3306" }
[[trigger.http]]
route = "/p2/..."
component = "p2"
[[trigger.http]]
route = "/p3/..."
component = "p3"
[[trigger.http]]
route = "/denied2/..."
component = "denied2"
[[trigger.http]]
route = "/denied3/..."
component = "denied3"
[component.p2]
source = "{mysql_p2}"
allowed_outbound_hosts = ["mysql://{{ mysql_host }}", "mysql://127.0.0.1:{down}"]
[component.p3]
source = "{mysql_p3}"
allowed_outbound_hosts = ["mysql://{{ mysql_host }}", "mysql://127.0.0.1:{down}"]
[component.denied2]
source = "{mysql_p2}"
allowed_outbound_hosts = ["mysql://db.example.com", "postgres://127.0.0.1:3306"]
[component.denied3]
source = "{mysql_p3}"
allowed_outbound_hosts = ["mysql://db.example.com", "postgres://127.0.0.1:3306"]
"#;

/// The two guests, built once per test process.
fn mysql_guests() -> &'static (PathBuf, PathBuf) {
    static GUESTS: OnceLock<(PathBuf, PathBuf)> = OnceLock::new();
    GUESTS.get_or_init(|| {
        let dir = repo_root().join("tests/guests");
        (build_wasm(&dir, "mysql-p2"), build_wasm(&dir, "mysql-p3"))
    })
}

/// The app and `trib up` serving it; `down` is an allowed port nothing
/// listens on.
fn start(down: u16) -> (AppDir, Trib) {
    let (p2, p3) = mysql_guests();
    let app = AppDir::new(
        &APP.replace("{mysql_p2}", &p2.display().to_string())
            .replace("{mysql_p3}", &p3.display().to_string())
            .replace("{down}", &down.to_string()),
    );
    let trib = Trib::start_with(&app, &shared_cache(), &[]);
    (app, trib)
}

/// Runs `body` (statement, then parameters) as `op` through the guest at
/// `prefix`, with `address`.
fn sql(trib: &Trib, prefix: &str, op: &str, address: &str, body: &str) -> (u16, String) {
    let resp = client()
        .post(trib.url(&format!(
            "{prefix}/{op}?address={}",
            address
                .replace('&', "%26")
                .replace('?', "%3F")
                .replace('=', "%3D")
        )))
        .body(body.to_owned())
        .send()
        .expect("request");
    let status = resp.status().as_u16();
    (status, resp.text().expect("body"))
}

/// A table name no other test or run uses.
fn table(test: &str) -> String {
    crate::support::unique_name(&format!("trib_my_{test}"), '_')
}

#[test]
fn mysql_values_round_trip_through_both_sdks() {
    if !backend_available("MariaDB (MySQL)", SERVER) {
        return;
    }
    let (_app, trib) = start(crate::support::closed_port());
    let t = table("values");
    let create = format!(
        "CREATE TABLE {t} (id INT AUTO_INCREMENT PRIMARY KEY, i INT, b BIGINT, f DOUBLE, t VARCHAR(40), flag BOOLEAN, n INT NULL, bin VARBINARY(16), u INT UNSIGNED, tiny TINYINT UNSIGNED)"
    );
    assert_eq!(
        sql(&trib, "/p2", "execute", ADDRESS, &create),
        (200, "ok".into())
    );
    let insert = format!(
        "INSERT INTO {t} (i, b, f, t, flag, n, bin, u, tiny) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
    );
    let p2_row = format!(
        "{insert}\ni32:-42\ni64:-9000000000\nf64:2.5\nstr:héllo p2\nbool:true\nnull\nbin:00ff10\nu32:4000000000\nu8:200"
    );
    assert_eq!(
        sql(&trib, "/p2", "execute", ADDRESS, &p2_row),
        (200, "ok".into())
    );
    let p3_row = format!(
        "{insert}\ni32:7\ni64:9000000000\nf64:-0.125\nstr:from p3\nbool:false\nnull\nbin:cafe\nu32:1\nu8:0"
    );
    assert_eq!(
        sql(&trib, "/p3", "execute", ADDRESS, &p3_row),
        (200, "ok".into())
    );

    let select = format!("SELECT i, b, f, t, flag, n, bin, u, tiny FROM {t} ORDER BY id");
    let expected = "i:Int32|b:Int64|f:Floating64|t:Str|flag:Int8|n:Int32|bin:Binary|u:Uint32|tiny:Uint8\n\
         Int32(-42)|Int64(-9000000000)|Floating64(2.5)|Str(\"héllo p2\")|Int8(1)|DbNull|Binary([0, 255, 16])|Uint32(4000000000)|Uint8(200)\n\
         Int32(7)|Int64(9000000000)|Floating64(-0.125)|Str(\"from p3\")|Int8(0)|DbNull|Binary([202, 254])|Uint32(1)|Uint8(0)";
    // Each SDK reads what both wrote, in the same types.
    assert_eq!(
        sql(&trib, "/p2", "query", ADDRESS, &select),
        (200, expected.to_owned())
    );
    assert_eq!(
        sql(&trib, "/p3", "query", ADDRESS, &select),
        (200, expected.to_owned())
    );
    // Parameters select rows; no row is a header alone.
    let by_text = format!("SELECT id, t FROM {t} WHERE t = ? AND bin = ?\nstr:from p3\nbin:cafe");
    let (status, body) = sql(&trib, "/p3", "query", ADDRESS, &by_text);
    assert_eq!(
        (status, body.lines().nth(1)),
        (200, Some("Int32(2)|Str(\"from p3\")")),
        "{body}"
    );
    let none = format!("SELECT t FROM {t} WHERE i = ?\ni64:123456");
    assert_eq!(
        sql(&trib, "/p2", "query", ADDRESS, &none),
        (200, "t:Str".into())
    );
    // A type Spin has no variant for fails the query, as in Spin.
    let (status, body) = sql(
        &trib,
        "/p2",
        "query",
        ADDRESS,
        "SELECT CAST(1.5 AS DECIMAL(4,2)) AS d",
    );
    assert_eq!(status, 500);
    assert!(body.starts_with("ValueConversionFailed("), "{body}");
    sql(&trib, "/p2", "execute", ADDRESS, &format!("DROP TABLE {t}"));
}

#[test]
fn mysql_errors_are_spins_and_keep_the_password_out() {
    let down = crate::support::closed_port();
    let (_app, trib) = start(down);
    for prefix in ["/denied2", "/denied3"] {
        let address = format!("mysql://root:{PASSWORD}@127.0.0.1:3306/test");
        let (status, body) = sql(&trib, prefix, "query", &address, "SELECT 1");
        assert_eq!(status, 500, "{prefix}");
        assert_eq!(
            body,
            "open: ConnectionFailed(\"address mysql://127.0.0.1:3306 is not permitted: add it to the component's allowed_outbound_hosts\")",
            "{prefix}"
        );
    }
    for prefix in ["/p2", "/p3"] {
        let address = format!("mysql://root:{PASSWORD}@127.0.0.1:{down}/test");
        let (status, body) = sql(&trib, prefix, "query", &address, "SELECT 1");
        assert_eq!(status, 500, "{prefix}");
        assert!(
            body.starts_with("open: ConnectionFailed(\""),
            "{prefix}: {body}"
        );
        assert!(!body.contains(PASSWORD), "{prefix}: {body}");
    }
    assert!(!trib.log().contains(PASSWORD), "the log shows the password");
    if !backend_available("MariaDB (MySQL)", SERVER) {
        return;
    }
    for prefix in ["/p2", "/p3"] {
        let (status, body) = sql(
            &trib,
            prefix,
            "query",
            ADDRESS,
            "SELECT * FROM trib_no_such_table_here",
        );
        assert_eq!(status, 500, "{prefix}");
        assert!(
            body.starts_with("QueryFailed(") && body.contains("trib_no_such_table_here"),
            "{prefix}: {body}"
        );
        let (status, body) = sql(&trib, prefix, "execute", ADDRESS, "NOT SQL AT ALL");
        assert_eq!(status, 500, "{prefix}");
        assert!(body.starts_with("QueryFailed("), "{prefix}: {body}");
    }
}
