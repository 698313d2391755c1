//! Issue 9, item 3: a damaged store is never a dead end. Each test damages a scratch store
//! the way a crash, a full disk or a stray hand would (a truncated blob, `[]` in index.json,
//! a lost layer directory, leftovers) and checks that `rmi`, `rmi -f`, `image prune -a` and
//! `pull` still work, and that `dockling system fsck [--repair]` says exactly what is wrong
//! and repairs what it can prove broken or garbage.

mod common;
use common::registry::DockerRegistry;
use common::Lab;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, SystemTime};

/// A docker-registry holding the busybox of a scratch store as `lab/busybox:v1`.
fn registry_with_busybox() -> DockerRegistry {
    let reg = DockerRegistry::start();
    reg.push_busybox(&Lab::with_busybox(), "lab/busybox:v1");
    reg
}

/// What the store holds of one image: its config, manifest, layer blob and layer directory.
struct Parts {
    config: PathBuf,
    manifest: serde_json::Value,
    layer_blob: String,
    layer_size: u64,
    diff_id: String,
}

fn parts(lab: &Lab, name: &str) -> Parts {
    let out = lab.cmd(&["image", "inspect", name]);
    out.expect_code(0);
    let doc: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    let blob = |d: &str| lab.root().join("oci/blobs/sha256").join(&d[7..]);
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(blob(doc[0]["Manifest"].as_str().unwrap())).unwrap())
            .unwrap();
    Parts {
        config: blob(doc[0]["Id"].as_str().unwrap()),
        layer_blob: manifest["layers"][0]["digest"].as_str().unwrap().into(),
        layer_size: manifest["layers"][0]["size"].as_u64().unwrap(),
        diff_id: doc[0]["RootFS"]["Layers"][0].as_str().unwrap().into(),
        manifest,
    }
}

fn blob_path(lab: &Lab, digest: &str) -> PathBuf {
    lab.root().join("oci/blobs/sha256").join(&digest[7..])
}

/// Cut a file to `len` bytes.
fn truncate(path: &Path, len: u64) {
    std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .unwrap()
        .set_len(len)
        .unwrap();
}

/// The lines of stdout, sorted (fsck reports in the store's order, which follows digests).
fn lines(s: &str) -> Vec<String> {
    let mut v: Vec<String> = s.lines().map(String::from).collect();
    v.sort();
    v
}

#[test]
fn rmi_removes_an_image_whose_config_blob_is_truncated() {
    let lab = Lab::with_busybox();
    let p = parts(&lab, "busybox");
    truncate(&p.config, 10);
    // The damage is seen (the command that needs the config fails, and says what to do)...
    let run = lab.run(&["busybox", "true"]);
    run.expect_code(125);
    assert!(
        run.stderr.contains("pull the image again"),
        "{}",
        run.stderr
    );
    // `images` still lists it (the name to act on), with a warning...
    let images = lab.cmd(&["images"]);
    images.expect_code(0);
    assert!(images.stdout.contains("busybox "), "{}", images.stdout);
    assert!(
        images
            .stderr
            .starts_with("dockling: warning: image busybox:latest is damaged (blob sha256:"),
        "{}",
        images.stderr
    );
    // ...and the image can still be removed, by its index entry.
    let rmi = lab.cmd(&["rmi", "busybox"]);
    rmi.expect_code(0);
    assert!(
        rmi.stdout
            .starts_with("Untagged: busybox:latest\nDeleted: sha256:"),
        "{}",
        rmi.stdout
    );
    let left: Vec<_> = std::fs::read_dir(lab.root().join("oci/blobs/sha256"))
        .unwrap()
        .collect();
    assert!(left.is_empty(), "blobs left: {left:?}");
    lab.cmd(&["system", "fsck"]).expect_code(0);
}

