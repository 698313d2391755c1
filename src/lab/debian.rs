//! `lab up --with debian`: a distro-sized image for the benchmarks, built reproducibly.
//!
//! Two root filesystems are made with `debootstrap --variant=minbase` from the Debian mirror
//! this machine's own apt sources name (never another host): the bare system, and the same
//! with `apache2` included. They are kept under the lab's directory (`<root>/lab/debian/`,
//! with the downloaded packages in `debs/`), so a second `lab up --with debian` downloads
//! nothing. From them two images are built with the store's own machinery:
//!
//! - `debian:latest`: one layer, the bare system;
//! - `debian:apache2`: that layer plus one holding what installing apache2 added or changed
//!   (a new or changed file, with the directories above it; a removed one as a whiteout),
//!   as a Dockerfile's `RUN apt-get install apache2` would.
//!
//! The layers are reproducible: entries in byte order of their names, every mtime the lab's
//! epoch (`SOURCE_DATE_EPOCH` when set, otherwise the time the first debootstrap finished,
//! kept in `debian/epoch`), owners and modes as debootstrap made them, fixed gzip headers. So
//! the same cached file systems give the same digests, and a second `lab up` pushes nothing.
//! Left out, as Debian's official images leave them out: the downloaded packages
//! (`var/cache/apt/archives/*.deb`), apt's lists, the device nodes under `dev/` and the
//! host's `etc/resolv.conf` and `etc/hostname`.
//!
//! The file systems are read through descriptors only ([`crate::archive::write_tree`]).

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::os::fd::AsFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use sha2::{Digest, Sha256};
use tar::EntryType;

use crate::error::{Error, Result};
use crate::image::reference::Reference;
use crate::image::store::{Image, Store};
use crate::registry::RegistryError;

/// Debian's debootstrap.
pub const DEBOOTSTRAP: &str = "/usr/sbin/debootstrap";

/// The package whose files make the second layer.
pub const EXTRA_PACKAGE: &str = "apache2";

/// Whether debootstrap is installed.
pub fn have_debootstrap() -> bool {
    Path::new(DEBOOTSTRAP).is_file()
}

fn fail(msg: impl Into<String>) -> Error {
    RegistryError::LabImage(msg.into()).into()
}

/// The Debian mirror and suite apt already uses here: the first `deb` source (one-line
/// `sources.list` form or deb822 `.sources` form) for the `debian` archive itself (not
/// `debian-security`), with `main` among its components.
pub fn apt_mirror() -> Result<(String, String)> {
    let mut files = vec![PathBuf::from("/etc/apt/sources.list")];
    if let Ok(rd) = std::fs::read_dir("/etc/apt/sources.list.d") {
        let mut more: Vec<PathBuf> = rd.flatten().map(|e| e.path()).collect();
        more.sort();
        files.extend(more);
    }
    for f in files {
        let Ok(text) = std::fs::read_to_string(&f) else {
            continue;
        };
        let found = match f.extension().and_then(|e| e.to_str()) {
            Some("sources") => deb822_mirror(&text),
            _ if f.file_name().is_some_and(|n| n == "sources.list")
                || f.extension().is_some_and(|e| e == "list") =>
            {
                one_line_mirror(&text)
            }
            _ => None,
        };
        if let Some(m) = found {
            return Ok(m);
        }
    }
    Err(fail(
        "lab up --with debian: no Debian mirror in /etc/apt/sources.list or /etc/apt/sources.list.d/ \
         (a `deb` source of the `debian` archive with `main`): debootstrap uses the mirror apt \
         uses, and no other",
    ))
}

/// A mirror URI is Debian's main archive (`…/debian`, not `…/debian-security`).
fn main_archive(uri: &str) -> bool {
    (uri.starts_with("http://") || uri.starts_with("https://"))
        && uri.trim_end_matches('/').ends_with("/debian")
}

fn one_line_mirror(text: &str) -> Option<(String, String)> {
    for line in text.lines() {
        let mut words = line.split_whitespace().filter(|w| !w.starts_with('['));
        if words.next() != Some("deb") {
            continue;
        }
        let (Some(uri), Some(suite)) = (words.next(), words.next()) else {
            continue;
        };
        if main_archive(uri) && words.any(|c| c == "main") {
            return Some((uri.trim_end_matches('/').to_string(), suite.to_string()));
        }
    }
    None
}

