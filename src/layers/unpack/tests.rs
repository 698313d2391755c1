//! Breakout cases in the spirit of containerd's `TestBreakouts`, written for this unpacker:
//! each hostile layer must leave the host untouched (a sentinel directory beside `dest`) and
//! either land harmlessly inside `dest` or fail with a clear error.

use super::*;

enum E<'a> {
    Dir(&'a str),
    File(&'a str, &'a str),
    Sym(&'a str, &'a str),
    Hard(&'a str, &'a str),
}

/// Write a tar with raw names (the tar crate's builder refuses `..`, which is the point).
fn tar_of(entries: &[E<'_>]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for e in entries {
        let mut h = tar::Header::new_ustar();
        let (name, kind, data, link): (&str, tar::EntryType, &[u8], Option<&str>) = match e {
            E::Dir(n) => (n, tar::EntryType::Directory, b"", None),
            E::File(n, d) => (n, tar::EntryType::Regular, d.as_bytes(), None),
            E::Sym(n, t) => (n, tar::EntryType::Symlink, b"", Some(t)),
            E::Hard(n, t) => (n, tar::EntryType::Link, b"", Some(t)),
        };
        {
            let old = h.as_old_mut();
            old.name[..name.len()].copy_from_slice(name.as_bytes());
            if let Some(l) = link {
                old.linkname[..l.len()].copy_from_slice(l.as_bytes());
            }
        }
        h.set_entry_type(kind);
        h.set_mode(if matches!(kind, tar::EntryType::Directory) {
            0o755
        } else {
            0o644
        });
        h.set_size(data.len() as u64);
        h.set_mtime(1_700_000_000);
        h.set_cksum();
        b.append(&h, data).unwrap();
    }
    b.into_inner().unwrap()
}

struct Case {
    _tmp: tempfile::TempDir,
    dest: PathBuf,
    host: PathBuf,
}

fn case() -> Case {
    let tmp = tempfile::tempdir().unwrap();
    let dest = tmp.path().join("layer");
    let host = tmp.path().join("host");
    std::fs::create_dir_all(&dest).unwrap();
    std::fs::create_dir_all(&host).unwrap();
    std::fs::write(host.join("passwd"), "root:x:0:0\n").unwrap();
    Case {
        _tmp: tmp,
        dest,
        host,
    }
}

impl Case {
    fn run(&self, entries: &[E<'_>]) -> Result<UnpackStats> {
        // Names like "../host/passwd" are relative to dest's parent, where `host` is.
        unpack(&tar_of(entries)[..], &self.dest)
    }

    fn host_untouched(&self) {
        let names: Vec<_> = std::fs::read_dir(&self.host)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(
            names,
            vec![std::ffi::OsString::from("passwd")],
            "host dir changed"
        );
        assert_eq!(
            std::fs::read_to_string(self.host.join("passwd")).unwrap(),
            "root:x:0:0\n"
        );
    }
}

#[test]
fn plain_layer_unpacks_with_modes_and_links() {
    let c = case();
    let s = c
        .run(&[
            E::Dir("bin/"),
            E::File("bin/busybox", "ELF"),
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
    c.run(&[E::File("/etc/evil", "x")]).unwrap();
    assert!(c.dest.join("etc/evil").exists());
    c.host_untouched();
}

#[test]
fn dotdot_names_are_clamped_inside() {
    let c = case();
    c.run(&[
        E::File("../host/passwd", "pwned"),
        E::File("a/../../../host/x", "pwned"),
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
    c.run(&[E::Sym("escape", &host), E::File("escape/passwd", "pwned")])
        .unwrap();
    c.host_untouched();
}

#[test]
fn directory_through_a_symlink_to_root_stays_inside() {
    let c = case();
    c.run(&[
        E::Sym("root", "/"),
        E::Dir("root/etc/dockling-breakout/"),
        E::File("root/etc/dockling-breakout/x", "x"),
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
    c.run(&[E::Sym("up", "../host"), E::File("up/passwd", "pwned")])
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
        E::Dir("etc/"),
        E::File("etc/.wh.motd", ""),
        E::File("../host/.wh.passwd", ""),
        E::File("opq/.wh..wh..opq", ""),
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
        E::File("x", "one"),
        E::Dir("x/"),
        E::File("x/y", "two"),
        E::Sym("z", "x"),
        E::File("z", "three"),
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
        E::Dir("d/"),
        E::File("d/one", "1"),
        E::Sym("d", &host),
        E::File("d/passwd", "pwned"),
        E::File("d/two", "2"),
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
