//! `dockling inspect`: JSON for containers and images, with Docker's field names.

use serde_json::{json, Value};

use crate::cli::InspectArgs;
use crate::commands::Context;
use crate::container::{Container, Containers, Status};
use crate::error::Result;
use crate::image::store::Store;

/// Docker's inspect document for a container (`paused`: its cgroup is frozen).
/// `lease`: its network and address, shown while it runs (Docker shows none for a stopped
/// container, though dockling keeps its lease until `rm`).
pub fn container_json(
    c: &Container,
    paused: bool,
    lease: Option<(crate::network::store::Network, std::net::Ipv4Addr)>,
) -> Value {
    let s = &c.spec;
    let (status, running, pid, code, oom, finished) = match &c.status {
        Status::Created => (
            "created",
            false,
            0,
            0,
            false,
            "0001-01-01T00:00:00Z".to_string(),
        ),
        // Docker: a container waiting to be restarted is "restarting", Running and Restarting.
        Status::Exited {
            code,
            finished,
            oom_killed,
        } if c.restarting => ("restarting", true, 0, *code, *oom_killed, finished.clone()),
        Status::Running { pid, .. } if c.is_alive() => (
            if paused { "paused" } else { "running" },
            true,
            *pid,
            0,
            false,
            "0001-01-01T00:00:00Z".into(),
        ),
        Status::Running { .. } => ("exited", false, 0, -1, false, "0001-01-01T00:00:00Z".into()),
        Status::Exited {
            code,
            finished,
            oom_killed,
        } => ("exited", false, 0, *code, *oom_killed, finished.clone()),
    };
    // Docker's: a running container's exposed ports (null when not published) and bound
    // ones; `{}` when it does not run.
    let alive = running && !c.restarting;
    let ports = if alive {
        serde_json::to_value(c.port_map(alive)).unwrap_or_default()
    } else {
        json!({})
    };
    // Docker's ExposedPorts: the image's EXPOSE, --expose and every -p's port (omitted when
    // none).
    let exposed: Value = {
        let keys: std::collections::BTreeMap<String, Value> = c
            .port_map(false)
            .into_keys()
            .map(|k| (k, json!({})))
            .collect();
        if keys.is_empty() {
            Value::Null
        } else {
            json!(keys)
        }
    };
    let lowers: Vec<String> = s
        .layers
        .iter()
        .rev()
        .map(|p| p.display().to_string())
        .collect();
    let no_exposed = exposed.is_null();
    let mut v = json!({
        "Id": s.id,
        "Created": c.created,
        "Path": s.args.first(),
        "Args": s.args.get(1..).unwrap_or(&[]),
        "State": {"Status": status, "Running": running, "Paused": paused, "Restarting": c.restarting, "OOMKilled": oom, "Dead": false, "Pid": pid, "ExitCode": code, "Error": "", "StartedAt": c.started_at.as_deref().unwrap_or("0001-01-01T00:00:00Z"), "FinishedAt": finished},
        "Image": s.image_id,
        "Name": format!("/{}", s.name),
        "RestartCount": c.restart_count,
        "HostnamePath": s.bundle.join("hostname"),
        "HostsPath": s.bundle.join("hosts"),
        "ResolvConfPath": s.bundle.join("resolv.conf"),
        "LogPath": s.bundle.join(crate::container::logs::file_name(&s.id)),
        "HostConfig": {
            "AutoRemove": s.remove,
            "Init": s.init,
            "RestartPolicy": {
                "Name": match s.restart { crate::spec::RestartPolicy::OnFailure(_) => "on-failure".to_string(), other => other.to_string() },
                "MaximumRetryCount": match s.restart { crate::spec::RestartPolicy::OnFailure(Some(n)) => n, _ => 0 },
            },
            "LogConfig": {"Type": "json-file", "Config": s.log_opts.iter().filter_map(|o| o.split_once('=')).map(|(k, v)| (k.to_string(), Value::from(v))).collect::<serde_json::Map<String, Value>>()},
            "Privileged": s.privileged,
            "ReadonlyRootfs": s.read_only,
            "NetworkMode": s.network_name(),
            "PortBindings": crate::network::ports::port_bindings(&crate::network::ports::bindings(&s.ports).unwrap_or_default()),
            "PublishAllPorts": s.ports.publish_all,
            "PidMode": if s.namespaces.pid { "" } else { "host" },
            "UTSMode": if s.namespaces.uts { "" } else { "host" },
            "IpcMode": if s.namespaces.ipc { "private" } else { "host" },
            "CgroupnsMode": if s.namespaces.cgroup { "private" } else { "host" },
            "Binds": binds(s),
            "Mounts": host_mounts(s),
            "Tmpfs": tmpfs(s),
            "Memory": s.cgroup.and_then(|l| l.memory).unwrap_or(0),
            "NanoCpus": s.cgroup.and_then(|l| l.cpus).map(|c| (c * 1e9) as i64).unwrap_or(0),
            "PidsLimit": s.cgroup.and_then(|l| l.pids),
            "CapAdd": Value::Null,
        },
        "GraphDriver": {
            "Name": match s.layers_mode { crate::spec::LayersMode::Overlay | crate::spec::LayersMode::Erofs => "overlay", crate::spec::LayersMode::Copy => "copy" },
            "Data": {"LowerDir": lowers.join(":"), "UpperDir": s.upper(), "WorkDir": s.work(), "MergedDir": s.rootfs()},
        },
        "Mounts": mounts(s),
        "NetworkSettings": network_settings(s, lease.filter(|_| running), ports),
        "Config": {
            "Volumes": config_volumes(s),
            "Hostname": s.hostname,
            "User": format!("{}:{}", s.user.uid, s.user.gid),
            "Tty": s.tty,
            "OpenStdin": s.interactive,
            "Env": s.env,
            "Cmd": s.args,
            "Image": s.image_ref,
            "WorkingDir": s.cwd,
            "ExposedPorts": exposed,
        },
        "Dockling": {"Layers": s.layers_mode, "Rootfs": s.rootfs_mode, "Capabilities": s.capabilities},
    });
    if no_exposed {
        if let Some(cfg) = v.get_mut("Config").and_then(Value::as_object_mut) {
            cfg.remove("ExposedPorts");
        }
    }
    v
}