fn deb822_mirror(text: &str) -> Option<(String, String)> {
    for stanza in text.split("\n\n") {
        let field = |name: &str| {
            stanza.lines().find_map(|l| {
                let (k, v) = l.split_once(':')?;
                (k.trim().eq_ignore_ascii_case(name)).then(|| v.trim().to_string())
            })
        };
        if field("Enabled").is_some_and(|e| e == "no") {
            continue;
        }
        let types = field("Types").unwrap_or_default();
        if !types.split_whitespace().any(|t| t == "deb") {
            continue;
        }
        let comps = field("Components").unwrap_or_default();
        if !comps.split_whitespace().any(|c| c == "main") {
            continue;
        }
        let Some(uri) = field("URIs")
            .unwrap_or_default()
            .split_whitespace()
            .find(|u| main_archive(u))
            .map(|u| u.trim_end_matches('/').to_string())
        else {
            continue;
        };
        // The release itself, not `-updates` or `-backports`.
        let suites = field("Suites").unwrap_or_default();
        let suite = suites
            .split_whitespace()
            .find(|s| !s.contains('-'))
            .or_else(|| suites.split_whitespace().next());
        if let Some(s) = suite {
            return Some((uri, s.to_string()));
        }
    }
    None
}

/// The lab's Debian files: `<root>/lab/debian`.
pub struct Debian {
    dir: PathBuf,
}

impl Debian {
    /// The Debian cache of the lab whose directory is `lab_dir`.
    pub fn new(lab_dir: &Path) -> Debian {
        Debian {
            dir: lab_dir.join("debian"),
        }
    }

    /// The root file system `name` (`base` or `apache2`), made by debootstrap unless cached.
    fn rootfs(
        &self,
        name: &str,
        include: Option<&str>,
        mirror: &(String, String),
        out: &mut dyn Write,
    ) -> Result<PathBuf> {
        let done = self.dir.join(name);
        if done.join("etc/debian_version").is_file() {
            let _ = writeln!(
                out,
                "debian:   {name}: cached in {} (no download)",
                done.display()
            );
            return Ok(done);
        }
        let debs = self.dir.join("debs");
        std::fs::create_dir_all(&debs).map_err(Error::io("create", &debs))?;
        let partial = self
            .dir
            .join(format!("{name}.partial-{}", std::process::id()));
        remove_tree(&partial)?;
        let log = self.dir.join(format!("{name}.log"));
        let log_file = File::create(&log).map_err(Error::io("create", &log))?;
        let log2 = log_file.try_clone().map_err(Error::io("open", &log))?;
        let _ = writeln!(
            out,
            "debian:   {name}: debootstrap --variant=minbase{} {} from {} (log: {})",
            include
                .map(|i| format!(" --include={i}"))
                .unwrap_or_default(),
            mirror.1,
            mirror.0,
            log.display()
        );
        let started = std::time::Instant::now();
        let mut cmd = Command::new(DEBOOTSTRAP);
        cmd.arg("--variant=minbase")
            .arg(format!("--cache-dir={}", debs.display()));
        if let Some(i) = include {
            cmd.arg(format!("--include={i}"));
        }
        let status = cmd
            .arg(&mirror.1)
            .arg(&partial)
            .arg(&mirror.0)
            .stdin(Stdio::null())
            .stdout(log_file)
            .stderr(log2)
            .status()
            .map_err(|e| fail(format!("starting {DEBOOTSTRAP}: {e}")))?;
        if !status.success() {
            let _ = remove_tree(&partial);
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            let tail: Vec<&str> = text.lines().rev().take(5).collect();
            return Err(fail(format!(
                "debootstrap of {name} failed ({status}); its last lines ({}):\n{}",
                log.display(),
                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
            )));
        }
        remove_tree(&done)?;
        std::fs::rename(&partial, &done).map_err(Error::io("rename", &partial))?;
        let _ = writeln!(
            out,
            "debian:   {name}: made in {:.0} s",
            started.elapsed().as_secs_f64()
        );
        Ok(done)
    }

