//! The container of an OCI bundle (`dockling runtime create`/`run`): the same steps, the same
//! traced seam and the same child as `dockling run`'s, arranged as the runtime spec's
//! lifecycle asks: `create` makes everything and leaves the container's first process waiting
//! just before its `execve`; `start` lets it go.
//!
//! The handshake is runc's `exec.fifo`: the engine makes a FIFO in the container's state
//! directory and opens it `O_PATH` before `clone`; the child, once ready, says so on the
//! channel and opens the FIFO for writing again through `/proc/self/fd/N` (its `/proc` now
//! the container's own). That open blocks until `start` opens the other end, reads the byte
//! the child writes and removes the FIFO. Until then the process is the dockling binary (not
//! dumpable), waiting, with everything made. The child's end is close-on-exec and stays open:
//! its closing tells `start` the `execve` is done (a failed one writes a second byte first).
//!
//! What differs from `dockling run` is data: the root is the bundle's (bound onto itself,
//! not layers), the mounts, masked and read-only paths are the config's, there are no /etc
//! files or networks (an OCI runtime makes namespaces; the caller plumbs them), the
//! process's stdio are the caller's, and nothing ties the container to `create`'s life (no
//! parent-death signal: the caller's subreaper inherits it).

use std::convert::Infallible;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};

use nix::sched::CloneFlags;

use super::channel::{self, Channel, Message};
use super::child;
use super::rootfs::Rootfs;
use crate::error::{Error, Result};
use crate::plan::StepId;
use crate::spec::RunSpec;
use crate::specconv::oci::OciParts;
use crate::sys::{Call, Prctl, Ret, Sys};

/// The runtime spec version dockling writes and reads up to.
pub const OCI_VERSION: &str = "1.0.2";

/// What `create` needs besides the spec.
pub struct CreateOptions<'a> {
    /// What only an OCI config says (mounts, masks, sysctls, joins...).
    pub parts: &'a OciParts,
    /// The container's cgroup (`None` with `--cgroup-manager disabled`).
    pub cgroup: Option<&'a crate::cgroups::Cgroup>,
    /// The `exec.fifo` in the container's state directory.
    pub fifo: &'a Path,
    /// `--console-socket`: where the terminal's master goes (`process.terminal`).
    pub console_socket: Option<&'a Path>,
    /// `--preserve-fds`: descriptors 3 to 2+N of the caller go to the container's process
    /// (it is a clone of `create`, so it holds them already; they are only left open).
    pub preserve_fds: u32,
    /// Told the first process's pid right after `clone`, before anything else: a `create`
    /// killed from then on leaves a record naming it, which `delete --force` ends.
    pub on_clone: &'a dyn Fn(i32),
}

/// A container made and waiting for `start`.
pub struct Created {
    /// Its first process, as the host sees it.
    pub pid: i32,
    /// The program it will run, found in the container's `PATH`.
    pub program: String,
    /// The terminal's master end when there is a terminal and no console socket to hand it
    /// to: a foreground `run` relays it itself.
    pub master: Option<OwnedFd>,
}

