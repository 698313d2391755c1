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

    /// A `dockling` command against this store (stdin closed).
    pub fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_dockling"));
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
pub fn wait_until<T>(
    timeout: std::time::Duration,
    what: &str,
    mut f: impl FnMut() -> Option<T>,
) -> T {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "gave up after {timeout:?} waiting for {what}"
        );
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

/// Everything about a host tree that a hostile image could change: per path (relative to the
/// root), the file type and mode, owner, mtime, size and content (or link target). Compare two
/// of them with `assert_eq!` to prove "untouched" — names and contents alone miss a chmod.
pub fn tree_state(root: &Path) -> std::collections::BTreeMap<PathBuf, String> {
    use std::os::unix::fs::MetadataExt;
    let mut out = std::collections::BTreeMap::new();
    let mut todo = vec![root.to_path_buf()];
    while let Some(p) = todo.pop() {
        let Ok(md) = std::fs::symlink_metadata(&p) else {
            continue;
        };
        let what = if md.file_type().is_symlink() {
            format!("-> {}", std::fs::read_link(&p).unwrap().display())
        } else if md.is_file() {
            // Reading a FIFO or device would hang or change it: only regular files are read.
            format!("{:?}", std::fs::read(&p).unwrap_or_default())
        } else {
            String::new()
        };
        if md.is_dir() {
            for e in std::fs::read_dir(&p).unwrap().flatten() {
                todo.push(e.path());
            }
        }
        out.insert(
            p.strip_prefix(root).unwrap().to_path_buf(),
            format!(
                "mode {:o} owner {}:{} mtime {}.{} size {} rdev {} {what}",
                md.mode(),
                md.uid(),
                md.gid(),
                md.mtime(),
                md.mtime_nsec(),
                md.size(),
                md.rdev()
            ),
        );
    }
    out
}

/// A host directory standing in for "the host" in escape tests: a few files and directories
/// with unusual modes, owners and times, so a chmod, chown, utimes, write or new file through
/// a hostile symlink shows in [`tree_state`].
pub fn bait_dir() -> tempfile::TempDir {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::Builder::new()
        .prefix("dockling-bait-")
        .tempdir()
        .unwrap();
    let p = dir.path();
    std::fs::write(p.join("file"), "host secret\n").unwrap();
    std::fs::set_permissions(p.join("file"), std::fs::Permissions::from_mode(0o600)).unwrap();
    std::fs::create_dir(p.join("sub")).unwrap();
    // A user no image has: a uid of 4242 in a container shows that this file was read.
    std::fs::write(
        p.join("sub/passwd"),
        "root:x:0:0::/root:/bin/sh\nbait:x:4242:4242::/:/bin/sh\n",
    )
    .unwrap();
    std::os::unix::fs::chown(p.join("sub/passwd"), Some(1234), Some(4321)).unwrap();
    std::fs::set_permissions(p.join("sub"), std::fs::Permissions::from_mode(0o750)).unwrap();
    for f in ["file", "sub/passwd", "sub", ""] {
        let c = std::ffi::CString::new(p.join(f).as_os_str().as_encoded_bytes()).unwrap();
        let times = [
            libc::timespec {
                tv_sec: 1_000_000_000,
                tv_nsec: 0,
            },
            libc::timespec {
                tv_sec: 1_000_000_000,
                tv_nsec: 0,
            },
        ];
        // SAFETY: a valid C string and two timespecs.
        assert_eq!(
            unsafe { libc::utimensat(libc::AT_FDCWD, c.as_ptr(), times.as_ptr(), 0) },
            0
        );
    }
    dir
}
