//! The Dockerfile, read as BuildKit's frontend reads it (moby `buildkit/frontend/dockerfile/
//! parser` and `shell/lex.go`), in two passes:
//!
//! - [`parse`]: the text becomes instructions, each with its line number: parser directives
//!   at the very top (`# escape=` and `# syntax=`, read until the first line that is not one),
//!   comments dropped (also between continued lines), lines joined where the escape character
//!   (`\` or `` ` ``) ends them, the instruction's `--flags` split off, its arguments kept as
//!   a JSON list when they are one (`["sh", "-c"]`) or as shell text, the heredocs of RUN
//!   (`<<EOF` … `EOF`, BuildKit's 1.4 syntax) with it. `SHELL`, `HEALTHCHECK`, `ONBUILD` and
//!   `RUN --mount` are checked here, so their errors name their line. The `ARG`s before the
//!   first `FROM` are the file's own; every `FROM` starts a stage. Nothing is expanded yet.
//! - [`expand`]/[`words`]: the build substitutes `$VAR`, `${VAR}`, `${VAR:-word}`,
//!   `${VAR-word}`, `${VAR:+word}`, `${VAR+word}` (quotes and escapes as a POSIX shell reads
//!   them) where Docker does — in ADD, COPY, ENV, EXPOSE, FROM (build arguments only), LABEL,
//!   STOPSIGNAL, USER, VOLUME, WORKDIR — and never in RUN, CMD or ENTRYPOINT, whose shell does.
//!
//! Errors name the file and line: `Dockerfile:7: unknown instruction: RUNN (did you mean RUN?)`.

use std::collections::HashMap;

/// The instructions dockling builds.
pub const INSTRUCTIONS: &[&str] = &[
    "FROM",
    "RUN",
    "COPY",
    "ADD",
    "ENV",
    "ARG",
    "WORKDIR",
    "USER",
    "EXPOSE",
    "LABEL",
    "CMD",
    "ENTRYPOINT",
    "VOLUME",
    "STOPSIGNAL",
    "SHELL",
    "HEALTHCHECK",
    "ONBUILD",
    "MAINTAINER",
];

/// A Dockerfile syntax error at a line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{line}: {msg}")]
pub struct SyntaxError {
    /// The Dockerfile's name as given (`-f`), or `Dockerfile`.
    pub file: String,
    /// The line the instruction starts at (1-based).
    pub line: usize,
    /// What is wrong, and what to do.
    pub msg: String,
}

/// An instruction's arguments: a JSON list (exec form) or text (shell form).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Args {
    /// `["a", "b"]`.
    Json(Vec<String>),
    /// Everything after the instruction and its flags, continuation lines joined.
    Text(String),
}

/// One instruction as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instruction {
    /// Its first line.
    pub line: usize,
    /// The instruction, upper case (`RUN`).
    pub name: String,
    /// Its `--name=value` flags (`--from=build`), in order.
    pub flags: Vec<(String, String)>,
    /// Its arguments.
    pub args: Args,
    /// The instruction as written, continuations joined (for messages and the progress).
    pub text: String,
    /// Its heredocs (`<<EOF` … `EOF`), in the order the line opens them.
    pub heredocs: Vec<Heredoc>,
}

/// A heredoc of BuildKit's Dockerfile syntax 1.4: `<<EOF` (or `<<-EOF`, whose content and
/// terminator lose their leading tabs; `<<"EOF"` marks it not to be expanded).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Heredoc {
    /// The terminator word, quotes removed.
    pub name: String,
    /// `<<-`: leading tabs stripped.
    pub chomp: bool,
    /// No quote in the word: `$VAR` would be expanded (for COPY; RUN ignores it, as BuildKit).
    pub expand: bool,
    /// The lines between the instruction and the terminator, each with its newline.
    pub content: String,
}

impl Heredoc {
    /// The content as the command sees it: with `<<-`, each line's leading tabs removed.
    pub fn data(&self) -> String {
        if !self.chomp {
            return self.content.clone();
        }
        self.content
            .split_inclusive('\n')
            .map(|l| l.trim_start_matches('\t'))
            .collect()
    }
}

/// The heredoc a single word opens (`<<EOF`, `<<-EOF`, `<<'EOF'`, `2<<EOF`), as BuildKit's
/// `^(\d*)<<(-?)\s*([^<]*)$`.
pub fn heredoc_word(word: &str) -> Option<Heredoc> {
    let w = word.trim_start_matches(|c: char| c.is_ascii_digit());
    let w = w.strip_prefix("<<")?;
    let (chomp, w) = match w.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, w),
    };
    let rest = w.trim_start();
    if rest.is_empty() || rest.contains('<') {
        return None;
    }
    let name: String = rest.chars().filter(|c| *c != '"' && *c != '\'').collect();
    if name.is_empty() || name.contains(char::is_whitespace) {
        return None;
    }
    Some(Heredoc {
        expand: name.len() == rest.len(),
        name,
        chomp,
        content: String::new(),
    })
}

/// The heredocs a logical line opens, when its instruction may have them (RUN, COPY, ADD,
/// also as an ONBUILD trigger) in shell form.
fn heredocs_of(text: &str, escape: char) -> Vec<Heredoc> {
    let mut t = text.trim_start();
    let first = |t: &str| {
        let end = t.find(char::is_whitespace).unwrap_or(t.len());
        (t[..end].to_ascii_uppercase(), end)
    };
    let (mut name, mut end) = first(t);
    if name == "ONBUILD" {
        t = t[end..].trim_start();
        (name, end) = first(t);
    }
    if !matches!(name.as_str(), "RUN" | "COPY" | "ADD") || !t.contains("<<") {
        return Vec::new();
    }
    let (_, rest) = split_flags(&t[end..]);
    if rest.trim_start().starts_with('[')
        && serde_json::from_str::<Vec<String>>(rest.trim()).is_ok()
    {
        return Vec::new();
    }
    raw_words(rest, escape)
        .iter()
        .filter_map(|w| heredoc_word(w))
        .collect()
}

/// A `FROM` and what follows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stage {
    /// The `FROM` line.
    pub line: usize,
    /// The base, not expanded (`alpine:${V}`).
    pub base: String,
    /// `AS name`, lower case.
    pub name: Option<String>,
    /// The instructions after the `FROM`.
    pub instructions: Vec<Instruction>,
}

/// A parsed Dockerfile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dockerfile {
    /// The escape character (`\` unless `# escape=`` ` ``).
    pub escape: char,
    /// The `ARG` instructions before the first `FROM`.
    pub meta_args: Vec<Instruction>,
    /// The stages, in order.
    pub stages: Vec<Stage>,
}

