//! The real backend: each [`Call`] becomes exactly the syscall its name says.
//!
//! `nix`'s safe wrappers are used wherever nix 0.29 has one that makes exactly the syscall the
//! trace shows. Raw `libc` stays where nix has no wrapper (clone without a callback, capset,
//! seccomp, bpf, pidfds, the new mount API, close_range, rmdir), where its wrapper would add
//! or change calls (glibc's set*id broadcast, its sigaction's `SA_RESTORER`), or where its
//! types cannot carry what the seam does (real-time signals in a wait status or a mask). Each
//! such block says why. All `unsafe` here is a plain FFI call with arguments that are valid
//! for the duration of the call; each block says what else it relies on.

use std::ffi::CString;
use std::os::fd::{AsRawFd, IntoRawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use nix::errno::Errno;

use super::call::{Call, Prctl, PtyOp, Ret};
use super::Backend;

/// The real kernel.
pub struct Linux;

fn cpath(p: &Path) -> Result<CString, Errno> {
    CString::new(p.as_os_str().as_bytes()).map_err(|_| Errno::EINVAL)
}

fn cstr(s: &str) -> Result<CString, Errno> {
    CString::new(s).map_err(|_| Errno::EINVAL)
}

fn check(rc: libc::c_long) -> Result<Ret, Errno> {
    if rc < 0 {
        Err(Errno::last())
    } else {
        Ok(Ret::Zero)
    }
}

fn check_int(rc: libc::c_int) -> Result<Ret, Errno> {
    check(rc as libc::c_long)
}

/// The header and data of `capset(2)` version 3 (64-bit sets in two 32-bit halves).
#[repr(C)]
struct CapHeader {
    version: u32,
    pid: i32,
}

#[repr(C)]
#[derive(Clone, Copy)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

const LINUX_CAPABILITY_VERSION_3: u32 = 0x2008_0522;

impl Backend for Linux {
    fn ignored_signals(&self) -> u64 {
        ignored_signals()
    }

    fn perform(&self, call: &Call) -> Result<Ret, Errno> {
        match call {
            Call::Clone { flags } => {
                // SAFETY: clone with a NULL stack behaves like fork(2): the child gets a
                // copy-on-write copy of this (single-threaded) process and returns 0 here.
                // dockling never calls this from a multi-threaded process (see runtime).
                // Not nix: its `clone` insists on a new stack and a callback, and `fork`
                // takes no namespace flags.
                let rc = unsafe {
                    libc::syscall(
                        libc::SYS_clone,
                        (flags.bits() as libc::c_long) | libc::SIGCHLD as libc::c_long,
                        0usize,
                        0usize,
                        0usize,
                        0usize,
                    )
                };
                if rc < 0 {
                    Err(Errno::last())
                } else {
                    Ok(Ret::Pid(rc as i32))
                }
            }
            Call::Unshare { flags } => nix::sched::unshare(*flags).map(|()| Ret::Zero),
            Call::Mount {
                source,
                target,
                fstype,
                flags,
                data,
            } => nix::mount::mount(
                source.as_deref(),
                target.as_path(),
                fstype.as_deref(),
                *flags,
                data.as_deref(),
            )
            .map(|()| Ret::Zero),
            Call::Umount2 { target, flags } => {
                nix::mount::umount2(target.as_path(), *flags).map(|()| Ret::Zero)
            }
            Call::PivotRoot { new_root, put_old } => {
                nix::unistd::pivot_root(new_root.as_path(), put_old.as_path()).map(|()| Ret::Zero)
            }
            Call::Chroot { path } => nix::unistd::chroot(path.as_path()).map(|()| Ret::Zero),
            Call::Chdir { path } => nix::unistd::chdir(path.as_path()).map(|()| Ret::Zero),
            Call::Sethostname { name } => nix::unistd::sethostname(name).map(|()| Ret::Zero),
            Call::Setdomainname { name } => {
                // SAFETY: a pointer and the length of a live byte string (no NUL needed: the
                // kernel copies exactly `len` bytes). Not nix: it has no setdomainname.
                check_int(unsafe {
                    libc::setdomainname(name.as_ptr() as *const libc::c_char, name.len())
                })
            }
            Call::Setns { fd, kind, .. } => {
                // SAFETY: the caller owns `fd` for the duration of the call.
                let fd = unsafe { std::os::fd::BorrowedFd::borrow_raw(*fd) };
                nix::sched::setns(fd, *kind).map(|()| Ret::Zero)
            }
            Call::Mkdir { path, mode } => {
                nix::unistd::mkdir(path.as_path(), mode_bits(*mode)).map(|()| Ret::Zero)
            }
            Call::Mknodat {
                dirfd,
                name,
                kind,
                mode,
                major,
                minor,
                ..
            } => {
                // The caller passes the descriptor of a directory it resolved and checked (the
                // container's own /dev tmpfs, or the node's parent found inside the root, on
                // one of the container's own mounts); mknodat never follows a final symlink
                // (EEXIST instead).
                let ty = match kind {
                    'b' => nix::sys::stat::SFlag::S_IFBLK,
                    'p' => nix::sys::stat::SFlag::S_IFIFO,
                    _ => nix::sys::stat::SFlag::S_IFCHR,
                };
                let dev = libc::makedev(*major as u32, *minor as u32);
                nix::sys::stat::mknodat(Some(*dirfd), name.as_path(), ty, mode_bits(*mode), dev)
                    .map(|()| Ret::Zero)
            }
            Call::Fchownat {
                dirfd,
                name,
                uid,
                gid,
                ..
            } => nix::unistd::fchownat(
                Some(*dirfd),
                name.as_path(),
                Some(nix::unistd::Uid::from_raw(*uid)),
                Some(nix::unistd::Gid::from_raw(*gid)),
                nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
            )
            .map(|()| Ret::Zero),
            Call::Symlinkat {
                target,
                dirfd,
                linkpath,
            } => nix::unistd::symlinkat(target.as_path(), Some(*dirfd), linkpath.as_path())
                .map(|()| Ret::Zero),
            Call::ConnectUnix { path } => {
                use nix::sys::socket::{connect, socket, AddressFamily, SockFlag, SockType};
                let fd = socket(
                    AddressFamily::Unix,
                    SockType::Stream,
                    SockFlag::SOCK_CLOEXEC,
                    None,
                )?;
                let addr = nix::sys::socket::UnixAddr::new(path.as_path())?;
                connect(fd.as_raw_fd(), &addr)?;
                Ok(Ret::Fd(fd.into_raw_fd()))
            }
            Call::SendFd { sock, fd, name } => {
                use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags};
                let iov = [std::io::IoSlice::new(name.as_bytes())];
                let fds = [*fd];
                let cmsg = [ControlMessage::ScmRights(&fds)];
                sendmsg::<()>(*sock, &iov, &cmsg, MsgFlags::empty(), None).map(Ret::Bytes)
            }
            Call::Mkfifo { path } => nix::sys::stat::mknodat(
                None,
                path.as_path(),
                nix::sys::stat::SFlag::S_IFIFO,
                mode_bits(0o622),
                0,
            )
            .map(|()| Ret::Zero),
            Call::Prlimit {
                pid,
                resource,
                soft,
                hard,
                ..
            } => {
                let new = libc::rlimit64 {
                    rlim_cur: *soft,
                    rlim_max: *hard,
                };
                // SAFETY: `new` is a valid rlimit64 for the call's duration and the old value
                // is not asked for (NULL). Not nix: its setrlimit acts on this process only.
                let r =
                    unsafe { libc::prlimit64(*pid, *resource as _, &new, std::ptr::null_mut()) };
                if r == 0 {
                    Ok(Ret::Zero)
                } else {
                    Err(nix::errno::Errno::last())
                }
            }
            Call::Umask { mask } => {
                let old = nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(
                    *mask as libc::mode_t,
                ));
                Ok(Ret::Umask(old.bits() as u32))
            }
            Call::Rmdir { path } => {
                let p = cpath(path)?;
                // SAFETY: valid C string. Not nix: it has no rmdir, and its unlinkat with
                // AT_REMOVEDIR would be another syscall than the trace shows.
                check_int(unsafe { libc::rmdir(p.as_ptr()) })
            }
            Call::Prctl { option, arg } => prctl(*option, *arg),
            Call::Capset {
                effective,
                permitted,
                inheritable,
            } => {
                let mut header = CapHeader {
                    version: LINUX_CAPABILITY_VERSION_3,
                    pid: 0,
                };
                let lo = |v: u64| v as u32;
                let hi = |v: u64| (v >> 32) as u32;
                let data = [
                    CapData {
                        effective: lo(*effective),
                        permitted: lo(*permitted),
                        inheritable: lo(*inheritable),
                    },
                    CapData {
                        effective: hi(*effective),
                        permitted: hi(*permitted),
                        inheritable: hi(*inheritable),
                    },
                ];
                // SAFETY: header and the two-element data array match the kernel's v3 layout
                // and outlive the call. Not nix: it has no capset (nor glibc a wrapper).
                check(unsafe {
                    libc::syscall(
                        libc::SYS_capset,
                        &mut header as *mut CapHeader,
                        data.as_ptr(),
                    )
                })
            }
            Call::Setgroups { gids } => {
                let g: Vec<libc::gid_t> = gids.clone();
                // SAFETY: pointer and length of a live slice. Not nix: its setgroups is
                // glibc's, which broadcasts the change to every thread glibc believes exists
                // (setxid). After a raw clone the child inherits the parent's thread list
                // without the threads, so the raw syscall is the only one that acts on
                // exactly this process.
                check(unsafe { libc::syscall(libc::SYS_setgroups, g.len(), g.as_ptr()) })
            }
            Call::Setresgid { gid } => {
                // SAFETY: integer arguments only; raw syscall (not nix's setresgid) for the
                // same reason as above.
                check(unsafe { libc::syscall(libc::SYS_setresgid, *gid, *gid, *gid) })
            }
            Call::Setresuid { uid } => {
                // SAFETY: integer arguments only; raw for the same reason as setgroups.
                check(unsafe { libc::syscall(libc::SYS_setresuid, *uid, *uid, *uid) })
            }
            // setsid returns the new session's id (this pid).
            Call::Setsid => nix::unistd::setsid().map(|pid| Ret::Pid(pid.as_raw())),
            Call::IoctlSetCtty { fd } => {
                // SAFETY: TIOCSCTTY takes an integer argument (0: do not steal the terminal
                // from another session); no memory is passed.
                unsafe { ioctl::tiocsctty(*fd, 0) }.map(|_| Ret::Zero)
            }
            Call::Dup2 { old, new, .. } => nix::unistd::dup2(*old, *new).map(Ret::Fd),
            Call::CloseRange { first, .. } => {
                // SAFETY: integer arguments only; CLOSE_RANGE_CLOEXEC (4) marks, not closes,
                // so descriptors still in use until execve (the sync pipe) keep working.
                // Not nix: 0.29 has no close_range.
                check(unsafe { libc::syscall(libc::SYS_close_range, *first, u32::MAX, 4u32) })
            }
            Call::CloseRangeNow { first, last } => {
                // SAFETY: integer arguments only; flags 0 closes the range.
                check(unsafe { libc::syscall(libc::SYS_close_range, *first, *last, 0u32) })
            }
            Call::Seccomp { filter, .. } => {
                let filter: Vec<libc::sock_filter> = filter
                    .iter()
                    .map(|i| libc::sock_filter {
                        code: i.code,
                        jt: i.jt,
                        jf: i.jf,
                        k: i.k,
                    })
                    .collect();
                let prog = libc::sock_fprog {
                    len: filter.len() as u16,
                    filter: filter.as_ptr() as *mut _,
                };
                // SAFETY: prog points at `filter`, which outlives the call; the kernel copies it.
                // Not nix: it has no seccomp (nor glibc a wrapper).
                check(unsafe {
                    libc::syscall(
                        libc::SYS_seccomp,
                        libc::SECCOMP_SET_MODE_FILTER,
                        0u32,
                        &prog as *const libc::sock_fprog,
                    )
                })
            }
            Call::RunHost { argv } => {
                // The program is the host's (execvp: looked up in PATH) and runs as
                // dockling's child with dockling's environment, its output read through pipes.
                let (program, args) = argv.split_first().ok_or(Errno::EINVAL)?;
                let mut cmd = std::process::Command::new(program);
                cmd.args(args)
                    .stdin(std::process::Stdio::null())
                    .stdout(std::process::Stdio::piped())
                    .stderr(std::process::Stdio::piped());
                let (pid, status, stdout, stderr) = run_program(cmd, None, None)?;
                Ok(Ret::Ran {
                    pid,
                    status,
                    stdout,
                    stderr,
                })
            }
            Call::Execve { path, argv, envp } => {
                let p = cpath(path)?;
                let a: Vec<CString> = argv.iter().map(|s| cstr(s)).collect::<Result<_, _>>()?;
                let e: Vec<CString> = envp.iter().map(|s| cstr(s)).collect::<Result<_, _>>()?;
                match nix::unistd::execve(&p, &a, &e) {
                    Err(e) => Err(e),
                    Ok(never) => match never {},
                }
            }
            Call::Openat2 {
                dirfd,
                path,
                flags,
                mode,
                resolve,
            } => {
                // dirfd is the caller's descriptor, live for the call; the caller owns the
                // returned descriptor.
                super::fs::openat2_raw(*dirfd, path, *flags, *mode, *resolve).map(Ret::Fd)
            }
            Call::Mkdirat { dirfd, path, mode } => {
                nix::sys::stat::mkdirat(Some(*dirfd), path.as_path(), mode_bits(*mode))
                    .map(|()| Ret::Zero)
            }
            // The caller owns the returned descriptor. The mode is read by the kernel only with
            // O_CREAT. openat(AT_FDCWD, ..) is the syscall glibc's open makes.
            Call::Open { path, flags, mode } => nix::fcntl::openat(
                Some(libc::AT_FDCWD),
                path.as_path(),
                nix::fcntl::OFlag::from_bits_retain(flags | libc::O_CLOEXEC),
                mode_bits(*mode),
            )
            .map(Ret::Fd),
            Call::BpfProgLoad { insns } => bpf_prog_load(insns),
            Call::BpfProgAttach {
                target_fd, prog_fd, ..
            } => {
                let attr = BpfProgAttachAttr {
                    target_fd: *target_fd as u32,
                    attach_bpf_fd: *prog_fd as u32,
                    attach_type: BPF_CGROUP_DEVICE,
                    attach_flags: BPF_F_ALLOW_MULTI,
                    replace_bpf_fd: 0,
                };
                // SAFETY: attr is a live, fully initialised bpf_attr prefix of the size passed;
                // both descriptors are the caller's and live for the call. Not nix: it has no
                // bpf.
                check(unsafe {
                    libc::syscall(
                        libc::SYS_bpf,
                        BPF_PROG_ATTACH,
                        &attr as *const BpfProgAttachAttr,
                        std::mem::size_of::<BpfProgAttachAttr>(),
                    )
                })
            }
            Call::IoctlPty { fd, op } => match op {
                // Not nix::pty: its unlockpt and ptsname_r are glibc's, which make calls of
                // their own around the ioctl.
                PtyOp::Unlock => {
                    let unlock: libc::c_int = 0;
                    // SAFETY: fd is a live pty master; the argument points at a live int.
                    unsafe { ioctl::tiocsptlck(*fd, &unlock) }.map(|_| Ret::Zero)
                }
                PtyOp::Number => {
                    let mut n: libc::c_uint = 0;
                    // SAFETY: fd is a live pty master; the kernel writes one uint through n.
                    unsafe { ioctl::tiocgptn(*fd, &mut n) }.map(|_| Ret::PtyNumber(n))
                }
                PtyOp::Winsize { rows, cols } => {
                    let size = libc::winsize {
                        ws_row: *rows,
                        ws_col: *cols,
                        ws_xpixel: 0,
                        ws_ypixel: 0,
                    };
                    // SAFETY: fd is a terminal; the argument points at a live winsize.
                    unsafe { ioctl::tiocswinsz(*fd, &size) }.map(|_| Ret::Zero)
                }
            },
            // An empty set and no old one: what glibc's sigprocmask passes on unchanged
            // (it only ever removes its own internal signals, and there are none to remove).
            Call::UnblockSignals => nix::sys::signal::sigprocmask(
                nix::sys::signal::SigmaskHow::SIG_SETMASK,
                Some(&nix::sys::signal::SigSet::empty()),
                None,
            )
            .map(|()| Ret::Zero),
            Call::SigactionDefault { signal } => {
                // The kernel's own layout of struct sigaction (not libc's, which carries a
                // larger sigset): handler, flags, restorer, mask. SIG_DFL needs no restorer,
                // and without SA_RESTORER strace shows exactly what the trace does.
                #[repr(C)]
                struct KernelSigaction {
                    handler: usize,
                    flags: u64,
                    restorer: usize,
                    mask: u64,
                }
                let act = KernelSigaction {
                    handler: libc::SIG_DFL,
                    flags: 0,
                    restorer: 0,
                    mask: 0,
                };
                // SAFETY: act is a live struct of the kernel's layout, no old action is asked
                // for, and 8 is the kernel's sigset size. Not nix: its sigaction is glibc's,
                // which adds SA_RESTORER and a restorer the trace does not show.
                check(unsafe {
                    libc::syscall(
                        libc::SYS_rt_sigaction,
                        *signal,
                        &act as *const KernelSigaction,
                        std::ptr::null_mut::<KernelSigaction>(),
                        8usize,
                    )
                })
            }
            Call::Kill { pid, signal } => {
                // Signal 0 probes. nix's Signal has no real-time signals; the engine sends
                // none (only SIGKILL and the standard signals it relays), and an unknown
                // number is EINVAL, as the kernel would say.
                let sig = match *signal {
                    0 => None,
                    n => Some(nix::sys::signal::Signal::try_from(n)?),
                };
                nix::sys::signal::kill(nix::unistd::Pid::from_raw(*pid), sig).map(|()| Ret::Zero)
            }
            Call::Flock { fd, .. } => {
                // SAFETY: integer arguments only, on the caller's open descriptor. Not nix:
                // its `Flock` owns the file and unlocks it on drop (this lock is released by
                // the close, as the caller's).
                check_int(unsafe { libc::flock(*fd, libc::LOCK_EX | libc::LOCK_NB) })
            }
            Call::KillProxy { pid } => self.perform(&Call::Kill {
                pid: *pid,
                signal: libc::SIGKILL,
            }),
            Call::WaitProxy { pid } => self.perform(&Call::Wait4 { pid: *pid }),
            Call::RunHook {
                path,
                argv,
                envp,
                dir,
                state,
                timeout,
                stdout,
                stderr,
                ..
            } => run_hook(
                path,
                argv,
                envp.as_deref(),
                dir.as_deref(),
                state,
                *timeout,
                [stdout.as_deref(), stderr.as_deref()],
            ),
            Call::SchedSetattr { attr } => {
                let raw = SchedAttrRaw {
                    size: std::mem::size_of::<SchedAttrRaw>() as u32,
                    sched_policy: attr.policy,
                    sched_flags: attr.flags,
                    sched_nice: attr.nice,
                    sched_priority: attr.priority,
                    sched_runtime: attr.runtime,
                    sched_deadline: attr.deadline,
                    sched_period: attr.period,
                };
                // SAFETY: `raw` is a live `struct sched_attr` (version 0, 48 bytes) for the
                // call; the kernel only reads it. Not nix: it has no sched_setattr (nor glibc
                // a wrapper before 2.41).
                check(unsafe {
                    libc::syscall(
                        libc::SYS_sched_setattr,
                        0,
                        &raw as *const SchedAttrRaw,
                        0u32,
                    )
                })
            }
            Call::IoprioSet { class, level } => {
                // SAFETY: integer arguments only. Not nix: it has no ioprio_set (nor glibc).
                check(unsafe {
                    libc::syscall(
                        libc::SYS_ioprio_set,
                        1, // IOPRIO_WHO_PROCESS
                        0,
                        ((class << 13) | level) as libc::c_int,
                    )
                })
            }
            Call::SetMempolicy {
                mode,
                flags,
                nodes,
                maxnode,
            } => {
                let mask = if nodes.is_empty() {
                    std::ptr::null()
                } else {
                    nodes.as_ptr()
                };
                // SAFETY: `mask` is NULL or points at `nodes`, which holds at least `maxnode`
                // bits and outlives the call; the kernel only reads it. Not nix: it has no
                // set_mempolicy (glibc's is in libnuma, not libc).
                check(unsafe {
                    libc::syscall(
                        libc::SYS_set_mempolicy,
                        mode | flags,
                        mask,
                        *maxnode as libc::c_ulong,
                    )
                })
            }
            Call::Wait4 { pid } => loop {
                let mut status = 0;
                // SAFETY: status is a live int; rusage may be NULL. Not nix's waitpid: it
                // decodes the status into a WaitStatus, which cannot hold a death by a
                // real-time signal (it fails after reaping) and drops the raw status the
                // trace shows.
                let rc =
                    unsafe { libc::wait4(*pid, &mut status, libc::__WALL, std::ptr::null_mut()) };
                if rc < 0 {
                    let e = Errno::last();
                    if e == Errno::EINTR {
                        continue;
                    }
                    return Err(e);
                }
                return Ok(Ret::Waited { pid: rc, status });
            },
            Call::Write { fd, data, .. } => {
                // SAFETY: fd is the caller's open descriptor; the buffer lives for the call.
                // Not nix: its write takes an AsFd, and borrowing this raw descriptor as one
                // would be just as unsafe.
                let n = unsafe { libc::write(*fd, data.as_ptr().cast(), data.len()) };
                if n < 0 {
                    Err(Errno::last())
                } else {
                    Ok(Ret::Bytes(n as usize))
                }
            }
            // The caller gives up this descriptor, which it opened, exactly once.
            Call::Close { fd, .. } => nix::unistd::close(*fd).map(|()| Ret::Zero),
            // The caller owns the result.
            Call::SocketInet => nix::sys::socket::socket(
                nix::sys::socket::AddressFamily::Inet,
                nix::sys::socket::SockType::Datagram,
                nix::sys::socket::SockFlag::SOCK_CLOEXEC,
                None,
            )
            .map(|fd| Ret::Fd(fd.into_raw_fd())),
            Call::IoctlIfFlags { fd, name, set } => if_flags(*fd, name, *set),
            Call::NetlinkSocket { proto } => nix::sys::socket::socket(
                nix::sys::socket::AddressFamily::Netlink,
                nix::sys::socket::SockType::Raw,
                nix::sys::socket::SockFlag::SOCK_CLOEXEC,
                match proto {
                    super::netlink::NlProto::Route => nix::sys::socket::SockProtocol::NetlinkRoute,
                    super::netlink::NlProto::Netfilter => {
                        nix::sys::socket::SockProtocol::NetlinkNetFilter
                    }
                },
            )
            .map(|fd| Ret::Fd(fd.into_raw_fd())),
            Call::NetlinkBind { fd } => {
                nix::sys::socket::bind(*fd, &nix::sys::socket::NetlinkAddr::new(0, 0))
                    .map(|()| Ret::Zero)
            }
            Call::NetlinkSend { fd, req } => {
                // SAFETY: sendto(2) of a buffer we own, with no address (the socket's peer is
                // the kernel). Not nix: its sendto wants an address, send makes `sendto` too
                // but this keeps the NULL, 0 strace shows explicit.
                let n = unsafe {
                    libc::sendto(
                        *fd,
                        req.bytes.as_ptr().cast(),
                        req.bytes.len(),
                        0,
                        std::ptr::null(),
                        0,
                    )
                };
                Errno::result(n).map(|n| Ret::Bytes(n as usize))
            }
            Call::NetlinkRecv { fd, cap, .. } => {
                let mut buf = vec![0u8; *cap];
                // SAFETY: recvfrom(2) into a buffer of `cap` bytes we own, no address wanted.
                let n = unsafe {
                    libc::recvfrom(
                        *fd,
                        buf.as_mut_ptr().cast(),
                        buf.len(),
                        0,
                        std::ptr::null_mut(),
                        std::ptr::null_mut(),
                    )
                };
                Errno::result(n).map(|n| {
                    buf.truncate(n as usize);
                    Ret::Received(buf)
                })
            }
            // The caller owns the result.
            Call::SocketPort { transport } => nix::sys::socket::socket(
                nix::sys::socket::AddressFamily::Inet,
                match transport {
                    super::Transport::Tcp => nix::sys::socket::SockType::Stream,
                    super::Transport::Udp => nix::sys::socket::SockType::Datagram,
                },
                nix::sys::socket::SockFlag::SOCK_CLOEXEC,
                None,
            )
            .map(|fd| Ret::Fd(fd.into_raw_fd())),
            Call::SetReuseAddr { fd } => {
                let one: libc::c_int = 1;
                // SAFETY: setsockopt(2) reads an int we own for the call. Not nix: its
                // setsockopt takes an AsFd, and borrowing this raw descriptor is as unsafe.
                check(unsafe {
                    libc::setsockopt(
                        *fd,
                        libc::SOL_SOCKET,
                        libc::SO_REUSEADDR,
                        (&one as *const libc::c_int).cast(),
                        std::mem::size_of::<libc::c_int>() as libc::socklen_t,
                    )
                } as libc::c_long)
            }
            Call::BindInet { fd, addr, .. } => {
                nix::sys::socket::bind(*fd, &nix::sys::socket::SockaddrIn::from(*addr))
                    .map(|()| Ret::Zero)
            }
            Call::Listen { fd, backlog, .. } => {
                // SAFETY: listen(2) on the caller's descriptor. Not nix: its listen takes an
                // AsFd (see setsockopt above).
                check(unsafe { libc::listen(*fd, *backlog) } as libc::c_long)
            }
            Call::Getsockname { fd } => {
                nix::sys::socket::getsockname::<nix::sys::socket::SockaddrIn>(*fd)
                    .map(|a| Ret::SockName(std::net::SocketAddrV4::new(a.ip(), a.port())))
            }
            Call::PidfdOpen { pid } | Call::PidfdOpenEngine { pid } => {
                // SAFETY: pidfd_open(2) with a pid and no flags; the caller owns the result.
                // Not nix: 0.29 has no pidfd calls.
                let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, *pid, 0) };
                if fd < 0 {
                    Err(Errno::last())
                } else {
                    Ok(Ret::Fd(fd as i32))
                }
            }
            Call::PidfdSendSignal { fd, signal, .. } => {
                // SAFETY: an open pidfd, no siginfo (NULL: as kill(2) would send), no flags.
                check(unsafe {
                    libc::syscall(
                        libc::SYS_pidfd_send_signal,
                        *fd,
                        *signal,
                        std::ptr::null::<libc::siginfo_t>(),
                        0,
                    )
                })
            }
            // The caller owns both ends.
            Call::Pipe2 | Call::ProxyPipe => nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
                .map(|(r, w)| Ret::FdPair(r.into_raw_fd(), w.into_raw_fd())),
            Call::Socketpair => nix::sys::socket::socketpair(
                nix::sys::socket::AddressFamily::Unix,
                nix::sys::socket::SockType::SeqPacket,
                None,
                nix::sys::socket::SockFlag::SOCK_CLOEXEC,
            )
            .map(|(a, b)| Ret::FdPair(a.into_raw_fd(), b.into_raw_fd())),
            Call::BindUnix { dir, name } => bind_unix(*dir, name),
            Call::BlockSignals { signals } => {
                let set = signals
                    .iter()
                    .fold(0u64, |m, sig| m | 1u64 << (*sig as u64 - 1));
                sigprocmask(libc::SIG_BLOCK, set, true)
            }
            Call::RestoreSignals { mask } => sigprocmask(libc::SIG_SETMASK, *mask, false),
            Call::OpenTree { path } => {
                let c = cpath(path)?;
                // SAFETY: open_tree with a valid C string; the caller owns the result. Not nix:
                // 0.29 has none of the new mount API.
                let fd = unsafe {
                    libc::syscall(
                        libc::SYS_open_tree,
                        libc::AT_FDCWD,
                        c.as_ptr(),
                        (libc::OPEN_TREE_CLONE | libc::OPEN_TREE_CLOEXEC) as libc::c_uint,
                    )
                };
                if fd < 0 {
                    Err(Errno::last())
                } else {
                    Ok(Ret::Fd(fd as i32))
                }
            }
            Call::MountSetattrRdonly { fd } => {
                let attr = libc::mount_attr {
                    attr_set: libc::MOUNT_ATTR_RDONLY,
                    attr_clr: 0,
                    propagation: 0,
                    userns_fd: 0,
                };
                // SAFETY: a live struct of the size passed, an empty C string, the caller's fd.
                // Not nix, as for open_tree.
                check(unsafe {
                    libc::syscall(
                        libc::SYS_mount_setattr,
                        *fd,
                        c"".as_ptr(),
                        libc::AT_EMPTY_PATH as libc::c_uint,
                        &attr as *const libc::mount_attr,
                        std::mem::size_of::<libc::mount_attr>(),
                    )
                })
            }
            Call::MemfdCreate { name } => {
                use nix::sys::memfd::MemFdCreateFlag as M;
                // The caller owns the result.
                nix::sys::memfd::memfd_create(&cstr(name)?, M::MFD_CLOEXEC | M::MFD_ALLOW_SEALING)
                    .map(|fd| Ret::Fd(fd.into_raw_fd()))
            }
            Call::Fsopen { fstype } => {
                // SAFETY: fsopen with a valid C string; the caller owns the descriptor it
                // returns. Not nix: 0.29 has no wrapper for the new mount API.
                let rc = unsafe {
                    libc::syscall(
                        libc::SYS_fsopen,
                        cstr(fstype)?.as_ptr(),
                        1 as libc::c_uint, /* FSOPEN_CLOEXEC */
                    )
                };
                check(rc).map(|_| Ret::Fd(rc as i32))
            }
            Call::FsconfigSource { fd, source } => {
                let source = cpath(source)?;
                // SAFETY: fsconfig on the caller's context with valid C strings
                // (FSCONFIG_SET_STRING = 1).
                check(unsafe {
                    libc::syscall(
                        libc::SYS_fsconfig,
                        *fd,
                        1 as libc::c_uint,
                        c"source".as_ptr(),
                        source.as_ptr(),
                        0 as libc::c_int,
                    )
                })
            }
            Call::FsconfigCreate { fd } => {
                // SAFETY: FSCONFIG_CMD_CREATE (6) takes no key, value or aux.
                check(unsafe {
                    libc::syscall(
                        libc::SYS_fsconfig,
                        *fd,
                        6 as libc::c_uint,
                        std::ptr::null::<libc::c_char>(),
                        std::ptr::null::<libc::c_void>(),
                        0 as libc::c_int,
                    )
                })
            }
            Call::AddSeals { fd } => {
                use nix::fcntl::SealFlag as S;
                let seals = S::F_SEAL_SEAL | S::F_SEAL_SHRINK | S::F_SEAL_GROW | S::F_SEAL_WRITE;
                nix::fcntl::fcntl(*fd, nix::fcntl::FcntlArg::F_ADD_SEALS(seals)).map(|_| Ret::Zero)
            }
            // glibc's access: the syscall Call::name says for this machine.
            Call::Access { path, mode } => nix::unistd::access(
                path.as_path(),
                nix::unistd::AccessFlags::from_bits_retain(*mode),
            )
            .map(|()| Ret::Zero),
            Call::Read { fd, cap, .. } => {
                let mut buf = vec![0u8; *cap];
                // SAFETY: read(2) into a buffer of `cap` bytes we own; fd is the caller's open
                // descriptor. Not nix: its read takes an AsFd, and borrowing this raw
                // descriptor as one would be just as unsafe.
                let n = unsafe { libc::read(*fd, buf.as_mut_ptr().cast(), buf.len()) };
                Errno::result(n).map(|n| {
                    buf.truncate(n as usize);
                    Ret::Received(buf)
                })
            }
            Call::Getdents { fd, cap, .. } => {
                let mut buf = vec![0u8; *cap];
                // SAFETY: getdents64(2) into a buffer of `cap` bytes we own; fd is the caller's
                // open directory. Not nix: its Dir iterates without the seam seeing the calls.
                let n = unsafe {
                    libc::syscall(libc::SYS_getdents64, *fd, buf.as_mut_ptr(), buf.len())
                };
                let n = Errno::result(n)? as usize;
                // struct linux_dirent64: d_ino (8), d_off (8), d_reclen (2), d_type (1), then
                // the name, NUL-terminated, the record padded to d_reclen.
                let mut entries = Vec::new();
                let mut at = 0;
                while at + 19 <= n {
                    let reclen = u16::from_ne_bytes([buf[at + 16], buf[at + 17]]) as usize;
                    if reclen < 19 || at + reclen > n {
                        break;
                    }
                    let name = &buf[at + 19..at + reclen];
                    let name = &name[..name.iter().position(|b| *b == 0).unwrap_or(name.len())];
                    entries.push((
                        String::from_utf8_lossy(name).into_owned(),
                        buf[at + 18] == libc::DT_DIR,
                    ));
                    at += reclen;
                }
                Ok(Ret::Dirents { bytes: n, entries })
            }
            Call::Unlink { path } => nix::unistd::unlinkat(
                None,
                path.as_path(),
                nix::unistd::UnlinkatFlags::NoRemoveDir,
            )
            .map(|()| Ret::Zero),
            Call::Poll { fds, timeout, .. } => {
                let mut polled: Vec<libc::pollfd> = fds
                    .iter()
                    .map(|&fd| libc::pollfd {
                        fd,
                        events: libc::POLLIN,
                        revents: 0,
                    })
                    .collect();
                // SAFETY: poll(2) on an array of pollfd we own, its length given; the
                // descriptors are the caller's (a closed one is only POLLNVAL).
                let n = unsafe {
                    libc::poll(polled.as_mut_ptr(), polled.len() as libc::nfds_t, *timeout)
                };
                Errno::result(n).map(|_| {
                    Ret::Polled(
                        polled
                            .iter()
                            .filter(|p| p.revents != 0)
                            .map(|p| (p.fd, p.revents))
                            .collect(),
                    )
                })
            }
            // glibc's stat: newfstatat(AT_FDCWD, path, buf, 0).
            Call::Stat { path } => nix::sys::stat::stat(path.as_path()).map(|st| Ret::Stat {
                mode: st.st_mode,
                size: st.st_size,
                rdev: st.st_rdev,
            }),
            Call::Fstatfs { fd, .. } => {
                // SAFETY: struct statfs64 is plain data, all-zero a valid value.
                let mut st: libc::statfs64 = unsafe { std::mem::zeroed() };
                // SAFETY: fd is the caller's open descriptor; st is a live statfs64 for the
                // kernel to fill (glibc's fstatfs64 is the fstatfs syscall on 64-bit
                // machines). Not nix's fstatfs: its Statfs hides f_fsid's values and f_flags,
                // which the trace prints as strace does.
                check_int(unsafe { libc::fstatfs64(*fd, &mut st) })?;
                // SAFETY: fsid_t is a repr(C) pair of ints (its fields private in libc).
                let f_fsid: [i32; 2] = unsafe { std::mem::transmute(st.f_fsid) };
                Ok(Ret::Statfs(super::call::Statfs {
                    f_type: st.f_type as i64,
                    f_bsize: st.f_bsize as i64,
                    f_blocks: st.f_blocks as u64,
                    f_bfree: st.f_bfree as u64,
                    f_bavail: st.f_bavail as u64,
                    f_files: st.f_files as u64,
                    f_ffree: st.f_ffree as u64,
                    f_fsid,
                    f_namelen: st.f_namelen as i64,
                    f_frsize: st.f_frsize as i64,
                    f_flags: st.f_flags as i64,
                }))
            }
            Call::StatxMntId { fd, .. } => {
                // SAFETY: struct statx is plain data, all-zero a valid value.
                let mut st: libc::statx = unsafe { std::mem::zeroed() };
                // SAFETY: fd is the caller's open descriptor, the path an empty C string with
                // AT_EMPTY_PATH (the descriptor itself), st a live statx for the kernel to
                // fill. nix has no statx.
                check_int(unsafe {
                    libc::statx(
                        *fd,
                        c"".as_ptr(),
                        libc::AT_EMPTY_PATH,
                        libc::STATX_MNT_ID,
                        &mut st,
                    )
                })?;
                if st.stx_mask & libc::STATX_MNT_ID == 0 {
                    // Kernels before 5.8 have no mount IDs in statx.
                    return Err(Errno::ENOSYS);
                }
                Ok(Ret::Statx {
                    mask: st.stx_mask,
                    attributes: st.stx_attributes,
                    mode: st.stx_mode as u32,
                    size: st.stx_size,
                    mnt_id: st.stx_mnt_id,
                })
            }
            Call::Sendfile {
                out_fd,
                in_fd,
                count,
            } => {
                // SAFETY: both descriptors are the caller's and stay open for the call (a
                // BorrowedFd must not outlive them: these live only inside this arm). nix's
                // sendfile takes AsFd; its copy is exactly one sendfile(2) from in_fd's offset.
                let (out_fd, in_fd) = unsafe {
                    (
                        std::os::fd::BorrowedFd::borrow_raw(*out_fd),
                        std::os::fd::BorrowedFd::borrow_raw(*in_fd),
                    )
                };
                nix::sys::sendfile::sendfile(out_fd, in_fd, None, *count).map(Ret::Bytes)
            }
            Call::Execveat { fd, argv, envp } => {
                // Byte for byte: these are this process's own arguments and environment.
                let bytes =
                    |s: &std::ffi::OsString| CString::new(s.as_bytes()).map_err(|_| Errno::EINVAL);
                let a: Vec<CString> = argv.iter().map(bytes).collect::<Result<_, _>>()?;
                let e: Vec<CString> = envp.iter().map(bytes).collect::<Result<_, _>>()?;
                // The caller's descriptor stays open for the call (close-on-exec only closes it
                // once the new program runs).
                match nix::unistd::execveat(
                    Some(*fd),
                    c"",
                    &a,
                    &e,
                    nix::fcntl::AtFlags::AT_EMPTY_PATH,
                ) {
                    Err(e) => Err(e),
                    Ok(never) => match never {},
                }
            }
        }
    }
}

