//! `stop`, `kill`, `wait` and `rename`: what a user does to a container that runs, detached
//! or in the foreground of another terminal.
//!
//! A running container's engine (its monitor, or the `dockling run` in the foreground) is its
//! parent: it alone can wait for it, so it records the end and releases the container's
//! engine lock. These commands send signals (through a pidfd, checked against the process's
//! start time so a reused pid is never hit) and wait for that lock.

use std::time::{Duration, Instant};

use crate::cli::{ContainerPruneArgs, KillArgs, RenameArgs, StopArgs, WaitArgs};
use crate::commands::{require_root, Context};
use crate::container::{Container, ContainerError, Containers, Status};
use crate::error::{Error, Result};

/// A signal by name (`TERM`, `SIGTERM`, `sigterm`) or number (`15`), as Docker takes it.
pub fn parse_signal(s: &str) -> Result<i32> {
    let bad = || {
        Error::Usage(format!(
            "invalid signal {s:?}: give a name (TERM, SIGKILL, HUP...) or a number (1-64)"
        ))
    };
    if let Ok(n) = s.parse::<i32>() {
        return if (1..=64).contains(&n) {
            Ok(n)
        } else {
            Err(bad())
        };
    }
    let upper = s.to_ascii_uppercase();
    let name = if upper.starts_with("SIG") {
        upper
    } else {
        format!("SIG{upper}")
    };
    name.parse::<nix::sys::signal::Signal>()
        .map(|sig| sig as i32)
        .map_err(|_| bad())
}

/// The signal `stop` sends first: the image's `StopSignal`, else SIGTERM.
fn stop_signal(ctx: &Context, c: &Container) -> i32 {
    crate::image::store::Store::open_existing(&ctx.root)
        .ok()
        .flatten()
        .and_then(|store| store.find(&c.spec.image_id).ok())
        .and_then(|img| img.config.config().as_ref()?.stop_signal().clone())
        .and_then(|s| parse_signal(&s).ok())
        .unwrap_or(libc::SIGTERM)
}

/// The container's first process, if it runs: (pid, start time).
fn running(c: &Container) -> Option<(i32, u64)> {
    match c.status {
        Status::Running { pid, pid_start } if c.is_alive() => Some((pid, pid_start)),
        _ => None,
    }
}

