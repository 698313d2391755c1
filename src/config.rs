//! Defaults from `/etc/dockling/config.yaml` (or `--config`), validated strictly.
//!
//! Every key is optional; an unknown key is an error that names it, so a typo never silently
//! does nothing. Flags on the command line override what the file says.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::error::{Error, Result};

/// A config file that cannot be used: unreadable YAML, a bad value, a layout too unusual to
/// edit safely. Each message names the file or the key and says what to write instead.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file is not valid YAML, or has an unknown key or a value of the wrong type.
    #[error("config {}: {source}", path.display())]
    Parse {
        /// The config file.
        path: PathBuf,
        /// serde_yaml's error, naming the line and the key.
        source: serde_yaml::Error,
    },
    /// `max-layer-size` is not a size.
    #[error("config: max-layer-size {text:?} is not a size: use a number of bytes with an optional unit k, m, g, t (like 64g)")]
    LayerSize {
        /// The value as written.
        text: String,
    },
    /// `lock-timeout` is not a duration.
    #[error("config: lock-timeout {text:?} is not a duration: use a number of seconds or a duration like 60s, 2m or 500ms")]
    LockTimeout {
        /// The value as written.
        text: String,
    },
    /// `registry-mirrors` is laid out in a way dockling does not rewrite.
    #[error("cannot edit {} safely (registry-mirrors is laid out in a way dockling does not rewrite): {hand_edit}", path.display())]
    CannotEdit {
        /// The config file.
        path: PathBuf,
        /// What to change by hand instead.
        hand_edit: String,
    },
}

/// Where the config file is looked for when `--config` is not given.
pub const DEFAULT_PATH: &str = "/etc/dockling/config.yaml";

/// The config file.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Config {
    /// Store root (default `/var/lib/dockling`).
    pub root: Option<PathBuf>,
    /// Run-state directory (default `/run/dockling`).
    pub run_root: Option<PathBuf>,
    /// Default `--layers`: `overlay` or `copy`.
    pub layers: Option<crate::spec::LayersMode>,
    /// Default `--rootfs`: `pivot_root` or `chroot`.
    pub rootfs: Option<crate::spec::RootfsMode>,
    /// Default `--network`: `bridge` (the default), `none` or `host`.
    pub network: Option<String>,
    /// The subnet of the default `bridge` network (default `172.17.0.0/16`), used when the
    /// network is first made; a network already in the store keeps its own.
    pub default_subnet: Option<String>,
    /// Default `--publish-mode`: `proxy` (the default) or `nat`.
    pub publish_mode: Option<crate::spec::PublishMode>,
    /// NAT mode also masquerades the containers' traffic to the outside (default false).
    pub outbound_nat: Option<bool>,
    /// `false` is like passing `--no-cgroups` every time.
    pub cgroups: Option<bool>,
    /// Parent cgroup of all containers (default `dockling`).
    pub cgroup_parent: Option<String>,
    /// Default trace format when `--trace` is given without one.
    pub trace: Option<crate::trace::Format>,
    /// Registry mirrors for Docker Hub (used by `pull`).
    pub registry_mirrors: Option<Vec<String>>,
    /// Registries reached over plain HTTP.
    pub insecure_registries: Option<Vec<String>>,
    /// Largest layer accepted, uncompressed (`64g`, `500m`, or bytes; default 64g): a bigger
    /// one is refused as a decompression bomb.
    pub max_layer_size: Option<serde_yaml::Value>,
    /// Most entries (files, directories, links) a layer may have (default 4194304).
    pub max_layer_entries: Option<u64>,
    /// How long a command waits for a lock another dockling holds before giving up (`60s`,
    /// `2m`, `500ms`, or a number of seconds; default 60s).
    pub lock_timeout: Option<serde_yaml::Value>,
}

impl Config {
    /// Read `path`; a missing file at the default path means "all defaults", a missing file
    /// the user named explicitly is an error.
    pub fn load(path: Option<&Path>) -> Result<Config> {
        let (path, explicit) = match path {
            Some(p) => (p.to_path_buf(), true),
            None => (PathBuf::from(DEFAULT_PATH), false),
        };
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !explicit => {
                return Ok(Config::default())
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(Error::NotFound(format!(
                    "config file {} does not exist: create it (an empty file means all defaults) or leave out --config / DOCKLING_CONFIG",
                    path.display()
                )))
            }
            Err(e) => return Err(Error::io("read config", &path)(e)),
        };
        Config::parse(&text).map_err(|source| ConfigError::Parse { path, source }.into())
    }

    /// Parse YAML text; the error names the line and the bad key.
    pub fn parse(text: &str) -> std::result::Result<Config, serde_yaml::Error> {
        if text.trim().is_empty() {
            return Ok(Config::default());
        }
        serde_yaml::from_str(text)
    }
}

