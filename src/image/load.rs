//! `dockling load`: images from an archive into the store. Reads what `docker save` writes
//! (Docker 25+: an OCI layout plus `manifest.json`; older: `<id>/layer.tar`, `<id>.json` and
//! `manifest.json`), what `podman save` writes (`docker-archive` and `oci-archive`) and what
//! `dockling save` writes; the archive plain, gzip or zstd, layers plain, gzip or zstd.
//!
//! The archive is hostile input, read once as a stream with the `tar` crate and never
//! extracted by path: every regular file goes through the store's `ingest` (a temporary name
//! in `oci/blobs/sha256/`, hashed on the way, renamed to its digest; a `blobs/sha256/<hex>`
//! entry must hash to its name), the few metadata files (`manifest.json`, `index.json`,
//! `oci-layout`, `repositories`) are kept in memory (at most 8 MiB each), and a symlink or
//! hard link is only a name that points at another entry, followed inside the archive's own
//! list of names (never out of it: an absolute target or one climbing out with `..` is
//! refused, as is any entry named so). Devices and FIFOs are refused.
//!
//! Then every image is checked before anything is tagged: every file `manifest.json` or
//! `index.json` names must be in the archive, every descriptor's size and digest must match,
//! a legacy config named `<hex>.json` must hash to that name, and every layer must unpack to
//! the `diff_id` its config promises (`Store::ensure_unpacked`, which also holds it to
//! `max-layer-size`). Only when all images passed are they tagged; on any error what this
//! load wrote and no image uses is removed again.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};

use oci_spec::image::{Descriptor, ImageIndex, ImageManifest, MediaType};
use serde::Deserialize;

use super::oci::{descriptor, manifest, to_vec};
use super::reference::Reference;
use super::save::{IMAGE_NAME, REF_NAME};
use super::store::{digest_of, go_arch, parse_config, Capped, Ingest, Store};
use super::{ArchiveError, ImageError};
use crate::error::{Error, Result};

/// The files of an archive that are its metadata, kept in memory.
const META: &[&str] = &["manifest.json", "index.json", "oci-layout", "repositories"];
/// The largest metadata file accepted.
const MAX_META: u64 = 8 << 20;

/// One name of the archive.
enum Item {
    /// A regular file, now a blob of the store.
    Blob { digest: String, size: u64 },
    /// A symlink (target relative to its directory) or hard link (relative to the top).
    Link { target: String, hard: bool },
}

/// One item of Docker's `manifest.json`.
#[derive(Deserialize)]
struct LegacyItem {
    #[serde(rename = "Config")]
    config: String,
    #[serde(rename = "RepoTags", default)]
    repo_tags: Option<Vec<String>>,
    #[serde(rename = "Layers", default)]
    layers: Vec<String>,
}

/// An image checked and ready to be tagged.
struct Pending {
    manifest: Vec<u8>,
    manifest_digest: String,
    config_digest: String,
    layers: Vec<String>,
    diff_ids: Vec<String>,
    tags: Vec<Reference>,
}

/// The archive as read: its names and metadata.
struct Read_<'a> {
    source: &'a str,
    items: BTreeMap<String, Item>,
    meta: BTreeMap<String, Vec<u8>>,
}

/// `name` without `./` and empty components; an absolute name or one with `..` is refused.
fn clean(source: &str, raw: &str) -> Result<String> {
    let escaping = || ArchiveError::EscapingEntry {
        source_name: source.to_string(),
        entry: raw.to_string(),
    };
    if raw.starts_with('/') {
        return Err(escaping().into());
    }
    let mut parts = Vec::new();
    for c in raw.split('/') {
        match c {
            "" | "." => {}
            ".." => return Err(escaping().into()),
            c => parts.push(c),
        }
    }
    Ok(parts.join("/"))
}

/// A symlink's target read from the directory of `link`, lexically (`..` pops a component);
/// `None` when it is absolute or climbs out of the archive.
fn beside(link: &str, target: &str) -> Option<String> {
    if target.starts_with('/') {
        return None;
    }
    let mut parts: Vec<&str> = link.split('/').collect();
    parts.pop();
    for c in target.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            c => parts.push(c),
        }
    }
    Some(parts.join("/"))
}

