//! `--layers copy`: flatten the layer stack into one private directory.
//!
//! The result equals what overlayfs shows, built the slow way: every file of every layer is
//! copied, in order, and each whiteout deletes what the layers below put there. It exists to
//! be measured against overlayfs (the trace notes its cost). Writes go through fds resolved
//! inside `dest`, so a symlink from a lower layer can never redirect a copy out of it.

use std::collections::HashMap;
use std::os::fd::AsRawFd;
use std::os::fd::{AsFd, BorrowedFd};
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

/// A source entry's `stat`, with the accessors the walk needs.
struct Meta(libc::stat);

impl Meta {
    fn file_type(&self) -> u32 {
        self.0.st_mode & libc::S_IFMT
    }
    fn is_dir(&self) -> bool {
        self.file_type() == libc::S_IFDIR
    }
    fn is_file(&self) -> bool {
        self.file_type() == libc::S_IFREG
    }
    fn is_symlink(&self) -> bool {
        self.file_type() == libc::S_IFLNK
    }
    fn is_whiteout(&self) -> bool {
        self.file_type() == libc::S_IFCHR && self.0.st_rdev == 0
    }
    fn mode(&self) -> u32 {
        self.0.st_mode
    }
    fn uid(&self) -> u32 {
        self.0.st_uid
    }
    fn gid(&self) -> u32 {
        self.0.st_gid
    }
    fn mtime(&self) -> i64 {
        self.0.st_mtime
    }
    fn nlink(&self) -> u64 {
        self.0.st_nlink
    }
    fn dev(&self) -> u64 {
        self.0.st_dev
    }
    fn ino(&self) -> u64 {
        self.0.st_ino
    }
    fn rdev(&self) -> u64 {
        self.0.st_rdev
    }
}

struct Flattener<'a> {
    root: BorrowedFd<'a>,
    stats: CopyStats,
    dirs: Vec<safefs::DirMeta>,
    /// (dev, inode) of a source file already copied in this layer → where it went.
    links: HashMap<(u64, u64), PathBuf>,
    /// A volume's copy-up ([`copy_dir`]) rather than a layer: no whiteouts or opaque
    /// directories, and the source walk never crosses into another mount.
    copy_up: bool,
    /// Device nodes are skipped (see [`copy_dir`]).
    no_devices: bool,
}

fn err(p: &Path, source: std::io::Error) -> Error {
    super::LayerError::Copy {
        path: p.to_path_buf(),
        source,
    }
    .into()
}

