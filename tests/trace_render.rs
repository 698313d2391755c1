//! `dockling trace render` of a real run's trace (`run --trace-file`): the picture names the
//! trace's own subsystems, the namespaces the run's `clone` made and the mounts the container
//! ended with; the same trace gives the same picture; what is not a trace is refused (125)
//! and leaves no picture behind.

mod common;
use common::Lab;

#[test]
fn a_real_runs_trace_becomes_its_picture() {
    let lab = Lab::with_busybox();
    let trace = lab.dir.path().join("trace.json");
    let trace_s = trace.to_str().unwrap();
    lab.run(&[
        "--network",
        "none",
        "--trace-file",
        trace_s,
        "--uts",
        "host",
        "busybox",
        "true",
    ])
    .expect_code(0);
    let text = std::fs::read_to_string(&trace).unwrap();
    let subsystems: std::collections::BTreeSet<String> = text
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|e| e["subsystem"].as_str().map(str::to_string))
        .collect();
    assert!(subsystems.len() >= 5, "{subsystems:?}");

    let svg = lab.dir.path().join("run.svg");
    let out = lab.cmd(&["trace", "render", trace_s, "-o", svg.to_str().unwrap()]);
    out.expect_code(0);
    assert!(out.stdout.is_empty(), "{}", out.stdout);
    let picture = std::fs::read_to_string(&svg).unwrap();
    assert!(picture.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""));
    assert!(picture.trim_end().ends_with("</svg>"));
    for s in &subsystems {
        assert!(
            picture.contains(&format!("data-subsystem=\"{s}\"")),
            "no lane {s}"
        );
    }
    assert!(
        picture.contains("mount the image layers and the writable layer"),
        "{picture}"
    );
    // --uts host: every namespace new but uts, which is the host's.
    for ns in ["mnt", "ipc", "pid", "net", "cgroup"] {
        assert!(
            picture.contains(&format!("data-ns=\"{ns}\" data-new=\"true\"")),
            "{ns} is not new: {picture}"
        );
    }
    assert!(picture.contains("data-ns=\"uts\" data-new=\"false\""));
    for (target, kind) in [("/", "overlay"), ("/proc", "proc"), ("/dev/pts", "devpts")] {
        assert!(
            picture.contains(&format!("data-target=\"{target}\" data-type=\"{kind}\"")),
            "no mount {target} {kind}: {picture}"
        );
    }
    // Nothing of the host's mount table and nothing under the store's path.
    assert!(!picture.contains(lab.dir.path().to_str().unwrap()));

    // On stdout without -o, the same bytes; in Korean with --lang ko.
    let again = lab.cmd(&["trace", "render", trace_s]);
    again.expect_code(0);
    assert_eq!(again.stdout, picture);
    let ko = lab.cmd(&["--lang", "ko", "trace", "render", trace_s]);
    ko.expect_code(0);
    assert_ne!(ko.stdout, picture);
    assert!(
        ko.stdout
            .chars()
            .any(|c| ('\u{ac00}'..='\u{d7a3}').contains(&c)),
        "{}",
        ko.stdout
    );
}

#[test]
fn what_is_not_a_trace_is_refused_and_leaves_no_picture() {
    let lab = Lab::new();
    let not = lab.dir.path().join("config.yaml");
    let svg = lab.dir.path().join("out.svg");
    let out = lab.cmd(&[
        "trace",
        "render",
        not.to_str().unwrap(),
        "-o",
        svg.to_str().unwrap(),
    ]);
    out.expect_code(125);
    assert!(
        out.stderr.contains("line 1 is not a trace event") && out.stderr.contains("--trace-file"),
        "{}",
        out.stderr
    );
    assert!(!svg.exists());
    let missing = lab.cmd(&["trace", "render", "/nonexistent/trace.json"]);
    missing.expect_code(125);
    assert!(
        missing.stderr.contains("/nonexistent/trace.json"),
        "{}",
        missing.stderr
    );
    assert!(missing.stdout.is_empty());
}
