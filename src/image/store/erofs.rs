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

use super::unpack::Made;
use super::{hex_of, Capped, StagedLayer, Store};
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
        let path = self.blob_path(blob)?;
        let mut f = File::open(&path).map_err(Error::io("open", &path))?;
        let staged = self.stage_erofs(&mut f, blob, diff_id)?;
        self.commit(Vec::new(), vec![staged])?;
        Ok(root)
    }

    /// Write the layer blob streaming from `compressed` as an EROFS image into a staging
    /// directory (`layers/erofs/.tmp-…`: `layer.erofs`, `size`, an empty `root/`), in one
    /// pass: decompressed, the tar hashed (the diff_id check) and written at byte 4096 as it
    /// comes, its headers read into the index on the way ([`crate::layers::erofs::Index`]),
    /// then the index and superblock written after it. Nothing is read back and nothing is
    /// synced here: [`Store::commit`]'s one `syncfs` flushes it before it is renamed into
    /// place. A pull calls this on the download's stream, so the image is ready when the
    /// download ends.
    pub(super) fn stage_erofs(
        &self,
        compressed: &mut dyn Read,
        blob: &str,
        diff_id: &str,
    ) -> Result<StagedLayer> {
        hex_of(diff_id)?;
        let parent = self.erofs_dir();
        fs::create_dir_all(&parent).map_err(Error::io("create", &parent))?;
        // Only root looks in: the layers' files are the image's, setuid ones included.
        fs::set_permissions(&parent, fs::Permissions::from_mode(0o700))
            .map_err(Error::io("chmod", &parent))?;
        let tmp = parent.join(temp_name());
        fs::create_dir(&tmp).map_err(Error::io("create", &tmp))?;
        let mut staged = StagedLayer {
            tmp: tmp.clone(),
            diff_id: diff_id.to_string(),
            tar_size: 0,
            made: Made::Erofs(Default::default()),
            done: false,
        };
        fs::create_dir(tmp.join("root")).map_err(Error::io("create", &tmp))?;
        let image = tmp.join("layer.erofs");
        let out = File::options()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&image)
            .map_err(Error::io("create", &image))?;
        let source = self.blob_path(blob)?;
        let decoded = super::unpack::decoder(compressed, blob, &source)?;
        (&out)
            .seek(SeekFrom::Start(TAR_OFFSET))
            .map_err(Error::io("seek", &image))?;
        // The tar goes in as it comes, hashed on the way (the diff_id check), and read by the
        // index as it passes.
        let mut tee = TarTee {
            inner: Capped {
                inner: decoded,
                left: self.limits.max_size,
                over: false,
            },
            hash: Sha256::new(),
            out: BufWriter::with_capacity(1 << 20, &out),
            n: 0,
            write_err: None,
            writeback: Default::default(),
        };
        let index = crate::layers::erofs::Index::read(&mut tee, blob, self.limits.max_entries);
        // What the tar reader left unread (end-of-archive padding, whatever a registry's
        // compressor put after it) is part of the tar the diff_id names. (Not read after a
        // refused tar: nothing of it will be kept.)
        let rest = match &index {
            Ok(_) => std::io::copy(&mut tee, &mut std::io::sink()),
            Err(_) => Ok(0),
        };
        // A full disk is said as such; any other failed write names the image.
        let write_failed = |e: std::io::Error| match e.raw_os_error() {
            Some(libc::ENOSPC) | Some(libc::EDQUOT) => {
                self.write_error(&parent, "writing an EROFS layer", e)
            }
            _ => Error::io("write", &image)(e),
        };
        if let Some(e) = tee.write_err.take() {
            return Err(write_failed(e));
        }
        if tee.inner.over {
            return Err(self.limits.too_big(blob));
        }
        let index = index?;
        rest.map_err(Error::io("read", &source))?;
        let tar_len = tee.n;
        let hash = format!("{:x}", tee.hash.finalize_reset());
        tee.out.flush().map_err(write_failed)?;
        drop(tee);
        super::unpack::check_diff_id(blob, diff_id, hash)?;
        // Debug builds' fault point: the tar is in, the index not yet.
        crate::fault::check("store.erofs.before_index")?;
        let stats = index.write(&out, tar_len, blob)?;
        fs::write(
            tmp.join("size"),
            format!("content-size {}\ntar-size {tar_len}\n", stats.content_size),
        )
        .map_err(Error::io("write", &tmp))?;
        staged.tar_size = tar_len;
        staged.made = Made::Erofs(stats);
        Ok(staged)
    }

    /// [`Store::commit`]'s part for EROFS layers, after its `syncfs`: each staging directory
    /// renamed to `layers/erofs/<diff_id hex>` (a directory there without its image, what a
    /// killed removal left, removed first), then the directory synced.
    pub(super) fn place_erofs(&self, staged: Vec<StagedLayer>) -> Result<()> {
        let parent = self.erofs_dir();
        for mut l in staged {
            let dir = parent.join(hex_of(&l.diff_id)?);
            if fs::symlink_metadata(&dir).is_ok() {
                if dir.join("layer.erofs").is_file() {
                    // Made meanwhile by a command that did not wait for this one's lock
                    // (there is none: each takes it): keep the first, drop this one.
                    continue;
                }
                remove_layer_dir(&dir)?;
            }
            fs::rename(&l.tmp, &dir).map_err(Error::io("rename", &dir))?;
            l.done = true;
        }
        sync_dir(&parent)
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

/// The layer's tar on its way into `layer.erofs`: every byte read through it is hashed and
/// written to `out` (sequentially, from [`TAR_OFFSET`]). A failed write is kept apart, so that
/// a full disk is not taken for a bad tar.
struct TarTee<'a, R> {
    inner: Capped<R>,
    hash: Sha256,
    out: BufWriter<&'a File>,
    n: u64,
    write_err: Option<std::io::Error>,
    /// The disk writes the tar while it still arrives (the commit's `syncfs` then has little
    /// left to wait for).
    writeback: crate::sys::fs::Writeback,
}

