//! Fingerprints the dashboard's assets at build time so they can be served
//! with strong ETags and, for the versioned CSS and JS, cached for a year:
//! each asset's name carries a hash of its bytes (`app.HASH.js`), and the
//! page that links them is written to `OUT_DIR` with those names in place.

use std::fmt::Write as _;
use std::path::Path;

/// FNV-1a, 64 bits: no dependency, stable across builds and platforms;
/// it tells versions of one file apart, which is all an ETag needs.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

fn read(dir: &Path, name: &str) -> String {
    let path = dir.join(name);
    println!("cargo:rerun-if-changed={}", path.display());
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn main() {
    let dir = Path::new("src/assets");
    let out = std::env::var("OUT_DIR").expect("cargo sets OUT_DIR");
    let css = read(dir, "app.css");
    let js = read(dir, "app.js");
    let icon = read(dir, "icon.svg");
    let css_name = format!("app.{:016x}.css", fnv1a(css.as_bytes()));
    let js_name = format!("app.{:016x}.js", fnv1a(js.as_bytes()));
    let index = read(dir, "index.html")
        .replace("{{app.css}}", &css_name)
        .replace("{{app.js}}", &js_name);
    assert!(
        !index.contains("{{"),
        "index.html has an unknown placeholder"
    );
    let mut consts = String::new();
    for (name, value) in [
        ("CSS_NAME", css_name.clone()),
        ("JS_NAME", js_name.clone()),
        ("CSS_ETAG", format!("\"{:016x}\"", fnv1a(css.as_bytes()))),
        ("JS_ETAG", format!("\"{:016x}\"", fnv1a(js.as_bytes()))),
        (
            "INDEX_ETAG",
            format!("\"{:016x}\"", fnv1a(index.as_bytes())),
        ),
        ("ICON_ETAG", format!("\"{:016x}\"", fnv1a(icon.as_bytes()))),
    ] {
        let _ = writeln!(consts, "pub const {name}: &str = {value:?};");
    }
    std::fs::write(Path::new(&out).join("index.html"), index).expect("write index.html");
    std::fs::write(Path::new(&out).join("fingerprints.rs"), consts).expect("write fingerprints.rs");
}
