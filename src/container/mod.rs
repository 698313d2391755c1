//! Containers on disk: one directory per container under `<root>/containers/<id>/` holding
//! `state.json` (what `ps` and `inspect` show), the writable layer (`upper/`, `work/`), the
//! mount point `rootfs/`, and the files bind-mounted into it (`hostname`, `hosts`,
//! `resolv.conf`). State is written to a temporary name and renamed, so a reader never sees
//! half a file; a lock file serialises name allocation so two `run --name web` cannot both win.
//!
//! Who keeps a container: the `dockling run` that created it holds an exclusive `flock` on
//! the container's `engine.lock` from before its `state.json` exists until it has recorded the
//! end (the lock file also names that process). The kernel drops the lock when that process
//! dies, even of SIGKILL, so "its engine holds the lock" is the liveness test no stale record
//! can fool: a record whose lock is free but whose state still says created or running belongs
//! to a killed engine, and the next command notices ([`Containers::engine_alive`]). `rm`
//! renames a directory to `.trash-<id>` before deleting it, so a killed `rm` leaves a name the
//! next command recognises and finishes removing, never a half-deleted container.

pub mod attach;
mod error;
pub mod logs;
pub mod names;

pub use error::ContainerError;

use std::fs::{self, File};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::spec::RunSpec;

/// Where a container is in its life.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "Status", rename_all = "lowercase")]
pub enum Status {
    /// Set up, process not started yet.
    Created,
    /// Its first process runs as `pid` (host pid namespace), started at `started` (RFC 3339).
    Running {
        /// Host pid of the container's first process.
        #[serde(rename = "Pid")]
        pid: i32,
        /// Kernel start time of that pid (field 22 of /proc/pid/stat), to detect pid reuse.
        #[serde(rename = "PidStart")]
        pid_start: u64,
    },
    /// It ended with `code`.
    Exited {
        /// Exit code (128 + signal when killed).
        #[serde(rename = "ExitCode")]
        code: i32,
        /// When it ended (RFC 3339).
        #[serde(rename = "FinishedAt")]
        finished: String,
        /// Killed by the kernel's OOM killer in its memory cgroup.
        #[serde(rename = "OOMKilled")]
        oom_killed: bool,
    },
}

/// What is stored for each container. `S` is the spec as read: all of it ([`RunSpec`]), or
/// only what a listing shows ([`Listing`], for `ps` and every walk over all containers).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Container<S = RunSpec> {
    /// Creation time, RFC 3339.
    pub created: String,
    /// Its status.
    pub status: Status,
    /// How many times its monitor started it again (`--restart`).
    #[serde(default)]
    pub restart_count: u32,
    /// When its process last started (RFC 3339), if it ever did.
    #[serde(default)]
    pub started_at: Option<String>,
    /// Its monitor waits to start it again (`--restart`'s back-off): Docker's `Restarting`
    /// state. Set and cleared by the monitor; a killed monitor's is cleared by `reap`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub restarting: bool,
    /// The host ports its run has bound (`tcp:0.0.0.0:8000:80`, the kernel's choice filled
    /// in), for `port`, `ps` and `inspect`: set by the start's `network.publish` step,
    /// emptied when the run ends; shown only while it runs.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub published: Vec<String>,
    /// The validated spec it was started from. Last, and its seccomp profile last in it:
    /// a listing stops reading there ([`Containers::rows`]).
    pub spec: S,
}

/// The part of a container's spec that `ps` shows and that walks over every container ask
/// (its image, its name, whether `rm` should go with it), read from `state.json` without the
/// rest: the seccomp profile alone is most of the file, and building it as oci-spec's type
/// was most of the cost of `ps -a` with many containers. The rest is skipped by the parser,
/// never built. Never start or save a container from it: [`Containers::find`] reads all.
#[derive(Debug, Clone, Deserialize)]
pub struct Listing {
    /// Full id (64 hex digits).
    pub id: String,
    /// Its name.
    pub name: String,
    /// The image as the user named it.
    pub image_ref: String,
    /// The image's id.
    pub image_id: String,
    /// The command line.
    pub args: Vec<String>,
    /// `--rm`.
    #[serde(default)]
    pub remove: bool,
    /// The network mode.
    pub network: crate::spec::NetworkMode,
    /// Its network settings (for the network's name).
    #[serde(default)]
    pub net: crate::spec::NetConfig,
    /// Whether it has cgroup limits (a cgroup of its own): only that it has them is kept.
    #[serde(default)]
    pub cgroup: Option<serde::de::IgnoredAny>,
    /// Its volumes.
    #[serde(default)]
    pub volumes: Vec<crate::spec::Volume>,
    /// `-p`, `-P`, `--expose`.
    #[serde(default)]
    pub ports: crate::spec::Ports,
}

impl Listing {
    /// The network's name Docker shows, as [`RunSpec::network_name`].
    pub fn network_name(&self) -> &str {
        self.net.name(self.network)
    }
}

impl Container<Listing> {
    /// `NetworkSettings.Ports`, as [`Container::port_map`].
    pub fn port_map(&self, alive: bool) -> crate::network::ports::PortMap {
        port_map(&self.spec.ports, &self.published_ports(alive))
    }
}

/// Every exposed port (`null` unless published) and every bound.
fn port_map(
    ports: &crate::spec::Ports,
    published: &[crate::network::ports::Published],
) -> crate::network::ports::PortMap {
    let mut exposed = ports.exposed.clone();
    for b in crate::network::ports::bindings(ports).unwrap_or_default() {
        exposed.push(b.key());
    }
    crate::network::ports::network_ports(&exposed, published)
}

