//! The one seam between dockling and the kernel.
//!
//! Every operation that changes what a container is (namespaces, mounts, credentials,
//! capabilities, cgroup knobs, the final `execve`) is a [`Call`] value performed through
//! [`Sys::perform`]. `Sys` owns a [`Backend`] (the real [`linux::Linux`], or the
//! [`record::Recorder`] double used by unit tests and `dockling explain`) and the [`Tracer`]
//! that turns each call into an event with its arguments, result, duration and a plain-words
//! explanation. Nothing outside `sys` calls `nix` or `libc` to change kernel state; the other
//! `unsafe` blocks of the crate live in [`linux`] and [`fs`], each with its reason.

pub mod bpf;
pub mod call;
pub mod caps;
pub mod fs;
pub mod linux;
pub mod memory;
pub mod netlink;
pub mod record;

use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::path::Path;
use std::time::Instant;

use nix::errno::Errno;
use nix::mount::{MntFlags, MsFlags};
use nix::sched::CloneFlags;

pub use call::{Call, Prctl, Ret, SchedAttr, Statfs, Transport};

use crate::trace::{StepId, Tracer};

/// Performs calls: the real kernel, or a double.
pub trait Backend {
    /// Make the call. Implementations must not trace; [`Sys`] does that around them.
    fn perform(&self, call: &Call) -> Result<Ret, Errno>;
    /// True when nothing really happens (the recorder): callers skip work that would need a
    /// real result, such as waiting for a child that was never started.
    fn is_dry_run(&self) -> bool {
        false
    }
    /// The highest capability number of the kernel (`/proc/sys/kernel/cap_last_cap`). The
    /// recorder answers a fixed number instead, so a dry run never depends on the host.
    fn last_cap(&self) -> u32 {
        caps::last_cap()
    }
    /// The signals the calling thread ignores, as a mask (bit `n - 1` for signal `n`). The
    /// recorder answers SIGPIPE alone, which every Rust program ignores from its start.
    fn ignored_signals(&self) -> u64 {
        0
    }
}

/// A failed call: which operation, on what, and the errno.
#[derive(Debug, thiserror::Error)]
#[error("{name}{}{object}: {errno}", if object.is_empty() { "" } else { " " })]
pub struct SysError {
    /// Syscall name, as strace prints it.
    pub name: &'static str,
    /// What it acted on.
    pub object: String,
    /// The error number the kernel returned.
    pub errno: Errno,
}

/// The handle every engine function receives: backend + tracer.
pub struct Sys {
    backend: Box<dyn Backend>,
    /// The trace sink and `--step` pauses.
    pub tracer: Tracer,
}

impl Sys {
    /// A seam over `backend` that reports to `tracer`.
    pub fn new(backend: Box<dyn Backend>, tracer: Tracer) -> Self {
        Sys { backend, tracer }
    }

    /// The real kernel, not traced.
    pub fn quiet() -> Self {
        Sys::new(Box::new(linux::Linux), Tracer::off())
    }

    /// The highest capability number the backend's kernel knows (see [`Backend::last_cap`]).
    pub fn last_cap(&self) -> u32 {
        self.backend.last_cap()
    }

    /// The signals the calling thread ignores (see [`Backend::ignored_signals`]).
    pub fn ignored_signals(&self) -> u64 {
        self.backend.ignored_signals()
    }

    /// True when running against the recorder (`explain`, unit tests).
    pub fn is_dry_run(&self) -> bool {
        self.backend.is_dry_run()
    }

    /// Enter a step of the plan: traced, and with `--step` the place where the user can pause
    /// or abort. Returns `Err(Aborted)` when the user pressed `q`. Every step is a fault point
    /// too (`run.<key>`, see [`crate::fault`]), except in a dry run.
    pub fn step(&self, id: StepId) -> Result<(), crate::error::Error> {
        self.step_variant(id, None)
    }

    /// Enter a step done another way because of a flag (`chroot` instead of `pivot_root`):
    /// the trace titles it as the variant.
    pub fn step_variant(
        &self,
        id: StepId,
        variant: Option<&'static str>,
    ) -> Result<(), crate::error::Error> {
        self.tracer.step_variant(id, variant)?;
        // Fault points exist in debug builds only: no string is built for them in release.
        if cfg!(debug_assertions) && !self.is_dry_run() {
            crate::fault::check(&format!("run.{}", id.key()))?;
        }
        Ok(())
    }

