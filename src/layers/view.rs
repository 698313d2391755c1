//! The layer view: which layer gives which file, what each layer hides, and how many bytes
//! the image carries that nobody can see any more ("I deleted it, why is my image still big?").
//!
//! The source of truth is the layer *tar*, the blob the image's diff_id names, read entry by
//! entry with the `tar` crate and never extracted. Why not the unpacked directories: the
//! unpacker turns OCI whiteouts into overlayfs's (a 0/0 character device, an xattr for an
//! opaque directory), so the tar is what the image really says, hard links are explicit
//! entries there (no inode bookkeeping), and reading it touches no host path at all, however
//! hostile the layer: a symlink is a name and a target here, shown and never followed.
//!
//! Names are normalised lexically (`./a//b/` → `a/b`, `..` clamped at the root, as the
//! unpacker's `RESOLVE_IN_ROOT` clamps it). Layers are then applied bottom to top the way
//! overlayfs merges them: a whiteout `.wh.x` removes `x` and everything under it, an opaque
//! marker `.wh..wh..opq` removes everything under its directory that lower layers gave, any
//! other entry replaces what was at its name (a non-directory over a directory hides the whole
//! subtree).

use std::collections::{BTreeMap, HashMap};
use std::io::Read;

use sha2::{Digest as _, Sha256};

use crate::error::{Error, Result};

/// What an entry of a layer is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// A regular file with the sha256 of its content (`sha256:…`).
    File {
        /// Content digest.
        digest: String,
    },
    /// A directory.
    Dir,
    /// A symlink and its target, as written (never resolved).
    Symlink(String),
    /// A hard link to another entry of the same layer (normalised name).
    HardLink(String),
    /// A character or block device, major and minor.
    Device(bool, u32, u32),
    /// A FIFO.
    Fifo,
    /// An OCI whiteout `.wh.NAME`: NAME and everything under it is deleted.
    Whiteout,
    /// An OCI opaque marker `DIR/.wh..wh..opq`: DIR's lower content is hidden.
    Opaque,
}

/// One entry of a layer, at its normalised path (no leading `/`; the root is `""`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Path in the image, without the leading `/`. For a whiteout, the path it deletes; for an
    /// opaque marker, its directory.
    pub path: String,
    /// What it is.
    pub kind: Kind,
    /// Bytes of content (regular files only; 0 otherwise).
    pub size: u64,
    /// Permission bits.
    pub mode: u32,
    /// Owner.
    pub uid: u64,
    /// Group.
    pub gid: u64,
}

impl Entry {
    /// The bytes this entry counts for in Docker's size rule: a regular file's size, a
    /// symlink's target length (what `lstat` says of it on disk), 0 for the rest (a hard link
    /// shares its file's inode, counted once; a whiteout is a 0/0 device of size 0).
    pub fn bytes(&self) -> u64 {
        match &self.kind {
            Kind::File { .. } => self.size,
            Kind::Symlink(t) => t.len() as u64,
            _ => 0,
        }
    }
}

