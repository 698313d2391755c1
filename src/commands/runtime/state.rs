//! What the runtime keeps about its containers, one directory each under `--root`
//! (`/run/dockling-runc` by default, a tmpfs: a reboot ends every container, and their state
//! with them):
//!
//! ```text
//! <root>/                 0700 root
//!   <id>/                 0711
//!     state.json          0600  the Record (replaced atomically, never edited in place)
//!     exec.fifo           0622  a FIFO that exists exactly while the container is `created`
//!     lock                0600  create, start, kill, delete and update of one id take turns
//! ```
//!
//! A container's status is never stored: it is read from the world each time (the process
//! alive and still the one recorded, the FIFO present, the cgroup frozen), so a container
//! whose process died while nobody watched reads `stopped` without anyone writing it down.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The runtime spec version this runtime speaks.
pub use super::OCI_VERSION;

/// A container's id, as runc takes them: letters, digits and `_ + . -`, not `.` or `..`
/// (an id names a directory under `--root`).
pub fn check_id(id: &str) -> Result<()> {
    let ok = !id.is_empty()
        && id.len() <= 1024
        && id != "."
        && id != ".."
        && !id.starts_with(".trash-")
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_+.-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(Error::Usage(format!(
            "invalid container id {id:?}: use letters, digits and _ + . - only"
        )))
    }
}

/// A process named by its pid and its start time (the pid alone may be another's by now).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Proc {
    /// Its pid, as the host sees it.
    pub pid: i32,
    /// Field 22 of `/proc/<pid>/stat` when it was recorded.
    pub start: u64,
}

impl Proc {
    /// The process of `pid` now, if there is one.
    pub fn of(pid: i32) -> Option<Proc> {
        crate::container::process_start_time(pid).map(|start| Proc { pid, start })
    }

    /// True while this very process runs (not a zombie: a container whose init is a zombie
    /// has stopped; its parent merely has not collected it yet).
    pub fn alive(&self) -> bool {
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{}/stat", self.pid)) else {
            return false;
        };
        // Field 3 (the state) follows the command name, which may hold spaces and parens.
        let Some(rest) = stat.rfind(')').map(|i| &stat[i + 2..]) else {
            return false;
        };
        let mut fields = rest.split(' ');
        let state = fields.next();
        let start = fields.nth(18).and_then(|s| s.parse::<u64>().ok());
        state != Some("Z") && state != Some("X") && start == Some(self.start)
    }
}

/// The cgroup a container was given: `linux.cgroupsPath` split into its parent and its name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CgroupAt {
    /// The parent group, relative to each hierarchy's root.
    pub parent: String,
    /// The container's own group under it.
    pub name: String,
}

/// What the runtime keeps about one container: written by `create`, read by every other
/// command.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Record {
    /// The runtime spec version of the config it was made from.
    pub oci_version: String,
    /// The id its caller chose.
    pub id: String,
    /// The `create` still making it (set first, so a create killed midway leaves a record that
    /// `delete --force` can clean up); `None` once it is made. While it lives the container is
    /// `creating`, whatever its first process does.
    pub creating: Option<Proc>,
    /// Its first process, recorded right after `clone` (so a killed create's is known).
    pub init: Option<Proc>,
    /// The bundle's directory, absolute.
    pub bundle: PathBuf,
    /// Its root file system, absolute.
    pub rootfs: PathBuf,
    /// When it was created, RFC 3339 with nanoseconds.
    pub created: String,
    /// The config's annotations.
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    /// Its cgroup (`None` with `--cgroup-manager disabled`).
    pub cgroup: Option<CgroupAt>,
    /// The JSON-lines trace file its commands append to (`DOCKLING_TRACE` at create), if any.
    pub trace: Option<PathBuf>,
    /// The program its first process will run (as found in its `PATH` by create), for the
    /// `execve` that `start` records on its behalf.
    #[serde(default)]
    pub program: Option<String>,
    /// `--no-pivot`: the root was entered with `chroot(2)`, so `exec` enters it the same way
    /// (the mount namespace's own root is the host's).
    #[serde(default)]
    pub no_pivot: bool,
    /// The config it was made from, as read then: later edits of the bundle change nothing.
    pub config: serde_json::Value,
}

/// The states of the runtime spec's lifecycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// `create` is still making it.
    Creating,
    /// Made, its process waiting for `start`.
    Created,
    /// Its program runs.
    Running,
    /// Its cgroup is frozen (`pause`).
    Paused,
    /// Its first process has ended.
    Stopped,
}

impl Status {
    /// The name the runtime spec (and runc's `state`) gives it.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Creating => "creating",
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Stopped => "stopped",
        }
    }
}

