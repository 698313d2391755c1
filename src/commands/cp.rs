//! `dockling cp`: files and directories between a container and the host, as `docker cp`.
//!
//! The container's files are reached through one directory fd of its root, never through a
//! host path: for a running container `/proc/<pid>/root` of its first process (the host's
//! `/proc` names that process's root directory in its own mount namespace, where the overlay
//! is mounted; its volumes are visible below it); for a stopped one a child process unshares a
//! mount namespace, mounts the container's overlay on its `rootfs/` there (`nodev,nosuid`),
//! and `dockling` opens `/proc/<child>/cwd` once the child stands in it. The child then ends;
//! the mount, detached with its namespace, lives on for as long as the fd does (the engine
//! lock is held meanwhile, so the container cannot start on the same upper directory). A
//! `--layers copy` container's root is a plain directory. Nothing of the container is run or
//! loaded: no exec, no setns into it, no NSS lookups of its files (CVE-2019-14271).
//!
//! Every path inside the container is resolved inside that root: `openat2(RESOLVE_IN_ROOT |
//! RESOLVE_NO_MAGICLINKS)`, so `/tmp/x -> /etc` leads to the container's `/etc`
//! (CVE-2018-15664), and the copy itself is a tar stream walked and written through fds
//! ([`crate::archive`]). Docker's path rules decide where things land: an existing directory
//! receives the source by its name (or its contents for `src/.`), a missing destination is
//! created (its parent must exist), an existing file is overwritten by a file.

use std::ffi::OsString;
use std::io::Write;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::mount::MsFlags;
use nix::sched::CloneFlags;

use crate::archive::{self, ExtractOptions};
use crate::cli::CpArgs;
use crate::commands::{require_root, Context};
use crate::container::{Container, ContainerError, Containers, EngineLock};
use crate::error::{Error, Result};
use crate::runtime::channel::{self, Message};
use crate::spec::LayersMode;
use crate::sys::fs as safefs;
use crate::sys::{linux::Linux, Sys};
use crate::trace::Tracer;

/// One side of a copy, as written on the command line.
#[derive(Debug, PartialEq, Eq)]
enum Endpoint {
    /// A path on this host (`-`: a tar stream on stdin or stdout).
    Local(String),
    /// `CONTAINER:PATH`.
    Container(String, String),
}

/// Docker's split: an absolute path, or one whose part before the first `:` starts with `.`,
/// is local (`./file:name`); otherwise `NAME:PATH` names a container.
fn endpoint(arg: &str) -> Endpoint {
    if arg.starts_with('/') || arg == "-" {
        return Endpoint::Local(arg.into());
    }
    match arg.split_once(':') {
        Some((c, p)) if !c.starts_with('.') && !c.is_empty() => {
            Endpoint::Container(c.into(), p.into())
        }
        _ => Endpoint::Local(arg.into()),
    }
}

/// A path's spelling that Docker's rules look at: a trailing `/`, and a final `/.`.
#[derive(Debug, Clone, Copy)]
struct Spelling {
    trailing_sep: bool,
    dot: bool,
}

fn spelling(p: &str) -> Spelling {
    Spelling {
        trailing_sep: p.ends_with('/'),
        dot: p == "." || p.ends_with("/."),
    }
}

/// The tree a path is looked up in: the container's root, or the host's `/`.
struct Tree<'s> {
    /// The seam for the container's lookups (traced); `None` for the host's own paths, which
    /// are the user's files, not the container's (looked up untraced, like the store's).
    sys: Option<&'s Sys>,
    root: OwnedFd,
    /// How errors name the tree: `in container web`, `on this host`.
    label: String,
}

impl Tree<'_> {
    /// Open `rel` (relative to the tree's root) inside the root.
    fn open(&self, rel: &Path, flags: i32) -> std::io::Result<OwnedFd> {
        self.openat2(self.root.as_fd(), rel, flags, safefs::IN_ROOT)
    }

    fn openat2(
        &self,
        dir: BorrowedFd<'_>,
        p: &Path,
        flags: i32,
        resolve: u64,
    ) -> std::io::Result<OwnedFd> {
        match self.sys {
            Some(sys) => sys
                .openat2(dir, p, flags, 0, resolve)
                .map_err(|e| std::io::Error::from_raw_os_error(e.errno as i32)),
            None => safefs::openat2(dir, p, flags, 0, resolve),
        }
    }

    /// Follow every symlink of `rel` inside the root (missing components kept); the root
    /// itself is `.`.
    fn resolve(&self, rel: &Path) -> std::io::Result<PathBuf> {
        let resolved =
            safefs::resolve_in_root_with(self.root.as_fd(), rel, |dir, p, flags, resolve| {
                self.openat2(dir, p, flags, resolve)
            })?;
        Ok(if resolved.as_os_str().is_empty() {
            PathBuf::from(".")
        } else {
            resolved
        })
    }
}

