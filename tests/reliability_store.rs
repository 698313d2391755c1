//! Issue 9, the store: a `kill -9` at any point of `rmi` or `pull`, and commands racing each
//! other, never leave an image that looks whole but is not, nor lose another command's work.
//! Each test is named after the failure it reproduces; races are made deterministic by
//! holding the store's locks from the test (waiting on `/proc/locks` until the command blocks
//! on them) or by `DOCKLING_FAULT`, never by sleeping.

mod common;
use common::Lab;

#[path = "fake_server/mod.rs"]
mod fake_server;
use fake_server::{digest, ok, Fake};

use std::fs::{self, File};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

/// Wait for `cond`; a failure guard of 60 s (a hung command, not a timing).
fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    common::wait_until(Duration::from_secs(60), what, || cond().then_some(()))
}

/// True while process `pid` waits for a `flock` (a `->` line of `/proc/locks`).
fn blocked_on_a_lock(pid: u32) -> bool {
    fs::read_to_string("/proc/locks")
        .unwrap()
        .lines()
        .any(|l| l.contains("->") && l.split_whitespace().any(|f| f == pid.to_string()))
}

/// True while process `pid` has `path` open: with the test holding the flock on it, the
/// process is at its lock. (The store lock is taken by polling with `LOCK_NB`, so that a busy
/// lock can name its holder and time out: such a waiter has no `->` line in /proc/locks.)
fn waits_for(pid: u32, path: &Path) -> bool {
    fs::read_dir(format!("/proc/{pid}/fd"))
        .into_iter()
        .flatten()
        .flatten()
        .any(|fd| fs::read_link(fd.path()).is_ok_and(|p| p == path))
}

/// An exclusive flock the test holds on `path` until dropped.
fn hold(path: &Path) -> File {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    let f = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .unwrap();
    // SAFETY: flock on a file we hold open.
    assert_eq!(unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX) }, 0);
    f
}

/// A tar with a few files, the one layer of the images these tests import.
fn layer_tar(dir: &Path) -> PathBuf {
    let mut b = tar::Builder::new(Vec::new());
    for (name, body) in [
        ("usr/sbin/apache2", "the server\n"),
        ("etc/a", "a\n"),
        ("etc/b", "b\n"),
    ] {
        let mut h = tar::Header::new_ustar();
        h.set_mode(0o755);
        h.set_size(body.len() as u64);
        b.append_data(&mut h, name, body.as_bytes()).unwrap();
    }
    let p = dir.join("layer.tar");
    fs::write(&p, b.into_inner().unwrap()).unwrap();
    p
}

