//! Limits changed on a group that exists and has processes (runtime `update`, runc's): each
//! value asked for written to its knob, on v1 or v2, through the traced seam; what is not
//! asked for stays as it is.
//!
//! The knobs (the kernel's `cgroup-v1/*.rst` and `cgroup-v2.rst`):
//!
//! | value            | v1                                   | v2                          |
//! |------------------|--------------------------------------|-----------------------------|
//! | memory           | `memory.limit_in_bytes`              | `memory.max`                |
//! | reservation      | `memory.soft_limit_in_bytes`         | `memory.low`                |
//! | memory + swap    | `memory.memsw.limit_in_bytes`        | `memory.swap.max` (= swap − memory) |
//! | CPU shares       | `cpu.shares`                         | `cpu.weight` (1 + (shares − 2) × 9999 / 262142) |
//! | CFS quota/period | `cpu.cfs_quota_us`, `cpu.cfs_period_us` | `cpu.max` (`quota period`) |
//! | real time        | `cpu.rt_runtime_us`, `cpu.rt_period_us` | none: refused             |
//! | cpuset           | `cpuset.cpus`, `cpuset.mems`         | the same names              |
//! | pids             | `pids.max`                           | `pids.max`                  |
//! | block I/O weight | `blkio.weight` (or `blkio.bfq.weight`) | `io.bfq.weight`, else `io.weight` (1 + (w − 10) × 9999 / 990) |
//! | huge pages       | `hugetlb.<size>.limit_in_bytes`      | `hugetlb.<size>.max`        |
//! | no OOM killer    | `memory.oom_control` (`1`)           | none: refused               |
//! | swappiness       | `memory.swappiness`                  | none: refused               |
//! | kernel memory    | `memory.kmem.limit_in_bytes`, `memory.kmem.tcp.limit_in_bytes` | none: refused |
//!
//! A real-time runtime on v1 is a share of the parent's: each ancestor below the hierarchy's
//! root that has less is given as much first (the runtime's own parent starts with none).

use std::path::{Path, PathBuf};

use nix::errno::Errno;
use serde_json::Value;

use super::{Cgroup, Version};
use crate::error::{Error, Result};
use crate::sys::Sys;

/// What `update` changes; `None` leaves a value as it is. Negative memory values and quotas
/// mean "no limit" (`-1`), as in the runtime spec.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Resources {
    /// Memory limit in bytes.
    pub memory: Option<i64>,
    /// Memory soft limit in bytes.
    pub memory_reservation: Option<i64>,
    /// Memory plus swap limit in bytes.
    pub memory_swap: Option<i64>,
    /// CPU shares (relative weight).
    pub cpu_shares: Option<u64>,
    /// CFS quota in microseconds per period.
    pub cpu_quota: Option<i64>,
    /// CFS period in microseconds.
    pub cpu_period: Option<u64>,
    /// Real-time runtime in microseconds per real-time period (v1).
    pub cpu_rt_runtime: Option<i64>,
    /// Real-time period in microseconds (v1).
    pub cpu_rt_period: Option<u64>,
    /// CPUs (`0-3,5`).
    pub cpuset_cpus: Option<String>,
    /// Memory nodes (`0`).
    pub cpuset_mems: Option<String>,
    /// Most processes; 0 or less: no limit.
    pub pids: Option<i64>,
    /// Block I/O weight, 10 to 1000.
    pub blkio_weight: Option<u16>,
    /// Huge page limits in bytes by page size as the kernel names it (`2MB`, `1GB`).
    pub hugepage_limits: Vec<(String, u64)>,
    /// The OOM killer switched off for the group (v1 only): its processes wait for memory.
    pub disable_oom_killer: Option<bool>,
    /// Kernel memory limit in bytes (v1 only; Linux 6 takes the value and no longer applies it).
    pub memory_kernel: Option<i64>,
    /// Kernel TCP buffer memory limit in bytes (v1 only).
    pub memory_kernel_tcp: Option<i64>,
    /// How readily the group's memory is swapped, 0 to 100 (v1 only).
    pub memory_swappiness: Option<u64>,
    /// The device rules (`devices`), as given: `create` makes the group's rules of them
    /// ([`super::devices::from_oci`]); `update` refuses them.
    pub devices: Vec<oci_spec::runtime::LinuxDeviceCgroup>,
}

