//! `dockling diff` and `dockling commit`: what a container changed, read from its upper
//! directory (or its `--layers copy` copy) as `docker diff` prints it, and made into an image
//! whose new layer is an OCI layer tar (whiteouts, opaque directories, hard links, xattrs,
//! FIFOs; sockets skipped), reproducible, that runs, and that umoci, skopeo and podman read.

mod common;
use std::collections::BTreeMap;
use std::io::Read;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use common::{wait_until, Lab};

/// What the container of every test does to the busybox image: appends to a file of the
/// image, deletes one, adds a directory with a file, and replaces a directory (`/home`, made
/// again: overlayfs marks it opaque).
const CHANGES: &str = "echo extra >> /etc/passwd; rm /etc/group; mkdir /root/x; echo y > /root/x/y; rm -rf /home; mkdir /home; touch /home/n";

/// `docker diff` of [`CHANGES`] on overlayfs.
const OVERLAY_DIFF: &str =
    "C /etc\nD /etc/group\nC /etc/passwd\nD /home\nA /home/n\nC /root\nA /root/x\nA /root/x/y\n";

fn container_id(lab: &Lab, name: &str) -> String {
    let o = lab.cmd(&["inspect", "-f", "{{.Id}}", name]);
    o.expect_code(0);
    o.stdout.trim().to_string()
}

fn upper(lab: &Lab, name: &str) -> PathBuf {
    lab.root()
        .join("containers")
        .join(container_id(lab, name))
        .join("upper")
}

/// A lab whose stopped container `box` made [`CHANGES`] (extra `run` flags before the image).
fn changed(extra: &[&str]) -> Lab {
    let lab = Lab::with_busybox();
    let mut args = vec!["run", "--name", "box", "--network", "none"];
    args.extend_from_slice(extra);
    args.extend_from_slice(&["busybox", "sh", "-c", CHANGES]);
    lab.cmd(&args).expect_code(0);
    lab
}

/// The blob `digest` of the lab's store.
fn blob(lab: &Lab, digest: &str) -> Vec<u8> {
    let hex = digest.trim_start_matches("sha256:");
    std::fs::read(lab.root().join("oci/blobs/sha256").join(hex)).unwrap()
}

/// The manifest of `reference` (`docker.io/library/...`) from the store's index.
fn manifest(lab: &Lab, reference: &str) -> serde_json::Value {
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(lab.root().join("oci/index.json")).unwrap()).unwrap();
    let m = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["annotations"]["org.opencontainers.image.ref.name"] == reference)
        .unwrap_or_else(|| panic!("{reference} is not in the index: {index}"));
    serde_json::from_slice(&blob(lab, m["digest"].as_str().unwrap())).unwrap()
}

/// One entry of a layer tar.
#[derive(Debug, Clone)]
struct Entry {
    kind: tar::EntryType,
    mode: u32,
    uid: u64,
    mtime: u64,
    link: Option<String>,
    xattrs: BTreeMap<String, Vec<u8>>,
    data: Vec<u8>,
}

/// The top layer of `reference`, entry by entry in stream order.
fn top_layer(lab: &Lab, reference: &str) -> Vec<(String, Entry)> {
    let m = manifest(lab, reference);
    let layers = m["layers"].as_array().unwrap();
    let top = layers.last().unwrap();
    assert_eq!(
        top["mediaType"], "application/vnd.oci.image.layer.v1.tar+gzip",
        "{m}"
    );
    let gz = blob(lab, top["digest"].as_str().unwrap());
    let mut tar = Vec::new();
    flate2::read::GzDecoder::new(&gz[..])
        .read_to_end(&mut tar)
        .unwrap();
    let mut a = tar::Archive::new(&tar[..]);
    let mut out = Vec::new();
    for e in a.entries().unwrap() {
        let mut e = e.unwrap();
        let mut xattrs = BTreeMap::new();
        if let Some(pax) = e.pax_extensions().unwrap() {
            for x in pax {
                let x = x.unwrap();
                if let Some(k) = x.key().unwrap().strip_prefix("SCHILY.xattr.") {
                    xattrs.insert(k.to_string(), x.value_bytes().to_vec());
                }
            }
        }
        let h = e.header().clone();
        let name = e.path().unwrap().display().to_string();
        let link = e.link_name().unwrap().map(|l| l.display().to_string());
        let mut data = Vec::new();
        e.read_to_end(&mut data).unwrap();
        out.push((
            name,
            Entry {
                kind: h.entry_type(),
                mode: h.mode().unwrap(),
                uid: h.uid().unwrap(),
                mtime: h.mtime().unwrap(),
                link,
                xattrs,
                data,
            },
        ));
    }
    out
}

