//! `--layers erofs`: a layer's tar, kept whole, made mountable by an EROFS index.
//!
//! Unpacking a layer creates one inode on the host's disk per file (≈ 0.4 ms of kernel time
//! each here, so a 10,000-file image spends seconds there). This backend creates none: the
//! layer's uncompressed tar is written once into `layer.erofs`, and an EROFS index (superblock,
//! inodes, directories: the metadata only, as erofs-utils' `mkfs.erofs --tar=i` and
//! containerd's EROFS snapshotter write it) is put around it whose file inodes point straight
//! at their data *inside the tar*. Tar data starts on 512-byte boundaries, so the image uses
//! 512-byte blocks and every regular file is one run of blocks in the tar (`FLAT_PLAIN`). The
//! kernel (Linux ≥ 6.12) mounts such a file directly, without a loop device, and overlayfs
//! stacks the mounts as its lower directories.
//!
//! The file, in order (Documentation/filesystems/erofs.rst):
//! ```text
//! 0      1024   1152       4096                      4096+tar           end
//! | pad  | super |  pad     | the layer's tar, as is | inodes | dirs, symlinks |
//! ```
//! The tar is never parsed into the host file system: [`Index::read`] reads its headers into a tree
//! in memory, applying the same rules as [`super::unpack`] (names made relative, `..` never
//! above the root, the layer's own symlinks followed inside it for parents, hard links only to
//! entries of the layer, only `security.*`/`user.*` xattrs), and turns whiteouts into
//! overlayfs's forms inside the image: `.wh.name` → a 0/0 character device, `.wh..wh..opq` →
//! `trusted.overlay.opaque=y` on the directory. A hostile tar can at worst describe a strange
//! tree inside its own image; the mount is read-only, `nodev` and `nosuid` on the host.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::fs::File;
use std::io::{BufReader, Read};
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::FileExt;
use std::path::{Component, Path, PathBuf};

use nix::mount::MsFlags;

use tar::EntryType;

use crate::error::{Error, Result};
use crate::sys::Sys;

/// Where the tar starts in `layer.erofs`: after the superblock's block, page-aligned.
pub const TAR_OFFSET: u64 = 4096;
/// `EROFS_SUPER_MAGIC_V1`, also what statfs(2) reports for a mounted EROFS.
pub const MAGIC: u32 = 0xE0F5_E1E2;
const BLOCK: u64 = 512;
const BLKSZBITS: u8 = 9;
const SUPER_OFFSET: u64 = 1024;
/// An extended inode (64 bytes: 32-bit uid/gid, 64-bit size, its own mtime).
const INODE_SIZE: u64 = 64;
const DIRENT_SIZE: usize = 12;
/// `i_format`: extended inode (bit 0), data layout `FLAT_PLAIN` (bits 1-3 = 0).
const FORMAT_EXTENDED_FLAT_PLAIN: u16 = 1;
/// The longest name EROFS stores.
const NAME_MAX: usize = 255;
/// The longest path an entry may have (the kernel's PATH_MAX, which unpacking meets).
const PATH_MAX: usize = 4096;
/// Files and directories one layer's index may hold, those its entries name and those their
/// paths make on the way: a bound on the memory a hostile tar can ask for (each path may make
/// up to PATH_MAX / 2 directories).
const MAX_NODES: usize = 2_000_000;

/// A name a directory entry can hold: 1 to 255 bytes, no NUL, no `/`.
fn check_name(name: &[u8]) -> std::result::Result<(), String> {
    if name.len() > NAME_MAX {
        return Err(format!("a name longer than {NAME_MAX} bytes"));
    }
    if name.contains(&0) || name.contains(&b'/') {
        return Err("a NUL or / inside a name".into());
    }
    Ok(())
}

/// What [`build`] (or [`Index::write`]) made.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct BuildStats {
    /// Inodes in the image (files, directories, links, devices, whiteouts).
    pub inodes: u64,
    /// Bytes of the index written after the tar.
    pub index_bytes: u64,
    /// The layer's size as Docker counts it (what an unpacked layer's marker holds): the
    /// `lstat` size of every non-directory, each inode once.
    pub content_size: u64,
}

#[derive(Debug, Clone)]
enum Kind {
    Dir(BTreeMap<Vec<u8>, usize>),
    /// Data in the tar: its offset in `layer.erofs` and its length.
    File {
        offset: u64,
        size: u64,
    },
    Symlink(Vec<u8>),
    /// Character, block device, fifo: `S_IF*` and the device number.
    Special {
        ty: u32,
        rdev: u32,
    },
}

