//! The EROFS index read back by a small reader written from the on-disk format (the kernel's
//! own reading is tested end to end in tests/erofs.rs): every hostile name lands inside, the
//! whiteouts are overlayfs's, file data points into the tar.

use std::collections::BTreeMap;
use std::io::{Seek, SeekFrom, Write};

use super::*;
use crate::testutil::{tar_of, E};

/// The error of building an image from `tar` (layer "L", at most `max_entries` entries).
fn refusal(tar: &[u8], max_entries: u64) -> String {
    let mut f = tempfile::tempfile().unwrap();
    f.write_all(&[0u8; TAR_OFFSET as usize]).unwrap();
    f.write_all(tar).unwrap();
    build(&f, tar.len() as u64, "L", max_entries)
        .unwrap_err()
        .to_string()
}

/// An image built from `tar`, as bytes.
fn image(tar: &[u8]) -> Vec<u8> {
    let mut f = tempfile::tempfile().unwrap();
    f.write_all(&[0u8; TAR_OFFSET as usize]).unwrap();
    f.write_all(tar).unwrap();
    build(&f, tar.len() as u64, "test", 1000).unwrap();
    let mut out = Vec::new();
    f.seek(SeekFrom::Start(0)).unwrap();
    f.read_to_end(&mut out).unwrap();
    out
}

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes(b[at..at + 2].try_into().unwrap())
}
fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
}
fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().unwrap())
}

/// What an inode says.
#[derive(Debug)]
struct Ino {
    mode: u32,
    size: u64,
    iu: u32,
    nlink: u32,
    xattrs: Vec<(u8, Vec<u8>, Vec<u8>)>,
}

struct Reader<'a> {
    b: &'a [u8],
    meta: usize,
}

impl Reader<'_> {
    fn new(b: &[u8]) -> Reader<'_> {
        let sb = &b[SUPER_OFFSET as usize..];
        assert_eq!(u32_at(sb, 0), MAGIC);
        assert_eq!(sb[12], BLKSZBITS);
        assert_eq!(u32_at(sb, 36) as usize * 512, b.len(), "blocks");
        Reader {
            b,
            meta: u32_at(sb, 40) as usize * 512,
        }
    }
    fn root(&self) -> u64 {
        u16_at(&self.b[SUPER_OFFSET as usize..], 14) as u64
    }
    fn inode(&self, nid: u64) -> Ino {
        let at = self.meta + nid as usize * 32;
        let i = &self.b[at..at + 64];
        assert_eq!(u16_at(i, 0), 1, "extended, flat plain");
        let icount = u16_at(i, 2) as usize;
        let mut xattrs = Vec::new();
        if icount > 0 {
            let end = at + 64 + 12 + (icount - 1) * 4;
            let mut p = at + 64 + 12;
            while p < end {
                let (len, index, vlen) = (
                    self.b[p] as usize,
                    self.b[p + 1],
                    u16_at(self.b, p + 2) as usize,
                );
                let name = self.b[p + 4..p + 4 + len].to_vec();
                let value = self.b[p + 4 + len..p + 4 + len + vlen].to_vec();
                xattrs.push((index, name, value));
                p += (4 + len + vlen).div_ceil(4) * 4;
            }
        }
        Ino {
            mode: u16_at(i, 4) as u32,
            size: u64_at(i, 8),
            iu: u32_at(i, 16),
            nlink: u32_at(i, 44),
            xattrs,
        }
    }
    fn data(&self, ino: &Ino) -> &[u8] {
        let at = ino.iu as usize * 512;
        &self.b[at..at + ino.size as usize]
    }
    /// A directory's entries: name → (nid, file type), checked sorted.
    fn dir(&self, nid: u64) -> BTreeMap<Vec<u8>, (u64, u8)> {
        let ino = self.inode(nid);
        assert_eq!(ino.mode & libc::S_IFMT, libc::S_IFDIR);
        let data = self.data(&ino);
        let mut out = BTreeMap::new();
        let mut last: Vec<u8> = Vec::new();
        for block in data.chunks(512) {
            let n = u16_at(block, 8) as usize / 12;
            for k in 0..n {
                let d = &block[k * 12..];
                let start = u16_at(d, 8) as usize;
                let end = if k + 1 < n {
                    u16_at(block, (k + 1) * 12 + 8) as usize
                } else {
                    start
                        + block[start..]
                            .iter()
                            .position(|b| *b == 0)
                            .unwrap_or(block.len() - start)
                };
                let name = block[start..end].to_vec();
                assert!(name > last, "entries sorted: {name:?} after {last:?}");
                last = name.clone();
                out.insert(name, (u64_at(d, 0), d[10]));
            }
        }
        out
    }
    fn lookup(&self, path: &str) -> Option<(u64, Ino)> {
        let mut nid = self.root();
        for part in path.split('/').filter(|p| !p.is_empty()) {
            nid = self.dir(nid).get(part.as_bytes())?.0;
        }
        Some((nid, self.inode(nid)))
    }
}