/// `rt_sigprocmask(how, set, old)` on the kernel's 64-bit sets (raw: glibc's wrapper would
/// hide its own internal signals and change what strace shows, and nix's SigSet cannot
/// report real-time signals of the old mask, which RestoreSignals must put back).
fn sigprocmask(how: libc::c_int, set: u64, want_old: bool) -> Result<Ret, Errno> {
    let mut old = 0u64;
    let old_ptr = if want_old {
        &mut old as *mut u64
    } else {
        std::ptr::null_mut()
    };
    // SAFETY: set and old are live u64s (the kernel's sigset size is 8 bytes here).
    let rc = unsafe {
        libc::syscall(
            libc::SYS_rt_sigprocmask,
            how,
            &set as *const u64,
            old_ptr,
            8usize,
        )
    };
    if rc < 0 {
        Err(Errno::last())
    } else if want_old {
        Ok(Ret::OldMask(old))
    } else {
        Ok(Ret::Zero)
    }
}

/// `prctl(option, arg, 0, 0, 0)`: nix's wrappers where it has them (each passes exactly
/// these arguments); the capability options have none.
fn prctl(option: Prctl, arg: u64) -> Result<Ret, Errno> {
    use nix::sys::prctl as p;
    let done = match option {
        Prctl::SetKeepCaps => p::set_keepcaps(flag(arg)?),
        Prctl::SetDumpable => p::set_dumpable(flag(arg)?),
        Prctl::SetNoNewPrivs if arg == 1 => p::set_no_new_privs(),
        Prctl::SetPdeathsig => p::set_pdeathsig(match arg {
            0 => None,
            n => Some(nix::sys::signal::Signal::try_from(
                i32::try_from(n).map_err(|_| Errno::EINVAL)?,
            )?),
        }),
        // The kernel refuses any other argument; so would nix's wrapper-less form.
        Prctl::SetNoNewPrivs => Err(Errno::EINVAL),
        Prctl::CapBsetDrop | Prctl::CapAmbientClearAll | Prctl::CapAmbientRaise => {
            let (opt, a2, a3) = match option {
                Prctl::CapBsetDrop => (libc::PR_CAPBSET_DROP, arg as libc::c_ulong, 0),
                Prctl::CapAmbientRaise => (
                    libc::PR_CAP_AMBIENT,
                    libc::PR_CAP_AMBIENT_RAISE as libc::c_ulong,
                    arg as libc::c_ulong,
                ),
                _ => (
                    libc::PR_CAP_AMBIENT,
                    libc::PR_CAP_AMBIENT_CLEAR_ALL as libc::c_ulong,
                    0,
                ),
            };
            // SAFETY: prctl with integer arguments only. Not nix: it has no wrapper for the
            // capability bounding and ambient sets.
            return check_int(unsafe {
                libc::prctl(
                    opt,
                    a2,
                    a3 as libc::c_ulong,
                    0 as libc::c_ulong,
                    0 as libc::c_ulong,
                )
            });
        }
    };
    done.map(|()| Ret::Zero)
}

