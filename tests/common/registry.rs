//! Debian's `docker-registry` on a free loopback port, for the tests that pull from and push
//! to a real registry (scripts/test installs the docker-registry, skopeo and apache2-utils
//! packages). One harness for all of them: it always stops the registry it started, by its
//! pid, when dropped, also when the registry never listens (the wait is bounded, and a
//! registry that exits at once is reported with its log).

use std::process::{Child, Command};
use std::time::Duration;

use super::Lab;

/// A docker-registry on 127.0.0.1:<free port>, its storage and log in a temporary directory;
/// stopped (by its pid) when dropped.
pub struct DockerRegistry {
    child: Child,
    /// Its configuration, storage (`data/`) and log (`access.log`, one line per request).
    pub dir: tempfile::TempDir,
    /// Where it listens on 127.0.0.1.
    pub port: u16,
}

impl DockerRegistry {
    /// An empty registry open to everyone.
    pub fn start() -> DockerRegistry {
        DockerRegistry::start_with(None)
    }

    /// An empty registry that wants `user`/`password` (htpasswd, bcrypt) for everything.
    pub fn start_with_login(user: &str, password: &str) -> DockerRegistry {
        DockerRegistry::start_with(Some((user, password)))
    }

    fn start_with(login: Option<(&str, &str)>) -> DockerRegistry {
        let dir = tempfile::tempdir().unwrap();
        let port = super::free_port();
        // Level info: the access log (which blobs were fetched, how a push went up) is kept.
        let config = format!(
            "version: 0.1\nlog:\n  level: info\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n",
            dir.path().join("data").display()
        );
        let config = match login {
            None => config,
            Some((user, password)) => {
                let out = Command::new("htpasswd")
                    .args(["-Bbn", user, password])
                    .output()
                    .expect("htpasswd (scripts/test installs apache2-utils)");
                assert!(out.status.success());
                let file = dir.path().join("htpasswd");
                std::fs::write(&file, out.stdout).unwrap();
                format!(
                    "{config}auth:\n  htpasswd:\n    realm: dockling-test\n    path: {}\n",
                    file.display()
                )
            }
        };
        std::fs::write(dir.path().join("config.yml"), config).unwrap();
        let log = std::fs::File::create(dir.path().join("access.log")).unwrap();
        let child = Command::new("docker-registry")
            .args(["serve", dir.path().join("config.yml").to_str().unwrap()])
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("docker-registry (scripts/test installs the docker-registry package)");
        // From here on, dropping `reg` (a panic below included) kills the registry.
        let mut reg = DockerRegistry { child, dir, port };
        super::wait_until(
            Duration::from_secs(10),
            &format!("docker-registry to listen on {port}"),
            || {
                if let Ok(Some(status)) = reg.child.try_wait() {
                    panic!("docker-registry exited ({status}):\n{}", reg.log());
                }
                std::net::TcpStream::connect(("127.0.0.1", port)).ok()
            },
        );
        reg
    }

    /// `127.0.0.1:<port>/<repo>`, a reference to `repo` here.
    pub fn name(&self, repo: &str) -> String {
        format!("127.0.0.1:{}/{repo}", self.port)
    }

    /// Copy `local` (an image of `lab`, `busybox:latest`) to `repo` here, with skopeo.
    pub fn push(&self, lab: &Lab, local: &str, repo: &str) {
        let src = format!(
            "oci:{}:docker.io/library/{local}",
            lab.root().join("oci").display()
        );
        let out = Command::new("skopeo")
            .args([
                "copy",
                "--dest-tls-verify=false",
                &src,
                &format!("docker://{}", self.name(repo)),
            ])
            .output()
            .expect("skopeo (scripts/test installs it)");
        assert!(
            out.status.success(),
            "skopeo copy: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Copy `lab`'s busybox to `repo` here.
    pub fn push_busybox(&self, lab: &Lab, repo: &str) {
        self.push(lab, "busybox:latest", repo);
    }

    /// What it logged so far (every request, at level info).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("access.log")).unwrap_or_default()
    }

    /// How many times `GET …/blobs/<digest>` was answered.
    pub fn blob_gets(&self, digest: &str) -> usize {
        self.log()
            .lines()
            .filter(|l| l.contains("\"GET ") && l.contains(&format!("/blobs/{digest}")))
            .count()
    }
}

impl Drop for DockerRegistry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
