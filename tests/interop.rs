//! Interoperability: what dockling writes is read by the standard tools.
//! - the image store is an OCI image layout that skopeo reads;
//! - a container's directory is an OCI runtime bundle that runc and crun run.

mod common;
use common::Lab;
use std::process::Command;

#[test]
fn skopeo_reads_the_image_store() {
    let lab = Lab::with_busybox();
    let target = format!(
        "oci:{}:docker.io/library/busybox:latest",
        lab.root().join("oci").display()
    );
    let out = Command::new("skopeo")
        .args(["inspect", &target])
        .output()
        .expect("skopeo (scripts/test installs it)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["Os"], "linux");
    let id = lab.cmd(&["images", "-q", "--no-trunc"]).stdout;
    assert_eq!(v["Layers"].as_array().unwrap().len(), 1, "{v}");
    assert!(id.starts_with("sha256:"), "{id}");
}

/// crun on a cgroup v1 host wants the hugetlb hierarchy; mount it for the test if missing.
/// The tests that do run one at a time, from their first step: one test's unmount must not
/// pull the hierarchy from under another's runtime, nor from under a dockling run that is
/// making its cgroups in every mounted hierarchy.
struct Hugetlb {
    mounted: bool,
    _serial: std::sync::MutexGuard<'static, ()>,
}

static HUGETLB_USERS: std::sync::Mutex<()> = std::sync::Mutex::new(());

impl Hugetlb {
    /// Wait for the other tests that mount it (held until the guard drops).
    fn serial() -> std::sync::MutexGuard<'static, ()> {
        HUGETLB_USERS.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn ensure(serial: std::sync::MutexGuard<'static, ()>) -> Hugetlb {
        let path = std::path::Path::new("/sys/fs/cgroup/hugetlb");
        let v1 = std::path::Path::new("/sys/fs/cgroup/memory").is_dir();
        let mounted = std::fs::read_to_string("/proc/self/mountinfo")
            .unwrap()
            .contains(" /sys/fs/cgroup/hugetlb ");
        if !v1 || mounted {
            return Hugetlb {
                mounted: false,
                _serial: serial,
            };
        }
        std::fs::create_dir_all(path).unwrap();
        let ok = Command::new("mount")
            .args([
                "-t",
                "cgroup",
                "-o",
                "hugetlb",
                "cgroup",
                "/sys/fs/cgroup/hugetlb",
            ])
            .status()
            .unwrap()
            .success();
        assert!(
            ok,
            "could not mount the hugetlb cgroup hierarchy crun needs"
        );
        Hugetlb {
            mounted: true,
            _serial: serial,
        }
    }
}

impl Drop for Hugetlb {
    fn drop(&mut self) {
        if self.mounted {
            let _ = Command::new("umount")
                .arg("/sys/fs/cgroup/hugetlb")
                .status();
        }
    }
}

/// `runtime run` of the bundle at `dir` (deleted after), which must succeed: its stdout.
fn run_bundle(runtime: &str, dir: &std::path::Path, what: &str) -> String {
    let name = format!("dockling-{what}-{runtime}-{}", std::process::id());
    let out = Command::new(runtime)
        .args(["run", "--bundle", dir.to_str().unwrap(), &name])
        .output()
        .expect("runc and crun (scripts/test installs them)");
    let _ = Command::new(runtime).args(["delete", "-f", &name]).output();
    assert!(
        out.status.success(),
        "{runtime}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn runc_and_crun_run_the_bundle_dockling_wrote() {
    let serial = Hugetlb::serial();
    let lab = Lab::with_busybox();
    lab.cmd(&[
        "run",
        "--name",
        "bundle",
        "--layers",
        "copy",
        "busybox",
        "sh",
        "-c",
        // unshare(CLONE_NEWUSER) needs no capability: only the seccomp policy in the bundle
        // refuses it, so "refused" shows runc and crun installed it too.
        "echo hello from $(hostname); unshare -U true 2>/dev/null && echo unshared || echo refused",
    ])
    .expect_code(0);
    let v: serde_json::Value =
        serde_json::from_str(&lab.cmd(&["inspect", "bundle"]).stdout).unwrap();
    let dir = std::path::Path::new(v[0]["GraphDriver"]["Data"]["MergedDir"].as_str().unwrap())
        .parent()
        .unwrap()
        .to_path_buf();
    let cfg: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("config.json")).unwrap()).unwrap();
    assert_eq!(
        cfg["process"]["capabilities"]["inheritable"],
        serde_json::json!([])
    );
    assert_eq!(
        cfg["process"]["capabilities"]["ambient"],
        serde_json::json!([])
    );
    assert_eq!(
        cfg["linux"]["seccomp"]["defaultAction"], "SCMP_ACT_ERRNO",
        "Docker's default seccomp profile is in the bundle"
    );
    let hostname = v[0]["Config"]["Hostname"].as_str().unwrap().to_string();
    let _hugetlb = Hugetlb::ensure(serial);
    // The same bundle with its seccomp policy taken out: the call then succeeds, so the
    // "refused" above came from the policy, not from something else in the bundle.
    let mut unconfined = cfg.clone();
    unconfined["linux"]
        .as_object_mut()
        .unwrap()
        .remove("seccomp");
    let original = std::fs::read(dir.join("config.json")).unwrap();
    for (config, last) in [(None, "refused"), (Some(&unconfined), "unshared")] {
        if let Some(c) = config {
            std::fs::write(dir.join("config.json"), serde_json::to_vec(c).unwrap()).unwrap();
        }
        for runtime in ["runc", "crun"] {
            assert_eq!(
                run_bundle(runtime, &dir, "interop"),
                format!("hello from {hostname}\n{last}\n"),
                "{runtime}"
            );
        }
    }
    std::fs::write(dir.join("config.json"), original).unwrap();
    // The runtimes leave the (now empty) parent cgroup named in config.json.
    for h in std::fs::read_dir("/sys/fs/cgroup")
        .into_iter()
        .flatten()
        .flatten()
    {
        let _ = std::fs::remove_dir(h.path().join("dockling-oci"));
    }
    let _ = std::fs::remove_dir("/sys/fs/cgroup/dockling-oci");
}

