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
    let now_us = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_micros() as u64
    };
    let before = now_us();
    let o = lab.run(&["--trace=json", "busybox", "true"]);
    let after = now_us();
    o.expect_code(0);
    let ev = events(&o.stderr);
    // Every step and call says when it began, on the one clock all processes share.
    for e in ev.iter().filter(|e| e["type"] != "note") {
        let at = e["at_us"]
            .as_u64()
            .unwrap_or_else(|| panic!("no at_us: {e}"));
        assert!(
            (before..=after).contains(&at),
            "{at} not in {before}..{after}: {e}"
        );
    }
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
    // The engine re-executes itself from a read-only copy first (the tests never set
    // DOCKLING_NO_REEXEC), then finds the image.
    assert_eq!(steps.first(), Some(&"security.reexec"));
    assert_eq!(steps.get(1), Some(&"image.resolve"));
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
    use std::io::{BufRead, Write};
    let lab = Lab::with_busybox();
    let mut child = lab
        .command(&["run", "-m", "64m", "--step", "busybox", "true"])
        .stdin(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // A failure guard, not a timing: a run that never ends is killed after 60 s.
    let pid = child.id() as i32;
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let guard = {
        let done = done.clone();
        // Kills the run (and panics, seen at the join) if it has not ended within 60 s.
        std::thread::spawn(move || {
            common::wait_until_else(
                std::time::Duration::from_secs(60),
                "the --step run to end",
                || done.load(std::sync::atomic::Ordering::SeqCst).then_some(()),
                || common::kill_tree(pid),
            )
        })
    };
    let mut stdin = child.stdin.take().unwrap();
    let stderr = std::io::BufReader::new(child.stderr.take().unwrap());
    let mut err = String::new();
    let mut before_q = None;
    // Enter at every pause, then q just before the container's layers are mounted: by then
    // the container directory, its cgroups and its first process exist.
    for line in stderr.lines() {
        let line = line.unwrap();
        err.push_str(&line);
        err.push('\n');
        if !line.contains("⏸ next: [") {
            continue;
        }
        if line.contains("[layers.mount]") {
            before_q = Some((lab.containers_left(), lab.cgroups_left()));
            let _ = stdin.write_all(b"q\n");
        } else {
            let _ = stdin.write_all(b"\n");
        }
    }
    drop(stdin);
    let status = child.wait().unwrap();
    done.store(true, std::sync::atomic::Ordering::SeqCst);
    assert!(
        guard.join().is_ok(),
        "the run did not end within 60 s:\n{err}"
    );
    assert_eq!(status.code(), Some(130), "{err}");
    assert!(err.contains("⏸ next: [image.resolve]"), "{err}");
    assert!(err.contains("everything done so far was undone"), "{err}");
    let (dirs, groups) = before_q.expect("a pause before layers.mount");
    assert_eq!(
        dirs.len(),
        1,
        "the container directory existed before q: {dirs:?}"
    );
    assert!(
        !groups.is_empty(),
        "the container's cgroups existed before q (under {})",
        lab.cgroup_parent()
    );
    // What could outlive the run on the host: the container's directory and its cgroups.
    // (Its mounts lived only in its own mount namespace, which died with its process.)
    assert!(
        lab.containers_left().is_empty(),
        "container dir left: {:?}",
        lab.containers_left()
    );
    assert_eq!(
        lab.cgroups_left(),
        Vec::<std::path::PathBuf>::new(),
        "cgroups left"
    );
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
    host.expect_code(0);
    assert!(host.stdout.contains("chroot(\".\")"), "{}", host.stdout);
    assert!(!host.stdout.contains("CLONE_NEWPID"), "{}", host.stdout);
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

#[test]
fn explain_of_a_published_port_binds_before_clone_and_shows_the_nat_tables() {
    let lab = Lab::with_busybox();
    let o = lab.cmd(&["explain", "run", "-p", "8000:80", "busybox", "httpd", "-f"]);
    o.expect_code(0);
    let out = &o.stdout;
    let pos = |needle: &str| {
        out.find(needle)
            .unwrap_or_else(|| panic!("{needle:?} not in:\n{out}"))
    };
    // The port is bound (and listening: proxy mode) before anything is created.
    assert!(
        pos("htons(8000)") < pos("mkdir(\"$CONTAINER/upper\""),
        "{out}"
    );
    assert!(pos("listen(") < pos("clone("), "{out}");
    assert!(
        pos("── network · publish") > pos("── network · veth"),
        "{out}"
    );
    assert!(out.contains("   3. network.ports "), "{out}");
    let nat = lab.cmd(&[
        "explain",
        "run",
        "-p",
        "8000:80",
        "--publish-mode",
        "nat",
        "busybox",
        "httpd",
        "-f",
    ]);
    nat.expect_code(0);
    let n = &nat.stdout;
    assert!(n.contains("── network · reserve"), "{n}");
    assert!(
        n.contains("listen(100, 1)"),
        "NAT mode reserves (backlog 1, nothing accepts): {n}"
    );
    assert!(n.contains("add table ip dockling\n"), "{n}");
    assert!(n.contains("hairpin on"), "{n}");
    assert!(
        n.contains("prerouting fib daddr type local tcp dport 8000 dnat to 172.17.0.2:80"),
        "{n}"
    );
    assert!(n.contains("[changed: --publish-mode nat]"), "{n}");
    let none = lab.cmd(&["explain", "run", "--rm", "busybox", "true"]);
    assert!(
        none.expect_code(0)
            .stdout
            .contains("--  network.ports          bind every published host port"),
        "{}",
        none.stdout
    );
    assert!(
        lab.containers_left().is_empty(),
        "explain must not create anything"
    );
}

/// One syscall of `strace -f` output, as strace printed it.
#[derive(Debug, Clone)]
struct Seen {
    pid: String,
    name: String,
    /// The arguments, normalised (see `normalise`).
    args: String,
    /// What strace printed after `=`: `0`, `3`, or `-1 EEXIST`.
    result: String,
}

/// Make a rendering comparable: comments (`/* 3 vars */`) and user-space addresses (which
/// change from run to run, and which the trace shows as `0x…` or `…`) are dropped.
fn normalise(args: &str) -> String {
    let re_comment = regex::Regex::new(r"\s*/\*.*?\*/").unwrap();
    let re_ptr = regex::Regex::new(r"0x[0-9a-f]{6,}|0x…").unwrap();
    let s = re_comment.replace_all(args, "");
    re_ptr.replace_all(&s, "…").trim().to_string()
}

/// Whether a traced call (`name`, raw `args`, `result`) is strace's `s`. A netlink buffer is
/// compared by its first header (as strace decodes it, when it can: only for a socket of its
/// own network namespace), the descriptor, the arguments after the buffer and the result;
/// its bytes are held against strace's dump in [`the_netlink_trace_is_what_strace_sees`].
fn same_call(name: &str, args: &str, result: &str, s: &Seen) -> bool {
    if s.name != name || s.result != result {
        return false;
    }
    if (name == "sendto" || name == "recvfrom") && args.contains("{nlmsg_len=") {
        // For a socket made in the container's namespace strace knows no protocol: the type
        // (and type-specific flags) are numbers there; those fields are not compared.
        let fields = |h: String, numeric: &[bool; 2]| -> Vec<String> {
            h.trim_matches(['{', '}'])
                .split(", ")
                .filter(|f| {
                    let numbered = (numeric[0] && f.starts_with("nlmsg_type="))
                        || (numeric[1] && f.starts_with("nlmsg_flags="));
                    !numbered
                })
                .map(String::from)
                .collect()
        };
        return outside_buffer(args) == outside_buffer(&s.args)
            && first_header(&s.args).is_none_or(|h| {
                let numeric = [
                    h.contains("nlmsg_type=0x"),
                    h.split(", ")
                        .any(|f| f.starts_with("nlmsg_flags=") && f.contains("0x")),
                ];
                first_header(args).map(|t| fields(t, &numeric)) == Some(fields(h, &numeric))
            });
    }
    normalise(args) == s.args
}

/// Every syscall line of `strace -f -o` output, with `<unfinished ...>` and `<... resumed>`
/// halves joined.
fn parse_strace(text: &str) -> Vec<Seen> {
    let mut out = Vec::new();
    let mut pending: std::collections::HashMap<String, String> = Default::default();
    let call_line = regex::Regex::new(r"^(\w+)\((.*)\)\s+= (.*)$").unwrap();
    for line in text.lines() {
        let (pid, rest) = line.split_once(char::is_whitespace).unwrap_or(("", line));
        let rest = rest.trim_start();
        if rest.starts_with("+++") || rest.starts_with("---") {
            continue;
        }
        let full = if let Some(r) = rest.strip_prefix("<... ") {
            let Some((_, tail)) = r.split_once(" resumed>") else {
                continue;
            };
            match pending.remove(pid) {
                Some(head) => format!("{head}{tail}"),
                None => continue,
            }
        } else if let Some(head) = rest.strip_suffix(" <unfinished ...>") {
            pending.insert(pid.to_string(), head.to_string());
            continue;
        } else {
            rest.to_string()
        };
        // name(args) = result, with the result column padded by spaces.
        let Some(c) = call_line.captures(&full) else {
            continue;
        };
        let (name, args, res) = (&c[1], &c[2], c[3].trim());
        let mut parts = res.split_whitespace();
        let mut value = parts.next().unwrap_or("").to_string();
        // umask's result is printed in octal (`= 022`).
        if value.len() > 1 && value.starts_with('0') {
            if let Ok(n) = i64::from_str_radix(&value, 8) {
                value = n.to_string();
            }
        }
        let result = match parts.next().filter(|e| e.starts_with('E')) {
            Some(errno) => format!("{value} {errno}"),
            None => value,
        };
        out.push(Seen {
            pid: pid.to_string(),
            name: name.to_string(),
            args: normalise(args),
            result,
        });
    }
    out
}

/// `dockling run --rm --trace=json <args>` under `strace -f`: (the trace's syscall events,
/// strace's calls).
fn traced_and_seen(lab: &Lab, args: &[&str], code: i32) -> (Vec<Value>, Vec<Seen>) {
    traced_and_seen_of(lab, &["run", "--rm", "--trace=json"], args, code)
}

/// [`traced_and_seen`] of any traced dockling command (`command` holds its `--trace=json`).
fn traced_and_seen_of(
    lab: &Lab,
    command: &[&str],
    args: &[&str],
    code: i32,
) -> (Vec<Value>, Vec<Seen>) {
    let strace_out = lab.dir.path().join("strace.txt");
    let o: common::Out = std::process::Command::new("strace")
        .args(["-f", "-qq", "-s", "200", "-o", strace_out.to_str().unwrap()])
        .arg(env!("CARGO_BIN_EXE_dockling"))
        .args(command)
        .args(args)
        .env("DOCKLING_ROOT", lab.root())
        .env("DOCKLING_CONFIG", lab.dir.path().join("config.yaml"))
        .env_remove("DOCKLING_NO_REEXEC")
        .stdin(std::process::Stdio::null())
        .output()
        .expect("strace is installed (scripts/test installs it)")
        .into();
    o.expect_code(code);
    let traced: Vec<Value> = events(&o.stderr)
        .into_iter()
        .filter(|e| e["type"] == "syscall")
        .collect();
    let seen = parse_strace(&std::fs::read_to_string(&strace_out).unwrap());
    (traced, seen)
}

/// Hold every traced call against what strace saw the same process do, in order, with its
/// arguments and result; then check that strace saw no container-shaping call the trace left
/// out. Each process is compared with its own strace lines, so how the engine's and the
/// child's calls interleave in time does not matter.
fn assert_trace_is_what_strace_sees(traced: &[Value], seen: &[Seen]) {
    assert!(traced.len() > 40, "only {} events", traced.len());
    let engine = seen.first().expect("strace saw something").pid.clone();
    // Which pid each process of the trace is: the engine's clone starts the container (for
    // `run`) or the process that joins the namespaces (for `exec`), whose clone starts the
    // command's process.
    let mut pids: std::collections::HashMap<&str, String> = Default::default();
    pids.insert("engine", engine.clone());
    for e in traced.iter().filter(|e| e["syscall"] == "clone") {
        let result = e["result"].to_string();
        match e["process"].as_str() {
            // `-p` in proxy mode: the fork that becomes `dockling proxy`.
            Some("engine") if e["step"] == "network.publish" => {
                pids.insert("proxy", result);
            }
            Some("engine") => {
                pids.entry("container").or_insert_with(|| result.clone());
                pids.entry("join").or_insert(result);
            }
            Some("join") => {
                pids.insert("exec", result);
            }
            _ => {}
        }
    }
    assert!(pids.contains_key("container"), "a clone event");
    let child_name = if pids.contains_key("exec") {
        "exec"
    } else {
        "container"
    };
    let child = pids[child_name].clone();
    let mut cursor: std::collections::HashMap<String, usize> = Default::default();
    let mut matched = std::collections::HashSet::new();
    for (i, e) in traced.iter().enumerate() {
        let pid = match e["process"].as_str().and_then(|p| pids.get(p)) {
            Some(pid) => pid,
            None => panic!("event #{i} from an unknown process: {e}"),
        };
        let name = e["syscall"].as_str().unwrap();
        let raw = e["args"].as_str().unwrap();
        let args = normalise(raw);
        let result = match e["errno"].as_str() {
            Some(errno) => format!("-1 {errno}"),
            None => e["result"].as_i64().unwrap().to_string(),
        };
        let start = *cursor.get(pid).unwrap_or(&0);
        let found = seen[start..]
            .iter()
            .position(|s| &s.pid == pid && same_call(name, raw, &result, s));
        match found {
            Some(k) => {
                matched.insert(start + k);
                cursor.insert(pid.clone(), start + k + 1);
            }
            None => {
                let near: Vec<String> = seen[start..]
                    .iter()
                    .filter(|s| &s.pid == pid && s.name == name)
                    .take(3)
                    .map(|s| format!("  {}({}) = {}", s.name, s.args, s.result))
                    .collect();
                panic!(
                    "event #{i} of pid {pid} is not what strace saw next:\n  traced: {name}({args}) = {result}\nstrace's next {name} calls of that process:\n{}",
                    near.join("\n")
                );
            }
        }
    }
    // Completeness: what shapes a container, seen by strace but missing from the trace.
    const CHILD: &[&str] = &[
        "mount",
        "umount2",
        "pivot_root",
        "chroot",
        "chdir",
        "unshare",
        "setns",
        "sethostname",
        "setdomainname",
        "mkdir",
        "mkdirat",
        "mknod",
        "mknodat",
        "symlink",
        "symlinkat",
        "openat",
        "openat2",
        "prctl",
        "capset",
        "setgroups",
        "setresgid",
        "setresuid",
        "setsid",
        "ioctl",
        "dup2",
        "dup3",
        "close_range",
        "seccomp",
        "socket",
        "rt_sigprocmask",
        "rt_sigaction",
        "execve",
        "umask",
        "fstatfs",
        "access",
        "faccessat",
    ];
    const ENGINE: &[&str] = &[
        "open_tree",
        "mount_setattr",
        "execveat",
        "memfd_create",
        "socketpair",
        "clone",
        "clone3",
        "wait4",
        "kill",
        "rt_sigprocmask",
        "mount",
        "unshare",
        "setns",
        // `--layers erofs`'s probe of the kernel.
        "fsopen",
        "fsconfig",
    ];
    // The engine's netlink requests and answers (`--network bridge`).
    let netlink = |s: &Seen| {
        (["sendto", "recvfrom"].contains(&s.name.as_str()) && s.args.contains("nlmsg_len"))
            || (["socket", "bind"].contains(&s.name.as_str()) && s.args.contains("AF_NETLINK"))
    };
    let child_exec = seen
        .iter()
        .position(|s| s.pid == child && s.name == "execve")
        .expect("strace saw the container's execve");
    let join = pids.get("join").filter(|_| child_name == "exec");
    // The proxy's fork, up to its execve of `dockling proxy`: what it does to become it.
    let proxy = pids.get("proxy");
    let proxy_exec =
        proxy.and_then(|p| seen.iter().position(|s| &s.pid == p && s.name == "execve"));
    const PROXY: &[&str] = &[
        "prctl",
        "openat",
        "dup2",
        "dup3",
        "close_range",
        "rt_sigprocmask",
        "execve",
    ];
    let missing: Vec<String> = seen
        .iter()
        .enumerate()
        .filter(|(k, s)| {
            // Reading kernel information (/proc/sys/kernel/cap_last_cap, a parent cgroup's
            // cpuset.cpus to copy) shapes nothing.
            let reads_proc = s.name == "openat"
                && (s.args.starts_with("AT_FDCWD, \"/proc/")
                    || s.args.starts_with("AT_FDCWD, \"/sys/fs/cgroup/"))
                && s.args.ends_with(", O_RDONLY|O_CLOEXEC");
            let shapes_child =
                s.pid == child && *k <= child_exec && CHILD.contains(&s.name.as_str());
            let shapes_engine = s.pid == engine
                && (ENGINE.contains(&s.name.as_str())
                    || netlink(s)
                    || (["mkdir", "rmdir", "openat"].contains(&s.name.as_str())
                        && s.args.contains("\"/sys/fs/cgroup")));
            // exec's namespace joiner: every namespace it enters and the process it starts.
            let shapes_join = join.is_some_and(|j| {
                &s.pid == j && ["setns", "clone", "clone3"].contains(&s.name.as_str())
            });
            let shapes_proxy = proxy.is_some_and(|p| {
                &s.pid == p
                    && proxy_exec.is_some_and(|x| *k <= x)
                    && PROXY.contains(&s.name.as_str())
            });
            !matched.contains(k)
                && !reads_proc
                && (shapes_child || shapes_engine || shapes_join || shapes_proxy)
        })
        .map(|(_, s)| format!("  [{}] {}({}) = {}", s.pid, s.name, s.args, s.result))
        .collect();
    assert!(
        missing.is_empty(),
        "strace saw calls the trace does not show:\n{}",
        missing.join("\n")
    );
}

/// `run` re-executes from the read-only view of its binary first thing, as crun does: the
/// engine before the `execveat` reads no config and opens no store, so that work is done once
/// (it was done twice, before and after the re-exec, a third of a run's CPU time).
#[test]
fn run_re_executes_before_reading_its_config() {
    let lab = Lab::with_busybox();
    let strace_out = lab.dir.path().join("strace-early.txt");
    let config = lab.dir.path().join("config.yaml");
    let o: common::Out = std::process::Command::new("strace")
        .args(["-f", "-qq", "-e", "trace=openat,execveat", "-o"])
        .arg(&strace_out)
        .arg(env!("CARGO_BIN_EXE_dockling"))
        .args(["run", "--rm", "busybox", "true"])
        .env("DOCKLING_ROOT", lab.root())
        .env("DOCKLING_CONFIG", &config)
        .env_remove("DOCKLING_NO_REEXEC")
        .stdin(std::process::Stdio::null())
        .output()
        .expect("strace is installed (scripts/test installs it)")
        .into();
    o.expect_code(0);
    let text = std::fs::read_to_string(&strace_out).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let reexec = lines
        .iter()
        .position(|l| l.contains("execveat("))
        .unwrap_or_else(|| panic!("no execveat:\n{text}"));
    let config_opens: Vec<usize> = (0..lines.len())
        .filter(|&i| lines[i].contains("openat(") && lines[i].contains(config.to_str().unwrap()))
        .collect();
    assert_eq!(config_opens.len(), 1, "the config is read once:\n{text}");
    assert!(
        config_opens[0] > reexec,
        "the config is read after the re-exec:\n{text}"
    );
}

#[test]
fn the_trace_is_what_strace_sees() {
    let lab = Lab::with_busybox();
    let (traced, seen) = traced_and_seen(&lab, &["-m", "64m", "busybox", "true"], 0);
    assert_trace_is_what_strace_sees(&traced, &seen);
    // The engine side is in it: the re-exec, the channel, the signal mask, the cgroup knobs.
    for want in [
        "open_tree",
        "mount_setattr",
        "execveat",
        "socketpair",
        "rt_sigprocmask",
        "write",
        "wait4",
    ] {
        assert!(
            traced
                .iter()
                .any(|e| e["process"] == "engine" && e["syscall"] == want),
            "no engine {want} in the trace"
        );
    }
    // The container side's file system checks too (the bind targets, the /dev tmpfs), held
    // against strace's rendering of the whole struct statfs above, and the program's lookup
    // in PATH (its directories, then whether it may be run and is no directory).
    // (Named per machine: aarch64 has faccessat only, 32-bit machines fstatat64.)
    // The PATH lookup probes each directory once, with access(X_OK): no F_OK probe first.
    let probes: Vec<String> = traced
        .iter()
        .filter(|e| {
            e["process"] == "container"
                && ["access", "faccessat"].contains(&e["syscall"].as_str().unwrap())
                && e["args"].as_str().unwrap().contains("bin/true\"")
        })
        .map(|e| e["args"].as_str().unwrap().to_string())
        .collect();
    assert!(!probes.is_empty(), "the lookup of true is in the trace");
    assert!(
        probes.iter().all(|a| a.ends_with("X_OK")),
        "one X_OK probe per PATH directory: {probes:?}"
    );
    for want in [
        &["fstatfs"][..],
        &["access", "faccessat"],
        &["newfstatat", "fstatat64"],
    ] {
        assert!(
            traced
                .iter()
                .any(|e| e["process"] == "container" && want.iter().any(|w| e["syscall"] == *w)),
            "no container {want:?} in the trace"
        );
    }
}

/// `--layers erofs` asks the kernel whether it mounts an EROFS from a file through the seam
/// (fsopen, fsconfig source, fsconfig create, close: held against strace), once per boot: the
/// next run reads the answer the store kept and says so, with no probe.
#[test]
fn the_erofs_probe_is_traced_once_per_boot() {
    let lab = Lab::with_busybox();
    let args = ["--network", "none", "--layers", "erofs", "busybox", "true"];
    let (traced, seen) = traced_and_seen(&lab, &args, 0);
    assert_trace_is_what_strace_sees(&traced, &seen);
    let probe: Vec<String> = traced
        .iter()
        .filter(|e| ["fsopen", "fsconfig"].contains(&e["syscall"].as_str().unwrap()))
        .map(|e| {
            format!(
                "{}({})",
                e["syscall"].as_str().unwrap(),
                e["args"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(probe.len(), 3, "fsopen and two fsconfig: {probe:?}");
    assert!(
        probe[1].contains("\"source\", \"/proc/self/fd/"),
        "{probe:?}"
    );
    assert!(probe[2].contains("FSCONFIG_CMD_CREATE"), "{probe:?}");
    let answer = std::fs::read_to_string(lab.root().join("layers/erofs-supported")).unwrap();
    let boot = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").unwrap();
    assert_eq!(answer, format!("{}\nok\n", boot.trim()));
    // Asked once this boot: the second run reads the answer, and strace sees no probe.
    let (traced, seen) = traced_and_seen(&lab, &args, 0);
    assert_trace_is_what_strace_sees(&traced, &seen);
    assert!(
        !seen
            .iter()
            .any(|s| s.name == "fsopen" || s.name == "fsconfig"),
        "no second probe"
    );
    let o = lab.cmd(
        &["run", "--rm", "--trace"]
            .iter()
            .chain(&args)
            .copied()
            .collect::<Vec<_>>(),
    );
    o.expect_code(0);
    assert!(
        o.stderr
            .contains("mounts an EROFS from a file: asked once this boot"),
        "{}",
        o.stderr
    );
}

#[test]
fn the_trace_is_what_strace_sees_with_a_published_port() {
    let lab = Lab::with_busybox();
    for mode in ["nat", "proxy"] {
        let (traced, seen) = traced_and_seen(
            &lab,
            &["-p", "8000:80", "--publish-mode", mode, "busybox", "true"],
            0,
        );
        assert_trace_is_what_strace_sees(&traced, &seen);
        let engine = |call: &str| {
            traced
                .iter()
                .find(|e| e["process"] == "engine" && e["syscall"] == call)
                .map(|e| e["args"].as_str().unwrap_or_default().to_string())
        };
        assert!(
            engine("bind").is_some(),
            "{mode}: no engine bind in the trace"
        );
        assert!(
            engine("setsockopt").is_some_and(|a| a.contains("SO_REUSEADDR")),
            "{mode}: a TCP port is bound with SO_REUSEADDR"
        );
        let listen = engine("listen").expect("a published TCP port listens");
        if mode == "nat" {
            // NAT mode reserves the port: listening with a backlog of one, nothing accepts,
            // and only once the container's table is in (a listener before it would complete
            // handshakes that nothing accepts).
            assert!(listen.ends_with(", 1"), "{mode}: backlog of one: {listen}");
            let at = |f: &dyn Fn(&serde_json::Value) -> bool| {
                traced.iter().position(|e| e["process"] == "engine" && f(e))
            };
            let listen_at = at(&|e| e["syscall"] == "listen").unwrap();
            assert_eq!(traced[listen_at]["step"], "network.publish", "{mode}");
            let table_at = at(&|e| {
                e["syscall"] == "sendto"
                    && e["args"]
                        .as_str()
                        .unwrap_or_default()
                        .contains("NFT_MSG_NEWTABLE")
            });
            assert!(
                table_at.is_some_and(|t| t < listen_at),
                "{mode}: the listen comes after the table is sent"
            );
            continue;
        }
        // Proxy mode: the proxy is forked and exec'd through the seam, and killed and
        // waited for at the end, each call as strace saw it.
        let proxy: Vec<&str> = traced
            .iter()
            .filter(|e| e["process"] == "proxy")
            .map(|e| e["syscall"].as_str().unwrap())
            .collect();
        assert_eq!(proxy.first(), Some(&"prctl"), "{proxy:?}");
        assert_eq!(proxy.last(), Some(&"execve"), "{proxy:?}");
        assert!(
            proxy.contains(&"dup2") && proxy.contains(&"close_range"),
            "{proxy:?}"
        );
        let publish = |call: &str| {
            traced.iter().any(|e| {
                e["process"] == "engine" && e["step"] == "network.publish" && e["syscall"] == call
            })
        };
        assert!(
            publish("pipe2") && publish("clone"),
            "the proxy's start is traced"
        );
        for call in ["kill", "wait4"] {
            assert!(
                traced.iter().any(|e| e["process"] == "engine"
                    && e["syscall"] == call
                    && e["args"].as_str().unwrap().contains("SIGKILL")),
                "the proxy's {call} (SIGKILL) is traced"
            );
        }
    }
}

/// On a user network the start rewrites the members' hosts files (its own included) under
/// the network's lock: the lock's open and flock, the container directory's open, the hosts
/// file's openat2 beneath it with O_TRUNC, the write and the close are in the trace, each as
/// strace saw it.
#[test]
fn the_hosts_refresh_of_a_user_network_is_what_strace_sees() {
    let lab = Lab::with_busybox();
    lab.cmd(&["network", "create", "tracenet"]).expect_code(0);
    let (traced, seen) = traced_and_seen(&lab, &["--network", "tracenet", "busybox", "true"], 0);
    assert_trace_is_what_strace_sees(&traced, &seen);
    let engine = |call: &str, has: &str| {
        traced.iter().any(|e| {
            e["process"] == "engine"
                && e["syscall"] == call
                && e["args"].as_str().unwrap().contains(has)
        })
    };
    assert!(
        engine("openat", "tracenet/.lock\""),
        "the network lock's open is traced"
    );
    assert!(
        engine("flock", "LOCK_EX|LOCK_NB"),
        "the network lock's flock is traced"
    );
    assert!(
        engine(
            "openat2",
            "\"hosts\", {flags=O_WRONLY|O_TRUNC|O_NONBLOCK|O_NOFOLLOW|O_CLOEXEC"
        ),
        "the hosts file's openat2 with O_TRUNC is traced"
    );
    assert!(
        engine("write", "127.0.0.1\\tlocalhost"),
        "the rewrite's write is traced"
    );
    // strace saw no flock of the network's lock taken for a hosts rewrite that the trace
    // left out (the lease's own turns under the same lock are store work, untraced).
    let engine_pid = &seen.first().unwrap().pid;
    let mut lock_fd: Option<String> = None;
    let (mut held, mut rewrote, mut flocks) = (0, false, 0);
    for s in seen.iter().filter(|s| &s.pid == engine_pid) {
        let on_lock = |fd: &Option<String>| {
            fd.as_ref()
                .is_some_and(|fd| s.args == *fd || s.args.starts_with(&format!("{fd},")))
        };
        match s.name.as_str() {
            "openat" if s.args.contains("tracenet/.lock\"") => {
                lock_fd = Some(s.result.clone());
                (held, rewrote) = (0, false);
            }
            "openat2" if lock_fd.is_some() && s.args.contains("\"hosts\"") => rewrote = true,
            "close" if on_lock(&lock_fd) => {
                lock_fd = None;
                if rewrote {
                    flocks += held;
                }
            }
            "flock" if on_lock(&lock_fd) => held += 1,
            _ => {}
        }
    }
    // (The refresh when the run ends takes the lock too, but rewrites nothing: the only
    // member is the one leaving.)
    assert!(
        flocks > 0,
        "strace saw the network lock taken for a rewrite"
    );
    assert!(
        traced.iter().filter(|e| e["syscall"] == "flock").count() >= flocks,
        "every flock of the network's lock taken for a rewrite is in the trace"
    );
}

/// `exec`: the namespace files opened, every namespace joined by the forked joiner, the
/// command's process started inside them, its cgroup, and the same security steps as a
/// container's first process, each as strace saw it.
#[test]
fn the_trace_of_exec_is_what_strace_sees() {
    let lab = Lab::with_busybox();
    lab.cmd(&["run", "-d", "--name", "target", "busybox", "sleep", "1000"])
        .expect_code(0);
    let (traced, seen) = traced_and_seen_of(
        &lab,
        &["exec", "--trace=json"],
        &["-w", "/tmp", "-u", "nobody", "target", "true"],
        0,
    );
    assert_trace_is_what_strace_sees(&traced, &seen);
    let setns: Vec<String> = traced
        .iter()
        .filter(|e| e["process"] == "join" && e["syscall"] == "setns")
        .map(|e| e["args"].as_str().unwrap().to_string())
        .collect();
    for kind in ["IPC", "UTS", "NET", "PID", "NS", "CGROUP"] {
        assert!(
            setns
                .iter()
                .any(|a| a.ends_with(&format!("CLONE_NEW{kind}"))),
            "no setns of {kind}: {setns:?}"
        );
    }
    for want in ["setresuid", "seccomp", "execve"] {
        assert!(
            traced
                .iter()
                .any(|e| e["process"] == "exec" && e["syscall"] == want),
            "no exec {want} in the trace"
        );
    }
    lab.cmd(&["rm", "-f", "target"]).expect_code(0);
}

#[test]
fn the_trace_is_what_strace_sees_with_chroot_copy_a_workdir_and_a_user() {
    let lab = Lab::with_busybox();
    let (traced, seen) = traced_and_seen(
        &lab,
        &[
            "--rootfs",
            "chroot",
            "--layers",
            "copy",
            "-w",
            "/new/dir",
            "-i",
            "-u",
            "1000",
            "--network",
            "host",
            "busybox",
            "true",
        ],
        0,
    );
    assert_trace_is_what_strace_sees(&traced, &seen);
    // The missing working directory was looked for through the seam: /new/dir and /new are
    // missing (ENOENT), / is there, each held against strace above (the program's lookup in
    // PATH comes later).
    let looked: Vec<String> = traced
        .iter()
        .filter(|e| e["syscall"] == "access" || e["syscall"] == "faccessat")
        .map(|e| e["args"].as_str().unwrap().to_string())
        .take(3)
        .collect();
    assert!(
        looked.len() == 3 && looked[0].contains("\"/new/dir\"") && looked[2].contains("\"/\""),
        "{looked:?}"
    );
}

#[test]
fn the_trace_is_what_strace_sees_when_the_program_is_missing() {
    // The failure path: the child reports 127 and exits, the engine kills and reaps it.
    let lab = Lab::with_busybox();
    let (traced, seen) = traced_and_seen(&lab, &["busybox", "no-such-program"], 127);
    let engine = seen.first().unwrap().pid.clone();
    assert!(
        !seen.iter().any(|s| s.pid != engine && s.name == "execve"),
        "nothing was executed in the container"
    );
    // No execve of the container's program to anchor the completeness check on: compare
    // the calls the trace reports.
    let mut cursor = 0;
    for e in traced.iter().filter(|e| e["process"] == "engine") {
        let name = e["syscall"].as_str().unwrap();
        let raw = e["args"].as_str().unwrap();
        let args = normalise(raw);
        let result = match e["errno"].as_str() {
            Some(errno) => format!("-1 {errno}"),
            None => e["result"].as_i64().unwrap().to_string(),
        };
        let k = seen[cursor..]
            .iter()
            .position(|s| s.pid == engine && same_call(name, raw, &result, s))
            .unwrap_or_else(|| panic!("not what strace saw: {name}({args}) = {result}"));
        cursor += k + 1;
    }
    assert!(
        traced.iter().any(|e| e["syscall"] == "kill")
            && traced.iter().any(|e| e["syscall"] == "wait4"),
        "the engine kills and reaps the failed child, traced"
    );
    for e in traced
        .iter()
        .filter(|e| e["syscall"] == "kill" || e["syscall"] == "wait4")
    {
        assert_eq!(
            e["step"], "process.cleanup",
            "undoing is the cleanup step: {e}"
        );
    }
}

#[test]
fn steps_are_titled_by_what_they_do() {
    let lab = Lab::with_busybox();
    let o = lab.run(&["--trace=json", "--rootfs", "chroot", "busybox", "true"]);
    o.expect_code(0);
    let ev = events(&o.stderr);
    let pivot = ev
        .iter()
        .find(|e| e["type"] == "step" && e["step"] == "rootfs.pivot_root")
        .expect("the root switch step");
    assert_eq!(pivot["variant"], "chroot", "{pivot}");
    assert!(
        pivot["title"].as_str().unwrap().contains("chroot")
            && !pivot["title"].as_str().unwrap().contains("pivot_root"),
        "{pivot}"
    );
    // Each call under the step that does it.
    let step_of = |name: &str| -> Vec<String> {
        ev.iter()
            .filter(|e| e["type"] == "syscall" && e["syscall"] == name)
            .map(|e| e["step"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(step_of("execve"), ["process.exec"]);
    assert_eq!(step_of("chroot"), ["rootfs.pivot_root"]);
    // /dev/null on stdin, and (stdout being the test's pipe) the stdout relay's pipe.
    let dups = step_of("dup2");
    assert!(
        !dups.is_empty() && dups.iter().all(|s| s == "process.terminal"),
        "{dups:?}"
    );
    assert_eq!(step_of("socketpair"), ["namespaces.clone"]);
    assert!(
        ev.iter()
            .filter(|e| e["syscall"] == "write" && e["process"] == "engine")
            .all(|e| e["step"] != "layers.prepare"),
        "the /etc files are not the writable layer"
    );
    let dup = ev.iter().find(|e| e["syscall"] == "dup2").unwrap();
    assert!(
        dup["explain"].as_str().unwrap().contains("/dev/null")
            && !dup["explain"].as_str().unwrap().contains("terminal"),
        "{dup}"
    );
    let pretty = lab.run(&["--trace", "--rootfs", "chroot", "busybox", "true"]);
    pretty.expect_code(0);
    assert!(
        pretty.stderr.contains("── rootfs · chroot"),
        "{}",
        pretty.stderr
    );
    assert!(
        !pretty.stderr.contains("rootfs · pivot_root"),
        "{}",
        pretty.stderr
    );
}

#[test]
fn the_trace_is_what_strace_sees_with_a_terminal() {
    // -t: the pty's opens and ioctls, setsid, TIOCSCTTY and the dup2s onto the terminal.
    // script(1) gives dockling a terminal; the JSON events arrive on it with the output.
    let lab = Lab::with_busybox();
    let strace_out = lab.dir.path().join("strace.txt");
    // A failure guard, not a timing.
    let (out, code) = lab
        .in_terminal(
            "",
            &format!("strace -f -qq -s 200 -o {} ", strace_out.display()),
            "run --rm -t --trace=json busybox true",
        )
        .wait(std::time::Duration::from_secs(60), |_| {});
    assert_eq!(code, 0, "{out}");
    let traced: Vec<Value> = events(&out)
        .into_iter()
        .filter(|e| e["type"] == "syscall")
        .collect();
    let seen = parse_strace(&std::fs::read_to_string(&strace_out).unwrap());
    assert_trace_is_what_strace_sees(&traced, &seen);
    for want in ["setsid", "dup2", "ioctl"] {
        assert!(
            traced
                .iter()
                .any(|e| e["process"] == "container" && e["syscall"] == want),
            "no {want} in the trace"
        );
    }
}

#[test]
fn trace_file_keeps_the_containers_stderr_out_of_the_json() {
    use std::os::unix::fs::PermissionsExt;
    let lab = Lab::with_busybox();
    let file = lab.dir.path().join("trace.jsonl");
    std::fs::write(&file, "left over from before\n").unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o640)).unwrap();
    let o = lab.run(&[
        "--trace=json",
        "--trace-file",
        file.to_str().unwrap(),
        "busybox",
        "sh",
        "-c",
        "echo from-the-container >&2",
    ]);
    o.expect_code(0);
    assert_eq!(o.stderr, "from-the-container\n");
    let text = std::fs::read_to_string(&file).unwrap();
    // (The command line, in the execve event, names it: the container's line is not there.)
    assert!(
        !text.lines().any(|l| l == "from-the-container") && !text.contains("left over"),
        "{text}"
    );
    let ev = events(&text);
    assert_eq!(ev.len(), text.lines().count(), "a line that is not JSON");
    let calls: Vec<&str> = ev
        .iter()
        .filter(|e| e["type"] == "syscall")
        .map(|e| e["syscall"].as_str().unwrap())
        .collect();
    // Before the re-exec from the sealed binary and after it: one trace, not truncated by
    // the second engine; the container's own calls too.
    for want in ["open_tree", "execveat", "clone", "execve", "wait4"] {
        assert!(calls.contains(&want), "no {want} in {calls:?}");
    }
    let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o640, "an existing file keeps its mode");
    let fresh = lab.dir.path().join("fresh.jsonl");
    lab.run(&["--trace-file", fresh.to_str().unwrap(), "busybox", "true"])
        .expect_code(0);
    let mode = std::fs::metadata(&fresh).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    assert!(!events(&std::fs::read_to_string(&fresh).unwrap()).is_empty());
}

#[test]
fn trace_with_a_space_before_its_format_is_a_clear_error() {
    let lab = Lab::with_busybox();
    for (args, word) in [
        (&["run", "--trace", "json", "busybox", "true"][..], "json"),
        (
            &["run", "--rm", "--trace", "pretty", "busybox"][..],
            "pretty",
        ),
        (&["exec", "--trace", "json", "web", "true"][..], "json"),
    ] {
        let o = lab.cmd(args);
        o.expect_code(125);
        assert!(
            o.stderr.contains(&format!("write `--trace={word}`")),
            "{args:?}: {}",
            o.stderr
        );
        assert!(!o.stderr.contains("Unable to find image"), "{}", o.stderr);
    }
    // An image named after nothing of the kind still runs with a bare --trace.
    lab.cmd(&["run", "--rm", "--trace", "busybox", "true"])
        .expect_code(0);
}

/// Hold a command's traced calls (one process: the command itself) against what strace saw
/// it do, in order, with arguments and results; then check that every call strace saw of the
/// kinds in `complete` (by name; `openat` only when it writes a cgroup knob) is in the trace.
fn assert_command_trace_is_what_strace_sees(traced: &[Value], seen: &[Seen], complete: &[&str]) {
    let me = seen.first().expect("strace saw something").pid.clone();
    let mut cursor = 0;
    let mut matched = std::collections::HashSet::new();
    for (i, e) in traced.iter().enumerate() {
        assert_eq!(
            e["process"], "engine",
            "event #{i} from another process: {e}"
        );
        let name = e["syscall"].as_str().unwrap();
        let args = normalise(e["args"].as_str().unwrap());
        let result = match e["errno"].as_str() {
            Some(errno) => format!("-1 {errno}"),
            None => e["result"].as_i64().unwrap().to_string(),
        };
        let found = seen[cursor..]
            .iter()
            .position(|s| s.pid == me && s.name == name && s.args == args && s.result == result);
        match found {
            Some(k) => {
                matched.insert(cursor + k);
                cursor += k + 1;
            }
            None => panic!("event #{i} is not what strace saw next: {name}({args}) = {result}"),
        }
    }
    let missing: Vec<String> = seen
        .iter()
        .enumerate()
        .filter(|(k, s)| {
            let knob = s.name == "openat"
                && s.args.starts_with("AT_FDCWD, \"/sys/fs/cgroup/")
                && s.args.contains("O_WRONLY");
            s.pid == me
                && !matched.contains(k)
                && (knob || (s.name != "openat" && complete.contains(&s.name.as_str())))
        })
        .map(|(_, s)| format!("  {}({}) = {}", s.name, s.args, s.result))
        .collect();
    assert!(
        missing.is_empty(),
        "strace saw calls the trace does not show:\n{}",
        missing.join("\n")
    );
}

/// `stop`: the pidfd opened on the container's first process and the stop signal sent
/// through it; after `-t`, the cgroup frozen, every process killed, the group thawed, each as
/// strace saw it. The pretty trace explains the signal.
#[test]
fn the_trace_of_stop_is_what_strace_sees() {
    let lab = Lab::with_busybox();
    lab.cmd(&["run", "-d", "--name", "target", "busybox", "sleep", "1000"])
        .expect_code(0);
    let (traced, seen) =
        traced_and_seen_of(&lab, &["stop", "--trace=json"], &["-t", "0", "target"], 0);
    assert_command_trace_is_what_strace_sees(
        &traced,
        &seen,
        &[
            "pidfd_open",
            "pidfd_send_signal",
            "kill",
            "tgkill",
            "openat",
        ],
    );
    for want in ["pidfd_open", "pidfd_send_signal", "kill", "write"] {
        assert!(
            traced.iter().any(|e| e["syscall"] == want),
            "no {want} in the trace of stop"
        );
    }
    assert!(
        traced.iter().any(|e| e["syscall"] == "write"
            && (e["args"].as_str().unwrap().contains("FROZEN")
                || e["args"].as_str().unwrap().contains("\"1\""))),
        "the cgroup is frozen before the kills"
    );
    lab.cmd(&["start", "target"]).expect_code(0);
    let o = lab.cmd(&["stop", "--trace", "-t", "0", "target"]);
    o.expect_code(0);
    assert!(
        o.stderr.contains("pidfd_send_signal(") && o.stderr.contains(", SIGTERM, NULL, 0) = 0"),
        "{}",
        o.stderr
    );
    assert!(
        o.stderr.contains("↳ send the signal through the pidfd"),
        "{}",
        o.stderr
    );
    assert!(
        o.stderr
            .contains("· waiting up to 0s for the container to end"),
        "{}",
        o.stderr
    );
    lab.cmd(&["rm", "target"]).expect_code(0);
}

/// `stop` of a paused container thaws it after the signal (as Docker): the freezer knob's
/// openat, write and close are in the trace, as strace saw them (they went through an untraced
/// seam once, which the completeness check of cgroup knobs catches).
#[test]
fn the_trace_of_stop_of_a_paused_container_shows_the_thaw() {
    let lab = Lab::with_busybox();
    lab.cmd(&["run", "-d", "--name", "frozen", "busybox", "sleep", "1000"])
        .expect_code(0);
    lab.cmd(&["pause", "frozen"]).expect_code(0);
    let (traced, seen) =
        traced_and_seen_of(&lab, &["stop", "--trace=json"], &["-t", "1", "frozen"], 0);
    assert_command_trace_is_what_strace_sees(
        &traced,
        &seen,
        &[
            "pidfd_open",
            "pidfd_send_signal",
            "kill",
            "tgkill",
            "openat",
        ],
    );
    let signal = traced
        .iter()
        .position(|e| e["syscall"] == "pidfd_send_signal")
        .expect("the signal is in the trace");
    let thaw = traced
        .iter()
        .position(|e| {
            e["syscall"] == "write"
                && ["THAWED", "\"0\""]
                    .iter()
                    .any(|w| e["args"].as_str().unwrap().contains(w))
        })
        .expect("the thaw's write is in the trace");
    assert!(thaw > signal, "thawed after the signal");
    // sleep as process 1 has no SIGTERM handler: it ends by the SIGKILL after the timeout,
    // which it could not have received frozen either.
    assert_eq!(lab.state("frozen"), "exited 137");
    lab.cmd(&["rm", "frozen"]).expect_code(0);
}

/// `commit` of a running container: the freezer's writes (freeze before the walk, thaw after
/// the image is written) traced as strace saw them, and no cgroup knob written untraced.
#[test]
fn the_trace_of_commit_is_what_strace_sees() {
    let lab = Lab::with_busybox();
    lab.cmd(&["run", "-d", "--name", "target", "busybox", "sleep", "1000"])
        .expect_code(0);
    let (traced, seen) =
        traced_and_seen_of(&lab, &["commit", "--trace=json"], &["target", "snap:1"], 0);
    assert_command_trace_is_what_strace_sees(&traced, &seen, &[]);
    let writes: Vec<&str> = traced
        .iter()
        .filter(|e| e["syscall"] == "write")
        .map(|e| e["args"].as_str().unwrap())
        .collect();
    assert_eq!(writes.len(), 2, "a freeze and a thaw: {writes:?}");
    assert!(
        writes[0].contains("FROZEN") || writes[0].contains("\"1\""),
        "{writes:?}"
    );
    assert!(
        writes[1].contains("THAWED") || writes[1].contains("\"0\""),
        "{writes:?}"
    );
    lab.cmd(&["rm", "-f", "target"]).expect_code(0);
}

/// `cp` into a container: the root's lookups traced as strace saw them, and a note for every
/// file and directory it made, naming the calls (the per-file work runs on descriptors, not
/// through the seam): each file strace saw created with O_CREAT|O_EXCL has its note.
#[test]
fn the_trace_of_cp_is_what_strace_sees_with_a_note_per_file() {
    let lab = Lab::with_busybox();
    lab.cmd(&["run", "-d", "--name", "target", "busybox", "sleep", "1000"])
        .expect_code(0);
    let src = lab.dir.path().join("tree");
    std::fs::create_dir_all(src.join("sub")).unwrap();
    std::fs::write(src.join("one.txt"), "1").unwrap();
    std::fs::write(src.join("sub/two.txt"), "2").unwrap();
    let (traced, seen) = traced_and_seen_of(
        &lab,
        &["cp", "--trace=json"],
        &[src.to_str().unwrap(), "target:/tmp/"],
        0,
    );
    assert_command_trace_is_what_strace_sees(&traced, &seen, &[]);
    assert!(
        traced.iter().any(|e| e["syscall"] == "openat2"),
        "the container's root lookups are traced"
    );
    let o = lab.cmd(&[
        "cp",
        "--trace=json",
        src.to_str().unwrap(),
        "target:/tmp/again",
    ]);
    o.expect_code(0);
    let notes: Vec<String> = events(&o.stderr)
        .into_iter()
        .filter(|e| e["type"] == "note")
        .map(|e| e["message"].as_str().unwrap().to_string())
        .collect();
    let created: Vec<String> = seen
        .iter()
        .filter(|s| s.name == "openat" && s.args.contains("O_CREAT|O_EXCL"))
        .map(|s| s.args.split('"').nth(1).unwrap().to_string())
        .collect();
    assert_eq!(
        created.len(),
        2,
        "strace saw both files created: {created:?}"
    );
    for name in &created {
        assert!(
            notes
                .iter()
                .any(|n| n.contains(&format!("{name}: its parent opened"))
                    && n.contains("O_CREAT|O_EXCL|O_NOFOLLOW")),
            "no note for {name}: {notes:?}"
        );
    }
    assert!(
        notes
            .iter()
            .any(|n| n.starts_with("again/sub: ") && n.contains("mkdirat")),
        "{notes:?}"
    );
    lab.cmd(&["rm", "-f", "target"]).expect_code(0);
}

/// `logs -f --trace` says how the json-file is opened (through the directory's descriptor,
/// O_NOFOLLOW), read and followed, and when it ends; `exec --trace` shows its setns lines
/// explained, as people read them.
#[test]
fn logs_follow_and_exec_explain_their_work_in_the_trace() {
    let lab = Lab::with_busybox();
    lab.cmd(&["run", "-d", "--name", "target", "busybox", "sleep", "1000"])
        .expect_code(0);
    let o = lab.cmd(&["exec", "--trace", "target", "true"]);
    o.expect_code(0);
    assert!(o.stderr.contains("setns("), "{}", o.stderr);
    assert!(o.stderr.contains("CLONE_NEWPID) = 0"), "{}", o.stderr);
    assert!(o.stderr.contains("↳ "), "{}", o.stderr);
    lab.cmd(&["rm", "-f", "target"]).expect_code(0);
    lab.cmd(&[
        "run",
        "-d",
        "--name",
        "talker",
        "busybox",
        "sh",
        "-c",
        "echo one; echo two; sleep 0.3",
    ])
    .expect_code(0);
    let o = lab.cmd(&["logs", "-f", "--trace=json", "talker"]);
    o.expect_code(0);
    assert_eq!(o.stdout, "one\ntwo\n");
    let notes: Vec<String> = events(&o.stderr)
        .into_iter()
        .filter(|e| e["type"] == "note")
        .map(|e| e["message"].as_str().unwrap().to_string())
        .collect();
    let has = |s: &str| notes.iter().any(|n| n.contains(s));
    assert!(
        has("with openat(dir fd, name, O_RDONLY|O_NOFOLLOW)"),
        "{notes:?}"
    );
    assert!(has("follow: every 50 ms read(2)"), "{notes:?}");
    assert!(has("AT_SYMLINK_NOFOLLOW"), "{notes:?}");
    assert!(has("2 entries shown in all"), "{notes:?}");
    let o = lab.cmd(&["logs", "--trace", "talker"]);
    o.expect_code(0);
    assert!(
        o.stderr
            .contains("· open the container's directory with open(O_DIRECTORY|O_NOFOLLOW)"),
        "{}",
        o.stderr
    );
    lab.cmd(&["rm", "talker"]).expect_code(0);
}

/// The netlink requests of `network::netlink`, made by this test binary itself (re-run under
/// `strace -f -e write=all -e read=all`, in network namespaces it makes): every traced
/// `socket`, `sendto` and `recvfrom` is what strace saw, in order, with the same descriptor,
/// lengths and result, the same header, and byte for byte the same buffer.
#[test]
fn the_netlink_trace_is_what_strace_sees() {
    if let Ok(out) = std::env::var("DOCKLING_NETLINK_TRACE_TO") {
        netlink_requests_traced_to(&out);
        return;
    }
    netlink_trace_against_strace("the_netlink_trace_is_what_strace_sees", 15, "EEXIST");
}

/// The nf_tables batches of `network::nft` (the bridge's table twice, a container's owned
/// table, a second one refused while it lives, its explicit removal), held against strace
/// as [`the_netlink_trace_is_what_strace_sees`] holds the rtnetlink requests: every byte of
/// each batch and of the kernel's ACKs, the first header as strace decodes it.
#[test]
fn the_nft_trace_is_what_strace_sees() {
    if let Ok(out) = std::env::var("DOCKLING_NETLINK_TRACE_TO") {
        nft_batches_traced_to(&out);
        return;
    }
    // The second table of one name is refused: owned by another socket (EPERM).
    netlink_trace_against_strace("the_nft_trace_is_what_strace_sees", 12, "EPERM");
}

/// Re-run this binary's test `test` under `strace -f -e write=all -e read=all` in a new
/// network namespace; its netlink calls in the trace (at least `min`, one refused with errno `refused`)
/// must be what strace saw.
fn netlink_trace_against_strace(test: &str, min: usize, refused: &str) {
    let dir = tempfile::tempdir().unwrap();
    let strace_out = dir.path().join("strace.txt");
    let trace_out = dir.path().join("trace.json");
    // strace decodes a netlink buffer after asking (sock_diag, in its own network namespace)
    // which protocol the socket speaks: it runs in the namespace the helper's sockets are
    // made in, a new one for this test, made on a thread of its own.
    let mut strace = std::process::Command::new("strace");
    strace
        .args([
            "-f",
            "-qq",
            "-s",
            "200",
            "-e",
            "write=all",
            "-e",
            "read=all",
            "-o",
        ])
        .arg(&strace_out)
        .arg(std::env::current_exe().unwrap())
        .args(["--exact", test, "--test-threads=1"])
        .env("DOCKLING_NETLINK_TRACE_TO", &trace_out)
        .stdin(std::process::Stdio::null());
    let o: common::Out = std::thread::spawn(move || {
        nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET).expect("unshare(CLONE_NEWNET)");
        strace
            .output()
            .expect("strace is installed (scripts/test installs it)")
    })
    .join()
    .unwrap()
    .into();
    o.expect_code(0);
    let traced: Vec<Value> = std::fs::read_to_string(&trace_out)
        .expect("the helper wrote its trace")
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .filter(|e: &Value| e["type"] == "syscall")
        .collect();
    let seen = parse_strace_netlink(&std::fs::read_to_string(&strace_out).unwrap());
    let netlink: Vec<&Value> = traced
        .iter()
        .filter(|e| {
            e["syscall"] == "sendto"
                || e["syscall"] == "recvfrom"
                || ((e["syscall"] == "socket" || e["syscall"] == "bind")
                    && e["args"].as_str().unwrap().contains("AF_NETLINK"))
        })
        .collect();
    assert!(
        netlink.len() >= min,
        "the helper's trace has its netlink calls: {netlink:?}"
    );
    assert!(
        netlink.iter().any(|e| e["syscall"] == "recvfrom"
            && e["args"]
                .as_str()
                .unwrap()
                .contains(&format!("{{error=-{refused},"))),
        "a refused request is in the trace: {netlink:?}"
    );
    let mut cursor = 0;
    for (i, e) in netlink.iter().enumerate() {
        let name = e["syscall"].as_str().unwrap();
        let args = e["args"].as_str().unwrap();
        let result = match e["errno"].as_str() {
            Some(errno) => format!("-1 {errno}"),
            None => e["result"].as_i64().unwrap().to_string(),
        };
        let s = seen[cursor..]
            .iter()
            .find(|s| s.name == name)
            .unwrap_or_else(|| {
                panic!("event #{i}, {name}({args}) = {result}: strace saw no more {name}")
            });
        cursor = seen.iter().position(|x| std::ptr::eq(x, s)).unwrap() + 1;
        let what = format!(
            "event #{i}:\n  traced: {name}({args}) = {result}\n  strace: {}({}) = {}",
            s.name, s.args, s.result
        );
        assert_eq!(s.result, result, "{what}");
        // The arguments outside the buffer: all of them for socket; fd and the tail otherwise.
        let (fd, tail) = outside_buffer(args);
        let (sfd, stail) = outside_buffer(&s.args);
        assert_eq!((fd, tail), (sfd, stail), "{what}");
        if name == "socket" || name == "bind" {
            assert_eq!(normalise(args), normalise(&s.args), "{what}");
            continue;
        }
        // The first message header, as strace decodes it.
        assert_eq!(first_header(args), first_header(&s.args), "{what}");
        // An answer's error code, as strace decodes it.
        let error = |a: &str| {
            a.find("{error=")
                .map(|k| a[k..].split([',', '}']).next().unwrap().to_string())
        };
        assert_eq!(error(args), error(&s.args), "{what}");
        // And the bytes, as strace dumped them.
        assert_eq!(e["data"].as_str().unwrap_or(""), s.data, "{what}");
        assert!(!s.data.is_empty(), "strace dumped the buffer: {what}");
    }
    // Completeness: every netlink call of strace's is in the trace.
    let seen_netlink = seen
        .iter()
        .filter(|s| (s.name != "socket" && s.name != "bind") || s.args.contains("AF_NETLINK"))
        .count();
    assert_eq!(
        seen_netlink,
        netlink.len(),
        "strace saw netlink calls the trace does not show"
    );
}

/// The helper of [`the_netlink_trace_is_what_strace_sees`]: a bridge, an address, a veth
/// into a second namespace, one refused request, deletes; its JSON trace written to `out`.
fn netlink_requests_traced_to(out: &str) {
    use dockling::network::netlink::Netlink;
    use nix::sched::{setns, unshare, CloneFlags};
    use std::os::fd::{AsFd, OwnedFd};
    let netns = || -> OwnedFd {
        std::fs::File::open("/proc/thread-self/ns/net")
            .unwrap()
            .into()
    };
    // The namespace strace runs in (see above), and a new one for the veth's peer.
    let outer = netns();
    unshare(CloneFlags::CLONE_NEWNET).expect("unshare(CLONE_NEWNET)");
    let inner = netns();
    setns(outer.as_fd(), CloneFlags::CLONE_NEWNET).unwrap();
    let sys = dockling::sys::Sys::new(
        Box::new(dockling::sys::linux::Linux),
        dockling::trace::Tracer::capture(dockling::trace::Format::Json),
    );
    let nl = Netlink::open(&sys).unwrap();
    nl.create_bridge("dltrace0").unwrap();
    nl.create_bridge("dltrace0").unwrap_err();
    let br = nl.link_index("dltrace0").unwrap();
    nl.add_address("dltrace0", br, std::net::Ipv4Addr::new(10, 201, 0, 1), 24)
        .unwrap();
    nl.link_up("dltrace0").unwrap();
    nl.create_veth("vethdltrace", "eth0", None, inner.as_fd(), "inner")
        .unwrap();
    nl.set_master("vethdltrace", "dltrace0", br).unwrap();
    nl.delete_link("vethdltrace").unwrap();
    nl.delete_link("dltrace0").unwrap();
    nl.close().unwrap();
    std::fs::write(out, sys.tracer.captured()).unwrap();
}

/// The helper of [`the_nft_trace_is_what_strace_sees`]; its JSON trace written to `out`.
fn nft_batches_traced_to(out: &str) {
    use dockling::network::ipam::Subnet;
    use dockling::network::netlink::Netlink;
    use dockling::network::nft::{self, PortRule, L4};
    let sys = dockling::sys::Sys::new(
        Box::new(dockling::sys::linux::Linux),
        dockling::trace::Tracer::capture(dockling::trace::Format::Json),
    );
    let nl = Netlink::open(&sys).unwrap();
    nl.create_bridge("dltrace1").unwrap();
    nl.close().unwrap();
    let subnet: Subnet = "10.202.0.0/24".parse().unwrap();
    nft::ensure_bridge_table(&sys, "dltrace1", subnet, false).unwrap();
    nft::ensure_bridge_table(&sys, "dltrace1", subnet, true).unwrap();
    let rule = PortRule {
        proto: L4::Tcp,
        host_ip: None,
        host_port: 8000,
        container_ip: std::net::Ipv4Addr::new(10, 202, 0, 2),
        container_port: 80,
    };
    let id = "0123456789abcdef";
    let owned = nft::publish(&sys, id, &[rule]).unwrap();
    nft::publish(&sys, id, &[rule]).unwrap_err();
    owned.remove(&sys).unwrap();
    std::fs::write(out, sys.tracer.captured()).unwrap();
}

/// A netlink call of strace's output, with the bytes it dumped (`-e write=all -e read=all`).
struct SeenNl {
    name: String,
    args: String,
    result: String,
    /// The dumped buffer, as lower-case hex.
    data: String,
}

/// The `socket`, `sendto` and `recvfrom` lines of `strace -f -o` output (no call here is
/// interrupted: the helper has one thread making them), each with its hex dump lines
/// (` | 00000  38 00 00 00 …  8... |`).
fn parse_strace_netlink(text: &str) -> Vec<SeenNl> {
    let call_line = regex::Regex::new(r"^(socket|bind|sendto|recvfrom)\((.*)\)\s+= (.*)$").unwrap();
    // The hex columns are 16 bytes in two groups of 8 (49 characters), then the text column.
    let dump_line = regex::Regex::new(r"^\| [0-9a-f]{5}  (.{1,49})").unwrap();
    let mut out: Vec<SeenNl> = Vec::new();
    // Dump lines belong to the netlink call just above them, not to another call's (the
    // helper writes its trace file afterwards, and `write=all` dumps that too).
    let mut dumping = false;
    // A call another thread's line cut in two (`<unfinished ...>`, then `<... name resumed>`),
    // joined as `parse_strace` joins them.
    let mut pending: std::collections::HashMap<String, String> = Default::default();
    for line in text.lines() {
        // With -f each line starts with the pid; a dump line may too.
        let pid: String = line.chars().take_while(|c| c.is_ascii_digit()).collect();
        let rest = line[pid.len()..].trim_start();
        let joined;
        let rest = if let Some(r) = rest.strip_prefix("<... ") {
            match (r.split_once(" resumed>"), pending.remove(&pid)) {
                (Some((_, tail)), Some(head)) => {
                    joined = format!("{head}{tail}");
                    joined.as_str()
                }
                _ => rest,
            }
        } else if let Some(head) = rest.strip_suffix(" <unfinished ...>") {
            pending.insert(pid, head.to_string());
            dumping = false;
            continue;
        } else {
            rest
        };
        if let Some(c) = dump_line.captures(rest) {
            if let Some(last) = out.last_mut().filter(|_| dumping) {
                last.data.extend(c[1].split_whitespace().map(String::from));
                assert!(
                    last.data.len() % 2 == 0,
                    "a dump line is two hex digits per byte: {line}"
                );
            }
            continue;
        }
        dumping = false;
        if let Some(c) = call_line.captures(rest) {
            dumping = true;
            let mut parts = c[3].split_whitespace();
            let value = parts.next().unwrap_or("").to_string();
            let result = match parts.next().filter(|e| e.starts_with('E')) {
                Some(errno) => format!("{value} {errno}"),
                None => value,
            };
            out.push(SeenNl {
                name: c[1].to_string(),
                args: c[2].to_string(),
                result,
                data: String::new(),
            });
        }
    }
    out
}

/// The arguments outside a netlink buffer: (the descriptor, what follows the buffer without
/// comments); for `socket`, all of them.
fn outside_buffer(args: &str) -> (String, String) {
    let args = normalise(args);
    if args.starts_with("AF_") {
        return (args, String::new());
    }
    let (fd, rest) = args.split_once(", ").unwrap();
    // The buffer is the first argument after the descriptor: `[…]`, `"…"`, or `…`; the tail
    // is the last arguments (`len, flags, addr, addrlen`).
    let tail: Vec<&str> = rest.rsplitn(5, ", ").take(4).collect();
    (fd.to_string(), tail.join(", "))
}

/// The first `{nlmsg_len=…, …, nlmsg_seq=…}` of a rendering, without `nlmsg_pid` (the
/// kernel's answers carry the socket's port id, which the trace shows as strace does, but
/// which is compared through the bytes).
fn first_header(args: &str) -> Option<String> {
    let start = args.find("{nlmsg_len=")?;
    let end = start + args[start..].find('}')?;
    let h = &args[start..=end];
    Some(h[..h.find(", nlmsg_pid").unwrap_or(h.len())].to_string())
}

/// `--init`'s process 1 never execs, so it closes the engine's descriptors itself: that
/// `close_range` (flags 0, unlike the child's CLOSE_RANGE_CLOEXEC) is in the trace, explained,
/// with the arguments and result strace sees, and strace sees no such call the trace leaves out.
#[test]
fn the_trace_shows_the_inits_close_range() {
    let lab = Lab::with_busybox();
    let (traced, seen) = traced_and_seen(&lab, &["--init", "busybox", "true"], 0);
    let ours: Vec<&Value> = traced
        .iter()
        .filter(|e| e["syscall"] == "close_range" && e["args"].as_str().unwrap().ends_with(", 0"))
        .collect();
    assert!(!ours.is_empty(), "no close_range of the init in the trace");
    let theirs: Vec<&Seen> = seen
        .iter()
        .filter(|s| s.name == "close_range" && s.args.ends_with(", 0"))
        .collect();
    assert_eq!(
        ours.len(),
        theirs.len(),
        "traced {ours:?}, strace saw {:?}",
        theirs.iter().map(|s| &s.args).collect::<Vec<_>>()
    );
    for (e, s) in ours.iter().zip(&theirs) {
        assert_eq!(normalise(e["args"].as_str().unwrap()), s.args);
        assert_eq!(e["result"].as_i64().unwrap().to_string(), s.result);
        let explain = e["explain"].as_str().unwrap();
        assert!(explain.contains("--init"), "{explain}");
    }
}

/// The published ports' calls of `network::ports::bind_all` (socket, SO_REUSEADDR, bind,
/// listen, getsockname, and a bind refused with EADDRINUSE), made by this test binary itself
/// re-run under `strace -f` in a network namespace of its own: each is what strace saw, in
/// order, arguments and result, and strace saw none the trace leaves out.
#[test]
fn the_port_binding_trace_is_what_strace_sees() {
    if let Ok(out) = std::env::var("DOCKLING_PORTS_TRACE_TO") {
        port_bindings_traced_to(&out);
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let strace_out = dir.path().join("strace.txt");
    let trace_out = dir.path().join("trace.json");
    let mut strace = std::process::Command::new("strace");
    strace
        .args(["-f", "-qq", "-s", "200", "-o"])
        .arg(&strace_out)
        .arg(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "the_port_binding_trace_is_what_strace_sees",
            "--test-threads=1",
        ])
        .env("DOCKLING_PORTS_TRACE_TO", &trace_out)
        .stdin(std::process::Stdio::null());
    let o: common::Out = std::thread::spawn(move || {
        nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET).expect("unshare(CLONE_NEWNET)");
        strace
            .output()
            .expect("strace is installed (scripts/test installs it)")
    })
    .join()
    .unwrap()
    .into();
    o.expect_code(0);
    let ours = |name: &str, args: &str| match name {
        "socket" | "bind" => args.starts_with("AF_INET,") || args.contains("sa_family=AF_INET,"),
        "setsockopt" | "listen" | "getsockname" => true,
        _ => false,
    };
    let traced: Vec<Value> = std::fs::read_to_string(&trace_out)
        .expect("the helper wrote its trace")
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .filter(|e: &Value| {
            e["type"] == "syscall"
                && ours(e["syscall"].as_str().unwrap(), e["args"].as_str().unwrap())
        })
        .collect();
    let seen: Vec<Seen> = parse_strace(&std::fs::read_to_string(&strace_out).unwrap())
        .into_iter()
        .filter(|s| ours(&s.name, &s.args))
        .collect();
    assert!(
        traced.len() >= 12,
        "the helper's trace has its calls: {traced:?}"
    );
    assert!(
        traced.iter().any(|e| e["errno"] == "EADDRINUSE"),
        "the refused bind is in the trace: {traced:?}"
    );
    for (i, e) in traced.iter().enumerate() {
        let name = e["syscall"].as_str().unwrap();
        let args = normalise(e["args"].as_str().unwrap());
        let result = match e["errno"].as_str() {
            Some(errno) => format!("-1 {errno}"),
            None => e["result"].as_i64().unwrap().to_string(),
        };
        let s = seen
            .get(i)
            .unwrap_or_else(|| panic!("event #{i}, {name}({args}) = {result}: strace saw no more"));
        assert_eq!(
            (name, args.as_str(), result.as_str()),
            (s.name.as_str(), s.args.as_str(), s.result.as_str()),
            "event #{i} is not what strace saw"
        );
        assert!(
            !e["explain"].as_str().unwrap_or("").is_empty(),
            "event #{i} is explained"
        );
    }
    assert_eq!(
        seen.len(),
        traced.len(),
        "strace saw calls the trace does not show: {:?}",
        &seen[traced.len()..]
    );
}

/// The helper of [`the_port_binding_trace_is_what_strace_sees`]: a fixed TCP port, a TCP
/// port the kernel chooses, a UDP one, then the fixed port again (EADDRINUSE); its JSON
/// trace written to `out`.
fn port_bindings_traced_to(out: &str) {
    use dockling::network::ports::{bind_all, parse_all};
    let sys = dockling::sys::Sys::new(
        Box::new(dockling::sys::linux::Linux),
        dockling::trace::Tracer::capture(dockling::trace::Format::Json),
    );
    let held = bind_all(&sys, &parse_all(&["18000:80", "80", "53/udp"]).unwrap()).unwrap();
    let err = bind_all(&sys, &parse_all(&["18000:80"]).unwrap()).unwrap_err();
    assert!(err.to_string().contains("already in use"), "{err}");
    drop(held);
    std::fs::write(out, sys.tracer.captured()).unwrap();
}

/// A busybox bundle of `dockling-runc spec`'s template under `dir` running `args`, with an
/// rlimit, a terminal or not, and the cgroup parent `parent`; returns the bundle and the
/// `dockling-runc` link.
fn oci_bundle(
    dir: &std::path::Path,
    args: &[&str],
    terminal: bool,
    parent: &str,
) -> (std::path::PathBuf, std::path::PathBuf) {
    let bundle = dir.join("bundle");
    let rootfs = bundle.join("rootfs");
    std::fs::create_dir_all(rootfs.join("bin")).unwrap();
    std::fs::copy("/bin/busybox", rootfs.join("bin/busybox"))
        .expect("/bin/busybox (busybox-static, which scripts/test installs)");
    std::os::unix::fs::symlink("busybox", rootfs.join("bin/sleep")).unwrap();
    let runtime = dir.join("dockling-runc");
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_dockling"), &runtime).unwrap();
    let mut cfg = common::runtime_spec(&bundle);
    cfg["process"]["terminal"] = terminal.into();
    if terminal {
        cfg["process"]["consoleSize"] = serde_json::json!({"height": 24, "width": 80});
    }
    cfg["process"]["args"] = serde_json::json!(args);
    cfg["process"]["rlimits"] =
        serde_json::json!([{"type": "RLIMIT_NOFILE", "soft": 1000, "hard": 2048}]);
    cfg["linux"]["cgroupsPath"] = format!("/{parent}/c").into();
    common::write_config(&bundle, &cfg);
    (bundle, runtime)
}

/// The syscall events of a JSON-lines trace file from its line `from` on.
fn trace_syscalls(path: &std::path::Path, from: usize) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .skip(from)
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|e| e["type"] == "syscall")
        .collect()
}

/// An OCI bundle (busybox `sleep 1`) run by `dockling-runc run` under `strace -f`, with or
/// without a terminal; its trace (`DOCKLING_TRACE`) held against strace's calls.
fn oci_run_under_strace(terminal: bool) -> Vec<Value> {
    let dir = tempfile::tempdir().unwrap();
    // A group of its own per test: the two run side by side, and a populated group is refused.
    let parent = format!("dockling-trace-rt-{}-{terminal}", std::process::id());
    // Long enough for start to see it running its program (and write its execve down).
    let (bundle, runtime) = oci_bundle(dir.path(), &["sleep", "1"], terminal, &parent);
    let trace = dir.path().join("t.jsonl");
    let strace_out = dir.path().join("strace.txt");
    // With a terminal, the test plays conmon: it takes the master from the console socket.
    let sock = dir.path().join("console.sock");
    let listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
    let taker = std::thread::spawn(move || {
        if !terminal {
            return;
        }
        let (conn, _) = listener.accept().unwrap();
        let mut buf = [0u8; 64];
        let mut space = nix::cmsg_space!([std::os::fd::RawFd; 1]);
        let mut iov = [std::io::IoSliceMut::new(&mut buf)];
        let _ = nix::sys::socket::recvmsg::<()>(
            std::os::fd::AsRawFd::as_raw_fd(&conn),
            &mut iov,
            Some(&mut space),
            nix::sys::socket::MsgFlags::empty(),
        );
    });
    let mut console = vec![];
    if terminal {
        console = vec!["--console-socket".to_string(), sock.display().to_string()];
    }
    let status = std::process::Command::new("strace")
        .args(["-f", "-qq", "-s", "200", "-o", strace_out.to_str().unwrap()])
        .arg(&runtime)
        .arg("--root")
        .arg(dir.path().join("state"))
        .arg("run")
        .args(&console)
        .arg("t1")
        .current_dir(&bundle)
        .env("DOCKLING_TRACE", &trace)
        .env_remove("DOCKLING_NO_REEXEC")
        .stdin(std::process::Stdio::null())
        .status()
        .expect("strace is installed (scripts/test installs it)");
    common::remove_cgroup_parent(&parent);
    assert!(status.success());
    taker.join().unwrap();
    let traced = trace_syscalls(&trace, 0);
    let seen = parse_strace(&std::fs::read_to_string(&strace_out).unwrap());
    assert_trace_is_what_strace_sees(&traced, &seen);
    traced
}

/// `dockling-runc run` of an OCI bundle under `strace -f`, its trace asked for through
/// `DOCKLING_TRACE` (podman passes no flags of dockling's): create's engine, its container
/// process up to `execve`, and start's read of the FIFO, each call as strace saw it.
#[test]
fn the_trace_of_the_oci_runtime_is_what_strace_sees() {
    let traced = oci_run_under_strace(false);
    for want in ["mknodat", "pivot_root", "prlimit64", "execve"] {
        assert!(
            traced.iter().any(|e| e["syscall"] == want),
            "no {want} in the trace"
        );
    }
}

/// The same with a terminal: the master handed to the console socket, as strace saw it.
#[test]
fn the_trace_of_the_oci_runtime_with_a_terminal_is_what_strace_sees() {
    let traced = oci_run_under_strace(true);
    for want in ["connect", "sendmsg", "ioctl", "execve"] {
        assert!(
            traced.iter().any(|e| e["syscall"] == want),
            "no {want} in the trace"
        );
    }
    // process.consoleSize, set on the slave before the program starts.
    assert!(
        traced.iter().any(|e| e["args"]
            .as_str()
            .is_some_and(|a| a.contains("TIOCSWINSZ, {ws_row=24, ws_col=80"))),
        "no TIOCSWINSZ in the trace"
    );
}

/// `dockling-runc exec` into a running container under `strace -f`: the namespaces opened and
/// joined, the process's rlimit, its descriptors kept (`--preserve-fds`) and its `execve`,
/// written into the trace file named at create, each call as strace saw it.
#[test]
fn the_trace_of_an_oci_exec_is_what_strace_sees() {
    let dir = tempfile::tempdir().unwrap();
    let parent = format!("dockling-trace-rtx-{}", std::process::id());
    let (bundle, runtime) = oci_bundle(dir.path(), &["sleep", "1000"], false, &parent);
    let trace = dir.path().join("t.jsonl");
    let rt = |args: &[&str]| {
        let mut c = std::process::Command::new(&runtime);
        c.arg("--root")
            .arg(dir.path().join("state"))
            .args(args)
            .current_dir(&bundle)
            .env_remove("DOCKLING_NO_REEXEC")
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null());
        c
    };
    // Whatever fails from here, the container and its cgroup parent go.
    struct Deleted<F: Fn()>(F);
    impl<F: Fn()> Drop for Deleted<F> {
        fn drop(&mut self) {
            (self.0)()
        }
    }
    let _deleted = Deleted(|| {
        let _ = rt(&["delete", "-f", "x1"]).status();
        common::remove_cgroup_parent(&parent);
    });
    let status = rt(&["run", "-d", "x1"])
        .env("DOCKLING_TRACE", &trace)
        .status()
        .unwrap();
    assert!(status.success());
    let before = std::fs::read_to_string(&trace).unwrap().lines().count();
    let strace_out = dir.path().join("strace.txt");
    let status = std::process::Command::new("strace")
        .args(["-f", "-qq", "-s", "200", "-o", strace_out.to_str().unwrap()])
        .arg(&runtime)
        .arg("--root")
        .arg(dir.path().join("state"))
        .args(["exec", "--preserve-fds", "1", "x1", "sleep", "0"])
        .current_dir(&bundle)
        .env_remove("DOCKLING_NO_REEXEC")
        .stdin(std::process::Stdio::null())
        .status()
        .expect("strace is installed (scripts/test installs it)");
    // Read before delete appends its own calls.
    let traced = trace_syscalls(&trace, before);
    let deleted = rt(&["delete", "-f", "x1"]).status().unwrap();
    assert!(status.success());
    assert!(deleted.success());
    let seen = parse_strace(&std::fs::read_to_string(&strace_out).unwrap());
    assert_trace_is_what_strace_sees(&traced, &seen);
    for want in ["setns", "prlimit64", "close_range", "execve"] {
        assert!(
            traced.iter().any(|e| e["syscall"] == want),
            "no {want} in the trace"
        );
    }
}