/// `sha256:<hex>` when `name` is `blobs/sha256/<64 lowercase hex>`.
fn blob_name(name: &str) -> Option<String> {
    let hex = name.strip_prefix("blobs/sha256/")?;
    (hex.len() == 64
        && hex
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)))
    .then(|| format!("sha256:{hex}"))
}

impl Read_<'_> {
    /// The blob an archive name leads to (links followed inside the archive), with its size.
    fn lookup(&self, what: &str, name: &str) -> Result<(String, u64)> {
        let mut name = clean(self.source, name)?;
        for _ in 0..16 {
            match self.items.get(&name) {
                Some(Item::Blob { digest, size }) => return Ok((digest.clone(), *size)),
                Some(Item::Link { target, hard }) => {
                    let next = if *hard {
                        clean(self.source, target).ok()
                    } else {
                        beside(&name, target)
                    };
                    name = next.ok_or_else(|| ArchiveError::BadLink {
                        source_name: self.source.to_string(),
                        entry: name.clone(),
                    })?;
                }
                None => {
                    return Err(ArchiveError::MissingEntry {
                        source_name: self.source.to_string(),
                        what: what.to_string(),
                        entry: name,
                    }
                    .into())
                }
            }
        }
        Err(ArchiveError::BadLink {
            source_name: self.source.to_string(),
            entry: name,
        }
        .into())
    }

    /// The blob a descriptor names, checked against its size (its digest was checked when
    /// the `blobs/sha256/<hex>` entry was ingested, and a link resolves to a checked blob).
    fn described(&self, what: &str, d: &Descriptor) -> Result<String> {
        let name = format!("blobs/sha256/{}", d.digest().digest());
        let (digest, size) = self.lookup(what, &name)?;
        if digest != d.digest().to_string() {
            return Err(ArchiveError::WrongDigest {
                source_name: self.source.to_string(),
                entry: name,
                got: digest,
            }
            .into());
        }
        if size != d.size() {
            return Err(ArchiveError::WrongSize {
                source_name: self.source.to_string(),
                entry: name,
                got: size,
                want: d.size(),
            }
            .into());
        }
        Ok(digest)
    }

    /// Refuse a manifest, index or config larger than metadata ever is, before it is read
    /// into memory.
    fn small(&self, entry: &str, size: u64) -> Result<()> {
        if size > MAX_META {
            return Err(ArchiveError::TooLarge {
                source_name: self.source.to_string(),
                entry: entry.to_string(),
                limit: MAX_META,
            }
            .into());
        }
        Ok(())
    }

    fn bad(&self, entry: &str, why: impl ToString) -> Error {
        ArchiveError::BadMetadata {
            source_name: self.source.to_string(),
            entry: entry.to_string(),
            why: why.to_string(),
        }
        .into()
    }
}

