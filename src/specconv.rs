//! Flags + config file + image config → one validated [`RunSpec`] (runc's `specconv` idea).
//!
//! Every check of the user's input happens here, before anything is created, so a bad flag
//! costs nothing and leaves nothing behind. Each error says what to do instead.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use crate::config::Config;
use crate::error::{Error, Result};
use crate::spec::{LayersMode, Limits, Namespaces, NetworkMode, RootfsMode, RunSpec, User, Volume};
use crate::sys::fs as safefs;

mod error;
pub mod oci;
pub use error::SpecError;

/// What `specconv` needs to know about the image.
pub struct ImageInput<'a> {
    /// The image as the user typed it.
    pub reference: String,
    /// `sha256:…` config digest.
    pub id: String,
    /// The image's runtime config (entrypoint, cmd, env...), if it has one.
    pub config: Option<&'a oci_spec::image::Config>,
    /// Unpacked layer directories, bottom first.
    pub layers: Vec<PathBuf>,
}

/// The network flags of a `run` request besides `--network`.
#[derive(Debug, Clone, Default)]
pub struct NetRequest {
    /// `--ip`.
    pub ip: Option<String>,
    /// `--network-alias`.
    pub aliases: Vec<String>,
    /// `--add-host NAME:IP`.
    pub add_hosts: Vec<String>,
    /// `--dns`.
    pub dns: Vec<String>,
    /// `--dns-search`.
    pub dns_search: Vec<String>,
    /// `--dns-option`.
    pub dns_options: Vec<String>,
    /// `--link NAME[:ALIAS]` (resolved by the caller, which knows the containers).
    pub links: Vec<(String, String, String)>,
    /// `--network container:X` resolved by the caller: X's full id and its hostname.
    pub join: Option<(String, String)>,
    /// `--mac-address`.
    pub mac: Option<String>,
}

/// What `specconv` reads of a `run` request: the flags as plain values, so the engine never
/// knows the command line (`commands::run` builds it from `cli::RunArgs`). The config file's
/// defaults come separately, as the [`Config`] given to [`build`].
#[derive(Debug, Clone, Default)]
pub struct Request {
    /// `--rm`: remove the container when it exits.
    pub rm: bool,
    /// `-i`: keep stdin open.
    pub interactive: bool,
    /// `-d`: detached; the terminal (`-t`) is the monitor's, not the user's.
    pub detach: bool,
    /// `-t`: allocate a pseudo-terminal.
    pub tty: bool,
    /// `-e`: `NAME=value`, or `NAME` to take it from dockling's environment.
    pub env: Vec<String>,
    /// `--env-file`: files of `-e` lines.
    pub env_file: Vec<PathBuf>,
    /// `-w`: working directory inside the container.
    pub workdir: Option<String>,
    /// `-u`: `<name|uid>[:<group|gid>]`.
    pub user: Option<String>,
    /// `-h`: the container's hostname.
    pub hostname: Option<String>,
    /// `-v`: `HOST-DIR:CONTAINER-DIR[:ro|rw]`, `NAME:CONTAINER-DIR[:ro]`, `CONTAINER-DIR`.
    pub volume: Vec<String>,
    /// `--mount type=volume|bind|tmpfs,…`.
    pub mount: Vec<String>,
    /// `--tmpfs /path[:opts]`.
    pub tmpfs: Vec<String>,
    /// `--entrypoint`: replaces the image's ENTRYPOINT (empty: none).
    pub entrypoint: Option<String>,
    /// `--pid`: `host` shares the host's process ids.
    pub pid: Option<String>,
    /// `--uts`: `host` shares the host's hostname.
    pub uts: Option<String>,
    /// `--ipc`: `private` or `host`.
    pub ipc: Option<String>,
    /// `--network`: `none`, `host`, `bridge` or a user network (else the config file's,
    /// else `bridge`).
    pub network: Option<String>,
    /// `--ip`, `--network-alias`, `--add-host`, `--dns*`, `--link`.
    pub net: NetRequest,
    /// `-p`: `[ip:][hostPort:]containerPort[/proto]`, as typed.
    pub publish: Vec<String>,
    /// `-P`.
    pub publish_all: bool,
    /// `--expose`: `PORT[-END][/proto]`.
    pub expose: Vec<String>,
    /// `--publish-mode` (else the config file's, else proxy).
    pub publish_mode: Option<crate::spec::PublishMode>,
    /// `--cgroupns`: `private` or `host`.
    pub cgroupns: Option<String>,
    /// `--privileged`.
    pub privileged: bool,
    /// `--cap-add`.
    pub cap_add: Vec<String>,
    /// `--cap-drop`.
    pub cap_drop: Vec<String>,
    /// `--security-opt`: `seccomp=…`, `no-new-privileges`.
    pub security_opt: Vec<String>,
    /// `--read-only`: the root filesystem read-only.
    pub read_only: bool,
    /// `--restart`.
    pub restart: crate::spec::RestartPolicy,
    /// `--log-opt`, checked by the caller.
    pub log_opts: Vec<String>,
    /// `--init`.
    pub init: bool,
    /// `-m` as typed (checked by [`check_flags`]).
    pub memory: Option<String>,
    /// `--cpus` as typed (checked by [`check_flags`]).
    pub cpus: Option<String>,
    /// `--pids-limit`.
    pub pids_limit: Option<i64>,
    /// `--layers` (else the config file's, else overlay).
    pub layers: Option<LayersMode>,
    /// `--rootfs` (else the config file's, else pivot_root).
    pub rootfs: Option<RootfsMode>,
    /// `--no-cgroups`.
    pub no_cgroups: bool,
    /// The command and its arguments after the image (empty: the image's).
    pub command: Vec<String>,
}

const DEFAULT_PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

fn own_or_host(flag: &str, value: Option<&str>, private_word: &str) -> Result<bool> {
    match value {
        None | Some("") => Ok(true),
        Some("host") => Ok(false),
        Some(v) if v == private_word => Ok(true),
        Some(v) => Err(Error::Usage(format!(
            "--{flag} {v:?}: use \"host\" to share the host's, or \"{private_word}\" (the default)"
        ))),
    }
}

/// Parse `-v` as Docker does: `HOST:CONTAINER[:OPTS]` (a bind: the host path is absolute),
/// `NAME:CONTAINER[:OPTS]` (a named volume of the store, made on first use) or `CONTAINER`
/// alone (an anonymous volume); `OPTS` is a comma list of `ro`, `rw`, `nocopy`. Refuses (in
/// Docker's and runc's words) a destination no mount may have: `/` (it would hide the whole
/// image), a relative path, `/proc` or a path inside it
/// ([`crate::runtime::rootfs::check_volume_target`]). A missing host directory is not created
/// here: that happens only when the container really starts (see [`create_volume_sources`]);
/// volumes of the store are made by `run` once the container's record is about to be written.
pub fn parse_volume(s: &str) -> Result<Volume> {
    let parts: Vec<&str> = s.split(':').collect();
    let (src, dst, mode) = match parts.as_slice() {
        [dst] => ("", *dst, ""),
        [src, dst] => (*src, *dst, ""),
        [src, dst, mode] => (*src, *dst, *mode),
        _ => {
            return Err(Error::Usage(format!(
                "invalid volume {s:?}: use HOST-DIR:CONTAINER-DIR[:ro], VOLUME-NAME:CONTAINER-DIR[:ro] or CONTAINER-DIR"
            )))
        }
    };
    // Docker: `DST:MODE` is no volume (`-v /data:ro` is refused: a mode needs a source).
    if parts.len() == 2 && is_volume_mode(dst) {
        return Err(Error::Usage(format!(
            "invalid volume specification: '{s}': a mode needs a source: use VOLUME-NAME:{src}:{dst} or HOST-DIR:{src}:{dst} (or --mount type=volume,target={src},readonly for a read-only anonymous volume)"
        )));
    }
    let kind = if src.starts_with('/') {
        "bind"
    } else {
        "volume"
    };
    let spec_error = |why: String| {
        Error::Usage(format!(
            "invalid volume specification: '{s}': invalid mount config for type \"{kind}\": {why}"
        ))
    };
    if src.is_empty() && parts.len() > 1 {
        return Err(spec_error("field Source must not be empty".into()));
    }
    if !src.is_empty() && !src.starts_with('/') && !crate::volume::valid_name(src) {
        return Err(crate::volume::VolumeError::BadName(src.to_string()).into());
    }
    if !dst.starts_with('/') {
        return Err(spec_error(format!(
            "invalid mount path: '{dst}' mount path must be absolute"
        )));
    }
    if crate::runtime::rootfs::lexical_clean(Path::new(dst)) == Path::new("/") {
        return Err(spec_error(
            "invalid specification: destination can't be '/'".into(),
        ));
    }
    let (mut readonly, mut nocopy) = (false, false);
    for m in mode.split(',').filter(|m| !m.is_empty()) {
        match m {
            "ro" => readonly = true,
            "rw" => readonly = false,
            "nocopy" if kind == "volume" => nocopy = true,
            m => {
                return Err(Error::Usage(format!(
                    "invalid volume {s:?}: mode {m:?} is not ro or rw{}",
                    if kind == "volume" { " or nocopy" } else { "" }
                )))
            }
        }
    }
    let mut volume = Volume::bind(PathBuf::from(src), PathBuf::from(dst), readonly);
    volume.mode = mode.to_string();
    if kind == "volume" {
        volume.source = PathBuf::new();
        volume.name = (!src.is_empty()).then(|| src.to_string());
        volume.anonymous = src.is_empty();
        volume.nocopy = nocopy;
    }
    crate::runtime::rootfs::check_volume_target(&volume, &volume.target)?;
    Ok(volume)
}

