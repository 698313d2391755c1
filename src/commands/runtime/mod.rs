//! `dockling runtime …` / `dockling-runc …`: dockling's engine behind runc's command line.
//!
//! Exit codes and messages are runc's, since its callers read them: 0, or 1 with
//! `dockling-runc: <message>` on stderr and, with `--log`, one line in the chosen format
//! (podman reads the last JSON line's `msg` when a call fails).

use std::ffi::OsString;
use std::io::Write;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::path::Path;

use nix::errno::Errno;

use clap::Parser;

use crate::cli::runtime::{CreateArgs, ListFormat, LogFormat, RuntimeCli, RuntimeCommand};
use crate::error::{Error, Result};

mod exec;
pub mod features;
pub mod pause;
pub mod ps;
pub mod state;
pub mod update;

use state::{StateRoot, Status};

pub use crate::runtime::oci::OCI_VERSION;

/// Run the runtime's command line (`args[0]` is the program's name) and give its exit code.
pub fn main(args: Vec<OsString>) -> i32 {
    let cli = match RuntimeCli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => {
            use clap::error::ErrorKind;
            let _ = e.print();
            return match e.kind() {
                ErrorKind::DisplayHelp | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => 0,
                _ => 1,
            };
        }
    };
    match run(&cli) {
        Ok(code) => code,
        Err(e) => {
            let msg = e.to_string();
            eprintln!("dockling-runc: {msg}");
            if let Some(log) = &cli.log {
                let _ = log_line(log, cli.log_format, "error", &msg);
            }
            1
        }
    }
}

fn run(cli: &RuntimeCli) -> Result<i32> {
    dispatch(cli).map(|code| code.unwrap_or(0))
}

/// The command's work: `Some(code)` for `run` in the foreground (the container's exit code).
fn dispatch(cli: &RuntimeCli) -> Result<Option<i32>> {
    if cli.version {
        // Three lines, the shape containerd's go-runc parses.
        println!(
            "dockling-runc version {}\ncommit: {}\nspec: {OCI_VERSION}",
            env!("CARGO_PKG_VERSION"),
            option_env!("DOCKLING_GIT_COMMIT").unwrap_or("unknown")
        );
        return Ok(None);
    }
    if cli.systemd_cgroup || cli.cgroup_manager.as_deref() == Some("systemd") {
        return Err(Error::Usage(
            "dockling-runc manages cgroups through cgroupfs only: run podman with \
             --cgroup-manager=cgroupfs, or containerd with SystemdCgroup = false"
                .into(),
        ));
    }
    if let Some(m) = cli.cgroup_manager.as_deref() {
        if m != "cgroupfs" && m != "disabled" {
            return Err(Error::Usage(format!(
                "unknown cgroup manager {m:?}: use cgroupfs or disabled"
            )));
        }
    }
    match cli.rootless.as_deref() {
        None | Some("false") | Some("auto") => {}
        Some("true") => {
            return Err(Error::Usage(
                "dockling-runc runs containers as root only: rootless mode is not supported".into(),
            ))
        }
        Some(other) => {
            return Err(Error::Usage(format!(
                "--rootless {other:?}: use true, false or auto"
            )))
        }
    }
    let done = |r: Result<()>| r.map(|()| None);
    match &cli.command {
        Some(RuntimeCommand::Create(args)) => done(create(cli, args, false).map(|_| ())),
        Some(RuntimeCommand::Start { id }) => done(start(&cli.root, id)),
        Some(RuntimeCommand::Run {
            create: args,
            detach,
            keep,
            ..
        }) => run_container(cli, args, *detach, *keep),
        Some(RuntimeCommand::Exec(args)) => exec::exec(cli, args),
        _ => done(other(cli)),
    }
}