impl Config {
    /// The layer limits, defaults filled in.
    pub fn layer_limits(&self) -> Result<crate::layers::unpack::Limits> {
        let mut limits = crate::layers::unpack::Limits::default();
        if let Some(v) = &self.max_layer_size {
            let text = match v {
                serde_yaml::Value::Number(n) => n.to_string(),
                serde_yaml::Value::String(s) => s.clone(),
                _ => String::new(),
            };
            limits.max_size = parse_size(&text).ok_or(ConfigError::LayerSize { text })?;
        }
        if let Some(n) = self.max_layer_entries {
            limits.max_entries = n;
        }
        Ok(limits)
    }
}

impl Config {
    /// The `lock-timeout`, default filled in.
    pub fn lock_timeout(&self) -> Result<std::time::Duration> {
        let bad = |text: &str| -> Error {
            ConfigError::LockTimeout {
                text: text.to_string(),
            }
            .into()
        };
        match &self.lock_timeout {
            None => Ok(crate::container::DEFAULT_LOCK_TIMEOUT),
            Some(serde_yaml::Value::Number(n)) => n
                .as_f64()
                .filter(|s| s.is_finite() && *s >= 0.0 && *s < 1e9)
                .map(std::time::Duration::from_secs_f64)
                .ok_or_else(|| bad(&n.to_string())),
            Some(serde_yaml::Value::String(s)) => {
                humantime::parse_duration(s.trim()).map_err(|_| bad(s))
            }
            Some(other) => Err(bad(&format!("{other:?}"))),
        }
    }
}

impl Config {
    /// The `default-subnet`, default filled in.
    pub fn default_subnet(&self) -> Result<crate::network::ipam::Subnet> {
        match &self.default_subnet {
            None => Ok(crate::network::ipam::Subnet::DEFAULT),
            Some(s) => s.parse().map_err(|e: crate::network::NetError| {
                Error::Usage(format!("config: default-subnet: {e}"))
            }),
        }
    }
}

/// `1024`, `512k`, `64m`, `64g`, `1t` (binary units, an optional `b`/`ib` after the unit).
fn parse_size(s: &str) -> Option<u64> {
    let t = s.trim().to_ascii_lowercase();
    let t = t.trim_end_matches("ib").trim_end_matches('b');
    let (num, shift) = match t.chars().last()? {
        'k' => (&t[..t.len() - 1], 10),
        'm' => (&t[..t.len() - 1], 20),
        'g' => (&t[..t.len() - 1], 30),
        't' => (&t[..t.len() - 1], 40),
        _ => (t, 0),
    };
    num.trim().parse::<u64>().ok()?.checked_mul(1 << shift)
}

/// The comment `lab up` writes above the mirror it adds.
const MIRROR_COMMENT: &str =
    "# The lab registry stands in for Docker Hub (added by `dockling lab up`, removed by `lab down`).";

/// The line range of the `registry-mirrors` key and its block-list items, if present.
fn mirrors_lines(lines: &[&str]) -> Option<(usize, usize)> {
    let start = lines
        .iter()
        .position(|l| l.starts_with("registry-mirrors:"))?;
    let mut end = start + 1;
    while end < lines.len() {
        let l = lines[end];
        if l.starts_with(' ') || l.starts_with('-') || l.starts_with('\t') {
            end += 1;
        } else {
            break;
        }
    }
    Some((start, end))
}

/// Change the `registry-mirrors` of the config file at `path` (a missing file is empty) with
/// `edit`, which returns false when there is nothing to change. Every other line stays as it
/// was; an emptied list removes the key. The new text is parsed back and compared with what was
/// meant before it replaces the file; if the file is laid out in a way this cannot edit safely,
/// nothing is written and the error says `hand_edit`.
fn edit_mirrors(
    path: &Path,
    hand_edit: &str,
    edit: impl FnOnce(&mut Vec<String>) -> bool,
) -> Result<bool> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(Error::io("read config", path)(e)),
    };
    let old = Config::parse(&text).map_err(|source| ConfigError::Parse {
        path: path.to_path_buf(),
        source,
    })?;
    let mut mirrors = old.registry_mirrors.clone().unwrap_or_default();
    if !edit(&mut mirrors) {
        return Ok(false);
    }
    let lines: Vec<&str> = text.lines().collect();
    let mut block = Vec::new();
    if !mirrors.is_empty() {
        block.push("registry-mirrors:".to_string());
        block.extend(mirrors.iter().map(|m| format!("  - {m}")));
    }
    let mut out: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
    match mirrors_lines(&lines) {
        Some((start, end)) => {
            let mut start = start;
            if block.is_empty() && start > 0 && lines[start - 1] == MIRROR_COMMENT {
                start -= 1;
            }
            out.splice(start..end, block);
        }
        None if !block.is_empty() => {
            out.push(MIRROR_COMMENT.to_string());
            out.extend(block);
        }
        None => {}
    }
    let mut new_text = out.join("\n");
    if !new_text.is_empty() {
        new_text.push('\n');
    }
    let want = Config {
        registry_mirrors: (!mirrors.is_empty()).then_some(mirrors),
        ..old
    };
    match Config::parse(&new_text) {
        Ok(got) if got == want => {}
        _ => {
            return Err(ConfigError::CannotEdit {
                path: path.to_path_buf(),
                hand_edit: hand_edit.to_string(),
            }
            .into())
        }
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(Error::io("create", dir))?;
    }
    crate::container::write_atomic(path, new_text.as_bytes())?;
    Ok(true)
}