#[test]
fn files_point_into_the_tar_and_directories_list_them_sorted() {
    let tar = tar_of(&[
        E::Dir("etc/", 0o755),
        E::File("etc/hostname", "hello", 0o644),
        E::Hard("etc/again", "etc/hostname"),
        E::Sym("bin", "usr/bin"),
        E::File("usr/bin/tool", "#!/bin/sh\n", 0o4755),
        E::Fifo("run/pipe"),
        E::Dev("dev/null", tar::EntryType::Char, 1, 3),
    ]);
    let b = image(&tar);
    let r = Reader::new(&b);
    assert_ne!(r.root(), 0, "inode number 0 is never used");
    // Docker's size: file contents and link targets, a hard-linked file once.
    let mut f = tempfile::tempfile().unwrap();
    f.write_all(&[0u8; TAR_OFFSET as usize]).unwrap();
    f.write_all(&tar).unwrap();
    let stats = build(&f, tar.len() as u64, "test", 1000).unwrap();
    assert_eq!(stats.content_size, 5 + 7 + 10);
    let (nid, f) = r.lookup("etc/hostname").unwrap();
    assert_eq!(r.data(&f), b"hello");
    assert_eq!(f.mode, libc::S_IFREG | 0o644);
    assert_eq!(f.nlink, 2);
    assert_eq!(
        r.lookup("etc/again").unwrap().0,
        nid,
        "a hard link is the same inode"
    );
    // The data is the tar's own bytes, not a copy: inside the tar region.
    assert!((f.iu as u64 * 512) < TAR_OFFSET + tar.len() as u64);
    let (_, l) = r.lookup("bin").unwrap();
    assert_eq!(l.mode & libc::S_IFMT, libc::S_IFLNK);
    assert_eq!(r.data(&l), b"usr/bin");
    let (_, t) = r.lookup("usr/bin/tool").unwrap();
    assert_eq!(t.mode, libc::S_IFREG | 0o4755);
    assert_eq!(
        r.lookup("run/pipe").unwrap().1.mode & libc::S_IFMT,
        libc::S_IFIFO
    );
    let (_, d) = r.lookup("dev/null").unwrap();
    assert_eq!((d.mode & libc::S_IFMT, d.iu), (libc::S_IFCHR, (1 << 8) | 3));
    let root = r.dir(r.root());
    assert_eq!(root[&b"."[..]].0, r.root());
    assert_eq!(root[&b".."[..]].0, r.root());
    assert_eq!(r.inode(r.root()).nlink, 2 + 4, "etc, usr, run, dev");
}

#[test]
fn hostile_names_land_inside_the_layer() {
    let tar = tar_of(&[
        E::File("/abs", "a", 0o644),
        E::File("../../../up", "u", 0o644),
        E::File("a/../../b", "b", 0o644),
        // A symlink out of the layer, then a file "inside" it: it lands in the layer's /etc.
        E::Sym("out", "/etc"),
        E::File("out/evil", "e", 0o644),
        E::Sym("up2", "../../.."),
        E::File("up2/evil2", "e", 0o644),
    ]);
    let b = image(&tar);
    let r = Reader::new(&b);
    for p in ["abs", "up", "b", "etc/evil", "evil2"] {
        assert!(r.lookup(p).is_some(), "{p} inside");
    }
    let names: Vec<_> = r.dir(r.root()).into_keys().collect();
    assert_eq!(
        names,
        [".", "..", "abs", "b", "etc", "evil2", "out", "up", "up2"].map(|s| s.as_bytes().to_vec())
    );
}