/// Levenshtein distance, for "did you mean".
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur.push(sub.min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

/// Read the parser directives at the top: `# escape=X` (and `# syntax=`, ignored).
fn directives(lines: &[&str], file: &str) -> Result<(char, usize), SyntaxError> {
    let mut escape = '\\';
    let mut seen = Vec::new();
    for (i, l) in lines.iter().enumerate() {
        let Some(rest) = l.trim().strip_prefix('#') else {
            return Ok((escape, i));
        };
        let Some((k, v)) = rest.split_once('=') else {
            return Ok((escape, i));
        };
        let k = k.trim().to_ascii_lowercase();
        if k.is_empty() || k.contains(char::is_whitespace) {
            return Ok((escape, i));
        }
        if seen.contains(&k) {
            return Err(SyntaxError {
                file: file.into(),
                line: i + 1,
                msg: format!("only one {k} parser directive can be used"),
            });
        }
        if k == "escape" {
            escape = match v.trim() {
                "\\" => '\\',
                "`" => '`',
                other => {
                    return Err(SyntaxError {
                        file: file.into(),
                        line: i + 1,
                        msg: format!("invalid escape token '{other}' does not match ` or \\"),
                    })
                }
            };
        } else if k != "syntax" && k != "check" {
            return Ok((escape, i));
        }
        seen.push(k);
    }
    Ok((escape, lines.len()))
}

/// Split `--flag=value` words off the front of `rest`.
fn split_flags(mut rest: &str) -> (Vec<(String, String)>, &str) {
    let mut flags = Vec::new();
    loop {
        let t = rest.trim_start();
        let Some(f) = t.strip_prefix("--") else {
            return (flags, t);
        };
        let end = f.find(char::is_whitespace).unwrap_or(f.len());
        let word = &f[..end];
        let (k, v) = word.split_once('=').unwrap_or((word, ""));
        flags.push((k.to_ascii_lowercase(), v.to_string()));
        rest = &f[end..];
    }
}

/// Parse a Dockerfile's text; `file` names it in errors.
pub fn parse(text: &str, file: &str) -> Result<Dockerfile, SyntaxError> {
    let lines: Vec<&str> = text.lines().collect();
    let (escape, start) = directives(&lines, file)?;
    let err = |line: usize, msg: String| SyntaxError {
        file: file.into(),
        line,
        msg,
    };
    // Join continuations into logical lines, each with its first line number; a line of
    // RUN, COPY or ADD (also after ONBUILD) that opens heredocs takes the raw lines after it
    // up to each terminator as their content.
    let mut logical: Vec<(usize, String, Vec<Heredoc>)> = Vec::new();
    let mut cur: Option<(usize, String)> = None;
    let mut i = start;
    while i < lines.len() {
        let raw = lines[i];
        i += 1;
        let trimmed = raw.trim_start();
        if trimmed.starts_with('#') {
            continue; // a comment, also between continued lines
        }
        if cur.is_none() && trimmed.trim().is_empty() {
            continue;
        }
        let body = raw.trim_end();
        let (piece, more) = match body.strip_suffix(escape) {
            // `\\` at the end is an escaped escape in Docker's reading only inside words;
            // a trailing escape always continues the line, as BuildKit's regex does.
            Some(p) => (p, true),
            None => (body, false),
        };
        let entry = cur.get_or_insert_with(|| (i, String::new()));
        entry.1.push_str(if entry.1.is_empty() {
            piece.trim_start()
        } else {
            piece
        });
        if !more {
            let (first, text) = cur.take().expect("just set");
            let mut docs = heredocs_of(&text, escape);
            for doc in &mut docs {
                let mut done = false;
                while i < lines.len() {
                    let l = lines[i];
                    i += 1;
                    let end = l.trim_end_matches(['\r', '\n']);
                    let end = if doc.chomp {
                        end.trim_start_matches('\t')
                    } else {
                        end
                    };
                    if end == doc.name {
                        done = true;
                        break;
                    }
                    doc.content.push_str(l);
                    doc.content.push('\n');
                }
                if !done {
                    return Err(err(
                        first,
                        format!(
                            "unterminated heredoc: no line {:?} ends the <<{} that starts here",
                            doc.name, doc.name
                        ),
                    ));
                }
            }
            logical.push((first, text, docs));
        }
    }
    if let Some((first, text)) = cur.take() {
        logical.push((first, text, Vec::new()));
    }

    let mut df = Dockerfile {
        escape,
        meta_args: Vec::new(),
        stages: Vec::new(),
    };
    for (line, text, heredocs) in logical {
        if text.trim().is_empty() {
            continue;
        }
        let t = text.trim();
        let end = t.find(char::is_whitespace).unwrap_or(t.len());
        let name = t[..end].to_ascii_uppercase();
        let (flags, rest) = split_flags(&t[end..]);
        if !INSTRUCTIONS.contains(&name.as_str()) {
            let near = INSTRUCTIONS
                .iter()
                .map(|i| (distance(&name, i), *i))
                .min()
                .filter(|(d, _)| *d <= 2)
                .map(|(_, i)| format!(" (did you mean {}?)", i.to_ascii_lowercase()))
                .unwrap_or_default();
            return Err(err(
                line,
                format!("unknown instruction: {}{near}", &t[..end]),
            ));
        }
        let args = match rest.trim_start().starts_with('[') {
            true => match serde_json::from_str::<Vec<String>>(rest.trim()) {
                Ok(v) => Args::Json(v),
                Err(_) => Args::Text(rest.trim().to_string()),
            },
            false => Args::Text(rest.trim().to_string()),
        };
        let empty = match &args {
            Args::Json(v) => v.is_empty() && !matches!(name.as_str(), "CMD" | "ENTRYPOINT"),
            Args::Text(s) => s.is_empty(),
        };
        if empty {
            return Err(err(line, format!("{name} requires at least one argument")));
        }
        if name == "SHELL" && matches!(args, Args::Text(_)) {
            // BuildKit's words: the shell is a program and its flags, never shell text.
            return Err(err(
                line,
                "SHELL requires the arguments to be in JSON form: SHELL [\"/bin/bash\", \"-c\"]"
                    .into(),
            ));
        }
        let known_flags: &[&str] = match name.as_str() {
            "FROM" => &["platform"],
            "COPY" => &["from", "chown", "chmod"],
            "ADD" => &["chown", "chmod"],
            "RUN" => &["mount"],
            "HEALTHCHECK" => &[
                "interval",
                "timeout",
                "start-period",
                "start-interval",
                "retries",
            ],
            _ => &[],
        };
        if let Some((f, _)) = flags
            .iter()
            .find(|(f, _)| !known_flags.contains(&f.as_str()))
        {
            let also = if name == "RUN" {
                " (RUN --network and --security are not supported by dockling yet)"
            } else {
                ""
            };
            return Err(err(line, format!("unknown flag: --{f} for {name}{also}")));
        }
        let ins = Instruction {
            line,
            name: name.clone(),
            flags,
            args,
            text: t.to_string(),
            heredocs,
        };
        if matches!(name.as_str(), "COPY" | "ADD") && !ins.heredocs.is_empty() {
            return Err(err(
                line,
                format!(
                    "{name} <<{}: a heredoc as a {name} source is not supported by dockling yet: write it with RUN cat <<{} > /path, or put the file in the build context",
                    ins.heredocs[0].name, ins.heredocs[0].name
                ),
            ));
        }
        if name == "HEALTHCHECK" {
            healthcheck(&ins).map_err(|m| err(line, m))?;
        }
        for (_, spec) in ins.flags.iter().filter(|(f, _)| f == "mount") {
            run_mount(spec).map_err(|m| err(line, m))?;
        }
        if name == "ONBUILD" {
            onbuild_trigger(&ins, file).map_err(|m| err(line, m))?;
        }
        match name.as_str() {
            "FROM" => {
                let Args::Text(s) = &ins.args else {
                    return Err(err(line, "FROM takes an image, not a JSON list".into()));
                };
                let w: Vec<&str> = s.split_whitespace().collect();
                let (base, stage_name) = match w.as_slice() {
                    [b] => (b.to_string(), None),
                    [b, as_, n] if as_.eq_ignore_ascii_case("as") => {
                        let n = n.to_ascii_lowercase();
                        let ok = n
                            .chars()
                            .next()
                            .is_some_and(|c| c.is_ascii_alphabetic())
                            && n.chars()
                                .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
                        if !ok {
                            return Err(err(line, format!("invalid name for build stage: {n:?}, name can't start with a number or contain symbols")));
                        }
                        if df.stages.iter().any(|s| s.name.as_deref() == Some(n.as_str())) {
                            return Err(err(line, format!("duplicate stage name {n:?}")));
                        }
                        (b.to_string(), Some(n))
                    }
                    _ => {
                        return Err(err(
                            line,
                            "FROM requires either one or three arguments: FROM IMAGE [AS NAME]"
                                .into(),
                        ))
                    }
                };
                df.stages.push(Stage {
                    line,
                    base,
                    name: stage_name,
                    instructions: Vec::new(),
                });
            }
            _ => match df.stages.last_mut() {
                Some(s) => s.instructions.push(ins),
                None if name == "ARG" => df.meta_args.push(ins),
                None => {
                    return Err(err(
                        line,
                        format!("{name} before the first FROM: a Dockerfile starts with FROM (only ARG may come before it)"),
                    ))
                }
            },
        }
    }
    if df.stages.is_empty() {
        return Err(err(
            lines.len().max(1),
            "the Dockerfile has no FROM: nothing to build".into(),
        ));
    }
    Ok(df)
}

/// `ONBUILD <instruction>`: the trigger as the config's `OnBuild` keeps it (the line without
/// its `ONBUILD`, as BuildKit's `parseOnBuild`), checked to be one instruction a later build
/// can run after its `FROM`: not `ONBUILD`, `FROM` or `MAINTAINER`, as Docker refuses them.
pub fn onbuild_trigger(ins: &Instruction, file: &str) -> Result<String, String> {
    let t = ins.text.trim_start();
    let end = t.find(char::is_whitespace).unwrap_or(t.len());
    let mut expr = t[end..].trim_start().to_string();
    // Its heredocs go with it, as lines after it (BuildKit's Expression).
    for doc in &ins.heredocs {
        expr.push('\n');
        expr.push_str(&doc.content);
        expr.push_str(&doc.name);
    }
    let first = expr
        .split_whitespace()
        .next()
        .unwrap_or("")
        .to_ascii_uppercase();
    match first.as_str() {
        "" => return Err("ONBUILD requires at least one argument".into()),
        "ONBUILD" => return Err("Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed".into()),
        "FROM" | "MAINTAINER" => {
            return Err(format!("{first} isn't allowed as an ONBUILD trigger"))
        }
        _ => {}
    }
    trigger_instruction(&expr, file, 0)?;
    Ok(expr)
}

/// An `OnBuild` trigger of a base image read as the instruction it is, at `line` (the `FROM`
/// that runs it, where BuildKit reports its errors too).
pub fn trigger_instruction(expr: &str, file: &str, line: usize) -> Result<Instruction, String> {
    let df = parse(&format!("FROM scratch\n{expr}\n"), file).map_err(|e| e.msg)?;
    match df.stages.as_slice() {
        [s] if s.instructions.len() == 1 => {
            let mut ins = s.instructions[0].clone();
            ins.line = line;
            Ok(ins)
        }
        _ => Err(format!(
            "onbuild trigger should be a single expression: {expr:?}"
        )),
    }
}

/// A `RUN --mount` dockling builds (BuildKit's `type=cache` and `type=tmpfs`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunMount {
    /// `type=cache`: a directory of the engine's, kept between builds, keyed by `id` (the
    /// target unless given), bound at `target` for the step; what the step writes there stays
    /// out of the layer.
    Cache {
        /// `id=`, or the target.
        id: String,
        /// `target=` (`dst=`, `destination=`).
        target: String,
        /// `ro`/`readonly`.
        readonly: bool,
        /// `mode=` of a new cache directory (0755).
        mode: u32,
        /// `uid=` of a new cache directory.
        uid: u32,
        /// `gid=` of a new cache directory.
        gid: u32,
        /// `sharing=`: how concurrent builds share it.
        sharing: Sharing,
    },
    /// `type=tmpfs`: an empty tmpfs at `target` for the step.
    Tmpfs {
        /// `target=`.
        target: String,
        /// `size=` as written (`64m`), if any.
        size: Option<String>,
    },
}

