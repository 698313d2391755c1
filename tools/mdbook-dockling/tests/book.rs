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

/// Measures the drawn figures (`<figure class="fig">`, inline SVG) of a page once its scripts
/// ran, and writes what it found between `FIGURES[` and `]END`: per figure, its caption, its
/// labels, the 12-digit digests its labels name that the page's text outside the figures does
/// not show (a figure gone stale), and every label that does not fit: one whose box (as laid
/// out in the page's font: Korean labels are wider) leaves the drawing's viewBox, leaves the
/// rectangle it is written in (the smallest one around its anchor point), or overlaps another
/// label.
const FIGURE_FIT: &str = r#"<script>
window.addEventListener('load', () => setTimeout(() => {
  const main = document.querySelector('main').cloneNode(true);
  main.querySelectorAll('figure.fig').forEach(f => f.remove());
  const outside = main.textContent;
  const within = (b, r, slack) => b.x >= r.x - slack && b.y >= r.y - slack
    && b.x + b.width <= r.x + r.width + slack && b.y + b.height <= r.y + r.height + slack;
  const figures = [...document.querySelectorAll('main figure.fig')].map(fig => {
    const svg = fig.querySelector('svg');
    const caption = fig.querySelector('figcaption');
    const found = {
      svg: !!svg,
      caption: caption ? caption.textContent.replace(/\s+/g, ' ').trim() : '',
      labels: [], stale: [], offenders: [],
    };
    if (!svg) return found;
    const view = svg.viewBox.baseVal;
    const rects = [...svg.querySelectorAll('rect')].map(r => r.getBBox());
    const placed = [];
    svg.querySelectorAll('text').forEach(t => {
      const label = t.textContent;
      found.labels.push(label);
      (label.match(/\b[0-9a-f]{12}\b/g) || [])
        .filter(d => !outside.includes(d)).forEach(d => found.stale.push(d));
      const b = t.getBBox();
      const at = label + ' [x ' + Math.round(b.x) + '..' + Math.round(b.x + b.width)
        + ', y ' + Math.round(b.y) + '..' + Math.round(b.y + b.height) + ']';
      if (b.width === 0) found.offenders.push('not drawn: ' + at);
      if (!within(b, view, 0)) found.offenders.push('outside the drawing: ' + at);
      const x = t.x.baseVal[0].value, y = t.y.baseVal[0].value;
      const home = rects
        .filter(r => x >= r.x && x <= r.x + r.width && y >= r.y && y <= r.y + r.height)
        .sort((p, q) => p.width * p.height - q.width * q.height)[0];
      if (home && !within(b, home, 0.5)) found.offenders.push('out of its box: ' + at);
      // A label's box is its font's whole line height, so lines 16 units apart may touch.
      placed.filter(([o]) => b.x < o.x + o.width - 1 && o.x < b.x + b.width - 1
          && b.y < o.y + o.height - 2 && o.y < b.y + b.height - 2)
        .forEach(([, other]) => found.offenders.push('overlaps: ' + at + ' / ' + other));
      placed.push([b, at]);
    });
    return found;
  });
  const out = document.createElement('div');
  out.textContent = 'FIGURES' + '[' + JSON.stringify(figures) + ']' + 'END';
  document.body.appendChild(out);
}, 200));
</script>"#;

/// What [`FIGURE_FIT`] found on `page`: (caption, labels, stale digests, offenders) per figure.
type Figure = (String, Vec<String>, Vec<String>, Vec<String>);

fn drawn_figures(chromium: &str, page: &Path) -> Vec<Figure> {
    let html = std::fs::read_to_string(page).unwrap();
    let copy = page.with_file_name(format!(
        "figures-a-{}",
        page.file_name().unwrap().to_string_lossy()
    ));
    std::fs::write(
        &copy,
        html.replace("</body>", &format!("{FIGURE_FIT}</body>")),
    )
    .unwrap();
    let dom = render(chromium, &copy);
    std::fs::remove_file(&copy).unwrap();
    let found = dom
        .split_once("FIGURES[")
        .and_then(|(_, rest)| rest.split_once("]END"))
        .map(|(json, _)| {
            json.replace("&amp;", "&")
                .replace("&lt;", "<")
                .replace("&gt;", ">")
        })
        .unwrap_or_else(|| panic!("the figure script did not run on {}", page.display()));
    let v: serde_json::Value = serde_json::from_str(&found).unwrap();
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
        .map(|f| {
            assert!(
                f["svg"].as_bool().unwrap(),
                "{}: a figure without its drawing",
                page.display()
            );
            (
                f["caption"].as_str().unwrap().to_string(),
                strings(&f["labels"]),
                strings(&f["stale"]),
                strings(&f["offenders"]),
            )
        })
        .collect()
}

