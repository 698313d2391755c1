//! `dockling system check`: what this host offers, one line per feature (see [`crate::host`]);
//! `dockling system check|fsck|df|prune`: what this host offers ([`crate::host`]); the store
//! checked and repaired ([`crate::image::fsck`]); the disk the store takes, as Docker's table;
//! stopped containers, unused images and what interrupted commands left (Docker's `system
//! prune`).

use std::io::BufRead;

use crate::cli::{PruneArgs, SystemArgs, SystemCommand, SystemPruneArgs};
use crate::commands::{require_root, table, Context};
use crate::container::Containers;
use crate::error::Result;
use crate::host::{self, Status};
use crate::image::format::human_size;
use crate::image::fsck;
use crate::image::store::Store;

/// Run `dockling system …`.
pub fn run(ctx: &Context, args: &SystemArgs) -> Result<i32> {
    match &args.command {
        SystemCommand::Fsck { repair } => fsck(ctx, *repair),
        SystemCommand::Df => df(ctx),
        SystemCommand::Prune(a) => prune(ctx, a),
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
    // The images' summaries (`image::store::summary`) are made afresh from the images that
    // remain: a cache, never a finding (a listing reads what has none, and adds it).
    if let Ok(Some(store)) = crate::image::store::Store::open_existing(&ctx.root) {
        if let Err(e) = store.rebuild_summaries() {
            eprintln!("dockling: warning: the image summaries: {e}");
        }
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

/// Bytes of the files under `dir`, a container's upper directory: walked through
/// descriptors only (`sys::fs::tree_size`), since a running container can change it.
pub fn du(dir: &std::path::Path) -> u64 {
    crate::sys::fs::open_root(dir)
        .and_then(|d| crate::sys::fs::tree_size(std::os::fd::AsFd::as_fd(&d)))
        .unwrap_or(0)
}

/// Docker's RECLAIMABLE cell: `1.2MB (40%)`, just `0B` when there is nothing at all.
fn reclaimable(part: u64, total: u64) -> String {
    if total == 0 {
        return human_size(part);
    }
    format!("{} ({}%)", human_size(part), part * 100 / total)
}

/// `dockling system df`: Docker's four rows. Images: every byte of the store (blobs,
/// unpacked layers, EROFS layers' `layer.erofs`), reclaimable what no container's image
/// needs; containers: their writable layers; volumes: their `_data`; build cache: the step images no tag or container uses
/// (the bytes of the layers only they hold) and the `RUN --mount=type=cache` directories.
fn df(ctx: &Context) -> Result<i32> {
    require_root("system df")?;
    let store = Store::open(&ctx.root)?;
    let containers = Containers::open(&ctx.root)?.list()?;
    let images = store.list()?;
    let mut ids: Vec<&str> = images.iter().map(|i| i.id.as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
    let active: std::collections::HashSet<&str> = containers
        .iter()
        .map(|c| c.spec.image_id.as_str())
        .filter(|id| ids.contains(id))
        .collect();
    let (blobs, layers) = store.disk_usage();
    // Layers kept as EROFS images (`--layers erofs`) take their tar and index on disk.
    let size = blobs + layers + store.erofs_usage();
    // What the images in use need: their layers (unpacked, EROFS) and their blobs, each
    // counted once. Layers apart from blobs: an uncompressed layer's blob has its diff_id's
    // digest, and both take space.
    let mut needed = std::collections::HashSet::new();
    let mut layers_needed = std::collections::HashSet::new();
    let mut in_use = 0u64;
    for image in images.iter().filter(|i| active.contains(i.id.as_str())) {
        for (blob, diff_id) in image.layers.iter().zip(&image.diff_ids) {
            if layers_needed.insert(diff_id.clone()) {
                in_use += store.layer_disk_bytes(diff_id);
            }
            if needed.insert(blob.clone()) {
                in_use += store
                    .blob_path(blob)
                    .ok()
                    .and_then(|p| std::fs::metadata(p).ok())
                    .map_or(0, |m| m.len());
            }
        }
        for small in [&image.id, &image.manifest_digest] {
            if needed.insert(small.clone()) {
                in_use += store
                    .blob_path(small)
                    .ok()
                    .and_then(|p| std::fs::metadata(p).ok())
                    .map_or(0, |m| m.len());
            }
        }
    }
    let running = containers.iter().filter(|c| c.is_alive()).count();
    let sizes: Vec<(bool, u64)> = containers
        .iter()
        .map(|c| {
            (
                c.is_alive(),
                du(&ctx.root.join("containers").join(&c.spec.id).join("upper")),
            )
        })
        .collect();
    let c_size: u64 = sizes.iter().map(|(_, s)| s).sum();
    let c_free: u64 = sizes
        .iter()
        .filter(|(alive, _)| !alive)
        .map(|(_, s)| s)
        .sum();
    // Volumes: active when a container names them, reclaimable what the others hold.
    let volumes = crate::volume::Volumes::at(&ctx.root).list()?;
    let (mut v_size, mut v_free, mut v_active) = (0u64, 0u64, 0usize);
    for v in &volumes {
        let size = du(&v.mountpoint);
        v_size += size;
        let used = containers.iter().any(|c| {
            c.spec
                .volumes
                .iter()
                .any(|m| m.name.as_deref() == Some(&v.name))
        });
        if used {
            v_active += 1;
        } else {
            v_free += size;
        }
    }
    // The build cache: step images no tag or container uses, and cache mounts; none in use
    // once its build has ended.
    let (cache_objects, cache_bytes) = super::builder::usage(ctx)?;
    let rows = vec![
        vec![
            "Images".to_string(),
            ids.len().to_string(),
            active.len().to_string(),
            human_size(size),
            reclaimable(size.saturating_sub(in_use), size),
        ],
        vec![
            "Containers".to_string(),
            containers.len().to_string(),
            running.to_string(),
            human_size(c_size),
            reclaimable(c_free, c_size),
        ],
        vec![
            "Local Volumes".into(),
            volumes.len().to_string(),
            v_active.to_string(),
            human_size(v_size),
            reclaimable(v_free, v_size),
        ],
        vec![
            "Build Cache".into(),
            cache_objects.to_string(),
            "0".into(),
            human_size(cache_bytes),
            human_size(cache_bytes),
        ],
    ];
    print!(
        "{}",
        table(&["TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE"], &rows)
    );
    Ok(0)
}

/// `dockling system prune [-a] [-f]`: Docker's warning and question, then stopped containers,
/// dangling (with -a: unused) images, and the store's leftovers (blobs no image names, the
/// temporary files of killed commands, trash); Docker's "Total reclaimed space" at the end.
/// A container still being created (`Created`) is left alone: its `run` may be under way.
fn prune(ctx: &Context, args: &SystemPruneArgs) -> Result<i32> {
    require_root("system prune")?;
    if !args.force {
        eprint!(
            "WARNING! This will remove:\n  - all stopped containers\n  - {}\n  - what interrupted commands left in the store\n\nAre you sure you want to continue? [y/N] ",
            if args.all {
                "all images without at least one container associated to them"
            } else {
                "all dangling images"
            }
            .to_string()
                + if args.volumes {
                    "\n  - all anonymous volumes not used by at least one container"
                } else {
                    ""
                }
                + "\n  - unused build cache"
        );
        let mut answer = String::new();
        let _ = std::io::stdin().lock().read_line(&mut answer);
        if !matches!(answer.trim(), "y" | "Y" | "yes") {
            return Ok(0);
        }
    }
    let containers = Containers::open(&ctx.root)?;
    let mut deleted = Vec::new();
    let mut reclaimed = 0u64;
    for c in containers.list()? {
        if c.is_alive() || c.status == crate::container::Status::Created {
            continue;
        }
        let upper = du(&containers.bundle(&c.spec.id).join("upper"));
        if super::rm::remove(ctx, &containers, &c.spec.id, false).is_ok() {
            reclaimed += upper;
            deleted.push(c.spec.id);
        }
    }
    if !deleted.is_empty() {
        println!("Deleted Containers:");
        for id in &deleted {
            println!("{id}");
        }
        println!();
    }
    // `--volumes`: the anonymous volumes no container names any more (Docker 23+).
    if args.volumes {
        let (removed, bytes) = super::volume::prune_unused(ctx, false, &[])?;
        if !removed.is_empty() {
            println!("Deleted Volumes:");
            for n in &removed {
                println!("{n}");
            }
            println!();
        }
        reclaimed += bytes;
    }
    // The build cache, as Docker's `system prune` removes the unused build cache.
    let (objects, bytes) = super::builder::prune_cache(ctx)?;
    if !objects.is_empty() {
        println!("Deleted build cache objects:");
        for id in &objects {
            println!("{id}");
        }
        println!();
    }
    reclaimed += bytes;
    // The images (and, with -a or not, the store's leftovers) as `image prune` removes them.
    let store = Store::open(&ctx.root)?;
    reclaimed += store.reclaim()?.bytes;
    super::image::prune_images(
        ctx,
        &PruneArgs {
            all: args.all,
            force: true,
        },
        reclaimed,
    )
}
