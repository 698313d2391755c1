//! Removing what no image needs: `rmi` (Docker's untag-then-delete rules), garbage
//! collection of blobs and unpacked layers under the store lock, journaled (`oci/gc-pending`)
//! so a killed collection is finished by the next command, the leases that keep what a live
//! pull or import wrote but no image names yet, and the sweep of what killed commands left.

use std::collections::HashSet;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use oci_spec::image::MediaType;
use serde_json::Value;

use super::{hex_of, tag_of, Store};
use crate::error::{Error, Result};
use crate::files::{leftover, lock, sync_dir, temp_name, try_lock, write_atomic};
use crate::image::reference::Reference;
use crate::image::ImageError;

/// A lease file held by this process (see the module's documentation).
pub(super) struct Lease {
    /// The flock that says the lease is live (released by the kernel if the process dies).
    _file: crate::files::Lock,
    path: PathBuf,
    claimed: HashSet<String>,
}

impl Drop for Lease {
    /// Done: everything claimed is in the index now (or was discarded). Removed while still
    /// locked, so no collector mistakes it for a dead one half-way.
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.path);
    }
}

/// What a garbage collection removed.
#[derive(Debug, Default)]
pub struct Collected {
    /// Docker's `Deleted: sha256:…` lines, one per unpacked layer removed.
    pub lines: Vec<String>,
    /// Bytes freed: blobs, unpacked layers (their recorded size), temporary files.
    pub bytes: u64,
}

/// The journal of a garbage collection under way (`oci/gc-pending`): written before `rmi`
/// untags, removed when its collection is done; found by [`Store::open`], which finishes it.
pub(super) const GC_PENDING: &str = "gc-pending";

/// Remove a journal file, and make the removal durable (its directory synced).
pub(super) fn remove_journal(path: &Path) -> Result<()> {
    match fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(Error::io("remove", path)(e)),
    }
    sync_dir(path.parent().unwrap_or(Path::new("/")))
}

/// Remove a file or a directory tree, whichever `path` is; errors ignored (leftovers only).
fn remove_any(path: &Path) {
    match fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => {
            let _ = fs::remove_dir_all(path);
        }
        Ok(_) => {
            let _ = fs::remove_file(path);
        }
        Err(_) => {}
    }
}

impl Store {
    /// Remove the trash, the temporary files of dead processes and their leases and
    /// per-object locks (cheap: a few readdirs and non-blocking flocks).
    pub(super) fn sweep(&self) {
        for dir in [
            self.oci.clone(),
            self.oci.join("blobs/sha256"),
            self.layers.clone(),
            self.unpacked_dir(),
            // A killed `--layers erofs` writer's temporary directory (never mounted).
            self.erofs_dir(),
        ] {
            for e in fs::read_dir(&dir).into_iter().flatten().flatten() {
                let name = e.file_name();
                // Blobs and layers (hex names, thousands of them) passed without a copy.
                if !name.as_encoded_bytes().contains(&b'.') {
                    continue;
                }
                if leftover(&name.to_string_lossy()) {
                    remove_any(&e.path());
                }
            }
        }
        // Leases and per-object locks of processes that are gone (nobody holds their flock):
        // what they protected is unprotected anyway, and the files would only pile up.
        // Leases only under the store lock, which `claim` makes them under: between a new
        // lease's creation and its flock it is unheld too, and removing it then left its
        // process writing to a name that was gone. Busy: the next command sweeps them.
        if let Ok(Some(_l)) = crate::files::try_lock(&self.oci.join(".lock")) {
            for p in &self.leases().1 {
                let _ = crate::files::remove_if_unheld(p);
            }
        }
        for p in &self.stale_object_locks() {
            let _ = crate::files::remove_if_unheld(p);
        }
    }

