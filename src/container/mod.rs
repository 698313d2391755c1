//! Containers on disk: one directory per container under `<root>/containers/<id>/` holding
//! `state.json` (what `ps` and `inspect` show), the writable layer (`upper/`, `work/`), the
//! mount point `rootfs/`, and the files bind-mounted into it (`hostname`, `hosts`,
//! `resolv.conf`). State is written to a temporary name and renamed, so a reader never sees
//! half a file; a lock file serialises name allocation so two `run --name web` cannot both win.

pub mod names;

use std::fs::{self, File};
use std::io::Write;
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

/// What is stored for each container.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Container {
    /// The validated spec it was started from.
    pub spec: RunSpec,
    /// Creation time, RFC 3339.
    pub created: String,
    /// Its status.
    pub status: Status,
}

impl Container {
    /// The status as `ps` shows it: `Up 3 seconds`, `Exited (0) 2 minutes ago`, `Created`.
    pub fn status_line(&self, now: std::time::SystemTime) -> String {
        match &self.status {
            Status::Created => "Created".into(),
            Status::Running { .. } if !self.is_alive() => "Exited (unknown)".into(),
            Status::Running { .. } => format!("Up {}", human_duration(since(&self.created, now))),
            Status::Exited { code, finished, .. } => format!(
                "Exited ({code}) {} ago",
                human_duration(since(finished, now))
            ),
        }
    }

