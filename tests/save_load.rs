//! `save`, `load` and `export`: Docker's archive format (the OCI layout plus `manifest.json`),
//! read back by dockling, podman and skopeo; podman's archives read by dockling; hostile and
//! broken archives refused with nothing tagged and nothing left in the store; a container's
//! file system exported and imported again.

mod common;
use common::{tar_of, Lab, E};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// `dockling save` into a file of the lab's directory; its bytes.
fn save(lab: &Lab, args: &[&str]) -> (PathBuf, Vec<u8>) {
    let out = lab.dir.path().join("saved.tar");
    let mut a = vec!["save", "-o", out.to_str().unwrap()];
    a.extend_from_slice(args);
    lab.cmd(&a).expect_code(0);
    let bytes = std::fs::read(&out).unwrap();
    (out, bytes)
}

/// A store holding `web:1` (busybox and a `/hello.txt` holding `text`), and that image saved:
/// the store (keep it: the archive is in its directory), the archive's path and its bytes.
fn saved_web(text: &str) -> (Lab, PathBuf, Vec<u8>) {
    let lab = common::image_on_busybox("web:1", &tar_of(&[E::File("hello.txt", text, 0o644)]));
    let (file, bytes) = save(&lab, &["web:1"]);
    (lab, file, bytes)
}

/// Every entry of a tar: name → (header, data).
fn entries(tar: &[u8]) -> Vec<(tar::Header, String, Vec<u8>)> {
    let mut a = tar::Archive::new(tar);
    a.entries()
        .unwrap()
        .map(|e| {
            let mut e = e.unwrap();
            let name = String::from_utf8_lossy(&e.path_bytes()).into_owned();
            let mut data = Vec::new();
            std::io::Read::read_to_end(&mut e, &mut data).unwrap();
            (e.header().clone(), name, data)
        })
        .collect()
}

/// A tar of `entries` as given (headers kept, sizes fixed up to the data).
fn retar(entries: &[(tar::Header, String, Vec<u8>)]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (h, _, data) in entries {
        let mut h = h.clone();
        h.set_size(data.len() as u64);
        h.set_cksum();
        b.append(&h, &data[..]).unwrap();
    }
    b.into_inner().unwrap()
}

/// What the store holds, to show a refused load changed nothing: the blob and layer
/// directories' names (temporary files included) and `index.json`'s bytes.
fn store_state(lab: &Lab) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for dir in [
        "oci/blobs/sha256",
        "layers/sha256",
        "layers/unpacked",
        "oci",
    ] {
        for e in std::fs::read_dir(lab.root().join(dir)).unwrap() {
            let e = e.unwrap();
            out.insert(
                format!("{dir}/{}", e.file_name().to_string_lossy()),
                String::new(),
            );
        }
    }
    out.insert(
        "index.json".into(),
        std::fs::read_to_string(lab.root().join("oci/index.json")).unwrap(),
    );
    out
}

/// `dockling args…`, which must exit 0: its stdout.
fn ok(lab: &Lab, args: &[&str]) -> String {
    let o = lab.cmd(args);
    o.expect_code(0);
    o.stdout
}

/// `dockling load -i` of `bytes` (written to a file of the lab's directory).
fn load_bytes(lab: &Lab, bytes: &[u8]) -> common::Out {
    let p = lab.dir.path().join("input.tar");
    std::fs::write(&p, bytes).unwrap();
    lab.cmd(&["load", "-i", p.to_str().unwrap()])
}