/// `sharing=` of a cache mount (BuildKit's): what a RUN does when another build's RUN uses
/// the same cache at the same time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Sharing {
    /// Both use it at once (the default).
    #[default]
    Shared,
    /// One at a time: the second waits for the first (an `flock` of the cache directory held
    /// for the RUN).
    Locked,
    /// The first gets the cache; one that finds it in use gets an empty directory of its own
    /// for that RUN, removed after.
    Private,
}

impl RunMount {
    /// Where it is mounted (as written: relative targets are the working directory's).
    pub fn target(&self) -> &str {
        match self {
            RunMount::Cache { target, .. } | RunMount::Tmpfs { target, .. } => target,
        }
    }
}

/// Read one `RUN --mount=…` value (BuildKit's comma-separated `key=value` fields; `type`
/// defaults to `bind`, as there). Only `cache` and `tmpfs` are built; the others are refused
/// with what to do instead.
pub fn run_mount(spec: &str) -> Result<RunMount, String> {
    let mut typ = "bind".to_string();
    let mut target = None;
    let mut id = None;
    let mut readonly = false;
    let mut mode = 0o755;
    let mut uid = 0;
    let mut gid = 0;
    let mut size = None;
    let mut sharing = Sharing::default();
    for field in spec.split(',').filter(|f| !f.is_empty()) {
        let (k, v) = match field.split_once('=') {
            Some((k, v)) => (k.trim().to_ascii_lowercase(), Some(v.trim())),
            None => (field.trim().to_ascii_lowercase(), None),
        };
        let num = |v: Option<&str>, radix: u32| -> Result<u32, String> {
            v.and_then(|v| u32::from_str_radix(v, radix).ok())
                .ok_or_else(|| format!("RUN --mount: invalid value for {k} in {spec:?}"))
        };
        match (k.as_str(), v) {
            ("type", Some(t)) => typ = t.to_ascii_lowercase(),
            ("target" | "dst" | "destination", Some(t)) => target = Some(t.to_string()),
            ("id", Some(i)) => id = Some(i.to_string()),
            ("ro" | "readonly", None) => readonly = true,
            ("ro" | "readonly", Some(b)) => readonly = b.eq_ignore_ascii_case("true"),
            ("rw" | "readwrite", None) => readonly = false,
            ("rw" | "readwrite", Some(b)) => readonly = !b.eq_ignore_ascii_case("true"),
            ("sharing", Some("shared")) => sharing = Sharing::Shared,
            ("sharing", Some("locked")) => sharing = Sharing::Locked,
            ("sharing", Some("private")) => sharing = Sharing::Private,
            ("sharing", Some(o)) => {
                return Err(format!(
                    "RUN --mount: unsupported sharing value {o:?}: shared, private or locked"
                ))
            }
            ("mode", v) => mode = num(v, 8)?,
            ("uid", v) => uid = num(v, 10)?,
            ("gid", v) => gid = num(v, 10)?,
            ("size", Some(s)) => size = Some(s.to_string()),
            ("from" | "source" | "src", _) => {
                return Err(format!(
                    "RUN --mount: {k}= is not supported by dockling yet (in {spec:?}): a cache starts empty"
                ))
            }
            _ => return Err(format!("RUN --mount: unexpected key '{k}' in '{spec}'")),
        }
    }
    let Some(target) = target.filter(|t| !t.is_empty()) else {
        return Err(format!(
            "RUN --mount {spec:?}: a target is required (--mount=type=cache,target=/root/.cache)"
        ));
    };
    match typ.as_str() {
        "cache" => Ok(RunMount::Cache {
            id: id.unwrap_or_else(|| target.clone()),
            target,
            readonly,
            mode,
            uid,
            gid,
            sharing,
        }),
        "tmpfs" => Ok(RunMount::Tmpfs { target, size }),
        "bind" | "secret" | "ssh" => Err(format!(
            "RUN --mount=type={typ} is not supported by dockling yet: only type=cache and type=tmpfs are; COPY the files the step needs first"
        )),
        other => Err(format!("RUN --mount: unsupported mount type {other:?}")),
    }
}

