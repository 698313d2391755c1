//! What `COPY` and `ADD` put into a layer, read from the build context (or from an earlier
//! stage's layers, `COPY --from`) through descriptors only.
//!
//! The context is a hostile tree like any image: each source is looked up one name at a time
//! from the context's directory descriptor (`openat2` of one component, `O_NOFOLLOW`), its
//! symlinks followed by hand, so `../x` and a symlink that leads out of the context are
//! refused by name; inside, a directory is walked the same way, its symlinks archived as
//! symlinks. A stage's layers (`COPY --from`) are read as one tree, merged as overlayfs merges
//! them (whiteouts, opaque directories), symlinks resolved inside the stage's root. What is
//! collected is a list of paths and stats; each file is opened (beneath its layer, no
//! symlink, checked to be the object listed) only while its content is written, so a source
//! of any number of files needs a handful of descriptors.
//! `.dockerignore` (Docker's patterns: `*`, `?`, `[..]`, `**`, `!` exceptions, the last match
//! winning, a directory's match covering what it holds) leaves files out; a left-out directory
//! is still walked when a `!` exception could match below it, and comes only with what one
//! brings back (`dir` + `!dir/keep` copies `dir/keep`, as Docker). Entries are owned by
//! 0:0 (or `--chown` numeric ids), with their own modes (or `--chmod`) and mtimes; the layer
//! tar is sorted, so the same files give the same bytes — and so the same cache key.
//! `ADD` of a local tar archive (plain or gzip) writes its entries under the destination, as
//! Docker extracts it; `ADD` of a URL is refused.

use crate::image::hashing::Hashing;
use std::ffi::OsStr;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Component, Path, PathBuf};

use sha2::{Digest as _, Sha256};

use crate::sys::fs as safefs;

/// Lookups that must stay beneath a directory and never cross a symlink that leaves it.
const BENEATH: u64 = libc::RESOLVE_BENEATH | libc::RESOLVE_NO_MAGICLINKS;

/// Why a COPY could not be made.
#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    /// A source that is not there (or that `.dockerignore` leaves out).
    #[error("failed to compute cache key: \"/{0}\": not found (in the build context, or left out by .dockerignore)")]
    NotFound(String),
    /// A source that is there but is no file, directory or symlink.
    #[error("\"/{0}\": it is {1}, which COPY does not copy: copy a regular file instead")]
    NotAFile(String, &'static str),
    /// A source that resolves outside the context.
    #[error("{0}: the path leads outside the build context (through .. or a symlink): refused; copy the file into the context instead")]
    Outside(String),
    /// A file whose name is a whiteout's (`.wh.*`): in a layer it would delete files.
    #[error("{0}: a file named .wh.* cannot go into a layer (the name means a deletion there): rename it in the build context")]
    WhiteoutName(String),
    /// A destination below something that is not a directory.
    #[error("cannot copy to {0}: {1} is not a directory in the image")]
    NotADirectory(String, String),
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
    /// The destination is a directory the image already has: a directory source's
    /// contents go into it and its own mode, owner and mtime stay the image's (BuildKit
    /// makes the destination first and copies the contents only). Otherwise a directory
    /// source's destination is made 0755, owned by `--chown`'s ids, not with the source
    /// directory's mode: `COPY . /app` from a 0700 context gives a 0755 /app.
    pub dest_exists: bool,
    /// The directories the image has on the destination's way (from [`Dest`]), written into
    /// the layer with the image's own mode, owner and mtime: a directory entry the layer does
    /// not carry would be made 0755 root's by the unpack, and overlayfs shows a directory's
    /// metadata from the top layer that has it (`COPY f /tmp/` would make /tmp 0755).
    pub image_dirs: Vec<ImageDir>,
}

/// A directory of the image, as a layer must repeat it.
#[derive(Clone)]
pub struct ImageDir {
    /// Its path, relative to the root, with no symlink.
    pub path: PathBuf,
    /// Its stat in the image (the top layer's that has it).
    st: libc::stat,
}

impl std::fmt::Debug for ImageDir {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {:o} {}:{}",
            self.path.display(),
            self.st.st_mode & 0o7777,
            self.st.st_uid,
            self.st.st_gid
        )
    }
}

struct Entry {
    /// Where it goes in the layer (absolute).
    path: PathBuf,
    st: libc::stat,
    kind: EntryKind,
}

enum EntryKind {
    Dir,
    /// The destination directory a directory source is copied into, made by the COPY: 0755,
    /// whatever the source's mode or `--chmod`.
    DestDir,
    /// A directory of the image on the destination's way, with its own owner.
    ImageDir(u32, u32),
    /// A regular file: the layer of the source it is in and its path there, with no symlink
    /// on the way; opened only when its content is written, so that one file at a time is
    /// open however many the source holds.
    File {
        layer: usize,
        at: PathBuf,
    },
    Link(PathBuf),
}

fn io(what: &Path) -> impl Fn(std::io::Error) -> CopyError + '_ {
    move |e| CopyError::Io(what.display().to_string(), e)
}

fn stat_fd(fd: BorrowedFd<'_>) -> std::io::Result<libc::stat> {
    crate::layers::diff::fstat(fd)
}

fn is_whiteout(st: &libc::stat) -> bool {
    crate::layers::diff::is_whiteout(st)
}

fn kind_of(st: &libc::stat) -> u32 {
    st.st_mode & libc::S_IFMT
}

/// One directory of a [`Tree`]: the same directory in each layer that contributes to it, top
/// layer first, each with the index of its layer (the stack ends at an opaque one).
type Stack = Vec<(usize, OwnedFd)>;

/// A name in a directory of a [`Tree`].
enum Node {
    /// In no layer, or whited out.
    Missing,
    /// A directory: its stat (from the top layer that has it) and its stack.
    Dir(libc::stat, Stack),
    /// Anything else: its stat, its layer, and an `O_PATH` descriptor of it.
    Other(libc::stat, usize, OwnedFd),
}

/// Where a lookup in a [`Tree`] ended.
enum Lookup {
    /// Something is there: its path with no symlink on the way.
    Found(PathBuf, Node),
    /// Nothing is: where it would be (the existing part resolved).
    Missing(PathBuf),
    /// A component on the way is not a directory (its resolved path).
    NotDir(PathBuf),
}

/// The most directory descriptors a walk keeps open for the directories above the one it is
/// in (past that it closes them and opens them again when it comes back).
const KEEP_OPEN: usize = 64;

/// The most symlinks one lookup follows (the kernel's `MAXSYMLINKS`).
const MAX_LINKS: usize = 40;

