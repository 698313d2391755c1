//! The book builds (with every lesson's tested transcript placed), its links hold, and a
//! lesson page rendered by a real browser (headless Chromium) shows the transcript.

use std::path::Path;
use std::process::Command;

fn book_dir() -> std::path::PathBuf {
    edition_dir("en")
}

fn edition_dir(edition: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../book")
        .join(edition)
}

/// The built English book's directory, built once for all the tests of this file (which run
/// at the same time).
fn built() -> &'static Path {
    static BUILT: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();
    BUILT.get_or_init(|| build("en"))
}

/// The built Korean edition's directory, likewise.
fn built_ko() -> &'static Path {
    static BUILT: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();
    BUILT.get_or_init(|| build("ko"))
}

fn build(edition: &str) -> std::path::PathBuf {
    let out = Command::new(env!("CARGO_BIN_EXE_mdbook-dockling"))
        .arg("build")
        .arg(edition_dir(edition))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{edition} book build failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::canonicalize(edition_dir(edition).join("build")).unwrap()
}

#[test]
fn the_book_builds_its_links_hold_and_a_browser_shows_a_lesson_transcript() {
    let page = built().join("lessons/01-hello-world.html");
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(
        !html.contains("{{#dockling-lesson"),
        "a marker was left unexpanded"
    );

    let chromium = chromium();
    let dom = render(chromium, &page);
    assert!(
        dom.contains("Hello from dockling!"),
        "the rendered lesson page lacks its transcript:\n{}",
        &dom[..dom.len().min(2000)]
    );
    assert!(
        dom.contains("Unable to find image"),
        "the first step's output is missing"
    );
    assert!(
        dom.contains("A container is just a process"),
        "the title is missing"
    );
}

/// The headless browser the test renders pages with.
fn chromium() -> &'static str {
    ["chromium", "chromium-browser"]
        .into_iter()
        .find(|c| {
            Command::new("sh")
                .args(["-c", &format!("command -v {c}")])
                .output()
                .is_ok_and(|o| o.status.success())
        })
        .expect("Chromium is missing: `apt-get install chromium` (scripts/test installs it)")
}

/// The DOM of `page` after a headless Chromium (a 1000 × 800 window) has loaded it and run
/// its scripts.
fn render(chromium: &str, page: &Path) -> String {
    render_query(chromium, page, "")
}

/// [`render`] with a query string on the page's URL (`?search=word` opens mdBook's search).
fn render_query(chromium: &str, page: &Path, query: &str) -> String {
    let profile = std::env::temp_dir().join(format!(
        "mdbook-dockling-chromium-{}-{}",
        std::process::id(),
        page.file_name().unwrap().to_string_lossy()
    ));
    let dom = Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--virtual-time-budget=3000",
            "--window-size=1000,800",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg("--dump-dom")
        .arg(format!("file://{}{query}", page.display()))
        .output()
        .unwrap();
    let _ = std::fs::remove_dir_all(&profile);
    assert!(
        dom.status.success(),
        "chromium failed on {}",
        page.display()
    );
    String::from_utf8_lossy(&dom.stdout).into_owned()
}

/// Measures a page once its scripts ran, and writes what it found into the page, between
/// `MEASURE[` and `]END`, for `--dump-dom` to show: every transcript block whose content is
/// wider than its box (a line cut off at the right edge, or hidden until scrolled), every
/// other element of the chapter that is wider than its box and does not scroll, whether the
/// page itself is wider than the window, and the sidebar's chapter labels.
const MEASURE: &str = r#"<script>
window.addEventListener('load', () => setTimeout(() => {
  const cut = [];
  // A transcript line must show whole: a scroll bar is not enough (overlay scroll bars
  // and print hide it, and a reader does not know there is more to the right).
  document.querySelectorAll('main pre, main pre code').forEach(el => {
    if (el.scrollWidth > el.clientWidth + 1) {
      cut.push(el.tagName + ':' + el.textContent.trim().split('\n')[0].slice(0, 60));
    }
  });
  // Other wide things (tables) may scroll, but not be clipped.
  document.querySelectorAll('main table, main p, main .table-wrapper').forEach(el => {
    if (el.scrollWidth > el.clientWidth + 1 && el.clientWidth > 0
        && !['auto', 'scroll'].includes(getComputedStyle(el).overflowX)) {
      cut.push(el.tagName + ':' + el.textContent.trim().split('\n')[0].slice(0, 60));
    }
  });
  const root = document.documentElement;
  if (root.scrollWidth > root.clientWidth + 1) cut.push('PAGE:' + root.scrollWidth);
  const labels = [...document.querySelectorAll('.chapter li.chapter-item a')]
    .map(a => a.textContent.trim().replace(/\s+/g, ' '));
  const out = document.createElement('div');
  out.textContent = 'MEASURE' + '[' + JSON.stringify({cut, labels}) + ']' + 'END';
  document.body.appendChild(out);
}, 200));
</script>"#;

