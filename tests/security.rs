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
    user.expect_code(0);
    assert_eq!(
        status_field(&user.stdout, "CapEff:"),
        "0000000000000000",
        "a non-root user has none"
    );
    // --privileged: every capability dockling itself holds, which (as root) is the whole
    // bounding set it inherited from this test.
    let engine = std::fs::read_to_string("/proc/self/status").unwrap();
    let all = status_field(&engine, "CapBnd:");
    assert_ne!(
        all, "00000000a80425fb",
        "the host's bounding set is Docker's default?"
    );
    let p = lab.ok(&["--privileged", "busybox", "cat", "/proc/self/status"]);
    assert_eq!(status_field(&p, "CapEff:"), all);
    assert_eq!(status_field(&p, "CapPrm:"), all);
    assert_eq!(status_field(&p, "CapBnd:"), all);
    assert_eq!(status_field(&p, "Seccomp:"), "0");
}

#[test]
fn masked_and_readonly_paths() {
    let lab = Lab::with_busybox();
    let o = lab.run(&["busybox", "sh", "-c", "cat /proc/keys | wc -c; cat /proc/timer_list | wc -c; echo 1 > /proc/sys/vm/drop_caches 2>/dev/null && echo writable || echo read-only; ls /sys/firmware | wc -l"]);
    o.expect_code(0);
    assert_eq!(o.stdout, "0\n0\nread-only\n0\n");
    // --privileged masks nothing: the kernel's own timer_list, whose first line (the format
    // version) is the host's; the rest changes from one read to the next.
    let host = std::fs::read_to_string("/proc/timer_list").unwrap();
    let first = host.lines().next().unwrap();
    assert!(first.starts_with("Timer List Version"), "{first}");
    let p = lab.ok(&[
        "--privileged",
        "busybox",
        "head",
        "-n",
        "1",
        "/proc/timer_list",
    ]);
    assert_eq!(p, format!("{first}\n"));
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

/// The probe of tests/fixtures/seccomp_probe.c, built static (once per machine, under a lock)
/// into a directory of its own that tests bind into containers at `/probe`.
fn seccomp_probe_dir() -> std::path::PathBuf {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = root.join("target/test-fixtures/seccomp-probe");
    std::fs::create_dir_all(&dir).unwrap();
    let lock =
        std::fs::File::create(root.join("target/test-fixtures/.seccomp-probe.lock")).unwrap();
    // SAFETY: flock on a file we hold open; released when `lock` is dropped.
    unsafe { libc::flock(std::os::fd::AsRawFd::as_raw_fd(&lock), libc::LOCK_EX) };
    let src = root.join("tests/fixtures/seccomp_probe.c");
    let bin = dir.join("seccomp_probe");
    let fresh = |b: &std::path::Path| {
        let (Ok(b), Ok(s)) = (std::fs::metadata(b), std::fs::metadata(&src)) else {
            return false;
        };
        b.modified().unwrap() >= s.modified().unwrap()
    };
    if !fresh(&bin) {
        let tmp = dir.join("seccomp_probe.tmp");
        let out = std::process::Command::new("cc")
            .args(["-static", "-O2", "-o"])
            .arg(&tmp)
            .arg(&src)
            .output()
            .expect("run cc: the seccomp tests build a static probe (install gcc and libc6-dev)");
        assert!(
            out.status.success(),
            "cc -static tests/fixtures/seccomp_probe.c failed (install gcc and libc6-dev): {}",
            String::from_utf8_lossy(&out.stderr)
        );
        std::fs::rename(&tmp, &bin).unwrap();
    }
    dir
}

/// The probes, in an order where none changes what the next one sees (`unshare_user` moves
/// the probe into a new user namespace, so it comes last).
const PROBES: &[&str] = &[
    "fork",
    "clone_newuser",
    "clone3",
    "keyctl",
    "io_uring_setup",
    "personality_aslr_off",
    "unshare_user",
];

/// Run the probe in a busybox container with `flags`: `probes`' answers, one `name result` a line.
fn run_probe(lab: &Lab, flags: &[&str], probes: &[&str]) -> common::Out {
    let vol = format!("{}:/probe:ro", seccomp_probe_dir().display());
    let mut args = vec!["-v", vol.as_str()];
    args.extend_from_slice(flags);
    args.extend(["busybox", "/probe/seccomp_probe"]);
    args.extend_from_slice(probes);
    lab.run(&args)
}

/// [`run_probe`] with every probe of [`PROBES`]; it must exit 0.
fn probe(lab: &Lab, flags: &[&str]) -> String {
    let o = run_probe(lab, flags, PROBES);
    o.expect_code(0);
    o.stdout
}

/// Regression: the old test ran `unshare -u`, which fails for lack of CAP_SYS_ADMIN whether or
/// not seccomp is on. These calls are all allowed by Docker's 14 capabilities; only seccomp
/// refuses them, and with `seccomp=unconfined` the same calls succeed.
#[test]
fn seccomp_refuses_calls_the_capabilities_allow_and_unconfined_lets_them_through() {
    let lab = Lab::with_busybox();
    let answers = |s: &str| s.lines().map(String::from).collect::<Vec<_>>();
    assert_eq!(
        answers(&probe(&lab, &[])),
        [
            "fork OK",
            "clone_newuser EPERM",
            "clone3 ENOSYS",
            "keyctl EPERM",
            "io_uring_setup EPERM",
            "personality_aslr_off EPERM",
            "unshare_user EPERM",
        ],
        "Docker's default profile"
    );
    let unconfined = probe(&lab, &["--security-opt", "seccomp=unconfined"]);
    assert_eq!(
        answers(&unconfined),
        PROBES.iter().map(|p| format!("{p} OK")).collect::<Vec<_>>(),
        "without a filter the kernel allows every one of these to Docker's capabilities"
    );
    // The capability groups: CAP_SYS_ADMIN brings clone with namespace flags, clone3 and
    // unshare back; keyctl, io_uring and personality stay refused (no capability brings them).
    assert_eq!(
        answers(&probe(&lab, &["--cap-add", "SYS_ADMIN"])),
        [
            "fork OK",
            "clone_newuser OK",
            "clone3 OK",
            "keyctl EPERM",
            "io_uring_setup EPERM",
            "personality_aslr_off EPERM",
            "unshare_user OK",
        ],
        "--cap-add SYS_ADMIN"
    );
    let o = lab.run(&[
        "--security-opt",
        "seccomp=unconfined",
        "busybox",
        "grep",
        "Seccomp:",
        "/proc/self/status",
    ]);
    o.expect_code(0);
    assert_eq!(status_field(&o.stdout, "Seccomp:"), "0");
}

/// The filter checks the architecture first. A 64-bit process can make i386 syscalls
/// (`int $0x80`: another table, other numbers) and x32 ones (bit 30 set); neither gets around
/// the policy: i386 calls meet the same rules by their i386 numbers, x32 is killed.
#[cfg(target_arch = "x86_64")]
#[test]
fn seccomp_i386_calls_meet_the_same_rules_and_x32_is_killed() {
    let lab = Lab::with_busybox();
    let o = run_probe(&lab, &[], &["i386_unshare_user"]);
    o.expect_code(0);
    assert_eq!(o.stdout, "i386_unshare_user EPERM\n");
    let o = run_probe(
        &lab,
        &["--security-opt", "seccomp=unconfined"],
        &["i386_unshare_user"],
    );
    o.expect_code(0);
    assert_eq!(
        o.stdout, "i386_unshare_user OK\n",
        "this kernel runs i386 calls"
    );

    // Unconfined, the kernel answers (ENOSYS where x32 is not built in); under the filter
    // the process is killed with SIGSYS: 128 + 31.
    let o = run_probe(
        &lab,
        &["--security-opt", "seccomp=unconfined"],
        &["x32_getpid"],
    );
    o.expect_code(0);
    assert!(o.stdout.starts_with("x32_getpid "), "{}", o.stdout);
    let o = run_probe(&lab, &[], &["x32_getpid"]);
    o.expect_code(159);
    assert_eq!(o.stdout, "", "killed before it could print");
}

/// `no-new-privileges` works alone and next to `seccomp=unconfined` (each switch only its own).
#[test]
fn no_new_privileges_and_seccomp_switch_independently() {
    let lab = Lab::with_busybox();
    let status = |flags: &[&str]| {
        let mut args = flags.to_vec();
        args.extend(["busybox", "cat", "/proc/self/status"]);
        let o = lab.run(&args);
        o.expect_code(0);
        (
            status_field(&o.stdout, "NoNewPrivs:"),
            status_field(&o.stdout, "Seccomp:"),
        )
    };
    assert_eq!(status(&[]), ("0".into(), "2".into()));
    assert_eq!(
        status(&["--security-opt", "no-new-privileges"]),
        ("1".into(), "2".into())
    );
    assert_eq!(
        status(&[
            "--security-opt",
            "no-new-privileges",
            "--security-opt",
            "seccomp=unconfined"
        ]),
        ("1".into(), "0".into())
    );
    assert_eq!(
        status(&["--security-opt", "seccomp=unconfined"]),
        ("0".into(), "0".into())
    );
}

/// `--security-opt seccomp=<file>` in Docker's JSON format: a profile that refuses mkdir.
#[test]
fn a_custom_seccomp_profile_refuses_mkdir() {
    let lab = Lab::with_busybox();
    let profile = lab.dir.path().join("no-mkdir.json");
    std::fs::write(
        &profile,
        r#"{
            "defaultAction": "SCMP_ACT_ALLOW",
            "archMap": [{"architecture": "SCMP_ARCH_X86_64", "subArchitectures": ["SCMP_ARCH_X86"]},
                        {"architecture": "SCMP_ARCH_AARCH64", "subArchitectures": ["SCMP_ARCH_ARM"]}],
            "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"}]
        }"#,
    )
    .unwrap();
    let opt = format!("seccomp={}", profile.display());
    let ok = lab.run(&["busybox", "mkdir", "/tmp/d"]);
    ok.expect_code(0);
    let refused = lab.run(&["--security-opt", &opt, "busybox", "mkdir", "/tmp/d"]);
    refused.expect_code(1);
    assert!(
        refused.stderr.contains("Operation not permitted"),
        "{}",
        refused.stderr
    );
    // As in Docker, a profile named explicitly applies even with --privileged.
    let privileged = lab.run(&[
        "--privileged",
        "--security-opt",
        &opt,
        "busybox",
        "mkdir",
        "/tmp/d",
    ]);
    privileged.expect_code(1);
    // The bundle holds the same policy, so runc and crun would refuse mkdir too.
    lab.cmd(&[
        "run",
        "--name",
        "custom",
        "--security-opt",
        &opt,
        "busybox",
        "true",
    ])
    .expect_code(0);
    let v: serde_json::Value =
        serde_json::from_str(&lab.cmd(&["inspect", "custom"]).stdout).unwrap();
    let dir = std::path::Path::new(v[0]["GraphDriver"]["Data"]["MergedDir"].as_str().unwrap())
        .parent()
        .unwrap()
        .to_path_buf();
    let cfg: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("config.json")).unwrap()).unwrap();
    assert_eq!(
        cfg["linux"]["seccomp"]["defaultAction"], "SCMP_ACT_ALLOW",
        "{}",
        cfg["linux"]
    );
    assert_eq!(
        cfg["linux"]["seccomp"]["syscalls"][0]["names"],
        serde_json::json!(["mkdir", "mkdirat"])
    );
    lab.cmd(&["rm", "custom"]).expect_code(0);
}

