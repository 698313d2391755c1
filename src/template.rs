//! Go's `text/template`, the part `docker … --format` users write, over JSON values.
//!
//! Docker formats `ps`, `images` and `inspect` output with Go templates executed on its own
//! structs; dockling executes the same templates on the JSON of those objects, so
//! `{{.State.Status}}`, `{{json .Mounts}}`, `{{range .Config.Env}}{{println .}}{{end}}`,
//! `{{index .Config.Labels "a"}}` and `table {{.ID}}\t{{.Names}}` give what Docker gives.
//!
//! Supported: text and actions with `{{-`/`-}}` trimming and `{{/* comments */}}`; fields
//! (`.A.B`, `$.A`, `$x.A`), variables (`$x := …`, `range $i, $e := …`), literals (strings,
//! raw strings, numbers, `true`/`false`/`nil`), pipelines (`… | f`), parentheses; `if`/`else
//! if`/`else`, `range` (with `else`), `with` (with `else`), `end`; the functions Docker's
//! templates offer (`json`, `join`, `split`, `lower`, `upper`, `title`, `truncate`, `pad`,
//! `println`) and Go's own (`index`, `len`, `print`, `printf` for `%s %d %v %q %%`, `eq`, `ne`,
//! `lt`, `le`, `gt`, `ge`, `and`, `or`, `not`). Values print as Go prints them: `<no value>`
//! for a missing key, `[a b]` for a list, `map[k:v]` for an object.

use serde_json::Value;

/// A template that does not parse or cannot be executed on a value.
#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    /// The text is not a template.
    #[error("template parsing error: {0}")]
    Parse(String),
    /// The template parsed but failed on the value (a bad index, an unknown function...).
    #[error("template: executing \"\" {0}")]
    Exec(String),
}

type Res<T> = std::result::Result<T, TemplateError>;

fn perr<T>(msg: impl Into<String>) -> Res<T> {
    Err(TemplateError::Parse(msg.into()))
}

fn xerr<T>(msg: impl Into<String>) -> Res<T> {
    Err(TemplateError::Exec(msg.into()))
}

/// A parsed template.
#[derive(Debug, Clone)]
pub struct Template {
    nodes: Vec<Node>,
    /// Docker's `table` prefix: print a header row and align the columns.
    pub table: bool,
}

#[derive(Debug, Clone)]
enum Node {
    Text(String),
    Action(Pipeline),
    If(Pipeline, Vec<Node>, Vec<Node>),
    Range(Pipeline, Vec<Node>, Vec<Node>),
    With(Pipeline, Vec<Node>, Vec<Node>),
}

#[derive(Debug, Clone)]
struct Pipeline {
    /// `$x :=` or `$i, $e :=` (range only).
    decl: Vec<String>,
    cmds: Vec<Vec<Arg>>,
}

#[derive(Debug, Clone)]
enum Arg {
    /// `.A.B` (empty path: `.`).
    Field(Vec<String>),
    /// `$x.A.B` (`$` alone is the top value).
    Var(String, Vec<String>),
    Str(String),
    Num(f64),
    Bool(bool),
    Nil,
    Func(String),
    Sub(Pipeline, Vec<String>),
}

impl Template {
    /// Parse `text` as Docker does: a leading `table` asks for a header and aligned columns,
    /// and the two characters `\t` and `\n` in it mean a tab and a newline.
    pub fn parse_docker(text: &str) -> Res<Template> {
        let (table, body) = match text.strip_prefix("table") {
            Some(rest) => (true, rest.trim_start_matches(' ')),
            None => (false, text),
        };
        let body = body.replace("\\t", "\t").replace("\\n", "\n");
        let mut t = Template::parse(&body)?;
        t.table = table;
        Ok(t)
    }

    /// Parse Go template text.
    pub fn parse(text: &str) -> Res<Template> {
        let pieces = split(text)?;
        let mut p = Parser { pieces, at: 0 };
        let (nodes, end) = p.list()?;
        if let Some(end) = end {
            return perr(format!("unexpected {{{{{end}}}}}"));
        }
        Ok(Template {
            nodes,
            table: false,
        })
    }

    /// Execute on `value`.
    pub fn render(&self, value: &Value) -> Res<String> {
        let mut out = String::new();
        let mut scope = Scope {
            vars: vec![("$".into(), value.clone())],
        };
        exec(&self.nodes, value, &mut scope, &mut out)?;
        Ok(out)
    }
}