    /// True while the recorded pid is still the container's process.
    pub fn is_alive(&self) -> bool {
        match self.status {
            Status::Running { pid, pid_start } => process_start_time(pid) == Some(pid_start),
            _ => false,
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
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may contain spaces and parens: parse after the last ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    rest.split(' ').nth(19)?.parse().ok()
}

/// Now, RFC 3339 with nanoseconds, like Docker's timestamps.
pub fn now_rfc3339() -> String {
    humantime::format_rfc3339_nanos(std::time::SystemTime::now()).to_string()
}

/// All containers of one store root.
pub struct Containers {
    dir: PathBuf,
}

/// An exclusive `flock` held until dropped.
pub struct Lock(File);

impl Drop for Lock {
    fn drop(&mut self) {
        // SAFETY: the fd is owned by self.0 and open; LOCK_UN on it cannot violate memory safety.
        unsafe { libc::flock(self.0.as_raw_fd(), libc::LOCK_UN) };
    }
}

/// How long a command waits for a lock another process holds before it gives up, unless the
/// config's `lock-timeout` says otherwise.
pub const DEFAULT_LOCK_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

/// The config's `lock-timeout`, set once at start ([`set_lock_timeout`]). A process-wide
/// setting rather than a parameter: locks are taken deep inside the store and the container
/// list, and the value is fixed for the life of the command, like the trace sink.
static LOCK_TIMEOUT: std::sync::OnceLock<std::time::Duration> = std::sync::OnceLock::new();

/// Set how long [`lock`] waits (the config's `lock-timeout`); only the first call counts.
pub fn set_lock_timeout(timeout: std::time::Duration) {
    let _ = LOCK_TIMEOUT.set(timeout);
}

/// Take an exclusive lock on `path` (created if missing), and write our pid into it so a
/// command kept waiting can say who holds it.
///
/// `flock(2)` itself would wait forever, silently, behind a hung holder. So the lock is tried
/// without blocking (`LOCK_NB`) and again after a growing pause (at most 100 ms); when it
/// stays busy (5 s, or half the timeout), the holder is named once on stderr ("waiting for the
/// lock … (held by pid N: its command line)"); when the `lock-timeout` runs out, the command
/// fails (exit 125) naming the holder and what to do.
pub fn lock(path: &Path) -> Result<Lock> {
    use std::os::unix::fs::FileExt;
    let f = File::options()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .open(path)
        .map_err(Error::io("open lock", path))?;
    let timeout = LOCK_TIMEOUT.get().copied().unwrap_or(DEFAULT_LOCK_TIMEOUT);
    let start = std::time::Instant::now();
    let mut pause = std::time::Duration::from_millis(1);
    let mut said = false;
    loop {
        // SAFETY: flock on an fd we own; LOCK_NB returns at once.
        if unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0 {
            break;
        }
        let e = std::io::Error::last_os_error();
        match e.raw_os_error() {
            Some(libc::EWOULDBLOCK) => {}
            Some(libc::EINTR) => continue,
            _ => return Err(Error::io("lock", path)(e)),
        }
        // A lock busy for a moment is normal (parallel runs take turns): the holder is
        // named only once the wait is long enough to notice (5 s, or half the timeout).
        let noticeable = start.elapsed() >= (timeout / 2).min(std::time::Duration::from_secs(5));
        if !noticeable && start.elapsed() < timeout {
            std::thread::sleep(pause);
            pause = (pause * 2).min(std::time::Duration::from_millis(100));
            continue;
        }
        let holder = holder_of(&f);
        if !said {
            eprintln!(
                "dockling: waiting for the lock {} ({holder})",
                path.display()
            );
            said = true;
        }
        if start.elapsed() >= timeout {
            return Err(Error::Usage(format!(
                "gave up waiting for the lock {} after {}: it is {holder}; if that command is hung, stop it, or raise lock-timeout in the config",
                path.display(),
                humantime::format_duration(timeout)
            )));
        }
        std::thread::sleep(pause.min(timeout.saturating_sub(start.elapsed())));
        pause = (pause * 2).min(std::time::Duration::from_millis(100));
    }
    // Who holds it, for the next one kept waiting (best effort: the kernel's /proc/locks is
    // asked first anyway).
    let pid = format!("{}\n", std::process::id());
    let _ = f.set_len(0).and_then(|_| f.write_all_at(pid.as_bytes(), 0));
    Ok(Lock(f))
}

/// "held by pid N: its command line" for the lock on `f`: the kernel's `/proc/locks` names
/// the process that took a `flock` on this inode (proc(5)); failing that, the pid the holder
/// wrote into the file.
fn holder_of(f: &File) -> String {
    use std::os::unix::fs::MetadataExt;
    let pid = f.metadata().ok().and_then(|md| {
        let (major, minor) = (libc::major(md.dev()), libc::minor(md.dev()));
        let id = format!("{major:02x}:{minor:02x}:{}", md.ino());
        let locks = fs::read_to_string("/proc/locks").ok()?;
        locks.lines().find_map(|l| {
            // "1: FLOCK  ADVISORY  WRITE 1234 08:01:5678 0 EOF"; waiters have "->".
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.len() >= 6 && f[1] == "FLOCK" && f[5] == id)
                .then(|| f[4].parse::<i32>().ok())
                .flatten()
                .filter(|p| *p > 0)
        })
    });
    let pid = pid.or_else(|| {
        let mut text = String::new();
        use std::io::Read;
        (&*f).take(32).read_to_string(&mut text).ok()?;
        text.trim().parse::<i32>().ok()
    });
    match pid {
        Some(pid) => {
            let cmdline = fs::read(format!("/proc/{pid}/cmdline"))
                .map(|c| {
                    let words: Vec<String> = c
                        .split(|b| *b == 0)
                        .filter(|w| !w.is_empty())
                        .map(|w| String::from_utf8_lossy(w).into_owned())
                        .collect();
                    let line = words.join(" ");
                    match line.char_indices().nth(200) {
                        Some((i, _)) => format!("{}…", &line[..i]),
                        None => line,
                    }
                })
                .unwrap_or_else(|_| "gone".into());
            format!("held by pid {pid}: {cmdline}")
        }
        None => "held by a process dockling cannot name".into(),
    }
}

/// Write `data` to `path` atomically: a temporary file in the same directory, then rename.
pub fn write_atomic(path: &Path, data: &[u8]) -> Result<()> {
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    let mut f = File::create(&tmp).map_err(Error::io("create", &tmp))?;
    f.write_all(data).map_err(Error::io("write", &tmp))?;
    drop(f);
    fs::rename(&tmp, path).map_err(Error::io("rename", path))
}

impl Containers {
    /// The containers under `root`.
    pub fn open(root: &Path) -> Result<Containers> {
        // 0700 inside a 0711 root: a container's upper directory holds the image's setuid
        // files too (see `secure_root`).
        crate::image::store::secure_root(root)?;
        let dir = root.join("containers");
        Ok(Containers { dir })
    }

