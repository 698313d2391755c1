//! The userland proxy: `dockling proxy`, one process per container, carrying the traffic of
//! its published ports to the container's address (Docker's `docker-proxy`).
//!
//! The engine binds the host ports itself ([`super::ports::bind_all`], traced, before the
//! container starts) and [`spawn`]s this binary again as the hidden
//! `dockling proxy --container-ip IP --map tcp:0.0.0.0:8000:80 …`: the bound sockets on
//! descriptors 4, 5, … (one per `--map`, in order), descriptor 3 a status pipe on which it
//! writes `0\n` once it serves or `1\n<error>` (docker-proxy's protocol). Every other
//! descriptor is closed at its exec, and `PR_SET_PDEATHSIG(SIGKILL)` ends it with the process
//! that started it, even one killed with SIGKILL. A separate process, not threads of the
//! engine: the monitor must stay single-threaded (it clones again for `--restart`), and `ps`
//! shows an honest `dockling proxy`.
//!
//! TCP: a thread accepts on each listener; each connection gets a connect to the container
//! (3 s at most; refused: the client gets a reset, except in the first [`STARTING`] of the
//! proxy's life, while the container's server may still be starting: the connect is tried
//! again every 5 ms until it answers or that time is over, so a client that came early is
//! served, not reset: the engine listens before the container starts for that) and two threads, one per direction, each
//! moving bytes socket → pipe → socket with `splice(2)` (a 64 KiB pipe, so nothing is copied
//! through user space), and `shutdown(SHUT_WR)` when its side reads EOF, so a half-closed
//! connection stays half-open. At most [`MAX_CONNECTIONS`] at once (the hard limit of open
//! files is 20000 here, and each connection holds eight; the soft limit is raised to the hard one
//! and the cap lowered to what it leaves room for); a connection beyond is closed with a
//! line on stderr. UDP: one flow per client address, a socket of its own to the container,
//! forgotten after 90 s without traffic (docker-proxy's timeout).
//!
//! The data path is untraced plumbing, like the stdout relay: it carries a container's
//! traffic, it does not shape the container.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, Shutdown, SocketAddr, SocketAddrV4, TcpListener, TcpStream, UdpSocket};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, IntoRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::ports::{Listener, Proto, Published};
use super::NetError;
use crate::sys::{Call, Prctl, Sys, SysError};

/// Connections carried at once, by default.
pub const MAX_CONNECTIONS: usize = 4096;
/// How long a connect to the container may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// How long after the proxy starts a refused connect to the container is tried again (the
/// container's server may still be starting).
pub const STARTING: Duration = Duration::from_secs(2);
/// When this proxy started serving (for [`STARTING`]).
static SERVING_SINCE: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
/// A UDP flow without traffic for this long is forgotten (docker-proxy's value).
pub const UDP_IDLE: Duration = Duration::from_secs(90);
/// The size of each direction's pipe.
const PIPE_SIZE: usize = 64 * 1024;
/// How long [`spawn`] waits for the status line.
const START_TIMEOUT: Duration = Duration::from_secs(10);

/// Where the proxy's log lines (its stderr) go.
#[derive(Debug, Default)]
pub enum ProxyLog {
    /// This process's stderr.
    #[default]
    Inherit,
    /// Nowhere (`/dev/null`).
    Null,
    /// This open file.
    To(OwnedFd),
}

/// How to start the proxy.
pub struct ProxyOptions {
    /// The binary to run (`/proc/self/exe`: this very binary, sealed or read-only if the
    /// engine re-executed itself so).
    pub exe: PathBuf,
    /// Connections carried at once.
    pub max_connections: usize,
    /// Where its log lines go.
    pub stderr: ProxyLog,
}

impl Default for ProxyOptions {
    fn default() -> Self {
        ProxyOptions {
            exe: "/proc/self/exe".into(),
            max_connections: MAX_CONNECTIONS,
            stderr: ProxyLog::Inherit,
        }
    }
}

/// A running proxy process. [`ProxyChild::kill`] ends it through the seam; dropping one that
/// was not killed so kills and waits for it untraced (a path that never reached `kill`, such
/// as a panic unwinding).
#[derive(Debug)]
pub struct ProxyChild {
    /// 0: none (a dry run, no listeners, or already killed).
    pid: i32,
}

