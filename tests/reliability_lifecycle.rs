//! Issue 9, a container's life and death: the signals it starts with, a record no command may
//! remove while its container starts or runs, children that outlive it (`--pid host`), and
//! the leftovers of a killed `dockling run` (records, cgroups), noticed by the next command.

mod common;

use std::os::unix::process::CommandExt;
use std::process::Stdio;

use common::*;

/// `signal(7)`: an ignored signal stays ignored across `execve`. dockling ignores SIGPIPE (every
/// Rust program does), so before the fix a container's `yes` writing into a closed pipe got
/// EPIPE, said "Broken pipe" and exited 1 instead of dying of SIGPIPE (141). The `yes` here is
/// not the container's pid 1: the kernel never gives pid 1 of a namespace a signal it has no
/// handler for, whatever its disposition.
#[test]
fn container_signals_start_at_default_so_yes_dies_of_sigpipe() {
    let lab = Lab::with_busybox();
    let o = lab.run(&[
        "busybox",
        "sh",
        "-c",
        "(yes; echo \"yes ended with $?\" >&2) | head -1",
    ]);
    o.expect_code(0);
    assert_eq!(o.stdout, "y\n");
    assert!(
        o.stderr.contains("yes ended with 141"),
        "yes must die of SIGPIPE: {}",
        o.stderr
    );
    assert!(!o.stderr.contains("Broken pipe"), "{}", o.stderr);
}

/// `dockling run --rm busybox yes | head -1`: Docker and the host print "y" and give 141
/// (128 + SIGPIPE), silently. In its own pid namespace `yes` is pid 1, which the kernel never
/// kills with a signal it has no handler for, so dockling copies the container's stdout from a
/// pipe of its own and, on EPIPE, kills the container and exits 141 (as the docker client
/// does); with `--pid host` the same holds.
fn yes_into_head(extra: &[&str]) {
    let lab = Lab::with_busybox();
    let mut args = vec!["run", "--rm"];
    args.extend_from_slice(extra);
    args.extend_from_slice(&["busybox", "yes"]);
    let mut child = lab
        .command(&args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = child.stdout.take().unwrap();
    let mut first = [0u8; 2];
    std::io::Read::read_exact(&mut out, &mut first).unwrap();
    assert_eq!(&first, b"y\n");
    drop(out); // what `head -1` does after its line
    let o: Out = child.wait_with_output().unwrap().into();
    assert_eq!(o.code, 141, "stderr: {}", o.stderr);
    assert!(!o.stderr.contains("Broken pipe"), "{}", o.stderr);
    assert!(
        lab.containers_left().is_empty(),
        "{:?}",
        lab.containers_left()
    );
}

#[test]
fn yes_piped_into_head_exits_141_silently() {
    yes_into_head(&[]);
}

#[test]
fn yes_piped_into_head_exits_141_silently_with_pid_host() {
    yes_into_head(&["--pid", "host"]);
}

/// Started under `nohup` (SIGHUP ignored), in the background of a shell (SIGINT and SIGQUIT
/// ignored), with a signal blocked: the container's program still starts with no signal
/// ignored and none blocked, as in Docker.
#[test]
fn ignored_and_blocked_signals_of_the_caller_do_not_reach_the_container() {
    let lab = Lab::with_busybox();
    let mut cmd = lab.command(&[
        "run",
        "--rm",
        "busybox",
        "grep",
        "-E",
        "^Sig(Ign|Blk)",
        "/proc/self/status",
    ]);
    // SAFETY: only async-signal-safe calls (sigaction, sigprocmask) between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            for sig in [libc::SIGHUP, libc::SIGINT, libc::SIGQUIT, libc::SIGTERM] {
                libc::signal(sig, libc::SIG_IGN);
            }
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            libc::sigaddset(&mut set, libc::SIGUSR2);
            libc::sigaddset(&mut set, libc::SIGALRM);
            libc::sigprocmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
            Ok(())
        });
    }
    let o: Out = cmd.output().unwrap().into();
    o.expect_code(0);
    assert_eq!(
        o.stdout, "SigBlk:\t0000000000000000\nSigIgn:\t0000000000000000\n",
        "stderr: {}",
        o.stderr
    );
}

