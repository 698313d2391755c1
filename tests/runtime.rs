//! `dockling-runc` as an OCI runtime, end to end: a bundle created, started, signalled and
//! deleted through runc's command line, as podman and containerd's shim call it.

mod common;
use std::path::PathBuf;
use std::process::{Command, Stdio};

/// A bundle whose root is busybox and whose config is `dockling runtime spec`'s template with
/// `args`, no terminal, and a cgroup path of the test's own.
struct Bundle {
    dir: tempfile::TempDir,
    cgroup_parent: String,
}

impl Bundle {
    fn new(args: &[&str]) -> Bundle {
        let dir = tempfile::tempdir().unwrap();
        let rootfs = dir.path().join("bundle/rootfs");
        std::fs::create_dir_all(rootfs.join("bin")).unwrap();
        std::fs::create_dir_all(rootfs.join("tmp")).unwrap();
        std::fs::copy("/bin/busybox", rootfs.join("bin/busybox"))
            .expect("/bin/busybox (busybox-static, which scripts/test installs)");
        for tool in [
            "sh", "hostname", "cat", "grep", "sleep", "echo", "ls", "id", "tty",
        ] {
            std::os::unix::fs::symlink("busybox", rootfs.join("bin").join(tool)).unwrap();
        }
        std::os::unix::fs::symlink(
            env!("CARGO_BIN_EXE_dockling"),
            dir.path().join("dockling-runc"),
        )
        .unwrap();
        let mut cfg = common::runtime_spec(&dir.path().join("bundle"));
        cfg["process"]["terminal"] = false.into();
        cfg["process"]["args"] = serde_json::json!(args);
        // A parent of its own: the tests run side by side, and each counts what is left.
        let name = dir
            .path()
            .file_name()
            .unwrap()
            .to_string_lossy()
            .replace('.', "");
        let cgroup_parent = format!("dockling-rt-{}-{name}", std::process::id());
        cfg["linux"]["cgroupsPath"] = format!("/{cgroup_parent}/c").into();
        common::write_config(&dir.path().join("bundle"), &cfg);
        Bundle { dir, cgroup_parent }
    }

    /// Change the bundle's config.
    fn edit(&self, f: impl FnOnce(&mut serde_json::Value)) {
        let path = self.bundle().join("config.json");
        let mut cfg: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        f(&mut cfg);
        common::write_config(&self.bundle(), &cfg);
    }

    fn bundle(&self) -> PathBuf {
        self.dir.path().join("bundle")
    }

    fn state_root(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    /// `dockling-runc --root <state> args…` from the bundle directory.
    fn rt(&self, args: &[&str]) -> Command {
        let mut c = Command::new(self.dir.path().join("dockling-runc"));
        c.arg("--root")
            .arg(self.state_root())
            .args(args)
            .current_dir(self.bundle());
        c
    }

    /// Run and wait for the runtime itself, its output collected through files: a container
    /// it leaves (created, or run --detach) inherits its stdio, and would hold a pipe open.
    fn out(&self, args: &[&str]) -> (i32, String, String) {
        let out = tempfile::NamedTempFile::new().unwrap();
        let err = tempfile::NamedTempFile::new().unwrap();
        let status = self
            .rt(args)
            .stdin(Stdio::null())
            .stdout(out.reopen().unwrap())
            .stderr(err.reopen().unwrap())
            .status()
            .unwrap();
        (
            status.code().unwrap_or(-1),
            std::fs::read_to_string(out.path()).unwrap(),
            std::fs::read_to_string(err.path()).unwrap(),
        )
    }

    fn status(&self, id: &str) -> String {
        let (code, out, err) = self.out(&["state", id]);
        assert_eq!(code, 0, "{err}");
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        v["status"].as_str().unwrap().to_string()
    }

    /// The container's cgroup directories that exist now.
    fn cgroups(&self) -> Vec<PathBuf> {
        let mut found = Vec::new();
        // cgroup v2 alone: the parent sits right under /sys/fs/cgroup.
        let unified = std::path::Path::new("/sys/fs/cgroup").join(&self.cgroup_parent);
        if let Ok(entries) = std::fs::read_dir(&unified) {
            found.extend(entries.flatten().map(|e| e.path()).filter(|p| p.is_dir()));
        }
        for h in std::fs::read_dir("/sys/fs/cgroup")
            .into_iter()
            .flatten()
            .flatten()
        {
            let p = h.path().join(&self.cgroup_parent);
            if let Ok(entries) = std::fs::read_dir(&p) {
                found.extend(entries.flatten().map(|e| e.path()).filter(|p| p.is_dir()));
            }
        }
        found
    }
}

impl Drop for Bundle {
    fn drop(&mut self) {
        // A test that failed before its own delete leaves no container running.
        for e in std::fs::read_dir(self.state_root())
            .into_iter()
            .flatten()
            .flatten()
        {
            let id = e.file_name().to_string_lossy().into_owned();
            if !id.starts_with('.') {
                let _ = self.out(&["delete", "-f", &id]);
            }
        }
        common::remove_cgroup_parent(&self.cgroup_parent);
    }
}

fn wait_until<T>(what: &str, f: impl FnMut() -> Option<T>) -> T {
    common::wait_until(std::time::Duration::from_secs(20), what, f)
}

#[test]
fn create_makes_a_waiting_container_start_lets_it_run_delete_removes_it() {
    let b = Bundle::new(&[
        "sh",
        "-c",
        "echo ran > /tmp/ran; echo hello from $(hostname); grep CapEff /proc/self/status; echo done",
    ]);
    let out_file = b.dir.path().join("container.out");
    let pid_file = b.dir.path().join("pid");
    // The container's stdio are create's: its output goes where create's stdout went.
    let err_file = b.dir.path().join("create.err");
    let mut create = b.rt(&["create", "--pid-file"]);
    create.arg(&pid_file).arg("c1");
    succeeds_into_files(create, &out_file, &err_file);
    // What the book shows: each command, its output and exit code.
    let mut t = String::from("$ dockling-runc create --pid-file pid c1\n[exit 0]\n");
    let shown = |t: &mut String, args: &[&str], (code, out, err): &(i32, String, String)| {
        t.push_str(&format!(
            "$ dockling-runc {}\n{out}{err}[exit {code}]\n",
            args.join(" ")
        ));
    };
    let status_shown = |t: &mut String, b: &Bundle| {
        let s = b.status("c1");
        t.push_str(&format!(
            "$ dockling-runc state c1 | grep status\n  \"status\": \"{s}\",\n"
        ));
    };
    status_shown(&mut t, &b);
    let pid: i32 = std::fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert_eq!(b.status("c1"), "created");
    // Waiting: still the dockling binary, the program not run (its file not written), in its
    // own cgroup already.
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap();
    assert!(
        String::from_utf8_lossy(&cmdline).contains("dockling-runc"),
        "{cmdline:?}"
    );
    assert!(!b.bundle().join("rootfs/tmp/ran").exists());
    let groups = b.cgroups();
    assert!(!groups.is_empty(), "no cgroup was made");
    let procs = std::fs::read_to_string(groups[0].join("cgroup.procs")).unwrap();
    assert_eq!(procs.trim(), pid.to_string());
    // A second create of the same id is refused and changes nothing.
    let r = b.out(&["create", "c1"]);
    shown(&mut t, &["create", "c1"], &r);
    let (code, _, err) = r;
    assert_eq!(code, 1);
    assert!(err.contains("already exists"), "{err}");
    assert_eq!(b.status("c1"), "created");

    let r = b.out(&["start", "c1"]);
    shown(&mut t, &["start", "c1"], &r);
    let (code, _, err) = r;
    assert_eq!(code, 0, "{err}");
    let output = wait_until("the container's output", || {
        let text = std::fs::read_to_string(&out_file).unwrap();
        text.contains("done").then_some(text)
    });
    assert_eq!(
        output, "hello from dockling\nCapEff:\t00000000a80425fb\ndone\n",
        "the config's hostname and Docker's capabilities"
    );
    assert_eq!(
        std::fs::read_to_string(b.bundle().join("rootfs/tmp/ran")).unwrap(),
        "ran\n"
    );
    t.push_str(&format!(
        "(the container's output, on create's stdout)\n{output}"
    ));
    wait_until("stopped", || (b.status("c1") == "stopped").then_some(()));
    status_shown(&mut t, &b);
    let r = b.out(&["start", "c1"]);
    shown(&mut t, &["start", "c1"], &r);
    let (code, _, err) = r;
    assert_eq!(code, 1);
    assert!(err.contains("it is stopped, not created"), "{err}");
    let r = b.out(&["delete", "c1"]);
    shown(&mut t, &["delete", "c1"], &r);
    let (code, _, err) = r;
    assert_eq!(code, 0, "{err}");
    assert!(!b.state_root().join("c1").exists());
    assert_eq!(b.cgroups(), Vec::<PathBuf>::new());
    insta::assert_snapshot!("runtime_lifecycle", t);
}

#[test]
fn run_waits_gives_the_exit_code_and_leaves_nothing() {
    let b = Bundle::new(&["sh", "-c", "echo out; exit 7"]);
    let (code, out, err) = b.out(&["run", "r1"]);
    assert_eq!((code, out.as_str()), (7, "out\n"), "{err}");
    b.assert_nothing_left();
}

/// A foreground `run` passes the signals it gets on to the container (a TERM from whoever
/// started it, Ctrl-C), as runc's does, and exits with the container's code: without it the
/// runtime died and the container ran on.
#[test]
fn a_foreground_run_forwards_signals_to_the_container() {
    let b = Bundle::new(&[
        "sh",
        "-c",
        "trap 'echo got TERM; exit 9' TERM; echo ready; while :; do sleep 1; done",
    ]);
    let out = b.dir.path().join("run.out");
    let mut child = b
        .rt(&["run", "s1"])
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out).unwrap())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    wait_until("the container's shell ready", || {
        std::fs::read_to_string(&out)
            .ok()
            .filter(|t| t.contains("ready"))
    });
    // SAFETY: signalling the runtime this test started, by its pid.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let status = wait_until("the runtime's exit", || child.try_wait().unwrap());
    assert_eq!(
        status.code(),
        Some(9),
        "{}",
        std::fs::read_to_string(&out).unwrap()
    );
    assert!(std::fs::read_to_string(&out).unwrap().contains("got TERM"));
    b.assert_nothing_left();
}

/// `runc spec` then `runc run ID` from a shell: the template asks for a terminal and no one
/// gives a console socket, so a foreground `run` makes the terminal and relays it itself, as
/// runc's does; a detached one cannot, and says so.
#[test]
fn a_foreground_run_relays_the_containers_terminal_without_a_console_socket() {
    let b = Bundle::new(&["sh", "-c", "tty; echo hi; exit 4"]);
    b.edit(|c| c["process"]["terminal"] = true.into());
    let (code, out, err) = b.out(&["run", "t1"]);
    assert_eq!(code, 4, "{out}{err}");
    assert!(out.contains("/dev/pts/0"), "{out:?}");
    // Through a terminal: its line discipline ends lines with CR LF.
    assert!(out.contains("hi\r\n"), "{out:?}");
    assert_eq!(std::fs::read_dir(b.state_root()).unwrap().count(), 0);
    let (code, _, err) = b.out(&["run", "--detach", "t2"]);
    assert_eq!(code, 1);
    assert!(err.contains("no --console-socket was given"), "{err}");
    assert_eq!(std::fs::read_dir(b.state_root()).unwrap().count(), 0);
}

