//! The one harness for CLI tests: a scratch store per test, the real binary, filtered output.
//!
//! Every test that starts containers needs root; `Lab::new` fails loudly (never skips) when
//! it is missing. Run the suite with `sudo scripts/test`, which also puts it in a private mount
//! and network namespace.
#![allow(dead_code)]

use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// What a dockling command printed and returned.
#[derive(Debug)]
pub struct Out {
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
    /// Exit code.
    pub code: i32,
}

impl From<Output> for Out {
    fn from(o: Output) -> Out {
        Out {
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
            code: o.status.code().unwrap_or(-1),
        }
    }
}

impl Out {
    /// Panic with everything printed unless the exit code is `code`.
    pub fn expect_code(&self, code: i32) -> &Self {
        assert_eq!(
            self.code, code,
            "exit code\nstdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        );
        self
    }

    /// Panic with everything printed unless the exit code is `code` and standard error
    /// contains `text`.
    pub fn expect_stderr(&self, code: i32, text: &str) -> &Self {
        self.expect_code(code);
        assert!(self.stderr.contains(text), "{}", self.stderr);
        self
    }

    /// Panic with everything printed unless the exit code is `code` and standard output
    /// contains `text`.
    pub fn expect_stdout(&self, code: i32, text: &str) -> &Self {
        self.expect_code(code);
        assert!(self.stdout.contains(text), "{}", self.stdout);
        self
    }
}

/// Fail loudly when not root.
pub fn require_root() {
    assert!(
        nix_is_root(),
        "these tests start real containers and need root: run them with `sudo scripts/test`"
    );
}

fn nix_is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// The busybox rootfs tarball, built once per machine from busybox-static (under a lock, so
/// parallel tests don't race).
pub fn busybox_tar() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/test-fixtures");
    std::fs::create_dir_all(&dir).unwrap();
    let tar = dir.join("busybox-rootfs.tar");
    let lock = File::create(dir.join(".lock")).unwrap();
    // SAFETY: flock on a file we hold open; released when `lock` is dropped.
    unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX) };
    if !tar.exists() {
        let tmp = dir.join("busybox-rootfs.tar.tmp");
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/busybox-rootfs");
        let st = Command::new(&script)
            .arg(&tmp)
            .status()
            .expect("run scripts/busybox-rootfs");
        assert!(st.success(), "scripts/busybox-rootfs failed: is busybox-static installed? (scripts/test installs it)");
        std::fs::rename(&tmp, &tar).unwrap();
    }
    tar
}

/// A scratch store root with its own (empty) config file.
pub struct Lab {
    pub dir: tempfile::TempDir,
}

impl Lab {
    /// An empty store.
    pub fn new() -> Lab {
        require_root();
        let dir = tempfile::Builder::new()
            .prefix("dockling-test-")
            .tempdir()
            .unwrap();
        let lab = Lab { dir };
        std::fs::write(lab.dir.path().join("config.yaml"), lab.base_config()).unwrap();
        lab
    }

    /// A store holding `busybox:latest`.
    pub fn with_busybox() -> Lab {
        let lab = Lab::new();
        let tar = busybox_tar();
        lab.cmd(&["import", tar.to_str().unwrap(), "busybox:latest"])
            .expect_code(0);
        lab
    }

    /// `{{.State.Status}} {{.State.ExitCode}}` of container `name` (inspect must succeed).
    #[allow(dead_code)]
    pub fn state(&self, name: &str) -> String {
        let o = self.cmd(&[
            "inspect",
            "-f",
            "{{.State.Status}} {{.State.ExitCode}}",
            name,
        ]);
        o.expect_code(0);
        o.stdout.trim().to_string()
    }

