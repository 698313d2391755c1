//! `dockling commit CONTAINER [REPOSITORY[:TAG]]`: a container's changes become a new image,
//! as `docker commit` makes one, in the plan of steps [`crate::plan::COMMIT`]: find the
//! container and its image, freeze it (`--pause`, the default, through the cgroup freezer, as
//! `pause` does), walk its upper directory into a layer tar ([`crate::layers::commit`]), store
//! that as a gzip blob, write the config and manifest on top of the image's own (its layer
//! blobs reused as they are: the cost is the change, not the image), tag, thaw. Prints the new
//! image's id, as Docker does. `dockling explain commit …` shows the same plan without doing it.

use std::fmt::Write as _;
use std::os::fd::AsFd;

use crate::cli::CommitArgs;
use crate::commands::{diff, lifecycle, require_root, Context};
use crate::container::{Container, Containers, EngineLock};
use crate::error::{Error, Result};
use crate::image::commit::{CommitConfig, LayerTar};
use crate::image::{reference::Reference, store::Store};
use crate::layers::commit::{self as layer, LayerWriter};
use crate::layers::diff::Lower;
use crate::plan::{StepId, COMMIT};
use crate::spec::LayersMode;
use crate::sys::fs as safefs;
use crate::sys::{linux::Linux, record::Recorder, Sys};
use crate::trace::{catalog::Catalog, Format, Tracer};

/// `dockling commit`: 0 and the image id, or 1 with the error (Docker's code for a refused
/// request); a missing root is 125 as everywhere.
pub fn run(ctx: &Context, args: &CommitArgs) -> Result<i32> {
    require_root("commit")?;
    match commit(ctx, args) {
        Ok(id) => {
            println!("{id}");
            Ok(0)
        }
        Err(e) => {
            eprintln!("dockling: {e}");
            Ok(1)
        }
    }
}

/// Thaws the container when dropped (an error on the way, or a panic), or by [`Frozen::thaw`].
struct Frozen<'a> {
    sys: &'a Sys,
    cg: Option<crate::cgroups::Cgroup>,
}

impl Frozen<'_> {
    fn thaw(mut self) -> Result<()> {
        self.sys.tracer.step_without_pause(StepId::CommitUnpause);
        match self.cg.take() {
            Some(cg) => cg.set_frozen(self.sys, false),
            None => Ok(()),
        }
    }
}

impl Drop for Frozen<'_> {
    fn drop(&mut self) {
        if let Some(cg) = self.cg.take() {
            if let Err(e) = cg.set_frozen(self.sys, false) {
                eprintln!(
                    "dockling: warning: could not thaw the container: {e} (dockling unpause it)"
                );
            }
        }
    }
}

/// Why the pause step does nothing, if it does nothing.
fn pause_off(ctx: &Context, args: &CommitArgs, c: &Container) -> Option<String> {
    if !args.pause {
        return Some("off: --pause=false".into());
    }
    if lifecycle::running(c).is_none() {
        return Some("off: the container is not running".into());
    }
    match lifecycle::cgroup(ctx, c) {
        Err(_) => Some("off: the container has no cgroup (--no-cgroups)".into()),
        Ok(cg) if cg.is_frozen() => Some("off: the container is paused already".into()),
        Ok(_) => None,
    }
}

/// The time the new image is made at: `SOURCE_DATE_EPOCH` when set (reproducible builds), now
/// otherwise.
fn created(epoch: Option<i64>) -> String {
    match epoch {
        Some(s) => humantime::format_rfc3339_seconds(
            std::time::UNIX_EPOCH + std::time::Duration::from_secs(s.max(0) as u64),
        )
        .to_string(),
        None => crate::container::now_rfc3339(),
    }
}

