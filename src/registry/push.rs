//! `push`: each blob the registry does not have yet (checked with HEAD) is mounted from another
//! repository of the same registry when this store knows one that holds it (distribution's
//! cross-repository mount: nothing is sent), or else uploaded: in one `PUT ?digest=` when
//! small (monolithic), or in `PATCH` chunks read from the file when large (chunked), so a big
//! layer never sits in memory. Then the manifest is `PUT` under the tag. The registry
//! recomputes every digest, and a chunked upload is hashed here too before it is committed.

use std::fs::File;
use std::io::{Read, Write};

use oci_spec::image::{ImageManifest, MediaType};
use reqwest::StatusCode;
use sha2::{Digest as _, Sha256};

use super::{endpoint, status_error, Registry, RegistryError};
use crate::config::Config;
use crate::error::{Error, Result};
use crate::image::reference::Reference;
use crate::image::store::{Image, Store};

/// Blobs up to this size go up in one request; larger ones in chunks of this size.
/// `DOCKLING_PUSH_CHUNK_SIZE` (bytes) changes it, to watch a chunked upload on small images.
const CHUNK: u64 = 16 << 20;

fn chunk_size() -> u64 {
    std::env::var("DOCKLING_PUSH_CHUNK_SIZE")
        .ok()
        .and_then(|s| s.parse().ok())
        .filter(|n| *n >= 1024)
        .unwrap_or(CHUNK)
}

/// One push: the registry connection and what the store knows.
struct Pusher<'a> {
    reg: Registry,
    reference: &'a Reference,
    store: &'a Store,
    /// Other repositories of this registry, with the blobs (config and layers) of the image
    /// each names: where a blob can be mounted from. Images pulled as `docker.io/…` count when
    /// this registry is a Docker Hub mirror of the config (that is where they came from).
    mount_sources: Vec<(String, Vec<String>)>,
}

