//! `stop`, `kill`, `wait` and `rename`: what a user does to a container that runs, detached
//! or in the foreground of another terminal.
//!
//! A running container's engine (its monitor, or the `dockling run` in the foreground) is its
//! parent: it alone can wait for it, so it records the end and releases the container's
//! engine lock. These commands send signals (through a pidfd, checked against the process's
//! start time so a reused pid is never hit) and wait for that lock.

use std::time::{Duration, Instant};

use crate::cli::{
    ContainerPruneArgs, KillArgs, RenameArgs, StartArgs, StopArgs, TopArgs, WaitArgs,
};
use crate::commands::{require_root, Context};
use crate::container::{Container, ContainerError, Containers, Status};
use crate::error::{Error, Result};
use crate::sys::{linux::Linux, Sys};
use crate::trace::Tracer;

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
pub(crate) fn running(c: &Container) -> Option<(i32, u64)> {
    match c.status {
        Status::Running { pid, pid_start } if c.is_alive() => Some((pid, pid_start)),
        _ => None,
    }
}

/// Wait until the container has ended (its end recorded, or its engine gone and its process
/// with it) or `limit` passes: true when it has ended. A `--rm` container whose engine removed
/// it has ended too. (A monitor about to restart it keeps its engine lock: the recorded end
/// counts.)
fn wait_ended(sys: &Sys, containers: &Containers, id: &str, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    let mut watch = containers.watch(sys, id);
    loop {
        match containers.find(id) {
            Err(_) => return true,
            Ok(c) if running(&c).is_none() => {
                if matches!(c.status, Status::Exited { .. }) || !containers.engine_alive(id) {
                    return true;
                }
            }
            Ok(_) => {}
        }
        let now = Instant::now();
        if now >= deadline {
            return false;
        }
        watch.wait(deadline - now);
    }
}

/// Do `one` to each named container, as Docker's CLI does: the name printed for each that
/// succeeded, the error said for each that failed, and the last failure's exit code returned.
fn each(names: &[String], mut one: impl FnMut(&String) -> Result<()>) -> i32 {
    let mut code = 0;
    for name in names {
        match one(name) {
            Ok(()) => println!("{name}"),
            Err(e) => {
                eprintln!("dockling: {e}");
                code = e.exit_code();
            }
        }
    }
    code
}

/// `dockling stop`: the stop signal, then SIGKILL after the timeout.
pub fn stop(ctx: &Context, args: &StopArgs) -> Result<i32> {
    require_root("stop")?;
    let containers = Containers::open(&ctx.root)?;
    crate::commands::rm::reap(ctx, &containers);
    // The signals, the cgroup's freezer and kills go through the seam: `--trace` shows them.
    let sys = Sys::new(Box::new(Linux), Tracer::new(args.trace, false));
    let code = each(&args.containers, |name| {
        stop_one(ctx, &sys, &containers, name, args)
    });
    sys.tracer.flush();
    Ok(code)
}

fn stop_one(
    ctx: &Context,
    sys: &Sys,
    containers: &Containers,
    name: &str,
    args: &StopArgs,
) -> Result<()> {
    let c = containers.find(name)?;
    let id = c.spec.id.clone();
    // Docker: `-t -1` waits as long as it takes.
    let timeout = match u64::try_from(args.time) {
        Ok(t) => Duration::from_secs(t),
        Err(_) => Duration::from_secs(365 * 24 * 3600),
    };
    let sig = match &args.signal {
        Some(s) => parse_signal(s)?,
        None => stop_signal(ctx, &c),
    };
    // Told first, so a monitor waiting to restart it (`--restart`) does not.
    containers.request_stop(&id);
    // Not running, but its monitor still keeps it: between runs of a restart policy, or
    // starting one. Wait for that to settle: ended (done), or running again (stopped below).
    let mut watch = containers.watch(sys, &id);
    let (pid, start) = loop {
        let c = containers.find(&id)?;
        if let Some(running) = running(&c) {
            break running;
        }
        if !containers.engine_alive(&id)
            || matches!(c.status, Status::Exited { .. }) && !restarting(containers, &id)
        {
            // Docker: stopping a container that is not running is no error.
            return settle(sys, containers, &id);
        }
        watch.wait(Duration::from_millis(10));
    };
    crate::commands::rm::signal_through(sys, pid, start, sig)?;
    // A paused container could not even handle the signal: thawed, as Docker does.
    thaw(ctx, sys, &c)?;
    sys.tracer.note(&format!(
        "waiting up to {}s for the container to end and its monitor to record it (a poll on the monitor's pidfd)",
        timeout.as_secs()
    ));
    if !wait_ended(sys, containers, &id, timeout) {
        // It ignored the signal (a PID 1 without a handler ignores SIGTERM): SIGKILL to every
        // process of its cgroup and to the first one, which its namespace's init cannot
        // ignore when it comes from outside.
        sys.tracer
            .note("it did not end in time: SIGKILL to every process of its cgroup (frozen first, so none can fork away) and to its first process");
        crate::commands::rm::stop_through(ctx, sys, containers, &c)?;
        if !wait_ended(sys, containers, &id, Duration::from_secs(10)) {
            return Err(ContainerError::StopStuck {
                name: name.to_string(),
                seconds: 10,
            }
            .into());
        }
    }
    settle(sys, containers, &id)
}