/// Wait for `cond` (a failure guard of 30 s).
fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    wait_until(std::time::Duration::from_secs(30), what, || {
        cond().then_some(())
    })
}

/// The container cgroups left under the lab's cgroup parent, in every hierarchy.
/// No container record and no cgroup of the lab's containers is left.
fn assert_nothing_left(lab: &Lab) {
    assert!(
        lab.containers_left().is_empty(),
        "{:?}",
        lab.containers_left()
    );
    assert_eq!(
        lab.cgroups_left(),
        Vec::<std::path::PathBuf>::new(),
        "cgroups left"
    );
}

/// True while `pid` is a process running `sleep 1000` (not another process that got its pid).
fn sleeping(pid: i32) -> bool {
    std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| c == b"sleep\x001000\x00")
}

/// The `ps` line of container `name`, if `ps` (with `args`) shows it.
fn ps_line(lab: &Lab, args: &[&str], name: &str) -> Option<String> {
    let mut all = vec!["ps"];
    all.extend_from_slice(args);
    let o = lab.cmd(&all);
    o.expect_code(0);
    o.stdout
        .lines()
        .find(|l| l.split_whitespace().last() == Some(name))
        .map(String::from)
}

/// A `run` paused by `--step` at `pause` (the step about to start), its stdin and stderr
/// kept so the test decides when it goes on.
struct Paused {
    child: std::process::Child,
    stdin: std::process::ChildStdin,
    err: std::io::BufReader<std::process::ChildStderr>,
}

// The child is handed to the caller, who waits for it; a panic here ends the test process.
#[allow(clippy::zombie_processes)]
fn run_paused_at(lab: &Lab, args: &[&str], pause: &str) -> Paused {
    use std::io::{BufRead, Write};
    let mut all = vec!["run", "--step"];
    all.extend_from_slice(args);
    let mut child = lab
        .command(&all)
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut err = std::io::BufReader::new(child.stderr.take().unwrap());
    let mut seen = String::new();
    loop {
        let mut line = String::new();
        let n = err.read_line(&mut line).unwrap();
        if n == 0 {
            let status = child.wait();
            panic!("the run ended ({status:?}) before the pause at {pause}:\n{seen}");
        }
        seen.push_str(&line);
        if !line.contains("⏸ next: [") {
            continue;
        }
        if line.contains(&format!("[{pause}]")) {
            return Paused { child, stdin, err };
        }
        stdin.write_all(b"\n").unwrap();
    }
}

/// Issue 9 item 6, "a ghost container": `rm` of a container whose `run` was still starting it
/// deleted its record while it went on running, invisible to `ps` and unremovable. Paused by
/// `--step` with its record, cgroup and first process made, the container must be refused to
/// `rm`, and `rm -f` must kill it and remove everything.
#[test]
fn rm_of_a_starting_container_leaves_no_ghost() {
    let lab = Lab::with_busybox();
    let mut paused = run_paused_at(
        &lab,
        &["--name", "ghost", "-m", "64m", "busybox", "sleep", "1000"],
        "layers.mount",
    );
    assert!(
        ps_line(&lab, &["-a"], "ghost").is_some(),
        "the starting container is listed"
    );
    assert!(!lab.cgroups_left().is_empty(), "its cgroup exists already");

    let o = lab.cmd(&["rm", "ghost"]);
    assert_eq!(o.code, 1, "rm of a starting container must fail: {o:?}");
    assert!(o.stderr.contains("it is starting"), "{}", o.stderr);
    assert!(
        ps_line(&lab, &["-a"], "ghost").is_some(),
        "the record is still there after the refused rm"
    );

    lab.cmd(&["rm", "-f", "ghost"]).expect_code(0);
    let status = paused.child.wait().unwrap();
    assert!(!status.success(), "the killed run cannot succeed");
    drop(paused.stdin);
    let mut rest = String::new();
    let _ = std::io::Read::read_to_string(&mut paused.err, &mut rest);
    assert_eq!(ps_line(&lab, &["-a"], "ghost"), None);
    assert_nothing_left(&lab);
}

