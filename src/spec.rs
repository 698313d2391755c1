//! The one validated description of a container, built once from flags + config + image.
//!
//! Like runc's `specconv` → `configs`: the command line is an input format, this is the plan's
//! input. Every step of [`crate::runtime`] receives a `&RunSpec`; nothing re-reads flags.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// `Display` and `FromStr` of an enum with a `VARIANTS` table of (value, name, help), its
/// names as the command line and the config file spell them; `$what` names the kind in the
/// error (`unknown layers mode "x": use overlay or copy`).
#[macro_export]
macro_rules! named_variants {
    ($ty:ty, $what:literal) => {
        impl std::fmt::Display for $ty {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                let name = Self::VARIANTS
                    .iter()
                    .find(|(v, _, _)| v == self)
                    .map(|(_, n, _)| *n);
                f.write_str(name.unwrap_or_default())
            }
        }

        impl std::str::FromStr for $ty {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, String> {
                Self::VARIANTS
                    .iter()
                    .find(|(_, n, _)| *n == s)
                    .map(|(v, _, _)| *v)
                    .ok_or_else(|| {
                        let names: Vec<&str> = Self::VARIANTS.iter().map(|(_, n, _)| *n).collect();
                        format!("unknown {} {s:?}: use {}", $what, names.join(" or "))
                    })
            }
        }
    };
}

/// How image layers become the container's root filesystem.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LayersMode {
    /// overlayfs: layers stay shared and read-only, writes go to the container's upper dir.
    #[default]
    Overlay,
    /// A flattened private copy of every layer: slow and big, which is the point of the demo.
    Copy,
    /// overlayfs over layers mounted from their tar through an EROFS index: nothing unpacked.
    Erofs,
}

impl LayersMode {
    /// Every layers mode: its name, as the command line and the config file spell
    /// it, and what it does, as the command line's help lists it.
    pub const VARIANTS: &'static [(LayersMode, &'static str, &'static str)] = &[
        (
            LayersMode::Overlay,
            "overlay",
            "overlayfs: layers stay shared and read-only, writes go to the container's upper dir",
        ),
        (
            LayersMode::Copy,
            "copy",
            "A flattened private copy of every layer: slow and big, which is the point of the demo",
        ),
        (
            LayersMode::Erofs,
            "erofs",
            "overlayfs over layers mounted from their tar through an EROFS index: nothing unpacked",
        ),
    ];

    /// True when the layers are stacked by overlayfs (an upper directory over read-only
    /// lowers), whether the lowers are unpacked directories or EROFS mounts.
    pub fn overlay(self) -> bool {
        self != LayersMode::Copy
    }
}

crate::named_variants!(LayersMode, "layers mode");

/// How the process is put into its root filesystem.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum RootfsMode {
    /// `pivot_root(2)` and detach the old root: the host filesystem is gone.
    #[default]
    #[serde(rename = "pivot_root")]
    PivotRoot,
    /// `chroot(2)`: the host root stays mounted underneath (escapable by root).
    #[serde(rename = "chroot")]
    Chroot,
}

impl RootfsMode {
    /// Every rootfs mode: its name, as the command line and the config file spell
    /// it, and what it does, as the command line's help lists it.
    pub const VARIANTS: &'static [(RootfsMode, &'static str, &'static str)] = &[
        (
            RootfsMode::PivotRoot,
            "pivot_root",
            "`pivot_root(2)` and detach the old root: the host filesystem is gone",
        ),
        (
            RootfsMode::Chroot,
            "chroot",
            "`chroot(2)`: the host root stays mounted underneath (escapable by root)",
        ),
    ];
}

crate::named_variants!(RootfsMode, "rootfs mode");

/// Network mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NetworkMode {
    /// A new network namespace with only loopback.
    None,
    /// The host's network namespace.
    Host,
    /// A network namespace of its own plugged into the default bridge network (`bridge`,
    /// link `dockling0`): a veth pair, an address leased from the network's subnet.
    Bridge,
}

impl NetworkMode {
    /// The name Docker shows (`HostConfig.NetworkMode`, `ps`'s NETWORKS).
    pub fn as_str(self) -> &'static str {
        match self {
            NetworkMode::None => "none",
            NetworkMode::Host => "host",
            NetworkMode::Bridge => "bridge",
        }
    }
}

