//! `dockling-runc exec`: runc's `exec`, as podman (through conmon) and containerd's shim call
//! it. The process is described by the container's own `process` changed by the flags
//! (runc's way: args replaced, `--env` on top of the container's, `--cap` added to its sets),
//! or by a `--process` file holding a whole `process` object. Either way the result is put
//! into the container's recorded config and read by the same specconv as `create`, so a
//! process file meets the same checks as a config's `process` (absolute cwd, known rlimits,
//! AppArmor and SELinux refused by name) and the process gets the container's seccomp policy
//! and namespaces. The start itself is `runtime::oci::exec`.

use std::os::fd::AsFd;
use std::path::Path;

use serde_json::Value;

use super::state::{StateRoot, Status};
use crate::cli::runtime::{ExecArgs, RuntimeCli};
use crate::error::{Error, Result};
use crate::runtime::oci::{ExecEnd, ExecOptions};

/// `exec`: `Some(code)` in the foreground (the process's exit code), `None` with `--detach`.
pub(super) fn exec(cli: &RuntimeCli, args: &ExecArgs) -> Result<Option<i32>> {
    refuse_unsupported(args)?;
    let root = StateRoot::open(&cli.root)?;
    // Read without the container's lock: held for the process's whole life it would keep
    // `kill` and `delete` out. The first process is checked again when its namespaces are
    // open (`runtime::exec::open`).
    let record = root.load(&args.id)?;
    let status = record.status(&root.dir_of(&args.id));
    match status {
        Status::Running => {}
        Status::Paused if args.ignore_paused => {}
        Status::Paused => {
            return Err(Error::Usage(
                "cannot exec in a paused container (use --ignore-paused to override)".into(),
            ))
        }
        Status::Created | Status::Creating => {
            return Err(Error::Usage(format!(
                "cannot exec in a container that has not started ({}): start it first",
                status.as_str()
            )))
        }
        Status::Stopped => return Err(Error::Usage("cannot exec in a stopped container".into())),
    }
    let Some(init) = record.init else {
        return Err(Error::Usage("cannot exec in a stopped container".into()));
    };
    let process = process(args, &record.config)?;
    let mut config = record.config.clone();
    config["process"] = process;
    let text = serde_json::to_vec(&config).map_err(|e| Error::Corrupt(e.to_string()))?;
    let flags = crate::specconv::oci::OciFlags {
        id: args.id.clone(),
        no_pivot: record.no_pivot,
    };
    let mut warnings = Vec::new();
    let (mut spec, parts) =
        crate::specconv::oci::from_config(&text, &record.bundle, &flags, &mut |w| warnings.push(w))
            .map_err(|e| Error::Usage(e.to_string()))?;
    for w in warnings {
        super::warn(cli, &w);
    }
    match (spec.tty, &args.console_socket) {
        (true, None) if args.detach => {
            return Err(Error::Usage(
                "a terminal with --detach needs a --console-socket: the terminal's master end \
                 has nowhere else to go; give a console socket, or drop --tty"
                    .into(),
            ))
        }
        (false, Some(_)) => {
            return Err(Error::Usage(
                "--console-socket without a terminal: add --tty (or \"terminal\": true in the \
                 process file), or drop the console socket"
                    .into(),
            ))
        }
        _ => {}
    }

    let sys = super::runtime_sys(record.trace.as_deref(), &record.id)?;
    // The new process is dockling until its execve: from the sealed copy of the binary, as
    // create's (CVE-2019-5736).
    crate::runtime::exe::enter_sealed(&sys, crate::runtime::exe::Unsealed::Warn)?;
    // HOME from the container's /etc/passwd: through a descriptor of its root opened first,
    // then the process's start time checked, so a pid reused since is never read from (the
    // descriptor holds the root it named when opened).
    let proc_root = std::path::PathBuf::from(format!("/proc/{}/root", init.pid));
    let root_fd = sys
        .open(
            &proc_root,
            libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC,
        )
        .ok()
        .filter(|_| crate::container::process_start_time(init.pid) == Some(init.start));
    let Some(root_fd) = root_fd else {
        return Err(Error::Usage("cannot exec in a stopped container".into()));
    };
    set_home(&sys, &mut spec, root_fd.as_fd(), &proc_root);
    drop(root_fd);
    let cgroup = record.cgroup();
    let mut namespaces = spec.namespaces;
    // The cgroup namespace exists only when the container got a cgroup (see `oci::create`).
    namespaces.cgroup &= cgroup.is_some();
    let pid_file = |pid: i32| match &args.pid_file {
        Some(pf) => crate::files::replace_atomic(pf, pid.to_string().as_bytes()),
        None => Ok(()),
    };
    let end = crate::runtime::oci::exec(
        &sys,
        &spec,
        &ExecOptions {
            parts: &parts,
            init: (init.pid, init.start),
            namespaces: crate::runtime::exec::namespaces(&namespaces),
            chroot: record.no_pivot,
            cgroup: cgroup.as_ref(),
            console_socket: args.console_socket.as_deref(),
            preserve_fds: args.preserve_fds,
            detach: args.detach,
            on_started: &pid_file,
        },
    )?;
    match end {
        ExecEnd::Stopped => Err(Error::Usage("cannot exec in a stopped container".into())),
        ExecEnd::Detached => Ok(None),
        ExecEnd::Exited(code) => Ok(Some(code)),
    }
}

