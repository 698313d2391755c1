//! The foreground run: relay the terminal, forward signals, wait for the exit.
//!
//! When dockling's stdout is a pipe or a socket (`dockling run … | head -1`) the container
//! writes into a pipe of the engine's, which the loop copies out: the pid 1 of a pid namespace
//! cannot die of SIGPIPE (the kernel spares a namespace's init every signal it has no handler
//! for), so a `yes` written straight into the closed pipe would say "Broken pipe" and exit 1.
//! Instead, as `docker run` (whose client, not the container, writes the user's stdout), the
//! engine sees EPIPE, kills the container and exits 141 (128 + SIGPIPE), silently.
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

use crate::container::logs::Stream;
use crate::error::Result;
use crate::sys::{Call, Sys};

/// True for the signals dockling forwards to the container (`--sig-proxy`, on by default),
/// as Docker's `ForwardAllSignals`: every signal but SIGCHLD and SIGPIPE (about dockling
/// itself), SIGURG (Go's runtime uses it, so Docker never forwards it) and SIGWINCH (a
/// resize of the terminal instead). Not those that cannot be caught (SIGKILL, SIGSTOP) nor
/// those a fault raises (SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGTRAP, SIGSYS: blocked, a real
/// fault would kill dockling unreported), nor the real-time ones.
pub fn is_proxied(sig: Signal) -> bool {
    !matches!(
        sig,
        Signal::SIGKILL
            | Signal::SIGSTOP
            | Signal::SIGCHLD
            | Signal::SIGPIPE
            | Signal::SIGURG
            | Signal::SIGWINCH
            | Signal::SIGSEGV
            | Signal::SIGBUS
            | Signal::SIGFPE
            | Signal::SIGILL
            | Signal::SIGTRAP
            | Signal::SIGSYS
    )
}

/// The signals forwarded to the container (see [`is_proxied`]).
pub fn proxied() -> Vec<Signal> {
    Signal::iterator().filter(|s| is_proxied(*s)).collect()
}

/// The signals the relay reads from its signalfd: SIGCHLD (the container ended), SIGWINCH
/// (resize), and with `proxy` every forwarded one. Blocked before `clone`, so none is lost
/// between clone and the relay loop.
pub fn relay_signals_for(proxy: bool) -> SigSet {
    let mut set = SigSet::empty();
    if proxy {
        for s in proxied() {
            set.add(s);
        }
    }
    set.add(Signal::SIGCHLD);
    set.add(Signal::SIGWINCH);
    set
}

/// [`relay_signals_for`] with every forwarded signal (the `--init` process forwards them all).
pub fn relay_signals() -> SigSet {
    relay_signals_for(true)
}

/// Block the relayed signals (a traced `rt_sigprocmask`); returns the previous mask.
pub fn block_signals(sys: &Sys) -> std::result::Result<u64, crate::sys::SysError> {
    block_signals_for(sys, true)
}

