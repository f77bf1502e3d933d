//! Registry credentials: what `trib registry login` saved, else Docker's
//! credential file, else anonymous. Passwords never reach a log or an
//! error message.

use std::path::{Path, PathBuf};

use base64::Engine as _;
use oci_client::secrets::RegistryAuth;
use serde_json::{Map, Value};

/// Why credentials cannot be saved.
#[derive(Debug, thiserror::Error)]
#[error("{}: {message}", .path.display())]
pub struct AuthError {
    path: PathBuf,
    message: String,
}

/// The file `trib registry login` writes (Docker's `config.json` layout,
/// readable only by its owner).
pub fn trib_auth_file() -> Option<PathBuf> {
    let config = std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))?;
    Some(config.join("tributary/registry-auth.json"))
}

/// Docker's credential file (`$DOCKER_CONFIG/config.json`, default
/// `~/.docker/config.json`).
pub fn docker_config_file() -> Option<PathBuf> {
    std::env::var_os("DOCKER_CONFIG")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".docker")))
        .map(|d| d.join("config.json"))
}

/// The credentials for `registry` (`host[:port]`): trib's own file first,
/// then Docker's; anonymous when neither has an entry.
pub fn resolve(registry: &str) -> RegistryAuth {
    for file in [trib_auth_file(), docker_config_file()]
        .into_iter()
        .flatten()
    {
        if let Some(auth) = lookup(&file, registry) {
            tracing::debug!(registry, file = %file.display(), "using saved registry credentials");
            return auth;
        }
    }
    RegistryAuth::Anonymous
}

/// The `auths` entry for `registry` in a Docker-format file.
fn lookup(file: &Path, registry: &str) -> Option<RegistryAuth> {
    let text = std::fs::read_to_string(file).ok()?;
    let json: Value = serde_json::from_str(&text).ok()?;
    let auths = json.get("auths")?.as_object()?;
    let keys = [
        registry.to_owned(),
        format!("https://{registry}"),
        format!("http://{registry}"),
        // Docker Hub's historical key.
        if registry == "docker.io" || registry == "index.docker.io" {
            "https://index.docker.io/v1/".to_owned()
        } else {
            String::new()
        },
    ];
    let entry = keys.iter().find_map(|k| auths.get(k))?;
    if let (Some(user), Some(pass)) = (
        entry.get("username").and_then(Value::as_str),
        entry.get("password").and_then(Value::as_str),
    ) {
        return Some(RegistryAuth::Basic(user.to_owned(), pass.to_owned()));
    }
    let encoded = entry.get("auth")?.as_str()?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .ok()?;
    let decoded = String::from_utf8(decoded).ok()?;
    let (user, pass) = decoded.split_once(':')?;
    Some(RegistryAuth::Basic(user.to_owned(), pass.to_owned()))
}

/// Saves `user`/`password` for `registry` in `file`, keeping its other
/// entries; the file is created owner-only.
pub fn save(file: &Path, registry: &str, user: &str, password: &str) -> Result<(), AuthError> {
    let err = |message: String| AuthError {
        path: file.to_owned(),
        message,
    };
    let mut json: Value = match std::fs::read_to_string(file) {
        Ok(text) => serde_json::from_str(&text)
            .map_err(|e| err(format!("is not JSON ({e}); fix or remove it")))?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Value::Object(Map::new()),
        Err(e) => return Err(err(format!("cannot read it: {e}"))),
    };
    let Some(root) = json.as_object_mut() else {
        return Err(err("is not a JSON object; fix or remove it".into()));
    };
    let auths = root
        .entry("auths")
        .or_insert_with(|| Value::Object(Map::new()));
    let Some(auths) = auths.as_object_mut() else {
        return Err(err(
            "its \"auths\" is not an object; fix or remove it".into()
        ));
    };
    let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    auths.insert(registry.to_owned(), serde_json::json!({ "auth": token }));
    if let Some(dir) = file.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| err(format!("cannot create its directory: {e}")))?;
    }
    let text = serde_json::to_string_pretty(&json).map_err(|e| err(e.to_string()))?;
    write_private(file, text.as_bytes()).map_err(|e| err(format!("cannot write it: {e}")))
}

fn write_private(file: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let tmp = file.with_extension("tmp");
    let mut out = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)?;
    out.write_all(bytes)?;
    out.sync_all()?;
    std::fs::rename(&tmp, file)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saved_credentials_are_found_and_other_entries_kept() {
        let dir = tempfile::tempdir().expect("dir");
        let file = dir.path().join("auth.json");
        std::fs::write(
            &file,
            r#"{"auths": {"other.example": {"auth": "dTpw"}}, "credsStore": "x"}"#,
        )
        .expect("seed");
        save(&file, "127.0.0.1:5000", "ada", "s3cret:with:colons").expect("save");
        match lookup(&file, "127.0.0.1:5000") {
            Some(RegistryAuth::Basic(u, p)) => {
                assert_eq!((u.as_str(), p.as_str()), ("ada", "s3cret:with:colons"))
            }
            _ => panic!("credentials not found"),
        }
        assert!(matches!(
            lookup(&file, "other.example"),
            Some(RegistryAuth::Basic(..))
        ));
        assert!(lookup(&file, "missing.example").is_none());
        let text = std::fs::read_to_string(&file).expect("read");
        assert!(text.contains("credsStore"), "other settings kept: {text}");
        assert!(
            !text.contains("s3cret"),
            "the password is encoded, not plain: {text}"
        );
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&file).expect("meta").permissions().mode();
        assert_eq!(mode & 0o077, 0, "owner-only: {mode:o}");
    }
}
