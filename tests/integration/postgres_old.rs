//! The older PostgreSQL interfaces, `fermyon:spin/postgres@2.0.0` (spin-sdk
//! 5's `pg`) and `spin:postgres/postgres@3.0.0` (its `pg3`), against the
//! machine's real PostgreSQL through the `postgres-old-p2` guest: the same
//! backend as `@4`, its values narrowed to the older types.

use std::path::PathBuf;
use std::sync::OnceLock;

use crate::support::{
    AppDir, Trib, backend_available, build_wasm, client, repo_root, shared_cache,
};

const SERVER: &str = "127.0.0.1:5432";
const ADDRESS: &str = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable";
/// A password the tests put in addresses: it must never be shown.
const PASSWORD: &str = "hunter2-pg-secret";

const APP: &str = r#"
spin_manifest_version = 2
[application]
name = "postgres-old"
[variables]
pg_host = { default = "127.0.0.1:5432" }
[[trigger.http]]
route = "/ok/..."
component = "ok"
[[trigger.http]]
route = "/denied/..."
component = "denied"
[component.ok]
source = "{guest}"
allowed_outbound_hosts = ["postgres://{{ pg_host }}", "postgres://127.0.0.1:{down}"]
[component.denied]
source = "{guest}"
allowed_outbound_hosts = ["postgres://db.example.com", "mysql://127.0.0.1:5432"]
"#;

fn guest() -> &'static PathBuf {
    static GUEST: OnceLock<PathBuf> = OnceLock::new();
    GUEST.get_or_init(|| build_wasm(&repo_root().join("tests/guests"), "postgres-old-p2"))
}

fn start(down: u16) -> (AppDir, Trib) {
    let app = AppDir::new(
        &APP.replace("{guest}", &guest().display().to_string())
            .replace("{down}", &down.to_string()),
    );
    let trib = Trib::start_with(&app, &shared_cache(), &[]);
    (app, trib)
}

/// Runs `body` as `op` through interface `api` (`pg` or `pg3`).
fn pg(trib: &Trib, path: &str, address: &str, body: &str) -> (u16, String) {
    let resp = client()
        .post(trib.url(&format!(
            "{path}?address={}",
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

fn table() -> String {
    crate::support::unique_name("trib_pg_old", '_')
}

#[test]
fn postgres_2_and_3_round_trip_values_on_the_4_backend() {
    if !backend_available("PostgreSQL", SERVER) {
        return;
    }
    let (_app, trib) = start(crate::support::closed_port());
    let t = table();
    let create = format!(
        "CREATE TABLE {t} (id SERIAL PRIMARY KEY, i INTEGER, l BIGINT, f DOUBLE PRECISION, txt TEXT, flag BOOLEAN, n INTEGER, bin BYTEA, day DATE, j JSONB)"
    );
    assert_eq!(
        pg(&trib, "/ok/pg/execute", ADDRESS, &create),
        (200, "rows=0".into())
    );
    let insert = format!(
        "INSERT INTO {t} (i, l, f, txt, flag, n, bin, day, j) VALUES ($1, $2, $3, $4, $5, $6, $7, '2026-11-26', '{{\"a\":1}}')"
    );
    let row = format!(
        "{insert}\ni32:-42\ni64:-9000000000\nf64:2.5\nstr:héllo\nbool:true\nnull\nbin:00ff10"
    );
    assert_eq!(
        pg(&trib, "/ok/pg/execute", ADDRESS, &row),
        (200, "rows=1".into())
    );
    let select = format!("SELECT i, l, f, txt, flag, n, bin, day, j FROM {t} ORDER BY id");
    // @2.0.0 has no date or JSON: they arrive unsupported, typed other.
    assert_eq!(
        pg(&trib, "/ok/pg/query", ADDRESS, &select),
        (
            200,
            "i:Int32|l:Int64|f:Floating64|txt:Str|flag:Boolean|n:Int32|bin:Binary|day:Other|j:Other\n\
             Int32(-42)|Int64(-9000000000)|Floating64(2.5)|Str(\"héllo\")|Boolean(true)|DbNull|Binary([0, 255, 16])|Unsupported|Unsupported"
                .into()
        )
    );
    // @3.0.0 has dates; its own parameters (a date among them) are bound.
    let row3 = format!(
        "INSERT INTO {t} (i, txt, day) VALUES ($1, $2, $3)\ni32:7\nstr:from pg3\ndate:2027-01-02"
    );
    assert_eq!(
        pg(&trib, "/ok/pg3/execute", ADDRESS, &row3),
        (200, "rows=1".into())
    );
    assert_eq!(
        pg(&trib, "/ok/pg3/query", ADDRESS, &select),
        (
            200,
            "i:Int32|l:Int64|f:Floating64|txt:Str|flag:Boolean|n:Int32|bin:Binary|day:Date|j:Other\n\
             Int32(-42)|Int64(-9000000000)|Floating64(2.5)|Str(\"héllo\")|Boolean(true)|DbNull|Binary([0, 255, 16])|Date((2026, 11, 26))|Unsupported\n\
             Int32(7)|DbNull|DbNull|Str(\"from pg3\")|DbNull|DbNull|DbNull|Date((2027, 1, 2))|DbNull"
                .into()
        )
    );
    // PostgreSQL has no unsigned integers: refused as Spin refuses them.
    let (status, body) = pg(
        &trib,
        "/ok/pg/query",
        ADDRESS,
        "SELECT $1::int8 AS x\nu32:5",
    );
    assert_eq!(status, 500);
    assert_eq!(
        body,
        "ValueConversionFailed(\"Postgres does not support unsigned integers\")"
    );
    // A server error is the older WIT's string.
    for api in ["pg", "pg3"] {
        let (status, body) = pg(
            &trib,
            &format!("/ok/{api}/query"),
            ADDRESS,
            "SELECT * FROM trib_no_such_table_here",
        );
        assert_eq!(status, 500, "{api}");
        assert!(
            body.starts_with("QueryFailed(") && body.contains("trib_no_such_table_here"),
            "{api}: {body}"
        );
    }
    pg(&trib, "/ok/pg/execute", ADDRESS, &format!("DROP TABLE {t}"));
}

#[test]
fn postgres_2_and_3_refuse_unlisted_and_report_unreachable_servers() {
    let down = crate::support::closed_port();
    let (_app, trib) = start(down);
    for api in ["pg", "pg3"] {
        let address = format!("postgres://postgres:{PASSWORD}@127.0.0.1:5432/test?sslmode=disable");
        let (status, body) = pg(&trib, &format!("/denied/{api}/query"), &address, "SELECT 1");
        assert_eq!(status, 500, "{api}");
        assert_eq!(
            body,
            "open: ConnectionFailed(\"address postgres://127.0.0.1:5432 is not permitted: add it to the component's allowed_outbound_hosts\")",
            "{api}"
        );
        let address =
            format!("postgres://postgres:{PASSWORD}@127.0.0.1:{down}/test?sslmode=disable");
        let (status, body) = pg(&trib, &format!("/ok/{api}/query"), &address, "SELECT 1");
        assert_eq!(status, 500, "{api}");
        assert!(
            body.starts_with("open: ConnectionFailed(\""),
            "{api}: {body}"
        );
        assert!(!body.contains(PASSWORD), "{api}: {body}");
    }
    assert!(!trib.log().contains(PASSWORD), "the log shows the password");
}
