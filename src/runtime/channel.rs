//! The socket between dockling and the container's child until `execve`.
//!
//! A `SOCK_SEQPACKET` pair (message boundaries kept) with close-on-exec on both ends:
//! - parent → child `G` + pid: "you are in your cgroup, go on" (and your pid on the host);
//! - child → parent `T` + an fd: the pseudo-terminal master (`-t`);
//! - child → parent `E` + exit code + message: setup or `execve` failed;
//! - child → parent `A` + step key: the user pressed `q` at a `--step` pause;
//! - child → parent `X` + path: the program about to be executed;
//! - end of file with no `E`: `execve` succeeded (the child's end closed on exec).
//!
//! This is the same trick runc and crun use to learn that exec worked without a race.

use std::io::IoSlice;
use std::io::IoSliceMut;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use crate::sys::{Call, Ret, Sys};
use nix::sys::socket::{
    recvmsg, sendmsg, socketpair, AddressFamily, ControlMessage, ControlMessageOwned, MsgFlags,
    SockFlag, SockType,
};

/// A message from the child.
#[derive(Debug)]
pub enum Message {
    /// Go on (parent → child), with the child's pid as the host sees it.
    Go(i32),
    /// The terminal master.
    Terminal(OwnedFd),
    /// Setup failed: exit code and message.
    Failed(i32, String),
    /// The user aborted before this step.
    Aborted(String),
    /// The program about to be executed, as resolved in the container's `PATH`.
    Exec(String),
    /// The OCI runtime's child (child → parent): mounts made, before `pivot_root`; run the
    /// `prestart` and `createRuntime` hooks now, then say `Go` again.
    Hooks,
    /// The other end closed: `execve` succeeded (or the child died).
    Closed,
}

/// One end of the channel.
pub struct Channel {
    fd: OwnedFd,
}

impl Channel {
    /// The socket's descriptor (for `--init`'s parent, which closes its copy).
    pub fn raw_fd(&self) -> std::os::fd::RawFd {
        std::os::fd::AsRawFd::as_raw_fd(&self.fd)
    }
}

/// A connected pair: (parent's end, child's end), made by a traced `socketpair(2)`. Against
/// the recorder (a dry run) the ends are a real, unused pair nobody traces.
pub fn pair(sys: &Sys) -> Result<(Channel, Channel), crate::sys::SysError> {
    match sys.perform(Call::Socketpair)? {
        // SAFETY: the kernel just created both descriptors and nothing else owns them.
        Ret::FdPair(a, b) if !sys.is_dry_run() => unsafe {
            Ok((
                Channel {
                    fd: OwnedFd::from_raw_fd(a),
                },
                Channel {
                    fd: OwnedFd::from_raw_fd(b),
                },
            ))
        },
        _ => {
            let (a, b) = socketpair(
                AddressFamily::Unix,
                SockType::SeqPacket,
                None,
                SockFlag::SOCK_CLOEXEC,
            )
            .map_err(|errno| crate::sys::SysError {
                name: "socketpair",
                object: "container channel".into(),
                errno,
            })?;
            Ok((Channel { fd: a }, Channel { fd: b }))
        }
    }
}

impl Channel {
    /// Send a message (with an fd for `Terminal`).
    pub fn send(&self, msg: &Message) -> std::io::Result<()> {
        let (bytes, fd): (Vec<u8>, Option<RawFd>) = match msg {
            Message::Go(pid) => (format!("G{pid}").into_bytes(), None),
            Message::Terminal(fd) => (b"T".to_vec(), Some(fd.as_raw_fd())),
            Message::Failed(code, text) => (format!("E{code}\t{text}").into_bytes(), None),
            Message::Aborted(step) => (format!("A{step}").into_bytes(), None),
            Message::Exec(path) => (format!("X{path}").into_bytes(), None),
            Message::Hooks => (b"H".to_vec(), None),
            Message::Closed => return Ok(()),
        };
        let iov = [IoSlice::new(&bytes)];
        let fds: Vec<RawFd> = fd.into_iter().collect();
        let cmsg = [ControlMessage::ScmRights(&fds)];
        let cmsgs: &[ControlMessage] = if fds.is_empty() { &[] } else { &cmsg };
        sendmsg::<()>(self.fd.as_raw_fd(), &iov, cmsgs, MsgFlags::empty(), None)?;
        Ok(())
    }

    /// Wait for the next message.
    pub fn recv(&self) -> std::io::Result<Message> {
        let mut buf = vec![0u8; 8192];
        let mut space = nix::cmsg_space!([RawFd; 1]);
        let (n, fd) = loop {
            let mut iov = [IoSliceMut::new(&mut buf)];
            match recvmsg::<()>(
                self.fd.as_raw_fd(),
                &mut iov,
                Some(&mut space),
                MsgFlags::MSG_CMSG_CLOEXEC,
            ) {
                Ok(r) => {
                    let mut fd = None;
                    for c in r.cmsgs()? {
                        if let ControlMessageOwned::ScmRights(fds) = c {
                            // SAFETY: the kernel just installed these descriptors for us.
                            fd = fds.first().map(|f| unsafe { OwnedFd::from_raw_fd(*f) });
                        }
                    }
                    break (r.bytes, fd);
                }
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => return Err(e.into()),
            }
        };
        let msg = &buf[..n];
        Ok(match msg.first() {
            None => Message::Closed,
            Some(b'G') => Message::Go(String::from_utf8_lossy(&msg[1..]).parse().unwrap_or(0)),
            Some(b'T') => match fd {
                Some(fd) => Message::Terminal(fd),
                None => Message::Failed(125, "terminal message without a descriptor".into()),
            },
            Some(b'H') => Message::Hooks,
            Some(b'X') => Message::Exec(String::from_utf8_lossy(&msg[1..]).into_owned()),
            Some(b'A') => Message::Aborted(String::from_utf8_lossy(&msg[1..]).into_owned()),
            Some(b'E') => {
                let text = String::from_utf8_lossy(&msg[1..]);
                let (code, text) = text.split_once('\t').unwrap_or(("125", &text));
                Message::Failed(code.parse().unwrap_or(125), text.to_string())
            }
            Some(_) => Message::Failed(125, "unexpected message from the container's child".into()),
        })
    }
}