fn other(cli: &RuntimeCli) -> Result<()> {
    match &cli.command {
        Some(RuntimeCommand::Create(_))
        | Some(RuntimeCommand::Start { .. })
        | Some(RuntimeCommand::Run { .. })
        | Some(RuntimeCommand::Exec(_)) => unreachable!("dispatched above"),
        None => Err(Error::Usage(
            "no command given: see `dockling-runc --help`".into(),
        )),
        Some(RuntimeCommand::Spec { bundle, rootless }) => {
            if *rootless {
                return Err(Error::Usage(
                    "dockling-runc runs containers as root only: there is no rootless spec".into(),
                ));
            }
            spec(bundle)
        }
        Some(RuntimeCommand::State { id }) => {
            let root = StateRoot::open(&cli.root)?;
            let record = root.load(id)?;
            let status = record.status(&root.dir_of(id));
            println!(
                "{}",
                serde_json::to_string_pretty(&record.runc_state(status))
                    .map_err(|e| Error::Corrupt(e.to_string()))?
            );
            Ok(())
        }
        Some(RuntimeCommand::List { format, quiet }) => list(&cli.root, *format, *quiet),
        Some(RuntimeCommand::Kill { all, id, signal }) => kill(&cli.root, id, signal, *all),
        Some(RuntimeCommand::Delete { force, id }) => delete(&cli.root, id, *force),
        Some(RuntimeCommand::Pause { id }) => pause::pause(&cli.root, id, true),
        Some(RuntimeCommand::Resume { id }) => pause::pause(&cli.root, id, false),
        Some(RuntimeCommand::Ps {
            format,
            id,
            ps_args,
        }) => ps::ps(&cli.root, id, *format, ps_args),
        Some(RuntimeCommand::Features) => features::features(),
        Some(RuntimeCommand::Update(args)) => update::update(&cli.root, args),
        Some(RuntimeCommand::Checkpoint { .. }) | Some(RuntimeCommand::Restore { .. }) => {
            Err(Error::Usage(
                "dockling-runc does not checkpoint or restore containers (no CRIU support): \
                 stop the container and start it again instead"
                    .into(),
            ))
        }
        Some(RuntimeCommand::Events { .. }) => Err(Error::Usage(
            "dockling-runc reports no events: read the container's cgroup files \
             (memory.events, pids.current...) or poll `state`"
                .into(),
        )),
    }
}

/// The seam of a runtime command: its events go to the JSON-lines file `DOCKLING_TRACE` names
/// (podman and containerd pass no flags of dockling's; the variable is read at `create`, and
/// the record keeps the path for `start` and `delete`), appended, never to stderr, which is
/// the container's.
fn runtime_sys(trace: Option<&Path>, id: &str) -> Result<crate::sys::Sys> {
    let file = trace.map(Path::to_path_buf).or_else(|| trace_from_env(id));
    let tracer = crate::trace::Tracer::for_command(None, file.as_deref(), false, false)?;
    Ok(crate::sys::Sys::new(
        Box::new(crate::sys::linux::Linux),
        tracer,
    ))
}

/// The trace file `DOCKLING_TRACE` asks for container `id`: the file it names, or, when it
/// names a directory, `<id>.jsonl` in it (one file per container: containerd's shim and
/// podman's conmon start many containers with one environment).
fn trace_from_env(id: &str) -> Option<std::path::PathBuf> {
    let named = std::path::PathBuf::from(std::env::var_os("DOCKLING_TRACE")?);
    Some(if named.is_dir() {
        named.join(format!("{id}.jsonl"))
    } else {
        named
    })
}

/// `create`: the container made from the bundle, its first process waiting for `start`, its
/// record written, the pid file too. On failure nothing of it is left.
/// What `create` made, for `run`.
struct Made {
    root: StateRoot,
    record: state::Record,
    /// The signal mask before a foreground `run`'s block.
    old_mask: Option<u64>,
    /// The terminal's master end a foreground `run` relays (a terminal, no console socket).
    master: Option<std::os::fd::OwnedFd>,
}