/// What [`MEASURE`] found on `page` (rendered from a copy next to it, the script added).
fn measure(chromium: &str, page: &Path) -> (Vec<String>, Vec<String>) {
    let html = std::fs::read_to_string(page).unwrap();
    let copy = page.with_file_name(format!(
        "measure-{}",
        page.file_name().unwrap().to_string_lossy()
    ));
    std::fs::write(&copy, html.replace("</body>", &format!("{MEASURE}</body>"))).unwrap();
    let dom = render(chromium, &copy);
    std::fs::remove_file(&copy).unwrap();
    let found = dom
        .split_once("MEASURE[")
        .and_then(|(_, rest)| rest.split_once("]END"))
        .map(|(json, _)| {
            json.replace("&amp;", "&")
                .replace("&lt;", "<")
                .replace("&gt;", ">")
        })
        .unwrap_or_else(|| panic!("the measuring script did not run on {}", page.display()));
    let v: serde_json::Value = serde_json::from_str(&found).unwrap();
    let strings = |k: &str| -> Vec<String> {
        v[k].as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_str().unwrap().to_string())
            .collect()
    };
    (strings("cut"), strings("labels"))
}

#[test]
fn pages_cut_no_line_off_chapters_are_numbered_once_and_transcripts_mark_commands() {
    let chromium = chromium();
    let build = built();
    // Pages with long trace lines, multi-line commands, failing commands and whole digests.
    for page in [
        "lessons/01-hello-world.html",
        "lessons/02-images.html",
        "lessons/03-containers.html",
        "lessons/04-namespaces.html",
        "lessons/07-security.html",
        "reference/trace.html",
    ] {
        let (cut, labels) = measure(chromium, &build.join(page));
        assert!(
            cut.is_empty(),
            "{page}: cut off at the right edge: {cut:#?}"
        );
        // Lessons carry their number in their title, once; reference pages carry none.
        assert!(labels.len() >= 20, "{page}: the sidebar lists {labels:?}");
        let twice = regex_like_twice(&labels);
        assert!(twice.is_empty(), "{page}: numbered twice: {twice:?}");
        assert!(
            labels
                .iter()
                .any(|l| l.starts_with("1. A container is just a process")),
            "{labels:?}"
        );
        let trace = labels.iter().find(|l| l.contains("The trace")).unwrap();
        assert_eq!(
            trace, "The trace",
            "a reference page is numbered like a lesson"
        );
    }
    // A multi-line command's further lines carry the shell's continuation prompt, and a
    // command that failed says its exit code.
    let one = std::fs::read_to_string(build.join("lessons/01-hello-world.html")).unwrap();
    assert!(
        one.contains("\n&gt; sleep 1\n"),
        "no continuation prompt in lesson 1"
    );
    let three = std::fs::read_to_string(build.join("lessons/03-containers.html")).unwrap();
    assert!(
        three.contains("(exit code 3)"),
        "lesson 3 hides the exit code 3"
    );
}

/// Labels that start with a number twice ("1. 1. A container…").
fn regex_like_twice(labels: &[String]) -> Vec<String> {
    let number = |s: &str| -> Option<usize> {
        let d = s.chars().take_while(|c| c.is_ascii_digit()).count();
        (d > 0 && s[d..].starts_with(". ")).then_some(d + 2)
    };
    labels
        .iter()
        .filter(|l| number(l).is_some_and(|n| number(&l[n..]).is_some()))
        .cloned()
        .collect()
}