#[test]
fn rmi_f_removes_an_image_whose_config_blob_is_truncated() {
    let lab = Lab::with_busybox();
    let p = parts(&lab, "busybox");
    // A stopped container uses it: -f untags and keeps it (as Docker does).
    lab.cmd(&["run", "--name", "user", "busybox", "true"])
        .expect_code(0);
    truncate(&p.config, 10);
    let rmi = lab.cmd(&["rmi", "-f", "busybox"]);
    rmi.expect_code(0);
    assert_eq!(rmi.stdout, "Untagged: busybox:latest\n");
    let images = lab.cmd(&["images"]);
    images.expect_code(0);
    assert!(!images.stdout.contains("busybox"), "{}", images.stdout);
    // Without a container, by id: deleted.
    lab.cmd(&["rm", "user"]).expect_code(0);
    let id = &p.config.file_name().unwrap().to_string_lossy()[..12];
    let rmi = lab.cmd(&["rmi", "-f", id]);
    rmi.expect_code(0);
    assert!(rmi.stdout.starts_with("Deleted: sha256:"), "{}", rmi.stdout);
    assert!(!p.config.exists());
}

#[test]
fn image_prune_a_removes_an_image_whose_config_blob_is_truncated() {
    let lab = Lab::with_busybox();
    let p = parts(&lab, "busybox");
    truncate(&p.config, 10);
    let prune = lab.cmd(&["image", "prune", "-a", "-f"]);
    prune.expect_code(0);
    assert!(
        prune.stdout.contains("untagged: busybox:latest"),
        "{}",
        prune.stdout
    );
    assert!(!p.config.exists());
    assert!(!lab
        .root()
        .join("layers/sha256")
        .join(&p.diff_id[7..])
        .exists());
}

#[test]
fn pull_replaces_a_truncated_config_blob() {
    let reg = registry_with_busybox();
    let lab = Lab::new();
    lab.cmd(&["pull", &reg.name("lab/busybox:v1")])
        .expect_code(0);
    let p = parts(&lab, &reg.name("lab/busybox:v1"));
    let good = std::fs::read(&p.config).unwrap();
    truncate(&p.config, 10);
    let pull = lab.cmd(&["pull", &reg.name("lab/busybox:v1")]);
    pull.expect_code(0);
    assert!(
        pull.stdout.contains("Status: Downloaded newer image"),
        "{}",
        pull.stdout
    );
    assert_eq!(std::fs::read(&p.config).unwrap(), good);
    assert_eq!(
        lab.ok(&[&reg.name("lab/busybox:v1"), "echo", "ran"]),
        "ran\n"
    );
    lab.cmd(&["system", "fsck"]).expect_code(0);
}

#[test]
fn pull_refetches_a_truncated_layer_blob_instead_of_saying_up_to_date() {
    let reg = registry_with_busybox();
    let lab = Lab::new();
    lab.cmd(&["pull", &reg.name("lab/busybox:v1")])
        .expect_code(0);
    let p = parts(&lab, &reg.name("lab/busybox:v1"));
    let layer = blob_path(&lab, &p.layer_blob);
    truncate(&layer, 100);
    let pull = lab.cmd(&["pull", &reg.name("lab/busybox:v1")]);
    pull.expect_code(0);
    assert!(
        !pull.stdout.contains("up to date") && pull.stdout.contains("Downloaded newer image"),
        "{}",
        pull.stdout
    );
    assert_eq!(std::fs::metadata(&layer).unwrap().len(), p.layer_size);
    let fsck = lab.cmd(&["system", "fsck"]);
    fsck.expect_code(0);
    assert_eq!(
        fsck.stdout,
        format!("fsck: the store {} is clean\n", lab.root().display())
    );
}

