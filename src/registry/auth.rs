//! Registry authentication: `Basic` and `Bearer` token challenges (distribution's token spec).

use std::collections::HashMap;
use std::sync::Mutex;

use reqwest::blocking::{Client, RequestBuilder};

use super::RegistryError;
use crate::error::Result;

/// The largest token response accepted.
const MAX_TOKEN: usize = 1 << 20;

/// What the registry asked for and what we answered.
pub struct Auth {
    credentials: Option<(String, String)>,
    basic: Mutex<bool>,
    tokens: Mutex<HashMap<String, String>>,
}

/// A token server's answer (distribution's token spec): `token`, or OAuth2's `access_token`
/// (the spec allows either; Docker Hub sends both).
#[derive(serde::Deserialize)]
struct TokenAnswer {
    token: Option<String>,
    access_token: Option<String>,
}

/// Parse `Bearer realm="…",service="…",scope="…"` into (scheme, parameters).
pub fn parse_challenge(header: &str) -> (String, HashMap<String, String>) {
    let (scheme, rest) = header.trim().split_once(' ').unwrap_or((header.trim(), ""));
    let mut params = HashMap::new();
    let mut rest = rest.trim();
    while !rest.is_empty() {
        let Some((key, after)) = rest.split_once('=') else {
            break;
        };
        let key = key
            .trim()
            .trim_start_matches(',')
            .trim()
            .to_ascii_lowercase();
        let after = after.trim_start();
        let (value, next) = if let Some(q) = after.strip_prefix('"') {
            match q.find('"') {
                Some(end) => (&q[..end], &q[end + 1..]),
                None => (q, ""),
            }
        } else {
            match after.find(',') {
                Some(end) => (&after[..end], &after[end..]),
                None => (after, ""),
            }
        };
        params.insert(key, value.to_string());
        rest = next.trim_start_matches(',').trim();
    }
    (scheme.to_ascii_lowercase(), params)
}

/// May the token server at `realm` get the credentials of the registry at `base`? Only over
/// https (a token realm is usually another host, `auth.docker.io` for Docker Hub, so the host
/// cannot be required to match), or over plain http when the registry itself is plain http
/// (loopback, or a registry the config lists as insecure): never plain text for an https one.
pub fn realm_may_get_credentials(base: &str, realm: &str) -> bool {
    let scheme = |u: &str| reqwest::Url::parse(u).map(|u| u.scheme().to_string());
    matches!(
        (scheme(base).as_deref(), scheme(realm).as_deref()),
        (_, Ok("https")) | (Ok("http"), Ok("http"))
    )
}

impl Auth {
    /// No answers yet; `credentials` are used when a challenge asks.
    pub fn new(credentials: Option<(String, String)>) -> Auth {
        Auth {
            credentials,
            basic: Mutex::new(false),
            tokens: Mutex::new(HashMap::new()),
        }
    }

    /// Add what we know to a request.
    pub fn apply(&self, req: RequestBuilder, scope: &str) -> RequestBuilder {
        if let Some(token) = self.tokens.lock().expect("token cache").get(scope) {
            return req.bearer_auth(token);
        }
        match (&self.credentials, *self.basic.lock().expect("auth state")) {
            (Some((u, p)), true) => req.basic_auth(u, Some(p)),
            _ => req,
        }
    }

