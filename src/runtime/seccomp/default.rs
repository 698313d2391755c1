//! Docker's default seccomp profile, as data.
//!
//! The same rules as moby's `profiles/seccomp/default.json`, grouped as Docker groups them: one
//! allow-list of everyday syscalls, a few calls allowed only with certain arguments
//! (`socket`, `personality`, `clone`), a few only on certain architectures, and one group per
//! capability: a container that keeps (or is given, `--cap-add`) that capability in its
//! bounding set gets the syscalls the capability is for. Everything else is refused with
//! `EPERM` (`defaultErrnoRet: 1`). These lists are facts about Docker; keep them in Docker's
//! words so a reader can hold them against `default.json` line by line.

use super::profile::{ArchMap, Arg, Filter, Profile, Rule};

/// The everyday syscalls every container may make, whatever its capabilities.
const ALLOWED: &[&str] = &[
    "accept",
    "accept4",
    "access",
    "adjtimex",
    "alarm",
    "bind",
    "brk",
    "cachestat",
    "capget",
    "capset",
    "chdir",
    "chmod",
    "chown",
    "chown32",
    "clock_adjtime",
    "clock_adjtime64",
    "clock_getres",
    "clock_getres_time64",
    "clock_gettime",
    "clock_gettime64",
    "clock_nanosleep",
    "clock_nanosleep_time64",
    "close",
    "close_range",
    "connect",
    "copy_file_range",
    "creat",
    "dup",
    "dup2",
    "dup3",
    "epoll_create",
    "epoll_create1",
    "epoll_ctl",
    "epoll_ctl_old",
    "epoll_pwait",
    "epoll_pwait2",
    "epoll_wait",
    "epoll_wait_old",
    "eventfd",
    "eventfd2",
    "execve",
    "execveat",
    "exit",
    "exit_group",
    "faccessat",
    "faccessat2",
    "fadvise64",
    "fadvise64_64",
    "fallocate",
    "fanotify_mark",
    "fchdir",
    "fchmod",
    "fchmodat",
    "fchmodat2",
    "fchown",
    "fchown32",
    "fchownat",
    "fcntl",
    "fcntl64",
    "fdatasync",
    "fgetxattr",
    "flistxattr",
    "flock",
    "fork",
    "fremovexattr",
    "fsetxattr",
    "fstat",
    "fstat64",
    "fstatat64",
    "fstatfs",
    "fstatfs64",
    "fsync",
    "ftruncate",
    "ftruncate64",
    "futex",
    "futex_requeue",
    "futex_time64",
    "futex_wait",
    "futex_waitv",
    "futex_wake",
    "futimesat",
    "getcpu",
    "getcwd",
    "getdents",
    "getdents64",
    "getegid",
    "getegid32",
    "geteuid",
    "geteuid32",
    "getgid",
    "getgid32",
    "getgroups",
    "getgroups32",
    "getitimer",
    "getpeername",
    "getpgid",
    "getpgrp",
    "getpid",
    "getppid",
    "getpriority",
    "getrandom",
    "getresgid",
    "getresgid32",
    "getresuid",
    "getresuid32",
    "getrlimit",
    "get_robust_list",
    "getrusage",
    "getsid",
    "getsockname",
    "getsockopt",
    "get_thread_area",
    "gettid",
    "gettimeofday",
    "getuid",
    "getuid32",
    "getxattr",
    "getxattrat",
    "inotify_add_watch",
    "inotify_init",
    "inotify_init1",
    "inotify_rm_watch",
    "io_cancel",
    "ioctl",
    "io_destroy",
    "io_getevents",
    "io_pgetevents",
    "io_pgetevents_time64",
    "ioprio_get",
    "ioprio_set",
    "io_setup",
    "io_submit",
    "ipc",
    "kill",
    "landlock_add_rule",
    "landlock_create_ruleset",
    "landlock_restrict_self",
    "lchown",
    "lchown32",
    "lgetxattr",
    "link",
    "linkat",
    "listen",
    "listmount",
    "listxattr",
    "listxattrat",
    "llistxattr",
    "_llseek",
    "lremovexattr",
    "lseek",
    "lsetxattr",
    "lstat",
    "lstat64",
    "madvise",
    "map_shadow_stack",
    "membarrier",
    "memfd_create",
    "memfd_secret",
    "mincore",
    "mkdir",
    "mkdirat",
    "mknod",
    "mknodat",
    "mlock",
    "mlock2",
    "mlockall",
    "mmap",
    "mmap2",
    "mprotect",
    "mq_getsetattr",
    "mq_notify",
    "mq_open",
    "mq_timedreceive",
    "mq_timedreceive_time64",
    "mq_timedsend",
    "mq_timedsend_time64",
    "mq_unlink",
    "mremap",
    "mseal",
    "msgctl",
    "msgget",
    "msgrcv",
    "msgsnd",
    "msync",
    "munlock",
    "munlockall",
    "munmap",
    "name_to_handle_at",
    "nanosleep",
    "newfstatat",
    "_newselect",
    "open",
    "openat",
    "openat2",
    "pause",
    "pidfd_open",
    "pidfd_send_signal",
    "pipe",
    "pipe2",
    "pkey_alloc",
    "pkey_free",
    "pkey_mprotect",
    "poll",
    "ppoll",
    "ppoll_time64",
    "prctl",
    "pread64",
    "preadv",
    "preadv2",
    "prlimit64",
    "process_mrelease",
    "pselect6",
    "pselect6_time64",
    "pwrite64",
    "pwritev",
    "pwritev2",
    "read",
    "readahead",
    "readlink",
    "readlinkat",
    "readv",
    "recv",
    "recvfrom",
    "recvmmsg",
    "recvmmsg_time64",
    "recvmsg",
    "remap_file_pages",
    "removexattr",
    "removexattrat",
    "rename",
    "renameat",
    "renameat2",
    "restart_syscall",
    "riscv_hwprobe",
    "rmdir",
    "rseq",
    "rt_sigaction",
    "rt_sigpending",
    "rt_sigprocmask",
    "rt_sigqueueinfo",
    "rt_sigreturn",
    "rt_sigsuspend",
    "rt_sigtimedwait",
    "rt_sigtimedwait_time64",
    "rt_tgsigqueueinfo",
    "sched_getaffinity",
    "sched_getattr",
    "sched_getparam",
    "sched_get_priority_max",
    "sched_get_priority_min",
    "sched_getscheduler",
    "sched_rr_get_interval",
    "sched_rr_get_interval_time64",
    "sched_setaffinity",
    "sched_setattr",
    "sched_setparam",
    "sched_setscheduler",
    "sched_yield",
    "seccomp",
    "select",
    "semctl",
    "semget",
    "semop",
    "semtimedop",
    "semtimedop_time64",
    "send",
    "sendfile",
    "sendfile64",
    "sendmmsg",
    "sendmsg",
    "sendto",
    "setfsgid",
    "setfsgid32",
    "setfsuid",
    "setfsuid32",
    "setgid",
    "setgid32",
    "setgroups",
    "setgroups32",
    "setitimer",
    "setpgid",
    "setpriority",
    "setregid",
    "setregid32",
    "setresgid",
    "setresgid32",
    "setresuid",
    "setresuid32",
    "setreuid",
    "setreuid32",
    "setrlimit",
    "set_robust_list",
    "setsid",
    "setsockopt",
    "set_thread_area",
    "set_tid_address",
    "setuid",
    "setuid32",
    "setxattr",
    "setxattrat",
    "shmat",
    "shmctl",
    "shmdt",
    "shmget",
    "shutdown",
    "sigaltstack",
    "signalfd",
    "signalfd4",
    "sigprocmask",
    "sigreturn",
    "socketcall",
    "socketpair",
    "splice",
    "stat",
    "stat64",
    "statfs",
    "statfs64",
    "statmount",
    "statx",
    "symlink",
    "symlinkat",
    "sync",
    "sync_file_range",
    "syncfs",
    "sysinfo",
    "tee",
    "tgkill",
    "time",
    "timer_create",
    "timer_delete",
    "timer_getoverrun",
    "timer_gettime",
    "timer_gettime64",
    "timer_settime",
    "timer_settime64",
    "timerfd_create",
    "timerfd_gettime",
    "timerfd_gettime64",
    "timerfd_settime",
    "timerfd_settime64",
    "times",
    "tkill",
    "truncate",
    "truncate64",
    "ugetrlimit",
    "umask",
    "uname",
    "unlink",
    "unlinkat",
    "uretprobe",
    "utime",
    "utimensat",
    "utimensat_time64",
    "utimes",
    "vfork",
    "vmsplice",
    "wait4",
    "waitid",
    "waitpid",
    "write",
    "writev",
];