/// Wait until nothing keeps the container any more (its end is recorded) or `limit` passes:
/// true when it has ended. A `--rm` container whose engine removed it has ended too.
fn wait_ended(containers: &Containers, id: &str, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        match containers.find(id) {
            Err(_) => return true,
            Ok(c) if !containers.engine_alive(id) && running(&c).is_none() => return true,
            Ok(_) => {}
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// `dockling stop`: the stop signal, then SIGKILL after the timeout.
pub fn stop(ctx: &Context, args: &StopArgs) -> Result<i32> {
    require_root("stop")?;
    let containers = Containers::open(&ctx.root)?;
    crate::commands::rm::reap(ctx, &containers);
    let mut code = 0;
    for name in &args.containers {
        if let Err(e) = stop_one(ctx, &containers, name, args) {
            eprintln!("dockling: {e}");
            code = e.exit_code();
            continue;
        }
        println!("{name}");
    }
    Ok(code)
}

fn stop_one(ctx: &Context, containers: &Containers, name: &str, args: &StopArgs) -> Result<()> {
    let c = containers.find(name)?;
    let id = c.spec.id.clone();
    // Docker: stopping a container that is not running is no error.
    let Some((pid, start)) = running(&c) else {
        return Ok(());
    };
    let sig = match &args.signal {
        Some(s) => parse_signal(s)?,
        None => stop_signal(ctx, &c),
    };
    crate::commands::rm::signal(pid, start, sig)?;
    let timeout = Duration::from_secs(args.time.max(0) as u64);
    if wait_ended(containers, &id, timeout) {
        return Ok(());
    }
    // It ignored the signal (a PID 1 without a handler ignores SIGTERM): SIGKILL to every
    // process of its cgroup and to the first one, which its namespace's init cannot ignore
    // when it comes from outside.
    crate::commands::rm::stop(ctx, containers, &c)?;
    if wait_ended(containers, &id, Duration::from_secs(10)) {
        Ok(())
    } else {
        Err(ContainerError::StopStuck {
            name: name.to_string(),
            seconds: 10,
        }
        .into())
    }
}

/// `dockling kill`: a signal (SIGKILL by default) to the container's first process.
pub fn kill(ctx: &Context, args: &KillArgs) -> Result<i32> {
    require_root("kill")?;
    let sig = parse_signal(&args.signal)?;
    let containers = Containers::open(&ctx.root)?;
    crate::commands::rm::reap(ctx, &containers);
    let mut code = 0;
    for name in &args.containers {
        let sent = containers.find(name).and_then(|c| match running(&c) {
            Some((pid, start)) => crate::commands::rm::signal(pid, start, sig),
            None => Err(ContainerError::NotRunning { name: name.clone() }.into()),
        });
        match sent {
            Ok(()) => println!("{name}"),
            Err(e) => {
                eprintln!("dockling: {e}");
                code = e.exit_code();
            }
        }
    }
    Ok(code)
}

/// `dockling wait`: block until each container ends, print its exit code.
pub fn wait(ctx: &Context, args: &WaitArgs) -> Result<i32> {
    let containers = Containers::open(&ctx.root)?;
    crate::commands::rm::reap(ctx, &containers);
    let mut code = 0;
    for name in &args.containers {
        let c = match containers.find(name) {
            Ok(c) => c,
            Err(e) => {
                eprintln!("dockling: {e}");
                code = e.exit_code();
                continue;
            }
        };
        // Nobody waits forever on a container whose engine is gone: `reap` just recorded it.
        while !wait_ended(&containers, &c.spec.id, Duration::from_secs(3600)) {}
        match containers.find(&c.spec.id) {
            Ok(Container {
                status: Status::Exited { code, .. },
                ..
            }) => println!("{code}"),
            Ok(_) => println!("-1"),
            Err(_) => {
                eprintln!(
                    "dockling: container {name} was removed when it ended (--rm): its exit code is gone with it"
                );
                code = 125;
            }
        }
    }
    Ok(code)
}

/// `dockling rename`.
pub fn rename(ctx: &Context, args: &RenameArgs) -> Result<i32> {
    let containers = Containers::open(&ctx.root)?;
    let new = args.new_name.trim_start_matches('/');
    if !crate::commands::run::valid_name(new) {
        return Err(Error::Usage(format!(
            "invalid container name {new:?}: only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
        )));
    }
    // Under the containers' lock, as `run --name` checks and takes a name.
    let _names = containers.lock()?;
    let mut c = containers.find(&args.container)?;
    if let Some(other) = containers.name_taken(new)? {
        if other != c.spec.id {
            return Err(ContainerError::NameInUse {
                name: new.to_string(),
                other,
            }
            .into());
        }
    }
    c.spec.name = new.to_string();
    containers.save(&c)?;
    Ok(0)
}

/// `dockling container prune`: remove every container that is not running.
pub fn prune(ctx: &Context, args: &ContainerPruneArgs) -> Result<i32> {
    require_root("container prune")?;
    if !args.force {
        use std::io::Write;
        print!("WARNING! This will remove all stopped containers.\nAre you sure you want to continue? [y/N] ");
        let _ = std::io::stdout().flush();
        let mut answer = String::new();
        let _ = std::io::stdin().read_line(&mut answer);
        if !matches!(answer.trim(), "y" | "Y" | "yes") {
            return Ok(0);
        }
    }
    let containers = Containers::open(&ctx.root)?;
    crate::commands::rm::reap(ctx, &containers);
    let mut removed = Vec::new();
    let mut reclaimed = 0;
    for c in containers.list()? {
        if matches!(c.status, Status::Exited { .. }) && !containers.engine_alive(&c.spec.id) {
            let size = crate::commands::system::du(&c.spec.upper());
            match crate::commands::rm::remove(ctx, &containers, &c.spec.id, false) {
                Ok(()) => {
                    removed.push(c.spec.id.clone());
                    reclaimed += size;
                }
                Err(e) => eprintln!("dockling: {e}"),
            }
        }
    }
    if !removed.is_empty() {
        println!("Deleted Containers:");
        for id in &removed {
            println!("{id}");
        }
        println!();
    }
    println!(
        "Total reclaimed space: {}",
        crate::image::format::human_size(reclaimed)
    );
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals_parse_as_docker_takes_them() {
        assert_eq!(parse_signal("TERM").unwrap(), libc::SIGTERM);
        assert_eq!(parse_signal("sigkill").unwrap(), libc::SIGKILL);
        assert_eq!(parse_signal("SIGHUP").unwrap(), libc::SIGHUP);
        assert_eq!(parse_signal("10").unwrap(), 10);
        for bad in ["0", "65", "NOPE", "", "-1"] {
            assert!(parse_signal(bad).is_err(), "{bad}");
        }
    }
}
