//! `dockling exec`: a second process inside a running container.

mod common;
use std::time::Duration;

use common::{wait_until, Lab};

/// A lab with a detached `sleep` container named `target`: (lab, its first process's pid).
fn with_target(extra: &[&str]) -> (Lab, i32) {
    let lab = Lab::with_busybox();
    let mut args = vec!["run", "-d", "--name", "target"];
    args.extend_from_slice(extra);
    args.extend_from_slice(&["busybox", "sleep", "1000"]);
    lab.cmd(&args).expect_code(0);
    let pid = wait_until(Duration::from_secs(20), "the container runs", || {
        let o = lab.cmd(&["inspect", "-f", "{{.State.Pid}}", "target"]);
        o.stdout.trim().parse::<i32>().ok().filter(|p| *p > 0)
    });
    (lab, pid)
}

#[test]
fn exec_runs_inside_every_namespace_of_the_container() {
    let (lab, pid) = with_target(&[]);
    for ns in ["pid", "mnt", "uts", "ipc", "net", "cgroup"] {
        let o = lab.cmd(&["exec", "target", "readlink", &format!("/proc/self/ns/{ns}")]);
        o.expect_code(0);
        let container = std::fs::read_link(format!("/proc/{pid}/ns/{ns}")).unwrap();
        let host = std::fs::read_link(format!("/proc/self/ns/{ns}")).unwrap();
        assert_eq!(o.stdout.trim(), container.to_str().unwrap(), "{ns}");
        assert_ne!(container, host, "{ns}: the container has its own");
    }
    // Its pid namespace: only the container's processes, the first one as pid 1.
    let ps = lab.cmd(&["exec", "target", "ps", "-o", "pid,comm"]);
    ps.expect_code(0);
    let lines: Vec<&str> = ps.stdout.lines().skip(1).map(str::trim).collect();
    assert_eq!(lines.len(), 2, "{}", ps.stdout);
    assert_eq!(lines[0], "1 sleep");
    assert!(lines[1].ends_with(" ps"), "{}", ps.stdout);
    // Its file system and hostname.
    let o = lab.cmd(&["exec", "target", "sh", "-c", "hostname; cat /etc/hostname"]);
    o.expect_code(0);
    let mut two = o.stdout.lines();
    assert_eq!(two.next(), two.next(), "{}", o.stdout);
    lab.cmd(&["rm", "-f", "target"]).expect_code(0);
}

#[test]
fn exec_takes_the_containers_user_env_and_workdir_unless_told_otherwise() {
    let (lab, _) = with_target(&["-e", "FROM_RUN=1", "-w", "/tmp"]);
    let o = lab.cmd(&[
        "exec",
        "target",
        "sh",
        "-c",
        "echo $FROM_RUN $(pwd) $(id -u)",
    ]);
    o.expect_code(0);
    assert_eq!(o.stdout, "1 /tmp 0\n");
    let o = lab.cmd(&[
        "exec",
        "-e",
        "FROM_RUN=2",
        "-e",
        "NEW=x",
        "-w",
        "/etc",
        "-u",
        "nobody",
        "target",
        "sh",
        "-c",
        "echo $FROM_RUN $NEW $(pwd) $(id -un)",
    ]);
    o.expect_code(0);
    assert_eq!(o.stdout, "2 x /etc nobody\n");
    // Docker leaves out `-e NAME` when NAME is not set here.
    let o = lab.cmd_env(&["exec", "-e", "SURELY_UNSET_HERE", "target", "env"], &[]);
    o.expect_code(0);
    assert!(!o.stdout.contains("SURELY_UNSET_HERE"), "{}", o.stdout);
    // The container's capabilities and seccomp filter, unless --privileged.
    let status = |args: &[&str]| {
        let mut all = vec!["exec"];
        all.extend_from_slice(args);
        all.extend_from_slice(&[
            "target",
            "grep",
            "-E",
            "^(CapBnd|Seccomp):",
            "/proc/self/status",
        ]);
        let o = lab.cmd(&all);
        o.expect_code(0);
        o.stdout
    };
    let plain = status(&[]);
    assert!(plain.contains("Seccomp:\t2"), "{plain}");
    assert!(plain.contains("CapBnd:\t00000000a80425fb"), "{plain}");
    let privileged = status(&["--privileged"]);
    assert!(privileged.contains("Seccomp:\t0"), "{privileged}");
    assert!(
        !privileged.contains("CapBnd:\t00000000a80425fb"),
        "{privileged}"
    );
    lab.cmd(&["rm", "-f", "target"]).expect_code(0);
}

#[test]
fn exec_exit_codes_are_dockers() {
    let (lab, _) = with_target(&[]);
    lab.cmd(&["exec", "target", "sh", "-c", "exit 7"])
        .expect_code(7);
    let o = lab.cmd(&["exec", "target", "no-such-command"]);
    o.expect_code(127);
    assert!(o.stderr.contains("no-such-command"), "{}", o.stderr);
    let o = lab.cmd(&["exec", "target", "/etc/passwd"]);
    o.expect_code(126);
    let o = lab.cmd(&["exec", "-w", "/no/such/dir", "target", "true"]);
    o.expect_code(126);
    assert!(o.stderr.contains("/no/such/dir"), "{}", o.stderr);
    let o = lab.cmd(&["exec", "-u", "nosuchuser", "target", "true"]);
    o.expect_code(125);
    assert!(o.stderr.contains("nosuchuser"), "{}", o.stderr);
    lab.cmd(&["stop", "-t", "0", "target"]).expect_code(0);
    let o = lab.cmd(&["exec", "target", "true"]);
    o.expect_code(125);
    assert!(
        o.stderr
            .contains("cannot exec into container target: it is not running"),
        "{}",
        o.stderr
    );
    let o = lab.cmd(&["exec", "nosuch", "true"]);
    o.expect_code(125);
    assert!(o.stderr.contains("no such container"), "{}", o.stderr);
    lab.cmd(&["rm", "target"]).expect_code(0);
}