/// The one unpacked layer of the store: (its directory, its marker).
fn the_layer(lab: &Lab) -> (PathBuf, PathBuf) {
    let dirs: Vec<_> = fs::read_dir(lab.root().join("layers/sha256"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with('.'))
        .collect();
    assert_eq!(dirs.len(), 1, "{dirs:?}");
    (
        lab.root().join("layers/sha256").join(&dirs[0]),
        lab.root().join("layers/unpacked").join(&dirs[0]),
    )
}

fn names_in(dir: &Path) -> Vec<String> {
    fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn a_killed_rmi_does_not_leave_a_half_deleted_layer_the_next_image_takes_as_complete() {
    let lab = Lab::new();
    let tar = layer_tar(lab.dir.path());
    lab.cmd(&["import", tar.to_str().unwrap(), "img"])
        .expect_code(0);
    // Killed right after the layer was renamed away, before it was deleted.
    let killed = lab.cmd_env(
        &["rmi", "img"],
        &[("DOCKLING_FAULT", "rmi.gc.layer_trashed".as_ref())],
    );
    assert_eq!(killed.code, -1, "rmi must have been killed: {killed:?}");
    assert!(
        names_in(&lab.root().join("layers/sha256"))
            .iter()
            .any(|n| n.starts_with(".trash-")),
        "the layer went to the trash first"
    );
    lab.cmd(&["import", tar.to_str().unwrap(), "img"])
        .expect_code(0);
    let (dir, marker) = the_layer(&lab);
    assert_eq!(
        fs::read_to_string(dir.join("usr/sbin/apache2")).unwrap(),
        "the server\n"
    );
    assert!(marker.is_file());
    // The next command removed the trash.
    let left = names_in(&lab.root().join("layers/sha256"));
    assert!(left.iter().all(|n| !n.starts_with('.')), "{left:?}");
}

#[test]
fn a_layer_directory_without_its_marker_is_unpacked_again() {
    // What an rmi killed in the middle of deleting (before rename-then-delete) left: a layer
    // directory missing files. Only the marker makes a layer count.
    let lab = Lab::new();
    let tar = layer_tar(lab.dir.path());
    lab.cmd(&["import", tar.to_str().unwrap(), "img"])
        .expect_code(0);
    let (dir, marker) = the_layer(&lab);
    // (Older versions had no marker: the failure was that any directory counted.)
    let _ = fs::remove_file(&marker);
    fs::remove_file(dir.join("usr/sbin/apache2")).unwrap();
    lab.cmd(&["import", tar.to_str().unwrap(), "img2"])
        .expect_code(0);
    assert_eq!(
        fs::read_to_string(dir.join("usr/sbin/apache2")).unwrap_or_default(),
        "the server\n",
        "the half-deleted layer was taken as complete"
    );
    assert!(marker.is_file());
}

#[test]
fn a_killed_unpack_before_its_marker_is_redone() {
    let lab = Lab::new();
    let tar = layer_tar(lab.dir.path());
    let killed = lab.cmd_env(
        &["import", tar.to_str().unwrap(), "img"],
        &[("DOCKLING_FAULT", "store.layer.before_marker".as_ref())],
    );
    assert_eq!(killed.code, -1, "{killed:?}");
    let (dir, marker) = the_layer(&lab);
    assert!(!marker.exists());
    fs::remove_file(dir.join("etc/a")).unwrap();
    lab.cmd(&["import", tar.to_str().unwrap(), "img"])
        .expect_code(0);
    assert_eq!(fs::read_to_string(dir.join("etc/a")).unwrap(), "a\n");
}

/// The test's own temporary-file name, as a live dockling names one (pid and start time).
fn live_temp_name() -> String {
    let stat = fs::read_to_string("/proc/self/stat").unwrap();
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let start = rest.split(' ').nth(19).unwrap();
    format!(".tmp-{}-{start}-feedfeed", std::process::id())
}

#[test]
fn rmi_does_not_collect_a_live_pulls_temporary_files_and_leased_blobs() {
    let lab = Lab::new();
    let tar = layer_tar(lab.dir.path());
    lab.cmd(&["import", tar.to_str().unwrap(), "a"])
        .expect_code(0);
    let blobs = lab.root().join("oci/blobs/sha256");
    // A pull under way (this test): a blob it fetched but no image names yet, leased, and a
    // download in flight.
    let fetched = b"a layer of image B";
    let fetched_path = blobs.join(&digest(fetched)[7..]);
    fs::write(&fetched_path, fetched).unwrap();
    fs::create_dir_all(lab.root().join("oci/leases")).unwrap();
    let lease = lab.root().join("oci/leases/test-pull");
    fs::write(&lease, format!("{}\n", digest(fetched))).unwrap();
    let held = hold(&lease);
    let in_flight = blobs.join(live_temp_name());
    fs::write(&in_flight, b"half a download").unwrap();
    // And what a killed pull left: a temporary file of a pid that cannot exist.
    let dead = blobs.join(".tmp-4194305-1-deaddead");
    fs::write(&dead, b"left behind").unwrap();

    lab.cmd(&["rmi", "a"]).expect_code(0);
    assert!(fetched_path.exists(), "a leased blob was collected");
    assert!(
        in_flight.exists(),
        "a live process's temporary file was collected"
    );
    assert!(!dead.exists(), "a dead process's temporary file is removed");

    // The pull is gone (its lease unlocked): prune reclaims what it left.
    drop(held);
    fs::remove_file(&in_flight).unwrap();
    let prune = lab.cmd(&["image", "prune", "-a", "-f"]);
    prune.expect_code(0);
    assert!(
        !fetched_path.exists(),
        "an unreferenced blob of a dead pull is reclaimed"
    );
    assert!(!lease.exists(), "the stale lease is removed");
    assert!(prune.stdout.contains("Total reclaimed space:"), "{prune:?}");
}

#[test]
fn system_prune_and_df_reclaim_what_an_interrupted_pull_left() {
    let lab = Lab::new();
    let tar = layer_tar(lab.dir.path());
    lab.cmd(&["import", tar.to_str().unwrap(), "a"])
        .expect_code(0);
    let blobs = lab.root().join("oci/blobs/sha256");
    let orphan = vec![7u8; 100_000];
    let orphan_path = blobs.join(&digest(&orphan)[7..]);
    fs::write(&orphan_path, &orphan).unwrap();
    let dead = blobs.join(".tmp-4194305-1-deaddead");
    fs::write(&dead, vec![0u8; 50_000]).unwrap();
    let df = lab.cmd(&["system", "df"]);
    df.expect_code(0);
    let lines: Vec<&str> = df.stdout.lines().collect();
    assert_eq!(lines.len(), 5, "{}", df.stdout);
    for (line, start) in lines.iter().zip([
        "TYPE",
        "Images",
        "Containers",
        "Local Volumes",
        "Build Cache",
    ]) {
        assert!(line.starts_with(start), "{}", df.stdout);
    }
    assert!(
        lines[0].contains("TOTAL") && lines[0].ends_with("RECLAIMABLE"),
        "{}",
        df.stdout
    );
    assert!(
        lines[1].split_whitespace().nth(1) == Some("1"),
        "one image: {}",
        df.stdout
    );
    let prune = lab.cmd(&["system", "prune", "-f"]);
    prune.expect_code(0);
    assert!(!orphan_path.exists(), "{prune:?}");
    assert!(!dead.exists(), "{prune:?}");
    assert!(prune.stdout.contains("Total reclaimed space:"), "{prune:?}");
    // The tagged image stays.
    lab.cmd(&["image", "inspect", "a"]).expect_code(0);
}

#[test]
fn explain_does_not_create_the_store() {
    let lab = Lab::new();
    let out = lab.cmd(&["explain", "run", "busybox", "true"]);
    out.expect_code(125);
    assert!(
        out.stderr
            .contains("unable to find image 'busybox' locally"),
        "no image, nothing to explain: {out:?}"
    );
    assert!(
        !lab.root().exists(),
        "explain created {}",
        lab.root().display()
    );
}

#[test]
fn explain_does_not_unpack_layers() {
    let lab = Lab::new();
    let tar = layer_tar(lab.dir.path());
    lab.cmd(&["import", tar.to_str().unwrap(), "img"])
        .expect_code(0);
    let (dir, marker) = the_layer(&lab);
    fs::remove_file(&marker).unwrap();
    fs::remove_dir_all(&dir).unwrap();
    let out = lab.cmd(&["explain", "run", "img", "/usr/sbin/apache2"]);
    out.expect_code(0);
    assert!(
        !dir.exists() && !marker.exists(),
        "explain unpacked a layer"
    );
}

/// Serve a one-layer image as `t/img:v1` on `fake`: (config, layer, the layer's path).
fn serve(fake: &Fake) -> (Vec<u8>, Vec<u8>, String) {
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_ustar();
    h.set_mode(0o644);
    h.set_size(6);
    b.append_data(&mut h, "greeting", &b"hello\n"[..]).unwrap();
    let layer = b.into_inner().unwrap();
    let config = serde_json::to_vec(&serde_json::json!({
        "architecture": if cfg!(target_arch = "aarch64") { "arm64" } else { "amd64" },
        "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": [digest(&layer)]},
    }))
    .unwrap();
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": digest(&config), "size": config.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": digest(&layer), "size": layer.len()}],
    }))
    .unwrap();
    fake.route(
        "/v2/t/img/manifests/v1",
        vec![ok("application/vnd.oci.image.manifest.v1+json", manifest)],
    );
    fake.route(
        &format!("/v2/t/img/blobs/{}", digest(&config)),
        vec![ok("application/octet-stream", config.clone())],
    );
    let layer_path = format!("/v2/t/img/blobs/{}", digest(&layer));
    fake.route(
        &layer_path,
        vec![ok("application/octet-stream", layer.clone())],
    );
    (config, layer, layer_path)
}