#[test]
fn save_writes_dockers_archive_deterministically() {
    let lab = Lab::with_busybox();
    let (_, bytes) = save(&lab, &["busybox"]);
    let id = ok(&lab, &["images", "-q", "--no-trunc"]);
    let id = id.trim();
    let e = entries(&bytes);
    let names: Vec<&str> = e.iter().map(|(_, n, _)| n.as_str()).collect();
    // Docker 25's layout, in its order: the blobs, then index.json, manifest.json, oci-layout,
    // repositories.
    assert_eq!(names[..2], ["blobs/", "blobs/sha256/"], "{names:?}");
    assert_eq!(
        names[names.len() - 4..],
        ["index.json", "manifest.json", "oci-layout", "repositories"]
    );
    assert_eq!(names.len(), 2 + 3 + 4, "config, layer, manifest: {names:?}");
    for (h, n, data) in &e {
        assert_eq!(h.mtime().unwrap(), 0, "{n}");
        assert_eq!((h.uid().unwrap(), h.gid().unwrap()), (0, 0), "{n}");
        if let Some(hex) = n.strip_prefix("blobs/sha256/").filter(|h| !h.is_empty()) {
            use sha2::Digest;
            assert_eq!(format!("{:x}", sha2::Sha256::digest(data)), hex, "{n}");
        }
    }
    let get = |name: &str| -> serde_json::Value {
        serde_json::from_slice(&e.iter().find(|(_, n, _)| n == name).unwrap().2).unwrap()
    };
    let manifest = get("manifest.json");
    assert_eq!(
        manifest[0]["Config"],
        format!("blobs/sha256/{}", &id[7..]),
        "{manifest}"
    );
    assert_eq!(
        manifest[0]["RepoTags"],
        serde_json::json!(["busybox:latest"])
    );
    let layer = manifest[0]["Layers"][0].as_str().unwrap().to_string();
    let index = get("index.json");
    let ann = &index["manifests"][0]["annotations"];
    assert_eq!(
        ann["io.containerd.image.name"],
        "docker.io/library/busybox:latest"
    );
    assert_eq!(ann["org.opencontainers.image.ref.name"], "latest");
    assert_eq!(get("oci-layout")["imageLayoutVersion"], "1.0.0");
    assert_eq!(
        get("repositories")["busybox"]["latest"],
        layer.trim_start_matches("blobs/sha256/")
    );

    // The same bytes again, and on stdout.
    let (_, again) = save(&lab, &["busybox"]);
    assert!(again == bytes, "a second save wrote other bytes");
    let out = lab.command(&["save", "busybox"]).output().unwrap();
    assert!(out.status.success());
    assert!(out.stdout == bytes, "save to stdout differs from save -o");

    // oci-archive: the layout alone.
    let (_, oci) = save(&lab, &["--format", "oci-archive", "busybox"]);
    let names: Vec<String> = entries(&oci).into_iter().map(|(_, n, _)| n).collect();
    assert!(
        !names
            .iter()
            .any(|n| n == "manifest.json" || n == "repositories"),
        "{names:?}"
    );
    assert!(names.iter().any(|n| n == "index.json"));

    // A missing image: Docker's exit code 1, no file left.
    let missing = lab.dir.path().join("missing.tar");
    let o = lab.cmd(&["save", "-o", missing.to_str().unwrap(), "nosuch:1"]);
    o.expect_stderr(1, "nosuch");
    assert!(!missing.exists());
    let left: Vec<_> = std::fs::read_dir(lab.dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".tmp-"))
        .collect();
    assert!(left.is_empty(), "temporary files left: {left:?}");
}

