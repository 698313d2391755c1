//! What can go wrong while a container starts and runs: the engine and its child losing each
//! other, an image whose layout is unsafe to mount on, a seccomp profile that does not load,
//! the relay of the container's terminal. Each message names the operation and the object.

use std::path::PathBuf;

/// A container could not be started or its I/O relayed.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// An OCI hook failed: it could not be run, ended with a non-zero status or a signal,
    /// or outlived its timeout.
    #[error("{kind} hook failed {why}: {} (hooks.{kind}[{index}])", path.display())]
    HookFailed {
        /// Which list (`createRuntime`, `poststart`…).
        kind: &'static str,
        /// Its position in the list, from 0.
        index: usize,
        /// Its program.
        path: PathBuf,
        /// How it failed (`with exit code 1`, `to end within its timeout of 2 s: killed`).
        why: String,
    },
    /// A new volume could not be filled with the image's content at its mount point.
    #[error("copy the image's {} into volume {volume}: {why}: mount it with volume-nocopy (--mount type=volume,...,volume-nocopy) to skip the copy", target.display())]
    CopyUp {
        /// The mount point inside the container.
        target: PathBuf,
        /// The volume's name.
        volume: String,
        /// What failed.
        why: String,
    },
    /// The container's process failed before its program ran; `message` is its own error,
    /// as it reported it on the channel.
    #[error("{message}")]
    ContainerFailed {
        /// What the container's process said.
        message: String,
    },
    /// The container's process got no go-ahead from the engine (the engine died?).
    #[error("waiting for the engine: {source}")]
    EngineGone {
        /// The failed read of the channel.
        source: std::io::Error,
    },
    /// The engine sent the container's process something other than the go-ahead.
    #[error("unexpected message from the engine: {message}")]
    UnexpectedMessage {
        /// The message received, as debug text.
        message: String,
    },
    /// The container's process could not hand its terminal to the engine.
    #[error("send terminal to the engine: {source}")]
    SendTerminal {
        /// The failed write of the channel.
        source: std::io::Error,
    },
    /// The engine could not create the signalfd it relays signals through.
    #[error("signalfd: {source}")]
    Signalfd {
        /// The error number of `signalfd(2)`.
        source: nix::errno::Errno,
    },
    /// Waiting for the container's output, input or signals failed.
    #[error("poll: {source}")]
    Poll {
        /// The error number of `poll(2)`.
        source: nix::errno::Errno,
    },
    /// An image's `/proc`, `/sys` or `/dev` is not a plain directory to mount on.
    #[error("refusing to mount {} of the container: in this image it is {what}, and a kernel file system must be mounted on a real directory (the image is unsafe: it could move the masked paths or the device nodes out of the container); use an image whose {} is a plain directory", inside.display(), inside.display())]
    NotARealDir {
        /// The path in the container (`/proc`).
        inside: PathBuf,
        /// What it is instead (`a symlink`).
        what: &'static str,
    },
    /// A bind target that leads into `/proc` or `/sys` through the image's symlinks.
    #[error("refusing to mount on {}: in this image it leads into /proc or /sys (the image is unsafe: a mount there would cover a kernel file); use another target", inside.display())]
    IntoKernelFs {
        /// The target as named in the container.
        inside: PathBuf,
    },
    /// The container's `/dev` is not the tmpfs mounted there a moment ago.
    #[error("refusing to create device nodes in {}: it is not the tmpfs dockling mounted there", dir.display())]
    DevNotTmpfs {
        /// The rootfs's `dev` directory.
        dir: PathBuf,
    },
    /// `/dev/null`, made a moment ago, is gone when the masked paths need it.
    #[error("mask paths: the container's /dev/null is missing after it was created")]
    DevNullMissing,
    /// `--cap-add` of a capability the engine itself does not hold.
    #[error("--cap-add {requested}: dockling itself does not hold CAP_{name}, so it cannot give it to a container")]
    CapabilityNotHeld {
        /// The capability as the user named it.
        requested: String,
        /// Its kernel name, without `CAP_`.
        name: &'static str,
    },
    /// A `--security-opt seccomp=<path>` file cannot be opened.
    #[error("open seccomp profile {}: {source}: give the path of a JSON profile in Docker's format, or seccomp=unconfined", path.display())]
    SeccompProfileOpen {
        /// The profile's path.
        path: PathBuf,
        /// Why it cannot be opened.
        source: std::io::Error,
    },
    /// A seccomp profile path that is not a regular file, or too big.
    #[error("read seccomp profile {}: not a regular file of at most {max} bytes: give the path of a JSON profile in Docker's format", path.display())]
    SeccompProfileNotFile {
        /// The profile's path.
        path: PathBuf,
        /// The largest profile read.
        max: u64,
    },
    /// A seccomp profile that is not valid JSON in Docker's format.
    #[error("seccomp profile {}: {reason}", path.display())]
    SeccompProfileParse {
        /// The profile's path.
        path: PathBuf,
        /// What is wrong, naming the field.
        reason: String,
    },
    /// A seccomp profile that does not resolve or compile for this container.
    #[error("{profile}: {reason}")]
    SeccompPolicy {
        /// Which profile (`seccomp profile /etc/p.json`, or Docker's default).
        profile: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The seccomp filter, checked when the spec was built, did not compile in the container.
    #[error("seccomp profile: {reason}")]
    SeccompCompile {
        /// What the compiler said.
        reason: String,
    },
}