#[test]
fn fsck_moves_a_truncated_layer_blob_aside_and_pull_fetches_it_again() {
    let reg = registry_with_busybox();
    let lab = Lab::new();
    lab.cmd(&["pull", &reg.name("lab/busybox:v1")])
        .expect_code(0);
    let p = parts(&lab, &reg.name("lab/busybox:v1"));
    let layer = blob_path(&lab, &p.layer_blob);
    let data = std::fs::read(&layer).unwrap();
    truncate(&layer, 100);
    let root = lab.root().display().to_string();
    let got = {
        use sha2::Digest as _;
        format!("sha256:{:x}", sha2::Sha256::digest(&data[..100]))
    };
    let fsck = lab.cmd(&["system", "fsck"]);
    fsck.expect_code(1);
    let damaged = format!("damaged blob {}: its 100 bytes hash to {got}", p.layer_blob);
    assert_eq!(
        fsck.stdout,
        format!(
            "{damaged} (--repair moves it to {root}/lost+found; the next pull fetches it again)\n\
             fsck: 1 finding in {root}: run `dockling system fsck --repair` to repair what can be\n"
        )
    );
    let repair = lab.cmd(&["system", "fsck", "--repair"]);
    repair.expect_code(1);
    let name = reg.name("lab/busybox:v1");
    let missing = format!("image {name}: its layer {} is missing", p.layer_blob);
    assert!(
        repair.stdout.starts_with(&format!(
            "{damaged}: moved to {root}/lost+found/blob-sha256-{}-",
            &p.layer_blob[7..]
        )),
        "{}",
        repair.stdout
    );
    assert!(
        repair.stdout.contains(&format!(
            "left: {missing} (--repair keeps it: pull the image again to fetch it, or remove it (dockling rmi -f {name}))\n"
        )),
        "{}",
        repair.stdout
    );
    assert!(!layer.exists());
    // The unpacked layer is intact: the image still runs meanwhile.
    assert_eq!(
        lab.ok(&[&reg.name("lab/busybox:v1"), "echo", "ran"]),
        "ran\n"
    );
    let pull = lab.cmd(&["pull", &reg.name("lab/busybox:v1")]);
    pull.expect_code(0);
    assert_eq!(std::fs::read(&layer).unwrap(), data);
    lab.cmd(&["system", "fsck"]).expect_code(0);
    let _ = &p.manifest;
}

#[test]
fn index_json_of_brackets_is_a_clear_error_not_a_panic_and_fsck_rebuilds_it() {
    let lab = Lab::with_busybox();
    let p = parts(&lab, "busybox");
    let index = lab.root().join("oci/index.json");
    std::fs::write(&index, "[]").unwrap();
    let want = format!(
        "dockling: the image index {} is broken (not a JSON object with a \"manifests\" list): run `dockling system fsck --repair` to set it aside and rebuild it from the image manifests among the blobs\n",
        index.display()
    );
    // Before this fix pull downloaded the image, then panicked recording it (exit 101, a
    // backtrace); now it says what is wrong before downloading anything.
    let reg = registry_with_busybox();
    let blobs_before = std::fs::read_dir(lab.root().join("oci/blobs/sha256"))
        .unwrap()
        .count();
    let pull = lab.cmd(&["pull", &reg.name("lab/busybox:v1")]);
    pull.expect_code(125);
    assert!(pull.stderr.ends_with(&want), "{}", pull.stderr);
    assert!(!pull.stderr.contains("panicked"), "{}", pull.stderr);
    assert_eq!(
        std::fs::read_dir(lab.root().join("oci/blobs/sha256"))
            .unwrap()
            .count(),
        blobs_before
    );
    let images = lab.cmd(&["images"]);
    images.expect_code(125);
    assert_eq!(images.stderr, want);
    // Invalid JSON says so too.
    std::fs::write(&index, "{\"manif").unwrap();
    let images = lab.cmd(&["images"]);
    images.expect_code(125);
    assert!(
        images.stderr.contains("is broken (EOF while parsing"),
        "{}",
        images.stderr
    );
    std::fs::write(&index, "[]").unwrap();

    let fsck = lab.cmd(&["system", "fsck"]);
    fsck.expect_code(1);
    let broken = format!(
        "broken index {}: not a JSON object with a \"manifests\" list",
        index.display()
    );
    assert_eq!(
        fsck.stdout,
        format!(
            "{broken} (--repair moves it aside as index.json.broken-<time> and rebuilds it from the image manifests among the blobs, untagged)\n\
             fsck: 1 finding in {}: run `dockling system fsck --repair` to repair what can be\n",
            lab.root().display()
        )
    );
    let repair = lab.cmd(&["system", "fsck", "--repair"]);
    repair.expect_code(0);
    let aside: Vec<String> = std::fs::read_dir(lab.root().join("oci"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("index.json.broken-"))
        .collect();
    assert_eq!(aside.len(), 1, "{aside:?}");
    assert_eq!(
        std::fs::read(lab.root().join("oci").join(&aside[0])).unwrap(),
        b"[]"
    );
    assert_eq!(
        repair.stdout,
        format!(
            "{broken}: moved aside as {}; rebuilt with 1 image from the blobs, untagged (tag them again: dockling tag)\n\
             fsck: repaired 1 of 1 finding: the store {} is clean\n",
            aside[0],
            lab.root().display()
        )
    );
    // The image is back, untagged, and usable: run it, tag it, remove it.
    let id = &p.config.file_name().unwrap().to_string_lossy()[..12];
    assert_eq!(lab.ok(&[id, "echo", "ran"]), "ran\n");
    lab.cmd(&["tag", id, "busybox:again"]).expect_code(0);
    lab.cmd(&["rmi", "-f", "busybox:again"]).expect_code(0);
    lab.cmd(&["system", "fsck"]).expect_code(0);
}

#[test]
fn a_panic_is_an_internal_error_line_and_exit_125_not_a_backtrace() {
    let lab = Lab::new();
    let out = lab.cmd_env(&["images"], &[("DOCKLING_TEST_PANIC", "1".as_ref())]);
    out.expect_code(125);
    assert!(
        out.stderr
            .starts_with("dockling: internal error: DOCKLING_TEST_PANIC is set at src/main.rs:")
            && out
                .stderr
                .ends_with(" (this is a bug: please report it with the command you ran)\n")
            && out.stderr.lines().count() == 1,
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains("panicked"), "{}", out.stderr);
}

#[test]
fn output_into_a_closed_pipe_ends_quietly_as_a_sigpipe_would() {
    // `dockling lesson list | head -1`: head exits, and the next write finds the pipe closed.
    // Here the pipe's reading end is closed before dockling starts, so its first line fails.
    let lab = Lab::new();
    let (reader, writer) = nix::unistd::pipe().unwrap();
    drop(reader);
    let out = lab
        .command(&["lesson", "list"])
        .stdout(std::process::Stdio::from(writer))
        .stderr(std::process::Stdio::piped())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    // What a shell reports for a program killed by SIGPIPE (128 + 13), as Docker's CLI is.
    assert_eq!(out.status.code(), Some(141), "{stderr}");
    assert!(
        stderr.is_empty(),
        "a closed pipe is not an error to report: {stderr}"
    );
}

/// A cgroup v1 or v2 hierarchy the host has mounted.
fn a_cgroup_hierarchy() -> PathBuf {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    info.lines()
        .filter_map(|l| {
            let (left, right) = l.split_once(" - ")?;
            matches!(right.split(' ').next()?, "cgroup" | "cgroup2")
                .then(|| left.split(' ').nth(4).map(PathBuf::from))
                .flatten()
        })
        .next()
        .expect("no cgroup hierarchy is mounted: fsck's cgroup check cannot be tested here")
}

/// Removes a cgroup directory the test made, even when the test fails.
struct CgroupDir(PathBuf);

impl Drop for CgroupDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir(&self.0);
    }
}

