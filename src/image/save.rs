//! `dockling save`: images of the store as one tar stream, in the format current Docker (25
//! and later) writes: an OCI image layout (`oci-layout`, `index.json`, `blobs/sha256/…`) and,
//! in the same tar, Docker's legacy `manifest.json` (one item per image: `Config`,
//! `RepoTags`, `Layers`, all pointing into `blobs/`) and `repositories`. Docker, podman,
//! skopeo and umoci read it (`docker-archive:` through `manifest.json`, `oci-archive:`
//! through `index.json`); `--format oci-archive` leaves the legacy files out, as podman's
//! `save --format oci-archive` does.
//!
//! The bytes are deterministic: entries sorted by name (directories first, as Docker's walk of
//! its temporary directory gives them), every entry owned by 0:0, mode 0644 (0755 for
//! directories), mtime 0, JSON in a fixed order (`image::oci` for the OCI types). Blobs are
//! written as the store holds them: configs byte for byte (so image ids survive), layers as pulled (gzip from a registry,
//! where Docker writes them uncompressed: every reader decompresses either), manifests as
//! stored when they are OCI manifests, otherwise (a Docker schema 2 manifest from a registry)
//! rewritten as the OCI manifest Docker writes. Each blob is hashed while it is copied: a
//! damaged one fails the save (`dockling system fsck` repairs the store).

use crate::image::hashing::Hashing;
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{Read, Write};

use oci_spec::image::{Descriptor, ImageManifest, MediaType};
use serde_json::{json, Value};
use sha2::{Digest as _, Sha256};

use super::oci;
use super::reference::Reference;
use super::store::{hex_of, Image, Store};
use super::{ArchiveError, ImageError};
use crate::error::{Error, Result};

/// The annotation containerd (and Docker 25+) gives each image of `index.json`: the full name.
pub(crate) const IMAGE_NAME: &str = "io.containerd.image.name";
/// The OCI annotation of the same entry: the tag only, in Docker's archives.
pub(crate) const REF_NAME: &str = "org.opencontainers.image.ref.name";

/// What `save` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SaveFormat {
    /// Docker's archive: the OCI layout plus `manifest.json` and `repositories` (default).
    #[default]
    DockerArchive,
    /// The OCI layout alone (podman's `oci-archive`).
    OciArchive,
}

impl SaveFormat {
    /// Every format: its name on the command line and what it is.
    pub const VARIANTS: &'static [(SaveFormat, &'static str, &'static str)] = &[
        (
            SaveFormat::DockerArchive,
            "docker-archive",
            "Docker's archive (OCI layout + manifest.json), what docker save writes",
        ),
        (
            SaveFormat::OciArchive,
            "oci-archive",
            "an OCI image layout only, as podman save --format oci-archive",
        ),
    ];
}

impl std::str::FromStr for SaveFormat {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        Self::VARIANTS
            .iter()
            .find(|(_, n, _)| *n == s)
            .map(|(v, _, _)| *v)
            .ok_or_else(|| format!("unknown format {s:?}: docker-archive or oci-archive"))
    }
}

impl std::fmt::Display for SaveFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let name = Self::VARIANTS
            .iter()
            .find(|(v, _, _)| v == self)
            .map_or("?", |(_, n, _)| n);
        f.write_str(name)
    }
}

/// One image to save and the tags it is saved under (none: saved by id, loaded untagged).
struct Saved {
    image: Image,
    tags: Vec<Reference>,
}

