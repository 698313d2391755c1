//! Files the store and the containers' records are made of, written so that a crash (power
//! loss, `kill -9`) leaves either the old or the new content, never half of it, and locks
//! that serialise the commands sharing them.
//!
//! - [`write_atomic`]: a temporary file in the same directory, written, `fsync(2)`ed, renamed
//!   over the target (`rename(2)` is atomic within a file system) and the directory fsynced
//!   too: without that last step the rename itself may not survive a power loss (see
//!   `fsync(2)`: "calling fsync() does not necessarily ensure that the entry in the directory
//!   containing the file has also reached disk").
//! - Temporary names carry their owner, `.tmp-<pid>-<start time>-<random>`: a garbage
//!   collector removes one only when that process is gone ([`owner_alive`]), never the
//!   in-flight file of a live command; the start time tells a reused pid from the owner.
//! - [`lock`]: an exclusive `flock(2)`, released when dropped (or when the process dies, so a
//!   killed command never leaves a lock behind); a busy one names its holder once and gives
//!   up after `lock-timeout`; [`try_lock`] does not wait.
//! - [`PathLock`]: a lock on a file that is removed by its holder, for per-object locks (one
//!   blob) that must not pile up; a waiter that got an unlinked file tries again.

use std::fs::{self, File};
use std::io::Write;

use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// An exclusive `flock` held until dropped (nix's [`Flock`] unlocks it, then the file closes;
/// one taken through the seam is released by the close).
pub struct Lock {
    _flock: Held,
}

