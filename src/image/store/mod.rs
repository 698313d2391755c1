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
//!
//! This file has the `Store` type (open, lock, find, list, inspect); the rest is split by
//! noun: `layout` (paths, `secure_root`), `blob` (ingest, integrity), `index` (`index.json`,
//! tags), `unpack` (layers), `gc` (rmi, collection, leases, sweeps). Making images from tars
//! is `crate::image::build`'s.

use std::fs;
use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use super::reference::Reference;
use crate::error::{Error, Result};
use crate::files::{lock, write_atomic, PathLock};
use crate::image::ImageError;

mod blob;
mod cache;
mod erofs;
mod gc;
mod index;
mod layout;
mod read;
mod summary;
mod unpack;

pub(crate) use blob::hash_file;
pub(crate) use blob::Capped;
pub use blob::{blob_intact, digest_of, BlobSink, Ingest, StagedBlob};
pub use gc::Collected;
use gc::{remove_journal, Lease, GC_PENDING};
pub(crate) use index::tag_of;
use index::REPO_DIGEST;
pub use layout::{hex_of, secure_root, PRIVATE_DIRS};
pub use summary::{Listed, Summary};
pub use unpack::{Made, StagedLayer};

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
    /// A layer's uncompressed size could not be read (a missing, damaged or too big layer),
    /// so `size` counts its blob's size instead: not a size to keep (`summary`).
    pub size_estimated: bool,
    /// Layer blob digests, bottom first.
    pub layers: Vec<String>,
    /// Digests of the uncompressed layers (the config's `rootfs.diff_ids`), bottom first.
    pub diff_ids: Vec<String>,
}

/// The store under one root.
pub struct Store {
    oci: PathBuf,
    layers: PathBuf,
    limits: crate::layers::unpack::Limits,
    /// `--layers erofs`: a layer is made ready as an EROFS image, not unpacked.
    erofs: bool,
    /// This process's lease (made on the first blob or layer it claims): its file, kept
    /// locked while the process lives, and the digests written to it so far.
    lease: std::sync::Mutex<Option<Lease>>,
    /// `oci/summaries.jsonl` as this process first read it (`summary`): an entry is never
    /// wrong, so one read serves the whole command; what others add meanwhile is only missing.
    summaries: std::sync::OnceLock<std::sync::Arc<summary::Summaries>>,
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
            erofs: false,
            lease: Default::default(),
            summaries: Default::default(),
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

