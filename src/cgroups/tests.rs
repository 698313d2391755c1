use super::*;
use crate::sys::linux::Linux;
use crate::sys::record::Recorder;
use crate::trace::Tracer;

const ID: &str = "c0ffee";

fn limits() -> Limits {
    Limits {
        memory: Some(64 << 20),
        cpus: Some(0.5),
        pids: Some(50),
    }
}

/// Every v1 hierarchy this host kind mounts (cpu and cpuacct apart, as here; net_cls and
/// net_prio together, as on most distributions).
const V1_HIERARCHIES: &[&str] = &[
    "memory",
    "cpu",
    "cpuacct",
    "pids",
    "freezer",
    "devices",
    "cpuset",
    "blkio",
    "net_cls,net_prio",
    "perf_event",
    "name=systemd",
];

fn v1_layout(root: &Path) -> Vec<Hierarchy> {
    V1_HIERARCHIES
        .iter()
        .map(|c| Hierarchy {
            mount_point: root.join(c.trim_start_matches("name=")),
            options: c.to_string(),
        })
        .collect()
}

/// A fake v1 root whose cpuset hierarchy has CPUs and memory nodes, as a real one has.
fn fake_v1_root() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("cpuset")).unwrap();
    std::fs::write(dir.path().join("cpuset/cpuset.cpus"), "0-3\n").unwrap();
    std::fs::write(dir.path().join("cpuset/cpuset.mems"), "0\n").unwrap();
    dir
}

fn recorded_with(cg: &Cgroup, devices: &[devices::Rule]) -> String {
    let rec = Recorder::new();
    let sys = Sys::new(Box::new(rec.clone()), Tracer::off());
    cg.create(&sys, &limits(), devices).unwrap();
    cg.join(&sys, 4242).unwrap();
    cg.destroy(&sys).unwrap();
    rec.script()
}

fn recorded(cg: &Cgroup) -> String {
    recorded_with(cg, devices::DEFAULT)
}

#[test]
fn v1_script() {
    let root = fake_v1_root();
    let cg = Cgroup::with_layout(Version::V1, v1_layout(root.path()), "dockling", ID);
    let script = recorded(&cg).replace(&root.path().display().to_string(), "/sys/fs/cgroup");
    insta::assert_snapshot!(script);
}

#[test]
fn v1_joins_every_hierarchy_and_removes_the_group_from_each() {
    let root = fake_v1_root();
    let cg = Cgroup::with_layout(Version::V1, v1_layout(root.path()), "dockling", ID);
    let script = recorded(&cg);
    for h in V1_HIERARCHIES {
        let dir = root
            .path()
            .join(h.trim_start_matches("name="))
            .join("dockling")
            .join(ID);
        for call in [
            format!("mkdir(\"{}\", 0755)", dir.display()),
            format!(
                "openat(AT_FDCWD, \"{}/cgroup.procs\", O_WRONLY|O_CLOEXEC)\nwrite(100, \"4242\", 4)",
                dir.display()
            ),
            format!("rmdir(\"{}\")", dir.display()),
        ] {
            assert!(script.contains(&call), "{call} missing from\n{script}");
        }
    }
}

#[test]
fn v1_cpuset_gets_the_parents_cpus_and_mems_before_a_task_joins() {
    let root = fake_v1_root();
    let h: Vec<Hierarchy> = v1_layout(root.path())
        .into_iter()
        .filter(|h| h.has("cpuset") || h.has("devices"))
        .collect();
    // A real cgroupfs creates the control files on mkdir (empty cpuset values); the fake tree
    // has them ready.
    for d in ["cpuset/dockling", "cpuset/dockling/c0ffee"] {
        let d = root.path().join(d);
        std::fs::create_dir_all(&d).unwrap();
        for f in ["cpuset.cpus", "cpuset.mems", "cgroup.procs"] {
            std::fs::write(d.join(f), "").unwrap();
        }
    }
    let group = root.path().join("devices/dockling").join(ID);
    std::fs::create_dir_all(&group).unwrap();
    for f in ["devices.allow", "devices.deny", "cgroup.procs"] {
        std::fs::write(group.join(f), "").unwrap();
    }
    let cg = Cgroup::with_layout(Version::V1, h, "dockling", ID);
    let sys = Sys::new(Box::new(Linux), Tracer::off());
    cg.create(&sys, &Limits::default(), devices::DEFAULT)
        .unwrap();
    cg.join(&sys, 1234).unwrap();
    let read = |f: &str| std::fs::read_to_string(root.path().join(f)).unwrap();
    for d in ["cpuset/dockling", "cpuset/dockling/c0ffee"] {
        assert_eq!(read(&format!("{d}/cpuset.cpus")), "0-3", "{d}");
        assert_eq!(read(&format!("{d}/cpuset.mems")), "0", "{d}");
    }
    assert_eq!(read("cpuset/dockling/c0ffee/cgroup.procs"), "1234");
    assert_eq!(read("devices/dockling/c0ffee/cgroup.procs"), "1234");
    // An existing parent keeps what the administrator gave it; the child copies that.
    std::fs::write(root.path().join("cpuset/dockling/cpuset.cpus"), "1").unwrap();
    std::fs::write(root.path().join("cpuset/dockling/c0ffee/cpuset.cpus"), "").unwrap();
    cg.create(&sys, &Limits::default(), devices::DEFAULT)
        .unwrap();
    assert_eq!(read("cpuset/dockling/cpuset.cpus"), "1");
    assert_eq!(read("cpuset/dockling/c0ffee/cpuset.cpus"), "1");
}

