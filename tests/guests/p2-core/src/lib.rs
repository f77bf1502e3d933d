//! Re-links `hello-p2` as a core module; see Cargo.toml.
pub use hello_p2 as _;
