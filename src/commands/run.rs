//! `dockling run`: resolve the image, build the spec, start the container, report its exit.

use crate::cli::RunArgs;
use crate::commands::{require_root, Context};
use crate::container::{self, Container, Containers, Status};
use crate::error::{Error, Result};
use crate::image::store::Store;
use crate::runtime::StartOptions;
use crate::spec::RunSpec;
use crate::specconv::{self, ImageInput, Request};
use crate::sys::{linux::Linux, Sys};
use crate::trace::Tracer;

/// The flags `specconv` reads, as its own plain type: the engine does not know the CLI.
impl From<&RunArgs> for Request {
    fn from(a: &RunArgs) -> Request {
        Request {
            rm: a.rm,
            interactive: a.interactive,
            detach: a.detach,
            tty: a.tty,
            env: a.env.clone(),
            env_file: a.env_file.clone(),
            workdir: a.workdir.clone(),
            user: a.user.clone(),
            hostname: a.hostname.clone(),
            volume: a.volume.clone(),
            mount: a.mount.clone(),
            tmpfs: a.tmpfs.clone(),
            entrypoint: a.entrypoint.clone(),
            pid: a.pid.clone(),
            uts: a.uts.clone(),
            ipc: a.ipc.clone(),
            network: a.network.clone(),
            net: specconv::NetRequest {
                ip: a.net.ip.clone(),
                aliases: a.net.network_alias.clone(),
                add_hosts: a.net.add_host.clone(),
                dns: a.net.dns.clone(),
                dns_search: a.net.dns_search.clone(),
                dns_options: a.net.dns_option.clone(),
                links: vec![],
                join: None,
                mac: a.net.mac_address.clone(),
            },
            publish: a.publish.clone(),
            publish_all: a.publish_all,
            expose: a.expose.clone(),
            publish_mode: a.publish_mode,
            cgroupns: a.cgroupns.clone(),
            privileged: a.privileged,
            cap_add: a.cap_add.clone(),
            cap_drop: a.cap_drop.clone(),
            security_opt: a.security_opt.clone(),
            read_only: a.read_only,
            restart: a.restart,
            log_opts: a.log_opts.clone(),
            init: a.init,
            memory: a.memory.clone(),
            cpus: a.cpus.clone(),
            pids_limit: a.pids_limit,
            layers: a.layers,
            rootfs: a.rootfs,
            no_cgroups: a.no_cgroups,
            command: a.command.clone(),
        }
    }
}

/// `--link NAME[:ALIAS]` resolved as Docker does at create: the target must exist and run.
fn with_links(
    containers: &Containers,
    mut request: Request,
    links: &[String],
    name: &str,
    dry_run: bool,
) -> Result<Request> {
    for l in links {
        let (target, alias) = l.split_once(':').unwrap_or((l, l));
        let target = target.trim_start_matches('/');
        let alias = alias.trim_start_matches('/');
        if dry_run {
            request
                .net
                .links
                .push((String::new(), target.into(), alias.into()));
            continue;
        }
        let c = containers.find(target).map_err(|_| {
            Error::Usage(format!(
                "could not get container for {target}: No such container: {target}"
            ))
        })?;
        // (`reap` ran first; is_alive also catches a reused pid.)
        if !c.is_alive() {
            return Err(Error::Usage(format!(
                "Cannot link to a non running container: /{} AS /{name}/{alias}",
                c.spec.name
            )));
        }
        request
            .net
            .links
            .push((c.spec.id.clone(), c.spec.name.clone(), alias.into()));
    }
    // `--network container:X`: X must exist and run (Docker's texts).
    if let Some(target) = request
        .network
        .clone()
        .as_deref()
        .and_then(|n| n.strip_prefix("container:"))
    {
        if dry_run {
            request.net.join = Some((target.to_string(), target.to_string()));
            return Ok(request);
        }
        let c = containers
            .find(target)
            .map_err(|_| Error::Usage(format!("No such container: {target}")))?;
        if !c.is_alive() {
            return Err(Error::Usage(format!(
                "cannot join network namespace of a non running container: {}",
                c.spec.id
            )));
        }
        request.net.join = Some((c.spec.id.clone(), c.spec.hostname.clone()));
    }
    Ok(request)
}

/// Docker's rule for names: `[a-zA-Z0-9][a-zA-Z0-9_.-]+`.
pub fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphanumeric())
        && name.len() >= 2
        && chars.all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
}