/// The trace note that sums up the walk, each kind of entry explained.
fn walk_note(upper: bool, l: &layer::LayerStats) -> String {
    let mut s = String::new();
    if upper {
        let _ = write!(s, "walked the upper directory through descriptors (openat2 RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS, O_NOFOLLOW; untraced file reads): {} entries", l.walked);
    } else {
        let _ = write!(s, "compared the container's copy with the image's layers (--layers copy keeps no upper directory)");
    }
    let _ = write!(
        s,
        "; the layer holds {} entries, {} bytes of file content; {} whiteouts (a char device 0/0 in the upper directory: the container deleted that file of the image) written as empty .wh.<name> files; {} opaque directories (xattr trusted.overlay.opaque=y: the container deleted the image's directory and made it again) marked by .wh..wh..opq before their entries; {} hard links written as tar links",
        l.entries, l.bytes, l.whiteouts, l.opaque, l.hard_links
    );
    if !l.sockets.is_empty() {
        let _ = write!(
            s,
            "; {} sockets skipped (tar has no type for them)",
            l.sockets.len()
        );
    }
    s
}

/// Hold a stopped container's engine lock (so it cannot start on the upper directory while it
/// is read); `None` for a running one.
fn hold(containers: &Containers, c: &Container) -> Result<Option<EngineLock>> {
    if lifecycle::running(c).is_some() {
        return Ok(None);
    }
    match containers.try_lock_engine(&c.spec.id)? {
        Some(l) => Ok(Some(l)),
        // It started meanwhile: committed while running.
        None => Ok(None),
    }
}

/// The layer tar of the container's changes (uncompressed), streamed into an unlinked file
/// of `store`'s, and what went into it.
pub(crate) fn layer_tar(
    sys: &Sys,
    store: &Store,
    c: &Container,
    lower: &Lower,
    epoch: Option<i64>,
) -> Result<(LayerTar, layer::LayerStats)> {
    let s = &c.spec;
    let mut w = LayerWriter::new(store.layer_sink()?, epoch);
    match s.layers_mode {
        LayersMode::Overlay | LayersMode::Erofs => {
            sys.tracer
                .step_variant(StepId::CommitWalk, None)
                .map_err(Error::from)?;
            let upper = s.upper();
            if let Some(fd) = diff::open_upper(&upper)? {
                w.upper(fd.as_fd(), lower)
                    .map_err(Error::io("write a layer of", &upper))?;
            }
        }
        LayersMode::Copy => {
            sys.tracer
                .step_variant(StepId::CommitWalk, Some("copy"))
                .map_err(Error::from)?;
            let rootfs = s.rootfs();
            let fd = safefs::open_root(&rootfs).map_err(Error::io("open", &rootfs))?;
            let changes = crate::layers::diff::tree_changes(fd.as_fd(), lower)
                .map_err(Error::io("read", &rootfs))?;
            w.changes(fd.as_fd(), &changes)
                .map_err(Error::io("write a layer of", &rootfs))?;
        }
    }
    let (sink, stats) = w.finish().map_err(Error::io("write", "the layer tar"))?;
    let tar = sink.finish().map_err(Error::io("write", "the layer tar"))?;
    Ok((tar, stats))
}

