//! Process creation: the parent side of a container start, step by step.
//!
//! `start` walks the plan in [`crate::plan`] order. Steps on the engine's side (prepare the
//! writable layer, cgroup, clone, wait) are here; steps inside the new
//! namespaces are in [`child`]. Every step goes through the [`Sys`] seam, so the same code is
//! traced for real, or replayed against the recorder by `dockling explain`.
//!
//! Never fork from a multi-threaded process: `start` is only called from the single-threaded
//! CLI, and the clone below relies on that.

pub mod bundle;
pub mod caps;
pub mod channel;
pub mod child;
mod error;
pub mod exe;
pub mod exec;
pub mod hooks;
pub mod init;
pub mod io;
pub mod oci;
pub mod rootfs;
pub mod seccomp;

pub use error::RuntimeError;

use std::os::fd::{AsRawFd, IntoRawFd};
use std::path::Path;

use nix::sched::CloneFlags;

use crate::container::{Containers, Status};
use crate::error::{Error, Result};
use crate::plan::StepId;
use crate::spec::{LayersMode, RunSpec};
use crate::sys::{Call, Ret, Sys};
use channel::Message;

/// How a container run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outcome {
    /// Docker's exit code: the process's, or 128 + signal.
    pub exit_code: i32,
    /// The kernel's OOM killer ended it.
    pub oom_killed: bool,
    /// Whoever read dockling's stdout went away and the container was killed for it:
    /// dockling exits 141 (128 + SIGPIPE), as `docker run` does.
    pub broken_pipe: bool,
}

/// The namespaces `clone` creates for `spec` (the cgroup namespace comes later, see child).
pub fn clone_flags(spec: &RunSpec) -> CloneFlags {
    let ns = &spec.namespaces;
    let mut f = CloneFlags::CLONE_NEWNS;
    if ns.pid {
        f |= CloneFlags::CLONE_NEWPID;
    }
    if ns.uts {
        f |= CloneFlags::CLONE_NEWUTS;
    }
    if ns.ipc {
        f |= CloneFlags::CLONE_NEWIPC;
    }
    if ns.net {
        f |= CloneFlags::CLONE_NEWNET;
    }
    f
}

/// Undo what the engine did on the host for a container that will not run (or has ended).
struct Cleanup<'a> {
    sys: &'a Sys,
    cgroup: Option<&'a crate::cgroups::Cgroup>,
    /// The id of a container plugged into a bridge: its veth pair is deleted.
    veth: Option<String>,
    /// The host ends of the pairs `network connect` plugged (eth1…), deleted too.
    extra_veths: Vec<String>,
    /// The published ports: their sockets, and the proxy or NAT table leading them on.
    ports: Publishing,
    armed: bool,
}

/// What a run with published ports holds on the host until it ends (see `network.publish`).
#[derive(Default)]
struct Publishing {
    /// The bound host ports (listening for the proxy, reserved in NAT mode).
    listeners: Vec<crate::network::ports::Listener>,
    /// Proxy mode: `dockling proxy`, killed and waited for at the end.
    proxy: Option<crate::network::proxy::ProxyChild>,
    /// NAT mode: the container's table, deleted at the end (the kernel deletes it too when
    /// the engine dies: its socket owns it).
    table: Option<crate::network::nft::OwnedTable>,
}

impl Publishing {
    /// Stop leading the ports on and close them: the proxy killed, the table deleted.
    fn end(&mut self, sys: &Sys) {
        if let Some(p) = self.proxy.take() {
            let pid = p.pid();
            p.kill(sys);
            sys.tracer.note(&format!(
                "killed and waited for dockling proxy (pid {pid}): the published ports close with it"
            ));
        }
        if let Some(t) = self.table.take() {
            if let Err(e) = t.remove(sys) {
                eprintln!("dockling: warning: {e}");
            }
        }
        self.listeners.clear();
    }
}

impl Drop for Cleanup<'_> {
    fn drop(&mut self) {
        if self.armed {
            self.ports.end(self.sys);
            // The kernel deletes the pair too when the container's network namespace dies,
            // but later: deleting it now makes the host's links exact once the run is over.
            if let Some(id) = self.veth.take() {
                if let Err(e) = crate::network::bridge::detach(self.sys, &id) {
                    eprintln!("dockling: warning: {e}");
                }
            }
            for name in self.extra_veths.drain(..) {
                if let Err(e) = crate::network::bridge::delete(self.sys, &name) {
                    eprintln!("dockling: warning: {e}");
                }
            }
            if let Some(cg) = self.cgroup {
                if let Err(e) = cg.destroy(self.sys) {
                    eprintln!("dockling: warning: {e}");
                }
            }
        }
    }
}

