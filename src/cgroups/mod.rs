//! cgroups: resource limits, on cgroup v1 and v2 behind one type.
//!
//! A cgroup is a directory in a special file system: `mkdir` creates a group (the kernel fills
//! it with control files), writing a pid to its `cgroup.procs` moves that process in, writing a
//! control file (`memory.max`, `pids.max`...) sets a limit, `rmdir` deletes an empty group.
//! cgroup v1 has one tree per controller (`/sys/fs/cgroup/memory/…`, `/sys/fs/cgroup/pids/…`);
//! v2 has one tree for all (`/sys/fs/cgroup/…`). dockling puts each container at
//! `dockling/<id>` in every tree it uses, like Docker's cgroupfs driver does with `docker/<id>`:
//! on v1 that is every mounted hierarchy, so no controller (devices, cpuset, blkio...) is left
//! at the host's settings. The devices controller ([`devices`]) is what keeps a container from
//! opening host devices. Every write and mkdir goes through the traced seam.

pub mod bpf;
pub mod devices;
mod error;
mod freezer;
pub mod resources;
mod v1;
mod v2;

pub use error::CgroupError;

use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::mount::MsFlags;

use crate::error::{Error, Result};
use crate::spec::{Limits, MountEntry};
use crate::sys::{Call, Sys};

/// Which cgroup version the host runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    /// One hierarchy per controller.
    V1,
    /// The unified hierarchy.
    V2,
}

/// A mounted cgroup hierarchy of the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hierarchy {
    /// Where the host has it mounted (`/sys/fs/cgroup/memory`).
    pub mount_point: PathBuf,
    /// Its mount options naming the controllers (`memory`, `cpu,cpuacct`, `name=systemd`);
    /// empty for v2.
    pub options: String,
}

impl Hierarchy {
    /// True when this v1 hierarchy carries `controller`.
    pub fn has(&self, controller: &str) -> bool {
        self.options.split(',').any(|o| o == controller)
    }
}

/// One container's cgroup, in every hierarchy it uses.
#[derive(Debug, Clone)]
pub struct Cgroup {
    version: Version,
    /// The host's hierarchies (v2: exactly one).
    hierarchies: Vec<Hierarchy>,
    /// `dockling` (or the configured parent), relative to each hierarchy's root.
    parent: PathBuf,
    /// The container id.
    id: String,
}

/// Read the host's cgroup mounts from `/proc/self/mountinfo`.
pub fn discover() -> Result<(Version, Vec<Hierarchy>)> {
    let text = std::fs::read_to_string("/proc/self/mountinfo")
        .map_err(Error::io("read", "/proc/self/mountinfo"))?;
    Ok(parse_mountinfo(&text))
}

/// Which version and hierarchies a mountinfo text describes.
pub fn parse_mountinfo(text: &str) -> (Version, Vec<Hierarchy>) {
    let mut v1 = Vec::new();
    let mut v2_root = None;
    for line in text.lines() {
        // Fields: id parent major:minor root mount_point options [optional...] - fstype source super_options
        let Some((left, right)) = line.split_once(" - ") else {
            continue;
        };
        let l: Vec<&str> = left.split(' ').collect();
        let r: Vec<&str> = right.split(' ').collect();
        if l.len() < 5 || r.len() < 3 {
            continue;
        }
        let mount_point = PathBuf::from(l[4]);
        match r[0] {
            "cgroup" => {
                let options: Vec<&str> = r[2]
                    .split(',')
                    .filter(|o| {
                        !matches!(
                            *o,
                            "rw" | "ro" | "relatime" | "noatime" | "nosuid" | "nodev" | "noexec"
                        )
                    })
                    .collect();
                v1.push(Hierarchy {
                    mount_point,
                    options: options.join(","),
                });
            }
            "cgroup2" if mount_point == Path::new("/sys/fs/cgroup") => v2_root = Some(mount_point),
            _ => {}
        }
    }
    match v2_root {
        Some(mount_point) => (
            Version::V2,
            vec![Hierarchy {
                mount_point,
                options: String::new(),
            }],
        ),
        None => (Version::V1, v1),
    }
}

impl Cgroup {
    /// The cgroup of container `id` under `parent`, on the host's real hierarchies.
    pub fn new(parent: &str, id: &str) -> Result<Cgroup> {
        let (version, hierarchies) = discover()?;
        if hierarchies.is_empty() {
            return Err(CgroupError::NotMounted.into());
        }
        Ok(Cgroup::with_layout(version, hierarchies, parent, id))
    }

