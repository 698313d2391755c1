//! `dockling system check`: what this host offers, one line per feature (see [`crate::host`]);
//! `dockling system fsck [--repair]`: the store checked, and repaired (see
//! [`crate::image::fsck`]).

use crate::cli::{SystemArgs, SystemCommand};
use crate::commands::{require_root, table, Context};
use crate::error::Result;
use crate::host::{self, Status};
use crate::image::fsck;

/// Run `dockling system …`.
pub fn run(ctx: &Context, args: &SystemArgs) -> Result<i32> {
    match args.command {
        SystemCommand::Fsck { repair } => fsck(ctx, repair),
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

/// `dockling system fsck [--repair]`: one line per finding (what, where, what `--repair` does
/// or did), then a summary; exit 0 when the store is clean, 1 when findings remain.
fn fsck(ctx: &Context, repair: bool) -> Result<i32> {
    require_root("system fsck")?;
    let parent = ctx
        .config
        .cgroup_parent
        .clone()
        .unwrap_or_else(|| "dockling".into());
    let found = fsck::check(&ctx.root, &parent)?;
    if !repair {
        for f in &found {
            println!("{}", f.line(&ctx.root));
        }
        if found.is_empty() {
            println!("fsck: the store {} is clean", ctx.root.display());
            return Ok(0);
        }
        println!(
            "fsck: {} finding{} in {}: run `dockling system fsck --repair` to repair what can be",
            found.len(),
            if found.len() == 1 { "" } else { "s" },
            ctx.root.display()
        );
        return Ok(1);
    }
    let mut repaired = 0;
    let mut total = found.len();
    let mut todo = found;
    let mut known: Vec<String> = Vec::new();
    // Checked again after each pass: a repair can reveal more (a rebuilt index shows which
    // layers are not unpacked; a dropped entry leaves its blobs orphan). Bounded: a fix that
    // keeps failing is reported, not retried forever.
    for pass in 0..3 {
        let done = fsck::repair(&ctx.root, &todo);
        for (line, _) in &done {
            println!("{line}");
        }
        let fixed = done.iter().filter(|(_, ok)| *ok).count();
        repaired += fixed;
        known.extend(todo.iter().map(|f| f.what.clone()));
        todo = fsck::check(&ctx.root, &parent)?
            .into_iter()
            .filter(|f| !known.contains(&f.what) && !matches!(f.fix, fsck::Fix::Keep(_)))
            .collect();
        if todo.is_empty() || fixed == 0 || pass == 2 {
            break;
        }
        total += todo.len();
    }
    let left = fsck::check(&ctx.root, &parent)?;
    for f in &left {
        println!("left: {}", f.line(&ctx.root));
    }
    if left.is_empty() {
        println!(
            "fsck: repaired {repaired} of {total} finding{}: the store {} is clean",
            if total == 1 { "" } else { "s" },
            ctx.root.display()
        );
        return Ok(0);
    }
    println!(
        "fsck: repaired {repaired} of {total} finding{}; {} left in {}",
        if total == 1 { "" } else { "s" },
        left.len(),
        ctx.root.display()
    );
    Ok(1)
}
