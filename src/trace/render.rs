//! `dockling trace render`: a JSON trace (`--trace=json`, `--trace-file`) drawn as one
//! self-contained SVG, for people and for the book's figures.
//!
//! Two parts. A **timeline**: one lane per subsystem, named as the trace names them and in
//! the order they first appear; in a lane, a row per step, a bar from the step's start
//! (`at_us`) to the start of the next step of the same process (the last one to its last
//! call's end), labelled with the step's title from the catalog in the chosen language, and a
//! tick per syscall at the time it began (red when it failed). A **panel**: the namespaces the
//! container got, read from the `CLONE_NEW*` flags of the `clone` and `unshare` calls that
//! succeeded, and the mounts it ends with, replayed from the `mount`/`umount2` calls (a
//! remount changes a mount's options; a propagation change is not a mount; after
//! `pivot_root` only what lies under the new root is left, shown relative to it).
//!
//! The output depends on the input only: no time of rendering, lanes and rows in trace order,
//! every text escaped for XML, no external font, script or stylesheet. `Layout::Order` puts
//! events at equal distances in their order instead of at their times, for traces whose
//! times were taken out (the book's figures: see `tests/lessons.rs`).
//!
//! The renderer only reads the trace: it makes no syscall that shapes anything, so it is not
//! behind the kernel seam.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::catalog::Catalog;

/// A file that cannot be drawn as a trace.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    /// A line that is not a JSON trace event.
    #[error("{file} line {line} is not a trace event ({why}): give the file `dockling run --trace-file FILE` (or `--trace=json`) wrote")]
    NotTrace {
        /// The file, as given.
        file: String,
        /// Its line number, from 1.
        line: usize,
        /// What is wrong with it.
        why: String,
    },
    /// A trace without a single step or syscall.
    #[error("{file} holds no steps or syscalls to draw: give the trace of a `dockling run` or `exec` (`--trace-file FILE`)")]
    Empty {
        /// The file, as given.
        file: String,
    },
}

/// Where events sit along the time axis.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// At their `at_us` times (the axis in milliseconds).
    Time,
    /// At equal distances, in the order they happened (the axis counts events).
    Order,
}

/// One event of the trace, the keys the picture needs.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct Event {
    v: Option<u64>,
    #[serde(rename = "type")]
    kind: Option<String>,
    process: Option<String>,
    subsystem: Option<String>,
    step: Option<String>,
    title: Option<String>,
    variant: Option<String>,
    syscall: Option<String>,
    args: Option<String>,
    result: Option<i64>,
    errno: Option<String>,
    at_us: Option<u64>,
    duration_us: Option<u64>,
}

/// The events of a JSON trace, in the order they were written; `file` names it in errors.
/// Registry (`http`) events and notes are kept but not drawn.
pub fn parse(file: &str, text: &str) -> Result<Vec<Event>, RenderError> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let bad = |why: String| RenderError::NotTrace {
            file: file.to_string(),
            line: n + 1,
            why,
        };
        let event: Event = serde_json::from_str(line).map_err(|e| bad(e.to_string()))?;
        if event.v.is_none() || event.kind.is_none() {
            return Err(bad("no \"v\" and \"type\" keys".into()));
        }
        out.push(event);
    }
    if !out
        .iter()
        .any(|e| matches!(e.kind.as_deref(), Some("step" | "syscall")))
    {
        return Err(RenderError::Empty {
            file: file.to_string(),
        });
    }
    Ok(out)
}

/// A step's bar.
struct Bar {
    process: String,
    subsystem: String,
    key: String,
    title: String,
    start: u64,
    end: u64,
    /// (time, failed)
    ticks: Vec<(u64, bool)>,
}

/// A mount the container ends with.
#[derive(Debug, Clone, PartialEq)]
struct Mount {
    target: String,
    kind: String,
    source: String,
    readonly: bool,
}

/// The namespace kinds, by their clone flag, in the order `/proc/PID/ns` lists the usual ones.
const NAMESPACES: &[(&str, &str)] = &[
    ("CLONE_NEWNS", "mnt"),
    ("CLONE_NEWUTS", "uts"),
    ("CLONE_NEWIPC", "ipc"),
    ("CLONE_NEWPID", "pid"),
    ("CLONE_NEWNET", "net"),
    ("CLONE_NEWCGROUP", "cgroup"),
    ("CLONE_NEWUSER", "user"),
    ("CLONE_NEWTIME", "time"),
];