/// Add `url` as the first Docker Hub mirror in the config file at `path` (created if
/// missing). Returns false when it was already there.
pub fn add_mirror(path: &Path, url: &str) -> Result<bool> {
    edit_mirrors(
        path,
        &format!("add `registry-mirrors: [\"{url}\"]` yourself"),
        |mirrors| {
            if mirrors.iter().any(|m| m.trim_end_matches('/') == url) {
                return false;
            }
            mirrors.insert(0, url.to_string());
            true
        },
    )
}

/// Remove `url` from the Docker Hub mirrors in the config file at `path`. Returns false when
/// it was not there.
pub fn remove_mirror(path: &Path, url: &str) -> Result<bool> {
    edit_mirrors(
        path,
        &format!("remove {url} from registry-mirrors yourself"),
        |mirrors| {
            let before = mirrors.len();
            mirrors.retain(|m| m.trim_end_matches('/') != url);
            mirrors.len() != before
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_key_is_an_error_that_names_it() {
        let err = Config::parse("layers: copy\nnetwrok: none\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("netwrok"), "{err}");
        assert!(err.contains("line 2"), "{err}");
    }

    #[test]
    fn known_keys_parse() {
        let c =
            Config::parse("layers: copy\nrootfs: chroot\ncgroups: false\nnetwork: host\n").unwrap();
        assert_eq!(c.layers, Some(crate::spec::LayersMode::Copy));
        assert_eq!(c.cgroups, Some(false));
    }

    #[test]
    fn layer_limits_parse_with_units_and_refuse_nonsense() {
        let c = Config::parse("max-layer-size: 2g\nmax-layer-entries: 10\n").unwrap();
        let l = c.layer_limits().unwrap();
        assert_eq!((l.max_size, l.max_entries), (2 << 30, 10));
        let c = Config::parse("max-layer-size: 1048576\n").unwrap();
        assert_eq!(c.layer_limits().unwrap().max_size, 1 << 20);
        assert_eq!(
            Config::default().layer_limits().unwrap(),
            crate::layers::unpack::Limits::default()
        );
        let err = Config::parse("max-layer-size: lots\n")
            .unwrap()
            .layer_limits()
            .unwrap_err()
            .to_string();
        assert!(err.contains("max-layer-size \"lots\""), "{err}");
    }

    #[test]
    fn empty_file_is_all_defaults() {
        assert_eq!(Config::parse("\n").unwrap(), Config::default());
    }

    #[test]
    fn mirrors_are_added_and_removed_keeping_the_rest() {
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path().join("etc/config.yaml");
        let url = "http://127.0.0.1:5000";
        // A missing file is created, and removing the mirror leaves it empty again.
        assert!(add_mirror(&p, url).unwrap());
        assert!(!add_mirror(&p, url).unwrap(), "added once");
        assert_eq!(
            Config::load(Some(&p)).unwrap().registry_mirrors,
            Some(vec![url.to_string()])
        );
        assert!(remove_mirror(&p, url).unwrap());
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "");
        // The user's own lines and mirrors survive, in flow style too.
        let mine =
            "# mine\nlayers: copy\nregistry-mirrors: [\"https://m.example\"]\nnetwork: none\n";
        std::fs::write(&p, mine).unwrap();
        assert!(add_mirror(&p, url).unwrap());
        let c = Config::load(Some(&p)).unwrap();
        assert_eq!(
            c.registry_mirrors,
            Some(vec![url.to_string(), "https://m.example".to_string()])
        );
        assert_eq!(c.network.as_deref(), Some("none"));
        assert!(remove_mirror(&p, url).unwrap());
        let c = Config::load(Some(&p)).unwrap();
        assert_eq!(
            c.registry_mirrors,
            Some(vec!["https://m.example".to_string()])
        );
        assert!(std::fs::read_to_string(&p)
            .unwrap()
            .starts_with("# mine\nlayers: copy\n"));
        assert!(!remove_mirror(&p, url).unwrap());
        // A broken file is never overwritten.
        std::fs::write(&p, "netwrok: none\n").unwrap();
        assert!(add_mirror(&p, url).is_err());
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "netwrok: none\n");
    }

    #[test]
    fn the_default_subnet_is_checked() {
        let c = Config::parse("default-subnet: 10.88.0.0/16\n").unwrap();
        assert_eq!(c.default_subnet().unwrap().to_string(), "10.88.0.0/16");
        assert_eq!(
            Config::default().default_subnet().unwrap(),
            crate::network::ipam::Subnet::DEFAULT
        );
        let bad = Config::parse("default-subnet: 10.88.0.1/16\n").unwrap();
        let e = bad.default_subnet().unwrap_err().to_string();
        assert!(
            e.contains("default-subnet") && e.contains("10.88.0.1/16"),
            "{e}"
        );
    }
}