impl Record {
    /// Its status now, read from the world (see the module documentation).
    pub fn status(&self, dir: &Path) -> Status {
        if self.creating.is_some_and(|c| c.alive()) {
            return Status::Creating;
        }
        match self.init {
            Some(p) if p.alive() => {
                // Frozen first: runc lets a created container be paused too, and it then
                // reads paused (and cannot be started until it is resumed).
                if self.cgroup().is_some_and(|cg| cg.is_frozen()) {
                    Status::Paused
                } else if dir.join("exec.fifo").exists() {
                    Status::Created
                } else {
                    Status::Running
                }
            }
            _ => Status::Stopped,
        }
    }

    /// Its cgroup on this host's hierarchies, if it has one.
    pub fn cgroup(&self) -> Option<crate::cgroups::Cgroup> {
        let at = self.cgroup.as_ref()?;
        crate::cgroups::Cgroup::new(&at.parent, &at.name).ok()
    }

    /// The pid its `state` shows: its first process's while that runs, else 0 (as runc).
    pub fn shown_pid(&self, status: Status) -> i32 {
        match (status, self.init) {
            (Status::Created | Status::Running | Status::Paused, Some(p)) => p.pid,
            _ => 0,
        }
    }

    /// runc's `state` document: the runtime spec's state, plus runc's `created` and `owner`.
    pub fn runc_state(&self, status: Status) -> serde_json::Value {
        let mut doc = serde_json::json!({
            "ociVersion": self.oci_version,
            "id": self.id,
            "pid": self.shown_pid(status),
            "status": status.as_str(),
            "bundle": self.bundle,
            "rootfs": self.rootfs,
            "created": self.created,
            "owner": "",
        });
        if !self.annotations.is_empty() {
            doc["annotations"] = serde_json::to_value(&self.annotations).unwrap_or_default();
        }
        doc
    }
}

/// The directory of every container's state (`--root`).
pub struct StateRoot {
    dir: PathBuf,
}

impl StateRoot {
    /// The state root at `dir`, made (0700) when missing. A root another user owns, or one
    /// others may write to, is refused: whoever can write there can make this runtime signal
    /// any process or remove any directory.
    pub fn open(dir: &Path) -> Result<StateRoot> {
        use std::os::unix::fs::{DirBuilderExt, MetadataExt};
        match std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
        {
            Ok(()) => {}
            Err(e) => return Err(Error::io("create the state root", dir)(e)),
        }
        let meta = std::fs::symlink_metadata(dir).map_err(Error::io("read", dir))?;
        if !meta.is_dir() || meta.uid() != 0 || meta.mode() & 0o022 != 0 {
            return Err(Error::Usage(format!(
                "the state root {} must be a directory root owns that only root can write to \
                 (chown root {0}; chmod 700 {0}), or give another with --root",
                dir.display()
            )));
        }
        Ok(StateRoot {
            dir: dir.to_path_buf(),
        })
    }

    /// The directory of container `id`.
    pub fn dir_of(&self, id: &str) -> PathBuf {
        self.dir.join(id)
    }