impl<R: Read> Read for TarTee<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.write_err.is_some() {
            return Err(std::io::Error::other(
                "the layer's image could not be written",
            ));
        }
        let n = self.inner.read(buf)?;
        self.hash.update(&buf[..n]);
        if let Err(e) = self.out.write_all(&buf[..n]) {
            let said = std::io::Error::new(e.kind(), e.to_string());
            self.write_err = Some(e);
            return Err(said);
        }
        self.n += n as u64;
        // What the buffer has handed to the kernel so far: the tar's bytes written, less
        // what is still buffered.
        let written = TAR_OFFSET + self.n - self.out.buffer().len() as u64;
        self.writeback.wrote(self.out.get_ref(), written);
        Ok(n)
    }
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
/// `root/`, in this mount namespace): said by the mount table first, and held by the removal
/// itself, which goes by descriptors and enters no other mount
/// ([`crate::sys::fs::remove_at_in_mount`]), never by the layer's path.
fn remove_layer_dir(dir: &std::path::Path) -> Result<()> {
    let still_mounted = |m: &std::path::Path| {
        Error::Corrupt(format!(
            "{} is still mounted, so its layer directory is left as it is: unmount it (umount {}) and run `dockling image prune` again",
            m.display(),
            m.display()
        ))
    };
    let mounted = crate::files::mounts_under(dir);
    if let Some(m) = mounted.first() {
        return Err(still_mounted(m));
    }
    let (Some(parent), Some(name)) = (dir.parent(), dir.file_name()) else {
        return Err(Error::Corrupt(format!(
            "{}: not a layer directory",
            dir.display()
        )));
    };
    let parent_fd = match File::open(parent) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(Error::io("open", parent)(e)),
    };
    match crate::sys::fs::remove_at_in_mount(std::os::fd::AsFd::as_fd(&parent_fd), name) {
        Ok(()) => Ok(()),
        // A mount the table did not show yet (made since): left whole, with what it holds.
        Err(e) if matches!(e.raw_os_error(), Some(libc::EXDEV) | Some(libc::EBUSY)) => {
            Err(still_mounted(&dir.join("root")))
        }
        Err(e) => Err(Error::io("remove", dir)(e)),
    }
}
