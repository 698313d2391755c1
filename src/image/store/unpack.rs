//! Unpacking a layer blob (plain tar, gzip or zstd) into `layers/sha256/<diff_id>/`, once per
//! layer however many commands ask at the same time (a per-object lock), checked against the
//! diff_id the image config promises and held to the configured limits, synced before its
//! marker says it is complete.

use std::fs::{self, File};
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

use sha2::{Digest as _, Sha256};

use super::{hex_of, Capped, Image, Store};
use crate::error::{Error, Result};
use crate::files::{sync_dir, temp_name, write_atomic};
use crate::image::ImageError;

/// Hashes everything read through it.
struct HashingReader<R> {
    inner: R,
    hash: Sha256,
    n: u64,
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hash.update(&buf[..n]);
        self.n += n as u64;
        Ok(n)
    }
}

/// True when the file system holding `path` has (almost) no room left: less than 128 KiB
/// for an unprivileged writer, or no free inode (statvfs(3)).
fn disk_full(path: &Path) -> bool {
    nix::sys::statvfs::statvfs(path).is_ok_and(|s| {
        s.blocks_available().saturating_mul(s.fragment_size()) < 128 << 10
            || (s.files() > 0 && s.files_available() == 0)
    })
}

impl Store {
    /// Unpack layer blob `blob` into `layers/sha256/<diff_id>` unless already there, checking
    /// that its uncompressed content has the digest the image config promised.
    pub fn ensure_unpacked(&self, blob: &str, diff_id: &str) -> Result<PathBuf> {
        // `--layers erofs`: the layer stays a tar, with an index to mount it by.
        if self.erofs {
            return self.ensure_erofs(blob, diff_id);
        }
        let hex = hex_of(diff_id)?;
        let dir = self.layers.join(hex);
        // Complete: nothing to write, nothing to lease (a `run` of an image it holds).
        if self.layer_complete(diff_id) {
            return Ok(dir);
        }
        self.claim(&[blob, diff_id])?;
        // One unpack per layer at a time: another command unpacking it is waited for.
        let _unpacking = self.object_lock("layer", diff_id)?;
        if self.layer_complete(diff_id) {
            return Ok(dir);
        }
        // A directory without its marker is what a killed unpack or delete left: never
        // trusted, removed and unpacked again.
        if fs::symlink_metadata(&dir).is_ok() {
            self.trash(&dir)?;
        }
        let tmp = self.layers.join(temp_name());
        fs::create_dir_all(&tmp).map_err(Error::io("create", &tmp))?;
        let path = self.blob_path(blob)?;
        let f = File::open(&path).map_err(Error::io("open", &path))?;
        let mut head = [0u8; 4];
        let n = File::open(&path)
            .and_then(|mut g| g.read(&mut head))
            .unwrap_or(0);
        let compressed: Box<dyn Read> = if n >= 2 && head[..2] == [0x1f, 0x8b] {
            Box::new(flate2::read::GzDecoder::new(BufReader::new(f)))
        } else if n == 4 && head == [0x28, 0xb5, 0x2f, 0xfd] {
            match ruzstd::decoding::StreamingDecoder::new(BufReader::new(f)) {
                Ok(d) => Box::new(d),
                Err(e) => {
                    let _ = fs::remove_dir_all(&tmp);
                    return Err(ImageError::BadZstd {
                        blob: blob.to_string(),
                        why: e.to_string(),
                    }
                    .into());
                }
            }
        } else {
            Box::new(BufReader::new(f))
        };
        let mut reader = HashingReader {
            inner: compressed,
            hash: Sha256::new(),
            n: 0,
        };
        let result =
            crate::layers::unpack::unpack(&mut reader, &tmp, blob, &self.limits).and_then(|_| {
                // Hash what the tar reader left unread (end-of-archive padding) too, within the
                // same limit: a small tar followed by terabytes of compressed zeros is a bomb too.
                let left = self.limits.max_size.saturating_sub(reader.n);
                let mut rest = Capped {
                    inner: &mut reader,
                    left,
                    over: false,
                };
                if let Err(e) = std::io::copy(&mut rest, &mut std::io::sink()) {
                    return Err(if rest.over {
                        self.limits.too_big(blob)
                    } else {
                        Error::io("read", &path)(e)
                    });
                }
                let got = format!("{:x}", reader.hash.finalize_reset());
                if got != hex {
                    return Err(ImageError::DiffIdMismatch {
                        blob: blob.to_string(),
                        got,
                        diff_id: diff_id.to_string(),
                    }
                    .into());
                }
                Ok(())
            });
        if let Err(e) = result {
            // A write that failed because the disk is full surfaces from the unpacker as a bad
            // entry; asked before the half-unpacked tree is removed (which frees the space),
            // the file system says which it was.
            let e = if disk_full(&tmp) {
                Error::NoSpace {
                    dir: self.layers.clone(),
                    doing: format!("unpacking layer {blob}"),
                    quota: false,
                }
            } else {
                e
            };
            let _ = fs::remove_dir_all(&tmp);
            return Err(e);
        }
        // Everything unpacked reaches the disk before the marker says it is there:
        // syncfs(2) flushes the file system once, cheaper than an fsync per file.
        let synced = File::open(&tmp).and_then(|d| {
            nix::unistd::syncfs(std::os::fd::AsRawFd::as_raw_fd(&d)).map_err(std::io::Error::from)
        });
        if let Err(e) = synced {
            let _ = fs::remove_dir_all(&tmp);
            return Err(Error::io("sync", &tmp)(e));
        }
        if let Err(e) = fs::rename(&tmp, &dir) {
            let _ = fs::remove_dir_all(&tmp);
            return Err(Error::io("rename", &dir)(e));
        }
        sync_dir(&self.layers)?;
        crate::fault::point("store.layer.before_marker");
        // The marker holds the layer's size as Docker counts it (content, not tar headers:
        // `images` and `history` show it) and the uncompressed tar's length.
        let content = crate::sys::fs::open_root(&dir)
            .and_then(|fd| crate::sys::fs::docker_tree_size(std::os::fd::AsFd::as_fd(&fd)))
            .map_err(Error::io("measure", &dir))?;
        write_atomic(
            &self.layer_marker(diff_id)?,
            format!("content-size {content}\ntar-size {}\n", reader.n).as_bytes(),
        )?;
        Ok(dir)
    }

