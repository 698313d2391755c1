//! A container's changes as an OCI layer tar (`dockling commit`).
//!
//! The upper directory already *is* the layer, in overlayfs's spelling; the OCI spelling
//! differs only for deletions (image-spec `layer.md`, "Whiteouts"):
//! - a whiteout (character device 0/0 named `x`) becomes an empty regular file `.wh.x`;
//! - an opaque directory (`trusted.overlay.opaque=y`: it replaced the image's directory of
//!   that name) keeps its entry and gets an empty `.wh..wh..opq` inside it, written before
//!   its siblings, since a reader applies it to what it has extracted so far;
//! - the `overlay.*` xattrs themselves are overlayfs's bookkeeping and are left out; every
//!   other xattr goes into a PAX `SCHILY.xattr.<name>` record, as Docker and buildah write them.
//!
//! Entries are in byte order of their names (a parent before its children), owners, modes and
//! mtimes as they are (mtimes clamped to `SOURCE_DATE_EPOCH` when it is set, as BuildKit does),
//! no user or group names, no access times: the same upper directory gives the same bytes.
//! Files with several links in the layer are written once and then as tar hard links to that
//! first name. Sockets cannot be archived (tar has no type for them): each is skipped with a
//! warning naming it, as Docker does. FIFOs and device nodes are kept as what they are.
//!
//! Everything is read through descriptors beneath the upper directory (see [`super::diff`]):
//! a symlink is archived as a symlink, and a file's content is read through a reopened fd of
//! exactly the object that was `fstat`ed, never by a name the container could swap.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use tar::EntryType;

use super::diff::{self, Change, Kind, Lower};
use crate::sys::fs as safefs;

/// The OCI whiteout prefix.
pub const WHITEOUT_PREFIX: &str = ".wh.";
/// The OCI opaque-directory marker.
pub const OPAQUE_MARKER: &str = ".wh..wh..opq";

/// What went into a layer.
#[derive(Debug, Default, Clone)]
pub struct LayerStats {
    /// Entries of the upper directory looked at.
    pub walked: u64,
    /// Entries written (whiteouts included).
    pub entries: u64,
    /// Bytes of file content.
    pub bytes: u64,
    /// `.wh.<name>` files written for whiteouts.
    pub whiteouts: u64,
    /// `.wh..wh..opq` markers written for opaque directories.
    pub opaque: u64,
    /// Tar hard links written.
    pub hard_links: u64,
    /// Sockets skipped (their paths).
    pub sockets: Vec<PathBuf>,
}

/// Writes one layer tar.
pub struct LayerWriter<W: Write> {
    out: tar::Builder<W>,
    /// First name of each multiply-linked file, by (device, inode).
    links: HashMap<(u64, u64), PathBuf>,
    /// `SOURCE_DATE_EPOCH`: no mtime later than this.
    clamp: Option<i64>,
    /// What was written.
    pub stats: LayerStats,
}

/// A PAX record: `"<len> <key>=<value>\n"`, where `<len>` counts the whole record, itself
/// included.
pub(crate) fn pax_record(key: &str, value: &[u8]) -> Vec<u8> {
    let rest = key.len() + value.len() + 3; // ' ', '=', '\n'
    let mut len = rest + 1;
    while len != rest + len.to_string().len() {
        len = rest + len.to_string().len();
    }
    let mut v = format!("{len} {key}=").into_bytes();
    v.extend_from_slice(value);
    v.push(b'\n');
    v
}

/// Append a PAX extended header holding `records` (`SCHILY.xattr.*` ones, made by
/// [`pax_record`]) for the entry `name` that follows it; nothing when there are none.
pub(crate) fn pax_xattrs<W: std::io::Write>(
    out: &mut tar::Builder<W>,
    name: &Path,
    data: &[u8],
) -> std::io::Result<()> {
    if data.is_empty() {
        return Ok(());
    }
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(EntryType::XHeader);
    h.set_mode(0o644);
    h.set_size(data.len() as u64);
    h.set_mtime(0);
    // The name of a PAX header is informational; keep it short and fixed.
    let short: Vec<u8> = name
        .as_os_str()
        .as_bytes()
        .iter()
        .take(80)
        .copied()
        .collect();
    let mut pax_name = b"PaxHeaders/".to_vec();
    pax_name.extend(short);
    let field = &mut h.as_ustar_mut().expect("ustar").name;
    let n = pax_name.len().min(field.len());
    field[..n].copy_from_slice(&pax_name[..n]);
    h.set_cksum();
    out.append(&h, data)
}

