//! Tar streams out of a tree and into one, looking only through descriptors (`dockling cp`).
//!
//! A container's files are hostile: any name in them may be a symlink to `/etc` or `/`, and
//! the container can swap a directory for a symlink while a copy walks it (CVE-2018-15664).
//! So nothing here joins path strings and trusts the result. [`write_tree`] walks a tree from
//! an fd: each child opened beneath its parent's fd with `O_NOFOLLOW` and
//! `RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS` (a symlink is archived as a symlink, never followed),
//! each regular file read through an fd of exactly the object that was `fstat`ed (reopened
//! through `/proc/self/fd`, so a device node or a FIFO is never opened). [`extract`] reads a
//! tar with the `tar` crate but makes every write itself, relative to the destination
//! directory's fd: parents resolved with `RESOLVE_IN_ROOT` (a symlink in the stream or in the
//! destination stays inside it), final names created with `O_EXCL|O_NOFOLLOW` and `*at`
//! calls, metadata applied through fds, as [`crate::layers::unpack`] does for layers.

use std::ffi::{OsStr, OsString};
use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use tar::EntryType;

use crate::sys::fs as safefs;

/// Resolution of one name beneath a directory fd: no symlink, no `..` out, no magic link.
const BENEATH: u64 =
    libc::RESOLVE_BENEATH | libc::RESOLVE_NO_SYMLINKS | libc::RESOLVE_NO_MAGICLINKS;

/// `fstat(2)` of an fd.
fn fstat(fd: BorrowedFd<'_>) -> std::io::Result<libc::stat> {
    Ok(nix::sys::stat::fstat(fd.as_raw_fd())?)
}

/// A tar header for the object `st` describes (owner, mode, time; size for a regular file).
fn header_for(st: &libc::stat, kind: EntryType) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_mode(st.st_mode & 0o7777);
    h.set_uid(st.st_uid.into());
    h.set_gid(st.st_gid.into());
    h.set_mtime(st.st_mtime.max(0) as u64);
    h.set_size(0);
    h
}

/// Archive the object `fd` (an `O_PATH` fd, opened without following a final symlink) into
/// `out` under the name `name`, and, for a directory, everything beneath it. With `name`
/// `None` a directory's *contents* are archived at the top of the stream (Docker's `src/.`).
/// Sockets are skipped (tar has no type for them). A file with several names in the tree is
/// archived once, its other names as hard links to the first (as Docker's archives do).
pub fn write_tree<W: Write>(
    out: &mut tar::Builder<W>,
    fd: BorrowedFd<'_>,
    name: Option<&Path>,
) -> std::io::Result<()> {
    walk(out, fd, name, &mut std::collections::HashMap::new())
}

