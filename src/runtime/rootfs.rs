//! The container's `/`: layers mounted, the kernel file systems on top, devices, the files
//! that make it a host of its own, volumes, masked paths, then `pivot_root`.
//!
//! Everything here runs in the child, inside the new mount namespace, before `execve`. Mount
//! targets inside the image are resolved with `openat2(RESOLVE_IN_ROOT)` (see
//! [`crate::sys::fs`]): an image whose volume target is a symlink to a host path cannot make us
//! mount over the host. `/proc`, `/sys` and `/dev` must be real directories of the image (runc
//! refuses the same): a symlink there would carry the kernel file systems, and with them the
//! masked paths and the device nodes, somewhere else. Masks, read-only binds and device nodes
//! are then applied through descriptors resolved inside the container, never through a path
//! string an image could redirect.

use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::mount::{MntFlags, MsFlags};

use crate::error::{Error, Result};
use crate::plan::StepId;
use crate::spec::{LayersMode, RootfsMode, RunSpec};
use crate::sys::{fs as safefs, Call, Sys};

pub use crate::spec::MountEntry;

const NOSUID_NOEXEC_NODEV: MsFlags = MsFlags::from_bits_truncate(
    MsFlags::MS_NOSUID.bits() | MsFlags::MS_NOEXEC.bits() | MsFlags::MS_NODEV.bits(),
);

fn entry(
    fstype: &str,
    source: &str,
    target: &str,
    flags: MsFlags,
    data: Option<&str>,
) -> MountEntry {
    MountEntry {
        fstype: fstype.into(),
        source: source.into(),
        target: target.into(),
        flags,
        data: data.map(String::from),
    }
}

/// The kernel file systems every container gets (Docker's defaults).
pub fn default_mounts(spec: &RunSpec) -> Vec<MountEntry> {
    let mut sys_flags = NOSUID_NOEXEC_NODEV;
    if !spec.privileged {
        sys_flags |= MsFlags::MS_RDONLY;
    }
    vec![
        entry("proc", "proc", "/proc", NOSUID_NOEXEC_NODEV, None),
        entry(
            "tmpfs",
            "tmpfs",
            "/dev",
            MsFlags::MS_NOSUID | MsFlags::MS_STRICTATIME,
            Some("mode=755,size=65536k"),
        ),
        entry(
            "devpts",
            "devpts",
            "/dev/pts",
            MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC,
            Some("newinstance,ptmxmode=0666,mode=0620,gid=5"),
        ),
        entry("sysfs", "sysfs", "/sys", sys_flags, None),
        entry("mqueue", "mqueue", "/dev/mqueue", NOSUID_NOEXEC_NODEV, None),
        entry(
            "tmpfs",
            "shm",
            "/dev/shm",
            NOSUID_NOEXEC_NODEV,
            Some("mode=1777,size=65536k"),
        ),
    ]
}

/// Paths Docker hides, and whether each is a directory: files get `/dev/null` bound over
/// them, directories an empty read-only tmpfs. Paths this kernel does not have are skipped.
pub const MASKED: &[(&str, bool)] = &[
    ("/proc/asound", true),
    ("/proc/acpi", true),
    ("/proc/interrupts", false),
    ("/proc/kcore", false),
    ("/proc/keys", false),
    ("/proc/latency_stats", false),
    ("/proc/timer_list", false),
    ("/proc/timer_stats", false),
    ("/proc/sched_debug", false),
    ("/proc/scsi", true),
    ("/sys/firmware", true),
    ("/sys/devices/virtual/powercap", true),
];

