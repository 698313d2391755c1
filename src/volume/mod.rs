//! Volumes: directories of the store that outlive containers, as Docker's `local` driver
//! keeps them (`/var/lib/docker/volumes/<name>/_data`).
//!
//! `<root>/volumes/<name>/` holds `_data` (what containers see, bind-mounted like a `-v`
//! host directory) and `opts.json` (creation time and labels). A volume is made in a
//! temporary directory (`.tmp-<pid>-<start>-<random>`, see [`crate::files::temp_name`]) and
//! renamed to its name only when complete, so a killed command leaves a temporary directory
//! (swept by the next open once its owner is gone), never half a volume. Removal renames to
//! `.trash.tmp-<pid>-<start>-<random>` under the lock, then deletes after it. `volumes/.lock` is held by whoever
//! checks which containers use a volume and trashes it, and by `run` from creating its volumes until
//! its record names them, so `volume rm` never deletes a volume a container is being created
//! with. An anonymous volume carries Docker's label `com.docker.volume.anonymous`.
//!
//! [`copy_up`] fills a new, empty volume with the image's content at its mount point
//! (Docker's copy-up) fd to fd (`layers::copy::copy_dir`): the image's directory is walked
//! beneath its fd without following symlinks or crossing mounts, and written into `_data`
//! with every parent resolved inside it, so a symlink in the image (to `/etc`, to `../../..`)
//! is copied as a symlink and never followed on the host. A `.copying` marker beside `_data`
//! lives while a copy runs: a copy that never finished is redone by the next start.

use std::collections::BTreeMap;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Docker's label on anonymous volumes (since 23.0; `volume prune` without `-a` removes only
/// these).
pub const ANONYMOUS_LABEL: &str = "com.docker.volume.anonymous";

/// Errors of the volume store.
#[derive(Debug, thiserror::Error)]
pub enum VolumeError {
    /// No volume of that name.
    #[error("get {0}: no such volume")]
    NotFound(String),
    /// A name Docker's `local` driver refuses.
    #[error("create {0}: {0:?} includes invalid characters for a local volume name, only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed. If you intended to pass a host directory, use absolute path")]
    BadName(String),
    /// A container (running or not) uses it.
    #[error("remove {name}: volume is in use - [{}]", containers.join(", "))]
    InUse {
        /// The volume.
        name: String,
        /// The ids of the containers that use it.
        containers: Vec<String>,
    },
    /// A driver other than `local`.
    #[error("create {name}: error looking up volume plugin {driver}: plugin {driver:?} not found (dockling has only the local driver)")]
    Driver {
        /// The volume.
        name: String,
        /// The driver asked for.
        driver: String,
    },
}

/// Docker's rule for local volume names: `[a-zA-Z0-9][a-zA-Z0-9_.-]+` (so never `..`, `/`
/// or a leading dot).
pub fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphanumeric())
        && name.len() >= 2
        && name.len() <= 255
        && chars.all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
}

/// A fresh anonymous name: 64 hex digits, as Docker's.
pub fn random_name() -> String {
    crate::files::random_hex::<32>()
}

/// What `opts.json` records.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Opts {
    #[serde(rename = "CreatedAt")]
    created_at: String,
    #[serde(rename = "Labels", default)]
    labels: BTreeMap<String, String>,
}

/// One volume as `volume inspect` shows it.
#[derive(Debug, Clone)]
pub struct Volume {
    /// Its name.
    pub name: String,
    /// RFC 3339, seconds.
    pub created_at: String,
    /// `--label`s (and Docker's anonymous label).
    pub labels: BTreeMap<String, String>,
    /// The `_data` directory.
    pub mountpoint: PathBuf,
}

impl Volume {
    /// Made for one container (`-v /path`, an image's `VOLUME`).
    pub fn anonymous(&self) -> bool {
        self.labels.contains_key(ANONYMOUS_LABEL)
    }