/// Render rows with Docker's `--format`: one line per value; for a `table` template, a
/// header line first (the template executed on `headers`, an object naming each field's
/// column) and the columns aligned as Docker's tabwriter does (3 spaces between them).
pub fn render_rows(t: &Template, headers: &Value, rows: &[Value]) -> Res<String> {
    let mut lines = Vec::new();
    if t.table {
        lines.push(t.render(headers)?);
    }
    for r in rows {
        lines.push(t.render(r)?);
    }
    if !t.table {
        return Ok(lines.iter().map(|l| format!("{l}\n")).collect());
    }
    Ok(align(&lines))
}

/// Align tab-separated cells into columns padded to the widest cell plus 3 spaces, as Go's
/// `tabwriter.NewWriter(out, 10, 1, 3, ' ', 0)` does for Docker (a column is at least 10 wide).
pub fn align(lines: &[String]) -> String {
    let split: Vec<Vec<&str>> = lines
        .iter()
        .flat_map(|l| l.split('\n'))
        .map(|l| l.split('\t').collect())
        .collect();
    let mut widths: Vec<usize> = Vec::new();
    for cells in &split {
        // The last cell of a line is not a column (tabwriter leaves it as it is).
        for (i, c) in cells.iter().enumerate().take(cells.len().saturating_sub(1)) {
            if widths.len() <= i {
                widths.push(0);
            }
            widths[i] = widths[i].max(c.chars().count());
        }
    }
    let mut out = String::new();
    for cells in &split {
        if cells.len() == 1 && cells[0].is_empty() {
            continue;
        }
        for (i, c) in cells.iter().enumerate() {
            out.push_str(c);
            if i + 1 < cells.len() {
                let w = (widths[i] + 3).max(10);
                out.extend(std::iter::repeat_n(' ', w - c.chars().count()));
            }
        }
        out.push('\n');
    }
    out
}

// ---- lexing: text and actions ----

enum Piece {
    Text(String),
    Action(String),
}

fn split(text: &str) -> Res<Vec<Piece>> {
    let mut pieces: Vec<Piece> = Vec::new();
    let mut rest = text;
    while let Some(open) = rest.find("{{") {
        let mut before = rest[..open].to_string();
        let mut inner_start = open + 2;
        if rest[inner_start..].starts_with("- ") || rest[inner_start..].starts_with("-\t") {
            before = before.trim_end().to_string();
            inner_start += 1;
        }
        let close = find_close(&rest[inner_start..])
            .ok_or_else(|| TemplateError::Parse("unclosed action".into()))?;
        let mut inner = &rest[inner_start..inner_start + close];
        let mut after = inner_start + close + 2;
        let mut trim_after = false;
        if inner.ends_with(" -") || inner.ends_with("\t-") {
            inner = &inner[..inner.len() - 1];
            trim_after = true;
        }
        if !before.is_empty() {
            pieces.push(Piece::Text(before));
        }
        let inner = inner.trim();
        if !(inner.starts_with("/*") && inner.ends_with("*/")) {
            pieces.push(Piece::Action(inner.to_string()));
        }
        if trim_after {
            let skipped = rest[after..].len() - rest[after..].trim_start().len();
            after += skipped;
        }
        rest = &rest[after..];
    }
    if !rest.is_empty() {
        pieces.push(Piece::Text(rest.to_string()));
    }
    Ok(pieces)
}

/// Where `}}` closes an action, skipping quoted strings.
fn find_close(s: &str) -> Option<usize> {
    let b = s.as_bytes();
    let mut i = 0;
    while i + 1 < b.len() {
        match b[i] {
            b'"' => {
                i += 1;
                while i < b.len() && b[i] != b'"' {
                    if b[i] == b'\\' {
                        i += 1;
                    }
                    i += 1;
                }
            }
            b'`' => {
                i += 1;
                while i < b.len() && b[i] != b'`' {
                    i += 1;
                }
            }
            b'}' if b[i + 1] == b'}' => return Some(i),
            _ => {}
        }
        i += 1;
    }
    None
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Field(Vec<String>),
    Var(String, Vec<String>),
    Str(String),
    Num(f64),
    Ident(String),
    Pipe,
    Open,
    /// `)` and the fields that follow it (`(index . 0).Name`).
    Close(Vec<String>),
    Decl,
    Comma,
}

fn fields(s: &str, i: &mut usize) -> Vec<String> {
    let b = s.as_bytes();
    let mut out = Vec::new();
    while *i < b.len() && b[*i] == b'.' {
        let start = *i + 1;
        let mut j = start;
        while j < b.len() && (b[j].is_ascii_alphanumeric() || b[j] == b'_') {
            j += 1;
        }
        if j == start {
            break;
        }
        out.push(s[start..j].to_string());
        *i = j;
    }
    out
}

