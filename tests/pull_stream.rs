//! `pull` streams: each layer is unpacked while it downloads, every layer at once, and nothing
//! half-done is ever a layer. A small registry on a loopback port (a thread per connection, so
//! one blob can be held back while the others flow) serves a two-layer image whose first layer
//! stops half way until the test lets it go: the order of events is read from what the pull
//! itself says and leaves on disk, never from timing.

mod common;
use common::{wait_until, wait_until_else, Lab};

#[path = "fake_server/mod.rs"]
mod fake_server;
use fake_server::{digest, OCI_MANIFEST};

use serde_json::json;
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

/// A plain tar layer of `files` (name, content), each 0644.
fn layer(files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (name, data) in files {
        let mut h = tar::Header::new_ustar();
        h.set_mode(0o644);
        h.set_size(data.len() as u64);
        b.append_data(&mut h, name, *data).unwrap();
    }
    b.into_inner().unwrap()
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(data).unwrap();
    gz.finish().unwrap()
}

/// A registry serving `manifest` as `repo:v1` and `blobs` (digest, body: a test may send other
/// bytes than the digest names); the blob `held` stops after half its body until `release` is
/// set (at most 60 s). A thread per connection: the others flow meanwhile.
struct Slow {
    port: u16,
    release: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
}

impl Slow {
    fn start(
        repo: &str,
        manifest: Vec<u8>,
        blobs: Vec<(String, Vec<u8>)>,
        held: Option<String>,
    ) -> Slow {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let mut routes: HashMap<String, (String, Vec<u8>)> = HashMap::new();
        routes.insert(
            format!("/v2/{repo}/manifests/v1"),
            (OCI_MANIFEST.to_string(), manifest),
        );
        for (d, b) in blobs {
            routes.insert(
                format!("/v2/{repo}/blobs/{d}"),
                ("application/octet-stream".to_string(), b),
            );
        }
        let held = held.map(|d| format!("/v2/{repo}/blobs/{d}"));
        let routes = Arc::new(routes);
        let release = Arc::new(AtomicBool::new(false));
        let stop = Arc::new(AtomicBool::new(false));
        let (rel, st) = (release.clone(), stop.clone());
        std::thread::spawn(move || {
            let deadline = Instant::now() + Duration::from_secs(120);
            while Instant::now() < deadline && !st.load(Ordering::SeqCst) {
                let Ok((conn, _)) = listener.accept() else {
                    std::thread::sleep(Duration::from_millis(5));
                    continue;
                };
                let (routes, held, rel) = (routes.clone(), held.clone(), rel.clone());
                std::thread::spawn(move || {
                    conn.set_nonblocking(false).unwrap();
                    conn.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
                    let mut reader = BufReader::new(conn.try_clone().unwrap());
                    let mut line = String::new();
                    if reader.read_line(&mut line).is_err() {
                        return;
                    }
                    loop {
                        let mut h = String::new();
                        if reader.read_line(&mut h).is_err() || h.trim().is_empty() {
                            break;
                        }
                    }
                    let path = line.split_whitespace().nth(1).unwrap_or("").to_string();
                    let mut conn = conn;
                    let Some((ty, body)) = routes.get(&path) else {
                        let _ = conn.write_all(
                            b"HTTP/1.1 404 X\r\nConnection: close\r\nContent-Length: 0\r\n\r\n",
                        );
                        return;
                    };
                    let head = format!(
                        "HTTP/1.1 200 X\r\nConnection: close\r\nDocker-Distribution-Api-Version: registry/2.0\r\nContent-Type: {ty}\r\nContent-Length: {}\r\n\r\n",
                        body.len()
                    );
                    let _ = conn.write_all(head.as_bytes());
                    if line.starts_with("HEAD") {
                        return;
                    }
                    if held.as_deref() == Some(path.as_str()) {
                        let half = body.len() / 2;
                        let _ = conn.write_all(&body[..half]);
                        let _ = conn.flush();
                        let until = Instant::now() + Duration::from_secs(60);
                        while !rel.load(Ordering::SeqCst) && Instant::now() < until {
                            std::thread::sleep(Duration::from_millis(10));
                        }
                        let _ = conn.write_all(&body[half..]);
                    } else {
                        let _ = conn.write_all(body);
                    }
                    let _ = conn.flush();
                    let _ = conn.shutdown(std::net::Shutdown::Write);
                    let _ = reader.read(&mut [0u8; 1]);
                });
            }
        });
        Slow {
            port,
            release,
            stop,
        }
    }