/// The bars, lanes (subsystems in order of first appearance) and the axis's end.
fn timeline(events: &[Event], catalog: &Catalog, layout: Layout) -> (Vec<Bar>, u64, u64) {
    // Steps and syscalls, by time (stable: events of one time keep the trace's order).
    let mut drawn: Vec<&Event> = events
        .iter()
        .filter(|e| matches!(e.kind.as_deref(), Some("step" | "syscall")))
        .collect();
    let mut last = 0;
    let mut times: Vec<u64> = drawn
        .iter()
        .map(|e| {
            last = e.at_us.unwrap_or(last);
            last
        })
        .collect();
    let mut order: Vec<usize> = (0..drawn.len()).collect();
    order.sort_by_key(|&i| times[i]);
    drawn = order.iter().map(|&i| drawn[i]).collect();
    times = order.iter().map(|&i| times[i]).collect();
    let (at, took): (Vec<u64>, Vec<u64>) = match layout {
        Layout::Time => (
            times,
            drawn.iter().map(|e| e.duration_us.unwrap_or(0)).collect(),
        ),
        Layout::Order => ((0..drawn.len() as u64).collect(), vec![0; drawn.len()]),
    };
    let mut bars: Vec<Bar> = Vec::new();
    // The open bar of each process.
    let mut open: BTreeMap<String, usize> = BTreeMap::new();
    for (i, e) in drawn.iter().enumerate() {
        let process = e.process.clone().unwrap_or_else(|| "engine".into());
        let key = e.step.clone().unwrap_or_default();
        let is_step = e.kind.as_deref() == Some("step");
        let current = open.get(&process).copied();
        let same = current.is_some_and(|b| bars[b].key == key);
        if is_step || !same {
            if let Some(b) = current {
                bars[b].end = bars[b].end.max(at[i]);
            }
            let lookup = match &e.variant {
                Some(v) => format!("{key}:{v}"),
                None => key.clone(),
            };
            let title = catalog
                .step(&lookup)
                .map(|s| s.title.clone())
                .or_else(|| e.title.clone())
                .unwrap_or_else(|| key.clone());
            let subsystem = e
                .subsystem
                .clone()
                .or_else(|| key.split('.').next().map(str::to_string))
                .unwrap_or_default();
            bars.push(Bar {
                process: process.clone(),
                subsystem,
                key: key.clone(),
                title,
                start: at[i],
                end: at[i],
                ticks: Vec::new(),
            });
            open.insert(process, bars.len() - 1);
        }
        let b = open[e.process.as_deref().unwrap_or("engine")];
        if !is_step {
            let failed = e.result == Some(-1) || e.errno.is_some();
            bars[b].ticks.push((at[i], failed));
        }
        bars[b].end = bars[b].end.max(at[i] + took[i]);
    }
    let start = bars.iter().map(|b| b.start).min().unwrap_or(0);
    let end = bars.iter().map(|b| b.end).max().unwrap_or(0).max(start + 1);
    (bars, start, end)
}

/// The top-level arguments of a strace-style argument text: `"x" /* y */` counts as one, and
/// commas inside quotes or comments do not split.
fn split_args(args: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut chars = args.chars().peekable();
    let (mut quoted, mut comment) = (false, false);
    while let Some(c) = chars.next() {
        match c {
            '\\' if quoted => {
                cur.push(c);
                if let Some(n) = chars.next() {
                    cur.push(n);
                }
                continue;
            }
            '"' if !comment => quoted = !quoted,
            '/' if !quoted && !comment && chars.peek() == Some(&'*') => comment = true,
            '/' if comment && cur.ends_with('*') => comment = false,
            ',' if !quoted && !comment => {
                out.push(cur.trim().to_string());
                cur.clear();
                continue;
            }
            _ => {}
        }
        cur.push(c);
    }
    if !cur.trim().is_empty() {
        out.push(cur.trim().to_string());
    }
    out
}