/// Whether `m` is a mode list Docker's `-v` accepts (`ro`, `rw`, `nocopy`, `z`…), which
/// makes `-v /path:m` a path with a mode, not a source and a destination.
fn is_volume_mode(m: &str) -> bool {
    !m.is_empty()
        && m.split(',').all(|o| {
            [
                "ro",
                "rw",
                "nocopy",
                "z",
                "Z",
                "private",
                "rprivate",
                "shared",
                "rshared",
                "slave",
                "rslave",
                "consistent",
                "cached",
                "delegated",
            ]
            .contains(&o)
        })
}

/// Parse `--mount type=volume|bind|tmpfs,source=…,target=…[,readonly][,volume-nocopy]
/// [,bind-propagation=rprivate][,tmpfs-size=…][,tmpfs-mode=…]` with Docker's keys and errors.
/// A bind's source must exist (unlike `-v`, `--mount` never creates it, as Docker).
pub fn parse_mount(s: &str) -> Result<Volume> {
    let flag_error = |why: String| {
        Error::Usage(format!(
            "invalid argument {s:?} for \"--mount\" flag: {why}"
        ))
    };
    let (mut kind, mut src, mut dst) = ("volume".to_string(), String::new(), String::new());
    let (mut readonly, mut nocopy) = (false, false);
    let (mut size, mut mode, mut propagation) = (None, None, None);
    let mut volume_opts = false;
    let truth = |k: &str, v: Option<&str>| -> Result<bool> {
        match v {
            None | Some("1" | "true") => Ok(true),
            Some("0" | "false") => Ok(false),
            Some(v) => Err(flag_error(format!("invalid value for {k}: {v}"))),
        }
    };
    for field in s.split(',') {
        let (k, v) = match field.split_once('=') {
            Some((k, v)) => (k.trim().to_ascii_lowercase(), Some(v.trim())),
            None => (field.trim().to_ascii_lowercase(), None),
        };
        let need = |v: Option<&str>| -> Result<String> {
            v.map(str::to_string).ok_or_else(|| {
                flag_error(format!("invalid field '{field}' must be a key=value pair"))
            })
        };
        match k.as_str() {
            "type" => kind = need(v)?,
            "source" | "src" => src = need(v)?,
            "target" | "destination" | "dst" => dst = need(v)?,
            "readonly" | "ro" => readonly = truth(&k, v)?,
            "volume-nocopy" => {
                nocopy = truth(&k, v)?;
                volume_opts = true;
            }
            "bind-propagation" => propagation = Some(need(v)?),
            "tmpfs-size" => size = Some(need(v)?),
            "tmpfs-mode" => mode = Some(need(v)?),
            // Docker on Linux accepts and ignores it (a macOS file-sharing hint).
            "consistency" => match need(v)?.as_str() {
                "default" | "consistent" | "cached" | "delegated" => {}
                other => {
                    return Err(flag_error(format!(
                        "invalid value for consistency: {other}"
                    )))
                }
            },
            "volume-driver" => {
                let d = need(v)?;
                if d != "local" {
                    return Err(crate::volume::VolumeError::Driver {
                        name: src.clone(),
                        driver: d,
                    }
                    .into());
                }
                volume_opts = true;
            }
            "volume-opt"
            | "volume-label"
            | "volume-subpath"
            | "bind-nonrecursive"
            | "bind-recursive"
            | "bind-create-mountpoint"
            | "image-subpath" => {
                return Err(flag_error(format!(
                    "'{k}' is a Docker option dockling does not support: drop it{}",
                    match k.as_str() {
                        "volume-label" => " (label the volume with `volume create --label` first)",
                        "volume-opt" => " (dockling's local volumes are plain directories)",
                        _ => "",
                    }
                )))
            }
            "" => {}
            _ => return Err(flag_error(format!("unexpected key '{k}' in '{field}'"))),
        }
    }
    if dst.is_empty() {
        return Err(flag_error("target is required".into()));
    }
    let config_error =
        |why: String| Error::Usage(format!("invalid mount config for type \"{kind}\": {why}"));
    if !dst.starts_with('/') {
        return Err(config_error(format!(
            "invalid mount path: '{dst}' mount path must be absolute"
        )));
    }
    if crate::runtime::rootfs::lexical_clean(Path::new(&dst)) == Path::new("/") {
        return Err(config_error(
            "invalid specification: destination can't be '/'".into(),
        ));
    }
    let mut volume = Volume::bind(PathBuf::from(&src), PathBuf::from(&dst), readonly);
    volume.from_mount_flag = true;
    match kind.as_str() {
        "volume" => {
            if propagation.is_some() || size.is_some() || mode.is_some() {
                return Err(config_error(
                    "only volume-* options go with type volume".into(),
                ));
            }
            if !src.is_empty() && !crate::volume::valid_name(&src) {
                return Err(crate::volume::VolumeError::BadName(src).into());
            }
            volume.source = PathBuf::new();
            volume.anonymous = src.is_empty();
            volume.name = (!src.is_empty()).then_some(src);
            volume.nocopy = nocopy;
        }
        "bind" => {
            if volume_opts || size.is_some() || mode.is_some() {
                return Err(flag_error(
                    "cannot mix 'volume-*' or 'tmpfs-*' options with mount type 'bind'".into(),
                ));
            }
            if src.is_empty() {
                return Err(config_error("field Source must not be empty".into()));
            }
            if !src.starts_with('/') {
                return Err(config_error(format!(
                    "invalid mount path: '{src}' mount path must be absolute"
                )));
            }
            match propagation.as_deref() {
                None | Some("rprivate" | "private") => {}
                Some(p) => {
                    return Err(config_error(format!(
                        "bind-propagation {p:?} is not supported: dockling's binds are rprivate (drop the option)"
                    )))
                }
            }
            if std::fs::symlink_metadata(&src).is_err() {
                return Err(config_error(format!(
                    "bind source path does not exist: {src}"
                )));
            }
        }
        "tmpfs" => {
            if !src.is_empty() {
                return Err(config_error("field Source must be empty".into()));
            }
            if volume_opts || propagation.is_some() {
                return Err(flag_error(
                    "cannot mix 'volume-*' or 'bind-*' options with mount type 'tmpfs'".into(),
                ));
            }
            volume.source = PathBuf::new();
            volume.tmpfs = Some(tmpfs_options(
                size.as_deref(),
                mode.as_deref(),
                &flag_error,
            )?);
        }
        other => {
            return Err(flag_error(format!(
                "invalid value for type: {other:?} (volume, bind or tmpfs)"
            )))
        }
    }
    crate::runtime::rootfs::check_volume_target(&volume, &volume.target)?;
    Ok(volume)
}

/// Bytes as Docker's `units.RAMInBytes` reads them (`tmpfs-size`): a number (a fraction
/// allowed), an optional space, then `k`, `m`, `g`, `t` or `p` (powers of 1024), optionally
/// followed by `i` and/or `b`, any case: `65536`, `64m`, `64MB`, `1.5GiB`.
fn ram_in_bytes(s: &str) -> Option<u64> {
    let lower = s.to_ascii_lowercase();
    let num_end = lower
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(lower.len());
    let (num, rest) = lower.split_at(num_end);
    let rest = rest.strip_prefix(' ').unwrap_or(rest);
    let mut chars = rest.chars();
    let mult: u64 = match chars.next() {
        None => 1,
        Some('b') if rest == "b" => 1,
        Some(c) => 1u64 << (10 * (1 + "kmgtp".find(c)?)),
    };
    let suffix = chars.as_str();
    if !["", "b", "i", "ib"].contains(&suffix) || num.is_empty() || num.starts_with('.') {
        return None;
    }
    let n: f64 = num.parse().ok()?;
    let bytes = n * mult as f64;
    (bytes.is_finite() && bytes < u64::MAX as f64).then_some(bytes as u64)
}

