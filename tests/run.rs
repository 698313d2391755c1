//! End-to-end: `dockling run` and friends, each behaviour checked from inside the container.

mod common;
use common::Lab;

#[test]
fn echo_hello_and_exit_codes_pass_through() {
    let lab = Lab::with_busybox();
    let o = lab.run(&["busybox", "echo", "hello"]);
    o.expect_code(0);
    assert_eq!(o.stdout, "hello\n");
    lab.run(&["busybox", "sh", "-c", "exit 3"]).expect_code(3);
    let o = lab.run(&["busybox", "no-such-command"]);
    o.expect_code(127);
    assert!(
        o.stderr.contains("executable file not found in $PATH"),
        "{}",
        o.stderr
    );
    let o = lab.run(&["busybox", "/etc/passwd"]);
    o.expect_code(126);
    assert!(o.stderr.contains("permission denied"), "{}", o.stderr);
    // Through PATH: a file there that may not be run is 126, a directory too; a missing
    // directory of PATH is skipped.
    let o = lab.run(&["-e", "PATH=/nonexistent:/etc", "busybox", "passwd"]);
    o.expect_code(126);
    assert!(
        o.stderr.contains("\"/etc/passwd\": permission denied"),
        "{}",
        o.stderr
    );
    let o = lab.run(&["-e", "PATH=/", "busybox", "etc"]);
    o.expect_code(126);
    assert!(
        o.stderr.contains("\"/etc\": is a directory"),
        "{}",
        o.stderr
    );
    let o = lab.run(&[
        "-e",
        "PATH=/nonexistent:/etc:/bin",
        "busybox",
        "echo",
        "found",
    ]);
    o.expect_code(0);
    assert_eq!(o.stdout, "found\n");
    // --pull never: no registry is asked (the default would try to pull it first).
    let o = lab.run(&["--pull", "never", "nosuchimage", "true"]);
    o.expect_code(125);
    assert!(
        o.stderr.contains("unable to find image 'nosuchimage'"),
        "{}",
        o.stderr
    );
    lab.cmd(&["run", "--no-such-flag", "busybox"])
        .expect_code(125);
    assert!(
        lab.containers_left().is_empty(),
        "--rm left {:?}",
        lab.containers_left()
    );
}

#[test]
fn name_env_workdir_user_hostname_and_readonly_volume() {
    let lab = Lab::with_busybox();
    let vol = tempfile::tempdir().unwrap();
    std::fs::write(vol.path().join("f"), "from the host\n").unwrap();
    let v = format!("{}:/data:ro", vol.path().display());
    let o = lab.cmd(&[
        "run", "--name", "web", "-e", "A=1", "-w", "/tmp", "-u", "1000:1000", "--hostname", "box", "-v", &v, "busybox", "sh",
        "-c", "echo A=$A; pwd; id -u; id -g; hostname; cat /etc/hostname; cat /data/f; touch /data/x 2>/dev/null || echo read-only",
    ]);
    o.expect_code(0);
    assert_eq!(
        o.stdout,
        "A=1\n/tmp\n1000\n1000\nbox\nbox\nfrom the host\nread-only\n"
    );
    let ps = lab.cmd(&["ps", "-a"]);
    let header = ps.stdout.lines().next().unwrap();
    // Docker's columns; their widths follow the contents ("Less than a second ago" or
    // "2 seconds ago"), so they are compared as columns, not as one padded line.
    let columns: Vec<&str> = regex::Regex::new(r" {2,}").unwrap().split(header).collect();
    assert_eq!(
        columns,
        [
            "CONTAINER ID",
            "IMAGE",
            "COMMAND",
            "CREATED",
            "STATUS",
            "PORTS",
            "NAMES"
        ]
    );
    assert!(ps.stdout.contains("Exited (0)"), "{}", ps.stdout);
    assert!(
        ps.stdout.lines().nth(1).unwrap().ends_with("web"),
        "{}",
        ps.stdout
    );
    let again = lab.cmd(&["run", "--name", "web", "busybox", "true"]);
    again.expect_code(125);
    assert!(again.stderr.contains("already in use"), "{}", again.stderr);
    let inspect: serde_json::Value =
        serde_json::from_str(&lab.cmd(&["inspect", "web"]).stdout).unwrap();
    assert_eq!(inspect[0]["Name"], "/web");
    assert_eq!(inspect[0]["State"]["ExitCode"], 0);
    let rmi = lab.cmd(&["rmi", "busybox"]);
    rmi.expect_code(1);
    assert!(rmi.stderr.contains("must force"), "{}", rmi.stderr);
    lab.cmd(&["rm", "web"]).expect_code(0);
    assert!(lab.cmd(&["ps", "-aq"]).stdout.is_empty());
    assert!(!vol.path().join("x").exists());
}