/// Read the archive into the store: every regular file ingested as a blob (recorded in
/// `written`), metadata kept, links recorded.
fn read_archive<'a>(
    store: &Store,
    input: impl Read,
    source: &'a str,
    written: &mut Vec<String>,
) -> Result<Read_<'a>> {
    let mut input = BufReader::with_capacity(1 << 16, input);
    let head = input
        .fill_buf()
        .map_err(|e| ArchiveError::NotATar {
            source_name: source.to_string(),
            why: e.to_string(),
        })?
        .to_vec();
    let reader: Box<dyn Read> = if head.starts_with(&[0x1f, 0x8b]) {
        Box::new(flate2::read::MultiGzDecoder::new(input))
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Box::new(ruzstd::decoding::StreamingDecoder::new(input).map_err(|e| {
            ArchiveError::NotATar {
                source_name: source.to_string(),
                why: e.to_string(),
            }
        })?)
    } else {
        Box::new(input)
    };
    let not_a_tar = |e: std::io::Error| ArchiveError::NotATar {
        source_name: source.to_string(),
        why: e.to_string(),
    };
    let mut out = Read_ {
        source,
        items: BTreeMap::new(),
        meta: BTreeMap::new(),
    };
    let mut archive = tar::Archive::new(reader);
    for entry in archive.entries().map_err(not_a_tar)? {
        let mut entry = entry.map_err(not_a_tar)?;
        let raw = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let name = clean(source, &raw)?;
        let kind = entry.header().entry_type();
        let duplicate = || ArchiveError::DuplicateEntry {
            source_name: source.to_string(),
            entry: raw.clone(),
        };
        match kind {
            tar::EntryType::Directory
            | tar::EntryType::XGlobalHeader
            | tar::EntryType::XHeader
            | tar::EntryType::GNULongName
            | tar::EntryType::GNULongLink => continue,
            tar::EntryType::Symlink | tar::EntryType::Link => {
                let target = entry
                    .link_name_bytes()
                    .map(|t| String::from_utf8_lossy(&t).into_owned())
                    .unwrap_or_default();
                let link = Item::Link {
                    target,
                    hard: kind == tar::EntryType::Link,
                };
                if out.items.insert(name, link).is_some() {
                    return Err(duplicate().into());
                }
                continue;
            }
            k if k.is_file() => {}
            other => {
                return Err(ArchiveError::UnexpectedEntry {
                    source_name: source.to_string(),
                    entry: raw,
                    kind: match other {
                        tar::EntryType::Char => "character device".into(),
                        tar::EntryType::Block => "block device".into(),
                        tar::EntryType::Fifo => "FIFO".into(),
                        other => format!("{other:?} entry").to_lowercase(),
                    },
                }
                .into())
            }
        }
        // The size a PAX header gives, if any, else the header's.
        let declared = entry.size();
        let truncated = |why: String| ArchiveError::Truncated {
            source_name: source.to_string(),
            entry: raw.clone(),
            why,
        };
        if META.contains(&name.as_str()) {
            let mut bytes = Vec::new();
            (&mut entry)
                .take(MAX_META + 1)
                .read_to_end(&mut bytes)
                .map_err(|e| truncated(e.to_string()))?;
            if bytes.len() as u64 > MAX_META {
                return Err(ArchiveError::TooLarge {
                    source_name: source.to_string(),
                    entry: raw,
                    limit: MAX_META,
                }
                .into());
            }
            if (bytes.len() as u64) < declared {
                return Err(truncated("the stream ended".into()).into());
            }
            if out.meta.insert(name, bytes).is_some() {
                return Err(duplicate().into());
            }
            continue;
        }
        let expected = blob_name(&name);
        let max = store.limits().max_size;
        let mut capped = Capped {
            inner: &mut entry,
            left: max,
            over: false,
        };
        // A blob the store already holds whole (an image loaded again, a base layer it has):
        // its bytes are only hashed, not written and synced again. Claimed before the stored
        // copy is looked at: once this load's lease names the digest, no garbage collection
        // (`rmi`, `image prune`, another load or a pull cleaning up after a failure) removes
        // it, so the copy found is the copy the image gets. Looked at first and claimed after,
        // a collection in between removed it and this load went on as if the store held it:
        // its layer could not be unpacked, or an image was tagged whose blob was gone.
        if let Some(d) = expected.as_deref() {
            store.claim(&[d])?;
        }
        let have = expected.as_deref().filter(|d| {
            store.blob_path(d).is_ok_and(|p| {
                std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.len() == declared)
            })
        });
        #[cfg(test)]
        if let Some(d) = have {
            tests::AFTER_LOOKUP.with(|hook| {
                if let Some(f) = hook.borrow().as_ref() {
                    f(d)
                }
            });
        }
        let ingested = match have {
            Some(d) => verify(&mut capped, d),
            None => store.ingest(&mut capped, expected.as_deref(), &mut |_| {}),
        };
        let read = max - capped.left;
        let over = capped.over;
        let (digest, size) = match ingested {
            Ok(got) => got,
            Err(Ingest::Read(_)) if over => return Err(store.limits().too_big(&raw)),
            Err(Ingest::Read(e)) => return Err(truncated(e.to_string()).into()),
            Err(Ingest::Mismatch(_)) if read < declared => {
                return Err(truncated("the stream ended".into()).into())
            }
            Err(Ingest::Mismatch(got)) => {
                return Err(ArchiveError::WrongDigest {
                    source_name: source.to_string(),
                    entry: raw,
                    got,
                }
                .into())
            }
            Err(Ingest::Store(e)) => return Err(e),
        };
        if have.is_none() {
            written.push(digest.clone());
        }
        if size < declared {
            return Err(truncated("the stream ended".into()).into());
        }
        if out
            .items
            .insert(name, Item::Blob { digest, size })
            .is_some()
        {
            return Err(duplicate().into());
        }
    }
    Ok(out)
}

