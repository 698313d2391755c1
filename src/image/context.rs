//! What `COPY` and `ADD` put into a layer, read from the build context (or from an earlier
//! stage's layers, `COPY --from`) through descriptors only.
//!
//! The context is a hostile tree like any image: each source is opened with
//! `openat2(RESOLVE_BENEATH)` from the context's directory, so `../x` and a symlink that leads
//! out of the context fail (`EXDEV`) and are refused by name; inside, a directory is walked
//! with `O_NOFOLLOW` opens relative to its own descriptor, its symlinks archived as symlinks.
//! `.dockerignore` (Docker's patterns: `*`, `?`, `[..]`, `**`, `!` exceptions, the last match
//! winning, a directory's match covering what it holds) leaves files out; a left-out directory
//! is still walked when a `!` exception could match below it, and comes only with what one
//! brings back (`dir` + `!dir/keep` copies `dir/keep`, as Docker). Entries are owned by
//! 0:0 (or `--chown` numeric ids), with their own modes (or `--chmod`) and mtimes; the layer
//! tar is sorted, so the same files give the same bytes — and so the same cache key.
//! `ADD` of a local tar archive (plain or gzip) writes its entries under the destination, as
//! Docker extracts it; `ADD` of a URL is refused.

use std::io::Read;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use crate::sys::fs as safefs;

/// Lookups that must stay beneath a directory and never cross a symlink that leaves it.
const BENEATH: u64 = libc::RESOLVE_BENEATH | libc::RESOLVE_NO_MAGICLINKS;

/// Why a COPY could not be made.
#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    /// A source that is not there (or that `.dockerignore` leaves out).
    #[error("failed to compute cache key: \"/{0}\": not found (in the build context, or left out by .dockerignore)")]
    NotFound(String),
    /// A source that resolves outside the context.
    #[error("{0}: the path leads outside the build context (through .. or a symlink): refused; copy the file into the context instead")]
    Outside(String),
    /// A file whose name is a whiteout's (`.wh.*`): in a layer it would delete files.
    #[error("{0}: a file named .wh.* cannot go into a layer (the name means a deletion there): rename it in the build context")]
    WhiteoutName(String),
    /// A read failed.
    #[error("read {0}: {1}")]
    Io(String, std::io::Error),
}

/// `.dockerignore`'s patterns.
#[derive(Debug, Default, Clone)]
pub struct Ignore {
    patterns: Vec<(bool, Vec<String>)>,
}

/// Match one path component against one glob component (`*`, `?`, `[a-z]`, `\x`).
fn glob(p: &[char], s: &[char]) -> bool {
    match p.first() {
        None => s.is_empty(),
        Some('*') => (0..=s.len()).any(|i| glob(&p[1..], &s[i..])),
        Some('?') => !s.is_empty() && glob(&p[1..], &s[1..]),
        Some('[') => {
            let Some(end) = p.iter().position(|c| *c == ']') else {
                return !s.is_empty() && s[0] == '[' && glob(&p[1..], &s[1..]);
            };
            let Some(c) = s.first() else { return false };
            let mut class = &p[1..end];
            let neg = matches!(class.first(), Some('!' | '^'));
            if neg {
                class = &class[1..];
            }
            let mut hit = false;
            let mut i = 0;
            while i < class.len() {
                if i + 2 < class.len() && class[i + 1] == '-' {
                    hit |= class[i] <= *c && *c <= class[i + 2];
                    i += 3;
                } else {
                    hit |= class[i] == *c;
                    i += 1;
                }
            }
            hit != neg && glob(&p[end + 1..], &s[1..])
        }
        Some('\\') if p.len() > 1 => !s.is_empty() && s[0] == p[1] && glob(&p[2..], &s[1..]),
        Some(c) => !s.is_empty() && s[0] == *c && glob(&p[1..], &s[1..]),
    }
}

/// Match path components against pattern components (`**` any number of components).
fn glob_path(p: &[String], s: &[&str]) -> bool {
    match p.first() {
        None => s.is_empty(),
        Some(x) if x == "**" => (0..=s.len()).any(|i| glob_path(&p[1..], &s[i..])),
        Some(x) => {
            !s.is_empty() && {
                let pc: Vec<char> = x.chars().collect();
                let sc: Vec<char> = s[0].chars().collect();
                glob(&pc, &sc) && glob_path(&p[1..], &s[1..])
            }
        }
    }
}