#[derive(Debug, Clone)]
struct Node {
    kind: Kind,
    mode: u32,
    uid: u32,
    gid: u32,
    mtime: u64,
    nlink: u32,
    /// (name index, name without its prefix, value).
    xattrs: Vec<(u8, Vec<u8>, Vec<u8>)>,
}

impl Node {
    fn dir(mode: u32) -> Node {
        Node {
            kind: Kind::Dir(BTreeMap::new()),
            mode,
            uid: 0,
            gid: 0,
            mtime: 0,
            nlink: 1,
            xattrs: Vec::new(),
        }
    }
    fn children(&self) -> Option<&BTreeMap<Vec<u8>, usize>> {
        match &self.kind {
            Kind::Dir(c) => Some(c),
            _ => None,
        }
    }
}

/// The layer as a tree of inodes; 0 is the root.
struct Tree {
    nodes: Vec<Node>,
}

/// An error naming the layer and the entry.
fn bad(layer: &str, entry: &Path, what: impl std::fmt::Display) -> Error {
    Error::Corrupt(format!("layer {layer}: entry {}: {what}", entry.display()))
}

impl Tree {
    fn child(&self, dir: usize, name: &[u8]) -> Option<usize> {
        self.nodes[dir].children()?.get(name).copied()
    }

    fn link(&mut self, dir: usize, name: &[u8], node: usize) {
        let old = match &mut self.nodes[dir].kind {
            Kind::Dir(c) => c.insert(name.to_vec(), node),
            _ => unreachable!("linked into a directory only"),
        };
        self.nodes[node].nlink += 1;
        if let Some(old) = old {
            self.nodes[old].nlink -= 1;
        }
    }

    fn add(&mut self, node: Node) -> usize {
        self.nodes.push(Node { nlink: 0, ..node });
        self.nodes.len() - 1
    }

    /// The directory `path` (relative, normal components) names inside the layer, following
    /// the layer's own symlinks as the container will (inside the root: `..` stops there, an
    /// absolute target starts there), making missing directories (0755, as the unpack does).
    fn dir_in_root(&mut self, path: &Path) -> std::result::Result<usize, String> {
        let mut stack = vec![0usize];
        let mut todo: Vec<Vec<u8>> = path
            .components()
            .rev()
            .filter_map(|c| match c {
                Component::Normal(n) => Some(n.as_bytes().to_vec()),
                _ => None,
            })
            .collect();
        let mut links = 0;
        while let Some(name) = todo.pop() {
            let here = *stack.last().expect("the root stays");
            if name == b"." || name.is_empty() {
                continue;
            }
            // What unpacking's kernel calls refuse (ENAMETOOLONG, a name cut at a NUL) is
            // refused here too: a longer name could not be written as a directory entry.
            check_name(&name)?;
            if name == b".." {
                if stack.len() > 1 {
                    stack.pop();
                }
                continue;
            }
            match self.child(here, &name) {
                None => {
                    if self.nodes.len() >= MAX_NODES {
                        return Err(format!(
                            "more than {MAX_NODES} files and directories in one layer"
                        ));
                    }
                    let d = self.add(Node::dir(0o755));
                    self.link(here, &name, d);
                    stack.push(d);
                }
                Some(n) => match &self.nodes[n].kind {
                    Kind::Dir(_) => stack.push(n),
                    Kind::Symlink(target) => {
                        links += 1;
                        if links > 40 {
                            return Err("too many levels of symbolic links".into());
                        }
                        let target = target.clone();
                        if target.first() == Some(&b'/') {
                            stack.truncate(1);
                        }
                        for part in target.split(|b| *b == b'/').rev() {
                            todo.push(part.to_vec());
                        }
                    }
                    _ => return Err("not a directory".into()),
                },
            }
        }
        Ok(*stack.last().expect("the root stays"))
    }
}

/// Read the tar at `TAR_OFFSET..TAR_OFFSET+tar_len` of `image` and append the EROFS index
/// after it, then the superblock: `image` becomes a mountable EROFS. `layer` names it in
/// errors; `max_entries` is `max-layer-entries`. (A pull does not read the tar back: it reads
/// the headers as the tar streams in, [`Index::read`], and calls [`Index::write`].)
pub fn build(image: &File, tar_len: u64, layer: &str, max_entries: u64) -> Result<BuildStats> {
    let region = BufReader::with_capacity(
        1 << 16,
        Region {
            f: image,
            pos: 0,
            len: tar_len,
        },
    );
    Index::read(region, layer, max_entries)?.write(image, tar_len, layer)
}

/// The tar region of `image`, as a reader.
struct Region<'a> {
    f: &'a File,
    pos: u64,
    len: u64,
}