/// `HOME` for a process whose environment has none: its user's home in the container's
/// `/etc/passwd`, `/` without one (runc and crun do so). Read through the seam from `root`,
/// a descriptor of the container's root (`/proc/<pid>/root` of a running container, its
/// mounts included; the bundle's root at `create`; `shown` names it): `openat2` with
/// `RESOLVE_IN_ROOT`, so every component and symlink stays inside, `O_NONBLOCK` (a FIFO there
/// makes no wait), at most 4 MiB read.
pub(super) fn set_home(
    sys: &crate::sys::Sys,
    spec: &mut crate::spec::RunSpec,
    root: std::os::fd::BorrowedFd<'_>,
    shown: &Path,
) {
    if spec.env.iter().any(|e| e.starts_with("HOME=")) {
        return;
    }
    let passwd = Path::new("etc/passwd");
    let text = sys
        .openat2(
            root,
            passwd,
            libc::O_RDONLY | libc::O_CLOEXEC | libc::O_NONBLOCK,
            0,
            crate::sys::fs::IN_ROOT,
        )
        .and_then(|fd| sys.read_to_end(fd.as_fd(), &shown.join(passwd), 4 << 20))
        .unwrap_or_default();
    let home = home_of(&String::from_utf8_lossy(&text), spec.user.uid)
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "/".into());
    spec.env.push(format!("HOME={home}"));
}

/// The home directory of user `uid` in the text of a `passwd` file (its sixth field).
fn home_of(passwd: &str, uid: u32) -> Option<String> {
    passwd.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        (f.len() >= 7 && f[2].parse() == Ok(uid)).then(|| f[5].to_string())
    })
}

/// What runc has and dockling refuses by name.
fn refuse_unsupported(args: &ExecArgs) -> Result<()> {
    if args.process_label.as_deref().is_some_and(|l| !l.is_empty()) {
        return Err(Error::Usage(
            "--process-label: SELinux is not supported by dockling; drop the label".into(),
        ));
    }
    if args.apparmor.as_deref().is_some_and(|l| !l.is_empty()) {
        return Err(Error::Usage(
            "--apparmor: AppArmor profiles are not supported by dockling-runc yet; drop the \
             profile"
                .into(),
        ));
    }
    if args.cgroup.is_some() {
        return Err(Error::Usage(
            "--cgroup: dockling-runc puts an exec'd process into the container's own cgroup \
             only; drop the flag"
                .into(),
        ));
    }
    Ok(())
}