impl Container {
    /// `NetworkSettings.Ports`: every exposed port (`null` unless published) and every bound.
    pub fn port_map(&self, alive: bool) -> crate::network::ports::PortMap {
        port_map(&self.spec.ports, &self.published_ports(alive))
    }
}

impl<S> Container<S> {
    /// The ports bound while it runs (none when it does not).
    pub fn published_ports(&self, alive: bool) -> Vec<crate::network::ports::Published> {
        if !alive {
            return vec![];
        }
        self.published
            .iter()
            .filter_map(|p| p.parse().ok())
            .collect()
    }

    /// The status as `ps` shows it: `Up 3 seconds`, `Exited (0) 2 minutes ago`, `Created`,
    /// `Restarting (1) 2 seconds ago` (Docker's: the code and end of the last run).
    pub fn status_line(&self, now: std::time::SystemTime) -> String {
        self.status_line_as(now, self.is_alive())
    }

    /// [`Container::status_line`] with [`Container::is_alive`] already known (a listing reads
    /// each process's stat once).
    pub fn status_line_as(&self, now: std::time::SystemTime, alive: bool) -> String {
        match &self.status {
            Status::Created => "Created".into(),
            Status::Running { .. } if !alive => "Exited (unknown)".into(),
            Status::Running { .. } => format!(
                "Up {}",
                human_duration(since(
                    self.started_at.as_deref().unwrap_or(&self.created),
                    now
                ))
            ),
            Status::Exited { code, finished, .. } if self.restarting => format!(
                "Restarting ({code}) {} ago",
                human_duration(since(finished, now))
            ),
            Status::Exited { code, finished, .. } => format!(
                "Exited ({code}) {} ago",
                human_duration(since(finished, now))
            ),
        }
    }

    /// Docker's one-word state: `created`, `running`, `restarting` or `exited`.
    pub fn state_word(&self) -> &'static str {
        self.state_word_as(self.is_alive())
    }

    /// [`Container::state_word`] with [`Container::is_alive`] already known.
    pub fn state_word_as(&self, alive: bool) -> &'static str {
        match &self.status {
            Status::Exited { .. } if self.restarting => "restarting",
            Status::Created => "created",
            Status::Running { .. } if alive => "running",
            _ => "exited",
        }
    }

    /// True while the recorded pid is still the container's process.
    pub fn is_alive(&self) -> bool {
        match self.status {
            Status::Running { pid, pid_start } => process_start_time(pid) == Some(pid_start),
            _ => false,
        }
    }

    /// The pid of its first process if that process is alive and still the container's
    /// ([`Container::is_alive`]: a record saying running with a pid the kernel has since
    /// given to another process yields none), for anything opened through `/proc/<pid>`.
    pub fn live_pid(&self) -> Option<i32> {
        match self.status {
            Status::Running { pid, .. } if self.is_alive() => Some(pid),
            _ => None,
        }
    }
}

fn since(rfc3339: &str, now: std::time::SystemTime) -> std::time::Duration {
    humantime::parse_rfc3339(rfc3339)
        .ok()
        .and_then(|t| now.duration_since(t).ok())
        .unwrap_or_default()
}

/// Field 22 of `/proc/<pid>/stat`: when the process started, in clock ticks since boot.
pub fn process_start_time(pid: i32) -> Option<u64> {
    u32::try_from(pid).ok().and_then(crate::files::start_time)
}

/// Now, RFC 3339 with nanoseconds, like Docker's timestamps.
pub fn now_rfc3339() -> String {
    humantime::format_rfc3339_nanos(std::time::SystemTime::now()).to_string()
}

/// All containers of one store root.
pub struct Containers {
    dir: PathBuf,
}

/// The lock a container's engine holds for as long as it keeps the container (see the module
/// documentation).
pub struct EngineLock {
    // Open for as long as the lock is held: the kernel releases a flock with its file.
    _file: File,
}

impl EngineLock {
    /// The descriptor the lock is held through. A flock belongs to the open file, which a
    /// forked child shares: the container's first process closes this first thing, or a
    /// killed engine's container would stay "kept" until that process is gone too.
    pub fn raw_fd(&self) -> std::os::fd::RawFd {
        std::os::fd::AsRawFd::as_raw_fd(&self._file)
    }

    /// Name this process as the holder (a detached container's monitor, which inherited the
    /// lock from the `run -d` that took it): `rm -f` finds the engine to kill by this line.
    pub fn claim(&self) -> Result<()> {
        let me = std::process::id() as i32;
        let line = format!("{me} {}\n", process_start_time(me).unwrap_or(0));
        crate::files::write_holder(&self._file, line.as_bytes())
            .map_err(Error::io("write", ENGINE_LOCK))
    }
}

/// The file name of that lock inside the container's directory.
const ENGINE_LOCK: &str = "engine.lock";

/// Left in the container's directory by `stop`, `kill` and `rm -f` before they signal it: the
/// container was ended on purpose, so its monitor does not restart it (`--restart`).
pub const STOP_REQUESTED: &str = "stop-requested";