/// `a/./b//c/` → `a/b/c`; `..` never climbs above the root.
pub fn normalise(raw: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for p in raw.split('/') {
        match p {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    parts.join("/")
}

fn join(dir: &str, name: &str) -> String {
    if dir.is_empty() {
        name.to_string()
    } else {
        format!("{dir}/{name}")
    }
}

/// True when `path` is `dir` itself or under it.
fn within(path: &str, dir: &str) -> bool {
    dir.is_empty()
        || path == dir
        || (path.len() > dir.len() && path.starts_with(dir) && path.as_bytes()[dir.len()] == b'/')
}

/// Every entry of the uncompressed layer tar `reader`, in tar order, whiteouts decoded.
/// `max_entries` bounds the count (a hostile layer of millions of empty files); `layer`
/// names it in errors.
pub fn read_layer(reader: impl Read, layer: &str, max_entries: u64) -> Result<Vec<Entry>> {
    let bad = |what: String| Error::Corrupt(format!("layer {layer}: {what}"));
    let mut archive = tar::Archive::new(reader);
    let mut out = Vec::new();
    let entries = archive
        .entries()
        .map_err(|e| bad(format!("not a tar: {e}")))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| bad(format!("unreadable entry: {e}")))?;
        if out.len() as u64 >= max_entries {
            return Err(bad(format!(
                "more than {max_entries} entries (max-layer-entries)"
            )));
        }
        let raw = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let path = normalise(&raw);
        let h = entry.header();
        let mode = h.mode().unwrap_or(0);
        let uid = h.uid().unwrap_or(0);
        let gid = h.gid().unwrap_or(0);
        let (dir, name) = match path.rsplit_once('/') {
            Some((d, n)) => (d.to_string(), n.to_string()),
            None => (String::new(), path.clone()),
        };
        let link = || {
            entry
                .link_name_bytes()
                .map(|l| String::from_utf8_lossy(&l).into_owned())
                .unwrap_or_default()
        };
        let (path, kind) = if name == ".wh..wh..opq" {
            (dir, Kind::Opaque)
        } else if let Some(hidden) = name.strip_prefix(".wh.") {
            (join(&dir, hidden), Kind::Whiteout)
        } else {
            let kind = match h.entry_type() {
                tar::EntryType::Regular | tar::EntryType::Continuous => {
                    let mut hash = Sha256::new();
                    let mut buf = [0u8; 64 << 10];
                    loop {
                        let n = entry
                            .read(&mut buf)
                            .map_err(|e| bad(format!("{raw}: {e}")))?;
                        if n == 0 {
                            break;
                        }
                        hash.update(&buf[..n]);
                    }
                    Kind::File {
                        digest: format!("sha256:{:x}", hash.finalize()),
                    }
                }
                tar::EntryType::Directory => Kind::Dir,
                tar::EntryType::Symlink => Kind::Symlink(link()),
                tar::EntryType::Link => Kind::HardLink(normalise(&link())),
                tar::EntryType::Char | tar::EntryType::Block => Kind::Device(
                    h.entry_type() == tar::EntryType::Char,
                    h.device_major().ok().flatten().unwrap_or(0),
                    h.device_minor().ok().flatten().unwrap_or(0),
                ),
                tar::EntryType::Fifo => Kind::Fifo,
                // PAX/GNU extension headers are consumed by the tar crate; anything else
                // the unpacker refuses, so no image that runs has it: skip it here.
                _ => continue,
            };
            (path, kind)
        };
        let size = if matches!(kind, Kind::File { .. }) {
            entry.size()
        } else {
            0
        };
        out.push(Entry {
            path,
            kind,
            size,
            mode,
            uid,
            gid,
        });
    }
    Ok(out)
}

// ANCHOR: docker_size
/// The size of a layer as Docker computes it (moby's overlay2 `ApplyDiff`/`DiffSize`:
/// `directory.Size` of the unpacked diff directory): the `lstat` size of every entry that is
/// not a directory, each inode once. So file contents, plus a symlink's target length, and
/// nothing for directories, hard links' second names, devices or whiteouts; tar headers and
/// padding do not count. A name written twice in one tar counts once, as it lands once on disk.
pub fn docker_size(entries: &[Entry]) -> u64 {
    let mut last: HashMap<&str, &Entry> = HashMap::new();
    for e in entries {
        if !matches!(e.kind, Kind::Whiteout | Kind::Opaque) {
            last.insert(&e.path, e);
        }
    }
    last.values().map(|e| e.bytes()).sum()
}
// ANCHOR_END: docker_size

/// What one layer did to the stack below it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LayerStats {
    /// Docker's size of the layer ([`docker_size`]).
    pub size: u64,
    /// Non-directories at names no lower layer had.
    pub added: u64,
    /// Non-directories at names a lower layer had (replaced).
    pub changed: u64,
    /// Whiteouts (`.wh.` files).
    pub whiteouts: u64,
    /// Opaque directories (`.wh..wh..opq`).
    pub opaque: u64,
    /// Bytes of lower layers this layer overwrites or deletes: still in the image, seen by
    /// nobody.
    pub wasted: u64,
}

/// The merged view of a stack: each visible path with the layer that gives it.
#[derive(Debug, Clone, Default)]
pub struct Merged {
    /// Visible path → (layer index, entry).
    pub files: BTreeMap<String, (usize, Entry)>,
    /// Visible hard links per (layer, target): a file deleted or replaced while a hard link
    /// of its layer still shows its inode wastes nothing.
    links: HashMap<(usize, String), u32>,
    /// Bytes of files gone from the view but still shown through hard links, per (layer,
    /// name): hidden when the last link goes.
    held: HashMap<(usize, String), u64>,
}

impl Merged {
    /// Remove `path` and (when `subtree`) everything under it, or only what is under it
    /// (`!self_too`); the bytes removed.
    fn remove(&mut self, dir: &str, self_too: bool) -> u64 {
        let keys: Vec<String> = self
            .files
            .range(dir.to_string()..)
            .take_while(|(k, _)| k.starts_with(dir))
            .filter(|(k, _)| within(k, dir) && (self_too || k.as_str() != dir))
            .map(|(k, _)| k.clone())
            .collect();
        let mut removed = Vec::new();
        for k in keys {
            if let Some(x) = self.files.remove(&k) {
                removed.push(x);
            }
        }
        removed.iter().map(|x| self.leaves(x)).sum()
    }