/// The `process` object of the exec'd process: the file's, or the container's changed by the
/// flags as runc changes it.
fn process(args: &ExecArgs, config: &Value) -> Result<Value> {
    let container = &config["process"];
    if let Some(path) = &args.process {
        let given = [
            (!args.command.is_empty(), "a command"),
            (args.cwd.is_some(), "--cwd"),
            (!args.env.is_empty(), "--env"),
            (args.user.is_some(), "--user"),
            (!args.additional_gids.is_empty(), "--additional-gids"),
            (!args.cap.is_empty(), "--cap"),
            (args.no_new_privs, "--no-new-privs"),
        ];
        if let Some((_, what)) = given.iter().find(|(set, _)| *set) {
            return Err(Error::Usage(format!(
                "{what} with --process: the process file describes the whole process; put it \
                 in the file instead"
            )));
        }
        return process_file(path, container, args.tty);
    }
    if args.command.is_empty() {
        return Err(Error::Usage(
            "no command given: `exec ID COMMAND [ARGS...]`, or `exec --process FILE ID`".into(),
        ));
    }
    let mut p = container.clone();
    if !p.is_object() {
        return Err(Error::Corrupt(
            "the container's recorded config has no process".into(),
        ));
    }
    p["args"] = args.command.clone().into();
    let env: Vec<String> = crate::image::commit::strings(&p["env"]);
    p["env"] = crate::specconv::exec_env(&env, &args.env).into();
    if let Some(cwd) = &args.cwd {
        p["cwd"] = cwd.clone().into();
    }
    p["terminal"] = args.tty.into();
    if let Some(user) = &args.user {
        let (uid, gid) = parse_user(user)?;
        p["user"]["uid"] = uid.into();
        if let Some(gid) = gid {
            p["user"]["gid"] = gid.into();
        }
    }
    if !args.additional_gids.is_empty() {
        let mut gids: Vec<u32> = p["user"]["additionalGids"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|g| g.as_u64().and_then(|g| u32::try_from(g).ok()))
                    .collect()
            })
            .unwrap_or_default();
        gids.extend(&args.additional_gids);
        p["user"]["additionalGids"] = gids.into();
    }
    for cap in &args.cap {
        let n = crate::runtime::caps::number(cap).map_err(|_| {
            Error::Usage(format!(
                "--cap {cap:?}: not a capability name (CAP_KILL, CAP_NET_ADMIN...)"
            ))
        })?;
        let name = format!("CAP_{}", crate::sys::caps::NAMES[n as usize]);
        if !p["capabilities"].is_object() {
            p["capabilities"] = serde_json::json!({});
        }
        for set in ["bounding", "effective", "permitted"] {
            let mut list = crate::image::commit::strings(&p["capabilities"][set]);
            if !list.contains(&name) {
                list.push(name.clone());
            }
            p["capabilities"][set] = list.into();
        }
    }
    if args.no_new_privs {
        p["noNewPrivileges"] = true.into();
    }
    Ok(p)
}

/// A `--process` file: a JSON `process` object, used as it is, but for an absent `env`, which
/// is the container's (a process without even a PATH finds nothing), and `--tty`.
fn process_file(path: &Path, container: &Value, tty: bool) -> Result<Value> {
    let text = std::fs::read(path)
        .map_err(|e| Error::Usage(format!("--process {}: {e}", path.display())))?;
    let mut p: Value = serde_json::from_slice(&text).map_err(|e| {
        Error::Usage(format!(
            "--process {}: {e}: it must hold a JSON process object (args, cwd, user...)",
            path.display()
        ))
    })?;
    let Some(obj) = p.as_object_mut() else {
        return Err(Error::Usage(format!(
            "--process {}: not a JSON object: give the config's process object (args, cwd, \
             user...)",
            path.display()
        )));
    };
    if !obj.contains_key("env") {
        obj.insert("env".into(), container["env"].clone());
    }
    if tty {
        obj.insert("terminal".into(), true.into());
    }
    Ok(p)
}