/// A path argument: what a `/* ... */` comment says it is (the path a `/proc/self/fd/N`
/// stands for), else the quoted string; `None` for `NULL`.
fn path_arg(arg: &str) -> Option<String> {
    if let (Some(a), Some(b)) = (arg.find("/*"), arg.rfind("*/")) {
        if a + 2 <= b {
            return Some(arg[a + 2..b].trim().to_string());
        }
    }
    let s = arg.trim();
    let inner = s.strip_prefix('"')?.strip_suffix('"')?;
    Some(inner.replace("\\\"", "\"").replace("\\\\", "\\"))
}

/// `path` relative to `root` (`/` for the root itself), when it lies under it.
fn under(root: &str, path: &str) -> Option<String> {
    let root = root.trim_end_matches('/');
    if path == root {
        return Some("/".into());
    }
    path.strip_prefix(root)
        .filter(|rest| rest.starts_with('/'))
        .map(str::to_string)
}

/// The namespaces the container got: (kind, the call that made it), for each kind.
fn namespaces(events: &[Event]) -> Vec<(&'static str, Option<String>)> {
    let mut got: BTreeMap<&str, String> = BTreeMap::new();
    for e in events {
        let Some(call @ ("clone" | "clone3" | "unshare")) = e.syscall.as_deref() else {
            continue;
        };
        if e.result == Some(-1) || e.errno.is_some() {
            continue;
        }
        let args = e.args.as_deref().unwrap_or("");
        for word in args.split(|c: char| !(c.is_ascii_uppercase() || c == '_')) {
            if let Some((_, kind)) = NAMESPACES.iter().find(|(flag, _)| *flag == word) {
                got.entry(kind).or_insert_with(|| call.to_string());
            }
        }
    }
    NAMESPACES
        .iter()
        .filter(|(_, kind)| got.contains_key(kind) || !matches!(*kind, "user" | "time"))
        .map(|(_, kind)| (*kind, got.get(kind).cloned()))
        .collect()
}

/// The mounts the container ends with, in the order they were made.
fn mounts(events: &[Event]) -> Vec<Mount> {
    let mut list: Vec<Mount> = Vec::new();
    let mut root: Option<String> = None;
    let mut cwd: Option<String> = None;
    let mut pivoted = false;
    for e in events {
        let ok = e.result != Some(-1) && e.errno.is_none();
        let args = split_args(e.args.as_deref().unwrap_or(""));
        match e.syscall.as_deref() {
            Some("chdir") if ok => cwd = args.first().and_then(|a| path_arg(a)),
            Some("pivot_root") if ok => {
                if let Some(dir) = cwd.clone() {
                    root = Some(dir);
                    pivoted = true;
                }
            }
            Some("umount2") if ok => {
                let target = args.first().and_then(|a| path_arg(a)).unwrap_or_default();
                if pivoted && target == "." {
                    // The old root, stacked on the new one by pivot_root(".", "."): the host's
                    // mounts go with it; only the new root's are left.
                    let root = root.clone().unwrap_or_default();
                    list.retain(|m| under(&root, &m.target).is_some());
                } else {
                    list.retain(|m| m.target != target);
                }
            }
            Some("mount") if ok && args.len() >= 4 => {
                let source = path_arg(&args[0]);
                let Some(target) = path_arg(&args[1]) else {
                    continue;
                };
                let fstype = path_arg(&args[2]);
                let flags = &args[3];
                let has = |f: &str| flags.split('|').any(|w| w.trim() == f);
                if has("MS_REMOUNT") {
                    if let Some(m) = list.iter_mut().rev().find(|m| m.target == target) {
                        m.readonly = has("MS_RDONLY");
                    }
                    continue;
                }
                let kind = if has("MS_BIND") {
                    "bind".to_string()
                } else if let Some(t) = fstype {
                    t
                } else {
                    // MS_PRIVATE, MS_SLAVE...: a propagation change, not a mount.
                    continue;
                };
                if root.is_none() && kind == "overlay" {
                    root = Some(target.clone());
                }
                list.push(Mount {
                    target,
                    kind,
                    source: source.unwrap_or_default(),
                    readonly: has("MS_RDONLY"),
                });
            }
            _ => {}
        }
    }
    let Some(root) = root else {
        return list;
    };
    list.into_iter()
        .filter_map(|mut m| {
            m.target = under(&root, &m.target)?;
            m.source = match under(&root, &m.source) {
                Some(inside) => inside,
                None if m.kind == "bind" => match m.source.rsplit_once('/') {
                    Some((_, name)) => format!("host …/{name}"),
                    None => m.source,
                },
                None if m.source.starts_with('/') || m.source.len() > 24 => m.kind.clone(),
                None => m.source,
            };
            Some(m)
        })
        .collect()
}

