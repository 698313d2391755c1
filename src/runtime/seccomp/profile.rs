//! Docker's seccomp profile format, and its resolution for one container.
//!
//! A profile (`--security-opt seccomp=<file>`, or moby's `default.json`) is a template: its
//! rules may apply only on some architectures (`includes.arches`), only when the container
//! holds a capability (`includes.caps`) or lacks one (`excludes.caps`), or only from some kernel
//! version on (`minKernel`). [`resolve`] picks the rules that apply to this container on this
//! machine, exactly as Docker's `setupSeccomp` does, and returns the OCI runtime spec's
//! `linux.seccomp`: the same value goes into the bundle's `config.json` (so runc and crun
//! install the same policy) and is compiled into the BPF program dockling installs
//! ([`super::bpf`]).
//!
//! Unknown fields are refused (a misspelt `"excludes"` would otherwise silently widen what a
//! container may do), and every error names the field, e.g. `syscalls[3].args[0].op`.
//! Syscall names an architecture does not have are skipped when compiling, as runc does:
//! Docker's own list names calls of every architecture (`socketcall` exists only on 32-bit
//! ones, `arch_prctl` only on x86).

use std::path::Path;

use oci_spec::runtime::{Arch, LinuxSeccomp, LinuxSeccompAction};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::error::{Error, Result};

/// A profile as Docker writes it. `Option` where Docker's files may say `null`.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Profile {
    /// What a syscall no rule matches gets, e.g. `SCMP_ACT_ERRNO`.
    #[serde(default)]
    pub default_action: String,
    /// The errno of `defaultAction` `SCMP_ACT_ERRNO` (Docker: 1, EPERM).
    #[serde(default)]
    pub default_errno_ret: Option<u32>,
    /// The architectures the filter accepts (`SCMP_ARCH_X86_64`...); or use `archMap`.
    #[serde(default)]
    pub architectures: Option<Vec<String>>,
    /// For each native architecture, the others its processes may use.
    #[serde(default)]
    pub arch_map: Option<Vec<ArchMap>>,
    /// The rules, in order.
    #[serde(default)]
    pub syscalls: Option<Vec<Rule>>,
    /// `SECCOMP_FILTER_FLAG_*` (not supported by dockling: refused).
    #[serde(default)]
    pub flags: Option<Vec<String>>,
    /// A seccomp-notify listener (not supported by dockling: refused).
    #[serde(default)]
    pub listener_path: Option<String>,
    /// Data for the listener.
    #[serde(default)]
    pub listener_metadata: Option<String>,
    /// The file it was read from, for error messages.
    #[serde(skip)]
    pub source: Option<std::path::PathBuf>,
}

impl Profile {
    /// How errors name this profile: `seccomp profile <file>`.
    pub fn label(&self) -> String {
        match &self.source {
            Some(p) => format!("seccomp profile {}", p.display()),
            None => "seccomp profile".into(),
        }
    }
}

/// One entry of `archMap`.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ArchMap {
    /// The native architecture, e.g. `SCMP_ARCH_X86_64`.
    pub architecture: String,
    /// The others its processes may use, e.g. `SCMP_ARCH_X86`.
    #[serde(default)]
    pub sub_architectures: Option<Vec<String>>,
}

/// One rule: these syscalls get this action (when the arguments match).
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Rule {
    /// A single name (older profiles); use `names`.
    #[serde(default)]
    pub name: Option<String>,
    /// The syscalls, by name.
    #[serde(default)]
    pub names: Option<Vec<String>>,
    /// `SCMP_ACT_ALLOW`, `SCMP_ACT_ERRNO`...
    pub action: String,
    /// The errno of `SCMP_ACT_ERRNO` (default: EPERM).
    #[serde(default)]
    pub errno_ret: Option<u32>,
    /// Conditions on the arguments, all of which must hold.
    #[serde(default)]
    pub args: Option<Vec<Arg>>,
    /// Free text.
    #[serde(default)]
    pub comment: Option<String>,
    /// The rule applies only when all of these hold.
    #[serde(default)]
    pub includes: Option<Filter>,
    /// The rule does not apply when any of these holds.
    #[serde(default)]
    pub excludes: Option<Filter>,
}

