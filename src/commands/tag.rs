//! `dockling tag SOURCE TARGET`: one more name for an image (no data is copied).

use crate::cli::TagArgs;
use crate::commands::{require_root, Context};
use crate::error::Result;
use crate::image::{reference::Reference, store::Store};

/// `dockling tag`.
pub fn run(ctx: &Context, args: &TagArgs) -> Result<i32> {
    require_root("tag")?;
    let store = Store::open(&ctx.root)?;
    let image = store.find(&args.source)?;
    let target = Reference::parse(&args.target)?;
    let size = store.read_blob(&image.manifest_digest)?.len() as u64;
    store.add_to_index(&image.manifest_digest, size, Some(&target), None)?;
    Ok(0)
}
