//! `-it`: a real terminal. script(1) gives dockling a pseudo-terminal of its own, as a user's
//! terminal would be.

mod common;
use common::Lab;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::time::{Duration, Instant};

/// The terminal script(1) gave the command: what its child's stdin is (`/dev/pts/N`).
fn terminal_of(script: u32) -> Option<std::path::PathBuf> {
    let children =
        std::fs::read_to_string(format!("/proc/{script}/task/{script}/children")).ok()?;
    let child = children.split_whitespace().next()?;
    let tty = std::fs::read_link(format!("/proc/{child}/fd/0")).ok()?;
    tty.starts_with("/dev/pts/").then_some(tty)
}

/// Wait until dockling has put its terminal into raw mode, which it does when it starts
/// relaying it to the container: typed before that, a line would be the user's terminal's
/// (Ctrl-C a SIGINT to dockling itself, not a byte for the container).
fn wait_for_raw_mode(script: u32) {
    use nix::sys::termios::{tcgetattr, LocalFlags};
    common::wait_until(
        Duration::from_secs(20),
        "dockling to put its terminal into raw mode (relaying it to the container)",
        || {
            let tty = terminal_of(script)?;
            let f = std::fs::File::options()
                .read(true)
                .custom_flags(libc::O_NOCTTY)
                .open(tty)
                .ok()?;
            let t = tcgetattr(&f).ok()?;
            (!t.local_flags.contains(LocalFlags::ICANON)).then_some(())
        },
    );
}

/// Run `dockling <args>` under script(1), feeding `input` once dockling relays the terminal
/// (with `--step`, at once: the pauses read their Enters from the cooked terminal first);
/// (output, exit code, time).
fn in_a_terminal(lab: &Lab, setup: &str, args: &str, input: &[u8]) -> (String, i32, Duration) {
    let start = Instant::now();
    let mut term = lab.in_terminal(setup, "", args);
    if !args.contains("--step") {
        wait_for_raw_mode(term.pid());
    }
    term.stdin.write_all(input).unwrap();
    // Keep stdin open until the container ends, as a terminal would; with --step, keep
    // pressing Enter (every 10th poll, 200 ms) for the pauses after the container exits.
    let enter = args.contains("--step");
    let mut polls = 0;
    let (out, code) = term.wait(Duration::from_secs(15), |stdin| {
        polls += 1;
        if enter && polls % 10 == 0 {
            let _ = stdin.write_all(b"\n");
        }
    });
    (out, code, start.elapsed())
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
    // stdin stays open, as a terminal's would. A failure guard, not a timing: the run ends in
    // well under a second.
    let (out, code) = lab
        .in_terminal("", "", "run --rm -t --trace busybox true")
        .wait(Duration::from_secs(60), |_| {});
    assert_eq!(code, 0, "{out}");
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

#[test]
fn a_container_that_writes_while_its_input_is_flooded_still_ends() {
    // The container never reads its terminal and writes 32 MB to it, while the user's side
    // sends 256 KiB. A relay that blocks writing that input into the container's full
    // terminal stops reading what the container writes: the container blocks too, and both
    // wait for ever. The wait below is a failure guard, not a timing.
    let lab = Lab::with_busybox();
    let term = lab.in_terminal(
        "",
        "",
        "run --rm -it busybox sh -c 'stty raw -echo; yes 0123456789abcdef | head -c 32000000; echo; echo wrote-all; exit 3'",
    );
    let (out, code, sent) = term.flooded();
    let tail: String = out
        .chars()
        .skip(out.chars().count().saturating_sub(300))
        .collect();
    assert_eq!(code, 3, "…{tail}");
    assert!(out.contains("wrote-all"), "…{tail}");
    assert!(sent >= 64 << 10, "only {sent} bytes of input were sent");
}

/// Without `-t` the container writes to the user's terminal, but in a session of its own:
/// the terminal is not its controlling one (field 7 of /proc/self/stat, tty_nr, is 0), so it
/// cannot push keystrokes into the user's shell with TIOCSTI (CVE-2017-5226). Likewise for
/// `exec`.
#[test]
fn without_t_the_users_terminal_is_not_the_containers_controlling_one() {
    let lab = Lab::with_busybox();
    let stat = "cut -d' ' -f7 /proc/self/stat";
    let (out, code) = lab
        .in_terminal("", "", &format!("run --rm busybox sh -c \"{stat}\""))
        .wait(std::time::Duration::from_secs(30), |_| {});
    assert_eq!(code, 0, "{out}");
    assert_eq!(out.trim(), "0", "tty_nr of the container: {out}");
    lab.cmd(&["run", "-d", "--name", "bg", "busybox", "sleep", "1000"])
        .expect_code(0);
    let (out, code) = lab
        .in_terminal("", "", &format!("exec bg sh -c \"{stat}\""))
        .wait(std::time::Duration::from_secs(30), |_| {});
    assert_eq!(code, 0, "{out}");
    assert_eq!(out.trim(), "0", "tty_nr of the exec'd process: {out}");
    lab.cmd(&["rm", "-f", "bg"]).expect_code(0);
}
