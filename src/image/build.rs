//! Making images without a registry: `import` (a root filesystem tarball as a one-layer
//! image) and `build` (a base image plus one layer, gzip, reproducible: the same input and
//! `created` time give the same digests), both writing the config and manifest of the result
//! and tagging it in the store.

use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::OpenOptionsExt;

use sha2::{Digest as _, Sha256};

use oci_spec::image::{Descriptor, ImageManifest, MediaType};
use serde_json::{json, Value};

use super::oci::{descriptor, manifest, to_vec};
use super::reference::Reference;
use super::store::{go_arch, Capped, Image, Ingest, Store};
use super::ImageError;
use crate::error::{Error, Result};

const LAYER_TYPE: &str = "application/vnd.oci.image.layer.v1.tar";
const LAYER_GZIP_TYPE: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
const DEFAULT_PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Whether `head`, the first (up to) 512 bytes of an uncompressed stream, can start a tar
/// archive: nothing at all (an empty archive), a block of zeros (its end), or a header whose
/// checksum (POSIX: the sum of its bytes, the checksum field counted as spaces) is right.
fn tar_header_check(head: &[u8]) -> std::result::Result<(), &'static str> {
    if head.is_empty() || (head.len() == 512 && head.iter().all(|b| *b == 0)) {
        return Ok(());
    }
    if head.len() < 512 {
        return Err("shorter than one tar header");
    }
    let field = &head[148..156];
    let text: String = field
        .iter()
        .map(|b| *b as char)
        .filter(|c| *c != '\0' && *c != ' ')
        .collect();
    let Ok(stored) = u32::from_str_radix(&text, 8) else {
        return Err("its first block is no tar header");
    };
    let sum: u32 = head
        .iter()
        .enumerate()
        .map(|(i, b)| {
            if (148..156).contains(&i) {
                32
            } else {
                u32::from(*b)
            }
        })
        .sum();
    if sum != stored {
        return Err("the checksum of its first header does not match");
    }
    Ok(())
}

/// An uncompressed layer tar being written ([`Store::layer_sink`]): what is written goes to
/// an unlinked file and into its digest (the layer's `diff_id`).
pub struct TarSink {
    out: BufWriter<File>,
    hash: Sha256,
    len: u64,
}

impl Write for TarSink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.out.write(buf)?;
        self.hash.update(&buf[..n]);
        self.len += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.out.flush()
    }
}

impl TarSink {
    /// The tar written: its file, length and digest.
    pub fn finish(self) -> std::io::Result<LayerTar> {
        let file = self.out.into_inner().map_err(|e| e.into_error())?;
        Ok(LayerTar {
            file,
            len: self.len,
            diff_id: format!("sha256:{:x}", self.hash.finalize()),
        })
    }
}

/// A whole uncompressed layer tar in its (unlinked) file, for [`Store::store_layer`].
pub struct LayerTar {
    file: File,
    len: u64,
    diff_id: String,
}

impl LayerTar {
    /// Its length in bytes.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// True for no bytes at all.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// `sha256:<hex>` of the tar (the layer's `diff_id`).
    pub fn diff_id(&self) -> &str {
        &self.diff_id
    }
}

/// A layer blob already in the store, about to be added to an image.
pub(crate) struct NewLayer {
    /// The blob's digest (of the compressed bytes).
    pub digest: String,
    /// The blob's size.
    pub size: u64,
    /// The uncompressed tar's digest.
    pub diff_id: String,
    media_type: &'static str,
}