/// `relay`: a foreground `run`'s: the signals it forwards blocked before the container's
/// process is cloned (so it starts with them blocked and unblocks them just before its
/// `execve`, as `dockling run`'s does), and a terminal kept to relay when no console socket
/// takes it.
fn create(cli: &RuntimeCli, args: &CreateArgs, relay: bool) -> Result<Made> {
    state::check_id(&args.id)?;
    // Read once: the trace this create writes, and the one the record keeps for later commands.
    let trace = trace_from_env(&args.id);
    let sys = runtime_sys(trace.as_deref(), &args.id)?;
    // The container's process is a clone of this one: from the sealed copy of the binary,
    // as `dockling run` (CVE-2019-5736).
    crate::runtime::exe::enter_sealed(&sys, crate::runtime::exe::Unsealed::Warn)?;
    let bundle = std::fs::canonicalize(&args.bundle).map_err(|e| {
        Error::Usage(format!(
            "bundle {}: {e} (give --bundle, the directory holding config.json)",
            args.bundle.display()
        ))
    })?;
    let config = args
        .config
        .clone()
        .unwrap_or_else(|| bundle.join("config.json"));
    let text = std::fs::read(&config)
        .map_err(|e| Error::Usage(format!("read {}: {e}", config.display())))?;
    let flags = crate::specconv::oci::OciFlags {
        id: args.id.clone(),
        no_pivot: args.no_pivot,
    };
    let mut warnings = Vec::new();
    let (mut spec, parts) =
        crate::specconv::oci::from_config(&text, &bundle, &flags, &mut |w| warnings.push(w))
            .map_err(|e| Error::Usage(e.to_string()))?;
    for w in warnings {
        warn(cli, &w);
    }
    // Read from the bundle's root before any mount: a bind over /etc/passwd is not seen.
    if !spec.env.iter().any(|e| e.starts_with("HOME=")) {
        // A root that cannot be opened is refused further on, by name.
        if let Ok(root) = sys.open(
            &parts.root,
            libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC,
        ) {
            exec::set_home(&sys, &mut spec, root.as_fd(), &parts.root);
        }
    }
    match (spec.tty, &args.console_socket) {
        // A foreground `run` relays the terminal itself, as runc's does.
        (true, None) if !relay => {
            return Err(Error::Usage(
                "process.terminal is true but no --console-socket was given: the terminal's \
                 master end has nowhere to go once this command ends; give a console socket, \
                 run it in the foreground (`run` without --detach relays the terminal), or set \
                 terminal false"
                    .into(),
            ))
        }
        (false, Some(_)) => {
            return Err(Error::Usage(
                "--console-socket needs process.terminal true in the config".into(),
            ))
        }
        _ => {}
    }
    let root = StateRoot::open(&cli.root)?;
    let dir = root.dir_of(&args.id);
    {
        use std::os::unix::fs::DirBuilderExt;
        match std::fs::DirBuilder::new().mode(0o711).create(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                return Err(Error::Usage(format!(
                    "container {:?} already exists: delete it first, or choose another id",
                    args.id
                )))
            }
            Err(e) => return Err(Error::io("create", &dir)(e)),
        }
    }
    let (spec, cgroup_at) = match cli.cgroup_manager.as_deref() {
        // No cgroup, so no device rules either: the root and every bind are mounted nodev.
        Some("disabled") => (
            crate::spec::RunSpec {
                cgroup: None,
                ..spec
            },
            None,
        ),
        _ => {
            let at = cgroup_at(&parts.cgroups_path, &args.id)?;
            (spec, Some(at))
        }
    };
    let mut record = state::Record {
        oci_version: OCI_VERSION.into(),
        id: args.id.clone(),
        creating: state::Proc::of(std::process::id() as i32),
        init: None,
        bundle: bundle.clone(),
        rootfs: parts.root.clone(),
        created: crate::container::now_rfc3339(),
        annotations: parts.annotations.clone(),
        cgroup: cgroup_at.clone(),
        trace,
        program: None,
        no_pivot: args.no_pivot,
        config: serde_json::from_slice(&text).unwrap_or_default(),
    };
    // Only a group this create checked empty and made is this create's to remove on failure.
    let mut own_cgroup = false;
    let mut old_mask = None;
    let mut master = None;
    let made = (|| {
        let _lock = root.lock(&args.id)?;
        root.save(&record)?;
        let fifo = dir.join("exec.fifo");
        let cgroup = match &cgroup_at {
            Some(at) => Some(crate::cgroups::Cgroup::new(&at.parent, &at.name)?),
            None => None,
        };
        // A group with processes in it is someone else's: adopting it would give them this
        // container's limits, and deleting this container would kill them (runc refuses too).
        if let Some(cg) = &cgroup {
            if !cg.procs(&sys).is_empty() {
                let at = cgroup_at
                    .as_ref()
                    .map(|a| format!("{}/{}", a.parent, a.name));
                return Err(Error::Usage(format!(
                    "linux.cgroupsPath {}: that cgroup already has processes; give the \
                     container a group of its own",
                    at.unwrap_or_default()
                )));
            }
        }
        own_cgroup = true;
        let cloned = std::cell::Cell::new(None);
        let saved = std::cell::RefCell::new(record.clone());
        let on_clone = |pid: i32| {
            cloned.set(state::Proc::of(pid));
            let mut r = saved.borrow_mut();
            r.init = cloned.get();
            // Best effort: the final record below says the same once the process is ready.
            let _ = root.save(&r);
        };
        if relay {
            old_mask = Some(crate::runtime::io::block_signals(&sys)?);
        }
        let created = crate::runtime::oci::create(
            &sys,
            &spec,
            &crate::runtime::oci::CreateOptions {
                parts: &parts,
                cgroup: cgroup.as_ref(),
                fifo: &fifo,
                console_socket: args.console_socket.as_deref(),
                preserve_fds: args.preserve_fds,
                on_clone: &on_clone,
            },
        );
        record.init = cloned.get();
        let mut created = created?;
        master = created.master.take();
        record.init = state::Proc::of(created.pid);
        record.program = Some(created.program.clone());
        record.creating = None;
        if let Some(adj) = parts.oom_score_adj {
            sys.write_file(
                Path::new(&format!("/proc/{}/oom_score_adj", created.pid)),
                &adj.to_string(),
            )?;
        }
        root.save(&record)?;
        if let Some(pf) = &args.pid_file {
            crate::files::replace_atomic(pf, created.pid.to_string().as_bytes())?;
        }
        Ok(created.pid)
    })();
    match made {
        Ok(_) => Ok(Made {
            root,
            record,
            old_mask,
            master,
        }),
        Err(e) => {
            if let Some(m) = old_mask {
                crate::runtime::io::restore_signals(&sys, m);
            }
            if let Some(p) = record.init {
                let _ = crate::commands::rm::signal_through(&sys, p.pid, p.start, libc::SIGKILL);
            }
            if own_cgroup {
                if let Some(cg) = record.cgroup() {
                    let _ = cg.destroy(&sys);
                }
            }
            // Its process existed, so the lifecycle began (and its hooks may have run).
            if record.init.is_some() {
                poststop(&sys, &record, &parts.hooks);
            }
            let _ = root.remove(&args.id);
            Err(e)
        }
    }
}