/// The image to run, pulled first as `--pull` says (progress on stderr, as Docker does).
fn find_or_pull(
    ctx: &Context,
    store: &Store,
    args: &RunArgs,
    dry_run: bool,
) -> Result<crate::image::store::Image> {
    use crate::cli::PullPolicy;
    let found = store.find(&args.image);
    let pull = |say_missing: bool| -> Result<crate::image::store::Image> {
        let reference = crate::image::reference::Reference::parse(&args.image)?;
        crate::registry::trace::enable(args.trace);
        if say_missing {
            eprintln!(
                "Unable to find image '{}' locally",
                reference.familiar_tagged()
            );
        }
        crate::registry::pull::pull(
            store,
            &reference,
            &ctx.config,
            &mut std::io::stderr(),
            false,
        )
    };
    match (args.pull, found) {
        (PullPolicy::Always, _) if !dry_run => pull(false),
        (_, Ok(image)) => Ok(image),
        (PullPolicy::Missing, Err(Error::NotFound(_)))
            if !dry_run && crate::image::reference::Reference::parse(&args.image).is_ok() =>
        {
            pull(true)
        }
        (_, Err(e)) => Err(e),
    }
}

/// Create the container's record and directory and build its spec (under the name lock).
pub fn create(
    ctx: &Context,
    args: &RunArgs,
    containers: &Containers,
    dry_run: bool,
) -> Result<RunSpec> {
    create_kept(ctx, &Sys::quiet(), args, containers, dry_run).map(|(spec, _)| spec)
}