/// Block the signals [`relay_signals_for`]`(proxy)` reads (a traced `rt_sigprocmask`).
pub fn block_signals_for(sys: &Sys, proxy: bool) -> std::result::Result<u64, crate::sys::SysError> {
    let signals: Vec<i32> = relay_signals_for(proxy).iter().map(|s| s as i32).collect();
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
pub(crate) struct RawMode {
    saved: Option<termios::Termios>,
}

impl RawMode {
    pub(crate) fn enter(active: bool) -> RawMode {
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

nix::ioctl_read_bad!(
    /// `ioctl(fd, TIOCGWINSZ, &ws)`: a terminal's size.
    tiocgwinsz,
    libc::TIOCGWINSZ,
    libc::winsize
);
nix::ioctl_write_ptr_bad!(
    /// `ioctl(fd, TIOCSWINSZ, &ws)`: set a terminal's size.
    tiocswinsz,
    libc::TIOCSWINSZ,
    libc::winsize
);

/// The size of the user's terminal (stdout's, else stdin's); `None` without one.
pub fn user_winsize() -> Option<libc::winsize> {
    let mut ws = libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    [1, 0].into_iter().find_map(|fd| {
        // SAFETY: ws is a live winsize for TIOCGWINSZ to fill; fd is only asked about.
        unsafe { tiocgwinsz(fd, &mut ws) }.ok().map(|_| ws)
    })
}

/// Give the container's terminal (`master`) the size of the user's.
pub(crate) fn copy_winsize(master: &OwnedFd) {
    if let Some(ws) = user_winsize() {
        // SAFETY: master is an open pty master; TIOCSWINSZ reads the live ws.
        let _ = unsafe { tiocswinsz(master.as_raw_fd(), &ws) };
    }
}

/// True when stderr is the very file stdout is (`2>&1`): then the container's stderr goes
/// into the stdout pipe too, or the relay would reorder what the two interleave.
pub fn stderr_is_stdout() -> bool {
    match (nix::sys::stat::fstat(1), nix::sys::stat::fstat(2)) {
        (Ok(a), Ok(b)) => a.st_dev == b.st_dev && a.st_ino == b.st_ino,
        _ => false,
    }
}

/// A pipe for the container's stdout when the engine's own stdout is a pipe or a socket
/// (and there is no terminal): (the engine's read end, the container's write end).
pub fn stdout_pipe(
    sys: &Sys,
    tty: bool,
) -> std::result::Result<Option<(OwnedFd, OwnedFd)>, crate::sys::SysError> {
    if tty || sys.is_dry_run() {
        return Ok(None);
    }
    let piped = nix::sys::stat::fstat(1).is_ok_and(|st| {
        let kind = st.st_mode & libc::S_IFMT;
        kind == libc::S_IFIFO || kind == libc::S_IFSOCK
    });
    if !piped {
        return Ok(None);
    }
    pipe(sys).map(Some)
}

/// A pipe (a traced `pipe2`): (the read end, the write end).
pub fn pipe(sys: &Sys) -> std::result::Result<(OwnedFd, OwnedFd), crate::sys::SysError> {
    match sys.perform(Call::Pipe2)? {
        // SAFETY: the kernel just created both descriptors and nothing else owns them.
        crate::sys::Ret::FdPair(r, w) => unsafe {
            use std::os::fd::FromRawFd;
            Ok((OwnedFd::from_raw_fd(r), OwnedFd::from_raw_fd(w)))
        },
        other => unreachable!("pipe2 returns a pair of descriptors, not {other:?}"),
    }
}

/// Where the container's output goes: dockling's stdout and stderr (a foreground run), the
/// container's json-file log (a detached one, written by its monitor), and the clients
/// attached to its monitor (`dockling attach`).
#[derive(Default)]
pub struct Sink<'a> {
    /// Dockling's own stdout.
    pub stdout: bool,
    /// The log.
    pub log: Option<&'a mut crate::container::logs::LogWriter>,
    /// The monitor's attached clients.
    pub hub: Option<&'a mut crate::container::attach::Hub>,
    /// A build's RUN (`StartOptions::cancel`): SIGINT, SIGTERM and SIGHUP are not forwarded
    /// but end the container (SIGKILL), and the signal is stored here for the build to stop.
    pub cancel: Option<&'a std::sync::atomic::AtomicI32>,
}

impl Sink<'_> {
    /// Dockling's stdout only.
    pub fn stdout() -> Sink<'static> {
        Sink {
            stdout: true,
            ..Default::default()
        }
    }

    /// Put what the container wrote to `stream`; an error only when dockling's stdout is
    /// gone (EPIPE). A log that cannot be written (disk full) loses the output, as Docker's
    /// json-file driver does, but never the container.
    fn put(&mut self, stream: Stream, data: &[u8]) -> std::io::Result<()> {
        if let Some(log) = self.log.as_mut() {
            if let Err(e) = log.write(stream, data) {
                warn_once(&e);
            }
        }
        if let Some(hub) = self.hub.as_mut() {
            let kind = match stream {
                Stream::Stdout => crate::container::attach::STDOUT,
                Stream::Stderr => crate::container::attach::STDERR,
            };
            hub.broadcast(kind, data);
        }
        if self.stdout && stream == Stream::Stderr {
            // Dockling's stderr: unbuffered; a closed one loses the output, as a closed
            // terminal would, but does not end the container.
            let _ = std::io::stderr().lock().write_all(data);
        } else if self.stdout {
            let mut stdout = std::io::stdout().lock();
            stdout.write_all(data)?;
            stdout.flush()?;
        }
        Ok(())
    }

    fn finish(&mut self) {
        if let Some(log) = self.log.as_mut() {
            if let Err(e) = log.finish() {
                warn_once(&e);
            }
        }
        if let Some(hub) = self.hub.as_mut() {
            hub.finish();
        }
    }
}