/// True for an xattr that is overlayfs's own bookkeeping, never content.
pub(crate) fn overlay_xattr(name: &str) -> bool {
    name.starts_with("trusted.overlay.") || name.starts_with("user.overlay.")
}

impl<W: Write> LayerWriter<W> {
    /// A writer into `out`; `clamp`: `SOURCE_DATE_EPOCH`, if set.
    pub fn new(out: W, clamp: Option<i64>) -> Self {
        let mut out = tar::Builder::new(out);
        out.mode(tar::HeaderMode::Complete);
        LayerWriter {
            out,
            links: HashMap::new(),
            clamp,
            stats: LayerStats::default(),
        }
    }

    /// The tar stream, ended (two zero blocks).
    pub fn finish(self) -> std::io::Result<(W, LayerStats)> {
        let stats = self.stats;
        Ok((self.out.into_inner()?, stats))
    }

    fn mtime(&self, t: i64) -> u64 {
        let t = t.max(0);
        match self.clamp {
            Some(c) => t.min(c.max(0)) as u64,
            None => t as u64,
        }
    }

    fn header(&self, st: &libc::stat, kind: EntryType) -> tar::Header {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        h.set_mode(st.st_mode & 0o7777);
        h.set_uid(st.st_uid.into());
        h.set_gid(st.st_gid.into());
        h.set_mtime(self.mtime(st.st_mtime));
        h.set_size(0);
        h
    }

    /// The PAX header carrying `fd`'s xattrs (none for an object without any).
    fn xattrs(&mut self, fd: BorrowedFd<'_>, name: &Path) -> std::io::Result<()> {
        let mut data = Vec::new();
        for (k, v) in safefs::xattrs_of(fd)? {
            // A redirect (a renamed lower directory) or a metacopy (data still in the lower
            // file) means the upper directory does not hold the change itself: written as it
            // is, the layer would lose content. Only overlayfs mounted with redirect_dir or
            // metacopy on (a host module default; dockling's own mounts do not ask for them)
            // makes these.
            if k.ends_with("overlay.redirect") || k.ends_with("overlay.metacopy") {
                return Err(std::io::Error::other(format!(
                    "{} carries overlayfs's {k}: this upper directory was written with                      redirect_dir or metacopy on, which a layer cannot express; load the                      overlay module with redirect_dir=off metacopy=off",
                    name.display()
                )));
            }
            if !overlay_xattr(&k) {
                data.extend(pax_record(&format!("SCHILY.xattr.{k}"), &v));
            }
        }
        pax_xattrs(&mut self.out, name, &data)
    }

    /// An empty regular file named `name` with `st`'s owner and mtime and `mode`: the form
    /// OCI gives whiteouts and opaque markers.
    fn marker(
        &mut self,
        st: &libc::stat,
        mode: u32,
        mtime: i64,
        name: &Path,
    ) -> std::io::Result<()> {
        let mut h = self.header(st, EntryType::Regular);
        h.set_mode(mode);
        h.set_mtime(self.mtime(mtime));
        self.stats.entries += 1;
        self.out.append_data(&mut h, name, std::io::empty())
    }

    /// `.wh.<name>` for the whiteout `st` at `name` (relative).
    fn whiteout(&mut self, st: &libc::stat, name: &Path) -> std::io::Result<()> {
        let file = name.file_name().unwrap_or_default();
        let mut wh = std::ffi::OsString::from(WHITEOUT_PREFIX);
        wh.push(file);
        let path = name.parent().unwrap_or(Path::new("")).join(wh);
        self.stats.whiteouts += 1;
        self.marker(st, 0o600, st.st_mtime, &path)
    }