#[test]
fn save_and_load_round_trip_into_another_store_and_run() {
    let lab = common::image_on_busybox(
        "web:1",
        &tar_of(&[
            E::Dir("www/", 0o755),
            E::File("www/index.html", "hello web\n", 0o644),
        ]),
    );
    let (file, _) = save(&lab, &["web:1", "busybox"]);
    let before = ok(
        &lab,
        &[
            "images",
            "--no-trunc",
            "--format",
            "{{.Repository}}:{{.Tag}} {{.ID}}",
        ],
    );

    let other = Lab::new();
    let o = other.cmd(&["load", "-i", file.to_str().unwrap()]);
    o.expect_code(0);
    assert_eq!(
        o.stdout,
        "Loaded image: web:1\nLoaded image: busybox:latest\n"
    );
    let after = ok(
        &other,
        &[
            "images",
            "--no-trunc",
            "--format",
            "{{.Repository}}:{{.Tag}} {{.ID}}",
        ],
    );
    let sorted = |s: &str| {
        let mut v: Vec<String> = s.lines().map(String::from).collect();
        v.sort();
        v
    };
    assert_eq!(sorted(&after), sorted(&before), "same images, same ids");
    // The shared busybox layer is stored once: two layers in all.
    assert_eq!(
        std::fs::read_dir(other.root().join("layers/unpacked"))
            .unwrap()
            .count(),
        2
    );
    let run = other.cmd(&[
        "run",
        "--rm",
        "--network",
        "none",
        "web:1",
        "cat",
        "/www/index.html",
    ]);
    run.expect_code(0);
    assert_eq!(run.stdout, "hello web\n");

    // From stdin, gzip-compressed as `docker save | gzip` makes it; loading again is harmless.
    let gz = Command::new("gzip")
        .args(["-c", file.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(gz.status.success());
    let mut child = other
        .command(&["load"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), &gz.stdout).unwrap();
    let o = child.wait_with_output().unwrap();
    assert!(o.status.success());
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        "Loaded image: web:1\nLoaded image: busybox:latest\n"
    );
    // `-q`: nothing printed. An image saved by id loads untagged.
    let id = ok(&lab, &["images", "-q", "--no-trunc", "web:1"]);
    let (by_id, _) = save(&lab, &[id.trim()]);
    let third = Lab::new();
    let o = third.cmd(&["load", "-i", by_id.to_str().unwrap()]);
    o.expect_code(0);
    assert_eq!(o.stdout, format!("Loaded image ID: {}\n", id.trim()));
    let o = third.cmd(&["load", "-q", "-i", file.to_str().unwrap()]);
    o.expect_code(0);
    assert_eq!(o.stdout, "");
}

/// podman with a store of its own in a temporary directory. Its containers run with
/// `--cgroups=disabled` (crun then touches no cgroup, so it needs no hugetlb hierarchy and
/// leaves no `libpod_parent`), and its default rlimits come from a containers.conf of the
/// test's own (CONTAINERS_CONF): podman's defaults are above this machine's hard limits.
struct Podman {
    dir: tempfile::TempDir,
}

impl Podman {
    fn new() -> Podman {
        let dir = tempfile::Builder::new()
            .prefix("dockling-podman-")
            .tempdir()
            .unwrap();
        std::fs::write(
            dir.path().join("containers.conf"),
            "[containers]\ndefault_ulimits = [\"nofile=20000:20000\", \"nproc=32768:32768\"]\n",
        )
        .unwrap();
        Podman { dir }
    }

    fn cmd(&self, args: &[&str]) -> common::Out {
        let root = self.dir.path().join("root");
        let run = self.dir.path().join("run");
        let out = Command::new("podman")
            .args([
                "--root",
                root.to_str().unwrap(),
                "--runroot",
                run.to_str().unwrap(),
            ])
            .args(["--storage-driver", "vfs"])
            .args(args)
            .env("CONTAINERS_CONF", self.dir.path().join("containers.conf"))
            .stdin(Stdio::null())
            .output()
            .expect("podman is not installed: scripts/test installs it (apt-get install podman)");
        out.into()
    }
}

impl Drop for Podman {
    fn drop(&mut self) {
        let _ = self.cmd(&["rm", "-a", "-f"]);
        let _ = self.cmd(&["rmi", "-a", "-f"]);
        // Nothing podman mounted may stay under the directory about to be removed.
        common::unmount_under(self.dir.path());
    }
}

#[test]
fn podman_loads_and_runs_what_dockling_saved() {
    let (lab, file, _) = saved_web("from dockling\n");
    let podman = Podman::new();
    let o = podman.cmd(&["load", "-i", file.to_str().unwrap()]);
    o.expect_stdout(0, "Loaded image: docker.io/library/web:1");
    let o = podman.cmd(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--cgroups=disabled",
        "web:1",
        "cat",
        "/hello.txt",
    ]);
    o.expect_code(0);
    assert_eq!(o.stdout, "from dockling\n");
    // And the OCI side alone, as podman reads an oci-archive.
    let (oci, _) = save(&lab, &["--format", "oci-archive", "web:1"]);
    let o = podman.cmd(&["load", "-i", oci.to_str().unwrap()]);
    o.expect_code(0);
}