/// Hash `reader` and check it has the digest `digest` of a blob the store holds (which the
/// caller claimed before it looked, so that no collection removes it before the image is
/// tagged). The same answers as `Store::ingest`, without the write.
fn verify(reader: &mut dyn Read, digest: &str) -> std::result::Result<(String, u64), Ingest> {
    use sha2::{Digest as _, Sha256};
    let mut hash = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    let mut n = 0u64;
    loop {
        match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(got) => {
                hash.update(&buf[..got]);
                n += got as u64;
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(Ingest::Read(e)),
        }
    }
    let got = format!("sha256:{:x}", hash.finalize());
    if got != digest {
        return Err(Ingest::Mismatch(got));
    }
    Ok((got, n))
}

/// The OCI media type of a layer blob of the store, from its first bytes.
fn sniff_layer(store: &Store, digest: &str) -> Result<MediaType> {
    let path = store.blob_path(digest)?;
    let mut head = [0u8; 4];
    let n = std::fs::File::open(&path)
        .and_then(|mut f| f.read(&mut head))
        .map_err(Error::io("read", &path))?;
    Ok(if n >= 2 && head[..2] == [0x1f, 0x8b] {
        MediaType::ImageLayerGzip
    } else if n == 4 && head == [0x28, 0xb5, 0x2f, 0xfd] {
        MediaType::ImageLayerZstd
    } else {
        MediaType::ImageLayer
    })
}

const MANIFEST_TYPES: &[&str] = &[
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
];
const INDEX_TYPES: &[&str] = &[
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
];

/// An image manifest of an OCI layout: its bytes, digest, parsed form, and the tags of its
/// `index.json` entry.
type OciImage = (Vec<u8>, String, ImageManifest, Vec<Reference>);

/// The image manifests an `index.json` (or a nested index) names. A nested index gives its
/// entry for this platform.
fn oci_images(a: &Read_<'_>, store: &Store) -> Result<Vec<OciImage>> {
    let Some(bytes) = a.meta.get("index.json") else {
        return Ok(Vec::new());
    };
    let index: ImageIndex = serde_json::from_slice(bytes).map_err(|e| a.bad("index.json", e))?;
    let mut out = Vec::new();
    for d in index.manifests() {
        let annotations = d.annotations().clone().unwrap_or_default();
        let name = annotations.get(IMAGE_NAME).or_else(|| {
            annotations
                .get(REF_NAME)
                .filter(|r| r.contains('/') || r.contains(':'))
        });
        let tags = match name {
            Some(n) => vec![Reference::parse(n)
                .map_err(|e| a.bad("index.json", format!("the name {n:?}: {e}")))?],
            None => Vec::new(),
        };
        let mut desc = d.clone();
        for depth in 0..2 {
            let media = desc.media_type().to_string();
            let digest = a.described("index.json", &desc)?;
            a.small(&digest, desc.size())?;
            let blob = store.read_blob(&digest)?;
            if INDEX_TYPES.contains(&media.as_str()) && depth == 0 {
                let nested: ImageIndex =
                    serde_json::from_slice(&blob).map_err(|e| a.bad(&digest, e))?;
                let arch = go_arch();
                let pick = nested
                    .manifests()
                    .iter()
                    .find(|m| {
                        m.platform().as_ref().is_some_and(|p| {
                            p.os().to_string() == "linux" && p.architecture().to_string() == arch
                        }) && MANIFEST_TYPES.contains(&m.media_type().to_string().as_str())
                    })
                    .ok_or_else(|| ArchiveError::NoPlatform {
                        source_name: a.source.to_string(),
                        entry: digest.clone(),
                        arch,
                    })?;
                desc = pick.clone();
                continue;
            }
            if !MANIFEST_TYPES.contains(&media.as_str()) {
                return Err(a.bad(
                    "index.json",
                    format!("{digest} has media type {media}, not an image manifest"),
                ));
            }
            let manifest: ImageManifest =
                serde_json::from_slice(&blob).map_err(|e| a.bad(&digest, e))?;
            out.push((blob, digest, manifest, tags));
            break;
        }
    }
    Ok(out)
}