/// A `HEALTHCHECK`, as Docker stores it in the image config (`Healthcheck`): what to run
/// (`["CMD-SHELL", "text"]`, `["CMD", argv…]` or `["NONE"]`) and its timings in nanoseconds,
/// 0 meaning "the default" (as unset in Docker). dockling stores it; it runs no healthcheck.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Healthcheck {
    /// `Test`.
    pub test: Vec<String>,
    /// `--interval`, ns.
    pub interval: i64,
    /// `--timeout`, ns.
    pub timeout: i64,
    /// `--start-period`, ns.
    pub start_period: i64,
    /// `--start-interval`, ns.
    pub start_interval: i64,
    /// `--retries`.
    pub retries: i64,
}

impl Healthcheck {
    /// The config's `Healthcheck` object: zero fields left out, as Docker's `omitempty`.
    pub fn to_config(&self) -> serde_json::Value {
        let mut m = serde_json::Map::new();
        m.insert("Test".into(), serde_json::json!(self.test));
        for (k, v) in [
            ("Interval", self.interval),
            ("Timeout", self.timeout),
            ("StartPeriod", self.start_period),
            ("StartInterval", self.start_interval),
            ("Retries", self.retries),
        ] {
            if v != 0 {
                m.insert(k.into(), serde_json::json!(v));
            }
        }
        serde_json::Value::Object(m)
    }

    /// BuildKit's history line: Go's `%+v` of the config struct.
    pub fn history(&self) -> String {
        format!(
            "HEALTHCHECK {{Test:[{}] Interval:{} Timeout:{} StartPeriod:{} StartInterval:{} Retries:{}}}",
            self.test.join(" "),
            go_duration(self.interval),
            go_duration(self.timeout),
            go_duration(self.start_period),
            go_duration(self.start_interval),
            self.retries
        )
    }
}

/// Read a `HEALTHCHECK` instruction as BuildKit's `parseHealthcheck` does: `NONE`, or
/// `CMD` with a JSON list (`CMD`) or shell text (`CMD-SHELL`), and the flags' durations
/// (Go's syntax: `30s`, `1m30s`, `500ms`; not below 1ms) and retries.
pub fn healthcheck(ins: &Instruction) -> Result<Healthcheck, String> {
    let text = match &ins.args {
        Args::Text(t) => t.clone(),
        Args::Json(_) => {
            return Err("HEALTHCHECK takes CMD or NONE first: HEALTHCHECK CMD [\"curl\", \"-f\", \"http://localhost/\"]".into())
        }
    };
    let t = text.trim();
    let end = t.find(char::is_whitespace).unwrap_or(t.len());
    let typ = t[..end].to_ascii_uppercase();
    let rest = t[end..].trim();
    let mut h = Healthcheck {
        test: Vec::new(),
        interval: 0,
        timeout: 0,
        start_period: 0,
        start_interval: 0,
        retries: 0,
    };
    if typ == "NONE" {
        if !rest.is_empty() {
            return Err("HEALTHCHECK NONE takes no arguments".into());
        }
        h.test = vec![typ];
        return Ok(h);
    }
    if typ != "CMD" {
        return Err(format!(
            "Unknown type {:?} in HEALTHCHECK (try CMD)",
            &t[..end]
        ));
    }
    let json = rest
        .starts_with('[')
        .then(|| serde_json::from_str::<Vec<String>>(rest).ok())
        .flatten();
    h.test = match json {
        Some(v) if v.is_empty() => return Err("Missing command after HEALTHCHECK CMD".into()),
        Some(v) => std::iter::once("CMD".to_string()).chain(v).collect(),
        None if rest.is_empty() => return Err("Missing command after HEALTHCHECK CMD".into()),
        None => vec!["CMD-SHELL".into(), rest.to_string()],
    };
    let flag = |name: &str| {
        ins.flags
            .iter()
            .rev()
            .find(|(f, _)| f == name)
            .map(|(_, v)| v.as_str())
            .unwrap_or("")
    };
    let interval = |name: &str| -> Result<i64, String> {
        let s = flag(name);
        if s.is_empty() {
            return Ok(0);
        }
        let d = parse_go_duration(s)?;
        if d != 0 && d < 1_000_000 {
            return Err(format!("Interval {name:?} cannot be less than 1ms"));
        }
        Ok(d)
    };
    h.interval = interval("interval")?;
    h.timeout = interval("timeout")?;
    h.start_period = interval("start-period")?;
    h.start_interval = interval("start-interval")?;
    let r = flag("retries");
    if !r.is_empty() {
        let n: i32 = r
            .parse()
            .map_err(|_| format!("strconv.ParseInt: parsing {r:?}: invalid syntax"))?;
        if n < 0 {
            return Err(format!("--retries cannot be negative ({n})"));
        }
        h.retries = n.into();
    }
    Ok(h)
}

