//! `dockling rm`: remove containers (with `-f`, kill running ones first), and [`reap`]: what
//! every command that lists containers does first about the leftovers of killed ones.
//!
//! A container is removed only by whoever holds its engine lock (see [`crate::container`]):
//! while its `dockling run` keeps it (creating, starting, running it) `rm` refuses, and `rm -f`
//! kills it and waits until that engine has let go. Removing means killing what is left in its
//! cgroup (with `--pid host` the container's children outlive its first process), removing
//! the cgroup, then the directory (renamed away first, so a killed `rm` leaves nothing half).

use std::time::Duration;

use crate::cli::RmArgs;
use crate::commands::{require_root, Context};
use crate::container::{self, Container, Containers, Status};
use crate::error::{Error, Result};
use crate::sys::{Call, Ret, Sys};

/// How long `rm -f` waits for a killed container's engine to record the end and let go.
const STOP_WAIT: Duration = Duration::from_secs(10);

/// Kill everything of the container's cgroup, then remove the cgroup.
fn destroy_cgroup(ctx: &Context, c: &Container) -> Result<()> {
    if c.spec.cgroup.is_some() {
        if let Some(cg) = crate::commands::run::cgroup_for(ctx, &c.spec)? {
            cg.destroy(&Sys::quiet())?;
        }
    }
    Ok(())
}

/// SIGKILL to `pid` if it is still the process that started at `start` (field 22 of its
/// stat), ignoring one that is gone. Through a pidfd: the start time is checked after
/// `pidfd_open`, so a number reused between the check and the signal is never hit (a plain
/// `kill` on kernels before 5.3, which have no pidfds).
fn kill(pid: i32, start: u64) -> Result<()> {
    signal(pid, start, libc::SIGKILL)
}

/// [`kill`] with any signal: `signal` to `pid` if it is still the process that started at
/// `start`; one that is gone is not an error.
pub fn signal(pid: i32, start: u64, signal: i32) -> Result<()> {
    signal_through(&Sys::quiet(), pid, start, signal)
}

/// [`signal`] through a given seam (`stop --trace` shows the pidfd_open and the signal).
pub fn signal_through(sys: &Sys, pid: i32, start: u64, signal: i32) -> Result<()> {
    use nix::errno::Errno;
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    let same = || container::process_start_time(pid) == Some(start);
    let gone = |r: std::result::Result<(), crate::sys::SysError>| match r {
        Err(e) if e.errno != Errno::ESRCH => Err(e.into()),
        _ => Ok(()),
    };
    match sys.perform(Call::PidfdOpen { pid }) {
        Ok(Ret::Fd(fd)) => {
            // SAFETY: the kernel just returned this descriptor and nothing else owns it.
            let fd = unsafe { OwnedFd::from_raw_fd(fd) };
            if !same() {
                return Ok(());
            }
            gone(sys.run(Call::PidfdSendSignal {
                fd: fd.as_raw_fd(),
                pid,
                signal,
            }))
        }
        Err(e) if e.errno == Errno::ENOSYS && same() => gone(sys.run(Call::Kill { pid, signal })),
        Err(e) => gone(Err(e)),
        Ok(_) => Ok(()),
    }
}

/// Kill a container its engine still keeps: every process of its cgroup and its first
/// process, so the engine sees the end and records it; or, while it is still being started
/// (no process of its own yet), the engine itself (its child follows through
/// `PR_SET_PDEATHSIG`; what it made is cleaned up by the caller).
pub fn stop(ctx: &Context, containers: &Containers, c: &Container) -> Result<()> {
    stop_through(ctx, &Sys::quiet(), containers, c)
}

/// [`stop`] through a given seam: the cgroup's freezer knob and kills, and the first
/// process's pidfd and signal, in `stop --trace`.
pub fn stop_through(
    ctx: &Context,
    sys: &Sys,
    containers: &Containers,
    c: &Container,
) -> Result<()> {
    // Chosen before anything dies: once its process is gone a running container must not
    // be taken for one still starting, whose engine would be killed before it records the end.
    containers.request_stop(&c.spec.id);
    let target = match c.status {
        Status::Running { pid, pid_start } => c.is_alive().then_some((pid, pid_start)),
        Status::Created => containers.engine_pid(&c.spec.id),
        Status::Exited { .. } => None,
    };
    if let Some(cg) = crate::commands::run::cgroup_for(ctx, &c.spec)
        .ok()
        .flatten()
        .filter(|_| c.spec.cgroup.is_some())
    {
        cg.kill_all(sys)?;
    }
    match target {
        Some((pid, start)) => signal_through(sys, pid, start, libc::SIGKILL),
        None => Ok(()),
    }
}

