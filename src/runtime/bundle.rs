//! The container as an OCI runtime bundle: `<container>/config.json` next to `rootfs/`.
//!
//! dockling does not need this file to run a container (it follows its own plan), but writing
//! it makes the engine's decisions inspectable in the standard format and lets the same
//! container be started by runc or crun (`crun run --bundle <container dir> <name>`), which
//! the tests do. A container removed when it ends (`--rm`) gets none: it is never started
//! again, and building, checking and writing the document (its seccomp policy alone is
//! hundreds of lines) was a cost on the path of every start. The document is built as JSON
//! and read back through `oci-spec`'s types, so a field that does not fit the runtime spec is
//! an error here, not in runc.
//! Capabilities are listed explicitly, with inheritable and ambient empty as in Docker
//! (oci-spec's defaults would fill them). The device rules (`linux.resources.devices`) are
//! the ones dockling's own devices cgroup applies ([`crate::cgroups::devices`]).

use serde_json::{json, Value};

use super::{caps, rootfs};
use crate::error::{Error, Result};
use crate::spec::RunSpec;

/// The runtime spec of `spec`; `cgroups_path` is where a runtime should put its cgroup.
pub fn config(spec: &RunSpec, cgroups_path: &str) -> Result<oci_spec::runtime::Spec> {
    let cap_names: Vec<String> = spec
        .capabilities
        .iter()
        .filter_map(|c| caps::NAMES.get(*c as usize))
        .map(|n| format!("CAP_{n}"))
        .collect();
    let held = if spec.user.uid == 0 {
        cap_names.clone()
    } else {
        vec![]
    };
    let ns = &spec.namespaces;
    let mut namespaces = vec![json!({"type": "mount"})];
    for (on, kind) in [
        (ns.pid, "pid"),
        (ns.uts, "uts"),
        (ns.ipc, "ipc"),
        (ns.net, "network"),
        (ns.cgroup, "cgroup"),
    ] {
        if on {
            namespaces.push(json!({"type": kind}));
        }
    }
    let mut mounts: Vec<Value> = rootfs::default_mounts(spec)
        .iter()
        .map(|m| {
            let mut options: Vec<String> = m.data.iter().flat_map(|d| d.split(',').map(String::from)).collect();
            for (flag, name) in [
                (nix::mount::MsFlags::MS_NOSUID, "nosuid"),
                (nix::mount::MsFlags::MS_NOEXEC, "noexec"),
                (nix::mount::MsFlags::MS_NODEV, "nodev"),
                (nix::mount::MsFlags::MS_RDONLY, "ro"),
                (nix::mount::MsFlags::MS_STRICTATIME, "strictatime"),
            ] {
                if m.flags.contains(flag) {
                    options.push(name.into());
                }
            }
            json!({"destination": m.target, "type": m.fstype, "source": m.source, "options": options})
        })
        .collect();
    mounts.push(json!({"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup", "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]}));
    for name in ["hostname", "hosts", "resolv.conf"] {
        mounts.push(json!({"destination": format!("/etc/{name}"), "type": "bind", "source": spec.bundle.join(name), "options": ["rbind", "rprivate"]}));
    }
    for v in &spec.volumes {
        let mut options = vec!["rbind", "rprivate"];
        if v.readonly {
            options.push("ro");
        }
        mounts.push(json!({"destination": v.target, "type": "bind", "source": v.source, "options": options}));
    }
    let mut resources = json!({});
    if let Some(l) = &spec.cgroup {
        if let Some(m) = l.memory {
            resources["memory"] = json!({"limit": m, "swap": 2 * m});
        }
        if let Some(c) = l.cpus {
            resources["cpu"] = json!({"quota": (c * 100_000.0).round() as i64, "period": 100_000});
        }
        if let Some(p) = l.pids {
            resources["pids"] = json!({"limit": p});
        }
        // The device rules dockling's own cgroup enforces, so runc and crun enforce the same.
        let devices = crate::cgroups::devices::rules(spec.privileged);
        resources["devices"] = serde_json::to_value(crate::cgroups::devices::to_oci(devices))
            .map_err(|e| Error::Corrupt(format!("device rules of {}: {e}", spec.name)))?;
    }
    let mut linux = json!({
        "namespaces": namespaces,
        "resources": resources,
        "cgroupsPath": cgroups_path,
        "devices": default_devices(),
        "rootfsPropagation": "rprivate",
    });
    if let Some(policy) = &spec.seccomp {
        // The policy dockling compiles and installs, so runc and crun run the same one.
        linux["seccomp"] = serde_json::to_value(policy)
            .map_err(|e| Error::Corrupt(format!("seccomp policy of {}: {e}", spec.name)))?;
    }
    if !spec.privileged {
        linux["maskedPaths"] = json!(rootfs::MASKED.iter().map(|(p, _)| *p).collect::<Vec<_>>());
        linux["readonlyPaths"] = json!(rootfs::READONLY);
    }
    let mut doc = json!({
        "ociVersion": "1.0.2",
        "process": {
            "terminal": spec.tty,
            "user": {"uid": spec.user.uid, "gid": spec.user.gid, "additionalGids": spec.user.additional_gids},
            "args": spec.args,
            "env": spec.env,
            "cwd": spec.cwd,
            "capabilities": {"bounding": cap_names, "effective": held, "permitted": held, "inheritable": [], "ambient": []},
            "noNewPrivileges": spec.no_new_privileges,
        },
        "root": {"path": "rootfs", "readonly": spec.read_only},
        "mounts": mounts,
        "linux": linux,
    });
    if ns.uts {
        doc["hostname"] = json!(spec.hostname);
    }
    serde_json::from_value(doc)
        .map_err(|e| Error::Corrupt(format!("runtime spec of {}: {e}", spec.name)))
}

/// The device nodes dockling makes in the container's `/dev` (`linux.devices`), 0666 and owned
/// by root as in Docker.
fn default_devices() -> Value {
    rootfs::DEVICES
        .iter()
        .map(|(name, major, minor)| {
            json!({"path": format!("/dev/{name}"), "type": "c", "major": major, "minor": minor, "fileMode": 0o666, "uid": 0, "gid": 0})
        })
        .collect()
}

/// Write `<bundle>/config.json`.
pub fn write(spec: &RunSpec, cgroups_path: &str) -> Result<()> {
    let cfg = config(spec, cgroups_path)?;
    let path = spec.bundle.join("config.json");
    let text = serde_json::to_vec_pretty(&cfg)
        .map_err(|e| Error::Corrupt(format!("runtime spec: {e}")))?;
    crate::files::replace_atomic(&path, &text)?;
    Ok(())
}