/// The boolean argument of a `prctl` flag: the kernel refuses anything but 0 and 1.
fn flag(arg: u64) -> Result<bool, Errno> {
    match arg {
        0 => Ok(false),
        1 => Ok(true),
        _ => Err(Errno::EINVAL),
    }
}

/// A mode as nix's `Mode`, every bit kept (the kernel decides what it accepts).
fn mode_bits(mode: u32) -> nix::sys::stat::Mode {
    nix::sys::stat::Mode::from_bits_retain(mode as libc::mode_t)
}

/// The terminal ioctls the seam makes, as nix's typed wrappers (each still `unsafe`: the
/// kernel reads or writes through the pointer passed).
mod ioctl {
    nix::ioctl_write_int_bad!(
        /// `ioctl(fd, TIOCSCTTY, arg)`: make the terminal the controlling terminal.
        tiocsctty,
        libc::TIOCSCTTY
    );
    nix::ioctl_write_ptr_bad!(
        /// `ioctl(fd, TIOCSPTLCK, &lock)`: lock or unlock a pty's slave.
        tiocsptlck,
        libc::TIOCSPTLCK,
        libc::c_int
    );
    nix::ioctl_write_ptr_bad!(
        /// `ioctl(fd, TIOCSWINSZ, &size)`: set a terminal's size.
        tiocswinsz,
        libc::TIOCSWINSZ,
        libc::winsize
    );
    nix::ioctl_read_bad!(
        /// `ioctl(fd, TIOCGPTN, &n)`: the number of a pty master's slave.
        tiocgptn,
        libc::TIOCGPTN,
        libc::c_uint
    );
    nix::ioctl_read_bad!(
        /// `ioctl(fd, SIOCGIFFLAGS, &req)`: read an interface's flags.
        siocgifflags,
        libc::SIOCGIFFLAGS,
        libc::ifreq
    );
    nix::ioctl_write_ptr_bad!(
        /// `ioctl(fd, SIOCSIFFLAGS, &req)`: write an interface's flags.
        siocsifflags,
        libc::SIOCSIFFLAGS,
        libc::ifreq
    );
}