#[test]
fn the_book_has_search_and_a_word_from_a_lesson_finds_its_chapter() {
    let build = built();
    let page = build.join("introduction.html");
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(
        html.contains("mdbook-searchbar"),
        "the page has no search bar: the builder lacks mdBook's search feature"
    );
    let index = std::fs::read_dir(build)
        .unwrap()
        .filter_map(|e| e.ok())
        .find(|e| {
            let n = e.file_name().to_string_lossy().into_owned();
            n.starts_with("searchindex") && n.ends_with(".js")
        })
        .expect("no searchindex*.js in the built book");
    let text = std::fs::read_to_string(index.path()).unwrap();
    assert!(
        text.contains("whiteout"),
        "the search index lacks a word lesson 14 teaches"
    );
    // A reader typing the word gets the copy-up chapter among the results.
    let dom = render_query(chromium(), &page, "?search=whiteout");
    let results = dom
        .split_once("mdbook-searchresults\"")
        .map(|(_, rest)| rest)
        .unwrap_or_else(|| {
            panic!(
                "no search results list in the page:\n{}",
                &dom[..dom.len().min(2000)]
            )
        });
    assert!(
        results.contains("14-copy-up.html"),
        "searching `whiteout` does not find lesson 14:\n{}",
        &results[..results.len().min(3000)]
    );
}

/// The seed notes' topics (in the words the coverage table uses) that the introduction's
/// table must name, each taught by a chapter or left out with a reason (issue 13).
const SEED_TOPICS: &[&str] = &[
    "virtualization",
    "why containers",
    "Kubernetes",
    "dockerd",
    "containerd",
    "shim",
    "runc",
    "OCI",
    "images",
    "layers",
    "Dockerfile",
    "registries",
    "Docker Hub",
    "`hello-world`",
    "`container prune`",
    "`pull`",
    "`images`",
    "`rmi`",
    "`run`",
    "`ps`",
    "`exec -it`",
    "`cp`",
    "`commit`",
    "IP address",
    "port forwarding",
    "`--link`",
    "volumes",
    "cgroup limits",
    "capabilities",
    "seccomp",
    "`explain`",
    "`--step`",
    "second terminal",
    "installing Docker",
    "Docker Desktop",
    "Docker Hub accounts",
];

/// The rows of the table under `## What the course covers` in the introduction's source:
/// (topic, where) pairs.
fn coverage_rows() -> Vec<(String, String)> {
    let intro = std::fs::read_to_string(book_dir().join("src/introduction.md")).unwrap();
    let section = intro
        .split_once("\n## What the course covers\n")
        .map(|(_, rest)| rest)
        .expect("the introduction has no `## What the course covers` section (issue 13)");
    let section = section.split("\n## ").next().unwrap();
    let rows: Vec<(String, String)> = section
        .lines()
        .filter(|l| l.starts_with('|'))
        .skip(2) // the header and its rule
        .map(|l| {
            let cells: Vec<&str> = l.trim_matches('|').split(" | ").collect();
            assert_eq!(cells.len(), 2, "a coverage row without two cells: {l}");
            (cells[0].trim().to_string(), cells[1].trim().to_string())
        })
        .collect();
    assert!(
        rows.len() >= 20,
        "the coverage table has {} rows",
        rows.len()
    );
    rows
}

