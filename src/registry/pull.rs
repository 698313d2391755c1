//! `pull`: manifest (choosing this platform from an index), config, layers in parallel, each
//! verified against its digest while it streams, then unpacked once and checked against the
//! config's `diff_ids`. Nothing half-written is ever visible in the store: blobs land under a
//! temporary name and are renamed only once their digest matches.

use std::io::{Read, Write};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::Value;

use super::{endpoint, status_error, Registry, MANIFEST_TYPES, MAX_DOCUMENT};
use crate::config::Config;
use crate::error::{Error, Result};
use crate::image::reference::{Reference, DEFAULT_REGISTRY};
use crate::image::store::{go_arch, Image, Ingest, Store};

const INDEX_TYPES: &[&str] = &[
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
];

fn read_limited(resp: reqwest::blocking::Response, what: &str) -> Result<Vec<u8>> {
    let mut buf = Vec::new();
    resp.take(MAX_DOCUMENT + 1)
        .read_to_end(&mut buf)
        .map_err(|e| Error::Usage(format!("reading the {what}: {e}")))?;
    if buf.len() as u64 > MAX_DOCUMENT {
        return Err(Error::Usage(format!(
            "the {what} is larger than {MAX_DOCUMENT} bytes: refusing it"
        )));
    }
    Ok(buf)
}

/// `d` if it is a well-formed digest (it becomes a file name and a URL path).
fn valid_digest(d: &str) -> Result<&str> {
    crate::image::store::hex_of(d)
        .map(|_| d)
        .map_err(|_| Error::Corrupt(format!("the registry sent an invalid digest {d:?}")))
}

struct Puller<'a> {
    reg: Registry,
    reference: &'a Reference,
    scope: String,
    /// Blobs and layers this pull added, removed again if it fails.
    fetched: std::sync::Mutex<(Vec<String>, Vec<String>)>,
}

impl Puller<'_> {
    /// Fetch a manifest by tag or digest: (bytes, media type, digest).
    fn manifest(&self, tag_or_digest: &str) -> Result<(Vec<u8>, String, String)> {
        let url = self
            .reg
            .url(&self.reference.repository, "manifests", tag_or_digest);
        let resp = self.reg.send(&self.scope, |h| {
            h.get(&url)
                .header(reqwest::header::ACCEPT, MANIFEST_TYPES.join(", "))
        })?;
        if !resp.status().is_success() {
            return Err(status_error("manifest", self.reference, resp));
        }
        let content_type = resp
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_string();
        let bytes = read_limited(resp, "manifest")?;
        let digest = crate::image::store::digest_of(&bytes);
        if tag_or_digest.starts_with("sha256:") && digest != tag_or_digest {
            return Err(Error::Corrupt(format!(
                "the registry's manifest for {tag_or_digest} hashes to {digest}: refusing it"
            )));
        }
        let doc: Value = serde_json::from_slice(&bytes)
            .map_err(|e| Error::Corrupt(format!("manifest of {}: {e}", self.reference)))?;
        if doc["schemaVersion"] == 1
            || content_type.starts_with("application/vnd.docker.distribution.manifest.v1")
        {
            return Err(Error::Usage(format!(
                "{} is a Docker schema 1 image, which is deprecated and not supported: push it again with a current tool",
                self.reference
            )));
        }
        let media_type = doc["mediaType"]
            .as_str()
            .map(String::from)
            .unwrap_or(content_type.clone());
        if !content_type.is_empty()
            && content_type != media_type
            && MANIFEST_TYPES.contains(&content_type.as_str())
        {
            return Err(Error::Corrupt(format!(
                "the registry says the manifest is {content_type} but it declares {media_type}"
            )));
        }
        if doc.get("manifests").is_some() && doc.get("layers").is_some() {
            return Err(Error::Corrupt(
                "the manifest is both an index and an image manifest: refusing it".into(),
            ));
        }
        Ok((bytes, media_type, digest))
    }

    /// Download one blob into the store, verifying its digest as it streams.
    fn blob(&self, store: &Store, digest: &str, bar: Option<&ProgressBar>) -> Result<()> {
        let dest = store.blob_path(digest)?;
        if dest.exists() {
            return Ok(());
        }
        let url = self.reg.url(&self.reference.repository, "blobs", digest);
        let mut last = None;
        // A broken transfer is retried (bounded), from the start.
        for _ in 0..3 {
            if let Some(b) = bar {
                b.set_position(0);
                b.set_message("Downloading");
            }
            let resp = self.reg.send(&self.scope, |h| h.get(&url))?;
            if !resp.status().is_success() {
                return Err(status_error(
                    &format!("blob {digest}"),
                    self.reference,
                    resp,
                ));
            }
            let mut resp = resp;
            let mut progress = |n: u64| {
                if let Some(b) = bar {
                    b.inc(n);
                }
            };
            match store.ingest(&mut resp, Some(digest), &mut progress) {
                Ok(_) => {
                    self.fetched
                        .lock()
                        .expect("fetched")
                        .0
                        .push(digest.to_string());
                    return Ok(());
                }
                Err(Ingest::Mismatch(got)) => {
                    return Err(Error::Corrupt(format!(
                        "blob {digest} from the registry hashes to {got}: refusing it"
                    )));
                }
                Err(Ingest::Store(e)) => return Err(e),
                Err(Ingest::Read(e)) => last = Some(e),
            }
        }
        Err(Error::Usage(format!(
            "downloading blob {digest} failed three times: {}",
            last.map(|e| e.to_string()).unwrap_or_default()
        )))
    }
}