/// Write the files the container gets bind-mounted into /etc.
/// `endpoint`: the container's place on a bridge network (Docker's hosts line for its name
/// at its address; on a user network also a line for each running container of it, see
/// [`crate::network::hosts`]), or none (the name on 127.0.1.1, as Debian's hosts file has it).
fn write_etc_files(
    sys: &Sys,
    spec: &RunSpec,
    endpoint: Option<&crate::network::Endpoint>,
) -> Result<()> {
    sys.step(StepId::RootfsEtcFiles)?;
    let write = |name: &str, text: String| -> Result<()> {
        Ok(sys.create_file(&spec.bundle.join(name), &text)?)
    };
    write("hostname", format!("{}\n", spec.hostname))?;
    let root = spec.store_root();
    let (peers, links) = if sys.is_dry_run() {
        (vec![], vec![])
    } else {
        let peers = if spec.network == crate::spec::NetworkMode::Bridge {
            crate::network::hosts::peers_all(root, spec, None)
        } else {
            vec![]
        };
        (peers, crate::network::hosts::link_peers(root, spec))
    };
    let gateway = endpoint
        .map(|e| e.gateway)
        .unwrap_or(crate::network::ipam::Subnet::DEFAULT.gateway());
    // `--network container:X` shares X's hosts file, as Docker's.
    let joined = spec
        .net
        .join_id()
        .filter(|_| !sys.is_dry_run())
        .and_then(|x| crate::network::hosts::read_of(sys, &root.join("containers").join(x)).ok());
    write(
        "hosts",
        joined.unwrap_or_else(|| {
            crate::network::hosts::text(spec, endpoint.map(|e| e.addr), gateway, &links, &peers)
        }),
    )?;
    // Like Docker: the host's resolver config, minus loopback servers that would not be
    // reachable from a network namespace of its own. A dry run reads nothing of the host.
    // `--dns`, `--dns-search`, `--dns-option` replace the host's lines of their kind.
    if sys.is_dry_run() && spec.net.dns.is_empty() {
        return write(
            "resolv.conf",
            "(the host's /etc/resolv.conf without loopback nameservers)\n".into(),
        );
    }
    let host = if sys.is_dry_run() {
        String::new()
    } else {
        std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default()
    };
    let own_netns = spec.namespaces.net || spec.net.join.is_some();
    let kind = |l: &str| l.split_whitespace().next().unwrap_or("").to_string();
    let net = &spec.net;
    let mut resolv: String = host
        .lines()
        .filter(|l| {
            !(own_netns
                && l.trim_start().starts_with("nameserver")
                && (l.contains(" 127.") || l.contains(" ::1")))
        })
        .filter(|l| match kind(l).as_str() {
            "nameserver" => net.dns.is_empty(),
            "search" | "domain" => net.dns_search.is_empty(),
            "options" => net.dns_options.is_empty(),
            _ => true,
        })
        .map(|l| format!("{l}\n"))
        .collect();
    if !net.dns_search.is_empty() {
        resolv.push_str(&format!("search {}\n", net.dns_search.join(" ")));
    }
    for d in &net.dns {
        resolv.push_str(&format!("nameserver {d}\n"));
    }
    if !net.dns_options.is_empty() {
        resolv.push_str(&format!("options {}\n", net.dns_options.join(" ")));
    }
    if resolv.trim().is_empty() {
        resolv = "# no nameservers: dockling copied the host's /etc/resolv.conf and it had none usable\n".into();
    }
    write("resolv.conf", resolv)
}

/// The engine-side steps that create the writable layer.
/// `started_before`: the container ran already (its record says when), so a copied root is
/// its own and is kept.
/// The container's overlay directories (upper 0755, work 0700, the mount point), made if
/// missing, and the overlay mount's data naming them. The caller sets the umask first (022,
/// see [`prepare_layers`]): `start` here, and `cp` into a stopped container that never ran.
pub fn overlay_dirs(sys: &Sys, spec: &RunSpec) -> Result<String> {
    sys.mkdir(&spec.upper(), 0o755)?;
    sys.mkdir(&spec.work(), 0o700)?;
    sys.mkdir(&spec.rootfs(), 0o755)?;
    crate::layers::overlay::mount_data(&spec.layers, &spec.upper(), &spec.work())
}

fn prepare_layers(sys: &Sys, spec: &RunSpec, started_before: bool) -> Result<String> {
    sys.step_variant(
        StepId::LayersPrepare,
        (spec.layers_mode == LayersMode::Copy).then_some("copy"),
    )?;
    // The container's directories and files get the modes asked for here, not what the
    // user's umask leaves of them: under `umask 077` the upper directory (the container's
    // `/`) would be 0700 and its /etc/hosts 0600, unreadable to any other user inside.
    // 022 is what Docker's daemon and runc use; the child inherits it.
    sys.run(Call::Umask { mask: 0o022 })?;
    match spec.layers_mode {
        LayersMode::Overlay | LayersMode::Erofs => {
            if spec.layers_mode == LayersMode::Erofs {
                // Mounted by `run` already, or still from an earlier start; after a reboot,
                // mounted here.
                let n = crate::layers::erofs::mount_layers(sys, &spec.layers)?;
                sys.tracer.note(&format!(
                    "{} layer(s) are EROFS images mounted from their tar ({n} mounted by this step): nothing unpacked",
                    spec.layers.len()
                ));
            }
            let data = overlay_dirs(sys, spec)?;
            sys.tracer.note(&format!(
                "{} read-only layer(s) below, {} on top for writes",
                spec.layers.len(),
                spec.upper().display()
            ));
            Ok(data)
        }
        LayersMode::Copy => {
            sys.mkdir(&spec.rootfs(), 0o755)?;
            // Started again (`start`, `--restart`): the copy is the container's own root,
            // with what it wrote; copying the image over it would undo that.
            if started_before {
                sys.tracer
                    .note("the copied root file system of the last run is kept");
            } else if !sys.is_dry_run() {
                let stats = crate::layers::copy::flatten(&spec.layers, &spec.rootfs())?;
                sys.tracer.note(&format!(
                    "copied {} files, {} bytes in {:.1} ms instead of mounting the layers",
                    stats.files,
                    stats.bytes,
                    stats.elapsed.as_secs_f64() * 1000.0
                ));
            }
            Ok(String::new())
        }
    }
}