/// `text` with its Markdown links `[text](target)` taken out.
fn without_links(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(open) = rest.find('[') {
        out.push_str(&rest[..open]);
        match rest[open..]
            .find("](")
            .and_then(|m| rest[open + m..].find(')').map(|close| open + m + close + 1))
        {
            Some(end) => rest = &rest[end..],
            None => {
                out.push_str(&rest[open..]);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

/// The targets of the Markdown links `[text](target)` in `text`.
fn markdown_links(text: &str) -> Vec<String> {
    text.split("](")
        .skip(1)
        .map(|rest| rest.split(')').next().unwrap().to_string())
        .collect()
}

#[test]
fn the_introduction_maps_every_seed_topic_to_a_chapter_that_exists_or_a_reason() {
    let rows = coverage_rows();
    let missing: Vec<&str> = SEED_TOPICS
        .iter()
        .copied()
        .filter(|t| {
            !rows
                .iter()
                .any(|(topic, _)| topic.to_lowercase().contains(&t.to_lowercase()))
        })
        .collect();
    assert!(
        missing.is_empty(),
        "seed topics the coverage table does not name: {missing:?}"
    );
    // Each row says where, with a link, or says why not.
    for (topic, place) in &rows {
        let left_out = place.starts_with("left out");
        assert!(
            markdown_links(place).len() + usize::from(left_out) > 0,
            "`{topic}` is neither linked to a chapter nor left out"
        );
        if left_out {
            assert!(
                place.contains("because"),
                "`{topic}` is left out without a reason: {place}"
            );
        }
    }
    // A lesson named without a link (one still being written) gets its link once its chapter
    // exists.
    let lessons = std::fs::read_dir(book_dir().join("src/lessons"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect::<Vec<_>>();
    for (topic, place) in &rows {
        let unlinked = without_links(place).to_lowercase();
        for n in unlinked
            .split("lesson ")
            .skip(1)
            .filter_map(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
            .filter_map(|d| d.parse::<u32>().ok())
        {
            let chapter = lessons
                .iter()
                .find(|f| f.starts_with(&format!("{n:02}-")) && f.ends_with(".md"));
            assert!(
                chapter.is_none(),
                "`{topic}` names lesson {n} without linking lessons/{}",
                chapter.unwrap()
            );
        }
    }
    // Every chapter the table links is in the book (SUMMARY.md) and was built, with the
    // section the link names.
    let summary = std::fs::read_to_string(book_dir().join("src/SUMMARY.md")).unwrap();
    let build = built();
    let mut checked = 0;
    for (topic, place) in &rows {
        for link in markdown_links(place) {
            let (file, anchor) = link.split_once('#').unwrap_or((&link, ""));
            assert!(
                file.ends_with(".md") && !file.contains("://"),
                "`{topic}` links outside the book: {link}"
            );
            assert!(
                book_dir().join("src").join(file).is_file(),
                "`{topic}` links {file}, which does not exist"
            );
            assert!(
                summary.contains(&format!("]({file})")),
                "`{topic}` links {file}, which SUMMARY.md does not list"
            );
            let page = build.join(file.replace(".md", ".html"));
            let html = std::fs::read_to_string(&page)
                .unwrap_or_else(|e| panic!("`{topic}`: {} was not built: {e}", page.display()));
            if !anchor.is_empty() {
                assert!(
                    html.contains(&format!(" id=\"{anchor}\"")),
                    "`{topic}` links {link}, but {file} has no such section"
                );
            }
            checked += 1;
        }
    }
    assert!(checked >= 25, "only {checked} links in the coverage table");
}

#[test]
fn the_front_chapters_and_reference_maps_fit_the_window_and_show_their_figures() {
    let chromium = chromium();
    let build = built();
    for page in [
        "introduction.html",
        "before-you-start.html",
        "containers-and-machines.html",
        "reference/docker-commands.html",
        "reference/glossary.html",
    ] {
        let (cut, labels) = measure(chromium, &build.join(page));
        assert!(
            cut.is_empty(),
            "{page}: cut off at the right edge: {cut:#?}"
        );
        // The front chapters come before lesson 1 in the sidebar, unnumbered.
        let at = |title: &str| {
            labels
                .iter()
                .position(|l| l == title)
                .unwrap_or_else(|| panic!("{page}: the sidebar lacks `{title}`: {labels:?}"))
        };
        let lesson1 = labels
            .iter()
            .position(|l| l.starts_with("1. A container is just a process"))
            .unwrap();
        assert!(at("Before you start") < lesson1, "{labels:?}");
        assert!(
            at("Containers and the machines around them") < lesson1,
            "{labels:?}"
        );
        assert!(at("Glossary") > lesson1, "{labels:?}");
    }
    // The two figures are drawn (inline SVG, text a browser lays out), with their captions.
    let dom = render(chromium, &build.join("containers-and-machines.html"));
    let figures: Vec<&str> = dom.split("<figure class=\"fig\">").skip(1).collect();
    assert_eq!(figures.len(), 2, "the chapter's figures");
    for figure in &figures {
        let figure = figure.split("</figure>").next().unwrap();
        assert!(
            figure.contains("<svg") && figure.contains("<figcaption>"),
            "a figure without its drawing or caption"
        );
    }
    for label in [
        "guest kernel",
        "containerd-shim",
        "dockling run (one process)",
    ] {
        assert!(dom.contains(label), "a figure lacks `{label}`");
    }
}

#[test]
fn lesson_4_shows_its_figure_drawn_from_its_own_trace() {
    let page = built().join("lessons/04-namespaces.html");
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(
        !html.contains("{{#dockling-figure"),
        "a figure marker was left unexpanded"
    );
    let svg = std::fs::read_to_string(book_dir().join("../../tests/snapshots/lesson_04.svg"))
        .expect("tests/snapshots/lesson_04.svg (cargo test --test lessons draws it)");
    let start = html
        .find("<figure class=\"dockling-figure\" id=\"figure-04\">")
        .expect("lesson 4's page has no figure");
    let fig = &html[start..];
    let fig = &fig[..fig.find("</figure>").expect("an unclosed figure")];
    // The tested SVG itself, inline, not escaped into text or cut at a blank line (mdBook
    // writes attribute names in lower case, `viewbox`, which an HTML parser puts back).
    let first = svg.lines().next().unwrap().to_lowercase();
    assert!(
        fig.to_lowercase().contains(&first),
        "the figure is not the tested SVG: {fig:.300}"
    );
    assert!(fig.contains("</svg>"), "the SVG is cut: {fig:.300}");
    for needle in [
        r#"data-subsystem="namespaces""#,
        r#"data-ns="mnt" data-new="true""#,
        // The step drawn is the lesson's `--pid host --uts host` run.
        r#"data-ns="pid" data-new="false""#,
        r#"data-ns="uts" data-new="false""#,
        r#"data-target="/proc" data-type="proc""#,
        "first process in new namespaces",
    ] {
        assert!(fig.contains(needle), "the figure lacks {needle}");
    }
    assert!(fig.contains("<figcaption>"), "no caption");
    // A browser reads it as SVG: its elements are in the DOM.
    let dom = render(chromium(), &page);
    assert!(
        dom.contains("<svg") && dom.contains(r#"data-ns="pid" data-new="false""#),
        "the rendered page has no SVG figure"
    );
}

/// Draws two different Hangul syllables on a canvas in the page's own font and writes whether
/// their pixels differ (`GLYPHS[true]END`): without a font that has Hangul, both come out as
/// the same "missing glyph" box (tofu), which is what a Korean reader saw before a CJK font
/// was installed.
const GLYPHS: &str = r#"<script>
window.addEventListener('load', () => setTimeout(() => {
  const font = getComputedStyle(document.querySelector('main p')).fontFamily;
  const draw = ch => {
    const c = document.createElement('canvas');
    c.width = 64; c.height = 64;
    const g = c.getContext('2d');
    g.font = '40px ' + font;
    g.fillText(ch, 8, 48);
    return Array.from(g.getImageData(0, 0, 64, 64).data).join(',');
  };
  const ink = draw('한').split(',').some(v => v !== '0');
  const out = document.createElement('div');
  out.textContent = 'GLYPHS' + '[' + (ink && draw('한') !== draw('글')) + ']' + 'END';
  document.body.appendChild(out);
}, 200));
</script>"#;

/// `text` as a URL's query wants it: UTF-8, percent-encoded.
fn percent_encoded(text: &str) -> String {
    text.bytes().map(|b| format!("%{b:02X}")).collect()
}

#[test]
fn the_korean_edition_shows_its_lessons_in_korean_with_a_font_that_has_hangul() {
    let build = built_ko();
    let page = build.join("lessons/01-hello-world.html");
    let dom = render(chromium(), &page);
    for (what, text) in [
        ("the Korean goal line", "목표:"),
        ("the first step's output", "Hello from dockling!"),
        (
            "the chapter title from the lesson's Korean title",
            "레슨 1:",
        ),
    ] {
        assert!(
            dom.contains(text),
            "the Korean lesson page lacks {what} ({text}):\n{}",
            &dom[..dom.len().min(2000)]
        );
    }
    // Drawn, not only present: the glyphs come from a font that has them.
    let html = std::fs::read_to_string(&page).unwrap();
    let copy = page.with_file_name("glyphs-01-hello-world.html");
    std::fs::write(&copy, html.replace("</body>", &format!("{GLYPHS}</body>"))).unwrap();
    let dom = render(chromium(), &copy);
    std::fs::remove_file(&copy).unwrap();
    let drawn = dom
        .split_once("GLYPHS[")
        .and_then(|(_, rest)| rest.split_once("]END"))
        .map(|(v, _)| v.to_string())
        .expect("the glyph script did not run");
    assert_eq!(
        drawn, "true",
        "Chromium draws Hangul as empty boxes: no font with Korean glyphs is installed \
         (scripts/test installs fonts-noto-cjk)"
    );
    // And its lines fit the window as the English ones do, on the same pages the English
    // test measures (Korean wraps at other places) and the front chapters.
    for page in [
        "lessons/01-hello-world.html",
        "lessons/02-images.html",
        "lessons/03-containers.html",
        "lessons/04-namespaces.html",
        "lessons/07-security.html",
        "reference/trace.html",
        "introduction.html",
        "containers-and-machines.html",
        "reference/glossary.html",
    ] {
        let (cut, labels) = measure(chromium(), &build.join(page));
        assert!(
            cut.is_empty(),
            "ko {page}: cut off at the right edge: {cut:#?}"
        );
        let twice = regex_like_twice(&labels);
        assert!(twice.is_empty(), "ko {page}: numbered twice: {twice:?}");
        assert!(
            labels.iter().any(|l| l.starts_with("1. 컨테이너")),
            "ko {page}: the Korean sidebar: {labels:?}"
        );
    }
}

#[test]
fn korean_search_finds_a_hangul_word_with_its_particle() {
    let build = built_ko();
    let page = build.join("introduction.html");
    // A word as a reader types it, particle and all ("화이트아웃을": whiteout + object
    // marker); the chapter that teaches it uses it with other particles.
    let dom = render_query(
        chromium(),
        &page,
        &format!("?search={}", percent_encoded("화이트아웃을")),
    );
    let results = dom
        .split_once("mdbook-searchresults\"")
        .map(|(_, rest)| rest)
        .unwrap_or_else(|| panic!("no search results list:\n{}", &dom[..dom.len().min(2000)]));
    assert!(
        results.contains("14-copy-up.html"),
        "searching 화이트아웃을 does not find lesson 14:\n{}",
        &results[..results.len().min(3000)]
    );
}

/// Measures every drawn figure (`<figure class="fig">`, inline SVG) of a page once its scripts
/// ran, and writes what it found into the page, between `FIGURES[` and `]END`: per figure, its
/// caption, its labels, the 12-digit digests its labels name that the page's text outside the
/// figures does not show (a figure gone stale), and every label that does not fit: one not
/// drawn, one reaching out of the drawing (the svg's viewBox), one leaving the box it is
/// written in (the smallest rect around its anchor point), one crossing the edge of any other
/// box (a label is wholly inside a box or wholly outside it), and one overlapping another
/// label. Sizes are the browser's own (`getBBox`, in the svg's units, in the font the page
/// really got), so a longer translation or a wider font (Korean labels are wider) shows here.
const FIGURES: &str = r#"<script>
window.addEventListener('load', () => setTimeout(() => {
  const main = document.querySelector('main').cloneNode(true);
  main.querySelectorAll('figure.fig').forEach(f => f.remove());
  const shown = main.textContent;
  // Half a unit of slack for rounding, but none at the drawing's own edge.
  const inside = (a, b, slack) => a.x >= b.x - slack && a.y >= b.y - slack
    && a.x + a.width <= b.x + b.width + slack && a.y + a.height <= b.y + b.height + slack;
  const apart = (a, b) => a.x + a.width <= b.x + 0.5 || b.x + b.width <= a.x + 0.5
    || a.y + a.height <= b.y + 0.5 || b.y + b.height <= a.y + 0.5;
  const at = b => '[x ' + Math.round(b.x) + '..' + Math.round(b.x + b.width)
    + ', y ' + Math.round(b.y) + '..' + Math.round(b.y + b.height) + ']';
  const figures = [...document.querySelectorAll('main figure.fig')].map(fig => {
    const caption = fig.querySelector('figcaption');
    const found = {
      caption: caption ? caption.textContent.replace(/\s+/g, ' ').trim() : '',
      labels: [], stale: [], offenders: [],
    };
    const svg = fig.querySelector('svg');
    if (!svg) {
      found.offenders.push('the figure has no svg: nothing is drawn');
      return found;
    }
    const view = svg.viewBox.baseVal;
    const boxes = [...svg.querySelectorAll('rect')].map(r => r.getBBox());
    const texts = [...svg.querySelectorAll('text')];
    const placed = texts.map(t => t.getBBox());
    texts.forEach((t, i) => {
      const label = t.textContent, b = placed[i];
      const name = '`' + label + '` ' + at(b);
      found.labels.push(label);
      (label.match(/\b[0-9a-f]{12}\b/g) || [])
        .filter(d => !shown.includes(d)).forEach(d => found.stale.push(d));
      if (b.width === 0) found.offenders.push(name + ' is not drawn');
      if (!inside(b, view, 0)) {
        found.offenders.push(name + ' reaches out of the drawing ' + at(view));
      }
      const x = t.x.baseVal.length ? t.x.baseVal[0].value : NaN;
      const y = t.y.baseVal.length ? t.y.baseVal[0].value : NaN;
      const home = boxes
        .filter(r => x >= r.x && x <= r.x + r.width && y >= r.y && y <= r.y + r.height)
        .sort((p, q) => p.width * p.height - q.width * q.height)[0];
      if (home && !inside(b, home, 0.5)) {
        found.offenders.push(name + ' leaves the box it is written in ' + at(home));
      }
      boxes.filter(r => r !== home && !inside(b, r, 0.5) && !apart(b, r)).forEach(r =>
        found.offenders.push(name + ' crosses the edge of the box ' + at(r)));
      texts.forEach((o, j) => {
        if (j > i && !apart(b, placed[j])) {
          found.offenders.push(name + ' overlaps `' + o.textContent + '` ' + at(placed[j]));
        }
      });
    });
    return found;
  });
  const out = document.createElement('div');
  out.textContent = 'FIGURES' + '[' + JSON.stringify(figures) + ']' + 'END';
  document.body.appendChild(out);
}, 200));
</script>"#;

/// What [`FIGURES`] found of one figure.
#[derive(Debug)]
struct Figure {
    caption: String,
    labels: Vec<String>,
    /// Digests its labels name that the page's text outside the figures does not show.
    stale: Vec<String>,
    /// Labels that do not fit, each saying where it is and what it runs into.
    offenders: Vec<String>,
}

/// What [`FIGURES`] found on `page` (rendered from a copy next to it, the script added).
fn drawn_figures(chromium: &str, page: &Path) -> Vec<Figure> {
    let html = std::fs::read_to_string(page).unwrap();
    let copy = page.with_file_name(format!(
        "figures-{}",
        page.file_name().unwrap().to_string_lossy()
    ));
    std::fs::write(&copy, html.replace("</body>", &format!("{FIGURES}</body>"))).unwrap();
    let dom = render(chromium, &copy);
    std::fs::remove_file(&copy).unwrap();
    // The JSON as the DOM serializer escaped it in a text node, `&amp;` last.
    let found = dom
        .split_once("FIGURES[")
        .and_then(|(_, rest)| rest.split_once("]END"))
        .map(|(json, _)| {
            json.replace("&lt;", "<")
                .replace("&gt;", ">")
                .replace("&nbsp;", "\u{a0}")
                .replace("&amp;", "&")
        })
        .unwrap_or_else(|| panic!("the figure script did not run on {}", page.display()));
    let v: serde_json::Value = serde_json::from_str(&found)
        .unwrap_or_else(|e| panic!("{}: the figure script wrote {found}: {e}", page.display()));
    let strings = |x: &serde_json::Value| -> Vec<String> {
        x.as_array()
            .unwrap()
            .iter()
            .map(|s| s.as_str().unwrap().to_string())
            .collect()
    };
    v.as_array()
        .unwrap()
        .iter()
        .map(|f| Figure {
            caption: f["caption"].as_str().unwrap().to_string(),
            labels: strings(&f["labels"]),
            stale: strings(&f["stale"]),
            offenders: strings(&f["offenders"]),
        })
        .collect()
}

/// The one inline figure a lesson page draws, in one edition.
struct Expected {
    edition: &'static str,
    page: &'static str,
    /// How its caption starts, and words it says further on.
    caption: (&'static str, &'static [&'static str]),
    /// Labels it shows: whole, or, ending in `…`, how one starts.
    labels: &'static [&'static str],
}

const LESSON_FIGURES: &[Expected] = &[
    Expected {
        edition: "en",
        page: "lessons/02-images.html",
        caption: ("Figure: what httpd:latest is made of", &[]),
        labels: &[
            "manifest 83cd225f07d1",
            "config 21ea20385648",
            "layer 5f8e91d427aa",
            "a1670f675286/",
        ],
    },
    Expected {
        edition: "ko",
        page: "lessons/02-images.html",
        caption: ("그림: 위 출력의 다이제스트", &[]),
        labels: &[
            "매니페스트 83cd225f07d1",
            "설정 21ea20385648",
            "레이어 5f8e91d427aa",
            "a1670f675286/",
        ],
    },
    Expected {
        edition: "en",
        page: "lessons/04-namespaces.html",
        caption: ("Figure:", &["NSpid"]),
        labels: &[
            "container's pid namespace",
            "NSpid: 4242 1",
            "with --pid host…",
        ],
    },
    Expected {
        edition: "ko",
        page: "lessons/04-namespaces.html",
        caption: ("그림:", &["NSpid"]),
        labels: &[
            "컨테이너의 pid 네임스페이스",
            "NSpid: 4242 1",
            "--pid host이면…",
        ],
    },
    Expected {
        edition: "en",
        page: "lessons/05-layers.html",
        caption: ("Figure: the overlay of the layered container", &[]),
        labels: &[
            "lower: 3229bc352df3",
            "copy-up: whole file",
            "c 0/0: whiteout",
            "root/new.txt",
        ],
    },
    Expected {
        edition: "ko",
        page: "lessons/05-layers.html",
        caption: ("그림: 위의 layered 컨테이너의 오버레이", &[]),
        labels: &[
            "lower: 3229bc352df3",
            "카피업: 파일 전체",
            "c 0/0: 화이트아웃",
            "root/new.txt",
        ],
    },
    Expected {
        edition: "en",
        page: "lessons/06-registries.html",
        caption: ("Figure: what push and pull ask the registry", &[]),
        labels: &[
            "HEAD /v2/me/box/blobs/sha256:5f8e91d427aa",
            "201 Created: “Mounted from library/busybox”, no bytes sent",
            "PUT /v2/me/box/manifests/v1",
            "GET …/blobs/sha256:11bd243a27aa",
        ],
    },
    Expected {
        edition: "ko",
        page: "lessons/06-registries.html",
        caption: ("그림: push와 pull이 레지스트리", &[]),
        labels: &[
            "HEAD /v2/me/box/blobs/sha256:5f8e91d427aa",
            "201 Created: “Mounted from library/busybox”, 보낸 바이트 없음",
            "PUT /v2/me/box/manifests/v1",
            "GET …/blobs/sha256:11bd243a27aa",
        ],
    },
    Expected {
        edition: "en",
        page: "lessons/12-ports.html",
        caption: ("Figure:", &["dockling proxy"]),
        labels: &[
            "proxy mode…",
            "nftables table ip dockling-<id>…",
            "bridge dockling0 172.17.0.1/16",
            "eth0 172.17.0.x…",
        ],
    },
    Expected {
        edition: "ko",
        page: "lessons/12-ports.html",
        caption: ("그림:", &["dockling proxy"]),
        labels: &[
            "proxy 모드…",
            "nftables 테이블 ip dockling-<id>…",
            "브리지 dockling0 172.17.0.1/16",
            "eth0 172.17.0.x…",
        ],
    },
    Expected {
        edition: "en",
        page: "lessons/18-limits.html",
        caption: ("Figure:", &["cgroup-parent"]),
        labels: &[
            "/sys/fs/cgroup/memory/",
            "memory.limit_in_bytes",
            "cpu.cfs_quota_us",
            "pids.max",
            "cgroup v2: one tree…",
        ],
    },
    Expected {
        edition: "ko",
        page: "lessons/18-limits.html",
        caption: ("그림:", &["cgroup-parent"]),
        labels: &[
            "/sys/fs/cgroup/memory/",
            "memory.limit_in_bytes",
            "cpu.cfs_quota_us",
            "pids.max",
            "cgroup v2: 모든 컨트롤러에 트리 하나",
        ],
    },
];

#[test]
fn lesson_figures_are_drawn_in_both_editions() {
    let chromium = chromium();
    // Everything wrong on every page, reported at once: a translation that runs long usually
    // does so in more than one place.
    let mut problems = Vec::new();
    for expected in LESSON_FIGURES {
        let Expected {
            edition,
            page,
            caption: (starts, says),
            labels,
        } = expected;
        let build = if *edition == "en" {
            built()
        } else {
            built_ko()
        };
        let at = format!("{edition} {page}");
        let figures = drawn_figures(chromium, &build.join(page));
        let [figure] = figures.as_slice() else {
            problems.push(format!(
                "{at}: {} inline figures, not one: {figures:#?}",
                figures.len()
            ));
            continue;
        };
        let caption = &figure.caption;
        if !caption.starts_with(starts) {
            problems.push(format!(
                "{at}: the caption does not start `{starts}`: `{caption}`"
            ));
        }
        for word in *says {
            if !caption.contains(word) {
                problems.push(format!("{at}: the caption lacks `{word}`: `{caption}`"));
            }
        }
        for label in *labels {
            let drawn = match label.strip_suffix('…') {
                Some(start) => figure.labels.iter().any(|l| l.starts_with(start)),
                None => figure.labels.iter().any(|l| l == label),
            };
            if !drawn {
                problems.push(format!(
                    "{at}: the figure lacks the label `{label}` among {:?}",
                    figure.labels
                ));
            }
        }
        // Its digests are the ones the page's own transcript shows.
        if !figure.stale.is_empty() {
            problems.push(format!(
                "{at}: the figure names digests the page's text does not show \
                 (did the lab image change?): {:?}",
                figure.stale
            ));
        }
        // Every label fits, in this edition's font.
        problems.extend(figure.offenders.iter().map(|o| format!("{at}: {o}")));
    }
    assert!(
        problems.is_empty(),
        "lesson figures not drawn as expected:\n{}",
        problems.join("\n")
    );
}
