//! `dockling save IMAGE... [-o FILE]`: images as one tar archive (`crate::image::save`), to
//! a file or to stdout (never to a terminal). Errors exit 1, as Docker's CLI does.

use std::io::{IsTerminal, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use crate::cli::SaveArgs;
use crate::commands::{require_root, Context};
use crate::error::{Error, Result};
use crate::image::store::Store;
use crate::image::ArchiveError;

/// `dockling save`.
pub fn run(ctx: &Context, args: &SaveArgs) -> Result<i32> {
    exit_1(save(ctx, args))
}

/// Docker's CLI exits 1 for every failure of save, load and export (its daemon's errors);
/// only "run as root" keeps dockling's engine code.
pub(crate) fn exit_1(r: Result<()>) -> Result<i32> {
    match r {
        Ok(()) => Ok(0),
        Err(e @ Error::NeedsRoot { .. }) => Err(e),
        Err(e) => {
            eprintln!("dockling: {e}");
            Ok(1)
        }
    }
}

fn save(ctx: &Context, args: &SaveArgs) -> Result<()> {
    if args.output.is_none() && std::io::stdout().is_terminal() {
        return Err(ArchiveError::StdoutIsTerminal.into());
    }
    require_root("save")?;
    let store = Store::open(&ctx.root)?;
    to_output(args.output.as_deref(), &mut |out| {
        crate::image::save::save(&store, &args.images, args.format, out)
    })
}

/// Run `write` into `output`, or into stdout. A file is written under a temporary name beside
/// it and renamed into place when complete (Docker's `CopyToFile`): a failure leaves no
/// half-written file, and an existing file stays as it was.
pub(crate) fn to_output(
    output: Option<&Path>,
    write: &mut dyn FnMut(&mut dyn Write) -> Result<()>,
) -> Result<()> {
    let Some(path) = output else {
        let mut out = std::io::BufWriter::with_capacity(1 << 16, std::io::stdout().lock());
        write(&mut out)?;
        return out.flush().map_err(|e| ArchiveError::Write(e).into());
    };
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => Path::new(".").to_path_buf(),
    };
    let name = path
        .file_name()
        .ok_or_else(|| Error::Usage(format!("-o {}: not a file name", path.display())))?;
    let tmp = dir.join(format!(
        ".{}{}",
        name.to_string_lossy(),
        crate::files::temp_name()
    ));
    // 0600 as Docker's CLI writes it: an image or a container's files (its /etc/shadow, its
    // secrets) are not for every local user to read.
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(Error::write("create", &tmp))?;
    let mut out = std::io::BufWriter::with_capacity(1 << 16, file);
    let done = write(&mut out)
        .and_then(|()| {
            out.into_inner()
                .map_err(|e| ArchiveError::Write(e.into_error()).into())
        })
        .and_then(|f| f.sync_all().map_err(Error::write("write", &tmp)))
        .and_then(|()| std::fs::rename(&tmp, path).map_err(Error::io("rename", path)));
    if done.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    done
}
