//! Resource limits, seen from inside, and the out-of-memory report.

mod common;
use common::{wait_until, Lab};
use std::time::Duration;

#[test]
fn limits_are_visible_inside() {
    let lab = Lab::with_busybox();
    let o = lab.run(&["-m", "64m", "--cpus", "0.5", "--pids-limit", "20", "busybox", "sh", "-c",
        "cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || cat /sys/fs/cgroup/memory.max; cat /sys/fs/cgroup/pids/pids.max 2>/dev/null || cat /sys/fs/cgroup/pids.max"]);
    o.expect_code(0);
    assert_eq!(o.stdout, "67108864\n20\n");
}

#[test]
fn out_of_memory_is_reported_with_137() {
    let lab = Lab::with_busybox();
    let o = lab.run(&[
        "-m",
        "8m",
        "busybox",
        "sh",
        "-c",
        "x=$(head -c 100000000 /dev/zero | tr '\\0' a); echo survived",
    ]);
    o.expect_code(137);
    assert!(o.stderr.contains("out of memory"), "{}", o.stderr);
}

#[test]
fn no_cgroups_means_no_group_and_limits_are_refused() {
    let lab = Lab::with_busybox();
    // Seen from the host (inside, the cgroup namespace shows "/" either way): by default the
    // container's memory group is under the lab's cgroup parent; with --no-cgroups it stays
    // in the engine's, which is this test's own.
    let own = memory_cgroup_from_host(&lab, &[]);
    assert!(own.contains(&lab.cgroup_parent()), "{own}");
    let none = memory_cgroup_from_host(&lab, &["--no-cgroups"]);
    let engine = std::fs::read_to_string("/proc/self/cgroup").unwrap();
    assert_eq!(none, memory_line(&engine), "{engine}");
    let o = lab.run(&["--no-cgroups", "-m", "64m", "busybox", "true"]);
    o.expect_code(125);
    assert!(o.stderr.contains("--no-cgroups"), "{}", o.stderr);
}

/// The memory line of a cgroup file (`N:memory:/path`, or cgroup2's `0::/path`).
fn memory_line(cgroup: &str) -> String {
    cgroup
        .lines()
        .find(|l| l.contains(":memory:"))
        .or_else(|| cgroup.lines().find(|l| l.starts_with("0::")))
        .unwrap_or_else(|| panic!("no memory cgroup in {cgroup:?}"))
        .to_string()
}

