//! What a container changed in its image (`dockling diff`, and the list `commit` walks).
//!
//! With overlayfs the answer is the container's `upper/` directory: every file the container
//! wrote was copied up there (`echo >> /etc/passwd` copies the whole file first), every file it
//! deleted from the image is a *whiteout* there (a character device 0/0 of the same name), and
//! a directory it deleted and made again is *opaque* (the `trusted.overlay.opaque` xattr, or
//! `user.overlay.opaque` for unprivileged mounts, set to `y`: nothing below shows through).
//! [`upper_changes`] reads it as Docker's overlay2 driver does (moby's `OverlayChanges`): a
//! whiteout is `D`, an opaque directory that the image had is `D` too (the image's directory
//! is gone; what the container put in it follows as `A`), anything else is `A` if the image
//! has no such path and `C` if it does (a directory only when its mode or owner differ: see
//! `walk_upper`),
//! and the parent directory of an `A` or `D` is listed as `C` first, in walk order (names in
//! byte order).
//!
//! `--layers copy` has no upper directory: [`tree_changes`] compares the container's copy with
//! the image's layers merged as overlayfs would show them, the way Docker's naive diff does
//! (mode, owner, device and, for non-directories, size and mtime), in the same order.
//!
//! Everything is read through descriptors: each name opened beneath its parent's fd with
//! `O_NOFOLLOW|RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS`, never a path string joined on the host.
//! A running container can plant symlinks in its upper directory; they are reported, never
//! followed.

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::{OsStr, OsString};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use crate::sys::fs as safefs;

/// One name beneath a directory fd: no symlink followed, no `..` out, no magic link.
pub(crate) const BENEATH: u64 =
    libc::RESOLVE_BENEATH | libc::RESOLVE_NO_SYMLINKS | libc::RESOLVE_NO_MAGICLINKS;

/// The files the engine itself makes in a container's `/etc` as mount points for its own
/// `hostname`, `hosts` and `resolv.conf` (Docker keeps them in an init layer below the
/// container's): empty files that are no change of the container's, so neither `diff` nor
/// `commit` shows them.
const MOUNT_POINTS: &[&str] = &["/etc/hostname", "/etc/hosts", "/etc/resolv.conf"];

/// What happened to a path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `A`: not in the image.
    Added,
    /// `C`: in the image, different now.
    Changed,
    /// `D`: in the image, gone now.
    Deleted,
}

impl Kind {
    /// Docker's letter.
    pub fn letter(self) -> char {
        match self {
            Kind::Added => 'A',
            Kind::Changed => 'C',
            Kind::Deleted => 'D',
        }
    }
}

/// One line of `docker diff`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// What happened.
    pub kind: Kind,
    /// The absolute path inside the container.
    pub path: PathBuf,
}

impl std::fmt::Display for Change {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.kind.letter(), self.path.display())
    }
}

/// `fstat(2)`.
pub(crate) fn fstat(fd: BorrowedFd<'_>) -> std::io::Result<libc::stat> {
    Ok(nix::sys::stat::fstat(fd.as_raw_fd())?)
}

/// A whiteout: a character device with device number 0/0.
pub(crate) fn is_whiteout(st: &libc::stat) -> bool {
    st.st_mode & libc::S_IFMT == libc::S_IFCHR && st.st_rdev == 0
}

fn is_dir(st: &libc::stat) -> bool {
    st.st_mode & libc::S_IFMT == libc::S_IFDIR
}

/// Open `name` beneath `dir` without following it (`O_PATH`): `None` when it is not there.
pub(crate) fn open_child(dir: BorrowedFd<'_>, name: &OsStr) -> std::io::Result<Option<OwnedFd>> {
    match safefs::openat2(
        dir,
        Path::new(name),
        libc::O_PATH | libc::O_NOFOLLOW,
        0,
        BENEATH,
    ) {
        Ok(fd) => Ok(Some(fd)),
        Err(e) if matches!(e.raw_os_error(), Some(libc::ENOENT | libc::ENOTDIR)) => Ok(None),
        Err(e) => Err(e),
    }
}

