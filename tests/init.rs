//! `--init`: a tiny init as the container's process 1 (Docker's tini), so a program that
//! never expected to be process 1 still stops on SIGTERM and leaves no zombies.

mod common;
use std::time::Duration;

use common::{wait_until, Lab};

#[test]
fn with_init_the_program_is_process_2_and_its_exit_code_comes_through() {
    let lab = Lab::with_busybox();
    let ps = lab.ok(&["--init", "busybox", "ps", "-o", "pid,comm"]);
    let rows: Vec<Vec<&str>> = ps
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(rows, [vec!["1", "dockling-init"], vec!["2", "ps"]], "{ps}");
    // Without it, the program is process 1.
    let ps = lab.ok(&["busybox", "ps", "-o", "pid,comm"]);
    assert!(ps.contains("1 ps"), "{ps}");
    lab.run(&["--init", "busybox", "sh", "-c", "exit 3"])
        .expect_code(3);
    // Killed by a signal: 128 + its number, as Docker reports it.
    lab.run(&["--init", "busybox", "sh", "-c", "kill -KILL $$"])
        .expect_code(137);
}

#[test]
fn stop_ends_a_program_that_ignores_sigterm_as_process_1_only_with_init() {
    let lab = Lab::with_busybox();
    for (name, init, code) in [("plain", false, "137"), ("inited", true, "143")] {
        let mut args = vec!["run", "-d", "--name", name];
        if init {
            args.push("--init");
        }
        args.extend(["busybox", "sleep", "1000"]);
        lab.cmd(&args).expect_code(0);
        // busybox sleep installs no SIGTERM handler: as process 1 the kernel drops the
        // signal (SIGKILL after -t ends it: 137); under init it is an ordinary process and
        // SIGTERM, passed on by init, ends it (143).
        lab.cmd(&["stop", "-t", "2", name]).expect_code(0);
        let o = lab.cmd(&["inspect", "-f", "{{.State.ExitCode}}", name]);
        assert_eq!(o.stdout.trim(), code, "{name}");
        lab.cmd(&["rm", name]).expect_code(0);
    }
    assert_eq!(lab.cgroups_left(), Vec::<std::path::PathBuf>::new());
}

#[test]
fn init_reaps_orphans_the_program_never_waits_for() {
    let lab = Lab::with_busybox();
    lab.cmd(&[
        "run", "-d", "--init", "--name", "reaper", "busybox", "sleep", "1000",
    ])
    .expect_code(0);
    // An orphan: its parent (a shell) ends at once, so it is given to process 1.
    lab.cmd(&["exec", "reaper", "sh", "-c", "sleep 0.2 &"])
        .expect_code(0);
    // Once it ended, init reaped it: no zombie (state Z, shown as `[sleep]`) is left, only
    // init, the program and this `ps`. (A program as process 1 that never waits, like
    // `sleep`, would keep the zombie for good.)
    let left = wait_until(Duration::from_secs(20), "the orphan is reaped", || {
        let o = lab.cmd(&["exec", "reaper", "ps", "-o", "stat,comm"]);
        (o.stdout.lines().count() == 4).then_some(o.stdout)
    });
    assert!(!left.contains('Z'), "{left}");
    assert!(
        left.contains("dockling-init") && left.contains("sleep"),
        "{left}"
    );
    lab.cmd(&["rm", "-f", "reaper"]).expect_code(0);
}
