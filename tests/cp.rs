//! `dockling cp`: files and directories in and out of running and stopped containers, with
//! Docker's path rules, owners and modes, tar streams, and hostile symlinks in the container
//! that must never lead to the host's files (CVE-2018-15664).

mod common;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::Path;
use std::time::Duration;

use common::{wait_until, Lab};

/// A lab with a detached `sleep` container named `c` (extra `run` flags before the image).
fn with_container(extra: &[&str]) -> Lab {
    let lab = Lab::with_busybox();
    let mut args = vec!["run", "-d", "--name", "web"];
    args.extend_from_slice(extra);
    args.extend_from_slice(&["busybox", "sleep", "1000"]);
    lab.cmd(&args).expect_code(0);
    wait_until(Duration::from_secs(20), "the container runs", || {
        let o = lab.cmd(&["inspect", "-f", "{{.State.Status}}", "web"]);
        (o.stdout.trim() == "running").then_some(())
    });
    lab
}

/// `exec c sh -c script`, its stdout (exit code 0 checked).
fn sh(lab: &Lab, script: &str) -> String {
    let o = lab.cmd(&["exec", "web", "sh", "-c", script]);
    o.expect_code(0);
    o.stdout
}

fn stop(lab: &Lab) {
    lab.cmd(&["stop", "-t", "0", "web"]).expect_code(0);
}

/// What "untouched" means for a host file: content, mode, owner and mtime.
fn fingerprint(p: &Path) -> (Vec<u8>, u32, u32, u32, i64, i64) {
    let m = std::fs::symlink_metadata(p).unwrap();
    (
        std::fs::read(p).unwrap_or_default(),
        m.mode(),
        m.uid(),
        m.gid(),
        m.mtime(),
        m.mtime_nsec(),
    )
}

#[test]
fn files_and_directories_go_both_ways_in_a_running_container() {
    let lab = with_container(&[]);
    let host = tempfile::tempdir().unwrap();
    let f = host.path().join("index.html");
    std::fs::write(&f, "hello\n").unwrap();
    std::fs::set_permissions(&f, PermissionsExt::from_mode(0o640)).unwrap();
    // Into an existing directory: the file keeps its name and mode.
    lab.cmd(&["cp", f.to_str().unwrap(), "web:/tmp/"])
        .expect_code(0);
    assert_eq!(sh(&lab, "cat /tmp/index.html"), "hello\n");
    assert_eq!(sh(&lab, "stat -c '%a %u:%g' /tmp/index.html"), "640 0:0\n");
    // To a new name, then over an existing file.
    lab.cmd(&["cp", f.to_str().unwrap(), "web:/tmp/renamed"])
        .expect_code(0);
    std::fs::write(&f, "second\n").unwrap();
    lab.cmd(&["cp", f.to_str().unwrap(), "web:/tmp/renamed"])
        .expect_code(0);
    assert_eq!(sh(&lab, "cat /tmp/renamed"), "second\n");

    // A directory: to a missing name it becomes that name; into an existing one it nests;
    // `dir/.` copies its contents.
    let d = host.path().join("site");
    std::fs::create_dir_all(d.join("sub")).unwrap();
    std::fs::write(d.join("sub/a"), "A").unwrap();
    std::os::unix::fs::symlink("sub/a", d.join("link")).unwrap();
    std::fs::set_permissions(&d, PermissionsExt::from_mode(0o750)).unwrap();
    lab.cmd(&["cp", d.to_str().unwrap(), "web:/tmp/new"])
        .expect_code(0);
    assert_eq!(
        sh(&lab, "cat /tmp/new/sub/a; readlink /tmp/new/link"),
        "Asub/a\n"
    );
    assert_eq!(sh(&lab, "stat -c %a /tmp/new"), "750\n");
    lab.cmd(&["cp", d.to_str().unwrap(), "web:/tmp/new"])
        .expect_code(0);
    assert_eq!(sh(&lab, "cat /tmp/new/site/sub/a"), "A");
    sh(&lab, "mkdir /tmp/flat");
    lab.cmd(&["cp", &format!("{}/.", d.display()), "web:/tmp/flat"])
        .expect_code(0);
    assert_eq!(sh(&lab, "ls /tmp/flat"), "link\nsub\n");

    // Out: a file to a directory, a file to a new name, a directory.
    sh(
        &lab,
        "echo out > /tmp/o; chmod 604 /tmp/o; mkdir -p /tmp/od/x; echo y > /tmp/od/x/y",
    );
    let out = tempfile::tempdir().unwrap();
    lab.cmd(&["cp", "web:/tmp/o", out.path().to_str().unwrap()])
        .expect_code(0);
    let o = out.path().join("o");
    assert_eq!(std::fs::read_to_string(&o).unwrap(), "out\n");
    assert_eq!(std::fs::metadata(&o).unwrap().mode() & 0o7777, 0o604);
    lab.cmd(&[
        "cp",
        "web:/etc/hostname",
        out.path().join("hn").to_str().unwrap(),
    ])
    .expect_code(0);
    assert_eq!(
        std::fs::read_to_string(out.path().join("hn"))
            .unwrap()
            .trim(),
        sh(&lab, "hostname").trim()
    );
    lab.cmd(&["cp", "web:/tmp/od", out.path().to_str().unwrap()])
        .expect_code(0);
    assert_eq!(
        std::fs::read_to_string(out.path().join("od/x/y")).unwrap(),
        "y\n"
    );
    // Into the container's root directory.
    lab.cmd(&["cp", f.to_str().unwrap(), "web:/"])
        .expect_code(0);
    assert_eq!(sh(&lab, "cat /index.html"), "second\n");
    // A relative host path is relative to the working directory.
    let o = lab
        .command(&["cp", "web:/tmp/o", "rel"])
        .current_dir(out.path())
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{o:?}");
    assert!(out.path().join("rel").is_file());
}

