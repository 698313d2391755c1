//! Path resolution that cannot escape a root directory.
//!
//! Image content is untrusted: a layer may contain `etc -> /` or `../../..`, and a mount
//! target like `/data` inside the image may be a symlink to a host directory. Joining strings
//! and trusting the result would let a hostile image make dockling write to, or mount over,
//! the host. Instead every lookup inside a rootfs goes through `openat2(2)` with
//! `RESOLVE_IN_ROOT`, which makes the kernel treat the directory fd as `/` for `..` and for
//! absolute symlinks, so resolution stays inside it whatever the image contains.
//! Mounts then target `/proc/self/fd/N` of the resolved fd (as runc does), so there is no
//! window in which the path could be swapped.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use nix::errno::Errno;
use nix::sys::stat::Mode;

/// `openat2(2)` with `how.resolve = resolve` (nix's wrapper), `O_CLOEXEC` always added;
/// retried on `EAGAIN` (a concurrent rename during a `RESOLVE_IN_ROOT` walk, openat2(2)) and
/// `EINTR`.
pub fn openat2(
    dir: BorrowedFd<'_>,
    path: &Path,
    flags: i32,
    mode: u32,
    resolve: u64,
) -> io::Result<OwnedFd> {
    let fd = openat2_raw(dir.as_raw_fd(), path, flags, mode, resolve)?;
    // SAFETY: the kernel returned a new descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// [`openat2`] on a raw directory descriptor, returning the raw new one (for the seam, whose
/// calls carry descriptor numbers; the caller owns the result).
pub fn openat2_raw(
    dir: RawFd,
    path: &Path,
    flags: i32,
    mode: u32,
    resolve: u64,
) -> Result<RawFd, Errno> {
    use nix::fcntl::{OFlag, OpenHow, ResolveFlag};
    let flags = OFlag::from_bits_retain(flags | libc::O_CLOEXEC);
    let mut how = OpenHow::new()
        .flags(flags)
        .resolve(ResolveFlag::from_bits_retain(resolve));
    // The kernel refuses a mode without O_CREAT or O_TMPFILE (EINVAL).
    if flags.intersects(OFlag::O_CREAT | OFlag::O_TMPFILE) {
        how = how.mode(Mode::from_bits_truncate(mode as libc::mode_t));
    }
    loop {
        match nix::fcntl::openat2(dir, path, how) {
            Err(Errno::EAGAIN | Errno::EINTR) => continue,
            other => return other,
        }
    }
}

/// Resolution flags for lookups inside an untrusted tree.
pub const IN_ROOT: u64 = libc::RESOLVE_IN_ROOT | libc::RESOLVE_NO_MAGICLINKS;

/// Open a directory as the root of later lookups.
pub fn open_root(path: &Path) -> io::Result<OwnedFd> {
    use std::os::unix::fs::OpenOptionsExt;
    // std's open adds O_CLOEXEC, and read access is O_RDONLY (0): the same openat as
    // open(path, O_PATH|O_DIRECTORY|O_CLOEXEC).
    let f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_PATH | libc::O_DIRECTORY)
        .open(path)?;
    Ok(OwnedFd::from(f))
}

/// An `O_PATH` descriptor of the directory `rel` of the tree under `root` (resolved inside,
/// as [`IN_ROOT`] does), made with its missing parents (`mode`) when it does not exist: where
/// an unpacker puts an entry whose archive lists no entries for its directories.
pub fn open_or_make_dir_in_root(
    root: BorrowedFd<'_>,
    rel: &Path,
    mode: u32,
) -> io::Result<OwnedFd> {
    match openat2(root, rel, libc::O_PATH | libc::O_DIRECTORY, 0, IN_ROOT) {
        Ok(fd) => Ok(fd),
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {
            let target = resolve_in_root(root, rel)?;
            mkdir_all_in_root(root, &target, mode)
        }
        Err(e) => Err(e),
    }
}