    /// The mtime of every entry and the images' `created`: `SOURCE_DATE_EPOCH`, or the time
    /// the first debootstrap finished (written once to `debian/epoch`).
    fn epoch(&self) -> Result<u64> {
        if let Some(e) = crate::layers::commit::source_date_epoch().map_err(fail)? {
            return Ok(e.max(0) as u64);
        }
        let p = self.dir.join("epoch");
        if let Ok(s) = std::fs::read_to_string(&p) {
            if let Ok(e) = s.trim().parse() {
                return Ok(e);
            }
        }
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        crate::container::write_atomic(&p, format!("{now}\n").as_bytes())?;
        Ok(now)
    }

    /// Build `debian:latest` and `debian:apache2` into `store`, tagged for `registry`.
    pub fn build(
        &self,
        store: &Store,
        registry: &str,
        out: &mut dyn Write,
    ) -> Result<Vec<(Reference, Image)>> {
        if !have_debootstrap() {
            return Err(RegistryError::LabPackages("debootstrap".into()).into());
        }
        std::fs::create_dir_all(&self.dir).map_err(Error::io("create", &self.dir))?;
        let mirror = apt_mirror()?;
        let base_fs = self.rootfs("base", None, &mirror, out)?;
        let full_fs = self.rootfs(EXTRA_PACKAGE, Some(EXTRA_PACKAGE), &mirror, out)?;
        let epoch = self.epoch()?;
        let created = humantime::format_rfc3339_seconds(
            std::time::UNIX_EPOCH + std::time::Duration::from_secs(epoch),
        )
        .to_string();
        let tag = |t: &str| Reference::parse(&format!("{registry}/library/debian:{t}"));

        let base_raw = self.raw_tar(&base_fs)?;
        let full_raw = self.raw_tar(&full_fs)?;
        let lower = index(&base_raw)?;

        let mut sink = store.layer_sink()?;
        let n1 = normalize(&base_raw, &mut sink, epoch, None)?;
        let layer = sink
            .finish()
            .map_err(|e| fail(format!("writing a layer: {e}")))?;
        let base_ref = tag("latest")?;
        let base = store.build_from(
            None,
            layer,
            &[
                "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into(),
                "CMD [\"bash\"]".into(),
            ],
            &created,
            &format!(
                "dockling lab: debootstrap --variant=minbase {} {}",
                mirror.1, mirror.0
            ),
            Some(&base_ref),
        )?;

        let mut sink = store.layer_sink()?;
        let n2 = normalize(&full_raw, &mut sink, epoch, Some(&lower))?;
        let layer = sink
            .finish()
            .map_err(|e| fail(format!("writing a layer: {e}")))?;
        let apache_ref = tag(EXTRA_PACKAGE)?;
        let apache = store.build_from(
            Some(&base),
            layer,
            &[
                "EXPOSE 80".into(),
                "STOPSIGNAL SIGWINCH".into(),
                "CMD [\"apache2ctl\", \"-D\", \"FOREGROUND\"]".into(),
            ],
            &created,
            &format!("dockling lab: what debootstrap --include={EXTRA_PACKAGE} added"),
            Some(&apache_ref),
        )?;
        let _ = writeln!(
            out,
            "debian:   layers of {n1} and {n2} entries, mtimes {epoch} ({created})"
        );
        Ok(vec![(base_ref, base), (apache_ref, apache)])
    }

    /// The whole tree `rootfs` as a tar (as it is: real mtimes), in an unlinked file.
    fn raw_tar(&self, rootfs: &Path) -> Result<File> {
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_TMPFILE | libc::O_CLOEXEC)
            .mode(0o600)
            .open(&self.dir)
            .map_err(Error::write("creating a temporary tar in", &self.dir))?;
        let root = crate::sys::fs::open_root(rootfs).map_err(Error::io("open", rootfs))?;
        let mut b = tar::Builder::new(BufWriter::with_capacity(1 << 16, file));
        crate::archive::write_tree(&mut b, root.as_fd(), None)
            .map_err(|e| fail(format!("reading {}: {e}", rootfs.display())))?;
        let mut file = b
            .into_inner()
            .and_then(|w| w.into_inner().map_err(|e| e.into_error()))
            .map_err(|e| fail(format!("writing a temporary tar: {e}")))?;
        file.seek(SeekFrom::Start(0))
            .map_err(Error::io("seek", &self.dir))?;
        Ok(file)
    }
}

