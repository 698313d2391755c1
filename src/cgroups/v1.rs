//! cgroup v1: one directory per controller tree.

use super::{missing, Cgroup};
use crate::error::Result;
use crate::spec::Limits;
use crate::sys::Sys;

pub(super) fn create(cg: &Cgroup, sys: &Sys, limits: &Limits) -> Result<()> {
    for h in cg.used() {
        sys.mkdir(&h.mount_point.join(&cg.parent), 0o755)?;
        sys.mkdir(&h.mount_point.join(&cg.parent).join(&cg.id), 0o755)?;
    }
    if let Some(bytes) = limits.memory {
        let dir = cg
            .dir_for("memory")
            .ok_or_else(|| missing("--memory", "memory"))?;
        sys.write_file(&dir.join("memory.limit_in_bytes"), &bytes.to_string())?;
        // Docker's default when only -m is given: memory + swap may use twice the memory.
        let memsw = dir.join("memory.memsw.limit_in_bytes");
        if sys.is_dry_run() || memsw.exists() {
            sys.write_file(&memsw, &(2 * bytes).to_string())?;
        }
    }
    if let Some(cpus) = limits.cpus {
        let dir = cg.dir_for("cpu").ok_or_else(|| missing("--cpus", "cpu"))?;
        sys.write_file(&dir.join("cpu.cfs_period_us"), "100000")?;
        sys.write_file(
            &dir.join("cpu.cfs_quota_us"),
            &((cpus * 100_000.0).round() as u64).to_string(),
        )?;
    }
    if let Some(pids) = limits.pids {
        let dir = cg
            .dir_for("pids")
            .ok_or_else(|| missing("--pids-limit", "pids"))?;
        sys.write_file(&dir.join("pids.max"), &super::pids_max(pids))?;
    }
    Ok(())
}
