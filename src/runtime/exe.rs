//! Protecting the engine binary from the container (CVE-2019-5736).
//!
//! Between `clone` and `execve` the container's first process *is* dockling: `/proc/<pid>/exe`
//! points at the host's binary. A hostile image whose entrypoint is `#!/proc/self/exe` makes
//! the kernel run that binary again inside the container, and a process there could then open
//! it for writing and replace the host's dockling. So container starts run from a binary that
//! cannot be written: dockling re-executes itself from a *detached, read-only bind mount* of
//! its own file (`open_tree(2)` + `mount_setattr(2)` + `execveat(2)`, as runc 1.2 does: no
//! copy, attached nowhere, so nothing else sees it), or, on kernels without the new mount API,
//! from a sealed copy in memory (`memfd_create(2)` + `F_SEAL_*`, as crun does). A binary that
//! already sits on a read-only mount needs neither. Every one of these calls goes through the
//! traced seam: the tracer is set up before the re-exec, and the new process records the
//! `execveat` that started it (as the engine records the container's `execve`).

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use crate::error::Error;
use crate::plan::StepId;
use crate::sys::{Call, Ret, Sys, SysError};

const SEALS: libc::c_int =
    libc::F_SEAL_SEAL | libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_WRITE;

/// True when this process runs from a binary nothing can write: a sealed memfd, or a file on
/// a read-only mount (the detached bind mount of `reexec_sealed`, or a read-only /usr).
pub fn is_sealed() -> bool {
    let Ok(f) = File::open("/proc/self/exe") else {
        return false;
    };
    let seals = nix::fcntl::fcntl(f.as_raw_fd(), nix::fcntl::FcntlArg::F_GET_SEALS);
    if seals.is_ok_and(|s| s & SEALS == SEALS) {
        return true;
    }
    nix::sys::statvfs::fstatvfs(&f)
        .is_ok_and(|v| v.flags().contains(nix::sys::statvfs::FsFlags::ST_RDONLY))
}

/// The environment variable a re-executing dockling passes to its successor: the descriptor
/// and the `CLOCK_MONOTONIC` time (ns) of its `execveat`, so the successor can put the call it
/// was started by into the trace (the predecessor's code is gone once it succeeded).
const REEXEC_VAR: &str = "DOCKLING_REEXEC_FROM";

/// How [`reexec_early`] marks its variable: it began no trace (it had none yet), so the
/// successor writes the step and the calls it was started by.
const EARLY: &str = "early,";

/// True in the engine re-executed from its sealed binary by [`reexec_sealed`] (before
/// [`record_reexec`] clears the variable): what its predecessor began (a trace file) is to be
/// continued, not redone. False after [`reexec_early`], which began nothing.
pub fn is_reexecuted() -> bool {
    std::env::var_os(REEXEC_VAR)
        .is_some_and(|v| !v.as_encoded_bytes().starts_with(EARLY.as_bytes()))
}

/// The commands that start a process inside a container, so run from a sealed binary (see
/// [`enter_sealed`]): `run` and `exec`, also as `container run` / `container exec`. `argv` is
/// the whole command line. Global options (the only ones clap accepts before the command) are
/// skipped with their values; anything else before the command, or a `--step` anywhere (its
/// pause comes before the re-exec, so that path must stay), answers no: the late path in the
/// command then does the same work, traced as it goes.
fn starts_in_a_container(argv: &[OsString]) -> bool {
    let mut words = argv.iter().skip(1).map(|a| a.as_encoded_bytes());
    let mut command = None;
    while let Some(w) = words.next() {
        match w {
            b"--root" | b"--config" | b"--lang" => {
                words.next();
            }
            _ if w.starts_with(b"--root=")
                || w.starts_with(b"--config=")
                || w.starts_with(b"--lang=") => {}
            b"container" if command.is_none() => command = Some(w),
            _ if w.starts_with(b"-") => return false,
            _ => {
                command = Some(w);
                break;
            }
        }
    }
    if !matches!(command, Some(b"run" | b"exec")) {
        return false;
    }
    !argv
        .iter()
        .any(|a| a == "--step" || a.as_encoded_bytes().starts_with(b"--step="))
}

