//! `dockling inspect`: JSON for containers and images, with Docker's field names.

use serde_json::{json, Value};

use crate::cli::InspectArgs;
use crate::commands::Context;
use crate::container::{Container, Containers, Status};
use crate::error::Result;
use crate::image::store::Store;

/// Docker's inspect document for a container (`paused`: its cgroup is frozen).
pub fn container_json(c: &Container, paused: bool) -> Value {
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
    let lowers: Vec<String> = s
        .layers
        .iter()
        .rev()
        .map(|p| p.display().to_string())
        .collect();
    json!({
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
            "NetworkMode": match s.network { crate::spec::NetworkMode::None => "none", crate::spec::NetworkMode::Host => "host" },
            "PidMode": if s.namespaces.pid { "" } else { "host" },
            "UTSMode": if s.namespaces.uts { "" } else { "host" },
            "IpcMode": if s.namespaces.ipc { "private" } else { "host" },
            "CgroupnsMode": if s.namespaces.cgroup { "private" } else { "host" },
            "Binds": s.volumes.iter().map(|v| format!("{}:{}{}", v.source.display(), v.target.display(), if v.readonly { ":ro" } else { "" })).collect::<Vec<_>>(),
            "Memory": s.cgroup.and_then(|l| l.memory).unwrap_or(0),
            "NanoCpus": s.cgroup.and_then(|l| l.cpus).map(|c| (c * 1e9) as i64).unwrap_or(0),
            "PidsLimit": s.cgroup.and_then(|l| l.pids),
            "CapAdd": Value::Null,
        },
        "GraphDriver": {
            "Name": match s.layers_mode { crate::spec::LayersMode::Overlay => "overlay", crate::spec::LayersMode::Copy => "copy" },
            "Data": {"LowerDir": lowers.join(":"), "UpperDir": s.upper(), "WorkDir": s.work(), "MergedDir": s.rootfs()},
        },
        "Config": {
            "Hostname": s.hostname,
            "User": format!("{}:{}", s.user.uid, s.user.gid),
            "Tty": s.tty,
            "OpenStdin": s.interactive,
            "Env": s.env,
            "Cmd": s.args,
            "Image": s.image_ref,
            "WorkingDir": s.cwd,
        },
        "Dockling": {"Layers": s.layers_mode, "Rootfs": s.rootfs_mode, "Capabilities": s.capabilities},
    })
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
        let found = if kind != Some("image") {
            containers
                .find(name)
                .ok()
                .map(|c| container_json(&c, crate::commands::lifecycle::is_paused(ctx, &c)))
        } else {
            None
        };
        let found = found.or_else(|| {
            if kind != Some("container") {
                store.find(name).ok().map(|i| store.inspect(&i))
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
    match args.format.as_deref().map(str::trim) {
        None | Some("json") => {
            println!("{}", serde_json::to_string_pretty(&out).expect("json"))
        }
        // Docker: one line per object, the template executed on its document.
        Some(f) => {
            let t = crate::template::Template::parse_docker(f)?;
            for v in &out {
                println!("{}", t.render(v)?);
            }
        }
    }
    Ok(code)
}
