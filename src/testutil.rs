//! Test helpers shared by the crate's unit tests and the integration tests: a raw-header tar
//! builder for hostile layers, a snapshot of a host tree that sees a chmod as well as a
//! write, a bait directory standing in for the host, and a host device a container must not
//! open.
//!
//! One copy for both: the library compiles it under `#[cfg(test)]`, and `tests/common/mod.rs`
//! includes this same file with `#[path]`. So it uses nothing of the crate (`crate::` would
//! mean something else in each), only std, libc, nix, tar and tempfile.
// `pub` for the integration tests, which re-export it; the library itself uses it only
// in its own tests.
#![allow(dead_code, unreachable_pub)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// One entry of a hand-made layer tar. Names and link targets are written raw into the
/// header (the tar crate's builder refuses `..` and absolute names, which are the point);
/// owner 0:0, mtime 1 700 000 000.
pub enum E<'a> {
    /// A directory and its mode.
    Dir(&'a str, u32),
    /// A regular file, its content and its mode.
    File(&'a str, &'a str, u32),
    /// A symlink and its target.
    Sym(&'a str, &'a str),
    /// A hard link and the entry it links to.
    Hard(&'a str, &'a str),
    /// A device node (`tar::EntryType::Char` or `Block`) with its major and minor, mode 0666.
    Dev(&'a str, tar::EntryType, u32, u32),
    /// A FIFO.
    Fifo(&'a str),
}

/// A ustar header for `name` with the raw bytes of `name` and `link` (at most 100 each).
pub fn raw_header(
    name: &str,
    kind: tar::EntryType,
    mode: u32,
    size: u64,
    link: Option<&str>,
) -> tar::Header {
    let mut h = tar::Header::new_ustar();
    {
        let old = h.as_old_mut();
        assert!(name.len() <= 100, "name too long for a raw header: {name}");
        old.name[..name.len()].copy_from_slice(name.as_bytes());
        if let Some(l) = link {
            assert!(l.len() <= 100, "link too long for a raw header: {l}");
            old.linkname[..l.len()].copy_from_slice(l.as_bytes());
        }
    }
    h.set_entry_type(kind);
    h.set_mode(mode);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(1_700_000_000);
    h.set_size(size);
    h
}

/// An uncompressed layer tar of `entries`, in order, with end-of-archive blocks.
pub fn tar_of(entries: &[E<'_>]) -> Vec<u8> {
    use tar::EntryType as T;
    let mut b = tar::Builder::new(Vec::new());
    for e in entries {
        let (mut h, data): (tar::Header, &[u8]) = match e {
            E::Dir(n, m) => (raw_header(n, T::Directory, *m, 0, None), b""),
            E::File(n, d, m) => (
                raw_header(n, T::Regular, *m, d.len() as u64, None),
                d.as_bytes(),
            ),
            E::Sym(n, t) => (raw_header(n, T::Symlink, 0o777, 0, Some(t)), b""),
            E::Hard(n, t) => (raw_header(n, T::Link, 0o644, 0, Some(t)), b""),
            E::Dev(n, kind, major, minor) => {
                let mut h = raw_header(n, *kind, 0o666, 0, None);
                h.set_device_major(*major).unwrap();
                h.set_device_minor(*minor).unwrap();
                (h, b"")
            }
            E::Fifo(n) => (raw_header(n, T::Fifo, 0o644, 0, None), b""),
        };
        h.set_cksum();
        b.append(&h, data).unwrap();
    }
    b.into_inner().unwrap()
}

/// Everything about a host tree that a hostile image could change: per path (relative to the
/// root), the file type and mode, owner, mtime, size and content (or link target). Compare two
/// of them with `assert_eq!` to prove "untouched" — names and contents alone miss a chmod.
pub fn tree_state(root: &Path) -> BTreeMap<PathBuf, String> {
    use std::os::unix::fs::MetadataExt;
    let mut out = BTreeMap::new();
    let mut todo = vec![root.to_path_buf()];
    while let Some(p) = todo.pop() {
        let Ok(md) = std::fs::symlink_metadata(&p) else {
            continue;
        };
        let what = if md.file_type().is_symlink() {
            format!("-> {}", std::fs::read_link(&p).unwrap().display())
        } else if md.is_file() {
            // Reading a FIFO or device would hang or change it: only regular files are read.
            format!("{:?}", std::fs::read(&p).unwrap_or_default())
        } else {
            String::new()
        };
        if md.is_dir() {
            for e in std::fs::read_dir(&p).unwrap().flatten() {
                todo.push(e.path());
            }
        }
        out.insert(
            p.strip_prefix(root).unwrap().to_path_buf(),
            format!(
                "mode {:o} owner {}:{} mtime {}.{} size {} rdev {} {what}",
                md.mode(),
                md.uid(),
                md.gid(),
                md.mtime(),
                md.mtime_nsec(),
                md.size(),
                md.rdev()
            ),
        );
    }
    out
}

/// Fill `dir` with bait: `file` (0600), `passwd` (0600, owned 1234:4321), `sub/` (0750) and
/// `sub/passwd` (owned 1234:4321, with a `bait` user of uid 4242 no image has), all with an
/// mtime of 1 000 000 000 — so a chmod, chown, utimes, write or new file through a hostile
/// symlink shows in [`tree_state`], and a uid of 4242 shows that the file was read.
pub fn bait_in(dir: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &Path, m: u32| {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(m)).unwrap();
    };
    std::fs::write(dir.join("file"), "host secret\n").unwrap();
    mode(&dir.join("file"), 0o600);
    std::fs::write(dir.join("passwd"), "root:x:0:0::/root:/bin/sh\n").unwrap();
    std::os::unix::fs::chown(dir.join("passwd"), Some(1234), Some(4321)).unwrap();
    mode(&dir.join("passwd"), 0o600);
    std::fs::create_dir(dir.join("sub")).unwrap();
    std::fs::write(
        dir.join("sub/passwd"),
        "root:x:0:0::/root:/bin/sh\nbait:x:4242:4242::/:/bin/sh\n",
    )
    .unwrap();
    std::os::unix::fs::chown(dir.join("sub/passwd"), Some(1234), Some(4321)).unwrap();
    mode(&dir.join("sub"), 0o750);
    let t = nix::sys::time::TimeSpec::new(1_000_000_000, 0);
    for f in ["file", "passwd", "sub/passwd", "sub", ""] {
        nix::sys::stat::utimensat(
            None,
            &dir.join(f),
            &t,
            &t,
            nix::sys::stat::UtimensatFlags::NoFollowSymlink,
        )
        .unwrap();
    }
}

/// A host directory standing in for "the host" in escape tests ([`bait_in`]).
pub fn bait_dir() -> tempfile::TempDir {
    let dir = tempfile::Builder::new()
        .prefix("dockling-bait-")
        .tempdir()
        .unwrap();
    bait_in(dir.path());
    dir
}

/// Docker's allow list for a default container's devices (its daemon's defaults and what
/// runc adds), as (major, minor; `None` = any): written out here, not taken from the code
/// under test, so a test using it checks dockling against Docker.
const DOCKER_ALLOWS: &[(u32, Option<u32>)] = &[
    (1, Some(3)),    // null
    (1, Some(5)),    // zero
    (1, Some(7)),    // full
    (1, Some(8)),    // random
    (1, Some(9)),    // urandom
    (5, Some(0)),    // tty
    (5, Some(1)),    // console
    (5, Some(2)),    // ptmx
    (136, None),     // pts/*
    (10, Some(200)), // net/tun
];

/// A character device of this host that a default container must not open: the first of a
/// few harmless ones (opening them has no side effect, unlike a watchdog) that exists, is a
/// character device, is not on Docker's allow list and that root can open here — so an
/// `EPERM` in a container can only come from the devices cgroup. (path, major, minor).
/// Panics, naming what it looked for, on a host that has none.
pub fn host_char_device() -> (&'static str, u32, u32) {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    const CANDIDATES: &[&str] = &["/dev/kvm", "/dev/hwrng", "/dev/loop-control", "/dev/fuse"];
    for path in CANDIDATES {
        let Ok(md) = std::fs::metadata(path) else {
            continue;
        };
        let (major, minor) = (libc::major(md.rdev()), libc::minor(md.rdev()));
        let allowed = DOCKER_ALLOWS
            .iter()
            .any(|&(ma, mi)| ma == major && mi.is_none_or(|mi| mi == minor));
        if md.file_type().is_char_device() && !allowed && std::fs::File::open(path).is_ok() {
            return (path, major, minor);
        }
    }
    panic!(
        "these tests need a host character device outside Docker's allow list that root can open: one of {CANDIDATES:?}"
    );
}
