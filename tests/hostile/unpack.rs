//! Hostile layer tars against `dockling import` (and `run --layers copy` where the flattening
//! pass matters): containerd's `TestBreakouts` classes, the escapes of issue 8, device nodes,
//! setuid files, FIFOs, truncated and unpadded streams, and decompression bombs.
//!
//! Every case checks, in this order: the command's exit code (accepted, or refused with 125
//! and a message naming the layer and the entry), then that the bait directory standing in
//! for the host is unchanged (`tree_state`: mode, owner, mtime, content, no new files), then
//! that the store still works (busybox runs, `images` lists what it should).

use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::PathBuf;

use super::common::*;

/// A store with busybox, and a bait directory standing in for the host.
struct Case {
    lab: Lab,
    bait: tempfile::TempDir,
    before: std::collections::BTreeMap<PathBuf, String>,
}

impl Case {
    fn new() -> Case {
        let lab = Lab::with_busybox();
        let bait = bait_dir();
        let before = tree_state(bait.path());
        Case { lab, bait, before }
    }

    /// A path inside the bait, as text for a hostile name or link target.
    fn bait(&self, rel: &str) -> String {
        let p = self.bait.path().join(rel);
        p.to_str().unwrap().trim_end_matches('/').to_string()
    }

    /// `dockling import <the tar> <name>`.
    fn import(&self, tar: &[u8], name: &str) -> Out {
        let file = self.lab.dir.path().join(format!("{name}.tar"));
        std::fs::write(&file, tar).unwrap();
        self.lab.cmd(&["import", file.to_str().unwrap(), name])
    }

    fn bait_untouched(&self) {
        assert_eq!(
            tree_state(self.bait.path()),
            self.before,
            "the host (bait) directory changed"
        );
        // tree_state does not see xattrs: an opaque marker set through a symlink would be one.
        let c = std::ffi::CString::new(self.bait.path().as_os_str().as_encoded_bytes()).unwrap();
        let mut buf = [0u8; 8];
        // SAFETY: a valid C string and a live buffer of the given length.
        let n = unsafe {
            libc::lgetxattr(
                c.as_ptr(),
                c"trusted.overlay.opaque".as_ptr(),
                buf.as_mut_ptr().cast(),
                buf.len(),
            )
        };
        assert!(n < 0, "the host directory was marked opaque");
    }

    /// The store still works: busybox runs, `images` lists it, no temporary leftovers.
    fn store_still_works(&self) {
        self.lab
            .run(&["--network", "none", "busybox", "true"])
            .expect_code(0);
        let images = self.lab.cmd(&["images"]);
        images.expect_code(0);
        assert!(images.stdout.contains("busybox"), "{}", images.stdout);
        for dir in ["layers/sha256", "oci/blobs/sha256"] {
            let left: Vec<_> = std::fs::read_dir(self.lab.root().join(dir))
                .unwrap()
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with(".tmp-"))
                .collect();
            assert!(left.is_empty(), "temporary files left in {dir}: {left:?}");
        }
    }

    /// Where the store unpacked `tar` (an uncompressed import: its digest is the diff_id).
    fn layer_of(&self, tar: &[u8]) -> PathBuf {
        use sha2::Digest;
        self.lab
            .root()
            .join("layers/sha256")
            .join(format!("{:x}", sha2::Sha256::digest(tar)))
    }

    /// Accepted: exit 0, host untouched, store fine. Returns the unpacked layer.
    fn accepted(&self, entries: &[E<'_>], name: &str) -> PathBuf {
        let tar = tar_of(entries);
        self.import(&tar, name).expect_code(0);
        self.bait_untouched();
        self.store_still_works();
        let layer = self.layer_of(&tar);
        assert!(layer.is_dir(), "{} was not unpacked", layer.display());
        // The same layer as an EROFS image (`--layers erofs` reads the tar again): made and
        // mounted, the host still untouched (the image has no command to run: 127).
        let o = self
            .lab
            .run(&["--network", "none", "--layers", "erofs", name, "/none"]);
        o.expect_code(127);
        self.bait_untouched();
        layer
    }

    /// Refused with 125 and a message naming the layer and `entry`; host untouched, store fine,
    /// and no image was made.
    fn refused(&self, tar: &[u8], name: &str, entry: &str, why: &str) {
        let out = self.import(tar, name);
        out.expect_code(125);
        assert!(
            out.stderr.contains("layer sha256:") && out.stderr.contains(&format!("entry {entry}")),
            "the error names neither the layer nor the entry: {}",
            out.stderr
        );
        assert!(out.stderr.contains(why), "{}", out.stderr);
        self.bait_untouched();
        self.store_still_works();
        assert!(
            !self.lab.cmd(&["images"]).stdout.contains(name),
            "a refused layer made an image"
        );
    }
}