#[test]
fn v1_writes_deny_all_then_dockers_allow_list() {
    let root = fake_v1_root();
    let cg = Cgroup::with_layout(Version::V1, v1_layout(root.path()), "dockling", ID);
    let dir = root.path().join("devices/dockling").join(ID);
    // Each knob is written as openat + write(fd) + close: show each as (file, data).
    let knob_writes = |script: String| -> Vec<String> {
        let script = script.replace(&dir.display().to_string(), "");
        let lines: Vec<&str> = script.lines().collect();
        lines
            .windows(2)
            .filter_map(|w| {
                let file = ["/devices.allow", "/devices.deny"]
                    .into_iter()
                    .find(|f| w[0].starts_with(&format!("openat(AT_FDCWD, \"{f}\"")))?;
                let data = w[1].strip_prefix("write(100, ")?;
                Some(format!("write(\"{file}\", {data}"))
            })
            .collect()
    };
    let writes = knob_writes(recorded(&cg));
    assert_eq!(
        writes,
        [
            r#"write("/devices.deny", "a", 1)"#,
            r#"write("/devices.allow", "c 1:5 rwm", 9)"#,
            r#"write("/devices.allow", "c 1:3 rwm", 9)"#,
            r#"write("/devices.allow", "c 1:9 rwm", 9)"#,
            r#"write("/devices.allow", "c 1:8 rwm", 9)"#,
            r#"write("/devices.allow", "c 5:0 rwm", 9)"#,
            r#"write("/devices.allow", "c 5:1 rwm", 9)"#,
            r#"write("/devices.deny", "c 10:229 rwm", 12)"#,
            r#"write("/devices.allow", "c *:* m", 7)"#,
            r#"write("/devices.allow", "b *:* m", 7)"#,
            r#"write("/devices.allow", "c 1:7 rwm", 9)"#,
            r#"write("/devices.allow", "c 136:* rwm", 11)"#,
            r#"write("/devices.allow", "c 5:2 rwm", 9)"#,
            r#"write("/devices.allow", "c 10:200 rwm", 12)"#,
        ]
    );
    // --privileged: everything, in one line.
    let writes = knob_writes(recorded_with(&cg, devices::rules(true)));
    assert_eq!(writes, [r#"write("/devices.allow", "a", 1)"#]);
}

#[test]
fn v1_without_a_devices_hierarchy_is_refused_unless_privileged() {
    let root = fake_v1_root();
    let h: Vec<Hierarchy> = v1_layout(root.path())
        .into_iter()
        .filter(|h| !h.has("devices"))
        .collect();
    let cg = Cgroup::with_layout(Version::V1, h, "dockling", ID);
    let sys = Sys::new(Box::new(Recorder::new()), Tracer::off());
    let err = cg
        .create(&sys, &Limits::default(), devices::rules(false))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("devices cgroup controller is not mounted") && err.contains("--privileged"),
        "{err}"
    );
    cg.create(&sys, &Limits::default(), devices::rules(true))
        .unwrap();
}

#[test]
fn default_device_rules_allow_the_standard_devices_and_nothing_else() {
    use devices::{Effective, Kind, MKNOD, READ, WRITE};
    let e = Effective::of(devices::rules(false));
    assert!(!e.default_allow);
    let rw = READ | WRITE;
    for (major, minor) in [
        (1, 3),
        (1, 5),
        (1, 7),
        (1, 8),
        (1, 9),
        (5, 0),
        (5, 1),
        (5, 2),
        (136, 0),
        (136, 77),
        (10, 200),
    ] {
        assert!(e.permits(Kind::Char, major, minor, rw), "c {major}:{minor}");
    }
    // /dev/kvm, /dev/hwrng, /dev/fuse, /dev/mem, /dev/loop-control, a disk: no read, no write.
    for (kind, major, minor) in [
        (Kind::Char, 10, 232),
        (Kind::Char, 10, 183),
        (Kind::Char, 10, 229),
        (Kind::Char, 1, 1),
        (Kind::Char, 10, 237),
        (Kind::Block, 8, 0),
    ] {
        assert!(
            !e.permits(kind, major, minor, READ),
            "{kind:?} {major}:{minor} read"
        );
        assert!(
            !e.permits(kind, major, minor, WRITE),
            "{kind:?} {major}:{minor} write"
        );
    }
    // mknod of any node is allowed, as in Docker (the later `c *:* m` lets even /dev/fuse be
    // created, though not opened).
    assert!(e.permits(Kind::Char, 10, 232, MKNOD));
    assert!(e.permits(Kind::Block, 8, 0, MKNOD));
    assert!(e.permits(Kind::Char, 10, 229, MKNOD));
    // Read and write together need one rule covering both.
    assert!(!e.permits(Kind::Char, 10, 232, READ | MKNOD));

    let all = Effective::of(devices::rules(true));
    assert!(all.default_allow && all.exceptions.is_empty());
    assert!(all.permits(Kind::Block, 8, 0, READ | WRITE | MKNOD));
}

#[test]
fn later_device_rules_override_earlier_ones_as_in_the_kernel() {
    use devices::{Effective, Kind, Rule, MKNOD, READ, RWM, WRITE};
    let c = |allow, major, minor, access| Rule {
        allow,
        kind: Kind::Char,
        major: Some(major),
        minor,
        access,
    };
    // Allow everything, then deny writes to one device: only writes to it are refused.
    let e = Effective::of(&[c(false, 1, Some(3), WRITE)]);
    assert!(e.default_allow);
    assert!(e.permits(Kind::Char, 1, 3, READ));
    assert!(!e.permits(Kind::Char, 1, 3, READ | WRITE));
    assert!(e.permits(Kind::Char, 1, 5, WRITE));
    // Deny all, allow a device, take part of it back.
    let mut rules = devices::rules(false)[..1].to_vec();
    rules.push(c(true, 4, None, RWM));
    rules.push(c(false, 4, None, MKNOD));
    let e = Effective::of(&rules);
    assert!(e.permits(Kind::Char, 4, 1, READ | WRITE));
    assert!(!e.permits(Kind::Char, 4, 1, MKNOD));
    assert!(!e.permits(Kind::Block, 4, 1, READ));
    // `a` forgets everything before it.
    rules.push(devices::rules(true)[0]);
    assert_eq!(Effective::of(&rules), Effective::of(devices::rules(true)));
}

#[test]
fn device_rules_as_oci_match_dockers_config_json() {
    let v = serde_json::to_value(devices::to_oci(devices::rules(false))).unwrap();
    assert_eq!(v[0], serde_json::json!({"allow": false, "access": "rwm"}));
    assert_eq!(
        v[1],
        serde_json::json!({"allow": true, "type": "c", "major": 1, "minor": 5, "access": "rwm"})
    );
    assert_eq!(
        v[11],
        serde_json::json!({"allow": true, "type": "c", "major": 136, "access": "rwm"})
    );
    let v = serde_json::to_value(devices::to_oci(devices::rules(true))).unwrap();
    assert_eq!(v, serde_json::json!([{"allow": true, "access": "rwm"}]));
}

#[test]
fn v2_script() {
    let h = vec![Hierarchy {
        mount_point: "/sys/fs/cgroup".into(),
        options: String::new(),
    }];
    let cg = Cgroup::with_layout(Version::V2, h, "dockling", ID);
    // The recorder's stand-in descriptors are whatever numbers are free in the test process.
    let script = regex::Regex::new(r"(target_fd|attach_bpf_fd)=\d+")
        .unwrap()
        .replace_all(&recorded(&cg), "$1=[FD]")
        .into_owned();
    insta::assert_snapshot!(script);
}

#[test]
fn v2_against_a_fake_tree_writes_the_files() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::write(
        root.join("cgroup.controllers"),
        "cpuset cpu io memory pids\n",
    )
    .unwrap();
    std::fs::write(root.join("cgroup.subtree_control"), "").unwrap();
    // A real cgroupfs creates the control files on mkdir; the fake tree has them ready.
    let group = root.join("dockling").join(ID);
    std::fs::create_dir_all(&group).unwrap();
    std::fs::write(root.join("dockling/cgroup.subtree_control"), "").unwrap();
    for f in [
        "memory.max",
        "memory.swap.max",
        "cpu.max",
        "pids.max",
        "cgroup.procs",
        "memory.events",
    ] {
        std::fs::write(group.join(f), "").unwrap();
    }
    let h = vec![Hierarchy {
        mount_point: root.to_path_buf(),
        options: String::new(),
    }];
    let cg = Cgroup::with_layout(Version::V2, h, "dockling", ID);
    let sys = Sys::new(Box::new(Linux), Tracer::off());
    // A device program attaches only to a real cgroup (real_v2_device_program_refuses_a_host_device):
    // with every device allowed there is none.
    cg.create(&sys, &limits(), devices::rules(true)).unwrap();
    cg.join(&sys, 1234).unwrap();
    let read = |f: &str| std::fs::read_to_string(group.join(f)).unwrap();
    assert_eq!(read("memory.max"), "67108864");
    assert_eq!(read("memory.swap.max"), "67108864");
    assert_eq!(read("cpu.max"), "50000 100000");
    assert_eq!(read("pids.max"), "50");
    assert_eq!(read("cgroup.procs"), "1234");
    assert_eq!(
        std::fs::read_to_string(root.join("cgroup.subtree_control")).unwrap(),
        "+memory +cpu +pids"
    );
    assert!(!cg.oom_killed(&Sys::quiet()));
    std::fs::write(
        group.join("memory.events"),
        "low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n",
    )
    .unwrap();
    assert!(cg.oom_killed(&Sys::quiet()));
}

