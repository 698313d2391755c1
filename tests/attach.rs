//! The monitor's attach socket (`attach`, `run -dit`, detach keys), signals forwarded as
//! Docker's `--sig-proxy`, `start -ai`, the log of a foreground run, and the `Restarting`
//! state of a restart policy's back-off.

mod common;
use std::io::Write;
use std::os::unix::process::ExitStatusExt;
use std::process::Stdio;
use std::time::Duration;

use common::{has_socket, wait_exit, wait_until, Lab};

fn detach(lab: &Lab, args: &[&str]) {
    let mut all = vec!["run", "-d"];
    all.extend_from_slice(args);
    lab.cmd(&all).expect_code(0);
}

/// The pid of the `dockling` process running under script(1) (its child's child).
fn dockling_under(script: u32) -> Option<u32> {
    let children = |p: u32| -> Vec<u32> {
        std::fs::read_to_string(format!("/proc/{p}/task/{p}/children"))
            .unwrap_or_default()
            .split_whitespace()
            .filter_map(|c| c.parse().ok())
            .collect()
    };
    let mut todo = vec![script];
    while let Some(p) = todo.pop() {
        let exe = std::fs::read_link(format!("/proc/{p}/exe")).unwrap_or_default();
        if p != script && exe.to_string_lossy().contains("dockling") {
            return Some(p);
        }
        todo.extend(children(p));
    }
    None
}

#[test]
fn attach_to_a_dit_container_and_detach_with_ctrl_p_ctrl_q_leaves_it_running() {
    let lab = Lab::with_busybox();
    // `-dit` from no terminal at all: the terminal is the monitor's (Docker allows it).
    detach(&lab, &["-it", "--name", "shell", "busybox", "sh"]);
    assert_eq!(lab.state("shell"), "running 0");
    for (round, (flags, keys)) in [
        ("", &b"\x10\x11"[..]),
        ("--detach-keys=ctrl-a,x ", b"\x01x"),
    ]
    .into_iter()
    .enumerate()
    {
        let mut term = lab.in_terminal(
            "stty rows 21 cols 77; ",
            "",
            &format!("attach {flags}shell"),
        );
        let pid = term.pid();
        wait_until(Duration::from_secs(20), "attach to connect", || {
            dockling_under(pid).filter(|p| has_socket(*p)).map(|_| ())
        });
        term.stdin
            .write_all(b"stty size; echo marker-$((6*7))\n")
            .unwrap();
        // The container's answer is in its log once its terminal wrote it.
        wait_until(Duration::from_secs(20), "the answer in the log", || {
            let o = lab.cmd(&["logs", "shell"]);
            (o.stdout.matches("marker-42").count() > round).then_some(())
        });
        term.stdin.write_all(keys).unwrap();
        let (out, code) = term.wait(Duration::from_secs(20), |_| {});
        assert_eq!(code, 0, "detaching is no error: {out}");
        assert!(
            out.contains("21 77"),
            "the container's terminal has the attached size: {out}"
        );
        assert!(!out.contains("read escape sequence"), "{out}");
        // Still running, and its terminal kept what was typed (in its log too).
        assert_eq!(lab.state("shell"), "running 0");
    }
    let logs = lab.cmd(&["logs", "shell"]);
    logs.expect_code(0);
    assert!(logs.stdout.contains("marker-42"), "{}", logs.stdout);
    // Typed `exit` ends it, and attach ends with its code.
    let term = lab.in_terminal("", "", "attach shell");
    let mut typed = false;
    let pid = term.pid();
    let (out, code) = term.wait(Duration::from_secs(20), |stdin| {
        if !typed && dockling_under(pid).is_some_and(has_socket) {
            typed = true;
            stdin.write_all(b"exit 7\n").unwrap();
        }
    });
    assert_eq!(code, 7, "{out}");
    assert_eq!(lab.state("shell"), "exited 7");
    let o = lab.cmd(&["attach", "shell"]);
    o.expect_code(125);
    assert!(o.stderr.contains("start it first"), "{}", o.stderr);
    let o = lab.cmd(&["attach", "--detach-keys=ctrl-1", "shell"]);
    o.expect_code(125);
    assert!(o.stderr.contains("invalid detach keys"), "{}", o.stderr);
    lab.cmd(&["rm", "shell"]).expect_code(0);
}