/// The images `names` name, in order, each once, with the tags asked for. As Docker: a tag
/// saves that tag, an id the image untagged, and a repository without a tag every tag of it.
fn resolve(store: &Store, names: &[String]) -> Result<Vec<Saved>> {
    let mut out: Vec<Saved> = Vec::new();
    let mut add = |image: Image, tag: Option<Reference>| {
        let i = match out.iter().position(|s| s.image.id == image.id) {
            Some(i) => i,
            None => {
                out.push(Saved {
                    image,
                    tags: Vec::new(),
                });
                out.len() - 1
            }
        };
        if let Some(t) = tag {
            if !out[i].tags.contains(&t) {
                out[i].tags.push(t);
            }
        }
    };
    for name in names {
        let image = store.find(name)?;
        let by_tag = image
            .reference
            .as_ref()
            .filter(|r| Reference::parse(name).is_ok_and(|n| n == **r))
            .cloned();
        let bare_repository = by_tag.is_some()
            && !name.contains('@')
            && !name.rsplit('/').next().unwrap_or(name).contains(':');
        if bare_repository {
            let r = by_tag.clone().expect("checked");
            let mut all: Vec<Image> = store
                .list()?
                .into_iter()
                .filter(|i| {
                    i.reference.as_ref().is_some_and(|t| {
                        t.registry == r.registry && t.repository == r.repository && t.tag.is_some()
                    })
                })
                .collect();
            all.sort_by_key(|i| i.reference.as_ref().map(|t| t.to_string()));
            for i in all {
                let t = i.reference.clone();
                add(i, t);
            }
        } else {
            add(image, by_tag);
        }
    }
    Ok(out)
}

/// The OCI media type of a layer blob whose Docker or OCI media type is `t`.
fn oci_layer_type(t: &MediaType) -> MediaType {
    match t.to_string().as_str() {
        "application/vnd.docker.image.rootfs.diff.tar.gzip" => MediaType::ImageLayerGzip,
        "application/vnd.docker.image.rootfs.diff.tar" => MediaType::ImageLayer,
        "application/vnd.docker.image.rootfs.diff.tar.zstd" => MediaType::ImageLayerZstd,
        _ => t.clone(),
    }
}

/// The manifest to write for `image`: its stored bytes when they are an OCI manifest, else the
/// OCI manifest Docker writes for it (config and layers as stored, OCI media types).
fn oci_manifest(store: &Store, image: &Image) -> Result<(Vec<u8>, ImageManifest)> {
    let bytes = store.read_blob(&image.manifest_digest)?;
    let bad = |why: String| ImageError::BadManifest {
        digest: image.manifest_digest.clone(),
        why,
    };
    let manifest: ImageManifest = serde_json::from_slice(&bytes).map_err(|e| bad(e.to_string()))?;
    if manifest.media_type().as_ref() == Some(&MediaType::ImageManifest) {
        return Ok((bytes, manifest));
    }
    let layers: Vec<Descriptor> = manifest
        .layers()
        .iter()
        .map(|l| {
            oci::descriptor(
                oci_layer_type(l.media_type()),
                l.digest().as_ref(),
                l.size(),
                &[],
            )
        })
        .collect::<Result<_>>()?;
    let converted = oci::manifest(
        manifest.config().digest().as_ref(),
        manifest.config().size(),
        layers,
    )?;
    Ok((oci::to_vec(&converted), converted))
}

/// A tar header for a file or directory of the archive: 0:0, fixed mode, mtime 0.
fn header(kind: tar::EntryType, size: u64) -> tar::Header {
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(kind);
    h.set_mode(if kind == tar::EntryType::Directory {
        0o755
    } else {
        0o644
    });
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(0);
    h.set_size(size);
    h
}

/// Write a blob of the store into the archive, checking on the way that it is whole.
fn append_blob<W: Write>(
    out: &mut tar::Builder<W>,
    store: &Store,
    digest: &str,
    size: u64,
) -> Result<()> {
    let path = store.blob_path(digest)?;
    let damaged = |why: String| {
        Error::from(ArchiveError::DamagedBlob {
            digest: digest.to_string(),
            why,
        })
    };
    let file = File::open(&path).map_err(|e| damaged(e.to_string()))?;
    let len = file.metadata().map_err(Error::io("read", &path))?.len();
    if len != size {
        return Err(damaged(format!(
            "{len} bytes where its manifest says {size}"
        )));
    }
    let mut hashing = Hashing {
        inner: file.take(size),
        hash: Sha256::new(),
    };
    let mut h = header(tar::EntryType::Regular, size);
    out.append_data(
        &mut h,
        format!("blobs/sha256/{}", hex_of(digest)?),
        &mut hashing,
    )
    .map_err(ArchiveError::Write)?;
    let got = format!("sha256:{:x}", hashing.hash.finalize());
    if got != digest {
        return Err(damaged(format!("its content hashes to {got}")));
    }
    Ok(())
}