/// `HostConfig.Binds`: the `-v` flags with a source (binds and named volumes), as given.
fn binds(s: &crate::spec::RunSpec) -> Vec<String> {
    s.volumes
        .iter()
        .filter(|v| !v.from_mount_flag && v.tmpfs.is_none() && !v.anonymous)
        .map(|v| {
            let src = match &v.name {
                Some(n) => n.clone(),
                None => v.source.display().to_string(),
            };
            let mut opts = vec![];
            if v.readonly {
                opts.push("ro");
            }
            if v.nocopy {
                opts.push("nocopy");
            }
            // The mode as given (`rw` too); records older than `mode` rebuilt from the flags.
            let opts = if !v.mode.is_empty() {
                format!(":{}", v.mode)
            } else if opts.is_empty() {
                String::new()
            } else {
                format!(":{}", opts.join(","))
            };
            format!("{src}:{}{opts}", v.target.display())
        })
        .collect()
}

/// `HostConfig.Mounts`: the `--mount` flags, in Docker's `mount.Mount` shape.
fn host_mounts(s: &crate::spec::RunSpec) -> Value {
    let list: Vec<Value> = s
        .volumes
        .iter()
        .filter(|v| v.from_mount_flag)
        .map(|v| {
            let mut m = json!({
                "Type": v.kind(),
                "Source": match v.kind() {
                    "volume" if v.anonymous => String::new(),
                    "volume" => v.name.clone().unwrap_or_default(),
                    "bind" => v.source.display().to_string(),
                    _ => String::new(),
                },
                "Target": v.target,
            });
            if v.readonly {
                m["ReadOnly"] = json!(true);
            }
            if v.nocopy {
                m["VolumeOptions"] = json!({"NoCopy": true});
            }
            m
        })
        .collect();
    if list.is_empty() {
        Value::Null
    } else {
        Value::from(list)
    }
}

/// `HostConfig.Tmpfs`: `--tmpfs` paths and their options.
fn tmpfs(s: &crate::spec::RunSpec) -> Value {
    let map: serde_json::Map<String, Value> = s
        .volumes
        .iter()
        .filter(|v| v.tmpfs.is_some() && !v.from_mount_flag)
        .map(|v| {
            (
                v.target.display().to_string(),
                Value::from(v.tmpfs.clone().unwrap_or_default()),
            )
        })
        .collect();
    if map.is_empty() {
        Value::Null
    } else {
        Value::Object(map)
    }
}