/// Check every image the archive holds; nothing is tagged here.
fn check_images(a: &Read_<'_>, store: &Store) -> Result<Vec<Pending>> {
    let oci = if a.meta.contains_key("manifest.json") {
        // The OCI side of a Docker 25+ archive only gives back the manifest bytes (so their
        // digest survives a save and load); a broken one is not worth refusing the archive.
        oci_images(a, store).unwrap_or_default()
    } else {
        oci_images(a, store)?
    };
    let mut pending: Vec<Pending> = Vec::new();
    if let Some(bytes) = a.meta.get("manifest.json") {
        let items: Vec<LegacyItem> =
            serde_json::from_slice(bytes).map_err(|e| a.bad("manifest.json", e))?;
        for item in items {
            let (config_digest, config_size) = a.lookup("manifest.json", &item.config)?;
            a.small(&item.config, config_size)?;
            let file = item.config.rsplit('/').next().unwrap_or("");
            let named = file
                .strip_suffix(".json")
                .or_else(|| blob_name(&item.config).map(|_| file));
            if let Some(hex) = named.filter(|h| h.len() == 64) {
                if config_digest != format!("sha256:{hex}") {
                    return Err(ArchiveError::WrongConfigDigest {
                        source_name: a.source.to_string(),
                        entry: item.config.clone(),
                        got: config_digest,
                    }
                    .into());
                }
            }
            let config = parse_config(&store.read_blob(&config_digest)?, &config_digest)?;
            let layers: Vec<(String, u64)> = item
                .layers
                .iter()
                .map(|l| a.lookup("manifest.json", l))
                .collect::<Result<_>>()?;
            let diff_ids = config.rootfs().diff_ids().clone();
            same_count(&config_digest, layers.len(), diff_ids.len())?;
            let tags = item
                .repo_tags
                .unwrap_or_default()
                .iter()
                .map(|t| {
                    Reference::parse(t)
                        .map_err(|e| a.bad("manifest.json", format!("RepoTags {t:?}: {e}")))
                })
                .collect::<Result<Vec<_>>>()?;
            let same = oci.iter().find(|(_, _, m, _)| {
                m.config().digest().to_string() == config_digest
                    && m.layers().len() == layers.len()
                    && m.layers()
                        .iter()
                        .zip(&layers)
                        .all(|(d, (l, _))| d.digest().to_string() == *l)
            });
            let (manifest, manifest_digest) = match same {
                Some((bytes, digest, _, _)) => (bytes.clone(), digest.clone()),
                None => {
                    let layer_descs = layers
                        .iter()
                        .map(|(l, size)| descriptor(sniff_layer(store, l)?, l, *size, &[]))
                        .collect::<Result<Vec<_>>>()?;
                    let m = manifest(&config_digest, config_size, layer_descs)?;
                    let bytes = to_vec(&m);
                    let d = digest_of(&bytes);
                    (bytes, d)
                }
            };
            pending.push(Pending {
                manifest,
                manifest_digest,
                config_digest,
                layers: layers.into_iter().map(|(l, _)| l).collect(),
                diff_ids,
                tags,
            });
        }
    } else if a.meta.contains_key("index.json") {
        for (bytes, digest, manifest, tags) in oci {
            let config_digest = a.described(&digest, manifest.config())?;
            a.small(&config_digest, manifest.config().size())?;
            let config = parse_config(&store.read_blob(&config_digest)?, &config_digest)?;
            let layers = manifest
                .layers()
                .iter()
                .map(|l| a.described(&digest, l))
                .collect::<Result<Vec<_>>>()?;
            let diff_ids = config.rootfs().diff_ids().clone();
            same_count(&config_digest, layers.len(), diff_ids.len())?;
            // Docker writes one entry per tag of the same manifest: one image, its tags.
            match pending.iter_mut().find(|p| p.manifest_digest == digest) {
                Some(p) => p.tags.extend(tags),
                None => pending.push(Pending {
                    manifest: bytes,
                    manifest_digest: digest,
                    config_digest,
                    layers,
                    diff_ids,
                    tags,
                }),
            }
        }
    } else {
        return Err(ArchiveError::NoManifest {
            source_name: a.source.to_string(),
        }
        .into());
    }
    Ok(pending)
}

