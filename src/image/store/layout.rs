//! Where the store keeps things under `<root>`: `oci/` (the OCI image layout: `index.json`,
//! `blobs/sha256/<hex>`), `layers/sha256/<diff_id hex>/` (unpacked layers) and
//! `layers/unpacked/<diff_id hex>` (the marker that one is complete), and who may enter them
//! (`secure_root`). Every path made from a digest goes through `hex_of` first.

use std::fs::{self, File};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use super::{Image, Store};
use crate::error::{Error, Result};
use crate::image::ImageError;

/// The hex part of a `sha256:<64 lowercase hex>` digest, checked before it names a file.
pub fn hex_of(digest: &str) -> Result<&str> {
    match digest.strip_prefix("sha256:") {
        Some(hex)
            if hex.len() == 64
                && hex
                    .bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) =>
        {
            Ok(hex)
        }
        _ => Err(ImageError::BadDigest {
            digest: digest.to_string(),
        }
        .into()),
    }
}

/// The store's directories that only root may enter, under `<root>`.
pub const PRIVATE_DIRS: [&str; 3] = ["oci", "layers", "containers"];

/// Create the store root (0711) and its private directories (0700), or check an existing
/// store and tighten what an older dockling left open (0755), saying so on stderr.
///
/// Why: unpacked layers and containers' upper directories hold the image's files with the
/// image's modes, setuid-root binaries and device nodes included. Were they reachable by every
/// user, any local user could run a setuid binary from an image or open a device node shipped
/// in a layer (moby's CVE-2021-41091). The root keeps `--x` for others (as Docker's
/// `/var/lib/docker` is 0710/0711) so a path handed to another program (the lab registry's
/// storage) can still be reached; everything with image content below is 0700.
/// The modes are given to mkdir(2) itself (`DirBuilder::mode`), so the directory never exists
/// with wider permissions, even for a moment; the umask can only narrow them further.
pub fn secure_root(root: &Path) -> Result<()> {
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
    // Another user than root meets a store only root may enter: say so, not just EACCES.
    let fail = |what: &'static str, path: &Path, e: std::io::Error| {
        if e.kind() == std::io::ErrorKind::PermissionDenied {
            ImageError::StoreNotRoot {
                op: what,
                path: path.to_path_buf(),
            }
            .into()
        } else {
            Error::io(what, path)(e)
        }
    };
    if let Some(parent) = root.parent().filter(|p| !p.as_os_str().is_empty()) {
        fs::create_dir_all(parent).map_err(|e| fail("create", parent, e))?;
    }
    let create = |path: &Path, mode: u32| match fs::DirBuilder::new().mode(mode).create(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(fail("create", path, e)),
    };
    create(root, 0o711)?;
    let mut tightened = Vec::new();
    // (directory, what group and others may never have); the root itself may be a symlink
    // the administrator made, the directories inside it may not.
    let dirs = std::iter::once((root.to_path_buf(), 0o066, 0)).chain(
        PRIVATE_DIRS
            .iter()
            .map(|d| (root.join(d), 0o077, libc::O_NOFOLLOW)),
    );
    for (path, forbidden, nofollow) in dirs {
        if path != root {
            create(&path, 0o700)?;
        }
        // Checked and changed through one fd: fstat(2) and fchmod(2) act on what was opened.
        let dir = File::options()
            .read(true)
            .custom_flags(libc::O_DIRECTORY | nofollow)
            .open(&path)
            .map_err(|e| match e.raw_os_error() {
                Some(libc::ELOOP) | Some(libc::ENOTDIR) => {
                    ImageError::NotADirectory { path: path.clone() }.into()
                }
                _ => fail("open", &path, e),
            })?;
        let mode = dir.metadata().map_err(Error::io("stat", &path))?.mode() & 0o7777;
        if mode & forbidden != 0 {
            let new = mode & !forbidden;
            dir.set_permissions(fs::Permissions::from_mode(new))
                .map_err(Error::io("chmod", &path))?;
            tightened.push(format!("{} {mode:04o} -> {new:04o}", path.display()));
        }
    }
    if !tightened.is_empty() {
        eprintln!(
            "dockling: the store was open to every user (a setuid file or device node in an image could be used by anyone): tightened {}",
            tightened.join(", ")
        );
    }
    Ok(())
}

