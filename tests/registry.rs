//! Pulling from a real registry: Debian's docker-registry on a loopback port, filled by skopeo
//! from an image dockling imported (so this also checks skopeo reads dockling's store).

mod common;
use common::registry::DockerRegistry as Registry;
use common::Lab;
use std::process::{Command, Stdio};

#[test]
fn pull_run_warm_pull_tag_and_rmi() {
    let source = Lab::with_busybox();
    let reg = Registry::start();
    reg.push_busybox(&source, "lab/busybox:v1");
    let lab = Lab::new();
    let name = reg.name("lab/busybox:v1");
    let pull = lab.cmd(&["pull", &name]);
    pull.expect_code(0);
    assert!(pull.stdout.contains("Pull complete"), "{}", pull.stdout);
    assert!(
        pull.stdout.contains("Status: Downloaded newer image for"),
        "{}",
        pull.stdout
    );
    assert_eq!(pull.stdout.lines().last().unwrap(), name);
    let run = lab.run(&[&name, "echo", "pulled and ran"]);
    run.expect_code(0);
    assert_eq!(run.stdout, "pulled and ran\n");
    let warm = lab.cmd(&["pull", &name]);
    assert!(
        warm.stdout.contains("Image is up to date"),
        "{}",
        warm.stdout
    );
    assert!(
        !warm.stdout.contains("Pull complete"),
        "a warm pull downloads nothing: {}",
        warm.stdout
    );
    // Docker's RepoDigests: the digest the registry named the image by.
    let digest = pull
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("Digest: "))
        .unwrap()
        .to_string();
    let inspect: serde_json::Value =
        serde_json::from_str(&lab.cmd(&["image", "inspect", &name]).stdout).unwrap();
    assert_eq!(
        inspect[0]["RepoDigests"][0],
        format!("{}@{digest}", reg.name("lab/busybox"))
    );
    assert!(lab.cmd(&["images", "--digests"]).stdout.contains(&digest));
    lab.cmd(&["tag", &name, "mybox:1"]).expect_code(0);
    let images = lab.cmd(&["images"]).stdout;
    assert!(
        images.contains("mybox") && images.contains("lab/busybox"),
        "{images}"
    );
    let untag = lab.cmd(&["rmi", "mybox:1"]);
    assert_eq!(
        untag.stdout, "Untagged: mybox:1\n",
        "another tag still names the image"
    );
    let gone = lab.cmd(&["rmi", &name]);
    assert!(gone.stdout.contains("Deleted: sha256:"), "{}", gone.stdout);
    let blobs = std::fs::read_dir(lab.root().join("oci/blobs/sha256"))
        .unwrap()
        .count();
    assert_eq!(blobs, 0, "rmi left blobs behind");
}

#[test]
fn a_layer_already_present_is_already_exists_and_not_downloaded_again() {
    let source = Lab::with_busybox();
    let reg = Registry::start();
    reg.push_busybox(&source, "lab/busybox:v1");
    reg.push_busybox(&source, "lab/again:v1");
    let lab = Lab::new();
    let first = lab.cmd(&["pull", &reg.name("lab/busybox:v1")]);
    first.expect_code(0);
    assert!(
        first.stdout.contains(": Download complete"),
        "{}",
        first.stdout
    );
    let layer = first
        .stdout
        .lines()
        .find_map(|l| l.strip_suffix(": Download complete"))
        .unwrap()
        .to_string();
    // The same image under another repository: its layer (and config) are here already.
    // Docker says "Already exists" for such a layer, and fetches nothing of it again.
    let second = lab.cmd(&["pull", &reg.name("lab/again:v1")]);
    second.expect_code(0);
    assert!(
        second
            .stdout
            .contains(&format!("{layer}: Already exists\n")),
        "{}",
        second.stdout
    );
    assert!(
        !second.stdout.contains("Download complete") && !second.stdout.contains("Pull complete"),
        "{}",
        second.stdout
    );
    assert!(
        second.stdout.contains("Status: Downloaded newer image for"),
        "{}",
        second.stdout
    );
    let again = reg
        .log()
        .lines()
        .filter(|l| l.contains("\"GET ") && l.contains("/lab/again/blobs/"))
        .count();
    assert_eq!(again, 0, "a blob already present was downloaded again");
}

