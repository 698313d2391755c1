//! The container's side, from `clone` to `execve`: everything here runs in the new
//! namespaces, as root, before the container's own program exists.
//!
//! The order matters and is the plan's: the process moves itself into its cgroup first, then
//! the cgroup namespace (so its root is the container's group), mounts before `pivot_root`
//! (host paths are still reachable for volumes and /etc files), capabilities dropped from the bounding set while we still hold
//! `CAP_SETPCAP`, then the user switch while every other capability is still held (so
//! `--cap-drop SETGID` cannot make `setgroups` fail), then the final capability sets (as runc
//! does: `PR_SET_KEEPCAPS` across the uid change, `capset` after it, the ambient ones raised
//! last), then `execve`.

use std::convert::Infallible;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::sched::CloneFlags;

use super::caps;
use super::channel::{Channel, Message};
use super::rootfs::{MountEntry, Rootfs};
use crate::error::{Error, Result};
use crate::plan::StepId;
use crate::spec::RunSpec;
use crate::sys::call::{PtyOp, Stdio};
use crate::sys::Ret;
use crate::sys::{Call, Prctl, Sys};

/// What the child needs besides the spec.
pub struct Setup<'a> {
    /// The container.
    pub spec: &'a RunSpec,
    /// overlayfs options (`lowerdir=…,upperdir=…,workdir=…`).
    pub overlay_data: String,
    /// Extra mounts (the cgroup file systems).
    pub extra_mounts: Vec<MountEntry>,
    /// The container's cgroup, which this process moves itself into first
    /// ([`crate::cgroups::Cgroup::join_self`]); `None` with `--no-cgroups`.
    pub cgroup: Option<&'a crate::cgroups::Cgroup>,
    /// A cgroup namespace is wanted and the process is in its own cgroup.
    pub cgroup_ns: bool,
    /// The write end of the engine's stdout pipe, to become the container's stdout (see
    /// [`super::io`]); `None` when the container writes straight to dockling's stdout.
    pub stdout_relay: Option<std::os::fd::RawFd>,
    /// Stderr goes into that pipe too (dockling's stderr is its stdout: `2>&1`).
    pub stderr_relay: bool,
    /// The write end of a pipe of its own for the container's stderr (a detached container:
    /// the monitor logs each stream apart).
    pub stderr_pipe: Option<std::os::fd::RawFd>,
    /// Stdin is /dev/null whatever `-i` says (a detached container without `-i`).
    pub null_stdin: bool,
    /// The read end of the stdin pipe of a detached `-i` container (without `-t`): its
    /// monitor writes what `attach` sends into the other end.
    pub stdin_pipe: Option<std::os::fd::RawFd>,
    /// The engine lock's descriptor, shared by `clone`: closed first (see [`first_acts`]).
    pub engine_lock: Option<std::os::fd::RawFd>,
    /// `--network container:X`: a descriptor of X's network namespace (opened by the engine
    /// through X's process, whose pid is the second) that the child joins with `setns`.
    pub join_netns: Option<(std::os::fd::RawFd, i32)>,
}

/// Entry point of the cloned child: never returns. Reports failure on the channel and exits.
pub fn main(sys: &Sys, setup: &Setup<'_>, chan: Channel) -> ! {
    sys.tracer.set_process("container");
    match first_acts(sys, setup.engine_lock).and_then(|()| run(sys, setup, &chan)) {
        Ok(never) => match never {},
        Err(e) => fail(sys, &chan, e),
    }
}

/// Wait for the engine's go-ahead, which carries this process's pid as the host sees it.
pub(super) fn await_go(chan: &Channel) -> Result<i32> {
    match chan
        .recv()
        .map_err(|source| super::RuntimeError::EngineGone { source })?
    {
        Message::Go(pid) => Ok(pid),
        other => Err(super::RuntimeError::UnexpectedMessage {
            message: format!("{other:?}"),
        }
        .into()),
    }
}