enum Held {
    Flock(#[allow(dead_code)] Flock<File>),
    Traced(#[allow(dead_code)] File),
}

/// `flock(f, LOCK_EX | LOCK_NB)`: the file back with the errno when it is not ours.
fn try_flock(f: File) -> std::result::Result<Flock<File>, (File, Errno)> {
    Flock::lock(f, FlockArg::LockExclusiveNonblock)
}

fn open_lock_file(path: &Path) -> Result<File> {
    File::options()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .open(path)
        .map_err(Error::io("open lock", path))
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
    lock_with(path, None)
}

/// [`lock`] on a directory itself (`flock(2)` takes any open file, a directory too): for a
/// lock that needs no file of its own. No holder pid is written (the kernel's /proc/locks
/// names it). A lock file is an inode made and later freed with its directory: on ext4 with
/// `discard` that free is a synchronous trim of the device (see [`write_holder`]).
pub fn lock_dir(path: &Path) -> Result<Lock> {
    let dir = File::open(path).map_err(Error::io("open lock", path))?;
    lock_opened(path, dir, None, false)
}

/// [`lock`] through the traced seam: the lock file's `openat` and every `flock(LOCK_EX|
/// LOCK_NB)` attempt are `Call`s (the holder's pid written into it afterwards, for the next
/// waiter's message, is bookkeeping and stays untraced, as the close that releases it).
pub fn lock_traced(sys: &crate::sys::Sys, path: &Path) -> Result<Lock> {
    lock_with(path, Some(sys))
}

fn lock_with(path: &Path, sys: Option<&crate::sys::Sys>) -> Result<Lock> {
    let f = match sys {
        Some(sys) => File::from(
            sys.open_mode(path, libc::O_RDWR | libc::O_CREAT | libc::O_CLOEXEC, 0o666)
                .map_err(|e| Error::io("open lock", path)(e.errno.into()))?,
        ),
        None => File::options()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(path)
            .map_err(Error::io("open lock", path))?,
    };
    lock_opened(path, f, sys, true)
}

/// The waiting loop of [`lock_with`] and [`lock_dir`] on the opened `f`; `holder`: write our
/// pid into it once it is ours.
fn lock_opened(
    path: &Path,
    mut f: File,
    sys: Option<&crate::sys::Sys>,
    holder: bool,
) -> Result<Lock> {
    use std::os::fd::AsRawFd;
    let attempt = |f: File| -> std::result::Result<Held, (File, Errno)> {
        match sys {
            Some(sys) => match sys.run(crate::sys::Call::Flock {
                fd: f.as_raw_fd(),
                path: path.to_path_buf(),
            }) {
                Ok(()) => Ok(Held::Traced(f)),
                Err(e) => Err((f, e.errno)),
            },
            None => try_flock(f).map(Held::Flock),
        }
    };
    let timeout = LOCK_TIMEOUT.get().copied().unwrap_or(DEFAULT_LOCK_TIMEOUT);
    let start = std::time::Instant::now();
    let mut pause = std::time::Duration::from_millis(1);
    let mut said = false;
    let f = loop {
        // LOCK_NB returns at once.
        match attempt(f) {
            Ok(locked) => break locked,
            Err((back, Errno::EINTR)) => {
                f = back;
                continue;
            }
            Err((back, Errno::EWOULDBLOCK)) => f = back,
            Err((_, e)) => return Err(Error::io("lock", path)(e.into())),
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
            return Err(LockTimeout {
                path: path.to_path_buf(),
                waited: timeout,
                holder,
            }
            .into());
        }
        std::thread::sleep(pause.min(timeout.saturating_sub(start.elapsed())));
        pause = (pause * 2).min(std::time::Duration::from_millis(100));
    };
    // Who holds it, for the next one kept waiting (best effort: the kernel's /proc/locks is
    // asked first anyway).
    let pid = format!("{}\n", std::process::id());
    let file = match &f {
        Held::Flock(l) => &**l,
        Held::Traced(f) => f,
    };
    if holder {
        let _ = write_holder(file, pid.as_bytes());
    }
    Ok(Lock { _flock: f })
}

/// Replace a lock file's holder line with `line`: written over the old one, then the file cut
/// to its length. Never truncated to zero first: on ext4 that frees the file's block, which a
/// `discard` mount trims with a synchronous device command (3-9 ms each here), and it arms
/// the flush-on-close ext4 does for files rewritten after a truncate to zero; two store
/// locks per `run` paid both. A reader in between sees the new line first (then a tail of
/// the old one): [`holder_of`] reads the first line only.
pub fn write_holder(file: &File, line: &[u8]) -> std::io::Result<()> {
    use std::os::unix::fs::FileExt;
    file.write_all_at(line, 0)?;
    file.set_len(line.len() as u64)
}

/// A lock [`lock`] gave up on: another command held it for the whole `lock-timeout`.
#[derive(Debug, thiserror::Error)]
#[error("gave up waiting for the lock {} after {}: it is {holder}; if that command is hung, stop it, or raise lock-timeout in the config", path.display(), humantime::format_duration(*waited))]
pub struct LockTimeout {
    /// The lock file.
    pub path: PathBuf,
    /// How long it was waited for.
    pub waited: std::time::Duration,
    /// Who holds it ("held by pid N: its command line").
    pub holder: String,
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
        text.lines().next()?.trim().parse::<i32>().ok()
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

/// Take an exclusive lock on `path` if nobody holds it; `None` if a live process does.
pub fn try_lock(path: &Path) -> Result<Option<Lock>> {
    match try_flock(open_lock_file(path)?) {
        Ok(locked) => Ok(Some(Lock {
            _flock: Held::Flock(locked),
        })),
        Err((_, Errno::EWOULDBLOCK)) => Ok(None),
        Err((_, e)) => Err(Error::io("lock", path)(e.into())),
    }
}

/// An exclusive lock on a file its holder removes when done: `<dir>/<name>` exists only while
/// someone holds or waits for it.
pub struct PathLock {
    /// Unlocked by nix's [`Flock`] when dropped, after [`PathLock`]'s own drop unlinked it.
    _file: Flock<File>,
    path: PathBuf,
}

impl PathLock {
    /// Wait for the lock on `path`. A waiter may get the lock on a file the previous holder
    /// has just unlinked (it opened it before the unlink): it then holds nothing anybody else
    /// can see, so it checks that the path still names its inode and tries again otherwise.
    pub fn acquire(path: &Path) -> Result<PathLock> {
        loop {
            // Blocks until the lock is ours.
            let file = Flock::lock(open_lock_file(path)?, FlockArg::LockExclusive)
                .map_err(|(_, e)| Error::io("lock", path)(e.into()))?;
            let ours = file.metadata().map_err(Error::io("stat", path))?.ino();
            match fs::metadata(path) {
                Ok(m) if m.ino() == ours => {
                    return Ok(PathLock {
                        _file: file,
                        path: path.to_path_buf(),
                    })
                }
                _ => continue,
            }
        }
    }
}

impl Drop for PathLock {
    fn drop(&mut self) {
        // Unlinked while still locked, so no newcomer can lock this inode and think it won.
        let _ = fs::remove_file(&self.path);
        // Then self._file's Flock unlocks it, and the file closes.
    }
}

/// Field 22 of `/proc/<pid>/stat`: when the process started, in clock ticks since boot.
pub fn start_time(pid: u32) -> Option<u64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may contain spaces and parens: parse after the last ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    rest.split(' ').nth(19)?.parse().ok()
}

/// Lowercase hex digits of `bytes`, two per byte: random names and ids. (A sha256 digest
/// formats itself: `format!("{:x}", digest)`.)
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

/// `N` random bytes from `getrandom(2)`, as `2N` lowercase hex digits: container ids,
/// volume names, temporary names.
pub fn random_hex<const N: usize>() -> String {
    let mut buf = [0u8; N];
    // SAFETY: buf is a live, writable N-byte buffer. Not nix: 0.29 has no getrandom. Requests
    // of at most 256 bytes are never cut short once the pool is initialised (getrandom(2)).
    let n = unsafe { libc::getrandom(buf.as_mut_ptr().cast(), N, 0) };
    assert_eq!(n, N as isize, "getrandom returned too few bytes");
    hex(&buf)
}

/// `.tmp-<pid>-<start time>-<random>`: a temporary name this process owns.
pub fn temp_name() -> String {
    let pid = std::process::id();
    format!(
        ".tmp-{pid}-{}-{}",
        start_time(pid).unwrap_or(0),
        random_hex::<8>()
    )
}

/// The owner a temporary name carries: its pid, and its start time when the name has one.
/// `None` when `name` is not a temporary name. The one parser of these names: garbage
/// collection, the store's sweep and `system fsck` all ask it.
///
/// - `.tmp-<pid>-<start>-<random>` ([`temp_name`]) and `.<file>.tmp-<pid>-<start>-<random>`
///   (`write_atomic`): pid and start time;
/// - names of older dockling versions, pid only: `.tmp-<pid>-<hex>` (blobs),
///   `.tmp-<diff_id hex>-<pid>-<hex>` (layers), `<file>.tmp<pid>` (atomic writes).
pub fn temp_owner(name: &str) -> Option<(u32, Option<u64>)> {
    let digits = |f: &str| !f.is_empty() && f.len() <= 20 && f.bytes().all(|b| b.is_ascii_digit());
    if let Some((_, rest)) = name.rsplit_once(".tmp-") {
        let f: Vec<&str> = rest.split('-').collect();
        let pid = |s: &str| digits(s).then(|| s.parse::<u32>().ok()).flatten();
        return match f.as_slice() {
            // An old layer's: the diff_id comes first (64 hex digits, never a pid).
            [hex, p, _] if hex.len() == 64 => pid(p).map(|p| (p, None)),
            [p, start, _] if digits(start) => pid(p).map(|p| (p, start.parse().ok())),
            [p, _] => pid(p).map(|p| (p, None)),
            _ => None,
        };
    }
    let (_, pid) = name.rsplit_once(".tmp")?;
    digits(pid)
        .then(|| pid.parse::<u32>().ok())
        .flatten()
        .map(|p| (p, None))
}

/// Whether the process that made the temporary file `name` (see [`temp_owner`]) still runs:
/// its pid exists with the start time the name records. Names of older versions carry only a
/// pid: that pid running counts as alive (erring towards keeping the file). False when `name`
/// is not a temporary name.
pub fn owner_alive(name: &str) -> bool {
    let Some((pid, start)) = temp_owner(name) else {
        return false;
    };
    let Some(now) = start_time(pid) else {
        return false;
    };
    match start {
        Some(start) if start > 0 => start == now,
        _ => true,
    }
}

/// A temporary file or trash whose owner is gone: what a killed command left, which the
/// store's sweep, its garbage collection and `system fsck --repair` remove.
pub fn leftover(name: &str) -> bool {
    // Every such name has a dot (`.trash-`, `.tmp`); blobs and layers, the names a sweep
    // meets thousands of, have none and are passed at the cost of one memchr.
    if !name.as_bytes().contains(&b'.') {
        return false;
    }
    name.starts_with(".trash-") || (temp_owner(name).is_some() && !owner_alive(name))
}

/// Whether some process holds a `flock` on the existing file `path` (a lease, a per-object
/// lock): the lock is tried without waiting and released at once. `None` when it cannot be
/// opened (gone meanwhile). The file is not created.
pub fn held(path: &Path) -> Option<bool> {
    let f = File::options().read(true).open(path).ok()?;
    match try_flock(f) {
        // Released at once, when the Flock is dropped.
        Ok(_) => Some(false),
        Err((_, e)) => (e == Errno::EWOULDBLOCK).then_some(true),
    }
}

/// Remove the lock or lease file `path` if nobody holds it, unlinking it while holding its
/// lock ourselves (as [`PathLock`]'s holder does), so a process that opened it meanwhile finds
/// the path no longer names what it locked and starts over. True when removed.
pub fn remove_if_unheld(path: &Path) -> std::io::Result<bool> {
    let f = match File::options().read(true).open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(true),
        Err(e) => return Err(e),
    };
    let Ok(_locked) = try_flock(f) else {
        return Ok(false);
    };
    match fs::remove_file(path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(true),
        Err(e) => Err(e),
    }
}

/// Mount points at or under `path` (this process's mount namespace). `remove_dir_all` would
/// descend into a file system mounted there (a host directory bound in, say) and empty it:
/// a tree with one is never removed.
pub fn mounts_under(path: &Path) -> Vec<PathBuf> {
    let mountinfo = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    mount_points_under(&mountinfo, path)
}

/// The mount points of `mountinfo` (proc(5)) at or under `root`.
pub fn mount_points_under(mountinfo: &str, root: &Path) -> Vec<PathBuf> {
    let root = fs::canonicalize(root).unwrap_or_else(|_| root.to_path_buf());
    mountinfo
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(|p| PathBuf::from(unescape_mountinfo(p)))
        .filter(|p| p.starts_with(&root))
        .collect()
}

/// mountinfo escapes space, tab, newline and backslash as octal (`\040`).
pub fn unescape_mountinfo(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            out.push((b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0'));
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `fsync(2)` a directory, so the names created, renamed or removed in it are on disk.
pub fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(Error::io("sync", dir))
}

/// The directory `path` is in (`.` for a bare name).
fn parent_of(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// The temporary file `write_atomic` writes `path` through: `.<file name><temp_name>` beside
/// it. The whole file name goes in, so `a.json` and `a.yaml` never share one (the old
/// `with_extension("tmp<pid>")` gave both `a.tmp<pid>`), and it is hidden.
fn temp_for(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    parent_of(path).join(format!(".{name}{}", temp_name()))
}

/// Write `data` to `path` atomically and durably: a temporary file of this process in the
/// same directory, fsynced, renamed over `path`, then the directory fsynced. A crash at any
/// point leaves the old content or the new, and at worst a temporary file whose owner is
/// gone, which the store's garbage collection removes.
pub fn write_atomic(path: &Path, data: &[u8]) -> Result<()> {
    replace(path, data, true)?;
    sync_dir(parent_of(path))
}

/// Write `data` to `path` atomically but not durably: the same temporary file and rename as
/// [`write_atomic`], without the two `fsync`s. A killed process cannot tear the file (the page
/// cache outlives it); only a power loss could lose the change. For container records and
/// bundles: a power loss ends every container anyway, and the next command reaps what it
/// finds. They are written several times on every start, where each fsync pair costs about a
/// millisecond.
pub fn replace_atomic(path: &Path, data: &[u8]) -> Result<()> {
    replace(path, data, false)
}

fn replace(path: &Path, data: &[u8], durable: bool) -> Result<()> {
    let tmp = temp_for(path);
    let written = (|| {
        let mut f = File::create(&tmp).map_err(Error::io("create", &tmp))?;
        f.write_all(data).map_err(Error::io("write", &tmp))?;
        if durable {
            f.sync_all().map_err(Error::io("sync", &tmp))?;
        }
        drop(f);
        crate::fault::point("store.write.before_rename");
        fs::rename(&tmp, path).map_err(Error::io("rename", path))
    })();
    if written.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    written
}

/// Make `fd` non-blocking (its open file description: every copy of it), its other status
/// flags kept. Best effort: a descriptor that refuses stays blocking.
pub fn set_nonblocking(fd: &impl std::os::fd::AsRawFd) {
    use nix::fcntl::{fcntl, FcntlArg, OFlag};
    let flags = fcntl(fd.as_raw_fd(), FcntlArg::F_GETFL).unwrap_or(0);
    let _ = fcntl(
        fd.as_raw_fd(),
        FcntlArg::F_SETFL(OFlag::from_bits_retain(flags) | OFlag::O_NONBLOCK),
    );
}

/// Whether an I/O error only says "not now" (a non-blocking descriptor would block, or a
/// signal came): the relays try again at the next poll.
pub fn retry(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::Interrupted
    )
}

/// Write as much of `pending` as the non-blocking `w` takes now, dropping what was written:
/// `Ok` when it is all out or `w` would block, an error when `w` is gone. The relays'
/// buffered writes (pty master, attach sockets, a container's stdin pipe) all go through it.
pub fn write_now<W: std::io::Write>(
    w: &mut W,
    pending: &mut std::collections::VecDeque<u8>,
) -> std::io::Result<()> {
    while !pending.is_empty() {
        let (chunk, _) = pending.as_slices();
        match w.write(chunk) {
            Ok(0) => return Err(std::io::ErrorKind::WriteZero.into()),
            Ok(n) => {
                pending.drain(..n);
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return Ok(()),
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_is_two_lowercase_digits_per_byte_leading_zeros_kept() {
        assert_eq!(hex(&[]), "");
        assert_eq!(hex(&[0x00, 0x0f, 0xab, 0xff]), "000fabff");
        // The same digits sha2's own formatting gives, which digests use.
        use sha2::Digest;
        let d = sha2::Sha256::digest(b"abc");
        assert_eq!(hex(&d), format!("{d:x}"));
        assert_eq!(
            hex(&d),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn write_atomic_temporaries_of_a_json_and_a_yaml_do_not_collide() {
        let dir = tempfile::tempdir().unwrap();
        write_atomic(&dir.path().join("a.json"), b"json").unwrap();
        write_atomic(&dir.path().join("a.yaml"), b"yaml").unwrap();
        assert_eq!(fs::read(dir.path().join("a.json")).unwrap(), b"json");
        assert_eq!(fs::read(dir.path().join("a.yaml")).unwrap(), b"yaml");
        let names: Vec<String> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names.len(), 2, "temporaries left: {names:?}");
        // Each temporary carries its whole target name (the old `with_extension` gave both
        // `a.tmp<pid>`, so two writers of a.json and a.yaml swapped contents).
        let json = temp_for(&dir.path().join("a.json"));
        let yaml = temp_for(&dir.path().join("a.yaml"));
        let name = |p: &Path| p.file_name().unwrap().to_string_lossy().into_owned();
        assert!(name(&json).starts_with(".a.json.tmp-"), "{json:?}");
        assert!(name(&yaml).starts_with(".a.yaml.tmp-"), "{yaml:?}");
        assert_eq!(json.parent(), Some(dir.path()));
    }

    #[test]
    fn a_temporary_of_this_process_is_alive_and_one_of_a_dead_pid_is_not() {
        let mine = temp_name();
        assert!(owner_alive(&mine), "{mine}");
        assert!(owner_alive(&format!(".index.json{mine}")));
        // Same pid, another start time: a reused pid, not the owner.
        let reused = format!(".tmp-{}-1-00", std::process::id());
        assert!(!owner_alive(&reused));
        // pid_max is at most 2^22: this pid cannot exist.
        assert!(!owner_alive(".tmp-4194305-5-00"));
        assert!(!owner_alive("no-owner"));
    }

    #[test]
    fn temporary_names_of_this_and_older_versions_give_their_owner() {
        let mine = temp_name();
        let pid = std::process::id();
        let (p, start) = temp_owner(&mine).unwrap();
        assert_eq!(p, pid);
        assert!(start.is_some_and(|s| s > 0), "{mine}");
        assert_eq!(temp_owner(&format!(".a.json{mine}")), Some((pid, start)));
        // Older versions: blobs, layers, atomic writes; an all-digit random part of an old
        // blob's name is not taken for a start time.
        assert_eq!(temp_owner(".tmp-1234-abcdef01"), Some((1234, None)));
        assert_eq!(temp_owner(".tmp-1234-01234567"), Some((1234, None)));
        let hex = "a".repeat(64);
        assert_eq!(
            temp_owner(&format!(".tmp-{hex}-77-0123abcd")),
            Some((77, None))
        );
        assert_eq!(temp_owner("index.tmp99"), Some((99, None)));
        assert_eq!(temp_owner(".tmp-"), None);
        assert_eq!(temp_owner("index.json"), None);
        assert_eq!(temp_owner(&hex), None);
        assert!(leftover(".trash-1-2-3"));
        assert!(!leftover(&mine));
        assert!(leftover(".tmp-4194305-5-00"));
    }

    #[test]
    fn a_path_lock_is_removed_by_its_holder() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("blob.lock");
        let l = PathLock::acquire(&p).unwrap();
        assert!(p.exists());
        assert!(try_lock(&p).unwrap().is_none(), "held");
        drop(l);
        assert!(!p.exists());
    }
}
