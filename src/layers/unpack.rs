//! Unpacking a layer tar into a directory, safely.
//!
//! The `tar` crate only *reads* entries here; every write is ours, made relative to a
//! directory fd that was resolved with `openat2(RESOLVE_IN_ROOT)`, with `O_NOFOLLOW`/`O_EXCL`
//! for the final name. So whatever a hostile layer contains (absolute names, `../`, a symlink
//! to `/` followed by files "inside" it, a hard link to `/etc/passwd`, a whiteout of `../x`),
//! nothing is created, changed or removed outside `dest`. Whiteouts become overlayfs's own:
//! `.wh.name` → a 0/0 character device `name`; `.wh..wh..opq` → `trusted.overlay.opaque=y`.
//!
//! Metadata is applied through fds, never by name: a file's owner, xattrs, mode and times on
//! the fd it was written through (in that order: chown clears setuid bits and
//! `security.capability`), a directory's at the end (its mode could forbid its own entries)
//! through an fd of that very directory, opened again with `O_NOFOLLOW` and recognised by its
//! inode, so a later entry that replaced it with a symlink cannot send the chmod elsewhere.
//!
//! The layer is hostile input in other ways too: every header field must parse, entry types
//! dockling does not understand are refused (as Docker does), and [`Limits`] stop a
//! decompression bomb. Every error names the layer and the entry.

use std::cell::Cell;
use std::ffi::OsStr;
use std::io::{Read, Seek, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::rc::Rc;

use tar::EntryType;

use crate::error::{Error, Result};
use crate::sys::fs as safefs;

/// What an unpack did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct UnpackStats {
    /// Regular files, links and devices created.
    pub files: u64,
    /// Directories created.
    pub dirs: u64,
    /// Bytes of file content written.
    pub bytes: u64,
    /// Whiteouts recorded.
    pub whiteouts: u64,
    /// Docker's size of what was unpacked (`sys::fs::docker_tree_size`: the `lstat` size of
    /// every entry that is not a directory, each inode once), counted on the way; exact only
    /// when no entry replaced another ([`UnpackStats::replaced`]).
    pub content: u64,
    /// An entry replaced or removed what an earlier one made: `content` may count bytes that
    /// are gone, and the tree must be measured instead.
    pub replaced: bool,
}

/// How much one layer may hold before it is refused as a decompression bomb (a few kilobytes
/// of gzip or zstd can expand to terabytes of zeros or millions of empty files). Docker has no
/// such limit; dockling refuses clearly instead of filling the disk or its inodes. Set with
/// `max-layer-size` and `max-layer-entries` in the config file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Bytes of the uncompressed tar stream.
    pub max_size: u64,
    /// Tar entries (files, directories, links, whiteouts...).
    pub max_entries: u64,
}

/// 64 GiB: several times the largest layers of real images (CUDA and ML framework layers are
/// a few GiB to a few tens of GiB uncompressed).
pub const DEFAULT_MAX_SIZE: u64 = 64 << 30;
/// 4 Mi entries: ten times a huge layer (a full TeX Live or node_modules tree has a few
/// hundred thousand files), far below the inodes of a usual file system.
pub const DEFAULT_MAX_ENTRIES: u64 = 4 << 20;

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_size: DEFAULT_MAX_SIZE,
            max_entries: DEFAULT_MAX_ENTRIES,
        }
    }
}

impl Limits {
    /// The error for a layer bigger than `max_size` once uncompressed.
    pub fn too_big(&self, layer: &str) -> Error {
        Error::Corrupt(format!(
            "layer {layer}: refused: it is larger than max-layer-size ({} bytes) once uncompressed, which looks like a decompression bomb: raise max-layer-size in the config file if you trust this image",
            self.max_size
        ))
    }
}

/// What the tar reader has read of the layer, shared with the unpack loop.
#[derive(Default)]
struct Count {
    /// Bytes that came from the layer.
    real: Cell<u64>,
    /// Zero bytes made up after the layer ended inside a 512-byte block.
    made_up: Cell<u64>,
    /// Bytes of sparse files' holes (not in the stream).
    holes: Cell<u64>,
    /// The layer went over `max_size`.
    over: Cell<bool>,
}