    /// The pid of container `id`'s monitor (a detached run's), from its engine lock.
    #[allow(dead_code)]
    pub fn monitor_pid(&self, id: &str) -> i32 {
        let lock = self.root().join("containers").join(id).join("engine.lock");
        std::fs::read_to_string(&lock)
            .unwrap_or_else(|e| panic!("{}: {e}", lock.display()))
            .split_whitespace()
            .next()
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("no pid in {}", lock.display()))
    }

    /// The config every test starts from: its own cgroup parent, removed when the lab drops.
    pub fn base_config(&self) -> String {
        format!("cgroup-parent: {}\n", self.cgroup_parent())
    }

    /// `dockling-test-<this lab's directory name>`.
    pub fn cgroup_parent(&self) -> String {
        format!(
            "dockling-test-{}",
            self.dir
                .path()
                .file_name()
                .unwrap()
                .to_string_lossy()
                .trim_start_matches("dockling-test-")
        )
    }

    /// The store root.
    pub fn root(&self) -> PathBuf {
        self.dir.path().join("root")
    }

    /// A `dockling` command against this store (stdin closed). It explains in English
    /// whatever the caller's locale: the snapshots and the texts the tests look for are the
    /// English ones (tests/lang.rs tests the other languages).
    pub fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_dockling"));
        for v in ["DOCKLING_LANG", "LC_ALL", "LC_MESSAGES", "LANG"] {
            c.env_remove(v);
        }
        c.env("DOCKLING_ROOT", self.root())
            .env("DOCKLING_CONFIG", self.dir.path().join("config.yaml"))
            .env("NO_COLOR", "1")
            .args(args)
            .stdin(Stdio::null());
        c
    }

    /// Run `dockling args…`.
    pub fn cmd(&self, args: &[&str]) -> Out {
        self.command(args).output().expect("run dockling").into()
    }

    /// Run `dockling args…` with extra environment variables.
    pub fn cmd_env(&self, args: &[&str], env: &[(&str, &std::ffi::OsStr)]) -> Out {
        let mut c = self.command(args);
        for (k, v) in env {
            c.env(k, v);
        }
        c.output().expect("run dockling").into()
    }

    /// Run `dockling run --rm args…`.
    pub fn run(&self, args: &[&str]) -> Out {
        let mut all = vec!["run", "--rm"];
        all.extend_from_slice(args);
        self.cmd(&all)
    }

    /// Run `dockling run --rm args…`, which must exit 0: its stdout. Use it before a negative
    /// check (`assert_ne!`), which would otherwise pass when the container never ran.
    pub fn ok(&self, args: &[&str]) -> String {
        let o = self.run(args);
        o.expect_code(0);
        o.stdout
    }

    /// Replace what changes from run to run, for snapshots.
    pub fn filter(&self, s: &str) -> String {
        let mut out = s.replace(&self.root().display().to_string(), "[ROOT]");
        for (re, with) in [
            (r"sha256:[0-9a-f]{64}", "sha256:[DIGEST]"),
            (r"\b[0-9a-f]{64}\b", "[ID]"),
            (r"\b[0-9a-f]{12}\b", "[ID]"),
            (r"<\d+\.\d+ ms>", "<[TIME]>"),
            (
                r"(Less than a second|About a minute|About an hour|An? (day|week|month|year)|\d+ (seconds?|minutes?|hours?|days?|weeks?|months?|years?)) ago",
                "[AGO]",
            ),
            (r"\b\d+(\.\d+)?(B|kB|MB|GB)\b", "[SIZE]"),
        ] {
            out = regex_replace(&out, re, with);
        }
        out
    }

    /// Every cgroup directory below this lab's cgroup parent, in every hierarchy (each v1
    /// hierarchy under /sys/fs/cgroup, and the v2 tree at its root), sorted.
    pub fn cgroups_left(&self) -> Vec<PathBuf> {
        let mut roots: Vec<PathBuf> = std::fs::read_dir("/sys/fs/cgroup")
            .into_iter()
            .flatten()
            .flatten()
            .map(|h| h.path())
            .collect();
        roots.push("/sys/fs/cgroup".into());
        let mut out: Vec<PathBuf> = roots
            .iter()
            .flat_map(|h| {
                std::fs::read_dir(h.join(self.cgroup_parent()))
                    .into_iter()
                    .flatten()
            })
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.is_dir())
            .collect();
        out.sort();
        out
    }

    /// Every container directory left in the store.
    pub fn containers_left(&self) -> Vec<String> {
        std::fs::read_dir(self.root().join("containers"))
            .map(|d| {
                d.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .filter(|n| !n.starts_with('.'))
                    .collect()
            })
            .unwrap_or_default()
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        // A lab registry this test started is stopped (by the pid dockling recorded).
        if self.root().join("lab/state.json").exists() {
            let _ = self.cmd(&["lab", "down"]);
        }
        // Remove what the test left: containers (and their cgroups) through dockling itself.
        let ids = self.cmd(&["ps", "-aq", "--no-trunc"]).stdout;
        for id in ids.split_whitespace() {
            let _ = self.cmd(&["rm", "-f", id]);
        }
        // The lab's cgroup parent, in every hierarchy (empty once its containers are gone).
        for h in std::fs::read_dir("/sys/fs/cgroup")
            .into_iter()
            .flatten()
            .flatten()
        {
            let _ = std::fs::remove_dir(h.path().join(self.cgroup_parent()));
        }
        let _ = std::fs::remove_dir(Path::new("/sys/fs/cgroup").join(self.cgroup_parent()));
        // `--layers erofs` leaves its layers mounted (shared by containers, as on a host):
        // unmounted here, so the lab's directory can go.
        let root = self.root().display().to_string();
        let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        for m in mounts.lines().filter_map(|l| l.split(' ').nth(4)) {
            if m.starts_with(&root) {
                let _ = nix::mount::umount2(Path::new(m), nix::mount::MntFlags::MNT_DETACH);
            }
        }
    }
}