/// A container's network settings besides its mode (all empty by default).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetConfig {
    /// `--network NAME`: a user network (`None`: the default network `bridge`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<String>,
    /// `--ip`: the address asked for (user networks only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip: Option<std::net::Ipv4Addr>,
    /// `--network-alias`: more names for it on its (user) network.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub aliases: Vec<String>,
    /// `--add-host NAME:IP`: extra /etc/hosts lines (`host-gateway` resolved already).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub add_hosts: Vec<(String, String)>,
    /// `--dns`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dns: Vec<String>,
    /// `--dns-search`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dns_search: Vec<String>,
    /// `--dns-option`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dns_options: Vec<String>,
    /// `--link NAME[:ALIAS]` resolved at create: (the container's id, its name, the alias).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub links: Vec<(String, String, String)>,
    /// `--network container:<name|id>`: `container:` and the full id of the container whose
    /// network namespace this one joins (no CLONE_NEWNET; the child `setns`es into it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub join: Option<String>,
    /// `--mac-address` (lowercase `aa:bb:cc:dd:ee:ff`; `None`: `02:42:` + the address).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mac: Option<String>,
    /// Networks added by `network connect`, each an interface `eth1`, `eth2`… (plugged again
    /// at every start).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extra: Vec<Attachment>,
    /// `network disconnect` of the network it was created on (`network`, or `bridge`): no
    /// `eth0` from then on (its lease given back), as Docker's container left without an
    /// endpoint on it; the networks of `extra` are still plugged.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub primary_disconnected: bool,
}

/// One network a container was connected to with `network connect`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attachment {
    /// The network's name.
    pub network: String,
    /// `--ip`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip: Option<std::net::Ipv4Addr>,
    /// `--alias`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub aliases: Vec<String>,
    /// The interface inside (`eth1`…) and the number in its host end's name.
    pub index: usize,
}

impl NetConfig {
    /// The id of the container whose network namespace is joined.
    pub fn join_id(&self) -> Option<&str> {
        self.join
            .as_deref()
            .and_then(|j| j.strip_prefix("container:"))
    }

    /// The network's name Docker shows for a container in `mode` with these settings: a
    /// user network's, the joined container's, else the mode's.
    pub fn name(&self, mode: NetworkMode) -> &str {
        self.network
            .as_deref()
            .or(self.join.as_deref())
            .unwrap_or(mode.as_str())
    }
}

/// How a published port reaches the container (`--publish-mode`, config `publish-mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PublishMode {
    /// `dockling proxy`, a process of the host, accepts and copies to the container.
    #[default]
    Proxy,
    /// Kernel NAT rules (nftables DNAT), a table owned by the engine's socket.
    Nat,
}

impl PublishMode {
    /// Every publish mode: its name, as the command line and the config file spell it, and
    /// what it does.
    pub const VARIANTS: &'static [(PublishMode, &'static str, &'static str)] = &[
        (
            PublishMode::Proxy,
            "proxy",
            "a `dockling proxy` process on the host accepts and copies to the container",
        ),
        (
            PublishMode::Nat,
            "nat",
            "nftables DNAT rules send the packets to the container, no process in between",
        ),
    ];
}

crate::named_variants!(PublishMode, "publish mode");

/// Published (`-p`, `-P`) and exposed (`EXPOSE`, `--expose`) ports of a container, as asked:
/// parsed again (they were checked at create) at every start, which binds them.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Ports {
    /// Every `-p` as typed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub publish: Vec<String>,
    /// `-P`: every exposed port on a port the kernel chooses.
    #[serde(default, skip_serializing_if = "is_false")]
    pub publish_all: bool,
    /// The exposed ports (`80/tcp`): the image's `EXPOSE` and `--expose`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exposed: Vec<String>,
    /// Proxy or NAT.
    #[serde(default)]
    pub mode: PublishMode,
    /// NAT mode's bridge table masquerades the containers' outbound traffic (config
    /// `outbound-nat`, off by default).
    #[serde(default, skip_serializing_if = "is_false")]
    pub outbound_nat: bool,
}