#[test]
fn parallel_pulls_of_one_blob_download_it_once() {
    let lab = Lab::new();
    lab.cmd(&["images"]).expect_code(0);
    let fake = Fake::start();
    let (_, layer, layer_path) = serve(&fake);
    // Another pull is downloading the layer: this test holds its lock.
    let lock_path = lab
        .root()
        .join(format!("oci/locks/blob-{}", &digest(&layer)[7..]));
    let held = hold(&lock_path);
    let mut pull = lab
        .command(&["pull", &fake.name("t/img:v1")])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = pull.id();
    wait_for("the pull waits for the blob's lock", || {
        blocked_on_a_lock(pid)
    });
    // The other download finishes: the blob is in place, the lock file removed and released.
    fs::write(
        lab.root()
            .join("oci/blobs/sha256")
            .join(&digest(&layer)[7..]),
        &layer,
    )
    .unwrap();
    fs::remove_file(&lock_path).unwrap();
    drop(held);
    let status = pull.wait().unwrap();
    let mut err = String::new();
    std::io::Read::read_to_string(pull.stderr.as_mut().unwrap(), &mut err).unwrap();
    assert!(status.success(), "{err}");
    let fetched = fake.seen().iter().filter(|s| s.path == layer_path).count();
    assert_eq!(
        fetched, 0,
        "the layer was downloaded again instead of waited for"
    );
}

