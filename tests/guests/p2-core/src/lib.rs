//! Re-links `hello-p2` as a core module; see Cargo.toml.
extern crate hello_p2;
