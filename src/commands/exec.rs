//! `dockling exec`: a second process in a running container, as `docker exec` starts one.
//!
//! The container's namespaces are files under `/proc/<pid>/ns/` of its first process.
//! dockling opens them and forks; the fork joins each namespace the container has of its own
//! (`setns`). Joining a pid namespace changes only where the *children* of the caller are
//! born, so the fork starts one more process (`CLONE_PARENT`: a child of `dockling exec`
//! itself, which waits for it) and ends (`runtime::exec`, shared with `runtime exec`). That
//! process waits until `dockling exec` has put it into the container's cgroup, then does what
//! the container's first process did last: its terminal, the seccomp filter, the capability
//! sets, the user, and `execve` of the command, with the container's environment and working
//! directory unless `-e`/`-w`/`-u` say otherwise.

use crate::cli::ExecArgs;
use crate::commands::{require_root, Context};
use crate::container::{ContainerError, Containers, Status};
use crate::error::{Error, Result};
use crate::runtime::channel;
use crate::runtime::exec::namespaces;
use crate::runtime::{child, io};
use crate::sys::{linux::Linux, Sys};
use crate::trace::Tracer;

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

    // `--network container:X`: the process's network namespace is X's, joined like its own.
    let mut own = c.spec.namespaces;
    own.net |= c.spec.net.join.is_some();
    let chroot = c.spec.rootfs_mode == crate::spec::RootfsMode::Chroot;
    let not_running = || ContainerError::NotRunning {
        doing: "exec into",
        name: args.container.clone(),
    };
    let entry = crate::runtime::exec::open(&sys, pid, pid_start, &namespaces(&own), chroot)?
        .ok_or_else(not_running)?;
    let cgroup =
        crate::commands::run::cgroup_for(ctx, &c.spec)?.filter(|_| c.spec.cgroup.is_some());
    let started = crate::runtime::exec::spawn(&sys, entry, cgroup.as_ref(), |chan| {
        child::exec_main(&sys, &spec, chan)
    })?;
    let result = supervise(&sys, &spec, started.pid, &started.chan);
    io::restore_signals(&sys, started.old_mask);
    result
}

/// Wait for the started process's `execve` (it is in the container's cgroup already), relay
/// its terminal and signals, and return its exit code.
fn supervise(
    sys: &Sys,
    spec: &crate::spec::RunSpec,
    pid: i32,
    chan: &channel::Channel,
) -> Result<i32> {
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
