//! `pull`: manifest (choosing this platform from an index), config, layers in parallel, each
//! verified against its digest while it streams, then unpacked once and checked against the
//! config's `diff_ids`. Nothing half-written is ever visible in the store: blobs land under a
//! temporary name and are renamed only once their digest matches. The registry is untrusted:
//! a manifest is read up to 4 MiB, a config up to 8 MiB, a blob up to its descriptor's size
//! and not a byte further, and a layer type not known here is refused by name.

use std::io::{Read, Write};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use oci_spec::image::{Arch, Descriptor, ImageIndex, ImageManifest, Os};
use serde::Deserialize;

use super::{
    endpoint, status_error, Registry, RegistryError, MANIFEST_TYPES, MAX_CONFIG, MAX_MANIFEST,
};
use crate::config::Config;
use crate::error::{Error, Result};
use crate::image::reference::{Reference, DEFAULT_REGISTRY};
use crate::image::store::{go_arch, BlobSink, Image, Ingest, Made, StagedBlob, StagedLayer, Store};

const INDEX_TYPES: &[&str] = &[
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
];

/// Read a manifest, refusing one larger than `MAX_MANIFEST`: by its Content-Length before
/// reading a byte, then by counting (a registry may send no length, or lie).
fn read_limited(resp: reqwest::blocking::Response, what: &'static str) -> Result<Vec<u8>> {
    let too_large = || RegistryError::TooLarge {
        what,
        limit: MAX_MANIFEST,
    };
    if resp.content_length().is_some_and(|n| n > MAX_MANIFEST) {
        return Err(too_large().into());
    }
    let mut buf = Vec::new();
    resp.take(MAX_MANIFEST + 1)
        .read_to_end(&mut buf)
        .map_err(|source| RegistryError::Read { what, source })?;
    if buf.len() as u64 > MAX_MANIFEST {
        return Err(too_large().into());
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

/// The fields of a manifest read before its kind is known: enough to refuse Docker schema 1,
/// a `mediaType` the `Content-Type` contradicts, or a document that is an index and an image
/// manifest at once. The document itself is then parsed as oci-spec's [`ImageIndex`] or
/// [`ImageManifest`], Docker's schema 2 types included (their `mediaType`s are
/// `MediaType::Other`, and a Docker manifest list has the shape of an OCI index).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Envelope {
    schema_version: Option<u64>,
    media_type: Option<String>,
    manifests: Option<serde::de::IgnoredAny>,
    layers: Option<serde::de::IgnoredAny>,
}

/// A descriptor as it may come, wrong: read only to say why a manifest was not accepted as
/// oci-spec's type (a digest that is not one, a missing size), by name rather than in
/// serde's words.
#[derive(Deserialize)]
struct LooseDescriptor {
    digest: Option<String>,
    size: Option<u64>,
}

/// A manifest or index as it may come, wrong (see [`LooseDescriptor`]).
#[derive(Deserialize)]
struct LooseManifest {
    config: Option<LooseDescriptor>,
    layers: Option<Vec<LooseDescriptor>>,
    manifests: Option<Vec<LooseDescriptor>>,
}

/// Parse `bytes` as `T` (an index or an image manifest); when that fails, say which digest is
/// not one or which descriptor has no size, as a manifest checked field by field would.
fn parse<T: serde::de::DeserializeOwned>(
    bytes: &[u8],
    what: &str,
    digest: &str,
    media_type: &str,
) -> Result<T> {
    let err = match serde_json::from_slice(bytes) {
        Ok(doc) => return Ok(doc),
        Err(e) => e,
    };
    let bad = || RegistryError::BadManifest {
        what: what.to_string(),
        reason: err.to_string(),
    };
    let Ok(loose) = serde_json::from_slice::<LooseManifest>(bytes) else {
        return Err(bad().into());
    };
    let described = loose
        .config
        .iter()
        .map(|d| (d, "the config"))
        .chain(loose.layers.iter().flatten().map(|d| (d, "a layer")))
        .chain(loose.manifests.iter().flatten().map(|d| (d, "a manifest")));
    for (d, what) in described {
        let digest = valid_digest(d.digest.as_deref().unwrap_or(""))?;
        if d.size.is_none() {
            return Err(RegistryError::NoSize {
                what,
                digest: digest.to_string(),
            }
            .into());
        }
    }
    if loose.manifests.is_none() && loose.config.is_some() && loose.layers.is_none() {
        return Err(RegistryError::NoLayers {
            digest: digest.to_string(),
            media_type: media_type.to_string(),
        }
        .into());
    }
    Err(bad().into())
}

/// The digest of a descriptor, checked to be a well-formed `sha256:` digest (oci-spec accepts
/// other algorithms; the store names blobs by sha256 alone).
fn checked(d: &Descriptor) -> Result<&str> {
    valid_digest(d.digest().as_ref())
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

impl<R> Bounded<R> {
    fn new(inner: R, size: u64) -> Bounded<R> {
        Bounded {
            inner,
            left: size,
            size,
        }
    }
}

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
        .map_err(|_| RegistryError::InvalidDigest(d.to_string()).into())
}

struct Puller<'a> {
    reg: Registry,
    reference: &'a Reference,
    scope: String,
    /// Blobs and layers this pull added, removed again if it fails.
    fetched: std::sync::Mutex<(Vec<String>, Vec<String>)>,
}

/// A manifest as the registry sent it: its exact bytes (its digest is theirs: never
/// re-serialized), its media type and its digest.
struct Fetched {
    bytes: Vec<u8>,
    media_type: String,
    digest: String,
}

impl Fetched {
    fn is_index(&self) -> bool {
        INDEX_TYPES.contains(&self.media_type.as_str())
    }
}