/// Make the container: cgroup, namespaces, root, mounts, security; its first process waits
/// on the FIFO when this returns. On failure nothing of it is left (the cgroup removed, the
/// process killed and collected).
pub fn create(sys: &Sys, spec: &RunSpec, opts: &CreateOptions<'_>) -> Result<Created> {
    sys.tracer
        .set_var("bundle", spec.bundle.display().to_string());
    sys.tracer
        .set_var("rootfs", opts.parts.root.display().to_string());
    sys.step_variant(StepId::ImageResolve, Some("bundle"))?;
    sys.tracer.note(&format!(
        "an OCI bundle: {} (its root {})",
        spec.bundle.display(),
        opts.parts.root.display()
    ));
    // 0622 exactly, whatever the caller's umask: the container's process opens it for writing
    // after it became the container's user, maybe without any capability (runc does the same).
    sys.with_umask(0, || {
        sys.run(Call::Mkfifo {
            path: opts.fifo.to_path_buf(),
        })
    })?;
    if let (Some(cg), Some(limits)) = (opts.cgroup, spec.cgroup.as_ref()) {
        sys.step(StepId::CgroupsCreate)?;
        // The config's rules, runc's allowed devices and the config's own nodes.
        let rules = opts
            .parts
            .device_rules()
            .map_err(|e| Error::Usage(e.to_string()))?;
        cg.create(sys, limits, &rules)?;
        // The config's limits, as given (`Resources::from_oci`), written as `update` writes
        // them: no Docker defaults (`dockling run -m`'s memory + swap at twice the memory).
        if let Err(e) = cg.update(sys, &opts.parts.resources) {
            let _ = cg.destroy(sys);
            return Err(e);
        }
    }
    let made = launch(sys, spec, opts);
    if made.is_err() {
        if let Some(cg) = opts.cgroup {
            let _ = cg.destroy(sys);
        }
    }
    made
}

fn launch(sys: &Sys, spec: &RunSpec, opts: &CreateOptions<'_>) -> Result<Created> {
    // Namespaces to join by path: opened now, joined by the child (a pid namespace by this
    // process before clone: it applies to the children it makes).
    let mut joins: Vec<(RawFd, CloneFlags)> = Vec::new();
    let mut owned: Vec<OwnedFd> = Vec::new();
    // This process's own pid namespace, to come back to right after the clone: the hooks it
    // runs (prestart, createRuntime) are the runtime's, in the runtime's namespaces (the
    // spec's words), and a fork after a pid namespace join would be born in the container's.
    let own_pid = if opts
        .parts
        .joins
        .iter()
        .any(|(k, _)| *k == CloneFlags::CLONE_NEWPID)
    {
        Some(sys.open(
            Path::new("/proc/self/ns/pid"),
            libc::O_RDONLY | libc::O_CLOEXEC,
        )?)
    } else {
        None
    };
    for (kind, path) in &opts.parts.joins {
        let fd = match sys.perform(Call::Open {
            path: path.clone(),
            flags: libc::O_RDONLY | libc::O_CLOEXEC,
            mode: 0,
        })? {
            Ret::Fd(fd) => fd,
            other => other.value() as i32,
        };
        // SAFETY: the kernel just returned this descriptor and nothing else owns it.
        let fd = unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) };
        if *kind == CloneFlags::CLONE_NEWPID {
            sys.run(Call::Setns {
                fd: fd.as_raw_fd(),
                kind: *kind,
                pid: 1,
            })?;
        } else {
            joins.push((fd.as_raw_fd(), *kind));
        }
        owned.push(fd);
    }
    let fifo = sys.open(opts.fifo, libc::O_PATH | libc::O_CLOEXEC)?;
    sys.step(StepId::NamespacesClone)?;
    let (parent_end, child_end) = channel::pair(sys)?;
    // No new namespace of a kind that is joined: a pid namespace joined above included, as
    // clone(CLONE_NEWPID) fails with EINVAL once this process's children go elsewhere.
    let mut flags = super::clone_flags(spec);
    for (kind, _) in &opts.parts.joins {
        flags.remove(*kind);
    }
    let pid = sys.clone_process(flags)?;
    if pid == 0 && !sys.is_dry_run() {
        drop(parent_end);
        child_main(sys, spec, opts, &joins, fifo.as_raw_fd(), child_end);
    }
    drop(child_end);
    drop(owned);
    if !sys.is_dry_run() {
        (opts.on_clone)(pid);
    }
    if let Some(own) = own_pid {
        let back = sys.run(Call::Setns {
            fd: own.as_raw_fd(),
            kind: CloneFlags::CLONE_NEWPID,
            pid: 0,
        });
        if let Err(e) = back {
            if !sys.is_dry_run() {
                let _ = sys.run(Call::Kill {
                    pid,
                    signal: libc::SIGKILL,
                });
                let _ = sys.wait4(pid);
            }
            return Err(e.into());
        }
    }
    sys.tracer.set_var("pid", pid.to_string());
    let mut master = None;
    let ready = (|| {
        parent_end
            .send(&Message::Go(pid))
            .map_err(Error::io("send", "container channel"))?;
        loop {
            match parent_end
                .recv()
                .map_err(Error::io("receive", "container channel"))?
            {
                Message::Terminal(fd) => master = Some(fd),
                Message::Exec(program) => {
                    if let Some(path) = opts.console_socket {
                        if let Some(m) = master.take() {
                            hand_terminal(sys, m, path)?;
                        }
                    }
                    return Ok(program);
                }
                Message::Failed(code, text) => {
                    return Err(match code {
                        127 => Error::CommandNotFound(text),
                        126 => Error::CannotInvoke(text),
                        _ => super::RuntimeError::ContainerFailed { message: text }.into(),
                    })
                }
                Message::Aborted(step) => {
                    return Err(Error::Usage(format!("aborted before the step {step}")))
                }
                Message::Closed => {
                    return Err(super::RuntimeError::ContainerFailed {
                        message: "the container's process ended before it was ready".into(),
                    }
                    .into())
                }
                Message::Hooks => {
                    // The container's namespaces exist and its mounts are made; it waits
                    // before pivot_root while the runtime-side hooks run.
                    let h = &opts.parts.hooks;
                    let state = super::hooks::state(
                        &spec.id,
                        "creating",
                        Some(pid),
                        &spec.bundle,
                        &opts.parts.annotations,
                    );
                    super::hooks::run(sys, "prestart", &h.prestart, &state, Some(&spec.bundle))?;
                    super::hooks::run(
                        sys,
                        "createRuntime",
                        &h.create_runtime,
                        &state,
                        Some(&spec.bundle),
                    )?;
                    parent_end
                        .send(&Message::Go(pid))
                        .map_err(Error::io("send", "container channel"))?;
                }
                Message::Go(_) => {}
            }
        }
    })();
    let program = match ready {
        Ok(p) => p,
        Err(e) => {
            if !sys.is_dry_run() {
                let _ = sys.run(Call::Kill {
                    pid,
                    signal: libc::SIGKILL,
                });
                let _ = sys.wait4(pid);
            }
            return Err(e);
        }
    };
    Ok(Created {
        pid,
        program,
        master,
    })
}