/// [`write_tree`]'s walk; `links` maps each multiply linked file met (device, inode) to the
/// name it was archived under.
fn walk<W: Write>(
    out: &mut tar::Builder<W>,
    fd: BorrowedFd<'_>,
    name: Option<&Path>,
    links: &mut std::collections::HashMap<(u64, u64), PathBuf>,
) -> std::io::Result<()> {
    let st = fstat(fd)?;
    match st.st_mode & libc::S_IFMT {
        libc::S_IFDIR => {
            if let Some(name) = name {
                let mut h = header_for(&st, EntryType::Directory);
                out.append_data(&mut h, name, std::io::empty())?;
            }
            // An fd that can list the directory: openat(fd, ".") is the very directory.
            let dir = safefs::openat2(
                fd,
                Path::new("."),
                libc::O_RDONLY | libc::O_DIRECTORY,
                0,
                BENEATH,
            )?;
            let mut names: Vec<OsString> = std::fs::read_dir(safefs::fd_path(&dir))?
                .map(|e| e.map(|e| e.file_name()))
                .collect::<std::io::Result<_>>()?;
            names.sort();
            for n in names {
                let child = match safefs::openat2(
                    dir.as_fd(),
                    Path::new(&n),
                    libc::O_PATH | libc::O_NOFOLLOW,
                    0,
                    BENEATH,
                ) {
                    Ok(c) => c,
                    // Removed while we walked: it is simply not copied.
                    Err(e) if e.raw_os_error() == Some(libc::ENOENT) => continue,
                    Err(e) => return Err(e),
                };
                let child_name = match name {
                    Some(p) => p.join(&n),
                    None => PathBuf::from(&n),
                };
                walk(out, child.as_fd(), Some(&child_name), links)?;
            }
            Ok(())
        }
        libc::S_IFREG => {
            let name = name.unwrap_or(Path::new("."));
            if st.st_nlink > 1 {
                match links.get(&safefs::identity(&st)) {
                    Some(first) => {
                        let mut h = header_for(&st, EntryType::Link);
                        return out.append_link(&mut h, name, first);
                    }
                    None => {
                        links.insert(safefs::identity(&st), name.to_path_buf());
                    }
                }
            }
            // Reopen exactly the object that was looked at, for reading: through the fd's
            // /proc/self/fd link (the host's /proc, trusted), never by name in the tree.
            // (O_RDONLY on an O_PATH fd's magic link reopens that object; a FIFO or device
            // is never reached: this is only done for what fstat called a regular file.)
            let f = OwnedFd::from(std::fs::File::open(format!(
                "/proc/self/fd/{}",
                fd.as_raw_fd()
            ))?);
            let fst = fstat(f.as_fd())?;
            if safefs::identity(&fst) != safefs::identity(&st)
                || fst.st_mode & libc::S_IFMT != libc::S_IFREG
            {
                return Err(std::io::Error::other(format!(
                    "{}: changed while it was copied",
                    name.display()
                )));
            }
            let size = fst.st_size.max(0) as u64;
            let mut h = header_for(&fst, EntryType::Regular);
            h.set_size(size);
            // Exactly `size` bytes whatever the file does meanwhile: cut if it grew, zeros
            // if it shrank, so the stream stays a valid tar.
            let data = std::fs::File::from(f)
                .take(size)
                .chain(std::io::repeat(0))
                .take(size);
            out.append_data(&mut h, name, data)
        }
        libc::S_IFLNK => {
            let name = name.unwrap_or(Path::new("."));
            let target = nix::fcntl::readlinkat(Some(fd.as_raw_fd()), "")?;
            let mut h = header_for(&st, EntryType::Symlink);
            // The target's bytes as they are: `set_link_name` would normalise them (`/`
            // became `//`, `a/./b` `a/b`). A target too long for the header goes through
            // append_link's GNU long-link entry.
            if target.as_bytes().len() <= 100 {
                h.set_link_name_literal(target.as_bytes())?;
                out.append_data(&mut h, name, std::io::empty())
            } else {
                out.append_link(&mut h, name, target)
            }
        }
        t @ (libc::S_IFCHR | libc::S_IFBLK | libc::S_IFIFO) => {
            let name = name.unwrap_or(Path::new("."));
            let kind = match t {
                libc::S_IFCHR => EntryType::Char,
                libc::S_IFBLK => EntryType::Block,
                _ => EntryType::Fifo,
            };
            let mut h = header_for(&st, kind);
            h.set_device_major(libc::major(st.st_rdev))?;
            h.set_device_minor(libc::minor(st.st_rdev))?;
            out.append_data(&mut h, name, std::io::empty())
        }
        _ => Ok(()),
    }
}

/// How [`extract`] treats what it writes.
#[derive(Debug, Clone, Copy)]
pub struct ExtractOptions {
    /// The owner every entry gets: `Some((0, 0))` for a copy into a container without `-a`,
    /// `None` to keep the one in the stream (`-a`).
    pub owner: Option<(u32, u32)>,
    /// Never chown at all (a copy to the host: files belong to whoever runs `cp`, as Docker's
    /// `NoLchown`).
    pub no_chown: bool,
    /// Refuse device nodes (a copy to the host: a container must not be able to hand the host
    /// a world-writable `/dev/mem`); they are skipped with a warning.
    pub no_devices: bool,
}

