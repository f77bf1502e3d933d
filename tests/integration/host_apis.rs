//! Spin's host APIs on embedded defaults, driven through spin-sdk 7 (p3)
//! and spin-sdk 5 (p2) guests: key-value on SQLite and variables.

use crate::support::{AppDir, Trib, shared_cache, trib};

const APP: &str = r#"
spin_manifest_version = 2
[application]
name = "host-apis"
[variables]
greeting = { default = "hello" }
token = { required = true, secret = true }
[[trigger.http]]
route = "/p3/..."
component = "p3"
[[trigger.http]]
route = "/p2/..."
component = "p2"
[[trigger.http]]
route = "/nokv/..."
component = "nokv"
[component.p3]
source = "{p3}"
key_value_stores = ["default", "other"]
sqlite_databases = ["default"]
[component.p3.variables]
message = "{{ greeting }}, world"
token = "{{ token }}"
[component.p2]
source = "{p2}"
key_value_stores = ["default"]
sqlite_databases = ["default"]
[component.p2.variables]
message = "{{ greeting }}, world"
token = "{{ token }}"
[component.nokv]
source = "{p3}"
"#;

const RUNTIME_CONFIG: &str = r#"
[key_value_store.other]
type = "spin"
path = "data/other.db"
"#;

const TOKEN: &str = "s3cret-token-value";

fn start(app: &AppDir, extra: &[&str]) -> Trib {
    let rc = app.path().join("runtime-config.toml");
    std::fs::write(&rc, RUNTIME_CONFIG).expect("runtime config");
    let rc = rc.display().to_string();
    let mut args = vec!["--runtime-config-file", rc.as_str()];
    args.extend_from_slice(extra);
    Trib::start_with_env(
        app,
        &shared_cache(),
        &args,
        &[("SPIN_VARIABLE_TOKEN", TOKEN)],
    )
}

#[test]
fn key_value_round_trips_through_both_sdks_on_one_default_store() {
    let app = AppDir::new(APP);
    let trib = start(&app, &[]);
    trib.assert_gets(&[
        ("/p3/kv-set?store=default&key=a&value=one", 200, "ok"),
        ("/p2/kv-get?store=default&key=a", 200, "one"),
        ("/p2/kv-set?store=default&key=b&value=two", 200, "ok"),
        ("/p3/kv-get?store=default&key=b", 200, "two"),
        ("/p3/kv-keys?store=default", 200, "a,b"),
        ("/p2/kv-keys?store=default", 200, "a,b"),
        ("/p3/kv-exists?store=default&key=a", 200, "true"),
        ("/p2/kv-delete?store=default&key=a", 200, "ok"),
        ("/p3/kv-exists?store=default&key=a", 200, "false"),
        ("/p3/kv-get?store=default&key=a", 200, "<none>"),
    ]);
    // Spin keeps the default store here; so do we.
    assert!(app.path().join(".spin/sqlite_key_value.db").exists());
}

#[test]
fn key_value_errors_follow_spin() {
    let app = AppDir::new(APP);
    let trib = start(&app, &[]);
    // Not listed in key_value_stores: access denied, for both SDKs.
    // (The SDKs print the variant differently: `Error::AccessDenied` or `AccessDenied`.)
    for path in [
        "/nokv/kv-get?store=default&key=a",
        "/p2/kv-get?store=other&key=a",
    ] {
        let (status, body) = trib.get(path);
        assert_eq!(status, 500, "{path}");
        assert!(body.ends_with("AccessDenied"), "{path}: {body}");
    }
    // Listed and mapped by the runtime config to its own file.
    trib.assert_gets(&[
        ("/p3/kv-set?store=other&key=k&value=v", 200, "ok"),
        ("/p3/kv-get?store=default&key=k", 200, "<none>"),
    ]);
    assert!(app.path().join("data/other.db").exists());
}

#[test]
fn key_value_data_survives_a_restart() {
    let app = AppDir::new(APP);
    let first = start(&app, &[]);
    first.assert_gets(&[("/p3/kv-set?store=default&key=kept&value=yes", 200, "ok")]);
    drop(first);
    let second = start(&app, &[]);
    second.assert_gets(&[("/p2/kv-get?store=default&key=kept", 200, "yes")]);
}

#[test]
fn an_undefined_store_stops_startup() {
    let app = AppDir::new(&APP.replace("[\"default\", \"other\"]", "[\"default\", \"cache\"]"));
    let out = trib()
        .args(["up", "--listen", "127.0.0.1:0", "-f"])
        .arg(app.manifest())
        .env("SPIN_VARIABLE_TOKEN", TOKEN)
        .output()
        .expect("trib runs");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("key-value store \"cache\""), "{stderr}");
    assert!(stderr.contains("[key_value_store.cache]"), "{stderr}");
}

#[test]
fn variables_resolve_from_env_file_and_defaults_for_both_sdks() {
    let app = AppDir::new(APP);
    let trib = start(&app, &[]);
    for prefix in ["/p3", "/p2"] {
        trib.assert_gets(&[
            (&format!("{prefix}/var?name=message"), 200, "hello, world"),
            (&format!("{prefix}/var?name=token"), 200, TOKEN),
        ]);
        let (status, body) = trib.get(&format!("{prefix}/var?name=nope"));
        assert_eq!(status, 500);
        assert!(body.contains("Undefined("), "{prefix}: {body}");
        let (status, body) = trib.get(&format!("{prefix}/var?name=Bad-Name"));
        assert_eq!(status, 500);
        assert!(body.contains("InvalidName("), "{prefix}: {body}");
    }
    // wasi:config/store reads the same variables.
    trib.assert_gets(&[
        ("/p2/config?name=message", 200, "hello, world"),
        ("/p2/config?name=nope", 404, "<none>"),
    ]);
    assert!(!trib.log().contains(TOKEN), "secrets never reach the log");
    drop(trib);

    // A variables file wins over the environment and the default.
    let file = app.path().join("vars.env");
    std::fs::write(&file, "greeting=howdy\n").expect("vars file");
    let file = file.display().to_string();
    let trib = start(&app, &["--variables-file", &file]);
    trib.assert_gets(&[("/p3/var?name=message", 200, "howdy, world")]);
}

