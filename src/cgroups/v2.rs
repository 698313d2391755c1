//! cgroup v2: one tree; controllers are enabled for children through `cgroup.subtree_control`.
//!
//! Device rules are not a controller here: they are a BPF program attached to the group
//! ([`super::bpf`]), which the kernel runs for the group's processes on every `mknod` and every
//! open of a device node.

use std::os::fd::AsFd;
use std::path::Path;

use super::devices::{Effective, Rule, ALLOW_ALL};
use super::{bpf, missing, Cgroup};
use crate::error::Result;
use crate::spec::Limits;
use crate::sys::Sys;

/// Attach the program enforcing `devices` to the group `dir` (nothing to attach when they
/// allow everything, as with `--privileged`).
pub(super) fn attach_device_program(sys: &Sys, dir: &Path, devices: &[Rule]) -> Result<()> {
    let effective = Effective::of(devices);
    if effective == Effective::of(ALLOW_ALL) {
        return Ok(());
    }
    let group = sys.open(dir, libc::O_RDONLY | libc::O_DIRECTORY)?;
    let prog = sys
        .bpf_prog_load(bpf::program(&effective))
        .map_err(|source| super::CgroupError::DeviceProgram { source })?;
    sys.bpf_prog_attach(group.as_fd(), prog.as_fd(), dir)?;
    // Both descriptors close here: the attachment keeps the program for the group's lifetime.
    Ok(())
}

pub(super) fn create(cg: &Cgroup, sys: &Sys, limits: &Limits, devices: &[Rule]) -> Result<()> {
    let root = &cg.hierarchies[0].mount_point;
    let available = sys
        .read_file(&root.join("cgroup.controllers"))
        .unwrap_or_default();
    let wanted: Vec<&str> = ["memory", "cpu", "pids"]
        .into_iter()
        .filter(|c| sys.is_dry_run() || available.split_whitespace().any(|a| a == *c))
        .collect();
    let enable = wanted
        .iter()
        .map(|c| format!("+{c}"))
        .collect::<Vec<_>>()
        .join(" ");
    let parent = root.join(&cg.parent);
    let levels = cg.parent_levels(root);
    for level in &levels {
        sys.mkdir(level, 0o755)?;
    }
    if !enable.is_empty() {
        // A controller reaches a group only if every ancestor enabled it for its children.
        sys.write_file(&root.join("cgroup.subtree_control"), &enable)?;
        for level in &levels {
            sys.write_file(&level.join("cgroup.subtree_control"), &enable)?;
        }
    }
    let dir = parent.join(&cg.id);
    sys.mkdir(&dir, 0o755)?;
    attach_device_program(sys, &dir, devices)?;
    let has = |c: &str| wanted.contains(&c);
    if let Some(bytes) = limits.memory {
        if !has("memory") {
            return Err(missing("--memory", "memory"));
        }
        sys.write_file(&dir.join("memory.max"), &bytes.to_string())?;
        let swap = dir.join("memory.swap.max");
        if sys.is_dry_run() || swap.exists() {
            // Docker's default: as much swap again as memory (memory + swap = 2 × memory).
            sys.write_file(&swap, &bytes.to_string())?;
        }
    }
    if let Some(cpus) = limits.cpus {
        if !has("cpu") {
            return Err(missing("--cpus", "cpu"));
        }
        sys.write_file(
            &dir.join("cpu.max"),
            &format!("{} 100000", (cpus * 100_000.0).round() as u64),
        )?;
    }
    if let Some(pids) = limits.pids {
        if !has("pids") {
            return Err(missing("--pids-limit", "pids"));
        }
        sys.write_file(&dir.join("pids.max"), &super::pids_max(pids))?;
    }
    Ok(())
}
