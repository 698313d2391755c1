//! The vocabulary of the seam: one [`Call`] value per kernel operation the engine makes.
//!
//! Making every kernel operation a plain value is what lets the same engine code run for real
//! ([`super::linux`]), against a recording double ([`super::record`]) for unit tests and
//! `dockling explain`, and through the tracer, which renders each call the way `strace` would.

use std::fmt::{self, Write as _};
use std::path::PathBuf;

use nix::mount::{MntFlags, MsFlags};
use nix::sched::CloneFlags;

/// One kernel operation, with the arguments it will be made with.
///
/// Field names are the argument names of the man page of each call.
#[allow(missing_docs)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Call {
    /// `clone(2)` used like `fork(2)`: the child starts in the new namespaces named by `flags`.
    Clone { flags: CloneFlags },
    /// `unshare(2)`: move the calling process into new namespaces.
    Unshare { flags: CloneFlags },
    /// `mount(2)`.
    Mount {
        source: Option<PathBuf>,
        target: PathBuf,
        fstype: Option<String>,
        flags: MsFlags,
        data: Option<String>,
    },
    /// `umount2(2)`.
    Umount2 { target: PathBuf, flags: MntFlags },
    /// `pivot_root(2)`.
    PivotRoot { new_root: PathBuf, put_old: PathBuf },
    /// `chroot(2)`.
    Chroot { path: PathBuf },
    /// `chdir(2)`.
    Chdir { path: PathBuf },
    /// `sethostname(2)`.
    Sethostname { name: String },
    /// `mkdir(2)`; an existing directory is not an error for the engine's callers.
    Mkdir { path: PathBuf, mode: u32 },
    /// `mknodat(2)` of a character device.
    Mknod {
        path: PathBuf,
        mode: u32,
        major: u64,
        minor: u64,
    },
    /// `symlink(2)`.
    Symlink { target: PathBuf, link: PathBuf },
    /// `rmdir(2)`.
    Rmdir { path: PathBuf },
    /// `openat(2)` + `write(2)` of a small file: a control file (cgroup knobs, /proc files),
    /// or with `create` a new file of the container's own (created or truncated).
    WriteFile {
        path: PathBuf,
        data: String,
        create: bool,
    },
    /// `prctl(2)` with one option and one argument.
    Prctl { option: Prctl, arg: u64 },
    /// `capset(2)` for the calling thread.
    Capset {
        effective: u64,
        permitted: u64,
        inheritable: u64,
    },
    /// `setgroups(2)`.
    Setgroups { gids: Vec<u32> },
    /// `setresgid(2)` with all three ids equal.
    Setresgid { gid: u32 },
    /// `setresuid(2)` with all three ids equal.
    Setresuid { uid: u32 },
    /// `setsid(2)`.
    Setsid,
    /// `ioctl(fd, TIOCSCTTY, 0)`: make the terminal on `fd` the controlling terminal.
    IoctlSetCtty { fd: i32 },
    /// `dup2(2)`.
    Dup2 { old: i32, new: i32 },
    /// `close_range(2)` with `CLOSE_RANGE_CLOEXEC`: mark every descriptor from `first` up
    /// close-on-exec so nothing of the engine leaks into the container.
    CloseRange { first: u32 },
    /// `ioctl(sock, SIOCSIFFLAGS, IFF_UP)` on a network interface (socket + two ioctls).
    IfUp { name: String },
    /// `seccomp(2)` `SECCOMP_SET_MODE_FILTER`: install `filter`, the BPF program compiled from
    /// the container's policy; `about` says in words what it does (shown in the trace).
    Seccomp {
        filter: Vec<crate::runtime::seccomp::bpf::Insn>,
        about: String,
    },
    /// `execve(2)`; on success it never returns.
    Execve {
        path: PathBuf,
        argv: Vec<String>,
        envp: Vec<String>,
    },
    /// `openat2(2)`: open `path` relative to `dirfd` with `resolve` rules (inside the
    /// container's root, never leaving it); with `O_CREAT` it creates an empty file.
    Openat2 {
        dirfd: i32,
        path: PathBuf,
        flags: i32,
        mode: u32,
        resolve: u64,
    },
    /// `mkdirat(2)` of one name in the directory `dirfd`.
    Mkdirat {
        dirfd: i32,
        path: PathBuf,
        mode: u32,
    },
    /// `openat(AT_FDCWD, path, flags)`: a device the container's own stdio will use.
    Open { path: PathBuf, flags: i32 },
    /// `ioctl` on a pseudo-terminal master: unlock its slave, or ask the slave's number.
    IoctlPty { fd: i32, op: PtyOp },
    /// `rt_sigprocmask(SIG_SETMASK, {})`: no signal blocked.
    UnblockSignals,
    /// `kill(2)`.
    Kill { pid: i32, signal: i32 },
    /// `wait4(2)` for one child.
    Wait4 { pid: i32 },
}

