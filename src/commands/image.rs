//! `dockling image …` (Docker's management command) plus `history` and `image prune`.

use std::io::BufRead;
use std::time::SystemTime;

use crate::cli::{HistoryArgs, ImageArgs, ImageCommand, InspectArgs, PruneArgs};
use crate::commands::{require_root, table, Context};
use crate::container::Containers;
use crate::error::Result;
use crate::image::format::{ago, human_size};
use crate::image::store::Store;
use crate::image::ImageError;

/// `dockling image SUBCOMMAND`.
pub fn run(ctx: &Context, args: &ImageArgs) -> Result<i32> {
    match &args.command {
        ImageCommand::Ls(a) => super::images::run(ctx, a),
        ImageCommand::Inspect { images, format } => super::inspect::run(
            ctx,
            &InspectArgs {
                kind: Some("image".into()),
                names: images.clone(),
                format: format.clone(),
            },
        ),
        ImageCommand::History(a) => history(ctx, a),
        ImageCommand::Prune(a) => prune(ctx, a),
        ImageCommand::Rm(a) => super::rmi::run(ctx, a),
        ImageCommand::Pull(a) => super::pull::run(ctx, a),
        ImageCommand::Push(a) => super::push::run(ctx, a),
        ImageCommand::Tag(a) => super::tag::run(ctx, a),
        ImageCommand::Import(a) => super::import::run(ctx, a),
        ImageCommand::Layers(a) => super::layers::layers(ctx, a),
        ImageCommand::Diff(a) => super::layers::diff(ctx, a),
        ImageCommand::Save(a) => super::save::run(ctx, a),
        ImageCommand::Load(a) => super::load::run(ctx, a),
    }
}

/// Docker's `Ellipsis`: at most `max` characters, the last one `…` when cut.
fn ellipsis(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        s.chars().take(max - 1).collect::<String>() + "…"
    }
}

/// `dockling history IMAGE`: one row per step that built the image, newest first, with the
/// size of the layer it added (0B for a step that only changed the config).
pub fn history(ctx: &Context, args: &HistoryArgs) -> Result<i32> {
    let store = Store::open(&ctx.root)?;
    let image = store.find(&args.image)?;
    let history = image.config.history().clone();
    let mut layers = image.diff_ids.iter().zip(&image.layers);
    let now = SystemTime::now();
    let mut rows = Vec::new();
    for h in &history {
        let size = if h.empty_layer().unwrap_or(false) {
            0
        } else {
            match layers.next() {
                Some((diff_id, blob)) => {
                    store.docker_layer_size(blob, diff_id).unwrap_or_else(|| {
                        store
                            .blob_path(blob)
                            .ok()
                            .and_then(|p| std::fs::metadata(p).ok())
                            .map(|m| m.len())
                            .unwrap_or(0)
                    })
                }
                None => 0,
            }
        };
        let created = if args.human {
            ago(h.created().as_deref(), now)
        } else {
            h.created().clone().unwrap_or_default()
        };
        let by = h.created_by().clone().unwrap_or_default();
        let by = if args.no_trunc { by } else { ellipsis(&by, 45) };
        let size = if args.human {
            human_size(size)
        } else {
            size.to_string()
        };
        rows.push(vec![
            "<missing>".to_string(),
            created,
            by,
            size,
            h.comment().clone().unwrap_or_default(),
        ]);
    }
    rows.reverse();
    let id = if args.no_trunc {
        image.id.clone()
    } else {
        image.id[7..19].to_string()
    };
    match rows.first_mut() {
        Some(top) => top[0] = id,
        None => rows.push(vec![
            id,
            String::new(),
            String::new(),
            String::new(),
            String::new(),
        ]),
    }
    if args.quiet {
        for r in &rows {
            println!("{}", r[0]);
        }
    } else {
        print!(
            "{}",
            table(
                &["IMAGE", "CREATED", "CREATED BY", "SIZE", "COMMENT"],
                &rows
            )
        );
    }
    Ok(0)
}