/// [`create`], also giving the container's engine lock (none in a dry run): whoever holds it
/// keeps the container, and no other command removes a container that is kept.
pub fn create_kept(
    ctx: &Context,
    sys: &Sys,
    args: &RunArgs,
    containers: &Containers,
    dry_run: bool,
) -> Result<(RunSpec, Option<container::EngineLock>)> {
    // Flags first: a bad one must not pull, create or lock anything.
    let mut request = Request::from(args);
    specconv::check_flags(&request)?;
    // `--layers erofs` on a kernel that cannot mount it: unpacked layers instead, said once.
    let layers_mode = crate::layers::erofs::effective(
        sys,
        request.layers.or(ctx.config.layers).unwrap_or_default(),
        &ctx.root,
        !dry_run,
    );
    request.layers = Some(layers_mode);
    let erofs = layers_mode == crate::spec::LayersMode::Erofs;
    if !dry_run {
        // Containers of killed engines are noticed (and their cgroups killed) before a name
        // is checked: a dead `--rm` container must not hold its name.
        crate::commands::rm::reap(ctx, containers);
    }
    let limits = ctx.config.layer_limits()?;
    let store = if dry_run {
        // `explain` creates no store and unpacks nothing: an image not here is not found.
        Store::open_existing(&ctx.root)?.ok_or_else(|| {
            Error::NotFound(format!(
                "unable to find image '{}' locally: pull it first (`dockling pull {}`); explain downloads nothing",
                args.image, args.image
            ))
        })?
    } else {
        Store::open(&ctx.root)?
    }
    .with_limits(limits)
    .with_erofs(erofs);
    let image = find_or_pull(ctx, &store, args, dry_run)?;
    // A dry run only says where the layers are; a run unpacks any missing (the spec reads
    // the image's /etc/passwd from them). An `rmi` may still delete them before the record
    // below holds the image: that is checked under the store lock.
    let layers = if dry_run && erofs {
        image
            .diff_ids
            .iter()
            .map(|d| store.erofs_root(d))
            .collect::<Result<Vec<_>>>()?
    } else if dry_run {
        store.layer_paths(&image)?
    } else {
        let dirs = store.layer_dirs(&image)?;
        // Mounted now, before the start's steps: the image's /etc/passwd and /etc/group are
        // read from them to build the spec.
        if erofs && dirs.iter().any(|d| !crate::layers::erofs::is_mounted(d)) {
            sys.tracer.note(&format!(
                "--layers erofs: the image's {} layer(s) are mounted first, before the steps below: its /etc/passwd and /etc/group are read from them",
                dirs.len()
            ));
            crate::layers::erofs::mount_layers(sys, &dirs)?;
        }
        dirs
    };
    let id = container::new_id();
    let _lock = containers.lock()?;
    let name = match &args.name {
        Some(n) => {
            let n = n.trim_start_matches('/');
            if !valid_name(n) {
                return Err(Error::Usage(format!(
                    "invalid container name {n:?}: only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
                )));
            }
            if let Some(other) = containers.name_taken(n)? {
                return Err(container::ContainerError::NameInUse {
                    name: n.to_string(),
                    other,
                }
                .into());
            }
            n.to_string()
        }
        None => (0..100)
            .map(|i| container::names::generate(&id, i))
            .find(|n| containers.name_taken(n).ok().flatten().is_none())
            .unwrap_or_else(|| id[..12].to_string()),
    };
    let bundle = containers.bundle(&id);
    let input = ImageInput {
        reference: args.image.clone(),
        id: image.id.clone(),
        config: image.config.config().as_ref(),
        layers,
    };
    let request = with_links(containers, request, &args.net.link, &name, dry_run)?;
    let mut spec = specconv::build(&ctx.config, &request, input, &id, &name, &bundle)?;
    if dry_run {
        crate::commands::volume::preview(ctx, &mut spec);
        return Ok((spec, None));
    }
    // Its volumes exist (and `volume rm` waits) from here until the record names them.
    let attached = crate::commands::volume::attach(ctx, &mut spec)?;
    let saved = {
        // Under the store lock, as `rmi` and `prune` look for the containers using an image:
        // either they saw this record (and keep the image), or the image was gone before it
        // was written (and this run says so, instead of mounting nothing).
        let _held = store.lock()?;
        if !store.contains(&image)? {
            return Err(Error::NotFound(format!(
                "image {} was removed while the container was being created: pull or import it again",
                args.image
            )));
        }
        std::fs::create_dir_all(&bundle).map_err(Error::io("create", &bundle))?;
        // The lock before the record: from the moment `ps` can see the container, it is kept.
        containers.engine_lock(&id).and_then(|kept| {
            containers.save(&Container {
                spec: spec.clone(),
                created: container::now_rfc3339(),
                status: Status::Created,
                restart_count: 0,
                started_at: None,
                restarting: false,
                published: vec![],
            })?;
            Ok(kept)
        })
    };
    let saved = saved.and_then(|kept| {
        crate::fault::point("run.recorded");
        // The same container as an OCI bundle, for inspection and for runc/crun; not for one
        // removed when it ends (`--rm`), which nobody starts again (see `runtime::bundle`).
        if !spec.remove {
            crate::runtime::bundle::write(&spec, &format!("/dockling-oci/{}", spec.id))?;
        }
        // The address is the container's from its creation (Docker shows it once it runs),
        // leased after the record exists: the lease's reclaim can then never take it from
        // a container being created (see `network::store::lease`).
        if spec.network == crate::spec::NetworkMode::Bridge {
            crate::network::Endpoint::for_spec(&ctx.root, ctx.config.default_subnet()?, &spec)?;
        }
        Ok(kept)
    });
    match saved {
        Ok(kept) => {
            if let Some(a) = attached {
                a.done();
            }
            Ok((spec, Some(kept)))
        }
        Err(e) => {
            let _ = containers.remove_dir(&id);
            if let Some(a) = attached {
                a.undo();
            }
            Err(e)
        }
    }
}

/// The cgroup a container gets, unless `--no-cgroups`.
pub fn cgroup_for(ctx: &Context, spec: &RunSpec) -> Result<Option<crate::cgroups::Cgroup>> {
    match spec.cgroup {
        None => Ok(None),
        Some(_) => {
            let parent = ctx
                .config
                .cgroup_parent
                .clone()
                .unwrap_or_else(|| "dockling".into());
            Ok(Some(crate::cgroups::Cgroup::new(&parent, &spec.id)?))
        }
    }
}

