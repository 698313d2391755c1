//! `dockling ps`: Docker's table of containers.

use std::time::SystemTime;

use crate::cli::PsArgs;
use crate::commands::{formatted, table, Context};
use crate::container::Containers;
use crate::error::Result;

/// Docker's columns for `ps`.
pub const HEADERS: &[&str] = &[
    "CONTAINER ID",
    "IMAGE",
    "COMMAND",
    "CREATED",
    "STATUS",
    "PORTS",
    "NAMES",
];

/// The fields a `--format` template sees in a row, and their column headers (Docker's).
pub const FIELDS: &[(&str, &str)] = &[
    ("ID", "CONTAINER ID"),
    ("Image", "IMAGE"),
    ("Command", "COMMAND"),
    ("CreatedAt", "CREATED AT"),
    ("RunningFor", "CREATED"),
    ("Ports", "PORTS"),
    ("State", "STATE"),
    ("Status", "STATUS"),
    ("Size", "SIZE"),
    ("Names", "NAMES"),
    ("Labels", "LABELS"),
    ("Mounts", "MOUNTS"),
    ("Networks", "NETWORKS"),
];

/// Docker's default `ps` table as a template (what `--format table` means).
const DEFAULT_TABLE: &str =
    "table {{.ID}}\\t{{.Image}}\\t{{.Command}}\\t{{.RunningFor}}\\t{{.Status}}\\t{{.Ports}}\\t{{.Names}}";

/// Docker's COMMAND cell: the command line quoted, cut to 20 characters with an ellipsis.
pub fn command_cell(args: &[String], no_trunc: bool) -> String {
    let cmd = args.join(" ");
    let short: String = if !no_trunc && cmd.chars().count() > 20 {
        cmd.chars().take(19).chain(std::iter::once('…')).collect()
    } else {
        cmd
    };
    format!("\"{short}\"")
}

/// `dockling ps`.
pub fn run(ctx: &Context, args: &PsArgs) -> Result<i32> {
    let containers = Containers::open(&ctx.root)?;
    // A container whose dockling was killed is shown as what it is (exited), not "Up". The
    // rows the reap read are the listing, unless it changed some.
    let listed = crate::commands::rm::reap_and_list(ctx, &containers)?;
    let now = SystemTime::now();
    let mut rows = vec![];
    let mut objects = vec![];
    // The host's cgroup mounts, read once for every row's freezer check.
    let mut layout = None;
    let parent = ctx.config.cgroup_parent.as_deref().unwrap_or("dockling");
    // The rows only (`container::Listing`): the spec's seccomp profile and the rest are
    // skipped, not built.
    for c in listed {
        // Each row's process is looked at once (its stat read once), for every column.
        // Restarting ones count as running, as in Docker's `ps`.
        let alive = c.is_alive();
        if !args.all && !alive && !c.restarting {
            continue;
        }
        let id = if args.no_trunc {
            c.spec.id.clone()
        } else {
            c.spec.id[..12].to_string()
        };
        if args.quiet {
            println!("{id}");
            continue;
        }
        let created = crate::image::format::ago(Some(&c.created), now);
        let paused = alive
            && c.spec.cgroup.is_some()
            && layout
                .get_or_insert_with(crate::cgroups::discover)
                .as_ref()
                .is_ok_and(|(version, hierarchies)| {
                    crate::cgroups::Cgroup::with_layout(
                        *version,
                        hierarchies.clone(),
                        parent,
                        &c.spec.id,
                    )
                    .is_frozen()
                });
        let status = if paused {
            format!("{} (Paused)", c.status_line_as(now, alive))
        } else {
            c.status_line_as(now, alive)
        };
        let ports = if alive {
            crate::network::ports::display_ports(&c.port_map(alive))
        } else {
            String::new()
        };
        if args.format.is_some() {
            objects.push(serde_json::json!({
                "ID": id,
                "Image": c.spec.image_ref,
                "Command": command_cell(&c.spec.args, args.no_trunc),
                "CreatedAt": c.created,
                "RunningFor": created,
                "Ports": ports,
                "State": if paused { "paused" } else { c.state_word_as(alive) },
                "Status": status,
                "Size": "0B",
                "Names": c.spec.name,
                "Labels": "",
                "Mounts": c.spec.volumes.iter().map(|v| v.source.display().to_string()).collect::<Vec<_>>().join(","),
                "Networks": c.spec.network_name(),
            }));
            continue;
        }
        rows.push(vec![
            id,
            c.spec.image_ref.clone(),
            command_cell(&c.spec.args, args.no_trunc),
            created,
            status,
            ports,
            c.spec.name.clone(),
        ]);
    }
    if args.quiet {
        return Ok(0);
    }
    match &args.format {
        Some(f) => print!("{}", formatted(f, DEFAULT_TABLE, FIELDS, &objects)?),
        None => print!("{}", table(HEADERS, &rows)),
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_commands_are_cut_like_docker() {
        let args: Vec<String> = ["sh", "-c", "while true; do sleep 1; done"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(command_cell(&args, false), "\"sh -c while true; d…\"");
        assert_eq!(command_cell(&args[..1], false), "\"sh\"");
    }
}
