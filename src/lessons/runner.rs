//! Running a lesson: each step's real command in a scratch store, its real output, its check.
//!
//! A lesson never touches the student's own containers and images: it gets a fresh store
//! root, config file (pointing at the lab registry as the Docker Hub mirror) and `HOME` (so a
//! `login` in a lesson stores nothing of the student's), all removed at the end together with
//! whatever the lesson's containers left. Commands run through `sh -c` with `dockling` on
//! `PATH` meaning this very binary; stdout and stderr are read together, as a terminal shows
//! them, with a time limit per step.

use std::io::{BufRead, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::{Check, Expect, Lesson, Step};
use crate::error::{Error, Result};

/// How long one step may take.
const STEP_LIMIT: Duration = Duration::from_secs(180);

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
        let dir = std::env::temp_dir().join(format!(
            "dockling-lesson-{}",
            &crate::container::new_id()[..12]
        ));
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
        let lab = mirror
            .trim_end_matches('/')
            .rsplit("://")
            .next()
            .unwrap_or(mirror)
            .to_string();
        Ok(Scratch { dir, lab })
    }

    /// `text` with the scratch store and home shown as `$DOCKLING_ROOT` and `$HOME`.
    pub fn abbreviate(&self, text: &str) -> String {
        text.replace(&self.root().display().to_string(), "$DOCKLING_ROOT")
            .replace(&self.dir.join("home").display().to_string(), "$HOME")
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
        run_bounded(cmd, trace)
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
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Run `cmd` in its own process group, stdout and stderr into one pipe (or stderr apart as
/// trace events when `trace`), killing the group if it outlives the step limit.
fn run_bounded(mut cmd: Command, trace: bool) -> Result<Output> {
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
    let mut child = cmd
        .spawn()
        .map_err(|source| super::LessonError::StartShell { source })?;
    drop(cmd);
    let out_thread = std::thread::spawn(move || {
        let mut text = Vec::new();
        let _ = { reader }.read_to_end(&mut text);
        text
    });
    let trace_thread = std::thread::spawn(move || {
        let mut lines = Vec::new();
        for line in std::io::BufReader::new(trace_reader)
            .lines()
            .map_while(|l| l.ok())
        {
            lines.push(line);
        }
        lines
    });
    let deadline = Instant::now() + STEP_LIMIT;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) if Instant::now() > deadline => {
                // The group this child leads.
                let _ = nix::sys::signal::killpg(
                    nix::unistd::Pid::from_raw(child.id() as i32),
                    nix::sys::signal::Signal::SIGKILL,
                );
                let _ = child.wait();
                break None;
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(10)),
            Err(source) => return Err(super::LessonError::WaitStep { source }.into()),
        }
    };
    let text = String::from_utf8_lossy(&out_thread.join().unwrap_or_default()).into_owned();
    let mut text = text;
    let mut events = Vec::new();
    for line in trace_thread.join().unwrap_or_default() {
        match serde_json::from_str::<TraceEvent>(&line) {
            Ok(event) => events.push(event),
            _ => {
                text.push_str(&line);
                text.push('\n');
            }
        }
    }
    let code = match status {
        Some(s) => s.code().unwrap_or(-1),
        None => {
            text.push_str(&format!(
                "\n(stopped: the step ran longer than {} s)\n",
                STEP_LIMIT.as_secs()
            ));
            -1
        }
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

/// `dockling run …` with `--trace=json` added right after `run`.
fn traced(line: &str) -> String {
    let t = line.trim_start();
    format!(
        "dockling run --trace=json {}",
        t.strip_prefix("dockling run ").unwrap_or(t)
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
    let mut s = String::new();
    for (i, line) in run.trim().lines().enumerate() {
        s.push_str(if i == 0 { "$ " } else { "> " });
        s.push_str(line);
        s.push('\n');
    }
    if !output.is_empty() {
        s.push_str(output);
        s.push('\n');
    }
    if code != 0 {
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

/// Run `lesson` (number `n`) in `scratch`, writing it to `out` in `format`; with `pause`,
/// wait for Enter before each step (`q` stops).
pub fn run(
    n: usize,
    lesson: &Lesson,
    scratch: &Scratch,
    format: Format,
    pause: bool,
    out: &mut dyn Write,
) -> Result<Outcome> {
    let mut outcome = Outcome {
        steps: 0,
        failed: Vec::new(),
    };
    match format {
        Format::Text => {
            let _ = writeln!(
                out,
                "━━ Lesson {n}: {}\nGoal: {}\n",
                lesson.title, lesson.goal
            );
            if !lesson.intro.trim().is_empty() {
                let _ = writeln!(out, "{}\n", lesson.intro.trim());
            }
        }
        Format::Markdown => {
            let _ = writeln!(out, "*Goal: {}*\n", lesson.goal);
            if !lesson.intro.trim().is_empty() {
                let _ = writeln!(out, "{}\n", lesson.intro.trim());
            }
        }
        Format::Progress => {}
    }
    let total = lesson.steps.len();
    // Long strings come cut (after 200 bytes) in the trace; once the scratch paths are
    // abbreviated, they are cut again at a fixed length so the text does not depend on where
    // the scratch directory was.
    let cut = regex::Regex::new(r#""([^"]{111})[^"]*"\.\.\."#).expect("regex");
    for (i, step) in lesson.steps.iter().enumerate() {
        if pause && !wait_for_enter(n, i + 1, step)? {
            break;
        }
        let line = if step.trace.is_empty() {
            step.run.clone()
        } else {
            traced(&step.run)
        };
        let mut result = scratch.sh(&line, !step.trace.is_empty())?;
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
                if !step.say.trim().is_empty() {
                    let _ = writeln!(out, "▸ {}", step.say.trim());
                }
                let _ = write!(
                    out,
                    "{}",
                    console(&step.run, &shown(&result.text, step.lines), result.code)
                );
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
                if !step.say.trim().is_empty() {
                    let _ = writeln!(out, "{}\n", step.say.trim());
                }
                let _ = writeln!(
                    out,
                    "```console\n{}```\n",
                    console(&step.run, &shown(&result.text, step.lines), result.code)
                );
                if !hl.is_empty() {
                    let _ = writeln!(out, "```text\n{}\n```\n", hl.join("\n"));
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
    if format != Format::Progress && !lesson.outro.trim().is_empty() {
        let _ = writeln!(out, "{}\n", lesson.outro.trim());
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

/// Wait for Enter (true) or `q` (false), on the terminal if there is one.
fn wait_for_enter(n: usize, i: usize, step: &Step) -> Result<bool> {
    let prompt = format!(
        "⏸ lesson {n}, step {i}: {}\n   Enter: run it · q: stop > ",
        first_line(&step.run)
    );
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

/// Run a lesson's checks against the student's own store; returns whether all passed.
pub fn check(checks: &[Check], root: &Path, config: &Path, out: &mut dyn Write) -> Result<bool> {
    let mut all = true;
    let exe = std::env::current_exe().map_err(Error::io("find", "/proc/self/exe"))?;
    let bin = exe.parent().unwrap_or(Path::new("/"));
    for c in checks {
        let cmd = shell(&c.run, bin, root, config);
        let result = run_bounded(cmd, false)?;
        let wrong = judge(&c.expect, &result);
        if wrong.is_empty() {
            let _ = writeln!(out, "{}: ok", c.name);
        } else {
            all = false;
            let _ = writeln!(
                out,
                "{}: not yet ({}){}",
                c.name,
                wrong.join("; "),
                if c.hint.is_empty() {
                    String::new()
                } else {
                    format!("\n   hint: {}", c.hint)
                }
            );
        }
    }
    Ok(all)
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
    fn traced_steps_get_the_json_trace() {
        assert_eq!(
            traced("dockling run --rm busybox true"),
            "dockling run --trace=json --rm busybox true"
        );
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

    #[test]
    fn long_output_is_cut_with_a_count() {
        assert_eq!(shown("a\nb\nc\n", Some(2)), "a\nb\n… (1 more lines)");
        assert_eq!(shown("a\nb\n", Some(5)), "a\nb");
    }
}
