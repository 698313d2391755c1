//! The trace: JSON events, `--step` pauses and aborts, `explain`, and honesty against strace.

mod common;
use common::Lab;
use serde_json::Value;

fn events(stderr: &str) -> Vec<Value> {
    stderr
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON: {l}: {e}")))
        .collect()
}

#[test]
fn json_trace_has_every_step_and_explained_syscalls() {
    let lab = Lab::with_busybox();
    let o = lab.run(&["--trace=json", "busybox", "true"]);
    o.expect_code(0);
    let ev = events(&o.stderr);
    let names: Vec<&str> = ev
        .iter()
        .filter(|e| e["type"] == "syscall")
        .map(|e| e["syscall"].as_str().unwrap())
        .collect();
    for want in [
        "clone",
        "mount",
        "pivot_root",
        "sethostname",
        "capset",
        "execve",
        "wait4",
    ] {
        assert!(names.contains(&want), "no {want} in {names:?}");
    }
    for e in ev.iter().filter(|e| e["type"] == "syscall") {
        assert_eq!(e["v"], 1);
        assert!(
            e["explain"].as_str().is_some_and(|s| !s.is_empty()),
            "unexplained: {e}"
        );
        assert!(e["man"].as_str().is_some_and(|s| s.contains('(')), "{e}");
        assert!(e["step"].as_str().is_some_and(|s| s.contains('.')), "{e}");
        assert!(e["duration_us"].is_u64());
    }
    let steps: Vec<&str> = ev
        .iter()
        .filter(|e| e["type"] == "step")
        .map(|e| e["step"].as_str().unwrap())
        .collect();
    assert_eq!(steps.first(), Some(&"image.resolve"));
    assert!(steps.contains(&"rootfs.pivot_root") && steps.contains(&"process.exec"));
    let exec = ev.iter().find(|e| e["syscall"] == "execve").unwrap();
    assert_eq!(exec["process"], "container");
    assert!(
        exec["args"].as_str().unwrap().starts_with("\"/bin/true\""),
        "{exec}"
    );
}

#[test]
fn pretty_trace_groups_by_step_and_explains() {
    let lab = Lab::with_busybox();
    let o = lab.run(&["--trace", "busybox", "true"]);
    o.expect_code(0);
    assert!(o.stderr.contains("── rootfs · pivot_root"), "{}", o.stderr);
    assert!(
        o.stderr.contains("pivot_root(\".\", \".\") = 0"),
        "{}",
        o.stderr
    );
    assert!(
        o.stderr
            .contains("↳ make the container's filesystem the root"),
        "{}",
        o.stderr
    );
    assert!(!o.stderr.contains('\x1b'), "no colour when NO_COLOR is set");
}

#[test]
fn step_pauses_and_q_undoes_everything() {
    let lab = Lab::with_busybox();
    // Enter for the first steps, then q just before the container's rootfs is mounted.
    let mut child = lab
        .command(&["run", "-m", "64m", "--step", "busybox", "true"])
        .stdin(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"\n\n\n\n\n\n\n\nq\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{err}");
    assert!(err.contains("⏸ next: [image.resolve]"), "{err}");
    assert!(err.contains("everything done so far was undone"), "{err}");
    assert!(
        lab.containers_left().is_empty(),
        "container dir left: {:?}",
        lab.containers_left()
    );
    let cgroups = std::fs::read_dir("/sys/fs/cgroup/memory/dockling")
        .map(|d| d.flatten().filter(|e| e.path().is_dir()).count())
        .unwrap_or(0);
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(
        !mounts.contains(&lab.root().display().to_string()),
        "a mount was left"
    );
    let _ = cgroups;
}

#[test]
fn explain_shows_the_plan_and_follows_the_switches() {
    let lab = Lab::with_busybox();
    let o = lab.cmd(&["explain", "run", "--rm", "busybox", "true"]);
    o.expect_code(0);
    assert!(o.stdout.contains("rootfs.pivot_root"), "{}", o.stdout);
    assert!(o.stdout.contains("CLONE_NEWPID"), "{}", o.stdout);
    let host = lab.cmd(&[
        "explain", "run", "--rm", "--pid", "host", "--rootfs", "chroot", "busybox", "true",
    ]);
    assert!(!host.stdout.contains("CLONE_NEWPID"), "{}", host.stdout);
    assert!(host.stdout.contains("chroot(\".\")"), "{}", host.stdout);
    assert!(
        host.stdout.contains("[changed: --pid host]"),
        "{}",
        host.stdout
    );
    assert!(
        lab.containers_left().is_empty(),
        "explain must not create anything"
    );
    let plan: String = o
        .stdout
        .lines()
        .take_while(|l| !l.is_empty())
        .map(|l| format!("{l}\n"))
        .collect();
    insta::assert_snapshot!(lab.filter(&plan));
}