fn lex(s: &str) -> Res<Vec<Tok>> {
    let b = s.as_bytes();
    let mut i = 0;
    let mut toks = Vec::new();
    while i < b.len() {
        let c = b[i];
        match c {
            b' ' | b'\t' | b'\n' | b'\r' => i += 1,
            b'|' => {
                toks.push(Tok::Pipe);
                i += 1
            }
            b'(' => {
                toks.push(Tok::Open);
                i += 1
            }
            b')' => {
                i += 1;
                toks.push(Tok::Close(fields(s, &mut i)));
            }
            b',' => {
                toks.push(Tok::Comma);
                i += 1
            }
            b':' if b.get(i + 1) == Some(&b'=') => {
                toks.push(Tok::Decl);
                i += 2
            }
            b'=' => {
                toks.push(Tok::Decl);
                i += 1
            }
            b'.' => {
                let f = fields(s, &mut i);
                if f.is_empty() {
                    i += 1; // `.` alone
                }
                toks.push(Tok::Field(f));
            }
            b'$' => {
                let start = i + 1;
                let mut j = start;
                while j < b.len() && (b[j].is_ascii_alphanumeric() || b[j] == b'_') {
                    j += 1;
                }
                let name = format!("${}", &s[start..j]);
                i = j;
                toks.push(Tok::Var(name, fields(s, &mut i)));
            }
            b'"' => {
                let mut out = String::new();
                i += 1;
                loop {
                    let Some(&ch) = b.get(i) else {
                        return perr("unterminated quoted string");
                    };
                    match ch {
                        b'"' => break,
                        b'\\' => {
                            i += 1;
                            match b.get(i) {
                                Some(b'n') => out.push('\n'),
                                Some(b't') => out.push('\t'),
                                Some(b'"') => out.push('"'),
                                Some(b'\\') => out.push('\\'),
                                _ => return perr("unsupported escape in a quoted string"),
                            }
                            i += 1;
                        }
                        _ => {
                            let ch = s[i..].chars().next().unwrap_or('\u{fffd}');
                            out.push(ch);
                            i += ch.len_utf8();
                        }
                    }
                }
                i += 1;
                toks.push(Tok::Str(out));
            }
            b'`' => {
                let end = s[i + 1..]
                    .find('`')
                    .ok_or_else(|| TemplateError::Parse("unterminated raw string".into()))?;
                toks.push(Tok::Str(s[i + 1..i + 1 + end].to_string()));
                i += end + 2;
            }
            c if c.is_ascii_digit() || c == b'-' || c == b'+' => {
                let start = i;
                i += 1;
                while i < b.len() && (b[i].is_ascii_digit() || b[i] == b'.') {
                    i += 1;
                }
                let n: f64 = s[start..i]
                    .parse()
                    .map_err(|_| TemplateError::Parse(format!("bad number {:?}", &s[start..i])))?;
                toks.push(Tok::Num(n));
            }
            c if c.is_ascii_alphabetic() || c == b'_' => {
                let start = i;
                while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
                    i += 1;
                }
                toks.push(Tok::Ident(s[start..i].to_string()));
            }
            _ => {
                let ch = s[i..].chars().next().unwrap_or('?');
                return perr(format!("unexpected {ch:?} in command"));
            }
        }
    }
    Ok(toks)
}

// ---- parsing ----

struct Parser {
    pieces: Vec<Piece>,
    at: usize,
}

const FUNCS: &[&str] = &[
    "json", "join", "split", "lower", "upper", "title", "truncate", "pad", "println", "print",
    "printf", "index", "len", "eq", "ne", "lt", "le", "gt", "ge", "and", "or", "not",
];

impl Parser {
    /// Nodes up to an `end`/`else` (returned, so the caller knows which) or the end.
    fn list(&mut self) -> Res<(Vec<Node>, Option<String>)> {
        let mut nodes = Vec::new();
        while self.at < self.pieces.len() {
            let piece = &self.pieces[self.at];
            self.at += 1;
            match piece {
                Piece::Text(t) => nodes.push(Node::Text(t.clone())),
                Piece::Action(a) => {
                    let a = a.clone();
                    let (word, rest) = match a.split_once(char::is_whitespace) {
                        Some((w, r)) => (w, r.trim()),
                        None => (a.as_str(), ""),
                    };
                    match word {
                        "end" => return Ok((nodes, Some("end".into()))),
                        "else" => return Ok((nodes, Some(format!("else {rest}").trim().into()))),
                        "if" | "range" | "with" => nodes.push(self.block(word, rest)?),
                        _ => nodes.push(Node::Action(pipeline(&lex(&a)?, true)?)),
                    }
                }
            }
        }
        Ok((nodes, None))
    }

