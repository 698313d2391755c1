//! A second process inside a running container: the part `dockling exec` and `dockling
//! runtime exec` (runc's `exec`, as podman and containerd's shim call it) share.
//!
//! The container's namespaces are files under `/proc/<pid>/ns/` of its first process. They
//! are opened first, and only then is the pid checked to still be the container's (its start
//! time, field 22 of `/proc/<pid>/stat`, is the recorded one): had the first process ended and
//! its pid been reused, the check would fail, so descriptors that pass it are the container's
//! namespaces, kept alive by the descriptors themselves. dockling then forks a *joiner* that
//! `setns`es into each of them (setns(2)). Joining a pid namespace changes only where the
//! *children* of the caller are born, so the joiner starts one more process (`CLONE_PARENT`:
//! a child of the exec command itself, which can wait for it) and ends. That process waits on
//! the channel until the command has written it into the container's cgroup, then does what
//! its caller asks (`child::exec_main`, `oci::exec_main`): its terminal, the security steps,
//! `execve`.

use std::os::fd::{AsRawFd, OwnedFd};
use std::path::PathBuf;

use nix::sched::CloneFlags;

use super::channel::{self, Channel, Message};
use crate::error::{Error, Result};
use crate::sys::{Call, Sys};

/// The namespaces a process joins to be inside a container whose own are `ns`, in runc's order
/// (the mount namespace late: after it, paths are the container's).
pub fn namespaces(ns: &crate::spec::Namespaces) -> Vec<(&'static str, CloneFlags)> {
    let mut out = Vec::new();
    if ns.ipc {
        out.push(("ipc", CloneFlags::CLONE_NEWIPC));
    }
    if ns.uts {
        out.push(("uts", CloneFlags::CLONE_NEWUTS));
    }
    if ns.net {
        out.push(("net", CloneFlags::CLONE_NEWNET));
    }
    if ns.pid {
        out.push(("pid", CloneFlags::CLONE_NEWPID));
    }
    out.push(("mnt", CloneFlags::CLONE_NEWNS));
    if ns.cgroup {
        out.push(("cgroup", CloneFlags::CLONE_NEWCGROUP));
    }
    out
}

/// The way into a container: descriptors of its first process's namespaces (and of its root,
/// for a container that `chroot`ed), opened by [`open`].
pub struct Entry {
    pid: i32,
    ns: Vec<(OwnedFd, CloneFlags)>,
    root: Option<OwnedFd>,
}