/// Issue 8, escape 1: directory `d/` (04777) then symlink `d -> <host file>`: the deferred
/// directory pass made the host file 04777.
#[test]
fn unpack_chmods_a_host_file_through_a_symlink() {
    let c = Case::new();
    let file = c.bait("file");
    let sub = c.bait("sub");
    c.accepted(
        &[
            E::Dir("d/", 0o4777),
            E::Sym("d", &file),
            E::Dir("s/", 0o777),
            E::Sym("s", &sub),
        ],
        "chmod-escape",
    );
}

/// Issue 8, escape 1 across layers (`--layers copy`): a lower layer's directory `d` (04777)
/// and an upper layer's symlink `d -> <host file>`; the flattener's deferred directory pass
/// chmodded the host file.
#[test]
fn copy_chmods_a_host_file_through_a_symlink() {
    let c = Case::new();
    let file = c.bait("file");
    let sub = c.bait("sub");
    layers_on_busybox(
        &c.lab,
        "copyescape",
        &[
            tar_of(&[E::Dir("d/", 0o4777), E::Dir("s/", 0o777)]),
            tar_of(&[E::Sym("d", &file), E::Sym("s", &sub)]),
        ],
    );
    let out = c.lab.run(&[
        "--network",
        "none",
        "--layers",
        "copy",
        "copyescape",
        "sh",
        "-c",
        "readlink /d",
    ]);
    out.expect_code(0);
    assert_eq!(
        out.stdout.trim(),
        file,
        "the upper layer's symlink is what the container sees"
    );
    c.bait_untouched();
    c.store_still_works();
}

/// containerd's TestBreakouts: absolute and `../` names land inside the layer.
#[test]
fn absolute_and_dotdot_names_land_inside_the_layer() {
    let c = Case::new();
    let abs = c.bait("file");
    let up = format!("../../../../../../../..{}", c.bait("newfile"));
    let layer = c.accepted(
        &[
            E::File(&abs, "pwned", 0o644),
            E::File(&up, "pwned", 0o644),
            E::Dir(&format!("../../..{}/", c.bait("sub")), 0o777),
        ],
        "names",
    );
    assert_eq!(
        std::fs::read_to_string(layer.join(abs.trim_start_matches('/'))).unwrap(),
        "pwned"
    );
}

/// containerd's TestBreakouts: a symlink out, then a file "inside" it; a relative symlink
/// climbing out; a chain of symlinks ending outside.
#[test]
fn files_through_symlinks_out_stay_inside() {
    let c = Case::new();
    let bait = c.bait("");
    let climb = format!("../../../../../../../../..{bait}");
    c.accepted(
        &[
            E::Sym("abs", &bait),
            E::File("abs/file", "pwned", 0o644),
            E::File("abs/new", "pwned", 0o644),
            E::Sym("rel", &climb),
            E::File("rel/sub/passwd", "pwned", 0o644),
            E::Sym("a", "b"),
            E::Sym("b", "c"),
            E::Sym("c", &bait),
            E::Dir("a/chain/", 0o755),
            E::File("a/chain/x", "pwned", 0o644),
        ],
        "symlinks",
    );
}

/// containerd's TestBreakouts: hard links to host files are refused (their targets resolve
/// inside the layer, where there is no such file).
#[test]
fn hard_link_out_is_refused() {
    let c = Case::new();
    let file = c.bait("file");
    c.refused(&tar_of(&[E::Hard("h", &file)]), "hardout", "h", "hard link");
    let up = format!("../../../../../../..{file}");
    c.refused(&tar_of(&[E::Hard("h2", &up)]), "hardup", "h2", "hard link");
    let dir = c.bait("");
    c.refused(
        &tar_of(&[E::Sym("s", &dir), E::Hard("h3", "s/file")]),
        "hardsym",
        "h3",
        "hard link",
    );
}

/// containerd's TestBreakouts: a hard link to a symlink pointing out links the symlink itself;
/// writing a file over it replaces it, never the host file.
#[test]
fn hard_link_to_a_symlink_pointing_out_stays_a_symlink() {
    let c = Case::new();
    let file = c.bait("file");
    let layer = c.accepted(
        &[
            E::Sym("s", &file),
            E::Hard("h", "s"),
            E::File("s", "pwned", 0o644),
        ],
        "hardlinksym",
    );
    assert_eq!(
        std::fs::read_link(layer.join("h")).unwrap(),
        PathBuf::from(&file)
    );
}

