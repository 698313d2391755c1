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

/// The languages that ship, as (code, YAML source).
pub const LANGUAGES: &[(&str, &str)] = &[("en", include_str!("catalog/en.yaml"))];

impl Catalog {
    /// Parse one language's YAML.
    pub fn parse(src: &str) -> Result<Catalog, serde_yaml::Error> {
        serde_yaml::from_str(src)
    }

    /// The catalog for the user's language (`DOCKLING_LANG`, then `LANG`), English otherwise.
    pub fn get() -> &'static Catalog {
        static CATALOG: OnceLock<Catalog> = OnceLock::new();
        CATALOG.get_or_init(|| {
            let want = std::env::var("DOCKLING_LANG")
                .or_else(|_| std::env::var("LANG"))
                .unwrap_or_default();
            let src = LANGUAGES
                .iter()
                .find(|(code, _)| want.starts_with(code))
                .unwrap_or(&LANGUAGES[0])
                .1;
            Catalog::parse(src).expect("built-in catalog is valid (checked by tests)")
        })
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::StepId;
    use crate::sys::Call;

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