/// `rm -rf` of a directory of the lab's own (no-op when missing), after detaching anything
/// a failed debootstrap left mounted in it (its `proc` and `sys`).
fn remove_tree(dir: &Path) -> Result<()> {
    if !dir.exists() {
        return Ok(());
    }
    if let Ok(mounts) = std::fs::read_to_string("/proc/self/mounts") {
        let prefix = format!("{}/", dir.display());
        let mut under: Vec<&str> = mounts
            .lines()
            .filter_map(|l| l.split_whitespace().nth(1))
            .filter(|m| m.starts_with(&prefix))
            .collect();
        under.sort_by_key(|m| std::cmp::Reverse(m.len()));
        for m in under {
            let _ = nix::mount::umount2(m, nix::mount::MntFlags::MNT_DETACH);
        }
    }
    std::fs::remove_dir_all(dir).map_err(Error::io("remove", dir))
}

/// Left out of both layers: what Debian's official images leave out, and the host's own
/// files debootstrap copied in.
fn excluded(path: &[u8], kind: EntryType) -> bool {
    let under = |dir: &[u8]| path.starts_with(dir) && path.len() > dir.len();
    (under(b"dev/") && kind != EntryType::Directory)
        || under(b"proc/")
        || under(b"sys/")
        || (under(b"var/cache/apt/archives/") && path.ends_with(b".deb"))
        || (under(b"var/lib/apt/lists/") && kind != EntryType::Directory)
        || path == b"var/cache/apt/pkgcache.bin"
        || path == b"var/cache/apt/srcpkgcache.bin"
        || path == b"etc/resolv.conf"
        || path == b"etc/hostname"
}

/// What identifies an entry's content: type, mode, owner, link target and data digest.
type Sig = (u8, u32, u64, u64, Vec<u8>, [u8; 32]);

fn entry_sig(e: &mut tar::Entry<'_, impl Read>) -> std::io::Result<Sig> {
    let h = e.header();
    let kind = h.entry_type().as_byte();
    let mode = h.mode()?;
    let (uid, gid) = (h.uid()?, h.gid()?);
    let link = e
        .link_name_bytes()
        .map(|l| l.into_owned())
        .unwrap_or_default();
    let mut hash = Sha256::new();
    std::io::copy(e, &mut hash)?;
    Ok((kind, mode, uid, gid, link, hash.finalize().into()))
}

fn tar_fail(e: std::io::Error) -> Error {
    fail(format!("building the debian layers: {e}"))
}

/// Every entry of the lower tree's tar by path.
fn index(raw: &File) -> Result<HashMap<Vec<u8>, Sig>> {
    let mut f = raw.try_clone().map_err(tar_fail)?;
    f.seek(SeekFrom::Start(0)).map_err(tar_fail)?;
    let mut a = tar::Archive::new(BufReader::with_capacity(1 << 16, f));
    let mut map = HashMap::new();
    for e in a.entries().map_err(tar_fail)? {
        let mut e = e.map_err(tar_fail)?;
        let path = key(&e.path_bytes());
        let sig = entry_sig(&mut e).map_err(tar_fail)?;
        map.insert(path, sig);
    }
    Ok(map)
}