/// What sources are read from, as one tree: the context (one layer; a symlink that leads out
/// of it is refused), or a stage's layers merged as overlayfs merges them (whiteouts hide the
/// layers below, an opaque directory hides the directories below it, a non-directory above a
/// directory hides it) in which a symlink resolves inside the stage's root, as
/// `RESOLVE_IN_ROOT` would: `/etc/x` is the stage's `/etc/x`, never the host's. Every lookup
/// is one name at a time, relative to a directory descriptor, never following a symlink.
struct Tree<'a> {
    /// The layers' root directories, top first.
    roots: Vec<OwnedFd>,
    /// A stage's layers (whiteouts, opaque directories, symlinks kept in the root), not a
    /// context.
    layers: bool,
    /// The context's `.dockerignore`.
    ignore: Option<&'a Ignore>,
}

impl<'a> Tree<'a> {
    fn new(source: &Source<'a>) -> Result<Tree<'a>, CopyError> {
        Ok(match source {
            Source::Context { root, ignore } => Tree {
                roots: vec![crate::layers::diff::open_dir(*root)
                    .map_err(io(Path::new("the build context")))?],
                layers: false,
                ignore: Some(ignore),
            },
            Source::Layers(dirs) => Tree {
                roots: dirs
                    .iter()
                    .rev()
                    .map(|d| {
                        safefs::open_root(d)
                            .and_then(|r| crate::layers::diff::open_dir(r.as_fd()))
                            .map_err(io(d))
                    })
                    .collect::<Result<_, _>>()?,
                layers: true,
                ignore: None,
            },
        })
    }

    fn excluded(&self, rel: &Path) -> bool {
        self.ignore
            .is_some_and(|i| !rel.as_os_str().is_empty() && i.excluded(rel))
    }

    /// True when a `.dockerignore` exception may bring back something below `rel`.
    fn may_include_below(&self, rel: &Path) -> bool {
        self.ignore.is_some_and(|i| i.may_include_below(rel))
    }

    fn root_stack(&self) -> std::io::Result<Stack> {
        self.roots
            .iter()
            .enumerate()
            .map(|(i, r)| Ok((i, crate::layers::diff::open_dir(r.as_fd())?)))
            .collect()
    }

    /// The stack of the directory `path` (resolved: no symlink in it), opened again from the
    /// root.
    fn stack_at(&self, path: &[std::ffi::OsString]) -> std::io::Result<Stack> {
        let mut here = self.root_stack()?;
        for c in path {
            here = match self.child(&here, c)? {
                Node::Dir(_, s) => s,
                _ => {
                    return Err(std::io::Error::other(
                        "changed while the build read it: build again",
                    ))
                }
            };
        }
        Ok(here)
    }

    /// `name` in the directory `stack`.
    fn child(&self, stack: &[(usize, OwnedFd)], name: &OsStr) -> std::io::Result<Node> {
        let mut dirs = Stack::new();
        let mut top = None;
        for (layer, dir) in stack {
            let Some(fd) = crate::layers::diff::open_child(dir.as_fd(), name)? else {
                continue;
            };
            let st = stat_fd(fd.as_fd())?;
            if kind_of(&st) != libc::S_IFDIR {
                if !dirs.is_empty() {
                    break;
                }
                if self.layers && is_whiteout(&st) {
                    return Ok(Node::Missing);
                }
                return Ok(Node::Other(st, *layer, fd));
            }
            let d = crate::layers::diff::open_dir(fd.as_fd())?;
            let opaque = self.layers && crate::layers::diff::is_opaque(d.as_fd())?;
            top.get_or_insert(st);
            dirs.push((*layer, d));
            if opaque {
                break;
            }
        }
        Ok(match top {
            Some(st) => Node::Dir(st, dirs),
            None => Node::Missing,
        })
    }

    /// Look `rel` up, following symlinks (the last one too): its path in the tree with no
    /// symlink on the way, and what is there; `None` when nothing is.
    fn resolve(&self, rel: &Path, shown: &str) -> Result<Option<(PathBuf, Node)>, CopyError> {
        Ok(match self.lookup(rel, shown)? {
            Lookup::Found(p, n) => Some((p, n)),
            Lookup::Missing(..) | Lookup::NotDir(_) => None,
        })
    }

    /// True when `path` (resolved, relative) is left out of the context and no `!` exception
    /// brings back anything below it: Docker never sends it, so a lookup that reaches it
    /// (through a symlink too) finds nothing there.
    fn unsent(&self, path: &[std::ffi::OsString], dir: bool) -> bool {
        let p: PathBuf = path.iter().collect();
        self.excluded(&p) && !(dir && self.may_include_below(&p))
    }

    /// [`Tree::resolve`], saying where a missing path would be: the part that exists resolved,
    /// the rest as written (`..` taken lexically).
    fn lookup(&self, rel: &Path, shown: &str) -> Result<Lookup, CopyError> {
        let outside = || CopyError::Outside(shown.to_string());
        let mut todo: std::collections::VecDeque<std::ffi::OsString> = rel
            .components()
            .filter_map(|c| match c {
                Component::Normal(n) => Some(n.to_os_string()),
                Component::ParentDir => Some("..".into()),
                _ => None,
            })
            .collect();
        let mut path: Vec<std::ffi::OsString> = Vec::new();
        // Only the current directory's stack is held (one descriptor per layer); a `..`
        // opens its parent's again from the root: keeping every depth's stack took depth ×
        // layers descriptors (600 for a 20-deep path in 30 layers).
        let mut here = self.root_stack().map_err(io(rel))?;
        let mut links = 0;
        let missing =
            |mut path: Vec<std::ffi::OsString>, c, todo: std::collections::VecDeque<_>| {
                for c in std::iter::once(c).chain(todo) {
                    if c == ".." {
                        path.pop();
                    } else {
                        path.push(c);
                    }
                }
                Lookup::Missing(path.iter().collect())
            };
        while let Some(c) = todo.pop_front() {
            if c == ".." {
                if path.pop().is_some() {
                    drop(std::mem::take(&mut here));
                    here = self.stack_at(&path).map_err(io(rel))?;
                } else if !self.layers {
                    return Err(outside());
                }
                continue;
            }
            let node = self.child(&here, &c).map_err(io(rel))?;
            // What `.dockerignore` leaves out is not in the context, also for a symlink that
            // leads there: `link -> secret` with `secret` left out finds nothing.
            if self.ignore.is_some() && !matches!(node, Node::Missing) {
                let mut p = path.clone();
                p.push(c.clone());
                if self.unsent(&p, matches!(node, Node::Dir(..))) {
                    return Ok(missing(path, c, todo));
                }
            }
            match node {
                Node::Missing => return Ok(missing(path, c, todo)),
                Node::Dir(st, s) => {
                    path.push(c);
                    if todo.is_empty() {
                        return Ok(Lookup::Found(path.iter().collect(), Node::Dir(st, s)));
                    }
                    here = s;
                }
                Node::Other(st, _, fd) if kind_of(&st) == libc::S_IFLNK => {
                    links += 1;
                    if links > MAX_LINKS {
                        return Err(io(rel)(std::io::Error::from_raw_os_error(libc::ELOOP)));
                    }
                    let target = PathBuf::from(
                        nix::fcntl::readlinkat(Some(fd.as_raw_fd()), "")
                            .map_err(|e| io(rel)(e.into()))?,
                    );
                    if target.is_absolute() {
                        if !self.layers {
                            return Err(outside());
                        }
                        path.clear();
                        drop(std::mem::take(&mut here));
                        here = self.root_stack().map_err(io(rel))?;
                    }
                    for c in target.components().rev() {
                        match c {
                            Component::Normal(n) => todo.push_front(n.to_os_string()),
                            Component::ParentDir => todo.push_front("..".into()),
                            _ => {}
                        }
                    }
                }
                Node::Other(st, layer, fd) => {
                    path.push(c);
                    if !todo.is_empty() {
                        return Ok(Lookup::NotDir(path.iter().collect()));
                    }
                    return Ok(Lookup::Found(
                        path.iter().collect(),
                        Node::Other(st, layer, fd),
                    ));
                }
            }
        }
        // The lookup ended on a directory already entered (the root, `x/..`, a link to one).
        let st = match here.first() {
            Some((_, d)) => stat_fd(d.as_fd()).map_err(io(rel))?,
            None => return Ok(Lookup::Missing(path.iter().collect())),
        };
        Ok(Lookup::Found(path.iter().collect(), Node::Dir(st, here)))
    }

    /// The names of the directory `stack`, every layer's, in byte order.
    fn names(stack: &[(usize, OwnedFd)]) -> std::io::Result<Vec<std::ffi::OsString>> {
        let mut all = std::collections::BTreeSet::new();
        for (_, d) in stack {
            all.extend(crate::layers::diff::names(d)?);
        }
        Ok(all.into_iter().collect())
    }

    /// Walk the directory `stack` (at `at` in the tree, `rel` in the source as named) into
    /// `out` under `dest`: its symlinks archived as symlinks, never followed.
    fn walk(
        &self,
        mut stack: Stack,
        held: usize,
        at: &Path,
        rel: &Path,
        dest: &Path,
        out: &mut Vec<Entry>,
    ) -> Result<(), CopyError> {
        for name in Tree::names(&stack).map_err(io(rel))? {
            let r = rel.join(&name);
            let d = dest.join(&name);
            let a = at.join(&name);
            // Left out, unless a `!` exception may bring back something below it. Asked of
            // the path in the context (`at`), not as named: a source reached through a
            // symlink (`linkdir -> build`) has the ignore rules of where it is.
            let hidden = self.excluded(&a);
            if hidden && !self.may_include_below(&a) {
                continue;
            }
            match self.child(&stack, &name).map_err(io(&r))? {
                Node::Missing => {}
                Node::Dir(st, s) => {
                    // The directories above hold `held` descriptors. Within a budget this
                    // one's stay open while a subdirectory is walked; past it they are closed
                    // and opened again after (from the root), so a deep tree of many layers
                    // never holds depth × layers of them (600 for 20 deep in 30 layers: EMFILE
                    // under a limit of 256), and a common tree is not slowed by reopening.
                    let keep = held + stack.len() <= KEEP_OPEN;
                    let mut below = Vec::new();
                    if keep {
                        self.walk(s, held + stack.len(), &a, &r, &d, &mut below)?;
                    } else {
                        drop(std::mem::take(&mut stack));
                        self.walk(s, held, &a, &r, &d, &mut below)?;
                        let comps: Vec<std::ffi::OsString> = at
                            .components()
                            .filter_map(|c| match c {
                                Component::Normal(n) => Some(n.to_os_string()),
                                _ => None,
                            })
                            .collect();
                        stack = self.stack_at(&comps).map_err(io(rel))?;
                    }
                    if hidden && below.is_empty() {
                        continue; // a left-out directory comes only with what is brought back
                    }
                    out.push(Entry {
                        path: d.clone(),
                        st,
                        kind: EntryKind::Dir,
                    });
                    out.append(&mut below);
                }
                Node::Other(..) if hidden => {}
                Node::Other(st, layer, fd) => match kind_of(&st) {
                    libc::S_IFREG => out.push(Entry {
                        path: d,
                        st,
                        kind: EntryKind::File { layer, at: a },
                    }),
                    libc::S_IFLNK => {
                        let t = nix::fcntl::readlinkat(Some(fd.as_raw_fd()), "")
                            .map_err(|e| io(&r)(e.into()))?;
                        out.push(Entry {
                            path: d,
                            st,
                            kind: EntryKind::Link(PathBuf::from(t)),
                        });
                    }
                    // Devices, FIFOs and sockets are not copied (BuildKit copies devices; a
                    // context rarely holds one), nor a context's 0/0 device.
                    _ => {}
                },
            }
        }
        Ok(())
    }

    /// Open the regular file at `at` in `layer` for reading: beneath the layer, no symlink on
    /// the way, and the very object that was listed (`st`).
    fn open_file(&self, layer: usize, at: &Path, st: &libc::stat) -> std::io::Result<File> {
        let fd = safefs::openat2(
            self.roots[layer].as_fd(),
            at,
            libc::O_RDONLY | libc::O_NOFOLLOW | libc::O_CLOEXEC,
            0,
            BENEATH | libc::RESOLVE_NO_SYMLINKS,
        )?;
        let again = stat_fd(fd.as_fd())?;
        if (again.st_dev, again.st_ino) != (st.st_dev, st.st_ino) {
            return Err(std::io::Error::other(
                "replaced while the build read it: build again",
            ));
        }
        Ok(File::from(fd))
    }
}

/// True when `s` has glob characters.
fn has_glob(s: &str) -> bool {
    s.contains(['*', '?', '['])
}

/// True when the last component of `src` has glob characters (the one [`expand_src`]
/// expands).
fn glob_in_last(src: &str) -> bool {
    Path::new(src)
        .file_name()
        .and_then(|n| n.to_str())
        .is_some_and(has_glob)
}

/// The source-relative names `src` stands for (a glob in its last component expanded).
fn expand_src(tree: &Tree<'_>, src: &str) -> Result<Vec<PathBuf>, CopyError> {
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
    let Some((_, Node::Dir(_, stack))) = tree.resolve(&parent, src)? else {
        return Ok(vec![]);
    };
    let pat: Vec<char> = last.chars().collect();
    let mut hits: Vec<PathBuf> = Tree::names(&stack)
        .map_err(io(&parent))?
        .into_iter()
        .filter(|n| {
            let c: Vec<char> = n.to_string_lossy().chars().collect();
            glob(&pat, &c)
        })
        .map(|n| parent.join(n))
        .filter(|p| !tree.excluded(p) || tree.may_include_below(p))
        .collect();
    hits.sort();
    Ok(hits)
}

/// Collect the entries one source contributes, under `dest` (`dest_is_dir`: a file goes to
/// `dest/<its name>`).
fn collect_one(
    tree: &Tree<'_>,
    rel: &Path,
    shown: &str,
    dest: &Path,
    (dest_is_dir, dest_exists): (bool, bool),
    out: &mut Vec<Entry>,
) -> Result<bool, CopyError> {
    if rel.components().any(|c| matches!(c, Component::ParentDir)) {
        // `..` never leaves the context in Docker either: refused here, loudly.
        return Err(CopyError::Outside(shown.to_string()));
    }
    let hidden = tree.excluded(rel);
    if hidden && !tree.may_include_below(rel) {
        return Ok(false);
    }
    let Some((at, node)) = tree.resolve(rel, shown)? else {
        return Ok(false);
    };
    // The ignore rules of where the source is, when a symlink led there.
    let hidden = hidden || tree.excluded(&at);
    match node {
        Node::Missing => return Ok(false),
        Node::Dir(st, stack) => {
            let mut below = Vec::new();
            tree.walk(stack, 0, &at, rel, dest, &mut below)?;
            if hidden && below.is_empty() {
                return Ok(false); // left out, and no exception brings anything back
            }
            if !dest_exists {
                out.push(Entry {
                    path: dest.to_path_buf(),
                    st,
                    kind: EntryKind::DestDir,
                });
            }
            out.append(&mut below);
        }
        Node::Other(..) if hidden => return Ok(false),
        Node::Other(st, layer, _) if kind_of(&st) == libc::S_IFREG => {
            let name = rel.file_name().map(PathBuf::from).unwrap_or_default();
            let path = if dest_is_dir {
                dest.join(name)
            } else {
                dest.to_path_buf()
            };
            out.push(Entry {
                path,
                st,
                kind: EntryKind::File { layer, at },
            });
        }
        // A wildcard's match that is no file is left out, as `COPY dir` leaves it out.
        Node::Other(..) if glob_in_last(shown) => return Ok(false),
        Node::Other(st, ..) => {
            return Err(CopyError::NotAFile(
                safefs::relative(Path::new(shown)).display().to_string(),
                match kind_of(&st) {
                    libc::S_IFIFO => "a FIFO",
                    libc::S_IFSOCK => "a socket",
                    libc::S_IFCHR => "a character device",
                    libc::S_IFBLK => "a block device",
                    _ => "not a regular file",
                },
            ))
        }
    }
    Ok(true)
}

/// Write entries as a sorted layer tar; `extract`: regular files that are tar archives are
/// written as their contents under their directory.
/// `dest_file`: the destination when it names a file (no trailing slash, one source): an
/// archive ADDed there is unpacked into a directory of that name, as Docker does.
fn write_tar<W: Write>(
    tree: &Tree<'_>,
    collected: Vec<Entry>,
    opts: &CopyOptions,
    dest_file: Option<&Path>,
    out: W,
) -> Result<(W, String), CopyError> {
    // A later source's entry for a path replaces an earlier one's. The map's byte order is
    // the tar's.
    let mut merged: std::collections::BTreeMap<Vec<u8>, Entry> = Default::default();
    for d in &opts.image_dirs {
        let path = Path::new("/").join(&d.path);
        merged.insert(
            path.components()
                .collect::<PathBuf>()
                .into_os_string()
                .into_vec(),
            Entry {
                path,
                st: d.st,
                kind: EntryKind::ImageDir(d.st.st_uid, d.st.st_gid),
            },
        );
    }
    for e in collected {
        // Keyed without a trailing `/`: `/app/` (the destination as given) is `/app`.
        let key: PathBuf = e.path.components().collect();
        merged.insert(key.into_os_string().into_vec(), e);
    }
    let entries = merged.into_values();
    let mut b = tar::Builder::new(out);
    b.mode(tar::HeaderMode::Complete);
    let (uid, gid) = opts.chown.unwrap_or((0, 0));
    let mut key = Sha256::new();
    for e in entries {
        let rel = safefs::relative(&e.path);
        let shown = e.path.clone();
        // In a layer a `.wh.` name is a deletion: a context file called so would delete the
        // image's files where the layer is unpacked (commit refuses them too).
        if rel
            .file_name()
            .is_some_and(|n| n.as_bytes().starts_with(b".wh."))
        {
            return Err(CopyError::WhiteoutName(shown.display().to_string()));
        }
        let mut h = tar::Header::new_gnu();
        h.set_uid(uid.into());
        h.set_gid(gid.into());
        h.set_mtime(e.st.st_mtime.max(0) as u64);
        let mode = match e.kind {
            EntryKind::DestDir => 0o755,
            EntryKind::ImageDir(..) => e.st.st_mode & 0o7777,
            _ => opts.chmod.unwrap_or(e.st.st_mode & 0o7777),
        };
        h.set_mode(mode);
        let (uid, gid) = match e.kind {
            EntryKind::ImageDir(u, g) => {
                h.set_uid(u.into());
                h.set_gid(g.into());
                (u, g)
            }
            _ => (uid, gid),
        };
        match e.kind {
            EntryKind::Dir | EntryKind::DestDir | EntryKind::ImageDir(..) => {
                if rel.as_os_str().is_empty() {
                    continue; // the root itself keeps what it is
                }
                h.set_entry_type(tar::EntryType::Directory);
                h.set_size(0);
                key_line(&mut key, b"dir", &rel, mode, (uid, gid), b"");
                let mut p = rel.into_os_string();
                p.push("/");
                b.append_data(&mut h, p, std::io::empty())
                    .map_err(io(&shown))?;
            }
            EntryKind::Link(t) => {
                h.set_entry_type(tar::EntryType::Symlink);
                h.set_mode(0o777);
                h.set_size(0);
                key_line(
                    &mut key,
                    b"symlink",
                    &rel,
                    0o777,
                    (uid, gid),
                    t.as_os_str().as_bytes(),
                );
                b.append_link(&mut h, rel, t).map_err(io(&shown))?;
            }
            EntryKind::File { layer, at } => {
                // Opened now, one at a time, and closed once written.
                let mut f = tree.open_file(layer, &at, &e.st).map_err(io(&shown))?;
                if opts.extract {
                    // What an archive extracts to follows from its bytes: they are the key
                    // (hashed in one streamed pass first).
                    let mut whole = Hashing {
                        inner: &mut f,
                        hash: Sha256::new(),
                    };
                    std::io::copy(&mut whole, &mut std::io::sink()).map_err(io(&shown))?;
                    let digest = whole.hash.finalize();
                    key_line(&mut key, b"add", &rel, mode, (uid, gid), &digest);
                    let dir = if dest_file == Some(e.path.as_path()) {
                        rel.as_path()
                    } else {
                        rel.parent().unwrap_or(Path::new(""))
                    };
                    if extract_into(&mut b, &mut f, dir).map_err(io(&shown))? {
                        continue;
                    }
                    // Not an archive: copied as it is.
                    f.seek(SeekFrom::Start(0)).map_err(io(&shown))?;
                    h.set_entry_type(tar::EntryType::Regular);
                    h.set_size(e.st.st_size as u64);
                    b.append_data(&mut h, &rel, Exact::new(f, e.st.st_size as u64))
                        .map_err(io(&shown))?;
                    continue;
                }
                h.set_entry_type(tar::EntryType::Regular);
                h.set_size(e.st.st_size as u64);
                // The content is hashed as it streams into the tar.
                let mut content = Hashing {
                    inner: Exact::new(f, e.st.st_size as u64),
                    hash: Sha256::new(),
                };
                b.append_data(&mut h, &rel, &mut content)
                    .map_err(io(&shown))?;
                key_line(
                    &mut key,
                    b"file",
                    &rel,
                    mode,
                    (uid, gid),
                    &content.hash.finalize(),
                );
            }
        }
    }
    let out = b.into_inner().map_err(io(Path::new("the layer")))?;
    Ok((out, format!("sha256:{:x}", key.finalize())))
}

/// `size` bytes of `inner`, no more (a file that grew while read gives its first `size`), and
/// an error when it ends sooner: the tar header already says `size`, so a file that shrank
/// while read would leave a corrupt layer.
struct Exact<R> {
    inner: R,
    left: u64,
}

impl<R: Read> Exact<R> {
    fn new(inner: R, size: u64) -> Exact<R> {
        Exact { inner, left: size }
    }
}

impl<R: Read> Read for Exact<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.left == 0 || buf.is_empty() {
            return Ok(0);
        }
        let max = buf
            .len()
            .min(usize::try_from(self.left).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..max])?;
        if n == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                format!(
                    "changed while read: {} bytes shorter than when listed: build again",
                    self.left
                ),
            ));
        }
        self.left -= n as u64;
        Ok(n)
    }
}