/// `ioctl(fd, SIOCGIFFLAGS)` (read the flags of interface `name`) or, with `set`,
/// `ioctl(fd, SIOCSIFFLAGS)` (write them).
fn if_flags(fd: i32, name: &str, set: Option<i32>) -> Result<Ret, Errno> {
    if name.len() >= libc::IFNAMSIZ {
        return Err(Errno::EINVAL);
    }
    // SAFETY: ifreq is plain old data; all-zero is a valid value.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, src) in req.ifr_name.iter_mut().zip(name.bytes()) {
        *dst = src as libc::c_char;
    }
    match set {
        None => {
            // SAFETY: req is a live ifreq with a NUL-terminated name (zeroed above).
            unsafe { ioctl::siocgifflags(fd, &mut req) }?;
            // SAFETY: SIOCGIFFLAGS filled the flags member of the union.
            Ok(Ret::IfFlags(
                unsafe { req.ifr_ifru.ifru_flags } as u16 as i32
            ))
        }
        Some(flags) => {
            req.ifr_ifru.ifru_flags = flags as libc::c_short;
            // SAFETY: as above, with the flags member set.
            unsafe { ioctl::siocsifflags(fd, &req) }.map(|_| Ret::Zero)
        }
    }
}

// bpf(2) commands, program type, attach type and flag (include/uapi/linux/bpf.h); libc has
// no bpf_attr, and nix no bpf wrapper.
const BPF_PROG_LOAD: libc::c_long = 5;
const BPF_PROG_ATTACH: libc::c_long = 8;
const BPF_PROG_TYPE_CGROUP_DEVICE: u32 = 15;
const BPF_CGROUP_DEVICE: u32 = 6;
const BPF_F_ALLOW_MULTI: u32 = 2;

