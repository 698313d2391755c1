//! `dockling volume create|ls|inspect|rm|prune`, and the volume work of `run` and `rm`:
//! [`attach`] makes the volumes a new container names (under the volumes' lock, held until its
//! record exists), [`remove_anonymous`] takes back a removed container's anonymous ones.
//! Which containers use a volume is read from their records, running or not: Docker refuses
//! to remove a volume any container still names.

use std::collections::BTreeMap;

use crate::cli::{VolumeArgs, VolumeCommand};
use crate::commands::{formatted, require_root, table, Context};
use crate::container::Containers;
use crate::error::{Error, Result};
use crate::spec::RunSpec;
use crate::volume::{VolumeError, Volumes, ANONYMOUS_LABEL};

/// The fields a `volume ls --format` template sees, and their column headers (Docker's).
const FIELDS: &[(&str, &str)] = &[
    ("Driver", "DRIVER"),
    ("Name", "VOLUME NAME"),
    ("Mountpoint", "MOUNTPOINT"),
    ("Labels", "LABELS"),
    ("Scope", "SCOPE"),
    ("CreatedAt", "CREATED"),
];

/// Docker's default `volume ls` table as a template.
const DEFAULT_TABLE: &str = "table {{.Driver}}\t{{.Name}}";

/// The volumes `run` made for a container whose record does not exist yet: taken back if it
/// is never written. Holds the volumes' lock until dropped. Dropped without [`Attached::done`]
/// (an early `?` or return of `run`), it removes them: a failed run leaves no volume behind.
pub struct Attached {
    volumes: Volumes,
    made: Vec<String>,
    kept: bool,
    _lock: crate::files::Lock,
}

impl Attached {
    /// The record exists: the volumes are the container's; let `volume rm` in.
    pub fn done(mut self) {
        self.kept = true;
    }

    /// The container was not recorded: remove the volumes this run made.
    pub fn undo(self) {}
}

impl Drop for Attached {
    fn drop(&mut self) {
        if !self.kept {
            // Still under the lock (the field is dropped after this).
            for name in &self.made {
                let _ = self.volumes.remove(name);
            }
        }
    }
}

/// Make the store volumes `spec` names (named ones on first use, anonymous ones with a fresh
/// name) and point each one's `source` at its `_data`.
pub fn attach(ctx: &Context, spec: &mut RunSpec) -> Result<Option<Attached>> {
    if !spec.volumes.iter().any(|v| v.in_store()) {
        return Ok(None);
    }
    let volumes = Volumes::open(&ctx.root)?;
    let lock = volumes.lock()?;
    let mut made = Vec::new();
    for v in spec.volumes.iter_mut().filter(|v| v.in_store()) {
        let mut labels = BTreeMap::new();
        if v.anonymous {
            labels.insert(ANONYMOUS_LABEL.to_string(), String::new());
        }
        match volumes.create(v.name.as_deref(), labels) {
            Ok((vol, created)) => {
                if created {
                    made.push(vol.name.clone());
                }
                v.source = vol.mountpoint.clone();
                v.name = Some(vol.name);
            }
            Err(e) => {
                for name in &made {
                    let _ = volumes.remove(name);
                }
                return Err(e);
            }
        }
    }
    Ok(Some(Attached {
        volumes,
        made,
        kept: false,
        _lock: lock,
    }))
}

/// A dry run (`explain`): where each store volume would be, creating nothing (an anonymous
/// one's name is not known yet).
pub fn preview(ctx: &Context, spec: &mut RunSpec) {
    let volumes = Volumes::at(&ctx.root);
    for v in spec.volumes.iter_mut().filter(|v| v.in_store()) {
        v.source = volumes.data(v.name.as_deref().unwrap_or("<anonymous>"));
    }
}

/// The containers (ids) whose records name the volume `name`.
fn users(containers: &Containers, name: &str) -> Result<Vec<String>> {
    Ok(containers
        .list()?
        .into_iter()
        .filter(|c| {
            c.spec
                .volumes
                .iter()
                .any(|v| v.name.as_deref() == Some(name))
        })
        .map(|c| c.spec.id)
        .collect())
}