/// `linux.cgroupsPath` as the parent group and the container's own; empty: the runtime's
/// `dockling-runc/<id>`.
fn cgroup_at(path: &str, id: &str) -> Result<state::CgroupAt> {
    let path = path.trim_matches('/');
    if path
        .split('/')
        .any(|c| c == "." || c == ".." || (c.is_empty() && !path.is_empty()))
    {
        return Err(Error::Usage(format!(
            "linux.cgroupsPath {path:?}: give a plain path of groups (no empty, . or .. parts)"
        )));
    }
    Ok(cgroup_at_clean(path, id))
}

fn cgroup_at_clean(path: &str, id: &str) -> state::CgroupAt {
    match path.rsplit_once('/') {
        _ if path.is_empty() => state::CgroupAt {
            parent: "dockling-runc".into(),
            name: id.into(),
        },
        Some((parent, name)) => state::CgroupAt {
            parent: parent.into(),
            name: name.into(),
        },
        None => state::CgroupAt {
            parent: String::new(),
            name: path.into(),
        },
    }
}

/// `start`: open the other end of the waiting process's FIFO and read its byte; it then
/// runs its program. The FIFO goes, so the container reads `running` from now on. `start`
/// returns once the program's `execve` is done: the child's end of the FIFO, close-on-exec,
/// closes then (a failed `execve` writes a second byte before the child exits).
fn start(root_dir: &Path, id: &str) -> Result<()> {
    let root = StateRoot::open(root_dir)?;
    let (lock, record) = root.lock_and_load(id)?;
    let dir = root.dir_of(id);
    let status = record.status(&dir);
    if status != Status::Created {
        return Err(Error::Usage(format!(
            "cannot start container {id:?}: it is {}, not created",
            status.as_str()
        )));
    }
    let sys = runtime_sys(record.trace.as_deref(), &record.id)?;
    sys.tracer.set_process("engine");
    let fifo = dir.join("exec.fifo");
    let init = record.init.expect("created means a process");
    // The process itself, waited on beside the FIFO (a process that ends before it opens
    // its end of the FIFO would leave the FIFO silent): checked after the pidfd's open, so a
    // reused pid is never waited on, and before the FIFO's, which lets it go on (a quick
    // program may have ended by the time of a check after).
    let pidfd = match sys.pidfd_to_wait(init.pid) {
        Ok(fd) => Some(fd).filter(|_| init.alive()),
        Err(e) if e.errno == Errno::ESRCH => None,
        // No pidfd (a kernel before 5.3, a seccomp filter, no descriptor left): said as is,
        // not as a process that ended.
        Err(e) => return Err(e.into()),
    };
    let Some(pidfd) = pidfd else {
        return Err(Error::Usage(format!(
            "container {id:?}'s process ended before it started"
        )));
    };
    // Non-blocking: the open does not wait for a writer, nor a read for data.
    let fd = sys.open(&fifo, libc::O_RDONLY | libc::O_NONBLOCK | libc::O_CLOEXEC)?;
    let hooks = record_hooks(&record);
    let bound = || std::time::Instant::now() + std::time::Duration::from_secs(10);
    // The startContainer hooks run between the go-ahead and the byte: as long as they take.
    let mut deadline = hooks.start_container.is_empty().then(bound);
    // `0` from the process: it goes on to its program (`go`: when). `E` and a message: a
    // startContainer hook failed, and the process ends. After `0`, the end of the FIFO is
    // its `execve` done; a `1` before it, its `execve` failed. A FIFO opened for reading
    // reports no hang-up before a writer came (fifo(7), pipe_poll's `w_counter`), so the
    // poll wakes for its bytes, its writer's close, or the process's end.
    let mut go = None;
    let mut got: Vec<u8> = Vec::new();
    let execed = loop {
        let timeout = deadline.map_or(-1, |d| {
            let left = d.saturating_duration_since(std::time::Instant::now());
            i32::try_from(left.as_millis()).unwrap_or(i32::MAX)
        });
        // After the go-ahead the process's end no longer counts: the FIFO's end says it all.
        let waited: Vec<BorrowedFd<'_>> = if go.is_none() {
            vec![fd.as_fd(), pidfd.as_fd()]
        } else {
            vec![fd.as_fd()]
        };
        let ready = match sys.poll(&waited, timeout, "exec.fifo and the process's pidfd") {
            Ok(r) => r,
            Err(e) if e.errno == Errno::EINTR => continue,
            Err(e) => return Err(e.into()),
        };
        if ready.is_empty() {
            if go.is_some() {
                // Let go: it runs (or will); only its execve is not written down.
                break false;
            }
            return Err(Error::Usage(format!(
                "container {id:?}'s process did not answer within 10 s"
            )));
        }
        let fifo_ready = ready.iter().any(|&(r, _)| r == fd.as_raw_fd());
        if !fifo_ready {
            // The process ended (before the go-ahead); what it wrote stays readable.
            while let Ok(more) = sys.read(fd.as_fd(), &fifo, 512) {
                if more.is_empty() {
                    break;
                }
                got.extend_from_slice(&more);
            }
            return Err(ended(id, &got));
        }
        let buf = match sys.read(fd.as_fd(), &fifo, 512) {
            Ok(b) => b,
            Err(e) if matches!(e.errno, Errno::EAGAIN | Errno::EINTR) => continue,
            Err(e) => return Err(e.into()),
        };
        match (buf.first(), go) {
            (Some(b'0'), None) if got.is_empty() => {
                go = Some(std::time::Instant::now());
                deadline = Some(bound());
                sys.unlink(&fifo)?;
                if buf.len() > 1 {
                    break false;
                }
            }
            // Its execve failed (the process says so on its standard error and exits).
            (Some(_), Some(_)) => break false,
            (Some(_), None) => got.extend_from_slice(&buf),
            // The end of the FIFO: its execve done.
            (None, Some(_)) => break true,
            // Its writer closed without the go-ahead: the process is ending.
            (None, None) => return Err(ended(id, &got)),
        }
    };
    if execed {
        record_exec(&sys, &record, go.unwrap_or_else(std::time::Instant::now));
    }
    if !hooks.poststart.is_empty() {
        let state = crate::runtime::hooks::state(
            id,
            "running",
            Some(init.pid),
            &record.bundle,
            &record.annotations,
        );
        // runc and crun end the container when a poststart hook fails, and crun removes it
        // too (its tests check): so does this, as `delete --force` would.
        if let Err(e) = crate::runtime::hooks::run(
            &sys,
            "poststart",
            &hooks.poststart,
            &state,
            Some(&record.bundle),
        ) {
            drop(lock);
            drop(sys);
            if let Err(d) = delete(root_dir, id, true) {
                eprintln!(
                    "dockling-runc: warning: delete {id:?} after its poststart hook failed: {d}"
                );
            }
            return Err(e);
        }
    }
    Ok(())
}

