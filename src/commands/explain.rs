//! `dockling explain run …`: the plan and every syscall it would make, without doing anything.
//!
//! The real engine code runs against the recording double ([`crate::sys::record`]), so what
//! is shown is exactly what `run` would do with the same flags, not a description of it.

use std::fmt::Write as _;

use crate::cli::{ExplainArgs, ExplainWhat};
use crate::commands::{run, Context};
use crate::container::Containers;
use crate::error::Result;
use crate::plan::StepId;
use crate::spec::{LayersMode, RootfsMode, RunSpec};
use crate::sys::{record::Recorder, Sys};
use crate::trace::{catalog::Catalog, Format, Tracer};

/// Why a step is off (or how it is changed) for this spec.
pub fn switched(spec: &RunSpec, step: StepId) -> Option<String> {
    let ns = &spec.namespaces;
    match step {
        StepId::CgroupsCreate | StepId::CgroupsJoin if spec.cgroup.is_none() => {
            Some("off: --no-cgroups".into())
        }
        StepId::NamespacesCgroup if spec.cgroup.is_none() => Some("off: --no-cgroups".into()),
        StepId::NamespacesCgroup if !ns.cgroup => Some("off: --cgroupns host".into()),
        StepId::NetworkLoopback if !ns.net => Some("off: --network host".into()),
        StepId::NetworkBridge | StepId::NetworkVeth
            if spec.network != crate::spec::NetworkMode::Bridge =>
        {
            Some(format!("off: --network {}", spec.network.as_str()))
        }
        StepId::NetworkPorts | StepId::NetworkPublish
            if spec.network != crate::spec::NetworkMode::Bridge =>
        {
            Some(format!("off: --network {}", spec.network.as_str()))
        }
        StepId::NetworkPorts | StepId::NetworkPublish
            if spec.ports.publish.is_empty() && !spec.ports.publish_all =>
        {
            Some("off: no -p or -P given".into())
        }
        StepId::NetworkPorts | StepId::NetworkPublish
            if spec.ports.mode == crate::spec::PublishMode::Nat =>
        {
            Some("changed: --publish-mode nat".into())
        }
        StepId::NamespacesHostname if !ns.uts => Some("off: --uts host".into()),
        StepId::RootfsVolumes if spec.volumes.is_empty() => Some("off: no -v given".into()),
        StepId::SecurityMask if spec.privileged => Some("off: --privileged".into()),
        StepId::SecuritySeccomp if spec.seccomp.is_none() && !spec.no_new_privileges => Some(
            if spec.privileged {
                "off: --privileged"
            } else {
                "off: --security-opt seccomp=unconfined"
            }
            .into(),
        ),
        StepId::ProcessTerminal if !spec.tty && spec.interactive => {
            Some("off: -i without -t keeps dockling's own stdin".into())
        }
        StepId::ProcessTerminal if !spec.tty => Some("changed: no -t, no -i".into()),
        StepId::RootfsWorkdir => Some(format!("only if the image has no {}", spec.cwd.display())),
        StepId::LayersMount if spec.layers_mode == LayersMode::Copy => {
            Some("changed: --layers copy binds a private copy".into())
        }
        StepId::RootfsPivot if spec.rootfs_mode == RootfsMode::Chroot => {
            Some("changed: --rootfs chroot".into())
        }
        StepId::NamespacesClone => {
            let mut off = vec![];
            if !ns.pid {
                off.push("--pid host");
            }
            if !ns.ipc {
                off.push("--ipc host");
            }
            (!off.is_empty()).then(|| format!("changed: {}", off.join(" ")))
        }
        _ => None,
    }
}

/// Render the plan of `spec` and its dry-run syscalls.
pub fn render(spec: &RunSpec, ctx: &Context) -> Result<String> {
    let cat = Catalog::get();
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Plan for `dockling run {}`, step by step:",
        spec.image_ref
    );
    let mut i = 0;
    for step in StepId::ALL.iter().filter(|s| s.in_run()) {
        // A step done another way is shown with its own title (chroot, not pivot_root).
        let variant = match step {
            StepId::LayersPrepare | StepId::LayersMount if spec.layers_mode == LayersMode::Copy => {
                Some("copy")
            }
            StepId::RootfsPivot if spec.rootfs_mode == RootfsMode::Chroot => Some("chroot"),
            StepId::ProcessTerminal if !spec.tty && !spec.interactive => Some("null_stdin"),
            StepId::NetworkPorts if spec.ports.mode == crate::spec::PublishMode::Nat => {
                Some("reserve")
            }
            StepId::NetworkPublish if spec.ports.mode == crate::spec::PublishMode::Nat => {
                Some("nat")
            }
            _ => None,
        };
        let title = variant
            .and_then(|v| cat.step(&format!("{}:{v}", step.key())))
            .or_else(|| cat.step(step.key()))
            .map(|t| t.title.as_str())
            .unwrap_or("");
        match switched(spec, *step) {
            Some(note) if note.starts_with("off") => {
                let _ = writeln!(out, "  --  {:<22} {title}  [{note}]", step.key());
            }
            Some(note) => {
                i += 1;
                let _ = writeln!(out, "  {i:>2}. {:<22} {title}  [{note}]", step.key());
            }
            None => {
                i += 1;
                let _ = writeln!(out, "  {i:>2}. {:<22} {title}", step.key());
            }
        }
    }
    let _ = writeln!(
        out,
        "\nThe syscalls each step would make (a dry run: nothing was changed):\n"
    );
    let recorder = Recorder::new();
    let sys = Sys::new(Box::new(recorder.clone()), Tracer::capture(Format::Pretty));
    let containers = Containers::at(&ctx.root);
    let cg = run::cgroup_for(ctx, spec)?;
    // `run` first re-executes itself from a read-only copy: the same command line, minus
    // `explain`.
    let argv: Vec<std::ffi::OsString> = std::env::args_os()
        .enumerate()
        .filter(|(i, a)| !(*i == 1 && a == "explain"))
        .map(|(_, a)| a)
        .collect();
    crate::runtime::exe::reexec_sealed(&sys, argv)?;
    crate::runtime::start(&sys, spec, &containers, cg.as_ref(), Default::default())?;
    out.push_str(&sys.tracer.captured());
    Ok(out)
}

/// `dockling explain`.
pub fn run(ctx: &Context, args: &ExplainArgs) -> Result<i32> {
    match &args.what {
        ExplainWhat::Run(run_args) => {
            // A dry run: the store is neither created nor changed (no layer is unpacked).
            let containers = Containers::at(&ctx.root);
            let spec = run::create(ctx, run_args, &containers, true)?;
            print!("{}", render(&spec, ctx)?);
            Ok(0)
        }
        ExplainWhat::Port { port } => explain_port(ctx, port),
        ExplainWhat::Commit(a) => crate::commands::commit::explain(ctx, a),
    }
}

/// `dockling explain port N[/tcp|/udp]`: 0 when the path is complete, 1 when a mistake was
/// named (on stdout with the rest).
fn explain_port(ctx: &Context, port: &str) -> Result<i32> {
    let (n, proto) =
        crate::network::follow::parse_port(port).map_err(crate::error::Error::Usage)?;
    let containers = Containers::open(&ctx.root)?;
    crate::commands::rm::reap(ctx, &containers);
    let list = containers.list()?;
    let sys = Sys::quiet();
    let report = crate::network::follow::follow(&sys, &ctx.root, &list, n, proto);
    print!("{}", report.text);
    Ok(if report.complete { 0 } else { 1 })
}
