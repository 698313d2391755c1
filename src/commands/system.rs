//! `dockling system check`: what this host offers, one line per feature (see [`crate::host`]).

use crate::cli::{SystemArgs, SystemCommand};
use crate::commands::{table, Context};
use crate::error::Result;
use crate::host::{self, Status};

/// Run `dockling system …`.
pub fn run(ctx: &Context, args: &SystemArgs) -> Result<i32> {
    match args.command {
        SystemCommand::Check => {
            let checks = host::checks(&ctx.root);
            let rows: Vec<Vec<String>> = checks
                .iter()
                .map(|c| {
                    vec![
                        c.name.to_string(),
                        c.status.label().to_string(),
                        c.detail.clone(),
                    ]
                })
                .collect();
            print!("{}", table(&["CHECK", "STATUS", "DETAIL"], &rows));
            let missing = checks
                .iter()
                .filter(|c| c.status == Status::Missing)
                .count();
            if missing > 0 {
                eprintln!(
                    "dockling: {missing} required feature{} missing: containers cannot run safely on this host",
                    if missing == 1 { " is" } else { "s are" }
                );
                return Ok(1);
            }
            Ok(0)
        }
    }
}