impl Ports {
    /// Nothing published or exposed.
    pub fn is_empty(&self) -> bool {
        self.publish.is_empty() && !self.publish_all && self.exposed.is_empty()
    }
}

/// Which namespaces the container gets (true = its own, false = the host's).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Namespaces {
    /// Own process ids (`--pid host` turns off).
    pub pid: bool,
    /// Own hostname (`--uts host`).
    pub uts: bool,
    /// Own SysV IPC and POSIX queues (`--ipc host`).
    pub ipc: bool,
    /// Own network stack (`--network host`).
    pub net: bool,
    /// Own view of the cgroup tree (`--cgroupns host`).
    pub cgroup: bool,
}

/// A bind mount from the host, or a volume of the store (`-v NAME:/path`, `-v /path`,
/// `--mount type=volume`, an image's `VOLUME`), bind-mounted the same way once its directory
/// is known.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Volume {
    /// Absolute host path (for a store volume, its `_data` directory once it exists; empty
    /// until then).
    pub source: PathBuf,
    /// Absolute path inside the container.
    pub target: PathBuf,
    /// Mounted read-only.
    pub readonly: bool,
    /// The store volume's name: `None` for a host bind. An anonymous volume has one too
    /// (64 hex digits) once created.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// A volume made for this container alone (`-v /path`, an image's `VOLUME`): removed by
    /// `rm -v` and `run --rm`.
    #[serde(default, skip_serializing_if = "is_false")]
    pub anonymous: bool,
    /// Do not fill an empty volume with the image's content at `target` (`volume-nocopy`).
    #[serde(default, skip_serializing_if = "is_false")]
    pub nocopy: bool,
    /// Given with `--mount` (shown in `HostConfig.Mounts`, not `Binds`).
    #[serde(default, skip_serializing_if = "is_false")]
    pub from_mount_flag: bool,
    /// A tmpfs, not a bind: its options as given (`size=…,mode=…` for the tmpfs, and mount
    /// flags `ro`, `exec`, `nosuid`… over Docker's `noexec,nosuid,nodev`; `source` is empty).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tmpfs: Option<String>,
    /// The mode field of `-v SRC:DST:MODE` as given (`ro`, `rw,nocopy`…): Docker's `Mode` in
    /// `inspect`'s `Mounts`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub mode: String,
}

fn is_false(b: &bool) -> bool {
    !*b
}

impl Volume {
    /// A host bind mount.
    pub fn bind(source: PathBuf, target: PathBuf, readonly: bool) -> Volume {
        Volume {
            source,
            target,
            readonly,
            name: None,
            anonymous: false,
            nocopy: false,
            from_mount_flag: false,
            tmpfs: None,
            mode: String::new(),
        }
    }

    /// True for a volume of the store (named or anonymous), false for a host bind or a tmpfs.
    pub fn in_store(&self) -> bool {
        self.name.is_some() || self.anonymous
    }

    /// Docker's `Type` of the mount: `volume`, `bind` or `tmpfs`.
    pub fn kind(&self) -> &'static str {
        if self.tmpfs.is_some() {
            "tmpfs"
        } else if self.in_store() {
            "volume"
        } else {
            "bind"
        }
    }
}

/// One mount to make inside the container (the kernel filesystems `runtime::rootfs` mounts,
/// the cgroup mounts `cgroups` asks for).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountEntry {
    /// File system type (`proc`, `tmpfs`, `cgroup`...).
    pub fstype: String,
    /// Source as `mount(8)` shows it.
    pub source: String,
    /// Absolute path inside the container.
    pub target: PathBuf,
    /// Mount flags.
    pub flags: nix::mount::MsFlags,
    /// File-system specific options.
    pub data: Option<String>,
}

/// Resource limits; `None` leaves the kernel default.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct Limits {
    /// Bytes of memory.
    pub memory: Option<u64>,
    /// CPUs as a fraction (0.5 = half a CPU), enforced as a CFS quota per 100 ms period.
    pub cpus: Option<f64>,
    /// Maximum number of processes; `Some(-1)` or `None` for unlimited.
    pub pids: Option<i64>,
}