/// `CLONE_NEWNS | CLONE_NEWCGROUP | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWUSER |
/// CLONE_NEWPID | CLONE_NEWNET` (clone(2)): `clone` with none of these bits is a plain fork or
/// thread; with any of them it makes a namespace, which needs CAP_SYS_ADMIN.
pub const CLONE_NAMESPACE_FLAGS: u64 = 0x7e02_0000;

/// `personality(2)` values Docker allows: PER_LINUX, PER_LINUX32, UNAME26, UNAME26|PER_LINUX32,
/// and 0xffffffff (query the current persona without changing it).
const PERSONALITIES: &[u64] = &[0x0, 0x8, 0x20000, 0x20008, 0xffff_ffff];

/// Syscalls allowed only when the container holds a capability, by capability, in Docker's order.
const BY_CAPABILITY: &[(&str, &[&str])] = &[
    ("CAP_DAC_READ_SEARCH", &["open_by_handle_at"]),
    (
        "CAP_SYS_ADMIN",
        &[
            "bpf",
            "clone",
            "clone3",
            "fanotify_init",
            "fsconfig",
            "fsmount",
            "fsopen",
            "fspick",
            "lookup_dcookie",
            "lsm_get_self_attr",
            "lsm_list_modules",
            "lsm_set_self_attr",
            "mount",
            "mount_setattr",
            "move_mount",
            "open_tree",
            "perf_event_open",
            "quotactl",
            "quotactl_fd",
            "setdomainname",
            "sethostname",
            "setns",
            "syslog",
            "umount",
            "umount2",
            "unshare",
        ],
    ),
];