/// Paths Docker makes read-only.
pub const READONLY: &[&str] = &[
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// The character devices of a default container: (name, major, minor).
pub const DEVICES: &[(&str, u64, u64)] = &[
    ("null", 1, 3),
    ("zero", 1, 5),
    ("full", 1, 7),
    ("random", 1, 8),
    ("urandom", 1, 9),
    ("tty", 5, 0),
];

/// Links in `/dev` every Linux program expects.
pub const DEV_LINKS: &[(&str, &str)] = &[
    ("/proc/self/fd", "fd"),
    ("/proc/self/fd/0", "stdin"),
    ("/proc/self/fd/1", "stdout"),
    ("/proc/self/fd/2", "stderr"),
    ("pts/ptmx", "ptmx"),
    ("/proc/kcore", "core"),
];

/// Mount points that must be real directories of the image, not symlinks: the kernel file
/// systems mounted there are what the masked paths and the device nodes are made in.
pub const REAL_DIRS: &[&str] = &["/proc", "/sys", "/dev"];

/// The descriptor number the recorder answers every open with: what a dry run shows for the
/// descriptor of the container's `/dev`.
const DRY_RUN_FD: i32 = 100;

/// A resolved mount target: a readable path when nothing in the image redirected it, otherwise
/// the `/proc/self/fd/N` of the resolved object (kept open until the mount is done).
struct Target {
    path: PathBuf,
    _fd: Option<OwnedFd>,
}

/// The mounts that are the container's own (`Rootfs::mount_config`): the root's and those of
/// the file systems an OCI config mounts fresh, by mount ID. A bind brings another tree,
/// whose nodes are that tree's: no device node is made on one.
#[derive(Debug, Default)]
pub struct OwnMounts(Vec<u64>);

/// What [`ensure_target`] asks of each directory before it makes something in it.
type Guard<'a> = Option<&'a dyn Fn(&OwnedFd) -> Result<()>>;

/// Open (creating if needed) a mount target inside the rootfs: a directory, or an empty file
/// when `file`. Every lookup is an `openat2(RESOLVE_IN_ROOT)` from the rootfs, so nothing the
/// image contains can lead it outside; missing directories are made one `mkdirat` at a time
/// on the descriptor of their parent, each after `guard` accepted that parent (a bind's: not
/// in /proc or /sys; a device node's: on one of the container's own mounts). Returns an
/// `O_PATH` descriptor of the target.
fn ensure_target(
    sys: &Sys,
    root: &OwnedFd,
    rel: &Path,
    file: bool,
    guard: Guard<'_>,
) -> Result<OwnedFd> {
    let dir_flags = libc::O_PATH | libc::O_DIRECTORY;
    let want = if file { libc::O_PATH } else { dir_flags };
    match sys.openat2(root.as_fd(), rel, want, 0, safefs::IN_ROOT) {
        Err(e) if e.errno == nix::errno::Errno::ENOENT => {}
        other => return Ok(other?),
    }
    let dirs = if file {
        rel.parent().unwrap_or(Path::new(""))
    } else {
        rel
    };
    let mut dir = sys.openat2(root.as_fd(), Path::new("."), dir_flags, 0, safefs::IN_ROOT)?;
    let mut walked = PathBuf::new();
    for comp in dirs.components() {
        let std::path::Component::Normal(name) = comp else {
            continue;
        };
        walked.push(name);
        if let Some(guard) = guard {
            guard(&dir)?;
        }
        sys.mkdirat(dir.as_fd(), Path::new(name), 0o755)?;
        // From the root again, so a component that is a symlink stays inside it.
        dir = sys.openat2(root.as_fd(), &walked, dir_flags, 0, safefs::IN_ROOT)?;
    }
    if !file {
        return Ok(dir);
    }
    if let Some(guard) = guard {
        guard(&dir)?;
    }
    drop(sys.openat2(
        root.as_fd(),
        rel,
        libc::O_CREAT | libc::O_WRONLY,
        0o644,
        safefs::IN_ROOT,
    )?);
    Ok(sys.openat2(root.as_fd(), rel, libc::O_PATH, 0, safefs::IN_ROOT)?)
}

/// The target for the descriptor `fd` of `inside`: always its `/proc/self/fd/N`, kept open
/// until the mount is done. mount(2) given a path string would resolve it again, and between
/// our lookup and that second walk a symlink could be swapped in (a volume shared with
/// another container can change at any time: runc's CVE-2021-30465); through the descriptor
/// the kernel mounts on exactly the object openat2 found inside the rootfs.
fn fd_target(fd: OwnedFd) -> Result<Target> {
    Ok(Target {
        path: safefs::fd_path(&fd),
        _fd: Some(fd),
    })
}

/// Why a `/proc`, `/sys` or `/dev` of the image is refused.
fn not_a_real_dir(inside: &Path, errno: nix::errno::Errno) -> Error {
    let what = match errno {
        nix::errno::Errno::ELOOP => "a symlink",
        _ => "not a directory",
    };
    super::RuntimeError::NotARealDir {
        inside: inside.to_path_buf(),
        what,
    }
    .into()
}

fn resolve_target(
    sys: &Sys,
    root: &OwnedFd,
    inside: &Path,
    file: bool,
    bind: bool,
) -> Result<Target> {
    // openat2(RESOLVE_IN_ROOT) follows the image's symlinks without ever leaving the rootfs;
    // what is missing is created one mkdirat at a time. Only a symlink that dangles (`/data ->
    // /srv/data`, `/srv` absent) needs its target worked out first, so that it is created
    // inside the rootfs, as Docker does: that lookup, too, goes through descriptors only.
    // Nothing of ours is created inside /proc or /sys for a bind.
    let kernel_fs = |dir: &OwnedFd| refuse_kernel_fs(sys, dir, inside);
    let fd = ensure_resolved(
        sys,
        root,
        inside,
        file,
        bind.then_some(&kernel_fs as &dyn Fn(&OwnedFd) -> Result<()>),
    )?;
    if bind {
        refuse_kernel_fs(sys, &fd, inside)?;
    }
    fd_target(fd)
}

/// [`ensure_target`] of `inside`, whose missing parts are made where the image's symlinks
/// lead: a dangling one on the way has its target worked out inside the root first.
fn ensure_resolved(
    sys: &Sys,
    root: &OwnedFd,
    inside: &Path,
    file: bool,
    guard: Guard<'_>,
) -> Result<OwnedFd> {
    match ensure_target(sys, root, &safefs::relative(inside), file, guard) {
        Err(Error::Sys(e)) if e.errno == nix::errno::Errno::ENOENT => {
            let resolved = safefs::resolve_in_root_with(root.as_fd(), inside, |dir, p, f, r| {
                sys.openat2(dir, p, f, 0, r)
                    .map_err(|e| std::io::Error::from_raw_os_error(e.errno as i32))
            })
            .map_err(Error::io("resolve in the container", inside))?;
            ensure_target(sys, root, &resolved, file, guard)
        }
        other => other,
    }
}

/// A bind that lands inside /proc or /sys (an image's `etc/hosts -> /proc/sys/...`) would put
/// a file of ours over a kernel knob; runc refuses such targets, and so do we. The file system
/// the descriptor is on says where it landed, whatever path led there.
fn refuse_kernel_fs(sys: &Sys, fd: &OwnedFd, inside: &Path) -> Result<()> {
    let kind = sys
        .fstatfs(fd.as_fd(), inside)
        .map_err(|e| {
            Error::io("statfs", inside)(std::io::Error::from_raw_os_error(e.errno as i32))
        })?
        .f_type;
    if kind == libc::PROC_SUPER_MAGIC || kind == libc::SYSFS_MAGIC {
        return Err(super::RuntimeError::IntoKernelFs {
            inside: inside.to_path_buf(),
        }
        .into());
    }
    Ok(())
}

/// `path` with `.` and `..` taken out by name only (`/a/../b` → `/b`; `..` above `/` stays
/// at `/`), as Go's `filepath.Clean` does: what the destination names before the image's
/// symlinks are followed.
pub fn lexical_clean(path: &Path) -> PathBuf {
    use std::path::Component;
    let mut out = PathBuf::from("/");
    for c in path.components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::ParentDir => {
                out.pop();
            }
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
        }
    }
    out
}

/// Files under `/proc` a bind mount may cover (runc allows the same list: the files LXCFS
/// emulates, so a container can see its own limits in `free` or `top`).
pub const PROC_BIND_ALLOWED: &[&str] = &[
    "/proc/cpuinfo",
    "/proc/diskstats",
    "/proc/meminfo",
    "/proc/stat",
    "/proc/swaps",
    "/proc/uptime",
    "/proc/loadavg",
    "/proc/slabinfo",
    "/proc/net/dev",
    "/proc/sys/kernel/ns_last_pid",
    "/proc/sys/crypto/fips_enabled",
];