impl Pusher<'_> {
    fn scope(&self) -> String {
        format!("repository:{}:pull,push", self.reference.repository)
    }

    fn absolute(&self, location: &str) -> String {
        if location.starts_with("http") {
            location.to_string()
        } else {
            format!("{}{location}", self.reg.base)
        }
    }

    fn location(&self, resp: &reqwest::blocking::Response) -> Result<String> {
        resp.headers()
            .get(reqwest::header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .map(|l| self.absolute(l))
            .ok_or_else(|| RegistryError::NoUploadLocation.into())
    }

    /// Another repository of this registry that (this store knows) holds `digest`.
    fn mount_source(&self, digest: &str) -> Option<String> {
        self.mount_sources
            .iter()
            .find(|(_, blobs)| blobs.iter().any(|b| b == digest))
            .map(|(repo, _)| repo.clone())
    }

    /// Put one blob in the registry; returns Docker's word for what happened.
    fn blob(&self, digest: &str) -> Result<String> {
        let repo = &self.reference.repository;
        let fail = |resp| status_error(&format!("upload of {digest}"), self.reference, resp);
        let mut start = format!("{}/v2/{repo}/blobs/uploads/", self.reg.base);
        let mut scope = self.scope();
        let from = self.mount_source(digest);
        if let Some(from) = &from {
            start.push_str(&format!("?mount={digest}&from={from}"));
            scope.push_str(&format!(" repository:{from}:pull"));
        }
        let resp = self.reg.send(&scope, |h| {
            h.post(&start).header(reqwest::header::CONTENT_LENGTH, 0)
        })?;
        match (resp.status(), &from) {
            (StatusCode::CREATED, Some(from)) => return Ok(format!("Mounted from {from}")),
            (StatusCode::ACCEPTED, _) => {}
            _ => return Err(fail(resp).into()),
        }
        let mut location = self.location(&resp)?;
        let path = self.store.blob_path(digest)?;
        let size = std::fs::metadata(&path)
            .map_err(Error::io("stat", &path))?
            .len();
        let chunk = chunk_size();
        let body = if size <= chunk {
            self.store.read_blob(digest)?
        } else {
            location = self.chunks(&path, digest, size, chunk, location)?;
            Vec::new()
        };
        let sep = if location.contains('?') { '&' } else { '?' };
        let url = format!("{location}{sep}digest={digest}");
        let resp = self.reg.send(&self.scope(), |h| {
            h.put(&url)
                .header(reqwest::header::CONTENT_TYPE, "application/octet-stream")
                .body(body.clone())
        })?;
        if resp.status() != StatusCode::CREATED {
            return Err(fail(resp).into());
        }
        Ok("Pushed".into())
    }

    /// Send the file at `path` in `PATCH` chunks; returns where to commit the upload.
    fn chunks(
        &self,
        path: &std::path::Path,
        digest: &str,
        size: u64,
        chunk: u64,
        mut location: String,
    ) -> Result<String> {
        let mut f = File::open(path).map_err(Error::io("open", path))?;
        let mut hash = Sha256::new();
        let mut offset = 0u64;
        let mut buf = vec![0u8; chunk as usize];
        while offset < size {
            let n = (size - offset).min(chunk) as usize;
            f.read_exact(&mut buf[..n])
                .map_err(Error::io("read", path))?;
            hash.update(&buf[..n]);
            let part = buf[..n].to_vec();
            let range = format!("{offset}-{}", offset + n as u64 - 1);
            let resp = self.reg.send(&self.scope(), |h| {
                h.patch(&location)
                    .header(reqwest::header::CONTENT_TYPE, "application/octet-stream")
                    .header(reqwest::header::CONTENT_RANGE, range.clone())
                    .header(reqwest::header::CONTENT_LENGTH, n)
                    .body(part.clone())
            })?;
            if resp.status() != StatusCode::ACCEPTED {
                return Err(status_error(
                    &format!("chunk {range} of {digest}"),
                    self.reference,
                    resp,
                )
                .into());
            }
            location = self.location(&resp)?;
            offset += n as u64;
        }
        let got = format!("sha256:{:x}", hash.finalize());
        if got != digest {
            // Abandon the upload session; the registry drops what it received.
            let _ = self.reg.send(&self.scope(), |h| h.delete(&location));
            return Err(Error::Corrupt(format!(
                "blob {digest} is corrupt in the store (its content hashes to {got}): remove the image and pull or import it again"
            )));
        }
        Ok(location)
    }
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
    let mirrors_hub = config.registry_mirrors.iter().flatten().any(|m| {
        let host = m.trim_end_matches('/');
        let host = host.split_once("://").map(|(_, h)| h).unwrap_or(host);
        host == reference.registry
    });
    let mount_sources = store
        .list()?
        .into_iter()
        .filter_map(|i| {
            let r = i.reference?;
            let same_registry = r.registry == reference.registry
                || (mirrors_hub && r.registry == crate::image::reference::DEFAULT_REGISTRY);
            let mut blobs = i.layers;
            blobs.push(i.id);
            (same_registry && r.repository != reference.repository).then_some((r.repository, blobs))
        })
        .collect();
    let p = Pusher {
        reg,
        reference,
        store,
        mount_sources,
    };
    let scope = p.scope();
    let _ = writeln!(
        out,
        "The push refers to repository [{}/{}]",
        reference.registry, reference.repository
    );
    let manifest_bytes = store.read_blob(&image.manifest_digest)?;
    // Parsed only for its media type: the bytes go up as they are (their digest is the
    // image's manifest digest).
    let manifest: ImageManifest = serde_json::from_slice(&manifest_bytes)
        .map_err(|e| Error::Corrupt(format!("manifest: {e}")))?;
    let mut blobs: Vec<String> = image.layers.clone();
    blobs.push(image.id.clone());
    for digest in &blobs {
        let head = p.reg.url(&reference.repository, "blobs", digest);
        let resp = p.reg.send(&scope, |h| h.head(&head))?;
        let short = &digest[7..19];
        if resp.status().is_success() {
            let _ = writeln!(out, "{short}: Layer already exists");
            continue;
        }
        let what = p.blob(digest)?;
        let _ = writeln!(out, "{short}: {what}");
    }
    let tag = reference.tag.clone().unwrap_or_else(|| "latest".into());
    let url = p.reg.url(&reference.repository, "manifests", &tag);
    let media_type = manifest
        .media_type()
        .clone()
        .unwrap_or(MediaType::ImageManifest)
        .to_string();
    let resp = p.reg.send(&scope, |h| {
        h.put(&url)
            .header(reqwest::header::CONTENT_TYPE, media_type.clone())
            .body(manifest_bytes.clone())
    })?;
    if resp.status() != StatusCode::CREATED {
        return Err(status_error("manifest", reference, resp).into());
    }
    let _ = writeln!(
        out,
        "{tag}: digest: {} size: {}",
        image.manifest_digest,
        manifest_bytes.len()
    );
    Ok(())
}