/// One syscall line of `strace -f` output: (pid, name, result as printed, errno).
fn parse_strace(text: &str) -> Vec<(String, String, Option<String>)> {
    let mut out = Vec::new();
    let mut pending: std::collections::HashMap<String, String> = Default::default();
    for line in text.lines() {
        let line = line.trim_start();
        let (pid, rest) = line.split_once(char::is_whitespace).unwrap_or(("", line));
        let rest = rest.trim_start();
        if rest.starts_with("+++") || rest.starts_with("---") {
            continue;
        }
        let name;
        let tail;
        if let Some(r) = rest.strip_prefix("<... ") {
            let Some((n, t)) = r.split_once(" resumed>") else {
                continue;
            };
            name = n.to_string();
            tail = t.to_string();
            pending.remove(pid);
        } else if rest.ends_with("<unfinished ...>") {
            if let Some((n, _)) = rest.split_once('(') {
                pending.insert(pid.to_string(), n.to_string());
            }
            continue;
        } else {
            let Some((n, _)) = rest.split_once('(') else {
                continue;
            };
            name = n.to_string();
            tail = rest.to_string();
        }
        // The result is after the last " = ".
        let Some(idx) = tail.rfind(" = ") else {
            continue;
        };
        let res = &tail[idx + 3..];
        let mut parts = res.split_whitespace();
        let mut value = parts.next().unwrap_or("").to_string();
        // umask's result is printed in octal (`= 022`).
        if value.len() > 1 && value.starts_with('0') {
            if let Ok(n) = i64::from_str_radix(&value, 8) {
                value = n.to_string();
            }
        }
        let errno = parts
            .next()
            .filter(|e| e.starts_with('E'))
            .map(String::from);
        out.push((name, value, errno));
    }
    out
}

#[test]
fn the_trace_is_what_strace_sees() {
    let lab = Lab::with_busybox();
    let strace_out = lab.dir.path().join("strace.txt");
    let o: common::Out = std::process::Command::new("strace")
        .args([
            "-f",
            "-qq",
            "-o",
            strace_out.to_str().unwrap(),
            env!("CARGO_BIN_EXE_dockling"),
            "run",
            "--rm",
            "--trace=json",
            "-m",
            "64m",
            "busybox",
            "true",
        ])
        .env("DOCKLING_ROOT", lab.root())
        .env("DOCKLING_CONFIG", lab.dir.path().join("config.yaml"))
        .stdin(std::process::Stdio::null())
        .output()
        .expect("strace is installed (scripts/test installs it)")
        .into();
    o.expect_code(0);
    let traced: Vec<Value> = events(&o.stderr)
        .into_iter()
        .filter(|e| e["type"] == "syscall")
        .collect();
    assert!(traced.len() > 40, "only {} events", traced.len());
    let seen = parse_strace(&std::fs::read_to_string(&strace_out).unwrap());
    let mut cursor = 0;
    for (i, e) in traced.iter().enumerate() {
        let name = e["syscall"].as_str().unwrap();
        let result = e["result"].as_i64().unwrap();
        let errno = e["errno"].as_str();
        let found = seen[cursor..].iter().position(|(n, v, en)| {
            n == name
                && match errno {
                    Some(want) => en.as_deref() == Some(want),
                    None => v.parse::<i64>().ok() == Some(result),
                }
        });
        match found {
            Some(k) => cursor += k + 1,
            None => {
                let context: Vec<String> = traced[i.saturating_sub(3)..(i + 1).min(traced.len())]
                    .iter()
                    .map(|e| format!("{}({}) = {}", e["syscall"], e["args"], e["result"]))
                    .collect();
                panic!(
                    "event #{i} {name} = {result} {errno:?} does not appear in strace after position {cursor}\nlast events:\n{}",
                    context.join("\n")
                );
            }
        }
    }
}
