//! The lab: Debian's `docker-registry` on loopback, filled with the lesson images, standing in
//! for Docker Hub on a machine without internet.
//!
//! `lab up` starts the registry (bound to 127.0.0.1 only, storage under dockling's root, its
//! own process group so it outlives the command), builds `busybox`, `httpd` and `hello-world`
//! with the store's own image machinery, pushes them with dockling's own push, and makes the
//! registry the first Docker Hub mirror in the config file, so `dockling pull httpd` is served
//! from it. Run again, it starts what is not running and pushes only what is missing (the
//! images are reproducible). A registry it did not start answering on its address is never
//! used: `lab up` refuses and asks for another port. `lab down` stops the registry and removes the mirror entry; the
//! registry's storage stays for the next `lab up`.

pub mod debian;
pub mod images;

use std::fs;
use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::config::Config;
use crate::error::{Error, Result};
use crate::image::store::Store;
use crate::registry::RegistryError;

/// Debian's registry server.
pub const REGISTRY_BIN: &str = "/usr/bin/docker-registry";

/// Where the lab listens unless `--addr` says otherwise.
pub const DEFAULT_ADDR: &str = "127.0.0.1:5000";

/// What `lab up` recorded about the registry it started.
#[derive(Debug, Serialize, Deserialize)]
struct State {
    /// Where it listens.
    addr: String,
    /// Its process id, when dockling started it.
    pid: Option<i32>,
}

/// The lab's files under a store root.
pub struct Lab {
    dir: PathBuf,
    config_path: PathBuf,
}

/// A registry answering the distribution API at `addr` (200, or 401 asking for login).
pub fn answers(addr: &str) -> bool {
    let Ok(client) = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(2))
        .build()
    else {
        return false;
    };
    client
        .get(format!("http://{addr}/v2/"))
        .send()
        .map(|r| r.headers().contains_key("docker-distribution-api-version"))
        .unwrap_or(false)
}

/// The lab's address, checked: loopback only (the lab serves images to this machine alone).
fn loopback(addr: &str) -> Result<SocketAddr> {
    let parsed: SocketAddr = addr
        .parse()
        .map_err(|_| RegistryError::LabAddr(addr.to_string()))?;
    if !parsed.ip().is_loopback() {
        return Err(RegistryError::LabNotLoopback(addr.to_string()).into());
    }
    Ok(parsed)
}

/// Images `lab up --with` adds to the lesson images.
pub const EXTRAS: &[&str] = &["debian"];

/// The packages the lab needs that are not installed, by Debian package name (`with`: the
/// extra images asked for, which may need more).
pub fn missing_packages(with: &[String]) -> Vec<&'static str> {
    let mut missing = Vec::new();
    if with.iter().any(|w| w == "debian") && !debian::have_debootstrap() {
        missing.push("debootstrap");
    }
    if !Path::new(REGISTRY_BIN).is_file() {
        missing.push("docker-registry");
    }
    if !images::have_busybox() {
        missing.push("busybox-static");
    }
    missing
}

impl Lab {
    /// The lab of the store at `root`, whose mirror entry lives in `config_path`.
    pub fn new(root: &Path, config_path: &Path) -> Lab {
        Lab {
            dir: root.join("lab"),
            config_path: config_path.to_path_buf(),
        }
    }

    fn state(&self) -> Option<State> {
        let text = fs::read(self.dir.join("state.json")).ok()?;
        serde_json::from_slice(&text).ok()
    }

    /// The pid of the registry this lab started, if it still runs.
    fn running_pid(&self, state: &State) -> Option<i32> {
        let pid = state.pid?;
        let exe = fs::read_link(format!("/proc/{pid}/exe")).ok()?;
        let cmdline = fs::read(format!("/proc/{pid}/cmdline")).ok()?;
        let ours = exe.to_string_lossy().starts_with(REGISTRY_BIN)
            && String::from_utf8_lossy(&cmdline).contains(&*self.dir.to_string_lossy());
        ours.then_some(pid)
    }