/// Refuse a volume whose destination (`inside`, as named or once resolved in the image) is
/// somewhere no bind mount may go. Over `/proc` only the host's procfs may go (runc's rule:
/// anything else would hide the kernel's view of the container's processes, and the masked
/// paths with it); inside `/proc` only [`PROC_BIND_ALLOWED`] (a bind over `/proc/sys/...` or
/// `/proc/sysrq-trigger` would undo what masking and read-only paths protect). Over `/dev`
/// dockling would hide the device nodes it just made (Docker then skips making them; dockling
/// does not do that yet).
pub fn check_volume_target(v: &crate::spec::Volume, inside: &Path) -> Result<()> {
    let dst = lexical_clean(inside);
    let source = match &v.name {
        Some(name) => name.clone(),
        None => v.source.display().to_string(),
    };
    let spec = format!(
        "{source}:{}{}",
        v.target.display(),
        if v.readonly { ":ro" } else { "" }
    );
    if dst == Path::new("/") {
        return Err(Error::Usage(format!(
            "invalid volume specification: '{spec}': invalid mount config for type \"bind\": invalid specification: destination can't be '/'"
        )));
    }
    if dst == Path::new("/proc") {
        let is_proc = nix::sys::statfs::statfs(&v.source)
            .is_ok_and(|s| s.filesystem_type() == nix::sys::statfs::PROC_SUPER_MAGIC);
        if !is_proc {
            return Err(Error::Usage(format!(
                "invalid volume '{spec}': \"{}\" cannot be mounted because it is not of type proc: the container's /proc is its own procfs; bind a single file runc allows ({}) instead",
                dst.display(),
                PROC_BIND_ALLOWED.join(", ")
            )));
        }
    } else if dst.starts_with("/proc") && !PROC_BIND_ALLOWED.iter().any(|p| dst == Path::new(p)) {
        return Err(Error::Usage(format!(
            "invalid volume '{spec}': \"{}\" cannot be mounted because it is inside /proc: only {} may be covered",
            dst.display(),
            PROC_BIND_ALLOWED.join(", ")
        )));
    }
    if dst == Path::new("/dev") {
        return Err(Error::Usage(format!(
            "invalid volume '{spec}': dockling makes the container's /dev itself (its device nodes, /dev/pts, /dev/shm) and does not support a volume over all of it yet: bind what you need inside it, like /dev/snd:/dev/snd"
        )));
    }
    Ok(())
}

/// The child's view of everything it mounts: rootfs path, its fd for safe lookups.
pub struct Rootfs<'a> {
    sys: &'a Sys,
    spec: &'a RunSpec,
    path: PathBuf,
    root: Option<OwnedFd>,
}

impl<'a> Rootfs<'a> {
    /// Prepare to build the rootfs of `spec`.
    pub fn new(sys: &'a Sys, spec: &'a RunSpec) -> Self {
        Self::at(sys, spec, spec.rootfs())
    }

    /// Prepare to build a rootfs at `path` (an OCI bundle's `root.path`, wherever it is).
    pub fn at(sys: &'a Sys, spec: &'a RunSpec, path: PathBuf) -> Self {
        Rootfs {
            sys,
            spec,
            path,
            root: None,
        }
    }

    /// An OCI config's `mounts`, in order (`dockling runtime create`), instead of Docker's
    /// fixed set: each target resolved inside the rootfs through descriptors like every other
    /// (`/proc`, `/sys` and `/dev` must be real directories); a bind's source is a host path
    /// (relative to the bundle when not absolute) of the caller's, who wrote the config; a
    /// bind's flags applied by a second, remounting call; the propagation by a third. A
    /// `cgroup` mount becomes the container's own view of its cgroups (`cgroup_mounts`).
    ///
    /// Returns the container's own mounts ([`OwnMounts`]): the root's, and each file system
    /// the config mounts fresh, by mount ID, read as each is made (a later bind could cover
    /// the same place). Device nodes go only there, never into a bind of another tree, even
    /// where the image's symlinks lead a bind of the host's /dev onto the container's /dev.
    pub fn mount_config(
        &self,
        mounts: &[crate::specconv::oci::OciMount],
        bundle: &Path,
        cgroup_mounts: &[MountEntry],
    ) -> Result<OwnMounts> {
        self.sys.step(StepId::RootfsMounts)?;
        let mut own = OwnMounts::default();
        if let Some(root) = &self.root {
            own.0.push(self.sys.mount_id(root.as_fd(), Path::new("/"))?);
        }
        for m in mounts {
            if let Some(what) = m.not_supported_yet() {
                return Err(Error::Usage(format!(
                    "mount {}: {what} are not supported by dockling-runc yet: use the plain \
                     options (ro, nosuid...)",
                    m.destination.display()
                )));
            }
            if m.fstype == "cgroup" || m.fstype == "cgroup2" {
                let ro = m.flags.contains(MsFlags::MS_RDONLY);
                for c in cgroup_mounts {
                    let t = self.target(&c.target, false)?;
                    let mut flags = c.flags;
                    if !ro {
                        flags.remove(MsFlags::MS_RDONLY);
                    }
                    self.sys.mount(
                        Some(Path::new(&c.source)),
                        &t.path,
                        Some(&c.fstype),
                        flags,
                        c.data.as_deref(),
                    )?;
                }
                continue;
            }
            let data = (!m.data.is_empty()).then_some(m.data.as_str());
            if m.bind {
                let source = self.bind_source(m, bundle);
                let is_file = !source.is_dir();
                // Held to the rule `dockling run` holds its own binds to: nothing lands in
                // /proc or /sys, whatever the image's symlinks say.
                let t = self.resolve(&m.destination, is_file, true)?;
                let mut flags = MsFlags::MS_BIND;
                if m.flags.contains(MsFlags::MS_REC) {
                    flags |= MsFlags::MS_REC;
                }
                self.sys.mount(Some(&source), &t.path, None, flags, None)?;
                let rest = m.flags & !(MsFlags::MS_BIND | MsFlags::MS_REC);
                if !rest.is_empty() {
                    // Resolved again: the remount must name the new mount, not the one below.
                    let t = self.resolve(&m.destination, is_file, true)?;
                    self.sys.mount(
                        None,
                        &t.path,
                        None,
                        rest | MsFlags::MS_BIND | MsFlags::MS_REMOUNT,
                        None,
                    )?;
                }
            } else {
                let t = if REAL_DIRS.iter().any(|d| m.destination == Path::new(d)) {
                    self.real_dir(&m.destination)?
                } else {
                    self.target(&m.destination, false)?
                };
                self.sys.mount(
                    Some(Path::new(if m.source.is_empty() {
                        &m.fstype
                    } else {
                        &m.source
                    })),
                    &t.path,
                    Some(&m.fstype),
                    m.flags,
                    data,
                )?;
                // The target's descriptor names the directory under the new mount: looked
                // up again the same way (nothing else runs in the container yet), the path
                // ends on the mount itself.
                let top = if REAL_DIRS.iter().any(|d| m.destination == Path::new(d)) {
                    self.real_dir(&m.destination)?
                } else {
                    self.target(&m.destination, false)?
                };
                if let Some(fd) = &top._fd {
                    own.0.push(self.sys.mount_id(fd.as_fd(), &m.destination)?);
                }
            }
            if !m.propagation.is_empty() {
                // Followed inside the root like the mount's own target (a destination that
                // is a symlink names the mount at its end, not the link).
                let file = m.bind && !self.bind_source(m, bundle).is_dir();
                let t = self.resolve(&m.destination, file, m.bind)?;
                self.sys.mount(None, &t.path, None, m.propagation, None)?;
            }
        }
        Ok(own)
    }