/// The pseudo-terminal `ioctl`s the engine uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PtyOp {
    /// `TIOCSPTLCK` with 0: let the slave be opened.
    Unlock,
    /// `TIOCGPTN`: the slave's number, `/dev/pts/<n>`.
    Number,
}

/// The `prctl(2)` options the engine uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Prctl {
    /// `PR_CAPBSET_DROP`: remove one capability from the bounding set.
    CapBsetDrop,
    /// `PR_CAP_AMBIENT` / `PR_CAP_AMBIENT_CLEAR_ALL`.
    CapAmbientClearAll,
    /// `PR_SET_KEEPCAPS`.
    SetKeepCaps,
    /// `PR_SET_NO_NEW_PRIVS`.
    SetNoNewPrivs,
    /// `PR_SET_PDEATHSIG`.
    SetPdeathsig,
    /// `PR_SET_DUMPABLE`.
    SetDumpable,
}

impl Prctl {
    /// The name `strace` prints for the option.
    pub fn name(self) -> &'static str {
        match self {
            Prctl::CapBsetDrop => "PR_CAPBSET_DROP",
            Prctl::CapAmbientClearAll => "PR_CAP_AMBIENT",
            Prctl::SetKeepCaps => "PR_SET_KEEPCAPS",
            Prctl::SetNoNewPrivs => "PR_SET_NO_NEW_PRIVS",
            Prctl::SetPdeathsig => "PR_SET_PDEATHSIG",
            Prctl::SetDumpable => "PR_SET_DUMPABLE",
        }
    }
}

/// What a successful call gave back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ret {
    /// Most calls: `0`.
    Zero,
    /// `clone`: the child's pid in the parent, `0` in the child. `wait4`: the pid reaped.
    Pid(i32),
    /// `wait4`: the pid reaped and its raw wait status.
    #[allow(missing_docs)]
    Waited { pid: i32, status: i32 },
    /// `write`: bytes written.
    Bytes(usize),
    /// `openat2`/`openat`: a new descriptor (owned by the caller from here on).
    Fd(i32),
    /// `ioctl(TIOCGPTN)`: returns 0, and the pseudo-terminal's number through its argument.
    PtyNumber(u32),
}

impl Ret {
    /// The number strace would print after `=`.
    pub fn value(self) -> i64 {
        match self {
            Ret::Zero => 0,
            Ret::Pid(p) => p as i64,
            Ret::Waited { pid, .. } => pid as i64,
            Ret::Bytes(n) => n as i64,
            Ret::Fd(fd) => fd as i64,
            Ret::PtyNumber(_) => 0,
        }
    }
}

