//! `mdbook-dockling`: the book's preprocessor and builder.
//!
//! As an mdBook preprocessor (how mdBook runs it: no arguments, the book as JSON on stdin), it
//! replaces every `{{#dockling-lesson N}}` with lesson N's transcript as the test suite last
//! recorded it (`tests/snapshots/lessons__lesson_NN.snap`, without insta's header). A marker
//! whose snapshot is missing is an error, so the book never shows an untested lesson.
//! Likewise `{{#dockling-figure N}}` becomes lesson N's figure, inlined: the SVG
//! `tests/snapshots/lesson_NN.svg` that `tests/lessons.rs` drew (`dockling trace render`) from
//! the trace of the lesson's own step and holds like a snapshot, in a `<figure>` with a caption
//! that says where it comes from.
//!
//! `mdbook-dockling build BOOK_DIR` builds the book (mdBook 0.5 as a library, this binary as
//! its preprocessor), then checks every link between its pages and to their anchors.

use std::path::{Path, PathBuf};

mod search;

use anyhow::{bail, Context, Result};
use mdbook_preprocessor::book::{Book, BookItem};
use mdbook_preprocessor::{Preprocessor, PreprocessorContext};

/// The preprocessor.
struct Lessons;

/// The transcript in an insta snapshot file: everything after its front matter.
fn snapshot_body(text: &str) -> &str {
    // "---\n<header>\n---\n<body>"
    text.strip_prefix("---\n")
        .and_then(|rest| rest.split_once("\n---\n"))
        .map(|(_, body)| body)
        .unwrap_or(text)
}

/// Replace each `{{#dockling-lesson N}}` in `content` using `load(N)`.
fn expand(content: &str, load: &dyn Fn(u32) -> Result<String>) -> Result<String> {
    expand_marker(content, "dockling-lesson", load)
}