/// `size=…,mode=…` for a tmpfs from `tmpfs-size` (bytes, or with Docker's units: `64m`,
/// `64MB`) and `tmpfs-mode` (octal).
fn tmpfs_options(
    size: Option<&str>,
    mode: Option<&str>,
    err: &dyn Fn(String) -> Error,
) -> Result<String> {
    let mut opts = vec![];
    if let Some(size) = size {
        let bytes = ram_in_bytes(size).ok_or_else(|| {
            err(format!(
                "invalid value for tmpfs-size: {size} (bytes, or with a unit: 64m, 64MB, 1g)"
            ))
        })?;
        opts.push(format!("size={bytes}"));
    }
    if let Some(mode) = mode {
        let m = u32::from_str_radix(mode, 8)
            .ok()
            .filter(|m| *m <= 0o7777)
            .ok_or_else(|| err(format!("invalid value for tmpfs-mode: {mode}")))?;
        opts.push(format!("mode={m:o}"));
    }
    Ok(opts.join(","))
}

/// The mount flags a tmpfs option may be (Docker's `MergeTmpfsOptions` list); any other
/// option must be one of [`TMPFS_DATA`] and goes to the tmpfs itself.
pub const TMPFS_FLAGS: &[&str] = &[
    "ro",
    "rw",
    "exec",
    "noexec",
    "suid",
    "nosuid",
    "dev",
    "nodev",
    "sync",
    "async",
    "dirsync",
    "atime",
    "noatime",
    "diratime",
    "nodiratime",
    "relatime",
    "norelatime",
    "strictatime",
    "nostrictatime",
    "mand",
    "nomand",
    "defaults",
];

/// The tmpfs's own options (`tmpfs(5)`).
const TMPFS_DATA: &[&str] = &[
    "size",
    "mode",
    "uid",
    "gid",
    "nr_inodes",
    "nr_blocks",
    "huge",
    "mpol",
    "inode64",
    "inode32",
    "noswap",
    "quota",
    "usrquota",
    "grpquota",
];

/// Parse `--tmpfs /path[:opts]`: Docker's mount flags (`rw`, `ro`, `exec`, `noexec`, `suid`,
/// `nosuid`, `dev`, `nodev`…, over the defaults `noexec,nosuid,nodev`) and the tmpfs's own
/// options (`size=65536k`, `mode=1777`, `uid=`, `gid=`, `nr_inodes=`…), in any order.
pub fn parse_tmpfs(s: &str) -> Result<Volume> {
    let (dst, opts) = s.split_once(':').unwrap_or((s, ""));
    if !dst.starts_with('/') {
        return Err(Error::Usage(format!(
            "invalid tmpfs {s:?}: invalid mount path: '{dst}' mount path must be absolute"
        )));
    }
    let mut readonly = false;
    for o in opts.split(',').filter(|o| !o.is_empty()) {
        let key = o.split('=').next().unwrap_or_default();
        match o {
            "ro" => readonly = true,
            "rw" => readonly = false,
            _ if TMPFS_FLAGS.contains(&o) => {}
            _ if TMPFS_DATA.contains(&key) => {}
            _ => {
                return Err(Error::Usage(format!(
                    "invalid tmpfs {s:?}: option {o:?} is neither a mount flag (ro, rw, exec, noexec, suid, nosuid, dev, nodev, noatime…) nor a tmpfs option (size=, mode=, uid=, gid=, nr_inodes=…)"
                )))
            }
        }
    }
    let mut volume = Volume::bind(PathBuf::new(), PathBuf::from(dst), readonly);
    volume.tmpfs = Some(opts.to_string());
    crate::runtime::rootfs::check_volume_target(&volume, &volume.target)?;
    Ok(volume)
}

/// The host directories of `-v` that do not exist yet, created (as Docker does, 0755, with
/// missing parents) only when the container is really about to start: `explain` and a run
/// refused earlier create nothing. Returns what was created, outermost first, for
/// [`remove_volume_sources`] to take back if the start fails.
pub fn create_volume_sources(volumes: &[Volume]) -> Result<Vec<PathBuf>> {
    let mut created = Vec::new();
    for v in volumes
        .iter()
        .filter(|v| v.kind() == "bind" && !v.from_mount_flag)
    {
        // The missing ancestors, outermost first.
        let missing: Vec<&Path> = v
            .source
            .ancestors()
            .take_while(|p| std::fs::symlink_metadata(p).is_err())
            .collect();
        for dir in missing.into_iter().rev() {
            match std::fs::create_dir(dir) {
                Ok(()) => created.push(dir.to_path_buf()),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(e) => {
                    remove_volume_sources(&created);
                    return Err(Error::io("create volume directory", dir)(e));
                }
            }
        }
    }
    Ok(created)
}

/// Remove the directories [`create_volume_sources`] made, innermost first, and only while
/// still empty (what a container wrote there before it failed is never deleted).
pub fn remove_volume_sources(created: &[PathBuf]) {
    for dir in created.iter().rev() {
        let _ = std::fs::remove_dir(dir);
    }
}

/// Every flag of `run` that can be checked without the image, checked before anything is
/// looked up, pulled or created: a bad flag costs nothing and leaves nothing behind.
pub fn check_flags(args: &Request) -> Result<()> {
    memory_flag(args)?;
    cpus_flag(args)?;
    volumes_flag(args)?;
    Ok(())
}

/// Every `-v`, `--mount` and `--tmpfs`, parsed; two onto the same container path are refused
/// (Docker's "duplicate mount point": the second would silently hide the first).
fn volumes_flag(args: &Request) -> Result<Vec<Volume>> {
    let mut volumes = args
        .volume
        .iter()
        .map(|v| parse_volume(v))
        .collect::<Result<Vec<_>>>()?;
    for m in &args.mount {
        volumes.push(parse_mount(m)?);
    }
    for t in &args.tmpfs {
        volumes.push(parse_tmpfs(t)?);
    }
    let mut seen = std::collections::HashSet::new();
    for v in &volumes {
        let target = crate::runtime::rootfs::lexical_clean(&v.target);
        if !seen.insert(target.clone()) {
            return Err(Error::Usage(format!(
                "duplicate mount point: {}: give each -v, --mount and --tmpfs its own container path",
                target.display()
            )));
        }
    }
    Ok(volumes)
}

/// The image's `VOLUME`s that no `-v`/`--mount` covers, as anonymous volumes (Docker's).
fn image_volumes(cfg: Option<&oci_spec::image::Config>, volumes: &mut Vec<Volume>) -> Result<()> {
    let Some(list) = cfg.and_then(|c| c.volumes().as_ref()) else {
        return Ok(());
    };
    for target in list {
        if !target.starts_with('/') {
            continue;
        }
        let clean = crate::runtime::rootfs::lexical_clean(Path::new(target));
        if clean == Path::new("/")
            || volumes
                .iter()
                .any(|v| crate::runtime::rootfs::lexical_clean(&v.target) == clean)
        {
            continue;
        }
        let mut v = Volume::bind(PathBuf::new(), clean, false);
        v.anonymous = true;
        crate::runtime::rootfs::check_volume_target(&v, &v.target)?;
        volumes.push(v);
    }
    Ok(())
}

/// `-m`: bytes, `None` for no limit (no flag, or `0` as in Docker).
fn memory_flag(args: &Request) -> Result<Option<u64>> {
    let Some(m) = args.memory.as_deref() else {
        return Ok(None);
    };
    let bytes = crate::cgroups::parse_memory(m).map_err(|e| {
        Error::Usage(format!(
            "invalid argument \"{m}\" for \"-m, --memory\" flag: {e}"
        ))
    })?;
    Ok((bytes != 0).then_some(bytes))
}

/// `--cpus`: a fraction of CPUs, `None` for no limit (no flag, or `0` as in Docker).
fn cpus_flag(args: &Request) -> Result<Option<f64>> {
    match args.cpus.as_deref() {
        None => Ok(None),
        Some(c) => crate::cgroups::parse_cpus(c, crate::cgroups::available_cpus()),
    }
}

/// The most of an image's /etc/passwd or /etc/group that is read: an account database is a
/// few kilobytes, and a file that never ends must not fill dockling's memory.
pub const MAX_ETC_FILE: u64 = 4 << 20;

/// Why an account file of the image cannot be read: the one error of every bad case.
fn bad_etc_file(path: &str, why: &str) -> Error {
    SpecError::AccountFile {
        file: path.to_string(),
        why: why.to_string(),
        max_mib: MAX_ETC_FILE >> 20,
    }
    .into()
}

/// One directory of the merged tree, as overlayfs builds it: the same directory in every
/// layer that contributes to it, top first, each open as an fd. The stack stops at a layer
/// whose directory is opaque, or below a layer that has a non-directory of that name.
type Merged = Vec<(usize, std::os::fd::OwnedFd)>;

