//! Image housekeeping: `images` sizes, `history`, `image ls|inspect|prune`, retagging.

mod common;
use common::Lab;

fn count(lab: &Lab) -> usize {
    lab.cmd(&["images", "-q"]).stdout.lines().count()
}

#[test]
fn history_sizes_and_prune_follow_docker() {
    let lab = Lab::new();
    let tar = common::busybox_tar();
    let tar = tar.to_str().unwrap();
    // From stdin, so the history line does not depend on where the fixture is.
    let imported = lab
        .command(&[
            "import",
            "-c",
            "CMD [\"sh\"]",
            "-m",
            "from busybox-static",
            "-",
            "busybox",
        ])
        .stdin(std::fs::File::open(tar).unwrap())
        .output()
        .unwrap();
    assert!(imported.status.success(), "{imported:?}");
    let history = lab.cmd(&["history", "busybox"]);
    history.expect_code(0);
    // Columns are as wide as their contents ("Less than a second ago" or "2 seconds ago",
    // depending on how busy the machine is): compare them with the padding collapsed.
    let collapsed = regex::Regex::new(r" {2,}")
        .unwrap()
        .replace_all(&lab.filter(&history.stdout), "  ")
        .into_owned();
    insta::assert_snapshot!(collapsed, @r"
    IMAGE  CREATED  CREATED BY  SIZE  COMMENT
    [ID]  [AGO]  dockling import -  [SIZE]  from busybox-static
    ");
    // SIZE is Docker's: the files' bytes once unpacked (regular files' sizes, symlinks'
    // target lengths), not the tar's length with its headers.
    let images = lab.cmd(&["images"]).stdout;
    let mut tar_size = 0;
    for e in tar::Archive::new(std::fs::File::open(tar).unwrap())
        .entries()
        .unwrap()
    {
        let e = e.unwrap();
        tar_size += match e.header().entry_type() {
            tar::EntryType::Regular => e.size(),
            tar::EntryType::Symlink => e.link_name_bytes().unwrap().len() as u64,
            _ => 0,
        };
    }
    assert!(tar_size < std::fs::metadata(tar).unwrap().len());
    let shown = images
        .lines()
        .nth(1)
        .unwrap()
        .split_whitespace()
        .last()
        .unwrap()
        .to_string();
    let want = format!("{:.2}MB", tar_size as f64 / 1e6);
    assert!(
        want.trim_end_matches('0')
            .trim_end_matches('.')
            .starts_with(shown.trim_end_matches("MB")),
        "images shows {shown}, the layer is {tar_size} bytes:\n{images}"
    );
    assert_eq!(lab.cmd(&["image", "ls"]).stdout, images);
    let inspect: serde_json::Value =
        serde_json::from_str(&lab.cmd(&["image", "inspect", "busybox"]).stdout).unwrap();
    assert_eq!(inspect[0]["Size"], tar_size);
    assert_eq!(inspect[0]["Config"]["Cmd"][0], "sh");

    // Retagging moves a tag; an image another tag still names does not turn into <none>.
    lab.cmd(&["tag", "busybox", "web:1"]).expect_code(0);
    lab.cmd(&["import", tar, "web:1"]).expect_code(0);
    let listed = lab.cmd(&["images"]);
    listed.expect_code(0);
    assert!(listed.stdout.contains("web"), "{}", listed.stdout);
    assert!(!listed.stdout.contains("<none>"), "{}", listed.stdout);
    let nothing = lab.cmd(&["image", "prune", "-f"]);
    nothing.expect_code(0);
    assert_eq!(nothing.stdout, "Total reclaimed space: 0B\n");

    // Re-importing busybox leaves the old one dangling; prune asks first, then removes it.
    lab.cmd(&["import", "-c", "CMD [\"ls\"]", tar, "busybox"])
        .expect_code(0);
    assert!(lab.cmd(&["images"]).stdout.contains("<none>"));
    assert_eq!(count(&lab), 3);
    let mut no = lab.command(&["image", "prune"]);
    no.stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped());
    let mut child = no.spawn().unwrap();
    drop(child.stdin.take());
    let refused = child.wait_with_output().unwrap();
    assert!(refused.status.success());
    assert_eq!(count(&lab), 3, "no answer means no");
    let pruned = lab.cmd(&["image", "prune", "-f"]);
    pruned.expect_code(0);
    assert!(
        pruned
            .stdout
            .starts_with("Deleted Images:\ndeleted: sha256:"),
        "{}",
        pruned.stdout
    );
    assert_eq!(count(&lab), 2);
    // -a removes every image no container uses.
    lab.cmd(&["run", "--name", "keep", "busybox", "true"])
        .expect_code(0);
    lab.cmd(&["image", "prune", "-a", "-f"]).expect_code(0);
    let left = lab.cmd(&["images"]).stdout;
    assert!(left.contains("busybox") && !left.contains("web"), "{left}");
    let refused = lab.cmd(&["rmi", "busybox"]);
    assert_eq!(refused.code, 1);
    assert!(refused.stderr.contains("container"), "{}", refused.stderr);
    // Removing one of two tags only untags, even while a container uses the image.
    lab.cmd(&["tag", "busybox", "other:1"]).expect_code(0);
    let untag = lab.cmd(&["rmi", "busybox"]);
    untag.expect_code(0);
    assert_eq!(untag.stdout, "Untagged: busybox:latest\n");
    // Forced, the last tag goes but the image stays (as <none>) for the container.
    let forced = lab.cmd(&["rmi", "-f", "other:1"]);
    forced.expect_code(0);
    assert_eq!(forced.stdout, "Untagged: other:1\n");
    let images = lab.cmd(&["images"]).stdout;
    assert!(images.contains("<none>"), "{images}");
    assert_eq!(lab.cmd(&["ps", "-aq"]).stdout.lines().count(), 1);
    // Once the container is gone, prune removes it.
    lab.cmd(&["rm", "keep"]).expect_code(0);
    lab.cmd(&["image", "prune", "-f"]).expect_code(0);
    assert_eq!(count(&lab), 0);
}