    /// A cgroup on given hierarchies (tests use a fake tree in a temporary directory).
    pub fn with_layout(
        version: Version,
        hierarchies: Vec<Hierarchy>,
        parent: &str,
        id: &str,
    ) -> Cgroup {
        let parent = PathBuf::from(parent.trim_matches('/'));
        Cgroup {
            version,
            hierarchies,
            parent,
            id: id.to_string(),
        }
    }

    /// The host's cgroup version.
    pub fn version(&self) -> Version {
        self.version
    }

    /// The directories of this container's group, one per hierarchy used.
    pub fn paths(&self) -> Vec<PathBuf> {
        self.used()
            .into_iter()
            .map(|h| h.mount_point.join(&self.parent).join(&self.id))
            .collect()
    }

    /// The parent group in the hierarchy mounted at `mount_point`, with every group on the way
    /// to it, top first: a nested `cgroupsPath` (`a/b/c`) needs each level made, as `mkdir -p`
    /// would (runc and crun make them too). An empty parent is the hierarchy's root.
    fn parent_levels(&self, mount_point: &Path) -> Vec<PathBuf> {
        let mut at = mount_point.to_path_buf();
        let mut levels: Vec<PathBuf> = self
            .parent
            .components()
            .map(|c| {
                at.push(c);
                at.clone()
            })
            .collect();
        if levels.is_empty() {
            levels.push(at);
        }
        levels
    }

    /// Every hierarchy the group lives in: on v1 all that are mounted (devices, cpuset, blkio,
    /// freezer, name=systemd...), as runc's cgroupfs driver joins them all; a controller the
    /// host has not mounted is simply not there (a limit that needs it then says so). A
    /// hierarchy mounted twice is used once.
    fn used(&self) -> Vec<&Hierarchy> {
        let mut seen: Vec<&Hierarchy> = Vec::new();
        for h in &self.hierarchies {
            if !seen.iter().any(|s| s.mount_point == h.mount_point) {
                seen.push(h);
            }
        }
        seen
    }

    /// The group directory in the hierarchy that carries `controller` (v2: the one tree).
    fn dir_for(&self, controller: &str) -> Option<PathBuf> {
        let h = match self.version {
            Version::V2 => self.hierarchies.first(),
            Version::V1 => self.hierarchies.iter().find(|h| h.has(controller)),
        }?;
        Some(h.mount_point.join(&self.parent).join(&self.id))
    }

    /// Create the group in every hierarchy, write the limits and the device rules
    /// ([`devices::rules`]).
    pub fn create(&self, sys: &Sys, limits: &Limits, devices: &[devices::Rule]) -> Result<()> {
        match self.version {
            Version::V1 => v1::create(self, sys, limits, devices),
            Version::V2 => v2::create(self, sys, limits, devices),
        }
    }

    /// Move `pid` into the group made earlier (`exec`): in every hierarchy that holds it. A
    /// hierarchy mounted after the group was made (an administrator mounting hugetlb's v1
    /// tree for crun, say) holds none of it, and is left out rather than failing the exec.
    pub fn join(&self, sys: &Sys, pid: i32) -> Result<()> {
        for dir in self.paths() {
            if !sys.is_dry_run() && !dir.is_dir() {
                continue;
            }
            sys.write_file(&dir.join("cgroup.procs"), &pid.to_string())?;
        }
        Ok(())
    }

    /// Move the calling process into the group (in every hierarchy), from inside: what the
    /// container's first process does before anything else of its own. It writes `0` (the
    /// caller) into v1's `tasks` file, which moves the calling thread alone (the process has
    /// only that one). Moving a single thread that is the caller is the one move the kernel
    /// makes without taking its global `cgroup_threadgroup_rwsem` for writing (see
    /// `cgroup_procs_write_start` in kernel/cgroup/cgroup.c), and the first writer of that
    /// lock waits for an RCU grace period: 10–15 ms here, most of what a start waited for when
    /// the engine wrote the child's pid into `cgroup.procs` (crun still does). v2 has no
    /// `tasks`: `0` goes into `cgroup.procs`, which moves the whole (one-thread) process.
    pub fn join_self(&self, sys: &Sys) -> Result<()> {
        let file = match self.version {
            Version::V1 => "tasks",
            Version::V2 => "cgroup.procs",
        };
        for dir in self.paths() {
            sys.write_file(&dir.join(file), "0")?;
        }
        Ok(())
    }