#[test]
fn owners_are_root_without_a_and_kept_with_a() {
    let lab = with_container(&[]);
    let host = tempfile::tempdir().unwrap();
    let f = host.path().join("owned");
    std::fs::write(&f, "x").unwrap();
    std::os::unix::fs::chown(&f, Some(1234), Some(5678)).unwrap();
    lab.cmd(&["cp", f.to_str().unwrap(), "web:/tmp/plain"])
        .expect_code(0);
    lab.cmd(&["cp", "-a", f.to_str().unwrap(), "web:/tmp/archived"])
        .expect_code(0);
    assert_eq!(
        sh(&lab, "stat -c %u:%g /tmp/plain /tmp/archived"),
        "0:0\n1234:5678\n"
    );
    // Out: whoever runs cp owns the copy (root here).
    sh(&lab, "echo z > /tmp/z; chown 42:43 /tmp/z");
    let out = tempfile::tempdir().unwrap();
    lab.cmd(&["cp", "web:/tmp/z", out.path().to_str().unwrap()])
        .expect_code(0);
    let m = std::fs::metadata(out.path().join("z")).unwrap();
    assert_eq!((m.uid(), m.gid()), (0, 0));
    // A setuid/setgid file the container made would be a root setuid program on the host:
    // the bits are dropped on the way out (the other mode bits kept).
    sh(&lab, "echo '#!/bin/sh' > /tmp/suid; chmod 6755 /tmp/suid");
    lab.cmd(&["cp", "web:/tmp/suid", out.path().to_str().unwrap()])
        .expect_code(0);
    let m = std::fs::metadata(out.path().join("suid")).unwrap();
    assert_eq!(m.mode() & 0o7777, 0o755);
}

#[test]
fn a_stopped_container_is_copied_into_and_out_of() {
    for layers in ["overlay", "copy"] {
        let lab = with_container(&["--layers", layers]);
        sh(&lab, "echo before > /tmp/kept");
        stop(&lab);
        let host = tempfile::tempdir().unwrap();
        let f = host.path().join("new");
        std::fs::write(&f, "while stopped\n").unwrap();
        lab.cmd(&["cp", f.to_str().unwrap(), "web:/tmp/"])
            .expect_code(0);
        lab.cmd(&["cp", "web:/tmp/kept", host.path().to_str().unwrap()])
            .expect_code(0);
        assert_eq!(
            std::fs::read_to_string(host.path().join("kept")).unwrap(),
            "before\n",
            "{layers}"
        );
        lab.cmd(&[
            "cp",
            "web:/tmp/new",
            host.path().join("back").to_str().unwrap(),
        ])
        .expect_code(0);
        assert_eq!(
            std::fs::read_to_string(host.path().join("back")).unwrap(),
            "while stopped\n",
            "{layers}"
        );
        // Nothing stays mounted on the host for it.
        let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        assert!(
            !mounts.contains(lab.root().to_str().unwrap()),
            "{layers}: {mounts}"
        );
        // The container can be removed afterwards (no lock, no mount left).
        lab.cmd(&["rm", "web"]).expect_code(0);
    }
}