/// Parse a Go duration (`time.ParseDuration`): signed decimal numbers, each with a unit
/// (`ns`, `us`/`µs`, `ms`, `s`, `m`, `h`), as `1h30m`, `1.5s`; in nanoseconds.
pub fn parse_go_duration(orig: &str) -> Result<i64, String> {
    let invalid = || format!("time: invalid duration {orig:?}");
    let mut s = orig;
    let mut neg = false;
    if let Some(r) = s.strip_prefix('-') {
        neg = true;
        s = r;
    } else if let Some(r) = s.strip_prefix('+') {
        s = r;
    }
    if s == "0" {
        return Ok(0);
    }
    if s.is_empty() {
        return Err(invalid());
    }
    let mut total: i128 = 0;
    while !s.is_empty() {
        let int_end = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
        let int_part = &s[..int_end];
        s = &s[int_end..];
        let mut frac = "";
        if let Some(r) = s.strip_prefix('.') {
            let fe = r.find(|c: char| !c.is_ascii_digit()).unwrap_or(r.len());
            frac = &r[..fe];
            s = &r[fe..];
        }
        if int_part.is_empty() && frac.is_empty() {
            return Err(invalid());
        }
        let unit_end = s
            .find(|c: char| c == '.' || c.is_ascii_digit())
            .unwrap_or(s.len());
        let unit = &s[..unit_end];
        s = &s[unit_end..];
        let mult: i128 = match unit {
            "" => return Err(format!("time: missing unit in duration {orig:?}")),
            "ns" => 1,
            "us" | "µs" | "μs" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            u => return Err(format!("time: unknown unit {u:?} in duration {orig:?}")),
        };
        let int: i128 = if int_part.is_empty() {
            0
        } else {
            int_part.parse().map_err(|_| invalid())?
        };
        let mut v = int.checked_mul(mult).ok_or_else(invalid)?;
        if !frac.is_empty() {
            let f = &frac[..frac.len().min(18)];
            let scale = 10i128.pow(f.len() as u32);
            v += f.parse::<i128>().map_err(|_| invalid())? * mult / scale;
        }
        total += v;
        if total > i64::MAX as i128 {
            return Err(invalid());
        }
    }
    Ok(if neg { -(total as i64) } else { total as i64 })
}

/// Format nanoseconds as Go's `time.Duration.String` does (`0s`, `1.5s`, `1m30s`, `1h0m0s`,
/// `500ms`).
pub fn go_duration(d: i64) -> String {
    if d == 0 {
        return "0s".into();
    }
    let sign = if d < 0 { "-" } else { "" };
    let u = d.unsigned_abs();
    let frac = |v: u64, div: u64| -> String {
        let int = v / div;
        let rest = v % div;
        if rest == 0 {
            return int.to_string();
        }
        let width = div.ilog10() as usize;
        let digits = format!("{rest:0width$}");
        format!("{int}.{}", digits.trim_end_matches('0'))
    };
    if u < 1_000_000_000 {
        let (unit, div) = match u {
            0..=999 => ("ns", 1),
            1_000..=999_999 => ("µs", 1_000),
            _ => ("ms", 1_000_000),
        };
        return format!("{sign}{}{unit}", frac(u, div));
    }
    let h = u / 3_600_000_000_000;
    let m = (u / 60_000_000_000) % 60;
    let s = u % 60_000_000_000;
    let mut out = sign.to_string();
    if h > 0 {
        out.push_str(&format!("{h}h"));
    }
    if h > 0 || m > 0 {
        out.push_str(&format!("{m}m"));
    }
    out.push_str(&format!("{}s", frac(s, 1_000_000_000)));
    out
}

/// An expansion that failed (`${X:?message}`, a bad `${`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpandError(pub String);

/// Variable values the expansion sees.
pub type Vars = HashMap<String, String>;

struct Lexer<'a> {
    chars: Vec<char>,
    pos: usize,
    escape: char,
    vars: &'a Vars,
}