/// The `BPF_PROG_LOAD` part of `union bpf_attr`, up to `expected_attach_type` (the kernel
/// accepts a shorter attr and treats the rest as zero).
#[repr(C)]
struct BpfProgLoadAttr {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
    kern_version: u32,
    prog_flags: u32,
    prog_name: [u8; 16],
    prog_ifindex: u32,
    expected_attach_type: u32,
}

/// The `BPF_PROG_ATTACH` part of `union bpf_attr`.
#[repr(C)]
struct BpfProgAttachAttr {
    target_fd: u32,
    attach_bpf_fd: u32,
    attach_type: u32,
    attach_flags: u32,
    replace_bpf_fd: u32,
}

fn bpf_prog_load(insns: &[super::bpf::BpfInsn]) -> Result<Ret, Errno> {
    // The program uses no GPL-only helper, so the project's own license will do.
    let license = c"Apache-2.0";
    let mut prog_name = [0u8; 16];
    prog_name[..12].copy_from_slice(b"dockling_dev");
    let attr = BpfProgLoadAttr {
        prog_type: BPF_PROG_TYPE_CGROUP_DEVICE,
        insn_cnt: insns.len() as u32,
        insns: insns.as_ptr() as u64,
        license: license.as_ptr() as u64,
        log_level: 0,
        log_size: 0,
        log_buf: 0,
        kern_version: 0,
        prog_flags: 0,
        prog_name,
        prog_ifindex: 0,
        expected_attach_type: BPF_CGROUP_DEVICE,
    };
    // SAFETY: attr is fully initialised and its pointers (instructions laid out as struct
    // bpf_insn, a NUL-terminated license) live for the call; the caller owns the returned
    // descriptor.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            BPF_PROG_LOAD,
            &attr as *const BpfProgLoadAttr,
            std::mem::size_of::<BpfProgLoadAttr>(),
        )
    };
    if rc < 0 {
        Err(Errno::last())
    } else {
        Ok(Ret::Fd(rc as i32))
    }
}

