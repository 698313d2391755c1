//! `--init`: the container's process 1 when the program should not be (Docker's tini).
//!
//! The kernel treats a pid namespace's first process specially: it gets no signal it has not
//! installed a handler for (so `stop`'s SIGTERM does nothing to a program that never expected
//! to be pid 1), and every orphan of the namespace becomes its child, to be reaped. A program
//! like a shell script or a web server rarely does either. This init does both for it: it
//! waits on a signalfd for the signals dockling forwards (blocked in this process) and for
//! SIGCHLD, passes the former on to the program, reaps every child on the
//! latter, and exits with the program's code once the program has ended.
//!
//! What it does first, closing the engine's descriptors (`close_range`), shapes the container
//! and is traced (in `child::become_init`, before this runs). Its own system calls after that
//! (signalfd reads, `waitpid`, `kill`) are plumbing after the container started, like the
//! terminal relay's: they are not traced (its stderr is the container's).

use nix::sys::signal::{kill, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

/// Run as init for `program` (its pid as this process sees it): returns the exit code to end
/// with, Docker's (the program's, or 128 + the signal that killed it).
pub fn run(program: i32) -> i32 {
    let program = Pid::from_raw(program);
    // Every descriptor past stdio is closed already (traced, in the fork's parent before
    // this is called).
    // What `ps` in the container shows as process 1 (Docker's shows docker-init).
    let _ = nix::sys::prctl::set_name(c"dockling-init");
    // Blocked here too: the engine blocks only what it forwards itself, none with `-t` or
    // `--sig-proxy=false`, and `stop`'s signal must still reach this init's signalfd.
    let _ = super::io::relay_signals().thread_block();
    let Ok(sfd) = SignalFd::with_flags(&super::io::relay_signals(), SfdFlags::SFD_CLOEXEC) else {
        // Without a signalfd: still reap, and end with the program.
        return wait_for(program);
    };
    loop {
        let Ok(Some(info)) = sfd.read_signal() else {
            continue;
        };
        let signo = info.ssi_signo as i32;
        if signo == libc::SIGCHLD {
            if let Some(code) = reap(program) {
                return code;
            }
        } else if signo != libc::SIGWINCH {
            if let Ok(sig) = Signal::try_from(signo) {
                let _ = kill(program, sig);
            }
        }
    }
}

/// Reap every child that has ended; the program's code once it is among them.
fn reap(program: Pid) -> Option<i32> {
    let mut ended = None;
    // Until none is left to reap: SIGCHLDs of many deaths arrive as one.
    loop {
        match waitpid(
            Pid::from_raw(-1),
            Some(WaitPidFlag::WNOHANG | WaitPidFlag::__WALL),
        ) {
            Ok(WaitStatus::Exited(pid, code)) if pid == program => ended = Some(code),
            Ok(WaitStatus::Signaled(pid, sig, _)) if pid == program => {
                ended = Some(128 + sig as i32)
            }
            Ok(WaitStatus::StillAlive) | Err(_) => break,
            Ok(_) => {}
        }
    }
    ended
}

/// Block until the program ends, reaping what else ends meanwhile.
fn wait_for(program: Pid) -> i32 {
    loop {
        match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::__WALL)) {
            Ok(WaitStatus::Exited(pid, code)) if pid == program => return code,
            Ok(WaitStatus::Signaled(pid, sig, _)) if pid == program => return 128 + sig as i32,
            Err(nix::errno::Errno::ECHILD) => return 125,
            _ => {}
        }
    }
}