/// One entry's part of the cache key: what it is, its path, mode, owner and its target or
/// content digest, each field length-prefixed. Never its mtime: Docker's cache ignores mtimes.
fn key_line(
    key: &mut Sha256,
    kind: &[u8],
    path: &Path,
    mode: u32,
    (uid, gid): (u32, u32),
    what: &[u8],
) {
    let mode = mode.to_string();
    let (uid, gid) = (uid.to_string(), gid.to_string());
    for field in [
        kind,
        path.as_os_str().as_bytes(),
        mode.as_bytes(),
        uid.as_bytes(),
        gid.as_bytes(),
        what,
    ] {
        key.update((field.len() as u64).to_le_bytes());
        key.update(field);
    }
}

/// The content of `f` from its start, gunzipped when it is gzip.
fn archive_stream(f: &mut File) -> std::io::Result<Box<dyn Read + '_>> {
    f.seek(SeekFrom::Start(0))?;
    let mut magic = Vec::with_capacity(2);
    (&mut *f).take(2).read_to_end(&mut magic)?;
    f.seek(SeekFrom::Start(0))?;
    let r = std::io::BufReader::with_capacity(1 << 16, f);
    Ok(if magic == [0x1f, 0x8b] {
        Box::new(crate::image::gunzip::GzipReader::new(r))
    } else {
        Box::new(r)
    })
}

