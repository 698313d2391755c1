//! Docker's chain for real: containerd (Debian's), its runc shim, and `dockling-runc` as the
//! runtime the shim calls (`ctr run --runc-binary`), as dockerd would have containerd do it.
//! containerd runs with a root, state and socket of the test's own, in the test's network
//! namespace (scripts/test's), and its own namespace of containers.

mod common;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A containerd of the test's own; ended (by its pid) and cleaned up on drop.
struct Containerd {
    dir: tempfile::TempDir,
    daemon: Child,
    /// The containerd namespace the test's containers live in (also the shim's runc root's
    /// last part and the cgroup parent's name).
    ns: String,
    runtime: PathBuf,
}

impl Containerd {
    /// Start containerd with `env` (the shim it starts, and so dockling-runc, inherits it).
    fn start(env: &[(&str, &Path)]) -> Containerd {
        common::require_root();
        let dir = tempfile::Builder::new()
            .prefix("dockling-containerd-")
            .tempdir()
            .unwrap();
        let d = dir.path();
        std::fs::write(
            d.join("config.toml"),
            format!(
                "version = 2\nroot = \"{root}\"\nstate = \"{state}\"\n\
                 disabled_plugins = [\"io.containerd.grpc.v1.cri\"]\n\
                 [grpc]\n  address = \"{sock}\"\n",
                root = d.join("root").display(),
                state = d.join("state").display(),
                sock = d.join("c.sock").display(),
            ),
        )
        .unwrap();
        let runtime = d.join("dockling-runc");
        std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_dockling"), &runtime).unwrap();
        let log = std::fs::File::create(d.join("containerd.log")).unwrap();
        let mut cmd = Command::new("containerd");
        cmd.arg("--config")
            .arg(d.join("config.toml"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let daemon = cmd.spawn().expect(
            "containerd is not installed: scripts/test installs it (apt-get install containerd)",
        );
        let c = Containerd {
            // Unique per test: two tests' shims would share the runc root otherwise.
            ns: format!(
                "dockling-test-{}",
                dir.path()
                    .file_name()
                    .unwrap()
                    .to_string_lossy()
                    .trim_start_matches("dockling-containerd-")
            ),
            dir,
            daemon,
            runtime,
        };
        let sock = c.dir.path().join("c.sock");
        common::wait_until(Duration::from_secs(30), "containerd's socket", || {
            (sock.exists() && c.ctr(&["version"]).code == 0).then_some(())
        });
        c
    }

    /// `ctr --address … -n <ns> args…`, stdin closed.
    fn ctr(&self, args: &[&str]) -> common::Out {
        Command::new("ctr")
            .arg("--address")
            .arg(self.dir.path().join("c.sock"))
            .args(["-n", &self.ns])
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("run ctr")
            .into()
    }

    /// `ctr run` through dockling-runc, `args` before the image (flags) and `cmd` after the id.
    fn run(&self, flags: &[&str], id: &str, cmd: &[&str]) -> common::Out {
        let runtime = self.runtime.to_str().unwrap();
        let mut all = vec!["run", "--runc-binary", runtime];
        all.extend_from_slice(flags);
        all.extend_from_slice(&[IMAGE, id]);
        all.extend_from_slice(cmd);
        self.ctr(&all)
    }

    /// The shim's runc root for this namespace: dockling-runc's records live there.
    fn runc_root(&self) -> PathBuf {
        Path::new("/run/containerd/runc").join(&self.ns)
    }

    /// `ctr task ls`'s STATUS for `id`, if it lists it.
    fn task_status(&self, id: &str) -> Option<String> {
        let o = self.ctr(&["task", "ls"]);
        o.expect_code(0);
        o.stdout
            .lines()
            .map(|l| l.split_whitespace().collect::<Vec<_>>())
            .find(|f| f.first() == Some(&id))
            .and_then(|f| f.get(2).map(|s| s.to_string()))
    }

    /// Give containerd the lab's busybox, saved by dockling.
    fn import_busybox(&self) {
        let lab = common::Lab::with_busybox();
        let tar = self.dir.path().join("busybox.tar");
        lab.cmd(&["save", "-o", tar.to_str().unwrap(), "busybox:latest"])
            .expect_code(0);
        self.ctr(&["image", "import", tar.to_str().unwrap()])
            .expect_code(0);
    }
}

const IMAGE: &str = "docker.io/library/busybox:latest";

impl Drop for Containerd {
    fn drop(&mut self) {
        // Whatever a failed test left: its tasks killed and deleted, its containers removed.
        if let Ok(o) = std::panic::catch_unwind(|| self.ctr(&["container", "ls", "-q"])) {
            for id in o.stdout.lines() {
                let _ = self.ctr(&["task", "kill", "-s", "KILL", id]);
                let _ = self.ctr(&["task", "rm", "-f", id]);
                let _ = self.ctr(&["container", "rm", id]);
            }
        }
        // SAFETY: signalling the containerd this test started, by its pid.
        unsafe { libc::kill(self.daemon.id() as i32, libc::SIGTERM) };
        let _ = self.daemon.wait();
        common::unmount_under(self.dir.path());
        let _ = std::fs::remove_dir_all(self.runc_root());
        // The namespace's cgroup parent, made by the runtime for `/<ns>/<id>` paths.
        common::remove_cgroup_parent(&self.ns);
    }
}

/// containerd's own calls through its shim: create with a pid file and a JSON log, start,
/// state, exec, kill, delete. Output and exit codes come back through the shim; a detached task is
/// listed running with the pid dockling-runc recorded, stopped once killed, and deleting it
/// leaves no record.
#[test]
fn ctr_runs_execs_kills_and_deletes_containers_through_dockling_runc() {
    let c = Containerd::start(&[]);
    c.import_busybox();
    let o = c.run(&["--rm"], "hello", &["echo", "hi from dockling"]);
    o.expect_code(0);
    assert_eq!(o.stdout, "hi from dockling\n", "{}", o.stderr);
    c.run(&["--rm"], "three", &["sh", "-c", "exit 3"])
        .expect_code(3);
    c.run(&["-d"], "sleeper", &["sleep", "100"]).expect_code(0);
    let pid: i32 = common::wait_until(Duration::from_secs(20), "the task running", || {
        let o = c.ctr(&["task", "ls"]);
        o.stdout
            .lines()
            .map(|l| l.split_whitespace().collect::<Vec<_>>())
            .find(|f| f.first() == Some(&"sleeper") && f.get(2) == Some(&"RUNNING"))
            .and_then(|f| f[1].parse().ok())
    });
    assert_eq!(
        std::fs::read(format!("/proc/{pid}/cmdline")).unwrap(),
        b"sleep\x00100\x00"
    );
    // The record the shim's runtime keeps is dockling-runc's, and says the same.
    let state = common::succeeded(
        Command::new(&c.runtime)
            .arg("--root")
            .arg(c.runc_root())
            .args(["state", "sleeper"]),
    );
    let v: serde_json::Value = serde_json::from_slice(&state.stdout).unwrap();
    assert_eq!(v["status"], "running");
    assert_eq!(v["pid"], pid);
    // `ctr task exec`: the shim calls `exec --process FILE --detach --pid-file …`, and the
    // process's output and exit code come back through it.
    let o = c.ctr(&[
        "task",
        "exec",
        "--exec-id",
        "e1",
        "sleeper",
        "sh",
        "-c",
        "echo in $(cat /proc/1/comm); exit 4",
    ]);
    o.expect_code(4);
    assert_eq!(o.stdout, "in sleep\n", "{}", o.stderr);
    c.ctr(&["task", "kill", "-s", "KILL", "sleeper"])
        .expect_code(0);
    common::wait_until(Duration::from_secs(20), "the task stopped", || {
        (c.task_status("sleeper").as_deref() == Some("STOPPED")).then_some(())
    });
    assert!(!Path::new(&format!("/proc/{pid}")).exists());
    c.ctr(&["task", "rm", "sleeper"]).expect_code(0);
    c.ctr(&["container", "rm", "sleeper"]).expect_code(0);
    assert_eq!(c.task_status("sleeper"), None);
    assert!(
        !c.runc_root().join("sleeper").exists(),
        "dockling-runc's record outlived delete"
    );
}

/// containerd passes no flags of dockling's: `DOCKLING_TRACE` in its environment (naming a
/// directory: one file per container) reaches the runtime through the shim, and the trace
/// holds what the shim asked for, down to the container's `execve`; `dockling trace render`
/// draws it.
#[test]
fn a_trace_directory_in_containerds_environment_gets_a_file_per_container() {
    let traces = tempfile::tempdir().unwrap();
    let c = Containerd::start(&[("DOCKLING_TRACE", traces.path())]);
    c.import_busybox();
    c.run(&["--rm"], "traced", &["echo", "traced"])
        .expect_code(0);
    let file = traces.path().join("traced.jsonl");
    let events = common::trace_events(&file);
    let has = |f: &dyn Fn(&serde_json::Value) -> bool| events.iter().any(f);
    assert!(has(
        &|e| e["step"] == "image.resolve" && e["variant"] == "bundle"
    ));
    assert!(has(
        &|e| e["syscall"] == "pivot_root" && e["process"] == "container"
    ));
    assert!(has(
        &|e| e["syscall"] == "execve" && e.to_string().contains("echo")
    ));
    assert!(common::render_trace(&file).contains("pivot_root"));
}
