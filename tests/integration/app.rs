//! The repository's own app: `trib build` then `trib up` on the root
//! `spin.toml`, exactly as the README's quick start does.

use crate::support::{AppDir, Trib, client, repo_root, shared_cache, trib};

#[test]
fn the_root_spin_toml_builds_and_serves() {
    let root = repo_root();
    let status = trib()
        .args(["build", "-f"])
        .arg(root.join("spin.toml"))
        .status()
        .expect("trib build runs");
    assert!(status.success(), "building the app failed");
    let app = AppDir::existing(&root);
    let server = Trib::start_with(&app, &shared_cache(), &[]);
    let resp = client().get(server.url("/")).send().expect("request");
    assert_eq!(resp.status().as_u16(), 200);
    assert!(resp.text().expect("body").contains("<h1>Tributary</h1>"));
    let health = client()
        .get(server.url("/.well-known/spin/health"))
        .send()
        .expect("request");
    assert_eq!(health.status().as_u16(), 200);
}