#[test]
fn a_limit_without_its_controller_names_the_flag() {
    let dir = tempfile::tempdir().unwrap();
    let h: Vec<Hierarchy> = v1_layout(dir.path())
        .into_iter()
        .filter(|h| h.options != "cpu")
        .collect();
    let cg = Cgroup::with_layout(Version::V1, h, "dockling", ID);
    let sys = Sys::new(Box::new(Recorder::new()), Tracer::off());
    let err = cg
        .create(
            &sys,
            &Limits {
                cpus: Some(1.0),
                ..Default::default()
            },
            devices::DEFAULT,
        )
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("--cpus needs the cpu cgroup controller"),
        "{err}"
    );
}

#[test]
fn mountinfo_of_this_hybrid_layout_is_v1() {
    let text = "\
31 25 0:27 / /sys/fs/cgroup rw,nosuid - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
36 31 0:33 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
40 31 0:37 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";
    let (v, h) = parse_mountinfo(text);
    assert_eq!(v, Version::V1);
    assert_eq!(h.len(), 3);
    assert!(h[1].has("memory"));
    assert_eq!(h[2].options, "name=systemd");
    let (v, h) = parse_mountinfo("40 1 0:37 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw,nsdelegate\n");
    assert_eq!((v, h.len()), (Version::V2, 1));
}

