//! The OCI types of the image store — oci-spec's `Descriptor`, `ImageManifest` and
//! `ImageIndex` — as dockling writes them: built with oci-spec's builders (so a field that
//! the spec requires cannot be left out and a digest must parse), and turned into bytes the
//! same way every time. oci-spec serializes fields in the spec's order, but keeps
//! `annotations` in a `HashMap`, whose order changes from run to run; [`to_vec`] and friends
//! write every `annotations` map in a fixed order instead: keys sorted, as Go (and so Docker)
//! writes map keys, with dockling's own `dev.dockling.*` keys after the standard ones (the
//! order the store's `index.json` has always had). The same image is the same bytes, and so
//! the same digest, on every run.
//!
//! Image *configs* are not here: they stay JSON values where they are edited
//! (`build::write_image`, `commit`), because a base image's config may carry fields oci-spec
//! does not know (Docker's `container_config`, `OnBuild`, …) that must reach the new image
//! unchanged.

use oci_spec::image::{
    Descriptor, DescriptorBuilder, Digest, ImageIndex, ImageIndexBuilder, ImageManifest,
    ImageManifestBuilder, MediaType,
};
use serde::Serialize;
use serde_json::Value;

use super::ImageError;
use crate::error::Result;

/// A descriptor of the blob `digest` (`sha256:<hex>`), `size` bytes of `media_type`, with
/// `annotations` (none: the field is left out).
pub(crate) fn descriptor(
    media_type: MediaType,
    digest: &str,
    size: u64,
    annotations: &[(&str, &str)],
) -> Result<Descriptor> {
    let bad = |why: String| ImageError::BadManifest {
        digest: digest.to_string(),
        why,
    };
    let parsed: Digest = digest.parse().map_err(|e| bad(format!("{e}")))?;
    let mut b = DescriptorBuilder::default()
        .media_type(media_type)
        .digest(parsed)
        .size(size);
    if !annotations.is_empty() {
        b = b.annotations(
            annotations
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<std::collections::HashMap<_, _>>(),
        );
    }
    Ok(b.build().map_err(|e| bad(e.to_string()))?)
}

/// An OCI image manifest (schema 2, `application/vnd.oci.image.manifest.v1+json`) of the
/// image config `config` (an `application/vnd.oci.image.config.v1+json` blob of
/// `config_size` bytes) and `layers`, bottom first.
pub(crate) fn manifest(
    config_digest: &str,
    config_size: u64,
    layers: Vec<Descriptor>,
) -> Result<ImageManifest> {
    Ok(ImageManifestBuilder::default()
        .schema_version(2u32)
        .media_type(MediaType::ImageManifest)
        .config(descriptor(
            MediaType::ImageConfig,
            config_digest,
            config_size,
            &[],
        )?)
        .layers(layers)
        .build()
        .map_err(|e| ImageError::BadManifest {
            digest: config_digest.to_string(),
            why: e.to_string(),
        })?)
}

/// An OCI image index (schema 2, `application/vnd.oci.image.index.v1+json`) of `manifests`:
/// an `index.json`.
pub(crate) fn index(manifests: Vec<Descriptor>) -> Result<ImageIndex> {
    Ok(ImageIndexBuilder::default()
        .schema_version(2u32)
        .media_type(MediaType::ImageIndex)
        .manifests(manifests)
        .build()
        .map_err(|e| ImageError::BadManifest {
            digest: "index.json".into(),
            why: e.to_string(),
        })?)
}

/// `value` as JSON, every `annotations` map in the fixed order (see the module's text).
pub(crate) fn to_value<T: Serialize>(value: &T) -> Value {
    let mut v = serde_json::to_value(value).expect("oci-spec types serialize");
    order_annotations(&mut v);
    v
}

/// `value` as compact JSON bytes in the fixed order: what blobs (manifests) are made of.
pub(crate) fn to_vec<T: Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec(&to_value(value)).expect("json")
}

/// `value` as indented JSON bytes in the fixed order: a rebuilt `index.json`.
pub(crate) fn to_vec_pretty<T: Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec_pretty(&to_value(value)).expect("json")
}

/// Where an annotation key goes: the standard keys sorted, dockling's own after them.
fn rank(key: &str) -> (bool, &str) {
    (key.starts_with("dev.dockling."), key)
}

/// Put the keys of every `annotations` object in `v` (at any depth) in the fixed order; the
/// other objects keep the order they were serialized in (oci-spec's field order).
fn order_annotations(v: &mut Value) {
    match v {
        Value::Object(map) => {
            if let Some(Value::Object(a)) = map.get_mut("annotations") {
                let mut entries: Vec<(String, Value)> =
                    std::mem::take(a).into_iter().collect::<Vec<_>>();
                entries.sort_by(|(x, _), (y, _)| rank(x).cmp(&rank(y)));
                a.extend(entries);
            }
            for (_, child) in map.iter_mut() {
                order_annotations(child);
            }
        }
        Value::Array(list) => list.iter_mut().for_each(order_annotations),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn a_manifest_is_written_in_the_specs_field_order() {
        let layers = vec![descriptor(MediaType::ImageLayerGzip, D, 3, &[]).unwrap()];
        let m = manifest(D, 2, layers).unwrap();
        assert_eq!(
            String::from_utf8(to_vec(&m)).unwrap(),
            format!(
                r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{D}","size":2}},"layers":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"{D}","size":3}}]}}"#
            )
        );
    }

    #[test]
    fn annotations_come_out_in_one_order_every_time() {
        // Many keys, so that a HashMap's order would differ between runs and maps.
        let mut keys: Vec<String> = (0..20).map(|i| format!("org.example.k{i:02}")).collect();
        keys.push("dev.dockling.repo-digest".into());
        keys.push("io.containerd.image.name".into());
        let pairs: Vec<(&str, &str)> = keys.iter().rev().map(|k| (k.as_str(), "v")).collect();
        let index = index(vec![
            descriptor(MediaType::ImageManifest, D, 1, &pairs).unwrap()
        ])
        .unwrap();
        let v = to_value(&index);
        let got: Vec<&String> = v["manifests"][0]["annotations"]
            .as_object()
            .unwrap()
            .keys()
            .collect();
        let mut want: Vec<&String> = keys.iter().filter(|k| !k.starts_with("dev.")).collect();
        want.sort();
        want.push(&keys[20]);
        assert_eq!(got, want);
        assert_eq!(to_vec(&index), to_vec(&index.clone()));
    }

    #[test]
    fn a_bad_digest_is_refused() {
        assert!(descriptor(MediaType::ImageLayer, "sha256:xyz", 1, &[]).is_err());
    }
}