    /// A config bind's source on the host: relative ones are the bundle's.
    fn bind_source(&self, m: &crate::specconv::oci::OciMount, bundle: &Path) -> PathBuf {
        if Path::new(&m.source).is_absolute() {
            PathBuf::from(&m.source)
        } else {
            bundle.join(&m.source)
        }
    }

    /// An OCI config's `linux.maskedPaths` and `linux.readonlyPaths` (`dockling run` uses
    /// Docker's, [`Rootfs::mask_paths`]): a directory gets an empty read-only tmpfs, anything
    /// else `/dev/null` bound over it, and a read-only path a read-only bind of itself. Paths
    /// this kernel does not have are skipped, as runc does.
    pub fn mask_given(&self, masked: &[PathBuf], readonly: &[PathBuf]) -> Result<()> {
        if masked.is_empty() && readonly.is_empty() {
            return Ok(());
        }
        self.sys.step(StepId::SecurityMask)?;
        let mut null = None;
        for p in masked {
            let Some(t) = self.existing(p)? else { continue };
            let is_dir = self
                .sys
                .stat_mode(&t.path)
                .is_ok_and(|m| m & libc::S_IFMT == libc::S_IFDIR);
            if null.is_none() && !is_dir {
                null = Some(
                    self.existing(Path::new("/dev/null"))?
                        .ok_or(super::RuntimeError::DevNullMissing)?,
                );
            }
            self.mask_one(&t, is_dir, null.as_ref())?;
        }
        for p in readonly {
            self.readonly_bind(p)?;
        }
        Ok(())
    }

    /// Hide one existing path: an empty read-only tmpfs over a directory, `/dev/null` (the
    /// container's, `null`) bound over anything else.
    fn mask_one(&self, t: &Target, is_dir: bool, null: Option<&Target>) -> Result<()> {
        if is_dir {
            self.sys.mount(
                Some(Path::new("tmpfs")),
                &t.path,
                Some("tmpfs"),
                MsFlags::MS_RDONLY,
                None,
            )?;
        } else if let Some(null) = null {
            self.sys
                .mount(Some(&null.path), &t.path, None, MsFlags::MS_BIND, None)?;
        }
        Ok(())
    }

    /// A read-only bind of `p` over itself (skipped when this kernel lacks it).
    fn readonly_bind(&self, p: &Path) -> Result<()> {
        let Some(t) = self.existing(p)? else {
            return Ok(());
        };
        self.sys.mount(
            Some(&t.path),
            &t.path,
            None,
            MsFlags::MS_BIND | MsFlags::MS_REC,
            None,
        )?;
        // Looked up again: a descriptor opened before the bind names the mount below it,
        // and a remount must name the new one (mount(2): EINVAL otherwise).
        let t = self.existing(p)?.unwrap_or(t);
        self.sys.mount(
            None,
            &t.path,
            None,
            MsFlags::MS_BIND
                | MsFlags::MS_REMOUNT
                | MsFlags::MS_RDONLY
                | MsFlags::MS_NOSUID
                | MsFlags::MS_NODEV
                | MsFlags::MS_NOEXEC,
            None,
        )?;
        Ok(())
    }

    /// Write `value` into the existing file `inside` (a sysctl under the container's own
    /// /proc/sys), opened through the rootfs descriptor without following any symlink.
    pub fn write_inside(&self, inside: &Path, value: &str) -> Result<()> {
        let Some(root) = &self.root else {
            return Ok(());
        };
        let fd = self.sys.openat2(
            root.as_fd(),
            &safefs::relative(inside),
            libc::O_WRONLY | libc::O_CLOEXEC,
            0,
            safefs::IN_ROOT | libc::RESOLVE_NO_SYMLINKS,
        )?;
        self.sys.run(Call::Write {
            fd: fd.as_raw_fd(),
            path: inside.to_path_buf(),
            data: value.to_string(),
        })?;
        Ok(())
    }

    /// The working directory `inside` (an OCI config's `process.cwd`), made when the root
    /// lacks it, as runc makes it: after the mounts (it may lie in one), before the root is
    /// switched, each missing level a `mkdirat` (0755) on its parent's descriptor, the root's
    /// own symlinks followed inside it. Anything else wrong with it (not a directory) is left
    /// for the final `chdir` to report.
    pub fn make_workdir(&self, inside: &Path) -> Result<()> {
        let Some(root) = &self.root else {
            return Ok(());
        };
        let rel = safefs::relative(inside);
        let flags = libc::O_PATH | libc::O_DIRECTORY;
        match self
            .sys
            .openat2(root.as_fd(), &rel, flags, 0, safefs::IN_ROOT)
        {
            Err(e) if e.errno == nix::errno::Errno::ENOENT => {}
            _ => return Ok(()),
        }
        self.sys.step(StepId::RootfsWorkdir)?;
        resolve_target(self.sys, root, inside, false, false).map(drop)
    }