/// True while a monitor keeps the container between two runs of its restart policy (it
/// ended, and the monitor has not let go).
fn restarting(containers: &Containers, id: &str) -> bool {
    containers
        .find(id)
        .is_ok_and(|c| c.spec.restart != crate::spec::RestartPolicy::No)
        && containers.engine_alive(id)
}

/// After a stop: wait (bounded) until the monitor has let go, so `stop x && rm x` works.
fn settle(sys: &Sys, containers: &Containers, id: &str) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut watch = containers.watch(sys, id);
    while containers.engine_alive(id) {
        let now = Instant::now();
        if now >= deadline {
            break;
        }
        watch.wait(deadline - now);
    }
    Ok(())
}

/// Thaw a paused container (a signal to frozen processes waits until they thaw): the
/// freezer knob's write through `sys`, so `stop --trace` shows it.
fn thaw(ctx: &Context, sys: &Sys, c: &Container) -> Result<()> {
    if let Ok(cg) = cgroup(ctx, c) {
        if cg.is_frozen() {
            cg.set_frozen(sys, false)?;
        }
    }
    Ok(())
}

/// `dockling start`: each container started again on its own root file system (what its
/// last run wrote is still there), detached under a new monitor, or in the foreground with
/// `-a` (then its exit code is this command's).
pub fn start(ctx: &Context, args: &StartArgs) -> Result<i32> {
    require_root("start")?;
    let sys = sealed_sys()?;
    let containers = Containers::open(&ctx.root)?;
    crate::commands::rm::reap(ctx, &containers);
    let mut code = 0;
    for name in &args.containers {
        // Docker: `-i` attaches too, with stdin.
        let attach = (args.attach || args.interactive).then_some(args.interactive);
        match start_one(ctx, &sys, &containers, name, attach) {
            Ok(c) if attach.is_some() => code = c,
            Ok(0) => println!("{name}"),
            Ok(c) => code = c,
            Err(e) => {
                eprintln!("dockling: {e}");
                code = e.exit_code();
            }
        }
    }
    Ok(code)
}

/// `dockling restart`: `stop`, then `start`.
pub fn restart(ctx: &Context, args: &StopArgs) -> Result<i32> {
    require_root("restart")?;
    let sys = sealed_sys()?;
    let containers = Containers::open(&ctx.root)?;
    crate::commands::rm::reap(ctx, &containers);
    // `--trace` shows the stop half (the start half is traced by `start`'s own seam).
    let stopping = Sys::new(Box::new(Linux), Tracer::new(args.trace, false));
    Ok(each(&args.containers, |name| {
        stop_one(ctx, &stopping, &containers, name, args)?;
        match start_one(ctx, &sys, &containers, name, None)? {
            0 => Ok(()),
            code => Err(ContainerError::StartFailed {
                name: name.clone(),
                code,
            }
            .into()),
        }
    }))
}

/// The seam for commands that start containers, running (like `run`) from a sealed copy of
/// the binary, so a container cannot overwrite it through /proc/self/exe (CVE-2019-5736).
fn sealed_sys() -> Result<Sys> {
    let sys = Sys::new(Box::new(Linux), Tracer::new(None, false));
    crate::runtime::exe::enter_sealed(&sys, crate::runtime::exe::Unsealed::Warn)?;
    Ok(sys)
}