/// The capability groups that come after the `clone`/`clone3` rules in Docker's file.
const BY_CAPABILITY_LATER: &[(&str, &[&str])] = &[
    ("CAP_SYS_BOOT", &["reboot"]),
    ("CAP_SYS_CHROOT", &["chroot"]),
    (
        "CAP_SYS_MODULE",
        &["delete_module", "init_module", "finit_module"],
    ),
    ("CAP_SYS_PACCT", &["acct"]),
    (
        "CAP_SYS_PTRACE",
        &[
            "kcmp",
            "pidfd_getfd",
            "process_madvise",
            "process_vm_readv",
            "process_vm_writev",
            "ptrace",
        ],
    ),
    ("CAP_SYS_RAWIO", &["iopl", "ioperm"]),
    (
        "CAP_SYS_TIME",
        &["settimeofday", "stime", "clock_settime", "clock_settime64"],
    ),
    ("CAP_SYS_TTY_CONFIG", &["vhangup"]),
    (
        "CAP_SYS_NICE",
        &[
            "get_mempolicy",
            "mbind",
            "set_mempolicy",
            "set_mempolicy_home_node",
        ],
    ),
    ("CAP_SYSLOG", &["syslog"]),
    ("CAP_BPF", &["bpf"]),
    ("CAP_PERFMON", &["perf_event_open"]),
];

/// Calls that exist only on some architectures (Docker's names for them: `amd64`, `arm64`...).
const BY_ARCH: &[(&[&str], &[&str])] = &[
    (&["ppc64le"], &["sync_file_range2", "swapcontext"]),
    (
        &["arm", "arm64"],
        &[
            "arm_fadvise64_64",
            "arm_sync_file_range",
            "sync_file_range2",
            "breakpoint",
            "cacheflush",
            "set_tls",
        ],
    ),
    (&["amd64", "x32"], &["arch_prctl"]),
    (&["amd64", "x32", "x86"], &["modify_ldt"]),
    (
        &["s390", "s390x"],
        &[
            "s390_pci_mmio_read",
            "s390_pci_mmio_write",
            "s390_runtime_instr",
        ],
    ),
    (&["riscv64"], &["riscv_flush_icache"]),
];

fn allow(names: &[&str]) -> Rule {
    Rule {
        names: Some(names.iter().map(|n| n.to_string()).collect()),
        action: "SCMP_ACT_ALLOW".into(),
        ..Rule::default()
    }
}

fn arg(index: u32, op: &str, value: u64, value_two: u64) -> Arg {
    Arg {
        index,
        value,
        value_two,
        op: op.into(),
    }
}

fn caps(names: &[&str]) -> Option<Filter> {
    Some(Filter {
        caps: Some(names.iter().map(|n| n.to_string()).collect()),
        ..Filter::default()
    })
}

fn arches(names: &[&str]) -> Filter {
    Filter {
        arches: Some(names.iter().map(|n| n.to_string()).collect()),
        ..Filter::default()
    }
}