#[test]
fn runc_and_crun_run_the_template_dockling_runtime_spec_writes() {
    let serial = Hugetlb::serial();
    let bundle = tempfile::tempdir().unwrap();
    let rootfs = bundle.path().join("rootfs");
    std::fs::create_dir_all(rootfs.join("bin")).unwrap();
    std::fs::copy("/bin/busybox", rootfs.join("bin/busybox"))
        .expect("/bin/busybox (busybox-static, which scripts/test installs)");
    for tool in ["sh", "hostname", "cat"] {
        std::os::unix::fs::symlink("busybox", rootfs.join("bin").join(tool)).unwrap();
    }
    let mut cfg = common::runtime_spec(bundle.path());
    assert_eq!(cfg["process"]["args"], serde_json::json!(["sh"]));
    // As runc's own template: a terminal and sh; here a command and no terminal, to read its
    // output.
    cfg["process"]["terminal"] = false.into();
    cfg["process"]["args"] = serde_json::json!([
        "sh",
        "-c",
        "echo hello from $(hostname); cat /proc/self/status | grep -c '^CapEff:.*00000000a80425fb'"
    ]);
    common::write_config(bundle.path(), &cfg);
    let _hugetlb = Hugetlb::ensure(serial);
    for runtime in ["runc", "crun"] {
        // The template's hostname, and Docker's 14 capabilities effective.
        assert_eq!(
            run_bundle(runtime, bundle.path(), "template"),
            "hello from dockling\n1\n",
            "{runtime}"
        );
    }
}

/// What the book's page on the OCI runtime shows: `spec`, a second `spec`, the version and a
/// refused flag, each with its exit code, in a bundle directory `bundle`.
#[test]
fn the_runtime_command_line_answers_as_the_book_shows() {
    let dir = tempfile::tempdir().unwrap();
    let bundle = dir.path().join("bundle");
    std::fs::create_dir(&bundle).unwrap();
    let link = dir.path().join("dockling-runc");
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_dockling"), &link).unwrap();
    let mut out = String::new();
    for (shown, args) in [
        (
            "dockling runtime spec --bundle bundle",
            vec!["runtime", "spec", "--bundle"],
        ),
        (
            "dockling runtime spec --bundle bundle",
            vec!["runtime", "spec", "--bundle"],
        ),
        ("dockling-runc --version", vec!["--version"]),
        (
            "dockling-runc --systemd-cgroup spec --bundle bundle",
            vec!["--systemd-cgroup", "spec", "--bundle"],
        ),
    ] {
        let mut cmd = if args[0] == "runtime" {
            Command::new(env!("CARGO_BIN_EXE_dockling"))
        } else {
            Command::new(&link)
        };
        cmd.args(&args).current_dir(dir.path());
        if args.last() == Some(&"--bundle") {
            cmd.arg("bundle");
        }
        let run = cmd.output().unwrap();
        out.push_str(&format!(
            "$ {shown}\n{}{}[exit {}]\n",
            String::from_utf8_lossy(&run.stdout),
            String::from_utf8_lossy(&run.stderr),
            run.status.code().unwrap_or(-1)
        ));
    }
    // The first spec wrote the template, the second refused and left it as it was.
    let cfg: serde_json::Value =
        serde_json::from_slice(&std::fs::read(bundle.join("config.json")).unwrap()).unwrap();
    assert_eq!(cfg["hostname"], "dockling");
    let out = out.replace(&format!("{}/", dir.path().display()), "");
    insta::assert_snapshot!("runtime_cli", out);
}