/// `--user UID[:GID]`, numbers only (runc's form; names would need the container's files).
fn parse_user(user: &str) -> Result<(u32, Option<u32>)> {
    let bad = || {
        Error::Usage(format!(
            "--user {user:?}: give UID or UID:GID as numbers (names are not looked up)"
        ))
    };
    let (uid, gid) = match user.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (user, None),
    };
    let uid = uid.parse::<u32>().map_err(|_| bad())?;
    let gid = gid
        .map(|g| g.parse::<u32>().map_err(|_| bad()))
        .transpose()?;
    Ok((uid, gid))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn args(words: &[&str]) -> ExecArgs {
        let mut argv = vec!["dockling-runc", "exec"];
        argv.extend(words);
        match RuntimeCli::try_parse_from(argv).unwrap().command {
            Some(crate::cli::runtime::RuntimeCommand::Exec(a)) => a,
            other => panic!("{other:?}"),
        }
    }

    fn container() -> Value {
        serde_json::json!({"process": {
            "args": ["sleep", "1000"], "cwd": "/", "user": {"uid": 0, "gid": 0},
            "env": ["PATH=/bin", "HOME=/"],
            "capabilities": {"bounding": ["CAP_CHOWN"], "effective": ["CAP_CHOWN"]}
        }})
    }

    #[test]
    fn flags_change_the_containers_process_as_runcs_do() {
        let a = args(&[
            "-e",
            "HOME=/tmp",
            "-e",
            "FOO=bar",
            "--cwd",
            "/tmp",
            "-u",
            "1000:1001",
            "-g",
            "5,6",
            "--cap",
            "kill",
            "--no-new-privs",
            "-t",
            "c1",
            "sh",
            "-c",
            "id",
        ]);
        let p = process(&a, &container()).unwrap();
        assert_eq!(p["args"], serde_json::json!(["sh", "-c", "id"]));
        assert_eq!(
            p["env"],
            serde_json::json!(["PATH=/bin", "HOME=/tmp", "FOO=bar"])
        );
        assert_eq!(p["cwd"], "/tmp");
        assert_eq!(p["user"]["uid"], 1000);
        assert_eq!(p["user"]["gid"], 1001);
        assert_eq!(p["user"]["additionalGids"], serde_json::json!([5, 6]));
        assert_eq!(
            p["capabilities"]["bounding"],
            serde_json::json!(["CAP_CHOWN", "CAP_KILL"])
        );
        assert_eq!(
            p["capabilities"]["permitted"],
            serde_json::json!(["CAP_KILL"])
        );
        assert_eq!(p["noNewPrivileges"], true);
        assert_eq!(p["terminal"], true);
    }

    #[test]
    fn bad_flags_are_refused_by_name() {
        let refusal = |words: &[&str]| process(&args(words), &container()).unwrap_err().to_string();
        assert!(refusal(&["--cap", "CAP_UNKNOWN", "c1", "id"]).contains("--cap"));
        assert!(refusal(&["-u", "daemon", "c1", "id"]).contains("--user"));
        assert!(refusal(&["c1"]).contains("no command given"));
        assert!(refusal(&["-p", "/x.json", "c1", "id"]).contains("a command with --process"));
        assert!(refuse_unsupported(&args(&["--apparmor", "p", "c1", "id"]))
            .unwrap_err()
            .to_string()
            .contains("--apparmor"));
        assert!(refuse_unsupported(&args(&["--process-label", "", "c1", "id"])).is_ok());
    }

    #[test]
    fn home_is_the_users_sixth_passwd_field_by_uid() {
        let passwd = "root:x:0:0:root:/root:/bin/sh\n1000:x:7:7::/named:/bin/sh\nbad line\nu:x:1000:1000::/home/u:/bin/sh\n";
        assert_eq!(home_of(passwd, 0).as_deref(), Some("/root"));
        // By its uid, not a user whose name is that number.
        assert_eq!(home_of(passwd, 1000).as_deref(), Some("/home/u"));
        assert_eq!(home_of(passwd, 5), None);
    }

    #[test]
    fn a_process_file_is_used_as_it_is_but_for_an_absent_env() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("p.json");
        std::fs::write(
            &file,
            r#"{"args": ["id"], "cwd": "/", "user": {"uid": 5, "gid": 6}}"#,
        )
        .unwrap();
        let p = process_file(&file, &container()["process"], false).unwrap();
        assert_eq!(p["env"], serde_json::json!(["PATH=/bin", "HOME=/"]));
        assert_eq!(p["user"]["uid"], 5);
        std::fs::write(
            &file,
            r#"{"args": ["id"], "cwd": "/", "env": [], "user": {"uid": 5, "gid": 6}}"#,
        )
        .unwrap();
        let p = process_file(&file, &container()["process"], true).unwrap();
        assert_eq!(p["env"], serde_json::json!([]));
        assert_eq!(p["terminal"], true);
        std::fs::write(&file, "[1]").unwrap();
        let err = process_file(&file, &container()["process"], false).unwrap_err();
        assert!(err.to_string().contains("not a JSON object"), "{err}");
    }
}
