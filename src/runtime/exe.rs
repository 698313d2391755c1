//! Protecting the engine binary from the container (CVE-2019-5736).
//!
//! Between `clone` and `execve` the container's first process *is* dockling: `/proc/<pid>/exe`
//! points at the host's binary. A hostile image whose entrypoint is `#!/proc/self/exe` makes
//! the kernel run that binary again inside the container, and a process there could then open
//! it for writing and replace the host's dockling. So container starts run from a binary that
//! cannot be written: dockling re-executes itself from a *detached, read-only bind mount* of
//! its own file (`open_tree(2)` + `mount_setattr(2)` + `execveat(2)`, as runc 1.2 does: no
//! copy, attached nowhere, so nothing else sees it), or, on kernels without the new mount API,
//! from a sealed copy in memory (`memfd_create(2)` + `F_SEAL_*`, as crun does). A binary that
//! already sits on a read-only mount needs neither.

use std::ffi::CString;
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

const SEALS: libc::c_int =
    libc::F_SEAL_SEAL | libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_WRITE;

/// True when this process runs from a binary nothing can write: a sealed memfd, or a file on
/// a read-only mount (the detached bind mount of `reexec_sealed`, or a read-only /usr).
pub fn is_sealed() -> bool {
    let Ok(f) = File::open("/proc/self/exe") else {
        return false;
    };
    // SAFETY: F_GET_SEALS on a descriptor we own.
    let seals = unsafe { libc::fcntl(f.as_raw_fd(), libc::F_GET_SEALS) };
    if seals >= 0 && seals & SEALS == SEALS {
        return true;
    }
    nix::sys::statvfs::fstatvfs(&f)
        .is_ok_and(|v| v.flags().contains(nix::sys::statvfs::FsFlags::ST_RDONLY))
}

/// This binary, opened through a detached read-only bind mount of itself.
fn read_only_self() -> io::Result<OwnedFd> {
    let path = CString::new("/proc/self/exe").expect("no NUL");
    // SAFETY: open_tree with a valid C string; the result is checked and then owned.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_open_tree,
            libc::AT_FDCWD,
            path.as_ptr(),
            (libc::OPEN_TREE_CLONE | libc::OPEN_TREE_CLOEXEC) as libc::c_uint,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a new descriptor that nothing else owns.
    let tree = unsafe { OwnedFd::from_raw_fd(fd as i32) };
    let attr = libc::mount_attr {
        attr_set: libc::MOUNT_ATTR_RDONLY,
        attr_clr: 0,
        propagation: 0,
        userns_fd: 0,
    };
    let empty = CString::new("").expect("no NUL");
    // SAFETY: mount_setattr on our detached mount, with a live struct of the size passed.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            tree.as_raw_fd(),
            empty.as_ptr(),
            libc::AT_EMPTY_PATH as libc::c_uint,
            &attr as *const libc::mount_attr,
            std::mem::size_of::<libc::mount_attr>(),
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(tree)
}

/// A sealed in-memory copy of this binary.
fn sealed_copy() -> io::Result<OwnedFd> {
    let mut src = File::open("/proc/self/exe")?;
    let name = CString::new("dockling").expect("no NUL");
    // SAFETY: valid C string; the returned fd is checked and then owned.
    let fd =
        unsafe { libc::memfd_create(name.as_ptr(), libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: memfd_create returned a new descriptor nobody else owns.
    let mut copy = File::from(unsafe { OwnedFd::from_raw_fd(fd) });
    io::copy(&mut src, &mut copy)?;
    // SAFETY: fcntl on our own descriptor.
    if unsafe { libc::fcntl(copy.as_raw_fd(), libc::F_ADD_SEALS, SEALS) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(OwnedFd::from(copy))
}

/// Re-execute this same command from a binary nothing can write (a read-only bind mount of
/// itself, else a sealed in-memory copy), unless already doing so. Returns only on failure (then the caller goes on, warning, from the real binary).
pub fn reexec_sealed() -> io::Result<()> {
    if is_sealed() || std::env::var_os("DOCKLING_NO_REEXEC").is_some() {
        return Ok(());
    }
    let exe = match read_only_self() {
        Ok(fd) => fd,
        Err(_) => sealed_copy()?,
    };
    let args: Vec<CString> = std::env::args_os()
        .map(|a| {
            CString::new(std::os::unix::ffi::OsStrExt::as_bytes(a.as_os_str()))
                .expect("argv has no NUL")
        })
        .collect();
    let env: Vec<CString> = std::env::vars_os()
        .map(|(k, v)| {
            let mut s = std::os::unix::ffi::OsStrExt::as_bytes(k.as_os_str()).to_vec();
            s.push(b'=');
            s.extend_from_slice(std::os::unix::ffi::OsStrExt::as_bytes(v.as_os_str()));
            CString::new(s).expect("env has no NUL")
        })
        .collect();
    // execveat(fd, "", AT_EMPTY_PATH) runs the file the descriptor names; an ELF binary needs
    // no path, so the close-on-exec descriptor is fine.
    let e = nix::unistd::execveat(
        Some(exe.as_raw_fd()),
        c"",
        &args,
        &env,
        nix::fcntl::AtFlags::AT_EMPTY_PATH,
    )
    .unwrap_err();
    Err(io::Error::from_raw_os_error(e as i32))
}