/// A cloned child's end when a step failed: the error told to the engine on the channel
/// (aborted at a `--step` pause, or failed with its exit code and message), the trace
/// flushed, and `_exit` with that code. Shared by `run`'s, `exec`'s and the OCI runtime's.
pub(super) fn fail(sys: &Sys, chan: &Channel, err: Error) -> ! {
    let msg = match &err {
        Error::Aborted(a) => Message::Aborted(a.0.to_string()),
        e => Message::Failed(e.exit_code(), e.to_string()),
    };
    let _ = chan.send(&msg);
    sys.tracer.flush();
    // SAFETY: _exit skips atexit handlers and stdio flushing that belong to the parent's copy
    // of this process image; it is the correct way to end a forked child. Not nix: 0.29 has
    // no _exit (std::process::exit would run them).
    unsafe { libc::_exit(err.exit_code()) }
}

fn run(sys: &Sys, setup: &Setup<'_>, chan: &Channel) -> Result<Infallible> {
    // Inside a new pid namespace getpid() says 1; --step hints need the host's number.
    let pid = await_go(chan)?;
    sys.tracer.set_var("pid", pid.to_string());
    let exec = prepare(sys, setup, Some(chan))?;
    if let Call::Execve { path, .. } = &exec.call {
        let _ = chan.send(&Message::Exec(path.display().to_string()));
    }
    if setup.spec.init {
        become_init(sys, chan)?;
    }
    exec_container(sys, exec)
}

/// `--init`: this process forks; the fork goes on to run the container's program, and this
/// one stays as the container's process 1, a tiny init (what Docker's tini does): it passes
/// the signals dockling forwards on to the program, reaps every orphan the kernel gives it
/// (the zombies a program that never waits would leave), and ends with the program's exit
/// code (128 + the signal that killed it). Returns in the fork only.
fn become_init(sys: &Sys, chan: &Channel) -> Result<()> {
    let child = sys.clone_process(CloneFlags::empty())?;
    if child == 0 {
        return Ok(());
    }
    // The program's copy of the channel closes on its execve, which is how the engine
    // learns it started; this one must not keep the channel open meanwhile.
    let _ = sys.run(Call::Close {
        fd: chan.raw_fd(),
        object: "init's copy of the engine channel".into(),
    });
    // Every descriptor past stdio was only marked close-on-exec, and this process never
    // execs: closed now, or init would hold them for the container's life (the pipe on which
    // a detached container's monitor reports the start, which `run -d` reads to its end).
    // The tracer's own (a copy of the user's stderr, `--step`'s input) stay, so its events
    // still reach the user; they lead nowhere a container could use.
    for (first, last) in ranges_around(3, &sys.tracer.own_fds()) {
        let _ = sys.run(Call::CloseRangeNow { first, last });
    }
    sys.tracer.flush();
    let code = super::init::run(child);
    // SAFETY: _exit ends the container's init without running the engine's exit handlers.
    unsafe { libc::_exit(code) }
}

/// The descriptor ranges from `first` up that leave out each of `keep`: `close_range` over
/// them closes everything else.
fn ranges_around(first: u32, keep: &[std::os::fd::RawFd]) -> Vec<(u32, u32)> {
    let mut keep: Vec<u32> = keep
        .iter()
        .filter_map(|&fd| u32::try_from(fd).ok())
        .filter(|&fd| fd >= first)
        .collect();
    keep.sort_unstable();
    keep.dedup();
    let mut ranges = Vec::new();
    let mut from = first;
    for fd in keep {
        if fd > from {
            ranges.push((from, fd - 1));
        }
        from = fd + 1;
    }
    ranges.push((from, u32::MAX));
    ranges
}

/// The `execve` call the container's program is started with.
pub struct Exec {
    pub(super) call: Call,
    cwd: PathBuf,
    /// The signals this process ignores (inherited from the engine), to be reset.
    ignored: u64,
}

/// What the new process does first, right after `clone` (still in the step that started
/// it), before it waits for the engine's go-ahead.
pub fn first_acts(sys: &Sys, engine_lock: Option<std::os::fd::RawFd>) -> Result<()> {
    // A flock belongs to the open file, and `clone` shared it: while this process held it,
    // a killed engine's container would look kept (and be left alone) until this died too.
    if let Some(fd) = engine_lock {
        sys.run(Call::Close {
            fd,
            object: "the engine lock (only the engine keeps the container)".into(),
        })?;
    }
    // If dockling dies, so does the container (a foreground run has no other keeper).
    sys.run(Call::Prctl {
        option: Prctl::SetPdeathsig,
        arg: libc::SIGKILL as u64,
    })?;
    // Until execve this process is the dockling binary: keep other processes in the container
    // from opening its /proc files (/proc/<pid>/exe, CVE-2019-5736).
    sys.run(Call::Prctl {
        option: Prctl::SetDumpable,
        arg: 0,
    })?;
    Ok(())
}

