//! One file per subcommand, each thin: build the plan from flags, call the engine, return the
//! exit code. Output goes to stdout; diagnostics and traces to stderr.

use std::path::PathBuf;

use crate::config::Config;
use crate::error::{Error, Result};

/// What every command gets: where things live and the config file's defaults.
#[derive(Debug, Clone)]
pub struct Context {
    /// Store root (`--root`, `DOCKLING_ROOT`, config `root`, or `/var/lib/dockling`).
    pub root: PathBuf,
    /// Run-state root (`/run/dockling` unless configured).
    pub run_root: PathBuf,
    /// The config file.
    pub config: Config,
}

impl Context {
    /// Resolve the roots from flags and config.
    pub fn new(root: Option<PathBuf>, config_path: Option<PathBuf>) -> Result<Context> {
        let config = Config::load(config_path.as_deref())?;
        let root = root.or_else(|| config.root.clone()).unwrap_or_else(|| PathBuf::from("/var/lib/dockling"));
        if !root.is_absolute() {
            return Err(Error::Usage(format!("--root {}: must be an absolute path", root.display())));
        }
        let run_root = config.run_root.clone().unwrap_or_else(|| PathBuf::from("/run/dockling"));
        Ok(Context { root, run_root, config })
    }
}