#[test]
fn rmi_by_id_of_an_image_with_several_tags_needs_force() {
    let lab = Lab::with_busybox();
    lab.cmd(&["tag", "busybox", "other:1"]).expect_code(0);
    lab.cmd(&["tag", "busybox", "busybox:2"]).expect_code(0);
    let id = lab.cmd(&["images", "-q", "busybox:latest"]).stdout;
    let id = id.trim();
    assert_eq!(id.len(), 12, "{id:?}");
    let refused = lab.cmd(&["rmi", id]);
    // rmi's per-image errors exit 1, as Docker's do.
    assert_eq!(refused.code, 1, "{}", refused.stderr);
    assert_eq!(
        refused.stderr,
        format!("Error response from dockling: conflict: unable to delete {id} (must be forced) - image is referenced in multiple repositories: remove its tags one by one (dockling rmi NAME:TAG) or use rmi -f\n")
    );
    assert_eq!(count(&lab), 3, "nothing untagged when refused");
    let forced = lab.cmd(&["rmi", "-f", id]);
    forced.expect_code(0);
    let mut untagged: Vec<&str> = forced
        .stdout
        .lines()
        .filter(|l| l.starts_with("Untagged: "))
        .collect();
    untagged.sort();
    assert_eq!(
        untagged,
        [
            "Untagged: busybox:2",
            "Untagged: busybox:latest",
            "Untagged: other:1"
        ],
        "{}",
        forced.stdout
    );
    assert!(
        forced.stdout.contains(&format!("Deleted: sha256:{id}")),
        "{}",
        forced.stdout
    );
    assert_eq!(count(&lab), 0);
}

/// Build a one-file layer tar holding `bin/su`, setuid root.
fn setuid_tar(dir: &std::path::Path) -> std::path::PathBuf {
    use common::E;
    let tar = common::tar_of(&[E::Dir("bin/", 0o755), E::File("bin/su", "su\n", 0o4755)]);
    let path = dir.join("setuid.tar");
    std::fs::write(&path, tar).unwrap();
    path
}

