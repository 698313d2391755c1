//! The Korean edition is the English one in Korean: the same chapters in the same order, the
//! same transcripts and figures (each a marker the builder fills from the tests' snapshots of
//! that language), the same commands and examples, the same links, and every lesson text
//! written in both languages. (The transcripts themselves: tests/lessons.rs runs every lesson
//! in both languages and holds their commands and output to each other; the trace catalog:
//! `every_language_has_exactly_the_keys_of_english` in src/trace/catalog.rs.)

use std::path::{Path, PathBuf};

const EDITIONS: &[&str] = &["en", "ko"];

fn src(edition: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("book")
        .join(edition)
        .join("src")
}

/// The pages SUMMARY.md links, in order, with their link texts.
fn summary(edition: &str) -> Vec<(String, String)> {
    let text = std::fs::read_to_string(src(edition).join("SUMMARY.md")).unwrap();
    let re = regex::Regex::new(r"\[([^\]]+)\]\(([^)]+\.md)\)").unwrap();
    re.captures_iter(&text)
        .map(|c| (c[1].to_string(), c[2].to_string()))
        .collect()
}

/// The fenced code blocks of a page, in order.
fn code_blocks(page: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    let mut current: Option<Vec<&str>> = None;
    for line in page.lines() {
        let fence = line.trim_start().starts_with("```");
        match (&mut current, fence) {
            (None, true) => current = Some(vec![line]),
            (Some(b), true) => {
                b.push(line);
                blocks.push(current.take().unwrap().join("\n"));
            }
            (Some(b), false) => b.push(line),
            (None, false) => {}
        }
    }
    blocks
}

/// What must be the same on both editions of a page: its `{{#…}}` markers, its link targets
/// and its heading anchors that other pages can link to (`{#id}`), each in order.
fn skeleton(page: &str) -> (Vec<String>, Vec<String>) {
    let without_code: String = {
        let mut out = String::new();
        let mut fenced = false;
        for line in page.lines() {
            if line.trim_start().starts_with("```") {
                fenced = !fenced;
                continue;
            }
            if !fenced {
                out.push_str(line);
                out.push('\n');
            }
        }
        out
    };
    let markers = regex::Regex::new(r"\{\{#[^}]+\}\}")
        .unwrap()
        .find_iter(&without_code)
        .map(|m| m.as_str().to_string())
        .collect();
    let links = regex::Regex::new(r"\]\(([^)\s]+)\)")
        .unwrap()
        .captures_iter(&without_code)
        .map(|c| c[1].to_string())
        .collect();
    (markers, links)
}

#[test]
fn both_editions_have_the_same_chapters_in_the_same_order() {
    let en = summary("en");
    let ko = summary("ko");
    let files = |s: &[(String, String)]| s.iter().map(|(_, f)| f.clone()).collect::<Vec<_>>();
    assert_eq!(
        files(&en),
        files(&ko),
        "SUMMARY.md of en and ko list other pages"
    );
    for (title, file) in &ko {
        assert!(
            src("ko").join(file).is_file(),
            "ko's SUMMARY.md lists {file} ({title}), which book/ko/src lacks"
        );
        assert!(
            title.contains(|c: char| ('\u{ac00}'..='\u{d7a3}').contains(&c)),
            "ko's SUMMARY.md titles {file} in no Korean: {title}"
        );
    }
}

#[test]
fn a_lessons_title_is_its_chapters_title_in_each_edition() {
    let lessons = dockling::lessons::all().unwrap();
    for edition in EDITIONS {
        let summary = summary(edition);
        for (n, file, lesson) in &lessons {
            let page = format!("lessons/{}.md", file.trim_end_matches(".yaml"));
            let title = lesson.title.get(edition);
            assert!(
                summary.contains(&(format!("{n}. {title}"), page.clone())),
                "{edition}: SUMMARY.md should list {page} as \"{n}. {title}\" (the lesson's title)"
            );
            let text = std::fs::read_to_string(src(edition).join(&page)).unwrap();
            let heading = match *edition {
                "ko" => format!("# 레슨 {n}: {title}"),
                _ => format!("# Lesson {n}: {title}"),
            };
            assert_eq!(
                text.lines().next().unwrap_or(""),
                heading,
                "{edition}: {page}'s heading"
            );
        }
    }
}

#[test]
fn every_page_shows_the_same_commands_markers_and_links_in_both_editions() {
    let mut wrong = Vec::new();
    for (_, file) in summary("en") {
        let en = std::fs::read_to_string(src("en").join(&file)).unwrap();
        let ko = std::fs::read_to_string(src("ko").join(&file)).unwrap();
        let (en_code, ko_code) = (code_blocks(&en), code_blocks(&ko));
        if en_code != ko_code {
            let first = en_code
                .iter()
                .zip(&ko_code)
                .position(|(a, b)| a != b)
                .unwrap_or(en_code.len().min(ko_code.len()));
            wrong.push(format!(
                "{file}: code blocks differ ({} in en, {} in ko; block {} first):\n{}\n---\n{}",
                en_code.len(),
                ko_code.len(),
                first + 1,
                en_code.get(first).map(String::as_str).unwrap_or("(none)"),
                ko_code.get(first).map(String::as_str).unwrap_or("(none)")
            ));
        }
        let (en_markers, en_links) = skeleton(&en);
        let (ko_markers, ko_links) = skeleton(&ko);
        if en_markers != ko_markers {
            wrong.push(format!(
                "{file}: markers differ: en {en_markers:?}, ko {ko_markers:?}"
            ));
        }
        if en_links != ko_links {
            wrong.push(format!(
                "{file}: link targets differ:\n  en {en_links:?}\n  ko {ko_links:?}"
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n\n"));
}

#[test]
fn every_lesson_text_is_written_in_every_language() {
    let mut missing = Vec::new();
    for (n, file, l) in dockling::lessons::all().unwrap() {
        let mut texts = vec![
            ("title".to_string(), &l.title),
            ("goal".to_string(), &l.goal),
        ];
        if l.intro != Default::default() {
            texts.push(("intro".into(), &l.intro));
        }
        if l.outro != Default::default() {
            texts.push(("outro".into(), &l.outro));
        }
        for (i, s) in l.steps.iter().enumerate() {
            if s.say != Default::default() {
                texts.push((format!("step {}", i + 1), &s.say));
            }
        }
        for (i, c) in l.check.iter().enumerate() {
            texts.push((format!("check {} name", i + 1), &c.name));
            texts.push((format!("check {} expected", i + 1), &c.expected));
            if c.hint != Default::default() {
                texts.push((format!("check {} hint", i + 1), &c.hint));
            }
        }
        for (what, text) in texts {
            let langs: Vec<&str> = text.languages().collect();
            if langs != EDITIONS {
                missing.push(format!("lesson {n} ({file}), {what}: written in {langs:?}"));
            }
            if text.get("ko") == text.get("en") && !text.get("en").trim().is_empty() {
                missing.push(format!("lesson {n} ({file}), {what}: ko is the English"));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "lesson texts not in every language ({EDITIONS:?}):\n{}",
        missing.join("\n")
    );
}