#[test]
fn memory_sizes_parse_like_docker() {
    assert_eq!(parse_memory("64m").unwrap(), 64 << 20);
    assert_eq!(parse_memory("64MB").unwrap(), 64 << 20);
    assert_eq!(parse_memory("1g").unwrap(), 1 << 30);
    assert_eq!(parse_memory("1.5g").unwrap(), 3 << 29);
    assert_eq!(parse_memory("8388608").unwrap(), 8 << 20);
    assert!(parse_memory("4m")
        .unwrap_err()
        .to_string()
        .contains("minimum memory limit"));
    assert!(parse_memory("lots")
        .unwrap_err()
        .to_string()
        .contains("invalid size"));
}

/// Removes a test cgroup even when an assertion fails.
struct Guard(Cgroup, Vec<i32>);

impl Drop for Guard {
    fn drop(&mut self) {
        for pid in &self.1 {
            // SAFETY: kill and waitpid on a child this test started.
            unsafe {
                libc::kill(*pid, libc::SIGKILL);
                libc::waitpid(*pid, std::ptr::null_mut(), 0);
            }
        }
        let _ = self.0.destroy(&Sys::quiet());
        for h in &self.0.hierarchies {
            let _ = std::fs::remove_dir(h.mount_point.join(&self.0.parent));
        }
    }
}

fn require_root() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "this test creates real cgroups and needs root: run the suite with scripts/test (as root)"
    );
}

#[test]
fn real_v1_or_v2_limits_and_join() {
    require_root();
    let parent = format!("dockling-test-{}", std::process::id());
    let cg = Cgroup::new(&parent, "limits").unwrap();
    let child = std::process::Command::new("sleep")
        .arg("5")
        .spawn()
        .unwrap();
    let pid = child.id() as i32;
    // The guard kills and reaps it by pid.
    std::mem::forget(child);
    let guard = Guard(cg.clone(), vec![pid]);
    let sys = Sys::quiet();
    cg.create(&sys, &limits(), devices::DEFAULT).unwrap();
    cg.join(&sys, pid).unwrap();
    let mem = cg.dir_for("memory").unwrap();
    match cg.version() {
        Version::V1 => {
            assert_eq!(
                std::fs::read_to_string(mem.join("memory.limit_in_bytes"))
                    .unwrap()
                    .trim(),
                "67108864"
            );
            let cpu = cg.dir_for("cpu").unwrap();
            assert_eq!(
                std::fs::read_to_string(cpu.join("cpu.cfs_quota_us"))
                    .unwrap()
                    .trim(),
                "50000"
            );
        }
        Version::V2 => {
            assert_eq!(
                std::fs::read_to_string(mem.join("memory.max"))
                    .unwrap()
                    .trim(),
                "67108864"
            );
        }
    }
    assert_eq!(
        std::fs::read_to_string(cg.dir_for("pids").unwrap().join("pids.max"))
            .unwrap()
            .trim(),
        "50"
    );
    let own = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    assert!(own.contains(&format!("/{parent}/limits")), "{own}");
    if cg.version() == Version::V1 {
        // In every mounted hierarchy, the devices and cpuset ones included.
        for h in &cg.hierarchies {
            let line = own
                .lines()
                .find(|l| l.split(':').nth(1) == Some(h.options.as_str()))
                .unwrap_or_else(|| panic!("no line for {} in\n{own}", h.options));
            assert!(line.ends_with(&format!("/{parent}/limits")), "{line}");
        }
        assert!(cg.hierarchies.iter().any(|h| h.has("cpuset")) && cg.dir_for("devices").is_some());
        // The kernel's own view of the device rules: the allow list, not `a *:* rwm`.
        let list =
            std::fs::read_to_string(cg.dir_for("devices").unwrap().join("devices.list")).unwrap();
        let mut got: Vec<&str> = list.lines().collect();
        let effective = devices::Effective::of(devices::DEFAULT);
        let want_owned: Vec<String> = effective.exceptions.iter().map(|r| r.to_string()).collect();
        let mut want: Vec<&str> = want_owned.iter().map(String::as_str).collect();
        got.sort();
        want.sort();
        assert_eq!(got, want);
    }
    drop(guard);
    for p in cg.paths() {
        assert!(!p.exists(), "{} left behind", p.display());
    }
}