#[test]
fn whiteouts_become_overlayfs_forms() {
    let tar = tar_of(&[
        E::File("etc/.wh.gone", "", 0o644),
        E::File("etc/kept", "mine", 0o644),
        E::File("etc/.wh.kept", "", 0o644),
        E::Dir("opaque/", 0o755),
        E::File("opaque/.wh..wh..opq", "", 0o644),
        E::File("opaque/new", "n", 0o644),
        E::File(".wh..wh.plnk", "", 0o644),
    ]);
    let b = image(&tar);
    let r = Reader::new(&b);
    let (_, w) = r.lookup("etc/gone").unwrap();
    assert_eq!(
        (w.mode & libc::S_IFMT, w.iu),
        (libc::S_IFCHR, 0),
        "0/0 char device"
    );
    assert_eq!(
        r.data(&r.lookup("etc/kept").unwrap().1),
        b"mine",
        "this layer's file stays"
    );
    let (_, o) = r.lookup("opaque").unwrap();
    assert_eq!(
        o.xattrs,
        vec![(4, b"overlay.opaque".to_vec(), b"y".to_vec())]
    );
    assert!(r.lookup("opaque/new").is_some());
    assert!(r.lookup(".wh..wh.plnk").is_none() && r.lookup("plnk").is_none());
}

#[test]
fn bad_entries_are_refused_naming_the_entry() {
    for (tar, why) in [
        (tar_of(&[E::Hard("x", "/etc/passwd")]), "no such file"),
        (
            tar_of(&[E::Dir("d/", 0o755), E::Hard("x", "d")]),
            "directory",
        ),
        (tar_of(&[E::File(".wh..", "", 0o644)]), "names no file"),
        (
            tar_of(&[
                E::Sym("a", "b"),
                E::Sym("b", "a"),
                E::File("a/x", "", 0o644),
            ]),
            "symbolic links",
        ),
        (
            tar_of(&[E::File("f", "", 0o644), E::File("f/x", "", 0o644)]),
            "not a directory",
        ),
    ] {
        let err = refusal(&tar, 1000);
        assert!(
            err.starts_with("layer L: entry ") && err.contains(why),
            "{err}"
        );
    }
    // More entries than max-layer-entries: a bomb.
    let tar = tar_of(&[E::File("a", "", 0o644), E::File("b", "", 0o644)]);
    let err = refusal(&tar, 1);
    assert!(err.contains("max-layer-entries"), "{err}");
}

#[test]
fn a_directory_of_many_entries_spans_blocks() {
    let names: Vec<String> = (0..200)
        .map(|i| format!("d/file-with-a-long-name-{i:04}"))
        .collect();
    let entries: Vec<E<'_>> = names.iter().map(|n| E::File(n, "x", 0o644)).collect();
    let b = image(&tar_of(&entries));
    let r = Reader::new(&b);
    let (nid, d) = r.lookup("d").unwrap();
    assert!(d.size > 512 * 4, "{}", d.size);
    assert_eq!(r.dir(nid).len(), 202);
    assert!(r.lookup("d/file-with-a-long-name-0199").is_some());
}

#[test]
fn a_directory_name_too_long_for_an_entry_is_refused_not_looped_on() {
    // A 600-byte directory on the way to a file (a GNU long name): unpacking's mkdirat says
    // ENAMETOOLONG; the index once added empty blocks forever trying to fit its entry.
    for path in [
        format!("{}/f", "d".repeat(600)),
        format!("{}/f", "d".repeat(300)),
    ] {
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_size(0);
        h.set_mode(0o644);
        h.set_entry_type(tar::EntryType::Regular);
        b.append_data(&mut h, &path, &[][..]).unwrap();
        let tar = b.into_inner().unwrap();
        let err = refusal(&tar, 1000);
        assert!(err.contains("longer than 255 bytes"), "{err}");
    }
}