    fn block(&mut self, word: &str, rest: &str) -> Res<Node> {
        if rest.is_empty() {
            return perr(format!("missing value for {word}"));
        }
        let pipe = pipeline(&lex(rest)?, true)?;
        let (body, end) = self.list()?;
        let els = match end.as_deref() {
            None => return perr(format!("unexpected EOF: {{{{{word}}}}} has no {{{{end}}}}")),
            Some("end") => Vec::new(),
            Some("else") => {
                let (els, end) = self.list()?;
                if end.as_deref() != Some("end") {
                    return perr(format!("{{{{else}}}} of {{{{{word}}}}} has no {{{{end}}}}"));
                }
                els
            }
            Some(other) => {
                // `else if …` / `else with …`: a nested block that shares this `end`.
                let inner = other.trim_start_matches("else").trim();
                let (w, r) = inner.split_once(char::is_whitespace).unwrap_or((inner, ""));
                if w != word || word == "range" {
                    return perr(format!("unexpected {{{{{other}}}}}"));
                }
                vec![self.block(w, r.trim())?]
            }
        };
        Ok(match word {
            "if" => Node::If(pipe, body, els),
            "range" => Node::Range(pipe, body, els),
            _ => Node::With(pipe, body, els),
        })
    }
}

fn pipeline(toks: &[Tok], top: bool) -> Res<Pipeline> {
    let mut decl = Vec::new();
    let mut toks = toks;
    if let Some(pos) = toks.iter().position(|t| *t == Tok::Decl) {
        let head = &toks[..pos];
        for (i, t) in head.iter().enumerate() {
            match (i % 2, t) {
                (0, Tok::Var(v, f)) if f.is_empty() => decl.push(v.clone()),
                (1, Tok::Comma) => {}
                _ => return perr("bad variable declaration"),
            }
        }
        if !top || decl.is_empty() || decl.len() > 2 {
            return perr("bad variable declaration");
        }
        toks = &toks[pos + 1..];
    }
    let mut cmds = Vec::new();
    let mut cur = Vec::new();
    let mut i = 0;
    while i < toks.len() {
        match &toks[i] {
            Tok::Pipe => {
                if cur.is_empty() {
                    return perr("missing command before |");
                }
                cmds.push(std::mem::take(&mut cur));
            }
            Tok::Open => {
                let mut depth = 0;
                let mut j = i;
                let close = loop {
                    match toks.get(j) {
                        Some(Tok::Open) => depth += 1,
                        Some(Tok::Close(f)) => {
                            depth -= 1;
                            if depth == 0 {
                                break f.clone();
                            }
                        }
                        None => return perr("unclosed left paren"),
                        _ => {}
                    }
                    j += 1;
                };
                cur.push(Arg::Sub(pipeline(&toks[i + 1..j], false)?, close));
                i = j;
            }
            Tok::Close(_) => return perr("unexpected right paren"),
            Tok::Field(f) => cur.push(Arg::Field(f.clone())),
            Tok::Var(v, f) => cur.push(Arg::Var(v.clone(), f.clone())),
            Tok::Str(s) => cur.push(Arg::Str(s.clone())),
            Tok::Num(n) => cur.push(Arg::Num(*n)),
            Tok::Ident(id) => cur.push(match id.as_str() {
                "true" => Arg::Bool(true),
                "false" => Arg::Bool(false),
                "nil" => Arg::Nil,
                f if FUNCS.contains(&f) => Arg::Func(f.to_string()),
                f => return perr(format!("function {f:?} not defined")),
            }),
            Tok::Decl | Tok::Comma => return perr("unexpected := or ,"),
        }
        i += 1;
    }
    if cur.is_empty() {
        return perr("missing value for command");
    }
    cmds.push(cur);
    Ok(Pipeline { decl, cmds })
}

// ---- execution ----

struct Scope {
    vars: Vec<(String, Value)>,
}

impl Scope {
    fn get(&self, name: &str) -> Res<Value> {
        match self.vars.iter().rev().find(|(n, _)| n == name) {
            Some((_, v)) => Ok(v.clone()),
            None => xerr(format!("undefined variable: {name}")),
        }
    }
}

