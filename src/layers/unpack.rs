//! Unpacking a layer tar into a directory, safely.
//!
//! The `tar` crate only *reads* entries here; every write is ours, made relative to a
//! directory fd that was resolved with `openat2(RESOLVE_IN_ROOT)`, with `O_NOFOLLOW`/`O_EXCL`
//! for the final name. So whatever a hostile layer contains (absolute names, `../`, a symlink
//! to `/` followed by files "inside" it, a hard link to `/etc/passwd`, a whiteout of `../x`),
//! nothing is created, changed or removed outside `dest`. Whiteouts become overlayfs's own:
//! `.wh.name` → a 0/0 character device `name`; `.wh..wh..opq` → `trusted.overlay.opaque=y`.

use std::ffi::OsStr;
use std::io::Read;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

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
}

fn bad(entry: &Path, what: impl std::fmt::Display) -> Error {
    Error::Corrupt(format!("layer entry {}: {what}", entry.display()))
}

/// Create `name` with `make`; if something is already there (an earlier layer entry of the
/// same name), remove it and try once more. Trying first saves a syscall per entry.
fn replacing<T>(
    dir: std::os::fd::BorrowedFd<'_>,
    name: &OsStr,
    make: impl Fn() -> std::io::Result<T>,
) -> std::io::Result<T> {
    match make() {
        Err(e) if e.raw_os_error() == Some(libc::EEXIST) => {
            safefs::remove_at(dir, name)?;
            make()
        }
        other => other,
    }
}

