//! Protecting the engine binary from the container (CVE-2019-5736).
//!
//! Between `clone` and `execve` the container's first process *is* dockling: `/proc/<pid>/exe`
//! points at the host's binary. A hostile image whose entrypoint is `#!/proc/self/exe` makes
//! the kernel run that binary again inside the container, and a process there could then open
//! it for writing and replace the host's dockling. Like crun, dockling runs container starts
//! from a sealed, read-only copy of itself in memory (`memfd_create(2)` + `F_SEAL_*`), so what
//! the container could reach is a copy that cannot be written.

use std::ffi::CString;
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

const SEALS: libc::c_int =
    libc::F_SEAL_SEAL | libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_WRITE;

/// True when this process already runs from a sealed copy.
pub fn is_sealed() -> bool {
    let Ok(f) = File::open("/proc/self/exe") else {
        return false;
    };
    // SAFETY: F_GET_SEALS on a descriptor we own.
    let seals = unsafe { libc::fcntl(f.as_raw_fd(), libc::F_GET_SEALS) };
    seals >= 0 && seals & SEALS == SEALS
}

/// Re-execute this same command from a sealed in-memory copy of the binary, unless already
/// doing so. Returns only on failure (then the caller goes on, warning, from the real binary).
pub fn reexec_sealed() -> io::Result<()> {
    if is_sealed() || std::env::var_os("DOCKLING_NO_REEXEC").is_some() {
        return Ok(());
    }
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
    // The fd must survive execve (fexecve reads it through /proc/self/fd): drop CLOEXEC.
    // SAFETY: fcntl on our own descriptor.
    unsafe { libc::fcntl(copy.as_raw_fd(), libc::F_SETFD, 0) };
    let e = nix::unistd::fexecve(copy.as_raw_fd(), &args, &env).unwrap_err();
    Err(io::Error::from_raw_os_error(e as i32))
}
