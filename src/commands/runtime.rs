//! `dockling runtime …` / `dockling-runc …`: dockling's engine behind runc's command line.
//!
//! Exit codes and messages are runc's, since its callers read them: 0, or 1 with
//! `dockling-runc: <message>` on stderr and, with `--log`, one line in the chosen format
//! (podman reads the last JSON line's `msg` when a call fails).

use std::ffi::OsString;
use std::io::Write;
use std::path::Path;

use clap::Parser;

use crate::cli::runtime::{LogFormat, RuntimeCli, RuntimeCommand};
use crate::error::{Error, Result};

/// The runtime spec version dockling writes and reads up to.
pub const OCI_VERSION: &str = "1.0.2";

/// Run the runtime's command line (`args[0]` is the program's name) and give its exit code.
pub fn main(args: Vec<OsString>) -> i32 {
    let cli = match RuntimeCli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => {
            use clap::error::ErrorKind;
            let _ = e.print();
            return match e.kind() {
                ErrorKind::DisplayHelp | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => 0,
                _ => 1,
            };
        }
    };
    match run(&cli) {
        Ok(()) => 0,
        Err(e) => {
            let msg = e.to_string();
            eprintln!("dockling-runc: {msg}");
            if let Some(log) = &cli.log {
                let _ = log_line(log, cli.log_format, "error", &msg);
            }
            1
        }
    }
}

fn run(cli: &RuntimeCli) -> Result<()> {
    if cli.version {
        // Three lines, the shape containerd's go-runc parses.
        println!(
            "dockling-runc version {}\ncommit: {}\nspec: {OCI_VERSION}",
            env!("CARGO_PKG_VERSION"),
            option_env!("DOCKLING_GIT_COMMIT").unwrap_or("unknown")
        );
        return Ok(());
    }
    if cli.systemd_cgroup || cli.cgroup_manager.as_deref() == Some("systemd") {
        return Err(Error::Usage(
            "dockling-runc manages cgroups through cgroupfs only: run podman with \
             --cgroup-manager=cgroupfs, or containerd with SystemdCgroup = false"
                .into(),
        ));
    }
    if let Some(m) = cli.cgroup_manager.as_deref() {
        if m != "cgroupfs" && m != "disabled" {
            return Err(Error::Usage(format!(
                "unknown cgroup manager {m:?}: use cgroupfs or disabled"
            )));
        }
    }
    match cli.rootless.as_deref() {
        None | Some("false") | Some("auto") => {}
        Some("true") => {
            return Err(Error::Usage(
                "dockling-runc runs containers as root only: rootless mode is not supported".into(),
            ))
        }
        Some(other) => {
            return Err(Error::Usage(format!(
                "--rootless {other:?}: use true, false or auto"
            )))
        }
    }
    match &cli.command {
        None => Err(Error::Usage(
            "no command given: see `dockling-runc --help`".into(),
        )),
        Some(RuntimeCommand::Spec { bundle, rootless }) => {
            if *rootless {
                return Err(Error::Usage(
                    "dockling-runc runs containers as root only: there is no rootless spec".into(),
                ));
            }
            spec(bundle)
        }
    }
}

/// One line of `--log`, appended.
fn log_line(path: &Path, format: LogFormat, level: &str, msg: &str) -> std::io::Result<()> {
    let time = crate::container::now_rfc3339();
    let line = match format {
        LogFormat::Json => {
            serde_json::json!({"level": level, "msg": msg, "time": time}).to_string()
        }
        LogFormat::Text => format!(
            "time={} level={level} msg={}",
            serde_json::Value::from(time),
            serde_json::Value::from(msg)
        ),
    };
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(path)?;
    f.write_all(format!("{line}\n").as_bytes())
}