    /// True when the kernel's OOM killer killed a process of this group.
    pub fn oom_killed(&self, sys: &Sys) -> bool {
        let (dir, file) = match self.version {
            Version::V1 => (self.dir_for("memory"), "memory.oom_control"),
            Version::V2 => (self.dir_for("memory"), "memory.events"),
        };
        let Some(text) = dir.and_then(|d| sys.read_file(&d.join(file)).ok()) else {
            return false;
        };
        oom_kills(&text) > 0
    }

    /// The pids in the group (`cgroup.procs` of its first hierarchy: on v1 it joined all).
    /// The processes in the group (host pids).
    /// Read through `sys` (callers that poll pass an untraced one, `Sys::quiet`).
    pub fn procs(&self, sys: &Sys) -> Vec<i32> {
        // The first hierarchy that holds the group (not one mounted after it was made).
        let Some(dir) = self.paths().into_iter().find(|d| sys.exists(d)) else {
            return vec![];
        };
        sys.read_file(&dir.join("cgroup.procs"))
            .unwrap_or_default()
            .split_whitespace()
            .filter_map(|p| p.parse().ok())
            .collect()
    }

    /// The processes of the group and of every group below it (a container with a cgroup
    /// namespace of its own may make some and move into them), each once, in the order the
    /// kernel lists them, parents first. Each `cgroup.procs` read and each directory listed
    /// through the seam.
    pub fn all_procs(&self, sys: &Sys) -> Vec<i32> {
        let Some(top) = self.paths().into_iter().find(|d| d.is_dir()) else {
            return vec![];
        };
        let mut pids = Vec::new();
        let mut dirs = vec![top];
        while let Some(dir) = dirs.pop() {
            let text = sys.read_file(&dir.join("cgroup.procs")).unwrap_or_default();
            for pid in text.split_whitespace().filter_map(|p| p.parse().ok()) {
                if !pids.contains(&pid) {
                    pids.push(pid);
                }
            }
            let Ok(entries) = sys.list_dir(&dir) else {
                continue;
            };
            let mut subs: Vec<PathBuf> = entries
                .into_iter()
                .filter(|(_, is_dir)| *is_dir)
                .map(|(name, _)| dir.join(name))
                .collect();
            subs.sort();
            // Popped in name order.
            dirs.extend(subs.into_iter().rev());
        }
        pids
    }

    /// Wait (bounded: `limit`) until the group has no process left; true when empty.
    fn wait_empty(&self, limit: std::time::Duration) -> bool {
        let deadline = std::time::Instant::now() + limit;
        // A killed process leaves the group within a fraction of a millisecond, usually:
        // checked again soon at first, then every 2 ms (no event says a v1 group emptied).
        let mut pause = std::time::Duration::from_micros(100);
        loop {
            if self.procs(&Sys::quiet()).is_empty() {
                return true;
            }
            if std::time::Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(pause);
            pause = (pause * 2).min(std::time::Duration::from_millis(2));
        }
    }

    /// The knob that freezes the group and the values for frozen and thawed: v1's
    /// `freezer.state` (FROZEN/THAWED), v2's `cgroup.freeze` (1/0).
    fn freezer(&self, sys: &Sys) -> Option<(PathBuf, &'static str, &'static str)> {
        match self.version {
            Version::V1 => self
                .dir_for("freezer")
                .map(|d| (d.join("freezer.state"), "FROZEN", "THAWED")),
            Version::V2 => self
                .paths()
                .into_iter()
                .next()
                .map(|d| (d.join("cgroup.freeze"), "1", "0")),
        }
        .filter(|(knob, ..)| sys.exists(knob))
    }

    /// Freeze every process of the group (`pause`: they stop being scheduled, in whatever
    /// they were doing, without being told) or thaw them (`unpause`).
    pub fn set_frozen(&self, sys: &Sys, frozen: bool) -> Result<()> {
        let (knob, on, off) = self.freezer(sys).ok_or(CgroupError::NoFreezer)?;
        sys.write_file(&knob, if frozen { on } else { off })?;
        Ok(())
    }

    /// True while the group is frozen (or freezing): [`Cgroup::freezer_state`], read through
    /// an untraced seam (its callers ask on every status).
    pub fn is_frozen(&self) -> bool {
        self.freezer_state(&Sys::quiet())
            .is_some_and(|s| s != "thawed")
    }

