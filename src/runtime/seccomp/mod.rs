//! Seccomp: the kernel asks a small program about every syscall the container makes.
//!
//! dockling applies Docker's default profile ([`default`]): an allow-list of about 350
//! syscalls; everything else answers `EPERM`. Some calls are allowed only with certain
//! arguments (`clone` without namespace flags, `personality` with Docker's values, `socket`
//! for most families), `clone3` answers `ENOSYS` so the C library falls back to `clone` (whose
//! flags the filter can read), and the calls that need a capability (mount, unshare, setns,
//! reboot, modules, clocks, ptrace...) are allowed only when the container keeps it, so
//! `--cap-add SYS_ADMIN` gives both the capability and its syscalls, as in Docker.
//! `--security-opt seccomp=<file>` reads a profile in Docker's JSON format instead
//! ([`profile`]); `seccomp=unconfined` and `--privileged` install none.
//!
//! The profile is resolved once per container into the runtime spec's `linux.seccomp` (the
//! rules for its capabilities, architecture and kernel); that value is written into the
//! bundle's `config.json`, so runc and crun install the same policy, and compiled by
//! [`bpf::compile`] into the program the traced `seccomp(2)` call installs. See seccomp(2),
//! Documentation/userspace-api/seccomp_filter.rst, and moby's `profiles/seccomp/default.json`.

pub mod bpf;
pub mod default;
pub mod profile;

use oci_spec::runtime::LinuxSeccomp;

use crate::error::Result;

pub use profile::{Profile, Target};

/// The `CAP_` names of capability numbers.
pub fn cap_names(caps: &[u32]) -> Vec<String> {
    caps.iter()
        .filter_map(|c| super::caps::NAMES.get(*c as usize))
        .map(|n| format!("CAP_{n}"))
        .collect()
}

/// Resolve `profile` for a container whose bounding set is `caps`, on this machine's
/// architecture and `kernel`, and check that it compiles.
pub fn policy(profile: &Profile, caps: &[u32], kernel: (u32, u32)) -> Result<Option<LinuxSeccomp>> {
    resolve_checked(profile, caps, kernel, true)
}

/// [`policy`] of Docker's default profile (`default::profile`), resolved but not compiled: its
/// tests compile it, and the container's process compiles what it installs anyway (a program
/// that did not compile would stop the start there, before `execve`). Compiling it twice
/// took about 0.4 ms of every start.
pub fn builtin_policy(caps: &[u32], kernel: (u32, u32)) -> Result<Option<LinuxSeccomp>> {
    resolve_checked(&default::profile(), caps, kernel, false)
}

fn resolve_checked(
    profile: &Profile,
    caps: &[u32],
    kernel: (u32, u32),
    check: bool,
) -> Result<Option<LinuxSeccomp>> {
    let names = cap_names(caps);
    let target = Target {
        arch: profile::native_arch(),
        caps: &names,
        kernel,
    };
    let bad = |reason: String| crate::runtime::RuntimeError::SeccompPolicy {
        profile: profile.label(),
        reason,
    };
    let resolved = profile::resolve(profile, &target).map_err(bad)?;
    if let (Some(p), true) = (&resolved, check) {
        bpf::compile(p).map_err(bad)?;
    }
    Ok(resolved)
}

/// Docker's default profile for a container whose bounding set is `caps`.
pub fn default_policy(caps: &[u32], kernel: (u32, u32)) -> LinuxSeccomp {
    match policy(&default::profile(), caps, kernel) {
        Ok(Some(p)) => p,
        Ok(None) => unreachable!("Docker's default profile has rules"),
        Err(e) => panic!("Docker's default profile does not resolve: {e}"),
    }
}

#[cfg(test)]
mod tests;