#[test]
fn real_oom_kill_is_detected() {
    require_root();
    let parent = format!("dockling-test-oom-{}", std::process::id());
    let cg = Cgroup::new(&parent, "oom").unwrap();
    let sys = Sys::quiet();
    let mut guard = Guard(cg.clone(), vec![]);
    cg.create(
        &sys,
        &Limits {
            // Well above python's own working set: at 8 MiB its code pages could be evicted
            // and faulted back in a loop (reclaim making progress, so no OOM for a long time).
            memory: Some(48 << 20),
            ..Default::default()
        },
        devices::DEFAULT,
    )
    .unwrap();
    // The child waits for a byte on stdin so it can be moved into the group before allocating.
    let mut child = std::process::Command::new("python3")
        .args([
            "-c",
            "import sys; sys.stdin.read(1); x = b'a' * (256 * 1024 * 1024); print(len(x))",
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    guard.1.push(child.id() as i32);
    cg.join(&sys, child.id() as i32).unwrap();
    use std::io::Write;
    child.stdin.take().unwrap().write_all(b"x").unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the child was not OOM-killed within 20 s"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    guard.1.clear();
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(status.signal(), Some(libc::SIGKILL), "{status:?}");
    assert!(cg.oom_killed(&Sys::quiet()));
}

/// Where this host mounts cgroup2: `/sys/fs/cgroup`, or `/sys/fs/cgroup/unified` beside v1.
fn cgroup2_mount() -> PathBuf {
    let text = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    text.lines()
        .find_map(|l| {
            let (left, right) = l.split_once(" - ")?;
            (right.split(' ').next() == Some("cgroup2")).then(|| left.split(' ').nth(4).unwrap().into())
        })
        .expect("no cgroup2 file system mounted: the device program test needs one (mount -t cgroup2 none /sys/fs/cgroup/unified)")
}

/// Start a shell in a fresh v2 group with `devices`, and report what it could open.
fn probe_in_v2_group(devices: &[devices::Rule], name: &str) -> String {
    use std::io::{Read, Write};
    let parent = format!("dockling-test-bpf-{}", std::process::id());
    let h = vec![Hierarchy {
        mount_point: cgroup2_mount(),
        options: String::new(),
    }];
    let cg = Cgroup::with_layout(Version::V2, h, &parent, name);
    let mut guard = Guard(cg.clone(), vec![]);
    let sys = Sys::quiet();
    cg.create(&sys, &Limits::default(), devices).unwrap();
    let script = format!(
        "read x; echo ran; cat /dev/null && echo null-ok; (exec 3<{}) 2>/dev/null && echo opened || echo refused",
        crate::testutil::host_char_device().0
    );
    let mut child = std::process::Command::new("sh")
        .args(["-c", &script])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    guard.1.push(child.id() as i32);
    cg.join(&sys, child.id() as i32).unwrap();
    child.stdin.take().unwrap().write_all(b"go\n").unwrap();
    let mut out = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    child.wait().unwrap();
    guard.1.clear();
    out
}

#[test]
fn real_v2_device_program_refuses_a_host_device() {
    require_root();
    // Works beside v1 too: the kernel runs the programs of the process's cgroup2 group.
    assert_eq!(
        probe_in_v2_group(devices::rules(false), "dev"),
        "ran\nnull-ok\nrefused\n"
    );
    assert_eq!(
        probe_in_v2_group(devices::rules(true), "priv"),
        "ran\nnull-ok\nopened\n"
    );
}

#[test]
fn memory_sizes_overflowing_u64_are_refused_not_wrapped() {
    let err = parse_memory("99999999999g").unwrap_err().to_string();
    assert_eq!(
        err,
        "invalid size: '99999999999g': more than the largest memory limit (4 EiB, 4611686018427387903 bytes): give a size like 512m or 4g"
    );
    assert!(parse_memory("4096p").is_err(), "4 EiB is one byte too many");
    assert_eq!(parse_memory("4095p").unwrap(), 4095 << 50);
    assert!(parse_memory("99999999999999999999999999999999999999999").is_err());
    // Docker's units and spellings.
    assert_eq!(parse_memory("64MiB").unwrap(), 64 << 20);
    assert_eq!(parse_memory("64 m").unwrap(), 64 << 20);
    assert_eq!(parse_memory("0").unwrap(), 0, "0 is no limit, as in Docker");
    assert_eq!(
        parse_memory("1b").unwrap_err().to_string(),
        "minimum memory limit allowed is 6MB (got 1b): give at least 6m, or 0 for no limit"
    );
    for bad in ["abc", "", "-1", "1..5m", ".5m", "1.m", "nan", "inf", "1x"] {
        assert_eq!(
            parse_memory(bad).unwrap_err().to_string(),
            format!("invalid size: '{bad}': use a number with an optional unit b, k, m, g, t, p (like 64m)"),
            "{bad}"
        );
    }
}

#[test]
fn cpus_parse_exactly_like_docker() {
    assert_eq!(parse_cpus("0.5", 2).unwrap(), Some(0.5));
    assert_eq!(parse_cpus("2", 2).unwrap(), Some(2.0));
    assert_eq!(parse_cpus("1/4", 2).unwrap(), Some(0.25));
    assert_eq!(parse_cpus("5e-1", 2).unwrap(), Some(0.5));
    assert_eq!(parse_cpus("0.01", 2).unwrap(), Some(0.01));
    assert_eq!(
        parse_cpus("0", 2).unwrap(),
        None,
        "0 is no limit, as in Docker"
    );
    assert_eq!(parse_cpus("0.000", 2).unwrap(), None);
    let range = "range of CPUs is from 0.01 to 2.00, as there are only 2 CPUs available";
    for out in ["-1", "2.5", "3", "0.0000001", "0.009", "1e300", "-0.5"] {
        assert_eq!(parse_cpus(out, 2).unwrap_err().to_string(), range, "{out}");
    }
    for bad in [
        "nan", "inf", "-inf", "NaN", "infinity", "", "abc", "1/0", "0x10", "1.2.3",
    ] {
        assert_eq!(
            parse_cpus(bad, 2).unwrap_err().to_string(),
            format!("invalid argument \"{bad}\" for \"--cpus\" flag: failed to parse {bad} as a rational number: give a number of CPUs like 0.5 or 2"),
            "{bad}"
        );
    }
    assert_eq!(
        parse_cpus("0.0000000001", 2).unwrap_err().to_string(),
        "invalid argument \"0.0000000001\" for \"--cpus\" flag: value is too precise: give a number of CPUs like 0.5 or 2"
    );
}

#[test]
fn exec_joins_the_hierarchies_that_hold_the_group_not_one_mounted_since() {
    // The container's group exists in memory's tree; pids' was mounted after it started
    // (lesson 20 mounts a v1 tree for crun while other containers run) and holds no group.
    let root = tempfile::tempdir().unwrap();
    let layout = vec![
        Hierarchy {
            mount_point: root.path().join("pids"),
            options: "pids".into(),
        },
        Hierarchy {
            mount_point: root.path().join("memory"),
            options: "memory".into(),
        },
    ];
    let group = root.path().join("memory/dockling").join(ID);
    std::fs::create_dir_all(&group).unwrap();
    std::fs::write(group.join("cgroup.procs"), "").unwrap();
    std::fs::create_dir_all(root.path().join("pids")).unwrap();
    let cg = Cgroup::with_layout(Version::V1, layout, "dockling", ID);
    cg.join(&Sys::quiet(), 4242).unwrap();
    assert_eq!(
        std::fs::read_to_string(group.join("cgroup.procs")).unwrap(),
        "4242"
    );
    assert!(!root.path().join("pids/dockling").exists());
    // Its processes are read where the group is, not from the first tree mounted.
    assert_eq!(cg.procs(&Sys::quiet()), vec![4242]);
}

fn update_script(cg: &Cgroup, r: &resources::Resources) -> String {
    let rec = Recorder::new();
    let sys = Sys::new(Box::new(rec.clone()), Tracer::off());
    cg.update(&sys, r).unwrap();
    rec.script()
}

#[test]
fn update_writes_each_value_to_its_knob_on_v1_and_v2() {
    let r = resources::Resources {
        memory: Some(100 << 20),
        memory_reservation: Some(50 << 20),
        memory_swap: Some(-1),
        cpu_shares: Some(512),
        cpu_quota: Some(50_000),
        cpu_period: Some(100_000),
        cpuset_cpus: Some("0-1".into()),
        cpuset_mems: Some("0".into()),
        pids: Some(100),
        blkio_weight: Some(500),
        ..Default::default()
    };
    let root = fake_v1_root();
    let v1 = Cgroup::with_layout(Version::V1, v1_layout(root.path()), "dockling", ID);
    let script = update_script(&v1, &r).replace(&root.path().display().to_string(), "[V1]");
    insta::assert_snapshot!("update_v1", script);
    let h = vec![Hierarchy {
        mount_point: "/sys/fs/cgroup".into(),
        options: String::new(),
    }];
    let v2 = Cgroup::with_layout(Version::V2, h, "dockling", ID);
    insta::assert_snapshot!("update_v2", update_script(&v2, &r));
    // v2 has no real-time knobs: refused by name.
    let rt = resources::Resources {
        cpu_rt_runtime: Some(1000),
        ..Default::default()
    };
    let rec = Recorder::new();
    let sys = Sys::new(Box::new(rec.clone()), Tracer::off());
    let err = v2.update(&sys, &rt).unwrap_err().to_string();
    assert!(err.contains("no real-time CPU limits"), "{err}");
    assert_eq!(rec.script(), "");
    let err = v1
        .update(
            &sys,
            &resources::Resources {
                blkio_weight: Some(5),
                ..Default::default()
            },
        )
        .unwrap_err()
        .to_string();
    assert!(err.contains("from 10 to 1000"), "{err}");
}

#[test]
fn v2_conversions_are_runcs() {
    assert_eq!(resources::shares_to_weight(2), 1);
    assert_eq!(resources::shares_to_weight(1024), 39);
    assert_eq!(resources::shares_to_weight(262_144), 10_000);
    assert_eq!(resources::blkio_to_io_weight(10), 1);
    assert_eq!(resources::blkio_to_io_weight(500), 4950);
    assert_eq!(resources::blkio_to_io_weight(1000), 10_000);
}

/// A v2 group in a temporary tree whose `cgroup.events` the test writes, as the kernel would.
fn fake_v2_group() -> (tempfile::TempDir, Cgroup, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let group = dir.path().join("dockling").join(ID);
    std::fs::create_dir_all(&group).unwrap();
    std::fs::write(group.join("cgroup.freeze"), "0\n").unwrap();
    std::fs::write(group.join("cgroup.events"), "populated 1\nfrozen 0\n").unwrap();
    let h = vec![Hierarchy {
        mount_point: dir.path().to_path_buf(),
        options: String::new(),
    }];
    let cg = Cgroup::with_layout(Version::V2, h, "dockling", ID);
    (dir, cg, group)
}

#[test]
fn a_freeze_returns_once_the_kernel_says_frozen() {
    let (_dir, cg, group) = fake_v2_group();
    let events = group.join("cgroup.events");
    let flip = {
        let events = events.clone();
        std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(30));
            std::fs::write(events, "populated 1\nfrozen 1\n").unwrap();
        })
    };
    let start = std::time::Instant::now();
    cg.freeze_settled(&Sys::quiet(), true).unwrap();
    assert!(start.elapsed() >= std::time::Duration::from_millis(30));
    flip.join().unwrap();
    assert_eq!(
        std::fs::read_to_string(group.join("cgroup.freeze"))
            .unwrap()
            .trim(),
        "1"
    );
    assert_eq!(cg.freezer_state(&Sys::quiet()).as_deref(), Some("frozen"));
    assert!(cg.is_frozen());
}

