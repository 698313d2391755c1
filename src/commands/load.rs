//! `dockling load [-i FILE]`: images from an archive (`crate::image::load`), from a file or
//! from stdin (never from a terminal). Errors exit 1, as Docker's CLI does.

use std::io::IsTerminal;

use crate::cli::LoadArgs;
use crate::commands::{require_root, save::exit_1, Context};
use crate::error::Result;
use crate::image::store::Store;
use crate::image::ArchiveError;

/// `dockling load`.
pub fn run(ctx: &Context, args: &LoadArgs) -> Result<i32> {
    exit_1(load(ctx, args))
}

fn load(ctx: &Context, args: &LoadArgs) -> Result<()> {
    if args.input.is_none() && std::io::stdin().is_terminal() {
        return Err(ArchiveError::StdinIsTerminal.into());
    }
    require_root("load")?;
    let store = Store::open(&ctx.root)?.with_limits(ctx.config.layer_limits()?);
    let lines = match &args.input {
        Some(path) => {
            let file = std::fs::File::open(path).map_err(|source| ArchiveError::Open {
                path: path.display().to_string(),
                source,
            })?;
            crate::image::load::load(&store, file, &path.display().to_string())?
        }
        None => crate::image::load::load(&store, std::io::stdin().lock(), "stdin")?,
    };
    if !args.quiet {
        for l in lines {
            println!("{l}");
        }
    }
    Ok(())
}