/// File type bits of an fd.
fn kind(fd: BorrowedFd<'_>) -> std::io::Result<u32> {
    Ok(nix::sys::stat::fstat(std::os::fd::AsRawFd::as_raw_fd(&fd))?.st_mode & libc::S_IFMT)
}

fn failed(what: String) -> Error {
    Error::Usage(what)
}

/// The source: an `O_PATH` fd of it (a final symlink not followed unless `-L`, `/` or `/.`),
/// whether it is a directory, and the name its copy gets (`None`: its contents).
fn open_source(
    tree: &Tree<'_>,
    shown: &str,
    path: &Path,
    follow_link: bool,
) -> Result<(OwnedFd, bool, Option<OsString>)> {
    let sp = spelling(shown);
    let rel = safefs::relative(path);
    let missing = |e: std::io::Error| {
        if matches!(e.raw_os_error(), Some(libc::ENOENT | libc::ENOTDIR)) {
            failed(format!("could not find the file {shown} {}", tree.label))
        } else {
            failed(format!("{shown} {}: {e}", tree.label))
        }
    };
    let name = rel
        .file_name()
        .filter(|_| rel != Path::new("."))
        .map(|n| n.to_os_string());
    let target = match &name {
        Some(n) if !(follow_link || sp.trailing_sep || sp.dot) => tree
            .resolve(rel.parent().unwrap_or(Path::new(".")))
            .map_err(missing)?
            .join(n),
        _ => tree.resolve(&rel).map_err(missing)?,
    };
    let fd = tree
        .open(&target, libc::O_PATH | libc::O_NOFOLLOW)
        .map_err(missing)?;
    let is_dir = kind(fd.as_fd()).map_err(missing)? == libc::S_IFDIR;
    if (sp.trailing_sep || sp.dot) && !is_dir {
        return Err(failed(format!(
            "{shown} {}: not a directory (drop the trailing / or /.)",
            tree.label
        )));
    }
    // `src/.` (or the root itself): the contents, not the directory.
    let name = if is_dir && (sp.dot || name.is_none()) {
        None
    } else {
        name
    };
    Ok((fd, is_dir, name))
}

/// Where a copy lands: the directory to extract into (relative to the tree's root) and the
/// name the source gets there (`None`: its contents go straight in).
fn destination(
    tree: &Tree<'_>,
    shown: &str,
    path: &Path,
    src_is_dir: bool,
    src_name: Option<OsString>,
) -> Result<(PathBuf, Option<OsString>)> {
    let sp = spelling(shown);
    let err = |e: std::io::Error| failed(format!("{shown} {}: {e}", tree.label));
    let resolved = tree.resolve(&safefs::relative(path)).map_err(err)?;
    let existing = match tree.open(&resolved, libc::O_PATH | libc::O_NOFOLLOW) {
        Ok(fd) => Some(kind(fd.as_fd()).map_err(err)?),
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => None,
        Err(e) => return Err(err(e)),
    };
    match existing {
        Some(libc::S_IFDIR) => Ok((resolved, src_name)),
        Some(_) if src_is_dir => Err(failed(format!(
            "cannot copy a directory to {shown} {}: it is a file",
            tree.label
        ))),
        Some(_) if sp.trailing_sep || sp.dot => {
            Err(failed(format!("{shown} {}: not a directory", tree.label)))
        }
        Some(_) => split(&resolved, shown, tree),
        None if !src_is_dir && (sp.trailing_sep || sp.dot) => Err(failed(format!(
            "the destination directory {shown} must exist {} (the path ends with /)",
            tree.label
        ))),
        None => {
            let (parent, name) = split(&resolved, shown, tree)?;
            match tree.open(&parent, libc::O_PATH | libc::O_DIRECTORY) {
                Ok(_) => Ok((parent, name)),
                Err(e) if matches!(e.raw_os_error(), Some(libc::ENOENT | libc::ENOTDIR)) => {
                    let p = Path::new(shown.trim_end_matches('/'))
                        .parent()
                        .filter(|p| !p.as_os_str().is_empty())
                        .unwrap_or(Path::new("."));
                    Err(failed(format!(
                        "cannot copy to {shown} {}: its parent directory {} does not exist (create it first)",
                        tree.label,
                        p.display()
                    )))
                }
                Err(e) => Err(err(e)),
            }
        }
    }
}