/// Load the images of the archive `input` (named `source` in messages) into the store;
/// returns Docker's lines (`Loaded image: busybox:latest`, `Loaded image ID: sha256:…`).
pub fn load(store: &Store, input: impl Read, source: &str) -> Result<Vec<String>> {
    let mut written = Vec::new();
    let mut unpacked = Vec::new();
    let result = load_into(store, input, source, &mut written, &mut unpacked);
    // What this load wrote and no image names (a failed load's blobs and layers; the legacy
    // per-layer `json` and `VERSION` files of an old archive) is removed again.
    let _ = store.discard_unused(&written, &unpacked);
    result
}

fn load_into(
    store: &Store,
    input: impl Read,
    source: &str,
    written: &mut Vec<String>,
    unpacked: &mut Vec<String>,
) -> Result<Vec<String>> {
    let archive = read_archive(store, input, source, written)?;
    let pending = check_images(&archive, store)?;
    for p in &pending {
        for (layer, diff_id) in p.layers.iter().zip(&p.diff_ids) {
            if !store.layer_complete(diff_id) {
                unpacked.push(diff_id.clone());
            }
            store.ensure_unpacked(layer, diff_id)?;
        }
        let (stored, _) = store.write_blob(&p.manifest)?;
        written.push(stored);
    }
    // Every image passed: now they are tagged.
    let mut lines = Vec::new();
    for p in &pending {
        let size = p.manifest.len() as u64;
        if p.tags.is_empty() {
            store.add_to_index(&p.manifest_digest, size, None, None)?;
            lines.push(format!("Loaded image ID: {}", p.config_digest));
        }
        for t in &p.tags {
            if let Ok(old) = store.find(&t.to_string()) {
                if old.id != p.config_digest {
                    lines.push(format!(
                        "The image {} already exists, renaming the old one with ID {} to empty string",
                        t.familiar_tagged(),
                        old.id
                    ));
                }
            }
            store.add_to_index(&p.manifest_digest, size, Some(t), None)?;
            lines.push(format!("Loaded image: {}", t.familiar_tagged()));
        }
    }
    Ok(lines)
}