/// The cloned child: every step up to `execve`, then the wait on the FIFO. Never returns.
fn child_main(
    sys: &Sys,
    spec: &RunSpec,
    opts: &CreateOptions<'_>,
    joins: &[(RawFd, CloneFlags)],
    fifo: RawFd,
    chan: Channel,
) -> ! {
    sys.tracer.set_process("container");
    match child_steps(sys, spec, opts, joins, fifo, &chan) {
        Ok(never) => match never {},
        Err(e) => child::fail(sys, &chan, e),
    }
}

fn child_steps(
    sys: &Sys,
    spec: &RunSpec,
    opts: &CreateOptions<'_>,
    joins: &[(RawFd, CloneFlags)],
    fifo: RawFd,
    chan: &Channel,
) -> Result<Infallible> {
    // Until execve this process is the dockling binary: nothing in the container may open
    // its /proc files (CVE-2019-5736). No parent-death signal: create exits while it waits.
    sys.run(Call::Prctl {
        option: Prctl::SetDumpable,
        arg: 0,
    })?;
    let pid = child::await_go(chan)?;
    sys.tracer.set_var("pid", pid.to_string());
    let ignored = sys.ignored_signals();
    if let Some(cg) = opts.cgroup {
        sys.step(StepId::CgroupsJoin)?;
        cg.join_self(sys)?;
    }
    if spec.namespaces.cgroup && opts.cgroup.is_some() {
        sys.step(StepId::NamespacesCgroup)?;
        sys.unshare(CloneFlags::CLONE_NEWCGROUP)?;
    }
    for (fd, kind) in joins {
        sys.run(Call::Setns {
            fd: *fd,
            kind: *kind,
            pid: 1,
        })?;
    }
    if spec.namespaces.net && !joins.iter().any(|(_, k)| *k == CloneFlags::CLONE_NEWNET) {
        sys.step(StepId::NetworkLoopback)?;
        sys.if_up("lo")?;
    }
    let parts = opts.parts;
    let mut rootfs = Rootfs::at(sys, spec, parts.root.clone());
    rootfs.make_propagation(parts.rootfs_propagation)?;
    rootfs.mount_layers("")?;
    let cgroup_mounts = opts
        .cgroup
        .map(|cg| cg.container_mounts())
        .unwrap_or_default();
    let own = rootfs.mount_config(&parts.mounts, &spec.bundle, &cgroup_mounts)?;
    // A /dev bound from elsewhere (the host's, `rbind`) is that tree's own: no node is made
    // in it, neither the standard ones nor the config's (runc's `needsSetupDev`); a mknod
    // there would land on the host. Whose /dev it is, is told by its mount, not by the
    // destinations' names: an image's symlink can lead a bind to `/hostdev` onto `/dev`.
    if rootfs.dev_is_own_tmpfs(&own)? {
        rootfs.create_devices()?;
    }
    // The config's devices, anywhere in the root (the standard ones exist already when /dev
    // is a tmpfs, and are left as they are); on a bind of another tree, none.
    rootfs.create_config_devices(&parts.devices, &own)?;
    for (key, value) in &parts.sysctl {
        rootfs.write_inside(
            &PathBuf::from("/proc/sys").join(key.replace('.', "/")),
            value,
        )?;
    }
    rootfs.make_workdir(&spec.cwd)?;
    rootfs.mask_given(&parts.masked_paths, &parts.readonly_paths)?;
    let hooks = &parts.hooks;
    if !(hooks.prestart.is_empty() && hooks.create_runtime.is_empty()) {
        chan.send(&Message::Hooks)
            .map_err(Error::io("send", "container channel"))?;
        child::await_go(chan)?;
    }
    if !hooks.create_container.is_empty() {
        // Run by this process: in the container's namespaces and cgroup, the host's root
        // still reachable (the root is not switched yet), the bundle the working directory.
        let state = super::hooks::state(
            &spec.id,
            "creating",
            Some(pid),
            &spec.bundle,
            &parts.annotations,
        );
        super::hooks::run(
            sys,
            "createContainer",
            &hooks.create_container,
            &state,
            Some(&spec.bundle),
        )?;
    }
    rootfs.switch_root()?;
    // Both names belong to the UTS namespace (specconv refused them without one of the
    // container's own).
    if spec.namespaces.uts && (!spec.hostname.is_empty() || parts.domainname.is_some()) {
        sys.step(StepId::NamespacesHostname)?;
        if !spec.hostname.is_empty() {
            sys.run(Call::Sethostname {
                name: spec.hostname.clone(),
            })?;
        }
        if let Some(name) = &parts.domainname {
            sys.run(Call::Setdomainname { name: name.clone() })?;
        }
    }
    process_steps(sys, spec, parts, chan)?;
    let exec = child::secure_and_find(sys, spec, &parts.caps.sets(), ignored, opts.preserve_fds)?;
    // Ready: the engine may record the container and exit. Then wait for `start`.
    if let Call::Execve { path, .. } = &exec.call {
        let _ = chan.send(&Message::Exec(path.display().to_string()));
    }
    let w = sys.open(
        Path::new(&format!("/proc/self/fd/{fifo}")),
        libc::O_WRONLY | libc::O_CLOEXEC,
    )?;
    // `start` opened the FIFO: the go-ahead. The startContainer hooks run now, inside the
    // container, before the byte `start` waits for: a failing one fails `start`, which reads
    // `E` and the reason instead of `0` (nobody reads the channel any more), and this
    // process ends.
    if !hooks.start_container.is_empty() {
        let state = super::hooks::state(
            &spec.id,
            "created",
            Some(pid),
            &spec.bundle,
            &parts.annotations,
        );
        if let Err(e) =
            super::hooks::run(sys, "startContainer", &hooks.start_container, &state, None)
        {
            let _ = sys.run(Call::Write {
                fd: w.as_raw_fd(),
                path: "exec.fifo".into(),
                data: format!("E{e}"),
            });
            return Err(e);
        }
    }
    sys.run(Call::Write {
        fd: w.as_raw_fd(),
        path: "exec.fifo".into(),
        data: "0".into(),
    })?;
    // The FIFO stays open (close-on-exec) through `execve`: `start` reads on to its end, which
    // a successful `execve` makes, and a failed one would make by this process's exit, after
    // a second byte that says so.
    match child::exec_container(sys, exec) {
        Ok(never) => match never {},
        Err(e) => {
            let _ = sys.run(Call::Write {
                fd: w.as_raw_fd(),
                path: "exec.fifo".into(),
                data: "1".into(),
            });
            Err(e)
        }
    }
}

