//! Lessons as data: `lessons/NN-topic.yaml`, embedded in the binary, run by [`runner`].
//!
//! A lesson is a title, a goal, prose, and steps. Each step says something, runs one real
//! command (`run:`, a shell line in which `dockling` is this very binary), and states what must
//! come out (`expect:`). A step may ask for trace highlights (`trace: [clone, pivot_root]`):
//! its `dockling run` is then traced and the named syscalls are shown with their reasons.
//! `cleanup:` lines run at the end whatever happened; `check:` lines judge a student's own
//! work (`dockling lesson check N`). Unknown keys are errors naming the file and line.
//!
//! The texts a student reads (title, goal, intro, outro, a step's `say`, a check's name,
//! expected and hint) are [`Text`]s: one string per language (`en:` and `ko:`), one set of
//! commands for all. The language shown is the trace catalog's (`--lang`, `DOCKLING_LANG`, the
//! locale), so a Korean run explains its calls in Korean too.

mod error;
pub mod runner;

pub use error::LessonError;

use serde::Deserialize;

use crate::error::{Error, Result};

/// The lessons that ship, in order: (file name, YAML).
pub const LESSONS: &[(&str, &str)] = &[
    (
        "01-hello-world.yaml",
        include_str!("../../lessons/01-hello-world.yaml"),
    ),
    (
        "02-images.yaml",
        include_str!("../../lessons/02-images.yaml"),
    ),
    (
        "03-containers.yaml",
        include_str!("../../lessons/03-containers.yaml"),
    ),
    (
        "04-namespaces.yaml",
        include_str!("../../lessons/04-namespaces.yaml"),
    ),
    (
        "05-layers.yaml",
        include_str!("../../lessons/05-layers.yaml"),
    ),
    (
        "06-registries.yaml",
        include_str!("../../lessons/06-registries.yaml"),
    ),
    (
        "07-security.yaml",
        include_str!("../../lessons/07-security.yaml"),
    ),
    (
        "08-detached.yaml",
        include_str!("../../lessons/08-detached.yaml"),
    ),
    ("09-exec.yaml", include_str!("../../lessons/09-exec.yaml")),
    (
        "10-stopping.yaml",
        include_str!("../../lessons/10-stopping.yaml"),
    ),
    (
        "11-addresses.yaml",
        include_str!("../../lessons/11-addresses.yaml"),
    ),
    ("12-ports.yaml", include_str!("../../lessons/12-ports.yaml")),
    (
        "13-user-networks.yaml",
        include_str!("../../lessons/13-user-networks.yaml"),
    ),
    (
        "14-copy-up.yaml",
        include_str!("../../lessons/14-copy-up.yaml"),
    ),
    (
        "15-commit.yaml",
        include_str!("../../lessons/15-commit.yaml"),
    ),
    ("16-disk.yaml", include_str!("../../lessons/16-disk.yaml")),
    (
        "17-dockerfile.yaml",
        include_str!("../../lessons/17-dockerfile.yaml"),
    ),
    (
        "18-limits.yaml",
        include_str!("../../lessons/18-limits.yaml"),
    ),
    (
        "19-volumes.yaml",
        include_str!("../../lessons/19-volumes.yaml"),
    ),
    (
        "20-runtimes.yaml",
        include_str!("../../lessons/20-runtimes.yaml"),
    ),
    ("21-erofs.yaml", include_str!("../../lessons/21-erofs.yaml")),
    (
        "22-containerd.yaml",
        include_str!("../../lessons/22-containerd.yaml"),
    ),
];

/// A text a student reads, in every language the course ships: `{en: ..., ko: ...}`. A plain
/// string is English alone (a lesson being written); the tests want every language.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Text(std::collections::BTreeMap<String, String>);

impl<'de> Deserialize<'de> for Text {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Text, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Form {
            English(String),
            ByLanguage(std::collections::BTreeMap<String, String>),
        }
        let map = match Form::deserialize(d)? {
            Form::English(s) => [("en".to_string(), s)].into(),
            Form::ByLanguage(map) => map,
        };
        if let Some(bad) = map
            .keys()
            .find(|k| crate::trace::catalog::language_code(k) != Some(k.as_str()))
        {
            return Err(serde::de::Error::custom(format!(
                "{bad:?} is not a language the course ships (the languages: {})",
                crate::trace::catalog::language_list()
            )));
        }
        if !map.contains_key("en") {
            return Err(serde::de::Error::custom(
                "a text needs its English (`en:`), the edition every other one follows",
            ));
        }
        Ok(Text(map))
    }
}

impl Text {
    /// The text in the language explanations are in ([`Catalog::language`]), or English where
    /// that language has none yet.
    ///
    /// [`Catalog::language`]: crate::trace::catalog::Catalog::language
    pub fn tr(&self) -> &str {
        self.get(crate::trace::catalog::Catalog::language())
    }

