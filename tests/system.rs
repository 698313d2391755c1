//! `dockling system check`: each host feature probed for real, and a loose store reported.

mod common;
use common::Lab;
use std::os::unix::fs::PermissionsExt;

#[test]
fn system_check_lists_every_feature_and_passes_on_this_host() {
    let lab = Lab::with_busybox();
    let o = lab.cmd(&["system", "check"]);
    o.expect_code(0);
    let names: Vec<&str> = o
        .stdout
        .lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert_eq!(
        names,
        [
            "root",
            "kernel",
            "openat2",
            "namespaces",
            "overlayfs",
            "erofs",
            "cgroups",
            "devices",
            "seccomp",
            "store"
        ]
    );
    // This machine class (and CI's) has every feature: a line that is not ok is a finding.
    for line in o.stdout.lines().skip(1) {
        assert_eq!(line.split_whitespace().nth(1), Some("ok"), "{line}");
    }
}

/// A store on tmpfs: the kernel cannot mount an EROFS from a file there (no page reads of
/// its files), so `system check` says so and `--layers erofs` unpacks instead, with a note.
#[test]
fn erofs_on_a_store_the_kernel_cannot_mount_from_falls_back_to_unpacking() {
    let lab = Lab::with_busybox();
    let shm = tempfile::tempdir_in("/dev/shm").expect("a tmpfs at /dev/shm");
    let root = shm.path().join("root");
    let o = lab.cmd(&["--root", root.to_str().unwrap(), "system", "check"]);
    o.expect_code(0);
    let line = o.stdout.lines().find(|l| l.starts_with("erofs")).unwrap();
    assert!(
        line.contains("warning") && line.contains("unpacks the layers instead"),
        "{line}"
    );
    let tar = common::busybox_tar();
    lab.cmd(&[
        "--root",
        root.to_str().unwrap(),
        "import",
        tar.to_str().unwrap(),
        "bb",
    ])
    .expect_code(0);
    let o = lab.cmd(&[
        "--root",
        root.to_str().unwrap(),
        "run",
        "--rm",
        "--network",
        "none",
        "--layers",
        "erofs",
        "bb",
        "cat",
        "/etc/passwd",
    ]);
    o.expect_code(0);
    assert!(o.stdout.starts_with("root:"), "{}", o.stdout);
    assert!(
        o.stderr.contains("--layers erofs:") && o.stderr.contains("unpacking the layers instead"),
        "{}",
        o.stderr
    );
    assert!(
        !root.join("layers/erofs").exists(),
        "no EROFS image was made"
    );
}

#[test]
fn system_check_reports_a_world_traversable_store() {
    let lab = Lab::with_busybox();
    lab.cmd(&["system", "check"]).expect_code(0);
    let layers = lab.root().join("layers");
    std::fs::set_permissions(&layers, std::fs::Permissions::from_mode(0o755)).unwrap();
    let o = lab.cmd(&["system", "check"]);
    o.expect_code(1);
    let store = o.stdout.lines().find(|l| l.starts_with("store")).unwrap();
    assert!(store.contains("missing"), "{store}");
    assert!(store.contains("layers is 0755"), "{store}");
    assert!(
        o.stderr.contains("1 required feature is missing"),
        "{}",
        o.stderr
    );
    // As the line says: the next command that opens the store tightens it.
    let images = lab.cmd(&["images"]);
    images.expect_code(0);
    assert!(images.stderr.contains("tightened"), "{}", images.stderr);
    lab.cmd(&["system", "check"]).expect_code(0);
}