#[test]
fn lesson_figures_a_are_drawn_in_both_editions() {
    let chromium = chromium();
    // Per page and edition: how the figure's caption starts, and labels it must show.
    let pages: [(&str, &Path, &str, &str, &[&str]); 6] = [
        (
            "en",
            built(),
            "lessons/02-images.html",
            "Figure: what httpd:latest is made of",
            &[
                "manifest 83cd225f07d1",
                "config 21ea20385648",
                "layer 5f8e91d427aa",
                "a1670f675286/",
            ],
        ),
        (
            "ko",
            built_ko(),
            "lessons/02-images.html",
            "그림: 위 출력의 다이제스트",
            &[
                "매니페스트 83cd225f07d1",
                "설정 21ea20385648",
                "레이어 5f8e91d427aa",
                "a1670f675286/",
            ],
        ),
        (
            "en",
            built(),
            "lessons/05-layers.html",
            "Figure: the overlay of the layered container",
            &[
                "lower: 3229bc352df3",
                "copy-up: whole file",
                "c 0/0: whiteout",
                "root/new.txt",
            ],
        ),
        (
            "ko",
            built_ko(),
            "lessons/05-layers.html",
            "그림: 위의 layered 컨테이너의 오버레이",
            &[
                "lower: 3229bc352df3",
                "카피업: 파일 전체",
                "c 0/0: 화이트아웃",
                "root/new.txt",
            ],
        ),
        (
            "en",
            built(),
            "lessons/06-registries.html",
            "Figure: what push and pull ask the registry",
            &[
                "HEAD /v2/me/box/blobs/sha256:5f8e91d427aa",
                "201 Created: “Mounted from library/busybox”, no bytes sent",
                "PUT /v2/me/box/manifests/v1",
                "GET …/blobs/sha256:11bd243a27aa",
            ],
        ),
        (
            "ko",
            built_ko(),
            "lessons/06-registries.html",
            "그림: push와 pull이 레지스트리",
            &[
                "HEAD /v2/me/box/blobs/sha256:5f8e91d427aa",
                "201 Created: “Mounted from library/busybox”, 보낸 바이트 없음",
                "PUT /v2/me/box/manifests/v1",
                "GET …/blobs/sha256:11bd243a27aa",
            ],
        ),
    ];
    let mut problems = Vec::new();
    for (edition, build, page, caption, labels) in pages {
        let figures = drawn_figures(chromium, &build.join(page));
        let Some((_, drawn, stale, _)) = figures.iter().find(|f| f.0.starts_with(caption)) else {
            problems.push(format!(
                "{edition} {page}: no figure captioned `{caption}…` among {:?}",
                figures.iter().map(|f| &f.0).collect::<Vec<_>>()
            ));
            continue;
        };
        for label in labels {
            if !drawn.iter().any(|l| l == label) {
                problems.push(format!("{edition} {page}: the figure lacks `{label}`"));
            }
        }
        // Its digests are the ones the page's own transcript shows.
        if !stale.is_empty() {
            problems.push(format!(
                "{edition} {page}: digests the transcript does not show: {stale:?}"
            ));
        }
        // Every drawn figure of the page fits, in this edition's font.
        for (caption, _, _, offenders) in &figures {
            for offender in offenders {
                problems.push(format!("{edition} {page} ({caption:.30}…): {offender}"));
            }
        }
    }
    assert!(problems.is_empty(), "{problems:#?}");
}

/// Measures every inline figure (`figure.fig`) of a page once it is drawn, and writes what it
/// found into the page, between `FIGURES[` and `]END`: per figure, its caption, its labels,
/// and every label that does not fit: one reaching out of the drawing (the svg's viewBox),
/// one crossing the edge of a box (a label is wholly inside a box or wholly outside it), and
/// one overlapping another label. Sizes are the browser's own (`getBBox`, in the svg's units,
/// in the font the page really got), so a longer translation or a wider font shows up here.
const FIGURE_TEXT: &str = r#"<script>
window.addEventListener('load', () => setTimeout(() => {
  const inside = (a, b) => a.x >= b.x - 0.5 && a.y >= b.y - 0.5
    && a.x + a.width <= b.x + b.width + 0.5 && a.y + a.height <= b.y + b.height + 0.5;
  const apart = (a, b) => a.x + a.width <= b.x + 0.5 || b.x + b.width <= a.x + 0.5
    || a.y + a.height <= b.y + 0.5 || b.y + b.height <= a.y + 0.5;
  const round = b => [b.x, b.y, b.width, b.height].map(Math.round).join(',');
  const figures = [...document.querySelectorAll('main figure.fig')].map(fig => {
    const svg = fig.querySelector('svg');
    if (!svg) return {caption: '', labels: [], offenders: ['no svg']};
    const view = svg.viewBox.baseVal;
    const texts = [...svg.querySelectorAll('text')];
    const labels = texts.map(t => t.getBBox());
    const boxes = [...svg.querySelectorAll('rect')].map(r => r.getBBox());
    const offenders = [];
    texts.forEach((t, i) => {
      const b = labels[i];
      const name = '`' + t.textContent + '` (' + round(b) + ')';
      if (b.width === 0) offenders.push(name + ' is not drawn');
      if (!inside(b, view)) offenders.push(name + ' reaches out of the drawing (' + round(view) + ')');
      boxes.forEach(r => {
        if (!inside(b, r) && !apart(b, r)) offenders.push(name + ' crosses the edge of the box ' + round(r));
      });
      labels.forEach((o, j) => {
        if (j > i && !apart(b, o)) offenders.push(name + ' overlaps `' + texts[j].textContent + '`');
      });
    });
    const caption = fig.querySelector('figcaption');
    return {
      caption: caption ? caption.textContent.replace(/\s+/g, ' ').trim() : '',
      labels: texts.map(t => t.textContent),
      offenders,
    };
  });
  const out = document.createElement('div');
  out.textContent = 'FIGURES' + '[' + JSON.stringify(figures) + ']' + 'END';
  document.body.appendChild(out);
}, 200));
</script>"#;

