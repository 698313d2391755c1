//! A container's output in Docker's `json-file` format: `<id>-json.log` in the container's
//! directory, one JSON object per line:
//!
//! ```text
//! {"log":"hello\n","stream":"stdout","time":"2026-11-29T19:30:00.123456789Z"}
//! ```
//!
//! The writer (the container's monitor) splits what the container writes into lines, each
//! stamped when it arrived; a line longer than 16 KiB is written in pieces without the
//! newline, as Docker does, so a reader joins them. With `max-size` the file is rotated when
//! it would grow past it: `<id>-json.log` becomes `.1`, `.1` becomes `.2`... and at most
//! `max-file` files are kept (Docker's `--log-opt max-size=10m --log-opt max-file=3`).
//!
//! Files are opened relative to the container directory's descriptor, never following a
//! symlink (`O_NOFOLLOW`): the directory is the engine's, but nothing below a container
//! directory is reached through a path string. The writes are output plumbing, as the
//! terminal relay's are, so they are not traced.

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Seek, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use nix::fcntl::{AtFlags, OFlag};
use nix::sys::stat::Mode;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Docker's longest log line: longer lines are split into partial entries.
const MAX_LINE: usize = 16 * 1024;

/// Which output a log entry came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Stream {
    /// The container's standard output.
    Stdout,
    /// The container's standard error.
    Stderr,
}

/// One line of a json-file log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// What was written (ending in `\n` unless it is a partial line).
    pub log: String,
    /// Where it was written.
    pub stream: Stream,
    /// When it arrived (RFC 3339 with nanoseconds, UTC).
    pub time: String,
}

/// `--log-opt` values of the json-file driver.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct LogOptions {
    /// Rotate before the file grows past this many bytes (`None`: never).
    pub max_size: Option<u64>,
    /// How many files to keep, the current one included (at least 1).
    pub max_file: u32,
}

impl LogOptions {
    /// Parse Docker's `--log-opt key=value` list (`max-size=10m`, `max-file=3`).
    pub fn parse(opts: &[String]) -> Result<LogOptions> {
        let mut o = LogOptions {
            max_size: None,
            max_file: 1,
        };
        for opt in opts {
            let bad = |why: &str| {
                Error::Usage(format!(
                    "invalid --log-opt {opt:?}: {why} (the json-file driver takes max-size=<size, e.g. 10m> and max-file=<count>)"
                ))
            };
            let (k, v) = opt
                .split_once('=')
                .ok_or_else(|| bad("expected key=value"))?;
            match k {
                "max-size" => {
                    let n = parse_size(v).ok_or_else(|| bad("not a size"))?;
                    o.max_size = (n > 0).then_some(n);
                }
                "max-file" => {
                    o.max_file = v
                        .parse::<u32>()
                        .ok()
                        .filter(|n| *n >= 1)
                        .ok_or_else(|| bad("max-file must be a whole number of at least 1"))?;
                }
                _ => return Err(bad("unknown option")),
            }
        }
        if o.max_file > 1 && o.max_size.is_none() {
            return Err(Error::Usage(
                "--log-opt max-file needs max-size too: without a size the log is never rotated"
                    .into(),
            ));
        }
        Ok(o)
    }
}

/// `10m`, `1g`, `512k`, `100` (bytes); Docker's units are powers of 1024.
fn parse_size(s: &str) -> Option<u64> {
    let s = s.trim().to_ascii_lowercase();
    let s = s.strip_suffix('b').unwrap_or(&s);
    let (num, mult) = match s.chars().last()? {
        'k' => (&s[..s.len() - 1], 1u64 << 10),
        'm' => (&s[..s.len() - 1], 1 << 20),
        'g' => (&s[..s.len() - 1], 1 << 30),
        _ => (s, 1),
    };
    num.parse::<u64>().ok()?.checked_mul(mult)
}

/// The log file's name in the container directory (Docker's).
pub fn file_name(id: &str) -> String {
    format!("{id}-json.log")
}

fn open_in(dir: &OwnedFd, name: &str, flags: OFlag) -> std::io::Result<File> {
    let fd = nix::fcntl::openat(
        Some(std::os::fd::AsRawFd::as_raw_fd(dir)),
        name,
        flags | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::from_bits_truncate(0o640),
    )?;
    // SAFETY: openat returned a new descriptor that nothing else owns.
    Ok(unsafe { <File as std::os::fd::FromRawFd>::from_raw_fd(fd) })
}