/// `rm` without `-f` of a running container says so and keeps it; `rm -f` kills it, and the
/// `run` that kept it reports 137 (SIGKILL), as `docker run` does.
#[test]
fn rm_refuses_a_running_container_and_rm_f_kills_it() {
    let lab = Lab::with_busybox();
    let mut run = lab
        .command(&["run", "--name", "busy", "busybox", "sleep", "1000"])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for("ps shows the container Up", || {
        ps_line(&lab, &[], "busy").is_some_and(|l| l.contains(" Up "))
    });
    let o = lab.cmd(&["rm", "busy"]);
    assert_eq!(o.code, 1, "{o:?}");
    assert!(o.stderr.contains("it is running"), "{}", o.stderr);
    assert!(ps_line(&lab, &[], "busy").is_some());
    lab.cmd(&["rm", "-f", "busy"]).expect_code(0);
    assert_eq!(run.wait().unwrap().code(), Some(137));
    assert_eq!(ps_line(&lab, &["-a"], "busy"), None);
    assert_nothing_left(&lab);
}

/// Issue 9 item 7: with `--pid host` no pid namespace ends the container's children with its
/// first process. When the container ends, everything in its cgroup is killed.
#[test]
fn pid_host_children_die_with_their_container() {
    let lab = Lab::with_busybox();
    let out = lab.ok(&[
        "--pid",
        "host",
        "busybox",
        "sh",
        "-c",
        "sleep 1000 >/dev/null 2>&1 & echo $!",
    ]);
    let pid: i32 = out.trim().parse().unwrap();
    assert!(pid > 1, "{out}");
    wait_for("the container's child is gone", || !sleeping(pid));
    assert_eq!(
        lab.cgroups_left(),
        Vec::<std::path::PathBuf>::new(),
        "cgroups left"
    );
}

