//! The recording double: performs nothing, remembers every call.
//!
//! Unit tests run an operation against it and snapshot the call list (the recipe a learner can
//! read); `dockling explain` runs the real plan against it to show what would happen.

use std::cell::RefCell;
use std::rc::Rc;

use nix::errno::Errno;

use super::call::{Call, Ret};
use super::Backend;

/// Remembers calls; answers every one with success (`clone` answers like a parent would).
#[derive(Default, Clone)]
pub struct Recorder {
    calls: Rc<RefCell<Vec<Call>>>,
    fail: Rc<RefCell<Vec<(&'static str, Errno)>>>,
}

impl Recorder {
    /// An empty recorder.
    pub fn new() -> Self {
        Self::default()
    }

    /// The calls made so far.
    pub fn calls(&self) -> Vec<Call> {
        self.calls.borrow().clone()
    }

    /// Make the next call named `name` fail with `errno` (to test error paths and undo).
    pub fn fail_next(&self, name: &'static str, errno: Errno) {
        self.fail.borrow_mut().push((name, errno));
    }

    /// The calls as one line each, for snapshots.
    pub fn script(&self) -> String {
        self.calls
            .borrow()
            .iter()
            .map(|c| format!("{c}\n"))
            .collect()
    }
}

impl Backend for Recorder {
    fn perform(&self, call: &Call) -> Result<Ret, Errno> {
        self.calls.borrow_mut().push(call.clone());
        let mut fail = self.fail.borrow_mut();
        if let Some(i) = fail.iter().position(|(n, _)| *n == call.name()) {
            return Err(fail.remove(i).1);
        }
        Ok(match call {
            Call::Clone { .. } => Ret::Pid(4242),
            // A program that printed nothing and exited 0.
            Call::RunHost { .. } => Ret::Ran {
                pid: 4242,
                status: 0,
                stdout: vec![],
                stderr: vec![],
            },
            Call::Wait4 { pid } | Call::WaitProxy { pid } => Ret::Waited {
                pid: *pid,
                status: 0,
            },
            Call::RunHook { .. } => Ret::Waited {
                pid: 4243,
                status: 0,
            },
            Call::Write { data, .. } => Ret::Bytes(data.len()),
            // An empty file: a dry run reads nothing of the host.
            Call::Read { .. } => Ret::Received(vec![]),
            // An empty directory, likewise.
            Call::Getdents { .. } => Ret::Dirents {
                bytes: 0,
                entries: vec![],
            },
            // Every descriptor ready.
            Call::Poll { fds, .. } => {
                Ret::Polled(fds.iter().map(|&fd| (fd, libc::POLLIN)).collect())
            }
            // The end of the file at once: a dry run copies nothing.
            Call::Sendfile { .. } => Ret::Bytes(0),
            // A regular, executable file.
            Call::Stat { .. } => Ret::Stat {
                mode: libc::S_IFREG | 0o755,
                size: 0,
                rdev: 0,
            },
            // One mount for everything: the dry run's nodes all go where it planned them.
            Call::StatxMntId { .. } => Ret::Statx {
                mask: 0x17ff,
                attributes: 0x2000,
                mode: libc::S_IFDIR | 0o755,
                size: 40,
                mnt_id: 0,
            },
            // A tmpfs: what the engine mounted, and no kernel file system to refuse.
            Call::Fstatfs { .. } => Ret::Statfs(super::call::Statfs {
                f_type: libc::TMPFS_MAGIC,
                f_bsize: 4096,
                f_blocks: 0,
                f_bfree: 0,
                f_bavail: 0,
                f_files: 0,
                f_ffree: 0,
                f_fsid: [0, 0],
                f_namelen: 255,
                f_frsize: 4096,
                // ST_VALID.
                f_flags: 0x20,
            }),
            Call::Openat2 { .. }
            | Call::Open { .. }
            | Call::SocketInet
            | Call::OpenTree { .. }
            | Call::MemfdCreate { .. }
            | Call::BpfProgLoad { .. }
            | Call::BindUnix { .. }
            | Call::ConnectUnix { .. }
            | Call::PidfdOpen { .. }
            | Call::PidfdOpenEngine { .. }
            | Call::Fsopen { .. } => Ret::Fd(100),
            Call::Dup2 { new, .. } => Ret::Fd(*new),
            Call::NetlinkSocket { .. } | Call::SocketPort { .. } => Ret::Fd(100),
            // A port the kernel could have chosen (the first of Linux's ephemeral range): the
            // same script on every machine.
            Call::Getsockname { .. } => Ret::SockName(std::net::SocketAddrV4::new(
                std::net::Ipv4Addr::UNSPECIFIED,
                32768,
            )),
            Call::NetlinkSend { req, .. } => Ret::Bytes(req.bytes.len()),
            // An ACK for the request; a get of a link answers index 7 first.
            Call::NetlinkRecv { seq, what, .. } => {
                let mut buf = Vec::new();
                if *what == super::netlink::NlWhat::LinkGet {
                    buf.extend_from_slice(&super::netlink::link_reply(*seq, 7));
                }
                buf.extend_from_slice(&super::netlink::error_message(*seq, 0, &[]));
                Ret::Received(buf)
            }
            Call::Socketpair | Call::Pipe2 | Call::ProxyPipe => Ret::FdPair(100, 101),
            // A new network namespace's loopback: down, nothing else set.
            Call::IoctlIfFlags { set: None, .. } => Ret::IfFlags(libc::IFF_LOOPBACK),
            Call::BlockSignals { .. } => Ret::OldMask(0),
            Call::IoctlPty {
                op: super::call::PtyOp::Number,
                ..
            } => Ret::PtyNumber(0),
            _ => Ret::Zero,
        })
    }

    fn is_dry_run(&self) -> bool {
        true
    }

    /// Every capability dockling knows by name (CAP_CHECKPOINT_RESTORE, 40, on Linux 5.9+),
    /// whatever the host's kernel: a recorded script is the same on every machine.
    fn last_cap(&self) -> u32 {
        super::caps::NAMES.len() as u32 - 1
    }

    /// SIGPIPE, which the Rust runtime ignores in every dockling process: the same script on
    /// every machine, whatever the recording process inherited.
    fn ignored_signals(&self) -> u64 {
        1 << (libc::SIGPIPE - 1)
    }
}
