//! Stored registry credentials, Docker-compatible: `auths` entries with base64 `user:password`.
//!
//! Read from dockling's own file (`~/.dockling/config.json`) and then Docker's
//! (`~/.docker/config.json`), so a `docker login` works for dockling too.

use std::path::PathBuf;

fn files() -> Vec<PathBuf> {
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/root"));
    vec![
        home.join(".dockling/config.json"),
        home.join(".docker/config.json"),
    ]
}

fn decode_b64(s: &str) -> Option<Vec<u8>> {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = Vec::new();
    let mut acc = 0u32;
    let mut bits = 0;
    for c in s.bytes().filter(|c| *c != b'=') {
        let v = T.iter().position(|t| *t == c)? as u32;
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    Some(out)
}

/// (user, password) for `registry`, if a config file has them.
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
    for f in files() {
        let Ok(text) = std::fs::read(&f) else {
            continue;
        };
        let Ok(v) = serde_json::from_slice::<serde_json::Value>(&text) else {
            continue;
        };
        for k in &keys {
            if let Some(auth) = v["auths"][k]["auth"].as_str() {
                let raw = decode_b64(auth)?;
                let s = String::from_utf8(raw).ok()?;
                let (u, p) = s.split_once(':')?;
                return Some((u.to_string(), p.to_string()));
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    #[test]
    fn base64_decodes() {
        assert_eq!(
            super::decode_b64("c3R1ZGVudDpzZWNyZXQ=").unwrap(),
            b"student:secret"
        );
    }
}

fn encode_b64(data: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (b[0] as u32) << 16 | (b[1] as u32) << 8 | b[2] as u32;
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(T[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
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

/// Store credentials for `registry` (mode 0600), returning the file written.
pub fn save(registry: &str, user: &str, password: &str) -> crate::error::Result<PathBuf> {
    use crate::error::Error;
    let path = own_file();
    let mut v: serde_json::Value = std::fs::read(&path)
        .ok()
        .and_then(|t| serde_json::from_slice(&t).ok())
        .unwrap_or_else(|| serde_json::json!({}));
    v["auths"][key(registry)] =
        serde_json::json!({ "auth": encode_b64(format!("{user}:{password}").as_bytes()) });
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(Error::io("create", dir))?;
    }
    crate::container::write_atomic(&path, &serde_json::to_vec_pretty(&v).expect("json"))?;
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
        .map_err(Error::io("chmod", &path))?;
    Ok(path)
}

/// Forget credentials for `registry` in dockling's own file; true if there were any.
pub fn remove(registry: &str) -> crate::error::Result<bool> {
    let path = own_file();
    let Ok(text) = std::fs::read(&path) else {
        return Ok(false);
    };
    let mut v: serde_json::Value =
        serde_json::from_slice(&text).unwrap_or_else(|_| serde_json::json!({}));
    let had = v["auths"]
        .as_object_mut()
        .and_then(|a| a.remove(&key(registry)))
        .is_some();
    if had {
        crate::container::write_atomic(&path, &serde_json::to_vec_pretty(&v).expect("json"))?;
    }
    Ok(had)
}

#[cfg(test)]
mod roundtrip {
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
}