/// The layer stream as the tar reader sees it. Counts its bytes against the size limit, and
/// when the stream ends in the middle of a 512-byte block — a layer written without the
/// padding after the last file's data and without end-of-archive blocks (`umoci insert` makes
/// such layers; Docker, podman and umoci accept them) — makes up the zeros to the block's end,
/// so the tar reader finds a clean end. Made-up bytes are counted, so an entry whose *data*
/// they would complete is refused as truncated.
struct Stream<R> {
    inner: R,
    count: Rc<Count>,
    max: u64,
    ended: bool,
}

impl<R: Read> Read for Stream<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let c = &self.count;
        if !self.ended {
            let n = self.inner.read(buf)?;
            if n > 0 {
                c.real.set(c.real.get() + n as u64);
                if c.real.get().saturating_add(c.holes.get()) > self.max {
                    c.over.set(true);
                    return Err(std::io::Error::other("layer larger than max-layer-size"));
                }
                return Ok(n);
            }
            self.ended = !buf.is_empty();
        }
        let total = c.real.get() + c.made_up.get();
        let pad = ((512 - total % 512) % 512).min(buf.len() as u64) as usize;
        buf[..pad].fill(0);
        c.made_up.set(c.made_up.get() + pad as u64);
        Ok(pad)
    }
}

/// Errors that name the layer (a digest or a file) and the entry.
struct Ctx<'a> {
    layer: &'a str,
    limits: Limits,
    count: Rc<Count>,
}

impl Ctx<'_> {
    fn bad(&self, entry: &Path, what: impl std::fmt::Display) -> Error {
        Error::Corrupt(format!(
            "layer {}: entry {}: {what}",
            self.layer,
            entry.display()
        ))
    }

    /// A read of the stream failed: the limit, or a broken tar.
    fn read(&self, entry: Option<&Path>, e: std::io::Error) -> Error {
        if self.count.over.get() {
            return self.limits.too_big(self.layer);
        }
        match entry {
            Some(p) => self.bad(p, e),
            None => Error::Corrupt(format!("layer {}: not a valid tar stream ({e}): the layer is corrupt, or the file imported is not a tar (plain or gzip)", self.layer)),
        }
    }
}

/// Create `name` with `make`; if something is already there (an earlier entry of the same name
/// in this layer), remove it and try once more, noting in `replaced` that a name changed what
/// it refers to. Trying first saves a syscall per entry.
fn replacing<T>(
    dir: BorrowedFd<'_>,
    name: &OsStr,
    replaced: &mut bool,
    make: impl Fn() -> std::io::Result<T>,
) -> std::io::Result<T> {
    match make() {
        Err(e) if e.raw_os_error() == Some(libc::EEXIST) => {
            safefs::remove_at(dir, name)?;
            *replaced = true;
            make()
        }
        other => other,
    }
}

