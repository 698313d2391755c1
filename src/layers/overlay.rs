//! overlayfs mount options.

use std::path::{Path, PathBuf};

use crate::error::Result;

/// The largest option string `mount(2)` accepts: one page, with its NUL.
pub const MAX_DATA: usize = 4095;

fn check(p: &Path) -> Result<String> {
    let s = p.display().to_string();
    if s.contains([',', ':', '\\']) {
        return Err(super::LayerError::OverlayPath {
            path: p.to_path_buf(),
        }
        .into());
    }
    Ok(s)
}

/// The layers given bottom first, top first, each directory once: an image may hold the same
/// layer twice (two `RUN`s that changed nothing both make the empty layer; BuildKit images
/// often repeat it), and overlayfs refuses a directory named twice in `lowerdir` (ELOOP).
/// Only the topmost copy is kept: whatever the lower copy holds — files, whiteouts, opaque
/// directories — the upper copy holds too and already covers everything the lower copy did,
/// so the merged tree is the same.
fn top_first_once(lowers: &[PathBuf]) -> Result<Vec<String>> {
    let mut seen = std::collections::HashSet::new();
    lowers
        .iter()
        .rev()
        .filter(|p| seen.insert(p.as_path()))
        .map(|p| check(p))
        .collect()
}

/// `data` if `mount(2)` takes it (one page), else the error naming the stack's size.
fn fits(data: String, layers: usize) -> Result<String> {
    if data.len() > MAX_DATA {
        return Err(super::LayerError::OverlayOptionsTooLong {
            layers,
            bytes: data.len(),
            max: MAX_DATA,
        }
        .into());
    }
    Ok(data)
}

/// `lowerdir=top:…:bottom,upperdir=…,workdir=…` for layers given bottom first.
pub fn mount_data(lowers: &[PathBuf], upper: &Path, work: &Path) -> Result<String> {
    if lowers.is_empty() {
        return Err(super::LayerError::NoLayers.into());
    }
    let lower = top_first_once(lowers)?;
    let data = format!(
        "lowerdir={},upperdir={},workdir={}",
        lower.join(":"),
        check(upper)?,
        check(work)?
    );
    fits(data, lowers.len())
}

/// `lowerdir=top:…:bottom` for directories given bottom first: a read-only overlay, no upper
/// or work directory (`export` reads a container's upper directory as its top layer, so it
/// never mounts the upper directory a running container writes in twice). Needs two.
pub fn read_only_data(lowers: &[PathBuf]) -> Result<String> {
    let lower = top_first_once(lowers)?;
    if lower.len() < 2 {
        return Err(super::LayerError::NoLayers.into());
    }
    let data = format!("lowerdir={}", lower.join(":"));
    fits(data, lowers.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lowerdir_lists_the_top_layer_first() {
        let d = mount_data(
            &["/l/bottom".into(), "/l/top".into()],
            Path::new("/c/upper"),
            Path::new("/c/work"),
        )
        .unwrap();
        assert_eq!(
            d,
            "lowerdir=/l/top:/l/bottom,upperdir=/c/upper,workdir=/c/work"
        );
    }

    #[test]
    fn a_layer_the_image_holds_twice_is_named_once_at_its_top_place() {
        let d = mount_data(
            &[
                "/l/base".into(),
                "/l/empty".into(),
                "/l/app".into(),
                "/l/empty".into(),
            ],
            Path::new("/c/upper"),
            Path::new("/c/work"),
        )
        .unwrap();
        assert_eq!(
            d,
            "lowerdir=/l/empty:/l/app:/l/base,upperdir=/c/upper,workdir=/c/work"
        );
        assert_eq!(
            read_only_data(&["/l/a".into(), "/l/a".into(), "/c/upper".into()]).unwrap(),
            "lowerdir=/c/upper:/l/a"
        );
    }

    #[test]
    fn bad_paths_and_long_stacks_are_refused() {
        assert!(mount_data(&["/l/a:b".into()], Path::new("/u"), Path::new("/w")).is_err());
        let many: Vec<PathBuf> = (0..100)
            .map(|i| PathBuf::from(format!("/var/lib/dockling/layers/sha256/{i:064}")))
            .collect();
        assert!(mount_data(&many, Path::new("/u"), Path::new("/w"))
            .unwrap_err()
            .to_string()
            .contains("4095"));
    }
}