/// The error of a `start` whose process ended before the go-ahead: a startContainer hook's
/// failure (`E` and its message on the FIFO), or the end alone.
fn ended(id: &str, got: &[u8]) -> Error {
    Error::Usage(match got.split_first() {
        Some((b'E', text)) => String::from_utf8_lossy(text).into_owned(),
        _ => format!("container {id:?}'s process ended before it started"),
    })
}

/// The hooks of the config `create` kept in the record (none when it has none).
fn record_hooks(record: &state::Record) -> crate::specconv::oci::Hooks {
    match record.config.get("hooks") {
        Some(v) if !v.is_null() => serde_json::from_value(v.clone()).unwrap_or_default(),
        _ => Default::default(),
    }
}

/// The container's `execve`, which its own trace cannot hold (it succeeds or never returns,
/// and no engine waits on its channel any more), written down by `start` on its behalf once
/// it is done: as `dockling run`'s engine does for its own.
fn record_exec(sys: &crate::sys::Sys, record: &state::Record, since: std::time::Instant) {
    let Some(program) = &record.program else {
        return;
    };
    let strings = |k: &str| crate::image::commit::strings(&record.config["process"][k]);
    crate::runtime::record_execve(
        sys,
        "container",
        program.clone(),
        strings("args"),
        strings("env"),
        since.elapsed(),
    );
}

