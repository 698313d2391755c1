//! The device rules as a cgroup v2 device program (`BPF_PROG_TYPE_CGROUP_DEVICE`).
//!
//! cgroup v2 has no `devices.allow`: the kernel instead runs the BPF programs attached to the
//! group (`bpf(BPF_PROG_ATTACH, BPF_CGROUP_DEVICE)`) on every `mknod` and every open of a
//! device node, and refuses the access unless each returns 1 (bpf(2), the kernel's
//! `Documentation/bpf/prog_cgroup_device.rst` is thin; `include/uapi/linux/bpf.h` has the
//! context: `struct bpf_cgroup_dev_ctx { u32 access_type; u32 major; u32 minor; }`, where
//! `access_type` is `access << 16 | type`).
//!
//! The program is a straight list: the rules' [`Effective`] exceptions in order, each "if the
//! device and access match, return the exception's verdict", then the default verdict. No
//! loops, no maps, no helpers: the verifier accepts it as it is.

use super::devices::{Effective, Kind, MKNOD, READ, WRITE};

/// One instruction (`struct bpf_insn`): the seam's type, since a
/// [`crate::sys::Call::BpfProgLoad`] carries the program.
pub use crate::sys::bpf::BpfInsn as Insn;

// Opcodes used (include/uapi/linux/bpf_common.h, bpf.h).
const LDX_MEM_W: u8 = 0x61; // dst = *(u32 *)(src + off)
const ALU32_AND_K: u8 = 0x54; // dst &= imm (32-bit)
const ALU32_RSH_K: u8 = 0x74; // dst >>= imm (32-bit)
const ALU32_MOV_X: u8 = 0xbc; // dst = src (32-bit)
const ALU64_MOV_K: u8 = 0xb7; // dst = imm
const JMP_JNE_K: u8 = 0x55; // if dst != imm: pc += off
const JMP_JEQ_K: u8 = 0x15; // if dst == imm: pc += off
const JMP_EXIT: u8 = 0x95; // return r0

/// `bpf_cgroup_dev_ctx` device types and access bits.
const DEV_BLOCK: i32 = 1;
const DEV_CHAR: i32 = 2;
const ACC_MKNOD: i32 = 1;
const ACC_READ: i32 = 2;
const ACC_WRITE: i32 = 4;

// Registers: r1 holds the context on entry; the program keeps the fields in r2..r5.
const R0: u8 = 0;
const R1: u8 = 1;
const TYPE: u8 = 2;
const ACCESS: u8 = 3;
const MAJOR: u8 = 4;
const MINOR: u8 = 5;

fn insn(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
    // The C bit field `dst_reg:4, src_reg:4` puts dst in the low nibble on little-endian
    // machines and in the high nibble on big-endian ones.
    let regs = if cfg!(target_endian = "little") {
        dst | (src << 4)
    } else {
        (dst << 4) | src
    };
    Insn {
        code,
        regs,
        off,
        imm,
    }
}

fn bpf_access(access: u8) -> i32 {
    [(READ, ACC_READ), (WRITE, ACC_WRITE), (MKNOD, ACC_MKNOD)]
        .iter()
        .filter(|(ours, _)| access & ours != 0)
        .map(|(_, theirs)| theirs)
        .sum()
}

