//! The distribution API client: talk to a registry (Docker Hub, a mirror, the lab's
//! `docker-registry` on loopback) the way `docker pull` does.
//!
//! Blocking `reqwest` on the CLI's own thread (plus a few scoped threads for parallel layer
//! downloads): pulling never forks, so the single-threaded rule of the container start does
//! not apply here. Authentication follows the registry's `WWW-Authenticate` challenge:
//! `Basic` (credentials sent as asked) or `Bearer` (a token fetched from the named realm for
//! the service and scope, cached per scope). Every byte received is checked against its
//! digest before it is stored, and every read is bounded (a registry is untrusted input too).
//! Credentials and tokens go to the registry's own origin only (`same_origin`).

pub mod auth;
pub mod auth_store;
pub mod error;
pub mod pull;
pub mod push;
pub mod trace;

use std::time::Duration;

use reqwest::blocking::{Client as Http, RequestBuilder, Response};
use reqwest::StatusCode;

use crate::error::{Error, Result};
use crate::image::reference::{Reference, DEFAULT_REGISTRY};
use auth::Auth;
pub use error::RegistryError;

/// The media types a manifest request accepts, most preferred first.
pub const MANIFEST_TYPES: &[&str] = &[
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
];

/// The largest manifest accepted: distribution refuses to store a larger one (its manifest
/// PUT handler reads at most 4 MiB) and containers/image (podman, skopeo) reads no more.
pub const MAX_MANIFEST: u64 = 4 << 20;

/// The largest image config accepted. containers/image stops at 4 MiB; a config grows with
/// its history and labels, so twice that leaves room without letting a registry fill memory.
pub const MAX_CONFIG: u64 = 8 << 20;

/// A connection to one registry.
pub struct Registry {
    http: Http,
    /// Where it is reached (`https://registry-1.docker.io`, `http://127.0.0.1:5000`).
    pub base: String,
    /// The registry as named in references (`docker.io`, `localhost:5000`).
    pub name: String,
    auth: Auth,
}

/// Where a registry name is reached: Docker Hub's API host, plain HTTP for loopback and the
/// configured insecure registries, HTTPS otherwise.
pub fn endpoint(registry: &str, insecure: &[String]) -> String {
    let host = if registry == DEFAULT_REGISTRY {
        "registry-1.docker.io"
    } else {
        registry
    };
    let plain = host.starts_with("localhost")
        || host.starts_with("127.")
        || host.starts_with("[::1]")
        || insecure.iter().any(|i| i == registry);
    format!("{}://{host}", if plain { "http" } else { "https" })
}

/// True if `url` is on the registry at `base`: same scheme, host and port (a URL's origin,
/// as browsers scope credentials). Anything else never sees the registry's credentials.
pub fn same_origin(base: &str, url: &reqwest::Url) -> bool {
    let Ok(base) = reqwest::Url::parse(base) else {
        return false;
    };
    base.scheme() == url.scheme()
        && base.host_str() == url.host_str()
        && base.port_or_known_default() == url.port_or_known_default()
}

/// True if a redirect from `from` to `to` leaves https for plain text.
pub fn is_downgrade(from: &reqwest::Url, to: &reqwest::Url) -> bool {
    from.scheme() == "https" && to.scheme() != "https"
}

/// The registry name a mirror URL is known by in stored credentials (`host[:port]`), so a
/// mirror gets its own credentials, never Docker Hub's.
pub fn mirror_name(base: &str) -> String {
    match reqwest::Url::parse(base) {
        Ok(u) => match (u.host_str(), u.port()) {
            (Some(h), Some(p)) => format!("{h}:{p}"),
            (Some(h), None) => h.to_string(),
            _ => base.to_string(),
        },
        Err(_) => base.to_string(),
    }
}

