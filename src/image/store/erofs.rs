//! `--layers erofs` in the store: a layer as one file, `layers/erofs/<diff_id hex>/layer.erofs`
//! (its uncompressed tar with an EROFS index around it, [`crate::layers::erofs`]), beside the
//! empty directory `root/` it is mounted on. No file of the layer is created on the host disk.
//! Written under a temporary name and renamed whole once synced: a directory of that name is
//! complete. The blob's digest was checked when it was downloaded; its uncompressed content is
//! checked against the diff_id the image config promises before the index is written.

use std::fs::{self, File};
use std::io::{BufWriter, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

use sha2::{Digest as _, Sha256};

use super::{hex_of, Capped, Store};
use crate::error::{Error, Result};
use crate::files::{sync_dir, temp_name};
use crate::layers::erofs::TAR_OFFSET;

impl Store {
    /// `layers/erofs`: one directory per layer kept as an EROFS image.
    pub fn erofs_dir(&self) -> PathBuf {
        self.layers.with_file_name("erofs")
    }

    /// The directory layer `diff_id`'s EROFS image is mounted on.
    pub fn erofs_root(&self, diff_id: &str) -> Result<PathBuf> {
        Ok(self.erofs_dir().join(hex_of(diff_id)?).join("root"))
    }

    /// Whether this store keeps its layers as EROFS images (`--layers erofs`, config
    /// `layers: erofs`): a pull then downloads the blobs and writes their images, and
    /// unpacks nothing.
    pub fn erofs_mode(&self) -> bool {
        self.erofs
    }

    /// Whether layer `diff_id`'s EROFS image is written.
    pub fn erofs_ready(&self, diff_id: &str) -> bool {
        self.erofs_root(diff_id)
            .ok()
            .and_then(|r| r.parent().map(|d| d.join("layer.erofs").is_file()))
            .unwrap_or(false)
    }

    /// Write layer blob `blob` as an EROFS image unless it is there, checking its tar against
    /// `diff_id`. Returns the directory it mounts on (not mounted here: see
    /// [`crate::layers::erofs::mount_layers`]).
    pub fn ensure_erofs(&self, blob: &str, diff_id: &str) -> Result<PathBuf> {
        let root = self.erofs_root(diff_id)?;
        let dir = root
            .parent()
            .expect("root is in its layer's directory")
            .to_path_buf();
        if dir.join("layer.erofs").is_file() {
            return Ok(root);
        }
        self.claim(&[blob, diff_id])?;
        let _writing = self.object_lock("erofs", diff_id)?;
        if dir.join("layer.erofs").is_file() {
            return Ok(root);
        }
        let parent = self.erofs_dir();
        fs::create_dir_all(&parent).map_err(Error::io("create", &parent))?;
        // Only root looks in: the layers' files are the image's, setuid ones included.
        fs::set_permissions(&parent, fs::Permissions::from_mode(0o700))
            .map_err(Error::io("chmod", &parent))?;
        let tmp = parent.join(temp_name());
        let result = self.write_erofs(blob, diff_id, &tmp).and_then(|()| {
            if fs::symlink_metadata(&dir).is_ok() {
                // A directory without its image: what a killed removal left.
                remove_layer_dir(&dir)?;
            }
            fs::rename(&tmp, &dir).map_err(Error::io("rename", &dir))?;
            sync_dir(&parent)
        });
        if let Err(e) = result {
            let _ = fs::remove_dir_all(&tmp);
            return Err(e);
        }
        Ok(root)
    }

    /// Docker's size of layer `diff_id` kept as an EROFS image (`layers/erofs/<hex>/size`,
    /// written with it), so that listing an image never reads its blobs again.
    pub fn erofs_layer_size(&self, diff_id: &str) -> Option<u64> {
        self.erofs_size_field(diff_id, "content-size")
    }

    /// A field of layer `diff_id`'s `size` file: `content-size N` (Docker's size) and
    /// `tar-size M` (the length of the tar kept at byte 4096 of `layer.erofs`); an image
    /// written before the file said both holds the content size alone.
    fn erofs_size_field(&self, diff_id: &str, field: &str) -> Option<u64> {
        let root = self.erofs_root(diff_id).ok()?;
        let text = fs::read_to_string(root.with_file_name("size")).ok()?;
        let value = match text.lines().find_map(|l| l.strip_prefix(field)) {
            Some(v) => v,
            None if field == "content-size" && !text.contains(' ') => &text,
            None => return None,
        };
        value.trim().parse().ok()
    }

    /// `sha256:<hex>` of the tar kept in layer `diff_id`'s `layer.erofs` (`system fsck`
    /// holds it against the diff_id: the mounted files are read from it), read through the
    /// descriptor of the image; `None` when the tar's length was not written down (an image
    /// of an older dockling), which leaves nothing to check.
    pub fn erofs_tar_digest(&self, diff_id: &str) -> Option<std::io::Result<String>> {
        let len = self.erofs_size_field(diff_id, "tar-size")?;
        let root = self.erofs_root(diff_id).ok()?;
        let image = crate::layers::erofs::image_of(&root);
        Some((|| {
            let mut f = File::open(&image)?;
            f.seek(SeekFrom::Start(TAR_OFFSET))?;
            let mut hash = Sha256::new();
            let copied = std::io::copy(&mut f.take(len), &mut HashWriter(&mut hash))?;
            if copied != len {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    format!(
                        "{} holds {copied} of its tar's {len} bytes",
                        image.display()
                    ),
                ));
            }
            Ok(format!("sha256:{:x}", hash.finalize()))
        })())
    }

    /// Unmount and remove layer `diff_id`'s EROFS image under its lock (`system fsck
    /// --repair` of a damaged one: the next run or pull writes it again from its blob).
    pub fn discard_erofs(&self, diff_id: &str) -> Result<()> {
        let dir = self
            .erofs_root(diff_id)?
            .parent()
            .expect("root is in its layer's directory")
            .to_path_buf();
        let _lock = self.object_lock("erofs", diff_id)?;
        unmount_layer(&dir.join("root"))?;
        remove_layer_dir(&dir)
    }

    /// Bytes the store's EROFS layers take on disk: each `layer.erofs`, the layer's kept tar
    /// and its index (`system df`).
    pub fn erofs_usage(&self) -> u64 {
        fs::read_dir(self.erofs_dir())
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| fs::metadata(e.path().join("layer.erofs")).ok())
            .map(|m| m.len())
            .sum()
    }

    /// Bytes layer `diff_id` takes in the store, as `system df` counts them: its unpacked
    /// size (the marker's) if it is unpacked, and its `layer.erofs` if it is kept as one; a
    /// layer used both ways has both.
    pub fn layer_disk_bytes(&self, diff_id: &str) -> u64 {
        let unpacked = if self.layer_marker(diff_id).is_ok_and(|m| m.is_file()) {
            self.layer_size(diff_id).unwrap_or(0)
        } else {
            0
        };
        let erofs = self
            .erofs_root(diff_id)
            .ok()
            .and_then(|r| fs::metadata(crate::layers::erofs::image_of(&r)).ok())
            .map_or(0, |m| m.len());
        unpacked + erofs
    }

    fn write_erofs(&self, blob: &str, diff_id: &str, tmp: &std::path::Path) -> Result<()> {
        hex_of(diff_id)?;
        fs::create_dir_all(tmp.join("root")).map_err(Error::io("create", tmp))?;
        let image = tmp.join("layer.erofs");
        let mut out = File::options()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&image)
            .map_err(Error::io("create", &image))?;
        let path = self.blob_path(blob)?;
        let reader = self.layer_stream(blob)?;
        let mut capped = Capped {
            inner: reader,
            left: self.limits.max_size,
            over: false,
        };
        // The tar goes in as it comes, hashed on the way: the diff_id check.
        out.seek(SeekFrom::Start(TAR_OFFSET))
            .map_err(Error::io("seek", &image))?;
        let mut hash = Sha256::new();
        let mut w = BufWriter::with_capacity(1 << 20, &mut out);
        let mut buf = vec![0u8; 1 << 17];
        let mut tar_len = 0u64;
        loop {
            let got = match capped.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(_) if capped.over => return Err(self.limits.too_big(blob)),
                Err(e) => return Err(Error::io("read", &path)(e)),
            };
            hash.update(&buf[..got]);
            w.write_all(&buf[..got])
                .map_err(Error::io("write", &image))?;
            tar_len += got as u64;
        }
        w.flush().map_err(Error::io("write", &image))?;
        drop(w);
        super::unpack::check_diff_id(blob, diff_id, format!("{:x}", hash.finalize()))?;
        // Debug builds' fault point: the tar is in, the index not yet.
        crate::fault::check("store.erofs.before_index")?;
        let stats = crate::layers::erofs::build(&out, tar_len, blob, self.limits.max_entries)?;
        out.sync_all().map_err(Error::io("sync", &image))?;
        crate::files::write_atomic(
            &tmp.join("size"),
            format!("content-size {}\ntar-size {tar_len}\n", stats.content_size).as_bytes(),
        )?;
        Ok(())
    }
}