/// A resolved path's directory and final name.
fn split(resolved: &Path, shown: &str, tree: &Tree<'_>) -> Result<(PathBuf, Option<OsString>)> {
    match resolved.file_name() {
        Some(n) if archive::plain_name(n) => Ok((
            resolved.parent().unwrap_or(Path::new(".")).to_path_buf(),
            Some(n.to_os_string()),
        )),
        _ => Err(failed(format!("{shown} {}: not a file name", tree.label))),
    }
}

/// The container's root directory as an fd, and the engine lock held while it is used (a
/// stopped container must not start on the upper directory the copy writes).
fn container_root(
    sys: &Sys,
    containers: &Containers,
    c: &Container,
) -> Result<(OwnedFd, Option<EngineLock>)> {
    if let Some(fd) = running_root(sys, c)? {
        return Ok((fd, None));
    }
    let Some(lock) = containers.try_lock_engine(&c.spec.id)? else {
        // Its engine holds it: starting, running, or being removed right now.
        let again = containers.find(&c.spec.id)?;
        return match running_root(sys, &again)? {
            Some(fd) => Ok((fd, None)),
            None => Err(ContainerError::Kept {
                id: c.spec.id.clone(),
            }
            .into()),
        };
    };
    // It may have started between the look and the lock.
    let c = containers.find(&c.spec.id)?;
    if let Some(fd) = running_root(sys, &c)? {
        return Ok((fd, None));
    }
    let spec = &c.spec;
    let rootfs = spec.rootfs();
    let fd = match spec.layers_mode {
        LayersMode::Copy => {
            sys.open(&rootfs, libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC)?
        }
        LayersMode::Overlay | LayersMode::Erofs => {
            if spec.layers_mode == LayersMode::Erofs {
                crate::layers::erofs::mount_layers(sys, &spec.layers)?;
            }
            // As a start makes them: a container that never ran gets its upper directory (its
            // `/`) here, 0755 whatever the user's umask.
            sys.run(crate::sys::Call::Umask { mask: 0o022 })?;
            let data = crate::runtime::overlay_dirs(sys, spec)?;
            mount_stopped(sys, &rootfs, &data, MsFlags::empty())?
        }
    };
    Ok((fd, Some(lock)))
}