/// The runtime's record of a container and what `state`, `list`, `kill` and `delete` do with
/// it, on a record written as `create` writes one, for a process of this test's own (a
/// `sleep`): the status is read from that process each time, never stored. The transcript is
/// the book's.
#[test]
fn the_runtime_reads_status_from_the_process_and_deletes_only_what_stopped() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("state");
    let link = dir.path().join("dockling-runc");
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_dockling"), &link).unwrap();
    // Killed when the test ends, however it ends.
    struct Sleeper(std::process::Child);
    impl Drop for Sleeper {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let mut sleeper = Sleeper(Command::new("sleep").arg("1000").spawn().unwrap());
    let pid = sleeper.0.id();
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let start: u64 = stat[stat.rfind(')').unwrap() + 2..]
        .split(' ')
        .nth(19)
        .unwrap()
        .parse()
        .unwrap();
    // The runtime makes its root on first use; `create` makes the container's directory.
    let rt = |args: &[&str]| {
        let out = Command::new(&link)
            .arg("--root")
            .arg(&root)
            .args(args)
            .current_dir(dir.path())
            .output()
            .unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, out, err) = rt(&["list", "-q"]);
    assert_eq!((code, out.as_str()), (0, ""), "{err}");
    let cdir = root.join("web");
    std::fs::create_dir(&cdir).unwrap();
    let record = serde_json::json!({
        "ociVersion": "1.0.2", "id": "web", "creating": null,
        "init": {"pid": pid, "start": start},
        "bundle": "/srv/bundle", "rootfs": "/srv/bundle/rootfs",
        "created": "2026-11-30T12:00:00.000000000Z",
        "annotations": {"org.example.purpose": "demo"},
        "cgroup": null, "trace": null, "config": {}
    });
    std::fs::write(cdir.join("state.json"), record.to_string()).unwrap();
    let mut transcript = String::new();
    let mut step = |args: &[&str]| {
        let (code, out, err) = rt(args);
        transcript.push_str(&format!(
            "$ dockling-runc --root state {}\n{out}{err}[exit {code}]\n",
            args.join(" ")
        ));
        (code, out, err)
    };
    let (code, out, err) = step(&["state", "web"]);
    assert_eq!(code, 0, "{err}");
    let state: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(state["status"], "running");
    assert_eq!(state["pid"], pid);
    assert_eq!(state["annotations"]["org.example.purpose"], "demo");
    let (code, out, _) = step(&["list"]);
    assert_eq!(code, 0);
    assert!(out.contains("web") && out.contains("running"), "{out}");
    // Running: delete refuses, and the process and the record are left as they were.
    let (code, _, err) = step(&["delete", "web"]);
    assert_eq!(code, 1);
    assert!(err.contains("not stopped: running"), "{err}");
    assert!(cdir.join("state.json").exists());
    assert_eq!(sleeper.0.try_wait().unwrap(), None);
    let (code, _, err) = step(&["kill", "web", "KILL"]);
    assert_eq!(code, 0, "{err}");
    // Ended (the test, its parent, collects it as conmon would): stopped, pid 0.
    let status = sleeper.0.wait().unwrap();
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(status.signal(), Some(libc::SIGKILL));
    let (code, out, _) = step(&["state", "web"]);
    assert_eq!(code, 0);
    let state: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        (state["status"].as_str(), state["pid"].as_i64()),
        (Some("stopped"), Some(0))
    );
    let (code, _, err) = step(&["kill", "web"]);
    assert_eq!(code, 1);
    assert!(err.contains("is not running (stopped)"), "{err}");
    let (code, _, err) = step(&["delete", "web"]);
    assert_eq!(code, 0, "{err}");
    assert!(!cdir.exists());
    assert_eq!(std::fs::read_dir(&root).unwrap().count(), 0, "nothing left");
    let (code, _, err) = step(&["state", "web"]);
    assert_eq!(code, 1);
    assert!(err.contains("container \"web\" does not exist"), "{err}");
    let (code, _, _) = step(&["delete", "web"]);
    assert_eq!(code, 1);
    let (code, _, _) = step(&["delete", "--force", "web"]);
    assert_eq!(code, 0);
    let (code, _, err) = step(&["state", "../etc"]);
    assert_eq!(code, 1);
    assert!(err.contains("invalid container id"), "{err}");
    let (code, _, _) = step(&["checkpoint", "web"]);
    assert_eq!(code, 1);
    // The pid, and in `list` its cell with its padding (the column is as wide as the longest
    // pid up to 7 digits: 10), so the rows line up whatever the pid's length.
    let transcript = transcript.replace(&format!("\"pid\": {pid},"), "\"pid\": [PID],");
    let transcript = regex::Regex::new(&format!(r"(?m)^web {{7}}{pid} +running"))
        .unwrap()
        .replace_all(&transcript, "web       [PID]     running")
        .into_owned();
    insta::assert_snapshot!("runtime_state", transcript);
}
