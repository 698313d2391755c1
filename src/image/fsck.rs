//! `dockling system fsck [--repair]`: check the whole store and repair what can be proven
//! broken or garbage, so a damaged store is never a dead end.
//!
//! What is checked, in order: `index.json` parses as an image index; every blob has the
//! digest it is named by (and the size its descriptors give); every index entry's manifest is
//! there, and the config and layers that manifest names; every layer of an image is unpacked;
//! blobs and unpacked layers no image refers to (orphans) or whose unpack or deletion was cut
//! short (a directory without its marker, a marker without its directory); temporary files,
//! trash, leases and per-object locks a killed command left; container records that cannot be
//! read or whose image is gone; cgroups of containers that no longer run (under the configured parent, in every
//! mounted hierarchy); and mounts under the store, which never exist on the host (containers
//! mount in their own mount namespace).
//!
//! The check changes nothing (the store is read as it is, not opened and swept). `--repair`
//! only deletes what it can prove is garbage, by the store's own rules (ARCHITECTURE.md,
//! "Crash safety"): a temporary file only when its owner (pid and start time,
//! `files::owner_alive`) is gone; an orphan blob or layer only when no live lease names it (a
//! pull or import in flight leases what it writes); a lease or lock file only when nobody
//! holds it; a half-unpacked layer goes to the trash as every deleted layer does; a container
//! directory only when no dockling command that could be creating it runs; a cgroup only when
//! it holds no process (rmdir(2) refuses one that does). Damaged blobs are moved aside to
//! `<root>/lost+found/`, never deleted, and the next `pull` fetches them again; a broken
//! `index.json` is moved aside as `index.json.broken-<time>` and rebuilt from the image
//! manifests among the blobs (untagged: the tags lived in the broken file).
//!
//! What it inspects is read as plain JSON, not as oci-spec types, on purpose: a damaged
//! manifest or index must be looked into field by field to say what is wrong with it. What it
//! writes (the rebuilt index) is oci-spec's `ImageIndex` (`crate::image::oci`).

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use oci_spec::image::{Descriptor, ImageManifest, MediaType};
use serde_json::Value;

use super::oci;
use super::store::{hash_file, hex_of, tag_of, Image, Store};
use super::ImageError;
use crate::container::{lock, write_atomic, Container, Status};
use crate::error::{Error, Result};

/// `pull` asks this before it trusts a blob already in the store (kept here, where it has
/// always been found; the check itself is the store's, `store::blob_intact`).
pub use super::store::blob_intact;

impl Store {
    /// An image found by its `index.json` entry alone, for `rmi` of a damaged image: its id
    /// is the config digest its manifest names (the manifest digest when the manifest itself
    /// is damaged); the config is not read. The same walk as [`Store::find`], matching the
    /// manifest digest too (a damaged manifest names no config).
    pub fn find_damaged(&self, index: &Value, name: &str) -> Result<Image> {
        self.find_by(index, name, &|m| Ok(self.skeleton(m)), &|m| {
            Ok(self
                .skeleton(m)
                .map(|i| vec![i.id, i.manifest_digest])
                .unwrap_or_default())
        })
    }

    /// Every image of the index, a damaged one too (as its skeleton, with why it is damaged),
    /// for `image prune`, which must be able to remove what it cannot read.
    pub fn list_even_damaged(&self) -> Result<Vec<(Image, Option<String>)>> {
        let index = self.read_index()?;
        let mut out = Vec::new();
        for m in index["manifests"].as_array().into_iter().flatten() {
            match self.entry(m) {
                Ok(Some(image)) => out.push((image, None)),
                Ok(None) => {}
                Err(e) => {
                    if let Some(image) = self.skeleton(m) {
                        out.push((image, Some(e.to_string())));
                    }
                }
            }
        }
        Ok(out)
    }