/// Copy an entry's data into `f` through one reused buffer. For a sparse entry, runs of zeros
/// (its holes, which the tar reader fills in) are skipped with a seek instead of written, so a
/// file of huge holes stays small on disk, as GNU tar and Go's archive/tar leave it.
fn copy_data(
    from: &mut impl Read,
    f: &mut std::fs::File,
    sparse: bool,
    buf: &mut [u8],
) -> std::io::Result<u64> {
    let mut n = 0u64;
    loop {
        let got = match from.read(buf) {
            Ok(0) => break,
            Ok(got) => got,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if sparse && buf[..got].iter().all(|b| *b == 0) {
            f.seek(std::io::SeekFrom::Current(got as i64))?;
        } else {
            f.write_all(&buf[..got])?;
        }
        n += got as u64;
    }
    if sparse {
        // A file that ends in a hole: the seek alone does not extend it.
        f.set_len(n)?;
    }
    Ok(n)
}

/// Unpack the tar stream `reader` into `dest` (an existing, empty directory). `layer` names it
/// in errors (its digest, or the file it came from).
pub fn unpack(reader: impl Read, dest: &Path, layer: &str, limits: &Limits) -> Result<UnpackStats> {
    let root = safefs::open_root(dest).map_err(Error::io("open", dest))?;
    let root = root.as_fd();
    let count = Rc::new(Count::default());
    let ctx = Ctx {
        layer,
        limits: *limits,
        count: count.clone(),
    };
    let mut stats = UnpackStats::default();
    let mut dir_meta: Vec<safefs::DirMeta> = Vec::new();
    let mut cache = DirCache::default();
    let mut buf = vec![0u8; 1 << 17];
    let mut entries_seen = 0u64;
    // A file this unpack creates already belongs to us: chown only when the layer says otherwise.
    let me = (
        nix::unistd::geteuid().as_raw(),
        nix::unistd::getegid().as_raw(),
    );
    let owner = |uid: u32, gid: u32| (me != (uid, gid)).then_some((uid, gid));
    let mut archive = tar::Archive::new(Stream {
        inner: reader,
        count: count.clone(),
        max: limits.max_size,
        ended: false,
    });
    let entries = archive.entries().map_err(|e| ctx.read(None, e))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| ctx.read(None, e))?;
        entries_seen += 1;
        if entries_seen > limits.max_entries {
            return Err(Error::Corrupt(format!(
                "layer {layer}: refused: it has more than max-layer-entries ({}) entries, which looks like a decompression bomb: raise max-layer-entries in the config file if you trust this image",
                limits.max_entries
            )));
        }
        let raw = entry.path().map_err(|e| ctx.read(None, e))?.into_owned();
        let mut replaced = false;
        unpack_entry(
            &ctx,
            &mut entry,
            &raw,
            root,
            &mut cache,
            &mut dir_meta,
            &mut stats,
            &mut replaced,
            &mut buf,
            &owner,
        )?;
        // Skip what is left of the entry's data now (the tar reader would), so that a
        // truncated entry is refused whatever its type: its data must come from the layer,
        // not from made-up padding.
        std::io::copy(&mut entry, &mut std::io::sink()).map_err(|e| ctx.read(Some(&raw), e))?;
        if count.made_up.get() > 0 {
            return Err(ctx.bad(
                &raw,
                "the layer ends inside this entry's data (truncated download or corrupt layer)",
            ));
        }
        // A name that now refers to something else (an entry replaced or removed what was
        // there) may be a component of the cached parent's path: resolve it again next time.
        if replaced {
            cache.clear();
            stats.replaced = true;
        }
    }
    // Directory modes and times last (deepest first): adding entries changed their mtimes,
    // and a read-only directory would have refused its contents. Each through an fd of the
    // directory itself; a path that no longer names that directory is left alone.
    safefs::apply_dir_meta(root, dir_meta).map_err(|(path, e)| ctx.bad(&path, e))?;
    Ok(stats)
}

/// Descriptors of the directories an unpack has resolved or made, by their path in the
/// layer, so that the entries of one directory (a tar lists a tree depth first: a parent's
/// files come before, between and after its subdirectories') are not resolved again from the
/// root each time. Bounded (a few parallel unpacks stay far below any descriptor limit): when
/// full, it starts again. Emptied whenever an entry replaces or removes a name, which may be a
/// component of a cached path.
#[derive(Default)]
struct DirCache {
    dirs: std::collections::HashMap<PathBuf, OwnedFd>,
}

impl DirCache {
    /// At most this many descriptors are kept.
    const MAX: usize = 32;

    fn clear(&mut self) {
        self.dirs.clear();
    }

    fn insert(&mut self, key: PathBuf, fd: OwnedFd) {
        if self.dirs.len() >= Self::MAX {
            self.dirs.clear();
        }
        self.dirs.insert(key, fd);
    }
}

/// The parent directory of `path` inside `root`, from `cache` when an earlier entry resolved
/// or made it. Follows the layer's own symlinks the way the container will see them (inside
/// root), so `lib -> usr/lib` then `lib/x` lands in usr/lib; missing directories are created.
fn parent_of<'c>(
    ctx: &Ctx<'_>,
    root: BorrowedFd<'_>,
    raw: &Path,
    path: &Path,
    cache: &'c mut DirCache,
) -> Result<&'c OwnedFd> {
    let key = path.parent().map(Path::to_path_buf).unwrap_or_default();
    if !cache.dirs.contains_key(&key) {
        let rel = safefs::relative(&key);
        let fd = safefs::open_or_make_dir_in_root(root, &rel, 0o755)
            .map_err(|e| ctx.bad(raw, format!("parent directory: {e}")))?;
        cache.insert(key.clone(), fd);
    }
    Ok(cache.dirs.get(&key).expect("just filled"))
}