/// `Config.Volumes`: the anonymous volumes' paths (`-v /path` and the image's `VOLUME`s).
fn config_volumes(s: &crate::spec::RunSpec) -> Value {
    let map: serde_json::Map<String, Value> = s
        .volumes
        .iter()
        .filter(|v| v.anonymous && !v.from_mount_flag)
        .map(|v| (v.target.display().to_string(), json!({})))
        .collect();
    if map.is_empty() {
        Value::Null
    } else {
        Value::Object(map)
    }
}

/// The container's `Mounts`, as Docker lists them. `Mode` is Docker's: the `-v` mode as given
/// (`ro`, `rw,nocopy`…; `""` for none), except that a local volume named in `-v` or
/// `--mount` with no mode gets `z` (moby's `setBindModeIfNull`); an anonymous volume from
/// `-v /path` or the image's `VOLUME` (Docker's `Config.Volumes`) keeps `""`. A `--tmpfs`
/// is in `HostConfig.Tmpfs` only, not here; a `--mount type=tmpfs` is here.
fn mounts(s: &crate::spec::RunSpec) -> Vec<Value> {
    s.volumes
        .iter()
        .filter(|v| v.tmpfs.is_none() || v.from_mount_flag)
        .map(|v| match v.kind() {
            "volume" => json!({
                "Type": "volume",
                "Name": v.name,
                "Source": v.source,
                "Destination": v.target,
                "Driver": "local",
                "Mode": if v.anonymous && !v.from_mount_flag {
                    ""
                } else if v.mode.is_empty() {
                    "z"
                } else {
                    v.mode.as_str()
                },
                "RW": !v.readonly,
                "Propagation": "",
            }),
            "tmpfs" => json!({
                "Type": "tmpfs",
                "Source": "",
                "Destination": v.target,
                "Mode": "",
                "RW": !v.readonly,
                "Propagation": "",
            }),
            _ => json!({
                "Type": "bind",
                "Source": v.source,
                "Destination": v.target,
                "Mode": v.mode,
                "RW": !v.readonly,
                "Propagation": "rprivate",
            }),
        })
        .collect()
}

/// Docker's `NetworkSettings`: one endpoint named after the network. With `none` and `host`
/// it has no addresses (the container has only loopback, or the host's); on `bridge` the
/// container's while it runs (`lease`), empty strings when it does not, as Docker's.
fn network_settings(
    s: &crate::spec::RunSpec,
    lease: Option<(crate::network::store::Network, std::net::Ipv4Addr)>,
    ports: Value,
) -> Value {
    let mode = s.network_name();
    let user = s.net.network.is_some();
    let (network_id, gateway, ip, prefix, mac) = match &lease {
        Some((net, addr)) => (
            net.id.clone(),
            net.gateway.to_string(),
            addr.to_string(),
            net.subnet().map(|s| s.prefix).unwrap_or(0),
            crate::network::store::mac_text(crate::network::store::mac_of(s, *addr)),
        ),
        None => Default::default(),
    };
    // On a user network Docker lists the container's name, aliases and short id as the
    // names it answers to, and leaves the top-level (default-bridge) fields empty.
    let (aliases, dns_names, ipam) = if user {
        let mut dns = vec![s.name.clone(), s.id[..12].to_string()];
        dns.extend(s.net.aliases.iter().cloned());
        let ipam = s.net.ip.map(|a| json!({"IPv4Address": a.to_string()}));
        (json!(s.net.aliases), json!(dns), json!(ipam))
    } else {
        (Value::Null, Value::Null, Value::Null)
    };
    let endpoint_id = match &lease {
        Some((net, _)) => crate::commands::network::endpoint_id(&net.id, &s.id),
        None => String::new(),
    };
    let endpoint = json!({
        "IPAMConfig": ipam, "Links": null, "Aliases": aliases, "MacAddress": mac, "DriverOpts": null,
        "NetworkID": network_id, "EndpointID": endpoint_id, "Gateway": gateway, "IPAddress": ip,
        "IPPrefixLen": prefix, "IPv6Gateway": "", "GlobalIPv6Address": "",
        "GlobalIPv6PrefixLen": 0, "DNSNames": dns_names,
    });
    let (gateway, ip, prefix, mac) = if user {
        (String::new(), String::new(), 0, String::new())
    } else {
        (gateway, ip, prefix, mac)
    };
    json!({
        "Bridge": "", "SandboxID": "", "SandboxKey": "", "HairpinMode": false,
        "LinkLocalIPv6Address": "", "LinkLocalIPv6PrefixLen": 0, "Ports": ports,
        "SecondaryIPAddresses": null, "SecondaryIPv6Addresses": null,
        "EndpointID": "", "Gateway": gateway, "GlobalIPv6Address": "", "GlobalIPv6PrefixLen": 0,
        "IPAddress": ip, "IPPrefixLen": prefix, "IPv6Gateway": "", "MacAddress": mac,
        // Disconnected from it (`network disconnect`): no endpoint there, as Docker's.
        "Networks": if s.net.primary_disconnected { json!({}) } else { json!({ mode: endpoint }) },
    })
}

