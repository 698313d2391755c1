//! The foreground run: relay the terminal, forward signals, wait for the exit.
//!
//! dockling stays single-threaded: one `poll(2)` loop over stdin, the pseudo-terminal master
//! (with `-t`) and a `signalfd(2)` that receives the signals we forward (SIGINT, SIGTERM...),
//! SIGWINCH (resize) and SIGCHLD (the container ended). The relay's own reads and writes are
//! plumbing, not container setup, so they are not traced; forwarding (`kill`) and the final
//! `wait4` are.

use std::fs::File;
use std::io::{IsTerminal, Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::termios;

use crate::error::Result;
use crate::sys::{Call, Sys};

/// Signals dockling forwards to the container, as `docker run` does with its sig-proxy.
pub const FORWARDED: &[Signal] = &[
    Signal::SIGINT,
    Signal::SIGTERM,
    Signal::SIGHUP,
    Signal::SIGQUIT,
    Signal::SIGUSR1,
    Signal::SIGUSR2,
];

/// The signals to block before `clone`, so none is lost between clone and the relay loop.
pub fn relay_signals() -> SigSet {
    let mut set = SigSet::empty();
    for s in FORWARDED {
        set.add(*s);
    }
    set.add(Signal::SIGCHLD);
    set.add(Signal::SIGWINCH);
    set
}

/// Block the relayed signals (a traced `rt_sigprocmask`); returns the previous mask.
pub fn block_signals(sys: &Sys) -> std::result::Result<u64, crate::sys::SysError> {
    let mut signals: Vec<i32> = FORWARDED.iter().map(|s| *s as i32).collect();
    signals.extend([libc::SIGCHLD, libc::SIGWINCH]);
    match sys.perform(Call::BlockSignals { signals })? {
        crate::sys::Ret::OldMask(m) => Ok(m),
        _ => Ok(0),
    }
}

/// Put back the mask `block_signals` returned (a traced `rt_sigprocmask`).
pub fn restore_signals(sys: &Sys, old: u64) {
    if let Err(e) = sys.run(Call::RestoreSignals { mask: old }) {
        eprintln!("dockling: warning: {e}");
    }
}

/// Puts the user's terminal in raw mode while alive, so every key (Ctrl-C too) goes to the
/// container's terminal, whose own line discipline then does what a terminal does.
struct RawMode {
    saved: Option<termios::Termios>,
}

impl RawMode {
    fn enter(active: bool) -> RawMode {
        let stdin = std::io::stdin();
        if !active || !stdin.is_terminal() {
            return RawMode { saved: None };
        }
        let Ok(saved) = termios::tcgetattr(stdin.as_fd()) else {
            return RawMode { saved: None };
        };
        let mut raw = saved.clone();
        termios::cfmakeraw(&mut raw);
        let _ = termios::tcsetattr(stdin.as_fd(), termios::SetArg::TCSANOW, &raw);
        RawMode { saved: Some(saved) }
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        if let Some(saved) = &self.saved {
            let _ = termios::tcsetattr(std::io::stdin().as_fd(), termios::SetArg::TCSANOW, saved);
        }
    }
}

fn copy_winsize(master: &OwnedFd) {
    // SAFETY: winsize is plain data; TIOCGWINSZ fills it, TIOCSWINSZ reads it. Both fds are open.
    unsafe {
        let mut ws: libc::winsize = std::mem::zeroed();
        for fd in [1, 0] {
            if libc::ioctl(fd, libc::TIOCGWINSZ, &mut ws) == 0 {
                libc::ioctl(master.as_raw_fd(), libc::TIOCSWINSZ, &ws);
                return;
            }
        }
    }
}

/// Relay until the container exits; returns its raw wait status.
pub fn relay(sys: &Sys, pid: i32, master: Option<OwnedFd>, forward_stdin: bool) -> Result<i32> {
    let mut sfd = SignalFd::with_flags(
        &relay_signals(),
        SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK,
    )
    .map_err(|e| crate::error::Error::Usage(format!("signalfd: {e}")))?;
    let _raw = RawMode::enter(master.is_some());
    let mut master_file = master.map(File::from);
    if let Some(m) = &master_file {
        let fd: OwnedFd = m
            .try_clone()
            .map(OwnedFd::from)
            .expect("dup of the terminal");
        copy_winsize(&fd);
    }
    let mut stdin_open = forward_stdin && master_file.is_some();
    let mut buf = [0u8; 16384];
    loop {
        let stdin = std::io::stdin();
        let mut fds = vec![PollFd::new(sfd.as_fd(), PollFlags::POLLIN)];
        let mfd = master_file.as_ref().map(|m| m.as_fd());
        if let Some(m) = mfd {
            fds.push(PollFd::new(m, PollFlags::POLLIN));
        }
        if stdin_open {
            fds.push(PollFd::new(stdin.as_fd(), PollFlags::POLLIN));
        }
        match poll(&mut fds, PollTimeout::NONE) {
            Ok(_) => {}
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(crate::error::Error::Usage(format!("poll: {e}"))),
        }
        let ready: Vec<bool> = fds
            .iter()
            .map(|f| f.revents().is_some_and(|r| !r.is_empty()))
            .collect();
        drop(fds);
        let mut idx = 1;
        if master_file.is_some() {
            if ready[idx] {
                let m = master_file.as_mut().expect("checked");
                match m.read(&mut buf) {
                    Ok(0) | Err(_) => master_file = None,
                    Ok(n) => {
                        let mut out = std::io::stdout().lock();
                        let _ = out.write_all(&buf[..n]);
                        let _ = out.flush();
                    }
                }
            }
            idx += 1;
        }
        if stdin_open && ready.get(idx).copied().unwrap_or(false) {
            match std::io::stdin().lock().read(&mut buf) {
                Ok(0) | Err(_) => stdin_open = false,
                Ok(n) => {
                    if let Some(m) = master_file.as_mut() {
                        let _ = m.write_all(&buf[..n]);
                    }
                }
            }
        }
        if ready[0] {
            while let Ok(Some(info)) = sfd.read_signal() {
                let signo = info.ssi_signo as i32;
                if signo == libc::SIGCHLD {
                    // SAFETY: waitid with WNOHANG|WNOWAIT only peeks at the child's state.
                    let exited = unsafe {
                        let mut si: libc::siginfo_t = std::mem::zeroed();
                        libc::waitid(
                            libc::P_PID,
                            pid as libc::id_t,
                            &mut si,
                            libc::WEXITED | libc::WNOHANG | libc::WNOWAIT,
                        ) == 0
                            && si.si_pid() == pid
                    };
                    if exited {
                        drain(master_file.as_mut(), &mut buf);
                        let status = sys.wait4(pid)?;
                        let _ = &mut sfd;
                        return Ok(status);
                    }
                } else if signo == libc::SIGWINCH {
                    if let Some(m) = &master_file {
                        if let Ok(fd) = m.try_clone() {
                            copy_winsize(&OwnedFd::from(fd));
                        }
                    }
                } else {
                    let _ = sys.run(Call::Kill { pid, signal: signo });
                }
            }
        }
    }
}

/// Copy what the container wrote last, after it exited.
fn drain(master: Option<&mut File>, buf: &mut [u8]) {
    let Some(m) = master else { return };
    // SAFETY: fcntl on an fd owned by `m`; makes the final reads non-blocking.
    unsafe {
        let flags = libc::fcntl(m.as_raw_fd(), libc::F_GETFL);
        libc::fcntl(m.as_raw_fd(), libc::F_SETFL, flags | libc::O_NONBLOCK);
    }
    let mut out = std::io::stdout().lock();
    for _ in 0..1024 {
        match m.read(buf) {
            Ok(n) if n > 0 => {
                let _ = out.write_all(&buf[..n]);
            }
            _ => break,
        }
    }
    let _ = out.flush();
}

/// The exit code Docker reports for a wait status: the code, or 128 + signal.
pub fn exit_code(status: i32) -> i32 {
    if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else if libc::WIFSIGNALED(status) {
        128 + libc::WTERMSIG(status)
    } else {
        125
    }
}