#[test]
fn unknown_images_and_tampered_blobs_are_clear_errors_and_leave_nothing() {
    let source = Lab::with_busybox();
    let reg = Registry::start();
    reg.push_busybox(&source, "lab/busybox:v1");
    let lab = Lab::new();
    let missing = lab.cmd(&["pull", &reg.name("lab/nothing:v1")]);
    missing.expect_code(125);
    assert!(
        missing.stderr.contains(&format!(
            "manifest for {} not found",
            reg.name("lab/nothing:v1")
        )) && missing.stderr.contains(&format!(
            "the image or tag does not exist in the registry at http://127.0.0.1:{}",
            reg.port
        )),
        "{}",
        missing.stderr
    );
    assert!(!missing.stderr.contains('{'), "{}", missing.stderr);
    // Change one byte of every layer blob the registry stores: the digest check must catch it.
    let blobs = reg.dir.path().join("data/docker/registry/v2/blobs/sha256");
    let mut tampered = 0;
    for prefix in std::fs::read_dir(&blobs).unwrap().flatten() {
        for blob in std::fs::read_dir(prefix.path()).unwrap().flatten() {
            let data = blob.path().join("data");
            let mut bytes = std::fs::read(&data).unwrap();
            if bytes.len() > 10_000 {
                let last = bytes.len() - 1;
                bytes[last] ^= 0xff;
                std::fs::write(&data, bytes).unwrap();
                tampered += 1;
            }
        }
    }
    assert!(tampered > 0);
    let bad = lab.cmd(&["pull", &reg.name("lab/busybox:v1")]);
    bad.expect_code(125);
    assert!(bad.stderr.contains("refusing it"), "{}", bad.stderr);
    let layers = std::fs::read_dir(lab.root().join("layers/sha256"))
        .unwrap()
        .count();
    assert_eq!(layers, 0, "a layer was unpacked from a bad blob");
    let partial: Vec<_> = std::fs::read_dir(lab.root().join("oci/blobs/sha256"))
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with(".tmp-"))
        .collect();
    assert!(partial.is_empty(), "temporary files left: {partial:?}");
    assert!(lab.cmd(&["images", "-q"]).stdout.is_empty());
}

