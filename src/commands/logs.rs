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
    // `--trace`: the log's files are the store's own, read through descriptors (not through
    // the seam); these notes say which calls read them.
    let tracer = crate::trace::Tracer::new(args.trace, false);
    let name = logs::file_name(&id);
    tracer.note(&format!(
        "open the container's directory with open(O_DIRECTORY|O_NOFOLLOW), then {name} (and its rotated {name}.N, oldest first) with openat(dir fd, name, O_RDONLY|O_NOFOLLOW): a symlink planted in place of the log is refused, not followed"
    ));
    let dir = || logs::open_dir(&containers.bundle(&id));
    // The current file is opened first and followed from its start; then the rotated ones
    // are read before it (skipping it, should a rotation have named it `.1` meanwhile).
    let mut follower = match logs::Follower::from_start(dir()?, &id) {
        Ok(f) => f,
        // A container that never started has no log yet: nothing to show, as Docker.
        Err(_) if c.started_at.is_none() => return Ok(0),
        // One that ran had one: someone deleted it. Say so rather than print nothing.
        Err(e) => {
            return Err(crate::container::ContainerError::LogMissing {
                name: args.container.clone(),
                file: logs::file_name(&id),
                cause: e.to_string(),
            }
            .into())
        }
    };
    let mut out = Printer {
        shown: 0,
        timestamps: args.timestamps,
        tail,
        kept: std::collections::VecDeque::new(),
        out: Vec::new(),
    };
    let rotated = logs::open_rotated(&dir()?, &id, Some(follower.file()));
    logs::each_entry(rotated, |e| out.take(e));
    follower.poll_each(|e| out.take(e));
    out.finish()?;
    tracer.note(&format!(
        "read(2) each file to its end: one JSON line per entry (Docker's json-file: log, stream, time), {} so far",
        out.shown
    ));
    if !args.follow {
        tracer.flush();
        return Ok(0);
    }
    tracer.note(&format!(
        "follow: every 50 ms read(2) what was appended past the last offset; fstatat(dir fd, \"{name}\", AT_SYMLINK_NOFOLLOW) against fstat of the open file tells a rotation (another inode, or shorter), and the new file is opened again with openat O_NOFOLLOW and read from its start; until the monitor lets go of engine.lock (flock LOCK_SH|LOCK_NB succeeds)"
    ));
    // Until the container ends (its engine lets go of it), then what it wrote last.
    loop {
        let running = containers.engine_alive(&id)
            || containers
                .find(&id)
                .is_ok_and(|c| matches!(c.status, Status::Running { .. }) && c.is_alive());
        follower.poll_each(|e| out.take(e));
        out.finish()?;
        if !running {
            follower.poll_each(|e| out.take(e));
            out.finish()?;
            tracer.note(&format!(
                "the container ended and its monitor let go: the last bytes read, {} entries shown in all",
                out.shown
            ));
            tracer.flush();
            return Ok(0);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Prints entries, stdout's to stdout and stderr's to stderr, in large writes; with `--tail`
/// only the last entries are kept until [`Printer::finish`].
struct Printer {
    /// Entries written out so far (for `--trace`).
    shown: usize,
    timestamps: bool,
    /// `--tail n`, until the first `finish` (after it everything new is printed).
    tail: Option<usize>,
    kept: std::collections::VecDeque<Entry>,
    out: Vec<Entry>,
}

impl Printer {
    fn take(&mut self, e: Entry) {
        match self.tail {
            Some(n) => {
                if n == 0 {
                    return;
                }
                if self.kept.len() == n {
                    self.kept.pop_front();
                }
                self.kept.push_back(e);
            }
            None => self.out.push(e),
        }
        // Printed as it comes in pieces, so a big log is never held whole.
        if self.out.len() >= 4096 {
            let _ = self.flush();
        }
    }

    fn finish(&mut self) -> Result<()> {
        self.tail = None;
        self.out.extend(self.kept.drain(..));
        self.flush()
    }

    fn flush(&mut self) -> Result<()> {
        if self.out.is_empty() {
            return Ok(());
        }
        let stdout = std::io::stdout();
        let stderr = std::io::stderr();
        // Buffered: a big log is a few large writes, not one per line.
        let mut o = std::io::BufWriter::with_capacity(1 << 16, stdout.lock());
        let mut e = std::io::BufWriter::with_capacity(1 << 16, stderr.lock());
        // In the order they were written: what one stream holds buffered goes out before
        // the other stream's next line (`logs c 2>&1` reads as the container wrote).
        let mut last = None;
        self.shown += self.out.len();
        for entry in self.out.drain(..) {
            if last.is_some_and(|s| s != entry.stream) {
                let flushed = match last {
                    Some(Stream::Stdout) => o.flush(),
                    _ => e.flush(),
                };
                flushed.map_err(Error::io("write", "output"))?;
            }
            last = Some(entry.stream);
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
        e.flush().map_err(Error::io("write", "stderr"))?;
        Ok(())
    }
}