impl Read for Region<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let left = self.len.saturating_sub(self.pos);
        let n = (buf.len() as u64).min(left) as usize;
        if n == 0 {
            return Ok(0);
        }
        let got = self.f.read_at(&mut buf[..n], TAR_OFFSET + self.pos)?;
        self.pos += got as u64;
        Ok(got)
    }
}

/// A layer's tree as its tar's headers describe it, not yet written: read from the tar as it
/// streams past (every byte of it read once, in order: a pull writes the same bytes into
/// `layer.erofs` on the way, so nothing is read back), then written after the tar.
pub struct Index {
    tree: Tree,
    /// Where the last regular file's data ends in the tar: the tar must reach it.
    data_end: u64,
}

impl Index {
    /// Read the tar entries of `tar` (the uncompressed layer, from its first byte) into an
    /// index, by the unpack's rules; stops at the tar's end-of-archive blocks, so what follows
    /// them is the caller's to read (and hash).
    pub fn read<R: Read>(tar: R, layer: &str, max_entries: u64) -> Result<Index> {
        let mut tree = Tree {
            nodes: vec![Node {
                nlink: 2,
                ..Node::dir(0o755)
            }],
        };
        let mut archive = tar::Archive::new(tar);
        let broken = |e: std::io::Error| {
            Error::Corrupt(format!(
                "layer {layer}: not a valid tar stream ({e}): the layer is corrupt"
            ))
        };
        let mut seen = 0u64;
        let mut data_end = 0u64;
        for entry in archive.entries().map_err(broken)? {
            let mut entry = entry.map_err(broken)?;
            seen += 1;
            if seen > max_entries {
                return Err(Error::Corrupt(format!(
                    "layer {layer}: refused: it has more than max-layer-entries ({max_entries}) entries, which looks like a decompression bomb: raise max-layer-entries in the config file if you trust this image"
                )));
            }
            let raw = entry.path().map_err(broken)?.into_owned();
            if let Some(end) = add_entry(&mut tree, &mut entry, &raw, layer)? {
                data_end = data_end.max(end);
            }
        }
        Ok(Index { tree, data_end })
    }

    /// Write the index after the tar (`tar_len` bytes at [`TAR_OFFSET`] of `image`), then the
    /// superblock. Refused if a file's data would lie past the tar's end.
    pub fn write(self, image: &File, tar_len: u64, layer: &str) -> Result<BuildStats> {
        if self.data_end > tar_len {
            return Err(Error::Corrupt(format!(
                "layer {layer}: the layer ends inside an entry's data (truncated download or corrupt layer)"
            )));
        }
        let tree = self.tree;
        let meta_start = (TAR_OFFSET + tar_len).div_ceil(BLOCK) * BLOCK;
        let (bytes, root_nid, content_size) = layout(&tree, meta_start);
        image
            .write_all_at(&bytes, meta_start)
            .map_err(Error::io("write", Path::new(layer)))?;
        let end = meta_start + bytes.len() as u64;
        let sb = superblock(root_nid, tree.nodes.len() as u64, meta_start, end);
        image
            .write_all_at(&sb, SUPER_OFFSET)
            .map_err(Error::io("write", Path::new(layer)))?;
        Ok(BuildStats {
            inodes: tree.nodes.len() as u64,
            index_bytes: bytes.len() as u64,
            content_size,
        })
    }
}

