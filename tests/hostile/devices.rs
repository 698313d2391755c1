//! Device nodes shipped in an image: the layer may carry them (Docker unpacks them too), but
//! the container must not open one that reaches a host device. The devices cgroup refuses it
//! whatever file system the node sits on.

use crate::common::*;

#[test]
fn a_device_node_shipped_in_an_image_cannot_be_read() {
    // A host device root can open here (the audit read /dev/hwrng through an image's node),
    // so a refusal in the container can only come from the devices cgroup.
    let (host, major, minor) = host_char_device();
    let lab = image_on_busybox(
        "hostile:dev",
        &tar_of(&[E::Dev("hostdev", tar::EntryType::Char, major, minor)]),
    );
    let o = lab.run(&[
        "hostile:dev",
        "sh",
        "-c",
        "ls -l /hostdev; head -c 8 /hostdev | wc -c",
    ]);
    o.expect_code(0);
    // The node is there (the container ran and sees it) but reading it is refused.
    assert!(
        o.stdout.starts_with("crw-rw-rw-"),
        "{host}: {}\n{}",
        o.stdout,
        o.stderr
    );
    assert!(o.stdout.ends_with("\n0\n"), "{host}: {}", o.stdout);
    assert!(
        o.stderr.contains("Operation not permitted"),
        "{host}: {}",
        o.stderr
    );
    // The store still works.
    lab.run(&["hostile:dev", "true"]).expect_code(0);
}

/// With `--no-cgroups` there is no devices cgroup to refuse the open: the image is mounted
/// nodev instead, so its node cannot be opened either (EACCES), while /dev/null still works.
#[test]
fn a_device_node_shipped_in_an_image_cannot_be_read_without_cgroups() {
    let (_, major, minor) = host_char_device();
    let lab = image_on_busybox(
        "hostile:dev",
        &tar_of(&[E::Dev("hwrng", tar::EntryType::Char, major, minor)]),
    );
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
    for layers in ["overlay", "copy", "erofs"] {
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
