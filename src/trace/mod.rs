//! Trace events, their renderers, and `--step` pauses.
//!
//! The tracer is the only process-wide sink. It receives step and syscall events from
//! [`crate::sys::Sys`] and writes each as one `write(2)` to stderr: for people (grouped by step,
//! coloured unless `NO_COLOR` or not a terminal) or as JSON lines with the schema below, which
//! is stable (new keys may be added; existing ones keep their meaning):
//!
//! ```text
//! {"v":1,"type":"step","process":"engine","subsystem":"rootfs","step":"rootfs.pivot_root","title":"..."}
//! {"v":1,"type":"syscall","process":"container","subsystem":"rootfs","step":"rootfs.pivot_root",
//!  "syscall":"pivot_root","args":"\".\", \".\"","result":0,"errno":null,"duration_us":14,
//!  "explain":"...","man":"pivot_root(2)"}
//! {"v":1,"type":"note","process":"engine","step":"image.resolve","message":"..."}
//! ```
//! A step done another way because of a flag carries `"variant"` (`"chroot"` for
//! `rootfs.pivot_root` with `--rootfs chroot`) and that variant's title.
//! `process` is `engine` for the dockling process and `container` for the child between
//! `clone` and `execve`. `result` is the value strace prints after `=`, or -1 with `errno` set.
//! `at_us` (steps and syscalls) is when the step or call began, in microseconds of the
//! realtime clock, so the events of the engine, the monitor and the container line up on one
//! timeline (where the time of a start goes).

pub mod catalog;
pub mod render;

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{IsTerminal, Read, Write};
use std::os::fd::AsFd;
use std::time::Duration;

use nix::errno::Errno;

pub use crate::plan::StepId;
use crate::sys::{Call, Ret};
use catalog::Catalog;

/// Microseconds of the realtime clock, `ago` before now.
pub(crate) fn now_us(ago: Duration) -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.saturating_sub(ago).as_micros() as u64)
}

/// How the trace is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// Grouped by step, for people.
    Pretty,
    /// One JSON object per line.
    Json,
}

impl Format {
    /// Every trace format: its name, as the command line spells it, and what it
    /// does, as the command line's help lists it.
    pub const VARIANTS: &'static [(Format, &'static str, &'static str)] = &[
        (Format::Pretty, "pretty", "Grouped by step, for people"),
        (Format::Json, "json", "One JSON object per line"),
    ];
}

crate::named_variants!(Format, "trace format");