fn add_entry<R: Read>(
    tree: &mut Tree,
    entry: &mut tar::Entry<'_, R>,
    raw: &Path,
    layer: &str,
) -> Result<Option<u64>> {
    let bad = |what: &dyn std::fmt::Display| bad(layer, raw, what);
    let path = crate::sys::fs::relative(raw);
    let kind = entry.header().entry_type();
    if kind == EntryType::XGlobalHeader {
        return Ok(None);
    }
    let header = entry.header().clone();
    // The unpack's reading of the fields, so both backends accept and refuse the same tars.
    let super::unpack::HeaderMeta {
        mode,
        uid,
        gid,
        mtime,
    } = super::unpack::header_meta(&header).map_err(|e| bad(&e))?;
    let meta = Node {
        kind: Kind::Dir(BTreeMap::new()),
        mode,
        uid,
        gid,
        mtime,
        nlink: 0,
        xattrs: Vec::new(),
    };
    let Some(name) = path.file_name().map(|n| n.as_bytes().to_vec()) else {
        // The layer's root itself (`./`): its owner, mode and time, as unpacking keeps them.
        if kind == EntryType::Directory {
            let r = &mut tree.nodes[0];
            (r.mode, r.uid, r.gid, r.mtime) = (mode, uid, gid, mtime);
        }
        return Ok(None);
    };
    if raw.as_os_str().len() > PATH_MAX {
        return Err(bad(&format!("a path longer than {PATH_MAX} bytes")));
    }
    check_name(&name).map_err(|e| bad(&e))?;
    let parent = tree
        .dir_in_root(path.parent().unwrap_or(Path::new("")))
        .map_err(|e| bad(&format!("parent directory: {e}")))?;

    if let Some(hidden) = name.strip_prefix(b".wh.") {
        if hidden == b".wh..opq" {
            tree.nodes[parent]
                .xattrs
                .push((4, b"overlay.opaque".to_vec(), b"y".to_vec()));
            return Ok(None);
        }
        if hidden.starts_with(b".wh.") {
            return Ok(None);
        }
        if hidden.is_empty() || hidden == b"." || hidden == b".." {
            return Err(bad(&format!(
                "a whiteout of {:?} names no file (it would hide its own directory): the layer is corrupt or hostile",
                OsStr::from_bytes(hidden)
            )));
        }
        // Whiteouts hide only lower layers: a file of this layer of that name stays.
        if tree.child(parent, hidden).is_none() {
            let w = tree.add(Node {
                kind: Kind::Special {
                    ty: libc::S_IFCHR,
                    rdev: 0,
                },
                mode: 0,
                ..meta
            });
            tree.link(parent, hidden, w);
        }
        return Ok(None);
    }
    let mut xattrs = Vec::new();
    if let Ok(Some(exts)) = entry.pax_extensions() {
        for ext in exts {
            let ext = ext.map_err(|e| bad(&format!("bad PAX header: {e}")))?;
            let Ok(key) = ext.key() else { continue };
            if key.starts_with("GNU.sparse.") {
                return Err(bad(
                    &"PAX sparse files are not supported: repack the layer without --sparse",
                ));
            }
            if kind != EntryType::Regular && kind != EntryType::Continuous {
                continue;
            }
            // Only what an image may carry (file capabilities, user.*), never trusted.*.
            let Some(key) = key.strip_prefix("SCHILY.xattr.") else {
                continue;
            };
            let (index, rest) = if let Some(r) = key.strip_prefix("security.") {
                (6, r)
            } else if let Some(r) = key.strip_prefix("user.") {
                (1, r)
            } else {
                continue;
            };
            if rest.is_empty() || rest.len() > 255 || ext.value_bytes().len() > 65535 {
                return Err(bad(&format!("xattr {key} is too long")));
            }
            xattrs.push((index, rest.as_bytes().to_vec(), ext.value_bytes().to_vec()));
        }
    }
    match kind {
        EntryType::Directory => match tree.child(parent, &name) {
            Some(d) if tree.nodes[d].children().is_some() => {
                let n = &mut tree.nodes[d];
                (n.mode, n.uid, n.gid, n.mtime) = (mode, uid, gid, mtime);
            }
            _ => {
                let d = tree.add(meta);
                tree.link(parent, &name, d);
            }
        },
        EntryType::Regular | EntryType::Continuous => {
            let offset = entry.raw_file_position();
            let size = entry.size();
            let Some(end) = offset.checked_add(size) else {
                return Err(bad(&"the layer ends inside this entry's data (truncated download or corrupt layer)"));
            };
            let f = tree.add(Node {
                kind: Kind::File {
                    offset: TAR_OFFSET + offset,
                    size,
                },
                xattrs,
                ..meta
            });
            tree.link(parent, &name, f);
            return Ok(Some(end));
        }
        EntryType::GNUSparse => {
            return Err(bad(&"sparse files cannot be mounted from the tar (their data is not one run): use --layers overlay for this image"));
        }
        EntryType::Symlink => {
            let target = entry
                .link_name_bytes()
                .ok_or_else(|| bad(&"symlink without a target"))?;
            if target.is_empty() || target.len() > 4095 {
                return Err(bad(&"bad symlink target length"));
            }
            let s = tree.add(Node {
                kind: Kind::Symlink(target.to_vec()),
                mode: 0o777,
                ..meta
            });
            tree.link(parent, &name, s);
        }
        EntryType::Link => {
            let target = entry
                .link_name()
                .map_err(|e| bad(&e))?
                .ok_or_else(|| bad(&"hard link without a target"))?;
            let target = crate::sys::fs::relative(&target);
            let Some(tname) = target.file_name().map(|n| n.as_bytes().to_vec()) else {
                return Err(bad(&"hard link to the layer's root"));
            };
            let tdir = tree
                .dir_in_root(target.parent().unwrap_or(Path::new("")))
                .map_err(|e| bad(&format!("hard link target {}: {e}", target.display())))?;
            let t = tree.child(tdir, &tname).ok_or_else(|| {
                bad(&format!(
                    "hard link target {}: no such file in the layer",
                    target.display()
                ))
            })?;
            if tree.nodes[t].children().is_some() {
                return Err(bad(&format!("hard link to directory {}", target.display())));
            }
            tree.link(parent, &name, t);
        }
        EntryType::Char | EntryType::Block | EntryType::Fifo => {
            let (major, minor) = if kind == EntryType::Fifo {
                (0, 0)
            } else {
                super::unpack::device_numbers(&header).map_err(|e| bad(&e))?
            };
            let ty = match kind {
                EntryType::Char => libc::S_IFCHR,
                EntryType::Block => libc::S_IFBLK,
                _ => libc::S_IFIFO,
            };
            // The kernel's new_encode_dev(): what EROFS stores.
            let rdev = (minor & 0xff) | (major << 8) | ((minor & !0xff) << 12);
            let s = tree.add(Node {
                kind: Kind::Special { ty, rdev },
                ..meta
            });
            tree.link(parent, &name, s);
        }
        other => return Err(bad(&super::unpack::unsupported(other))),
    }
    Ok(None)
}