/// The first thing `main` does for `run` and `exec`: re-execute from a detached read-only bind
/// mount of this binary before any other work (parsing the command line, reading the config,
/// opening the store), as crun does first thing in its `main`, so that work is done once, by
/// the sealed successor, not twice. Same calls as [`reexec_sealed`] (`open_tree`,
/// `mount_setattr`, `execveat`), through the seam; there is no tracer yet (it depends on flags
/// not parsed yet), so each call's start and duration travel to the successor in
/// `DOCKLING_REEXEC_FROM`, and [`record_reexec`] writes them into its trace as they happened.
/// Returns when it does not apply or a call failed: the command's own [`enter_sealed`] then
/// tries again (with the memfd fallback), traced and warned about as before. A fault injected
/// for tests (`DOCKLING_FAULT`, debug builds) leaves all of it to that late path, where the
/// fault points are.
pub fn reexec_early() {
    let argv: Vec<OsString> = std::env::args_os().collect();
    if std::env::var_os(REEXEC_VAR).is_some()
        || std::env::var_os("DOCKLING_NO_REEXEC").is_some()
        || (cfg!(debug_assertions) && std::env::var_os("DOCKLING_FAULT").is_some())
        || !starts_in_a_container(&argv)
        || is_sealed()
    {
        return;
    }
    let sys = Sys::quiet();
    let step_at = crate::trace::now_us(std::time::Duration::ZERO);
    let (tree_at, started) = (step_at, std::time::Instant::now());
    let Ok(ret) = sys.perform(Call::OpenTree {
        path: "/proc/self/exe".into(),
    }) else {
        return;
    };
    let tree_took = started.elapsed();
    let fd = fd_of(ret);
    // SAFETY: open_tree returned a new descriptor that nothing else owns.
    let tree = unsafe { OwnedFd::from_raw_fd(fd) };
    let attr_at = crate::trace::now_us(std::time::Duration::ZERO);
    let started = std::time::Instant::now();
    if sys.run(Call::MountSetattrRdonly { fd }).is_err() {
        return;
    }
    let attr_took = started.elapsed();
    let mut envp: Vec<OsString> = std::env::vars_os()
        .map(|(k, v)| env_entry(&k, &v))
        .collect();
    envp.push(
        format!(
            "{REEXEC_VAR}={EARLY}{fd},{},{step_at},{tree_at},{},{attr_at},{}",
            monotonic_ns(),
            tree_took.as_nanos(),
            attr_took.as_nanos()
        )
        .into(),
    );
    let _ = sys.run(Call::Execveat { fd, argv, envp });
    drop(tree);
}

fn fd_of(ret: Ret) -> RawFd {
    match ret {
        Ret::Fd(fd) => fd,
        other => other.value() as RawFd,
    }
}

/// This binary, opened through a detached read-only bind mount of itself.
fn read_only_self(sys: &Sys) -> Result<OwnedFd, SysError> {
    let fd = fd_of(sys.perform(Call::OpenTree {
        path: "/proc/self/exe".into(),
    })?);
    // SAFETY: a new descriptor that nothing else owns (a made-up one is never closed: see
    // `sys.is_dry_run()` in reexec_sealed).
    let tree = unsafe { OwnedFd::from_raw_fd(fd) };
    if let Err(e) = sys.run(Call::MountSetattrRdonly { fd }) {
        forget_if_dry(sys, tree);
        return Err(e);
    }
    Ok(tree)
}

/// A sealed in-memory copy of this binary.
fn sealed_copy(sys: &Sys) -> Result<OwnedFd, Error> {
    let fd = fd_of(sys.perform(Call::MemfdCreate {
        name: "dockling".into(),
    })?);
    // SAFETY: memfd_create returned a new descriptor nobody else owns.
    let copy = unsafe { OwnedFd::from_raw_fd(fd) };
    if let Err(e) = copy_self_into(sys, fd) {
        forget_if_dry(sys, copy);
        return Err(e);
    }
    if let Err(e) = sys.run(Call::AddSeals { fd }) {
        forget_if_dry(sys, copy);
        return Err(e.into());
    }
    Ok(copy)
}

