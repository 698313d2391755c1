//! Detached containers (`run -d`) and what a user does with them: `logs`, `stop`, `kill`,
//! `wait`, `rename`, `container prune`; and what a killed monitor leaves.

mod common;
use std::time::Duration;

use common::{wait_until, wait_until_else, Lab};

/// `run -d …`: the full id it printed.
fn detach(lab: &Lab, args: &[&str]) -> String {
    let mut all = vec!["run", "-d"];
    all.extend_from_slice(args);
    let o = lab.cmd(&all);
    o.expect_code(0);
    let id = o.stdout.trim().to_string();
    assert!(
        id.len() == 64 && id.chars().all(|c| c.is_ascii_hexdigit()),
        "run -d prints the full id: {:?} {}",
        o.stdout,
        o.stderr
    );
    id
}

fn wait_state(lab: &Lab, name: &str, want: &str) {
    wait_until(
        Duration::from_secs(20),
        &format!("{name} is {want}"),
        || (lab.state(name) == want).then_some(()),
    );
}

#[test]
fn run_d_returns_while_the_container_runs_and_its_output_goes_to_the_log() {
    let lab = Lab::with_busybox();
    let id = detach(
        &lab,
        &[
            "--name",
            "talker",
            "busybox",
            "sh",
            "-c",
            "echo out; echo err >&2; read x",
        ],
    );
    // It runs on after `run` returned (its stdin is /dev/null: `read` ends it, so wait).
    wait_state(&lab, "talker", "exited 1");
    let logs = lab.cmd(&["logs", "talker"]);
    logs.expect_code(0);
    assert_eq!(logs.stdout, "out\n");
    assert_eq!(logs.stderr, "err\n");
    // Docker's json-file format underneath.
    let file = lab
        .root()
        .join("containers")
        .join(&id)
        .join(format!("{id}-json.log"));
    let text = std::fs::read_to_string(&file).unwrap();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2, "{text}");
    let out = lines.iter().find(|l| l["stream"] == "stdout").unwrap();
    assert_eq!(out["log"], "out\n");
    assert!(out["time"].as_str().unwrap().ends_with('Z'), "{text}");
    // --tail and -t.
    let t = lab.cmd(&["logs", "-t", "--tail", "1", "talker"]);
    t.expect_code(0);
    let (time, rest) = (t.stdout.to_string() + &t.stderr)
        .split_once(' ')
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .unwrap();
    assert!(time.starts_with("20") && time.ends_with('Z'), "{time}");
    assert_eq!(rest, "err\n");
    lab.cmd(&["rm", "talker"]).expect_code(0);
    assert!(lab.containers_left().is_empty());
}

#[test]
fn stop_sends_the_stop_signal_then_sigkill_to_a_pid_1_that_ignores_it() {
    let lab = Lab::with_busybox();
    detach(
        &lab,
        &[
            "--name",
            "polite",
            "busybox",
            "sh",
            "-c",
            "trap 'echo got TERM; exit 7' TERM; echo ready; while true; do sleep 0.05; done",
        ],
    );
    wait_until(Duration::from_secs(10), "the trap is set", || {
        lab.cmd(&["logs", "polite"])
            .stdout
            .contains("ready")
            .then_some(())
    });
    let o = lab.cmd(&["stop", "polite"]);
    o.expect_code(0);
    assert_eq!(o.stdout, "polite\n");
    assert_eq!(lab.state("polite"), "exited 7");
    assert!(lab.cmd(&["logs", "polite"]).stdout.contains("got TERM"));
    // Stopping a container that is not running is no error (Docker).
    lab.cmd(&["stop", "polite"]).expect_code(0);

    // busybox sleep as PID 1 has no handler: SIGTERM does nothing, SIGKILL after -t.
    detach(&lab, &["--name", "stubborn", "busybox", "sleep", "1000"]);
    // `-t 1` is obeyed: the stop ends well before the default 10 s (a failure guard of 8 s,
    // not a timing).
    let mut stop = lab
        .command(&["stop", "-t", "1", "stubborn"])
        .spawn()
        .unwrap();
    let status = common::wait_exit(&mut stop, Duration::from_secs(8), "stop -t 1");
    assert!(status.success());
    assert_eq!(lab.state("stubborn"), "exited 137");
    let w = lab.cmd(&["wait", "stubborn", "polite"]);
    w.expect_code(0);
    assert_eq!(w.stdout, "137\n7\n");
    lab.cmd(&["rm", "polite", "stubborn"]).expect_code(0);
    assert_eq!(lab.cgroups_left(), Vec::<std::path::PathBuf>::new());
}

