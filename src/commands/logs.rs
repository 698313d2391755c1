//! `dockling logs`: what a detached container wrote, from its json-file log (see
//! [`crate::container::logs`]): its stdout to stdout, its stderr to stderr, as Docker does.

use std::io::Write;
use std::time::Duration;

use crate::cli::LogsArgs;
use crate::commands::Context;
use crate::container::logs::{self, Entry, Stream};
use crate::container::{Containers, Status};
use crate::error::{Error, Result};

/// `dockling logs`.
pub fn run(ctx: &Context, args: &LogsArgs) -> Result<i32> {
    let tail: Option<usize> = match args.tail.as_str() {
        "all" => None,
        n => Some(n.parse().map_err(|_| {
            Error::Usage(format!(
                "invalid --tail {n:?}: give a number of lines, or \"all\""
            ))
        })?),
    };
    let containers = Containers::open(&ctx.root)?;
    crate::commands::rm::reap(ctx, &containers);
    let c = containers.find(&args.container)?;
    let id = c.spec.id.clone();
    let dir = || logs::open_dir(&containers.bundle(&id));
    // The current file is opened first and followed from its start; then the rotated ones
    // are read before it (skipping it, should a rotation have named it `.1` meanwhile).
    let mut follower = match logs::Follower::from_start(dir()?, &id) {
        Ok(f) => f,
        // A container that never wrote a log (run in the foreground): nothing to show.
        Err(_) => return Ok(0),
    };
    let mut entries = logs::read_entries(logs::open_rotated(&dir()?, &id, Some(follower.file())));
    entries.extend(follower.poll());
    if let Some(n) = tail {
        let skip = entries.len().saturating_sub(n);
        entries.drain(..skip);
    }
    let mut out = Printer {
        timestamps: args.timestamps,
    };
    out.print(&entries)?;
    if !args.follow {
        return Ok(0);
    }
    // Until the container ends (its engine lets go of it), then what it wrote last.
    loop {
        let running = containers.engine_alive(&id)
            || containers
                .find(&id)
                .is_ok_and(|c| matches!(c.status, Status::Running { .. }) && c.is_alive());
        out.print(&follower.poll())?;
        if !running {
            out.print(&follower.poll())?;
            return Ok(0);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

struct Printer {
    timestamps: bool,
}

impl Printer {
    fn print(&mut self, entries: &[Entry]) -> Result<()> {
        if entries.is_empty() {
            return Ok(());
        }
        let stdout = std::io::stdout();
        let stderr = std::io::stderr();
        let (mut o, mut e) = (stdout.lock(), stderr.lock());
        for entry in entries {
            let w: &mut dyn Write = match entry.stream {
                Stream::Stdout => &mut o,
                Stream::Stderr => &mut e,
            };
            let res = if self.timestamps {
                write!(w, "{} {}", entry.time, entry.log)
            } else {
                w.write_all(entry.log.as_bytes())
            };
            res.map_err(Error::io("write", "stdout"))?;
        }
        o.flush().map_err(Error::io("write", "stdout"))?;
        Ok(())
    }
}
