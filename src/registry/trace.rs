//! `pull --trace` / `push --trace`: every HTTP exchange with a registry, one line each, with
//! why it happens in plain words (the `http` part of the explanations catalog), on stderr.
//!
//! Downloads run on several threads, so this sink is a process-wide `Mutex` rather than the
//! container tracer (which lives on one thread). JSON lines have the schema:
//!
//! ```text
//! {"v":1,"type":"http","kind":"manifest","method":"GET","url":"…","status":200,
//!  "duration_us":1834,"explain":"…","spec":"…"}
//! ```
//! Credentials never appear: URLs are printed without user info, headers are not printed.

use std::io::Write;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use crate::trace::catalog::Catalog;
use crate::trace::Format;

struct Sink {
    format: Format,
    color: bool,
    explained: std::collections::BTreeSet<&'static str>,
}

static SINK: OnceLock<Mutex<Sink>> = OnceLock::new();

/// Turn tracing of registry exchanges on for this process (when a format is asked for).
pub fn enable(format: Option<Format>) {
    let Some(format) = format else { return };
    let _ = SINK.set(Mutex::new(Sink {
        format,
        color: crate::trace::stderr_color(),
        explained: Default::default(),
    }));
}

/// Every kind of exchange, keyed as in the catalog's `http` section.
pub const KINDS: &[&str] = &[
    "ping",
    "challenge",
    "token",
    "manifest",
    "manifest.index",
    "manifest.put",
    "blob",
    "blob.exists",
    "blob.redirect",
    "upload.start",
    "upload.mount",
    "upload.chunk",
    "upload.commit",
    "upload.cancel",
    "throttled",
];

/// What kind of exchange a request was, from its method, path and answer.
pub fn kind(method: &str, path: &str, status: u16, content_type: &str) -> &'static str {
    let path = path.split('?').next().unwrap_or(path);
    if status == 401 {
        return "challenge";
    }
    if status == 429 {
        return "throttled";
    }
    if (300..400).contains(&status) {
        return "blob.redirect";
    }
    if path.ends_with("/v2/") {
        return "ping";
    }
    if path.contains("/manifests/") {
        return match method {
            "PUT" => "manifest.put",
            _ if content_type.contains("index") || content_type.contains("list") => {
                "manifest.index"
            }
            _ => "manifest",
        };
    }
    if path.contains("/blobs/uploads/") {
        return match method {
            "POST" if status == 201 => "upload.mount",
            "POST" => "upload.start",
            "PATCH" => "upload.chunk",
            "DELETE" => "upload.cancel",
            _ => "upload.commit",
        };
    }
    if path.contains("/blobs/") {
        return if method == "HEAD" {
            "blob.exists"
        } else {
            "blob"
        };
    }
    "token"
}

/// The URL without credentials or query secrets (a token server may get `account=`).
fn clean(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(mut u) => {
            let _ = u.set_username("");
            let _ = u.set_password(None);
            u.to_string()
        }
        Err(_) => url.to_string(),
    }
}

/// A line of context between exchanges (which registry is asked, and why).
pub fn note(message: &str) {
    let Some(sink) = SINK.get() else { return };
    let sink = sink.lock().expect("trace sink");
    let line = match sink.format {
        Format::Json => {
            serde_json::json!({"v": 1, "type": "note", "process": "engine", "message": message})
                .to_string()
                + "\n"
        }
        Format::Pretty => format!(
            "   {}\n",
            crate::trace::paint(sink.color, "2", &format!("· {message}"))
        ),
    };
    let _ = std::io::stderr().lock().write_all(line.as_bytes());
}

/// Record one exchange (nothing when tracing is off).
pub fn exchange(kind: &'static str, method: &str, url: &str, status: u16, took: Duration) {
    let Some(sink) = SINK.get() else { return };
    let mut sink = sink.lock().expect("trace sink");
    let cat = Catalog::get();
    let exp = cat.http.get(kind);
    let url = clean(url);
    let line = match sink.format {
        Format::Json => {
            serde_json::json!({
                "v": 1, "type": "http", "kind": kind, "method": method, "url": url,
                "status": status, "duration_us": took.as_micros() as u64,
                "explain": exp.map(|e| e.text.as_str()), "spec": exp.map(|e| e.spec.as_str()),
            })
            .to_string()
                + "\n"
        }
        Format::Pretty => {
            let color = sink.color;
            let paint = |code: &str, s: &str| crate::trace::paint(color, code, s);
            let reason = reqwest::StatusCode::from_u16(status)
                .ok()
                .and_then(|s| s.canonical_reason())
                .unwrap_or("");
            let colour = if status < 300 {
                "32"
            } else if status < 400 {
                "36"
            } else {
                "33"
            };
            let mut out = format!(
                "   {} {} {} {}\n",
                paint("1;33", method),
                url,
                paint(colour, &format!("→ {status} {reason}")),
                paint("2", &format!("<{:.1} ms>", took.as_secs_f64() * 1000.0))
            );
            if let Some(e) = exp {
                if sink.explained.insert(kind) {
                    out.push_str(&format!(
                        "      {}\n",
                        paint("2", &format!("↳ {} — {}", e.text, e.spec))
                    ));
                }
            }
            out
        }
    };
    let _ = std::io::stderr().lock().write_all(line.as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exchanges_are_classified() {
        let index = "application/vnd.oci.image.index.v1+json";
        for (method, path, status, content_type, want) in [
            ("GET", "/v2/", 200, "", "ping"),
            (
                "GET",
                "/v2/library/httpd/manifests/latest",
                401,
                "",
                "challenge",
            ),
            (
                "GET",
                "/v2/library/httpd/manifests/latest",
                200,
                index,
                "manifest.index",
            ),
            ("PUT", "/v2/me/web/manifests/v1", 201, "", "manifest.put"),
            ("HEAD", "/v2/me/web/blobs/sha256:ab", 404, "", "blob.exists"),
            (
                "GET",
                "/v2/me/web/blobs/sha256:ab",
                307,
                "",
                "blob.redirect",
            ),
            (
                "POST",
                "/v2/me/web/blobs/uploads/?mount=x&from=y",
                201,
                "",
                "upload.mount",
            ),
            (
                "PATCH",
                "/v2/me/web/blobs/uploads/uuid",
                202,
                "",
                "upload.chunk",
            ),
            (
                "PUT",
                "/v2/me/web/blobs/uploads/uuid?digest=x",
                201,
                "",
                "upload.commit",
            ),
            ("GET", "/token", 200, "", "token"),
        ] {
            assert_eq!(
                kind(method, path, status, content_type),
                want,
                "{method} {path}"
            );
        }
    }

    #[test]
    fn every_kind_is_explained_in_every_language() {
        for (lang, src) in crate::trace::catalog::LANGUAGES {
            let cat = Catalog::parse(src).unwrap();
            for k in KINDS {
                assert!(cat.http.contains_key(*k), "catalog {lang} has no http.{k}");
            }
        }
    }

    #[test]
    fn urls_lose_their_credentials() {
        assert_eq!(
            clean("https://u:p@reg.example/v2/"),
            "https://reg.example/v2/"
        );
    }
}
