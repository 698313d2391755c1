//! A default seccomp filter: the syscalls Docker's default profile keeps from containers.
//!
//! Docker's profile is an allow-list of ~350 syscalls with argument rules; dockling ships the
//! complement that matters for teaching: a short, readable deny-list of the calls that reach
//! kernel-wide state (modules, kexec, clocks, keyrings, mounts and namespaces, tracing other
//! processes' memory, BPF). Each answers `EPERM`, like Docker. The filter is a classic BPF
//! program: check the architecture (a process could otherwise switch to the 32-bit syscall
//! table to get other numbers), load the syscall number, compare, return. `--privileged` and
//! `--security-opt seccomp=unconfined` skip it. See seccomp(2) and
//! Documentation/userspace-api/seccomp_filter.rst.

/// The syscalls the filter refuses, by name (x86_64 numbers below).
pub const DENIED: &[(&str, u32)] = &[
    ("acct", 163),
    ("add_key", 248),
    ("bpf", 321),
    ("clock_adjtime", 305),
    ("clock_settime", 227),
    ("create_module", 174),
    ("delete_module", 176),
    ("finit_module", 313),
    ("fsconfig", 431),
    ("fsmount", 432),
    ("fsopen", 430),
    ("fspick", 433),
    ("get_kernel_syms", 177),
    ("init_module", 175),
    ("ioperm", 173),
    ("iopl", 172),
    ("kexec_file_load", 320),
    ("kexec_load", 246),
    ("keyctl", 250),
    ("lookup_dcookie", 212),
    ("mount", 165),
    ("mount_setattr", 442),
    ("move_mount", 429),
    ("name_to_handle_at", 303),
    ("nfsservctl", 180),
    ("open_by_handle_at", 304),
    ("open_tree", 428),
    ("perf_event_open", 298),
    ("pivot_root", 155),
    ("process_vm_readv", 310),
    ("process_vm_writev", 311),
    ("query_module", 178),
    ("quotactl", 179),
    ("reboot", 169),
    ("request_key", 249),
    ("setns", 308),
    ("settimeofday", 164),
    ("swapoff", 168),
    ("swapon", 167),
    ("_sysctl", 156),
    ("umount2", 166),
    ("unshare", 272),
    ("uselib", 134),
    ("userfaultfd", 323),
    ("ustat", 136),
];

const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;
const X32_SYSCALL_BIT: u32 = 0x4000_0000;

// Classic BPF opcodes (linux/bpf_common.h, linux/filter.h).
const BPF_LD_W_ABS: u16 = 0x20;
const BPF_JEQ_K: u16 = 0x15;
const BPF_JGE_K: u16 = 0x35;
const BPF_RET_K: u16 = 0x06;
// Offsets in struct seccomp_data.
const OFF_NR: u32 = 0;
const OFF_ARCH: u32 = 4;

const RET_ALLOW: u32 = 0x7fff_0000;
const RET_KILL_PROCESS: u32 = 0x8000_0000;
const RET_ERRNO: u32 = 0x0005_0000;

/// The filter as BPF instructions `(code, jt, jf, k)`.
pub fn program() -> Vec<libc::sock_filter> {
    let ins = |code: u16, jt: u8, jf: u8, k: u32| libc::sock_filter { code, jt, jf, k };
    let mut p = vec![
        // A wrong architecture means syscall numbers we do not know: kill, as Docker does.
        ins(BPF_LD_W_ABS, 0, 0, OFF_ARCH),
        ins(BPF_JEQ_K, 1, 0, AUDIT_ARCH_X86_64),
        ins(BPF_RET_K, 0, 0, RET_KILL_PROCESS),
        ins(BPF_LD_W_ABS, 0, 0, OFF_NR),
        // The x32 ABI reuses numbers with a high bit set: refuse it entirely.
        ins(BPF_JGE_K, 0, 1, X32_SYSCALL_BIT),
        ins(BPF_RET_K, 0, 0, RET_ERRNO | libc::EPERM as u32),
    ];
    for (_, nr) in DENIED {
        // Equal: fall through to the errno return; otherwise skip it.
        p.push(ins(BPF_JEQ_K, 0, 1, *nr));
        p.push(ins(BPF_RET_K, 0, 0, RET_ERRNO | libc::EPERM as u32));
    }
    p.push(ins(BPF_RET_K, 0, 0, RET_ALLOW));
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_match_this_machines_headers() {
        #[cfg(target_arch = "x86_64")]
        for (name, nr) in DENIED {
            let expect = match *name {
                "mount" => libc::SYS_mount,
                "umount2" => libc::SYS_umount2,
                "unshare" => libc::SYS_unshare,
                "setns" => libc::SYS_setns,
                "pivot_root" => libc::SYS_pivot_root,
                "bpf" => libc::SYS_bpf,
                "kexec_load" => libc::SYS_kexec_load,
                "init_module" => libc::SYS_init_module,
                "open_tree" => libc::SYS_open_tree,
                "userfaultfd" => libc::SYS_userfaultfd,
                "keyctl" => libc::SYS_keyctl,
                "perf_event_open" => libc::SYS_perf_event_open,
                _ => continue,
            };
            assert_eq!(*nr as i64, expect, "{name}");
        }
    }

    #[test]
    fn program_ends_by_allowing() {
        let p = program();
        assert_eq!(p.last().unwrap().k, RET_ALLOW);
        assert_eq!(p.len(), 6 + 2 * DENIED.len() + 1);
    }
}