/// True when pattern components `p` can match a path strictly below the components `s`.
fn could_match_below(p: &[String], s: &[&str]) -> bool {
    match (p.first(), s.first()) {
        (None, _) => false,
        (Some(_), None) => true,
        (Some(x), Some(_)) if x == "**" => true,
        (Some(x), Some(c)) => {
            let pc: Vec<char> = x.chars().collect();
            let sc: Vec<char> = c.chars().collect();
            glob(&pc, &sc) && could_match_below(&p[1..], &s[1..])
        }
    }
}

impl Ignore {
    /// Parse `.dockerignore` text.
    pub fn parse(text: &str) -> Ignore {
        let patterns = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(|l| {
                let (neg, l) = match l.strip_prefix('!') {
                    Some(r) => (true, r.trim()),
                    None => (false, l),
                };
                let comps = l
                    .split('/')
                    .filter(|c| !c.is_empty() && *c != ".")
                    .map(String::from)
                    .collect();
                (neg, comps)
            })
            .collect();
        Ignore { patterns }
    }

    /// Read `.dockerignore` of the context (none: nothing ignored).
    pub fn load(context: BorrowedFd<'_>) -> std::io::Result<Ignore> {
        match safefs::openat2(
            context,
            Path::new(".dockerignore"),
            libc::O_RDONLY | libc::O_NOFOLLOW,
            0,
            BENEATH | libc::RESOLVE_NO_SYMLINKS,
        ) {
            Ok(fd) => {
                let mut s = String::new();
                std::fs::File::from(fd).read_to_string(&mut s)?;
                Ok(Ignore::parse(&s))
            }
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(Ignore::default()),
            Err(e) => Err(e),
        }
    }

    /// True when a `!` exception could bring back something below the directory `rel`, so
    /// a walk must go into it even when `rel` itself is left out: Docker re-includes
    /// `dir/keep` of `dir` + `!dir/keep`. Conservative: a `**` before the end of `rel`
    /// could match anything.
    pub fn may_include_below(&self, rel: &Path) -> bool {
        let comps: Vec<&str> = rel
            .components()
            .filter_map(|c| match c {
                Component::Normal(n) => n.to_str(),
                _ => None,
            })
            .collect();
        self.patterns
            .iter()
            .any(|(neg, p)| *neg && could_match_below(p, &comps))
    }

    /// True when `rel` (relative to the context) is left out.
    pub fn excluded(&self, rel: &Path) -> bool {
        let comps: Vec<&str> = rel
            .components()
            .filter_map(|c| match c {
                Component::Normal(n) => n.to_str(),
                _ => None,
            })
            .collect();
        let mut out = false;
        for (neg, p) in &self.patterns {
            // A pattern matches the path or one of its parents (an ignored directory's
            // contents are ignored too).
            let hit = (1..=comps.len()).any(|n| glob_path(p, &comps[..n]));
            if hit {
                out = !neg;
            }
        }
        out
    }
}

/// Where sources are read from: the build context (with its ignore file), or the layer
/// directories of an earlier stage's image, bottom first.
pub enum Source<'a> {
    /// The context directory.
    Context {
        /// Its descriptor.
        root: BorrowedFd<'a>,
        /// Its `.dockerignore`.
        ignore: &'a Ignore,
    },
    /// An image's unpacked layers, bottom first.
    Layers(&'a [PathBuf]),
}

/// How COPY writes what it copies.
#[derive(Debug, Clone, Default)]
pub struct CopyOptions {
    /// `--chown` as numeric ids.
    pub chown: Option<(u32, u32)>,
    /// `--chmod`.
    pub chmod: Option<u32>,
    /// ADD: extract local tar archives.
    pub extract: bool,
}

struct Entry {
    path: PathBuf,
    st: libc::stat,
    kind: EntryKind,
}

enum EntryKind {
    Dir,
    File(OwnedFd),
    Link(PathBuf),
    /// A stage layer's whiteout: what lower layers gave for this path (and below) is gone.
    Whiteout,
    /// A stage layer's opaque directory: what lower layers gave below this path is gone.
    Opaque,
}

fn io(what: &Path) -> impl Fn(std::io::Error) -> CopyError + '_ {
    move |e| CopyError::Io(what.display().to_string(), e)
}

fn stat_fd(fd: BorrowedFd<'_>) -> std::io::Result<libc::stat> {
    crate::layers::diff::fstat(fd)
}

