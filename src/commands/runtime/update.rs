//! `update ID`: a container's cgroup limits changed while it runs, as runc's command: from
//! `--resources FILE` (the runtime spec's `LinuxResources`, `-` for standard input) or from
//! runc's flags. The values go to the group's knobs through dockling's cgroup code
//! ([`crate::cgroups::resources`]), each write on the traced seam; what dockling cannot
//! change is refused by its name, never dropped. The record's copy of the config takes the
//! new values, so it keeps saying what the container was given.

use std::io::Read;
use std::path::Path;

use serde_json::Value;

use super::state::{StateRoot, Status};
use crate::cgroups::resources::Resources;
use crate::cli::runtime::UpdateArgs;
use crate::error::{Error, Result};

/// A `LinuxResources` document as `update` takes it: create's reading
/// ([`Resources::from_oci`]), device rules refused (the group's rules are create's).
fn from_json(doc: &Value) -> Result<Resources> {
    let r = Resources::from_oci(doc)?;
    if !r.devices.is_empty() {
        return Err(Error::Usage(
            "resources: devices is not something dockling-runc can set on a running \
             container; remove it"
                .into(),
        ));
    }
    Ok(r)
}

/// Apply `args` to container `id`.
pub fn update(root: &Path, args: &UpdateArgs) -> Result<()> {
    let r = match &args.resources {
        Some(file) => {
            if from_flags(args)? != Resources::default() {
                return Err(Error::Usage(
                    "--resources and the resource flags both given: put every value in the \
                     file, or use the flags alone"
                        .into(),
                ));
            }
            let text = read_input(file)?;
            let doc: Value = serde_json::from_slice(&text).map_err(|e| {
                Error::Usage(format!(
                    "{}: not JSON ({e}): give the runtime spec's linux.resources object",
                    file.display()
                ))
            })?;
            from_json(&doc)?
        }
        None => from_flags(args)?,
    };
    let id = &args.id;
    let root = StateRoot::open(root)?;
    let (_lock, mut record) = root.lock_and_load(id)?;
    let status = record.status(&root.dir_of(id));
    if matches!(status, Status::Stopped | Status::Creating) {
        return Err(Error::Usage(format!(
            "cannot update container {id:?}: it is {}; only a created, running or paused \
             container has limits to change",
            status.as_str()
        )));
    }
    if r.is_empty() {
        return Ok(());
    }
    let cg = record.cgroup().ok_or_else(|| {
        Error::Usage(format!(
            "container {id:?} has no cgroup (it was created with --cgroup-manager disabled), \
             so it has no limits to change"
        ))
    })?;
    let sys = super::runtime_sys(record.trace.as_deref(), &record.id)?;
    cg.update(&sys, &r)?;
    remember(&mut record.config, &r);
    root.save(&record)
}

fn read_input(file: &Path) -> Result<Vec<u8>> {
    if file == Path::new("-") {
        let mut text = Vec::new();
        std::io::stdin()
            .read_to_end(&mut text)
            .map_err(|e| Error::Usage(format!("read the resources from standard input: {e}")))?;
        Ok(text)
    } else {
        std::fs::read(file).map_err(|e| Error::Usage(format!("read {}: {e}", file.display())))
    }
}

/// A size as runc's flags take it: `-1`, a number of bytes, or a number with a unit (`64m`).
fn size(flag: &str, v: &str) -> Result<i64> {
    if v == "-1" {
        return Ok(-1);
    }
    if let Ok(n) = v.parse::<i64>() {
        if n >= 0 {
            return Ok(n);
        }
    }
    crate::cgroups::parse_memory(v)
        .map(|b| b as i64)
        .map_err(|e| Error::Usage(format!("--{flag}: {e}")))
}

/// The flags' values; the refused ones said by name.
fn from_flags(a: &UpdateArgs) -> Result<Resources> {
    for (flag, given, why) in [
        (
            "kernel-memory",
            a.kernel_memory.is_some(),
            "kernel memory limits are deprecated by the kernel (5.4) and not supported",
        ),
        (
            "kernel-memory-tcp",
            a.kernel_memory_tcp.is_some(),
            "kernel memory limits are deprecated by the kernel (5.4) and not supported",
        ),
        (
            "l3-cache-schema",
            a.l3_cache_schema.is_some(),
            "Intel RDT (resctrl) is not supported by dockling-runc",
        ),
        (
            "mem-bw-schema",
            a.mem_bw_schema.is_some(),
            "Intel RDT (resctrl) is not supported by dockling-runc",
        ),
    ] {
        if given {
            return Err(Error::Usage(format!("--{flag}: {why}: leave it out")));
        }
    }
    Ok(Resources {
        memory: a.memory.as_deref().map(|v| size("memory", v)).transpose()?,
        memory_reservation: a
            .memory_reservation
            .as_deref()
            .map(|v| size("memory-reservation", v))
            .transpose()?,
        memory_swap: a
            .memory_swap
            .as_deref()
            .map(|v| size("memory-swap", v))
            .transpose()?,
        cpu_shares: a.cpu_share,
        cpu_quota: a.cpu_quota,
        cpu_period: a.cpu_period,
        cpu_rt_runtime: a.cpu_rt_runtime,
        cpu_rt_period: a.cpu_rt_period,
        cpuset_cpus: a.cpuset_cpus.clone(),
        cpuset_mems: a.cpuset_mems.clone(),
        pids: a.pids_limit,
        blkio_weight: a.blkio_weight,
        hugepage_limits: Vec::new(),
        disable_oom_killer: None,
        memory_kernel: None,
        memory_kernel_tcp: None,
        memory_swappiness: None,
        devices: Vec::new(),
    })
}

