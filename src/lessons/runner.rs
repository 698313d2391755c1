//! Running a lesson: each step's real command in a scratch store, its real output, its check.
//!
//! A lesson never touches the student's own containers and images: it gets a fresh store
//! root, config file (pointing at the lab registry as the Docker Hub mirror) and `HOME` (so a
//! `login` in a lesson stores nothing of the student's), all removed at the end together with
//! whatever the lesson's containers left. Commands run through `sh -c` with `dockling` on
//! `PATH` meaning this very binary; stdout and stderr are read together, as a terminal shows
//! them, with a time limit per step. Each step runs in a cgroup of its own, so that at its
//! deadline everything it started goes, even a process that left its process group (a
//! `setsid` daemon, a lab registry, a container's engine), and its output stops being read
//! then, whoever still holds the pipe.

use std::cell::RefCell;
use std::io::{BufRead, Read, Write};
use std::os::fd::AsFd;
use std::os::unix::ffi::OsStringExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::{Check, Expect, Lesson, Step};
use crate::cgroups::Cgroup;
use crate::error::{Error, Result};
use crate::sys::Sys;
use crate::trace::catalog::Catalog;

/// How long one step may take.
pub const STEP_LIMIT: Duration = Duration::from_secs(180);

/// How a lesson is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// For a terminal: prose, `$ command`, output, and a check mark per step.
    Text,
    /// A book chapter (Markdown): prose and console blocks with the real output.
    Markdown,
    /// One progress line per step (the tour).
    Progress,
}

impl Format {
    /// Every lesson format: its name, as the command line spells it, and what it
    /// does, as the command line's help lists it.
    pub const VARIANTS: &'static [(Format, &'static str, &'static str)] = &[
        (
            Format::Text,
            "text",
            "For a terminal: prose, `$ command`, output, and a check mark per step",
        ),
        (
            Format::Markdown,
            "markdown",
            "A book chapter (Markdown): prose and console blocks with the real output",
        ),
        (
            Format::Progress,
            "progress",
            "One progress line per step (the tour)",
        ),
    ];
}

crate::named_variants!(Format, "lesson format");

/// Where a lesson's commands run.
pub struct Scratch {
    dir: PathBuf,
    /// The lab's address (`127.0.0.1:5000`), for lessons that push to it.
    lab: String,
    /// Where the steps' cgroups go (the config's `cgroup-parent`).
    cgroup_parent: String,
    /// Names the steps' cgroups: `lesson-<this>-<n>`.
    id: String,
    /// Steps run so far (numbers their cgroups).
    steps: std::cell::Cell<usize>,
    /// Step groups still holding processes when their step ended (the monitors of detached
    /// containers): removed, and what is left in them killed, when the lesson ends.
    kept: RefCell<Vec<Cgroup>>,
}

/// What came out of one command.
pub struct Output {
    /// Exit code (-1 when killed by a signal or the time limit).
    pub code: i32,
    /// stdout and stderr, interleaved as written.
    pub text: String,
    /// Trace events (JSON lines of `--trace=json`), when asked for.
    pub trace: Vec<TraceEvent>,
}

/// One line of `--trace=json` (written by `crate::trace`), the fields a lesson's highlights
/// read; the others (`v`, `step`, `errno`, `duration_us`, `man`...) are not kept.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct TraceEvent {
    /// `syscall`, `step`, `note`, `registry`...
    #[serde(rename = "type")]
    pub kind: Option<String>,
    /// `engine` or `container`.
    pub process: Option<String>,
    /// The call's name, for a `syscall` event.
    pub syscall: Option<String>,
    /// Its arguments as the trace renders them.
    pub args: Option<String>,
    /// Its return value (-1 on failure).
    pub result: Option<i64>,
    /// The trace catalog's explanation of the call.
    pub explain: Option<String>,
}

