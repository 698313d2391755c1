//! The compiled programs run on `seccomp_data` inputs by a BPF interpreter ([`bpf::run`]):
//! each test states a decision the kernel will make, for x86_64 and aarch64 numbers alike.

use oci_spec::runtime::Arch;

use super::bpf::{self, audit_arch, number, run};
use super::*;

const ALLOW: u32 = 0x7fff_0000;
const EPERM: u32 = 0x0005_0001;
const ENOSYS: u32 = 0x0005_0026;
const KILL_PROCESS: u32 = 0x8000_0000;

const CLONE_NEWUSER: u64 = 0x1000_0000;
const CLONE_NEWNS: u64 = 0x0002_0000;
const CLONE_THREAD_FLAGS: u64 = 0x003d_0f00; // what pthread_create passes
const SIGCHLD: u64 = 17;

fn docker_default() -> Vec<u32> {
    super::super::caps::resolve(false, &[], &[]).unwrap()
}

fn with(cap: &str) -> Vec<u32> {
    super::super::caps::resolve(false, &[cap.to_string()], &[]).unwrap()
}

/// The decision for `name(args)` made on `arch`'s table by `filter`.
fn decide(filter: &[bpf::Insn], arch: Arch, name: &str, args: [u64; 6]) -> u32 {
    let nr = number(arch, name).unwrap_or_else(|| panic!("{name} has no number on {arch}"));
    run(filter, nr, audit_arch(arch).unwrap(), args)
}

fn program(caps: &[u32]) -> Vec<bpf::Insn> {
    bpf::compile(&default_policy(caps, (6, 1))).unwrap().filter
}

/// The architectures the default program accepts on this build: native + its 32-bit one.
fn arches() -> Vec<Arch> {
    if cfg!(target_arch = "aarch64") {
        vec![Arch::ScmpArchAarch64, Arch::ScmpArchArm]
    } else {
        vec![Arch::ScmpArchX86_64, Arch::ScmpArchX86]
    }
}

#[test]
fn everyday_syscalls_are_allowed_on_every_accepted_arch() {
    let p = program(&docker_default());
    for arch in arches() {
        for name in [
            "read",
            "write",
            "openat",
            "execve",
            "exit_group",
            "mkdirat",
            "futex",
            "chroot",
        ] {
            assert_eq!(decide(&p, arch, name, [0; 6]), ALLOW, "{name} on {arch}");
        }
    }
}

#[test]
fn kernel_wide_syscalls_are_refused_with_eperm() {
    let p = program(&docker_default());
    for arch in arches() {
        for name in [
            "mount",
            "umount2",
            "unshare",
            "setns",
            "pivot_root",
            "keyctl",
            "add_key",
            "bpf",
            "init_module",
            "kexec_load",
            "reboot",
            "settimeofday",
            "io_uring_setup",
            "io_uring_enter",
            "userfaultfd",
            "perf_event_open",
        ] {
            if let Some(nr) = number(arch, name) {
                assert_eq!(
                    run(&p, nr, audit_arch(arch).unwrap(), [0; 6]),
                    EPERM,
                    "{name} on {arch}"
                );
            }
        }
    }
}

#[test]
fn clone_with_a_namespace_flag_is_refused_without_cap_sys_admin() {
    let p = program(&docker_default());
    for arch in arches() {
        assert_eq!(
            decide(&p, arch, "clone", [SIGCHLD, 0, 0, 0, 0, 0]),
            ALLOW,
            "fork on {arch}"
        );
        assert_eq!(
            decide(&p, arch, "clone", [CLONE_THREAD_FLAGS, 0, 0, 0, 0, 0]),
            ALLOW,
            "thread on {arch}"
        );
        for flag in [
            CLONE_NEWUSER,
            CLONE_NEWNS,
            0x4000_0000, /* NEWNET */
            0x0200_0000, /* NEWCGROUP */
        ] {
            assert_eq!(
                decide(&p, arch, "clone", [SIGCHLD | flag, 0, 0, 0, 0, 0]),
                EPERM,
                "{flag:#x} on {arch}"
            );
        }
    }
    // The high word is compared too: a set bit above 32 with no namespace flag is still a plain clone.
    assert_eq!(
        decide(&p, arches()[0], "clone", [1 << 40 | SIGCHLD, 0, 0, 0, 0, 0]),
        ALLOW
    );
    let admin = program(&with("SYS_ADMIN"));
    assert_eq!(
        decide(
            &admin,
            arches()[0],
            "clone",
            [SIGCHLD | CLONE_NEWUSER, 0, 0, 0, 0, 0]
        ),
        ALLOW
    );
    assert_eq!(decide(&admin, arches()[0], "mount", [0; 6]), ALLOW);
    assert_eq!(decide(&admin, arches()[0], "clone3", [0; 6]), ALLOW);
}

