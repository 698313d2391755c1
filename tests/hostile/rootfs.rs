//! Images that attack the container's rootfs setup and the user lookup: kernel file systems,
//! device nodes, volumes and /etc/passwd pointed at the host with symlinks, account files that
//! are FIFOs or never end, and a whiteout that must hide the passwd below it.
//!
//! Each image is busybox plus one hostile layer built here (`Store::build` on top of the
//! imported busybox, so the layer really sits above another one, as in a pulled image).
//! Every case checks the exit code first, then that the bait directory standing in for the
//! host is unchanged (mode, owner, mtime, content, no new entries), then that the store still
//! runs a container.

use std::path::Path;
use std::time::Duration;

use crate::common::*;

/// `tar_of` for the layer of this module's cases.
fn image(name: &str, entries: &[E<'_>]) -> Lab {
    image_on_busybox(name, &tar_of(entries))
}

/// The store still starts a plain container after the hostile one.
fn store_still_works(lab: &Lab) {
    let o = lab.run(&["busybox", "echo", "ok"]);
    o.expect_code(0);
    assert_eq!(o.stdout, "ok\n");
}

/// `proc -> <host dir>` made dockling look for the masked and read-only paths on the host,
/// find none, and leave /proc/sys writable in the container. It must be refused outright.
#[test]
fn proc_symlink_to_the_host_is_refused_not_left_unmasked() {
    let bait = bait_dir();
    let before = tree_state(bait.path());
    let lab = image(
        "hostile-proc:1",
        &[E::Sym("proc", bait.path().to_str().unwrap())],
    );
    let o = lab.run(&["hostile-proc:1", "true"]);
    o.expect_code(125);
    assert!(
        o.stderr.contains("refusing to mount /proc") && o.stderr.contains("a symlink"),
        "{}",
        o.stderr
    );
    assert_eq!(tree_state(bait.path()), before);
    store_still_works(&lab);
}

#[test]
fn sys_symlink_to_the_host_is_refused() {
    let bait = bait_dir();
    let before = tree_state(bait.path());
    let lab = image(
        "hostile-sys:1",
        &[E::Sym("sys", bait.path().to_str().unwrap())],
    );
    let o = lab.run(&["hostile-sys:1", "true"]);
    o.expect_code(125);
    assert!(
        o.stderr.contains("refusing to mount /sys") && o.stderr.contains("a symlink"),
        "{}",
        o.stderr
    );
    assert_eq!(tree_state(bait.path()), before);
    store_still_works(&lab);
}

/// `dev -> <host dir>` made dockling create six device nodes and six links in the host
/// directory (mknodat(AT_FDCWD, "<rootfs>/dev/null")), left there after the run failed.
#[test]
fn dev_symlink_to_the_host_gets_no_device_nodes_on_the_host() {
    let bait = bait_dir();
    let before = tree_state(bait.path());
    let lab = image(
        "hostile-dev:1",
        &[E::Sym("dev", bait.path().to_str().unwrap())],
    );
    let o = lab.run(&["hostile-dev:1", "true"]);
    o.expect_code(125);
    assert!(o.stderr.contains("refusing to mount /dev"), "{}", o.stderr);
    assert_eq!(tree_state(bait.path()), before);
    store_still_works(&lab);
}

/// A `/proc` that is a plain file is refused the same way (a kernel file system is mounted
/// only on a real directory).
#[test]
fn proc_as_a_file_is_refused() {
    let lab = image(
        "hostile-procfile:1",
        &[E::File("proc", "not a dir\n", 0o644)],
    );
    let o = lab.run(&["hostile-procfile:1", "true"]);
    o.expect_code(125);
    assert!(o.stderr.contains("not a directory"), "{}", o.stderr);
    store_still_works(&lab);
}

/// `etc/passwd -> <host file>`: the uid came from the host's file. The link is now followed
/// inside the image, as the container itself would: the image's own file at that path is
/// read, or nothing, never the host's (the bait's `bait` user has uid 4242).
#[test]
fn passwd_symlink_to_a_host_file_reads_the_image_not_the_host() {
    let bait = bait_dir();
    let before = tree_state(bait.path());
    let target = bait.path().join("sub/passwd");
    let lab = image(
        "hostile-passwd-link:1",
        &[
            E::Dir("etc", 0o755),
            E::Sym("etc/passwd", target.to_str().unwrap()),
        ],
    );
    // Nothing at that path in the image: no users at all, so `-u bait` is unknown...
    let named = lab.run(&["-u", "bait", "hostile-passwd-link:1", "id", "-u"]);
    named.expect_code(125);
    assert!(
        named.stderr.contains("unable to find user bait"),
        "{}",
        named.stderr
    );
    // ...and a run without `-u` works (it failed with 125 while links were refused).
    assert_eq!(lab.ok(&["hostile-passwd-link:1", "id", "-u"]), "0\n");

    // The same link in an image that has its own file at the host's path: that one is read.
    let inside = target
        .strip_prefix("/")
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    let mut entries = Vec::new();
    let mut dir = std::path::PathBuf::new();
    let parents: Vec<String> = Path::new(&inside)
        .parent()
        .unwrap()
        .components()
        .map(|c| {
            dir.push(c);
            dir.to_str().unwrap().to_owned()
        })
        .collect();
    for d in &parents {
        entries.push(E::Dir(d, 0o755));
    }
    entries.push(E::File(&inside, "bait:x:777:777::/:/bin/sh\n", 0o644));
    entries.push(E::Dir("etc", 0o755));
    entries.push(E::Sym("etc/passwd", target.to_str().unwrap()));
    let lab = image("hostile-passwd-link:2", &entries);
    assert_eq!(
        lab.ok(&["-u", "bait", "hostile-passwd-link:2", "id", "-u"]),
        "777\n"
    );
    assert_eq!(tree_state(bait.path()), before);
    store_still_works(&lab);
}

/// `etc/passwd -> /dev/zero` would have been read until memory ran out. The image's own
/// /dev/zero (a device node in a layer) is what the link reaches now: refused.
#[test]
fn passwd_symlink_to_dev_zero_is_refused() {
    let lab = image(
        "hostile-passwd-zero:1",
        &[
            E::Dir("dev", 0o755),
            E::Dev("dev/zero", tar::EntryType::Char, 1, 5),
            E::Dir("etc", 0o755),
            E::Sym("etc/passwd", "/dev/zero"),
        ],
    );
    let o = lab.run(&["-u", "1000", "hostile-passwd-zero:1", "true"]);
    o.expect_code(125);
    assert!(
        o.stderr.contains("/etc/passwd: it is a device node"),
        "{}",
        o.stderr
    );
    store_still_works(&lab);
}

/// Debian's base-passwd layout, `etc/passwd -> ../usr/share/base-passwd/passwd`: a symlink
/// inside the image made every run of it fail with 125 while any link was refused.
#[test]
fn passwd_symlink_inside_the_image_no_longer_fails_every_run() {
    let lab = image(
        "passwd-relative-link:1",
        &[
            E::Dir("usr", 0o755),
            E::Dir("usr/share", 0o755),
            E::Dir("usr/share/base-passwd", 0o755),
            E::File(
                "usr/share/base-passwd/passwd",
                "root:x:0:0::/root:/bin/sh\nlinked:x:1234:1234::/:/bin/sh\n",
                0o644,
            ),
            E::Dir("etc", 0o755),
            E::Sym("etc/passwd", "../usr/share/base-passwd/passwd"),
        ],
    );
    assert_eq!(lab.ok(&["passwd-relative-link:1", "id", "-u"]), "0\n");
    assert_eq!(
        lab.ok(&["-u", "linked", "passwd-relative-link:1", "id", "-u"]),
        "1234\n"
    );
}

/// Merged-/usr images: `/etc -> usr/etc`, the link is a parent of the account files.
#[test]
fn etc_symlink_to_usr_etc_no_longer_fails_every_run() {
    let lab = image(
        "etc-usr-link:1",
        &[
            E::Dir("usr", 0o755),
            E::Dir("usr/etc", 0o755),
            E::File(
                "usr/etc/passwd",
                "root:x:0:0::/root:/bin/sh\nmerged:x:1235:1235::/:/bin/sh\n",
                0o644,
            ),
            E::File("usr/etc/group", "root:x:0:\nmerged:x:1235:\n", 0o644),
            E::Sym("etc", "usr/etc"),
        ],
    );
    assert_eq!(lab.ok(&["etc-usr-link:1", "id", "-u"]), "0\n");
    assert_eq!(
        lab.ok(&["-u", "merged", "etc-usr-link:1", "id", "-u"]),
        "1235\n"
    );
}

/// A link loop is a clear error at once, not a hang and not a silent "no users".
#[test]
fn passwd_symlink_loop_is_a_clear_error() {
    let lab = image(
        "hostile-passwd-loop:1",
        &[
            E::Dir("etc", 0o755),
            E::Sym("etc/passwd", "passwd.again"),
            E::Sym("etc/passwd.again", "/etc/passwd"),
        ],
    );
    let o = lab.run(&["hostile-passwd-loop:1", "true"]);
    o.expect_code(125);
    assert!(
        o.stderr
            .contains("/etc/passwd: it is behind more than 40 symlinks"),
        "{}",
        o.stderr
    );
    store_still_works(&lab);
}

/// A FIFO as /etc/passwd hung every run of the image, even without `-u`. Now it is a clear
/// error at once; the test waits for the exit (a condition), and fails if it never comes.
#[test]
fn passwd_fifo_is_an_error_not_a_hang() {
    let lab = image(
        "hostile-passwd-fifo:1",
        &[E::Dir("etc", 0o755), E::Fifo("etc/passwd")],
    );
    let mut child = lab
        .command(&["run", "--rm", "hostile-passwd-fifo:1", "true"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    wait_exit(
        &mut child,
        Duration::from_secs(60),
        "dockling run to end on an image whose /etc/passwd is a FIFO",
    );
    let o: Out = child.wait_with_output().unwrap().into();
    o.expect_code(125);
    assert!(
        o.stderr.contains("/etc/passwd: it is a FIFO"),
        "{}",
        o.stderr
    );
    store_still_works(&lab);
}

/// `.wh.passwd` in an upper layer deletes busybox's /etc/passwd, but the lookup read the
/// lower layer's file anyway: `-u student` worked although the container has no such user.
#[test]
fn passwd_whited_out_in_an_upper_layer_has_no_users() {
    let lab = image(
        "hostile-passwd-whiteout:1",
        &[E::Dir("etc", 0o755), E::File("etc/.wh.passwd", "", 0o644)],
    );
    let named = lab.run(&["-u", "student", "hostile-passwd-whiteout:1", "id", "-u"]);
    named.expect_code(125);
    assert_eq!(
        named
            .stderr
            .trim_end()
            .rsplit(": ")
            .take(2)
            .collect::<Vec<_>>(),
        vec![
            "no matching entries in passwd file",
            "unable to find user student"
        ],
        "{}",
        named.stderr
    );
    // A numeric uid needs no passwd (Docker runs it), and the container indeed has none.
    let numeric = lab.run(&[
        "-u",
        "1000",
        "hostile-passwd-whiteout:1",
        "sh",
        "-c",
        "id -u; test -e /etc/passwd && echo passwd || echo no-passwd",
    ]);
    numeric.expect_code(0);
    assert_eq!(numeric.stdout, "1000\nno-passwd\n");
    // The lower layer still has it, for busybox itself.
    let base = lab.run(&["-u", "student", "busybox", "id", "-u"]);
    base.expect_code(0);
    assert_eq!(base.stdout, "1000\n");
}

/// A volume whose target in the image is a symlink to a host directory is bound where the
/// link leads inside the rootfs, never onto the host directory; `:ro` still works there
/// (the remount names the new mount, not the directory under it).
#[test]
fn volume_target_symlink_to_the_host_stays_inside() {
    let bait = bait_dir();
    let before = tree_state(bait.path());
    let vol = tempfile::tempdir().unwrap();
    std::fs::write(vol.path().join("f"), "volume\n").unwrap();
    let lab = image(
        "hostile-volume:1",
        &[E::Sym("data", bait.path().to_str().unwrap())],
    );
    let ro = format!("{}:/data:ro", vol.path().display());
    let o = lab.run(&[
        "-v",
        &ro,
        "hostile-volume:1",
        "sh",
        "-c",
        "cat /data/f; touch /data/new 2>/dev/null && echo rw || echo ro",
    ]);
    o.expect_code(0);
    assert_eq!(o.stdout, "volume\nro\n");
    let rw = format!("{}:/data", vol.path().display());
    let o = lab.run(&[
        "-v",
        &rw,
        "hostile-volume:1",
        "sh",
        "-c",
        "echo hi > /data/g",
    ]);
    o.expect_code(0);
    assert_eq!(
        std::fs::read_to_string(vol.path().join("g")).unwrap(),
        "hi\n"
    );
    assert!(!vol.path().join("new").exists());
    assert_eq!(tree_state(bait.path()), before);
    store_still_works(&lab);
}

/// `etc/hosts -> /proc/sys/kernel/core_pattern`: dockling's bind of the container's hosts file
/// would land on a kernel knob (inside the container's /proc, which is mounted by then), and a
/// volume target `data -> /proc/sys` likewise. runc refuses mounts that resolve into /proc or
/// /sys; so does dockling, by the file system the resolved descriptor is on.
#[test]
fn binds_that_resolve_into_proc_or_sys_are_refused() {
    let lab = image(
        "hostile-hosts:1",
        &[
            E::Dir("etc", 0o755),
            E::Sym("etc/hosts", "/proc/sys/kernel/core_pattern"),
        ],
    );
    let o = lab.run(&["hostile-hosts:1", "true"]);
    o.expect_code(125);
    assert!(
        o.stderr.contains("refusing to mount on /etc/hosts") && o.stderr.contains("/proc or /sys"),
        "{}",
        o.stderr
    );
    let vol = tempfile::tempdir().unwrap();
    let lab2 = image("hostile-vol:1", &[E::Sym("data", "/sys/kernel")]);
    let o = lab2.run(&[
        "-v",
        &format!("{}:/data/x", vol.path().display()),
        "hostile-vol:1",
        "true",
    ]);
    o.expect_code(125);
    assert!(
        o.stderr.contains("refusing to mount on /data/x"),
        "{}",
        o.stderr
    );
    // A volume onto an ordinary directory of the same image still works.
    let o = lab2.run(&[
        "-v",
        &format!("{}:/srv", vol.path().display()),
        "hostile-vol:1",
        "true",
    ]);
    o.expect_code(0);
    store_still_works(&lab);
}