/// Pull `reference` into `store`, printing Docker-like progress lines to `out`, or drawing a
/// progress bar per layer on the terminal (stdout) when `bars`.
pub fn pull(
    store: &Store,
    reference: &Reference,
    config: &Config,
    out: &mut dyn Write,
    bars: bool,
) -> Result<Image> {
    let insecure = config.insecure_registries.clone().unwrap_or_default();
    let mut bases = Vec::new();
    if reference.registry == DEFAULT_REGISTRY {
        // Docker Hub mirrors are tried first, as Docker does.
        for m in config.registry_mirrors.iter().flatten() {
            bases.push(m.trim_end_matches('/').to_string());
        }
    }
    bases.push(endpoint(&reference.registry, &insecure));
    let _ = writeln!(
        out,
        "{}: Pulling from {}",
        reference.tag_or_none(),
        reference.repository
    );
    let mut errors = Vec::new();
    let mirrors = bases.len() - 1;
    let creds = crate::registry::auth_store::lookup(&reference.registry);
    for (i, base) in bases.into_iter().enumerate() {
        super::trace::note(&if i < mirrors {
            format!(
                "{} is on Docker Hub: trying the mirror {base} first (registry-mirrors in the config)",
                reference
            )
        } else {
            format!("{reference}: asking {base}")
        });
        let reg = Registry::connect(&reference.registry, base.clone(), creds.clone())?;
        let p = Puller {
            reg,
            reference,
            scope: format!("repository:{}:pull", reference.repository),
            fetched: Default::default(),
        };
        let result = pull_from(&p, store, out, bars);
        if result.is_err() {
            let (blobs, layers) = &*p.fetched.lock().expect("fetched");
            let _ = store.discard_unused(blobs, layers);
        }
        match result {
            Ok(img) => return Ok(img),
            // A mirror that fails is skipped; the last source's error is the one that counts.
            Err(e) => errors.push((base, e)),
        }
    }
    let (_, last) = errors.pop().expect("at least one source");
    if errors.is_empty() {
        return Err(last);
    }
    // Say why each mirror was passed over too.
    let mirrors: Vec<String> = errors
        .iter()
        .map(|(base, e)| format!("mirror {base}: {e}"))
        .collect();
    Err(Error::Usage(format!(
        "{last} (after {})",
        mirrors.join("; ")
    )))
}