/// `run`: create and start; with `--detach` leave it running, else wait for it (it is this
/// process's child), delete it unless `--keep`, and give its exit code.
fn run_container(
    cli: &RuntimeCli,
    args: &CreateArgs,
    detach: bool,
    keep: bool,
) -> Result<Option<i32>> {
    let Made {
        root,
        record,
        old_mask,
        master,
    } = create(cli, args, !detach)?;
    // On the way out with an error, the signals go back to how they were (the process ends
    // right after, but nothing of a failed run should stay changed).
    let unblock = |sys: &crate::sys::Sys| {
        if let Some(m) = old_mask {
            crate::runtime::io::restore_signals(sys, m);
        }
    };
    if let Err(e) = start(&cli.root, &args.id) {
        let _ = delete(&cli.root, &args.id, true);
        unblock(&crate::sys::Sys::quiet());
        return Err(e);
    }
    if detach {
        return Ok(None);
    }
    let pid = record.init.map(|p| p.pid).unwrap_or(0);
    // The container is this process's child (create's clone): waited for through the seam,
    // the signals this process gets (Ctrl-C, a TERM from whoever started it) passed on to it
    // meanwhile, as `dockling run` does for its own.
    let sys = match runtime_sys(record.trace.as_deref(), &record.id) {
        Ok(sys) => sys,
        Err(e) => {
            // Nothing would relay to it or wait for it: it goes.
            let _ = delete(&cli.root, &args.id, true);
            unblock(&crate::sys::Sys::quiet());
            return Err(e);
        }
    };
    let stdin = master.is_some();
    let relayed = crate::runtime::io::relay(
        &sys,
        pid,
        master,
        stdin,
        true,
        Vec::new(),
        crate::runtime::io::Sink::stdout(),
    );
    unblock(&sys);
    let code = crate::runtime::io::exit_code(relayed?.status);
    // Its events written before delete's own (each command's seam writes when it ends).
    drop(sys);
    drop(root);
    if !keep {
        delete(&cli.root, &args.id, true)?;
    }
    Ok(Some(code))
}

/// `list`: every container under the root, in runc's columns or as a JSON array of states.
fn list(root: &Path, format: ListFormat, quiet: bool) -> Result<()> {
    let root = StateRoot::open(root)?;
    let mut rows = Vec::new();
    for id in root.ids()? {
        // One unreadable record does not hide the others (runc skips them too).
        let Ok(record) = root.load(&id) else { continue };
        let status = record.status(&root.dir_of(&id));
        rows.push(record.runc_state(status));
    }
    let mut out = String::new();
    if quiet {
        for r in &rows {
            out.push_str(r["id"].as_str().unwrap_or(""));
            out.push('\n');
        }
    } else if format == ListFormat::Json {
        out = serde_json::to_string(&rows).map_err(|e| Error::Corrupt(e.to_string()))?;
        out.push('\n');
    } else {
        let rows: Vec<Vec<String>> = rows
            .iter()
            .map(|r| {
                let text = |k: &str| r[k].as_str().unwrap_or("").to_string();
                vec![
                    text("id"),
                    r["pid"].to_string(),
                    text("status"),
                    text("bundle"),
                    text("created"),
                    "root".into(),
                ]
            })
            .collect();
        out = crate::commands::table(
            &["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"],
            &rows,
        );
    }
    std::io::stdout()
        .write_all(out.as_bytes())
        .map_err(|e| Error::Usage(format!("write the list: {e}")))
}

/// `kill`: a signal to the container's first process (checked to be the one recorded), or with
/// `--all` to every process of its cgroup. A stopped container has nothing to signal.
fn kill(root: &Path, id: &str, signal: &str, all: bool) -> Result<()> {
    let sig = crate::commands::lifecycle::parse_signal(signal)?;
    let root = StateRoot::open(root)?;
    let (_lock, record) = root.lock_and_load(id)?;
    let status = record.status(&root.dir_of(id));
    let init = match (status, record.init) {
        (Status::Created | Status::Running | Status::Paused, Some(p)) => p,
        // Every process of its cgroup, even once the first has ended (runc allows it: with
        // a shared pid namespace others may live on).
        (Status::Stopped, Some(p)) if all && record.cgroup.is_some() => p,
        _ => {
            return Err(Error::Usage(format!(
                "container {id:?} is not running ({}): there is nothing to signal",
                status.as_str()
            )))
        }
    };
    let sys = runtime_sys(record.trace.as_deref(), &record.id)?;
    if all {
        if let Some(cg) = record.cgroup() {
            if sig == libc::SIGKILL {
                return cg.kill_all(&sys);
            }
            for pid in cg.procs(&sys) {
                // One that ended meanwhile is not an error.
                let _ = sys.run(crate::sys::Call::Kill { pid, signal: sig });
            }
            return Ok(());
        }
    }
    crate::commands::rm::signal_through(&sys, init.pid, init.start, sig)?;
    // A frozen process cannot act on SIGKILL: the group is thawed after it, as runc does
    // (other signals stay pending until `resume`).
    if sig == libc::SIGKILL && status == Status::Paused {
        if let Some(cg) = record.cgroup() {
            cg.freeze_settled(&sys, false)?;
        }
    }
    Ok(())
}