impl Scratch {
    /// A fresh store, config and home under the system's temporary directory. `mirror` is the
    /// lab registry's URL.
    pub fn new(mirror: &str, cgroup_parent: &str) -> Result<Scratch> {
        let id = crate::container::new_id()[..12].to_string();
        let dir = std::env::temp_dir().join(format!("dockling-lesson-{id}"));
        for d in ["home", "bin"] {
            std::fs::create_dir_all(dir.join(d)).map_err(Error::io("create", dir.join(d)))?;
        }
        // The store with the modes dockling gives it (0711 and 0700 inside).
        crate::image::store::secure_root(&dir.join("root"))?;
        let exe = std::env::current_exe().map_err(Error::io("find", "/proc/self/exe"))?;
        std::os::unix::fs::symlink(&exe, dir.join("bin/dockling"))
            .map_err(Error::io("link", dir.join("bin/dockling")))?;
        std::fs::write(
            dir.join("config.yaml"),
            format!("registry-mirrors: [\"{mirror}\"]\ncgroup-parent: {cgroup_parent}\n"),
        )
        .map_err(Error::io("write", dir.join("config.yaml")))?;
        let lab = lab_addr(mirror);
        Ok(Scratch {
            dir,
            lab,
            cgroup_parent: cgroup_parent.to_string(),
            id,
            steps: std::cell::Cell::new(0),
            kept: RefCell::new(Vec::new()),
        })
    }

    /// `text` with the scratch store and home shown as `$DOCKLING_ROOT` and `$HOME`.
    pub fn abbreviate(&self, text: &str) -> String {
        text.replace(&self.root().display().to_string(), "$DOCKLING_ROOT")
            .replace(&self.dir.join("home").display().to_string(), "$HOME")
    }

    /// The events of the JSON trace a step's command wrote to `file` (relative to the
    /// directory the steps start in); none when it is missing or holds no event.
    pub fn trace_events(&self, file: &str) -> Vec<TraceEvent> {
        std::fs::read_to_string(self.dir.join(file))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    /// The scratch store root.
    pub fn root(&self) -> PathBuf {
        self.dir.join("root")
    }

    /// Run one shell line with the lesson's environment.
    pub fn sh(&self, line: &str, trace: bool) -> Result<Output> {
        let mut cmd = shell(
            line,
            &self.dir.join("bin"),
            &self.root(),
            &self.dir.join("config.yaml"),
        );
        cmd.current_dir(&self.dir)
            .env("HOME", self.dir.join("home"))
            .env("LAB", &self.lab);
        let n = self.steps.get() + 1;
        self.steps.set(n);
        let group = StepGroup::new(&self.cgroup_parent, &format!("lesson-{}-{n}", self.id));
        let out = run_bounded(cmd, trace, STEP_LIMIT, group.as_ref());
        if let Some(g) = group {
            if let Some(kept) = g.release() {
                self.kept.borrow_mut().push(kept);
            }
        }
        out
    }
}

/// The cgroup one step runs in (made in every hierarchy the host mounts, as a container's
/// is, with no limits): what the step starts stays in it, whatever process group or session
/// it moves to, so the deadline can kill it all.
pub struct StepGroup {
    group: Cgroup,
    /// `<group>/cgroup.procs` of each hierarchy, for the child to join before it runs.
    procs: Vec<std::ffi::CString>,
}

impl StepGroup {
    /// A new group `name` under `parent`, or None (said on stderr) when cgroups cannot be
    /// used (not root, none mounted): the deadline then kills the step's process group only.
    pub fn new(parent: &str, name: &str) -> Option<StepGroup> {
        let made = Cgroup::new(parent, name).and_then(|group| {
            group.create(
                &Sys::quiet(),
                &crate::spec::Limits::default(),
                crate::cgroups::devices::ALLOW_ALL,
            )?;
            Ok(group)
        });
        match made {
            Ok(group) => {
                let procs = group
                    .paths()
                    .iter()
                    .filter_map(|d| {
                        std::ffi::CString::new(d.join("cgroup.procs").into_os_string().into_vec())
                            .ok()
                    })
                    .collect();
                Some(StepGroup { group, procs })
            }
            Err(e) => {
                eprintln!(
                    "warning: no cgroup for a lesson step ({e}): at its time limit only its process group can be stopped"
                );
                None
            }
        }
    }

    /// Kill everything in the group.
    fn kill(&self) {
        if let Err(e) = self.group.kill_all(&Sys::quiet()) {
            eprintln!("warning: stopping a lesson step: {e}");
        }
    }

    /// Remove the group if nothing is left in it; otherwise hand it back, to be removed
    /// (its processes killed) later.
    fn release(self) -> Option<Cgroup> {
        if self.group.procs(&Sys::quiet()).is_empty() && self.group.destroy(&Sys::quiet()).is_ok() {
            None
        } else {
            Some(self.group)
        }
    }
}

/// `sh -c line` with `bin` (where `dockling` is) first on PATH and the store and config given.
fn shell(line: &str, bin: &Path, root: &Path, config: &Path) -> Command {
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_else(|_| "/usr/sbin:/usr/bin:/sbin:/bin".into())
    );
    let mut cmd = Command::new("/bin/sh");
    cmd.arg("-c")
        .arg(line)
        .env("PATH", path)
        .env("DOCKLING_ROOT", root)
        .env("DOCKLING_CONFIG", config)
        .env("NO_COLOR", "1")
        .stdin(Stdio::null());
    cmd
}