/// Open a container directory for its logs (a directory, not a symlink to one).
pub fn open_dir(bundle: &Path) -> Result<OwnedFd> {
    let fd = nix::fcntl::open(
        bundle,
        OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC | OFlag::O_RDONLY,
        Mode::empty(),
    )
    .map_err(|e| Error::io("open", bundle)(e.into()))?;
    // SAFETY: open returned a new descriptor that nothing else owns.
    Ok(unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) })
}

/// Writes a container's output as json-file entries, rotating by size.
pub struct LogWriter {
    dir: OwnedFd,
    name: String,
    file: File,
    size: u64,
    opts: LogOptions,
    /// The unfinished last line of each stream.
    pending: [Vec<u8>; 2],
    /// Entries made from one read of the container's output, written with one `write`.
    out: Vec<u8>,
}

impl LogWriter {
    /// Open (append to) the log of container `id` whose directory is `dir`.
    pub fn open(dir: OwnedFd, id: &str, opts: LogOptions) -> Result<LogWriter> {
        let name = file_name(id);
        let file = open_in(
            &dir,
            &name,
            OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_APPEND,
        )
        .map_err(Error::io("open", &name))?;
        let size = file.metadata().map(|m| m.len()).unwrap_or(0);
        Ok(LogWriter {
            dir,
            name,
            file,
            size,
            opts,
            pending: [Vec::new(), Vec::new()],
            out: Vec::new(),
        })
    }

    /// Take what the container wrote to `stream`: every complete line becomes an entry, a
    /// line longer than 16 KiB a partial one; the rest waits for more.
    pub fn write(&mut self, stream: Stream, data: &[u8]) -> Result<()> {
        let i = stream as usize;
        self.pending[i].extend_from_slice(data);
        loop {
            let buf = &self.pending[i];
            let cut = match buf.iter().position(|b| *b == b'\n') {
                Some(p) if p < MAX_LINE => p + 1,
                _ if buf.len() >= MAX_LINE => MAX_LINE,
                _ => break,
            };
            let line: Vec<u8> = self.pending[i].drain(..cut).collect();
            self.entry(stream, &line)?;
        }
        self.flush()
    }

    /// Write out the entries made so far.
    fn flush(&mut self) -> Result<()> {
        if self.out.is_empty() {
            return Ok(());
        }
        // Someone deleted the log under the running container (`rm *-json.log` to free space):
        // what comes next goes to a new file under the same name, where `logs` looks, rather
        // than into an unlinked one nobody can read. (One fstat per write.)
        if self.file.metadata().is_ok_and(|m| m.nlink() == 0) {
            self.file = open_in(
                &self.dir,
                &self.name,
                OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_APPEND,
            )
            .map_err(Error::io("open", &self.name))?;
            self.size = self.file.metadata().map(|m| m.len()).unwrap_or(0);
        }
        self.file
            .write_all(&self.out)
            .map_err(Error::write("write", &self.name))?;
        self.size += self.out.len() as u64;
        self.out.clear();
        Ok(())
    }

    /// Write out what is left of unfinished lines (the container ended).
    pub fn finish(&mut self) -> Result<()> {
        for stream in [Stream::Stdout, Stream::Stderr] {
            let rest = std::mem::take(&mut self.pending[stream as usize]);
            if !rest.is_empty() {
                self.entry(stream, &rest)?;
            }
        }
        self.flush()
    }

    fn entry(&mut self, stream: Stream, bytes: &[u8]) -> Result<()> {
        let e = Entry {
            log: String::from_utf8_lossy(bytes).into_owned(),
            stream,
            time: crate::container::now_rfc3339(),
        };
        let mut line = serde_json::to_vec(&e).expect("a log entry serializes");
        line.push(b'\n');
        if let Some(max) = self.opts.max_size {
            let had = self.size + self.out.len() as u64;
            if had > 0 && had + line.len() as u64 > max {
                self.flush()?;
                self.rotate()?;
            }
        }
        self.out.extend_from_slice(&line);
        Ok(())
    }