/// `/proc/<pid>/root` of a running container's first process, checked to still be it.
fn running_root(sys: &Sys, c: &Container) -> Result<Option<OwnedFd>> {
    let crate::container::Status::Running { pid, pid_start } = c.status else {
        return Ok(None);
    };
    if !c.is_alive() {
        return Ok(None);
    }
    sys.tracer.set_var("pid", pid.to_string());
    let fd = match sys.open(
        Path::new(&format!("/proc/{pid}/root")),
        libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC,
    ) {
        Ok(fd) => fd,
        Err(e) if e.errno == nix::errno::Errno::ENOENT => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    // Opened, then checked: a pid reused meanwhile is not the container.
    Ok((crate::container::process_start_time(pid) == Some(pid_start)).then_some(fd))
}

/// Mount a stopped container's overlay in a mount namespace of a child's own and open it
/// (`extra`: more mount flags, `MS_RDONLY` for `export`).
pub(crate) fn mount_stopped(
    sys: &Sys,
    rootfs: &Path,
    data: &str,
    extra: MsFlags,
) -> Result<OwnedFd> {
    let (parent_end, child_end) = channel::pair(sys)?;
    let child = sys.clone_process(CloneFlags::empty())?;
    if child == 0 {
        drop(parent_end);
        sys.tracer.set_process("mount");
        let done = (|| -> std::result::Result<(), crate::sys::SysError> {
            sys.unshare(CloneFlags::CLONE_NEWNS)?;
            // Nothing mounted here reaches the host's namespace.
            sys.mount(
                None,
                Path::new("/"),
                None,
                MsFlags::MS_REC | MsFlags::MS_PRIVATE,
                None,
            )?;
            // nodev, nosuid: the copy only reads and writes files; a device node in the
            // container's files must not open a host device.
            sys.mount(
                Some(Path::new("overlay")),
                rootfs,
                Some("overlay"),
                MsFlags::MS_NODEV | MsFlags::MS_NOSUID | extra,
                Some(data),
            )?;
            sys.run(crate::sys::Call::Chdir {
                path: rootfs.to_path_buf(),
            })
        })();
        let msg = match done {
            Ok(()) => Message::Go(0),
            Err(e) => Message::Failed(125, e.to_string()),
        };
        sys.tracer.flush();
        if child_end.send(&msg).is_ok() && matches!(msg, Message::Go(_)) {
            // Stay until dockling has opened our working directory (it closes its end).
            let _ = child_end.recv();
        }
        // SAFETY: ends the forked child without running the parent's exit handlers.
        unsafe { libc::_exit(0) }
    }
    drop(child_end);
    let got = parent_end
        .recv()
        .map_err(Error::io("receive", "cp channel"));
    let opened = match got {
        Ok(Message::Go(_)) => sys
            .open(
                Path::new(&format!("/proc/{child}/cwd")),
                libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC,
            )
            .map_err(Error::from),
        Ok(Message::Failed(_, text)) => Err(crate::runtime::RuntimeError::ContainerFailed {
            message: format!("mounting the container's files: {text}"),
        }
        .into()),
        Ok(other) => Err(crate::runtime::RuntimeError::UnexpectedMessage {
            message: format!("{other:?}"),
        }
        .into()),
        Err(e) => Err(e),
    };
    drop(parent_end);
    let _ = sys.wait4(child);
    opened
}

/// `dockling cp`. Errors exit 1, as Docker's do.
pub fn run(ctx: &Context, args: &CpArgs) -> Result<i32> {
    match copy(ctx, args) {
        Ok(()) => Ok(0),
        Err(e @ Error::NeedsRoot { .. }) => Err(e),
        Err(e) => {
            eprintln!("dockling: {e}");
            Ok(1)
        }
    }
}

fn copy(ctx: &Context, args: &CpArgs) -> Result<()> {
    let (src, dest) = (endpoint(&args.src), endpoint(&args.dest));
    let (name, into) = match (&src, &dest) {
        (Endpoint::Container(..), Endpoint::Container(..)) => {
            return Err(failed("copying between containers is not supported".into()))
        }
        (Endpoint::Local(_), Endpoint::Local(_)) => {
            return Err(failed(
                "must specify at least one container source (CONTAINER:PATH)".into(),
            ))
        }
        (Endpoint::Local(_), Endpoint::Container(c, _)) => (c.clone(), true),
        (Endpoint::Container(c, _), Endpoint::Local(_)) => (c.clone(), false),
    };
    require_root("cp")?;
    let sys = Sys::new(Box::new(Linux), Tracer::new(args.trace, false));
    let containers = Containers::open(&ctx.root)?;
    crate::commands::rm::reap(ctx, &containers);
    let c = containers.find(&name)?;
    if into && c.spec.read_only {
        return Err(failed(format!(
            "container {name}: its root filesystem is read-only (run --read-only): nothing can be copied into it"
        )));
    }
    let (root, _lock) = container_root(&sys, &containers, &c)?;
    let container = Tree {
        sys: Some(&sys),
        root,
        label: format!("in container {name}"),
    };
    let host = Tree {
        sys: None,
        root: safefs::open_root(Path::new("/")).map_err(Error::io("open", "/"))?,
        label: "on this host".into(),
    };
    let cwd = std::env::current_dir().map_err(Error::io("get", "the working directory"))?;
    let in_container = |p: &str| Path::new("/").join(p);
    match (src, dest) {
        (Endpoint::Local(s), Endpoint::Container(_, d)) => {
            let opts = ExtractOptions {
                owner: if args.archive { None } else { Some((0, 0)) },
                no_chown: false,
                no_devices: false,
            };
            let dpath = in_container(&d);
            if s == "-" {
                // A tar on stdin goes into a directory that exists.
                let fd = container
                    .resolve(&safefs::relative(&dpath))
                    .and_then(|r| container.open(&r, libc::O_PATH | libc::O_DIRECTORY))
                    .map_err(|e| {
                        failed(format!(
                            "the destination {d} {} must be an existing directory for a tar stream: {e}",
                            container.label
                        ))
                    })?;
                let done = archive::extract(std::io::stdin().lock(), fd.as_fd(), &opts)
                    .map_err(|e| failed(format!("copying into {d}: {e}")))?;
                per_file_notes(container.sys, true, &done);
                return Ok(());
            }
            let (fd, is_dir, sname) = open_source(&host, &s, &cwd.join(&s), args.follow_link)?;
            let (dir, top) = destination(&container, &d, &dpath, is_dir, sname)?;
            transfer(&container, &dir, fd.as_fd(), top, &opts, &d, None)
        }
        (Endpoint::Container(_, s), Endpoint::Local(d)) => {
            let (fd, is_dir, sname) =
                open_source(&container, &s, &in_container(&s), args.follow_link)?;
            if d == "-" {
                let name = sname.map(PathBuf::from);
                let mut out = tar::Builder::new(std::io::stdout().lock());
                out.follow_symlinks(false);
                archive::write_tree(&mut out, fd.as_fd(), name.as_deref())
                    .and_then(|()| out.into_inner()?.flush())
                    .map_err(|e| failed(format!("copying {s} {}: {e}", container.label)))?;
                return Ok(());
            }
            let opts = ExtractOptions {
                owner: None,
                no_chown: true,
                no_devices: true,
            };
            let (dir, top) = destination(&host, &d, &cwd.join(&d), is_dir, sname)?;
            transfer(&host, &dir, fd.as_fd(), top, &opts, &d, container.sys)
        }
        _ => unreachable!("checked above"),
    }
}

/// Stream the tree `src` as a tar (a thread writes it into a pipe) into the directory `dir`
/// of `tree`, the top entry named `top`.
fn transfer(
    tree: &Tree<'_>,
    dir: &Path,
    src: BorrowedFd<'_>,
    top: Option<OsString>,
    opts: &ExtractOptions,
    shown: &str,
    source: Option<&Sys>,
) -> Result<()> {
    let dest = tree
        .open(dir, libc::O_PATH | libc::O_DIRECTORY)
        .map_err(|e| failed(format!("{shown} {}: {e}", tree.label)))?;
    let (reader, writer) = std::io::pipe().map_err(Error::io("create", "a pipe"))?;
    let top = top.map(PathBuf::from);
    let (written, extracted) = std::thread::scope(|s| {
        let producer = s.spawn(move || {
            let mut b = tar::Builder::new(writer);
            archive::write_tree(&mut b, src, top.as_deref()).and_then(|()| b.finish())
        });
        let extracted = archive::extract(reader, dest.as_fd(), opts);
        (producer.join(), extracted)
    });
    // A source that failed to read cuts the stream short: its error is the one that says why
    // (a broken pipe, on the other hand, only says that the extraction stopped first).
    match written {
        Ok(Err(e)) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            return Err(failed(format!("reading the source: {e}")))
        }
        Err(_) => return Err(failed("the copy's reader panicked".into())),
        _ => {}
    }
    let done = extracted.map_err(|e| failed(format!("copying to {shown} {}: {e}", tree.label)))?;
    per_file_notes(tree.sys.or(source), tree.sys.is_some(), &done);
    Ok(())
}