/// When `f` is a tar archive (plain or gzip: its first block a ustar header), append its
/// entries under `dir`, streamed: `true`; `false` when it is no archive.
fn extract_into<W: Write>(
    b: &mut tar::Builder<W>,
    f: &mut File,
    dir: &Path,
) -> std::io::Result<bool> {
    let mut head = Vec::with_capacity(512);
    let probe = archive_stream(f)?.take(512).read_to_end(&mut head);
    if probe.is_err() || head.len() < 512 || &head[257..262] != b"ustar" {
        return Ok(false);
    }
    let mut a = tar::Archive::new(archive_stream(f)?);
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
        // What a PAX header said of the entry is kept: its size (over 8 GiB it lives only
        // there; the plain header's would disagree with the data appended) and its xattrs
        // (`security.capability`: a file's capabilities). overlayfs's own are left out.
        h.set_size(e.size());
        let mut xattrs = Vec::new();
        if let Some(exts) = e.pax_extensions()? {
            for ext in exts {
                let ext = ext?;
                let Ok(key) = ext.key() else { continue };
                if let Some(name) = key.strip_prefix("SCHILY.xattr.") {
                    if !crate::layers::commit::overlay_xattr(name) {
                        xattrs.extend(crate::layers::commit::pax_record(key, ext.value_bytes()));
                    }
                }
            }
        }
        crate::layers::commit::pax_xattrs(b, &target, &xattrs)?;
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
            _ => b.append_data(&mut h, target, &mut e)?,
        }
    }
    Ok(true)
}