    /// Whether the container's `/dev` is a tmpfs of its own (an OCI config may leave the
    /// image's directory, or bind another tree there: the host's /dev is a tmpfs too, so
    /// the file system's type alone does not say whose it is; the mount does).
    pub fn dev_is_own_tmpfs(&self, own: &OwnMounts) -> Result<bool> {
        let Some(root) = &self.root else {
            return Ok(true);
        };
        let Ok(fd) = self.sys.openat2(
            root.as_fd(),
            Path::new("dev"),
            libc::O_PATH | libc::O_DIRECTORY,
            0,
            safefs::IN_ROOT | libc::RESOLVE_NO_SYMLINKS,
        ) else {
            return Ok(false);
        };
        let dev = self.path.join("dev");
        if !self
            .sys
            .fstatfs(fd.as_fd(), &dev)
            .is_ok_and(|fs| fs.f_type == libc::TMPFS_MAGIC)
        {
            return Ok(false);
        }
        Ok(own
            .0
            .contains(&self.sys.mount_id(fd.as_fd(), Path::new("/dev"))?))
    }

    fn target(&self, inside: &Path, file: bool) -> Result<Target> {
        self.resolve(inside, file, false)
    }

    fn resolve(&self, inside: &Path, file: bool, bind: bool) -> Result<Target> {
        match &self.root {
            Some(root) => resolve_target(self.sys, root, inside, file, bind),
            // Dry run: nothing is mounted, so there is nothing to resolve.
            None => Ok(Target {
                path: self.path.join(safefs::relative(inside)),
                _fd: None,
            }),
        }
    }

    /// The directory `inside` (one of [`REAL_DIRS`]) as a mount target: created if the image
    /// lacks it, refused if it is a symlink or not a directory. `RESOLVE_NO_SYMLINKS` makes the
    /// kernel refuse a symlink anywhere in the lookup (`ELOOP`), so nothing is followed.
    fn real_dir(&self, inside: &Path) -> Result<Target> {
        let Some(root) = &self.root else {
            return self.target(inside, false);
        };
        let rel = safefs::relative(inside);
        let flags = libc::O_PATH | libc::O_DIRECTORY;
        let resolve = safefs::IN_ROOT | libc::RESOLVE_NO_SYMLINKS;
        let open = || self.sys.openat2(root.as_fd(), &rel, flags, 0, resolve);
        let fd = match open() {
            Err(e) if e.errno == nix::errno::Errno::ENOENT => {
                self.sys.mkdirat(root.as_fd(), &rel, 0o755)?;
                open()
            }
            other => other,
        }
        .map_err(|e| match e.errno {
            nix::errno::Errno::ELOOP | nix::errno::Errno::ENOTDIR => {
                not_a_real_dir(inside, e.errno)
            }
            _ => e.into(),
        })?;
        fd_target(fd)
    }

    /// A path that already exists inside the container (a masked or read-only path), looked
    /// up from the rootfs descriptor without following a final symlink. `None` when this
    /// kernel does not have it (runc skips those too); a dry run assumes every one exists.
    fn existing(&self, inside: &Path) -> Result<Option<Target>> {
        let Some(root) = &self.root else {
            return self.target(inside, false).map(Some);
        };
        match self.sys.openat2(
            root.as_fd(),
            &safefs::relative(inside),
            libc::O_PATH | libc::O_NOFOLLOW,
            0,
            safefs::IN_ROOT,
        ) {
            Err(e) if e.errno == nix::errno::Errno::ENOENT => Ok(None),
            Err(e) => Err(e.into()),
            Ok(fd) => fd_target(fd).map(Some),
        }
    }

    /// An OCI config's `linux.rootfsPropagation` for every mount of the new namespace: private
    /// (the default) or slave (host mounts still arrive, nothing goes back). Shared would
    /// make `pivot_root` fail and let the container's mounts reach the host: refused.
    pub fn make_propagation(&self, flags: MsFlags) -> Result<()> {
        if flags.contains(MsFlags::MS_SHARED) || flags.contains(MsFlags::MS_UNBINDABLE) {
            return Err(Error::Usage(
                "linux.rootfsPropagation: dockling-runc takes private or slave (rprivate, \
                 rslave); shared and unbindable are not supported yet"
                    .into(),
            ));
        }
        self.sys.step(StepId::RootfsPropagation)?;
        self.sys.mount(None, Path::new("/"), None, flags, None)?;
        Ok(())
    }

    /// Make every mount private, so nothing we do reaches the host.
    pub fn make_private(&self) -> Result<()> {
        self.make_propagation(MsFlags::MS_REC | MsFlags::MS_PRIVATE)
    }

    /// Mount the layers (overlay) or make the copied tree a mount point (copy).
    pub fn mount_layers(&mut self, overlay_data: &str) -> Result<()> {
        let copy = self.spec.layers_mode == LayersMode::Copy;
        self.sys
            .step_variant(StepId::LayersMount, copy.then_some("copy"))?;
        // With no devices cgroup (--no-cgroups, not --privileged) the image's own device
        // nodes must not open: the root is mounted nodev (the container's /dev is a tmpfs of
        // its own, with only dockling's devices).
        let nodev = self.nodev();
        match self.spec.layers_mode {
            LayersMode::Overlay | LayersMode::Erofs => self.sys.mount(
                Some(Path::new("overlay")),
                &self.path,
                Some("overlay"),
                if nodev {
                    MsFlags::MS_NODEV
                } else {
                    MsFlags::empty()
                },
                Some(overlay_data),
            )?,
            // pivot_root needs the new root to be a mount point: bind the copy onto itself.
            LayersMode::Copy => {
                self.sys.mount(
                    Some(&self.path),
                    &self.path,
                    None,
                    MsFlags::MS_BIND | MsFlags::MS_REC,
                    None,
                )?;
                if nodev {
                    self.sys.mount(
                        None,
                        &self.path,
                        None,
                        MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_NODEV,
                        None,
                    )?;
                }
            }
        }
        if !self.sys.is_dry_run() {
            self.root = Some(
                self.sys
                    .open(&self.path, libc::O_PATH | libc::O_DIRECTORY)?,
            );
        }
        Ok(())
    }