    /// The directory of one container.
    pub fn bundle(&self, id: &str) -> PathBuf {
        self.dir.join(id)
    }

    /// Lock held while allocating names and creating container directories.
    pub fn lock(&self) -> Result<Lock> {
        lock(&self.dir.join(".lock"))
    }

    /// Every container, newest first.
    pub fn list(&self) -> Result<Vec<Container>> {
        let mut out = Vec::new();
        for entry in fs::read_dir(&self.dir).map_err(Error::io("read", &self.dir))? {
            let Ok(entry) = entry else { continue };
            let path = entry.path().join("state.json");
            // A directory without state is a container still being created or half removed.
            let Ok(text) = fs::read(&path) else { continue };
            match serde_json::from_slice::<Container>(&text) {
                Ok(c) => out.push(c),
                Err(e) => eprintln!("dockling: warning: ignoring {}: {e}", path.display()),
            }
        }
        out.sort_by(|a, b| b.created.cmp(&a.created));
        Ok(out)
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
        let all = self.list()?;
        if let Some(c) = all
            .iter()
            .find(|c| c.spec.name == name || c.spec.id == name)
        {
            return Ok(c.clone());
        }
        let matches: Vec<&Container> = all
            .iter()
            .filter(|c| !name.is_empty() && c.spec.id.starts_with(name))
            .collect();
        match matches.as_slice() {
            [one] => Ok((*one).clone()),
            [] => Err(Error::NotFound(format!("no such container: {name}"))),
            _ => Err(Error::Usage(format!(
                "multiple containers match id prefix {name}: give more digits or the name"
            ))),
        }
    }

    /// Save a container's state.
    pub fn save(&self, c: &Container) -> Result<()> {
        let data = serde_json::to_vec_pretty(c).expect("state serialises");
        write_atomic(&self.bundle(&c.spec.id).join("state.json"), &data)
    }

    /// True if a container already has this name.
    pub fn name_taken(&self, name: &str) -> Result<Option<String>> {
        Ok(self
            .list()?
            .into_iter()
            .find(|c| c.spec.name == name)
            .map(|c| c.spec.id))
    }

    /// Delete a container's directory. Its mounts lived in its own mount namespace, so they
    /// are already gone; `rootfs/` of `--layers copy` is plain files.
    pub fn remove_dir(&self, id: &str) -> Result<()> {
        let dir = self.bundle(id);
        // The container's own `dockling run` may be writing its last state into the directory
        // at this moment (rm -f just killed its process): that write lands between
        // remove_dir_all's listing and its final rmdir, which then fails with ENOTEMPTY. The
        // engine writes once and is done, so removing again finishes the job.
        let mut tries = 0;
        loop {
            match fs::remove_dir_all(&dir) {
                Ok(()) => return Ok(()),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
                Err(e) if e.kind() == std::io::ErrorKind::DirectoryNotEmpty && tries < 5 => {
                    tries += 1
                }
                Err(e) => return Err(Error::io("remove", &dir)(e)),
            }
        }
    }
}

/// A new random container id: 64 hex digits from `getrandom(2)`.
pub fn new_id() -> String {
    let mut buf = [0u8; 32];
    // SAFETY: buf is a live, writable 32-byte buffer.
    let n = unsafe { libc::getrandom(buf.as_mut_ptr().cast(), buf.len(), 0) };
    assert_eq!(n, 32, "getrandom returned too few bytes");
    hex::encode(buf)
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

    #[test]
    fn start_time_of_self_is_readable() {
        assert!(process_start_time(std::process::id() as i32).is_some());
    }

    #[test]
    fn ids_are_64_hex() {
        let id = new_id();
        assert_eq!(id.len(), 64);
        assert!(id.chars().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(id, new_id());
    }
}