    /// What an index entry says without reading the config (see `find_damaged`).
    pub(crate) fn skeleton(&self, m: &Value) -> Option<Image> {
        let digest = m["digest"].as_str().filter(|d| hex_of(d).is_ok())?;
        let manifest: Option<Value> = self
            .read_blob(digest)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok());
        let id = manifest
            .as_ref()
            .and_then(|m| m["config"]["digest"].as_str())
            .filter(|d| hex_of(d).is_ok())
            .unwrap_or(digest);
        let layers = manifest
            .as_ref()
            .and_then(|m| m["layers"].as_array())
            .map(|l| {
                l.iter()
                    .filter_map(|d| d["digest"].as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default();
        Some(Image {
            id: id.to_string(),
            reference: tag_of(m),
            manifest_digest: digest.to_string(),
            repo_digest: None,
            config: Default::default(),
            created: None,
            size: 0,
            size_estimated: true,
            layers,
            diff_ids: Vec::new(),
        })
    }
}

/// What `--repair` does about one finding.
#[derive(Debug, Clone)]
pub enum Fix {
    /// Move `index.json` aside and rebuild it from the manifests among the blobs.
    RebuildIndex,
    /// Move a damaged blob to `lost+found/`.
    MoveAside(PathBuf),
    /// Drop the index entries with this digest (or, `None`, without a usable one).
    DropEntry(Option<String>),
    /// Unpack a layer again from its (intact) blob.
    Unpack {
        /// The layer blob.
        blob: String,
        /// Its diff_id, the directory's name.
        diff_id: String,
    },
    /// Delete files or directory trees that are garbage.
    Remove(Vec<PathBuf>),
    /// rmdir(2) an empty cgroup.
    RemoveCgroup(PathBuf),
    /// Delete an unpacked layer (marker, then directory through the trash), as `rmi` does.
    DiscardLayer(String),
    /// Delete a blob no image and no live lease names (checked again under the store lock).
    DiscardBlob(String),
    /// Unmount and delete a layer's EROFS image (`--layers erofs`) whose kept tar is damaged,
    /// then write it again from its blob (containers made on it need it to start).
    RewriteErofs {
        /// The layer's blob, `sha256:…`, if the manifest names a valid one.
        blob: Option<String>,
        /// The layer's diff_id.
        diff_id: String,
    },
    /// Remove a lease or lock file if still nobody holds it.
    RemoveUnheld(PathBuf),
    /// Nothing can be proven: leave it, and say why and what the user can do.
    Keep(String),
}

impl Fix {
    /// What `--repair` would do, for the check's output.
    fn plan(&self, root: &Path) -> String {
        match self {
            Fix::RebuildIndex => "--repair moves it aside as index.json.broken-<time> and rebuilds it from the image manifests among the blobs, untagged".into(),
            Fix::MoveAside(_) => format!(
                "--repair moves it to {}; the next pull fetches it again",
                root.join("lost+found").display()
            ),
            Fix::DropEntry(_) => "--repair drops the entry: pull the image again".into(),
            Fix::Unpack { blob, .. } => format!("--repair unpacks it again from blob {blob}"),
            Fix::Remove(_) => "--repair removes it".into(),
            Fix::RemoveCgroup(_) => "--repair removes the empty cgroup".into(),
            Fix::DiscardLayer(_) => "--repair moves it to the trash; the next pull or run that needs it unpacks it again".into(),
            Fix::RemoveUnheld(_) | Fix::DiscardBlob(_) => "--repair removes it".into(),
            Fix::RewriteErofs { .. } => "--repair unmounts it (when no container uses it), removes it and writes it again from its blob".into(),
            Fix::Keep(why) => format!("--repair keeps it: {why}"),
        }
    }
}

/// One thing found wrong.
#[derive(Debug, Clone)]
pub struct Finding {
    /// What and where: `damaged blob sha256:…: …`.
    pub what: String,
    /// What `--repair` does about it.
    pub fix: Fix,
}

impl Finding {
    /// The line `system fsck` prints.
    pub fn line(&self, root: &Path) -> String {
        format!("{} ({})", self.what, self.fix.plan(root))
    }
}

/// Other dockling processes now running, with their start times: what they write is never
/// taken for garbage.
struct Commands {
    /// The earliest start among them, `None` when there are none.
    oldest: Option<SystemTime>,
    /// Their pids.
    pids: Vec<i32>,
}

impl Commands {
    fn scan() -> Commands {
        let me = std::process::id() as i32;
        let my_exe = fs::read_link("/proc/self/exe").ok();
        let boot = boot_time();
        // Clock ticks per second, for /proc/<pid>/stat's start time (proc(5)).
        let tick = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
            .ok()
            .flatten()
            .filter(|t| *t > 0)
            .unwrap_or(100) as u64;
        let mut pids = Vec::new();
        let mut oldest: Option<SystemTime> = None;
        for e in fs::read_dir("/proc").into_iter().flatten().flatten() {
            let Some(pid) = e.file_name().to_str().and_then(|n| n.parse::<i32>().ok()) else {
                continue;
            };
            if pid == me {
                continue;
            }
            let comm = fs::read_to_string(e.path().join("comm")).unwrap_or_default();
            let exe = fs::read_link(e.path().join("exe")).ok();
            let ours = comm.trim_end() == "dockling" || (exe.is_some() && exe == my_exe);
            if !ours {
                continue;
            }
            pids.push(pid);
            // Unknown start: as old as the boot, so nothing recent counts as garbage.
            let start = crate::container::process_start_time(pid)
                .zip(boot)
                .map(|(ticks, boot)| {
                    boot + Duration::from_millis(ticks.saturating_mul(1000) / tick)
                })
                .unwrap_or(SystemTime::UNIX_EPOCH);
            oldest = Some(oldest.map_or(start, |o| o.min(start)));
        }
        Commands { oldest, pids }
    }

    /// `None` when `path` (modified at `mtime`) cannot belong to a command in flight, else
    /// why it is kept.
    fn claims(&self, path: &Path) -> Option<String> {
        let oldest = self.oldest?;
        let mtime = fs::symlink_metadata(path).and_then(|m| m.modified()).ok();
        match mtime {
            Some(t) if t < oldest => None,
            _ => Some(format!(
                "it is newer than a dockling command still running (pid {}), which may be writing it: run fsck --repair again once it is done",
                self.pids
                    .iter()
                    .map(|p| p.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
        }
    }
}

/// When the system booted (`btime` in /proc/stat).
fn boot_time() -> Option<SystemTime> {
    let stat = fs::read_to_string("/proc/stat").ok()?;
    let secs: u64 = stat
        .lines()
        .find_map(|l| l.strip_prefix("btime "))?
        .trim()
        .parse()
        .ok()?;
    Some(SystemTime::UNIX_EPOCH + Duration::from_secs(secs))
}

/// A finding for a temporary file (see `files::temp_owner`) or trash, or none when `name` is
/// neither.
fn temp_finding(path: &Path, name: &str) -> Option<Finding> {
    if name.starts_with(".trash-") {
        return Some(Finding {
            what: format!("trash {}: a killed delete left it", path.display()),
            fix: Fix::Remove(vec![path.to_path_buf()]),
        });
    }
    let Some((pid, _)) = crate::files::temp_owner(name) else {
        // A temporary name no version of dockling writes without its owner.
        return name.contains(".tmp-").then(|| Finding {
            what: format!("temporary file {}: left by a command", path.display()),
            fix: Fix::Keep(
                "no pid in its name says who wrote it: remove it by hand once no dockling command runs"
                    .into(),
            ),
        });
    };
    let fix = if crate::files::owner_alive(name) {
        Fix::Keep(format!(
            "process {pid}, named in it, is still running and may be writing it"
        ))
    } else {
        Fix::Remove(vec![path.to_path_buf()])
    };
    Some(Finding {
        what: format!("temporary file {}: left by process {pid}", path.display()),
        fix,
    })
}

fn entries(dir: &Path) -> Vec<(String, PathBuf)> {
    let mut out: Vec<(String, PathBuf)> = fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| (e.file_name().to_string_lossy().into_owned(), e.path()))
        .collect();
    out.sort();
    out
}

/// The directories of the store under `root`, as the store names them.
struct Paths {
    oci: PathBuf,
    blobs: PathBuf,
    layers: PathBuf,
    unpacked: PathBuf,
    containers: PathBuf,
}

impl Paths {
    fn new(root: &Path) -> Paths {
        let store = Store::at(root);
        let any = format!("sha256:{}", "0".repeat(64));
        let dir_of = |p: Result<PathBuf>| {
            p.ok()
                .and_then(|p| p.parent().map(Path::to_path_buf))
                .expect("a valid digest")
        };
        Paths {
            oci: root.join("oci"),
            blobs: dir_of(store.blob_path(&any)),
            layers: dir_of(store.layer_path(&any)),
            unpacked: dir_of(store.layer_marker(&any)),
            containers: root.join("containers"),
        }
    }
}

/// "half-unpacked or half-deleted (…)" when a layer has its directory or its marker but not
/// both; `None` when it has both or neither.
fn half_layer(store: &Store, diff_id: &str) -> Option<&'static str> {
    let dir = store
        .layer_path(diff_id)
        .is_ok_and(|d| d.symlink_metadata().is_ok());
    let marker = store.layer_marker(diff_id).is_ok_and(|m| m.is_file());
    match (dir, marker) {
        (true, false) => Some("half-unpacked or half-deleted (a directory without its marker)"),
        (false, true) => Some("half-unpacked or half-deleted (a marker without its directory)"),
        _ => None,
    }
}

/// The name an index entry is shown by: its tag, or its digest.
fn entry_name(m: &Value) -> String {
    tag_of(m)
        .map(|r| r.familiar_tagged())
        .or_else(|| m["digest"].as_str().map(String::from))
        .unwrap_or_else(|| "(an entry without a digest)".into())
}

/// Check the store under `root` (whose containers' cgroups live under `cgroup_parent`).
pub fn check(root: &Path, cgroup_parent: &str) -> Result<Vec<Finding>> {
    let p = Paths::new(root);
    let mut findings = Vec::new();
    // No store yet: nothing to check (and nothing is created by looking).
    if !p.oci.is_dir() {
        return Ok(findings);
    }
    let store = Store::at(root);
    let commands = Commands::scan();
    // What live pulls and imports have leased is theirs, whatever the index says; leases are
    // made under the store lock, so they are read under it.
    let (leased, stale_leases) = {
        let _l = store.lock()?;
        store.leases()
    };

    // 1. The index.
    let index_path = p.oci.join("index.json");
    let index: Option<Value> = match fs::read(&index_path) {
        Ok(text) => match serde_json::from_slice::<Value>(&text) {
            Ok(v) if v["manifests"].is_array() => Some(v),
            Ok(_) => {
                findings.push(Finding {
                    what: format!(
                        "broken index {}: not a JSON object with a \"manifests\" list",
                        index_path.display()
                    ),
                    fix: Fix::RebuildIndex,
                });
                None
            }
            Err(e) => {
                findings.push(Finding {
                    what: format!("broken index {}: {e}", index_path.display()),
                    fix: Fix::RebuildIndex,
                });
                None
            }
        },
        Err(e) => {
            findings.push(Finding {
                what: format!("broken index {}: {e}", index_path.display()),
                fix: Fix::RebuildIndex,
            });
            None
        }
    };

    // 2. Every blob against its name.
    let mut intact: HashMap<String, u64> = HashMap::new();
    let mut blob_findings = Vec::new();
    let mut blob_files = Vec::new();
    for (name, path) in entries(&p.blobs) {
        if let Some(f) = temp_finding(&path, &name) {
            blob_findings.push(f);
            continue;
        }
        // Other hidden names are the store's own bookkeeping (locks, leases, trash).
        if name.starts_with('.') {
            continue;
        }
        let digest = format!("sha256:{name}");
        if hex_of(&digest).is_err() || !path.is_file() {
            blob_findings.push(Finding {
                what: format!(
                    "stray file {}: not a blob (its name is not a sha256 digest)",
                    path.display()
                ),
                fix: Fix::Keep(
                    "dockling did not write it: remove it by hand if nobody else did".into(),
                ),
            });
            continue;
        }
        match hash_file(&path) {
            Ok((got, n)) if got == digest => {
                intact.insert(digest.clone(), n);
                blob_files.push((digest, path));
            }
            Ok((got, n)) => blob_findings.push(Finding {
                what: format!("damaged blob {digest}: its {n} bytes hash to {got}"),
                fix: Fix::MoveAside(path),
            }),
            Err(e) => blob_findings.push(Finding {
                what: format!("damaged blob {digest}: read {}: {e}", path.display()),
                fix: Fix::MoveAside(path),
            }),
        }
    }
    findings.extend(blob_findings);

    // 3. Every image: manifest, config, layers, unpacked layers.
    let mut referenced: HashSet<String> = HashSet::new();
    let mut diff_ids: HashSet<String> = HashSet::new();
    let mut image_ids: HashSet<String> = HashSet::new();
    // False when a damaged manifest or config hides what an image refers to: then nothing
    // is an orphan for sure.
    let mut blobs_known = index.is_some();
    let mut layers_known = index.is_some();
    let mut dropped = HashSet::new();
    for m in index
        .as_ref()
        .and_then(|i| i["manifests"].as_array())
        .into_iter()
        .flatten()
    {
        let name = entry_name(m);
        let Some(digest) = m["digest"].as_str().filter(|d| hex_of(d).is_ok()) else {
            if dropped.insert(None) {
                findings.push(Finding {
                    what: format!("index entry {name}: no valid manifest digest"),
                    fix: Fix::DropEntry(None),
                });
            }
            continue;
        };
        referenced.insert(digest.to_string());
        let manifest: Option<Value> = intact
            .contains_key(digest)
            .then(|| store.read_blob(digest).ok())
            .flatten()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .filter(|m: &Value| m["config"].is_object() && m["layers"].is_array());
        let Some(manifest) = manifest else {
            let why = if store.blob_path(digest).is_ok_and(|p| p.exists()) {
                if intact.contains_key(digest) {
                    "is not an image manifest"
                } else {
                    "is damaged"
                }
            } else {
                "is missing"
            };
            if dropped.insert(Some(digest.to_string())) {
                findings.push(Finding {
                    what: format!("index entry {name}: its manifest {digest} {why}"),
                    fix: Fix::DropEntry(Some(digest.to_string())),
                });
            }
            blobs_known = false;
            layers_known = false;
            continue;
        };
        let mut check_blob = |d: &Value, what: &str| -> Option<String> {
            let digest = d["digest"].as_str().filter(|x| hex_of(x).is_ok())?;
            referenced.insert(digest.to_string());
            match (intact.get(digest), d["size"].as_u64()) {
                (Some(have), Some(want)) if *have != want => findings.push(Finding {
                    what: format!("image {name}: its {what} {digest} has {have} bytes, the manifest gives {want}"),
                    fix: Fix::Keep("the manifest is wrong, not the blob: pull the image again".into()),
                }),
                (Some(_), _) => {}
                (None, _) if store.blob_path(digest).is_ok_and(|p| p.exists()) => {}
                (None, _) => findings.push(Finding {
                    what: format!("image {name}: its {what} {digest} is missing"),
                    fix: Fix::Keep(format!("pull the image again to fetch it, or remove it (dockling rmi -f {name})")),
                }),
            }
            Some(digest.to_string())
        };
        let config_digest = check_blob(&manifest["config"], "config");
        let layers: Vec<Option<String>> = manifest["layers"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|l| check_blob(l, "layer"))
            .collect();
        let Some(config_digest) = config_digest else {
            layers_known = false;
            continue;
        };
        image_ids.insert(config_digest.clone());
        let config: Option<Value> = intact
            .contains_key(&config_digest)
            .then(|| store.read_blob(&config_digest).ok())
            .flatten()
            .and_then(|b| serde_json::from_slice(&b).ok());
        let Some(config) = config else {
            layers_known = false;
            continue;
        };
        let ids: Vec<String> = config["rootfs"]["diff_ids"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|d| d.as_str().filter(|d| hex_of(d).is_ok()).map(String::from))
            .collect();
        for (blob, diff_id) in layers.iter().zip(&ids) {
            // A layer shared by several images is reported (and unpacked) once.
            if !diff_ids.insert(diff_id.clone()) {
                continue;
            }
            // Kept as an EROFS image (`--layers erofs`): its files are read from the tar in
            // it, which must still be the layer its diff_id names.
            let erofs = store.erofs_ready(diff_id);
            if erofs {
                let dir = store.erofs_root(diff_id)?.with_file_name("layer.erofs");
                let damaged = match store.erofs_tar_digest(diff_id) {
                    Some(Ok(got)) if got != *diff_id => Some(format!("its tar hashes to {got}")),
                    Some(Err(e)) => Some(format!("read: {e}")),
                    _ => None,
                };
                if let Some(why) = damaged {
                    findings.push(Finding {
                        what: format!(
                            "image {name}: EROFS layer {} is damaged: {why}",
                            dir.display()
                        ),
                        fix: Fix::RewriteErofs {
                            blob: blob.clone(),
                            diff_id: diff_id.clone(),
                        },
                    });
                }
            }
            // Unpacked means the marker and the directory (`Store::layer_complete`); one
            // leased by a live command may be between the two (its unpack in flight). A
            // layer kept as an EROFS image needs no unpacking.
            if erofs || store.layer_complete(diff_id) || leased.contains(diff_id) {
                continue;
            }
            let dir = store.layer_path(diff_id)?;
            let state = match half_layer(&store, diff_id) {
                Some(half) => format!("is {half}"),
                None => "is not unpacked".into(),
            };
            let fix = match blob {
                Some(b) if intact.contains_key(b) => Fix::Unpack {
                    blob: b.clone(),
                    diff_id: diff_id.clone(),
                },
                _ => Fix::Keep("its blob is damaged or missing: pull the image again".into()),
            };
            findings.push(Finding {
                what: format!("image {name}: layer {} {state}", dir.display()),
                fix,
            });
        }
    }

    // 4. Orphans: blobs and unpacked layers no image refers to.
    if blobs_known {
        for (digest, _) in &blob_files {
            if referenced.contains(digest) || leased.contains(digest) {
                continue;
            }
            findings.push(Finding {
                what: format!("orphan blob {digest}: no image refers to it"),
                fix: Fix::DiscardBlob(digest.clone()),
            });
        }
    }
    // Layer directories and markers: a half-unpacked or half-deleted layer whatever refers to
    // it (one an image uses is reported above), an orphan when no image refers to it.
    let mut layer_names: BTreeSet<String> = BTreeSet::new();
    for (dir, _) in [(&p.layers, ()), (&p.unpacked, ())] {
        for (name, path) in entries(dir) {
            if let Some(f) = temp_finding(&path, &name) {
                findings.push(f);
            } else if hex_of(&format!("sha256:{name}")).is_ok() {
                layer_names.insert(name);
            }
        }
    }
    for name in layer_names {
        let digest = format!("sha256:{name}");
        if diff_ids.contains(&digest) || leased.contains(&digest) {
            continue;
        }
        let dir = store.layer_path(&digest)?;
        let what = match half_layer(&store, &digest) {
            Some(half) => format!(
                "{half} layer {}: a killed unpack or delete left it",
                dir.display()
            ),
            None if layers_known => {
                format!("orphan layer {}: no image refers to it", dir.display())
            }
            None => continue,
        };
        findings.push(Finding {
            what,
            fix: Fix::DiscardLayer(digest),
        });
    }

    // 5. What killed commands left in the store's own directories: temporary files of atomic
    // writes, trash, leases and per-object locks nobody holds.
    for dir in [&p.oci, &p.containers] {
        for (name, path) in entries(dir) {
            if let Some(f) = temp_finding(&path, &name) {
                findings.push(f);
            }
        }
    }
    for path in stale_leases {
        findings.push(Finding {
            what: format!(
                "stale lease {}: nobody holds it (its command is gone)",
                path.display()
            ),
            fix: Fix::RemoveUnheld(path),
        });
    }
    for path in store.stale_object_locks() {
        findings.push(Finding {
            what: format!(
                "stale lock {}: nobody holds it (its command is gone)",
                path.display()
            ),
            fix: Fix::RemoveUnheld(path),
        });
    }

    // 6. Containers.
    let mut records: HashMap<String, Container> = HashMap::new();
    for (name, dir) in entries(&p.containers) {
        if name.starts_with('.') || !dir.is_dir() {
            continue;
        }
        for (file, path) in entries(&dir) {
            if let Some(f) = temp_finding(&path, &file) {
                findings.push(f);
            }
        }
        let state = dir.join("state.json");
        match fs::read(&state) {
            Ok(text) => match serde_json::from_slice::<Container>(&text) {
                Ok(c) => {
                    // Only when every image's manifest could be read: a damaged one hides
                    // which image ids the store still has.
                    if blobs_known && !image_ids.contains(&c.spec.image_id) {
                        findings.push(Finding {
                            what: format!(
                                "container {} ({}): its image {} is no longer in the store",
                                c.spec.name,
                                &c.spec.id[..12.min(c.spec.id.len())],
                                c.spec.image_id
                            ),
                            fix: Fix::Keep(format!(
                                "it cannot start again: remove it (dockling rm -f {})",
                                c.spec.name
                            )),
                        });
                    }
                    records.insert(name, c);
                }
                Err(e) => findings.push(Finding {
                    what: format!("broken container record {}: {e}", state.display()),
                    fix: Fix::Keep(format!(
                        "whether it still runs cannot be read from it: check, then remove {} by hand",
                        dir.display()
                    )),
                }),
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let fix = match commands.claims(&dir) {
                    None => Fix::Remove(vec![dir.clone()]),
                    Some(why) => Fix::Keep(why),
                };
                findings.push(Finding {
                    what: format!(
                        "broken container record {}: no state.json (a create or rm was killed)",
                        dir.display()
                    ),
                    fix,
                });
            }
            Err(e) => findings.push(Finding {
                what: format!("broken container record {}: {e}", state.display()),
                fix: Fix::Keep("it cannot be read".into()),
            }),
        }
    }

    // 7. cgroups of containers that no longer run, in every mounted hierarchy.
    let mountinfo = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let parent = cgroup_parent.trim_matches('/');
    for mount in cgroup_mounts(&mountinfo) {
        if parent.is_empty() {
            break;
        }
        for (id, dir) in entries(&mount.join(parent)) {
            if !dir.is_dir() || id.len() != 64 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
                continue;
            }
            let live = records
                .get(&id)
                .is_some_and(|c| c.is_alive() || c.status == Status::Created);
            if live {
                continue;
            }
            let procs = fs::read_to_string(dir.join("cgroup.procs")).unwrap_or_default();
            let procs: Vec<&str> = procs.split_whitespace().collect();
            let whose = if records.contains_key(&id) {
                "of a container that no longer runs"
            } else {
                "of no container"
            };
            let fix = if procs.is_empty() {
                Fix::RemoveCgroup(dir.clone())
            } else {
                Fix::Keep(format!(
                    "processes {} still run in it: kill them, then run fsck --repair again",
                    procs.join(", ")
                ))
            };
            findings.push(Finding {
                what: format!("leftover cgroup {}: {whose}", dir.display()),
                fix,
            });
        }
    }

    // 8. Mounts under the store: containers mount in their own mount namespace only. The
    // exception: an EROFS layer (`--layers erofs`) mounted on its `root/` from its image,
    // which stays mounted on the host, shared by the containers of that layer.
    let erofs_dir = fs::canonicalize(store.erofs_dir()).unwrap_or_else(|_| store.erofs_dir());
    let erofs_layer = |point: &Path| {
        point.file_name() == Some("root".as_ref())
            && point.parent().and_then(Path::parent) == Some(erofs_dir.as_path())
            && point.with_file_name("layer.erofs").is_file()
            && crate::layers::erofs::is_mounted(point)
    };
    for point in crate::files::mount_points_under(&mountinfo, root) {
        if erofs_layer(&point) {
            continue;
        }
        findings.push(Finding {
            what: format!("mount {}: under the store, on the host", point.display()),
            fix: Fix::Keep(format!(
                "a mount is never proven garbage: unmount it by hand (umount -l {})",
                point.display()
            )),
        });
    }
    Ok(findings)
}

/// Where the host has cgroup file systems (v1 and v2) mounted.
fn cgroup_mounts(mountinfo: &str) -> Vec<PathBuf> {
    let mut out = BTreeSet::new();
    for line in mountinfo.lines() {
        let Some((left, right)) = line.split_once(" - ") else {
            continue;
        };
        let fstype = right.split(' ').next().unwrap_or("");
        if matches!(fstype, "cgroup" | "cgroup2") {
            if let Some(point) = left.split(' ').nth(4) {
                out.insert(PathBuf::from(crate::files::unescape_mountinfo(point)));
            }
        }
    }
    out.into_iter().collect()
}

/// Carry out the fixes of `findings`; one line per finding, saying what was done or why not.
pub fn repair(root: &Path, findings: &[Finding]) -> Vec<(String, bool)> {
    let store = match Store::open(root) {
        Ok(s) => s,
        Err(e) => return vec![(format!("open the store: {e}"), false)],
    };
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let sys = crate::sys::Sys::quiet();
    findings
        .iter()
        .map(|f| {
            let done = match &f.fix {
                Fix::RebuildIndex => rebuild_index(root, now).map(|n| {
                    format!("moved aside as index.json.broken-{now}; rebuilt with {n} image{} from the blobs, untagged (tag them again: dockling tag)", if n == 1 { "" } else { "s" })
                }),
                Fix::MoveAside(path) => move_aside(root, path, now)
                    .map(|to| format!("moved to {}; the next pull fetches it again", to.display())),
                Fix::DropEntry(digest) => drop_entry(&store, root, digest.as_deref())
                    .map(|()| "dropped the entry: pull the image again".into()),
                Fix::Unpack { blob, diff_id } => store
                    .ensure_unpacked(blob, diff_id)
                    .map(|_| "unpacked it again".into()),
                Fix::Remove(paths) => remove_all(paths).map(|()| "removed".into()),
                // Under the store lock, unless an image of the index or a live lease has come
                // to name it since the check.
                Fix::DiscardLayer(diff_id) => store
                    .discard_unused(&[], std::slice::from_ref(diff_id))
                    .map(|()| "moved to the trash and removed".into()),
                Fix::DiscardBlob(digest) => store
                    .discard_unused(std::slice::from_ref(digest), &[])
                    .map(|()| "removed".into()),
                Fix::RewriteErofs { blob, diff_id } => {
                    store.discard_erofs(diff_id).and_then(|()| match blob {
                        Some(blob) => store
                            .ensure_erofs(blob, diff_id)
                            .map(|_| "unmounted, removed and written again from its blob".into()),
                        None => Ok("unmounted and removed (its image names no valid blob to write it from: pull the image again)".into()),
                    })
                }
                Fix::RemoveUnheld(path) => match crate::files::remove_if_unheld(path) {
                    Ok(true) => Ok("removed".into()),
                    Ok(false) => Err(kept("a command holds it now".into())),
                    Err(e) => Err(Error::io("remove", path)(e)),
                },
                Fix::RemoveCgroup(dir) => sys
                    .run(crate::sys::Call::Rmdir { path: dir.clone() })
                    .map(|()| "removed".into())
                    .map_err(Error::from),
                Fix::Keep(why) => Err(kept(why.clone())),
            };
            match done {
                Ok(did) => (format!("{}: {did}", f.what), true),
                Err(e @ Error::Image(ImageError::Kept { .. })) => {
                    (format!("{}: {e}", f.what), false)
                }
                Err(e) => (format!("{}: not repaired: {e}", f.what), false),
            }
        })
        .collect()
}

/// `--repair` leaves a finding alone, saying why.
fn kept(why: String) -> Error {
    ImageError::Kept { why }.into()
}

/// `<root>/lost+found`, root's alone (it holds image content).
fn lost_and_found(root: &Path) -> Result<PathBuf> {
    use std::os::unix::fs::DirBuilderExt;
    let dir = root.join("lost+found");
    match fs::DirBuilder::new().mode(0o700).create(&dir) {
        Ok(()) => Ok(dir),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(dir),
        Err(e) => Err(Error::io("create", &dir)(e)),
    }
}

fn move_aside(root: &Path, path: &Path, now: u64) -> Result<PathBuf> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let to = lost_and_found(root)?.join(format!("blob-sha256-{name}-{now}"));
    fs::rename(path, &to).map_err(Error::io("rename", path))?;
    Ok(to)
}

fn remove_all(paths: &[PathBuf]) -> Result<()> {
    // remove_dir_all would descend into a file system mounted below (a host directory bound
    // there, say) and empty it: nothing under a mount point is removed.
    for p in paths {
        if let Some(m) = crate::files::mounts_under(p).first() {
            return Err(kept(format!(
                "{} is mounted under it: unmount it first (umount -l {})",
                m.display(),
                m.display()
            )));
        }
    }
    for p in paths {
        let r = match fs::symlink_metadata(p) {
            Ok(m) if m.is_dir() => fs::remove_dir_all(p),
            Ok(_) => fs::remove_file(p),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e),
        };
        r.map_err(Error::io("remove", p))?;
    }
    Ok(())
}