    /// /proc, /dev, /sys, cgroups and friends.
    pub fn mount_kernel_filesystems(&self, extra: &[MountEntry]) -> Result<()> {
        self.sys.step(StepId::RootfsMounts)?;
        for m in default_mounts(self.spec).iter().chain(extra) {
            let t = if REAL_DIRS.iter().any(|d| m.target == Path::new(d)) {
                self.real_dir(&m.target)?
            } else {
                self.target(&m.target, false)?
            };
            self.sys.mount(
                Some(Path::new(&m.source)),
                &t.path,
                Some(&m.fstype),
                m.flags,
                m.data.as_deref(),
            )?;
        }
        Ok(())
    }

    /// Device nodes and the standard links in /dev, made by name in the descriptor of the
    /// container's /dev, which must be the tmpfs mounted there a moment ago (a symlink or
    /// anything else in its place could lead the nodes onto the host).
    pub fn create_devices(&self) -> Result<()> {
        self.sys.step(StepId::RootfsDevices)?;
        let dev = match &self.root {
            Some(root) => {
                let fd = self.sys.openat2(
                    root.as_fd(),
                    Path::new("dev"),
                    libc::O_PATH | libc::O_DIRECTORY,
                    0,
                    safefs::IN_ROOT | libc::RESOLVE_NO_SYMLINKS,
                )?;
                let dev = self.path.join("dev");
                let fs = (self.sys.fstatfs(fd.as_fd(), &dev))
                    .map_err(|e| Error::io("statfs", &dev)(e.errno.into()))?;
                if fs.f_type != libc::TMPFS_MAGIC {
                    return Err(super::RuntimeError::DevNotTmpfs { dir: dev }.into());
                }
                Some(fd)
            }
            None => None,
        };
        let dirfd = dev.as_ref().map_or(DRY_RUN_FD, |fd| fd.as_raw_fd());
        // Docker's devices are exactly 0666 (anyone may write /dev/null); mknod's mode is
        // masked by the umask (mknod(2)), so it is 0 while they are made, then 022, the
        // container's own umask whatever the user's shell had (runc does the same).
        self.sys.run(Call::Umask { mask: 0 })?;
        for (name, major, minor) in DEVICES {
            self.sys.run(Call::Mknodat {
                dirfd,
                name: name.into(),
                inside: None,
                kind: 'c',
                mode: 0o666,
                major: *major,
                minor: *minor,
            })?;
        }
        self.sys.run(Call::Umask { mask: 0o022 })?;
        for (target, link) in DEV_LINKS {
            self.sys.run(Call::Symlinkat {
                target: target.into(),
                dirfd,
                linkpath: link.into(),
            })?;
        }
        Ok(())
    }

    /// The nodes an OCI config's `linux.devices` asks for, anywhere in the container: each
    /// parent found (and made where missing) inside the root through descriptors
    /// ([`ensure_target`]), the node made by name in it with the umask at 0 (its mode exactly
    /// the config's), then given its owner. A name that exists already (the standard devices
    /// made a moment ago, a node of the image) is left as it is, as runc does; mknodat does
    /// not follow a symlink there. A node whose directory is not on one of the container's
    /// own mounts (`own`: a bind of another tree, such as the host's /dev, wherever the
    /// image's symlinks led it) is not made: it would land in that tree.
    pub fn create_config_devices(
        &self,
        devices: &[crate::specconv::oci::Device],
        own: &OwnMounts,
    ) -> Result<()> {
        if devices.is_empty() {
            return Ok(());
        }
        self.sys.with_umask(0, || {
            devices.iter().try_for_each(|d| self.config_device(d, own))
        })
    }

    fn config_device(&self, d: &crate::specconv::oci::Device, own: &OwnMounts) -> Result<()> {
        let rel = safefs::relative(&d.path);
        let (Some(name), parent) = (rel.file_name(), rel.parent().unwrap_or(Path::new(""))) else {
            return Err(Error::Usage(format!(
                "linux.devices: {} names no file: give the node's path, like /dev/fuse",
                d.path.display()
            )));
        };
        // As for a mount target: a dangling symlink of the image on the way has its target
        // worked out inside the root first, then made there. Each directory a node or a
        // missing parent is made in must be on one of the container's own mounts: not even an
        // empty directory goes into a bind of another tree.
        let inside = Path::new("/").join(parent);
        let foreign = std::cell::Cell::new(false);
        let own_mount = |dir: &OwnedFd| -> Result<()> {
            if own.0.contains(&self.sys.mount_id(dir.as_fd(), &inside)?) {
                return Ok(());
            }
            foreign.set(true);
            Err(Error::Usage(format!(
                "{} is on a bind mount of another tree",
                inside.display()
            )))
        };
        let dir = match &self.root {
            Some(root) => {
                let found = ensure_resolved(self.sys, root, &inside, false, Some(&own_mount))
                    .and_then(|fd| own_mount(&fd).map(|()| fd));
                match found {
                    Ok(fd) => Some(fd),
                    Err(_) if foreign.get() => {
                        self.sys.tracer.note(&format!(
                            "linux.devices {}: not made: {} is on a bind mount of another \
                             tree, whose nodes are its own",
                            d.path.display(),
                            inside.display()
                        ));
                        return Ok(());
                    }
                    Err(e) => return Err(e),
                }
            }
            None => None,
        };
        let dirfd = dir.as_ref().map_or(DRY_RUN_FD, |fd| fd.as_raw_fd());
        match self.sys.run(Call::Mknodat {
            dirfd,
            name: name.into(),
            inside: Some(d.path.clone()),
            kind: d.kind,
            mode: d.mode,
            major: d.major,
            minor: d.minor,
        }) {
            Err(e) if e.errno == nix::errno::Errno::EEXIST => return Ok(()),
            other => other?,
        }
        self.sys.run(Call::Fchownat {
            dirfd,
            name: name.into(),
            inside: d.path.clone(),
            uid: d.uid,
            gid: d.gid,
        })?;
        Ok(())
    }

