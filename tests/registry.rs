//! Pulling from a real registry: Debian's docker-registry on a loopback port, filled by skopeo
//! from an image dockling imported (so this also checks skopeo reads dockling's store).

mod common;
use common::Lab;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A docker-registry on 127.0.0.1:<free port>, stopped (by its pid) when dropped.
struct Registry {
    child: Child,
    dir: tempfile::TempDir,
    port: u16,
}

impl Registry {
    fn start() -> Registry {
        let dir = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let config = format!(
            "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n",
            dir.path().join("data").display()
        );
        std::fs::write(dir.path().join("config.yml"), config).unwrap();
        let child = Command::new("docker-registry")
            .args(["serve", dir.path().join("config.yml").to_str().unwrap()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("docker-registry (scripts/test installs the docker-registry package)");
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "docker-registry did not listen on {port} within 10 s"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Registry { child, dir, port }
    }

    fn name(&self, repo: &str) -> String {
        format!("127.0.0.1:{}/{repo}", self.port)
    }

    /// Push the lab's busybox there with skopeo.
    fn push_busybox(&self, lab: &Lab, repo: &str) {
        let src = format!(
            "oci:{}:docker.io/library/busybox:latest",
            lab.root().join("oci").display()
        );
        let dst = format!("docker://{}", self.name(repo));
        let out = Command::new("skopeo")
            .args(["copy", "--dest-tls-verify=false", &src, &dst])
            .output()
            .expect("skopeo");
        assert!(
            out.status.success(),
            "skopeo copy: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = &self.dir;
    }
}

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
fn unknown_images_and_tampered_blobs_are_clear_errors_and_leave_nothing() {
    let source = Lab::with_busybox();
    let reg = Registry::start();
    reg.push_busybox(&source, "lab/busybox:v1");
    let lab = Lab::new();
    let missing = lab.cmd(&["pull", &reg.name("lab/nothing:v1")]);
    missing.expect_code(125);
    assert!(missing.stderr.contains("not found"), "{}", missing.stderr);
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
