//! `dockling build [OPTIONS] PATH`: a Dockerfile ([`crate::image::dockerfile`]) built
//! instruction by instruction, as Docker's classic builder does it and BuildKit shows it:
//!
//! - `RUN` is a container of the working image made and started by `run`'s own code
//!   ([`run::create_kept`], [`run::start_and_record`]), its output shown with BuildKit's
//!   `#N 0.123 ` prefixes; when it exits 0 its upper directory becomes a layer through
//!   `commit`'s writer ([`commit::layer_tar`]) and the container is removed;
//! - `COPY`/`ADD` write a layer read from the context ([`crate::image::context`]);
//! - the other instructions change the config only: a history entry with `empty_layer`.
//!
//! Each instruction makes an (untagged) image in the store, the next one's parent. The build
//! cache maps parent id + instruction (substituted) + copied content digest to that image
//! ([`crate::image::store`]'s `cached`/`remember`): a hit prints `CACHED`. A failing step
//! prints BuildKit's `ERROR: process "…" did not complete successfully: exit code: N`, tags
//! nothing, removes its container, and the build exits 1, as `docker build` does.

use std::collections::HashMap;
use std::io::{BufRead, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::sync::atomic::{AtomicI32, Ordering};
use std::time::Instant;

use clap::Parser;
use serde_json::{json, Value};

use crate::cli::BuildArgs;
use crate::commands::{commit, require_root, run, Context};
use crate::container::Containers;
use crate::error::{Error, Result};
use crate::image::change::{set_keys, set_pairs, Pairs};
use crate::image::commit::LayerTar;
use crate::image::context::{self as bctx, CopyOptions, Ignore, Source};
use crate::image::dockerfile::{self as df, Args, Instruction, Vars};
use crate::image::store::{digest_of, Image, Store};
use crate::image::{reference::Reference, ImageError};
use crate::layers::diff::Lower;
use crate::plan::StepId;
use crate::runtime::StartOptions;
use crate::sys::call::{Call, Stdio};
use crate::sys::{fs as safefs, linux::Linux, Sys};
use crate::trace::Tracer;

/// `dockling build`: 0, or 1 for any failure (Docker's code for a failed build).
///
/// SIGINT (Ctrl-C), SIGTERM or SIGHUP cancel the build, as `docker build`'s: a running RUN's
/// container is killed and removed, nothing is tagged, and the exit code is 128 + the signal
/// (130 for Ctrl-C), what a shell reports for a command a signal ended.
pub fn run(ctx: &Context, args: &BuildArgs) -> Result<i32> {
    require_root("build")?;
    let cancel = AtomicI32::new(0);
    match build(ctx, args, &cancel) {
        Ok(id) => {
            if args.quiet {
                println!("{id}");
            }
            Ok(0)
        }
        Err(_) if cancel.load(Ordering::SeqCst) != 0 => {
            let sig = cancel.load(Ordering::SeqCst);
            let name = nix::sys::signal::Signal::try_from(sig)
                .map(|s| s.as_str())
                .unwrap_or("a signal");
            eprintln!("ERROR: canceled: the build was interrupted by {name}; nothing was tagged");
            Ok(128 + sig)
        }
        Err(e) => {
            eprintln!("ERROR: {e}");
            Ok(1)
        }
    }
}

/// The signals that cancel a build.
fn cancel_signals() -> nix::sys::signal::SigSet {
    use nix::sys::signal::{SigSet, Signal};
    let mut set = SigSet::empty();
    for s in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP] {
        set.add(s);
    }
    set
}

/// Hold the cancelling signals for the whole build (blocked, so none kills the engine halfway
/// through a step), read from a signalfd between steps; while a RUN runs, the runtime's relay
/// reads them instead and kills its container ([`StartOptions::cancel`]).
fn hold_signals() -> Result<nix::sys::signalfd::SignalFd> {
    use nix::sys::signal::{pthread_sigmask, SigmaskHow};
    use nix::sys::signalfd::{SfdFlags, SignalFd};
    let set = cancel_signals();
    pthread_sigmask(SigmaskHow::SIG_BLOCK, Some(&set), None)
        .map_err(|e| fail(format!("sigprocmask: {e}")))?;
    SignalFd::with_flags(&set, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK)
        .map_err(|e| fail(format!("signalfd: {e}")))
}

/// Run `f` with the cancelling signals at their default action: a pull of the base (crash
/// safe, like any pull, and nothing of this stage's made yet) stops at once on Ctrl-C, as it
/// did before the build held them; the shell still sees 130.
fn with_signals_open<T>(f: impl FnOnce() -> T) -> T {
    use nix::sys::signal::{pthread_sigmask, SigmaskHow};
    let set = cancel_signals();
    let _ = pthread_sigmask(SigmaskHow::SIG_UNBLOCK, Some(&set), None);
    let r = f();
    let _ = pthread_sigmask(SigmaskHow::SIG_BLOCK, Some(&set), None);
    r
}

fn fail(msg: impl Into<String>) -> Error {
    ImageError::Build(msg.into()).into()
}

/// BuildKit's plain progress on stderr.
struct Progress {
    quiet: bool,
    n: usize,
    start: Instant,
}

impl Progress {
    fn begin(&mut self, label: &str) -> usize {
        self.n += 1;
        self.start = Instant::now();
        if !self.quiet {
            eprintln!("#{} {label}", self.n);
        }
        self.n
    }

    fn line(&self, s: &str) {
        if !self.quiet {
            eprintln!("#{} {s}", self.n);
        }
    }

    fn done(&self) {
        if !self.quiet {
            eprintln!(
                "#{} DONE {:.1}s\n",
                self.n,
                self.start.elapsed().as_secs_f64()
            );
        }
    }

    fn cached(&self) {
        if !self.quiet {
            eprintln!("#{} CACHED\n", self.n);
        }
    }
}

/// The engine's stdout and stderr sent through a pipe while a RUN step runs, each line of
/// the container's output shown as `#N <seconds> <line>` on the real stderr.
struct Capture {
    saved_out: OwnedFd,
    saved_err: OwnedFd,
    reader: Option<std::thread::JoinHandle<()>>,
}

fn dup_cloexec(fd: i32) -> Result<OwnedFd> {
    use std::os::fd::FromRawFd;
    let n = nix::fcntl::fcntl(fd, nix::fcntl::FcntlArg::F_DUPFD_CLOEXEC(3))
        .map_err(|e| fail(format!("dup {fd}: {e}")))?;
    // SAFETY: fcntl returned a new descriptor nobody else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(n) })
}