    /// Answer a 401's challenge (from the registry at `base`) so the next try carries what
    /// it asked for.
    pub fn answer(&self, http: &Client, base: &str, challenge: &str, scope: &str) -> Result<()> {
        let (scheme, params) = parse_challenge(challenge);
        match scheme.as_str() {
            "basic" => {
                if self.credentials.is_none() {
                    return Err(RegistryError::LoginNeeded.into());
                }
                *self.basic.lock().expect("auth state") = true;
                Ok(())
            }
            "bearer" => {
                let realm = params
                    .get("realm")
                    .ok_or_else(|| RegistryError::BadChallenge(challenge.to_string()))?;
                if self.credentials.is_some() && !realm_may_get_credentials(base, realm) {
                    return Err(RegistryError::PlainTextRealm {
                        base: base.to_string(),
                        realm: realm.clone(),
                    }
                    .into());
                }
                let mut req = http.get(realm);
                let mut query: Vec<(&str, &str)> = Vec::new();
                if let Some(service) = params.get("service") {
                    query.push(("service", service));
                }
                // Ask for what this request needs (several scopes are separated by spaces,
                // e.g. push to one repository and pull from another for a cross-repo mount);
                // the challenge's own scope when we have none. The token is cached under our
                // scope, which is what `apply` looks up.
                let wanted = if scope.is_empty() {
                    params.get("scope").map(String::as_str).unwrap_or("")
                } else {
                    scope
                };
                for s in wanted.split(' ').filter(|s| !s.is_empty()) {
                    query.push(("scope", s));
                }
                req = req.query(&query);
                if let Some((u, p)) = &self.credentials {
                    req = req.basic_auth(u, Some(p));
                }
                let started = std::time::Instant::now();
                let token_error = |reason: String| RegistryError::TokenServer {
                    realm: realm.clone(),
                    reason,
                };
                let resp = req.send().map_err(|e| token_error(e.to_string()))?;
                super::trace::exchange(
                    "token",
                    "GET",
                    resp.url().as_str(),
                    resp.status().as_u16(),
                    started.elapsed(),
                );
                if !resp.status().is_success() {
                    return Err(RegistryError::TokenRefused {
                        realm: realm.clone(),
                        status: resp.status(),
                    }
                    .into());
                }
                // Read no more than the limit (plus one byte to notice more): a token server
                // sending without end must not fill memory.
                let mut bytes = Vec::new();
                std::io::Read::read_to_end(
                    &mut std::io::Read::take(resp, MAX_TOKEN as u64 + 1),
                    &mut bytes,
                )
                .map_err(|e| token_error(e.to_string()))?;
                if bytes.len() > MAX_TOKEN {
                    return Err(token_error("the answer is larger than 1 MiB".into()).into());
                }
                let answer: TokenAnswer =
                    serde_json::from_slice(&bytes).map_err(|e| token_error(e.to_string()))?;
                let token = answer
                    .token
                    .or(answer.access_token)
                    .ok_or_else(|| token_error("no token in its answer".into()))?;
                self.tokens
                    .lock()
                    .expect("token cache")
                    .insert(scope.to_string(), token);
                Ok(())
            }
            _ => Err(RegistryError::UnsupportedChallenge(challenge.to_string()).into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_http_realm_gets_no_credentials_of_an_https_registry() {
        let hub = "https://registry-1.docker.io";
        assert!(realm_may_get_credentials(
            hub,
            "https://auth.docker.io/token"
        ));
        assert!(!realm_may_get_credentials(
            hub,
            "http://auth.docker.io/token"
        ));
        assert!(!realm_may_get_credentials(hub, "ftp://auth.example/token"));
        assert!(!realm_may_get_credentials(hub, "not a url"));
        let lab = "http://127.0.0.1:5000";
        assert!(realm_may_get_credentials(
            lab,
            "http://127.0.0.1:5000/token"
        ));
        assert!(realm_may_get_credentials(lab, "https://auth.example/token"));
    }

    #[test]
    fn challenges_parse() {
        let (s, p) = parse_challenge(
            r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/httpd:pull""#,
        );
        assert_eq!(s, "bearer");
        assert_eq!(p["realm"], "https://auth.docker.io/token");
        assert_eq!(p["service"], "registry.docker.io");
        assert_eq!(p["scope"], "repository:library/httpd:pull");
        let (s, p) = parse_challenge(r#"Basic realm="basic-realm""#);
        assert_eq!((s.as_str(), p["realm"].as_str()), ("basic", "basic-realm"));
    }
}
