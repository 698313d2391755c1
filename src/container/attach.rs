//! `dockling attach`: the monitor's attach socket, its framing, and the detach keys.
//!
//! A detached container's monitor (see `commands::run::detach`) listens on a unix stream
//! socket named `attach` in the container's directory, like conmon's attach socket. It is
//! bound through the directory's descriptor (`/proc/self/fd/N/attach`, see
//! `Call::BindUnix`) and made 0600, and the client connects the same way, after checking
//! with `fstatat(AT_SYMLINK_NOFOLLOW)` that the name is a socket and not a link.
//!
//! Everything on the socket is framed: one byte of kind, four of length (big endian), the
//! bytes. The monitor sends what the container writes ([`STDOUT`], [`STDERR`]: with a
//! terminal everything is stdout); the client sends the user's keys ([`STDIN`]) and its
//! terminal's size ([`RESIZE`]). The monitor's side never blocks: each client's output
//! waits in its own buffer until poll says the socket takes more, and a client that falls
//! more than [`MAX_BACKLOG`] behind is dropped (the log still has everything).

use std::collections::VecDeque;
use std::io::Read;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::Path;

use crate::error::{Error, Result};

/// The socket's name in the container's directory.
pub const SOCKET: &str = "attach";
/// The user's keys, for the container's terminal (client to monitor).
pub const STDIN: u8 = 0;
/// The container's stdout (its terminal's output with `-t`).
pub const STDOUT: u8 = 1;
/// The container's stderr.
pub const STDERR: u8 = 2;
/// The client's terminal size: rows and columns, two bytes each (client to monitor).
pub const RESIZE: u8 = 3;

/// How much output a slow client may have waiting before the monitor drops it.
pub const MAX_BACKLOG: usize = 4 << 20;

/// How many clients one monitor serves at once.
pub const MAX_CLIENTS: usize = 64;

/// Append one frame to `out`.
pub fn frame(out: &mut VecDeque<u8>, kind: u8, data: &[u8]) {
    out.push_back(kind);
    out.extend((data.len() as u32).to_be_bytes());
    out.extend(data);
}

/// Take every whole frame at the start of `buf` (the rest waits for more bytes).
pub fn unframe(buf: &mut Vec<u8>) -> Vec<(u8, Vec<u8>)> {
    let mut frames = Vec::new();
    let mut at = 0;
    while buf.len() >= at + 5 {
        let len = u32::from_be_bytes([buf[at + 1], buf[at + 2], buf[at + 3], buf[at + 4]]) as usize;
        if buf.len() < at + 5 + len {
            break;
        }
        frames.push((buf[at], buf[at + 5..at + 5 + len].to_vec()));
        at += 5 + len;
    }
    buf.drain(..at);
    frames
}

/// Connect to the attach socket of the container whose directory is `bundle`.
pub fn connect(bundle: &Path) -> Result<UnixStream> {
    let dir = super::logs::open_dir(bundle)?;
    let at = bundle.join(SOCKET);
    let st = nix::sys::stat::fstatat(
        Some(dir.as_raw_fd()),
        SOCKET,
        nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
    )
    .map_err(|e| Error::io("stat", &at)(e.into()))?;
    if st.st_mode & libc::S_IFMT != libc::S_IFSOCK {
        return Err(Error::Corrupt(format!(
            "{} is not a socket: remove the container and run it again",
            at.display()
        )));
    }
    UnixStream::connect(format!("/proc/self/fd/{}/{SOCKET}", dir.as_raw_fd()))
        .map_err(Error::io("connect to", at))
}

/// One attached client, on the monitor's side.
struct Client {
    stream: UnixStream,
    input: Vec<u8>,
    output: VecDeque<u8>,
}

/// What a client asked of the container's terminal.
pub enum Input {
    /// Keys for its terminal (or stdin).
    Keys(Vec<u8>),
    /// Its new size.
    Resize(libc::winsize),
}

/// The monitor's side: the listening socket, the attached clients, and the stdin pipe of
/// a container run with `-i` and no terminal (what the clients type, waiting to be written).
pub struct Hub {
    listener: OwnedFd,
    clients: Vec<Client>,
    stdin: Option<std::fs::File>,
    to_stdin: VecDeque<u8>,
}

impl Hub {
    /// Serve attach clients on `listener` (a non-blocking listening socket).
    pub fn new(listener: OwnedFd) -> Hub {
        Hub {
            listener,
            clients: Vec::new(),
            stdin: None,
            to_stdin: VecDeque::new(),
        }
    }

    /// The write end of this run's stdin pipe (`-i` without `-t`); made non-blocking.
    pub fn set_stdin(&mut self, fd: OwnedFd) {
        crate::files::set_nonblocking(&fd);
        self.stdin = Some(std::fs::File::from(fd));
        self.to_stdin.clear();
    }

    /// True while typed input waits for the stdin pipe (then it is polled for POLLOUT).
    fn stdin_waiting(&self) -> bool {
        self.stdin.is_some() && !self.to_stdin.is_empty()
    }