impl Capture {
    fn start(sys: &Sys, step: usize, quiet: bool) -> Result<Capture> {
        let saved_out = dup_cloexec(1)?;
        let saved_err = dup_cloexec(2)?;
        let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
            .map_err(|e| fail(format!("pipe: {e}")))?;
        let out = std::fs::File::from(dup_cloexec(saved_err.as_raw_fd())?);
        let begun = Instant::now();
        // The reader thread blocks every signal: the runtime waits for the container's
        // SIGCHLD on a signalfd, which only sees signals no thread would take (signalfd(2)).
        use nix::sys::signal::{pthread_sigmask, SigSet, SigmaskHow};
        let mut old = SigSet::empty();
        pthread_sigmask(
            SigmaskHow::SIG_SETMASK,
            Some(&SigSet::all()),
            Some(&mut old),
        )
        .map_err(|e| fail(format!("sigprocmask: {e}")))?;
        let reader = std::thread::spawn(move || {
            let mut out = std::io::BufWriter::new(out);
            for line in std::io::BufReader::new(std::fs::File::from(r)).split(b'\n') {
                let Ok(line) = line else { break };
                if !quiet {
                    let _ = writeln!(
                        out,
                        "#{step} {:.3} {}",
                        begun.elapsed().as_secs_f64(),
                        String::from_utf8_lossy(&line)
                    );
                    let _ = out.flush();
                }
            }
        });
        pthread_sigmask(SigmaskHow::SIG_SETMASK, Some(&old), None)
            .map_err(|e| fail(format!("sigprocmask: {e}")))?;
        let _ = std::io::stdout().flush();
        let cap = Capture {
            saved_out,
            saved_err,
            reader: Some(reader),
        };
        // Through the seam: what the container's stdout and stderr are is container setup.
        for new in [1, 2] {
            sys.run(Call::Dup2 {
                old: w.as_raw_fd(),
                new,
                what: Stdio::BuildOutput,
            })?;
        }
        drop(w);
        Ok(cap)
    }

    /// Put the engine's stdout and stderr back and wait for the reader to drain the pipe.
    fn stop(mut self, sys: &Sys) -> Result<()> {
        for (old, new) in [
            (self.saved_out.as_raw_fd(), 1),
            (self.saved_err.as_raw_fd(), 2),
        ] {
            sys.run(Call::Dup2 {
                old,
                new,
                what: Stdio::BuildRestore,
            })?;
        }
        if let Some(t) = self.reader.take() {
            let _ = t.join();
        }
        Ok(())
    }
}

impl Drop for Capture {
    /// A safety net for an unwinding panic only ([`Capture::stop`] is the way out): the
    /// engine's own descriptors back, so the panic message is seen.
    fn drop(&mut self) {
        if let Some(t) = self.reader.take() {
            let _ = nix::unistd::dup2(self.saved_out.as_raw_fd(), 1);
            let _ = nix::unistd::dup2(self.saved_err.as_raw_fd(), 2);
            let _ = t.join();
        }
    }
}

/// The time images are made at: `SOURCE_DATE_EPOCH` when set, now otherwise.
fn created(epoch: Option<i64>) -> String {
    match epoch {
        Some(s) => humantime::format_rfc3339_seconds(
            std::time::UNIX_EPOCH + std::time::Duration::from_secs(s.max(0) as u64),
        )
        .to_string(),
        None => crate::container::now_rfc3339(),
    }
}

/// One stage's working state.
struct Working {
    image: Option<Image>,
    /// Declared ARGs with their values.
    args: Vars,
    /// ENTRYPOINT was set in this stage after CMD (which it then clears, as Docker does).
    cmd_set: bool,
}

impl Working {
    fn config(&self) -> Value {
        self.image
            .as_ref()
            .and_then(|i| serde_json::to_value(i.config.config()).ok())
            .unwrap_or(Value::Null)
    }

    fn env(&self) -> Vec<(String, String)> {
        self.config()["Env"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|e| e.as_str()?.split_once('='))
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// What substitution sees: the ARGs, then ENV over them.
    fn vars(&self) -> Vars {
        let mut v = self.args.clone();
        v.extend(self.env());
        v
    }

    fn workdir(&self) -> String {
        self.config()["WorkingDir"]
            .as_str()
            .filter(|w| !w.is_empty())
            .unwrap_or("/")
            .to_string()
    }
}

struct Builder<'a> {
    ctx: &'a Context,
    args: &'a BuildArgs,
    store: Store,
    containers: Containers,
    sys: Sys,
    file: String,
    escape: char,
    build_args: HashMap<String, String>,
    context: OwnedFd,
    ignore: Ignore,
    epoch: Option<i64>,
    progress: Progress,
    stages: Vec<(Option<String>, Option<Image>)>,
    total_stages: usize,
    meta: Vars,
    /// The id of the current stage's base when it had `OnBuild` triggers (which then ran):
    /// the first image made on it drops them.
    triggered: Option<String>,
    /// The signal that cancelled the build (0: none yet).
    cancel: &'a AtomicI32,
    /// The cancelling signals, read between steps.
    signals: nix::sys::signalfd::SignalFd,
}

fn list(args: &Args, escape: char, vars: &Vars, file: &str, line: usize) -> Result<Vec<String>> {
    match args {
        Args::Json(v) => v
            .iter()
            .map(|w| df::expand(w, vars, escape))
            .collect::<std::result::Result<_, _>>(),
        Args::Text(t) => df::words(t, vars, escape),
    }
    .map_err(|e| fail(format!("{file}:{line}: {}", e.0)))
}

/// RUN's argv and, for a `#!` heredoc, the script file it runs (name, content), as BuildKit's
/// `dispatchRun`: `RUN <<EOF` alone runs the heredoc's content in the shell (or, starting with
/// `#!`, as `/dev/pipes/EOF`); any other line with heredocs goes to the shell whole, each
/// heredoc's content and terminator after it, for the shell to read as its own heredocs.
fn run_command(ins: &Instruction, shell: &[String]) -> (Vec<String>, Option<(String, String)>) {
    let (Args::Text(t), Some(first)) = (&ins.args, ins.heredocs.first()) else {
        return (command(&ins.args, shell), None);
    };
    if df::heredoc_word(t.trim()).is_some() {
        let data = first.data();
        if data.starts_with("#!") {
            return (
                vec![format!("/dev/pipes/{}", first.name)],
                Some((first.name.clone(), data)),
            );
        }
        return (command(&Args::Text(data), shell), None);
    }
    let mut full = t.clone();
    for doc in &ins.heredocs {
        full.push('\n');
        full.push_str(&doc.content);
        full.push_str(&doc.name);
    }
    (command(&Args::Text(full), shell), None)
}

/// Remove the empty directories the runtime made in the container's writable layer as the
/// targets of `RUN --mount`s (they are not in the image), deepest first, through descriptors
/// of that layer: only while empty (a step that wrote beside its mount keeps its files), so
/// the step's layer holds no mount stub, as BuildKit's stub cleaner.
fn remove_stubs(sys: &Sys, c: &crate::container::Container, stubs: &[String]) {
    if stubs.is_empty() {
        return;
    }
    let top = match c.spec.layers_mode {
        m if m.overlay() => c.spec.upper(),
        _ => c.spec.rootfs(),
    };
    let Ok(root) = safefs::open_root(&top) else {
        return;
    };
    for s in stubs {
        let rel = safefs::relative(std::path::Path::new(s));
        let (Some(parent), Some(name)) = (rel.parent(), rel.file_name()) else {
            continue;
        };
        let dir = match parent.as_os_str().is_empty() {
            true => root.try_clone(),
            false => safefs::openat2(
                root.as_fd(),
                parent,
                libc::O_PATH | libc::O_DIRECTORY,
                0,
                safefs::IN_ROOT,
            ),
        };
        let Ok(dir) = dir else { continue };
        let gone = nix::unistd::unlinkat(
            Some(dir.as_raw_fd()),
            name,
            nix::unistd::UnlinkatFlags::RemoveDir,
        )
        .is_ok();
        if gone {
            sys.tracer.note(&format!(
                "removed {s}, the mount target RUN --mount made, from the layer (unlinkat AT_REMOVEDIR in the upper directory)"
            ));
        }
    }
}