    /// Bind-mount a host file or directory (read-only if asked). `ours` marks a bind the
    /// engine chose the place of (/etc/hosts...): if the image's symlinks lead it into /proc
    /// or /sys it is refused. A `-v` target was already held to Docker's and runc's rules
    /// (`check_volume_target`, which allows runc's LXCFS files in /proc, and /sys).
    fn bind(&self, source: &Path, inside: &Path, readonly: bool, ours: bool) -> Result<()> {
        let is_file = !source.is_dir();
        let t = self.resolve(inside, is_file, ours)?;
        self.sys.mount(
            Some(source),
            &t.path,
            None,
            MsFlags::MS_BIND | MsFlags::MS_REC,
            None,
        )?;
        // A `-v` or volume with no devices cgroup is `nodev` (a host directory such as /dev,
        // or a volume filled by an earlier container, can hold device nodes); the engine's
        // own files (/etc/hosts...) are plain files it wrote.
        let nodev = self.nodev() && !ours;
        if readonly || nodev {
            // Resolved again so a `/proc/self/fd/N` target names the new mount, not the
            // directory under it (the remount would fail with EINVAL).
            let t = self.resolve(inside, is_file, ours)?;
            let mut flags = MsFlags::MS_BIND | MsFlags::MS_REMOUNT;
            if readonly {
                flags |= MsFlags::MS_RDONLY;
            }
            if nodev {
                flags |= MsFlags::MS_NODEV;
            }
            self.sys.mount(None, &t.path, None, flags, None)?;
        }
        Ok(())
    }

    /// /etc/hostname, /etc/hosts and /etc/resolv.conf from the container's directory.
    pub fn bind_etc_files(&self) -> Result<()> {
        self.sys.step(StepId::RootfsFiles)?;
        for name in ["hostname", "hosts", "resolv.conf"] {
            self.bind(
                &self.spec.bundle.join(name),
                &Path::new("/etc").join(name),
                false,
                true,
            )?;
        }
        Ok(())
    }

    /// The `-v` volumes.
    pub fn bind_volumes(&self) -> Result<()> {
        if self.spec.volumes.is_empty() {
            return Ok(());
        }
        self.sys.step(StepId::RootfsVolumes)?;
        for v in &self.spec.volumes {
            // The destination as the image's symlinks lead it: `-v X:/data` where the image
            // has `/data -> /proc/sys` is a volume inside /proc, refused as if named so.
            if let Some(root) = &self.root {
                let resolved =
                    safefs::resolve_in_root_with(root.as_fd(), &v.target, |d, p, f, r| {
                        self.sys
                            .openat2(d, p, f, 0, r)
                            .map_err(|e| std::io::Error::from_raw_os_error(e.errno as i32))
                    })
                    .map_err(Error::io("resolve in the container", &v.target))?;
                check_volume_target(v, &Path::new("/").join(&resolved))?;
            }
            match &v.tmpfs {
                Some(opts) => self.tmpfs(v, opts)?,
                None => self.bind(&v.source, &v.target, v.readonly, false)?,
            }
        }
        Ok(())
    }

    /// A tmpfs at `v.target`, its target resolved inside the rootfs like a bind's. Docker's
    /// defaults for `--tmpfs` and `--mount type=tmpfs` alike are `noexec,nosuid,nodev`; the
    /// options given override them in order (`exec`, `suid`, `dev`, `ro`…, as Docker's
    /// `MergeTmpfsOptions`), and the rest (`size=`, `mode=`…) go to the tmpfs. Without a
    /// devices cgroup it stays `nodev` whatever was asked.
    fn tmpfs(&self, v: &crate::spec::Volume, opts: &str) -> Result<()> {
        let t = self.resolve(&v.target, false, true)?;
        let (flags, data) = tmpfs_flags(opts, v.readonly);
        let flags = if self.nodev() {
            flags | MsFlags::MS_NODEV
        } else {
            flags
        };
        self.sys.mount(
            Some(Path::new("tmpfs")),
            &t.path,
            Some("tmpfs"),
            flags,
            (!data.is_empty()).then_some(data.as_str()),
        )?;
        Ok(())
    }

    /// Docker's copy-up for every store volume (not `nocopy`): a volume that is still empty
    /// gets what the image has at its mount point. Run right after the layers are mounted,
    /// before /proc, /sys, /dev, /etc's files or any `-v`: what it reads is the image's and
    /// nothing else (the walk refuses to cross a mount, `RESOLVE_NO_XDEV`, as a second
    /// guard). Both trees are reached through descriptors only (`volume::copy_up`); the file
    /// work is untraced, like unpacking, and summed up in one trace note per volume.
    pub fn copy_up_volumes(&self) -> Result<()> {
        let Some(root) = &self.root else {
            return Ok(());
        };
        for v in &self.spec.volumes {
            if !v.in_store() || v.nocopy || v.tmpfs.is_some() {
                continue;
            }
            let resolved = safefs::resolve_in_root(root.as_fd(), &v.target)
                .map_err(Error::io("resolve in the container", &v.target))?;
            check_volume_target(v, &Path::new("/").join(&resolved))?;
            self.copy_up(root, v, &resolved)?;
        }
        Ok(())
    }

    fn copy_up(&self, root: &OwnedFd, v: &crate::spec::Volume, resolved: &Path) -> Result<()> {
        let name = v.name.clone().unwrap_or_default();
        let fail = |why: String| super::RuntimeError::CopyUp {
            target: v.target.clone(),
            volume: name.clone(),
            why,
        };
        let src = match safefs::openat2(
            root.as_fd(),
            &safefs::relative(resolved),
            libc::O_PATH | libc::O_DIRECTORY | libc::O_NOFOLLOW,
            0,
            safefs::IN_ROOT | libc::RESOLVE_NO_XDEV,
        ) {
            Ok(fd) => fd,
            // Nothing (or no directory) there in the image: nothing to copy, as Docker.
            Err(e)
                if matches!(
                    e.raw_os_error(),
                    Some(libc::ENOENT | libc::ENOTDIR | libc::ELOOP)
                ) =>
            {
                return Ok(())
            }
            Err(e) => return Err(fail(format!("open it in the container: {e}")).into()),
        };
        // The volume's own directory (the store's, not the container's).
        let dir = v.source.parent().unwrap_or(Path::new("/"));
        let vol =
            safefs::open_root(dir).map_err(|e| fail(format!("open {}: {e}", dir.display())))?;
        let start = std::time::Instant::now();
        let Some(stats) =
            crate::volume::copy_up(src.as_fd(), vol.as_fd(), self.nodev()).map_err(fail)?
        else {
            return Ok(());
        };
        self.sys.tracer.note(&format!(
            "copied the image's {} into the new volume {name}: {} entries, {} bytes in {:.1} ms (untraced file work through descriptors, like unpacking)",
            v.target.display(),
            stats.entries,
            stats.bytes,
            start.elapsed().as_secs_f64() * 1000.0
        ));
        Ok(())
    }