#[test]
fn a_running_container_is_killed_and_deleted_only_when_told() {
    let b = Bundle::new(&["sleep", "1000"]);
    let (code, _, err) = b.out(&["run", "--detach", "d1"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(b.status("d1"), "running");
    let (code, _, err) = b.out(&["delete", "d1"]);
    assert_eq!(code, 1);
    assert!(err.contains("not stopped: running"), "{err}");
    assert_eq!(b.status("d1"), "running");
    let (code, _, err) = b.out(&["kill", "d1", "KILL"]);
    assert_eq!(code, 0, "{err}");
    wait_until("stopped", || (b.status("d1") == "stopped").then_some(()));
    let (code, _, err) = b.out(&["delete", "d1"]);
    assert_eq!(code, 0, "{err}");
    // --force on a running one: killed and removed in one go.
    let (code, _, err) = b.out(&["run", "--detach", "d2"]);
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = b.out(&["delete", "--force", "d2"]);
    assert_eq!(code, 0, "{err}");
    b.assert_nothing_left();
}

#[test]
fn a_create_that_fails_leaves_nothing_and_says_why() {
    let b = Bundle::new(&["nosuchprogram"]);
    let (code, _, err) = b.out(&["create", "f1"]);
    assert_eq!(code, 1);
    assert!(err.contains("nosuchprogram"), "{err}");
    b.assert_nothing_left();
    // Something dockling-runc does not do yet: refused by name, before anything exists.
    let path = b.bundle().join("config.json");
    let mut cfg: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    cfg["process"]["args"] = serde_json::json!(["true"]);
    cfg["process"]["terminal"] = true.into();
    std::fs::write(&path, serde_json::to_vec(&cfg).unwrap()).unwrap();
    let (code, _, err) = b.out(&["create", "f2"]);
    assert_eq!(code, 1);
    assert!(err.contains("process.terminal"), "{err}");
    assert!(!b.state_root().join("f2").exists());
}

#[test]
fn a_trace_file_named_in_the_environment_holds_create_and_start() {
    let b = Bundle::new(&["sh", "-c", ":"]);
    let trace = b.dir.path().join("t.jsonl");
    let create = b
        .rt(&["create", "t1"])
        .env("DOCKLING_TRACE", &trace)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(b.dir.path().join("create.err")).unwrap())
        .status()
        .unwrap();
    assert!(
        create.success(),
        "{}",
        std::fs::read_to_string(b.dir.path().join("create.err")).unwrap()
    );
    // start is run without the variable (podman passes almost no environment): the record
    // keeps the path.
    let (code, _, err) = b.out(&["start", "t1"]);
    assert_eq!(code, 0, "{err}");
    let events = common::trace_events(&trace);
    let has = |f: &dyn Fn(&serde_json::Value) -> bool| events.iter().any(f);
    assert!(has(
        &|e| e["step"] == "image.resolve" && e["variant"] == "bundle"
    ));
    assert!(has(
        &|e| e["syscall"] == "pivot_root" && e["process"] == "container"
    ));
    assert!(has(
        &|e| e["syscall"] == "mknodat" && e["step"] == "image.resolve"
    ));
    // start's own open of the FIFO comes after the container's last call before it.
    let last_open = events
        .iter()
        .rposition(|e| e["syscall"] == "openat" && e["process"] == "engine")
        .unwrap();
    assert!(
        last_open
            > events
                .iter()
                .position(|e| e["syscall"] == "pivot_root")
                .unwrap()
    );
    common::render_trace(&trace);
    wait_until("stopped", || (b.status("t1") == "stopped").then_some(()));
    let (code, _, err) = b.out(&["delete", "t1"]);
    assert_eq!(code, 0, "{err}");
}

/// podman with a store of its own, driving dockling-runc (`--runtime`): its JSON log format
/// asked for as for runc and crun (conmon then passes `--log-format=json --log …`), cgroupfs.
struct Podman {
    dir: tempfile::TempDir,
    runtime: PathBuf,
}

impl Podman {
    fn new() -> Podman {
        let dir = tempfile::Builder::new()
            .prefix("dockling-podman-rt-")
            .tempdir()
            .unwrap();
        std::fs::write(
            dir.path().join("containers.conf"),
            "[containers]\ndefault_ulimits = [\"nofile=20000:20000\", \"nproc=32768:32768\"]\n\
             [engine]\nruntime_supports_json = [\"crun\", \"runc\", \"dockling-runc\"]\n",
        )
        .unwrap();
        let runtime = dir.path().join("dockling-runc");
        std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_dockling"), &runtime).unwrap();
        Podman { dir, runtime }
    }

    fn cmd(&self, args: &[&str]) -> common::Out {
        let out = tempfile::NamedTempFile::new().unwrap();
        let err = tempfile::NamedTempFile::new().unwrap();
        let status = Command::new("podman")
            .arg("--root")
            .arg(self.dir.path().join("root"))
            .arg("--runroot")
            .arg(self.dir.path().join("run"))
            .args(["--storage-driver", "vfs", "--cgroup-manager", "cgroupfs"])
            .arg("--runtime")
            .arg(&self.runtime)
            .args(args)
            .env("CONTAINERS_CONF", self.dir.path().join("containers.conf"))
            .stdin(Stdio::null())
            .stdout(out.reopen().unwrap())
            .stderr(err.reopen().unwrap())
            .status()
            .expect("podman is not installed: scripts/test installs it (apt-get install podman)");
        common::Out {
            code: status.code().unwrap_or(-1),
            stdout: std::fs::read_to_string(out.path()).unwrap(),
            stderr: std::fs::read_to_string(err.path()).unwrap(),
        }
    }
}

impl Drop for Podman {
    fn drop(&mut self) {
        let _ = self.cmd(&["rm", "-a", "-f"]);
        let _ = self.cmd(&["rmi", "-a", "-f"]);
        common::unmount_under(self.dir.path());
        // podman's parent group and conmon's group in it, left (empty) whatever the runtime.
        for h in std::fs::read_dir("/sys/fs/cgroup")
            .into_iter()
            .flatten()
            .flatten()
        {
            // Where a hierarchy is not mounted (hugetlb here), conmon's pid went into a
            // plain file of that name.
            let _ = std::fs::remove_file(h.path().join("libpod_parent/conmon/tasks"));
            let _ = std::fs::remove_dir(h.path().join("libpod_parent/conmon"));
            let _ = std::fs::remove_dir(h.path().join("libpod_parent"));
        }
    }
}

/// podman's own calls, not ours: create with a pid file and conmon's log, start, state, kill
/// and delete, with a config podman wrote (its mounts, masks, rlimits, deny-all devices).
#[test]
fn podman_runs_stops_and_removes_containers_through_dockling_runc() {
    let b = Bundle::new(&["sh"]);
    let tar = b.dir.path().join("rootfs.tar");
    let made = Command::new("tar")
        .arg("-C")
        .arg(b.bundle().join("rootfs"))
        .arg("-cf")
        .arg(&tar)
        .arg(".")
        .status()
        .unwrap();
    assert!(made.success());
    let podman = Podman::new();
    let o = podman.cmd(&["import", tar.to_str().unwrap(), "bb:1"]);
    assert_eq!(o.code, 0, "{}", o.stderr);
    let o = podman.cmd(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--cap-drop",
        "NET_RAW",
        "bb:1",
        "sh",
        "-c",
        "echo hi from podman; grep CapEff /proc/self/status",
    ]);
    assert_eq!(o.code, 0, "{}", o.stderr);
    // The capabilities podman's config names (its 14 defaults less NET_RAW), applied.
    assert_eq!(o.stdout, "hi from podman\nCapEff:\t00000000a80405fb\n");
    let o = podman.cmd(&[
        "run",
        "--rm",
        "--network",
        "none",
        "bb:1",
        "sh",
        "-c",
        "exit 3",
    ]);
    assert_eq!(o.code, 3, "{}", o.stderr);
    // A terminal (-t): podman's conmon gets its master through the console socket.
    let o = podman.cmd(&["run", "--rm", "-t", "--network", "none", "bb:1", "tty"]);
    assert_eq!(
        (o.code, o.stdout.as_str()),
        (0, "/dev/pts/0\r\n"),
        "{}",
        o.stderr
    );
    let o = podman.cmd(&[
        "run",
        "-d",
        "--name",
        "s1",
        "--network",
        "none",
        "bb:1",
        "sleep",
        "1000",
    ]);
    assert_eq!(o.code, 0, "{}", o.stderr);
    let id = o.stdout.trim().to_string();
    let state = std::path::Path::new("/run/dockling-runc").join(&id);
    assert!(
        state.join("state.json").exists(),
        "no record under the default root"
    );
    let o = podman.cmd(&["ps", "--format", "{{.Names}} {{.Status}}"]);
    assert!(o.stdout.starts_with("s1 Up "), "{}{}", o.stdout, o.stderr);
    // podman exec: conmon calls `exec --process FILE --detach --pid-file` and waits itself.
    let o = podman.cmd(&["exec", "s1", "sh", "-c", "echo hi from exec; exit 7"]);
    assert_eq!(
        (o.code, o.stdout.as_str()),
        (7, "hi from exec\n"),
        "{}",
        o.stderr
    );
    let o = podman.cmd(&["exec", "-t", "s1", "tty"]);
    assert_eq!(o.code, 0, "{}", o.stderr);
    assert!(
        o.stdout.starts_with("/dev/pts/"),
        "{}{}",
        o.stdout,
        o.stderr
    );
    let o = podman.cmd(&["stop", "-t", "1", "s1"]);
    assert_eq!(o.code, 0, "{}", o.stderr);
    let o = podman.cmd(&["rm", "s1"]);
    assert_eq!(o.code, 0, "{}", o.stderr);
    assert!(!state.exists(), "the record is gone with the container");
}

