//! `dockling push NAME[:TAG]`.

use crate::cli::PushArgs;
use crate::commands::{require_root, Context};
use crate::error::Result;
use crate::image::{reference::Reference, store::Store};

/// `dockling push`.
pub fn run(ctx: &Context, args: &PushArgs) -> Result<i32> {
    require_root("push")?;
    let reference = Reference::parse(&args.name)?;
    crate::registry::trace::enable(args.transfer.trace);
    let store = Store::open(&ctx.root)?;
    let image = store.find(&args.name)?;
    let mut out: Box<dyn std::io::Write> = if args.transfer.quiet {
        Box::new(std::io::sink())
    } else {
        Box::new(std::io::stdout())
    };
    crate::registry::push::push(&store, &image, &reference, &ctx.config, &mut *out)?;
    Ok(0)
}