    /// Kill every process of the group, the container's own and whatever it started: with
    /// `--pid host` no pid namespace ends them with its pid 1, and their parent may be gone.
    /// v2 has `cgroup.kill` (Linux 5.14: the kernel kills every task, even one forking at the
    /// moment). Otherwise the group is frozen (v1 `freezer.state`, v2 `cgroup.freeze`) so no
    /// task can fork between the read of `cgroup.procs` and the kills, each pid gets SIGKILL,
    /// the group is thawed (the signals are delivered then), and that is repeated until the
    /// group is empty: bounded, 50 rounds.
    pub fn kill_all(&self, sys: &Sys) -> Result<()> {
        if self.procs(sys).is_empty() {
            return Ok(());
        }
        let first = self.paths().into_iter().next();
        if let (Version::V2, Some(dir)) = (self.version, &first) {
            let knob = dir.join("cgroup.kill");
            if sys.exists(&knob) {
                sys.write_file(&knob, "1")?;
                if self.wait_empty(std::time::Duration::from_secs(5)) {
                    return Ok(());
                }
            }
        }
        let freeze = self.freezer(sys);
        for _ in 0..50 {
            let pids = self.procs(sys);
            if pids.is_empty() {
                return Ok(());
            }
            if let Some((knob, frozen, _)) = &freeze {
                sys.write_file(knob, frozen)?;
            }
            // Every task is sent SIGKILL, and the group thawed whatever happened: a frozen
            // group left behind would hang anything that later joins it.
            let killed = pids.into_iter().try_for_each(|pid| {
                match sys.run(Call::Kill {
                    pid,
                    signal: libc::SIGKILL,
                }) {
                    Err(e) if e.errno != Errno::ESRCH => Err(e),
                    _ => Ok(()),
                }
            });
            if let Some((knob, _, thawed)) = &freeze {
                sys.write_file(knob, thawed)?;
            }
            killed?;
            if self.wait_empty(std::time::Duration::from_millis(100)) {
                return Ok(());
            }
        }
        Err(CgroupError::KillFailed {
            dir: first.unwrap_or_default(),
        }
        .into())
    }

    /// Kill what is left in the group ([`Cgroup::kill_all`]), then remove it from every
    /// hierarchy. A killed process may take a moment to leave the group: retry `EBUSY`
    /// (bounded: 200 × 5 ms).
    pub fn destroy(&self, sys: &Sys) -> Result<()> {
        if !sys.is_dry_run() {
            self.kill_all(sys)?;
        }
        for dir in self.paths() {
            let mut tries = 0;
            loop {
                match sys.run(Call::Rmdir { path: dir.clone() }) {
                    Ok(()) => break,
                    Err(e) if e.errno == Errno::ENOENT => break,
                    Err(e) if e.errno == Errno::EBUSY && tries < 200 => {
                        tries += 1;
                        std::thread::sleep(std::time::Duration::from_millis(5));
                    }
                    Err(source) => return Err(CgroupError::Remove { dir, source }.into()),
                }
            }
        }
        Ok(())
    }

    /// What to mount at /sys/fs/cgroup inside the container (read-only), as the rootfs's own
    /// mount entries.
    pub fn container_mounts(&self) -> Vec<MountEntry> {
        let ro = MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
        match self.version {
            Version::V2 => vec![MountEntry {
                fstype: "cgroup2".into(),
                source: "cgroup".into(),
                target: "/sys/fs/cgroup".into(),
                flags: ro,
                data: None,
            }],
            Version::V1 => {
                let mut v = vec![MountEntry {
                    fstype: "tmpfs".into(),
                    source: "tmpfs".into(),
                    target: "/sys/fs/cgroup".into(),
                    flags: MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
                    data: Some("mode=755".into()),
                }];
                for h in &self.hierarchies {
                    let Some(name) = h.mount_point.file_name() else {
                        continue;
                    };
                    v.push(MountEntry {
                        fstype: "cgroup".into(),
                        source: "cgroup".into(),
                        target: Path::new("/sys/fs/cgroup").join(name),
                        flags: ro,
                        data: Some(h.options.clone()),
                    });
                }
                v
            }
        }
    }
}

/// The `oom_kill N` counter of `memory.oom_control` (v1) or `memory.events` (v2).
fn oom_kills(text: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix("oom_kill "))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0)
}