/// containerd's TestBreakouts and issue 8 item 10: whiteouts of `..` (which emptied their own
/// directory) are refused; a whiteout of `../x` and an opaque marker through a symlink out
/// stay inside.
#[test]
fn whiteout_of_dotdot_is_refused() {
    let c = Case::new();
    c.refused(
        &tar_of(&[E::File("d/keep", "k", 0o644), E::File("d/.wh..", "", 0o644)]),
        "whdot",
        "d/.wh..",
        "names no file",
    );
    c.refused(
        &tar_of(&[
            E::File("d/keep", "k", 0o644),
            E::File("d/.wh...", "", 0o644),
        ]),
        "whdotdot",
        "d/.wh...",
        "names no file",
    );
    let up = format!("../../../../../..{}", c.bait(".wh.file"));
    let bait = c.bait("");
    c.accepted(
        &[
            E::File(&up, "", 0o644),
            E::File("../.wh.passwd", "", 0o644),
            E::Sym("o", &bait),
            E::File("o/.wh..wh..opq", "", 0o644),
            E::File("o/sub/.wh.passwd", "", 0o644),
        ],
        "whout",
    );
}

/// Device nodes, setuid files and FIFOs in a layer are kept (an image may ship them) but exist
/// only inside the store: nothing is created on the host.
#[test]
fn devices_setuid_files_and_fifos_exist_only_in_the_store() {
    let c = Case::new();
    let bait = c.bait("");
    let layer = c.accepted(
        &[
            E::Dev("dev/mem", tar::EntryType::Char, 1, 1),
            E::Dev("dev/sda", tar::EntryType::Block, 8, 0),
            E::File("bin/su", "#!/bin/sh\n", 0o4755),
            E::Dev("run/fifo", tar::EntryType::Fifo, 0, 0),
            E::Sym("host", &bait),
            E::Dev("host/mem", tar::EntryType::Char, 1, 1),
            E::Dev("host/fifo", tar::EntryType::Fifo, 0, 0),
            E::File("host/su", "x", 0o4755),
        ],
        "nodes",
    );
    let mem = std::fs::symlink_metadata(layer.join("dev/mem")).unwrap();
    assert!(mem.file_type().is_char_device() && mem.rdev() == libc::makedev(1, 1));
    let sda = std::fs::symlink_metadata(layer.join("dev/sda")).unwrap();
    assert!(sda.file_type().is_block_device());
    assert_eq!(
        std::fs::symlink_metadata(layer.join("bin/su"))
            .unwrap()
            .mode()
            & 0o7777,
        0o4755
    );
    assert!(std::fs::symlink_metadata(layer.join("run/fifo"))
        .unwrap()
        .file_type()
        .is_fifo());
    let inside = layer.join(bait.trim_start_matches('/'));
    assert!(std::fs::symlink_metadata(inside.join("mem"))
        .unwrap()
        .file_type()
        .is_char_device());
}

/// A raw entry (header + data, padded): `edit` changes the header before its checksum.
fn raw_entry(name: &str, data: &[u8], edit: impl FnOnce(&mut tar::Header)) -> Vec<u8> {
    let mut h = raw_header(
        name,
        tar::EntryType::Regular,
        0o644,
        data.len() as u64,
        None,
    );
    edit(&mut h);
    h.set_cksum();
    let mut out = h.as_bytes().to_vec();
    out.extend_from_slice(data);
    out.resize(out.len().div_ceil(512) * 512, 0);
    out
}

/// Issue 8: a layer that ends right after the last entry's data (no padding, no end blocks,
/// as `umoci insert` writes) was refused with "unexpected EOF during skip".
#[test]
fn a_layer_without_end_of_archive_blocks_is_accepted() {
    let c = Case::new();
    let mut tar = raw_entry("etc/first", b"one", |_| {});
    tar.extend(raw_entry("etc/last", &[b'a'; 700], |_| {}));
    tar.truncate(1024 + 512 + 700);
    c.import(&tar, "unpadded").expect_code(0);
    let layer = c.layer_of(&tar);
    assert_eq!(
        std::fs::read(layer.join("etc/last")).unwrap(),
        vec![b'a'; 700]
    );
    c.bait_untouched();
    c.store_still_works();
}