#[test]
fn login_push_pull_back_podman_pull_and_logout() {
    let lab = Lab::with_busybox();
    let reg = Registry::start_with_login("student", "s3cret");
    let home = tempfile::tempdir().unwrap();
    let cmd = |args: &[&str]| lab.cmd_env(args, &[("HOME", home.path().as_os_str())]);
    let name = reg.name("me/web:v1");
    cmd(&["tag", "busybox", &name]).expect_code(0);
    let denied = cmd(&["push", &name]);
    denied.expect_code(125);
    assert!(
        denied.stderr.contains("dockling login"),
        "{}",
        denied.stderr
    );

    let server = format!("127.0.0.1:{}", reg.port);
    let wrong = cmd(&["login", "-u", "student", "-p", "nope", &server]);
    assert_ne!(wrong.code, 0);
    assert!(
        wrong.stderr.contains("incorrect username or password"),
        "{}",
        wrong.stderr
    );
    assert!(
        !home.path().join(".dockling/config.json").exists(),
        "a failed login stores nothing"
    );
    let login = cmd(&["login", "-u", "student", "-p", "s3cret", &server]);
    login.expect_code(0);
    assert!(login.stdout.contains("Login Succeeded"), "{}", login.stdout);
    assert!(
        login.stderr.contains("stored unencrypted"),
        "{}",
        login.stderr
    );
    let stored: serde_json::Value =
        serde_json::from_slice(&std::fs::read(home.path().join(".dockling/config.json")).unwrap())
            .unwrap();
    assert!(stored["auths"][&server]["auth"].is_string(), "{stored}");
    {
        // Readable by its owner only (it holds the password), and nothing else left there.
        use std::os::unix::fs::PermissionsExt;
        let file = home.path().join(".dockling/config.json");
        let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o7777;
        assert_eq!(mode, 0o600, "{}", file.display());
        let names: Vec<_> = std::fs::read_dir(home.path().join(".dockling"))
            .unwrap()
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert_eq!(names, ["config.json"]);
    }
    // A credentials file that is not JSON is refused, never overwritten.
    let broken = home.path().join("broken");
    std::fs::create_dir_all(broken.join(".dockling")).unwrap();
    std::fs::write(broken.join(".dockling/config.json"), "{ half").unwrap();
    let refused = lab.cmd_env(
        &["login", "-u", "student", "-p", "s3cret", &server],
        &[("HOME", broken.as_os_str())],
    );
    refused.expect_code(125);
    assert!(
        refused.stderr.contains("is not valid JSON"),
        "{}",
        refused.stderr
    );
    assert_eq!(
        std::fs::read_to_string(broken.join(".dockling/config.json")).unwrap(),
        "{ half"
    );

    let push = cmd(&["push", &name]);
    push.expect_code(0);
    assert!(push.stdout.contains(": Pushed"), "{}", push.stdout);
    assert!(
        push.stdout.contains("v1: digest: sha256:"),
        "{}",
        push.stdout
    );
    let again = cmd(&["push", &name]);
    again.expect_code(0);
    assert!(!again.stdout.contains(": Pushed"), "{}", again.stdout);
    assert!(
        again.stdout.contains("Layer already exists"),
        "{}",
        again.stdout
    );

    cmd(&["rmi", &name]).expect_code(0);
    cmd(&["rmi", "busybox"]).expect_code(0);
    cmd(&["pull", &name]).expect_code(0);
    let ran = cmd(&["run", "--rm", &name, "echo", "round trip"]);
    ran.expect_code(0);
    assert_eq!(ran.stdout, "round trip\n");

    // podman reads what dockling pushed (its own storage, in a temporary directory).
    let podman = tempfile::tempdir().unwrap();
    let out = Command::new("podman")
        .args([
            "--root",
            podman.path().join("root").to_str().unwrap(),
            "--runroot",
            podman.path().join("run").to_str().unwrap(),
            "--storage-driver",
            "vfs",
            "pull",
            "--tls-verify=false",
            "--creds",
            "student:s3cret",
            &name,
        ])
        .env("HOME", home.path())
        .output()
        .expect("podman (scripts/test installs it)");
    assert!(
        out.status.success(),
        "podman pull of dockling's push: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    let logout = cmd(&["logout", &server]);
    logout.expect_code(0);
    assert_eq!(
        logout.stdout,
        format!("Removing login credentials for {server}\n")
    );
    cmd(&["rmi", &name]).expect_code(0);
    let refused = cmd(&["pull", &name]);
    refused.expect_code(125);
    assert!(
        refused.stderr.contains("dockling login"),
        "{}",
        refused.stderr
    );
}

#[test]
fn chunked_push_and_cross_repository_mount() {
    let lab = Lab::with_busybox();
    let reg = Registry::start();
    let first = reg.name("me/one:v1");
    lab.cmd(&["tag", "busybox", &first]).expect_code(0);
    let push = lab.cmd_env(
        &["push", &first],
        &[("DOCKLING_PUSH_CHUNK_SIZE", "500000".as_ref())],
    );
    push.expect_code(0);
    let log = std::fs::read_to_string(reg.dir.path().join("access.log")).unwrap();
    assert!(
        log.matches("\"PATCH /v2/me/one/blobs/uploads/").count() >= 2,
        "the busybox layer went up in several chunks:\n{log}"
    );
    // A second repository of the same registry: the blobs are mounted, not sent again.
    let second = reg.name("me/two:v1");
    lab.cmd(&["tag", "busybox", &second]).expect_code(0);
    let mount = lab.cmd(&["push", &second]);
    mount.expect_code(0);
    assert!(
        mount.stdout.contains(": Mounted from me/one"),
        "{}",
        mount.stdout
    );
    assert!(!mount.stdout.contains(": Pushed"), "{}", mount.stdout);
    let fresh = Lab::new();
    fresh.cmd(&["pull", &second]).expect_code(0);
    let run = fresh.run(&[&second, "echo", "mounted"]);
    run.expect_code(0);
    assert_eq!(run.stdout, "mounted\n");
}

#[test]
fn a_credential_helper_keeps_the_password_out_of_the_config_file() {
    let lab = Lab::with_busybox();
    let reg = Registry::start_with_login("student", "s3cret");
    let home = tempfile::tempdir().unwrap();
    // A helper speaking Docker's protocol, keeping what it is given in a file next to itself.
    let bin = home.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let helper = bin.join("docker-credential-labtest");
    std::fs::write(
        &helper,
        "#!/bin/sh\nd=\"$(dirname \"$0\")/kept\"\necho \"$1\" >> \"$(dirname \"$0\")/calls\"\ncase \"$1\" in\n  store) cat > \"$d\" ;;\n  get) read server; [ -f \"$d\" ] || { echo 'credentials not found in native keychain'; exit 1; }; cat \"$d\" ;;\n  erase) rm -f \"$d\" ;;\nesac\n",
    )
    .unwrap();
    std::fs::set_permissions(&helper, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    std::fs::create_dir_all(home.path().join(".dockling")).unwrap();
    std::fs::write(
        home.path().join(".dockling/config.json"),
        r#"{"credsStore": "labtest"}"#,
    )
    .unwrap();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let cmd = |args: &[&str]| {
        lab.cmd_env(
            args,
            &[("HOME", home.path().as_os_str()), ("PATH", path.as_ref())],
        )
    };
    let server = format!("127.0.0.1:{}", reg.port);
    let login = cmd(&["login", "-u", "student", "-p", "s3cret", &server]);
    login.expect_code(0);
    assert!(
        !login.stderr.contains("stored unencrypted"),
        "{}",
        login.stderr
    );
    let file = std::fs::read_to_string(home.path().join(".dockling/config.json")).unwrap();
    assert!(
        !file.contains("auths"),
        "the password went to the file: {file}"
    );
    assert!(std::fs::read_to_string(bin.join("kept"))
        .unwrap()
        .contains("s3cret"));
    let name = reg.name("me/helped:v1");
    cmd(&["tag", "busybox", &name]).expect_code(0);
    cmd(&["push", &name]).expect_code(0);
    assert!(std::fs::read_to_string(bin.join("calls"))
        .unwrap()
        .contains("get"));
    let logout = cmd(&["logout", &server]);
    assert_eq!(
        logout.stdout,
        format!("Removing login credentials for {server}\n")
    );
    assert!(!bin.join("kept").exists(), "erase was not called");
    let denied = cmd(&["push", &name]);
    denied.expect_code(125);
}

#[test]
fn on_a_terminal_pull_draws_a_progress_bar_per_layer() {
    let source = Lab::with_busybox();
    let reg = Registry::start();
    reg.push_busybox(&source, "lab/busybox:v1");
    let lab = Lab::new();
    // script(1) gives dockling a pseudo-terminal as stdout.
    let line = format!(
        "{} pull {}",
        env!("CARGO_BIN_EXE_dockling"),
        reg.name("lab/busybox:v1")
    );
    let out = lab
        .command(&[])
        .get_envs()
        .fold(Command::new("script"), |mut c, (k, v)| {
            if let Some(v) = v {
                c.env(k, v);
            }
            c
        })
        .args(["-qec", &line, "/dev/null"])
        .stdin(Stdio::null())
        .output()
        .expect("script (scripts/test installs bsdutils)");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("Pull complete     [===================="),
        "{text}"
    );
    assert!(text.contains("\x1b["), "no terminal drawing: {text}");
    assert!(text.contains("Status: Downloaded newer image"), "{text}");
}

#[test]
fn pull_trace_explains_each_http_exchange_and_never_shows_credentials() {
    let source = Lab::with_busybox();
    let reg = Registry::start_with_login("student", "s3cret");
    let home = tempfile::tempdir().unwrap();
    let with_home =
        |lab: &Lab, args: &[&str]| lab.cmd_env(args, &[("HOME", home.path().as_os_str())]);
    let server = format!("127.0.0.1:{}", reg.port);
    with_home(
        &source,
        &["login", "-u", "student", "-p", "s3cret", &server],
    )
    .expect_code(0);
    let name = reg.name("me/traced:v1");
    with_home(&source, &["tag", "busybox", &name]).expect_code(0);
    let push = with_home(&source, &["push", "--trace=json", &name]);
    push.expect_code(0);
    let lab = Lab::new();
    let pull = with_home(&lab, &["pull", "--trace=json", &name]);
    pull.expect_code(0);
    for (what, out, want) in [
        (
            "push",
            &push,
            &[
                "challenge",
                "blob.exists",
                "upload.start",
                "upload.commit",
                "manifest.put",
            ][..],
        ),
        ("pull", &pull, &["challenge", "manifest", "blob"][..]),
    ] {
        assert!(
            !out.stderr.contains("s3cret"),
            "{what} trace shows the password"
        );
        // base64("student:s3cret"), as an Authorization header would carry it.
        assert!(
            !out.stderr.contains("c3R1ZGVudDpzM2NyZXQ"),
            "{what} trace shows credentials"
        );
        let events: Vec<serde_json::Value> = out
            .stderr
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{what}: {l}: {e}")))
            .collect();
        if what == "pull" {
            assert!(
                events.iter().any(|e| e["type"] == "note"),
                "{what}: no note saying which registry is asked"
            );
        }
        let events: Vec<serde_json::Value> =
            events.into_iter().filter(|e| e["type"] != "note").collect();
        let kinds: Vec<&str> = events.iter().map(|e| e["kind"].as_str().unwrap()).collect();
        for k in want {
            assert!(kinds.contains(k), "{what} trace has no {k}: {kinds:?}");
        }
        for e in &events {
            assert_eq!(e["type"], "http");
            assert!(e["explain"].is_string() && e["spec"].is_string(), "{e}");
        }
    }
}
