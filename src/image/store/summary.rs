//! `oci/summaries.jsonl`: what a listing needs of each image, kept so that `images`, `image
//! prune` and garbage collection cost little per image. Without it, each of them read and
//! hashed every manifest and config of the store and parsed each config whole (1,000 images:
//! 7.6 times the cost of 10).
//!
//! One line per image: its manifest digest, the image id (config digest), its creation time,
//! Docker's size, the layer blobs and diff_ids, and the sizes of the manifest and config
//! blobs. A manifest is content-addressed, so a line never goes stale: an image's line can
//! only be missing (an older store, a write lost to a crash or skipped because the lock was
//! busy) or left over (an image removed since), and two lines for one manifest say the same.
//! Tags and repo digests stay in `index.json` alone.
//!
//! Appended (one `write` of one line, `O_APPEND`, not synced: it is a cache) under the store
//! lock by every command that adds an image to the index: adding an image costs the same
//! with 10 images or 1,000 (a rewrite of the whole file with each would also have the next
//! `fsync` of the file system's journal write it out). A listing reads every line (a torn
//! line is skipped, losing only itself), reads an image without a line from its
//! manifest and config as before and appends its line when the store lock is free, and
//! rewrites the file without the lines of removed images once they are most of it;
//! `system fsck --repair` rebuilds it. A listing believes a line only while the manifest and
//! config blobs still have the sizes it records (one `fstatat` each, in the blobs
//! directory's descriptor): a truncated or lost blob sends the image down the full read,
//! which reports it damaged as before.

use std::collections::HashMap;
use std::io::Write;
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::index::{EntryView, IndexView};
use super::{hex_of, Image, Store};
use crate::error::{Error, Result};
use crate::image::reference::Reference;

/// The file's name in `oci/`.
pub(super) const SUMMARIES: &str = "summaries.jsonl";

/// The summaries as read: manifest digest to summary, and how many lines held them.
#[derive(Debug, Default)]
pub(crate) struct Summaries {
    by_manifest: HashMap<String, Summary>,
    lines: usize,
}

impl Summaries {
    /// The summary of the image whose manifest is `digest`.
    pub(crate) fn get(&self, digest: &str) -> Option<&Summary> {
        self.by_manifest.get(digest)
    }
}

/// One line of the file.
#[derive(Debug, Serialize, Deserialize)]
struct Line {
    /// Bumped if a line ever changes meaning; lines of another version are ignored.
    v: u32,
    /// The manifest digest.
    manifest: String,
    /// Its image's summary.
    summary: Summary,
}

const VERSION: u32 = 1;

/// What is kept of one image (one manifest).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    /// The config digest: Docker's image id.
    pub id: String,
    /// Creation time from the config (RFC 3339).
    #[serde(default)]
    pub created: Option<String>,
    /// Docker's size: the sum of the layers' sizes (`Image::size`).
    pub size: u64,
    /// Size of the manifest blob, checked against the blob before the entry is believed.
    pub manifest_size: u64,
    /// Size of the config blob, the same.
    pub config_size: u64,
    /// Layer blob digests, bottom first.
    pub layers: Vec<String>,
    /// The config's diff_ids, bottom first.
    pub diff_ids: Vec<String>,
}

/// One image as `images` and `image prune` list it: an index entry and its summary.
#[derive(Debug, Clone)]
pub struct Listed {
    /// `sha256:<hex>` of the config (the manifest digest when the manifest is damaged).
    pub id: String,
    /// The tag of this entry, `None` for an untagged image.
    pub reference: Option<Reference>,
    /// `sha256:<hex>` of the manifest.
    pub manifest_digest: String,
    /// The digest it was pulled by, for this reference.
    pub repo_digest: Option<String>,
    /// Creation time (RFC 3339).
    pub created: Option<String>,
    /// Docker's size.
    pub size: u64,
    /// Digests of the uncompressed layers, bottom first.
    pub diff_ids: Vec<String>,
    /// Why the image cannot be read (the error of the full read), if it cannot.
    pub damaged: Option<String>,
}

impl Listed {
    fn of(image: Image, damaged: Option<String>) -> Listed {
        Listed {
            id: image.id,
            reference: image.reference,
            manifest_digest: image.manifest_digest,
            repo_digest: image.repo_digest,
            created: image.created,
            size: image.size,
            diff_ids: image.diff_ids,
            damaged,
        }
    }
}

impl Store {
    /// The summaries, read once per process (see `Store::summaries`' field).
    pub(crate) fn summaries(&self) -> Arc<Summaries> {
        self.summaries
            .get_or_init(|| Arc::new(self.read_summaries()))
            .clone()
    }