/// The program enforcing `rules`.
pub fn program(rules: &Effective) -> Vec<Insn> {
    let mut p = vec![
        insn(LDX_MEM_W, TYPE, R1, 0, 0),
        insn(ALU32_AND_K, TYPE, 0, 0, 0xffff),
        insn(LDX_MEM_W, ACCESS, R1, 0, 0),
        insn(ALU32_RSH_K, ACCESS, 0, 0, 16),
        insn(LDX_MEM_W, MAJOR, R1, 4, 0),
        insn(LDX_MEM_W, MINOR, R1, 8, 0),
    ];
    for x in &rules.exceptions {
        // Each test is (opcode, register, value); a failed one jumps past the block.
        let mut block: Vec<(u8, u8, i32)> = Vec::new();
        match x.kind {
            Kind::Char => block.push((JMP_JNE_K, TYPE, DEV_CHAR)),
            Kind::Block => block.push((JMP_JNE_K, TYPE, DEV_BLOCK)),
            Kind::All => {}
        }
        let access = bpf_access(x.access);
        if rules.default_allow {
            // A deny exception hits when any asked-for bit is one it denies.
            block.push((ALU32_MOV_X, R1, ACCESS as i32));
            block.push((ALU32_AND_K, R1, access));
            block.push((JMP_JEQ_K, R1, 0));
        } else {
            // An allow exception hits when it covers every asked-for bit.
            block.push((ALU32_MOV_X, R1, ACCESS as i32));
            block.push((ALU32_AND_K, R1, !access & 0x7));
            block.push((JMP_JNE_K, R1, 0));
        }
        if let Some(major) = x.major {
            block.push((JMP_JNE_K, MAJOR, major as i32));
        }
        if let Some(minor) = x.minor {
            block.push((JMP_JNE_K, MINOR, minor as i32));
        }
        // After the tests: r0 = verdict; exit (two instructions).
        let len = block.len() + 2;
        for (i, (code, reg, value)) in block.into_iter().enumerate() {
            p.push(match code {
                ALU32_MOV_X => insn(code, reg, value as u8, 0, 0),
                ALU32_AND_K => insn(code, reg, 0, 0, value),
                _ => insn(code, reg, 0, (len - i - 1) as i16, value),
            });
        }
        p.push(insn(ALU64_MOV_K, R0, 0, 0, i32::from(!rules.default_allow)));
        p.push(insn(JMP_EXIT, 0, 0, 0, 0));
    }
    p.push(insn(ALU64_MOV_K, R0, 0, 0, i32::from(rules.default_allow)));
    p.push(insn(JMP_EXIT, 0, 0, 0, 0));
    p
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cgroups::devices::{self, Rule, RWM};

    /// Run `prog` on one device access, as the kernel would: just the instructions
    /// [`program`] emits, each checked against its meaning in the kernel's interpreter.
    fn run(prog: &[Insn], kind: Kind, major: u32, minor: u32, access: u8) -> bool {
        let ty = match kind {
            Kind::Char => DEV_CHAR,
            Kind::Block => DEV_BLOCK,
            Kind::All => unreachable!(),
        } as u64;
        let ctx = [
            ((bpf_access(access) as u64) << 16) | ty,
            major as u64,
            minor as u64,
        ];
        let mut r = [0u64; 11];
        let mut pc = 0usize;
        loop {
            let i = prog[pc];
            let (dst, src) = if cfg!(target_endian = "little") {
                ((i.regs & 0xf) as usize, (i.regs >> 4) as usize)
            } else {
                ((i.regs >> 4) as usize, (i.regs & 0xf) as usize)
            };
            let imm = i.imm as i64 as u64;
            pc += 1;
            match i.code {
                LDX_MEM_W => {
                    assert_eq!(src, 1, "loads only from the context");
                    r[dst] = ctx[i.off as usize / 4];
                }
                ALU32_AND_K => r[dst] = (r[dst] as u32 & i.imm as u32) as u64,
                ALU32_RSH_K => r[dst] = ((r[dst] as u32) >> i.imm) as u64,
                ALU32_MOV_X => r[dst] = r[src] as u32 as u64,
                ALU64_MOV_K => r[dst] = imm,
                JMP_JNE_K if r[dst] != imm => pc += i.off as usize,
                JMP_JEQ_K if r[dst] == imm => pc += i.off as usize,
                JMP_JNE_K | JMP_JEQ_K => {}
                JMP_EXIT => return r[0] == 1,
                other => panic!("unexpected opcode {other:#x}"),
            }
        }
    }

    fn agree(rules: &[Rule]) {
        let e = Effective::of(rules);
        let prog = program(&e);
        for kind in [Kind::Char, Kind::Block] {
            for (major, minor) in [
                (1, 3),
                (1, 5),
                (1, 7),
                (1, 1),
                (5, 0),
                (5, 1),
                (5, 2),
                (136, 0),
                (136, 9),
                (10, 200),
                (10, 229),
                (10, 232),
                (8, 0),
                (4, 1),
            ] {
                for access in 1..=RWM {
                    assert_eq!(
                        run(&prog, kind, major, minor, access),
                        e.permits(kind, major, minor, access),
                        "{kind:?} {major}:{minor} {}",
                        devices::access_letters(access)
                    );
                }
            }
        }
    }

    #[test]
    fn the_program_decides_like_the_rules() {
        agree(devices::rules(false));
        agree(devices::rules(true));
        let c = |allow, major, minor, access| Rule {
            allow,
            kind: Kind::Char,
            major,
            minor,
            access,
        };
        // An allow default with deny exceptions.
        agree(&[
            c(false, Some(1), Some(3), WRITE),
            c(false, Some(10), None, RWM),
        ]);
        // A block-device exception and a wildcard major.
        agree(&[
            devices::DEFAULT[0],
            Rule {
                kind: Kind::Block,
                ..c(true, Some(8), None, READ)
            },
            c(true, None, Some(3), MKNOD | READ),
        ]);
    }

    #[test]
    fn the_default_program_denies_a_host_device_and_allows_dev_null() {
        let prog = program(&Effective::of(devices::rules(false)));
        assert!(!run(&prog, Kind::Char, 10, 232, READ));
        assert!(run(&prog, Kind::Char, 1, 3, READ | WRITE));
        assert!(run(&prog, Kind::Char, 10, 232, MKNOD));
        // 6 loads, then per exception at most 7 + 2 instructions, then 2.
        assert!(prog.len() <= 6 + 9 * 12 + 2, "{}", prog.len());
    }
}