/// `dockling run`.
pub fn run(ctx: &Context, args: &RunArgs) -> Result<i32> {
    require_root("run")?;
    // The tracer exists before the re-exec, so its calls are in the trace too.
    crate::trace::Tracer::check_spaced(args.trace, &args.image, "image")?;
    let sys = Sys::new(
        Box::new(Linux),
        Tracer::for_command(
            args.trace
                .or(ctx.config.trace.filter(|_| args.trace.is_some())),
            args.trace_file.as_deref(),
            !crate::runtime::exe::is_reexecuted(),
            args.step,
        )?,
    );
    match crate::runtime::exe::enter_sealed(&sys, crate::runtime::exe::Unsealed::Warn) {
        Err(Error::Aborted(a)) => {
            eprintln!("dockling: {a}: nothing was done yet");
            return Ok(130);
        }
        other => other?,
    }
    let log_opts = crate::container::logs::LogOptions::parse(&args.log_opts)?;
    if args.restart != crate::spec::RestartPolicy::No {
        if args.rm {
            return Err(Error::Usage(
                "conflicting options: --restart and --rm (a container removed when it ends cannot be restarted)".into(),
            ));
        }
        if !args.detach {
            return Err(Error::Usage(
                "--restart needs -d: the monitor of a detached container is what restarts it"
                    .into(),
            ));
        }
    }
    let containers = Containers::open(&ctx.root)?;
    // Held until the end is recorded (or the container removed): see `container`.
    let (spec, kept) = create_kept(ctx, &sys, args, &containers, false)?;
    // Missing `-v` host directories are made now, at the start, and taken back if it fails.
    let made = match specconv::create_volume_sources(&spec.volumes) {
        Ok(made) => made,
        Err(e) => {
            let _ = containers.remove_dir(&spec.id);
            crate::commands::volume::remove_anonymous(&ctx.root, &spec);
            return Err(e);
        }
    };
    if args.detach {
        let id = spec.id.clone();
        let code = detach(ctx, &sys, spec, &containers, kept, made, log_opts)?;
        if code == 0 {
            println!("{id}");
        }
        return Ok(code);
    }
    let opts = StartOptions {
        engine_lock: kept.as_ref().map(container::EngineLock::raw_fd),
        // Docker proxies no signal with a terminal: Ctrl-C is a key for the container's
        // terminal, and a signal for dockling ends dockling (and the container with it).
        no_sig_proxy: !args.sig_proxy || spec.tty,
        // Docker logs a foreground container too (`docker logs` after `docker run`); not
        // one removed at its end.
        tee_log: (!spec.remove).then_some(log_opts),
        ..Default::default()
    };
    start_and_record(ctx, &sys, &spec, &containers, &made, opts)
}

/// Start the container (its record exists), wait for it and record how it ended (or remove
/// it, with `--rm`): the foreground run's work, and a detached container's monitor's.
pub fn start_and_record(
    ctx: &Context,
    sys: &Sys,
    spec: &RunSpec,
    containers: &Containers,
    made: &[std::path::PathBuf],
    opts: StartOptions<'_>,
) -> Result<i32> {
    let mut opts = opts;
    let result = (|| {
        // The same address at every start: the lease the container holds (taken again if a
        // failed start gave it back); none once it was disconnected from that network.
        if spec.on_primary_network() {
            opts.network = Some(crate::network::Endpoint::for_spec(
                &ctx.root,
                ctx.config.default_subnet()?,
                spec,
            )?);
        }
        let cg = cgroup_for(ctx, spec)?;
        crate::runtime::start(sys, spec, containers, cg.as_ref(), opts)
    })();
    if result.is_err() {
        specconv::remove_volume_sources(made);
    }
    match result {
        Ok(outcome) => {
            if outcome.oom_killed {
                let limit = spec
                    .cgroup
                    .and_then(|l| l.memory)
                    .map(|m| format!(" (limit {} MiB)", m / (1 << 20)))
                    .unwrap_or_default();
                eprintln!(
                    "dockling: container {} was killed by the kernel: out of memory{limit}",
                    spec.name
                );
            }
            if spec.remove {
                containers.remove_dir(&spec.id)?;
                // Docker's `run --rm` takes its anonymous volumes with it.
                crate::commands::volume::remove_anonymous(&ctx.root, spec);
            } else {
                let ended = containers.update(&spec.id, |c| {
                    c.status = Status::Exited {
                        code: outcome.exit_code,
                        finished: container::now_rfc3339(),
                        oom_killed: outcome.oom_killed,
                    };
                });
                match ended {
                    // (Gone already when `rm -f` from another terminal killed and removed it.)
                    Ok(_) | Err(Error::NotFound(_)) => {}
                    Err(e) => return Err(e),
                }
            }
            Ok(if outcome.broken_pipe {
                128 + libc::SIGPIPE
            } else {
                outcome.exit_code
            })
        }
        Err(Error::Aborted(a)) => {
            containers.remove_dir(&spec.id)?;
            crate::commands::volume::remove_anonymous(&ctx.root, spec);
            eprintln!("dockling: {a}: everything done so far was undone");
            Ok(130)
        }
        Err(e) => {
            if spec.remove {
                let _ = containers.remove_dir(&spec.id);
                crate::commands::volume::remove_anonymous(&ctx.root, spec);
            } else {
                // Docker keeps a container that failed to start, with the failure's code; a
                // record left at "created" would look like the work of a killed engine.
                let _ = containers.update(&spec.id, |c| {
                    c.status = Status::Exited {
                        code: e.exit_code(),
                        finished: container::now_rfc3339(),
                        oom_killed: false,
                    };
                });
                // Nor does it keep an address for it on its first network: a later `start`
                // leases one again. The networks `network connect` added keep theirs (an
                // `--ip` given there stays reserved, as from connect to rm).
                if spec.network == crate::spec::NetworkMode::Bridge && spec.on_primary_network() {
                    let dir = crate::network::store::dir(&ctx.root, spec.network_name());
                    if let Err(e) = crate::network::ipam::release(&dir, &spec.id) {
                        eprintln!("dockling: warning: {e}");
                    }
                }
            }
            Err(e)
        }
    }
}

