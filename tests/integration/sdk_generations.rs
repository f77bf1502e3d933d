//! Every spin-sdk generation the latest Spin runs, through a guest built
//! with that SDK pinned: key-value (set, then get) and a variable.
//!
//! - 3.x and 4.x (`sdk3-kv`, `sdk4-kv`): `wasi:http/incoming-handler@0.2.0`,
//!   `fermyon:spin/key-value@2.0.0`, `fermyon:spin/variables@2.0.0`;
//! - 5.x (`hello-p2`): the same interfaces, newer WASI 0.2 patch;
//! - 6.x (`sdk6-kv`): `wasi:http/handler@0.3.0-rc-2026-03-15` (served as
//!   0.3.0, see `engine::wasi_rc`), `spin:key-value@3.0.0`,
//!   `spin:variables@3.0.0`;
//! - 7.x (`hello-p3`): `wasi:http/handler@0.3.0`, `spin:*@3.0.0`;
//! - 2.x (`sdk2-kv`): WASI `0.2.0-rc-2023-10-18`, linked under its own
//!   names by `engine::wasi_2023_10_18` on top of Wasmtime's WASI 0.2, its
//!   `incoming-handler` export served as `@0.2.0`; `fermyon:spin@2.0.0`.

use std::path::PathBuf;
use std::sync::OnceLock;

use crate::outbound::Upstream;
use crate::support::{AppDir, Trib, assert_mentions, build_wasm, repo_root, shared_cache};

/// `sdk2-kv`, `sdk3-kv`, `sdk4-kv`, `sdk6-kv`, built once per process.
fn sdk_guests() -> &'static [PathBuf; 4] {
    static GUESTS: OnceLock<[PathBuf; 4]> = OnceLock::new();
    GUESTS.get_or_init(|| {
        let dir = repo_root().join("tests/guests");
        ["sdk2-kv", "sdk3-kv", "sdk4-kv", "sdk6-kv"].map(|g| build_wasm(&dir, g))
    })
}

const APP: &str = r#"
spin_manifest_version = 2
[application]
name = "sdk-generations"
[variables]
who = { default = "nobody" }
{triggers}
{components}
"#;

/// One route and one component per generation: `(name, guest)`, the
/// component's `greeting` naming its SDK.
fn manifest(components: &[(&str, PathBuf)]) -> String {
    let mut triggers = String::new();
    let mut defs = String::new();
    for (name, wasm) in components {
        triggers.push_str(&format!(
            "[[trigger.http]]\nroute = \"/{name}/...\"\ncomponent = \"{name}\"\n"
        ));
        defs.push_str(&format!(
            "[component.{name}]\nsource = \"{}\"\nkey_value_stores = [\"default\"]\n\
             [component.{name}.variables]\ngreeting = \"{{{{ who }}}} from {name}\"\n\
             name = \"{{{{ who }}}} from {name}\"\n",
            wasm.display()
        ));
    }
    APP.replace("{triggers}", &triggers)
        .replace("{components}", &defs)
}

/// spin-sdk 3, 4, 5, 6 and 7 guests each store a value and read it back,
/// and read their own variable (resolved from an app variable set by the
/// environment); a value one generation stores, the others read, since all
/// are served by the same key-value backend.
#[test]
fn each_sdk_generation_round_trips_key_value_and_reads_a_variable() {
    let [_, sdk3, sdk4, sdk6] = sdk_guests().clone();
    let g = crate::support::guests();
    let app = AppDir::new(&manifest(&[
        ("sdk3", sdk3),
        ("sdk4", sdk4),
        ("sdk5", g.p2.clone()),
        ("sdk6", sdk6),
        ("sdk7", g.p3.clone()),
    ]));
    let who = format!("tester-{}", std::process::id());
    let trib = Trib::start_with_env(&app, &shared_cache(), &[], &[("SPIN_VARIABLE_WHO", &who)]);

    for sdk in [3, 4, 6] {
        let value = format!("value-{sdk}-{}", std::process::id());
        let (status, body) = trib.get(&format!("/sdk{sdk}/kv?key=k{sdk}&value={value}"));
        assert_eq!(
            (status, body.as_str()),
            (
                200,
                format!("sdk={sdk} kv={value} var={who} from sdk{sdk}\n").as_str()
            ),
            "spin-sdk {sdk}.x guest; log:\n{}",
            trib.log()
        );
    }
    // spin-sdk 5 and 7 through the general test guests.
    for sdk in [5, 7] {
        let value = format!("value-{sdk}-{}", std::process::id());
        trib.assert_gets(&[
            (
                &format!("/sdk{sdk}/kv-set?store=default&key=k{sdk}&value={value}"),
                200,
                "ok",
            ),
            (
                &format!("/sdk{sdk}/kv-get?store=default&key=k{sdk}"),
                200,
                &value,
            ),
            (
                &format!("/sdk{sdk}/var?name=name"),
                200,
                &format!("{who} from sdk{sdk}"),
            ),
        ]);
    }
    // One store behind every generation: what 3, 4 and 6 stored, 5 and 7 read.
    for (reader, sdk) in [(5, 3), (7, 4), (7, 6), (5, 6)] {
        let value = format!("value-{sdk}-{}", std::process::id());
        trib.assert_gets(&[(
            &format!("/sdk{reader}/kv-get?store=default&key=k{sdk}"),
            200,
            &value,
        )]);
    }
}