/// EROFS file types in directory entries.
fn file_type(n: &Node) -> u8 {
    match &n.kind {
        Kind::File { .. } => 1,
        Kind::Dir(_) => 2,
        Kind::Symlink(_) => 7,
        Kind::Special { ty, .. } => match *ty {
            libc::S_IFCHR => 3,
            libc::S_IFBLK => 4,
            _ => 5,
        },
    }
}

fn xattr_size(n: &Node) -> u64 {
    if n.xattrs.is_empty() {
        return 0;
    }
    12 + n
        .xattrs
        .iter()
        .map(|(_, k, v)| (4 + k.len() + v.len()).div_ceil(4) as u64 * 4)
        .sum::<u64>()
}

/// One directory's blocks: its entries (`.` and `..` included) sorted by name, as many as
/// fit in a block, each block dirents first then their names.
fn dir_blocks(entries: &[(Vec<u8>, u64, u8)]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < entries.len() {
        let mut used = 0;
        let mut j = i;
        while j < entries.len() && used + DIRENT_SIZE + entries[j].0.len() <= BLOCK as usize {
            used += DIRENT_SIZE + entries[j].0.len();
            j += 1;
        }
        // Names are checked to fit (check_name) before they get here: a name that did not
        // would otherwise add empty blocks forever.
        assert!(j > i, "a directory entry larger than a block");
        let block = &entries[i..j];
        let mut b = vec![0u8; DIRENT_SIZE * block.len()];
        let mut nameoff = b.len();
        for (k, (name, nid, ft)) in block.iter().enumerate() {
            let d = &mut b[k * DIRENT_SIZE..(k + 1) * DIRENT_SIZE];
            d[0..8].copy_from_slice(&nid.to_le_bytes());
            d[8..10].copy_from_slice(&(nameoff as u16).to_le_bytes());
            d[10] = *ft;
            nameoff += name.len();
        }
        for (name, _, _) in block {
            b.extend_from_slice(name);
        }
        if j < entries.len() {
            b.resize(BLOCK as usize, 0);
        }
        out.extend_from_slice(&b);
        i = j;
    }
    out
}