/// The user above could not write /data even without `:ro` (the directory is root's): this
/// test writes as root, so only the read-only mount can stop it, and the same write without
/// `:ro` must work.
#[test]
fn readonly_volume_refuses_root_and_a_plain_volume_does_not() {
    let lab = Lab::with_busybox();
    let vol = tempfile::tempdir().unwrap();
    std::fs::write(vol.path().join("f"), "from the host\n").unwrap();
    let before = common::tree_state(vol.path());
    let ro = lab.run(&[
        "-v",
        &format!("{}:/data:ro", vol.path().display()),
        "busybox",
        "sh",
        "-c",
        "cat /data/f; touch /data/x; echo touch=$?",
    ]);
    ro.expect_code(0);
    assert_eq!(ro.stdout, "from the host\ntouch=1\n", "{}", ro.stderr);
    assert!(ro.stderr.contains("Read-only file system"), "{}", ro.stderr);
    assert_eq!(common::tree_state(vol.path()), before);
    let rw = lab.run(&[
        "-v",
        &format!("{}:/data", vol.path().display()),
        "busybox",
        "sh",
        "-c",
        "touch /data/x; echo touch=$?",
    ]);
    rw.expect_code(0);
    assert_eq!(rw.stdout, "touch=0\n", "{}", rw.stderr);
    assert!(vol.path().join("x").exists());
}

#[test]
fn images_table_has_dockers_columns() {
    let lab = Lab::with_busybox();
    let out = lab.cmd(&["images"]);
    out.expect_code(0);
    // Docker's columns, compared as columns: their widths follow the contents ("Less than a
    // second ago" or "2 seconds ago").
    let columns = |line: &str| -> Vec<String> {
        regex::Regex::new(r" {2,}")
            .unwrap()
            .split(line)
            .map(String::from)
            .collect()
    };
    let filtered = lab.filter(&out.stdout);
    let lines: Vec<&str> = filtered.lines().collect();
    assert_eq!(
        lines.iter().map(|l| columns(l)).collect::<Vec<_>>(),
        [
            vec!["REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE"],
            vec!["busybox", "latest", "[ID]", "[AGO]", "[SIZE]"],
        ],
        "{}",
        out.stdout
    );
}

#[test]
fn pid_namespace_on_and_off() {
    let lab = Lab::with_busybox();
    assert_eq!(lab.run(&["busybox", "sh", "-c", "echo $$"]).stdout, "1\n");
    let host = lab.ok(&[
        "--pid",
        "host",
        "busybox",
        "sh",
        "-c",
        "echo $$; ls /proc | grep -c '^[0-9]'",
    ]);
    let lines: Vec<&str> = host.lines().collect();
    assert_ne!(lines[0], "1", "with --pid host the shell is not pid 1");
    assert!(
        lines[1].parse::<u32>().unwrap() > 3,
        "the host's processes are visible"
    );
}

#[test]
fn uts_ipc_network_and_cgroup_namespaces_switch_off() {
    let lab = Lab::with_busybox();
    let host_name = nix::unistd::gethostname()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    assert_eq!(
        lab.run(&["--uts", "host", "busybox", "hostname"])
            .stdout
            .trim(),
        host_name
    );
    assert_ne!(lab.ok(&["busybox", "hostname"]).trim(), host_name);
    let host_ipc = std::fs::read_link("/proc/self/ns/ipc")
        .unwrap()
        .display()
        .to_string();
    assert_eq!(
        lab.run(&["--ipc", "host", "busybox", "readlink", "/proc/self/ns/ipc"])
            .stdout
            .trim(),
        host_ipc
    );
    assert_ne!(
        lab.ok(&["busybox", "readlink", "/proc/self/ns/ipc"]).trim(),
        host_ipc
    );
    let none = lab.run(&[
        "--network",
        "none",
        "busybox",
        "sh",
        "-c",
        "tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' '",
    ]);
    assert_eq!(none.stdout, "lo\n");
    let host_net = std::fs::read_link("/proc/self/ns/net")
        .unwrap()
        .display()
        .to_string();
    assert_eq!(
        lab.run(&[
            "--network",
            "host",
            "busybox",
            "readlink",
            "/proc/self/ns/net"
        ])
        .stdout
        .trim(),
        host_net
    );
    let private = lab.run(&["busybox", "sh", "-c", "grep memory /proc/self/cgroup"]);
    assert!(private.stdout.trim().ends_with(":/"), "{}", private.stdout);
    let shared = lab.run(&[
        "--cgroupns",
        "host",
        "busybox",
        "sh",
        "-c",
        "grep memory /proc/self/cgroup",
    ]);
    assert!(
        shared
            .stdout
            .contains(&format!("/{}/", lab.cgroup_parent())),
        "{}",
        shared.stdout
    );
}

