//! Image references, normalised like Docker: `busybox` → `docker.io/library/busybox:latest`.

use std::fmt;

use super::ImageError;
use crate::error::{Error, Result};

/// Docker Hub, where names without a registry part live.
pub const DEFAULT_REGISTRY: &str = "docker.io";

/// A parsed image reference.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Reference {
    /// `docker.io`, `localhost:5000`, `quay.io`...
    pub registry: String,
    /// `library/busybox`, `me/web`.
    pub repository: String,
    /// `latest` when neither tag nor digest was given.
    pub tag: Option<String>,
    /// `sha256:<64 hex>`.
    pub digest: Option<String>,
}

fn valid_component(c: &str) -> bool {
    // [a-z0-9]+ separated by one '.', one or two '_', or any number of '-'.
    !c.is_empty()
        && c.chars()
            .all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || "._-".contains(ch))
        && c.starts_with(|ch: char| ch.is_ascii_alphanumeric())
        && c.ends_with(|ch: char| ch.is_ascii_alphanumeric())
}

impl Reference {
    /// Parse and normalise.
    pub fn parse(s: &str) -> Result<Reference> {
        let bad = |why: &'static str| {
            Error::from(ImageError::BadReference {
                input: s.to_string(),
                why,
            })
        };
        if s.is_empty() {
            return Err(bad("empty name"));
        }
        let (rest, digest) = match s.split_once('@') {
            Some((r, d)) => {
                let hex = d
                    .strip_prefix("sha256:")
                    .ok_or_else(|| bad("only sha256 digests are supported"))?;
                if hex.len() != 64
                    || !hex
                        .chars()
                        .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
                {
                    return Err(bad("a digest is sha256: and 64 lowercase hex digits"));
                }
                (r, Some(d.to_string()))
            }
            None => (s, None),
        };
        // A tag is after the last ':' that comes after the last '/'.
        let slash = rest.rfind('/').map(|i| i + 1).unwrap_or(0);
        let (name, tag) = match rest[slash..].rfind(':') {
            Some(i) => (&rest[..slash + i], Some(rest[slash + i + 1..].to_string())),
            None => (rest, None),
        };
        if let Some(t) = &tag {
            let ok = !t.is_empty()
                && t.len() <= 128
                && t.starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_')
                && t.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
            if !ok {
                return Err(bad("a tag is up to 128 letters, digits, '_', '.' or '-'"));
            }
        }
        let (registry, repo) = match name.split_once('/') {
            Some((first, rest)) if first.contains(['.', ':']) || first == "localhost" => {
                (first.to_string(), rest.to_string())
            }
            _ => (DEFAULT_REGISTRY.to_string(), name.to_string()),
        };
        if repo.chars().any(|c| c.is_ascii_uppercase()) {
            return Err(bad("repository name must be lowercase"));
        }
        if !repo.split('/').all(valid_component) {
            return Err(bad(
                "repository names are lowercase letters, digits and separators (. _ -)",
            ));
        }
        let repository = if registry == DEFAULT_REGISTRY && !repo.contains('/') {
            format!("library/{repo}")
        } else {
            repo
        };
        let tag = if tag.is_none() && digest.is_none() {
            Some("latest".to_string())
        } else {
            tag
        };
        Ok(Reference {
            registry,
            repository,
            tag,
            digest,
        })
    }

    /// What `docker images` shows as REPOSITORY: `busybox`, `me/web`, `localhost:5000/me/web`.
    pub fn familiar(&self) -> String {
        if self.registry == DEFAULT_REGISTRY {
            self.repository
                .strip_prefix("library/")
                .unwrap_or(&self.repository)
                .to_string()
        } else {
            format!("{}/{}", self.registry, self.repository)
        }
    }

    /// The tag, `<none>` for digest-only references.
    pub fn tag_or_none(&self) -> &str {
        self.tag.as_deref().unwrap_or("<none>")
    }

    /// The short form with tag: `busybox:latest`.
    pub fn familiar_tagged(&self) -> String {
        match (&self.tag, &self.digest) {
            (Some(t), _) => format!("{}:{t}", self.familiar()),
            (None, Some(d)) => format!("{}@{d}", self.familiar()),
            (None, None) => self.familiar(),
        }
    }
}

impl fmt::Display for Reference {
    /// The full form: `docker.io/library/busybox:latest`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn full(s: &str) -> String {
        Reference::parse(s).unwrap().to_string()
    }

    #[test]
    fn names_normalise_like_docker() {
        assert_eq!(full("busybox"), "docker.io/library/busybox:latest");
        assert_eq!(full("busybox:1.36"), "docker.io/library/busybox:1.36");
        assert_eq!(full("me/web"), "docker.io/me/web:latest");
        assert_eq!(full("localhost:5000/me/web:v1"), "localhost:5000/me/web:v1");
        assert_eq!(full("localhost/web"), "localhost/web:latest");
        assert_eq!(full("quay.io/a/b"), "quay.io/a/b:latest");
        let d = format!("busybox@sha256:{}", "a".repeat(64));
        assert_eq!(full(&d), format!("docker.io/library/{d}"));
        assert_eq!(
            Reference::parse("localhost:5000/me/web:v1")
                .unwrap()
                .familiar(),
            "localhost:5000/me/web"
        );
        assert_eq!(
            Reference::parse("busybox").unwrap().familiar_tagged(),
            "busybox:latest"
        );
    }

    #[test]
    fn malformed_references_say_why() {
        for (bad, why) in [
            ("BusyBox", "lowercase"),
            ("busybox:", "tag"),
            ("busybox@sha256:abc", "64"),
            ("busybox@md5:abc", "sha256"),
            ("", "empty"),
            ("a//b", "repository names"),
        ] {
            let e = Reference::parse(bad).unwrap_err().to_string();
            assert!(e.contains(why), "{bad}: {e}");
        }
    }
}