impl Lexer<'_> {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn next(&mut self) -> Option<char> {
        let c = self.peek();
        self.pos += 1;
        c
    }

    /// A `$` has been read: the value it stands for.
    fn dollar(&mut self) -> Result<String, ExpandError> {
        match self.peek() {
            Some('{') => {
                self.pos += 1;
                let mut name = String::new();
                while let Some(c) = self.peek() {
                    if c.is_ascii_alphanumeric() || c == '_' {
                        name.push(c);
                        self.pos += 1;
                    } else {
                        break;
                    }
                }
                if name.is_empty() {
                    return Err(ExpandError("bad substitution: ${ without a name".into()));
                }
                match self.next() {
                    Some('}') => Ok(self.vars.get(&name).cloned().unwrap_or_default()),
                    Some(c) => {
                        let colon = c == ':';
                        let op = if colon { self.next() } else { Some(c) };
                        let word = self.until_brace()?;
                        let val = self.vars.get(&name);
                        let set = match colon {
                            true => val.is_some_and(|v| !v.is_empty()),
                            false => val.is_some(),
                        };
                        match op {
                            Some('-') => Ok(if set {
                                val.cloned().unwrap_or_default()
                            } else {
                                word
                            }),
                            Some('+') => Ok(if set { word } else { String::new() }),
                            Some('?') => match set {
                                true => Ok(val.cloned().unwrap_or_default()),
                                false => Err(ExpandError(format!(
                                    "{name}: {}",
                                    if word.is_empty() {
                                        "is not allowed to be unset"
                                    } else {
                                        &word
                                    }
                                ))),
                            },
                            _ => Err(ExpandError(format!(
                                "bad substitution: unsupported modifier in ${{{name}{}...}}",
                                if colon { ":" } else { "" }
                            ))),
                        }
                    }
                    None => Err(ExpandError(format!("missing '}}' after ${{{name}"))),
                }
            }
            Some(c) if c.is_ascii_alphabetic() || c == '_' => {
                let mut name = String::new();
                while let Some(c) = self.peek() {
                    if c.is_ascii_alphanumeric() || c == '_' {
                        name.push(c);
                        self.pos += 1;
                    } else {
                        break;
                    }
                }
                Ok(self.vars.get(&name).cloned().unwrap_or_default())
            }
            _ => Ok("$".into()),
        }
    }

    /// The word of `${X:-word}` up to its closing brace, itself expanded.
    fn until_brace(&mut self) -> Result<String, ExpandError> {
        let mut out = String::new();
        loop {
            match self.next() {
                None => return Err(ExpandError("missing '}' in a ${...} substitution".into())),
                Some('}') => return Ok(out),
                Some('$') => out.push_str(&self.dollar()?),
                Some(c) if c == self.escape => {
                    if let Some(n) = self.next() {
                        out.push(n);
                    }
                }
                Some(c) => out.push(c),
            }
        }
    }

    /// Read words: quotes removed, escapes applied, variables expanded; `split` cuts at
    /// unquoted whitespace (otherwise the whole text is one word).
    fn words(&mut self, split: bool) -> Result<Vec<String>, ExpandError> {
        let mut words = Vec::new();
        let mut cur = String::new();
        let mut in_word = false;
        while let Some(c) = self.next() {
            match c {
                c if split && c.is_whitespace() => {
                    if in_word {
                        words.push(std::mem::take(&mut cur));
                        in_word = false;
                    }
                }
                '\'' => {
                    in_word = true;
                    loop {
                        match self.next() {
                            None => return Err(ExpandError("unexpected end of statement while looking for matching single-quote".into())),
                            Some('\'') => break,
                            Some(c) => cur.push(c),
                        }
                    }
                }
                '"' => {
                    in_word = true;
                    loop {
                        match self.next() {
                            None => return Err(ExpandError("unexpected end of statement while looking for matching double-quote".into())),
                            Some('"') => break,
                            Some('$') => cur.push_str(&self.dollar()?),
                            Some(c) if c == self.escape => match self.peek() {
                                Some(n) if n == '"' || n == '$' || n == self.escape => {
                                    cur.push(n);
                                    self.pos += 1;
                                }
                                _ => cur.push(c),
                            },
                            Some(c) => cur.push(c),
                        }
                    }
                }
                '$' => {
                    in_word = true;
                    cur.push_str(&self.dollar()?);
                }
                c if c == self.escape => {
                    in_word = true;
                    if let Some(n) = self.next() {
                        cur.push(n);
                    }
                }
                c => {
                    in_word = true;
                    cur.push(c);
                }
            }
        }
        if in_word || !split {
            words.push(cur);
        }
        Ok(words)
    }
}

/// Expand one word (quotes removed, escapes applied, variables substituted).
pub fn expand(text: &str, vars: &Vars, escape: char) -> Result<String, ExpandError> {
    let mut l = Lexer {
        chars: text.chars().collect(),
        pos: 0,
        escape,
        vars,
    };
    Ok(l.words(false)?.pop().unwrap_or_default())
}

/// Split shell text into words at unquoted whitespace, each expanded.
pub fn words(text: &str, vars: &Vars, escape: char) -> Result<Vec<String>, ExpandError> {
    let mut l = Lexer {
        chars: text.chars().collect(),
        pos: 0,
        escape,
        vars,
    };
    l.words(true)
}

/// Split shell text at unquoted whitespace, quotes and escapes kept (for `KEY=value` pairs,
/// each expanded afterwards).
pub fn raw_words(text: &str, escape: char) -> Vec<String> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut quote: Option<char> = None;
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match quote {
            Some(q) => {
                cur.push(c);
                if c == escape && q == '"' {
                    if let Some(n) = chars.next() {
                        cur.push(n);
                    }
                } else if c == q {
                    quote = None;
                }
            }
            None if c.is_whitespace() => {
                if !cur.is_empty() {
                    words.push(std::mem::take(&mut cur));
                }
            }
            None => {
                cur.push(c);
                if c == escape {
                    if let Some(n) = chars.next() {
                        cur.push(n);
                    }
                } else if c == '"' || c == '\'' {
                    quote = Some(c);
                }
            }
        }
    }
    if !cur.is_empty() {
        words.push(cur);
    }
    words
}