#[test]
fn layers_overlay_or_copy_and_rootfs_pivot_or_chroot() {
    let lab = Lab::with_busybox();
    let o = lab.run(&[
        "busybox",
        "sh",
        "-c",
        "grep ' / ' /proc/mounts | cut -d' ' -f3",
    ]);
    assert_eq!(o.stdout.trim(), "overlay");
    let c = lab.run(&[
        "--layers",
        "copy",
        "busybox",
        "sh",
        "-c",
        "grep ' / ' /proc/mounts | cut -d' ' -f3; echo hi > /new; cat /new",
    ]);
    c.expect_code(0);
    assert!(!c.stdout.contains("overlay"), "{}", c.stdout);
    assert!(c.stdout.ends_with("hi\n"));
    // pivot_root detached the host's mounts from the container's mount namespace; chroot
    // leaves all of them there, only out of sight. Count them from the host with nsenter
    // (into the pid namespace too: the container's /proc has no `self` for outsiders).
    let count = |mode: &str| -> usize {
        // The container waits for stdin to close, so it is still there when nsenter looks.
        let mut child = lab
            .command(&["run", "--rm", "-i", "--rootfs", mode, "busybox", "cat"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        let pid = loop {
            let inspect = lab.cmd(&["ps", "-q", "--no-trunc"]).stdout;
            if let Some(id) = inspect.split_whitespace().next() {
                let v: serde_json::Value =
                    serde_json::from_str(&lab.cmd(&["inspect", id]).stdout).unwrap();
                if let Some(pid) = v[0]["State"]["Pid"].as_i64().filter(|p| *p > 0) {
                    break pid;
                }
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the container did not start"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        };
        let out = std::process::Command::new("nsenter")
            .args([
                "-t",
                &pid.to_string(),
                "-m",
                "-p",
                "cat",
                "/proc/self/mountinfo",
            ])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "nsenter into the container failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        drop(child.stdin.take());
        assert!(child.wait().unwrap().success());
        String::from_utf8_lossy(&out.stdout).lines().count()
    };
    let (pivot, chroot) = (count("pivot_root"), count("chroot"));
    assert!(
        pivot >= 5,
        "the container's own mounts (/, /proc, /dev, /sys...) are counted: {pivot}"
    );
    assert!(
        chroot > pivot,
        "chroot keeps the host's mounts in the namespace ({chroot} vs {pivot})"
    );
}

#[test]
fn rm_f_kills_a_running_container_and_its_run_reports_137() {
    let lab = Lab::with_busybox();
    let child = lab
        .command(&["run", "--name", "victim", "busybox", "sleep", "30"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while !lab.cmd(&["ps"]).stdout.contains("victim") {
        assert!(
            std::time::Instant::now() < deadline,
            "the container did not show up in ps"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert!(
        lab.cmd(&["ps"]).stdout.contains("Up "),
        "running containers say Up"
    );
    let rm = lab.cmd(&["rm", "victim"]);
    rm.expect_code(1);
    assert!(rm.stderr.contains("rm -f"), "{}", rm.stderr);
    lab.cmd(&["rm", "-f", "victim"]).expect_code(0);
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(137),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(lab.cmd(&["ps", "-aq"]).stdout.is_empty());
}

#[test]
fn config_file_sets_defaults_and_rejects_unknown_keys() {
    let lab = Lab::with_busybox();
    std::fs::write(
        lab.dir.path().join("config.yaml"),
        lab.base_config() + "layers: copy\n",
    )
    .unwrap();
    let o = lab.ok(&[
        "busybox",
        "sh",
        "-c",
        "grep ' / ' /proc/mounts | cut -d' ' -f3",
    ]);
    assert!(
        !o.contains("overlay") && !o.trim().is_empty(),
        "layers: copy in the config gives a copied root, not overlay: {o}"
    );
    std::fs::write(lab.dir.path().join("config.yaml"), "layres: copy\n").unwrap();
    let o = lab.run(&["busybox", "true"]);
    o.expect_code(125);
    assert!(o.stderr.contains("layres"), "{}", o.stderr);
}

#[test]
fn a_relative_command_path_is_the_working_directorys() {
    let lab = Lab::with_busybox();
    // As Docker: `./x` is looked up in the working directory, not in the root.
    let o = lab.run(&["-w", "/bin", "busybox", "./echo", "from the workdir"]);
    o.expect_code(0);
    assert_eq!(o.stdout.trim(), "from the workdir");
    // Not there: 127, naming the path as given.
    let o = lab.run(&["-w", "/etc", "busybox", "./echo", "x"]);
    o.expect_code(127);
    assert!(
        o.stderr.contains("no such file or directory"),
        "{}",
        o.stderr
    );
}