/// What an extraction wrote.
#[derive(Debug, Default, Clone)]
pub struct ExtractStats {
    /// Entries created.
    pub entries: u64,
    /// Bytes of file content.
    pub bytes: u64,
    /// Each entry made, in order: its path and the calls that made it (for `cp --trace`,
    /// whose per-file work is not performed through the seam).
    pub done: Vec<(PathBuf, &'static str)>,
}

/// Write the entries of the tar stream `reader` into the directory `dest` (an fd). Every
/// entry's parent is resolved with `RESOLVE_IN_ROOT` from `dest`; its final name is never
/// followed. An existing directory is merged into; an existing file or symlink is replaced;
/// a directory is never replaced by a non-directory, nor the reverse (Docker's errors).
pub fn extract(
    reader: impl Read,
    dest: BorrowedFd<'_>,
    opts: &ExtractOptions,
) -> Result<ExtractStats, String> {
    let mut stats = ExtractStats::default();
    let mut dirs: Vec<safefs::DirMeta> = Vec::new();
    let mut archive = tar::Archive::new(reader);
    let entries = archive
        .entries()
        .map_err(|e| format!("not a valid tar stream: {e}"))?;
    let me = (
        nix::unistd::geteuid().as_raw(),
        nix::unistd::getegid().as_raw(),
    );
    for entry in entries {
        let mut entry = entry.map_err(|e| format!("not a valid tar stream: {e}"))?;
        let raw = entry
            .path()
            .map_err(|e| format!("bad entry name: {e}"))?
            .into_owned();
        let bad = |e: &dyn std::fmt::Display| format!("{}: {e}", raw.display());
        let h = entry.header();
        let kind = h.entry_type();
        if matches!(kind, EntryType::XGlobalHeader | EntryType::XHeader) {
            continue;
        }
        // An empty field (all NULs or spaces) is 0, as Go's archive/tar (Docker's) reads it.
        let old = h.as_old();
        let field = |what: &str, raw: &[u8], parsed: std::io::Result<u64>| match parsed {
            Ok(v) => Ok(v),
            Err(_) if raw.iter().all(|b| *b == 0 || *b == b' ') => Ok(0),
            Err(e) => Err(bad(&format!("bad {what} field: {e}"))),
        };
        let mode = field("mode", &old.mode, h.mode().map(u64::from))? as u32 & 0o7777;
        let uid = u32::try_from(field("uid", &old.uid, h.uid())?)
            .map_err(|_| bad(&"uid out of range"))?;
        let gid = u32::try_from(field("gid", &old.gid, h.gid())?)
            .map_err(|_| bad(&"gid out of range"))?;
        let mtime = i64::try_from(field("mtime", &old.mtime, h.mtime())?)
            .map_err(|_| bad(&"mtime out of range"))?;
        // Copied to the host, a file belongs to root (whoever runs cp): a setuid or setgid bit
        // the container chose would make it a root setuid program of the container's making.
        let mode = if opts.no_chown { mode & !0o6000 } else { mode };
        let owner = if opts.no_chown {
            None
        } else {
            let o = opts.owner.unwrap_or((uid, gid));
            (o != me).then_some(o)
        };
        let path = safefs::relative(&raw);
        let Some(name) = path.file_name().map(OsStr::to_os_string) else {
            // The stream's `.`: the destination itself, which exists already.
            continue;
        };
        let parent_rel = path.parent().unwrap_or(Path::new("")).to_path_buf();
        let parent_rel = if parent_rel.as_os_str().is_empty() {
            PathBuf::from(".")
        } else {
            parent_rel
        };
        let parent = safefs::open_or_make_dir_in_root(dest, &parent_rel, 0o755)
            .map_err(|e| bad(&format!("parent directory: {e}")))?;
        let p = parent.as_fd();
        let existing = match safefs::stat_at(p, &name) {
            Ok(st) => Some(st.st_mode & libc::S_IFMT),
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => None,
            Err(e) => return Err(bad(&e)),
        };
        let is_dir = kind == EntryType::Directory;
        match existing {
            Some(libc::S_IFDIR) if !is_dir => {
                return Err(bad(&"cannot overwrite a directory with a non-directory"))
            }
            Some(t) if t != libc::S_IFDIR && is_dir => {
                return Err(bad(&"cannot overwrite a non-directory with a directory"))
            }
            Some(t) if t != libc::S_IFDIR => {
                // A file or symlink of that name: replaced (unlinkat, never followed).
                safefs::remove_at(p, &name).map_err(|e| bad(&e))?;
            }
            _ => {}
        }
        let how = match kind {
            EntryType::Directory => "mkdirat(parent, name, 0700) unless it exists, its mode, owner and times set at the end on an O_NOFOLLOW fd of it matched by inode",
            EntryType::Regular | EntryType::Continuous => "openat(parent, name, O_WRONLY|O_CREAT|O_EXCL|O_NOFOLLOW), write, then fchown (when owners are kept), fchmod and futimens on that fd",
            EntryType::Symlink => "symlinkat(target, parent, name), never followed; owner and times with AT_SYMLINK_NOFOLLOW",
            EntryType::Link => "linkat(target's parent fd opened with openat2 RESOLVE_IN_ROOT, parent, name)",
            _ => "mknodat(parent, name), owner and mode with AT_SYMLINK_NOFOLLOW",
        };
        match kind {
            EntryType::Directory => {
                if existing.is_none() {
                    safefs::mkdir_at(p, &name, 0o700).map_err(|e| bad(&e))?;
                }
                let st = safefs::stat_at(p, &name).map_err(|e| bad(&e))?;
                dirs.push(safefs::DirMeta {
                    path: path.clone(),
                    id: safefs::identity(&st),
                    owner,
                    mode,
                    mtime,
                });
            }
            EntryType::Regular | EntryType::Continuous => {
                let mut f = safefs::create_at(p, &name).map_err(|e| bad(&e))?;
                let n = std::io::copy(&mut entry, &mut f).map_err(|e| bad(&e))?;
                stats.bytes += n;
                safefs::set_meta_fd(f.as_fd(), owner, mode, mtime).map_err(|e| bad(&e))?;
            }
            EntryType::Symlink => {
                let target = entry
                    .link_name()
                    .map_err(|e| bad(&e))?
                    .ok_or_else(|| bad(&"symlink without a target"))?;
                // Only text: never followed here.
                safefs::symlink_at(&target, p, &name).map_err(|e| bad(&e))?;
                safefs::set_meta_at(p, &name, owner, None, mtime).map_err(|e| bad(&e))?;
            }
            EntryType::Link => {
                let target = entry
                    .link_name()
                    .map_err(|e| bad(&e))?
                    .ok_or_else(|| bad(&"hard link without a target"))?;
                let target = safefs::relative(&target);
                let tname = target
                    .file_name()
                    .ok_or_else(|| bad(&"hard link to the destination itself"))?;
                let tdir = safefs::openat2(
                    dest,
                    &safefs::relative(target.parent().unwrap_or(Path::new(""))),
                    libc::O_PATH | libc::O_DIRECTORY,
                    0,
                    safefs::IN_ROOT,
                )
                .map_err(|e| bad(&format!("hard link target {}: {e}", target.display())))?;
                safefs::link_at(tdir.as_fd(), tname, p, &name).map_err(|e| bad(&e))?;
            }
            EntryType::Char | EntryType::Block | EntryType::Fifo => {
                let ty = match kind {
                    EntryType::Char => libc::S_IFCHR,
                    EntryType::Block => libc::S_IFBLK,
                    _ => libc::S_IFIFO,
                };
                if opts.no_devices && ty != libc::S_IFIFO {
                    eprintln!(
                        "dockling: warning: {}: device node not copied to the host",
                        raw.display()
                    );
                    continue;
                }
                let major = h.device_major().ok().flatten().unwrap_or(0);
                let minor = h.device_minor().ok().flatten().unwrap_or(0);
                safefs::mknod_at(p, &name, ty | mode, major, minor).map_err(|e| bad(&e))?;
                safefs::set_meta_at(p, &name, owner, Some(mode), mtime).map_err(|e| bad(&e))?;
            }
            other => {
                return Err(bad(&format!("unsupported entry type {other:?}")));
            }
        }
        stats.entries += 1;
        stats.done.push((path.clone(), how));
    }
    safefs::apply_dir_meta(dest, dirs).map_err(|(path, e)| format!("{}: {e}", path.display()))?;
    Ok(stats)
}

/// True when `name` is a plain name (not empty, `.`, `..`, and without `/`).
pub fn plain_name(name: &OsStr) -> bool {
    let b = name.as_bytes();
    !b.is_empty() && b != b"." && b != b".." && !b.contains(&b'/')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roundtrip(src: &Path, dst: &Path, name: Option<&Path>) {
        let fd = safefs::openat2(
            safefs::open_root(Path::new("/")).unwrap().as_fd(),
            src,
            libc::O_PATH | libc::O_NOFOLLOW,
            0,
            0,
        )
        .unwrap();
        let mut b = tar::Builder::new(Vec::new());
        write_tree(&mut b, fd.as_fd(), name).unwrap();
        let data = b.into_inner().unwrap();
        let d = safefs::open_root(dst).unwrap();
        extract(
            &data[..],
            d.as_fd(),
            &ExtractOptions {
                owner: None,
                no_chown: true,
                no_devices: true,
            },
        )
        .unwrap();
    }

    #[test]
    fn a_tree_round_trips_with_modes_and_symlinks() {
        use std::os::unix::fs::PermissionsExt;
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        std::fs::create_dir(a.path().join("d")).unwrap();
        std::fs::write(a.path().join("d/f"), "hi").unwrap();
        std::fs::set_permissions(a.path().join("d/f"), PermissionsExt::from_mode(0o751)).unwrap();
        std::os::unix::fs::symlink("/etc/passwd", a.path().join("d/l")).unwrap();
        std::os::unix::fs::symlink("/", a.path().join("d/root")).unwrap();
        roundtrip(&a.path().join("d"), b.path(), Some(Path::new("copy")));
        let f = b.path().join("copy/f");
        assert_eq!(std::fs::read_to_string(&f).unwrap(), "hi");
        assert_eq!(
            std::fs::metadata(&f).unwrap().permissions().mode() & 0o7777,
            0o751
        );
        assert_eq!(
            std::fs::read_link(b.path().join("copy/l")).unwrap(),
            Path::new("/etc/passwd")
        );
        assert_eq!(
            std::fs::read_link(b.path().join("copy/root")).unwrap(),
            Path::new("/")
        );
        // The contents form: the directory's entries at the top.
        let c = tempfile::tempdir().unwrap();
        roundtrip(&a.path().join("d"), c.path(), None);
        assert!(c.path().join("f").is_file());
    }

    #[test]
    fn a_stream_cannot_write_through_a_symlink_out_of_the_destination() {
        let dest = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(outside.path(), dest.path().join("esc")).unwrap();
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_size(1);
        h.set_mode(0o644);
        b.append_data(&mut h, "esc/x", &b"1"[..]).unwrap();
        // The builder refuses `..`: a hostile stream is written by hand.
        let mut evil = tar::Header::new_old();
        evil.as_old_mut().name[..7].copy_from_slice(b"../../y");
        evil.set_size(1);
        evil.set_mode(0o644);
        evil.set_cksum();
        b.append(&evil, &b"1"[..]).unwrap();
        let data = b.into_inner().unwrap();
        let d = safefs::open_root(dest.path()).unwrap();
        extract(
            &data[..],
            d.as_fd(),
            &ExtractOptions {
                owner: None,
                no_chown: true,
                no_devices: true,
            },
        )
        .unwrap();
        assert_eq!(std::fs::read_dir(outside.path()).unwrap().count(), 0);
        assert!(dest.path().join("y").is_file());
    }
}
