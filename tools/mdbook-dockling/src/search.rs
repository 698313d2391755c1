//! The search index of an edition whose words mdBook's index cannot read.
//!
//! mdBook 0.5 indexes every book with elasticlunr's English pipeline, whose trimmer keeps only
//! ASCII letters and digits: every Hangul word becomes empty, so no Korean word finds
//! anything. For such an edition the builder indexes again, from the documents mdBook saved in
//! its own index (each section's title, body and breadcrumbs, and its URL beside them): a word
//! is a run of letters, digits and `_` in any script, lowercased and kept whole. The pages
//! read a query the same way (`theme/search.js` of that edition, which also drops a Korean
//! particle from the end of a word, so "컨테이너를" looks for "컨테이너"), and mdBook's
//! `expand` search option then finds every indexed word that starts with it ("컨테이너는",
//! "컨테이너의").

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use elasticlunr::pipeline::{FnWrapper, Pipeline};
use elasticlunr::{Index, Language};

/// The fields mdBook indexes, in its order.
const FIELDS: [&str; 3] = ["title", "body", "breadcrumbs"];

/// Words in any script.
struct Words {
    code: String,
}

/// The words of `text`: runs of letters, digits and `_`, lowercased.
pub fn words(text: &str) -> Vec<String> {
    text.split(|c: char| !(c.is_alphanumeric() || c == '_'))
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect()
}

/// The pipeline's one step. Named "trimmer" because the page runs the function registered
/// under that name on every query word; the edition's `search.js` registers one that keeps
/// letters of every script. Here the words are already whole, so it has nothing to do.
fn trimmer(word: String) -> Option<String> {
    Some(word)
}

impl Language for Words {
    fn name(&self) -> String {
        format!("words in any script ({})", self.code)
    }

    fn code(&self) -> String {
        self.code.clone()
    }

    fn tokenize(&self, text: &str) -> Vec<String> {
        words(text)
    }

    fn make_pipeline(&self) -> Pipeline {
        Pipeline {
            queue: vec![Box::new(FnWrapper("trimmer".into(), trimmer))],
        }
    }
}

/// The JSON inside a `searchindex*.js`: mdBook writes
/// `window.search = Object.assign(window.search, JSON.parse('…'));` with every `\` and `'` of
/// the JSON escaped by a backslash.
fn unwrap_js(js: &str) -> Result<String> {
    let start = js
        .find("JSON.parse('")
        .context("not mdBook's searchindex.js: no JSON.parse('")?
        + "JSON.parse('".len();
    let end = js
        .rfind("'));")
        .context("not mdBook's searchindex.js: no '));")?;
    let mut out = String::with_capacity(end - start);
    let mut chars = js[start..end].chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            out.push(chars.next().context("a lone \\ at the end of the index")?);
        } else {
            out.push(c);
        }
    }
    Ok(out)
}

/// The inverse of [`unwrap_js`].
fn wrap_js(json: &str) -> String {
    format!(
        "window.search = Object.assign(window.search, JSON.parse('{}'));",
        json.replace('\\', "\\\\").replace('\'', "\\'")
    )
}

/// The built book's `searchindex*.js`.
fn index_file(html: &Path) -> Result<PathBuf> {
    let mut found = Vec::new();
    for e in std::fs::read_dir(html).with_context(|| format!("read {}", html.display()))? {
        let e = e?;
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with("searchindex") && name.ends_with(".js") {
            found.push(e.path());
        }
    }
    match found.len() {
        1 => Ok(found.remove(0)),
        0 => bail!(
            "{} has no searchindex*.js: is search on (mdbook-driver's `search` feature)?",
            html.display()
        ),
        _ => bail!("{} has more than one searchindex*.js", html.display()),
    }
}

/// Index mdBook's saved documents again with [`words`], keeping everything else of its index.
pub fn reindex_json(json: &str, code: &str) -> Result<String> {
    let mut v: serde_json::Value = serde_json::from_str(json).context("mdBook's search index")?;
    let docs = v["index"]["documentStore"]["docs"]
        .as_object()
        .context("mdBook's search index saved no documents")?;
    let mut refs: Vec<(u64, &String)> = docs
        .keys()
        .map(|k| Ok((k.parse::<u64>().context("a document ref")?, k)))
        .collect::<Result<_>>()?;
    refs.sort();
    let mut index = Index::with_language(
        Box::new(Words {
            code: code.to_string(),
        }),
        &FIELDS,
    );
    for (_, r) in refs {
        let doc = &docs[r];
        let fields: Vec<String> = FIELDS
            .iter()
            .map(|f| doc[*f].as_str().unwrap_or("").to_string())
            .collect();
        index.add_doc(r, fields);
    }
    v["index"] = serde_json::to_value(&index)?;
    Ok(serde_json::to_string(&v)?)
}

/// Rebuild the search index of the book built into `html` for language `code`.
pub fn reindex(html: &Path, code: &str) -> Result<()> {
    let file = index_file(html)?;
    let js = std::fs::read_to_string(&file).with_context(|| format!("read {}", file.display()))?;
    let json = reindex_json(&unwrap_js(&js)?, code)?;
    std::fs::write(&file, wrap_js(&json)).with_context(|| format!("write {}", file.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_of_every_script_are_kept_whole() {
        assert_eq!(
            words("네임스페이스(namespace)는 pivot_root(2)로, Copy-up."),
            [
                "네임스페이스",
                "namespace",
                "는",
                "pivot_root",
                "2",
                "로",
                "copy",
                "up"
            ]
        );
    }

    #[test]
    fn the_js_wrapping_round_trips() {
        let json = r#"{"a":"it's a \"quote\" and a \\ backslash"}"#;
        assert_eq!(unwrap_js(&wrap_js(json)).unwrap(), json);
        assert!(unwrap_js("var x = 1;").is_err());
    }

    #[test]
    fn a_reindexed_book_finds_hangul_words() {
        let json = serde_json::json!({
            "doc_urls": ["a.html#a", "b.html#b"],
            "index": {"documentStore": {"docs": {
                "0": {"id": "0", "title": "레이어", "body": "컨테이너는 프로세스입니다", "breadcrumbs": "레이어"},
                "1": {"id": "1", "title": "layers", "body": "an image is layers", "breadcrumbs": "layers"}
            }}},
            "search_options": {"expand": true}
        })
        .to_string();
        let out: serde_json::Value =
            serde_json::from_str(&reindex_json(&json, "ko").unwrap()).unwrap();
        assert_eq!(out["doc_urls"][1], "b.html#b");
        assert_eq!(out["search_options"]["expand"], true);
        assert_eq!(out["index"]["pipeline"], serde_json::json!(["trimmer"]));
        // The inverted index is a tree of characters from "root"; a word's last node lists
        // the documents that hold it.
        let body = &out["index"]["index"]["body"]["root"];
        let docs_of = |word: &str| {
            word.chars()
                .try_fold(body, |node, c| node.get(c.to_string()))
                .and_then(|n| n["docs"].as_object())
                .map(|d| d.keys().cloned().collect::<Vec<_>>())
                .unwrap_or_default()
        };
        assert_eq!(docs_of("컨테이너는"), ["0"]);
        assert_eq!(docs_of("프로세스입니다"), ["0"]);
        assert_eq!(docs_of("layers"), ["1"]);
        assert!(
            docs_of("컨테이너").is_empty(),
            "a prefix is not a word of its own"
        );
        assert_eq!(
            out["index"]["documentStore"]["docs"]["0"]["body"],
            "컨테이너는 프로세스입니다"
        );
    }
}