/// The memory cgroup of a running `busybox cat` started with `flags`, read from the host
/// (the container waits for its stdin to close, so it is still there when the test looks).
fn memory_cgroup_from_host(lab: &Lab, flags: &[&str]) -> String {
    let mut args = vec!["run", "--rm", "-i"];
    args.extend_from_slice(flags);
    args.extend_from_slice(&["busybox", "cat"]);
    let mut child = lab
        .command(&args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let cgroup = wait_until(Duration::from_secs(10), "the container to start", || {
        let ids = lab.cmd(&["ps", "-q", "--no-trunc"]).stdout;
        let id = ids.split_whitespace().next()?;
        let v: serde_json::Value = serde_json::from_str(&lab.cmd(&["inspect", id]).stdout).ok()?;
        let pid = v[0]["State"]["Pid"].as_i64().filter(|p| *p > 0)?;
        std::fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()
    });
    drop(child.stdin.take());
    let o: common::Out = child.wait_with_output().unwrap().into();
    o.expect_code(0);
    memory_line(&cgroup)
}

/// The probe: `ran`, `/dev/null` works, `mknod` of the host device works, then whether
/// opening it works.
fn device_probe(major: u32, minor: u32) -> String {
    format!(
        "echo ran; cat /dev/null && echo null-ok; mknod /tmp/dev c {major} {minor} && echo made; \
         (exec 3</tmp/dev) && echo opened || echo refused"
    )
}

#[test]
fn mknod_and_open_of_a_host_device_is_refused_by_the_devices_cgroup() {
    let lab = Lab::with_busybox();
    let (path, major, minor) = common::host_char_device();
    let o = lab.run(&["busybox", "sh", "-c", &device_probe(major, minor)]);
    o.expect_code(0);
    assert_eq!(
        o.stdout, "ran\nnull-ok\nmade\nrefused\n",
        "{path}: {}",
        o.stderr
    );
    assert!(
        o.stderr.contains("Operation not permitted"),
        "{path}: {}",
        o.stderr
    );
    // The standard devices stay usable for reading and writing.
    let o = lab.run(&[
        "busybox",
        "sh",
        "-c",
        "echo x >/dev/null && head -c 4 /dev/zero | wc -c && head -c 4 /dev/urandom | wc -c",
    ]);
    o.expect_code(0);
    assert_eq!(o.stdout, "4\n4\n", "{}", o.stderr);
}

#[test]
fn privileged_opens_a_host_device() {
    let lab = Lab::with_busybox();
    let (path, major, minor) = common::host_char_device();
    let o = lab.run(&[
        "--privileged",
        "busybox",
        "sh",
        "-c",
        &device_probe(major, minor),
    ]);
    o.expect_code(0);
    assert_eq!(
        o.stdout, "ran\nnull-ok\nmade\nopened\n",
        "{path}: {}",
        o.stderr
    );
}

/// The v1 hierarchies of this host, as (controllers, mount point).
fn v1_hierarchies() -> Vec<(String, std::path::PathBuf)> {
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .filter_map(|l| {
            let (left, right) = l.split_once(" - ")?;
            let r: Vec<&str> = right.split(' ').collect();
            if r[0] != "cgroup" {
                return None;
            }
            let options = r[2]
                .split(',')
                .filter(|o| !matches!(*o, "rw" | "ro" | "relatime" | "nosuid" | "nodev" | "noexec"))
                .collect::<Vec<_>>()
                .join(",");
            Some((options, left.split(' ').nth(4)?.into()))
        })
        .collect()
}

#[test]
fn devices_list_inside_is_the_allow_list_not_everything() {
    let lab = Lab::with_busybox();
    if v1_hierarchies().is_empty() {
        // cgroup v2 has no devices.list: the probe tests above check the BPF program instead.
        let (_, major, minor) = common::host_char_device();
        let o = lab.run(&["busybox", "sh", "-c", &device_probe(major, minor)]);
        o.expect_code(0);
        assert!(o.stdout.ends_with("made\nrefused\n"), "{}", o.stdout);
        return;
    }
    let o = lab.run(&["busybox", "cat", "/sys/fs/cgroup/devices/devices.list"]);
    o.expect_code(0);
    let mut got: Vec<&str> = o.stdout.lines().collect();
    got.sort();
    let mut want = vec![
        "c 1:5 rwm",
        "c 1:3 rwm",
        "c 1:9 rwm",
        "c 1:8 rwm",
        "c 5:0 rwm",
        "c 5:1 rwm",
        "c *:* m",
        "b *:* m",
        "c 1:7 rwm",
        "c 136:* rwm",
        "c 5:2 rwm",
        "c 10:200 rwm",
    ];
    want.sort();
    assert_eq!(got, want);
    let o = lab.run(&[
        "--privileged",
        "busybox",
        "cat",
        "/sys/fs/cgroup/devices/devices.list",
    ]);
    o.expect_code(0);
    assert_eq!(o.stdout, "a *:* rwm\n");
}

#[test]
fn the_container_is_in_every_v1_hierarchy_and_leaves_none_behind() {
    let lab = Lab::with_busybox();
    let hierarchies = v1_hierarchies();
    assert!(
        !hierarchies.is_empty()
            || std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists(),
        "no cgroup hierarchy mounted"
    );
    let parent = lab.cgroup_parent();
    let o = lab.run(&["--cgroupns", "host", "busybox", "cat", "/proc/self/cgroup"]);
    o.expect_code(0);
    for (options, mount) in &hierarchies {
        let line = o
            .stdout
            .lines()
            .find(|l| l.split(':').nth(1) == Some(options.as_str()))
            .unwrap_or_else(|| panic!("no {options} line in\n{}", o.stdout));
        assert!(
            line.contains(&format!(":/{parent}/")),
            "{} ({options}) not joined: {line}",
            mount.display()
        );
        // Removed from each hierarchy once the container is gone (only the lab's parent is left).
        let left: Vec<_> = std::fs::read_dir(mount.join(&parent))
            .unwrap()
            .flatten()
            .filter(|e| e.file_type().unwrap().is_dir())
            .map(|e| e.file_name())
            .collect();
        assert!(
            left.is_empty(),
            "{} left in {}",
            left.len(),
            mount.display()
        );
    }
    if !hierarchies.is_empty() {
        assert!(
            hierarchies.iter().any(|(o, _)| o == "devices"),
            "a v1 host without the devices hierarchy: {hierarchies:?}"
        );
    }
}

#[test]
fn the_bundle_carries_the_device_rules_and_runc_enforces_them() {
    let lab = Lab::with_busybox();
    lab.cmd(&[
        "run", "--name", "devs", "--layers", "copy", "busybox", "true",
    ])
    .expect_code(0);
    let v: serde_json::Value = serde_json::from_str(&lab.cmd(&["inspect", "devs"]).stdout).unwrap();
    let dir = std::path::Path::new(v[0]["GraphDriver"]["Data"]["MergedDir"].as_str().unwrap())
        .parent()
        .unwrap()
        .to_path_buf();
    let mut cfg: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("config.json")).unwrap()).unwrap();
    let rules = cfg["linux"]["resources"]["devices"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(rules.len(), 14, "{rules:?}");
    assert_eq!(
        rules[0],
        serde_json::json!({"allow": false, "access": "rwm"})
    );
    assert!(rules
        .contains(&serde_json::json!({"allow": true, "type": "c", "major": 136, "access": "rwm"})));
    assert!(cfg["linux"]["devices"].as_array().unwrap().contains(&serde_json::json!(
        {"path": "/dev/null", "type": "c", "major": 1, "minor": 3, "fileMode": 0o666, "uid": 0, "gid": 0}
    )));

    // runc, given the bundle with the probe as its process, refuses the host device too.
    let (path, major, minor) = common::host_char_device();
    cfg["process"]["args"] = serde_json::json!(["sh", "-c", device_probe(major, minor)]);
    std::fs::write(dir.join("config.json"), serde_json::to_vec(&cfg).unwrap()).unwrap();
    let name = format!("dockling-devices-{}", std::process::id());
    let out = std::process::Command::new("runc")
        .args(["run", "--bundle", dir.to_str().unwrap(), &name])
        .stdin(std::process::Stdio::null())
        .output()
        .expect("runc (scripts/test installs it)");
    let _ = std::process::Command::new("runc")
        .args(["delete", "-f", &name])
        .output();
    for h in std::fs::read_dir("/sys/fs/cgroup")
        .into_iter()
        .flatten()
        .flatten()
    {
        let _ = std::fs::remove_dir(h.path().join("dockling-oci"));
    }
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "ran\nnull-ok\nmade\nrefused\n",
        "{path}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Without a cgroup there is no devices controller: `--no-cgroups` must not become a way to
/// open host devices. The container gets no CAP_MKNOD (so it makes no node), while a normal
/// run still may make one (the cgroup then refuses the open).
#[test]
fn no_cgroups_takes_cap_mknod_away() {
    let lab = Lab::with_busybox();
    let (path, major, minor) = common::host_char_device();
    let o = lab.run(&[
        "--no-cgroups",
        "busybox",
        "sh",
        "-c",
        &device_probe(major, minor),
    ]);
    o.expect_code(0);
    assert_eq!(o.stdout, "ran\nnull-ok\nrefused\n", "{path}: {}", o.stderr);
    assert!(
        o.stderr
            .contains("mknod: /tmp/dev: Operation not permitted"),
        "{}",
        o.stderr
    );
    // --privileged keeps every capability and every device, with or without cgroups.
    let p = lab.run(&[
        "--no-cgroups",
        "--privileged",
        "busybox",
        "sh",
        "-c",
        &device_probe(major, minor),
    ]);
    p.expect_code(0);
    assert_eq!(p.stdout, "ran\nnull-ok\nmade\nopened\n", "{}", p.stderr);
}
