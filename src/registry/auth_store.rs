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