/// The user pressed `q` at a `--step` pause.
#[derive(Debug, thiserror::Error)]
#[error("aborted by the user before step {0}")]
pub struct Aborted(pub &'static str);

struct State {
    process: &'static str,
    current: Option<StepId>,
    vars: BTreeMap<&'static str, String>,
    /// Buffered output (explain renders into a string instead of stderr).
    capture: Option<String>,
    /// Explanations already shown (pretty output explains each kind of call once).
    explained: std::collections::BTreeSet<&'static str>,
    /// Long paths shown as `$NAME` in pretty output: (name, path), longest first.
    abbrev: Vec<(String, String)>,
    /// Events not yet written: flushed in one write before anything that could duplicate or
    /// delay them (clone, execve, wait4, a pause) and at the end.
    pending: String,
    /// Where `--step` reads answers: the user's terminal, or a copy of the original stdin,
    /// opened before clone so the container's own terminal setup cannot take it away.
    input: Option<(File, bool)>,
    /// Where events go: a close-on-exec copy of stderr made when the tracer was, so the
    /// container's child, whose stderr becomes its pseudo-terminal (`-t`) before anyone relays
    /// that, still writes its events to the user's stderr (and cannot block on a full pty).
    out: Option<File>,
}

/// The trace sink and pause controller.
pub struct Tracer {
    format: Option<Format>,
    color: bool,
    pause: bool,
    dry_run: bool,
    state: RefCell<State>,
}

impl Tracer {
    /// A tracer that records nothing and never pauses.
    pub fn off() -> Self {
        Self::new(None, false)
    }

    /// A tracer writing `format` to stderr (if any), pausing before each step if `pause`.
    pub fn new(format: Option<Format>, pause: bool) -> Self {
        let color = stderr_color();
        Tracer {
            format,
            color,
            pause,
            dry_run: false,
            state: RefCell::new(State {
                process: "engine",
                current: None,
                vars: BTreeMap::new(),
                capture: None,
                explained: Default::default(),
                abbrev: Vec::new(),
                pending: String::new(),
                input: if pause { pause_input() } else { None },
                out: if format.is_some() || pause {
                    std::io::stderr()
                        .as_fd()
                        .try_clone_to_owned()
                        .ok()
                        .map(File::from)
                } else {
                    None
                },
            }),
        }
    }

    /// The tracer of a command with `--trace[=FORMAT]`, `--trace-file PATH` and `--step`:
    /// with a file, the events go there (JSON unless `--trace` names a format), never
    /// coloured, and the container's own stderr cannot mix into them. The file is created
    /// 0600 and truncated when `fresh`; not by the engine re-executed from its sealed binary,
    /// which goes on writing after its predecessor (`--trace-file` is in its arguments too).
    pub fn for_command(
        format: Option<Format>,
        file: Option<&std::path::Path>,
        fresh: bool,
        pause: bool,
    ) -> Result<Self, crate::error::Error> {
        let Some(path) = file else {
            return Ok(Self::new(format, pause));
        };
        use std::os::unix::fs::OpenOptionsExt;
        let mut tracer = Self::new(format.or(Some(Format::Json)), pause);
        let out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .truncate(false)
            .mode(0o600)
            .custom_flags(libc::O_CLOEXEC | libc::O_NOFOLLOW)
            .open(path)
            .map_err(crate::error::Error::io("open the trace file", path))?;
        if fresh {
            out.set_len(0)
                .map_err(crate::error::Error::io("truncate the trace file", path))?;
        }
        tracer.color = false;
        tracer.state.get_mut().out = Some(out);
        Ok(tracer)
    }

    /// `--trace FORMAT` with a space: the parser takes FORMAT for the next argument (`run`'s
    /// image, `exec`'s container). When that argument is a trace format's name, the user
    /// meant `--trace=FORMAT`: said so, rather than pulling an image called `json`.
    pub fn check_spaced(
        format: Option<Format>,
        next: &str,
        what: &str,
    ) -> Result<(), crate::error::Error> {
        let Some((_, name, _)) = Format::VARIANTS.iter().find(|(_, n, _)| *n == next) else {
            return Ok(());
        };
        if format.is_none() {
            return Ok(());
        }
        Err(crate::error::Error::Usage(format!(
            "`--trace {name}` takes {name} for the {what}: write `--trace={name}` (for the {what} {name} itself: `--trace=pretty {name}`)"
        )))
    }

    /// A tracer that renders into a string (for `explain` and snapshot tests), never coloured.
    pub fn capture(format: Format) -> Self {
        let mut t = Self::new(Some(format), false);
        t.color = false;
        t.dry_run = true;
        t.state.borrow_mut().capture = Some(String::new());
        t
    }

    /// What was captured so far.
    pub fn captured(&self) -> String {
        self.state.borrow().capture.clone().unwrap_or_default()
    }

    /// The descriptors the tracer itself writes events to and reads `--step` answers from:
    /// a process that closes everything else (`--init`'s process 1) keeps these.
    pub fn own_fds(&self) -> Vec<std::os::fd::RawFd> {
        use std::os::fd::AsRawFd;
        let st = self.state.borrow();
        let out = st.out.as_ref().map(|f| f.as_raw_fd());
        let input = st.input.as_ref().map(|(f, _)| f.as_raw_fd());
        out.into_iter().chain(input).collect()
    }

    /// Move the tracer's own descriptors (see [`Tracer::own_fds`]) to numbers from `min` up
    /// (close-on-exec, as before), so a process that puts descriptors of its own on fixed low
    /// numbers (the port proxy's fork) does not write its events into them. The tracer's own
    /// plumbing (`fcntl(F_DUPFD_CLOEXEC)`, the old copies closed), not traced.
    pub fn move_fds_above(&self, min: std::os::fd::RawFd) {
        use std::os::fd::{AsRawFd, FromRawFd};
        let moved = |f: &File| -> Option<File> {
            let fd = nix::fcntl::fcntl(f.as_raw_fd(), nix::fcntl::FcntlArg::F_DUPFD_CLOEXEC(min))
                .ok()?;
            // SAFETY: F_DUPFD_CLOEXEC returned a new descriptor nothing else owns.
            Some(unsafe { File::from_raw_fd(fd) })
        };
        let mut st = self.state.borrow_mut();
        if let Some(new) = st.out.as_ref().and_then(moved) {
            st.out = Some(new);
        }
        if let Some((new, tty)) = st
            .input
            .as_ref()
            .and_then(|(f, tty)| Some((moved(f)?, *tty)))
        {
            st.input = Some((new, tty));
        }
    }

    /// True when syscalls are recorded.
    pub fn enabled(&self) -> bool {
        self.format.is_some()
    }

    /// True with `--step`.
    pub fn pausing(&self) -> bool {
        self.pause
    }

    /// Name the process events come from (`container` in the child after clone).
    pub fn set_process(&self, name: &'static str) {
        self.state.borrow_mut().process = name;
    }

    /// The process events come from now (see [`Tracer::set_process`]).
    pub fn process(&self) -> &'static str {
        self.state.borrow().process
    }

    /// Set a value used in "look at" hints (`pid`, `root`, `rootfs`, `cgroup`...).
    pub fn set_var(&self, key: &'static str, value: impl Into<String>) {
        self.state.borrow_mut().vars.insert(key, value.into());
    }

    /// Show `path` as `$name` in pretty output from now on (the JSON trace keeps full paths).
    pub fn abbreviate(&self, name: &str, path: &std::path::Path) {
        let path = path.display().to_string();
        if self.format == Some(Format::Pretty) {
            self.emit(&format!(
                "   {}\n",
                self.paint("2", &format!("${name} = {path}"))
            ));
        }
        let mut st = self.state.borrow_mut();
        st.abbrev.push((format!("${name}"), path));
        st.abbrev.sort_by_key(|(_, p)| std::cmp::Reverse(p.len()));
    }

    fn shorten(&self, text: String) -> String {
        let st = self.state.borrow();
        st.abbrev
            .iter()
            .fold(text, |t, (name, path)| t.replace(path.as_str(), name))
    }

    fn fill(&self, template: &str) -> String {
        let st = self.state.borrow();
        let mut out = template.to_string();
        for (k, v) in &st.vars {
            out = out.replace(&format!("{{{k}}}"), v);
        }
        out
    }

    fn paint(&self, code: &str, s: &str) -> String {
        paint(self.color, code, s)
    }

    fn emit(&self, text: &str) {
        self.emit_with(|buf| buf.push_str(text));
    }

    /// [`Self::emit`] of what `write` appends, written straight into the buffer (no line of
    /// its own to allocate, copy and free for each of a run's ~450 events).
    fn emit_with(&self, write: impl FnOnce(&mut String)) {
        let mut guard = self.state.borrow_mut();
        let st = &mut *guard;
        if let Some(buf) = st.capture.as_mut() {
            write(buf);
            return;
        }
        write(&mut st.pending);
        let big = st.pending.len() > 1 << 16;
        drop(guard);
        if big {
            self.flush();
        }
    }

    /// Write out buffered events (one write, so the engine's and the child's never mix).
    /// The buffer keeps its memory for the next events (a run flushes it ~10 times).
    pub fn flush(&self) {
        let mut guard = self.state.borrow_mut();
        let st = &mut *guard;
        if st.pending.is_empty() {
            return;
        }
        match st.out.as_mut() {
            Some(out) => {
                let _ = out.write_all(st.pending.as_bytes());
            }
            None => {
                let _ = std::io::stderr().lock().write_all(st.pending.as_bytes());
            }
        }
        st.pending.clear();
    }

    /// Enter a step: print its header, and with `--step` wait for Enter (or `q`).
    pub fn step(&self, id: StepId) -> Result<(), Aborted> {
        self.step_variant(id, None)
    }

    /// Go on with a step another process of this run already entered and announced (the
    /// re-executed engine after `execveat`): later events belong to it, nothing is printed.
    pub fn resume(&self, id: StepId) {
        self.state.borrow_mut().current = Some(id);
    }

    /// Enter a step done another way because of a flag (see [`crate::plan::VARIANTS`]): its
    /// title is the variant's, and the JSON event says `"variant"`.
    pub fn step_variant(&self, id: StepId, variant: Option<&'static str>) -> Result<(), Aborted> {
        self.enter(id, variant, self.pause)
    }

    /// Enter a step without pausing, even with `--step`: the undo after a failure or an abort
    /// (the user already answered, or there is nothing left to decide).
    pub fn step_without_pause(&self, id: StepId) {
        let _ = self.enter(id, None, false);
    }

    /// Enter a step that began earlier, at `at_us` (µs since the epoch), in the process this
    /// one replaced by `execve` (see `runtime::exe::reexec_early`); never pauses.
    pub fn step_at(&self, id: StepId, at_us: u64) {
        let _ = self.enter_at(id, None, false, Some(at_us));
    }

    fn enter(&self, id: StepId, variant: Option<&'static str>, pause: bool) -> Result<(), Aborted> {
        self.enter_at(id, variant, pause, None)
    }

    fn enter_at(
        &self,
        id: StepId,
        variant: Option<&'static str>,
        pause: bool,
        at_us: Option<u64>,
    ) -> Result<(), Aborted> {
        self.state.borrow_mut().current = Some(id);
        if self.format.is_none() && !pause {
            // Nobody is watching: skip the catalog (parsing it costs more than a step).
            return Ok(());
        }
        let cat = Catalog::get();
        let text = variant
            .and_then(|v| cat.step(&format!("{}:{v}", id.key())))
            .or_else(|| cat.step(id.key()));
        let title = text.map(|t| t.title.as_str()).unwrap_or(id.key());
        match self.format {
            Some(Format::Json) => {
                let process = self.state.borrow().process;
                let line = StepEvent {
                    process,
                    subsystem: id.subsystem().as_str(),
                    step: id.key(),
                    title,
                    at_us: at_us.unwrap_or_else(|| now_us(Duration::ZERO)),
                    variant,
                };
                self.emit(&line.to_json_line());
            }
            Some(Format::Pretty) => {
                let head = format!("── {} · {} ", id.subsystem(), variant.unwrap_or(id.name()));
                self.emit(&format!(
                    "{}{}\n",
                    self.paint("1;36", &head),
                    self.paint("36", title)
                ));
            }
            None => {}
        }
        if pause {
            let look = text.map(|t| self.fill(&t.look)).unwrap_or_default();
            return self.wait_for_user(id, title, &look);
        }
        Ok(())
    }

    fn wait_for_user(&self, id: StepId, title: &str, look: &str) -> Result<(), Aborted> {
        self.flush();
        let prompt = format!(
            "{} [{}] {}\n   look: {}\n   Enter: go on · q: abort and undo > ",
            self.paint("1;33", "⏸ next:"),
            id.key(),
            title,
            look
        );
        let mut guard = self.state.borrow_mut();
        let st = &mut *guard;
        let Some((input, is_tty)) = st.input.as_mut() else {
            return Ok(());
        };
        // Prompts go to the terminal itself when there is one, so they never mix with output.
        if *is_tty {
            let _ = input.write_all(prompt.as_bytes());
        } else if let Some(out) = st.out.as_mut() {
            let _ = out.write_all(prompt.as_bytes());
        } else {
            let _ = std::io::stderr().write_all(prompt.as_bytes());
        }
        // Read one line byte by byte so nothing meant for the container is consumed.
        let mut line = Vec::new();
        let mut byte = [0u8; 1];
        loop {
            match input.read(&mut byte) {
                Ok(0) => break,
                Ok(_) if byte[0] == b'\n' => break,
                Ok(_) => line.push(byte[0]),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(_) => break,
            }
        }
        drop(guard);
        if String::from_utf8_lossy(&line)
            .trim()
            .eq_ignore_ascii_case("q")
        {
            return Err(Aborted(id.key()));
        }
        Ok(())
    }

    /// A free-form line under the current step (image chosen, limits applied...).
    pub fn note(&self, message: &str) {
        let (process, step) = {
            let st = self.state.borrow();
            (st.process, st.current.map(|s| s.key()))
        };
        match self.format {
            Some(Format::Json) => {
                let line = serde_json::json!({"v": 1, "type": "note", "process": process, "step": step, "message": message});
                self.emit(&format!("{line}\n"));
            }
            Some(Format::Pretty) => {
                let message = self.shorten(message.to_string());
                self.emit(&format!(
                    "   {}\n",
                    self.paint("2", &format!("· {message}"))
                ))
            }
            None => {}
        }
    }

    /// Record one syscall.
    pub fn syscall(&self, call: &Call, res: &Result<Ret, Errno>, took: Duration) {
        self.syscall_at(call, res, took, now_us(took));
    }

    /// Record one syscall that began at `at_us` (µs since the epoch): one the process this
    /// one replaced by `execve` made before it had a tracer (`runtime::exe::reexec_early`).
    pub fn syscall_at(&self, call: &Call, res: &Result<Ret, Errno>, took: Duration, at_us: u64) {
        let Some(format) = self.format else { return };
        let (process, step) = {
            let st = self.state.borrow();
            (st.process, st.current)
        };
        let exp = Catalog::get().explain(call.explain_key());
        let (result, errno) = match res {
            Ok(r) => (call.returned(r), None),
            Err(e) => (-1, Some(*e)),
        };
        match format {
            Format::Json => {
                let event = SyscallEvent {
                    v: 1,
                    kind: "syscall",
                    process,
                    subsystem: step.map(|s| s.subsystem().as_str()),
                    step: step.map(|s| s.key()),
                    syscall: call.name(),
                    args: call.args_with(res.as_ref().ok()),
                    result,
                    errno: errno.map(|e| format!("{e:?}")),
                    duration_us: took.as_micros() as u64,
                    at_us,
                    explain: exp.map(|e| e.text.as_str()),
                    man: exp.map(|e| e.man.as_str()),
                    // Netlink calls: the exact bytes, and the `ip` command that does the same.
                    data: call.data(res.as_ref().ok()).map(crate::sys::netlink::hex),
                    command: call.command(),
                };
                self.emit_with(|out| event.write_json_line(out));
            }
            Format::Pretty => {
                let outcome = match (errno, res) {
                    (None, Ok(r)) => self.paint("32", &format!("= {}", call.shown_result(r))),
                    (None, Err(_)) => self.paint("32", &format!("= {result}")),
                    (Some(e), _) => self.paint("1;31", &format!("= -1 {e:?} ({})", e.desc())),
                };
                let timing = if self.dry_run {
                    String::new()
                } else {
                    format!("  <{:.3} ms>", took.as_secs_f64() * 1000.0)
                };
                // The container's processes, a detached container's monitor, exec's processes.
                let who = if process == "engine" {
                    String::new()
                } else {
                    format!("[{process}] ")
                };
                let mut out = format!(
                    "   {}{}({}) {}{}\n",
                    who,
                    self.paint("1;33", call.name()),
                    self.shorten(call.args_with(res.as_ref().ok())),
                    if self.dry_run { String::new() } else { outcome },
                    self.paint("2", &timing)
                );
                if let Some(command) = call.command() {
                    out.push_str(&format!(
                        "      {}\n",
                        // An `nft -f -` script's lines stay under its first.
                        self.paint("2", &format!("≈ {}", command.replace('\n', "\n        ")))
                    ));
                }
                let first_time = self.state.borrow_mut().explained.insert(call.explain_key());
                if let (Some(e), true) = (exp, first_time) {
                    out.push_str(&format!(
                        "      {}\n",
                        self.paint("2", &format!("↳ {} — {}", e.text, e.man))
                    ));
                }
                self.emit(&out);
            }
        }
    }
}

