//! Flags + config file + image config → one validated [`RunSpec`] (runc's `specconv` idea).
//!
//! Every check of the user's input happens here, before anything is created, so a bad flag
//! costs nothing and leaves nothing behind. Each error says what to do instead.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use crate::cli::RunArgs;
use crate::commands::Context;
use crate::error::{Error, Result};
use crate::spec::{Limits, Namespaces, NetworkMode, RunSpec, User, Volume};
use crate::sys::fs as safefs;

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

/// Parse `-v HOST:CONTAINER[:ro|rw]`.
pub fn parse_volume(s: &str) -> Result<Volume> {
    let parts: Vec<&str> = s.split(':').collect();
    let (src, dst, mode) = match parts.as_slice() {
        [src, dst] => (*src, *dst, "rw"),
        [src, dst, mode] => (*src, *dst, *mode),
        _ => {
            return Err(Error::Usage(format!(
                "invalid volume {s:?}: use HOST-DIR:CONTAINER-DIR[:ro]"
            )))
        }
    };
    if !src.starts_with('/') {
        return Err(Error::Usage(format!(
            "invalid volume {s:?}: named volumes are not supported yet, give an absolute host path like /srv/data:{dst}"
        )));
    }
    if !dst.starts_with('/') {
        return Err(Error::Usage(format!(
            "invalid volume {s:?}: the container path {dst:?} must be absolute"
        )));
    }
    let readonly = match mode {
        "ro" => true,
        "rw" | "" => false,
        m => {
            return Err(Error::Usage(format!(
                "invalid volume {s:?}: mode {m:?} is not ro or rw"
            )))
        }
    };
    Ok(Volume {
        source: PathBuf::from(src),
        target: PathBuf::from(dst),
        readonly,
    })
}

/// The most of an image's /etc/passwd or /etc/group that is read: an account database is a
/// few kilobytes, and a file that never ends must not fill dockling's memory.
pub const MAX_ETC_FILE: u64 = 4 << 20;

/// Why an account file of the image cannot be read: the one error of every bad case.
fn bad_etc_file(path: &str, why: &str) -> Error {
    Error::Usage(format!(
        "read the image's /{path}: it is {why}; the account files are read only as regular files inside the image (never through a link, at most {} MiB), so fix the image",
        MAX_ETC_FILE >> 20
    ))
}

