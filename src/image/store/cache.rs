//! The build cache (`dockling build`): `<root>/build-cache/<sha256 of the key>` holds the id
//! of the image a step made, the key being the parent image's id, the instruction as it ran
//! (variables substituted) and, for COPY/ADD, the digest of what it copied (each entry's
//! path, kind, mode, owner and link target or content digest; not mtimes, as in Docker). A
//! hit is used only while the store still holds that image (an `rmi` or `image prune` may
//! have taken it): the cache is a hint, checked each time, never a second source of truth.

use super::{digest_of, Image, Store};
use crate::error::{Error, Result};
use crate::files::write_atomic;

impl Store {
    /// The blobs directory: where a step's layer tar is written (unlinked) while it is made,
    /// on the file system its blob will be stored on.
    pub(crate) fn blob_dir(&self) -> std::path::PathBuf {
        self.oci.join("blobs/sha256")
    }

    fn cache_file(&self, key: &str) -> std::path::PathBuf {
        let hex = digest_of(key.as_bytes());
        self.oci
            .parent()
            .unwrap_or(&self.oci)
            .join("build-cache")
            .join(hex.trim_start_matches("sha256:"))
    }

    /// The image a step with this key made before, if the store still holds it.
    pub fn cached(&self, key: &str) -> Option<Image> {
        let id = std::fs::read_to_string(self.cache_file(key)).ok()?;
        let id = id.trim();
        if !id.starts_with("sha256:") {
            return None;
        }
        self.find(id).ok().filter(|i| i.id == id)
    }

    /// Remember the image a step with this key made.
    pub fn remember(&self, key: &str, image: &Image) -> Result<()> {
        let f = self.cache_file(key);
        if let Some(dir) = f.parent() {
            std::fs::create_dir_all(dir).map_err(Error::io("create", dir))?;
        }
        write_atomic(&f, image.id.as_bytes())
    }

    /// Mark `image` as what a build without `-t` made: listed by `images` as `<none>`, as
    /// Docker lists it, though its id is also a step's in the cache.
    pub fn remember_result(&self, image: &Image) -> Result<()> {
        let dir = self.oci.parent().unwrap_or(&self.oci).join("build-results");
        std::fs::create_dir_all(&dir).map_err(Error::io("create", &dir))?;
        write_atomic(
            &dir.join(image.id.trim_start_matches("sha256:")),
            image.id.as_bytes(),
        )
    }

    /// Forget the cache entries whose image the store no longer holds (after `builder prune`).
    pub fn forget_missing_steps(&self) -> Result<()> {
        let dir = self.oci.parent().unwrap_or(&self.oci).join("build-cache");
        for e in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let id = std::fs::read_to_string(e.path()).unwrap_or_default();
            if self.find(id.trim()).is_err() {
                match std::fs::remove_file(e.path()) {
                    Ok(()) => {}
                    Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
                    Err(err) => return Err(Error::io("remove", e.path())(err)),
                }
            }
        }
        Ok(())
    }

    /// The ids of the images build steps made (untagged, `images` hides them unless `-a`),
    /// without the results of untagged builds ([`Store::remember_result`]).
    pub fn build_intermediates(&self) -> std::collections::HashSet<String> {
        let base = self.oci.parent().unwrap_or(&self.oci);
        let ids = |dir: std::path::PathBuf| -> std::collections::HashSet<String> {
            std::fs::read_dir(dir)
                .into_iter()
                .flatten()
                .flatten()
                .filter_map(|e| std::fs::read_to_string(e.path()).ok())
                .map(|s| s.trim().to_string())
                .collect()
        };
        let results = ids(base.join("build-results"));
        ids(base.join("build-cache"))
            .into_iter()
            .filter(|id| !results.contains(id))
            .collect()
    }
}