#[test]
fn a_bad_seccomp_profile_is_a_clear_125_naming_the_field() {
    let lab = Lab::with_busybox();
    let profile = lab.dir.path().join("bad.json");
    std::fs::write(
        &profile,
        r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_DENY"}]}"#,
    )
    .unwrap();
    let opt = format!("seccomp={}", profile.display());
    let o = lab.run(&["--security-opt", &opt, "busybox", "true"]);
    o.expect_code(125);
    assert!(
        o.stderr.contains("syscalls[0].action") && o.stderr.contains("SCMP_ACT_DENY"),
        "{}",
        o.stderr
    );
    let o = lab.run(&[
        "--security-opt",
        "seccomp=/nonexistent.json",
        "busybox",
        "true",
    ]);
    o.expect_code(125);
    assert!(
        o.stderr.contains("open seccomp profile /nonexistent.json"),
        "{}",
        o.stderr
    );
    // A FIFO is refused at once (opened O_NONBLOCK), not waited on.
    let fifo = lab.dir.path().join("fifo.json");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    let opt = format!("seccomp={}", fifo.display());
    let o = lab.run(&["--security-opt", &opt, "busybox", "true"]);
    o.expect_code(125);
    assert!(o.stderr.contains("not a regular file"), "{}", o.stderr);
    assert!(
        lab.containers_left().is_empty(),
        "{:?}",
        lab.containers_left()
    );
}

