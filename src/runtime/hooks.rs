//! OCI hooks (runtime-spec config.md, "POSIX-platform Hooks"): programs the config names, run
//! at fixed points of the lifecycle with the container's state as JSON on their stdin.
//!
//! Where each list runs, and by whom (runc's and crun's choices, which the spec allows):
//! - `prestart` (deprecated) then `createRuntime`: by `create`, in the runtime's namespaces,
//!   once the container's namespaces exist and its mounts are made, before `pivot_root`
//!   (the container's process waits on the channel meanwhile);
//! - `createContainer`: by the container's own process, in its namespaces, after the mounts
//!   and before `pivot_root` (the host's programs are still reachable there; crun does this);
//! - `startContainer`: by the container's process after `start`'s go-ahead, before the
//!   program's `execve`, so the path is the container's;
//! - `poststart`: by `start` once the program runs; a failure stops the container and fails
//!   `start` (runc and crun do so; the spec asks only for a warning);
//! - `poststop`: by `delete`, after the container's processes and cgroup are gone; a failure
//!   is a warning and the next hook still runs.
//!
//! A hook with no `env` gets the runtime's own environment (runc's Go `exec.Cmd` with a nil
//! `Env`, crun the same: crun's tests check it); host-side hooks run in the bundle directory.
//! Their stdout and stderr are the runtime's, or, with crun's annotations
//! `run.oci.hooks.stdout` and `run.oci.hooks.stderr`, appended to the files they name (host
//! paths: not for `startContainer`, which runs inside the container).
//! Each is one traced [`Call::RunHook`].

use std::path::Path;

use crate::error::Result;
use crate::specconv::oci::Hook;
use crate::sys::{Call, Ret, Sys};

/// The state a hook reads on its stdin: the runtime spec's `state` (ociVersion, id, status,
/// pid, bundle, annotations).
pub fn state(
    id: &str,
    status: &str,
    pid: Option<i32>,
    bundle: &Path,
    annotations: &std::collections::BTreeMap<String, String>,
) -> serde_json::Value {
    let mut doc = serde_json::json!({
        "ociVersion": super::oci::OCI_VERSION,
        "id": id,
        "status": status,
        "bundle": bundle,
        "annotations": annotations,
    });
    if let Some(pid) = pid.filter(|p| *p > 0) {
        doc["pid"] = pid.into();
    }
    doc
}

/// Run one list of hooks in order; the first failure ends it and is returned.
pub fn run(
    sys: &Sys,
    kind: &'static str,
    hooks: &[Hook],
    state: &serde_json::Value,
    dir: Option<&Path>,
) -> Result<()> {
    for (index, hook) in hooks.iter().enumerate() {
        run_one(sys, kind, index, hook, state, dir)?;
    }
    Ok(())
}

/// Run every hook of a list even when one fails, each failure given to `warn` (poststop).
pub fn run_all(
    sys: &Sys,
    kind: &'static str,
    hooks: &[Hook],
    state: &serde_json::Value,
    dir: Option<&Path>,
    warn: &mut dyn FnMut(String),
) {
    for (index, hook) in hooks.iter().enumerate() {
        if let Err(e) = run_one(sys, kind, index, hook, state, dir) {
            warn(e.to_string());
        }
    }
}

fn run_one(
    sys: &Sys,
    kind: &'static str,
    index: usize,
    hook: &Hook,
    state: &serde_json::Value,
    dir: Option<&Path>,
) -> Result<()> {
    let argv = if hook.args.is_empty() {
        vec![hook.path.display().to_string()]
    } else {
        hook.args.clone()
    };
    let failed = |why: String| super::RuntimeError::HookFailed {
        kind,
        index,
        path: hook.path.clone(),
        why,
    };
    let timeout = hook.timeout.and_then(|t| u64::try_from(t).ok());
    let ret = sys.perform(Call::RunHook {
        kind: format!("hooks.{kind}[{index}]"),
        path: hook.path.clone(),
        argv,
        envp: if hook.env.is_empty() {
            None
        } else {
            Some(hook.env.clone())
        },
        dir: dir.map(Path::to_path_buf),
        state: state.to_string(),
        timeout,
        stdout: output_file(kind, state, "run.oci.hooks.stdout"),
        stderr: output_file(kind, state, "run.oci.hooks.stderr"),
    });
    let status = match ret {
        Ok(Ret::Waited { status, .. }) => status,
        Ok(_) => 0,
        Err(e) if e.errno == nix::errno::Errno::ETIMEDOUT => {
            return Err(failed(format!(
                "to end within its timeout of {} s (killed)",
                timeout.unwrap_or(0)
            ))
            .into())
        }
        Err(e) => return Err(failed(format!("to start: {}", e.errno.desc())).into()),
    };
    if libc::WIFSIGNALED(status) {
        return Err(failed(format!(
            "(killed by {})",
            crate::sys::call::signal_name(libc::WTERMSIG(status))
        ))
        .into());
    }
    match libc::WEXITSTATUS(status) {
        0 => Ok(()),
        code => Err(failed(format!("with exit code {code}")).into()),
    }
}

/// The file crun's annotation `key` names for a host-side hook's output, if any.
fn output_file(kind: &str, state: &serde_json::Value, key: &str) -> Option<std::path::PathBuf> {
    if kind == "startContainer" {
        return None;
    }
    state["annotations"][key]
        .as_str()
        .filter(|p| Path::new(p).is_absolute())
        .map(std::path::PathBuf::from)
}
