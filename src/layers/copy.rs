//! `--layers copy`: flatten the layer stack into one private directory.
//!
//! The result equals what overlayfs shows, built the slow way: every file of every layer is
//! copied, in order, and each whiteout deletes what the layers below put there. It exists to
//! be measured against overlayfs (the trace notes its cost). Writes go through fds resolved
//! inside `dest`, so a symlink from a lower layer can never redirect a copy out of it.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::sys::fs as safefs;

/// What a flatten cost.
#[derive(Debug, Default, Clone, Copy)]
pub struct CopyStats {
    /// Files, links and devices copied.
    pub files: u64,
    /// Bytes of file content copied.
    pub bytes: u64,
    /// Wall time spent.
    pub elapsed: Duration,
}

struct Flattener<'a> {
    root: BorrowedFd<'a>,
    stats: CopyStats,
    dirs: Vec<(PathBuf, u32, u32, u32, i64)>,
    /// (dev, inode) of a source file already copied in this layer → where it went.
    links: HashMap<(u64, u64), PathBuf>,
}

fn err(p: &Path, e: impl std::fmt::Display) -> Error {
    Error::Usage(format!("--layers copy: {}: {e}", p.display()))
}

impl Flattener<'_> {
    fn walk(&mut self, layer: &Path, rel: &Path) -> Result<()> {
        let src_dir = layer.join(rel);
        let mut entries: Vec<_> = std::fs::read_dir(&src_dir)
            .map_err(|e| err(&src_dir, e))?
            .flatten()
            .collect();
        entries.sort_by_key(|e| e.file_name());
        // Every entry of this directory lands in the same place: resolve it once (entries
        // replace names inside it, never the directory itself).
        let parent = safefs::mkdir_all_in_root(self.root, rel, 0o755).map_err(|e| err(rel, e))?;
        let p = parent.as_fd();
        for entry in entries {
            let name = entry.file_name();
            let src = entry.path();
            let rel_path = rel.join(&name);
            let meta = std::fs::symlink_metadata(&src).map_err(|e| err(&src, e))?;
            let ft = meta.file_type();
            if ft.is_char_device() && meta.rdev() == 0 {
                // A whiteout: what the layers below had here is deleted.
                safefs::remove_at(p, &name).map_err(|e| err(&rel_path, e))?;
                continue;
            }
            if ft.is_dir() {
                let opaque =
                    safefs::get_xattr(&src, "trusted.overlay.opaque").as_deref() == Some(b"y");
                let exists_as_dir = safefs::openat2(
                    p,
                    Path::new(&name),
                    libc::O_PATH | libc::O_DIRECTORY | libc::O_NOFOLLOW,
                    0,
                    libc::RESOLVE_BENEATH,
                )
                .is_ok();
                if opaque || !exists_as_dir {
                    safefs::remove_at(p, &name).map_err(|e| err(&rel_path, e))?;
                    safefs::mkdir_at(p, &name, 0o755).map_err(|e| err(&rel_path, e))?;
                }
                self.dirs.push((
                    rel_path.clone(),
                    meta.uid(),
                    meta.gid(),
                    meta.mode() & 0o7777,
                    meta.mtime(),
                ));
                self.walk(layer, &rel_path)?;
                continue;
            }
            safefs::remove_at(p, &name).map_err(|e| err(&rel_path, e))?;
            let mode = meta.mode() & 0o7777;
            let owner = Some((meta.uid(), meta.gid()));
            if ft.is_file() {
                if meta.nlink() > 1 {
                    if let Some(first) = self.links.get(&(meta.dev(), meta.ino())) {
                        let (Some(fname), fparent) =
                            (first.file_name(), first.parent().unwrap_or(Path::new("")))
                        else {
                            continue;
                        };
                        let fdir = safefs::openat2(
                            self.root,
                            &safefs::relative(fparent),
                            libc::O_PATH | libc::O_DIRECTORY,
                            0,
                            safefs::IN_ROOT,
                        )
                        .map_err(|e| err(&rel_path, e))?;
                        safefs::link_at(fdir.as_fd(), fname, p, &name)
                            .map_err(|e| err(&rel_path, e))?;
                        self.stats.files += 1;
                        continue;
                    }
                    self.links
                        .insert((meta.dev(), meta.ino()), rel_path.clone());
                }
                let mut from = std::fs::File::open(&src).map_err(|e| err(&src, e))?;
                let mut to = safefs::create_at(p, &name).map_err(|e| err(&rel_path, e))?;
                self.stats.bytes +=
                    std::io::copy(&mut from, &mut to).map_err(|e| err(&rel_path, e))?;
                safefs::set_meta_at(p, &name, owner, Some(mode), meta.mtime())
                    .map_err(|e| err(&rel_path, e))?;
            } else if ft.is_symlink() {
                let target = std::fs::read_link(&src).map_err(|e| err(&src, e))?;
                safefs::symlink_at(&target, p, &name).map_err(|e| err(&rel_path, e))?;
                safefs::set_meta_at(p, &name, owner, None, meta.mtime())
                    .map_err(|e| err(&rel_path, e))?;
            } else {
                let ty = meta.mode() & libc::S_IFMT;
                let (major, minor) = (libc::major(meta.rdev()), libc::minor(meta.rdev()));
                safefs::mknod_at(p, &name, ty | mode, major, minor)
                    .map_err(|e| err(&rel_path, e))?;
                safefs::set_meta_at(p, &name, owner, Some(mode), meta.mtime())
                    .map_err(|e| err(&rel_path, e))?;
            }
            self.stats.files += 1;
        }
        Ok(())
    }
}