#[test]
fn kill_sends_the_signal_asked_for_and_wait_prints_the_code() {
    let lab = Lab::with_busybox();
    detach(
        &lab,
        &[
            "--name",
            "hup",
            "busybox",
            "sh",
            "-c",
            "trap 'echo got HUP; exit 3' HUP; echo ready; while true; do sleep 0.05; done",
        ],
    );
    wait_until(Duration::from_secs(10), "the trap is set", || {
        lab.cmd(&["logs", "hup"])
            .stdout
            .contains("ready")
            .then_some(())
    });
    lab.cmd(&["kill", "-s", "HUP", "hup"]).expect_code(0);
    let w = lab.cmd(&["wait", "hup"]);
    w.expect_code(0);
    assert_eq!(w.stdout, "3\n");
    let again = lab.cmd(&["kill", "hup"]);
    again.expect_code(125);
    assert!(again.stderr.contains("is not running"), "{}", again.stderr);
    let bad = lab.cmd(&["kill", "-s", "NOPE", "hup"]);
    bad.expect_code(125);
    assert!(bad.stderr.contains("invalid signal"), "{}", bad.stderr);
    lab.cmd(&["rm", "hup"]).expect_code(0);
}

#[test]
fn a_detached_start_failure_has_runs_exit_code_and_a_kept_record() {
    let lab = Lab::with_busybox();
    let o = lab.cmd(&["run", "-d", "--name", "nope", "busybox", "no-such-command"]);
    o.expect_code(127);
    assert!(o.stdout.is_empty(), "{}", o.stdout);
    assert!(o.stderr.contains("no-such-command"), "{}", o.stderr);
    assert_eq!(lab.state("nope"), "exited 127");
    lab.cmd(&["rm", "nope"]).expect_code(0);

    // With --rm nothing is kept, once it ended.
    let id = detach(&lab, &["--rm", "busybox", "sh", "-c", "exit 4"]);
    wait_until(
        Duration::from_secs(20),
        "the --rm container is gone",
        || (!lab.root().join("containers").join(&id).exists()).then_some(()),
    );
    assert_eq!(lab.cgroups_left(), Vec::<std::path::PathBuf>::new());
    let bad = lab.cmd(&["run", "-d", "--log-opt", "max-size=huge", "busybox", "true"]);
    bad.expect_code(125);
    assert!(bad.stderr.contains("max-size"), "{}", bad.stderr);
    assert!(
        lab.containers_left().is_empty(),
        "a bad flag creates nothing"
    );
}

#[test]
fn a_killed_monitor_leaves_an_honest_status_and_rm_f_cleans_up() {
    let lab = Lab::with_busybox();
    let id = detach(&lab, &["--name", "orphan", "busybox", "sleep", "1000"]);
    wait_state(&lab, "orphan", "running 0");
    let monitor = lab.monitor_pid(&id);
    assert_ne!(monitor, std::process::id() as i32);
    // SIGKILL to the monitor this test started (through dockling run -d).
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(monitor),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    // The container dies with it (PR_SET_PDEATHSIG); the next command records that.
    wait_state(&lab, "orphan", "exited 137");
    lab.cmd(&["rm", "-f", "orphan"]).expect_code(0);
    assert!(lab.containers_left().is_empty());
    assert_eq!(lab.cgroups_left(), Vec::<std::path::PathBuf>::new());
}

