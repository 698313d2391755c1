//! `dockling lab`: the registry on loopback standing in for Docker Hub, with the lesson images
//! dockling builds itself. Each test's lab listens on its own free port and is stopped by the
//! harness (`lab down`) even when the test fails.

mod common;
#[path = "fake_server/mod.rs"]
mod fake_server;
use common::{free_port, Lab};
use fake_server::{ok, Fake};

#[test]
fn lab_up_serves_docker_hub_names_and_lab_down_undoes_it() {
    let lab = Lab::new();
    let addr = format!("127.0.0.1:{}", free_port());
    let up = lab.cmd(&["lab", "up", "--addr", &addr]);
    up.expect_code(0);
    // A store made by `lab up` has the store's modes from the start (nothing to repair).
    assert_eq!(up.stderr, "", "lab up said on stderr");
    {
        use std::os::unix::fs::PermissionsExt;
        let mode =
            |p: std::path::PathBuf| std::fs::metadata(p).unwrap().permissions().mode() & 0o7777;
        assert_eq!(mode(lab.root()), 0o711);
        assert_eq!(mode(lab.root().join("oci")), 0o700);
    }
    let show = |text: &str| {
        let text = lab
            .filter(text)
            .replace(&addr, "[ADDR]")
            .replace(&lab.dir.path().display().to_string(), "[DIR]");
        let text = regex::Regex::new(r"pid \d+")
            .unwrap()
            .replace_all(&text, "pid [PID]");
        let text = regex::Regex::new(r"size: \d+")
            .unwrap()
            .replace_all(&text, "size: [N]");
        // Table columns are as wide as their (filtered) contents were: compare them loosely.
        regex::Regex::new(r" {2,}")
            .unwrap()
            .replace_all(&text, "  ")
            .into_owned()
    };
    insta::assert_snapshot!("lab_up", show(&up.stdout));
    assert!(
        up.stdout.contains("started docker-registry"),
        "{}",
        up.stdout
    );
    for name in ["busybox", "httpd", "hello-world", "bloated"] {
        assert!(
            up.stdout.contains(&format!("image:    {name:<12} sha256:")),
            "{}",
            up.stdout
        );
    }
    // Idempotent: the same images (reproducible digests), nothing pushed again.
    let again = lab.cmd(&["lab", "up", "--addr", &addr]);
    again.expect_code(0);
    assert!(again.stdout.contains("already running"), "{}", again.stdout);
    assert_eq!(
        again.stdout.matches("(already there)").count(),
        4,
        "{}",
        again.stdout
    );
    let status = lab.cmd(&["lab", "status"]);
    status.expect_code(0);
    insta::assert_snapshot!("lab_status", show(&status.stdout));
    assert!(
        status
            .stdout
            .contains("images:   bloated:latest busybox:latest hello-world:latest httpd:latest\n"),
        "{}",
        status.stdout
    );
    // Docker Hub names now resolve through the mirror.
    let pull = lab.cmd(&["pull", "httpd"]);
    pull.expect_code(0);
    insta::assert_snapshot!("pull_httpd", show(&pull.stdout));
    insta::assert_snapshot!(
        "history_httpd",
        show(&lab.cmd(&["history", "httpd"]).stdout)
    );
    assert!(
        pull.stdout.contains("Pulling from library/httpd"),
        "{}",
        pull.stdout
    );
    // Pushing it to the lab under another name sends nothing new: the lab is the mirror the
    // layers came from, so they are mounted from library/httpd.
    let mine = format!("{addr}/me/web:v1");
    lab.cmd(&["tag", "httpd", &mine]).expect_code(0);
    let push = lab.cmd(&["push", &mine]);
    push.expect_code(0);
    insta::assert_snapshot!("push_mounted", show(&push.stdout));
    assert_eq!(
        push.stdout.matches(": Mounted from library/").count(),
        3,
        "{}",
        push.stdout
    );
    let page = lab.run(&["httpd", "cat", "/usr/local/apache2/htdocs/index.html"]);
    page.expect_code(0);
    assert_eq!(
        page.stdout,
        "<html><body><h1>It works!</h1></body></html>\n"
    );
    let hello = lab.run(&["hello-world"]);
    hello.expect_code(0);
    assert!(
        hello.stdout.contains("Hello from dockling!"),
        "{}",
        hello.stdout
    );
    assert!(
        hello
            .stderr
            .contains("Unable to find image 'hello-world:latest' locally"),
        "run pulls a missing image as docker does: {}",
        hello.stderr
    );

    let config = lab.dir.path().join("config.yaml");
    assert!(std::fs::read_to_string(&config).unwrap().contains(&addr));
    let state: serde_json::Value =
        serde_json::from_slice(&std::fs::read(lab.root().join("lab/state.json")).unwrap()).unwrap();
    let pid = state["pid"].as_i64().unwrap();
    let down = lab.cmd(&["lab", "down"]);
    down.expect_code(0);
    assert!(down.stdout.contains("registry: stopped"), "{}", down.stdout);
    assert!(
        !std::path::Path::new(&format!("/proc/{pid}")).exists()
            || std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .unwrap_or_default()
                .contains(") Z"),
        "the registry (pid {pid}) still runs"
    );
    assert_eq!(
        std::fs::read_to_string(&config).unwrap(),
        lab.base_config(),
        "lab down leaves the config as it was"
    );
    lab.cmd(&["lab", "status"]).expect_code(1);
}

#[test]
fn lab_up_refuses_addresses_off_this_machine() {
    let lab = Lab::new();
    let out = lab.cmd(&["lab", "up", "--addr", "0.0.0.0:5000"]);
    out.expect_code(125);
    assert!(out.stderr.contains("loopback only"), "{}", out.stderr);
    assert!(!lab.root().join("lab/state.json").exists());
}

#[test]
fn lab_up_refuses_a_registry_it_did_not_start() {
    let lab = Lab::new();
    // A stranger's registry: answers /v2/ as distribution does, and records every request.
    let stranger = Fake::start();
    stranger.route("/v2/", vec![ok("application/json", b"{}".to_vec())]);
    let addr = format!("127.0.0.1:{}", stranger.port);
    let out = lab.cmd(&["lab", "up", "--addr", &addr]);
    out.expect_code(125);
    assert_eq!(
        out.stderr,
        format!("dockling: a registry already answers on {addr}, and it is not this lab's (dockling did not start it for this store): the lab will not push into it; give the lab a free port with `dockling lab up --addr 127.0.0.1:<port>`, or stop what runs on {addr}\n")
    );
    // Asked whether it is a registry, and nothing more: no image pushed into it.
    let seen = stranger.seen();
    assert!(!seen.is_empty(), "the address was not even asked");
    assert!(
        seen.iter().all(|s| s.method == "GET" && s.path == "/v2/"),
        "{seen:?}"
    );
    assert!(!lab.root().join("lab/state.json").exists());
    assert_eq!(
        std::fs::read_to_string(lab.dir.path().join("config.yaml")).unwrap(),
        lab.base_config(),
        "no mirror added"
    );
}
