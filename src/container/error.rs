//! What can go wrong with a container's record: a name taken, an id prefix that matches
//! several, a container still running or still held by the `dockling` process that runs it.

use std::path::PathBuf;

/// A container cannot be named, found or removed as asked.
#[derive(Debug, thiserror::Error)]
pub enum ContainerError {
    /// An id prefix that more than one container's id starts with.
    #[error("multiple containers match id prefix {prefix}: give more digits or the name")]
    AmbiguousPrefix {
        /// The prefix as given.
        prefix: String,
    },
    /// Another `dockling` process holds the container's engine lock.
    #[error("container {id} is kept by another dockling process")]
    Kept {
        /// The container's id.
        id: String,
    },
    /// `--name` of a container that exists (Docker's words, `conflict:` first).
    #[error("conflict: the container name \"/{name}\" is already in use by container {other}: remove (dockling rm {name}) or rename that container to reuse the name")]
    NameInUse {
        /// The name asked for.
        name: String,
        /// The id of the container that has it.
        other: String,
    },
    /// `rm` without `-f` of a container that is starting or running.
    #[error("cannot remove container {name}: {state}: stop it first or use rm -f")]
    NotStopped {
        /// The container as the user named it.
        name: String,
        /// `it is starting`, `it is running` or `it is restarting`.
        state: &'static str,
    },
    /// `rm -f` killed the container, but its `dockling` process kept the engine lock.
    #[error("container {name} was killed but its dockling process did not let go within {seconds} s: kill it (pid in {})", lock.display())]
    EngineStuck {
        /// The container as the user named it.
        name: String,
        /// How long `rm` waited.
        seconds: u64,
        /// The engine lock file, which holds that process's pid.
        lock: PathBuf,
    },
    /// `logs` of a container that ran, whose json-file log is gone (deleted by hand).
    #[error("no log to show for container {name}: {file} in its directory cannot be read ({cause}); was it deleted? What the container writes from now on goes to a new one")]
    LogMissing {
        /// The container as the user named it.
        name: String,
        /// The log's file name.
        file: String,
        /// Why it could not be opened.
        cause: String,
    },
    /// `kill`, `exec`, `pause`, `unpause` or `top` of a container that is not running.
    #[error("cannot {doing} container {name}: it is not running (start it first)")]
    NotRunning {
        /// What was asked: "kill", "exec into", "pause"...
        doing: &'static str,
        /// The container as the user named it.
        name: String,
    },
    /// `stop` sent SIGKILL, but the container's end was not recorded in time.
    #[error("container {name} got SIGKILL but its end was not recorded within {seconds} s: see `dockling ps -a`")]
    StopStuck {
        /// The container as the user named it.
        name: String,
        /// How long `stop` waited after SIGKILL.
        seconds: u64,
    },
    /// A detached container's monitor ended (was killed) before it reported the start.
    #[error("the monitor of container {id} ended before the container started: see `dockling ps -a` and `dockling logs {name}`")]
    MonitorLost {
        /// The container's short id.
        id: String,
        /// Its name.
        name: String,
    },
    /// `start` of a container whose image layers were removed meanwhile.
    #[error("cannot start container {name}: its image layer {} is gone (the image was removed): remove the container and run the image again", layer.display())]
    LayersGone {
        /// The container as the user named it.
        name: String,
        /// The missing layer directory.
        layer: PathBuf,
    },
    /// A container that `restart` stopped did not start again (its exit code says why).
    #[error("container {name} did not start again (exit code {code})")]
    StartFailed {
        /// The container as the user named it.
        name: String,
        /// The failed start's exit code.
        code: i32,
    },
    /// `pause` of a container without a cgroup (`--no-cgroups`).
    #[error("container {name} has no cgroup (it was run with --no-cgroups): it cannot be paused")]
    NoCgroup {
        /// The container as the user named it.
        name: String,
    },
    /// `pause` of a paused container, `unpause` of one that is not.
    #[error("container {name} is {}paused", if *paused { "already " } else { "not " })]
    PauseState {
        /// The container as the user named it.
        name: String,
        /// Whether it is paused now.
        paused: bool,
    },
    /// `exec` into a paused container (its process would be frozen at once).
    #[error("container {name} is paused: unpause it first (dockling unpause {name})")]
    Paused {
        /// The container as the user named it.
        name: String,
    },
    /// `attach` to a container that is not running (Docker's words).
    #[error("you cannot attach to a stopped container {name}, start it first (dockling start -ai {name})")]
    AttachStopped {
        /// The container's name.
        name: String,
    },
    /// The monitor closed an `attach` while the container still runs: it let a client go
    /// that fell too far behind the container's output.
    #[error("the monitor of container {name} let this attach go (it fell more than 4 MiB behind the container's output); the container runs on: attach again, or read `dockling logs {name}`")]
    AttachDropped {
        /// The container's name.
        name: String,
    },
    /// `top`'s run of the host's `ps` failed, or its output has no PID column.
    #[error("ps {args}: {why}")]
    Top {
        /// The options given to ps.
        args: String,
        /// What went wrong.
        why: String,
    },
}