/// Every step between the engine's go-ahead and exec. Used for real by the child and, against
/// the recorder, by `dockling explain` (then `chan` is `None`).
pub fn prepare(sys: &Sys, setup: &Setup<'_>, chan: Option<&Channel>) -> Result<Exec> {
    let spec = setup.spec;
    // Read while the host's /proc is still the one mounted (the container's may be missing).
    let ignored = sys.ignored_signals();
    // Into its cgroup before anything else: the engine made it (`cgroups.create`); moving
    // itself is cheaper than being moved (see `join_self`), and its cgroup namespace below
    // must be rooted there.
    if let Some(cg) = setup.cgroup {
        sys.step(StepId::CgroupsJoin)?;
        cg.join_self(sys)?;
    }
    if setup.cgroup_ns {
        sys.step(StepId::NamespacesCgroup)?;
        sys.unshare(CloneFlags::CLONE_NEWCGROUP)?;
    }
    if spec.namespaces.net {
        sys.step(StepId::NetworkLoopback)?;
        sys.if_up("lo")?;
    }
    // `--network container:X`: into X's network namespace, its interfaces and addresses.
    if let Some((fd, pid)) = setup.join_netns {
        sys.run(Call::Setns {
            fd,
            kind: CloneFlags::CLONE_NEWNET,
            pid,
        })?;
        sys.run(Call::Close {
            fd,
            object: format!("/proc/{pid}/ns/net"),
        })?;
    }
    let mut rootfs = Rootfs::new(sys, spec);
    rootfs.make_private()?;
    rootfs.mount_layers(&setup.overlay_data)?;
    rootfs.copy_up_volumes()?;
    rootfs.mount_kernel_filesystems(&setup.extra_mounts)?;
    rootfs.create_devices()?;
    rootfs.bind_etc_files()?;
    rootfs.bind_volumes()?;
    rootfs.mask_paths()?;
    rootfs.switch_root()?;

    if !sys.is_dry_run() {
        // Docker creates a missing working directory (as root, before the user switch); each
        // missing level is a traced mkdir. We are inside the new root, so nothing escapes it.
        let mut missing: Vec<&Path> = spec
            .cwd
            .ancestors()
            .take_while(|p| !sys.exists(p))
            .collect();
        missing.reverse();
        if !missing.is_empty() {
            sys.step(StepId::RootfsWorkdir)?;
        }
        for dir in missing {
            sys.mkdir(dir, 0o755)?;
        }
    }
    if spec.namespaces.uts {
        sys.step(StepId::NamespacesHostname)?;
        sys.run(Call::Sethostname {
            name: spec.hostname.clone(),
        })?;
    }
    terminal(sys, spec, setup.null_stdin, chan)?;
    if let Some(r) = setup.stdin_pipe {
        sys.run(Call::Dup2 {
            old: r,
            new: 0,
            what: Stdio::StdinPipe,
        })?;
    }
    if let Some(w) = setup.stdout_relay {
        let targets: &[i32] = if setup.stderr_relay { &[1, 2] } else { &[1] };
        for &new in targets {
            sys.run(Call::Dup2 {
                old: w,
                new,
                what: Stdio::Relay,
            })?;
        }
    }
    if let Some(w) = setup.stderr_pipe {
        sys.run(Call::Dup2 {
            old: w,
            new: 2,
            what: Stdio::Relay,
        })?;
    }

    secure_and_find(
        sys,
        spec,
        &caps::Sets::docker(&spec.capabilities),
        ignored,
        0,
    )
}