/// `dockling image prune [-a] [-f]`: remove dangling images (or, with `-a`, every image no
/// container uses), as Docker does, asking first unless `-f`.
pub fn prune(ctx: &Context, args: &PruneArgs) -> Result<i32> {
    require_root("image prune")?;
    prune_images(ctx, args, 0)
}

/// The work of `image prune` (also `system prune`'s), adding `already` reclaimed bytes to
/// the total it prints.
pub fn prune_images(ctx: &Context, args: &PruneArgs, already: u64) -> Result<i32> {
    if !args.force {
        eprint!(
            "WARNING! This will remove all {}.\nAre you sure you want to continue? [y/N] ",
            if args.all {
                "images without at least one container associated to them"
            } else {
                "dangling images"
            }
        );
        let mut answer = String::new();
        let _ = std::io::stdin().lock().read_line(&mut answer);
        if !matches!(answer.trim(), "y" | "Y" | "yes") {
            return Ok(0);
        }
    }
    let store = Store::open(&ctx.root)?;
    let containers = Containers::open(&ctx.root)?;
    let listed = containers.rows()?;
    let used = |id: &str| listed.iter().any(|c| c.spec.image_id == id);
    // Asked again under the store lock as each image is removed (a `run` may start meanwhile).
    let used_by = |id: &str| super::image_user(&containers, id);
    let mut lines = Vec::new();
    let mut reclaimed = already;
    let mut done = std::collections::HashSet::new();
    // A damaged image (its config or manifest unreadable) is pruned too, by its index entry:
    // it is what a user most wants gone.
    let all = store.listing_to_remove()?;
    let tagged: std::collections::HashSet<&str> = all
        .iter()
        .filter(|i| i.reference.is_some())
        .map(|i| i.id.as_str())
        .collect();
    // The images build steps made are the build cache: `builder prune` (and `system prune`)
    // remove them, `image prune` leaves them, as Docker's leaves BuildKit's cache.
    let steps = store.build_intermediates();
    for image in &all {
        let dangling = !tagged.contains(image.id.as_str());
        if (!dangling && !args.all)
            || used(&image.id)
            || (dangling && steps.contains(&image.id))
            || !done.insert(image.id.clone())
        {
            continue;
        }
        let sizes: Vec<(String, u64)> = image
            .diff_ids
            .iter()
            .map(|d| (d.clone(), store.layer_size(d).unwrap_or(0)))
            .collect();
        let removed = match store.remove(&image.id, false, &used_by) {
            Ok(lines) => lines,
            // Taken by a container created since the list was read: kept, as Docker keeps it.
            Err(crate::error::Error::Image(
                ImageError::ImageInUse { .. } | ImageError::ImageTaggedTwice { .. },
            )) => continue,
            Err(e) => return Err(e),
        };
        for line in removed {
            if let Some(d) = line.strip_prefix("Deleted: ") {
                reclaimed += sizes
                    .iter()
                    .find(|(id, _)| id == d)
                    .map(|(_, s)| *s)
                    .unwrap_or(0);
            }
            lines.push(line.replacen("Untagged: ", "untagged: ", 1).replacen(
                "Deleted: ",
                "deleted: ",
                1,
            ));
        }
    }
    // With -a, also what no image names: an interrupted pull's blobs, dead temporary files.
    if args.all {
        reclaimed += store.reclaim()?.bytes;
    }
    if !lines.is_empty() {
        println!("Deleted Images:");
        for l in &lines {
            println!("{l}");
        }
        println!();
    }
    println!("Total reclaimed space: {}", human_size(reclaimed));
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ellipsis_cuts_like_docker() {
        assert_eq!(ellipsis("short", 45), "short");
        let long = "x".repeat(50);
        let cut = ellipsis(&long, 45);
        assert_eq!(cut.chars().count(), 45);
        assert!(cut.ends_with('…'));
    }
}
