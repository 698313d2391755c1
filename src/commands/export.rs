//! `dockling export CONTAINER [-o FILE]`: a container's file system as one tar archive, as
//! `docker export` writes it (the image's layers with the container's changes on top; not
//! its volumes, nor /proc, /sys or anything else mounted in it). Running or stopped.
//!
//! The files are reached through one directory fd, never a host path (see `cp`): for
//! `--layers overlay` a read-only overlay of the container's upper directory over its image
//! layers, mounted in a short-lived child's private mount namespace (`cp::mount_stopped`,
//! with `MS_RDONLY`; read-only, so it needs no work directory and never mounts the upper
//! directory of a running container as an upper directory a second time); for `--layers
//! copy` the container's own root directory. The walk (`archive::write_tree`) opens each
//! child beneath its parent's fd without following symlinks. `import` reads the result back.

use std::io::IsTerminal;
use std::os::fd::AsFd;

use nix::mount::MsFlags;

use crate::cli::ExportArgs;
use crate::commands::save::{exit_1, to_output};
use crate::commands::{require_root, Context};
use crate::container::Containers;
use crate::error::Result;
use crate::image::ArchiveError;
use crate::spec::LayersMode;
use crate::sys::{linux::Linux, Sys};
use crate::trace::Tracer;

/// `dockling export`.
pub fn run(ctx: &Context, args: &ExportArgs) -> Result<i32> {
    exit_1(export(ctx, args))
}

fn export(ctx: &Context, args: &ExportArgs) -> Result<()> {
    if args.output.is_none() && std::io::stdout().is_terminal() {
        return Err(ArchiveError::StdoutIsTerminal.into());
    }
    require_root("export")?;
    let sys = Sys::new(Box::new(Linux), Tracer::new(None, false));
    let containers = Containers::open(&ctx.root)?;
    crate::commands::rm::reap(ctx, &containers);
    let c = containers.find(&args.container)?;
    let spec = &c.spec;
    let root = match spec.layers_mode {
        LayersMode::Copy => sys.open(
            &spec.rootfs(),
            libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC,
        )?,
        LayersMode::Overlay | LayersMode::Erofs => {
            if spec.layers_mode == LayersMode::Erofs {
                crate::layers::erofs::mount_layers(&sys, &spec.layers)?;
            }
            let mut dirs = spec.layers.clone();
            // A container that never ran has no upper directory yet: its image alone.
            if spec.upper().is_dir() {
                dirs.push(spec.upper());
            }
            if dirs.len() == 1 {
                // One directory is its own tree (overlayfs wants two lower directories).
                sys.open(&dirs[0], libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC)?
            } else {
                let data = crate::layers::overlay::read_only_data(&dirs)?;
                sys.mkdir(&spec.rootfs(), 0o755)?;
                crate::commands::cp::mount_stopped(&sys, &spec.rootfs(), &data, MsFlags::MS_RDONLY)?
            }
        }
    };
    to_output(args.output.as_deref(), &mut |out| {
        let mut tar = tar::Builder::new(out);
        tar.follow_symlinks(false);
        crate::archive::write_tree(&mut tar, root.as_fd(), None)
            .and_then(|()| tar.finish())
            .map_err(|e| ArchiveError::Write(e).into())
    })
}