/// Copy this process's binary into the descriptor `dst` with traced `sendfile(2)`s (each
/// moves at most about 2 GiB; 0 means the end). In a dry run the recorder's made-up
/// descriptors copy nothing.
fn copy_self_into(sys: &Sys, dst: RawFd) -> Result<(), Error> {
    let src = fd_of(sys.perform(Call::Open {
        path: "/proc/self/exe".into(),
        flags: libc::O_RDONLY,
        mode: 0,
    })?);
    // SAFETY: a new descriptor that nothing else owns (a made-up one is never closed).
    let src_fd = unsafe { OwnedFd::from_raw_fd(src) };
    let mut total = 0usize;
    let copied = loop {
        match sys.perform(Call::Sendfile {
            out_fd: dst,
            in_fd: src,
            count: 1 << 30,
        }) {
            Ok(Ret::Bytes(n)) if n > 0 => total += n,
            Ok(_) => break Ok(()),
            Err(e) => break Err(Error::from(e)),
        }
    };
    forget_if_dry(sys, src_fd);
    if copied.is_ok() && !sys.is_dry_run() {
        sys.tracer
            .note(&format!("copied the binary ({total} bytes) into the memfd"));
    }
    copied
}

/// `CLOCK_MONOTONIC` in nanoseconds (the same clock in both processes of a re-exec).
fn monotonic_ns() -> i128 {
    match nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC) {
        Ok(t) => t.tv_sec() as i128 * 1_000_000_000 + t.tv_nsec() as i128,
        Err(_) => 0,
    }
}

/// The recorder's descriptors are made up: never close them.
fn forget_if_dry(sys: &Sys, fd: OwnedFd) {
    if sys.is_dry_run() {
        std::mem::forget(fd);
    }
}

/// Re-execute this same command from a binary nothing can write (a read-only bind mount of
/// itself, else a sealed in-memory copy), unless already doing so: every call traced, in the
/// step `security.reexec`. Returns only on failure (then the caller goes on, warning, from the
/// real binary) or in a dry run. `argv` is the command line to run again, as the bytes it was
/// given (`std::env::args_os`).
pub fn reexec_sealed(sys: &Sys, argv: Vec<OsString>) -> Result<(), Error> {
    if !sys.is_dry_run() && (is_sealed() || std::env::var_os("DOCKLING_NO_REEXEC").is_some()) {
        return Ok(());
    }
    sys.step(StepId::SecurityReexec)?;
    let exe = match read_only_self(sys) {
        Ok(fd) => fd,
        Err(e) => {
            sys.tracer.note(&format!(
                "{e}: no new mount API here, so a sealed copy in memory instead"
            ));
            sealed_copy(sys)?
        }
    };
    let fd = exe.as_raw_fd();
    // The environment passes byte for byte, as the arguments do: a value that is not UTF-8
    // (a path, say) must reach the successor unchanged.
    let mut envp: Vec<OsString> = std::env::vars_os()
        .filter(|(k, _)| k != REEXEC_VAR)
        .map(|(k, v)| env_entry(&k, &v))
        .collect();
    let now = monotonic_ns();
    envp.push(format!("{REEXEC_VAR}={fd},{now}").into());
    // execveat(fd, "", AT_EMPTY_PATH) runs the file the descriptor names; an ELF binary needs
    // no path, so the close-on-exec descriptor is fine.
    let result = sys.run(Call::Execveat { fd, argv, envp });
    forget_if_dry(sys, exe);
    result.map_err(Error::from)
}

/// What a command does when no sealed copy of the binary can be made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unsealed {
    /// Refuse to go on (`exec`: its process enters a running container as dockling).
    Refuse,
    /// Go on from the real binary with a warning (`run`, `start`).
    Warn,
}