/// Waits for a container's engine (its `run` or its monitor) to exit, which is when it has
/// recorded the end and let go of the engine lock: through a pidfd of the engine named in the
/// lock file (its start time checked), so a waiter wakes when that happens instead of on its
/// next timer tick. The caller always checks its condition again: a wait is capped at
/// [`Watch::MAX_WAIT`], and once the engine has exited (or when it is unknown, or pidfds are
/// missing) the waits are short sleeps that grow to 10 ms, so a condition that still does not
/// hold (another command holds the lock now) never spins. Not inotify on the directory: closing
/// an inotify descriptor waits for an SRCU grace period (~10 ms), longer than what it saves.
/// The pidfd_open goes through the seam (`stop --trace` shows it); the poll does not.
pub struct Watch {
    fd: Option<std::os::fd::OwnedFd>,
    pause: std::time::Duration,
}

impl Watch {
    /// The longest single wait: the fallback when an event is missed.
    pub const MAX_WAIT: std::time::Duration = std::time::Duration::from_millis(50);

    fn new(sys: &crate::sys::Sys, engine: Option<(i32, u64)>) -> Watch {
        use std::os::fd::{FromRawFd, OwnedFd};
        let fd = engine.and_then(|(pid, start)| {
            let Ok(crate::sys::Ret::Fd(raw)) =
                sys.perform(crate::sys::Call::PidfdOpenEngine { pid })
            else {
                return None;
            };
            // SAFETY: the kernel just returned this descriptor and nothing else owns it.
            let fd = unsafe { OwnedFd::from_raw_fd(raw) };
            // Checked after the open: a reused pid is never waited on.
            (process_start_time(pid) == Some(start)).then_some(fd)
        });
        Watch {
            fd,
            pause: std::time::Duration::from_micros(500),
        }
    }

    /// Sleep until the engine exited, or `limit` (at most [`Watch::MAX_WAIT`]) passed.
    pub fn wait(&mut self, limit: std::time::Duration) {
        let limit = limit.min(Self::MAX_WAIT);
        let Some(fd) = &self.fd else {
            std::thread::sleep(limit.min(self.pause));
            self.pause = (self.pause * 2).min(std::time::Duration::from_millis(10));
            return;
        };
        let mut pfd = libc::pollfd {
            fd: fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        let ms = i32::try_from(limit.as_millis().max(1)).unwrap_or(i32::MAX);
        // SAFETY: one valid pollfd.
        if unsafe { libc::poll(&mut pfd, 1, ms) } != 0 {
            // Exited (or the poll failed): nothing more to wait for through it.
            self.fd = None;
        }
    }
}

/// The prefix a container directory is renamed to before it is deleted.
const TRASH: &str = ".trash-";

/// `flock(fd, op)`; `Ok(false)` when `LOCK_NB` found it taken.
fn flock(f: &File, op: libc::c_int) -> std::io::Result<bool> {
    // SAFETY: flock on an fd owned by `f`. Not nix's Flock: it takes the file and unlocks it
    // explicitly when dropped, which would also release the engine lock for the container's
    // first process, which shares it through clone; this lock must last until the last
    // descriptor of it is closed.
    if unsafe { libc::flock(f.as_raw_fd(), op) } == 0 {
        return Ok(true);
    }
    let e = std::io::Error::last_os_error();
    if e.raw_os_error() == Some(libc::EWOULDBLOCK) {
        Ok(false)
    } else {
        Err(e)
    }
}

// The generic file helpers (atomic writes, store locks that name their holder and time out)
// live in `crate::files`; these names stay for the callers.
pub use crate::files::{lock, set_lock_timeout, write_atomic, Lock, DEFAULT_LOCK_TIMEOUT};

impl Containers {
    /// The containers under `root`.
    pub fn open(root: &Path) -> Result<Containers> {
        // 0700 inside a 0711 root: a container's upper directory holds the image's setuid
        // files too (see `secure_root`).
        crate::image::store::secure_root(root)?;
        let dir = root.join("containers");
        Ok(Containers { dir })
    }

    /// The containers under `root`, creating nothing (for dry runs, which leave no trace).
    pub fn at(root: &Path) -> Containers {
        Containers {
            dir: root.join("containers"),
        }
    }

    /// The directory of one container.
    pub fn bundle(&self, id: &str) -> PathBuf {
        self.dir.join(id)
    }

    /// Lock held while allocating names and creating container directories.
    pub fn lock(&self) -> Result<Lock> {
        lock(&self.dir.join(".lock"))
    }

    /// The same lock if nobody holds it now (`None` if somebody does): for work that can
    /// wait for the next command, such as reaping what killed ones left.
    pub fn try_lock(&self) -> Result<Option<Lock>> {
        crate::files::try_lock(&self.dir.join(".lock"))
    }

    /// Every container, newest first, read whole.
    pub fn list(&self) -> Result<Vec<Container>> {
        self.read_all(
            |text, whole| whole.then(|| serde_json::from_slice(text)),
            None,
        )
    }

    /// Every container, newest first, with only the part of the spec a listing needs
    /// ([`Listing`]): what `ps`, the reaping of killed engines and the walks that look for a
    /// name or an image's users read.
    pub fn rows(&self) -> Result<Vec<Container<Listing>>> {
        self.read_all(parse_row, None)
    }

    /// [`Containers::sweep`] and [`Containers::rows`] in one walk (the reap's, under
    /// [`Containers::lock`]): a directory whose `state.json` cannot be found is what the
    /// sweep looks at, with no `stat` of every container's record.
    pub fn sweep_and_rows(&self) -> Result<Vec<Container<Listing>>> {
        let mut without = Vec::new();
        let rows = self.read_all(parse_row, Some(&mut without))?;
        for name in without {
            self.sweep_one(&name);
        }
        Ok(rows)
    }