#[test]
fn clone3_answers_enosys_so_libc_falls_back_to_clone() {
    let p = program(&docker_default());
    for arch in arches() {
        assert_eq!(decide(&p, arch, "clone3", [0; 6]), ENOSYS, "{arch}");
    }
}

#[test]
fn personality_only_with_dockers_values() {
    let p = program(&docker_default());
    for arch in arches() {
        for ok in [0, 8, 0x20000, 0x20008, 0xffff_ffff] {
            assert_eq!(
                decide(&p, arch, "personality", [ok, 0, 0, 0, 0, 0]),
                ALLOW,
                "{ok:#x} on {arch}"
            );
        }
        // ADDR_NO_RANDOMIZE would switch off ASLR; READ_IMPLIES_EXEC would make data executable.
        for bad in [0x0040000, 0x0400000, 0x0040000 | 1 << 32] {
            assert_eq!(
                decide(&p, arch, "personality", [bad, 0, 0, 0, 0, 0]),
                EPERM,
                "{bad:#x} on {arch}"
            );
        }
    }
    // On x86_64 all 64 bits are compared (as libseccomp does); an i386 call's arguments are
    // 32 bits, so only the low word counts there.
    let (wide, narrow) = (arches()[0], arches()[1]);
    assert_eq!(
        decide(&p, wide, "personality", [1 << 32, 0, 0, 0, 0, 0]),
        EPERM
    );
    assert_eq!(
        decide(&p, narrow, "personality", [1 << 32, 0, 0, 0, 0, 0]),
        ALLOW
    );
    let junk_high = 1 << 32 | SIGCHLD | CLONE_NEWUSER;
    assert_eq!(
        decide(&p, narrow, "clone", [junk_high, 0, 0, 0, 0, 0]),
        EPERM
    );
}

#[test]
fn socket_families_follow_dockers_three_rules() {
    let p = program(&docker_default());
    let arch = arches()[0];
    for (family, want) in [
        (1, ALLOW),
        (2, ALLOW),
        (10, ALLOW),
        (16, ALLOW),
        (37, ALLOW),
        (38, EPERM),
        (39, ALLOW),
        (40, EPERM),
        (41, ALLOW),
        (1 << 32, ALLOW),
    ] {
        assert_eq!(
            decide(&p, arch, "socket", [family, 1, 0, 0, 0, 0]),
            want,
            "family {family}"
        );
    }
}

#[test]
fn capability_groups_follow_the_bounding_set() {
    let arch = arches()[0];
    let plain = program(&docker_default());
    for (cap, call) in [
        ("SYS_PTRACE", "kcmp"),
        ("SYS_MODULE", "init_module"),
        ("SYS_BOOT", "reboot"),
        ("SYSLOG", "syslog"),
        ("SYS_TIME", "settimeofday"),
        ("SYS_ADMIN", "unshare"),
        ("SYS_NICE", "mbind"),
    ] {
        assert_eq!(
            decide(&plain, arch, call, [0; 6]),
            EPERM,
            "{call} without {cap}"
        );
        assert_eq!(
            decide(&program(&with(cap)), arch, call, [0; 6]),
            ALLOW,
            "{call} with {cap}"
        );
    }
    // Dropping a default capability takes its calls away: chroot needs SYS_CHROOT.
    let no_chroot = super::super::caps::resolve(false, &[], &["SYS_CHROOT".into()]).unwrap();
    assert_eq!(decide(&program(&no_chroot), arch, "chroot", [0; 6]), EPERM);
}