/// The layer tar of `COPY srcs dest` (dest absolute, the working directory applied), written
/// into `out` as it is read (a file's content is never held in memory whole), and the step's
/// cache key: a digest of each entry's path, kind, mode, owner and link target or content
/// digest, without the mtimes the tar's headers carry (Docker's cache does not consider them).
pub fn copy_layer<W: Write>(
    source: &Source<'_>,
    srcs: &[String],
    dest: &str,
    opts: &CopyOptions,
    out: W,
) -> Result<(W, String), CopyError> {
    let many = srcs.len() > 1 || srcs.iter().any(|s| has_glob(s));
    let dest_is_dir = dest.ends_with('/') || many;
    let dest_path = PathBuf::from(dest);
    let tree = Tree::new(source)?;
    let mut entries = Vec::new();
    for src in srcs {
        let mut found = false;
        for rel in expand_src(&tree, src)? {
            found |= collect_one(
                &tree,
                &rel,
                src,
                &dest_path,
                (dest_is_dir, opts.dest_exists),
                &mut entries,
            )?;
        }
        // A wildcard that matches nothing is no error (BuildKit's AllowEmptyWildcard:
        // `COPY package.json yarn.lock* ./` without a yarn.lock); a name without one must be
        // there.
        if !found && !glob_in_last(src) {
            return Err(CopyError::NotFound(
                safefs::relative(Path::new(src)).display().to_string(),
            ));
        }
    }
    // The directories the COPY makes on the way to the destination (the image has the first
    // `image_dirs`): 0755 and `--chown`'s, as BuildKit's MkdirAll makes them, not the
    // unpack's 0755 root's (`COPY --chown=7:8 f /new/` gives a /new of 7:8).
    let dest_dir = if dest_is_dir {
        dest_path.as_path()
    } else {
        dest_path.parent().unwrap_or(Path::new("/"))
    };
    if let Some(root) = tree.roots.first() {
        let st = stat_fd(root.as_fd()).map_err(io(Path::new("the source")))?;
        let mut made = PathBuf::from("/");
        for (i, c) in dest_dir
            .components()
            .filter(|c| matches!(c, Component::Normal(_)))
            .enumerate()
        {
            made.push(c);
            if i >= opts.image_dirs.len() {
                entries.push(Entry {
                    path: made.clone(),
                    st,
                    kind: EntryKind::DestDir,
                });
            }
        }
    }
    write_tar(
        &tree,
        entries,
        opts,
        (!dest_is_dir).then_some(dest_path.as_path()),
        out,
    )
}