impl Call {
    /// The syscall name, as `strace` prints it.
    pub fn name(&self) -> &'static str {
        match self {
            Call::Clone { .. } => "clone",
            Call::Unshare { .. } => "unshare",
            Call::Mount { .. } => "mount",
            Call::Umount2 { .. } => "umount2",
            Call::PivotRoot { .. } => "pivot_root",
            Call::Chroot { .. } => "chroot",
            Call::Chdir { .. } => "chdir",
            Call::Sethostname { .. } => "sethostname",
            Call::Mkdir { .. } => "mkdir",
            Call::Mknod { .. } => "mknodat",
            Call::Symlink { .. } => "symlink",
            Call::Rmdir { .. } => "rmdir",
            Call::WriteFile { .. } => "write",
            Call::Prctl { .. } => "prctl",
            Call::Capset { .. } => "capset",
            Call::Setgroups { .. } => "setgroups",
            Call::Setresgid { .. } => "setresgid",
            Call::Setresuid { .. } => "setresuid",
            Call::Setsid => "setsid",
            Call::IoctlSetCtty { .. } => "ioctl",
            Call::Dup2 { .. } => "dup2",
            Call::CloseRange { .. } => "close_range",
            Call::IfUp { .. } => "ioctl",
            Call::Seccomp { .. } => "seccomp",
            Call::Execve { .. } => "execve",
            Call::Openat2 { .. } => "openat2",
            Call::Mkdirat { .. } => "mkdirat",
            Call::Open { .. } => "openat",
            Call::IoctlPty { .. } => "ioctl",
            Call::UnblockSignals => "rt_sigprocmask",
            Call::Kill { .. } => "kill",
            Call::Wait4 { .. } => "wait4",
        }
    }

    /// The key of this call's explanation in the catalog: the syscall name, refined by the
    /// flag or file system that changes what the call means (a bind mount is not a proc mount).
    pub fn explain_key(&self) -> &'static str {
        match self {
            Call::Mount { fstype, flags, .. } => {
                if flags.contains(MsFlags::MS_REMOUNT) {
                    "mount.remount"
                } else if flags
                    .intersects(MsFlags::MS_PRIVATE | MsFlags::MS_SLAVE | MsFlags::MS_SHARED)
                {
                    "mount.propagation"
                } else if flags.contains(MsFlags::MS_BIND) {
                    "mount.bind"
                } else {
                    match fstype.as_deref() {
                        Some("overlay") => "mount.overlay",
                        Some("proc") => "mount.proc",
                        Some("sysfs") => "mount.sysfs",
                        Some("tmpfs") => "mount.tmpfs",
                        Some("devpts") => "mount.devpts",
                        Some("mqueue") => "mount.mqueue",
                        Some("cgroup") | Some("cgroup2") => "mount.cgroup",
                        _ => "mount",
                    }
                }
            }
            Call::Prctl { option, .. } => match option {
                Prctl::CapBsetDrop => "prctl.capbset_drop",
                Prctl::CapAmbientClearAll => "prctl.cap_ambient",
                Prctl::SetKeepCaps => "prctl.keepcaps",
                Prctl::SetNoNewPrivs => "prctl.no_new_privs",
                Prctl::SetPdeathsig => "prctl.pdeathsig",
                Prctl::SetDumpable => "prctl.dumpable",
            },
            Call::Unshare { flags } if *flags == CloneFlags::CLONE_NEWCGROUP => "unshare.cgroup",
            Call::IoctlSetCtty { .. } => "ioctl.tiocsctty",
            Call::IoctlPty {
                op: PtyOp::Unlock, ..
            } => "ioctl.tiocsptlck",
            Call::IoctlPty {
                op: PtyOp::Number, ..
            } => "ioctl.tiocgptn",
            Call::Openat2 { flags, .. } if flags & libc::O_CREAT != 0 => "openat2.create",
            Call::Open { path, .. } if path.starts_with("/dev/pts") => "openat.pts",
            Call::Open { flags, .. } if flags & libc::O_PATH != 0 => "openat.root",
            Call::Open { path, .. } if path == std::path::Path::new("/dev/ptmx") => "openat.ptmx",
            Call::IfUp { .. } => "ioctl.siocsifflags",
            Call::WriteFile { create: true, .. } => "write.file",
            Call::WriteFile { path, .. } if path.starts_with("/sys/fs/cgroup") => "write.cgroup",
            other => other.name(),
        }
    }

    /// The arguments rendered like `strace` renders them (without the surrounding parens).
    pub fn args(&self) -> String {
        let mut s = String::new();
        match self {
            Call::Clone { flags } => {
                let _ = write!(s, "child_stack=NULL, flags={}", clone_flags(*flags, true));
            }
            Call::Unshare { flags } => s.push_str(&clone_flags(*flags, false)),
            Call::Mount {
                source,
                target,
                fstype,
                flags,
                data,
            } => {
                let _ = write!(
                    s,
                    "{}, {}, {}, {}, {}",
                    source
                        .as_ref()
                        .map(|p| quote(&p.to_string_lossy()))
                        .unwrap_or_else(|| "NULL".into()),
                    quote(&target.to_string_lossy()),
                    fstype
                        .as_deref()
                        .map(quote)
                        .unwrap_or_else(|| "NULL".into()),
                    ms_flags(*flags),
                    data.as_deref().map(quote).unwrap_or_else(|| "NULL".into()),
                );
            }
            Call::Umount2 { target, flags } => {
                let f = if flags.contains(MntFlags::MNT_DETACH) {
                    "MNT_DETACH"
                } else {
                    "0"
                };
                let _ = write!(s, "{}, {f}", quote(&target.to_string_lossy()));
            }
            Call::PivotRoot { new_root, put_old } => {
                let _ = write!(
                    s,
                    "{}, {}",
                    quote(&new_root.to_string_lossy()),
                    quote(&put_old.to_string_lossy())
                );
            }
            Call::Chroot { path } | Call::Chdir { path } | Call::Rmdir { path } => {
                s.push_str(&quote(&path.to_string_lossy()))
            }
            Call::Sethostname { name } => {
                let _ = write!(s, "{}, {}", quote(name), name.len());
            }
            Call::Mkdir { path, mode } => {
                let _ = write!(s, "{}, {:#o}", quote(&path.to_string_lossy()), mode);
            }
            Call::Mknod {
                path,
                mode,
                major,
                minor,
            } => {
                let _ = write!(
                    s,
                    "AT_FDCWD, {}, S_IFCHR|{:#o}, makedev({:#x}, {:#x})",
                    quote(&path.to_string_lossy()),
                    mode,
                    major,
                    minor
                );
            }
            Call::Symlink { target, link } => {
                let _ = write!(
                    s,
                    "{}, {}",
                    quote(&target.to_string_lossy()),
                    quote(&link.to_string_lossy())
                );
            }
            Call::WriteFile { path, data, .. } => {
                let _ = write!(
                    s,
                    "{}, {}, {}",
                    quote(&path.to_string_lossy()),
                    quote(data),
                    data.len()
                );
            }
            Call::Prctl { option, arg } => match option {
                Prctl::CapBsetDrop => {
                    let cap = crate::runtime::caps::NAMES
                        .get(*arg as usize)
                        .map(|n| format!("CAP_{n}"));
                    let _ = write!(
                        s,
                        "PR_CAPBSET_DROP, {}",
                        cap.unwrap_or_else(|| arg.to_string())
                    );
                }
                Prctl::CapAmbientClearAll => {
                    s.push_str("PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0")
                }
                Prctl::SetPdeathsig => {
                    let sig = nix::sys::signal::Signal::try_from(*arg as i32)
                        .map(|s| s.as_str().to_string());
                    let _ = write!(
                        s,
                        "PR_SET_PDEATHSIG, {}",
                        sig.unwrap_or_else(|_| arg.to_string())
                    );
                }
                _ => {
                    let _ = write!(s, "{}, {}", option.name(), arg);
                }
            },
            Call::Capset {
                effective,
                permitted,
                inheritable,
            } => {
                let _ = write!(
                    s,
                    "{{version=_LINUX_CAPABILITY_VERSION_3, pid=0}}, {{effective={effective:#x}, permitted={permitted:#x}, inheritable={inheritable:#x}}}"
                );
            }
            Call::Setgroups { gids } => {
                let list: Vec<String> = gids.iter().map(|g| g.to_string()).collect();
                let _ = write!(s, "{}, [{}]", gids.len(), list.join(", "));
            }
            Call::Setresgid { gid } => {
                let _ = write!(s, "{gid}, {gid}, {gid}");
            }
            Call::Setresuid { uid } => {
                let _ = write!(s, "{uid}, {uid}, {uid}");
            }
            Call::Setsid => {}
            Call::IoctlSetCtty { fd } => {
                let _ = write!(s, "{fd}, TIOCSCTTY, 0");
            }
            Call::Dup2 { old, new } => {
                let _ = write!(s, "{old}, {new}");
            }
            Call::CloseRange { first } => {
                let _ = write!(s, "{first}, 4294967295, CLOSE_RANGE_CLOEXEC");
            }
            Call::IfUp { name } => {
                let _ = write!(
                    s,
                    "{{ifr_name={}, ifr_flags=IFF_UP}}, SIOCSIFFLAGS",
                    quote(name)
                );
            }
            Call::Seccomp { filter, about } => {
                let _ = write!(
                    s,
                    "SECCOMP_SET_MODE_FILTER, 0, {{len={}, filter=…}} /* {about} */",
                    filter.len()
                );
            }
            Call::Execve { path, argv, envp } => {
                let a: Vec<String> = argv.iter().map(|x| quote(x)).collect();
                let _ = write!(
                    s,
                    "{}, [{}], 0x… /* {} vars */",
                    quote(&path.to_string_lossy()),
                    a.join(", "),
                    envp.len()
                );
            }
            Call::Openat2 {
                dirfd,
                path,
                flags,
                mode,
                resolve,
            } => {
                let _ = write!(
                    s,
                    "{dirfd}, {}, {{flags={}{}, resolve={}}}, 24",
                    quote(&path.to_string_lossy()),
                    o_flags(*flags | libc::O_CLOEXEC),
                    if flags & libc::O_CREAT != 0 {
                        format!(", mode={mode:#o}")
                    } else {
                        String::new()
                    },
                    resolve_flags(*resolve)
                );
            }
            Call::Mkdirat { dirfd, path, mode } => {
                let _ = write!(s, "{dirfd}, {}, {mode:#o}", quote(&path.to_string_lossy()));
            }
            Call::Open { path, flags } => {
                let _ = write!(
                    s,
                    "AT_FDCWD, {}, {}",
                    quote(&path.to_string_lossy()),
                    o_flags(*flags | libc::O_CLOEXEC)
                );
            }
            Call::IoctlPty { fd, op } => {
                let _ = match op {
                    PtyOp::Unlock => write!(s, "{fd}, TIOCSPTLCK, [0]"),
                    PtyOp::Number => write!(s, "{fd}, TIOCGPTN, […]"),
                };
            }
            Call::UnblockSignals => s.push_str("SIG_SETMASK, [], NULL, 8"),
            Call::Kill { pid, signal } => {
                let name = nix::sys::signal::Signal::try_from(*signal)
                    .map(|s| s.as_str().to_string())
                    .unwrap_or_else(|_| signal.to_string());
                let _ = write!(s, "{pid}, {name}");
            }
            Call::Wait4 { pid } => {
                let _ = write!(s, "{pid}, …, 0, NULL");
            }
        }
        s
    }

    /// A short name of what the call acts on, for error messages: `mount /x/merged`.
    pub fn object(&self) -> String {
        match self {
            Call::Mount { target, .. } | Call::Umount2 { target, .. } => {
                target.display().to_string()
            }
            Call::PivotRoot { new_root, .. } => new_root.display().to_string(),
            Call::Chroot { path }
            | Call::Chdir { path }
            | Call::Mkdir { path, .. }
            | Call::Mknod { path, .. }
            | Call::Rmdir { path }
            | Call::WriteFile { path, .. }
            | Call::Openat2 { path, .. }
            | Call::Mkdirat { path, .. }
            | Call::Open { path, .. }
            | Call::Execve { path, .. } => path.display().to_string(),
            Call::IoctlPty { fd, .. } => format!("fd {fd}"),
            Call::Symlink { link, .. } => link.display().to_string(),
            Call::Sethostname { name } | Call::IfUp { name } => name.clone(),
            Call::Prctl { option, .. } => option.name().to_string(),
            Call::Kill { pid, .. } | Call::Wait4 { pid } => format!("pid {pid}"),
            Call::Clone { flags } | Call::Unshare { flags } => clone_flags(*flags, false),
            Call::Setresuid { uid } => format!("uid {uid}"),
            Call::Setresgid { gid } => format!("gid {gid}"),
            Call::Setgroups { gids } => format!("{gids:?}"),
            Call::Dup2 { old, new } => format!("{old} -> {new}"),
            Call::IoctlSetCtty { fd } => format!("fd {fd}"),
            Call::CloseRange { first } => format!("fds from {first}"),
            Call::Capset { .. } | Call::Setsid | Call::Seccomp { .. } | Call::UnblockSignals => {
                String::new()
            }
        }
    }

    /// One value of every kind of call (and every refinement of its explanation key), so tests
    /// can check that the catalog explains each. The `match` below fails to compile when a new
    /// variant is added without an example here.
    pub fn examples() -> Vec<Call> {
        fn _every_variant_listed(c: &Call) {
            match c {
                Call::Clone { .. }
                | Call::Unshare { .. }
                | Call::Mount { .. }
                | Call::Umount2 { .. }
                | Call::PivotRoot { .. }
                | Call::Chroot { .. }
                | Call::Chdir { .. }
                | Call::Sethostname { .. }
                | Call::Mkdir { .. }
                | Call::Mknod { .. }
                | Call::Symlink { .. }
                | Call::Rmdir { .. }
                | Call::WriteFile { .. }
                | Call::Prctl { .. }
                | Call::Capset { .. }
                | Call::Setgroups { .. }
                | Call::Setresgid { .. }
                | Call::Setresuid { .. }
                | Call::Setsid
                | Call::IoctlSetCtty { .. }
                | Call::Dup2 { .. }
                | Call::CloseRange { .. }
                | Call::IfUp { .. }
                | Call::Seccomp { .. }
                | Call::Openat2 { .. }
                | Call::Mkdirat { .. }
                | Call::Open { .. }
                | Call::IoctlPty { .. }
                | Call::UnblockSignals
                | Call::Execve { .. }
                | Call::Kill { .. }
                | Call::Wait4 { .. } => {}
            }
        }
        let p = PathBuf::from;
        let mount = |fstype: Option<&str>, flags: MsFlags| Call::Mount {
            source: None,
            target: p("/x"),
            fstype: fstype.map(String::from),
            flags,
            data: None,
        };
        let mut v = vec![
            Call::Clone {
                flags: CloneFlags::CLONE_NEWPID,
            },
            Call::Unshare {
                flags: CloneFlags::CLONE_NEWNS,
            },
            Call::Unshare {
                flags: CloneFlags::CLONE_NEWCGROUP,
            },
            mount(None, MsFlags::MS_REMOUNT),
            mount(None, MsFlags::MS_PRIVATE | MsFlags::MS_REC),
            mount(None, MsFlags::MS_BIND),
            mount(None, MsFlags::empty()),
            Call::Umount2 {
                target: p("/x"),
                flags: MntFlags::MNT_DETACH,
            },
            Call::PivotRoot {
                new_root: p("."),
                put_old: p("."),
            },
            Call::Chroot { path: p(".") },
            Call::Chdir { path: p("/") },
            Call::Sethostname { name: "box".into() },
            Call::Mkdir {
                path: p("/x"),
                mode: 0o755,
            },
            Call::Mknod {
                path: p("/dev/null"),
                mode: 0o666,
                major: 1,
                minor: 3,
            },
            Call::Symlink {
                target: p("/proc/self/fd"),
                link: p("/dev/fd"),
            },
            Call::Rmdir { path: p("/x") },
            Call::WriteFile {
                path: p("/proc/x"),
                data: "1".into(),
                create: false,
            },
            Call::WriteFile {
                path: p("/sys/fs/cgroup/pids/x/pids.max"),
                data: "1".into(),
                create: false,
            },
            Call::WriteFile {
                path: p("/var/lib/dockling/containers/x/hostname"),
                data: "x\n".into(),
                create: true,
            },
            Call::Capset {
                effective: 0,
                permitted: 0,
                inheritable: 0,
            },
            Call::Setgroups { gids: vec![] },
            Call::Setresgid { gid: 0 },
            Call::Setresuid { uid: 0 },
            Call::Setsid,
            Call::IoctlSetCtty { fd: 0 },
            Call::Dup2 { old: 3, new: 0 },
            Call::CloseRange { first: 3 },
            Call::IfUp { name: "lo".into() },
            {
                let p = crate::runtime::seccomp::bpf::compile(
                    &crate::runtime::seccomp::default_policy(&[], (6, 1)),
                )
                .expect("the default profile compiles");
                Call::Seccomp {
                    filter: p.filter,
                    about: p.about,
                }
            },
            Call::Execve {
                path: p("/bin/sh"),
                argv: vec![],
                envp: vec![],
            },
            Call::Openat2 {
                dirfd: 5,
                path: p("etc"),
                flags: libc::O_PATH | libc::O_DIRECTORY,
                mode: 0,
                resolve: libc::RESOLVE_IN_ROOT,
            },
            Call::Openat2 {
                dirfd: 5,
                path: p("etc/hostname"),
                flags: libc::O_CREAT | libc::O_WRONLY,
                mode: 0o644,
                resolve: libc::RESOLVE_IN_ROOT,
            },
            Call::Mkdirat {
                dirfd: 5,
                path: p("data"),
                mode: 0o755,
            },
            Call::Open {
                path: p("/dev/null"),
                flags: libc::O_RDONLY,
            },
            Call::Open {
                path: p("/dev/ptmx"),
                flags: libc::O_RDWR | libc::O_NOCTTY,
            },
            Call::Open {
                path: p("/dev/pts/0"),
                flags: libc::O_RDWR,
            },
            Call::Open {
                path: p("/var/lib/dockling/containers/x/rootfs"),
                flags: libc::O_PATH | libc::O_DIRECTORY,
            },
            Call::IoctlPty {
                fd: 3,
                op: PtyOp::Unlock,
            },
            Call::IoctlPty {
                fd: 3,
                op: PtyOp::Number,
            },
            Call::UnblockSignals,
            Call::Kill { pid: 1, signal: 15 },
            Call::Wait4 { pid: 1 },
        ];
        for fs in [
            "overlay", "proc", "sysfs", "tmpfs", "devpts", "mqueue", "cgroup",
        ] {
            v.push(mount(Some(fs), MsFlags::empty()));
        }
        for option in [
            Prctl::CapBsetDrop,
            Prctl::CapAmbientClearAll,
            Prctl::SetKeepCaps,
            Prctl::SetNoNewPrivs,
            Prctl::SetPdeathsig,
            Prctl::SetDumpable,
        ] {
            v.push(Call::Prctl { option, arg: 0 });
        }
        v
    }
}