#[test]
fn dockling_loads_and_runs_what_podman_saved() {
    let lab = Lab::with_busybox();
    let (file, _) = save(&lab, &["busybox"]);
    let podman = Podman::new();
    podman
        .cmd(&["load", "-i", file.to_str().unwrap()])
        .expect_code(0);
    // podman's own image, with a layer of its making on top.
    let o = podman.cmd(&[
        "run",
        "--name",
        "mk",
        "--network",
        "none",
        "--cgroups=disabled",
        "busybox",
        "sh",
        "-c",
        "echo made by podman > /made",
    ]);
    o.expect_code(0);
    podman
        .cmd(&["commit", "-q", "mk", "localhost/made:1"])
        .expect_code(0);
    for format in ["docker-archive", "oci-archive"] {
        let out = lab.dir.path().join(format!("{format}.tar"));
        podman
            .cmd(&[
                "save",
                "--format",
                format,
                "-o",
                out.to_str().unwrap(),
                "localhost/made:1",
            ])
            .expect_code(0);
        let fresh = Lab::new();
        let o = fresh.cmd(&["load", "-i", out.to_str().unwrap()]);
        o.expect_code(0);
        assert_eq!(o.stdout, "Loaded image: localhost/made:1\n", "{format}");
        let run = fresh.cmd(&[
            "run",
            "--rm",
            "--network",
            "none",
            "localhost/made:1",
            "cat",
            "/made",
        ]);
        run.expect_code(0);
        assert_eq!(run.stdout, "made by podman\n", "{format}");
        // Nothing but the image: config, manifest, two layers (podman's docker-archive also
        // holds per-layer json and VERSION files, which are not kept).
        let blobs = std::fs::read_dir(fresh.root().join("oci/blobs/sha256"))
            .unwrap()
            .count();
        assert_eq!(blobs, 4, "{format}");
    }
}