/// An instruction as the progress shows it: `RUN <<EOF` with its heredoc's first line, as
/// BuildKit's `RUN <<EOF (apt-get update...)`.
fn shown_text(ins: &Instruction) -> String {
    match (&ins.args, ins.heredocs.first()) {
        (Args::Text(t), Some(doc)) if ins.name == "RUN" && df::heredoc_word(t.trim()).is_some() => {
            let body = doc.content.trim();
            let mut lines = body.lines();
            let first = lines.next().unwrap_or_default();
            let more = if lines.next().is_some() { "..." } else { "" };
            format!("{} ({first}{more})", ins.text)
        }
        _ => ins.text.clone(),
    }
}

/// A host directory holding one heredoc script for a RUN, removed when dropped.
struct ScriptDir(std::path::PathBuf);

impl ScriptDir {
    fn new(name: &str, data: &str) -> Result<ScriptDir> {
        use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
        if name.contains('/') || name == "." || name == ".." {
            return Err(fail(format!(
                "heredoc <<{name}: the name of a #! script heredoc must be a plain file name"
            )));
        }
        let stamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        let dir =
            std::env::temp_dir().join(format!("dockling-heredoc-{}-{stamp}", std::process::id()));
        // 0755, made new (never an existing name): a step running as a USER other than root
        // must reach the script, as it reaches BuildKit's; it holds only the Dockerfile's text.
        std::fs::DirBuilder::new()
            .mode(0o755)
            .create(&dir)
            .map_err(Error::io("create", &dir))?;
        let guard = ScriptDir(dir);
        let path = guard.0.join(name);
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o755)
            .open(&path)
            .map_err(Error::io("create", &path))?;
        f.write_all(data.as_bytes())
            .map_err(Error::io("write", &path))?;
        Ok(guard)
    }
}

impl Drop for ScriptDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The argv of RUN, CMD or ENTRYPOINT: the exec form as written, the shell form given to
/// `shell` (the image's `SHELL`, `/bin/sh -c` without one), as BuildKit's `withShell`.
fn command(args: &Args, shell: &[String]) -> Vec<String> {
    match args {
        Args::Json(v) => v.clone(),
        Args::Text(t) => {
            let mut argv = shell.to_vec();
            argv.push(t.clone());
            argv
        }
    }
}

/// The shell of shell-form instructions when no `SHELL` set one.
fn default_shell() -> Vec<String> {
    vec!["/bin/sh".into(), "-c".into()]
}

/// An exclusive `flock` of a cache mount's directory (`sharing=locked|private`): waited for
/// when `wait` (with the cancelling signals at their default action, so Ctrl-C still stops a
/// build waiting on another's RUN; nothing of this step exists yet), `None` when it is held
/// elsewhere and not `wait`. Released when dropped (closed).
fn lock_cache(
    dir: &std::path::Path,
    wait: bool,
) -> Result<Option<nix::fcntl::Flock<std::fs::File>>> {
    use nix::fcntl::{Flock, FlockArg};
    let f = std::fs::File::open(dir).map_err(Error::io("open the cache mount", dir))?;
    let r = if wait {
        with_signals_open(|| Flock::lock(f, FlockArg::LockExclusive))
    } else {
        Flock::lock(f, FlockArg::LockExclusiveNonblock)
    };
    match r {
        Ok(l) => Ok(Some(l)),
        Err((_, nix::errno::Errno::EWOULDBLOCK)) if !wait => Ok(None),
        Err((_, e)) => Err(Error::io("lock the cache mount", dir)(e.into())),
    }
}

/// The directory a `sharing=private` cache mount gets when its cache is in use: empty, made
/// (with the mount's `mode`, `uid`, `gid`) under `<root>/build-cache-mounts/` as
/// `private-<random>` (so a killed build's is the build cache's to prune), removed through
/// descriptors when dropped (the step's container wrote there).
struct PrivateCache(std::path::PathBuf);

impl PrivateCache {
    fn new(root: &std::path::Path, mode: u32, uid: u32, gid: u32) -> Result<PrivateCache> {
        use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
        let base = root.join("build-cache-mounts");
        let dir = base.join(format!("private-{}", crate::files::temp_name()));
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&dir)
            .map_err(Error::io("create", &dir))?;
        let p = PrivateCache(dir.clone());
        std::os::unix::fs::chown(&dir, Some(uid), Some(gid)).map_err(Error::io("chown", &dir))?;
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(mode))
            .map_err(Error::io("chmod", &dir))?;
        Ok(p)
    }
}

impl Drop for PrivateCache {
    fn drop(&mut self) {
        let (Some(parent), Some(name)) = (self.0.parent(), self.0.file_name()) else {
            return;
        };
        if let Ok(base) = crate::sys::fs::open_root(parent) {
            let _ = crate::sys::fs::remove_at(base.as_fd(), name);
        }
    }
}

/// COPY's destination made absolute against the working directory; a trailing `/` (or a
/// `.`) kept as "a directory".
fn resolve_dest(workdir: &str, dest: &str) -> String {
    let dir = dest.ends_with('/') || dest == "." || dest.ends_with("/.");
    let joined = if dest.starts_with('/') {
        std::path::PathBuf::from(dest)
    } else {
        std::path::Path::new(workdir).join(dest)
    };
    let mut clean = std::path::PathBuf::from("/");
    for c in joined.components() {
        match c {
            std::path::Component::Normal(n) => clean.push(n),
            std::path::Component::ParentDir => {
                clean.pop();
            }
            _ => {}
        }
    }
    let mut s = clean.display().to_string();
    if dir && !s.ends_with('/') {
        s.push('/');
    }
    s
}

/// `--chown=user[:group]`: ids, or names looked up in the image's /etc/passwd and /etc/group
/// (`specconv::resolve_user`); a user without a group gives the uid as the gid too, as Docker
/// documents.
fn parse_ids(s: &str, layers: &[std::path::PathBuf]) -> Result<(u32, u32)> {
    let (u, g) = match s.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (s, None),
    };
    let uid = match u.parse::<u32>() {
        Ok(n) => n,
        Err(_) => crate::specconv::resolve_user(u, layers)?.0.uid,
    };
    let gid = match g {
        None => uid,
        Some(g) => match g.parse::<u32>() {
            Ok(n) => n,
            Err(_) => {
                crate::specconv::resolve_user(&format!("0:{g}"), layers)?
                    .0
                    .gid
            }
        },
    };
    Ok((uid, gid))
}

