//! The explanations catalog: per-language YAML keyed by syscall (+ refinement) and step.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use serde::Deserialize;

/// Why a syscall was made, in plain words, and where to read more.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Explanation {
    /// The man page, like `pivot_root(2)`.
    pub man: String,
    /// One sentence, lowercase, no trailing period.
    pub text: String,
}

/// A step's title and the command to run on the host meanwhile.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StepText {
    /// What the step does.
    pub title: String,
    /// What to look at while paused; `{pid}`, `{root}`... are filled in.
    pub look: String,
}

/// One language's catalog.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Catalog {
    /// By `Call::explain_key`.
    pub syscalls: BTreeMap<String, Explanation>,
    /// By `StepId::key`.
    pub steps: BTreeMap<String, StepText>,
    /// Registry exchanges, by `registry::trace::kind`.
    pub http: BTreeMap<String, HttpText>,
    /// The lesson runner's own lines around a lesson's texts ("Goal: …", a check's "not yet"),
    /// with `{name}` placeholders: see [`Catalog::lesson`].
    pub lesson: BTreeMap<String, String>,
    /// The words of a figure `dockling trace render` draws (its headings, axis, panels), with
    /// `{name}` placeholders: see [`Catalog::render`].
    pub render: BTreeMap<String, String>,
}

/// Why an HTTP exchange with a registry happens, and where the protocol describes it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpText {
    /// Where to read more (the distribution spec's section).
    pub spec: String,
    /// One sentence, lowercase, no trailing period.
    pub text: String,
}

/// The languages that ship, as (code, YAML source). English first: it is the fallback.
pub const LANGUAGES: &[(&str, &str)] = &[
    ("en", include_str!("catalog/en.yaml")),
    ("ko", include_str!("catalog/ko.yaml")),
];

/// The same catalogs as JSON, made from the YAML by `build.rs`, as (code, JSON), in the order
/// of [`LANGUAGES`]: what the binary parses (YAML took about 10 ms, JSON a seventieth of it).
pub const COMPILED: &[(&str, &str)] = &[
    (
        "en",
        include_str!(concat!(env!("OUT_DIR"), "/catalog_en.json")),
    ),
    (
        "ko",
        include_str!(concat!(env!("OUT_DIR"), "/catalog_ko.json")),
    ),
];

/// The language of a `--lang`, `DOCKLING_LANG` or locale value: its code (`ko`), or a locale
/// whose language is one (`ko_KR.UTF-8`, `ko-KR`, `KO`). `None` for anything else (`C`,
/// `POSIX`, `fr_FR.UTF-8`, an empty value).
pub fn language_code(value: &str) -> Option<&'static str> {
    let lang = value
        .split(['_', '-', '.', '@'])
        .next()
        .unwrap_or_default()
        .to_ascii_lowercase();
    LANGUAGES
        .iter()
        .map(|(code, _)| *code)
        .find(|code| *code == lang)
}

/// The codes of the languages that ship, for messages: `en, ko`.
pub fn language_list() -> String {
    LANGUAGES
        .iter()
        .map(|(code, _)| *code)
        .collect::<Vec<_>>()
        .join(", ")
}

/// The language the environment asks for: `DOCKLING_LANG` if it names a language that ships,
/// else the locale of messages as the C library finds it (the first non-empty one of `LC_ALL`,
/// `LC_MESSAGES`, `LANG`: `LC_ALL=C` means English even with `LANG=ko_KR.UTF-8`), English
/// otherwise. `--lang` comes before all of these: see [`choose`].
pub fn language_from_env(var: impl Fn(&str) -> Option<String>) -> &'static str {
    let set = |name: &str| var(name).filter(|v| !v.is_empty());
    if let Some(code) = set("DOCKLING_LANG").and_then(|v| language_code(&v)) {
        return code;
    }
    ["LC_ALL", "LC_MESSAGES", "LANG"]
        .into_iter()
        .find_map(set)
        .and_then(|v| language_code(&v))
        .unwrap_or(LANGUAGES[0].0)
}