    /// Each `<id>/state.json`, opened beneath the containers' directory descriptor (no
    /// symlink followed) and read into one buffer, as far as `parse` needs: it is given
    /// the text read so far and whether that is the whole file, and returns `None` to have
    /// more read (a row is complete at its spec's seccomp profile, most of the file).
    fn read_all<S>(
        &self,
        parse: ParseRow<S>,
        mut without: Option<&mut Vec<String>>,
    ) -> Result<Vec<Container<S>>> {
        let dir = crate::sys::fs::open_root(&self.dir).map_err(Error::io("open", &self.dir))?;
        let mut out = Vec::new();
        let mut text = Vec::new();
        let mut rel = PathBuf::new();
        for entry in fs::read_dir(&self.dir).map_err(Error::io("read", &self.dir))? {
            let Ok(entry) = entry else { continue };
            let name = entry.file_name();
            if name.as_encoded_bytes().starts_with(b".") {
                if name.as_encoded_bytes().starts_with(TRASH.as_bytes()) {
                    if let Some(w) = without.as_deref_mut() {
                        w.push(name.to_string_lossy().into_owned());
                    }
                }
                continue;
            }
            rel.clear();
            rel.push(&name);
            rel.push("state.json");
            // A directory without state is a container still being created or half removed.
            let fd = match crate::sys::fs::openat2(
                std::os::fd::AsFd::as_fd(&dir),
                &rel,
                libc::O_RDONLY | libc::O_NOFOLLOW,
                0,
                libc::RESOLVE_BENEATH | libc::RESOLVE_NO_SYMLINKS,
            ) {
                Ok(fd) => fd,
                Err(e) => {
                    // The directory's type from readdir (no stat on ext4, xfs, btrfs, tmpfs).
                    let dir_entry = entry.file_type().is_ok_and(|t| t.is_dir());
                    if let (Some(w), Some(libc::ENOENT), true) =
                        (without.as_deref_mut(), e.raw_os_error(), dir_entry)
                    {
                        w.push(name.to_string_lossy().into_owned());
                    }
                    continue;
                }
            };
            match read_until(File::from(fd), &mut text, parse) {
                Ok(Ok(c)) => out.push(c),
                Ok(Err(e)) => eprintln!(
                    "dockling: warning: ignoring {}: {e}",
                    self.dir.join(&rel).display()
                ),
                Err(_) => {}
            }
        }
        Ok(newest_first(out))
    }

    /// Find by exact name, full id, or unique id prefix (like Docker).
    pub fn find(&self, name: &str) -> Result<Container> {
        let name = name.trim_start_matches('/');
        if name.len() == 64 {
            // A full id names the directory: no need to read every container's state.
            if let Ok(text) = fs::read(self.bundle(name).join("state.json")) {
                return serde_json::from_slice(&text)
                    .map_err(|e| Error::Corrupt(format!("container {name}: state.json: {e}")));
            }
        }
        // Looked up among the rows; only the one found is read whole.
        let all = self.rows()?;
        let whole = |c: &Container<Listing>| -> Result<Container> {
            let text = fs::read(self.bundle(&c.spec.id).join("state.json"))
                .map_err(|_| Error::NotFound(format!("no such container: {name}")))?;
            serde_json::from_slice(&text)
                .map_err(|e| Error::Corrupt(format!("container {name}: state.json: {e}")))
        };
        if let Some(c) = all
            .iter()
            .find(|c| c.spec.name == name || c.spec.id == name)
        {
            return whole(c);
        }
        let matches: Vec<&Container<Listing>> = all
            .iter()
            .filter(|c| !name.is_empty() && c.spec.id.starts_with(name))
            .collect();
        match matches.as_slice() {
            [one] => whole(one),
            [] => Err(Error::NotFound(format!("no such container: {name}"))),
            _ => Err(ContainerError::AmbiguousPrefix {
                prefix: name.to_string(),
            }
            .into()),
        }
    }

    /// Save a container's state.
    pub fn save(&self, c: &Container) -> Result<()> {
        // Compact: half the bytes of the pretty form (the seccomp profile is most of them),
        // for every save of a start and every read of a listing.
        let data = serde_json::to_vec(c).expect("state serialises");
        // Atomic, not durable: see `files::replace_atomic` (a record a power loss took back
        // is reaped like any other dead container's).
        crate::files::replace_atomic(&self.bundle(&c.spec.id).join("state.json"), &data)
    }

    /// Change a container's record as one step no other command's change can interleave
    /// with: under a flock of the container's directory, read it afresh, change it, save it. (A save
    /// of a copy read earlier could undo a rename, a restart count or the recorded end.)
    pub fn update(&self, id: &str, f: impl FnOnce(&mut Container)) -> Result<Container> {
        let dir = self.bundle(id);
        if !dir.is_dir() {
            return Err(Error::NotFound(format!("no such container: {id}")));
        }
        // The directory itself is the lock: a `state.lock` file was one more inode made and
        // freed per container (a synchronous trim on a `discard` ext4: see `files::lock_dir`).
        let _held = crate::files::lock_dir(&dir)?;
        let mut c = self.find(id)?;
        f(&mut c);
        self.save(&c)?;
        Ok(c)
    }