impl Resources {
    /// True when nothing is asked for.
    pub fn is_empty(&self) -> bool {
        *self == Resources::default()
    }

    /// The runtime spec's `linux.resources` (`create`'s, from the config) or `LinuxResources`
    /// (`update --resources`): read once, by [`from_json`], each field the spec has and
    /// dockling cannot set refused by its path. A 0 says "not set" where runc reads it so
    /// (a written 0 is EINVAL, or a change no one asked for). Only what is given is written:
    /// a memory limit alone sets no memory + swap limit (runc's way; `dockling run -m` adds
    /// Docker's twice-the-memory default, the OCI config does not).
    pub fn from_oci(doc: &Value) -> Result<Resources> {
        let mut r = from_json(doc)?;
        r.memory = r.memory.filter(|v| *v != 0);
        r.memory_reservation = r.memory_reservation.filter(|v| *v != 0);
        r.memory_swap = r.memory_swap.filter(|v| *v != 0);
        r.cpu_shares = r.cpu_shares.filter(|v| *v != 0);
        r.cpu_quota = r.cpu_quota.filter(|v| *v != 0);
        r.cpu_period = r.cpu_period.filter(|v| *v != 0);
        r.cpu_rt_runtime = r.cpu_rt_runtime.filter(|v| *v != 0);
        r.cpu_rt_period = r.cpu_rt_period.filter(|v| *v != 0);
        r.pids = r.pids.filter(|v| *v != 0);
        r.blkio_weight = r.blkio_weight.filter(|v| *v != 0);
        r.disable_oom_killer = r.disable_oom_killer.filter(|off| *off);
        r.cpuset_cpus = r.cpuset_cpus.filter(|v| !v.is_empty());
        r.cpuset_mems = r.cpuset_mems.filter(|v| !v.is_empty());
        Ok(r)
    }
}

/// A knob's value with `-1` (or any negative) as v2's `max`.
fn or_max(v: i64) -> String {
    if v < 0 {
        "max".into()
    } else {
        v.to_string()
    }
}

/// runc's linear map of v1 CPU shares (2..262144) onto v2's `cpu.weight` (1..10000).
pub fn shares_to_weight(shares: u64) -> u64 {
    let shares = shares.clamp(2, 262_144);
    1 + (shares - 2) * 9999 / 262_142
}

/// The map of a v1 block I/O weight (10..1000) onto v2's `io.weight` (1..10000).
pub fn blkio_to_io_weight(weight: u16) -> u64 {
    let w = u64::from(weight.clamp(10, 1000));
    1 + (w - 10) * 9999 / 990
}