impl fmt::Display for Call {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}({})", self.name(), self.args())
    }
}

/// Quote a string the way strace does: C escapes, long strings cut with `...`.
pub fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for (i, c) in s.chars().enumerate() {
        if i >= 200 {
            out.push_str("\"...");
            return out;
        }
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\{:o}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Render clone/unshare flags by name, as strace does.
pub fn clone_flags(flags: CloneFlags, with_sigchld: bool) -> String {
    const NAMES: &[(CloneFlags, &str)] = &[
        (CloneFlags::CLONE_NEWNS, "CLONE_NEWNS"),
        (CloneFlags::CLONE_NEWCGROUP, "CLONE_NEWCGROUP"),
        (CloneFlags::CLONE_NEWUTS, "CLONE_NEWUTS"),
        (CloneFlags::CLONE_NEWIPC, "CLONE_NEWIPC"),
        (CloneFlags::CLONE_NEWUSER, "CLONE_NEWUSER"),
        (CloneFlags::CLONE_NEWPID, "CLONE_NEWPID"),
        (CloneFlags::CLONE_NEWNET, "CLONE_NEWNET"),
    ];
    let mut parts: Vec<&str> = NAMES
        .iter()
        .filter(|(f, _)| flags.contains(*f))
        .map(|(_, n)| *n)
        .collect();
    if with_sigchld {
        parts.push("SIGCHLD");
    }
    if parts.is_empty() {
        "0".into()
    } else {
        parts.join("|")
    }
}

/// Render `open` flags by name, as strace does.
pub fn o_flags(flags: i32) -> String {
    let mut parts = vec![match flags & libc::O_ACCMODE {
        libc::O_WRONLY => "O_WRONLY",
        libc::O_RDWR => "O_RDWR",
        _ => "O_RDONLY",
    }];
    for (f, n) in [
        (libc::O_CREAT, "O_CREAT"),
        (libc::O_NOCTTY, "O_NOCTTY"),
        (libc::O_DIRECTORY, "O_DIRECTORY"),
        (libc::O_NOFOLLOW, "O_NOFOLLOW"),
        (libc::O_CLOEXEC, "O_CLOEXEC"),
        (libc::O_PATH, "O_PATH"),
    ] {
        if flags & f == f {
            parts.push(n);
        }
    }
    parts.join("|")
}

/// Render `openat2` resolve flags by name, as strace does.
pub fn resolve_flags(resolve: u64) -> String {
    let parts: Vec<&str> = [
        (libc::RESOLVE_NO_XDEV, "RESOLVE_NO_XDEV"),
        (libc::RESOLVE_NO_MAGICLINKS, "RESOLVE_NO_MAGICLINKS"),
        (libc::RESOLVE_NO_SYMLINKS, "RESOLVE_NO_SYMLINKS"),
        (libc::RESOLVE_BENEATH, "RESOLVE_BENEATH"),
        (libc::RESOLVE_IN_ROOT, "RESOLVE_IN_ROOT"),
    ]
    .iter()
    .filter(|(f, _)| resolve & f == *f)
    .map(|(_, n)| *n)
    .collect();
    if parts.is_empty() {
        "0".into()
    } else {
        parts.join("|")
    }
}

/// Render mount flags by name, as strace does.
pub fn ms_flags(flags: MsFlags) -> String {
    const NAMES: &[(MsFlags, &str)] = &[
        (MsFlags::MS_RDONLY, "MS_RDONLY"),
        (MsFlags::MS_NOSUID, "MS_NOSUID"),
        (MsFlags::MS_NODEV, "MS_NODEV"),
        (MsFlags::MS_NOEXEC, "MS_NOEXEC"),
        (MsFlags::MS_REMOUNT, "MS_REMOUNT"),
        (MsFlags::MS_BIND, "MS_BIND"),
        (MsFlags::MS_REC, "MS_REC"),
        (MsFlags::MS_PRIVATE, "MS_PRIVATE"),
        (MsFlags::MS_SLAVE, "MS_SLAVE"),
        (MsFlags::MS_SHARED, "MS_SHARED"),
        (MsFlags::MS_STRICTATIME, "MS_STRICTATIME"),
        (MsFlags::MS_RELATIME, "MS_RELATIME"),
    ];
    let parts: Vec<&str> = NAMES
        .iter()
        .filter(|(f, _)| flags.contains(*f))
        .map(|(_, n)| *n)
        .collect();
    if parts.is_empty() {
        "0".into()
    } else {
        parts.join("|")
    }
}
