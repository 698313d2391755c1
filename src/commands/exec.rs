//! `dockling exec`: a second process in a running container, as `docker exec` starts one.
//!
//! The container's namespaces are files under `/proc/<pid>/ns/` of its first process.
//! dockling forks; the fork opens those files and joins each namespace the container has of
//! its own (`setns`). Joining a pid namespace changes only where the *children* of the caller
//! are born, so the fork starts one more process (`CLONE_PARENT`: a child of `dockling exec`
//! itself, which waits for it) and ends. That process waits until `dockling exec` has put it
//! into the container's cgroup, then does what the container's first process did last: its
//! terminal, the seccomp filter, the capability sets, the user, and `execve` of the command,
//! with the container's environment and working directory unless `-e`/`-w`/`-u` say otherwise.

use std::os::fd::AsRawFd;

use nix::sched::CloneFlags;

use crate::cli::ExecArgs;
use crate::commands::{require_root, Context};
use crate::container::{ContainerError, Containers, Status};
use crate::error::{Error, Result};
use crate::runtime::channel::{self, Message};
use crate::runtime::{child, io};
use crate::sys::{linux::Linux, Call, Sys};
use crate::trace::Tracer;

/// The namespaces `exec` joins, in runc's order (the mount namespace late: after it, paths
/// are the container's), each when the container has its own.
fn namespaces(ns: &crate::spec::Namespaces) -> Vec<(&'static str, CloneFlags)> {
    let mut out = Vec::new();
    if ns.ipc {
        out.push(("ipc", CloneFlags::CLONE_NEWIPC));
    }
    if ns.uts {
        out.push(("uts", CloneFlags::CLONE_NEWUTS));
    }
    if ns.net {
        out.push(("net", CloneFlags::CLONE_NEWNET));
    }
    if ns.pid {
        out.push(("pid", CloneFlags::CLONE_NEWPID));
    }
    out.push(("mnt", CloneFlags::CLONE_NEWNS));
    if ns.cgroup {
        out.push(("cgroup", CloneFlags::CLONE_NEWCGROUP));
    }
    out
}