/// The directory an `O_PATH` fd names, open for reading (listing, xattrs).
pub(crate) fn open_dir(fd: BorrowedFd<'_>) -> std::io::Result<OwnedFd> {
    safefs::openat2(
        fd,
        Path::new("."),
        libc::O_RDONLY | libc::O_DIRECTORY,
        0,
        BENEATH,
    )
}

/// The names in a directory (open for reading), in byte order.
pub(crate) fn names(dir: &OwnedFd) -> std::io::Result<Vec<OsString>> {
    let mut v: Vec<OsString> = std::fs::read_dir(safefs::fd_path(dir))?
        .map(|e| e.map(|e| e.file_name()))
        .collect::<std::io::Result<_>>()?;
    v.sort();
    Ok(v)
}

/// True when the directory (open for reading) is opaque: overlayfs shows nothing of the
/// layers below it. The privileged mark, or the one unprivileged overlay mounts use.
pub(crate) fn is_opaque(dir: BorrowedFd<'_>) -> std::io::Result<bool> {
    for key in ["trusted.overlay.opaque", "user.overlay.opaque"] {
        if safefs::get_xattr_fd(dir, key)?.as_deref() == Some(b"y") {
            return Ok(true);
        }
    }
    Ok(false)
}

/// One directory of the image as overlayfs merges it: the same directory in each layer that
/// contributes to it, top layer first (the stack ends at an opaque one).
type Stack = Vec<OwnedFd>;

/// A name in a merged directory.
enum Entry {
    /// In no layer, or whited out.
    Missing,
    /// A directory: its stat (from the top layer that has it) and its stack.
    Dir(libc::stat, Stack),
    /// Anything else, from the topmost layer that has it.
    Other(libc::stat),
}

/// The image's layers as one tree, read as overlayfs merges them (whiteouts hide the layers
/// below; an opaque directory hides the directories below it; a non-directory above a
/// directory hides it).
pub struct Lower {
    root: Stack,
}

impl Lower {
    /// Open the unpacked layer directories `layers` (bottom first, as a `RunSpec` lists them:
    /// the store's own paths).
    pub fn open(layers: &[PathBuf]) -> std::io::Result<Lower> {
        let mut root = Vec::with_capacity(layers.len());
        for l in layers.iter().rev() {
            root.push(open_dir(safefs::open_root(l)?.as_fd())?);
        }
        Ok(Lower { root })
    }

    fn child(stack: &[OwnedFd], name: &OsStr) -> std::io::Result<Entry> {
        let mut dirs = Stack::new();
        let mut top: Option<libc::stat> = None;
        for dir in stack {
            let Some(fd) = open_child(dir.as_fd(), name)? else {
                continue;
            };
            let st = fstat(fd.as_fd())?;
            if !is_dir(&st) {
                if !dirs.is_empty() {
                    break;
                }
                if is_whiteout(&st) {
                    return Ok(Entry::Missing);
                }
                return Ok(Entry::Other(st));
            }
            let d = open_dir(fd.as_fd())?;
            let opaque = is_opaque(d.as_fd())?;
            top.get_or_insert(st);
            dirs.push(d);
            if opaque {
                break;
            }
        }
        Ok(match top {
            Some(st) => Entry::Dir(st, dirs),
            None => Entry::Missing,
        })
    }

    /// The stat of `path` (absolute, inside the image) in the merged tree, or `None`.
    pub fn stat(&self, path: &Path) -> std::io::Result<Option<libc::stat>> {
        let rel = safefs::relative(path);
        let parts: Vec<&OsStr> = rel.iter().collect();
        let mut stack: Option<Stack> = None;
        for (i, name) in parts.iter().enumerate() {
            let cur = stack.as_deref().unwrap_or(&self.root);
            match Lower::child(cur, name)? {
                Entry::Missing => return Ok(None),
                Entry::Other(st) if i + 1 == parts.len() => return Ok(Some(st)),
                Entry::Other(_) => return Ok(None),
                Entry::Dir(st, _) if i + 1 == parts.len() => return Ok(Some(st)),
                Entry::Dir(_, s) => stack = Some(s),
            }
        }
        // The root itself.
        match self.root.first() {
            Some(d) => fstat(d.as_fd()).map(Some),
            None => Ok(None),
        }
    }