/// What a name is in a merged directory.
enum Entry {
    /// Not there: in no layer, or whited out in the topmost layer that has it.
    Missing,
    /// A directory (the layers that make it up).
    Dir(Merged),
    /// Anything else, from the topmost layer that has it: `at` is its index in the parent's
    /// stack, `fd` an `O_PATH|O_NOFOLLOW` fd of the object itself.
    Other {
        at: usize,
        fd: std::os::fd::OwnedFd,
        st: libc::stat,
    },
}

/// Look `name` (one component, never `.` or `..`) up in the merged directory `parent`, top
/// layer first. Each lookup is one component on a directory fd, `RESOLVE_BENEATH|
/// RESOLVE_NO_SYMLINKS` and `O_NOFOLLOW`: a symlink is returned as itself, for the caller to
/// follow inside the image, never followed by the kernel (an absolute target would mean the
/// host).
fn lookup(parent: &Merged, name: &std::ffi::OsStr) -> std::io::Result<Entry> {
    use std::os::fd::AsFd;
    let beneath = libc::RESOLVE_BENEATH | libc::RESOLVE_NO_SYMLINKS | libc::RESOLVE_NO_MAGICLINKS;
    let mut dirs = Merged::new();
    for (at, (layer, dir)) in parent.iter().enumerate() {
        let fd = match safefs::openat2(
            dir.as_fd(),
            Path::new(name),
            libc::O_PATH | libc::O_NOFOLLOW,
            0,
            beneath,
        ) {
            Ok(fd) => fd,
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => continue,
            Err(e) => return Err(e),
        };
        let st = nix::sys::stat::fstat(std::os::fd::AsRawFd::as_raw_fd(&fd))?;
        if st.st_mode & libc::S_IFMT != libc::S_IFDIR {
            if !dirs.is_empty() {
                // A non-directory below a directory: overlayfs stops merging there, and
                // hides it and every layer under it.
                break;
            }
            if st.st_mode & libc::S_IFMT == libc::S_IFCHR && st.st_rdev == 0 {
                return Ok(Entry::Missing); // a whiteout: deleted from the layers below
            }
            return Ok(Entry::Other { at, fd, st });
        }
        // The directory itself ("." of the O_PATH fd, so nothing is looked up twice), open
        // for reading: the opaque mark is an xattr, which an O_PATH fd cannot read.
        let d = safefs::openat2(
            fd.as_fd(),
            Path::new("."),
            libc::O_RDONLY | libc::O_DIRECTORY,
            0,
            beneath,
        )?;
        let opaque =
            safefs::get_xattr_fd(d.as_fd(), "trusted.overlay.opaque")?.as_deref() == Some(b"y");
        dirs.push((*layer, d));
        if opaque {
            break; // the layers below are hidden under this directory
        }
    }
    Ok(if dirs.is_empty() {
        Entry::Missing
    } else {
        Entry::Dir(dirs)
    })
}

/// A file of the image as the container will see it, read from the layers (top first) the
/// way overlayfs merges them: a whiteout hides the layers below, an opaque directory hides
/// the layers below it, a non-directory in place of a parent means "not there".
///
/// Symlinks are followed, but inside the image, the way the container would see them (as
/// `RESOLVE_IN_ROOT` would do on the merged tree): a relative target from the link's
/// directory, an absolute one from the image's root, `..` clamped at the root, at most 40
/// links (the kernel's limit, `path_resolution(7)`). Each step is a one-component lookup on a
/// directory fd of one layer, so a link to `/etc/shadow` or `/dev/zero` finds the image's own
/// file or nothing, never the host's. The final object must be a regular file, opened
/// `O_NOFOLLOW|O_NONBLOCK` (a FIFO would hang, a device node could do anything) and read up
/// to [`MAX_ETC_FILE`]. `None`: not there.
pub fn image_file(layers: &[PathBuf], path: &str) -> Result<Option<String>> {
    use std::os::fd::AsFd;

    let parts = safefs::path_parts;
    let mut roots = Merged::new();
    for (i, layer) in layers.iter().enumerate().rev() {
        let root = match safefs::open_root(layer) {
            Ok(root) => root,
            // Only a dry run (`explain`, which unpacks nothing) gets here with a layer not
            // unpacked yet: it reads what the layers that are there say.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(Error::io("open layer", layer)(e)),
        };
        let dir = safefs::openat2(
            root.as_fd(),
            Path::new("."),
            libc::O_RDONLY | libc::O_DIRECTORY,
            0,
            safefs::IN_ROOT,
        )
        .map_err(Error::io("open layer", layer))?;
        roots.push((i, dir));
    }
    // The merged directories walked so far, root first; `walked` names them, for errors.
    let mut dirs: Vec<Merged> = vec![roots];
    let mut walked = PathBuf::from("/");
    let mut queue = parts(Path::new(path));
    let mut links = 0;
    loop {
        let Some(name) = queue.pop_front() else {
            // Every component was a directory (or a link led to one).
            return Err(bad_etc_file(path, "a directory"));
        };
        if name == ".." {
            if dirs.len() > 1 {
                dirs.pop();
                walked.pop();
            }
            continue;
        }
        let parent = dirs.last().expect("the root is never popped");
        let here = walked.join(&name);
        let entry = lookup(parent, &name).map_err(|source| SpecError::AccountLookup {
            file: path.to_string(),
            at: here.clone(),
            source,
        })?;
        match entry {
            Entry::Missing => return Ok(None),
            Entry::Dir(merged) => {
                dirs.push(merged);
                walked = here;
            }
            Entry::Other { fd, st, .. } if st.st_mode & libc::S_IFMT == libc::S_IFLNK => {
                links += 1;
                if links > 40 {
                    return Err(bad_etc_file(
                        path,
                        "behind more than 40 symlinks (a symlink loop?)",
                    ));
                }
                let target = nix::fcntl::readlinkat(Some(std::os::fd::AsRawFd::as_raw_fd(&fd)), "")
                    .map_err(|source| SpecError::AccountSymlink {
                        file: path.to_string(),
                        at: here.clone(),
                        source,
                    })?;
                let target = PathBuf::from(target);
                if target.is_absolute() {
                    // The image's root, not the host's.
                    dirs.truncate(1);
                    walked = PathBuf::from("/");
                }
                let mut next = parts(&target);
                next.extend(queue);
                queue = next;
            }
            // A file where a directory should be: the path does not exist (ENOTDIR).
            Entry::Other { .. } if !queue.is_empty() => return Ok(None),
            Entry::Other { at, st, .. } => {
                let what = match st.st_mode & libc::S_IFMT {
                    libc::S_IFREG => {
                        let (layer, dir) = &parent[at];
                        let shown = layers[*layer].join(here.strip_prefix("/").unwrap_or(&here));
                        return read_capped(path, dir, &name, &st, &shown);
                    }
                    libc::S_IFIFO => "a FIFO",
                    libc::S_IFCHR | libc::S_IFBLK => "a device node",
                    libc::S_IFSOCK => "a socket",
                    _ => "not a regular file",
                };
                return Err(bad_etc_file(path, what));
            }
        }
    }
}

/// Read the regular file `name` of one layer's directory `dir`, found as `st`: opened again
/// without following anything, `O_NONBLOCK` in case it was swapped for a FIFO since the
/// lookup (checked again: same inode), and read up to [`MAX_ETC_FILE`].
/// `shown` is where it is in the store, for errors.
fn read_capped(
    path: &str,
    dir: &std::os::fd::OwnedFd,
    name: &std::ffi::OsStr,
    st: &libc::stat,
    shown: &Path,
) -> Result<Option<String>> {
    use std::io::Read;
    use std::os::fd::AsFd;
    use std::os::unix::fs::MetadataExt;
    let fd = safefs::openat2(
        dir.as_fd(),
        Path::new(name),
        libc::O_RDONLY | libc::O_NOFOLLOW | libc::O_NONBLOCK,
        0,
        libc::RESOLVE_BENEATH | libc::RESOLVE_NO_SYMLINKS | libc::RESOLVE_NO_MAGICLINKS,
    )
    .map_err(Error::io("open", shown))?;
    let file = std::fs::File::from(fd);
    let again = file.metadata().map_err(Error::io("stat", shown))?;
    if !again.is_file() || again.ino() != st.st_ino || again.dev() != st.st_dev {
        return Err(bad_etc_file(path, "changing while it is read"));
    }
    let mut text = Vec::new();
    file.take(MAX_ETC_FILE + 1)
        .read_to_end(&mut text)
        .map_err(Error::io("read", shown))?;
    if text.len() as u64 > MAX_ETC_FILE {
        return Err(bad_etc_file(path, "too big"));
    }
    Ok(Some(String::from_utf8_lossy(&text).into_owned()))
}