/// Docker's default profile.
pub fn profile() -> Profile {
    let mut rules = vec![allow(ALLOWED)];
    // Since Linux 4.8 ptrace cannot be used to get around seccomp, so Docker allows it (and the
    // process_vm_* calls, which need the same ptrace access to the target) to everyone.
    rules.push(Rule {
        includes: Some(Filter {
            min_kernel: Some("4.8".into()),
            ..Filter::default()
        }),
        ..allow(&["process_vm_readv", "process_vm_writev", "ptrace"])
    });
    // socket(2) for every address family except 38 (AF_ALG, the kernel's crypto API) and 40
    // (AF_VSOCK, sockets to the hypervisor), exactly as Docker's three rules say.
    for (op, family) in [
        ("SCMP_CMP_LT", 38),
        ("SCMP_CMP_EQ", 39),
        ("SCMP_CMP_GT", 40),
    ] {
        rules.push(Rule {
            args: Some(vec![arg(0, op, family, 0)]),
            ..allow(&["socket"])
        });
    }
    for p in PERSONALITIES {
        rules.push(Rule {
            args: Some(vec![arg(0, "SCMP_CMP_EQ", *p, 0)]),
            ..allow(&["personality"])
        });
    }
    for (on, names) in BY_ARCH {
        rules.push(Rule {
            includes: Some(arches(on)),
            ..allow(names)
        });
    }
    for (cap, names) in BY_CAPABILITY {
        rules.push(Rule {
            includes: caps(&[cap]),
            ..allow(names)
        });
    }
    // Without CAP_SYS_ADMIN: clone only when no namespace flag is set ((flags & mask) == 0).
    // s390 passes the flags as the second argument.
    rules.push(Rule {
        args: Some(vec![arg(0, "SCMP_CMP_MASKED_EQ", CLONE_NAMESPACE_FLAGS, 0)]),
        excludes: Some(Filter {
            arches: Some(vec!["s390".into(), "s390x".into()]),
            ..caps(&["CAP_SYS_ADMIN"]).unwrap_or_default()
        }),
        ..allow(&["clone"])
    });
    rules.push(Rule {
        args: Some(vec![arg(1, "SCMP_CMP_MASKED_EQ", CLONE_NAMESPACE_FLAGS, 0)]),
        includes: Some(arches(&["s390", "s390x"])),
        excludes: caps(&["CAP_SYS_ADMIN"]),
        ..allow(&["clone"])
    });
    // clone3 passes its flags in a struct the filter cannot read (seccomp sees pointers, not
    // memory), so it cannot be checked like clone. ENOSYS, not EPERM: glibc then falls back to
    // clone, which can be checked.
    rules.push(Rule {
        action: "SCMP_ACT_ERRNO".into(),
        errno_ret: Some(libc::ENOSYS as u32),
        excludes: caps(&["CAP_SYS_ADMIN"]),
        ..allow(&["clone3"])
    });
    for (cap, names) in BY_CAPABILITY_LATER {
        rules.push(Rule {
            includes: caps(&[cap]),
            ..allow(names)
        });
    }
    let map = |arch: &str, subs: &[&str]| ArchMap {
        architecture: arch.into(),
        sub_architectures: Some(subs.iter().map(|s| s.to_string()).collect()),
    };
    Profile {
        default_action: "SCMP_ACT_ERRNO".into(),
        default_errno_ret: Some(libc::EPERM as u32),
        arch_map: Some(vec![
            map("SCMP_ARCH_X86_64", &["SCMP_ARCH_X86", "SCMP_ARCH_X32"]),
            map("SCMP_ARCH_AARCH64", &["SCMP_ARCH_ARM"]),
            map(
                "SCMP_ARCH_MIPS64",
                &["SCMP_ARCH_MIPS", "SCMP_ARCH_MIPS64N32"],
            ),
            map(
                "SCMP_ARCH_MIPS64N32",
                &["SCMP_ARCH_MIPS", "SCMP_ARCH_MIPS64"],
            ),
            map(
                "SCMP_ARCH_MIPSEL64",
                &["SCMP_ARCH_MIPSEL", "SCMP_ARCH_MIPSEL64N32"],
            ),
            map(
                "SCMP_ARCH_MIPSEL64N32",
                &["SCMP_ARCH_MIPSEL", "SCMP_ARCH_MIPSEL64"],
            ),
            map("SCMP_ARCH_S390X", &["SCMP_ARCH_S390"]),
            map("SCMP_ARCH_RISCV64", &[]),
            map("SCMP_ARCH_LOONGARCH64", &[]),
        ]),
        syscalls: Some(rules),
        ..Profile::default()
    }
}