impl Drop for Tracer {
    fn drop(&mut self) {
        self.flush();
    }
}

/// One syscall as a JSON line, its fields in the schema's order. Written by hand
/// ([`SyscallEvent::to_json_line`]), byte for byte what serde_json writes for it (a test holds
/// them equal): building a `serde_json::Value` first (an ordered map, hashing every key) was
/// most of what `--trace=json` added to a run's CPU time, and then serde_json's escaping, a
/// byte at a time through its writer, was most of the rest (0.9 of ~1.5 ms per run in a
/// profile, for ~180 kB of lines that hardly ever need an escape).
#[cfg_attr(test, derive(serde::Serialize))]
struct SyscallEvent<'a> {
    v: u8,
    #[cfg_attr(test, serde(rename = "type"))]
    kind: &'static str,
    process: &'a str,
    subsystem: Option<&'static str>,
    step: Option<&'static str>,
    syscall: &'static str,
    args: String,
    result: i64,
    errno: Option<String>,
    duration_us: u64,
    at_us: u64,
    explain: Option<&'a str>,
    man: Option<&'a str>,
    #[cfg_attr(test, serde(skip_serializing_if = "Option::is_none"))]
    data: Option<String>,
    #[cfg_attr(test, serde(skip_serializing_if = "Option::is_none"))]
    command: Option<&'a str>,
}