/// Open the namespaces `kinds` of process `pid` (and, with `chroot`, its root directory:
/// a container that entered its root with `chroot(2)` keeps the host's root as its mount
/// namespace's, and `setns(CLONE_NEWNS)` sets "/" to that) while checking that `pid` is still
/// the process that started at `start`. `None`: it is not (it ended).
pub fn open(
    sys: &Sys,
    pid: i32,
    start: u64,
    kinds: &[(&'static str, CloneFlags)],
    chroot: bool,
) -> Result<Option<Entry>> {
    let same = || crate::container::process_start_time(pid) == Some(start);
    // An open that fails because the process has ended (ENOENT, ESRCH) means it stopped.
    let gone = |e: crate::sys::SysError| -> Result<Option<Entry>> {
        if same() {
            Err(e.into())
        } else {
            Ok(None)
        }
    };
    let mut ns = Vec::new();
    for (name, kind) in kinds {
        let path = PathBuf::from(format!("/proc/{pid}/ns/{name}"));
        match sys.open(&path, libc::O_RDONLY | libc::O_CLOEXEC) {
            Ok(fd) => ns.push((fd, *kind)),
            Err(e) => return gone(e),
        }
    }
    let root = if chroot {
        match sys.open(
            &PathBuf::from(format!("/proc/{pid}/root")),
            libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC,
        ) {
            Ok(fd) => Some(fd),
            Err(e) => return gone(e),
        }
    } else {
        None
    };
    // After the opens: descriptors opened from a reused pid would fail this.
    if !same() {
        return Ok(None);
    }
    Ok(Some(Entry { pid, ns, root }))
}

/// A process started inside the container, stopped before its own steps.
pub struct Spawned {
    /// Its pid, as the host sees it (a child of this process).
    pub pid: i32,
    /// The channel to it: it sends its terminal, its failure, or closes on `execve`.
    pub chan: Channel,
    /// The signal mask before the relayed signals were blocked (give it back with
    /// [`super::io::restore_signals`]).
    pub old_mask: u64,
}

/// Start a process inside the container `entry` leads into, move it into `cgroup`, and let it
/// go on with `body`, which must not return (it ends in `execve` or reports its failure on the
/// channel). The relayed signals are blocked from before the fork (the caller reads them from
/// a signalfd, `io::relay`); `old_mask` gives the mask back.
pub fn spawn(
    sys: &Sys,
    entry: Entry,
    cgroup: Option<&crate::cgroups::Cgroup>,
    body: impl FnOnce(Channel),
) -> Result<Spawned> {
    let pid = entry.pid;
    let (parent_end, child_end) = channel::pair(sys)?;
    let old_mask = super::io::block_signals(sys)?;
    let joiner = match sys.clone_process(CloneFlags::empty()) {
        Ok(j) => j,
        Err(e) => {
            super::io::restore_signals(sys, old_mask);
            return Err(e.into());
        }
    };
    if joiner == 0 {
        drop(parent_end);
        sys.tracer.set_process("join");
        // Not dumpable before it enters the container (its clone inherits that): no process
        // in there may open its /proc files while it still holds every capability.
        let _ = sys.run(Call::Prctl {
            option: crate::sys::Prctl::SetDumpable,
            arg: 0,
        });
        let joined = entry.ns.iter().try_for_each(|(fd, kind)| {
            sys.run(Call::Setns {
                fd: fd.as_raw_fd(),
                kind: *kind,
                pid,
            })
        });
        // The first process's root, entered as it entered it: chdir, chroot(".").
        let rooted = joined.and_then(|()| match &entry.root {
            Some(r) => {
                sys.run(Call::Chdir {
                    path: format!("/proc/self/fd/{}", r.as_raw_fd()).into(),
                })?;
                sys.run(Call::Chroot { path: ".".into() })
            }
            None => Ok(()),
        });
        let started = rooted.and_then(|()| sys.clone_process(CloneFlags::CLONE_PARENT));
        match started {
            Ok(0) => {
                drop(entry);
                // Ends in its execve, or reports its failure and exits: it does not return,
                // and the joiner's own end below is not its to run.
                body(child_end);
                // SAFETY: as below; only reached if `body` broke its promise.
                unsafe { libc::_exit(125) }
            }
            Ok(p) => {
                let _ = child_end.send(&Message::Go(p));
            }
            Err(e) => {
                let _ = child_end.send(&Message::Failed(125, e.to_string()));
            }
        }
        sys.tracer.flush();
        // SAFETY: ends the forked joiner without running the parent's exit handlers.
        unsafe { libc::_exit(0) }
    }
    drop(child_end);
    drop(entry);
    let _ = sys.wait4(joiner);
    let go = (|| {
        let recv = || {
            parent_end
                .recv()
                .map_err(Error::io("receive", "exec channel"))
        };
        let pid = match recv()? {
            Message::Go(p) => p,
            Message::Failed(_, text) => {
                return Err(super::RuntimeError::ContainerFailed { message: text }.into())
            }
            other => {
                return Err(super::RuntimeError::UnexpectedMessage {
                    message: format!("{other:?}"),
                }
                .into())
            }
        };
        let moved = (|| -> Result<()> {
            if let Some(cg) = cgroup {
                cg.join(sys, pid)?;
            }
            sys.tracer.flush();
            parent_end
                .send(&Message::Go(pid))
                .map_err(Error::io("send", "exec channel"))?;
            Ok(())
        })();
        if let Err(e) = moved {
            let _ = sys.run(Call::Kill {
                pid,
                signal: libc::SIGKILL,
            });
            let _ = sys.wait4(pid);
            return Err(e);
        }
        Ok(pid)
    })();
    match go {
        Ok(pid) => Ok(Spawned {
            pid,
            chan: parent_end,
            old_mask,
        }),
        Err(e) => {
            super::io::restore_signals(sys, old_mask);
            Err(e)
        }
    }
}
