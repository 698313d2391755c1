//! Operations as plans of named steps, each owned by a subsystem.
//!
//! A container start is the fixed, documented order below. Each step can be switched off by a
//! flag (`--pid host`, `--no-cgroups`, `--layers copy`...), and the plan says so, which is what
//! `dockling explain` prints and what `--step` pauses between. `commit` is a plan of its own
//! ([`COMMIT`]: find, freeze, walk, store the layer, write the image, thaw).

use std::fmt;

/// The parts of the engine a step belongs to; each can be switched off or swapped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Subsystem {
    /// Find the image and read its configuration.
    Image,
    /// The container's filesystem made of image layers.
    Layers,
    /// Resource limits.
    Cgroups,
    /// Isolation of what the process can see.
    Namespaces,
    /// Network interfaces.
    Network,
    /// The mounts that make up the container's `/`.
    Rootfs,
    /// Capabilities, masked paths, user and groups.
    Security,
    /// The container's own program.
    Process,
    /// A container's changes made into an image (`dockling commit`).
    Commit,
}

impl Subsystem {
    /// Lowercase name, as in trace output.
    pub fn as_str(self) -> &'static str {
        match self {
            Subsystem::Image => "image",
            Subsystem::Layers => "layers",
            Subsystem::Cgroups => "cgroups",
            Subsystem::Namespaces => "namespaces",
            Subsystem::Network => "network",
            Subsystem::Rootfs => "rootfs",
            Subsystem::Security => "security",
            Subsystem::Process => "process",
            Subsystem::Commit => "commit",
        }
    }
}

impl fmt::Display for Subsystem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

macro_rules! steps {
    ($($id:ident => $sub:ident, $key:literal;)*) => {
        /// Every step any operation can take, in the order a `run` takes them.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum StepId { $(#[doc = $key] $id,)* }

        impl StepId {
            /// All steps, in plan order.
            pub const ALL: &'static [StepId] = &[$(StepId::$id,)*];
            /// The subsystem that owns the step.
            pub fn subsystem(self) -> Subsystem {
                match self { $(StepId::$id => Subsystem::$sub,)* }
            }
            /// Stable key: `subsystem.step`, used in JSON traces and the catalog.
            pub fn key(self) -> &'static str {
                match self { $(StepId::$id => $key,)* }
            }
        }
    };
}

steps! {
    SecurityReexec => Security, "security.reexec";
    ImageResolve => Image, "image.resolve";
    NetworkPorts => Network, "network.ports";
    LayersPrepare => Layers, "layers.prepare";
    RootfsEtcFiles => Rootfs, "rootfs.etc_files";
    CgroupsCreate => Cgroups, "cgroups.create";
    NetworkBridge => Network, "network.bridge";
    NamespacesClone => Namespaces, "namespaces.clone";
    NetworkVeth => Network, "network.veth";
    NetworkPublish => Network, "network.publish";
    CgroupsJoin => Cgroups, "cgroups.join";
    NamespacesCgroup => Namespaces, "namespaces.cgroup";
    NetworkLoopback => Network, "network.loopback";
    RootfsPropagation => Rootfs, "rootfs.propagation";
    LayersMount => Layers, "layers.mount";
    RootfsMounts => Rootfs, "rootfs.mounts";
    RootfsDevices => Rootfs, "rootfs.devices";
    RootfsFiles => Rootfs, "rootfs.files";
    RootfsVolumes => Rootfs, "rootfs.volumes";
    SecurityMask => Security, "security.mask";
    RootfsPivot => Rootfs, "rootfs.pivot_root";
    RootfsWorkdir => Rootfs, "rootfs.workdir";
    NamespacesHostname => Namespaces, "namespaces.hostname";
    ProcessTerminal => Process, "process.terminal";
    SecuritySeccomp => Security, "security.seccomp";
    SecurityCapabilities => Security, "security.capabilities";
    SecurityUser => Security, "security.user";
    ProcessExec => Process, "process.exec";
    ProcessWait => Process, "process.wait";
    Cleanup => Process, "process.cleanup";
    CommitResolve => Commit, "commit.resolve";
    CommitPause => Commit, "commit.pause";
    CommitWalk => Commit, "commit.walk";
    CommitLayer => Commit, "commit.layer";
    CommitImage => Commit, "commit.image";
    CommitUnpause => Commit, "commit.unpause";
}

/// The steps of `dockling commit`, in order.
pub const COMMIT: &[StepId] = &[
    StepId::CommitResolve,
    StepId::CommitPause,
    StepId::CommitWalk,
    StepId::CommitLayer,
    StepId::CommitImage,
    StepId::CommitUnpause,
];

/// Steps done another way because of a flag, as (step, variant): each has its own title in
/// the catalog under `<key>:<variant>`, and the trace names the variant, so a `--rootfs chroot`
/// run is never titled `pivot_root`.
pub const VARIANTS: &[(StepId, &str)] = &[
    (StepId::LayersPrepare, "copy"),
    (StepId::LayersMount, "copy"),
    (StepId::ImageResolve, "bundle"),
    (StepId::RootfsPivot, "chroot"),
    (StepId::ProcessTerminal, "null_stdin"),
    (StepId::NetworkPorts, "reserve"),
    (StepId::NetworkPublish, "nat"),
    (StepId::CommitWalk, "copy"),
];

impl StepId {
    /// True for the steps of a container start (`run`, `start`), false for another
    /// operation's (`commit`).
    pub fn in_run(self) -> bool {
        self.subsystem() != Subsystem::Commit
    }

    /// The step's short name without the subsystem.
    pub fn name(self) -> &'static str {
        self.key()
            .split_once('.')
            .map(|(_, n)| n)
            .unwrap_or(self.key())
    }
}

/// One step of a concrete plan: on, or off and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedStep {
    /// Which step.
    pub id: StepId,
    /// `None` when the step runs; the switch that turned it off, or what replaces it, otherwise.
    pub off: Option<String>,
    /// A variant note shown next to a running step (`chroot instead of pivot_root`).
    pub variant: Option<String>,
}
