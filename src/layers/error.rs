//! What can go wrong when a container's layers are stacked: paths overlayfs cannot take,
//! option strings over the kernel's page, a failed `--layers copy`.

use std::path::PathBuf;

/// A container's root file system could not be built from its layers.
#[derive(Debug, thiserror::Error)]
pub enum LayerError {
    /// A layer, upper or work directory whose path overlayfs's option syntax cannot carry.
    #[error("overlayfs cannot use {}: the path contains ',', ':' or '\\'; use a --root without them", path.display())]
    OverlayPath {
        /// The directory.
        path: PathBuf,
    },
    /// An image without layers.
    #[error("the image has no layers to mount")]
    NoLayers,
    /// The overlay mount options are longer than `mount(2)` accepts.
    #[error("overlay options for {layers} layers are {bytes} bytes, over the kernel's {max}: use a shorter --root or --layers copy")]
    OverlayOptionsTooLong {
        /// How many layers.
        layers: usize,
        /// How long the options are.
        bytes: usize,
        /// The most the kernel takes.
        max: usize,
    },
    /// `--layers copy` failed on an entry.
    #[error("--layers copy: {}: {source}", path.display())]
    Copy {
        /// The entry, relative to the layer.
        path: PathBuf,
        /// What failed.
        source: std::io::Error,
    },
}