fn exec(nodes: &[Node], dot: &Value, scope: &mut Scope, out: &mut String) -> Res<()> {
    for n in nodes {
        let mark = scope.vars.len();
        match n {
            Node::Text(t) => out.push_str(t),
            Node::Action(p) => {
                let v = eval_pipeline(p, dot, scope)?;
                if p.decl.is_empty() {
                    out.push_str(&print(&v));
                } else {
                    scope.vars.push((p.decl[0].clone(), v));
                    continue; // declared for the rest of this list
                }
            }
            Node::If(p, body, els) => {
                let v = eval_pipeline(p, dot, scope)?;
                declare(p, &v, scope);
                exec(if truth(&v) { body } else { els }, dot, scope, out)?;
            }
            Node::With(p, body, els) => {
                let v = eval_pipeline(p, dot, scope)?;
                declare(p, &v, scope);
                if truth(&v) {
                    exec(body, &v, scope, out)?;
                } else {
                    exec(els, dot, scope, out)?;
                }
            }
            Node::Range(p, body, els) => {
                let v = eval_pipeline(p, dot, scope)?;
                let items: Vec<(Value, Value)> = match &v {
                    Value::Array(a) => a
                        .iter()
                        .enumerate()
                        .map(|(i, e)| (Value::from(i), e.clone()))
                        .collect(),
                    // Go ranges over a map in key order.
                    Value::Object(m) => {
                        let mut keys: Vec<&String> = m.keys().collect();
                        keys.sort();
                        keys.into_iter()
                            .map(|k| (Value::from(k.clone()), m[k].clone()))
                            .collect()
                    }
                    Value::Null => Vec::new(),
                    Value::Number(n) => (0..n.as_u64().unwrap_or(0))
                        .map(|i| (Value::from(i), Value::from(i)))
                        .collect(),
                    other => return xerr(format!("range can't iterate over {}", print(other))),
                };
                if items.is_empty() {
                    exec(els, dot, scope, out)?;
                }
                for (k, e) in items {
                    let inner = scope.vars.len();
                    match p.decl.as_slice() {
                        [one] => scope.vars.push((one.clone(), e.clone())),
                        [i, el] => {
                            scope.vars.push((i.clone(), k));
                            scope.vars.push((el.clone(), e.clone()));
                        }
                        _ => {}
                    }
                    exec(body, &e, scope, out)?;
                    scope.vars.truncate(inner);
                }
            }
        }
        scope.vars.truncate(mark);
    }
    Ok(())
}

fn declare(p: &Pipeline, v: &Value, scope: &mut Scope) {
    if let Some(name) = p.decl.first() {
        scope.vars.push((name.clone(), v.clone()));
    }
}

fn eval_pipeline(p: &Pipeline, dot: &Value, scope: &Scope) -> Res<Value> {
    let mut last: Option<Value> = None;
    for cmd in &p.cmds {
        last = Some(eval_cmd(cmd, dot, scope, last)?);
    }
    Ok(last.unwrap_or(Value::Null))
}

fn walk(mut v: Value, path: &[String]) -> Res<Value> {
    for f in path {
        v = match v {
            Value::Object(mut m) => m.remove(f.as_str()).unwrap_or(Value::Null),
            Value::Null => Value::Null,
            other => {
                return xerr(format!(
                    "can't evaluate field {f} in type {}",
                    type_name(&other)
                ))
            }
        };
    }
    Ok(v)
}

fn eval_arg(a: &Arg, dot: &Value, scope: &Scope) -> Res<Value> {
    match a {
        Arg::Field(path) => walk(dot.clone(), path),
        Arg::Var(name, path) => walk(scope.get(name)?, path),
        Arg::Str(s) => Ok(Value::from(s.clone())),
        Arg::Num(n) => Ok(num(*n)),
        Arg::Bool(b) => Ok(Value::Bool(*b)),
        Arg::Nil => Ok(Value::Null),
        Arg::Sub(p, path) => walk(eval_pipeline(p, dot, scope)?, path),
        Arg::Func(f) => call(f, Vec::new()),
    }
}

fn eval_cmd(cmd: &[Arg], dot: &Value, scope: &Scope, piped: Option<Value>) -> Res<Value> {
    match &cmd[0] {
        Arg::Func(f) => {
            let mut args = cmd[1..]
                .iter()
                .map(|a| eval_arg(a, dot, scope))
                .collect::<Res<Vec<_>>>()?;
            args.extend(piped);
            call(f, args)
        }
        a => {
            if cmd.len() > 1 || piped.is_some() {
                return xerr("can't give arguments to a non-function");
            }
            eval_arg(a, dot, scope)
        }
    }
}