    /// True if a container already has this name.
    pub fn name_taken(&self, name: &str) -> Result<Option<String>> {
        Ok(self
            .rows()?
            .into_iter()
            .find(|c| c.spec.name == name)
            .map(|c| c.spec.id))
    }

    /// Delete a container's directory. Its mounts lived in its own mount namespace, so they
    /// are already gone; `rootfs/` of `--layers copy` is plain files. The directory is first
    /// renamed to `.trash-<id>` (one atomic step: the container is gone for every other
    /// command), then deleted; a deletion cut short is finished by [`Containers::sweep`].
    pub fn remove_dir(&self, id: &str) -> Result<()> {
        let dir = self.bundle(id);
        let trash = self.dir.join(format!("{TRASH}{id}"));
        match fs::rename(&dir, &trash) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(Error::io("rename", &dir)(e)),
        }
        // Gone for every other command: its address goes back to its network (a failure
        // here only delays that to the next allocation's reclaim).
        if let Some(root) = self.dir.parent() {
            if let Err(e) = crate::network::store::release(root, id) {
                eprintln!("dockling: warning: {e}");
            }
            // Its name leaves the hosts files of its user networks' running containers.
            for n in crate::network::store::list(root).unwrap_or_default() {
                if let Err(e) = crate::network::hosts::refresh(root, &n.name, None, Some(id)) {
                    eprintln!("dockling: warning: {e}");
                }
            }
        }
        // The container's own `dockling run` may be writing its last state into the directory
        // at this moment (rm -f just killed its process): that write lands between
        // remove_dir_all's listing and its final rmdir, which then fails with ENOTEMPTY. The
        // engine writes once and is done, so removing again finishes the job.
        let mut tries = 0;
        loop {
            match fs::remove_dir_all(&trash) {
                Ok(()) => return Ok(()),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
                Err(e) if e.kind() == std::io::ErrorKind::DirectoryNotEmpty && tries < 5 => {
                    tries += 1
                }
                Err(e) => return Err(Error::io("remove", &trash)(e)),
            }
        }
    }

    /// Take the engine lock of a new container (its directory exists, its state not yet) and
    /// write this process's pid and start time into it, for `rm -f`.
    pub fn engine_lock(&self, id: &str) -> Result<EngineLock> {
        let path = self.bundle(id).join(ENGINE_LOCK);
        // Not truncated before the lock is ours: the holder's pid in it must stay readable.
        let f = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(Error::io("create", &path))?;
        if !flock(&f, libc::LOCK_EX | libc::LOCK_NB).map_err(Error::io("lock", &path))? {
            return Err(ContainerError::Kept { id: id.to_string() }.into());
        }
        let me = std::process::id() as i32;
        let line = format!("{me} {}\n", process_start_time(me).unwrap_or(0));
        crate::files::write_holder(&f, line.as_bytes()).map_err(Error::io("write", &path))?;
        Ok(EngineLock { _file: f })
    }