    /// Add digests (blobs, diff_ids) to this process's lease before they are written or
    /// looked for: garbage collection (which holds the store lock, as this does) then keeps
    /// them while this process lives, although no image of the index names them yet.
    pub fn claim(&self, digests: &[&str]) -> Result<()> {
        let mut lease = self.lease.lock().expect("lease");
        let new: Vec<&str> = digests
            .iter()
            .copied()
            .filter(|d| lease.as_ref().is_none_or(|l| !l.claimed.contains(*d)))
            .collect();
        if new.is_empty() {
            return Ok(());
        }
        let _l = self.lock()?;
        if lease.is_none() {
            let name = temp_name();
            let path = self.oci.join("leases").join(&name[5..]);
            let file =
                try_lock(&path)?.ok_or_else(|| ImageError::LeaseTaken { path: path.clone() })?;
            *lease = Some(Lease {
                _file: file,
                path,
                claimed: Default::default(),
            });
        }
        let l = lease.as_mut().expect("lease");
        let mut text = String::new();
        for d in new {
            text.push_str(d);
            text.push('\n');
            l.claimed.insert(d.to_string());
        }
        fs::OpenOptions::new()
            .append(true)
            .open(&l.path)
            .and_then(|mut f| f.write_all(text.as_bytes()))
            .map_err(Error::io("write", &l.path))?;
        Ok(())
    }

    /// The digests every live lease of another process lists; the leases of dead processes
    /// are removed.
    /// Called with the store lock held (leases are made under it).
    fn leased(&self) -> HashSet<String> {
        let (keep, stale) = self.leases();
        for path in stale {
            let _ = fs::remove_file(&path);
        }
        keep
    }

    /// Without changing anything: the digests the live leases of other processes list, and
    /// the lease files nobody holds (their process is gone). `system fsck` reports those.
    pub fn leases(&self) -> (HashSet<String>, Vec<PathBuf>) {
        let mut keep = HashSet::new();
        let mut stale = Vec::new();
        let mine = self
            .lease
            .lock()
            .expect("lease")
            .as_ref()
            .map(|l| l.path.clone());
        let dir = self.oci.join("leases");
        for e in fs::read_dir(&dir).into_iter().flatten().flatten() {
            let path = e.path();
            // This process's own lease is not in the way: it collects between its writes.
            if Some(&path) == mine.as_ref() {
                continue;
            }
            match crate::files::held(&path) {
                // Nobody holds it: its process is gone.
                Some(false) => stale.push(path),
                Some(true) => {
                    for d in fs::read_to_string(&path).unwrap_or_default().lines() {
                        keep.insert(d.to_string());
                    }
                }
                None => {}
            }
        }
        (keep, stale)
    }

