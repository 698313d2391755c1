//! `--format` / `-f`: Docker's Go templates on `ps`, `images` and `inspect`.

mod common;
use common::Lab;

#[test]
fn inspect_format_picks_fields_and_json() {
    let lab = Lab::with_busybox();
    lab.cmd(&[
        "run", "--name", "fmt", "-e", "A=1", "busybox", "sh", "-c", "exit 3",
    ])
    .expect_code(3);
    let o = lab.cmd(&[
        "inspect",
        "-f",
        "{{.Name}} {{.State.Status}} {{.State.ExitCode}} {{json .Config.Env}} {{range .Config.Cmd}}[{{.}}]{{end}}",
        "fmt",
    ]);
    o.expect_code(0);
    let out = o.stdout.trim_end();
    assert!(out.starts_with("/fmt exited 3 [\"PATH="), "{out}");
    assert!(out.contains(r#","A=1","#), "{out}");
    assert!(out.ends_with("] [sh][-c][exit 3]"), "{out}");
    // An image through the same flag, and `image inspect` too.
    let img = lab.cmd(&[
        "image",
        "inspect",
        "--format",
        "{{index .RepoTags 0}}",
        "busybox",
    ]);
    img.expect_code(0);
    assert_eq!(img.stdout.trim_end(), "busybox:latest", "{}", img.stderr);
    lab.cmd(&["rm", "fmt"]).expect_code(0);
}

#[test]
fn ps_and_images_format_tables_templates_and_json() {
    let lab = Lab::with_busybox();
    lab.cmd(&["run", "--name", "one", "busybox", "true"])
        .expect_code(0);
    let t = lab.cmd(&[
        "ps",
        "-a",
        "--format",
        "table {{.Names}}\\t{{.State}}\\t{{.Image}}",
    ]);
    t.expect_code(0);
    let lines: Vec<&str> = t.stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{}", t.stdout);
    assert_eq!(lines[0], "NAMES     STATE     IMAGE", "{}", t.stdout);
    assert_eq!(lines[1], "one       exited    busybox", "{}", t.stdout);

    let plain = lab.cmd(&["ps", "-a", "--format", "{{.Names}}={{.Status}}"]);
    plain.expect_code(0);
    assert!(
        plain.stdout.starts_with("one=Exited (0) "),
        "{}",
        plain.stdout
    );

    let json = lab.cmd(&["ps", "-a", "--format", "json"]);
    json.expect_code(0);
    let v: serde_json::Value = serde_json::from_str(json.stdout.trim()).unwrap();
    assert_eq!(v["Names"], "one");
    assert_eq!(v["ID"].as_str().unwrap().len(), 12);

    // `table` alone is the default table.
    let default = lab.cmd(&["ps", "-a", "--format", "table"]);
    default.expect_code(0);
    assert_eq!(
        default
            .stdout
            .lines()
            .next()
            .unwrap()
            .split_whitespace()
            .collect::<Vec<_>>(),
        [
            "CONTAINER",
            "ID",
            "IMAGE",
            "COMMAND",
            "CREATED",
            "STATUS",
            "PORTS",
            "NAMES"
        ]
    );

    let images = lab.cmd(&["images", "--format", "{{.Repository}}:{{.Tag}} {{len .ID}}"]);
    images.expect_code(0);
    assert_eq!(images.stdout, "busybox:latest 12\n");
    lab.cmd(&["rm", "one"]).expect_code(0);
}

#[test]
fn a_bad_template_is_a_clear_error_and_prints_nothing() {
    let lab = Lab::with_busybox();
    for args in [
        &["ps", "-a", "--format", "{{.Names"][..],
        &["images", "--format", "{{nosuch .ID}}"],
        &["inspect", "-f", "{{if .Id}}", "busybox"],
    ] {
        let o = lab.cmd(args);
        o.expect_code(125);
        assert!(o.stdout.is_empty(), "{args:?}: {}", o.stdout);
        assert!(
            o.stderr.contains("template parsing error"),
            "{args:?}: {}",
            o.stderr
        );
    }
    let o = lab.cmd(&["inspect", "-f", "{{index .RepoTags 9}}", "busybox"]);
    o.expect_code(125);
    assert!(o.stderr.contains("index out of range"), "{}", o.stderr);
}

/// `dockling inspect … | head -1`: the reader goes away; the command ends by SIGPIPE
/// (exit 141 in a shell) as Docker's CLI does, never with an internal error.
#[test]
fn a_reader_that_goes_away_ends_inspect_quietly() {
    use std::os::unix::process::ExitStatusExt;
    let lab = Lab::with_busybox();
    // Far more than a pipe holds, so the writes meet the closed pipe.
    let mut args = vec!["inspect"];
    args.extend(std::iter::repeat_n("busybox", 200));
    let mut child = lab
        .command(&args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.signal(), Some(13), "{:?} {stderr}", out.status);
    assert!(!stderr.contains("internal error"), "{stderr}");
}