    /// `<name>.{n-1}` → `<name>.{n}` … `<name>` → `<name>.1`, dropping the oldest, then a new
    /// empty `<name>`. A reader holding the old file open keeps reading it to its end.
    fn rotate(&mut self) -> Result<()> {
        let keep = self.opts.max_file.max(1);
        let dir = Some(std::os::fd::AsRawFd::as_raw_fd(&self.dir));
        // The log's name always names a file (a reader never finds it missing): the rotated
        // names shift down, the current file gets the name `.1` too (a hard link), and a new
        // empty file is renamed over the name.
        for n in (2..keep).rev() {
            let from = format!("{}.{}", self.name, n - 1);
            let to = format!("{}.{n}", self.name);
            match nix::fcntl::renameat(dir, from.as_str(), dir, to.as_str()) {
                Ok(()) | Err(nix::errno::Errno::ENOENT) => {}
                Err(e) => return Err(Error::io("rotate", &from)(e.into())),
            }
        }
        let first = format!("{}.1", self.name);
        if keep > 1 {
            let _ =
                nix::unistd::unlinkat(dir, first.as_str(), nix::unistd::UnlinkatFlags::NoRemoveDir);
            nix::unistd::linkat(
                dir,
                self.name.as_str(),
                dir,
                first.as_str(),
                AtFlags::empty(),
            )
            .map_err(|e| Error::io("rotate", &self.name)(e.into()))?;
        }
        // With max-file=1 the file is simply replaced: one file, never larger than max-size.
        let fresh = format!(".{}.new", self.name);
        let _ = nix::unistd::unlinkat(dir, fresh.as_str(), nix::unistd::UnlinkatFlags::NoRemoveDir);
        let file = open_in(
            &self.dir,
            &fresh,
            OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_APPEND,
        )
        .map_err(Error::io("create", &fresh))?;
        nix::fcntl::renameat(dir, fresh.as_str(), dir, self.name.as_str())
            .map_err(|e| Error::io("rotate", &fresh)(e.into()))?;
        self.file = file;
        self.size = 0;
        Ok(())
    }
}

/// The rotated log files of a container, oldest first, opened through the container
/// directory's descriptor; missing ones, and the file `current` is (a rotation right after it
/// was opened makes it `.1`), are skipped.
pub fn open_rotated(dir: &OwnedFd, id: &str, current: Option<&File>) -> Vec<File> {
    let name = file_name(id);
    let id_of = |f: &File| {
        nix::sys::stat::fstat(std::os::fd::AsRawFd::as_raw_fd(f))
            .ok()
            .map(|st| (st.st_dev, st.st_ino))
    };
    let skip = current.and_then(id_of);
    let mut files = Vec::new();
    for n in (1..MAX_ROTATED).rev() {
        if let Ok(f) = open_in(dir, &format!("{name}.{n}"), OFlag::O_RDONLY) {
            if skip.is_none() || id_of(&f) != skip {
                files.push(f);
            }
        }
    }
    files
}

/// How many rotated files a reader looks for (Docker's max-file has no limit; dockling's
/// readers stop at this many).
const MAX_ROTATED: u32 = 100;

/// Every log file of a container, oldest first, the current one last.
pub fn open_all(dir: &OwnedFd, id: &str) -> Vec<File> {
    let mut files = open_rotated(dir, id, None);
    if let Ok(f) = open_in(dir, &file_name(id), OFlag::O_RDONLY) {
        files.push(f);
    }
    files
}

/// Read every entry of `files` in order (a line that is not an entry is skipped: a killed
/// writer can leave half a line at the end).
pub fn read_entries(files: Vec<File>) -> Vec<Entry> {
    let mut out = Vec::new();
    each_entry(files, |e| out.push(e));
    out
}

/// [`read_entries`], handing each entry to `f` as it is read (a big log is never held whole).
pub fn each_entry(files: Vec<File>, mut f: impl FnMut(Entry)) {
    for file in files {
        for line in BufReader::with_capacity(1 << 16, file)
            .split(b'\n')
            .map_while(|l| l.ok())
        {
            if let Ok(e) = serde_json::from_slice::<Entry>(&line) {
                f(e);
            }
        }
    }
}

/// Follows the current log file: new entries as they are written, across rotations.
pub struct Follower {
    dir: OwnedFd,
    name: String,
    file: File,
    pos: u64,
    partial: Vec<u8>,
}

impl Follower {
    /// Follow from the end of the current file as it is now.
    pub fn new(dir: OwnedFd, id: &str) -> Result<Follower> {
        let mut f = Follower::from_start(dir, id)?;
        f.pos = f
            .file
            .seek(std::io::SeekFrom::End(0))
            .map_err(Error::io("read", &f.name))?;
        Ok(f)
    }