fn pull_from(p: &Puller<'_>, store: &Store, out: &mut dyn Write, bars: bool) -> Result<Image> {
    let reference = p.reference;
    let wanted = reference
        .digest
        .clone()
        .or(reference.tag.clone())
        .unwrap_or_else(|| "latest".into());
    let (mut bytes, mut media_type, mut digest) = p.manifest(&wanted)?;
    let top_digest = digest.clone();
    if INDEX_TYPES.contains(&media_type.as_str()) {
        let index: Value =
            serde_json::from_slice(&bytes).map_err(|e| Error::Corrupt(format!("index: {e}")))?;
        let arch = go_arch();
        let pick = index["manifests"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|m| {
                m["platform"]["os"] == "linux"
                    && m["platform"]["architecture"] == arch
                    && m["annotations"]["vnd.docker.reference.type"] != "attestation-manifest"
            })
            .and_then(|m| m["digest"].as_str())
            .ok_or_else(|| {
                Error::NotFound(format!("{} has no image for linux/{arch}", reference))
            })?;
        let pick = valid_digest(pick)?.to_string();
        (bytes, media_type, digest) = p.manifest(&pick)?;
        if INDEX_TYPES.contains(&media_type.as_str()) {
            return Err(Error::Corrupt(
                "an index inside an index: refusing it".into(),
            ));
        }
    }
    // Already here with the same manifest: nothing to download.
    if let Ok(have) = store.find(&reference.to_string()) {
        if have.manifest_digest == digest {
            let _ = writeln!(out, "Digest: {top_digest}");
            let _ = writeln!(
                out,
                "Status: Image is up to date for {}",
                reference.familiar_tagged()
            );
            return Ok(have);
        }
    }
    let manifest: Value =
        serde_json::from_slice(&bytes).map_err(|e| Error::Corrupt(format!("manifest: {e}")))?;
    let config_digest =
        valid_digest(manifest["config"]["digest"].as_str().unwrap_or(""))?.to_string();
    let sizes: Vec<u64> = manifest["layers"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|l| l["size"].as_u64().unwrap_or(0))
        .collect();
    let layers: Vec<String> = manifest["layers"]
        .as_array()
        .ok_or_else(|| Error::Corrupt(format!("manifest {digest} ({media_type}) has no layers")))?
        .iter()
        .map(|l| valid_digest(l["digest"].as_str().unwrap_or("")).map(String::from))
        .collect::<Result<_>>()?;

    // Layers in parallel (at most 4 at once), each verified as it streams; on a terminal,
    // one progress bar per layer (as Docker draws them), else Docker's plain lines.
    let multi = bars.then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stdout()));
    let style =
        ProgressStyle::with_template("{prefix}: {msg:<17} [{bar:20}] {bytes}/{total_bytes}")
            .expect("template")
            .progress_chars("=> ");
    let layer_bars: Vec<Option<ProgressBar>> = layers
        .iter()
        .zip(&sizes)
        .map(|(l, size)| {
            multi.as_ref().map(|m| {
                let b = m.add(ProgressBar::new(*size));
                b.set_style(style.clone());
                b.set_prefix(l[7..19].to_string());
                b.set_message(if store.blob_path(l).is_ok_and(|p| p.exists()) {
                    "Already exists"
                } else {
                    "Waiting"
                });
                b
            })
        })
        .collect();
    // The config comes in parallel with the layers: one round trip less before they start.
    let (config_fetched, results): (Result<()>, Vec<Result<()>>) = std::thread::scope(|s| {
        let config = s.spawn(|| p.blob(store, &config_digest, None));
        let mut out_results = Vec::new();
        for (chunk, chunk_bars) in layers.chunks(4).zip(layer_bars.chunks(4)) {
            let handles: Vec<_> = chunk
                .iter()
                .zip(chunk_bars)
                .map(|(l, b)| s.spawn(move || p.blob(store, l, b.as_ref())))
                .collect();
            out_results.extend(handles.into_iter().map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(Error::Usage("a download thread panicked".into())))
            }));
        }
        let config = config
            .join()
            .unwrap_or_else(|_| Err(Error::Usage("a download thread panicked".into())));
        (config, out_results)
    });
    config_fetched?;
    let config_bytes = store.read_blob(&config_digest)?;
    if config_bytes.len() as u64 > MAX_DOCUMENT {
        return Err(Error::Usage(
            "the image config is larger than 4 MiB: refusing it".into(),
        ));
    }
    // An unusable config fails the pull; what was fetched with it is removed (see `pull`).
    crate::image::store::parse_config(&config_bytes, &config_digest).inspect_err(|_| {
        let _ = store.blob_path(&config_digest).map(std::fs::remove_file);
    })?;
    let config: Value = serde_json::from_slice(&config_bytes)
        .map_err(|e| Error::Corrupt(format!("config: {e}")))?;
    let diff_ids: Vec<String> = config["rootfs"]["diff_ids"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|d| valid_digest(d.as_str().unwrap_or("")).map(String::from))
        .collect::<Result<_>>()?;
    if diff_ids.len() != layers.len() {
        return Err(Error::Corrupt(format!(
            "{} layers but {} diff_ids in the config",
            layers.len(),
            diff_ids.len()
        )));
    }

    for ((l, r), bar) in layers.iter().zip(results).zip(&layer_bars) {
        if let Err(e) = r {
            if let Some(b) = bar {
                b.abandon_with_message("Failed");
            }
            return Err(e);
        }
        match bar {
            Some(b) => b.set_message("Download complete"),
            None => {
                let _ = writeln!(out, "{}: Download complete", &l[7..19]);
            }
        }
    }
    // Unpack the layers in parallel too (each into its own directory), reporting in order.
    for (d, bar) in diff_ids.iter().zip(&layer_bars) {
        if store.layer_size(d).is_none() {
            p.fetched.lock().expect("fetched").1.push(d.clone());
        }
        if let Some(b) = bar {
            b.set_message("Extracting");
        }
    }
    // A layer that appears twice in an image (an empty layer, say) is unpacked once.
    let mut seen = std::collections::HashSet::new();
    let jobs: Vec<(&String, &String)> = layers
        .iter()
        .zip(&diff_ids)
        .filter(|(_, d)| seen.insert(d.as_str()))
        .collect();
    let unpacked: Vec<Result<std::path::PathBuf>> = std::thread::scope(|s| {
        let mut done = Vec::new();
        for chunk in jobs.chunks(4) {
            let handles: Vec<_> = chunk
                .iter()
                .map(|(l, d)| s.spawn(move || store.ensure_unpacked(l, d)))
                .collect();
            done.extend(handles.into_iter().map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(Error::Usage("an unpack thread panicked".into())))
            }));
        }
        done
    });
    for r in unpacked {
        r?;
    }
    for (l, bar) in layers.iter().zip(&layer_bars) {
        match bar {
            Some(b) => {
                b.set_position(b.length().unwrap_or(0));
                b.finish_with_message("Pull complete");
            }
            None => {
                let _ = writeln!(out, "{}: Pull complete", &l[7..19]);
            }
        }
    }
    if let Some(m) = multi {
        // The finished bars stay on screen, as Docker leaves them; what follows goes below.
        drop(m);
        let _ = writeln!(out);
    }
    let (stored, size) = store.write_blob(&bytes)?;
    debug_assert_eq!(stored, digest);
    store.add_to_index(&digest, size, Some(reference), Some(&top_digest))?;
    let _ = writeln!(out, "Digest: {top_digest}");
    let _ = writeln!(
        out,
        "Status: Downloaded newer image for {}",
        reference.familiar_tagged()
    );
    store.find(&reference.to_string())
}
