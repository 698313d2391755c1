//! `dockling runtime …`, also installed as `dockling-runc` (a link to `dockling`): runc's
//! command line, the way podman, containerd's shim and crun's tests call an OCI runtime.
//!
//! A parser of its own, not a subcommand of [`super::Cli`]: runc's global `--root` (where
//! the runtime keeps its state) and crun's `--config` (a bundle's config file) mean other
//! things than dockling's, and callers put them before the subcommand.

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

/// dockling's engine as an OCI runtime (runc's command line).
#[derive(Debug, Parser)]
#[command(name = "dockling-runc", disable_version_flag = true)]
pub struct RuntimeCli {
    /// Where the runtime keeps the state of its containers
    #[arg(long, value_name = "DIR", default_value = "/run/dockling-runc")]
    pub root: PathBuf,
    /// Also write errors and warnings to this file
    #[arg(long, value_name = "FILE")]
    pub log: Option<PathBuf>,
    /// How `--log` lines look
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// Accepted for runc's callers; nothing more is logged
    #[arg(long)]
    pub debug: bool,
    /// Refused: dockling-runc manages cgroups through cgroupfs only
    #[arg(long)]
    pub systemd_cgroup: bool,
    /// crun's: cgroupfs (the default) or disabled; systemd is refused
    #[arg(long, value_name = "MANAGER")]
    pub cgroup_manager: Option<String>,
    /// Accepted as false or auto; rootless containers are refused
    #[arg(long, value_name = "BOOL")]
    pub rootless: Option<String>,
    /// Accepted for runc's callers and ignored: there is no checkpointing
    #[arg(long, value_name = "PATH")]
    pub criu: Option<PathBuf>,
    /// Print the version (three lines, as runc's)
    #[arg(short = 'v', long)]
    pub version: bool,
    /// What to do
    #[command(subcommand)]
    pub command: Option<RuntimeCommand>,
}

/// The format of `--log` lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// `time="…" level=error msg="…"`
    Text,
    /// `{"level":"error","msg":"…","time":"…"}`
    Json,
}

/// The runtime's subcommands (more arrive with `create`, `start`, `state`, `kill`, `delete`).
#[derive(Debug, Subcommand)]
pub enum RuntimeCommand {
    /// Write a config.json template for a bundle: what `dockling run busybox sh` would run
    Spec {
        /// The bundle's directory
        #[arg(short, long, value_name = "DIR", default_value = ".")]
        bundle: PathBuf,
        /// Refused: dockling-runc runs containers as root only
        #[arg(long)]
        rootless: bool,
    },
}