impl Store {
    /// Import a root filesystem tarball (plain or gzip; `-` for stdin) as a one-layer image.
    pub fn import(
        &self,
        src: &str,
        reference: Option<&Reference>,
        changes: &[String],
        message: Option<&str>,
    ) -> Result<Image> {
        let input: Box<dyn Read> = if src == "-" {
            Box::new(std::io::stdin().lock())
        } else {
            Box::new(File::open(src).map_err(|e| {
                match e.kind() {
                    std::io::ErrorKind::NotFound => ImageError::NoTarball {
                        path: src.to_string(),
                    }
                    .into(),
                    _ => Error::io("open", src)(e),
                }
            })?)
        };
        let mut input = BufReader::with_capacity(1 << 16, input);
        let gz = {
            use std::io::BufRead;
            let head = input.fill_buf().map_err(Error::io("read", src))?;
            head.starts_with(&[0x1f, 0x8b])
        };
        let mut reader: Box<dyn Read> = if gz {
            Box::new(crate::image::gunzip::GzipReader::new(input))
        } else {
            Box::new(input)
        };
        // The first header is checked before anything is stored: a file that is not a tar
        // is said to be one, by name, and its bytes are never shown (the tar reader's own
        // messages quote the header fields it could not parse).
        let mut head = Vec::with_capacity(512);
        (&mut reader)
            .take(512)
            .read_to_end(&mut head)
            .map_err(|source| ImageError::NotATar {
                path: src.to_string(),
                source,
            })?;
        if let Err(why) = tar_header_check(&head) {
            return Err(ImageError::NotATarArchive {
                path: src.to_string(),
                why,
            }
            .into());
        }
        let reader: Box<dyn Read> = Box::new(std::io::Cursor::new(head).chain(reader));
        // The uncompressed tar is stored as a blob: a decompression bomb is cut off here,
        // before it fills the disk (the blob's temporary file is removed).
        let mut reader = Capped {
            inner: reader,
            left: self.limits().max_size,
            over: false,
        };

        // Stream the uncompressed layer into a blob, hashing as we go: its digest is both the
        // blob's name and the diff_id.
        let (layer_digest, size) =
            self.ingest(&mut reader, None, &mut |_| {})
                .map_err(|e| match e {
                    Ingest::Read(_) if reader.over => self.limits().too_big(src),
                    Ingest::Read(source) => ImageError::NotATar {
                        path: src.to_string(),
                        source,
                    }
                    .into(),
                    Ingest::Store(e) => e,
                    Ingest::Mismatch(_) => unreachable!("no digest was expected"),
                })?;
        if let Err(e) = self.ensure_unpacked(&layer_digest, &layer_digest) {
            // A layer refused while unpacking leaves no blob behind (unless an image has it).
            let _ = self.discard_unused(std::slice::from_ref(&layer_digest), &[]);
            return Err(e);
        }

        let now = crate::container::now_rfc3339();
        let mut history = json!({"created": now, "created_by": format!("dockling import {src}")});
        if let Some(m) = message {
            history["comment"] = json!(m);
        }
        self.write_image(
            None,
            Some(NewLayer {
                digest: layer_digest.clone(),
                size,
                diff_id: layer_digest,
                media_type: LAYER_TYPE,
            }),
            changes,
            &now,
            history,
            &|_| {},
            reference,
        )
    }

    /// Build an image from `base` (or from nothing) plus one layer given as an uncompressed
    /// tar: the layer is stored gzip-compressed, as registries expect, and the result is the
    /// same bytes (and so the same digests) every time for the same input and `created` time.
    pub fn build(
        &self,
        base: Option<&Image>,
        layer_tar: &[u8],
        changes: &[String],
        created: &str,
        created_by: &str,
        reference: Option<&Reference>,
    ) -> Result<Image> {
        self.build_from(
            base,
            self.layer_of(layer_tar)?,
            changes,
            created,
            created_by,
            reference,
        )
    }

    /// [`Store::build`] with the layer already written to a file ([`Store::layer_sink`]):
    /// a layer too big to hold in memory (the lab's Debian image).
    pub fn build_from(
        &self,
        base: Option<&Image>,
        layer_tar: LayerTar,
        changes: &[String],
        created: &str,
        created_by: &str,
        reference: Option<&Reference>,
    ) -> Result<Image> {
        let layer = self.store_layer(layer_tar)?;
        self.write_image(
            base,
            Some(layer),
            changes,
            created,
            json!({"created": created, "created_by": created_by}),
            &|_| {},
            reference,
        )
    }

