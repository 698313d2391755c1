//! The book builds (with every lesson's tested transcript placed), its links hold, and a
//! lesson page rendered by a real browser (headless Chromium) shows the transcript.

use std::path::Path;
use std::process::Command;

fn book_dir() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../book/en")
}

#[test]
fn the_book_builds_its_links_hold_and_a_browser_shows_a_lesson_transcript() {
    let out = Command::new(env!("CARGO_BIN_EXE_mdbook-dockling"))
        .arg("build")
        .arg(book_dir())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "book build failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let page = std::fs::canonicalize(book_dir().join("build/lessons/01-hello-world.html")).unwrap();
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(
        !html.contains("{{#dockling-lesson"),
        "a marker was left unexpanded"
    );

    let chromium = ["chromium", "chromium-browser"]
        .into_iter()
        .find(|c| {
            Command::new("sh")
                .args(["-c", &format!("command -v {c}")])
                .output()
                .is_ok_and(|o| o.status.success())
        })
        .expect("Chromium is missing: `apt-get install chromium` (scripts/test installs it)");
    let profile =
        std::env::temp_dir().join(format!("mdbook-dockling-chromium-{}", std::process::id()));
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
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg("--dump-dom")
        .arg(format!("file://{}", page.display()))
        .output()
        .unwrap();
    let _ = std::fs::remove_dir_all(&profile);
    let dom = String::from_utf8_lossy(&dom.stdout);
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