    /// Perform one call through the backend, recording it when tracing.
    pub fn perform(&self, call: Call) -> Result<Ret, SysError> {
        if matches!(
            call,
            Call::Clone { .. }
                | Call::Execve { .. }
                | Call::Execveat { .. }
                | Call::Wait4 { .. }
                | Call::RunHook { .. }
        ) {
            // The child must not inherit unwritten events (they would be written twice), and
            // nothing should sit in a buffer while the container runs.
            self.tracer.flush();
        }
        let start = self.tracer.enabled().then(Instant::now);
        let res = self.backend.perform(&call);
        // The child's copy of a clone returns 0: the parent's event already tells the story.
        let in_child_after_clone = matches!((&call, &res), (Call::Clone { .. }, Ok(Ret::Pid(0))));
        if let (Some(start), false) = (start, in_child_after_clone) {
            self.tracer.syscall(&call, &res, start.elapsed());
        }
        res.map_err(|errno| SysError {
            name: call.name(),
            object: call.object(),
            errno,
        })
    }

    /// Perform a call whose result only matters as success or failure.
    pub fn run(&self, call: Call) -> Result<(), SysError> {
        self.perform(call).map(|_| ())
    }

    // Typed helpers: one line each, so the engine code reads like the recipe it is.

    /// `mount(2)`.
    pub fn mount(
        &self,
        source: Option<&Path>,
        target: &Path,
        fstype: Option<&str>,
        flags: MsFlags,
        data: Option<&str>,
    ) -> Result<(), SysError> {
        self.run(Call::Mount {
            source: source.map(Path::to_path_buf),
            target: target.to_path_buf(),
            fstype: fstype.map(String::from),
            flags,
            data: data.map(String::from),
        })
    }

    /// `umount2(2)`.
    pub fn umount2(&self, target: &Path, flags: MntFlags) -> Result<(), SysError> {
        self.run(Call::Umount2 {
            target: target.to_path_buf(),
            flags,
        })
    }

    /// `mkdir(2)`, where an existing directory counts as success.
    pub fn mkdir(&self, path: &Path, mode: u32) -> Result<(), SysError> {
        match self.run(Call::Mkdir {
            path: path.to_path_buf(),
            mode,
        }) {
            Err(e) if e.errno == Errno::EEXIST => Ok(()),
            other => other,
        }
    }

    /// Write a small control file (a cgroup knob): `openat`, `write`, `close`, each traced.
    pub fn write_file(&self, path: &Path, data: &str) -> Result<(), SysError> {
        self.open_write_close(path, libc::O_WRONLY, 0, data)
    }

    /// Create (or truncate) a small file and write `data` into it: `openat(O_CREAT|O_TRUNC,
    /// 0644)`, `write`, `close`.
    pub fn create_file(&self, path: &Path, data: &str) -> Result<(), SysError> {
        self.open_write_close(
            path,
            libc::O_WRONLY | libc::O_CREAT | libc::O_TRUNC,
            0o644,
            data,
        )
    }

    fn open_write_close(
        &self,
        path: &Path,
        flags: i32,
        mode: u32,
        data: &str,
    ) -> Result<(), SysError> {
        let fd = match self.perform(Call::Open {
            path: path.to_path_buf(),
            flags,
            mode,
        })? {
            Ret::Fd(fd) => fd,
            other => other.value() as i32,
        };
        let written = self.run(Call::Write {
            fd,
            path: path.to_path_buf(),
            data: data.to_string(),
        });
        // Closed whatever the write gave: the descriptor is ours alone.
        let closed = self.run(Call::Close {
            fd,
            object: path.display().to_string(),
        });
        written.and(closed)
    }

    /// `read(2)` of up to `cap` bytes from `fd` (`what` names it): the bytes, none at its end.
    pub fn read(&self, fd: BorrowedFd<'_>, what: &Path, cap: usize) -> Result<Vec<u8>, SysError> {
        self.read_raw(fd.as_raw_fd(), what, cap)
    }

    fn read_raw(&self, fd: i32, what: &Path, cap: usize) -> Result<Vec<u8>, SysError> {
        match self.perform(Call::Read {
            fd,
            path: what.to_path_buf(),
            cap,
        })? {
            Ret::Received(b) => Ok(b),
            _ => Ok(vec![]),
        }
    }