/// How [`start`] runs a container, besides its spec.
#[derive(Default)]
pub struct StartOptions<'a> {
    /// The descriptor of the container's engine lock, which the container's process closes.
    pub engine_lock: Option<std::os::fd::RawFd>,
    /// Detached (`run -d`): the container's stdout and stderr go into its json-file log
    /// (with these options) instead of dockling's stdout, and its stdin is /dev/null.
    pub log: Option<crate::container::logs::LogOptions>,
    /// Called once the container runs (its `execve` succeeded and is recorded): the monitor
    /// tells the waiting `run -d` it can print the id.
    pub on_started: Option<Box<dyn FnOnce() + 'a>>,
    /// A foreground run's json-file log (Docker logs every container, so `logs` works after
    /// a foreground run too): the output goes to dockling's stdout and stderr and, as it
    /// passes, into the log.
    pub tee_log: Option<crate::container::logs::LogOptions>,
    /// The monitor's attach socket and clients (`dockling attach`), kept across restarts.
    pub hub: Option<&'a mut crate::container::attach::Hub>,
    /// `--sig-proxy=false` (or a terminal, where Docker never proxies): signals sent to
    /// dockling are not forwarded to the container.
    pub no_sig_proxy: bool,
    /// `--network bridge`: the container's lease (a dry run without one shows
    /// [`crate::network::Endpoint::example`]).
    pub network: Option<crate::network::Endpoint>,
    /// A build's RUN: SIGINT, SIGTERM and SIGHUP kill the container instead of being
    /// forwarded, and are stored here (see [`io::Sink::cancel`]).
    pub cancel: Option<&'a std::sync::atomic::AtomicI32>,
}