impl ProxyChild {
    /// Its pid (0 in a dry run).
    pub fn pid(&self) -> u32 {
        self.pid as u32
    }

    /// SIGKILL and wait (`kill`, `wait4`, traced): the published ports close with it.
    /// Returns the raw wait status (None when there was no process).
    pub fn kill(mut self, sys: &Sys) -> Option<i32> {
        self.stop(sys)
    }

    fn stop(&mut self, sys: &Sys) -> Option<i32> {
        let pid = std::mem::take(&mut self.pid);
        if pid <= 0 {
            return None;
        }
        let _ = sys.run(Call::KillProxy { pid });
        match sys.perform(Call::WaitProxy { pid }) {
            Ok(crate::sys::Ret::Waited { status, .. }) => Some(status),
            _ => None,
        }
    }
}

impl Drop for ProxyChild {
    fn drop(&mut self) {
        self.stop(&Sys::quiet());
    }
}

/// Start `dockling proxy` for these listeners in front of `container_ip` and wait until it
/// serves. In a dry run nothing starts (a trace note says what would).
pub fn spawn(
    sys: &Sys,
    listeners: &[Listener],
    container_ip: Ipv4Addr,
) -> Result<ProxyChild, NetError> {
    spawn_with(sys, listeners, container_ip, ProxyOptions::default())
}

/// The arguments after the binary: `proxy --container-ip IP --map … …`.
pub fn args(listeners: &[Listener], container_ip: Ipv4Addr, max: usize) -> Vec<String> {
    let mut a = vec![
        "proxy".to_string(),
        "--container-ip".into(),
        container_ip.to_string(),
    ];
    if max != MAX_CONNECTIONS {
        a.extend(["--max-connections".into(), max.to_string()]);
    }
    for l in listeners {
        a.extend(["--map".into(), l.published.to_string()]);
    }
    a
}

/// What the forked copy needs to become the proxy, worked out before the fork: the copy only
/// makes calls.
struct Plan<'a> {
    /// The status pipe's write end.
    status: RawFd,
    /// The listeners, in `--map` order.
    sources: Vec<RawFd>,
    /// A number above every descriptor in play (and above 3 + the listeners): each goes there
    /// first, so placing them on 3, 4, … never overwrites one not yet copied.
    base: RawFd,
    /// This process, which the proxy must still have as its parent once PDEATHSIG is set.
    parent: libc::pid_t,
    stderr: &'a ProxyLog,
    exec: Call,
}

