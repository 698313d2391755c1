//! overlayfs mount options.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// The largest option string `mount(2)` accepts: one page, with its NUL.
pub const MAX_DATA: usize = 4095;

fn check(p: &Path) -> Result<String> {
    let s = p.display().to_string();
    if s.contains([',', ':', '\\']) {
        return Err(Error::Usage(format!(
            "overlayfs cannot use {s}: the path contains ',', ':' or '\\'; use a --root without them"
        )));
    }
    Ok(s)
}

/// `lowerdir=top:…:bottom,upperdir=…,workdir=…` for layers given bottom first.
pub fn mount_data(lowers: &[PathBuf], upper: &Path, work: &Path) -> Result<String> {
    if lowers.is_empty() {
        return Err(Error::Usage("the image has no layers to mount".into()));
    }
    let lower: Vec<String> = lowers
        .iter()
        .rev()
        .map(|p| check(p))
        .collect::<Result<_>>()?;
    let data = format!(
        "lowerdir={},upperdir={},workdir={}",
        lower.join(":"),
        check(upper)?,
        check(work)?
    );
    if data.len() > MAX_DATA {
        return Err(Error::Usage(format!(
            "overlay options for {} layers are {} bytes, over the kernel's {MAX_DATA}: use a shorter --root or --layers copy",
            lowers.len(),
            data.len()
        )));
    }
    Ok(data)
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