/// The image config of `image` (by name), from the store.
fn config(lab: &Lab, reference: &str) -> serde_json::Value {
    let m = manifest(lab, reference);
    serde_json::from_slice(&blob(lab, m["config"]["digest"].as_str().unwrap())).unwrap()
}

#[test]
fn diff_of_a_stopped_container_reads_its_upper_directory_as_docker_diff() {
    let lab = changed(&[]);
    // The whiteout and the opaque mark are there, in overlayfs's spelling.
    let up = upper(&lab, "box");
    let st = std::fs::symlink_metadata(up.join("etc/group")).unwrap();
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    assert!(st.file_type().is_char_device() && st.rdev() == 0, "{st:?}");
    let o = lab.cmd(&["diff", "box"]);
    o.expect_code(0);
    assert_eq!(o.stdout, OVERLAY_DIFF);
    // The management command's spelling is the same command.
    let o = lab.cmd(&["container", "diff", "box"]);
    o.expect_code(0);
    assert_eq!(o.stdout, OVERLAY_DIFF);
}

#[test]
fn a_fresh_container_has_no_changes_though_the_engine_made_its_mount_points() {
    let lab = Lab::with_busybox();
    lab.cmd(&[
        "run",
        "--name",
        "box",
        "--network",
        "none",
        "busybox",
        "true",
    ])
    .expect_code(0);
    assert!(upper(&lab, "box").join("etc/hostname").exists());
    let o = lab.cmd(&["diff", "box"]);
    o.expect_code(0);
    assert_eq!(o.stdout, "");
    // Nor does its layer hold them (nor the /etc they are in).
    lab.cmd(&["commit", "box", "fresh:1"]).expect_code(0);
    let entries = top_layer(&lab, "docker.io/library/fresh:1");
    assert!(entries.is_empty(), "{entries:?}");
}

#[test]
fn diff_of_a_running_container_follows_its_changes() {
    let lab = Lab::with_busybox();
    lab.cmd(&[
        "run",
        "-d",
        "--name",
        "box",
        "--network",
        "none",
        "busybox",
        "sh",
        "-c",
        &format!("{CHANGES}; touch /tmp/done; sleep 1000"),
    ])
    .expect_code(0);
    wait_until(Duration::from_secs(20), "the changes are made", || {
        let o = lab.cmd(&["diff", "box"]);
        o.expect_code(0);
        o.stdout.contains("A /tmp/done").then_some(())
    });
    let o = lab.cmd(&["diff", "box"]);
    o.expect_code(0);
    let want = OVERLAY_DIFF.to_string() + "C /tmp\nA /tmp/done\n";
    assert_eq!(o.stdout, want);
    lab.cmd(&["rm", "-f", "box"]).expect_code(0);
}

#[test]
fn diff_of_a_layers_copy_container_compares_the_copy_with_the_image() {
    let lab = changed(&["--layers", "copy"]);
    assert!(
        !upper(&lab, "box").exists(),
        "--layers copy has no upper dir"
    );
    let o = lab.cmd(&["diff", "box"]);
    o.expect_code(0);
    // Docker's naive diff: in each directory what is new or changed, then what is gone;
    // /home was made again, so it is a directory that lost student/ and gained n.
    assert_eq!(
        o.stdout,
        "C /etc\nC /etc/passwd\nD /etc/group\nC /home\nA /home/n\nD /home/student\nC /root\nA /root/x\nA /root/x/y\n"
    );
}