fn warn_once(e: &crate::error::Error) {
    static WARNED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    if !WARNED.swap(true, std::sync::atomic::Ordering::Relaxed) {
        eprintln!("dockling: warning: the container's output is lost: {e}");
    }
}

/// A pipe the container writes one of its outputs into.
pub struct Source {
    file: File,
    stream: Stream,
}

impl Source {
    /// The engine's read end of the pipe for `stream`.
    pub fn new(fd: OwnedFd, stream: Stream) -> Source {
        let file = File::from(fd);
        // Non-blocking, so the last copy after the exit never waits for a writer that lives on.
        crate::files::set_nonblocking(&file);
        Source { file, stream }
    }
}

/// Copy what is waiting in an output pipe to the sink (non-blocking); false when the pipe is
/// at its end, an error when dockling's stdout is gone (EPIPE).
fn copy_out(src: &mut Source, sink: &mut Sink<'_>, buf: &mut [u8]) -> std::io::Result<bool> {
    match src.file.read(buf) {
        Ok(0) => Ok(false),
        Ok(n) => sink.put(src.stream, &buf[..n]).map(|()| true),
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::Interrupted => Ok(true),
        Err(e) => Err(e),
    }
}

/// Copy what the container wrote last, after it exited; true when stdout is gone. Bounded
/// (64 MiB): a writer that outlives it (`--pid host`) is killed with its cgroup, not waited for.
fn drain_out(src: &mut Source, sink: &mut Sink<'_>, buf: &mut [u8]) -> bool {
    for _ in 0..4096 {
        match src.file.read(buf) {
            Ok(0) => break,
            Ok(n) => {
                if sink.put(src.stream, &buf[..n]).is_err() {
                    return true;
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => break,
        }
    }
    false
}

/// How the relay ended.
pub struct Relayed {
    /// The container's raw wait status.
    pub status: i32,
    /// Whoever read dockling's stdout went away, and the container was killed for it.
    pub broken_pipe: bool,
}

/// Relay until the container exits: the terminal (`master`), the output pipes (`sources`)
/// into `sink`, the forwarded signals.
#[allow(clippy::too_many_arguments)]
pub fn relay(
    sys: &Sys,
    pid: i32,
    master: Option<OwnedFd>,
    forward_stdin: bool,
    proxy: bool,
    sources: Vec<Source>,
    mut sink: Sink<'_>,
) -> Result<Relayed> {
    let mut sfd = SignalFd::with_flags(
        &relay_signals_for(proxy),
        SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK,
    )
    .map_err(|source| super::RuntimeError::Signalfd { source })?;
    let _raw = RawMode::enter(master.is_some() && sink.stdout);
    let mut master_file = master.map(File::from);
    if let Some(m) = &master_file {
        let fd: OwnedFd = m
            .try_clone()
            .map(OwnedFd::from)
            .expect("dup of the terminal");
        copy_winsize(&fd);
        // Non-blocking: a container that stops reading its terminal while it writes to it
        // must not stop the relay in a write (then nobody reads what the container writes,
        // the container blocks too, and both wait for ever). What cannot be written yet
        // waits in `to_master` until poll says the terminal takes more (POLLOUT).
        crate::files::set_nonblocking(&fd);
    }
    let mut to_master: std::collections::VecDeque<u8> = Default::default();
    let mut stdin_open = forward_stdin && master_file.is_some();
    let mut sources: Vec<Option<Source>> = sources.into_iter().map(Some).collect();
    let mut broken_pipe = false;
    let mut _parked: Vec<Source> = Vec::new();
    let mut buf = [0u8; 16384];
    // A detached container's monitor: from here on it only relays and waits, so what its
    // start touched goes back (the goal: a monitor as small as conmon), and so does
    // what a burst of output touched, once the container has been quiet for a while.
    let monitor = !sink.stdout;
    let mut shed = monitor;
    let mut touched = false;
    loop {
        if shed {
            crate::sys::memory::shed();
            shed = false;
            touched = false;
        }
        let stdin = std::io::stdin();
        let mut fds = vec![PollFd::new(sfd.as_fd(), PollFlags::POLLIN)];
        for src in sources.iter().flatten() {
            fds.push(PollFd::new(src.file.as_fd(), PollFlags::POLLIN));
        }
        let mfd = master_file.as_ref().map(|m| m.as_fd());
        if let Some(m) = mfd {
            let mut events = PollFlags::POLLIN;
            if !to_master.is_empty() {
                events |= PollFlags::POLLOUT;
            }
            fds.push(PollFd::new(m, events));
        }
        // Input is read while the terminal keeps up, up to MAX_PENDING bytes ahead of it:
        // then the user's side waits (backpressure), never the relay.
        let stdin_open_now = stdin_open && to_master.len() < MAX_PENDING;
        if stdin_open_now {
            fds.push(PollFd::new(stdin.as_fd(), PollFlags::POLLIN));
        }
        let hub_at = fds.len();
        if let Some(hub) = sink.hub.as_ref() {
            // Attached clients' keys are read only while the terminal keeps up (at most
            // MAX_PENDING bytes ahead of it), as the user's own stdin above: a container that
            // stops reading its terminal makes `attach` wait, never the monitor grow.
            let keys_wanted = to_master.len() < MAX_PENDING && hub.wants_keys();
            for (i, (fd, out)) in hub.poll_fds().into_iter().enumerate() {
                let client = i >= 1 && i <= hub.clients();
                let mut events = if client && !keys_wanted {
                    PollFlags::empty()
                } else {
                    PollFlags::POLLIN
                };
                if out {
                    events |= PollFlags::POLLOUT;
                }
                fds.push(PollFd::new(fd, events));
            }
        }
        let timeout = if monitor && touched {
            PollTimeout::from(QUIET_MS)
        } else {
            PollTimeout::NONE
        };
        match poll(&mut fds, timeout) {
            Ok(0) => {
                // Quiet since the last shed and the work after it: give it back again.
                drop(fds);
                shed = true;
                continue;
            }
            Ok(_) => touched = true,
            Err(nix::errno::Errno::EINTR) => continue,
            Err(source) => return Err(super::RuntimeError::Poll { source }.into()),
        }
        let revents: Vec<PollFlags> = fds
            .iter()
            .map(|f| f.revents().unwrap_or(PollFlags::empty()))
            .collect();
        let ready: Vec<bool> = revents.iter().map(|r| !r.is_empty()).collect();
        drop(fds);
        let mut idx = 1;
        for slot in sources.iter_mut() {
            let Some(src) = slot.as_mut() else { continue };
            if ready[idx] {
                match copy_out(src, &mut sink, &mut buf) {
                    Ok(true) => {}
                    Ok(false) => *slot = None,
                    Err(_) => {
                        // EPIPE (dockling ignores SIGPIPE): nobody reads the output any more.
                        // End the container, as the docker client's death by SIGPIPE does.
                        // The pipe stays open until it is gone: closed first, its next write
                        // would fail with EPIPE, and the container would say so.
                        broken_pipe = true;
                        let _ = sys.run(Call::Kill {
                            pid,
                            signal: libc::SIGKILL,
                        });
                        _parked.extend(slot.take());
                    }
                }
            }
            idx += 1;
        }
        if master_file.is_some() {
            let r = revents[idx];
            let m = master_file.as_mut().expect("checked");
            let mut gone = false;
            if r.intersects(PollFlags::POLLIN | PollFlags::POLLHUP | PollFlags::POLLERR) {
                match m.read(&mut buf) {
                    Ok(0) => gone = true,
                    Ok(n) => {
                        let _ = sink.put(Stream::Stdout, &buf[..n]);
                    }
                    Err(e) if crate::files::retry(&e) => {}
                    Err(_) => gone = true,
                }
            }
            if !gone && r.contains(PollFlags::POLLOUT) {
                gone = crate::files::write_now(m, &mut to_master).is_err();
            }
            if gone {
                master_file = None;
                to_master.clear();
            }
            idx += 1;
        }
        if stdin_open_now && ready.get(idx).copied().unwrap_or(false) {
            match std::io::stdin().lock().read(&mut buf) {
                Ok(0) | Err(_) => stdin_open = false,
                Ok(n) => {
                    if let Some(m) = master_file.as_mut() {
                        to_master.extend(&buf[..n]);
                        // Written at once when the terminal takes it (the usual case: a
                        // key), else when poll says it can.
                        if crate::files::write_now(m, &mut to_master).is_err() {
                            master_file = None;
                            to_master.clear();
                        }
                    }
                }
            }
        }
        if let Some(hub) = sink.hub.as_mut() {
            let states: Vec<(bool, bool)> = revents[hub_at..]
                .iter()
                .map(|r| {
                    (
                        r.intersects(PollFlags::POLLIN | PollFlags::POLLHUP | PollFlags::POLLERR),
                        r.contains(PollFlags::POLLOUT),
                    )
                })
                .collect();
            for input in hub.handle(&states) {
                match input {
                    crate::container::attach::Input::Keys(keys) => {
                        if let Some(m) = master_file.as_mut() {
                            to_master.extend(&keys);
                            if crate::files::write_now(m, &mut to_master).is_err() {
                                master_file = None;
                                to_master.clear();
                            }
                        }
                    }
                    crate::container::attach::Input::Resize(ws) => {
                        if let Some(m) = &master_file {
                            // SAFETY: m is an open pty master; TIOCSWINSZ reads the live ws.
                            let _ = unsafe { tiocswinsz(m.as_raw_fd(), &ws) };
                        }
                    }
                }
            }
        }
        if ready[0] {
            while let Ok(Some(info)) = sfd.read_signal() {
                let signo = info.ssi_signo as i32;
                if signo == libc::SIGCHLD {
                    // SAFETY: waitid with WNOHANG|WNOWAIT only peeks at the child's state; si
                    // is a live siginfo for the kernel to fill. Not nix's waitid: its
                    // WaitStatus fails on a child killed by a real-time signal, which would
                    // then never be seen to exit.
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
                        drain(master_file.as_mut(), &mut sink, &mut buf);
                        for src in sources.iter_mut().flatten() {
                            broken_pipe |= drain_out(src, &mut sink, &mut buf);
                        }
                        sink.finish();
                        let status = sys.wait4(pid)?;
                        let _ = &mut sfd;
                        return Ok(Relayed {
                            status,
                            broken_pipe,
                        });
                    }
                } else if signo == libc::SIGWINCH {
                    if let Some(m) = &master_file {
                        if let Ok(fd) = m.try_clone() {
                            copy_winsize(&OwnedFd::from(fd));
                        }
                    }
                } else if let Some(c) = sink
                    .cancel
                    .filter(|_| matches!(signo, libc::SIGINT | libc::SIGTERM | libc::SIGHUP))
                {
                    // Ctrl-C of a build: `docker build` cancels the step, it does not ask
                    // the step's process (which, as pid 1, may ignore SIGINT) to stop.
                    c.store(signo, std::sync::atomic::Ordering::SeqCst);
                    let _ = sys.run(Call::Kill {
                        pid,
                        signal: libc::SIGKILL,
                    });
                } else if proxy {
                    let _ = sys.run(Call::Kill { pid, signal: signo });
                }
            }
        }
    }
}

/// How long a monitor's container must be quiet before the monitor sheds again.
const QUIET_MS: u16 = 2000;

/// How far the input may run ahead of a container that does not read its terminal.
const MAX_PENDING: usize = 1 << 20;

/// Copy what the container wrote last, after it exited.
fn drain(master: Option<&mut File>, sink: &mut Sink<'_>, buf: &mut [u8]) {
    // (Non-blocking already: the relay set its file description so.)
    let Some(m) = master else { return };
    for _ in 0..1024 {
        match m.read(buf) {
            Ok(n) if n > 0 => {
                let _ = sink.put(Stream::Stdout, &buf[..n]);
            }
            _ => break,
        }
    }
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