#[test]
fn rmi_racing_a_run_never_leaves_the_run_without_its_layers() {
    let lab = Lab::with_busybox();
    let store_lock = lab.root().join("oci/.lock");
    // Both commands wait for the store lock the test holds; whichever gets it first, the run
    // either holds the image (and rmi refuses) or says the image is gone: never ENOENT.
    let held = hold(&store_lock);
    let run = lab
        .command(&["run", "--rm", "busybox", "true"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for("run waits for the store lock", || {
        waits_for(run.id(), &store_lock)
    });
    let rmi = lab
        .command(&["rmi", "busybox"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for("rmi waits for the store lock", || {
        waits_for(rmi.id(), &store_lock)
    });
    drop(held);
    let run = run.wait_with_output().unwrap();
    let rmi = rmi.wait_with_output().unwrap();
    let run_err = String::from_utf8_lossy(&run.stderr);
    let rmi_err = String::from_utf8_lossy(&rmi.stderr);
    if rmi.status.success() {
        assert!(
            run.status.success()
                || run_err.contains("was removed while the container was being created"),
            "rmi won and the run failed otherwise: {run_err}"
        );
    } else {
        assert!(rmi_err.contains("conflict"), "{rmi_err}");
        assert!(run.status.success(), "{run_err}");
    }
    assert!(!run_err.contains("ENOENT"), "{run_err}");
}

#[test]
fn rmi_of_another_image_during_a_pull_does_not_collect_the_pulls_blobs() {
    let lab = Lab::new();
    let tar = layer_tar(lab.dir.path());
    lab.cmd(&["import", tar.to_str().unwrap(), "a"])
        .expect_code(0);
    let fake = Fake::start();
    let (config, layer, _) = serve(&fake);
    // The pull stops at the layer (its lock is the test's) once the config has arrived.
    let lock_path = lab
        .root()
        .join(format!("oci/locks/blob-{}", &digest(&layer)[7..]));
    let held = hold(&lock_path);
    let config_blob = lab
        .root()
        .join("oci/blobs/sha256")
        .join(&digest(&config)[7..]);
    let pull = lab
        .command(&["pull", &fake.name("t/img:v1")])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = pull.id();
    wait_for("the pull has the config and waits for the layer", || {
        config_blob.exists() && blocked_on_a_lock(pid)
    });
    lab.cmd(&["rmi", "a"]).expect_code(0);
    assert!(
        config_blob.exists(),
        "rmi collected the running pull's config blob"
    );
    fs::remove_file(&lock_path).unwrap();
    drop(held);
    let out = pull.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    lab.cmd(&["image", "inspect", &fake.name("t/img:v1")])
        .expect_code(0);
}

#[test]
fn a_pull_killed_mid_download_leaves_nothing_the_next_pull_or_prune_cannot_handle() {
    let lab = Lab::new();
    let fake = Fake::start();
    let (_, layer, layer_path) = serve(&fake);
    let killed = lab.cmd_env(
        &["pull", &fake.name("t/img:v1")],
        &[("DOCKLING_FAULT", "pull.blob.locked".as_ref())],
    );
    assert_eq!(
        killed.code, -1,
        "the pull must have been killed: {killed:?}"
    );
    // Its lease (flocked by a dead process) and whatever it fetched are left: the next pull
    // takes the blob lock the dead one held and completes.
    lab.cmd(&["pull", &fake.name("t/img:v1")]).expect_code(0);
    assert!(fake.seen().iter().any(|s| s.path == layer_path));
    let blob = lab
        .root()
        .join("oci/blobs/sha256")
        .join(&digest(&layer)[7..]);
    assert!(blob.is_file());
    // Nothing of the killed pull survives a prune: no lease, no lock, no temporary file.
    lab.cmd(&["system", "prune", "-f"]).expect_code(0);
    for dir in [
        "oci/leases",
        "oci/locks",
        "oci/blobs/sha256",
        "layers/sha256",
    ] {
        let hidden: Vec<String> = names_in(&lab.root().join(dir))
            .into_iter()
            .filter(|n| dir.ends_with("leases") || dir.ends_with("locks") || n.starts_with('.'))
            .collect();
        assert!(hidden.is_empty(), "{dir} holds {hidden:?}");
    }
    lab.cmd(&["image", "inspect", &fake.name("t/img:v1")])
        .expect_code(0);
}

#[test]
fn a_repull_removes_the_temporary_files_of_a_pull_killed_mid_download() {
    let lab = Lab::new();
    let fake = Fake::start();
    serve(&fake);
    let killed = lab.cmd_env(
        &["pull", &fake.name("t/img:v1")],
        &[("DOCKLING_FAULT", "store.blob.mid_write".as_ref())],
    );
    assert_eq!(
        killed.code, -1,
        "the pull must have been killed: {killed:?}"
    );
    let blobs = lab.root().join("oci/blobs/sha256");
    let temps = || -> Vec<String> {
        names_in(&blobs)
            .into_iter()
            .filter(|n| n.contains(".tmp"))
            .collect()
    };
    assert!(
        !temps().is_empty(),
        "the killed pull left its download behind"
    );
    lab.cmd(&["pull", &fake.name("t/img:v1")]).expect_code(0);
    assert_eq!(
        temps(),
        Vec::<String>::new(),
        "the re-pull left the dead pull's temporaries"
    );
    lab.cmd(&["image", "inspect", &fake.name("t/img:v1")])
        .expect_code(0);
}
