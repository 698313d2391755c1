//! What can go wrong with images and the store, one variant per kind: each names the
//! operation, the object, and (where the user can do something) what to do next. Wrapped
//! by `crate::error::Error::Image` (exit code 125, as every engine failure); a missing image
//! stays `Error::NotFound`, which `run` asks for before it pulls.

use std::path::PathBuf;

/// An image, reference or store error.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    /// `dockling build` could not build the Dockerfile; the message names its line.
    #[error("{0}")]
    Build(String),
    /// An image reference that does not parse (`docker.io/library/busybox:latest`).
    #[error("invalid reference format {input:?}: {why}")]
    BadReference {
        /// What was given.
        input: String,
        /// Which rule it breaks.
        why: &'static str,
    },
    /// A digest that is not `sha256:` and 64 lowercase hex digits: it never names a file.
    #[error("invalid digest {digest:?}")]
    BadDigest {
        /// What was given.
        digest: String,
    },
    /// Several images have ids starting with the prefix given.
    #[error("image id prefix {prefix} is ambiguous: give more digits")]
    AmbiguousId {
        /// The prefix, as given.
        prefix: String,
    },
    /// `rmi` by id of an image several tags name, without `-f` (Docker's conflict).
    #[error("conflict: unable to delete {id} (must be forced) - image is referenced in multiple repositories: remove its tags one by one (dockling rmi NAME:TAG) or use rmi -f")]
    ImageTaggedTwice {
        /// The image's short id.
        id: String,
    },
    /// `rmi` of an image a container uses, without `-f` (Docker's conflict).
    #[error("conflict: unable to remove image {image} (must force) - container {container} is using its referenced image {id}: remove the container first (dockling rm {container}) or use rmi -f")]
    ImageInUse {
        /// The image, as named.
        image: String,
        /// Its short id.
        id: String,
        /// The short id of a container using it.
        container: String,
    },
    /// Another user than root met the store, which only root may enter.
    #[error("{op} {}: permission denied: the store is root's alone (it holds images' setuid files and device nodes): run dockling as root (sudo)", path.display())]
    StoreNotRoot {
        /// What was being done (`create`, `open`).
        op: &'static str,
        /// The store directory.
        path: PathBuf,
    },
    /// A store directory that is a symlink or a file.
    #[error("{} is not a directory (a symlink?): the store's directories must be real ones; move it away and run again", path.display())]
    NotADirectory {
        /// The store directory.
        path: PathBuf,
    },
    /// `index.json` cannot be used.
    #[error("the image index {} is broken ({why}): run `dockling system fsck --repair` to set it aside and rebuild it from the image manifests among the blobs", path.display())]
    BrokenIndex {
        /// Where it is.
        path: PathBuf,
        /// What is wrong with it.
        why: String,
    },
    /// A blob whose content does not hash to its name.
    #[error("blob {digest} is corrupt (its content hashes to {got}): pull the image again (it refetches the damaged blob), or remove it (dockling rmi -f); dockling system fsck lists all the damage")]
    CorruptBlob {
        /// Its name.
        digest: String,
        /// What its content hashes to.
        got: String,
    },
    /// A manifest blob that is not the JSON of a manifest.
    #[error("manifest {digest}: {why}")]
    BadManifest {
        /// The manifest's digest.
        digest: String,
        /// The parser's complaint.
        why: String,
    },
    /// A config blob that is not the JSON of an image config.
    #[error("config {digest}: {why}")]
    BadConfig {
        /// The config's digest (the image id).
        digest: String,
        /// The parser's complaint.
        why: String,
    },
    /// A config blob that is JSON but not an object.
    #[error("config {digest} is not a JSON object")]
    ConfigNotAnObject {
        /// The config's digest (the image id).
        digest: String,
    },
    /// A manifest and its config that disagree on the number of layers.
    #[error("image {id}: {layers} layers but {diff_ids} diff_ids in its config")]
    LayerCount {
        /// The image id.
        id: String,
        /// Layers in the manifest.
        layers: usize,
        /// diff_ids in the config.
        diff_ids: usize,
    },
    /// A layer blob that starts as zstd but is not.
    #[error("layer {blob} is not valid zstd: {why}")]
    BadZstd {
        /// The layer blob.
        blob: String,
        /// The decoder's complaint.
        why: String,
    },
    /// A layer whose uncompressed content is not the diff_id its image config promises.
    #[error("layer {blob} unpacks to sha256:{got}, but the image config says {diff_id}: the image is corrupt or was tampered with")]
    DiffIdMismatch {
        /// The layer blob.
        blob: String,
        /// The hex digest its content has.
        got: String,
        /// The diff_id the config gives.
        diff_id: String,
    },
    /// `import` of a file that does not exist.
    #[error("open {path}: no such file: give the path of a root filesystem tarball")]
    NoTarball {
        /// The path given.
        path: String,
    },
    /// `import` of something that cannot be read as a tar stream.
    #[error("read {path}: {source}: is it a tar file (plain or gzip)?")]
    NotATar {
        /// The path given (`-` for stdin).
        path: String,
        /// The read error.
        #[source]
        source: std::io::Error,
    },
    /// `import` of a file whose first block is no tar header (its content is not shown).
    #[error("{path} is not a tar archive ({why}): import takes a root filesystem as a tar file, plain or gzip")]
    NotATarArchive {
        /// The path given (`-` for stdin).
        path: String,
        /// What is wrong with its first block.
        why: &'static str,
    },
    /// `build` could not gzip a layer.
    #[error("compressing a layer: {0}")]
    Compress(#[source] std::io::Error),
    /// A `--change` instruction that is malformed.
    #[error("--change {change:?}: {why}")]
    BadChange {
        /// The instruction as given.
        change: String,
        /// What it needs.
        why: &'static str,
    },
    /// A `--change` instruction that `import` cannot apply.
    #[error("--change {instruction}: only CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, STOPSIGNAL, USER, VOLUME and WORKDIR can be changed")]
    UnknownChange {
        /// The instruction word.
        instruction: String,
    },
    /// This process's lease file is held by another (a pid reused while its lease lives).
    #[error("lease {} is taken", path.display())]
    LeaseTaken {
        /// The lease file.
        path: PathBuf,
    },
    /// `system fsck --repair` left a finding alone, and why.
    #[error("kept: {why}")]
    Kept {
        /// Why, and what the user can do.
        why: String,
    },
    /// `save` or `load` failed.
    #[error(transparent)]
    Archive(#[from] super::archive_error::ArchiveError),
}