    fn name(&self, repo: &str) -> String {
        format!("127.0.0.1:{}/{repo}:v1", self.port)
    }
}

impl Drop for Slow {
    fn drop(&mut self) {
        self.release.store(true, Ordering::SeqCst);
        self.stop.store(true, Ordering::SeqCst);
    }
}

/// Each blob under its own digest.
fn named(blobs: &[&Vec<u8>]) -> Vec<(String, Vec<u8>)> {
    blobs.iter().map(|b| (digest(b), b.to_vec())).collect()
}

/// An image of `layers` (gzip blobs of the given tars): (manifest, config, blobs).
fn image_of(tars: &[Vec<u8>]) -> (Vec<u8>, Vec<u8>, Vec<Vec<u8>>) {
    let blobs: Vec<Vec<u8>> = tars.iter().map(|t| gzip(t)).collect();
    let config = serde_json::to_vec(&json!({
        "architecture": if cfg!(target_arch = "aarch64") { "arm64" } else { "amd64" },
        "os": "linux",
        "config": {"Cmd": ["/x"]},
        "rootfs": {"type": "layers", "diff_ids": tars.iter().map(|t| digest(t)).collect::<Vec<_>>()},
    }))
    .unwrap();
    let layers: Vec<_> = blobs
        .iter()
        .map(|b| json!({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": digest(b), "size": b.len()}))
        .collect();
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": digest(&config), "size": config.len()},
        "layers": layers,
    }))
    .unwrap();
    (manifest, config, blobs)
}

/// The slow layer (first in the image: big, so half of it is a real part of its stream) and
/// the fast one; their tars.
fn two_layers() -> (Vec<u8>, Vec<u8>) {
    let big: Vec<u8> = (0..(4u32 << 20))
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    let slow = layer(&[("slow/a", &big[..]), ("slow/b", b"end of the slow layer\n")]);
    let fast = layer(&[("fast/file", b"the fast layer\n")]);
    (slow, fast)
}

/// Entries of `dir` (names).
fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// A staging directory (`layers/sha256/.tmp-*`) holding `file`, if any.
fn staged_with(root: &Path, file: &str) -> Option<std::path::PathBuf> {
    names(&root.join("layers/sha256"))
        .into_iter()
        .filter(|n| n.starts_with(".tmp-"))
        .map(|n| root.join("layers/sha256").join(n))
        .find(|d| d.join(file).is_file())
}

/// Start `dockling pull --trace` of `image`, its stderr read line by line into a channel.
fn spawn_pull(lab: &Lab, image: &str) -> (std::process::Child, mpsc::Receiver<String>) {
    let mut child = lab
        .command(&["pull", "--trace", image])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start dockling pull");
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    (child, rx)
}

/// Wait for the pull `spawn_pull` started, which must succeed; its stderr's lines.
fn pulled(child: &mut std::process::Child, rx: &mpsc::Receiver<String>) -> Vec<String> {
    let status = child.wait().unwrap();
    let mut seen = Vec::new();
    while let Ok(l) = rx.recv_timeout(Duration::from_secs(5)) {
        seen.push(l);
    }
    assert!(
        status.success(),
        "pull failed: {status:?}\n{}",
        seen.join("\n")
    );
    seen
}