    fn registry_config(&self, addr: &str) -> String {
        format!(
            "# Written by `dockling lab up`: the lab registry, on loopback only.\n\
             version: 0.1\n\
             log:\n  level: warn\n  accesslog:\n    disabled: true\n\
             storage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\n\
             http:\n  addr: {addr}\n",
            self.dir.join("registry").display()
        )
    }

    /// Start the registry (unless it runs), build and push the images, add the mirror.
    /// `with`: extra images to build and push too ([`EXTRAS`]).
    pub fn up(
        &self,
        addr: &str,
        with: &[String],
        config: &Config,
        out: &mut dyn Write,
    ) -> Result<()> {
        let missing = missing_packages(with);
        if !missing.is_empty() {
            return Err(RegistryError::LabPackages(missing.join(" ")).into());
        }
        loopback(addr)?;
        // The store root gets its modes before the lab's directory is made inside it.
        if let Some(root) = self.dir.parent() {
            crate::image::store::secure_root(root)?;
        }
        fs::create_dir_all(self.dir.join("registry")).map_err(Error::io("create", &self.dir))?;
        let state = self.state();
        let running = state
            .as_ref()
            .and_then(|s| self.running_pid(s).map(|p| (p, &s.addr)));
        match running {
            Some((pid, at)) if at == addr => {
                let _ = writeln!(out, "registry: already running (pid {pid}) on {addr}");
            }
            Some((pid, at)) => {
                return Err(RegistryError::LabElsewhere {
                    at: at.clone(),
                    pid,
                    addr: addr.to_string(),
                }
                .into())
            }
            // Something else answers there (a developer's own registry, another store's lab):
            // pushing the lesson images into it and making it the Docker Hub mirror would
            // fill a registry that is not ours and pull from one we do not control. Only the
            // registry this lab started (its pid in state.json, still our docker-registry
            // with our storage, checked above) is used again.
            None if answers(addr) => {
                return Err(RegistryError::LabAddrTaken(addr.to_string()).into())
            }
            None => {
                let pid = self.start(addr)?;
                let _ = writeln!(
                    out,
                    "registry: started docker-registry (pid {pid}) on {addr}, storage in {}",
                    self.dir.join("registry").display()
                );
            }
        }

        // Build into a scratch store, push, and throw the scratch store away: the images live
        // in the registry, and `dockling pull` brings them into the real store like any other.
        let scratch = self.dir.join(format!(".build-{}", std::process::id()));
        let _ = fs::remove_dir_all(&scratch);
        let result = (|| -> Result<()> {
            let store = Store::open(&scratch)?;
            let lab_config = Config {
                insecure_registries: Some(vec![addr.to_string()]),
                ..config.clone()
            };
            let mut built = images::build(&store, addr)?;
            if with.iter().any(|w| w == "debian") {
                built.extend(debian::Debian::new(&self.dir).build(&store, addr, out)?);
            }
            for (reference, image) in built {
                let mut log = Vec::new();
                crate::registry::push::push(&store, &image, &reference, &lab_config, &mut log)?;
                let log = String::from_utf8_lossy(&log);
                let pushed = log.lines().filter(|l| l.ends_with(": Pushed")).count();
                let name = reference.repository.trim_start_matches("library/");
                let name = match reference.tag.as_deref() {
                    Some(t) if t != "latest" => format!("{name}:{t}"),
                    _ => name.to_string(),
                };
                let _ = writeln!(
                    out,
                    "image:    {name:<12} {} ({})",
                    &image.manifest_digest[..19],
                    match pushed {
                        0 => "already there".to_string(),
                        n => format!("pushed {n} blob{}", if n == 1 { "" } else { "s" }),
                    }
                );
            }
            Ok(())
        })();
        let _ = fs::remove_dir_all(&scratch);
        result?;

        let url = format!("http://{addr}");
        let added = crate::config::add_mirror(&self.config_path, &url)?;
        let _ = writeln!(
            out,
            "mirror:   {url} for Docker Hub in {}{}",
            self.config_path.display(),
            if added { " (added)" } else { "" }
        );
        let _ = writeln!(
            out,
            "The lab is up: `dockling pull httpd` now pulls from it. `dockling lab down` stops it."
        );
        Ok(())
    }

