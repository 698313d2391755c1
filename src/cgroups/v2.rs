//! cgroup v2: one tree; controllers are enabled for children through `cgroup.subtree_control`.

use super::devices::Rule;
use super::{missing, Cgroup};
use crate::error::Result;
use crate::spec::Limits;
use crate::sys::Sys;

pub(super) fn create(cg: &Cgroup, sys: &Sys, limits: &Limits, devices: &[Rule]) -> Result<()> {
    let _ = devices;
    let root = &cg.hierarchies[0].mount_point;
    let available = std::fs::read_to_string(root.join("cgroup.controllers")).unwrap_or_default();
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
    sys.mkdir(&parent, 0o755)?;
    if !enable.is_empty() {
        // A controller reaches a group only if every ancestor enabled it for its children.
        sys.write_file(&root.join("cgroup.subtree_control"), &enable)?;
        sys.write_file(&parent.join("cgroup.subtree_control"), &enable)?;
    }
    let dir = parent.join(&cg.id);
    sys.mkdir(&dir, 0o755)?;
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