/// `cp --trace`: one note per file copied, naming the calls that copied it. The per-file work
/// runs on descriptors resolved inside the tree (see `archive`), not through the seam; these
/// notes say what it did.
fn per_file_notes(sys: Option<&Sys>, into_container: bool, done: &archive::ExtractStats) {
    let Some(sys) = sys else { return };
    for (path, how) in &done.done {
        let path = path.display();
        if into_container {
            sys.tracer.note(&format!(
                "{path}: its parent opened from the container's root with openat2 RESOLVE_IN_ROOT (made with mkdirat if missing), then {how}"
            ));
        } else {
            sys.tracer.note(&format!(
                "{path}: read from the container with openat2(parent, name, O_PATH|O_NOFOLLOW, RESOLVE_BENEATH) and fstat (a file reopened for reading through /proc/self/fd only when it is regular), then written on this host: {how}"
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_split_like_docker() {
        assert_eq!(
            endpoint("web:/etc/hostname"),
            Endpoint::Container("web".into(), "/etc/hostname".into())
        );
        assert_eq!(endpoint("./a:b"), Endpoint::Local("./a:b".into()));
        assert_eq!(endpoint("/a:b"), Endpoint::Local("/a:b".into()));
        assert_eq!(endpoint("file"), Endpoint::Local("file".into()));
        assert_eq!(endpoint("-"), Endpoint::Local("-".into()));
        assert_eq!(endpoint("c:"), Endpoint::Container("c".into(), "".into()));
    }

    #[test]
    fn spelling_sees_trailing_slash_and_dot() {
        assert!(spelling("/a/").trailing_sep);
        assert!(spelling("/a/.").dot);
        assert!(!spelling("/a").dot && !spelling("/a").trailing_sep);
    }
}