    /// One object (not what is below a directory): `fd` an `O_PATH` fd of it, `st` its stat,
    /// `name` its path in the layer (relative).
    fn object(&mut self, fd: BorrowedFd<'_>, st: &libc::stat, name: &Path) -> std::io::Result<()> {
        match st.st_mode & libc::S_IFMT {
            libc::S_IFDIR => {
                self.xattrs(fd, name)?;
                let mut h = self.header(st, EntryType::Directory);
                self.stats.entries += 1;
                self.out.append_data(&mut h, name, std::io::empty())
            }
            libc::S_IFREG => {
                if st.st_nlink > 1 {
                    let id = safefs::identity(st);
                    if let Some(first) = self.links.get(&id).cloned() {
                        let mut h = self.header(st, EntryType::Link);
                        self.stats.entries += 1;
                        self.stats.hard_links += 1;
                        return self.out.append_link(&mut h, name, first);
                    }
                    self.links.insert(id, name.to_path_buf());
                }
                // Reopen exactly the object that was looked at, through the host's /proc.
                let f = OwnedFd::from(std::fs::File::open(format!(
                    "/proc/self/fd/{}",
                    fd.as_raw_fd()
                ))?);
                let fst = diff::fstat(f.as_fd())?;
                if safefs::identity(&fst) != safefs::identity(st)
                    || fst.st_mode & libc::S_IFMT != libc::S_IFREG
                {
                    return Err(std::io::Error::other(format!(
                        "/{}: changed while it was read",
                        name.display()
                    )));
                }
                self.xattrs(f.as_fd(), name)?;
                let size = fst.st_size.max(0) as u64;
                let mut h = self.header(&fst, EntryType::Regular);
                h.set_size(size);
                // Exactly `size` bytes whatever the file does meanwhile (a running container
                // committed with --pause=false), so the stream stays a valid tar.
                let data = std::fs::File::from(f)
                    .take(size)
                    .chain(std::io::repeat(0))
                    .take(size);
                self.stats.entries += 1;
                self.stats.bytes += size;
                self.out.append_data(&mut h, name, data)
            }
            libc::S_IFLNK => {
                let target = nix::fcntl::readlinkat(Some(fd.as_raw_fd()), "")?;
                self.xattrs(fd, name)?;
                let mut h = self.header(st, EntryType::Symlink);
                self.stats.entries += 1;
                if target.as_bytes().len() <= 100 {
                    h.set_link_name_literal(target.as_bytes())?;
                    self.out.append_data(&mut h, name, std::io::empty())
                } else {
                    self.out.append_link(&mut h, name, target)
                }
            }
            t @ (libc::S_IFCHR | libc::S_IFBLK | libc::S_IFIFO) => {
                let kind = match t {
                    libc::S_IFCHR => EntryType::Char,
                    libc::S_IFBLK => EntryType::Block,
                    _ => EntryType::Fifo,
                };
                let mut h = self.header(st, kind);
                h.set_device_major(libc::major(st.st_rdev))?;
                h.set_device_minor(libc::minor(st.st_rdev))?;
                self.stats.entries += 1;
                self.out.append_data(&mut h, name, std::io::empty())
            }
            libc::S_IFSOCK => {
                eprintln!(
                    "dockling: warning: skipping /{} since it is a socket (tar cannot hold one)",
                    name.display()
                );
                self.stats.sockets.push(Path::new("/").join(name));
                Ok(())
            }
            _ => Ok(()),
        }
    }

    /// The whole upper directory `upper` (an fd of it) as a layer; `lower` is the image, to
    /// leave out the engine's own mount points.
    pub fn upper(&mut self, upper: BorrowedFd<'_>, lower: &Lower) -> std::io::Result<()> {
        let dir = diff::open_dir(upper)?;
        if diff::is_opaque(dir.as_fd())? {
            let st = diff::fstat(dir.as_fd())?;
            self.stats.opaque += 1;
            self.marker(&st, st.st_mode & 0o777, 0, Path::new(OPAQUE_MARKER))?;
        }
        let mut pending = Vec::new();
        self.walk(&dir, Path::new(""), lower.root(), &mut pending)
    }

    /// Write the directories waiting in `pending` (outermost first): something below them
    /// is about to be written.
    fn flush(&mut self, pending: &mut Vec<(OwnedFd, libc::stat, PathBuf)>) -> std::io::Result<()> {
        for (fd, st, name) in pending.drain(..) {
            self.object(fd.as_fd(), &st, &name)?;
        }
        Ok(())
    }