/// The last steps before `execve`, shared by the container's first process and `exec`: the
/// seccomp filter, the capability sets (`sets`: Docker's for `dockling run`, the config's for
/// an OCI bundle), the user, and the program looked up in PATH. The `preserve_fds`
/// descriptors after stderr stay open for the program (`runtime create/run/exec
/// --preserve-fds`); every other one past stderr closes on `execve`.
pub(super) fn secure_and_find(
    sys: &Sys,
    spec: &RunSpec,
    sets: &caps::Sets,
    ignored: u64,
    preserve_fds: u32,
) -> Result<Exec> {
    let filtered = spec.seccomp.is_some() || spec.no_new_privileges;
    if filtered {
        sys.step(StepId::SecuritySeccomp)?;
    }
    // Marked before the seccomp filter goes in: a bundle's filter may refuse close_range (an
    // allow-list older than Linux 5.9 that answers every call it does not name with an errno,
    // as runtime-tools' default one does), and the mark only acts at execve anyway. Nothing
    // opened from here to execve lacks O_CLOEXEC.
    sys.run(Call::CloseRange {
        first: 3u32.saturating_add(preserve_fds),
        preserving: preserve_fds > 0,
    })?;
    if filtered {
        if spec.no_new_privileges {
            sys.run(Call::Prctl {
                option: Prctl::SetNoNewPrivs,
                arg: 1,
            })?;
        }
        if let Some(policy) = &spec.seccomp {
            // Installed while we still hold CAP_SYS_ADMIN (needed without no_new_privs); the
            // calls left before execve (prctl, capset, setgroups, setres*id, execve) are all
            // on Docker's allow-list. The program is compiled from the same policy the bundle
            // holds (a profile file's was checked when the spec was built, Docker's own by its
            // tests: this cannot fail in practice, and if it did the start stops here).
            let program = super::seccomp::bpf::compile(policy)
                .map_err(|reason| super::RuntimeError::SeccompCompile { reason })?;
            sys.run(Call::Seccomp {
                filter: program.filter,
                about: program.about,
            })?;
        }
    }

    sys.step(StepId::SecurityCapabilities)?;
    for cap in 0..=sys.last_cap() {
        if sets.bounding & (1 << cap) == 0 {
            sys.run(Call::Prctl {
                option: Prctl::CapBsetDrop,
                arg: cap as u64,
            })?;
        }
    }
    sys.run(Call::Prctl {
        option: Prctl::CapAmbientClearAll,
        arg: 0,
    })?;
    // The effective and permitted sets are only narrowed after the user switch: setgroups
    // and setresgid need CAP_SETGID, setresuid CAP_SETUID, and `--cap-drop ALL` may have
    // taken both away from the container. Without KEEPCAPS, leaving uid 0 would empty the
    // permitted set and the capset below could not give anything back (capabilities(7),
    // "Effect of user ID changes on capabilities"); execve resets the flag.
    sys.run(Call::Prctl {
        option: Prctl::SetKeepCaps,
        arg: 1,
    })?;

    sys.step(StepId::SecurityUser)?;
    sys.run(Call::Setgroups {
        gids: spec.user.additional_gids.clone(),
    })?;
    sys.run(Call::Setresgid { gid: spec.user.gid })?;
    sys.run(Call::Setresuid { uid: spec.user.uid })?;
    // Now the container's sets (inheritable empty as in Docker for `dockling run`). For a
    // user other than root, execve still leaves permitted and effective empty unless they are
    // ambient (no file capabilities): the bounding set limits what setuid programs could
    // regain.
    sys.run(Call::Capset {
        effective: sets.effective,
        permitted: sets.permitted,
        inheritable: sets.inheritable,
    })?;
    // Raised last: the kernel takes an ambient capability only while it is permitted and
    // inheritable, which the capset just made it (checked when the config was read).
    for cap in 0..=sys.last_cap() {
        if sets.ambient & (1 << cap) != 0 {
            sys.run(Call::Prctl {
                option: Prctl::CapAmbientRaise,
                arg: cap as u64,
            })?;
        }
    }

    sys.step(StepId::ProcessExec)?;
    let path = if sys.is_dry_run() {
        PathBuf::from(&spec.args[0])
    } else {
        lookup(sys, &spec.args[0], &spec.env, &spec.cwd)?
    };
    Ok(Exec {
        call: Call::Execve {
            path,
            argv: spec.args.clone(),
            envp: spec.env.clone(),
        },
        cwd: spec.cwd.clone(),
        ignored,
    })
}