#[test]
fn logs_follow_until_the_container_ends_and_rotate_by_size() {
    let lab = Lab::with_busybox();
    let id = detach(
        &lab,
        &[
            "--name",
            "chatty",
            "--log-opt",
            "max-size=1k",
            "--log-opt",
            "max-file=2",
            "busybox",
            "sh",
            "-c",
            "echo ready; until [ -e /go ]; do sleep 0.05; done; i=0; while [ $i -lt 100 ]; do echo line $i; i=$((i+1)); done; echo last",
        ],
    );
    wait_until(Duration::from_secs(20), "the container is ready", || {
        lab.cmd(&["logs", "chatty"])
            .stdout
            .contains("ready")
            .then_some(())
    });
    // `logs -f` runs first; only then does the container write, rotating its log several
    // times while it is followed.
    let mut follow = lab
        .command(&["logs", "-f", "--tail", "1", "chatty"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = std::io::BufReader::new(follow.stdout.take().unwrap());
    let mut first = String::new();
    std::io::BufRead::read_line(&mut out, &mut first).unwrap();
    assert_eq!(first, "ready\n");
    lab.cmd(&["exec", "chatty", "touch", "/go"]).expect_code(0);
    let mut followed = String::new();
    std::io::Read::read_to_string(&mut out, &mut followed).unwrap();
    assert!(follow.wait().unwrap().success());
    assert!(followed.ends_with("line 99\nlast\n"), "{followed}");
    let dir = lab.root().join("containers").join(&id);
    for name in [format!("{id}-json.log"), format!("{id}-json.log.1")] {
        let len = std::fs::metadata(dir.join(&name)).unwrap().len();
        assert!(len <= 1024, "{name}: {len} bytes");
    }
    assert!(!dir.join(format!("{id}-json.log.2")).exists());
    let all = lab.cmd(&["logs", "chatty"]);
    all.expect_code(0);
    assert!(all.stdout.ends_with("line 99\nlast\n"), "{}", all.stdout);
    assert!(!all.stdout.starts_with("line 0\n"), "rotated away");
    lab.cmd(&["rm", "chatty"]).expect_code(0);
}

#[test]
fn rename_and_container_prune_and_the_container_group() {
    let lab = Lab::with_busybox();
    lab.cmd(&["run", "--name", "old-name", "busybox", "true"])
        .expect_code(0);
    detach(&lab, &["--name", "runner", "busybox", "sleep", "1000"]);
    lab.cmd(&["rename", "old-name", "new-name"]).expect_code(0);
    let taken = lab.cmd(&["rename", "new-name", "runner"]);
    taken.expect_code(125);
    assert!(taken.stderr.contains("already in use"), "{}", taken.stderr);
    let ls = lab.cmd(&["container", "ls", "-a", "--format", "{{.Names}} {{.State}}"]);
    ls.expect_code(0);
    let mut names: Vec<&str> = ls.stdout.lines().collect();
    names.sort();
    assert_eq!(names, ["new-name exited", "runner running"]);
    let p = lab.cmd(&["container", "prune", "-f"]);
    p.expect_code(0);
    assert!(
        p.stdout.starts_with("Deleted Containers:\n"),
        "{}",
        p.stdout
    );
    let ls = lab.cmd(&["ps", "-a", "--format", "{{.Names}}"]);
    assert_eq!(ls.stdout, "runner\n", "prune keeps what runs");
    lab.cmd(&["container", "rm", "-f", "runner"]).expect_code(0);
    assert!(lab.containers_left().is_empty());
    assert_eq!(lab.cgroups_left(), Vec::<std::path::PathBuf>::new());
}

#[test]
fn start_runs_the_container_again_on_its_own_files_and_restart_does_both() {
    let lab = Lab::with_busybox();
    let script = "echo run >> /count; echo $(wc -l < /count) runs; sleep 1000";
    detach(&lab, &["--name", "again", "busybox", "sh", "-c", script]);
    let runs = |n: usize| {
        wait_until(Duration::from_secs(20), &format!("{n} runs logged"), || {
            lab.cmd(&["logs", "again"])
                .stdout
                .contains(&format!("{n} runs"))
                .then_some(())
        })
    };
    runs(1);
    lab.cmd(&["stop", "-t", "0", "again"]).expect_code(0);
    assert_eq!(lab.state("again"), "exited 137");
    let o = lab.cmd(&["start", "again"]);
    o.expect_code(0);
    assert_eq!(o.stdout, "again\n");
    // Its writable layer survived: the file it appended to has two lines now.
    runs(2);
    wait_state(&lab, "again", "running 0");
    // Starting a running container does nothing (Docker).
    lab.cmd(&["start", "again"]).expect_code(0);
    let o = lab.cmd(&["restart", "-t", "0", "again"]);
    o.expect_code(0);
    assert_eq!(o.stdout, "again\n");
    runs(3);
    lab.cmd(&["rm", "-f", "again"]).expect_code(0);
    // start -a: in the foreground, with the container's exit code.
    lab.cmd(&[
        "run",
        "--name",
        "fg",
        "busybox",
        "sh",
        "-c",
        "echo hi; exit 3",
    ])
    .expect_code(3);
    let o = lab.cmd(&["start", "-a", "fg"]);
    o.expect_code(3);
    assert_eq!(o.stdout, "hi\n");
    lab.cmd(&["rm", "fg"]).expect_code(0);
    assert!(lab.containers_left().is_empty());
    assert_eq!(lab.cgroups_left(), Vec::<std::path::PathBuf>::new());
}

#[test]
fn restart_policies_restart_as_docker_does_and_stop_ends_them() {
    let lab = Lab::with_busybox();
    detach(
        &lab,
        &[
            "--restart",
            "on-failure:3",
            "--name",
            "flaky",
            "busybox",
            "sh",
            "-c",
            "echo try; exit 1",
        ],
    );
    wait_until(
        Duration::from_secs(30),
        "three restarts and the end",
        || {
            let o = lab.cmd(&[
                "inspect",
                "-f",
                "{{.RestartCount}} {{.State.Status}}",
                "flaky",
            ]);
            let logs = lab.cmd(&["logs", "flaky"]).stdout;
            (o.stdout.trim() == "3 exited" && logs.matches("try").count() == 4).then_some(())
        },
    );
    let o = lab.cmd(&[
        "inspect",
        "-f",
        "{{json .HostConfig.RestartPolicy}}",
        "flaky",
    ]);
    assert_eq!(
        o.stdout.trim(),
        r#"{"Name":"on-failure","MaximumRetryCount":3}"#
    );
    // Success is not restarted by on-failure; `always` restarts it until stopped.
    detach(
        &lab,
        &[
            "--restart",
            "on-failure",
            "--name",
            "fine",
            "busybox",
            "true",
        ],
    );
    detach(
        &lab,
        &[
            "--restart",
            "always",
            "--name",
            "forever",
            "busybox",
            "sh",
            "-c",
            "exit 0",
        ],
    );
    wait_until(Duration::from_secs(30), "always restarts", || {
        let o = lab.cmd(&["inspect", "-f", "{{.RestartCount}}", "forever"]);
        (o.stdout.trim().parse::<u32>().unwrap_or(0) >= 2).then_some(())
    });
    lab.cmd(&["stop", "forever"]).expect_code(0);
    let before = lab
        .cmd(&["inspect", "-f", "{{.RestartCount}}", "forever"])
        .stdout;
    // Stopped for good: its monitor lets go, and the count stays.
    wait_until(Duration::from_secs(20), "the monitor ends", || {
        lab.cmd(&["rm", "forever"]).code.eq(&0).then_some(())
    });
    assert!(before.trim().parse::<u32>().unwrap() >= 2);
    wait_state(&lab, "fine", "exited 0");
    assert_eq!(
        lab.cmd(&["inspect", "-f", "{{.RestartCount}}", "fine"])
            .stdout
            .trim(),
        "0"
    );
    for bad in [
        &[
            "run",
            "-d",
            "--rm",
            "--restart",
            "always",
            "busybox",
            "true",
        ][..],
        &["run", "--restart", "always", "busybox", "true"],
        &["run", "-d", "--restart", "sometimes", "busybox", "true"],
        &["run", "-d", "--restart", "always:3", "busybox", "true"],
    ] {
        let o = lab.cmd(bad);
        o.expect_code(125);
        assert!(o.stderr.contains("restart"), "{bad:?}: {}", o.stderr);
    }
    lab.cmd(&["rm", "-f", "flaky", "fine"]).expect_code(0);
    assert!(lab.containers_left().is_empty());
    assert_eq!(lab.cgroups_left(), Vec::<std::path::PathBuf>::new());
}

/// Wait until the kernel reports the lab's one container cgroup `want` ("frozen" or
/// "thawed"): v1's `freezer.state` (FROZEN/THAWED; FREEZING while in progress) or v2's
/// `cgroup.events` (`frozen 1|0`). Panics naming the state last seen.
fn freezer_becomes(lab: &Lab, want: &str) {
    let dirs = lab.cgroups_left();
    let v1 = dirs
        .iter()
        .find(|d| d.starts_with("/sys/fs/cgroup/freezer"));
    let v2 = dirs.iter().find(|d| d.join("cgroup.freeze").exists());
    let read = || -> String {
        if let Some(d) = v1 {
            std::fs::read_to_string(d.join("freezer.state")).unwrap()
        } else if let Some(d) = v2 {
            std::fs::read_to_string(d.join("cgroup.events")).unwrap()
        } else {
            panic!("no freezer cgroup for the container among {dirs:?}")
        }
    };
    let is = |s: &str| match s.trim() {
        "FROZEN" => "frozen",
        "THAWED" => "thawed",
        e if e.lines().any(|l| l == "frozen 1") => "frozen",
        e if e.lines().any(|l| l == "frozen 0") => "thawed",
        _ => "in between",
    };
    wait_until_else(
        Duration::from_secs(10),
        &format!("the freezer cgroup to be {want}"),
        || (is(&read()) == want).then_some(()),
        || eprintln!("freezer last read: {}", read()),
    );
}

#[test]
fn pause_freezes_every_process_and_top_lists_them_with_both_pids() {
    let lab = Lab::with_busybox();
    detach(
        &lab,
        &[
            "--name",
            "ticking",
            "busybox",
            "sh",
            "-c",
            "sleep 1000 & while true; do echo tick; sleep 0.05; done",
        ],
    );
    wait_state(&lab, "ticking", "running 0");
    let top = lab.cmd(&["top", "ticking"]);
    top.expect_code(0);
    let mut lines = top.stdout.lines();
    let header: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    assert_eq!(
        &header[..4],
        ["UID", "PID", "CONTAINER", "PID"],
        "{}",
        top.stdout
    );
    let rows: Vec<&str> = lines.collect();
    assert!(
        rows.iter().any(|r| r.contains("sleep 1000")),
        "{}",
        top.stdout
    );
    // The first process is pid 1 inside.
    assert!(
        rows.iter()
            .any(|r| r.split_whitespace().nth(2) == Some("1")),
        "{}",
        top.stdout
    );
    lab.cmd(&["pause", "ticking"]).expect_code(0);
    assert_eq!(lab.state("ticking"), "paused 0");
    // The kernel says so too, not only the record: the freezer knob of the container's cgroup.
    freezer_becomes(&lab, "frozen");
    let ps = lab.cmd(&["ps", "--format", "{{.Status}}"]);
    assert!(ps.stdout.trim().ends_with("(Paused)"), "{}", ps.stdout);
    // Frozen: the log stops growing (two reads a while apart, the second after the first
    // has certainly been flushed: compare the counts once they agree twice in a row).
    let count = || lab.cmd(&["logs", "ticking"]).stdout.lines().count();
    let frozen_at = wait_until(Duration::from_secs(10), "the log stops", || {
        let a = count();
        let b = count();
        let c = count();
        (a == b && b == c).then_some(a)
    });
    let e = lab.cmd(&["exec", "ticking", "true"]);
    e.expect_code(125);
    assert!(e.stderr.contains("paused"), "{}", e.stderr);
    assert_eq!(count(), frozen_at);
    lab.cmd(&["pause", "ticking"]).expect_code(125);
    lab.cmd(&["unpause", "ticking"]).expect_code(0);
    freezer_becomes(&lab, "thawed");
    wait_until(Duration::from_secs(10), "the log grows again", || {
        (count() > frozen_at).then_some(())
    });
    // A paused container stops too.
    lab.cmd(&["pause", "ticking"]).expect_code(0);
    lab.cmd(&["stop", "-t", "1", "ticking"]).expect_code(0);
    assert!(lab.state("ticking").starts_with("exited"));
    lab.cmd(&["rm", "ticking"]).expect_code(0);
    assert_eq!(lab.cgroups_left(), Vec::<std::path::PathBuf>::new());
}

#[test]
fn logs_print_stdout_and_stderr_lines_in_the_order_the_log_holds_them() {
    let lab = Lab::with_busybox();
    // The two streams come through two pipes, so the log's order between them is the order
    // the monitor read them in (as with Docker); `logs` must keep that order.
    let id = detach(
        &lab,
        &[
            "--name",
            "mixed",
            "busybox",
            "sh",
            "-c",
            "for i in 1 2 3 4 5 6; do echo out$i; echo err$i >&2; sleep 0.01; done",
        ],
    );
    wait_state(&lab, "mixed", "exited 0");
    let file = lab
        .root()
        .join("containers")
        .join(&id)
        .join(format!("{id}-json.log"));
    let expected: String = std::fs::read_to_string(file)
        .unwrap()
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["log"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert!(
        expected.contains("err1") && expected.contains("out6"),
        "{expected}"
    );
    // Both streams into one pipe, as `logs mixed 2>&1` does.
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!(
            "DOCKLING_ROOT={} DOCKLING_CONFIG={} {} logs mixed 2>&1",
            lab.root().display(),
            lab.dir.path().join("config.yaml").display(),
            env!("CARGO_BIN_EXE_dockling")
        ))
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stdout), expected);
    lab.cmd(&["rm", "mixed"]).expect_code(0);
}