#[test]
fn a_container_user_without_capabilities_still_passes_the_fifo() {
    // The FIFO is 0622 whatever the caller's umask: the process opens it after it became
    // uid 1000 with no capability left.
    let b = Bundle::new(&["sh", "-c", "id -u"]);
    b.edit(|c| {
        c["process"]["user"] = serde_json::json!({"uid": 1000, "gid": 1000});
        for set in ["bounding", "effective", "permitted"] {
            c["process"]["capabilities"][set] = serde_json::json!([]);
        }
    });
    // The caller's umask is podman's, 022 (the test's own may differ).
    let o = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!(
            "umask 077; exec {} --root {} run u1",
            b.dir.path().join("dockling-runc").display(),
            b.state_root().display()
        ))
        .current_dir(b.bundle())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(
        (o.status.code(), String::from_utf8_lossy(&o.stdout).as_ref()),
        (Some(0), "1000\n"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
}

#[test]
fn a_cgroup_with_processes_is_not_adopted_and_not_killed() {
    let b = Bundle::new(&["sleep", "1000"]);
    let (code, _, err) = b.out(&["run", "--detach", "g1"]);
    assert_eq!(code, 0, "{err}");
    // A second container named into the first one's group.
    let (code, _, err) = b.out(&["create", "g2"]);
    assert_eq!(code, 1);
    assert!(err.contains("already has processes"), "{err}");
    assert!(!b.state_root().join("g2").exists());
    assert_eq!(
        b.status("g1"),
        "running",
        "the first container was left alone"
    );
    let (code, _, err) = b.out(&["delete", "--force", "g1"]);
    assert_eq!(code, 0, "{err}");
    // A path that climbs out of the hierarchy is refused by name.
    b.edit(|c| c["linux"]["cgroupsPath"] = "/a/../b".into());
    let (code, _, err) = b.out(&["create", "g3"]);
    assert_eq!(code, 1);
    assert!(err.contains("linux.cgroupsPath"), "{err}");
}

#[test]
fn config_binds_follow_the_images_symlinks_inside_the_root_and_never_into_proc() {
    let b = Bundle::new(&["cat", "/etc/hosts.real"]);
    let rootfs = b.bundle().join("rootfs");
    std::fs::create_dir_all(rootfs.join("etc")).unwrap();
    std::fs::write(rootfs.join("etc/hosts.real"), "the image's\n").unwrap();
    std::os::unix::fs::symlink("/etc/hosts.real", rootfs.join("etc/hosts")).unwrap();
    let source = b.dir.path().join("hosts");
    std::fs::write(&source, "the caller's\n").unwrap();
    // podman binds its /etc files with rprivate: the propagation call must name the mount at
    // the symlink's end, not the link.
    b.edit(|c| {
        c["mounts"].as_array_mut().unwrap().push(serde_json::json!({
            "destination": "/etc/hosts", "type": "bind",
            "source": source, "options": ["bind", "rprivate", "ro"]
        }))
    });
    let (code, out, err) = b.out(&["run", "s1"]);
    assert_eq!((code, out.as_str()), (0, "the caller's\n"), "{err}");
    assert_eq!(
        std::fs::read_to_string(rootfs.join("etc/hosts.real")).unwrap(),
        "the image's\n",
        "the bind covered the file, it did not write it"
    );
    // A symlink into /proc: the bind would cover a kernel knob. Refused, nothing left.
    std::os::unix::fs::symlink("/proc/sys/kernel/domainname", rootfs.join("etc/knob")).unwrap();
    b.edit(|c| {
        c["mounts"].as_array_mut().unwrap().push(serde_json::json!({
            "destination": "/etc/knob", "type": "bind",
            "source": source, "options": ["bind"]
        }))
    });
    let before = std::fs::read_to_string("/proc/sys/kernel/domainname").unwrap();
    let (code, _, err) = b.out(&["run", "s2"]);
    assert_eq!(code, 1);
    assert!(err.contains("/proc") || err.contains("kernel"), "{err}");
    assert_eq!(
        std::fs::read_to_string("/proc/sys/kernel/domainname").unwrap(),
        before
    );
    b.assert_nothing_left();
}

#[test]
fn a_terminal_goes_to_the_console_socket_as_conmon_expects() {
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    let b = Bundle::new(&["sh", "-c", "tty; echo hello through the terminal"]);
    b.edit(|c| c["process"]["terminal"] = true.into());
    // What conmon does: listen on a socket, pass its path, receive the master.
    let sock = b.dir.path().join("console.sock");
    let listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
    let (code, _, err) = b.out(&["create", "--console-socket", sock.to_str().unwrap(), "t1"]);
    assert_eq!(code, 0, "{err}");
    let (conn, _) = listener.accept().unwrap();
    let mut buf = [0u8; 64];
    let mut space = nix::cmsg_space!([std::os::fd::RawFd; 1]);
    let mut iov = [std::io::IoSliceMut::new(&mut buf)];
    let msg = nix::sys::socket::recvmsg::<()>(
        conn.as_raw_fd(),
        &mut iov,
        Some(&mut space),
        nix::sys::socket::MsgFlags::empty(),
    )
    .unwrap();
    let mut master = None;
    for c in msg.cmsgs().unwrap() {
        if let nix::sys::socket::ControlMessageOwned::ScmRights(fds) = c {
            // SAFETY: the kernel just installed this descriptor for us.
            master = Some(unsafe { OwnedFd::from_raw_fd(fds[0]) });
        }
    }
    let master = std::fs::File::from(master.expect("a descriptor came with the message"));
    let (code, _, err) = b.out(&["start", "t1"]);
    assert_eq!(code, 0, "{err}");
    // Read until the program's last line (the read ends with EIO once the slave is gone).
    let mut text = String::new();
    let mut reader = std::io::BufReader::new(master);
    loop {
        let mut line = String::new();
        match std::io::BufRead::read_line(&mut reader, &mut line) {
            Ok(0) | Err(_) => break,
            Ok(_) => text.push_str(&line),
        }
        if text.contains("hello") {
            break;
        }
    }
    assert_eq!(text, "/dev/pts/0\r\nhello through the terminal\r\n");
    wait_until("stopped", || (b.status("t1") == "stopped").then_some(()));
    let (code, _, err) = b.out(&["delete", "t1"]);
    assert_eq!(code, 0, "{err}");
}

/// A host-side hook that appends `name` (and `$HOOKVAR`) to `order` and keeps its stdin (the
/// state) in `<name>.json` beside it.
fn hook_writing(dir: &std::path::Path, name: &str, order: &std::path::Path) -> serde_json::Value {
    serde_json::json!({
        "path": "/bin/sh",
        "args": ["sh", "-c", format!(
            "cat > {dir}/{name}.json; echo \"{name}$HOOKVAR\" >> {order}",
            dir = dir.display(),
            order = order.display()
        )],
    })
}

#[test]
fn hooks_run_in_the_lifecycles_order_with_the_state_on_stdin() {
    let b = Bundle::new(&["sleep", "1000"]);
    let out = b.dir.path().join("hooks");
    std::fs::create_dir(&out).unwrap();
    // Every host-side hook and the container's own startContainer hook write the same file:
    // the root's /tmp/order, which the container sees as /tmp/order.
    let order = b.bundle().join("rootfs/tmp/order");
    let mut create_runtime = hook_writing(&out, "createRuntime", &order);
    create_runtime["env"] = serde_json::json!(["HOOKVAR=+env"]);
    b.edit(|c| {
        c["annotations"] = serde_json::json!({"org.example.test": "yes"});
        c["hooks"] = serde_json::json!({
            "prestart": [hook_writing(&out, "prestart", &order)],
            "createRuntime": [create_runtime],
            // In the container's mount namespace before pivot_root: the config's /proc is
            // mounted under the root already, and the bundle is the working directory.
            "createContainer": [{
                "path": "/bin/sh",
                "args": ["sh", "-c", format!(
                    "cat > {dir}/createContainer.json; test -e rootfs/proc/self && echo createContainer >> {order}",
                    dir = out.display(),
                    order = order.display()
                )],
            }],
            // Inside the container: its /bin/sh, its /tmp.
            "startContainer": [{
                "path": "/bin/sh",
                "args": ["sh", "-c", "cat > /tmp/startContainer.json; echo startContainer >> /tmp/order"],
            }],
            "poststart": [hook_writing(&out, "poststart", &order)],
            "poststop": [hook_writing(&out, "poststop", &order)],
        });
    });
    let (code, _, err) = b.out(&["create", "--pid-file", "pid", "h1"]);
    assert_eq!(code, 0, "{err}");
    let pid: i64 = std::fs::read_to_string(b.bundle().join("pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let lines = || {
        std::fs::read_to_string(&order)
            .unwrap_or_default()
            .lines()
            .map(String::from)
            .collect::<Vec<_>>()
    };
    assert_eq!(
        lines(),
        ["prestart", "createRuntime+env", "createContainer"]
    );
    let (code, _, err) = b.out(&["start", "h1"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        lines(),
        [
            "prestart",
            "createRuntime+env",
            "createContainer",
            "startContainer",
            "poststart"
        ]
    );
    let state = |name: &str| -> serde_json::Value {
        let path = if name == "startContainer" {
            b.bundle().join("rootfs/tmp/startContainer.json")
        } else {
            out.join(format!("{name}.json"))
        };
        serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap()
    };
    for (name, status) in [
        ("prestart", "creating"),
        ("createRuntime", "creating"),
        ("createContainer", "creating"),
        ("startContainer", "created"),
        ("poststart", "running"),
    ] {
        let s = state(name);
        assert_eq!(s["status"], status, "{name}: {s}");
        assert_eq!(s["id"], "h1", "{name}: {s}");
        assert_eq!(s["pid"], pid, "{name}: {s}");
        assert_eq!(s["bundle"], b.bundle().to_str().unwrap(), "{name}: {s}");
        assert_eq!(s["annotations"]["org.example.test"], "yes", "{name}: {s}");
        assert!(s["ociVersion"].as_str().unwrap().starts_with("1."), "{s}");
    }
    let (code, _, err) = b.out(&["kill", "h1", "KILL"]);
    assert_eq!(code, 0, "{err}");
    wait_until("stopped", || (b.status("h1") == "stopped").then_some(()));
    assert_eq!(lines().len(), 5, "no poststop before delete");
    let (code, _, err) = b.out(&["delete", "h1"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(lines().last().map(String::as_str), Some("poststop"));
    let s = state("poststop");
    assert_eq!(s["status"], "stopped", "{s}");
    assert!(s.get("pid").is_none(), "{s}");
    assert_eq!(b.cgroups(), Vec::<PathBuf>::new());
}

#[test]
fn a_failing_or_slow_hook_fails_create_and_leaves_nothing() {
    let b = Bundle::new(&["echo", "ran"]);
    // The poststop hooks still run: the spec goes on to delete after a failed hook.
    let poststop = b.dir.path().join("poststop.json");
    b.edit(|c| {
        c["hooks"] = serde_json::json!({
            "createRuntime": [{"path": "/bin/false"}],
            "poststop": [{"path": "/bin/sh", "args": ["sh", "-c", format!("cat > {}", poststop.display())]}],
        })
    });
    let (code, _, err) = b.out(&["create", "f1"]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains(
            "createRuntime hook failed with exit code 1: /bin/false (hooks.createRuntime[0])"
        ),
        "{err}"
    );
    b.assert_nothing_left();
    let s: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&poststop).expect("the poststop hook ran")).unwrap();
    assert_eq!(
        (s["id"].as_str(), s["status"].as_str()),
        (Some("f1"), Some("stopped"))
    );

    // A hook past its timeout is killed, and fails the create the same way: even one that
    // never reads a state bigger than a pipe holds.
    b.edit(|c| {
        c["annotations"] = serde_json::json!({"big": "x".repeat(256 << 10)});
        c["hooks"] = serde_json::json!({"prestart": [
            {"path": "/bin/sleep", "args": ["sleep", "60"], "timeout": 1}
        ]})
    });
    let started = std::time::Instant::now();
    let (code, _, err) = b.out(&["create", "f2"]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains(
            "prestart hook failed to end within its timeout of 1 s (killed): /bin/sleep (hooks.prestart[0])"
        ),
        "{err}"
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(30));
    b.assert_nothing_left();

    b.edit(|c| {
        c.as_object_mut().unwrap().remove("annotations");
    });
    // A createContainer hook (run in the container's namespaces) that fails: the same.
    b.edit(|c| c["hooks"] = serde_json::json!({"createContainer": [{"path": "/bin/false"}]}));
    let (code, _, err) = b.out(&["create", "f3"]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains(
            "createContainer hook failed with exit code 1: /bin/false (hooks.createContainer[0])"
        ),
        "{err}"
    );
    b.assert_nothing_left();

    // After start: a failing startContainer hook (inside the container, before the program)
    // fails start and the container stops; a failing poststart hook fails start and the
    // container is removed (runc ends it, crun removes it too).
    b.edit(|c| c["hooks"] = serde_json::json!({"startContainer": [{"path": "/bin/sh", "args": ["sh", "-c", "exit 3"]}]}));
    let (code, _, err) = b.out(&["create", "f5"]);
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = b.out(&["start", "f5"]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("startContainer hook failed with exit code 3"),
        "{err}"
    );
    assert_eq!(b.status("f5"), "stopped");
    let (code, _, err) = b.out(&["delete", "f5"]);
    assert_eq!(code, 0, "{err}");
    b.edit(|c| c["hooks"] = serde_json::json!({"poststart": [{"path": "/bin/false"}]}));
    let (code, _, err) = b.out(&["create", "f6"]);
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = b.out(&["start", "f6"]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("poststart hook failed with exit code 1"),
        "{err}"
    );
    b.assert_nothing_left();

    // A failing poststop hook is a warning: delete still removes the container and the next
    // hook runs. Their output goes to the files crun's annotations name.
    let (hook_out, hook_err) = (b.dir.path().join("hook.out"), b.dir.path().join("hook.err"));
    b.edit(|c| {
        c["annotations"] = serde_json::json!({
            "run.oci.hooks.stdout": hook_out,
            "run.oci.hooks.stderr": hook_err,
        });
        c["hooks"] = serde_json::json!({"poststop": [
            {"path": "/bin/false"},
            {"path": "/bin/sh", "args": ["sh", "-c", "echo to-out; echo to-err >&2"]},
        ]})
    });
    let (code, _, err) = b.out(&["run", "f4"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains(
            "warning: poststop hook failed with exit code 1: /bin/false (hooks.poststop[0])"
        ),
        "{err}"
    );
    assert_eq!(std::fs::read_to_string(&hook_out).unwrap(), "to-out\n");
    assert_eq!(std::fs::read_to_string(&hook_err).unwrap(), "to-err\n");
    b.assert_nothing_left();
}

#[test]
fn scheduler_io_priority_and_memory_policy_reach_the_program() {
    let b = Bundle::new(&["sleep", "1000"]);
    b.edit(|c| {
        c["process"]["scheduler"] = serde_json::json!({"policy": "SCHED_BATCH", "nice": 7});
        c["process"]["ioPriority"] = serde_json::json!({"class": "IOPRIO_CLASS_BE", "priority": 5});
        c["linux"]["memoryPolicy"] = serde_json::json!({"mode": "MPOL_BIND", "nodes": "0"});
    });
    let (code, _, err) = b.out(&["run", "--detach", "--pid-file", "pid", "s1"]);
    assert_eq!(code, 0, "{err}");
    let pid: i32 = std::fs::read_to_string(b.bundle().join("pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    // The program itself, seen from the host once it runs.
    wait_until("sleep runs", || {
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
        cmdline.starts_with(b"sleep\0").then_some(())
    });
    // SAFETY: integer arguments only.
    let policy = unsafe { libc::sched_getscheduler(pid) };
    assert_eq!(policy, libc::SCHED_BATCH);
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let after_comm = stat.rsplit_once(')').unwrap().1;
    // Fields from the state (3rd); nice is the 19th.
    let nice: i32 = after_comm
        .split_whitespace()
        .nth(16)
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(nice, 7, "{stat}");
    // SAFETY: integer arguments only (IOPRIO_WHO_PROCESS, pid).
    let ioprio = unsafe { libc::syscall(libc::SYS_ioprio_get, 1, pid) };
    assert_eq!(ioprio, (2 << 13) | 5, "IOPRIO_CLASS_BE, level 5");
    let numa = std::fs::read_to_string(format!("/proc/{pid}/numa_maps")).unwrap();
    assert!(
        numa.lines().any(|l| l.contains(" bind:0 ")),
        "the process's policy shows on its mappings: {numa}"
    );
    let (code, _, err) = b.out(&["delete", "--force", "s1"]);
    assert_eq!(code, 0, "{err}");

    // A real-time policy: where the kernel divides real-time time between cgroups (cgroup
    // v1's cpu.rt_runtime_us) the container's new group has none, and create says so;
    // elsewhere the program runs with it.
    b.edit(|c| {
        c["process"]["scheduler"] = serde_json::json!({"policy": "SCHED_FIFO", "priority": 10});
        c["process"].as_object_mut().unwrap().remove("ioPriority");
        c["linux"].as_object_mut().unwrap().remove("memoryPolicy");
    });
    let (code, _, err) = b.out(&["run", "--detach", "--pid-file", "pid", "s3"]);
    if std::path::Path::new("/sys/fs/cgroup/cpu/cpu.rt_runtime_us").exists() {
        assert_eq!(code, 1, "{err}");
        assert!(
            err.contains("sched_setattr SCHED_FIFO: EPERM")
                && err.contains("the container's cgroup has no real-time time"),
            "{err}"
        );
        assert_eq!(std::fs::read_dir(b.state_root()).unwrap().count(), 0);
        assert_eq!(b.cgroups(), Vec::<PathBuf>::new());
    } else {
        assert_eq!(code, 0, "{err}");
        let pid: i32 = std::fs::read_to_string(b.bundle().join("pid"))
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        // SAFETY: integer arguments only.
        assert_eq!(unsafe { libc::sched_getscheduler(pid) }, libc::SCHED_FIFO);
        let (code, _, err) = b.out(&["delete", "--force", "s3"]);
        assert_eq!(code, 0, "{err}");
    }

    // What the kernel would refuse is refused before anything exists, naming the field.
    for (edit, says) in [
        (
            serde_json::json!({"process": {"scheduler": {"policy": "SCHED_DEADLINE", "deadline": 20000000}}}),
            "process.scheduler: sched_setattr: `SCHED_DEADLINE` requires `runtime`",
        ),
        (
            serde_json::json!({"process": {"scheduler": {"policy": "SCHED_OTHER", "nice": 30}}}),
            "process.scheduler.nice: 30 is outside -20..19",
        ),
        (
            serde_json::json!({"process": {"ioPriority": {"class": "IOPRIO_CLASS_XX"}}}),
            "process.ioPriority.class: unknown class \"IOPRIO_CLASS_XX\"",
        ),
        (
            serde_json::json!({"linux": {"memoryPolicy": {"mode": "MPOL_BIND", "nodes": "bad"}}}),
            "linux.memoryPolicy.nodes: \"bad\"",
        ),
    ] {
        b.edit(|c| {
            c["process"].as_object_mut().unwrap().remove("scheduler");
            c["process"].as_object_mut().unwrap().remove("ioPriority");
            c["linux"].as_object_mut().unwrap().remove("memoryPolicy");
            for (section, fields) in edit.as_object().unwrap() {
                for (k, v) in fields.as_object().unwrap() {
                    c[section][k] = v.clone();
                }
            }
        });
        let (code, _, err) = b.out(&["create", "s2"]);
        assert_eq!(code, 1, "{err}");
        assert!(err.contains(says), "{says}: {err}");
        assert_eq!(std::fs::read_dir(b.state_root()).unwrap().count(), 0);
        assert_eq!(b.cgroups(), Vec::<PathBuf>::new());
    }
}

/// The pid file's process, once the file is there.
fn pid_in(path: &std::path::Path) -> i32 {
    wait_until("the pid file", || {
        std::fs::read_to_string(path).ok()?.trim().parse().ok()
    })
}

fn init_pid(b: &Bundle, id: &str) -> i32 {
    let (code, out, err) = b.out(&["state", id]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    v["pid"].as_i64().unwrap() as i32
}

#[test]
fn exec_runs_in_the_container_and_exits_with_the_process_code() {
    let b = Bundle::new(&["sleep", "1000"]);
    let (code, _, err) = b.out(&["run", "-d", "e1"]);
    assert_eq!(code, 0, "{err}");
    let (code, out, err) = b.out(&["exec", "e1", "sh", "-c", "echo hi from $(hostname); exit 3"]);
    assert_eq!((code, out.as_str()), (3, "hi from dockling\n"), "{err}");
    // Its environment is the container's, with --env on top; --cwd and --user apply.
    let (code, out, err) = b.out(&[
        "exec",
        "-e",
        "FOO=bar",
        "--cwd",
        "/tmp",
        "-u",
        "1000:1001",
        "e1",
        "sh",
        "-c",
        "echo $FOO $PATH; pwd; id",
    ]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        out,
        "bar /usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n/tmp\nuid=1000 gid=1001\n"
    );
    // A signal's end is 128 + its number, as runc's.
    let (code, _, err) = b.out(&["exec", "e1", "sh", "-c", "kill -TERM $$"]);
    assert_eq!(code, 143, "{err}");
    // --preserve-fds 1: the caller's descriptor 3 reaches the program, its 4 does not.
    let file = b.dir.path().join("fd3.txt");
    let o = Command::new("sh")
        .arg("-c")
        .arg(
            r#""$0" --root "$1" exec --preserve-fds 1 e1 sh -c 'echo through fd 3 >&3; test -e /proc/$$/fd/4 && echo 4 leaked || echo 4 closed' 3>"$2" 4>/dev/null"#,
        )
        .arg(b.dir.path().join("dockling-runc"))
        .arg(b.state_root())
        .arg(&file)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(String::from_utf8_lossy(&o.stdout), "4 closed\n");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "through fd 3\n");
    // A program that is not there: runc's exit 1 and the reason.
    let (code, _, err) = b.out(&["exec", "e1", "/not.here"]);
    assert_eq!(code, 1);
    assert!(
        err.contains("\"/not.here\": no such file or directory"),
        "{err}"
    );
    let (code, _, err) = b.out(&["delete", "-f", "e1"]);
    assert_eq!(code, 0, "{err}");
}

#[test]
fn exec_detach_leaves_the_process_in_the_containers_namespaces_and_writes_its_pid() {
    let b = Bundle::new(&["sleep", "1000"]);
    let (code, _, err) = b.out(&["run", "-d", "e2"]);
    assert_eq!(code, 0, "{err}");
    let pid_file = b.dir.path().join("exec.pid");
    let (code, out, err) = b.out(&[
        "exec",
        "--detach",
        "--pid-file",
        pid_file.to_str().unwrap(),
        "e2",
        "sleep",
        "999",
    ]);
    assert_eq!((code, out.as_str()), (0, ""), "{err}");
    let pid = pid_in(&pid_file);
    let init = init_pid(&b, "e2");
    assert_ne!(pid, init);
    // Execve'd before exec returned: the program is sleep, not dockling.
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap();
    assert_eq!(cmdline, b"sleep\x00999\x00");
    for ns in ["pid", "mnt", "net", "ipc", "uts", "cgroup"] {
        let link = |p: i32| std::fs::read_link(format!("/proc/{p}/ns/{ns}")).unwrap();
        assert_eq!(link(pid), link(init), "{ns} namespace");
    }
    let cgroup = |p: i32| std::fs::read_to_string(format!("/proc/{p}/cgroup")).unwrap();
    assert_eq!(cgroup(pid), cgroup(init));
    // Its root is the container's: the bundle's busybox, not the host's files.
    assert_eq!(
        std::fs::read_link(format!("/proc/{pid}/root")).unwrap(),
        std::path::PathBuf::from("/")
    );
    assert!(std::path::Path::new(&format!("/proc/{pid}/root/bin/busybox")).exists());
    assert!(!std::path::Path::new(&format!("/proc/{pid}/root/usr/bin")).exists());
    let (code, _, err) = b.out(&["delete", "-f", "e2"]);
    assert_eq!(code, 0, "{err}");
    // Killed with its cgroup.
    wait_until("the exec'd process gone", || {
        (!std::path::Path::new(&format!("/proc/{pid}")).exists()
            || std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .is_ok_and(|s| s.contains(") Z ")))
        .then_some(())
    });
}

#[test]
fn exec_with_a_process_file_takes_its_user_cwd_env_and_limits() {
    let b = Bundle::new(&["sleep", "1000"]);
    let (code, _, err) = b.out(&["run", "-d", "e3"]);
    assert_eq!(code, 0, "{err}");
    let process = b.dir.path().join("process.json");
    std::fs::write(
        &process,
        serde_json::to_vec(&serde_json::json!({
            "args": ["sh", "-c", "id; pwd; echo $FOO; umask; ulimit -n; grep CapEff /proc/self/status"],
            "cwd": "/tmp",
            "env": ["PATH=/bin", "FOO=from the file"],
            "user": {"uid": 1000, "gid": 1001, "additionalGids": [432], "umask": 63},
            "rlimits": [{"type": "RLIMIT_NOFILE", "soft": 100, "hard": 200}],
            "capabilities": {"bounding": ["CAP_KILL"], "effective": ["CAP_KILL"], "permitted": ["CAP_KILL"]},
            "terminal": false
        }))
        .unwrap(),
    )
    .unwrap();
    let (code, out, err) = b.out(&["exec", "--process", process.to_str().unwrap(), "e3"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        out,
        "uid=1000 gid=1001 groups=432\n/tmp\nfrom the file\n0077\n100\nCapEff:\t0000000000000000\n"
    );
    // A field the process file may not have is refused by name, nothing started.
    let mut bad: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&process).unwrap()).unwrap();
    bad["apparmorProfile"] = "p".into();
    std::fs::write(&process, serde_json::to_vec(&bad).unwrap()).unwrap();
    let (code, _, err) = b.out(&["exec", "--process", process.to_str().unwrap(), "e3"]);
    assert_eq!(code, 1);
    assert!(err.contains("process.apparmorProfile"), "{err}");
    let (code, _, err) = b.out(&["delete", "-f", "e3"]);
    assert_eq!(code, 0, "{err}");
}

#[test]
fn exec_into_a_created_or_stopped_container_is_refused() {
    let b = Bundle::new(&["sh", "-c", "exit 0"]);
    let (code, _, err) = b.out(&["create", "e4"]);
    assert_eq!(code, 0, "{err}");
    let (code, out, err) = b.out(&["exec", "e4", "echo", "no"]);
    assert_eq!((code, out.as_str()), (1, ""));
    let created = err;
    let (code, _, err) = b.out(&["start", "e4"]);
    assert_eq!(code, 0, "{err}");
    wait_until("stopped", || (b.status("e4") == "stopped").then_some(()));
    let (code, out, err) = b.out(&["exec", "e4", "echo", "no"]);
    assert_eq!((code, out.as_str()), (1, ""));
    insta::assert_snapshot!("runtime_exec_refused", format!("{created}{err}"));
    let (code, _, err) = b.out(&["delete", "e4"]);
    assert_eq!(code, 0, "{err}");
}

#[test]
fn exec_gets_the_containers_seccomp_filter() {
    let b = Bundle::new(&["sleep", "1000"]);
    b.edit(|c| {
        c["linux"]["seccomp"] = serde_json::json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"}]
        })
    });
    let (code, _, err) = b.out(&["run", "-d", "e5"]);
    assert_eq!(code, 0, "{err}");
    let (code, out, err) = b.out(&[
        "exec",
        "e5",
        "sh",
        "-c",
        "grep Seccomp: /proc/self/status; mkdir /tmp/d && echo made || echo refused",
    ]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "Seccomp:\t2\nrefused\n");
    let (code, _, err) = b.out(&["delete", "-f", "e5"]);
    assert_eq!(code, 0, "{err}");
}

/// Run the runtime's `command` with its stdout and stderr in files (which the container's
/// stdio become, and a detached one may hold open); it must succeed.
fn succeeds_into_files(mut command: Command, out: &std::path::Path, err: &std::path::Path) {
    let status = command
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(out).unwrap())
        .stderr(std::fs::File::create(err).unwrap())
        .status()
        .unwrap();
    assert!(
        status.success(),
        "{}",
        std::fs::read_to_string(err).unwrap()
    );
}

impl Bundle {
    /// No container record and no cgroup left of this bundle's containers.
    fn assert_nothing_left(&self) {
        assert_eq!(std::fs::read_dir(self.state_root()).unwrap().count(), 0);
        assert_eq!(self.cgroups(), Vec::<PathBuf>::new());
    }

    /// The value of the container's cgroup knob `file`, trimmed.
    fn read_knob(&self, file: &str) -> String {
        std::fs::read_to_string(self.knob(file))
            .unwrap()
            .trim()
            .to_string()
    }

    /// True when the container's groups are cgroup v2's (no v1 freezer among them).
    fn on_v2(&self) -> bool {
        !self
            .cgroups()
            .iter()
            .any(|d| d.join("freezer.state").exists())
    }

    /// The container's group directory that holds `file` (v1: the hierarchy carrying it).
    fn knob(&self, file: &str) -> PathBuf {
        self.cgroups()
            .into_iter()
            .map(|d| d.join(file))
            .find(|p| p.exists())
            .unwrap_or_else(|| panic!("no {file} in the container's cgroups"))
    }

    /// The freezer's word for the group: v1 `freezer.state`, v2 the `frozen` line of
    /// `cgroup.events`.
    fn freezer(&self) -> String {
        let groups = self.cgroups();
        if let Some(v1) = groups.iter().find(|d| d.join("freezer.state").exists()) {
            return std::fs::read_to_string(v1.join("freezer.state"))
                .unwrap()
                .trim()
                .to_string();
        }
        let events = std::fs::read_to_string(self.knob("cgroup.events")).unwrap();
        if events.lines().any(|l| l == "frozen 1") {
            "FROZEN".into()
        } else {
            "THAWED".into()
        }
    }

    /// The pids of the container's group (its first hierarchy's `cgroup.procs`), sorted.
    fn procs(&self) -> Vec<i32> {
        let mut pids: Vec<i32> = std::fs::read_to_string(self.knob("cgroup.procs"))
            .unwrap()
            .split_whitespace()
            .map(|p| p.parse().unwrap())
            .collect();
        pids.sort();
        pids
    }
}

/// The scheduler state of a process (`/proc/<pid>/stat` field 3): `D` while frozen.
fn proc_state(pid: i32) -> String {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    rest.split(' ').next().unwrap().to_string()
}

#[test]
fn pause_freezes_every_process_and_resume_thaws_them() {
    let b = Bundle::new(&["sh", "-c", "sleep 1000 & exec sleep 1001"]);
    let mut t = String::new();
    let shown = |t: &mut String, args: &[&str]| {
        let (code, out, err) = b.out(args);
        t.push_str(&format!(
            "$ dockling-runc {}\n{out}{err}[exit {code}]\n",
            args.join(" ")
        ));
        (code, out, err)
    };
    let (code, _, err) = b.out(&["run", "--detach", "p1"]);
    assert_eq!(code, 0, "{err}");
    let pids = wait_until("both processes", || {
        let p = b.procs();
        (p.len() == 2).then_some(p)
    });
    // Only a paused container resumes.
    let (code, _, err) = shown(&mut t, &["resume", "p1"]);
    assert_eq!(code, 1);
    assert!(err.contains("container not paused"), "{err}");
    let (code, _, err) = shown(&mut t, &["pause", "p1"]);
    assert_eq!(code, 0, "{err}");
    // Settled when pause returns: the freezer says so, and so does every process.
    assert_eq!(b.freezer(), "FROZEN");
    for p in &pids {
        assert_eq!(proc_state(*p), "D", "pid {p} is not frozen");
    }
    assert_eq!(b.status("p1"), "paused");
    let (code, _, err) = shown(&mut t, &["pause", "p1"]);
    assert_eq!(code, 1);
    assert!(err.contains("container not running"), "{err}");
    let (code, _, err) = shown(&mut t, &["resume", "p1"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(b.freezer(), "THAWED");
    for p in &pids {
        assert_eq!(proc_state(*p), "S", "pid {p} does not sleep as before");
    }
    assert_eq!(b.status("p1"), "running");
    // A signal a frozen process cannot act on waits, pending, until it is thawed (the
    // background sleep: the container's process 1 ignores a TERM it has no handler for).
    let init = init_pid(&b, "p1");
    let other = *pids
        .iter()
        .find(|p| **p != init)
        .expect("the background sleep");
    let (code, _, err) = b.out(&["pause", "p1"]);
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = b.out(&["kill", "--all", "p1", "TERM"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(b.status("p1"), "paused");
    let pending = |pid: i32| -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
        ["SigPnd:", "ShdPnd:"]
            .iter()
            .map(|k| {
                let line = status.lines().find(|l| l.starts_with(k)).unwrap();
                u64::from_str_radix(line[k.len()..].trim(), 16).unwrap()
            })
            .fold(0, |a, b| a | b)
    };
    let term = 1u64 << (libc::SIGTERM - 1);
    assert_eq!(
        pending(other) & term,
        term,
        "no TERM pending in pid {other}"
    );
    assert_eq!(proc_state(other), "D", "pid {other} is not frozen");
    let (code, _, err) = b.out(&["resume", "p1"]);
    assert_eq!(code, 0, "{err}");
    // Thawed, it acts on it: it ends (a zombie of the sleep that never reaps it, or gone).
    wait_until("the background sleep ends on its TERM", || {
        std::fs::read_to_string(format!("/proc/{other}/stat"))
            .map_or(true, |_| proc_state(other) == "Z")
            .then_some(())
    });
    // A paused container ends with SIGKILL (thawed after the signal).
    let (code, _, err) = b.out(&["pause", "p1"]);
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = b.out(&["kill", "p1", "KILL"]);
    assert_eq!(code, 0, "{err}");
    wait_until("stopped", || (b.status("p1") == "stopped").then_some(()));
    let (code, _, err) = shown(&mut t, &["pause", "p1"]);
    assert_eq!(code, 1);
    assert!(err.contains("container not running"), "{err}");
    let (code, _, err) = b.out(&["delete", "p1"]);
    assert_eq!(code, 0, "{err}");
    // delete --force of a paused one.
    let (code, _, err) = b.out(&["run", "--detach", "p2"]);
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = b.out(&["pause", "p2"]);
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = b.out(&["delete", "--force", "p2"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(b.cgroups(), Vec::<PathBuf>::new());
    // A created container can be paused too (runc's rule); it cannot start until resumed.
    let (code, _, err) = b.out(&["create", "p3"]);
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = b.out(&["pause", "p3"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(b.status("p3"), "paused");
    let (code, _, err) = shown(&mut t, &["start", "p3"]);
    assert_eq!(code, 1);
    assert!(err.contains("it is paused, not created"), "{err}");
    let (code, _, err) = b.out(&["resume", "p3"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(b.status("p3"), "created");
    let (code, _, err) = b.out(&["delete", "p3"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(std::fs::read_dir(b.state_root()).unwrap().count(), 0);
    insta::assert_snapshot!("runtime_pause", t);
}

#[test]
fn ps_lists_the_processes_of_the_containers_cgroup() {
    let b = Bundle::new(&["sh", "-c", "sleep 1000 & exec sleep 1001"]);
    let (code, _, err) = b.out(&["run", "--detach", "s1"]);
    assert_eq!(code, 0, "{err}");
    let pids = wait_until("both processes", || {
        let p = b.procs();
        (p.len() == 2).then_some(p)
    });
    let (code, out, err) = b.out(&["ps", "--format", "json", "s1"]);
    assert_eq!(code, 0, "{err}");
    let mut listed: Vec<i32> = serde_json::from_str(&out).unwrap();
    listed.sort();
    assert_eq!(listed, pids, "ps json is the group's cgroup.procs");
    // The table: the host's ps header and one line per process of the container.
    let (code, out, err) = b.out(&["ps", "s1"]);
    assert_eq!(code, 0, "{err}");
    let mut lines = out.lines();
    let header = lines.next().unwrap();
    assert!(header.split_whitespace().any(|h| h == "PID"), "{out}");
    let mut rows: Vec<i32> = lines
        .map(|l| l.split_whitespace().nth(1).unwrap().parse().unwrap())
        .collect();
    rows.sort();
    assert_eq!(rows, pids, "{out}");
    // ps's own options after the id.
    let (code, out, err) = b.out(&["ps", "s1", "-o", "pid,comm"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.lines().count(), 3, "{out}");
    assert!(out.lines().skip(1).all(|l| l.ends_with("sleep")), "{out}");
    let (code, _, err) = b.out(&["ps", "s1", "-o", "comm"]);
    assert_eq!(code, 1);
    assert!(err.contains("no PID column"), "{err}");
    let (code, _, err) = b.out(&["ps", "--format", "json", "s1", "-ef"]);
    assert_eq!(code, 1);
    assert!(err.contains("table format only"), "{err}");
    let (code, _, err) = b.out(&["ps", "nosuch"]);
    assert_eq!(code, 1);
    assert!(err.contains("does not exist"), "{err}");
}

#[test]
fn update_writes_the_new_limits_into_the_cgroup() {
    let b = Bundle::new(&["sleep", "1000"]);
    b.edit(|c| {
        c["linux"]["resources"]["memory"] = serde_json::json!({"limit": 200 << 20});
    });
    let (code, _, err) = b.out(&["run", "--detach", "u1"]);
    assert_eq!(code, 0, "{err}");
    let read = |file: &str| b.read_knob(file);
    let v2 = b.cgroups().iter().any(|d| d.join("cgroup.events").exists())
        && !b.cgroups().iter().any(|d| d.join("freezer.state").exists());
    let (code, _, err) = b.out(&[
        "update",
        "--memory",
        "100m",
        "--memory-reservation",
        "52428800",
        "--cpu-share",
        "512",
        "--cpu-period",
        "100000",
        "--cpu-quota",
        "50000",
        "--pids-limit",
        "100",
        "u1",
    ]);
    assert_eq!(code, 0, "{err}");
    if v2 {
        assert_eq!(read("memory.max"), "104857600");
        assert_eq!(read("memory.low"), "52428800");
        assert_eq!(read("cpu.weight"), "20");
        assert_eq!(read("cpu.max"), "50000 100000");
    } else {
        assert_eq!(read("memory.limit_in_bytes"), "104857600");
        assert_eq!(read("memory.soft_limit_in_bytes"), "52428800");
        assert_eq!(read("cpu.shares"), "512");
        assert_eq!(read("cpu.cfs_period_us"), "100000");
        assert_eq!(read("cpu.cfs_quota_us"), "50000");
    }
    assert_eq!(read("pids.max"), "100");
    // From a file given as standard input.
    let mut child = b
        .rt(&["update", "--resources", "-", "u1"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(br#"{"pids": {"limit": 50}, "cpu": {"quota": -1}}"#)
        .unwrap();
    let o = child.wait_with_output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(read("pids.max"), "50");
    if v2 {
        assert_eq!(read("cpu.max"), "max 100000");
    } else {
        assert_eq!(read("cpu.cfs_quota_us"), "-1");
    }
    // What cannot change is refused by name, and nothing is written.
    let file = b.dir.path().join("res.json");
    std::fs::write(
        &file,
        r#"{"pids": {"limit": 7}, "memory": {"checkBeforeUpdate": true}}"#,
    )
    .unwrap();
    let (code, _, err) = b.out(&["update", "-r", file.to_str().unwrap(), "u1"]);
    assert_eq!(code, 1);
    assert!(
        err.contains("memory.checkBeforeUpdate is not something"),
        "{err}"
    );
    assert_eq!(read("pids.max"), "50");
    let (code, _, err) = b.out(&["update", "--l3-cache-schema", "L3:0=f", "u1"]);
    assert_eq!(code, 1);
    assert!(err.contains("--l3-cache-schema: Intel RDT"), "{err}");
    // The record's config says what the container has now.
    let record: serde_json::Value =
        serde_json::from_slice(&std::fs::read(b.state_root().join("u1/state.json")).unwrap())
            .unwrap();
    assert_eq!(
        record["config"]["linux"]["resources"]["pids"]["limit"], 50,
        "{record}"
    );
    // A stopped container has nothing to update.
    let (code, _, err) = b.out(&["kill", "u1", "KILL"]);
    assert_eq!(code, 0, "{err}");
    wait_until("stopped", || (b.status("u1") == "stopped").then_some(()));
    let (code, _, err) = b.out(&["update", "--pids-limit", "9", "u1"]);
    assert_eq!(code, 1);
    assert!(
        err.contains("cannot update container \"u1\": it is stopped"),
        "{err}"
    );
}

#[test]
fn features_lists_what_create_accepts() {
    let b = Bundle::new(&["sh", "-c", ":"]);
    let (code, out, err) = b.out(&["features"]);
    assert_eq!(code, 0, "{err}");
    let doc: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(doc["ociVersionMin"], "1.0.0");
    let listed = |v: &serde_json::Value| -> Vec<String> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|s| s.as_str().unwrap().to_string())
            .collect()
    };
    let namespaces = listed(&doc["linux"]["namespaces"]);
    assert!(!namespaces.contains(&"user".to_string()), "{namespaces:?}");
    // A config asking for every namespace listed runs; one with a namespace left out of the
    // list is refused.
    b.edit(|c| {
        c["linux"]["namespaces"] = namespaces
            .iter()
            .map(|n| serde_json::json!({"type": n}))
            .collect();
    });
    let (code, _, err) = b.out(&["run", "f1"]);
    assert_eq!(code, 0, "{err}");
    b.edit(|c| {
        c["linux"]["namespaces"]
            .as_array_mut()
            .unwrap()
            .push(serde_json::json!({"type": "user"}));
    });
    let (code, _, err) = b.out(&["run", "f2"]);
    assert_eq!(code, 1);
    assert!(err.contains("user namespaces are not supported"), "{err}");
    // Every mount option the spec template writes is within the list, but the file systems'
    // own data (`mode=755`, devpts' `newinstance`), which the kernel reads, not the runtime.
    let options = listed(&doc["mountOptions"]);
    std::fs::create_dir(b.dir.path().join("template")).unwrap();
    let template = common::runtime_spec(&b.dir.path().join("template"));
    let mut checked = 0;
    for m in template["mounts"].as_array().unwrap() {
        for o in m["options"].as_array().into_iter().flatten() {
            let o = o.as_str().unwrap();
            if o.contains('=') || o == "newinstance" {
                continue;
            }
            assert!(
                options.contains(&o.to_string()),
                "{o} ({m}) is not in {options:?}"
            );
            checked += 1;
        }
    }
    assert!(checked > 5, "only {checked} options in the template");
    assert_eq!(doc["linux"]["apparmor"]["enabled"], false);
    assert_eq!(doc["linux"]["selinux"]["enabled"], false);
    assert_eq!(
        doc["hooks"],
        serde_json::json!([
            "prestart",
            "createRuntime",
            "createContainer",
            "startContainer",
            "poststart",
            "poststop"
        ])
    );
    let version = doc["annotations"]["io.github.dockling.version"]
        .as_str()
        .unwrap()
        .to_string();
    insta::assert_snapshot!("runtime_features", out.replace(&version, "[VERSION]"));
}

#[test]
fn config_devices_are_made_inside_the_root_and_the_configs_device_rules_apply() {
    use std::os::unix::fs::FileTypeExt;
    let b = Bundle::new(&[
        "sh",
        "-c",
        "stat -c '%n %a %u:%g %t:%T %F' /dev/foo /sub/dir/node /dev/fifo /mnt; \
         mknod /tmp/fuse c 10 229 && mknod /tmp/loop-control c 10 237 || echo mknod: failed; \
         (exec 3</tmp/fuse) && echo fuse read: allowed; \
         (exec 4>/tmp/fuse) 2>/dev/null || echo fuse write: denied; \
         (exec 5</tmp/loop-control) 2>/dev/null || echo loop-control read: denied; \
         echo x > /sub/dir/node && echo node write: allowed",
    ]);
    for tool in ["stat", "mknod"] {
        std::os::unix::fs::symlink("busybox", b.bundle().join("rootfs/bin").join(tool)).unwrap();
    }
    // A symlink of the image that points at a host directory: the node below it must land
    // inside the root, never in that directory.
    let outside = b.dir.path().join("outside");
    std::fs::create_dir(&outside).unwrap();
    std::os::unix::fs::symlink(&outside, b.bundle().join("rootfs/escape")).unwrap();
    b.edit(|c| {
        c["linux"]["devices"] = serde_json::json!([
            {"path": "/dev/foo", "type": "b", "major": 1, "minor": 5, "uid": 10, "gid": 11, "fileMode": 0o157},
            {"path": "/sub/dir/node", "type": "c", "major": 1, "minor": 3},
            {"path": "/dev/fifo", "type": "p", "fileMode": 0o660, "uid": 1, "gid": 2},
            {"path": "/mnt/", "type": "b", "major": 10, "minor": 229},
            {"path": "/escape/node", "type": "c", "major": 1, "minor": 3}
        ]);
        c["linux"]["resources"]["devices"] = serde_json::json!([
            {"allow": false, "access": "rwm"},
            {"allow": true, "type": "c", "major": 10, "minor": 229, "access": "r"}
        ]);
    });
    let (code, out, err) = b.out(&["run", "dv1"]);
    assert_eq!(code, 0, "{err}");
    insta::assert_snapshot!("runtime_config_devices", out);
    assert!(
        std::fs::read_dir(&outside).unwrap().next().is_none(),
        "a node was made outside the root"
    );
    let inside = b
        .bundle()
        .join("rootfs")
        .join(outside.strip_prefix("/").unwrap())
        .join("node");
    assert!(
        std::fs::symlink_metadata(&inside)
            .unwrap()
            .file_type()
            .is_char_device(),
        "{}",
        inside.display()
    );
    // The host's /dev bound in: no node is made in it (it is the host's), and the config's
    // rules still hold for the host's nodes seen there (its /dev/fuse, there first: a
    // missing one would read as denied too).
    assert!(
        std::fs::metadata("/dev/fuse").is_ok_and(|m| m.file_type().is_char_device()),
        "this test needs the host's /dev/fuse (modprobe fuse)"
    );
    let node = format!("dockling-test-{}", std::process::id());
    b.edit(|c| {
        c["process"]["args"] = serde_json::json!([
            "sh",
            "-c",
            "[ -c /dev/fuse ] && echo host fuse: there; (exec 3</dev/fuse) 2>/dev/null || echo host fuse read: denied; echo x > /dev/null && echo null: allowed"
        ]);
        c["mounts"]
            .as_array_mut()
            .unwrap()
            .push(serde_json::json!({"destination": "/dev", "type": "bind", "source": "/dev", "options": ["rbind", "rw"]}));
        c["linux"]["devices"] =
            serde_json::json!([{"path": format!("/dev/{node}"), "type": "c", "major": 1, "minor": 3}]);
        c["linux"]["resources"]["devices"] = serde_json::json!([{"allow": false, "access": "rwm"}]);
    });
    let (code, out, err) = b.out(&["run", "dv3"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        out,
        "host fuse: there\nhost fuse read: denied\nnull: allowed\n"
    );
    assert!(
        !std::path::Path::new("/dev").join(&node).exists(),
        "a node was made in the host's /dev"
    );
    // A bad rule is refused by name before anything exists.
    b.edit(|c| {
        c["linux"]["resources"]["devices"] =
            serde_json::json!([{"allow": true, "type": "c", "access": "rwx"}]);
    });
    let (code, _, err) = b.out(&["run", "dv2"]);
    assert_eq!(code, 1);
    assert!(err.contains("linux.resources.devices"), "{err}");
    assert!(err.contains("access 'x'"), "{err}");
    b.assert_nothing_left();
}

/// A bind of another tree that the image's symlink leads onto /dev (config: a tmpfs at
/// /dev, then the host's /dev bound at /hostdev; image: `/hostdev -> /dev`) is that tree's:
/// neither the standard nodes nor the config's are made in it. A tmpfs of the test stands in
/// for the host's /dev (a tmpfs too), so a regression fills it, not the host's.
#[test]
fn no_device_node_lands_in_a_bind_the_images_symlink_leads_onto_dev() {
    struct Unmount(PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            common::unmount_under(&self.0);
        }
    }
    let b = Bundle::new(&["sh", "-c", "ls /dev"]);
    let fake = b.dir.path().join("hostdev");
    std::fs::create_dir(&fake).unwrap();
    let status = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "mode=755", "hostdev"])
        .arg(&fake)
        .status()
        .unwrap();
    assert!(status.success(), "mount tmpfs on {}", fake.display());
    let _unmount = Unmount(fake.clone());
    std::fs::write(fake.join("host-file"), "the host's\n").unwrap();
    // Like the host's, it has a null (the masked paths are covered with it).
    let status = Command::new("mknod")
        .arg(fake.join("null"))
        .args(["c", "1", "3"])
        .status()
        .unwrap();
    assert!(status.success(), "mknod null");
    std::os::unix::fs::symlink("/dev", b.bundle().join("rootfs/hostdev")).unwrap();
    // And a dangling one into it: not even the missing directory is made there.
    std::os::unix::fs::symlink("/dev/new", b.bundle().join("rootfs/x")).unwrap();
    let node = format!("dockling-test-{}", std::process::id());
    b.edit(|c| {
        c["mounts"].as_array_mut().unwrap().push(serde_json::json!(
            {"destination": "/hostdev", "type": "bind", "source": fake, "options": ["rbind", "rw"]}
        ));
        c["linux"]["devices"] = serde_json::json!([
            {"path": format!("/dev/{node}"), "type": "c", "major": 1, "minor": 3},
            {"path": format!("/hostdev/{node}-2"), "type": "c", "major": 1, "minor": 3},
            {"path": "/x/sub/node", "type": "c", "major": 1, "minor": 3}
        ]);
    });
    let (code, out, err) = b.out(&["run", "dvl"]);
    assert_eq!(code, 0, "{err}");
    // The bind did land on /dev: the container lists the stand-in's file there.
    assert_eq!(out, "host-file\nnull\n", "{err}");
    let mut left: Vec<_> = std::fs::read_dir(&fake)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    left.sort();
    assert_eq!(
        left,
        ["host-file", "null"],
        "nodes were made in the bound tree"
    );
}

/// `create` gives the new group everything `linux.resources` asks (shares, reservation,
/// cpuset, not only the limits `dockling run` knows), and refuses by name what it cannot set,
/// leaving nothing behind.
#[test]
fn create_applies_the_configs_other_resources_and_refuses_what_it_cannot_set() {
    let b = Bundle::new(&["sleep", "1000"]);
    b.edit(|c| {
        c["linux"]["resources"]["memory"] = serde_json::json!({
            "limit": 200 << 20,
            "reservation": 50 << 20,
            "disableOOMKiller": !std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists()
        });
        if !std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
            c["linux"]["resources"]["memory"]["kernelTCP"] = serde_json::json!(32 << 20);
            c["linux"]["resources"]["memory"]["swappiness"] = serde_json::json!(17);
        }
        c["linux"]["resources"]["cpu"] = serde_json::json!({
            "shares": 512, "mems": "0", "quota": 50000, "period": 500000
        });
    });
    let (code, _, err) = b.out(&["create", "r1"]);
    assert_eq!(code, 0, "{err}");
    let read = |file: &str| b.read_knob(file);
    let v2 = b.on_v2();
    if v2 {
        assert_eq!(read("memory.max"), "209715200");
        assert_eq!(read("memory.low"), "52428800");
        assert_eq!(read("cpu.weight"), "20");
        assert_eq!(read("cpu.max"), "50000 500000");
    } else {
        assert_eq!(read("cpu.cfs_period_us"), "500000");
        assert_eq!(read("cpu.cfs_quota_us"), "50000");
        assert_eq!(read("memory.kmem.tcp.limit_in_bytes"), "33554432");
        assert_eq!(read("memory.swappiness"), "17");
        assert_eq!(read("memory.limit_in_bytes"), "209715200");
        assert_eq!(read("memory.soft_limit_in_bytes"), "52428800");
        assert_eq!(read("cpu.shares"), "512");
        assert!(
            read("memory.oom_control").contains("oom_kill_disable 1"),
            "{}",
            read("memory.oom_control")
        );
    }
    assert_eq!(read("cpuset.mems"), "0");
    let (code, _, err) = b.out(&["delete", "--force", "r1"]);
    assert_eq!(code, 0, "{err}");
    // Huge pages, and on v1 real-time time (a share of the parent's, which the runtime's
    // parent group is given first, scaled to its own 1 s period: it starts with none).
    b.edit(|c| {
        c["linux"]["resources"] = serde_json::json!({
            "hugepageLimits": [{"pageSize": "2MB", "limit": 4 << 20}],
            "cpu": if v2 { serde_json::json!({}) } else {
                serde_json::json!({"realtimeRuntime": 1000, "realtimePeriod": 100000})
            }
        });
    });
    let (code, _, err) = b.out(&["create", "r3"]);
    assert_eq!(code, 0, "{err}");
    if v2 {
        assert_eq!(read("hugetlb.2MB.max"), "4194304");
    } else {
        assert_eq!(read("hugetlb.2MB.limit_in_bytes"), "4194304");
        assert_eq!(read("cpu.rt_runtime_us"), "1000");
    }
    // A second container beside it: its real-time time too (the parent holds both now), and
    // a CPU share too small for a 100 ms period (0.5 %), written as given.
    let parent = b.cgroups()[0].parent().unwrap().to_path_buf();
    let parent_name = parent.file_name().unwrap().to_string_lossy().into_owned();
    b.edit(|c| {
        c["linux"]["cgroupsPath"] = format!("/{parent_name}/c2").into();
        c["linux"]["resources"] = serde_json::json!({
            "cpu": if v2 { serde_json::json!({"quota": 5000, "period": 1000000}) } else {
                serde_json::json!({"quota": 5000, "period": 1000000,
                    "realtimeRuntime": 1000, "realtimePeriod": 100000})
            }
        });
    });
    let (code, _, err) = b.out(&["create", "r4"]);
    assert_eq!(code, 0, "{err}");
    let c2 = |file: &str| {
        b.cgroups()
            .into_iter()
            .filter(|d| d.ends_with("c2"))
            .map(|d| d.join(file))
            .find(|p| p.exists())
            .map(|p| std::fs::read_to_string(p).unwrap().trim().to_string())
            .unwrap_or_else(|| panic!("no {file} for c2"))
    };
    if v2 {
        assert_eq!(c2("cpu.max"), "5000 1000000");
    } else {
        assert_eq!(c2("cpu.cfs_quota_us"), "5000");
        assert_eq!(c2("cpu.cfs_period_us"), "1000000");
        assert_eq!(c2("cpu.rt_runtime_us"), "1000");
    }
    for id in ["r3", "r4"] {
        let (code, _, err) = b.out(&["delete", "--force", id]);
        assert_eq!(code, 0, "{err}");
    }
    b.edit(|c| c["linux"]["cgroupsPath"] = format!("/{parent_name}/c").into());
    // What dockling-runc cannot set: refused by its name before anything exists.
    b.edit(|c| {
        c["linux"]["resources"]["memory"] = serde_json::json!({"checkBeforeUpdate": true});
    });
    let (code, _, err) = b.out(&["create", "r2"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("memory.checkBeforeUpdate"), "{err}");
    b.assert_nothing_left();
}

/// runtime-tools' default config carries a seccomp allow-list older than close_range (Linux
/// 5.9), answering it with EPERM: marking the engine's descriptors close-on-exec after the
/// filter went in made every such create fail ("close_range fds from 3: EPERM").
#[test]
fn a_seccomp_filter_that_refuses_close_range_still_runs_and_execs_without_leaks() {
    let b = Bundle::new(&["sh", "-c", "ls /proc/self/fd > /tmp/fds; sleep 1000"]);
    b.edit(|c| {
        c["linux"]["seccomp"] = serde_json::json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["close_range"], "action": "SCMP_ACT_ERRNO"}]
        })
    });
    let (code, _, err) = b.out(&["run", "-d", "--pid-file", "pid", "f1"]);
    assert_eq!(code, 0, "{err}");
    // The filter is in: the first process and an exec'd one run under a seccomp filter
    // (mode 2), so close_range was refused them and the marks came before.
    let init = pid_in(&b.bundle().join("pid"));
    let status = std::fs::read_to_string(format!("/proc/{init}/status")).unwrap();
    assert!(status.lines().any(|l| l == "Seccomp:\t2"), "{status}");
    let (code, out, err) = b.out(&["exec", "f1", "grep", "Seccomp:", "/proc/self/status"]);
    assert_eq!((code, out.as_str()), (0, "Seccomp:\t2\n"), "{err}");
    // stdin, stdout, stderr, and the directory ls reads: nothing of the engine's, in the
    // container's first process and in an exec'd one.
    let first = wait_until("the first process's list", || {
        let (code, out, _) = b.out(&["exec", "f1", "cat", "/tmp/fds"]);
        (code == 0 && out.ends_with("3\n")).then_some(out)
    });
    assert_eq!(first, "0\n1\n2\n3\n");
    let (code, out, err) = b.out(&["exec", "f1", "ls", "/proc/self/fd"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "0\n1\n2\n3\n");
    let (code, _, err) = b.out(&["delete", "-f", "f1"]);
    assert_eq!(code, 0, "{err}");
}

/// A pid namespace given by path was joined (setns before clone) and yet asked for anew:
/// clone(CLONE_NEWPID) failed with EINVAL (runtime-tools' linux_ns_path).
#[test]
fn a_pid_namespace_given_by_path_is_the_containers() {
    // A pid namespace of the test's own, its process 1 a sleep that dies with unshare.
    let mut holder = Command::new("unshare")
        .args(["--pid", "--fork", "--kill-child", "sleep", "1000"])
        .spawn()
        .unwrap();
    let target = format!("/proc/{}/ns/pid_for_children", holder.id());
    let ours = std::fs::read_link("/proc/self/ns/pid").unwrap();
    let ns = wait_until("unshare's new pid namespace", || {
        std::fs::read_link(&target).ok().filter(|l| *l != ours)
    });
    let b = Bundle::new(&["sleep", "1000"]);
    // The runtime's hooks run in the runtime's pid namespace, not the one it joins for the
    // container (the spec: "in the runtime namespace").
    let hook = |name: &str| {
        serde_json::json!({"path": "/bin/sh", "args": ["sh", "-c", format!(
            "readlink /proc/self/ns/pid > {}/{name}.ns", b.dir.path().display()
        )]})
    };
    let (prestart, create_runtime) = (hook("prestart"), hook("createRuntime"));
    b.edit(|c| {
        for n in c["linux"]["namespaces"].as_array_mut().unwrap() {
            if n["type"] == "pid" {
                n["path"] = target.clone().into();
            }
        }
        c["hooks"] = serde_json::json!({"prestart": [prestart], "createRuntime": [create_runtime]});
    });
    let (code, _, err) = b.out(&["run", "-d", "--pid-file", "pid", "n1"]);
    let seen = (code == 0).then(|| {
        let pid = pid_in(&b.bundle().join("pid"));
        std::fs::read_link(format!("/proc/{pid}/ns/pid")).unwrap()
    });
    let _ = b.out(&["delete", "-f", "n1"]);
    let _ = holder.kill();
    let _ = holder.wait();
    assert_eq!(code, 0, "{err}");
    assert_eq!(seen, Some(ns));
    for name in ["prestart", "createRuntime"] {
        let hooks_ns = std::fs::read_to_string(b.dir.path().join(format!("{name}.ns")))
            .unwrap_or_else(|e| panic!("{name} hook ran: {e}"));
        assert_eq!(hooks_ns.trim(), ours.to_str().unwrap(), "{name}");
    }
}

/// An OCI config's memory limit alone sets no memory + swap limit, as runc's: it went
/// through `dockling run`'s limits, which add Docker's default (memory + swap at twice the
/// memory). With `swap` given, that is what the group gets.
#[test]
fn a_memory_limit_alone_sets_no_swap_limit() {
    let b = Bundle::new(&["sleep", "1000"]);
    b.edit(|c| c["linux"]["resources"]["memory"] = serde_json::json!({"limit": 64 << 20}));
    let (code, _, err) = b.out(&["create", "m1"]);
    assert_eq!(code, 0, "{err}");
    let read = |file: &str| b.read_knob(file);
    let v2 = b.on_v2();
    let (limit, swap) = if v2 {
        ("memory.max", "memory.swap.max")
    } else {
        ("memory.limit_in_bytes", "memory.memsw.limit_in_bytes")
    };
    assert_eq!(read(limit), (64u64 << 20).to_string());
    if !b.cgroups().iter().any(|d| d.join(swap).exists()) {
        eprintln!("skipped: this kernel accounts no swap (no {swap}; boot with swapaccount=1)");
        return;
    }
    // The kernel's own "no limit": v2 `max`, v1 the page counter's largest (2^63 - 4096).
    let unlimited = |v: &str| v == "max" || v.parse::<u64>().is_ok_and(|n| n >= 1 << 62);
    assert!(unlimited(&read(swap)), "{swap}: {}", read(swap));
    let (code, _, err) = b.out(&["delete", "--force", "m1"]);
    assert_eq!(code, 0, "{err}");
    b.edit(|c| {
        c["linux"]["resources"]["memory"] = serde_json::json!({"limit": 64 << 20, "swap": 96 << 20})
    });
    let (code, _, err) = b.out(&["create", "m2"]);
    assert_eq!(code, 0, "{err}");
    // v2's knob is the swap alone: the spec's memory + swap less the memory.
    let want: u64 = if v2 { 32 << 20 } else { 96 << 20 };
    assert_eq!(read(swap), want.to_string());
}

/// A nested cgroupsPath: every group on the way is made (runtime-tools' relative cgroup
/// tests; crun's too), and delete removes the container's own.
#[test]
fn a_nested_cgroups_path_is_made_level_by_level() {
    let b = Bundle::new(&["sleep", "1000"]);
    let nested = format!("/{}/x/y/c", b.cgroup_parent);
    b.edit(|c| c["linux"]["cgroupsPath"] = nested.clone().into());
    let (code, _, err) = b.out(&["run", "-d", "--pid-file", "pid", "g1"]);
    let groups = (code == 0).then(|| {
        let pid = pid_in(&b.bundle().join("pid"));
        std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap()
    });
    let (deleted, _, derr) = b.out(&["delete", "-f", "g1"]);
    let left: Vec<PathBuf> = std::fs::read_dir("/sys/fs/cgroup")
        .into_iter()
        .flatten()
        .flatten()
        .map(|h| h.path().join(nested.trim_start_matches('/')))
        .chain([PathBuf::from("/sys/fs/cgroup").join(nested.trim_start_matches('/'))])
        .filter(|p| p.exists())
        .collect();
    // The levels on the way are the test's to remove (a runtime leaves them, as runc does).
    for h in std::fs::read_dir("/sys/fs/cgroup")
        .into_iter()
        .flatten()
        .flatten()
        .map(|h| h.path())
        .chain([PathBuf::from("/sys/fs/cgroup")])
    {
        let _ = std::fs::remove_dir(h.join(&b.cgroup_parent).join("x/y"));
        let _ = std::fs::remove_dir(h.join(&b.cgroup_parent).join("x"));
    }
    assert_eq!(code, 0, "{err}");
    let groups = groups.unwrap();
    assert!(
        groups.lines().any(|l| l.ends_with(&nested)),
        "not in {nested}:\n{groups}"
    );
    assert_eq!(deleted, 0, "{derr}");
    assert_eq!(left, Vec::<PathBuf>::new());
}

#[test]
fn the_configs_five_capability_sets_reach_the_program_and_its_execs() {
    // A user other than root keeps after execve only what is ambient (no file capabilities):
    // CapPrm and CapEff are the ambient set, the others are the config's as given.
    let b = Bundle::new(&["sh", "-c", "grep ^Cap /proc/self/status; sleep 1000"]);
    b.edit(|c| {
        c["process"]["user"] = serde_json::json!({"uid": 1000, "gid": 1000});
        c["process"]["capabilities"] = serde_json::json!({
            "bounding": ["CAP_CHOWN", "CAP_KILL", "CAP_NET_RAW"],
            "effective": ["CAP_KILL"],
            "permitted": ["CAP_KILL", "CAP_NET_RAW"],
            "inheritable": ["CAP_CHOWN", "CAP_KILL"],
            "ambient": ["CAP_KILL"]
        });
    });
    // The container's stdio are run's: files, which a detached container may hold open.
    let out_file = b.dir.path().join("container.out");
    let err_file = b.dir.path().join("run.err");
    succeeds_into_files(b.rt(&["run", "--detach", "k1"]), &out_file, &err_file);
    let want = "CapInh:\t0000000000000021\nCapPrm:\t0000000000000020\n\
                CapEff:\t0000000000000020\nCapBnd:\t0000000000002021\n\
                CapAmb:\t0000000000000020\n";
    let output = wait_until("the container's output", || {
        let text = std::fs::read_to_string(&out_file).unwrap();
        text.contains("CapAmb").then_some(text)
    });
    assert_eq!(output, want);
    // An exec'd process gets the same sets, through the same steps.
    let (code, out, err) = b.out(&["exec", "k1", "grep", "^Cap", "/proc/self/status"]);
    assert_eq!((code, out.as_str()), (0, want), "{err}");
    let (code, _, err) = b.out(&["delete", "-f", "k1"]);
    assert_eq!(code, 0, "{err}");
    // Root keeps its inheritable set as given too (Docker's, and `dockling run`'s, is empty).
    let b = Bundle::new(&["grep", "^CapInh", "/proc/self/status"]);
    b.edit(|c| {
        c["process"]["capabilities"]["inheritable"] = serde_json::json!(["CAP_KILL"]);
    });
    let (code, out, err) = b.out(&["run", "k2"]);
    assert_eq!(
        (code, out.as_str()),
        (0, "CapInh:\t0000000000000020\n"),
        "{err}"
    );
    // An ambient capability the kernel would not raise is refused by name, nothing made.
    b.edit(|c| {
        c["process"]["capabilities"]["ambient"] = serde_json::json!(["CAP_NET_ADMIN"]);
    });
    let (code, _, err) = b.out(&["run", "k3"]);
    assert_eq!(code, 1);
    assert!(
        err.contains(
            "process.capabilities.ambient: CAP_NET_ADMIN is not both permitted and inheritable"
        ),
        "{err}"
    );
    assert_eq!(std::fs::read_dir(b.state_root()).unwrap().count(), 0);
}

#[test]
fn domainname_is_set_in_the_containers_uts_namespace_only() {
    let host = std::fs::read_to_string("/proc/sys/kernel/domainname").unwrap();
    let b = Bundle::new(&["cat", "/proc/sys/kernel/domainname"]);
    b.edit(|c| c["domainname"] = "example.test".into());
    let (code, out, err) = b.out(&["run", "n1"]);
    assert_eq!((code, out.as_str()), (0, "example.test\n"), "{err}");
    assert_eq!(
        std::fs::read_to_string("/proc/sys/kernel/domainname").unwrap(),
        host
    );
    // Without a UTS namespace of its own it would rename the host's domain: refused, as runc.
    b.edit(|c| {
        let ns = c["linux"]["namespaces"].as_array_mut().unwrap();
        ns.retain(|n| n["type"] != "uts");
        c["hostname"] = "".into();
    });
    let (code, _, err) = b.out(&["run", "n2"]);
    assert_eq!(code, 1);
    assert!(err.contains("domainname"), "{err}");
    assert_eq!(std::fs::read_dir(b.state_root()).unwrap().count(), 0);
}

#[test]
fn create_preserve_fds_passes_the_callers_descriptors_and_nothing_of_its_own() {
    // --preserve-fds 2: the caller's 3 and 4 reach the program, its 5 does not, and neither
    // does any descriptor of create's (its channel, the FIFO, the trace...): sh's own list
    // is exactly stdio and the two.
    let b = Bundle::new(&[
        "sh",
        "-c",
        // No pipeline (sh would hold its pipes while ls looks), and not last (sh would
        // become ls, whose own directory descriptor would show).
        "echo through 3 >&3; echo through 4 >&4; ls /proc/$$/fd; exit 0",
    ]);
    let (three, four) = (b.dir.path().join("fd3.txt"), b.dir.path().join("fd4.txt"));
    let out = b.dir.path().join("out.txt");
    let o = Command::new("sh")
        .arg("-c")
        .arg(
            r#""$0" --root "$1" create --preserve-fds 2 p1 3>"$2" 4>"$3" 5>/dev/null >"$4" &&
               "$0" --root "$1" start p1"#,
        )
        .arg(b.dir.path().join("dockling-runc"))
        .arg(b.state_root())
        .arg(&three)
        .arg(&four)
        .arg(&out)
        .current_dir(b.bundle())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    wait_until("stopped", || (b.status("p1") == "stopped").then_some(()));
    let mut fds: Vec<u32> = std::fs::read_to_string(&out)
        .unwrap()
        .split_whitespace()
        .map(|f| f.parse().unwrap())
        .collect();
    fds.sort_unstable();
    assert_eq!(fds, [0, 1, 2, 3, 4]);
    assert_eq!(std::fs::read_to_string(&three).unwrap(), "through 3\n");
    assert_eq!(std::fs::read_to_string(&four).unwrap(), "through 4\n");
    let (code, _, err) = b.out(&["delete", "p1"]);
    assert_eq!(code, 0, "{err}");
    // `run` takes it too.
    let o = Command::new("sh")
        .arg("-c")
        .arg(r#""$0" --root "$1" run --preserve-fds 1 p2 3>"$2" >/dev/null"#)
        .arg(b.dir.path().join("dockling-runc"))
        .arg(b.state_root())
        .arg(&three)
        .current_dir(b.bundle())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert!(err.contains("4: Bad file descriptor"), "{err}");
    assert_eq!(std::fs::read_to_string(&three).unwrap(), "through 3\n");
}

#[test]
fn a_missing_cwd_is_made_inside_the_root_and_home_comes_from_its_passwd() {
    let b = Bundle::new(&["sh", "-c", "pwd; echo $HOME"]);
    let rootfs = b.bundle().join("rootfs");
    // The root's own symlinks lead inside it, never to the host's /srv: /w is /srv/w there.
    std::os::unix::fs::symlink("/srv/w", rootfs.join("w")).unwrap();
    std::fs::create_dir_all(rootfs.join("usr/share")).unwrap();
    std::fs::create_dir_all(rootfs.join("etc")).unwrap();
    std::fs::write(
        rootfs.join("usr/share/passwd"),
        "root:x:0:0:root:/root:/bin/sh\nu:x:1000:1000::/home/u:/bin/sh\n",
    )
    .unwrap();
    std::os::unix::fs::symlink("../usr/share/passwd", rootfs.join("etc/passwd")).unwrap();
    b.edit(|c| {
        c["process"]["cwd"] = "/w/sub".into();
        c["process"]["user"] = serde_json::json!({"uid": 1000, "gid": 1000});
    });
    let host_srv_w = std::path::Path::new("/srv/w").exists();
    let (code, out, err) = b.out(&["run", "w1"]);
    assert_eq!((code, out.as_str()), (0, "/srv/w/sub\n/home/u\n"), "{err}");
    assert!(rootfs.join("srv/w/sub").is_dir());
    assert_eq!(std::path::Path::new("/srv/w").exists(), host_srv_w);
    // A HOME the config gives is kept; a user without a passwd line gets /.
    b.edit(|c| {
        c["process"]["env"] = serde_json::json!(["PATH=/bin", "HOME=/given"]);
    });
    let (code, out, err) = b.out(&["run", "w2"]);
    assert_eq!((code, out.as_str()), (0, "/srv/w/sub\n/given\n"), "{err}");
    b.edit(|c| {
        c["process"]["env"] = serde_json::json!(["PATH=/bin"]);
        c["process"]["user"] = serde_json::json!({"uid": 4242, "gid": 4242});
    });
    let (code, out, err) = b.out(&["run", "w3"]);
    assert_eq!((code, out.as_str()), (0, "/srv/w/sub\n/\n"), "{err}");
}