impl SyscallEvent<'_> {
    /// The event as serde_json would write it, and a newline.
    #[cfg(test)]
    fn to_json_line(&self) -> String {
        let mut out = String::new();
        self.write_json_line(&mut out);
        out
    }

    /// [`Self::to_json_line`] appended to `out`.
    fn write_json_line(&self, out: &mut String) {
        use std::fmt::Write;
        out.reserve(
            256 + self.args.len() + self.explain.map_or(0, str::len) + self.man.map_or(0, str::len),
        );
        let opt = |out: &mut String, v: Option<&str>| match v {
            Some(v) => json_str(out, v),
            None => out.push_str("null"),
        };
        let _ = write!(out, "{{\"v\":{},\"type\":", self.v);
        json_str(out, self.kind);
        out.push_str(",\"process\":");
        json_str(out, self.process);
        out.push_str(",\"subsystem\":");
        opt(out, self.subsystem);
        out.push_str(",\"step\":");
        opt(out, self.step);
        out.push_str(",\"syscall\":");
        json_str(out, self.syscall);
        out.push_str(",\"args\":");
        json_str(out, &self.args);
        let _ = write!(out, ",\"result\":{},\"errno\":", self.result);
        opt(out, self.errno.as_deref());
        let _ = write!(
            out,
            ",\"duration_us\":{},\"at_us\":{},\"explain\":",
            self.duration_us, self.at_us
        );
        opt(out, self.explain);
        out.push_str(",\"man\":");
        opt(out, self.man);
        if let Some(data) = &self.data {
            out.push_str(",\"data\":");
            json_str(out, data);
        }
        if let Some(command) = self.command {
            out.push_str(",\"command\":");
            json_str(out, command);
        }
        out.push_str("}\n");
    }
}

