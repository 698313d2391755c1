//! The resolved policy compiled into the classic BPF program the kernel runs on every syscall.
//!
//! The kernel hands the program a `struct seccomp_data` (seccomp(2)): the syscall number, the
//! architecture (`AUDIT_ARCH_*`), the instruction pointer and the six arguments. The program
//! answers with a `SECCOMP_RET_*` value. Its shape:
//!
//! 1. **architecture**: one section per architecture the policy lists (the native one first);
//!    any other architecture is killed. This matters because the same number means different
//!    calls on different tables: on x86_64, 32-bit code reaches the i386 table (`int 0x80`),
//!    and x32 code the x64 table with bit 30 set. i386 gets its own section with its own
//!    numbers, as Docker's profile allows; x32 is killed.
//! 2. **number**: a syscall newer than every one this build knows for the architecture answers
//!    `ENOSYS` (when the default is not "allow"), so a C library tries an older call instead
//!    of failing on `EPERM` (runc does the same).
//! 3. **binary search** on the syscall number, as libseccomp's binary-tree option does: the
//!    table is cut into runs of consecutive numbers that get the same answer (Docker's ~350
//!    allowed calls make about 70 runs on x86_64, 120 on i386), and six or seven comparisons
//!    find the run, instead of a walk down a list of hundreds. A number without rules gets
//!    the default action.
//! 4. **rules**: a syscall's rules with argument conditions come first (each condition a
//!    64-bit comparison done as two 32-bit ones, high word first), then its rule without
//!    conditions if any, else the default action.
//!
//! Jumps in classic BPF are forward only, with 8-bit offsets for conditional ones: every
//! subtree is emitted as a self-contained block that ends in returns, and a far jump goes
//! through `BPF_JA`, whose offset is 32 bits. See Documentation/userspace-api/seccomp_filter.rst
//! and Documentation/networking/filter.rst.

use std::collections::{BTreeMap, HashMap};

use oci_spec::runtime::{
    Arch, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompOperator, LinuxSyscall,
};

/// One classic BPF instruction (`struct sock_filter`): the seam's type, since a
/// [`crate::sys::Call::Seccomp`] carries the program.
pub use crate::sys::bpf::SockFilter as Insn;

/// A compiled filter and a one-line summary of what it does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Program {
    /// The instructions, as installed.
    pub filter: Vec<Insn>,
    /// What a reader of the trace is told: architectures, counts, default action.
    pub about: String,
}

// Opcodes (linux/bpf_common.h), as class | size/operation | source.
const LD_W_ABS: u16 = 0x20; // BPF_LD (0) | BPF_W (0) | BPF_ABS (0x20)
const ALU_AND_K: u16 = 0x54; // BPF_ALU (0x04) | BPF_AND (0x50) | BPF_K (0)
const JA: u16 = 0x05; // BPF_JMP (0x05) | BPF_JA (0)
const JEQ_K: u16 = 0x15; // BPF_JMP | BPF_JEQ (0x10) | BPF_K
const JGT_K: u16 = 0x25; // BPF_JMP | BPF_JGT (0x20) | BPF_K
const JGE_K: u16 = 0x35; // BPF_JMP | BPF_JGE (0x30) | BPF_K
const RET_K: u16 = 0x06; // BPF_RET (0x06) | BPF_K

// struct seccomp_data offsets: nr, arch, instruction_pointer, args[6] (u64, little-endian
// here: low word first).
const OFF_NR: u32 = 0;
const OFF_ARCH: u32 = 4;
const fn off_arg_lo(i: u32) -> u32 {
    16 + 8 * i
}
const fn off_arg_hi(i: u32) -> u32 {
    16 + 8 * i + 4
}
#[cfg(not(target_endian = "little"))]
compile_error!("the seccomp compiler loads 64-bit arguments as little-endian words");

// SECCOMP_RET_* (linux/seccomp.h).
const RET_KILL_PROCESS: u32 = 0x8000_0000;
const RET_KILL_THREAD: u32 = 0x0000_0000;
const RET_TRAP: u32 = 0x0003_0000;
const RET_ERRNO: u32 = 0x0005_0000;
const RET_TRACE: u32 = 0x7ff0_0000;
const RET_LOG: u32 = 0x7ffc_0000;
const RET_ALLOW: u32 = 0x7fff_0000;

/// The x32 ABI's syscall numbers have this bit set (asm/unistd.h `__X32_SYSCALL_BIT`).
const X32_SYSCALL_BIT: u32 = 0x4000_0000;