/// Copy the tar `raw` into `out` with every mtime `epoch` and without [`excluded`] entries;
/// with `lower`, only what differs from it (and the directories above that, and a
/// whiteout for what it has and `raw` does not). Returns the entries written.
fn normalize(
    raw: &File,
    out: impl Write,
    epoch: u64,
    lower: Option<&HashMap<Vec<u8>, Sig>>,
) -> Result<u64> {
    let mut f = raw.try_clone().map_err(tar_fail)?;
    f.seek(SeekFrom::Start(0)).map_err(tar_fail)?;
    let mut a = tar::Archive::new(BufReader::with_capacity(1 << 16, f));
    let mut b = tar::Builder::new(out);
    let mut written = 0u64;
    let mut emitted: HashSet<Vec<u8>> = HashSet::new();
    let mut seen: HashSet<Vec<u8>> = HashSet::new();
    // Directories met but not written yet (a diff writes one only above a change).
    let mut pending: Vec<(Vec<u8>, tar::Header)> = Vec::new();
    let header_of = |h: &tar::Header| -> std::io::Result<tar::Header> {
        let mut n = tar::Header::new_gnu();
        n.set_entry_type(h.entry_type());
        n.set_mode(h.mode()?);
        n.set_uid(h.uid()?);
        n.set_gid(h.gid()?);
        n.set_mtime(epoch);
        n.set_size(0);
        if let (Ok(Some(ma)), Ok(Some(mi))) = (h.device_major(), h.device_minor()) {
            n.set_device_major(ma)?;
            n.set_device_minor(mi)?;
        }
        Ok(n)
    };
    for e in a.entries().map_err(tar_fail)? {
        let mut e = e.map_err(tar_fail)?;
        let path = key(&e.path_bytes());
        let kind = e.header().entry_type();
        if excluded(&path, kind) {
            continue;
        }
        seen.insert(path.clone());
        let h = header_of(e.header()).map_err(tar_fail)?;
        let link = e.link_name_bytes().map(|l| l.into_owned());
        let mut data = Vec::new();
        e.read_to_end(&mut data).map_err(tar_fail)?;
        if let Some(lower) = lower {
            while pending
                .last()
                .is_some_and(|(d, _)| !(path.starts_with(d) && path.get(d.len()) == Some(&b'/')))
            {
                pending.pop();
            }
            let mut hash = Sha256::new();
            hash.update(&data);
            let sig: Sig = (
                kind.as_byte(),
                h.mode().map_err(tar_fail)?,
                h.uid().map_err(tar_fail)?,
                h.gid().map_err(tar_fail)?,
                link.clone().unwrap_or_default(),
                hash.finalize().into(),
            );
            let same = lower.get(&path) == Some(&sig);
            if same {
                if kind == EntryType::Directory {
                    pending.push((path, h));
                }
                continue;
            }
            for (d, dh) in pending.drain(..) {
                let mut dh = dh;
                b.append_data(&mut dh, bytes_path(&d), std::io::empty())
                    .map_err(tar_fail)?;
                emitted.insert(d);
                written += 1;
            }
        }
        let mut h = h;
        match (kind, link) {
            (EntryType::Link, Some(target)) => {
                if lower.is_some() && !emitted.contains(&target) {
                    return Err(fail(format!(
                        "{}: a new hard link to {}, a file of the lower layer",
                        String::from_utf8_lossy(&path),
                        String::from_utf8_lossy(&target)
                    )));
                }
                b.append_link(&mut h, bytes_path(&path), bytes_path(&target))
            }
            (EntryType::Symlink, Some(target)) => {
                b.append_link(&mut h, bytes_path(&path), bytes_path(&target))
            }
            _ => {
                h.set_size(data.len() as u64);
                b.append_data(&mut h, bytes_path(&path), &data[..])
            }
        }
        .map_err(tar_fail)?;
        emitted.insert(path);
        written += 1;
    }
    // What the lower tree has and this one does not: a whiteout for the topmost of each.
    if let Some(lower) = lower {
        let mut gone: Vec<&Vec<u8>> = lower
            .keys()
            .filter(|p| !seen.contains(*p) && !excluded(p, EntryType::Regular))
            .collect();
        gone.sort();
        let mut last: Option<&Vec<u8>> = None;
        for p in gone {
            if last.is_some_and(|l| p.starts_with(l) && p.get(l.len()) == Some(&b'/')) {
                continue;
            }
            last = Some(p);
            let (dir, name) = match p.iter().rposition(|c| *c == b'/') {
                Some(i) => (&p[..=i], &p[i + 1..]),
                None => (&p[..0], &p[..]),
            };
            let mut wh = dir.to_vec();
            wh.extend_from_slice(b".wh.");
            wh.extend_from_slice(name);
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(EntryType::Regular);
            h.set_mode(0o644);
            h.set_mtime(epoch);
            h.set_size(0);
            b.append_data(&mut h, bytes_path(&wh), std::io::empty())
                .map_err(tar_fail)?;
            written += 1;
        }
    }
    b.into_inner()
        .and_then(|mut w| w.flush())
        .map_err(tar_fail)?;
    Ok(written)
}

/// An entry's path without a directory's trailing `/`.
fn key(p: &[u8]) -> Vec<u8> {
    p.strip_suffix(b"/").unwrap_or(p).to_vec()
}