/// A file of the image as the container will see it, read from the layers (top first) the
/// way overlayfs merges them: a whiteout or a non-directory in place of a parent hides it,
/// an opaque parent directory hides the layers below. Every lookup is an `openat2` inside
/// one layer with `RESOLVE_IN_ROOT|RESOLVE_NO_SYMLINKS`: a symlink is refused rather than
/// followed (it could name a host file, or `/dev/zero`), and only a regular file is opened
/// for reading (a FIFO would hang, a device node could do anything). `None`: not there.
pub fn image_file(layers: &[PathBuf], path: &str) -> Result<Option<String>> {
    use nix::errno::Errno;
    use std::io::Read;
    use std::os::fd::AsFd;
    use std::os::unix::fs::MetadataExt;

    let resolve = safefs::IN_ROOT | libc::RESOLVE_NO_SYMLINKS;
    let errno = |e: &std::io::Error| Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO));
    let rel = Path::new(path);
    let parents: Vec<&Path> = rel.ancestors().skip(1).collect::<Vec<_>>();
    'layers: for layer in layers.iter().rev() {
        let root = match safefs::open_root(layer) {
            Ok(root) => root,
            // Only a dry run (`explain`, which unpacks nothing) gets here with a layer not
            // unpacked yet: it reads what the layers that are there say.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue 'layers,
            Err(e) => return Err(Error::io("open layer", layer)(e)),
        };
        let mut opaque = false;
        for dir in parents.iter().rev().filter(|d| !d.as_os_str().is_empty()) {
            let fd = match safefs::openat2(
                root.as_fd(),
                dir,
                libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW,
                0,
                resolve,
            ) {
                Ok(fd) => fd,
                Err(e) => match errno(&e) {
                    Errno::ENOENT => continue 'layers,
                    // A whiteout (a 0/0 character device) or a file in place of the
                    // directory: the layers below are hidden. O_DIRECTORY is checked before
                    // any device would be opened.
                    Errno::ENOTDIR => return Ok(None),
                    Errno::ELOOP => {
                        return Err(bad_etc_file(
                            path,
                            &format!("under a symlink (/{} is a link)", dir.display()),
                        ))
                    }
                    _ => return Err(Error::io("open", layer.join(dir))(e)),
                },
            };
            // "/." makes the lookup go through the descriptor's magic link to the directory
            // itself: the l-variant of getxattr would read the link's own attributes.
            let named = safefs::fd_path(&fd).join(".");
            opaque |= safefs::get_xattr(&named, "trusted.overlay.opaque").as_deref() == Some(b"y");
        }
        let found = safefs::openat2(
            root.as_fd(),
            rel,
            libc::O_PATH | libc::O_NOFOLLOW,
            0,
            resolve,
        );
        let md = match found {
            Ok(fd) => std::fs::File::from(fd)
                .metadata()
                .map_err(Error::io("stat", layer.join(rel)))?,
            Err(e) => match errno(&e) {
                Errno::ENOENT if opaque => return Ok(None),
                Errno::ENOENT => continue 'layers,
                Errno::ELOOP => return Err(bad_etc_file(path, "a symlink")),
                _ => return Err(Error::io("open", layer.join(rel))(e)),
            },
        };
        let kind = md.mode() & libc::S_IFMT;
        if kind == libc::S_IFCHR && md.rdev() == 0 {
            return Ok(None); // whited out in this layer
        }
        if kind != libc::S_IFREG {
            let what = match kind {
                // O_PATH|O_NOFOLLOW opens a final symlink itself (openat2(2)).
                libc::S_IFLNK => "a symlink",
                libc::S_IFIFO => "a FIFO",
                libc::S_IFCHR | libc::S_IFBLK => "a device node",
                libc::S_IFDIR => "a directory",
                libc::S_IFSOCK => "a socket",
                _ => "not a regular file",
            };
            return Err(bad_etc_file(path, what));
        }
        // Only now opened for reading, still without following anything; O_NONBLOCK in case
        // the file was swapped for a FIFO since the check (it is checked again).
        let fd = safefs::openat2(
            root.as_fd(),
            rel,
            libc::O_RDONLY | libc::O_NOFOLLOW | libc::O_NONBLOCK,
            0,
            resolve,
        )
        .map_err(Error::io("open", layer.join(rel)))?;
        let file = std::fs::File::from(fd);
        let again = file
            .metadata()
            .map_err(Error::io("stat", layer.join(rel)))?;
        if !again.is_file() || again.ino() != md.ino() || again.dev() != md.dev() {
            return Err(bad_etc_file(path, "changing while it is read"));
        }
        let mut text = Vec::new();
        file.take(MAX_ETC_FILE + 1)
            .read_to_end(&mut text)
            .map_err(Error::io("read", layer.join(rel)))?;
        if text.len() as u64 > MAX_ETC_FILE {
            return Err(bad_etc_file(path, "too big"));
        }
        return Ok(Some(String::from_utf8_lossy(&text).into_owned()));
    }
    Ok(None)
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
            return Err(Error::Usage(format!(
                "unable to find user {u}: no matching entries in passwd file"
            )));
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
                .ok_or_else(|| {
                    Error::Usage(format!(
                        "unable to find group {g}: no matching entries in group file"
                    ))
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
    ctx: &Context,
    args: &RunArgs,
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
        return Err(Error::Usage(format!(
            "no command specified: image {} has no CMD or ENTRYPOINT, give one after the image name",
            image.reference
        )));
    }

    let pid = own_or_host("pid", args.pid.as_deref(), "private")?;
    let uts = own_or_host("uts", args.uts.as_deref(), "private")?;
    let ipc = own_or_host("ipc", args.ipc.as_deref(), "private")?;
    let cgroupns = own_or_host("cgroupns", args.cgroupns.as_deref(), "private")?;
    let network = match args.network.as_deref().or(ctx.config.network.as_deref()).unwrap_or("none") {
        "none" => NetworkMode::None,
        "host" => NetworkMode::Host,
        "bridge" | "default" => {
            return Err(Error::Usage(
                "--network bridge is not available yet in dockling: use --network none (loopback only) or --network host".into(),
            ))
        }
        other => return Err(Error::Usage(format!("network {other} not found: use none or host"))),
    };
    if !uts && args.hostname.is_some() {
        return Err(Error::Usage(
            "conflicting options: --hostname and --uts host (the host's name is shared)".into(),
        ));
    }
    let hostname = match (&args.hostname, uts) {
        (Some(h), _) => h.clone(),
        (None, true) => id[..12].to_string(),
        (None, false) => nix::unistd::gethostname()
            .map(|h| h.to_string_lossy().into_owned())
            .unwrap_or_default(),
    };
    if args.tty && args.interactive && !std::io::stdin().is_terminal() {
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
            env_set(&mut env, expand_env(line));
        }
    }
    for e in &args.env {
        env_set(&mut env, expand_env(e));
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

    let volumes = args
        .volume
        .iter()
        .map(|v| parse_volume(v))
        .collect::<Result<Vec<_>>>()?;
    for v in &volumes {
        if !v.source.exists() {
            std::fs::create_dir_all(&v.source)
                .map_err(Error::io("create volume directory", &v.source))?;
        }
    }

    let cgroups_on = !args.no_cgroups && ctx.config.cgroups != Some(false);
    let limits = Limits {
        memory: args
            .memory
            .as_deref()
            .map(crate::cgroups::parse_memory)
            .transpose()?,
        cpus: args.cpus,
        pids: args.pids_limit,
    };
    if let Some(c) = args.cpus {
        let n = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1) as f64;
        if c <= 0.0 || c > n {
            return Err(Error::Usage(format!(
                "range of CPUs is from 0.01 to {n:.2}, as there are only {n} CPUs available"
            )));
        }
    }
    if !cgroups_on && (limits.memory.is_some() || limits.cpus.is_some() || limits.pids.is_some()) {
        return Err(Error::Usage(
            "--memory, --cpus and --pids-limit need cgroups: drop --no-cgroups".into(),
        ));
    }

    let capabilities =
        crate::runtime::caps::resolve(args.privileged, &args.cap_add, &args.cap_drop)?;
    // As Docker: the default profile unless --privileged; an explicit profile applies even
    // with --privileged; `unconfined` switches it off.
    let mut seccomp_profile = (!args.privileged).then(crate::runtime::seccomp::default::profile);
    let mut no_new_privileges = false;
    for opt in &args.security_opt {
        let seccomp_arg = opt
            .strip_prefix("seccomp=")
            .or_else(|| opt.strip_prefix("seccomp:"));
        match (opt.as_str(), seccomp_arg) {
            (_, Some("unconfined")) => seccomp_profile = None,
            (_, Some("builtin")) => seccomp_profile = Some(crate::runtime::seccomp::default::profile()),
            (_, Some(path)) => {
                seccomp_profile = Some(crate::runtime::seccomp::profile::load(Path::new(path))?)
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
            net: network == NetworkMode::None,
            cgroup: cgroupns,
        },
        network,
        layers_mode: args.layers.or(ctx.config.layers).unwrap_or_default(),
        rootfs_mode: args.rootfs.or(ctx.config.rootfs).unwrap_or_default(),
        cgroup: cgroups_on.then_some(limits),
        privileged: args.privileged,
        capabilities,
        volumes,
        read_only: args.read_only,
        bundle: bundle.to_path_buf(),
    })
}