/// Open `name` in `dir` without following it: the entry and what it is.
fn open_entry(
    dir: BorrowedFd<'_>,
    name: &std::ffi::OsStr,
) -> std::io::Result<Option<(libc::stat, EntryKind)>> {
    let st = safefs::stat_at(dir, name)?;
    let kind = match st.st_mode & libc::S_IFMT {
        libc::S_IFDIR => EntryKind::Dir,
        libc::S_IFREG => {
            let fd = safefs::openat2(
                dir,
                Path::new(name),
                libc::O_RDONLY | libc::O_NOFOLLOW,
                0,
                BENEATH | libc::RESOLVE_NO_SYMLINKS,
            )?;
            let again = stat_fd(fd.as_fd())?;
            if (again.st_dev, again.st_ino) != (st.st_dev, st.st_ino) {
                return Err(std::io::Error::from_raw_os_error(libc::EAGAIN));
            }
            EntryKind::File(fd)
        }
        libc::S_IFLNK => {
            let t = nix::fcntl::readlinkat(Some(std::os::fd::AsRawFd::as_raw_fd(&dir)), name)
                .map_err(std::io::Error::from)?;
            EntryKind::Link(PathBuf::from(t))
        }
        // A layer's whiteout (a 0/0 character device), for the merge of a stage's layers.
        libc::S_IFCHR if st.st_rdev == 0 => EntryKind::Whiteout,
        // Devices, FIFOs and sockets of a context are not copied (BuildKit copies devices;
        // a context rarely holds one).
        _ => return Ok(None),
    };
    Ok(Some((st, kind)))
}

fn is_whiteout(st: &libc::stat) -> bool {
    crate::layers::diff::is_whiteout(st)
}

/// Walk the directory `dir` (at `rel` in the source) into `out` under `dest`.
fn walk(
    dir: &OwnedFd,
    rel: &Path,
    dest: &Path,
    ignore: Option<&Ignore>,
    out: &mut Vec<Entry>,
) -> Result<(), CopyError> {
    let rd = crate::layers::diff::open_dir(dir.as_fd()).map_err(io(rel))?;
    let mut names = crate::layers::diff::names(&rd).map_err(io(rel))?;
    names.sort();
    for name in names {
        let r = rel.join(&name);
        // Left out, unless a `!` exception may bring back something below it.
        let hidden = ignore.is_some_and(|i| i.excluded(&r));
        if hidden && !ignore.is_some_and(|i| i.may_include_below(&r)) {
            continue;
        }
        let Some((st, kind)) = open_entry(dir.as_fd(), &name).map_err(io(&r))? else {
            continue;
        };
        let d = dest.join(&name);
        // Whiteouts and opaque directories mean something only in a stage's layers (no
        // ignore file): in a context, a 0/0 device is just not copied.
        let layers = ignore.is_none();
        if is_whiteout(&st) {
            if !layers {
                continue;
            }
            out.push(Entry {
                path: d,
                st,
                kind: EntryKind::Whiteout,
            });
            continue;
        }
        if let EntryKind::Dir = kind {
            let sub = safefs::openat2(
                dir.as_fd(),
                Path::new(&name),
                libc::O_PATH | libc::O_DIRECTORY | libc::O_NOFOLLOW,
                0,
                BENEATH | libc::RESOLVE_NO_SYMLINKS,
            )
            .map_err(io(&r))?;
            let opaque = layers
                && crate::layers::diff::open_dir(sub.as_fd())
                    .and_then(|rd| crate::layers::diff::is_opaque(rd.as_fd()))
                    .map_err(io(&r))?;
            let mut below = Vec::new();
            walk(&sub, &r, &d, ignore, &mut below)?;
            if hidden && below.is_empty() {
                continue; // a left-out directory comes only with what is brought back
            }
            if opaque {
                out.push(Entry {
                    path: d.clone(),
                    st,
                    kind: EntryKind::Opaque,
                });
            }
            out.push(Entry {
                path: d.clone(),
                st,
                kind: EntryKind::Dir,
            });
            out.append(&mut below);
        } else if !hidden {
            out.push(Entry { path: d, st, kind });
        }
    }
    Ok(())
}

/// True when `s` has glob characters.
fn has_glob(s: &str) -> bool {
    s.contains(['*', '?', '['])
}