fn num(n: f64) -> Value {
    if n.fract() == 0.0 && n.abs() < 9e15 {
        Value::from(n as i64)
    } else {
        serde_json::Number::from_f64(n).map_or(Value::Null, Value::Number)
    }
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "nil",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "slice",
        Value::Object(_) => "map",
    }
}

fn truth(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64() != Some(0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(m) => !m.is_empty(),
    }
}

/// A value printed as Go's `fmt.Print` prints it.
fn print(v: &Value) -> String {
    match v {
        Value::Null => "<no value>".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.clone(),
        Value::Array(a) => format!("[{}]", a.iter().map(print).collect::<Vec<_>>().join(" ")),
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            let inner: Vec<String> = keys
                .into_iter()
                .map(|k| format!("{k}:{}", print(&m[k])))
                .collect();
            format!("map[{}]", inner.join(" "))
        }
    }
}

/// Go's `json.Marshal`: compact, with `<`, `>` and `&` escaped.
fn json(v: &Value) -> String {
    serde_json::to_string(v)
        .unwrap_or_default()
        .replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026")
}

fn as_str(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => print(other),
    }
}

fn compare(f: &str, a: &Value, b: &Value) -> Res<bool> {
    use std::cmp::Ordering;
    let ord = match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64().partial_cmp(&y.as_f64()),
        (Value::String(x), Value::String(y)) => Some(x.cmp(y)),
        (Value::Bool(x), Value::Bool(y)) if matches!(f, "eq" | "ne") => Some(x.cmp(y)),
        (Value::Null, Value::Null) if matches!(f, "eq" | "ne") => Some(Ordering::Equal),
        _ if matches!(f, "eq" | "ne") => return Ok((f == "ne") ^ (a == b)),
        _ => None,
    };
    let Some(ord) = ord else {
        return xerr(format!(
            "error calling {f}: incompatible types for comparison"
        ));
    };
    Ok(match f {
        "eq" => ord == Ordering::Equal,
        "ne" => ord != Ordering::Equal,
        "lt" => ord == Ordering::Less,
        "le" => ord != Ordering::Greater,
        "gt" => ord == Ordering::Greater,
        _ => ord != Ordering::Less,
    })
}

fn want(f: &str, args: &[Value], n: usize) -> Res<()> {
    if args.len() == n {
        Ok(())
    } else {
        xerr(format!(
            "wrong number of args for {f}: want {n} got {}",
            args.len()
        ))
    }
}