    /// The image's root directory, to walk from with [`Lower::lookup`].
    pub(crate) fn root(&self) -> Option<&[OwnedFd]> {
        Some(&self.root)
    }

    /// `name` in the merged directory `stack` (`None`: the image has no directory there):
    /// its stat, and its own stack when it is a directory.
    pub(crate) fn lookup(
        stack: Option<&[OwnedFd]>,
        name: &OsStr,
    ) -> std::io::Result<(Option<libc::stat>, Option<Stack>)> {
        let Some(stack) = stack else {
            return Ok((None, None));
        };
        Ok(match Lower::child(stack, name)? {
            Entry::Missing => (None, None),
            Entry::Other(st) => (Some(st), None),
            Entry::Dir(st, s) => (Some(st), Some(s)),
        })
    }

    /// The entries of a merged directory, by name.
    fn list(stack: &[OwnedFd]) -> std::io::Result<BTreeMap<OsString, Entry>> {
        let mut all = BTreeSet::new();
        for d in stack {
            all.extend(names(d)?);
        }
        let mut out = BTreeMap::new();
        for n in all {
            let e = Lower::child(stack, &n)?;
            if !matches!(e, Entry::Missing) {
                out.insert(n, e);
            }
        }
        Ok(out)
    }
}

/// Go's `sameFsTime`: equal seconds, and equal nanoseconds unless either is 0 (a file system
/// or archive without them).
fn same_time(a: &libc::stat, b: &libc::stat) -> bool {
    a.st_mtime == b.st_mtime
        && (a.st_mtime_nsec == b.st_mtime_nsec || a.st_mtime_nsec == 0 || b.st_mtime_nsec == 0)
}

/// A mount point the engine made (see [`MOUNT_POINTS`]): an empty regular file at one of
/// those paths.
pub(crate) fn engine_mount_point(path: &Path, st: &libc::stat) -> bool {
    st.st_mode & libc::S_IFMT == libc::S_IFREG
        && st.st_size == 0
        && MOUNT_POINTS.iter().any(|m| Path::new(m) == path)
}

/// What the walk of an upper directory saw, for the trace note.
#[derive(Debug, Default, Clone, Copy)]
pub struct WalkStats {
    /// Entries looked at.
    pub entries: u64,
    /// Whiteouts (deleted files).
    pub whiteouts: u64,
    /// Opaque directories.
    pub opaque: u64,
}

/// The changes recorded in the upper directory `upper` (an fd of it) over the image `lower`,
/// as `docker diff` lists them, and what the walk saw.
pub fn upper_changes(
    upper: BorrowedFd<'_>,
    lower: &Lower,
) -> std::io::Result<(Vec<Change>, WalkStats)> {
    let mut out = Vec::new();
    let mut changed_dirs = BTreeSet::new();
    let mut stats = WalkStats::default();
    let dir = open_dir(upper)?;
    walk_upper(
        &dir,
        Path::new("/"),
        lower.root(),
        &mut out,
        &mut changed_dirs,
        &mut stats,
    )?;
    Ok((out, stats))
}