    fn save(&self, state: &State) -> Result<()> {
        crate::container::write_atomic(
            &self.dir.join("state.json"),
            &serde_json::to_vec_pretty(state).expect("json"),
        )
    }

    /// Start docker-registry in its own session, wait (bounded) until it answers.
    fn start(&self, addr: &str) -> Result<i32> {
        let config = self.dir.join("registry.yml");
        crate::container::write_atomic(&config, self.registry_config(addr).as_bytes())?;
        let log_path = self.dir.join("registry.log");
        let log = fs::File::create(&log_path).map_err(Error::io("create", &log_path))?;
        let log2 = log.try_clone().map_err(Error::io("open", &log_path))?;
        let mut cmd = Command::new(REGISTRY_BIN);
        cmd.arg("serve")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log2)
            .current_dir(&self.dir);
        // SAFETY: setsid is async-signal-safe; it runs in the forked child before exec so the
        // registry leaves our session and survives this command and its terminal.
        unsafe {
            std::os::unix::process::CommandExt::pre_exec(&mut cmd, || {
                nix::unistd::setsid()
                    .map(|_| ())
                    .map_err(std::io::Error::from)
            });
        }
        let mut child = cmd.spawn().map_err(|source| RegistryError::LabStart {
            program: REGISTRY_BIN,
            source,
        })?;
        let pid = child.id() as i32;
        self.save(&State {
            addr: addr.into(),
            pid: Some(pid),
        })?;
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = child.try_wait() {
                let log = fs::read_to_string(&log_path).unwrap_or_default();
                let tail: Vec<&str> = log.lines().rev().take(5).collect();
                let _ = fs::remove_file(self.dir.join("state.json"));
                return Err(RegistryError::LabExited {
                    status,
                    log: log_path,
                    tail: tail.into_iter().rev().collect::<Vec<_>>().join("\n"),
                }
                .into());
            }
            if answers(addr) {
                // Not waited for: it runs on, owned by init once we exit.
                drop(child);
                return Ok(pid);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::SIGKILL);
        let _ = child.wait();
        let _ = fs::remove_file(self.dir.join("state.json"));
        Err(RegistryError::LabTimeout {
            addr: addr.to_string(),
            log: log_path,
        }
        .into())
    }

    /// Stop the registry dockling started and remove the mirror entry.
    pub fn down(&self, out: &mut dyn Write) -> Result<()> {
        let state = self.state();
        match state.as_ref() {
            Some(s) => {
                match self.running_pid(s) {
                    Some(pid) => {
                        stop(pid)?;
                        let _ = writeln!(out, "registry: stopped (pid {pid}); its images stay in {} for the next `lab up`", self.dir.join("registry").display());
                    }
                    None if s.pid.is_none() => {
                        let _ = writeln!(
                            out,
                            "registry: left running on {} (dockling did not start it)",
                            s.addr
                        );
                    }
                    None => {
                        let _ = writeln!(out, "registry: was not running");
                    }
                }
                let url = format!("http://{}", s.addr);
                if crate::config::remove_mirror(&self.config_path, &url)? {
                    let _ = writeln!(
                        out,
                        "mirror:   {url} removed from {}",
                        self.config_path.display()
                    );
                }
                let _ = fs::remove_file(self.dir.join("state.json"));
            }
            None => {
                let _ = writeln!(out, "The lab is not up: nothing to stop.");
            }
        }
        Ok(())
    }

    /// What runs where. Returns whether the lab is up.
    pub fn status(&self, config: &Config, out: &mut dyn Write) -> Result<bool> {
        let Some(state) = self.state() else {
            let _ = writeln!(out, "registry: not started (`dockling lab up` starts it)");
            return Ok(false);
        };
        let pid = self.running_pid(&state);
        let up = answers(&state.addr);
        let _ = match (pid, up) {
            (Some(pid), true) => writeln!(
                out,
                "registry: running (pid {pid}) on {}, storage in {}",
                state.addr,
                self.dir.join("registry").display()
            ),
            (None, true) => writeln!(
                out,
                "registry: answering on {} (not started by dockling)",
                state.addr
            ),
            (Some(pid), false) => writeln!(
                out,
                "registry: pid {pid} runs but does not answer on {}: see {}",
                state.addr,
                self.dir.join("registry.log").display()
            ),
            (None, false) => writeln!(
                out,
                "registry: stopped (the machine restarted?): `dockling lab up` starts it again"
            ),
        };
        let url = format!("http://{}", state.addr);
        let mirrored = config
            .registry_mirrors
            .iter()
            .flatten()
            .any(|m| m.trim_end_matches('/') == url);
        let _ = writeln!(
            out,
            "mirror:   {}",
            if mirrored {
                format!("{url} for Docker Hub in {}", self.config_path.display())
            } else {
                format!("not configured in {}", self.config_path.display())
            }
        );
        if up {
            let _ = writeln!(out, "images:   {}", catalog(&state.addr).join(" "));
        }
        Ok(up)
    }
}