/// The networks `network connect` added, each its own entry of `NetworkSettings.Networks`
/// (while the container runs, as the first).
fn extra_networks(ctx: &Context, c: &crate::container::Container, v: &mut Value) {
    let running = c.is_alive();
    for att in &c.spec.net.extra {
        let lease = crate::network::store::leased_on(&ctx.root, &att.network, &c.spec.id)
            .filter(|_| running);
        let (id, gateway, ip, prefix, mac, endpoint) = match &lease {
            Some((n, a)) => (
                n.id.clone(),
                n.gateway.to_string(),
                a.to_string(),
                n.subnet().map(|s| s.prefix).unwrap_or(0),
                crate::network::store::mac_string(*a),
                crate::commands::network::endpoint_id(&n.id, &c.spec.id),
            ),
            None => Default::default(),
        };
        let mut dns = vec![c.spec.name.clone(), c.spec.id[..12].to_string()];
        dns.extend(att.aliases.iter().cloned());
        v["NetworkSettings"]["Networks"][&att.network] = json!({
            "IPAMConfig": att.ip.map(|a| json!({"IPv4Address": a.to_string()})),
            "Links": null, "Aliases": att.aliases, "MacAddress": mac, "DriverOpts": null,
            "NetworkID": id, "EndpointID": endpoint, "Gateway": gateway, "IPAddress": ip,
            "IPPrefixLen": prefix, "IPv6Gateway": "", "GlobalIPv6Address": "",
            "GlobalIPv6PrefixLen": 0, "DNSNames": dns,
        });
    }
}

/// `dockling inspect`.
pub fn run(ctx: &Context, args: &InspectArgs) -> Result<i32> {
    let containers = Containers::open(&ctx.root)?;
    // A container whose dockling was killed is shown as exited, not running.
    crate::commands::rm::reap(ctx, &containers);
    let store = Store::open(&ctx.root)?;
    let mut out = vec![];
    let mut code = 0;
    for name in &args.names {
        let kind = args.kind.as_deref();
        let found = if kind.is_none() || kind == Some("container") {
            containers.find(name).ok().map(|c| {
                let lease =
                    crate::network::store::leased_on(&ctx.root, c.spec.network_name(), &c.spec.id);
                let mut v =
                    container_json(&c, crate::commands::lifecycle::is_paused(ctx, &c), lease);
                extra_networks(ctx, &c, &mut v);
                v
            })
        } else {
            None
        };
        let found = found.or_else(|| {
            if kind != Some("container") && kind != Some("volume") && kind != Some("network") {
                store.find(name).ok().map(|i| store.inspect(&i))
            } else {
                None
            }
        });
        let found = found.or_else(|| {
            if kind.is_none() || kind == Some("volume") {
                crate::volume::Volumes::at(&ctx.root)
                    .get(name)
                    .ok()
                    .map(|v| v.to_json())
            } else {
                None
            }
        });
        let found = found.or_else(|| {
            if kind.is_none() || kind == Some("network") {
                crate::commands::network::inspect_one(ctx, name)
            } else {
                None
            }
        });
        match found {
            Some(v) => out.push(v),
            None => {
                eprintln!("Error: No such object: {name}");
                code = 1;
            }
        }
    }
    crate::commands::print_inspect(&out, args.format.as_deref())?;
    Ok(code)
}
