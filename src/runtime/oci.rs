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
//! dumpable), waiting, with everything made.
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
    let old_mask = match sys.perform(Call::Umask { mask: 0 })? {
        Ret::Umask(m) => m,
        _ => 0o022,
    };
    let made = sys.run(Call::Mkfifo {
        path: opts.fifo.to_path_buf(),
    });
    sys.run(Call::Umask { mask: old_mask })?;
    made?;
    if let (Some(cg), Some(limits)) = (opts.cgroup, spec.cgroup.as_ref()) {
        sys.step(StepId::CgroupsCreate)?;
        // The config's rules, runc's allowed devices and the config's own nodes.
        let rules = opts
            .parts
            .device_rules()
            .map_err(|e| Error::Usage(e.to_string()))?;
        cg.create(sys, limits, &rules)?;
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
    let mut flags = super::clone_flags(spec);
    for (_, kind) in &joins {
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
                    if let (Some(m), Some(path)) = (master.take(), opts.console_socket) {
                        hand_terminal(sys, m, path)?;
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
    Ok(Created { pid, program })
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
    rootfs.mount_config(&parts.mounts, &spec.bundle, &cgroup_mounts)?;
    // A /dev bound from elsewhere (the host's, `rbind`) is that tree's own: no node is made
    // in it, neither the standard ones nor the config's (runc's `needsSetupDev`); a mknod
    // there would land on the host.
    let dev_bound = parts
        .mounts
        .iter()
        .any(|m| m.bind && super::rootfs::lexical_clean(&m.destination) == Path::new("/dev"));
    if !dev_bound && rootfs.dev_is_tmpfs() {
        rootfs.create_devices()?;
    }
    // The config's devices, anywhere in the root (the standard ones exist already when /dev
    // is a tmpfs, and are left as they are); under a bound /dev, none.
    let (skipped, nodes): (Vec<_>, Vec<_>) = parts
        .devices
        .iter()
        .cloned()
        .partition(|d| dev_bound && lexical_under(&d.path, Path::new("/dev")));
    for d in &skipped {
        sys.tracer.note(&format!(
            "linux.devices {}: not made: /dev is a bind mount of another tree, whose nodes \
             are its own",
            d.path.display()
        ));
    }
    rootfs.create_config_devices(&nodes)?;
    for (key, value) in &parts.sysctl {
        rootfs.write_inside(
            &PathBuf::from("/proc/sys").join(key.replace('.', "/")),
            value,
        )?;
    }
    rootfs.mask_given(&parts.masked_paths, &parts.readonly_paths)?;
    rootfs.switch_root()?;
    if spec.namespaces.uts && !spec.hostname.is_empty() {
        sys.step(StepId::NamespacesHostname)?;
        sys.run(Call::Sethostname {
            name: spec.hostname.clone(),
        })?;
    }
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
    if spec.tty {
        // A new terminal in the container's own devpts: its master to the engine (which hands
        // it to the console socket), its slave as stdin, stdout and stderr, the controlling
        // terminal of a session of its own.
        child::terminal(sys, spec, false, Some(chan))?;
    } else {
        // No terminal: the caller's stdio are the container's. In a session of its own, so a
        // terminal among them is not its controlling one (TIOCSTI, CVE-2017-5226).
        sys.run(Call::Setsid)?;
    }
    let exec = child::secure_and_find(sys, spec, ignored)?;
    // Ready: the engine may record the container and exit. Then wait for `start`.
    if let Call::Execve { path, .. } = &exec.call {
        let _ = chan.send(&Message::Exec(path.display().to_string()));
    }
    let w = sys.open(
        Path::new(&format!("/proc/self/fd/{fifo}")),
        libc::O_WRONLY | libc::O_CLOEXEC,
    )?;
    sys.run(Call::Write {
        fd: w.as_raw_fd(),
        path: "exec.fifo".into(),
        data: "0".into(),
    })?;
    drop(w);
    child::exec_container(sys, exec)
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

/// Whether `path`, cleaned of `.`/`..`, is `dir` or below it.
fn lexical_under(path: &Path, dir: &Path) -> bool {
    super::rootfs::lexical_clean(path).starts_with(dir)
}