    /// Write what the stdin pipe takes now; a container that closed its stdin loses it.
    fn flush_stdin(&mut self) {
        let Some(pipe) = self.stdin.as_mut() else {
            return;
        };
        if crate::files::write_now(pipe, &mut self.to_stdin).is_err() {
            self.stdin = None;
            self.to_stdin.clear();
        }
    }

    /// The descriptors to poll, with what to wait for: the listener, then each client.
    pub fn poll_fds(&self) -> Vec<(BorrowedFd<'_>, bool)> {
        let mut fds = vec![(self.listener.as_fd(), false)];
        for c in &self.clients {
            fds.push((c.stream.as_fd(), !c.output.is_empty()));
        }
        if let (true, Some(pipe)) = (self.stdin_waiting(), self.stdin.as_ref()) {
            fds.push((pipe.as_fd(), true));
        }
        fds
    }

    /// Whether the clients' keys should be read now: not while the container's stdin pipe
    /// has MAX_BACKLOG bytes waiting.
    pub fn wants_keys(&self) -> bool {
        self.to_stdin.len() < MAX_BACKLOG
    }

    /// How many clients are attached: [`Hub::poll_fds`] gives theirs after the listener's.
    pub fn clients(&self) -> usize {
        self.clients.len()
    }

    /// Handle what poll reported for [`Hub::poll_fds`] (`ready[i]`: readable, writable):
    /// accept, read, write; returns what the clients asked for.
    pub fn handle(&mut self, ready: &[(bool, bool)]) -> Vec<Input> {
        let mut inputs = Vec::new();
        let mut buf = [0u8; 16384];
        let stdin_ready = self.stdin_waiting()
            && ready
                .get(1 + self.clients.len())
                .is_some_and(|r| r.0 || r.1);
        let mut gone = vec![false; self.clients.len()];
        for (i, c) in self.clients.iter_mut().enumerate() {
            let (readable, writable) = ready.get(i + 1).copied().unwrap_or_default();
            if readable {
                match c.stream.read(&mut buf) {
                    Ok(0) => gone[i] = true,
                    Ok(n) => {
                        c.input.extend_from_slice(&buf[..n]);
                        for (kind, data) in unframe(&mut c.input) {
                            match kind {
                                STDIN => inputs.push(Input::Keys(data)),
                                RESIZE if data.len() == 4 => {
                                    inputs.push(Input::Resize(libc::winsize {
                                        ws_row: u16::from_be_bytes([data[0], data[1]]),
                                        ws_col: u16::from_be_bytes([data[2], data[3]]),
                                        ws_xpixel: 0,
                                        ws_ypixel: 0,
                                    }))
                                }
                                _ => {}
                            }
                        }
                    }
                    Err(e) if crate::files::retry(&e) => {}
                    Err(_) => gone[i] = true,
                }
            }
            if writable
                && !gone[i]
                && crate::files::write_now(&mut c.stream, &mut c.output).is_err()
            {
                gone[i] = true;
            }
        }
        let mut i = 0;
        self.clients.retain(|_| {
            i += 1;
            !gone[i - 1]
        });
        if ready.first().is_some_and(|r| r.0) {
            self.accept();
        }
        if stdin_ready {
            self.flush_stdin();
        }
        if self.stdin.is_some() {
            // Keys for the stdin pipe: queued and written as far as the pipe takes them now.
            // Bounded without losing any: past MAX_BACKLOG the clients are not read
            // ([`Hub::wants_keys`]), so `attach` waits for the container to read.
            inputs.retain(|i| match i {
                Input::Keys(k) => {
                    self.to_stdin.extend(k);
                    false
                }
                Input::Resize(_) => true,
            });
            self.flush_stdin();
        }
        inputs
    }

    fn accept(&mut self) {
        loop {
            match nix::sys::socket::accept4(
                self.listener.as_raw_fd(),
                nix::sys::socket::SockFlag::SOCK_CLOEXEC
                    | nix::sys::socket::SockFlag::SOCK_NONBLOCK,
            ) {
                Ok(fd) => {
                    // SAFETY: accept4 just returned this descriptor; nothing else owns it.
                    let stream = unsafe { <UnixStream as std::os::fd::FromRawFd>::from_raw_fd(fd) };
                    // Past MAX_CLIENTS a client is accepted and closed at once: the queue is
                    // drained (a listener left readable would spin the monitor's poll), and
                    // the monitor's descriptors stay far below its limit (no EMFILE).
                    if self.clients.len() >= MAX_CLIENTS {
                        drop(stream);
                        continue;
                    }
                    self.clients.push(Client {
                        stream,
                        input: Vec::new(),
                        output: VecDeque::new(),
                    });
                }
                Err(nix::errno::Errno::EINTR) => {}
                Err(_) => return,
            }
        }
    }