/// The context-relative names `src` stands for (a glob in its last component expanded).
fn expand_src(
    root: BorrowedFd<'_>,
    src: &str,
    ignore: Option<&Ignore>,
) -> Result<Vec<PathBuf>, CopyError> {
    if Path::new(src)
        .components()
        .any(|c| matches!(c, Component::ParentDir))
    {
        // BuildKit clamps `..` to the context's root; dockling says so instead of copying
        // some other file of the same name.
        return Err(CopyError::Outside(src.to_string()));
    }
    let rel = safefs::relative(Path::new(src));
    let rel: PathBuf = rel
        .components()
        .filter(|c| !matches!(c, Component::CurDir))
        .collect();
    let Some(last) = rel
        .file_name()
        .and_then(|n| n.to_str())
        .filter(|n| has_glob(n))
    else {
        return Ok(vec![rel]);
    };
    let parent = rel.parent().unwrap_or(Path::new("")).to_path_buf();
    let pfd = match open_beneath(root, &parent, src)? {
        Some(fd) => fd,
        None => return Ok(vec![]),
    };
    let rd = crate::layers::diff::open_dir(pfd.as_fd()).map_err(io(&parent))?;
    let pat: Vec<char> = last.chars().collect();
    let mut hits: Vec<PathBuf> = crate::layers::diff::names(&rd)
        .map_err(io(&parent))?
        .into_iter()
        .filter(|n| {
            let c: Vec<char> = n.to_string_lossy().chars().collect();
            glob(&pat, &c)
        })
        .map(|n| parent.join(n))
        .filter(|p| !ignore.is_some_and(|i| i.excluded(p) && !i.may_include_below(p)))
        .collect();
    hits.sort();
    Ok(hits)
}

/// `O_PATH` descriptor of `rel` beneath `root`, following symlinks that stay inside; `None`
/// when it does not exist; [`CopyError::Outside`] when it leads out.
fn open_beneath(
    root: BorrowedFd<'_>,
    rel: &Path,
    shown: &str,
) -> Result<Option<OwnedFd>, CopyError> {
    let p = if rel.as_os_str().is_empty() {
        Path::new(".")
    } else {
        rel
    };
    match safefs::openat2(root, p, libc::O_PATH, 0, BENEATH) {
        Ok(fd) => Ok(Some(fd)),
        Err(e)
            if e.raw_os_error() == Some(libc::ENOENT)
                || e.raw_os_error() == Some(libc::ENOTDIR) =>
        {
            Ok(None)
        }
        Err(e) if e.raw_os_error() == Some(libc::EXDEV) => {
            Err(CopyError::Outside(shown.to_string()))
        }
        Err(e) => Err(io(rel)(e)),
    }
}

/// Collect the entries one source contributes, under `dest` (`dest_is_dir`: a file goes to
/// `dest/<its name>`).
fn collect_one(
    root: BorrowedFd<'_>,
    rel: &Path,
    shown: &str,
    dest: &Path,
    dest_is_dir: bool,
    ignore: Option<&Ignore>,
    out: &mut Vec<Entry>,
) -> Result<bool, CopyError> {
    if rel.components().any(|c| matches!(c, Component::ParentDir)) {
        // `..` never leaves the context in Docker either: refused here, loudly.
        return Err(CopyError::Outside(shown.to_string()));
    }
    let hidden = ignore.is_some_and(|i| !rel.as_os_str().is_empty() && i.excluded(rel));
    if hidden && !ignore.is_some_and(|i| i.may_include_below(rel)) {
        return Ok(false);
    }
    let Some(fd) = open_beneath(root, rel, shown)? else {
        return Ok(false);
    };
    let st = stat_fd(fd.as_fd()).map_err(io(rel))?;
    if is_whiteout(&st) {
        return Ok(false);
    }
    match st.st_mode & libc::S_IFMT {
        libc::S_IFDIR => {
            let dir = safefs::openat2(
                fd.as_fd(),
                Path::new("."),
                libc::O_PATH | libc::O_DIRECTORY,
                0,
                BENEATH,
            )
            .map_err(io(rel))?;
            // In a stage's layers, an opaque directory hides what lower layers held in it.
            let opaque = ignore.is_none()
                && crate::layers::diff::open_dir(dir.as_fd())
                    .and_then(|rd| crate::layers::diff::is_opaque(rd.as_fd()))
                    .map_err(io(rel))?;
            let mut below = Vec::new();
            walk(&dir, rel, dest, ignore, &mut below)?;
            if hidden && below.is_empty() {
                return Ok(false); // left out, and no exception brings anything back
            }
            if opaque {
                out.push(Entry {
                    path: dest.to_path_buf(),
                    st,
                    kind: EntryKind::Opaque,
                });
            }
            out.push(Entry {
                path: dest.to_path_buf(),
                st,
                kind: EntryKind::Dir,
            });
            out.append(&mut below);
        }
        _ if hidden => return Ok(false),
        libc::S_IFREG => {
            // The O_PATH descriptor reopened for reading through its /proc magic link: exactly
            // the object resolved beneath the context, never a name looked up again.
            let file = std::fs::File::open(safefs::fd_path(&fd))
                .map(OwnedFd::from)
                .map_err(io(rel))?;
            let name = rel.file_name().map(PathBuf::from).unwrap_or_default();
            let path = if dest_is_dir {
                dest.join(name)
            } else {
                dest.to_path_buf()
            };
            out.push(Entry {
                path,
                st,
                kind: EntryKind::File(file),
            });
        }
        _ => return Ok(false),
    }
    Ok(true)
}