#[test]
fn bad_input_gets_docker_s_errors_and_exit_codes() {
    let lab = Lab::with_busybox();
    let images = lab.cmd(&["images", "-q"]).stdout;
    for args in [&["diff", "nosuch"][..], &["commit", "nosuch", "x:1"]] {
        let o = lab.cmd(args);
        o.expect_code(1);
        assert_eq!(
            o.stderr, "dockling: No such container: nosuch\n",
            "{args:?}"
        );
    }
    let o = lab.cmd(&["diff", "--bogus", "box"]);
    o.expect_code(125);
    let o = lab.cmd(&["commit"]);
    o.expect_code(125);
    lab.cmd(&[
        "run",
        "--name",
        "box",
        "--network",
        "none",
        "busybox",
        "true",
    ])
    .expect_code(0);
    // A bad -c line: refused by name before anything is written.
    for (change, says) in [
        ("RUN echo", "only CMD, ENTRYPOINT, ENV"),
        ("ENV", "ENV needs NAME=value"),
        ("VOLUME data", "VOLUME needs absolute paths"),
    ] {
        let o = lab.cmd(&["commit", "-c", change, "box", "x:1"]);
        o.expect_code(1);
        assert!(o.stderr.contains(says), "{change}: {}", o.stderr);
    }
    let o = lab.cmd(&["commit", "box", "Bad:Name"]);
    o.expect_code(1);
    assert_eq!(
        lab.cmd(&["images", "-q"]).stdout,
        images,
        "nothing was tagged"
    );
}

#[test]
fn a_committed_image_carries_the_changes_and_runs() {
    let lab = changed(&[]);
    let o = lab.cmd(&[
        "commit",
        "-a",
        "Ada <ada@example.org>",
        "-m",
        "add x",
        "-c",
        "ENV A=1 B=\"two words\"",
        "-c",
        "LABEL lesson=15",
        "-c",
        "EXPOSE 8080",
        "-c",
        "VOLUME /data",
        "-c",
        "WORKDIR /root",
        "-c",
        "STOPSIGNAL SIGINT",
        "-c",
        "USER root",
        "box",
        "my-image:0.1",
    ]);
    o.expect_code(0);
    let id = o.stdout.trim().to_string();
    assert!(
        id.starts_with("sha256:") && id.len() == 71,
        "Docker prints the new image's id: {id}"
    );
    let cfg = config(&lab, "docker.io/library/my-image:0.1");
    let c = &cfg["config"];
    assert_eq!(cfg["author"], "Ada <ada@example.org>");
    assert_eq!(c["Cmd"], serde_json::json!(["sh", "-c", CHANGES]));
    let env: Vec<&str> = c["Env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(
        env.contains(&"A=1") && env.contains(&"B=two words"),
        "{env:?}"
    );
    assert!(!env.iter().any(|e| e.starts_with("HOSTNAME=")), "{env:?}");
    assert_eq!(c["Labels"]["lesson"], "15");
    assert_eq!(c["ExposedPorts"]["8080/tcp"], serde_json::json!({}));
    assert_eq!(c["Volumes"]["/data"], serde_json::json!({}));
    assert_eq!(c["WorkingDir"], "/root");
    assert_eq!(c["StopSignal"], "SIGINT");
    assert_eq!(c["User"], "root");
    let history = cfg["history"].as_array().unwrap();
    let last = history.last().unwrap();
    assert_eq!(last["comment"], "add x");
    assert_eq!(last["author"], "Ada <ada@example.org>");
    assert_eq!(last["created_by"], format!("sh -c {CHANGES}"));
    let diff_ids = cfg["rootfs"]["diff_ids"].as_array().unwrap();
    assert_eq!(diff_ids.len(), 2);
    // The base image's layer blob is the same blob, not a copy.
    let base = manifest(&lab, "docker.io/library/busybox:latest");
    let mine = manifest(&lab, "docker.io/library/my-image:0.1");
    assert_eq!(mine["layers"][0], base["layers"][0]);
    // It runs, and sees what the container did.
    let out = lab.ok(&[
        "--network",
        "none",
        "my-image:0.1",
        "sh",
        "-c",
        "cat /root/x/y; tail -1 /etc/passwd; ls /home; test -e /etc/group || echo no-group; pwd; echo $A $B",
    ]);
    assert_eq!(out, "y\nextra\nn\nno-group\n/root\n1 two words\n");
    let h = lab.cmd(&["history", "my-image:0.1"]);
    h.expect_code(0);
    assert_eq!(h.stdout.lines().count(), 3, "{}", h.stdout);
    assert!(h.stdout.contains("add x"), "{}", h.stdout);
}