    /// The unpacked layer directories of `image`, bottom first (unpacking any that are missing).
    pub fn layer_dirs(&self, image: &Image) -> Result<Vec<PathBuf>> {
        image
            .layers
            .iter()
            .zip(&image.diff_ids)
            .map(|(b, d)| self.ensure_unpacked(b, d))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::super::tests::rootfs_tar;
    use super::*;
    use crate::image::store::digest_of;

    #[test]
    fn a_small_layer_trailed_by_a_flood_of_zeros_is_refused_as_a_bomb() {
        let tmp = tempfile::tempdir().unwrap();
        let limits = crate::layers::unpack::Limits {
            max_size: 1 << 20,
            ..Default::default()
        };
        let store = Store::open(&tmp.path().join("root"))
            .unwrap()
            .with_limits(limits);
        // A valid tar, then megabytes after its end: compressed, a few kilobytes.
        let mut tar = rootfs_tar();
        tar.resize(tar.len() + (4 << 20), 0);
        let diff_id = digest_of(&tar);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        gz.write_all(&tar).unwrap();
        let (blob, size) = store.write_blob(&gz.finish().unwrap()).unwrap();
        assert!(size < 64 << 10);
        let err = store
            .ensure_unpacked(&blob, &diff_id)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(&format!("layer {blob}: refused")) && err.contains("max-layer-size"),
            "{err}"
        );
        let left: Vec<_> = fs::read_dir(tmp.path().join("root/layers/sha256"))
            .unwrap()
            .collect();
        assert!(left.is_empty(), "left behind: {left:?}");
        // The same layer within the limit unpacks.
        let store = Store::open(&tmp.path().join("root")).unwrap();
        store.ensure_unpacked(&blob, &diff_id).unwrap();
    }

    #[test]
    fn zstd_layers_unpack_and_are_checked_against_their_diff_id() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open(&tmp.path().join("root")).unwrap();
        let tar = rootfs_tar();
        let diff_id = digest_of(&tar);
        let zst = ruzstd::encoding::compress_to_vec(
            &tar[..],
            ruzstd::encoding::CompressionLevel::Fastest,
        );
        assert_eq!(&zst[..4], &[0x28, 0xb5, 0x2f, 0xfd]);
        let (blob, _) = store.write_blob(&zst).unwrap();
        let dir = store.ensure_unpacked(&blob, &diff_id).unwrap();
        assert_eq!(
            fs::read_to_string(dir.join("etc/hostname")).unwrap(),
            "hello"
        );
        // Docker's size: the content (5 bytes of /etc/hostname...), not the tar's length.
        let content = crate::sys::fs::docker_tree_size(std::os::fd::AsFd::as_fd(
            &crate::sys::fs::open_root(&dir).unwrap(),
        ))
        .unwrap();
        assert!(content < tar.len() as u64);
        assert_eq!(store.layer_size(&diff_id), Some(content));
        // A marker of an older dockling (the tar's length alone): the directory is measured.
        fs::write(store.layer_marker(&diff_id).unwrap(), tar.len().to_string()).unwrap();
        assert_eq!(store.layer_size(&diff_id), Some(content));
        // The same blob claimed to be another layer is refused, and leaves nothing.
        let wrong = format!("sha256:{}", "0".repeat(64));
        let err = store
            .ensure_unpacked(&blob, &wrong)
            .unwrap_err()
            .to_string();
        assert!(err.contains("tampered"), "{err}");
        assert!(!tmp
            .path()
            .join("root/layers/sha256")
            .join("0".repeat(64))
            .exists());
    }
}
