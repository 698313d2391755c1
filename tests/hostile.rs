//! Hostile input, built by the tests themselves: layer tars, images and registry answers made
//! to reach the host. Each case is refused with a clear error or contained; nothing outside the
//! store changes (mode, owner, mtime, content, new files: `common::tree_state` of a bait
//! directory before and after); and the store still works afterwards.
//!
//! One module per area (`tests/hostile/<area>.rs`), named after what each case attacks.

mod common;
#[path = "hostile/devices.rs"]
mod devices;
#[path = "hostile/registry.rs"]
mod registry;
#[path = "hostile/rootfs.rs"]
mod rootfs;
#[path = "hostile/unpack.rs"]
mod unpack;