    /// Take the engine lock of an existing container without waiting: `None` while its engine
    /// (or another command) holds it. A container without a lock file (made by an older
    /// dockling) gets one.
    pub fn try_lock_engine(&self, id: &str) -> Result<Option<EngineLock>> {
        let path = self.bundle(id).join(ENGINE_LOCK);
        let f = match File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
        {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(Error::NotFound(format!("no such container: {id}")))
            }
            Err(e) => return Err(Error::io("open", &path)(e)),
        };
        Ok(flock(&f, libc::LOCK_EX | libc::LOCK_NB)
            .map_err(Error::io("lock", &path))?
            .then_some(EngineLock { _file: f }))
    }

    /// Say the container is being ended on purpose, before signalling it: its monitor does not
    /// restart it (see [`STOP_REQUESTED`]). Best effort: without the file a `--restart`
    /// container may come back, which `rm -f` then ends.
    ///
    /// The file, like its check and removal below, is reached through a descriptor of the
    /// container's directory (`*at` calls, no symlink followed), never through a host path
    /// string: a `stop-requested` that is a symlink creates, counts and removes nothing
    /// outside the directory.
    pub fn request_stop(&self, id: &str) {
        if let Some(dir) = self.open_dir(id) {
            let _ = nix::fcntl::openat(
                Some(dir.as_raw_fd()),
                STOP_REQUESTED,
                nix::fcntl::OFlag::O_WRONLY
                    | nix::fcntl::OFlag::O_CREAT
                    | nix::fcntl::OFlag::O_NOFOLLOW
                    | nix::fcntl::OFlag::O_NONBLOCK
                    | nix::fcntl::OFlag::O_CLOEXEC,
                nix::sys::stat::Mode::from_bits_truncate(0o600),
            )
            .map(|fd| {
                // SAFETY: openat returned a new descriptor nothing else owns: closed here.
                drop(unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) })
            });
        }
    }

    /// Whether `stop`, `kill` or `rm -f` asked for the container's end ([`Containers::request_stop`]):
    /// a regular file of that name in its directory (`fstatat`, `AT_SYMLINK_NOFOLLOW`).
    pub fn stop_requested(&self, id: &str) -> bool {
        self.open_dir(id).is_some_and(|dir| {
            nix::sys::stat::fstatat(
                Some(dir.as_raw_fd()),
                STOP_REQUESTED,
                nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
            )
            .is_ok_and(|st| st.st_mode & libc::S_IFMT == libc::S_IFREG)
        })
    }

    /// Forget a stop request: the container is started again, or its run is over
    /// (`unlinkat` in its directory).
    pub fn clear_stop_request(&self, id: &str) {
        if let Some(dir) = self.open_dir(id) {
            let _ = nix::unistd::unlinkat(
                Some(dir.as_raw_fd()),
                STOP_REQUESTED,
                nix::unistd::UnlinkatFlags::NoRemoveDir,
            );
        }
    }

    /// The container's directory as an `O_PATH` descriptor (None when it is gone).
    fn open_dir(&self, id: &str) -> Option<std::os::fd::OwnedFd> {
        crate::sys::fs::open_root(&self.bundle(id)).ok()
    }

    /// True when the container has an engine lock file (every container made since they exist).
    pub fn has_engine_lock(&self, id: &str) -> bool {
        self.bundle(id).join(ENGINE_LOCK).exists()
    }

    /// True while a live process holds the container's engine lock: its `dockling run` is
    /// creating, starting or running it (or another command is removing it right now).
    pub fn engine_alive(&self, id: &str) -> bool {
        let Ok(f) = File::open(self.bundle(id).join(ENGINE_LOCK)) else {
            return false;
        };
        // A shared lock conflicts only with the engine's exclusive one; given back at once.
        matches!(flock(&f, libc::LOCK_SH | libc::LOCK_NB), Ok(false))
    }

    /// The pid and start time of the engine that holds (or held) the container, if it is
    /// still that process.
    pub fn engine_pid(&self, id: &str) -> Option<(i32, u64)> {
        let text = fs::read_to_string(self.bundle(id).join(ENGINE_LOCK)).ok()?;
        let mut it = text.split_whitespace();
        let pid: i32 = it.next()?.parse().ok()?;
        let start: u64 = it.next()?.parse().ok()?;
        (pid > 0 && process_start_time(pid) == Some(start)).then_some((pid, start))
    }

    /// Watch the container's engine, to wait for it to record the end and let go without
    /// polling on a timer (see [`Watch`]).
    pub fn watch(&self, sys: &crate::sys::Sys, id: &str) -> Watch {
        Watch::new(sys, self.engine_pid(id))
    }

    /// Wait (bounded) until nothing holds the container's engine lock, then hold it.
    pub fn wait_engine(&self, id: &str, limit: std::time::Duration) -> Result<Option<EngineLock>> {
        let deadline = std::time::Instant::now() + limit;
        let mut watch = self.watch(&crate::sys::Sys::quiet(), id);
        loop {
            if let Some(l) = self.try_lock_engine(id)? {
                return Ok(Some(l));
            }
            let now = std::time::Instant::now();
            if now >= deadline {
                return Ok(None);
            }
            watch.wait(deadline - now);
        }
    }

    /// Directories no record explains: `.trash-*` (a killed `rm`) and container directories
    /// without `state.json` whose engine is gone (a `run` killed while creating it). Call with
    /// [`Containers::lock`] held, so a container being created is never taken for either.
    pub fn sweep(&self) -> Vec<PathBuf> {
        fs::read_dir(&self.dir)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|entry| self.sweep_one(&entry.file_name().to_string_lossy()))
            .collect()
    }

    /// [`Containers::sweep`] of one entry of the containers' directory: its path if it was
    /// removed.
    fn sweep_one(&self, name: &str) -> Option<PathBuf> {
        let path = self.dir.join(name);
        let leftover = if name.starts_with(TRASH) {
            true
        } else if name.starts_with('.') || !path.is_dir() {
            false
        } else {
            !path.join("state.json").exists() && !self.engine_alive(name)
        };
        // remove_dir_all would descend into a file system mounted below and empty it
        // (a host directory bound there, say): such a tree is left for `system fsck`.
        (leftover
            && crate::files::mounts_under(&path).is_empty()
            && fs::remove_dir_all(&path).is_ok())
        .then_some(path)
    }
}

/// How a listing makes a record of the text read so far of a `state.json`, and whether
/// that is all of it: `None` to have more read ([`read_until`]).
type ParseRow<S> = fn(&[u8], bool) -> Option<serde_json::Result<Container<S>>>;

/// A container's row from its `state.json`, reading only up to the spec's seccomp profile:
/// `None` (read more) until that much is read, unless `whole`.
///
/// The record is written with the spec last and the profile last in the spec, so the text
/// before the `"seccomp":` key, closed with `}}`, is the record without its profile: parsed,
/// and the profile (most of the file) is neither read nor scanned. The key cannot be met
/// inside a string (a quote in a string is escaped), and a cut anywhere but in the spec's own
/// object (one level down) leaves brackets open, which the parse refuses. Anything else, a
/// record of an older dockling (the profile in the middle of the spec, the spec first: the
/// cut leaves out fields a row needs), or one without the key, is read and parsed whole: a
/// cut never yields a wrong row, at worst a parse error and the whole read.
fn parse_row(text: &[u8], whole: bool) -> Option<serde_json::Result<Container<Listing>>> {
    const KEY: &[u8] = b"\"seccomp\":";
    static FINDER: std::sync::LazyLock<memchr::memmem::Finder<'static>> =
        std::sync::LazyLock::new(|| memchr::memmem::Finder::new(KEY));
    if let Some(at) = FINDER.find(text) {
        let head = text[..at].trim_ascii_end();
        if let Some(head) = head.strip_suffix(b",") {
            let mut cut = Vec::with_capacity(head.len() + 2);
            cut.extend_from_slice(head);
            cut.extend_from_slice(b"}}");
            if let Ok(row) = serde_json::from_slice(&cut) {
                return Some(Ok(row));
            }
        }
    }
    whole.then(|| serde_json::from_slice(text))
}