#[test]
fn the_layer_is_the_oci_spelling_of_the_upper_directory() {
    let lab = changed(&[]);
    let up = upper(&lab, "box");
    // What a shell cannot make in busybox: a hard link pair, a FIFO, an xattr, a socket.
    std::fs::write(up.join("root/x/a"), "linked").unwrap();
    std::fs::hard_link(up.join("root/x/a"), up.join("root/x/b")).unwrap();
    nix::unistd::mkfifo(
        &up.join("root/x/fifo"),
        nix::sys::stat::Mode::from_bits_truncate(0o640),
    )
    .unwrap();
    let key = std::ffi::CString::new("user.lesson").unwrap();
    let path = std::ffi::CString::new(up.join("root/x/y").to_str().unwrap()).unwrap();
    // SAFETY: valid C strings and a live buffer.
    let rc = unsafe { libc::setxattr(path.as_ptr(), key.as_ptr(), b"15".as_ptr().cast(), 2, 0) };
    assert_eq!(rc, 0, "setxattr: {}", std::io::Error::last_os_error());
    nix::sys::stat::mknod(
        &up.join("root/x/sock"),
        nix::sys::stat::SFlag::S_IFSOCK,
        nix::sys::stat::Mode::from_bits_truncate(0o755),
        0,
    )
    .unwrap();
    let o = lab.cmd(&["commit", "box", "layer:1"]);
    o.expect_code(0);
    assert!(
        o.stderr
            .contains("warning: skipping /root/x/sock since it is a socket"),
        "{}",
        o.stderr
    );
    let entries = top_layer(&lab, "docker.io/library/layer:1");
    let names: Vec<&str> = entries.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "etc",
            "etc/.wh.group",
            "etc/passwd",
            "home",
            "home/.wh..wh..opq",
            "home/n",
            "root",
            "root/x",
            "root/x/a",
            "root/x/b",
            "root/x/fifo",
            "root/x/y",
        ]
    );
    let e: BTreeMap<&str, &Entry> = entries.iter().map(|(n, e)| (n.as_str(), e)).collect();
    assert_eq!(e["etc/.wh.group"].kind, tar::EntryType::Regular);
    assert_eq!(e["etc/.wh.group"].data, b"");
    assert_eq!(e["home/.wh..wh..opq"].kind, tar::EntryType::Regular);
    assert!(
        !e["home"].xattrs.keys().any(|k| k.contains("overlay")),
        "overlayfs's own xattrs stay out: {:?}",
        e["home"].xattrs
    );
    assert_eq!(e["root/x/b"].kind, tar::EntryType::Link);
    assert_eq!(e["root/x/b"].link.as_deref(), Some("root/x/a"));
    assert_eq!(e["root/x/fifo"].kind, tar::EntryType::Fifo);
    assert_eq!(e["root/x/fifo"].mode, 0o640);
    assert_eq!(e["root/x/y"].xattrs["user.lesson"], b"15");
    assert_eq!(e["root"].mode, 0o700, "modes are kept");
    assert!(e["etc/passwd"].data.ends_with(b"extra\n"));
    // Owners and mtimes are the upper directory's own.
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(up.join("etc/passwd")).unwrap();
    assert_eq!(e["etc/passwd"].mtime, m.mtime() as u64);
    assert_eq!(e["etc/passwd"].uid, u64::from(m.uid()));
    // Committed again, the same bytes: the same diff_id.
    let again = lab.cmd(&["commit", "box", "layer:2"]);
    again.expect_code(0);
    assert_eq!(
        manifest(&lab, "docker.io/library/layer:1")["layers"][1],
        manifest(&lab, "docker.io/library/layer:2")["layers"][1]
    );
}

#[test]
fn symlinks_a_container_plants_are_archived_as_symlinks_never_followed() {
    let lab = Lab::with_busybox();
    lab.cmd(&[
        "run",
        "--name",
        "box",
        "--network",
        "none",
        "busybox",
        "sh",
        "-c",
        "ln -s / /rootlink; mkdir /d; ln -s /etc/shadow /d/shadow; ln -s ../../../../.. /d/up",
    ])
    .expect_code(0);
    let o = lab.cmd(&["diff", "box"]);
    o.expect_code(0);
    assert_eq!(o.stdout, "A /d\nA /d/shadow\nA /d/up\nA /rootlink\n");
    lab.cmd(&["commit", "box", "links:1"]).expect_code(0);
    let entries = top_layer(&lab, "docker.io/library/links:1");
    let got: Vec<(&str, tar::EntryType, Option<&str>)> = entries
        .iter()
        .map(|(n, e)| (n.as_str(), e.kind, e.link.as_deref()))
        .collect();
    assert_eq!(
        got,
        [
            ("d", tar::EntryType::Directory, None),
            ("d/shadow", tar::EntryType::Symlink, Some("/etc/shadow")),
            ("d/up", tar::EntryType::Symlink, Some("../../../../..")),
            ("rootlink", tar::EntryType::Symlink, Some("/")),
        ]
    );
    assert!(
        entries.iter().all(|(_, e)| e.data.is_empty()),
        "no host content"
    );
}