/// The `pids.max` value of `--pids-limit` (0 or less means unlimited, as in Docker).
fn pids_max(pids: i64) -> String {
    if pids > 0 {
        pids.to_string()
    } else {
        "max".into()
    }
}

/// Docker's minimum memory limit.
pub const MIN_MEMORY: u64 = 6 * 1024 * 1024;

/// The largest memory limit: Docker and the OCI runtime spec keep limits as a signed 64-bit
/// count of bytes, and memory + swap (twice the limit, Docker's default) must fit it too:
/// 4 EiB. (The kernel takes anything above the host's memory as no limit anyway.)
pub const MAX_MEMORY: u64 = i64::MAX as u64 / 2;

/// Parse a size like Docker's `RAMInBytes`: `1024`, `512k`, `64m`, `1.5g`, `2GB`, `64MiB`
/// (binary units, an optional space before the unit). `0` is "no limit", as in Docker. The
/// arithmetic is exact and checked: `99999999999g` is refused by name, never wrapped around.
pub fn parse_memory(s: &str) -> Result<u64> {
    let bad = || {
        Error::Usage(format!(
            "invalid size: '{s}': use a number with an optional unit b, k, m, g, t, p (like 64m)"
        ))
    };
    let t = s.to_ascii_lowercase();
    // Docker's grammar: digits, an optional fraction, an optional space, then [kmgtp], an
    // optional `i`, an optional `b`.
    let t = t.strip_suffix('b').unwrap_or(&t);
    let t = t.strip_suffix('i').unwrap_or(t);
    let (num, shift) = match t.chars().last() {
        Some('k') => (&t[..t.len() - 1], 10),
        Some('m') => (&t[..t.len() - 1], 20),
        Some('g') => (&t[..t.len() - 1], 30),
        Some('t') => (&t[..t.len() - 1], 40),
        Some('p') => (&t[..t.len() - 1], 50),
        _ => (t, 0),
    };
    let num = num.strip_suffix(' ').unwrap_or(num);
    let (int, frac) = num.split_once('.').unwrap_or((num, ""));
    let digits = |d: &str| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit());
    if !digits(int) || (num.contains('.') && !digits(frac)) {
        return Err(bad());
    }
    let too_large = || {
        Error::Usage(format!(
            "invalid size: '{s}': more than the largest memory limit (4 EiB, {MAX_MEMORY} bytes): give a size like 512m or 4g"
        ))
    };
    // Exact: int × 2^shift + frac × 2^shift / 10^len(frac), truncated like Docker's.
    let frac = &frac[..frac.len().min(20)];
    let int: u128 = int.parse().map_err(|_| too_large())?;
    let scaled = int.checked_shl(shift).filter(|v| v >> shift == int);
    let frac_bytes = if frac.is_empty() {
        0
    } else {
        let f: u128 = frac.parse().map_err(|_| bad())?;
        (f << shift) / 10u128.pow(frac.len() as u32)
    };
    let bytes = scaled
        .and_then(|v| v.checked_add(frac_bytes))
        .filter(|v| *v <= MAX_MEMORY as u128)
        .ok_or_else(too_large)? as u64;
    if bytes != 0 && bytes < MIN_MEMORY {
        return Err(Error::Usage(format!(
            "minimum memory limit allowed is 6MB (got {s}): give at least 6m, or 0 for no limit"
        )));
    }
    Ok(bytes)
}

/// The CPUs this process may run on (`sched_getaffinity(2)`), which is what Docker counts.
pub fn available_cpus() -> usize {
    use nix::sched::{sched_getaffinity, CpuSet};
    match sched_getaffinity(nix::unistd::Pid::from_raw(0)) {
        Ok(set) => (0..CpuSet::count())
            .filter(|i| set.is_set(*i).unwrap_or(false))
            .count()
            .max(1),
        Err(_) => std::thread::available_parallelism().map_or(1, |n| n.get()),
    }
}