    /// One directory of the upper directory. A directory that is only there because
    /// something below it changed (the image has it, with the same mode and owner) waits in
    /// `pending` and is written only once an entry below it is: a directory that holds
    /// nothing but the engine's mount points adds nothing to the layer, as in `diff`.
    fn walk(
        &mut self,
        dir: &OwnedFd,
        at: &Path,
        lower: Option<&[OwnedFd]>,
        pending: &mut Vec<(OwnedFd, libc::stat, PathBuf)>,
    ) -> std::io::Result<()> {
        for n in diff::names(dir)? {
            let Some(fd) = diff::open_child(dir.as_fd(), &n)? else {
                continue;
            };
            let st = diff::fstat(fd.as_fd())?;
            self.stats.walked += 1;
            let name = at.join(&n);
            let abs = Path::new("/").join(&name);
            // In a layer a `.wh.` name is a deletion (or `.wh..wh..opq` an opaque marker): a
            // file the container called so would delete the image's files wherever the layer
            // is unpacked. No layer can carry it as a file.
            if n.as_bytes().starts_with(b".wh.") && !diff::is_whiteout(&st) {
                return Err(std::io::Error::other(format!(
                    "{}: a file named .wh.* cannot go into a layer (the name means a deletion \
                     there); rename or remove it in the container, then commit again",
                    abs.display()
                )));
            }
            if diff::is_whiteout(&st) {
                self.flush(pending)?;
                self.whiteout(&st, &name)?;
                continue;
            }
            let (below, below_dir) = Lower::lookup(lower, &n)?;
            if below.is_none() && diff::engine_mount_point(&abs, &st) {
                continue;
            }
            if st.st_mode & libc::S_IFMT != libc::S_IFDIR {
                self.flush(pending)?;
                self.object(fd.as_fd(), &st, &name)?;
                continue;
            }
            let d = diff::open_dir(fd.as_fd())?;
            let opaque = diff::is_opaque(d.as_fd())?;
            let same = below.is_some_and(|l| {
                l.st_mode == st.st_mode && l.st_uid == st.st_uid && l.st_gid == st.st_gid
            });
            let depth = pending.len();
            if opaque || !same {
                self.flush(pending)?;
                self.object(fd.as_fd(), &st, &name)?;
                if opaque {
                    // Before every sibling: a reader deletes what the layers below have here,
                    // then extracts what follows.
                    self.stats.opaque += 1;
                    self.marker(&st, st.st_mode & 0o777, 0, &name.join(OPAQUE_MARKER))?;
                }
            } else {
                pending.push((fd, st, name.clone()));
            }
            self.walk(&d, &name, below_dir.as_deref(), pending)?;
            // Nothing below it was written: it stays out.
            pending.truncate(depth);
        }
        Ok(())
    }

    /// The layer of a `--layers copy` container: each change of `changes` (as
    /// [`diff::tree_changes`] lists them) written from the tree `root` (an fd of it), in
    /// path order; deletions as whiteouts.
    pub fn changes(&mut self, root: BorrowedFd<'_>, changes: &[Change]) -> std::io::Result<()> {
        // In the order of the names written (a whiteout's is `.wh.<name>`), parents first.
        let written = |c: &Change| -> PathBuf {
            let rel = safefs::relative(&c.path);
            match (c.kind, rel.file_name()) {
                (Kind::Deleted, Some(n)) => {
                    let mut wh = std::ffi::OsString::from(WHITEOUT_PREFIX);
                    wh.push(n);
                    rel.with_file_name(wh)
                }
                _ => rel,
            }
        };
        let mut sorted: Vec<(PathBuf, &Change)> = changes.iter().map(|c| (written(c), c)).collect();
        sorted.sort_by(|a, b| a.0.cmp(&b.0));
        let root_dir = diff::open_dir(root)?;
        for (_, c) in sorted {
            let rel = safefs::relative(&c.path);
            if c.kind == Kind::Deleted {
                let st = diff::fstat(root_dir.as_fd())?;
                self.whiteout(&st, &rel)?;
                continue;
            }
            // Each component beneath the last, never following a symlink.
            let mut cur = safefs::openat2(
                root_dir.as_fd(),
                Path::new("."),
                libc::O_PATH | libc::O_DIRECTORY,
                0,
                diff::BENEATH,
            )?;
            let mut found = true;
            for part in rel.iter() {
                match diff::open_child(cur.as_fd(), part)? {
                    Some(fd) => cur = fd,
                    None => {
                        found = false;
                        break;
                    }
                }
            }
            if !found {
                continue; // removed meanwhile
            }
            let st = diff::fstat(cur.as_fd())?;
            self.object(cur.as_fd(), &st, &rel)?;
        }
        Ok(())
    }
}