/// The start of every command that starts a process inside a container: put the `execveat`
/// this process was started by into the trace (when it is the re-executed one), then run
/// from a binary nothing can write ([`reexec_sealed`]; this command line again, as given).
/// An abort at the `security.reexec` pause is returned as it is; any other failure is
/// refused or warned about as `unsealed` says.
pub fn enter_sealed(sys: &Sys, unsealed: Unsealed) -> Result<(), Error> {
    record_reexec(sys);
    match reexec_sealed(sys, std::env::args_os().collect()) {
        Ok(()) => Ok(()),
        Err(e @ Error::Aborted(_)) => Err(e),
        Err(e) if unsealed == Unsealed::Refuse => Err(Error::Usage(format!(
            "exec runs only from a sealed copy of dockling, and none could be made: {e}"
        ))),
        Err(e) => {
            eprintln!("dockling: warning: could not run from a sealed copy of the binary ({e}); going on unprotected");
            Ok(())
        }
    }
}

/// `KEY=value` of an environment variable, its bytes unchanged.
fn env_entry(key: &OsStr, value: &OsStr) -> OsString {
    let mut entry = OsString::with_capacity(key.len() + 1 + value.len());
    entry.push(key);
    entry.push("=");
    entry.push(value);
    entry
}

/// After [`reexec_early`]: the step and the two calls it made before its `execveat`, each at
/// the time and with the duration it had, from `fd,exec_ns,step_at,tree_at,tree_ns,attr_at,
/// attr_ns` (times in µs since the epoch, durations in ns). Returns `fd,exec_ns`, the part
/// [`record_reexec`] reads for the `execveat` itself.
fn record_early<'a>(sys: &Sys, value: &'a str) -> &'a str {
    let f: Vec<&str> = value.split(',').collect();
    let num = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    let fd = num(0) as RawFd;
    sys.tracer.step_at(StepId::SecurityReexec, num(2));
    sys.tracer.syscall_at(
        &Call::OpenTree {
            path: "/proc/self/exe".into(),
        },
        &Ok(Ret::Fd(fd)),
        std::time::Duration::from_nanos(num(4)),
        num(3),
    );
    sys.tracer.syscall_at(
        &Call::MountSetattrRdonly { fd },
        &Ok(Ret::Zero),
        std::time::Duration::from_nanos(num(6)),
        num(5),
    );
    let end = value
        .match_indices(',')
        .nth(1)
        .map_or(value.len(), |(i, _)| i);
    &value[..end]
}

/// In a process started by [`reexec_sealed`]: put the `execveat` that started it into the
/// trace, in the step its predecessor announced, and forget the variable. Call it once, first.
pub fn record_reexec(sys: &Sys) {
    let Some(value) = std::env::var_os(REEXEC_VAR) else {
        return;
    };
    let value = value.to_string_lossy().into_owned();
    let envp: Vec<OsString> = std::env::vars_os()
        .map(|(k, v)| env_entry(&k, &v))
        .collect();
    // Single-threaded still (nothing was started yet), so changing the environment is safe;
    // the variable must not reach a nested dockling.
    std::env::remove_var(REEXEC_VAR);
    let value = match value.strip_prefix(EARLY) {
        Some(rest) => record_early(sys, rest),
        None => value.as_str(),
    };
    let (fd, then) = value.split_once(',').unwrap_or((value, "0"));
    let now = monotonic_ns();
    let took = then
        .parse::<i128>()
        .ok()
        .filter(|t| *t > 0 && now > *t)
        .map(|t| std::time::Duration::from_nanos((now - t) as u64))
        .unwrap_or_default();
    sys.tracer.resume(StepId::SecurityReexec);
    sys.tracer.syscall(
        &Call::Execveat {
            fd: fd.parse().unwrap_or(-1),
            argv: std::env::args_os().collect(),
            envp,
        },
        &Ok(Ret::Zero),
        took,
    );
}