    /// The text in `lang`, or English where it has none.
    pub fn get(&self, lang: &str) -> &str {
        self.0
            .get(lang)
            .or_else(|| self.0.get("en"))
            .map(String::as_str)
            .unwrap_or("")
    }

    /// The languages it is written in.
    pub fn languages(&self) -> impl Iterator<Item = &str> {
        self.0.keys().map(String::as_str)
    }
}

impl From<&str> for Text {
    fn from(s: &str) -> Text {
        Text([("en".to_string(), s.to_string())].into())
    }
}

/// One lesson.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Lesson {
    /// The chapter title.
    pub title: Text,
    /// One line: what the student will be able to do.
    pub goal: Text,
    /// Prose before the first step (Markdown).
    #[serde(default)]
    pub intro: Text,
    /// Lab images the lesson starts with: pulled into its scratch store, unseen, before the
    /// first step, so the lesson does not open with a pull it is not about.
    #[serde(default)]
    pub images: Vec<String>,
    /// The steps, in order.
    pub steps: Vec<Step>,
    /// Shell lines run at the end, whatever happened (errors ignored).
    #[serde(default)]
    pub cleanup: Vec<String>,
    /// Checks of a student's own work, for `lesson check`.
    #[serde(default)]
    pub check: Vec<Check>,
    /// Prose after the last step (Markdown).
    #[serde(default)]
    pub outro: Text,
}

/// One step: prose, a command, what must come out.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Step {
    /// What to say before the command (Markdown).
    #[serde(default)]
    pub say: Text,
    /// The command, a shell line; `dockling` is the binary running the lesson.
    pub run: String,
    /// What must come out.
    #[serde(default)]
    pub expect: Expect,
    /// Syscalls (name, then a text of the arguments) to show from the trace the step's
    /// `dockling run --trace-file FILE` wrote: the command shown is the command run.
    #[serde(default)]
    pub trace: Vec<String>,
    /// Show at most this many lines of output (the check still sees all of it).
    #[serde(default)]
    pub lines: Option<usize>,
}

/// Expectations on a command's exit code and output (stdout and stderr together).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    /// The exit code (default 0).
    #[serde(default)]
    pub code: Option<i32>,
    /// Texts that must appear.
    #[serde(default)]
    pub contains: Vec<String>,
    /// Texts that must not appear.
    #[serde(default)]
    pub lacks: Vec<String>,
    /// Regular expressions that must match somewhere.
    #[serde(default)]
    pub matches: Vec<String>,
}

/// A check of the student's own work.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Check {
    /// What is checked, as the student reads it ("container web is running").
    pub name: Text,
    /// The command that finds out.
    pub run: String,
    /// What its output must be.
    #[serde(default)]
    pub expect: Expect,
    /// What a passing result is, in words, shown when the check fails ("a container named
    /// quitter that exited with code 3"): never the raw expectation.
    pub expected: Text,
    /// What to do when it fails.
    #[serde(default)]
    pub hint: Text,
    /// Shell lines that do the exercise (run in order, after the earlier checks' solutions).
    /// Hidden from students: `lesson check` never prints it and the book does not show it;
    /// tests/lesson_checks.rs runs it to prove the check passes after the work and not before.
    #[serde(default)]
    pub solution: String,
}

impl Step {
    /// The file the step's command writes its trace to (`--trace-file FILE`), if it does.
    pub fn trace_file(&self) -> Option<&str> {
        let mut words = self.run.split_whitespace();
        while let Some(w) = words.next() {
            if w == "--trace-file" {
                return words.next();
            }
            if let Some(file) = w.strip_prefix("--trace-file=") {
                return Some(file);
            }
        }
        None
    }
}

impl Lesson {
    /// Parse one lesson file; the error names the file (and serde_yaml's line).
    pub fn parse(file: &str, text: &str) -> Result<Lesson> {
        let lesson: Lesson = serde_yaml::from_str(text).map_err(|source| LessonError::Parse {
            file: file.to_string(),
            source,
        })?;
        for (i, s) in lesson.steps.iter().enumerate() {
            for re in &s.expect.matches {
                regex::Regex::new(re).map_err(|source| LessonError::BadRegex {
                    file: file.to_string(),
                    step: i + 1,
                    regex: re.clone(),
                    source,
                })?;
            }
            let writes_its_trace =
                s.run.trim_start().starts_with("dockling run ") && s.trace_file().is_some();
            if !s.trace.is_empty() && !writes_its_trace {
                return Err(LessonError::TraceWithoutRun {
                    file: file.to_string(),
                    step: i + 1,
                }
                .into());
            }
        }
        if let Some(bad) = lesson
            .images
            .iter()
            .find(|i| !crate::lab::images::NAMES.contains(&i.as_str()))
        {
            return Err(LessonError::NotALabImage {
                file: file.to_string(),
                image: bad.clone(),
            }
            .into());
        }
        for c in &lesson.check {
            for re in &c.expect.matches {
                regex::Regex::new(re).map_err(|source| LessonError::BadCheckRegex {
                    file: file.to_string(),
                    check: c.name.get("en").to_string(),
                    regex: re.clone(),
                    source,
                })?;
            }
            if c.solution.trim().is_empty() {
                return Err(LessonError::CheckWithoutSolution {
                    file: file.to_string(),
                    check: c.name.get("en").to_string(),
                }
                .into());
            }
        }
        if lesson.steps.is_empty() {
            return Err(LessonError::NoSteps {
                file: file.to_string(),
            }
            .into());
        }
        Ok(lesson)
    }
}