impl Cgroup {
    /// Write every value of `r` into the group's knobs (see the module's table): one walk
    /// for both versions, each value's knob named for v1 and v2 ([`Cgroup::knob`]).
    pub fn update(&self, sys: &Sys, r: &Resources) -> Result<()> {
        if let Some(w) = r.blkio_weight {
            if !(10..=1000).contains(&w) {
                return Err(Error::Usage(format!(
                    "blkio weight {w}: give a weight from 10 to 1000"
                )));
            }
        }
        let v2 = self.version == Version::V2;
        if v2 {
            refuse_on_v2(r)?;
        }
        // A limit's value: -1 (any negative) is "no limit", v2's `max`.
        let limit = |v: i64| if v2 { or_max(v) } else { v.max(-1).to_string() };
        if r.memory.is_some() || r.memory_reservation.is_some() || r.memory_swap.is_some() {
            let what = "a memory limit";
            let max = self.knob(sys, "memory", "memory.limit_in_bytes", "memory.max", what)?;
            let swap = || {
                self.knob(
                    sys,
                    "memory",
                    "memory.memsw.limit_in_bytes",
                    "memory.swap.max",
                    what,
                )
            };
            if v2 {
                if let Some(m) = r.memory {
                    write_knob(sys, &max, &limit(m))?;
                }
                if let Some(s) = r.memory_swap {
                    let value = v2_swap(s, r.memory.or_else(|| read_i64(sys, &max)))?;
                    write_knob(sys, &swap()?, &value)?;
                }
            } else {
                self.memory_v1(sys, r, &max, &swap()?)?;
            }
            if let Some(v) = r.memory_reservation {
                let low = "memory.soft_limit_in_bytes";
                write_knob(
                    sys,
                    &self.knob(sys, "memory", low, "memory.low", what)?,
                    &limit(v),
                )?;
            }
        }
        for (value, knob, what) in [
            (
                r.memory_kernel,
                "memory.kmem.limit_in_bytes",
                "a kernel memory limit",
            ),
            (
                r.memory_kernel_tcp,
                "memory.kmem.tcp.limit_in_bytes",
                "a kernel memory limit",
            ),
            (
                r.memory_swappiness.map(|v| v as i64),
                "memory.swappiness",
                "a swappiness",
            ),
            (
                r.disable_oom_killer.map(i64::from),
                "memory.oom_control",
                "disabling the OOM killer",
            ),
        ] {
            if let Some(v) = value {
                // v1 only: refused on v2 above.
                write_knob(sys, &self.knob(sys, "memory", knob, knob, what)?, &limit(v))?;
            }
        }
        let what = "a CPU limit";
        if let Some(s) = r.cpu_shares {
            let (knob, value) = if v2 {
                ("cpu.weight", shares_to_weight(s))
            } else {
                ("cpu.shares", s)
            };
            write_knob(
                sys,
                &self.knob(sys, "cpu", knob, knob, what)?,
                &value.to_string(),
            )?;
        }
        if v2 && (r.cpu_quota.is_some() || r.cpu_period.is_some()) {
            // One file holds both: the one not given is kept from what it says now.
            let knob = self.knob(sys, "cpu", "", "cpu.max", what)?;
            let now = sys.read_file(&knob).unwrap_or_default();
            let mut old = now.split_whitespace();
            let old_quota = old.next().unwrap_or("max").to_string();
            let old_period = old.next().unwrap_or("100000").to_string();
            let quota = r.cpu_quota.map_or(old_quota, or_max);
            let period = r.cpu_period.map_or(old_period, |p| p.to_string());
            write_knob(sys, &knob, &format!("{quota} {period}"))?;
        } else if !v2 {
            if let Some(v) = r.cpu_period {
                let knob = self.knob(sys, "cpu", "cpu.cfs_period_us", "", what)?;
                write_knob(sys, &knob, &v.to_string())?;
            }
            if let Some(v) = r.cpu_quota {
                let knob = self.knob(sys, "cpu", "cpu.cfs_quota_us", "", what)?;
                write_knob(sys, &knob, &limit(v))?;
            }
            if let Some(v) = r.cpu_rt_period {
                let knob = self.knob(sys, "cpu", "cpu.rt_period_us", "", what)?;
                write_knob(sys, &knob, &v.to_string())?;
            }
            if let Some(v) = r.cpu_rt_runtime {
                let knob = self.knob(sys, "cpu", "cpu.rt_runtime_us", "", what)?;
                let dir = knob.parent().unwrap_or(&knob).to_path_buf();
                if v > 0 {
                    let period = r
                        .cpu_rt_period
                        .or_else(|| read_i64(sys, &dir.join("cpu.rt_period_us")).map(|p| p as u64))
                        .unwrap_or(1_000_000);
                    self.raise_rt_ancestors(sys, &dir, v, period)?;
                }
                write_knob(sys, &knob, &limit(v))?;
            }
        }
        for (value, knob) in [
            (&r.cpuset_cpus, "cpuset.cpus"),
            (&r.cpuset_mems, "cpuset.mems"),
        ] {
            if let Some(v) = value {
                write_knob(sys, &self.knob(sys, "cpuset", knob, knob, "a cpuset")?, v)?;
            }
        }
        if let Some(p) = r.pids {
            let knob = self.knob(sys, "pids", "pids.max", "pids.max", "a pids limit")?;
            write_knob(sys, &knob, &super::pids_max(p))?;
        }
        if let Some(w) = r.blkio_weight {
            self.blkio_weight(sys, w)?;
        }
        for (size, bytes) in &r.hugepage_limits {
            let v1 = format!("hugetlb.{size}.limit_in_bytes");
            let v2_name = format!("hugetlb.{size}.max");
            let knob = self.knob(sys, "hugetlb", &v1, &v2_name, "a huge page limit")?;
            if !sys.is_dry_run() && !sys.exists(&knob) {
                return Err(unknown_page_size(sys, size));
            }
            write_knob(sys, &knob, &bytes.to_string())?;
        }
        Ok(())
    }