    /// A small layer tar made in memory (a WORKDIR's directory) as a [`LayerTar`].
    pub fn layer_of(&self, layer_tar: &[u8]) -> Result<LayerTar> {
        let mut sink = self.layer_sink()?;
        sink.write_all(layer_tar)
            .and_then(|_| sink.finish())
            .map_err(Error::write("writing a layer in", self.temp_area()))
    }

    /// Where layer tars are written while they are made: the blobs directory, so that the
    /// space they take is the store's.
    fn temp_area(&self) -> std::path::PathBuf {
        self.blob_dir()
    }

    /// A file to write an uncompressed layer tar into, hashed on the way: an unlinked
    /// (`O_TMPFILE`) file in the store's blob directory, which nothing can find and a killed
    /// process leaves nothing of.
    pub fn layer_sink(&self) -> Result<TarSink> {
        let dir = self.temp_area();
        std::fs::create_dir_all(&dir).map_err(Error::io("create", &dir))?;
        let tmpfile = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_TMPFILE | libc::O_CLOEXEC)
            .mode(0o600)
            .open(&dir);
        let file = match tmpfile {
            Ok(f) => f,
            // A file system without O_TMPFILE: a temporary name, removed at once (a kill
            // between the two leaves a name the store's sweep knows as this process's).
            Err(e) if matches!(e.raw_os_error(), Some(libc::EOPNOTSUPP | libc::EISDIR)) => {
                let p = dir.join(crate::files::temp_name());
                let f = std::fs::OpenOptions::new()
                    .read(true)
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .open(&p)
                    .map_err(Error::write("creating a layer file in", &dir))?;
                std::fs::remove_file(&p).map_err(Error::io("remove", &p))?;
                f
            }
            Err(e) => return Err(Error::write("creating a layer file in", &dir)(e)),
        };
        Ok(TarSink {
            out: BufWriter::with_capacity(1 << 16, file),
            hash: Sha256::new(),
            len: 0,
        })
    }

    /// Store an uncompressed layer tar as a gzip blob, streamed from its file into the blob's
    /// temporary file (hashed on the way, renamed into place: [`Store::ingest`]). A fixed gzip
    /// header (no name, mtime 0) keeps the blob reproducible.
    pub(crate) fn store_layer(&self, tar: LayerTar) -> Result<NewLayer> {
        let LayerTar {
            mut file,
            len,
            diff_id,
        } = tar;
        let area = self.temp_area();
        file.seek(SeekFrom::Start(0))
            .map_err(Error::io("read the layer file in", &area))?;
        let mut gz = flate2::GzBuilder::new().read(
            BufReader::with_capacity(1 << 16, file.take(len)),
            flate2::Compression::default(),
        );
        let (digest, size) = self
            .ingest(&mut gz, None, &mut |_| {})
            .map_err(|e| match e {
                Ingest::Read(e) => ImageError::Compress(e).into(),
                Ingest::Store(e) => e,
                Ingest::Mismatch(_) => unreachable!("no digest was expected"),
            })?;
        Ok(NewLayer {
            digest,
            size,
            diff_id,
            media_type: LAYER_GZIP_TYPE,
        })
    }

    /// Write the config and manifest of `base` + `layer` (whose blob is already stored; none:
    /// a config-only change, as a Dockerfile's ENV makes) and tag the result.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn write_image(
        &self,
        base: Option<&Image>,
        layer: Option<NewLayer>,
        changes: &[String],
        created: &str,
        history: Value,
        edit: &dyn Fn(&mut Value),
        reference: Option<&Reference>,
    ) -> Result<Image> {
        // The manifest is oci-spec's; the config stays a JSON value: a base's config may
        // carry fields oci-spec does not know (Docker's `container_config`, `OnBuild`, …),
        // and they must reach the new image unchanged.
        let (mut config, mut layers): (Value, Vec<Descriptor>) = match base {
            Some(b) => {
                let manifest: ImageManifest =
                    serde_json::from_slice(&self.read_blob(&b.manifest_digest)?).map_err(|e| {
                        ImageError::BadManifest {
                            digest: b.manifest_digest.clone(),
                            why: e.to_string(),
                        }
                    })?;
                let config: Value =
                    serde_json::from_slice(&self.read_blob(&b.id)?).map_err(|e| {
                        ImageError::BadConfig {
                            digest: b.id.clone(),
                            why: e.to_string(),
                        }
                    })?;
                (config, manifest.layers().clone())
            }
            None => (
                json!({
                    "architecture": go_arch(),
                    "os": "linux",
                    "config": {"Env": [DEFAULT_PATH]},
                    "rootfs": {"type": "layers", "diff_ids": []},
                    "history": [],
                }),
                Vec::new(),
            ),
        };
        if !config["config"].is_object() {
            config["config"] = json!({});
        }
        if !config["config"]["Env"].is_array() {
            config["config"]["Env"] = json!([DEFAULT_PATH]);
        }
        edit(&mut config);
        for c in changes {
            crate::image::change::apply_change(&mut config["config"], c)?;
        }
        config["created"] = json!(created);
        if let Some(layer) = &layer {
            match config["rootfs"]["diff_ids"].as_array_mut() {
                Some(d) => d.push(json!(layer.diff_id)),
                None => config["rootfs"] = json!({"type": "layers", "diff_ids": [layer.diff_id]}),
            }
        }
        // A null entry: a change the history does not record (a Dockerfile's ONBUILD).
        if !history.is_null() {
            match config["history"].as_array_mut() {
                Some(h) => h.push(history),
                None => config["history"] = json!([history]),
            }
        }
        if let Some(layer) = &layer {
            layers.push(descriptor(
                MediaType::from(layer.media_type),
                &layer.digest,
                layer.size,
                &[],
            )?);
        }
        let (config_digest, config_size) =
            self.write_blob(&serde_json::to_vec(&config).expect("json"))?;
        let manifest = manifest(&config_digest, config_size, layers)?;
        let (manifest_digest, manifest_size) = self.write_blob(&to_vec(&manifest))?;
        self.add_to_index(&manifest_digest, manifest_size, reference, None)?;
        self.load(&manifest_digest, reference.cloned())
    }
}