/// What an entry's header says of its mode bits (`& 0o7777`), owner and time.
pub(crate) struct HeaderMeta {
    pub(crate) mode: u32,
    pub(crate) uid: u32,
    pub(crate) gid: u32,
    pub(crate) mtime: u64,
}

/// Read an entry's mode, uid, gid and mtime fields, as unpacking and the EROFS writer both
/// take them. Every field must parse: a corrupt one is a corrupt layer, never a default. An
/// empty field (all NULs or spaces) is 0, as Go's archive/tar (Docker's reader) reads it.
/// The error says which field and why.
pub(crate) fn header_meta(header: &tar::Header) -> std::result::Result<HeaderMeta, String> {
    let field = |what: &str, raw: &[u8], parsed: std::io::Result<u64>| match parsed {
        Ok(v) => Ok(v),
        Err(_) if raw.iter().all(|b| *b == 0 || *b == b' ') => Ok(0),
        Err(e) => Err(format!("bad {what} field: {e}")),
    };
    let old = header.as_old();
    let mode = field("mode", &old.mode, header.mode().map(u64::from))? as u32 & 0o7777;
    let uid = field("uid", &old.uid, header.uid())?;
    let uid = u32::try_from(uid).map_err(|_| format!("uid {uid} is out of range"))?;
    let gid = field("gid", &old.gid, header.gid())?;
    let gid = u32::try_from(gid).map_err(|_| format!("gid {gid} is out of range"))?;
    let mtime = field("mtime", &old.mtime, header.mtime())?;
    Ok(HeaderMeta {
        mode,
        uid,
        gid,
        mtime,
    })
}

/// Why an entry of type `kind` (none a layer may hold) is refused.
pub(crate) fn unsupported(kind: EntryType) -> String {
    format!(
        "unsupported entry type {:?} ({:?}): the layer was made by a tar dockling cannot read",
        kind,
        char::from(kind.as_byte())
    )
}

/// A device entry's major and minor numbers; both must be there and parse.
pub(crate) fn device_numbers(header: &tar::Header) -> std::result::Result<(u32, u32), String> {
    let major = header
        .device_major()
        .map_err(|e| format!("bad device major field: {e}"))?;
    let minor = header
        .device_minor()
        .map_err(|e| format!("bad device minor field: {e}"))?;
    match (major, minor) {
        (Some(a), Some(b)) => Ok((a, b)),
        _ => Err("device without major and minor numbers".into()),
    }
}