    /// The record of container `id`.
    pub fn load(&self, id: &str) -> Result<Record> {
        check_id(id)?;
        let path = self.dir_of(id).join("state.json");
        let text = match std::fs::read(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(Error::NotFound(format!("container {id:?} does not exist")))
            }
            Err(e) => return Err(Error::io("read", &path)(e)),
        };
        serde_json::from_slice(&text).map_err(|e| {
            Error::Corrupt(format!(
                "{}: {e} (remove the container with `delete --force {id}`)",
                path.display()
            ))
        })
    }

    /// Write container `id`'s record (its directory exists).
    pub fn save(&self, record: &Record) -> Result<()> {
        let text = serde_json::to_vec(record)
            .map_err(|e| Error::Corrupt(format!("state of {}: {e}", record.id)))?;
        crate::files::replace_atomic(&self.dir_of(&record.id).join("state.json"), &text)
    }

    /// Take container `id`'s lock: commands on one container take turns.
    pub fn lock(&self, id: &str) -> Result<crate::files::Lock> {
        crate::files::lock(&self.dir_of(id).join("lock"))
    }

    /// Container `id`'s lock, then its record read under it (what another command changed
    /// while this one waited is what it sees).
    pub fn lock_and_load(&self, id: &str) -> Result<(crate::files::Lock, Record)> {
        check_id(id)?;
        if !self.dir_of(id).is_dir() {
            return Err(Error::NotFound(format!("container {id:?} does not exist")));
        }
        let lock = self.lock(id)?;
        Ok((lock, self.load(id)?))
    }

    /// The ids of every container with a directory here, sorted.
    pub fn ids(&self) -> Result<Vec<String>> {
        let mut ids: Vec<String> = std::fs::read_dir(&self.dir)
            .map_err(Error::io("list", &self.dir))?
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter(|n| check_id(n).is_ok() && !n.starts_with(".trash-"))
            .collect();
        ids.sort();
        Ok(ids)
    }

    /// Remove container `id`'s directory: renamed away first, so a half-removed one is never
    /// mistaken for a container.
    pub fn remove(&self, id: &str) -> Result<()> {
        let dir = self.dir_of(id);
        let trash = self
            .dir
            .join(format!(".trash-{id}-{}", crate::files::random_hex::<4>()));
        match std::fs::rename(&dir, &trash) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(Error::io("remove", &dir)(e)),
        }
        std::fs::remove_dir_all(&trash).map_err(Error::io("remove", &trash))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(id: &str, init: Option<Proc>) -> Record {
        Record {
            oci_version: OCI_VERSION.into(),
            id: id.into(),
            creating: None,
            init,
            bundle: "/b".into(),
            rootfs: "/b/rootfs".into(),
            created: "2026-11-30T00:00:00.000000000Z".into(),
            annotations: BTreeMap::new(),
            cgroup: None,
            trace: None,
            program: None,
            no_pivot: false,
            config: serde_json::json!({}),
        }
    }

    #[test]
    fn ids_are_runcs() {
        for ok in ["a", "web-1", "x_y.z+1", "A9"] {
            assert!(check_id(ok).is_ok(), "{ok}");
        }
        for bad in ["", ".", "..", "a/b", "a b", "ü", &"x".repeat(1025)] {
            let err = check_id(bad).unwrap_err().to_string();
            assert!(err.contains("invalid container id"), "{bad}: {err}");
        }
    }

    #[test]
    fn status_is_read_from_the_process_and_the_fifo() {
        let dir = tempfile::tempdir().unwrap();
        let mut child = std::process::Command::new("sleep")
            .arg("100")
            .spawn()
            .unwrap();
        let pid = child.id() as i32;
        let me = Proc::of(pid).unwrap();
        let r = record("c", Some(me));
        assert_eq!(r.status(dir.path()), Status::Running);
        assert_eq!(r.runc_state(Status::Running)["pid"], pid);
        // The FIFO present: created, waiting for start.
        nix::unistd::mkfifo(&dir.path().join("exec.fifo"), nix::sys::stat::Mode::S_IRWXU).unwrap();
        assert_eq!(r.status(dir.path()), Status::Created);
        std::fs::remove_file(dir.path().join("exec.fifo")).unwrap();
        // Another process with the same pid (a different start time) is not it.
        let other = record(
            "c",
            Some(Proc {
                pid,
                start: me.start + 1,
            }),
        );
        assert_eq!(other.status(dir.path()), Status::Stopped);
        // Killed but not yet collected: a zombie is stopped, and `state` shows pid 0.
        child.kill().unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while r.status(dir.path()) != Status::Stopped {
            assert!(std::time::Instant::now() < deadline, "still alive");
            std::thread::yield_now();
        }
        assert_eq!(r.runc_state(Status::Stopped)["pid"], 0);
        child.wait().unwrap();
        // A create that died before it made anything: stopped, not creating forever.
        let mut half = record("c", None);
        half.creating = Some(me);
        assert_eq!(half.status(dir.path()), Status::Stopped);
        half.creating = Proc::of(std::process::id() as i32);
        assert_eq!(half.status(dir.path()), Status::Creating);
    }

    #[test]
    fn the_state_root_keeps_records_and_refuses_an_open_one() {
        use std::os::unix::fs::PermissionsExt;
        let tmp = tempfile::tempdir().unwrap();
        let root = StateRoot::open(&tmp.path().join("state")).unwrap();
        let mode = std::fs::metadata(tmp.path().join("state"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o700);
        let err = root.load("nosuch").unwrap_err().to_string();
        assert_eq!(err, "container \"nosuch\" does not exist");
        std::fs::create_dir(root.dir_of("b")).unwrap();
        std::fs::create_dir(root.dir_of("a")).unwrap();
        let r = record("a", Proc::of(std::process::id() as i32));
        root.save(&r).unwrap();
        assert_eq!(root.load("a").unwrap(), r);
        assert_eq!(root.ids().unwrap(), ["a", "b"]);
        root.remove("a").unwrap();
        assert_eq!(root.ids().unwrap(), ["b"]);
        assert_eq!(
            std::fs::read_dir(tmp.path().join("state")).unwrap().count(),
            1
        );
        // Group-writable: refused, with what to do.
        std::fs::set_permissions(
            tmp.path().join("state"),
            std::fs::Permissions::from_mode(0o770),
        )
        .unwrap();
        let err = StateRoot::open(&tmp.path().join("state"))
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("chmod 700"), "{err}");
    }
}