/// Replace each `{{#NAME N}}` in `content` using `load(N)`.
fn expand_marker(
    content: &str,
    name: &str,
    load: &dyn Fn(u32) -> Result<String>,
) -> Result<String> {
    let open = format!("{{{{#{name} ");
    let mut out = String::with_capacity(content.len());
    let mut rest = content;
    while let Some(start) = rest.find(&open) {
        out.push_str(&rest[..start]);
        let after = &rest[start + open.len()..];
        let Some(end) = after.find("}}") else {
            bail!("unclosed {open}…: write {{{{#{name} N}}}}");
        };
        let n: u32 = after[..end]
            .trim()
            .parse()
            .with_context(|| format!("{open}{}}}}}: N must be a lesson number", &after[..end]))?;
        out.push_str(&load(n)?);
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

/// The file-name suffix of an edition's snapshots: none for English, `_ko` for Korean (the
/// tests write `lessons__lesson_NN_ko.snap` and `lesson_NN_ko.svg` from the same runs).
fn suffix(language: &str) -> String {
    match language {
        "en" | "" => String::new(),
        other => format!("_{other}"),
    }
}

/// A figure's caption in the book's language.
fn caption(language: &str) -> &'static str {
    match language {
        "ko" => {
            "그림: 이 레슨에서 트레이스를 켠 <code>dockling run</code>의 트레이스(trace)를 \
             <code>dockling trace render --by-order</code>로 그린 것입니다. 단계는 실제 시간이 \
             아니라 일어난 순서대로 놓입니다(시간은 실행할 때마다 달라집니다). 하위 시스템마다 \
             한 줄, 단계마다 막대 하나, 시스템 콜마다 눈금 하나(빨간색: 실패)입니다. 아래에는 \
             <code>clone</code>과 <code>unshare</code> 플래그가 만든 네임스페이스와 \
             <code>mount</code> 호출이 남긴 마운트가 있습니다. 막대에 마우스를 올리면 단계 \
             이름이 보입니다."
        }
        _ => {
            "Figure: the trace of this lesson's traced <code>dockling run</code>, drawn by \
             <code>dockling trace render --by-order</code>. Steps are placed in the order they \
             happened, not to time (times change from run to run): one lane per subsystem, a \
             bar per step, a tick per system call (red: it failed). Below, the namespaces its \
             <code>clone</code> and <code>unshare</code> flags made and the mounts its \
             <code>mount</code> calls left. Hover a bar for its step's name."
        }
    }
}

/// Lesson `n`'s figure as the page shows it: the SVG inline (an HTML block to Markdown, so
/// without blank lines), in a `<figure>` whose caption (in `language`) says where it comes
/// from.
fn figure(n: u32, svg: &str, language: &str) -> Result<String> {
    let svg = svg.trim();
    if !svg.starts_with("<svg") || !svg.ends_with("</svg>") {
        bail!("lesson {n}'s figure is not an SVG drawn by `dockling trace render`");
    }
    let svg: Vec<&str> = svg.lines().filter(|l| !l.trim().is_empty()).collect();
    Ok(format!(
        "<figure class=\"dockling-figure\" id=\"figure-{n:02}\">\n{}\n<figcaption>{}</figcaption>\n</figure>\n",
        svg.join("\n"),
        caption(language)
    ))
}

impl Preprocessor for Lessons {
    fn name(&self) -> &str {
        "dockling"
    }

    fn run(
        &self,
        ctx: &PreprocessorContext,
        mut book: Book,
    ) -> mdbook_preprocessor::errors::Result<Book> {
        let dir: String = ctx
            .config
            .get("preprocessor.dockling.snapshots")?
            .unwrap_or_else(|| "../../tests/snapshots".to_string());
        let dir = ctx.root.join(dir);
        let language = ctx.config.book.language.clone().unwrap_or_default();
        let suffix = suffix(&language);
        let load = |n: u32| -> Result<String> {
            let path = dir.join(format!("lessons__lesson_{n:02}{suffix}.snap"));
            let text = std::fs::read_to_string(&path).with_context(|| {
                format!(
                    "lesson {n}: no tested transcript at {} (run the lesson tests: `cargo test --test lessons`)",
                    path.display()
                )
            })?;
            Ok(snapshot_body(&text).to_string())
        };
        let load_figure = |n: u32| -> Result<String> {
            let path = dir.join(format!("lesson_{n:02}{suffix}.svg"));
            let svg = std::fs::read_to_string(&path).with_context(|| {
                format!(
                    "lesson {n}: no tested figure at {} (add the lesson to FIGURES in tests/lessons.rs and run `cargo test --test lessons`)",
                    path.display()
                )
            })?;
            figure(n, &svg, &language)
        };
        let mut failure = None;
        book.for_each_mut(|item| {
            if let BookItem::Chapter(ch) = item {
                match expand(&ch.content, &load)
                    .and_then(|c| expand_marker(&c, "dockling-figure", &load_figure))
                {
                    Ok(c) => ch.content = c,
                    Err(e) => {
                        failure.get_or_insert(e.context(format!("chapter {}", ch.name)));
                    }
                }
            }
        });
        match failure {
            Some(e) => Err(e),
            None => Ok(book),
        }
    }
}

/// Every value of the attribute that `open` (like `href="`) starts, in an HTML page.
fn attr_values(html: &str, open: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = html;
    while let Some(i) = rest.find(open) {
        let after = &rest[i + open.len()..];
        let Some(end) = after.find('"') else { break };
        out.push(after[..end].to_string());
        rest = &after[end..];
    }
    out
}

/// Check that every relative link of every page of the built book leads to a file (and to an
/// anchor on it when it names one). Returns the broken ones.
fn check_links(html_dir: &Path) -> Result<Vec<String>> {
    let mut pages = Vec::new();
    let mut stack = vec![html_dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).with_context(|| format!("read {}", d.display()))? {
            let p = e?.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "html") {
                pages.push(p);
            }
        }
    }
    let mut broken = Vec::new();
    for page in &pages {
        let html = std::fs::read_to_string(page)?;
        for link in attr_values(&html, "href=\"") {
            // External and site-absolute links (the 404 page's "/") depend on where it is served.
            if link.contains("://")
                || link.starts_with('/')
                || link.starts_with("mailto:")
                || link.starts_with("javascript:")
            {
                continue;
            }
            let (file, anchor) = link.split_once('#').unwrap_or((&link, ""));
            let target: PathBuf = if file.is_empty() {
                page.clone()
            } else {
                page.parent().unwrap_or(html_dir).join(file)
            };
            let target = if target.is_dir() {
                target.join("index.html")
            } else {
                target
            };
            if !target.exists() {
                broken.push(format!("{}: {link} (no such file)", page.display()));
                continue;
            }
            if !anchor.is_empty() && target.extension().is_some_and(|x| x == "html") {
                let there = std::fs::read_to_string(&target)?;
                if !attr_values(&there, " id=\"").iter().any(|id| id == anchor) {
                    broken.push(format!("{}: {link} (no such anchor)", page.display()));
                }
            }
        }
    }
    Ok(broken)
}