/// The index: inodes from `meta_start` (nid = offset / 32 from there), then directory and
/// symlink blocks. Returns its bytes, the root's nid and Docker's size of the layer.
fn layout(tree: &Tree, meta_start: u64) -> (Vec<u8>, u16, u64) {
    // Only nodes still reachable get an inode (a replaced entry leaves an orphan).
    let mut order = Vec::new();
    let mut reached = vec![false; tree.nodes.len()];
    let mut todo = vec![0usize];
    reached[0] = true;
    while let Some(n) = todo.pop() {
        order.push(n);
        if let Some(c) = tree.nodes[n].children() {
            for &k in c.values().rev() {
                if !reached[k] {
                    reached[k] = true;
                    todo.push(k);
                }
            }
        }
    }
    // Inode positions. nid 0 would be inode number 0, which readdir(3) may skip: start at 1.
    let mut nid = vec![0u64; tree.nodes.len()];
    let mut pos = 32u64;
    for &n in &order {
        if pos % BLOCK + INODE_SIZE > BLOCK {
            pos = pos.div_ceil(BLOCK) * BLOCK;
        }
        nid[n] = pos / 32;
        pos += (INODE_SIZE + xattr_size(&tree.nodes[n])).div_ceil(32) * 32;
    }
    let inodes_end = pos.div_ceil(BLOCK) * BLOCK;
    // Data blocks of directories and symlinks, after the inodes.
    let mut data: Vec<u8> = Vec::new();
    let mut data_of = vec![(0u64, 0u64); tree.nodes.len()];
    let mut parent = vec![0usize; tree.nodes.len()];
    for &n in &order {
        if let Some(c) = tree.nodes[n].children() {
            for &k in c.values() {
                if tree.nodes[k].children().is_some() {
                    parent[k] = n;
                }
            }
        }
    }
    for &n in &order {
        let bytes = match &tree.nodes[n].kind {
            Kind::Dir(c) => {
                let mut entries: Vec<(Vec<u8>, u64, u8)> = c
                    .iter()
                    .map(|(name, &k)| (name.clone(), nid[k], file_type(&tree.nodes[k])))
                    .collect();
                entries.push((b".".to_vec(), nid[n], 2));
                entries.push((b"..".to_vec(), nid[parent[n]], 2));
                entries.sort_by(|a, b| a.0.cmp(&b.0));
                dir_blocks(&entries)
            }
            Kind::Symlink(t) => t.clone(),
            _ => continue,
        };
        let at = meta_start + inodes_end + data.len() as u64;
        data_of[n] = (at / BLOCK, bytes.len() as u64);
        data.extend_from_slice(&bytes);
        data.resize(data.len().div_ceil(BLOCK as usize) * BLOCK as usize, 0);
    }
    let mut out = vec![0u8; inodes_end as usize];
    for &n in &order {
        let node = &tree.nodes[n];
        // A directory's links: its name (or the root's `..`), its `.`, its subdirectories' `..`.
        let nlink = match node.children() {
            Some(c) => {
                2 + c
                    .values()
                    .filter(|&&k| tree.nodes[k].children().is_some())
                    .count() as u32
            }
            None => node.nlink.max(1),
        };
        let (ty, size, iu) = match &node.kind {
            Kind::Dir(_) => (libc::S_IFDIR, data_of[n].1, data_of[n].0 as u32),
            Kind::Symlink(_) => (libc::S_IFLNK, data_of[n].1, data_of[n].0 as u32),
            Kind::File { offset, size } => (libc::S_IFREG, *size, (offset / BLOCK) as u32),
            Kind::Special { ty, rdev } => (*ty, 0, *rdev),
        };
        let at = (nid[n] * 32) as usize;
        let i = &mut out[at..at + INODE_SIZE as usize];
        let xsize = xattr_size(node);
        let icount: u16 = if xsize == 0 {
            0
        } else {
            ((xsize - 12) / 4 + 1) as u16
        };
        i[0..2].copy_from_slice(&FORMAT_EXTENDED_FLAT_PLAIN.to_le_bytes());
        i[2..4].copy_from_slice(&icount.to_le_bytes());
        i[4..6].copy_from_slice(&((ty | node.mode) as u16).to_le_bytes());
        i[8..16].copy_from_slice(&size.to_le_bytes());
        i[16..20].copy_from_slice(&iu.to_le_bytes());
        i[20..24].copy_from_slice(&(nid[n] as u32).to_le_bytes());
        i[24..28].copy_from_slice(&node.uid.to_le_bytes());
        i[28..32].copy_from_slice(&node.gid.to_le_bytes());
        i[32..40].copy_from_slice(&node.mtime.to_le_bytes());
        i[44..48].copy_from_slice(&nlink.to_le_bytes());
        if xsize > 0 {
            // The inline xattr header (no name filter, no shared xattrs), then the entries.
            let mut x = vec![0u8; 12];
            for (index, name, value) in &node.xattrs {
                x.push(name.len() as u8);
                x.push(*index);
                x.extend_from_slice(&(value.len() as u16).to_le_bytes());
                x.extend_from_slice(name);
                x.extend_from_slice(value);
                x.resize(x.len().div_ceil(4) * 4, 0);
            }
            let xat = at + INODE_SIZE as usize;
            out[xat..xat + x.len()].copy_from_slice(&x);
        }
    }
    out.extend_from_slice(&data);
    let content = order
        .iter()
        .map(|&n| match &tree.nodes[n].kind {
            Kind::File { size, .. } => *size,
            Kind::Symlink(t) => t.len() as u64,
            _ => 0,
        })
        .sum();
    (out, nid[0] as u16, content)
}

fn superblock(root_nid: u16, inos: u64, meta_start: u64, end: u64) -> Vec<u8> {
    let mut sb = vec![0u8; 128];
    sb[0..4].copy_from_slice(&MAGIC.to_le_bytes());
    sb[12] = BLKSZBITS;
    sb[14..16].copy_from_slice(&root_nid.to_le_bytes());
    sb[16..24].copy_from_slice(&inos.to_le_bytes());
    sb[36..40].copy_from_slice(&(end.div_ceil(BLOCK) as u32).to_le_bytes());
    sb[40..44].copy_from_slice(&((meta_start / BLOCK) as u32).to_le_bytes());
    sb[64..80].copy_from_slice(b"dockling-layer\0\0");
    sb
}

