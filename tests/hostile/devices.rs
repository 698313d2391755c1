//! Device nodes shipped in an image: the layer may carry them (Docker unpacks them too), but
//! the container must not open one that reaches a host device. The devices cgroup refuses it
//! whatever file system the node sits on.

use crate::common::*;
use std::path::Path;

/// The busybox rootfs with one more entry: a character device `name` with the numbers of the
/// host's `/dev/hwrng` (10:183), mode 0666, as a hostile image would ship it.
fn busybox_with_device(out: &Path, name: &str, major: u32, minor: u32) {
    let mut src = tar::Archive::new(std::fs::File::open(busybox_tar()).unwrap());
    let mut dst = tar::Builder::new(std::fs::File::create(out).unwrap());
    for entry in src.entries().unwrap() {
        let entry = entry.unwrap();
        let header = entry.header().clone();
        dst.append(&header, entry).unwrap();
    }
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(tar::EntryType::Char);
    h.set_path(name).unwrap();
    h.set_mode(0o666);
    h.set_uid(0);
    h.set_gid(0);
    h.set_size(0);
    h.set_device_major(major).unwrap();
    h.set_device_minor(minor).unwrap();
    h.set_mtime(1_000_000_000);
    h.set_cksum();
    dst.append(&h, std::io::empty()).unwrap();
    dst.finish().unwrap();
}

#[test]
fn a_device_node_shipped_in_an_image_cannot_be_read() {
    // /dev/hwrng is what the audit read from a container; it must be readable by root here,
    // or the test would pass for another reason.
    let host = "/dev/hwrng";
    assert!(
        std::fs::File::open(host).is_ok(),
        "this test needs a readable {host} on the host (the device the audit read through an image's node)"
    );
    let lab = Lab::new();
    let tmp = tempfile::tempdir().unwrap();
    let tar = tmp.path().join("hostile.tar");
    busybox_with_device(&tar, "hwrng", 10, 183);
    lab.cmd(&["import", tar.to_str().unwrap(), "hostile:dev"])
        .expect_code(0);
    let o = lab.run(&[
        "hostile:dev",
        "sh",
        "-c",
        "ls -l /hwrng; head -c 8 /hwrng | wc -c",
    ]);
    o.expect_code(0);
    // The node is there (the container ran and sees it) but reading it is refused.
    assert!(
        o.stdout.starts_with("crw-rw-rw-"),
        "{}\n{}",
        o.stdout,
        o.stderr
    );
    assert!(o.stdout.ends_with("\n0\n"), "{}", o.stdout);
    assert!(o.stderr.contains("Operation not permitted"), "{}", o.stderr);
    // The store still works.
    lab.run(&["hostile:dev", "true"]).expect_code(0);
}

/// With `--no-cgroups` there is no devices cgroup to refuse the open: the image is mounted
/// nodev instead, so its node cannot be opened either (EACCES), while /dev/null still works.
#[test]
fn a_device_node_shipped_in_an_image_cannot_be_read_without_cgroups() {
    let host = "/dev/hwrng";
    assert!(
        std::fs::File::open(host).is_ok(),
        "this test needs a readable {host} on the host"
    );
    let lab = Lab::new();
    let tmp = tempfile::tempdir().unwrap();
    let tar = tmp.path().join("hostile.tar");
    busybox_with_device(&tar, "hwrng", 10, 183);
    lab.cmd(&["import", tar.to_str().unwrap(), "hostile:dev"])
        .expect_code(0);
    let o = lab.run(&[
        "--no-cgroups",
        "hostile:dev",
        "sh",
        "-c",
        "echo x > /dev/null && echo null-ok; head -c 8 /hwrng | wc -c",
    ]);
    o.expect_code(0);
    assert_eq!(o.stdout, "null-ok\n0\n", "{}", o.stderr);
    assert!(o.stderr.contains("Permission denied"), "{}", o.stderr);
    for layers in ["overlay", "copy"] {
        let o = lab.run(&[
            "--no-cgroups",
            "--layers",
            layers,
            "hostile:dev",
            "sh",
            "-c",
            "head -c 8 /hwrng | wc -c",
        ]);
        o.expect_code(0);
        assert_eq!(o.stdout, "0\n", "--layers {layers}: {}", o.stderr);
    }
}
