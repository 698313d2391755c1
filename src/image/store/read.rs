//! Reading a layer blob's entries without unpacking it (the layer view: `image layers`,
//! `image diff`). The blob is decompressed as a stream, held to `max-layer-size` and
//! `max-layer-entries`, and hashed: what it says is trusted only when the hash is the diff_id
//! the image config promises, exactly as for an unpack.

use crate::image::hashing::Hashing;
use std::fs::File;
use std::io::{BufReader, Read};

use sha2::{Digest as _, Sha256};

use super::{hex_of, Capped, Store};
use crate::error::{Error, Result};
use crate::image::ImageError;
use crate::layers::view::{read_layer, Entry};

impl Store {
    /// The uncompressed tar of layer blob `blob` (plain, gzip or zstd), as a stream (the
    /// layer view's, and the EROFS writer's).
    pub(super) fn layer_stream(&self, blob: &str) -> Result<Box<dyn Read>> {
        let path = self.blob_path(blob)?;
        let mut f = File::open(&path).map_err(Error::io("open", &path))?;
        let mut head = [0u8; 4];
        let n = f.read(&mut head).map_err(Error::io("read", &path))?;
        let f = File::open(&path).map_err(Error::io("open", &path))?;
        Ok(if n >= 2 && head[..2] == [0x1f, 0x8b] {
            Box::new(crate::image::gunzip::GzipReader::new(
                BufReader::with_capacity(1 << 16, f),
            ))
        } else if n == 4 && head == [0x28, 0xb5, 0x2f, 0xfd] {
            let d = ruzstd::decoding::StreamingDecoder::new(BufReader::new(f)).map_err(|e| {
                ImageError::BadZstd {
                    blob: blob.to_string(),
                    why: e.to_string(),
                }
            })?;
            Box::new(d)
        } else {
            Box::new(BufReader::new(f))
        })
    }

    /// The size of a layer as Docker shows it (`images`, `history`): from its marker once
    /// unpacked ([`Store::layer_size`]), else counted from its blob's entries
    /// ([`crate::layers::view::docker_size`]: the same rule, read from the tar; a layer built
    /// into the store but never run or pulled is not unpacked). `None` when the blob cannot be
    /// read.
    pub fn docker_layer_size(&self, blob: &str, diff_id: &str) -> Option<u64> {
        self.layer_size(diff_id).or_else(|| {
            self.layer_entries(blob, diff_id)
                .ok()
                .map(|e| crate::layers::view::docker_size(&e))
        })
    }

    /// Every entry of layer `blob` (whose uncompressed digest must be `diff_id`), in tar
    /// order, whiteouts decoded ([`crate::layers::view::read_layer`]).
    pub fn layer_entries(&self, blob: &str, diff_id: &str) -> Result<Vec<Entry>> {
        let hex = hex_of(diff_id)?;
        let mut r = Hashing {
            inner: Capped {
                inner: self.layer_stream(blob)?,
                left: self.limits.max_size,
                over: false,
            },
            hash: Sha256::new(),
        };
        let entries = read_layer(&mut r, blob, self.limits.max_entries);
        if r.inner.over {
            return Err(self.limits.too_big(blob));
        }
        let entries = entries?;
        // What the tar reader left (end-of-archive padding) is part of the diff_id too.
        std::io::copy(&mut r, &mut std::io::sink()).map_err(|e| {
            if r.inner.over {
                self.limits.too_big(blob)
            } else {
                Error::Corrupt(format!("layer {blob}: {e}"))
            }
        })?;
        let got = format!("{:x}", r.hash.finalize());
        if got != hex {
            return Err(ImageError::DiffIdMismatch {
                blob: blob.to_string(),
                got,
                diff_id: diff_id.to_string(),
            }
            .into());
        }
        Ok(entries)
    }
}

#[cfg(test)]
mod tests {
    use super::super::digest_of;
    use super::*;
    use crate::layers::view::Kind;
    use crate::testutil::{tar_of, E};

    #[test]
    fn a_blob_is_read_only_when_it_is_the_layer_the_config_names_and_within_the_limits() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open(&tmp.path().join("root")).unwrap();
        let tar = tar_of(&[
            E::Dir("etc", 0o755),
            E::File("etc/motd", "hi", 0o644),
            E::File("etc/.wh.group", "", 0o644),
        ]);
        let diff_id = digest_of(&tar);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut gz, &tar).unwrap();
        let (blob, _) = store.write_blob(&gz.finish().unwrap()).unwrap();
        let entries = store.layer_entries(&blob, &diff_id).unwrap();
        let names: Vec<(&str, &Kind)> =
            entries.iter().map(|e| (e.path.as_str(), &e.kind)).collect();
        assert_eq!(names.len(), 3);
        assert_eq!(names[2], ("etc/group", &Kind::Whiteout));
        // Another diff_id: refused, whatever the tar says.
        let wrong = format!("sha256:{}", "0".repeat(64));
        let err = store.layer_entries(&blob, &wrong).unwrap_err().to_string();
        assert!(err.contains("tampered"), "{err}");
        // Over max-layer-entries: refused, naming the limit.
        let small = Store::open(&tmp.path().join("root")).unwrap().with_limits(
            crate::layers::unpack::Limits {
                max_entries: 2,
                ..Default::default()
            },
        );
        let err = small
            .layer_entries(&blob, &diff_id)
            .unwrap_err()
            .to_string();
        assert!(err.contains("max-layer-entries"), "{err}");
    }
}
