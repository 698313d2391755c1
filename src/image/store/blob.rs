//! Blobs: content named by its digest (`oci/blobs/sha256/<hex>`). A blob is written under a
//! temporary name, hashed on the way, synced, and renamed into place only when it has the
//! digest expected (`ingest`); read back, it is checked against its name again (`read_blob`).

use std::fs::{self, File};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest as _, Sha256};

use super::Store;
use crate::error::{Error, Result};
use crate::files::{sync_dir, temp_name, write_atomic};
use crate::image::ImageError;

/// Why `Store::ingest` failed.
#[derive(Debug)]
pub enum Ingest {
    /// Reading the source failed (a broken download can be tried again).
    Read(std::io::Error),
    /// The content hashes to this digest, not the one expected.
    Mismatch(String),
    /// The store could not be written.
    Store(Error),
}

/// Reads at most `max` bytes of `inner`; one more is an error, and `over` says so.
pub(crate) struct Capped<R> {
    /// What is read.
    pub(crate) inner: R,
    /// How many more bytes may come.
    pub(crate) left: u64,
    /// Set when one more came: the error is about the size.
    pub(crate) over: bool,
}

impl<R: Read> Read for Capped<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let want = buf
            .len()
            .min(usize::try_from(self.left.saturating_add(1)).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..want])?;
        if n as u64 > self.left {
            self.over = true;
            return Err(std::io::Error::other("larger than max-layer-size"));
        }
        self.left -= n as u64;
        Ok(n)
    }
}

/// `sha256:<hex>` of `data`.
pub fn digest_of(data: &[u8]) -> String {
    format!("sha256:{:x}", Sha256::digest(data))
}

/// True when the blob at `path` is whole: `size` bytes (its descriptor's) and, when `hash`,
/// the content `digest` names. `pull` asks this before it trusts a blob already in the store;
/// hashing can be left out for a large blob about to be checked anyway.
pub fn blob_intact(path: &Path, digest: &str, size: u64, hash: bool) -> bool {
    match fs::metadata(path) {
        Ok(m) if m.is_file() && m.len() == size => {}
        _ => return false,
    }
    !hash || hash_file(path).is_ok_and(|(got, _)| got == digest)
}