fn commit(ctx: &Context, args: &CommitArgs) -> Result<String> {
    let reference = args
        .reference
        .as_deref()
        .map(Reference::parse)
        .transpose()?;
    // A bad -c line is refused before anything is frozen or written.
    crate::image::commit::check_changes(&args.changes)?;
    let epoch = layer::source_date_epoch().map_err(Error::Usage)?;
    let sys = Sys::new(Box::new(Linux), Tracer::new(args.trace, false));
    sys.tracer.step(StepId::CommitResolve)?;
    let (containers, c) = diff::find(ctx, &args.container)?;
    let store = Store::open(&ctx.root)?.with_limits(ctx.config.layer_limits()?);
    let base = store.find(&c.spec.image_id)?;
    let _lock = hold(&containers, &c)?;
    if c.spec.layers_mode == LayersMode::Erofs {
        crate::layers::erofs::mount_layers(&sys, &c.spec.layers)?;
    }
    let lower =
        Lower::open(&c.spec.layers).map_err(Error::io("open the layers of", &c.spec.bundle))?;
    sys.tracer.note(&format!(
        "container {} ({}), image {} ({}): layers below its writable layer: {}",
        c.spec.name,
        &c.spec.id[..12],
        c.spec.image_ref,
        &base.id.trim_start_matches("sha256:")[..12],
        c.spec.layers.len()
    ));

    sys.tracer.step(StepId::CommitPause)?;
    let frozen = match pause_off(ctx, args, &c) {
        Some(why) => {
            sys.tracer.note(&why);
            None
        }
        None => {
            let cg = lifecycle::cgroup(ctx, &c)?;
            cg.set_frozen(&sys, true)?;
            Some(Frozen {
                sys: &sys,
                cg: Some(cg),
            })
        }
    };

    let (tar, stats) = layer_tar(&sys, &store, &c, &lower, epoch)?;
    sys.tracer
        .note(&walk_note(c.spec.layers_mode.overlay(), &stats));

    sys.tracer.step(StepId::CommitLayer)?;
    let tar_len = tar.len();
    let stored = store.commit_layer(tar)?;
    let (digest, size, diff_id) = stored.describe();
    sys.tracer.note(&format!(
        "layer {digest}: {size} bytes gzip, diff_id {diff_id} ({tar_len} bytes of tar)"
    ));

    sys.tracer.step(StepId::CommitImage)?;
    let when = created(epoch);
    let image = store.commit_image(
        &base,
        stored,
        &CommitConfig {
            author: args.author.as_deref(),
            comment: args.message.as_deref(),
            changes: &args.changes,
            argv: &c.spec.args,
            env: &c.spec.env,
            cwd: &c.spec.cwd,
            tty: c.spec.tty,
            created: &when,
        },
        reference.as_ref(),
    )?;
    sys.tracer.note(&format!(
        "config {} ({} layers), manifest {}{}",
        image.id,
        image.layers.len(),
        image.manifest_digest,
        reference
            .as_ref()
            .map(|r| format!(", tagged {r}"))
            .unwrap_or_default()
    ));
    match frozen {
        Some(f) => f.thaw()?,
        None => sys.tracer.step_without_pause(StepId::CommitUnpause),
    }
    Ok(image.id)
}

/// `dockling explain commit CONTAINER [REF]`: the plan, the freezer writes it would make (a
/// dry run on the recording double) and the changes the layer would hold. Nothing is frozen,
/// written or tagged.
pub fn explain(ctx: &Context, args: &CommitArgs) -> Result<i32> {
    require_root("explain commit")?;
    if let Some(r) = &args.reference {
        Reference::parse(r)?;
    }
    crate::image::commit::check_changes(&args.changes)?;
    let (_, c) = diff::find(ctx, &args.container)?;
    let cat = Catalog::get();
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Plan for `dockling commit {}{}`, step by step:",
        args.container,
        args.reference
            .as_deref()
            .map(|r| format!(" {r}"))
            .unwrap_or_default()
    );
    let pause = pause_off(ctx, args, &c);
    let mut i = 0;
    for step in COMMIT {
        let variant = (*step == StepId::CommitWalk && c.spec.layers_mode == LayersMode::Copy)
            .then_some("copy");
        let title = variant
            .and_then(|v| cat.step(&format!("{}:{v}", step.key())))
            .or_else(|| cat.step(step.key()))
            .map(|t| t.title.as_str())
            .unwrap_or("");
        let off = match step {
            StepId::CommitPause | StepId::CommitUnpause => pause.clone(),
            _ => None,
        };
        match off {
            Some(note) => {
                let _ = writeln!(out, "  --  {:<16} {title}  [{note}]", step.key());
            }
            None => {
                i += 1;
                let _ = writeln!(out, "  {i:>2}. {:<16} {title}", step.key());
            }
        }
    }
    if pause.is_none() {
        let _ = writeln!(
            out,
            "\nThe syscalls of the freezer (a dry run: nothing was frozen):\n"
        );
        let sys = Sys::new(Box::new(Recorder::new()), Tracer::capture(Format::Pretty));
        let cg = lifecycle::cgroup(ctx, &c)?;
        sys.tracer.step_without_pause(StepId::CommitPause);
        cg.set_frozen(&sys, true)?;
        sys.tracer.step_without_pause(StepId::CommitUnpause);
        cg.set_frozen(&sys, false)?;
        out.push_str(&sys.tracer.captured());
    }
    let (changes, _) = diff::changes(&c)?;
    let _ = writeln!(
        out,
        "\nThe new layer would hold these changes (dockling diff {}):",
        args.container
    );
    for ch in &changes {
        let _ = writeln!(out, "  {ch}");
    }
    if changes.is_empty() {
        let _ = writeln!(out, "  (none: the layer would be empty)");
    }
    print!("{out}");
    Ok(0)
}