fn call(f: &str, args: Vec<Value>) -> Res<Value> {
    Ok(match f {
        "json" => {
            want(f, &args, 1)?;
            Value::from(json(&args[0]))
        }
        "join" => {
            want(f, &args, 2)?;
            let list = match &args[0] {
                Value::Array(a) => a.iter().map(as_str).collect::<Vec<_>>(),
                other => vec![as_str(other)],
            };
            Value::from(list.join(&as_str(&args[1])))
        }
        "split" => {
            want(f, &args, 2)?;
            let s = as_str(&args[0]);
            let sep = as_str(&args[1]);
            Value::from(
                s.split(sep.as_str())
                    .map(|p| Value::from(p.to_string()))
                    .collect::<Vec<_>>(),
            )
        }
        "lower" => {
            want(f, &args, 1)?;
            Value::from(as_str(&args[0]).to_lowercase())
        }
        "upper" => {
            want(f, &args, 1)?;
            Value::from(as_str(&args[0]).to_uppercase())
        }
        "title" => {
            want(f, &args, 1)?;
            let s = as_str(&args[0]);
            let mut out = String::new();
            let mut start = true;
            for c in s.chars() {
                if start {
                    out.extend(c.to_uppercase());
                } else {
                    out.push(c);
                }
                start = c.is_whitespace();
            }
            Value::from(out)
        }
        "truncate" => {
            want(f, &args, 2)?;
            let n = args[1].as_u64().unwrap_or(0) as usize;
            Value::from(as_str(&args[0]).chars().take(n).collect::<String>())
        }
        "pad" => {
            want(f, &args, 3)?;
            let before = " ".repeat(args[1].as_u64().unwrap_or(0) as usize);
            let after = " ".repeat(args[2].as_u64().unwrap_or(0) as usize);
            Value::from(format!("{before}{}{after}", as_str(&args[0])))
        }
        "print" | "println" => {
            // Go's Print puts spaces between operands when neither is a string.
            let mut s = String::new();
            for (i, a) in args.iter().enumerate() {
                let sep = f == "println" || (!a.is_string() && i > 0 && !args[i - 1].is_string());
                if i > 0 && sep {
                    s.push(' ');
                }
                s.push_str(&print(a));
            }
            if f == "println" {
                s.push('\n');
            }
            Value::from(s)
        }
        "printf" => {
            if args.is_empty() {
                return xerr("wrong number of args for printf: want at least 1 got 0");
            }
            Value::from(printf(&as_str(&args[0]), &args[1..]))
        }
        "index" => {
            if args.is_empty() {
                return xerr("wrong number of args for index: want at least 1 got 0");
            }
            let mut v = args[0].clone();
            for k in &args[1..] {
                v = match (&v, k) {
                    (Value::Array(a), Value::Number(n)) => {
                        let i = n.as_u64().unwrap_or(u64::MAX) as usize;
                        match a.get(i) {
                            Some(e) => e.clone(),
                            None => {
                                return xerr(format!(
                                    "error calling index: index out of range: {n}"
                                ))
                            }
                        }
                    }
                    (Value::Object(m), Value::String(s)) => {
                        m.get(s.as_str()).cloned().unwrap_or(Value::Null)
                    }
                    (Value::Null, _) => Value::Null,
                    (c, k) => {
                        return xerr(format!(
                            "error calling index: cannot index {} with {}",
                            type_name(c),
                            type_name(k)
                        ))
                    }
                };
            }
            v
        }
        "len" => {
            want(f, &args, 1)?;
            Value::from(match &args[0] {
                Value::Array(a) => a.len(),
                Value::Object(m) => m.len(),
                Value::String(s) => s.len(),
                other => {
                    return xerr(format!(
                        "error calling len: len of type {}",
                        type_name(other)
                    ))
                }
            })
        }
        "eq" | "ne" | "lt" | "le" | "gt" | "ge" => {
            want(f, &args, 2)?;
            Value::Bool(compare(f, &args[0], &args[1])?)
        }
        "not" => {
            want(f, &args, 1)?;
            Value::Bool(!truth(&args[0]))
        }
        // Go returns the first falsy (and) / truthy (or) operand, else the last.
        "and" => args
            .iter()
            .find(|a| !truth(a))
            .or(args.last())
            .cloned()
            .unwrap_or(Value::Null),
        "or" => args
            .iter()
            .find(|a| truth(a))
            .or(args.last())
            .cloned()
            .unwrap_or(Value::Null),
        other => return xerr(format!("function {other:?} not defined")),
    })
}

