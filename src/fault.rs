//! Fault injection for the reliability tests: `DOCKLING_FAULT=<point>[@N][:kill|:abort]`.
//!
//! A fault point is a named place in a command (`pull.manifest`, `run.layers.mount`,
//! `rm.cgroup_removed`, `rmi.untagged`…). When the variable names the point the process
//! reaches, dockling dies there: by default it sends itself `SIGKILL` (what `kill -9`, the OOM
//! killer or a power cut do to the process: no destructor, no cleanup runs), and with `:abort`
//! the point returns an engine error instead (exit 125), so the ordinary error paths run.
//! `DOCKLING_FAULT=list` prints every point, one a line, and exits: the tests drive all of them
//! from that list, so a new point is tested the day it is added.
//!
//! Only debug builds honour the variable (`cfg!(debug_assertions)`; the tests use the debug
//! binary). A release binary ignores it entirely: no user can trip a fault by accident, and
//! the check costs one branch on a constant. `@N` fires at the Nth time the point is reached
//! (a point in a loop, such as each blob of a pull), the first by default.
//!
//! The steps of a container start are points too (`run.<step key>`, one per
//! [`crate::plan::StepId`], fired from [`crate::sys::Sys::step`]). Some of them run in the
//! container's process, after `clone`, before `execve`: a `kill` there kills the engine as soon
//! as it hears of it (see [`engine_reads`]), before the engine undoes anything, which is what a
//! user killing `dockling run` at that moment does.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;

use crate::error::Result;

/// How dockling dies at the point.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// `SIGKILL` to the engine process: nothing is cleaned up.
    Kill,
    /// An engine error (exit 125): the error paths clean up what they can.
    Abort,
}

/// Every point of `pull`, `rm` and `rmi` (the run steps are added from the plan by [`all`]).
pub const POINTS: &[&str] = &[
    // pull: the manifest is read and chosen, nothing stored yet.
    "pull.manifest",
    // pull: a blob is downloaded and flushed under its temporary name (the config: synced
    // alone; a layer's: by the pull's syncfs, its layer staged), not yet renamed.
    "pull.blob.before_rename",
    // pull: a blob is renamed into place (not yet in any image of the index).
    "pull.blob.renamed",
    // pull: every blob is stored and every layer unpacked, the index not yet updated.
    "pull.before_index",
    // pull: the index names the image; the command has not yet said so.
    "pull.index_updated",
    // rm -f: the container's process was sent SIGKILL and is gone.
    "rm.killed",
    // rm: the container's cgroups are removed.
    "rm.cgroup_removed",
    // rm: the container's directory is about to be removed.
    "rm.before_remove_dir",
    // rm: the container's directory is removed; the command has not yet said so.
    "rm.dir_removed",
    // rmi: the index no longer names the image; nothing deleted yet.
    "rmi.untagged",
    // rmi: garbage collection deleted one blob and has more to go.
    "rmi.gc.blob_deleted",
    // rmi: garbage collection is half way through deleting an unpacked layer directory.
    "rmi.gc.layer_half_deleted",
    // rmi: a layer's marker is gone and its directory renamed to `.trash-*`, not yet deleted.
    "rmi.gc.layer_trashed",
    // pull: this process holds a blob's download lock and has not fetched it yet.
    "pull.blob.locked",
    // import, pull: a blob is half written under its temporary name.
    "store.blob.mid_write",
    // a layer is unpacked and renamed into place; its marker is not written yet.
    "store.layer.before_marker",
    // --layers erofs: a layer's tar is written into its image (a temporary directory), the
    // EROFS index not yet.
    "store.erofs.before_index",
    // an atomic write: the temporary file is written and synced, not yet renamed.
    "store.write.before_rename",
    // run: the container's record is saved; its bundle is not written yet.
    "run.recorded",
];

/// Every fault point: [`POINTS`] and `run.<key>` for every step of the run plan.
pub fn all() -> Vec<String> {
    let mut v: Vec<String> = crate::plan::StepId::ALL
        .iter()
        .filter(|s| s.in_run())
        .map(|s| format!("run.{}", s.key()))
        .collect();
    v.extend(POINTS.iter().map(|p| p.to_string()));
    v
}

struct Armed {
    point: String,
    mode: Mode,
    /// Fire the `nth` time the point is reached (`<point>@N`; 1 by default): a point in a loop
    /// (each blob of a pull) can be hit at any of its rounds.
    nth: usize,
    reached: AtomicUsize,
}

fn armed() -> Option<&'static Armed> {
    static ARMED: OnceLock<Option<Armed>> = OnceLock::new();
    ARMED
        .get_or_init(|| {
            if !cfg!(debug_assertions) {
                return None;
            }
            let v = std::env::var("DOCKLING_FAULT").ok()?;
            let (point, mode) = match v.rsplit_once(':') {
                Some((p, "kill")) => (p.to_string(), Mode::Kill),
                Some((p, "abort")) => (p.to_string(), Mode::Abort),
                _ => (v.clone(), Mode::Kill),
            };
            // A count that does not parse leaves the name unknown: init refuses it.
            let (point, nth) = match point.split_once('@') {
                Some((p, n)) => match n.parse::<usize>() {
                    Ok(n) if n > 0 => (p.to_string(), n),
                    _ => (point.clone(), 1),
                },
                None => (point, 1),
            };
            Some(Armed {
                point,
                mode,
                nth,
                reached: AtomicUsize::new(0),
            })
        })
        .as_ref()
}

/// The point `name` is reached: true when the armed fault is to fire now.
fn fires(name: &str) -> bool {
    let Some(a) = armed() else {
        return false;
    };
    debug_assert!(
        all().iter().any(|p| p == name),
        "fault point {name} is missing from fault::POINTS"
    );
    a.point == name && a.reached.fetch_add(1, Ordering::SeqCst) + 1 == a.nth
}

