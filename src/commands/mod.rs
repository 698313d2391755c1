//! One file per subcommand, each thin: build the plan from flags, call the engine, return the
//! exit code. Output goes to stdout; diagnostics and traces to stderr.

use std::path::PathBuf;

use crate::config::Config;
use crate::error::{Error, Result};

/// What every command gets: where things live and the config file's defaults.
#[derive(Debug, Clone)]
pub struct Context {
    /// Store root (`--root`, `DOCKLING_ROOT`, config `root`, or `/var/lib/dockling`).
    pub root: PathBuf,
    /// Run-state root (`/run/dockling` unless configured).
    pub run_root: PathBuf,
    /// The config file.
    pub config: Config,
    /// Where the config file is (or would be).
    pub config_path: PathBuf,
}

impl Context {
    /// Resolve the roots from flags and config.
    pub fn new(root: Option<PathBuf>, config_path: Option<PathBuf>) -> Result<Context> {
        let config = Config::load(config_path.as_deref())?;
        crate::container::set_lock_timeout(config.lock_timeout()?);
        let config_path = config_path.unwrap_or_else(|| PathBuf::from(crate::config::DEFAULT_PATH));
        let root = root
            .or_else(|| config.root.clone())
            .unwrap_or_else(|| PathBuf::from("/var/lib/dockling"));
        if !root.is_absolute() {
            return Err(Error::Usage(format!(
                "--root {}: must be an absolute path",
                root.display()
            )));
        }
        let run_root = config
            .run_root
            .clone()
            .unwrap_or_else(|| PathBuf::from("/run/dockling"));
        Ok(Context {
            root,
            run_root,
            config,
            config_path,
        })
    }
}

pub mod attach;
pub mod build;
pub mod builder;
pub mod commit;
pub mod cp;
pub mod diff;
pub mod exec;
pub mod explain;
pub mod export;
pub mod image;
pub mod images;
pub mod import;
pub mod inspect;
pub mod lab;
pub mod layers;
pub mod lesson;
pub mod lifecycle;
pub mod load;
pub mod login;
pub mod logs;
pub mod network;
pub mod proxy;
pub mod ps;
pub mod pull;
pub mod push;
pub mod rm;
pub mod rmi;
pub mod run;
pub mod runtime;
pub mod save;
pub mod system;
pub mod tag;
pub mod trace;
pub mod volume;

/// The short id of a container that uses image `id`, read afresh from the records: what
/// `Store::remove` asks under the store lock (a `run` records its container under the same
/// lock), so a container created meanwhile keeps its image.
pub fn image_user(containers: &crate::container::Containers, id: &str) -> Option<String> {
    containers
        .rows()
        .ok()?
        .into_iter()
        .find(|c| c.spec.image_id == id)
        .map(|c| c.spec.id[..12].to_string())
}

/// Refuse to go on without root: namespaces, mounts and cgroups need it.
pub fn require_root(what: &str) -> Result<()> {
    if nix::unistd::geteuid().is_root() {
        Ok(())
    } else {
        Err(Error::NeedsRoot {
            command: what.to_string(),
        })
    }
}

/// The output of a listing command given `--format`: Docker's `table` (the default columns),
/// `table TEMPLATE`, `json` (one JSON object per line) or a template per line. `fields` maps
/// each template field (`ID`, `Names`...) to its column header; `rows` are the objects.
pub fn formatted(
    format: &str,
    default_table: &str,
    fields: &[(&str, &str)],
    rows: &[serde_json::Value],
) -> Result<String> {
    use crate::template::{render_rows, Template};
    let text = match format.trim() {
        "table" => default_table.to_string(),
        "json" => "{{json .}}".to_string(),
        other => other.to_string(),
    };
    let t = Template::parse_docker(&text)?;
    let headers = serde_json::Value::Object(
        fields
            .iter()
            .map(|(k, v)| (k.to_string(), serde_json::Value::from(*v)))
            .collect(),
    );
    Ok(render_rows(&t, &headers, rows)?)
}