impl Registry {
    /// A client for the registry of `reference` (or `base` to override where it is reached).
    pub fn connect(
        name: &str,
        base: String,
        credentials: Option<(String, String)>,
    ) -> Result<Registry> {
        let http = Http::builder()
            .user_agent(concat!("dockling/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(300))
            // reqwest drops Authorization when a redirect leaves the host or port (blob
            // storage); a redirect from https down to plain http is refused outright, since
            // on the same host and port it would carry the credentials in clear text.
            .redirect(reqwest::redirect::Policy::custom(|attempt| {
                let downgrade = attempt
                    .previous()
                    .last()
                    .is_some_and(|from| is_downgrade(from, attempt.url()));
                if downgrade {
                    let to = attempt.url().to_string();
                    return attempt.error(format!(
                        "the registry redirects from https to {to}: refusing to go on in plain text"
                    ));
                }
                if let Some(from) = attempt.previous().last() {
                    trace::exchange(
                        "blob.redirect",
                        "GET",
                        from.as_str(),
                        attempt.status().as_u16(),
                        Duration::ZERO,
                    );
                }
                if attempt.previous().len() > 5 {
                    attempt.error("more than 5 redirects")
                } else {
                    attempt.follow()
                }
            }))
            .build()
            .map_err(|e| RegistryError::Client(e.to_string()))?;
        Ok(Registry {
            http,
            base,
            name: name.to_string(),
            auth: Auth::new(credentials),
        })
    }

    /// Send the request `req` builds (again after answering an authentication challenge once,
    /// or after waiting as a 429 asks), tracing each exchange. Credentials and tokens go only
    /// to this registry's own origin: a request elsewhere (an upload `Location` on another
    /// host) goes without them, and a challenge from there is not answered.
    pub fn send(&self, scope: &str, req: impl Fn(&Http) -> RequestBuilder) -> Result<Response> {
        let mut tries = 0;
        loop {
            let request = req(&self.http).build().map_err(|e| self.net_error(e))?;
            let own = same_origin(&self.base, request.url());
            let request = if own {
                self.auth
                    .apply(
                        RequestBuilder::from_parts(self.http.clone(), request),
                        scope,
                    )
                    .build()
                    .map_err(|e| self.net_error(e))?
            } else {
                trace::note(&format!(
                    "{} is not {}: sent without credentials",
                    request.url(),
                    self.base
                ));
                request
            };
            let method = request.method().to_string();
            let path = request.url().path().to_string();
            let started = std::time::Instant::now();
            let resp = self.http.execute(request).map_err(|e| self.net_error(e))?;
            let content_type = resp
                .headers()
                .get(reqwest::header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            let status = resp.status().as_u16();
            trace::exchange(
                trace::kind(&method, &path, status, content_type),
                &method,
                resp.url().as_str(),
                status,
                started.elapsed(),
            );
            match resp.status() {
                StatusCode::UNAUTHORIZED if tries == 0 && own => {
                    let challenge = resp
                        .headers()
                        .get(reqwest::header::WWW_AUTHENTICATE)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("")
                        .to_string();
                    self.auth
                        .answer(&self.http, &self.base, &challenge, scope)?;
                    tries += 1;
                }
                StatusCode::TOO_MANY_REQUESTS if tries < 3 => {
                    let wait = resp
                        .headers()
                        .get(reqwest::header::RETRY_AFTER)
                        .and_then(|v| v.to_str().ok())
                        .and_then(|s| s.parse::<u64>().ok())
                        .unwrap_or(2)
                        .min(30);
                    std::thread::sleep(Duration::from_secs(wait));
                    tries += 1;
                }
                _ => return Ok(resp),
            }
        }
    }

    fn net_error(&self, e: reqwest::Error) -> Error {
        // reqwest's Display stops at "error sending request"; the reason is in its causes.
        let mut causes = vec![e.to_string()];
        let mut source = std::error::Error::source(&e);
        while let Some(s) = source {
            causes.push(s.to_string());
            source = s.source();
        }
        let cause = causes[causes.len().saturating_sub(2)..].join(": ");
        let hint = if self.name == DEFAULT_REGISTRY && self.base.contains("docker.io") {
            " (without internet, `dockling lab up` serves busybox, httpd and hello-world from this machine)"
        } else {
            ""
        };
        RegistryError::Unreachable {
            registry: self.name.clone(),
            base: self.base.clone(),
            cause,
            hint,
        }
        .into()
    }

    /// `GET /v2/<repo>/<kind>/<reference>` URL.
    pub fn url(&self, repo: &str, kind: &str, reference: &str) -> String {
        format!("{}/v2/{repo}/{kind}/{reference}", self.base)
    }
}

/// The body of a distribution API error: `{"errors": [{"code": …, "message": …}]}`.
#[derive(serde::Deserialize)]
struct ErrorBody {
    errors: Vec<ErrorEntry>,
}

/// One error of an [`ErrorBody`] (its `detail` is not shown: its shape differs per code).
#[derive(serde::Deserialize)]
struct ErrorEntry {
    code: String,
    #[serde(default)]
    message: String,
}

/// The registry's error codes and messages when `head` is the API's JSON error document
/// (`MANIFEST_UNKNOWN: manifest unknown`), else nothing.
fn api_errors(head: &[u8]) -> Option<String> {
    match serde_json::from_slice::<ErrorBody>(head) {
        Ok(b) if !b.errors.is_empty() => Some(
            b.errors
                .iter()
                .map(|e| match e.message.as_str() {
                    "" => e.code.clone(),
                    m => format!("{}: {m}", e.code),
                })
                .collect::<Vec<_>>()
                .join("; ")
                .chars()
                .take(300)
                .collect(),
        ),
        _ => None,
    }
}

/// What the first bytes of an error answer say: the registry's error codes and messages
/// (`MANIFEST_UNKNOWN: manifest unknown`) when it is the API's JSON, else its first 300
/// characters as they came (an HTML page, a proxy's text).
fn error_text(head: &[u8]) -> String {
    api_errors(head).unwrap_or_else(|| String::from_utf8_lossy(head).chars().take(300).collect())
}

/// The error for a manifest the registry does not have (404): [`RegistryError::NoSuchImage`],
/// naming where it was asked; any other status as [`status_error`] says it.
pub fn manifest_error(reference: &Reference, resp: Response) -> RegistryError {
    if resp.status() != StatusCode::NOT_FOUND {
        return status_error("manifest", reference, resp);
    }
    let registry = resp.url().origin().ascii_serialization();
    let mut head = Vec::new();
    let _ = std::io::Read::read_to_end(&mut std::io::Read::take(resp, 1024), &mut head);
    RegistryError::NoSuchImage {
        reference: reference.familiar_tagged(),
        registry,
        codes: api_errors(&head).unwrap_or_default(),
    }
}

/// The error for an unexpected HTTP status, with what the user can do.
pub fn status_error(what: &str, reference: &Reference, resp: Response) -> RegistryError {
    let status = resp.status();
    let familiar = reference.familiar();
    // The first bytes of the body say why; no more are read (a hostile registry could send
    // an error page without end).
    let mut head = Vec::new();
    let _ = std::io::Read::read_to_end(&mut std::io::Read::take(resp, 1024), &mut head);
    let body = error_text(&head);
    let (what, reference) = (what.to_string(), reference.to_string());
    match status {
        StatusCode::NOT_FOUND => RegistryError::NotFound {
            what,
            reference,
            body,
        },
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => RegistryError::AccessDenied {
            repository: familiar,
            status,
        },
        _ => RegistryError::Status {
            what,
            reference,
            status,
            body,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_follow_docker() {
        assert_eq!(endpoint("docker.io", &[]), "https://registry-1.docker.io");
        assert_eq!(endpoint("localhost:5000", &[]), "http://localhost:5000");
        assert_eq!(endpoint("127.0.0.1:5000", &[]), "http://127.0.0.1:5000");
        assert_eq!(
            endpoint("lab.example:5000", &["lab.example:5000".into()]),
            "http://lab.example:5000"
        );
        assert_eq!(endpoint("quay.io", &[]), "https://quay.io");
    }

    #[test]
    fn credentials_stay_on_their_origin() {
        let url = |s: &str| reqwest::Url::parse(s).unwrap();
        let base = "https://registry.example";
        assert!(same_origin(
            base,
            &url("https://registry.example/v2/a/blobs/uploads/1")
        ));
        assert!(same_origin(base, &url("https://registry.example:443/v2/")));
        // Another host, another port, plain http: none of them gets the credentials.
        assert!(!same_origin(
            base,
            &url("https://uploads.example/v2/a/blobs/uploads/1")
        ));
        assert!(!same_origin(
            base,
            &url("https://registry.example:8443/v2/")
        ));
        assert!(!same_origin(base, &url("http://registry.example/v2/")));
        assert!(!same_origin(
            base,
            &url("https://registry.example.evil/v2/")
        ));
        assert!(same_origin(
            "http://127.0.0.1:5000",
            &url("http://127.0.0.1:5000/v2/")
        ));
        assert!(!same_origin(
            "http://127.0.0.1:5000",
            &url("http://127.0.0.1:5001/v2/")
        ));
    }

    #[test]
    fn a_redirect_from_https_to_http_is_a_downgrade() {
        let url = |s: &str| reqwest::Url::parse(s).unwrap();
        assert!(is_downgrade(
            &url("https://r.example:5000/v2/"),
            &url("http://r.example:5000/b")
        ));
        assert!(!is_downgrade(
            &url("https://r.example/v2/"),
            &url("https://cdn.example/b")
        ));
        assert!(!is_downgrade(
            &url("http://127.0.0.1:5000/v2/"),
            &url("http://127.0.0.1:5001/b")
        ));
    }

    #[test]
    fn an_api_error_body_is_shown_by_its_codes_anything_else_as_it_came() {
        assert_eq!(
            error_text(br#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown","detail":{"Tag":"v1"}}]}"#),
            "MANIFEST_UNKNOWN: manifest unknown"
        );
        assert_eq!(
            error_text(br#"{"errors":[{"code":"NAME_UNKNOWN"},{"code":"DENIED","message":"no"}]}"#),
            "NAME_UNKNOWN; DENIED: no"
        );
        assert_eq!(error_text(b"<html>no such thing"), "<html>no such thing");
        assert_eq!(error_text(br#"{"errors":[]}"#), r#"{"errors":[]}"#);
    }

    #[test]
    fn mirrors_are_named_by_their_host() {
        assert_eq!(mirror_name("http://127.0.0.1:5000"), "127.0.0.1:5000");
        assert_eq!(mirror_name("https://mirror.gcr.io"), "mirror.gcr.io");
    }
}