#[test]
fn ptrace_follows_the_kernel_version() {
    let arch = arches()[0];
    let new = bpf::compile(&default_policy(&docker_default(), (4, 8)))
        .unwrap()
        .filter;
    let old = bpf::compile(&default_policy(&docker_default(), (4, 4)))
        .unwrap()
        .filter;
    assert_eq!(decide(&new, arch, "ptrace", [0; 6]), ALLOW);
    assert_eq!(decide(&old, arch, "ptrace", [0; 6]), EPERM);
}

#[test]
fn other_architectures_and_x32_are_killed() {
    let p = program(&docker_default());
    assert_eq!(
        run(&p, 0, 0xc000_0028 /* a made-up arch */, [0; 6]),
        KILL_PROCESS
    );
    if cfg!(target_arch = "x86_64") {
        // x32's read is number 0 with bit 30 set, on the x86_64 audit arch.
        assert_eq!(
            run(
                &p,
                0x4000_0000,
                audit_arch(Arch::ScmpArchX86_64).unwrap(),
                [0; 6]
            ),
            KILL_PROCESS
        );
        // aarch64 is not accepted on an x86_64 machine (it cannot occur there).
        assert_eq!(
            run(&p, 63, audit_arch(Arch::ScmpArchAarch64).unwrap(), [0; 6]),
            KILL_PROCESS
        );
    }
}

#[test]
fn numbers_differ_per_arch_and_the_program_uses_the_right_table() {
    // mkdirat is 258 on x86_64, 34 on aarch64, 296 on i386; keyctl is 250 on x86_64 but
    // 219 on aarch64 (where 250 is... nothing Docker allows: check it is not confused).
    assert_eq!(number(Arch::ScmpArchX86_64, "mkdirat"), Some(258));
    assert_eq!(number(Arch::ScmpArchAarch64, "mkdirat"), Some(34));
    assert_eq!(number(Arch::ScmpArchX86, "mkdirat"), Some(296));
    // An aarch64 policy, compiled wherever the tests run, decides by aarch64's numbers.
    let mut policy = default_policy(&docker_default(), (6, 1));
    policy.set_architectures(Some(vec![Arch::ScmpArchAarch64]));
    let p = bpf::compile(&policy).unwrap().filter;
    let a64 = audit_arch(Arch::ScmpArchAarch64).unwrap();
    assert_eq!(run(&p, 34, a64, [0; 6]), ALLOW, "mkdirat");
    assert_eq!(run(&p, 219, a64, [0; 6]), EPERM, "keyctl");
    assert_eq!(run(&p, 40, a64, [0; 6]), EPERM, "mount");
    assert_eq!(
        run(&p, 220, a64, [SIGCHLD | CLONE_NEWUSER, 0, 0, 0, 0, 0]),
        EPERM,
        "clone NEWUSER"
    );
    assert_eq!(run(&p, 220, a64, [SIGCHLD, 0, 0, 0, 0, 0]), ALLOW, "clone");
    assert_eq!(run(&p, 435, a64, [0; 6]), ENOSYS, "clone3");
}

#[test]
fn arm_compat_gets_its_private_calls_on_an_aarch64_policy() {
    // Docker's archMap gives aarch64 the 32-bit arm table too; a 32-bit C library needs
    // set_tls (ARM private call 0x0f0005), which the syscalls crate does not list.
    // Resolved as on an arm64 machine (whatever machine runs the test).
    let caps = cap_names(&docker_default());
    let target = Target {
        arch: "arm64",
        caps: &caps,
        kernel: (6, 1),
    };
    let policy = profile::resolve(&default::profile(), &target)
        .unwrap()
        .unwrap();
    assert_eq!(
        policy.architectures().as_deref(),
        Some(&[Arch::ScmpArchAarch64, Arch::ScmpArchArm][..]),
        "Docker's archMap entry for aarch64"
    );
    let p = bpf::compile(&policy).unwrap().filter;
    let arm = audit_arch(Arch::ScmpArchArm).unwrap();
    assert_eq!(run(&p, 0x0f_0005, arm, [0; 6]), ALLOW, "set_tls");
    assert_eq!(run(&p, 0x0f_0002, arm, [0; 6]), ALLOW, "cacheflush");
    assert_eq!(
        run(&p, 0x0f_0006, arm, [0; 6]),
        EPERM,
        "get_tls is not on Docker's list"
    );
    assert_eq!(
        run(&p, 0x0f_0100, arm, [0; 6]),
        ENOSYS,
        "above every known number"
    );
    assert_eq!(decide(&p, Arch::ScmpArchArm, "mkdir", [0; 6]), ALLOW);
    assert_eq!(decide(&p, Arch::ScmpArchArm, "mount", [0; 6]), EPERM);
    assert_eq!(
        decide(
            &p,
            Arch::ScmpArchArm,
            "clone",
            [SIGCHLD | CLONE_NEWUSER, 0, 0, 0, 0, 0]
        ),
        EPERM
    );
}