/// `dockling exec`.
pub fn run(ctx: &Context, args: &ExecArgs) -> Result<i32> {
    require_root("exec")?;
    Tracer::check_spaced(args.trace, &args.container, "container")?;
    let sys = Sys::new(
        Box::new(Linux),
        Tracer::for_command(args.trace, args.trace_file.as_deref(), true, args.step)?,
    );
    // Run from a sealed copy of the binary, as `run` does: the process started in the
    // container is dockling until its execve, and /proc/<pid>/exe must not lead a container
    // to a writable host binary (CVE-2019-5736).
    crate::runtime::exe::enter_sealed(&sys, crate::runtime::exe::Unsealed::Refuse)?;
    let containers = Containers::open(&ctx.root)?;
    crate::commands::rm::reap(ctx, &containers);
    let c = containers.find(&args.container)?;
    let (pid, pid_start) = match c.status {
        Status::Running { pid, pid_start } if c.is_alive() => (pid, pid_start),
        _ => {
            return Err(ContainerError::NotRunning {
                doing: "exec into",
                name: args.container.clone(),
            }
            .into())
        }
    };

    if crate::commands::lifecycle::is_paused(ctx, &c) {
        return Err(ContainerError::Paused {
            name: args.container.clone(),
        }
        .into());
    }

    // The process to start: the container's, changed by the flags.
    let mut spec = c.spec.clone();
    spec.args = args.command.clone();
    spec.env = crate::specconv::exec_env(&c.spec.env, &args.env);
    spec.tty = args.tty;
    spec.interactive = args.interactive;
    if let Some(w) = &args.workdir {
        if !w.starts_with('/') {
            return Err(Error::Usage(format!(
                "the working directory {w:?} is invalid: it needs to be an absolute path"
            )));
        }
        spec.cwd = w.into();
    }
    if let Some(u) = &args.user {
        // Resolved in the container's files as they are now: its writable layer on top.
        let mut layers = c.spec.layers.clone();
        layers.push(c.spec.upper());
        spec.user = crate::specconv::resolve_user(u, &layers)?.0;
    }
    if args.privileged {
        spec.capabilities = crate::runtime::caps::resolve(true, &[], &[])?;
        spec.seccomp = None;
    }
    if spec.tty && spec.interactive && !std::io::IsTerminal::is_terminal(&std::io::stdin()) {
        return Err(Error::Usage(
            "the input device is not a TTY: drop -t, or run from a terminal".into(),
        ));
    }
    if spec.tty && !spec.env.iter().any(|e| e.starts_with("TERM=")) {
        spec.env.push("TERM=xterm".into());
    }
    sys.tracer.set_var("pid", pid.to_string());

    // The namespace files, opened while the first process is checked to be the container's.
    let mut ns = Vec::new();
    // `--network container:X`: the process's network namespace is X's, joined like its own.
    let mut own = c.spec.namespaces;
    own.net |= c.spec.net.join.is_some();
    for (name, kind) in namespaces(&own) {
        let path = std::path::PathBuf::from(format!("/proc/{pid}/ns/{name}"));
        ns.push((sys.open(&path, libc::O_RDONLY | libc::O_CLOEXEC)?, kind));
    }
    // A container started with `--rootfs chroot` keeps the host's root as its mount
    // namespace's root, and setns(CLONE_NEWNS) sets "/" to that namespace root: the new
    // process would see the host's files. Its root is its first process's, found through
    // `/proc/<pid>/root` (opened here, before the pid is checked to be the container's) and
    // entered after the setns calls as the first process entered it: chdir, chroot(".").
    let root = match c.spec.rootfs_mode {
        crate::spec::RootfsMode::Chroot => Some(sys.open(
            &std::path::PathBuf::from(format!("/proc/{pid}/root")),
            libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC,
        )?),
        crate::spec::RootfsMode::PivotRoot => None,
    };
    if crate::container::process_start_time(pid) != Some(pid_start) {
        return Err(ContainerError::NotRunning {
            doing: "exec into",
            name: args.container.clone(),
        }
        .into());
    }
    let cgroup =
        crate::commands::run::cgroup_for(ctx, &c.spec)?.filter(|_| c.spec.cgroup.is_some());

    let (parent_end, child_end) = channel::pair(&sys)?;
    let old_mask = io::block_signals(&sys)?;
    let joiner = sys.clone_process(CloneFlags::empty())?;
    if joiner == 0 {
        drop(parent_end);
        sys.tracer.set_process("join");
        // Not dumpable before it enters the container (its clone inherits that): no process
        // in there may open its /proc files while it still holds every capability.
        let _ = sys.run(Call::Prctl {
            option: crate::sys::Prctl::SetDumpable,
            arg: 0,
        });
        let joined = ns.iter().try_for_each(|(fd, kind)| {
            sys.run(Call::Setns {
                fd: fd.as_raw_fd(),
                kind: *kind,
                pid,
            })
        });
        let rooted = joined.and_then(|()| match &root {
            Some(r) => {
                sys.run(Call::Chdir {
                    path: format!("/proc/self/fd/{}", r.as_raw_fd()).into(),
                })?;
                sys.run(Call::Chroot { path: ".".into() })
            }
            None => Ok(()),
        });
        let started = rooted.and_then(|()| sys.clone_process(CloneFlags::CLONE_PARENT));
        match started {
            Ok(0) => {
                drop(ns);
                drop(root);
                child::exec_main(&sys, &spec, child_end)
            }
            Ok(p) => {
                let _ = child_end.send(&Message::Go(p));
            }
            Err(e) => {
                let _ = child_end.send(&Message::Failed(125, e.to_string()));
            }
        }
        sys.tracer.flush();
        // SAFETY: ends the forked joiner without running the parent's exit handlers.
        unsafe { libc::_exit(0) }
    }
    drop(child_end);
    drop(ns);
    drop(root);
    let _ = sys.wait4(joiner);
    let result = supervise(&sys, &spec, &parent_end, cgroup.as_ref());
    io::restore_signals(&sys, old_mask);
    result
}

/// Wait for the started process's pid, put it in the container's cgroup, let it go on, relay
/// its terminal and signals, and return its exit code.
fn supervise(
    sys: &Sys,
    spec: &crate::spec::RunSpec,
    chan: &channel::Channel,
    cgroup: Option<&crate::cgroups::Cgroup>,
) -> Result<i32> {
    let recv = || chan.recv().map_err(Error::io("receive", "exec channel"));
    let pid = match recv()? {
        Message::Go(p) => p,
        Message::Failed(_, text) => {
            return Err(crate::runtime::RuntimeError::ContainerFailed { message: text }.into())
        }
        other => {
            return Err(crate::runtime::RuntimeError::UnexpectedMessage {
                message: format!("{other:?}"),
            }
            .into())
        }
    };
    let go = (|| -> Result<()> {
        if let Some(cg) = cgroup {
            cg.join(sys, pid)?;
        }
        sys.tracer.flush();
        chan.send(&Message::Go(pid))
            .map_err(Error::io("send", "exec channel"))?;
        Ok(())
    })();
    if let Err(e) = go {
        let _ = sys.run(Call::Kill {
            pid,
            signal: libc::SIGKILL,
        });
        let _ = sys.wait4(pid);
        return Err(e);
    }
    let start = std::time::Instant::now();
    let (master, program) = match crate::runtime::await_exec(chan, &spec.args[0]) {
        Ok(got) => got,
        Err(e) => {
            // It reported the failure and exits: collected here, its parent.
            let _ = sys.wait4(pid);
            return Err(e);
        }
    };
    if sys.tracer.enabled() {
        crate::runtime::record_exec(sys, "exec", spec, program, start.elapsed());
    }
    sys.tracer.flush();
    let relayed = io::relay(
        sys,
        pid,
        master,
        spec.interactive,
        true,
        Vec::new(),
        io::Sink::stdout(),
    )?;
    Ok(io::exit_code(relayed.status))
}
