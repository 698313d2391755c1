//! cgroup v1: one directory per controller tree.
//!
//! The group is made in every mounted hierarchy. Two controllers need more than a `mkdir`:
//! a new cpuset group has no CPUs and no memory nodes, and the kernel refuses to move a task
//! into it (`ENOSPC`) until both are written (cgroups(7), the kernel's `cpusets.rst`), so they
//! are copied from the parent; and the devices group starts as a copy of its parent's list
//! ("everything"), which `devices.deny a` and the allow lines replace.

use std::path::Path;

use super::devices::{Effective, Rule};
use super::{missing, Cgroup};
use crate::error::Result;
use crate::spec::Limits;
use crate::sys::Sys;

pub(super) fn create(cg: &Cgroup, sys: &Sys, limits: &Limits, devices: &[Rule]) -> Result<()> {
    let devices_dir = cg.dir_for("devices");
    let allows_everything = Effective::of(devices) == Effective::of(super::devices::ALLOW_ALL);
    if devices_dir.is_none() && !allows_everything {
        // Without it the container could open every device of the host: refuse rather than
        // run unconfined.
        return Err(super::CgroupError::NoDevicesController.into());
    }
    for h in cg.used() {
        let dir = h.mount_point.join(&cg.parent).join(&cg.id);
        for level in cg.parent_levels(&h.mount_point) {
            sys.mkdir(&level, 0o755)?;
            if h.has("cpuset") {
                copy_cpuset(sys, &h.mount_point, &level)?;
            }
        }
        sys.mkdir(&dir, 0o755)?;
        if h.has("cpuset") {
            copy_cpuset(sys, &h.mount_point, &dir)?;
        }
    }
    if let Some(dir) = devices_dir {
        for rule in devices {
            sys.write_file(&dir.join(rule.v1_file()), &rule.v1_line())?;
        }
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

/// Give the cpuset group `dir` the CPUs and memory nodes of its nearest ancestor (up to the
/// hierarchy's root `mount`) that has them, unless it has its own already (an existing parent
/// group keeps what the administrator set).
fn copy_cpuset(sys: &Sys, mount: &Path, dir: &Path) -> Result<()> {
    let read = |p: &Path| {
        sys.read_file(p)
            .map(|s| s.trim().to_string())
            .unwrap_or_default()
    };
    for file in ["cpuset.cpus", "cpuset.mems"] {
        if !read(&dir.join(file)).is_empty() {
            continue;
        }
        let inherited = dir
            .ancestors()
            .skip(1)
            .take_while(|a| a.starts_with(mount))
            .map(|a| read(&a.join(file)))
            .find(|v| !v.is_empty());
        match inherited {
            Some(value) => sys.write_file(&dir.join(file), &value)?,
            None if sys.is_dry_run() => sys.write_file(&dir.join(file), "<the parent's>")?,
            None => {
                return Err(super::CgroupError::CpusetUnset {
                    dir: dir.to_path_buf(),
                    file,
                    mount: mount.to_path_buf(),
                }
                .into())
            }
        }
    }
    Ok(())
}