    /// The store under `root` for a command that only reads it (`images`): as
    /// [`Store::open`], without the sweep of what killed commands left (a few `readdir`s of
    /// directories with an entry per blob and layer, the one cost of a listing that grew with
    /// the store besides the listing itself): the next command that writes sweeps. A store
    /// that is missing, or whose collection a killed `rmi` left pending, is opened in full.
    pub fn open_to_read(root: &Path) -> Result<Store> {
        secure_root(root)?;
        let store = Store::at(root);
        if store.oci.join("index.json").is_file() && !store.oci.join(GC_PENDING).exists() {
            return Ok(store);
        }
        Store::open(root)
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
            erofs: false,
            lease: Default::default(),
            summaries: Default::default(),
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

    /// The same store, making layers ready as EROFS images (`--layers erofs`, config
    /// `layers: erofs`) instead of unpacking them, at pull and when first needed.
    pub fn with_erofs(self, erofs: bool) -> Store {
        Store { erofs, ..self }
    }

    /// The limits layers are held to (`max-layer-size`, `max-layer-entries`).
    pub fn limits(&self) -> &crate::layers::unpack::Limits {
        &self.limits
    }

    /// The image manifest `digest` names, read (its digest checked) and parsed as oci-spec's
    /// `ImageManifest` (a Docker schema 2 manifest parses too: its media types are `Other`).
    pub(crate) fn read_manifest(&self, digest: &str) -> Result<oci_spec::image::ImageManifest> {
        serde_json::from_slice(&self.read_blob(digest)?).map_err(|e| {
            ImageError::BadManifest {
                digest: digest.to_string(),
                why: e.to_string(),
            }
            .into()
        })
    }

    /// The image whose manifest is `manifest_digest`, listed under `reference`.
    pub(crate) fn load(
        &self,
        manifest_digest: &str,
        reference: Option<Reference>,
    ) -> Result<Image> {
        let manifest = self.read_manifest(manifest_digest)?;
        let config_digest = manifest.config().digest().to_string();
        let config_digest = config_digest.as_str();
        let config_bytes = self.read_blob(config_digest)?;
        let config = parse_config(&config_bytes, config_digest)?;
        let layers: Vec<String> = manifest
            .layers()
            .iter()
            .map(|d| d.digest().to_string())
            .collect();
        let diff_ids: Vec<String> = config.rootfs().diff_ids().clone();
        // Docker's size ([`Store::docker_layer_size`]); the blob's size for a layer that
        // cannot be read.
        let mut size_estimated = false;
        let size = manifest
            .layers()
            .iter()
            .zip(&diff_ids)
            .map(|(d, id)| {
                self.docker_layer_size(d.digest().as_ref(), id)
                    .unwrap_or_else(|| {
                        size_estimated = true;
                        d.size()
                    })
            })
            .sum();
        if diff_ids.len() != layers.len() {
            return Err(ImageError::LayerCount {
                id: config_digest.to_string(),
                layers: layers.len(),
                diff_ids: diff_ids.len(),
            }
            .into());
        }
        Ok(Image {
            id: config_digest.to_string(),
            reference,
            manifest_digest: manifest_digest.to_string(),
            repo_digest: None,
            created: config.created().clone(),
            config,
            size,
            size_estimated,
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
    ///
    /// An id is looked up in the summaries (`summary`, read only then), the manifest read
    /// only for an image without one.
    pub fn find(&self, name: &str) -> Result<Image> {
        self.find_in(&self.read_index()?, name)
    }

    /// [`Store::find`] in `index` as already read (`rmi` reads it once, under the lock).
    pub(crate) fn find_in(&self, index: &Value, name: &str) -> Result<Image> {
        let known = std::cell::OnceCell::new();
        self.find_by(index, name, &|m| self.entry(m), &|m| {
            let Some(digest) = m["digest"].as_str() else {
                return Ok(Vec::new());
            };
            if let Some(s) = known.get_or_init(|| self.summaries()).get(digest) {
                return Ok(vec![s.id.clone()]);
            }
            Ok(vec![self
                .read_manifest(digest)?
                .config()
                .digest()
                .to_string()])
        })
    }

    /// The one walk of `index.json` behind [`Store::find`] and `Store::find_damaged`: the
    /// entry tagged `name`, else the entry whose ids start with the hex prefix `name` (at
    /// least 4 digits; ambiguous when entries of several images do). `image` makes the image
    /// of an entry (`None` when it names none); `ids` gives the ids an entry may be found by,
    /// its image id first (which says whether two entries are the same image).
    pub(crate) fn find_by(
        &self,
        index: &Value,
        name: &str,
        image: &dyn Fn(&Value) -> Result<Option<Image>>,
        ids: &dyn Fn(&Value) -> Result<Vec<String>>,
    ) -> Result<Image> {
        let entries: &[Value] = index["manifests"].as_array().map_or(&[], |v| v.as_slice());
        if let Ok(r) = Reference::parse(name) {
            for m in entries.iter().filter(|m| tag_of(m).as_ref() == Some(&r)) {
                if let Some(found) = image(m)? {
                    return Ok(found);
                }
            }
        }
        let prefix = name.strip_prefix("sha256:").unwrap_or(name);
        if prefix.len() >= 4 && prefix.bytes().all(|b| b.is_ascii_hexdigit()) {
            let mut images = std::collections::BTreeSet::new();
            let mut first = None;
            for m in entries {
                let ids = ids(m)?;
                let hit = ids
                    .iter()
                    .any(|id| id.strip_prefix("sha256:").unwrap_or(id).starts_with(prefix));
                if let (true, Some(id)) = (hit, ids.first()) {
                    images.insert(id.clone());
                    first.get_or_insert(m);
                }
            }
            match (images.len(), first) {
                (1, Some(m)) => {
                    if let Some(found) = image(m)? {
                        return Ok(found);
                    }
                }
                (0, _) | (1, None) => {}
                _ => {
                    return Err(ImageError::AmbiguousId {
                        prefix: name.to_string(),
                    }
                    .into())
                }
            }
        }
        Err(Error::NotFound(format!(
            "unable to find image '{name}' locally: pull it (`dockling pull {name}`) or import it (`dockling import FILE {name}`)"
        )))
    }

    /// Docker-like `inspect` document.
    pub fn inspect(&self, image: &Image) -> Value {
        let mut cfg = serde_json::to_value(&image.config).unwrap_or(Value::Null);
        // Docker's own fields of the config, which oci-spec's type does not carry: taken from
        // the blob as stored.
        if let Some(raw) = self
            .read_blob(&image.id)
            .ok()
            .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
        {
            for key in ["Healthcheck", "OnBuild", "Shell"] {
                let v = &raw["config"][key];
                if !v.is_null() && cfg["config"].is_object() {
                    cfg["config"][key] = v.clone();
                }
            }
        }
        json!({
            "Id": image.id,
            "RepoTags": image.reference.iter().map(|r| r.familiar_tagged()).collect::<Vec<_>>(),
            "RepoDigests": image.reference.iter().zip(&image.repo_digest)
                .map(|(r, d)| format!("{}@{d}", r.familiar())).collect::<Vec<_>>(),
            "Created": image.created,
            "Author": cfg["author"].as_str().unwrap_or_default(),
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
    let mut v: Value = serde_json::from_slice(bytes).map_err(|e| ImageError::BadConfig {
        digest: digest.to_string(),
        why: e.to_string(),
    })?;
    if !v.is_object() {
        return Err(ImageError::ConfigNotAnObject {
            digest: digest.to_string(),
        }
        .into());
    }
    if v["history"].is_null() {
        v["history"] = json!([]);
    }
    serde_json::from_value(v).map_err(|e| {
        ImageError::BadConfig {
            digest: digest.to_string(),
            why: e.to_string(),
        }
        .into()
    })
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
    use super::*;

    pub(super) fn rootfs_tar() -> Vec<u8> {
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

    pub(super) fn import(store: &Store, dir: &Path, name: &str, changes: &[String]) -> Image {
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

    /// `rmi` of one image leaves what another, damaged, image names: its manifest cut short
    /// (a crash, a full disk), its summary still says what it named. A collection that read
    /// only what could still be read of it took the layer both share and its config.
    #[test]
    fn removing_an_image_keeps_what_a_damaged_one_names() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("root");
        let store = Store::open(&root).unwrap();
        let a = import(&store, tmp.path(), "a", &["CMD a".into()]);
        let b = import(&store, tmp.path(), "b", &["CMD b".into()]);
        assert_eq!(a.layers, b.layers, "one layer, shared");
        let manifest = store.blob_path(&a.manifest_digest).unwrap();
        let text = fs::read(&manifest).unwrap();
        fs::write(&manifest, &text[..text.len() / 2]).unwrap();
        // A later command: the imports' lease is gone with their store.
        drop(store);
        let store = Store::open(&root).unwrap();
        let lines = store.remove("b", false, &|_| None).unwrap();
        // No layer deleted.
        assert_eq!(
            lines,
            [
                "Untagged: b:latest".to_string(),
                format!("Deleted: {}", b.id)
            ]
        );
        assert!(store.blob_path(&a.id).unwrap().exists(), "a's config");
        assert!(
            store.blob_path(&a.layers[0]).unwrap().exists(),
            "the layer blob"
        );
        assert!(store.layer_complete(&a.diff_ids[0]), "the unpacked layer");
        assert!(!store.blob_path(&b.id).unwrap().exists(), "b's config went");
        assert!(!store.blob_path(&b.manifest_digest).unwrap().exists());
        // And a whole collection (`image prune -a`) keeps them too.
        Store::open(&root).unwrap().reclaim().unwrap();
        assert!(store.blob_path(&a.id).unwrap().exists(), "a's config");
        assert!(store.layer_complete(&a.diff_ids[0]), "the unpacked layer");
    }

    /// A listing reads `index.json` as borrowed text, and an index that does not fit that
    /// view (here an entry whose digest is a number, which other tools could write) as a
    /// value: the same rows, the odd entry left out.
    #[test]
    fn a_listing_of_an_index_with_an_odd_entry_is_the_same() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("root");
        let store = Store::open(&root).unwrap();
        import(&store, tmp.path(), "a", &["CMD a".into()]);
        import(&store, tmp.path(), "b", &["CMD b".into()]);
        let rows = |store: &Store| {
            store
                .listing()
                .unwrap()
                .iter()
                .map(|l| {
                    format!(
                        "{} {:?} {} {}",
                        l.id, l.reference, l.manifest_digest, l.size
                    )
                })
                .collect::<Vec<_>>()
        };
        let before = rows(&Store::at(&root));
        assert_eq!(before.len(), 2);
        let path = root.join("oci/index.json");
        let mut index: Value = serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
        index["manifests"]
            .as_array_mut()
            .unwrap()
            .push(json!({"digest": 5, "annotations": {"x": 1}}));
        fs::write(&path, serde_json::to_vec(&index).unwrap()).unwrap();
        assert_eq!(rows(&Store::at(&root)), before);
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
}