#[test]
fn attach_to_a_detached_container_streams_its_output_live_and_forwards_signals() {
    let lab = Lab::with_busybox();
    detach(
        &lab,
        &[
            "--name",
            "talker",
            "busybox",
            "sh",
            "-c",
            "trap 'echo got-usr2; exit 5' USR2; while [ ! -e /go ]; do sleep 0.05; done; echo live-out; echo live-err >&2; while true; do sleep 0.05; done",
        ],
    );
    let mut attach = lab.command(&["attach", "talker"]);
    let mut child = attach
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    wait_until(Duration::from_secs(20), "attach to connect", || {
        has_socket(pid).then_some(())
    });
    lab.cmd(&["exec", "talker", "touch", "/go"]).expect_code(0);
    wait_until(Duration::from_secs(20), "the output in the log", || {
        let o = lab.cmd(&["logs", "talker"]);
        o.stderr.contains("live-err").then_some(())
    });
    // The signal to `attach` reaches the container (--sig-proxy, on by default).
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::Signal::SIGUSR2,
    )
    .unwrap();
    let status = wait_exit(&mut child, Duration::from_secs(20), "attach to end");
    let mut out = String::new();
    let mut err = String::new();
    std::io::Read::read_to_string(child.stdout.as_mut().unwrap(), &mut out).unwrap();
    std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err).unwrap();
    assert_eq!(status.code(), Some(5), "{out} {err}");
    assert_eq!(out, "live-out\ngot-usr2\n");
    assert_eq!(err, "live-err\n");
    lab.cmd(&["rm", "talker"]).expect_code(0);
}

#[test]
fn foreground_run_forwards_signals_as_docker_and_not_with_sig_proxy_false() {
    let lab = Lab::with_busybox();
    let script = "trap 'echo got-$S; exit 5' $S; echo ready; while true; do sleep 0.05; done";
    // SIGALRM was not forwarded before (it ended dockling); SIGUSR1 was, and must not be
    // with --sig-proxy=false.
    for (proxy, sig) in [
        ("--sig-proxy", nix::sys::signal::Signal::SIGALRM),
        ("--sig-proxy=true", nix::sys::signal::Signal::SIGTSTP),
        ("--sig-proxy=false", nix::sys::signal::Signal::SIGUSR1),
    ] {
        let name = sig.as_str().trim_start_matches("SIG");
        let mut child = lab
            .command(&[
                "run",
                "--rm",
                proxy,
                "-e",
                &format!("S={name}"),
                "busybox",
                "sh",
                "-c",
                script,
            ])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdout = child.stdout.take().unwrap();
        let mut seen = Vec::new();
        let mut buf = [0u8; 256];
        while !String::from_utf8_lossy(&seen).contains("ready") {
            let n = std::io::Read::read(&mut stdout, &mut buf).unwrap();
            assert!(n > 0, "the container ended early: {seen:?}");
            seen.extend_from_slice(&buf[..n]);
        }
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), sig).unwrap();
        let status = wait_exit(&mut child, Duration::from_secs(20), "run to end");
        let mut rest = String::new();
        let _ = std::io::Read::read_to_string(&mut stdout, &mut rest);
        if proxy == "--sig-proxy=false" {
            // Not forwarded: dockling itself dies of it (the container follows it).
            assert_eq!(status.signal(), Some(libc::SIGUSR1), "{rest}");
            assert!(!rest.contains("got-"), "{rest}");
        } else {
            assert_eq!(status.code(), Some(5), "{proxy} {name}: {rest}");
            assert_eq!(rest, format!("got-{name}\n"));
        }
    }
    let o = lab.cmd(&["run", "--rm", "--sig-proxy=maybe", "busybox", "true"]);
    o.expect_code(125);
}