#[test]
fn syscalls_newer_than_this_build_knows_answer_enosys() {
    let p = program(&docker_default());
    let arch = arches()[0];
    assert_eq!(run(&p, 2000, audit_arch(arch).unwrap(), [0; 6]), ENOSYS);
}

/// Compare the program with a direct reading of the policy for every number and a spread of
/// argument values: the search tree and the jumps must not lose or misplace a rule.
#[test]
fn the_program_decides_as_the_policy_says_for_every_number() {
    let policy = default_policy(&docker_default(), (6, 1));
    let p = bpf::compile(&policy).unwrap().filter;
    for arch in arches() {
        let audit = audit_arch(arch).unwrap();
        for nr in 0..600u32 {
            let rules: Vec<_> = policy
                .syscalls()
                .as_deref()
                .unwrap()
                .iter()
                .filter(|r| r.names().iter().any(|n| number(arch, n) == Some(nr)))
                .collect();
            for a0 in [0u64, 8, 17, 38, 39, 40, 0x1000_0011, 0xffff_ffff, 1 << 33] {
                let args = [a0, 0, 0, 0, 0, 0];
                let matching = |r: &&oci_spec::runtime::LinuxSyscall| {
                    r.args().as_deref().unwrap_or_default().iter().all(|c| {
                        use oci_spec::runtime::LinuxSeccompOperator as Op;
                        // i386 calls see only the low 32 bits of each argument.
                        let v = if arch == Arch::ScmpArchX86 || arch == Arch::ScmpArchArm {
                            args[c.index()] & 0xffff_ffff
                        } else {
                            args[c.index()]
                        };
                        match c.op() {
                            Op::ScmpCmpEq => v == c.value(),
                            Op::ScmpCmpNe => v != c.value(),
                            Op::ScmpCmpLt => v < c.value(),
                            Op::ScmpCmpLe => v <= c.value(),
                            Op::ScmpCmpGt => v > c.value(),
                            Op::ScmpCmpGe => v >= c.value(),
                            Op::ScmpCmpMaskedEq => v & c.value() == c.value_two().unwrap_or(0),
                        }
                    })
                };
                let conditional = rules
                    .iter()
                    .filter(|r| r.args().as_ref().is_some_and(|a| !a.is_empty()));
                let plain = rules
                    .iter()
                    .filter(|r| r.args().as_ref().is_none_or(|a| a.is_empty()));
                let want = conditional
                    .chain(plain)
                    .find(|r| matching(r))
                    .map(|r| match r.action() {
                        oci_spec::runtime::LinuxSeccompAction::ScmpActAllow => ALLOW,
                        _ => 0x0005_0000 | r.errno_ret().unwrap_or(1),
                    })
                    .unwrap_or(if nr > bpf::highest(arch).unwrap() {
                        ENOSYS
                    } else {
                        EPERM
                    });
                assert_eq!(
                    run(&p, nr, audit, args),
                    want,
                    "nr {nr} arg0 {a0:#x} on {arch}"
                );
            }
        }
    }
}

#[test]
fn the_default_program_stays_small_and_shallow() {
    let p = program(&docker_default());
    // Measured when written: 463 instructions for x86_64 + i386, at most 19 executed per
    // syscall, 12 on average (the old 45-entry deny-list: 97 instructions, 50 executed for
    // every allowed syscall).
    assert!(p.len() < 600, "{} instructions", p.len());
    for arch in arches() {
        let deepest = (0..600)
            .map(|nr| bpf::run_counted(&p, nr, audit_arch(arch).unwrap(), [0; 6]).1)
            .max()
            .unwrap();
        assert!(
            deepest < 40,
            "a syscall on {arch} took {deepest} instructions to decide"
        );
    }
}