    /// Per-object lock files (`oci/locks/`) nobody holds: a holder killed before it removed
    /// its file left them (harmless, as a waiter checks the file is still the one it locked,
    /// but clutter `system fsck` reports).
    pub fn stale_object_locks(&self) -> Vec<PathBuf> {
        fs::read_dir(self.oci.join("locks"))
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path())
            .filter(|p| crate::files::held(p) == Some(false))
            .collect()
    }

    /// Delete an unpacked layer so that no kill leaves half of it looking whole: the marker
    /// first (synced), then the directory renamed to `.trash-*` (synced), then removed.
    fn remove_layer(&self, hex: &str) -> Result<()> {
        let marker = self.unpacked_dir().join(hex);
        match fs::remove_file(&marker) {
            Ok(()) => sync_dir(&self.unpacked_dir())?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io("remove", &marker)(e)),
        }
        self.trash(&self.layers.join(hex))
    }

    /// Rename `dir` to a `.trash-*` name beside it, then remove it.
    pub(super) fn trash(&self, dir: &Path) -> Result<()> {
        let trash = self.layers.join(format!(".trash{}", &temp_name()[4..]));
        match fs::rename(dir, &trash) {
            Ok(()) => sync_dir(&self.layers)?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(Error::io("rename", dir)(e)),
        }
        crate::fault::point("rmi.gc.layer_trashed");
        crate::fault::remove_dir_all(&trash, "rmi.gc.layer_half_deleted")
            .map_err(Error::io("remove", &trash))
    }

    /// Remove a tag, or an image by id, like `docker rmi`; returns Docker's lines. `used_by`
    /// is asked under the store lock, so a container recorded meanwhile is seen.
    pub fn remove(
        &self,
        name: &str,
        force: bool,
        used_by: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Vec<String>> {
        // A damaged image (a truncated config, a lost manifest) is still removable: it is
        // found by its index entry alone (`find_damaged`), never a dead end.
        // `index.json` read once, under the lock: the image is found in the index it is
        // removed from.
        let _l = lock(&self.oci.join(".lock"))?;
        let mut index = self.read_index()?;
        let (image, damaged) = match self.find_in(&index, name) {
            Ok(image) => (image, false),
            Err(e @ Error::NotFound(_)) => return Err(e),
            Err(e) => (self.find_damaged(&index, name).map_err(|_| e)?, true),
        };
        let by_tag = Reference::parse(name)
            .ok()
            .filter(|r| image.reference.as_ref() == Some(r));
        let mut lines = Vec::new();
        let list = index["manifests"]
            .as_array_mut()
            .ok_or_else(|| self.broken_index("not a JSON object with a \"manifests\" list"))?;
        let same_image: Vec<usize> = (0..list.len())
            .filter(|i| list[*i]["digest"].as_str() == Some(&image.manifest_digest))
            .collect();
        let remove_all = match &by_tag {
            Some(r) => {
                same_image
                    .iter()
                    .filter(|i| tag_of(&list[**i]).is_some())
                    .count()
                    <= 1
                    && same_image
                        .iter()
                        .any(|i| tag_of(&list[*i]).as_ref() == Some(r))
            }
            None => true,
        };
        // By id, an image several tags name is deleted only when forced: a bare id does not
        // say which of its names the user meant to lose (Docker's conflict, same words).
        let tags = same_image
            .iter()
            .filter(|i| tag_of(&list[**i]).is_some())
            .count();
        if by_tag.is_none() && tags > 1 && !force {
            return Err(ImageError::ImageTaggedTwice {
                id: image.id[7..19].to_string(),
            }
            .into());
        }
        // Untagging is always allowed (as in Docker); deleting an image a container uses is not.
        let used = used_by(&image.id);
        if let (true, Some(container)) = (remove_all, &used) {
            if !force {
                return Err(ImageError::ImageInUse {
                    image: name.to_string(),
                    id: image.id[7..19].to_string(),
                    container: container.clone(),
                }
                .into());
            }
        }
        if !remove_all {
            // Other tags still name this image: only untag.
            let r = by_tag.expect("by tag");
            list.retain(|m| tag_of(m).as_ref() != Some(&r));
            lines.push(format!("Untagged: {}", r.familiar_tagged()));
            self.write_index(&index)?;
            return Ok(lines);
        }
        for i in &same_image {
            if let Some(r) = tag_of(&list[*i]) {
                lines.push(format!("Untagged: {}", r.familiar_tagged()));
            }
        }
        list.retain(|m| m["digest"].as_str() != Some(&image.manifest_digest));
        if used.is_some() {
            // Forced, but a container still uses it: untagged, kept as <none> (as Docker does).
            let size = self
                .blob_path(&image.manifest_digest)
                .ok()
                .and_then(|p| fs::metadata(p).ok())
                .map(|m| m.len())
                .unwrap_or(0);
            list.push(crate::image::oci::to_value(&crate::image::oci::descriptor(
                MediaType::ImageManifest,
                &image.manifest_digest,
                size,
                &[],
            )?));
            self.write_index(&index)?;
            return Ok(lines);
        }
        // Journaled: the image leaves the index and its blobs and layers go in two steps; a
        // command killed between them leaves `gc-pending`, and the next command that opens
        // the store finishes the collection (nothing orphaned stays behind).
        let pending = self.oci.join(GC_PENDING);
        write_atomic(&pending, b"rmi\n")?;
        self.write_index(&index)?;
        crate::fault::check("rmi.untagged")?;
        lines.push(format!("Deleted: {}", image.id));
        // Only what this image named is looked at: listing every blob and layer of the store
        // made an `rmi` cost grow with the store (what other commands left unnamed is
        // `image prune -a`'s and `system prune`'s, and a killed collection's journal makes
        // the next command collect everything). A damaged image may name more than could be
        // read of it: then everything is collected, as before.
        let collected = if damaged {
            self.collect_garbage(&index)?
        } else {
            self.collect_image(&index, &image)?
        };
        lines.extend(collected.lines);
        remove_journal(&pending)?;
        Ok(lines)
    }

    /// [`Store::collect_garbage`] of what one image named (its manifest, config, layer blobs
    /// and layers), with the store lock held: each removed unless an image of `index` or a
    /// live lease names it. Docker's `Deleted:` lines for its layers, top first.
    fn collect_image(&self, index: &Value, image: &super::Image) -> Result<Collected> {
        let mut keep = self.referenced(index);
        keep.extend(self.leased());
        let mut out = Collected::default();
        let blobs = std::iter::once(&image.manifest_digest)
            .chain(std::iter::once(&image.id))
            .chain(&image.layers);
        for b in blobs.filter(|b| !keep.contains(*b)) {
            let Ok(path) = self.blob_path(b) else {
                continue;
            };
            let size = fs::symlink_metadata(&path).map(|m| m.len()).unwrap_or(0);
            if fs::remove_file(&path).is_ok() {
                out.bytes += size;
            }
            crate::fault::check("rmi.gc.blob_deleted")?;
        }
        let mut gone = HashSet::new();
        for d in image.diff_ids.iter().rev().filter(|d| !keep.contains(*d)) {
            let Ok(hex) = hex_of(d) else { continue };
            if !gone.insert(hex) {
                continue;
            }
            if fs::symlink_metadata(self.layers.join(hex)).is_ok() {
                out.bytes += self.layer_size(d).unwrap_or(0);
                self.remove_layer(hex)?;
                out.lines.push(format!("Deleted: {d}"));
            }
            self.collect_erofs_layer(hex, &mut out.bytes);
            // A marker without its layer, and the size older versions kept beside it.
            for dir in [self.unpacked_dir(), self.layers.with_file_name("size")] {
                let _ = fs::remove_file(dir.join(hex));
            }
        }
        Ok(out)
    }

    /// Remove these blobs and unpacked layers (by digest and diff_id) unless an image of the
    /// index uses them: what a failed pull fetched is not left behind.
    pub fn discard_unused(&self, blobs: &[String], diff_ids: &[String]) -> Result<()> {
        let _l = lock(&self.oci.join(".lock"))?;
        let keep = self.referenced(&self.read_index()?);
        // Another live command's lease (not this one's: these are ours to drop).
        let others = self.leased();
        let keep = |d: &String| keep.contains(d) || others.contains(d);
        for b in blobs.iter().filter(|b| !keep(b)) {
            let _ = fs::remove_file(self.blob_path(b)?);
        }
        for d in diff_ids.iter().filter(|d| !keep(d)) {
            let hex = hex_of(d)?;
            if self.erofs {
                // Written as an EROFS image by this pull (`--layers erofs`).
                self.collect_erofs_layer(hex, &mut 0);
            } else {
                self.remove_layer(hex)?;
            }
        }
        Ok(())
    }

    /// Every manifest, config, layer blob and diff_id the images of `index` refer to. Read
    /// as plain JSON on purpose, not as oci-spec types: a manifest or config oci-spec would
    /// refuse as a whole must still keep every blob it names that can be read from it.
    ///
    /// An image with a summary (`summary`) is walked from it, without reading its blobs: the
    /// summary was made from this very manifest (it is named by its digest) and its config.
    fn referenced(&self, index: &Value) -> HashSet<String> {
        let mut keep = HashSet::new();
        let known = self.summaries();
        for m in index["manifests"].as_array().into_iter().flatten() {
            let Some(d) = m["digest"].as_str() else {
                continue;
            };
            keep.insert(d.to_string());
            // Believed without the size check a listing makes: the summary names what the
            // manifest (this digest's, whole) and its config named, which is all a damaged
            // copy of them could still name and more; keeping more is the safe side.
            if let Some(s) = known.get(d) {
                keep.insert(s.id.clone());
                keep.extend(s.layers.iter().cloned());
                keep.extend(s.diff_ids.iter().cloned());
                continue;
            }
            if let Ok(bytes) = self.read_blob(d) {
                let man: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
                if let Some(c) = man["config"]["digest"].as_str() {
                    keep.insert(c.to_string());
                    if let Ok(cfg) = self.read_blob(c) {
                        let cfg: Value = serde_json::from_slice(&cfg).unwrap_or(Value::Null);
                        for d in cfg["rootfs"]["diff_ids"].as_array().into_iter().flatten() {
                            if let Some(d) = d.as_str() {
                                keep.insert(d.to_string());
                            }
                        }
                    }
                }
                for l in man["layers"].as_array().into_iter().flatten() {
                    if let Some(ld) = l["digest"].as_str() {
                        keep.insert(ld.to_string());
                    }
                }
            }
        }
        keep
    }

    /// Delete, with the store lock held: blobs and unpacked layers no image of `index` and no
    /// live lease names, the temporary files of dead processes and the trash. The in-flight
    /// files of live commands are never touched.
    fn collect_garbage(&self, index: &Value) -> Result<Collected> {
        let mut keep = self.referenced(index);
        keep.extend(self.leased());
        let mut out = Collected::default();
        let blobs = self.oci.join("blobs/sha256");
        for e in fs::read_dir(&blobs)
            .map_err(Error::io("read", &blobs))?
            .flatten()
        {
            let name = e.file_name().to_string_lossy().into_owned();
            let unreferenced = hex_of(&format!("sha256:{name}")).is_ok()
                && !keep.contains(&format!("sha256:{name}"));
            if unreferenced || leftover(&name) {
                let size = e.metadata().map(|m| m.len()).unwrap_or(0);
                if fs::remove_file(e.path()).is_ok() {
                    out.bytes += size;
                }
                crate::fault::check("rmi.gc.blob_deleted")?;
            }
        }
        // Unpacked layers are named by diff_id.
        for e in fs::read_dir(&self.layers)
            .map_err(Error::io("read", &self.layers))?
            .flatten()
        {
            let name = e.file_name().to_string_lossy().into_owned();
            let digest = format!("sha256:{name}");
            if hex_of(&digest).is_ok() {
                if !keep.contains(&digest) {
                    out.bytes += self.layer_size(&digest).unwrap_or(0);
                    self.remove_layer(&name)?;
                    out.lines.push(format!("Deleted: {digest}"));
                }
            } else if leftover(&name) {
                remove_any(&e.path());
            }
        }
        // Layers kept as EROFS images (`--layers erofs`), unmounted first.
        self.collect_erofs(&keep, &mut out.bytes);
        // Markers without their layer, and the sizes older versions kept beside them.
        for dir in [self.unpacked_dir(), self.layers.with_file_name("size")] {
            for e in fs::read_dir(&dir).into_iter().flatten().flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if leftover(&name) || !keep.contains(&format!("sha256:{name}")) {
                    let _ = fs::remove_file(e.path());
                }
            }
        }
        Ok(out)
    }

    /// Reclaim what no image needs, as `image prune -a` and `system prune` do after removing
    /// images: unreferenced blobs and layers (an interrupted pull's, say), temporary files of
    /// dead processes, trash.
    pub fn reclaim(&self) -> Result<Collected> {
        let _l = self.lock()?;
        let index = self.read_index()?;
        self.collect_garbage(&index)
    }
}