    /// Follow the current file from its start (the first [`Follower::poll`] reads it all).
    pub fn from_start(dir: OwnedFd, id: &str) -> Result<Follower> {
        let name = file_name(id);
        let file = open_in(&dir, &name, OFlag::O_RDONLY).map_err(Error::io("open", &name))?;
        Ok(Follower {
            dir,
            name,
            file,
            pos: 0,
            partial: Vec::new(),
        })
    }

    /// The file being followed.
    pub fn file(&self) -> &File {
        &self.file
    }

    /// The entries written since the last call (see [`Follower::poll_each`]).
    pub fn poll(&mut self) -> Vec<Entry> {
        let mut out = Vec::new();
        self.poll_each(|e| out.push(e));
        out
    }

    /// Hand each entry written since the last call to `f`. After a rotation, the rest of the
    /// old file is read first, then the new one from its start.
    pub fn poll_each(&mut self, mut f: impl FnMut(Entry)) {
        self.read_each(&mut f);
        // Rotated (or truncated) when the name now points at another file, or a shorter one.
        let now = nix::sys::stat::fstatat(
            Some(std::os::fd::AsRawFd::as_raw_fd(&self.dir)),
            self.name.as_str(),
            AtFlags::AT_SYMLINK_NOFOLLOW,
        );
        let mine = nix::sys::stat::fstat(std::os::fd::AsRawFd::as_raw_fd(&self.file.as_fd()));
        if let (Ok(now), Ok(mine)) = (now, mine) {
            let replaced = now.st_ino != mine.st_ino || now.st_dev != mine.st_dev;
            if replaced || (now.st_size as u64) < self.pos {
                if let Ok(file) = open_in(&self.dir, &self.name, OFlag::O_RDONLY) {
                    self.file = file;
                    self.pos = 0;
                    self.partial.clear();
                    self.read_each(&mut f);
                }
            }
        }
    }

