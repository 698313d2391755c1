//! The image store: an OCI image layout plus unpacked layers.
//!
//! Every blob is written to a temporary name in the same directory, its digest checked, then
//! renamed into place; `index.json` is rewritten the same way under an exclusive `flock`, so
//! concurrent commands never lose each other's tags and a crash leaves either the old or the
//! new index (`crate::files::write_atomic`: fsync of the file and of its directory).
//! Temporary names carry their owner's pid and start time and are removed only once that
//! process is gone. Only root may enter the store's directories (`secure_root`): they hold
//! images' setuid files.
//!
//! Crash safety (ARCHITECTURE.md, "Crash safety", says it for the whole engine):
//! - an unpacked layer counts only when its marker `layers/unpacked/<diff_id>` exists; the
//!   marker is written (and synced) after the complete unpack was synced and renamed into
//!   place, and removed first when the layer is deleted; a layer directory without its marker
//!   is half made or half deleted, and is unpacked again;
//! - a layer is deleted by renaming it to `.trash-*` and then removing it: a kill in the
//!   middle leaves trash, which the next command removes, never a half-deleted layer;
//! - a command that writes blobs or layers an image of the index does not name yet (pull,
//!   import, build) holds a lease (`oci/leases/<pid>-…`, flocked for its life) listing them:
//!   garbage collection keeps what a live lease lists and removes the leases of dead ones;
//! - one blob or layer is fetched or unpacked by one process at a time (`oci/locks/`): the
//!   others wait and then find it in place.

use std::fs::{self, File};
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

use serde_json::{json, Value};
use sha2::{Digest as _, Sha256};

use super::reference::Reference;
use crate::error::{Error, Result};
use crate::files::{lock, sync_dir, temp_name, write_atomic, PathLock};

mod blob;
mod gc;
mod index;
mod layout;

pub(crate) use blob::Capped;
pub use blob::{digest_of, Ingest};
pub use gc::Collected;
use gc::{remove_journal, Lease, GC_PENDING};
pub(crate) use index::tag_of;
use index::REPO_DIGEST;
pub use layout::{hex_of, secure_root, PRIVATE_DIRS};

pub(crate) const MANIFEST_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";

/// One image (for one of its references, if any).
#[derive(Debug, Clone)]
pub struct Image {
    /// `sha256:<hex>` of the config: Docker's image id.
    pub id: String,
    /// The tag this entry is listed under, `None` for an untagged image.
    pub reference: Option<Reference>,
    /// `sha256:<hex>` of the manifest.
    pub manifest_digest: String,
    /// The digest it was pulled by, for this reference (Docker's RepoDigests).
    pub repo_digest: Option<String>,
    /// The image config.
    pub config: oci_spec::image::ImageConfiguration,
    /// Creation time (RFC 3339) from the config.
    pub created: Option<String>,
    /// Sum of the uncompressed layer sizes, as `docker images` shows.
    pub size: u64,
    /// Layer blob digests, bottom first.
    pub layers: Vec<String>,
    /// Digests of the uncompressed layers (the config's `rootfs.diff_ids`), bottom first.
    pub diff_ids: Vec<String>,
}

/// Hashes everything read through it.
struct HashingReader<R> {
    inner: R,
    hash: Sha256,
    n: u64,
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hash.update(&buf[..n]);
        self.n += n as u64;
        Ok(n)
    }
}

/// The store under one root.
pub struct Store {
    oci: PathBuf,
    layers: PathBuf,
    limits: crate::layers::unpack::Limits,
    /// This process's lease (made on the first blob or layer it claims): its file, kept
    /// locked while the process lives, and the digests written to it so far.
    lease: std::sync::Mutex<Option<Lease>>,
}

/// True when the file system holding `path` has (almost) no room left: less than 128 KiB
/// for an unprivileged writer, or no free inode (statvfs(3)).
fn disk_full(path: &Path) -> bool {
    nix::sys::statvfs::statvfs(path).is_ok_and(|s| {
        s.blocks_available().saturating_mul(s.fragment_size()) < 128 << 10
            || (s.files() > 0 && s.files_available() == 0)
    })
}