#[test]
fn logs_work_after_a_foreground_run_as_docker_logs_does() {
    let lab = Lab::with_busybox();
    let o = lab.cmd(&[
        "run",
        "--name",
        "fg",
        "busybox",
        "sh",
        "-c",
        "echo hi; echo oops >&2; exit 3",
    ]);
    o.expect_code(3);
    assert_eq!(o.stdout, "hi\n");
    assert_eq!(o.stderr, "oops\n");
    let logs = lab.cmd(&["logs", "fg"]);
    logs.expect_code(0);
    assert_eq!(logs.stdout, "hi\n");
    assert_eq!(logs.stderr, "oops\n");
    // `start -a` appends to it; `start -ai` gives the container the user's stdin.
    let o = lab.cmd(&["start", "-a", "fg"]);
    o.expect_code(3);
    let logs = lab.cmd(&["logs", "fg"]);
    assert_eq!(logs.stdout, "hi\nhi\n");
    lab.cmd(&["rm", "fg"]).expect_code(0);

    let o = lab
        .command(&[
            "run",
            "-i",
            "--name",
            "reader",
            "busybox",
            "sh",
            "-c",
            "read x; echo got:$x",
        ])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&o.stdout), "got:\n");
    for (flags, want) in [("-ai", "got:typed\n"), ("-a", "got:\n")] {
        let mut child = lab
            .command(&["start", flags, "reader"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(b"typed\n").unwrap();
        let status = wait_exit(&mut child, Duration::from_secs(20), "start to end");
        assert_eq!(status.code(), Some(0));
        let mut out = String::new();
        std::io::Read::read_to_string(child.stdout.as_mut().unwrap(), &mut out).unwrap();
        assert_eq!(out, want, "start {flags}");
    }
    lab.cmd(&["rm", "reader"]).expect_code(0);
}

#[test]
fn a_restart_policys_back_off_shows_restarting_as_docker() {
    let lab = Lab::with_busybox();
    detach(
        &lab,
        &[
            "--name",
            "flaky",
            "--restart",
            "always",
            "busybox",
            "sh",
            "-c",
            "exit 3",
        ],
    );
    // The back-off doubles from 100 ms: soon it waits long enough to be seen.
    wait_until(Duration::from_secs(30), "a restarting state", || {
        (lab.state("flaky") == "restarting 3").then_some(())
    });
    wait_until(Duration::from_secs(30), "inspect's Restarting", || {
        let o = lab.cmd(&[
            "inspect",
            "-f",
            "{{.State.Restarting}} {{.State.Running}}",
            "flaky",
        ]);
        o.expect_code(0);
        (o.stdout.trim() == "true true").then_some(())
    });
    // `ps` without -a lists it, as Docker's does.
    wait_until(Duration::from_secs(30), "ps to show it restarting", || {
        let ps = lab.cmd(&["ps", "--format", "{{.Names}} {{.Status}}"]);
        ps.expect_code(0);
        (ps.stdout.contains("flaky Restarting (3) ") && ps.stdout.contains(" ago")).then_some(())
    });
    lab.cmd(&["stop", "flaky"]).expect_code(0);
    assert_eq!(lab.state("flaky"), "exited 3");
    let o = lab.cmd(&["inspect", "-f", "{{.State.Restarting}}", "flaky"]);
    assert_eq!(o.stdout.trim(), "false");
    lab.cmd(&["rm", "flaky"]).expect_code(0);
}

#[test]
fn init_still_forwards_stop_when_dockling_forwards_nothing() {
    // Regression: with --sig-proxy=false (or -t) the engine blocks no forwarded signal, and
    // `--init` read its signals from a signalfd over a mask it no longer inherited: `stop`'s
    // SIGTERM was dropped and the program was SIGKILLed after the timeout (137, not 143).
    let lab = Lab::with_busybox();
    let mut child = lab
        .command(&[
            "run",
            "--sig-proxy=false",
            "--init",
            "--name",
            "quiet",
            "busybox",
            "sleep",
            "1000",
        ])
        .spawn()
        .unwrap();
    wait_until(Duration::from_secs(20), "the container to run", || {
        let o = lab.cmd(&["inspect", "-f", "{{.State.Status}}", "quiet"]);
        (o.stdout.trim() == "running").then_some(())
    });
    lab.cmd(&["stop", "-t", "30", "quiet"]).expect_code(0);
    let status = wait_exit(&mut child, Duration::from_secs(20), "run to end");
    assert_eq!(status.code(), Some(143));
    assert_eq!(lab.state("quiet"), "exited 143");
    lab.cmd(&["rm", "quiet"]).expect_code(0);
}

#[test]
fn attach_gives_a_di_container_its_input_and_keeps_it_open_between_attaches() {
    let lab = Lab::with_busybox();
    detach(
        &lab,
        &[
            "-i",
            "--name",
            "reader",
            "busybox",
            "sh",
            "-c",
            "read a; echo first:$a; read b; echo second:$b; exit 4",
        ],
    );
    // The first attach types one line and leaves with the detach keys.
    let mut child = lab.attach_connected(&["reader"], Stdio::piped(), Stdio::piped());
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(b"one\n").unwrap();
    wait_until(
        Duration::from_secs(20),
        "the first answer in the log",
        || {
            let o = lab.cmd(&["logs", "reader"]);
            o.stdout.contains("first:one").then_some(())
        },
    );
    // Without a terminal there are no detach keys (Docker's daemon watches for them on a
    // TTY only): the user leaves by ending attach; the container and its stdin stay.
    child.kill().unwrap();
    let _ = child.wait();
    assert_eq!(lab.state("reader"), "running 0");
    // The second finds the input still open, and ends with the container.
    let mut child = lab.attach_connected(&["reader"], Stdio::piped(), Stdio::piped());
    // Ctrl-P Ctrl-Q are data here, passed on like any byte.
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"\x10\x11two\n")
        .unwrap();
    let status = wait_exit(&mut child, Duration::from_secs(20), "attach to end");
    let mut out = String::new();
    std::io::Read::read_to_string(child.stdout.as_mut().unwrap(), &mut out).unwrap();
    assert_eq!(status.code(), Some(4), "{out}");
    assert_eq!(out, "second:\u{10}\u{11}two\n");
    lab.cmd(&["rm", "reader"]).expect_code(0);
}

