//! Unpacking a layer blob (plain tar, gzip or zstd) into `layers/sha256/<diff_id>/`, once per
//! layer however many commands ask at the same time (a per-object lock), checked against the
//! diff_id the image config promises and held to the configured limits, synced before its
//! marker says it is complete.

use std::fs::{self, File};
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

use sha2::{Digest as _, Sha256};

use super::{hex_of, Capped, Image, StagedBlob, Store};
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

/// A layer unpacked into a staging directory (`layers/sha256/.tmp-<pid>-<start>-<random>`),
/// or with `--layers erofs` written as an EROFS image into one (`layers/erofs/.tmp-…`,
/// [`Store::stage_layer`]), and checked against its diff_id, not yet a layer:
/// [`Store::commit`] makes it one (after the one `syncfs`), and dropped without that, the
/// staging directory is removed. A killed process leaves only the staging directory, which a
/// temporary name of a dead owner is: the next command's sweep or `system fsck --repair`
/// removes it.
pub struct StagedLayer {
    pub(super) tmp: PathBuf,
    pub(super) diff_id: String,
    pub(super) tar_size: u64,
    pub(super) made: Made,
    pub(super) done: bool,
}

/// What staging a layer made.
#[derive(Debug, Clone, Copy)]
pub enum Made {
    /// A directory tree, unpacked.
    Unpacked(crate::layers::unpack::UnpackStats),
    /// An EROFS image of the tar (`--layers erofs`): no file of the layer created.
    Erofs(crate::layers::erofs::BuildStats),
}

impl StagedLayer {
    /// What the unpack (or the EROFS writer) made.
    pub fn made(&self) -> Made {
        self.made
    }

    /// The diff_id this layer was checked against.
    pub fn diff_id(&self) -> &str {
        &self.diff_id
    }

    /// The uncompressed tar's length.
    pub fn tar_size(&self) -> u64 {
        self.tar_size
    }
}

impl Drop for StagedLayer {
    fn drop(&mut self) {
        if !self.done {
            let _ = fs::remove_dir_all(&self.tmp);
        }
    }
}

/// The uncompressed tar of a layer blob streaming from `compressed` (gzip, zstd or plain
/// tar: told from its first bytes, never from its media type). `source` names the blob in
/// errors.
pub(super) fn decoder<'a>(
    compressed: &'a mut dyn Read,
    blob: &str,
    source: &Path,
) -> Result<Box<dyn Read + 'a>> {
    let mut head = [0u8; 4];
    let n = read_head(compressed, &mut head).map_err(Error::io("read", source))?;
    let whole = std::io::Cursor::new(head).take(n as u64).chain(compressed);
    Ok(if n >= 2 && head[..2] == [0x1f, 0x8b] {
        Box::new(crate::image::gunzip::GzipReader::new(
            BufReader::with_capacity(1 << 16, whole),
        ))
    } else if n == 4 && head == [0x28, 0xb5, 0x2f, 0xfd] {
        match ruzstd::decoding::StreamingDecoder::new(BufReader::new(whole)) {
            Ok(d) => Box::new(d),
            Err(e) => {
                return Err(ImageError::BadZstd {
                    blob: blob.to_string(),
                    why: e.to_string(),
                }
                .into())
            }
        }
    } else {
        Box::new(whole)
    })
}