fn start_one(
    ctx: &Context,
    sys: &Sys,
    containers: &Containers,
    name: &str,
    attach: Option<bool>,
) -> Result<i32> {
    let c = containers.find(name)?;
    let id = c.spec.id.clone();
    // Docker: starting a running container starts nothing; `-a` attaches to it.
    if running(&c).is_some() {
        if let Some(stdin) = attach {
            return crate::commands::attach::run(
                ctx,
                &crate::cli::AttachArgs {
                    detach_keys: None,
                    no_stdin: !stdin,
                    sig_proxy: true,
                    container: id,
                },
            );
        }
        return Ok(0);
    }
    // Its end is recorded; its last monitor may still be letting go (a `restart`). Another
    // `start` may have won the race: then it runs, which is all that was asked.
    let Some(kept) = containers.wait_engine(&id, Duration::from_secs(10))? else {
        if containers.engine_alive(&id) {
            return Ok(0);
        }
        return Err(ContainerError::Kept { id }.into());
    };
    if let Some(gone) = c.spec.layers.iter().find(|l| !l.is_dir()) {
        return Err(ContainerError::LayersGone {
            name: name.to_string(),
            layer: gone.clone(),
        }
        .into());
    }
    containers.clear_stop_request(&id);
    let c = containers.update(&id, |c| c.status = Status::Created)?;
    if let Some(stdin) = attach {
        let opts = crate::runtime::StartOptions {
            engine_lock: Some(kept.raw_fd()),
            no_sig_proxy: c.spec.tty,
            tee_log: Some(crate::container::logs::LogOptions::parse(&c.spec.log_opts)?),
            ..Default::default()
        };
        // `start -a` without `-i` gives the container no stdin, even one run with `-i`.
        let mut spec = c.spec.clone();
        spec.interactive &= stdin;
        crate::commands::run::start_and_record(ctx, sys, &spec, containers, &[], opts)
    } else {
        let log = crate::container::logs::LogOptions::parse(&c.spec.log_opts)?;
        crate::commands::run::detach(
            ctx,
            sys,
            c.spec.clone(),
            containers,
            Some(kept),
            vec![],
            log,
        )
    }
}

/// True when the container runs and its cgroup is frozen (`pause`).
pub fn is_paused(ctx: &Context, c: &Container) -> bool {
    running(c).is_some() && cgroup(ctx, c).is_ok_and(|cg| cg.is_frozen())
}

/// The container's cgroup (an error without one: `--no-cgroups`).
pub(crate) fn cgroup(ctx: &Context, c: &Container) -> Result<crate::cgroups::Cgroup> {
    crate::commands::run::cgroup_for(ctx, &c.spec)?
        .filter(|_| c.spec.cgroup.is_some())
        .ok_or_else(|| {
            ContainerError::NoCgroup {
                name: c.spec.name.clone(),
            }
            .into()
        })
}

/// `dockling pause` / `unpause`: freeze or thaw every process of each container (the freezer
/// cgroup), which then stop being scheduled without being told anything.
pub fn pause(ctx: &Context, names: &[String], frozen: bool) -> Result<i32> {
    require_root(if frozen { "pause" } else { "unpause" })?;
    let containers = Containers::open(&ctx.root)?;
    crate::commands::rm::reap(ctx, &containers);
    let sys = Sys::quiet();
    Ok(each(names, |name| {
        containers.find(name).and_then(|c| {
            if running(&c).is_none() {
                return Err(ContainerError::NotRunning {
                    doing: if frozen { "pause" } else { "unpause" },
                    name: name.clone(),
                }
                .into());
            }
            let cg = cgroup(ctx, &c)?;
            if cg.is_frozen() == frozen {
                return Err(ContainerError::PauseState {
                    name: name.clone(),
                    paused: frozen,
                }
                .into());
            }
            cg.set_frozen(&sys, frozen)
        })
    }))
}

/// `dockling port CONTAINER [PRIVATE_PORT[/PROTO]]`: Docker's lines (`80/tcp -> 0.0.0.0:8000`,
/// or the host addresses of one port), nothing for a container that does not run, and
/// Docker's error and exit code 1 for a port that is not published.
pub fn port(ctx: &Context, args: &crate::cli::PortArgs) -> Result<i32> {
    let containers = Containers::open(&ctx.root)?;
    crate::commands::rm::reap(ctx, &containers);
    let c = containers.find(&args.container)?;
    let alive = c.is_alive();
    match crate::network::ports::format_port(
        &args.container,
        &c.port_map(alive),
        args.private_port.as_deref(),
    ) {
        Ok(text) => {
            print!("{text}");
            Ok(0)
        }
        Err(e) => {
            eprintln!("{e}");
            Ok(e.exit_code())
        }
    }
}