/// The config's `process` steps that come after the root is the container's, shared by the
/// first process (`create`) and `runtime exec`'s: rlimits (`prlimit64` on itself), the umask,
/// and the terminal or a session of its own.
fn process_steps(sys: &Sys, spec: &RunSpec, parts: &OciParts, chan: &Channel) -> Result<()> {
    for r in &parts.rlimits {
        sys.run(Call::Prlimit {
            pid: 0,
            resource: r.resource,
            name: r.name.clone(),
            soft: r.soft,
            hard: r.hard,
        })?;
    }
    if let Some(mask) = parts.umask {
        sys.run(Call::Umask { mask })?;
    }
    // The process's I/O priority, scheduling and memory policy: all kept across execve, set
    // while this process still holds CAP_SYS_NICE (a real-time policy or class needs it).
    if let Some((class, level)) = parts.io_priority {
        sys.run(Call::IoprioSet { class, level })
            .map_err(|e| refused("process.ioPriority", e))?;
    }
    if let Some(attr) = parts.scheduler {
        sys.run(Call::SchedSetattr { attr })
            .map_err(|e| refused("process.scheduler", e))?;
    }
    if let Some(p) = &parts.memory_policy {
        sys.run(Call::SetMempolicy {
            mode: p.mode,
            flags: p.flags,
            nodes: p.nodes.clone(),
            // The kernel reads one bit fewer than it is told (set_mempolicy(2), BUGS).
            maxnode: p.nodes.len() as u64 * 64 + 1,
        })
        .map_err(|e| refused("linux.memoryPolicy", e))?;
    }
    if spec.tty {
        // A new terminal in the container's own devpts: its master to the engine (which hands
        // it to the console socket), its slave as stdin, stdout and stderr, the controlling
        // terminal of a session of its own.
        child::terminal(sys, spec, false, Some(chan))?;
        if let Some((rows, cols)) = parts.console_size {
            // On its stdin, the slave now.
            sys.run(Call::IoctlPty {
                fd: 0,
                op: crate::sys::call::PtyOp::Winsize { rows, cols },
            })?;
        }
    } else {
        // No terminal: the caller's stdio are the container's. In a session of its own, so a
        // terminal among them is not its controlling one (TIOCSTI, CVE-2017-5226).
        sys.run(Call::Setsid)?;
    }
    Ok(())
}

