//! `features`: what this runtime supports, as the runtime spec's features document
//! (`features.md`, runc's and crun's `features` command), so a caller can ask before it
//! writes a config. Every list is what `create` accepts today, no more: the tests below feed
//! each entry back to the config reader (and the seccomp compiler) and fail if one is refused,
//! and check that what is left out (user namespaces, idmapped mounts, `SCMP_ACT_NOTIFY`) is.
//! A field the spec marks optional and dockling cannot answer honestly is left out.

use serde_json::{json, Value};

use crate::error::{Error, Result};

/// The oldest runtime spec version whose configs `create` reads.
pub const OCI_VERSION_MIN: &str = "1.0.0";

/// The namespaces a config may ask for (made, or joined by path).
pub const NAMESPACES: &[&str] = &["cgroup", "ipc", "mount", "network", "pid", "uts"];

/// The mount options `create` applies by name: mount flags, propagation, `bind`/`rbind`.
/// Any other word on a mount that is not a bind is passed to the file system as data (as
/// `mount -o` does). Left out: the recursive attributes (`rro`, `rnosuid`, `ratime`…) and
/// `tmpcopyup`, which the config reader knows but the mount step refuses for now, and
/// idmapped mounts.
pub const MOUNT_OPTIONS: &[&str] = &[
    "async",
    "atime",
    "bind",
    "defaults",
    "dev",
    "diratime",
    "dirsync",
    "exec",
    "iversion",
    "lazytime",
    "loud",
    "mand",
    "noatime",
    "nodev",
    "nodiratime",
    "noexec",
    "noiversion",
    "nolazytime",
    "nomand",
    "norelatime",
    "nostrictatime",
    "nosuid",
    "nosymfollow",
    "private",
    "rbind",
    "relatime",
    "remount",
    "ro",
    "rprivate",
    "rshared",
    "rslave",
    "runbindable",
    "rw",
    "shared",
    "silent",
    "slave",
    "strictatime",
    "suid",
    "symfollow",
    "sync",
    "unbindable",
];

/// The seccomp actions the filter compiler turns into BPF (not `SCMP_ACT_NOTIFY`: there is
/// no agent to notify).
pub const SECCOMP_ACTIONS: &[&str] = &[
    "SCMP_ACT_ALLOW",
    "SCMP_ACT_ERRNO",
    "SCMP_ACT_KILL",
    "SCMP_ACT_KILL_PROCESS",
    "SCMP_ACT_KILL_THREAD",
    "SCMP_ACT_LOG",
    "SCMP_ACT_TRACE",
    "SCMP_ACT_TRAP",
];

/// The argument comparisons of seccomp rules.
pub const SECCOMP_OPERATORS: &[&str] = &[
    "SCMP_CMP_EQ",
    "SCMP_CMP_GE",
    "SCMP_CMP_GT",
    "SCMP_CMP_LE",
    "SCMP_CMP_LT",
    "SCMP_CMP_MASKED_EQ",
    "SCMP_CMP_NE",
];

/// The architectures whose syscall tables the compiler has (others in a config are skipped,
/// as libseccomp skips those it cannot add).
pub const SECCOMP_ARCHS: &[&str] = &[
    "SCMP_ARCH_AARCH64",
    "SCMP_ARCH_ARM",
    "SCMP_ARCH_X86",
    "SCMP_ARCH_X86_64",
];

/// The hook lists create runs (`runtime::hooks`), in the spec's order.
const HOOKS: [&str; 6] = [
    "prestart",
    "createRuntime",
    "createContainer",
    "startContainer",
    "poststart",
    "poststop",
];

/// The features document.
pub fn document() -> Value {
    let caps: Vec<String> = crate::sys::caps::NAMES
        .iter()
        .map(|n| format!("CAP_{n}"))
        .collect();
    json!({
        "ociVersionMin": OCI_VERSION_MIN,
        "ociVersionMax": super::OCI_VERSION,
        "hooks": HOOKS,
        "mountOptions": MOUNT_OPTIONS,
        "linux": {
            "namespaces": NAMESPACES,
            "capabilities": caps,
            "cgroup": {
                "v1": true,
                "v2": true,
                "systemd": false,
                "systemdUser": false,
                "rdma": false
            },
            "seccomp": {
                "enabled": true,
                "actions": SECCOMP_ACTIONS,
                "operators": SECCOMP_OPERATORS,
                "archs": SECCOMP_ARCHS
            },
            "apparmor": {"enabled": false},
            "selinux": {"enabled": false},
            "intelRdt": {"enabled": false},
            "mountExtensions": {"idmap": {"enabled": false}}
        },
        "annotations": {
            "io.github.dockling.version": env!("CARGO_PKG_VERSION")
        }
    })
}

