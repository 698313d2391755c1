//! `dockling lesson list|run|check` and `dockling tour`.

use std::io::Write;

use super::{require_root, Context};
use crate::cli::{LessonArgs, LessonCommand, TourArgs};
use crate::error::Result;
use crate::lessons::runner::{self, Format, Scratch};

/// The lab registry's URL from the config's Docker Hub mirrors: a loopback one that answers.
fn lab_mirror(ctx: &Context) -> Option<String> {
    ctx.config.registry_mirrors.iter().flatten().find_map(|m| {
        let addr = m.trim_end_matches('/').rsplit("://").next()?;
        (addr.starts_with("127.") && crate::lab::answers(addr)).then(|| m.clone())
    })
}

fn need_lab(ctx: &Context) -> Result<String> {
    lab_mirror(ctx).ok_or_else(|| crate::lessons::LessonError::LabNotUp.into())
}

fn cgroup_parent(ctx: &Context) -> String {
    ctx.config
        .cgroup_parent
        .clone()
        .unwrap_or_else(|| "dockling".into())
}

/// `dockling lesson …`.
pub fn run(ctx: &Context, args: &LessonArgs) -> Result<i32> {
    match &args.command {
        LessonCommand::List => {
            for (n, _, l) in crate::lessons::all()? {
                let title = l.title.tr();
                // Padded by characters as a terminal shows them: a Hangul syllable takes two
                // columns.
                let width: usize = title
                    .chars()
                    .map(|c| if c >= '\u{1100}' { 2 } else { 1 })
                    .sum();
                println!(
                    "{n:>2}. {title}{} {}",
                    " ".repeat(42usize.saturating_sub(width)),
                    l.goal.tr()
                );
            }
            Ok(0)
        }
        LessonCommand::Run {
            number,
            step,
            from,
            format,
        } => {
            require_root("lesson run")?;
            let (_, lesson) = crate::lessons::get(*number)?;
            let mirror = need_lab(ctx)?;
            let scratch = Scratch::new(&mirror, &cgroup_parent(ctx))?;
            let mut out = std::io::stdout().lock();
            let pace = runner::Pace {
                pause: *step,
                from: *from,
            };
            let outcome = runner::run(*number, &lesson, &scratch, *format, pace, &mut out)?;
            drop(scratch);
            if outcome.failed.is_empty() {
                Ok(0)
            } else {
                for (i, why) in &outcome.failed {
                    eprintln!("lesson {number}, step {i}: {}", why.join("; "));
                }
                Ok(1)
            }
        }
        LessonCommand::Check { number } => {
            let (_, lesson) = crate::lessons::get(*number)?;
            let lab = lab_mirror(ctx).map(|m| runner::lab_addr(&m));
            let mut out = std::io::stdout().lock();
            let ok = runner::check(
                &lesson.check,
                &ctx.root,
                &ctx.config_path,
                &cgroup_parent(ctx),
                lab.as_deref(),
                &mut out,
            )?;
            Ok(if ok { 0 } else { 1 })
        }
    }
}

/// `dockling tour`: `lab up` if needed, then every lesson, a line per step, and a summary.
pub fn tour(ctx: &Context, args: &TourArgs) -> Result<i32> {
    require_root("tour")?;
    let mut out = std::io::stdout().lock();
    let mirror = match lab_mirror(ctx) {
        Some(m) => m,
        None => {
            let _ = writeln!(out, "The lab registry is not up: starting it.");
            crate::lab::Lab::new(&ctx.root, &ctx.config_path).up(
                &args.addr,
                &[],
                &ctx.config,
                &mut out,
            )?;
            format!("http://{}", args.addr)
        }
    };
    let lessons = crate::lessons::all()?;
    let mut failed = Vec::new();
    let mut steps = 0;
    let started = std::time::Instant::now();
    for (n, _, lesson) in &lessons {
        let _ = writeln!(
            out,
            "{}",
            crate::trace::catalog::Catalog::get().lesson(
                "check.lesson",
                &[("n", &n.to_string()), ("title", lesson.title.tr())]
            )
        );
        let scratch = Scratch::new(&mirror, &cgroup_parent(ctx))?;
        let outcome = runner::run(
            *n,
            lesson,
            &scratch,
            Format::Progress,
            runner::Pace::default(),
            &mut out,
        )?;
        steps += outcome.steps;
        failed.extend(outcome.failed.into_iter().map(|(i, why)| (*n, i, why)));
    }
    let _ = writeln!(
        out,
        "\n{} lessons, {steps} steps in {:.1} s: {}",
        lessons.len(),
        started.elapsed().as_secs_f64(),
        if failed.is_empty() {
            "all passed".to_string()
        } else {
            format!("{} failed", failed.len())
        }
    );
    for (n, i, why) in &failed {
        let _ = writeln!(out, "  lesson {n} step {i}: {}", why.join("; "));
    }
    Ok(if failed.is_empty() { 0 } else { 1 })
}