    /// The group's knob named `v1` or `v2` (by the group's version) of `controller`, which
    /// `what` needs: v1, in that controller's hierarchy (an error naming `what` when it is
    /// not mounted); v2, in the one tree, the controller enabled on the way down first when
    /// the knob is missing ([`Cgroup::enable_v2`]).
    fn knob(&self, sys: &Sys, controller: &str, v1: &str, v2: &str, what: &str) -> Result<PathBuf> {
        match self.version {
            Version::V1 => {
                let dir = self.dir_for(controller).ok_or_else(|| {
                    Error::Usage(format!(
                        "{what} needs the {controller} cgroup controller, which this host has \
                         not mounted: leave {what} out"
                    ))
                })?;
                Ok(dir.join(v1))
            }
            Version::V2 => {
                let Some(dir) = self.paths().into_iter().next() else {
                    return Err(super::CgroupError::NotMounted.into());
                };
                let knob = dir.join(v2);
                self.enable_v2(sys, controller, &knob)?;
                Ok(knob)
            }
        }
    }

    /// v1's memory and memory + swap limits, in the order the kernel takes them: it keeps
    /// memory ≤ memory + swap at every moment, so when the new memory + swap grows past the
    /// old one it goes first, otherwise the memory does.
    fn memory_v1(&self, sys: &Sys, r: &Resources, limit: &Path, memsw: &Path) -> Result<()> {
        if r.memory_swap.is_some() && !sys.is_dry_run() && !sys.exists(memsw) {
            return Err(Error::Usage(
                "memory-swap: this kernel does not account swap (no \
                 memory.memsw.limit_in_bytes; boot with swapaccount=1): leave it out"
                    .into(),
            ));
        }
        let swap_first = match r.memory_swap {
            Some(s) if s < 0 => true,
            Some(s) => read_i64(sys, memsw).is_some_and(|old| s > old),
            None => false,
        };
        let write_swap = |s: i64| write_knob(sys, memsw, &s.max(-1).to_string());
        if swap_first {
            if let Some(s) = r.memory_swap {
                write_swap(s)?;
            }
        }
        if let Some(m) = r.memory {
            write_knob(sys, limit, &m.max(-1).to_string()).map_err(|e| {
                if r.memory_swap.is_none() {
                    Error::Usage(format!(
                        "{e}: a memory limit above the memory + swap limit ({}) is \
                         refused; give --memory-swap too",
                        read_i64(sys, memsw).map_or("unknown".into(), |v| v.to_string())
                    ))
                } else {
                    e
                }
            })?;
        }
        if !swap_first {
            if let Some(s) = r.memory_swap {
                write_swap(s)?;
            }
        }
        Ok(())
    }

    /// The block I/O weight: v1's CFQ knob or BFQ's own; v2's BFQ knob, else `io.weight`
    /// (mapped onto its range).
    fn blkio_weight(&self, sys: &Sys, w: u16) -> Result<()> {
        let what = "a blkio weight";
        match self.version {
            Version::V1 => {
                let dir = self.knob(sys, "blkio", "", "", what)?;
                // CFQ's knob; with BFQ (the one proportional scheduler of current kernels)
                // its own.
                let knob = ["blkio.weight", "blkio.bfq.weight"]
                    .into_iter()
                    .map(|k| dir.join(k))
                    .find(|k| sys.is_dry_run() || sys.exists(k))
                    .ok_or_else(|| {
                        Error::Usage(
                            "a blkio weight needs a proportional I/O scheduler (no \
                             blkio.weight or blkio.bfq.weight here: choose bfq for the disk in \
                             /sys/block/<disk>/queue/scheduler), or leave it out"
                                .into(),
                        )
                    })?;
                write_knob(sys, &knob, &w.to_string())
            }
            Version::V2 => {
                let Some(dir) = self.paths().into_iter().next() else {
                    return Err(super::CgroupError::NotMounted.into());
                };
                let bfq = dir.join("io.bfq.weight");
                if !sys.is_dry_run() && sys.exists(&bfq) {
                    write_knob(sys, &bfq, &w.to_string())
                } else {
                    let knob = self.knob(sys, "io", "", "io.weight", what)?;
                    write_knob(sys, &knob, &blkio_to_io_weight(w).to_string())
                }
            }
        }
    }