/// What `runtime exec` needs besides the process's spec.
pub struct ExecOptions<'a> {
    /// The process's rlimits and umask (`OciParts` of the exec'd process).
    pub parts: &'a OciParts,
    /// The container's first process: pid and start time as recorded.
    pub init: (i32, u64),
    /// The namespaces to join, in order ([`super::exec::namespaces`]).
    pub namespaces: Vec<(&'static str, CloneFlags)>,
    /// The container entered its root with `chroot(2)` (`--no-pivot`).
    pub chroot: bool,
    /// The container's cgroup (`None` with `--cgroup-manager disabled`).
    pub cgroup: Option<&'a crate::cgroups::Cgroup>,
    /// `--console-socket`: where the terminal's master goes (`process.terminal`); without
    /// one, a foreground exec relays the terminal itself.
    pub console_socket: Option<&'a Path>,
    /// `--preserve-fds`: descriptors 3 to 2+N go to the process.
    pub preserve_fds: u32,
    /// Return once the process runs (`--detach`) instead of waiting for it.
    pub detach: bool,
    /// Told the process's pid once it has `execve`d (before a detached exec returns): the
    /// pid file.
    pub on_started: &'a dyn Fn(i32) -> Result<()>,
}

/// How a `runtime exec` ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExecEnd {
    /// The container's first process is not the recorded one any more: it stopped.
    Stopped,
    /// `--detach`: the process runs.
    Detached,
    /// The process's exit code (128 + signal when a signal ended it).
    Exited(i32),
}