    /// No devices cgroup keeps device nodes closed (`--no-cgroups` without `--privileged`):
    /// the image, every bind and every volume are mounted `nodev`.
    fn nodev(&self) -> bool {
        self.spec.cgroup.is_none() && !self.spec.privileged
    }

    /// Docker's masked and read-only paths (skipped with `--privileged`).
    pub fn mask_paths(&self) -> Result<()> {
        if self.spec.privileged {
            return Ok(());
        }
        self.sys.step(StepId::SecurityMask)?;
        // Everything is looked up from the rootfs descriptor: /proc and /sys are the real
        // directories checked when they were mounted, so each path below is the kernel's.
        let null = match self.existing(Path::new("/dev/null"))? {
            Some(t) => t,
            None => return Err(super::RuntimeError::DevNullMissing.into()),
        };
        for (p, is_dir) in MASKED {
            // Only what exists on this kernel is masked (runc does the same).
            let Some(t) = self.existing(Path::new(p))? else {
                continue;
            };
            self.mask_one(&t, *is_dir, Some(&null))?;
        }
        for p in READONLY {
            self.readonly_bind(Path::new(p))?;
        }
        Ok(())
    }

    /// Switch to the new root: `pivot_root` and detach the host's, or just `chroot`.
    pub fn switch_root(&mut self) -> Result<()> {
        let chroot = self.spec.rootfs_mode == RootfsMode::Chroot;
        self.sys
            .step_variant(StepId::RootfsPivot, chroot.then_some("chroot"))?;
        self.sys.run(Call::Chdir {
            path: self.path.clone(),
        })?;
        match self.spec.rootfs_mode {
            RootfsMode::PivotRoot => {
                // pivot_root(".", ".") stacks the old root on top of the new one at "/"; the
                // lazy unmount then takes the old root (the whole host tree) away. No
                // put_old directory is needed in the image (pivot_root(2), NOTES).
                self.sys.run(Call::PivotRoot {
                    new_root: ".".into(),
                    put_old: ".".into(),
                })?;
                self.sys.umount2(Path::new("."), MntFlags::MNT_DETACH)?;
            }
            RootfsMode::Chroot => {
                self.sys.run(Call::Chroot { path: ".".into() })?;
            }
        }
        self.sys.run(Call::Chdir { path: "/".into() })?;
        self.root = None;
        if self.spec.read_only {
            self.sys.mount(
                None,
                Path::new("/"),
                None,
                MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY,
                None,
            )?;
        }
        Ok(())
    }
}

/// The mount flags and the tmpfs data of a tmpfs's options (see `Rootfs::tmpfs`): Docker's
/// `noexec,nosuid,nodev`, then each option in order.
pub fn tmpfs_flags(opts: &str, readonly: bool) -> (MsFlags, String) {
    let mut flags = MsFlags::MS_NOEXEC | MsFlags::MS_NOSUID | MsFlags::MS_NODEV;
    if readonly {
        flags |= MsFlags::MS_RDONLY;
    }
    let mut data = vec![];
    for o in opts.split(',').filter(|o| !o.is_empty()) {
        let (set, clear) = match o {
            "ro" => (MsFlags::MS_RDONLY, MsFlags::empty()),
            "rw" => (MsFlags::empty(), MsFlags::MS_RDONLY),
            "noexec" => (MsFlags::MS_NOEXEC, MsFlags::empty()),
            "exec" => (MsFlags::empty(), MsFlags::MS_NOEXEC),
            "nosuid" => (MsFlags::MS_NOSUID, MsFlags::empty()),
            "suid" => (MsFlags::empty(), MsFlags::MS_NOSUID),
            "nodev" => (MsFlags::MS_NODEV, MsFlags::empty()),
            "dev" => (MsFlags::empty(), MsFlags::MS_NODEV),
            "sync" => (MsFlags::MS_SYNCHRONOUS, MsFlags::empty()),
            "async" => (MsFlags::empty(), MsFlags::MS_SYNCHRONOUS),
            "dirsync" => (MsFlags::MS_DIRSYNC, MsFlags::empty()),
            "noatime" => (MsFlags::MS_NOATIME, MsFlags::empty()),
            "atime" => (MsFlags::empty(), MsFlags::MS_NOATIME),
            "nodiratime" => (MsFlags::MS_NODIRATIME, MsFlags::empty()),
            "diratime" => (MsFlags::empty(), MsFlags::MS_NODIRATIME),
            "relatime" => (MsFlags::MS_RELATIME, MsFlags::empty()),
            "norelatime" => (MsFlags::empty(), MsFlags::MS_RELATIME),
            "strictatime" => (MsFlags::MS_STRICTATIME, MsFlags::empty()),
            "nostrictatime" => (MsFlags::empty(), MsFlags::MS_STRICTATIME),
            "mand" | "nomand" | "defaults" => (MsFlags::empty(), MsFlags::empty()),
            _ => {
                data.push(o);
                continue;
            }
        };
        flags = (flags - clear) | set;
    }
    (flags, data.join(","))
}

#[cfg(test)]
mod tmpfs_tests {
    use super::*;

    #[test]
    fn tmpfs_options_override_dockers_defaults_in_order() {
        let (f, d) = tmpfs_flags("", false);
        assert_eq!(
            f,
            MsFlags::MS_NOEXEC | MsFlags::MS_NOSUID | MsFlags::MS_NODEV
        );
        assert_eq!(d, "");
        let (f, d) = tmpfs_flags("rw,exec,nosuid,size=65536k", false);
        assert_eq!(f, MsFlags::MS_NOSUID | MsFlags::MS_NODEV);
        assert_eq!(d, "size=65536k");
        let (f, _) = tmpfs_flags("ro,rw,dev,mode=1777", true);
        assert_eq!(f, MsFlags::MS_NOEXEC | MsFlags::MS_NOSUID);
    }
}