/// A manifest's layers and its config's `diff_ids` pair up one to one, or the archive is refused.
fn same_count(config: &str, layers: usize, diff_ids: usize) -> Result<()> {
    if layers != diff_ids {
        return Err(ImageError::LayerCount {
            id: config.to_string(),
            layers,
            diff_ids,
        }
        .into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;

    /// What the test runs where another command's collection may come.
    type Hook = Box<dyn Fn(&str)>;

    thread_local! {
        /// Called with the digest of a blob `read_archive` found already stored, before it
        /// reads the entry: where another command's garbage collection may run.
        pub(super) static AFTER_LOOKUP: RefCell<Option<Hook>> = const { RefCell::new(None) };
    }

    /// The race of a load and a collection: the load finds the blobs of its archive already
    /// in the store (named by no image, leased by nobody: what an earlier failed load or
    /// `rmi` leaves for a moment), and another command collects garbage right then. The
    /// blobs this load found must stay, and the image load, unpack and read as a whole. Fails
    /// when the load claims a blob only after it looked at it: the collection removes it,
    /// and the layer cannot be unpacked.
    #[test]
    fn a_collection_right_after_a_load_found_its_blobs_stored_removes_none_of_them() {
        let tmp = tempfile::tempdir().unwrap();
        let src = Store::open(&tmp.path().join("src")).unwrap();
        let mut layer = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_mode(0o644);
        h.set_size(3);
        layer.append_data(&mut h, "hi.txt", &b"hi\n"[..]).unwrap();
        let r = Reference::parse("web:1").unwrap();
        let created = "2020-01-01T00:00:00Z";
        src.build(
            None,
            &layer.into_inner().unwrap(),
            &[],
            created,
            "test",
            Some(&r),
        )
        .unwrap();
        let mut archive = Vec::new();
        let format = crate::image::save::SaveFormat::OciArchive;
        crate::image::save::save(&src, &["web:1".into()], format, &mut archive).unwrap();

        let root = tmp.path().join("dst");
        {
            // Every blob of the archive stored, by a command that is over now.
            let earlier = Store::open(&root).unwrap();
            let mut a = tar::Archive::new(&archive[..]);
            for e in a.entries().unwrap() {
                let mut e = e.unwrap();
                if blob_name(&e.path().unwrap().to_string_lossy()).is_some() {
                    let mut data = Vec::new();
                    e.read_to_end(&mut data).unwrap();
                    earlier.write_blob(&data).unwrap();
                }
            }
        }
        let found = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
        let seen = found.clone();
        let gc_root = root.clone();
        AFTER_LOOKUP.with(|h| {
            *h.borrow_mut() = Some(Box::new(move |d: &str| {
                seen.lock().unwrap().push(d.to_string());
                let other = Store::open(&gc_root).unwrap();
                other.discard_unused(&[d.to_string()], &[]).unwrap();
            }))
        });
        let store = Store::open(&root).unwrap();
        let loaded = load(&store, &archive[..], "test");
        AFTER_LOOKUP.with(|h| *h.borrow_mut() = None);
        assert_eq!(loaded.unwrap(), ["Loaded image: web:1"]);
        assert_eq!(
            found.lock().unwrap().len(),
            3,
            "manifest, config and layer were stored"
        );
        let image = store.find("web:1").unwrap();
        for d in found.lock().unwrap().iter() {
            let path = store.blob_path(d).unwrap();
            assert!(path.is_file(), "{d} was collected under the load");
            assert_eq!(crate::image::store::hash_file(&path).unwrap().0, *d);
        }
        for (layer, diff_id) in image.layers.iter().zip(&image.diff_ids) {
            store.ensure_unpacked(layer, diff_id).unwrap();
        }
    }

    #[test]
    fn names_are_cleaned_and_escapes_refused() {
        assert_eq!(clean("a", "./blobs//sha256/x").unwrap(), "blobs/sha256/x");
        assert!(clean("a", "../x").is_err());
        assert!(clean("a", "blobs/../../x").is_err());
        assert!(clean("a", "/etc/passwd").is_err());
        assert_eq!(
            beside("abc/layer.tar", "../def/layer.tar").unwrap(),
            "def/layer.tar"
        );
        assert_eq!(beside("layer.tar", "../x"), None);
        assert_eq!(beside("a/b", "/etc"), None);
        assert!(blob_name(&format!("blobs/sha256/{}", "a".repeat(64))).is_some());
        assert!(blob_name(&format!("blobs/sha256/{}", "A".repeat(64))).is_none());
        assert!(blob_name("blobs/sha256/abc").is_none());
    }
}
