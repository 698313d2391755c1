//! `-it`: a real terminal. script(1) gives dockling a pseudo-terminal of its own, as a user's
//! terminal would be.

mod common;
use common::Lab;
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Run `dockling <args>` under script(1), feeding `input` after a pause; (output, exit code, time).
fn in_a_terminal(lab: &Lab, setup: &str, args: &str, input: &[u8]) -> (String, i32, Duration) {
    let cmd = format!(
        "{setup}DOCKLING_ROOT={} DOCKLING_CONFIG={} {} {args}",
        lab.root().display(),
        lab.dir.path().join("config.yaml").display(),
        env!("CARGO_BIN_EXE_dockling")
    );
    let start = Instant::now();
    let mut child = Command::new("script")
        .args(["-qec", &cmd, "/dev/null"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("script(1) from util-linux (scripts/test installs bsdutils)");
    let mut stdin = child.stdin.take().unwrap();
    std::thread::sleep(Duration::from_millis(1000));
    stdin.write_all(input).unwrap();
    // Keep stdin open until the container ends, as a terminal would; with --step, keep
    // pressing Enter for the pauses that come after the container exits.
    let deadline = start + Duration::from_secs(15);
    let enter = args.contains("--step");
    while child.try_wait().unwrap().is_none() {
        assert!(
            Instant::now() < deadline,
            "the container did not end within 15 s"
        );
        std::thread::sleep(Duration::from_millis(200));
        if enter {
            let _ = stdin.write_all(b"\n");
        }
    }
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    (
        String::from_utf8_lossy(&out.stdout).replace('\r', ""),
        out.status.code().unwrap_or(-1),
        start.elapsed(),
    )
}

#[test]
fn a_terminal_with_its_size_and_job_control() {
    let lab = Lab::with_busybox();
    let (out, code, _) = in_a_terminal(
        &lab,
        "stty rows 33 cols 101; ",
        "run --rm -it busybox sh",
        b"tty; stty size; exit 4\n",
    );
    assert_eq!(code, 4, "{out}");
    assert!(out.contains("/dev/pts/0"), "{out}");
    assert!(out.contains("33 101"), "{out}");
}

#[test]
fn ctrl_c_reaches_the_container() {
    let lab = Lab::with_busybox();
    let (out, code, took) = in_a_terminal(
        &lab,
        "",
        "run --rm -it busybox sh -c 'sleep 10; echo not interrupted'",
        b"\x03",
    );
    assert!(
        took < Duration::from_secs(8),
        "Ctrl-C did not stop the container ({took:?}): {out}"
    );
    assert_eq!(code, 130, "{out}");
    assert!(!out.contains("not interrupted"), "{out}");
}

#[test]
fn step_with_a_terminal_pauses_on_the_users_terminal_not_the_containers() {
    // Regression: pauses after the container's terminal was attached read from the
    // container's own pty, which nobody relayed yet, and hung.
    let lab = Lab::with_busybox();
    let mut input = b"\n".repeat(30);
    input.extend_from_slice(b"echo inside; exit 3\n\n\n");
    let (out, code, _) = in_a_terminal(&lab, "", "run --rm --step -it busybox sh", &input);
    assert!(out.contains("[process.exec]"), "{out}");
    assert!(out.contains("inside"), "{out}");
    assert_eq!(code, 3, "{out}");
}

#[test]
fn trace_with_a_terminal_does_not_hang_and_leaves_nothing() {
    // Regression: with -t the child's stderr became the container's pty before anyone
    // relayed it, the child's trace events filled it, and the run hung (leaving a Created
    // container). The events now go to the engine's own stderr.
    let lab = Lab::with_busybox();
    let cmd = format!(
        "NO_COLOR=1 DOCKLING_ROOT={} DOCKLING_CONFIG={} {} run --rm -t --trace busybox true",
        lab.root().display(),
        lab.dir.path().join("config.yaml").display(),
        env!("CARGO_BIN_EXE_dockling")
    );
    let mut child = Command::new("script")
        .args(["-qec", &cmd, "/dev/null"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("script(1) from util-linux (scripts/test installs bsdutils)");
    // stdin stays open, as a terminal's would; the output is read on its own thread so a
    // full pipe cannot stall the run.
    let stdin = child.stdin.take().unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut out = Vec::new();
        let _ = std::io::Read::read_to_end(&mut stdout, &mut out);
        out
    });
    // A failure guard, not a timing: the run ends in well under a second.
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            kill_tree(child.id() as i32);
            let _ = child.wait();
            panic!("run -t --trace did not end within 60 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    drop(stdin);
    let out = String::from_utf8_lossy(&reader.join().unwrap()).replace('\r', "");
    assert_eq!(status.code(), Some(0), "{out}");
    assert!(out.contains("── process · exec"), "no trace lines: {out}");
    assert!(out.contains("[container] execve(\"/bin/true\""), "{out}");
    assert!(
        out.contains("dup2(") && out.contains("pseudo-terminal on stdin"),
        "{out}"
    );
    assert!(
        lab.containers_left().is_empty(),
        "container left: {:?}",
        lab.containers_left()
    );
}

/// SIGKILL `pid` and every process below it (script(1), the dockling it runs, the container),
/// so a test that failed leaves nothing running.
fn kill_tree(pid: i32) {
    let mut todo = vec![pid];
    let mut all = Vec::new();
    while let Some(p) = todo.pop() {
        all.push(p);
        for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
            let Ok(stat) = std::fs::read_to_string(e.path().join("stat")) else {
                continue;
            };
            // pid (comm) state ppid ...: the comm may hold spaces, so split after its ")".
            let ppid = stat
                .rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().nth(1))
                .and_then(|p| p.parse::<i32>().ok());
            if ppid == Some(p) {
                if let Ok(child) = e.file_name().to_string_lossy().parse() {
                    todo.push(child);
                }
            }
        }
    }
    for p in all {
        // SAFETY: kill(2) of a process this test started (or one started under it).
        unsafe { libc::kill(p, libc::SIGKILL) };
    }
}
