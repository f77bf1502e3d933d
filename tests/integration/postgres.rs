//! Spin's PostgreSQL API (`spin:postgres@4.2.0`) against the machine's real
//! PostgreSQL server, through the spin-sdk 7 guest.

use crate::support::{AppDir, Trib, backend_available, client, shared_cache};

const SERVER: &str = "127.0.0.1:5432";
/// The machine's server uses a self-signed certificate, which (as in Spin)
/// is not trusted: loopback connections turn TLS off.
const ADDRESS: &str = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable";

const APP: &str = r#"
spin_manifest_version = 2
[application]
name = "postgres"
[variables]
pg_host = { default = "127.0.0.1:5432" }
[[trigger.http]]
route = "/ok/..."
component = "ok"
[[trigger.http]]
route = "/denied/..."
component = "denied"
[[trigger.http]]
route = "/p2/..."
component = "p2"
[component.ok]
source = "{p3}"
allowed_outbound_hosts = ["postgres://{{ pg_host }}"]
[component.p2]
source = "{p2}"
allowed_outbound_hosts = ["postgres://{{ pg_host }}"]
[component.denied]
source = "{p3}"
allowed_outbound_hosts = ["postgres://db.example.com"]
"#;

/// A query's answer with the `Debug` type prefixes taken off.
fn pg_query(trib: &Trib, sql: &str) -> (u16, String) {
    let (status, body) = pg(trib, "/ok", "query", sql);
    let body = ["DbDataType::", "DbValue::", "RangeBoundKind::"]
        .iter()
        .fold(body, |b, prefix| b.replace(prefix, ""));
    (status, body)
}

fn pg(trib: &Trib, prefix: &str, op: &str, body: &str) -> (u16, String) {
    let resp = client()
        .post(trib.url(&format!(
            "{prefix}/pg?op={op}&address={}",
            ADDRESS.replace('?', "%3F").replace('=', "%3D")
        )))
        .body(body.to_owned())
        .send()
        .expect("request");
    let status = resp.status().as_u16();
    (status, resp.text().expect("body"))
}

/// A table name no other run uses.
fn table() -> String {
    crate::support::unique_name("trib_pg", '_')
}