/// The language of this process's explanations: chosen once, by [`choose`] or on first use.
static LANGUAGE: OnceLock<&'static str> = OnceLock::new();

/// Choose the language of this process's explanations, before anything asks for one: `main`
/// calls it with `--lang` (clap has already filled that from `DOCKLING_LANG` when the flag is
/// absent, and refused a language that does not ship); `None` falls back to the environment.
/// The choice is also put in `DOCKLING_LANG`, so the dockling processes this one starts (the
/// re-exec from the read-only binary, a detached container's monitor, the steps of a lesson)
/// explain in the same language. Returns the code in use: a second call changes nothing.
/// The catalog itself is parsed only when something explains (`ps` never does).
pub fn choose(lang: Option<&str>) -> &'static str {
    let code = lang
        .and_then(language_code)
        .unwrap_or_else(|| language_from_env(|k| std::env::var(k).ok()));
    if lang.is_some() {
        // Single-threaded still: main calls this right after parsing the command line.
        std::env::set_var("DOCKLING_LANG", code);
    }
    LANGUAGE.get_or_init(|| code)
}

impl Catalog {
    /// Parse one language's YAML.
    pub fn parse(src: &str) -> Result<Catalog, serde_yaml::Error> {
        serde_yaml::from_str(src)
    }

    /// Parse one language's catalog as `build.rs` compiled it ([`COMPILED`]).
    pub fn parse_compiled(json: &str) -> Result<Catalog, serde_json::Error> {
        serde_json::from_str(json)
    }

    /// The catalog of [`Catalog::language`].
    pub fn get() -> &'static Catalog {
        static CATALOG: OnceLock<Catalog> = OnceLock::new();
        CATALOG.get_or_init(|| Catalog::compiled(Catalog::language()))
    }

    /// The built-in catalog of language `code` (English for a code that does not ship).
    fn compiled(code: &str) -> Catalog {
        let json = COMPILED
            .iter()
            .find(|(c, _)| *c == code)
            .unwrap_or(&COMPILED[0])
            .1;
        Catalog::parse_compiled(json).expect("built-in catalog is valid (checked by tests)")
    }

    /// The language code in use (`en`, `ko`): the one [`choose`] chose; if nothing chose one
    /// (a library user, a unit test), the environment's (see [`language_from_env`]).
    pub fn language() -> &'static str {
        LANGUAGE.get_or_init(|| language_from_env(|k| std::env::var(k).ok()))
    }

    /// The explanation of a syscall key, falling back to the bare syscall name.
    pub fn explain(&self, key: &str) -> Option<&Explanation> {
        self.syscalls.get(key).or_else(|| {
            key.split_once('.')
                .and_then(|(name, _)| self.syscalls.get(name))
        })
    }

    /// The title of a step.
    pub fn step(&self, key: &str) -> Option<&StepText> {
        self.steps.get(key)
    }

    /// The lesson runner's line `key` with each `{name}` replaced by its value. A key this
    /// language lacks is English's (the tests keep every language complete).
    pub fn lesson(&self, key: &str, values: &[(&str, &str)]) -> String {
        fill(&self.lesson, |en| &en.lesson, key, values)
    }

    /// A figure's words `key` with each `{name}` replaced by its value, as [`Catalog::lesson`].
    pub fn render(&self, key: &str, values: &[(&str, &str)]) -> String {
        fill(&self.render, |en| &en.render, key, values)
    }
}

/// The template `key` of `section` (English's `of_en` section if this language lacks it) with
/// each `{name}` replaced by its value.
fn fill(
    section: &BTreeMap<String, String>,
    of_en: fn(&Catalog) -> &BTreeMap<String, String>,
    key: &str,
    values: &[(&str, &str)],
) -> String {
    let template = section.get(key).cloned().unwrap_or_else(|| {
        of_en(&Catalog::compiled(LANGUAGES[0].0))
            .get(key)
            .cloned()
            .unwrap_or_else(|| key.to_string())
    });
    values.iter().fold(template, |t, (name, value)| {
        t.replace(&format!("{{{name}}}"), value)
    })
}