/// Copy `lowers` (bottom first) into `dest`, applying whiteouts.
pub fn flatten(lowers: &[PathBuf], dest: &Path) -> Result<CopyStats> {
    let start = Instant::now();
    let root = safefs::open_root(dest).map_err(Error::io("open", dest))?;
    let mut f = Flattener {
        root: root.as_fd(),
        stats: CopyStats::default(),
        dirs: Vec::new(),
        links: HashMap::new(),
    };
    for layer in lowers {
        f.links.clear();
        f.walk(layer, Path::new(""))?;
    }
    f.dirs
        .sort_by_key(|(p, ..)| std::cmp::Reverse(p.components().count()));
    for (path, uid, gid, mode, mtime) in std::mem::take(&mut f.dirs) {
        let (Some(name), parent) = (path.file_name(), path.parent().unwrap_or(Path::new("")))
        else {
            continue;
        };
        if let Ok(dir) = safefs::openat2(
            f.root,
            &safefs::relative(parent),
            libc::O_PATH | libc::O_DIRECTORY,
            0,
            safefs::IN_ROOT,
        ) {
            let _ = safefs::set_meta_at(
                dir.as_fd(),
                OsStr::new(name),
                Some((uid, gid)),
                Some(mode),
                mtime,
            );
        }
    }
    f.stats.elapsed = start.elapsed();
    Ok(f.stats)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whiteouts_and_opaque_dirs_hide_lower_layers() {
        let tmp = tempfile::tempdir().unwrap();
        let (l1, l2, dest) = (
            tmp.path().join("l1"),
            tmp.path().join("l2"),
            tmp.path().join("dest"),
        );
        for d in [&l1, &l2, &dest] {
            std::fs::create_dir_all(d).unwrap();
        }
        std::fs::create_dir_all(l1.join("etc")).unwrap();
        std::fs::write(l1.join("etc/motd"), "hello").unwrap();
        std::fs::write(l1.join("etc/keep"), "keep").unwrap();
        std::fs::create_dir_all(l1.join("cache")).unwrap();
        std::fs::write(l1.join("cache/old"), "old").unwrap();
        std::os::unix::fs::symlink("/", l1.join("lib")).unwrap();
        std::fs::create_dir_all(l2.join("etc")).unwrap();
        safefs::mknod_at(
            safefs::open_root(&l2.join("etc")).unwrap().as_fd(),
            OsStr::new("motd"),
            libc::S_IFCHR,
            0,
            0,
        )
        .unwrap();
        std::fs::create_dir_all(l2.join("cache")).unwrap();
        let c = std::ffi::CString::new(l2.join("cache").to_str().unwrap()).unwrap();
        // SAFETY: test-only xattr on a directory the test owns.
        let rc = unsafe {
            libc::setxattr(
                c.as_ptr(),
                c"trusted.overlay.opaque".as_ptr(),
                b"y".as_ptr().cast(),
                1,
                0,
            )
        };
        assert_eq!(rc, 0, "setting trusted.* needs root");
        std::fs::create_dir_all(l2.join("lib")).unwrap();
        std::fs::write(l2.join("lib/x"), "x").unwrap();
        let s = flatten(&[l1, l2], &dest).unwrap();
        assert!(!dest.join("etc/motd").exists());
        assert_eq!(
            std::fs::read_to_string(dest.join("etc/keep")).unwrap(),
            "keep"
        );
        assert!(!dest.join("cache/old").exists());
        assert!(
            dest.join("lib").is_dir(),
            "the upper directory replaces the lower symlink"
        );
        assert!(dest.join("lib/x").exists());
        assert!(s.files >= 3);
    }
}