/// Start the container described by `spec` and wait for it (in the foreground, or as the
/// monitor of a detached container).
///
/// `containers` records its state; `cgroup` is `None` with `--no-cgroups`.
pub fn start(
    sys: &Sys,
    spec: &RunSpec,
    containers: &Containers,
    cgroup: Option<&crate::cgroups::Cgroup>,
    opts: StartOptions<'_>,
) -> Result<Outcome> {
    let dry = sys.is_dry_run();
    sys.tracer
        .set_var("root", spec.store_root().display().to_string());
    sys.tracer
        .set_var("bundle", spec.bundle.display().to_string());
    sys.tracer
        .set_var("rootfs", spec.rootfs().display().to_string());
    sys.tracer
        .set_var("engine_pid", std::process::id().to_string());

    sys.step(StepId::ImageResolve)?;
    if let Some(root) = spec.bundle.parent().and_then(Path::parent) {
        sys.tracer.abbreviate("ROOT", root);
    }
    sys.tracer.abbreviate("CONTAINER", &spec.bundle);
    sys.tracer.note(&format!(
        "{} is {} ({} layer(s))",
        spec.image_ref,
        &spec.image_id,
        spec.layers.len()
    ));

    // Every published host port bound before anything is created: a port another program
    // holds is the run's error now, with nothing to undo.
    let mut listeners = Vec::new();
    if spec.on_primary_network() && (!spec.ports.publish.is_empty() || spec.ports.publish_all) {
        let nat = spec.ports.mode == crate::spec::PublishMode::Nat;
        sys.step_variant(StepId::NetworkPorts, nat.then_some("reserve"))?;
        let bindings = crate::network::ports::bindings(&spec.ports)
            .map_err(|e| Error::Usage(e.to_string()))?;
        let mode = if nat {
            crate::network::ports::Mode::Reserve
        } else {
            crate::network::ports::Mode::Listen
        };
        listeners = crate::network::ports::bind_with(sys, &bindings, mode)?;
        for l in &listeners {
            let p = &l.published;
            sys.tracer.note(&format!(
                "host port {}/{} is held for the container's port {}",
                p.host, p.proto, p.container_port
            ));
        }
    }

    // Started again (`start`, `--restart`) when its record says it ran.
    let started_before = !dry
        && containers
            .find(&spec.id)
            .is_ok_and(|c| c.started_at.is_some());
    let endpoint = match (spec.network, opts.network) {
        // Disconnected from its own network: no eth0 (only the networks connected since).
        _ if !spec.on_primary_network() => None,
        (crate::spec::NetworkMode::Bridge, Some(e)) => Some(e),
        (crate::spec::NetworkMode::Bridge, None) if dry => {
            Some(crate::network::Endpoint::example())
        }
        // (Every command passes the lease; the network's stored subnet is the one used.)
        (crate::spec::NetworkMode::Bridge, None) => Some(crate::network::Endpoint::for_spec(
            spec.store_root(),
            crate::network::ipam::Subnet::DEFAULT,
            spec,
        )?),
        _ => None,
    };
    let overlay_data = prepare_layers(sys, spec, started_before)?;
    write_etc_files(sys, spec, endpoint.as_ref())?;

    let mut cleanup = Cleanup {
        sys,
        cgroup: None,
        veth: None,
        extra_veths: Vec::new(),
        ports: Publishing {
            listeners,
            ..Default::default()
        },
        armed: true,
    };
    let mut extra_mounts = Vec::new();
    if let (Some(cg), Some(limits)) = (cgroup, spec.cgroup.as_ref()) {
        sys.step(StepId::CgroupsCreate)?;
        cleanup.cgroup = Some(cg);
        cg.create(sys, limits, crate::cgroups::devices::rules(spec.privileged))?;
        if let Some(p) = cg.paths().first() {
            sys.tracer.set_var("cgroup", p.display().to_string());
        }
        extra_mounts = cg.container_mounts();
    }
    let network = match &endpoint {
        Some(e) => {
            sys.step(StepId::NetworkBridge)?;
            sys.tracer.note(&format!(
                "the container's address is {}/{} (leased in the store until it is removed)",
                e.addr, e.subnet.prefix
            ));
            let index =
                crate::network::bridge::ensure_bridge_at(sys, &e.bridge, e.gateway, e.subnet)?;
            Some((e, index))
        }
        None => None,
    };
    // A detached container's log is opened before anything starts: a log that cannot be
    // written is an error now, not output lost later. A foreground run's log (`tee_log`)
    // is only a copy: one that cannot be opened is a warning.
    let detached = opts.log.is_some();
    let mut log = match opts.log {
        Some(o) if !dry => Some(crate::container::logs::LogWriter::open(
            crate::container::logs::open_dir(&spec.bundle)?,
            &spec.id,
            o,
        )?),
        _ => None,
    };
    if let (None, Some(o), false) = (&log, opts.tee_log, dry) {
        match crate::container::logs::open_dir(&spec.bundle)
            .and_then(|dir| crate::container::logs::LogWriter::open(dir, &spec.id, o))
        {
            Ok(l) => log = Some(l),
            Err(e) => eprintln!("dockling: warning: no log for `dockling logs`: {e}"),
        }
    }
    sys.step(StepId::NamespacesClone)?;
    // Output pipes: a detached container's stdout and stderr each into one (the monitor
    // writes them to the log, each line marked with its stream); so a logged foreground
    // one's (copied to dockling's stdout and stderr and into the log; with `2>&1` both
    // into the stdout pipe, in their order); an unlogged foreground one's stdout when
    // dockling's is a pipe (see `io`). A terminal (`-t`) needs none.
    let merged = !detached && io::stderr_is_stdout();
    let (stdout_pipe, stderr_pipe) = if spec.tty {
        (None, None)
    } else if detached || (log.is_some() && !merged) {
        (Some(io::pipe(sys)?), Some(io::pipe(sys)?))
    } else if log.is_some() {
        (Some(io::pipe(sys)?), None)
    } else {
        (io::stdout_pipe(sys, spec.tty)?, None)
    };
    // A detached `-i` container without a terminal reads a pipe its monitor writes, with
    // what `attach` sends (open between attaches, as Docker's stdin).
    let stdin_pipe = if detached && spec.interactive && !spec.tty && !dry {
        Some(io::pipe(sys)?)
    } else {
        None
    };
    // `--network container:X`: X's network namespace, opened through its process now (the
    // child joins it; the engine closes its copy once the child is cloned).
    let join_netns = match spec.net.join_id() {
        Some(target) if !dry => {
            // A live process, not a pid the record names (it may be another's by now).
            let pid = match containers.find(target).map(|c| c.live_pid()) {
                Ok(Some(pid)) => pid,
                _ => {
                    return Err(Error::Usage(format!(
                        "cannot join network namespace of a non running container: {target}"
                    )))
                }
            };
            let fd = match sys.perform(Call::Open {
                path: format!("/proc/{pid}/ns/net").into(),
                flags: libc::O_RDONLY | libc::O_CLOEXEC,
                mode: 0,
            })? {
                Ret::Fd(fd) => fd,
                other => other.value() as i32,
            };
            Some((fd, pid))
        }
        _ => None,
    };
    let setup = child::Setup {
        join_netns,
        spec,
        overlay_data,
        extra_mounts,
        cgroup: cleanup.cgroup,
        cgroup_ns: spec.namespaces.cgroup && cleanup.cgroup.is_some(),
        stdout_relay: stdout_pipe.as_ref().map(|(_, w)| w.as_raw_fd()),
        stderr_relay: stdout_pipe.is_some() && stderr_pipe.is_none() && merged,
        stderr_pipe: stderr_pipe.as_ref().map(|(_, w)| w.as_raw_fd()),
        null_stdin: detached && stdin_pipe.is_none(),
        stdin_pipe: stdin_pipe.as_ref().map(|(r, _)| r.as_raw_fd()),
        engine_lock: opts.engine_lock,
    };
    let (parent_end, child_end) = channel::pair(sys)?;
    let old_mask = io::block_signals_for(sys, !opts.no_sig_proxy)?;
    let pid = match sys.clone_process(clone_flags(spec)) {
        Ok(p) => p,
        Err(e) => {
            io::restore_signals(sys, old_mask);
            return Err(e.into());
        }
    };
    if pid == 0 && !dry {
        drop(parent_end);
        child::main(sys, &setup, child_end);
    }
    drop(child_end);
    if let Some((fd, pid)) = join_netns {
        sys.run(Call::Close {
            fd,
            object: format!("/proc/{pid}/ns/net"),
        })?;
    }
    let mut hub = opts.hub;
    if let Some((r, w)) = stdin_pipe {
        // The read end is the container's alone, or it would never see the end of input.
        let _ = sys.run(Call::Close {
            fd: r.into_raw_fd(),
            object: "the container's end of the stdin pipe".into(),
        });
        if let Some(h) = hub.as_deref_mut() {
            h.set_stdin(w);
        }
    }
    let mut sources = Vec::new();
    for (pipe, stream) in [
        (stdout_pipe, crate::container::logs::Stream::Stdout),
        (stderr_pipe, crate::container::logs::Stream::Stderr),
    ] {
        let Some((r, w)) = pipe else { continue };
        // The container's end is the container's alone: while the engine held it too, the
        // pipe would never reach its end.
        let _ = sys.run(Call::Close {
            fd: w.into_raw_fd(),
            object: format!("the container's end of the {stream:?} pipe").to_lowercase(),
        });
        sources.push(io::Source::new(r, stream));
    }
    if dry {
        // What the child does first, in the order the real one does it.
        sys.tracer.set_process("container");
        child::first_acts(sys, None)?;
        sys.tracer.set_process("engine");
    }
    sys.tracer.set_var("pid", pid.to_string());

    let result = supervise(
        sys,
        &setup,
        &parent_end,
        pid,
        cleanup.cgroup,
        (network, &mut cleanup.veth, &mut cleanup.ports),
        containers,
        Outputs {
            sources,
            log: log.as_mut(),
            detached,
            on_started: opts.on_started,
            hub,
            proxy: !opts.no_sig_proxy,
            cancel: opts.cancel,
        },
    );
    if !dry && !cleanup.ports.listeners.is_empty() {
        // The run is over: no port is published any more.
        let _ = containers.update(&spec.id, |c| c.published.clear());
    }
    // Its name leaves the other containers of its user network, however the run ended (a
    // start that failed after its name was given out too).
    if spec.network == crate::spec::NetworkMode::Bridge && !dry {
        // The interfaces `network connect` added, also while it ran (the record has them):
        // deleted with the first, not whenever the kernel gets to the dead namespace.
        let extra = match containers.find(&spec.id) {
            Ok(c) => c.spec.net.extra,
            Err(_) => spec.net.extra.clone(),
        };
        cleanup.extra_veths = extra
            .iter()
            .map(|a| crate::network::bridge::extra_veth_name(&spec.id, a.index))
            .collect();
        for n in crate::network::hosts::user_networks(spec) {
            refresh_names(sys, spec, &n, None, Some(&spec.id));
        }
    }
    let outcome = match result {
        Ok(o) => o,
        Err(e) => {
            // Undoing is the cleanup step's work, whatever step failed.
            sys.tracer.step_without_pause(StepId::Cleanup);
            io::restore_signals(sys, old_mask);
            // Reap the child if it is still there (it exits right after reporting).
            if !dry {
                let _ = sys.run(Call::Kill {
                    pid,
                    signal: libc::SIGKILL,
                });
                let _ = sys.wait4(pid);
            }
            return Err(e);
        }
    };
    sys.step(StepId::Cleanup)?;
    io::restore_signals(sys, old_mask);
    drop(cleanup);
    Ok(outcome)
}