#[test]
fn values_round_trip_and_errors_follow_spin() {
    if !backend_available("PostgreSQL", SERVER) {
        return;
    }
    let app = AppDir::new(APP);
    let trib = Trib::start_with(&app, &shared_cache(), &[]);
    let t = table();
    let create = format!(
        "CREATE TABLE {t} (id BIGSERIAL PRIMARY KEY, b BOOLEAN, s SMALLINT, i INTEGER, l BIGINT, f DOUBLE PRECISION, txt TEXT, bin BYTEA, j JSONB, d NUMERIC, u UUID, day DATE, at TIMESTAMPTZ, naive TIMESTAMP, arr BIGINT[], tags TEXT[], span INT4RANGE, wait INTERVAL)"
    );
    assert_eq!(pg(&trib, "/ok", "execute", &create), (200, "rows=0".into()));
    let insert = format!(
        "INSERT INTO {t} (b, s, i, l, f, txt, bin, j, d, u, day, at, naive, arr, tags, span, wait) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, '[3,9)', '1 day 2 hours')\n\
         bool:true\ni16:-7\ni32:70000\ni64:-9000000000\nf64:2.5\nstr:héllo\nbin:00ff10\njson:{{\"a\":[1,2]}}\ndec:12.340\nuuid:67e55044-10b1-426f-9247-bb680e5fe0c8\ndate:2026-11-26\nts:1764115200\ndt:2026-11-26 01:02:03\nai64:1,,3\nastr:x,,y"
    );
    assert_eq!(pg(&trib, "/ok", "execute", &insert), (200, "rows=1".into()));
    let (status, body) = pg_query(
        &trib,
        &format!(
            "SELECT b, s, i, l, f, txt, bin, j, d, u, day, at, naive, arr, tags, span, wait, NULL::text AS nothing FROM {t}"
        ),
    );
    assert_eq!(status, 200, "{body}");
    let mut lines = body.lines();
    assert_eq!(
        lines.next(),
        Some(
            "b:Boolean|s:Int16|i:Int32|l:Int64|f:Floating64|txt:Str|bin:Binary|j:Jsonb|d:Decimal|u:Uuid|day:Date|at:Datetime|naive:Datetime|arr:ArrayInt64|tags:ArrayStr|span:RangeInt32|wait:Interval|nothing:Str"
        )
    );
    let row = lines.next().expect("one row");
    for expected in [
        "Boolean(true)",
        "Int16(-7)",
        "Int32(70000)",
        "Int64(-9000000000)",
        "Floating64(2.5)",
        "Str(\"héllo\")",
        "Binary([0, 255, 16])",
        "Jsonb([123, 34, 97, 34, 58, 91, 49, 44, 50, 93, 125])",
        "Decimal(\"12.340\")",
        "Uuid(\"67e55044-10b1-426f-9247-bb680e5fe0c8\")",
        "Date((2026, 11, 26))",
        "Datetime((2025, 11, 26, 0, 0, 0, 0))",
        "Datetime((2026, 11, 26, 1, 2, 3, 0))",
        "ArrayInt64([Some(1), None, Some(3)])",
        "ArrayStr([Some(\"x\"), None, Some(\"y\")])",
        "RangeInt32((Some((3, Inclusive)), Some((9, Exclusive))))",
        "Interval(Interval { micros: 7200000000, days: 1, months: 0 })",
        "DbNull",
    ] {
        assert!(row.contains(expected), "{expected} missing from {row}");
    }
    // A server error arrives structured, with PostgreSQL's SQLSTATE.
    let (status, body) = pg(&trib, "/ok", "query", "SELECT * FROM no_such_table_here");
    assert_eq!(status, 500);
    assert!(body.contains("code: \"42P01\""), "{body}");
    // A parameter of the wrong type is refused, not sent as garbage.
    let (status, body) = pg(
        &trib,
        "/ok",
        "execute",
        &format!("INSERT INTO {t} (i) VALUES ($1)\nstr:not a number"),
    );
    assert_eq!(status, 500, "{body}");
    // A transaction a request leaves open is rolled back, never inherited.
    assert_eq!(pg(&trib, "/ok", "execute", "BEGIN").0, 200);
    let insert = format!("INSERT INTO {t} (txt) VALUES ('kept')");
    assert_eq!(pg(&trib, "/ok", "execute", &insert), (200, "rows=1".into()));
    std::thread::sleep(std::time::Duration::from_millis(200));
    let count = format!("SELECT count(*) AS n FROM {t} WHERE txt = 'kept'");
    assert_eq!(pg_query(&trib, &count), (200, "n:Int64\nInt64(1)".into()));
    // spin-sdk 5 (`pg4`, spin:postgres@4.0.0) reads what spin-sdk 7 wrote.
    let resp = client()
        .post(trib.url(&format!(
            "/p2/pg4?address={}",
            ADDRESS.replace('?', "%3F").replace('=', "%3D")
        )))
        .body(format!(
            "SELECT txt, l FROM {t} WHERE txt = $1 OR l = $2 ORDER BY id\nt:héllo\ni:-1"
        ))
        .send()
        .expect("request");
    assert_eq!(resp.status().as_u16(), 200);
    let body = resp.text().expect("body");
    assert!(
        body.contains("Str(\"héllo\")") && body.contains("Int64(-9000000000)"),
        "{body}"
    );
    // A host the component does not list is refused before any connection.
    let (status, body) = pg(&trib, "/denied", "query", "SELECT 1");
    assert_eq!(status, 500);
    assert!(
        body.contains("ConnectionFailed") && body.contains("not permitted"),
        "{body}"
    );
    pg(&trib, "/ok", "execute", &format!("DROP TABLE {t}"));
}