/// `text` escaped for XML text and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c if (c as u32) < 0x20 && c != '\n' && c != '\t' => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    out
}

/// How wide `text` is at font size 11, roughly: CJK characters count double.
fn text_width(text: &str) -> f64 {
    text.chars()
        .map(|c| if (c as u32) >= 0x1100 { 11.0 } else { 6.2 })
        .sum()
}

/// `text` cut to `width` pixels with an ellipsis.
fn fit(text: &str, width: f64) -> String {
    if text_width(text) <= width {
        return text.to_string();
    }
    let mut out = String::new();
    for c in text.chars() {
        if text_width(&out) + text_width(&c.to_string()) + 6.2 > width {
            break;
        }
        out.push(c);
    }
    out.push('…');
    out
}

/// A lane's colour (fill, and a darker one for its ticks and header).
const PALETTE: &[(&str, &str)] = &[
    ("#9ecae1", "#08519c"),
    ("#a1d99b", "#006d2c"),
    ("#fdae6b", "#a63603"),
    ("#bcbddc", "#54278f"),
    ("#fc9fb5", "#a50f15"),
    ("#c7e9c0", "#00441b"),
    ("#fdd0a2", "#7f2704"),
    ("#d9d9d9", "#252525"),
];

const WIDTH: f64 = 900.0;
const LABEL_W: f64 = 330.0;
const PLOT_X: f64 = 350.0;
const PLOT_W: f64 = 530.0;
const ROW: f64 = 18.0;