    /// Docker's JSON for `volume inspect`.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "CreatedAt": self.created_at,
            "Driver": "local",
            "Labels": self.labels,
            "Mountpoint": self.mountpoint,
            "Name": self.name,
            "Options": null,
            "Scope": "local",
        })
    }
}

/// The volumes of one store root.
pub struct Volumes {
    dir: PathBuf,
}

impl Volumes {
    /// `<root>/volumes`, made 0700 (volumes hold containers' setuid files and device nodes),
    /// with what killed commands left swept.
    pub fn open(root: &Path) -> Result<Volumes> {
        let dir = root.join("volumes");
        match std::fs::DirBuilder::new()
            .mode(0o700)
            .recursive(true)
            .create(&dir)
        {
            Ok(()) => {}
            Err(e) => return Err(Error::io("create", &dir)(e)),
        }
        let v = Volumes { dir };
        v.sweep();
        Ok(v)
    }

    /// `<root>/volumes` of a store that may not exist yet (nothing is created).
    pub fn at(root: &Path) -> Volumes {
        Volumes {
            dir: root.join("volumes"),
        }
    }

    /// The lock held while volumes are checked for use and removed, or made for a container
    /// whose record does not exist yet.
    pub fn lock(&self) -> Result<crate::files::Lock> {
        crate::files::lock(&self.dir.join(".lock"))
    }

    /// Where the volume `name` keeps its data.
    pub fn data(&self, name: &str) -> PathBuf {
        self.dir.join(name).join("_data")
    }