impl Builder<'_> {
    fn err(&self, ins: &Instruction, msg: impl std::fmt::Display) -> Error {
        fail(format!("{}:{}: {msg}", self.file, ins.line))
    }

    /// The directory of a `RUN --mount=type=cache` of id `id`:
    /// `<root>/build-cache-mounts/<sha256 of id>`, made (with `mode`, `uid`, `gid`) the first
    /// time and kept between builds; `<root>/build-cache-mounts` is 0700, as the store's own.
    fn cache_dir(&self, id: &str, mode: u32, uid: u32, gid: u32) -> Result<std::path::PathBuf> {
        use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
        let base = self.ctx.root.join("build-cache-mounts");
        std::fs::DirBuilder::new()
            .mode(0o700)
            .recursive(true)
            .create(&base)
            .map_err(Error::io("create", &base))?;
        let dir = base.join(digest_of(id.as_bytes()).trim_start_matches("sha256:"));
        match std::fs::DirBuilder::new().mode(0o700).create(&dir) {
            Ok(()) => {
                std::os::unix::fs::chown(&dir, Some(uid), Some(gid))
                    .map_err(Error::io("chown", &dir))?;
                std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(mode))
                    .map_err(Error::io("chmod", &dir))?;
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(Error::io("create", &dir)(e)),
        }
        Ok(dir)
    }

    /// Stop here when a cancelling signal came (during a RUN the relay saw it; between steps
    /// it waits on the signalfd).
    fn check_cancel(&self) -> Result<()> {
        if let Ok(Some(info)) = self.signals.read_signal() {
            self.cancel.store(info.ssi_signo as i32, Ordering::SeqCst);
        }
        match self.cancel.load(Ordering::SeqCst) {
            0 => Ok(()),
            sig => Err(fail(format!("canceled by signal {sig}"))),
        }
    }

    /// The `config` of an image's config blob as stored, with the fields oci-spec's type
    /// leaves out (`Shell`, `Healthcheck`, `OnBuild`: Docker's extensions).
    fn raw_config(&self, img: Option<&Image>) -> Result<Value> {
        let Some(i) = img else {
            return Ok(Value::Null);
        };
        let bytes = self.store.read_blob(&i.id)?;
        Ok(serde_json::from_slice::<Value>(&bytes)
            .map(|v| v["config"].clone())
            .unwrap_or(Value::Null))
    }

    /// The shell that shell-form RUN, CMD and ENTRYPOINT run in: the image's `Shell` (set by
    /// `SHELL`, here or in a base image), `/bin/sh -c` otherwise.
    fn shell(&self, img: Option<&Image>) -> Result<Vec<String>> {
        let cfg = self.raw_config(img)?;
        Ok(cfg["Shell"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(String::from))
                    .collect::<Vec<_>>()
            })
            .filter(|a| !a.is_empty())
            .unwrap_or_else(default_shell))
    }

    fn find_base(&self, name: &str) -> Result<Option<Image>> {
        if name.eq_ignore_ascii_case("scratch") {
            return Ok(None);
        }
        let lower = name.to_ascii_lowercase();
        if let Some((_, img)) = self
            .stages
            .iter()
            .find(|(n, _)| n.as_deref() == Some(lower.as_str()))
        {
            return Ok(img.clone());
        }
        if let Ok(i) = name.parse::<usize>() {
            if let Some((_, img)) = self.stages.get(i) {
                return Ok(img.clone());
            }
        }
        match self.store.find(name) {
            Ok(i) => Ok(Some(i)),
            Err(Error::NotFound(_)) => {
                let reference = Reference::parse(name)?;
                crate::registry::pull::pull(
                    &self.store,
                    &reference,
                    &self.ctx.config,
                    &mut std::io::stderr(),
                    false,
                )
                .map(Some)
            }
            Err(e) => Err(e),
        }
    }

    /// Make the step's image: `base` + `layer` (none: config only) with `edit` applied.
    fn make(
        &self,
        base: Option<&Image>,
        layer: Option<LayerTar>,
        created_by: &str,
        edit: &dyn Fn(&mut Value),
    ) -> Result<Image> {
        self.make_with(base, layer, Some(created_by), edit)
    }

    /// [`Builder::make`], with no history entry when `created_by` is `None` (`ONBUILD`, which
    /// BuildKit records in the config only). The stage's base loses the `OnBuild` triggers it
    /// ran: they are not passed on, as in Docker.
    fn make_with(
        &self,
        base: Option<&Image>,
        layer: Option<LayerTar>,
        created_by: Option<&str>,
        edit: &dyn Fn(&mut Value),
    ) -> Result<Image> {
        let when = created(self.epoch);
        let mut history = match created_by {
            Some(c) => {
                json!({"created": when, "created_by": c, "comment": "buildkit.dockerfile.v0"})
            }
            None => Value::Null,
        };
        let clear = base.is_some_and(|b| self.triggered.as_deref() == Some(b.id.as_str()));
        let edit = |c: &mut Value| {
            if clear {
                if let Some(o) = c["config"].as_object_mut() {
                    o.remove("OnBuild");
                }
            }
            edit(c)
        };
        let edit: &dyn Fn(&mut Value) = &edit;
        let layer = match layer {
            Some(tar) => {
                self.sys.tracer.step(StepId::CommitLayer)?;
                let tar_len = tar.len();
                let l = self.store.store_layer(tar)?;
                self.sys.tracer.note(&format!(
                    "layer {}: {} bytes gzip, diff_id {} ({tar_len} bytes of tar)",
                    l.digest, l.size, l.diff_id
                ));
                Some(l)
            }
            None => {
                if !history.is_null() {
                    history["empty_layer"] = json!(true);
                }
                None
            }
        };
        self.sys.tracer.step(StepId::CommitImage)?;
        let img = self
            .store
            .write_image(base, layer, &[], &when, history, edit, None)?;
        self.sys
            .tracer
            .note(&format!("config {} ({} layers)", img.id, img.layers.len()));
        Ok(img)
    }

    /// Run `argv` in a container of `image`, and the layer tar of what it changed.
    fn run_container(
        &mut self,
        image: &Image,
        argv: &[String],
        env: &[String],
        shown: &str,
        script: Option<&(String, String)>,
        (mounts, stubs): (&[(df::RunMount, String)], &[String]),
    ) -> Result<LayerTar> {
        // The cache mounts' directories first, `sharing=` applied: the locks and private
        // directories live until the RUN has ended (this frame).
        let mut held = Vec::new();
        let mut private = Vec::new();
        let mut cache_dirs = Vec::new();
        for (m, _) in mounts {
            if let df::RunMount::Cache {
                id,
                mode,
                uid,
                gid,
                sharing,
                ..
            } = m
            {
                let dir = self.cache_dir(id, *mode, *uid, *gid)?;
                cache_dirs.push(match sharing {
                    df::Sharing::Shared => dir,
                    df::Sharing::Locked => {
                        held.push(lock_cache(&dir, true)?.expect("a blocking lock is taken"));
                        dir
                    }
                    df::Sharing::Private => match lock_cache(&dir, false)? {
                        Some(l) => {
                            held.push(l);
                            dir
                        }
                        None => {
                            let p = PrivateCache::new(&self.ctx.root, *mode, *uid, *gid)?;
                            let d = p.0.clone();
                            private.push(p);
                            d
                        }
                    },
                });
            }
        }
        let mut cache_dirs = cache_dirs.into_iter();
        let mut cli: Vec<String> = ["dockling", "run", "--entrypoint", ""]
            .map(String::from)
            .to_vec();
        // A `#!` heredoc is a file the command runs: in a directory of ours, bound read-only
        // at /dev/pipes (the container's /dev is a tmpfs, so nothing of it enters the layer),
        // as BuildKit mounts it.
        let _pipes = match script {
            Some((name, data)) => {
                let dir = ScriptDir::new(name, data)?;
                cli.push("-v".into());
                cli.push(format!("{}:/dev/pipes:ro", dir.0.display()));
                Some(dir)
            }
            None => None,
        };
        for (m, target) in mounts {
            match m {
                df::RunMount::Cache { readonly, .. } => {
                    let dir = cache_dirs.next().expect("one directory a cache mount");
                    cli.push("-v".into());
                    let ro = if *readonly { ":ro" } else { "" };
                    cli.push(format!("{}:{target}{ro}", dir.display()));
                }
                df::RunMount::Tmpfs { size, .. } => {
                    cli.push("--tmpfs".into());
                    cli.push(match size {
                        Some(sz) => format!("{target}:size={sz}"),
                        None => target.clone(),
                    });
                }
            }
        }
        for e in env {
            cli.push("-e".into());
            cli.push(e.clone());
        }
        if let Some(n) = &self.args.network {
            cli.push("--network".into());
            cli.push(if n == "default" {
                "bridge".into()
            } else {
                n.clone()
            });
        }
        cli.push(image.id.clone());
        cli.extend(argv.iter().cloned());
        let parsed =
            crate::cli::Cli::try_parse_from(&cli).map_err(|e| fail(format!("RUN: {e}")))?;
        let crate::cli::Command::Run(ra) = parsed.command else {
            unreachable!("parsed as run")
        };
        let (spec, kept) = run::create_kept(self.ctx, &self.sys, &ra, &self.containers, false)?;
        self.sys.tracer.note(&format!(
            "RUN in container {} ({}) of image {}",
            spec.name,
            &spec.id[..12],
            &image.id.trim_start_matches("sha256:")[..12]
        ));
        let opts = StartOptions {
            engine_lock: kept.as_ref().map(crate::container::EngineLock::raw_fd),
            cancel: Some(self.cancel),
            ..Default::default()
        };
        let cleanup = |this: &Self| {
            let _ = this.containers.remove_dir(&spec.id);
            crate::commands::volume::remove_anonymous(&this.ctx.root, &spec);
        };
        let code = match Capture::start(&self.sys, self.progress.n, self.progress.quiet) {
            Ok(cap) => {
                let code =
                    run::start_and_record(self.ctx, &self.sys, &spec, &self.containers, &[], opts);
                cap.stop(&self.sys).and(code)
            }
            Err(e) => Err(e),
        };
        let code = match code {
            Ok(c) => c,
            Err(e) => {
                cleanup(self);
                return Err(e);
            }
        };
        if self.cancel.load(Ordering::SeqCst) != 0 {
            // Killed on Ctrl-C by the relay: the step is cancelled, its container removed.
            cleanup(self);
            self.check_cancel()?;
            return Err(fail("canceled"));
        }
        if code != 0 {
            cleanup(self);
            return Err(fail(format!(
                "process \"{shown}\" did not complete successfully: exit code: {code}"
            )));
        }
        let result = (|| {
            let c = self.containers.find(&spec.id)?;
            remove_stubs(&self.sys, &c, stubs);
            let lower = Lower::open(&c.spec.layers)
                .map_err(Error::io("open the layers of", &c.spec.bundle))?;
            let (tar, stats) = commit::layer_tar(&self.sys, &self.store, &c, &lower, self.epoch)?;
            self.sys.tracer.note(&format!(
                "the layer holds {} entries, {} bytes of file content, {} whiteouts",
                stats.entries, stats.bytes, stats.whiteouts
            ));
            Ok(tar)
        })();
        drop(kept);
        cleanup(self);
        result
    }

    fn label(&self, stage: usize, named: Option<&str>, i: usize, n: usize, text: &str) -> String {
        let prefix = match (self.total_stages, named) {
            (1, _) => String::new(),
            (_, Some(name)) => format!("{name} "),
            (_, None) => format!("stage-{stage} "),
        };
        format!("[{prefix}{i}/{n}] {text}")
    }

    /// Take `key`'s image from the cache (printing CACHED), or make it with `make`.
    fn step(
        &mut self,
        key: &str,
        make: &mut dyn FnMut(&mut Self) -> Result<Image>,
    ) -> Result<Image> {
        if !self.args.no_cache {
            if let Some(img) = self.store.cached(key) {
                self.sys
                    .tracer
                    .note(&format!("cache hit: image {}", img.id));
                self.sys.tracer.flush();
                self.progress.cached();
                return Ok(img);
            }
        }
        let img = make(self)?;
        self.store.remember(key, &img)?;
        self.sys.tracer.flush();
        self.progress.done();
        Ok(img)
    }

    /// One instruction of a stage.
    fn instruction(&mut self, w: &mut Working, ins: &Instruction) -> Result<()> {
        let vars = w.vars();
        let esc = self.escape;
        let mut parent = w
            .image
            .as_ref()
            .map(|i| i.id.clone())
            .unwrap_or_else(|| "scratch".into());
        if self.triggered.as_deref() == Some(parent.as_str()) {
            // Made on it, an image has no OnBuild: not the same step as one that keeps them.
            parent.push_str(" (OnBuild cleared)");
        }
        let ex = |t: &str| df::expand(t, &vars, esc).map_err(|e| e.0);
        let text_of = |a: &Args| match a {
            Args::Text(t) => t.clone(),
            Args::Json(v) => serde_json::to_string(v).expect("json"),
        };
        let flag = |name: &str| {
            ins.flags
                .iter()
                .rev()
                .find(|(f, _)| f == name)
                .map(|(_, v)| v.clone())
        };
        let shell = self.shell(w.image.as_ref())?;
        // Config-only instructions: (created_by, edit).
        type Edit = Box<dyn Fn(&mut Value)>;
        let meta: Option<(String, Edit)> = match ins.name.as_str() {
            "ENV" => {
                let pairs = match &ins.args {
                    Args::Text(t) => df::pairs(t, &vars, esc, true),
                    Args::Json(_) => df::pairs(&text_of(&ins.args), &vars, esc, true),
                }
                .map_err(|e| self.err(ins, e.0))?;
                let mut set = Vec::new();
                for (k, v) in pairs {
                    let Some(v) = v else {
                        return Err(self.err(ins, format!("ENV {k} needs a value: ENV {k}=value")));
                    };
                    set.push((k, v));
                }
                let shown = set
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join(" ");
                Some((
                    format!("ENV {shown}"),
                    Box::new(move |c: &mut Value| set_pairs(&mut c["config"], Pairs::Env, &set)),
                ))
            }
            "LABEL" => {
                let pairs = df::pairs(&text_of(&ins.args), &vars, esc, false)
                    .map_err(|e| self.err(ins, e.0))?;
                let mut set = Vec::new();
                for (k, v) in pairs {
                    let Some(v) = v else {
                        return Err(
                            self.err(ins, format!("LABEL {k} needs a value: LABEL {k}=value"))
                        );
                    };
                    set.push((k, v));
                }
                let shown = set
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join(" ");
                Some((
                    format!("LABEL {shown}"),
                    Box::new(move |c: &mut Value| set_pairs(&mut c["config"], Pairs::Label, &set)),
                ))
            }
            "USER" | "STOPSIGNAL" => {
                let v = ex(&text_of(&ins.args)).map_err(|e| self.err(ins, e))?;
                let key = if ins.name == "USER" {
                    "User"
                } else {
                    "StopSignal"
                };
                if key == "StopSignal" {
                    crate::commands::lifecycle::parse_signal(&v)
                        .map_err(|_| self.err(ins, format!("invalid signal: {v}")))?;
                }
                Some((
                    format!("{} {v}", ins.name),
                    Box::new(move |c: &mut Value| c["config"][key] = json!(v)),
                ))
            }
            "EXPOSE" => {
                let ports = list(&ins.args, esc, &vars, &self.file, ins.line)?;
                let mut norm = Vec::new();
                for p in ports {
                    let (num, proto) = p.split_once('/').unwrap_or((&p, "tcp"));
                    let ok = num
                        .split('-')
                        .all(|n| n.parse::<u16>().is_ok_and(|n| n > 0));
                    if !ok || !["tcp", "udp", "sctp"].contains(&proto) {
                        return Err(self.err(ins, format!("invalid containerPort: {p}")));
                    }
                    norm.push(format!("{num}/{proto}"));
                }
                let shown = format!(
                    "EXPOSE map[{}]",
                    norm.iter()
                        .map(|p| format!("{p}:{{}}"))
                        .collect::<Vec<_>>()
                        .join(" ")
                );
                Some((
                    shown,
                    Box::new(move |c: &mut Value| {
                        set_keys(&mut c["config"], "ExposedPorts", &norm)
                    }),
                ))
            }
            "VOLUME" => {
                let vols = list(&ins.args, esc, &vars, &self.file, ins.line)?;
                let shown = format!("VOLUME {}", serde_json::to_string(&vols).expect("json"));
                Some((
                    shown,
                    Box::new(move |c: &mut Value| set_keys(&mut c["config"], "Volumes", &vols)),
                ))
            }
            "SHELL" => {
                let Args::Json(sh) = &ins.args else {
                    return Err(self.err(ins, "SHELL requires the arguments to be in JSON form"));
                };
                let sh = sh.clone();
                // BuildKit's history line is Go's `%v` of the list: `SHELL [/bin/bash -c]`.
                Some((
                    format!("SHELL [{}]", sh.join(" ")),
                    Box::new(move |c: &mut Value| c["config"]["Shell"] = json!(sh)),
                ))
            }
            "ONBUILD" => {
                let expr = df::onbuild_trigger(ins, &self.file).map_err(|m| self.err(ins, m))?;
                Some((
                    format!("ONBUILD {expr}"),
                    Box::new(move |c: &mut Value| {
                        let cfg = &mut c["config"];
                        if !cfg["OnBuild"].is_array() {
                            cfg["OnBuild"] = json!([]);
                        }
                        if let Some(a) = cfg["OnBuild"].as_array_mut() {
                            a.push(json!(expr));
                        }
                    }),
                ))
            }
            "MAINTAINER" => {
                // Deprecated in Docker, still built: the image's `author`, as BuildKit's.
                let who = text_of(&ins.args);
                Some((
                    format!("MAINTAINER {who}"),
                    Box::new(move |c: &mut Value| c["author"] = json!(who)),
                ))
            }
            "HEALTHCHECK" => {
                // Stored as Docker stores it; dockling runs no healthcheck (yet).
                let h = df::healthcheck(ins).map_err(|m| self.err(ins, m))?;
                let v = h.to_config();
                Some((
                    h.history(),
                    Box::new(move |c: &mut Value| c["config"]["Healthcheck"] = v.clone()),
                ))
            }
            "CMD" | "ENTRYPOINT" => {
                let argv = command(&ins.args, &shell);
                let is_cmd = ins.name == "CMD";
                let clear_cmd = !is_cmd && !w.cmd_set;
                if is_cmd {
                    w.cmd_set = true;
                }
                let shown = format!(
                    "{} {}",
                    ins.name,
                    serde_json::to_string(&argv).expect("json")
                );
                Some((
                    shown,
                    Box::new(move |c: &mut Value| {
                        let cfg = &mut c["config"];
                        if is_cmd {
                            cfg["Cmd"] = json!(argv);
                        } else {
                            cfg["Entrypoint"] = json!(argv);
                            if clear_cmd {
                                if let Some(o) = cfg.as_object_mut() {
                                    o.remove("Cmd");
                                }
                            }
                        }
                    }),
                ))
            }
            _ => None,
        };
        if let Some((created_by, edit)) = meta {
            let key = format!("{parent}\n{created_by}");
            let base = w.image.clone();
            // ONBUILD changes the config only, without a history line (BuildKit's).
            let history = (ins.name != "ONBUILD").then_some(created_by.as_str());
            let img = self.step(&key, &mut |b| {
                b.make_with(base.as_ref(), None, history, &*edit)
            })?;
            w.image = Some(img);
            return Ok(());
        }
        match ins.name.as_str() {
            "ARG" => {
                let pairs = df::pairs(&text_of(&ins.args), &vars, esc, false)
                    .map_err(|e| self.err(ins, e.0))?;
                for (k, default) in pairs {
                    let v = self
                        .build_args
                        .get(&k)
                        .cloned()
                        .or(default)
                        .or_else(|| self.meta.get(&k).cloned());
                    if let Some(v) = v {
                        w.args.insert(k, v);
                    }
                }
                self.sys.tracer.flush();
                self.progress.done();
                Ok(())
            }
            "WORKDIR" => {
                let v = ex(&text_of(&ins.args)).map_err(|e| self.err(ins, e))?;
                let path = if v.starts_with('/') {
                    v
                } else {
                    format!("{}/{v}", w.workdir().trim_end_matches('/'))
                };
                let created_by = format!("WORKDIR {path}");
                let key = format!("{parent}\n{created_by}");
                let base = w.image.clone();
                let img = self.step(&key, &mut |b| {
                    let dirs = match &base {
                        Some(i) => b.store.layer_dirs(i)?,
                        None => vec![],
                    };
                    // Made where a symlink on the way leads (inside the image), not as a
                    // directory hiding the link.
                    let layer = bctx::workdir_layer(&dirs, &path)
                        .map_err(|e| fail(format!("WORKDIR {path}: {e}")))?
                        .map(|t| b.store.layer_of(&t))
                        .transpose()?;
                    let p = path.clone();
                    b.make(base.as_ref(), layer, &created_by, &move |c: &mut Value| {
                        c["config"]["WorkingDir"] = json!(p)
                    })
                })?;
                w.image = Some(img);
                Ok(())
            }
            "RUN" => {
                let (argv, script) = run_command(ins, &shell);
                // ARGs reach RUN as its environment (ENV wins), and are part of its key.
                let env_keys: Vec<String> = w.env().into_iter().map(|(k, _)| k).collect();
                let mut arg_env: Vec<String> = w
                    .args
                    .iter()
                    .filter(|(k, _)| !env_keys.contains(k))
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect();
                arg_env.sort();
                let shown = argv.join(" ");
                let created_by = if arg_env.is_empty() {
                    format!("RUN {shown} # buildkit")
                } else {
                    format!(
                        "RUN |{} {} {shown} # buildkit",
                        arg_env.len(),
                        arg_env.join(" ")
                    )
                };
                let mut key = match &script {
                    // The script is not in the command line: its content is in the key.
                    Some((_, data)) => {
                        format!("{parent}\n{created_by}\n{}", digest_of(data.as_bytes()))
                    }
                    None => format!("{parent}\n{created_by}"),
                };
                let Some(base) = w.image.clone() else {
                    return Err(self.err(ins, "RUN in a stage FROM scratch: there is no shell to run it; start FROM an image"));
                };
                // `--mount=type=cache|tmpfs`: targets made absolute against the working
                // directory; the directories the runtime must make for them (absent from the
                // image) are removed again before the commit, as BuildKit's mount stubs.
                let mut mounts = Vec::new();
                let mut stubs: Vec<String> = Vec::new();
                let dirs = self.store.layer_dirs(&base)?;
                for (_, spec) in ins.flags.iter().filter(|(f, _)| f == "mount") {
                    let m = df::run_mount(spec).map_err(|e| self.err(ins, e))?;
                    let target = resolve_dest(&w.workdir(), m.target());
                    let target = match target.trim_end_matches('/') {
                        "" => {
                            return Err(self
                                .err(ins, format!("RUN --mount {spec:?}: the target cannot be /")))
                        }
                        t => t.to_string(),
                    };
                    let mut p = std::path::PathBuf::from(&target);
                    while p != std::path::Path::new("/")
                        && !bctx::exists_in_layers(&dirs, &p.display().to_string())
                    {
                        stubs.push(p.display().to_string());
                        p.pop();
                    }
                    key.push_str(&format!("\n--mount={spec}"));
                    mounts.push((m, target));
                }
                stubs.sort_by_key(|s| std::cmp::Reverse(s.matches('/').count()));
                stubs.dedup();
                let img = self.step(&key, &mut |b| {
                    let tar = b.run_container(
                        &base,
                        &argv,
                        &arg_env,
                        &shown,
                        script.as_ref(),
                        (&mounts, &stubs),
                    )?;
                    b.make(Some(&base), Some(tar), &created_by, &|_| {})
                })?;
                w.image = Some(img);
                Ok(())
            }
            "COPY" | "ADD" => {
                let words = list(&ins.args, esc, &vars, &self.file, ins.line)?;
                if words.len() < 2 {
                    return Err(self.err(
                        ins,
                        format!(
                            "{} requires at least two arguments: SOURCE... DEST",
                            ins.name
                        ),
                    ));
                }
                let (srcs, dest) = words.split_at(words.len() - 1);
                let add = ins.name == "ADD";
                if add {
                    if let Some(u) = srcs
                        .iter()
                        .find(|s| s.contains("://") || s.starts_with("git@"))
                    {
                        return Err(self.err(ins, format!("ADD {u}: remote sources are not supported by dockling: download it into the build context and COPY it")));
                    }
                }
                let given = resolve_dest(&w.workdir(), &dest[0]);
                // Resolved inside the image as BuildKit does: `COPY f /usr/local/bin` (a
                // directory the image has) copies into it, not replacing it by a file of that
                // name, and a symlink on the way (`/bin -> usr/bin`) is followed, never
                // replaced by a directory.
                let image_dirs = match &w.image {
                    Some(i) => self.store.layer_dirs(i)?,
                    None => vec![],
                };
                let placed =
                    bctx::dest_in_layers(&image_dirs, &given).map_err(|e| self.err(ins, e))?;
                let dest = placed.path.clone();
                let opts = CopyOptions {
                    chown: match flag("chown") {
                        None => None,
                        Some(c) => {
                            let layers = match &w.image {
                                Some(i) => self.store.layer_dirs(i)?,
                                None => vec![],
                            };
                            Some(
                                parse_ids(&c, &layers)
                                    .map_err(|e| self.err(ins, format!("--chown={c}: {e}")))?,
                            )
                        }
                    },
                    chmod: flag("chmod")
                        .map(|m| {
                            u32::from_str_radix(&m, 8).map_err(|_| {
                                self.err(
                                    ins,
                                    format!("invalid --chmod={m}: give octal bits (--chmod=755)"),
                                )
                            })
                        })
                        .transpose()?,
                    extract: add,
                    dest_exists: placed.exists_dir,
                    image_dirs: placed.dirs.clone(),
                };
                let from = flag("from");
                // `--from` an image not stored yet is pulled first, with the cancelling
                // signals at their default action as for FROM's pull: Ctrl-C stops it at
                // once (a pull is crash safe, and nothing of this step exists yet).
                let from_dirs = match &from {
                    None => None,
                    Some(f) => {
                        let img = with_signals_open(|| self.find_base(f))?.ok_or_else(|| {
                            self.err(ins, format!("COPY --from={f}: a stage FROM scratch with no layers has nothing to copy"))
                        })?;
                        Some(self.store.layer_dirs(&img)?)
                    }
                };
                self.check_cancel()?;
                let sink = self.store.layer_sink()?;
                let (sink, content) = match &from_dirs {
                    None => {
                        let source = Source::Context {
                            root: self.context.as_fd(),
                            ignore: &self.ignore,
                        };
                        bctx::copy_layer(&source, srcs, &dest, &opts, sink)
                    }
                    Some(dirs) => bctx::copy_layer(&Source::Layers(dirs), srcs, &dest, &opts, sink),
                }
                .map_err(|e| self.err(ins, e))?;
                let tar = sink.finish().map_err(Error::io("write", "the layer tar"))?;
                let mut flags = String::new();
                for (k, v) in &ins.flags {
                    flags.push_str(&format!("--{k}={v} "));
                }
                let created_by =
                    format!("{} {flags}{} {dest} # buildkit", ins.name, srcs.join(" "));
                // Keyed on what was copied (paths, modes, owners, contents), not on the tar,
                // whose headers carry mtimes: a touched file stays cached, as in Docker.
                let key = format!("{parent}\n{created_by}\n{content}");
                let base = w.image.clone();
                let mut tar = Some(tar);
                let img = self.step(&key, &mut |b| {
                    b.make(base.as_ref(), tar.take(), &created_by, &|_| {})
                })?;
                w.image = Some(img);
                Ok(())
            }
            other => Err(self.err(ins, format!("unknown instruction: {other}"))),
        }
    }
}