/// Print the document.
pub fn features() -> Result<()> {
    let text =
        serde_json::to_string_pretty(&document()).map_err(|e| Error::Corrupt(e.to_string()))?;
    println!("{text}");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::specconv::oci::{from_config, OciFlags};
    use std::path::Path;

    fn parse(
        doc: &Value,
    ) -> std::result::Result<(crate::spec::RunSpec, crate::specconv::oci::OciParts), String> {
        let flags = OciFlags {
            id: "f".into(),
            no_pivot: false,
        };
        from_config(
            doc.to_string().as_bytes(),
            Path::new("/b"),
            &flags,
            &mut |_| {},
        )
        .map_err(|e| e.to_string())
    }

    fn read(doc: &Value) -> std::result::Result<(), String> {
        parse(doc).map(|_| ())
    }

    fn config(namespaces: Value, mounts: Value) -> Value {
        json!({
            "ociVersion": "1.0.2",
            "root": {"path": "rootfs"},
            "process": {"user": {"uid": 0, "gid": 0}, "args": ["sh"], "cwd": "/"},
            "mounts": mounts,
            "linux": {"namespaces": namespaces}
        })
    }

    #[test]
    fn every_namespace_listed_is_accepted_and_the_others_refused() {
        let doc = document();
        let listed: Vec<&str> = doc["linux"]["namespaces"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        assert_eq!(listed, NAMESPACES);
        // A mount namespace is required; each other one is asked for beside it.
        let with = |ns: &str| {
            let mut list = vec![json!({"type": ns})];
            if ns != "mount" {
                list.push(json!({"type": "mount"}));
            }
            config(Value::Array(list), json!([]))
        };
        for ns in NAMESPACES {
            read(&with(ns)).unwrap_or_else(|e| panic!("{ns}: {e}"));
        }
        for ns in ["user", "time"] {
            let err = read(&with(ns)).unwrap_err();
            assert!(err.contains("not supported"), "{ns}: {err}");
        }
    }

    #[test]
    fn every_mount_option_listed_is_applied_by_create() {
        // A bind mount takes no file system data: an option the reader did not know by name
        // would be refused there. The mount step's own refusal is asked too.
        let mount = |o: &str| {
            let mounts =
                json!([{"destination": "/data", "source": "/srv", "options": ["bind", o]}]);
            let (_, parts) = parse(&config(json!([{"type": "mount"}]), mounts))?;
            match parts.mounts[0].not_supported_yet() {
                Some(what) => Err(what.to_string()),
                None => Ok(()),
            }
        };
        for o in MOUNT_OPTIONS {
            mount(o).unwrap_or_else(|e| panic!("{o}: {e}"));
        }
        for o in [
            "idmap",
            "ridmap",
            "nosuchoption",
            "rro",
            "rnosuid",
            "ratime",
            "tmpcopyup",
        ] {
            assert!(mount(o).is_err(), "{o}");
            assert!(!MOUNT_OPTIONS.contains(&o), "{o}");
        }
    }

    #[test]
    fn every_seccomp_entry_listed_compiles() {
        use crate::runtime::seccomp::bpf;
        let policy = |action: &str, op: &str, arch: &str| -> oci_spec::runtime::LinuxSeccomp {
            serde_json::from_value(json!({
                "defaultAction": "SCMP_ACT_ALLOW",
                "architectures": [arch],
                "syscalls": [{"names": ["mkdirat"], "action": action,
                              "args": [{"index": 1, "value": 1, "valueTwo": 1, "op": op}]}]
            }))
            .unwrap()
        };
        for a in SECCOMP_ACTIONS {
            bpf::compile(&policy(a, "SCMP_CMP_EQ", "SCMP_ARCH_X86_64"))
                .unwrap_or_else(|e| panic!("{a}: {e}"));
        }
        for op in SECCOMP_OPERATORS {
            bpf::compile(&policy("SCMP_ACT_ERRNO", op, "SCMP_ARCH_X86_64"))
                .unwrap_or_else(|e| panic!("{op}: {e}"));
        }
        for arch in SECCOMP_ARCHS {
            let p = bpf::compile(&policy("SCMP_ACT_ERRNO", "SCMP_CMP_EQ", arch)).unwrap();
            let _ = p;
        }
        assert!(bpf::compile(&policy(
            "SCMP_ACT_NOTIFY",
            "SCMP_CMP_EQ",
            "SCMP_ARCH_X86_64"
        ))
        .is_err());
    }

    #[test]
    fn capabilities_and_the_rest_are_what_create_knows() {
        let doc = document();
        for c in doc["linux"]["capabilities"].as_array().unwrap() {
            let name = c.as_str().unwrap();
            crate::runtime::caps::number(name.trim_start_matches("CAP_"))
                .unwrap_or_else(|e| panic!("{name}: {e}"));
        }
        // Each hook list named is one the config reader keeps (and so one create runs).
        for name in doc["hooks"].as_array().unwrap() {
            let name = name.as_str().unwrap();
            let hooks: crate::specconv::oci::Hooks =
                serde_json::from_value(json!({ name: [{"path": "/bin/true"}] })).unwrap();
            let kept = [
                &hooks.prestart,
                &hooks.create_runtime,
                &hooks.create_container,
                &hooks.start_container,
                &hooks.poststart,
                &hooks.poststop,
            ];
            assert_eq!(
                kept.iter().filter(|l| l.len() == 1).count(),
                1,
                "{name} is not a hook list the config reader keeps"
            );
        }
        assert_eq!(doc["hooks"].as_array().unwrap().len(), 6);
        assert_eq!(doc["ociVersionMax"], super::super::OCI_VERSION);
        assert_eq!(doc["linux"]["mountExtensions"]["idmap"]["enabled"], false);
    }
}