/// `runtime exec`: a process of `spec` (args, env, cwd, user, capabilities, seccomp,
/// no_new_privileges, terminal) inside the running container, started as `dockling exec`
/// starts one ([`super::exec`]), with the config's process steps ([`process_steps`]).
pub fn exec(sys: &Sys, spec: &RunSpec, opts: &ExecOptions<'_>) -> Result<ExecEnd> {
    let (pid, start) = opts.init;
    sys.tracer.set_var("pid", pid.to_string());
    let Some(entry) = super::exec::open(sys, pid, start, &opts.namespaces, opts.chroot)? else {
        return Ok(ExecEnd::Stopped);
    };
    let started = super::exec::spawn(sys, entry, opts.cgroup, |chan| {
        exec_main(sys, spec, opts.parts, opts.preserve_fds, chan)
    })?;
    let end = follow(sys, spec, opts, started.pid, &started.chan);
    super::io::restore_signals(sys, started.old_mask);
    end
}

/// The engine's side once the process is in the container's cgroup: its `execve` awaited,
/// its terminal handed on, the pid told, then (in the foreground) waited for.
fn follow(
    sys: &Sys,
    spec: &RunSpec,
    opts: &ExecOptions<'_>,
    pid: i32,
    chan: &Channel,
) -> Result<ExecEnd> {
    let since = std::time::Instant::now();
    let (master, program) = match super::await_exec(chan, &spec.args[0]) {
        Ok(got) => got,
        Err(e) => {
            // It reported the failure and exits: collected here, its parent.
            let _ = sys.wait4(pid);
            return Err(e);
        }
    };
    if sys.tracer.enabled() {
        super::record_exec(sys, "exec", spec, program, since.elapsed());
    }
    // The process runs its program now: if its terminal or its pid cannot reach the caller,
    // it goes (killed and collected, as runc does), not left running unreported.
    let handed = (|| {
        let master = match (master, opts.console_socket) {
            (Some(m), Some(path)) => {
                hand_terminal(sys, m, path)?;
                None
            }
            (m, _) => m,
        };
        (opts.on_started)(pid)?;
        Ok(master)
    })();
    let master = match handed {
        Ok(m) => m,
        Err(e) => {
            let _ = sys.run(Call::Kill {
                pid,
                signal: libc::SIGKILL,
            });
            let _ = sys.wait4(pid);
            return Err(e);
        }
    };
    sys.tracer.flush();
    if opts.detach {
        // Its parent from now on is the caller's subreaper (conmon, the shim), or init.
        return Ok(ExecEnd::Detached);
    }
    let relayed = super::io::relay(
        sys,
        pid,
        master,
        true,
        true,
        Vec::new(),
        super::io::Sink::stdout(),
    )?;
    Ok(ExecEnd::Exited(super::io::exit_code(relayed.status)))
}