impl Store {
    /// Open (creating if needed) the store under `root`, removing what killed commands left
    /// (trash, temporary files of processes that are gone).
    pub fn open(root: &Path) -> Result<Store> {
        secure_root(root)?;
        let oci = root.join("oci");
        let layers = root.join("layers/sha256");
        for d in [
            oci.join("blobs/sha256"),
            oci.join("leases"),
            oci.join("locks"),
            layers.clone(),
            root.join("layers/unpacked"),
        ] {
            fs::create_dir_all(&d).map_err(Error::io("create", &d))?;
        }
        let layout = oci.join("oci-layout");
        if !layout.exists() {
            write_atomic(&layout, br#"{"imageLayoutVersion":"1.0.0"}"#)?;
        }
        let index = oci.join("index.json");
        if !index.exists() {
            write_atomic(&index, br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}"#)?;
        }
        let store = Store {
            oci,
            layers,
            limits: Default::default(),
            lease: Default::default(),
        };
        store.sweep();
        // An `rmi` killed between its untag and the end of its garbage collection.
        let pending = store.oci.join(GC_PENDING);
        if pending.exists() {
            store.reclaim()?;
            remove_journal(&pending)?;
        }
        Ok(store)
    }

    /// The store under `root` if there is one, without creating or changing anything (for
    /// dry runs: `explain` must leave no trace).
    pub fn open_existing(root: &Path) -> Result<Option<Store>> {
        let oci = root.join("oci");
        if !oci.join("index.json").is_file() {
            return Ok(None);
        }
        Ok(Some(Store::at(root)))
    }

    /// The store under `root` as it is: nothing created, swept or changed (`system fsck`
    /// checks what killed commands left before anything removes it).
    pub fn at(root: &Path) -> Store {
        Store {
            oci: root.join("oci"),
            layers: root.join("layers/sha256"),
            limits: Default::default(),
            lease: Default::default(),
        }
    }

    /// Take the store's lock: `index.json` changes, garbage collection, leases and the
    /// creation of a container's record (which holds its image) happen under it.
    pub fn lock(&self) -> Result<crate::files::Lock> {
        lock(&self.oci.join(".lock"))
    }

    /// A per-object lock (`oci/locks/<what>-<hex>`), removed by its holder.
    pub fn object_lock(&self, what: &str, digest: &str) -> Result<PathLock> {
        PathLock::acquire(
            &self
                .oci
                .join("locks")
                .join(format!("{what}-{}", hex_of(digest)?)),
        )
    }

    /// The same store, refusing layers beyond `limits` (from the config file) when it unpacks
    /// or imports them.
    pub fn with_limits(self, limits: crate::layers::unpack::Limits) -> Store {
        Store { limits, ..self }
    }

    /// The limits layers are held to (`max-layer-size`, `max-layer-entries`).
    pub fn limits(&self) -> &crate::layers::unpack::Limits {
        &self.limits
    }

    /// Unpack layer blob `blob` into `layers/sha256/<diff_id>` unless already there, checking
    /// that its uncompressed content has the digest the image config promised.
    pub fn ensure_unpacked(&self, blob: &str, diff_id: &str) -> Result<PathBuf> {
        let hex = hex_of(diff_id)?;
        let dir = self.layers.join(hex);
        // Complete: nothing to write, nothing to lease (a `run` of an image it holds).
        if self.layer_complete(diff_id) {
            return Ok(dir);
        }
        self.claim(&[blob, diff_id])?;
        // One unpack per layer at a time: another command unpacking it is waited for.
        let _unpacking = self.object_lock("layer", diff_id)?;
        if self.layer_complete(diff_id) {
            return Ok(dir);
        }
        // A directory without its marker is what a killed unpack or delete left: never
        // trusted, removed and unpacked again.
        if fs::symlink_metadata(&dir).is_ok() {
            self.trash(&dir)?;
        }
        let tmp = self.layers.join(temp_name());
        fs::create_dir_all(&tmp).map_err(Error::io("create", &tmp))?;
        let path = self.blob_path(blob)?;
        let f = File::open(&path).map_err(Error::io("open", &path))?;
        let mut head = [0u8; 4];
        let n = File::open(&path)
            .and_then(|mut g| g.read(&mut head))
            .unwrap_or(0);
        let compressed: Box<dyn Read> = if n >= 2 && head[..2] == [0x1f, 0x8b] {
            Box::new(flate2::read::GzDecoder::new(BufReader::new(f)))
        } else if n == 4 && head == [0x28, 0xb5, 0x2f, 0xfd] {
            match ruzstd::decoding::StreamingDecoder::new(BufReader::new(f)) {
                Ok(d) => Box::new(d),
                Err(e) => {
                    let _ = fs::remove_dir_all(&tmp);
                    return Err(Error::Corrupt(format!(
                        "layer {blob} is not valid zstd: {e}"
                    )));
                }
            }
        } else {
            Box::new(BufReader::new(f))
        };
        let mut reader = HashingReader {
            inner: compressed,
            hash: Sha256::new(),
            n: 0,
        };
        let result = crate::layers::unpack::unpack(&mut reader, &tmp, blob, &self.limits)
            .and_then(|_| {
            // Hash what the tar reader left unread (end-of-archive padding) too, within the
            // same limit: a small tar followed by terabytes of compressed zeros is a bomb too.
            let left = self.limits.max_size.saturating_sub(reader.n);
            let mut rest = Capped { inner: &mut reader, left, over: false };
            if let Err(e) = std::io::copy(&mut rest, &mut std::io::sink()) {
                return Err(if rest.over { self.limits.too_big(blob) } else { Error::io("read", &path)(e) });
            }
            let got = format!("{:x}", reader.hash.finalize_reset());
            if got != hex {
                return Err(Error::Corrupt(format!(
                    "layer {blob} unpacks to sha256:{got}, but the image config says {diff_id}: the image is corrupt or was tampered with"
                )));
            }
            Ok(())
        });
        if let Err(e) = result {
            // A write that failed because the disk is full surfaces from the unpacker as a bad
            // entry; asked before the half-unpacked tree is removed (which frees the space),
            // the file system says which it was.
            let e = if disk_full(&tmp) {
                Error::NoSpace {
                    dir: self.layers.clone(),
                    doing: format!("unpacking layer {blob}"),
                    quota: false,
                }
            } else {
                e
            };
            let _ = fs::remove_dir_all(&tmp);
            return Err(e);
        }
        // Everything unpacked reaches the disk before the marker says it is there:
        // syncfs(2) flushes the file system once, cheaper than an fsync per file.
        let synced = File::open(&tmp).and_then(|d| {
            nix::unistd::syncfs(std::os::fd::AsRawFd::as_raw_fd(&d)).map_err(std::io::Error::from)
        });
        if let Err(e) = synced {
            let _ = fs::remove_dir_all(&tmp);
            return Err(Error::io("sync", &tmp)(e));
        }
        if let Err(e) = fs::rename(&tmp, &dir) {
            let _ = fs::remove_dir_all(&tmp);
            return Err(Error::io("rename", &dir)(e));
        }
        sync_dir(&self.layers)?;
        crate::fault::point("store.layer.before_marker");
        // The marker holds the uncompressed size, which `images` shows (as Docker does).
        write_atomic(
            &self.layer_marker(diff_id)?,
            reader.n.to_string().as_bytes(),
        )?;
        Ok(dir)
    }

    /// The image whose manifest is `manifest_digest`, listed under `reference`.
    pub(crate) fn load(
        &self,
        manifest_digest: &str,
        reference: Option<Reference>,
    ) -> Result<Image> {
        let manifest: Value = serde_json::from_slice(&self.read_blob(manifest_digest)?)
            .map_err(|e| Error::Corrupt(format!("manifest {manifest_digest}: {e}")))?;
        let config_digest = manifest["config"]["digest"]
            .as_str()
            .ok_or_else(|| Error::Corrupt(format!("manifest {manifest_digest} has no config")))?;
        let config_bytes = self.read_blob(config_digest)?;
        let config = parse_config(&config_bytes, config_digest)?;
        let layers: Vec<String> = manifest["layers"]
            .as_array()
            .map(|l| {
                l.iter()
                    .filter_map(|d| d["digest"].as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default();
        let diff_ids: Vec<String> = config.rootfs().diff_ids().clone();
        // Uncompressed once unpacked; the blob's size for a layer not unpacked yet.
        let size = manifest["layers"]
            .as_array()
            .map(|l| {
                l.iter()
                    .zip(&diff_ids)
                    .map(|(d, id)| {
                        self.layer_size(id)
                            .unwrap_or_else(|| d["size"].as_u64().unwrap_or(0))
                    })
                    .sum()
            })
            .unwrap_or(0);
        if diff_ids.len() != layers.len() {
            return Err(Error::Corrupt(format!(
                "image {config_digest}: {} layers but {} diff_ids in its config",
                layers.len(),
                diff_ids.len()
            )));
        }
        Ok(Image {
            id: config_digest.to_string(),
            reference,
            manifest_digest: manifest_digest.to_string(),
            repo_digest: None,
            created: config.created().clone(),
            config,
            size,
            layers,
            diff_ids,
        })
    }

    /// Every (image, tag) pair; untagged images once each.
    pub fn list(&self) -> Result<Vec<Image>> {
        let index = self.read_index()?;
        let mut out = Vec::new();
        for m in index["manifests"].as_array().into_iter().flatten() {
            if let Some(image) = self.entry(m)? {
                out.push(image);
            }
        }
        out.sort_by(|a, b| b.created.cmp(&a.created));
        Ok(out)
    }

    /// The image one `index.json` entry names (with its tag and repo digest), if it names one.
    pub(crate) fn entry(&self, m: &Value) -> Result<Option<Image>> {
        let Some(digest) = m["digest"].as_str() else {
            return Ok(None);
        };
        let mut image = self.load(digest, tag_of(m))?;
        image.repo_digest = m["annotations"][REPO_DIGEST].as_str().map(String::from);
        Ok(Some(image))
    }

    /// Find by reference, full id, or id prefix (at least 4 hex digits). Only the image found
    /// is loaded (`run` asks this on every start): a tag is looked up in `index.json`, an id
    /// among the manifests' config digests.
    pub fn find(&self, name: &str) -> Result<Image> {
        let index = self.read_index()?;
        let entries: &[Value] = index["manifests"].as_array().map_or(&[], |v| v.as_slice());
        if let Ok(r) = Reference::parse(name) {
            if let Some(m) = entries.iter().find(|m| tag_of(m).as_ref() == Some(&r)) {
                if let Some(image) = self.entry(m)? {
                    return Ok(image);
                }
            }
        }
        let prefix = name.strip_prefix("sha256:").unwrap_or(name);
        if prefix.len() >= 4 && prefix.bytes().all(|b| b.is_ascii_hexdigit()) {
            let mut ids = std::collections::BTreeSet::new();
            let mut first = None;
            for m in entries {
                let Some(digest) = m["digest"].as_str() else {
                    continue;
                };
                let manifest: Value = serde_json::from_slice(&self.read_blob(digest)?)
                    .map_err(|e| Error::Corrupt(format!("manifest {digest}: {e}")))?;
                let id = manifest["config"]["digest"].as_str().unwrap_or("");
                if id.strip_prefix("sha256:").unwrap_or(id).starts_with(prefix) {
                    ids.insert(id.to_string());
                    first.get_or_insert(m);
                }
            }
            match (ids.len(), first) {
                (1, Some(m)) => {
                    if let Some(image) = self.entry(m)? {
                        return Ok(image);
                    }
                }
                (0, _) | (1, None) => {}
                _ => {
                    return Err(Error::Usage(format!(
                        "image id prefix {name} is ambiguous: give more digits"
                    )))
                }
            }
        }
        Err(Error::NotFound(format!(
            "unable to find image '{name}' locally: pull it (`dockling pull {name}`) or import it (`dockling import FILE {name}`)"
        )))
    }

    /// The unpacked layer directories of `image`, bottom first (unpacking any that are missing).
    pub fn layer_dirs(&self, image: &Image) -> Result<Vec<PathBuf>> {
        image
            .layers
            .iter()
            .zip(&image.diff_ids)
            .map(|(b, d)| self.ensure_unpacked(b, d))
            .collect()
    }

    /// Docker-like `inspect` document.
    pub fn inspect(&self, image: &Image) -> Value {
        let cfg = serde_json::to_value(&image.config).unwrap_or(Value::Null);
        json!({
            "Id": image.id,
            "RepoTags": image.reference.iter().map(|r| r.familiar_tagged()).collect::<Vec<_>>(),
            "RepoDigests": image.reference.iter().zip(&image.repo_digest)
                .map(|(r, d)| format!("{}@{d}", r.familiar())).collect::<Vec<_>>(),
            "Created": image.created,
            "Architecture": cfg["architecture"],
            "Os": cfg["os"],
            "Size": image.size,
            "Config": cfg["config"],
            "RootFS": {"Type": "layers", "Layers": cfg["rootfs"]["diff_ids"]},
            "Manifest": image.manifest_digest,
            "History": cfg["history"],
        })
    }
}

/// Parse an image config. The OCI spec makes `history` (and the runtime `config`) optional,
/// and images built by some tools leave them out; oci-spec's type wants `history`, so an
/// empty one is filled in before parsing.
pub fn parse_config(bytes: &[u8], digest: &str) -> Result<oci_spec::image::ImageConfiguration> {
    let mut v: Value = serde_json::from_slice(bytes)
        .map_err(|e| Error::Corrupt(format!("config {digest}: {e}")))?;
    if !v.is_object() {
        return Err(Error::Corrupt(format!(
            "config {digest} is not a JSON object"
        )));
    }
    if v["history"].is_null() {
        v["history"] = json!([]);
    }
    serde_json::from_value(v).map_err(|e| Error::Corrupt(format!("config {digest}: {e}")))
}

/// The architecture name OCI uses (Go's GOARCH).
pub fn go_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    fn rootfs_tar() -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Directory);
        h.set_mode(0o755);
        h.set_size(0);
        b.append_data(&mut h, "etc/", &[][..]).unwrap();
        let mut h = tar::Header::new_gnu();
        h.set_mode(0o644);
        h.set_size(5);
        b.append_data(&mut h, "etc/hostname", &b"hello"[..])
            .unwrap();
        b.into_inner().unwrap()
    }

    fn import(store: &Store, dir: &Path, name: &str, changes: &[String]) -> Image {
        let tar = dir.join(format!("{}.tar", name.replace([':', '/'], "_")));
        fs::write(&tar, rootfs_tar()).unwrap();
        store
            .import(
                tar.to_str().unwrap(),
                Some(&Reference::parse(name).unwrap()),
                changes,
                None,
            )
            .unwrap()
    }

    #[test]
    fn import_list_find_and_remove() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open(&tmp.path().join("root")).unwrap();
        let img = import(
            &store,
            tmp.path(),
            "busybox",
            &["CMD [\"sh\"]".into(), "ENV A=1".into()],
        );
        assert!(img.id.starts_with("sha256:"));
        let dirs = store.layer_dirs(&img).unwrap();
        assert_eq!(
            fs::read_to_string(dirs[0].join("etc/hostname")).unwrap(),
            "hello"
        );
        assert_eq!(store.find("busybox:latest").unwrap().id, img.id);
        assert_eq!(store.find(&img.id[7..13]).unwrap().id, img.id);
        let cfg = img.config.config().clone().unwrap();
        assert_eq!(cfg.cmd().clone().unwrap(), vec!["sh"]);
        assert!(cfg.env().clone().unwrap().contains(&"A=1".to_string()));
        // A second image sharing the layer: removing it keeps the shared layer.
        import(
            &store,
            tmp.path(),
            "busybox:2",
            &["CMD [\"sh\"]".into(), "ENV A=1".into()],
        );
        assert_eq!(store.list().unwrap().len(), 2);
        let lines = store.remove("busybox:2", false, &|_| None).unwrap();
        assert_eq!(lines[0], "Untagged: busybox:2");
        assert!(lines[1].starts_with("Deleted: sha256:"), "{lines:?}");
        assert!(
            dirs[0].exists(),
            "the layer busybox:latest still uses is kept"
        );
        let err = store
            .remove("busybox", false, &|_| Some("abc".into()))
            .unwrap_err()
            .to_string();
        assert!(err.contains("must force"), "{err}");
        let lines = store.remove("busybox", false, &|_| None).unwrap();
        assert_eq!(lines[0], "Untagged: busybox:latest");
        assert!(lines.iter().any(|l| l == &format!("Deleted: {}", img.id)));
        assert!(store.list().unwrap().is_empty());
        assert!(!dirs[0].exists(), "the unpacked layer is gone");
        let left: Vec<_> = fs::read_dir(tmp.path().join("root/oci/blobs/sha256"))
            .unwrap()
            .collect();
        assert!(left.is_empty(), "no blob left: {left:?}");
        assert!(store
            .find("busybox")
            .unwrap_err()
            .to_string()
            .contains("unable to find image"));
    }