/// Create every missing directory of `path` inside `root` and return an `O_PATH` fd of the
/// last one. Each component is created with `mkdirat` on the fd of its resolved parent.
pub fn mkdir_all_in_root(root: BorrowedFd<'_>, path: &Path, mode: u32) -> io::Result<OwnedFd> {
    let rel = relative(path);
    let mut dir = openat2(
        root,
        Path::new("."),
        libc::O_PATH | libc::O_DIRECTORY,
        0,
        IN_ROOT,
    )?;
    let mut walked = PathBuf::new();
    for comp in rel.components() {
        let Component::Normal(name) = comp else {
            continue;
        };
        walked.push(name);
        match mkdir_at(dir.as_fd(), name, mode) {
            Ok(()) => {}
            Err(e) if e.raw_os_error() == Some(libc::EEXIST) => {}
            Err(e) => return Err(e),
        }
        // Resolve from the root again so a component that is a symlink stays inside it.
        dir = openat2(root, &walked, libc::O_PATH | libc::O_DIRECTORY, 0, IN_ROOT)?;
    }
    Ok(dir)
}

/// The `/proc/self/fd/N` path naming an open descriptor: mounting onto it mounts onto exactly
/// the object that was resolved, not whatever the path names later.
pub fn fd_path(fd: &OwnedFd) -> PathBuf {
    PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()))
}

/// `path` with its root and any `.`/`..` prefix removed: what `RESOLVE_IN_ROOT` expects.
pub fn relative(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::ParentDir => {
                out.pop();
            }
            _ => {}
        }
    }
    if out.as_os_str().is_empty() {
        out.push(".");
    }
    out
}

/// A C string from a file name (no NUL inside, checked).
fn cname(name: &std::ffi::OsStr) -> io::Result<CString> {
    CString::new(name.as_bytes()).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))
}

