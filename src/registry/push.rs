//! `push`: each blob the registry does not have yet (checked with HEAD) is uploaded in one
//! `POST` + `PUT ?digest=` (distribution's monolithic upload), then the manifest is `PUT`
//! under the tag. The registry recomputes every digest, so a corrupt local blob is refused.

use std::io::Write;

use reqwest::StatusCode;
use serde_json::Value;

use super::{endpoint, status_error, Registry};
use crate::config::Config;
use crate::error::{Error, Result};
use crate::image::reference::Reference;
use crate::image::store::{Image, Store};

fn upload(
    reg: &Registry,
    reference: &Reference,
    scope: &str,
    digest: &str,
    data: Vec<u8>,
) -> Result<()> {
    let repo = &reference.repository;
    let start = format!("{}/v2/{repo}/blobs/uploads/", reg.base);
    let resp = reg.send(scope, |h| {
        h.post(&start).header(reqwest::header::CONTENT_LENGTH, 0)
    })?;
    if resp.status() != StatusCode::ACCEPTED {
        return Err(status_error(
            &format!("upload of {digest}"),
            reference,
            resp,
        ));
    }
    let location = resp
        .headers()
        .get(reqwest::header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| Error::Usage("the registry started an upload without a Location".into()))?;
    let mut url = if location.starts_with("http") {
        location.to_string()
    } else {
        format!("{}{location}", reg.base)
    };
    url.push(if url.contains('?') { '&' } else { '?' });
    url.push_str(&format!("digest={digest}"));
    let resp = reg.send(scope, |h| {
        h.put(&url)
            .header(reqwest::header::CONTENT_TYPE, "application/octet-stream")
            .body(data.clone())
    })?;
    if resp.status() != StatusCode::CREATED {
        return Err(status_error(
            &format!("upload of {digest}"),
            reference,
            resp,
        ));
    }
    Ok(())
}

/// Push `image` as `reference`, printing Docker-like lines to `out`.
pub fn push(
    store: &Store,
    image: &Image,
    reference: &Reference,
    config: &Config,
    out: &mut dyn Write,
) -> Result<()> {
    let insecure = config.insecure_registries.clone().unwrap_or_default();
    let creds = super::auth_store::lookup(&reference.registry);
    let reg = Registry::connect(
        &reference.registry,
        endpoint(&reference.registry, &insecure),
        creds,
    )?;
    let scope = format!("repository:{}:pull,push", reference.repository);
    let _ = writeln!(
        out,
        "The push refers to repository [{}/{}]",
        reference.registry, reference.repository
    );
    let manifest_bytes = store.read_blob(&image.manifest_digest)?;
    let manifest: Value = serde_json::from_slice(&manifest_bytes)
        .map_err(|e| Error::Corrupt(format!("manifest: {e}")))?;
    let mut blobs: Vec<String> = image.layers.clone();
    blobs.push(
        manifest["config"]["digest"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
    );
    for digest in &blobs {
        let head = reg.url(&reference.repository, "blobs", digest);
        let resp = reg.send(&scope, |h| h.head(&head))?;
        let short = &digest[7..19];
        if resp.status().is_success() {
            let _ = writeln!(out, "{short}: Layer already exists");
            continue;
        }
        let data = store.read_blob(digest)?;
        upload(&reg, reference, &scope, digest, data)?;
        let _ = writeln!(out, "{short}: Pushed");
    }
    let tag = reference.tag.clone().unwrap_or_else(|| "latest".into());
    let url = reg.url(&reference.repository, "manifests", &tag);
    let media_type = manifest["mediaType"]
        .as_str()
        .unwrap_or("application/vnd.oci.image.manifest.v1+json")
        .to_string();
    let resp = reg.send(&scope, |h| {
        h.put(&url)
            .header(reqwest::header::CONTENT_TYPE, media_type.clone())
            .body(manifest_bytes.clone())
    })?;
    if resp.status() != StatusCode::CREATED {
        return Err(status_error("manifest", reference, resp));
    }
    let _ = writeln!(
        out,
        "{tag}: digest: {} size: {}",
        image.manifest_digest,
        manifest_bytes.len()
    );
    Ok(())
}