/// Where a COPY's destination is in the image of `dirs` (layers bottom first), as BuildKit
/// finds it: resolved inside the image's root (`RESOLVE_IN_ROOT`: an absolute symlink is the
/// image's path, `..` stops at its root), the part that does not exist yet as written. The
/// layer's tar then names the resolved path, so `COPY f /lnk/` with `/lnk -> real` writes
/// `real/f` and leaves the link a link (a `lnk/f` entry would make `lnk` a directory in the
/// new layer and hide the link, as `/bin -> usr/bin` of Debian's images).
#[derive(Debug, Clone)]
pub struct Dest {
    /// The absolute path with no symlink in it; a trailing `/` when it is a directory (the
    /// image's, or one the COPY makes because `dest` ended in `/`).
    pub path: String,
    /// The image has a directory there already.
    pub exists_dir: bool,
    /// The image has something there already (a directory or not).
    pub exists: bool,
    /// The directories the image has on the way, root first (the destination too when it is
    /// one): [`CopyOptions::image_dirs`].
    pub dirs: Vec<ImageDir>,
}

/// [`Dest`] of `dest` (absolute; a trailing `/` when it must be a directory).
pub fn dest_in_layers(dirs: &[PathBuf], dest: &str) -> Result<Dest, CopyError> {
    let rel = safefs::relative(Path::new(dest));
    let slash = dest.ends_with('/');
    if rel.as_os_str().is_empty() {
        return Ok(Dest {
            path: "/".into(),
            exists_dir: true,
            exists: true,
            dirs: vec![],
        });
    }
    let tree = Tree::new(&Source::Layers(dirs))?;
    let abs = |p: &Path, dir: bool| {
        let mut s = Path::new("/").join(p).display().to_string();
        if dir && !s.ends_with('/') {
            s.push('/');
        }
        s
    };
    let mut d = match tree.lookup(&rel, dest)? {
        Lookup::Found(p, Node::Dir(..)) => Dest {
            path: abs(&p, true),
            exists_dir: true,
            exists: true,
            dirs: vec![],
        },
        Lookup::Found(p, _) => Dest {
            path: abs(&p, slash),
            exists_dir: false,
            exists: true,
            dirs: vec![],
        },
        Lookup::Missing(p) => Dest {
            path: abs(&p, slash),
            exists_dir: false,
            exists: false,
            dirs: vec![],
        },
        Lookup::NotDir(p) => {
            return Err(CopyError::NotADirectory(dest.to_string(), abs(&p, false)))
        }
    };
    let mut prefix = PathBuf::new();
    for c in Path::new(&d.path).components() {
        let Component::Normal(n) = c else { continue };
        prefix.push(n);
        match tree.resolve(&prefix, dest)? {
            Some((_, Node::Dir(st, _))) => d.dirs.push(ImageDir {
                path: prefix.clone(),
                st,
            }),
            _ => break,
        }
    }
    Ok(d)
}

/// The layer tar of the directory `WORKDIR path` makes in the image of `dirs` (layers bottom
/// first), at its path resolved inside the image as [`dest_in_layers`] does (a `WORKDIR`
/// through a symlink makes the directory where the link leads); `None` when the image has
/// something there already.
pub fn workdir_layer(dirs: &[PathBuf], path: &str) -> Result<Option<Vec<u8>>, CopyError> {
    let d = dest_in_layers(dirs, path)?;
    Ok((!d.exists).then(|| dir_layer(&d.path, &d.dirs)))
}

/// The layer tar of a directory that `WORKDIR` makes, after the image's directories on its
/// way (`parents`, with their own metadata, so the layer does not replace it).
pub fn dir_layer(path: &str, parents: &[ImageDir]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for d in parents {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Directory);
        h.set_mode(d.st.st_mode & 0o7777);
        h.set_uid(d.st.st_uid.into());
        h.set_gid(d.st.st_gid.into());
        h.set_size(0);
        h.set_mtime(d.st.st_mtime.max(0) as u64);
        let mut p = d.path.clone().into_os_string();
        p.push("/");
        b.append_data(&mut h, p, std::io::empty())
            .expect("in memory");
    }
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

/// What `path` is in the image of `dirs` (layers bottom first), merged as overlayfs merges
/// them, symlinks resolved inside its root.
fn lookup_in_layers(dirs: &[PathBuf], path: &str) -> Option<libc::stat> {
    let tree = Tree::new(&Source::Layers(dirs)).ok()?;
    match tree.resolve(&safefs::relative(Path::new(path)), path) {
        Ok(Some((_, Node::Dir(st, _) | Node::Other(st, ..)))) => Some(st),
        _ => None,
    }
}