/// `includes` / `excludes` of a rule.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Filter {
    /// Capabilities in the container's bounding set, e.g. `CAP_SYS_ADMIN`.
    #[serde(default)]
    pub caps: Option<Vec<String>>,
    /// Native architectures in Docker's (libseccomp's) words: `amd64`, `arm64`, `x86`...
    #[serde(default)]
    pub arches: Option<Vec<String>>,
    /// A kernel version, `major.minor`.
    #[serde(default)]
    pub min_kernel: Option<String>,
}

/// One condition on an argument: `args[index] <op> value` (`MASKED_EQ`: `args[index] & value
/// == valueTwo`).
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Arg {
    /// Which argument, 0 to 5.
    pub index: u32,
    /// The value compared with (the mask for `SCMP_CMP_MASKED_EQ`).
    pub value: u64,
    /// The value the masked argument must equal.
    #[serde(default)]
    pub value_two: u64,
    /// `SCMP_CMP_EQ`, `SCMP_CMP_NE`, `SCMP_CMP_LT`, `SCMP_CMP_LE`, `SCMP_CMP_GT`,
    /// `SCMP_CMP_GE`, `SCMP_CMP_MASKED_EQ`.
    pub op: String,
}

/// The largest profile file read (Docker's default is about 20 KiB).
const MAX_PROFILE_BYTES: u64 = 4 << 20;

/// Read a profile file given with `--security-opt seccomp=<path>`.
pub fn load(path: &Path) -> Result<Profile> {
    use std::io::Read as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    // O_NONBLOCK: a FIFO given by mistake is refused below instead of hanging the open.
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .map_err(|source| crate::runtime::RuntimeError::SeccompProfileOpen {
            path: path.to_path_buf(),
            source,
        })?;
    let meta = file
        .metadata()
        .map_err(Error::io("stat seccomp profile", path))?;
    if !meta.is_file() || meta.len() > MAX_PROFILE_BYTES {
        return Err(crate::runtime::RuntimeError::SeccompProfileNotFile {
            path: path.to_path_buf(),
            max: MAX_PROFILE_BYTES,
        }
        .into());
    }
    let mut text = vec![];
    file.take(MAX_PROFILE_BYTES)
        .read_to_end(&mut text)
        .map_err(Error::io("read seccomp profile", path))?;
    let mut profile =
        parse(&text).map_err(|reason| crate::runtime::RuntimeError::SeccompProfileParse {
            path: path.to_path_buf(),
            reason,
        })?;
    profile.source = Some(path.to_path_buf());
    Ok(profile)
}

/// Parse a profile; the error names the field (`syscalls[2].action: ...`).
pub fn parse(text: &[u8]) -> std::result::Result<Profile, String> {
    let de = &mut serde_json::Deserializer::from_slice(text);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if path == "." {
            format!("not a seccomp profile: {inner}")
        } else {
            format!("{path}: {inner}")
        }
    })
}

/// What a profile is resolved against: this container on this machine.
#[derive(Debug, Clone)]
pub struct Target<'a> {
    /// The native architecture in libseccomp's words (`amd64`, `arm64`).
    pub arch: &'a str,
    /// The container's bounding set, `CAP_` names.
    pub caps: &'a [String],
    /// The running kernel, (major, minor).
    pub kernel: (u32, u32),
}

/// The native architecture of this build, in libseccomp's words (Docker's `includes.arches`).
pub fn native_arch() -> &'static str {
    if cfg!(target_arch = "x86_64") {
        "amd64"
    } else if cfg!(target_arch = "aarch64") {
        "arm64"
    } else if cfg!(target_arch = "x86") {
        "x86"
    } else if cfg!(target_arch = "arm") {
        "arm"
    } else {
        std::env::consts::ARCH
    }
}

fn native_scmp_arch(arch: &str) -> Option<&'static str> {
    Some(match arch {
        "amd64" => "SCMP_ARCH_X86_64",
        "arm64" => "SCMP_ARCH_AARCH64",
        "x86" => "SCMP_ARCH_X86",
        "arm" => "SCMP_ARCH_ARM",
        _ => return None,
    })
}