/// Write entries as a sorted layer tar; `extract`: regular files that are tar archives are
/// written as their contents under their directory.
/// `dest_file`: the destination when it names a file (no trailing slash, one source): an
/// archive ADDed there is unpacked into a directory of that name, as Docker does.
fn write_tar(
    collected: Vec<Entry>,
    opts: &CopyOptions,
    dest_file: Option<&Path>,
) -> Result<Vec<u8>, CopyError> {
    // In the order collected (a stage's layers bottom first): a later entry for a path (an
    // upper layer's) replaces an earlier one, a whiteout removes the path and what is below
    // it, an opaque directory what is below it. The map's byte order is the tar's.
    let mut merged: std::collections::BTreeMap<Vec<u8>, Entry> = Default::default();
    for e in collected {
        let key = e.path.as_os_str().as_bytes().to_vec();
        let mut below = key.clone();
        below.push(b'/');
        match e.kind {
            EntryKind::Whiteout | EntryKind::Opaque => {
                if matches!(e.kind, EntryKind::Whiteout) {
                    merged.remove(&key);
                }
                merged.retain(|k, _| !k.starts_with(&below));
            }
            _ => {
                merged.insert(key, e);
            }
        }
    }
    let entries = merged.into_values();
    let mut b = tar::Builder::new(Vec::new());
    b.mode(tar::HeaderMode::Complete);
    let (uid, gid) = opts.chown.unwrap_or((0, 0));
    for e in entries {
        let rel = safefs::relative(&e.path);
        let shown = e.path.clone();
        // In a layer a `.wh.` name is a deletion: a context file called so would delete the
        // image's files where the layer is unpacked (commit refuses them too).
        if !matches!(e.kind, EntryKind::Whiteout | EntryKind::Opaque)
            && rel
                .file_name()
                .is_some_and(|n| n.as_bytes().starts_with(b".wh."))
        {
            return Err(CopyError::WhiteoutName(shown.display().to_string()));
        }
        let mut h = tar::Header::new_gnu();
        h.set_uid(uid.into());
        h.set_gid(gid.into());
        h.set_mtime(e.st.st_mtime.max(0) as u64);
        let mode = opts.chmod.unwrap_or(e.st.st_mode & 0o7777);
        h.set_mode(mode);
        match e.kind {
            EntryKind::Dir => {
                if rel.as_os_str().is_empty() {
                    continue; // the root itself keeps what it is
                }
                h.set_entry_type(tar::EntryType::Directory);
                h.set_size(0);
                let mut p = rel.into_os_string();
                p.push("/");
                b.append_data(&mut h, p, std::io::empty())
                    .map_err(io(&shown))?;
            }
            EntryKind::Link(t) => {
                h.set_entry_type(tar::EntryType::Symlink);
                h.set_mode(0o777);
                h.set_size(0);
                b.append_link(&mut h, rel, t).map_err(io(&shown))?;
            }
            EntryKind::Whiteout | EntryKind::Opaque => {}
            EntryKind::File(fd) => {
                let mut f = std::fs::File::from(fd);
                if opts.extract {
                    let mut data = Vec::new();
                    f.read_to_end(&mut data).map_err(io(&shown))?;
                    if let Some(n) = extract_into(
                        &mut b,
                        &data,
                        if dest_file == Some(e.path.as_path()) {
                            &rel
                        } else {
                            rel.parent().unwrap_or(Path::new(""))
                        },
                    )
                    .map_err(io(&shown))?
                    {
                        let _ = n;
                        continue;
                    }
                    h.set_entry_type(tar::EntryType::Regular);
                    h.set_size(data.len() as u64);
                    b.append_data(&mut h, rel, &data[..]).map_err(io(&shown))?;
                    continue;
                }
                h.set_entry_type(tar::EntryType::Regular);
                h.set_size(e.st.st_size as u64);
                b.append_data(&mut h, rel, f.take(e.st.st_size as u64))
                    .map_err(io(&shown))?;
            }
        }
    }
    b.into_inner().map_err(io(Path::new("the layer")))
}