fn cvt(rc: libc::c_int) -> io::Result<()> {
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// `unlinkat(dir, name)`, removing a directory tree if that is what is there; a missing name is fine.
pub fn remove_at(dir: BorrowedFd<'_>, name: &std::ffi::OsStr) -> io::Result<()> {
    remove_walk(dir, name, 0)
}

/// [`remove_at`] that never enters another mount: each directory is opened with
/// `RESOLVE_NO_XDEV` as well, so a file system mounted anywhere in the tree stops the removal
/// with `EXDEV` before anything of it is touched (what is above it may be gone by then). For
/// a layer directory a mount may be left on: the walk goes by descriptors, so neither a path
/// check done before nor a mount made meanwhile can send it into the mounted files.
pub fn remove_at_in_mount(dir: BorrowedFd<'_>, name: &std::ffi::OsStr) -> io::Result<()> {
    remove_walk(dir, name, libc::RESOLVE_NO_XDEV)
}

fn remove_walk(dir: BorrowedFd<'_>, name: &std::ffi::OsStr, resolve: u64) -> io::Result<()> {
    use nix::unistd::{unlinkat, UnlinkatFlags};
    match unlinkat(Some(dir.as_raw_fd()), name, UnlinkatFlags::NoRemoveDir) {
        Ok(()) | Err(Errno::ENOENT) => Ok(()),
        Err(Errno::EISDIR | Errno::EPERM) => {
            // A directory: empty it through an fd that cannot be redirected, then remove it.
            let sub = openat2(
                dir,
                Path::new(name),
                libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW,
                0,
                libc::RESOLVE_BENEATH | libc::RESOLVE_NO_SYMLINKS | resolve,
            )?;
            let entries: Vec<std::ffi::OsString> = std::fs::read_dir(fd_path(&sub))?
                .map(|e| e.map(|e| e.file_name()))
                .collect::<io::Result<_>>()?;
            for e in entries {
                remove_walk(sub.as_fd(), &e, resolve)?;
            }
            drop(sub);
            Ok(unlinkat(
                Some(dir.as_raw_fd()),
                name,
                UnlinkatFlags::RemoveDir,
            )?)
        }
        Err(e) => Err(e.into()),
    }
}

/// Ask the kernel to start writing `f`'s bytes `from..to` to disk and return at once
/// (sync_file_range(2) with `SYNC_FILE_RANGE_WRITE` only: no wait, no metadata, no durability
/// promise). A pull writes hundreds of megabytes of blobs and EROFS images and then flushes
/// them with one `syncfs`; started while the download goes on, the writeback overlaps it and
/// the `syncfs` finds little left. Advice only: an error is ignored (the `syncfs` still
/// flushes everything, and reports a failed write).
pub fn start_writeback(f: &std::fs::File, from: u64, to: u64) {
    if to <= from {
        return;
    }
    // SAFETY: sync_file_range reads only its integer arguments; `f` is an open descriptor
    // for the duration of the call.
    unsafe {
        libc::sync_file_range(
            f.as_raw_fd(),
            from as libc::off64_t,
            (to - from) as libc::off64_t,
            libc::SYNC_FILE_RANGE_WRITE,
        );
    }
}

/// Starts the writeback of a file being written sequentially every [`Writeback::EVERY`]
/// bytes ([`start_writeback`]).
#[derive(Debug, Default)]
pub struct Writeback {
    from: u64,
}

impl Writeback {
    /// How much is written between two starts: large enough that the calls cost nothing,
    /// small enough that the disk works all along.
    pub const EVERY: u64 = 8 << 20;

    /// `f` now holds bytes up to `to` (from where the writes began).
    pub fn wrote(&mut self, f: &std::fs::File, to: u64) {
        if to >= self.from + Self::EVERY {
            start_writeback(f, self.from, to);
            self.from = to;
        }
    }
}

/// `mkdirat(2)`.
pub fn mkdir_at(dir: BorrowedFd<'_>, name: &std::ffi::OsStr, mode: u32) -> io::Result<()> {
    Ok(nix::sys::stat::mkdirat(
        Some(dir.as_raw_fd()),
        name,
        Mode::from_bits_truncate(mode as libc::mode_t),
    )?)
}

/// Create a new regular file `name` in `dir` (never following a symlink), open for writing.
pub fn create_at(dir: BorrowedFd<'_>, name: &std::ffi::OsStr) -> io::Result<std::fs::File> {
    use nix::fcntl::OFlag;
    // O_EXCL|O_NOFOLLOW refuse anything already there, a symlink included.
    let fd = nix::fcntl::openat(
        Some(dir.as_raw_fd()),
        name,
        OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_WRONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::from_bits_truncate(0o600),
    )?;
    // SAFETY: a new descriptor that nothing else owns (nix 0.29's openat returns a raw one).
    Ok(std::fs::File::from(unsafe { OwnedFd::from_raw_fd(fd) }))
}

/// `symlinkat(2)`.
pub fn symlink_at(target: &Path, dir: BorrowedFd<'_>, name: &std::ffi::OsStr) -> io::Result<()> {
    Ok(nix::unistd::symlinkat(target, Some(dir.as_raw_fd()), name)?)
}

/// `linkat(2)` without following a final symlink.
pub fn link_at(
    old_dir: BorrowedFd<'_>,
    old: &std::ffi::OsStr,
    dir: BorrowedFd<'_>,
    name: &std::ffi::OsStr,
) -> io::Result<()> {
    // No AT_SYMLINK_FOLLOW: a symlink is linked itself, never what it points to.
    Ok(nix::unistd::linkat(
        Some(old_dir.as_raw_fd()),
        old,
        Some(dir.as_raw_fd()),
        name,
        nix::fcntl::AtFlags::empty(),
    )?)
}

/// `mknodat(2)` with a full mode (file type bits included).
pub fn mknod_at(
    dir: BorrowedFd<'_>,
    name: &std::ffi::OsStr,
    mode: u32,
    major: u32,
    minor: u32,
) -> io::Result<()> {
    use nix::sys::stat::SFlag;
    let mode = mode as libc::mode_t;
    Ok(nix::sys::stat::mknodat(
        Some(dir.as_raw_fd()),
        name,
        SFlag::from_bits_retain(mode & libc::S_IFMT),
        Mode::from_bits_truncate(mode & !libc::S_IFMT),
        nix::sys::stat::makedev(major.into(), minor.into()),
    )?)
}

/// Owner, mode and times of `name` in `dir`, without following a symlink. `owner` is skipped
/// when `None` (a file just created already belongs to us); `mode` is skipped for symlinks
/// (they have none on Linux).
pub fn set_meta_at(
    dir: BorrowedFd<'_>,
    name: &std::ffi::OsStr,
    owner: Option<(u32, u32)>,
    mode: Option<u32>,
    mtime: i64,
) -> io::Result<()> {
    use nix::unistd::{Gid, Uid};
    if let Some((uid, gid)) = owner {
        // AT_SYMLINK_NOFOLLOW: a symlink itself, never what it points to.
        nix::unistd::fchownat(
            Some(dir.as_raw_fd()),
            name,
            Some(Uid::from_raw(uid)),
            Some(Gid::from_raw(gid)),
            nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
        )?;
    }
    if let Some(mode) = mode {
        // Set after chown, which clears setuid/setgid bits. fchmodat(2) follows a final
        // symlink unless AT_SYMLINK_NOFOLLOW is given (glibc then changes the object it opened
        // with O_PATH|O_NOFOLLOW, and refuses a symlink with EOPNOTSUPP): never the host file
        // a hostile symlink points to.
        nix::sys::stat::fchmodat(
            Some(dir.as_raw_fd()),
            name,
            nix::sys::stat::Mode::from_bits_truncate(mode as libc::mode_t),
            nix::sys::stat::FchmodatFlags::NoFollowSymlink,
        )?;
    }
    let t = nix::sys::time::TimeSpec::new(mtime as libc::time_t, 0);
    Ok(nix::sys::stat::utimensat(
        Some(dir.as_raw_fd()),
        name,
        &t,
        &t,
        nix::sys::stat::UtimensatFlags::NoFollowSymlink,
    )?)
}

/// `fstatat(2)` of `name` in `dir` itself (a final symlink is not followed).
pub fn stat_at(dir: BorrowedFd<'_>, name: &std::ffi::OsStr) -> io::Result<libc::stat> {
    Ok(nix::sys::stat::fstatat(
        Some(dir.as_raw_fd()),
        name,
        nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
    )?)
}

/// Bytes of the files in the tree of `dir` (what `du --apparent-size` counts), looked at only
/// through descriptors: each directory opened beneath its parent without following a symlink,
/// each entry `fstatat`ed without following it. A container can change its upper directory
/// while this walks it: a directory swapped for a symlink is skipped, never followed.
pub fn tree_size(dir: BorrowedFd<'_>) -> io::Result<u64> {
    let mut total = 0;
    for entry in std::fs::read_dir(format!("/proc/self/fd/{}", dir.as_raw_fd()))? {
        let name = entry?.file_name();
        let Ok(st) = stat_at(dir, &name) else {
            continue;
        };
        if st.st_mode & libc::S_IFMT != libc::S_IFDIR {
            total += st.st_size as u64;
            continue;
        }
        if let Ok(sub) = openat2(
            dir,
            Path::new(&name),
            libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW,
            0,
            libc::RESOLVE_BENEATH | libc::RESOLVE_NO_SYMLINKS,
        ) {
            total += tree_size(sub.as_fd())?;
        }
    }
    Ok(total)
}

/// Docker's size of a layer directory (moby `pkg/directory.Size`, what overlay2's
/// `ApplyDiff` records and `docker images`/`history` show): the `lstat` size of every entry
/// that is not a directory, each inode once (hard links count once), zero-sized ones (an
/// overlay whiteout) adding nothing. Walked through descriptors as [`tree_size`] is.
pub fn docker_tree_size(dir: BorrowedFd<'_>) -> io::Result<u64> {
    fn walk(
        dir: BorrowedFd<'_>,
        seen: &mut std::collections::HashSet<(u64, u64)>,
    ) -> io::Result<u64> {
        let mut total = 0;
        for entry in std::fs::read_dir(format!("/proc/self/fd/{}", dir.as_raw_fd()))? {
            let name = entry?.file_name();
            let Ok(st) = stat_at(dir, &name) else {
                continue;
            };
            if st.st_mode & libc::S_IFMT != libc::S_IFDIR {
                if st.st_size > 0 && seen.insert(identity(&st)) {
                    total += st.st_size as u64;
                }
                continue;
            }
            if let Ok(sub) = openat2(
                dir,
                Path::new(&name),
                libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW,
                0,
                libc::RESOLVE_BENEATH | libc::RESOLVE_NO_SYMLINKS,
            ) {
                total += walk(sub.as_fd(), seen)?;
            }
        }
        Ok(total)
    }
    walk(dir, &mut std::collections::HashSet::new())
}

/// Which directory an fd is: (device, inode), to recognise it again later.
pub fn identity(st: &libc::stat) -> (u64, u64) {
    (st.st_dev, st.st_ino)
}

/// A directory's metadata, applied after every entry of a tree is in place (adding entries
/// changes its mtime, and a read-only mode would refuse its own entries): by the layer
/// unpacker and by `cp`'s extraction. See [`apply_dir_meta`].
pub struct DirMeta {
    /// Where, relative to the tree's root.
    pub path: PathBuf,
    /// The directory made there ([`identity`]): a path that names anything else later is left.
    pub id: (u64, u64),
    /// Owner to set, or none.
    pub owner: Option<(u32, u32)>,
    /// Mode bits.
    pub mode: u32,
    /// Modification time, seconds.
    pub mtime: i64,
}

/// Apply each [`DirMeta`] in `dirs` (deepest first) inside `root`, through an fd of the
/// directory itself ([`open_dir_if`], [`set_meta_fd`]); the path that failed with its error.
pub fn apply_dir_meta(
    root: BorrowedFd<'_>,
    mut dirs: Vec<DirMeta>,
) -> Result<(), (PathBuf, io::Error)> {
    dirs.sort_by_key(|d| std::cmp::Reverse(d.path.components().count()));
    for d in dirs {
        let fd = open_dir_if(root, &d.path, d.id).map_err(|e| (d.path.clone(), e))?;
        if let Some(fd) = fd {
            set_meta_fd(fd.as_fd(), d.owner, d.mode, d.mtime).map_err(|e| (d.path, e))?;
        }
    }
    Ok(())
}

/// Open the directory `path` inside `root` for changing its metadata, but only if it is still
/// the directory `id` (see [`identity`]): `None` when the path no longer names it (removed,
/// replaced by a file, by a symlink, or by another directory). Resolution stays inside `root`
/// (`RESOLVE_IN_ROOT`) and a final symlink is refused (`O_NOFOLLOW`), so the fd can only be a
/// directory of the tree. Errors that do not mean "not that directory" (EMFILE, ENOMEM,
/// EACCES...) are returned.
pub fn open_dir_if(
    root: BorrowedFd<'_>,
    path: &Path,
    id: (u64, u64),
) -> io::Result<Option<OwnedFd>> {
    let fd = match openat2(
        root,
        &relative(path),
        libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW,
        0,
        IN_ROOT,
    ) {
        Ok(fd) => fd,
        Err(e)
            if matches!(
                e.raw_os_error(),
                Some(libc::ENOENT | libc::ENOTDIR | libc::ELOOP)
            ) =>
        {
            return Ok(None)
        }
        Err(e) => return Err(e),
    };
    let st = nix::sys::stat::fstat(fd.as_raw_fd())?;
    Ok((identity(&st) == id).then_some(fd))
}

/// Owner (unless `None`), mode and times of the object `fd` is open on: fchown(2), fchmod(2),
/// futimens(2). Nothing is looked up by name, so nothing can be redirected.
pub fn set_meta_fd(
    fd: BorrowedFd<'_>,
    owner: Option<(u32, u32)>,
    mode: u32,
    mtime: i64,
) -> io::Result<()> {
    use nix::unistd::{Gid, Uid};
    if let Some((uid, gid)) = owner {
        nix::unistd::fchown(
            fd.as_raw_fd(),
            Some(Uid::from_raw(uid)),
            Some(Gid::from_raw(gid)),
        )?;
    }
    // After chown, which clears setuid/setgid (and file capabilities).
    nix::sys::stat::fchmod(
        fd.as_raw_fd(),
        nix::sys::stat::Mode::from_bits_truncate(mode as libc::mode_t),
    )?;
    let t = nix::sys::time::TimeSpec::new(mtime as libc::time_t, 0);
    nix::sys::stat::futimens(fd.as_raw_fd(), &t, &t)?;
    Ok(())
}

/// `fchown(2)`: the owner of the object `fd` is open on.
pub fn chown_fd(fd: BorrowedFd<'_>, (uid, gid): (u32, u32)) -> io::Result<()> {
    Ok(nix::unistd::fchown(
        fd.as_raw_fd(),
        Some(nix::unistd::Uid::from_raw(uid)),
        Some(nix::unistd::Gid::from_raw(gid)),
    )?)
}

/// `fsetxattr(2)` on an open file.
pub fn set_xattr_fd(fd: BorrowedFd<'_>, key: &str, value: &[u8]) -> io::Result<()> {
    let k = CString::new(key).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    // SAFETY: a live fd, a valid C string and a live value buffer of the given length. Not
    // nix: 0.29 has no xattr calls.
    cvt(unsafe {
        libc::fsetxattr(
            fd.as_raw_fd(),
            k.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            0,
        )
    })
}

/// The names and `..`s of `path`, in order (`/` and `.` dropped): what a resolver inside an
/// untrusted tree walks one at a time.
pub fn path_parts(p: &Path) -> std::collections::VecDeque<std::ffi::OsString> {
    p.components()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n.to_os_string()),
            Component::ParentDir => Some(std::ffi::OsString::from("..")),
            _ => None,
        })
        .collect()
}