#[test]
fn a_log_deleted_under_a_running_container_is_made_again_and_logs_says_what_happened() {
    let lab = Lab::with_busybox();
    let id = detach(
        &lab,
        &[
            "--name",
            "chatty",
            "busybox",
            "sh",
            "-c",
            "i=0; while true; do i=$((i+1)); echo line$i; sleep 0.05; done",
        ],
    );
    let log = lab
        .root()
        .join("containers")
        .join(&id)
        .join(format!("{id}-json.log"));
    wait_until(
        Duration::from_secs(10),
        "the first lines in the log",
        || (std::fs::metadata(&log).is_ok_and(|m| m.len() > 0)).then_some(()),
    );
    std::fs::remove_file(&log).unwrap();
    // The monitor notices at its next write and starts a new file under the same name.
    wait_until(Duration::from_secs(10), "a new log file", || {
        std::fs::metadata(&log)
            .is_ok_and(|m| m.len() > 0)
            .then_some(())
    });
    let o = lab.cmd(&["logs", "chatty"]);
    o.expect_code(0);
    assert!(o.stdout.starts_with("line"), "{}", o.stdout);
    assert!(
        !o.stdout.lines().any(|l| l == "line1"),
        "the deleted lines are gone, not shown: {}",
        o.stdout
    );
    // Stopped, with its log deleted again: logs says so instead of printing nothing.
    lab.cmd(&["stop", "-t", "0", "chatty"]).expect_code(0);
    std::fs::remove_file(&log).unwrap();
    let o = lab.cmd(&["logs", "chatty"]);
    assert_ne!(o.code, 0, "{}", o.stdout);
    assert!(o.stderr.contains("was it deleted?"), "{}", o.stderr);
    lab.cmd(&["rm", "chatty"]).expect_code(0);
}