/// Called once at the start of `main`: `DOCKLING_FAULT=list` prints the points and exits; an
/// armed fault notes the engine's pid now, while this process is the engine.
pub fn init() {
    if !cfg!(debug_assertions) {
        return;
    }
    if std::env::var("DOCKLING_FAULT").as_deref() == Ok("list") {
        for p in all() {
            println!("{p}");
        }
        std::process::exit(0);
    }
    if let Some(a) = armed() {
        if !all().contains(&a.point) {
            eprintln!(
                "dockling: DOCKLING_FAULT names no fault point: {}: see DOCKLING_FAULT=list",
                a.point
            );
            std::process::exit(125);
        }
        engine_pid();
    }
}

/// The engine's pid, read first by [`init`] in the engine (a container's process, a copy of it
/// made by `clone`, inherits the value).
fn engine_pid() -> u32 {
    static ENGINE: OnceLock<u32> = OnceLock::new();
    *ENGINE.get_or_init(std::process::id)
}

/// The point `name` is reached: with a fault armed there, die as asked. A `:abort` fault at a
/// point that cannot return an error exits with 125 after saying so (no destructors run).
pub fn point(name: &str) {
    if let Err(e) = check(name) {
        eprintln!("dockling: {e}");
        std::process::exit(125);
    }
}

/// The point `name` is reached: with a `kill` fault armed there, die by `SIGKILL`; with an
/// `abort` fault, return the engine error the caller passes up.
pub fn check(name: &str) -> Result<()> {
    if fires(name) {
        die(name)
    } else {
        Ok(())
    }
}

/// Die at `name` as the armed fault says.
fn die(name: &str) -> Result<()> {
    match armed().map(|a| a.mode) {
        Some(Mode::Abort) => Err(FaultError::Abort {
            point: name.to_string(),
        }
        .into()),
        Some(Mode::Kill) => kill(name),
        None => Ok(()),
    }
}

/// SIGKILL the engine. In the container's process (after `clone`, before `execve`) the engine
/// cannot be signalled (its pid is not visible from the new pid namespace, and
/// `pidfd_send_signal(2)` refuses a target outside the caller's namespaces): the point fails
/// with [`CHILD_KILL`] instead, which the child reports on its channel like any failure, and
/// the engine, on reading it, kills itself ([`engine_reads`]) before it undoes anything.
fn kill(name: &str) -> Result<()> {
    let _ = std::io::Write::flush(&mut std::io::stdout());
    if std::process::id() != engine_pid() {
        return Err(FaultError::KillEngine {
            point: name.to_string(),
        }
        .into());
    }
    let _ = nix::sys::signal::raise(nix::sys::signal::Signal::SIGKILL);
    // Not reached: SIGKILL cannot be blocked or caught.
    std::process::exit(137)
}

/// How a `kill` fault in the container's process is reported to the engine.
pub const CHILD_KILL: &str = "fault injected (DOCKLING_FAULT), kill the engine at ";

/// A fault point that fired (debug builds, `DOCKLING_FAULT` set): the engine error it stands
/// for.
#[derive(Debug, thiserror::Error)]
pub enum FaultError {
    /// An `abort` fault: the command fails here through its ordinary error path.
    #[error("fault injected at {point} (DOCKLING_FAULT): aborting")]
    Abort {
        /// The fault point.
        point: String,
    },
    /// A `kill` fault in the container's process, which cannot kill the engine itself: its
    /// text ([`CHILD_KILL`] and the point) tells the engine to ([`engine_reads`]).
    #[error("{CHILD_KILL}{point}")]
    KillEngine {
        /// The fault point.
        point: String,
    },
}

/// The engine read `text` as the container process's failure: a `kill` fault armed in it
/// kills the engine now, as if it had been killed at that step.
pub fn engine_reads(text: &str) {
    if let Some(name) = text.strip_prefix(CHILD_KILL) {
        if armed().is_some_and(|a| a.point == name && a.mode == Mode::Kill) {
            let _ = kill(name);
        }
    }
}

/// `fs::remove_dir_all(dir)`, where the fault point `name` fires half way: one entry of `dir`
/// is deleted, the rest is not (what a kill during a long delete leaves).
pub fn remove_dir_all(dir: &std::path::Path, name: &str) -> std::io::Result<()> {
    if fires(name) {
        if let Some(e) = std::fs::read_dir(dir)?.flatten().next() {
            let p = e.path();
            if e.file_type()?.is_dir() {
                std::fs::remove_dir_all(&p)?;
            } else {
                std::fs::remove_file(&p)?;
            }
        }
        die(name).map_err(std::io::Error::other)?;
    }
    std::fs::remove_dir_all(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_point_is_named_once_and_every_run_step_is_one() {
        let all = all();
        let unique: std::collections::BTreeSet<&String> = all.iter().collect();
        assert_eq!(unique.len(), all.len(), "a point is listed twice: {all:?}");
        for s in crate::plan::StepId::ALL.iter().filter(|s| s.in_run()) {
            assert!(all.contains(&format!("run.{}", s.key())), "{s:?}");
        }
        for p in &all {
            let command = p.split('.').next().unwrap();
            assert!(
                ["pull", "run", "rm", "rmi", "store"].contains(&command),
                "{p}: points are named <command>.<step> (or store.<step> for the store under any command)"
            );
        }
    }

    #[test]
    fn an_unarmed_point_passes() {
        // The unit tests never set DOCKLING_FAULT: every point is a no-op.
        assert!(check("rm.killed").is_ok());
        point("rm.killed");
    }
}