/// [`spawn`] with options. The start goes through the seam, as the container's does: the
/// status pipe (`pipe2`), a plain fork (`clone`), and in the fork `PR_SET_PDEATHSIG`,
/// /dev/null and the descriptors `dup2`'d into place, everything else marked close-on-exec
/// (`close_range`), the signal mask emptied, and `execve` of this binary as
/// `dockling proxy …`; the trace names that process `proxy`. Call it from a process whose
/// other threads (if any) cannot hold the allocator's lock: the fork is a raw `clone`, and its
/// copy allocates the `execve`'s argument strings (the engine and the monitor are
/// single-threaded here).
pub fn spawn_with(
    sys: &Sys,
    listeners: &[Listener],
    container_ip: Ipv4Addr,
    opts: ProxyOptions,
) -> Result<ProxyChild, NetError> {
    if let Some(l) = listeners
        .iter()
        .find(|l| l.mode == crate::network::ports::Mode::Reserve)
    {
        return Err(NetError::Proxy(format!(
            "{} is only reserved (for NAT mode): the proxy needs sockets bound for it (ports::Mode::Listen)",
            l.published
        )));
    }
    let argv = args(listeners, container_ip, opts.max_connections);
    sys.tracer.note(&format!(
        "start the port proxy: {} {} (listeners on fds 4.., status on fd 3)",
        opts.exe.display(),
        argv.join(" ")
    ));
    if sys.is_dry_run() || listeners.is_empty() {
        return Ok(ProxyChild { pid: 0 });
    }
    let err = |what: &str, e: &dyn std::fmt::Display| NetError::Proxy(format!("{what}: {e}"));
    let (status_r, status_w) = match sys.perform(Call::ProxyPipe).map_err(|e| err("pipe2", &e))? {
        // SAFETY: the kernel just created both descriptors and nothing else owns them.
        crate::sys::Ret::FdPair(r, w) => unsafe {
            (OwnedFd::from_raw_fd(r), OwnedFd::from_raw_fd(w))
        },
        other => unreachable!("pipe2 returns a pair of descriptors, not {other:?}"),
    };
    let sources: Vec<RawFd> = listeners.iter().map(|l| l.as_raw_fd()).collect();
    let highest = sources
        .iter()
        .copied()
        .chain([status_w.as_raw_fd(), 3 + sources.len() as RawFd])
        .chain(match &opts.stderr {
            ProxyLog::To(fd) => Some(fd.as_raw_fd()),
            _ => None,
        })
        .chain(sys.tracer.own_fds())
        .max()
        .unwrap_or(3);
    // Seen in the host's `ps` as `dockling proxy …`, not `/proc/self/exe proxy …`.
    let mut exec_argv = vec!["dockling".to_string()];
    exec_argv.extend(argv);
    // The environment as the proxy's (a value that is not UTF-8 is left out: the proxy reads
    // none).
    let envp: Vec<String> = std::env::vars_os()
        .filter_map(|(k, v)| Some(format!("{}={}", k.to_str()?, v.to_str()?)))
        .collect();
    let plan = Plan {
        status: status_w.as_raw_fd(),
        sources,
        base: highest + 1,
        parent: std::process::id() as libc::pid_t,
        stderr: &opts.stderr,
        exec: Call::Execve {
            path: opts.exe.clone(),
            argv: exec_argv,
            envp,
        },
    };
    let forked = Instant::now();
    let pid = sys
        .clone_process(nix::sched::CloneFlags::empty())
        .map_err(|e| err(&format!("start {}", opts.exe.display()), &e))?;
    if pid == 0 {
        sys.tracer.set_process("proxy");
        // Its events must not land on 3, 4, … nor on the copies above `base`.
        sys.tracer
            .move_fds_above(plan.base + 1 + plan.sources.len() as RawFd);
        let report = std::cell::Cell::new(plan.status);
        let why = match become_proxy(sys, plan, &report) {
            Ok(never) => match never {},
            Err(e) => e,
        };
        // On the status pipe, wherever it is now (docker-proxy's `1\n<error>`).
        let line = format!("1\n{why}");
        // SAFETY: a write of a live buffer to the status pipe's descriptor.
        unsafe { libc::write(report.get(), line.as_ptr().cast(), line.len()) };
        sys.tracer.flush();
        // SAFETY: the end of a forked copy that could not exec: no exit handlers of the
        // parent's copy of this image may run.
        unsafe { libc::_exit(127) }
    }
    drop(status_w);
    let child = ProxyChild { pid };
    match read_status(status_r) {
        Ok(()) => {
            // It serves, so its execve succeeded, and its code that could have traced it is
            // gone: the engine records it on its behalf (as the container's), with the time
            // from the fork until the status line as its duration (an upper bound).
            let me = sys.tracer.process();
            sys.tracer.set_process("proxy");
            sys.tracer
                .syscall(&plan.exec, &Ok(crate::sys::Ret::Zero), forked.elapsed());
            sys.tracer.set_process(me);
            Ok(child)
        }
        Err(why) => {
            let status = child.kill(sys);
            Err(NetError::Proxy(match status {
                Some(s) if libc::WIFEXITED(s) => {
                    format!("{why} (exit status: {})", libc::WEXITSTATUS(s))
                }
                Some(s) if libc::WIFSIGNALED(s) && libc::WTERMSIG(s) != libc::SIGKILL => {
                    format!("{why} (signal: {})", libc::WTERMSIG(s))
                }
                _ => why,
            }))
        }
    }
}

