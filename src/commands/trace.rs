//! `dockling trace render FILE [-o OUT.svg]`: a JSON trace drawn as an SVG
//! (`trace::render`), on stdout or into a file written whole (a temporary file renamed over
//! it), so a failed render leaves no half picture behind.

use std::io::Write;

use crate::cli::{TraceArgs, TraceCommand, TraceRenderArgs};
use crate::error::{Error, Result};
use crate::trace::catalog::Catalog;
use crate::trace::render::{render_file, Layout};

/// `dockling trace …`.
pub fn run(args: &TraceArgs) -> Result<i32> {
    match &args.command {
        TraceCommand::Render(a) => render(a),
    }
}

fn render(args: &TraceRenderArgs) -> Result<i32> {
    let layout = if args.by_order {
        Layout::Order
    } else {
        Layout::Time
    };
    let svg = render_file(&args.file, Catalog::get(), layout)?;
    match &args.output {
        Some(path) => crate::files::replace_atomic(path, svg.as_bytes())?,
        None => std::io::stdout()
            .lock()
            .write_all(svg.as_bytes())
            .map_err(Error::io("write", "stdout"))?,
    }
    Ok(0)
}