/// Replace every match of `re` (regex is a dev-dependency only).
fn regex_replace(s: &str, re: &str, with: &str) -> String {
    regex::Regex::new(re)
        .unwrap()
        .replace_all(s, with)
        .into_owned()
}

/// Poll `f` (every 20 ms) until it gives a value, and return it; panic, naming `what` was
/// awaited, when `timeout` passes first. Tests wait on conditions, never on sleeps.
pub fn wait_until<T>(timeout: std::time::Duration, what: &str, f: impl FnMut() -> Option<T>) -> T {
    wait_until_else(timeout, what, f, || {})
}

/// [`wait_until`], calling `give_up` (kill what the test started) before it panics.
pub fn wait_until_else<T>(
    timeout: std::time::Duration,
    what: &str,
    mut f: impl FnMut() -> Option<T>,
    give_up: impl FnOnce(),
) -> T {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return v;
        }
        if std::time::Instant::now() >= deadline {
            give_up();
            panic!("gave up after {timeout:?} waiting for {what}");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// Poll `cond` (every 20 ms) until it holds or `within` passes; whether it held. For checks
/// that collect a failure instead of panicking (the fault-injection sweeps).
#[allow(dead_code)]
pub fn holds_within(within: std::time::Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = std::time::Instant::now() + within;
    loop {
        if cond() {
            return true;
        }
        if std::time::Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// A free TCP port on loopback (for a registry a test starts).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub mod registry;

// tree_state, bait_dir, the raw-header tar builder (`E`, `tar_of`) and host_char_device:
// one file shared with the crate's unit tests.
#[path = "../../src/testutil.rs"]
mod testutil;
#[allow(unused_imports)]
pub use testutil::*;

/// A store with busybox and `name` = busybox + one more layer, the uncompressed tar `layer`
/// (`Store::build` on top of the imported busybox, so the layer really sits above another
/// one, as in a pulled image).
pub fn image_on_busybox(name: &str, layer: &[u8]) -> Lab {
    let lab = Lab::with_busybox();
    layers_on_busybox(&lab, name, &[layer.to_vec()]);
    lab
}

/// In a store that has busybox: `name` = busybox + `layers` (uncompressed tars, bottom
/// first), each built on the one before (the ones between stay untagged).
pub fn layers_on_busybox(lab: &Lab, name: &str, layers: &[Vec<u8>]) {
    use dockling::image::{reference::Reference, store::Store};
    let store = Store::open(&lab.root()).unwrap();
    let mut base = store.find("busybox:latest").unwrap();
    let tag = Reference::parse(name).unwrap();
    for (i, layer) in layers.iter().enumerate() {
        let last = i + 1 == layers.len();
        base = store
            .build(
                Some(&base),
                layer,
                &[],
                "2001-09-09T01:46:40Z",
                "hostile layer",
                last.then_some(&tag),
            )
            .unwrap();
    }
}

/// Wait for `child` to exit and return its status; after `timeout` (a failure guard, not a
/// timing), SIGKILL it and everything under it and panic, naming `what` was awaited.
pub fn wait_exit(
    child: &mut std::process::Child,
    timeout: std::time::Duration,
    what: &str,
) -> std::process::ExitStatus {
    let pid = child.id() as i32;
    wait_until_else(
        timeout,
        what,
        || child.try_wait().unwrap(),
        || kill_tree(pid),
    )
}

/// SIGKILL `pid` and every process below it (script(1), the dockling it runs, the container),
/// so a test that failed leaves nothing running.
pub fn kill_tree(pid: i32) {
    let mut todo = vec![pid];
    let mut all = Vec::new();
    while let Some(p) = todo.pop() {
        all.push(p);
        for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
            let Ok(stat) = std::fs::read_to_string(e.path().join("stat")) else {
                continue;
            };
            // pid (comm) state ppid ...: the comm may hold spaces, so split after its ")".
            let ppid = stat
                .rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().nth(1))
                .and_then(|p| p.parse::<i32>().ok());
            if ppid == Some(p) {
                if let Ok(child) = e.file_name().to_string_lossy().parse() {
                    todo.push(child);
                }
            }
        }
    }
    for p in all {
        // A process this test started, or one started under it.
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(p),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
}

/// A dockling command running under script(1), which gives it a pseudo-terminal of its own as
/// a user's terminal would be. Its output is read on a thread of its own, so a full pipe
/// cannot stall it; stdin stays open (as a terminal's would) until it ends.
pub struct InTerminal {
    child: std::process::Child,
    /// What the test types.
    pub stdin: std::process::ChildStdin,
    reader: std::thread::JoinHandle<Vec<u8>>,
}

impl Lab {
    /// `sh -c '<setup>NO_COLOR=1 DOCKLING_ROOT=… DOCKLING_CONFIG=… <wrapper>dockling <args>'`
    /// under script(1): `setup` runs first in the terminal (`stty rows 33; `), `wrapper`
    /// wraps dockling (`strace -f -o x `).
    pub fn in_terminal(&self, setup: &str, wrapper: &str, args: &str) -> InTerminal {
        let cmd = format!(
            "{setup}NO_COLOR=1 DOCKLING_ROOT={} DOCKLING_CONFIG={} {wrapper}{} {args}",
            self.root().display(),
            self.dir.path().join("config.yaml").display(),
            env!("CARGO_BIN_EXE_dockling")
        );
        let mut child = Command::new("script")
            .args(["-qec", &cmd, "/dev/null"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("script(1) from util-linux (scripts/test installs bsdutils)");
        let stdin = child.stdin.take().unwrap();
        let mut stdout = child.stdout.take().unwrap();
        let reader = std::thread::spawn(move || {
            let mut out = Vec::new();
            let _ = std::io::Read::read_to_end(&mut stdout, &mut out);
            out
        });
        InTerminal {
            child,
            stdin,
            reader,
        }
    }
}

impl InTerminal {
    /// The pid of script(1), under which dockling runs.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Send 256 KiB of input while the program in the terminal writes (never blocking the
    /// test: what cannot go now goes at the next poll), until it ends: its output, its exit
    /// code, the bytes sent. The 90 s wait is a failure guard for a relay that deadlocks.
    pub fn flooded(self) -> (String, i32, usize) {
        {
            use nix::fcntl::{fcntl, FcntlArg, OFlag};
            let fd = self.stdin.as_raw_fd();
            let flags = OFlag::from_bits_retain(fcntl(fd, FcntlArg::F_GETFL).unwrap());
            fcntl(fd, FcntlArg::F_SETFL(flags | OFlag::O_NONBLOCK)).unwrap();
        }
        let chunk = [b'k'; 8192];
        let mut sent = 0usize;
        let (out, code) = self.wait(std::time::Duration::from_secs(90), |stdin| {
            if sent < 256 << 10 {
                if let Ok(n) = std::io::Write::write(stdin, &chunk) {
                    sent += n;
                }
            }
        });
        (out, code, sent)
    }

    /// Wait for the end (after `timeout`, a failure guard, everything is killed and the test
    /// panics), calling `tick` with stdin at every poll (a test under `--step` presses Enter
    /// there). The output without `\r`, and the exit code.
    pub fn wait(
        mut self,
        timeout: std::time::Duration,
        mut tick: impl FnMut(&mut std::process::ChildStdin),
    ) -> (String, i32) {
        let pid = self.child.id() as i32;
        let child = &mut self.child;
        let stdin = &mut self.stdin;
        let status = wait_until_else(
            timeout,
            "the command in the terminal to end",
            || {
                let done = child.try_wait().unwrap();
                if done.is_none() {
                    tick(stdin);
                }
                done
            },
            || kill_tree(pid),
        );
        drop(self.stdin);
        let out = String::from_utf8_lossy(&self.reader.join().unwrap()).replace('\r', "");
        (out, status.code().unwrap_or(-1))
    }
}

/// A network namespace of a test's own (made on a short-lived thread that unshares, so the
/// test process stays where it was), kept by a descriptor, lo up. `command` runs a program in
/// it (`setns` before `exec`), so a `dockling run -d`'s monitor and its containers live there
/// too, and `dockling0` with its veths is this test's alone: tests running in parallel never
/// share a bridge or an address.
pub struct NetNs {
    fd: std::os::fd::OwnedFd,
}

impl NetNs {
    /// A new namespace with loopback up.
    pub fn new() -> NetNs {
        require_root();
        let fd = std::thread::spawn(|| {
            nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET)
                .expect("unshare(CLONE_NEWNET): the tests run as root");
            std::os::fd::OwnedFd::from(
                File::open("/proc/thread-self/ns/net").expect("/proc/thread-self/ns/net"),
            )
        })
        .join()
        .expect("the thread that makes the namespace");
        let ns = NetNs { fd };
        let st = ns
            .command("ip")
            .args(["link", "set", "lo", "up"])
            .status()
            .expect("ip (iproute2) is installed");
        assert!(st.success(), "ip link set lo up in the test's namespace");
        ns
    }

    /// `command` run in this namespace.
    pub fn enter(&self, mut command: Command) -> Command {
        use std::os::unix::process::CommandExt;
        let fd = self.fd.as_raw_fd();
        // SAFETY: setns is async-signal-safe; the descriptor outlives the spawn.
        unsafe {
            command.pre_exec(move || {
                if libc::setns(fd, libc::CLONE_NEWNET) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        command
    }

    /// Program `prog` in this namespace.
    pub fn command(&self, prog: &str) -> Command {
        self.enter(Command::new(prog))
    }

    /// `dockling args…` of `lab`, in this namespace.
    pub fn dockling(&self, lab: &Lab, args: &[&str]) -> Out {
        self.enter(lab.command(args))
            .output()
            .expect("run dockling")
            .into()
    }

    /// `f` run on a short-lived thread that joined this namespace: sockets it makes are of
    /// the namespace (and stay there when returned).
    #[allow(dead_code)]
    pub fn within<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> T {
        let fd = self.fd.as_raw_fd();
        std::thread::spawn(move || {
            // SAFETY: setns on this thread alone; the descriptor outlives the thread.
            assert_eq!(unsafe { libc::setns(fd, libc::CLONE_NEWNET) }, 0, "setns");
            f()
        })
        .join()
        .expect("the thread in the namespace")
    }

    /// A TCP socket listening on `addr` in this namespace.
    #[allow(dead_code)]
    pub fn listen_tcp(&self, addr: &str) -> std::net::TcpListener {
        let addr = addr.to_string();
        self.within(move || {
            std::net::TcpListener::bind(&addr).unwrap_or_else(|e| panic!("bind {addr}: {e}"))
        })
    }

    /// A path naming this namespace for another process (`ip link set X netns PATH`):
    /// this process's descriptor of it under /proc.
    #[allow(dead_code)]
    pub fn path(&self) -> String {
        format!("/proc/{}/fd/{}", std::process::id(), self.fd.as_raw_fd())
    }

    /// `sh -c script` in this namespace, which must succeed.
    #[allow(dead_code)]
    pub fn sh(&self, script: &str) {
        let o: Out = self
            .command("sh")
            .args(["-c", script])
            .output()
            .expect("sh")
            .into();
        assert_eq!(o.code, 0, "{script}: {}", o.stderr);
    }

    /// The names of the links in this namespace (`ip -j link`).
    pub fn links(&self) -> Vec<String> {
        let out = self
            .command("ip")
            .args(["-j", "link"])
            .output()
            .expect("ip (iproute2) is installed");
        assert!(out.status.success(), "ip -j link");
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("ip -j prints JSON");
        v.as_array()
            .unwrap()
            .iter()
            .map(|l| l["ifname"].as_str().unwrap().to_string())
            .collect()
    }
}

// The network tests' shared pieces (tests/bridge.rs, publish.rs, user_networks.rs,
// explain_port.rs): web containers, HTTP from the test's namespace, proxies, networks.

/// A detached busybox httpd serving `text` on port `listen` (`80`, `127.0.0.1:80`), with
/// `flags` before the image (`--network`, `-p`, …): its id.
pub fn web(ns: &NetNs, lab: &Lab, name: &str, listen: &str, text: &str, flags: &[&str]) -> String {
    let script = format!(
        "mkdir -p /www && echo {text} > /www/index.html && exec httpd -f -p {listen} -h /www"
    );
    ns.run_detached(
        lab,
        &[&["--name", name][..], flags].concat(),
        &["sh", "-c", &script],
    )
}

impl NetNs {
    /// `dockling run <before…> busybox <command…>` in this namespace: its output, whose exit
    /// code the caller checks.
    pub fn busybox(&self, lab: &Lab, before: &[&str], command: &[&str]) -> Out {
        let args = [&["run"][..], before, &["busybox"], command].concat();
        self.dockling(lab, &args)
    }

    /// `dockling run -d <flags…> busybox <command…>` in this namespace, which must succeed:
    /// the new container's id.
    pub fn run_detached(&self, lab: &Lab, flags: &[&str], command: &[&str]) -> String {
        let o = self.busybox(lab, &[&["-d"][..], flags].concat(), command);
        o.expect_code(0);
        o.stdout.trim().to_string()
    }

    /// `dockling run --rm <flags…> busybox <command…>` in this namespace: its output, whose
    /// exit code the caller checks.
    pub fn run_rm(&self, lab: &Lab, flags: &[&str], command: &[&str]) -> Out {
        self.busybox(lab, &[&["--rm"][..], flags].concat(), command)
    }
}

impl NetNs {
    /// One `curl url` from this namespace (2 s at most): the body, or None.
    pub fn curl_once(&self, url: &str) -> Option<String> {
        let out = self
            .command("curl")
            .args(["-sS", "--max-time", "2", url])
            .output()
            .expect("curl is installed");
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// `curl url` from this namespace, retried (10 s) until it answers: the body.
    pub fn http_get(&self, url: &str) -> String {
        wait_until(
            std::time::Duration::from_secs(10),
            &format!("{url} to answer"),
            || self.curl_once(url),
        )
    }
}

/// The pids of the `dockling proxy` processes whose parent is `ppid` (a monitor).
pub fn proxies_of(ppid: i32) -> Vec<i32> {
    let mut out = vec![];
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        let after = stat.rsplit_once(") ").map(|(_, r)| r).unwrap_or("");
        let parent: i32 = after
            .split_whitespace()
            .nth(1)
            .and_then(|p| p.parse().ok())
            .unwrap_or(0);
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
        if parent == ppid && args.get(1) == Some(&&b"proxy"[..]) {
            out.push(pid);
        }
    }
    out
}

/// `dockling network create args…` in `ns`, which must succeed: the new network's full id.
pub fn create_network(ns: &NetNs, lab: &Lab, args: &[&str]) -> String {
    let mut a = vec!["network", "create"];
    a.extend_from_slice(args);
    let o = ns.dockling(lab, &a);
    o.expect_code(0);
    let id = o.stdout.trim().to_string();
    assert_eq!(id.len(), 64, "network create prints the full id: {id:?}");
    assert!(id.chars().all(|c| c.is_ascii_hexdigit()), "{id}");
    id
}

/// True once process `pid` holds a connected socket (an attach client reached the monitor).
pub fn has_socket(pid: u32) -> bool {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .into_iter()
        .flatten()
        .flatten()
        .any(|e| {
            std::fs::read_link(e.path()).is_ok_and(|l| l.to_string_lossy().starts_with("socket:"))
        })
}

impl Lab {
    /// `dockling attach args…` started with these stdin and stdout, returned once it has
    /// connected to the monitor (it holds a socket; 20 s at most).
    pub fn attach_connected(
        &self,
        args: &[&str],
        stdin: Stdio,
        stdout: Stdio,
    ) -> std::process::Child {
        let mut all = vec!["attach"];
        all.extend_from_slice(args);
        let child = self
            .command(&all)
            .stdin(stdin)
            .stdout(stdout)
            .spawn()
            .unwrap();
        let pid = child.id();
        wait_until(
            std::time::Duration::from_secs(20),
            "attach to connect",
            || has_socket(pid).then_some(()),
        );
        child
    }
}

/// Unmount everything mounted at or below `dir` (deepest first), as a harness does before it
/// removes a directory a peer (podman, containerd) mounted things under.
pub fn unmount_under(dir: &Path) {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let mut under: Vec<&str> = info
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .filter(|m| Path::new(m).starts_with(dir))
        .collect();
    under.sort_by_key(|m| std::cmp::Reverse(m.len()));
    for m in under {
        let _ = Command::new("umount").arg(m).status();
    }
}

/// The events of a JSON-lines trace file (`--trace=json`, `DOCKLING_TRACE`), each parsed.
pub fn trace_events(file: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(file)
        .unwrap_or_else(|e| panic!("{}: {e}", file.display()))
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

/// `dockling trace render FILE` succeeds; its SVG.
pub fn render_trace(file: &Path) -> String {
    let render = succeeded(
        Command::new(env!("CARGO_BIN_EXE_dockling"))
            .args(["trace", "render"])
            .arg(file),
    );
    String::from_utf8_lossy(&render.stdout).into_owned()
}

/// Run `command` to its end; it must succeed (its stderr is the message if not).
pub fn succeeded(command: &mut Command) -> std::process::Output {
    let out = command.output().unwrap();
    assert!(
        out.status.success(),
        "{command:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// `dockling runtime spec --bundle BUNDLE`: the runtime's template `config.json` written into
/// the bundle, and read back for a test to change (then [`write_config`]).
pub fn runtime_spec(bundle: &Path) -> serde_json::Value {
    succeeded(
        Command::new(env!("CARGO_BIN_EXE_dockling"))
            .args(["runtime", "spec", "--bundle"])
            .arg(bundle),
    );
    serde_json::from_slice(&std::fs::read(bundle.join("config.json")).unwrap()).unwrap()
}

/// Write `cfg` as the bundle's `config.json`.
pub fn write_config(bundle: &Path, cfg: &serde_json::Value) {
    std::fs::write(bundle.join("config.json"), serde_json::to_vec(cfg).unwrap()).unwrap();
}

/// Remove the (empty) cgroup `name` right under every hierarchy's root, v1 and v2.
pub fn remove_cgroup_parent(name: &str) {
    for h in std::fs::read_dir("/sys/fs/cgroup")
        .into_iter()
        .flatten()
        .flatten()
    {
        let _ = std::fs::remove_dir(h.path().join(name));
    }
    let _ = std::fs::remove_dir(Path::new("/sys/fs/cgroup").join(name));
}