/// The SVG of a parsed trace.
pub fn svg(events: &[Event], catalog: &Catalog, layout: Layout) -> String {
    let (bars, t0, t1) = timeline(events, catalog, layout);
    let x = |t: u64| PLOT_X + (t.saturating_sub(t0)) as f64 / (t1 - t0) as f64 * PLOT_W;
    let mut lanes: Vec<&str> = Vec::new();
    for b in &bars {
        if !lanes.contains(&b.subsystem.as_str()) {
            lanes.push(&b.subsystem);
        }
    }
    let calls: usize = bars.iter().map(|b| b.ticks.len()).sum();
    let mut body = String::new();
    let mut y = 20.0;
    let (steps, calls_text) = (bars.len().to_string(), calls.to_string());
    let heading = match layout {
        Layout::Time => catalog.render(
            "summary.time",
            &[
                ("steps", &steps),
                ("calls", &calls_text),
                ("ms", &format!("{:.1}", (t1 - t0) as f64 / 1000.0)),
            ],
        ),
        Layout::Order => catalog.render(
            "summary.order",
            &[("steps", &steps), ("calls", &calls_text)],
        ),
    };
    let _ = writeln!(
        body,
        r#"<text x="10" y="{y}" class="dt-h">{}</text>"#,
        escape(&catalog.render("timeline", &[("summary", &heading)]))
    );
    y += 22.0;
    // The axis: five ticks.
    for i in 0..=4 {
        let t = t0 + (t1 - t0) * i / 4;
        let label = match layout {
            Layout::Time => format!("{:.1} ms", (t - t0) as f64 / 1000.0),
            Layout::Order => catalog.render("axis.event", &[("n", &(t - t0).to_string())]),
        };
        let anchor = match i {
            0 => "start",
            4 => "end",
            _ => "middle",
        };
        let _ = writeln!(
            body,
            r#"<line x1="{0:.1}" y1="{1}" x2="{0:.1}" y2="{2}" class="dt-grid"/><text x="{0:.1}" y="{3}" class="dt-s" text-anchor="{anchor}">{4}</text>"#,
            x(t),
            y,
            y + 6.0,
            y - 3.0,
            escape(&label)
        );
    }
    let grid_top = y;
    y += 8.0;
    for (li, lane) in lanes.iter().enumerate() {
        let (fill, dark) = PALETTE[li % PALETTE.len()];
        let _ = writeln!(
            body,
            r#"<g class="dt-lane" data-subsystem="{0}"><rect x="0" y="{1}" width="{WIDTH}" height="{ROW}" fill="{fill}" fill-opacity="0.35"/><text x="8" y="{2}" class="dt-lh" fill="{dark}">{0}</text>"#,
            escape(lane),
            y,
            y + 13.0
        );
        y += ROW;
        for b in bars.iter().filter(|b| b.subsystem == *lane) {
            let (x1, x2) = (x(b.start), x(b.end));
            let w = (x2 - x1).max(2.0);
            let who = if b.process == "engine" {
                String::new()
            } else {
                format!(" [{}]", b.process)
            };
            let _ = writeln!(
                body,
                r#"<g class="dt-step" data-step="{key}"><title>{key}{who}: {full}</title><text x="18" y="{ty}" class="dt-t">{label}</text><rect x="{x1:.1}" y="{ry}" width="{w:.1}" height="12" rx="2" fill="{fill}" stroke="{dark}" stroke-width="0.6"/>"#,
                key = escape(&b.key),
                who = escape(&who),
                full = escape(&b.title),
                ty = y + 13.0,
                label = escape(&fit(&format!("{}{}", b.title, who), LABEL_W - 18.0)),
                ry = y + 3.0,
            );
            for (t, failed) in &b.ticks {
                let colour = if *failed { "#d62728" } else { dark };
                let _ = writeln!(
                    body,
                    r#"<line x1="{0:.1}" y1="{1}" x2="{0:.1}" y2="{2}" stroke="{colour}" stroke-width="1"/>"#,
                    x(*t),
                    y + 1.0,
                    y + 17.0
                );
            }
            body.push_str("</g>\n");
            y += ROW;
        }
        body.push_str("</g>\n");
    }
    let _ = writeln!(
        body,
        r#"<line x1="{PLOT_X}" y1="{grid_top}" x2="{PLOT_X}" y2="{y}" class="dt-grid"/>"#
    );
    y += 24.0;

    // The panel: namespaces, then mounts.
    let _ = writeln!(
        body,
        r#"<text x="10" y="{y}" class="dt-h">{}</text>"#,
        escape(&catalog.render("namespaces", &[]))
    );
    y += 8.0;
    let ns = namespaces(events);
    let chip_w = (WIDTH - 20.0) / ns.len().max(1) as f64;
    for (i, (kind, how)) in ns.iter().enumerate() {
        let cx = 10.0 + i as f64 * chip_w;
        let (fill, line2) = match how {
            Some(call) => (
                "#a1d99b",
                catalog.render("namespace.new", &[("call", call)]),
            ),
            None => ("#eeeeee", catalog.render("namespace.host", &[])),
        };
        let _ = writeln!(
            body,
            r##"<g class="dt-ns" data-ns="{kind}" data-new="{new}"><rect x="{cx:.1}" y="{y}" width="{w:.1}" height="34" rx="4" fill="{fill}" stroke="#777" stroke-width="0.6"/><text x="{tx:.1}" y="{y1}" class="dt-lh" text-anchor="middle">{kind}</text><text x="{tx:.1}" y="{y2}" class="dt-s" text-anchor="middle">{line2}</text></g>"##,
            new = how.is_some(),
            w = chip_w - 6.0,
            tx = cx + (chip_w - 6.0) / 2.0,
            y1 = y + 14.0,
            y2 = y + 28.0,
            line2 = escape(&line2),
        );
    }
    y += 34.0 + 26.0;
    let list = mounts(events);
    let _ = writeln!(
        body,
        r#"<text x="10" y="{y}" class="dt-h">{}</text>"#,
        escape(&catalog.render("mounts", &[("n", &list.len().to_string())]))
    );
    y += 6.0;
    let half = list.len().div_ceil(2);
    let col_w = (WIDTH - 20.0) / 2.0;
    for (i, m) in list.iter().enumerate() {
        let (col, row) = if list.len() > 12 {
            (i / half, i % half)
        } else {
            (0, i)
        };
        let mx = 10.0 + col as f64 * col_w;
        let my = y + row as f64 * 16.0 + 13.0;
        let what = format!(
            "{}{}{}",
            m.kind,
            if m.readonly { ", ro" } else { "" },
            if m.source.is_empty() || m.source == m.kind {
                String::new()
            } else {
                format!(" ← {}", m.source)
            }
        );
        let _ = writeln!(
            body,
            r#"<g class="dt-mount" data-target="{t}" data-type="{k}"><text x="{mx:.1}" y="{my:.1}" class="dt-m">{tf}</text><text x="{wx:.1}" y="{my:.1}" class="dt-s">{wf}</text></g>"#,
            t = escape(&m.target),
            k = escape(&m.kind),
            tf = escape(&fit(&m.target, 170.0)),
            wx = mx + 175.0,
            wf = escape(&fit(&what, col_w - 185.0)),
        );
    }
    let rows = if list.len() > 12 { half } else { list.len() };
    y += rows as f64 * 16.0 + 16.0;

    let mut out = String::new();
    let _ = writeln!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{y}" viewBox="0 0 {WIDTH} {y}" class="dockling-trace" style="max-width:100%;height:auto" role="img" font-family="sans-serif" font-size="11">"#
    );
    // Class names of its own, scoped to the picture: an SVG inlined in a page shares its CSS.
    out.push_str("<style>.dockling-trace .dt-h{font-weight:bold;font-size:13px}.dockling-trace .dt-lh{font-weight:bold;font-size:11px}.dockling-trace .dt-t{font-size:11px;fill:#222}.dockling-trace .dt-s{font-size:10px;fill:#444}.dockling-trace .dt-m{font-family:monospace;font-size:11px}.dockling-trace .dt-grid{stroke:#bbb;stroke-width:0.5}</style>\n");
    let _ = writeln!(
        out,
        r##"<rect x="0" y="0" width="{WIDTH}" height="{y}" fill="#ffffff"/>"##
    );
    out.push_str(&body);
    out.push_str("</svg>\n");
    out
}