/// Containers sorted newest first (by `created`; equal ones keep their order). The order is
/// sorted as indices and the records moved once: a sort moving the records themselves
/// (hundreds of bytes each) copied them about log2(n) times.
fn newest_first<S>(all: Vec<Container<S>>) -> Vec<Container<S>> {
    let mut order: Vec<usize> = (0..all.len()).collect();
    order.sort_by(|a, b| all[*b].created.cmp(&all[*a].created));
    let mut slots: Vec<Option<Container<S>>> = all.into_iter().map(Some).collect();
    order.into_iter().filter_map(|i| slots[i].take()).collect()
}

/// Read `f` into `buf` (its contents replaced) until `parse` makes something of the text
/// read so far, or to the end of the file: then `parse` is told it has the whole file.
/// Plain `read`s (`read_to_end` asks for the size, `statx`, and the position, `lseek`,
/// first), into a buffer kept between files, not zeroed again for each.
fn read_until<T>(
    mut f: File,
    buf: &mut Vec<u8>,
    parse: fn(&[u8], bool) -> Option<T>,
) -> std::io::Result<T> {
    use std::io::Read;
    let mut len = 0;
    loop {
        if buf.len() - len < 4096 {
            buf.resize((buf.len() * 2).max(16 << 10), 0);
        }
        // 4 KiB first (a row is about 1.5 KiB of a 7 KiB record), then as much again as
        // read so far: the kernel copies only what is asked for.
        let want = len.max(4096).min(buf.len() - len);
        match f.read(&mut buf[len..len + want]) {
            // Read to the end: a short read is the end on a local file system, but not on
            // FUSE, NFS or virtiofs, and a record cut there would be dropped (its name then
            // free to take twice).
            Ok(0) => break,
            Ok(n) => {
                len += n;
                if let Some(done) = parse(&buf[..len], false) {
                    return Ok(done);
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(parse(&buf[..len], true).expect("a whole file is parsed"))
}

/// A new random container id: 64 hex digits from `getrandom(2)`.
pub fn new_id() -> String {
    crate::files::random_hex::<32>()
}

/// Docker's `HumanDuration`: "Less than a second", "3 seconds", "About a minute", "5 minutes",
/// "About an hour", "3 hours", "2 days", "3 weeks", "4 months", "2 years".
pub fn human_duration(d: std::time::Duration) -> String {
    let s = d.as_secs();
    let plural = |n: u64, unit: &str| {
        if n == 1 {
            format!("1 {unit}")
        } else {
            format!("{n} {unit}s")
        }
    };
    match s {
        0 => "Less than a second".into(),
        1..=59 => plural(s, "second"),
        60..=119 => "About a minute".into(),
        120..=2699 => plural(s / 60, "minute"),
        2700..=5399 => "About an hour".into(),
        5400..=172_799 => plural((s + 1800) / 3600, "hour"),
        172_800..=1_209_599 => plural(s / 86_400, "day"),
        1_209_600..=5_183_999 => plural(s / 604_800, "week"),
        5_184_000..=63_071_999 => plural(s / 2_592_000, "month"),
        _ => plural(s / 31_536_000, "year"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn start_time_of_self_is_readable() {
        assert!(process_start_time(std::process::id() as i32).is_some());
    }

    /// A `stop-requested` planted as a symlink (to a file outside the container's directory)
    /// is neither followed to create its target, nor counted as a request; clearing it
    /// removes the link, not its target.
    #[test]
    fn the_stop_request_never_follows_a_symlink_out_of_the_container_dir() {
        let tmp = tempfile::tempdir().unwrap();
        let containers = Containers::at(tmp.path());
        let id = "c0ffee";
        let dir = containers.bundle(id);
        std::fs::create_dir_all(&dir).unwrap();
        let outside = tmp.path().join("outside");
        std::fs::create_dir(&outside).unwrap();
        let victim = outside.join("victim");
        std::os::unix::fs::symlink(&victim, dir.join(STOP_REQUESTED)).unwrap();
        containers.request_stop(id);
        assert!(
            !victim.exists(),
            "request_stop created the symlink's target"
        );
        std::fs::write(&victim, "keep").unwrap();
        assert!(
            !containers.stop_requested(id),
            "a symlink to a file outside counted as a stop request"
        );
        containers.clear_stop_request(id);
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "keep");
        assert!(dir.join(STOP_REQUESTED).symlink_metadata().is_err());
        // The real file still works.
        containers.request_stop(id);
        assert!(containers.stop_requested(id));
        containers.clear_stop_request(id);
        assert!(!containers.stop_requested(id));
    }

    /// A row is read up to the spec's seccomp profile: what follows the key is not even
    /// scanned (here it is not JSON at all), a key-like text inside a string does not cut,
    /// and a record of the older layout (spec first, profile inside) is parsed whole.
    #[test]
    fn a_row_stops_at_the_seccomp_profile_and_older_records_are_read_whole() {
        let head = r#"{"created":"2026-01-01T00:00:00Z","status":{"Status":"exited","ExitCode":3,"FinishedAt":"2026-01-01T00:00:01Z","OOMKilled":false},"spec":{"id":"c0ffee","name":"web","image_ref":"busybox","image_id":"sha256:00","args":["echo","\"seccomp\":"],"network":"none","#;
        let cut = format!("{head}\"seccomp\":{{\"defaultAction\": <not json");
        let row = parse_row(cut.as_bytes(), true)
            .unwrap()
            .expect("read up to the profile");
        assert_eq!(row.spec.name, "web");
        assert_eq!(row.spec.args, ["echo", "\"seccomp\":"]);
        assert!(matches!(row.status, Status::Exited { code: 3, .. }));
        let whole = format!("{head}\"seccomp\":{{\"defaultAction\":\"SCMP_ACT_ERRNO\"}}}}}}");
        assert_eq!(
            parse_row(whole.as_bytes(), true).unwrap().unwrap().spec.id,
            "c0ffee"
        );
        let old = r#"{
  "spec": {"id": "beef", "name": "old", "image_ref": "busybox", "image_id": "sha256:00",
    "args": ["true"], "network": "none", "seccomp": {"defaultAction": "SCMP_ACT_ERRNO"},
    "volumes": [{"source": "/src", "target": "/dst", "readonly": false}]},
  "created": "2026-01-01T00:00:00Z",
  "status": {"Status": "created"}
}"#;
        let row = parse_row(old.as_bytes(), true)
            .unwrap()
            .expect("an older record, read whole");
        assert_eq!(row.spec.name, "old");
        assert_eq!(row.spec.volumes.len(), 1);
    }

    /// The fast path of a listing gives what a whole parse gives, for a record as `run`
    /// writes it with every field a listing reads set: a field moved after the seccomp
    /// profile (or after the spec) would be silently left at its default by `ps`.
    #[test]
    fn a_row_read_up_to_the_profile_is_the_whole_record_for_every_listed_field() {
        let mut spec = crate::runtime::tests::spec();
        spec.remove = true;
        spec.network = crate::spec::NetworkMode::Bridge;
        spec.net.network = Some("web".into());
        spec.cgroup = Some(crate::spec::Limits {
            memory: Some(1 << 20),
            cpus: None,
            pids: None,
        });
        spec.volumes = vec![crate::spec::Volume::bind(
            "/srv".into(),
            "/data".into(),
            true,
        )];
        spec.ports.publish = vec!["8000:80".into()];
        spec.ports.exposed = vec!["80/tcp".into()];
        assert!(spec.seccomp.is_some(), "the profile the fast path stops at");
        let c = Container {
            created: "2026-11-30T00:00:00Z".into(),
            status: Status::Running {
                pid: 42,
                pid_start: 7,
            },
            restart_count: 2,
            started_at: Some("2026-11-30T00:00:01Z".into()),
            restarting: true,
            published: vec!["tcp:0.0.0.0:8000:80".into()],
            spec,
        };
        let text = serde_json::to_vec(&c).unwrap();
        let key = text.windows(10).position(|w| w == b"\"seccomp\":").unwrap();
        assert!(
            text[..key].trim_ascii_end().ends_with(b","),
            "the profile is not where the fast path cuts"
        );
        let fast = parse_row(&text, true).unwrap().unwrap();
        let whole: Container<Listing> = serde_json::from_slice(&text).unwrap();
        assert_eq!(format!("{fast:?}"), format!("{whole:?}"));
        // A read that has not reached the profile yet asks for more; one that has is done,
        // the rest of the file never read.
        assert!(parse_row(&text[..key / 2], false).is_none());
        assert_eq!(
            format!(
                "{:?}",
                parse_row(&text[..key + 10], false).unwrap().unwrap()
            ),
            format!("{whole:?}")
        );
        // And it took the fast path: the text after the key is not read.
        let mut cut = text[..key + 10].to_vec();
        cut.extend_from_slice(b"not json");
        assert_eq!(
            format!("{:?}", parse_row(&cut, true).unwrap().unwrap()),
            format!("{whole:?}")
        );
    }

    /// A listing reads a record only as far as its row: once the profile's key has come, the
    /// rest is neither read nor waited for (here a pipe whose writer never ends it: reading
    /// to the end would block for good).
    #[test]
    fn a_row_is_parsed_without_reading_the_rest_of_its_record() {
        let head = r#"{"created":"2026-01-01T00:00:00Z","status":{"Status":"created"},"spec":{"id":"c0ffee","name":"web","image_ref":"busybox","image_id":"sha256:00","args":["true"],"network":"none","seccomp":{"#;
        let (r, w) = nix::unistd::pipe().unwrap();
        let mut w = File::from(w);
        // In two writes, the key split between them: the first read ends before it.
        let (a, b) = head.split_at(head.len() - 5);
        w.write_all(a.as_bytes()).unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = tx.send(read_until(File::from(r), &mut buf, parse_row).map(|c| {
                let c = c.expect("the row parses");
                (c.spec.id, c.spec.name)
            }));
        });
        std::thread::sleep(std::time::Duration::from_millis(50));
        w.write_all(b.as_bytes()).unwrap();
        let got = rx
            .recv_timeout(std::time::Duration::from_secs(20))
            .expect("the row came without the rest of the file")
            .unwrap();
        assert_eq!(got, ("c0ffee".to_string(), "web".to_string()));
        drop(w);
    }

    #[test]
    fn ids_are_64_hex() {
        let id = new_id();
        assert_eq!(id.len(), 64);
        assert!(id.chars().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(id, new_id());
    }
}