/// The user the container's process runs as.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    /// User id.
    pub uid: u32,
    /// Primary group id.
    pub gid: u32,
    /// Supplementary groups.
    pub additional_gids: Vec<u32>,
}

/// Everything needed to start one container.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunSpec {
    /// 64 hex digits.
    pub id: String,
    /// `--name` or a generated name.
    pub name: String,
    /// The image as the user named it.
    pub image_ref: String,
    /// The image id (config digest).
    pub image_id: String,
    /// Unpacked layer directories, bottom first.
    pub layers: Vec<PathBuf>,
    /// Full argv of the process.
    pub args: Vec<String>,
    /// `NAME=value` pairs.
    pub env: Vec<String>,
    /// Working directory inside the container.
    pub cwd: PathBuf,
    /// Credentials of the process.
    pub user: User,
    /// Hostname inside the container.
    pub hostname: String,
    /// Allocate a pseudo-terminal.
    pub tty: bool,
    /// Keep stdin open.
    pub interactive: bool,
    /// Remove the container when it exits.
    pub remove: bool,
    /// Namespace switches.
    pub namespaces: Namespaces,
    /// Network mode.
    pub network: NetworkMode,
    /// With [`NetworkMode::Bridge`]: which network, the address asked for, aliases, and the
    /// names and resolver settings of the container's /etc files.
    #[serde(default)]
    pub net: NetConfig,
    /// Layer mode.
    pub layers_mode: LayersMode,
    /// Root switching mode.
    pub rootfs_mode: RootfsMode,
    /// Limits, or `None` with `--no-cgroups`.
    pub cgroup: Option<Limits>,
    /// `--privileged`.
    pub privileged: bool,
    /// Capability numbers the process keeps.
    pub capabilities: Vec<u32>,
    /// `no-new-privileges`: setuid binaries and file capabilities give nothing.
    #[serde(default)]
    pub no_new_privileges: bool,
    /// Bind mounts from the host.
    pub volumes: Vec<Volume>,
    /// Root filesystem read-only.
    pub read_only: bool,
    /// The container's directory: `upper/`, `work/`, `rootfs/`, `hostname`, `hosts`...
    pub bundle: PathBuf,
    /// `--restart`: whether its monitor starts it again when it ends.
    #[serde(default)]
    pub restart: RestartPolicy,
    /// `--log-opt` values, for every start of the container (`container::logs::LogOptions`).
    #[serde(default)]
    pub log_opts: Vec<String>,
    /// `--init`: a tiny init is the container's process 1 (see `runtime::init`).
    #[serde(default)]
    pub init: bool,
    /// `-p`, `-P`, `--expose`, `--publish-mode`.
    #[serde(default, skip_serializing_if = "Ports::is_empty")]
    pub ports: Ports,
    /// The seccomp policy to install, resolved for this container (the runtime spec's
    /// `linux.seccomp`); `None` with `--privileged` or `seccomp=unconfined`. Last on purpose:
    /// it is most of a container's `state.json`, and a listing reads the record only up to
    /// it (`container::Listing`).
    #[serde(default, deserialize_with = "seccomp_or_old_flag")]
    pub seccomp: Option<oci_spec::runtime::LinuxSeccomp>,
}

/// Docker's `--restart` policies: what the monitor of a detached container does when it
/// ends (never after `stop`, `kill` or `rm -f`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RestartPolicy {
    /// Never (the default).
    #[default]
    No,
    /// When it exits with a code other than 0, at most this many times (unlimited: `None`).
    OnFailure(Option<u32>),
    /// Always, whatever the exit code.
    Always,
    /// Always, unless it was stopped (the same as `always` without a daemon to restart).
    UnlessStopped,
}

impl RestartPolicy {
    /// Whether to start again after an end with `code`, having restarted `count` times.
    pub fn restarts(&self, code: i32, count: u32) -> bool {
        match self {
            RestartPolicy::No => false,
            RestartPolicy::OnFailure(max) => code != 0 && max.is_none_or(|m| count < m),
            RestartPolicy::Always | RestartPolicy::UnlessStopped => true,
        }
    }
}