#[test]
fn a_freeze_that_never_settles_is_undone_and_reported() {
    let (_dir, cg, group) = fake_v2_group();
    let start = std::time::Instant::now();
    let err = cg
        .freeze_settled(&Sys::quiet(), true)
        .unwrap_err()
        .to_string();
    assert!(start.elapsed() >= std::time::Duration::from_secs(2));
    assert!(err.contains("did not freeze within 2 s"), "{err}");
    assert!(err.contains("thawed again"), "{err}");
    // Thawed back, never left half frozen.
    assert_eq!(
        std::fs::read_to_string(group.join("cgroup.freeze"))
            .unwrap()
            .trim(),
        "0"
    );
}

#[test]
fn all_procs_reads_the_group_and_every_group_below() {
    let (_dir, cg, group) = fake_v2_group();
    std::fs::write(group.join("cgroup.procs"), "10\n11\n").unwrap();
    std::fs::create_dir_all(group.join("b/inner")).unwrap();
    std::fs::create_dir_all(group.join("a")).unwrap();
    std::fs::write(group.join("a/cgroup.procs"), "20\n").unwrap();
    std::fs::write(group.join("b/cgroup.procs"), "").unwrap();
    std::fs::write(group.join("b/inner/cgroup.procs"), "30\n11\n").unwrap();
    assert_eq!(cg.all_procs(&Sys::quiet()), vec![10, 11, 20, 30]);
    assert_eq!(cg.procs(&Sys::quiet()), vec![10, 11]);
}