/// Resolve `-u name|uid[:group|gid]` against the image's /etc/passwd and /etc/group, read as
/// the container will see them ([`image_file`]). /etc/group is read only when a group name
/// or the user's supplementary groups need it.
pub fn resolve_user(spec: &str, layers: &[PathBuf]) -> Result<(User, Option<String>)> {
    let passwd = image_file(layers, "etc/passwd")?.unwrap_or_default();
    let (u, g) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let entry = |s: &str| -> Option<(String, u32, u32, String)> {
        passwd.lines().find_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            if f.len() < 7 {
                return None;
            }
            let uid: u32 = f[2].parse().ok()?;
            (f[0] == s || f[2] == s).then(|| {
                (
                    f[0].to_string(),
                    uid,
                    f[3].parse().unwrap_or(0),
                    f[5].to_string(),
                )
            })
        })
    };
    let (name, uid, mut gid, home) = match (u.parse::<u32>(), entry(u)) {
        (_, Some(e)) => (Some(e.0), e.1, e.2, Some(e.3)),
        (Ok(uid), None) => (None, uid, 0, None),
        (Err(_), None) => {
            // Docker's words, so scripts matching them keep working.
            return Err(SpecError::UnknownUser {
                user: u.to_string(),
            }
            .into());
        }
    };
    let needs_group = name.is_some() || g.is_some_and(|g| g.parse::<u32>().is_err());
    let group = if needs_group {
        image_file(layers, "etc/group")?.unwrap_or_default()
    } else {
        String::new()
    };
    if let Some(g) = g {
        gid = match g.parse::<u32>() {
            Ok(n) => n,
            Err(_) => group
                .lines()
                .find_map(|l| {
                    let f: Vec<&str> = l.split(':').collect();
                    (f.len() >= 3 && f[0] == g)
                        .then(|| f[2].parse().ok())
                        .flatten()
                })
                .ok_or_else(|| SpecError::UnknownGroup {
                    group: g.to_string(),
                })?,
        };
    }
    let mut additional = Vec::new();
    if let Some(n) = &name {
        for l in group.lines() {
            let f: Vec<&str> = l.split(':').collect();
            if f.len() >= 4 && f[3].split(',').any(|m| m == n) {
                if let Ok(id) = f[2].parse::<u32>() {
                    if id != gid && !additional.contains(&id) {
                        additional.push(id);
                    }
                }
            }
        }
    }
    Ok((
        User {
            uid,
            gid,
            additional_gids: additional,
        },
        home,
    ))
}

fn env_set(env: &mut Vec<String>, kv: String) {
    let key = kv.split('=').next().unwrap_or("").to_string();
    env.retain(|e| e.split('=').next() != Some(&key));
    env.push(kv);
}

/// Build the spec of a new container.
pub fn build(
    config: &Config,
    args: &Request,
    image: ImageInput<'_>,
    id: &str,
    name: &str,
    bundle: &Path,
) -> Result<RunSpec> {
    let cfg = image.config;
    let cfg_list = |f: fn(&oci_spec::image::Config) -> &Option<Vec<String>>| {
        cfg.and_then(|c| f(c).clone()).unwrap_or_default()
    };

    // Command: --entrypoint replaces ENTRYPOINT (and drops CMD), arguments replace CMD.
    let entrypoint = match &args.entrypoint {
        Some(e) if e.is_empty() => vec![],
        Some(e) => vec![e.clone()],
        None => cfg_list(|c| c.entrypoint()),
    };
    let cmd = if !args.command.is_empty() {
        args.command.clone()
    } else if args.entrypoint.is_some() {
        vec![]
    } else {
        cfg_list(|c| c.cmd())
    };
    let argv: Vec<String> = entrypoint.into_iter().chain(cmd).collect();
    if argv.is_empty() {
        return Err(SpecError::NoCommand {
            image: image.reference,
        }
        .into());
    }

    let pid = own_or_host("pid", args.pid.as_deref(), "private")?;
    let uts = own_or_host("uts", args.uts.as_deref(), "private")?;
    let ipc = own_or_host("ipc", args.ipc.as_deref(), "private")?;
    let cgroupns = own_or_host("cgroupns", args.cgroupns.as_deref(), "private")?;
    let network = match args
        .network
        .as_deref()
        .or(config.network.as_deref())
        .unwrap_or("bridge")
    {
        "none" => NetworkMode::None,
        "host" => NetworkMode::Host,
        "bridge" | "default" => {
            // A bad subnet in the config is said now, before anything is created.
            config.default_subnet()?;
            NetworkMode::Bridge
        }
        other if other.starts_with("container:") => match &args.net.join {
            // No network namespace of its own (as host): the other container's, joined.
            Some(_) => NetworkMode::Host,
            None => {
                return Err(Error::Usage(format!(
                    "--network {other}: no such container"
                )))
            }
        },
        other => {
            let root = bundle
                .parent()
                .and_then(Path::parent)
                .unwrap_or(Path::new("/"));
            match crate::network::store::read(root, other) {
                Ok(Some(_)) => NetworkMode::Bridge,
                _ => {
                    return Err(Error::Usage(format!(
                        "network {other} not found: create it first (dockling network create {other}) or see dockling network ls"
                    )))
                }
            }
        }
    };
    let user_network = match args.network.as_deref().or(config.network.as_deref()) {
        Some(n) if n.starts_with("container:") => None,
        Some(n) if !matches!(n, "none" | "host" | "bridge" | "default") => Some(n.to_string()),
        _ => None,
    };
    if args.net.join.is_some() && (!args.net.dns.is_empty() || !args.net.add_hosts.is_empty()) {
        return Err(Error::Usage(
            "conflicting options: dns and the network mode (--network container:... shares the other container's /etc files)".into(),
        ));
    }
    if args.net.mac.is_some() && network != NetworkMode::Bridge {
        return Err(Error::Usage(
            "conflicting options: mac-address and the network mode (a MAC address needs a bridge network)".into(),
        ));
    }
    let net = net_config(&args.net, user_network)?;
    let ports = ports_flags(config, args, cfg, network)?;
    if let Some(h) = &args.hostname {
        hosts_word("--hostname", h)?;
    }
    if !uts && args.hostname.is_some() {
        return Err(Error::Usage(
            "conflicting options: --hostname and --uts host (the host's name is shared)".into(),
        ));
    }
    if args.net.join.is_some() && args.hostname.is_some() {
        return Err(Error::Usage(
            "conflicting options: hostname and the network mode (--network container:... has the other container's name)".into(),
        ));
    }
    let hostname = match (&args.hostname, uts, &args.net.join) {
        (Some(h), _, _) => h.clone(),
        (None, true, Some((_, h))) => h.clone(),
        (None, true, _) => id[..12].to_string(),
        (None, false, _) => nix::unistd::gethostname()
            .map(|h| h.to_string_lossy().into_owned())
            .unwrap_or_default(),
    };
    if args.tty && args.interactive && !args.detach && !std::io::stdin().is_terminal() {
        return Err(Error::Usage(
            "the input device is not a TTY: drop -t, or run from a terminal".into(),
        ));
    }

    let (user, home) = match args
        .user
        .as_deref()
        .or(cfg.and_then(|c| c.user().as_deref()))
        .filter(|u| !u.is_empty())
    {
        Some(u) => resolve_user(u, &image.layers)?,
        None => resolve_user("0", &image.layers)?,
    };

    let mut env = cfg_list(|c| c.env());
    if !env.iter().any(|e| e.starts_with("PATH=")) {
        env.insert(0, DEFAULT_PATH.to_string());
    }
    env_set(&mut env, format!("HOSTNAME={hostname}"));
    for file in &args.env_file {
        let text = std::fs::read_to_string(file).map_err(Error::io("read env file", file))?;
        for line in text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
        {
            if let Some(kv) = expand_env(line) {
                env_set(&mut env, kv);
            }
        }
    }
    for e in &args.env {
        if let Some(kv) = expand_env(e) {
            env_set(&mut env, kv);
        }
    }
    if args.tty && !env.iter().any(|e| e.starts_with("TERM=")) {
        env.push("TERM=xterm".into());
    }
    if !env.iter().any(|e| e.starts_with("HOME=")) {
        env.push(format!(
            "HOME={}",
            home.filter(|h| !h.is_empty()).unwrap_or_else(|| "/".into())
        ));
    }

    let cwd = args
        .workdir
        .clone()
        .or_else(|| cfg.and_then(|c| c.working_dir().clone()))
        .filter(|w| !w.is_empty())
        .unwrap_or_else(|| "/".into());
    if !cwd.starts_with('/') {
        return Err(Error::Usage(format!(
            "the working directory {cwd:?} is invalid: it needs to be an absolute path"
        )));
    }

    // Missing host directories are made only at the start (`create_volume_sources`).
    let mut volumes = volumes_flag(args)?;
    image_volumes(cfg, &mut volumes)?;
    // Docker's order (`sortMounts`): by the destination's depth, so `-v x:/data/cfg` is
    // mounted after (on top of) an image's `VOLUME /data`, not hidden under it. Stable: at
    // one depth, the flags' order.
    volumes.sort_by_key(|v| {
        crate::runtime::rootfs::lexical_clean(&v.target)
            .components()
            .count()
    });

    let cgroups_on = !args.no_cgroups && config.cgroups != Some(false);
    let limits = Limits {
        memory: memory_flag(args)?,
        cpus: cpus_flag(args)?,
        pids: args.pids_limit,
    };
    if !cgroups_on && (limits.memory.is_some() || limits.cpus.is_some() || limits.pids.is_some()) {
        return Err(Error::Usage(
            "--memory, --cpus and --pids-limit need cgroups: drop --no-cgroups".into(),
        ));
    }

    let mut capabilities =
        crate::runtime::caps::resolve(args.privileged, &args.cap_add, &args.cap_drop)?;
    if !cgroups_on && !args.privileged {
        // Without a cgroup there is no devices controller either: nothing would stop the
        // container from opening a device node it makes or an image brings. So it may make
        // none (no CAP_MKNOD), the image, every -v, volume and tmpfs are mounted nodev, and
        // no device node is copied up into a volume (see rootfs::mount_layers, bind, tmpfs
        // and volume::copy_up): only the devices dockling puts in /dev can be opened.
        let mknod = crate::runtime::caps::number("MKNOD")?;
        capabilities.retain(|c| *c != mknod);
    }
    // As Docker: the default profile unless --privileged; an explicit profile applies even
    // with --privileged; `unconfined` switches it off.
    let mut seccomp_profile = (!args.privileged).then(crate::runtime::seccomp::default::profile);
    // Docker's own profile (not a file's) needs no compile check here: see `builtin_policy`.
    let mut builtin = seccomp_profile.is_some();
    let mut no_new_privileges = false;
    for opt in &args.security_opt {
        let seccomp_arg = opt
            .strip_prefix("seccomp=")
            .or_else(|| opt.strip_prefix("seccomp:"));
        match (opt.as_str(), seccomp_arg) {
            (_, Some("unconfined")) => seccomp_profile = None,
            (_, Some("builtin")) => {
                seccomp_profile = Some(crate::runtime::seccomp::default::profile());
                builtin = true;
            }
            (_, Some(path)) => {
                seccomp_profile = Some(crate::runtime::seccomp::profile::load(Path::new(path))?);
                builtin = false;
            }
            ("no-new-privileges" | "no-new-privileges=true" | "no-new-privileges:true", _) => no_new_privileges = true,
            ("no-new-privileges=false" | "no-new-privileges:false", _) => no_new_privileges = false,
            (other, None) => {
                return Err(Error::Usage(format!(
                    "--security-opt {other:?} is not supported: use seccomp=unconfined, seccomp=<profile.json> or no-new-privileges"
                )))
            }
        }
    }
    let seccomp = match &seccomp_profile {
        Some(_) if builtin => crate::runtime::seccomp::builtin_policy(
            &capabilities,
            crate::runtime::seccomp::profile::running_kernel(),
        )?,
        Some(p) => crate::runtime::seccomp::policy(
            p,
            &capabilities,
            crate::runtime::seccomp::profile::running_kernel(),
        )?,
        None => None,
    };

    Ok(RunSpec {
        seccomp,
        no_new_privileges,
        id: id.to_string(),
        name: name.to_string(),
        image_ref: image.reference,
        image_id: image.id,
        layers: image.layers,
        args: argv,
        env,
        cwd: PathBuf::from(cwd),
        user,
        hostname,
        tty: args.tty,
        interactive: args.interactive,
        remove: args.rm,
        namespaces: Namespaces {
            pid,
            uts,
            ipc,
            net: network != NetworkMode::Host,
            cgroup: cgroupns,
        },
        network,
        net,
        layers_mode: args.layers.or(config.layers).unwrap_or_default(),
        rootfs_mode: args.rootfs.or(config.rootfs).unwrap_or_default(),
        cgroup: cgroups_on.then_some(limits),
        privileged: args.privileged,
        capabilities,
        volumes,
        read_only: args.read_only,
        restart: args.restart,
        log_opts: args.log_opts.clone(),
        init: args.init,
        ports,
        bundle: bundle.to_path_buf(),
    })
}