/// One step as a JSON line: `{"v":1,"type":"step",...}`, its fields in the schema's order,
/// written by hand as [`SyscallEvent`]'s (a test holds it equal to the `serde_json::Value` it
/// was built as before: an ordered map, hashing every key, for each of a run's ~40 steps).
struct StepEvent<'a> {
    process: &'a str,
    subsystem: &'static str,
    step: &'static str,
    title: &'a str,
    at_us: u64,
    variant: Option<&'a str>,
}

impl StepEvent<'_> {
    /// The event as serde_json writes it, and a newline.
    fn to_json_line(&self) -> String {
        use std::fmt::Write;
        let mut out = String::with_capacity(128 + self.title.len());
        out.push_str("{\"v\":1,\"type\":\"step\",\"process\":");
        json_str(&mut out, self.process);
        out.push_str(",\"subsystem\":");
        json_str(&mut out, self.subsystem);
        out.push_str(",\"step\":");
        json_str(&mut out, self.step);
        out.push_str(",\"title\":");
        json_str(&mut out, self.title);
        let _ = write!(out, ",\"at_us\":{}", self.at_us);
        if let Some(v) = self.variant {
            out.push_str(",\"variant\":");
            json_str(&mut out, v);
        }
        out.push_str("}\n");
        out
    }
}

