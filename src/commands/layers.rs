//! `dockling image layers IMAGE [--path P]` and `dockling image diff A B`: the layer view.
//! Thin: the store reads each layer's entries from its blob ([`Store::layer_entries`]),
//! [`crate::layers::view`] stacks them, this file prints.

use std::collections::HashMap;

use crate::cli::{ImageDiffArgs, ImageLayersArgs};
use crate::commands::{table, Context};
use crate::error::Result;
use crate::image::format::human_size;
use crate::image::store::{Image, Store};
use crate::layers::view::{self, Entry, Kind, Merged, PathEvent};

/// The `created_by` of each layer of `image`, bottom first: the history entries that are
/// not `empty_layer`, in order (an image without history gets empty strings).
fn created_by(image: &Image) -> Vec<String> {
    let mut by = image
        .config
        .history()
        .iter()
        .filter(|h| !h.empty_layer().unwrap_or(false))
        .map(|h| h.created_by().clone().unwrap_or_default());
    image
        .layers
        .iter()
        .map(|_| by.next().unwrap_or_default())
        .collect()
}

fn short(diff_id: &str, no_trunc: bool) -> String {
    if no_trunc {
        diff_id.to_string()
    } else {
        diff_id
            .strip_prefix("sha256:")
            .unwrap_or(diff_id)
            .chars()
            .take(12)
            .collect()
    }
}

fn cut(s: &str, no_trunc: bool) -> String {
    if no_trunc || s.chars().count() <= 45 {
        s.to_string()
    } else {
        s.chars().take(44).collect::<String>() + "…"
    }
}

/// A short description of an entry: `file 1.2kB 0644 0:0`, `symlink -> /etc` (the target
/// as written, never followed), …
pub fn describe(e: &Entry) -> String {
    let owner = format!("{:04o} {}:{}", e.mode & 0o7777, e.uid, e.gid);
    match &e.kind {
        Kind::File { .. } => format!("file {} {owner}", human_size(e.size)),
        Kind::Dir => format!("directory {owner}"),
        Kind::Symlink(t) => format!("symlink -> {t}"),
        Kind::HardLink(t) => format!("hard link to /{t}"),
        Kind::Device(c, ma, mi) => {
            format!("{} device {ma}:{mi}", if *c { "char" } else { "block" })
        }
        Kind::Fifo => format!("fifo {owner}"),
        Kind::Whiteout => "whiteout".into(),
        Kind::Opaque => "opaque directory".into(),
    }
}

/// The entries of every layer of `image`, bottom first.
fn entries_of(store: &Store, image: &Image) -> Result<Vec<Vec<Entry>>> {
    image
        .layers
        .iter()
        .zip(&image.diff_ids)
        .map(|(b, d)| store.layer_entries(b, d))
        .collect()
}

/// The `image layers` table: one row per layer, bottom first, and a TOTAL row.
pub fn layers_table(
    diff_ids: &[String],
    created_by: &[String],
    stats: &[view::LayerStats],
    no_trunc: bool,
) -> String {
    let mut rows = Vec::new();
    let mut total = view::LayerStats::default();
    for (i, s) in stats.iter().enumerate() {
        rows.push(vec![
            (i + 1).to_string(),
            short(&diff_ids[i], no_trunc),
            cut(&created_by[i], no_trunc),
            human_size(s.size),
            s.added.to_string(),
            s.changed.to_string(),
            s.whiteouts.to_string(),
            s.opaque.to_string(),
            human_size(s.wasted),
        ]);
        total.size += s.size;
        total.added += s.added;
        total.changed += s.changed;
        total.whiteouts += s.whiteouts;
        total.opaque += s.opaque;
        total.wasted += s.wasted;
    }
    rows.push(vec![
        "TOTAL".into(),
        String::new(),
        String::new(),
        human_size(total.size),
        total.added.to_string(),
        total.changed.to_string(),
        total.whiteouts.to_string(),
        total.opaque.to_string(),
        human_size(total.wasted),
    ]);
    let mut out = table(
        &[
            "LAYER",
            "DIFF ID",
            "CREATED BY",
            "SIZE",
            "ADDED",
            "CHANGED",
            "WHITEOUTS",
            "OPAQUE",
            "WASTED",
        ],
        &rows,
    );
    if total.wasted > 0 {
        out.push_str(&format!(
            "{} of the image is in lower layers but hidden by upper ones (overwritten or deleted): still stored, still pulled\n",
            human_size(total.wasted)
        ));
    }
    out
}