/// `file`'s trace as an SVG: read, checked, drawn.
pub fn render_file(
    file: &std::path::Path,
    catalog: &Catalog,
    layout: Layout,
) -> Result<String, crate::error::Error> {
    let text = std::fs::read(file).map_err(crate::error::Error::io("read the trace", file))?;
    let name = file.display().to_string();
    let text = String::from_utf8(text).map_err(|_| RenderError::NotTrace {
        file: name.clone(),
        line: 1,
        why: "not UTF-8 text".into(),
    })?;
    let events = parse(&name, &text)?;
    Ok(svg(&events, catalog, layout))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn catalog(lang: &str) -> Catalog {
        let src = super::super::catalog::LANGUAGES
            .iter()
            .find(|(l, _)| *l == lang)
            .unwrap()
            .1;
        Catalog::parse(src).unwrap()
    }

    /// A small trace, by hand: two subsystems of the engine, one of the container, a failed
    /// call, a new root with two mounts, a bind and a remount, and a host mount dropped by
    /// the pivot.
    const TRACE: &str = r#"{"v":1,"type":"step","process":"engine","subsystem":"image","step":"image.resolve","title":"x","at_us":1000}
{"v":1,"type":"note","process":"engine","step":"image.resolve","message":"busybox"}
{"v":1,"type":"step","process":"engine","subsystem":"namespaces","step":"namespaces.clone","title":"x","at_us":2000}
{"v":1,"type":"syscall","process":"engine","subsystem":"namespaces","step":"namespaces.clone","syscall":"clone","args":"child_stack=NULL, flags=CLONE_NEWNS|CLONE_NEWPID|CLONE_NEWNET|SIGCHLD","result":42,"errno":null,"duration_us":50,"at_us":2100}
{"v":1,"type":"step","process":"container","subsystem":"rootfs","step":"rootfs.mounts","title":"x","at_us":3000}
{"v":1,"type":"syscall","process":"container","subsystem":"rootfs","step":"rootfs.mounts","syscall":"unshare","args":"CLONE_NEWCGROUP","result":0,"errno":null,"duration_us":5,"at_us":3010}
{"v":1,"type":"syscall","process":"container","subsystem":"rootfs","step":"rootfs.mounts","syscall":"mount","args":"\"overlay\", \"/s/c/rootfs\", \"overlay\", 0, \"lowerdir=/s/l\"","result":0,"errno":null,"duration_us":5,"at_us":3020}
{"v":1,"type":"syscall","process":"container","subsystem":"rootfs","step":"rootfs.mounts","syscall":"mount","args":"\"proc\", \"/proc/self/fd/6\" /* /s/c/rootfs/proc */, \"proc\", MS_NOSUID, NULL","result":0,"errno":null,"duration_us":5,"at_us":3030}
{"v":1,"type":"syscall","process":"container","subsystem":"rootfs","step":"rootfs.mounts","syscall":"mount","args":"NULL, \"/\", NULL, MS_REC|MS_PRIVATE, NULL","result":0,"errno":null,"duration_us":5,"at_us":3035}
{"v":1,"type":"syscall","process":"container","subsystem":"rootfs","step":"rootfs.mounts","syscall":"mount","args":"\"/s/c/hosts\", \"/proc/self/fd/6\" /* /s/c/rootfs/etc/hosts */, NULL, MS_BIND|MS_REC, NULL","result":0,"errno":null,"duration_us":5,"at_us":3040}
{"v":1,"type":"syscall","process":"container","subsystem":"rootfs","step":"rootfs.mounts","syscall":"mount","args":"NULL, \"/proc/self/fd/8\" /* /s/c/rootfs/etc/hosts */, NULL, MS_RDONLY|MS_BIND|MS_REMOUNT, NULL","result":0,"errno":null,"duration_us":5,"at_us":3045}
{"v":1,"type":"syscall","process":"container","subsystem":"rootfs","step":"rootfs.mounts","syscall":"mount","args":"\"tmpfs\", \"/elsewhere\", \"tmpfs\", 0, NULL","result":0,"errno":null,"duration_us":5,"at_us":3050}
{"v":1,"type":"syscall","process":"container","subsystem":"rootfs","step":"rootfs.mounts","syscall":"mount","args":"\"sysfs\", \"/s/c/rootfs/sys\", \"sysfs\", 0, NULL","result":-1,"errno":"EPERM","duration_us":5,"at_us":3060}
{"v":1,"type":"step","process":"container","subsystem":"rootfs","step":"rootfs.pivot_root","title":"x","at_us":4000}
{"v":1,"type":"syscall","process":"container","subsystem":"rootfs","step":"rootfs.pivot_root","syscall":"chdir","args":"\"/s/c/rootfs\"","result":0,"errno":null,"duration_us":5,"at_us":4010}
{"v":1,"type":"syscall","process":"container","subsystem":"rootfs","step":"rootfs.pivot_root","syscall":"pivot_root","args":"\".\", \".\"","result":0,"errno":null,"duration_us":5,"at_us":4020}
{"v":1,"type":"syscall","process":"container","subsystem":"rootfs","step":"rootfs.pivot_root","syscall":"umount2","args":"\".\", MNT_DETACH","result":0,"errno":null,"duration_us":5,"at_us":4030}
"#;

    #[test]
    fn a_trace_becomes_lanes_titles_namespaces_and_mounts() {
        let events = parse("t.json", TRACE).unwrap();
        let out = svg(&events, &catalog("en"), Layout::Time);
        for lane in ["image", "namespaces", "rootfs"] {
            assert!(
                out.contains(&format!(r#"data-subsystem="{lane}""#)),
                "no lane {lane}: {out}"
            );
        }
        let en = catalog("en");
        for step in ["image.resolve", "namespaces.clone", "rootfs.pivot_root"] {
            let title = &en.step(step).unwrap().title;
            assert!(out.contains(&escape(title)), "no title of {step}: {out}");
        }
        // New: mnt, pid, net (clone), cgroup (unshare); the host's: uts, ipc.
        for (ns, new) in [
            ("mnt", true),
            ("pid", true),
            ("net", true),
            ("cgroup", true),
            ("uts", false),
            ("ipc", false),
        ] {
            assert!(
                out.contains(&format!(r#"data-ns="{ns}" data-new="{new}""#)),
                "{ns} {new}: {out}"
            );
        }
        assert!(out.contains("new: unshare"), "{out}");
        assert!(!out.contains(r#"data-ns="user""#), "{out}");
        // The mounts left: the root, /proc, /etc/hosts (a bind, read-only after the remount);
        // not the host's tmpfs (gone with the old root), not the failed sysfs, not the
        // propagation change.
        let m = mounts(&events);
        let got: Vec<(&str, &str, bool)> = m
            .iter()
            .map(|m| (m.target.as_str(), m.kind.as_str(), m.readonly))
            .collect();
        assert_eq!(
            got,
            [
                ("/", "overlay", false),
                ("/proc", "proc", false),
                ("/etc/hosts", "bind", true)
            ]
        );
        assert!(out.contains(r#"data-target="/etc/hosts" data-type="bind""#));
        assert!(out.contains("host …/hosts"), "{out}");
        assert!(out.contains("bind, ro"), "{out}");
        // The failed call is a red tick.
        assert!(out.contains(r##"stroke="#d62728""##), "{out}");
        // The same input, the same picture.
        assert_eq!(out, svg(&events, &catalog("en"), Layout::Time));
        assert!(out.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"900\""));
        assert!(!out.contains("<script") && !out.contains("href"), "{out}");
    }

    #[test]
    fn titles_come_in_the_chosen_language_and_text_is_escaped() {
        let events = parse("t.json", TRACE).unwrap();
        let ko = svg(&events, &catalog("ko"), Layout::Order);
        let ko_catalog = catalog("ko");
        let title = &ko_catalog.step("namespaces.clone").unwrap().title;
        assert!(ko.contains(&escape(title)), "{ko}");
        assert!(ko.contains("하위 시스템별 타임라인"), "{ko}");
        assert!(!ko.contains("not to time"), "{ko}");
        let odd = TRACE.replace("\"subsystem\":\"image\"", "\"subsystem\":\"<a&b>\"");
        let out = svg(
            &parse("t.json", &odd).unwrap(),
            &catalog("en"),
            Layout::Time,
        );
        assert!(out.contains("&lt;a&amp;b&gt;"), "{out}");
        assert!(!out.contains("<a&b>"), "{out}");
    }

    #[test]
    fn what_is_not_a_trace_is_refused_with_its_line() {
        let e = parse("x.txt", "hello\n").unwrap_err().to_string();
        assert!(e.contains("x.txt line 1 is not a trace event"), "{e}");
        assert!(e.contains("--trace-file"), "{e}");
        let e = parse("x.json", "{\"v\":1,\"type\":\"step\"}\n[1,2]\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("line 2"), "{e}");
        let e = parse("x.json", "{\"a\":1}\n").unwrap_err().to_string();
        assert!(e.contains("\"v\" and \"type\""), "{e}");
        let e = parse("x.json", "{\"v\":1,\"type\":\"note\",\"message\":\"m\"}\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("holds no steps or syscalls"), "{e}");
        assert!(parse("x.json", "").is_err());
    }

    #[test]
    fn strace_arguments_split_at_top_level_commas_only() {
        assert_eq!(
            split_args(r#""a,b", "/proc/self/fd/6" /* /r/x, y */, NULL, MS_BIND|MS_REC"#),
            [
                r#""a,b""#,
                r#""/proc/self/fd/6" /* /r/x, y */"#,
                "NULL",
                "MS_BIND|MS_REC"
            ]
        );
        assert_eq!(
            path_arg(r#""/proc/self/fd/6" /* /r/x */"#).as_deref(),
            Some("/r/x")
        );
        assert_eq!(path_arg("NULL"), None);
        assert_eq!(fit("abcdef", 1000.0), "abcdef");
        assert!(fit(&"x".repeat(100), 62.0).ends_with('…'));
    }
}