/// `spec`: a `config.json` for a bundle whose root filesystem is `rootfs/`: the document
/// dockling itself writes for `dockling run busybox sh` (Docker's capabilities, mounts,
/// masked paths and device rules), without what belongs to one container of a store (its
/// /etc files, its cgroup, its seccomp policy, which runc's template leaves out too).
fn spec(bundle: &Path) -> Result<()> {
    let mut doc = serde_json::to_value(template()?)
        .map_err(|e| Error::Corrupt(format!("runtime spec template: {e}")))?;
    doc["process"]["terminal"] = true.into();
    if let Some(linux) = doc["linux"].as_object_mut() {
        linux.remove("cgroupsPath");
        linux.remove("seccomp");
    }
    if let Some(mounts) = doc["mounts"].as_array_mut() {
        mounts.retain(|m| {
            !m["destination"]
                .as_str()
                .is_some_and(|d| d.starts_with("/etc/"))
        });
    }
    let text = serde_json::to_vec_pretty(&doc)
        .map_err(|e| Error::Corrupt(format!("runtime spec template: {e}")))?;
    let path = bundle.join("config.json");
    let mut f = match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&path)
    {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            return Err(Error::Usage(format!(
                "{} exists: remove it first",
                path.display()
            )))
        }
        Err(e) => {
            return Err(Error::Usage(format!(
                "write {}: {e} (is --bundle an existing directory?)",
                path.display()
            )))
        }
    };
    f.write_all(&text)
        .and_then(|_| f.write_all(b"\n"))
        .map_err(|e| Error::Usage(format!("write {}: {e}", path.display())))
}

/// The runtime spec of a template container, made by the code that writes every container's.
fn template() -> Result<oci_spec::runtime::Spec> {
    use crate::runtime::caps;
    use crate::spec::{Namespaces, NetworkMode, RootfsMode, RunSpec, User};
    let capabilities = caps::DOCKER_DEFAULT
        .iter()
        .map(|n| caps::number(n))
        .collect::<Result<Vec<_>>>()?;
    let spec = RunSpec {
        id: String::new(),
        name: String::new(),
        image_ref: String::new(),
        image_id: String::new(),
        layers: vec![],
        args: vec!["sh".into()],
        env: vec![
            "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into(),
            "TERM=xterm".into(),
        ],
        cwd: "/".into(),
        user: User {
            uid: 0,
            gid: 0,
            additional_gids: vec![],
        },
        hostname: "dockling".into(),
        tty: true,
        interactive: false,
        remove: false,
        namespaces: Namespaces {
            pid: true,
            uts: true,
            ipc: true,
            net: true,
            cgroup: true,
        },
        network: NetworkMode::None,
        net: Default::default(),
        layers_mode: Default::default(),
        rootfs_mode: RootfsMode::PivotRoot,
        cgroup: Some(Default::default()),
        privileged: false,
        capabilities,
        seccomp: None,
        no_new_privileges: false,
        volumes: vec![],
        read_only: false,
        bundle: Default::default(),
        restart: Default::default(),
        log_opts: vec![],
        init: false,
        ports: Default::default(),
    };
    crate::runtime::bundle::config(&spec, "")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_template_is_what_the_reader_accepts() {
        let dir = tempfile::tempdir().unwrap();
        spec(dir.path()).unwrap();
        let text = std::fs::read(dir.path().join("config.json")).unwrap();
        let flags = crate::specconv::oci::OciFlags {
            id: "t".into(),
            no_pivot: false,
        };
        let (run, parts) = crate::specconv::oci::from_config(&text, dir.path(), &flags, &mut |w| {
            panic!("warned: {w}")
        })
        .unwrap();
        assert_eq!(run.args, ["sh"]);
        assert!(run.tty);
        assert_eq!(parts.root, dir.path().join("rootfs"));
        assert!(parts.cgroups_path.is_empty());
        assert!(!parts
            .mounts
            .iter()
            .any(|m| m.destination.starts_with("/etc")));
        // A second spec does not overwrite the first.
        let before = std::fs::metadata(dir.path().join("config.json")).unwrap();
        let err = spec(dir.path()).unwrap_err().to_string();
        assert!(err.contains("exists: remove it first"), "{err}");
        let after = std::fs::metadata(dir.path().join("config.json")).unwrap();
        assert_eq!(
            (before.len(), before.modified().unwrap()),
            (after.len(), after.modified().unwrap())
        );
    }

    #[test]
    fn log_lines_are_runc_shaped() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("log.json");
        log_line(
            &log,
            LogFormat::Json,
            "error",
            "container \"x\" does not exist",
        )
        .unwrap();
        log_line(&log, LogFormat::Text, "error", "two \"words\"").unwrap();
        let text = std::fs::read_to_string(&log).unwrap();
        let mut lines = text.lines();
        let json: serde_json::Value = serde_json::from_str(lines.next().unwrap()).unwrap();
        assert_eq!(json["level"], "error");
        assert_eq!(json["msg"], "container \"x\" does not exist");
        assert!(json["time"].as_str().unwrap().ends_with('Z'));
        let text_line = lines.next().unwrap();
        assert!(
            text_line.starts_with("time=\"")
                && text_line.ends_with("level=error msg=\"two \\\"words\\\"\""),
            "{text_line}"
        );
    }
}