#[test]
fn source_date_epoch_makes_the_image_reproducible_and_clamps_mtimes() {
    let lab = changed(&[]);
    let epoch: &std::ffi::OsStr = "1000000000".as_ref();
    let a = lab.cmd_env(&["commit", "box", "r:1"], &[("SOURCE_DATE_EPOCH", epoch)]);
    a.expect_code(0);
    let b = lab.cmd_env(&["commit", "box", "r:2"], &[("SOURCE_DATE_EPOCH", epoch)]);
    b.expect_code(0);
    assert_eq!(a.stdout, b.stdout, "the same image id twice");
    let cfg = config(&lab, "docker.io/library/r:1");
    assert_eq!(cfg["created"], "2001-09-09T01:46:40Z");
    for (name, e) in top_layer(&lab, "docker.io/library/r:1") {
        assert!(e.mtime <= 1_000_000_000, "{name}: {}", e.mtime);
    }
    let bad = lab.cmd_env(
        &["commit", "box", "r:3"],
        &[("SOURCE_DATE_EPOCH", "soon".as_ref())],
    );
    bad.expect_code(1);
    assert!(
        bad.stderr.contains("SOURCE_DATE_EPOCH=soon"),
        "{}",
        bad.stderr
    );
}

#[test]
fn a_running_container_is_frozen_while_it_is_committed_and_thawed_after() {
    let lab = Lab::with_busybox();
    lab.cmd(&[
        "run",
        "-d",
        "--name",
        "box",
        "--network",
        "none",
        "busybox",
        "sh",
        "-c",
        "echo hi > /tmp/run; sleep 1000",
    ])
    .expect_code(0);
    wait_until(Duration::from_secs(20), "the file is written", || {
        lab.cmd(&["diff", "box"])
            .stdout
            .contains("A /tmp/run")
            .then_some(())
    });
    let o = lab.cmd(&["commit", "--trace=json", "box", "live:1"]);
    o.expect_code(0);
    let events: Vec<serde_json::Value> = o
        .stderr
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let steps: Vec<&str> = events
        .iter()
        .filter(|e| e["type"] == "step")
        .map(|e| e["step"].as_str().unwrap())
        .collect();
    assert_eq!(
        steps,
        [
            "commit.resolve",
            "commit.pause",
            "commit.walk",
            "commit.layer",
            "commit.image",
            "commit.unpause"
        ]
    );
    let writes = |step: &str| -> Vec<String> {
        events
            .iter()
            .filter(|e| e["type"] == "syscall" && e["step"] == step)
            .map(|e| e.to_string())
            .collect()
    };
    let freeze = writes("commit.pause");
    assert!(
        freeze
            .iter()
            .any(|w| w.contains("FROZEN") || w.contains("cgroup.freeze")),
        "{freeze:?}"
    );
    let thaw = writes("commit.unpause");
    assert!(
        thaw.iter()
            .any(|w| w.contains("THAWED") || w.contains("cgroup.freeze")),
        "{thaw:?}"
    );
    assert!(
        events.iter().any(|e| e["type"] == "note"
            && e["step"] == "commit.walk"
            && e["message"].as_str().unwrap().contains("whiteouts")),
        "the walk is summed up in a note"
    );
    // Thawed: it still answers.
    let e = lab.cmd(&["exec", "box", "cat", "/tmp/run"]);
    e.expect_code(0);
    assert_eq!(e.stdout, "hi\n");
    assert_eq!(
        lab.ok(&["--network", "none", "live:1", "cat", "/tmp/run"]),
        "hi\n"
    );
    // --pause=false freezes nothing.
    let o = lab.cmd(&["commit", "--pause=false", "--trace=json", "box", "live:2"]);
    o.expect_code(0);
    assert!(!o.stderr.contains("FROZEN"), "{}", o.stderr);
    // explain shows the freezer writes it would make, and makes none.
    let images = lab.cmd(&["images", "-q"]).stdout;
    let o = lab.cmd(&["explain", "commit", "box", "live:3"]);
    o.expect_code(0);
    assert!(o.stdout.contains("2. commit.pause"), "{}", o.stdout);
    assert!(
        o.stdout.contains("FROZEN") || o.stdout.contains("cgroup.freeze"),
        "{}",
        o.stdout
    );
    assert_eq!(lab.cmd(&["images", "-q"]).stdout, images);
    assert_eq!(
        lab.cmd(&["inspect", "-f", "{{.State.Paused}}", "box"])
            .stdout
            .trim(),
        "false"
    );
    lab.cmd(&["rm", "-f", "box"]).expect_code(0);
}