#[test]
fn a_custom_profile_in_dockers_format_resolves_and_compiles() {
    let text = br#"{
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_AARCH64"],
        "syscalls": [
            {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13},
            {"names": ["kill"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 1, "value": 9, "op": "SCMP_CMP_EQ"}]},
            {"names": ["reboot"], "action": "SCMP_ACT_KILL", "includes": {"caps": ["CAP_SYS_BOOT"]}}
        ]
    }"#;
    let profile = profile::parse(text).unwrap();
    let policy = policy(&profile, &docker_default(), (6, 1))
        .unwrap()
        .unwrap();
    assert_eq!(
        policy.syscalls().as_ref().unwrap().len(),
        2,
        "reboot's rule needs CAP_SYS_BOOT"
    );
    let p = bpf::compile(&policy).unwrap().filter;
    let arch = arches()[0];
    assert_eq!(decide(&p, arch, "mkdirat", [0; 6]), 0x0005_000d);
    assert_eq!(decide(&p, arch, "kill", [1, 9, 0, 0, 0, 0]), EPERM);
    assert_eq!(decide(&p, arch, "kill", [1, 15, 0, 0, 0, 0]), ALLOW);
    assert_eq!(decide(&p, arch, "reboot", [0; 6]), ALLOW);
    assert_eq!(
        run(&p, 5000, audit_arch(arch).unwrap(), [0; 6]),
        ALLOW,
        "default allow: no ENOSYS stub"
    );
}

#[test]
fn bad_profiles_name_the_field() {
    let cases: &[(&[u8], &str)] = &[
        (br#"{"defaultAction": "SCMP_ACT_NOPE"}"#, "defaultAction: unknown action"),
        (br#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["x"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_FOO"}]}]}"#, "syscalls[0].args[0].op: unknown operator"),
        (br#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["x"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 7, "value": 1, "op": "SCMP_CMP_EQ"}]}]}"#, "syscalls[0].args[0].index"),
        (br#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["x"], "action": "SCMP_ACT_ERRNO", "excludes": {"minKernel": "four"}}]}"#, "syscalls[0].excludes.minKernel"),
        (br#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": [], "action": "SCMP_ACT_ERRNO"}]}"#, "syscalls[0].names"),
        (br#"{"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_Z80"]}"#, "architectures[0]: unknown architecture"),
        (br#"{"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86_64"], "archMap": [{"architecture": "SCMP_ARCH_X86_64"}]}"#, "architectures and archMap"),
        (br#"{"syscalls": [{"names": ["x"], "action": "SCMP_ACT_ERRNO"}]}"#, "defaultAction: missing"),
        (br#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["x"], "action": "SCMP_ACT_ERRNO", "exclude": {}}]}"#, "syscalls[0].exclude: unknown field `exclude`"),
        (br#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["x"], "action": "SCMP_ACT_ERRNO", "errnoRet": "EPERM"}]}"#, "syscalls[0].errnoRet: invalid type"),
        (br#"{"defaultAction": "SCMP_ACT_NOTIFY"}"#, "SCMP_ACT_NOTIFY needs a seccomp agent"),
    ];
    for (text, want) in cases {
        let err = match profile::parse(text) {
            Err(e) => e,
            Ok(p) => match policy(&p, &docker_default(), (6, 1)) {
                Err(e) => e.to_string(),
                Ok(_) => panic!("accepted: {}", String::from_utf8_lossy(text)),
            },
        };
        assert!(err.contains(want), "{err:?} should contain {want:?}");
    }
}

#[test]
fn an_empty_profile_installs_nothing_as_in_docker() {
    let p = profile::parse(b"{}").unwrap();
    assert!(policy(&p, &docker_default(), (6, 1)).unwrap().is_none());
}

#[test]
fn the_default_policy_drops_x32_and_keeps_i386() {
    let policy = default_policy(&docker_default(), (6, 1));
    let arches = policy.architectures().clone().unwrap();
    if cfg!(target_arch = "x86_64") {
        assert_eq!(arches, vec![Arch::ScmpArchX86_64, Arch::ScmpArchX86]);
    }
}