/// `delete`: a stopped container's cgroup and state removed; a created one is killed first
/// (it never ran); a running or paused one only with `--force`. An unknown id is an error,
/// except with `--force`.
fn delete(root: &Path, id: &str, force: bool) -> Result<()> {
    let root = StateRoot::open(root)?;
    let (_lock, record) = match root.lock_and_load(id) {
        Ok(r) => r,
        Err(Error::NotFound(_)) if force => {
            // No directory, or one without a record (a create killed before writing one).
            return root.remove(id);
        }
        Err(e) => return Err(e),
    };
    let status = record.status(&root.dir_of(id));
    let sys = runtime_sys(record.trace.as_deref(), &record.id)?;
    match status {
        Status::Stopped => {}
        Status::Running | Status::Paused if !force => {
            return Err(Error::Usage(format!(
                "cannot delete container {id:?} that is not stopped: {} (stop it with \
                 `kill`, or use delete --force)",
                status.as_str()
            )))
        }
        Status::Creating if !force => {
            return Err(Error::Usage(format!(
                "container {id:?} is still being created: wait for its create to end, or use \
                 delete --force"
            )))
        }
        _ => {
            // Created (it never ran), or forced: every process of it killed, then waited for.
            if let Some(cg) = record.cgroup() {
                cg.kill_all(&sys)?;
            }
            for p in [record.creating, record.init].into_iter().flatten() {
                crate::commands::rm::signal_through(&sys, p.pid, p.start, libc::SIGKILL)?;
                let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
                while p.alive() {
                    if std::time::Instant::now() > deadline {
                        return Err(Error::Usage(format!(
                            "container {id:?}'s process {} did not end within 10 s of SIGKILL",
                            p.pid
                        )));
                    }
                    std::thread::sleep(std::time::Duration::from_millis(2));
                }
            }
        }
    }
    if let Some(cg) = record.cgroup() {
        cg.destroy(&sys)?;
    }
    poststop(&sys, &record, &record_hooks(&record));
    root.remove(id)
}

/// The poststop hooks of a container that is gone (`delete`, or a `create` that failed once
/// its process existed: the spec goes on to delete then, and runc's and crun's failed creates
/// run them too). A failure is a warning, and the next hook still runs.
fn poststop(sys: &crate::sys::Sys, record: &state::Record, hooks: &crate::specconv::oci::Hooks) {
    if hooks.poststop.is_empty() {
        return;
    }
    let state = crate::runtime::hooks::state(
        &record.id,
        "stopped",
        None,
        &record.bundle,
        &record.annotations,
    );
    crate::runtime::hooks::run_all(
        sys,
        "poststop",
        &hooks.poststop,
        &state,
        Some(&record.bundle),
        &mut |w| eprintln!("dockling-runc: warning: {w}"),
    );
}

/// A warning on stderr and, with `--log`, in the log.
fn warn(cli: &RuntimeCli, msg: &str) {
    eprintln!("dockling-runc: warning: {msg}");
    if let Some(log) = &cli.log {
        let _ = log_line(log, cli.log_format, "warning", msg);
    }
}

/// One line of `--log`, appended.
fn log_line(path: &Path, format: LogFormat, level: &str, msg: &str) -> std::io::Result<()> {
    let time = crate::container::now_rfc3339();
    let line = match format {
        LogFormat::Json => {
            serde_json::json!({"level": level, "msg": msg, "time": time}).to_string()
        }
        LogFormat::Text => format!(
            "time={} level={level} msg={}",
            serde_json::Value::from(time),
            serde_json::Value::from(msg)
        ),
    };
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(path)?;
    f.write_all(format!("{line}\n").as_bytes())
}