/// Truncated entry data and corrupt header fields are refused, naming layer and entry.
#[test]
fn truncated_data_and_corrupt_headers_are_refused() {
    let c = Case::new();
    let mut tar = raw_entry("big", &[b'a'; 1500], |_| {});
    tar.truncate(512 + 700);
    c.refused(
        &tar,
        "truncated",
        "big",
        "the layer ends inside this entry's data",
    );
    let tar = raw_entry("badmode", b"x", |h| h.as_old_mut().mode.fill(b'z'));
    c.refused(&tar, "badmode", "badmode", "bad mode field");
    let tar = raw_entry("baduid", b"x", |h| h.as_old_mut().uid.fill(b'9'));
    c.refused(&tar, "baduid", "baduid", "bad uid field");
}

/// Decompression bombs: a few kilobytes of gzip that expand beyond `max-layer-size`, and a
/// layer of more entries than `max-layer-entries`, are refused with a clear error, and leave
/// nothing behind (no blob, no layer, no temporary file).
#[test]
fn decompression_bombs_are_refused_by_the_configured_limits() {
    use std::io::Write;
    let c = Case::new();
    std::fs::write(
        c.lab.dir.path().join("config.yaml"),
        format!(
            "{}max-layer-size: 1m\nmax-layer-entries: 100\n",
            c.lab.base_config()
        ),
    )
    .unwrap();
    let blobs = || {
        std::fs::read_dir(c.lab.root().join("oci/blobs/sha256"))
            .unwrap()
            .count()
    };
    let layers = || {
        std::fs::read_dir(c.lab.root().join("layers/sha256"))
            .unwrap()
            .count()
    };
    let (b0, l0) = (blobs(), layers());

    let zeros = tar_of(&[E::File("zeros", &"\0".repeat(8 << 20), 0o644)]);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gz.write_all(&zeros).unwrap();
    let bomb = gz.finish().unwrap();
    assert!(bomb.len() < 64 << 10, "the bomb is small: {}", bomb.len());
    let out = c.import(&bomb, "sizebomb");
    out.expect_code(125);
    assert!(
        out.stderr.contains("max-layer-size (1048576 bytes)")
            && out.stderr.contains("decompression bomb"),
        "{}",
        out.stderr
    );

    let names: Vec<String> = (0..150).map(|i| format!("f{i}")).collect();
    let many: Vec<E<'_>> = names.iter().map(|n| E::File(n, "", 0o644)).collect();
    let out = c.import(&tar_of(&many), "entrybomb");
    out.expect_code(125);
    assert!(
        out.stderr.contains("max-layer-entries (100)"),
        "{}",
        out.stderr
    );

    assert_eq!(
        (blobs(), layers()),
        (b0, l0),
        "a refused layer left files in the store"
    );
    c.bait_untouched();
    c.store_still_works();
    // Within the limits, the same store imports.
    c.import(&tar_of(&many[..50]), "fine").expect_code(0);
}

/// Issue 8, item 9: a whiteout and a file of the same name in the same layer: the file stays
/// (whiteouts hide only lower layers), whichever comes first, with overlayfs and with
/// `--layers copy`; a whiteout of a lower layer's file still hides it.
#[test]
fn a_whiteout_hides_only_lower_layers() {
    let c = Case::new();
    layers_on_busybox(
        &c.lab,
        "whiteouts",
        &[
            tar_of(&[
                E::File("etc/a", "lower", 0o644),
                E::File("etc/b", "lower", 0o644),
                E::File("etc/gone", "lower", 0o644),
            ]),
            tar_of(&[
                E::File("etc/a", "upper a", 0o644),
                E::File("etc/.wh.a", "", 0o644),
                E::File("etc/.wh.b", "", 0o644),
                E::File("etc/b", "upper b", 0o644),
                E::File("etc/.wh.gone", "", 0o644),
            ]),
        ],
    );
    for layers in ["overlay", "copy", "erofs"] {
        let out = c.lab.run(&[
            "--network",
            "none",
            "--layers",
            layers,
            "whiteouts",
            "sh",
            "-c",
            "cat /etc/a /etc/b; test -e /etc/gone && echo gone-is-there || echo gone-is-hidden",
        ]);
        out.expect_code(0);
        assert_eq!(
            out.stdout, "upper aupper bgone-is-hidden\n",
            "--layers {layers}"
        );
    }
    c.bait_untouched();
    c.store_still_works();
}