fn action(field: &str, s: &str) -> std::result::Result<LinuxSeccompAction, String> {
    let a: LinuxSeccompAction = serde_json::from_value(Value::String(s.into())).map_err(|_| {
        format!("{field}: unknown action {s:?}: use SCMP_ACT_ALLOW, SCMP_ACT_ERRNO, SCMP_ACT_KILL, SCMP_ACT_KILL_PROCESS, SCMP_ACT_TRAP, SCMP_ACT_TRACE or SCMP_ACT_LOG")
    })?;
    if a == LinuxSeccompAction::ScmpActNotify {
        return Err(format!(
            "{field}: SCMP_ACT_NOTIFY needs a seccomp agent, which dockling does not run: use another action"
        ));
    }
    Ok(a)
}

fn arch(field: &str, s: &str) -> std::result::Result<Arch, String> {
    serde_json::from_value(Value::String(s.into())).map_err(|_| {
        format!("{field}: unknown architecture {s:?}: use names like SCMP_ARCH_X86_64 or SCMP_ARCH_AARCH64")
    })
}

fn kernel_at_least(
    field: &str,
    min: &str,
    kernel: (u32, u32),
) -> std::result::Result<bool, String> {
    let bad = || {
        format!("{field}: {min:?} is not a kernel version: write it as major.minor, e.g. \"4.8\"")
    };
    let mut parts = min.split('.');
    let major: u32 = parts.next().and_then(|p| p.parse().ok()).ok_or_else(bad)?;
    let minor: u32 = match parts.next() {
        Some(p) => p.parse().map_err(|_| bad())?,
        None => 0,
    };
    Ok(kernel >= (major, minor))
}

/// The running kernel's (major, minor), from uname(2); (0, 0) if it cannot be read.
pub fn running_kernel() -> (u32, u32) {
    nix::sys::utsname::uname()
        .ok()
        .and_then(|u| crate::host::kernel_version(&u.release().to_string_lossy()))
        .unwrap_or((0, 0))
}