/// Read the child's messages until its end of the channel closes, which its successful
/// `execve` does: (the terminal master it sent, the program it executed). Its failure, with
/// Docker's code (127 not found, 126 cannot run), or its `--step` abort, is the error.
pub fn await_exec(
    chan: &channel::Channel,
    program: &str,
) -> Result<(Option<std::os::fd::OwnedFd>, String)> {
    let mut master = None;
    let mut program = program.to_string();
    loop {
        match chan
            .recv()
            .map_err(Error::io("receive", "container channel"))?
        {
            Message::Terminal(fd) => master = Some(fd),
            Message::Failed(code, text) => {
                crate::fault::engine_reads(&text);
                return Err(match code {
                    127 => Error::CommandNotFound(text),
                    126 => Error::CannotInvoke(text),
                    _ => RuntimeError::ContainerFailed { message: text }.into(),
                });
            }
            Message::Aborted(step) => {
                let id = crate::plan::StepId::ALL
                    .iter()
                    .find(|s| s.key() == step)
                    .map(|s| s.key())
                    .unwrap_or("?");
                return Err(Error::Aborted(crate::trace::Aborted(id)));
            }
            Message::Exec(path) => program = path,
            Message::Go(_) | Message::Hooks => {}
            Message::Closed => return Ok((master, program)),
        }
    }
}

/// Record the successful `execve` of `process` (the container's first process, or `exec`'s)
/// on its behalf: once it succeeded, the child's code is gone and cannot trace it.
pub fn record_exec(
    sys: &Sys,
    process: &'static str,
    spec: &RunSpec,
    program: String,
    took: std::time::Duration,
) {
    record_execve(
        sys,
        process,
        program,
        spec.args.clone(),
        spec.env.clone(),
        took,
    );
}

/// [`record_exec`] of a program and its arguments and environment as given (the OCI
/// runtime's `start` has a record, not a spec).
pub fn record_execve(
    sys: &Sys,
    process: &'static str,
    program: String,
    argv: Vec<String>,
    envp: Vec<String>,
    took: std::time::Duration,
) {
    // The child announced the exec step; the engine is in it too, waiting for the exec.
    sys.tracer.resume(StepId::ProcessExec);
    sys.tracer.set_process(process);
    sys.tracer.syscall(
        &Call::Execve {
            path: program.into(),
            argv,
            envp,
        },
        &Ok(Ret::Zero),
        took,
    );
    sys.tracer.set_process("engine");
}

/// Where the container's output goes and who hears that it started (see [`StartOptions`]).
struct Outputs<'a, 'b> {
    sources: Vec<io::Source>,
    log: Option<&'a mut crate::container::logs::LogWriter>,
    detached: bool,
    on_started: Option<Box<dyn FnOnce() + 'b>>,
    hub: Option<&'b mut crate::container::attach::Hub>,
    proxy: bool,
    cancel: Option<&'b std::sync::atomic::AtomicI32>,
}