#[test]
fn reexec_passes_non_utf8_arguments_and_environment_byte_for_byte() {
    // The engine re-executes itself from a sealed binary before anything else; its argv and
    // environment once went through to_string_lossy, so a byte that is not UTF-8 came out as
    // U+FFFD (or the engine panicked reading its arguments): the successor then looked for an
    // --env-file and a config file that do not exist.
    use std::os::unix::ffi::OsStrExt;
    let lab = Lab::with_busybox();
    let weird = lab
        .dir
        .path()
        .join(std::ffi::OsStr::from_bytes(b"bytes-\xff\xfe"));
    std::fs::create_dir(&weird).unwrap();
    let env_file = weird.join("env");
    std::fs::write(&env_file, "FROM_THE_ENV_FILE=yes\n").unwrap();
    let config = weird.join("config.yaml");
    std::fs::copy(lab.dir.path().join("config.yaml"), &config).unwrap();
    let o: common::Out = lab
        .command(&["run", "--rm"])
        .arg("--env-file")
        .arg(&env_file)
        .args(["busybox", "env"])
        .env("DOCKLING_CONFIG", &config)
        .env_remove("DOCKLING_NO_REEXEC")
        .output()
        .unwrap()
        .into();
    o.expect_code(0);
    assert!(
        o.stdout.lines().any(|l| l == "FROM_THE_ENV_FILE=yes"),
        "{}",
        o.stdout
    );
    // It did run from the sealed binary (a failed re-exec is only a warning).
    assert!(
        !o.stderr.contains("could not run from a sealed copy"),
        "{}",
        o.stderr
    );
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
