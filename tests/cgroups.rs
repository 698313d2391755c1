//! Resource limits, seen from inside, and the out-of-memory report.

mod common;
use common::Lab;

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
    let o = lab.run(&[
        "--no-cgroups",
        "busybox",
        "sh",
        "-c",
        "grep memory /proc/self/cgroup",
    ]);
    assert!(!o.stdout.contains("dockling"), "{}", o.stdout);
    let o = lab.run(&["--no-cgroups", "-m", "64m", "busybox", "true"]);
    o.expect_code(125);
    assert!(o.stderr.contains("--no-cgroups"), "{}", o.stderr);
}