/// Every lesson, numbered from 1.
pub fn all() -> Result<Vec<(usize, &'static str, Lesson)>> {
    LESSONS
        .iter()
        .enumerate()
        .map(|(i, (file, text))| Ok((i + 1, *file, Lesson::parse(file, text)?)))
        .collect()
}

/// Lesson `n` (1-based), or a clear error listing what exists.
pub fn get(n: usize) -> Result<(&'static str, Lesson)> {
    let all = all()?;
    let count = all.len();
    all.into_iter()
        .find(|(i, ..)| *i == n)
        .map(|(_, f, l)| (f, l))
        .ok_or_else(|| {
            Error::NotFound(format!(
                "there is no lesson {n}: lessons are numbered 1 to {count} (`dockling lesson list`)"
            ))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_lesson_parses_and_every_file_ships() {
        let all = all().unwrap();
        assert_eq!(all.len(), LESSONS.len());
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("lessons");
        let mut files: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".yaml"))
            .collect();
        files.sort();
        let shipped: Vec<&str> = LESSONS.iter().map(|(f, _)| *f).collect();
        assert_eq!(
            files, shipped,
            "every lessons/*.yaml must be listed in LESSONS"
        );
    }

    #[test]
    fn unknown_keys_and_bad_lessons_are_clear_errors() {
        let e = Lesson::parse(
            "x.yaml",
            "title: t\ngoal: g\nsteps:\n  - run: ls\n    expct: {}\n",
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("x.yaml") && e.contains("expct") && e.contains("line"),
            "{e}"
        );
        let e = Lesson::parse("y.yaml", "title: t\ngoal: g\nsteps: []\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("no steps"), "{e}");
        let e = Lesson::parse(
            "z.yaml",
            "title: t\ngoal: g\nsteps:\n  - run: ls\n    trace: [clone]\n",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("dockling run"), "{e}");
        // A trace the command does not ask for would be one the student never sees.
        let e = Lesson::parse(
            "v.yaml",
            "title: t\ngoal: g\nsteps:\n  - run: dockling run --rm busybox true\n    trace: [clone]\n",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("--trace-file FILE"), "{e}");
        let ok = Lesson::parse(
            "u.yaml",
            "title: t\ngoal: g\nsteps:\n  - run: dockling run --rm --trace-file t.json busybox true\n    trace: [clone]\n",
        )
        .unwrap();
        assert_eq!(ok.steps[0].trace_file(), Some("t.json"));
        let e = Lesson::parse(
            "w.yaml",
            "title: t\ngoal: g\nimages: [busybox, nginx]\nsteps:\n  - run: ls\n",
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("w.yaml") && e.contains("\"nginx\" is not one of the lab's images"),
            "{e}"
        );
        assert!(get(99).unwrap_err().to_string().contains("numbered 1 to"));
    }

    #[test]
    fn a_check_needs_words_for_what_it_expects_and_a_solution() {
        let lesson = |check: &str| {
            Lesson::parse(
                "c.yaml",
                &format!("title: t\ngoal: g\nsteps:\n  - run: ls\ncheck:\n  - {check}\n"),
            )
        };
        let e = lesson("{name: n, run: 'true', solution: 'true'}")
            .unwrap_err()
            .to_string();
        assert!(e.contains("c.yaml") && e.contains("expected"), "{e}");
        let e = lesson("{name: n, run: 'true', expected: a thing}")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("c.yaml") && e.contains("check \"n\"") && e.contains("no `solution:`"),
            "{e}"
        );
        let e = lesson(
            "{name: n, run: 'true', expected: a thing, solution: 'true', expect: {matches: ['(']}}",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("bad regex"), "{e}");
        let ok = lesson("{name: n, run: 'true', expected: a thing, solution: 'true'}").unwrap();
        assert_eq!(ok.check[0].solution, "true");
    }
}