/// A syscall table this build knows.
struct Table {
    name: &'static str,
    audit: u32,
    /// Name → number (a map: the crate's own lookup by name walks the whole table, which
    /// made compiling ~400 names take milliseconds).
    numbers: HashMap<&'static str, u32>,
    max: u32,
    /// Arguments are 64 bits wide (false for i386 and arm, whose calls use only the low 32
    /// bits of each `seccomp_data.args[i]`: comparing the high word too could let an
    /// `int $0x80` caller with junk in the upper half of a register pass a "greater than"
    /// rule the kernel then reads as a small value, so as libseccomp only the low word counts).
    wide: bool,
}

impl Table {
    fn number(&self, name: &str) -> Option<u32> {
        self.numbers.get(name).copied()
    }
}

/// The table of `arch`, built once per process (the container's process is a clone of the
/// engine's, so it finds the tables the engine built when it checked the policy).
fn table(arch: Arch) -> Option<&'static Table> {
    use std::sync::OnceLock;
    macro_rules! t {
        ($name:literal, $audit:expr, $wide:expr, $m:ident, $extra:expr) => {{
            static TABLE: OnceLock<Table> = OnceLock::new();
            TABLE.get_or_init(|| {
                let numbers: HashMap<&'static str, u32> = syscalls::$m::Sysno::iter()
                    .map(|s| (s.name(), s.id() as u32))
                    .chain($extra.iter().copied())
                    .collect();
                let max = numbers.values().copied().max().unwrap_or(0);
                Table {
                    name: $name,
                    audit: $audit,
                    numbers,
                    max,
                    wide: $wide,
                }
            })
        }};
    }
    const NONE: &[(&str, u32)] = &[];
    // AUDIT_ARCH_* values (linux/audit.h).
    Some(match arch {
        Arch::ScmpArchX86_64 => t!("x86_64", 0xc000_003e, true, x86_64, NONE),
        Arch::ScmpArchX86 => t!("i386", 0x4000_0003, false, x86, NONE),
        Arch::ScmpArchAarch64 => t!("aarch64", 0xc000_00b7, true, aarch64, NONE),
        Arch::ScmpArchArm => t!("arm", 0x4000_0028, false, arm, ARM_PRIVATE),
        _ => return None,
    })
}

/// 32-bit ARM's private calls (arch/arm/include/uapi/asm/unistd.h, `__ARM_NR_BASE` 0x0f0000),
/// which the syscalls crate does not list: Docker allows `breakpoint`, `cacheflush` and
/// `set_tls` (the C library sets up thread-local storage with it).
const ARM_PRIVATE: &[(&str, u32)] = &[
    ("breakpoint", 0x0f_0001),
    ("cacheflush", 0x0f_0002),
    ("usr26", 0x0f_0003),
    ("usr32", 0x0f_0004),
    ("set_tls", 0x0f_0005),
    ("get_tls", 0x0f_0006),
];

/// The policy's architecture for this build.
pub fn native() -> Arch {
    if cfg!(target_arch = "aarch64") {
        Arch::ScmpArchAarch64
    } else if cfg!(target_arch = "x86") {
        Arch::ScmpArchX86
    } else if cfg!(target_arch = "arm") {
        Arch::ScmpArchArm
    } else {
        Arch::ScmpArchX86_64
    }
}

fn ins(code: u16, jt: u8, jf: u8, k: u32) -> Insn {
    Insn { code, jt, jf, k }
}

fn ret(action: LinuxSeccompAction, errno: Option<u32>) -> Result<u32, String> {
    Ok(match action {
        LinuxSeccompAction::ScmpActAllow => RET_ALLOW,
        LinuxSeccompAction::ScmpActErrno => {
            RET_ERRNO | (errno.unwrap_or(libc::EPERM as u32) & 0xffff)
        }
        LinuxSeccompAction::ScmpActKill | LinuxSeccompAction::ScmpActKillThread => RET_KILL_THREAD,
        LinuxSeccompAction::ScmpActKillProcess => RET_KILL_PROCESS,
        LinuxSeccompAction::ScmpActTrap => RET_TRAP,
        LinuxSeccompAction::ScmpActTrace => RET_TRACE | (errno.unwrap_or(0) & 0xffff),
        LinuxSeccompAction::ScmpActLog => RET_LOG,
        LinuxSeccompAction::ScmpActNotify => {
            return Err("SCMP_ACT_NOTIFY needs a seccomp agent, which dockling does not run".into())
        }
    })
}