#[test]
fn tar_streams_on_stdin_and_stdout() {
    let lab = with_container(&[]);
    sh(&lab, "mkdir -p /tmp/t/d; echo 1 > /tmp/t/d/one");
    let out = lab.command(&["cp", "web:/tmp/t", "-"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let mut names: Vec<String> = tar::Archive::new(&out.stdout[..])
        .entries()
        .unwrap()
        .map(|e| e.unwrap().path().unwrap().display().to_string())
        .collect();
    names.sort();
    assert_eq!(names, ["t", "t/d", "t/d/one"]);

    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_size(3);
    h.set_mode(0o600);
    b.append_data(&mut h, "in/streamed", &b"abc"[..]).unwrap();
    let data = b.into_inner().unwrap();
    let mut child = lab
        .command(&["cp", "-", "web:/tmp"])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), &data).unwrap();
    assert_eq!(child.wait().unwrap().code(), Some(0));
    assert_eq!(
        sh(&lab, "cat /tmp/in/streamed; stat -c %a /tmp/in/streamed"),
        "abc600\n"
    );
    // The root itself is a directory like any other.
    let mut child = lab
        .command(&["cp", "-", "web:/"])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), &data).unwrap();
    assert_eq!(child.wait().unwrap().code(), Some(0));
    assert_eq!(sh(&lab, "cat /in/streamed"), "abc");
    // A stream needs an existing directory.
    let o = lab.command(&["cp", "-", "web:/tmp/none"]).output().unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("must be an existing directory"));
}

#[test]
fn bad_input_is_a_clear_error_with_exit_code_1() {
    let lab = with_container(&[]);
    let host = tempfile::tempdir().unwrap();
    let f = host.path().join("f");
    std::fs::write(&f, "x").unwrap();
    let fs = f.to_str().unwrap();
    let cases: &[(&[&str], &str)] = &[
        (&["cp", fs, "nosuch:/tmp"], "no such container: nosuch"),
        (
            &["cp", fs, "web:/missing/dir/f"],
            "parent directory /missing/dir does not exist",
        ),
        (&["cp", fs, "web:/tmp/newdir/"], "must exist"),
        (
            &["cp", "web:/nope", host.path().to_str().unwrap()],
            "could not find the file /nope in container web",
        ),
        (
            &["cp", "/no/such/file", "web:/tmp"],
            "could not find the file /no/such/file on this host",
        ),
        (
            &["cp", host.path().to_str().unwrap(), "web:/etc/passwd"],
            "cannot copy a directory",
        ),
        (&["cp", fs, "web:/etc/passwd/"], "not a directory"),
        (&["cp", fs, "other"], "must specify at least one container"),
        (
            &["cp", "web:/a", "web:/b"],
            "copying between containers is not supported",
        ),
    ];
    for (args, want) in cases {
        let o = lab.cmd(args);
        o.expect_code(1);
        assert!(o.stderr.contains(want), "{args:?}: {}", o.stderr);
    }
    // Nothing was created by the failed copies.
    assert_eq!(sh(&lab, "ls /tmp"), "");
}

