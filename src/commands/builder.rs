//! `dockling builder prune`: the build cache, as Docker's `docker builder prune` empties
//! BuildKit's. dockling's build cache is the untagged images its build steps made (named in
//! `<root>/build-cache/`, the next build's `CACHED` hits) and the directories of
//! `RUN --mount=type=cache` (`<root>/build-cache-mounts/`). `image prune` leaves them alone,
//! as Docker's leaves the build cache alone; `builder prune` and `system prune` remove them.

use std::collections::HashSet;
use std::io::BufRead;
use std::os::fd::AsFd;

use crate::cli::{BuilderArgs, BuilderCommand, BuilderPruneArgs};
use crate::commands::{require_root, Context};
use crate::container::Containers;
use crate::error::{Error, Result};
use crate::image::format::human_size;
use crate::image::store::Store;

/// `dockling builder …`.
pub fn run(ctx: &Context, args: &BuilderArgs) -> Result<i32> {
    match &args.command {
        BuilderCommand::Prune(a) => prune(ctx, a),
    }
}

/// What the build cache holds: its objects (step images no tag or container uses, cache
/// mounts) and the bytes removing them would free (layers only those images hold, the cache
/// mounts' files).
pub fn usage(ctx: &Context) -> Result<(usize, u64)> {
    let store = Store::open(&ctx.root)?;
    let (steps, keep) = step_images(ctx, &store)?;
    let kept_layers: HashSet<String> = store
        .list()?
        .into_iter()
        .filter(|i| keep.contains(&i.id) || !steps.contains(&i.id))
        .flat_map(|i| i.diff_ids)
        .collect();
    let mut layers = HashSet::new();
    for id in &steps {
        if let Ok(image) = store.find(id) {
            layers.extend(
                image
                    .diff_ids
                    .into_iter()
                    .filter(|d| !kept_layers.contains(d)),
            );
        }
    }
    let mut bytes: u64 = layers.iter().filter_map(|d| store.layer_size(d)).sum();
    let mounts = cache_mounts(ctx);
    bytes += mounts.iter().map(|(_, b)| b).sum::<u64>();
    Ok((steps.len() - keep.len() + mounts.len(), bytes))
}

/// The step images the cache names (without the results of untagged builds, which `images`
/// lists), and those of them a tag or a container still uses.
fn step_images(ctx: &Context, store: &Store) -> Result<(HashSet<String>, HashSet<String>)> {
    let steps = store.build_intermediates();
    let tagged: HashSet<String> = store
        .list()?
        .into_iter()
        .filter(|i| i.reference.is_some())
        .map(|i| i.id)
        .collect();
    let used: HashSet<String> = Containers::open(&ctx.root)?
        .list()?
        .into_iter()
        .map(|c| c.spec.image_id)
        .collect();
    let keep = steps
        .iter()
        .filter(|id| tagged.contains(*id) || used.contains(*id))
        .cloned()
        .collect();
    Ok((steps, keep))
}

/// The cache mounts' directories and their sizes.
fn cache_mounts(ctx: &Context) -> Vec<(std::ffi::OsString, u64)> {
    let base = ctx.root.join("build-cache-mounts");
    std::fs::read_dir(&base)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| {
            let size = super::system::du(&e.path());
            (e.file_name(), size)
        })
        .collect()
}

/// Remove the build cache; the short ids of what went and the bytes freed.
pub fn prune_cache(ctx: &Context) -> Result<(Vec<String>, u64)> {
    let store = Store::open(&ctx.root)?;
    let containers = Containers::open(&ctx.root)?;
    let (steps, keep) = step_images(ctx, &store)?;
    // Asked again under the store lock as each image is removed (a `run` may start meanwhile).
    let used_by = |id: &str| super::image_user(&containers, id);
    let mut gone = Vec::new();
    let mut bytes = 0u64;
    let mut ordered: Vec<&String> = steps.iter().filter(|id| !keep.contains(*id)).collect();
    ordered.sort();
    for id in ordered {
        let Ok(image) = store.find(id) else { continue };
        let sizes: Vec<(String, u64)> = image
            .diff_ids
            .iter()
            .map(|d| (d.clone(), store.layer_size(d).unwrap_or(0)))
            .collect();
        match store.remove(id, false, &used_by) {
            Ok(lines) => {
                for line in lines {
                    if let Some(d) = line.strip_prefix("Deleted: ") {
                        bytes += sizes.iter().find(|(l, _)| l == d).map_or(0, |(_, s)| *s);
                    }
                }
                gone.push(id.trim_start_matches("sha256:")[..12].to_string());
            }
            // Taken by a container or a tag since the list was read: kept.
            Err(crate::error::Error::Image(
                crate::image::ImageError::ImageInUse { .. }
                | crate::image::ImageError::ImageTaggedTwice { .. },
            )) => continue,
            Err(e) => return Err(e),
        }
    }
    store.forget_missing_steps()?;
    // The cache mounts: whatever RUN steps left in them, removed through descriptors (a step's
    // container wrote there; a symlink in it is removed, never followed).
    let base = ctx.root.join("build-cache-mounts");
    if let Ok(dir) = crate::sys::fs::open_root(&base) {
        for (name, size) in cache_mounts(ctx) {
            crate::sys::fs::remove_at(dir.as_fd(), &name)
                .map_err(Error::io("remove the cache mount", base.join(&name)))?;
            gone.push(format!(
                "mount:{}",
                &name.to_string_lossy()[..12.min(name.len())]
            ));
            bytes += size;
        }
    }
    bytes += store.reclaim()?.bytes;
    Ok((gone, bytes))
}

/// `dockling builder prune [-a] [-f]`: Docker's question, the objects removed, the total.
fn prune(ctx: &Context, args: &BuilderPruneArgs) -> Result<i32> {
    require_root("builder prune")?;
    if !args.force {
        eprint!(
            "WARNING! This will remove all {}build cache. Are you sure you want to continue? [y/N] ",
            if args.all { "" } else { "dangling " }
        );
        let mut answer = String::new();
        let _ = std::io::stdin().lock().read_line(&mut answer);
        if !matches!(answer.trim(), "y" | "Y" | "yes") {
            return Ok(0);
        }
    }
    let (gone, bytes) = prune_cache(ctx)?;
    if !gone.is_empty() {
        println!("Deleted build cache objects:");
        for id in &gone {
            println!("{id}");
        }
        println!();
    }
    println!("Total reclaimed space: {}", human_size(bytes));
    Ok(0)
}
