//! What can go wrong with a lesson: a lesson file that does not parse or check, the lab
//! registry it needs not up, a step's shell that cannot be started or waited for.

/// A lesson could not be read or run.
#[derive(Debug, thiserror::Error)]
pub enum LessonError {
    /// The lesson's YAML does not parse (or has an unknown key).
    #[error("lesson {file}: {source}")]
    Parse {
        /// The lesson's file name.
        file: String,
        /// serde_yaml's error, naming the line.
        source: serde_yaml::Error,
    },
    /// A step's `expect: matches` is not a valid regular expression.
    #[error("lesson {file}, step {step}: bad regex {regex:?}: {source}")]
    BadRegex {
        /// The lesson's file name.
        file: String,
        /// The step, counted from 1.
        step: usize,
        /// The expression as written.
        regex: String,
        /// What is wrong with it.
        source: regex::Error,
    },
    /// A step asks for trace highlights but its command writes no trace file.
    #[error("lesson {file}, step {step}: `trace:` needs a step whose command starts with `dockling run` and writes its trace with `--trace-file FILE`")]
    TraceWithoutRun {
        /// The lesson's file name.
        file: String,
        /// The step, counted from 1.
        step: usize,
    },
    /// `images:` names an image the lab does not serve.
    #[error("lesson {file}: images: {image:?} is not one of the lab's images ({})", crate::lab::images::NAMES.join(", "))]
    NotALabImage {
        /// The lesson's file name.
        file: String,
        /// The name as written.
        image: String,
    },
    /// A lab image could not be pulled before the lesson's first step.
    #[error("lesson {lesson}: pulling {image} from the lab before the first step failed (exit code {code}):\n{output}")]
    Preload {
        /// The lesson's number.
        lesson: usize,
        /// The image.
        image: String,
        /// `pull`'s exit code.
        code: i32,
        /// What it printed.
        output: String,
    },
    /// A lesson without steps.
    #[error("lesson {file}: no steps")]
    NoSteps {
        /// The lesson's file name.
        file: String,
    },
    /// `--from` names a step the lesson does not have.
    #[error("lesson {lesson} has steps 1 to {steps}: --from {step} is not one of them")]
    NoSuchStep {
        /// The lesson's number.
        lesson: usize,
        /// The step asked for.
        step: usize,
        /// How many steps the lesson has.
        steps: usize,
    },
    /// The lab registry the lessons pull from is not up.
    #[error("the lessons pull their images from the lab registry, which is not up: run `dockling lab up` first (`dockling tour` starts it for you)")]
    LabNotUp,
    /// The shell that runs a step could not be started.
    #[error("cannot start /bin/sh: {source}")]
    StartShell {
        /// Why `spawn` failed.
        source: std::io::Error,
    },
    /// Waiting for a step's shell failed.
    #[error("waiting for a lesson step: {source}")]
    WaitStep {
        /// Why `waitpid` failed.
        source: std::io::Error,
    },
    /// A check's `expect: matches` is not a valid regular expression.
    #[error("lesson {file}, check {check:?}: bad regex {regex:?}: {source}")]
    BadCheckRegex {
        /// The lesson's file name.
        file: String,
        /// The check's name.
        check: String,
        /// The expression as written.
        regex: String,
        /// What is wrong with it.
        source: regex::Error,
    },
    /// A check without a `solution:`: nothing proves it can pass.
    #[error("lesson {file}, check {check:?}: no `solution:` (the shell lines that do the exercise, which the tests run to prove the check passes after the work and fails before)")]
    CheckWithoutSolution {
        /// The lesson's file name.
        file: String,
        /// The check's name.
        check: String,
    },
}
