//! The load test of issue 9 (not timed): 1,000 sequential `run --rm busybox true`, then 50
//! parallel ones (8 at a time), with 0 errors and 0 leaks, counted before and after: mounts,
//! network links, cgroup directories, processes, store files, open descriptors.
//!
//! `DOCKLING_LOAD_RUNS` sets the sequential count (default 1,000, also in CI: on the 2-core
//! test machine a debug run took 41 ms when idle, 157 ms with four other builds running, so the
//! 1,000 take 41 s to under 3 minutes and the 50 parallel ones 1–3 s; lower it for a quick local
//! check). The test prints its timings (`--nocapture`).

mod common;
use common::Lab;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Instant;

/// What a leak would change, by name.
fn census(lab: &Lab) -> BTreeMap<&'static str, usize> {
    let mut c = BTreeMap::new();
    c.insert(
        "mounts (this namespace)",
        std::fs::read_to_string("/proc/self/mountinfo")
            .unwrap()
            .lines()
            .count(),
    );
    let links = std::process::Command::new("ip")
        .args(["-o", "link"])
        .output()
        .expect("ip -o link (iproute2; scripts/test installs it)");
    assert!(links.status.success(), "ip -o link failed: {links:?}");
    // The bridge stays once made (as docker0 does): the first run makes it.
    c.insert(
        "network links besides dockling0",
        String::from_utf8_lossy(&links.stdout)
            .lines()
            .filter(|l| !l.contains(" dockling0:"))
            .count(),
    );
    c.insert(
        "address leases",
        std::fs::read_to_string(lab.root().join("networks/bridge/leases.json"))
            .unwrap_or_default()
            .matches("\"container\"")
            .count(),
    );
    let mut cgroups = 0;
    for h in std::fs::read_dir("/sys/fs/cgroup").unwrap().flatten() {
        let parent = h.path().join(lab.cgroup_parent());
        cgroups += std::fs::read_dir(parent)
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
            .count();
    }
    c.insert("cgroup directories under the lab's parent", cgroups);
    let me = std::process::id().to_string();
    let children = std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter(|e| {
            let stat = std::fs::read_to_string(e.path().join("stat")).unwrap_or_default();
            // Field 4 (after the parenthesised name) is the parent's pid.
            stat.rsplit_once(") ")
                .and_then(|(_, rest)| rest.split_whitespace().nth(1))
                .is_some_and(|ppid| ppid == me)
        })
        .count();
    c.insert("child processes of the test", children);
    // A process that outlived its engine is no child of ours any more: it still carries the
    // store in its environment (an engine, a container before execve) or sits in a cgroup of
    // the lab.
    let marker = format!("DOCKLING_ROOT={}", lab.root().display());
    let strays = std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .bytes()
                .all(|b| b.is_ascii_digit())
        })
        .filter(|e| {
            let env = std::fs::read(e.path().join("environ")).unwrap_or_default();
            let cg = std::fs::read_to_string(e.path().join("cgroup")).unwrap_or_default();
            env.split(|b| *b == 0).any(|v| v == marker.as_bytes())
                || cg.contains(&lab.cgroup_parent())
        })
        .count();
    c.insert("processes of the lab's engines and containers", strays);
    c.insert(
        "container directories",
        lab.containers_left().len() + hidden(&lab.root().join("containers")),
    );
    c.insert("temporary files in the store", tmp_files(&lab.root()));
    c.insert(
        "open descriptors of the test",
        std::fs::read_dir("/proc/self/fd").unwrap().count(),
    );
    c
}

/// Dot-entries of a directory (temporary or half-made records `containers_left` skips).
fn hidden(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with('.'))
        .count()
}

/// Files and directories of the store (outside unpacked layers) named as temporary.
fn tmp_files(root: &std::path::Path) -> usize {
    let mut n = 0;
    let mut todo = vec![root.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            if e.file_name().to_string_lossy().contains(".tmp") {
                n += 1;
            }
            if e.file_type().is_ok_and(|t| t.is_dir()) && !d.ends_with("layers/sha256") {
                todo.push(e.path());
            }
        }
    }
    n
}

/// One `run --rm busybox true`: its error, if it failed.
fn one(lab: &Lab) -> Option<String> {
    let o = lab.run(&["busybox", "true"]);
    (o.code != 0).then(|| format!("exit {}: {}", o.code, o.stderr.trim()))
}

#[test]
fn a_thousand_sequential_and_fifty_parallel_runs_leave_nothing_behind() {
    let runs: usize = std::env::var("DOCKLING_LOAD_RUNS")
        .ok()
        .map(|v| v.parse().expect("DOCKLING_LOAD_RUNS is a number of runs"))
        .unwrap_or(1000);
    let lab = Lab::with_busybox();
    // One run first: what the first run creates once and keeps (the cgroup parent, the
    // containers directory) is no leak.
    assert_eq!(one(&lab), None, "the first run failed");
    let before = census(&lab);

    let start = Instant::now();
    let mut errors = Vec::new();
    for i in 0..runs {
        if let Some(e) = one(&lab) {
            errors.push(format!("sequential run {i}: {e}"));
        }
    }
    let sequential = start.elapsed();
    let after_sequential = census(&lab);

    let start = Instant::now();
    let next = AtomicUsize::new(0);
    let parallel_errors = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..8 {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                if i >= 50 {
                    break;
                }
                if let Some(e) = one(&lab) {
                    parallel_errors
                        .lock()
                        .unwrap()
                        .push(format!("parallel run {i}: {e}"));
                }
            });
        }
    });
    let parallel = start.elapsed();
    errors.extend(parallel_errors.into_inner().unwrap());
    let after = census(&lab);

    println!(
        "{runs} sequential runs in {:.1} s ({:.0} ms each); 50 parallel runs (8 at a time) in {:.1} s",
        sequential.as_secs_f64(),
        sequential.as_secs_f64() * 1000.0 / runs.max(1) as f64,
        parallel.as_secs_f64()
    );
    assert!(
        errors.is_empty(),
        "{} of {} runs failed:\n{}",
        errors.len(),
        runs + 50,
        errors.join("\n")
    );
    assert_eq!(
        after_sequential, before,
        "the sequential runs leaked (before, then after)"
    );
    assert_eq!(
        after, before,
        "the parallel runs leaked (before, then after)"
    );
}