#[cfg(test)]
mod tests {
    //! The re-exec's calls, recorded: what `--trace` and `explain` show of it.

    use super::*;
    use crate::sys::record::Recorder;
    use crate::trace::Tracer;

    fn recorded(fail_open_tree: bool) -> Vec<Call> {
        let rec = Recorder::new();
        if fail_open_tree {
            rec.fail_next("open_tree", nix::errno::Errno::ENOSYS);
        }
        let sys = Sys::new(Box::new(rec.clone()), Tracer::off());
        reexec_sealed(
            &sys,
            vec!["dockling".into(), "run".into(), "busybox".into()],
        )
        .unwrap();
        rec.calls()
    }

    #[test]
    fn reexec_runs_from_a_detached_read_only_mount_of_itself() {
        let calls = recorded(false);
        let script: Vec<String> = calls.iter().map(|c| c.to_string()).collect();
        assert_eq!(
            script[..2],
            [
                "open_tree(AT_FDCWD, \"/proc/self/exe\", OPEN_TREE_CLONE|OPEN_TREE_CLOEXEC)",
                "mount_setattr(100, \"\", AT_EMPTY_PATH, {attr_set=MOUNT_ATTR_RDONLY, attr_clr=0, propagation=0, userns_fd=0}, 32)",
            ]
        );
        let Call::Execveat { fd, argv, envp } = &calls[2] else {
            panic!("{script:?}");
        };
        assert_eq!(*fd, 100);
        assert_eq!(argv, &["dockling", "run", "busybox"]);
        // The successor learns which descriptor and when, to trace the execveat itself.
        assert!(envp.iter().any(|e| e
            .as_encoded_bytes()
            .starts_with(b"DOCKLING_REEXEC_FROM=100,")));
    }

    fn early(line: &str) -> bool {
        let argv: Vec<OsString> = line.split(' ').map(OsString::from).collect();
        starts_in_a_container(&argv)
    }

    #[test]
    fn run_and_exec_re_execute_first_thing_unless_a_step_pause_comes_before() {
        assert!(early("dockling run --rm busybox true"));
        assert!(early("dockling --root /r --config=/c.yaml run busybox"));
        assert!(early("dockling container exec web ls"));
        assert!(early("dockling --lang ko exec -it web sh"));
        // --step pauses before the re-exec: the command's own (late) path does it.
        assert!(!early("dockling run --step busybox true"));
        assert!(!early("dockling exec --step=true web sh"));
        // Not a container start, or nothing clap would take as one.
        assert!(!early("dockling ps"));
        assert!(!early("dockling --help run"));
        assert!(!early("dockling container ls"));
        assert!(!early("dockling images run"));
        assert!(!early("dockling"));
        // A global option's value is not the command.
        assert!(!early("dockling --root run ps"));
    }

    #[test]
    fn without_the_new_mount_api_it_runs_from_a_sealed_memfd() {
        let names: Vec<&str> = recorded(true).iter().map(|c| c.name()).collect();
        assert_eq!(
            names,
            [
                "open_tree",
                "memfd_create",
                "openat",
                "sendfile",
                "fcntl",
                "execveat"
            ]
        );
    }

    #[test]
    fn the_sealed_copy_is_this_binary_byte_for_byte_and_sealed() {
        // The copy is made through the seam's sendfile calls (real ones here).
        let sys = Sys::new(Box::new(crate::sys::linux::Linux), Tracer::off());
        let copy = sealed_copy(&sys).unwrap();
        let mut got = Vec::new();
        {
            use std::io::{Read, Seek};
            let mut f = File::from(copy.try_clone().unwrap());
            f.rewind().unwrap();
            f.read_to_end(&mut got).unwrap();
        }
        assert!(
            got == std::fs::read("/proc/self/exe").unwrap(),
            "copy differs"
        );
        let seals = nix::fcntl::fcntl(copy.as_raw_fd(), nix::fcntl::FcntlArg::F_GET_SEALS).unwrap();
        assert_eq!(seals & SEALS, SEALS);
    }
}