/// Remove one container, and with `volumes` (`rm -v`) its anonymous volumes.
pub fn remove_with_volumes(
    ctx: &Context,
    containers: &Containers,
    name: &str,
    force: bool,
    volumes: bool,
) -> Result<()> {
    let spec = containers.find(name)?.spec;
    remove(ctx, containers, name, force)?;
    if volumes {
        crate::commands::volume::remove_anonymous(&ctx.root, &spec);
    }
    Ok(())
}

/// Remove one container.
pub fn remove(ctx: &Context, containers: &Containers, name: &str, force: bool) -> Result<()> {
    let c = containers.find(name)?;
    let id = c.spec.id.clone();
    let held = match containers.try_lock_engine(&id)? {
        Some(lock) => lock,
        None if !force => lock_ended(containers, &id, name)?,
        None => {
            stop(ctx, containers, &c)?;
            crate::fault::check("rm.killed")?;
            let mut waited = containers.wait_engine(&id, STOP_WAIT);
            if matches!(waited, Ok(None)) {
                // Its engine did not record the end in time: kill the engine too.
                if let Some((engine, start)) = containers.engine_pid(&id) {
                    kill(engine, start)?;
                }
                waited = containers.wait_engine(&id, STOP_WAIT);
            }
            match waited {
                Ok(Some(lock)) => lock,
                // A `--rm` container its engine removed once it ended.
                Err(Error::NotFound(_)) => return destroy_cgroup(ctx, &c),
                Ok(None) => {
                    return Err(container::ContainerError::EngineStuck {
                        name: name.to_string(),
                        seconds: 2 * STOP_WAIT.as_secs(),
                        lock: containers.bundle(&id).join("engine.lock"),
                    }
                    .into())
                }
                Err(e) => return Err(e),
            }
        }
    };
    // Nothing keeps it now, and no other `rm` can (we hold the lock): read again, as its
    // engine may have recorded the end since.
    let c = match containers.find(&id) {
        Ok(c) => c,
        Err(Error::NotFound(_)) => return destroy_cgroup(ctx, &c),
        Err(e) => return Err(e),
    };
    if c.is_alive() {
        // Recorded as running by an engine that is gone, and its process is still there.
        if !force {
            return Err(container::ContainerError::NotStopped {
                name: name.to_string(),
                state: "it is running",
            }
            .into());
        }
        if let Status::Running { pid, pid_start } = c.status {
            kill(pid, pid_start)?;
            crate::fault::check("rm.killed")?;
        }
    }
    destroy_cgroup(ctx, &c)?;
    crate::fault::check("rm.cgroup_removed")?;
    crate::fault::check("rm.before_remove_dir")?;
    containers.remove_dir(&id)?;
    crate::fault::check("rm.dir_removed")?;
    drop(held);
    Ok(())
}

/// The engine lock of a container `rm` (without `-f`) found taken. A container recorded as
/// ended is not running: whoever holds its lock lets go at once (its monitor on its way out
/// after recording the end; another command's first look at leftovers, which locks every
/// container it listed as running, this one perhaps a moment before it ended). Waited for,
/// bounded, so `stop x && rm x` always works as in Docker; one starting, running or about to
/// be restarted by its monitor is an error at once.
fn lock_ended(containers: &Containers, id: &str, name: &str) -> Result<container::EngineLock> {
    let deadline = std::time::Instant::now() + STOP_WAIT;
    let mut watch = containers.watch(&Sys::quiet(), id);
    loop {
        let c = containers.find(id)?;
        let state = match c.status {
            Status::Created => Some("it is starting"),
            Status::Running { .. } => Some("it is running"),
            Status::Exited { .. } if c.restarting => Some("it is restarting"),
            // Its monitor still keeps it after all this time: it is not done with it.
            Status::Exited { .. } if std::time::Instant::now() >= deadline => Some("it is running"),
            Status::Exited { .. } => None,
        };
        if let Some(state) = state {
            return Err(container::ContainerError::NotStopped {
                name: name.to_string(),
                state,
            }
            .into());
        }
        if let Some(lock) = containers.try_lock_engine(id)? {
            return Ok(lock);
        }
        watch.wait(deadline.saturating_duration_since(std::time::Instant::now()));
    }
}