/// When `data` is a tar archive (plain or gzip), append its entries under `dir`: `Some(n)`.
fn extract_into(
    b: &mut tar::Builder<Vec<u8>>,
    data: &[u8],
    dir: &Path,
) -> std::io::Result<Option<usize>> {
    let plain: Vec<u8> = if data.starts_with(&[0x1f, 0x8b]) {
        let mut v = Vec::new();
        if flate2::read::GzDecoder::new(data)
            .read_to_end(&mut v)
            .is_err()
        {
            return Ok(None);
        }
        v
    } else {
        data.to_vec()
    };
    if plain.len() < 512 || &plain[257..262] != b"ustar" {
        return Ok(None);
    }
    let mut a = tar::Archive::new(&plain[..]);
    let mut n = 0;
    for e in a.entries()? {
        let mut e = e?;
        let path = e.path()?.into_owned();
        // Entries are re-rooted under the destination; `..` never climbs out of it.
        let clean: PathBuf = path
            .components()
            .filter(|c| matches!(c, Component::Normal(_)))
            .collect();
        if clean.as_os_str().is_empty() {
            continue;
        }
        if clean
            .file_name()
            .is_some_and(|n| n.as_bytes().starts_with(b".wh."))
        {
            return Err(std::io::Error::other(format!(
                "{}: a file named .wh.* cannot go into a layer (the name means a deletion there)",
                clean.display()
            )));
        }
        let mut h = e.header().clone();
        let target = dir.join(&clean);
        match h.entry_type() {
            tar::EntryType::Symlink => {
                let t = e.link_name()?.map(|t| t.into_owned()).unwrap_or_default();
                b.append_link(&mut h, target, t)?;
            }
            tar::EntryType::Link => {
                let t = e.link_name()?.map(|t| t.into_owned()).unwrap_or_default();
                let t: PathBuf = dir.join(
                    t.components()
                        .filter(|c| matches!(c, Component::Normal(_)))
                        .collect::<PathBuf>(),
                );
                b.append_link(&mut h, target, t)?;
            }
            _ => {
                let mut content = Vec::new();
                e.read_to_end(&mut content)?;
                b.append_data(&mut h, target, &content[..])?;
            }
        }
        n += 1;
    }
    Ok(Some(n))
}

/// The layer tar of `COPY srcs dest` (dest absolute, the working directory applied).
pub fn copy_layer(
    source: &Source<'_>,
    srcs: &[String],
    dest: &str,
    opts: &CopyOptions,
) -> Result<Vec<u8>, CopyError> {
    let many = srcs.len() > 1 || srcs.iter().any(|s| has_glob(s));
    let dest_is_dir = dest.ends_with('/') || many;
    let dest_path = PathBuf::from(dest);
    let mut entries = Vec::new();
    for src in srcs {
        let found = match source {
            Source::Context { root, ignore } => {
                let mut any = false;
                for rel in expand_src(*root, src, Some(ignore))? {
                    any |= collect_one(
                        *root,
                        &rel,
                        src,
                        &dest_path,
                        dest_is_dir,
                        Some(ignore),
                        &mut entries,
                    )?;
                }
                any
            }
            Source::Layers(dirs) => {
                // The topmost layer that has the path decides whether it exists: a whiteout
                // there means a later step deleted it.
                let rel = safefs::relative(Path::new(src));
                let mut top = None;
                for d in dirs.iter().rev() {
                    let root = safefs::open_root(d).map_err(io(d))?;
                    if let Some(fd) = open_beneath(root.as_fd(), &rel, src)? {
                        top = Some(stat_fd(fd.as_fd()).map_err(io(&rel))?);
                        break;
                    }
                }
                let mut any = top.is_some_and(|st| !is_whiteout(&st));
                let dirs: &[PathBuf] = if any { dirs } else { &[] };
                for d in dirs.iter() {
                    let root = safefs::open_root(d).map_err(io(d))?;
                    let rel = safefs::relative(Path::new(src));
                    any |= collect_one(
                        root.as_fd(),
                        &rel,
                        src,
                        &dest_path,
                        dest_is_dir,
                        None,
                        &mut entries,
                    )?;
                }
                any
            }
        };
        if !found {
            return Err(CopyError::NotFound(
                safefs::relative(Path::new(src)).display().to_string(),
            ));
        }
    }
    write_tar(entries, opts, (!dest_is_dir).then_some(dest_path.as_path()))
}

