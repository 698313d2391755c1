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
            Call::Mknod {
                path,
                mode,
                major,
                minor,
            } => {
                let p = cpath(path)?;
                let dev = libc::makedev(*major as u32, *minor as u32);
                // SAFETY: valid C string; AT_FDCWD resolves relative to the working directory.
                check_int(unsafe {
                    libc::mknodat(
                        libc::AT_FDCWD,
                        p.as_ptr(),
                        libc::S_IFCHR | *mode as libc::mode_t,
                        dev,
                    )
                })
            }
            Call::Symlink { target, link } => {
                let t = cpath(target)?;
                let l = cpath(link)?;
                // SAFETY: two valid C strings.
                check_int(unsafe { libc::symlink(t.as_ptr(), l.as_ptr()) })
            }
            Call::Rmdir { path } => {
                let p = cpath(path)?;
                // SAFETY: valid C string.
                check_int(unsafe { libc::rmdir(p.as_ptr()) })
            }
            Call::WriteFile { path, data, create } => {
                let p = cpath(path)?;
                let flags = match create {
                    true => libc::O_WRONLY | libc::O_CLOEXEC | libc::O_CREAT | libc::O_TRUNC,
                    false => libc::O_WRONLY | libc::O_CLOEXEC,
                };
                // SAFETY: valid C string; the descriptor is closed below on every path.
                let fd = unsafe { libc::open(p.as_ptr(), flags, 0o644 as libc::c_uint) };
                if fd < 0 {
                    return Err(Errno::last());
                }
                // SAFETY: fd is ours and open; the buffer lives for the call.
                let n = unsafe { libc::write(fd, data.as_ptr().cast(), data.len()) };
                let err = Errno::last();
                // SAFETY: closing the descriptor opened above, exactly once.
                unsafe { libc::close(fd) };
                if n < 0 {
                    Err(err)
                } else {
                    Ok(Ret::Bytes(n as usize))
                }
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
                // SAFETY: no arguments.
                check_int(unsafe { libc::setsid() })
            }
            Call::IoctlSetCtty { fd } => {
                // SAFETY: TIOCSCTTY takes an integer argument.
                check_int(unsafe { libc::ioctl(*fd, libc::TIOCSCTTY, 0) })
            }
            Call::Dup2 { old, new } => {
                // SAFETY: integer arguments only.
                check_int(unsafe { libc::dup2(*old, *new) }).map(|_| Ret::Zero)
            }
            Call::CloseRange { first } => {
                // SAFETY: integer arguments only; CLOSE_RANGE_CLOEXEC (4) marks, not closes,
                // so descriptors still in use until execve (the sync pipe) keep working.
                check(unsafe { libc::syscall(libc::SYS_close_range, *first, u32::MAX, 4u32) })
            }
            Call::IfUp { name } => if_up(name),
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
            Call::Open { path, flags } => {
                let c = cpath(path)?;
                // SAFETY: valid C string; the caller owns the returned descriptor.
                let rc =
                    unsafe { libc::openat(libc::AT_FDCWD, c.as_ptr(), flags | libc::O_CLOEXEC) };
                if rc < 0 {
                    Err(Errno::last())
                } else {
                    Ok(Ret::Fd(rc))
                }
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
        }
    }
}

/// Bring an interface up: read its flags, add `IFF_UP`, write them back.
fn if_up(name: &str) -> Result<Ret, Errno> {
    if name.len() >= libc::IFNAMSIZ {
        return Err(Errno::EINVAL);
    }
    // SAFETY: socket(2) with constant arguments; the fd is closed below.
    let sock = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if sock < 0 {
        return Err(Errno::last());
    }
    // SAFETY: ifreq is plain old data; all-zero is a valid value.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, src) in req.ifr_name.iter_mut().zip(name.bytes()) {
        *dst = src as libc::c_char;
    }
    // SAFETY: req is a live ifreq with a NUL-terminated name (zeroed above).
    let mut rc = unsafe { libc::ioctl(sock, libc::SIOCGIFFLAGS, &mut req) };
    if rc == 0 {
        // SAFETY: SIOCGIFFLAGS filled the flags member of the union.
        unsafe { req.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short };
        // SAFETY: as above.
        rc = unsafe { libc::ioctl(sock, libc::SIOCSIFFLAGS, &req) };
    }
    let err = Errno::last();
    // SAFETY: closing our own socket once.
    unsafe { libc::close(sock) };
    if rc < 0 {
        Err(err)
    } else {
        Ok(Ret::Zero)
    }
}