#[test]
fn fsck_finds_each_leftover_and_repair_removes_only_proven_garbage() {
    let lab = Lab::with_busybox();
    let root = lab.root();
    let p = parts(&lab, "busybox");
    let clean = lab.cmd(&["system", "fsck"]);
    clean.expect_code(0);
    assert_eq!(
        clean.stdout,
        format!("fsck: the store {} is clean\n", root.display())
    );

    let blobs = root.join("oci/blobs/sha256");
    // An orphan blob, older than any running command.
    let orphan = {
        use sha2::Digest as _;
        format!("sha256:{:x}", sha2::Sha256::digest(b"orphan"))
    };
    let orphan_path = blobs.join(&orphan[7..]);
    std::fs::write(&orphan_path, b"orphan").unwrap();
    std::fs::File::options()
        .write(true)
        .open(&orphan_path)
        .unwrap()
        .set_modified(SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000_000))
        .unwrap();
    // An orphan blob a live command (this test) has leased: not an orphan.
    let leased_blob = {
        use sha2::Digest as _;
        format!("sha256:{:x}", sha2::Sha256::digest(b"leased"))
    };
    let leased_path = blobs.join(&leased_blob[7..]);
    std::fs::write(&leased_path, b"leased").unwrap();
    let lease = root.join("oci/leases/live-lease");
    let _held_lease = dockling::files::try_lock(&lease).unwrap().unwrap();
    std::fs::write(&lease, format!("{leased_blob}\n")).unwrap();
    // A lease and a per-object lock nobody holds (their commands were killed); a lock held.
    let stale_lease = root.join("oci/leases/1-2-0123abcd");
    std::fs::write(&stale_lease, format!("{orphan}\n")).unwrap();
    let stale_lock = root
        .join("oci/locks")
        .join(format!("blob-{}", &orphan[7..]));
    std::fs::write(&stale_lock, b"").unwrap();
    let held_lock = root
        .join("oci/locks")
        .join(format!("blob-{}", &leased_blob[7..]));
    let _held = dockling::files::try_lock(&held_lock).unwrap().unwrap();
    // Temporary files: of a dead process; of a live one (this test), named as now and as
    // older versions named them; of this pid with another start time (a reused pid).
    let dead = {
        let mut c = Command::new("true").spawn().unwrap();
        let pid = c.id();
        c.wait().unwrap();
        pid
    };
    let dead_tmp = blobs.join(format!(".tmp-{dead}-1-0123abcd"));
    std::fs::write(&dead_tmp, b"half").unwrap();
    let live = std::process::id();
    let live_tmp = blobs.join(dockling::files::temp_name());
    std::fs::write(&live_tmp, b"half").unwrap();
    let old_live_tmp = blobs.join(format!(".tmp-{live}-0123abcd"));
    std::fs::write(&old_live_tmp, b"half").unwrap();
    let reused_tmp = root
        .join("oci")
        .join(format!(".index.json.tmp-{live}-1-0123abcd"));
    std::fs::write(&reused_tmp, b"half").unwrap();
    // Trash of a killed rmi and of a killed rm.
    let layer_trash = root.join("layers/sha256/.trash-1-2-0123abcd");
    std::fs::create_dir_all(layer_trash.join("bin")).unwrap();
    let container_trash = root
        .join("containers")
        .join(format!(".trash-{}", "b".repeat(64)));
    std::fs::create_dir_all(&container_trash).unwrap();
    // The image's layer half deleted (its marker left); another layer half unpacked (its
    // directory without a marker).
    let layer_dir = root.join("layers/sha256").join(&p.diff_id[7..]);
    std::fs::remove_dir_all(&layer_dir).unwrap();
    let half = root.join("layers/sha256").join("a".repeat(64));
    std::fs::create_dir_all(half.join("etc")).unwrap();
    // A container record without state (a killed create), old; one that cannot be read.
    let stateless = root.join("containers").join("c".repeat(64));
    std::fs::create_dir(&stateless).unwrap();
    std::fs::File::open(&stateless)
        .unwrap()
        .set_modified(SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000_000))
        .unwrap();
    let unreadable = root.join("containers").join("d".repeat(64));
    std::fs::create_dir(&unreadable).unwrap();
    std::fs::write(unreadable.join("state.json"), b"{").unwrap();
    // A cgroup of no container, under this lab's parent.
    let cgroup = a_cgroup_hierarchy()
        .join(lab.cgroup_parent())
        .join("e".repeat(64));
    std::fs::create_dir_all(&cgroup).unwrap();
    let _cleanup = CgroupDir(cgroup.clone());

    let r = root.display();
    let kept_live = format!(
        "temporary file {}: left by process {live}",
        live_tmp.display()
    );
    let unreadable_line = format!(
        "broken container record {}/state.json: EOF while parsing an object at line 1 column 1",
        unreadable.display()
    );
    let kept_old_live = format!(
        "temporary file {}: left by process {live}",
        old_live_tmp.display()
    );
    let running = format!("process {live}, named in it, is still running and may be writing it");
    let half_line = format!(
        "half-unpacked or half-deleted (a directory without its marker) layer {}: a killed unpack or delete left it",
        half.display()
    );
    let image_layer = format!(
        "image busybox:latest: layer {} is half-unpacked or half-deleted (a marker without its directory)",
        layer_dir.display()
    );
    let expected = [
        format!(
            "orphan blob {orphan}: no image refers to it (--repair removes it)"
        ),
        format!(
            "temporary file {}: left by process {dead} (--repair removes it)",
            dead_tmp.display()
        ),
        format!("{kept_live} (--repair keeps it: {running})"),
        format!("{kept_old_live} (--repair keeps it: {running})"),
        format!(
            "temporary file {}: left by process {live} (--repair removes it)",
            reused_tmp.display()
        ),
        format!(
            "{image_layer} (--repair unpacks it again from blob {})",
            p.layer_blob
        ),
        format!(
            "trash {}: a killed delete left it (--repair removes it)",
            layer_trash.display()
        ),
        format!(
            "{half_line} (--repair moves it to the trash; the next pull or run that needs it unpacks it again)"
        ),
        format!(
            "trash {}: a killed delete left it (--repair removes it)",
            container_trash.display()
        ),
        format!(
            "stale lease {}: nobody holds it (its command is gone) (--repair removes it)",
            stale_lease.display()
        ),
        format!(
            "stale lock {}: nobody holds it (its command is gone) (--repair removes it)",
            stale_lock.display()
        ),
        format!(
            "broken container record {}: no state.json (a create or rm was killed) (--repair removes it)",
            stateless.display()
        ),
        format!(
            "{unreadable_line} (--repair keeps it: whether it still runs cannot be read from it: check, then remove {} by hand)",
            unreadable.display()
        ),
        format!(
            "leftover cgroup {}: of no container (--repair removes the empty cgroup)",
            cgroup.display()
        ),
        format!("fsck: 14 findings in {r}: run `dockling system fsck --repair` to repair what can be"),
    ];
    let fsck = lab.cmd(&["system", "fsck"]);
    fsck.expect_code(1);
    assert_eq!(
        lines(&fsck.stdout),
        lines(&expected.join("\n")),
        "{}",
        fsck.stdout
    );

    let repair = lab.cmd(&["system", "fsck", "--repair"]);
    repair.expect_code(1);
    let done = [
        format!("orphan blob {orphan}: no image refers to it: removed"),
        format!(
            "temporary file {}: left by process {dead}: removed",
            dead_tmp.display()
        ),
        format!("{kept_live}: kept: {running}"),
        format!("{kept_old_live}: kept: {running}"),
        format!(
            "temporary file {}: left by process {live}: removed",
            reused_tmp.display()
        ),
        format!("{image_layer}: unpacked it again"),
        format!(
            "trash {}: a killed delete left it: removed",
            layer_trash.display()
        ),
        format!("{half_line}: moved to the trash and removed"),
        format!(
            "trash {}: a killed delete left it: removed",
            container_trash.display()
        ),
        format!(
            "stale lease {}: nobody holds it (its command is gone): removed",
            stale_lease.display()
        ),
        format!(
            "stale lock {}: nobody holds it (its command is gone): removed",
            stale_lock.display()
        ),
        format!(
            "broken container record {}: no state.json (a create or rm was killed): removed",
            stateless.display()
        ),
        format!(
            "{unreadable_line}: kept: whether it still runs cannot be read from it: check, then remove {} by hand",
            unreadable.display()
        ),
        format!(
            "leftover cgroup {}: of no container: removed",
            cgroup.display()
        ),
        format!("left: {kept_live} (--repair keeps it: {running})"),
        format!("left: {kept_old_live} (--repair keeps it: {running})"),
        format!(
            "left: {unreadable_line} (--repair keeps it: whether it still runs cannot be read from it: check, then remove {} by hand)",
            unreadable.display()
        ),
        format!("fsck: repaired 11 of 14 findings; 3 left in {r}"),
    ];
    assert_eq!(
        lines(&repair.stdout),
        lines(&done.join("\n")),
        "{}",
        repair.stdout
    );
    assert!(!orphan_path.exists() && !dead_tmp.exists() && !stateless.exists());
    assert!(!reused_tmp.exists() && !layer_trash.exists() && !container_trash.exists());
    assert!(!half.exists() && !stale_lease.exists() && !stale_lock.exists());
    assert!(!cgroup.exists());
    assert!(live_tmp.exists() && old_live_tmp.exists() && unreadable.exists());
    assert!(leased_path.exists() && lease.exists() && held_lock.exists());
    assert!(layer_dir.join("bin/busybox").exists());

    // What was kept, removed by hand: clean, and the image works.
    std::fs::remove_file(&live_tmp).unwrap();
    std::fs::remove_file(&old_live_tmp).unwrap();
    std::fs::remove_file(&held_lock).unwrap();
    drop(_held);
    std::fs::remove_dir_all(&unreadable).unwrap();
    lab.cmd(&["system", "fsck"]).expect_code(0);
    assert_eq!(lab.ok(&["busybox", "echo", "ran"]), "ran\n");
    lab.cmd(&["rmi", "-f", "busybox"]).expect_code(0);
    lab.cmd(&["system", "fsck"]).expect_code(0);
}