/// After a container is removed: its anonymous volumes that no other container names (`rm -v`,
/// `run --rm`). Named volumes are kept, as Docker keeps them. Best effort: a failure is a
/// warning, the container is gone already.
pub fn remove_anonymous(root: &std::path::Path, spec: &RunSpec) {
    let anonymous: Vec<&str> = spec
        .volumes
        .iter()
        .filter(|v| v.anonymous)
        .filter_map(|v| v.name.as_deref())
        .collect();
    if anonymous.is_empty() {
        return;
    }
    let volumes = Volumes::at(root);
    let mut trashed = Vec::new();
    let done = (|| -> Result<()> {
        let _lock = volumes.lock()?;
        let containers = Containers::open(root)?;
        for name in anonymous {
            if users(&containers, name)?.is_empty() {
                match volumes.trash(name) {
                    Ok(t) => trashed.push(t),
                    Err(Error::Volume(VolumeError::NotFound(_))) => {}
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(())
    })()
    .and_then(|()| {
        // Deleted after the lock is released (a big volume does not hold up `run`).
        trashed.drain(..).try_for_each(crate::volume::Trash::delete)
    });
    if let Err(e) = done {
        eprintln!(
            "dockling: warning: the anonymous volumes of {}: {e}",
            spec.name
        );
    }
}

/// Trash `name` unless a container uses it (the caller holds the volumes' lock). Its
/// `opts.json` is not needed: a damaged volume can be removed.
fn trash_unused(
    volumes: &Volumes,
    containers: &Containers,
    name: &str,
) -> Result<crate::volume::Trash> {
    if !volumes.exists(name) {
        return Err(VolumeError::NotFound(name.to_string()).into());
    }
    let using = users(containers, name)?;
    if !using.is_empty() {
        return Err(VolumeError::InUse {
            name: name.to_string(),
            containers: using,
        }
        .into());
    }
    volumes.trash(name)
}

/// `KEY=VALUE` filters of `volume ls`/`prune`: `dangling=true|false`, `name=SUBSTRING`,
/// `label=KEY[=VALUE]`, `driver=local`.
fn matches(
    filters: &[(String, String)],
    v: &crate::volume::Volume,
    used: &dyn Fn(&str) -> bool,
) -> bool {
    filters.iter().all(|(k, want)| match k.as_str() {
        "dangling" => (want == "true" || want == "1") != used(&v.name),
        "name" => v.name.contains(want.as_str()),
        "label" => match want.split_once('=') {
            Some((k, val)) => v.labels.get(k).is_some_and(|x| x == val),
            None => v.labels.contains_key(want.as_str()),
        },
        "driver" => want == "local",
        _ => true,
    })
}

/// Parse `--filter` values, refusing keys Docker does not know for volumes.
fn parse_filters(filters: &[String]) -> Result<Vec<(String, String)>> {
    filters
        .iter()
        .map(|f| {
            let (k, v) = f.split_once('=').ok_or_else(|| {
                Error::Usage(format!("bad format of filter (expected name=value): {f}"))
            })?;
            match k {
                "dangling" if !["true", "false", "1", "0"].contains(&v) => Err(Error::Usage(
                    format!("invalid filter 'dangling={v}': use true or false"),
                )),
                "dangling" | "name" | "label" | "driver" => Ok((k.to_string(), v.to_string())),
                _ => Err(Error::Usage(format!("invalid filter '{k}'"))),
            }
        })
        .collect()
}

/// `dockling volume …`.
pub fn run(ctx: &Context, args: &VolumeArgs) -> Result<i32> {
    require_root("volume")?;
    match &args.command {
        VolumeCommand::Create {
            driver,
            labels,
            name_flag,
            name,
        } => {
            let name = match (name, name_flag) {
                (Some(a), Some(b)) if a != b => {
                    return Err(Error::Usage(format!(
                        "conflicting options: either specify --name or provide positional arg, not both ({a:?} and {b:?})"
                    )))
                }
                (a, b) => a.as_deref().or(b.as_deref()),
            };
            // The daemon's refusals are Docker's exit code 1, as for `volume rm`.
            let refused = |e: Error| {
                eprintln!("Error response from dockling: {e}");
                Ok(1)
            };
            if driver != "local" {
                return refused(
                    VolumeError::Driver {
                        name: name.unwrap_or_default().to_string(),
                        driver: driver.clone(),
                    }
                    .into(),
                );
            }
            let labels = labels
                .iter()
                .map(|l| {
                    let (k, v) = l.split_once('=').unwrap_or((l, ""));
                    (k.to_string(), v.to_string())
                })
                .collect();
            let volumes = Volumes::open(&ctx.root)?;
            match volumes.create(name, labels) {
                Ok((v, _)) => {
                    println!("{}", v.name);
                    Ok(0)
                }
                Err(e @ Error::Volume(_)) => refused(e),
                Err(e) => Err(e),
            }
        }
        VolumeCommand::Ls {
            quiet,
            filters,
            format,
        } => {
            let filters = parse_filters(filters)?;
            let volumes = Volumes::open(&ctx.root)?;
            let containers = Containers::open(&ctx.root)?;
            let all = containers.list()?;
            let used = |n: &str| {
                all.iter()
                    .any(|c| c.spec.volumes.iter().any(|v| v.name.as_deref() == Some(n)))
            };
            let list: Vec<_> = volumes
                .list()?
                .into_iter()
                .filter(|v| matches(&filters, v, &used))
                .collect();
            if *quiet {
                for v in &list {
                    println!("{}", v.name);
                }
                return Ok(0);
            }
            let out = match format {
                Some(f) => {
                    let rows: Vec<serde_json::Value> = list
                        .iter()
                        .map(|v| {
                            serde_json::json!({
                                "Driver": "local",
                                "Name": v.name,
                                "Mountpoint": v.mountpoint,
                                "Labels": v.labels.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(","),
                                "Scope": "local",
                                "CreatedAt": v.created_at,
                            })
                        })
                        .collect();
                    formatted(f, DEFAULT_TABLE, FIELDS, &rows)?
                }
                None => table(
                    &["DRIVER", "VOLUME NAME"],
                    &list
                        .iter()
                        .map(|v| vec!["local".to_string(), v.name.clone()])
                        .collect::<Vec<_>>(),
                ),
            };
            print!("{out}");
            Ok(0)
        }
        VolumeCommand::Inspect { format, volumes } => {
            let store = Volumes::open(&ctx.root)?;
            let mut docs = Vec::new();
            let mut code = 0;
            for name in volumes {
                match store.get(name) {
                    Ok(v) => docs.push(v.to_json()),
                    Err(e) => {
                        eprintln!("Error response from dockling: {e}");
                        code = 1;
                    }
                }
            }
            crate::commands::print_inspect(&docs, format.as_deref())?;
            Ok(code)
        }
        VolumeCommand::Rm { force, volumes } => {
            let store = Volumes::open(&ctx.root)?;
            let containers = Containers::open(&ctx.root)?;
            crate::commands::rm::reap(ctx, &containers);
            let lock = store.lock()?;
            let mut code = 0;
            let mut trashed = Vec::new();
            for name in volumes {
                match trash_unused(&store, &containers, name) {
                    Ok(t) => {
                        println!("{name}");
                        trashed.push(t);
                    }
                    Err(Error::Volume(VolumeError::NotFound(_))) if *force => {}
                    Err(e) => {
                        eprintln!("Error response from dockling: {e}");
                        code = 1;
                    }
                }
            }
            // The slow part after the lock: `run` waiting for it is not held up by a big
            // delete. Trash a failure leaves is swept by the next command.
            drop(lock);
            for t in trashed {
                if let Err(e) = t.delete() {
                    eprintln!("dockling: warning: {e}");
                }
            }
            Ok(code)
        }
        VolumeCommand::Prune {
            all,
            force,
            filters,
        } => prune(ctx, *all, *force, filters),
    }
}

/// `volume prune`: unused anonymous volumes (Docker 23+), every unused one with `-a`.
fn prune(ctx: &Context, all: bool, force: bool, filters: &[String]) -> Result<i32> {
    let filters = parse_filters(filters)?;
    if !force {
        use std::io::Write;
        if all {
            print!("WARNING! This will remove all local volumes not used by at least one container.\nAre you sure you want to continue? [y/N] ");
        } else {
            print!("WARNING! This will remove anonymous local volumes not used by at least one container.\nAre you sure you want to continue? [y/N] ");
        }
        let _ = std::io::stdout().flush();
        let mut answer = String::new();
        let _ = std::io::stdin().read_line(&mut answer);
        if !matches!(answer.trim(), "y" | "Y" | "yes") {
            return Ok(0);
        }
    }
    let (removed, reclaimed) = prune_unused(ctx, all, &filters)?;
    if !removed.is_empty() {
        println!("Deleted Volumes:");
        for n in &removed {
            println!("{n}");
        }
        println!();
    }
    println!(
        "Total reclaimed space: {}",
        crate::image::format::human_size(reclaimed)
    );
    Ok(0)
}

/// Remove the unused volumes `volume prune` (and `system prune --volumes`) would: anonymous
/// ones, or all with `all`. Returns their names and the bytes they held.
pub fn prune_unused(
    ctx: &Context,
    all: bool,
    filters: &[(String, String)],
) -> Result<(Vec<String>, u64)> {
    let store = Volumes::open(&ctx.root)?;
    let containers = Containers::open(&ctx.root)?;
    crate::commands::rm::reap(ctx, &containers);
    let lock = store.lock()?;
    let records = containers.list()?;
    let used = |n: &str| {
        records
            .iter()
            .any(|c| c.spec.volumes.iter().any(|v| v.name.as_deref() == Some(n)))
    };
    let mut trashed = Vec::new();
    for v in store.list()? {
        if used(&v.name) || !(all || v.anonymous()) || !matches(filters, &v, &used) {
            continue;
        }
        match store.trash(&v.name) {
            Ok(t) => trashed.push((v.name, t)),
            Err(e) => eprintln!("dockling: {e}"),
        }
    }
    // Measured and deleted after the lock is released: `run` is not held up by them.
    drop(lock);
    let mut removed = Vec::new();
    let mut reclaimed = 0;
    for (name, t) in trashed {
        let size = t.size();
        match t.delete() {
            Ok(()) => {
                removed.push(name);
                reclaimed += size;
            }
            Err(e) => eprintln!("dockling: {e}"),
        }
    }
    Ok((removed, reclaimed))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `run` returning early (`?`) drops its `Attached`: the volumes it made go, those it
    /// found stay; after `done` they all stay.
    #[test]
    fn attached_dropped_without_done_removes_what_it_made() {
        let root = tempfile::tempdir().unwrap();
        let volumes = Volumes::open(root.path()).unwrap();
        volumes.create(Some("old"), BTreeMap::new()).unwrap();
        let attach = |name: &str| {
            let v = Volumes::open(root.path()).unwrap();
            v.create(Some(name), BTreeMap::new()).unwrap();
            Attached {
                _lock: v.lock().unwrap(),
                volumes: v,
                made: vec![name.to_string()],
                kept: false,
            }
        };
        drop(attach("new"));
        assert!(volumes.get("new").is_err(), "dropped: what it made is gone");
        assert!(volumes.get("old").is_ok());
        attach("kept").done();
        assert!(volumes.get("kept").is_ok(), "done: kept");
    }

    #[test]
    fn filters_parse_as_docker_takes_them() {
        assert!(parse_filters(&["dangling=true".into()]).is_ok());
        assert!(parse_filters(&["dangling=maybe".into()]).is_err());
        assert!(parse_filters(&["nope=1".into()]).is_err());
        assert!(parse_filters(&["dangling".into()]).is_err());
    }
}
