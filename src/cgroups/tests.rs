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

fn v1_layout(root: &Path) -> Vec<Hierarchy> {
    ["memory", "cpu", "cpuacct", "pids", "freezer", "devices"]
        .iter()
        .map(|c| Hierarchy {
            mount_point: root.join(c),
            options: c.to_string(),
        })
        .collect()
}

fn recorded(cg: &Cgroup) -> String {
    let rec = Recorder::new();
    let sys = Sys::new(Box::new(rec.clone()), Tracer::off());
    cg.create(&sys, &limits()).unwrap();
    cg.join(&sys, 4242).unwrap();
    cg.destroy(&sys).unwrap();
    rec.script()
}

#[test]
fn v1_script() {
    let cg = Cgroup::with_layout(
        Version::V1,
        v1_layout(Path::new("/sys/fs/cgroup")),
        "dockling",
        ID,
    );
    insta::assert_snapshot!(recorded(&cg));
}

#[test]
fn v2_script() {
    let h = vec![Hierarchy {
        mount_point: "/sys/fs/cgroup".into(),
        options: String::new(),
    }];
    let cg = Cgroup::with_layout(Version::V2, h, "dockling", ID);
    insta::assert_snapshot!(recorded(&cg));
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
    cg.create(&sys, &limits()).unwrap();
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
    assert!(!cg.oom_killed());
    std::fs::write(
        group.join("memory.events"),
        "low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n",
    )
    .unwrap();
    assert!(cg.oom_killed());
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
    cg.create(&sys, &limits()).unwrap();
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
            memory: Some(8 << 20),
            ..Default::default()
        },
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
    assert!(cg.oom_killed());
}