#[test]
fn fsck_reports_a_container_whose_image_is_gone_and_a_mount_under_the_store() {
    let lab = Lab::with_busybox();
    let root = lab.root();
    lab.cmd(&["run", "--name", "orphaned", "busybox", "true"])
        .expect_code(0);
    let p = parts(&lab, "busybox");
    let image = format!("sha256:{}", p.config.file_name().unwrap().to_string_lossy());
    // The index forgets the image (as a lost index.json rebuilt empty would).
    std::fs::write(
        root.join("oci/index.json"),
        r#"{"schemaVersion":2,"manifests":[]}"#,
    )
    .unwrap();
    // A mount under the store, in this test's own mount namespace (scripts/test's).
    let mnt = root.join("stray-mount");
    std::fs::create_dir(&mnt).unwrap();
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "none", mnt.to_str().unwrap()])
        .status()
        .unwrap();
    assert!(mounted.success(), "mount tmpfs on {}", mnt.display());
    struct Unmount(PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = Command::new("umount").arg(&self.0).status();
        }
    }
    let _unmount = Unmount(mnt.clone());
    // A container directory without state (removable garbage) with a file system mounted
    // inside: --repair must not descend into the mount and empty it.
    let stateless = root.join("containers").join("f".repeat(64));
    let inside = stateless.join("rootfs");
    std::fs::create_dir_all(&inside).unwrap();
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "none", inside.to_str().unwrap()])
        .status()
        .unwrap();
    assert!(mounted.success(), "mount tmpfs on {}", inside.display());
    let _unmount_inside = Unmount(inside.clone());
    std::fs::write(inside.join("precious"), b"keep me").unwrap();
    std::fs::File::open(&stateless)
        .unwrap()
        .set_modified(SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000_000))
        .unwrap();

    let fsck = lab.cmd(&["system", "fsck"]);
    fsck.expect_code(1);
    let ps = lab.cmd(&["ps", "-aq"]);
    ps.expect_code(0);
    let id = ps.stdout.trim();
    assert_eq!(id.len(), 12, "{}", ps.stdout);
    for line in [
        format!(
            "container orphaned ({id}): its image {image} is no longer in the store (--repair keeps it: it cannot start again: remove it (dockling rm -f orphaned))"
        ),
        format!(
            "mount {}: under the store, on the host (--repair keeps it: a mount is never proven garbage: unmount it by hand (umount -l {}))",
            mnt.display(),
            mnt.display()
        ),
    ] {
        assert!(
            fsck.stdout.lines().any(|l| l == line),
            "{line}\nnot in:\n{}",
            fsck.stdout
        );
    }
    let repair = lab.cmd(&["system", "fsck", "--repair"]);
    repair.expect_code(1);
    let kept = format!(
        "broken container record {}: no state.json (a create or rm was killed): kept: {} is mounted under it: unmount it first (umount -l {})",
        stateless.display(),
        inside.display(),
        inside.display()
    );
    assert!(
        repair.stdout.lines().any(|l| l == kept),
        "{kept}\nnot in:\n{}",
        repair.stdout
    );
    assert_eq!(std::fs::read(inside.join("precious")).unwrap(), b"keep me");
    assert!(mnt.exists() && lab.containers_left().len() == 2);
    lab.cmd(&["rm", "-f", "orphaned"]).expect_code(0);
}