/// `sha256:<hex>` and length of a file, streamed (`system fsck` names both when a blob does
/// not hash to its name).
pub(crate) fn hash_file(path: &Path) -> std::io::Result<(String, u64)> {
    let mut f = File::open(path)?;
    let mut hash = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    let mut n = 0u64;
    loop {
        match f.read(&mut buf) {
            Ok(0) => break,
            Ok(got) => {
                hash.update(&buf[..got]);
                n += got as u64;
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
    Ok((format!("sha256:{:x}", hash.finalize()), n))
}

/// A blob being written under a temporary name (`blobs/sha256/.tmp-…`) and hashed as it comes,
/// by a caller that reads the source itself (`pull` streams a layer's body through this and
/// into the unpacker at once). Dropped before [`BlobSink::finish`], the file is removed.
pub struct BlobSink {
    tmp: PathBuf,
    file: Option<File>,
    hash: Sha256,
    n: u64,
    writeback: crate::sys::fs::Writeback,
}

impl BlobSink {
    /// Write the next bytes of the blob.
    pub fn write(&mut self, data: &[u8]) -> Result<()> {
        let f = self.file.as_mut().expect("not finished");
        f.write_all(data)
            .map_err(Error::write("writing a blob", &self.tmp))?;
        self.hash.update(data);
        self.n += data.len() as u64;
        // The disk writes the blob while it still downloads (the commit's one `syncfs` then
        // has little left to wait for).
        self.writeback.wrote(f, self.n);
        crate::fault::point("store.blob.mid_write");
        Ok(())
    }

    /// Bytes written so far.
    pub fn len(&self) -> u64 {
        self.n
    }

    /// True before the first byte.
    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    /// The blob is complete: its digest must be `expected` (else the file is removed and the
    /// digest it has is the error). Not synced: [`Store::commit`] flushes it with everything
    /// else of the pull, then renames it into place.
    pub fn finish(mut self, expected: &str) -> std::result::Result<StagedBlob, Ingest> {
        let got = format!("sha256:{:x}", std::mem::take(&mut self.hash).finalize());
        if got != expected {
            return Err(Ingest::Mismatch(got));
        }
        self.file = None;
        let dest = self.tmp.with_file_name(&got[7..]);
        Ok(StagedBlob {
            tmp: std::mem::take(&mut self.tmp),
            dest,
            done: false,
        })
    }
}

impl Drop for BlobSink {
    fn drop(&mut self) {
        if !self.tmp.as_os_str().is_empty() {
            let _ = fs::remove_file(&self.tmp);
        }
    }
}

/// A whole blob whose digest matched, under its temporary name until [`Store::commit`] renames
/// it to its digest (after the one `syncfs`); dropped before, the file is removed.
pub struct StagedBlob {
    tmp: PathBuf,
    dest: PathBuf,
    done: bool,
}

impl StagedBlob {
    /// The digest it is checked to have.
    pub fn digest(&self) -> String {
        format!(
            "sha256:{}",
            self.dest.file_name().unwrap_or_default().to_string_lossy()
        )
    }

    /// Rename into place (the caller syncs the directory).
    pub(super) fn rename(&mut self) -> Result<()> {
        fs::rename(&self.tmp, &self.dest).map_err(Error::io("rename", &self.dest))?;
        self.done = true;
        Ok(())
    }
}

impl Drop for StagedBlob {
    fn drop(&mut self) {
        if !self.done {
            let _ = fs::remove_file(&self.tmp);
        }
    }
}

impl Store {
    /// Start writing a blob under a temporary name (see [`BlobSink`]); `expected` is leased
    /// first, so garbage collection keeps it once renamed.
    pub fn blob_sink(&self, expected: &str) -> Result<BlobSink> {
        self.claim(&[expected])?;
        let tmp = self.oci.join("blobs/sha256").join(temp_name());
        let file = File::create(&tmp).map_err(Error::write("creating a blob", &tmp))?;
        Ok(BlobSink {
            tmp,
            file: Some(file),
            hash: Sha256::new(),
            n: 0,
            writeback: Default::default(),
        })
    }

    /// Read a blob, checking its digest.
    pub fn read_blob(&self, digest: &str) -> Result<Vec<u8>> {
        let p = self.blob_path(digest)?;
        let data = fs::read(&p).map_err(Error::io("read blob", &p))?;
        let got = digest_of(&data);
        if got != digest {
            return Err(ImageError::CorruptBlob {
                digest: digest.to_string(),
                got,
            }
            .into());
        }
        Ok(data)
    }

    /// Stream `reader` into a blob: written under a temporary name, hashed on the way, synced,
    /// and renamed into place only if it has the `expected` digest (when one is given).
    /// `progress` hears of every chunk. Nothing is left behind on any error.
    pub fn ingest(
        &self,
        reader: &mut dyn Read,
        expected: Option<&str>,
        progress: &mut dyn FnMut(u64),
    ) -> std::result::Result<(String, u64), Ingest> {
        let blobs = self.oci.join("blobs/sha256");
        if let Some(d) = expected {
            self.claim(&[d]).map_err(Ingest::Store)?;
        }
        let tmp = blobs.join(temp_name());
        let mut file = File::create(&tmp)
            .map_err(|e| Ingest::Store(Error::write("creating a blob", &tmp)(e)))?;
        let mut hash = Sha256::new();
        let mut n = 0u64;
        let mut buf = vec![0u8; 1 << 16];
        // A failed read (a broken download: worth another try) is kept apart from a failed
        // write (a full disk: another try cannot help, and must say so once).
        let copied = (|| -> std::result::Result<(), Ingest> {
            loop {
                let got = match reader.read(&mut buf) {
                    Ok(0) => return Ok(()),
                    Ok(got) => got,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(Ingest::Read(e)),
                };
                hash.update(&buf[..got]);
                file.write_all(&buf[..got])
                    .map_err(|e| Ingest::Store(Error::write("writing a blob", &tmp)(e)))?;
                n += got as u64;
                progress(got as u64);
                crate::fault::point("store.blob.mid_write");
            }
        })();
        let digest = format!("sha256:{:x}", hash.finalize());
        let fail = |e| {
            let _ = fs::remove_file(&tmp);
            e
        };
        copied.map_err(fail)?;
        if expected.is_some_and(|d| d != digest) {
            return Err(fail(Ingest::Mismatch(digest)));
        }
        // Delayed allocation can report the full disk only here (fsync(2): ENOSPC, EDQUOT).
        file.sync_all()
            .map_err(|e| fail(Ingest::Store(Error::write("writing a blob", &tmp)(e))))?;
        self.claim(&[&digest]).map_err(|e| fail(Ingest::Store(e)))?;
        let dest = blobs.join(&digest[7..]);
        crate::fault::check("pull.blob.before_rename").map_err(|e| fail(Ingest::Store(e)))?;
        fs::rename(&tmp, &dest).map_err(|e| fail(Ingest::Store(Error::io("rename", &dest)(e))))?;
        sync_dir(&blobs).map_err(Ingest::Store)?;
        Ok((digest, n))
    }

    /// Store bytes as a blob; returns (digest, size).
    pub fn write_blob(&self, data: &[u8]) -> Result<(String, u64)> {
        let digest = digest_of(data);
        let p = self.blob_path(&digest)?;
        self.claim(&[&digest])?;
        // A damaged copy (truncated, overwritten) is replaced, not trusted for its name.
        if !blob_intact(&p, &digest, data.len() as u64, true) {
            write_atomic(&p, data)?;
        }
        Ok((digest, data.len() as u64))
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::import;
    use super::*;

    #[test]
    fn a_corrupt_blob_is_detected() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open(&tmp.path().join("root")).unwrap();
        let img = import(&store, tmp.path(), "busybox", &[]);
        fs::write(store.blob_path(&img.id).unwrap(), b"{}").unwrap();
        assert!(store
            .find("busybox")
            .unwrap_err()
            .to_string()
            .contains("corrupt"));
    }
}
