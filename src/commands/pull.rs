//! `dockling pull NAME[:TAG|@DIGEST]`.

use crate::cli::PullArgs;
use crate::commands::{require_root, Context};
use crate::error::Result;
use crate::image::{reference::Reference, store::Store};

/// `dockling pull`.
pub fn run(ctx: &Context, args: &PullArgs) -> Result<i32> {
    require_root("pull")?;
    let reference = Reference::parse(&args.name)?;
    crate::registry::trace::enable(args.transfer.trace);
    // Config `layers: erofs`: layers kept as their tar with an EROFS index, nothing unpacked.
    let store = Store::open(&ctx.root)?;
    let erofs =
        ctx.config.layers.map(|m| {
            crate::layers::erofs::effective(&crate::sys::Sys::quiet(), m, &ctx.root, true)
        }) == Some(crate::spec::LayersMode::Erofs);
    let store = store
        .with_limits(ctx.config.layer_limits()?)
        .with_erofs(erofs);
    let mut out: Box<dyn std::io::Write> = if args.transfer.quiet {
        Box::new(std::io::sink())
    } else {
        Box::new(std::io::stdout())
    };
    if !args.name.contains([':', '@'])
        || args
            .name
            .rsplit('/')
            .next()
            .is_some_and(|l| !l.contains([':', '@']))
    {
        let _ = writeln!(out, "Using default tag: latest");
    }
    let bars = !args.transfer.quiet && std::io::IsTerminal::is_terminal(&std::io::stdout());
    crate::registry::pull::pull(&store, &reference, &ctx.config, &mut *out, bars)?;
    println!("{reference}");
    Ok(0)
}
