//! `dockling lab up|status|down`.

use super::{require_root, Context};
use crate::cli::{LabArgs, LabCommand};
use crate::error::Result;
use crate::lab::Lab;

/// Run a lab subcommand.
pub fn run(ctx: &Context, args: &LabArgs) -> Result<i32> {
    let lab = Lab::new(&ctx.root, &ctx.config_path);
    let mut out = std::io::stdout().lock();
    match &args.command {
        LabCommand::Up { addr, with } => {
            require_root("lab up")?;
            lab.up(addr, with, &ctx.config, &mut out)?;
            Ok(0)
        }
        LabCommand::Status => Ok(if lab.status(&ctx.config, &mut out)? {
            0
        } else {
            1
        }),
        LabCommand::Down => {
            require_root("lab down")?;
            lab.down(&mut out)?;
            Ok(0)
        }
    }
}