/// `GET /v2/_catalog`: the repositories of a registry.
#[derive(Deserialize, Default)]
struct Catalog {
    repositories: Option<Vec<String>>,
}

/// `GET /v2/<name>/tags/list`: the tags of a repository (`null` when it has none).
#[derive(Deserialize, Default)]
struct TagList {
    tags: Option<Vec<String>>,
}

/// `repository:tag` for everything the registry at `addr` holds (bounded).
fn catalog(addr: &str) -> Vec<String> {
    let Ok(client) = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
    else {
        return Vec::new();
    };
    fn get<T: serde::de::DeserializeOwned>(
        client: &reqwest::blocking::Client,
        url: String,
    ) -> Option<T> {
        let resp = client.get(url).send().ok()?;
        // A catalog page of 100 names is far below 4 MiB; never read more.
        let mut body = Vec::new();
        std::io::Read::read_to_end(&mut std::io::Read::take(resp, 4 << 20), &mut body).ok()?;
        serde_json::from_slice(&body).ok()
    }
    let mut out = Vec::new();
    let repos: Catalog =
        get(&client, format!("http://{addr}/v2/_catalog?n=100")).unwrap_or_default();
    for r in repos.repositories.iter().flatten() {
        let tags: TagList =
            get(&client, format!("http://{addr}/v2/{r}/tags/list")).unwrap_or_default();
        for t in tags.tags.iter().flatten() {
            out.push(format!("{}:{t}", r.trim_start_matches("library/")));
        }
    }
    out.sort();
    out
}

/// SIGTERM, then (after 5 s) SIGKILL; wait until the process is gone.
fn stop(pid: i32) -> Result<()> {
    use nix::sys::signal::{kill, Signal};
    let p = nix::unistd::Pid::from_raw(pid);
    let _ = kill(p, Signal::SIGTERM);
    let gone = || !Path::new(&format!("/proc/{pid}")).exists() || is_zombie(pid);
    for i in 0..100 {
        if gone() {
            return Ok(());
        }
        if i == 50 {
            let _ = kill(p, Signal::SIGKILL);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Err(RegistryError::LabStuck(pid).into())
}

fn is_zombie(pid: i32) -> bool {
    fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| {
            s.rsplit_once(") ")
                .is_some_and(|(_, rest)| rest.starts_with('Z'))
        })
        .unwrap_or(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lab_listens_on_loopback_only() {
        assert!(loopback("127.0.0.1:5000").is_ok());
        assert!(loopback("[::1]:5000").is_ok());
        let e = loopback("0.0.0.0:5000").unwrap_err().to_string();
        assert!(e.contains("loopback only"), "{e}");
        let e = loopback("localhost").unwrap_err().to_string();
        assert!(e.contains("IP address and port"), "{e}");
    }
}