    /// Everything `fd` (`what`) holds from its offset on, read to its end: at most `limit`
    /// bytes, more is `EFBIG` (a file of a container's can be anything).
    pub fn read_to_end(
        &self,
        fd: BorrowedFd<'_>,
        what: &Path,
        limit: usize,
    ) -> Result<Vec<u8>, SysError> {
        self.read_raw_to_end(fd.as_raw_fd(), what, limit)
    }

    fn read_raw_to_end(&self, fd: i32, what: &Path, limit: usize) -> Result<Vec<u8>, SysError> {
        let mut all = Vec::new();
        loop {
            let got = self.read_raw(fd, what, 4096)?;
            if got.is_empty() {
                return Ok(all);
            }
            all.extend_from_slice(&got);
            if all.len() > limit {
                return Err(SysError {
                    name: "read",
                    object: format!("{}: more than {limit} bytes", what.display()),
                    errno: Errno::EFBIG,
                });
            }
        }
    }

    /// Read a small kernel file whole (a cgroup knob, `cgroup.procs`): `openat(O_RDONLY)`,
    /// `read` to its end, `close`, each traced.
    pub fn read_file(&self, path: &Path) -> Result<String, SysError> {
        let fd = match self.perform(Call::Open {
            path: path.to_path_buf(),
            flags: libc::O_RDONLY | libc::O_CLOEXEC,
            mode: 0,
        })? {
            Ret::Fd(fd) => fd,
            other => other.value() as i32,
        };
        let read = self.read_raw_to_end(fd, path, 16 << 20);
        // Closed whatever the reads gave: the descriptor is ours alone.
        let closed = self.run(Call::Close {
            fd,
            object: path.display().to_string(),
        });
        let text = read?;
        closed?;
        Ok(String::from_utf8_lossy(&text).into_owned())
    }

    /// `pidfd_open(pid, 0)` of a process to wait on (readable once it exits): the caller
    /// checks its start time after this, so a reused pid is never waited on.
    pub fn pidfd_to_wait(&self, pid: i32) -> Result<OwnedFd, SysError> {
        let ret = self.perform(Call::PidfdOpenEngine { pid })?;
        Ok(self.owned(ret))
    }

    /// Run `f` with the umask at `mask` (`umask(2)`), the old one given back after it
    /// whatever `f` returned: files made in it get exactly the modes asked for.
    pub fn with_umask<T, E: From<SysError>>(
        &self,
        mask: u32,
        f: impl FnOnce() -> Result<T, E>,
    ) -> Result<T, E> {
        let old = match self.perform(Call::Umask { mask })? {
            Ret::Umask(m) => m,
            _ => 0o022,
        };
        let done = f();
        self.run(Call::Umask { mask: old })?;
        done
    }

    /// The entries of the directory `path` (not `.` and `..`), each with whether it is a
    /// directory: `openat(O_DIRECTORY)`, `getdents64` to its end, `close`, each traced.
    pub fn list_dir(&self, path: &Path) -> Result<Vec<(String, bool)>, SysError> {
        let fd = match self.perform(Call::Open {
            path: path.to_path_buf(),
            flags: libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC,
            mode: 0,
        })? {
            Ret::Fd(fd) => fd,
            other => other.value() as i32,
        };
        let mut all = Vec::new();
        let listed = loop {
            match self.perform(Call::Getdents {
                fd,
                path: path.to_path_buf(),
                cap: 32768,
            }) {
                Ok(Ret::Dirents { entries, .. }) if !entries.is_empty() => {
                    all.extend(entries.into_iter().filter(|(n, _)| n != "." && n != ".."));
                }
                Ok(_) => break Ok(all),
                Err(e) => break Err(e),
            }
        };
        // Closed whatever the listing gave: the descriptor is ours alone.
        let closed = self.run(Call::Close {
            fd,
            object: path.display().to_string(),
        });
        let listed = listed?;
        closed?;
        Ok(listed)
    }

    /// `unlinkat(AT_FDCWD, path, 0)`.
    pub fn unlink(&self, path: &Path) -> Result<(), SysError> {
        self.run(Call::Unlink {
            path: path.to_path_buf(),
        })
    }