    /// The file as it is now; empty when it is missing or unreadable (every image then
    /// takes the full read).
    fn read_summaries(&self) -> Summaries {
        let mut out = Summaries::default();
        let Ok(bytes) = std::fs::read(self.oci.join(SUMMARIES)) else {
            return out;
        };
        // A line that does not parse (torn by a crash) is skipped: its image is read in full.
        for line in bytes.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
            out.lines += 1;
            if let Ok(line) = serde_json::from_slice::<Line>(line) {
                if line.v == VERSION {
                    out.by_manifest.insert(line.manifest, line.summary);
                }
            }
        }
        out
    }

    /// Append these lines (the caller holds the store lock).
    fn append_summaries(&self, made: &[(String, Summary)]) -> Result<()> {
        // Begun with a newline, which ends a line a crash tore (empty lines are skipped):
        // the torn one is lost, not this one with it.
        let mut text = vec![b'\n'];
        for (manifest, summary) in made {
            push_line(&mut text, manifest, summary);
        }
        let path = self.oci.join(SUMMARIES);
        std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(&path)
            .and_then(|mut f| f.write_all(&text))
            .map_err(Error::io("write", &path))
    }

    /// Replace the file with the summaries of the manifests `index` lists (the caller holds
    /// the store lock). Not synced: a lost write only costs the next listing a full read.
    fn write_summaries(&self, index: &Value, images: &HashMap<String, Summary>) -> Result<()> {
        let listed: std::collections::HashSet<&str> = index["manifests"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|m| m["digest"].as_str())
            .collect();
        let mut text = Vec::new();
        for (manifest, summary) in images.iter().filter(|(d, _)| listed.contains(d.as_str())) {
            push_line(&mut text, manifest, summary);
        }
        crate::files::replace_atomic(&self.oci.join(SUMMARIES), &text)
    }

    /// The summary of a fully read image; `None` if its blobs cannot be looked at.
    pub(crate) fn summarize(&self, image: &Image) -> Option<Summary> {
        // A size counted from a blob because its layer could not be read is not kept: the
        // next listing reads the image again, and shows the right size once it can.
        if image.size_estimated {
            return None;
        }
        let size = |d: &str| {
            self.blob_path(d)
                .ok()
                .and_then(|p| std::fs::metadata(p).ok())
                .map(|m| m.len())
        };
        Some(Summary {
            id: image.id.clone(),
            created: image.created.clone(),
            size: image.size,
            manifest_size: size(&image.manifest_digest)?,
            config_size: size(&image.id)?,
            layers: image.layers.clone(),
            diff_ids: image.diff_ids.clone(),
        })
    }

    /// Record the summary of the image whose manifest is `digest` (just added to the index,
    /// which the caller holds the store lock for): one line appended. Best effort: an image
    /// that cannot be read gets no line, and listings read it in full.
    pub(super) fn record_summary(&self, digest: &str) {
        // A tag of an image already summed up (`tag`, each tag of a `load`, a build step
        // that made no new image) needs no new line: loading an image can mean hashing
        // every layer not unpacked, all under the store lock.
        let blobs = crate::sys::fs::open_root(&self.blob_dir()).ok();
        if self
            .summaries()
            .get(digest)
            .is_some_and(|s| Self::summary_holds(blobs.as_ref(), digest, s))
        {
            return;
        }
        let Some(s) = self
            .load(digest, None)
            .ok()
            .and_then(|i| self.summarize(&i))
        else {
            return;
        };
        if let Err(e) = self.append_summaries(&[(digest.to_string(), s)]) {
            eprintln!("dockling: warning: {e}");
        }
    }

    /// Rebuild the file from the images of the index (`system fsck --repair`, and tests):
    /// every entry made afresh from its manifest and config. Takes the store lock.
    pub fn rebuild_summaries(&self) -> Result<usize> {
        let _l = self.lock()?;
        let index = self.read_index()?;
        let mut all = HashMap::new();
        for m in index["manifests"].as_array().into_iter().flatten() {
            if let Some(d) = m["digest"].as_str() {
                if let Some(s) = self.load(d, None).ok().and_then(|i| self.summarize(&i)) {
                    all.insert(d.to_string(), s);
                }
            }
        }
        let n = all.len();
        self.write_summaries(&index, &all)?;
        Ok(n)
    }

    /// Whether the manifest and config blobs still have the sizes `s` records.
    pub(super) fn summary_holds(blobs: Option<&OwnedFd>, manifest: &str, s: &Summary) -> bool {
        let Some(dir) = blobs else { return false };
        let size = |d: &str| {
            hex_of(d).ok().and_then(|hex| {
                nix::sys::stat::fstatat(
                    Some(dir.as_raw_fd()),
                    hex,
                    nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
                )
                .ok()
                .filter(|st| st.st_mode & libc::S_IFMT == libc::S_IFREG)
                .map(|st| st.st_size as u64)
            })
        };
        size(manifest) == Some(s.manifest_size) && size(&s.id) == Some(s.config_size)
    }

    /// Every image of the index, in its order, from the summaries where they hold and from
    /// the manifest and config otherwise (a damaged image too, as its skeleton and why: the
    /// same as `list_even_damaged`). Summaries it had to make are added when the store lock
    /// is free.
    pub fn listing(&self) -> Result<Vec<Listed>> {
        self.listing_with(true)
    }

    /// [`Store::listing`] for choosing images to remove (`image prune`): a summary is
    /// believed without looking at its blobs' sizes (two `fstatat`s per image), since no
    /// image is shown as damaged or not. Removing one finds it again (`Store::remove`),
    /// reading a damaged one as such.
    pub fn listing_to_remove(&self) -> Result<Vec<Listed>> {
        self.listing_with(false)
    }

    fn listing_with(&self, check_blobs: bool) -> Result<Vec<Listed>> {
        let text = self.read_index_text()?;
        // The entries as borrowed text; an index the view does not fit is read as a value
        // (which also gives the error a broken one deserves).
        let whole: Option<Value>;
        let entries = match serde_json::from_slice::<IndexView>(&text) {
            Ok(view) => {
                whole = None;
                view.manifests
            }
            Err(_) => {
                whole = Some(self.index_from(&text)?);
                whole.as_ref().expect("read")["manifests"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(EntryView::of)
                    .collect()
            }
        };
        // An entry read in full needs it as a value: the file parsed so once, if ever.
        let mut values: Option<Value> = None;
        let known = self.summaries();
        let blobs = if check_blobs {
            crate::sys::fs::open_root(&self.blob_dir()).ok()
        } else {
            None
        };
        let mut out = Vec::with_capacity(entries.len());
        let mut made = Vec::new();
        for (i, e) in entries.iter().enumerate() {
            let Some(digest) = e.digest.as_deref() else {
                continue;
            };
            if let Some(s) = known
                .get(digest)
                .filter(|s| !check_blobs || Self::summary_holds(blobs.as_ref(), digest, s))
            {
                out.push(Listed {
                    id: s.id.clone(),
                    reference: e.tag(),
                    manifest_digest: digest.to_string(),
                    repo_digest: e.repo_digest(),
                    created: s.created.clone(),
                    size: s.size,
                    diff_ids: s.diff_ids.clone(),
                    damaged: None,
                });
                continue;
            }
            let index = match &whole {
                Some(v) => v,
                None => values
                    .get_or_insert_with(|| serde_json::from_slice(&text).unwrap_or(Value::Null)),
            };
            let m = &index["manifests"][i];
            match self.entry(m) {
                Ok(Some(image)) => {
                    if let Some(s) = self.summarize(&image) {
                        made.push((digest.to_string(), s));
                    }
                    out.push(Listed::of(image, None));
                }
                Ok(None) => {}
                Err(e) => {
                    if let Some(image) = self.skeleton(m) {
                        out.push(Listed::of(image, Some(e.to_string())));
                    }
                }
            }
        }
        // Lines of removed images (and repeats) are most of the file: written again.
        let compact = known.lines > 2 * entries.len() + 64;
        if !made.is_empty() || compact {
            self.add_summaries(&known, made, compact);
        }
        Ok(out)
    }

    /// Add summaries a listing made (or write the file again without left-over lines), if
    /// nobody holds the store lock (else the next listing does).
    fn add_summaries(&self, known: &Summaries, made: Vec<(String, Summary)>, compact: bool) {
        let Ok(Some(_l)) = crate::files::try_lock(&self.oci.join(".lock")) else {
            return;
        };
        let done = if compact {
            self.read_index().and_then(|index| {
                // The file as it is now, under the lock: what other commands appended since
                // this one first read it stays.
                let mut all = self.read_summaries().by_manifest;
                all.extend(
                    known
                        .by_manifest
                        .iter()
                        .map(|(k, v)| (k.clone(), v.clone())),
                );
                all.extend(made);
                self.write_summaries(&index, &all)
            })
        } else {
            self.append_summaries(&made)
        };
        if let Err(e) = done {
            eprintln!("dockling: warning: {e}");
        }
    }
}

