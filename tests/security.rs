//! Docker's default security, checked from inside the container.

mod common;
use common::Lab;
use std::os::unix::process::CommandExt;

fn status_field(out: &str, key: &str) -> String {
    out.lines()
        .find(|l| l.starts_with(key))
        .and_then(|l| l.split_whitespace().nth(1))
        .unwrap_or_default()
        .to_string()
}

#[test]
fn default_capabilities_are_dockers_14() {
    let lab = Lab::with_busybox();
    let o = lab.run(&["busybox", "cat", "/proc/self/status"]);
    o.expect_code(0);
    assert_eq!(status_field(&o.stdout, "CapEff:"), "00000000a80425fb");
    assert_eq!(status_field(&o.stdout, "CapBnd:"), "00000000a80425fb");
    assert_eq!(status_field(&o.stdout, "CapInh:"), "0000000000000000");
    assert_eq!(status_field(&o.stdout, "CapAmb:"), "0000000000000000");
    assert_eq!(status_field(&o.stdout, "Seccomp:"), "2");
    let user = lab.run(&["-u", "1000", "busybox", "cat", "/proc/self/status"]);
    assert_eq!(
        status_field(&user.stdout, "CapEff:"),
        "0000000000000000",
        "a non-root user has none"
    );
    let p = lab.ok(&["--privileged", "busybox", "cat", "/proc/self/status"]);
    assert_ne!(status_field(&p, "CapEff:"), "00000000a80425fb");
    assert_eq!(status_field(&p, "Seccomp:"), "0");
}

#[test]
fn masked_and_readonly_paths() {
    let lab = Lab::with_busybox();
    let o = lab.run(&["busybox", "sh", "-c", "cat /proc/keys | wc -c; cat /proc/timer_list | wc -c; echo 1 > /proc/sys/vm/drop_caches 2>/dev/null && echo writable || echo read-only; ls /sys/firmware | wc -l"]);
    assert_eq!(o.stdout, "0\n0\nread-only\n0\n");
    let p = lab.ok(&[
        "--privileged",
        "busybox",
        "sh",
        "-c",
        "cat /proc/timer_list | wc -c",
    ]);
    assert_ne!(p.trim(), "0", "--privileged masks nothing");
}

#[test]
fn only_stdio_reaches_the_container() {
    let lab = Lab::with_busybox();
    // $$ is the shell, pid 1; its descriptors are what the engine handed over.
    let o = lab.run(&["busybox", "sh", "-c", "ls /proc/$$/fd; echo"]);
    assert_eq!(
        o.stdout.split_whitespace().collect::<Vec<_>>(),
        vec!["0", "1", "2"]
    );
}

#[test]
fn seccomp_refuses_mount_and_unconfined_allows_what_caps_allow() {
    let lab = Lab::with_busybox();
    let o = lab.run(&["busybox", "sh", "-c", "unshare -u true; echo $?"]);
    assert_ne!(o.stdout.trim(), "0");
    let o = lab.run(&[
        "--security-opt",
        "seccomp=unconfined",
        "busybox",
        "grep",
        "Seccomp:",
        "/proc/self/status",
    ]);
    assert!(o.stdout.contains('0'), "{}", o.stdout);
}