/// `s` as a JSON string, escaped as serde_json does: `"`, `\` and the control characters
/// below 0x20 (`\b \t \n \f \r` by name, the others as `\u00xx`), nothing else. Runs that
/// need no escape are copied whole.
fn json_str(out: &mut String, s: &str) {
    out.push('"');
    if !needs_escape(s.as_bytes()) {
        out.push_str(s);
        out.push('"');
        return;
    }
    let mut start = 0;
    for (i, b) in s.bytes().enumerate() {
        let named = match b {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            0x08 => "\\b",
            b'\t' => "\\t",
            b'\n' => "\\n",
            0x0c => "\\f",
            b'\r' => "\\r",
            0..=0x1f => "",
            _ => continue,
        };
        out.push_str(&s[start..i]);
        if named.is_empty() {
            const HEX: &[u8; 16] = b"0123456789abcdef";
            out.push_str("\\u00");
            out.push(HEX[(b >> 4) as usize] as char);
            out.push(HEX[(b & 0xf) as usize] as char);
        } else {
            out.push_str(named);
        }
        start = i + 1;
    }
    out.push_str(&s[start..]);
    out.push('"');
}

/// Whether `s` holds a byte [`json_str`] escapes, tested eight bytes at a time (the classic
/// "has a zero byte" / "has a byte less than n" word tricks, exact for "any"): a byte loop
/// at the binary's opt-level s was still ~5 ns a byte.
fn needs_escape(s: &[u8]) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let zero_byte = |x: u64| x.wrapping_sub(ONES) & !x & HIGH;
    let mut chunks = s.chunks_exact(8);
    for c in &mut chunks {
        let x = u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]);
        let control = x.wrapping_sub(ONES * 0x20) & !x & HIGH;
        let quote = zero_byte(x ^ (ONES * b'"' as u64));
        let backslash = zero_byte(x ^ (ONES * b'\\' as u64));
        if control | quote | backslash != 0 {
            return true;
        }
    }
    chunks
        .remainder()
        .iter()
        .any(|&b| b < 0x20 || b == b'"' || b == b'\\')
}

