//! `dockling images`: Docker's table of images.

use std::time::SystemTime;

use crate::cli::ImagesArgs;
use crate::commands::{formatted, table, Context};
use crate::error::Result;
use crate::image::{
    format::{ago, human_size},
    reference::Reference,
    store::Store,
};

/// The fields a `--format` template sees in a row, and their column headers (Docker's).
pub const FIELDS: &[(&str, &str)] = &[
    ("Repository", "REPOSITORY"),
    ("Tag", "TAG"),
    ("Digest", "DIGEST"),
    ("ID", "IMAGE ID"),
    ("CreatedSince", "CREATED"),
    ("CreatedAt", "CREATED AT"),
    ("Size", "SIZE"),
    ("Containers", "CONTAINERS"),
];

/// Docker's default `images` table as a template (what `--format table` means).
const DEFAULT_TABLE: &str =
    "table {{.Repository}}\\t{{.Tag}}\\t{{.ID}}\\t{{.CreatedSince}}\\t{{.Size}}";

/// `dockling images`.
pub fn run(ctx: &Context, args: &ImagesArgs) -> Result<i32> {
    let store = Store::open_to_read(&ctx.root)?;
    let filter = args
        .repository
        .as_deref()
        .map(Reference::parse)
        .transpose()?;
    let now = SystemTime::now();
    let mut rows = Vec::new();
    let mut objects = Vec::new();
    // A damaged image is listed too (by what its index entry says), with a warning: the
    // table is where a user finds the name to pull again or remove.
    // From the images' summaries (`store::summary`): no manifest or config is read unless
    // one is missing or its blobs changed size.
    let all = store.listing()?;
    // Newest first, sorted as indices: a sort of the rows themselves moved each (a few
    // hundred bytes) about log2(n) times.
    let mut order: Vec<usize> = (0..all.len()).collect();
    order.sort_by(|a, b| all[*b].created.cmp(&all[*a].created));
    // Untagged images a build made for its steps (its cache) are hidden, as Docker hides
    // intermediate images, unless -a.
    let intermediate = if args.all {
        Default::default()
    } else {
        store.build_intermediates()
    };
    for img in order.into_iter().map(|i| &all[i]) {
        if img.reference.is_none() && intermediate.contains(&img.id) {
            continue;
        }
        if let Some(why) = &img.damaged {
            eprintln!(
                "dockling: warning: image {} is damaged ({why})",
                img.reference
                    .as_ref()
                    .map(|r| r.familiar_tagged())
                    .unwrap_or_else(|| img.id[7..19].to_string())
            );
        }
        if let Some(f) = &filter {
            let Some(r) = &img.reference else { continue };
            let tag_given = args
                .repository
                .as_deref()
                .is_some_and(|s| s.rsplit('/').next().is_some_and(|l| l.contains(':')));
            if r.registry != f.registry
                || r.repository != f.repository
                || (tag_given && r.tag != f.tag)
            {
                continue;
            }
        }
        let id = if args.no_trunc {
            img.id.clone()
        } else {
            img.id[7..19].to_string()
        };
        if args.quiet {
            println!("{id}");
            continue;
        }
        let created = ago(img.created.as_deref(), now);
        let (repo, tag) = match &img.reference {
            Some(r) => (r.familiar(), r.tag_or_none().to_string()),
            None => ("<none>".into(), "<none>".into()),
        };
        if args.format.is_some() {
            objects.push(serde_json::json!({
                "Repository": repo,
                "Tag": tag,
                "Digest": img.repo_digest.as_deref().and_then(|d| d.rsplit_once('@')).map_or("<none>", |(_, d)| d),
                "ID": id,
                "CreatedSince": created,
                "CreatedAt": img.created.clone().unwrap_or_default(),
                "Size": human_size(img.size),
                "Containers": "N/A",
            }));
            continue;
        }
        let mut row = vec![repo, tag];
        if args.digests {
            row.push(img.repo_digest.clone().unwrap_or_else(|| "<none>".into()));
        }
        row.extend([id, created, human_size(img.size)]);
        rows.push(row);
    }
    if let (Some(f), false) = (&args.format, args.quiet) {
        print!("{}", formatted(f, DEFAULT_TABLE, FIELDS, &objects)?);
    } else if !args.quiet {
        let headers: &[&str] = if args.digests {
            &["REPOSITORY", "TAG", "DIGEST", "IMAGE ID", "CREATED", "SIZE"]
        } else {
            &["REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE"]
        };
        print!("{}", table(headers, &rows));
    }
    Ok(0)
}