/// True when `path` exists in the image of `dirs` (a directory WORKDIR need not make).
pub fn exists_in_layers(dirs: &[PathBuf], path: &str) -> bool {
    if safefs::relative(Path::new(path)).as_os_str().is_empty() {
        return true;
    }
    lookup_in_layers(dirs, path).is_some()
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
        let (tar, _) = copy_layer(
            &src,
            &[".".into()],
            "/app/",
            &CopyOptions::default(),
            Vec::new(),
        )
        .unwrap();
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
        let (tar, _) = copy_layer(
            &src,
            &["build".into()],
            "/b/",
            &CopyOptions::default(),
            Vec::new(),
        )
        .unwrap();
        assert_eq!(names(tar), ["b/", "b/keep/", "b/keep/sub/", "b/keep/sub/f"]);
        assert!(matches!(
            copy_layer(
                &src,
                &["gone".into()],
                "/g/",
                &CopyOptions::default(),
                Vec::new()
            ),
            Err(CopyError::NotFound(_))
        ));
        assert!(matches!(
            copy_layer(
                &src,
                &["build/x".into()],
                "/x",
                &CopyOptions::default(),
                Vec::new()
            ),
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
        let (tar, _) = copy_layer(
            &src,
            &["d".into()],
            "/app",
            &CopyOptions::default(),
            Vec::new(),
        )
        .unwrap();
        let mut a = tar::Archive::new(&tar[..]);
        let names: Vec<String> = a
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().display().to_string())
            .collect();
        assert_eq!(names, ["app/", "app/sub/", "app/sub/f"]);
        assert!(matches!(
            copy_layer(
                &src,
                &["out".into()],
                "/x",
                &CopyOptions::default(),
                Vec::new()
            ),
            Err(CopyError::Outside(_))
        ));
        assert!(matches!(
            copy_layer(
                &src,
                &["../secret".into()],
                "/x",
                &CopyOptions::default(),
                Vec::new()
            ),
            Err(CopyError::Outside(_))
        ));
        assert!(matches!(
            copy_layer(
                &src,
                &["d/x.log".into()],
                "/x",
                &CopyOptions::default(),
                Vec::new()
            ),
            Err(CopyError::NotFound(_))
        ));
        let (tar, _) = copy_layer(
            &src,
            &["in".into()],
            "/etc/",
            &CopyOptions {
                chown: Some((5, 6)),
                ..Default::default()
            },
            Vec::new(),
        )
        .unwrap();
        let mut a = tar::Archive::new(&tar[..]);
        let mut all = a.entries().unwrap();
        let made = all.next().unwrap().unwrap();
        // /etc made by the COPY (no image here has it): 0755, --chown's.
        assert_eq!(made.path().unwrap().display().to_string(), "etc/");
        assert_eq!(made.header().mode().unwrap(), 0o755);
        assert_eq!(made.header().uid().unwrap(), 5);
        let e = all.next().unwrap().unwrap();
        assert_eq!(e.path().unwrap().display().to_string(), "etc/in");
        assert_eq!(e.header().uid().unwrap(), 5);
        assert_eq!(e.header().entry_type(), tar::EntryType::Regular);
    }

    #[test]
    fn the_cache_key_ignores_mtimes_but_not_content_mode_or_owner() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("d/f");
        std::fs::create_dir_all(dir.path().join("d")).unwrap();
        std::fs::write(&f, b"same").unwrap();
        let root = safefs::open_root(dir.path()).unwrap();
        let ignore = Ignore::default();
        let src = Source::Context {
            root: root.as_fd(),
            ignore: &ignore,
        };
        let copy =
            |opts: &CopyOptions| copy_layer(&src, &["d".into()], "/d", opts, Vec::new()).unwrap();
        let set_mtime = |t: u64| {
            std::fs::File::options()
                .write(true)
                .open(&f)
                .unwrap()
                .set_modified(std::time::UNIX_EPOCH + std::time::Duration::from_secs(t))
                .unwrap();
        };
        set_mtime(1_000_000);
        let (tar1, key1) = copy(&CopyOptions::default());
        set_mtime(2_000_000);
        let (tar2, key2) = copy(&CopyOptions::default());
        assert_ne!(tar1, tar2, "the tar carries the mtime");
        assert_eq!(key1, key2, "the key does not");
        std::fs::write(&f, b"diff").unwrap();
        set_mtime(2_000_000);
        assert_ne!(copy(&CopyOptions::default()).1, key2);
        std::fs::write(&f, b"same").unwrap();
        assert_eq!(copy(&CopyOptions::default()).1, key2);
        let chmod = CopyOptions {
            chmod: Some(0o600),
            ..Default::default()
        };
        assert_ne!(copy(&chmod).1, key2);
        let chown = CopyOptions {
            chown: Some((1, 1)),
            ..Default::default()
        };
        assert_ne!(copy(&chown).1, key2);
    }

    #[test]
    fn add_keeps_what_an_archive_s_pax_headers_say_of_an_entry() {
        // A file with a capability (SCHILY.xattr.security.capability) and a PAX size that
        // overrides a wrong one in the plain header: both kept, overlayfs's own xattr dropped.
        let dir = tempfile::tempdir().unwrap();
        let mut t = tar::Builder::new(Vec::new());
        let mut records = crate::layers::commit::pax_record(
            "SCHILY.xattr.security.capability",
            b"\x01\x00\x00\x02",
        );
        records.extend(crate::layers::commit::pax_record(
            "SCHILY.xattr.trusted.overlay.opaque",
            b"y",
        ));
        records.extend(crate::layers::commit::pax_record("size", b"5"));
        crate::layers::commit::pax_xattrs(&mut t, Path::new("ping"), &records).unwrap();
        let mut h = tar::Header::new_ustar();
        h.set_path("ping").unwrap();
        h.set_size(1); // wrong on purpose: the PAX record says 5
        h.set_mode(0o755);
        h.set_entry_type(tar::EntryType::Regular);
        h.set_cksum();
        t.append(&h, &b"pong\n"[..]).unwrap();
        std::fs::write(dir.path().join("cap.tar"), t.into_inner().unwrap()).unwrap();
        let root = safefs::open_root(dir.path()).unwrap();
        let ignore = Ignore::default();
        let src = Source::Context {
            root: root.as_fd(),
            ignore: &ignore,
        };
        let add = CopyOptions {
            extract: true,
            ..Default::default()
        };
        let (tar, _) = copy_layer(&src, &["cap.tar".into()], "/bin/", &add, Vec::new()).unwrap();
        let mut a = tar::Archive::new(&tar[..]);
        let mut found = false;
        for e in a.entries().unwrap() {
            let mut e = e.unwrap();
            if e.path().unwrap() != Path::new("bin/ping") {
                continue;
            }
            found = true;
            let xattrs: Vec<(String, Vec<u8>)> = e
                .pax_extensions()
                .unwrap()
                .expect("a PAX header before bin/ping")
                .map(|x| {
                    let x = x.unwrap();
                    (x.key().unwrap().to_string(), x.value_bytes().to_vec())
                })
                .collect();
            assert_eq!(
                xattrs,
                [(
                    "SCHILY.xattr.security.capability".to_string(),
                    b"\x01\x00\x00\x02".to_vec()
                )]
            );
            let mut v = Vec::new();
            e.read_to_end(&mut v).unwrap();
            assert_eq!(v, b"pong\n");
        }
        assert!(found, "bin/ping is not in the layer");
    }

    #[test]
    fn add_streams_plain_and_gzip_archives_and_copies_anything_else() {
        use std::io::Write as _;
        let dir = tempfile::tempdir().unwrap();
        let mut t = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_size(3);
        h.set_mode(0o644);
        h.set_entry_type(tar::EntryType::Regular);
        t.append_data(&mut h, "a/b", &b"in\n"[..]).unwrap();
        let plain = t.into_inner().unwrap();
        let gz = |data: &[u8]| {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            e.write_all(data).unwrap();
            e.finish().unwrap()
        };
        std::fs::write(dir.path().join("p.tar"), &plain).unwrap();
        std::fs::write(dir.path().join("z.tgz"), gz(&plain)).unwrap();
        std::fs::write(dir.path().join("text.gz"), gz(b"just text")).unwrap();
        std::fs::write(dir.path().join("note"), b"not an archive").unwrap();
        let root = safefs::open_root(dir.path()).unwrap();
        let ignore = Ignore::default();
        let src = Source::Context {
            root: root.as_fd(),
            ignore: &ignore,
        };
        let add = CopyOptions {
            extract: true,
            ..Default::default()
        };
        let srcs = ["p.tar", "z.tgz", "text.gz", "note"].map(String::from);
        let (tar, _) = copy_layer(&src, &srcs, "/x/", &add, Vec::new()).unwrap();
        let mut a = tar::Archive::new(&tar[..]);
        let got: Vec<(String, Vec<u8>)> = a
            .entries()
            .unwrap()
            .map(|e| {
                let mut e = e.unwrap();
                let p = e.path().unwrap().display().to_string();
                let mut v = Vec::new();
                e.read_to_end(&mut v).unwrap();
                (p, v)
            })
            .collect();
        assert_eq!(
            got,
            // In the order of the archives' own names (x/note, x/p.tar, x/text.gz, x/z.tgz).
            [
                ("x/".to_string(), vec![]),
                ("x/note".to_string(), b"not an archive".to_vec()),
                ("x/a/b".to_string(), b"in\n".to_vec()),
                ("x/text.gz".to_string(), gz(b"just text")),
                ("x/a/b".to_string(), b"in\n".to_vec()),
            ]
        );
    }

    #[test]
    fn a_file_that_shrinks_while_read_is_an_error_not_a_short_entry() {
        // A reader that ends before the size the header was given.
        let short = &b"abc"[..];
        let mut v = Vec::new();
        let e = Exact::new(short, 5).read_to_end(&mut v).unwrap_err();
        assert!(e.to_string().contains("changed while read"), "{e}");
        // One that grew: the listed size only.
        let mut v = Vec::new();
        Exact::new(&b"abcdef"[..], 4).read_to_end(&mut v).unwrap();
        assert_eq!(v, b"abcd");
        // And through the tar builder: no layer with a header saying 5 and 3 bytes after it.
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_size(5);
        assert!(b.append_data(&mut h, "f", Exact::new(short, 5)).is_err());
    }

    #[test]
    fn an_empty_wildcard_is_no_error_a_missing_name_is() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("package.json"), b"{}").unwrap();
        nix::unistd::mkfifo(&dir.path().join("fifo"), nix::sys::stat::Mode::S_IRWXU).unwrap();
        let root = safefs::open_root(dir.path()).unwrap();
        let ignore = Ignore::default();
        let src = Source::Context {
            root: root.as_fd(),
            ignore: &ignore,
        };
        let names = |srcs: &[&str]| -> Result<Vec<String>, CopyError> {
            let srcs: Vec<String> = srcs.iter().map(|s| s.to_string()).collect();
            let (tar, _) = copy_layer(&src, &srcs, "/app/", &CopyOptions::default(), Vec::new())?;
            Ok(tar::Archive::new(&tar[..])
                .entries()
                .unwrap()
                .map(|e| e.unwrap().path().unwrap().display().to_string())
                .collect())
        };
        assert_eq!(
            names(&["package.json", "yarn.lock*"]).unwrap(),
            ["app/", "app/package.json"]
        );
        // Only the destination, as BuildKit makes it before copying nothing.
        assert_eq!(names(&["yarn.lock*"]).unwrap(), ["app/"]);
        assert!(matches!(
            names(&["package.json", "yarn.lock"]),
            Err(CopyError::NotFound(n)) if n == "yarn.lock"
        ));
        // A FIFO is there: said so, not "not found"; a wildcard's match that is one is left out.
        let e = names(&["fifo"]).unwrap_err();
        assert!(matches!(e, CopyError::NotAFile(..)), "{e}");
        assert!(e.to_string().contains("a FIFO"), "{e}");
        assert_eq!(names(&["fi*", "p*"]).unwrap(), ["app/", "app/package.json"]);
    }

    #[test]
    fn a_symlink_reaches_nothing_that_dockerignore_leaves_out() {
        let dir = tempfile::tempdir().unwrap();
        let ctx = dir.path();
        std::fs::write(ctx.join("secret"), b"s").unwrap();
        std::fs::create_dir_all(ctx.join("build/keep")).unwrap();
        std::fs::write(ctx.join("build/x"), b"x").unwrap();
        std::fs::write(ctx.join("build/keep/k"), b"k").unwrap();
        std::fs::create_dir_all(ctx.join("d")).unwrap();
        std::os::unix::fs::symlink("secret", ctx.join("link")).unwrap();
        std::os::unix::fs::symlink("build", ctx.join("linkdir")).unwrap();
        std::os::unix::fs::symlink("../secret", ctx.join("d/up")).unwrap();
        std::os::unix::fs::symlink("build/keep", ctx.join("keeplink")).unwrap();
        let root = safefs::open_root(ctx).unwrap();
        let ignore = Ignore::parse("secret\nbuild\n!build/keep\n");
        let src = Source::Context {
            root: root.as_fd(),
            ignore: &ignore,
        };
        let copy = |s: &str| {
            copy_layer(
                &src,
                &[s.to_string()],
                "/x/",
                &CopyOptions::default(),
                Vec::new(),
            )
            .map(|(tar, _)| {
                tar::Archive::new(&tar[..])
                    .entries()
                    .unwrap()
                    .map(|e| e.unwrap().path().unwrap().display().to_string())
                    .collect::<Vec<_>>()
            })
        };
        for s in ["link", "d/up", "linkdir/x"] {
            assert!(
                matches!(copy(s), Err(CopyError::NotFound(_))),
                "{s}: {:?}",
                copy(s).map_err(|e| e.to_string())
            );
        }
        // Through a link to a left-out directory: only what an exception brings back.
        assert_eq!(copy("linkdir").unwrap(), ["x/", "x/keep/", "x/keep/k"]);
        assert_eq!(copy("keeplink").unwrap(), ["x/", "x/k"]);
        assert_eq!(copy("linkdir/keep/k").unwrap(), ["x/", "x/k"]);
    }

    #[test]
    fn a_destination_resolves_inside_the_image_root() {
        let dir = tempfile::tempdir().unwrap();
        let (l1, l2) = (dir.path().join("l1"), dir.path().join("l2"));
        std::fs::create_dir_all(l1.join("usr/bin")).unwrap();
        std::fs::create_dir_all(l1.join("tmp")).unwrap();
        std::os::unix::fs::symlink("usr/bin", l1.join("bin")).unwrap();
        std::fs::create_dir_all(&l2).unwrap();
        // Absolute, and climbing above the root: both stay inside it.
        std::os::unix::fs::symlink("/../../usr", l2.join("u")).unwrap();
        std::os::unix::fs::symlink("usr/bin/../../usr/./bin", l2.join("ub")).unwrap();
        std::fs::write(l1.join("file"), b"f").unwrap();
        let dirs = [l1, l2];
        assert_eq!(dest_in_layers(&dirs, "/ub").unwrap().path, "/usr/bin/");
        let d = dest_in_layers(&dirs, "/bin").unwrap();
        assert_eq!(d.path, "/usr/bin/");
        assert!(d.exists_dir);
        let paths: Vec<_> = d
            .dirs
            .iter()
            .map(|d| d.path.display().to_string())
            .collect();
        assert_eq!(paths, ["usr", "usr/bin"]);
        assert_eq!(dest_in_layers(&dirs, "/u/new/").unwrap().path, "/usr/new/");
        let d = dest_in_layers(&dirs, "/u/bin/x").unwrap();
        assert_eq!((d.path.as_str(), d.exists), ("/usr/bin/x", false));
        assert!(matches!(
            dest_in_layers(&dirs, "/file/x"),
            Err(CopyError::NotADirectory(..))
        ));
        let w = workdir_layer(&dirs, "/bin/w").unwrap().unwrap();
        let names: Vec<String> = tar::Archive::new(&w[..])
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().display().to_string())
            .collect();
        assert_eq!(names, ["usr/", "usr/bin/", "usr/bin/w/"]);
        assert!(workdir_layer(&dirs, "/bin").unwrap().is_none());
    }
}