/// In the fork: become `dockling proxy` (see [`spawn_with`]). Returns only on failure.
/// `report` follows the status pipe's descriptor as it moves.
fn become_proxy(
    sys: &Sys,
    plan: Plan<'_>,
    report: &std::cell::Cell<RawFd>,
) -> Result<std::convert::Infallible, SysError> {
    use crate::sys::call::Stdio as What;
    sys.run(Call::Prctl {
        option: Prctl::SetPdeathsig,
        arg: libc::SIGKILL as u64,
    })?;
    // The parent died before the line above: nobody would ever kill this proxy.
    if nix::unistd::getppid().as_raw() != plan.parent {
        return Err(SysError {
            name: "prctl",
            object: "PR_SET_PDEATHSIG: the engine ended before it was set".into(),
            errno: nix::errno::Errno::ESRCH,
        });
    }
    let dup2 = |old: RawFd, new: RawFd, what: What| sys.run(Call::Dup2 { old, new, what });
    // Never closed through its owner: the numbers are reused by the dup2s below, and what is
    // left of it closes at exec (O_CLOEXEC).
    let null = sys
        .open(Path::new("/dev/null"), libc::O_RDWR | libc::O_CLOEXEC)?
        .into_raw_fd();
    // 0, 1 and 2 hold nothing of the plan: Rust's runtime opens /dev/null on any of them the
    // engine was started without, before main, so no listener or pipe can sit there.
    dup2(null, 0, What::ProxyNull)?;
    dup2(null, 1, What::ProxyNull)?;
    match plan.stderr {
        ProxyLog::Inherit => {}
        ProxyLog::Null => dup2(null, 2, What::ProxyNull)?,
        ProxyLog::To(fd) => dup2(fd.as_raw_fd(), 2, What::ProxyLog)?,
    }
    dup2(plan.status, plan.base, What::ProxyStatus)?;
    // Nothing is put on `base` again, while the status pipe's own number may be.
    report.set(plan.base);
    for (i, fd) in plan.sources.iter().enumerate() {
        dup2(*fd, plan.base + 1 + i as RawFd, What::ProxyListener)?;
    }
    dup2(plan.base, 3, What::ProxyStatus)?;
    for i in 0..plan.sources.len() as RawFd {
        dup2(plan.base + 1 + i, 4 + i, What::ProxyListener)?;
    }
    sys.run(Call::CloseRange {
        first: 4 + plan.sources.len() as u32,
        preserving: false,
    })?;
    // The engine blocked the signals it forwards before it cloned the container; the mask
    // would outlive the execve.
    sys.run(Call::UnblockSignals)?;
    // Moved, not cloned: the fork allocates as little as it can.
    sys.run(plan.exec)?;
    unreachable!("execve returned without an error")
}

/// Read `0\n` (serving) or `1\n<error>` from the status pipe, within [`START_TIMEOUT`].
fn read_status(r: OwnedFd) -> Result<(), String> {
    let mut f = std::fs::File::from(r);
    let deadline = Instant::now() + START_TIMEOUT;
    let mut buf = Vec::new();
    loop {
        if buf.first() == Some(&b'0') && buf.contains(&b'\n') {
            return Ok(());
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err("it did not report within 10 s".into());
        }
        let mut fds = [nix::poll::PollFd::new(
            f.as_fd(),
            nix::poll::PollFlags::POLLIN,
        )];
        let ms = nix::poll::PollTimeout::try_from(left.as_millis().min(10_000) as i32)
            .unwrap_or(nix::poll::PollTimeout::MAX);
        match nix::poll::poll(&mut fds, ms) {
            Ok(0) | Err(nix::errno::Errno::EINTR) => continue,
            Ok(_) => {}
            Err(e) => return Err(format!("poll: {e}")),
        }
        let mut chunk = [0u8; 4096];
        match f.read(&mut chunk) {
            Ok(0) => {
                let text = String::from_utf8_lossy(&buf).into_owned();
                return Err(match text.strip_prefix("1\n") {
                    Some(e) => e.trim_end().to_string(),
                    None => "it exited before serving".into(),
                });
            }
            Ok(k) => buf.extend_from_slice(&chunk[..k]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(format!("read its status: {e}")),
        }
    }
}

/// A failure of the proxy process itself.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ServeError(String);

/// The proxy process's body (`dockling proxy`): take the listeners from descriptors 4.., serve
/// them, report on descriptor 3, and never return unless it cannot serve.
pub fn serve(
    container_ip: Ipv4Addr,
    maps: &[Published],
    max_connections: usize,
) -> Result<(), ServeError> {
    // Again (spawn's fork did it already for the engine's proxies), for one started by
    // hand; a no-op when already set.
    let _ = nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL);
    // SAFETY: descriptor 3 is the status pipe by this command's contract; owned from here on.
    let mut status = std::fs::File::from(unsafe { OwnedFd::from_raw_fd(3) });
    // Each connection holds eight descriptors (two sockets, their clones, two pipes' two
    // ends... see carry): the soft limit of open files (often 1024) is raised to the hard one
    // (never above it), and the cap kept where the descriptors are there.
    let max_connections =
        match nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE) {
            Ok((_, hard)) => {
                let _ = nix::sys::resource::setrlimit(
                    nix::sys::resource::Resource::RLIMIT_NOFILE,
                    hard,
                    hard,
                );
                let room = (hard.min(1 << 20) as usize).saturating_sub(64) / 8;
                max_connections.min(room.max(1))
            }
            Err(_) => max_connections,
        };
    SERVING_SINCE.get_or_init(Instant::now);
    match start(container_ip, maps, max_connections) {
        Ok(()) => {
            let _ = status.write_all(b"0\n");
            drop(status);
            loop {
                std::thread::park();
            }
        }
        Err(e) => {
            let _ = write!(status, "1\n{e}");
            Err(e)
        }
    }
}