/// Wait `delay` before a restart, watching for a stop: false when the container was stopped
/// (or removed) meanwhile.
fn back_off(containers: &Containers, id: &str, delay: std::time::Duration) -> bool {
    let until = std::time::Instant::now() + delay;
    while std::time::Instant::now() < until {
        if containers.stop_requested(id) || containers.find(id).is_err() {
            return false;
        }
        std::thread::sleep(std::time::Duration::from_millis(20).min(delay));
    }
    !containers.stop_requested(id)
}

/// The monitor's attach socket, `attach` in the container's directory (see
/// `container::attach`): a stale one of an earlier monitor is removed first.
fn listen(sys: &Sys, bundle: &std::path::Path) -> Result<crate::container::attach::Hub> {
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    let dir = crate::container::logs::open_dir(bundle)?;
    let _ = nix::unistd::unlinkat(
        Some(dir.as_raw_fd()),
        crate::container::attach::SOCKET,
        nix::unistd::UnlinkatFlags::NoRemoveDir,
    );
    match sys.perform(crate::sys::Call::BindUnix {
        dir: dir.as_raw_fd(),
        name: crate::container::attach::SOCKET.into(),
    })? {
        // SAFETY: the seam just created this descriptor and hands it over.
        crate::sys::Ret::Fd(fd) => Ok(crate::container::attach::Hub::new(unsafe {
            OwnedFd::from_raw_fd(fd)
        })),
        other => unreachable!("bind gives the listening socket, not {other:?}"),
    }
}