#[test]
fn the_fast_layer_is_unpacked_while_the_slow_one_still_downloads() {
    let (slow_tar, fast_tar) = two_layers();
    let (manifest, config, blobs) = image_of(&[slow_tar.clone(), fast_tar.clone()]);
    let (slow, fast) = (digest(&blobs[0]), digest(&blobs[1]));
    let reg = Slow::start(
        "t/two",
        manifest,
        named(&[&config, &blobs[0], &blobs[1]]),
        Some(slow.clone()),
    );
    let lab = Lab::new();
    let (mut child, rx) = spawn_pull(&lab, &reg.name("t/two"));
    // The fast layer is unpacked (its staging directory holds its one file) while the slow
    // layer's registry still holds back half its body.
    let staged = wait_until_else(
        Duration::from_secs(60),
        "the fast layer's file in a staging directory",
        || staged_with(&lab.root(), "fast/file"),
        || {
            let _ = child.kill();
        },
    );
    // (The slow blob's server holds back its second half until this release.)
    reg.release.store(true, Ordering::SeqCst);
    let seen = pulled(&mut child, &rx);
    // Staged, not yet a layer: since committed and renamed away.
    assert!(!staged.exists());
    // Both layers were unpacked as they arrived, and their notes come in layer order (the
    // slow one first, though the fast one finished first): the trace of a pull does not
    // depend on which worker won.
    let note = |d: &str| {
        seen.iter()
            .position(|l| l.contains(&format!("layer {d} unpacked while it downloaded")))
    };
    let (slow_at, fast_at) = (note(&slow), note(&fast));
    assert!(
        slow_at.is_some() && fast_at.is_some() && slow_at < fast_at,
        "the layers' notes are not in layer order:\n{}",
        seen.join("\n")
    );
    // Both are layers now, whole, and the store holds nothing temporary.
    let layers = lab.root().join("layers/sha256");
    assert_eq!(
        std::fs::read(layers.join(&digest(&fast_tar)[7..]).join("fast/file")).unwrap(),
        b"the fast layer\n"
    );
    assert_eq!(
        std::fs::read(layers.join(&digest(&slow_tar)[7..]).join("slow/b")).unwrap(),
        b"end of the slow layer\n"
    );
    for dir in ["layers/sha256", "oci/blobs/sha256"] {
        let tmp: Vec<_> = names(&lab.root().join(dir))
            .into_iter()
            .filter(|n| n.starts_with('.'))
            .collect();
        assert!(tmp.is_empty(), "{dir} holds {tmp:?}");
    }
    lab.cmd(&["system", "fsck"]).expect_code(0);
}

#[test]
fn a_corrupted_blob_leaves_no_layer_no_blob_and_no_staging_dir() {
    let (slow_tar, fast_tar) = two_layers();
    let (manifest, config, mut blobs) = image_of(&[slow_tar, fast_tar]);
    let good = blobs[0].clone();
    // One byte of the compressed stream changed, same length: the manifest's digest no
    // longer matches (and the gzip stream most likely breaks before its end).
    let mut bad = good.clone();
    let mid = bad.len() / 2;
    bad[mid] ^= 0x55;
    blobs[0] = bad;
    // Served under the good digest, which the manifest names.
    let lab = Lab::new();
    let mut served = named(&[&config, &blobs[1]]);
    served.push((digest(&good), blobs[0].clone()));
    let reg = Slow::start("t/bad", manifest, served, None);
    let pull = lab.cmd(&["pull", &reg.name("t/bad")]);
    pull.expect_code(125);
    assert!(
        pull.stderr.contains(&digest(&good)) && pull.stderr.contains("hashes to"),
        "{}",
        pull.stderr
    );
    assert_eq!(
        names(&lab.root().join("layers/sha256")),
        Vec::<String>::new()
    );
    assert_eq!(
        names(&lab.root().join("layers/unpacked")),
        Vec::<String>::new()
    );
    let blobs_left: Vec<_> = names(&lab.root().join("oci/blobs/sha256"));
    assert!(blobs_left.is_empty(), "blobs left: {blobs_left:?}");
    lab.cmd(&["system", "fsck"]).expect_code(0);
}

