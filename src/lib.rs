//! dockling: a small but real container engine, built to be looked into.
//!
//! The binary (`src/main.rs`) only parses the command line and maps errors to Docker's exit
//! codes; everything else lives here. See `ARCHITECTURE.md` for the map: the kernel seam
//! ([`sys`]), the trace ([`trace`]), plans of steps ([`plan`]), and one module per subsystem.

#![warn(missing_docs, unreachable_pub)]

pub mod archive;
pub mod cgroups;
pub mod cli;
pub mod commands;
pub mod config;
pub mod container;
pub mod error;
pub mod fault;
pub mod files;
pub mod host;
pub mod image;
pub mod lab;
pub mod layers;
pub mod lessons;
pub mod network;
pub mod plan;
pub mod registry;
pub mod runtime;
pub mod spec;
pub mod specconv;
pub mod sys;
pub mod template;
pub mod trace;
pub mod volume;

#[cfg(test)]
mod testutil;

/// Module dependencies point down only (ARCHITECTURE.md, "Layers"): this test reads the
/// sources and fails naming every `crate::<module>` a module must not use, so a cycle such as
/// the seam importing the runtime cannot come back unnoticed.
#[cfg(test)]
mod layering {
    use std::path::Path;

    /// Only the command line may know the command line, and only it may use clap.
    const CLI: &[&str] = &["cli", "commands"];

    /// The lower modules and the only modules each of them may name. Everything else is above
    /// them. The seam sits with the trace it reports to, the plan's step names, and the error
    /// and fault-injection types every layer shares.
    const ALLOWED: &[(&str, &[&str])] = &[
        ("plan", &[]),
        ("sys", &["error", "fault", "plan", "trace"]),
        ("trace", &["error", "plan", "sys"]),
        ("spec", &[]),
        (
            "cgroups",
            &["error", "fault", "plan", "spec", "sys", "testutil", "trace"],
        ),
    ];

    /// Known edges against the rules above, each with its reason. Keep this short.
    const EXCEPTIONS: &[(&str, &str)] = &[
        // A state.json of a container made before seccomp policies were stored says
        // `"seccomp": true`, which stands for Docker's default policy: resolving that needs the
        // seccomp profile and the capability policy, which live in the runtime.
        ("src/spec.rs", "runtime"),
    ];

    /// The modules `text` (one source file, without its comments) names as `crate::<module>`,
    /// with their line numbers.
    fn named(text: &str) -> Vec<(usize, String)> {
        let mut out = Vec::new();
        for (n, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or_default();
            for (i, _) in code.match_indices("crate::") {
                let rest = &code[i + "crate::".len()..];
                let end = rest
                    .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                    .unwrap_or(rest.len());
                // `crate::name!(…)` is an exported macro (defined where the rules allow, and
                // expanded in place), not a module.
                if rest[end..].starts_with('!') {
                    continue;
                }
                out.push((n + 1, rest[..end].to_string()));
            }
        }
        out
    }

    /// The rules broken by `file` (a path under `src/`, in module `module`) with `text`.
    fn violations(file: &str, module: &str, text: &str) -> Vec<String> {
        let mut bad = Vec::new();
        let lower = ALLOWED.iter().find(|(m, _)| *m == module);
        for (line, used) in named(text) {
            if used == module || used.is_empty() {
                continue;
            }
            let excepted = EXCEPTIONS.iter().any(|(f, m)| *f == file && *m == used);
            let why = if CLI.contains(&used.as_str()) && !CLI.contains(&module) {
                "the engine must not know the command line"
            } else if lower.is_some_and(|(_, ok)| !ok.contains(&used.as_str())) && !excepted {
                "it is above it"
            } else {
                continue;
            };
            bad.push(format!(
                "{file}:{line}: {module} uses crate::{used} ({why})"
            ));
        }
        let mentions_clap = text
            .lines()
            .map(|l| l.split("//").next().unwrap_or_default())
            .any(|code| code.contains("clap::") || code.contains("use clap"));
        if mentions_clap && !CLI.contains(&module) {
            bad.push(format!(
                "{file}: {module} uses clap (it stays in src/cli and src/commands)"
            ));
        }
        bad
    }

    fn sources(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                sources(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }

    #[test]
    fn module_dependencies_point_down_only() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut files = Vec::new();
        sources(&root.join("src"), &mut files);
        files.sort();
        let mut bad = Vec::new();
        for path in &files {
            let file = path
                .strip_prefix(root)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            let top = path.strip_prefix(root.join("src")).unwrap();
            let module = top.iter().next().unwrap().to_string_lossy();
            let module = module.trim_end_matches(".rs");
            if module == "main" || module == "lib" {
                continue;
            }
            bad.extend(violations(
                &file,
                module,
                &std::fs::read_to_string(path).unwrap(),
            ));
        }
        assert!(
            files.len() > 50,
            "the sources were not found under {}",
            root.display()
        );
        assert!(
            bad.is_empty(),
            "module edges that point up:\n{}",
            bad.join("\n")
        );
    }

    #[test]
    fn an_edge_up_is_named() {
        let text = "use crate::error::Result;\nuse crate::runtime::caps::NAMES; // the seam\n";
        assert_eq!(
            violations("src/sys/x.rs", "sys", text),
            ["src/sys/x.rs:2: sys uses crate::runtime (it is above it)"]
        );
        assert_eq!(
            violations("src/specconv.rs", "specconv", "use crate::cli::RunArgs;\nclap::Parser"),
            [
                "src/specconv.rs:1: specconv uses crate::cli (the engine must not know the command line)",
                "src/specconv.rs: specconv uses clap (it stays in src/cli and src/commands)"
            ]
        );
        assert!(violations(
            "src/commands/run.rs",
            "commands",
            "use crate::cli::RunArgs;"
        )
        .is_empty());
    }
}