/// `run -d` (and `start`): a monitor process, detached from this command (two forks and a
/// `setsid`, so it belongs to no terminal and no shell waits for it), starts the container
/// and stays its parent: it writes its output to the json-file log, waits for it, records its
/// end and restarts it as `--restart` says. This command waits only until the container runs
/// (0) or failed to start (its exit code, the error printed). The monitor keeps this command's stderr (for `--trace`) and stdin (for `--step`)
/// until then, and /dev/null after.
pub fn detach(
    ctx: &Context,
    sys: &Sys,
    spec: RunSpec,
    containers: &Containers,
    kept: Option<container::EngineLock>,
    made: Vec<std::path::PathBuf>,
    log: crate::container::logs::LogOptions,
) -> Result<i32> {
    use std::io::{Read, Write};
    use std::os::fd::AsRawFd;
    let (report_r, report_w) = crate::runtime::io::pipe(sys)?;
    let first = sys.clone_process(nix::sched::CloneFlags::empty())?;
    if first == 0 {
        drop(report_r);
        let _ = sys.run(crate::sys::Call::Setsid);
        let monitor = sys.clone_process(nix::sched::CloneFlags::empty());
        if !matches!(monitor, Ok(0)) {
            // SAFETY: ends this forked intermediate at once, without running the parent's
            // exit handlers or flushing its copies of buffers.
            unsafe { libc::_exit(0) }
        }
        sys.tracer.set_process("monitor");
        if let Some(k) = &kept {
            let _ = k.claim();
        }
        let _ = sys.run(crate::sys::Call::Chdir { path: "/".into() });
        // Written once: "ok" when the container runs, or its exit code and the error. Closed
        // right after, so the waiting command reads to its end and goes.
        let report = std::cell::RefCell::new(Some(std::fs::File::from(report_w)));
        let say = |text: &str| {
            if let Some(mut r) = report.borrow_mut().take() {
                let _ = r.write_all(text.as_bytes());
            }
        };
        let null_stdio = || {
            // From here on nobody reads this command's terminal: the monitor's own output
            // goes nowhere (the container's goes to the log).
            if let Ok(null) = sys.open(std::path::Path::new("/dev/null"), libc::O_RDWR) {
                for fd in 0..3 {
                    let _ = sys.run(crate::sys::Call::Dup2 {
                        old: null.as_raw_fd(),
                        new: fd,
                        what: crate::sys::call::Stdio::Null,
                    });
                }
            }
        };
        // The attach socket exists before the container runs, so `attach` right after
        // `run -d` finds it; a monitor that cannot make one still runs the container.
        let mut hub = listen(sys, &spec.bundle)
            .map_err(|e| eprintln!("dockling: warning: no attach socket: {e}"))
            .ok();
        let opts = StartOptions {
            engine_lock: kept.as_ref().map(container::EngineLock::raw_fd),
            log: Some(log),
            hub: hub.as_mut(),
            no_sig_proxy: false,
            tee_log: None,
            network: None,
            cancel: None,
            on_started: Some(Box::new(|| {
                say("ok\n");
                sys.tracer.flush();
                null_stdio();
            })),
        };
        let mut result = start_and_record(ctx, sys, &spec, containers, &made, opts);
        // `--restart`: started again while the policy says so and nobody stopped it on
        // purpose, after Docker's back-off (100 ms, doubled each time, at most a minute; back
        // to 100 ms after a run of 10 s or more).
        let mut count = 0;
        let mut delay = std::time::Duration::from_millis(100);
        let mut started = std::time::Instant::now();
        loop {
            let code = match &result {
                Ok(code) if report.borrow().is_none() => *code,
                // Never started (a bad command, aborted at a step): reported, not retried.
                _ => break,
            };
            if !spec.restart.restarts(code, count) || containers.stop_requested(&spec.id) {
                break;
            }
            if started.elapsed() >= std::time::Duration::from_secs(10) {
                delay = std::time::Duration::from_millis(100);
            }
            // Docker's "Restarting (code) N seconds ago" for as long as the back-off lasts.
            let _ = containers.update(&spec.id, |c| c.restarting = true);
            if !back_off(containers, &spec.id, delay) {
                break;
            }
            delay = (delay * 2).min(std::time::Duration::from_secs(60));
            count += 1;
            let _ = containers.update(&spec.id, |c| {
                c.restart_count = count;
                c.status = Status::Created;
                c.restarting = false;
            });
            started = std::time::Instant::now();
            let opts = StartOptions {
                engine_lock: kept.as_ref().map(container::EngineLock::raw_fd),
                log: Some(log),
                on_started: None,
                hub: hub.as_mut(),
                no_sig_proxy: false,
                tee_log: None,
                network: None,
                cancel: None,
            };
            // What the record says now: `network connect` and `disconnect` change it while
            // the container runs, and a restart plugs in the networks it has at that time.
            let now = containers.find(&spec.id).map(|c| c.spec);
            let spec_now = match &now {
                Ok(s) => s,
                Err(_) => &spec,
            };
            result = start_and_record(ctx, sys, spec_now, containers, &[], opts);
        }
        let _ = containers.update(&spec.id, |c| c.restarting = false);
        containers.clear_stop_request(&spec.id);
        let code = match result {
            // Aborted at a `--step` pause (130) before the container ran, or its exit code.
            Ok(code) => {
                say(&format!("{code}\n"));
                code
            }
            Err(e) => {
                say(&format!("{}\n{e}", e.exit_code()));
                e.exit_code()
            }
        };
        drop(kept);
        sys.tracer.flush();
        // SAFETY: the monitor is a forked copy of this command: it ends without running the
        // parent's exit handlers.
        unsafe { libc::_exit(code) }
    }
    drop(report_w);
    // The intermediate process exits at once; the monitor is nobody's child of ours.
    let _ = sys.wait4(first);
    drop(kept);
    let mut text = String::new();
    let _ = std::fs::File::from(report_r).read_to_string(&mut text);
    match text.split_once('\n') {
        Some(("ok", _)) => Ok(0),
        Some((code, msg)) => {
            let code: i32 = code.parse().unwrap_or(125);
            if !msg.is_empty() {
                eprintln!("dockling: {msg}");
            }
            Ok(code)
        }
        None => Err(container::ContainerError::MonitorLost {
            id: spec.id[..12].to_string(),
            name: spec.name.clone(),
        }
        .into()),
    }
}