/// One directory of the upper directory, at `at`; `lower` is the image's directory there
/// (`None`: it has none), so each name is one lookup per layer, not a walk from the root.
fn walk_upper(
    dir: &OwnedFd,
    at: &Path,
    lower: Option<&[OwnedFd]>,
    out: &mut Vec<Change>,
    changed_dirs: &mut BTreeSet<PathBuf>,
    stats: &mut WalkStats,
) -> std::io::Result<()> {
    for name in names(dir)? {
        let Some(fd) = open_child(dir.as_fd(), &name)? else {
            continue; // removed while we walked
        };
        let st = fstat(fd.as_fd())?;
        let path = at.join(&name);
        stats.entries += 1;
        let sub = if is_dir(&st) {
            Some(open_dir(fd.as_fd())?)
        } else {
            None
        };
        let (lower_st, lower_dir) = Lower::lookup(lower, &name)?;
        let kind = if is_whiteout(&st) {
            stats.whiteouts += 1;
            Some(Kind::Deleted)
        } else if sub.as_ref().map(|d| is_opaque(d.as_fd())).transpose()? == Some(true)
            && lower_st.is_some()
        {
            stats.opaque += 1;
            Some(Kind::Deleted)
        } else if lower_st.is_none() && engine_mount_point(&path, &st) {
            None
        } else {
            match lower_st {
                None => Some(Kind::Added),
                // A directory copied up only because something below it changed. Docker also
                // compares its size and mtime; those change here whenever the engine makes
                // its mount points (Docker makes them in an init layer below the container's),
                // so only its mode and owner count: a change below it lists it anyway.
                Some(l)
                    if is_dir(&l)
                        && is_dir(&st)
                        && l.st_mode == st.st_mode
                        && l.st_uid == st.st_uid
                        && l.st_gid == st.st_gid =>
                {
                    None
                }
                Some(_) => Some(Kind::Changed),
            }
        };
        if let Some(kind) = kind {
            if is_dir(&st) {
                changed_dirs.insert(path.clone());
            }
            if matches!(kind, Kind::Added | Kind::Deleted) {
                if let Some(parent) = path.parent().filter(|p| *p != Path::new("/")) {
                    if changed_dirs.insert(parent.to_path_buf()) {
                        out.push(Change {
                            kind: Kind::Changed,
                            path: parent.to_path_buf(),
                        });
                    }
                }
            }
            out.push(Change {
                kind,
                path: path.clone(),
            });
        }
        if let Some(d) = sub {
            walk_upper(&d, &path, lower_dir.as_deref(), out, changed_dirs, stats)?;
        }
    }
    Ok(())
}

/// Docker's `statDifferent`: mode, owner and device always; size and mtime for
/// non-directories only (a directory's are no measure of change, moby#9874).
fn stat_different(a: &libc::stat, b: &libc::stat) -> bool {
    a.st_mode != b.st_mode
        || a.st_uid != b.st_uid
        || a.st_gid != b.st_gid
        || a.st_rdev != b.st_rdev
        || (!is_dir(a) && (!same_time(a, b) || a.st_size != b.st_size))
}

/// The changes of a `--layers copy` container: its root directory `tree` (an fd of it)
/// against the image `lower`.
pub fn tree_changes(tree: BorrowedFd<'_>, lower: &Lower) -> std::io::Result<Vec<Change>> {
    let mut out = Vec::new();
    let dir = open_dir(tree)?;
    walk_tree(&dir, Some(&lower.root), Path::new("/"), false, &mut out)?;
    Ok(out)
}