fn build(ctx: &Context, args: &BuildArgs, cancel: &AtomicI32) -> Result<String> {
    let started = Instant::now();
    let signals = hold_signals()?;
    let ctx_dir = std::path::Path::new(&args.context);
    if args.context.contains("://") || args.context == "-" {
        return Err(fail(format!(
            "context {:?}: only a local directory is supported by dockling as the build context",
            args.context
        )));
    }
    let context = safefs::open_root(ctx_dir).map_err(|e| {
        fail(format!(
            "unable to prepare context: path {:?} not found ({e})",
            args.context
        ))
    })?;
    let (file_name, text) = match &args.file {
        Some(f) if f == "-" => {
            let mut s = String::new();
            std::io::Read::read_to_string(&mut std::io::stdin(), &mut s)
                .map_err(Error::io("read", "stdin"))?;
            ("Dockerfile".to_string(), s)
        }
        Some(f) => {
            let text = std::fs::read_to_string(f)
                .map_err(|e| fail(format!("failed to read dockerfile: open {f}: {e}")))?;
            let name = std::path::Path::new(f)
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| f.clone());
            (name, text)
        }
        None => {
            let p = ctx_dir.join("Dockerfile");
            // Beneath the context's descriptor: a symlink in it resolves inside the context,
            // never to a host file.
            let text = safefs::openat2(
                context.as_fd(),
                std::path::Path::new("Dockerfile"),
                libc::O_RDONLY | libc::O_NONBLOCK,
                0,
                libc::RESOLVE_IN_ROOT | libc::RESOLVE_NO_MAGICLINKS,
            )
            .and_then(|fd| {
                let mut s = String::new();
                std::io::Read::read_to_string(&mut std::fs::File::from(fd), &mut s).map(|_| s)
            })
            .map_err(|e| {
                fail(format!(
                    "failed to read dockerfile: open {}: {e}: give one with -f",
                    p.display()
                ))
            })?;
            ("Dockerfile".to_string(), text)
        }
    };
    let parsed = df::parse(&text, &file_name).map_err(|e| fail(e.to_string()))?;
    let tags: Vec<Reference> = args
        .tags
        .iter()
        .map(|t| Reference::parse(t))
        .collect::<Result<_>>()?;
    let mut build_args = HashMap::new();
    for a in &args.build_args {
        match a.split_once('=') {
            Some((k, v)) => build_args.insert(k.to_string(), v.to_string()),
            None => match std::env::var(a) {
                Ok(v) => build_args.insert(a.clone(), v),
                Err(_) => None,
            },
        };
    }
    let last = match &args.target {
        Some(t) => parsed
            .stages
            .iter()
            .position(|s| s.name.as_deref() == Some(t.to_ascii_lowercase().as_str()))
            .ok_or_else(|| fail(format!("target stage {t:?} could not be found")))?,
        None => parsed.stages.len() - 1,
    };
    // The ARGs before FROM: what FROM lines substitute, and what `ARG NAME` re-declares.
    let mut meta = Vars::new();
    for ins in &parsed.meta_args {
        let Args::Text(t) = &ins.args else { continue };
        for (k, default) in df::pairs(t, &meta, parsed.escape, false)
            .map_err(|e| fail(format!("{file_name}:{}: {}", ins.line, e.0)))?
        {
            if let Some(v) = build_args.get(&k).cloned().or(default) {
                meta.insert(k, v);
            }
        }
    }
    let epoch = crate::layers::commit::source_date_epoch().map_err(Error::Usage)?;
    let store = Store::open(&ctx.root)?.with_limits(ctx.config.layer_limits()?);
    let ignore =
        Ignore::load(context.as_fd()).map_err(|e| fail(format!("read .dockerignore: {e}")))?;
    let mut b = Builder {
        ctx,
        args,
        store,
        containers: Containers::open(&ctx.root)?,
        sys: Sys::new(Box::new(Linux), Tracer::new(args.trace, false)),
        file: file_name.clone(),
        escape: parsed.escape,
        build_args,
        context,
        ignore,
        epoch,
        progress: Progress {
            quiet: args.quiet,
            n: 0,
            start: Instant::now(),
        },
        stages: Vec::new(),
        total_stages: last + 1,
        meta: meta.clone(),
        triggered: None,
        cancel,
        signals,
    };
    let mut result = None;
    for (si, stage) in parsed.stages.iter().enumerate().take(last + 1) {
        let n = stage.instructions.len() + 1;
        let base_name = df::expand(&stage.base, &meta, parsed.escape)
            .map_err(|e| fail(format!("{file_name}:{}: {}", stage.line, e.0)))?;
        b.check_cancel()?;
        // The base first (a pull shows its own progress): its ONBUILD triggers count in the
        // stage's steps, as in BuildKit's `[i/n]`.
        b.sys
            .tracer
            .note(&format!("{file_name}:{}: FROM {base_name}", stage.line));
        let base = with_signals_open(|| b.find_base(&base_name))
            .map_err(|e| fail(format!("{file_name}:{}: FROM {base_name}: {e}", stage.line)))?;
        // The base's ONBUILD triggers run first, as if written right after the FROM (at its
        // line), as Docker runs them; the images made here do not keep them.
        let mut triggers = Vec::new();
        let on_build = b.raw_config(base.as_ref())?["OnBuild"].clone();
        for t in on_build.as_array().into_iter().flatten() {
            let t = t.as_str().unwrap_or_default();
            triggers.push(
                df::trigger_instruction(t, &file_name, stage.line).map_err(|m| {
                    fail(format!(
                        "{file_name}:{}: ONBUILD trigger {t:?} of {base_name}: {m}",
                        stage.line
                    ))
                })?,
            );
        }
        b.triggered = match triggers.is_empty() {
            true => None,
            false => base.as_ref().map(|i| i.id.clone()),
        };
        let n = n + triggers.len();
        let label = b.label(
            si,
            stage.name.as_deref(),
            1,
            n,
            &format!("FROM {base_name}"),
        );
        b.sys.tracer.flush();
        b.progress.begin(&label);
        b.progress.done();
        let mut w = Working {
            image: base,
            args: Vars::new(),
            cmd_set: false,
        };
        let all = triggers
            .iter()
            .map(|t| (true, t))
            .chain(stage.instructions.iter().map(|i| (false, i)));
        for (i, (trigger, ins)) in all.enumerate() {
            let text = match trigger {
                true => format!("ONBUILD {}", shown_text(ins)),
                false => shown_text(ins),
            };
            b.check_cancel()?;
            let label = b.label(si, stage.name.as_deref(), i + 2, n, &text);
            b.sys.tracer.flush();
            b.progress.begin(&label);
            b.sys
                .tracer
                .note(&format!("{file_name}:{}: {}", ins.line, ins.text));
            b.instruction(&mut w, ins)?;
        }
        b.stages.push((stage.name.clone(), w.image.clone()));
        result = w.image;
    }
    let Some(image) = result else {
        return Err(fail(
            "the build made no image (a stage FROM scratch with no instruction)",
        ));
    };
    b.check_cancel()?;
    b.sys.tracer.flush();
    b.progress.begin("exporting to image");
    let manifest = b.store.read_blob(&image.manifest_digest)?;
    if tags.is_empty() {
        b.store
            .add_to_index(&image.manifest_digest, manifest.len() as u64, None, None)?;
        b.store.remember_result(&image)?;
    }
    for t in &tags {
        b.store
            .add_to_index(&image.manifest_digest, manifest.len() as u64, Some(t), None)?;
    }
    b.progress.line(&format!("writing image {} done", image.id));
    for t in &tags {
        b.progress.line(&format!("naming to {t} done"));
    }
    b.sys.tracer.flush();
    b.progress.done();
    b.sys.tracer.note(&format!(
        "built {} in {:.2}s",
        image.id,
        started.elapsed().as_secs_f64()
    ));
    Ok(image.id)
}

#[cfg(test)]
mod tests {
    use super::resolve_dest;

    #[test]
    fn copy_destinations() {
        assert_eq!(resolve_dest("/app", "./"), "/app/");
        assert_eq!(resolve_dest("/app", "."), "/app/");
        assert_eq!(resolve_dest("/app", "x"), "/app/x");
        assert_eq!(resolve_dest("/", "x/"), "/x/");
        assert_eq!(resolve_dest("/app", "/etc/y"), "/etc/y");
        assert_eq!(resolve_dest("/app", "../z"), "/z");
    }
}