fn start(container_ip: Ipv4Addr, maps: &[Published], max: usize) -> Result<(), ServeError> {
    let open = Arc::new(AtomicUsize::new(0));
    for (i, m) in maps.iter().enumerate() {
        let fd = 4 + i as RawFd;
        let want = match m.proto {
            Proto::Tcp => nix::sys::socket::SockType::Stream,
            Proto::Udp => nix::sys::socket::SockType::Datagram,
        };
        // SAFETY: borrowed only to ask the kernel what it is; if it is no socket of the
        // expected kind, nothing takes ownership.
        let borrowed = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
        match nix::sys::socket::getsockopt(&borrowed, nix::sys::socket::sockopt::SockType) {
            Ok(t) if t == want => {}
            Ok(t) => return Err(ServeError(format!("fd {fd} for {m} is a {t:?} socket"))),
            Err(e) => return Err(ServeError(format!("fd {fd} for {m}: {e}"))),
        }
        if m.proto == Proto::Tcp
            && !nix::sys::socket::getsockopt(&borrowed, nix::sys::socket::sockopt::AcceptConn)
                .unwrap_or(false)
        {
            return Err(ServeError(format!("fd {fd} for {m} is not listening")));
        }
        // SAFETY: descriptor 4+i is this map's socket by the command's contract, checked to be
        // one just above; owned from here on.
        let owned = unsafe { OwnedFd::from_raw_fd(fd) };
        let target = SocketAddrV4::new(container_ip, m.container_port);
        let m = *m;
        let spawned = match m.proto {
            Proto::Tcp => {
                let l = TcpListener::from(owned);
                let open = open.clone();
                std::thread::Builder::new()
                    .name(format!("accept {m}"))
                    .spawn(move || accept_loop(l, m, target, open, max))
            }
            Proto::Udp => {
                let s = UdpSocket::from(owned);
                std::thread::Builder::new()
                    .name(format!("udp {m}"))
                    .spawn(move || udp_loop(s, m, target, max))
            }
        };
        spawned.map_err(|e| ServeError(format!("start a thread for {m}: {e}")))?;
    }
    Ok(())
}

fn accept_loop(
    l: TcpListener,
    m: Published,
    target: SocketAddrV4,
    open: Arc<AtomicUsize>,
    max: usize,
) {
    loop {
        let (client, from) = match l.accept() {
            Ok(c) => c,
            Err(e) => {
                // EMFILE and the like: say so, wait a moment rather than spin.
                eprintln!("dockling proxy: accept on {m}: {e}");
                std::thread::sleep(Duration::from_millis(100));
                continue;
            }
        };
        if open.fetch_add(1, Ordering::SeqCst) >= max {
            open.fetch_sub(1, Ordering::SeqCst);
            eprintln!(
                "dockling proxy: refused a connection from {from} to {}: {max} connections are open already (the limit)",
                m.host
            );
            reset(&client);
            continue;
        }
        let counted = open.clone();
        let spawned = std::thread::Builder::new()
            .stack_size(128 * 1024)
            .spawn(move || {
                carry(client, target);
                counted.fetch_sub(1, Ordering::SeqCst);
            });
        if let Err(e) = spawned {
            // The thread that would have given the slot back never ran: give it back here,
            // or every failed spawn would shrink the cap for good.
            open.fetch_sub(1, Ordering::SeqCst);
            eprintln!("dockling proxy: no thread for a connection from {from}: {e}");
        }
    }
}