#[test]
fn an_oci_configs_device_rules_come_first_and_runcs_allowed_devices_after() {
    let config: Vec<oci_spec::runtime::LinuxDeviceCgroup> =
        serde_json::from_value(serde_json::json!([
            {"allow": false, "access": "rwm"},
            {"allow": true, "type": "c", "major": 10, "minor": 229, "access": "r"}
        ]))
        .unwrap();
    let rules = devices::from_oci(&config).unwrap();
    let all = devices::for_oci(&rules, &[('b', 8, 0), ('p', 0, 0)]);
    let e = devices::Effective::of(&all);
    // The config's allow of /dev/fuse for reading holds: Docker's deny of it is not added.
    assert!(e.permits(devices::Kind::Char, 10, 229, devices::READ));
    assert!(!e.permits(devices::Kind::Char, 10, 229, devices::WRITE));
    // runc's allowed devices, and the config's own node; nothing else.
    assert!(e.permits(devices::Kind::Char, 1, 3, devices::RWM));
    assert!(e.permits(devices::Kind::Block, 8, 0, devices::RWM));
    assert!(!e.permits(devices::Kind::Char, 10, 237, devices::READ));
    // No rules in the config: everything denied but the allowed devices.
    let none = devices::Effective::of(&devices::for_oci(&[], &[]));
    assert!(!none.permits(devices::Kind::Char, 10, 229, devices::READ));
    assert!(none.permits(devices::Kind::Char, 136, 4, devices::RWM));
    // An allow of everything stays that.
    let all_allowed: Vec<oci_spec::runtime::LinuxDeviceCgroup> =
        serde_json::from_value(serde_json::json!([{"allow": true, "access": "rwm"}])).unwrap();
    let e = devices::Effective::of(&devices::for_oci(
        &devices::from_oci(&all_allowed).unwrap(),
        &[],
    ));
    assert_eq!(e, devices::Effective::of(devices::ALLOW_ALL));
    // Bad entries are refused by their place.
    for (bad, says) in [
        (
            serde_json::json!([{"allow": true, "access": "rwx"}]),
            "entry 0: access 'x'",
        ),
        (
            serde_json::json!([{"allow": true, "type": "p"}]),
            "entry 0: type p",
        ),
        (
            serde_json::json!([{"allow": true, "type": "c", "major": 99999999999i64}]),
            "is not a device number",
        ),
    ] {
        let list: Vec<oci_spec::runtime::LinuxDeviceCgroup> = serde_json::from_value(bad).unwrap();
        let err = devices::from_oci(&list).unwrap_err();
        assert!(err.contains(says), "{err}");
    }
}