/// `KEY=value ...` pairs of ENV, LABEL and ARG (values expanded), or ENV's old
/// `KEY value with spaces` form when the first word has no `=` (`legacy`).
pub fn pairs(
    text: &str,
    vars: &Vars,
    escape: char,
    legacy: bool,
) -> Result<Vec<(String, Option<String>)>, ExpandError> {
    let ws = raw_words(text, escape);
    if legacy && ws.first().is_some_and(|w| !w.contains('=')) {
        let key = ws[0].clone();
        let rest = text.trim_start()[key.len()..].trim();
        if rest.is_empty() {
            return Err(ExpandError(format!(
                "ENV {key} needs a value: ENV {key}=value"
            )));
        }
        return Ok(vec![(key, Some(expand(rest, vars, escape)?))]);
    }
    ws.iter()
        .map(|w| match w.split_once('=') {
            Some((k, v)) => Ok((expand(k, vars, escape)?, Some(expand(v, vars, escape)?))),
            None => Ok((expand(w, vars, escape)?, None)),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(kv: &[(&str, &str)]) -> Vars {
        kv.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn continuations_comments_and_forms() {
        let df = parse(
            "# a comment\nFROM busybox AS Base\n\nRUN echo a \\\n  # inside\n  && echo b\nCMD [\"sh\", \"-c\", \"x\"]\nENTRYPOINT [not json\n",
            "Dockerfile",
        )
        .unwrap();
        assert_eq!(df.escape, '\\');
        let s = &df.stages[0];
        assert_eq!(s.base, "busybox");
        assert_eq!(s.name.as_deref(), Some("base"));
        assert_eq!(s.line, 2);
        assert_eq!(s.instructions[0].line, 4);
        assert_eq!(
            s.instructions[0].args,
            Args::Text("echo a   && echo b".into())
        );
        assert_eq!(
            s.instructions[1].args,
            Args::Json(vec!["sh".into(), "-c".into(), "x".into()])
        );
        assert_eq!(s.instructions[2].args, Args::Text("[not json".into()));
    }

    #[test]
    fn the_escape_directive_changes_the_continuation() {
        let df = parse(
            "# escape=`\nFROM scratch\nCOPY a\\b `\n  c:\\d\n",
            "Dockerfile",
        )
        .unwrap();
        assert_eq!(df.escape, '`');
        assert_eq!(
            df.stages[0].instructions[0].args,
            Args::Text("a\\b   c:\\d".into())
        );
        // A directive after a comment is just a comment.
        let df = parse("# hi\n# escape=`\nFROM x\n", "Dockerfile").unwrap();
        assert_eq!(df.escape, '\\');
        assert_eq!(
            parse("# escape=x\nFROM x\n", "Dockerfile").unwrap_err().msg,
            "invalid escape token 'x' does not match ` or \\"
        );
    }

    #[test]
    fn args_before_from_and_flags() {
        let df = parse(
            "ARG V=1\nFROM busybox:${V}\nCOPY --from=build --chown=1:2 a b\n",
            "Dockerfile",
        )
        .unwrap();
        assert_eq!(df.meta_args.len(), 1);
        assert_eq!(df.stages[0].base, "busybox:${V}");
        assert_eq!(
            df.stages[0].instructions[0].flags,
            vec![
                ("from".to_string(), "build".to_string()),
                ("chown".to_string(), "1:2".to_string())
            ]
        );
        assert_eq!(df.stages[0].instructions[0].args, Args::Text("a b".into()));
    }

    #[test]
    fn errors_name_the_line() {
        let e = parse(
            "FROM busybox\n\nRUN true\n# c\n\n\nRUNN echo\n",
            "Dockerfile",
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "Dockerfile:7: unknown instruction: RUNN (did you mean run?)"
        );
        let e = parse("RUN x\n", "df").unwrap_err();
        assert_eq!(e.line, 1);
        assert!(e.msg.contains("before the first FROM"), "{e}");
        let e = parse("FROM a\nRUN\n", "Dockerfile").unwrap_err();
        assert_eq!(
            e.to_string(),
            "Dockerfile:2: RUN requires at least one argument"
        );
        let e = parse("FROM a\nRUN --mount=type=bind,target=/x x\n", "Dockerfile").unwrap_err();
        assert!(
            e.msg.starts_with("RUN --mount=type=bind is not supported"),
            "{e}"
        );
        let e = parse("FROM a\nRUN --network=none x\n", "Dockerfile").unwrap_err();
        assert!(e.msg.starts_with("unknown flag: --network for RUN"), "{e}");
        let e = parse("FROM a b\n", "Dockerfile").unwrap_err();
        assert!(e.msg.contains("one or three arguments"), "{e}");
        let e = parse("# only a comment\n", "Dockerfile").unwrap_err();
        assert!(e.msg.contains("no FROM"), "{e}");
        let e = parse("FROM a AS x\nFROM b AS X\n", "Dockerfile").unwrap_err();
        assert_eq!(e.line, 2);
        let e = parse("FROM a\n\nSHELL /bin/bash -c\n", "Dockerfile").unwrap_err();
        assert_eq!(e.line, 3);
        assert!(
            e.msg
                .starts_with("SHELL requires the arguments to be in JSON form"),
            "{e}"
        );
        let e = parse("FROM a\nSHELL []\n", "Dockerfile").unwrap_err();
        assert_eq!(e.msg, "SHELL requires at least one argument");
        let df = parse("FROM a\nSHELL [\"/bin/bash\", \"-c\"]\n", "Dockerfile").unwrap();
        assert_eq!(
            df.stages[0].instructions[0].args,
            Args::Json(vec!["/bin/bash".into(), "-c".into()])
        );
    }

    #[test]
    fn onbuild_keeps_its_trigger_and_refuses_what_docker_refuses() {
        let df = parse(
            "FROM a\nonbuild   RUN echo \"$X\" \\\n  && true\n",
            "Dockerfile",
        )
        .unwrap();
        let ins = &df.stages[0].instructions[0];
        assert_eq!(ins.name, "ONBUILD");
        assert_eq!(
            onbuild_trigger(ins, "Dockerfile").unwrap(),
            "RUN echo \"$X\"   && true"
        );
        let t = trigger_instruction("COPY --chown=1:1 a /b", "Dockerfile", 9).unwrap();
        assert!(t.heredocs.is_empty());
        let df = parse("FROM a\nONBUILD RUN <<EOF\necho hi\nEOF\n", "Dockerfile").unwrap();
        let expr = onbuild_trigger(&df.stages[0].instructions[0], "Dockerfile").unwrap();
        assert_eq!(expr, "RUN <<EOF\necho hi\nEOF");
        let h = trigger_instruction(&expr, "Dockerfile", 3).unwrap();
        assert_eq!(h.heredocs[0].content, "echo hi\n");
        assert_eq!((t.line, t.name.as_str()), (9, "COPY"));
        for (bad, msg) in [
            (
                "ONBUILD ONBUILD RUN x",
                "Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed",
            ),
            ("ONBUILD from x", "FROM isn't allowed as an ONBUILD trigger"),
            (
                "ONBUILD MAINTAINER me",
                "MAINTAINER isn't allowed as an ONBUILD trigger",
            ),
            (
                "ONBUILD RUNN x",
                "unknown instruction: RUNN (did you mean run?)",
            ),
        ] {
            let e = parse(&format!("FROM a\n{bad}\n"), "Dockerfile").unwrap_err();
            assert_eq!((e.line, e.msg.as_str()), (2, msg), "{bad}");
        }
    }

    #[test]
    fn heredocs_take_the_lines_up_to_their_terminator() {
        let df = parse(
            "FROM a\nRUN <<EOF\n# not a comment\necho \"$HOME\" \\\nEOF\nRUN <<-'END' cat > /x && python3 <<PY\n\tindented\n\tEND\nprint(1)\nPY\nRUN [\"echo\", \"<<EOF\"]\nCMD x\n",
            "Dockerfile",
        )
        .unwrap();
        let ins = &df.stages[0].instructions;
        assert_eq!(ins.len(), 4);
        assert_eq!(
            (ins[0].line, ins[1].line, ins[2].line, ins[3].line),
            (2, 6, 11, 12)
        );
        assert_eq!(ins[0].heredocs.len(), 1);
        assert_eq!(
            ins[0].heredocs[0].content,
            "# not a comment\necho \"$HOME\" \\\n"
        );
        let d = &ins[1].heredocs;
        assert_eq!(
            (d[0].name.as_str(), d[0].chomp, d[0].expand),
            ("END", true, false)
        );
        assert_eq!(d[0].content, "\tindented\n");
        assert_eq!(d[0].data(), "indented\n");
        assert_eq!(
            (d[1].name.as_str(), d[1].content.as_str()),
            ("PY", "print(1)\n")
        );
        assert!(ins[2].heredocs.is_empty(), "JSON form has no heredocs");
        let e = parse("FROM a\n\nRUN <<EOF\necho\n", "Dockerfile").unwrap_err();
        assert_eq!(e.line, 3);
        assert!(e.msg.starts_with("unterminated heredoc"), "{e}");
        let e = parse("FROM a\nCOPY <<EOF /x\nhi\nEOF\n", "Dockerfile").unwrap_err();
        assert!(e.msg.contains("not supported by dockling yet"), "{e}");
        assert!(heredoc_word("<<<EOF").is_none());
        assert!(heredoc_word("<<").is_none());
        assert_eq!(heredoc_word("2<<\"A\"").unwrap().name, "A");
    }

    #[test]
    fn run_mounts_of_type_cache_and_tmpfs() {
        assert_eq!(
            run_mount("type=cache,target=/root/.cache,sharing=locked").unwrap(),
            RunMount::Cache {
                id: "/root/.cache".into(),
                target: "/root/.cache".into(),
                readonly: false,
                mode: 0o755,
                uid: 0,
                gid: 0,
                sharing: Sharing::Locked
            }
        );
        assert_eq!(
            run_mount("type=cache,id=go,dst=/go,mode=0700,uid=1000,gid=1000,ro").unwrap(),
            RunMount::Cache {
                id: "go".into(),
                target: "/go".into(),
                readonly: true,
                mode: 0o700,
                uid: 1000,
                gid: 1000,
                sharing: Sharing::Shared
            }
        );
        assert!(matches!(
            run_mount("type=cache,target=/c,sharing=private").unwrap(),
            RunMount::Cache {
                sharing: Sharing::Private,
                ..
            }
        ));
        assert_eq!(
            run_mount("type=tmpfs,target=/t,size=64m").unwrap(),
            RunMount::Tmpfs {
                target: "/t".into(),
                size: Some("64m".into())
            }
        );
        assert!(run_mount("type=cache")
            .unwrap_err()
            .contains("a target is required"));
        assert!(run_mount("target=/x")
            .unwrap_err()
            .contains("type=bind is not supported"));
        assert!(run_mount("type=secret,id=x,target=/s")
            .unwrap_err()
            .contains("type=secret is not supported"));
        assert!(run_mount("type=cache,target=/x,bogus=1")
            .unwrap_err()
            .contains("unexpected key 'bogus'"));
        let df = parse(
            "FROM a\nRUN --mount=type=cache,target=/c --mount=type=tmpfs,target=/t ls\n",
            "Dockerfile",
        )
        .unwrap();
        assert_eq!(df.stages[0].instructions[0].flags.len(), 2);
    }

    #[test]
    fn healthcheck_as_docker_stores_it() {
        let df = parse(
            "FROM a\nHEALTHCHECK --interval=1m30s --timeout=3s --retries=3 CMD curl -f http://x/ || exit 1\nHEALTHCHECK --start-period=1.5s --start-interval=500ms CMD [\"/bin/check\", \"-q\"]\nHEALTHCHECK none\n",
            "Dockerfile",
        )
        .unwrap();
        let h: Vec<Healthcheck> = df.stages[0]
            .instructions
            .iter()
            .map(|i| healthcheck(i).unwrap())
            .collect();
        assert_eq!(
            h[0].to_config(),
            serde_json::json!({"Test": ["CMD-SHELL", "curl -f http://x/ || exit 1"], "Interval": 90_000_000_000i64, "Timeout": 3_000_000_000i64, "Retries": 3})
        );
        assert_eq!(
            h[0].history(),
            "HEALTHCHECK {Test:[CMD-SHELL curl -f http://x/ || exit 1] Interval:1m30s Timeout:3s StartPeriod:0s StartInterval:0s Retries:3}"
        );
        assert_eq!(
            h[1].to_config(),
            serde_json::json!({"Test": ["CMD", "/bin/check", "-q"], "StartPeriod": 1_500_000_000i64, "StartInterval": 500_000_000i64})
        );
        assert_eq!(h[2].to_config(), serde_json::json!({"Test": ["NONE"]}));
        for (bad, msg) in [
            ("HEALTHCHECK NONE x", "HEALTHCHECK NONE takes no arguments"),
            ("HEALTHCHECK CMD", "Missing command after HEALTHCHECK CMD"),
            (
                "HEALTHCHECK RUN x",
                "Unknown type \"RUN\" in HEALTHCHECK (try CMD)",
            ),
            (
                "HEALTHCHECK --interval=5 CMD x",
                "time: missing unit in duration \"5\"",
            ),
            (
                "HEALTHCHECK --interval=10us CMD x",
                "Interval \"interval\" cannot be less than 1ms",
            ),
            (
                "HEALTHCHECK --retries=-1 CMD x",
                "--retries cannot be negative (-1)",
            ),
            (
                "HEALTHCHECK --port=1 CMD x",
                "unknown flag: --port for HEALTHCHECK",
            ),
        ] {
            let e = parse(&format!("FROM a\n{bad}\n"), "Dockerfile").unwrap_err();
            assert_eq!((e.line, e.msg.as_str()), (2, msg), "{bad}");
        }
        for (ns, s) in [
            (0, "0s"),
            (1_500, "1.5µs"),
            (2_000_000, "2ms"),
            (3_600_000_000_000, "1h0m0s"),
            (61_250_000_000, "1m1.25s"),
        ] {
            assert_eq!(go_duration(ns), s);
            assert_eq!(parse_go_duration(s), Ok(ns), "{s}");
        }
    }

    #[test]
    fn substitution_as_docker_does_it() {
        let v = vars(&[("A", "x"), ("E", ""), ("P", "/app")]);
        let e = |s: &str| expand(s, &v, '\\').unwrap();
        assert_eq!(e("$A"), "x");
        assert_eq!(e("${A}y"), "xy");
        assert_eq!(e("${B:-def}"), "def");
        assert_eq!(e("${E:-def}"), "def");
        assert_eq!(e("${E-def}"), "");
        assert_eq!(e("${A:+set}"), "set");
        assert_eq!(e("${B:+set}"), "");
        assert_eq!(e("${E+set}"), "set");
        assert_eq!(e("'$A'"), "$A");
        assert_eq!(e("\"$A b\""), "x b");
        assert_eq!(e("\\$A"), "$A");
        assert_eq!(e("${P}/bin:$B"), "/app/bin:");
        assert_eq!(e("a$"), "a$");
        assert_eq!(e("${B:-${A}z}"), "xz");
        assert!(expand("${B:?needed}", &v, '\\')
            .unwrap_err()
            .0
            .contains("needed"));
        assert!(expand("${A", &v, '\\').is_err());
        assert_eq!(
            words("a \"b c\" $A '$A'", &v, '\\').unwrap(),
            ["a", "b c", "x", "$A"]
        );
        assert_eq!(expand("`$A", &v, '`').unwrap(), "$A");
    }

    #[test]
    fn env_and_label_pairs() {
        let v = vars(&[("A", "x")]);
        assert_eq!(
            pairs("K=1 L=\"two words\" M=$A", &v, '\\', true).unwrap(),
            vec![
                ("K".into(), Some("1".into())),
                ("L".into(), Some("two words".into())),
                ("M".into(), Some("x".into()))
            ]
        );
        assert_eq!(
            pairs("K value with $A", &v, '\\', true).unwrap(),
            vec![("K".into(), Some("value with x".into()))]
        );
        assert_eq!(
            pairs("NAME OTHER=2", &v, '\\', false).unwrap(),
            vec![("NAME".into(), None), ("OTHER".into(), Some("2".into()))]
        );
    }
}