/// `value` of `flag` as one word of a hosts or resolv.conf line: no whitespace, no control
/// characters, not empty.
pub fn hosts_word(flag: &str, value: &str) -> Result<()> {
    if value.is_empty() || value.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(Error::Usage(format!(
            "invalid argument {value:?} for \"{flag}\" flag: it must be one word, without spaces, tabs or line breaks"
        )));
    }
    Ok(())
}

/// The network settings of a container, checked as Docker checks them.
fn net_config(r: &NetRequest, network: Option<String>) -> Result<crate::spec::NetConfig> {
    let ip = match &r.ip {
        None => None,
        Some(s) => {
            let a: std::net::Ipv4Addr = s.parse().map_err(|_| {
                Error::Usage(format!("invalid IPv4 address: {s}: write it as a.b.c.d"))
            })?;
            if network.is_none() {
                return Err(Error::Usage(
                    "user specified IP address is supported on user defined networks only".into(),
                ));
            }
            Some(a)
        }
    };
    if !r.aliases.is_empty() && network.is_none() {
        return Err(Error::Usage(
            "network-scoped alias is supported only for containers in user defined networks".into(),
        ));
    }
    // Each lands as a word of a line in /etc/hosts or /etc/resolv.conf (of this container,
    // and for aliases of every other one on the network): a space, tab or newline in one
    // would write words or lines of its own.
    for (flag, values) in [
        ("--network-alias", &r.aliases),
        ("--dns-search", &r.dns_search),
        ("--dns-option", &r.dns_options),
    ] {
        for v in values {
            hosts_word(flag, v)?;
        }
    }
    for h in &r.add_hosts {
        hosts_word("--add-host", h)?;
    }
    let mut add_hosts = vec![];
    for h in &r.add_hosts {
        let (name, addr) = h
            .split_once(':')
            .or_else(|| h.split_once('='))
            .filter(|(n, a)| !n.is_empty() && !a.is_empty())
            .ok_or_else(|| {
                Error::Usage(format!(
                    "invalid argument {h:?} for \"--add-host\" flag: bad format for add-host: {h:?} (write NAME:IP)"
                ))
            })?;
        if addr != "host-gateway" && addr.parse::<std::net::IpAddr>().is_err() {
            return Err(Error::Usage(format!(
                "invalid argument {h:?} for \"--add-host\" flag: invalid IP address in add-host: {addr:?}"
            )));
        }
        add_hosts.push((name.to_string(), addr.to_string()));
    }
    let mac = match &r.mac {
        None => None,
        Some(m) => {
            let bytes: Vec<u8> = m
                .split(':')
                .map(|b| u8::from_str_radix(b, 16).ok().filter(|_| b.len() == 2))
                .collect::<Option<_>>()
                .filter(|v: &Vec<u8>| v.len() == 6)
                .ok_or_else(|| {
                    Error::Usage(format!(
                        "invalid argument {m:?} for \"--mac-address\" flag: {m} is not a valid mac address (write six hex pairs, such as 02:42:ac:11:00:99)"
                    ))
                })?;
            if bytes[0] & 1 == 1 {
                return Err(Error::Usage(format!(
                    "invalid argument {m:?} for \"--mac-address\" flag: {m} is a multicast address: a container's must be unicast (first byte even)"
                )));
            }
            Some(m.to_ascii_lowercase())
        }
    };
    for d in &r.dns {
        if d.parse::<std::net::IpAddr>().is_err() {
            return Err(Error::Usage(format!(
                "invalid argument {d:?} for \"--dns\" flag: {d} is not an ip address"
            )));
        }
    }
    Ok(crate::spec::NetConfig {
        network,
        ip,
        aliases: r.aliases.clone(),
        add_hosts,
        dns: r.dns.clone(),
        dns_search: r.dns_search.clone(),
        dns_options: r.dns_options.clone(),
        links: r.links.clone(),
        join: r.join.as_ref().map(|(id, _)| format!("container:{id}")),
        mac,
        extra: vec![],
        primary_disconnected: false,
    })
}