/// The process `dockling exec` starts, once it is inside the container's namespaces (see
/// `commands::exec`): it waits for the go-ahead (its cgroup joined), sets up its terminal,
/// then does what the container's first process does last. Never returns.
pub fn exec_main(sys: &Sys, spec: &RunSpec, chan: Channel) -> ! {
    sys.tracer.set_process("exec");
    match first_acts(sys, None).and_then(|()| exec_steps(sys, spec, &chan)) {
        Ok(never) => match never {},
        Err(e) => fail(sys, &chan, e),
    }
}

fn exec_steps(sys: &Sys, spec: &RunSpec, chan: &Channel) -> Result<Infallible> {
    await_go(chan)?;
    let ignored = sys.ignored_signals();
    terminal(sys, spec, false, Some(chan))?;
    let exec = secure_and_find(
        sys,
        spec,
        &caps::Sets::docker(&spec.capabilities),
        ignored,
        0,
    )?;
    if let Call::Execve { path, .. } = &exec.call {
        let _ = chan.send(&Message::Exec(path.display().to_string()));
    }
    exec_container(sys, exec)
}

/// The terminal (`-t`), or /dev/null as stdin when the container gets no input (no `-i`, or
/// detached).
pub(super) fn terminal(
    sys: &Sys,
    spec: &RunSpec,
    null_stdin: bool,
    chan: Option<&Channel>,
) -> Result<()> {
    if spec.tty {
        sys.step(StepId::ProcessTerminal)?;
        let slave = if sys.is_dry_run() {
            None
        } else {
            Some(open_pty(sys, chan)?)
        };
        let fd = slave.as_ref().map(|s| s.as_raw_fd()).unwrap_or(3);
        sys.run(Call::Setsid)?;
        sys.run(Call::IoctlSetCtty { fd })?;
        for target in 0..3 {
            sys.run(Call::Dup2 {
                old: fd,
                new: target,
                what: Stdio::Terminal,
            })?;
        }
    } else if !spec.interactive || null_stdin {
        // No -t and no -i: stdin is /dev/null; stdout and stderr stay the engine's.
        sys.step_variant(StepId::ProcessTerminal, Some("null_stdin"))?;
        let null = sys.open(Path::new("/dev/null"), libc::O_RDONLY)?;
        let fd = if sys.is_dry_run() {
            100
        } else {
            null.as_raw_fd()
        };
        sys.run(Call::Dup2 {
            old: fd,
            new: 0,
            what: Stdio::Null,
        })?;
    }
    if !spec.tty {
        // Without -t the container writes to (and with -i reads) dockling's own descriptors,
        // often the user's terminal: in a session of its own that terminal is not its
        // controlling one, so it cannot push keystrokes into the user's shell with TIOCSTI
        // (CVE-2017-5226) nor get the terminal's signals.
        sys.run(Call::Setsid)?;
    }
    Ok(())
}

/// Open a pseudo-terminal in the container's own devpts and hand the master to dockling,
/// which relays it to the user's terminal. Returns the slave side.
fn open_pty(sys: &Sys, chan: Option<&Channel>) -> Result<OwnedFd> {
    let fd = sys.open(Path::new("/dev/ptmx"), libc::O_RDWR | libc::O_NOCTTY)?;
    sys.run(Call::IoctlPty {
        fd: fd.as_raw_fd(),
        op: PtyOp::Unlock,
    })?;
    let n = match sys.perform(Call::IoctlPty {
        fd: fd.as_raw_fd(),
        op: PtyOp::Number,
    })? {
        Ret::PtyNumber(n) => n,
        _ => 0,
    };
    let slave = sys.open(&PathBuf::from(format!("/dev/pts/{n}")), libc::O_RDWR)?;
    if let Some(chan) = chan {
        chan.send(&Message::Terminal(fd))
            .map_err(|source| super::RuntimeError::SendTerminal { source })?;
    }
    Ok(slave)
}

