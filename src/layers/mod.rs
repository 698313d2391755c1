//! Image layers and the union file system.
//!
//! An image is a stack of layers, each a tar file of the changes it makes: files added or
//! changed, and *whiteouts* (`.wh.name`) for files it deletes. dockling unpacks each layer once
//! into its own directory (`<root>/layers/sha256/<diff_id>/`, shared by every image and
//! container that uses it), turning whiteouts into what overlayfs understands (a 0/0
//! character device; an "opaque" xattr for a directory that replaces everything below it).
//! A container then sees the stack through overlayfs: layers read-only below, its own `upper/`
//! on top for writes ([`overlay`]). `--layers copy` instead flattens the stack into a private
//! directory ([`copy`]), which shows why nobody does that: it costs time and disk per container.
//! Layer tars are untrusted: [`unpack`] never writes outside the layer directory.
//! The other way round, [`diff`] reads what a container changed (its upper directory, or its
//! copy against the layers) and [`commit`] writes that as a new layer tar.
//! Layer tars are untrusted: [`unpack`] never writes outside the layer directory. [`view`]
//! reads a layer's entries straight from its tar (who gives each file, who hides it, the bytes
//! nobody sees any more) and computes Docker's layer size.

pub mod commit;
pub mod copy;
pub mod diff;
pub mod erofs;
mod error;
pub mod overlay;
pub mod unpack;
pub mod view;

pub use error::LayerError;
