//! A runtime bundle's `config.json` → the [`RunSpec`] `dockling run` builds from flags, plus
//! what only an OCI caller (podman, containerd, crun's tests) asks for: [`OciParts`].
//!
//! This is `dockling runtime create`'s specconv: every check of the document happens here,
//! before anything exists, and each refusal names the field (`process.cwd`, `linux.sysctl`…)
//! and what to do. The top levels are read with tolerant structs of our own, not oci-spec's:
//! the runtime spec says a runtime ignores properties it does not know, oci-spec's types refuse
//! an unknown capability name (runc warns and goes on) and have no `time` namespace to name in
//! an error. The leaves with a fixed shape (seccomp, resources) are oci-spec's types.
//!
//! What a container needs beyond a `RunSpec` (five capability sets, rlimits, sysctls, the
//! config's own mount list, hooks) is plain data in [`OciParts`]; no kernel is touched here.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use nix::mount::MsFlags;
use nix::sched::CloneFlags;
use serde::Deserialize;
use serde_json::Value;

use super::SpecError;
use crate::spec::{
    LayersMode, Limits, Namespaces, NetConfig, NetworkMode, RootfsMode, RunSpec, User,
};

/// The runtime's own flags that shape the spec.
#[derive(Debug, Clone, Default)]
pub struct OciFlags {
    /// The container id the caller chose.
    pub id: String,
    /// `--no-pivot`: `chroot(2)` instead of `pivot_root(2)` (a root on a ramfs cannot pivot).
    pub no_pivot: bool,
}

/// The five capability sets of `process.capabilities`, as capability numbers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CapSets {
    /// What the process and its children can ever hold.
    pub bounding: Vec<u32>,
    /// What the kernel checks now.
    pub effective: Vec<u32>,
    /// What the process may make effective.
    pub permitted: Vec<u32>,
    /// What survives an `execve` for programs with file capabilities.
    pub inheritable: Vec<u32>,
    /// What survives an `execve` for every program.
    pub ambient: Vec<u32>,
}

impl CapSets {
    /// The sets as the masks the container's process applies.
    pub fn sets(&self) -> crate::runtime::caps::Sets {
        use crate::runtime::caps::mask;
        crate::runtime::caps::Sets {
            bounding: mask(&self.bounding),
            effective: mask(&self.effective),
            permitted: mask(&self.permitted),
            inheritable: mask(&self.inheritable),
            ambient: mask(&self.ambient),
        }
    }
}

/// One `process.rlimits` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rlimit {
    /// The name as the config gives it (`RLIMIT_NOFILE`).
    pub name: String,
    /// The resource number `prlimit64(2)` takes.
    pub resource: i32,
    /// Soft limit.
    pub soft: u64,
    /// Hard limit.
    pub hard: u64,
}

/// One entry of the config's `mounts`, its options read into flags.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OciMount {
    /// Absolute path inside the container.
    pub destination: PathBuf,
    /// File system type; `bind` for a bind mount (also given by the `bind`/`rbind` options).
    pub fstype: String,
    /// Source: a device, a file system's name or, for a bind, a host path (relative to the
    /// bundle when not absolute).
    pub source: String,
    /// `mount(2)` flags.
    pub flags: MsFlags,
    /// A bind (`bind`, `rbind` or type `bind`).
    pub bind: bool,
    /// Propagation to set after the mount (`rprivate`, `shared`…), a second `mount(2)` call.
    pub propagation: MsFlags,
    /// Recursive attributes (`rro`, `rnosuid`…) for `mount_setattr(2)` with `AT_RECURSIVE`:
    /// `MOUNT_ATTR_*` bits to set and to clear.
    pub attr_set: u64,
    /// `MOUNT_ATTR_*` bits to clear.
    pub attr_clr: u64,
    /// crun's `tmpcopyup`: fill a new tmpfs with what the image has at its destination.
    pub copy_up: bool,
    /// The options that are not flags, for the file system (`mode=755`, `size=65536k`).
    pub data: String,
}

impl OciMount {
    /// What the config asks of this mount that `create` cannot do yet, in words: recursive
    /// attributes (they need `mount_setattr(2)` with `AT_RECURSIVE`) and `tmpcopyup`. `None`
    /// when it can be mounted. The config reader keeps them (a later version applies them);
    /// the mount step refuses with this, and `features` leaves their options out.
    pub fn not_supported_yet(&self) -> Option<&'static str> {
        (self.attr_set != 0 || self.attr_clr != 0 || self.copy_up)
            .then_some("recursive attributes (rro, rnosuid...) and tmpcopyup")
    }
}

/// One `linux.devices` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Device {
    /// Absolute path inside the container.
    pub path: PathBuf,
    /// `c`, `b`, `u` (unbuffered character) or `p` (FIFO).
    pub kind: char,
    /// Major number (0 for a FIFO).
    pub major: u64,
    /// Minor number (0 for a FIFO).
    pub minor: u64,
    /// Permission bits; 0666 when absent, as runc.
    pub mode: u32,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
}

/// One hook: a program the runtime runs at a point of the lifecycle with the state on stdin.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Hook {
    /// Absolute path of the program, on the host (or in the container, for
    /// `startContainer`).
    pub path: PathBuf,
    /// Its argv, `argv[0]` included (the path's when absent).
    #[serde(default)]
    pub args: Vec<String>,
    /// Its whole environment (nothing inherited).
    #[serde(default)]
    pub env: Vec<String>,
    /// Seconds before it is killed and counted as failed.
    #[serde(default)]
    pub timeout: Option<i64>,
}

/// `linux.memoryPolicy`, checked, as `set_mempolicy(2)` takes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemPolicy {
    /// `MPOL_*` mode number.
    pub mode: i32,
    /// `MPOL_F_*` flags, or-ed.
    pub flags: i32,
    /// The node mask, 64 nodes a word (empty: none given).
    pub nodes: Vec<u64>,
}

/// The hooks of the config, each list in the order given.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Hooks {
    /// Deprecated in the spec, still sent: run with `createRuntime`, before it.
    #[serde(default)]
    pub prestart: Vec<Hook>,
    /// In the runtime's namespace once the container's namespaces exist.
    #[serde(default)]
    pub create_runtime: Vec<Hook>,
    /// In the container's namespaces, before the root is switched.
    #[serde(default)]
    pub create_container: Vec<Hook>,
    /// In the container, after `start`, before the program.
    #[serde(default)]
    pub start_container: Vec<Hook>,
    /// In the runtime's namespace after the program started.
    #[serde(default)]
    pub poststart: Vec<Hook>,
    /// In the runtime's namespace after the container is deleted.
    #[serde(default)]
    pub poststop: Vec<Hook>,
}

impl Hooks {
    fn all(&self) -> impl Iterator<Item = (&'static str, &Hook)> {
        [
            ("prestart", &self.prestart),
            ("createRuntime", &self.create_runtime),
            ("createContainer", &self.create_container),
            ("startContainer", &self.start_container),
            ("poststart", &self.poststart),
            ("poststop", &self.poststop),
        ]
        .into_iter()
        .flat_map(|(kind, list)| list.iter().map(move |h| (kind, h)))
    }
}

/// What an OCI config asks for beyond a [`RunSpec`].
#[derive(Debug, Clone)]
pub struct OciParts {
    /// The root filesystem, absolute (`root.path` against the bundle).
    pub root: PathBuf,
    /// `process.capabilities`.
    pub caps: CapSets,
    /// `process.rlimits`, in order.
    pub rlimits: Vec<Rlimit>,
    /// `process.oomScoreAdj`.
    pub oom_score_adj: Option<i32>,
    /// `process.scheduler`, as `sched_setattr(2)` takes it.
    pub scheduler: Option<crate::sys::SchedAttr>,
    /// `process.ioPriority`: the class (1 RT, 2 BE, 3 IDLE) and its level (0–7).
    pub io_priority: Option<(u32, u32)>,
    /// `linux.memoryPolicy`, as `set_mempolicy(2)` takes it.
    pub memory_policy: Option<MemPolicy>,
    /// `process.user.umask`.
    pub umask: Option<u32>,
    /// `process.consoleSize`: rows and columns of the terminal.
    pub console_size: Option<(u16, u16)>,
    /// `linux.sysctl`, each checked against the namespaces it needs.
    pub sysctl: BTreeMap<String, String>,
    /// `mounts`, in order.
    pub mounts: Vec<OciMount>,
    /// `linux.devices`.
    pub devices: Vec<Device>,
    /// `linux.maskedPaths`.
    pub masked_paths: Vec<PathBuf>,
    /// `linux.readonlyPaths`.
    pub readonly_paths: Vec<PathBuf>,
    /// `linux.rootfsPropagation` (rprivate when absent).
    pub rootfs_propagation: MsFlags,
    /// Namespaces to join by path instead of making them.
    pub joins: Vec<(CloneFlags, PathBuf)>,
    /// `domainname`.
    pub domainname: Option<String>,
    /// `hooks`.
    pub hooks: Hooks,
    /// `annotations`.
    pub annotations: BTreeMap<String, String>,
    /// `linux.resources`, read once ([`crate::cgroups::resources::Resources::from_oci`], as
    /// `update` reads its document): its device rules, and the limits written to the new
    /// group as `update` writes them (`Cgroup::update`). The `RunSpec`'s limits stay empty:
    /// they are `dockling run`'s, with Docker's defaults.
    pub resources: crate::cgroups::resources::Resources,
    /// `linux.cgroupsPath` as given (empty: the runtime chooses).
    pub cgroups_path: String,
}

impl OciParts {
    /// The devices cgroup rules of the container ([`crate::cgroups::devices::for_oci`]): the
    /// config's `linux.resources.devices`, runc's allowed devices, and each `linux.devices`
    /// node. `from_config` asks once, so a bad rule is refused before anything exists.
    pub fn device_rules(&self) -> Result<Vec<crate::cgroups::devices::Rule>, SpecError> {
        let config = crate::cgroups::devices::from_oci(&self.resources.devices)
            .map_err(|e| bad("linux.resources.devices", e))?;
        let nodes: Vec<(char, u64, u64)> = self
            .devices
            .iter()
            .map(|d| (d.kind, d.major, d.minor))
            .collect();
        Ok(crate::cgroups::devices::for_oci(&config, &nodes))
    }
}