#[test]
fn a_missing_required_variable_stops_startup_with_its_name() {
    let app = AppDir::new(APP);
    let out = trib()
        .args(["up", "--listen", "127.0.0.1:0", "-f"])
        .arg(app.manifest())
        .env_remove("SPIN_VARIABLE_TOKEN")
        .output()
        .expect("trib runs");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("variable \"token\" is required"),
        "{stderr}"
    );
}

fn sql(trib: &Trib, prefix: &str, body: &str) -> (u16, String) {
    trib.post(&format!("{prefix}?db=default"), body)
}

#[test]
fn sqlite_round_trips_every_value_type_through_both_sdks() {
    let app = AppDir::new(APP);
    let migration = app.path().join("migration.sql");
    std::fs::write(
        &migration,
        "CREATE TABLE IF NOT EXISTS t (i INTEGER, r REAL, s TEXT, b BLOB, n TEXT);\nCREATE TABLE IF NOT EXISTS seen (id INTEGER PRIMARY KEY, who TEXT);\n",
    )
    .expect("migration");
    let migration_arg = format!("@{}", migration.display());
    let trib = start(
        &app,
        &[
            "--sqlite",
            &migration_arg,
            "--sqlite",
            "INSERT INTO seen (who) VALUES ('startup')",
        ],
    );
    // spin-sdk 7 (spin:sqlite 3.1, async, rows streamed)
    let (status, body) = sql(
        &trib,
        "/p3/sql",
        "INSERT INTO t VALUES (?, ?, ?, ?, ?)\ni:-7\nr:2.5\nt:héllo wörld\nb:00ff10\nn",
    );
    assert_eq!(status, 200, "{body}");
    assert!(body.ends_with("changes=1 rowid=1"), "{body}");
    let (status, body) = sql(&trib, "/p3/sql", "SELECT * FROM t WHERE i = ?\ni:-7");
    // A fresh connection: nothing changed or inserted on it yet.
    assert_eq!(
        (status, body.as_str()),
        (
            200,
            "i|r|s|b|n\ni:-7|r:2.5|t:héllo wörld|b:00ff10|n\nchanges=0 rowid=0"
        )
    );
    // spin-sdk 5 (fermyon:spin/sqlite 2.0) reads what p3 wrote, and writes.
    let (status, body) = sql(&trib, "/p2/sql", "SELECT * FROM t");
    assert_eq!(
        (status, body.as_str()),
        (200, "i|r|s|b|n\ni:-7|r:2.5|t:héllo wörld|b:00ff10|n")
    );
    assert_eq!(
        sql(&trib, "/p2/sql", "INSERT INTO seen (who) VALUES (?)\nt:p2").0,
        200
    );
    // spin-sdk 5's sqlite3 (spin:sqlite 3.0 resolved to our 3.1).
    let (status, body) = sql(
        &trib,
        "/p2/sql3",
        "INSERT INTO seen (who) VALUES (?)\nt:p2-v3",
    );
    assert_eq!((status, body.as_str()), (200, "rows=0 changes=1 rowid=3"));
    // The --sqlite statement ran before serving.
    let (_, body) = sql(&trib, "/p3/sql", "SELECT who FROM seen ORDER BY id");
    assert!(body.starts_with("who\nt:startup\nt:p2\nt:p2-v3"), "{body}");
    // Errors: SQL errors are io(...), unlisted databases access-denied.
    let (status, body) = sql(&trib, "/p3/sql", "SELEC nonsense");
    assert_eq!(status, 500);
    assert!(body.contains("Io("), "{body}");
    let (status, body) = sql(&trib, "/nokv/sql", "SELECT 1");
    assert_eq!(status, 500);
    assert!(body.ends_with("AccessDenied"), "{body}");
    assert!(app.path().join(".spin/sqlite_db.db").exists());
    drop(trib);
    // Data survives a restart.
    let trib = start(&app, &[]);
    let (_, body) = sql(&trib, "/p2/sql", "SELECT count(*) AS c FROM seen");
    assert_eq!(body, "c\ni:3");
}

#[test]
fn wasi_keyvalue_store_atomics_and_batch_follow_the_draft() {
    let app = AppDir::new(APP);
    let trib = start(&app, &[]);
    let (status, body) = trib.get("/p2/wkv?store=default");
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body,
        [
            "get w1 = Ok(\"a\")",
            "exists w1 = Ok(true)",
            "increment = Ok(5)",
            "increment = Ok(10)",
            "set_many = Ok(())",
            "get_many = Ok(\"x=1,z=none\")",
            "delete_many = Ok(())",
            "list_keys = Ok(\"ctr,w1,y\")",
            "current = Ok(\"a\")",
            "swap = true",
            "contended swap = cas-failed",
            "final w1 = Ok(\"c\")",
        ]
        .join("\n")
    );
    // The same access rule as Spin's interface: unlisted stores are denied.
    let (status, body) = trib.get("/p2/wkv?store=other");
    assert_eq!(status, 500);
    assert!(body.contains("AccessDenied"), "{body}");
}