impl Store {
    /// Remove the EROFS layers whose diff_id is not in `keep` (and what killed writers left):
    /// each under its lock (as [`crate::layers::erofs::mount_layers`] mounts it), unmounted
    /// first (lazily, `MNT_DETACH`: a reader that still has it open keeps it until it
    /// closes), then its directory. Their sizes add to `bytes`. A layer that stays mounted
    /// (umount2 refused) is left whole, said on stderr: removing its directory would walk
    /// into the mounted layer.
    pub(super) fn collect_erofs(&self, keep: &std::collections::HashSet<String>, bytes: &mut u64) {
        for e in fs::read_dir(self.erofs_dir())
            .into_iter()
            .flatten()
            .flatten()
        {
            let name = e.file_name().to_string_lossy().into_owned();
            let digest = format!("sha256:{name}");
            let layer = hex_of(&digest).is_ok();
            let unused = layer && !keep.contains(&digest);
            if !unused && !crate::files::leftover(&name) {
                continue;
            }
            self.remove_erofs_entry(&e.path(), layer.then_some(digest.as_str()), bytes);
        }
    }

    /// The EROFS layer `hex` (a diff_id's hex digits), if there is one, removed as
    /// [`Store::collect_erofs`] removes an unused one (the caller knows no image needs it).
    pub(super) fn collect_erofs_layer(&self, hex: &str, bytes: &mut u64) {
        let path = self.erofs_dir().join(hex);
        if fs::symlink_metadata(&path).is_ok() {
            self.remove_erofs_entry(&path, Some(&format!("sha256:{hex}")), bytes);
        }
    }