/// An EROFS image of an empty layer in an unnamed temporary file in `dir` (`O_TMPFILE`: gone
/// when closed), for [`supported`] to try.
pub fn empty_image(dir: &Path) -> std::io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    let f = File::options()
        .read(true)
        .write(true)
        .mode(0o600)
        .custom_flags(libc::O_TMPFILE | libc::O_CLOEXEC)
        .open(dir)?;
    let tar = [0u8; 1024];
    f.write_all_at(&tar, TAR_OFFSET)?;
    build(&f, tar.len() as u64, "probe", 1).map_err(std::io::Error::other)?;
    Ok(f)
}

/// The image file of a layer mounted at `root` (`<root>/layers/erofs/<hex>/root`): its
/// sibling `layer.erofs`.
pub fn image_of(root: &Path) -> PathBuf {
    root.with_file_name("layer.erofs")
}

/// True when `dir` is the root of a mounted EROFS (statfs(2) says which file system holds it).
pub fn is_mounted(dir: &Path) -> bool {
    nix::sys::statfs::statfs(dir).is_ok_and(|s| s.filesystem_type().0 as u32 == MAGIC)
}

/// Mount every EROFS layer of `lowers` (mount points, bottom first) not mounted yet, each from
/// its `layer.erofs` directly: mount(2) takes the regular file as the source (file-backed
/// EROFS, Linux ≥ 6.12), named by the descriptor the engine opened (`/proc/self/fd/N`), so
/// the kernel opens exactly that file. Read-only, and `nodev`/`nosuid`: on the host the
/// image's device nodes and setuid files are inert (the container sees them through its own
/// overlay mount, which decides). The mounts stay, shared by every container of the layer,
/// until the layer is removed or the machine restarts (then the next start mounts again).
///
/// Each layer is checked and mounted under the store's lock of that layer (`oci/locks/erofs-
/// <hex>`, which writing the image and removing it take too): two starts at once would
/// otherwise both find it unmounted and stack two mounts on one mount point, and a removal
/// could unmount and delete it between the check and the mount.
pub fn mount_layers(sys: &Sys, lowers: &[PathBuf]) -> Result<usize> {
    let mut mounted = 0;
    let mut seen = std::collections::HashSet::new();
    for root in lowers {
        if !seen.insert(root) {
            continue;
        }
        if sys.is_dry_run() {
            mount_one(sys, root)?;
            mounted += 1;
            continue;
        }
        if is_mounted(root) {
            continue;
        }
        let _lock = lock_of(root)?;
        sys.tracer.note(&format!(
            "{}: checked and mounted under the store's lock of this layer (flock of oci/locks/erofs-<hex>, store plumbing, untraced): starts at once mount it once",
            root.display()
        ));
        // Another start may have mounted it while this one waited.
        if is_mounted(root) {
            continue;
        }
        mount_one(sys, root)?;
        mounted += 1;
    }
    Ok(mounted)
}

fn mount_one(sys: &Sys, root: &Path) -> Result<()> {
    let image = image_of(root);
    let fd = sys.open(&image, libc::O_RDONLY | libc::O_CLOEXEC)?;
    let source = PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()));
    sys.mount(
        Some(&source),
        root,
        Some("erofs"),
        MsFlags::MS_RDONLY | MsFlags::MS_NODEV | MsFlags::MS_NOSUID,
        None,
    )?;
    Ok(())
}

/// The store's lock of the layer mounted at `root` (`<store>/layers/erofs/<hex>/root`), as
/// [`crate::image::store::Store::object_lock`] names it.
pub fn lock_of(root: &Path) -> Result<crate::files::PathLock> {
    let dir = root.parent().unwrap_or(root);
    let hex = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let store = dir.ancestors().nth(3).ok_or_else(|| {
        Error::Corrupt(format!(
            "{}: not a layer's mount point in a store",
            root.display()
        ))
    })?;
    crate::image::store::Store::at(store).object_lock("erofs", &format!("sha256:{hex}"))
}