/// Issue 9 item 7 with `rm -f`: it returned 0 and left the children running in their cgroups.
#[test]
fn rm_f_kills_the_children_of_a_pid_host_container() {
    use std::io::BufRead;
    let lab = Lab::with_busybox();
    let mut run = lab
        .command(&[
            "run",
            "--name",
            "parent",
            "--pid",
            "host",
            "busybox",
            "sh",
            "-c",
            "sleep 1000 >/dev/null 2>&1 & echo $!; exec sleep 1000 >/dev/null",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(run.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let pid: i32 = line.trim().parse().unwrap();
    wait_for("the container's child runs sleep", || sleeping(pid));
    wait_for("ps shows the container Up", || {
        ps_line(&lab, &[], "parent").is_some_and(|l| l.contains(" Up "))
    });
    lab.cmd(&["rm", "-f", "parent"]).expect_code(0);
    run.wait().unwrap();
    assert!(!sleeping(pid), "the container's child outlived rm -f");
    assert_eq!(
        lab.cgroups_left(),
        Vec::<std::path::PathBuf>::new(),
        "cgroups left"
    );
    assert!(
        lab.containers_left().is_empty(),
        "{:?}",
        lab.containers_left()
    );
}

/// Issue 9 item 8: `kill -9` of `dockling run` once the container is up. The next command must
/// see that it is not running (it died with its engine: 137), `rm` removes it, and nothing is
/// left in the cgroup tree.
#[test]
fn killed_run_is_noticed_by_the_next_command() {
    let lab = Lab::with_busybox();
    let mut run = lab
        .command(&[
            "run", "--name", "victim", "-m", "64m", "busybox", "sleep", "1000",
        ])
        .spawn()
        .unwrap();
    wait_for("ps shows the container Up", || {
        ps_line(&lab, &[], "victim").is_some_and(|l| l.contains(" Up "))
    });
    run.kill().unwrap(); // SIGKILL, to the pid of the run this test started
    run.wait().unwrap();
    assert_eq!(
        ps_line(&lab, &[], "victim"),
        None,
        "ps shows a dead container"
    );
    let line = ps_line(&lab, &["-a"], "victim").expect("ps -a keeps the record");
    assert!(line.contains("Exited (137)"), "{line}");
    assert_eq!(
        lab.cgroups_left(),
        Vec::<std::path::PathBuf>::new(),
        "cgroups left"
    );
    lab.cmd(&["rm", "victim"]).expect_code(0);
    assert!(
        lab.containers_left().is_empty(),
        "{:?}",
        lab.containers_left()
    );
}

/// The same with `--rm`: the record of a `--rm` container never outlives it.
#[test]
fn killed_run_rm_leaves_no_record_and_no_cgroup() {
    let lab = Lab::with_busybox();
    let mut run = lab
        .command(&["run", "--rm", "--name", "gone", "busybox", "sleep", "1000"])
        .spawn()
        .unwrap();
    wait_for("ps shows the container Up", || {
        ps_line(&lab, &[], "gone").is_some_and(|l| l.contains(" Up "))
    });
    run.kill().unwrap();
    run.wait().unwrap();
    assert_eq!(ps_line(&lab, &["-a"], "gone"), None);
    assert_nothing_left(&lab);
    // The name is free again.
    lab.ok(&["--name", "gone", "busybox", "true"]);
}

/// A failure after the record was written (here: the working directory cannot be made on a
/// read-only root) leaves no `--rm` record and no cgroup.
#[test]
fn late_failure_of_a_rm_run_leaves_no_record() {
    let lab = Lab::with_busybox();
    let o = lab.run(&["--read-only", "-w", "/nope", "-m", "64m", "busybox", "true"]);
    o.expect_code(125);
    assert!(o.stderr.contains("/nope"), "{}", o.stderr);
    assert_nothing_left(&lab);
    lab.cmd(&["ps", "-a"]).expect_code(0);
}

/// A killed `rm` (directory renamed to `.trash-<id>`, partly deleted) or a `run` killed
/// between making the directory and writing its record leave directories no record explains:
/// the next command removes them.
#[test]
fn half_removed_and_half_created_directories_are_swept() {
    let lab = Lab::with_busybox();
    lab.ok(&["busybox", "true"]); // makes the containers directory
    let dir = lab.root().join("containers");
    let trash = dir.join(format!(".trash-{}", "a".repeat(64)));
    std::fs::create_dir_all(trash.join("upper/etc")).unwrap();
    let half = dir.join("b".repeat(64));
    std::fs::create_dir_all(half.join("upper")).unwrap();
    lab.cmd(&["ps", "-a"]).expect_code(0);
    assert!(!trash.exists(), "the half-removed directory is left");
    assert!(!half.exists(), "the half-created directory is left");
}

/// `kill -9` of `dockling run` while it starts the container (paused by `--step` after its
/// record, cgroup and first process exist): the next command removes the `--rm` record and
/// the cgroup; a container without `--rm` is recorded as ended by SIGKILL.
#[test]
fn run_killed_while_starting_is_cleaned_up_by_the_next_command() {
    let lab = Lab::with_busybox();
    for (name, rm) in [("starting-rm", true), ("starting", false)] {
        let mut args = vec!["--name", name, "-m", "64m", "busybox", "sleep", "1000"];
        if rm {
            args.insert(0, "--rm");
        }
        let mut paused = run_paused_at(&lab, &args, "layers.mount");
        assert!(ps_line(&lab, &["-a"], name).is_some(), "{name} is listed");
        // Only the engine keeps the container: its first process (sharing the engine's open
        // files through clone) has closed the engine lock, or a killed engine's container
        // would look kept until that process died too.
        let children = wait_until(
            std::time::Duration::from_secs(10),
            "the container's process",
            || {
                let pid = paused.child.id();
                let list =
                    std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).ok()?;
                let pids: Vec<u32> = list
                    .split_whitespace()
                    .filter_map(|p| p.parse().ok())
                    .collect();
                (!pids.is_empty()).then_some(pids)
            },
        );
        for pid in children {
            let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).unwrap();
            for fd in fds.flatten() {
                let target = std::fs::read_link(fd.path()).unwrap_or_default();
                assert!(
                    !target.ends_with("engine.lock"),
                    "the container's process {pid} holds the engine lock ({})",
                    fd.path().display()
                );
            }
        }
        paused.child.kill().unwrap(); // SIGKILL, to the run this test started
        paused.child.wait().unwrap();
        drop(paused.stdin);
        let line = ps_line(&lab, &["-a"], name);
        if rm {
            assert_eq!(line, None, "the --rm record outlived its killed run");
        } else {
            let line = line.expect("the record is kept without --rm");
            assert!(line.contains("Exited (137)"), "{line}");
            lab.cmd(&["rm", name]).expect_code(0);
        }
        assert_eq!(
            lab.cgroups_left(),
            Vec::<std::path::PathBuf>::new(),
            "cgroups left"
        );
        assert!(
            lab.containers_left().is_empty(),
            "{:?}",
            lab.containers_left()
        );
    }
}

/// `stop x && rm x` works every time, as in Docker, even while other commands run on the same
/// root (a `ps` in another terminal). Every command's first act, noticing what killed ones
/// left, briefly takes the engine lock of each container it lists as running; one that listed
/// this container just before it ended takes its lock just after, and before the fix an `rm`
/// in that moment said the container "is running" though `stop` had returned 0 (the lock was
/// all `rm` looked at). 60 cycles of run, stop, rm, with `ps -a` in a loop beside them.
#[test]
fn rm_right_after_stop_always_works() {
    let lab = Lab::with_busybox();
    let done = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|s| {
        let watcher = s.spawn(|| {
            let mut n = 0;
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                lab.cmd(&["ps", "-a"]).expect_code(0);
                n += 1;
            }
            n
        });
        // The watcher ends however this loop does, a failed assertion too.
        struct Done<'a>(&'a std::sync::atomic::AtomicBool);
        impl Drop for Done<'_> {
            fn drop(&mut self) {
                self.0.store(true, std::sync::atomic::Ordering::Relaxed);
            }
        }
        let _done = Done(&done);
        for i in 0..60 {
            lab.cmd(&["run", "-d", "--name", "cycle", "busybox", "sleep", "1000"])
                .expect_code(0);
            let stop = lab.cmd(&["stop", "-t", "0", "cycle"]);
            assert_eq!(stop.code, 0, "cycle {i}: stop: {}", stop.stderr);
            let rm = lab.cmd(&["rm", "cycle"]);
            if rm.code != 0 {
                done.store(true, std::sync::atomic::Ordering::Relaxed);
            }
            assert_eq!(rm.code, 0, "cycle {i}: rm right after stop: {}", rm.stderr);
        }
        done.store(true, std::sync::atomic::Ordering::Relaxed);
        assert!(
            watcher.join().unwrap() > 0,
            "ps never ran beside the cycles"
        );
    });
    assert!(
        lab.containers_left().is_empty(),
        "{:?}",
        lab.containers_left()
    );
}