/// Reads through `inner`, keeping a copy of every byte in `copy` (the config: stored and
/// parsed from one download, hashed once on its way into the store).
struct Keep<'a, R> {
    inner: R,
    copy: &'a mut Vec<u8>,
}

impl<R: Read> Read for Keep<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.copy.extend_from_slice(&buf[..n]);
        Ok(n)
    }
}

impl Puller<'_> {
    /// Fetch a manifest by tag or digest.
    fn manifest(&self, tag_or_digest: &str) -> Result<Fetched> {
        let url = self
            .reg
            .url(&self.reference.repository, "manifests", tag_or_digest);
        let resp = self.reg.send(&self.scope, |h| {
            h.get(&url)
                .header(reqwest::header::ACCEPT, MANIFEST_TYPES.join(", "))
        })?;
        if !resp.status().is_success() {
            return Err(super::manifest_error(self.reference, resp).into());
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
            return Err(RegistryError::ManifestDigest {
                wanted: tag_or_digest.to_string(),
                got: digest,
            }
            .into());
        }
        let doc: Envelope =
            serde_json::from_slice(&bytes).map_err(|e| RegistryError::BadManifest {
                what: format!("manifest of {}", self.reference),
                reason: e.to_string(),
            })?;
        if doc.schema_version == Some(1)
            || content_type.starts_with("application/vnd.docker.distribution.manifest.v1")
        {
            return Err(RegistryError::Schema1(self.reference.to_string()).into());
        }
        let media_type = doc.media_type.unwrap_or(content_type.clone());
        if !content_type.is_empty()
            && content_type != media_type
            && MANIFEST_TYPES.contains(&content_type.as_str())
        {
            return Err(RegistryError::MediaTypeMismatch {
                header: content_type,
                declared: media_type,
            }
            .into());
        }
        if doc.manifests.is_some() && doc.layers.is_some() {
            return Err(RegistryError::Ambiguous.into());
        }
        Ok(Fetched {
            bytes,
            media_type,
            digest,
        })
    }

    /// Download one blob into the store, no more than its descriptor's size, verifying its
    /// digest as it streams. With `keep`, its bytes end up there too (the config, which is
    /// parsed next): read from the store when it is already there, or copied as it streams,
    /// hashed once either way. True when the blob was already there, intact (nothing was
    /// downloaded).
    fn blob(
        &self,
        store: &Store,
        blob: &Descriptor,
        bar: Option<&ProgressBar>,
        mut keep: Option<&mut Vec<u8>>,
    ) -> Result<bool> {
        let digest = checked(blob)?;
        let size = blob.size();
        let dest = store.blob_path(digest)?;
        // Claimed first (garbage collection keeps it from now on), then fetched by one
        // process at a time: a parallel pull of the same blob waits here and finds it present.
        store.claim(&[digest])?;
        let _one = store.object_lock("blob", digest)?;
        // A blob already here is trusted only when it has its descriptor's size (and, when
        // small enough to hash in passing, its digest): a damaged one is fetched again and
        // replaced (the rename of `ingest` takes its place atomically).
        let intact = match keep.as_deref_mut() {
            // Read whole (it is at most MAX_CONFIG) and hashed here: the bytes are the ones
            // checked.
            Some(copy) => match std::fs::read(&dest) {
                Ok(bytes)
                    if bytes.len() as u64 == size
                        && crate::image::store::digest_of(&bytes) == digest =>
                {
                    *copy = bytes;
                    true
                }
                _ => false,
            },
            None => {
                dest.exists()
                    && crate::image::fsck::blob_intact(&dest, digest, size, size <= MAX_CONFIG)
            }
        };
        if intact {
            // Touched: `system fsck --repair` never takes a blob newer than a running
            // command for an orphan, and this pull relies on it before it is indexed.
            let _ = std::fs::File::open(&dest)
                .and_then(|f| f.set_modified(std::time::SystemTime::now()));
            return Ok(true);
        }
        crate::fault::point("pull.blob.locked");
        let url = self.reg.url(&self.reference.repository, "blobs", digest);
        let mut last = None;
        // A broken transfer is retried (bounded), from the start.
        for _ in 0..3 {
            let resp = self.get_blob(&url, digest, size, bar)?;
            let mut body = Bounded::new(resp, size);
            let mut progress = |n: u64| {
                if let Some(b) = bar {
                    b.inc(n);
                }
            };
            let ingested = match keep.as_deref_mut() {
                Some(copy) => {
                    copy.clear();
                    let mut tee = Keep {
                        inner: &mut body,
                        copy,
                    };
                    store.ingest(&mut tee, Some(digest), &mut progress)
                }
                None => store.ingest(&mut body, Some(digest), &mut progress),
            };
            match ingested {
                Ok(_) => {
                    crate::fault::check("pull.blob.renamed")?;
                    self.fetched
                        .lock()
                        .expect("fetched")
                        .0
                        .push(digest.to_string());
                    return Ok(false);
                }
                Err(Ingest::Mismatch(got)) => {
                    return Err(RegistryError::BlobDigest {
                        digest: digest.to_string(),
                        got,
                    }
                    .into());
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
                        return Err(RegistryError::BlobTooLong {
                            digest: digest.to_string(),
                            size: o.0,
                        }
                        .into());
                    }
                    last = Some(e)
                }
            }
        }
        Err(RegistryError::BlobRetries {
            digest: digest.to_string(),
            last: last.map(|e| e.to_string()).unwrap_or_default(),
        }
        .into())
    }
}