#[test]
fn pull_refetches_a_big_layer_blob_damaged_in_place_when_its_layer_must_be_unpacked() {
    // One layer larger than the 8 MiB pull hashes in passing: trusted by its size alone
    // while unpacked, checked by its digest once it must be read to unpack.
    let source = Lab::new();
    let tar_path = source.dir.path().join("big.tar");
    {
        let mut b = tar::Builder::new(std::fs::File::create(&tar_path).unwrap());
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let data: Vec<u8> = (0..9 << 20)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        let mut h = tar::Header::new_gnu();
        h.set_mode(0o644);
        h.set_size(data.len() as u64);
        b.append_data(&mut h, "big", &data[..]).unwrap();
        b.into_inner().unwrap();
    }
    source
        .cmd(&["import", tar_path.to_str().unwrap(), "big:latest"])
        .expect_code(0);
    let reg = DockerRegistry::start();
    reg.push(&source, "big:latest", "lab/big:v1");
    let lab = Lab::new();
    let name = format!("127.0.0.1:{}/lab/big:v1", reg.port);
    lab.cmd(&["pull", &name]).expect_code(0);
    let p = parts(&lab, &name);
    assert!(p.layer_size > 8 << 20, "{}", p.layer_size);
    let layer = blob_path(&lab, &p.layer_blob);
    let good = std::fs::read(&layer).unwrap();
    let mut bad = good.clone();
    bad[good.len() / 2] ^= 0xff;
    std::fs::write(&layer, &bad).unwrap();
    // While unpacked, the same size is trusted (the unpacked layer is what runs).
    let pull = lab.cmd(&["pull", &name]);
    pull.expect_code(0);
    assert!(pull.stdout.contains("up to date"), "{}", pull.stdout);
    // Once it must be unpacked again, pull checks it, fetches it again and unpacks it.
    std::fs::remove_dir_all(lab.root().join("layers/sha256").join(&p.diff_id[7..])).unwrap();
    let pull = lab.cmd(&["pull", &name]);
    pull.expect_code(0);
    assert!(
        pull.stdout.contains("Downloaded newer image"),
        "{}",
        pull.stdout
    );
    assert!(
        std::fs::read(&layer).unwrap() == good,
        "the blob was not replaced"
    );
    lab.cmd(&["system", "fsck"]).expect_code(0);
    // Damaged again, and a pull that does download (another image) meets it while unpacking:
    // the unpack fails on it, so it is fetched again rather than failing the pull.
    std::fs::write(&layer, &bad).unwrap();
    std::fs::remove_dir_all(lab.root().join("layers/sha256").join(&p.diff_id[7..])).unwrap();
    lab.cmd(&["tag", &name, "other:1"]).expect_code(0);
    lab.cmd(&["rmi", &name]).expect_code(0);
    let pull = lab.cmd(&["pull", &name]);
    pull.expect_code(0);
    assert!(
        std::fs::read(&layer).unwrap() == good,
        "the blob was not replaced"
    );
    let unpacked = lab
        .root()
        .join("layers/sha256")
        .join(&p.diff_id[7..])
        .join("big");
    assert_eq!(std::fs::metadata(unpacked).unwrap().len(), 9 << 20);
    lab.cmd(&["system", "fsck"]).expect_code(0);
}