/// A table laid out like Docker's (Go's tabwriter with minwidth 10, padding 3).
pub fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let n = headers.len();
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for r in rows {
        for (i, cell) in r.iter().enumerate().take(n) {
            widths[i] = widths[i].max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| -> String {
        let mut s = String::new();
        for (i, cell) in cells.iter().enumerate() {
            if i + 1 == n {
                s.push_str(cell);
            } else {
                let w = (widths[i] + 3).max(10);
                s.push_str(cell);
                s.extend(std::iter::repeat_n(' ', w - cell.chars().count()));
            }
        }
        s.trim_end().to_string() + "\n"
    };
    let mut out = line(headers.to_vec());
    for r in rows {
        out.push_str(&line(r.iter().map(String::as_str).collect()));
    }
    out
}

/// `dockling container SUBCOMMAND`: the same commands under Docker's management name.
fn container(ctx: &Context, args: &crate::cli::ContainerArgs) -> Result<i32> {
    use crate::cli::ContainerCommand as C;
    match &args.command {
        C::Ls(a) => ps::run(ctx, a),
        C::Run(a) => run::run(ctx, a),
        C::Rm(a) => rm::run(ctx, a),
        C::Inspect { format, containers } => inspect::run(
            ctx,
            &crate::cli::InspectArgs {
                kind: Some("container".into()),
                names: containers.clone(),
                format: format.clone(),
            },
        ),
        C::Start(a) => lifecycle::start(ctx, a),
        C::Attach(a) => attach::run(ctx, a),
        C::Pause(a) => lifecycle::pause(ctx, &a.containers, true),
        C::Unpause(a) => lifecycle::pause(ctx, &a.containers, false),
        C::Top(a) => lifecycle::top(ctx, a),
        C::Restart(a) => lifecycle::restart(ctx, a),
        C::Stop(a) => lifecycle::stop(ctx, a),
        C::Kill(a) => lifecycle::kill(ctx, a),
        C::Wait(a) => lifecycle::wait(ctx, a),
        C::Logs(a) => logs::run(ctx, a),
        C::Rename(a) => lifecycle::rename(ctx, a),
        C::Exec(a) => exec::run(ctx, a),
        C::Cp(a) => cp::run(ctx, a),
        C::Commit(a) => commit::run(ctx, a),
        C::Diff(a) => diff::run(ctx, a),
        C::Prune(a) => lifecycle::prune(ctx, a),
        C::Export(a) => export::run(ctx, a),
    }
}

/// Run one parsed command line.
pub fn dispatch(cli: crate::cli::Cli) -> Result<i32> {
    use crate::cli::Command;
    // The proxy needs no store and no config: a config it cannot read must not take
    // published ports down.
    if let Command::Proxy(a) = &cli.command {
        return proxy::run(a);
    }
    // The OCI runtime has its own flags (runc's) and its own state: no store, no config.
    if let Command::Runtime(a) = &cli.command {
        let mut args = vec![std::ffi::OsString::from("dockling runtime")];
        args.extend(a.args.iter().cloned());
        return Ok(runtime::main(args));
    }
    // Drawing a trace reads one file: no store, no config.
    if let Command::Trace(a) = &cli.command {
        return trace::run(a);
    }
    let ctx = Context::new(cli.root, cli.config)?;
    match &cli.command {
        Command::Import(a) => import::run(&ctx, a),
        Command::Save(a) => save::run(&ctx, a),
        Command::Load(a) => load::run(&ctx, a),
        Command::Export(a) => export::run(&ctx, a),
        Command::Images(a) => images::run(&ctx, a),
        Command::Run(a) => run::run(&ctx, a),
        Command::Ps(a) => ps::run(&ctx, a),
        Command::Rm(a) => rm::run(&ctx, a),
        Command::Start(a) => lifecycle::start(&ctx, a),
        Command::Attach(a) => attach::run(&ctx, a),
        Command::Pause(a) => lifecycle::pause(&ctx, &a.containers, true),
        Command::Unpause(a) => lifecycle::pause(&ctx, &a.containers, false),
        Command::Top(a) => lifecycle::top(&ctx, a),
        Command::Port(a) => lifecycle::port(&ctx, a),
        Command::Restart(a) => lifecycle::restart(&ctx, a),
        Command::Stop(a) => lifecycle::stop(&ctx, a),
        Command::Kill(a) => lifecycle::kill(&ctx, a),
        Command::Wait(a) => lifecycle::wait(&ctx, a),
        Command::Logs(a) => logs::run(&ctx, a),
        Command::Rename(a) => lifecycle::rename(&ctx, a),
        Command::Exec(a) => exec::run(&ctx, a),
        Command::Cp(a) => cp::run(&ctx, a),
        Command::Commit(a) => commit::run(&ctx, a),
        Command::Build(a) => build::run(&ctx, a),
        Command::Builder(a) => builder::run(&ctx, a),
        Command::Diff(a) => diff::run(&ctx, a),
        Command::Container(a) => container(&ctx, a),
        Command::Rmi(a) => rmi::run(&ctx, a),
        Command::Inspect(a) => inspect::run(&ctx, a),
        Command::Explain(a) => explain::run(&ctx, a),
        Command::Pull(a) => pull::run(&ctx, a),
        Command::Tag(a) => tag::run(&ctx, a),
        Command::Push(a) => push::run(&ctx, a),
        Command::Login(a) => login::login(&ctx, a),
        Command::Logout(a) => login::logout(&ctx, a),
        Command::Lab(a) => lab::run(&ctx, a),
        Command::History(a) => image::history(&ctx, a),
        Command::Image(a) => image::run(&ctx, a),
        Command::Lesson(a) => lesson::run(&ctx, a),
        Command::Tour(a) => lesson::tour(&ctx, a),
        Command::System(a) => system::run(&ctx, a),
        Command::Volume(a) => volume::run(&ctx, a),
        Command::Network(a) => network::run(&ctx, a),
        Command::Proxy(a) => proxy::run(a),
        Command::Runtime(_) => unreachable!("handled before the store is opened"),
        Command::Trace(a) => trace::run(a),
    }
}

/// Print `inspect` documents as Docker does: one JSON array, or with `-f TEMPLATE` the
/// template executed on each document, a line per object (`-f json` is the array too).
pub fn print_inspect(docs: &[serde_json::Value], format: Option<&str>) -> Result<()> {
    match format.map(str::trim) {
        None | Some("json") => println!(
            "{}",
            serde_json::to_string_pretty(docs).map_err(|e| Error::Corrupt(e.to_string()))?
        ),
        Some(f) => {
            let t = crate::template::Template::parse_docker(f)?;
            for d in docs {
                println!("{}", t.render(d)?);
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_matches_docker_ps_header() {
        let t = table(ps::HEADERS, &[]);
        assert_eq!(
            t,
            "CONTAINER ID   IMAGE     COMMAND   CREATED   STATUS    PORTS     NAMES\n"
        );
    }
}
