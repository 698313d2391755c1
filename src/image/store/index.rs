//! `oci/index.json`: the list of images, each tag one manifest entry named by the annotation
//! `org.opencontainers.image.ref.name` (an untagged image is an entry without it). It is read
//! whole, checked for its shape once (`read_index`), and rewritten atomically under the store
//! lock, so concurrent commands never lose each other's tags.
//!
//! The file is held as a JSON value while it is edited, not as oci-spec's `ImageIndex`: one
//! entry oci-spec refuses (a bad digest written by another tool, a damaged store) must not
//! stop every command, and `system fsck` must be able to read, report and drop it. Each entry
//! dockling adds is made as an oci-spec `Descriptor` (`crate::image::oci`).

use std::borrow::Cow;
use std::fs;

use oci_spec::image::{ImageManifest, MediaType};
use serde_json::Value;

use super::{Image, Store};
use crate::error::{Error, Result};
use crate::files::{lock, write_atomic};
use crate::image::oci;
use crate::image::reference::Reference;
use crate::image::ImageError;

/// The annotation that names an entry's tag (OCI image layout).
pub(super) const REF_NAME: &str = "org.opencontainers.image.ref.name";
/// The digest the registry named this image by when it was pulled (Docker's RepoDigest: the
/// index's digest for a multi-platform image).
pub(super) const REPO_DIGEST: &str = "dev.dockling.repo-digest";

/// `index.json` as a listing reads it: of each entry only its digest, tag and repo digest,
/// borrowed from the file's text where they need no unescaping. Building the whole file as a
/// JSON value (a map per entry and per annotation) was much of what `images` cost per image.
/// A file this does not fit (a value of another type, say) is read as a value, as before.
#[derive(Debug, serde::Deserialize)]
pub(super) struct IndexView<'a> {
    /// The entries, in the file's order.
    #[serde(borrow)]
    pub manifests: Vec<EntryView<'a>>,
}

/// One entry of [`IndexView`].
#[derive(Debug, Default, serde::Deserialize)]
pub(super) struct EntryView<'a> {
    /// The manifest digest.
    #[serde(borrow, default)]
    pub digest: Option<Cow<'a, str>>,
    /// Its annotations that dockling reads.
    #[serde(borrow, default)]
    pub annotations: Option<AnnotationsView<'a>>,
}

/// The annotations of an [`EntryView`].
#[derive(Debug, Default, serde::Deserialize)]
pub(super) struct AnnotationsView<'a> {
    /// The tag (`REF_NAME`).
    #[serde(borrow, default, rename = "org.opencontainers.image.ref.name")]
    pub name: Option<Cow<'a, str>>,
    /// `REPO_DIGEST`.
    #[serde(borrow, default, rename = "dev.dockling.repo-digest")]
    pub repo_digest: Option<Cow<'a, str>>,
}

impl<'a> EntryView<'a> {
    /// The same entry from the JSON value (an index the view does not fit).
    pub(super) fn of(m: &'a Value) -> EntryView<'a> {
        let text = |v: &'a Value| v.as_str().map(Cow::Borrowed);
        EntryView {
            digest: text(&m["digest"]),
            annotations: Some(AnnotationsView {
                name: text(&m["annotations"][REF_NAME]),
                repo_digest: text(&m["annotations"][REPO_DIGEST]),
            }),
        }
    }

    /// The tag it carries, as [`tag_of`].
    pub(super) fn tag(&self) -> Option<Reference> {
        self.annotations
            .as_ref()?
            .name
            .as_deref()
            .and_then(|r| Reference::parse(r).ok())
    }

    /// Its repo digest.
    pub(super) fn repo_digest(&self) -> Option<String> {
        self.annotations
            .as_ref()?
            .repo_digest
            .as_deref()
            .map(String::from)
    }
}

/// The tag an `index.json` entry carries, if any.
pub(crate) fn tag_of(m: &Value) -> Option<Reference> {
    m["annotations"][REF_NAME]
        .as_str()
        .and_then(|r| Reference::parse(r).ok())
}

impl Store {
    /// `index.json`, checked to be an object with a `manifests` list (else the error every
    /// command gives for a broken index).
    pub(crate) fn read_index(&self) -> Result<Value> {
        self.index_from(&self.read_index_text()?)
    }