/// Close with a reset (SO_LINGER 0) instead of an orderly FIN.
fn reset(s: &TcpStream) {
    let _ = nix::sys::socket::setsockopt(
        s,
        nix::sys::socket::sockopt::Linger,
        &libc::linger {
            l_onoff: 1,
            l_linger: 0,
        },
    );
}

/// One client connection: connect to the container, then both directions until both ended.
fn carry(client: TcpStream, target: SocketAddrV4) {
    let upstream = match connect_upstream(target, *SERVING_SINCE.get_or_init(Instant::now)) {
        Ok(s) => s,
        Err(_) => {
            reset(&client);
            return;
        }
    };
    let _ = client.set_nodelay(true);
    let _ = upstream.set_nodelay(true);
    let (c2, u2) = match (client.try_clone(), upstream.try_clone()) {
        (Ok(c), Ok(u)) => (c, u),
        _ => return,
    };
    let back = std::thread::Builder::new()
        .stack_size(128 * 1024)
        .spawn(move || pump(&u2, &c2));
    pump(&client, &upstream);
    if let Ok(t) = back {
        let _ = t.join();
    }
}

/// Connect to the container; a refusal within [`STARTING`] of `since` is tried again every
/// 5 ms (its server may not listen yet), bounded by that window.
fn connect_upstream(target: SocketAddrV4, since: Instant) -> std::io::Result<TcpStream> {
    loop {
        match TcpStream::connect_timeout(&SocketAddr::V4(target), CONNECT_TIMEOUT) {
            Err(e)
                if e.kind() == std::io::ErrorKind::ConnectionRefused
                    && since.elapsed() < STARTING =>
            {
                std::thread::sleep(Duration::from_millis(5));
            }
            other => return other,
        }
    }
}

/// Move bytes from `src` to `dst` through a pipe with splice(2) until `src` ends; then
/// half-close `dst` (SHUT_WR). On an error both sockets are shut down both ways, which also
/// ends the other direction.
fn pump(src: &TcpStream, dst: &TcpStream) {
    if splice_all(src, dst).is_ok() {
        let _ = dst.shutdown(Shutdown::Write);
    } else {
        let _ = src.shutdown(Shutdown::Both);
        let _ = dst.shutdown(Shutdown::Both);
    }
}

fn splice_all(src: &TcpStream, dst: &TcpStream) -> nix::Result<()> {
    use nix::fcntl::{splice, SpliceFFlags};
    let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;
    let _ = nix::fcntl::fcntl(
        r.as_raw_fd(),
        nix::fcntl::FcntlArg::F_SETPIPE_SZ(PIPE_SIZE as libc::c_int),
    );
    loop {
        let n = match splice(src, None, &w, None, PIPE_SIZE, SpliceFFlags::SPLICE_F_MOVE) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(e),
        };
        let mut left = n;
        while left > 0 {
            match splice(&r, None, dst, None, left, SpliceFFlags::SPLICE_F_MOVE) {
                Ok(0) => return Err(nix::errno::Errno::EPIPE),
                Ok(k) => left -= k,
                Err(nix::errno::Errno::EINTR) => {}
                Err(e) => return Err(e),
            }
        }
    }
}

struct Flow {
    sock: UdpSocket,
    last: AtomicU64,
}