#[test]
fn a_layers_copy_container_commits_what_differs_from_its_image() {
    let lab = changed(&["--layers", "copy"]);
    lab.cmd(&["commit", "box", "copied:1"]).expect_code(0);
    let names: Vec<String> = top_layer(&lab, "docker.io/library/copied:1")
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    assert_eq!(
        names,
        [
            "etc",
            "etc/.wh.group",
            "etc/passwd",
            "home",
            "home/.wh.student",
            "home/n",
            "root",
            "root/x",
            "root/x/y"
        ]
    );
    let out = lab.ok(&[
        "--network",
        "none",
        "copied:1",
        "sh",
        "-c",
        "cat /root/x/y; ls /home; test -e /etc/group || echo no-group",
    ]);
    assert_eq!(out, "y\nn\nno-group\n");
}

#[test]
fn explain_commit_plans_without_doing_anything() {
    let lab = changed(&[]);
    let images = lab.cmd(&["images", "-q"]).stdout;
    let o = lab.cmd(&["explain", "commit", "box", "x:1"]);
    o.expect_code(0);
    assert!(
        o.stdout.starts_with("Plan for `dockling commit box x:1`"),
        "{}",
        o.stdout
    );
    for step in [
        "commit.resolve",
        "commit.walk",
        "commit.layer",
        "commit.image",
    ] {
        assert!(o.stdout.contains(step), "{step}: {}", o.stdout);
    }
    assert!(
        o.stdout.contains("[off: the container is not running]"),
        "{}",
        o.stdout
    );
    assert!(o.stdout.contains("  D /etc/group\n"), "{}", o.stdout);
    assert_eq!(
        lab.cmd(&["images", "-q"]).stdout,
        images,
        "nothing was made"
    );
}

fn peer(name: &str) -> Command {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {name}")])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    assert!(
        found,
        "{name} is missing: this test needs it (scripts/test installs it: apt-get install {name})"
    );
    Command::new(name)
}