    /// The bytes of `index.json`.
    pub(super) fn read_index_text(&self) -> Result<Vec<u8>> {
        let p = self.oci.join("index.json");
        fs::read(&p).map_err(Error::io("read", &p))
    }

    /// [`Store::read_index`] of these bytes.
    pub(super) fn index_from(&self, text: &[u8]) -> Result<Value> {
        // Indexing a JSON value that is not an object (`[]`) with `["manifests"]` for writing
        // panics: the shape is checked once, here, so every caller can rely on it.
        let index: Value =
            serde_json::from_slice(text).map_err(|e| self.broken_index(&e.to_string()))?;
        if !index["manifests"].is_array() {
            return Err(self
                .broken_index("not a JSON object with a \"manifests\" list")
                .into());
        }
        Ok(index)
    }

    /// The error every command gives when `index.json` cannot be used.
    pub(crate) fn broken_index(&self, why: &str) -> ImageError {
        ImageError::BrokenIndex {
            path: self.oci.join("index.json"),
            why: why.to_string(),
        }
    }

    /// Replace `index.json` atomically (the caller holds the store lock).
    pub(crate) fn write_index(&self, index: &Value) -> Result<()> {
        write_atomic(
            &self.oci.join("index.json"),
            &serde_json::to_vec_pretty(index).expect("json"),
        )
    }

    /// Record a manifest in index.json under `reference` (which moves off any older image),
    /// with the digest it was pulled by, if any.
    pub fn add_to_index(
        &self,
        manifest_digest: &str,
        size: u64,
        reference: Option<&Reference>,
        repo_digest: Option<&str>,
    ) -> Result<()> {
        let _l = lock(&self.oci.join(".lock"))?;
        let mut index = self.read_index()?;
        let list = index["manifests"]
            .as_array_mut()
            .ok_or_else(|| self.broken_index("not a JSON object with a \"manifests\" list"))?;
        let name = reference.map(|r| r.to_string());
        if let Some(name) = &name {
            let tagged: Vec<String> = list
                .iter()
                .filter(|m| {
                    m["annotations"][REF_NAME]
                        .as_str()
                        .is_some_and(|n| n != name)
                })
                .filter_map(|m| m["digest"].as_str().map(String::from))
                .collect();
            list.retain_mut(|m| {
                if m["annotations"][REF_NAME].as_str() != Some(name) {
                    return true;
                }
                // The old image keeps existing, untagged (<none>), as in Docker, unless
                // another tag still names it.
                let still_tagged = m["digest"]
                    .as_str()
                    .is_some_and(|d| tagged.iter().any(|t| t == d));
                m.as_object_mut().expect("object").remove("annotations");
                !still_tagged
            });
        }
        // Drop untagged duplicates of this same manifest.
        list.retain(|m| {
            !(m["digest"].as_str() == Some(manifest_digest) && m.get("annotations").is_none())
        });
        let media_type = self
            .read_blob(manifest_digest)
            .ok()
            .and_then(|b| serde_json::from_slice::<ImageManifest>(&b).ok())
            .and_then(|m| m.media_type().clone())
            .unwrap_or(MediaType::ImageManifest);
        let mut annotations: Vec<(&str, &str)> = Vec::new();
        if let Some(name) = &name {
            annotations.push((REF_NAME, name));
            if let Some(d) = repo_digest {
                annotations.push((REPO_DIGEST, d));
            }
        }
        let entry = oci::to_value(&oci::descriptor(
            media_type,
            manifest_digest,
            size,
            &annotations,
        )?);
        let dangling_duplicate = reference.is_none()
            && list
                .iter()
                .any(|m| m["digest"].as_str() == Some(manifest_digest));
        if !dangling_duplicate {
            list.push(entry);
        }
        self.write_index(&index)?;
        // What `images`, `image prune` and garbage collection read instead of the manifest
        // and config (`summary`).
        self.record_summary(manifest_digest);
        Ok(())
    }

    /// True while an entry of `index.json` names the manifest of `image` (checked under the
    /// store lock by `run` before it records a container that holds the image).
    pub fn contains(&self, image: &Image) -> Result<bool> {
        let index = self.read_index()?;
        Ok(index["manifests"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|m| m["digest"].as_str() == Some(&image.manifest_digest)))
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::import;
    use super::*;

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
}
