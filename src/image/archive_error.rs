//! What can go wrong saving images into an archive or loading them from one (`save`, `load`):
//! each error names the archive entry or blob, and what the user can do. Wrapped by
//! [`super::ImageError::Archive`].

/// A `save` or `load` error.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    /// A blob of the store that is missing, cut short or altered, met while saving.
    #[error("blob {digest} in the store is damaged ({why}): run `dockling system fsck` (and pull the image again)")]
    DamagedBlob {
        /// The blob.
        digest: String,
        /// What is wrong with it.
        why: String,
    },
    /// Writing the archive failed (a full disk, a reader gone).
    #[error("writing the archive: {0}")]
    Write(#[source] std::io::Error),
    /// `load` of a file that does not exist or cannot be opened.
    #[error("open {path}: {source}")]
    Open {
        /// The path given.
        path: String,
        /// Why it cannot be opened.
        #[source]
        source: std::io::Error,
    },
    /// The input is not a tar stream, or one whose headers are broken.
    #[error("{source_name} is not a valid tar archive, or is cut short ({why}): load takes what `docker save`, `podman save` or `dockling save` wrote (plain, gzip or zstd)")]
    NotATar {
        /// The archive (`-` for stdin).
        source_name: String,
        /// What is wrong.
        why: String,
    },
    /// The stream ended inside an entry.
    #[error("{source_name} ends in the middle of {entry} ({why}): the archive is truncated; save it again")]
    Truncated {
        /// The archive.
        source_name: String,
        /// The entry being read.
        entry: String,
        /// The read error.
        why: String,
    },
    /// An entry whose name is absolute or climbs out with `..`.
    #[error("{source_name}: entry {entry:?} points outside the archive (an absolute path or ..): refused, nothing was loaded")]
    EscapingEntry {
        /// The archive.
        source_name: String,
        /// The entry's name.
        entry: String,
    },
    /// An entry of a type no image archive holds (device, FIFO).
    #[error("{source_name}: entry {entry:?} is a {kind}, which no image archive holds: refused, nothing was loaded")]
    UnexpectedEntry {
        /// The archive.
        source_name: String,
        /// The entry's name.
        entry: String,
        /// Its type.
        kind: String,
    },
    /// Two entries with the same name.
    #[error("{source_name}: entry {entry:?} appears twice: refused, nothing was loaded")]
    DuplicateEntry {
        /// The archive.
        source_name: String,
        /// The entry's name.
        entry: String,
    },
    /// A metadata file (`manifest.json`, `index.json`...) too large to be one.
    #[error(
        "{source_name}: {entry} is larger than {limit} bytes: not an image archive's metadata"
    )]
    TooLarge {
        /// The archive.
        source_name: String,
        /// The entry.
        entry: String,
        /// The limit.
        limit: u64,
    },
    /// `blobs/sha256/<hex>` whose content has another digest.
    #[error("{source_name}: {entry} hashes to {got}, not to its name: the archive is damaged or was altered; nothing was loaded")]
    WrongDigest {
        /// The archive.
        source_name: String,
        /// The entry.
        entry: String,
        /// What its content hashes to.
        got: String,
    },
    /// A blob whose size is not the one its descriptor gives.
    #[error("{source_name}: {entry} holds {got} bytes where its descriptor says {want}: the archive is damaged; nothing was loaded")]
    WrongSize {
        /// The archive.
        source_name: String,
        /// The entry.
        entry: String,
        /// Its size.
        got: u64,
        /// The descriptor's.
        want: u64,
    },
    /// A config whose file name promises a digest its content does not have.
    #[error("{source_name}: the config {entry} hashes to {got}: the archive is damaged or was altered; nothing was loaded")]
    WrongConfigDigest {
        /// The archive.
        source_name: String,
        /// The entry.
        entry: String,
        /// What it hashes to.
        got: String,
    },
    /// `manifest.json` or `index.json` names a file the archive does not hold.
    #[error("{source_name}: {what} names {entry}, which is not in the archive: the archive is incomplete; nothing was loaded")]
    MissingEntry {
        /// The archive.
        source_name: String,
        /// Which file names it.
        what: String,
        /// The missing entry.
        entry: String,
    },
    /// Neither `manifest.json` nor `index.json`.
    #[error("{source_name} holds no image: neither manifest.json (docker save) nor index.json (an OCI layout) is in it")]
    NoManifest {
        /// The archive.
        source_name: String,
    },
    /// A metadata file that does not parse.
    #[error("{source_name}: {entry}: {why}")]
    BadMetadata {
        /// The archive.
        source_name: String,
        /// The entry.
        entry: String,
        /// What the parser said.
        why: String,
    },
    /// A symlink or hard link chain that loops or leaves the archive.
    #[error(
        "{source_name}: the link {entry} leads nowhere inside the archive (a loop, or out of it): refused, nothing was loaded"
    )]
    BadLink {
        /// The archive.
        source_name: String,
        /// The link.
        entry: String,
    },
    /// An OCI index naming no image for this platform.
    #[error("{source_name}: {entry} has no image for linux/{arch}")]
    NoPlatform {
        /// The archive.
        source_name: String,
        /// The index entry.
        entry: String,
        /// This machine's architecture.
        arch: &'static str,
    },
    /// Reading from a terminal: `load` without `-i` and nothing piped in (Docker's words).
    #[error("requested load from stdin, but stdin is empty")]
    StdinIsTerminal,
    /// Writing to a terminal: `save`/`export` without `-o` (Docker's words).
    #[error("cowardly refusing to save to a terminal. Use the -o flag or redirect")]
    StdoutIsTerminal,
}

impl From<ArchiveError> for crate::error::Error {
    fn from(e: ArchiveError) -> Self {
        super::ImageError::Archive(e).into()
    }
}