/// A spin-sdk 2.x guest imports WASI `0.2.0-rc-2023-10-18`, served by
/// `engine::wasi_2023_10_18` (its export renamed to `@0.2.0`): it stores a
/// value and reads it back, reads its variable, and a spin-sdk 5 guest
/// reads what it stored (one backend); it echoes a 200 kB body; its outbound GET goes through the
/// candidate's `wasi:http/outgoing-handler` to an allowed upstream and
/// answers with the upstream's status and body, while a GET to a host
/// `allowed_outbound_hosts` does not list is refused (a 500 from the SDK).
#[test]
fn an_sdk2_guest_round_trips_key_value_reads_a_variable_and_fetches() {
    let [sdk2, ..] = sdk_guests().clone();
    let upstream = Upstream::start();
    let allowed = format!("http://127.0.0.1:{}", upstream.addr.port());
    let app = AppDir::new(
        &manifest(&[
            ("sdk2", sdk2),
            ("sdk5", crate::support::guests().p2.clone()),
        ])
        .replace(
            "[component.sdk2]\n",
            &format!("[component.sdk2]\nallowed_outbound_hosts = [\"{allowed}\"]\n"),
        ),
    );
    let who = format!("tester-{}", std::process::id());
    let trib = Trib::start_with_env(&app, &shared_cache(), &[], &[("SPIN_VARIABLE_WHO", &who)]);

    let value = format!("value-2-{}", std::process::id());
    let (status, body) = trib.get(&format!("/sdk2/kv?key=k2&value={value}"));
    assert_eq!(
        (status, body.as_str()),
        (
            200,
            format!("sdk=2 kv={value} var={who} from sdk2\n").as_str()
        ),
        "spin-sdk 2.x guest; log:\n{}",
        trib.log()
    );
    trib.assert_gets(&[("/sdk5/kv-get?store=default&key=k2", 200, &value)]);
    // A body of many chunks, read through the candidate's streams and
    // pollables and written back through them.
    let big: String = (0..40_000).map(|i| format!("{i:05}")).collect();
    let (status, body) = trib.post("/sdk2/echo", &big);
    assert_eq!(status, 200, "log:\n{}", trib.log());
    assert!(body == big, "echoed {} bytes of {}", body.len(), big.len());

    let (status, body) = trib.get(&format!("/sdk2/fetch?url={allowed}/up/there"));
    assert_eq!(
        (status, body.as_str()),
        (200, "sdk=2 fetched 200 upstream ok /up/there\n"),
        "log:\n{}",
        trib.log()
    );
    assert_eq!(upstream.connections(), 1);
    let closed = crate::support::closed_port();
    let (status, _) = trib.get(&format!("/sdk2/fetch?url=http://127.0.0.1:{closed}/nope"));
    assert_eq!(status, 500, "not allowed; log:\n{}", trib.log());
    assert_mentions(&trib.log(), &["outbound HTTP denied", "component=sdk2"]);
    assert_eq!(
        upstream.connections(),
        1,
        "nothing more reached the upstream"
    );
}