/// Whether traces on stderr are coloured: a terminal, and `NO_COLOR` not set.
pub fn stderr_color() -> bool {
    std::env::var_os("NO_COLOR").is_none() && std::io::stderr().is_terminal()
}

/// `s` in the ANSI colour `code` when `color`, else as it is.
pub fn paint(color: bool, code: &str, s: &str) -> String {
    if color {
        format!("\x1b[{code}m{s}\x1b[0m")
    } else {
        s.to_string()
    }
}

/// The user's terminal (`/dev/tty`), or else a close-on-exec copy of stdin.
fn pause_input() -> Option<(File, bool)> {
    if let Ok(t) = File::options().read(true).write(true).open("/dev/tty") {
        return Some((t, true));
    }
    let fd = std::io::stdin().as_fd().try_clone_to_owned().ok()?;
    Some((File::from(fd), false))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The hand-written JSON line is serde_json's, byte for byte, whatever the strings hold.
    #[test]
    fn a_syscall_line_is_what_serde_json_writes() {
        let odd = "q\"b\\s/ é \u{1} \u{8}\t\n\u{c}\r\u{1f}\u{7f} 한";
        let events = [
            SyscallEvent {
                v: 1,
                kind: "syscall",
                process: "engine",
                subsystem: Some("rootfs"),
                step: Some("rootfs.mounts"),
                syscall: "openat",
                args: format!("AT_FDCWD, \"{odd}\", O_RDONLY"),
                result: -1,
                errno: Some("ENOENT".into()),
                duration_us: 12,
                at_us: u64::MAX,
                explain: Some(odd),
                man: Some("openat(2)"),
                data: Some("0a0b".into()),
                command: Some("ip link set lo up"),
            },
            SyscallEvent {
                v: 1,
                kind: "syscall",
                process: odd,
                subsystem: None,
                step: None,
                syscall: "close",
                args: String::new(),
                result: i64::MIN,
                errno: None,
                duration_us: 0,
                at_us: 0,
                explain: None,
                man: None,
                data: None,
                command: None,
            },
        ];
        for e in &events {
            let want = serde_json::to_string(e).unwrap() + "\n";
            assert_eq!(e.to_json_line(), want);
        }
    }

    /// The hand-written step line is the `serde_json::Value` it replaced, byte for byte.
    #[test]
    fn a_step_line_is_what_serde_json_writes() {
        let odd = "q\"b\\s/ é \u{1} \u{8}\t\n\u{c}\r\u{1f}\u{7f} 한";
        for (process, title, at_us, variant) in [
            ("engine", "Mount the root", 1_764_000_000_000_000, None),
            (odd, odd, u64::MAX, Some(odd)),
            ("child", "", 0, Some("chroot")),
        ] {
            let e = StepEvent {
                process,
                subsystem: "rootfs",
                step: "rootfs.mounts",
                title,
                at_us,
                variant,
            };
            let mut line = serde_json::json!({
                "v": 1, "type": "step", "process": process,
                "subsystem": "rootfs", "step": "rootfs.mounts", "title": title,
                "at_us": at_us,
            });
            if let Some(v) = variant {
                line["variant"] = v.into();
            }
            assert_eq!(e.to_json_line(), format!("{line}\n"));
        }
    }

    /// The word-at-a-time test agrees with the byte one at every byte value and position.
    #[test]
    fn needs_escape_finds_every_escaped_byte_anywhere() {
        let slow = |s: &[u8]| s.iter().any(|&b| b < 0x20 || b == b'"' || b == b'\\');
        for b in 0..=255u8 {
            for len in [1, 7, 8, 9, 17] {
                for at in 0..len {
                    let mut s = vec![b'a'; len];
                    s[at] = b;
                    assert_eq!(needs_escape(&s), slow(&s), "byte {b:#x} at {at} of {len}");
                    // Bytes around it that are high or just above the limits.
                    let mut t = vec![0x80u8; len];
                    t[at] = b;
                    assert_eq!(needs_escape(&t), slow(&t), "byte {b:#x} among 0x80");
                    let mut u = vec![0x21u8; len];
                    u[at] = b;
                    assert_eq!(needs_escape(&u), slow(&u), "byte {b:#x} among 0x21");
                }
            }
        }
    }
}