    /// Give each ancestor of `dir` below the v1 hierarchy's root at least the share of real-time
    /// time that `runtime` µs per `period` is (scaled to the ancestor's own period), top down:
    /// the kernel refuses a group more than its parent has (EINVAL), and a new parent has none.
    fn raise_rt_ancestors(&self, sys: &Sys, dir: &Path, runtime: i64, period: u64) -> Result<()> {
        if sys.is_dry_run() {
            return Ok(());
        }
        let mut ancestors = Vec::new();
        let mut at = dir.parent();
        while let Some(p) = at {
            // The hierarchy's root (its release_agent is there only) is the kernel's to set.
            if !sys.exists(&p.join("cpu.rt_runtime_us")) || sys.exists(&p.join("release_agent")) {
                break;
            }
            ancestors.push(p.to_path_buf());
            at = p.parent();
        }
        // Bottom up: what each ancestor must hold, as a share of its own period: the share the
        // child on the way down will have, plus what its other children hold already (v1
        // wants the children's runtimes together within the parent's).
        let share_of = |runtime: i64, period: i64| runtime.max(0) as f64 / period.max(1) as f64;
        let mut child_share = share_of(runtime, period as i64);
        let mut child = dir.to_path_buf();
        let mut needs = Vec::new();
        for p in &ancestors {
            let others: f64 = sys
                .list_dir(p)
                .unwrap_or_default()
                .into_iter()
                .filter(|(_, is_dir)| *is_dir)
                .map(|(name, _)| p.join(name))
                .filter(|c| *c != child)
                .map(|c| {
                    share_of(
                        read_i64(sys, &c.join("cpu.rt_runtime_us")).unwrap_or(0),
                        read_i64(sys, &c.join("cpu.rt_period_us")).unwrap_or(1_000_000),
                    )
                })
                .sum();
            let own_period = read_i64(sys, &p.join("cpu.rt_period_us")).unwrap_or(1_000_000);
            let total = child_share + others;
            let need = (total * own_period as f64).ceil() as i64;
            needs.push((p.join("cpu.rt_runtime_us"), need));
            child_share = share_of(need, own_period);
            child = p.clone();
        }
        for (knob, need) in needs.iter().rev() {
            if read_i64(sys, knob).is_some_and(|now| now >= 0 && now < *need) {
                write_knob(sys, knob, &need.to_string())?;
            }
        }
        Ok(())
    }

    /// Make `controller` reach the group when its `knob` is missing: `+controller` written
    /// into `cgroup.subtree_control` of the root and of every group down to the container's
    /// parent (a controller reaches a group only through every ancestor).
    fn enable_v2(&self, sys: &Sys, controller: &str, knob: &Path) -> Result<()> {
        if sys.is_dry_run() || sys.exists(knob) {
            return Ok(());
        }
        let root = &self.hierarchies[0].mount_point;
        let available = sys
            .read_file(&root.join("cgroup.controllers"))
            .unwrap_or_default();
        if !available.split_whitespace().any(|c| c == controller) {
            return Err(Error::Usage(format!(
                "the {controller} cgroup controller is not available on this host's cgroup v2: \
                 leave out the limits that need it"
            )));
        }
        let mut dir = root.clone();
        sys.write_file(
            &dir.join("cgroup.subtree_control"),
            &format!("+{controller}"),
        )?;
        for part in self.parent.components() {
            dir.push(part);
            sys.write_file(
                &dir.join("cgroup.subtree_control"),
                &format!("+{controller}"),
            )?;
        }
        Ok(())
    }
}

/// What cgroup v2 has no knob for, refused by name.
fn refuse_on_v2(r: &Resources) -> Result<()> {
    if r.memory_kernel.is_some() || r.memory_kernel_tcp.is_some() {
        return Err(Error::Usage(
            "memory.kernel, memory.kernelTCP: cgroup v2 has no kernel memory limits (its \
             memory limit counts kernel memory too): leave them out"
                .into(),
        ));
    }
    if r.memory_swappiness.is_some() {
        return Err(Error::Usage(
            "memory.swappiness: cgroup v2 has no swappiness per group: leave it out".into(),
        ));
    }
    if r.disable_oom_killer == Some(true) {
        return Err(Error::Usage(
            "memory.disableOOMKiller: cgroup v2 cannot switch the OOM killer off for a \
             group: leave it out"
                .into(),
        ));
    }
    if r.cpu_rt_period.is_some() || r.cpu_rt_runtime.is_some() {
        return Err(Error::Usage(
            "cgroup v2 has no real-time CPU limits (cpu-rt-period, cpu-rt-runtime): leave \
             them out"
                .into(),
        ));
    }
    Ok(())
}