fn bytes_path(b: &[u8]) -> &Path {
    Path::new(std::ffi::OsStr::from_bytes(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mirror_is_the_one_apt_uses() {
        let deb822 = "Types: deb\nURIs: http://deb.debian.org/debian\nSuites: bookworm bookworm-updates\nComponents: main\n\n\
                      Types: deb\nURIs: http://deb.debian.org/debian-security\nSuites: bookworm-security\nComponents: main\n";
        assert_eq!(
            deb822_mirror(deb822),
            Some(("http://deb.debian.org/debian".into(), "bookworm".into()))
        );
        let security_only = "Types: deb\nURIs: http://deb.debian.org/debian-security\nSuites: bookworm-security\nComponents: main\n";
        assert_eq!(deb822_mirror(security_only), None);
        let list =
            "# comment\ndeb [arch=amd64] http://mirror.example/debian/ trixie main contrib\n";
        assert_eq!(
            one_line_mirror(list),
            Some(("http://mirror.example/debian".into(), "trixie".into()))
        );
        assert_eq!(
            one_line_mirror("deb https://packages.cloud.google.com/apt cloud-sdk main\n"),
            None
        );
    }

    fn tar_of(entries: &[(&str, &[u8], u32)]) -> File {
        let mut b = tar::Builder::new(Vec::new());
        for (p, d, mode) in entries {
            let mut h = tar::Header::new_gnu();
            if p.ends_with('/') {
                h.set_entry_type(EntryType::Directory);
            }
            h.set_mode(*mode);
            h.set_mtime(1234);
            h.set_uid(0);
            h.set_gid(0);
            h.set_size(d.len() as u64);
            b.append_data(&mut h, p, *d).unwrap();
        }
        let mut f = tempfile::tempfile().unwrap();
        f.write_all(&b.into_inner().unwrap()).unwrap();
        f
    }

    fn names(tar: &[u8]) -> Vec<(String, u64)> {
        tar::Archive::new(tar)
            .entries()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                (
                    String::from_utf8_lossy(&e.path_bytes()).into_owned(),
                    e.header().mtime().unwrap(),
                )
            })
            .collect()
    }

    #[test]
    fn the_second_layer_holds_what_changed_and_the_directories_above_it() {
        let lower = tar_of(&[
            ("etc/", b"", 0o755),
            ("etc/a", b"same", 0o644),
            ("etc/b", b"old", 0o644),
            ("usr/", b"", 0o755),
            ("usr/share/", b"", 0o755),
            ("usr/share/x", b"x", 0o644),
            ("var/", b"", 0o755),
            ("var/gone/", b"", 0o755),
            ("var/gone/f", b"f", 0o644),
            ("dev/null", b"", 0o666),
        ]);
        let upper = tar_of(&[
            ("dev/", b"", 0o755),
            ("dev/null", b"", 0o666),
            ("etc/", b"", 0o755),
            ("etc/a", b"same", 0o644),
            ("etc/b", b"new", 0o644),
            ("usr/", b"", 0o755),
            ("usr/share/", b"", 0o755),
            ("usr/share/new/", b"", 0o755),
            ("usr/share/new/y", b"y", 0o644),
            ("usr/share/x", b"x", 0o600),
            ("var/", b"", 0o755),
        ]);
        let lower_index = index(&lower).unwrap();
        let mut out = Vec::new();
        let n = normalize(&upper, &mut out, 99, Some(&lower_index)).unwrap();
        let got = names(&out);
        let expect = [
            "dev",
            "etc",
            "etc/b",
            "usr",
            "usr/share",
            "usr/share/new",
            "usr/share/new/y",
            "usr/share/x",
            "var/.wh.gone",
        ];
        assert_eq!(
            got.iter()
                .map(|(p, _)| p.trim_end_matches('/'))
                .collect::<Vec<_>>(),
            expect,
            "dev/null is left out, unchanged etc/a too, the removed var/gone a whiteout"
        );
        assert_eq!(n as usize, expect.len());
        assert!(got.iter().all(|(_, m)| *m == 99), "{got:?}");
        // The same input gives the same bytes.
        let mut again = Vec::new();
        normalize(&upper, &mut again, 99, Some(&lower_index)).unwrap();
        assert_eq!(out, again);
        // Without a lower tree: everything but the excluded entries.
        let mut all = Vec::new();
        normalize(&upper, &mut all, 99, None).unwrap();
        assert_eq!(names(&all).len(), 10);
    }
}