/// `dockling top`: the container's processes as the host's `ps` shows them (`-ef` unless
/// other options are given), with each one's pid inside the container beside its host pid.
pub fn top(ctx: &Context, args: &TopArgs) -> Result<i32> {
    let containers = Containers::open(&ctx.root)?;
    crate::commands::rm::reap(ctx, &containers);
    let c = containers.find(&args.container)?;
    let Some((first, _)) = running(&c) else {
        return Err(ContainerError::NotRunning {
            doing: "list the processes of",
            name: args.container.clone(),
        }
        .into());
    };
    let mut pids: Vec<i32> = cgroup(ctx, &c)
        .map(|cg| cg.procs(&Sys::quiet()))
        .unwrap_or_default();
    if pids.is_empty() {
        pids.push(first);
    }
    let ps_args: Vec<String> = if args.ps_args.is_empty() {
        vec!["-ef".into()]
    } else {
        args.ps_args.clone()
    };
    // The host's ps (never a program of the container's), as Docker runs it.
    let out = std::process::Command::new("ps")
        .args(&ps_args)
        .output()
        .map_err(Error::io("run", "ps"))?;
    if !out.status.success() {
        return Err(ContainerError::Top {
            args: ps_args.join(" "),
            why: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        }
        .into());
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap_or("").split_whitespace().collect();
    let Some(pid_col) = header.iter().position(|h| *h == "PID") else {
        return Err(ContainerError::Top {
            args: ps_args.join(" "),
            why: "no PID column: top needs one to find the container's processes".into(),
        }
        .into());
    };
    let n = header.len();
    let mut headers: Vec<&str> = header.clone();
    headers.insert(pid_col + 1, "CONTAINER PID");
    let mut rows = Vec::new();
    for line in lines {
        let mut cells: Vec<String> = Vec::with_capacity(n + 1);
        let mut rest = line.trim_start();
        for i in 0..n {
            if i + 1 == n {
                cells.push(rest.to_string());
                break;
            }
            let (cell, tail) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
            cells.push(cell.to_string());
            rest = tail.trim_start();
        }
        let Some(pid) = cells.get(pid_col).and_then(|p| p.parse::<i32>().ok()) else {
            continue;
        };
        if !pids.contains(&pid) {
            continue;
        }
        cells.insert(pid_col + 1, pid_inside(pid).unwrap_or_else(|| "-".into()));
        rows.push(cells);
    }
    print!("{}", crate::commands::table(&headers, &rows));
    Ok(0)
}

/// The innermost number of `pid` (`NSpid` in its status: the last is the container's).
fn pid_inside(pid: i32) -> Option<String> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("NSpid:"))?;
    line.split_whitespace().last().map(String::from)
}

/// `dockling kill`: a signal (SIGKILL by default) to the container's first process.
pub fn kill(ctx: &Context, args: &KillArgs) -> Result<i32> {
    require_root("kill")?;
    let sig = parse_signal(&args.signal)?;
    let containers = Containers::open(&ctx.root)?;
    crate::commands::rm::reap(ctx, &containers);
    Ok(each(&args.containers, |name| {
        containers.find(name).and_then(|c| match running(&c) {
            Some((pid, start)) => {
                containers.request_stop(&c.spec.id);
                crate::commands::rm::signal(pid, start, sig)?;
                // `kill` has no --trace: its calls go through the seam untraced.
                thaw(ctx, &Sys::quiet(), &c)
            }
            None => Err(ContainerError::NotRunning {
                doing: "kill",
                name: name.clone(),
            }
            .into()),
        })
    }))
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
        while !wait_ended(
            &Sys::quiet(),
            &containers,
            &c.spec.id,
            Duration::from_secs(3600),
        ) {}
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
    let c = containers.find(&args.container)?;
    if let Some(other) = containers.name_taken(new)? {
        if other != c.spec.id {
            return Err(ContainerError::NameInUse {
                name: new.to_string(),
                other,
            }
            .into());
        }
    }
    containers.update(&c.spec.id, |c| c.spec.name = new.to_string())?;
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