fn describe(action: u32) -> String {
    match action & 0xffff_0000 {
        RET_ALLOW => "allow".into(),
        RET_ERRNO => match action & 0xffff {
            1 => "EPERM".into(),
            38 => "ENOSYS".into(),
            n => format!("errno {n}"),
        },
        RET_KILL_PROCESS => "kill the process".into(),
        RET_KILL_THREAD => "kill the thread".into(),
        RET_TRAP => "SIGSYS".into(),
        RET_TRACE => "ask the tracer".into(),
        RET_LOG => "log and allow".into(),
        _ => format!("{action:#x}"),
    }
}

/// One condition → instructions; `Fail` jumps to the end of the rule (the rule does not apply).
#[derive(Clone, Copy)]
enum To {
    Next(u8),
    Fail,
}

struct Cond {
    code: u16,
    k: u32,
    t: To,
    f: To,
}

fn condition(
    index: u32,
    op: LinuxSeccompOperator,
    value: u64,
    two: u64,
    wide: bool,
) -> Vec<Result<Insn, Cond>> {
    let (hi, lo) = ((value >> 32) as u32, value as u32);
    let ld = |off| Ok(ins(LD_W_ABS, 0, 0, off));
    let j = |code, k, t, f| Err(Cond { code, k, t, f });
    use LinuxSeccompOperator as Op;
    use To::{Fail, Next};
    if !wide {
        // 32-bit arguments: one load of the low word. A value that does not fit in 32 bits
        // is never equal to (nor below) an argument: the condition is always or never true.
        let never = || vec![j(JEQ_K, 0, Fail, Fail)];
        let fits = value <= u32::MAX as u64;
        return match op {
            Op::ScmpCmpEq | Op::ScmpCmpGt | Op::ScmpCmpGe if !fits => never(),
            Op::ScmpCmpNe | Op::ScmpCmpLt | Op::ScmpCmpLe if !fits => vec![],
            Op::ScmpCmpMaskedEq if two > u32::MAX as u64 => never(),
            Op::ScmpCmpEq => vec![ld(off_arg_lo(index)), j(JEQ_K, lo, Next(0), Fail)],
            Op::ScmpCmpNe => vec![ld(off_arg_lo(index)), j(JEQ_K, lo, Fail, Next(0))],
            Op::ScmpCmpGt => vec![ld(off_arg_lo(index)), j(JGT_K, lo, Next(0), Fail)],
            Op::ScmpCmpGe => vec![ld(off_arg_lo(index)), j(JGE_K, lo, Next(0), Fail)],
            Op::ScmpCmpLt => vec![ld(off_arg_lo(index)), j(JGE_K, lo, Fail, Next(0))],
            Op::ScmpCmpLe => vec![ld(off_arg_lo(index)), j(JGT_K, lo, Fail, Next(0))],
            Op::ScmpCmpMaskedEq => vec![
                ld(off_arg_lo(index)),
                Ok(ins(ALU_AND_K, 0, 0, lo)),
                j(JEQ_K, two as u32, Next(0), Fail),
            ],
        };
    }
    match op {
        Op::ScmpCmpEq => vec![
            ld(off_arg_hi(index)),
            j(JEQ_K, hi, Next(0), Fail),
            ld(off_arg_lo(index)),
            j(JEQ_K, lo, Next(0), Fail),
        ],
        // Not equal: a different high word is enough (skip the 2 low-word instructions).
        Op::ScmpCmpNe => vec![
            ld(off_arg_hi(index)),
            j(JEQ_K, hi, Next(0), Next(2)),
            ld(off_arg_lo(index)),
            j(JEQ_K, lo, Fail, Next(0)),
        ],
        Op::ScmpCmpMaskedEq => {
            let (thi, tlo) = ((two >> 32) as u32, two as u32);
            vec![
                ld(off_arg_hi(index)),
                Ok(ins(ALU_AND_K, 0, 0, hi)),
                j(JEQ_K, thi, Next(0), Fail),
                ld(off_arg_lo(index)),
                Ok(ins(ALU_AND_K, 0, 0, lo)),
                j(JEQ_K, tlo, Next(0), Fail),
            ]
        }
        // Unsigned 64-bit order: the high words decide unless they are equal.
        Op::ScmpCmpGt | Op::ScmpCmpGe => vec![
            ld(off_arg_hi(index)),
            j(JGT_K, hi, Next(3), Next(0)),
            j(JEQ_K, hi, Next(0), Fail),
            ld(off_arg_lo(index)),
            j(
                if op == Op::ScmpCmpGt { JGT_K } else { JGE_K },
                lo,
                Next(0),
                Fail,
            ),
        ],
        Op::ScmpCmpLt | Op::ScmpCmpLe => vec![
            ld(off_arg_hi(index)),
            j(JGE_K, hi, Next(0), Next(3)),
            j(JEQ_K, hi, Next(0), Fail),
            ld(off_arg_lo(index)),
            // Less than: fail when lo >= value; at most: fail when lo > value.
            j(
                if op == Op::ScmpCmpLt { JGE_K } else { JGT_K },
                lo,
                Fail,
                Next(0),
            ),
        ],
    }
}