/// One line of the file, its newline included, onto `text`.
fn push_line(text: &mut Vec<u8>, manifest: &str, summary: &Summary) {
    serde_json::to_writer(
        &mut *text,
        &Line {
            v: VERSION,
            manifest: manifest.to_string(),
            summary: summary.clone(),
        },
    )
    .expect("a summary serialises");
    text.push(b'\n');
}

#[cfg(test)]
mod tests {
    use super::super::tests::import;
    use super::*;

    fn rows(store: &Store) -> Vec<String> {
        store
            .listing()
            .unwrap()
            .iter()
            .map(|l| {
                format!(
                    "{} {:?} {} {:?} {} {:?} {:?}",
                    l.id, l.reference, l.manifest_digest, l.created, l.size, l.diff_ids, l.damaged
                )
            })
            .collect()
    }

    /// The summaries a new process would read.
    fn on_disk(root: &std::path::Path) -> Summaries {
        Store::at(root).read_summaries()
    }

    #[test]
    fn a_listing_is_the_same_with_without_and_with_repaired_summaries() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("root");
        let store = Store::open(&root).unwrap();
        import(&store, tmp.path(), "a", &["CMD a".into()]);
        import(&store, tmp.path(), "b", &["CMD b".into()]);
        let file = root.join("oci").join(SUMMARIES);
        // Appended when the images were added.
        assert_eq!(on_disk(&root).by_manifest.len(), 2);
        assert_eq!(on_disk(&root).lines, 2);
        let with = rows(&Store::at(&root));
        assert_eq!(with.len(), 2);
        // Without the file (an older store): the same rows, and the lines are made again.
        std::fs::remove_file(&file).unwrap();
        assert_eq!(rows(&Store::at(&root)), with);
        assert_eq!(
            on_disk(&root).by_manifest.len(),
            2,
            "the listing repaired it"
        );
        // A torn line is skipped; the listing adds what it lost.
        let text = std::fs::read(&file).unwrap();
        std::fs::write(&file, &text[..text.len() - 20]).unwrap();
        assert_eq!(on_disk(&root).by_manifest.len(), 1);
        assert_eq!(rows(&Store::at(&root)), with);
        assert_eq!(on_disk(&root).by_manifest.len(), 2);
        // Garbage: ignored, and rebuilt.
        std::fs::write(&file, b"{not json").unwrap();
        assert_eq!(rows(&Store::at(&root)), with);
        assert_eq!(Store::at(&root).rebuild_summaries().unwrap(), 2);
        assert_eq!(on_disk(&root).lines, 2);
        assert_eq!(rows(&Store::at(&root)), with);
    }

    /// An image whose layer cannot be read is listed with its blob's size, and that size
    /// is not kept: once the layer reads again, the listing shows (and keeps) the real one.
    #[test]
    fn a_size_counted_from_a_blob_is_never_kept() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("root");
        let store = Store::open(&root).unwrap();
        let image = import(&store, tmp.path(), "a", &["CMD a".into()]);
        let real = rows(&Store::at(&root));
        std::fs::remove_file(root.join("oci").join(SUMMARIES)).unwrap();
        // Not unpacked, and its blob unreadable (same length, other bytes).
        let marker = store.layer_marker(&image.diff_ids[0]).unwrap();
        let _ = std::fs::remove_file(&marker);
        let _ = std::fs::remove_dir_all(&marker);
        let blob = store.blob_path(&image.layers[0]).unwrap();
        let good = std::fs::read(&blob).unwrap();
        std::fs::write(&blob, vec![b'x'; good.len()]).unwrap();
        let estimated = rows(&Store::at(&root));
        assert_ne!(estimated, real, "the size is the blob's");
        assert_eq!(on_disk(&root).by_manifest.len(), 0, "that size was kept");
        std::fs::write(&blob, &good).unwrap();
        assert_eq!(rows(&Store::at(&root)), real);
        assert_eq!(on_disk(&root).by_manifest.len(), 1);
    }

    #[test]
    fn an_entry_is_believed_only_while_the_blobs_keep_their_sizes() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open(&tmp.path().join("root")).unwrap();
        let img = import(&store, tmp.path(), "a", &["CMD a".into()]);
        let config = store.blob_path(&img.id).unwrap();
        std::fs::OpenOptions::new()
            .write(true)
            .open(&config)
            .unwrap()
            .set_len(10)
            .unwrap();
        let l = store.listing().unwrap();
        assert_eq!(l.len(), 1);
        assert!(
            l[0].damaged.as_deref().is_some_and(|w| w.contains("blob")),
            "{l:?}"
        );
    }

    #[test]
    fn lines_of_removed_images_are_never_listed_and_leave_at_a_rewrite() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("root");
        let store = Store::open(&root).unwrap();
        import(&store, tmp.path(), "a", &["CMD a".into()]);
        let b = import(&store, tmp.path(), "b", &["CMD b".into()]);
        store.remove("b", false, &|_| None).unwrap();
        assert_eq!(rows(&Store::at(&root)).len(), 1);
        assert_eq!(on_disk(&root).lines, 2);
        Store::at(&root).rebuild_summaries().unwrap();
        let left = on_disk(&root);
        assert!(left.by_manifest.values().all(|s| s.id != b.id), "{left:?}");
        assert_eq!(left.lines, 1);
    }
}