/// UDP: datagrams from each client go out of a socket of that client's flow; what comes
/// back on it goes to the client from the published port.
fn udp_loop(l: UdpSocket, m: Published, target: SocketAddrV4, max: usize) {
    let l = Arc::new(l);
    let flows: Arc<Mutex<HashMap<SocketAddr, Arc<Flow>>>> = Arc::default();
    let epoch = Instant::now();
    let mut buf = vec![0u8; 65536];
    loop {
        let (n, from) = match l.recv_from(&mut buf) {
            Ok(x) => x,
            Err(_) => continue,
        };
        let now = epoch.elapsed().as_millis() as u64;
        let existing = flows.lock().map(|f| f.get(&from).cloned()).ok().flatten();
        let flow = match existing {
            Some(f) => f,
            None => {
                if flows.lock().map(|f| f.len()).unwrap_or(0) >= max {
                    eprintln!(
                        "dockling proxy: dropped a datagram from {from} to {}: {max} flows are open already (the limit)",
                        m.host
                    );
                    continue;
                }
                let sock = match UdpSocket::bind("0.0.0.0:0")
                    .and_then(|s| s.connect(target).map(|()| s))
                {
                    Ok(s) => s,
                    Err(e) => {
                        eprintln!("dockling proxy: udp to {target}: {e}");
                        continue;
                    }
                };
                let _ = sock.set_read_timeout(Some(Duration::from_secs(1)));
                let f = Arc::new(Flow {
                    sock,
                    last: AtomicU64::new(now),
                });
                if let Ok(mut map) = flows.lock() {
                    map.insert(from, f.clone());
                }
                let (l2, f2, flows2) = (l.clone(), f.clone(), flows.clone());
                let spawned = std::thread::Builder::new()
                    .stack_size(128 * 1024)
                    .spawn(move || udp_replies(l2, f2, from, flows2, epoch));
                if let Err(e) = spawned {
                    // No thread to carry replies or expire it: the flow must not stay.
                    eprintln!("dockling proxy: no thread for udp from {from}: {e}");
                    if let Ok(mut map) = flows.lock() {
                        map.remove(&from);
                    }
                    continue;
                }
                f
            }
        };
        flow.last.store(now, Ordering::Relaxed);
        let _ = flow.sock.send(&buf[..n]);
    }
}

fn udp_replies(
    l: Arc<UdpSocket>,
    flow: Arc<Flow>,
    client: SocketAddr,
    flows: Arc<Mutex<HashMap<SocketAddr, Arc<Flow>>>>,
    epoch: Instant,
) {
    let mut buf = vec![0u8; 65536];
    loop {
        match flow.sock.recv(&mut buf) {
            Ok(n) => {
                flow.last
                    .store(epoch.elapsed().as_millis() as u64, Ordering::Relaxed);
                let _ = l.send_to(&buf[..n], client);
            }
            Err(_) => {
                let idle = epoch.elapsed().as_millis() as u64 - flow.last.load(Ordering::Relaxed);
                if idle >= UDP_IDLE.as_millis() as u64 {
                    if let Ok(mut map) = flows.lock() {
                        map.remove(&client);
                    }
                    return;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::network::ports::{bind_with, parse_all, Mode};
    use crate::sys::record::Recorder;
    use crate::trace::Tracer;

    #[test]
    fn reserved_ports_are_refused_before_anything_starts() {
        let sys = Sys::new(Box::new(Recorder::new()), Tracer::off());
        let ls = bind_with(&sys, &parse_all(&["8000:80"]).unwrap(), Mode::Reserve).unwrap();
        let e = spawn(&sys, &ls, Ipv4Addr::new(172, 17, 0, 2)).unwrap_err();
        assert!(e.to_string().contains("only reserved"), "{e}");
    }

    #[test]
    fn the_command_line_names_every_map_in_fd_order() {
        let sys = Sys::new(Box::new(Recorder::new()), Tracer::off());
        let ls = crate::network::ports::bind_all(
            &sys,
            &parse_all(&["127.0.0.1:8000:80", "53/udp"]).unwrap(),
        )
        .unwrap();
        assert_eq!(
            args(&ls, Ipv4Addr::new(172, 17, 0, 2), MAX_CONNECTIONS).join(" "),
            "proxy --container-ip 172.17.0.2 --map tcp:127.0.0.1:8000:80 --map udp:0.0.0.0:32768:53"
        );
        // A dry run starts nothing.
        assert_eq!(
            spawn(&sys, &ls, Ipv4Addr::new(172, 17, 0, 2))
                .unwrap()
                .pid(),
            0
        );
    }
}