/// What [`FIGURE_TEXT`] found on `page`: per figure, its caption, labels and offenders.
fn figures_drawn(chromium: &str, page: &Path) -> Vec<(String, Vec<String>, Vec<String>)> {
    let html = std::fs::read_to_string(page).unwrap();
    let copy = page.with_file_name(format!(
        "figures-{}",
        page.file_name().unwrap().to_string_lossy()
    ));
    std::fs::write(
        &copy,
        html.replace("</body>", &format!("{FIGURE_TEXT}</body>")),
    )
    .unwrap();
    let dom = render(chromium, &copy);
    std::fs::remove_file(&copy).unwrap();
    let found = dom
        .split_once("FIGURES[")
        .and_then(|(_, rest)| rest.split_once("]END"))
        .map(|(json, _)| {
            json.replace("&lt;", "<")
                .replace("&gt;", ">")
                .replace("&amp;", "&")
        })
        .unwrap_or_else(|| panic!("the figure script did not run on {}", page.display()));
    let v: serde_json::Value = serde_json::from_str(&found).unwrap();
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
        .map(|f| {
            (
                f["caption"].as_str().unwrap().to_string(),
                strings(&f["labels"]),
                strings(&f["offenders"]),
            )
        })
        .collect()
}

#[test]
fn lesson_figures_b_are_drawn_in_both_editions() {
    let chromium = chromium();
    // Each page, in each edition: the one inline figure it draws, a label or two that must be
    // in it, and a word its caption must say.
    let pages: [(&str, &str, &[&str], &str); 6] = [
        (
            "en",
            "lessons/04-namespaces.html",
            &[
                "container's pid namespace",
                "NSpid: 4242 1",
                "with --pid host",
            ],
            "NSpid",
        ),
        (
            "ko",
            "lessons/04-namespaces.html",
            &[
                "컨테이너의 pid 네임스페이스",
                "NSpid: 4242 1",
                "--pid host이면",
            ],
            "NSpid",
        ),
        (
            "en",
            "lessons/18-limits.html",
            &[
                "/sys/fs/cgroup/memory/",
                "memory.limit_in_bytes",
                "cpu.cfs_quota_us",
                "pids.max",
                "cgroup v2: one tree",
            ],
            "cgroup-parent",
        ),
        (
            "ko",
            "lessons/18-limits.html",
            &[
                "/sys/fs/cgroup/memory/",
                "memory.limit_in_bytes",
                "cpu.cfs_quota_us",
                "pids.max",
                "cgroup v2: 모든 컨트롤러에 트리 하나",
            ],
            "cgroup-parent",
        ),
        (
            "en",
            "lessons/12-ports.html",
            &[
                "proxy mode",
                "nftables table ip dockling-<id>",
                "bridge dockling0 172.17.0.1/16",
                "eth0 172.17.0.x",
            ],
            "dockling proxy",
        ),
        (
            "ko",
            "lessons/12-ports.html",
            &[
                "proxy 모드",
                "nftables 테이블 ip dockling-<id>",
                "브리지 dockling0 172.17.0.1/16",
                "eth0 172.17.0.x",
            ],
            "dockling proxy",
        ),
    ];
    // Labels that do not fit, on every page (all reported at once: a translation that runs
    // long usually does so in more than one place).
    let mut misfits = Vec::new();
    for (edition, page, labels, caption_word) in pages {
        let build = if edition == "en" { built() } else { built_ko() };
        let figures = figures_drawn(chromium, &build.join(page));
        assert_eq!(
            figures.len(),
            1,
            "{edition} {page}: its inline figures: {figures:#?}"
        );
        let (caption, drawn, offenders) = &figures[0];
        assert!(
            caption.contains(caption_word),
            "{edition} {page}: the caption `{caption}` lacks `{caption_word}`"
        );
        for label in labels {
            assert!(
                drawn.iter().any(|d| d.contains(label)),
                "{edition} {page}: the figure lacks the label `{label}`: {drawn:#?}"
            );
        }
        misfits.extend(offenders.iter().map(|o| format!("{edition} {page}: {o}")));
    }
    assert!(misfits.is_empty(), "labels that do not fit: {misfits:#?}");
}