/// Read up to `head.len()` bytes (fewer only at the end of the stream): a network body may
/// come a byte at a time, and the compression is told from the first four.
fn read_head(r: &mut dyn Read, head: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < head.len() {
        match r.read(&mut head[n..]) {
            Ok(0) => break,
            Ok(got) => n += got,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

impl Store {
    /// Unpack layer blob `blob` into `layers/sha256/<diff_id>` unless already there, checking
    /// that its uncompressed content has the digest the image config promised.
    pub fn ensure_unpacked(&self, blob: &str, diff_id: &str) -> Result<PathBuf> {
        // `--layers erofs`: the layer stays a tar, with an index to mount it by.
        if self.erofs {
            return self.ensure_erofs(blob, diff_id);
        }
        let dir = self.layer_path(diff_id)?;
        // Complete: nothing to write, nothing to lease (a `run` of an image it holds).
        if self.layer_complete(diff_id) {
            return Ok(dir);
        }
        let Some(_unpacking) = self.layer_slot(blob, diff_id)? else {
            return Ok(dir);
        };
        let path = self.blob_path(blob)?;
        let mut f = File::open(&path).map_err(Error::io("open", &path))?;
        let staged = self.stage_layer(&mut f, blob, diff_id)?;
        self.commit(Vec::new(), vec![staged])?;
        Ok(dir)
    }

    /// The right to unpack layer `diff_id` (of blob `blob`): leased, then its per-object lock,
    /// held until the staged layer is committed; `None` when another command completed it
    /// meanwhile (or before).
    pub fn layer_slot(&self, blob: &str, diff_id: &str) -> Result<Option<crate::files::PathLock>> {
        self.claim(&[blob, diff_id])?;
        // One unpack per layer at a time: another command unpacking it is waited for.
        let lock = self.object_lock("layer", diff_id)?;
        Ok(self.layer_missing(diff_id)?.then_some(lock))
    }

    /// For a caller that holds layer `diff_id`'s lock: true when it still has to be unpacked.
    /// A directory without its marker is what a killed unpack or delete left: never trusted,
    /// moved to the trash.
    pub fn layer_missing(&self, diff_id: &str) -> Result<bool> {
        // `--layers erofs`: its image, which is complete once under its name (a directory
        // without `layer.erofs` is replaced when the new one is committed).
        if self.erofs {
            return Ok(!self.erofs_ready(diff_id));
        }
        if self.layer_complete(diff_id) {
            return Ok(false);
        }
        let dir = self.layer_path(diff_id)?;
        if fs::symlink_metadata(&dir).is_ok() {
            self.trash(&dir)?;
        }
        Ok(true)
    }

    /// Unpack the layer blob streaming from `compressed` (gzip, zstd or plain tar: told from
    /// its first bytes, never from its media type) into a staging directory, hashing the
    /// uncompressed stream on the way, and check it against `diff_id` when the stream ends.
    /// The caller holds the layer's slot ([`Store::layer_slot`]). On any error the staging
    /// directory is gone; on success it is not yet a layer (see [`StagedLayer`]).
    pub fn stage_layer(
        &self,
        compressed: &mut dyn Read,
        blob: &str,
        diff_id: &str,
    ) -> Result<StagedLayer> {
        // `--layers erofs`: the tar kept and indexed as it streams in, nothing unpacked.
        if self.erofs {
            return self.stage_erofs(compressed, blob, diff_id);
        }
        hex_of(diff_id)?;
        let tmp = self.layers.join(temp_name());
        fs::create_dir(&tmp).map_err(Error::io("create", &tmp))?;
        let mut staged = StagedLayer {
            tmp,
            diff_id: diff_id.to_string(),
            tar_size: 0,
            made: Made::Unpacked(Default::default()),
            done: false,
        };
        let tmp = staged.tmp.clone();
        let source = self.blob_path(blob)?;
        let decoded = decoder(compressed, blob, &source)?;
        let mut reader = HashingReader {
            inner: decoded,
            hash: Sha256::new(),
            n: 0,
        };
        let result = crate::layers::unpack::unpack(&mut reader, &tmp, blob, &self.limits).and_then(
            |stats| {
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
                        Error::io("read", &source)(e)
                    });
                }
                check_diff_id(blob, diff_id, format!("{:x}", reader.hash.finalize_reset()))?;
                Ok(stats)
            },
        );
        match result {
            Ok(stats) => {
                staged.tar_size = reader.n;
                staged.made = Made::Unpacked(stats);
                Ok(staged)
            }
            Err(e) => {
                // A write that failed because the disk is full surfaces from the unpacker as a
                // bad entry; asked before the half-unpacked tree is removed (which frees the
                // space), the file system says which it was.
                if disk_full(&tmp) {
                    return Err(Error::NoSpace {
                        dir: self.layers.clone(),
                        doing: format!("unpacking layer {blob}"),
                        quota: false,
                    });
                }
                Err(e)
            }
        }
    }

    /// Make staged blobs and layers part of the store, durably, in the order that keeps a
    /// crash safe: one `syncfs(2)` of the store's file system flushes everything they wrote
    /// (no fsync per file or per blob); then each blob is renamed to its digest and each layer
    /// directory to its diff_id, the directories synced (a rename is durable only once its
    /// directory is), and last each layer's marker written (atomically). Killed before the
    /// renames, only temporary names are left; after, a layer directory without its marker,
    /// which is never trusted (moved to the trash and unpacked again).
    pub fn commit(&self, blobs: Vec<StagedBlob>, layers: Vec<StagedLayer>) -> Result<()> {
        if blobs.is_empty() && layers.is_empty() {
            return Ok(());
        }
        let blob_dir = self.oci.join("blobs/sha256");
        let erofs_dir = self.erofs_dir();
        let (erofs, layers): (Vec<_>, Vec<_>) = layers
            .into_iter()
            .partition(|l| matches!(l.made, Made::Erofs(_)));
        let mut synced = Vec::new();
        let mut dirs = vec![&self.layers, &blob_dir];
        if !erofs.is_empty() {
            dirs.push(&erofs_dir);
        }
        for dir in dirs {
            let d = File::open(dir).map_err(Error::io("open", dir))?;
            let dev = d.metadata().map_err(Error::io("stat", dir))?;
            let dev = std::os::unix::fs::MetadataExt::dev(&dev);
            // One flush per file system (the blobs and the layers share one but for a store
            // split over mounts).
            if synced.contains(&dev) {
                continue;
            }
            synced.push(dev);
            nix::unistd::syncfs(std::os::fd::AsRawFd::as_raw_fd(&d))
                .map_err(|e| self.write_error(dir, "syncing the store", e.into()))?;
        }
        if !blobs.is_empty() {
            for mut b in blobs {
                crate::fault::check("pull.blob.before_rename")?;
                b.rename()?;
                crate::fault::check("pull.blob.renamed")?;
            }
            sync_dir(&blob_dir)?;
        }
        if !erofs.is_empty() {
            self.place_erofs(erofs)?;
        }
        if layers.is_empty() {
            return Ok(());
        }
        let mut placed = Vec::new();
        for mut l in layers {
            let dir = self.layer_path(&l.diff_id)?;
            fs::rename(&l.tmp, &dir).map_err(Error::io("rename", &dir))?;
            l.done = true;
            placed.push((dir, l));
        }
        sync_dir(&self.layers)?;
        for (dir, l) in placed {
            crate::fault::point("store.layer.before_marker");
            // The marker holds the layer's size as Docker counts it (content, not tar
            // headers: `images` and `history` show it) and the uncompressed tar's length.
            // Counted while unpacking; measured again (a walk of the tree) only when an entry
            // replaced another, which the count cannot follow.
            let content = match l.made {
                Made::Unpacked(stats) if stats.replaced => crate::sys::fs::open_root(&dir)
                    .and_then(|fd| crate::sys::fs::docker_tree_size(std::os::fd::AsFd::as_fd(&fd)))
                    .map_err(Error::io("measure", &dir))?,
                Made::Unpacked(stats) => stats.content,
                // Placed above, never here.
                Made::Erofs(stats) => stats.content_size,
            };
            write_atomic(
                &self.layer_marker(&l.diff_id)?,
                format!("content-size {content}\ntar-size {}\n", l.tar_size).as_bytes(),
            )?;
        }
        Ok(())
    }

    /// A failed write of the store: a full disk is said as such.
    pub(super) fn write_error(&self, dir: &Path, doing: &str, e: std::io::Error) -> Error {
        match e.raw_os_error() {
            Some(libc::ENOSPC) | Some(libc::EDQUOT) => Error::NoSpace {
                dir: dir.to_path_buf(),
                doing: doing.to_string(),
                quota: e.raw_os_error() == Some(libc::EDQUOT),
            },
            _ => Error::io("sync", dir)(e),
        }
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

/// The uncompressed layer of `blob` hashed to `got` (hex): it must be the `diff_id` the image
/// config promises, or nothing of it is kept.
pub(super) fn check_diff_id(blob: &str, diff_id: &str, got: String) -> Result<()> {
    if got == hex_of(diff_id)? {
        return Ok(());
    }
    Err(ImageError::DiffIdMismatch {
        blob: blob.to_string(),
        got,
        diff_id: diff_id.to_string(),
    }
    .into())
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
    fn the_size_counted_while_unpacking_is_the_size_of_the_tree() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open(&tmp.path().join("root")).unwrap();
        let mut b = tar::Builder::new(Vec::new());
        let mut add = |kind: tar::EntryType, name: &str, data: &[u8], link: Option<&str>| {
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(kind);
            h.set_mode(0o644);
            h.set_size(data.len() as u64);
            if let Some(l) = link {
                h.set_link_name(l).unwrap();
            }
            b.append_data(&mut h, name, data).unwrap();
        };
        add(tar::EntryType::Directory, "etc/", b"", None);
        add(tar::EntryType::Regular, "etc/a", b"twelve bytes", None);
        add(tar::EntryType::Regular, "etc/empty", b"", None);
        add(tar::EntryType::Symlink, "etc/to-a", b"", Some("/etc/a"));
        add(tar::EntryType::Link, "etc/a2", b"", Some("etc/a"));
        add(
            tar::EntryType::Regular,
            "usr/lib/deep/x",
            &[7u8; 3000],
            None,
        );
        add(tar::EntryType::Regular, "etc/.wh.gone", b"", None);
        add(tar::EntryType::Fifo, "etc/fifo", b"", None);
        let tar = b.into_inner().unwrap();
        let diff_id = digest_of(&tar);
        let (blob, _) = store.write_blob(&tar).unwrap();
        let l = store.stage_layer(&mut &tar[..], &blob, &diff_id).unwrap();
        let Made::Unpacked(stats) = l.made() else {
            panic!("unpacked, not an EROFS image")
        };
        assert!(!stats.replaced);
        let walked = crate::sys::fs::docker_tree_size(std::os::fd::AsFd::as_fd(
            &crate::sys::fs::open_root(&l.tmp).unwrap(),
        ))
        .unwrap();
        assert_eq!(stats.content, walked);
        assert_eq!(walked, 12 + 6 + 3000);
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