/// The `{name}` placeholders of a template, in order.
#[cfg(test)]
fn placeholders(template: &str) -> Vec<&str> {
    template
        .split('{')
        .skip(1)
        .filter_map(|rest| rest.split_once('}').map(|(name, _)| name))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::StepId;
    use crate::sys::Call;

    #[test]
    fn the_compiled_catalogs_are_the_yaml_ones() {
        assert_eq!(COMPILED.len(), LANGUAGES.len());
        for ((lang, yaml), (code, json)) in LANGUAGES.iter().zip(COMPILED) {
            assert_eq!(lang, code);
            let from_yaml = Catalog::parse(yaml).unwrap_or_else(|e| panic!("catalog {lang}: {e}"));
            let from_json =
                Catalog::parse_compiled(json).unwrap_or_else(|e| panic!("compiled {lang}: {e}"));
            assert_eq!(format!("{from_yaml:?}"), format!("{from_json:?}"), "{lang}");
        }
    }

    #[test]
    fn every_call_the_engine_can_make_is_explained_in_every_language() {
        for (lang, src) in LANGUAGES {
            let cat = Catalog::parse(src).unwrap_or_else(|e| panic!("catalog {lang}: {e}"));
            for call in Call::examples() {
                let key = call.explain_key();
                assert!(
                    cat.syscalls.contains_key(key),
                    "catalog {lang} has no explanation for {key} ({call})"
                );
            }
        }
    }

    #[test]
    fn every_step_has_a_title_in_every_language() {
        for (lang, src) in LANGUAGES {
            let cat = Catalog::parse(src).unwrap();
            for step in StepId::ALL {
                assert!(
                    cat.steps.contains_key(step.key()),
                    "catalog {lang} has no text for step {}",
                    step.key()
                );
            }
        }
    }

    #[test]
    fn every_step_variant_has_a_title_in_every_language() {
        for (lang, src) in LANGUAGES {
            let cat = Catalog::parse(src).unwrap();
            for (step, variant) in crate::plan::VARIANTS {
                let key = format!("{}:{variant}", step.key());
                assert!(
                    cat.steps.contains_key(&key),
                    "catalog {lang} has no text for step variant {key}"
                );
            }
        }
    }

    /// Every language explains exactly what English explains: no key missing (a call or step
    /// added to en.yaml on another branch fails here until it is translated, as it should),
    /// none left over (a key renamed in English but not in the translation), and the man pages
    /// and spec sections the same, since they name English documents.
    #[test]
    fn every_language_has_exactly_the_keys_of_english() {
        let en = Catalog::parse(LANGUAGES[0].1).unwrap();
        for (lang, src) in &LANGUAGES[1..] {
            let cat = Catalog::parse(src).unwrap_or_else(|e| panic!("catalog {lang}: {e}"));
            fn diff<'a, V, W>(
                en: &'a BTreeMap<String, V>,
                other: &'a BTreeMap<String, W>,
            ) -> (Vec<&'a String>, Vec<&'a String>) {
                (
                    en.keys().filter(|k| !other.contains_key(*k)).collect(),
                    other.keys().filter(|k| !en.contains_key(*k)).collect(),
                )
            }
            for (section, (missing, extra)) in [
                ("syscalls", diff(&en.syscalls, &cat.syscalls)),
                ("steps", diff(&en.steps, &cat.steps)),
                ("http", diff(&en.http, &cat.http)),
                ("lesson", diff(&en.lesson, &cat.lesson)),
                ("render", diff(&en.render, &cat.render)),
            ] {
                assert!(
                    missing.is_empty() && extra.is_empty(),
                    "catalog {lang}, {section}: missing {missing:?}, not in en.yaml {extra:?}"
                );
            }
            for (key, e) in &en.syscalls {
                assert_eq!(e.man, cat.syscalls[key].man, "catalog {lang}: man of {key}");
                assert_ne!(
                    e.text, cat.syscalls[key].text,
                    "catalog {lang}: {key} untranslated"
                );
            }
            for (key, e) in &en.http {
                assert_eq!(e.spec, cat.http[key].spec, "catalog {lang}: spec of {key}");
            }
            for (key, s) in &en.steps {
                assert_ne!(
                    s.title, cat.steps[key].title,
                    "catalog {lang}: {key} untranslated"
                );
            }
            for (key, line) in en.lesson.iter().chain(&en.render) {
                let mut want = placeholders(line);
                let theirs = cat.lesson.get(key).or(cat.render.get(key)).unwrap();
                let mut got = placeholders(theirs);
                want.sort();
                got.sort();
                assert_eq!(want, got, "catalog {lang}: the placeholders of {key}");
                assert_ne!(line, theirs, "catalog {lang}: {key} untranslated");
            }
        }
    }

    #[test]
    fn lesson_lines_fill_their_placeholders() {
        let en = Catalog::parse(LANGUAGES[0].1).unwrap();
        assert_eq!(
            en.lesson("goal", &[("goal", "run a container")]),
            "Goal: run a container"
        );
        let ko = Catalog::parse(LANGUAGES[1].1).unwrap();
        let line = ko.lesson("check.not_yet", &[("name", "web")]);
        assert!(line.starts_with("web") && !line.contains('{'), "{line}");
    }

    #[test]
    fn a_language_is_named_by_its_code_or_a_locale() {
        for (value, want) in [
            ("ko", Some("ko")),
            ("ko_KR.UTF-8", Some("ko")),
            ("ko-KR", Some("ko")),
            ("KO", Some("ko")),
            ("en_US.UTF-8", Some("en")),
            ("C.UTF-8", None),
            ("POSIX", None),
            ("kor", None),
            ("xx", None),
            ("", None),
        ] {
            assert_eq!(language_code(value), want, "{value:?}");
        }
        assert_eq!(language_list(), "en, ko");
    }

    #[test]
    fn the_environment_chooses_dockling_lang_then_the_locale_in_libc_order() {
        let with = |vars: &[(&str, &str)]| {
            let vars: Vec<(String, String)> = vars
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            language_from_env(move |k| {
                vars.iter()
                    .find(|(name, _)| name == k)
                    .map(|(_, v)| v.clone())
            })
        };
        assert_eq!(with(&[]), "en");
        assert_eq!(with(&[("LANG", "ko_KR.UTF-8")]), "ko");
        assert_eq!(
            with(&[("LC_MESSAGES", "ko_KR.UTF-8"), ("LANG", "en_US")]),
            "ko"
        );
        assert_eq!(
            with(&[("LC_ALL", "ko_KR.UTF-8"), ("LC_MESSAGES", "en_US")]),
            "ko"
        );
        // LC_ALL=C wins over LANG, as in every C program: English.
        assert_eq!(with(&[("LC_ALL", "C"), ("LANG", "ko_KR.UTF-8")]), "en");
        // An empty variable counts as unset.
        assert_eq!(with(&[("LC_ALL", ""), ("LANG", "ko_KR.UTF-8")]), "ko");
        assert_eq!(with(&[("DOCKLING_LANG", "ko"), ("LC_ALL", "en_US")]), "ko");
        assert_eq!(
            with(&[("DOCKLING_LANG", "en"), ("LANG", "ko_KR.UTF-8")]),
            "en"
        );
        assert_eq!(with(&[("LANG", "fr_FR.UTF-8")]), "en");
    }

    #[test]
    fn explanations_are_plain_sentences() {
        for (_, src) in LANGUAGES {
            for (key, e) in Catalog::parse(src).unwrap().syscalls {
                assert!(!e.text.ends_with('.'), "{key}: no trailing period");
                assert!(e.man.contains('('), "{key}: man page like name(2)");
            }
        }
    }
}