/// The layer tar of a directory that `WORKDIR` makes.
pub fn dir_layer(path: &str) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Directory);
    h.set_mode(0o755);
    h.set_size(0);
    h.set_mtime(0);
    let mut p = safefs::relative(Path::new(path)).into_os_string();
    p.push("/");
    b.append_data(&mut h, p, std::io::empty())
        .expect("in memory");
    b.into_inner().expect("in memory")
}

/// True when the topmost layer that has `path` (layers bottom first) has a directory there,
/// resolved inside each layer (`RESOLVE_IN_ROOT`: a symlink stays in the layer).
pub fn is_dir_in_layers(dirs: &[PathBuf], path: &str) -> bool {
    let rel = safefs::relative(Path::new(path));
    if rel.as_os_str().is_empty() {
        return true;
    }
    for d in dirs.iter().rev() {
        let found = safefs::open_root(d)
            .and_then(|r| safefs::openat2(r.as_fd(), &rel, libc::O_PATH, 0, safefs::IN_ROOT))
            .and_then(|fd| stat_fd(fd.as_fd()));
        if let Ok(st) = found {
            return !is_whiteout(&st) && st.st_mode & libc::S_IFMT == libc::S_IFDIR;
        }
    }
    false
}

/// True when `path` exists in one of the image's layers (a directory WORKDIR need not make).
pub fn exists_in_layers(dirs: &[PathBuf], path: &str) -> bool {
    let rel = safefs::relative(Path::new(path));
    if rel.as_os_str().is_empty() {
        return true;
    }
    dirs.iter().any(|d| {
        safefs::open_root(d)
            .and_then(|r| safefs::openat2(r.as_fd(), &rel, libc::O_PATH, 0, safefs::IN_ROOT))
            .and_then(|fd| stat_fd(fd.as_fd()))
            .is_ok_and(|st| !is_whiteout(&st))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dockerignore_patterns() {
        let i = Ignore::parse("# c\n*.log\nbuild/\n!build/keep\n**/tmp\nsecret?\n/abs\n");
        assert!(i.excluded(Path::new("a.log")));
        assert!(!i.excluded(Path::new("d/a.log")));
        assert!(i.excluded(Path::new("build/x")));
        assert!(!i.excluded(Path::new("build/keep")));
        assert!(i.excluded(Path::new("a/b/tmp/c")));
        assert!(i.excluded(Path::new("secret1")));
        assert!(!i.excluded(Path::new("secret12")));
        assert!(i.excluded(Path::new("abs")));
        assert!(!i.excluded(Path::new("main.rs")));
    }

    #[test]
    fn an_exception_brings_back_a_file_of_a_left_out_directory() {
        let i = Ignore::parse("build\n!build/keep\n**/*.log\n!**/important.log\n");
        assert!(i.excluded(Path::new("build")));
        assert!(i.may_include_below(Path::new("build")));
        assert!(!Ignore::parse("build\n!build/keep\n").may_include_below(Path::new("build/keep")));
        assert!(
            i.may_include_below(Path::new("logs")),
            "** can match below anything"
        );
        assert!(!Ignore::parse("build\n!src/x\n").may_include_below(Path::new("build")));

        let dir = tempfile::tempdir().unwrap();
        let ctx = dir.path();
        std::fs::create_dir_all(ctx.join("build/keep/sub")).unwrap();
        std::fs::create_dir_all(ctx.join("build/drop")).unwrap();
        std::fs::write(ctx.join("build/keep/sub/f"), b"k").unwrap();
        std::fs::write(ctx.join("build/x"), b"x").unwrap();
        std::fs::write(ctx.join("build/drop/y"), b"y").unwrap();
        std::fs::create_dir_all(ctx.join("gone")).unwrap();
        std::fs::write(ctx.join("gone/z"), b"z").unwrap();
        std::fs::write(ctx.join("top"), b"t").unwrap();
        let root = safefs::open_root(ctx).unwrap();
        let ignore = Ignore::parse("build\n!build/keep\ngone\n");
        let src = Source::Context {
            root: root.as_fd(),
            ignore: &ignore,
        };
        let names = |tar: Vec<u8>| -> Vec<String> {
            tar::Archive::new(&tar[..])
                .entries()
                .unwrap()
                .map(|e| e.unwrap().path().unwrap().display().to_string())
                .collect()
        };
        let tar = copy_layer(&src, &[".".into()], "/app/", &CopyOptions::default()).unwrap();
        assert_eq!(
            names(tar),
            [
                "app/",
                "app/build/",
                "app/build/keep/",
                "app/build/keep/sub/",
                "app/build/keep/sub/f",
                "app/top"
            ]
        );
        let tar = copy_layer(&src, &["build".into()], "/b/", &CopyOptions::default()).unwrap();
        assert_eq!(names(tar), ["b/", "b/keep/", "b/keep/sub/", "b/keep/sub/f"]);
        assert!(matches!(
            copy_layer(&src, &["gone".into()], "/g/", &CopyOptions::default()),
            Err(CopyError::NotFound(_))
        ));
        assert!(matches!(
            copy_layer(&src, &["build/x".into()], "/x", &CopyOptions::default()),
            Err(CopyError::NotFound(_))
        ));
    }

    #[test]
    fn globs() {
        let g = |p: &str, s: &str| {
            glob(
                &p.chars().collect::<Vec<_>>(),
                &s.chars().collect::<Vec<_>>(),
            )
        };
        assert!(g("*.txt", "a.txt"));
        assert!(g("[a-c]x", "bx"));
        assert!(!g("[!a-c]x", "bx"));
        assert!(g("a?c", "abc"));
        assert!(!g("a*", "b"));
    }

    #[test]
    fn copy_reads_beneath_the_context_only() {
        let dir = tempfile::tempdir().unwrap();
        let ctx = dir.path().join("ctx");
        std::fs::create_dir_all(ctx.join("d/sub")).unwrap();
        std::fs::write(ctx.join("d/sub/f"), b"hi").unwrap();
        std::fs::write(ctx.join("d/x.log"), b"no").unwrap();
        std::fs::write(ctx.join("top"), b"t").unwrap();
        std::fs::write(dir.path().join("secret"), b"s").unwrap();
        std::os::unix::fs::symlink("../secret", ctx.join("out")).unwrap();
        std::os::unix::fs::symlink("top", ctx.join("in")).unwrap();
        let root = safefs::open_root(&ctx).unwrap();
        let ignore = Ignore::parse("**/*.log\n");
        let src = Source::Context {
            root: root.as_fd(),
            ignore: &ignore,
        };
        let tar = copy_layer(&src, &["d".into()], "/app", &CopyOptions::default()).unwrap();
        let mut a = tar::Archive::new(&tar[..]);
        let names: Vec<String> = a
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().display().to_string())
            .collect();
        assert_eq!(names, ["app/", "app/sub/", "app/sub/f"]);
        assert!(matches!(
            copy_layer(&src, &["out".into()], "/x", &CopyOptions::default()),
            Err(CopyError::Outside(_))
        ));
        assert!(matches!(
            copy_layer(&src, &["../secret".into()], "/x", &CopyOptions::default()),
            Err(CopyError::Outside(_))
        ));
        assert!(matches!(
            copy_layer(&src, &["d/x.log".into()], "/x", &CopyOptions::default()),
            Err(CopyError::NotFound(_))
        ));
        let tar = copy_layer(
            &src,
            &["in".into()],
            "/etc/",
            &CopyOptions {
                chown: Some((5, 6)),
                ..Default::default()
            },
        )
        .unwrap();
        let mut a = tar::Archive::new(&tar[..]);
        let e = a.entries().unwrap().next().unwrap().unwrap();
        assert_eq!(e.path().unwrap().display().to_string(), "etc/in");
        assert_eq!(e.header().uid().unwrap(), 5);
        assert_eq!(e.header().entry_type(), tar::EntryType::Regular);
    }
}