/// Notice what killed commands left: directories half created or half removed, and
/// containers recorded as created or running whose engine is gone (killed, so the container
/// went with it). Their cgroups are killed and removed; a `--rm` container is removed, any
/// other recorded as `Exited (137)`, as SIGKILL ended it. Needs root; best effort (a warning).
pub fn reap(ctx: &Context, containers: &Containers) {
    reap_rows(ctx, containers);
}

/// [`reap`], then every container's row (`container::Listing`), for `ps`: the rows the reap
/// read are returned as they are when it changed none of them, else read again.
pub fn reap_and_list(
    ctx: &Context,
    containers: &Containers,
) -> Result<Vec<container::Container<container::Listing>>> {
    match reap_rows(ctx, containers) {
        Some(rows) => Ok(rows),
        None => containers.rows(),
    }
}

/// The work of [`reap`]; the rows it read if it changed none of them.
fn reap_rows(
    ctx: &Context,
    containers: &Containers,
) -> Option<Vec<container::Container<container::Listing>>> {
    if !nix::unistd::geteuid().is_root() {
        return None;
    }
    // Opportunistic: when another command holds the containers' lock, the next one reaps
    // (waiting here would make every command wait, and say so, twice).
    let Ok(Some(_names)) = containers.try_lock() else {
        return None;
    };
    // The rows only (`container::Listing`): most containers are exited and need nothing.
    // Read in the sweep's walk.
    let all = containers.sweep_and_rows().ok()?;
    let mut changed = false;
    for row in &all {
        if !matches!(row.status, Status::Created | Status::Running { .. }) && !row.restarting {
            continue;
        }
        let id = row.spec.id.clone();
        if !containers.has_engine_lock(&id) && row.is_alive() {
            // Started by a dockling from before engine locks: its pid is all there is.
            continue;
        }
        let Ok(Some(_held)) = containers.try_lock_engine(&id) else {
            continue;
        };
        // Read again now that no engine can change it: the one listed above may have
        // recorded the end (and let go) in between.
        let c = match containers.find(&id) {
            Ok(now) if matches!(now.status, Status::Created | Status::Running { .. }) => now,
            // Its monitor was killed while it waited to restart it: it stays exited.
            Ok(now) if now.restarting => {
                changed = true;
                let _ = containers.update(&id, |c| c.restarting = false);
                continue;
            }
            // It ended (or went) since it was listed: the listing's row is stale, so the
            // caller reads the records again.
            _ => {
                changed = true;
                continue;
            }
        };
        changed = true;
        // No engine keeps it. Its first process got SIGKILL when the engine died
        // (PR_SET_PDEATHSIG) and may not be gone yet: nothing would ever wait for it now.
        if let Status::Running { pid, pid_start } = c.status {
            if c.is_alive() {
                let _ = kill(pid, pid_start);
                let deadline = std::time::Instant::now() + STOP_WAIT;
                while c.is_alive() && std::time::Instant::now() < deadline {
                    std::thread::sleep(Duration::from_millis(2));
                }
            }
        }
        let done = destroy_cgroup(ctx, &c).and_then(|()| {
            if c.spec.remove {
                containers
                    .remove_dir(&c.spec.id)
                    .map(|()| crate::commands::volume::remove_anonymous(&ctx.root, &c.spec))
            } else {
                containers
                    .update(&c.spec.id, |c| {
                        c.status = Status::Exited {
                            code: 128 + libc::SIGKILL,
                            finished: container::now_rfc3339(),
                            oom_killed: false,
                        };
                    })
                    .map(|_| ())
            }
        });
        if let Err(e) = done {
            eprintln!(
                "dockling: warning: container {} of a killed dockling: {e}",
                c.spec.name
            );
        }
    }
    (!changed).then_some(all)
}

/// `dockling rm`.
pub fn run(ctx: &Context, args: &RmArgs) -> Result<i32> {
    require_root("rm")?;
    let containers = Containers::open(&ctx.root)?;
    reap(ctx, &containers);
    let mut code = 0;
    for name in &args.containers {
        match remove_with_volumes(ctx, &containers, name, args.force, args.volumes) {
            Ok(()) => println!("{name}"),
            Err(e) => {
                eprintln!("Error response from dockling: {e}");
                code = 1;
            }
        }
    }
    Ok(code)
}