/// The instructions for one syscall: its conditional rules, then its unconditional one or the
/// default. Always ends in a return.
fn body(rules: &[&LinuxSyscall], default: u32, wide: bool) -> Result<Vec<Insn>, String> {
    let mut out = vec![];
    let mut last = None;
    for r in rules {
        let action = ret(r.action(), r.errno_ret())?;
        let args = r.args().as_deref().unwrap_or_default();
        if args.is_empty() {
            last.get_or_insert(action);
            continue;
        }
        let mut parts = vec![];
        for a in args {
            parts.extend(condition(
                a.index() as u32,
                a.op(),
                a.value(),
                a.value_two().unwrap_or(0),
                wide,
            ));
        }
        // The rule's block is parts + one return; Fail lands just after that return.
        let len = parts.len();
        for (pos, p) in parts.into_iter().enumerate() {
            out.push(match p {
                Ok(i) => i,
                Err(c) => {
                    let off = |t: To| -> Result<u8, String> {
                        let n = match t {
                            To::Next(n) => n as usize,
                            To::Fail => len - pos,
                        };
                        u8::try_from(n).map_err(|_| "a rule has too many conditions".to_string())
                    };
                    ins(c.code, off(c.t)?, off(c.f)?, c.k)
                }
            });
        }
        out.push(ins(RET_K, 0, 0, action));
    }
    out.push(ins(RET_K, 0, 0, last.unwrap_or(default)));
    Ok(out)
}

/// Binary search over `runs` (consecutive numbers that share one body, sorted, together
/// covering 0 to the highest number): every path ends in a return.
fn tree(runs: &[(u32, Vec<Insn>)]) -> Vec<Insn> {
    if let [(_, body)] = runs {
        return body.clone();
    }
    let mid = runs.len() / 2;
    let left = tree(&runs[..mid]);
    let right = tree(&runs[mid..]);
    // nr >= the first number on the right: jump over the left half; through `BPF_JA` when
    // the left half is longer than a conditional jump reaches.
    let mut out = match u8::try_from(left.len()) {
        Ok(n) => vec![ins(JGE_K, n, 0, runs[mid].0)],
        Err(_) => vec![
            ins(JGE_K, 0, 1, runs[mid].0),
            ins(JA, 0, 0, left.len() as u32),
        ],
    };
    out.extend(left);
    out.extend(right);
    out
}

/// One architecture's section: it starts with the number not yet loaded.
fn section(t: &Table, policy: &LinuxSeccomp, default: u32) -> Result<(Vec<Insn>, usize), String> {
    let mut by_number: BTreeMap<u32, Vec<&LinuxSyscall>> = BTreeMap::new();
    for r in policy.syscalls().as_deref().unwrap_or_default() {
        for name in r.names() {
            if let Some(nr) = t.number(name) {
                let list = by_number.entry(nr).or_default();
                // A name listed twice in one rule counts once.
                if !list.iter().any(|x| std::ptr::eq(*x, r)) {
                    list.push(r);
                }
            }
        }
    }
    // Most of the table is allowed in long stretches: one run per stretch of numbers that
    // share a body (the default's return for numbers without rules).
    let fallback = vec![ins(RET_K, 0, 0, default)];
    let mut runs: Vec<(u32, Vec<Insn>)> = vec![];
    let mut add = |start: u32, code: Vec<Insn>| match runs.last() {
        Some((_, last)) if *last == code => {}
        _ => runs.push((start, code)),
    };
    let mut next = 0;
    for (nr, rules) in &by_number {
        if *nr > next {
            add(next, fallback.clone());
        }
        add(*nr, body(rules, default, t.wide)?);
        next = nr + 1;
    }
    if next <= t.max {
        add(next, fallback.clone());
    }
    let mut out = vec![ins(LD_W_ABS, 0, 0, OFF_NR)];
    if t.audit == 0xc000_003e {
        // x32: same audit arch as x86_64, numbers with bit 30 set.
        out.push(ins(JGE_K, 0, 1, X32_SYSCALL_BIT));
        out.push(ins(RET_K, 0, 0, RET_KILL_PROCESS));
    }
    if default & 0xffff_0000 != RET_ALLOW && default & 0xffff_0000 != RET_LOG {
        out.push(ins(JGT_K, 0, 1, t.max));
        out.push(ins(RET_K, 0, 0, RET_ERRNO | libc::ENOSYS as u32));
    }
    out.extend(tree(&runs));
    Ok((out, by_number.len()))
}