/// The rules of `profile` that apply to `target`, as the runtime spec's `linux.seccomp`;
/// `None` when the profile installs nothing (no default action and no rules, as Docker reads
/// an empty profile). The error names the field.
pub fn resolve(
    profile: &Profile,
    target: &Target,
) -> std::result::Result<Option<LinuxSeccomp>, String> {
    let rules = profile.syscalls.as_deref().unwrap_or_default();
    if profile.default_action.is_empty() && rules.is_empty() {
        return Ok(None);
    }
    if profile.default_action.is_empty() {
        return Err(
            "defaultAction: missing: say what other syscalls get, e.g. \"SCMP_ACT_ERRNO\"".into(),
        );
    }
    let default = action("defaultAction", &profile.default_action)?;
    if profile.flags.as_ref().is_some_and(|f| !f.is_empty()) {
        return Err(
            "flags: seccomp filter flags are not supported by dockling: remove them".into(),
        );
    }
    if profile
        .listener_path
        .as_ref()
        .is_some_and(|p| !p.is_empty())
    {
        return Err("listenerPath: seccomp agents are not supported by dockling: remove it".into());
    }
    let listed = profile.architectures.as_deref().unwrap_or_default();
    let map = profile.arch_map.as_deref().unwrap_or_default();
    if !listed.is_empty() && !map.is_empty() {
        return Err("architectures and archMap are both given: use one of them".into());
    }
    let mut arches = vec![];
    for (i, a) in listed.iter().enumerate() {
        arches.push(arch(&format!("architectures[{i}]"), a)?);
    }
    let native = native_scmp_arch(target.arch);
    // Only the entry of this machine's architecture is read (entries for others, such as
    // SCMP_ARCH_LOONGARCH64 in Docker's default, may name architectures oci-spec lacks).
    for (i, m) in map.iter().enumerate() {
        if Some(m.architecture.as_str()) != native {
            continue;
        }
        arches.push(arch(
            &format!("archMap[{i}].architecture"),
            &m.architecture,
        )?);
        let subs = m.sub_architectures.as_deref().unwrap_or_default();
        for (j, s) in subs.iter().enumerate() {
            arches.push(arch(&format!("archMap[{i}].subArchitectures[{j}]"), s)?);
        }
    }
    // x32 (64-bit registers, 32-bit pointers, its own numbers with bit 30 set) is refused:
    // dockling's filter kills a process that uses it, so the bundle does not list it either
    // and runc/crun refuse it too. Docker's profile lists it; almost nothing uses it.
    arches.retain(|a| *a != Arch::ScmpArchX32);

    let has_cap = |c: &String| target.caps.iter().any(|held| held == c);
    let mut out = vec![];
    'rules: for (i, r) in rules.iter().enumerate() {
        let field = format!("syscalls[{i}]");
        let names: Vec<String> = match (&r.name, &r.names) {
            (Some(_), Some(n)) if !n.is_empty() => {
                return Err(format!("{field}: both name and names are given: use names"))
            }
            (Some(n), _) => vec![n.clone()],
            (None, Some(n)) => n.clone(),
            (None, None) => vec![],
        };
        if names.is_empty() {
            return Err(format!(
                "{field}.names: empty: name the syscalls the rule is for"
            ));
        }
        let act = action(&format!("{field}.action"), &r.action)?;
        let mut args = vec![];
        for (j, a) in r.args.as_deref().unwrap_or_default().iter().enumerate() {
            let f = format!("{field}.args[{j}]");
            if a.index > 5 {
                return Err(format!(
                    "{f}.index: {} is not an argument: syscalls have arguments 0 to 5",
                    a.index
                ));
            }
            let op: oci_spec::runtime::LinuxSeccompOperator =
                serde_json::from_value(Value::String(a.op.clone())).map_err(|_| {
                    format!("{f}.op: unknown operator {:?}: use SCMP_CMP_EQ, SCMP_CMP_NE, SCMP_CMP_LT, SCMP_CMP_LE, SCMP_CMP_GT, SCMP_CMP_GE or SCMP_CMP_MASKED_EQ", a.op)
                })?;
            let mut arg = json!({"index": a.index, "value": a.value, "op": op});
            if a.value_two != 0 || op == oci_spec::runtime::LinuxSeccompOperator::ScmpCmpMaskedEq {
                arg["valueTwo"] = json!(a.value_two);
            }
            args.push(arg);
        }
        // Checked for every rule, so a bad version is an error whether or not the rule applies.
        for (which, filter) in [("excludes", &r.excludes), ("includes", &r.includes)] {
            if let Some(k) = filter.as_ref().and_then(|f| f.min_kernel.as_ref()) {
                kernel_at_least(&format!("{field}.{which}.minKernel"), k, target.kernel)?;
            }
        }
        if let Some(ex) = &r.excludes {
            let arch_hit = ex
                .arches
                .as_deref()
                .unwrap_or_default()
                .iter()
                .any(|a| a == target.arch);
            let cap_hit = ex.caps.as_deref().unwrap_or_default().iter().any(has_cap);
            let kernel_hit = match &ex.min_kernel {
                Some(k) => kernel_at_least("", k, target.kernel)?,
                None => false,
            };
            if arch_hit || cap_hit || kernel_hit {
                continue 'rules;
            }
        }
        if let Some(inc) = &r.includes {
            let arches_ok = match inc.arches.as_deref() {
                Some(a) if !a.is_empty() => a.iter().any(|a| a == target.arch),
                _ => true,
            };
            let caps_ok = inc.caps.as_deref().unwrap_or_default().iter().all(has_cap);
            let kernel_ok = match &inc.min_kernel {
                Some(k) => kernel_at_least("", k, target.kernel)?,
                None => true,
            };
            if !(arches_ok && caps_ok && kernel_ok) {
                continue 'rules;
            }
        }
        let mut rule = json!({"names": names, "action": act});
        if let Some(e) = r.errno_ret {
            rule["errnoRet"] = json!(e);
        }
        if !args.is_empty() {
            rule["args"] = json!(args);
        }
        out.push(rule);
    }
    let mut doc = json!({"defaultAction": default, "syscalls": out});
    if let Some(e) = profile.default_errno_ret {
        doc["defaultErrnoRet"] = json!(e);
    }
    if !arches.is_empty() {
        doc["architectures"] = json!(arches);
    }
    serde_json::from_value(doc)
        .map(Some)
        .map_err(|e| format!("resolved profile: {e}"))
}