#[cfg(test)]
mod tar_check_tests {
    use super::tar_header_check;

    #[test]
    fn only_a_real_tar_header_starts_an_import() {
        let mut tar = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_path("etc/hostname").unwrap();
        h.set_size(3);
        h.set_cksum();
        tar.append(&h, &b"box"[..]).unwrap();
        let tar = tar.into_inner().unwrap();
        assert_eq!(tar_header_check(&tar[..512]), Ok(()));
        assert_eq!(tar_header_check(&[]), Ok(()));
        assert_eq!(tar_header_check(&[0; 512]), Ok(()));
        assert!(tar_header_check(b"hello\n").is_err());
        assert!(tar_header_check(&[b'x'; 512]).is_err());
        let mut bad = tar[..512].to_vec();
        bad[0] ^= 1;
        assert_eq!(
            tar_header_check(&bad),
            Err("the checksum of its first header does not match")
        );
    }
}

#[cfg(test)]
mod stream_tests {
    use std::io::Write;

    use super::super::store::{digest_of, Store};

    #[test]
    fn a_streamed_layer_is_byte_for_byte_the_one_made_in_memory_before() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open(tmp.path()).unwrap();
        // Half compressible, half not, over several of the reader's buffers.
        let data: Vec<u8> = (0..3_000_000u32)
            .map(|i| {
                if i % 200_000 < 100_000 {
                    (i / 1000) as u8
                } else {
                    (i.wrapping_mul(2_654_435_761) >> 13) as u8
                }
            })
            .collect();
        let mut gz = flate2::GzBuilder::new().write(Vec::new(), flate2::Compression::default());
        gz.write_all(&data).unwrap();
        let expected = gz.finish().unwrap();
        let layer = store.store_layer(store.layer_of(&data).unwrap()).unwrap();
        assert_eq!(layer.diff_id, digest_of(&data));
        assert_eq!(layer.digest, digest_of(&expected));
        assert_eq!(layer.size, expected.len() as u64);
        // Nothing is left in the blob directory but the blob itself.
        let names: Vec<_> = std::fs::read_dir(store.blob_dir())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(names, [layer.digest.trim_start_matches("sha256:")]);
    }
}