/// v2's `memory.swap.max` for the spec's memory + swap `swap`: the swap alone, counted from
/// the memory limit (`memory`: the new one, else the one in force).
fn v2_swap(swap: i64, memory: Option<i64>) -> Result<String> {
    if swap < 0 {
        return Ok("max".into());
    }
    match memory {
        Some(m) if m >= 0 && swap >= m => Ok((swap - m).to_string()),
        Some(m) if m >= 0 => Err(Error::Usage(format!(
            "memory-swap {swap} is below the memory limit {m}: it counts memory and swap \
             together, so give at least the memory limit"
        ))),
        _ => Err(Error::Usage(
            "memory-swap needs a memory limit to count from: give --memory too".into(),
        )),
    }
}

/// A huge page size the kernel has no limit for.
fn unknown_page_size(sys: &Sys, size: &str) -> Error {
    let sizes: Vec<String> = sys
        .list_dir(Path::new("/sys/kernel/mm/hugepages"))
        .unwrap_or_default()
        .into_iter()
        .filter_map(|(name, _)| {
            let kb: u64 = name
                .strip_prefix("hugepages-")?
                .strip_suffix("kB")?
                .parse()
                .ok()?;
            Some(if kb >= 1 << 20 {
                format!("{}GB", kb >> 20)
            } else if kb >= 1 << 10 {
                format!("{}MB", kb >> 10)
            } else {
                format!("{kb}KB")
            })
        })
        .collect();
    Error::Usage(format!(
        "hugepageLimits: page size {size:?} has no limit in this kernel (sizes here: {})",
        if sizes.is_empty() {
            "none".to_string()
        } else {
            sizes.join(", ")
        }
    ))
}

/// Write one knob, the error naming it and what the kernel said.
fn write_knob(sys: &Sys, knob: &Path, value: &str) -> Result<()> {
    sys.write_file(knob, value).map_err(|e| {
        let hint = match e.errno {
            Errno::EINVAL => {
                ": the kernel refused the value (out of range, or against another limit)"
            }
            Errno::EBUSY => ": the kernel will not change it while the processes use it this way",
            Errno::ENOENT => ": this kernel has no such knob",
            _ => "",
        };
        Error::Usage(format!(
            "write {value:?} to {}: {}{hint}",
            knob.display(),
            e.errno
        ))
    })
}

/// A knob's number, read through the seam; `None` when it is missing or says `max`.
fn read_i64(sys: &Sys, path: &Path) -> Option<i64> {
    sys.read_file(path).ok()?.trim().parse().ok()
}

/// True for a value that says nothing: `null`, `[]`, `{}`.
fn empty(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
        _ => false,
    }
}

