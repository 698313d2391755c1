//! `pull`: manifest (choosing this platform from an index), config, layers in parallel, each
//! verified against its digest while it streams, then unpacked once and checked against the
//! config's `diff_ids`. Nothing half-written is ever visible in the store: blobs land under a
//! temporary name and are renamed only once their digest matches. The registry is untrusted:
//! a manifest is read up to 4 MiB, a config up to 8 MiB, a blob up to its descriptor's size
//! and not a byte further, and a layer type not known here is refused by name.

use std::io::{Read, Write};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::Value;

use super::{endpoint, status_error, Registry, MANIFEST_TYPES, MAX_CONFIG, MAX_MANIFEST};
use crate::config::Config;
use crate::error::{Error, Result};
use crate::image::reference::{Reference, DEFAULT_REGISTRY};
use crate::image::store::{go_arch, Image, Ingest, Store};

const INDEX_TYPES: &[&str] = &[
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
];

/// Read a manifest, refusing one larger than `MAX_MANIFEST`: by its Content-Length before
/// reading a byte, then by counting (a registry may send no length, or lie).
fn read_limited(resp: reqwest::blocking::Response, what: &str) -> Result<Vec<u8>> {
    let too_large = || {
        Error::Corrupt(format!(
            "the {what} is larger than {MAX_MANIFEST} bytes (4 MiB, the most a registry stores): refusing it"
        ))
    };
    if resp.content_length().is_some_and(|n| n > MAX_MANIFEST) {
        return Err(too_large());
    }
    let mut buf = Vec::new();
    resp.take(MAX_MANIFEST + 1)
        .read_to_end(&mut buf)
        .map_err(|e| Error::Usage(format!("reading the {what}: {e}")))?;
    if buf.len() as u64 > MAX_MANIFEST {
        return Err(too_large());
    }
    Ok(buf)
}

/// The layer media types dockling unpacks. The compression is still read from the blob's
/// first bytes (gzip or zstd magic, else plain tar), so a mislabelled blob cannot make the
/// wrong decoder run; a type not in this list is refused, never guessed at.
const LAYER_TYPES: &[&str] = &[
    "application/vnd.oci.image.layer.v1.tar",
    "application/vnd.oci.image.layer.v1.tar+gzip",
    "application/vnd.oci.image.layer.v1.tar+zstd",
    "application/vnd.docker.image.rootfs.diff.tar.gzip",
];

/// Layers an image may name "non-distributable" (Windows base images, deprecated in OCI 1.1):
/// their descriptor lists `urls` elsewhere. dockling fetches them from the registry like any
/// layer and never from those URLs (an image must not make the engine contact hosts it names).
const FOREIGN_LAYER_TYPES: &[&str] = &[
    "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
    "application/vnd.oci.image.layer.nondistributable.v1.tar",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
];

/// The image config media types (OCI's and Docker's); anything else is an artifact (a Helm
/// chart, a signature), not something `run` can start.
const CONFIG_TYPES: &[&str] = &[
    "application/vnd.oci.image.config.v1+json",
    "application/vnd.docker.container.image.v1+json",
];

/// What a descriptor in a manifest says about one blob.
#[derive(Clone)]
struct Descriptor {
    digest: String,
    size: u64,
    media_type: String,
}

/// A descriptor of the manifest, checked: a well-formed digest, a size, a media type.
fn descriptor(v: &Value, what: &str) -> Result<Descriptor> {
    let digest = valid_digest(v["digest"].as_str().unwrap_or(""))?.to_string();
    let size = v["size"].as_u64().ok_or_else(|| {
        Error::Corrupt(format!(
            "the manifest gives {what} {digest} no size: refusing it (the size bounds the download)"
        ))
    })?;
    Ok(Descriptor {
        digest,
        size,
        media_type: v["mediaType"].as_str().unwrap_or("").to_string(),
    })
}

