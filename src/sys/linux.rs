//! The real backend: each [`Call`] becomes exactly the syscall its name says.
//!
//! Raw `libc` is used where `nix` would add calls of its own (so the trace stays equal to what
//! `strace -f` sees). All `unsafe` here is a plain FFI call with arguments that are valid for
//! the duration of the call; each block says what else it relies on.

use std::ffi::CString;
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
            Call::Unshare { flags } => {
                // SAFETY: plain syscall with an integer argument.
                check_int(unsafe { libc::unshare(flags.bits()) })
            }
            Call::Mount {
                source,
                target,
                fstype,
                flags,
                data,
            } => {
                let src = source.as_deref().map(cpath).transpose()?;
                let tgt = cpath(target)?;
                let fs = fstype.as_deref().map(cstr).transpose()?;
                let dat = data.as_deref().map(cstr).transpose()?;
                // SAFETY: every pointer is either NULL or a NUL-terminated string that lives
                // until the call returns.
                check_int(unsafe {
                    libc::mount(
                        src.as_ref().map_or(std::ptr::null(), |s| s.as_ptr()),
                        tgt.as_ptr(),
                        fs.as_ref().map_or(std::ptr::null(), |s| s.as_ptr()),
                        flags.bits(),
                        dat.as_ref().map_or(std::ptr::null(), |s| s.as_ptr().cast()),
                    )
                })
            }
            Call::Umount2 { target, flags } => {
                let tgt = cpath(target)?;
                // SAFETY: valid C string for the duration of the call.
                check_int(unsafe { libc::umount2(tgt.as_ptr(), flags.bits()) })
            }
            Call::PivotRoot { new_root, put_old } => {
                let n = cpath(new_root)?;
                let o = cpath(put_old)?;
                // SAFETY: two valid C strings; glibc has no wrapper for pivot_root.
                check(unsafe { libc::syscall(libc::SYS_pivot_root, n.as_ptr(), o.as_ptr()) })
            }
            Call::Chroot { path } => {
                let p = cpath(path)?;
                // SAFETY: valid C string.
                check_int(unsafe { libc::chroot(p.as_ptr()) })
            }
            Call::Chdir { path } => {
                let p = cpath(path)?;
                // SAFETY: valid C string.
                check_int(unsafe { libc::chdir(p.as_ptr()) })
            }
            Call::Sethostname { name } => {
                // SAFETY: pointer and length of a live byte buffer.
                check_int(unsafe { libc::sethostname(name.as_ptr().cast(), name.len()) })
            }
            Call::Mkdir { path, mode } => {
                let p = cpath(path)?;
                // SAFETY: valid C string.
                check_int(unsafe { libc::mkdir(p.as_ptr(), *mode as libc::mode_t) })
            }
            Call::Mknodat {
                dirfd,
                path,
                mode,
                major,
                minor,
            } => {
                // The caller passes the descriptor of a directory it resolved and checked
                // (the container's own /dev tmpfs), so the name cannot lead anywhere else.
                let dev = libc::makedev(*major as u32, *minor as u32);
                nix::sys::stat::mknodat(
                    Some(*dirfd),
                    path.as_path(),
                    nix::sys::stat::SFlag::S_IFCHR,
                    nix::sys::stat::Mode::from_bits_truncate(*mode as libc::mode_t),
                    dev,
                )
                .map(|()| Ret::Zero)
            }
            Call::Symlinkat {
                target,
                dirfd,
                linkpath,
            } => nix::unistd::symlinkat(target.as_path(), Some(*dirfd), linkpath.as_path())
                .map(|()| Ret::Zero),
            Call::Umask { mask } => {
                let old = nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(
                    *mask as libc::mode_t,
                ));
                Ok(Ret::Umask(old.bits() as u32))
            }
            Call::Rmdir { path } => {
                let p = cpath(path)?;
                // SAFETY: valid C string.
                check_int(unsafe { libc::rmdir(p.as_ptr()) })
            }
            Call::Prctl { option, arg } => {
                let (opt, a2, a3): (libc::c_int, libc::c_ulong, libc::c_ulong) = match option {
                    Prctl::CapBsetDrop => (libc::PR_CAPBSET_DROP, *arg, 0),
                    Prctl::CapAmbientClearAll => (
                        libc::PR_CAP_AMBIENT,
                        libc::PR_CAP_AMBIENT_CLEAR_ALL as libc::c_ulong,
                        0,
                    ),
                    Prctl::SetKeepCaps => (libc::PR_SET_KEEPCAPS, *arg, 0),
                    Prctl::SetNoNewPrivs => (libc::PR_SET_NO_NEW_PRIVS, *arg, 0),
                    Prctl::SetPdeathsig => (libc::PR_SET_PDEATHSIG, *arg, 0),
                    Prctl::SetDumpable => (libc::PR_SET_DUMPABLE, *arg, 0),
                };
                // SAFETY: prctl with integer arguments only.
                check_int(unsafe {
                    libc::prctl(opt, a2, a3, 0 as libc::c_ulong, 0 as libc::c_ulong)
                })
            }
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
                // and outlive the call.
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
                // SAFETY: pointer and length of a live slice. Raw syscall: glibc's wrapper
                // would broadcast to other threads, and we have none.
                check(unsafe { libc::syscall(libc::SYS_setgroups, g.len(), g.as_ptr()) })
            }
            Call::Setresgid { gid } => {
                // SAFETY: integer arguments only; raw syscall for the same reason as above.
                check(unsafe { libc::syscall(libc::SYS_setresgid, *gid, *gid, *gid) })
            }
            Call::Setresuid { uid } => {
                // SAFETY: integer arguments only.
                check(unsafe { libc::syscall(libc::SYS_setresuid, *uid, *uid, *uid) })
            }
            Call::Setsid => {
                // SAFETY: no arguments. It returns the new session's id (this pid).
                let rc = unsafe { libc::setsid() };
                if rc < 0 {
                    Err(Errno::last())
                } else {
                    Ok(Ret::Pid(rc))
                }
            }
            Call::IoctlSetCtty { fd } => {
                // SAFETY: TIOCSCTTY takes an integer argument.
                check_int(unsafe { libc::ioctl(*fd, libc::TIOCSCTTY, 0) })
            }
            Call::Dup2 { old, new, .. } => {
                // SAFETY: integer arguments only.
                let rc = unsafe { libc::dup2(*old, *new) };
                if rc < 0 {
                    Err(Errno::last())
                } else {
                    Ok(Ret::Fd(rc))
                }
            }
            Call::CloseRange { first } => {
                // SAFETY: integer arguments only; CLOSE_RANGE_CLOEXEC (4) marks, not closes,
                // so descriptors still in use until execve (the sync pipe) keep working.
                check(unsafe { libc::syscall(libc::SYS_close_range, *first, u32::MAX, 4u32) })
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
                check(unsafe {
                    libc::syscall(
                        libc::SYS_seccomp,
                        libc::SECCOMP_SET_MODE_FILTER,
                        0u32,
                        &prog as *const libc::sock_fprog,
                    )
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
                // SAFETY: dirfd is the caller's descriptor, live for the call. The caller owns
                // the returned descriptor.
                let dir = unsafe { std::os::fd::BorrowedFd::borrow_raw(*dirfd) };
                super::fs::openat2(dir, path, *flags, *mode, *resolve)
                    .map(|fd| Ret::Fd(std::os::fd::IntoRawFd::into_raw_fd(fd)))
                    .map_err(|e| Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)))
            }
            Call::Mkdirat { dirfd, path, mode } => {
                let c = cpath(path)?;
                // SAFETY: live descriptor, valid C string.
                check_int(unsafe { libc::mkdirat(*dirfd, c.as_ptr(), *mode as libc::mode_t) })
            }
            Call::Open { path, flags, mode } => {
                let c = cpath(path)?;
                // SAFETY: valid C string; the caller owns the returned descriptor. The mode is
                // read by the kernel only with O_CREAT.
                let rc = unsafe {
                    libc::openat(
                        libc::AT_FDCWD,
                        c.as_ptr(),
                        flags | libc::O_CLOEXEC,
                        *mode as libc::c_uint,
                    )
                };
                if rc < 0 {
                    Err(Errno::last())
                } else {
                    Ok(Ret::Fd(rc))
                }
            }
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
                // both descriptors are the caller's and live for the call.
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
                PtyOp::Unlock => {
                    let unlock: libc::c_int = 0;
                    // SAFETY: fd is a live pty master; the argument points at a live int.
                    check_int(unsafe { libc::ioctl(*fd, libc::TIOCSPTLCK, &unlock) })
                }
                PtyOp::Number => {
                    let mut n: libc::c_uint = 0;
                    // SAFETY: fd is a live pty master; the kernel writes one uint through n.
                    let rc = unsafe { libc::ioctl(*fd, libc::TIOCGPTN, &mut n) };
                    if rc < 0 {
                        Err(Errno::last())
                    } else {
                        Ok(Ret::PtyNumber(n))
                    }
                }
            },
            Call::UnblockSignals => {
                let empty = [0u64; 1];
                // SAFETY: an empty set, a NULL old set, the kernel's sigset size.
                let rc = unsafe {
                    libc::syscall(
                        libc::SYS_rt_sigprocmask,
                        libc::SIG_SETMASK,
                        empty.as_ptr(),
                        std::ptr::null_mut::<u64>(),
                        8usize,
                    )
                };
                if rc < 0 {
                    Err(Errno::last())
                } else {
                    Ok(Ret::Zero)
                }
            }
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
                // for, and 8 is the kernel's sigset size.
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
                // SAFETY: integer arguments only.
                check_int(unsafe { libc::kill(*pid, *signal) })
            }
            Call::Wait4 { pid } => loop {
                let mut status = 0;
                // SAFETY: status is a live int; rusage may be NULL.
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
                let n = unsafe { libc::write(*fd, data.as_ptr().cast(), data.len()) };
                if n < 0 {
                    Err(Errno::last())
                } else {
                    Ok(Ret::Bytes(n as usize))
                }
            }
            Call::Close { fd, .. } => {
                // SAFETY: the caller gives up this descriptor, which it opened, exactly once.
                check_int(unsafe { libc::close(*fd) })
            }
            Call::SocketInet => {
                // SAFETY: socket(2) with constant arguments; the caller owns the result.
                let fd = unsafe {
                    libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0)
                };
                if fd < 0 {
                    Err(Errno::last())
                } else {
                    Ok(Ret::Fd(fd))
                }
            }
            Call::IoctlIfFlags { fd, name, set } => if_flags(*fd, name, *set),
            Call::PidfdOpen { pid } => {
                // SAFETY: pidfd_open(2) with a pid and no flags; the caller owns the result.
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
            Call::Pipe2 => {
                let mut fds = [0; 2];
                // SAFETY: fds is a live array of two ints for the kernel to fill.
                let rc = unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) };
                if rc < 0 {
                    Err(Errno::last())
                } else {
                    Ok(Ret::FdPair(fds[0], fds[1]))
                }
            }
            Call::Socketpair => {
                let mut fds = [0; 2];
                // SAFETY: fds is a live array of two ints for the kernel to fill.
                let rc = unsafe {
                    libc::socketpair(
                        libc::AF_UNIX,
                        libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC,
                        0,
                        fds.as_mut_ptr(),
                    )
                };
                if rc < 0 {
                    Err(Errno::last())
                } else {
                    Ok(Ret::FdPair(fds[0], fds[1]))
                }
            }
            Call::BlockSignals { signals } => {
                let set = signals
                    .iter()
                    .fold(0u64, |m, sig| m | 1u64 << (*sig as u64 - 1));
                sigprocmask(libc::SIG_BLOCK, set, true)
            }
            Call::RestoreSignals { mask } => sigprocmask(libc::SIG_SETMASK, *mask, false),
            Call::OpenTree { path } => {
                let c = cpath(path)?;
                // SAFETY: open_tree with a valid C string; the caller owns the result.
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
                let c = cstr(name)?;
                // SAFETY: valid C string; the caller owns the result.
                let fd = unsafe {
                    libc::memfd_create(c.as_ptr(), libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING)
                };
                if fd < 0 {
                    Err(Errno::last())
                } else {
                    Ok(Ret::Fd(fd))
                }
            }
            Call::AddSeals { fd } => {
                let seals = libc::F_SEAL_SEAL
                    | libc::F_SEAL_SHRINK
                    | libc::F_SEAL_GROW
                    | libc::F_SEAL_WRITE;
                // SAFETY: fcntl with integer arguments on the caller's descriptor.
                check_int(unsafe { libc::fcntl(*fd, libc::F_ADD_SEALS, seals) })
            }
            Call::Execveat { fd, argv, envp } => {
                let a: Vec<CString> = argv.iter().map(|s| cstr(s)).collect::<Result<_, _>>()?;
                let e: Vec<CString> = envp.iter().map(|s| cstr(s)).collect::<Result<_, _>>()?;
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
/// hide its own internal signals and change what strace shows).
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
            check_int(unsafe { libc::ioctl(fd, libc::SIOCGIFFLAGS, &mut req) })?;
            // SAFETY: SIOCGIFFLAGS filled the flags member of the union.
            Ok(Ret::IfFlags(
                unsafe { req.ifr_ifru.ifru_flags } as u16 as i32
            ))
        }
        Some(flags) => {
            req.ifr_ifru.ifru_flags = flags as libc::c_short;
            // SAFETY: as above, with the flags member set.
            check_int(unsafe { libc::ioctl(fd, libc::SIOCSIFFLAGS, &req) })
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