fn build(book_dir: &Path) -> Result<()> {
    // mdBook runs the preprocessor named in book.toml by command: this very binary.
    let exe = std::env::current_exe()?;
    let bin = exe.parent().context("the binary's directory")?;
    let path = std::env::var("PATH").unwrap_or_default();
    // SAFETY: single-threaded at this point; nothing else reads the environment concurrently.
    unsafe { std::env::set_var("PATH", format!("{}:{path}", bin.display())) };
    // mdBook runs preprocessors from the book's directory: give it an absolute root.
    let book_dir = &std::fs::canonicalize(book_dir)
        .with_context(|| format!("no book at {}", book_dir.display()))?;
    let book = mdbook_driver::MDBook::load(book_dir)
        .map_err(|e| anyhow::anyhow!("{e:#}"))
        .with_context(|| format!("load the book at {}", book_dir.display()))?;
    book.build().map_err(|e| anyhow::anyhow!("{e:#}"))?;
    let html = book.build_dir_for("html");
    let language = book.config.book.language.clone().unwrap_or_default();
    if !matches!(language.as_str(), "en" | "") {
        search::reindex(&html, &language)?;
    }
    let broken = check_links(&html)?;
    if !broken.is_empty() {
        bail!("broken links in the book:\n{}", broken.join("\n"));
    }
    println!("built {} and checked its links", html.display());
    Ok(())
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["supports", _renderer] => Ok(()),
        ["build", dir] => build(Path::new(dir)),
        [] => {
            let (ctx, book) = mdbook_preprocessor::parse_input(std::io::stdin())
                .map_err(|e| anyhow::anyhow!("{e:#}"))?;
            let book = Lessons
                .run(&ctx, book)
                .map_err(|e| anyhow::anyhow!("{e:#}"))?;
            serde_json::to_writer(std::io::stdout(), &book)?;
            Ok(())
        }
        _ => bail!("usage: mdbook-dockling build BOOK_DIR (or run by mdBook as a preprocessor)"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markers_become_transcripts_and_bad_markers_are_errors() {
        let load = |n: u32| -> Result<String> {
            if n == 1 {
                Ok("TRANSCRIPT".into())
            } else {
                bail!("no lesson {n}")
            }
        };
        assert_eq!(
            expand("# L\n\n{{#dockling-lesson 1}}\nafter", &load).unwrap(),
            "# L\n\nTRANSCRIPT\nafter"
        );
        assert!(expand("{{#dockling-lesson 2}}", &load).is_err());
        assert!(expand("{{#dockling-lesson x}}", &load).is_err());
        assert!(expand("{{#dockling-lesson 1", &load).is_err());
        assert_eq!(expand("no markers", &load).unwrap(), "no markers");
    }

    #[test]
    fn figure_markers_become_inline_svgs_with_a_caption() {
        let load = |n: u32| -> Result<String> {
            if n == 4 {
                figure(4, "<svg a>\n<text>x</text>\n\n</svg>\n", "en")
            } else {
                bail!("no figure {n}")
            }
        };
        let out =
            expand_marker("a\n\n{{#dockling-figure 04}}\nb", "dockling-figure", &load).unwrap();
        assert!(out.starts_with("a\n\n<figure class=\"dockling-figure\" id=\"figure-04\">\n<svg a>\n<text>x</text>\n</svg>\n<figcaption>"), "{out}");
        assert!(out.ends_with("</figure>\n\nb"), "{out}");
        // An HTML block ends at a blank line: the figure has none.
        let fig = &out[3..out.len() - 2];
        assert!(!fig.trim().contains("\n\n"), "{out}");
        assert!(expand_marker("{{#dockling-figure 5}}", "dockling-figure", &load).is_err());
        assert!(figure(4, "not svg", "en").is_err());
        let ko = figure(4, "<svg>\n</svg>", "ko").unwrap();
        assert!(ko.contains("<figcaption>그림:"), "{ko}");
        assert_eq!(suffix("en"), "");
        assert_eq!(suffix("ko"), "_ko");
    }

    #[test]
    fn insta_front_matter_is_dropped() {
        let snap = "---\nsource: tests/lessons.rs\nexpression: x\n---\n*Goal: g*\n\nbody\n";
        assert_eq!(snapshot_body(snap), "*Goal: g*\n\nbody\n");
    }

    #[test]
    fn broken_links_and_anchors_are_found() {
        let tmp = std::env::temp_dir().join(format!("mdbook-dockling-test-{}", std::process::id()));
        std::fs::create_dir_all(tmp.join("sub")).unwrap();
        std::fs::write(
            tmp.join("index.html"),
            r##"<a href="sub/a.html#here">ok</a> <a href="sub/a.html#gone">x</a> <a href="nope.html">y</a> <a href="https://example.org">z</a>"##,
        )
        .unwrap();
        std::fs::write(tmp.join("sub/a.html"), r#"<h2 id="here">H</h2>"#).unwrap();
        let broken = check_links(&tmp).unwrap();
        std::fs::remove_dir_all(&tmp).unwrap();
        assert_eq!(broken.len(), 2, "{broken:?}");
        assert!(broken.iter().any(|b| b.contains("#gone")));
        assert!(broken.iter().any(|b| b.contains("nope.html")));
    }
}