impl std::str::FromStr for RestartPolicy {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || {
            format!(
                "invalid restart policy {s:?}: use no, always, unless-stopped or on-failure[:max-retries]"
            )
        };
        Ok(match s.split_once(':') {
            None if s == "no" => RestartPolicy::No,
            None if s == "always" => RestartPolicy::Always,
            None if s == "unless-stopped" => RestartPolicy::UnlessStopped,
            None if s == "on-failure" => RestartPolicy::OnFailure(None),
            Some(("on-failure", n)) => {
                RestartPolicy::OnFailure(Some(n.parse().map_err(|_| bad())?))
            }
            Some(("always" | "unless-stopped" | "no", _)) => {
                return Err(format!(
                    "invalid restart policy {s:?}: maximum retry count can only be used with 'on-failure'"
                ))
            }
            _ => return Err(bad()),
        })
    }
}

impl std::fmt::Display for RestartPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RestartPolicy::No => f.write_str("no"),
            RestartPolicy::OnFailure(None) => f.write_str("on-failure"),
            RestartPolicy::OnFailure(Some(n)) => write!(f, "on-failure:{n}"),
            RestartPolicy::Always => f.write_str("always"),
            RestartPolicy::UnlessStopped => f.write_str("unless-stopped"),
        }
    }
}

impl RunSpec {
    /// The network's name Docker shows (`HostConfig.NetworkMode`, `ps`'s NETWORKS): a user
    /// network's, else the mode's.
    pub fn network_name(&self) -> &str {
        self.net.name(self.network)
    }

    /// Whether the container gets `eth0` on its own bridge network: bridge mode, and not
    /// disconnected from that network since (`network disconnect`).
    pub fn on_primary_network(&self) -> bool {
        self.network == NetworkMode::Bridge && !self.net.primary_disconnected
    }

    /// The store the container belongs to: its bundle is `<root>/containers/<id>`.
    pub fn store_root(&self) -> &std::path::Path {
        self.bundle
            .parent()
            .and_then(std::path::Path::parent)
            .unwrap_or(std::path::Path::new("/"))
    }

    /// Where the merged (or copied) root filesystem is mounted.
    pub fn rootfs(&self) -> PathBuf {
        self.bundle.join("rootfs")
    }
    /// The container's writable layer.
    pub fn upper(&self) -> PathBuf {
        self.bundle.join("upper")
    }
    /// overlayfs's scratch directory (same filesystem as upper).
    pub fn work(&self) -> PathBuf {
        self.bundle.join("work")
    }
}

/// Containers created before seccomp policies were stored say `"seccomp": true|false`: `true`
/// becomes Docker's default profile for Docker's default capabilities.
fn seccomp_or_old_flag<'de, D>(d: D) -> Result<Option<oci_spec::runtime::LinuxSeccomp>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Stored {
        Flag(bool),
        Policy(Option<oci_spec::runtime::LinuxSeccomp>),
    }
    Ok(match Stored::deserialize(d)? {
        Stored::Flag(false) => None,
        Stored::Flag(true) => Some(crate::runtime::seccomp::default_policy(
            &crate::runtime::caps::resolve(false, &[], &[]).map_err(serde::de::Error::custom)?,
            crate::runtime::seccomp::profile::running_kernel(),
        )),
        Stored::Policy(p) => p,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mode_names_are_the_config_files_and_parse_back() {
        for (mode, name, _) in LayersMode::VARIANTS {
            assert_eq!(serde_json::to_value(mode).unwrap(), *name);
            assert_eq!(mode.to_string(), *name);
            assert_eq!(name.parse::<LayersMode>(), Ok(*mode));
        }
        for (mode, name, _) in RootfsMode::VARIANTS {
            assert_eq!(serde_json::to_value(mode).unwrap(), *name);
            assert_eq!(mode.to_string(), *name);
            assert_eq!(name.parse::<RootfsMode>(), Ok(*mode));
        }
        assert_eq!(
            "overlayfs".parse::<LayersMode>(),
            Err("unknown layers mode \"overlayfs\": use overlay or copy or erofs".to_string())
        );
    }
}
