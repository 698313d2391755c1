//! `dockling diff CONTAINER`: what the container changed in its image, as `docker diff`
//! prints it (`A` added, `C` changed, `D` deleted, one path a line, walk order). Read from the
//! upper directory (or, with `--layers copy`, by comparing the container's copy with the
//! layers): see [`crate::layers::diff`]. Running or stopped, nothing of the container is
//! run, mounted or changed.

use std::os::fd::AsFd;

use crate::cli::DiffArgs;
use crate::commands::{require_root, Context};
use crate::container::{Container, Containers};
use crate::error::{Error, Result};
use crate::layers::diff::{self, Change, Lower};
use crate::spec::LayersMode;
use crate::sys::fs as safefs;

/// The container `name` (reaped records first), or Docker's error.
pub(crate) fn find(ctx: &Context, name: &str) -> Result<(Containers, Container)> {
    let containers = Containers::open(&ctx.root)?;
    crate::commands::rm::reap(ctx, &containers);
    let c = containers.find(name).map_err(|e| match e {
        Error::NotFound(_) => Error::NotFound(format!("No such container: {name}")),
        e => e,
    })?;
    Ok((containers, c))
}

/// The container's upper directory, `None` when it has none yet (a container that never
/// started has changed nothing).
pub(crate) fn open_upper(upper: &std::path::Path) -> Result<Option<std::os::fd::OwnedFd>> {
    match safefs::open_root(upper) {
        Ok(fd) => Ok(Some(fd)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io("open", upper)(e)),
    }
}

/// The container's changes, and what the walk saw of its upper directory (`None` for a copy).
pub(crate) fn changes(c: &Container) -> Result<(Vec<Change>, Option<diff::WalkStats>)> {
    let s = &c.spec;
    // EROFS layers are read where they are mounted (again, after a restart).
    if s.layers_mode == LayersMode::Erofs {
        crate::layers::erofs::mount_layers(&crate::sys::Sys::quiet(), &s.layers)?;
    }
    let lower = Lower::open(&s.layers).map_err(Error::io("open the layers of", &s.bundle))?;
    match s.layers_mode {
        LayersMode::Overlay | LayersMode::Erofs => {
            let upper = s.upper();
            let Some(fd) = open_upper(&upper)? else {
                return Ok((Vec::new(), Some(diff::WalkStats::default())));
            };
            let (v, stats) =
                diff::upper_changes(fd.as_fd(), &lower).map_err(Error::io("read", &upper))?;
            Ok((v, Some(stats)))
        }
        LayersMode::Copy => {
            let rootfs = s.rootfs();
            let fd = safefs::open_root(&rootfs).map_err(Error::io("open", &rootfs))?;
            let v = diff::tree_changes(fd.as_fd(), &lower).map_err(Error::io("read", &rootfs))?;
            Ok((v, None))
        }
    }
}

/// `dockling diff`: 0, or 1 with the error (Docker's code for a failed request).
pub fn run(ctx: &Context, args: &DiffArgs) -> Result<i32> {
    require_root("diff")?;
    let list = match find(ctx, &args.container).and_then(|(_, c)| changes(&c)) {
        Ok((v, _)) => v,
        Err(e) => {
            eprintln!("dockling: {e}");
            return Ok(1);
        }
    };
    let mut out = String::new();
    for c in list {
        out.push_str(&format!("{c}\n"));
    }
    print!("{out}");
    Ok(0)
}