/// Parse `--cpus` as Docker does: an exact decimal (or a fraction like `1/2`) counted in
/// billionths of a CPU; `0` is "no limit". Anything else must be within 0.01 (the kernel's
/// smallest CFS quota, 1 ms per 100 ms period: below it `cpu.cfs_quota_us` says EINVAL) and
/// the number of CPUs there are. `nan`, `inf`, `1e400` are not numbers of CPUs.
pub fn parse_cpus(s: &str, available: usize) -> Result<Option<f64>> {
    let flag = |why: &str| {
        Error::Usage(format!(
            "invalid argument \"{s}\" for \"--cpus\" flag: {why}: give a number of CPUs like 0.5 or 2"
        ))
    };
    let not_rational = || flag(&format!("failed to parse {s} as a rational number"));
    let nanos = match s.split_once('/') {
        Some((a, b)) => {
            let (a, b) = (exact_nanos(a).ok_or_else(not_rational)?, exact_nanos(b));
            let b = b.filter(|b| *b != 0).ok_or_else(not_rational)?;
            // a/b in billionths, both given in billionths: a·10⁹/b.
            let Some(scaled) = a.checked_mul(1_000_000_000) else {
                return Err(too_many(available));
            };
            let (q, r) = (scaled / b, scaled % b);
            if r != 0 {
                return Err(flag("value is too precise"));
            }
            Some(q)
        }
        None => exact_nanos(s),
    };
    let nanos = match nanos {
        Some(n) => n,
        None if valid_decimal(s) => return Err(flag("value is too precise")),
        None => return Err(not_rational()),
    };
    if nanos == 0 {
        return Ok(None);
    }
    let max = available as i128 * 1_000_000_000;
    if nanos < 10_000_000 || nanos > max {
        return Err(too_many(available));
    }
    Ok(Some(nanos as f64 / 1e9))
}

/// Docker's words for a `--cpus` out of range (lowercase here).
fn too_many(available: usize) -> Error {
    Error::Usage(format!(
        "range of CPUs is from 0.01 to {available}.00, as there are only {available} CPUs available"
    ))
}

/// `[+-]digits[.digits][e[+-]digits]`, the decimals `--cpus` takes (no `nan`, no `inf`).
fn valid_decimal(s: &str) -> bool {
    let s = s.strip_prefix(['+', '-']).unwrap_or(s);
    let (mant, exp) = match s.split_once(['e', 'E']) {
        Some((m, e)) => (m, Some(e.strip_prefix(['+', '-']).unwrap_or(e))),
        None => (s, None),
    };
    let (int, frac) = mant.split_once('.').unwrap_or((mant, ""));
    let digits = |d: &str| d.bytes().all(|b| b.is_ascii_digit());
    (!int.is_empty() || !frac.is_empty())
        && digits(int)
        && digits(frac)
        && exp.is_none_or(|e| !e.is_empty() && digits(e))
}

/// A decimal in exact billionths, or `None` when it is not a decimal, has a digit beyond the
/// ninth after the point, or is too large to matter (more than 10³⁰).
fn exact_nanos(s: &str) -> Option<i128> {
    if !valid_decimal(s) {
        return None;
    }
    let (sign, rest) = match s.strip_prefix('-') {
        Some(r) => (-1, r),
        None => (1, s.strip_prefix('+').unwrap_or(s)),
    };
    let (mant, exp) = match rest.split_once(['e', 'E']) {
        Some((m, e)) => (m, e.parse::<i32>().ok()?),
        None => (rest, 0),
    };
    let (int, frac) = mant.split_once('.').unwrap_or((mant, ""));
    let digits = format!("{int}{frac}");
    let digits = digits.trim_start_matches('0');
    let digits = if digits.is_empty() { "0" } else { digits };
    // value = digits × 10^(exp − len(frac)); in billionths: × 10^(9 + exp − len(frac)).
    let mut scale = 9i64 + exp as i64 - frac.len() as i64;
    let mut digits = digits.to_string();
    while scale < 0 {
        // Dropping a zero keeps it exact; any other digit is a fraction of a billionth.
        digits = digits.strip_suffix('0')?.to_string();
        if digits.is_empty() {
            digits = "0".into();
            break;
        }
        scale += 1;
    }
    if digits == "0" {
        return Some(0);
    }
    if digits.len() as i64 + scale > 30 {
        // Far more CPUs than any machine has: the range check refuses it.
        return Some(sign * 10i128.pow(30));
    }
    let v: i128 = digits.parse().ok()?;
    Some(sign * v * 10i128.pow(scale.max(0) as u32))
}

/// A limit that needs a controller the host does not have.
fn missing(flag: &'static str, controller: &'static str) -> Error {
    CgroupError::MissingController { flag, controller }.into()
}

#[cfg(test)]
mod tests;