/// A nested `cgroupsPath` (`a/b/c`, runtime-tools' relative cgroup tests): mkdir made only the
/// last level of the parent and failed with ENOENT.
#[test]
fn a_nested_parent_is_made_level_by_level_and_enabled_on_v2() {
    let root = fake_v1_root();
    let cg = Cgroup::with_layout(Version::V1, v1_layout(root.path()), "/a/b/", ID);
    let script = recorded(&cg);
    let mkdirs: Vec<&str> = script
        .lines()
        .filter(|l| l.starts_with("mkdir(") && l.contains("/memory/"))
        .collect();
    let memory = root.path().join("memory");
    assert_eq!(
        mkdirs,
        [
            format!("mkdir(\"{}/a\", 0755)", memory.display()),
            format!("mkdir(\"{}/a/b\", 0755)", memory.display()),
            format!("mkdir(\"{}/a/b/{ID}\", 0755)", memory.display()),
        ]
    );
    let h = vec![Hierarchy {
        mount_point: "/sys/fs/cgroup".into(),
        options: String::new(),
    }];
    let cg = Cgroup::with_layout(Version::V2, h, "a/b", ID);
    let script = recorded(&cg);
    let made: Vec<&str> = script
        .lines()
        .filter(|l| l.starts_with("mkdir(") || l.contains("subtree_control"))
        .collect();
    assert_eq!(
        made,
        [
            "mkdir(\"/sys/fs/cgroup/a\", 0755)",
            "mkdir(\"/sys/fs/cgroup/a/b\", 0755)",
            "openat(AT_FDCWD, \"/sys/fs/cgroup/cgroup.subtree_control\", O_WRONLY|O_CLOEXEC)",
            "openat(AT_FDCWD, \"/sys/fs/cgroup/a/cgroup.subtree_control\", O_WRONLY|O_CLOEXEC)",
            "openat(AT_FDCWD, \"/sys/fs/cgroup/a/b/cgroup.subtree_control\", O_WRONLY|O_CLOEXEC)",
            &format!("mkdir(\"/sys/fs/cgroup/a/b/{ID}\", 0755)"),
        ]
    );
}
