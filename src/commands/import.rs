//! `dockling import FILE [REFERENCE]`: a root filesystem tarball becomes a one-layer image.

use crate::cli::ImportArgs;
use crate::commands::{require_root, Context};
use crate::error::Result;
use crate::image::{reference::Reference, store::Store};

/// `dockling import`.
pub fn run(ctx: &Context, args: &ImportArgs) -> Result<i32> {
    require_root("import")?;
    let reference = args
        .reference
        .as_deref()
        .map(Reference::parse)
        .transpose()?;
    let store = Store::open(&ctx.root)?.with_limits(ctx.config.layer_limits()?);
    let image = store.import(
        &args.file,
        reference.as_ref(),
        &args.changes,
        args.message.as_deref(),
    )?;
    println!("{}", image.id);
    Ok(0)
}