/// `setpriv` as nobody: `stat PATH`, with its exit status and stderr.
fn stat_as_nobody(path: &std::path::Path) -> (i32, String) {
    let out = std::process::Command::new("setpriv")
        .args([
            "--reuid",
            "65534",
            "--regid",
            "65534",
            "--clear-groups",
            "stat",
        ])
        .arg(path)
        .output()
        .expect("setpriv (util-linux) is needed for this test");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn mode(path: &std::path::Path) -> u32 {
    use std::os::unix::fs::MetadataExt;
    std::fs::symlink_metadata(path).unwrap().mode() & 0o7777
}

#[test]
fn a_setuid_file_in_a_layer_is_out_of_reach_of_other_users_cve_2021_41091() {
    use std::os::unix::fs::PermissionsExt;
    let lab = Lab::new();
    // The test's own directory is 0700; open it up so only the store's modes protect it.
    std::fs::set_permissions(lab.dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let tar = setuid_tar(lab.dir.path());
    // Under umask 000: the modes come from mkdir itself, which the umask can only narrow.
    let mut import = lab.command(&["import", tar.to_str().unwrap(), "suid"]);
    // SAFETY: umask(2) is async-signal-safe and only changes the child's own mask.
    unsafe {
        std::os::unix::process::CommandExt::pre_exec(&mut import, || {
            libc::umask(0);
            Ok(())
        });
    }
    let imported: common::Out = import.output().unwrap().into();
    imported.expect_code(0);
    assert_eq!(imported.stderr, "", "a new store needs no repair");
    let root = lab.root();
    assert_eq!(mode(&root), 0o711);
    for d in ["oci", "layers", "containers"] {
        assert_eq!(mode(&root.join(d)), 0o700, "{d}");
    }
    let layers: Vec<_> = std::fs::read_dir(root.join("layers/sha256"))
        .unwrap()
        .flatten()
        .collect();
    assert_eq!(layers.len(), 1, "{layers:?}");
    let su = layers[0].path().join("bin/su");
    // It is there, setuid (root sees it)...
    assert_eq!(mode(&su), 0o4755);
    // ...and nobody else can even reach it.
    let (code, stderr) = stat_as_nobody(&su);
    assert_ne!(code, 0, "nobody reached {}", su.display());
    assert!(stderr.contains("Permission denied"), "{stderr}");
    // The root itself stays traversable (0711): the refusal comes from layers/.
    let (code, stderr) = stat_as_nobody(&root);
    assert_eq!(code, 0, "{stderr}");
    // Another user running dockling gets told why it cannot, not a bare EACCES.
    let mut images = lab.command(&["images"]);
    images.env("HOME", "/nonexistent");
    // SAFETY: setgid/setuid are async-signal-safe; they drop the child to nobody before exec.
    unsafe {
        std::os::unix::process::CommandExt::pre_exec(&mut images, || {
            if libc::setgroups(0, std::ptr::null()) != 0
                || libc::setgid(65534) != 0
                || libc::setuid(65534) != 0
            {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let images: common::Out = images.output().unwrap().into();
    images.expect_code(125);
    assert!(
        images
            .stderr
            .contains("permission denied: the store is root's alone"),
        "{}",
        images.stderr
    );
}

#[test]
fn an_older_world_readable_store_is_tightened_with_a_message() {
    use std::os::unix::fs::PermissionsExt;
    let lab = Lab::with_busybox();
    let root = lab.root();
    for d in ["", "oci", "layers", "containers"] {
        std::fs::set_permissions(root.join(d), std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let images = lab.cmd(&["images", "-q"]);
    images.expect_code(0);
    assert_eq!(images.stdout.lines().count(), 1, "the store still works");
    let r = root.display();
    assert_eq!(
        images.stderr,
        format!("dockling: the store was open to every user (a setuid file or device node in an image could be used by anyone): tightened {r} 0755 -> 0711, {r}/oci 0755 -> 0700, {r}/layers 0755 -> 0700, {r}/containers 0755 -> 0700\n")
    );
    assert_eq!(mode(&root), 0o711);
    for d in ["oci", "layers", "containers"] {
        assert_eq!(mode(&root.join(d)), 0o700, "{d}");
    }
    // Said once: the next command finds nothing to repair.
    let again = lab.cmd(&["images", "-q"]);
    again.expect_code(0);
    assert_eq!(again.stderr, "");
}

#[test]
fn history_human_false_prints_raw_sizes_and_rfc3339_dates() {
    let lab = Lab::with_busybox();
    let human = lab.cmd(&["history", "busybox"]);
    human.expect_code(0);
    let row = |out: &str| -> Vec<String> {
        let line = out.lines().nth(1).unwrap().to_string();
        regex::Regex::new(r" {2,}")
            .unwrap()
            .split(&line)
            .map(String::from)
            .collect()
    };
    let h = row(&human.stdout);
    assert!(h[1].ends_with(" ago"), "{}", human.stdout);
    assert!(h[3].ends_with('B'), "{}", human.stdout);
    let rfc3339 =
        regex::Regex::new(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")
            .unwrap();
    for flag in ["-H=false", "--human=false"] {
        let raw = lab.cmd(&["history", flag, "busybox"]);
        raw.expect_code(0);
        let r = row(&raw.stdout);
        assert!(rfc3339.is_match(&r[1]), "{flag}: {}", raw.stdout);
        assert!(
            r[3].parse::<u64>().is_ok_and(|n| n > 0),
            "{flag}: {}",
            raw.stdout
        );
    }
    let help = lab.cmd(&["history", "--help"]);
    help.expect_code(0);
    assert!(
        help.stdout
            .contains("Print sizes and dates in human readable format (default true)"),
        "{}",
        help.stdout
    );
}

#[test]
fn import_of_a_file_that_is_not_a_tar_says_so_without_its_content() {
    let lab = Lab::new();
    let file = lab.dir.path().join("notes.txt");
    std::fs::write(&file, "TOP-SECRET-LINE\n".repeat(200)).unwrap();
    let out = lab.cmd(&["import", file.to_str().unwrap(), "x:1"]);
    out.expect_code(125);
    assert!(
        out.stderr
            .contains(&format!("{} is not a tar archive (", file.display())),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains("TOP-SECRET"), "{}", out.stderr);
    let short = lab.dir.path().join("short.txt");
    std::fs::write(&short, "hello\n").unwrap();
    let out = lab.cmd(&["import", short.to_str().unwrap(), "x:1"]);
    out.expect_code(125);
    assert!(
        out.stderr
            .contains("is not a tar archive (shorter than one tar header)"),
        "{}",
        out.stderr
    );
    assert!(lab.cmd(&["images", "-q"]).stdout.is_empty());
}

/// `images` reads `oci/summaries.json`, not every manifest and config: the table is the same
/// with the file, without it (an older store: the listing reads the images in full and writes
/// the file again), and after `system fsck --repair` rebuilt it; a summary an image no longer
/// matches (its config truncated) is not believed.
#[test]
fn images_are_listed_the_same_with_and_without_their_summaries() {
    let lab = Lab::with_busybox();
    lab.cmd(&["tag", "busybox", "other:1"]).expect_code(0);
    let file = lab.root().join("oci/summaries.jsonl");
    let with = lab.cmd(&["images", "--no-trunc"]);
    with.expect_code(0);
    assert_eq!(with.stdout.lines().count(), 3, "{}", with.stdout);
    let lines = |text: &[u8]| -> Vec<serde_json::Value> {
        let mut v: Vec<serde_json::Value> = text
            .split(|b| *b == b'\n')
            .filter(|l| !l.is_empty())
            .map(|l| serde_json::from_slice(l).unwrap())
            .collect();
        v.sort_by_key(|l| l.to_string());
        v.dedup();
        v
    };
    let summaries = lines(&std::fs::read(&file).expect("add_to_index wrote the summaries"));
    assert_eq!(summaries.len(), 1, "{summaries:?}");
    std::fs::remove_file(&file).unwrap();
    let without = lab.cmd(&["images", "--no-trunc"]);
    without.expect_code(0);
    assert_eq!(without.stdout, with.stdout);
    assert!(
        file.exists(),
        "the listing did not write the summaries again"
    );
    std::fs::write(&file, b"{\"v\":1,\"manifest\":").unwrap();
    let garbled = lab.cmd(&["images", "--no-trunc"]);
    garbled.expect_code(0);
    assert_eq!(garbled.stdout, with.stdout);
    lab.cmd(&["system", "fsck", "--repair"]).expect_code(0);
    assert_eq!(lines(&std::fs::read(&file).unwrap()), summaries);
    // A lie in the file is believed only while the blobs keep their sizes.
    let id = lab.cmd(&["inspect", "-f", "{{.Id}}", "busybox"]);
    let id = id.expect_code(0).stdout.clone();
    let config = lab
        .root()
        .join("oci/blobs/sha256")
        .join(id.trim().trim_start_matches("sha256:"));
    std::fs::OpenOptions::new()
        .write(true)
        .open(&config)
        .unwrap()
        .set_len(10)
        .unwrap();
    let damaged = lab.cmd(&["images"]);
    damaged.expect_code(0);
    assert!(
        damaged
            .stderr
            .starts_with("dockling: warning: image busybox:latest is damaged (blob sha256:"),
        "{}",
        damaged.stderr
    );
}

/// `ps` reads only the listing part of each container's spec: a record whose seccomp profile
/// (most of `state.json`, never shown) is not one oci-spec would accept is still listed, with
/// the same row as before it was damaged.
#[test]
fn ps_does_not_build_the_spec_it_does_not_show() {
    let lab = Lab::with_busybox();
    lab.cmd(&["run", "--name", "quiet", "busybox", "true"])
        .expect_code(0);
    let before = lab.cmd(&[
        "ps",
        "-a",
        "--format",
        "{{.Names}} {{.Image}} {{.Command}} {{.State}}",
    ]);
    before.expect_code(0);
    assert_eq!(before.stdout, "quiet busybox \"true\" exited\n");
    let id = lab.cmd(&["ps", "-aq", "--no-trunc"]);
    let id = id.expect_code(0).stdout.clone();
    let state = lab
        .root()
        .join("containers")
        .join(id.trim())
        .join("state.json");
    let mut v: serde_json::Value = serde_json::from_slice(&std::fs::read(&state).unwrap()).unwrap();
    assert!(v["spec"]["seccomp"].is_object(), "{v}");
    v["spec"]["seccomp"] = serde_json::json!({"defaultAction": 42});
    std::fs::write(&state, serde_json::to_vec(&v).unwrap()).unwrap();
    let after = lab.cmd(&[
        "ps",
        "-a",
        "--format",
        "{{.Names}} {{.Image}} {{.Command}} {{.State}}",
    ]);
    after.expect_code(0);
    assert_eq!(after.stdout, before.stdout, "{}", after.stderr);
    assert_eq!(after.stderr, "");
}