/// The resident size of process `pid` in KiB.
fn rss_kib(pid: i32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap()
}

#[test]
fn input_a_container_does_not_read_makes_attach_wait_not_the_monitor_grow() {
    let lab = Lab::with_busybox();
    // Two containers whose stdin is never read: one through a pipe (-di), one a terminal
    // (-dit). 24 MiB pushed at each through attach must stay in attach's pipe, not pile up
    // in the monitor.
    for (name, flags) in [("piped", "-di"), ("tty", "-dit")] {
        let o = lab.cmd(&["run", flags, "--name", name, "busybox", "sleep", "1000"]);
        o.expect_code(0);
        let id = o.stdout.trim().to_string();
        assert_eq!(lab.state(name), "running 0");
        let monitor = lab.monitor_pid(&id);
        let before = rss_kib(monitor);
        let mut child = lab.attach_connected(
            &["--detach-keys=ctrl-a,x", name],
            Stdio::piped(),
            Stdio::null(),
        );
        let pid = child.id();
        // A writer thread: it blocks once every buffer on the way is full.
        let mut stdin = child.stdin.take().unwrap();
        let writer = std::thread::spawn(move || {
            let chunk = vec![b'y'; 1 << 20];
            let mut sent = 0usize;
            for _ in 0..24 {
                if stdin.write_all(&chunk).is_err() {
                    break;
                }
                sent += chunk.len();
            }
            sent
        });
        // Wait until the writer is stuck (attach stopped reading), bounded.
        let mut last = 0u64;
        let mut same = 0;
        wait_until(Duration::from_secs(60), "the flood to stall or end", || {
            let now = std::fs::read_to_string(format!("/proc/{pid}/io"))
                .ok()
                .and_then(|s| {
                    s.lines()
                        .find_map(|l| l.strip_prefix("rchar: "))
                        .and_then(|v| v.parse().ok())
                })
                .unwrap_or(0);
            same = if now == last { same + 1 } else { 0 };
            last = now;
            (same >= 10 || writer.is_finished()).then_some(())
        });
        // A pipe nobody reads holds the rest back. (A terminal in canonical mode may drop
        // what overflows its line buffer instead: then the flood goes through, eaten by the
        // kernel; the monitor must not grow either way.)
        if flags == "-di" {
            assert!(
                !writer.is_finished(),
                "all 24 MiB went through: nothing held the input back ({name})"
            );
        }
        let grown = rss_kib(monitor).saturating_sub(before);
        assert!(
            grown < 16 << 10,
            "the monitor grew by {grown} KiB holding input its container does not read ({name})"
        );
        child.kill().unwrap();
        let _ = child.wait();
        let _ = writer.join();
        lab.cmd(&["rm", "-f", name]).expect_code(0);
    }
}