/// A layer body on its way: every byte read from the registry (cut off at the descriptor's
/// size) is written to the blob's temporary file and hashed there before the decompressor and
/// the unpacker see it. Its own failures are kept apart, so that what the unpacker reports as
/// a bad entry can be told from a broken transfer (tried again) or a full disk (not).
struct Tee<'a, R> {
    inner: Bounded<R>,
    sink: &'a mut BlobSink,
    bar: Option<&'a ProgressBar>,
    /// The transfer broke (or the registry sent too much).
    read_err: Option<std::io::Error>,
    /// The blob could not be written.
    write_err: Option<Error>,
}

impl<R: Read> Read for Tee<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.read_err.is_some() || self.write_err.is_some() {
            return Err(std::io::Error::other("the download failed"));
        }
        let n = match self.inner.read(buf) {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => return Err(e),
            Err(e) => {
                let said = std::io::Error::new(e.kind(), e.to_string());
                self.read_err = Some(e);
                return Err(said);
            }
        };
        if let Err(e) = self.sink.write(&buf[..n]) {
            let said = std::io::Error::other(e.to_string());
            self.write_err = Some(e);
            return Err(said);
        }
        if let Some(b) = self.bar {
            b.inc(n as u64);
        }
        Ok(n)
    }
}

/// Chunks of a layer's body between the thread that downloads it and the one that makes the
/// layer: at most this many in flight (each up to [`CHUNK`] bytes), so a slow consumer holds
/// the download back instead of buffering the blob in memory.
const CHUNKS_IN_FLIGHT: usize = 8;
const CHUNK: usize = 128 << 10;