/// The signals this thread ignores: `SigIgn` of `/proc/thread-self/status` (proc(5)), a read
/// of kernel information, not a call that changes anything.
pub fn ignored_signals() -> u64 {
    std::fs::read_to_string("/proc/thread-self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("SigIgn:"))
                .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
        })
        .unwrap_or(0)
}

/// A listening unix stream socket bound to `name` in the directory `dir` names, through
/// `/proc/self/fd/<dir>`: the kernel resolves the directory from the descriptor, so no path
/// above it is looked up again. Made 0600 by the umask around `bind` (a socket's own mode
/// cannot be changed through its descriptor); the caller owns the result.
fn bind_unix(dir: i32, name: &str) -> Result<Ret, Errno> {
    use nix::sys::socket::{bind, listen, socket, AddressFamily, Backlog, SockFlag, SockType};
    use nix::sys::stat::{umask, Mode};
    let fd = socket(
        AddressFamily::Unix,
        SockType::Stream,
        SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK,
        None,
    )?;
    let addr = nix::sys::socket::UnixAddr::new(format!("/proc/self/fd/{dir}/{name}").as_str())?;
    let old = umask(Mode::from_bits_truncate(0o177));
    let bound = bind(fd.as_raw_fd(), &addr);
    umask(old);
    bound?;
    listen(&fd, Backlog::new(8).unwrap_or(Backlog::MAXCONN))?;
    Ok(Ret::Fd(fd.into_raw_fd()))
}