#[test]
fn the_engine_binary_cannot_be_written_from_the_container() {
    // CVE-2019-5736: what a container could reach as /proc/<engine>/exe must not be writable.
    // The engine re-executes from a detached read-only bind mount of itself (or a sealed memfd
    // on older kernels); a write through /proc/<engine>/exe is refused.
    let lab = Lab::with_busybox();
    // The container waits for a line on stdin (-i) before it tries the write, so the test
    // looks at the engine first and then lets it go: no race with a sleep.
    let mut child = lab
        .command(&[
            "run",
            "--rm",
            "-i",
            "--pid",
            "host",
            "busybox",
            "sh",
            "-c",
            "read go; echo x >> /proc/$PPID/exe && echo WROTE || echo refused",
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // The re-exec happens first thing: wait (bounded) until the engine's /proc/<pid>/exe is
    // the protected copy.
    let mut protected = false;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while std::time::Instant::now() < deadline {
        if let Ok(f) = std::fs::File::open(format!("/proc/{}/exe", child.id())) {
            let sealed = nix::fcntl::fcntl(
                std::os::fd::AsRawFd::as_raw_fd(&f),
                nix::fcntl::FcntlArg::F_GET_SEALS,
            )
            .unwrap_or(0)
                != 0;
            let read_only = nix::sys::statvfs::fstatvfs(&f)
                .is_ok_and(|v| v.flags().contains(nix::sys::statvfs::FsFlags::ST_RDONLY));
            if sealed || read_only {
                protected = true;
                break;
            }
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(b"go\n").unwrap();
    }
    let out = child.wait_with_output().unwrap();
    assert!(
        protected,
        "the engine does not run from a read-only or sealed binary"
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "refused\n");
    let bin = std::fs::read(env!("CARGO_BIN_EXE_dockling")).unwrap();
    assert!(!bin.ends_with(b"x\n"), "the host binary was changed");
}

#[test]
fn not_root_is_a_clear_125() {
    let lab = Lab::with_busybox();
    let o: common::Out = lab
        .command(&["run", "--rm", "busybox", "true"])
        .env("DOCKLING_NO_REEXEC", "1")
        .uid(65534)
        .gid(65534)
        .output()
        .unwrap()
        .into();
    o.expect_code(125);
    assert!(
        o.stderr.contains("needs root") && o.stderr.contains("sudo"),
        "{}",
        o.stderr
    );
}

/// `--cap-drop ALL`, `--cap-drop SETGID` and `--cap-drop SETUID -u 1000` failed with
/// `setgroups: EPERM`: the capabilities were dropped before the user switch that needs them.
/// Docker runs all three; the sets inside are what was asked for.
#[test]
fn cap_drop_setgid_setuid_or_all_still_switches_user() {
    let lab = Lab::with_busybox();
    let status = "grep -E '^Cap(Eff|Bnd)' /proc/self/status; id -u; id -G";
    let all = lab.run(&["--cap-drop", "ALL", "busybox", "sh", "-c", status]);
    all.expect_code(0);
    assert_eq!(status_field(&all.stdout, "CapEff:"), "0000000000000000");
    assert_eq!(status_field(&all.stdout, "CapBnd:"), "0000000000000000");

    let setgid = lab.run(&["--cap-drop", "SETGID", "busybox", "sh", "-c", status]);
    setgid.expect_code(0);
    // Docker's 0xa80425fb without CAP_SETGID (bit 6).
    assert_eq!(status_field(&setgid.stdout, "CapEff:"), "00000000a80425bb");
    assert_eq!(status_field(&setgid.stdout, "CapBnd:"), "00000000a80425bb");

    let setuid = lab.run(&[
        "--cap-drop",
        "SETUID",
        "-u",
        "1000",
        "busybox",
        "sh",
        "-c",
        status,
    ]);
    setuid.expect_code(0);
    assert_eq!(status_field(&setuid.stdout, "CapEff:"), "0000000000000000");
    // Without CAP_SETUID (bit 7).
    assert_eq!(status_field(&setuid.stdout, "CapBnd:"), "00000000a804257b");
    let ids: Vec<&str> = setuid.stdout.lines().skip(2).collect();
    assert_eq!(ids, vec!["1000", "1000"], "{}", setuid.stdout);

    // no-new-privileges still applies with the new order.
    let nnp = lab.run(&[
        "--cap-drop",
        "ALL",
        "--security-opt",
        "no-new-privileges",
        "-u",
        "1000",
        "busybox",
        "grep",
        "NoNewPrivs",
        "/proc/self/status",
    ]);
    nnp.expect_code(0);
    assert_eq!(status_field(&nnp.stdout, "NoNewPrivs:"), "1");
}

/// With `umask 077` in the user's shell, `/` inside became 0700 and the device nodes 0600
/// (before that they were `0666 & ~umask` anyway, so a non-root user could not write
/// /dev/null). Docker's devices are 0666, `/` is 0755 and the container's umask is 0022.
#[test]
fn host_umask_077_leaves_devices_0666_root_0755_and_umask_0022() {
    let lab = Lab::with_busybox();
    let run_under_077 = |args: &[&str]| -> common::Out {
        let mut all = vec!["run", "--rm"];
        all.extend_from_slice(args);
        let mut c = lab.command(&all);
        // SAFETY: umask(2) is async-signal-safe and touches only the child's own state.
        unsafe {
            c.pre_exec(|| {
                libc::umask(0o077);
                Ok(())
            });
        }
        c.output().expect("run dockling").into()
    };
    let o = run_under_077(&[
        "busybox",
        "sh",
        "-c",
        "stat -c '%a %n' /dev/null /dev/zero /dev/tty / /etc/hosts; umask",
    ]);
    o.expect_code(0);
    assert_eq!(
        o.stdout,
        "666 /dev/null\n666 /dev/zero\n666 /dev/tty\n755 /\n644 /etc/hosts\n0022\n"
    );
    let user = run_under_077(&[
        "-u",
        "1000",
        "busybox",
        "sh",
        "-c",
        "echo hi >/dev/null && cat /etc/hosts >/dev/null && ls / >/dev/null",
    ]);
    user.expect_code(0);
}
