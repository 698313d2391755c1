//! What this host offers a container engine, checked one feature at a time (`dockling system
//! check`).
//!
//! Each check probes the real kernel the way the engine will use it (an `openat2` with
//! `RESOLVE_IN_ROOT`, the namespace files, `/proc/filesystems`, the cgroup mounts, the seccomp
//! fields of `/proc/self/status`), says whether dockling can rely on it and, when it cannot,
//! what that switches off and what to do. Nothing is changed: the store's permissions are
//! only read here (opening the store tightens them).

use std::os::fd::AsFd;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use crate::cgroups::{self, Version};
use crate::image::store::PRIVATE_DIRS;
use crate::sys::fs as safefs;

/// How a check came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Present and usable.
    Ok,
    /// Missing, but dockling works without it (something is switched off or slower).
    Warn,
    /// Missing, and dockling cannot run containers safely without it.
    Missing,
}

impl Status {
    /// As printed in the STATUS column.
    pub fn label(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Warn => "warning",
            Status::Missing => "missing",
        }
    }
}

/// One line of `system check`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    /// What was checked (`openat2`, `overlayfs`...).
    pub name: &'static str,
    /// The outcome.
    pub status: Status,
    /// What was found, and when it is not ok, what that means and what to do.
    pub detail: String,
}

fn check(name: &'static str, status: Status, detail: impl Into<String>) -> Check {
    Check {
        name,
        status,
        detail: detail.into(),
    }
}

/// Every check, in the order a container start needs them.
pub fn checks(root: &Path) -> Vec<Check> {
    vec![
        user(),
        kernel(),
        openat2(),
        namespaces(),
        overlayfs(),
        erofs(root),
        cgroup_mode(),
        devices_cgroup(),
        seccomp(),
        store(root),
    ]
}

fn user() -> Check {
    if nix::unistd::geteuid().is_root() {
        check("root", Status::Ok, "running as root")
    } else {
        check(
            "root",
            Status::Missing,
            "not root: namespaces, mounts and cgroups need it; run dockling with sudo",
        )
    }
}

/// (major, minor) of a kernel release string such as `6.18.0-1-amd64`.
pub fn kernel_version(release: &str) -> Option<(u32, u32)> {
    let mut parts = release.split(['.', '-']);
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    Some((major, minor))
}

fn kernel() -> Check {
    let release = nix::sys::utsname::uname()
        .map(|u| u.release().to_string_lossy().into_owned())
        .unwrap_or_default();
    match kernel_version(&release) {
        Some(v) if v >= (5, 12) => check("kernel", Status::Ok, format!("Linux {release}")),
        Some(v) if v >= (5, 6) => check(
            "kernel",
            Status::Warn,
            format!("Linux {release}: before 5.12 there is no mount_setattr, so the engine binary is protected by a memfd copy (slower start)"),
        ),
        _ => check(
            "kernel",
            Status::Missing,
            format!("Linux {release}: dockling needs 5.6 or later (openat2 keeps image symlinks inside the image)"),
        ),
    }
}

fn openat2() -> Check {
    // The probe the unpacker and the rootfs code rely on: ".." from the root of a lookup
    // must stay at that root.
    let probe = safefs::open_root(Path::new("/")).and_then(|root| {
        safefs::openat2(
            root.as_fd(),
            Path::new("../../.."),
            libc::O_PATH | libc::O_DIRECTORY,
            0,
            safefs::IN_ROOT,
        )
    });
    match probe {
        Ok(_) => check(
            "openat2",
            Status::Ok,
            "RESOLVE_IN_ROOT keeps every lookup inside an image's tree",
        ),
        Err(e) => check(
            "openat2",
            Status::Missing,
            format!("openat2 RESOLVE_IN_ROOT: {e}: images cannot be unpacked or mounted safely; use Linux 5.6 or later"),
        ),
    }
}

fn namespaces() -> Check {
    let kinds = ["pid", "mnt", "uts", "ipc", "net", "cgroup", "user"];
    let missing: Vec<&str> = kinds
        .iter()
        .copied()
        .filter(|k| !Path::new("/proc/self/ns").join(k).exists())
        .collect();
    if missing.is_empty() {
        check("namespaces", Status::Ok, kinds.join(" "))
    } else {
        check(
            "namespaces",
            Status::Missing,
            format!(
                "this kernel has no {} namespace: the matching --pid/--network/... host switch is the only way to run",
                missing.join(", ")
            ),
        )
    }
}

fn overlayfs() -> Check {
    let fs = std::fs::read_to_string("/proc/filesystems").unwrap_or_default();
    if fs
        .lines()
        .any(|l| l.split_whitespace().last() == Some("overlay"))
    {
        check("overlayfs", Status::Ok, "layers are mounted, not copied")
    } else {
        check(
            "overlayfs",
            Status::Warn,
            "overlay is not in /proc/filesystems (modprobe overlay, or run with --layers copy)",
        )
    }
}