/// `struct sched_attr` as `sched_setattr(2)` reads it (`SCHED_ATTR_SIZE_VER0`, no clamps).
#[repr(C)]
struct SchedAttrRaw {
    size: u32,
    sched_policy: u32,
    sched_flags: u64,
    sched_nice: i32,
    sched_priority: u32,
    sched_runtime: u64,
    sched_deadline: u64,
    sched_period: u64,
}

/// An OCI hook: its stdin a pipe the state is written to and closed, its stdout and stderr
/// this process's or the files given, killed past its timeout ([`run_program`]).
fn run_hook(
    path: &Path,
    argv: &[String],
    envp: Option<&[String]>,
    dir: Option<&Path>,
    state: &str,
    timeout: Option<u64>,
    [stdout, stderr]: [Option<&Path>; 2],
) -> Result<Ret, Errno> {
    use std::os::unix::process::CommandExt;
    let mut cmd = std::process::Command::new(path);
    if let Some((first, rest)) = argv.split_first() {
        cmd.arg0(first).args(rest);
    }
    if let Some(env) = envp {
        cmd.env_clear();
        for kv in env {
            match kv.split_once('=') {
                Some((k, v)) => cmd.env(k, v),
                None => cmd.env(kv, ""),
            };
        }
    }
    if let Some(d) = dir {
        cmd.current_dir(d);
    }
    cmd.stdin(std::process::Stdio::piped());
    let append = |p: &Path| {
        use std::os::unix::fs::OpenOptionsExt;
        std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .mode(0o600)
            .custom_flags(libc::O_CLOEXEC)
            .open(p)
            .map_err(io_errno)
    };
    if let Some(p) = stdout {
        cmd.stdout(append(p)?);
    }
    if let Some(p) = stderr {
        cmd.stderr(append(p)?);
    }
    let (pid, status, ..) = run_program(cmd, Some(state.as_bytes()), timeout)?;
    Ok(Ret::Waited { pid, status })
}