    /// Remove trash and the temporary directories of dead processes.
    fn sweep(&self) {
        let Ok(rd) = std::fs::read_dir(&self.dir) else {
            return;
        };
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let garbage = (name.starts_with(".trash") || name.starts_with(".tmp-"))
                && !crate::files::owner_alive(&name);
            if garbage {
                if let Ok(dir) = crate::sys::fs::open_root(&self.dir) {
                    let _ = crate::sys::fs::remove_at(dir.as_fd(), &e.file_name());
                }
            }
        }
    }

    /// The volume `name`.
    pub fn get(&self, name: &str) -> Result<Volume> {
        if !valid_name(name) {
            return Err(VolumeError::NotFound(name.to_string()).into());
        }
        let dir = self.dir.join(name);
        let opts = match std::fs::read(dir.join("opts.json")) {
            Ok(b) => serde_json::from_slice::<Opts>(&b)
                .map_err(|e| Error::Corrupt(format!("volume {name}: opts.json: {e}")))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(VolumeError::NotFound(name.to_string()).into())
            }
            Err(e) => return Err(Error::io("read", dir.join("opts.json"))(e)),
        };
        Ok(Volume {
            name: name.to_string(),
            created_at: opts.created_at,
            labels: opts.labels,
            mountpoint: dir.join("_data"),
        })
    }

    /// Every volume, by name.
    pub fn list(&self) -> Result<Vec<Volume>> {
        let mut out = Vec::new();
        let rd = match std::fs::read_dir(&self.dir) {
            Ok(rd) => rd,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
            Err(e) => return Err(Error::io("read", &self.dir)(e)),
        };
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if !valid_name(&name) {
                continue;
            }
            match self.get(&name) {
                Ok(v) => out.push(v),
                Err(Error::Volume(VolumeError::NotFound(_))) => {}
                // One damaged volume does not hide the others (nor block `prune`, `system
                // df`); `volume rm` still removes it.
                Err(e) => eprintln!("dockling: warning: skipping volume {name}: {e}"),
            }
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// Create the volume `name` (a random one for `None`) unless it exists. Returns it and
    /// whether this call made it. Docker's `volume create` of an existing name is not an
    /// error either.
    pub fn create(
        &self,
        name: Option<&str>,
        labels: BTreeMap<String, String>,
    ) -> Result<(Volume, bool)> {
        let name = match name {
            Some(n) if !valid_name(n) => return Err(VolumeError::BadName(n.to_string()).into()),
            Some(n) => n.to_string(),
            None => random_name(),
        };
        match self.get(&name) {
            Ok(v) => return Ok((v, false)),
            Err(Error::Volume(VolumeError::NotFound(_))) => {}
            Err(e) => return Err(e),
        }
        let tmp = self.dir.join(crate::files::temp_name());
        let made = (|| {
            let mut b = std::fs::DirBuilder::new();
            b.mode(0o700);
            b.create(&tmp).map_err(Error::write("create", &tmp))?;
            // Docker's `_data` is 0755 root: the container decides who writes inside.
            std::fs::DirBuilder::new()
                .mode(0o755)
                .create(tmp.join("_data"))
                .map_err(Error::write("create", tmp.join("_data")))?;
            std::fs::set_permissions(
                tmp.join("_data"),
                std::os::unix::fs::PermissionsExt::from_mode(0o755),
            )
            .map_err(Error::io("chmod", tmp.join("_data")))?;
            let opts = Opts {
                created_at: humantime::format_rfc3339_seconds(std::time::SystemTime::now())
                    .to_string(),
                labels,
            };
            let json = serde_json::to_vec_pretty(&opts)
                .map_err(|e| Error::Corrupt(format!("volume {name}: {e}")))?;
            // Synced, like the directory's rename below: a power cut leaves a whole volume or
            // none, never a named one with an empty opts.json.
            crate::files::write_atomic(&tmp.join("opts.json"), &json)?;
            Ok(())
        })();
        let renamed = made.and_then(|()| {
            std::fs::rename(&tmp, self.dir.join(&name))
                .map_err(Error::write("rename", self.dir.join(&name)))
        });
        match renamed {
            Ok(()) => {
                let _ = crate::files::sync_dir(&self.dir);
                Ok((self.get(&name)?, true))
            }
            Err(e) => {
                let _ = std::fs::remove_dir_all(&tmp);
                // Another command made it meanwhile: theirs is the volume.
                match self.get(&name) {
                    Ok(v) => Ok((v, false)),
                    Err(_) => Err(e),
                }
            }
        }
    }

    /// Whether `name` is a volume's directory, its `opts.json` readable or not (a damaged
    /// one can still be removed).
    pub fn exists(&self, name: &str) -> bool {
        valid_name(name) && std::fs::symlink_metadata(self.dir.join(name)).is_ok_and(|m| m.is_dir())
    }

    /// Take the volume `name` away under its name (the caller checked no container uses it,
    /// under [`lock`]): renamed to `.trash.tmp-<pid>-<start>-<random>` (a bounded length,
    /// whatever the name's), a
    /// moment's work under the lock. Deleting it, the slow part, is [`Trash::delete`]'s, after
    /// the lock is released; a killed command leaves trash the next open sweeps.
    ///
    /// [`lock`]: Volumes::lock
    pub fn trash(&self, name: &str) -> Result<Trash> {
        if !self.exists(name) {
            return Err(VolumeError::NotFound(name.to_string()).into());
        }
        // `.trash.tmp-<pid>-<start>-<random>`: owned, so another command's sweep leaves it to
        // this one while it deletes it after the lock.
        let trash = format!(".trash{}", crate::files::temp_name());
        std::fs::rename(self.dir.join(name), self.dir.join(&trash))
            .map_err(Error::io("rename", self.dir.join(name)))?;
        let _ = crate::files::sync_dir(&self.dir);
        Ok(Trash {
            dir: self.dir.clone(),
            name: trash,
        })
    }

    /// Trash and delete `name` at once (a volume just made, or an anonymous one).
    pub fn remove(&self, name: &str) -> Result<()> {
        self.trash(name)?.delete()
    }
}

/// A volume renamed out of the way ([`Volumes::trash`]), not yet deleted.
pub struct Trash {
    dir: PathBuf,
    name: String,
}

impl Trash {
    /// The bytes its data holds (through descriptors).
    pub fn size(&self) -> u64 {
        crate::sys::fs::open_root(&self.dir.join(&self.name).join("_data"))
            .and_then(|d| crate::sys::fs::tree_size(d.as_fd()))
            .unwrap_or(0)
    }