/// `--layers erofs`: an EROFS image of an empty layer, made in an unnamed temporary file, is
/// given to the kernel as a file-backed EROFS (fsopen/fsconfig, never mounted).
fn erofs(root: &Path) -> Check {
    match crate::layers::erofs::supported(&crate::sys::Sys::quiet(), root) {
        Ok(()) => check(
            "erofs",
            Status::Ok,
            "file-backed EROFS: --layers erofs mounts each layer from its tar, nothing unpacked",
        ),
        Err(why) => check(
            "erofs",
            Status::Warn,
            format!("{why}: --layers erofs unpacks the layers instead"),
        ),
    }
}

fn cgroup_mode() -> Check {
    match cgroups::discover() {
        Ok((Version::V2, _)) => check("cgroups", Status::Ok, "v2 (unified) at /sys/fs/cgroup"),
        Ok((Version::V1, h)) if h.is_empty() => check(
            "cgroups",
            Status::Warn,
            "no cgroup hierarchy is mounted: limits (-m, --cpus, --pids-limit) need --no-cgroups off",
        ),
        Ok((Version::V1, h)) => {
            let mut controllers: Vec<&str> = h
                .iter()
                .flat_map(|h| h.options.split(','))
                .filter(|o| !o.is_empty() && !o.starts_with("name=") && !o.contains('='))
                .collect();
            controllers.sort_unstable();
            controllers.dedup();
            let hybrid = std::fs::read_to_string("/proc/self/mountinfo")
                .unwrap_or_default()
                .lines()
                .any(|l| l.contains(" - cgroup2 "));
            check(
                "cgroups",
                Status::Ok,
                format!(
                    "v1{}: {}",
                    if hybrid { " (hybrid)" } else { "" },
                    controllers.join(" ")
                ),
            )
        }
        Err(e) => check("cgroups", Status::Warn, format!("{e}")),
    }
}

fn devices_cgroup() -> Check {
    match cgroups::discover() {
        Ok((Version::V2, _)) => check(
            "devices",
            Status::Ok,
            "cgroup v2: a BPF device program limits which devices a container opens",
        ),
        Ok((Version::V1, h)) if h.iter().any(|h| h.has("devices")) => check(
            "devices",
            Status::Ok,
            "v1 devices controller: only Docker's default devices can be opened",
        ),
        _ => check(
            "devices",
            Status::Missing,
            "no devices cgroup: a container could open any device node it creates; mount the v1 devices hierarchy",
        ),
    }
}

fn seccomp() -> Check {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    if status.lines().any(|l| l.starts_with("Seccomp_filters:")) {
        check(
            "seccomp",
            Status::Ok,
            "filters available: Docker's default profile applies",
        )
    } else if status.lines().any(|l| l.starts_with("Seccomp:")) {
        check("seccomp", Status::Ok, "filter mode available")
    } else {
        check(
            "seccomp",
            Status::Missing,
            "this kernel has no seccomp: containers could make any syscall their capabilities allow",
        )
    }
}

/// The store's directories and the widest mode each may have (what `Store::open` creates and
/// tightens: the root 0711, [`PRIVATE_DIRS`] 0700): other users must not be able to reach
/// setuid binaries or device nodes inside unpacked layers and containers.
fn store_modes() -> impl Iterator<Item = (&'static str, u32)> {
    std::iter::once(("", 0o711)).chain(PRIVATE_DIRS.iter().map(|d| (*d, 0o700)))
}

fn store(root: &Path) -> Check {
    if !root.exists() {
        return check(
            "store",
            Status::Ok,
            format!(
                "{} does not exist yet (it is created 0711, its parts 0700)",
                root.display()
            ),
        );
    }
    let mut loose = Vec::new();
    for (sub, widest) in store_modes() {
        let p = root.join(sub);
        if let Ok(md) = std::fs::symlink_metadata(&p) {
            let mode = md.permissions().mode() & 0o7777;
            if mode & !widest != 0 || !md.is_dir() {
                loose.push(format!("{} is {mode:04o}", p.display()));
            }
        }
    }
    if loose.is_empty() {
        check(
            "store",
            Status::Ok,
            format!(
                "{}: only root can reach layers and containers",
                root.display()
            ),
        )
    } else {
        check(
            "store",
            Status::Missing,
            format!(
                "{}: other users could run setuid files from unpacked layers; any dockling command that opens the store tightens it",
                loose.join(", ")
            ),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_versions_parse() {
        assert_eq!(kernel_version("6.18.0-1-amd64"), Some((6, 18)));
        assert_eq!(kernel_version("5.4.0"), Some((5, 4)));
        assert_eq!(kernel_version("garbage"), None);
    }

    #[test]
    fn a_world_traversable_store_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        for sub in ["layers", "containers", "oci"] {
            std::fs::create_dir(dir.path().join(sub)).unwrap();
            std::fs::set_permissions(dir.path().join(sub), std::fs::Permissions::from_mode(0o700))
                .unwrap();
        }
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o711)).unwrap();
        assert_eq!(store(dir.path()).status, Status::Ok);
        std::fs::set_permissions(
            dir.path().join("layers"),
            std::fs::Permissions::from_mode(0o755),
        )
        .unwrap();
        let c = store(dir.path());
        assert_eq!(c.status, Status::Missing);
        assert!(c.detail.contains("layers is 0755"), "{}", c.detail);
    }
}