/// The hostile cases: the container's /tmp/x is a symlink to /etc, /tmp/r to /. A copy into
/// or out of them stays in the container's files, running or stopped.
#[test]
fn symlinks_in_the_container_never_reach_the_host() {
    for stopped in [false, true] {
        let lab = with_container(&[]);
        sh(
            &lab,
            "ln -s /etc /tmp/x; ln -s / /tmp/r; ln -s ../../../../../etc /tmp/up",
        );
        let secret = tempfile::tempdir().unwrap();
        let secret_file = secret.path().join("secret");
        std::fs::write(&secret_file, "host secret").unwrap();
        let link = format!("ln -s {} /tmp/s", secret_file.display());
        sh(&lab, &link);
        let container_passwd = sh(&lab, "cat /etc/passwd");
        if stopped {
            stop(&lab);
        }
        let watched = [
            Path::new("/etc/passwd").to_path_buf(),
            Path::new("/etc/dockling-cp-test").to_path_buf(),
            secret_file.clone(),
        ];
        let before: Vec<_> = watched
            .iter()
            .map(|p| (p.exists(), p.exists().then(|| fingerprint(p))))
            .collect();
        let host = tempfile::tempdir().unwrap();
        let evil = host.path().join("dockling-cp-test");
        std::fs::write(&evil, "evil\n").unwrap();
        let passwd = host.path().join("passwd");
        std::fs::write(&passwd, "evil:x:0:0::/:/bin/sh\n").unwrap();
        for dest in ["web:/tmp/x/", "web:/tmp/r/etc/", "web:/tmp/up/"] {
            lab.cmd(&["cp", evil.to_str().unwrap(), dest])
                .expect_code(0);
        }
        lab.cmd(&["cp", passwd.to_str().unwrap(), "web:/tmp/r/etc/passwd"])
            .expect_code(0);
        // Out through the links: the container's /etc/passwd, never the host's.
        let out = tempfile::tempdir().unwrap();
        lab.cmd(&[
            "cp",
            "web:/tmp/x/group",
            out.path().join("group").to_str().unwrap(),
        ])
        .expect_code(0);
        lab.cmd(&[
            "cp",
            "-L",
            "web:/tmp/s",
            out.path().join("s").to_str().unwrap(),
        ])
        .expect_code(1);
        assert!(!out.path().join("s").exists());
        // Without -L the link itself comes out, as a link.
        lab.cmd(&["cp", "web:/tmp/s", out.path().join("s").to_str().unwrap()])
            .expect_code(0);
        assert_eq!(
            std::fs::read_link(out.path().join("s")).unwrap(),
            secret_file
        );
        let after: Vec<_> = watched
            .iter()
            .map(|p| (p.exists(), p.exists().then(|| fingerprint(p))))
            .collect();
        assert_eq!(before, after, "stopped={stopped}: a host file changed");
        assert!(!Path::new("/etc/dockling-cp-test").exists());

        // It all landed in the container's /etc.
        if stopped {
            lab.cmd(&[
                "cp",
                "web:/etc/dockling-cp-test",
                out.path().join("t").to_str().unwrap(),
            ])
            .expect_code(0);
            assert_eq!(
                std::fs::read_to_string(out.path().join("t")).unwrap(),
                "evil\n"
            );
            lab.cmd(&[
                "cp",
                "web:/etc/passwd",
                out.path().join("p").to_str().unwrap(),
            ])
            .expect_code(0);
            assert_eq!(
                std::fs::read_to_string(out.path().join("p")).unwrap(),
                "evil:x:0:0::/:/bin/sh\n"
            );
        } else {
            assert_eq!(sh(&lab, "cat /etc/dockling-cp-test"), "evil\n");
            assert_eq!(sh(&lab, "cat /etc/passwd"), "evil:x:0:0::/:/bin/sh\n");
            assert_ne!(container_passwd, "evil:x:0:0::/:/bin/sh\n");
        }
    }
}

#[test]
fn cp_is_traced() {
    let lab = with_container(&[]);
    let o = lab.cmd(&["cp", "--trace", "web:/etc/hostname", "-"]);
    o.expect_code(0);
    assert!(o.stderr.contains("openat2"), "{}", o.stderr);
    assert!(o.stderr.contains("/root"), "{}", o.stderr);
}

/// Out of the container, a symlink is copied as a link (never followed to the host's `/`), and
/// a device node is not copied at all: a container must not hand the host a `/dev/mem`.
#[test]
fn a_directory_copied_out_keeps_links_as_links_and_leaves_device_nodes_behind() {
    let lab = with_container(&[]);
    sh(
        &lab,
        "mkdir /tmp/d; ln -s / /tmp/d/esc; ln -s /etc/shadow /tmp/d/shadow; mknod /tmp/d/mem c 1 1; mkfifo /tmp/d/fifo; echo f > /tmp/d/f",
    );
    let out = tempfile::tempdir().unwrap();
    let o = lab.cmd(&["cp", "web:/tmp/d", out.path().to_str().unwrap()]);
    o.expect_code(0);
    assert!(o.stderr.contains("device node not copied"), "{}", o.stderr);
    let d = out.path().join("d");
    let mut names: Vec<String> = std::fs::read_dir(&d)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["esc", "f", "fifo", "shadow"]);
    assert_eq!(std::fs::read_link(d.join("esc")).unwrap(), Path::new("/"));
    assert_eq!(
        std::fs::read_link(d.join("shadow")).unwrap(),
        Path::new("/etc/shadow")
    );
    assert!(std::fs::symlink_metadata(d.join("fifo"))
        .unwrap()
        .file_type()
        .is_fifo());
}