/// The runtime spec's `LinuxResources` as what `create` and `update` write, as given. Every
/// field the spec has and dockling does not change is refused by its path; unknown ones too.
/// [`Resources::from_oci`] is the reading the commands use.
fn from_json(doc: &Value) -> Result<Resources> {
    let obj = doc.as_object().ok_or_else(|| {
        Error::Usage(
            "the resources must be a JSON object (the runtime spec's linux.resources)".into(),
        )
    })?;
    let refuse = |path: &str| {
        Error::Usage(format!(
            "resources: {path} is not something dockling-runc can set; remove it (supported: \
             memory.limit, memory.reservation, memory.swap, memory.kernel, memory.kernelTCP, memory.swappiness, memory.disableOOMKiller, cpu.shares, cpu.quota, cpu.period, \
             cpu.realtimeRuntime, cpu.realtimePeriod, cpu.cpus, cpu.mems, pids.limit, \
             blockIO.weight, hugepageLimits)"
        ))
    };
    let int = |path: &str, v: &Value| -> Result<i64> {
        v.as_i64()
            .or_else(|| v.as_u64().map(|u| u.min(i64::MAX as u64) as i64))
            .ok_or_else(|| Error::Usage(format!("resources: {path}: give a whole number")))
    };
    let uint = |path: &str, v: &Value| -> Result<u64> {
        v.as_u64().ok_or_else(|| {
            Error::Usage(format!("resources: {path}: give a whole number, 0 or more"))
        })
    };
    let string = |path: &str, v: &Value| -> Result<String> {
        v.as_str()
            .map(String::from)
            .ok_or_else(|| Error::Usage(format!("resources: {path}: give a string like \"0-3\"")))
    };
    let mut r = Resources::default();
    for (key, value) in obj {
        if empty(value) {
            continue;
        }
        let section = |name: &str| -> Result<Vec<(String, Value)>> {
            let o = value
                .as_object()
                .ok_or_else(|| Error::Usage(format!("resources: {name} must be an object")))?;
            Ok(o.iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (format!("{name}.{k}"), v.clone()))
                .collect())
        };
        match key.as_str() {
            "memory" => {
                for (path, v) in section("memory")? {
                    match path.as_str() {
                        "memory.limit" => r.memory = Some(int(&path, &v)?),
                        "memory.reservation" => r.memory_reservation = Some(int(&path, &v)?),
                        "memory.swap" => r.memory_swap = Some(int(&path, &v)?),
                        "memory.swappiness" => {
                            let w = uint(&path, &v)?;
                            if w > 100 {
                                return Err(Error::Usage(format!(
                                    "resources: {path}: give 0 to 100"
                                )));
                            }
                            r.memory_swappiness = Some(w);
                        }
                        "memory.kernel" => r.memory_kernel = Some(int(&path, &v)?),
                        "memory.kernelTCP" => r.memory_kernel_tcp = Some(int(&path, &v)?),
                        "memory.disableOOMKiller" => {
                            r.disable_oom_killer = Some(v.as_bool().ok_or_else(|| {
                                Error::Usage(format!("resources: {path}: give true or false"))
                            })?)
                        }
                        _ => return Err(refuse(&path)),
                    }
                }
            }
            "cpu" => {
                for (path, v) in section("cpu")? {
                    match path.as_str() {
                        "cpu.shares" => r.cpu_shares = Some(uint(&path, &v)?),
                        "cpu.quota" => r.cpu_quota = Some(int(&path, &v)?),
                        "cpu.period" => r.cpu_period = Some(uint(&path, &v)?),
                        "cpu.realtimeRuntime" => r.cpu_rt_runtime = Some(int(&path, &v)?),
                        "cpu.realtimePeriod" => r.cpu_rt_period = Some(uint(&path, &v)?),
                        "cpu.cpus" => r.cpuset_cpus = Some(string(&path, &v)?),
                        "cpu.mems" => r.cpuset_mems = Some(string(&path, &v)?),
                        _ => return Err(refuse(&path)),
                    }
                }
            }
            "pids" => {
                for (path, v) in section("pids")? {
                    match path.as_str() {
                        "pids.limit" => r.pids = Some(int(&path, &v)?),
                        _ => return Err(refuse(&path)),
                    }
                }
            }
            "blockIO" => {
                for (path, v) in section("blockIO")? {
                    match path.as_str() {
                        "blockIO.weight" => {
                            let w = uint(&path, &v)?;
                            r.blkio_weight = Some(u16::try_from(w).map_err(|_| {
                                Error::Usage(format!(
                                    "resources: {path}: give a weight from 10 to 1000"
                                ))
                            })?);
                        }
                        _ => return Err(refuse(&path)),
                    }
                }
            }
            "devices" => {
                r.devices = serde_json::from_value(value.clone())
                    .map_err(|e| Error::Usage(format!("resources: devices: {e}")))?;
            }
            "hugepageLimits" => {
                let list = value.as_array().ok_or_else(|| {
                    Error::Usage("resources: hugepageLimits must be a list".into())
                })?;
                for (i, entry) in list.iter().enumerate() {
                    let path = format!("hugepageLimits[{i}]");
                    let size = entry["pageSize"]
                        .as_str()
                        .filter(|s| !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric()));
                    let size = size.ok_or_else(|| {
                        Error::Usage(format!(
                            "resources: {path}.pageSize: give a page size like \"2MB\""
                        ))
                    })?;
                    let limit = uint(&format!("{path}.limit"), &entry["limit"])?;
                    r.hugepage_limits.push((size.to_string(), limit));
                }
            }
            other => return Err(refuse(other)),
        }
    }
    Ok(r)
}