fn printf(fmt: &str, args: &[Value]) -> String {
    let mut out = String::new();
    let mut it = args.iter();
    let mut chars = fmt.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('%') => out.push('%'),
            Some(verb @ ('s' | 'd' | 'v' | 'q')) => match it.next() {
                Some(a) if verb == 'q' => out.push_str(&format!("{:?}", as_str(a))),
                Some(a) => out.push_str(&print(a)),
                None => out.push_str(&format!("%!{verb}(MISSING)")),
            },
            Some(other) => out.push_str(&format!("%!{other}(unsupported)")),
            None => out.push_str("%!(NOVERB)"),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn render(t: &str, v: &Value) -> String {
        Template::parse(t).unwrap().render(v).unwrap()
    }

    fn container() -> Value {
        json!({
            "Id": "abc",
            "State": {"Status": "running", "Pid": 42, "Running": true, "ExitCode": 0},
            "Config": {"Env": ["A=1", "PATH=/bin"], "Labels": {"b": "2", "a": "1"}, "Cmd": null},
            "Mounts": [{"Type": "bind", "Source": "/h", "Destination": "/c"}],
            "Name": "/web"
        })
    }

    #[test]
    fn fields_and_json_print_as_docker_does() {
        let c = container();
        assert_eq!(render("{{.State.Status}} {{.State.Pid}}", &c), "running 42");
        assert_eq!(
            render("{{json .Mounts}}", &c),
            r#"[{"Type":"bind","Source":"/h","Destination":"/c"}]"#
        );
        assert_eq!(render("{{.Config.Cmd}}", &c), "<no value>");
        assert_eq!(render("{{.Nope.Deeper}}", &c), "<no value>");
        assert_eq!(render("{{.Config.Env}}", &c), "[A=1 PATH=/bin]");
        assert_eq!(render("{{.Config.Labels}}", &c), "map[a:1 b:2]");
        assert_eq!(
            render("{{json \"<a&b>\"}}", &c),
            r#""\u003ca\u0026b\u003e""#
        );
    }

    #[test]
    fn range_index_if_with_and_variables() {
        let c = container();
        assert_eq!(
            render("{{range .Config.Env}}{{println .}}{{end}}", &c),
            "A=1\nPATH=/bin\n"
        );
        assert_eq!(
            render(
                "{{range $k, $v := .Config.Labels}}{{$k}}={{$v}};{{end}}",
                &c
            ),
            "a=1;b=2;"
        );
        assert_eq!(render("{{index .Config.Labels \"b\"}}", &c), "2");
        assert_eq!(render("{{index .Config.Env 1}}", &c), "PATH=/bin");
        assert_eq!(render("{{(index .Mounts 0).Source}}", &c), "/h");
        assert_eq!(
            render("{{if .State.Running}}up{{else}}down{{end}}", &c),
            "up"
        );
        assert_eq!(
            render(
                "{{if eq .State.ExitCode 1}}one{{else if eq .State.ExitCode 0}}zero{{else}}?{{end}}",
                &c
            ),
            "zero"
        );
        assert_eq!(render("{{with .State}}{{.Pid}}{{end}}", &c), "42");
        assert_eq!(
            render("{{with .Config.Cmd}}x{{else}}no cmd{{end}}", &c),
            "no cmd"
        );
        assert_eq!(
            render("{{range .Config.Cmd}}x{{else}}none{{end}}", &c),
            "none"
        );
        assert_eq!(render("{{$n := .Name}}{{$n}}{{$.Id}}", &c), "/webabc");
        assert_eq!(
            render("{{range .Mounts}}{{$.Id}}:{{.Destination}}{{end}}", &c),
            "abc:/c"
        );
    }

    #[test]
    fn functions_pipelines_and_trimming() {
        let c = container();
        assert_eq!(render("{{join .Config.Env \",\"}}", &c), "A=1,PATH=/bin");
        assert_eq!(render("{{.Name | upper}}", &c), "/WEB");
        assert_eq!(render("{{len .Mounts}}", &c), "1");
        assert_eq!(
            render("{{printf \"%s-%d%%\" .Id .State.Pid}}", &c),
            "abc-42%"
        );
        assert_eq!(render("a  {{- .Id -}}  b", &c), "aabcb");
        assert_eq!(render("{{/* a comment */}}x", &c), "x");
        assert_eq!(render("{{truncate .Id 2}}", &c), "ab");
        assert_eq!(render("{{split \"a:b\" \":\"}}", &c), "[a b]");
        assert_eq!(render("{{not .State.Running}}", &c), "false");
        assert_eq!(render("{{and .Id .Name}}", &c), "/web");
        assert_eq!(render("{{or .Config.Cmd \"none\"}}", &c), "none");
        assert_eq!(render("{{print 1 2 \"x\"}}", &c), "1 2x");
    }

    #[test]
    fn bad_templates_say_what_is_wrong() {
        let msg = |t: &str| match Template::parse(t) {
            Err(e) => e.to_string(),
            Ok(p) => p.render(&container()).unwrap_err().to_string(),
        };
        assert!(msg("{{.Id").contains("unclosed action"));
        assert!(msg("{{nope .Id}}").contains("\"nope\" not defined"));
        assert!(msg("{{if .Id}}x").contains("no {{end}}"));
        assert!(msg("{{end}}").contains("unexpected {{end}}"));
        assert!(msg("{{index .Config.Env 5}}").contains("index out of range"));
        assert!(msg("{{.Id.Deeper}}").contains("can't evaluate field Deeper"));
        assert!(msg("{{$x}}").contains("undefined variable"));
    }

    #[test]
    fn docker_tables_get_a_header_and_aligned_columns() {
        let t = Template::parse_docker("table {{.ID}}\\t{{.Names}}").unwrap();
        assert!(t.table);
        let headers = json!({"ID": "CONTAINER ID", "Names": "NAMES"});
        let rows = [
            json!({"ID": "abc", "Names": "web"}),
            json!({"ID": "0123456789abcd", "Names": "db"}),
        ];
        assert_eq!(
            render_rows(&t, &headers, &rows).unwrap(),
            "CONTAINER ID     NAMES\nabc              web\n0123456789abcd   db\n"
        );
        let plain = Template::parse_docker("{{.ID}}: {{.Names}}").unwrap();
        assert_eq!(
            render_rows(&plain, &headers, &rows).unwrap(),
            "abc: web\n0123456789abcd: db\n"
        );
    }
}