    /// Remove one entry of the EROFS directory: a layer (`digest`: under its object lock) or
    /// a leftover, unmounted first; its size added to `bytes` once it is gone.
    fn remove_erofs_entry(&self, path: &std::path::Path, digest: Option<&str>, bytes: &mut u64) {
        let _lock = match digest.map(|d| self.object_lock("erofs", d)) {
            Some(Ok(l)) => Some(l),
            Some(Err(err)) => {
                eprintln!(
                    "dockling: warning: layer {} kept: {err}",
                    digest.unwrap_or_default()
                );
                return;
            }
            None => None,
        };
        let refused = unmount_layer(&path.join("root")).err();
        let size = fs::metadata(path.join("layer.erofs"))
            .map(|m| m.len())
            .unwrap_or(0);
        if let Err(err) = remove_layer_dir(path) {
            let why = refused.map(|r| format!(" ({r})")).unwrap_or_default();
            eprintln!("dockling: warning: {err}{why}");
            return;
        }
        // Counted once gone: a layer left in place still takes its space.
        *bytes += size;
    }
}

/// Unmount every EROFS mounted on a layer's `root` (lazily, `MNT_DETACH`: a reader that still
/// has it open keeps it until it closes); the first refusal stops it.
fn unmount_layer(root: &std::path::Path) -> Result<()> {
    let sys = crate::sys::Sys::quiet();
    while crate::layers::erofs::is_mounted(root) {
        sys.umount2(root, nix::mount::MntFlags::MNT_DETACH)?;
    }
    Ok(())
}

/// Feeds what is written to it to a hash.
struct HashWriter<'a>(&'a mut Sha256);

impl Write for HashWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.update(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Remove a layer's directory unless a file system is still mounted at or under it (its
/// `root/`, in this mount namespace): `remove_dir_all` would walk into the mounted layer by
/// path.
fn remove_layer_dir(dir: &std::path::Path) -> Result<()> {
    let mounted = crate::files::mounts_under(dir);
    if let Some(m) = mounted.first() {
        return Err(Error::Corrupt(format!(
            "{} is still mounted, so its layer directory is left as it is: unmount it (umount {}) and run `dockling image prune` again",
            m.display(),
            m.display()
        )));
    }
    match fs::remove_dir_all(dir) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(Error::io("remove", dir)(e)),
        _ => Ok(()),
    }
}
