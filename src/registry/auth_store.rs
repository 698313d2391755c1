//! Stored registry credentials, Docker-compatible: `auths` entries with base64 `user:password`.
//!
//! Read from dockling's own file (`~/.dockling/config.json`) and then Docker's
//! (`~/.docker/config.json`), so a `docker login` works for dockling too. A credential helper
//! named there (`credHelpers` per registry, or `credsStore` for all) is asked first, with
//! Docker's protocol: `docker-credential-<name> get|store|erase`, the server on stdin, JSON
//! `{ServerURL, Username, Secret}` back.

use std::collections::HashMap;
use std::path::PathBuf;

use serde::Deserialize;

use super::RegistryError;

/// What dockling reads of a Docker config file. The file is Docker's too and holds more
/// (`proxies`, `psFormat`, ...): `save` and `remove` edit it as a JSON document, so whatever
/// else it holds, in its order, survives.
#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct AuthFile {
    /// Registry (as `key` names it) to `{"auth": base64("user:password")}`.
    #[serde(default)]
    auths: HashMap<String, AuthEntry>,
    /// Registry to the credential helper for it.
    #[serde(default)]
    cred_helpers: HashMap<String, String>,
    /// The credential helper for every registry.
    creds_store: Option<String>,
}

/// One `auths` entry.
#[derive(Deserialize)]
struct AuthEntry {
    auth: Option<String>,
}

/// What `docker-credential-<helper> get` prints.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct HelperAnswer {
    username: String,
    secret: String,
}

impl AuthFile {
    /// The typed view of a config file already read as JSON: empty when its fields are not
    /// what Docker writes (they are then ignored, as Docker's own parser would refuse them).
    fn of(doc: &serde_json::Value) -> AuthFile {
        AuthFile::deserialize(doc).unwrap_or_default()
    }

    /// The credential helper this file names for `registry`, if any.
    fn helper(&self, registry: &str) -> Option<String> {
        self.cred_helpers
            .get(&key(registry))
            .or(self.cred_helpers.get(registry))
            .or(self.creds_store.as_ref())
            .filter(|h| !h.is_empty())
            .cloned()
    }
}

fn files() -> Vec<PathBuf> {
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/root"));
    vec![
        home.join(".dockling/config.json"),
        home.join(".docker/config.json"),
    ]
}

/// Docker's `auth` fields are standard base64 with padding (Go's `base64.StdEncoding`), which
/// is what `save` writes. Reading is a little more forgiving, as dockling always was: missing
/// padding and non-zero trailing bits are accepted (Go accepts the latter too), so a file a
/// person or another tool wrote by hand still works.
const AUTH_DECODE: base64::engine::GeneralPurpose = base64::engine::GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    base64::engine::GeneralPurposeConfig::new()
        .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent)
        .with_decode_allow_trailing_bits(true),
);

fn decode_b64(s: &str) -> Option<Vec<u8>> {
    use base64::Engine;
    AUTH_DECODE.decode(s).ok()
}

fn encode_b64(data: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(data)
}

fn read_file(path: &std::path::Path) -> Option<AuthFile> {
    serde_json::from_slice(&std::fs::read(path).ok()?).ok()
}

/// Run `docker-credential-<helper> <action>` with `input` on stdin.
fn run_helper(helper: &str, action: &str, input: &str) -> crate::error::Result<String> {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let program = format!("docker-credential-{helper}");
    let mut child = Command::new(&program)
        .arg(action)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|source| RegistryError::HelperMissing {
            program: program.clone(),
            helper: helper.to_string(),
            source,
        })?;
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(input.as_bytes());
    }
    let out = child
        .wait_with_output()
        .map_err(|source| RegistryError::HelperWait {
            program: program.clone(),
            source,
        })?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    if !out.status.success() {
        return Err(RegistryError::HelperFailed {
            program,
            action: action.to_string(),
            output: format!(
                "{}{}",
                text.trim(),
                String::from_utf8_lossy(&out.stderr).trim()
            ),
        }
        .into());
    }
    Ok(text)
}