#[test]
fn a_pull_killed_mid_stream_leaves_only_staging_and_the_next_pull_completes() {
    let (slow_tar, fast_tar) = two_layers();
    let (manifest, config, blobs) = image_of(&[slow_tar.clone(), fast_tar]);
    let slow = digest(&blobs[0]);
    let config_hex = digest(&config)[7..].to_string();
    let reg = Slow::start(
        "t/kill",
        manifest,
        named(&[&config, &blobs[0], &blobs[1]]),
        Some(slow),
    );
    let lab = Lab::new();
    let (mut child, _rx) = spawn_pull(&lab, &reg.name("t/kill"));
    // The fast layer is unpacked (its file staged) while the slow one is held back.
    wait_until(
        Duration::from_secs(60),
        "the fast layer's file staged",
        || staged_with(&lab.root(), "fast/file"),
    );
    // Half of the slow layer is unpacked too by now, under its staging name.
    let half = wait_until(
        Duration::from_secs(30),
        "the slow layer's first file staged",
        || staged_with(&lab.root(), "slow/a"),
    );
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    let status = child.wait().unwrap();
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&status),
        Some(libc::SIGKILL)
    );
    // Nothing of it is a layer or a layer blob: only temporary names (and the config, fetched
    // and stored before the layers, a blob no image names yet).
    let layers = names(&lab.root().join("layers/sha256"));
    assert!(layers.iter().all(|n| n.starts_with(".tmp-")), "{layers:?}");
    assert!(
        layers.len() >= 2,
        "both layers were being staged: {layers:?}"
    );
    assert!(half.exists());
    assert_eq!(
        names(&lab.root().join("layers/unpacked")),
        Vec::<String>::new()
    );
    let blobs_left = names(&lab.root().join("oci/blobs/sha256"));
    assert!(
        blobs_left
            .iter()
            .all(|n| n.starts_with(".tmp-") || *n == config_hex),
        "{blobs_left:?}"
    );
    // fsck sees what the dead process left, and would remove it.
    let fsck = lab.cmd(&["system", "fsck"]);
    assert!(fsck.stdout.contains("temporary file"), "{}", fsck.stdout);
    // The next pull (the registry no longer holds anything back) completes, and the store is clean.
    reg.release.store(true, Ordering::SeqCst);
    lab.cmd(&["pull", &reg.name("t/kill")]).expect_code(0);
    assert_eq!(
        std::fs::read(
            lab.root()
                .join("layers/sha256")
                .join(&digest(&slow_tar)[7..])
                .join("slow/b")
        )
        .unwrap(),
        b"end of the slow layer\n"
    );
    assert!(!half.exists());
    lab.cmd(&["system", "fsck"]).expect_code(0);
}

/// Regression (issue 14): with `--layers erofs` the pull downloaded every blob, committed
/// them, and only then read each blob back to write its EROFS image: nothing of a layer was
/// made while another still downloaded. Now each layer's image is written from its own
/// download's stream: the fast layer's `layer.erofs` is staged, tar and index, while the slow
/// one's registry still holds back half its body.
#[test]
fn with_layers_erofs_the_fast_layer_is_written_while_the_slow_one_still_downloads() {
    let (slow_tar, fast_tar) = two_layers();
    let (manifest, config, blobs) = image_of(&[slow_tar.clone(), fast_tar.clone()]);
    let slow = digest(&blobs[0]);
    let reg = Slow::start(
        "t/erofs",
        manifest,
        named(&[&config, &blobs[0], &blobs[1]]),
        Some(slow.clone()),
    );
    let lab = Lab::new();
    std::fs::write(
        lab.dir.path().join("config.yaml"),
        format!("{}layers: erofs\n", lab.base_config()),
    )
    .unwrap();
    let (mut child, rx) = spawn_pull(&lab, &reg.name("t/erofs"));
    // A staging directory of layers/erofs whose image holds the fast layer's tar (its file's
    // content is in it) and, once written, the index: an image of more than the tar.
    let fast_len = fast_tar.len() as u64;
    let staged = wait_until_else(
        Duration::from_secs(60),
        "the fast layer's EROFS image in a staging directory",
        || {
            names(&lab.root().join("layers/erofs"))
                .into_iter()
                .filter(|n| n.starts_with(".tmp-"))
                .map(|n| lab.root().join("layers/erofs").join(n).join("layer.erofs"))
                .find(|f| {
                    std::fs::read(f).is_ok_and(|b| {
                        b.len() as u64 > 4096 + fast_len
                            && b.windows(15).any(|w| w == b"the fast layer\n")
                    })
                })
        },
        || {
            let _ = child.kill();
        },
    );
    reg.release.store(true, Ordering::SeqCst);
    let seen = pulled(&mut child, &rx);
    // Staged, then committed: renamed away to the layer's name.
    assert!(!staged.exists());
    assert!(
        seen.iter().any(|l| l.contains(&format!(
            "layer {slow} kept as an EROFS image while it downloaded"
        ))),
        "{}",
        seen.join("\n")
    );
    for tar in [&slow_tar, &fast_tar] {
        let image = lab
            .root()
            .join("layers/erofs")
            .join(&digest(tar)[7..])
            .join("layer.erofs");
        assert!(image.is_file(), "{} is not there", image.display());
    }
    assert_eq!(
        names(&lab.root().join("layers/sha256"))
            .into_iter()
            .filter(|n| !n.starts_with('.'))
            .count(),
        0,
        "nothing unpacked"
    );
    lab.cmd(&["system", "fsck"]).expect_code(0);
}
