//! Fuzz tests for `trib`'s parsers, on stable Rust, inside `cargo test`.
//!
//! Every input a user or operator writes reaches one of these parsers before
//! anything runs: the manifest, the routes in it, the outbound-host allow
//! list and the runtime config. Each target feeds generated and mutated text
//! to one parser and checks that it never panics and that its answers obey
//! the parser's documented promises (see each module). The driver
//! ([`driver`]) is ours rather than cargo-fuzz's because cargo-fuzz needs
//! nightly.
//!
//! Each target runs for `TRIB_FUZZ_SECONDS` (default 3) and prints its
//! iterations, CPU time and findings to stderr. `scripts/fuzz 600` is the
//! long run. Checked-in inputs in `tests/fuzz/seeds/TARGET/` are replayed
//! first on every run, so a fixed finding stays fixed.

mod allowed_hosts;
mod driver;
mod manifest;
mod router;
mod runtime_config;

/// Runs one target for the budget and fails on any finding.
fn run(target: &driver::Target) {
    let report = driver::fuzz(target, driver::budget());
    assert!(report.iterations > 0, "no input ran");
    driver::assert_no_findings(target.name, &report);
}

#[test]
fn fuzz_manifest() {
    run(&manifest::target());
}

#[test]
fn fuzz_router() {
    run(&router::target());
}

#[test]
fn fuzz_allowed_hosts() {
    run(&allowed_hosts::target());
}

#[test]
fn fuzz_runtime_config() {
    run(&runtime_config::target());
}

/// The driver's own promise: a panicking target is reported, with the
/// input shrunk to what makes it panic; otherwise every fuzz test above
/// could pass while catching nothing.
#[test]
fn driver_reports_a_planted_bug() {
    fn planted(input: &str) -> String {
        assert!(!input.contains("{{"), "planted bug");
        input.len().min(3).to_string()
    }
    fn generate(u: &mut arbitrary::Unstructured<'_>) -> arbitrary::Result<String> {
        Ok(u.choose(&["a", "b{", "{c"])?.to_string())
    }
    let target = driver::Target {
        name: "planted",
        seeds: vec!["hello".to_owned()],
        dictionary: &["{", "x"],
        run: planted,
        generate,
    };
    let report = driver::fuzz(&target, std::time::Duration::from_millis(300));
    assert_eq!(report.findings.len(), 1, "the planted bug is found once");
    assert_eq!(report.findings[0].input, "{{", "and shrunk to its cause");
    assert!(report.findings[0].message.contains("planted bug"));
}