/// The command's process joins the container's cgroup (limits and `stop` reach it) and dies
/// with its `dockling exec` (PR_SET_PDEATHSIG).
#[test]
fn exec_joins_the_cgroup_and_dies_with_its_dockling() {
    let (lab, pid) = with_target(&["-m", "64m"]);
    let line = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    let procs = line
        .lines()
        .find_map(|l| {
            let mut f = l.splitn(3, ':');
            let (_, ctrl, path) = (f.next()?, f.next()?, f.next()?);
            match ctrl {
                "memory" => Some(format!("/sys/fs/cgroup/memory{path}/cgroup.procs")),
                "" if !std::path::Path::new("/sys/fs/cgroup/memory").exists() => {
                    Some(format!("/sys/fs/cgroup{path}/cgroup.procs"))
                }
                _ => None,
            }
        })
        .expect("the container's memory cgroup");
    let count = || std::fs::read_to_string(&procs).unwrap().lines().count();
    assert_eq!(count(), 1, "{procs}");
    let mut exec = lab
        .command(&["exec", "target", "sleep", "1000"])
        .spawn()
        .unwrap();
    wait_until(Duration::from_secs(20), "the exec'd process joins", || {
        (count() == 2).then_some(())
    });
    exec.kill().unwrap(); // SIGKILL, to the dockling exec this test started
    exec.wait().unwrap();
    wait_until(
        Duration::from_secs(20),
        "the exec'd process is gone",
        || (count() == 1).then_some(()),
    );
    lab.cmd(&["rm", "-f", "target"]).expect_code(0);
    assert_eq!(lab.cgroups_left(), Vec::<std::path::PathBuf>::new());
}

#[test]
fn exec_it_gets_a_terminal_and_stdin() {
    let (lab, _) = with_target(&[]);
    let o = lab
        .in_terminal("", "", "exec -it target sh -c 'tty; echo TERM=$TERM'")
        .wait(Duration::from_secs(30), |_| {});
    assert_eq!(o.1, 0, "{}", o.0);
    assert!(o.0.contains("/dev/pts/0"), "{}", o.0);
    assert!(o.0.contains("TERM=xterm"), "{}", o.0);
    let mut piped = lab
        .command(&["exec", "-i", "target", "sh", "-c", "read x; echo got $x"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(piped.stdin.as_mut().unwrap(), b"hello\n").unwrap();
    let out = piped.wait_with_output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "got hello\n");
    lab.cmd(&["rm", "-f", "target"]).expect_code(0);
}

#[test]
fn exec_it_that_writes_while_its_input_is_flooded_still_ends() {
    // As run -it (tests/tty.rs): the exec'd process never reads its terminal and writes a
    // lot to it while the user's side sends 256 KiB; a relay blocked writing that input
    // would stop reading the output, and both would wait for ever. A failure guard, not a
    // timing.
    let (lab, _) = with_target(&[]);
    let term = lab.in_terminal(
        "",
        "",
        "exec -it target sh -c 'stty raw -echo; yes 0123456789abcdef | head -c 32000000; echo; echo wrote-all; exit 3'",
    );
    let (out, code, sent) = term.flooded();
    let tail: String = out
        .chars()
        .skip(out.chars().count().saturating_sub(300))
        .collect();
    assert_eq!(code, 3, "…{tail}");
    assert!(out.contains("wrote-all"), "…{tail}");
    assert!(sent >= 64 << 10, "only {sent} bytes of input were sent");
    lab.cmd(&["rm", "-f", "target"]).expect_code(0);
}

/// Regression: `exec` into a `--rootfs chroot` container joined its mount namespace, whose
/// root is the host's, and ran the command among the host's files.
#[test]
fn exec_into_a_chroot_container_sees_the_containers_files_not_the_hosts() {
    let (lab, pid) = with_target(&["--rootfs", "chroot"]);
    // The first process's view, from the host: its root's entries.
    let mut image: Vec<String> = std::fs::read_dir(format!("/proc/{pid}/root"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    image.sort();
    let o = lab.cmd(&["exec", "target", "ls", "-1", "/"]);
    o.expect_code(0);
    let seen: Vec<&str> = o.stdout.lines().collect();
    assert_eq!(seen, image, "exec's / is not the container's");
    // And a file only the container has.
    let o = lab.cmd(&["exec", "target", "sh", "-c", "echo mine > /tmp/only-here"]);
    o.expect_code(0);
    assert_eq!(
        std::fs::read_to_string(format!("/proc/{pid}/root/tmp/only-here")).unwrap(),
        "mine\n"
    );
    lab.cmd(&["rm", "-f", "target"]).expect_code(0);
}