#[test]
fn skopeo_reads_docklings_archive() {
    let lab = Lab::with_busybox();
    let (file, _) = save(&lab, &["busybox"]);
    let id = ok(&lab, &["images", "-q", "--no-trunc"]);
    for (source, tag) in [("docker-archive", "a"), ("oci-archive", "b")] {
        let dest = format!("oci:{}:{tag}", lab.dir.path().join("skopeo").display());
        let out = Command::new("skopeo")
            .args(["copy", &format!("{source}:{}", file.display()), &dest])
            .output()
            .expect("skopeo is not installed: scripts/test installs it (apt-get install skopeo)");
        assert!(
            out.status.success(),
            "skopeo copy {source}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // The OCI side keeps the image id (the config's digest) byte for byte.
    let out = Command::new("skopeo")
        .args([
            "inspect",
            "--raw",
            "--config",
            &format!("oci-archive:{}", file.display()),
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    use sha2::Digest;
    assert_eq!(
        format!("sha256:{:x}", sha2::Sha256::digest(&out.stdout)),
        id.trim()
    );
}

/// Load `bytes` into a store holding busybox: refused with exit 1 and a message containing
/// `why`, and the store exactly as before (no tag, blob, layer or temporary file).
fn refused(lab: &Lab, bytes: &[u8], why: &str) {
    let before = store_state(lab);
    let o = load_bytes(lab, bytes);
    o.expect_code(1);
    assert!(o.stderr.contains(why), "expected {why:?} in: {}", o.stderr);
    assert_eq!(o.stdout, "");
    assert_eq!(
        store_state(lab),
        before,
        "the refused load left something ({why})"
    );
}

#[test]
fn broken_and_hostile_archives_are_refused_leaving_nothing() {
    let (_source, _, good) = saved_web("hi\n");
    let lab = Lab::with_busybox();
    let e = entries(&good);
    let manifest: serde_json::Value =
        serde_json::from_slice(&e.iter().find(|(_, n, _)| n == "manifest.json").unwrap().2)
            .unwrap();
    let top = manifest[0]["Layers"][1].as_str().unwrap().to_string();

    // Cut in the middle: the top layer is the largest... the cut falls inside an entry.
    refused(&lab, &good[..good.len() / 2], "truncated");
    refused(&lab, &good[..good.len() - 3000], "");
    // A layer whose content does not hash to its name.
    let mut bad = e.clone();
    let l = bad.iter_mut().find(|(_, n, _)| *n == top).unwrap();
    let i = l.2.len() / 2;
    l.2[i] ^= 0xff;
    refused(&lab, &retar(&bad), "not to its name");
    // The same for a layer the store already has (busybox's: only hashed, not written
    // again), whose stored copy stays as it was.
    let base = manifest[0]["Layers"][0].as_str().unwrap().to_string();
    let stored = lab.root().join("oci").join(&base);
    let stored_before = std::fs::read(&stored).unwrap();
    let mut bad = e.clone();
    let l = bad.iter_mut().find(|(_, n, _)| *n == base).unwrap();
    let i = l.2.len() / 3;
    l.2[i] ^= 0xff;
    refused(&lab, &retar(&bad), "not to its name");
    assert!(std::fs::read(&stored).unwrap() == stored_before);
    // A blob manifest.json names, missing.
    let missing: Vec<_> = e.iter().filter(|(_, n, _)| *n != top).cloned().collect();
    refused(&lab, &retar(&missing), "which is not in the archive");
    // Entries named out of the archive, at a bait directory standing in for the host:
    // ../, absolute, hard links and symlinks to it; a device.
    let bait = common::bait_dir();
    let bait_before = common::tree_state(bait.path());
    let up = format!(
        "{}{}",
        "../".repeat(12),
        bait.path().display().to_string().trim_start_matches('/')
    );
    let abs = bait.path().display().to_string();
    let layer_name = format!("blobs/sha256/{}", top.trim_start_matches("blobs/sha256/"));
    for (evil, why) in [
        (
            tar_of(&[E::File(&format!("{up}/file"), "x", 0o644)]),
            "outside the archive",
        ),
        (
            tar_of(&[E::File(&format!("{abs}/passwd"), "x", 0o644)]),
            "outside the archive",
        ),
        (tar_of(&[E::Hard("h", &format!("{abs}/file"))]), ""),
        (tar_of(&[E::Sym("s", &format!("{abs}/file"))]), ""),
        (
            tar_of(&[E::File("../evil", "x", 0o644)]),
            "outside the archive",
        ),
        (
            tar_of(&[E::File("/etc/evil", "x", 0o644)]),
            "outside the archive",
        ),
        (
            tar_of(&[E::File("blobs/../../evil", "x", 0o644)]),
            "outside the archive",
        ),
        (
            tar_of(&[E::Dev("dev", tar::EntryType::Char, 1, 3)]),
            "which no image archive holds",
        ),
    ] {
        let mut with = entries(&evil);
        with.extend(e.iter().cloned());
        if why.is_empty() {
            // A link no manifest names is only a name: the archive loads, nothing is written
            // through it.
            load_bytes(&lab, &retar(&with)).expect_code(0);
            lab.cmd(&["rmi", "web:1"]).expect_code(0);
        } else {
            refused(&lab, &retar(&with), why);
        }
    }
    // A blob entry that is a link to the bait, and a manifest naming it.
    let layer_as = |link: E| {
        let mut linked: Vec<_> = e
            .iter()
            .filter(|(_, n, _)| *n != layer_name)
            .cloned()
            .collect();
        linked.extend(entries(&tar_of(&[link])));
        retar(&linked)
    };
    let hard = format!("{abs}/file");
    let sym = format!("{up}/file");
    for link in [E::Hard(&layer_name, &hard), E::Sym(&layer_name, &sym)] {
        refused(&lab, &layer_as(link), "leads nowhere inside the archive");
    }
    assert_eq!(
        common::tree_state(bait.path()),
        bait_before,
        "the bait was touched"
    );
    // manifest.json pointing at a symlink out of the archive.
    let mut linked: Vec<_> = e
        .iter()
        .filter(|(_, n, _)| n != "manifest.json")
        .cloned()
        .collect();
    linked.extend(entries(&tar_of(&[E::Sym(
        "evil.tar",
        "../../../etc/passwd",
    )])));
    let mut m = manifest.clone();
    m[0]["Layers"][1] = "evil.tar".into();
    let mut h = tar::Header::new_ustar();
    h.set_path("manifest.json").unwrap();
    h.set_mode(0o644);
    linked.push((h, "manifest.json".into(), serde_json::to_vec(&m).unwrap()));
    refused(&lab, &retar(&linked), "leads nowhere inside the archive");
    // A layer whose content is not the diff_id its config promises: a valid tar of other
    // content, under its own (right) digest, with the manifests pointing at it.
    let other = tar_of(&[E::File("other.txt", "other\n", 0o644)]);
    let other_name = {
        use sha2::Digest;
        format!("blobs/sha256/{:x}", sha2::Sha256::digest(&other))
    };
    let mut swapped: Vec<_> = e
        .iter()
        .filter(|(_, n, _)| n != "manifest.json" && n != "index.json")
        .cloned()
        .collect();
    let mut h = tar::Header::new_ustar();
    h.set_path(&other_name).unwrap();
    h.set_mode(0o644);
    swapped.push((h.clone(), other_name.clone(), other));
    let mut m = manifest.clone();
    m[0]["Layers"][1] = other_name.clone().into();
    h.set_path("manifest.json").unwrap();
    swapped.push((h, "manifest.json".into(), serde_json::to_vec(&m).unwrap()));
    refused(&lab, &retar(&swapped), "the image config says");
    // Not a tar at all; an empty archive.
    refused(
        &lab,
        b"hello, this is not a tar file at all\n",
        "not a valid tar archive",
    );
    refused(&lab, &[0u8; 1024], "holds no image");
    // A missing file.
    let o = lab.cmd(&["load", "-i", "/nonexistent/x.tar"]);
    o.expect_stderr(1, "open /nonexistent/x.tar");

    // The store still works: the good archive loads.
    load_bytes(&lab, &good).expect_code(0);
    assert!(ok(&lab, &["images", "--format", "{{.Repository}}:{{.Tag}}"]).contains("web:1"));
}

#[test]
fn a_terminal_is_refused_with_dockers_messages() {
    let lab = Lab::with_busybox();
    lab.cmd(&[
        "run",
        "--name",
        "cx",
        "--network",
        "none",
        "busybox",
        "true",
    ])
    .expect_code(0);
    for (args, want) in [
        ("load", "requested load from stdin, but stdin is empty"),
        (
            "save busybox",
            "cowardly refusing to save to a terminal. Use the -o flag or redirect",
        ),
        (
            "export c",
            "cowardly refusing to save to a terminal. Use the -o flag or redirect",
        ),
    ] {
        let t = lab.in_terminal("", "", args);
        let (out, code) = t.wait(std::time::Duration::from_secs(60), |_| {});
        assert_eq!(code, 1, "{args}: {out}");
        assert!(out.contains(want), "{args}: {out}");
    }
}

#[test]
fn export_writes_the_merged_file_system_and_import_reads_it_back() {
    let lab = Lab::with_busybox();
    let o = lab.cmd(&[
        "run",
        "--name",
        "my",
        "--network",
        "none",
        "busybox",
        "sh",
        "-c",
        "echo hi > /root/x; ln /root/x /root/x2; rm /etc/group; mkdir -p /a/b; echo c > /a/b/c",
    ]);
    o.expect_code(0);
    let fs = lab.dir.path().join("fs.tar");
    lab.cmd(&["export", "my", "-o", fs.to_str().unwrap()])
        .expect_code(0);
    let e = entries(&std::fs::read(&fs).unwrap());
    let names: Vec<&str> = e.iter().map(|(_, n, _)| n.as_str()).collect();
    for want in ["root/x", "a/b/c", "bin/busybox", "etc/passwd"] {
        assert!(
            names.contains(&want),
            "{want} missing from the export: {names:?}"
        );
    }
    assert!(!names.contains(&"etc/group"), "a deleted file is exported");
    assert!(
        !names
            .iter()
            .any(|n| n.contains(".wh.") || n.starts_with("proc/")),
        "whiteouts or mounted /proc in the export"
    );
    let x = e.iter().find(|(_, n, _)| n == "root/x").unwrap();
    assert_eq!(x.2, b"hi\n");
    // A second name of the same file is a hard link, as in Docker's export.
    let x2 = e.iter().find(|(_, n, _)| n == "root/x2").unwrap();
    assert_eq!(x2.0.entry_type(), tar::EntryType::Link);
    assert_eq!(x2.0.link_name().unwrap().unwrap(), Path::new("root/x"));

    // export | import: the same files, runnable.
    let mut exp = lab
        .command(&["export", "my"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let imp = lab
        .command(&["import", "-", "my-fs:1"])
        .stdin(exp.stdout.take().unwrap())
        .output()
        .unwrap();
    assert!(exp.wait().unwrap().success());
    assert!(
        imp.status.success(),
        "{}",
        String::from_utf8_lossy(&imp.stderr)
    );
    let run = lab.cmd(&[
        "run",
        "--rm",
        "--network",
        "none",
        "my-fs:1",
        "sh",
        "-c",
        "cat /root/x /a/b/c; test -e /etc/group || echo gone; stat -c %h /root/x2",
    ]);
    run.expect_code(0);
    assert_eq!(run.stdout, "hi\nc\ngone\n2\n");

    // A running container: what it wrote so far, not its mounted /proc.
    lab.cmd(&[
        "run",
        "-d",
        "--name",
        "live",
        "--network",
        "none",
        "busybox",
        "sh",
        "-c",
        "echo live > /live; touch /ready; exec sleep 1000",
    ])
    .expect_code(0);
    let running = lab.dir.path().join("live.tar");
    common::wait_until(
        std::time::Duration::from_secs(20),
        "the container's /ready",
        || {
            lab.cmd(&["export", "live", "-o", running.to_str().unwrap()])
                .expect_code(0);
            let e = entries(&std::fs::read(&running).unwrap());
            e.iter().any(|(_, n, _)| n == "ready").then_some(e)
        },
    );
    let e = entries(&std::fs::read(&running).unwrap());
    assert_eq!(e.iter().find(|(_, n, _)| n == "live").unwrap().2, b"live\n");
    assert!(
        !e.iter().any(|(_, n, _)| n.starts_with("proc/")),
        "mounted /proc exported"
    );
    lab.cmd(&["rm", "-f", "live"]).expect_code(0);

    // A missing container: Docker's exit code 1, no file.
    let none = lab.dir.path().join("none.tar");
    let o = lab.cmd(&["export", "nosuch", "-o", none.to_str().unwrap()]);
    o.expect_stderr(1, "nosuch");
    assert!(!none.exists());
}

/// A tar entry: a regular file `name` holding `data`.
fn file(name: &str, data: &[u8]) -> (tar::Header, String, Vec<u8>) {
    let mut h = tar::Header::new_ustar();
    h.set_path(name).unwrap();
    h.set_mode(0o644);
    h.set_size(data.len() as u64);
    (h, name.to_string(), data.to_vec())
}

fn sha256(data: &[u8]) -> String {
    use sha2::Digest;
    format!("{:x}", sha2::Sha256::digest(data))
}

#[test]
fn older_docker_archives_and_multi_platform_oci_layouts_load() {
    let (_source, _, good) = saved_web("layouts\n");
    let e = entries(&good);
    let get = |name: &str| e.iter().find(|(_, n, _)| n == name).unwrap().2.clone();
    let manifest: serde_json::Value = serde_json::from_slice(&get("manifest.json")).unwrap();
    let config_name = manifest[0]["Config"].as_str().unwrap();
    let config = get(config_name);
    let layers: Vec<Vec<u8>> = manifest[0]["Layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| get(l.as_str().unwrap()))
        .collect();
    let id = format!("sha256:{}", sha256(&config));

    // Docker before 25: `<id>.json`, `<v1 id>/layer.tar` (+ json, VERSION), manifest.json.
    let mut old = vec![file(&format!("{}.json", sha256(&config)), &config)];
    let mut paths = Vec::new();
    for (i, l) in layers.iter().enumerate() {
        let v1 = format!("{:064x}", i + 1);
        old.push(file(&format!("{v1}/VERSION"), b"1.0"));
        old.push(file(&format!("{v1}/json"), br#"{"id":"x"}"#));
        old.push(file(&format!("{v1}/layer.tar"), l));
        paths.push(format!("{v1}/layer.tar"));
    }
    let m = serde_json::json!([{"Config": format!("{}.json", sha256(&config)),
        "RepoTags": ["web:1"], "Layers": paths}]);
    old.push(file("manifest.json", &serde_json::to_vec(&m).unwrap()));
    let lab = Lab::new();
    let o = load_bytes(&lab, &retar(&old));
    o.expect_code(0);
    assert_eq!(o.stdout, "Loaded image: web:1\n");
    assert_eq!(ok(&lab, &["images", "-q", "--no-trunc"]).trim(), id);
    let run = lab.cmd(&[
        "run",
        "--rm",
        "--network",
        "none",
        "web:1",
        "cat",
        "/hello.txt",
    ]);
    run.expect_code(0);
    assert_eq!(run.stdout, "layouts\n");
    // Config, manifest, two layers: the v1 json and VERSION files are not kept.
    assert_eq!(
        std::fs::read_dir(lab.root().join("oci/blobs/sha256"))
            .unwrap()
            .count(),
        4
    );

    // The same with a config whose name is not its digest: refused.
    let mut renamed = old.clone();
    renamed[0] = file(&format!("{}.json", "ab".repeat(32)), &config);
    let m = serde_json::json!([{"Config": format!("{}.json", "ab".repeat(32)),
        "RepoTags": ["web:2"], "Layers": paths}]);
    let last = renamed.len() - 1;
    renamed[last] = file("manifest.json", &serde_json::to_vec(&m).unwrap());
    refused(
        &lab,
        &retar(&renamed),
        &format!("the config {}.json hashes to", "ab".repeat(32)),
    );

    // An OCI layout whose index.json names a multi-platform index (Docker's containerd
    // store saves so), without manifest.json.
    let index: serde_json::Value = serde_json::from_slice(&get("index.json")).unwrap();
    let image_manifest = &index["manifests"][0];
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        a => a,
    };
    let nested = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [
            {"mediaType": image_manifest["mediaType"], "digest": image_manifest["digest"],
             "size": image_manifest["size"], "platform": {"os": "linux", "architecture": arch}},
        ],
    });
    let nested = serde_json::to_vec(&nested).unwrap();
    let top = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [{"mediaType": "application/vnd.oci.image.index.v1+json",
            "digest": format!("sha256:{}", sha256(&nested)), "size": nested.len(),
            "annotations": {"io.containerd.image.name": "docker.io/library/web:3"}}],
    });
    let mut oci: Vec<_> = e
        .iter()
        .filter(|(_, n, _)| n.starts_with("blobs/sha256/") && n.len() > 13)
        .cloned()
        .collect();
    oci.push(file(&format!("blobs/sha256/{}", sha256(&nested)), &nested));
    oci.push(file("index.json", &serde_json::to_vec(&top).unwrap()));
    oci.push(file("oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#));
    let fresh = Lab::new();
    let o = load_bytes(&fresh, &retar(&oci));
    o.expect_code(0);
    assert_eq!(o.stdout, "Loaded image: web:3\n");
    assert_eq!(ok(&fresh, &["images", "-q", "--no-trunc"]).trim(), id);
}

#[test]
fn a_saved_archive_is_for_its_owner_alone() {
    use std::os::unix::fs::PermissionsExt;
    let lab = Lab::with_busybox();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("busybox.tar");
    lab.cmd(&["save", "-o", out.to_str().unwrap(), "busybox"])
        .expect_code(0);
    // As Docker's CLI writes it: 0600, an image's files are not every local user's.
    let mode = std::fs::metadata(&out).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "{mode:o}");
}

/// Two loads of one archive at once: the blobs one writes are the ones the other finds
/// already stored, and each cleans up what it wrote and no image names. Both must succeed,
/// the image must run, and the store they leave must be sound (`system fsck`). Four rounds,
/// each from an empty store, to give the two a chance to meet in every order.
#[test]
fn two_loads_of_one_archive_at_once_both_succeed_and_leave_a_sound_store() {
    let (_lab, file, _) = saved_web("from the archive\n");
    let other = Lab::new();
    for round in 0..4 {
        let loads: Vec<_> = (0..2)
            .map(|_| {
                other
                    .command(&["load", "-i", file.to_str().unwrap()])
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .spawn()
                    .expect("run dockling")
            })
            .collect();
        for l in loads {
            let o: common::Out = l.wait_with_output().expect("wait for dockling").into();
            o.expect_code(0);
            assert_eq!(o.stdout, "Loaded image: web:1\n", "round {round}");
        }
        let o = other.run(&["--network", "none", "web:1", "cat", "/hello.txt"]);
        o.expect_code(0);
        assert_eq!(o.stdout, "from the archive\n", "round {round}");
        other.cmd(&["system", "fsck"]).expect_stdout(0, "is clean");
        other.cmd(&["rmi", "web:1"]).expect_code(0);
    }
}
