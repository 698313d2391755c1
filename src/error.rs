//! The library's error type and Docker's exit codes.
//!
//! Docker's convention, which dockling keeps: 125 when the engine itself fails (bad flag,
//! unknown image, a mount that failed), 126 when the container's command exists but cannot be
//! invoked, 127 when it does not exist, and otherwise the container's own exit code.

use std::io;
use std::path::PathBuf;

use crate::sys::SysError;

/// Everything that can go wrong inside the engine.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A kernel call failed; the message names the call and its object.
    #[error(transparent)]
    Sys(#[from] SysError),
    /// A file operation failed on a named path.
    #[error("{what} {}: {source}", path.display())]
    Io {
        /// What was being done (`read`, `create`...).
        what: &'static str,
        /// The path it was done to.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// A bad flag value or conflicting flags on the command line; the message says what to
    /// give instead. Failures that are not the command line's are the variants below.
    #[error("{0}")]
    Usage(String),
    /// A command that needs root was run without it.
    #[error("dockling {command} needs root (it creates namespaces, mounts and cgroups): run it with sudo")]
    NeedsRoot {
        /// The command (`run`).
        command: String,
    },
    /// The config file cannot be used.
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    /// A container cannot be named, found or removed as asked.
    #[error(transparent)]
    Container(#[from] crate::container::ContainerError),
    /// The image cannot be run as asked (no command, an unknown user, unreadable account files).
    #[error(transparent)]
    Spec(#[from] crate::specconv::SpecError),
    /// The container's root file system could not be built from its layers.
    #[error(transparent)]
    Layer(#[from] crate::layers::LayerError),
    /// A container's cgroup could not be set up or removed.
    #[error(transparent)]
    Cgroup(#[from] crate::cgroups::CgroupError),
    /// A container could not be started, or its I/O relayed.
    #[error(transparent)]
    Runtime(#[from] crate::runtime::RuntimeError),
    /// A lesson could not be read or run.
    #[error(transparent)]
    Lesson(#[from] crate::lessons::LessonError),
    /// Another command held a lock for the whole `lock-timeout`.
    #[error(transparent)]
    LockTimeout(#[from] crate::files::LockTimeout),
    /// A fault point fired (`DOCKLING_FAULT`, debug builds).
    #[error(transparent)]
    Fault(#[from] crate::fault::FaultError),
    /// An image, container or file that does not exist.
    #[error("{0}")]
    NotFound(String),
    /// The container's command does not exist (exit 127).
    #[error("{0}")]
    CommandNotFound(String),
    /// The container's command exists but cannot be run (exit 126).
    #[error("{0}")]
    CannotInvoke(String),
    /// The user aborted a `--step` run.
    #[error(transparent)]
    Aborted(#[from] crate::trace::Aborted),
    /// A `--format` template that does not parse or fails on what it formats.
    #[error(transparent)]
    Template(#[from] crate::template::TemplateError),
    /// An image, reference or store error.
    #[error(transparent)]
    Image(#[from] crate::image::ImageError),
    /// A registry, its credentials or the lab failed; the message says what to do (exit 125).
    #[error(transparent)]
    Registry(#[from] crate::registry::RegistryError),
    /// Networking (issue 11).
    #[error(transparent)]
    Network(#[from] crate::network::NetError),
    /// The volume store.
    #[error(transparent)]
    Volume(#[from] crate::volume::VolumeError),
    /// A file given to `trace render` that is not a trace.
    #[error(transparent)]
    Render(#[from] crate::trace::render::RenderError),
    /// Stored data that is not what it should be.
    #[error("{0}")]
    Corrupt(String),
    /// The file system under `dir` is full (`ENOSPC`) or the quota used up (`EDQUOT`): said
    /// once, never retried (trying again cannot help until space is freed).
    #[error("no space left on {} ({}) while {doing}: free space on that file system (dockling rmi, dockling image prune) or put the store elsewhere (--root)", dir.display(), if *quota { "EDQUOT: the disk quota is used up" } else { "ENOSPC" })]
    NoSpace {
        /// The directory being written to.
        dir: PathBuf,
        /// What was being written (`writing a blob`).
        doing: String,
        /// `EDQUOT` rather than `ENOSPC`.
        quota: bool,
    },
}

impl Error {
    /// The exit code Docker would use.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::CommandNotFound(_) => 127,
            Error::CannotInvoke(_) => 126,
            Error::Aborted(_) => 130,
            _ => 125,
        }
    }

    /// Wrap an I/O error of a write into `path`: a full disk or quota becomes [`Error::NoSpace`]
    /// naming `path`'s directory, anything else an [`Error::Io`].
    pub fn write(what: &'static str, path: impl Into<PathBuf>) -> impl FnOnce(io::Error) -> Error {
        let path = path.into();
        move |source| match source.raw_os_error() {
            Some(e @ (libc::ENOSPC | libc::EDQUOT)) => Error::NoSpace {
                dir: path.parent().map_or(path.clone(), PathBuf::from),
                doing: what.to_string(),
                quota: e == libc::EDQUOT,
            },
            _ => Error::Io { what, path, source },
        }
    }

    /// Wrap an I/O error with what was done to which path.
    pub fn io(what: &'static str, path: impl Into<PathBuf>) -> impl FnOnce(io::Error) -> Error {
        let path = path.into();
        move |source| Error::Io { what, path, source }
    }
}

/// Results of the engine.
pub type Result<T, E = Error> = std::result::Result<T, E>;