impl Store {
    /// Where the markers of complete layers are (`layers/unpacked/`).
    pub(super) fn unpacked_dir(&self) -> PathBuf {
        self.layers.with_file_name("unpacked")
    }

    /// The marker that says the layer `diff_id` is completely unpacked (it holds the
    /// uncompressed size). `system fsck` checks it too.
    pub fn layer_marker(&self, diff_id: &str) -> Result<PathBuf> {
        Ok(self.unpacked_dir().join(hex_of(diff_id)?))
    }

    /// Where the layer `diff_id` is (or would be) unpacked, without unpacking it.
    pub fn layer_path(&self, diff_id: &str) -> Result<PathBuf> {
        Ok(self.layers.join(hex_of(diff_id)?))
    }

    /// True when the layer `diff_id` is unpacked completely: its marker and its directory.
    pub fn layer_complete(&self, diff_id: &str) -> bool {
        self.layer_marker(diff_id).is_ok_and(|m| m.is_file())
            && self.layer_path(diff_id).is_ok_and(|d| d.is_dir())
    }

    /// The size of a layer as Docker counts it (`sys::fs::docker_tree_size`: file contents,
    /// symlink targets, each inode once; not tar headers), once it has been unpacked: its
    /// marker holds it (`content-size N`). A marker written before it did holds the tar's
    /// length alone: then the unpacked directory is measured now (and not rewritten: reading
    /// commands stay read-only).
    pub fn layer_size(&self, diff_id: &str) -> Option<u64> {
        let Some(text) = fs::read_to_string(self.layer_marker(diff_id).ok()?).ok() else {
            // A layer kept as an EROFS image only (`--layers erofs`) has its size beside it.
            return self.erofs_layer_size(diff_id);
        };
        if let Some(n) = text
            .lines()
            .find_map(|l| l.strip_prefix("content-size "))
            .and_then(|n| n.trim().parse().ok())
        {
            return Some(n);
        }
        let dir = self.layer_path(diff_id).ok()?;
        let fd = crate::sys::fs::open_root(&dir).ok()?;
        crate::sys::fs::docker_tree_size(std::os::fd::AsFd::as_fd(&fd)).ok()
    }

    /// Where a blob is (or would be) stored.
    pub fn blob_path(&self, digest: &str) -> Result<PathBuf> {
        Ok(self.oci.join("blobs/sha256").join(hex_of(digest)?))
    }

    /// Where the layers of `image` are (or will be) unpacked, bottom first, without unpacking
    /// anything (for dry runs and for building a container's spec before its layers).
    pub fn layer_paths(&self, image: &Image) -> Result<Vec<PathBuf>> {
        image.diff_ids.iter().map(|d| self.layer_path(d)).collect()
    }
    /// The bytes the store holds: (blobs, unpacked layers by their markers).
    pub fn disk_usage(&self) -> (u64, u64) {
        let blobs = fs::read_dir(self.oci.join("blobs/sha256"))
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| e.metadata().ok())
            .map(|m| m.len())
            .sum();
        let layers = fs::read_dir(self.unpacked_dir())
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| {
                // `content-size N` (and `tar-size M`) since markers say both; a bare number
                // in older ones.
                fs::read_to_string(e.path()).ok().and_then(|t| {
                    t.lines()
                        .find_map(|l| l.strip_prefix("content-size "))
                        .unwrap_or(&t)
                        .trim()
                        .parse::<u64>()
                        .ok()
                })
            })
            .sum();
        (blobs, layers)
    }
}
