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