/// The race above, made certain: right after `stop`, something else holds the stopped
/// container's engine lock for a moment (as another command's look at leftovers does; here
/// the test, with the shared lock `engine_alive` takes). `rm` waits for it to let go instead of
/// saying the container "is running" (before the fix it failed at once, every time).
#[test]
fn rm_of_a_stopped_container_waits_out_a_momentary_lock_holder() {
    use std::os::fd::AsRawFd;
    let lab = Lab::with_busybox();
    let run = lab.cmd(&["run", "-d", "--name", "held", "busybox", "sleep", "1000"]);
    run.expect_code(0);
    let id = run.stdout.trim();
    lab.cmd(&["stop", "-t", "0", "held"]).expect_code(0);
    let lock = std::fs::File::open(lab.root().join("containers").join(id).join("engine.lock"))
        .expect("the container's engine lock");
    // SAFETY: flock on a file this test holds open.
    assert_eq!(
        unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_SH | libc::LOCK_NB) },
        0,
        "stop returned while the engine still held the lock"
    );
    let mut rm = lab
        .command(&["rm", "held"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // While the lock is held, rm waits (a bound on a negative check, not a timing).
    let ended_early = holds_within(std::time::Duration::from_millis(500), || {
        rm.try_wait().unwrap().is_some()
    });
    drop(lock);
    let o: Out = rm.wait_with_output().unwrap().into();
    assert!(
        !ended_early,
        "rm did not wait for the lock to be let go: {} {}",
        o.code, o.stderr
    );
    assert_eq!(o.code, 0, "rm after the lock was let go: {}", o.stderr);
    assert!(
        lab.containers_left().is_empty(),
        "{:?}",
        lab.containers_left()
    );
}