    /// Delete it, through descriptors (nothing in it is followed).
    pub fn delete(self) -> Result<()> {
        let dir = crate::sys::fs::open_root(&self.dir).map_err(Error::io("open", &self.dir))?;
        crate::sys::fs::remove_at(dir.as_fd(), std::ffi::OsStr::new(&self.name))
            .map_err(Error::io("remove", self.dir.join(&self.name)))
    }
}

use std::os::unix::fs::DirBuilderExt;

/// What [`copy_up`] copied.
#[derive(Debug, Default, Clone, Copy)]
pub struct CopyStats {
    /// Entries written.
    pub entries: u64,
    /// Bytes of file content.
    pub bytes: u64,
}

/// Whether the directory `dir` (an fd) has no entries.
pub fn is_empty(dir: BorrowedFd<'_>) -> std::io::Result<bool> {
    let fd = crate::sys::fs::openat2(
        dir,
        Path::new("."),
        libc::O_RDONLY | libc::O_DIRECTORY,
        0,
        crate::sys::fs::IN_ROOT,
    )?;
    let mut d = nix::dir::Dir::from_fd(std::os::fd::IntoRawFd::into_raw_fd(fd))?;
    for e in d.iter() {
        let e = e?;
        let n = e.file_name().to_bytes();
        if n != b"." && n != b".." {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Beside `_data`: a copy-up began and has not finished (killed, failed). The next start
/// empties `_data` and copies again instead of using half a copy forever.
pub const COPYING: &str = ".copying";

/// Docker's copy-up: the contents of `src` (a directory of the container's root, an fd
/// resolved inside it) copied into the `_data` of the volume whose directory is `vol` (an
/// fd), fd to fd (`layers::copy::copy_dir`: hard links, file capabilities, owners, modes and
/// times kept; nothing followed; no mount crossed on the image's side), and `_data` given
/// the owner and mode of `src`, as Docker's `copyOwnership`. Only a volume that is empty, or
/// whose last copy-up never finished ([`COPYING`]), is filled; an exclusive `flock` on `vol`
/// keeps two starts from filling it at once. `None` when there was nothing to do.
///
/// With `no_devices` (a container with no devices cgroup) the image's device nodes are left
/// out. Docker copies them (continuity's `CopyDir` makes device nodes) but always has the
/// devices cgroup to keep them closed; here a node in a volume would outlive the container,
/// and nothing would keep it closed.
pub fn copy_up(
    src: BorrowedFd<'_>,
    vol: BorrowedFd<'_>,
    no_devices: bool,
) -> std::result::Result<Option<CopyStats>, String> {
    use crate::sys::fs as safefs;
    use std::ffi::OsStr;
    let beneath = libc::RESOLVE_BENEATH | libc::RESOLVE_NO_SYMLINKS;
    let dir = safefs::openat2(
        vol,
        Path::new("."),
        libc::O_RDONLY | libc::O_DIRECTORY,
        0,
        beneath,
    )
    .map_err(|e| format!("open the volume: {e}"))?;
    let _locked = nix::fcntl::Flock::lock(
        std::fs::File::from(dir.try_clone().map_err(|e| format!("dup: {e}"))?),
        nix::fcntl::FlockArg::LockExclusive,
    )
    .map_err(|(_, e)| format!("lock the volume: {e}"))?;
    let data = safefs::openat2(
        dir.as_fd(),
        Path::new("_data"),
        libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW,
        0,
        beneath,
    )
    .map_err(|e| format!("open its _data: {e}"))?;
    let unfinished = match safefs::stat_at(dir.as_fd(), OsStr::new(COPYING)) {
        Ok(_) => true,
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => false,
        Err(e) => return Err(format!("look for {COPYING}: {e}")),
    };
    if unfinished {
        // What a killed copy left, removed through descriptors (never followed).
        let names: Vec<std::ffi::OsString> = std::fs::read_dir(safefs::fd_path(&data))
            .and_then(|d| d.map(|e| e.map(|e| e.file_name())).collect())
            .map_err(|e| format!("read its _data: {e}"))?;
        for n in names {
            safefs::remove_at(data.as_fd(), &n)
                .map_err(|e| format!("empty what an unfinished copy left: {e}"))?;
        }
    } else {
        if !is_empty(data.as_fd()).map_err(|e| format!("read its _data: {e}"))? {
            return Ok(None);
        }
        drop(
            safefs::create_at(dir.as_fd(), OsStr::new(COPYING))
                .map_err(|e| format!("mark the copy: {e}"))?,
        );
        nix::unistd::fsync(dir.as_raw_fd()).map_err(|e| format!("mark the copy: {e}"))?;
    }
    let stats =
        crate::layers::copy::copy_dir(src, data.as_fd(), no_devices).map_err(|e| e.to_string())?;
    nix::unistd::unlinkat(
        Some(dir.as_raw_fd()),
        COPYING,
        nix::unistd::UnlinkatFlags::NoRemoveDir,
    )
    .map_err(|e| format!("unmark the copy: {e}"))?;
    Ok(Some(CopyStats {
        entries: stats.files,
        bytes: stats.bytes,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_dockers_rule() {
        for ok in ["data", "a1", "my_vol.2-x", "0abc"] {
            assert!(valid_name(ok), "{ok}");
        }
        for bad in [
            "", "a", "..", "../x", "a/b", ".hidden", "-x", "_x", "a b", "a:b",
        ] {
            assert!(!valid_name(bad), "{bad}");
        }
        let r = random_name();
        assert_eq!(r.len(), 64);
        assert!(valid_name(&r));
    }

    #[test]
    fn create_is_atomic_and_idempotent_and_remove_leaves_nothing() {
        let root = tempfile::tempdir().unwrap();
        let v = Volumes::open(root.path()).unwrap();
        let (a, made) = v.create(Some("data"), BTreeMap::new()).unwrap();
        assert!(made);
        assert!(a.mountpoint.is_dir());
        let (_, again) = v.create(Some("data"), BTreeMap::new()).unwrap();
        assert!(!again);
        assert!(v.create(Some("../x"), BTreeMap::new()).is_err());
        assert_eq!(v.list().unwrap().len(), 1);
        v.remove("data").unwrap();
        assert!(matches!(
            v.get("data"),
            Err(Error::Volume(VolumeError::NotFound(_)))
        ));
        let left: Vec<_> = std::fs::read_dir(root.path().join("volumes"))
            .unwrap()
            .flatten()
            .map(|e| e.file_name())
            .filter(|n| n != ".lock")
            .collect();
        assert!(left.is_empty(), "{left:?}");
    }

    #[test]
    fn what_a_killed_create_or_rm_left_is_swept_on_open() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("volumes");
        // pid 4194305 is above the kernel's limit: its owner is surely gone.
        let dead = dir.join(".tmp-4194305-1-deadbeefdeadbeef");
        let trash = dir.join(".trash-old-0123456789abcdef");
        let live = dir.join(crate::files::temp_name());
        // Trash a live command is deleting after releasing the lock: its own to delete.
        let live_trash = dir.join(format!(".trash{}", crate::files::temp_name()));
        let dead_trash = dir.join(".trash.tmp-4194305-1-deadbeefdeadbeef");
        for d in [&dead, &trash, &live, &live_trash, &dead_trash] {
            std::fs::create_dir_all(d.join("_data")).unwrap();
        }
        let v = Volumes::open(root.path()).unwrap();
        assert!(!dead.exists() && !trash.exists() && !dead_trash.exists());
        assert!(live_trash.exists(), "a live command's trash is left to it");
        assert!(live.exists(), "a live process's temporary volume is kept");
        assert!(
            v.list().unwrap().is_empty(),
            "temporary names are no volumes"
        );
    }
}