#[test]
fn a_half_deleted_layer_of_an_older_store_is_unpacked_again_not_adopted_by_its_size_file() {
    // An older dockling recorded `layers/size/<diff_id>` after each unpack but deleted the
    // directory before the size file: a killed old `rmi` left a size file beside half a
    // layer. Adopting size files as markers would run that half layer.
    let lab = Lab::with_busybox();
    let root = lab.root();
    let p = parts(&lab, "busybox");
    let hex = &p.diff_id[7..];
    let marker = root.join("layers/unpacked").join(hex);
    let size = std::fs::read(&marker).unwrap();
    std::fs::remove_file(&marker).unwrap();
    std::fs::create_dir_all(root.join("layers/size")).unwrap();
    std::fs::write(root.join("layers/size").join(hex), &size).unwrap();
    let layer_dir = root.join("layers/sha256").join(hex);
    std::fs::remove_file(layer_dir.join("bin/busybox")).unwrap();

    let fsck = lab.cmd(&["system", "fsck"]);
    fsck.expect_code(1);
    let line = format!(
        "image busybox:latest: layer {} is half-unpacked or half-deleted (a directory without its marker) (--repair unpacks it again from blob {})",
        layer_dir.display(),
        p.layer_blob
    );
    assert!(
        fsck.stdout.lines().any(|l| l == line),
        "{line}\nnot in:\n{}",
        fsck.stdout
    );
    // A run unpacks it again (the half directory to the trash) and marks it.
    assert_eq!(lab.ok(&["busybox", "echo", "ran"]), "ran\n");
    assert!(layer_dir.join("bin/busybox").is_file());
    assert_eq!(std::fs::read(&marker).unwrap(), size);
    lab.cmd(&["system", "fsck"]).expect_code(0);
}
