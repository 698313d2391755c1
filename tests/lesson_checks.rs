//! `dockling lesson check N` judges the student's own work: every lesson has an exercise with
//! checks, and every check fails before the exercise is done and passes after. Each lesson's
//! checks run against a fresh store with the lab up (in a network namespace of this test's
//! own): first with nothing done (every check must say "not yet", the command exit 1), then
//! after the checks' hidden `solution:` lines ran (every check "ok", exit 0).

mod common;
use common::{free_port, Lab, NetNs, Out};

/// How long one `lesson check` or one lesson's solution may take.
const LIMIT_S: &str = "180";

/// `cmd` under coreutils' `timeout`: it cannot hang the test.
fn bounded(ns: &NetNs, lab: &Lab, program: &str, args: &[&str], lab_addr: &str) -> Out {
    let mut c = ns.command("timeout");
    c.args(["-k", "5", LIMIT_S, program])
        .args(args)
        .env("DOCKLING_ROOT", lab.root())
        .env("DOCKLING_CONFIG", lab.dir.path().join("config.yaml"))
        .env("NO_COLOR", "1")
        .env("LAB", lab_addr)
        .env(
            "PATH",
            format!(
                "{}:/usr/sbin:/usr/bin:/sbin:/bin",
                std::path::Path::new(env!("CARGO_BIN_EXE_dockling"))
                    .parent()
                    .unwrap()
                    .display()
            ),
        )
        .stdin(std::process::Stdio::null());
    let out: Out = c.output().expect("run timeout(1)").into();
    assert_ne!(
        out.code, 124,
        "{program} {args:?} ran longer than {LIMIT_S} s:\n{}{}",
        out.stdout, out.stderr
    );
    out
}

fn check(ns: &NetNs, lab: &Lab, n: usize, addr: &str) -> Out {
    bounded(
        ns,
        lab,
        env!("CARGO_BIN_EXE_dockling"),
        &["lesson", "check", &n.to_string()],
        addr,
    )
}

/// What the student reads must not give the exercise away, nor show the raw expectation.
fn gives_nothing_away(lesson: &dockling::lessons::Lesson, text: &str) {
    for c in &lesson.check {
        for line in c.solution.lines().filter(|l| l.trim().len() > 8) {
            assert!(
                !text.contains(line.trim()),
                "`lesson check` shows the solution {line:?}:\n{text}"
            );
        }
        assert!(
            !text.contains(c.run.trim()),
            "`lesson check` shows its command:\n{text}"
        );
        for re in &c.expect.matches {
            assert!(
                !text.contains(re.as_str()),
                "`lesson check` shows the regex {re:?}:\n{text}"
            );
        }
    }
}

#[test]
fn every_lesson_has_an_exercise_and_every_check_words_and_a_solution() {
    let all = dockling::lessons::all().unwrap();
    assert!(all.len() >= 17, "{} lessons", all.len());
    for (n, file, lesson) in &all {
        assert!(!lesson.check.is_empty(), "lesson {n} ({file}) has no check");
        for c in &lesson.check {
            assert!(
                !c.solution.trim().is_empty(),
                "lesson {n}, check {:?}: no solution",
                c.name
            );
            assert!(
                c.expected.get("en").trim().len() > 10,
                "lesson {n}, check {:?}: say what is expected in words",
                c.name
            );
            assert!(
                !c.hint.get("en").trim().is_empty(),
                "lesson {n}, check {:?}: no hint",
                c.name
            );
            // A check that only runs dockling --version (or true) is always "ok".
            assert!(
                !c.run.contains("--version") && c.run.trim() != "true",
                "lesson {n}, check {:?} checks nothing",
                c.name
            );
        }
    }
}

#[test]
fn every_check_fails_before_the_exercise_and_passes_after() {
    let lab = Lab::new();
    let ns = NetNs::new();
    let addr = format!("127.0.0.1:{}", free_port());
    ns.dockling(&lab, &["lab", "up", "--addr", &addr])
        .expect_code(0);
    // Lesson 2's exercise writes this file: none may be there before.
    let archive = std::path::Path::new("/tmp/httpd.tar");
    let _ = std::fs::remove_file(archive);
    let started = std::time::Instant::now();
    let mut report = Vec::new();
    for (n, _, lesson) in dockling::lessons::all().unwrap() {
        if lesson.check.is_empty() {
            continue;
        }
        let t = std::time::Instant::now();
        let before = check(&ns, &lab, n, &addr);
        assert_eq!(
            before.code, 1,
            "lesson {n}: `lesson check` before the exercise:\n{}{}",
            before.stdout, before.stderr
        );
        for c in &lesson.check {
            assert!(
                before
                    .stdout
                    .contains(&format!("{}: not yet\n", c.name.get("en"))),
                "lesson {n}: check {:?} does not fail before the exercise:\n{}",
                c.name,
                before.stdout
            );
        }
        assert!(
            before.stdout.contains("   expected ") && before.stdout.contains("   hint: "),
            "lesson {n}:\n{}",
            before.stdout
        );
        gives_nothing_away(&lesson, &before.stdout);
        for c in &lesson.check {
            let done = bounded(&ns, &lab, "/bin/sh", &["-c", &c.solution], &addr);
            assert_eq!(
                done.code, 0,
                "lesson {n}, solution of {:?} failed:\n{}{}",
                c.name, done.stdout, done.stderr
            );
        }
        let after = check(&ns, &lab, n, &addr);
        let oks = lesson
            .check
            .iter()
            .map(|c| format!("{}: ok\n", c.name.get("en")))
            .collect::<String>();
        assert_eq!(
            (after.code, after.stdout.as_str()),
            (0, oks.as_str()),
            "lesson {n}: `lesson check` after the exercise:\n{}{}",
            after.stdout,
            after.stderr
        );
        report.push(format!("lesson {n}: {:.1} s", t.elapsed().as_secs_f64()));
        // The next lesson starts without this one's containers and networks.
        for id in lab
            .cmd(&["ps", "-aq", "--no-trunc"])
            .stdout
            .split_whitespace()
        {
            ns.dockling(&lab, &["rm", "-f", id]).expect_code(0);
        }
        let nets = lab.cmd(&["network", "ls", "--format", "{{.Name}}"]);
        nets.expect_code(0);
        for net in nets.stdout.split_whitespace() {
            if !["bridge", "host", "none"].contains(&net) {
                ns.dockling(&lab, &["network", "rm", net]).expect_code(0);
            }
        }
    }
    let _ = std::fs::remove_file(archive);
    // Lesson 20's check runs the bundle under runc, which leaves the parent of the cgroup
    // path dockling's bundle names: removed by the lesson's own cleanup line.
    let lesson = dockling::lessons::all()
        .unwrap()
        .into_iter()
        .find(|(_, file, _)| file.starts_with("20-"))
        .expect("lesson 20");
    for line in &lesson.2.cleanup {
        if line.contains("dockling-oci") {
            let st = std::process::Command::new("sh")
                .args(["-c", line])
                .status()
                .unwrap();
            assert!(st.success(), "lesson 20's cleanup failed: {line}");
        }
    }
    eprintln!(
        "{}\nall checks both ways in {:.1} s",
        report.join("\n"),
        started.elapsed().as_secs_f64()
    );
    assert!(lab.containers_left().is_empty());
}