/// `dockling image layers IMAGE [--path P]`.
pub fn layers(ctx: &Context, args: &ImageLayersArgs) -> Result<i32> {
    let store = Store::open(&ctx.root)?.with_limits(ctx.config.layer_limits()?);
    let image = store.find(&args.image)?;
    let entries = entries_of(&store, &image)?;
    let by = created_by(&image);
    if let Some(path) = &args.path {
        let events = view::path_history(&entries, path);
        let shown = format!("/{}", view::normalise(path));
        if events.is_empty() {
            eprintln!("{shown}: no layer of {} has it", args.image);
            return Ok(1);
        }
        let rows: Vec<Vec<String>> = events
            .iter()
            .map(|(i, ev)| {
                let what = match ev {
                    PathEvent::Adds(e) => format!("adds {shown}: {}", describe(e)),
                    PathEvent::Replaces(e) => format!("replaces {shown}: {}", describe(e)),
                    PathEvent::WhitesOut { at } => {
                        let (dir, name) = at.rsplit_once('/').unwrap_or(("", at));
                        let wh = if dir.is_empty() {
                            format!("/.wh.{name}")
                        } else {
                            format!("/{dir}/.wh.{name}")
                        };
                        format!("deletes {shown}: whiteout {wh}")
                    }
                    PathEvent::Opaque { dir } => {
                        format!("hides {shown}: opaque directory /{dir} (.wh..wh..opq)")
                    }
                    PathEvent::ParentReplaced(e) => {
                        format!("hides {shown}: /{} is now a {}", e.path, describe(e))
                    }
                };
                vec![
                    (i + 1).to_string(),
                    short(&image.diff_ids[*i], args.no_trunc),
                    cut(&by[*i], args.no_trunc),
                    what,
                ]
            })
            .collect();
        print!(
            "{}",
            table(&["LAYER", "DIFF ID", "CREATED BY", "WHAT"], &rows)
        );
        let mut merged = Merged::default();
        for (i, e) in entries.iter().enumerate() {
            merged.apply(i, e);
        }
        match merged.files.get(&view::normalise(path)) {
            Some((i, _)) => println!("{shown} is given by layer {}", i + 1),
            None => println!("{shown} is not in the image: a layer above hides it"),
        }
        return Ok(0);
    }
    let mut merged = Merged::default();
    let stats: Vec<_> = entries
        .iter()
        .enumerate()
        .map(|(i, e)| merged.apply(i, e))
        .collect();
    print!(
        "{}",
        layers_table(&image.diff_ids, &by, &stats, args.no_trunc)
    );
    Ok(0)
}

/// `dockling image diff A B`: what changed from A to B, as `docker diff` prints it.
/// The bottom layers both stacks share are read once and merged once; identical stacks read
/// nothing. Each distinct layer is read once.
pub fn diff(ctx: &Context, args: &ImageDiffArgs) -> Result<i32> {
    let store = Store::open(&ctx.root)?.with_limits(ctx.config.layer_limits()?);
    let a = store.find(&args.a)?;
    let b = store.find(&args.b)?;
    if a.diff_ids == b.diff_ids {
        return Ok(0);
    }
    let shared = a
        .diff_ids
        .iter()
        .zip(&b.diff_ids)
        .take_while(|(x, y)| x == y)
        .count();
    let mut cache: HashMap<String, Vec<Entry>> = HashMap::new();
    let mut read = |blob: &str, diff_id: &str| -> Result<Vec<Entry>> {
        if let Some(e) = cache.get(diff_id) {
            return Ok(e.clone());
        }
        let e = store.layer_entries(blob, diff_id)?;
        cache.insert(diff_id.to_string(), e.clone());
        Ok(e)
    };
    let mut base = Merged::default();
    for i in 0..shared {
        base.apply(i, &read(&a.layers[i], &a.diff_ids[i])?);
    }
    let mut stack = |img: &Image| -> Result<Merged> {
        let mut m = base.clone();
        for i in shared..img.layers.len() {
            m.apply(i, &read(&img.layers[i], &img.diff_ids[i])?);
        }
        Ok(m)
    };
    let ma = stack(&a)?;
    let mb = stack(&b)?;
    for (c, p) in view::diff(&ma, &mb) {
        println!("{c} {p}");
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_layers_table_has_docker_sizes_counts_and_a_total() {
        let stats = [
            view::LayerStats {
                size: 1_984_000,
                added: 404,
                ..Default::default()
            },
            view::LayerStats {
                size: 5_000_000,
                added: 1,
                ..Default::default()
            },
            view::LayerStats {
                size: 204,
                changed: 1,
                whiteouts: 1,
                opaque: 1,
                wasted: 5_000_000,
                ..Default::default()
            },
        ];
        let ids: Vec<String> = ["a", "b", "c"]
            .iter()
            .map(|c| format!("sha256:{}", c.repeat(64)))
            .collect();
        let by = vec![
            "/bin/sh -c #(nop) ADD file:0123456789abcdef0123456789abcdef in /".to_string(),
            "dd if=/dev/zero of=/big bs=1M count=5".to_string(),
            "rm /big".to_string(),
        ];
        insta::assert_snapshot!(layers_table(&ids, &by, &stats, false));
    }
}