/// (user, password) for `registry`, if a config file or its credential helper has them. A
/// helper a file names is asked first; then that file's `auths`.
pub fn lookup(registry: &str) -> Option<(String, String)> {
    let keys = if registry == crate::image::reference::DEFAULT_REGISTRY {
        vec![
            "https://index.docker.io/v1/".to_string(),
            "docker.io".to_string(),
        ]
    } else {
        vec![
            registry.to_string(),
            format!("https://{registry}"),
            format!("http://{registry}"),
        ]
    };
    let files: Vec<AuthFile> = files().iter().filter_map(|f| read_file(f)).collect();
    for file in &files {
        if let Some(helper) = file.helper(registry) {
            if let Ok(text) = run_helper(&helper, "get", &key(registry)) {
                let got: HelperAnswer = serde_json::from_str(&text).ok()?;
                return Some((got.username, got.secret));
            }
        }
    }
    for file in &files {
        for k in &keys {
            if let Some(auth) = file.auths.get(k).and_then(|a| a.auth.as_deref()) {
                let raw = decode_b64(auth)?;
                let s = String::from_utf8(raw).ok()?;
                let (u, p) = s.split_once(':')?;
                return Some((u.to_string(), p.to_string()));
            }
        }
    }
    None
}

/// The key Docker uses for a registry in `auths`.
fn key(registry: &str) -> String {
    if registry == crate::image::reference::DEFAULT_REGISTRY {
        "https://index.docker.io/v1/".into()
    } else {
        registry.to_string()
    }
}

/// dockling's own credentials file.
pub fn own_file() -> PathBuf {
    files().remove(0)
}

/// Where `save` put the credentials.
pub enum Stored {
    /// In this file, base64 (which is not encryption).
    File(PathBuf),
    /// With this credential helper.
    Helper(String),
}

/// Store credentials for `registry`: with the credential helper dockling's own file names, or
/// else in that file (mode 0600).
pub fn save(registry: &str, user: &str, password: &str) -> crate::error::Result<Stored> {
    let path = own_file();
    let mut v = read_own(&path)?;
    if let Some(helper) = AuthFile::of(&v).helper(registry) {
        let input =
            serde_json::json!({"ServerURL": key(registry), "Username": user, "Secret": password});
        run_helper(&helper, "store", &input.to_string())?;
        return Ok(Stored::Helper(helper));
    }
    v["auths"][key(registry)] =
        serde_json::json!({ "auth": encode_b64(format!("{user}:{password}").as_bytes()) });
    write_private(&path, &serde_json::to_vec_pretty(&v).expect("json"))?;
    Ok(Stored::File(path))
}

/// Fail early (before asking for a password) when dockling's own file cannot be updated.
pub fn check_own_file() -> crate::error::Result<()> {
    read_own(&own_file()).map(|_| ())
}

/// dockling's own file as a JSON document (edited as one: see [`AuthFile`]): `{}` when there
/// is none yet, an error when it cannot be read or parsed (rewriting it would lose whatever
/// it holds).
fn read_own(path: &std::path::Path) -> crate::error::Result<serde_json::Value> {
    use crate::error::Error;
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(serde_json::json!({})),
        Err(e) => return Err(Error::io("read", path)(e)),
    };
    match serde_json::from_slice::<serde_json::Value>(&bytes) {
        Ok(v) if v.is_object() => Ok(v),
        Ok(_) => Err(RegistryError::AuthFileNotObject {
            path: path.to_path_buf(),
        }
        .into()),
        Err(e) => Err(RegistryError::AuthFileInvalid {
            path: path.to_path_buf(),
            reason: e.to_string(),
        }
        .into()),
    }
}