    /// The bytes hidden when `x` = (layer, entry) leaves the view: a file's own, unless a
    /// hard link of its layer still shows them (then they are held until the last link
    /// goes); for the last hard link to a file already gone, that file's.
    fn leaves(&mut self, (layer, e): &(usize, Entry)) -> u64 {
        if let Kind::HardLink(t) = &e.kind {
            let key = (*layer, t.clone());
            let n = self.links.entry(key.clone()).or_default();
            *n = n.saturating_sub(1);
            if *n == 0 {
                return self.held.remove(&key).unwrap_or(0);
            }
            return 0;
        }
        let key = (*layer, e.path.clone());
        if self.links.get(&key).is_some_and(|n| *n > 0) {
            self.held.insert(key, e.bytes());
            0
        } else {
            e.bytes()
        }
    }

    /// Put layer `index`'s `entries` on top; what it did.
    pub fn apply(&mut self, index: usize, entries: &[Entry]) -> LayerStats {
        let mut st = LayerStats {
            size: docker_size(entries),
            ..Default::default()
        };
        // Opaque markers and whiteouts act on the lower layers only, whatever their place
        // in the tar: apply them first.
        for e in entries {
            match e.kind {
                Kind::Opaque => {
                    st.opaque += 1;
                    st.wasted += self.remove(&e.path, false);
                }
                Kind::Whiteout => {
                    st.whiteouts += 1;
                    st.wasted += self.remove(&e.path, true);
                }
                _ => {}
            }
        }
        for e in entries {
            if matches!(e.kind, Kind::Opaque | Kind::Whiteout) {
                continue;
            }
            let lower = self.files.get(&e.path).cloned();
            match &lower {
                Some((i, l)) if *i < index => {
                    if e.kind != Kind::Dir {
                        st.changed += 1;
                    }
                    if l.kind == Kind::Dir && e.kind != Kind::Dir {
                        // A file over a directory hides all of it.
                        st.wasted += self.remove(&e.path, false);
                    }
                }
                Some(_) => {} // the same name twice in one layer: the last one wins
                None if e.kind != Kind::Dir => st.added += 1,
                None => {}
            }
            if let Kind::HardLink(t) = &e.kind {
                *self.links.entry((index, t.clone())).or_default() += 1;
            }
            if let Some(old) = self.files.insert(e.path.clone(), (index, e.clone())) {
                let hidden = self.leaves(&old);
                if old.0 < index {
                    st.wasted += hidden;
                }
            }
        }
        st
    }
}

/// What a layer did to one path (`image layers --path`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathEvent {
    /// The layer gives the path (first time).
    Adds(Entry),
    /// The layer replaces what a lower layer gave.
    Replaces(Entry),
    /// A whiteout deletes it (`at` is the name whited out: the path or a parent).
    WhitesOut {
        /// The name the whiteout names.
        at: String,
    },
    /// An opaque parent directory hides it.
    Opaque {
        /// The opaque directory.
        dir: String,
    },
    /// A non-directory at a parent's name hides it.
    ParentReplaced(Entry),
}

/// For each layer (bottom first), what it does to `path` (normalised), given the layers'
/// entries. Only the layers that do something are returned.
pub fn path_history(layers: &[Vec<Entry>], path: &str) -> Vec<(usize, PathEvent)> {
    let path = normalise(path);
    let mut out = Vec::new();
    let mut present = false;
    for (i, entries) in layers.iter().enumerate() {
        let mut event = None;
        for e in entries {
            match &e.kind {
                Kind::Whiteout if present && within(&path, &e.path) => {
                    event = Some(PathEvent::WhitesOut { at: e.path.clone() });
                }
                Kind::Opaque if present && within(&path, &e.path) && path != e.path => {
                    event = Some(PathEvent::Opaque {
                        dir: e.path.clone(),
                    });
                }
                _ => {}
            }
        }
        if event.is_some() {
            present = false;
        }
        for e in entries {
            if matches!(e.kind, Kind::Whiteout | Kind::Opaque) {
                continue;
            }
            if e.path == path {
                event = Some(if present {
                    PathEvent::Replaces(e.clone())
                } else {
                    PathEvent::Adds(e.clone())
                });
                present = true;
            } else if present && e.kind != Kind::Dir && within(&path, &e.path) {
                event = Some(PathEvent::ParentReplaced(e.clone()));
                present = false;
            }
        }
        if let Some(ev) = event {
            out.push((i, ev));
        }
    }
    out
}