/// A blob body cut off at its descriptor's size: one byte more is an error at once (an
/// endless or oversized blob never fills the disk), one byte less too (a transfer that ended
/// early, which is tried again).
struct Bounded<R> {
    inner: R,
    left: u64,
    size: u64,
}

/// The error `Bounded` gives for a body longer than its descriptor says.
#[derive(Debug)]
struct Oversized(u64);

impl std::fmt::Display for Oversized {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the registry sent more than the {} bytes the manifest gives",
            self.0
        )
    }
}

impl std::error::Error for Oversized {}

impl<R: Read> Read for Bounded<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.left == 0 {
            // Everything promised arrived: anything more is refused, not stored.
            let mut probe = [0u8; 1];
            return match self.inner.read(&mut probe)? {
                0 => Ok(0),
                _ => Err(std::io::Error::other(Oversized(self.size))),
            };
        }
        let want = buf
            .len()
            .min(usize::try_from(self.left).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..want])?;
        if n == 0 && want > 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                format!(
                    "the transfer ended after {} of {} bytes",
                    self.size - self.left,
                    self.size
                ),
            ));
        }
        self.left -= n as u64;
        Ok(n)
    }
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

    /// Download one blob into the store, no more than its descriptor's size, verifying its
    /// digest as it streams.
    fn blob(&self, store: &Store, blob: &Descriptor, bar: Option<&ProgressBar>) -> Result<()> {
        let digest = blob.digest.as_str();
        let dest = store.blob_path(digest)?;
        // Claimed first (garbage collection keeps it from now on), then fetched by one
        // process at a time: a parallel pull of the same blob waits here and finds it present.
        store.claim(&[digest])?;
        let _one = store.object_lock("blob", digest)?;
        // A blob already here is trusted only when it has its descriptor's size (and, when
        // small enough to hash in passing, its digest): a damaged one is fetched again and
        // replaced (the rename of `ingest` takes its place atomically).
        let hash = blob.size <= MAX_CONFIG;
        if dest.exists() && crate::image::fsck::blob_intact(&dest, digest, blob.size, hash) {
            // Touched: `system fsck --repair` never takes a blob newer than a running
            // command for an orphan, and this pull relies on it before it is indexed.
            let _ = std::fs::File::open(&dest)
                .and_then(|f| f.set_modified(std::time::SystemTime::now()));
            return Ok(());
        }
        crate::fault::point("pull.blob.locked");
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
            // A length that disagrees with the manifest is refused before a byte is stored.
            if let Some(n) = resp.content_length().filter(|n| *n != blob.size) {
                return Err(Error::Corrupt(format!(
                    "blob {digest}: the registry sends {n} bytes (Content-Length) but the manifest gives {}: refusing it",
                    blob.size
                )));
            }
            let mut body = Bounded {
                inner: resp,
                left: blob.size,
                size: blob.size,
            };
            let mut progress = |n: u64| {
                if let Some(b) = bar {
                    b.inc(n);
                }
            };
            match store.ingest(&mut body, Some(digest), &mut progress) {
                Ok(_) => {
                    crate::fault::check("pull.blob.renamed")?;
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
                // The store could not be written (a full disk among others): another
                // download would fail the same way, so it is not tried again.
                Err(Ingest::Store(Error::NoSpace { dir, quota, .. })) => {
                    return Err(Error::NoSpace {
                        dir,
                        quota,
                        doing: format!("downloading blob {digest}"),
                    })
                }
                Err(Ingest::Store(e)) => return Err(e),
                Err(Ingest::Read(e)) => {
                    if let Some(o) = e.get_ref().and_then(|e| e.downcast_ref::<Oversized>()) {
                        return Err(Error::Corrupt(format!("blob {digest}: {o}: refusing it")));
                    }
                    last = Some(e)
                }
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
    // A broken index is said before anything is downloaded that could not be recorded.
    store.check_index()?;
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
    // Each source gets its own credentials: a mirror the ones stored for the mirror's host,
    // never Docker Hub's (a mirror that challenges for them must not get them). Looked up
    // once per source (a credential helper is a process to run).
    let creds = crate::registry::auth_store::lookup(&reference.registry);
    for (i, base) in bases.into_iter().enumerate() {
        let creds = if i < mirrors {
            crate::registry::auth_store::lookup(&super::mirror_name(&base))
        } else {
            creds.clone()
        };
        super::trace::note(&if i < mirrors {
            format!(
                "{} is on Docker Hub: trying the mirror {base} first (registry-mirrors in the config)",
                reference
            )
        } else {
            format!("{reference}: asking {base}")
        });
        let reg = Registry::connect(&reference.registry, base.clone(), creds)?;
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
            // A full disk is full for every mirror: said once, not tried again elsewhere.
            Err(e @ Error::NoSpace { .. }) => return Err(e),
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
    crate::fault::check("pull.manifest")?;
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
    // Already here with the same manifest, and every blob it names intact: nothing to
    // download. A damaged blob (truncated, say) is fetched again below.
    if let Ok(have) = store.find(&reference.to_string()) {
        if have.manifest_digest == digest && blobs_intact(store, &bytes, &have.diff_ids) {
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
    let config_desc = descriptor(&manifest["config"], "the config")?;
    if !CONFIG_TYPES.contains(&config_desc.media_type.as_str()) {
        return Err(Error::Usage(format!(
            "{reference} is not a container image: its config is {:?}, not an image config ({}): it cannot be pulled or run",
            config_desc.media_type,
            CONFIG_TYPES.join(" or ")
        )));
    }
    if config_desc.size > MAX_CONFIG {
        return Err(Error::Corrupt(format!(
            "the image config of {reference} is {} bytes, more than the {MAX_CONFIG} (8 MiB) dockling reads: refusing it",
            config_desc.size
        )));
    }
    let config_digest = config_desc.digest.clone();
    let descriptors: Vec<Descriptor> = manifest["layers"]
        .as_array()
        .ok_or_else(|| Error::Corrupt(format!("manifest {digest} ({media_type}) has no layers")))?
        .iter()
        .map(|l| descriptor(l, "a layer"))
        .collect::<Result<_>>()?;
    for d in &descriptors {
        // A layer bigger than max-layer-size compressed is bigger still unpacked: refused
        // before a byte of it is downloaded, not after it filled the disk.
        if d.size > store.limits().max_size {
            return Err(store.limits().too_big(&d.digest));
        }
        let known = LAYER_TYPES.contains(&d.media_type.as_str())
            || FOREIGN_LAYER_TYPES.contains(&d.media_type.as_str());
        if !known {
            return Err(Error::Usage(format!(
                "layer {} of {reference} has the media type {:?}, which dockling does not know how to unpack (it knows {}): refusing the image",
                d.digest,
                d.media_type,
                LAYER_TYPES.join(", ")
            )));
        }
    }
    // Everything this image needs is leased before a byte is fetched: an `rmi` or `prune`
    // running meanwhile does not collect what is already here or arrives.
    let mut needed: Vec<&str> = vec![digest.as_str(), config_desc.digest.as_str()];
    needed.extend(descriptors.iter().map(|d| d.digest.as_str()));
    store.claim(&needed)?;
    let sizes: Vec<u64> = descriptors.iter().map(|d| d.size).collect();
    let layers: Vec<String> = descriptors.iter().map(|d| d.digest.clone()).collect();

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
        let config = s.spawn(|| p.blob(store, &config_desc, None));
        let mut out_results = Vec::new();
        for (chunk, chunk_bars) in descriptors.chunks(4).zip(layer_bars.chunks(4)) {
            let handles: Vec<_> = chunk
                .iter()
                .zip(chunk_bars)
                .map(|(l, b)| {
                    s.spawn(move || p.blob(store, l, b.as_ref()).map_err(|e| foreign_hint(l, e)))
                })
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
    // At most MAX_CONFIG bytes: the download stopped at the descriptor's size.
    let config_bytes = store.read_blob(&config_digest)?;
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
    // Leased before they are looked for (unpacking claims them too, but a layer found
    // complete is not unpacked): kept until the index names them.
    let ids: Vec<&str> = diff_ids.iter().map(String::as_str).collect();
    store.claim(&ids)?;
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
                .map(|(l, d)| {
                    let desc = descriptors.iter().find(|x| &x.digest == *l);
                    s.spawn(move || unpack_or_refetch(p, store, l, d, desc))
                })
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
    crate::fault::check("pull.before_index")?;
    let (stored, size) = store.write_blob(&bytes)?;
    debug_assert_eq!(stored, digest);
    store.add_to_index(&digest, size, Some(reference), Some(&top_digest))?;
    crate::fault::check("pull.index_updated")?;
    let _ = writeln!(out, "Digest: {top_digest}");
    let _ = writeln!(
        out,
        "Status: Downloaded newer image for {}",
        reference.familiar_tagged()
    );
    store.find(&reference.to_string())
}

/// Unpack a layer; when that fails because the blob already in the store is damaged (right
/// size, wrong content: `blob` trusted it by its size), fetch it again and unpack once more.
/// The blob is hashed only on this failure path: a healthy pull reads it once, to unpack.
fn unpack_or_refetch(
    p: &Puller<'_>,
    store: &Store,
    layer: &str,
    diff_id: &str,
    desc: Option<&Descriptor>,
) -> Result<std::path::PathBuf> {
    let first = store.ensure_unpacked(layer, diff_id);
    let (Err(e), Some(desc)) = (&first, desc) else {
        return first;
    };
    let path = store.blob_path(layer)?;
    if crate::image::fsck::blob_intact(&path, layer, desc.size, true) {
        return first;
    }
    super::trace::note(&format!(
        "layer {layer} in the store is damaged ({e}): fetching it again"
    ));
    // Its content does not match its name: provably garbage.
    let _ = std::fs::remove_file(&path);
    p.blob(store, desc, None)?;
    store.ensure_unpacked(layer, diff_id)
}

/// True when every blob `manifest` names is in the store with its descriptor's size, and its
/// digest too when that is cheap (a small blob: the config) or the blob is about to be read
/// whole anyway (a layer not unpacked, whose `diff_id` is in `diff_ids`, in order).
fn blobs_intact(store: &Store, manifest: &[u8], diff_ids: &[String]) -> bool {
    let Ok(manifest) = serde_json::from_slice::<Value>(manifest) else {
        return false;
    };
    let layers = manifest["layers"]
        .as_array()
        .map_or(&[][..], |v| v.as_slice());
    let unpacked = |i: usize| diff_ids.get(i).is_some_and(|d| store.layer_complete(d));
    std::iter::once((&manifest["config"], true))
        .chain(layers.iter().enumerate().map(|(i, l)| (l, unpacked(i))))
        .all(
            |(d, unpacked)| match (d["digest"].as_str(), d["size"].as_u64()) {
                (Some(digest), Some(size)) => store.blob_path(digest).is_ok_and(|p| {
                    let hash = size <= MAX_CONFIG || !unpacked;
                    crate::image::fsck::blob_intact(&p, digest, size, hash)
                }),
                _ => false,
            },
        )
}

/// A foreign layer the registry does not hold: say why dockling does not look elsewhere.
fn foreign_hint(layer: &Descriptor, e: Error) -> Error {
    match e {
        Error::NotFound(msg) if FOREIGN_LAYER_TYPES.contains(&layer.media_type.as_str()) => {
            Error::NotFound(format!(
                "{msg}: layer {} is a non-distributable ({}) layer the registry does not hold, and dockling never downloads layers from the URLs an image names",
                layer.digest, layer.media_type
            ))
        }
        e => e,
    }
}
