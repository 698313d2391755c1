//! The two BPF instruction formats the seam hands to the kernel.
//!
//! `seccomp(2)` takes a classic BPF program ([`SockFilter`], `struct sock_filter` of
//! linux/filter.h); `bpf(BPF_PROG_LOAD)` of a cgroup device program takes eBPF ([`BpfInsn`],
//! `struct bpf_insn` of linux/bpf.h). They live here, below the code that compiles them
//! (`runtime::seccomp::bpf`, `cgroups::bpf`), because a [`super::Call`] carries them.

/// One classic BPF instruction (`struct sock_filter`, linux/filter.h).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SockFilter {
    /// Opcode.
    pub code: u16,
    /// Jump offset if true.
    pub jt: u8,
    /// Jump offset if false.
    pub jf: u8,
    /// Constant operand.
    pub k: u32,
}

/// One eBPF instruction, laid out as the kernel's `struct bpf_insn` (8 bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(C)]
pub struct BpfInsn {
    /// Opcode: class | operation | source.
    pub code: u8,
    /// Destination and source register, four bits each (order as the C bit field).
    pub regs: u8,
    /// Jump offset or memory offset.
    pub off: i16,
    /// Immediate operand.
    pub imm: i32,
}