impl Default for OciParts {
    fn default() -> Self {
        OciParts {
            root: PathBuf::new(),
            caps: CapSets::default(),
            rlimits: vec![],
            oom_score_adj: None,
            scheduler: None,
            io_priority: None,
            memory_policy: None,
            umask: None,
            console_size: None,
            sysctl: BTreeMap::new(),
            mounts: vec![],
            devices: vec![],
            masked_paths: vec![],
            readonly_paths: vec![],
            rootfs_propagation: MsFlags::MS_PRIVATE | MsFlags::MS_REC,
            joins: vec![],
            domainname: None,
            hooks: Hooks::default(),
            annotations: BTreeMap::new(),
            resources: Default::default(),
            cgroups_path: String::new(),
        }
    }
}

/// The config as read: the top levels, tolerant of what they do not name.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Doc {
    oci_version: String,
    #[serde(default)]
    root: Option<Root>,
    #[serde(default)]
    process: Option<Process>,
    #[serde(default)]
    hostname: Option<String>,
    #[serde(default)]
    domainname: Option<String>,
    #[serde(default)]
    mounts: Vec<Mount>,
    #[serde(default)]
    hooks: Option<Hooks>,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
    #[serde(default)]
    linux: Option<Linux>,
}

#[derive(Deserialize)]
struct Root {
    path: PathBuf,
    #[serde(default)]
    readonly: bool,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Process {
    #[serde(default)]
    terminal: bool,
    #[serde(default)]
    console_size: Option<ConsoleSize>,
    user: ProcessUser,
    #[serde(default)]
    args: Vec<String>,
    #[serde(default)]
    command_line: Option<String>,
    #[serde(default)]
    env: Vec<String>,
    cwd: PathBuf,
    #[serde(default)]
    capabilities: Option<Capabilities>,
    #[serde(default)]
    rlimits: Vec<RawRlimit>,
    #[serde(default)]
    no_new_privileges: bool,
    #[serde(default)]
    apparmor_profile: Option<String>,
    #[serde(default)]
    oom_score_adj: Option<i64>,
    #[serde(default)]
    selinux_label: Option<String>,
    #[serde(default)]
    io_priority: Option<Value>,
    #[serde(default)]
    scheduler: Option<Value>,
    #[serde(default, rename = "execCPUAffinity")]
    exec_cpu_affinity: Option<Value>,
}

#[derive(Deserialize)]
struct ConsoleSize {
    height: u64,
    width: u64,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ProcessUser {
    uid: u32,
    gid: u32,
    #[serde(default)]
    umask: Option<u32>,
    #[serde(default)]
    additional_gids: Vec<u32>,
}

#[derive(Deserialize, Default, Clone)]
struct Capabilities {
    #[serde(default)]
    bounding: Vec<String>,
    #[serde(default)]
    effective: Vec<String>,
    #[serde(default)]
    permitted: Vec<String>,
    #[serde(default)]
    inheritable: Vec<String>,
    #[serde(default)]
    ambient: Vec<String>,
}

#[derive(Deserialize)]
struct RawRlimit {
    #[serde(rename = "type")]
    kind: String,
    soft: u64,
    hard: u64,
}

#[derive(Deserialize)]
struct Mount {
    destination: String,
    #[serde(default, rename = "type")]
    fstype: Option<String>,
    #[serde(default)]
    source: Option<String>,
    #[serde(default)]
    options: Vec<String>,
    #[serde(default, rename = "uidMappings")]
    uid_mappings: Option<Value>,
    #[serde(default, rename = "gidMappings")]
    gid_mappings: Option<Value>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Linux {
    #[serde(default)]
    uid_mappings: Option<Value>,
    #[serde(default)]
    gid_mappings: Option<Value>,
    #[serde(default)]
    sysctl: BTreeMap<String, String>,
    #[serde(default)]
    resources: Option<Value>,
    #[serde(default)]
    cgroups_path: Option<String>,
    #[serde(default)]
    namespaces: Vec<RawNamespace>,
    #[serde(default)]
    devices: Vec<RawDevice>,
    #[serde(default)]
    seccomp: Option<Value>,
    #[serde(default)]
    rootfs_propagation: Option<String>,
    #[serde(default)]
    masked_paths: Vec<PathBuf>,
    #[serde(default)]
    readonly_paths: Vec<PathBuf>,
    #[serde(default)]
    mount_label: Option<String>,
    #[serde(default)]
    intel_rdt: Option<Value>,
    #[serde(default)]
    personality: Option<Value>,
    #[serde(default)]
    time_offsets: Option<Value>,
    #[serde(default)]
    memory_policy: Option<Value>,
}

#[derive(Deserialize)]
struct RawNamespace {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    path: Option<PathBuf>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawDevice {
    #[serde(rename = "type")]
    kind: String,
    path: PathBuf,
    #[serde(default)]
    major: Option<i64>,
    #[serde(default)]
    minor: Option<i64>,
    #[serde(default)]
    file_mode: Option<u32>,
    #[serde(default)]
    uid: Option<u32>,
    #[serde(default)]
    gid: Option<u32>,
}

fn bad(field: impl Into<String>, why: impl Into<String>) -> SpecError {
    SpecError::Oci {
        field: field.into(),
        why: why.into(),
    }
}

/// Read `config.json` (its bytes) of the bundle at `bundle` (absolute) into the spec dockling
/// runs and the OCI parts beside it. Warnings (an unknown capability, which runc also only
/// warns about) go to `warn`.
pub fn from_config(
    text: &[u8],
    bundle: &Path,
    flags: &OciFlags,
    warn: &mut dyn FnMut(String),
) -> Result<(RunSpec, OciParts), SpecError> {
    let doc: Doc = serde_json::from_slice(text).map_err(|e| {
        bad(
            "config.json",
            format!("{e}: it must be a runtime-spec document (`dockling runtime spec` writes one)"),
        )
    })?;
    if !(doc.oci_version.starts_with("1.") || doc.oci_version == "1") {
        return Err(bad(
            "ociVersion",
            format!(
                "{:?} is not a 1.x runtime spec, the versions dockling reads",
                doc.oci_version
            ),
        ));
    }
    let root = doc.root.ok_or_else(|| {
        bad(
            "root",
            "missing: give root.path, the container's root filesystem",
        )
    })?;
    let root_path = if root.path.is_absolute() {
        root.path.clone()
    } else {
        bundle.join(&root.path)
    };
    let process = doc.process.ok_or_else(|| {
        bad(
            "process",
            "missing: dockling runs a container's process, give process.args, cwd and user",
        )
    })?;
    let linux = doc
        .linux
        .ok_or_else(|| bad("linux", "missing: this is a Linux runtime"))?;
    let mut parts = OciParts {
        root: root_path,
        annotations: doc.annotations,
        ..OciParts::default()
    };

    check_process(&process, &linux)?;
    read_process(&process, &mut parts, warn)?;
    if let Some(v) = &process.scheduler {
        parts.scheduler = Some(read_scheduler(v)?);
    }
    if let Some(v) = &process.io_priority {
        parts.io_priority = Some(read_io_priority(v)?);
    }
    if let Some(v) = &linux.memory_policy {
        parts.memory_policy = Some(read_memory_policy(v)?);
    }
    let namespaces = read_namespaces(&linux, &mut parts)?;
    if doc.hostname.as_deref().is_some_and(|h| !h.is_empty()) && !namespaces.uts {
        return Err(bad(
            "hostname",
            "set without a uts namespace: it would rename the host; add {\"type\": \"uts\"}",
        ));
    }
    if let Some(d) = doc.domainname.filter(|d| !d.is_empty()) {
        if !namespaces.uts {
            return Err(bad(
                "domainname",
                "set without a uts namespace: it would rename the host's domain; add {\"type\": \"uts\"}",
            ));
        }
        parts.domainname = Some(d);
    }
    read_sysctl(&linux, &namespaces, &mut parts)?;
    // The same name twice: the sysctl is written before `setdomainname`, which would win
    // without a word. Equal values are harmless.
    if let (Some(d), Some(v)) = (&parts.domainname, parts.sysctl.get("kernel.domainname")) {
        if d != v {
            return Err(bad(
                "linux.sysctl",
                format!(
                    "kernel.domainname {v:?} differs from domainname {d:?}: give the name once, \
                     in domainname"
                ),
            ));
        }
    }
    for (i, m) in doc.mounts.iter().enumerate() {
        parts.mounts.push(mount(i, m, warn)?);
    }
    parts.devices = read_devices(&linux)?;
    read_paths(&linux, &mut parts)?;
    parts.hooks = doc.hooks.unwrap_or_default();
    check_hooks(&parts.hooks)?;
    // The startContainer hooks are forked by the container's process after its policy is
    // set, and a SCHED_DEADLINE process may not fork unless its children drop the policy
    // (sched(7): EAGAIN from fork).
    if parts
        .scheduler
        .is_some_and(|s| s.policy == 6 && s.flags & 0x01 == 0)
        && !parts.hooks.start_container.is_empty()
    {
        return Err(bad(
            "process.scheduler",
            "a SCHED_DEADLINE process cannot fork, and the startContainer hooks are started \
             by the container's process: add SCHED_FLAG_RESET_ON_FORK to flags, or remove the \
             hooks",
        ));
    }
    for key in ["run.oci.hooks.stdout", "run.oci.hooks.stderr"] {
        if let Some(p) = parts.annotations.get(key) {
            if !Path::new(p).is_absolute() {
                return Err(bad(
                    format!("annotations.{key}"),
                    format!("{p:?} is not an absolute path: give the file for the hooks' output"),
                ));
            }
        }
    }
    read_cgroups(&linux, &mut parts)?;
    parts.device_rules()?;
    let seccomp = match linux.seccomp.clone() {
        None => None,
        Some(v) => Some(
            serde_json::from_value::<oci_spec::runtime::LinuxSeccomp>(v)
                .map_err(|e| bad("linux.seccomp", e.to_string()))?,
        ),
    };
    // A seccomp agent waits on listenerPath for the filter's notification descriptor: a
    // container run without sending it would leave that agent waiting for ever.
    if let Some(path) = seccomp.as_ref().and_then(|s| s.listener_path().as_ref()) {
        if !path.as_os_str().is_empty() {
            return Err(bad(
                "linux.seccomp.listenerPath",
                "seccomp agents (user notification) are not supported by dockling-runc: \
                 remove listenerPath",
            ));
        }
    }

    let spec = RunSpec {
        id: flags.id.clone(),
        name: flags.id.clone(),
        image_ref: String::new(),
        image_id: String::new(),
        layers: vec![],
        args: process.args,
        env: process.env,
        cwd: process.cwd,
        user: User {
            uid: process.user.uid,
            gid: process.user.gid,
            additional_gids: process.user.additional_gids,
        },
        hostname: doc.hostname.unwrap_or_default(),
        tty: process.terminal,
        interactive: false,
        remove: false,
        namespaces,
        network: if namespaces.net {
            NetworkMode::None
        } else {
            NetworkMode::Host
        },
        net: NetConfig::default(),
        // The bundle's root is used as it is: no layers to stack.
        layers_mode: LayersMode::Copy,
        rootfs_mode: if flags.no_pivot {
            RootfsMode::Chroot
        } else {
            RootfsMode::PivotRoot
        },
        // A group, with nothing of `dockling run`'s limits: `parts.resources` holds the
        // config's.
        cgroup: Some(Limits::default()),
        privileged: false,
        capabilities: parts.caps.bounding.clone(),
        seccomp,
        no_new_privileges: process.no_new_privileges,
        volumes: vec![],
        read_only: root.readonly,
        bundle: bundle.to_path_buf(),
        restart: Default::default(),
        log_opts: vec![],
        init: false,
        ports: Default::default(),
    };
    Ok((spec, parts))
}

/// The capability sets the kernel would refuse, refused now by name (runc meets them later,
/// as an `EPERM` from `capset` or a warning that an ambient capability was not raised).
/// `held` is what dockling itself holds: no container it starts can get more.
fn check_caps(c: &CapSets, held: u64) -> Result<(), SpecError> {
    let name = |n: &u32| format!("CAP_{}", crate::sys::caps::NAMES[*n as usize]);
    let outside = |set: &[u32], within: &dyn Fn(u32) -> bool| -> Option<String> {
        set.iter().find(|n| !within(**n)).map(name)
    };
    let has = |set: &[u32], n: u32| set.contains(&n);
    if let Some(cap) = outside(&c.effective, &|n| has(&c.permitted, n)) {
        return Err(bad(
            "process.capabilities.effective",
            format!(
                "{cap} is not in permitted: a process can only make effective what it is \
                 permitted; add it to permitted too"
            ),
        ));
    }
    for (set, field) in [(&c.permitted, "permitted"), (&c.inheritable, "inheritable")] {
        if let Some(cap) = outside(set, &|n| held & (1 << n) != 0) {
            return Err(bad(
                format!("process.capabilities.{field}"),
                format!(
                    "{cap} is not held by dockling-runc itself (this host or its caller took \
                     it away), so no container it starts can have it: remove it"
                ),
            ));
        }
    }
    if let Some(cap) = outside(&c.inheritable, &|n| has(&c.bounding, n)) {
        return Err(bad(
            "process.capabilities.inheritable",
            format!(
                "{cap} is not in bounding: the kernel keeps inheritable capabilities within \
                 the bounding set; add it to bounding too"
            ),
        ));
    }
    if let Some(cap) = outside(&c.ambient, &|n| {
        has(&c.permitted, n) && has(&c.inheritable, n)
    }) {
        return Err(bad(
            "process.capabilities.ambient",
            format!(
                "{cap} is not both permitted and inheritable, as the kernel requires of an \
                 ambient capability: add it to permitted and inheritable, or remove it from \
                 ambient"
            ),
        ));
    }
    Ok(())
}

/// What dockling refuses in `process` (and the labels of `linux`) before reading the rest.
fn check_process(process: &Process, linux: &Linux) -> Result<(), SpecError> {
    if process.args.is_empty() {
        return Err(bad(
            "process.args",
            "empty: give the program to run and its arguments",
        ));
    }
    if process.command_line.is_some() {
        return Err(bad(
            "process.commandLine",
            "is Windows-only: give process.args",
        ));
    }
    if !process.cwd.is_absolute() {
        return Err(bad(
            "process.cwd",
            format!(
                "{:?} is relative: the working directory must be an absolute path in the container",
                process.cwd
            ),
        ));
    }
    if process
        .apparmor_profile
        .as_deref()
        .is_some_and(|p| !p.is_empty())
    {
        return Err(bad(
            "process.apparmorProfile",
            if Path::new("/sys/kernel/security/apparmor").exists() {
                "AppArmor profiles are not supported by dockling-runc yet: remove the profile (podman: --security-opt apparmor=unconfined)"
            } else {
                "AppArmor is not enabled on this host (no /sys/kernel/security/apparmor): remove the profile"
            },
        ));
    }
    if process
        .selinux_label
        .as_deref()
        .is_some_and(|p| !p.is_empty())
        || linux.mount_label.as_deref().is_some_and(|p| !p.is_empty())
    {
        return Err(bad(
            "process.selinuxLabel",
            "SELinux is not supported by dockling: remove the labels (podman: --security-opt label=disable)",
        ));
    }
    for (set, field) in [
        (
            process.exec_cpu_affinity.is_some(),
            "process.execCPUAffinity",
        ),
        (linux.intel_rdt.is_some(), "linux.intelRdt"),
        (linux.personality.is_some(), "linux.personality"),
        (linux.time_offsets.is_some(), "linux.timeOffsets"),
    ] {
        if set {
            return Err(bad(field, "is not supported by dockling yet: remove it"));
        }
    }
    Ok(())
}

/// `process`: oomScoreAdj, umask, console size, the capability sets, rlimits.
fn read_process(
    process: &Process,
    parts: &mut OciParts,
    warn: &mut dyn FnMut(String),
) -> Result<(), SpecError> {
    if let Some(adj) = process.oom_score_adj {
        if !(-1000..=1000).contains(&adj) {
            return Err(bad(
                "process.oomScoreAdj",
                format!("{adj} is outside -1000..1000"),
            ));
        }
        parts.oom_score_adj = Some(adj as i32);
    }
    if let Some(mask) = process.user.umask {
        if mask > 0o777 {
            return Err(bad(
                "process.user.umask",
                format!("{mask:o} is more than 0777"),
            ));
        }
        parts.umask = Some(mask);
    }
    if let Some(size) = &process.console_size {
        parts.console_size = Some((
            u16::try_from(size.height).map_err(|_| bad("process.consoleSize.height", "too big"))?,
            u16::try_from(size.width).map_err(|_| bad("process.consoleSize.width", "too big"))?,
        ));
    }
    let caps = process.capabilities.as_ref().cloned().unwrap_or_default();
    let mut cap_set = |names: &[String], field: &str| -> Vec<u32> {
        let mut out = Vec::new();
        for name in names {
            match crate::runtime::caps::number(name) {
                Ok(n) if n <= crate::runtime::caps::last_cap() => {
                    if !out.contains(&n) {
                        out.push(n);
                    }
                }
                // runc's behaviour: a capability this kernel or this runtime does not know is
                // left out with a warning, so a config written for a newer kernel still runs.
                _ => warn(format!(
                    "process.capabilities.{field}: {name:?} is not a capability this kernel has; left out"
                )),
            }
        }
        out
    };
    parts.caps = CapSets {
        bounding: cap_set(&caps.bounding, "bounding"),
        effective: cap_set(&caps.effective, "effective"),
        permitted: cap_set(&caps.permitted, "permitted"),
        inheritable: cap_set(&caps.inheritable, "inheritable"),
        ambient: cap_set(&caps.ambient, "ambient"),
    };
    check_caps(&parts.caps, crate::runtime::caps::available())?;
    for r in &process.rlimits {
        let resource = rlimit_number(&r.kind).ok_or_else(|| {
            bad(
                "process.rlimits",
                format!(
                    "unknown type {:?}: use RLIMIT_NOFILE, RLIMIT_NPROC, RLIMIT_CORE…",
                    r.kind
                ),
            )
        })?;
        if r.soft > r.hard {
            return Err(bad(
                "process.rlimits",
                format!(
                    "{}: soft limit {} is above the hard limit {}",
                    r.kind, r.soft, r.hard
                ),
            ));
        }
        if parts.rlimits.iter().any(|x| x.resource == resource) {
            return Err(bad("process.rlimits", format!("{} is given twice", r.kind)));
        }
        parts.rlimits.push(Rlimit {
            name: r.kind.clone(),
            resource,
            soft: r.soft,
            hard: r.hard,
        });
    }

    Ok(())
}

/// `linux.namespaces`: which the container gets, and those it joins by path (into `parts`).
fn read_namespaces(linux: &Linux, parts: &mut OciParts) -> Result<Namespaces, SpecError> {
    let mut own = BTreeMap::new();
    for ns in &linux.namespaces {
        let flag = match ns.kind.as_str() {
            "pid" => CloneFlags::CLONE_NEWPID,
            "network" => CloneFlags::CLONE_NEWNET,
            "mount" => CloneFlags::CLONE_NEWNS,
            "ipc" => CloneFlags::CLONE_NEWIPC,
            "uts" => CloneFlags::CLONE_NEWUTS,
            "cgroup" => CloneFlags::CLONE_NEWCGROUP,
            "user" => return Err(bad(
                "linux.namespaces",
                "user namespaces are not supported by dockling-runc yet: run as root without one",
            )),
            "time" => {
                return Err(bad(
                    "linux.namespaces",
                    "time namespaces are not supported by dockling-runc: remove it",
                ))
            }
            other => {
                return Err(bad(
                    "linux.namespaces",
                    format!("unknown type {other:?}: use pid, network, mount, ipc, uts or cgroup"),
                ))
            }
        };
        if own.insert(ns.kind.as_str(), ns.path.is_some()).is_some() {
            return Err(bad(
                "linux.namespaces",
                format!("{} is given twice", ns.kind),
            ));
        }
        if let Some(path) = &ns.path {
            if !path.is_absolute() {
                return Err(bad(
                    "linux.namespaces",
                    format!("{}: path {path:?} is not absolute", ns.kind),
                ));
            }
            if flag == CloneFlags::CLONE_NEWNS {
                return Err(bad(
                    "linux.namespaces",
                    "joining a mount namespace by path is not supported: the container needs a mount namespace of its own",
                ));
            }
            parts.joins.push((flag, path.clone()));
        }
    }
    if !own.contains_key("mount") {
        return Err(bad(
            "linux.namespaces",
            "no mount namespace: dockling mounts the container's root in a mount namespace of its own, add {\"type\": \"mount\"}",
        ));
    }
    if linux.uid_mappings.is_some() || linux.gid_mappings.is_some() {
        return Err(bad(
            "linux.uidMappings",
            "user namespaces are not supported by dockling-runc yet: remove the mappings",
        ));
    }
    let has = |k: &str| own.contains_key(k);
    Ok(Namespaces {
        pid: has("pid"),
        uts: has("uts"),
        ipc: has("ipc"),
        net: has("network"),
        cgroup: has("cgroup"),
    })
}

/// `linux.sysctl`: each only where its namespace is the container's own (runc's rule): an
/// IPC or UTS sysctl needs a namespace made for the container, a network one a namespace that
/// is not the host's (made, or joined by path when that is not the host's own).
fn read_sysctl(linux: &Linux, ns: &Namespaces, parts: &mut OciParts) -> Result<(), SpecError> {
    let joined = |flag: CloneFlags| parts.joins.iter().find(|(f, _)| *f == flag).map(|(_, p)| p);
    for (key, value) in &linux.sysctl {
        if key.is_empty() || key.contains('/') || key.split('.').any(|c| c.is_empty() || c == "..")
        {
            return Err(bad("linux.sysctl", format!("{key:?} is not a sysctl name")));
        }
        let (needs, own) = if IPC_SYSCTLS.contains(&key.as_str()) || key.starts_with("fs.mqueue.") {
            ("ipc", ns.ipc && joined(CloneFlags::CLONE_NEWIPC).is_none())
        } else if key.starts_with("net.") {
            let own = match joined(CloneFlags::CLONE_NEWNET) {
                None => ns.net,
                Some(path) => {
                    !same_namespace(path, Path::new("/proc/self/ns/net")).map_err(|e| {
                        bad(
                            "linux.namespaces",
                            format!("network: {}: {e}", path.display()),
                        )
                    })?
                }
            };
            ("network", own)
        } else if key == "kernel.hostname" {
            return Err(bad(
                "linux.sysctl",
                "kernel.hostname: give the hostname field instead",
            ));
        } else if key == "kernel.domainname" {
            ("uts", ns.uts && joined(CloneFlags::CLONE_NEWUTS).is_none())
        } else {
            return Err(bad(
                "linux.sysctl",
                format!("{key} is not in a namespace of the container's: it would change the host"),
            ));
        };
        if !own {
            return Err(bad(
                "linux.sysctl",
                format!("{key} needs a {needs} namespace of the container's own, not the host's: add {{\"type\": \"{needs}\"}} without a path"),
            ));
        }
        parts.sysctl.insert(key.clone(), value.clone());
    }
    Ok(())
}

/// Whether two namespace files name the same namespace (same device and inode).
fn same_namespace(a: &Path, b: &Path) -> std::io::Result<bool> {
    use std::os::unix::fs::MetadataExt;
    let (a, b) = (std::fs::metadata(a)?, std::fs::metadata(b)?);
    Ok((a.dev(), a.ino()) == (b.dev(), b.ino()))
}

/// `linux.devices`.
fn read_devices(linux: &Linux) -> Result<Vec<Device>, SpecError> {
    let mut out = Vec::new();
    for d in &linux.devices {
        let kind = match d.kind.as_str() {
            "c" | "b" | "u" | "p" => d.kind.chars().next().unwrap_or('c'),
            other => {
                return Err(bad(
                    "linux.devices",
                    format!("{}: type {other:?}: use c, b, u or p", d.path.display()),
                ))
            }
        };
        if !d.path.is_absolute() {
            return Err(bad(
                "linux.devices",
                format!("{:?} is not an absolute path", d.path),
            ));
        }
        let number = |n: Option<i64>, what: &str| -> Result<u64, SpecError> {
            match (kind, n) {
                ('p', _) => Ok(0),
                (_, Some(n)) if n >= 0 => Ok(n as u64),
                _ => Err(bad(
                    "linux.devices",
                    format!("{}: {what} number missing or negative", d.path.display()),
                )),
            }
        };
        out.push(Device {
            path: d.path.clone(),
            kind,
            major: number(d.major, "major")?,
            minor: number(d.minor, "minor")?,
            mode: d.file_mode.unwrap_or(0o666) & 0o7777,
            uid: d.uid.unwrap_or(0),
            gid: d.gid.unwrap_or(0),
        });
    }

    Ok(out)
}

/// `linux.maskedPaths`, `linux.readonlyPaths` and `linux.rootfsPropagation`.
fn read_paths(linux: &Linux, parts: &mut OciParts) -> Result<(), SpecError> {
    for (list, field, out) in [
        (
            &linux.masked_paths,
            "linux.maskedPaths",
            &mut parts.masked_paths,
        ),
        (
            &linux.readonly_paths,
            "linux.readonlyPaths",
            &mut parts.readonly_paths,
        ),
    ] {
        for p in list {
            if !p.is_absolute() {
                return Err(bad(field, format!("{p:?} is not an absolute path")));
            }
            out.push(p.clone());
        }
    }
    parts.rootfs_propagation = match linux.rootfs_propagation.as_deref() {
        None | Some("") => MsFlags::MS_PRIVATE | MsFlags::MS_REC,
        Some(p) => propagation(p).ok_or_else(|| {
            bad(
                "linux.rootfsPropagation",
                format!("{p:?}: use private, rprivate, slave, rslave, shared, rshared, unbindable or runbindable"),
            )
        })?,
    };

    Ok(())
}

#[derive(Deserialize)]
struct RawScheduler {
    policy: String,
    #[serde(default)]
    nice: i32,
    #[serde(default)]
    priority: i32,
    #[serde(default)]
    flags: Vec<String>,
    #[serde(default)]
    runtime: Option<u64>,
    #[serde(default)]
    deadline: Option<u64>,
    #[serde(default)]
    period: Option<u64>,
}

/// `process.scheduler` → `struct sched_attr`, refusing what `sched_setattr(2)` would (with
/// crun's words for SCHED_DEADLINE's parameters, which its tests look for).
fn read_scheduler(v: &Value) -> Result<crate::sys::SchedAttr, SpecError> {
    const FIELD: &str = "process.scheduler";
    let raw: RawScheduler = serde_json::from_value(v.clone()).map_err(|e| {
        bad(
            FIELD,
            format!("{e}: give {{\"policy\": \"SCHED_OTHER\", \"nice\": 5}} or the like"),
        )
    })?;
    let policy = match raw.policy.as_str() {
        "SCHED_OTHER" => 0,
        "SCHED_FIFO" => 1,
        "SCHED_RR" => 2,
        "SCHED_BATCH" => 3,
        "SCHED_ISO" => 4,
        "SCHED_IDLE" => 5,
        "SCHED_DEADLINE" => 6,
        other => {
            return Err(bad(
                format!("{FIELD}.policy"),
                format!(
                    "unknown policy {other:?}: use SCHED_OTHER, SCHED_FIFO, SCHED_RR, \
                     SCHED_BATCH, SCHED_IDLE or SCHED_DEADLINE"
                ),
            ))
        }
    };
    if policy == 4 {
        return Err(bad(
            format!("{FIELD}.policy"),
            "SCHED_ISO is reserved and Linux does not implement it: use SCHED_OTHER",
        ));
    }
    if !(-20..=19).contains(&raw.nice) {
        return Err(bad(
            format!("{FIELD}.nice"),
            format!("{} is outside -20..19", raw.nice),
        ));
    }
    let realtime = matches!(policy, 1 | 2);
    if realtime && !(1..=99).contains(&raw.priority) {
        return Err(bad(
            format!("{FIELD}.priority"),
            format!(
                "{} is outside 1..99, the priorities of {}",
                raw.priority, raw.policy
            ),
        ));
    }
    if !realtime && raw.priority != 0 {
        return Err(bad(
            format!("{FIELD}.priority"),
            format!(
                "{} has no priority (only SCHED_FIFO and SCHED_RR do): remove it, or give 0",
                raw.policy
            ),
        ));
    }
    let mut flags = 0u64;
    for f in &raw.flags {
        flags |= match f.as_str() {
            "SCHED_FLAG_RESET_ON_FORK" => 0x01,
            "SCHED_FLAG_RECLAIM" => 0x02,
            "SCHED_FLAG_DL_OVERRUN" => 0x04,
            "SCHED_FLAG_KEEP_POLICY" => 0x08,
            "SCHED_FLAG_KEEP_PARAMS" => 0x10,
            "SCHED_FLAG_UTIL_CLAMP_MIN" => 0x20,
            "SCHED_FLAG_UTIL_CLAMP_MAX" => 0x40,
            other => {
                return Err(bad(
                    format!("{FIELD}.flags"),
                    format!(
                        "unknown flag {other:?}: use SCHED_FLAG_RESET_ON_FORK, \
                         SCHED_FLAG_RECLAIM, SCHED_FLAG_DL_OVERRUN, SCHED_FLAG_KEEP_POLICY, \
                         SCHED_FLAG_KEEP_PARAMS, SCHED_FLAG_UTIL_CLAMP_MIN or \
                         SCHED_FLAG_UTIL_CLAMP_MAX"
                    ),
                ))
            }
        };
    }
    if flags & 0x60 != 0 {
        // The clamp values live in fields of sched_attr the runtime spec has no place for.
        return Err(bad(
            format!("{FIELD}.flags"),
            "SCHED_FLAG_UTIL_CLAMP_MIN/MAX need clamp values the runtime spec cannot give: \
             remove them",
        ));
    }
    let mut attr = crate::sys::SchedAttr {
        policy,
        flags,
        nice: raw.nice,
        priority: raw.priority as u32,
        ..Default::default()
    };
    if policy == 6 {
        // The kernel's bounds (sched_setattr(2), kernel/sched/deadline.c): runtime at least
        // 1024 ns (2^DL_SCALE), nothing at or past 2^63, runtime <= deadline <= period.
        const MIN: u64 = 1024;
        const MAX: u64 = (1 << 63) - 1;
        let why = |s: String| bad(FIELD, format!("sched_setattr: `SCHED_DEADLINE` {s}"));
        let runtime = raw
            .runtime
            .ok_or_else(|| why("requires `runtime` (nanoseconds)".into()))?;
        let deadline = raw
            .deadline
            .ok_or_else(|| why("requires `deadline` (nanoseconds)".into()))?;
        if runtime == 0 {
            return Err(why("runtime must be greater than 0".into()));
        }
        for (name, value) in [("runtime", runtime), ("deadline", deadline)] {
            if !(MIN..=MAX).contains(&value) {
                return Err(why(format!(
                    "{name} {value} must be between {MIN} and {MAX} nanoseconds"
                )));
            }
        }
        if runtime > deadline {
            return Err(why(format!(
                "runtime {runtime} must be <= deadline {deadline}"
            )));
        }
        let period = raw.period.unwrap_or(0);
        if period != 0 {
            if period > MAX {
                return Err(why(format!(
                    "period {period} must be between {MIN} and {MAX} nanoseconds"
                )));
            }
            if deadline > period {
                return Err(why(format!(
                    "deadline {deadline} must be <= period {period}"
                )));
            }
        }
        attr.runtime = runtime;
        attr.deadline = deadline;
        attr.period = period;
    }
    Ok(attr)
}

#[derive(Deserialize)]
struct RawIoPriority {
    class: String,
    #[serde(default)]
    priority: i64,
}

/// `process.ioPriority` → the class number and level `ioprio_set(2)` takes.
fn read_io_priority(v: &Value) -> Result<(u32, u32), SpecError> {
    const FIELD: &str = "process.ioPriority";
    let raw: RawIoPriority = serde_json::from_value(v.clone()).map_err(|e| {
        bad(
            FIELD,
            format!("{e}: give {{\"class\": \"IOPRIO_CLASS_BE\", \"priority\": 4}} or the like"),
        )
    })?;
    let class = match raw.class.as_str() {
        "IOPRIO_CLASS_RT" => 1,
        "IOPRIO_CLASS_BE" => 2,
        "IOPRIO_CLASS_IDLE" => 3,
        other => {
            return Err(bad(
                format!("{FIELD}.class"),
                format!(
                    "unknown class {other:?}: use IOPRIO_CLASS_RT, IOPRIO_CLASS_BE or \
                     IOPRIO_CLASS_IDLE"
                ),
            ))
        }
    };
    if !(0..=7).contains(&raw.priority) {
        return Err(bad(
            format!("{FIELD}.priority"),
            format!("{} is outside 0..7 (0 is the highest level)", raw.priority),
        ));
    }
    Ok((class, raw.priority as u32))
}

#[derive(Deserialize)]
struct RawMemoryPolicy {
    #[serde(default)]
    mode: Option<String>,
    #[serde(default)]
    nodes: Option<String>,
    #[serde(default)]
    flags: Vec<String>,
}

/// The highest NUMA node number Linux can have (`MAX_NUMNODES` is at most 1 << 10).
const MAX_NODE: u32 = 1023;

/// `linux.memoryPolicy` → mode, flags and node mask, refusing the combinations
/// `set_mempolicy(2)` refuses with EINVAL, so the error names the field.
fn read_memory_policy(v: &Value) -> Result<MemPolicy, SpecError> {
    const FIELD: &str = "linux.memoryPolicy";
    let raw: RawMemoryPolicy = serde_json::from_value(v.clone()).map_err(|e| {
        bad(
            FIELD,
            format!("{e}: give {{\"mode\": \"MPOL_BIND\", \"nodes\": \"0\"}} or the like"),
        )
    })?;
    const MODES: &str = "MPOL_DEFAULT, MPOL_PREFERRED, MPOL_BIND, MPOL_INTERLEAVE, MPOL_LOCAL, \
                         MPOL_PREFERRED_MANY or MPOL_WEIGHTED_INTERLEAVE";
    let name = raw.mode.ok_or_else(|| {
        bad(
            format!("{FIELD}.mode"),
            format!("missing: give one of {MODES}"),
        )
    })?;
    let mode = match name.as_str() {
        "MPOL_DEFAULT" => 0,
        "MPOL_PREFERRED" => 1,
        "MPOL_BIND" => 2,
        "MPOL_INTERLEAVE" => 3,
        "MPOL_LOCAL" => 4,
        "MPOL_PREFERRED_MANY" => 5,
        "MPOL_WEIGHTED_INTERLEAVE" => 6,
        other => {
            return Err(bad(
                format!("{FIELD}.mode"),
                format!("unknown mode {other:?}: use {MODES}"),
            ))
        }
    };
    let mut flags = 0;
    for f in &raw.flags {
        flags |= match f.as_str() {
            "MPOL_F_NUMA_BALANCING" => 1 << 13,
            "MPOL_F_RELATIVE_NODES" => 1 << 14,
            "MPOL_F_STATIC_NODES" => 1 << 15,
            other => {
                return Err(bad(
                    format!("{FIELD}.flags"),
                    format!(
                        "unknown flag {other:?}: use MPOL_F_NUMA_BALANCING, \
                         MPOL_F_RELATIVE_NODES or MPOL_F_STATIC_NODES"
                    ),
                ))
            }
        };
    }
    if flags & (1 << 14) != 0 && flags & (1 << 15) != 0 {
        return Err(bad(
            format!("{FIELD}.flags"),
            "MPOL_F_RELATIVE_NODES and MPOL_F_STATIC_NODES exclude each other: keep one",
        ));
    }
    let mut nodes: Vec<u64> = Vec::new();
    let text = raw.nodes.unwrap_or_default();
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let number = |s: &str| -> Result<u32, SpecError> {
            s.trim()
                .parse::<u32>()
                .ok()
                .filter(|n| *n <= MAX_NODE)
                .ok_or_else(|| {
                    bad(
                        format!("{FIELD}.nodes"),
                        format!(
                            "{text:?}: {s:?} is not a node number (0..{MAX_NODE}); give a list \
                         like \"0-3,7\""
                        ),
                    )
                })
        };
        let (first, last) = match part.split_once('-') {
            Some((a, b)) => (number(a)?, number(b)?),
            None => (number(part)?, number(part)?),
        };
        if first > last {
            return Err(bad(
                format!("{FIELD}.nodes"),
                format!("{text:?}: the range {part} runs backwards"),
            ));
        }
        for n in first..=last {
            let word = (n / 64) as usize;
            if nodes.len() <= word {
                nodes.resize(word + 1, 0);
            }
            nodes[word] |= 1 << (n % 64);
        }
    }
    match mode {
        0 | 4 if !nodes.is_empty() => {
            return Err(bad(
                format!("{FIELD}.nodes"),
                format!("{name} takes no nodes: remove them"),
            ))
        }
        0 if flags != 0 => {
            return Err(bad(
                format!("{FIELD}.flags"),
                "MPOL_DEFAULT takes no flags: remove them",
            ))
        }
        2 | 3 | 5 | 6 if nodes.is_empty() => {
            return Err(bad(
                format!("{FIELD}.nodes"),
                format!("{name} needs nodes: give a list like \"0-1\""),
            ))
        }
        _ => {}
    }
    Ok(MemPolicy { mode, flags, nodes })
}

/// Every hook's path is absolute and its timeout positive.
fn check_hooks(hooks: &Hooks) -> Result<(), SpecError> {
    for (kind, hook) in hooks.all() {
        if !hook.path.is_absolute() {
            return Err(bad(
                format!("hooks.{kind}"),
                format!("{:?} is not an absolute path", hook.path),
            ));
        }
        if hook.timeout.is_some_and(|t| t <= 0) {
            return Err(bad(
                format!("hooks.{kind}"),
                format!(
                    "{}: timeout must be a positive number of seconds",
                    hook.path.display()
                ),
            ));
        }
    }

    Ok(())
}

/// `linux.cgroupsPath` and `linux.resources`, into `parts`.
fn read_cgroups(linux: &Linux, parts: &mut OciParts) -> Result<(), SpecError> {
    let cgroups_path = linux.cgroups_path.clone().unwrap_or_default();
    if cgroups_path.contains(':') {
        return Err(bad(
            "linux.cgroupsPath",
            format!("{cgroups_path:?} is a systemd slice path: dockling-runc manages cgroups through cgroupfs; run podman with --cgroup-manager=cgroupfs, or containerd with SystemdCgroup = false"),
        ));
    }
    if cgroups_path.split('/').any(|c| c == "..") {
        return Err(bad(
            "linux.cgroupsPath",
            format!("{cgroups_path:?} climbs out with `..`"),
        ));
    }
    parts.cgroups_path = cgroups_path;
    if let Some(v) = &linux.resources {
        // Refused by name when dockling cannot set it, never dropped.
        parts.resources = crate::cgroups::resources::Resources::from_oci(v)
            .map_err(|e| bad("linux.resources", e.to_string()))?;
    }
    Ok(())
}

/// The IPC sysctls (runc's list): settable only in an IPC namespace of the container's own.
const IPC_SYSCTLS: &[&str] = &[
    "kernel.msgmax",
    "kernel.msgmnb",
    "kernel.msgmni",
    "kernel.sem",
    "kernel.shmall",
    "kernel.shmmax",
    "kernel.shmmni",
    "kernel.shm_rmid_forced",
];

/// `RLIMIT_*` by name.
fn rlimit_number(name: &str) -> Option<i32> {
    Some(match name {
        "RLIMIT_CPU" => libc::RLIMIT_CPU,
        "RLIMIT_FSIZE" => libc::RLIMIT_FSIZE,
        "RLIMIT_DATA" => libc::RLIMIT_DATA,
        "RLIMIT_STACK" => libc::RLIMIT_STACK,
        "RLIMIT_CORE" => libc::RLIMIT_CORE,
        "RLIMIT_RSS" => libc::RLIMIT_RSS,
        "RLIMIT_NPROC" => libc::RLIMIT_NPROC,
        "RLIMIT_NOFILE" => libc::RLIMIT_NOFILE,
        "RLIMIT_MEMLOCK" => libc::RLIMIT_MEMLOCK,
        "RLIMIT_AS" => libc::RLIMIT_AS,
        "RLIMIT_LOCKS" => libc::RLIMIT_LOCKS,
        "RLIMIT_SIGPENDING" => libc::RLIMIT_SIGPENDING,
        "RLIMIT_MSGQUEUE" => libc::RLIMIT_MSGQUEUE,
        "RLIMIT_NICE" => libc::RLIMIT_NICE,
        "RLIMIT_RTPRIO" => libc::RLIMIT_RTPRIO,
        "RLIMIT_RTTIME" => libc::RLIMIT_RTTIME,
        _ => return None,
    } as i32)
}

/// A propagation option's flags.
fn propagation(name: &str) -> Option<MsFlags> {
    Some(match name {
        "private" => MsFlags::MS_PRIVATE,
        "rprivate" => MsFlags::MS_PRIVATE | MsFlags::MS_REC,
        "shared" => MsFlags::MS_SHARED,
        "rshared" => MsFlags::MS_SHARED | MsFlags::MS_REC,
        "slave" => MsFlags::MS_SLAVE,
        "rslave" => MsFlags::MS_SLAVE | MsFlags::MS_REC,
        "unbindable" => MsFlags::MS_UNBINDABLE,
        "runbindable" => MsFlags::MS_UNBINDABLE | MsFlags::MS_REC,
        _ => return None,
    })
}

/// `MOUNT_ATTR_*` (linux/mount.h): the bits `mount_setattr(2)` sets or clears.
const ATTR_RDONLY: u64 = 0x1;
const ATTR_NOSUID: u64 = 0x2;
const ATTR_NODEV: u64 = 0x4;
const ATTR_NOEXEC: u64 = 0x8;
const ATTR_RELATIME: u64 = 0x0;
const ATTR_NOATIME: u64 = 0x10;
const ATTR_STRICTATIME: u64 = 0x20;
const ATTR_ATIME_MASK: u64 = 0x70;
const ATTR_NODIRATIME: u64 = 0x80;
const ATTR_NOSYMFOLLOW: u64 = 0x0020_0000;

/// One `mounts[i]`: its options read into flags (runc's table; unknown words are the file
/// system's data).
fn mount(i: usize, m: &Mount, warn: &mut dyn FnMut(String)) -> Result<OciMount, SpecError> {
    let field = format!("mounts[{i}]");
    let destination = if m.destination.starts_with('/') {
        PathBuf::from(&m.destination)
    } else if m.destination.is_empty() {
        return Err(bad(field, "an empty destination"));
    } else {
        // runc's behaviour (deprecated in the spec, still met in old configs).
        warn(format!(
            "{field}: destination {:?} is relative: taken from the container's /",
            m.destination
        ));
        Path::new("/").join(&m.destination)
    };
    if m.uid_mappings.is_some() || m.gid_mappings.is_some() {
        return Err(bad(
            field,
            "idmapped mounts are not supported by dockling-runc: remove uidMappings/gidMappings",
        ));
    }
    let fstype = m.fstype.clone().unwrap_or_default();
    let mut out = OciMount {
        destination,
        bind: fstype == "bind",
        fstype,
        source: m.source.clone().unwrap_or_default(),
        flags: MsFlags::empty(),
        propagation: MsFlags::empty(),
        attr_set: 0,
        attr_clr: 0,
        copy_up: false,
        data: String::new(),
    };
    let mut data = Vec::new();
    // The recursive atime choice: the kernel takes one value of the MOUNT_ATTR__ATIME enum,
    // with the whole mask cleared, or none.
    let mut atime = None;
    for opt in &m.options {
        let o = opt.as_str();
        let (set, clear) = match o {
            "ro" => (MsFlags::MS_RDONLY, MsFlags::empty()),
            "rw" => (MsFlags::empty(), MsFlags::MS_RDONLY),
            "suid" => (MsFlags::empty(), MsFlags::MS_NOSUID),
            "nosuid" => (MsFlags::MS_NOSUID, MsFlags::empty()),
            "dev" => (MsFlags::empty(), MsFlags::MS_NODEV),
            "nodev" => (MsFlags::MS_NODEV, MsFlags::empty()),
            "exec" => (MsFlags::empty(), MsFlags::MS_NOEXEC),
            "noexec" => (MsFlags::MS_NOEXEC, MsFlags::empty()),
            "sync" => (MsFlags::MS_SYNCHRONOUS, MsFlags::empty()),
            "async" => (MsFlags::empty(), MsFlags::MS_SYNCHRONOUS),
            "dirsync" => (MsFlags::MS_DIRSYNC, MsFlags::empty()),
            "remount" => (MsFlags::MS_REMOUNT, MsFlags::empty()),
            "mand" => (MsFlags::MS_MANDLOCK, MsFlags::empty()),
            "nomand" => (MsFlags::empty(), MsFlags::MS_MANDLOCK),
            "atime" => (MsFlags::empty(), MsFlags::MS_NOATIME),
            "noatime" => (MsFlags::MS_NOATIME, MsFlags::empty()),
            "diratime" => (MsFlags::empty(), MsFlags::MS_NODIRATIME),
            "nodiratime" => (MsFlags::MS_NODIRATIME, MsFlags::empty()),
            "relatime" => (MsFlags::MS_RELATIME, MsFlags::empty()),
            "norelatime" => (MsFlags::empty(), MsFlags::MS_RELATIME),
            "strictatime" => (MsFlags::MS_STRICTATIME, MsFlags::empty()),
            "nostrictatime" => (MsFlags::empty(), MsFlags::MS_STRICTATIME),
            "lazytime" => (MsFlags::MS_LAZYTIME, MsFlags::empty()),
            "nolazytime" => (MsFlags::empty(), MsFlags::MS_LAZYTIME),
            "iversion" => (MsFlags::MS_I_VERSION, MsFlags::empty()),
            "noiversion" => (MsFlags::empty(), MsFlags::MS_I_VERSION),
            "silent" => (MsFlags::MS_SILENT, MsFlags::empty()),
            "loud" => (MsFlags::empty(), MsFlags::MS_SILENT),
            "nosymfollow" => (MS_NOSYMFOLLOW, MsFlags::empty()),
            "symfollow" => (MsFlags::empty(), MS_NOSYMFOLLOW),
            "defaults" => (MsFlags::empty(), MsFlags::empty()),
            "bind" => {
                out.bind = true;
                (MsFlags::MS_BIND, MsFlags::empty())
            }
            "rbind" => {
                out.bind = true;
                (MsFlags::MS_BIND | MsFlags::MS_REC, MsFlags::empty())
            }
            "tmpcopyup" => {
                out.copy_up = true;
                continue;
            }
            "idmap" | "ridmap" => {
                return Err(bad(
                    field,
                    format!("option {o:?}: idmapped mounts are not supported by dockling-runc"),
                ))
            }
            _ => {
                if let Some(p) = propagation(o) {
                    out.propagation = p;
                    continue;
                }
                if let Some(choice) = recursive_atime(o) {
                    atime = Some(choice);
                    continue;
                }
                if let Some((bit, on)) = recursive_attr(o) {
                    if on {
                        out.attr_set |= bit;
                        out.attr_clr &= !bit;
                    } else {
                        out.attr_clr |= bit;
                        out.attr_set &= !bit;
                    }
                    continue;
                }
                if o.is_empty() || o.contains(',') {
                    return Err(bad(field, format!("option {o:?} is not one option")));
                }
                data.push(o.to_string());
                continue;
            }
        };
        out.flags.insert(set);
        out.flags.remove(clear);
    }
    if let Some(choice) = atime {
        out.attr_clr |= ATTR_ATIME_MASK;
        out.attr_set = (out.attr_set & !ATTR_ATIME_MASK) | choice;
    }
    if out.bind {
        out.flags.insert(MsFlags::MS_BIND);
        if out.source.is_empty() {
            return Err(bad(field, "a bind mount without a source"));
        }
        // A bind mount has no file system options: a word dockling does not know would be
        // dropped silently (and a protection like it with it).
        if let Some(o) = data.first() {
            return Err(bad(
                field,
                format!("option {o:?} is not a mount option dockling knows, and a bind mount takes no file system options"),
            ));
        }
    } else if out.fstype.is_empty() {
        return Err(bad(
            field,
            format!(
                "{}: no type: give \"type\" (tmpfs, proc…) or a bind option",
                m.destination
            ),
        ));
    }
    out.data = data.join(",");
    Ok(out)
}

/// `MS_NOSYMFOLLOW` (Linux 5.10), which nix does not name.
const MS_NOSYMFOLLOW: MsFlags = MsFlags::from_bits_retain(256);

/// A recursive atime option: the `MOUNT_ATTR__ATIME` value it picks (`ratime` and the other
/// "no" forms go back to the kernel's default, relatime, as mount(8)'s do).
fn recursive_atime(o: &str) -> Option<u64> {
    Some(match o {
        "rrelatime" | "ratime" | "rnostrictatime" => ATTR_RELATIME,
        "rnoatime" => ATTR_NOATIME,
        "rstrictatime" | "rnorelatime" => ATTR_STRICTATIME,
        _ => return None,
    })
}

/// A recursive attribute option (`rro`, `rnosuid`…): its `MOUNT_ATTR_*` bit and whether it
/// sets (true) or clears it.
fn recursive_attr(o: &str) -> Option<(u64, bool)> {
    Some(match o {
        "rro" => (ATTR_RDONLY, true),
        "rrw" => (ATTR_RDONLY, false),
        "rnosuid" => (ATTR_NOSUID, true),
        "rsuid" => (ATTR_NOSUID, false),
        "rnodev" => (ATTR_NODEV, true),
        "rdev" => (ATTR_NODEV, false),
        "rnoexec" => (ATTR_NOEXEC, true),
        "rexec" => (ATTR_NOEXEC, false),
        "rnodiratime" => (ATTR_NODIRATIME, true),
        "rdiratime" => (ATTR_NODIRATIME, false),
        "rnosymfollow" => (ATTR_NOSYMFOLLOW, true),
        "rsymfollow" => (ATTR_NOSYMFOLLOW, false),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn flags() -> OciFlags {
        OciFlags {
            id: "c1".into(),
            no_pivot: false,
        }
    }

    fn read(doc: &Value) -> Result<(RunSpec, OciParts), SpecError> {
        from_config(
            doc.to_string().as_bytes(),
            Path::new("/b"),
            &flags(),
            &mut |_| {},
        )
    }

    fn base() -> Value {
        json!({
            "ociVersion": "1.0.2",
            "root": {"path": "rootfs"},
            "process": {"user": {"uid": 0, "gid": 0}, "args": ["sh"], "cwd": "/"},
            "linux": {"namespaces": [{"type": "mount"}, {"type": "pid"}]}
        })
    }

    fn refusal(doc: Value) -> String {
        match read(&doc) {
            Ok(_) => panic!("accepted: {doc}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn what_dockling_writes_reads_back_as_the_same_container() {
        // The inverse of runtime::bundle::config, for a spec as `dockling run` makes it.
        let caps =
            crate::runtime::caps::resolve(false, &["NET_ADMIN".into()], &["CHOWN".into()]).unwrap();
        let mut spec = crate::runtime::tests::spec();
        spec.capabilities = caps.clone();
        spec.cgroup = Some(Limits {
            memory: Some(64 << 20),
            cpus: Some(0.5),
            pids: Some(100),
        });
        spec.read_only = true;
        spec.no_new_privileges = true;
        spec.volumes = vec![crate::spec::Volume::bind(
            "/srv/data".into(),
            "/data".into(),
            true,
        )];
        let cfg = crate::runtime::bundle::config(&spec, "/dockling/x").unwrap();
        let text = serde_json::to_vec(&cfg).unwrap();
        let (back, parts) = from_config(&text, &spec.bundle, &flags(), &mut |w| {
            panic!("warned: {w}")
        })
        .unwrap();
        assert_eq!(back.args, spec.args);
        assert_eq!(back.env, spec.env);
        assert_eq!(back.cwd, spec.cwd);
        assert_eq!(back.user, spec.user);
        assert_eq!(back.hostname, spec.hostname);
        assert_eq!(back.tty, spec.tty);
        assert_eq!(back.namespaces, spec.namespaces);
        // oci-spec keeps capability sets as hash sets: the order is not the document's.
        let mut got = back.capabilities.clone();
        got.sort_unstable();
        let mut want = caps.clone();
        want.sort_unstable();
        assert_eq!(got, want);
        assert_eq!(back.read_only, spec.read_only);
        assert_eq!(back.no_new_privileges, spec.no_new_privileges);
        // The limits come back as the config holds them, written as given (`resources`):
        // the CPU share as a quota and period, not as a ratio; the memory with the swap
        // `dockling run` asks for (Docker's twice the memory), said in the config.
        assert_eq!(back.cgroup, Some(Limits::default()));
        let want = spec.cgroup.unwrap();
        let r = &parts.resources;
        let (quota, period) = (r.cpu_quota.unwrap(), r.cpu_period.unwrap());
        assert_eq!(Some(quota as f64 / period as f64), want.cpus);
        assert_eq!(r.memory, want.memory.map(|m| m as i64));
        assert_eq!(r.memory_swap, want.memory.map(|m| 2 * m as i64));
        assert_eq!(r.pids, want.pids);
        assert_eq!(back.seccomp, spec.seccomp);
        assert_eq!(parts.root, spec.bundle.join("rootfs"));
        assert_eq!(parts.cgroups_path, "/dockling/x");
        assert!(parts.caps.inheritable.is_empty() && parts.caps.ambient.is_empty());
        let data = parts
            .mounts
            .iter()
            .find(|m| m.destination == Path::new("/data"))
            .expect("the volume's bind mount");
        assert!(
            data.bind
                && data
                    .flags
                    .contains(MsFlags::MS_RDONLY | MsFlags::MS_BIND | MsFlags::MS_REC)
        );
        assert_eq!(data.propagation, MsFlags::MS_PRIVATE | MsFlags::MS_REC);
        let dev = parts
            .mounts
            .iter()
            .find(|m| m.destination == Path::new("/dev"))
            .unwrap();
        assert_eq!(dev.fstype, "tmpfs");
        assert_eq!(dev.data, "mode=755,size=65536k");
        assert!(dev
            .flags
            .contains(MsFlags::MS_NOSUID | MsFlags::MS_STRICTATIME));
        assert_eq!(
            parts.masked_paths.len(),
            crate::runtime::rootfs::MASKED.len()
        );
        assert_eq!(parts.devices.len(), crate::runtime::rootfs::DEVICES.len());
    }

    #[test]
    fn podman_shaped_fields_are_read() {
        let mut doc = base();
        doc["process"]["rlimits"] = json!([{"type": "RLIMIT_NOFILE", "soft": 1024, "hard": 2048}]);
        doc["process"]["oomScoreAdj"] = json!(100);
        doc["process"]["user"]["umask"] = json!(18);
        doc["process"]["capabilities"] = json!({"bounding": ["CAP_KILL", "CAP_NOT_A_CAP"], "ambient": ["CAP_KILL"],
                   "permitted": ["CAP_KILL"], "inheritable": ["CAP_KILL"]});
        doc["linux"]["namespaces"] =
            json!([{"type": "mount"}, {"type": "network"}, {"type": "ipc"}, {"type": "uts"}]);
        doc["linux"]["sysctl"] = json!({"net.ipv4.ping_group_range": "0 0", "kernel.shmmax": "1"});
        doc["linux"]["cgroupsPath"] = json!("/libpod_parent/libpod-abc");
        doc["linux"]["rootfsPropagation"] = json!("rslave");
        doc["mounts"] = json!([
            {"destination": "/dev/shm", "type": "bind", "source": "/run/shm", "options": ["bind", "private", "nosuid", "noexec", "nodev", "rro"]},
            {"destination": "/tmp", "type": "tmpfs", "source": "tmpfs", "options": ["mode=1777", "size=1m", "tmpcopyup"]}
        ]);
        doc["hooks"] = json!({"poststop": [{"path": "/bin/true", "timeout": 5}]});
        doc["annotations"] = json!({"dev.dockling.trace": "/tmp/t.jsonl"});
        let mut warnings = vec![];
        let (spec, parts) = from_config(
            doc.to_string().as_bytes(),
            Path::new("/b"),
            &flags(),
            &mut |w| warnings.push(w),
        )
        .unwrap();
        assert_eq!(spec.network, NetworkMode::None);
        assert!(!spec.namespaces.pid);
        assert_eq!(parts.rlimits[0].resource, libc::RLIMIT_NOFILE as i32);
        assert_eq!((parts.rlimits[0].soft, parts.rlimits[0].hard), (1024, 2048));
        assert_eq!(parts.oom_score_adj, Some(100));
        assert_eq!(parts.umask, Some(0o22));
        assert_eq!(parts.caps.bounding, vec![5 /* CAP_KILL */]);
        assert_eq!(parts.caps.ambient, vec![5 /* CAP_KILL */]);
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(warnings[0].contains("CAP_NOT_A_CAP"));
        assert_eq!(parts.sysctl.len(), 2);
        assert_eq!(
            parts.rootfs_propagation,
            MsFlags::MS_SLAVE | MsFlags::MS_REC
        );
        let shm = &parts.mounts[0];
        assert!(shm.bind);
        assert_eq!(shm.propagation, MsFlags::MS_PRIVATE);
        assert_eq!(shm.attr_set, ATTR_RDONLY);
        assert!(shm
            .flags
            .contains(MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC | MsFlags::MS_NODEV));
        let tmp = &parts.mounts[1];
        assert!(tmp.copy_up && !tmp.bind);
        assert_eq!(tmp.data, "mode=1777,size=1m");
        assert_eq!(parts.hooks.poststop.len(), 1);
        assert_eq!(parts.annotations["dev.dockling.trace"], "/tmp/t.jsonl");
        assert_eq!(parts.root, Path::new("/b/rootfs"));
    }

    #[test]
    fn recursive_atime_options_make_one_choice_the_kernel_takes() {
        let mounts = |opts: Value| {
            let mut doc = base();
            doc["mounts"] =
                json!([{"destination": "/t", "type": "tmpfs", "source": "tmpfs", "options": opts}]);
            read(&doc).unwrap().1.mounts.remove(0)
        };
        // The last choice wins; the whole atime mask is cleared with it (else EINVAL).
        let m = mounts(json!(["rnoatime", "rstrictatime", "rro"]));
        assert_eq!(m.attr_set, ATTR_STRICTATIME | ATTR_RDONLY);
        assert_eq!(m.attr_clr, ATTR_ATIME_MASK);
        let m = mounts(json!(["rnoatime", "ratime"]));
        assert_eq!((m.attr_set, m.attr_clr), (ATTR_RELATIME, ATTR_ATIME_MASK));
        let m = mounts(json!([
            "rnosymfollow",
            "rrw",
            "nosymfollow",
            "lazytime",
            "size=1m"
        ]));
        assert_eq!((m.attr_set, m.attr_clr), (ATTR_NOSYMFOLLOW, ATTR_RDONLY));
        assert!(m.flags.contains(MS_NOSYMFOLLOW | MsFlags::MS_LAZYTIME));
        assert_eq!(m.data, "size=1m");
        // A relative destination is taken from / with a warning, as runc does.
        let mut doc = base();
        doc["mounts"] = json!([{"destination": "data", "type": "tmpfs", "source": "tmpfs"}]);
        let mut warned = vec![];
        let (_, parts) = from_config(
            doc.to_string().as_bytes(),
            Path::new("/b"),
            &flags(),
            &mut |w| warned.push(w),
        )
        .unwrap();
        assert_eq!(parts.mounts[0].destination, Path::new("/data"));
        assert!(warned[0].contains("relative"), "{warned:?}");
    }

    #[test]
    fn capabilities_dockling_does_not_hold_are_refused() {
        let sets = CapSets {
            permitted: vec![24],
            ..CapSets::default()
        };
        let e = check_caps(&sets, !(1 << 24)).unwrap_err().to_string();
        assert!(
            e.contains("process.capabilities.permitted: CAP_SYS_RESOURCE is not held"),
            "{e}"
        );
        assert!(check_caps(&sets, u64::MAX).is_ok());
        let all = |v: Vec<u32>| CapSets {
            bounding: v.clone(),
            effective: v.clone(),
            permitted: v.clone(),
            inheritable: v.clone(),
            ambient: v,
        };
        assert!(check_caps(&all(vec![5, 21]), u64::MAX).is_ok());
        assert_eq!(all(vec![5, 21]).sets().ambient, (1 << 5) | (1 << 21));
    }

    #[test]
    fn each_refusal_names_its_field() {
        type Change = Box<dyn Fn(&mut Value)>;
        let cases: Vec<(Change, &str)> = vec![
            (Box::new(|d| d["ociVersion"] = json!("2.0.0")), "ociVersion"),
            (
                Box::new(|d| d["process"]["cwd"] = json!("tmp")),
                "process.cwd",
            ),
            (
                Box::new(|d| d["process"]["args"] = json!([])),
                "process.args",
            ),
            (
                Box::new(|d| d["process"]["selinuxLabel"] = json!("system_u:r:c")),
                "SELinux",
            ),
            (
                Box::new(|d| d["process"]["apparmorProfile"] = json!("p")),
                "AppArmor",
            ),
            (
                Box::new(|d| {
                    d["process"]["rlimits"] =
                        json!([{"type": "RLIMIT_NOFILE", "soft": 9, "hard": 1}])
                }),
                "soft limit 9 is above the hard limit 1",
            ),
            (
                Box::new(|d| {
                    d["process"]["rlimits"] = json!([{"type": "RLIMIT_NOPE", "soft": 1, "hard": 1}])
                }),
                "RLIMIT_NOPE",
            ),
            (
                Box::new(|d| d["process"]["oomScoreAdj"] = json!(1001)),
                "-1000..1000",
            ),
            (
                Box::new(|d| {
                    d["linux"]["seccomp"] = json!({
                        "defaultAction": "SCMP_ACT_ALLOW",
                        "listenerPath": "/run/agent.sock"
                    })
                }),
                "linux.seccomp.listenerPath",
            ),
            (
                Box::new(|d| {
                    d["linux"]["namespaces"] = json!([{"type": "mount"}, {"type": "time"}])
                }),
                "time namespaces",
            ),
            (
                Box::new(|d| d["linux"]["namespaces"] = json!([{"type": "pid"}])),
                "no mount namespace",
            ),
            (
                Box::new(|d| {
                    d["linux"]["namespaces"] = json!([{"type": "mount"}, {"type": "user"}])
                }),
                "user namespaces",
            ),
            (
                Box::new(|d| d["linux"]["sysctl"] = json!({"net.ipv4.ip_forward": "1"})),
                "needs a network namespace",
            ),
            (
                Box::new(|d| d["linux"]["sysctl"] = json!({"vm.swappiness": "1"})),
                "would change the host",
            ),
            (Box::new(|d| d["hostname"] = json!("h")), "uts namespace"),
            (Box::new(|d| d["domainname"] = json!("h")), "domainname"),
            (
                Box::new(|d| {
                    d["domainname"] = json!("a");
                    d["linux"]["namespaces"] = json!([{"type": "mount"}, {"type": "uts"}]);
                    d["linux"]["sysctl"] = json!({"kernel.domainname": "b"});
                }),
                "kernel.domainname \"b\" differs from domainname \"a\"",
            ),
            (
                Box::new(|d| {
                    d["process"]["capabilities"] =
                        json!({"effective": ["CAP_KILL"], "permitted": ["CAP_CHOWN"]})
                }),
                "process.capabilities.effective: CAP_KILL is not in permitted",
            ),
            (
                Box::new(|d| {
                    d["process"]["capabilities"] =
                        json!({"bounding": ["CAP_CHOWN"], "inheritable": ["CAP_KILL"]})
                }),
                "process.capabilities.inheritable: CAP_KILL is not in bounding",
            ),
            (
                Box::new(|d| {
                    d["process"]["capabilities"] = json!({"bounding": ["CAP_KILL"],
                        "permitted": ["CAP_KILL"], "ambient": ["CAP_KILL"]})
                }),
                "process.capabilities.ambient: CAP_KILL is not both permitted and inheritable",
            ),
            (
                Box::new(|d| d["linux"]["cgroupsPath"] = json!("machine.slice:libpod:abc")),
                "systemd",
            ),
            (
                Box::new(|d| d["mounts"] = json!([{"destination": "", "type": "proc"}])),
                "mounts[0]",
            ),
            (
                Box::new(
                    |d| d["mounts"] = json!([{"destination": "/x", "options": ["idmap"], "type": "bind", "source": "/s"}]),
                ),
                "idmapped",
            ),
            (
                Box::new(|d| d["linux"]["devices"] = json!([{"type": "c", "path": "/dev/x"}])),
                "major number",
            ),
            (
                Box::new(|d| d["hooks"] = json!({"prestart": [{"path": "hook"}]})),
                "hooks.prestart",
            ),
            (
                Box::new(|d| d["linux"]["personality"] = json!({})),
                "linux.personality",
            ),
            (
                Box::new(|d| {
                    d["linux"]["namespaces"] = json!([{"type": "mount"}, {"type": "network", "path": "/proc/self/ns/net"}]);
                    d["linux"]["sysctl"] = json!({"net.ipv4.ip_forward": "1"});
                }),
                "not the host's",
            ),
            (
                Box::new(|d| {
                    d["linux"]["namespaces"] = json!([{"type": "mount"}, {"type": "uts"}]);
                    d["linux"]["sysctl"] = json!({"kernel.hostname": "x"});
                }),
                "give the hostname field",
            ),
            (
                Box::new(|d| {
                    d["linux"]["namespaces"] = json!([{"type": "mount"}, {"type": "network"}]);
                    d["linux"]["sysctl"] = json!({"net..ipv4": "1"});
                }),
                "is not a sysctl name",
            ),
            (
                Box::new(
                    |d| d["mounts"] = json!([{"destination": "/x", "type": "bind", "source": "/s", "options": ["rbind", "nosymfollw"]}]),
                ),
                "takes no file system options",
            ),
        ];
        for (change, needle) in cases {
            let mut doc = base();
            change(&mut doc);
            let msg = refusal(doc);
            assert!(msg.contains(needle), "{needle:?} not in {msg:?}");
        }
        // An unknown property is ignored, as the runtime spec asks.
        let mut doc = base();
        doc["vendorThing"] = json!({"x": 1});
        doc["process"]["newField"] = json!(true);
        read(&doc).unwrap();
    }

    #[test]
    fn scheduler_io_priority_and_memory_policy_read_into_kernel_values() {
        let mut doc = base();
        doc["process"]["scheduler"] = json!({"policy": "SCHED_DEADLINE", "runtime": 10_000_000,
            "deadline": 20_000_000, "flags": ["SCHED_FLAG_RESET_ON_FORK"]});
        doc["process"]["ioPriority"] = json!({"class": "IOPRIO_CLASS_IDLE"});
        doc["linux"]["memoryPolicy"] =
            json!({"mode": "MPOL_INTERLEAVE", "nodes": "0-2,65", "flags": ["MPOL_F_STATIC_NODES"]});
        let (_, parts) = read(&doc).unwrap();
        assert_eq!(
            parts.scheduler,
            Some(crate::sys::SchedAttr {
                policy: 6,
                flags: 1,
                runtime: 10_000_000,
                deadline: 20_000_000,
                ..Default::default()
            })
        );
        assert_eq!(parts.io_priority, Some((3, 0)));
        assert_eq!(
            parts.memory_policy,
            Some(MemPolicy {
                mode: 3,
                flags: 1 << 15,
                nodes: vec![0b111, 0b10],
            })
        );
    }

    #[test]
    fn scheduler_io_priority_and_memory_policy_refusals_name_the_field() {
        let deadline = |runtime: Value, deadline: Value, period: Value| {
            let mut d = base();
            d["process"]["scheduler"] = json!({"policy": "SCHED_DEADLINE"});
            for (k, v) in [
                ("runtime", runtime),
                ("deadline", deadline),
                ("period", period),
            ] {
                if !v.is_null() {
                    d["process"]["scheduler"][k] = v;
                }
            }
            refusal(d)
        };
        // crun's words, which its tests look for.
        let e = deadline(Value::Null, json!(20_000_000), Value::Null);
        assert!(
            e.contains("sched_setattr: `SCHED_DEADLINE` requires `runtime`"),
            "{e}"
        );
        let e = deadline(json!(0), json!(20_000_000), Value::Null);
        assert!(e.contains("runtime must be greater than 0"), "{e}");
        let e = deadline(json!(1023), json!(20_000_000), Value::Null);
        assert!(e.contains("runtime 1023 must be between 1024 and"), "{e}");
        let e = deadline(json!(30_000_000), json!(20_000_000), json!(40_000_000));
        assert!(
            e.contains("runtime 30000000 must be <= deadline 20000000"),
            "{e}"
        );
        let e = deadline(json!(10_000_000), json!(30_000_000), json!(20_000_000));
        assert!(
            e.contains("deadline 30000000 must be <= period 20000000"),
            "{e}"
        );
        let mut d = base();
        d["process"]["scheduler"] =
            json!({"policy": "SCHED_DEADLINE", "runtime": 10_000_000, "deadline": 20_000_000});
        d["hooks"] = json!({"startContainer": [{"path": "/bin/true"}]});
        let e = refusal(d.clone());
        assert!(e.contains("SCHED_FLAG_RESET_ON_FORK"), "{e}");
        d["process"]["scheduler"]["flags"] = json!(["SCHED_FLAG_RESET_ON_FORK"]);
        read(&d).unwrap();
        let with = |section: &str, key: &str, v: Value| {
            let mut d = base();
            d[section][key] = v;
            refusal(d)
        };
        for (section, key, v, says) in [
            (
                "process",
                "scheduler",
                json!({"policy": "SCHED_FIFO"}),
                "outside 1..99",
            ),
            (
                "process",
                "scheduler",
                json!({"policy": "SCHED_BATCH", "priority": 3}),
                "has no priority",
            ),
            (
                "process",
                "scheduler",
                json!({"policy": "SCHED_X"}),
                "unknown policy",
            ),
            (
                "process",
                "ioPriority",
                json!({"class": "IOPRIO_CLASS_BE", "priority": 8}),
                "outside 0..7",
            ),
            (
                "linux",
                "memoryPolicy",
                json!({}),
                "linux.memoryPolicy.mode: missing",
            ),
            (
                "linux",
                "memoryPolicy",
                json!({"mode": "MPOL_BIND"}),
                "needs nodes",
            ),
            (
                "linux",
                "memoryPolicy",
                json!({"mode": "MPOL_LOCAL", "nodes": "0"}),
                "takes no nodes",
            ),
            (
                "linux",
                "memoryPolicy",
                json!({"mode": "MPOL_BIND", "nodes": "10284838"}),
                "is not a node number",
            ),
            (
                "linux",
                "memoryPolicy",
                json!({"mode": "MPOL_BIND", "nodes": "3-1"}),
                "runs backwards",
            ),
            (
                "linux",
                "memoryPolicy",
                json!({"mode": "MPOL_PREFERRED", "flags": ["X"]}),
                "unknown flag",
            ),
            (
                "linux",
                "memoryPolicy",
                json!({"mode": "MPOL_PREFERRED", "flags": ["MPOL_F_RELATIVE_NODES", "MPOL_F_STATIC_NODES"]}),
                "exclude each other",
            ),
        ] {
            let e = with(section, key, v);
            assert!(e.contains(says), "{says}: {e}");
        }
    }
}