/// `spec`: a `config.json` for a bundle whose root filesystem is `rootfs/`: the document
/// dockling itself writes for `dockling run busybox sh` (Docker's capabilities, mounts,
/// masked paths and device rules), without what belongs to one container of a store (its
/// /etc files, its cgroup, its seccomp policy, which runc's template leaves out too).
fn spec(bundle: &Path) -> Result<()> {
    let mut doc = serde_json::to_value(template()?)
        .map_err(|e| Error::Corrupt(format!("runtime spec template: {e}")))?;
    doc["process"]["terminal"] = true.into();
    if let Some(linux) = doc["linux"].as_object_mut() {
        linux.remove("cgroupsPath");
        linux.remove("seccomp");
    }
    if let Some(mounts) = doc["mounts"].as_array_mut() {
        mounts.retain(|m| {
            !m["destination"]
                .as_str()
                .is_some_and(|d| d.starts_with("/etc/"))
        });
    }
    let text = serde_json::to_vec_pretty(&doc)
        .map_err(|e| Error::Corrupt(format!("runtime spec template: {e}")))?;
    let path = bundle.join("config.json");
    let mut f = match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&path)
    {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            return Err(Error::Usage(format!(
                "{} exists: remove it first",
                path.display()
            )))
        }
        Err(e) => {
            return Err(Error::Usage(format!(
                "write {}: {e} (is --bundle an existing directory?)",
                path.display()
            )))
        }
    };
    f.write_all(&text)
        .and_then(|_| f.write_all(b"\n"))
        .map_err(|e| Error::Usage(format!("write {}: {e}", path.display())))
}

/// The runtime spec of a template container, made by the code that writes every container's.
fn template() -> Result<oci_spec::runtime::Spec> {
    use crate::runtime::caps;
    use crate::spec::{Namespaces, NetworkMode, RootfsMode, RunSpec, User};
    let capabilities = caps::DOCKER_DEFAULT
        .iter()
        .map(|n| caps::number(n))
        .collect::<Result<Vec<_>>>()?;
    let spec = RunSpec {
        id: String::new(),
        name: String::new(),
        image_ref: String::new(),
        image_id: String::new(),
        layers: vec![],
        args: vec!["sh".into()],
        env: vec![
            "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into(),
            "TERM=xterm".into(),
        ],
        cwd: "/".into(),
        user: User {
            uid: 0,
            gid: 0,
            additional_gids: vec![],
        },
        hostname: "dockling".into(),
        tty: true,
        interactive: false,
        remove: false,
        namespaces: Namespaces {
            pid: true,
            uts: true,
            ipc: true,
            net: true,
            cgroup: true,
        },
        network: NetworkMode::None,
        net: Default::default(),
        layers_mode: Default::default(),
        rootfs_mode: RootfsMode::PivotRoot,
        cgroup: Some(Default::default()),
        privileged: false,
        capabilities,
        seccomp: None,
        no_new_privileges: false,
        volumes: vec![],
        read_only: false,
        bundle: Default::default(),
        restart: Default::default(),
        log_opts: vec![],
        init: false,
        ports: Default::default(),
    };
    crate::runtime::bundle::config(&spec, "")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_template_is_what_the_reader_accepts() {
        let dir = tempfile::tempdir().unwrap();
        spec(dir.path()).unwrap();
        let text = std::fs::read(dir.path().join("config.json")).unwrap();
        let flags = crate::specconv::oci::OciFlags {
            id: "t".into(),
            no_pivot: false,
        };
        let (run, parts) = crate::specconv::oci::from_config(&text, dir.path(), &flags, &mut |w| {
            panic!("warned: {w}")
        })
        .unwrap();
        assert_eq!(run.args, ["sh"]);
        assert!(run.tty);
        assert_eq!(parts.root, dir.path().join("rootfs"));
        assert!(parts.cgroups_path.is_empty());
        assert!(!parts
            .mounts
            .iter()
            .any(|m| m.destination.starts_with("/etc")));
        // A second spec does not overwrite the first.
        let before = std::fs::metadata(dir.path().join("config.json")).unwrap();
        let err = spec(dir.path()).unwrap_err().to_string();
        assert!(err.contains("exists: remove it first"), "{err}");
        let after = std::fs::metadata(dir.path().join("config.json")).unwrap();
        assert_eq!(
            (before.len(), before.modified().unwrap()),
            (after.len(), after.modified().unwrap())
        );
    }

    #[test]
    fn log_lines_are_runc_shaped() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("log.json");
        log_line(
            &log,
            LogFormat::Json,
            "error",
            "container \"x\" does not exist",
        )
        .unwrap();
        log_line(&log, LogFormat::Text, "error", "two \"words\"").unwrap();
        let text = std::fs::read_to_string(&log).unwrap();
        let mut lines = text.lines();
        let json: serde_json::Value = serde_json::from_str(lines.next().unwrap()).unwrap();
        assert_eq!(json["level"], "error");
        assert_eq!(json["msg"], "container \"x\" does not exist");
        assert!(json["time"].as_str().unwrap().ends_with('Z'));
        let text_line = lines.next().unwrap();
        assert!(
            text_line.starts_with("time=\"")
                && text_line.ends_with("level=error msg=\"two \\\"words\\\"\""),
            "{text_line}"
        );
    }
}