/// Replace `path` with `data`, readable by its owner only from the first byte: the temporary
/// file is created 0600 (open(2) with O_CREAT|O_EXCL and the mode, so no other user can open
/// it in between and an existing file or symlink at that name is never written through),
/// synced, then renamed over the old one. On any failure it is removed again.
fn write_private(path: &std::path::Path, data: &[u8]) -> crate::error::Result<()> {
    use crate::error::Error;
    use std::io::Write;
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    if let Some(dir) = path.parent() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(Error::io("create", dir))?;
    }
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    let _ = std::fs::remove_file(&tmp);
    let written = (|| {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(Error::io("create", &tmp))?;
        f.write_all(data).map_err(Error::io("write", &tmp))?;
        f.sync_all().map_err(Error::io("sync", &tmp))?;
        std::fs::rename(&tmp, path).map_err(Error::io("rename", path))
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written
}

/// Forget credentials for `registry` (in its helper or dockling's own file); true if there
/// were any.
pub fn remove(registry: &str) -> crate::error::Result<bool> {
    let path = own_file();
    let mut v = read_own(&path)?;
    if let Some(helper) = AuthFile::of(&v).helper(registry) {
        return Ok(run_helper(&helper, "erase", &key(registry)).is_ok());
    }
    let had = v["auths"]
        .as_object_mut()
        .and_then(|a| a.remove(&key(registry)))
        .is_some();
    if had {
        write_private(&path, &serde_json::to_vec_pretty(&v).expect("json"))?;
    }
    Ok(had)
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_credentials_file_is_0600_and_an_unparsable_one_is_left_alone() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("d/config.json");
        super::write_private(&path, b"{}").unwrap();
        let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(path.parent().unwrap()), 0o700);
        // An older world-readable file is replaced by a 0600 one.
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        super::write_private(&path, b"{\"auths\":{}}").unwrap();
        assert_eq!(mode(&path), 0o600);
        assert_eq!(std::fs::read(&path).unwrap(), b"{\"auths\":{}}");
        let left: Vec<_> = std::fs::read_dir(path.parent().unwrap()).unwrap().collect();
        assert_eq!(left.len(), 1, "no temporary file left: {left:?}");
        std::fs::write(&path, b"{ not json").unwrap();
        let err = super::read_own(&path).unwrap_err().to_string();
        assert!(
            err.contains("is not valid JSON") && err.contains("move it away"),
            "{err}"
        );
        assert!(super::read_own(&dir.path().join("none.json"))
            .unwrap()
            .is_object());
    }

    #[test]
    fn base64_decodes() {
        assert_eq!(
            super::decode_b64("c3R1ZGVudDpzZWNyZXQ=").unwrap(),
            b"student:secret"
        );
    }

    #[test]
    fn encode_then_decode() {
        for s in ["a", "ab", "abc", "student:secret"] {
            assert_eq!(
                super::decode_b64(&super::encode_b64(s.as_bytes())).unwrap(),
                s.as_bytes()
            );
        }
        assert_eq!(super::encode_b64(b"student:secret"), "c3R1ZGVudDpzZWNyZXQ=");
    }

    #[test]
    fn auth_field_known_vector_both_ways() {
        assert_eq!(super::encode_b64(b"user:pass"), "dXNlcjpwYXNz");
        assert_eq!(super::decode_b64("dXNlcjpwYXNz").unwrap(), b"user:pass");
        // Padding is written as Docker writes it ...
        assert_eq!(super::encode_b64(b"user:pas"), "dXNlcjpwYXM=");
        assert_eq!(super::encode_b64(b"user:pa"), "dXNlcjpwYQ==");
        // ... and read with or without it, as dockling always did.
        assert_eq!(super::decode_b64("dXNlcjpwYQ==").unwrap(), b"user:pa");
        assert_eq!(super::decode_b64("dXNlcjpwYQ").unwrap(), b"user:pa");
        // Not base64: no credentials rather than garbage ones.
        assert_eq!(super::decode_b64("dXNl*jpw"), None);
        assert_eq!(super::decode_b64("dXNlc"), None);
    }
}