/// `-e NAME` takes the value from dockling's own environment, as Docker does.
fn expand_env(e: &str) -> String {
    if e.contains('=') {
        e.to_string()
    } else {
        format!("{e}={}", std::env::var(e).unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn volumes_parse_like_docker() {
        let v = parse_volume("/srv:/data:ro").unwrap();
        assert!(v.readonly);
        assert_eq!(v.target, PathBuf::from("/data"));
        assert!(parse_volume("data:/data")
            .unwrap_err()
            .to_string()
            .contains("absolute host path"));
        assert!(parse_volume("/srv:/data:rx")
            .unwrap_err()
            .to_string()
            .contains("rx"));
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
        // SAFETY: valid C strings and a live one-byte value.
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

    #[test]
    fn passwd_as_a_symlink_fifo_or_device_is_refused_not_followed() {
        let host = layer_with(&[("secret", "root:x:4242:4242::/:/bin/sh\n")]);
        let link = layer_with(&[]);
        std::fs::create_dir(link.path().join("etc")).unwrap();
        std::os::unix::fs::symlink(host.path().join("secret"), link.path().join("etc/passwd"))
            .unwrap();
        let err = image_file(&[link.path().to_path_buf()], "etc/passwd")
            .unwrap_err()
            .to_string();
        assert!(err.contains("it is a symlink"), "{err}");

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

        let zero = layer_with(&[]);
        std::fs::create_dir(zero.path().join("etc")).unwrap();
        nix::sys::stat::mknod(
            &zero.path().join("etc/passwd"),
            nix::sys::stat::SFlag::S_IFCHR,
            nix::sys::stat::Mode::S_IRUSR,
            libc::makedev(1, 5),
        )
        .unwrap();
        let err = image_file(&[zero.path().to_path_buf()], "etc/passwd")
            .unwrap_err()
            .to_string();
        assert!(err.contains("it is a device node"), "{err}");
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