    /// `poll(2)` for `POLLIN` on `fds` (`what` names them), `timeout` ms (-1: unbounded): the
    /// ready descriptors with their `revents`, none when the time ran out.
    pub fn poll(
        &self,
        fds: &[BorrowedFd<'_>],
        timeout: i32,
        what: &str,
    ) -> Result<Vec<(i32, i16)>, SysError> {
        match self.perform(Call::Poll {
            fds: fds.iter().map(|f| f.as_raw_fd()).collect(),
            timeout,
            what: what.to_string(),
        })? {
            Ret::Polled(r) => Ok(r),
            _ => Ok(vec![]),
        }
    }

    /// Bring a network interface up, as `ip link set <name> up` does: a socket to ask
    /// through, read the interface's flags, write them back with `IFF_UP`, close the socket.
    pub fn if_up(&self, name: &str) -> Result<(), SysError> {
        let sock = match self.perform(Call::SocketInet)? {
            Ret::Fd(fd) => fd,
            other => other.value() as i32,
        };
        let result = self
            .perform(Call::IoctlIfFlags {
                fd: sock,
                name: name.to_string(),
                set: None,
            })
            .and_then(|flags| {
                let flags = match flags {
                    Ret::IfFlags(f) => f,
                    _ => 0,
                };
                self.run(Call::IoctlIfFlags {
                    fd: sock,
                    name: name.to_string(),
                    set: Some(flags | libc::IFF_UP),
                })
            });
        let closed = self.run(Call::Close {
            fd: sock,
            object: format!("socket for {name}"),
        });
        result.and(closed)
    }

    /// `unshare(2)`.
    pub fn unshare(&self, flags: CloneFlags) -> Result<(), SysError> {
        self.run(Call::Unshare { flags })
    }

    /// `clone(2)` like fork: `Ok(0)` in the child, the child's pid in the parent.
    pub fn clone_process(&self, flags: CloneFlags) -> Result<i32, SysError> {
        match self.perform(Call::Clone { flags })? {
            Ret::Pid(p) => Ok(p),
            other => Ok(other.value() as i32),
        }
    }

    /// Take ownership of the descriptor a call returned. The recording double returns a
    /// made-up number, which must never be closed: a descriptor of /dev/null stands in for it.
    fn owned(&self, ret: Ret) -> OwnedFd {
        match ret {
            // SAFETY: the kernel just returned this descriptor and nothing else owns it.
            Ret::Fd(fd) if !self.is_dry_run() => unsafe { OwnedFd::from_raw_fd(fd) },
            _ => std::fs::File::open("/dev/null")
                .map(OwnedFd::from)
                .expect("/dev/null opens"),
        }
    }

    /// `openat2(2)` relative to `dir`: a new descriptor, owned by the caller.
    pub fn openat2(
        &self,
        dir: BorrowedFd<'_>,
        path: &Path,
        flags: i32,
        mode: u32,
        resolve: u64,
    ) -> Result<OwnedFd, SysError> {
        let ret = self.perform(Call::Openat2 {
            dirfd: dir.as_raw_fd(),
            path: path.to_path_buf(),
            flags,
            mode,
            resolve,
        })?;
        Ok(self.owned(ret))
    }

    /// `access(path, F_OK)`: true when `path` exists (any error counts as missing, as with
    /// `Path::exists`).
    pub fn exists(&self, path: &Path) -> bool {
        self.access(path, libc::F_OK).is_ok()
    }

    /// `access(path, mode)`.
    pub fn access(&self, path: &Path, mode: i32) -> Result<(), SysError> {
        self.run(Call::Access {
            path: path.to_path_buf(),
            mode,
        })
    }

    /// `stat(path)`: the file's type and mode bits (`st_mode`).
    pub fn stat_mode(&self, path: &Path) -> Result<u32, SysError> {
        match self.perform(Call::Stat {
            path: path.to_path_buf(),
        })? {
            Ret::Stat { mode, .. } => Ok(mode),
            _ => Ok(0),
        }
    }

    /// `fstatfs(2)` of `fd`, which `object` names: the file system it is on.
    pub fn fstatfs(&self, fd: BorrowedFd<'_>, object: &Path) -> Result<Statfs, SysError> {
        match self.perform(Call::Fstatfs {
            fd: fd.as_raw_fd(),
            object: object.display().to_string(),
        })? {
            Ret::Statfs(st) => Ok(st),
            other => Err(SysError {
                name: "fstatfs",
                object: format!("{}: unexpected result {other:?}", object.display()),
                errno: Errno::EIO,
            }),
        }
    }

    /// `statx(2)` of `fd` for its mount ID: which mount the object `object` names is on.
    pub fn mount_id(&self, fd: BorrowedFd<'_>, object: &Path) -> Result<u64, SysError> {
        match self.perform(Call::StatxMntId {
            fd: fd.as_raw_fd(),
            object: object.display().to_string(),
        })? {
            Ret::Statx { mnt_id, .. } => Ok(mnt_id),
            other => Err(SysError {
                name: "statx",
                object: format!("{}: unexpected result {other:?}", object.display()),
                errno: Errno::EIO,
            }),
        }
    }

    /// `openat(AT_FDCWD, path, flags)`: a new descriptor, owned by the caller.
    pub fn open(&self, path: &Path, flags: i32) -> Result<OwnedFd, SysError> {
        let ret = self.perform(Call::Open {
            path: path.to_path_buf(),
            flags,
            mode: 0,
        })?;
        Ok(self.owned(ret))
    }

    /// `openat(AT_FDCWD, path, flags, mode)` (`mode` counts with `O_CREAT`): a new
    /// descriptor, owned by the caller.
    pub fn open_mode(&self, path: &Path, flags: i32, mode: u32) -> Result<OwnedFd, SysError> {
        let ret = self.perform(Call::Open {
            path: path.to_path_buf(),
            flags,
            mode,
        })?;
        Ok(self.owned(ret))
    }

    /// `bpf(BPF_PROG_LOAD)` of a cgroup device program: its descriptor, owned by the caller.
    pub fn bpf_prog_load(&self, insns: Vec<bpf::BpfInsn>) -> Result<OwnedFd, SysError> {
        let ret = self.perform(Call::BpfProgLoad { insns })?;
        Ok(self.owned(ret))
    }

    /// `bpf(BPF_PROG_ATTACH)` of device program `prog` to the cgroup directory `cgroup`
    /// (opened as `dir`).
    pub fn bpf_prog_attach(
        &self,
        dir: BorrowedFd<'_>,
        prog: BorrowedFd<'_>,
        cgroup: &Path,
    ) -> Result<(), SysError> {
        self.run(Call::BpfProgAttach {
            target_fd: dir.as_raw_fd(),
            prog_fd: prog.as_raw_fd(),
            cgroup: cgroup.to_path_buf(),
        })
    }

    /// `mkdirat(2)` of one name in `dir`, where an existing directory counts as success.
    pub fn mkdirat(&self, dir: BorrowedFd<'_>, name: &Path, mode: u32) -> Result<(), SysError> {
        match self.run(Call::Mkdirat {
            dirfd: dir.as_raw_fd(),
            path: name.to_path_buf(),
            mode,
        }) {
            Err(e) if e.errno == Errno::EEXIST => Ok(()),
            other => other,
        }
    }

    /// Whether the kernel makes a file system of type `fstype` from the file `image` (an open
    /// descriptor, named to the kernel as `/proc/self/fd/N`): `fsopen(2)`, `fsconfig(2)`
    /// `source`, then `FSCONFIG_CMD_CREATE`, which reads the superblock, and `close` of the
    /// context. No fsmount(2): the superblock is dropped with the context and nothing is
    /// mounted anywhere (`system check` changes nothing).
    pub fn probe_file_fs(&self, fstype: &str, image: BorrowedFd<'_>) -> Result<(), SysError> {
        let fc = match self.perform(Call::Fsopen {
            fstype: fstype.to_string(),
        })? {
            Ret::Fd(fd) => fd,
            other => other.value() as i32,
        };
        let result = self
            .run(Call::FsconfigSource {
                fd: fc,
                source: format!("/proc/self/fd/{}", image.as_raw_fd()).into(),
            })
            .and_then(|()| self.run(Call::FsconfigCreate { fd: fc }));
        // Closed whatever the kernel answered: the context is ours alone.
        let closed = self.run(Call::Close {
            fd: fc,
            object: format!("{fstype} context"),
        });
        result.and(closed)
    }

    /// `wait4(2)` for `pid`: the raw wait status.
    pub fn wait4(&self, pid: i32) -> Result<i32, SysError> {
        match self.perform(Call::Wait4 { pid })? {
            Ret::Waited { status, .. } => Ok(status),
            _ => Ok(0),
        }
    }
}