/// The body thread of a layer's download: everything `tee` gives (written to the blob and
/// hashed there) goes on to the layer's maker through `tx`, a failure of the download as an
/// `Err`. Once the maker stops taking chunks (done with the tar, or refused it), the rest is
/// still read into the blob: its digest says whether the layer or the transfer was bad.
fn feed<R: Read>(
    tee: &mut Tee<'_, R>,
    tx: std::sync::mpsc::SyncSender<std::result::Result<Vec<u8>, ()>>,
) {
    let mut taking = true;
    loop {
        let mut buf = vec![0u8; CHUNK];
        match tee.read(&mut buf) {
            Ok(0) => return,
            Ok(n) => {
                if taking {
                    buf.truncate(n);
                    taking = tx.send(Ok(buf)).is_ok();
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => {
                let _ = tx.send(Err(()));
                return;
            }
        }
    }
}

/// The layer's maker's side of [`feed`]: the body as a reader; its end when the body thread
/// is done, an error when the download failed.
struct Chunks {
    rx: std::sync::mpsc::Receiver<std::result::Result<Vec<u8>, ()>>,
    cur: Vec<u8>,
    pos: usize,
}

impl Chunks {
    fn new(rx: std::sync::mpsc::Receiver<std::result::Result<Vec<u8>, ()>>) -> Chunks {
        Chunks {
            rx,
            cur: Vec::new(),
            pos: 0,
        }
    }
}

impl Read for Chunks {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.pos == self.cur.len() {
            match self.rx.recv() {
                Ok(Ok(chunk)) => (self.cur, self.pos) = (chunk, 0),
                Ok(Err(())) => return Err(std::io::Error::other("the download failed")),
                // The body thread is done: the body ended.
                Err(_) => return Ok(0),
            }
        }
        let n = buf.len().min(self.cur.len() - self.pos);
        buf[..n].copy_from_slice(&self.cur[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// The trace's one line for what a layer's staging made (untraced plumbing: thousands of
/// `*at` calls, or the writes of an EROFS image, summed up), `how` it was read.
fn made_note(layer: &str, how: &str, staged: &StagedLayer) -> String {
    match staged.made() {
        Made::Unpacked(s) => format!(
            "layer {layer} unpacked {how}: {} files, {} directories, {} whiteouts, {} bytes (untraced: openat2, mkdirat, openat, write, fchown, fchmod, utimensat; a layer once the pull commits)",
            s.files, s.dirs, s.whiteouts, s.bytes
        ),
        Made::Erofs(s) => format!(
            "layer {layer} kept as an EROFS image {how}: its {}-byte tar written whole and indexed as it passed, {} inodes in {} bytes of index, no file of the layer created (untraced: write, sync_file_range, pwrite; mounted when a container starts)",
            staged.tar_size(),
            s.inodes,
            s.index_bytes
        ),
    }
}

/// What one layer's job leaves for the end of the pull: its blob and its unpacked directory,
/// still under temporary names (committed together after one `syncfs`).
#[derive(Default)]
struct LayerJob {
    /// Its blob was intact in the store and the layer unpacked: nothing was done.
    was_here: bool,
    blob: Option<StagedBlob>,
    layer: Option<StagedLayer>,
}

impl Puller<'_> {
    /// One layer, start to end: nothing when its blob is intact and it is unpacked; unpacked
    /// from the blob already in the store when only the unpacked layer is missing (fetched
    /// again if that blob turns out damaged); else downloaded and unpacked in one stream.
    /// With `unpack` false (a second blob of a diff_id already unpacked by another job of
    /// this pull) only the blob is fetched. The caller holds the blob's lock, and the layer's
    /// with `unpack`.
    fn layer(
        &self,
        store: &Store,
        desc: &Descriptor,
        diff_id: &str,
        unpack: bool,
        bar: Option<&ProgressBar>,
        notes: &mut Vec<String>,
    ) -> Result<LayerJob> {
        let digest = checked(desc)?;
        let size = desc.size();
        let dest = store.blob_path(digest)?;
        let mut job = LayerJob::default();
        let intact = |hash: bool| {
            dest.exists() && crate::image::fsck::blob_intact(&dest, digest, size, hash)
        };
        let mut blob_here = intact(size <= MAX_CONFIG);
        let missing = unpack && store.layer_missing(diff_id)?;
        if blob_here {
            // Touched: `system fsck --repair` never takes a blob newer than a running
            // command for an orphan, and this pull relies on it before it is indexed.
            let _ = std::fs::File::open(&dest)
                .and_then(|f| f.set_modified(std::time::SystemTime::now()));
        }
        if !missing {
            if blob_here {
                job.was_here =
                    unpack || store.layer_complete(diff_id) || store.erofs_ready(diff_id);
            } else {
                job.blob = Some(self.download(store, desc, bar, None, notes)?.0);
            }
            return Ok(job);
        }
        if blob_here {
            // Trusted by its size: if unpacking it fails and it does not hash to its name, it
            // is provably garbage, removed and fetched again.
            let mut f = std::fs::File::open(&dest).map_err(Error::io("open", &dest))?;
            match store.stage_layer(&mut f, digest, diff_id) {
                Ok(l) => {
                    notes.push(made_note(digest, "from the blob already in the store", &l));
                    job.layer = Some(l);
                    return Ok(job);
                }
                Err(e) if !intact(true) => {
                    notes.push(format!(
                        "layer {digest} in the store is damaged ({e}): fetching it again"
                    ));
                    let _ = std::fs::remove_file(&dest);
                    blob_here = false;
                }
                Err(e) => return Err(e),
            }
        }
        debug_assert!(!blob_here);
        let (blob, layer) = self.download(store, desc, bar, Some(diff_id), notes)?;
        job.blob = Some(blob);
        job.layer = layer;
        Ok(job)
    }

    /// One try at blob `digest` at `url`: the response, once the registry said yes and its
    /// length agrees with the manifest's `size` (refused before a byte is stored); the
    /// progress bar, if any, back at zero.
    fn get_blob(
        &self,
        url: &str,
        digest: &str,
        size: u64,
        bar: Option<&ProgressBar>,
    ) -> Result<reqwest::blocking::Response> {
        if let Some(b) = bar {
            b.set_position(0);
            b.set_message("Downloading");
        }
        let resp = self.reg.send(&self.scope, |h| h.get(url))?;
        if !resp.status().is_success() {
            return Err(status_error(&format!("blob {digest}"), self.reference, resp).into());
        }
        if let Some(n) = resp.content_length().filter(|n| *n != size) {
            return Err(RegistryError::BlobLength {
                digest: digest.to_string(),
                sent: n,
                size,
            }
            .into());
        }
        Ok(resp)
    }

    /// Download a layer blob (the caller holds its lock), no more than its descriptor's size,
    /// into a temporary file, hashing it; with `unpack_as`, the same bytes go on through the
    /// decompressor into [`Store::stage_layer`] as they arrive, so the layer is unpacked when
    /// its download ends. Then the blob's digest is checked: a mismatch discards both (the
    /// staged layer first of all). A broken transfer is tried again from the start (bounded).
    fn download(
        &self,
        store: &Store,
        desc: &Descriptor,
        bar: Option<&ProgressBar>,
        unpack_as: Option<&str>,
        notes: &mut Vec<String>,
    ) -> Result<(StagedBlob, Option<StagedLayer>)> {
        let digest = checked(desc)?;
        let size = desc.size();
        crate::fault::point("pull.blob.locked");
        let url = self.reg.url(&self.reference.repository, "blobs", digest);
        let mut last = None;
        for _ in 0..3 {
            let resp = self.get_blob(&url, digest, size, bar)?;
            let mut sink = store.blob_sink(digest)?;
            let mut tee = Tee {
                inner: Bounded::new(resp, size),
                sink: &mut sink,
                bar,
                read_err: None,
                write_err: None,
            };
            // The body is read, written to the blob's file and hashed on a thread of its own,
            // the layer decompressed, hashed and made on this one: the two halves of a
            // layer's work overlap, and a layer bigger than the others is not all on one core.
            let layer = std::thread::scope(|s| {
                let diff_id = unpack_as?;
                let (tx, rx) = std::sync::mpsc::sync_channel(CHUNKS_IN_FLIGHT);
                let body = s.spawn(|| feed(&mut tee, tx));
                let layer = store.stage_layer(&mut Chunks::new(rx), digest, diff_id);
                // The receiver is gone: the body thread drains the rest into the blob alone.
                let _ = body.join();
                Some(layer)
            });
            // The rest of the body (all of it when not unpacking; what the body thread left
            // after a failure of its own is not read: that download is tried again or fails).
            if tee.read_err.is_none() && tee.write_err.is_none() {
                let _ = std::io::copy(&mut tee, &mut std::io::sink());
            }
            let (read_err, write_err) = (tee.read_err.take(), tee.write_err.take());
            if let Some(e) = write_err {
                return Err(match e {
                    Error::NoSpace { dir, quota, .. } => Error::NoSpace {
                        dir,
                        quota,
                        doing: format!("downloading blob {digest}"),
                    },
                    e => e,
                });
            }
            if let Some(e) = read_err {
                if let Some(o) = e.get_ref().and_then(|e| e.downcast_ref::<Oversized>()) {
                    return Err(RegistryError::BlobTooLong {
                        digest: digest.to_string(),
                        size: o.0,
                    }
                    .into());
                }
                last = Some(e);
                continue;
            }
            let blob = match sink.finish(digest) {
                Ok(b) => b,
                Err(Ingest::Mismatch(got)) => {
                    return Err(RegistryError::BlobDigest {
                        digest: digest.to_string(),
                        got,
                    }
                    .into())
                }
                Err(Ingest::Store(e)) => return Err(e),
                Err(Ingest::Read(e)) => return Err(Error::io("read", store.blob_path(digest)?)(e)),
            };
            return match layer {
                Some(Err(e)) => Err(e),
                Some(Ok(l)) => {
                    notes.push(made_note(digest, "while it downloaded", &l));
                    Ok((blob, Some(l)))
                }
                None => Ok((blob, None)),
            };
        }
        Err(RegistryError::BlobRetries {
            digest: digest.to_string(),
            last: last.map(|e| e.to_string()).unwrap_or_default(),
        }
        .into())
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
    // `index.json` is read once here: a broken index is said before anything is downloaded
    // that could not be recorded, and the image the reference names now (if any, and
    // loadable: a damaged one is pulled again) is what "up to date" is checked against.
    let have = {
        let index = store.read_index()?;
        index["manifests"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|m| crate::image::store::tag_of(m).as_ref() == Some(reference))
            .and_then(|m| store.entry(m).ok().flatten())
    };
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
        let result = pull_from(&p, store, have.as_ref(), out, bars);
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
    // A mirror that says the image does not exist answered; a registry out of reach (Docker
    // Hub without internet) did not: the answer is what the user needs to read first.
    let unreachable = matches!(last, Error::Registry(RegistryError::Unreachable { .. }));
    let missing = errors
        .iter()
        .position(|(_, e)| matches!(e, Error::Registry(RegistryError::NoSuchImage { .. })));
    if let (true, Some(i)) = (unreachable, missing) {
        let (_, Error::Registry(not_found)) = errors.remove(i) else {
            unreachable!("matched above")
        };
        let mut rest: Vec<String> = errors
            .iter()
            .map(|(base, e)| format!("mirror {base}: {e}"))
            .collect();
        if let Error::Registry(RegistryError::Unreachable {
            registry,
            base,
            cause,
            ..
        }) = &last
        {
            rest.push(format!(
                "the registry {registry} itself could not be asked at {base}: {cause}"
            ));
        }
        return Err(RegistryError::NotOnMirror {
            not_found: Box::new(not_found),
            rest: rest.join("; "),
        }
        .into());
    }
    // Say why each mirror was passed over too.
    let mirrors: Vec<String> = errors
        .iter()
        .map(|(base, e)| format!("mirror {base}: {e}"))
        .collect();
    Err(RegistryError::Mirrors {
        last: Box::new(last),
        mirrors: mirrors.join("; "),
    }
    .into())
}

fn pull_from(
    p: &Puller<'_>,
    store: &Store,
    have: Option<&Image>,
    out: &mut dyn Write,
    bars: bool,
) -> Result<Image> {
    let reference = p.reference;
    let wanted = reference
        .digest
        .clone()
        .or(reference.tag.clone())
        .unwrap_or_else(|| "latest".into());
    let mut fetched = p.manifest(&wanted)?;
    let top_digest = fetched.digest.clone();
    crate::fault::check("pull.manifest")?;
    if fetched.is_index() {
        let index: ImageIndex = parse(
            &fetched.bytes,
            "index",
            &fetched.digest,
            &fetched.media_type,
        )?;
        let arch = go_arch();
        let pick = index
            .manifests()
            .iter()
            .find(|m| {
                let attestation = m
                    .annotations()
                    .as_ref()
                    .and_then(|a| a.get("vnd.docker.reference.type"))
                    .is_some_and(|t| t == "attestation-manifest");
                m.platform().as_ref().is_some_and(|pl| {
                    *pl.os() == Os::Linux && *pl.architecture() == Arch::from(arch)
                }) && !attestation
            })
            .ok_or_else(|| RegistryError::NoPlatform {
                reference: reference.to_string(),
                arch,
            })?;
        let pick = checked(pick)?.to_string();
        fetched = p.manifest(&pick)?;
        if fetched.is_index() {
            return Err(RegistryError::NestedIndex.into());
        }
    }
    let Fetched {
        bytes,
        media_type,
        digest,
    } = fetched;
    let manifest: ImageManifest = parse(&bytes, "manifest", &digest, &media_type)?;
    // Already here with the same manifest, and every blob it names intact: nothing to
    // download. A damaged blob (truncated, say) is fetched again below.
    if let Some(have) = have {
        if have.manifest_digest == digest && blobs_intact(store, &manifest, &have.diff_ids) {
            let _ = writeln!(out, "Digest: {top_digest}");
            let _ = writeln!(
                out,
                "Status: Image is up to date for {}",
                reference.familiar_tagged()
            );
            return Ok(have.clone());
        }
    }
    let config_desc = manifest.config();
    let config_digest = checked(config_desc)?.to_string();
    let config_type = config_desc.media_type().to_string();
    if !CONFIG_TYPES.contains(&config_type.as_str()) {
        return Err(RegistryError::NotAnImage {
            reference: reference.to_string(),
            media_type: config_type,
            expected: CONFIG_TYPES.join(" or "),
        }
        .into());
    }
    if config_desc.size() > MAX_CONFIG {
        return Err(RegistryError::ConfigTooLarge {
            reference: reference.to_string(),
            size: config_desc.size(),
            limit: MAX_CONFIG,
        }
        .into());
    }
    let descriptors = manifest.layers();
    for d in descriptors {
        let digest = checked(d)?;
        // A layer bigger than max-layer-size compressed is bigger still unpacked: refused
        // before a byte of it is downloaded, not after it filled the disk.
        if d.size() > store.limits().max_size {
            return Err(store.limits().too_big(digest));
        }
        let media_type = d.media_type().as_ref();
        let known = LAYER_TYPES.contains(&media_type) || FOREIGN_LAYER_TYPES.contains(&media_type);
        if !known {
            return Err(RegistryError::UnknownLayerType {
                digest: digest.to_string(),
                reference: reference.to_string(),
                media_type: media_type.to_string(),
                known: LAYER_TYPES.join(", "),
            }
            .into());
        }
    }
    let layers: Vec<String> = descriptors.iter().map(|d| d.digest().to_string()).collect();
    // Everything this image needs is leased before a byte is fetched: an `rmi` or `prune`
    // running meanwhile does not collect what is already here or arrives.
    let mut needed: Vec<&str> = vec![digest.as_str(), config_digest.as_str()];
    needed.extend(layers.iter().map(String::as_str));
    store.claim(&needed)?;

    // The config first (one small round trip): its diff_ids name the layers each download
    // unpacks into, and a layer already unpacked is not downloaded again. Its bytes are kept
    // from the download (or the one read of the blob already here).
    let mut config_bytes = Vec::new();
    p.blob(store, config_desc, None, Some(&mut config_bytes))?;
    // At most MAX_CONFIG bytes: the download stopped at the descriptor's size. An unusable
    // config fails the pull; what was fetched with it is removed (see `pull`).
    let config =
        crate::image::store::parse_config(&config_bytes, &config_digest).inspect_err(|_| {
            let _ = store.blob_path(&config_digest).map(std::fs::remove_file);
        })?;
    let diff_ids: Vec<String> = config
        .rootfs()
        .diff_ids()
        .iter()
        .map(|d| valid_digest(d).map(String::from))
        .collect::<Result<_>>()?;
    if diff_ids.len() != layers.len() {
        return Err(RegistryError::DiffIdCount {
            layers: layers.len(),
            diff_ids: diff_ids.len(),
        }
        .into());
    }
    // Leased before they are looked for: kept until the index names them.
    let ids: Vec<&str> = diff_ids.iter().map(String::as_str).collect();
    store.claim(&ids)?;

    // One job per distinct blob; a blob that appears twice (an empty layer, say) is fetched
    // and unpacked once, and a diff_id two blobs share (the same tar compressed two ways) is
    // unpacked by the first of them only. One blob with two diff_ids cannot be both.
    let mut blob_of = std::collections::HashMap::new();
    let mut unpacking = std::collections::HashSet::new();
    let mut jobs: Vec<(usize, bool)> = Vec::new();
    for (i, (l, d)) in layers.iter().zip(&diff_ids).enumerate() {
        match blob_of.insert(l.as_str(), d.as_str()) {
            Some(other) if other != d => {
                return Err(Error::Corrupt(format!(
                    "image {reference}: layer {l} is given two diff_ids ({other} and {d}) by its config: the image is corrupt"
                )))
            }
            Some(_) => continue,
            // With `--layers erofs`, "unpacked" is written as an EROFS image, from the same
            // stream.
            None => jobs.push((i, unpacking.insert(d.as_str()))),
        }
    }

    // The per-object locks of every blob and layer this pull may write, taken before any
    // download and held until the commit: one process fetches and unpacks each, the others
    // wait and then find it in place. All are taken at once and in one order (by name), so
    // two pulls sharing layers never each hold what the other waits for.
    let mut wanted: Vec<(&str, &str)> = Vec::new();
    // An EROFS image is written under the lock its mounting and removal take.
    let layer_lock = if store.erofs_mode() { "erofs" } else { "layer" };
    for (i, unpack) in &jobs {
        wanted.push(("blob", layers[*i].as_str()));
        if *unpack {
            wanted.push((layer_lock, diff_ids[*i].as_str()));
        }
    }
    wanted.sort_unstable();
    wanted.dedup();
    let mut locks = Vec::with_capacity(wanted.len());
    for (what, digest) in wanted {
        locks.push(store.object_lock(what, digest)?);
    }

    // Every layer at once, in a bounded pool of workers (at most 4 layers in flight): each
    // streams from the registry through its digest check and decompressor into its own
    // staging directory, and a worker that finishes takes the next layer, so a slow layer
    // holds up no other. On a terminal, one progress bar per layer (as Docker draws them),
    // else Docker's plain lines once all are done.
    let multi = bars.then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stdout()));
    let style =
        ProgressStyle::with_template("{prefix}: {msg:<17} [{bar:20}] {bytes}/{total_bytes}")
            .expect("template")
            .progress_chars("=> ");
    let layer_bars: Vec<Option<ProgressBar>> = descriptors
        .iter()
        .map(|d| {
            multi.as_ref().map(|m| {
                let l = d.digest().to_string();
                let b = m.add(ProgressBar::new(d.size()));
                b.set_style(style.clone());
                b.set_prefix(l[7..19].to_string());
                b.set_message("Waiting");
                b
            })
        })
        .collect();
    let done = in_pool(jobs.len(), 4, |k| {
        let (i, unpack) = jobs[k];
        let (d, diff_id, bar) = (&descriptors[i], &diff_ids[i], layer_bars[i].as_ref());
        let mut notes = Vec::new();
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            p.layer(store, d, diff_id, unpack, bar, &mut notes)
                .map_err(|e| foreign_hint(d, e))
        }))
        .unwrap_or_else(|_| Err(RegistryError::Panicked("a layer download").into()));
        if let Some(b) = bar {
            match &r {
                Ok(j) if j.was_here => b.set_message("Already exists"),
                Ok(_) => b.set_message("Download complete"),
                Err(_) => b.abandon_with_message("Failed"),
            }
        }
        match r {
            Ok(j) => Ok((j, notes)),
            Err(e) => Err(Box::new((e, notes))),
        }
    });
    // The layers' trace notes in layer order, whichever worker finished first (the trace of
    // one pull reads the same every time); the first failure in layer order is the one said,
    // and every staged blob and layer of the others is dropped (removed) with `done`.
    let mut finished = Vec::with_capacity(jobs.len());
    let mut first_err = None;
    for slot in done {
        let notes = match slot {
            Some(Ok((j, notes))) => {
                finished.push(j);
                notes
            }
            Some(Err(failed)) => {
                let (e, notes) = *failed;
                first_err.get_or_insert(e);
                notes
            }
            // Not started: another layer failed first.
            None => Vec::new(),
        };
        for n in notes {
            super::trace::note(&n);
        }
    }
    if let Some(e) = first_err {
        return Err(e);
    }
    let present: Vec<bool> = layers
        .iter()
        .map(|l| {
            jobs.iter()
                .zip(&finished)
                .find(|((i, _), _)| layers[*i] == *l)
                .is_some_and(|(_, j)| j.was_here)
        })
        .collect();
    // Everything the jobs staged becomes the store's in one commit: one syncfs, then the
    // renames and markers. Listed first, so that a failure from here on removes it again.
    let mut staged_blobs = Vec::new();
    let mut staged_layers = Vec::new();
    {
        let mut fetched = p.fetched.lock().expect("fetched");
        for j in finished {
            if let Some(b) = j.blob {
                fetched.0.push(b.digest().to_string());
                staged_blobs.push(b);
            }
            if let Some(l) = j.layer {
                fetched.1.push(l.diff_id().to_string());
                staged_layers.push(l);
            }
        }
    }
    store.commit(staged_blobs, staged_layers)?;
    drop(locks);
    // Docker's lines, in layer order: "Already exists" for a layer the store held, else
    // "Download complete" then "Pull complete".
    for (l, was_here) in layers.iter().zip(&present) {
        if bars {
            break;
        }
        let status = if *was_here {
            "Already exists"
        } else {
            "Download complete"
        };
        let _ = writeln!(out, "{}: {status}", &l[7..19]);
    }
    for ((l, bar), was_here) in layers.iter().zip(&layer_bars).zip(&present) {
        match bar {
            Some(b) => {
                b.set_position(b.length().unwrap_or(0));
                b.finish_with_message(if *was_here {
                    "Already exists"
                } else {
                    "Pull complete"
                });
            }
            None if *was_here => {}
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

/// True when every blob `manifest` names is in the store with its descriptor's size, and its
/// digest too when the blob is about to be read whole anyway (a layer not made, unpacked or
/// as an EROFS image as the store makes them, whose `diff_id` is in `diff_ids`, in order) or small (a layer up to MAX_CONFIG). The config is
/// checked by size alone: the image it belongs to was just loaded, which read it and checked
/// its digest.
fn blobs_intact(store: &Store, manifest: &ImageManifest, diff_ids: &[String]) -> bool {
    // Made the way this store makes layers: unpacked, or with `--layers erofs` kept as an
    // EROFS image (whose blob is no more read than an unpacked layer's).
    let unpacked = |i: usize| {
        diff_ids.get(i).is_some_and(|d| {
            if store.erofs_mode() {
                store.erofs_ready(d)
            } else {
                store.layer_complete(d)
            }
        })
    };
    let config = (manifest.config(), false);
    let layers = manifest
        .layers()
        .iter()
        .enumerate()
        .map(|(i, l)| (l, l.size() <= MAX_CONFIG || !unpacked(i)));
    std::iter::once(config).chain(layers).all(|(d, hash)| {
        let digest = d.digest().as_ref();
        store
            .blob_path(digest)
            .is_ok_and(|p| crate::image::fsck::blob_intact(&p, digest, d.size(), hash))
    })
}

/// A foreign layer the registry does not hold: say why dockling does not look elsewhere.
fn foreign_hint(layer: &Descriptor, e: Error) -> Error {
    match e {
        Error::Registry(source @ RegistryError::NotFound { .. })
            if FOREIGN_LAYER_TYPES.contains(&layer.media_type().as_ref()) =>
        {
            RegistryError::ForeignLayer {
                source: Box::new(source),
                digest: layer.digest().to_string(),
                media_type: layer.media_type().to_string(),
            }
            .into()
        }
        e => e,
    }
}

/// `f(0)`, …, `f(n - 1)` on at most `workers` threads, each taking the next index when done,
/// until one fails: the results in index order, `None` for those not started after a failure.
fn in_pool<T: Send, E: Send>(
    n: usize,
    workers: usize,
    f: impl Fn(usize) -> std::result::Result<T, E> + Sync,
) -> Vec<Option<std::result::Result<T, E>>> {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
    let (next, failed) = (AtomicUsize::new(0), AtomicBool::new(false));
    let slots: Vec<std::sync::Mutex<Option<std::result::Result<T, E>>>> =
        (0..n).map(|_| Default::default()).collect();
    std::thread::scope(|s| {
        for _ in 0..n.min(workers) {
            s.spawn(|| loop {
                let k = next.fetch_add(1, SeqCst);
                if k >= n || failed.load(SeqCst) {
                    break;
                }
                let r = f(k);
                if r.is_err() {
                    failed.store(true, SeqCst);
                }
                *slots[k].lock().expect("a pool slot") = Some(r);
            });
        }
    });
    slots
        .into_iter()
        .map(|m| m.into_inner().expect("a pool slot"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pool_stops_taking_work_after_a_failure_and_keeps_index_order() {
        let ran = std::sync::atomic::AtomicUsize::new(0);
        let out = in_pool(10, 1, |k| {
            ran.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            if k == 2 {
                Err(k)
            } else {
                Ok(k * 10)
            }
        });
        assert_eq!(out[..3], [Some(Ok(0)), Some(Ok(10)), Some(Err(2))]);
        assert!(out[3..].iter().all(Option::is_none), "{out:?}");
        assert_eq!(ran.into_inner(), 3);
        let all = in_pool(7, 4, Ok::<_, ()>);
        assert_eq!(all, (0..7).map(|k| Some(Ok(k))).collect::<Vec<_>>());
    }

    const D1: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
    const D2: &str = "sha256:2222222222222222222222222222222222222222222222222222222222222222";

    fn docker_manifest() -> serde_json::Value {
        serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
            "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "size": 10, "digest": D1},
            "layers": [{"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip", "size": 20, "digest": D2}],
        })
    }

    /// Regression (review of issue 14): with `--layers erofs` a layer kept as an EROFS image
    /// was not "made" for a warm pull, so its large blob was hashed on every pull although
    /// nothing reads it again (an unpacked layer's is checked by size alone).
    #[test]
    fn a_layer_kept_as_an_erofs_image_is_trusted_by_size_as_an_unpacked_one() {
        const D3: &str = "sha256:3333333333333333333333333333333333333333333333333333333333333333";
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap().with_erofs(true);
        let big = MAX_CONFIG + 1;
        let mut m = docker_manifest();
        m["layers"][0]["size"] = big.into();
        let m: ImageManifest = serde_json::from_value(m).unwrap();
        std::fs::write(store.blob_path(D1).unwrap(), [0u8; 10]).unwrap();
        // The right size, the wrong content: only hashing can tell.
        std::fs::File::create(store.blob_path(D2).unwrap())
            .unwrap()
            .set_len(big)
            .unwrap();
        assert!(
            !blobs_intact(&store, &m, &[D3.into()]),
            "a layer to be made: its blob is hashed"
        );
        let root = store.erofs_root(D3).unwrap();
        std::fs::create_dir_all(&root).unwrap();
        std::fs::write(root.with_file_name("layer.erofs"), b"").unwrap();
        assert!(store.erofs_ready(D3));
        assert!(
            blobs_intact(&store, &m, &[D3.into()]),
            "a layer kept as an EROFS image: its blob checked by size"
        );
    }

    #[test]
    fn a_docker_manifest_list_parses_as_an_index() {
        let list = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.docker.distribution.manifest.list.v2+json",
            "manifests": [
                {"mediaType": "application/vnd.docker.distribution.manifest.v2+json", "size": 5, "digest": D1,
                 "platform": {"architecture": "amd64", "os": "linux"}},
                {"mediaType": "application/vnd.docker.distribution.manifest.v2+json", "size": 5, "digest": D2,
                 "platform": {"architecture": "arm", "os": "linux", "variant": "v7"}},
            ],
        });
        let bytes = serde_json::to_vec(&list).unwrap();
        let index: ImageIndex = parse(&bytes, "index", D1, "").unwrap();
        assert_eq!(
            index
                .media_type()
                .as_ref()
                .map(|m| m.to_string())
                .as_deref(),
            Some("application/vnd.docker.distribution.manifest.list.v2+json")
        );
        let amd64 = index.manifests()[0].platform().as_ref().unwrap();
        assert_eq!(*amd64.architecture(), Arch::from("amd64"));
        assert_eq!(*amd64.os(), Os::Linux);
        assert_eq!(checked(&index.manifests()[1]).unwrap(), D2);
    }

    #[test]
    fn a_docker_manifest_parses_with_its_media_types() {
        let bytes = serde_json::to_vec(&docker_manifest()).unwrap();
        let m: ImageManifest = parse(&bytes, "manifest", D1, "").unwrap();
        assert!(CONFIG_TYPES.contains(&m.config().media_type().as_ref()));
        assert!(LAYER_TYPES.contains(&m.layers()[0].media_type().as_ref()));
        assert_eq!(m.layers()[0].size(), 20);
    }

    #[test]
    fn a_manifest_that_does_not_parse_says_why_by_name() {
        let err = |doc: serde_json::Value| {
            parse::<ImageManifest>(&serde_json::to_vec(&doc).unwrap(), "manifest", D1, "x")
                .unwrap_err()
                .to_string()
        };
        let mut m = docker_manifest();
        m["layers"][0]["digest"] = "sha256:../../etc/passwd".into();
        assert!(err(m).contains("the registry sent an invalid digest"));
        let mut m = docker_manifest();
        m["layers"][0].as_object_mut().unwrap().remove("size");
        assert_eq!(
            err(m),
            format!("the manifest gives a layer {D2} no size: refusing it (the size bounds the download)")
        );
        let mut m = docker_manifest();
        m.as_object_mut().unwrap().remove("layers");
        assert_eq!(err(m), format!("manifest {D1} (x) has no layers"));
        assert!(err(serde_json::json!({"schemaVersion": "two"})).starts_with("manifest: "));
    }

    #[test]
    fn a_bounded_body_refuses_a_byte_more_or_less() {
        let mut out = Vec::new();
        Bounded::new(&b"abc"[..], 3).read_to_end(&mut out).unwrap();
        assert_eq!(out, b"abc");
        let e = Bounded::new(&b"abcd"[..], 3)
            .read_to_end(&mut Vec::new())
            .unwrap_err();
        assert!(e.get_ref().unwrap().downcast_ref::<Oversized>().is_some());
        let e = Bounded::new(&b"ab"[..], 3)
            .read_to_end(&mut Vec::new())
            .unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::UnexpectedEof);
    }
}
