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
use std::time::{Duration, Instant};

use crate::common::*;
use dockling::image::reference::Reference;
use dockling::image::store::Store;

/// One entry of a hand-made layer.
enum E<'a> {
    Dir(&'a str),
    File(&'a str, &'a str),
    Link(&'a str, &'a Path),
    Fifo(&'a str),
}

/// An uncompressed layer tar of `entries`, in order.
fn layer(entries: &[E<'_>]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for e in entries {
        let mut h = tar::Header::new_ustar();
        h.set_mtime(1_000_000_000);
        h.set_uid(0);
        h.set_gid(0);
        h.set_size(0);
        match e {
            E::Dir(p) => {
                h.set_entry_type(tar::EntryType::Directory);
                h.set_mode(0o755);
                b.append_data(&mut h, format!("{p}/"), &[][..]).unwrap();
            }
            E::File(p, text) => {
                h.set_entry_type(tar::EntryType::Regular);
                h.set_mode(0o644);
                h.set_size(text.len() as u64);
                b.append_data(&mut h, p, text.as_bytes()).unwrap();
            }
            E::Link(p, target) => {
                h.set_entry_type(tar::EntryType::Symlink);
                h.set_mode(0o777);
                b.append_link(&mut h, p, target).unwrap();
            }
            E::Fifo(p) => {
                h.set_entry_type(tar::EntryType::Fifo);
                h.set_mode(0o644);
                b.append_data(&mut h, p, &[][..]).unwrap();
            }
        }
    }
    b.into_inner().unwrap()
}

/// A store with busybox and `name` = busybox + `entries` as a second layer.
fn image_on_busybox(name: &str, entries: &[E<'_>]) -> Lab {
    let lab = Lab::with_busybox();
    let store = Store::open(&lab.root()).unwrap();
    let base = store.find("busybox:latest").unwrap();
    store
        .build(
            Some(&base),
            &layer(entries),
            &[],
            "2001-09-09T01:46:40Z",
            "hostile layer",
            Some(&Reference::parse(name).unwrap()),
        )
        .unwrap();
    lab
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
    let lab = image_on_busybox("hostile-proc:1", &[E::Link("proc", bait.path())]);
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
    let lab = image_on_busybox("hostile-sys:1", &[E::Link("sys", bait.path())]);
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
    let lab = image_on_busybox("hostile-dev:1", &[E::Link("dev", bait.path())]);
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
    let lab = image_on_busybox("hostile-procfile:1", &[E::File("proc", "not a dir\n")]);
    let o = lab.run(&["hostile-procfile:1", "true"]);
    o.expect_code(125);
    assert!(o.stderr.contains("not a directory"), "{}", o.stderr);
    store_still_works(&lab);
}

/// `etc/passwd -> <host file>`: the uid came from the host's file. Now the link is refused
/// (125, clear words), with or without `-u`.
#[test]
fn passwd_symlink_to_a_host_file_is_refused_not_read() {
    let bait = bait_dir();
    let before = tree_state(bait.path());
    let target = bait.path().join("sub/passwd");
    let lab = image_on_busybox(
        "hostile-passwd-link:1",
        &[E::Dir("etc"), E::Link("etc/passwd", &target)],
    );
    for args in [
        &["-u", "root", "hostile-passwd-link:1", "id", "-u"][..],
        &["hostile-passwd-link:1", "id", "-u"][..],
    ] {
        let o = lab.run(args);
        o.expect_code(125);
        assert!(
            o.stderr.contains("/etc/passwd: it is a symlink"),
            "{}",
            o.stderr
        );
    }
    assert_eq!(tree_state(bait.path()), before);
    store_still_works(&lab);
}

/// `etc/passwd -> /dev/zero` would have been read until memory ran out.
#[test]
fn passwd_symlink_to_dev_zero_is_refused() {
    let lab = image_on_busybox(
        "hostile-passwd-zero:1",
        &[E::Dir("etc"), E::Link("etc/passwd", Path::new("/dev/zero"))],
    );
    let o = lab.run(&["-u", "1000", "hostile-passwd-zero:1", "true"]);
    o.expect_code(125);
    assert!(o.stderr.contains("it is a symlink"), "{}", o.stderr);
    store_still_works(&lab);
}

/// A FIFO as /etc/passwd hung every run of the image, even without `-u`. Now it is a clear
/// error at once; the test waits for the exit (a condition), and fails if it never comes.
#[test]
fn passwd_fifo_is_an_error_not_a_hang() {
    let lab = image_on_busybox(
        "hostile-passwd-fifo:1",
        &[E::Dir("etc"), E::Fifo("etc/passwd")],
    );
    let mut child = lab
        .command(&["run", "--rm", "hostile-passwd-fifo:1", "true"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("dockling run hung on an image whose /etc/passwd is a FIFO");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
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
    let lab = image_on_busybox(
        "hostile-passwd-whiteout:1",
        &[E::Dir("etc"), E::File("etc/.wh.passwd", "")],
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
    let lab = image_on_busybox("hostile-volume:1", &[E::Link("data", bait.path())]);
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
    let lab = image_on_busybox(
        "hostile-hosts:1",
        &[
            E::Dir("etc"),
            E::Link("etc/hosts", Path::new("/proc/sys/kernel/core_pattern")),
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
    let lab2 = image_on_busybox(
        "hostile-vol:1",
        &[E::Link("data", Path::new("/sys/kernel"))],
    );
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