/// `-p`, `-P`, `--expose` and the image's `EXPOSE`, checked now (a bad `-p` is a usage
/// error before anything is created); as Docker: with `--network host` published ports are
/// discarded with a warning, with `--network none` they are kept but lead nowhere (Docker
/// too publishes nothing for a container without a network) and said so.
fn ports_flags(
    config: &Config,
    args: &Request,
    cfg: Option<&oci_spec::image::Config>,
    network: NetworkMode,
) -> Result<crate::spec::Ports> {
    let mut exposed: Vec<String> = Vec::new();
    let image_exposed = cfg
        .and_then(|c| c.exposed_ports().clone())
        .unwrap_or_default();
    for e in image_exposed.iter().chain(&args.expose) {
        // `--expose 8000-8002/udp`: each port its own key, as Docker's ExposedPorts.
        let bs = crate::network::ports::parse_publish(e)
            .map_err(|err| Error::Usage(format!("invalid --expose {e:?}: {err}")))?;
        for b in bs {
            if b.host_ip.is_some() || b.host_ports.is_some() {
                return Err(Error::Usage(format!(
                    "invalid --expose {e:?}: give only the container's port (PORT[-END][/tcp|udp]); use -p to publish"
                )));
            }
            if !exposed.contains(&b.key()) {
                exposed.push(b.key());
            }
        }
    }
    let mut ports = crate::spec::Ports {
        publish: args.publish.clone(),
        publish_all: args.publish_all,
        exposed,
        mode: args
            .publish_mode
            .or(config.publish_mode)
            .unwrap_or_default(),
        outbound_nat: config.outbound_nat.unwrap_or(false),
    };
    crate::network::ports::bindings(&ports).map_err(|e| {
        Error::Usage(format!(
            "{e}: use -p [ip:][hostPort:]containerPort[/tcp|udp], such as -p 8000:80"
        ))
    })?;
    if args.net.join.is_some() && (!ports.publish.is_empty() || ports.publish_all) {
        // Docker's refusal: the ports belong to the other container's network.
        return Err(Error::Usage(
            "conflicting options: port publishing and the container type network mode (publish the ports on the container whose network this one joins)".into(),
        ));
    }
    if network == NetworkMode::Host && (!ports.publish.is_empty() || ports.publish_all) {
        eprintln!("WARNING: Published ports are discarded when using host network mode");
        ports.publish.clear();
        ports.publish_all = false;
    }
    Ok(ports)
}

/// `-e NAME` takes the value from dockling's own environment, as Docker does; a name unset
/// here is left out (Docker's behaviour), not set empty.
fn expand_env(e: &str) -> Option<String> {
    if e.contains('=') {
        Some(e.to_string())
    } else {
        std::env::var_os(e).map(|v| format!("{e}={}", v.to_string_lossy()))
    }
}