fn append_json<W: Write>(out: &mut tar::Builder<W>, name: &str, bytes: &[u8]) -> Result<()> {
    let mut h = header(tar::EntryType::Regular, bytes.len() as u64);
    out.append_data(&mut h, name, bytes)
        .map_err(|e| ArchiveError::Write(e).into())
}

/// Write the images `names` name into `out` as one tar archive in `format`.
pub fn save(store: &Store, names: &[String], format: SaveFormat, out: impl Write) -> Result<()> {
    let images = resolve(store, names)?;
    // Every blob once (images share layers), sorted by name as Docker's walk gives them.
    let mut blobs: BTreeMap<String, u64> = BTreeMap::new();
    let mut index_entries: Vec<Descriptor> = Vec::new();
    let mut legacy: Vec<Value> = Vec::new();
    let mut repositories: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    let mut converted: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    for s in &images {
        let (bytes, manifest) = oci_manifest(store, &s.image)?;
        let digest = format!("sha256:{:x}", Sha256::digest(&bytes));
        if digest != s.image.manifest_digest {
            // A converted manifest: written into the archive from memory, not from the store.
            converted.insert(digest.clone(), bytes.clone());
        }
        blobs.insert(digest.clone(), bytes.len() as u64);
        blobs.insert(
            manifest.config().digest().to_string(),
            manifest.config().size(),
        );
        for l in manifest.layers() {
            blobs.insert(l.digest().to_string(), l.size());
        }
        // oci-spec's annotations are a HashMap: `oci::to_value` writes them sorted, as Go
        // (Docker) does, so the archive is the same bytes every time.
        let entry = |tag: Option<(&Reference, &str)>| {
            let name = tag.map(|(r, _)| r.to_string());
            let annotations: Vec<(&str, &str)> = match (&name, tag) {
                (Some(name), Some((_, t))) => vec![(IMAGE_NAME, name), (REF_NAME, t)],
                _ => Vec::new(),
            };
            oci::descriptor(
                MediaType::ImageManifest,
                &digest,
                bytes.len() as u64,
                &annotations,
            )
        };
        let layer_paths: Vec<String> = manifest
            .layers()
            .iter()
            .map(|l| format!("blobs/sha256/{}", l.digest().digest()))
            .collect();
        for t in &s.tags {
            let tag = t.tag.clone().unwrap_or_else(|| "latest".into());
            index_entries.push(entry(Some((t, &tag)))?);
            if let Some(top) = manifest.layers().last() {
                repositories
                    .entry(t.familiar())
                    .or_default()
                    .insert(tag, top.digest().digest().to_string());
            }
        }
        if s.tags.is_empty() {
            index_entries.push(entry(None)?);
        }
        // Docker's own `manifest.json`: no OCI type describes it.
        legacy.push(json!({
            "Config": format!("blobs/sha256/{}", manifest.config().digest().digest()),
            "RepoTags": s.tags.iter().map(|t| t.familiar_tagged()).collect::<Vec<_>>(),
            "Layers": layer_paths,
        }));
    }
    let index = oci::index(index_entries)?;
    // Leased while they are copied: an `rmi` or `prune` running meanwhile keeps them.
    store.claim(&blobs.keys().map(String::as_str).collect::<Vec<_>>())?;
    let mut tar = tar::Builder::new(out);
    for dir in ["blobs/", "blobs/sha256/"] {
        let mut h = header(tar::EntryType::Directory, 0);
        tar.append_data(&mut h, dir, std::io::empty())
            .map_err(ArchiveError::Write)?;
    }
    for (d, size) in &blobs {
        match converted.get(d) {
            Some(bytes) => append_json(&mut tar, &format!("blobs/sha256/{}", hex_of(d)?), bytes)?,
            None => append_blob(&mut tar, store, d, *size)?,
        }
    }
    append_json(&mut tar, "index.json", &oci::to_vec(&index))?;
    if format == SaveFormat::DockerArchive {
        append_json(
            &mut tar,
            "manifest.json",
            &serde_json::to_vec(&legacy).expect("json"),
        )?;
    }
    append_json(&mut tar, "oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#)?;
    if format == SaveFormat::DockerArchive && !repositories.is_empty() {
        append_json(
            &mut tar,
            "repositories",
            &serde_json::to_vec(&repositories).expect("json"),
        )?;
    }
    tar.into_inner()
        .and_then(|mut w| w.flush())
        .map_err(ArchiveError::Write)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A store holding `docker.io/library/old:1` whose manifest is Docker schema 2 (as pulled
    /// from Docker Hub), with one uncompressed layer.
    fn docker_schema2(root: &std::path::Path) -> (Store, String) {
        let store = Store::open(root).unwrap();
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_mode(0o644);
        h.set_size(3);
        b.append_data(&mut h, "hi.txt", &b"hi\n"[..]).unwrap();
        let layer = b.into_inner().unwrap();
        let (layer_digest, layer_size) = store.write_blob(&layer).unwrap();
        let config = json!({
            "architecture": "amd64", "os": "linux", "config": {"Cmd": ["sh"]},
            "rootfs": {"type": "layers", "diff_ids": [layer_digest]}, "history": [],
        });
        let (config_digest, config_size) = store
            .write_blob(&serde_json::to_vec(&config).unwrap())
            .unwrap();
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
            "config": {"mediaType": "application/vnd.docker.container.image.v1+json",
                       "digest": config_digest, "size": config_size},
            "layers": [{"mediaType": "application/vnd.docker.image.rootfs.diff.tar",
                        "digest": layer_digest, "size": layer_size}],
        });
        let (m, size) = store
            .write_blob(&serde_json::to_vec(&manifest).unwrap())
            .unwrap();
        let r = Reference::parse("old:1").unwrap();
        store.add_to_index(&m, size, Some(&r), None).unwrap();
        (store, config_digest)
    }

    #[test]
    fn a_docker_schema2_image_is_saved_with_an_oci_manifest_and_loads_back() {
        let tmp = tempfile::tempdir().unwrap();
        let (store, id) = docker_schema2(&tmp.path().join("a"));
        let mut out = Vec::new();
        save(
            &store,
            &["old:1".into()],
            SaveFormat::DockerArchive,
            &mut out,
        )
        .unwrap();
        let mut archive = tar::Archive::new(&out[..]);
        let mut manifests = Vec::new();
        for e in archive.entries().unwrap() {
            let mut e = e.unwrap();
            let mut data = Vec::new();
            e.read_to_end(&mut data).unwrap();
            if let Ok(v) = serde_json::from_slice::<Value>(&data) {
                if v["layers"].is_array() {
                    manifests.push(v);
                }
            }
        }
        assert_eq!(manifests.len(), 1, "only the OCI manifest is written");
        let m = &manifests[0];
        assert_eq!(m["mediaType"], "application/vnd.oci.image.manifest.v1+json");
        assert_eq!(
            m["config"]["mediaType"],
            "application/vnd.oci.image.config.v1+json"
        );
        assert_eq!(m["config"]["digest"], id.as_str());
        assert_eq!(
            m["layers"][0]["mediaType"],
            "application/vnd.oci.image.layer.v1.tar"
        );

        let other = Store::open(&tmp.path().join("b")).unwrap();
        let lines = crate::image::load::load(&other, &out[..], "test").unwrap();
        assert_eq!(lines, ["Loaded image: old:1"]);
        let img = other.find("old:1").unwrap();
        assert_eq!(img.id, id, "the config, and so the image id, survive");
    }
}