    /// Send what the container wrote to every client (buffered; written as far as each
    /// socket takes it now).
    pub fn broadcast(&mut self, kind: u8, data: &[u8]) {
        self.clients.retain_mut(|c| {
            frame(&mut c.output, kind, data);
            c.output.len() <= MAX_BACKLOG
                && crate::files::write_now(&mut c.stream, &mut c.output).is_ok()
        });
    }

    /// Write what is left for each client, briefly, before the monitor closes them all.
    pub fn finish(&mut self) {
        for c in &mut self.clients {
            let _ = c.stream.set_nonblocking(false);
            let _ = c
                .stream
                .set_write_timeout(Some(std::time::Duration::from_millis(200)));
            let _ = crate::files::write_now(&mut c.stream, &mut c.output);
        }
        self.clients.clear();
        self.stdin = None;
        self.to_stdin.clear();
    }
}

/// Docker's `--detach-keys`: comma-separated keys, each one character or `ctrl-X` (X a
/// letter or one of `@[\]^_`), e.g. `ctrl-p,ctrl-q` (the default) or `ctrl-a,x`.
pub fn parse_detach_keys(keys: &str) -> Result<Vec<u8>> {
    let bad = || {
        Error::Usage(format!(
            "invalid detach keys ({keys}) provided: give keys like \"ctrl-p,ctrl-q\" or \"ctrl-a,x\" (ctrl- with a letter or one of @[\\]^_, or one character)"
        ))
    };
    let mut out = Vec::new();
    for key in keys.split(',') {
        let lower = key.to_ascii_lowercase();
        if let Some(c) = lower.strip_prefix("ctrl-") {
            let c = match c.as_bytes() {
                [c] => *c,
                _ => return Err(bad()),
            };
            out.push(match c {
                b'a'..=b'z' => c - b'a' + 1,
                b'@' => 0,
                b'[' => 27,
                b'\\' => 28,
                b']' => 29,
                b'^' => 30,
                b'_' => 31,
                _ => return Err(bad()),
            });
        } else {
            match key.as_bytes() {
                [c] if c.is_ascii() => out.push(*c),
                _ => return Err(bad()),
            }
        }
    }
    Ok(out)
}

/// Watches the user's keys for the detach sequence, as Docker's escape proxy does: keys
/// that may begin it are held back; if the next one does not continue it, they go on.
pub struct DetachKeys {
    keys: Vec<u8>,
    matched: usize,
}

impl DetachKeys {
    /// Watch for `keys` (none: never detach).
    pub fn new(keys: Vec<u8>) -> DetachKeys {
        DetachKeys { keys, matched: 0 }
    }

    /// Filter `input` into `out`; true when the whole sequence was typed (the rest of the
    /// input is dropped, as Docker drops it).
    pub fn filter(&mut self, input: &[u8], out: &mut Vec<u8>) -> bool {
        for &b in input {
            if self.keys.is_empty() {
                out.push(b);
                continue;
            }
            if b == self.keys[self.matched] {
                self.matched += 1;
                if self.matched == self.keys.len() {
                    return true;
                }
            } else {
                out.extend_from_slice(&self.keys[..self.matched]);
                self.matched = 0;
                if b == self.keys[0] {
                    self.matched = 1;
                } else {
                    out.push(b);
                }
            }
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detach_keys_parse_as_docker() {
        assert_eq!(parse_detach_keys("ctrl-p,ctrl-q").unwrap(), vec![16, 17]);
        assert_eq!(parse_detach_keys("ctrl-a,x").unwrap(), vec![1, b'x']);
        assert_eq!(parse_detach_keys("ctrl-@,ctrl-_").unwrap(), vec![0, 31]);
        for bad in ["ctrl-", "ctrl-1", "xy", "", "ctrl-p,,x"] {
            assert!(parse_detach_keys(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn detach_keys_hold_back_a_prefix_only_while_it_matches() {
        let mut d = DetachKeys::new(vec![16, 17]);
        let mut out = Vec::new();
        assert!(!d.filter(b"a\x10b", &mut out));
        assert_eq!(out, b"a\x10b");
        out.clear();
        assert!(!d.filter(b"\x10", &mut out));
        assert!(out.is_empty());
        assert!(d.filter(b"\x11rest", &mut out));
        assert!(out.is_empty());
    }

    #[test]
    fn frames_round_trip_across_partial_reads() {
        let mut q = VecDeque::new();
        frame(&mut q, STDOUT, b"hello");
        frame(&mut q, RESIZE, &[0, 24, 0, 80]);
        let all: Vec<u8> = q.into_iter().collect();
        let mut buf = all[..7].to_vec();
        assert!(unframe(&mut buf).is_empty());
        buf.extend_from_slice(&all[7..]);
        let f = unframe(&mut buf);
        assert_eq!(
            f,
            vec![(STDOUT, b"hello".to_vec()), (RESIZE, vec![0, 24, 0, 80])]
        );
        assert!(buf.is_empty());
    }
}
