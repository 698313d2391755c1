//! Images: references, the content-addressed store, and display helpers.
//!
//! The store is an OCI image layout (`<root>/oci/`: `oci-layout`, `index.json`,
//! `blobs/sha256/…`), so `skopeo inspect oci:<root>/oci:<name>` and `umoci` read it as is.
//! Each tag is one manifest entry of `index.json` named by the annotation
//! `org.opencontainers.image.ref.name`. Layers are also kept unpacked, once each, by their
//! uncompressed digest (`<root>/layers/sha256/<diff_id>/`), ready to be overlay lowerdirs.
//!
//! `store` is that store; `build` makes images from tars (`import`, the lab's `build`),
//! `change` applies `--change` lines to their config, `dockerfile` parses what `dockling
//! build` builds and `context` makes its COPY layers, `fsck` checks and repairs the store,
//! `save` and `load` write and read Docker's and OCI image archives, `oci` writes oci-spec's
//! manifests, indexes and descriptors as deterministic bytes, and every failure of these is
//! an [`ImageError`].

mod archive_error;
mod build;
pub(crate) mod change;
pub mod commit;
pub mod context;
pub mod dockerfile;
mod error;
pub mod format;
pub mod fsck;
pub(crate) mod gunzip;
pub(crate) mod hashing;
pub mod load;
mod oci;
pub mod reference;
pub mod save;
pub mod store;

pub use archive_error::ArchiveError;
pub use error::ImageError;
