//! Breakout cases in the spirit of containerd's `TestBreakouts`, written for this unpacker:
//! each hostile layer must leave the host untouched (a sentinel directory beside `dest`) and
//! either land harmlessly inside `dest` or fail with a clear error.

use super::*;
use crate::testutil::{bait_in, tar_of, tree_state, E};

struct Case {
    _tmp: tempfile::TempDir,
    dest: PathBuf,
    host: PathBuf,
    before: std::collections::BTreeMap<PathBuf, String>,
}

fn case() -> Case {
    let tmp = tempfile::tempdir().unwrap();
    let dest = tmp.path().join("layer");
    let host = tmp.path().join("host");
    std::fs::create_dir_all(&dest).unwrap();
    std::fs::create_dir_all(&host).unwrap();
    bait_in(&host);
    let before = tree_state(&host);
    Case {
        _tmp: tmp,
        dest,
        host,
        before,
    }
}

impl Case {
    fn run(&self, entries: &[E<'_>]) -> Result<UnpackStats> {
        self.run_tar(&tar_of(entries))
    }

    fn run_tar(&self, tar: &[u8]) -> Result<UnpackStats> {
        // Names like "../host/passwd" are relative to dest's parent, where `host` is.
        unpack(tar, &self.dest, "test-layer", &Limits::default())
    }

    fn host_untouched(&self) {
        assert_eq!(tree_state(&self.host), self.before, "host dir changed");
    }
}

#[test]
fn plain_layer_unpacks_with_modes_and_links() {
    let c = case();
    let s = c
        .run(&[
            E::Dir("bin/", 0o755),
            E::File("bin/busybox", "ELF", 0o644),
            E::Sym("bin/sh", "busybox"),
            E::Hard("bin/ash", "bin/busybox"),
        ])
        .unwrap();
    assert_eq!((s.dirs, s.files, s.bytes), (1, 3, 3));
    assert_eq!(
        std::fs::read_link(c.dest.join("bin/sh")).unwrap(),
        PathBuf::from("busybox")
    );
    assert_eq!(
        std::fs::read_to_string(c.dest.join("bin/ash")).unwrap(),
        "ELF"
    );
}

#[test]
fn absolute_names_land_inside() {
    let c = case();
    c.run(&[E::File("/etc/evil", "x", 0o644)]).unwrap();
    assert!(c.dest.join("etc/evil").exists());
    c.host_untouched();
}

#[test]
fn dotdot_names_are_clamped_inside() {
    let c = case();
    c.run(&[
        E::File("../host/passwd", "pwned", 0o644),
        E::File("a/../../../host/x", "pwned", 0o644),
    ])
    .unwrap();
    c.host_untouched();
    assert_eq!(
        std::fs::read_to_string(c.dest.join("host/passwd")).unwrap(),
        "pwned"
    );
}

#[test]
fn file_through_a_symlink_to_the_host_stays_inside() {
    let c = case();
    let host = c.host.display().to_string();
    c.run(&[
        E::Sym("escape", &host),
        E::File("escape/passwd", "pwned", 0o644),
    ])
    .unwrap();
    c.host_untouched();
}

#[test]
fn directory_through_a_symlink_to_root_stays_inside() {
    let c = case();
    c.run(&[
        E::Sym("root", "/"),
        E::Dir("root/etc/dockling-breakout/", 0o755),
        E::File("root/etc/dockling-breakout/x", "x", 0o644),
    ])
    .unwrap();
    assert!(
        !Path::new("/etc/dockling-breakout").exists(),
        "created on the host"
    );
    assert!(c.dest.join("etc/dockling-breakout/x").exists());
}

#[test]
fn relative_symlink_climbing_out_stays_inside() {
    let c = case();
    c.run(&[
        E::Sym("up", "../host"),
        E::File("up/passwd", "pwned", 0o644),
    ])
    .unwrap();
    c.host_untouched();
}

#[test]
fn hardlink_to_a_host_file_is_refused_or_inside() {
    let c = case();
    let outside = c.host.join("passwd").display().to_string();
    // An absolute target resolves inside the layer, where there is no such file.
    let err = c.run(&[E::Hard("pw", &outside)]).unwrap_err().to_string();
    assert!(err.contains("hard link"), "{err}");
    let err = c
        .run(&[E::Hard("pw2", "../host/passwd")])
        .unwrap_err()
        .to_string();
    assert!(err.contains("hard link"), "{err}");
    c.host_untouched();
}

#[test]
fn hardlink_through_a_symlink_dir_is_refused_or_inside() {
    let c = case();
    let host = c.host.display().to_string();
    let r = c.run(&[E::Sym("h", &host), E::Hard("pw", "h/passwd")]);
    assert!(r.is_err(), "linked a host file: {r:?}");
    c.host_untouched();
}

#[test]
fn whiteouts_become_overlay_whiteouts_and_never_reach_outside() {
    let c = case();
    c.run(&[
        E::Dir("etc/", 0o755),
        E::File("etc/.wh.motd", "", 0o644),
        E::File("../host/.wh.passwd", "", 0o644),
        E::File("opq/.wh..wh..opq", "", 0o644),
    ])
    .unwrap();
    c.host_untouched();
    use std::os::unix::fs::FileTypeExt;
    let m = std::fs::symlink_metadata(c.dest.join("etc/motd")).unwrap();
    assert!(m.file_type().is_char_device());
    use std::os::unix::fs::MetadataExt;
    assert_eq!(m.rdev(), 0);
    assert!(c.dest.join("opq").is_dir());
}

#[test]
fn later_entries_replace_earlier_ones() {
    let c = case();
    c.run(&[
        E::File("x", "one", 0o644),
        E::Dir("x/", 0o755),
        E::File("x/y", "two", 0o644),
        E::Sym("z", "x"),
        E::File("z", "three", 0o644),
    ])
    .unwrap();
    assert_eq!(std::fs::read_to_string(c.dest.join("x/y")).unwrap(), "two");
    assert_eq!(std::fs::read_to_string(c.dest.join("z")).unwrap(), "three");
    assert!(!std::fs::symlink_metadata(c.dest.join("z"))
        .unwrap()
        .file_type()
        .is_symlink());
}

#[test]
fn a_directory_swapped_for_a_symlink_between_entries_is_not_followed_out() {
    // The unpacker keeps the last parent directory open while entries share it; a later entry
    // that replaces that directory with a symlink to the host must not let the next entries
    // of the "same" parent land through it.
    let c = case();
    let host = c.host.display().to_string();
    c.run(&[
        E::Dir("d/", 0o755),
        E::File("d/one", "1", 0o644),
        E::Sym("d", &host),
        E::File("d/passwd", "pwned", 0o644),
        E::File("d/two", "2", 0o644),
    ])
    .unwrap();
    c.host_untouched();
    assert_eq!(
        std::fs::read_link(c.dest.join("d")).unwrap(),
        PathBuf::from(&host)
    );
    let inside = c.dest.join(host.trim_start_matches('/'));
    assert_eq!(
        std::fs::read_to_string(inside.join("passwd")).unwrap(),
        "pwned"
    );
    assert!(inside.join("two").exists());
}

/// Issue 8, escape 1: a directory entry `d/` (mode 04777) then a symlink `d -> <host file>`;
/// the deferred directory pass chmodded (and utimed, chowned) the host file through it.
#[test]
fn unpack_chmods_a_host_file_through_a_symlink() {
    let c = case();
    let target = c.host.join("passwd").display().to_string();
    c.run(&[E::Dir("d/", 0o4777), E::Sym("d", &target)])
        .unwrap();
    c.host_untouched();
    assert_eq!(
        std::fs::read_link(c.dest.join("d")).unwrap(),
        PathBuf::from(&target)
    );
    // The same through a directory the symlink replaces further up.
    let c = case();
    let host = c.host.display().to_string();
    c.run(&[
        E::Dir("a/", 0o700),
        E::Dir("a/passwd/", 0o4777),
        E::Sym("a", &host),
    ])
    .unwrap();
    c.host_untouched();
}

#[test]
fn directory_metadata_is_applied_to_the_directory_itself() {
    use std::os::unix::fs::MetadataExt;
    let c = case();
    c.run(&[
        E::Dir("d/", 0o1750),
        E::File("d/x", "x", 0o644),
        E::Sym("l", "d"),
        E::Dir("l/sub/", 0o700),
    ])
    .unwrap();
    let d = std::fs::symlink_metadata(c.dest.join("d")).unwrap();
    assert_eq!((d.mode() & 0o7777, d.mtime()), (0o1750, 1_700_000_000));
    let sub = std::fs::symlink_metadata(c.dest.join("d/sub")).unwrap();
    assert_eq!((sub.mode() & 0o7777, sub.mtime()), (0o700, 1_700_000_000));
}

fn pax_file(name: &str, pax: &[(&str, &[u8])], uid: u64, data: &[u8]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    b.append_pax_extensions(pax.iter().copied()).unwrap();
    let mut h = tar::Header::new_ustar();
    h.set_path(name).unwrap();
    h.set_entry_type(tar::EntryType::Regular);
    h.set_mode(0o4755);
    h.set_uid(uid);
    h.set_gid(uid);
    h.set_mtime(1_700_000_000);
    h.set_size(data.len() as u64);
    h.set_cksum();
    b.append(&h, data).unwrap();
    b.into_inner().unwrap()
}

/// Issue 8, item 9: xattrs were set before chown, which clears `security.capability`.
#[test]
fn file_capabilities_survive_the_chown() {
    use std::os::unix::fs::MetadataExt;
    let c = case();
    // struct vfs_cap_data, revision 2, effective, permitted = CAP_NET_RAW (13).
    let mut cap = Vec::new();
    for w in [0x0200_0001u32, 1 << 13, 0, 0, 0] {
        cap.extend_from_slice(&w.to_le_bytes());
    }
    let tar = pax_file(
        "bin/ping",
        &[("SCHILY.xattr.security.capability", &cap)],
        1000,
        b"ELF",
    );
    c.run_tar(&tar).unwrap();
    let p = c.dest.join("bin/ping");
    let md = std::fs::symlink_metadata(&p).unwrap();
    assert_eq!((md.uid(), md.gid()), (1000, 1000));
    assert_eq!(md.mode() & 0o7777, 0o4755, "setuid kept: mode after chown");
    assert_eq!(
        safefs::get_xattr_fd(
            std::fs::File::open(&p).unwrap().as_fd(),
            "security.capability"
        )
        .unwrap()
        .as_deref(),
        Some(&cap[..]),
        "file capability lost"
    );
}

/// Issue 8, item 9: whiteouts hide only lower layers; a file of the same layer stays,
/// whichever comes first.
#[test]
fn a_whiteout_does_not_hide_a_file_of_its_own_layer() {
    for entries in [
        [
            E::File("etc/motd", "hi", 0o644),
            E::File("etc/.wh.motd", "", 0o644),
        ],
        [
            E::File("etc/.wh.motd", "", 0o644),
            E::File("etc/motd", "hi", 0o644),
        ],
    ] {
        let c = case();
        c.run(&entries).unwrap();
        assert_eq!(
            std::fs::read_to_string(c.dest.join("etc/motd")).unwrap(),
            "hi"
        );
    }
    let c = case();
    c.run(&[E::File("d/x", "x", 0o644), E::File(".wh.d", "", 0o644)])
        .unwrap();
    assert!(
        c.dest.join("d/x").exists(),
        "a directory of this layer stays"
    );
}

/// Issue 8, item 10: `.wh..` emptied its own directory.
#[test]
fn a_whiteout_of_dot_or_dotdot_is_refused_and_removes_nothing() {
    for bad in ["d/.wh..", "d/.wh...", "d/.wh."] {
        let c = case();
        let err = c
            .run(&[E::File("d/keep", "k", 0o644), E::File(bad, "", 0o644)])
            .unwrap_err()
            .to_string();
        assert!(err.contains("layer test-layer: entry d/.wh."), "{err}");
        assert!(err.contains("names no file"), "{err}");
        assert_eq!(
            std::fs::read_to_string(c.dest.join("d/keep")).unwrap(),
            "k",
            "{bad} emptied its directory"
        );
    }
}

/// Issue 8, item 10: the parent-directory cache was never dropped. `lib -> .` makes `lib/`
/// the root; `lib/lib/` then replaces the symlink with a real directory, so `lib/file` must
/// land in that directory, not in the root the cache still held.
#[test]
fn the_parent_cache_is_dropped_when_an_entry_replaces_what_it_resolved_through() {
    let c = case();
    c.run(&[
        E::Sym("lib", "."),
        E::Dir("lib/lib/", 0o755),
        E::File("lib/file", "f", 0o644),
    ])
    .unwrap();
    assert!(c.dest.join("lib").is_dir());
    assert_eq!(
        std::fs::read_to_string(c.dest.join("lib/file")).unwrap(),
        "f"
    );
    assert!(
        !c.dest.join("file").exists(),
        "written through a stale cache"
    );
}

/// A raw header: `edit` changes its bytes, then the checksum is set.
fn raw_entry(name: &str, data: &[u8], edit: impl FnOnce(&mut tar::Header)) -> Vec<u8> {
    let mut h = tar::Header::new_ustar();
    h.set_path(name).unwrap();
    h.set_entry_type(tar::EntryType::Regular);
    h.set_mode(0o644);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(1_700_000_000);
    h.set_size(data.len() as u64);
    edit(&mut h);
    h.set_cksum();
    let mut out = h.as_bytes().to_vec();
    out.extend_from_slice(data);
    out.resize(out.len().div_ceil(512) * 512, 0);
    out
}

/// Issue 8, item 10: corrupt numeric fields became 0644 / 0 / 0.
#[test]
fn corrupt_header_fields_are_refused() {
    for field in ["mode", "uid", "gid", "mtime"] {
        let c = case();
        let tar = raw_entry("x", b"data", |h| {
            let old = h.as_old_mut();
            let f: &mut [u8] = match field {
                "mode" => &mut old.mode,
                "uid" => &mut old.uid,
                "gid" => &mut old.gid,
                _ => &mut old.mtime,
            };
            f.fill(b'z');
        });
        let err = c.run_tar(&tar).unwrap_err().to_string();
        assert!(
            err.contains("layer test-layer: entry x: bad ") && err.contains(field),
            "{field}: {err}"
        );
    }
}

/// Issue 8, item 10: GNU sparse entries were dropped without a word. They unpack with their
/// holes (as Go's archive/tar and GNU tar do), and stay sparse on disk.
#[test]
fn gnu_sparse_files_unpack_with_their_holes() {
    use std::os::unix::fs::MetadataExt;
    let real = (4u64 << 20) + 5;
    let mut h = tar::Header::new_gnu();
    h.set_path("sparse").unwrap();
    h.set_entry_type(tar::EntryType::GNUSparse);
    h.set_mode(0o644);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(1_700_000_000);
    h.set_size(5);
    {
        let gnu = h.as_gnu_mut().unwrap();
        gnu.sparse[0].set_offset(4 << 20);
        gnu.sparse[0].set_length(5);
        gnu.set_real_size(real);
    }
    h.set_cksum();
    let mut tar = h.as_bytes().to_vec();
    tar.extend_from_slice(b"hello");
    tar.resize(1024 + 1024, 0);
    let c = case();
    let small = Limits {
        max_size: 1 << 20,
        ..Limits::default()
    };
    let err = unpack(&tar[..], &c.dest, "test-layer", &small).unwrap_err();
    assert!(
        err.to_string().contains("max-layer-size"),
        "holes count: {err}"
    );
    let c = case();
    let s = c.run_tar(&tar).unwrap();
    assert_eq!((s.files, s.bytes), (1, real));
    let p = c.dest.join("sparse");
    let data = std::fs::read(&p).unwrap();
    assert_eq!(data.len() as u64, real);
    assert_eq!(&data[4 << 20..], b"hello");
    assert!(data[..4 << 20].iter().all(|b| *b == 0));
    assert!(
        std::fs::metadata(&p).unwrap().blocks() * 512 < 1 << 20,
        "the holes were written out"
    );
}

#[test]
fn pax_sparse_files_and_unknown_entry_types_are_refused_with_their_name() {
    let c = case();
    let tar = pax_file(
        "GNUSparseFile.0/big",
        &[("GNU.sparse.major", b"1"), ("GNU.sparse.minor", b"0")],
        0,
        b"x",
    );
    let err = c.run_tar(&tar).unwrap_err().to_string();
    assert!(
        err.contains("layer test-layer: entry GNUSparseFile.0/big: PAX sparse"),
        "{err}"
    );
    let tar = raw_entry("vol", b"", |h| h.set_entry_type(tar::EntryType::new(b'V')));
    let err = c.run_tar(&tar).unwrap_err().to_string();
    assert!(
        err.contains("layer test-layer: entry vol: unsupported entry type"),
        "{err}"
    );
}

/// Issue 8: a layer ending right after the last file's data (no padding, no end-of-archive
/// blocks, as `umoci insert` writes) was refused with "unexpected EOF during skip".
#[test]
fn a_layer_without_padding_or_end_blocks_is_accepted() {
    let data = vec![b'a'; 700];
    let mut tar = raw_entry("first", b"one", |_| {});
    tar.extend(raw_entry("last", &data, |_| {}));
    tar.truncate(1024 + 512 + 700);
    let c = case();
    c.run_tar(&tar).unwrap();
    assert_eq!(std::fs::read(c.dest.join("last")).unwrap(), data);
    assert_eq!(std::fs::read(c.dest.join("first")).unwrap(), b"one");
}

#[test]
fn a_layer_truncated_inside_an_entrys_data_is_refused() {
    let data = vec![b'a'; 1500];
    // Inside a block, at a block boundary, and inside the header.
    for cut in [512 + 700, 512 + 1024, 300] {
        let mut tar = raw_entry("last", &data, |_| {});
        tar.truncate(cut);
        let c = case();
        let err = c.run_tar(&tar).unwrap_err().to_string();
        assert!(err.starts_with("layer test-layer: "), "{cut}: {err}");
        if cut > 512 {
            assert!(
                err.contains("entry last: the layer ends inside"),
                "{cut}: {err}"
            );
        }
    }
}

#[test]
fn limits_refuse_a_decompression_bomb() {
    let c = case();
    let tiny = Limits {
        max_size: 64 << 10,
        max_entries: 3,
    };
    let big = tar_of(&[E::File("big", &"x".repeat(100 << 10), 0o644)]);
    let err = unpack(&big[..], &c.dest, "sha256:bomb", &tiny)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("layer sha256:bomb: refused") && err.contains("max-layer-size (65536 bytes)"),
        "{err}"
    );
    let c = case();
    let many = tar_of(&[
        E::File("a", "", 0o644),
        E::File("b", "", 0o644),
        E::File("c", "", 0o644),
        E::File("d", "", 0o644),
    ]);
    let err = unpack(&many[..], &c.dest, "sha256:bomb", &tiny)
        .unwrap_err()
        .to_string();
    assert!(err.contains("max-layer-entries (3)"), "{err}");
}