fn drop_entry(store: &Store, root: &Path, digest: Option<&str>) -> Result<()> {
    let _l = lock(&root.join("oci/.lock"))?;
    let mut index = store.read_index()?;
    if let Some(list) = index["manifests"].as_array_mut() {
        list.retain(|m| {
            let d = m["digest"].as_str().filter(|d| hex_of(d).is_ok());
            d != digest
        });
    }
    store.write_index(&index)
}

/// Move the broken index aside and write one listing every image manifest among the blobs;
/// returns how many.
fn rebuild_index(root: &Path, now: u64) -> Result<usize> {
    let p = Paths::new(root);
    let store = Store::at(root);
    let _l = lock(&p.oci.join(".lock"))?;
    let index = p.oci.join("index.json");
    let aside = p.oci.join(format!("index.json.broken-{now}"));
    // Copied aside, then replaced atomically: a crash in between leaves the broken index,
    // never none (an absent index would be recreated empty by the next command).
    if index.exists() {
        fs::copy(&index, &aside).map_err(Error::io("copy", &index))?;
    }
    let mut manifests: BTreeMap<String, Descriptor> = BTreeMap::new();
    for (name, path) in entries(&p.blobs) {
        let digest = format!("sha256:{name}");
        if hex_of(&digest).is_err() {
            continue;
        }
        // Manifests are small; a layer is not read past its first bytes to decide.
        let Ok(meta) = fs::metadata(&path) else {
            continue;
        };
        if meta.len() > crate::registry::MAX_MANIFEST {
            continue;
        }
        // Read through the store: only a blob that hashes to its name counts.
        let Ok(bytes) = store.read_blob(&digest) else {
            continue;
        };
        let Ok(m) = serde_json::from_slice::<ImageManifest>(&bytes) else {
            continue;
        };
        let media_type = m.media_type().clone().unwrap_or(MediaType::ImageManifest);
        manifests.insert(
            digest.clone(),
            oci::descriptor(media_type, &digest, bytes.len() as u64, &[])?,
        );
    }
    let n = manifests.len();
    let rebuilt = oci::index(manifests.into_values().collect())?;
    write_atomic(&index, &oci::to_vec_pretty(&rebuilt))?;
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mountinfo_escapes_are_read() {
        assert_eq!(crate::files::unescape_mountinfo(r"/a\040b"), "/a b");
        let info = "36 25 0:31 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n\
                    37 25 0:32 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw\n\
                    38 25 0:33 / /var/x rw - tmpfs tmpfs rw\n";
        assert_eq!(
            cgroup_mounts(info),
            vec![
                PathBuf::from("/sys/fs/cgroup/memory"),
                PathBuf::from("/sys/fs/cgroup/unified")
            ]
        );
        assert_eq!(
            crate::files::mount_points_under(info, Path::new("/var")),
            vec![PathBuf::from("/var/x")]
        );
    }
}