/// Compile `policy` for the architectures it lists that this build knows (the native one
/// always, first).
pub fn compile(policy: &LinuxSeccomp) -> Result<Program, String> {
    let default = ret(policy.default_action(), policy.default_errno_ret())?;
    let mut arches = vec![native()];
    for a in policy.architectures().as_deref().unwrap_or_default() {
        if !arches.contains(a) && table(*a).is_some() {
            arches.push(*a);
        }
    }
    let mut sections = vec![];
    let mut names = vec![];
    let mut native_count = 0;
    for a in &arches {
        let t = table(*a).ok_or_else(|| format!("no syscall table for {a}"))?;
        let (code, count) = section(t, policy, default)?;
        if sections.is_empty() {
            native_count = count;
        }
        names.push(t.name);
        sections.push((t.audit, code));
    }
    // Header: load arch; per section `jeq audit, 0, 1; ja section`; then kill.
    let header = 1 + 2 * sections.len() + 1;
    let mut filter = vec![ins(LD_W_ABS, 0, 0, OFF_ARCH)];
    let mut before = 0usize;
    for (i, (audit, code)) in sections.iter().enumerate() {
        let after_ja = header - (1 + 2 * i + 2);
        filter.push(ins(JEQ_K, 0, 1, *audit));
        filter.push(ins(JA, 0, 0, (after_ja + before) as u32));
        before += code.len();
    }
    filter.push(ins(RET_K, 0, 0, RET_KILL_PROCESS));
    for (_, code) in sections {
        filter.extend(code);
    }
    if filter.len() > 4096 {
        return Err(format!(
            "the seccomp filter has {} instructions, more than the kernel's 4096 (BPF_MAXINSNS): use fewer rules",
            filter.len()
        ));
    }
    let rules = policy.syscalls().as_deref().unwrap_or_default();
    let with_args = rules
        .iter()
        .filter(|r| r.args().as_ref().is_some_and(|a| !a.is_empty()))
        .count();
    let about = format!(
        "{}: {} rules ({} check arguments), {} {} syscalls with a rule, any other: {}; {} BPF instructions",
        names.join("+"),
        rules.len(),
        with_args,
        native_count,
        names[0],
        describe(default),
        filter.len()
    );
    Ok(Program { filter, about })
}

/// Run `filter` on one `struct seccomp_data`, as the kernel would: the returned action.
/// For tests to check that a program decides what its policy says.
pub fn run(filter: &[Insn], nr: u32, arch: u32, args: [u64; 6]) -> u32 {
    run_counted(filter, nr, arch, args).0
}

/// [`run`], and how many instructions it took to decide.
pub fn run_counted(filter: &[Insn], nr: u32, arch: u32, args: [u64; 6]) -> (u32, usize) {
    let word = |off: u32| -> u32 {
        match off {
            OFF_NR => nr,
            OFF_ARCH => arch,
            o if (16..64).contains(&o) && o % 4 == 0 => {
                let a = args[((o - 16) / 8) as usize];
                if (o - 16) % 8 == 0 {
                    a as u32
                } else {
                    (a >> 32) as u32
                }
            }
            _ => panic!("load from seccomp_data offset {off}"),
        }
    };
    let (mut pc, mut acc, mut steps) = (0usize, 0u32, 0usize);
    loop {
        let i = filter[pc];
        pc += 1;
        steps += 1;
        match i.code {
            LD_W_ABS => acc = word(i.k),
            ALU_AND_K => acc &= i.k,
            JA => pc += i.k as usize,
            JEQ_K | JGT_K | JGE_K => {
                let hit = match i.code {
                    JEQ_K => acc == i.k,
                    JGT_K => acc > i.k,
                    _ => acc >= i.k,
                };
                pc += if hit { i.jt } else { i.jf } as usize;
            }
            RET_K => return (i.k, steps),
            c => panic!("opcode {c:#x} at {}", pc - 1),
        }
    }
}

/// The audit architecture number of `arch`, for [`run`].
pub fn audit_arch(arch: Arch) -> Option<u32> {
    table(arch).map(|t| t.audit)
}

/// The highest syscall number this build knows on `arch`.
pub fn highest(arch: Arch) -> Option<u32> {
    table(arch).map(|t| t.max)
}

/// The number of syscall `name` on `arch`.
pub fn number(arch: Arch, name: &str) -> Option<u32> {
    table(arch).and_then(|t| t.number(name))
}