/// The exec'd process, inside the container's namespaces: never returns.
fn exec_main(sys: &Sys, spec: &RunSpec, parts: &OciParts, preserve_fds: u32, chan: Channel) -> ! {
    sys.tracer.set_process("exec");
    match exec_steps(sys, spec, parts, preserve_fds, &chan) {
        Ok(never) => match never {},
        Err(e) => child::fail(sys, &chan, e),
    }
}

fn exec_steps(
    sys: &Sys,
    spec: &RunSpec,
    parts: &OciParts,
    preserve_fds: u32,
    chan: &Channel,
) -> Result<Infallible> {
    // Until execve this process is the dockling binary: nothing in the container may open its
    // /proc files (CVE-2019-5736). No parent-death signal: a detached exec's caller exits
    // while it runs, as runc's does.
    sys.run(Call::Prctl {
        option: Prctl::SetDumpable,
        arg: 0,
    })?;
    child::await_go(chan)?;
    let ignored = sys.ignored_signals();
    process_steps(sys, spec, parts, chan)?;
    let exec = child::secure_and_find(sys, spec, &parts.caps.sets(), ignored, preserve_fds)?;
    if let Call::Execve { path, .. } = &exec.call {
        let _ = chan.send(&Message::Exec(path.display().to_string()));
    }
    child::exec_container(sys, exec)
}

/// A kernel's refusal of what a config field asked for, naming the field and what to do.
fn refused(field: &str, e: crate::sys::SysError) -> Error {
    use nix::errno::Errno;
    let hint = match (field, e.errno) {
        // This process is root with every capability here: what is missing is time. Where
        // the kernel shares real-time time between cgroups (CONFIG_RT_GROUP_SCHED, cgroup
        // v1's cpu.rt_runtime_us), a new group has none, and dockling-runc gives it none.
        ("process.scheduler", Errno::EPERM) => {
            " (the container's cgroup has no real-time time: this kernel divides it between \
             cgroups (cpu.rt_runtime_us) and dockling-runc does not give a container any \
             yet; use SCHED_OTHER, SCHED_BATCH or SCHED_IDLE)"
        }
        ("process.scheduler", Errno::EBUSY) => {
            " (SCHED_DEADLINE: not enough deadline bandwidth left on these CPUs; give a \
             smaller runtime or a longer period)"
        }
        ("linux.memoryPolicy", Errno::EINVAL) => {
            " (a node that is not online here (see /sys/devices/system/node/online), or a \
             flag this mode or kernel does not take)"
        }
        (_, Errno::EINVAL) => " (this kernel does not accept these values: check them)",
        _ => "",
    };
    Error::Usage(format!("{field}: {e}{hint}"))
}

/// The terminal's master end to the caller's console socket (conmon, containerd's shim), which
/// relays it; this process's copy is closed after.
fn hand_terminal(sys: &Sys, master: OwnedFd, path: &Path) -> Result<()> {
    use std::os::fd::IntoRawFd;
    let sock = match sys.perform(Call::ConnectUnix {
        path: path.to_path_buf(),
    })? {
        Ret::Fd(fd) => fd,
        other => other.value() as i32,
    };
    let sent = sys.run(Call::SendFd {
        sock,
        fd: master.as_raw_fd(),
        name: "console".into(),
    });
    let _ = sys.run(Call::Close {
        fd: sock,
        object: "the console socket".into(),
    });
    let _ = sys.run(Call::Close {
        fd: master.into_raw_fd(),
        object: "the engine's copy of the terminal's master".into(),
    });
    sent?;
    Ok(())
}
