//! Defaults from `/etc/dockling/config.yaml` (or `--config`), validated strictly.
//!
//! Every key is optional; an unknown key is an error that names it, so a typo never silently
//! does nothing. Flags on the command line override what the file says.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::error::{Error, Result};

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
    /// Default `--network`: `none` or `host`.
    pub network: Option<String>,
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
            Err(e) => return Err(Error::io("read config", &path)(e)),
        };
        Config::parse(&text).map_err(|e| Error::Usage(format!("config {}: {e}", path.display())))
    }

    /// Parse YAML text; the error names the line and the bad key.
    pub fn parse(text: &str) -> std::result::Result<Config, serde_yaml::Error> {
        if text.trim().is_empty() {
            return Ok(Config::default());
        }
        serde_yaml::from_str(text)
    }
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
    fn empty_file_is_all_defaults() {
        assert_eq!(Config::parse("\n").unwrap(), Config::default());
    }
}