/// The errno of an I/O error (EIO when it has none).
fn io_errno(e: std::io::Error) -> Errno {
    Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO))
}

/// A host program (a runtime `ps`'s `ps`, an OCI hook) run to its end by the standard
/// library's spawning (a fork or vfork-like clone, then execve; it reports a failed execve's
/// errno): `input` written to its stdin pipe as the pipe takes it, its stdout and stderr read
/// from their pipes when they are pipes, all non-blocking between waits (WNOHANG every few
/// milliseconds), so neither a program that never reads its input nor one that writes more
/// than a pipe holds stalls it; past `timeout` seconds killed and reaped: `ETIMEDOUT`. Its
/// pid, raw wait status and output.
fn run_program(
    mut cmd: std::process::Command,
    input: Option<&[u8]>,
    timeout: Option<u64>,
) -> Result<(i32, i32, Vec<u8>, Vec<u8>), Errno> {
    use std::io::{Read, Write};
    use std::os::unix::process::ExitStatusExt;
    let nonblocking = |fd: i32| {
        use nix::fcntl::{fcntl, FcntlArg, OFlag};
        let _ = fcntl(fd, FcntlArg::F_SETFL(OFlag::O_NONBLOCK));
    };
    let mut child = cmd.spawn().map_err(io_errno)?;
    // One that does not read at all is no failure (EPIPE: SIGPIPE is ignored), and its stdin
    // closes once all is written.
    let mut stdin = child.stdin.take();
    let mut unwritten = input.unwrap_or_default();
    let (mut out_pipe, mut err_pipe) = (child.stdout.take(), child.stderr.take());
    for fd in [
        stdin.as_ref().map(|s| s.as_raw_fd()),
        out_pipe.as_ref().map(|s| s.as_raw_fd()),
        err_pipe.as_ref().map(|s| s.as_raw_fd()),
    ]
    .into_iter()
    .flatten()
    {
        nonblocking(fd);
    }
    let (mut stdout, mut stderr) = (Vec::new(), Vec::new());
    // Read what a pipe holds now; false once it is at its end (or broken).
    fn drain(pipe: &mut impl Read, into: &mut Vec<u8>) -> bool {
        let mut buf = [0u8; 8192];
        loop {
            match pipe.read(&mut buf) {
                Ok(0) => return false,
                Ok(n) => into.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return true,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => return false,
            }
        }
    }
    let deadline = timeout.map(|t| std::time::Instant::now() + std::time::Duration::from_secs(t));
    loop {
        if let Some(s) = &mut stdin {
            match s.write(unwritten) {
                Ok(n) => unwritten = &unwritten[n..],
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => unwritten = &[],
            }
            if unwritten.is_empty() {
                stdin = None;
            }
        }
        if out_pipe.as_mut().is_some_and(|p| !drain(p, &mut stdout)) {
            out_pipe = None;
        }
        if err_pipe.as_mut().is_some_and(|p| !drain(p, &mut stderr)) {
            err_pipe = None;
        }
        if let Some(status) = child.try_wait().map_err(io_errno)? {
            // What it wrote before it ended, read; a child of its own that holds the pipes
            // open is not waited for.
            if let Some(p) = &mut out_pipe {
                drain(p, &mut stdout);
            }
            if let Some(p) = &mut err_pipe {
                drain(p, &mut stderr);
            }
            return Ok((child.id() as i32, status.into_raw(), stdout, stderr));
        }
        if deadline.is_some_and(|d| std::time::Instant::now() >= d) {
            let _ = child.kill();
            let _ = child.wait();
            return Err(Errno::ETIMEDOUT);
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}
