//! Spin's locked application (`spin.lock`, the `LockedApp` JSON of Spin's
//! `locked-app` crate): the fully resolved app an OCI package carries.
//!
//! Only the fields trib reads or writes are typed; everything else a lock
//! carries (metadata keys, trigger settings) passes through as JSON, so a
//! lock Spin wrote keeps its meaning.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A whole locked app.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct LockedApp {
    /// 0 unless the lock has host requirements (then 1); trib writes 0.
    pub spin_lock_version: u32,
    /// Features the host must support to run the app (trib refuses any).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub must_understand: Vec<String>,
    /// `name`, `version`, `description`, `authors`, `triggers`, `trigger`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub metadata: BTreeMap<String, Value>,
    /// Host requirements (e.g. `local_service_chaining`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub host_requirements: BTreeMap<String, Value>,
    /// Application variables.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub variables: BTreeMap<String, LockedVariable>,
    /// Triggers, each with its type's settings.
    pub triggers: Vec<LockedTrigger>,
    /// Components.
    pub components: Vec<LockedComponent>,
}

/// An application variable.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct LockedVariable {
    /// What it is for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The default; a variable without one is required.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<String>,
    /// Whether the value must be kept out of logs.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub secret: bool,
}

/// A trigger: its ID, type and the type's settings (for HTTP: `route`,
/// `component`, `executor`...).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct LockedTrigger {
    /// Unique in the app.
    pub id: String,
    /// `http`, `redis`, ...
    pub trigger_type: String,
    /// The trigger's table, `component` as the component's ID.
    pub trigger_config: Value,
}

/// A component, its source and files as content references.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct LockedComponent {
    /// The component ID.
    pub id: String,
    /// `description`, `allowed_outbound_hosts`, `key_value_stores`,
    /// `databases`, `ai_models`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub metadata: BTreeMap<String, Value>,
    /// The Wasm.
    pub source: LockedSource,
    /// Environment variables.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
    /// Files, each at a path relative to the guest's `/`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<ContentPath>,
    /// Component variables: name to template.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub config: BTreeMap<String, String>,
    /// Dependencies left uncomposed (trib composes before pushing, as Spin
    /// does by default, so it writes none and refuses a lock with any).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub dependencies: BTreeMap<String, Value>,
    /// Host requirements of this component.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub host_requirements: BTreeMap<String, Value>,
}

/// A component's Wasm: its media type and where its bytes are.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct LockedSource {
    /// `application/wasm`.
    pub content_type: String,
    /// The bytes.
    #[serde(flatten)]
    pub content: ContentRef,
}

/// A file of a component, at `path` under the guest's `/`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ContentPath {
    /// The bytes.
    #[serde(flatten)]
    pub content: ContentRef,
    /// Relative to `/` in the guest, `/`-separated.
    pub path: String,
}

/// Where content is: inline (base64, for small files), by digest (a layer
/// of the package), or at a URL (only in locks on disk, never pushed).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct ContentRef {
    /// A URL (`file://...` while building the lock).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// The bytes themselves, base64 in JSON.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "base64_bytes"
    )]
    pub inline: Option<Vec<u8>>,
    /// `sha256:<hex>`; the bytes must match it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
}

/// Standard base64 for `inline`, as Spin writes it.
mod base64_bytes {
    use base64::Engine as _;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(value: &Option<Vec<u8>>, s: S) -> Result<S::Ok, S::Error> {
        match value {
            Some(bytes) => {
                s.serialize_str(&base64::engine::general_purpose::STANDARD.encode(bytes))
            }
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<u8>>, D::Error> {
        let Some(text) = Option::<String>::deserialize(d)? else {
            return Ok(None);
        };
        base64::engine::general_purpose::STANDARD
            .decode(text)
            .map(Some)
            .map_err(serde::de::Error::custom)
    }
}

/// `sha256:<hex>` of `bytes`, the OCI digest form.
pub fn sha256_digest(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    let hash = sha2::Sha256::digest(bytes);
    let mut out = String::with_capacity(7 + 64);
    out.push_str("sha256:");
    for b in hash {
        out.push_str(&format!("{b:02x}"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lock_spin_wrote_reads_and_keeps_unknown_metadata() {
        let json = r#"{
          "spin_lock_version": 1,
          "metadata": {"name": "hello", "trigger": {"type": "http"}, "origin": "file:///x/spin.toml"},
          "triggers": [{"id": "trigger-hello", "trigger_type": "http",
                        "trigger_config": {"component": "hello", "route": "/..."}}],
          "components": [{"id": "hello",
                          "metadata": {"allowed_outbound_hosts": []},
                          "source": {"content_type": "application/wasm", "digest": "sha256:ab"},
                          "files": [{"inline": "aGk=", "digest": "sha256:cd", "path": "a/b.txt"}]}],
          "never_heard_of": 3
        }"#;
        let lock: LockedApp = serde_json::from_str(json).expect("lock");
        assert_eq!(
            lock.components[0].files[0].content.inline.as_deref(),
            Some(&b"hi"[..])
        );
        assert_eq!(lock.metadata["origin"], "file:///x/spin.toml");
        let again: LockedApp =
            serde_json::from_slice(&serde_json::to_vec(&lock).expect("json")).expect("reparse");
        assert_eq!(again, lock);
    }

    #[test]
    fn digests_are_oci_sha256() {
        assert_eq!(
            sha256_digest(b""),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }
}