impl Flattener<'_> {
    /// How source entries are opened: beneath the source, no symlink followed, and for a
    /// copy-up no mount crossed either (whatever is mounted inside the image's tree is not
    /// the image's).
    fn resolve(&self) -> u64 {
        let beneath = libc::RESOLVE_BENEATH | libc::RESOLVE_NO_SYMLINKS;
        if self.copy_up {
            beneath | libc::RESOLVE_NO_XDEV
        } else {
            beneath
        }
    }

    fn walk(&mut self, layer: BorrowedFd<'_>, rel: &Path) -> Result<()> {
        // The layer is read through fds too: its directory opened beneath the layer's root
        // without following any symlink, each entry looked at with fstatat/openat/readlinkat
        // on that fd.
        let src_dir = safefs::openat2(
            layer,
            &safefs::relative(rel),
            libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW,
            0,
            self.resolve(),
        )
        .map_err(|e| err(rel, e))?;
        let s = src_dir.as_fd();
        let mut names: Vec<std::ffi::OsString> = std::fs::read_dir(safefs::fd_path(&src_dir))
            .and_then(|d| d.map(|e| e.map(|e| e.file_name())).collect())
            .map_err(|e| err(rel, e))?;
        names.sort();
        // Every entry of this directory lands in the same place: resolve it once (entries
        // replace names inside it, never the directory itself).
        let parent = safefs::mkdir_all_in_root(self.root, rel, 0o755).map_err(|e| err(rel, e))?;
        let p = parent.as_fd();
        for name in names {
            let rel_path = rel.join(&name);
            let meta = Meta(safefs::stat_at(s, &name).map_err(|e| err(&rel_path, e))?);
            if self.no_devices && matches!(meta.file_type(), libc::S_IFCHR | libc::S_IFBLK) {
                continue;
            }
            if meta.is_whiteout() && !self.copy_up {
                // A whiteout: what the layers below had here is deleted.
                safefs::remove_at(p, &name).map_err(|e| err(&rel_path, e))?;
                continue;
            }
            if meta.is_dir() {
                let opaque = !self.copy_up
                    && safefs::get_xattr_at(s, &name, "trusted.overlay.opaque")
                        .map_err(|e| err(&rel_path, e))?
                        .as_deref()
                        == Some(b"y");
                // Only "nothing there" or "something else there" decide; any other error
                // (EMFILE, ENOMEM...) stops the copy instead of deleting a tree.
                let exists_as_dir = match safefs::stat_at(p, &name) {
                    Ok(st) => st.st_mode & libc::S_IFMT == libc::S_IFDIR,
                    Err(e) if e.raw_os_error() == Some(libc::ENOENT) => false,
                    Err(e) => return Err(err(&rel_path, e)),
                };
                if opaque || !exists_as_dir {
                    safefs::remove_at(p, &name).map_err(|e| err(&rel_path, e))?;
                    safefs::mkdir_at(p, &name, 0o755).map_err(|e| err(&rel_path, e))?;
                }
                let st = safefs::stat_at(p, &name).map_err(|e| err(&rel_path, e))?;
                self.dirs.push(safefs::DirMeta {
                    path: rel_path.clone(),
                    id: safefs::identity(&st),
                    owner: Some((meta.uid(), meta.gid())),
                    mode: meta.mode() & 0o7777,
                    mtime: meta.mtime(),
                });
                self.walk(layer, &rel_path)?;
                continue;
            }
            safefs::remove_at(p, &name).map_err(|e| err(&rel_path, e))?;
            let mode = meta.mode() & 0o7777;
            let owner = Some((meta.uid(), meta.gid()));
            if meta.is_file() {
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
                let mut from = std::fs::File::from(
                    safefs::openat2(
                        s,
                        Path::new(&name),
                        libc::O_RDONLY | libc::O_NOFOLLOW,
                        0,
                        self.resolve(),
                    )
                    .map_err(|e| err(&rel_path, e))?,
                );
                let mut to = safefs::create_at(p, &name).map_err(|e| err(&rel_path, e))?;
                self.stats.bytes +=
                    std::io::copy(&mut from, &mut to).map_err(|e| err(&rel_path, e))?;
                // Through the fd just written: owner, then file capabilities (chown clears
                // them), then the mode (chown clears setuid too), then times.
                let fd = to.as_fd();
                safefs::chown_fd(fd, (meta.uid(), meta.gid())).map_err(|e| err(&rel_path, e))?;
                if let Some(cap) = safefs::get_xattr_at(s, &name, "security.capability")
                    .map_err(|e| err(&rel_path, e))?
                {
                    safefs::set_xattr_fd(fd, "security.capability", &cap)
                        .map_err(|e| err(&rel_path, e))?;
                }
                safefs::set_meta_fd(fd, None, mode, meta.mtime()).map_err(|e| err(&rel_path, e))?;
            } else if meta.is_symlink() {
                let target = PathBuf::from(
                    nix::fcntl::readlinkat(Some(s.as_raw_fd()), name.as_os_str())
                        .map_err(|e| err(&rel_path, e.into()))?,
                );
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
        copy_up: false,
        no_devices: false,
    };
    for layer in lowers {
        f.links.clear();
        let src = safefs::open_root(layer).map_err(Error::io("open", layer))?;
        f.walk(src.as_fd(), Path::new(""))?;
    }
    f.finish(start)
}

/// A volume's copy-up: the tree beneath the directory `src` (an fd) copied into the directory
/// `dest` (an fd), fd to fd as [`flatten`] copies a layer: hard links stay links, file
/// capabilities, owners, modes and times are kept, and nothing is followed or crosses a mount
/// on the source side (`RESOLVE_NO_XDEV`). With `no_devices` device nodes are left out.
pub fn copy_dir(src: BorrowedFd<'_>, dest: BorrowedFd<'_>, no_devices: bool) -> Result<CopyStats> {
    let start = Instant::now();
    let mut f = Flattener {
        root: dest,
        stats: CopyStats::default(),
        dirs: Vec::new(),
        links: HashMap::new(),
        copy_up: true,
        no_devices,
    };
    f.walk(src, Path::new(""))?;
    let stats = f.finish(start)?;
    // The top directory too, as Docker's `copyOwnership`: a volume at the image's
    // `/var/lib/postgresql/data` (owned by postgres, 0700) is the postgres user's.
    let top = |e| err(Path::new("."), e);
    let st = Meta(nix::sys::stat::fstat(src.as_raw_fd()).map_err(|e| top(e.into()))?);
    let dir = safefs::openat2(
        dest,
        Path::new("."),
        libc::O_RDONLY | libc::O_DIRECTORY,
        0,
        libc::RESOLVE_BENEATH | libc::RESOLVE_NO_SYMLINKS,
    )
    .map_err(top)?;
    safefs::set_meta_fd(
        dir.as_fd(),
        Some((st.uid(), st.gid())),
        st.mode() & 0o7777,
        st.mtime(),
    )
    .map_err(top)?;
    Ok(stats)
}

impl Flattener<'_> {
    fn finish(mut self, start: Instant) -> Result<CopyStats> {
        let f = &mut self;
        // Directory owners, modes and times last (deepest first), each through an fd of the
        // directory itself: a directory of a lower layer that an upper layer replaced with a
        // symlink (to the host, say) is left alone, never followed.
        safefs::apply_dir_meta(f.root, std::mem::take(&mut f.dirs))
            .map_err(|(path, e)| err(&path, e))?;
        f.stats.elapsed = start.elapsed();
        Ok(f.stats)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsStr;
    use std::os::unix::fs::MetadataExt;
    use std::os::unix::fs::PermissionsExt;

    /// A file's capabilities survive the copy (set after its chown, which would clear them).
    #[test]
    fn copy_keeps_file_capabilities_and_setuid() {
        let tmp = tempfile::tempdir().unwrap();
        let (l1, dest) = (tmp.path().join("l1"), tmp.path().join("dest"));
        for d in [&l1, &dest] {
            std::fs::create_dir_all(d).unwrap();
        }
        let f = l1.join("ping");
        std::fs::write(&f, "ELF").unwrap();
        std::os::unix::fs::chown(&f, Some(1000), Some(1000)).unwrap();
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o4755)).unwrap();
        // struct vfs_cap_data, revision 2, effective, permitted = CAP_NET_RAW (13).
        let mut cap = Vec::new();
        for w in [0x0200_0001u32, 1 << 13, 0, 0, 0] {
            cap.extend_from_slice(&w.to_le_bytes());
        }
        let c = std::ffi::CString::new(f.to_str().unwrap()).unwrap();
        // SAFETY: test-only xattr on a file the test owns; valid C strings and a live value
        // buffer. Not nix: 0.29 has no xattr calls.
        let rc = unsafe {
            libc::setxattr(
                c.as_ptr(),
                c"security.capability".as_ptr(),
                cap.as_ptr().cast(),
                cap.len(),
                0,
            )
        };
        assert_eq!(rc, 0, "setting security.capability needs root");
        flatten(&[l1], &dest).unwrap();
        let got = dest.join("ping");
        let m = std::fs::symlink_metadata(&got).unwrap();
        assert_eq!((m.uid(), m.mode() & 0o7777), (1000, 0o4755));
        assert_eq!(
            safefs::get_xattr_fd(
                std::fs::File::open(&got).unwrap().as_fd(),
                "security.capability"
            )
            .unwrap()
            .as_deref(),
            Some(&cap[..])
        );
    }

    /// Issue 8, escape 1 for `--layers copy`: a lower layer's directory `d` (04777) and an
    /// upper layer's symlink `d -> <host file>`; the deferred directory pass chmodded the host
    /// file through the symlink.
    #[test]
    fn copy_chmods_a_host_file_through_a_symlink() {
        let tmp = tempfile::tempdir().unwrap();
        let (l1, l2, dest) = (
            tmp.path().join("l1"),
            tmp.path().join("l2"),
            tmp.path().join("dest"),
        );
        for d in [&l1, &l2, &dest] {
            std::fs::create_dir_all(d).unwrap();
        }
        let bait = crate::testutil::bait_dir();
        let host = bait.path().join("passwd");
        let before = crate::testutil::tree_state(bait.path());
        std::fs::create_dir(l1.join("d")).unwrap();
        std::fs::set_permissions(l1.join("d"), std::fs::Permissions::from_mode(0o4777)).unwrap();
        std::os::unix::fs::symlink(&host, l2.join("d")).unwrap();
        flatten(&[l1, l2], &dest).unwrap();
        assert_eq!(
            crate::testutil::tree_state(bait.path()),
            before,
            "host changed"
        );
        assert_eq!(std::fs::read_link(dest.join("d")).unwrap(), host);
    }

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
        // SAFETY: test-only xattr on a directory the test owns; valid C strings and a live
        // value. Not nix: 0.29 has no xattr calls.
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