/// `SOURCE_DATE_EPOCH` from the environment: `None` when unset or empty; an error naming it
/// when it is not a number of seconds.
pub fn source_date_epoch() -> Result<Option<i64>, String> {
    match std::env::var("SOURCE_DATE_EPOCH") {
        Ok(v) if !v.trim().is_empty() => v.trim().parse::<i64>().map(Some).map_err(|_| {
            format!(
                "SOURCE_DATE_EPOCH={v}: not a number of seconds since 1970 (unset it or give one)"
            )
        }),
        _ => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pax_records_count_their_own_length() {
        assert_eq!(pax_record("a", b"b"), b"6 a=b\n");
        let r = pax_record("SCHILY.xattr.user.k", &[b'v'; 90]);
        let len: usize = std::str::from_utf8(&r[..r.iter().position(|b| *b == b' ').unwrap()])
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(len, r.len());
    }

    fn list(tar: &[u8]) -> Vec<(String, EntryType, Option<String>)> {
        let mut a = tar::Archive::new(tar);
        a.entries()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                (
                    e.path().unwrap().display().to_string(),
                    e.header().entry_type(),
                    e.link_name().unwrap().map(|l| l.display().to_string()),
                )
            })
            .collect()
    }

    #[test]
    fn whiteouts_opaque_dirs_and_hard_links_take_their_oci_form() {
        let image = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(image.path().join("etc")).unwrap();
        std::fs::create_dir_all(image.path().join("home/old")).unwrap();
        std::fs::create_dir_all(image.path().join("srv/www")).unwrap();
        let upper = tempfile::tempdir().unwrap();
        let u = upper.path();
        std::fs::create_dir_all(u.join("etc")).unwrap();
        nix::sys::stat::mknod(
            &u.join("etc/motd"),
            nix::sys::stat::SFlag::S_IFCHR,
            nix::sys::stat::Mode::empty(),
            0,
        )
        .expect("mknod (run the unit tests as root)");
        std::fs::write(u.join("etc/a"), "x").unwrap();
        std::fs::hard_link(u.join("etc/a"), u.join("etc/b")).unwrap();
        std::fs::write(u.join("etc/hostname"), "").unwrap();
        // Copied up for nothing that stays: left out.
        std::fs::create_dir_all(u.join("srv/www")).unwrap();
        std::fs::create_dir_all(u.join("home")).unwrap();
        std::fs::write(u.join("home/-first"), "").unwrap();
        safefs::set_xattr_at(
            safefs::open_root(u).unwrap().as_fd(),
            std::ffi::OsStr::new("home"),
            "trusted.overlay.opaque",
            b"y",
        )
        .expect("set the opaque xattr (run the unit tests as root)");
        let lower = Lower::open(&[image.path().to_path_buf()]).unwrap();
        let mut w = LayerWriter::new(Vec::new(), None);
        w.upper(safefs::open_root(u).unwrap().as_fd(), &lower)
            .unwrap();
        let (tar, stats) = w.finish().unwrap();
        assert_eq!((stats.whiteouts, stats.opaque, stats.hard_links), (1, 1, 1));
        let got = list(&tar);
        let names: Vec<&str> = got.iter().map(|(n, _, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "etc",
                "etc/a",
                "etc/b",
                "etc/.wh.motd",
                "home",
                "home/.wh..wh..opq",
                "home/-first"
            ]
        );
        assert_eq!(got[2].1, EntryType::Link);
        assert_eq!(got[2].2.as_deref(), Some("etc/a"));
        // The same directory gives the same bytes.
        let mut again = LayerWriter::new(Vec::new(), None);
        again
            .upper(safefs::open_root(u).unwrap().as_fd(), &lower)
            .unwrap();
        assert_eq!(again.finish().unwrap().0, tar);
    }

    #[test]
    fn a_redirected_directory_is_refused_not_written_without_its_content() {
        let image = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(image.path().join("old")).unwrap();
        let upper = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(upper.path().join("new")).unwrap();
        safefs::set_xattr_at(
            safefs::open_root(upper.path()).unwrap().as_fd(),
            std::ffi::OsStr::new("new"),
            "trusted.overlay.redirect",
            b"/old",
        )
        .expect("set the redirect xattr (run the unit tests as root)");
        let lower = Lower::open(&[image.path().to_path_buf()]).unwrap();
        let mut w = LayerWriter::new(Vec::new(), None);
        let e = w
            .upper(safefs::open_root(upper.path()).unwrap().as_fd(), &lower)
            .and_then(|()| w.finish().map(drop))
            .unwrap_err();
        assert!(e.to_string().contains("redirect_dir=off"), "{e}");
    }

    #[test]
    fn a_file_named_like_a_whiteout_is_refused() {
        let image = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(image.path().join("etc")).unwrap();
        let upper = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(upper.path().join("etc")).unwrap();
        std::fs::write(upper.path().join("etc/.wh.passwd"), "").unwrap();
        let lower = Lower::open(&[image.path().to_path_buf()]).unwrap();
        let mut w = LayerWriter::new(Vec::new(), None);
        let e = w
            .upper(safefs::open_root(upper.path()).unwrap().as_fd(), &lower)
            .and_then(|()| w.finish().map(drop))
            .unwrap_err();
        assert!(
            e.to_string()
                .contains("/etc/.wh.passwd: a file named .wh.*"),
            "{e}"
        );
    }
}