/// One line of `image diff`: `A`, `C` or `D` and the path (with its leading `/`).
pub type Change = (char, String);

/// The parents of `path`, nearest first, down to the root (`""`).
fn ancestors(path: &str) -> impl Iterator<Item = &str> {
    let mut cur = path;
    std::iter::from_fn(move || {
        let (parent, _) = cur
            .rsplit_once('/')
            .or_else(|| (!cur.is_empty()).then_some(("", "")))?;
        cur = parent;
        Some(parent)
    })
}

/// What changed from merged view `a` to merged view `b`, as `docker diff` prints it: `A` for
/// added, `D` for deleted (only the topmost deleted name, as a whiteout would say), `C` for
/// changed (type, content digest, size, mode, owner or link target) and for every directory
/// present in both whose content changed. Sorted by path.
pub fn diff(a: &Merged, b: &Merged) -> Vec<Change> {
    let mut out: BTreeMap<String, char> = BTreeMap::new();
    let same = |x: &Entry, y: &Entry| {
        x.kind == y.kind && x.size == y.size && x.mode == y.mode && x.uid == y.uid && x.gid == y.gid
    };
    let mut touched: Vec<String> = Vec::new();
    for (p, (_, ea)) in &a.files {
        match b.files.get(p) {
            // Under a name deleted already (a parent `a` has and `b` lacks): not listed.
            None if ancestors(p)
                .any(|d| !d.is_empty() && a.files.contains_key(d) && !b.files.contains_key(d)) => {}
            None => {
                out.insert(p.clone(), 'D');
                touched.push(p.clone());
            }
            Some((_, eb)) if !same(ea, eb) => {
                out.insert(p.clone(), 'C');
                touched.push(p.clone());
            }
            _ => {}
        }
    }
    for p in b.files.keys() {
        if !a.files.contains_key(p) {
            out.insert(p.clone(), 'A');
            touched.push(p.clone());
        }
    }
    // Parents present on both sides of a change are changed too (their listing changed).
    for p in touched {
        let mut cur = p.as_str();
        while let Some((parent, _)) = cur.rsplit_once('/') {
            if a.files.contains_key(parent) && b.files.contains_key(parent) {
                out.entry(parent.to_string()).or_insert('C');
            }
            cur = parent;
        }
    }
    out.into_iter()
        .filter(|(p, _)| !p.is_empty())
        .map(|(p, c)| (c, format!("/{p}")))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{tar_of, E};

    fn entries(t: &[E<'_>]) -> Vec<Entry> {
        read_layer(&tar_of(t)[..], "test", 1000).unwrap()
    }

    #[test]
    fn docker_counts_content_not_tar_headers_204_bytes_show_as_204b() {
        // httpd's small top layer: a 204-byte file in a few directories. Its tar is
        // 5 headers + one data block + end blocks (over 3 kB); Docker says 204B.
        let body = "x".repeat(204);
        let tar = tar_of(&[
            E::Dir("usr/", 0o755),
            E::Dir("usr/local/", 0o755),
            E::Dir("usr/local/apache2/", 0o755),
            E::Dir("usr/local/apache2/htdocs/", 0o755),
            E::File("usr/local/apache2/htdocs/index.html", &body, 0o644),
        ]);
        assert!(tar.len() > 3000, "{}", tar.len());
        let e = read_layer(&tar[..], "t", 100).unwrap();
        assert_eq!(docker_size(&e), 204);
    }

    #[test]
    fn docker_size_counts_symlink_targets_and_hard_links_once_and_no_whiteouts() {
        let e = entries(&[
            E::Dir("bin", 0o755),
            E::File("bin/busybox", &"b".repeat(1000), 0o755),
            E::Hard("bin/sh", "bin/busybox"),
            E::Sym("bin/ls", "busybox"),   // 7 bytes
            E::Sym("bin/up", "../../etc"), // 9 bytes
            E::File("etc/.wh.motd", "", 0o644),
            E::File("var/.wh..wh..opq", "", 0o644),
            E::File("bin/busybox", &"b".repeat(1000), 0o755), // twice: lands once
        ]);
        assert_eq!(docker_size(&e), 1000 + 7 + 9);
    }

    #[test]
    fn whiteouts_opaque_dirs_and_replacements_count_as_wasted() {
        let big = "B".repeat(5000);
        let low = entries(&[
            E::Dir("data", 0o755),
            E::File("data/big", &big, 0o644),
            E::Dir("cache", 0o755),
            E::File("cache/a", "aaaa", 0o644),
            E::File("cache/b", "bb", 0o644),
            E::File("etc/motd", "hello", 0o644),
        ]);
        let up = entries(&[
            E::File("data/.wh.big", "", 0o644),
            E::File("cache/.wh..wh..opq", "", 0o644),
            E::File("cache/new", "n", 0o644),
            E::File("etc/motd", "bye!!!", 0o644),
            E::File("etc/added", "z", 0o644),
        ]);
        let mut m = Merged::default();
        let s0 = m.apply(0, &low);
        assert_eq!((s0.added, s0.changed, s0.wasted), (4, 0, 0));
        let s1 = m.apply(1, &up);
        assert_eq!(
            s1,
            LayerStats {
                size: 1 + 6 + 1,
                added: 2,
                changed: 1,
                whiteouts: 1,
                opaque: 1,
                wasted: 5000 + 4 + 2 + 5,
            }
        );
        assert!(!m.files.contains_key("data/big"));
        assert!(!m.files.contains_key("cache/a"));
        assert_eq!(m.files["cache/new"].0, 1);
        assert_eq!(m.files["etc/motd"].0, 1);
    }

    #[test]
    fn a_file_still_shown_through_a_hard_link_wastes_nothing() {
        let mut m = Merged::default();
        m.apply(
            0,
            &entries(&[
                E::File("keep", &"k".repeat(300), 0o644),
                E::Hard("keep2", "keep"),
                E::File("gone", &"g".repeat(50), 0o644),
            ]),
        );
        let s = m.apply(
            1,
            &entries(&[
                E::File(".wh.keep", "", 0o644),
                E::File(".wh.gone", "", 0o644),
            ]),
        );
        assert_eq!((s.whiteouts, s.wasted), (2, 50));
        // Once the last link goes too, the 300 bytes are hidden.
        let s = m.apply(2, &entries(&[E::File(".wh.keep2", "", 0o644)]));
        assert_eq!(s.wasted, 300);
    }

    #[test]
    fn path_history_says_who_gives_and_who_hides() {
        let layers = vec![
            entries(&[E::File("etc/motd", "one", 0o644)]),
            entries(&[E::File("etc/motd", "two", 0o600)]),
            entries(&[E::File("usr/x", "", 0o644)]),
            entries(&[E::File("etc/.wh.motd", "", 0o644)]),
            entries(&[E::File("etc/motd", "again", 0o644)]),
            entries(&[E::File(".wh.etc", "", 0o644)]),
        ];
        let h = path_history(&layers, "/etc/motd");
        let kinds: Vec<(usize, &str)> = h
            .iter()
            .map(|(i, e)| {
                (
                    *i,
                    match e {
                        PathEvent::Adds(_) => "adds",
                        PathEvent::Replaces(_) => "replaces",
                        PathEvent::WhitesOut { .. } => "whiteout",
                        PathEvent::Opaque { .. } => "opaque",
                        PathEvent::ParentReplaced(_) => "parent",
                    },
                )
            })
            .collect();
        assert_eq!(
            kinds,
            [
                (0, "adds"),
                (1, "replaces"),
                (3, "whiteout"),
                (4, "adds"),
                (5, "whiteout")
            ]
        );
    }

    #[test]
    fn image_diff_lists_added_changed_and_the_top_deleted_name() {
        let mut a = Merged::default();
        a.apply(
            0,
            &entries(&[
                E::Dir("etc", 0o755),
                E::File("etc/motd", "hi", 0o644),
                E::File("etc/keep", "k", 0o644),
                E::Dir("old", 0o755),
                E::File("old/f", "f", 0o644),
                E::Sym("lnk", "/a"),
                E::File("nodir/f", "x", 0o644),
            ]),
        );
        let mut b = a.clone();
        b.apply(
            1,
            &entries(&[
                E::File(".wh.old", "", 0o644),
                E::File("nodir/.wh.f", "", 0o644),
                E::File("etc/motd", "ho", 0o644), // same size, other content
                E::File("root/x", "x", 0o644),
                E::Sym("lnk", "/b"),
            ]),
        );
        let d: Vec<String> = diff(&a, &b)
            .into_iter()
            .map(|(c, p)| format!("{c} {p}"))
            .collect();
        assert_eq!(
            d,
            [
                "C /etc",
                "C /etc/motd",
                "C /lnk",
                "D /nodir/f",
                "D /old",
                "A /root/x"
            ]
        );
        assert!(diff(&a, &a).is_empty());
    }

    #[test]
    fn names_are_normalised_and_never_climb_out() {
        assert_eq!(normalise("./a//b/"), "a/b");
        assert_eq!(normalise("../../etc/passwd"), "etc/passwd");
        assert_eq!(normalise("/"), "");
    }
}