/// Find the program like a shell would, with the container's own `PATH` (Docker does the same
/// lookup and reports 127/126 the same way). Each probe is a traced call.
fn lookup(sys: &Sys, cmd: &str, env: &[String], cwd: &Path) -> Result<PathBuf> {
    let is_dir = |p: &Path| {
        sys.stat_mode(p)
            .is_ok_and(|m| m & libc::S_IFMT == libc::S_IFDIR)
    };
    let check = |p: &Path| -> Result<PathBuf> {
        match sys.access(p, libc::X_OK).map_err(|e| e.errno) {
            Ok(()) if is_dir(p) => Err(Error::CannotInvoke(format!(
                "exec: {:?}: is a directory",
                p.display().to_string()
            ))),
            Ok(()) => Ok(p.to_path_buf()),
            Err(Errno::EACCES) => Err(Error::CannotInvoke(format!(
                "exec: {:?}: permission denied",
                p.display().to_string()
            ))),
            Err(_) => Err(Error::CommandNotFound(format!(
                "exec: {:?}: no such file or directory",
                p.display().to_string()
            ))),
        }
    };
    if cmd.contains('/') {
        // A relative path (`./hello.sh`) is the working directory's, where the program runs:
        // this lookup happens before the chdir.
        return check(&cwd.join(cmd));
    }
    let path = env
        .iter()
        .find_map(|e| e.strip_prefix("PATH="))
        .unwrap_or("/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
    let mut denied = None;
    for dir in path.split(':').filter(|d| !d.is_empty()) {
        let candidate = Path::new(dir).join(cmd);
        // One access(X_OK) per directory (it was access(F_OK), then X_OK): ENOENT or ENOTDIR
        // mean not there. Only EACCES asks again whether the file is there (then it is not
        // executable: 126 unless a later directory has the program) or a directory on the
        // way may not be searched (then it is not there for us: 127, as for a shell).
        match sys.access(&candidate, libc::X_OK).map_err(|e| e.errno) {
            Ok(()) if is_dir(&candidate) => {
                denied = Some(Error::CannotInvoke(format!(
                    "exec: {:?}: is a directory",
                    candidate.display().to_string()
                )))
            }
            Ok(()) => return Ok(candidate),
            Err(Errno::EACCES) if sys.exists(&candidate) => {
                denied = Some(Error::CannotInvoke(format!(
                    "exec: {:?}: permission denied",
                    candidate.display().to_string()
                )))
            }
            Err(_) => {}
        }
    }
    Err(denied.unwrap_or_else(|| {
        Error::CommandNotFound(format!("exec: {cmd:?}: executable file not found in $PATH"))
    }))
}

pub(super) fn exec_container(sys: &Sys, exec: Exec) -> Result<Infallible> {
    sys.run(Call::Chdir {
        path: exec.cwd.clone(),
    })
    .map_err(|e| {
        Error::CannotInvoke(format!(
            "chdir to the working directory {}: {}",
            exec.cwd.display(),
            e.errno.desc()
        ))
    })?;
    // execve resets caught signals to their default action but keeps ignored ones ignored
    // (signal(7), "Signal disposition"; execve(2)): what the engine ignores — SIGPIPE, as
    // every Rust program does, and whatever its own parent ignored (nohup's SIGHUP, a shell's
    // SIGINT/SIGQUIT for `&`) — would be ignored by the container's program too. Docker's
    // containers start with every signal at its default, so each ignored one is reset here.
    for signal in 1..=64 {
        if exec.ignored & (1 << (signal - 1)) != 0
            && signal != libc::SIGKILL
            && signal != libc::SIGSTOP
        {
            sys.run(Call::SigactionDefault { signal })?;
        }
    }
    // The engine blocked these signals to forward them; the container starts with none blocked.
    sys.run(Call::UnblockSignals)?;
    let name = match &exec.call {
        Call::Execve { path, .. } => path.display().to_string(),
        _ => String::new(),
    };
    let err = sys
        .run(exec.call)
        .expect_err("execve returns only on failure");
    Err(match err.errno {
        Errno::ENOENT => {
            Error::CommandNotFound(format!("exec: {name:?}: no such file or directory"))
        }
        e => Error::CannotInvoke(format!("exec: {name:?}: {}", e.desc().to_lowercase())),
    })
}

#[cfg(test)]
mod close_tests {
    use super::ranges_around;

    #[test]
    fn ranges_leave_out_the_kept_descriptors() {
        assert_eq!(ranges_around(3, &[]), vec![(3, u32::MAX)]);
        assert_eq!(ranges_around(3, &[2, 3]), vec![(4, u32::MAX)]);
        assert_eq!(
            ranges_around(3, &[9, 5, 5]),
            vec![(3, 4), (6, 8), (10, u32::MAX)]
        );
    }
}