/// moby's `addChanges` for one directory `dir` at `at`, whose image counterpart is `old`
/// (`None`: the image has no directory here). `added`: `at` itself was listed already.
fn walk_tree(
    dir: &OwnedFd,
    old: Option<&[OwnedFd]>,
    at: &Path,
    added: bool,
    out: &mut Vec<Change>,
) -> std::io::Result<()> {
    let start = out.len();
    let mut old_children = match old {
        Some(s) => Lower::list(s)?,
        None => BTreeMap::new(),
    };
    for name in names(dir)? {
        let Some(fd) = open_child(dir.as_fd(), &name)? else {
            continue;
        };
        let st = fstat(fd.as_fd())?;
        let path = at.join(&name);
        let old_child = old_children.remove(&name);
        let mut child_added = false;
        let old_stack = match &old_child {
            None => {
                if !engine_mount_point(&path, &st) {
                    out.push(Change {
                        kind: Kind::Added,
                        path: path.clone(),
                    });
                }
                child_added = true;
                None
            }
            Some(Entry::Dir(ost, stack)) => {
                if stat_different(ost, &st) {
                    out.push(Change {
                        kind: Kind::Changed,
                        path: path.clone(),
                    });
                    child_added = true;
                }
                Some(stack.as_slice())
            }
            Some(Entry::Other(ost)) => {
                if stat_different(ost, &st) {
                    out.push(Change {
                        kind: Kind::Changed,
                        path: path.clone(),
                    });
                    child_added = true;
                }
                None
            }
            Some(Entry::Missing) => None,
        };
        if is_dir(&st) {
            let d = open_dir(fd.as_fd())?;
            walk_tree(&d, old_stack, &path, child_added, out)?;
        }
    }
    for name in old_children.keys() {
        out.push(Change {
            kind: Kind::Deleted,
            path: at.join(name),
        });
    }
    // A directory with changes inside is listed before them, even if it did not change
    // itself (so its permissions are saved and restored).
    if out.len() > start && !added && at != Path::new("/") {
        out.insert(
            start,
            Change {
                kind: Kind::Changed,
                path: at.to_path_buf(),
            },
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn whiteout(p: &Path) {
        nix::sys::stat::mknod(
            p,
            nix::sys::stat::SFlag::S_IFCHR,
            nix::sys::stat::Mode::empty(),
            0,
        )
        .expect("mknod a whiteout (run the unit tests as root)");
    }

    fn lines(v: &[Change]) -> Vec<String> {
        v.iter().map(|c| c.to_string()).collect()
    }

    #[test]
    fn an_upper_dir_reads_as_docker_diff() {
        let image = tempfile::tempdir().unwrap();
        let upper = tempfile::tempdir().unwrap();
        let i = image.path();
        std::fs::create_dir_all(i.join("etc")).unwrap();
        std::fs::write(i.join("etc/motd"), "hi").unwrap();
        std::fs::write(i.join("etc/passwd"), "root").unwrap();
        std::fs::create_dir_all(i.join("home/old")).unwrap();
        let u = upper.path();
        std::fs::create_dir_all(u.join("etc")).unwrap();
        whiteout(&u.join("etc/motd"));
        std::fs::write(u.join("etc/passwd"), "root\nx").unwrap();
        std::fs::write(u.join("etc/hostname"), "").unwrap();
        std::fs::create_dir_all(u.join("root")).unwrap();
        std::fs::write(u.join("root/x"), "1").unwrap();
        let lower = Lower::open(&[i.to_path_buf()]).unwrap();
        let root = safefs::open_root(u).unwrap();
        let (got, stats) = upper_changes(root.as_fd(), &lower).unwrap();
        assert_eq!(stats.whiteouts, 1);
        assert_eq!(
            lines(&got),
            [
                "C /etc",
                "D /etc/motd",
                "C /etc/passwd",
                "A /root",
                "A /root/x"
            ]
        );
    }

    #[test]
    fn a_copy_reads_as_docker_diff() {
        let image = tempfile::tempdir().unwrap();
        let copy = tempfile::tempdir().unwrap();
        for d in [image.path(), copy.path()] {
            std::fs::create_dir_all(d.join("etc")).unwrap();
            std::fs::create_dir_all(d.join("bin")).unwrap();
            std::fs::write(d.join("bin/sh"), "sh").unwrap();
        }
        std::fs::write(image.path().join("etc/motd"), "hi").unwrap();
        std::fs::write(copy.path().join("etc/new"), "n").unwrap();
        // Same content and times: unchanged.
        let t = std::fs::metadata(image.path().join("bin/sh"))
            .unwrap()
            .modified()
            .unwrap();
        std::fs::File::options()
            .write(true)
            .open(copy.path().join("bin/sh"))
            .unwrap()
            .set_modified(t)
            .unwrap();
        let lower = Lower::open(&[image.path().to_path_buf()]).unwrap();
        let root = safefs::open_root(copy.path()).unwrap();
        let got = tree_changes(root.as_fd(), &lower).unwrap();
        assert_eq!(lines(&got), ["C /etc", "A /etc/new", "D /etc/motd"]);
    }
}