    /// Hand each entry written since the last read of the current file to `f`, reading it in
    /// 64 KiB pieces: complete lines are parsed where they lie, only an unfinished tail is
    /// kept.
    fn read_each(&mut self, mut f: impl FnMut(Entry)) {
        let mut buf = vec![0u8; 1 << 16];
        loop {
            let n = match self.file.read(&mut buf) {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            self.pos += n as u64;
            self.partial.extend_from_slice(&buf[..n]);
            let mut start = 0;
            while let Some(p) = self.partial[start..].iter().position(|b| *b == b'\n') {
                let line = &self.partial[start..start + p];
                if let Ok(e) = serde_json::from_slice::<Entry>(line) {
                    f(e);
                }
                start += p + 1;
            }
            self.partial.drain(..start);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir() -> (tempfile::TempDir, OwnedFd) {
        let t = tempfile::tempdir().unwrap();
        let fd = open_dir(t.path()).unwrap();
        (t, fd)
    }

    fn reopen(t: &tempfile::TempDir) -> OwnedFd {
        open_dir(t.path()).unwrap()
    }

    #[test]
    fn lines_become_docker_entries_and_partial_lines_wait() {
        let (t, fd) = dir();
        let mut w = LogWriter::open(fd, "c1", LogOptions::parse(&[]).unwrap()).unwrap();
        w.write(Stream::Stdout, b"hel").unwrap();
        w.write(Stream::Stderr, b"oops\n").unwrap();
        w.write(Stream::Stdout, b"lo\nwor").unwrap();
        w.finish().unwrap();
        let text = std::fs::read_to_string(t.path().join("c1-json.log")).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3, "{text}");
        assert!(
            lines[0].starts_with(r#"{"log":"oops\n","stream":"stderr","time":""#),
            "{text}"
        );
        let entries = read_entries(open_all(&reopen(&t), "c1"));
        let logs: Vec<(&str, Stream)> =
            entries.iter().map(|e| (e.log.as_str(), e.stream)).collect();
        assert_eq!(
            logs,
            [
                ("oops\n", Stream::Stderr),
                ("hello\n", Stream::Stdout),
                ("wor", Stream::Stdout)
            ]
        );
        assert!(humantime::parse_rfc3339(&entries[0].time).is_ok());
    }

    #[test]
    fn long_lines_are_split_in_16k_pieces() {
        let (t, fd) = dir();
        let mut w = LogWriter::open(fd, "c1", LogOptions::default()).unwrap();
        let long = vec![b'x'; MAX_LINE + 10];
        w.write(Stream::Stdout, &long).unwrap();
        w.write(Stream::Stdout, b"\n").unwrap();
        let e = read_entries(open_all(&reopen(&t), "c1"));
        assert_eq!(e.len(), 2);
        assert_eq!(e[0].log.len(), MAX_LINE);
        assert_eq!(e[1].log, format!("{}\n", "x".repeat(10)));
    }

    #[test]
    fn rotation_keeps_max_file_files_and_reads_back_in_order() {
        let (t, fd) = dir();
        let opts = LogOptions::parse(&["max-size=200".into(), "max-file=3".into()]).unwrap();
        let mut w = LogWriter::open(fd, "c1", opts).unwrap();
        for i in 0..30 {
            w.write(Stream::Stdout, format!("line {i}\n").as_bytes())
                .unwrap();
        }
        let names: std::collections::BTreeSet<String> = std::fs::read_dir(t.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            names.into_iter().collect::<Vec<_>>(),
            ["c1-json.log", "c1-json.log.1", "c1-json.log.2"]
        );
        for n in ["c1-json.log", "c1-json.log.1", "c1-json.log.2"] {
            assert!(
                std::fs::metadata(t.path().join(n)).unwrap().len() <= 200,
                "{n}"
            );
        }
        let e = read_entries(open_all(&reopen(&t), "c1"));
        assert_eq!(e.last().unwrap().log, "line 29\n");
        let nums: Vec<u32> = e
            .iter()
            .map(|e| e.log.trim().trim_start_matches("line ").parse().unwrap())
            .collect();
        assert!(nums.windows(2).all(|w| w[1] == w[0] + 1), "{nums:?}");
        assert!(nums[0] > 0, "the oldest lines were dropped: {nums:?}");
    }

    #[test]
    fn a_follower_sees_new_lines_across_a_rotation() {
        let (t, fd) = dir();
        let opts = LogOptions::parse(&["max-size=150".into(), "max-file=2".into()]).unwrap();
        let mut w = LogWriter::open(fd, "c1", opts).unwrap();
        w.write(Stream::Stdout, b"before\n").unwrap();
        let mut f = Follower::new(reopen(&t), "c1").unwrap();
        assert!(f.poll().is_empty());
        let mut seen = Vec::new();
        for i in 0..6 {
            w.write(Stream::Stdout, format!("after {i}\n").as_bytes())
                .unwrap();
            seen.extend(f.poll().into_iter().map(|e| e.log));
        }
        assert_eq!(
            seen,
            (0..6).map(|i| format!("after {i}\n")).collect::<Vec<_>>()
        );
        assert!(t.path().join("c1-json.log.1").exists(), "it rotated");
    }

    #[test]
    fn bad_log_options_say_what_the_driver_takes() {
        for bad in [
            ["max-size=lots"],
            ["max-file=0"],
            ["color=red"],
            ["max-file=2"],
        ] {
            let opts: Vec<String> = bad.iter().map(|s| s.to_string()).collect();
            let e = LogOptions::parse(&opts).unwrap_err().to_string();
            assert!(e.contains("max-size") || e.contains("max-file"), "{e}");
        }
        assert_eq!(
            LogOptions::parse(&["max-size=10m".into(), "max-file=3".into()]).unwrap(),
            LogOptions {
                max_size: Some(10 << 20),
                max_file: 3
            }
        );
    }

    #[test]
    fn a_log_deleted_under_the_writer_is_made_again_and_new_lines_land_in_it() {
        let (t, fd) = dir();
        let mut w = LogWriter::open(fd, "c1", LogOptions::default()).unwrap();
        w.write(Stream::Stdout, b"before\n").unwrap();
        std::fs::remove_file(t.path().join(file_name("c1"))).unwrap();
        w.write(Stream::Stdout, b"after\n").unwrap();
        let logs: Vec<String> = read_entries(open_all(&reopen(&t), "c1"))
            .into_iter()
            .map(|e| e.log)
            .collect();
        assert_eq!(logs, ["after\n"]);
    }

    #[test]
    fn a_symlink_in_place_of_the_log_is_not_followed() {
        let (t, fd) = dir();
        let target = t.path().join("elsewhere");
        std::fs::write(&target, "keep").unwrap();
        std::os::unix::fs::symlink(&target, t.path().join("c1-json.log")).unwrap();
        assert!(LogWriter::open(fd, "c1", LogOptions::default()).is_err());
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "keep");
    }
}