fn must(c: &mut Command, what: &str) -> String {
    let o = c.output().unwrap();
    assert!(
        o.status.success(),
        "{what}: {}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn umoci_and_skopeo_read_the_committed_image() {
    let lab = changed(&[]);
    lab.cmd(&["commit", "-m", "for umoci", "box", "my-image:0.1"])
        .expect_code(0);
    let oci = lab.root().join("oci");
    // skopeo: inspect, then copy into an OCI directory of its own (every digest checked).
    let layout = format!("oci:{}:docker.io/library/my-image:0.1", oci.display());
    let inspect = must(
        peer("skopeo").args(["inspect", "--config", &layout]),
        "skopeo inspect",
    );
    assert!(inspect.contains("for umoci"), "{inspect}");
    let out = tempfile::tempdir().unwrap();
    let dest = format!("oci:{}:copy", out.path().join("layout").display());
    must(peer("skopeo").args(["copy", &layout, &dest]), "skopeo copy");
    // umoci: unpack the copy into a bundle; the whiteout removed /etc/group, the opaque
    // /home holds only n.
    let bundle = out.path().join("bundle");
    must(
        peer("umoci").args([
            "unpack",
            "--image",
            &format!("{}:copy", out.path().join("layout").display()),
            bundle.to_str().unwrap(),
        ]),
        "umoci unpack",
    );
    let rootfs = bundle.join("rootfs");
    let passwd = std::fs::read_to_string(rootfs.join("etc/passwd")).unwrap();
    assert!(passwd.ends_with("extra\n"), "{passwd}");
    assert!(rootfs.join("bin/busybox").is_file());
    assert!(
        !rootfs.join("etc/group").exists(),
        "the whiteout removed it"
    );
    let home: Vec<String> = std::fs::read_dir(rootfs.join("home"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(home, ["n"], "the opaque directory hides student/");
    assert_eq!(
        std::fs::read_to_string(rootfs.join("root/x/y")).unwrap(),
        "y\n"
    );
}

#[test]
fn podman_pulls_and_runs_what_was_committed_and_pushed() {
    let lab = changed(&[]);
    let reg = common::registry::DockerRegistry::start();
    let name = reg.name("lesson/my-image:0.1");
    lab.cmd(&["commit", "box", &name]).expect_code(0);
    lab.cmd(&["push", &name]).expect_code(0);
    let podman = tempfile::tempdir().unwrap();
    let conf = podman.path().join("containers.conf");
    // No CAP_SYS_RESOURCE here: podman's default rlimits (nofile 1048576) cannot be given, so
    // they are set at the hard limits.
    let (_, hard) =
        nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE).unwrap();
    let (_, nproc) =
        nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NPROC).unwrap();
    std::fs::write(
        &conf,
        format!(
            "[containers]\ndefault_ulimits = [\"nofile={hard}:{hard}\", \"nproc={n}:{n}\"]\n",
            n = nproc.min(32768)
        ),
    )
    .unwrap();
    let base = |c: &mut Command| {
        c.env("CONTAINERS_CONF", &conf)
            .env("HOME", podman.path())
            .args([
                "--root",
                podman.path().join("root").to_str().unwrap(),
                "--runroot",
                podman.path().join("run").to_str().unwrap(),
                "--storage-driver",
                "vfs",
            ]);
    };
    let mut pull = peer("podman");
    base(&mut pull);
    must(
        pull.args(["pull", "--tls-verify=false", &name]),
        "podman pull",
    );
    let mut run = peer("podman");
    base(&mut run);
    let out = must(
        run.args([
            "run",
            "--rm",
            "--network",
            "none",
            "--cgroups",
            "disabled",
            &name,
            "sh",
            "-c",
            "cat /root/x/y; ls /home; test -e /etc/group || echo no-group",
        ]),
        "podman run",
    );
    assert_eq!(out, "y\nn\nno-group\n");
}

/// The peak resident size (KiB) of `dockling args…` against `lab`, as `/usr/bin/time` reports it.
fn max_rss_kib(lab: &Lab, args: &[&str]) -> u64 {
    let time = std::path::Path::new("/usr/bin/time");
    assert!(
        time.exists(),
        "/usr/bin/time is needed to measure the commit's memory: install the `time` package"
    );
    let out = Command::new(time)
        .args(["-f", "maxrss_kib=%M", env!("CARGO_BIN_EXE_dockling")])
        .args(args)
        .env("DOCKLING_ROOT", lab.root())
        .env("DOCKLING_CONFIG", lab.dir.path().join("config.yaml"))
        .env("NO_COLOR", "1")
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "dockling {args:?}: {err}");
    err.lines()
        .find_map(|l| l.strip_prefix("maxrss_kib="))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no maxrss in {err}"))
}

#[test]
fn a_large_change_is_committed_in_little_memory() {
    // The layer is streamed through a file: neither the tar nor the gzip blob of a 200 MiB
    // change is ever held in memory (before: about 2 × 200 MiB resident).
    let lab = Lab::with_busybox();
    lab.cmd(&[
        "run",
        "--name",
        "big",
        "--network",
        "none",
        "busybox",
        "sh",
        "-c",
        "dd if=/dev/zero of=/big bs=1M count=200 2>/dev/null && echo tail >> /big",
    ])
    .expect_code(0);
    let rss = max_rss_kib(&lab, &["commit", "big", "big:1"]);
    assert!(
        rss < 100 * 1024,
        "commit of a 200 MiB change peaked at {rss} KiB resident"
    );
    let o = lab.cmd(&[
        "run",
        "--rm",
        "--network",
        "none",
        "big:1",
        "sh",
        "-c",
        "wc -c < /big; tail -c 5 /big",
    ]);
    o.expect_code(0);
    assert_eq!(o.stdout, "209715205\ntail\n");
}
