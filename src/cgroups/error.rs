//! What can go wrong with a container's cgroup: a controller the host lacks, a group that
//! will not empty, a device program the kernel refuses. Each message says what to do next.

use std::path::PathBuf;

use crate::sys::SysError;

/// A cgroup could not be set up or taken down.
#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    /// Neither cgroup v1 nor v2 is mounted at `/sys/fs/cgroup`.
    #[error(
        "no cgroup file system is mounted at /sys/fs/cgroup: mount one, or run with --no-cgroups"
    )]
    NotMounted,
    /// `pause` of a group without the freezer (v1) or `cgroup.freeze` (v2, Linux 5.2).
    #[error("the freezer cgroup controller is not available here, so containers cannot be paused")]
    NoFreezer,
    /// A limit was asked for whose controller the host does not have.
    #[error("{flag} needs the {controller} cgroup controller, which is not available here: drop {flag}, or run with --no-cgroups")]
    MissingController {
        /// The flag that asked for the limit (`--memory`).
        flag: &'static str,
        /// The controller it needs (`memory`).
        controller: &'static str,
    },
    /// cgroup v1 without the devices controller: the container could open any host device.
    #[error("the devices cgroup controller is not mounted, so a container could open any host device: mount it (mount -t cgroup -o devices cgroup /sys/fs/cgroup/devices), or run with --privileged")]
    NoDevicesController,
    /// cgroup v1: no ancestor of a new cpuset group has CPUs or memory nodes to copy.
    #[error("cannot join the cpuset cgroup: no group above {} has {file} set; write it in {}", dir.display(), mount.join(file).display())]
    CpusetUnset {
        /// The new group.
        dir: PathBuf,
        /// `cpuset.cpus` or `cpuset.mems`.
        file: &'static str,
        /// The cpuset hierarchy's mount point.
        mount: PathBuf,
    },
    /// cgroup v2: the kernel refused to load the device program (no `CONFIG_CGROUP_BPF`).
    #[error("{source}: the kernel refused the container's device program, so it cannot enforce device rules on cgroup v2 (it needs CONFIG_CGROUP_BPF); run with --privileged to go without them")]
    DeviceProgram {
        /// The failed `bpf(BPF_PROG_LOAD)`.
        source: SysError,
    },
    /// The group's processes could not all be killed: they kept being forked.
    #[error("cannot kill every process of the cgroup {}: they keep coming back; kill them by hand (cat cgroup.procs)", dir.display())]
    KillFailed {
        /// The group's directory (empty if it has none).
        dir: PathBuf,
    },
    /// The group's directory could not be removed.
    #[error("{source}: the cgroup still has processes; remove it by hand once they exit (rmdir {})", dir.display())]
    Remove {
        /// The group's directory.
        dir: PathBuf,
        /// The failed `rmdir`.
        source: SysError,
    },
}