/// The environment of a process `exec` starts: the container's, with `-e` on top.
pub fn exec_env(container: &[String], flags: &[String]) -> Vec<String> {
    let mut env = container.to_vec();
    for e in flags {
        if let Some(kv) = expand_env(e) {
            env_set(&mut env, kv);
        }
    }
    env
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn volumes_parse_like_docker() {
        let v = parse_volume("/srv:/data:ro").unwrap();
        assert!(v.readonly);
        assert_eq!(v.target, PathBuf::from("/data"));
        assert!(parse_volume("/srv:/data:rx")
            .unwrap_err()
            .to_string()
            .contains("rx"));
        assert!(!v.in_store());
        // A name is a named volume of the store; a path alone an anonymous one.
        let named = parse_volume("data:/data:ro,nocopy").unwrap();
        assert_eq!(named.name.as_deref(), Some("data"));
        assert!(named.readonly && named.nocopy && !named.anonymous);
        assert_eq!(named.kind(), "volume");
        let anon = parse_volume("/scratch").unwrap();
        assert!(anon.anonymous && anon.name.is_none());
        // nocopy only means something for volumes.
        assert!(parse_volume("/srv:/data:nocopy").is_err());
        // A relative source that is not a valid name: Docker's words, no traversal.
        for bad in ["../x:/data", "./x:/data", "a/b:/data", ".x:/data"] {
            let e = parse_volume(bad).unwrap_err().to_string();
            assert!(e.contains("includes invalid characters"), "{bad}: {e}");
        }
        assert!(parse_volume(":/data").is_err());
        assert!(parse_volume("scratch").is_err());
    }

    #[test]
    fn mounts_parse_like_docker() {
        let v = parse_mount("type=volume,source=db,target=/var/db,readonly,volume-nocopy").unwrap();
        assert_eq!(v.name.as_deref(), Some("db"));
        assert!(v.readonly && v.nocopy && v.from_mount_flag);
        let v = parse_mount("target=/x").unwrap();
        assert!(v.anonymous, "type defaults to volume, source to anonymous");
        let v = parse_mount("type=bind,src=/tmp,dst=/x,ro=true,bind-propagation=rprivate").unwrap();
        assert_eq!(v.kind(), "bind");
        assert!(v.readonly);
        let v = parse_mount("type=tmpfs,target=/t,tmpfs-size=64m,tmpfs-mode=1777").unwrap();
        assert_eq!(v.tmpfs.as_deref(), Some("size=67108864,mode=1777"));
        for (bad, why) in [
            ("type=volume,target=/x,foo=1", "unexpected key 'foo'"),
            ("type=volume,source=v", "target is required"),
            ("type=bind,target=/x", "field Source must not be empty"),
            (
                "type=tmpfs,source=a,target=/x",
                "field Source must be empty",
            ),
            (
                "type=bind,source=/tmp,target=/x,bind-propagation=shared",
                "not supported",
            ),
            ("type=tmpfs,target=/x,tmpfs-mode=99", "tmpfs-mode"),
            ("type=tmpfs,target=/x,tmpfs-size=99999999999g", "tmpfs-size"),
            ("type=volume,source=../x,target=/x", "invalid characters"),
            ("type=volume,target=/proc", "not of type proc"),
            (
                "type=volume,target=/x,readonly=maybe",
                "invalid value for readonly",
            ),
        ] {
            let e = parse_mount(bad).unwrap_err().to_string();
            assert!(e.contains(why), "{bad}: {e}");
        }
        let t = parse_tmpfs("/run:size=1m").unwrap();
        assert_eq!(t.tmpfs.as_deref(), Some("size=1m"));
        assert!(parse_tmpfs("run").is_err());
        assert!(parse_tmpfs("/run:exec;rm").is_err());
    }

    #[test]
    fn volume_destinations_docker_and_runc_refuse_are_refused() {
        let msg = |v: &str| parse_volume(v).unwrap_err().to_string();
        assert_eq!(
            msg("/tmp:/"),
            "invalid volume specification: '/tmp:/': invalid mount config for type \"bind\": invalid specification: destination can't be '/'"
        );
        assert!(msg("/tmp:/data/..").contains("destination can't be '/'"));
        assert_eq!(
            msg("/tmp:data"),
            "invalid volume specification: '/tmp:data': invalid mount config for type \"bind\": invalid mount path: 'data' mount path must be absolute"
        );
        assert!(msg("/tmp:/proc")
            .contains("\"/proc\" cannot be mounted because it is not of type proc"));
        assert!(msg("/tmp:/proc/sys")
            .contains("\"/proc/sys\" cannot be mounted because it is inside /proc"));
        assert!(msg("/tmp:/proc/./sysrq-trigger:ro").contains("inside /proc"));
        assert!(msg("/tmp:/dev").contains("does not support a volume over all of it"));
        // Allowed: what runc allows, and the host's own procfs over /proc.
        for ok in [
            "/tmp:/proc/meminfo",
            "/proc:/proc",
            "/tmp:/sys",
            "/tmp:/dev/snd",
            "/tmp:/procfs",
        ] {
            parse_volume(ok).unwrap_or_else(|e| panic!("{ok}: {e}"));
        }
    }

    #[test]
    fn volume_sources_are_created_at_start_and_taken_back() {
        let dir = tempfile::tempdir().unwrap();
        let v = parse_volume(&format!("{}/a/b/c:/data", dir.path().display())).unwrap();
        assert!(!dir.path().join("a").exists(), "parsing creates nothing");
        let made = create_volume_sources(std::slice::from_ref(&v)).unwrap();
        assert!(dir.path().join("a/b/c").is_dir());
        assert_eq!(made.len(), 3);
        std::fs::write(dir.path().join("a/kept"), "x").unwrap();
        remove_volume_sources(&made);
        assert!(!dir.path().join("a/b").exists());
        assert!(
            dir.path().join("a/kept").exists(),
            "a directory with content stays"
        );
    }

    #[test]
    fn users_resolve_from_the_image() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("etc")).unwrap();
        std::fs::write(
            dir.path().join("etc/passwd"),
            "root:x:0:0:root:/root:/bin/sh\nstudent:x:1000:1000::/home/student:/bin/sh\n",
        )
        .unwrap();
        std::fs::write(
            dir.path().join("etc/group"),
            "root:x:0:\nstudent:x:1000:\nwheel:x:10:student\n",
        )
        .unwrap();
        let layers = vec![dir.path().to_path_buf()];
        let (u, home) = resolve_user("student", &layers).unwrap();
        assert_eq!(
            (u.uid, u.gid, u.additional_gids.clone()),
            (1000, 1000, vec![10])
        );
        assert_eq!(home.as_deref(), Some("/home/student"));
        let (u, _) = resolve_user("1000:10", &layers).unwrap();
        assert_eq!((u.uid, u.gid), (1000, 10));
        let (u, _) = resolve_user("4242", &layers).unwrap();
        assert_eq!((u.uid, u.gid), (4242, 0));
        assert_eq!(
            resolve_user("nobody-here", &layers)
                .unwrap_err()
                .to_string(),
            "unable to find user nobody-here: no matching entries in passwd file"
        );
    }

    fn layer_with(files: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for (path, text) in files {
            let p = dir.path().join(path);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, text).unwrap();
        }
        dir
    }

    #[test]
    fn passwd_whited_out_in_an_upper_layer_is_gone() {
        let lower = layer_with(&[("etc/passwd", "student:x:1000:1000::/home/s:/bin/sh\n")]);
        let upper = layer_with(&[]);
        std::fs::create_dir(upper.path().join("etc")).unwrap();
        // What unpack makes of `.wh.passwd`: a 0/0 character device (needs root).
        nix::sys::stat::mknod(
            &upper.path().join("etc/passwd"),
            nix::sys::stat::SFlag::S_IFCHR,
            nix::sys::stat::Mode::empty(),
            0,
        )
        .expect("mknod a whiteout (run the unit tests as root)");
        let layers = vec![lower.path().to_path_buf(), upper.path().to_path_buf()];
        assert_eq!(
            image_file(&layers[..1], "etc/passwd")
                .unwrap()
                .unwrap()
                .len(),
            37
        );
        assert_eq!(image_file(&layers, "etc/passwd").unwrap(), None);
        assert!(resolve_user("student", &layers).is_err());
        assert_eq!(resolve_user("1000", &layers).unwrap().0.uid, 1000);
    }

    #[test]
    fn an_opaque_etc_hides_the_lower_passwd() {
        let lower = layer_with(&[("etc/passwd", "student:x:1000:1000::/home/s:/bin/sh\n")]);
        let upper = layer_with(&[("etc/hostname", "x\n")]);
        xattr_opaque(&upper.path().join("etc"));
        let layers = vec![lower.path().to_path_buf(), upper.path().to_path_buf()];
        assert_eq!(image_file(&layers, "etc/passwd").unwrap(), None);
    }

    fn xattr_opaque(dir: &Path) {
        let c = std::ffi::CString::new(dir.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: valid C strings and a live one-byte value. Not nix: 0.29 has no xattr calls.
        let rc = unsafe {
            libc::setxattr(
                c.as_ptr(),
                c"trusted.overlay.opaque".as_ptr(),
                b"y".as_ptr().cast(),
                1,
                0,
            )
        };
        assert_eq!(
            rc, 0,
            "set trusted.overlay.opaque (run the unit tests as root)"
        );
    }

    fn link(layer: &tempfile::TempDir, path: &str, target: impl AsRef<Path>) {
        let p = layer.path().join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::os::unix::fs::symlink(target, p).unwrap();
    }

    fn uid_of(layers: &[&tempfile::TempDir], user: &str) -> u32 {
        let layers: Vec<PathBuf> = layers.iter().map(|l| l.path().to_path_buf()).collect();
        resolve_user(user, &layers).unwrap().0.uid
    }

    /// Debian's base-passwd style: `etc/passwd -> ../usr/share/base-passwd/passwd` made every
    /// run of the image fail (a symlink anywhere on the path was refused).
    #[test]
    fn passwd_as_a_relative_link_inside_the_image_is_followed() {
        let l = layer_with(&[(
            "usr/share/base-passwd/passwd",
            "student:x:1000:1000::/:/bin/sh\n",
        )]);
        link(&l, "etc/passwd", "../usr/share/base-passwd/passwd");
        assert_eq!(uid_of(&[&l], "student"), 1000);
        // `..` past the root stays at the image's root, as in the container.
        let up = layer_with(&[("usr/passwd", "up:x:1001:1001::/:/bin/sh\n")]);
        link(&up, "etc/passwd", "../../../../../usr/passwd");
        assert_eq!(uid_of(&[&up], "up"), 1001);
    }

    /// `/etc -> usr/etc` (merged-/usr images): the parent directory is the link, and its
    /// target comes from another layer.
    #[test]
    fn etc_as_a_link_to_usr_etc_is_followed_across_layers() {
        let lower = layer_with(&[("usr/etc/passwd", "merged:x:1002:1002::/:/bin/sh\n")]);
        let upper = layer_with(&[]);
        link(&upper, "etc", "usr/etc");
        assert_eq!(uid_of(&[&lower, &upper], "merged"), 1002);
        // The link's target whited out above it: the file is gone, as in the container.
        let wh = layer_with(&[]);
        std::fs::create_dir_all(wh.path().join("usr/etc")).unwrap();
        nix::sys::stat::mknod(
            &wh.path().join("usr/etc/passwd"),
            nix::sys::stat::SFlag::S_IFCHR,
            nix::sys::stat::Mode::empty(),
            0,
        )
        .expect("mknod a whiteout (run the unit tests as root)");
        let layers = [&lower, &upper, &wh].map(|l| l.path().to_path_buf());
        assert_eq!(image_file(&layers, "etc/passwd").unwrap(), None);
    }

    /// An absolute target is a path of the image, never of the host: the image's own copy of
    /// that path is read, or nothing.
    #[test]
    fn passwd_link_to_an_absolute_host_path_reads_the_image_not_the_host() {
        let host = layer_with(&[("secret", "host:x:4242:4242::/:/bin/sh\n")]);
        let target = host.path().join("secret");
        let l = layer_with(&[]);
        link(&l, "etc/passwd", &target);
        let layers = [l.path().to_path_buf()];
        assert_eq!(image_file(&layers, "etc/passwd").unwrap(), None);
        assert!(resolve_user("host", &layers).is_err());
        let inside = target.strip_prefix("/").unwrap().to_str().unwrap();
        let copy = layer_with(&[(inside, "image:x:777:777::/:/bin/sh\n")]);
        assert_eq!(uid_of(&[&copy, &l], "image"), 777);
        // Same for a link in a parent: /etc -> <host dir>.
        let parent = layer_with(&[]);
        link(&parent, "etc", host.path());
        assert_eq!(
            image_file(&[parent.path().to_path_buf()], "etc/secret").unwrap(),
            None
        );
    }

    #[test]
    fn a_symlink_loop_is_a_clear_error() {
        let l = layer_with(&[]);
        link(&l, "etc/passwd", "passwd2");
        link(&l, "etc/passwd2", "/etc/passwd");
        let err = image_file(&[l.path().to_path_buf()], "etc/passwd")
            .unwrap_err()
            .to_string();
        assert!(err.contains("more than 40 symlinks"), "{err}");
    }

    #[test]
    fn passwd_as_a_fifo_or_device_is_refused_not_opened() {
        let fifo = layer_with(&[]);
        std::fs::create_dir(fifo.path().join("etc")).unwrap();
        nix::unistd::mkfifo(
            &fifo.path().join("etc/passwd"),
            nix::sys::stat::Mode::S_IRWXU,
        )
        .unwrap();
        // Must return at once: a FIFO opened for reading would wait for a writer forever.
        let err = resolve_user("0", &[fifo.path().to_path_buf()])
            .unwrap_err()
            .to_string();
        assert!(err.contains("it is a FIFO"), "{err}");

        // The image's own /dev/zero, reached through a link: refused, not read forever.
        let zero = layer_with(&[]);
        std::fs::create_dir(zero.path().join("dev")).unwrap();
        nix::sys::stat::mknod(
            &zero.path().join("dev/zero"),
            nix::sys::stat::SFlag::S_IFCHR,
            nix::sys::stat::Mode::S_IRUSR,
            libc::makedev(1, 5),
        )
        .unwrap();
        link(&zero, "etc/passwd", "/dev/zero");
        let err = image_file(&[zero.path().to_path_buf()], "etc/passwd")
            .unwrap_err()
            .to_string();
        assert!(err.contains("it is a device node"), "{err}");

        let dir = layer_with(&[("etc/passwd/x", "")]);
        let err = image_file(&[dir.path().to_path_buf()], "etc/passwd")
            .unwrap_err()
            .to_string();
        assert!(err.contains("it is a directory"), "{err}");
    }

    #[test]
    fn a_passwd_bigger_than_the_cap_is_refused() {
        let big = layer_with(&[]);
        std::fs::create_dir(big.path().join("etc")).unwrap();
        let f = std::fs::File::create(big.path().join("etc/passwd")).unwrap();
        f.set_len(MAX_ETC_FILE + 1).unwrap();
        let err = image_file(&[big.path().to_path_buf()], "etc/passwd")
            .unwrap_err()
            .to_string();
        assert!(err.contains("too big"), "{err}");
    }
}