/// Unpack the tar stream `reader` into `dest` (an existing, empty directory).
pub fn unpack(reader: impl Read, dest: &Path) -> Result<UnpackStats> {
    let root = safefs::open_root(dest).map_err(Error::io("open", dest))?;
    let root = root.as_fd();
    let mut stats = UnpackStats::default();
    let mut dir_meta: Vec<(PathBuf, u32, u32, u32, i64)> = Vec::new();
    let mut cache: Option<(PathBuf, std::os::fd::OwnedFd)> = None;
    // A file this unpack creates already belongs to us: chown only when the layer says otherwise.
    let me = (
        nix::unistd::geteuid().as_raw(),
        nix::unistd::getegid().as_raw(),
    );
    let owner = |uid: u32, gid: u32| (me != (uid, gid)).then_some((uid, gid));
    let mut archive = tar::Archive::new(reader);
    let entries = archive.entries().map_err(Error::io("read layer", dest))?;
    for entry in entries {
        let mut entry = entry.map_err(Error::io("read layer", dest))?;
        let raw = entry
            .path()
            .map_err(Error::io("read layer entry name", dest))?
            .into_owned();
        let path = safefs::relative(&raw);
        let Some(name) = path.file_name().map(OsStr::to_os_string) else {
            continue;
        };
        // Follow the layer's own symlinks the way the container will see them (inside dest),
        // so `lib -> usr/lib` then `lib/x` lands in usr/lib; openat2 then refuses to leave dest.
        // Entries come grouped by directory, so the last parent's fd is kept and reused while
        // entries share it (the fd stays on that directory inside dest whatever its path
        // becomes; it is dropped as soon as an entry touches the path or one of its ancestors).
        let parent_key = path.parent().map(Path::to_path_buf).unwrap_or_default();
        if cache.as_ref().is_none_or(|(k, _)| *k != parent_key) {
            let joined = safefs::secure_join(dest, &parent_key).map_err(|e| bad(&raw, e))?;
            let parent_rel = joined
                .strip_prefix(dest)
                .map(Path::to_path_buf)
                .unwrap_or_default();
            let fd =
                safefs::mkdir_all_in_root(root, &parent_rel, 0o755).map_err(|e| bad(&raw, e))?;
            cache = Some((parent_key, fd));
        }
        let parent = &cache.as_ref().expect("just filled").1;
        let header = entry.header();
        let mode = header.mode().unwrap_or(0o644) & 0o7777;
        let uid = header.uid().unwrap_or(0) as u32;
        let gid = header.gid().unwrap_or(0) as u32;
        let mtime = header.mtime().unwrap_or(0) as i64;
        let kind = header.entry_type();
        let name_str = name.to_string_lossy();

        if let Some(hidden) = name_str.strip_prefix(".wh.") {
            stats.whiteouts += 1;
            if hidden == ".wh..opq" {
                safefs::set_xattr_at(
                    parent.as_fd(),
                    OsStr::new("."),
                    "trusted.overlay.opaque",
                    b"y",
                )
                .map_err(|e| bad(&raw, format!("opaque directory: {e}")))?;
            } else {
                let hidden = OsStr::new(hidden);
                safefs::remove_at(parent.as_fd(), hidden).map_err(|e| bad(&raw, e))?;
                safefs::mknod_at(parent.as_fd(), hidden, libc::S_IFCHR, 0, 0)
                    .map_err(|e| bad(&raw, format!("whiteout: {e}")))?;
            }
            continue;
        }

        let p = parent.as_fd();
        match kind {
            EntryType::Directory => {
                match safefs::mkdir_at(p, &name, 0o755) {
                    Ok(()) => stats.dirs += 1,
                    Err(e) if e.raw_os_error() == Some(libc::EEXIST) => {
                        let is_dir = safefs::openat2(
                            p,
                            Path::new(&name),
                            libc::O_PATH | libc::O_DIRECTORY | libc::O_NOFOLLOW,
                            0,
                            libc::RESOLVE_BENEATH,
                        )
                        .is_ok();
                        if !is_dir {
                            safefs::remove_at(p, &name).map_err(|e| bad(&raw, e))?;
                            safefs::mkdir_at(p, &name, 0o755).map_err(|e| bad(&raw, e))?;
                        }
                    }
                    Err(e) => return Err(bad(&raw, e)),
                }
                dir_meta.push((path.clone(), uid, gid, mode, mtime));
            }
            EntryType::Regular | EntryType::Continuous => {
                let mut f = replacing(p, &name, || safefs::create_at(p, &name))
                    .map_err(|e| bad(&raw, e))?;
                stats.bytes += std::io::copy(&mut entry, &mut f).map_err(|e| bad(&raw, e))?;
                if let Ok(Some(exts)) = entry.pax_extensions() {
                    for ext in exts.flatten() {
                        if let Some(key) =
                            ext.key().ok().and_then(|k| k.strip_prefix("SCHILY.xattr."))
                        {
                            // Only attributes the kernel would let an image set (file capabilities, user.*).
                            if key.starts_with("security.") || key.starts_with("user.") {
                                let _ = safefs::set_xattr_at(p, &name, key, ext.value_bytes());
                            }
                        }
                    }
                }
                drop(f);
                safefs::set_meta_at(p, &name, owner(uid, gid), Some(mode), mtime)
                    .map_err(|e| bad(&raw, e))?;
                stats.files += 1;
            }
            EntryType::Symlink => {
                let target = entry
                    .link_name()
                    .map_err(|e| bad(&raw, e))?
                    .ok_or_else(|| bad(&raw, "symlink without a target"))?;
                // The target is only text here; it is never followed while unpacking.
                replacing(p, &name, || safefs::symlink_at(&target, p, &name))
                    .map_err(|e| bad(&raw, e))?;
                safefs::set_meta_at(p, &name, owner(uid, gid), None, mtime)
                    .map_err(|e| bad(&raw, e))?;
                stats.files += 1;
            }
            EntryType::Link => {
                let target = entry
                    .link_name()
                    .map_err(|e| bad(&raw, e))?
                    .ok_or_else(|| bad(&raw, "hard link without a target"))?;
                let target = safefs::relative(&target);
                let (Some(tname), tparent) =
                    (target.file_name(), target.parent().unwrap_or(Path::new("")))
                else {
                    return Err(bad(&raw, "hard link to the layer's root"));
                };
                let tdir = safefs::openat2(
                    root,
                    &safefs::relative(tparent),
                    libc::O_PATH | libc::O_DIRECTORY,
                    0,
                    safefs::IN_ROOT,
                )
                .map_err(|e| bad(&raw, format!("hard link target {}: {e}", target.display())))?;
                replacing(p, &name, || safefs::link_at(tdir.as_fd(), tname, p, &name))
                    .map_err(|e| bad(&raw, format!("hard link to {}: {e}", target.display())))?;
                stats.files += 1;
            }
            EntryType::Char | EntryType::Block | EntryType::Fifo => {
                let ty = match kind {
                    EntryType::Char => libc::S_IFCHR,
                    EntryType::Block => libc::S_IFBLK,
                    _ => libc::S_IFIFO,
                };
                let major = header.device_major().ok().flatten().unwrap_or(0);
                let minor = header.device_minor().ok().flatten().unwrap_or(0);
                replacing(p, &name, || {
                    safefs::mknod_at(p, &name, ty | mode, major, minor)
                })
                .map_err(|e| bad(&raw, e))?;
                safefs::set_meta_at(p, &name, owner(uid, gid), Some(mode), mtime)
                    .map_err(|e| bad(&raw, e))?;
                stats.files += 1;
            }
            // PAX and GNU headers are consumed by the tar crate; anything else is not a file.
            _ => {}
        }
        if cache.as_ref().is_some_and(|(k, _)| k.starts_with(&path)) {
            cache = None;
        }
    }
    // Directory modes and times last (deepest first): adding entries changed their mtimes,
    // and a read-only directory would have refused its contents.
    dir_meta.sort_by_key(|(p, ..)| std::cmp::Reverse(p.components().count()));
    for (path, uid, gid, mode, mtime) in dir_meta {
        let (Some(name), parent_rel) = (path.file_name(), path.parent().unwrap_or(Path::new("")))
        else {
            continue;
        };
        let parent = safefs::openat2(
            root,
            &safefs::relative(parent_rel),
            libc::O_PATH | libc::O_DIRECTORY,
            0,
            safefs::IN_ROOT,
        )
        .map_err(|e| bad(&path, e))?;
        safefs::set_meta_at(parent.as_fd(), name, Some((uid, gid)), Some(mode), mtime)
            .map_err(|e| bad(&path, e))?;
    }
    Ok(stats)
}

#[cfg(test)]
mod tests;