/// The new values written into the record's copy of the config's `linux.resources`.
fn remember(config: &mut Value, r: &Resources) {
    if !config.is_object() {
        return;
    }
    let res = &mut config["linux"]["resources"];
    let given = [
        ("memory", "limit", r.memory.map(Value::from)),
        (
            "memory",
            "reservation",
            r.memory_reservation.map(Value::from),
        ),
        ("memory", "swap", r.memory_swap.map(Value::from)),
        ("cpu", "shares", r.cpu_shares.map(Value::from)),
        ("cpu", "quota", r.cpu_quota.map(Value::from)),
        ("cpu", "period", r.cpu_period.map(Value::from)),
        ("cpu", "realtimeRuntime", r.cpu_rt_runtime.map(Value::from)),
        ("cpu", "realtimePeriod", r.cpu_rt_period.map(Value::from)),
        ("cpu", "cpus", r.cpuset_cpus.clone().map(Value::from)),
        ("cpu", "mems", r.cpuset_mems.clone().map(Value::from)),
        ("pids", "limit", r.pids.map(Value::from)),
        ("blockIO", "weight", r.blkio_weight.map(Value::from)),
        ("memory", "swappiness", r.memory_swappiness.map(Value::from)),
        ("memory", "kernel", r.memory_kernel.map(Value::from)),
        ("memory", "kernelTCP", r.memory_kernel_tcp.map(Value::from)),
        (
            "memory",
            "disableOOMKiller",
            r.disable_oom_killer.map(Value::from),
        ),
    ];
    for (section, key, v) in given {
        if let Some(v) = v {
            res[section][key] = v;
        }
    }
    if !r.hugepage_limits.is_empty() {
        res["hugepageLimits"] = r
            .hugepage_limits
            .iter()
            .map(|(size, limit)| serde_json::json!({"pageSize": size, "limit": limit}))
            .collect();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn resources_json_is_read_and_what_cannot_change_is_refused_by_name() {
        let r = from_json(&json!({
            "memory": {"limit": 104857600, "swap": -1, "reservation": null},
            "cpu": {"shares": 512, "quota": 50000, "period": 100000, "cpus": "0", "mems": "0"},
            "pids": {"limit": 50},
            "blockIO": {"weight": 500},
            "devices": [],
            "hugepageLimits": null
        }))
        .unwrap();
        assert_eq!(
            r,
            Resources {
                memory: Some(104857600),
                memory_swap: Some(-1),
                cpu_shares: Some(512),
                cpu_quota: Some(50000),
                cpu_period: Some(100000),
                cpuset_cpus: Some("0".into()),
                cpuset_mems: Some("0".into()),
                pids: Some(50),
                blkio_weight: Some(500),
                ..Default::default()
            }
        );
        for (doc, named) in [
            (json!({"cpu": {"burst": 1}}), "cpu.burst"),
            (
                json!({"devices": [{"allow": false, "access": "rwm"}]}),
                "devices",
            ),
            (json!({"unified": {"memory.high": "1"}}), "unified"),
            (
                json!({"blockIO": {"weightDevice": [{"major": 8, "minor": 0}]}}),
                "blockIO.weightDevice",
            ),
            (json!({"network": {"classID": 1}}), "network"),
        ] {
            let err = from_json(&doc).unwrap_err().to_string();
            assert!(err.contains(&format!("{named} is not something")), "{err}");
        }
        let err = from_json(&json!({"pids": {"limit": "x"}}))
            .unwrap_err()
            .to_string();
        assert!(err.contains("pids.limit: give a whole number"), "{err}");
        let err = from_json(&json!([1])).unwrap_err().to_string();
        assert!(err.contains("JSON object"), "{err}");
    }

    #[test]
    fn sizes_take_bytes_units_and_minus_one() {
        assert_eq!(size("memory", "104857600").unwrap(), 104857600);
        assert_eq!(size("memory", "64m").unwrap(), 64 << 20);
        assert_eq!(size("memory-swap", "-1").unwrap(), -1);
        let err = size("memory", "lots").unwrap_err().to_string();
        assert!(err.starts_with("--memory: invalid size"), "{err}");
    }

    #[test]
    fn the_record_remembers_the_new_values() {
        let mut config = json!({"linux": {"resources": {"memory": {"limit": 1}}}});
        remember(
            &mut config,
            &Resources {
                memory: Some(2),
                pids: Some(9),
                ..Default::default()
            },
        );
        assert_eq!(
            config["linux"]["resources"],
            json!({"memory": {"limit": 2}, "pids": {"limit": 9}})
        );
    }
}