/// Resolve `path` as if `root` were `/`, the way runc's securejoin does, but looking only
/// through fds (`openat2(RESOLVE_IN_ROOT)` then `readlinkat(fd, "")`), never through a host
/// path: where `path` would be inside `root` once the tree's own symlinks are followed (at most
/// 40, like the kernel; `..` clamped at the root), with components that do not exist yet kept
/// as they are, so that a dangling symlink in the image (`/data -> /srv/data`) gets its target
/// created inside the rootfs, as Docker does. The result is relative to `root`.
pub fn resolve_in_root(root: BorrowedFd<'_>, path: &Path) -> io::Result<PathBuf> {
    resolve_in_root_with(root, path, |dir, p, flags, resolve| {
        openat2(dir, p, flags, 0, resolve)
    })
}

/// [`resolve_in_root`] with the lookups made by `open` (`dir, path, flags, resolve`), so the
/// container's side can make them through the traced seam.
pub fn resolve_in_root_with(
    root: BorrowedFd<'_>,
    path: &Path,
    open: impl Fn(BorrowedFd<'_>, &Path, i32, u64) -> io::Result<OwnedFd>,
) -> io::Result<PathBuf> {
    let parts = path_parts;
    let mut resolved = PathBuf::new();
    let mut queue = parts(path);
    let mut links = 0;
    while let Some(c) = queue.pop_front() {
        if c == ".." {
            resolved.pop();
            continue;
        }
        let candidate = resolved.join(&c);
        // Every component of `resolved` is known not to be a symlink, so this names exactly
        // `candidate` itself (O_NOFOLLOW: a symlink is opened, not followed).
        let fd = match open(root, &candidate, libc::O_PATH | libc::O_NOFOLLOW, IN_ROOT) {
            Ok(fd) => fd,
            Err(e) if matches!(e.raw_os_error(), Some(libc::ENOENT | libc::ENOTDIR)) => {
                resolved = candidate;
                continue;
            }
            Err(e) => return Err(e),
        };
        let st = nix::sys::stat::fstat(fd.as_raw_fd())?;
        if st.st_mode & libc::S_IFMT != libc::S_IFLNK {
            resolved = candidate;
            continue;
        }
        links += 1;
        if links > 40 {
            return Err(io::Error::from_raw_os_error(libc::ELOOP));
        }
        let target = nix::fcntl::readlinkat(Some(fd.as_raw_fd()), "")?;
        let target = PathBuf::from(target);
        if target.is_absolute() {
            resolved = PathBuf::new();
        }
        let mut next = parts(&target);
        next.extend(queue);
        queue = next;
    }
    Ok(resolved)
}

/// Set an extended attribute on `name` in `dir`, through its `/proc/self/fd` path.
pub fn set_xattr_at(
    dir: BorrowedFd<'_>,
    name: &std::ffi::OsStr,
    key: &str,
    value: &[u8],
) -> io::Result<()> {
    let fd = openat2(
        dir,
        Path::new(name),
        libc::O_PATH | libc::O_NOFOLLOW,
        0,
        libc::RESOLVE_BENEATH,
    )?;
    let p = cname(fd_path(&fd).as_os_str())?;
    let k = CString::new(key).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    // SAFETY: valid C strings and a live value buffer. setxattr follows the magic link to
    // exactly the object the O_PATH fd refers to. Not nix: 0.29 has no xattr calls.
    cvt(unsafe {
        libc::setxattr(
            p.as_ptr(),
            k.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            0,
        )
    })
}

/// Read an extended attribute of `name` in `dir` (never following a symlink): `None` when it
/// has none of that name (or the file system keeps no xattrs).
pub fn get_xattr_at(
    dir: BorrowedFd<'_>,
    name: &std::ffi::OsStr,
    key: &str,
) -> io::Result<Option<Vec<u8>>> {
    let fd = openat2(
        dir,
        Path::new(name),
        libc::O_PATH | libc::O_NOFOLLOW,
        0,
        libc::RESOLVE_BENEATH | libc::RESOLVE_NO_SYMLINKS,
    )?;
    let p = cname(fd_path(&fd).as_os_str())?;
    let k = CString::new(key).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    let mut buf = vec![0u8; 4096];
    // SAFETY: valid C strings and a live buffer of the given length; getxattr follows the
    // magic link to exactly the object the O_PATH fd refers to (lgetxattr would read the link).
    // Not nix: 0.29 has no xattr calls.
    let n = unsafe { libc::getxattr(p.as_ptr(), k.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    if n < 0 {
        let e = io::Error::last_os_error();
        return match e.raw_os_error() {
            Some(libc::ENODATA | libc::ENOTSUP) => Ok(None),
            _ => Err(e),
        };
    }
    buf.truncate(n as usize);
    Ok(Some(buf))
}

/// Read an extended attribute of the object `fd` is open on (fgetxattr(2); an `O_PATH` fd
/// will not do, see [`get_xattr_at`] for those): `None` when it has none of that name (or the
/// file system keeps no xattrs). nix has no xattr calls, hence libc.
pub fn get_xattr_fd(fd: BorrowedFd<'_>, key: &str) -> io::Result<Option<Vec<u8>>> {
    let k = CString::new(key).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    let mut buf = vec![0u8; 4096];
    // SAFETY: a live fd, a valid C string and a live buffer of the given length. Not nix: 0.29
    // has no xattr calls.
    let n = unsafe {
        libc::fgetxattr(
            fd.as_raw_fd(),
            k.as_ptr(),
            buf.as_mut_ptr().cast(),
            buf.len(),
        )
    };
    if n < 0 {
        let e = io::Error::last_os_error();
        return match e.raw_os_error() {
            Some(libc::ENODATA | libc::ENOTSUP) => Ok(None),
            _ => Err(e),
        };
    }
    buf.truncate(n as usize);
    Ok(Some(buf))
}

/// Every extended attribute of the object an `O_PATH` fd refers to (a symlink too: as
/// [`get_xattr_at`], `listxattr`/`getxattr` follow the fd's magic link to exactly that object),
/// sorted by name: what `dockling commit` puts in a layer's PAX headers. Empty when the file
/// system keeps none.
pub fn xattrs_of(fd: BorrowedFd<'_>) -> io::Result<Vec<(String, Vec<u8>)>> {
    let p = cname(std::ffi::OsStr::new(&format!(
        "/proc/self/fd/{}",
        fd.as_raw_fd()
    )))?;
    let mut names = vec![0u8; 4096];
    let n = loop {
        // SAFETY: a valid C string and a live buffer of the given length. Not nix: 0.29 has
        // no xattr calls.
        let n = unsafe { libc::listxattr(p.as_ptr(), names.as_mut_ptr().cast(), names.len()) };
        if n >= 0 {
            break n as usize;
        }
        let e = io::Error::last_os_error();
        match e.raw_os_error() {
            Some(libc::ENOTSUP) => return Ok(Vec::new()),
            Some(libc::ERANGE) if names.len() < 1 << 20 => names.resize(names.len() * 4, 0),
            _ => return Err(e),
        }
    };
    let mut out = Vec::new();
    for key in names[..n].split(|b| *b == 0).filter(|k| !k.is_empty()) {
        let Ok(key) = std::str::from_utf8(key) else {
            continue;
        };
        let k = CString::new(key).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
        let mut buf = vec![0u8; 65536];
        // SAFETY: as above.
        let len =
            unsafe { libc::getxattr(p.as_ptr(), k.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
        if len < 0 {
            let e = io::Error::last_os_error();
            if e.raw_os_error() == Some(libc::ENODATA) {
                continue; // removed meanwhile
            }
            return Err(e);
        }
        buf.truncate(len as usize);
        out.push((key.to_string(), buf));
    }
    out.sort();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symlink_to_host_root_stays_inside() {
        let dir = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink("/", dir.path().join("escape")).unwrap();
        let root = open_root(dir.path()).unwrap();
        let fd =
            mkdir_all_in_root(root.as_fd(), Path::new("/escape/etc/dockling-test"), 0o755).unwrap();
        // The directory was created inside the root, not on the host.
        assert!(dir.path().join("etc/dockling-test").is_dir());
        assert!(!Path::new("/etc/dockling-test").exists());
        drop(fd);
    }

    #[test]
    fn resolve_in_root_follows_image_symlinks_inside_the_root() {
        let dir = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink("/srv/data", dir.path().join("data")).unwrap();
        std::os::unix::fs::symlink("../../..", dir.path().join("up")).unwrap();
        let root = open_root(dir.path()).unwrap();
        assert_eq!(
            resolve_in_root(root.as_fd(), Path::new("/data/x")).unwrap(),
            Path::new("srv/data/x")
        );
        assert_eq!(
            resolve_in_root(root.as_fd(), Path::new("/up/etc")).unwrap(),
            Path::new("etc")
        );
        std::os::unix::fs::symlink("loop", dir.path().join("loop")).unwrap();
        assert!(resolve_in_root(root.as_fd(), Path::new("/loop")).is_err());
    }

    #[test]
    fn dotdot_is_clamped_to_root() {
        assert_eq!(
            relative(Path::new("/../../etc/passwd")),
            PathBuf::from("etc/passwd")
        );
        assert_eq!(relative(Path::new("/")), PathBuf::from("."));
    }
}