/// Whether this kernel mounts an EROFS from a regular file: `erofs` in /proc/filesystems
/// (built in, or its module loaded) or as a module to load, and Linux ≥ 6.12, where
/// file-backed mounts came, and the kernel reading an empty layer's image from a file on the
/// store's file system `root` (fsopen/fsconfig through the seam, nothing mounted; a file
/// system whose files the kernel cannot read pages of, such as tmpfs, is refused). Asked
/// every time: `system check` uses it; `run` and `pull` ask [`supported_this_boot`].
pub fn supported(sys: &Sys, root: &Path) -> std::result::Result<(), String> {
    let release = nix::sys::utsname::uname()
        .map(|u| u.release().to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut v = release
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|n| n.parse::<u32>().ok());
    let (major, minor) = (v.next().unwrap_or(0), v.next().unwrap_or(0));
    if (major, minor) < (6, 12) {
        return Err(format!(
            "Linux {release} cannot mount an EROFS from a file (that came in 6.12)"
        ));
    }
    let listed = std::fs::read_to_string("/proc/filesystems").is_ok_and(|f| {
        f.lines()
            .any(|l| l.split_whitespace().last() == Some("erofs"))
    });
    let module = Path::new("/lib/modules")
        .join(&release)
        .join("kernel/fs/erofs")
        .is_dir();
    if !listed && !module {
        return Err(format!(
            "this kernel ({release}) has no erofs file system (CONFIG_EROFS_FS)"
        ));
    }
    // The real question, asked without mounting anything: does it take a file as source?
    // The store's file system, or the nearest existing parent of a store not made yet.
    // The directory the layers' images are kept in (`<root>/layers/erofs`, which can be a
    // mount of its own), or its nearest existing parent.
    let images = root.join("layers/erofs");
    let dir = images
        .ancestors()
        .find(|d| d.is_dir())
        .unwrap_or(Path::new("/"));
    let refused = |e: &dyn std::fmt::Display| {
        format!("Linux {release} refused a file-backed EROFS on {}'s file system ({e}): it needs a disk file system (not tmpfs) and CONFIG_EROFS_FS_BACKED_BY_FILE", dir.display())
    };
    let image = empty_image(dir).map_err(|e| refused(&e))?;
    sys.tracer.note(&format!(
        "--layers erofs: does this kernel mount an EROFS from a file on {}'s file system? An empty layer's image, in an unnamed temporary file there (O_TMPFILE, fd {}), is given to it as a file system context's source; nothing is mounted",
        dir.display(),
        image.as_raw_fd()
    ));
    sys.probe_file_fs("erofs", std::os::fd::AsFd::as_fd(&image))
        .map_err(|e| refused(&e.errno))
}

/// Where a store keeps the kernel's answer of this boot to [`supported`]:
/// `<root>/layers/erofs-supported`, the boot's id (`/proc/sys/kernel/random/boot_id`, new at
/// every boot) on its first line, `ok` on its second (a no is never kept).
pub fn answer_file(root: &Path) -> PathBuf {
    root.join("layers/erofs-supported")
}

fn boot_id() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}

/// [`supported`], asked once per boot and store: the kernel, its modules' files and the
/// store's file system do not change without a reboot often enough to pay for the probe
/// (an O_TMPFILE file, an index written, a superblock read) on every `run` and `pull`. A
/// cached answer is named in the trace. `keep`: write a new answer down (not in dry runs,
/// nor before the store exists).
pub fn supported_this_boot(sys: &Sys, root: &Path, keep: bool) -> std::result::Result<(), String> {
    let file = answer_file(root);
    let boot = boot_id();
    if let (Some(boot), Ok(text)) = (&boot, std::fs::read_to_string(&file)) {
        let mut lines = text.lines();
        if lines.next() == Some(boot.as_str()) && lines.next() == Some("ok") {
            sys.tracer.note(&format!(
                "--layers erofs: this kernel mounts an EROFS from a file: asked once this boot ({})",
                file.display()
            ));
            return Ok(());
        }
    }
    let answer = supported(sys, root);
    // Only a yes is kept: a no can end before the next boot (a full disk, a module
    // installed, the store moved to another file system), and asking again costs a failed
    // call or two.
    if keep && !sys.is_dry_run() {
        match (&answer, boot) {
            (Ok(()), Some(boot)) if file.parent().is_some_and(Path::is_dir) => {
                // Only an optimisation: a store that cannot take it asks again next time.
                let _ = crate::files::write_atomic(&file, format!("{boot}\nok\n").as_bytes());
            }
            (Err(_), _) => {
                let _ = std::fs::remove_file(&file);
            }
            _ => {}
        }
    }
    answer
}

/// The layers mode a container gets when `asked`: `erofs` on a kernel that cannot mount
/// it falls back to unpacking (`overlay`), saying so on stderr. `keep`: as
/// [`supported_this_boot`]'s.
pub fn effective(
    sys: &Sys,
    asked: crate::spec::LayersMode,
    root: &Path,
    keep: bool,
) -> crate::spec::LayersMode {
    if asked != crate::spec::LayersMode::Erofs {
        return asked;
    }
    match supported_this_boot(sys, root, keep) {
        Ok(()) => asked,
        Err(why) => {
            eprintln!("dockling: note: --layers erofs: {why}: unpacking the layers instead (--layers overlay)");
            crate::spec::LayersMode::Overlay
        }
    }
}

#[cfg(test)]
mod tests;