impl Drop for Scratch {
    fn drop(&mut self) {
        // Containers first (their cgroups and mounts go with them), then the files.
        if let Ok(out) = self.sh("dockling ps -aq --no-trunc", false) {
            for id in out.text.split_whitespace() {
                let _ = self.sh(&format!("dockling rm -f {id}"), false);
            }
        }
        // What the steps left running (their containers' monitors are gone by now).
        for group in self.kept.borrow_mut().drain(..) {
            if let Err(e) = group.destroy(&Sys::quiet()) {
                eprintln!("warning: removing a lesson step's cgroup: {e}");
            }
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Run `cmd` in its own process group (and in `group`, joined before the shell runs),
/// stdout and stderr into one pipe (or stderr apart as trace events when `trace`), reading
/// both until they close or `limit` has passed. At the deadline everything in the group (or,
/// without one, the shell's process group) is killed and reading stops, even if something
/// still holds the pipe open.
pub fn run_bounded(
    mut cmd: Command,
    trace: bool,
    limit: Duration,
    group: Option<&StepGroup>,
) -> Result<Output> {
    use std::os::unix::process::CommandExt;
    let (reader, writer) = std::io::pipe().map_err(Error::io("pipe", "lesson output"))?;
    let writer2 = writer
        .try_clone()
        .map_err(Error::io("pipe", "lesson output"))?;
    let (trace_reader, trace_writer) =
        std::io::pipe().map_err(Error::io("pipe", "lesson trace"))?;
    cmd.stdout(writer);
    if trace {
        cmd.stderr(trace_writer);
        drop(writer2);
    } else {
        cmd.stderr(writer2);
        drop(trace_writer);
    }
    cmd.process_group(0);
    if let Some(g) = group {
        let procs = g.procs.clone();
        // SAFETY: between fork and exec only async-signal-safe calls: open, write, close.
        unsafe {
            cmd.pre_exec(move || {
                for p in &procs {
                    let fd = libc::open(p.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
                    if fd < 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    let wrote = libc::write(fd, b"0".as_ptr().cast(), 1);
                    let err = std::io::Error::last_os_error();
                    libc::close(fd);
                    if wrote != 1 {
                        return Err(err);
                    }
                }
                Ok(())
            })
        };
    }
    let mut child = cmd
        .spawn()
        .map_err(|source| super::LessonError::StartShell { source })?;
    drop(cmd);
    let deadline = Instant::now() + limit;
    let mut out = Vec::new();
    let mut trace_out = Vec::new();
    let mut open = [Some(reader), if trace { Some(trace_reader) } else { None }];
    let mut status = None;
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        if status.is_none() {
            status = child
                .try_wait()
                .map_err(|source| super::LessonError::WaitStep { source })?;
        }
        if status.is_some() && open.iter().all(Option::is_none) {
            break;
        }
        let now = Instant::now();
        if now >= deadline {
            break;
        }
        // Wait for output (or the time to look at the child again, or the deadline).
        let wait = (deadline - now).min(Duration::from_millis(20));
        let mut fds: Vec<nix::poll::PollFd> = open
            .iter()
            .flatten()
            .map(|r| nix::poll::PollFd::new(r.as_fd(), nix::poll::PollFlags::POLLIN))
            .collect();
        if fds.is_empty() {
            std::thread::sleep(wait);
            continue;
        }
        let timeout = nix::poll::PollTimeout::try_from(wait.as_millis() as u64 + 1)
            .unwrap_or(nix::poll::PollTimeout::MAX);
        match nix::poll::poll(&mut fds, timeout) {
            Ok(0) | Err(nix::errno::Errno::EINTR) => continue,
            Ok(_) => {}
            Err(e) => {
                return Err(super::LessonError::WaitStep {
                    source: std::io::Error::from(e),
                }
                .into())
            }
        }
        let ready: Vec<bool> = fds
            .iter()
            .map(|f| f.revents().is_some_and(|r| !r.is_empty()))
            .collect();
        drop(fds);
        let mut k = 0;
        for (slot, sink) in open.iter_mut().zip([&mut out, &mut trace_out]) {
            let Some(r) = slot else { continue };
            let is_ready = ready[k];
            k += 1;
            if !is_ready {
                continue;
            }
            // Readable (or closed): one read does not block.
            match r.read(&mut buf) {
                Ok(0) => *slot = None,
                Ok(n) => sink.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => *slot = None,
            }
        }
    }
    let still_open = open.iter().any(Option::is_some);
    drop(open);
    let killed_running = status.is_none();
    let ran_out = killed_running || still_open;
    if ran_out {
        match group {
            Some(g) => g.kill(),
            None => {
                let _ = nix::sys::signal::killpg(
                    nix::unistd::Pid::from_raw(child.id() as i32),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
        }
        if status.is_none() {
            let _ = nix::sys::signal::killpg(
                nix::unistd::Pid::from_raw(child.id() as i32),
                nix::sys::signal::Signal::SIGKILL,
            );
            status = child.wait().ok();
        }
    }
    let mut text = String::from_utf8_lossy(&out).into_owned();
    let mut events = Vec::new();
    for line in String::from_utf8_lossy(&trace_out).lines() {
        match serde_json::from_str::<TraceEvent>(line) {
            Ok(event) => events.push(event),
            _ => {
                text.push_str(line);
                text.push('\n');
            }
        }
    }
    let code = match status {
        _ if ran_out => {
            text.push_str(&if still_open && !killed_running {
                format!(
                    "\n(stopped after {} s: the step ended, but something it started kept its output open)\n",
                    limit.as_secs()
                )
            } else {
                format!(
                    "\n(stopped: the step ran longer than {} s)\n",
                    limit.as_secs()
                )
            });
            -1
        }
        Some(s) => s.code().unwrap_or(-1),
        None => -1,
    };
    Ok(Output {
        code,
        text,
        trace: events,
    })
}

/// What is wrong with `out` given `expect`, if anything.
pub fn judge(expect: &Expect, out: &Output) -> Vec<String> {
    let mut wrong = Vec::new();
    let code = expect.code.unwrap_or(0);
    if out.code != code {
        wrong.push(format!("exit code {} (expected {code})", out.code));
    }
    for c in &expect.contains {
        if !out.text.contains(c.as_str()) {
            wrong.push(format!("{c:?} does not appear"));
        }
    }
    for c in &expect.lacks {
        if out.text.contains(c.as_str()) {
            wrong.push(format!("{c:?} appears but should not"));
        }
    }
    for re in &expect.matches {
        match regex::Regex::new(re) {
            Ok(r) if r.is_match(&out.text) => {}
            Ok(_) => wrong.push(format!("nothing matches /{re}/")),
            Err(e) => wrong.push(format!("bad regex {re:?}: {e}")),
        }
    }
    wrong
}

/// The line above a step's trace highlights: where they come from.
fn highlights_title(step: &Step) -> String {
    Catalog::get().lesson(
        "highlights",
        &[
            ("file", step.trace_file().unwrap_or("trace")),
            ("calls", &step.trace.join(", ")),
        ],
    )
}

/// The trace events a step asked to see: `name` or `name substring-of-args`.
fn highlights(step: &Step, events: &[TraceEvent]) -> Vec<String> {
    let mut out = Vec::new();
    let mut explained = std::collections::HashSet::new();
    for e in events
        .iter()
        .filter(|e| e.kind.as_deref() == Some("syscall"))
    {
        let name = e.syscall.as_deref().unwrap_or("");
        let args = e.args.as_deref().unwrap_or("");
        let wanted = step.trace.iter().any(|w| {
            let (n, sub) = w.split_once(' ').unwrap_or((w.as_str(), ""));
            n == name && args.contains(sub)
        });
        if !wanted {
            continue;
        }
        let who = if e.process.as_deref() == Some("container") {
            "[container] "
        } else {
            ""
        };
        out.push(format!("{who}{name}({args}) = {}", e.result.unwrap_or(0)));
        if let Some(text) = &e.explain {
            if explained.insert(text.clone()) {
                out.push(format!("   ↳ {text}"));
            }
        }
    }
    out
}

/// Cut output to `lines` lines, saying how many were left out.
fn shown(text: &str, lines: Option<usize>) -> String {
    let all: Vec<&str> = text.lines().collect();
    match lines {
        Some(n) if all.len() > n => {
            format!("{}\n… ({} more lines)", all[..n].join("\n"), all.len() - n)
        }
        _ => all.join("\n"),
    }
}

/// A command and what it printed, as a terminal session shows them: `$ ` before the
/// command's first line and the shell's continuation prompt `> ` before each further line (so
/// a multi-line command never looks like output), then the output, then `(exit code N)` when
/// the command did not exit 0 (a terminal shows nothing, but the prose often points at it).
/// Every line ends with a newline.
fn console(run: &str, output: &str, code: i32) -> String {
    command_lines(run) + &printed(output, code)
}

/// The command part of [`console`].
fn command_lines(run: &str) -> String {
    let mut s = String::new();
    for (i, line) in run.trim().lines().enumerate() {
        s.push_str(if i == 0 { "$ " } else { "> " });
        s.push_str(line);
        s.push('\n');
    }
    s
}

/// The output part of [`console`].
fn printed(output: &str, code: i32) -> String {
    let mut s = String::new();
    if !output.is_empty() {
        s.push_str(output);
        s.push('\n');
    }
    // A step stopped at its time limit (-1) says so in its output already.
    if code > 0 {
        s.push_str(&format!("(exit code {code})\n"));
    }
    s
}

/// The outcome of a lesson run.
pub struct Outcome {
    /// Steps that ran.
    pub steps: usize,
    /// Steps whose expectations failed, with why.
    pub failed: Vec<(usize, Vec<String>)>,
}

/// How to go through a lesson.
#[derive(Debug, Clone, Copy)]
pub struct Pace {
    /// Show each step (its prose and its command), then wait for Enter before running it
    /// (`q` stops).
    pub pause: bool,
    /// The first step to show, counted from 1. The steps before it run first, quietly (only
    /// a failure is reported), so the lesson's state is what they leave.
    pub from: usize,
}

impl Default for Pace {
    fn default() -> Pace {
        Pace {
            pause: false,
            from: 1,
        }
    }
}

/// Run `lesson` (number `n`) in `scratch`, writing it to `out` in `format`, at `pace`.
pub fn run(
    n: usize,
    lesson: &Lesson,
    scratch: &Scratch,
    format: Format,
    pace: Pace,
    out: &mut dyn Write,
) -> Result<Outcome> {
    let total = lesson.steps.len();
    if pace.from == 0 || pace.from > total {
        return Err(super::LessonError::NoSuchStep {
            lesson: n,
            step: pace.from,
            steps: total,
        }
        .into());
    }
    let mut outcome = Outcome {
        steps: 0,
        failed: Vec::new(),
    };
    for image in &lesson.images {
        let pulled = scratch.sh(&format!("dockling pull -q {image}"), false)?;
        if pulled.code != 0 {
            return Err(super::LessonError::Preload {
                lesson: n,
                image: image.clone(),
                code: pulled.code,
                output: scratch.abbreviate(&pulled.text),
            }
            .into());
        }
    }
    let ready = if lesson.images.is_empty() {
        String::new()
    } else {
        Catalog::get().lesson("preloaded", &[("images", &lesson.images.join(", "))])
    };
    let skipped = if pace.from > 1 {
        let last = (pace.from - 1).to_string();
        Catalog::get().lesson("skipped", &[("last", &last)]) + "\n\n"
    } else {
        String::new()
    };
    let (title, goal, intro) = (
        lesson.title.tr(),
        lesson.goal.tr(),
        lesson.intro.tr().trim(),
    );
    match format {
        Format::Text => {
            let cat = Catalog::get();
            let _ = writeln!(
                out,
                "{}\n{}\n",
                cat.lesson("header", &[("n", &n.to_string()), ("title", title)]),
                cat.lesson("goal", &[("goal", goal)])
            );
            if !ready.is_empty() {
                let _ = writeln!(out, "({ready})\n");
            }
            if pace.from == 1 && !intro.is_empty() {
                let _ = writeln!(out, "{intro}\n");
            }
        }
        Format::Markdown => {
            let _ = writeln!(
                out,
                "*{}*\n",
                Catalog::get().lesson("goal", &[("goal", goal)])
            );
            if !ready.is_empty() {
                let _ = writeln!(out, "*{ready}*\n");
            }
            if pace.from == 1 && !intro.is_empty() {
                let _ = writeln!(out, "{intro}\n");
            }
        }
        Format::Progress => {}
    }
    // Long strings come cut (after 200 bytes) in the trace; once the scratch paths are
    // abbreviated, they are cut again at a fixed length so the text does not depend on where
    // the scratch directory was.
    let cut = regex::Regex::new(r#""([^"]{111})[^"]*"\.\.\."#).expect("regex");
    for (i, step) in lesson.steps.iter().enumerate() {
        // The command shown is the command run: a step that shows trace highlights asks for
        // its trace itself (`--trace-file FILE`), and they are read from that file.
        let line = step.run.clone();
        if i + 1 < pace.from {
            // Quietly: only what it leaves behind matters, and whether it worked.
            let result = scratch.sh(&line, false)?;
            let wrong = judge(&step.expect, &result);
            outcome.steps += 1;
            if !wrong.is_empty() {
                outcome.failed.push((i + 1, wrong));
            }
            continue;
        }
        if i + 1 == pace.from && format != Format::Progress {
            let _ = write!(out, "{skipped}");
        }
        // With --step, what the step does is shown before it runs: its prose and its
        // command, then the prompt.
        let shown_first = pace.pause && format == Format::Text;
        if shown_first {
            let say = step.say.tr().trim();
            if !say.is_empty() {
                let _ = writeln!(out, "▸ {say}");
            }
            let _ = write!(out, "{}", command_lines(&step.run));
            let _ = out.flush();
        }
        if pace.pause && !wait_for_enter(n, i + 1, step, shown_first)? {
            break;
        }
        let mut result = scratch.sh(&line, false)?;
        if let Some(file) = step.trace_file() {
            result.trace = scratch.trace_events(file);
        }
        // The scratch paths change every run; show them as the variables that hold them.
        result.text = scratch.abbreviate(&result.text);
        let wrong = judge(&step.expect, &result);
        let hl: Vec<String> = highlights(step, &result.trace)
            .iter()
            .map(|h| {
                cut.replace_all(&scratch.abbreviate(h), "\"$1\"...")
                    .into_owned()
            })
            .collect();
        if !step.trace.is_empty() && hl.is_empty() {
            outcome.failed.push((
                i + 1,
                vec![format!("the trace shows none of {:?}", step.trace)],
            ));
        }
        outcome.steps += 1;
        match format {
            Format::Text => {
                if !shown_first {
                    let say = step.say.tr().trim();
                    if !say.is_empty() {
                        let _ = writeln!(out, "▸ {say}");
                    }
                    let _ = write!(out, "{}", command_lines(&step.run));
                }
                let _ = write!(
                    out,
                    "{}",
                    printed(&shown(&result.text, step.lines), result.code)
                );
                if !hl.is_empty() {
                    let _ = writeln!(out, "  {}", highlights_title(step));
                }
                for h in &hl {
                    let _ = writeln!(out, "  {h}");
                }
                match wrong.is_empty() {
                    true => {
                        let _ = writeln!(out, "✓\n");
                    }
                    false => {
                        let _ = writeln!(out, "✗ {}\n", wrong.join("; "));
                    }
                }
            }
            Format::Markdown => {
                let say = step.say.tr().trim();
                if !say.is_empty() {
                    let _ = writeln!(out, "{say}\n");
                }
                let _ = writeln!(
                    out,
                    "```console\n{}```\n",
                    console(&step.run, &shown(&result.text, step.lines), result.code)
                );
                if !hl.is_empty() {
                    let _ = writeln!(
                        out,
                        "```text\n{}\n{}\n```\n",
                        highlights_title(step),
                        hl.join("\n")
                    );
                }
            }
            Format::Progress => {
                let mark = if wrong.is_empty() { "ok  " } else { "FAIL" };
                let _ = writeln!(
                    out,
                    "  {mark} lesson {n} step {}/{total}: {}",
                    i + 1,
                    first_line(&step.run)
                );
                if !wrong.is_empty() {
                    let _ = writeln!(out, "       {}", wrong.join("; "));
                    let _ = writeln!(
                        out,
                        "       output:\n{}",
                        indent(&shown(&result.text, Some(20)))
                    );
                }
            }
        }
        if !wrong.is_empty() {
            outcome.failed.push((i + 1, wrong));
        }
    }
    let outro = lesson.outro.tr().trim();
    if format != Format::Progress && !outro.is_empty() {
        let _ = writeln!(out, "{outro}\n");
    }
    for c in &lesson.cleanup {
        let _ = scratch.sh(c, false);
    }
    Ok(outcome)
}

fn first_line(s: &str) -> String {
    let l = s.trim().lines().next().unwrap_or("");
    if l.chars().count() > 70 {
        l.chars().take(69).collect::<String>() + "…"
    } else {
        l.to_string()
    }
}

fn indent(s: &str) -> String {
    s.lines()
        .map(|l| format!("         {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Wait for Enter (true) or `q` (false), on the terminal if there is one. The prompt names
/// the step, and shows its prose and command unless `shown` (they were printed already).
fn wait_for_enter(n: usize, i: usize, step: &Step, shown: bool) -> Result<bool> {
    let cat = Catalog::get();
    let mut prompt = cat.lesson("paused", &[("n", &n.to_string()), ("step", &i.to_string())]);
    if !shown {
        prompt.push_str(":\n");
        let say = step.say.tr().trim();
        if !say.is_empty() {
            prompt.push_str(&format!("▸ {say}\n"));
        }
        prompt.push_str(&command_lines(&step.run));
    } else {
        prompt.push('\n');
    }
    prompt.push_str(&format!("   {} > ", cat.lesson("paused.keys", &[])));
    let mut line = String::new();
    match std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/tty")
    {
        Ok(mut tty) => {
            let _ = tty.write_all(prompt.as_bytes());
            let _ = std::io::BufReader::new(tty).read_line(&mut line);
        }
        Err(_) => {
            eprint!("{prompt}");
            let _ = std::io::stdin().lock().read_line(&mut line);
        }
    }
    Ok(!line.trim().eq_ignore_ascii_case("q"))
}

/// The lab registry's address (`127.0.0.1:PORT`) from its mirror URL.
pub fn lab_addr(mirror: &str) -> String {
    mirror
        .trim_end_matches('/')
        .rsplit("://")
        .next()
        .unwrap_or(mirror)
        .to_string()
}

/// Run a lesson's checks against the student's own store; returns whether all passed.
/// `lab` is the lab registry's address, given to the checks as `$LAB` (as to a lesson's
/// steps). A check that fails says what was expected in words and, briefly, what it found;
/// it never shows its command, its raw expectation or its solution.
/// As root each check runs in a cgroup of its own under `cgroup_parent` (as a lesson's
/// steps do); otherwise its time limit stops its process group only.
pub fn check(
    checks: &[Check],
    root: &Path,
    config: &Path,
    cgroup_parent: &str,
    lab: Option<&str>,
    out: &mut dyn Write,
) -> Result<bool> {
    let mut all = true;
    let exe = std::env::current_exe().map_err(Error::io("find", "/proc/self/exe"))?;
    let bin = exe.parent().unwrap_or(Path::new("/"));
    for (i, c) in checks.iter().enumerate() {
        let mut cmd = shell(&c.run, bin, root, config);
        match lab {
            Some(lab) => cmd.env("LAB", lab),
            None => cmd.env_remove("LAB"),
        };
        let group = nix::unistd::geteuid().is_root().then(|| {
            StepGroup::new(
                cgroup_parent,
                &format!("lesson-check-{}-{}", std::process::id(), i + 1),
            )
        });
        let group = group.flatten();
        let result = run_bounded(cmd, false, CHECK_LIMIT, group.as_ref());
        if let Some(g) = group {
            if let Some(left) = g.release() {
                let _ = left.destroy(&Sys::quiet());
            }
        }
        let result = result?;
        let cat = Catalog::get();
        let name = c.name.tr();
        if judge(&c.expect, &result).is_empty() {
            let _ = writeln!(out, "{}", cat.lesson("check.ok", &[("name", name)]));
        } else {
            all = false;
            let _ = writeln!(out, "{}", cat.lesson("check.not_yet", &[("name", name)]));
            let expected = c.expected.tr().trim();
            let _ = writeln!(
                out,
                "   {}",
                cat.lesson("check.expected", &[("expected", expected)])
            );
            if let Some(found) = found(&result.text) {
                let _ = writeln!(
                    out,
                    "   {}",
                    cat.lesson("check.found", &[("found", &found)])
                );
            }
            let hint = c.hint.tr().trim();
            if !hint.is_empty() {
                let _ = writeln!(out, "   {}", cat.lesson("check.hint", &[("hint", hint)]));
            }
        }
    }
    Ok(all)
}

/// A check's time limit: checks look, they do not build or pull.
const CHECK_LIMIT: Duration = Duration::from_secs(30);

/// What a failing check found, when it is short enough to help: the last non-empty line of
/// its output (an error such as "No such container: quitter", or the value it read).
fn found(text: &str) -> Option<String> {
    let line = text.lines().rev().map(str::trim).find(|l| !l.is_empty())?;
    (line.chars().count() <= 120).then(|| line.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn output(code: i32, text: &str) -> Output {
        Output {
            code,
            text: text.into(),
            trace: Vec::new(),
        }
    }

    #[test]
    fn expectations_are_judged() {
        let e = Expect {
            code: None,
            contains: vec!["hello".into()],
            lacks: vec!["error".into()],
            matches: vec![r"pid \d+".into()],
        };
        assert!(judge(&e, &output(0, "hello, pid 1")).is_empty());
        let wrong = judge(&e, &output(1, "error"));
        assert_eq!(wrong.len(), 4, "{wrong:?}");
    }

    #[test]
    fn transcripts_mark_continuation_lines_and_show_failing_exit_codes() {
        assert_eq!(
            console("a &\nb\nwait\n", "out", 0),
            "$ a &\n> b\n> wait\nout\n"
        );
        assert_eq!(console("false", "", 1), "$ false\n(exit code 1)\n");
        assert_eq!(
            console("sh -c 'exit 3'", "", 3),
            "$ sh -c 'exit 3'\n(exit code 3)\n"
        );
        assert_eq!(console("true", "", 0), "$ true\n");
    }

    /// Whether `pid` is gone (or a zombie waiting for its reaper: it runs no more).
    fn gone(pid: i32) -> bool {
        match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
            Err(_) => true,
            Ok(stat) => stat
                .rsplit_once(") ")
                .is_some_and(|(_, rest)| rest.starts_with('Z')),
        }
    }

    #[test]
    fn a_step_ends_at_its_deadline_with_everything_it_started_even_a_new_session() {
        assert!(
            nix::unistd::geteuid().is_root(),
            "this test needs root: it puts a step in a cgroup of its own"
        );
        let dir = std::env::temp_dir().join(format!("dockling-step-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let pidfile = dir.join("pid");
        let parent = format!("dockling-step-test-{}", std::process::id());
        let group = StepGroup::new(&parent, "step").expect("a cgroup for the step");
        // The grandchild leaves the step's process group (a session of its own) and keeps the
        // output pipe open; the step's shell itself ends at once.
        let mut cmd = Command::new("/bin/sh");
        cmd.arg("-c").arg(format!(
            "setsid sh -c 'echo $$ > {}; exec sleep 1000' & echo started",
            pidfile.display()
        ));
        let started = Instant::now();
        let out = run_bounded(cmd, false, Duration::from_secs(2), Some(&group)).unwrap();
        let took = started.elapsed();
        let pid: i32 = std::fs::read_to_string(&pidfile)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        // The group is empty now: the grandchild was killed with it.
        let left = group.group.procs(&Sys::quiet());
        let released = group.release();
        let gone_within = {
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                if gone(pid) {
                    break true;
                }
                if Instant::now() > deadline {
                    let _ = nix::sys::signal::kill(
                        nix::unistd::Pid::from_raw(pid),
                        nix::sys::signal::Signal::SIGKILL,
                    );
                    break false;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        };
        let removed = released.is_none();
        if let Some(g) = released {
            let _ = g.destroy(&Sys::quiet());
        }
        let _ = Cgroup::new("", &parent).and_then(|g| g.destroy(&Sys::quiet()));
        let _ = std::fs::remove_dir_all(&dir);
        assert!(gone_within, "the grandchild {pid} outlived its step");
        assert!(left.is_empty(), "left in the step's group: {left:?}");
        assert!(removed, "the step's group was not removed");
        assert!(
            took >= Duration::from_secs(2) && took < Duration::from_secs(8),
            "the step took {took:?} (limit 2 s)"
        );
        assert_eq!(out.code, -1);
        assert!(out.text.starts_with("started\n"), "{}", out.text);
        assert!(
            out.text
                .contains("the step ended, but something it started kept its output open"),
            "{}",
            out.text
        );
    }

    #[test]
    fn a_step_that_runs_too_long_is_stopped_and_one_that_ends_is_not() {
        let mut cmd = Command::new("/bin/sh");
        cmd.arg("-c").arg("echo before; exec sleep 1000");
        let out = run_bounded(cmd, false, Duration::from_secs(1), None).unwrap();
        assert_eq!(out.code, -1);
        assert!(
            out.text
                .contains("before\n\n(stopped: the step ran longer than 1 s)"),
            "{}",
            out.text
        );
        let mut cmd = Command::new("/bin/sh");
        cmd.arg("-c").arg("echo out; echo err >&2; exit 3");
        let out = run_bounded(cmd, false, Duration::from_secs(60), None).unwrap();
        assert_eq!(out.code, 3);
        assert_eq!(out.text, "out\nerr\n");
    }

    #[test]
    fn long_output_is_cut_with_a_count() {
        assert_eq!(shown("a\nb\nc\n", Some(2)), "a\nb\n… (1 more lines)");
        assert_eq!(shown("a\nb\n", Some(5)), "a\nb");
    }
}