    #[test]
    fn retagging_leaves_the_old_image_untagged() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open(&tmp.path().join("root")).unwrap();
        let a = import(&store, tmp.path(), "web", &["CMD a".into()]);
        let b = import(&store, tmp.path(), "web", &["CMD b".into()]);
        assert_ne!(a.id, b.id);
        let list = store.list().unwrap();
        assert_eq!(list.len(), 2);
        assert!(list.iter().any(|i| i.id == a.id && i.reference.is_none()));
    }

    #[test]
    fn a_corrupt_blob_is_detected() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open(&tmp.path().join("root")).unwrap();
        let img = import(&store, tmp.path(), "busybox", &[]);
        fs::write(store.blob_path(&img.id).unwrap(), b"{}").unwrap();
        assert!(store
            .find("busybox")
            .unwrap_err()
            .to_string()
            .contains("corrupt"));
    }

    #[test]
    fn a_small_layer_trailed_by_a_flood_of_zeros_is_refused_as_a_bomb() {
        let tmp = tempfile::tempdir().unwrap();
        let limits = crate::layers::unpack::Limits {
            max_size: 1 << 20,
            ..Default::default()
        };
        let store = Store::open(&tmp.path().join("root"))
            .unwrap()
            .with_limits(limits);
        // A valid tar, then megabytes after its end: compressed, a few kilobytes.
        let mut tar = rootfs_tar();
        tar.resize(tar.len() + (4 << 20), 0);
        let diff_id = digest_of(&tar);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        gz.write_all(&tar).unwrap();
        let (blob, size) = store.write_blob(&gz.finish().unwrap()).unwrap();
        assert!(size < 64 << 10);
        let err = store
            .ensure_unpacked(&blob, &diff_id)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(&format!("layer {blob}: refused")) && err.contains("max-layer-size"),
            "{err}"
        );
        let left: Vec<_> = fs::read_dir(tmp.path().join("root/layers/sha256"))
            .unwrap()
            .collect();
        assert!(left.is_empty(), "left behind: {left:?}");
        // The same layer within the limit unpacks.
        let store = Store::open(&tmp.path().join("root")).unwrap();
        store.ensure_unpacked(&blob, &diff_id).unwrap();
    }

    #[test]
    fn zstd_layers_unpack_and_are_checked_against_their_diff_id() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open(&tmp.path().join("root")).unwrap();
        let tar = rootfs_tar();
        let diff_id = digest_of(&tar);
        let zst = ruzstd::encoding::compress_to_vec(
            &tar[..],
            ruzstd::encoding::CompressionLevel::Fastest,
        );
        assert_eq!(&zst[..4], &[0x28, 0xb5, 0x2f, 0xfd]);
        let (blob, _) = store.write_blob(&zst).unwrap();
        let dir = store.ensure_unpacked(&blob, &diff_id).unwrap();
        assert_eq!(
            fs::read_to_string(dir.join("etc/hostname")).unwrap(),
            "hello"
        );
        assert_eq!(store.layer_size(&diff_id), Some(tar.len() as u64));
        // The same blob claimed to be another layer is refused, and leaves nothing.
        let wrong = format!("sha256:{}", "0".repeat(64));
        let err = store
            .ensure_unpacked(&blob, &wrong)
            .unwrap_err()
            .to_string();
        assert!(err.contains("tampered"), "{err}");
        assert!(!tmp
            .path()
            .join("root/layers/sha256")
            .join("0".repeat(64))
            .exists());
    }
}