#[allow(clippy::too_many_arguments)]
fn unpack_entry<R: Read>(
    ctx: &Ctx<'_>,
    entry: &mut tar::Entry<'_, R>,
    raw: &Path,
    root: BorrowedFd<'_>,
    cache: &mut DirCache,
    dir_meta: &mut Vec<safefs::DirMeta>,
    stats: &mut UnpackStats,
    replaced: &mut bool,
    buf: &mut [u8],
    owner: &dyn Fn(u32, u32) -> Option<(u32, u32)>,
) -> Result<()> {
    let path = safefs::relative(raw);
    let kind = entry.header().entry_type();
    if kind == EntryType::XGlobalHeader {
        // PAX global headers (`git archive` writes one) describe the archive, not a file.
        return Ok(());
    }
    let Some(name) = path.file_name().map(OsStr::to_os_string) else {
        // The layer's root itself (`./`): its directory already exists, as Docker keeps it.
        return Ok(());
    };
    let bad = |what: &dyn std::fmt::Display| ctx.bad(raw, what);
    let header = entry.header();
    let HeaderMeta {
        mode,
        uid,
        gid,
        mtime,
    } = header_meta(header).map_err(|e| bad(&e))?;
    let mtime = i64::try_from(mtime).map_err(|_| bad(&format!("mtime {mtime} is out of range")))?;
    let devnums = if matches!(kind, EntryType::Char | EntryType::Block) {
        device_numbers(header).map_err(|e| bad(&e))?
    } else {
        (0, 0)
    };
    // Bytes, not text: a name need not be UTF-8.
    let hidden = std::os::unix::ffi::OsStrExt::as_bytes(name.as_os_str())
        .strip_prefix(b".wh.")
        .map(<OsStr as std::os::unix::ffi::OsStrExt>::from_bytes);

    let parent = parent_of(ctx, root, raw, &path, cache)?;
    let p = parent.as_fd();

    if let Some(hidden) = hidden {
        stats.whiteouts += 1;
        if hidden == ".wh..opq" {
            // The directory hides what lower layers put in it (what this layer puts in it stays).
            return safefs::set_xattr_at(p, OsStr::new("."), "trusted.overlay.opaque", b"y")
                .map_err(|e| bad(&format!("opaque directory: {e}")));
        }
        if hidden.as_encoded_bytes().starts_with(b".wh.") {
            // Other `.wh..wh.` names are AUFS's own bookkeeping (`.wh..wh.plnk`), skipped as
            // Docker skips them.
            return Ok(());
        }
        if hidden.is_empty() || hidden == "." || hidden == ".." {
            return Err(bad(&format!(
                "a whiteout of {hidden:?} names no file (it would hide its own directory): the layer is corrupt or hostile"
            )));
        }
        // Whiteouts hide only lower layers (OCI image spec, "Whiteouts"): a file this layer
        // has of the same name stays, whichever comes first in the tar (an entry after the
        // whiteout replaces it; a whiteout after the entry finds it there and leaves it).
        return match safefs::mknod_at(p, hidden, libc::S_IFCHR, 0, 0) {
            Ok(()) => Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::EEXIST) => Ok(()),
            Err(e) => Err(bad(&format!("whiteout: {e}"))),
        };
    }
    if let Ok(Some(exts)) = entry.pax_extensions() {
        for ext in exts {
            let ext = ext.map_err(|e| bad(&format!("bad PAX header: {e}")))?;
            if ext.key().is_ok_and(|k| k.starts_with("GNU.sparse.")) {
                return Err(bad(&"PAX sparse files (GNU.sparse.* records, GNU tar --sparse --format=posix) are not supported: repack the layer without --sparse"));
            }
        }
    }

    match kind {
        EntryType::Directory => {
            let st = match safefs::mkdir_at(p, &name, 0o755) {
                Ok(()) => {
                    stats.dirs += 1;
                    safefs::stat_at(p, &name).map_err(|e| bad(&e))?
                }
                Err(e) if e.raw_os_error() == Some(libc::EEXIST) => {
                    // Only an error that says what is there decides; any other (EMFILE,
                    // ENOMEM, EACCES) stops the unpack instead of deleting a tree.
                    let st = safefs::stat_at(p, &name).map_err(|e| bad(&e))?;
                    if st.st_mode & libc::S_IFMT == libc::S_IFDIR {
                        st
                    } else {
                        safefs::remove_at(p, &name).map_err(|e| bad(&e))?;
                        *replaced = true;
                        safefs::mkdir_at(p, &name, 0o755).map_err(|e| bad(&e))?;
                        stats.dirs += 1;
                        safefs::stat_at(p, &name).map_err(|e| bad(&e))?
                    }
                }
                Err(e) => return Err(bad(&e)),
            };
            // Its own entries come next: its descriptor, opened beside the stat through the
            // parent's (O_NOFOLLOW: the directory just checked, never a symlink), is kept.
            if let Ok(fd) = safefs::openat2(
                p,
                Path::new(&name),
                libc::O_PATH | libc::O_DIRECTORY | libc::O_NOFOLLOW,
                0,
                libc::RESOLVE_BENEATH | libc::RESOLVE_NO_SYMLINKS,
            ) {
                let same = nix::sys::stat::fstat(std::os::fd::AsRawFd::as_raw_fd(&fd))
                    .is_ok_and(|now| safefs::identity(&now) == safefs::identity(&st));
                if same {
                    cache.insert(path.clone(), fd);
                }
            }
            dir_meta.push(safefs::DirMeta {
                path: path.clone(),
                id: safefs::identity(&st),
                owner: owner(uid, gid),
                mode,
                mtime,
            });
        }
        EntryType::Regular | EntryType::Continuous | EntryType::GNUSparse => {
            let sparse = kind == EntryType::GNUSparse;
            if sparse {
                // Its holes cost no bytes of the stream, but a copy of the file (`--layers
                // copy`, `commit`) writes them out: they count against the size limit too.
                let holes = entry
                    .size()
                    .saturating_sub(entry.header().entry_size().unwrap_or(0));
                ctx.count
                    .holes
                    .set(ctx.count.holes.get().saturating_add(holes));
                if ctx.count.real.get().saturating_add(ctx.count.holes.get()) > ctx.limits.max_size
                {
                    return Err(ctx.limits.too_big(ctx.layer));
                }
            }
            let mut f = replacing(p, &name, replaced, || safefs::create_at(p, &name))
                .map_err(|e| bad(&e))?;
            let n = copy_data(entry, &mut f, sparse, buf).map_err(|e| ctx.read(Some(raw), e))?;
            if n != entry.size() || ctx.count.made_up.get() > 0 {
                return Err(bad(&"the layer ends inside this entry's data (truncated download or corrupt layer)"));
            }
            stats.bytes += n;
            stats.content += n;
            let fd = f.as_fd();
            if let Some(o) = owner(uid, gid) {
                safefs::chown_fd(fd, o).map_err(|e| bad(&e))?;
            }
            // xattrs after chown, which would clear security.capability (file capabilities,
            // how ping works without setuid), and before the mode.
            if let Ok(Some(exts)) = entry.pax_extensions() {
                for ext in exts.flatten() {
                    let Some(key) = ext.key().ok().and_then(|k| k.strip_prefix("SCHILY.xattr."))
                    else {
                        continue;
                    };
                    // Only attributes an image may carry (file capabilities, user.*): never
                    // trusted.overlay.*, which would steer overlayfs.
                    if !(key.starts_with("security.") || key.starts_with("user.")) {
                        continue;
                    }
                    match safefs::set_xattr_fd(fd, key, ext.value_bytes()) {
                        Ok(()) => {}
                        // A file system without xattrs, or an attribute the kernel keeps for
                        // itself: skipped, as Docker skips it.
                        Err(e) if matches!(e.raw_os_error(), Some(libc::ENOTSUP | libc::EPERM)) => {
                        }
                        Err(e) => return Err(bad(&format!("xattr {key}: {e}"))),
                    }
                }
            }
            safefs::set_meta_fd(fd, None, mode, mtime).map_err(|e| bad(&e))?;
            stats.files += 1;
        }
        EntryType::Symlink => {
            let target = entry
                .link_name()
                .map_err(|e| bad(&e))?
                .ok_or_else(|| bad(&"symlink without a target"))?;
            // The target is only text here; it is never followed while unpacking.
            replacing(p, &name, replaced, || safefs::symlink_at(&target, p, &name))
                .map_err(|e| bad(&e))?;
            // A symlink's size is its target's length in bytes.
            stats.content += target.as_os_str().len() as u64;
            safefs::set_meta_at(p, &name, owner(uid, gid), None, mtime).map_err(|e| bad(&e))?;
            stats.files += 1;
        }
        EntryType::Link => {
            let target = entry
                .link_name()
                .map_err(|e| bad(&e))?
                .ok_or_else(|| bad(&"hard link without a target"))?;
            let target = safefs::relative(&target);
            let (Some(tname), tparent) =
                (target.file_name(), target.parent().unwrap_or(Path::new("")))
            else {
                return Err(bad(&"hard link to the layer's root"));
            };
            let tdir = safefs::openat2(
                root,
                &safefs::relative(tparent),
                libc::O_PATH | libc::O_DIRECTORY,
                0,
                safefs::IN_ROOT,
            )
            .map_err(|e| bad(&format!("hard link target {}: {e}", target.display())))?;
            // linkat(2) without AT_SYMLINK_FOLLOW links a symlink itself, never what it points to.
            replacing(p, &name, replaced, || {
                safefs::link_at(tdir.as_fd(), tname, p, &name)
            })
            .map_err(|e| bad(&format!("hard link to {}: {e}", target.display())))?;
            stats.files += 1;
        }
        EntryType::Char | EntryType::Block | EntryType::Fifo => {
            let ty = match kind {
                EntryType::Char => libc::S_IFCHR,
                EntryType::Block => libc::S_IFBLK,
                _ => libc::S_IFIFO,
            };
            let (major, minor) = devnums;
            replacing(p, &name, replaced, || {
                safefs::mknod_at(p, &name, ty | mode, major, minor)
            })
            .map_err(|e| bad(&e))?;
            safefs::set_meta_at(p, &name, owner(uid, gid), Some(mode), mtime)
                .map_err(|e| bad(&e))?;
            stats.files += 1;
        }
        other => {
            // What Docker refuses too ("unhandled tar header type"): silently dropping it would
            // make the container differ from the image.
            return Err(bad(&unsupported(other)));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