#[test]
fn attach_ends_with_137_when_the_monitor_is_killed_and_says_so_when_it_is_let_go() {
    let lab = Lab::with_busybox();
    // A killed monitor takes its container along (137): attach says that code, not 0.
    let o = lab.cmd(&["run", "-d", "--name", "victim", "busybox", "sleep", "1000"]);
    o.expect_code(0);
    let id = o.stdout.trim().to_string();
    let mut child = lab.attach_connected(&["victim"], Stdio::null(), Stdio::null());
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(lab.monitor_pid(&id)),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    let status = wait_exit(&mut child, Duration::from_secs(30), "attach to end");
    assert_eq!(status.code(), Some(137));
    lab.cmd(&["rm", "-f", "victim"]).expect_code(0);

    // A client that stops reading is let go past 4 MiB behind; attach says so once it reads
    // again, and the container runs on.
    lab.cmd(&[
        "run",
        "-d",
        "--name",
        "firehose",
        "--log-opt",
        "max-size=1m",
        "busybox",
        "cat",
        "/dev/zero",
    ])
    .expect_code(0);
    let monitor = lab.monitor_pid(
        lab.cmd(&["inspect", "-f", "{{.Id}}", "firehose"])
            .stdout
            .trim(),
    );
    let sockets = || {
        std::fs::read_dir(format!("/proc/{monitor}/fd"))
            .unwrap()
            .flatten()
            .filter(|e| {
                std::fs::read_link(e.path())
                    .is_ok_and(|l| l.to_string_lossy().starts_with("socket:"))
            })
            .count()
    };
    let before = sockets();
    let mut child = lab
        .command(&["attach", "firehose"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    wait_until(Duration::from_secs(20), "attach to connect", || {
        (has_socket(pid) && sockets() == before + 1).then_some(())
    });
    // attach's stdout pipe is full and unread: wait until the monitor lets it go (its end
    // of the client's connection is closed).
    wait_until(
        Duration::from_secs(30),
        "the monitor to drop the client",
        || (sockets() == before).then_some(()),
    );
    let mut out = child.stdout.take().unwrap();
    let drain = std::thread::spawn(move || std::io::copy(&mut out, &mut std::io::sink()));
    let status = wait_exit(&mut child, Duration::from_secs(30), "attach to end");
    let _ = drain.join();
    let mut err = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err).unwrap();
    assert_eq!(status.code(), Some(125), "{err}");
    assert!(err.contains("let this attach go"), "{err}");
    assert_eq!(lab.state("firehose"), "running 0");
    lab.cmd(&["rm", "-f", "firehose"]).expect_code(0);
}

#[test]
fn start_ai_of_a_running_container_attaches_to_it() {
    let lab = Lab::with_busybox();
    detach(
        &lab,
        &[
            "-i",
            "--name",
            "waiter",
            "busybox",
            "sh",
            "-c",
            "read x; echo got:$x; exit 5",
        ],
    );
    let mut child = lab
        .command(&["start", "-ai", "waiter"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    wait_until(Duration::from_secs(20), "start -ai to connect", || {
        has_socket(pid).then_some(())
    });
    child.stdin.take().unwrap().write_all(b"hi\n").unwrap();
    let status = wait_exit(&mut child, Duration::from_secs(20), "start -ai to end");
    let mut out = String::new();
    std::io::Read::read_to_string(child.stdout.as_mut().unwrap(), &mut out).unwrap();
    assert_eq!(status.code(), Some(5), "{out}");
    assert_eq!(out, "got:hi\n");
    lab.cmd(&["rm", "waiter"]).expect_code(0);
}

#[test]
fn a_monitor_serves_64_clients_and_closes_any_more_at_once() {
    let lab = Lab::with_busybox();
    let o = lab.cmd(&["run", "-d", "--name", "popular", "busybox", "sleep", "1000"]);
    o.expect_code(0);
    let id = o.stdout.trim().to_string();
    // The path is longer than a socket address holds: through a descriptor of the directory,
    // as attach does.
    let dir = std::fs::File::open(lab.root().join("containers").join(&id)).unwrap();
    let socket = format!(
        "/proc/self/fd/{}/attach",
        std::os::fd::AsRawFd::as_raw_fd(&dir)
    );
    let clients: Vec<std::os::unix::net::UnixStream> = (0..70)
        .map(|_| std::os::unix::net::UnixStream::connect(&socket).unwrap())
        .collect();
    // The ones past 64 are closed by the monitor: their reads end (EOF); the first 64 stay.
    let closed = |c: &std::os::unix::net::UnixStream| {
        c.set_nonblocking(true).unwrap();
        matches!(std::io::Read::read(&mut &*c, &mut [0u8; 64]), Ok(0))
    };
    wait_until(Duration::from_secs(20), "6 clients to be closed", || {
        (clients.iter().filter(|c| closed(c)).count() == 6).then_some(())
    });
    assert!(
        clients[..64].iter().all(|c| !closed(c)),
        "one of the first 64 clients was closed"
    );
    drop(clients);
    // Served again once they left.
    assert_eq!(lab.state("popular"), "running 0");
    let mut child = lab.attach_connected(&["popular"], Stdio::null(), Stdio::null());
    lab.cmd(&["stop", "-t", "0", "popular"]).expect_code(0);
    let status = wait_exit(&mut child, Duration::from_secs(20), "attach to end");
    assert_eq!(status.code(), Some(137));
    lab.cmd(&["rm", "popular"]).expect_code(0);
}