/// Rewrite the hosts files of network `network`'s running containers (a failure is a
/// warning: the container runs, only a name is stale).
fn refresh_names(sys: &Sys, spec: &RunSpec, network: &str, with: Option<&str>, gone: Option<&str>) {
    let root = spec.store_root();
    if let Err(e) = crate::network::hosts::refresh_traced(sys, root, network, with, gone) {
        eprintln!("dockling: warning: names on network {network} not updated: {e}");
    }
}

/// The `network.veth` step: the container's network namespace opened through its process,
/// and the container plugged into the bridge with it (see [`crate::network::bridge::attach`]).
fn plug(
    sys: &Sys,
    spec: &RunSpec,
    e: &crate::network::Endpoint,
    bridge_index: u32,
    pid: i32,
) -> Result<()> {
    crate::network::bridge::with_netns_of(sys, pid, |netns| {
        crate::network::bridge::attach_via(
            sys,
            &e.bridge,
            bridge_index,
            &spec.id,
            netns,
            pid,
            (e.addr, e.subnet, e.mac),
            e.gateway,
        )
    })?;
    Ok(())
}

/// The `network.publish` step: the bound host ports led on to the container at `e`, by a
/// `dockling proxy` (spawned from this, the engine's or monitor's main thread: its
/// parent-death signal follows the thread) or by NAT rules in a table the engine owns.
/// `detached`: the proxy's log lines go nowhere (the `run -d` that waits for the monitor
/// reads the monitor's stderr until it closes: a proxy holding it would hold that run).
fn publish(
    sys: &Sys,
    spec: &RunSpec,
    e: &crate::network::Endpoint,
    ports: &mut Publishing,
    detached: bool,
) -> Result<()> {
    use crate::network::{bridge, netlink::Netlink, nft, proxy};
    let nat = spec.ports.mode == crate::spec::PublishMode::Nat;
    sys.step_variant(StepId::NetworkPublish, nat.then_some("nat"))?;
    if !nat {
        let opts = proxy::ProxyOptions {
            stderr: if detached {
                proxy::ProxyLog::Null
            } else {
                proxy::ProxyLog::Inherit
            },
            ..Default::default()
        };
        let child = proxy::spawn_with(sys, &ports.listeners, e.addr, opts)?;
        if !sys.is_dry_run() {
            sys.tracer.note(&format!(
                "dockling proxy (pid {}) accepts on the published ports and copies to {}",
                child.pid(),
                e.addr
            ));
        }
        ports.proxy = Some(child);
        return Ok(());
    }
    sys.tracer.set_var("table", nft::table_name(&spec.id));
    nft::ensure_bridge_table(sys, &e.bridge, e.subnet, spec.ports.outbound_nat)?;
    let host = bridge::veth_name(&spec.id);
    let nl = Netlink::open(sys)?;
    let index = nl.link_index(&host)?;
    nl.set_hairpin(&host, index)?;
    nl.close()?;
    let rules: Vec<nft::PortRule> = ports
        .listeners
        .iter()
        .map(|l| {
            let p = &l.published;
            nft::PortRule {
                proto: match p.proto {
                    crate::sys::Transport::Tcp => nft::L4::Tcp,
                    crate::sys::Transport::Udp => nft::L4::Udp,
                },
                host_ip: (!p.host.ip().is_unspecified()).then_some(*p.host.ip()),
                host_port: p.host.port(),
                container_ip: e.addr,
                container_port: p.container_port,
            }
        })
        .collect();
    ports.table = Some(nft::publish(sys, &spec.id, &rules)?);
    crate::network::ports::hold(sys, &mut ports.listeners)?;
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn supervise(
    sys: &Sys,
    setup: &child::Setup<'_>,
    chan: &channel::Channel,
    pid: i32,
    cgroup: Option<&crate::cgroups::Cgroup>,
    (network, veth, ports): (
        Option<(&crate::network::Endpoint, u32)>,
        &mut Option<String>,
        &mut Publishing,
    ),
    containers: &Containers,
    out: Outputs<'_, '_>,
) -> Result<Outcome> {
    let Outputs {
        sources,
        log,
        detached,
        on_started,
        hub,
        proxy,
        cancel,
    } = out;
    let spec = setup.spec;
    // (The child joins its cgroup itself, after the go-ahead: see `child::prepare`.)
    if let Some((e, index)) = network {
        sys.step(StepId::NetworkVeth)?;
        plug(sys, spec, e, index, pid)?;
        *veth = Some(spec.id.clone());
    }
    if spec.network == crate::spec::NetworkMode::Bridge {
        // The networks `network connect` added, plugged again (eth1…), also when the
        // container was disconnected from its first network.
        if !sys.is_dry_run() {
            let root = spec.store_root();
            for att in &spec.net.extra {
                crate::network::connect::plug_extra(
                    sys,
                    root,
                    crate::network::ipam::Subnet::DEFAULT,
                    spec,
                    att,
                    pid,
                )?;
            }
        }
        // The other containers of its user networks learn its name (design §5).
        if !sys.is_dry_run() {
            for n in crate::network::hosts::user_networks(spec) {
                refresh_names(sys, spec, &n, Some(&spec.id), None);
            }
        }
    }
    if let Some((e, _)) = network {
        if !ports.listeners.is_empty() {
            publish(sys, spec, e, ports, detached)?;
            if !sys.is_dry_run() {
                let bound: Vec<String> = ports
                    .listeners
                    .iter()
                    .map(|l| l.published.to_string())
                    .collect();
                containers.update(&spec.id, |c| c.published = bound)?;
            }
        }
    }
    if sys.is_dry_run() {
        sys.tracer.set_process("container");
        let prepared = child::prepare(sys, setup, None);
        sys.tracer.set_process("engine");
        prepared?;
        record_exec(
            sys,
            "container",
            spec,
            spec.args[0].clone(),
            std::time::Duration::ZERO,
        );
        sys.step(StepId::ProcessWait)?;
        sys.wait4(pid)?;
        return Ok(Outcome {
            exit_code: 0,
            oom_killed: false,
            broken_pipe: false,
        });
    }
    let start = std::time::Instant::now();
    // The child writes its own events from here on: ours must be out first, to keep order.
    sys.tracer.flush();
    chan.send(&Message::Go(pid))
        .map_err(Error::io("send", "container channel"))?;
    let (master, program) = await_exec(chan, &spec.args[0])?;
    // The child's end closed without an error: execve succeeded.
    if sys.tracer.enabled() {
        record_exec(sys, "container", spec, program, start.elapsed());
    }
    sys.tracer.flush();
    let started_at = crate::container::now_rfc3339();
    containers.update(&spec.id, |c| {
        c.status = Status::Running {
            pid,
            pid_start: crate::container::process_start_time(pid).unwrap_or(0),
        };
        c.started_at = Some(started_at);
    })?;
    if let Some(started) = on_started {
        started();
    }

    sys.step(StepId::ProcessWait)?;
    let sink = io::Sink {
        stdout: !detached,
        log,
        hub,
        cancel,
    };
    let relayed = io::relay(sys, pid, master, spec.interactive, proxy, sources, sink)?;
    let exit_code = io::exit_code(relayed.status);
    let oom_killed =
        exit_code == 128 + libc::SIGKILL && cgroup.is_some_and(|cg| cg.oom_killed(sys));
    Ok(Outcome {
        exit_code,
        oom_killed,
        broken_pipe: relayed.broken_pipe,
    })
}

#[cfg(test)]
pub(crate) mod tests {
    //! The syscall script of a container start, recorded against the double: the recipe a
    //! learner can read, and a guard against changing it by accident.

    use super::*;
    use crate::spec::{Namespaces, NetworkMode, RootfsMode, User, Volume};
    use crate::sys::record::Recorder;
    use crate::trace::{Format, Tracer};

    /// A container as `dockling run` makes it (also read back by `specconv::oci`'s tests).
    pub(crate) fn spec() -> RunSpec {
        RunSpec {
            id: "0123456789ab".repeat(5) + "cdef",
            name: "web".into(),
            image_ref: "busybox".into(),
            image_id: "sha256:".to_string() + &"ab".repeat(32),
            layers: vec![
                "/var/lib/dockling/layers/sha256/l1".into(),
                "/var/lib/dockling/layers/sha256/l2".into(),
            ],
            args: vec!["sh".into(), "-c".into(), "echo hello".into()],
            env: vec!["PATH=/bin".into()],
            cwd: "/".into(),
            user: User {
                uid: 0,
                gid: 0,
                additional_gids: vec![],
            },
            hostname: "box".into(),
            tty: false,
            interactive: false,
            remove: true,
            namespaces: Namespaces {
                pid: true,
                uts: true,
                ipc: true,
                net: true,
                cgroup: true,
            },
            network: NetworkMode::None,
            net: Default::default(),
            layers_mode: LayersMode::Overlay,
            rootfs_mode: RootfsMode::PivotRoot,
            // Cgroups on, as by default (the group itself is not part of these scripts: no
            // `Cgroup` is passed to `start`).
            cgroup: Some(Default::default()),
            privileged: false,
            // Docker's 14 by name, not caps::resolve: that keeps only what the process running
            // the test holds, which would make the recorded script depend on who runs it.
            capabilities: caps::DOCKER_DEFAULT
                .iter()
                .map(|n| caps::number(n).unwrap())
                .collect(),
            // A fixed kernel version: the script must not depend on the machine's kernel.
            seccomp: Some(seccomp::default_policy(
                &caps::DOCKER_DEFAULT
                    .iter()
                    .map(|n| caps::number(n).unwrap())
                    .collect::<Vec<_>>(),
                (6, 1),
            )),
            no_new_privileges: false,
            volumes: vec![],
            read_only: false,
            restart: Default::default(),
            log_opts: vec![],
            init: false,
            ports: Default::default(),
            bundle: "/var/lib/dockling/containers/c1".into(),
        }
    }

    fn script(spec: &RunSpec) -> String {
        let root = tempfile::tempdir().unwrap();
        let containers = Containers::open(root.path()).unwrap();
        let rec = Recorder::new();
        let sys = Sys::new(Box::new(rec.clone()), Tracer::capture(Format::Pretty));
        start(&sys, spec, &containers, None, StartOptions::default()).unwrap();
        rec.script()
    }

    #[test]
    fn default_run_script() {
        insta::assert_snapshot!(script(&spec()));
    }

    #[test]
    fn containers_stored_with_the_old_seccomp_flag_still_load() {
        let mut v = serde_json::to_value(spec()).unwrap();
        v["seccomp"] = serde_json::json!(true);
        let on: RunSpec = serde_json::from_value(v.clone()).unwrap();
        assert!(on
            .seccomp
            .is_some_and(|p| p.syscalls().as_ref().is_some_and(|s| !s.is_empty())));
        v["seccomp"] = serde_json::json!(false);
        let off: RunSpec = serde_json::from_value(v.clone()).unwrap();
        assert!(off.seccomp.is_none());
        let stored = serde_json::to_value(spec()).unwrap();
        let back: RunSpec = serde_json::from_value(stored).unwrap();
        assert_eq!(
            back.seccomp,
            spec().seccomp,
            "a stored policy reads back as it was"
        );
    }

    #[test]
    fn the_container_process_moves_itself_into_its_cgroup_through_tasks() {
        // Moved from inside by writing 0 into v1's `tasks`: the kernel then takes no global
        // lock (whose first writer waited 10–15 ms for an RCU grace period); the engine
        // writes no pid into any `cgroup.procs`.
        let root = tempfile::tempdir().unwrap();
        let containers = Containers::open(root.path()).unwrap();
        let rec = Recorder::new();
        let sys = Sys::new(Box::new(rec.clone()), Tracer::capture(Format::Json));
        let h = |name: &str| crate::cgroups::Hierarchy {
            mount_point: format!("/sys/fs/cgroup/{name}").into(),
            options: name.into(),
        };
        let cg = crate::cgroups::Cgroup::with_layout(
            crate::cgroups::Version::V1,
            vec![h("memory"), h("devices")],
            "dockling",
            "c1",
        );
        start(
            &sys,
            &spec(),
            &containers,
            Some(&cg),
            StartOptions::default(),
        )
        .unwrap();
        let script = rec.script();
        assert!(!script.contains("cgroup.procs"), "{script}");
        let events: Vec<serde_json::Value> = sys
            .tracer
            .captured()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let joins: Vec<&serde_json::Value> = events
            .iter()
            .filter(|e| e["step"] == "cgroups.join" && e["syscall"] == "openat")
            .collect();
        assert_eq!(joins.len(), 2, "{script}");
        for (e, name) in joins.iter().zip(["memory", "devices"]) {
            assert_eq!(e["process"], "container", "{e}");
            assert_eq!(
                e["args"],
                format!(
                    "AT_FDCWD, \"/sys/fs/cgroup/{name}/dockling/c1/tasks\", O_WRONLY|O_CLOEXEC"
                )
            );
        }
        let writes = events
            .iter()
            .filter(|e| e["step"] == "cgroups.join" && e["syscall"] == "write");
        for w in writes {
            assert_eq!(w["args"], "100, \"0\", 1", "{w}");
            assert!(w["explain"].as_str().unwrap().contains("writing 0"), "{w}");
        }
        // After the engine's network steps, before the cgroup namespace.
        let steps: Vec<&str> = events
            .iter()
            .filter(|e| e["type"] == "step")
            .map(|e| e["step"].as_str().unwrap())
            .collect();
        let at = |k: &str| steps.iter().position(|s| *s == k).unwrap();
        assert!(at("namespaces.clone") < at("cgroups.join"), "{steps:?}");
        assert!(at("cgroups.join") < at("namespaces.cgroup"), "{steps:?}");
    }

    #[test]
    fn pid_host_leaves_out_clone_newpid() {
        let mut s = spec();
        s.namespaces.pid = false;
        let out = script(&s);
        assert!(out.starts_with("umask(022)"), "{out}");
        let clone = out.lines().find(|l| l.starts_with("clone(")).unwrap();
        assert!(!clone.contains("CLONE_NEWPID"), "{clone}");
        assert!(script(&spec())
            .lines()
            .any(|l| l.starts_with("clone(") && l.contains("CLONE_NEWPID")));
    }

    #[test]
    fn chroot_replaces_pivot_root() {
        let mut s = spec();
        s.rootfs_mode = RootfsMode::Chroot;
        let out = script(&s);
        assert!(out.contains("chroot(\".\")"));
        assert!(!out.contains("pivot_root("));
    }

    #[test]
    fn tty_user_and_volumes_script() {
        let mut s = spec();
        s.tty = true;
        s.user = User {
            uid: 1000,
            gid: 1000,
            additional_gids: vec![10],
        };
        s.volumes = vec![Volume::bind("/srv".into(), "/data".into(), true)];
        s.namespaces.net = false;
        s.network = NetworkMode::Host;
        s.privileged = true;
        let out = script(&s);
        let tail: String = out
            .lines()
            .skip_while(|l| !l.contains("\"/srv\""))
            .map(|l| format!("{l}\n"))
            .collect();
        insta::assert_snapshot!(tail
            .lines()
            .filter(|l| !l.starts_with("prctl(PR_CAPBSET_DROP"))
            .collect::<Vec<_>>()
            .join("\n"));
        assert!(
            !out.contains("SIOCSIFFLAGS"),
            "no loopback step with --network host"
        );
        assert!(
            !out.contains("rootfs/proc/kcore"),
            "--privileged masks nothing"
        );
    }

    #[test]
    fn a_failed_mount_stops_the_start_with_the_call_named() {
        let root = tempfile::tempdir().unwrap();
        let containers = Containers::open(root.path()).unwrap();
        let rec = Recorder::new();
        rec.fail_next("pivot_root", nix::errno::Errno::EINVAL);
        let sys = Sys::new(Box::new(rec.clone()), Tracer::off());
        let err = start(&sys, &spec(), &containers, None, StartOptions::default())
            .unwrap_err()
            .to_string();
        assert_eq!(err, "pivot_root .: EINVAL: Invalid argument");
        assert!(
            !rec.script().contains("execve"),
            "nothing runs after the failure"
        );
    }
}
