//! The lesson images, built with dockling's own machinery (`Store::build`) from the host's
//! `busybox-static`: `busybox`, `httpd` (busybox plus a web root laid out like the official
//! image), `hello-world` (a 200-byte static program written here, byte by byte) and `bloated`
//! (busybox, a 1 MB file written in one layer and deleted in the next: the layer view's lesson).
//!
//! Every tar entry has a fixed owner and the busybox binary's modification time, so the same
//! busybox gives the same digests every time: `lab up` run twice pushes nothing new.

use std::path::Path;

use crate::error::{Error, Result};
use crate::image::reference::Reference;
use crate::image::store::{Image, Store};
use crate::registry::RegistryError;

/// Where Debian's `busybox-static` puts the binary.
pub const BUSYBOX: &str = "/bin/busybox";

/// The page the official httpd image serves.
pub const INDEX_HTML: &str = "<html><body><h1>It works!</h1></body></html>\n";

/// What `hello-world` prints.
pub const GREETING: &str = "
Hello from dockling!
This message shows that your installation appears to be working correctly.

To generate this message, dockling took the following steps:
 1. It found the \"hello-world\" image, pulled from the lab registry.
 2. It unpacked its single layer and mounted it as the container's root filesystem.
 3. It created new namespaces and started the image's program, /hello, as their first
    process: a static binary of a few hundred bytes that makes two system calls,
    write and exit.
 4. It relayed that output to your terminal.

To look inside, try:
 $ dockling run --rm --trace hello-world
";

/// A tar being written with fixed owners and times.
struct Layer {
    tar: tar::Builder<Vec<u8>>,
    mtime: u64,
}

impl Layer {
    fn new(mtime: u64) -> Layer {
        let mut tar = tar::Builder::new(Vec::new());
        tar.mode(tar::HeaderMode::Deterministic);
        Layer { tar, mtime }
    }

    fn header(&self, kind: tar::EntryType, mode: u32, size: u64) -> tar::Header {
        let mut h = tar::Header::new_ustar();
        h.set_entry_type(kind);
        h.set_mode(mode);
        h.set_size(size);
        h.set_mtime(self.mtime);
        h.set_uid(0);
        h.set_gid(0);
        h
    }

    fn dir(&mut self, path: &str, mode: u32) -> Result<()> {
        let mut h = self.header(tar::EntryType::Directory, mode, 0);
        self.tar
            .append_data(&mut h, format!("{path}/"), &[][..])
            .map_err(tar_error)
    }

    fn file(&mut self, path: &str, mode: u32, data: &[u8]) -> Result<()> {
        let mut h = self.header(tar::EntryType::Regular, mode, data.len() as u64);
        self.tar.append_data(&mut h, path, data).map_err(tar_error)
    }

    fn symlink(&mut self, path: &str, target: &str) -> Result<()> {
        let mut h = self.header(tar::EntryType::Symlink, 0o777, 0);
        self.tar
            .append_link(&mut h, path, target)
            .map_err(tar_error)
    }

    fn finish(self) -> Result<Vec<u8>> {
        self.tar.into_inner().map_err(tar_error)
    }
}

fn tar_error(e: std::io::Error) -> Error {
    RegistryError::LabImage(format!("building a lab image layer: {e}")).into()
}

/// The busybox binary's bytes, its applets and its modification time.
struct Busybox {
    binary: Vec<u8>,
    applets: Vec<String>,
    mtime: u64,
}

fn busybox() -> Result<Busybox> {
    let missing = || {
        Error::NotFound(format!(
            "{BUSYBOX} is missing: install Debian's busybox-static package (apt-get install busybox-static)"
        ))
    };
    let meta = std::fs::metadata(BUSYBOX).map_err(|_| missing())?;
    let binary = std::fs::read(BUSYBOX).map_err(Error::io("read", BUSYBOX))?;
    let out = std::process::Command::new(BUSYBOX)
        .arg("--list")
        .output()
        .map_err(|_| missing())?;
    let mut applets: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::trim)
        .filter(|a| !a.is_empty() && !a.contains('/') && *a != "busybox")
        .map(String::from)
        .collect();
    applets.sort();
    applets.dedup();
    if applets.is_empty() {
        return Err(RegistryError::LabImage(format!(
            "{BUSYBOX} --list printed no applets: is it Debian's busybox-static?"
        ))
        .into());
    }
    let mtime = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| d.as_secs())
        .unwrap_or(0);
    Ok(Busybox {
        binary,
        applets,
        mtime,
    })
}

/// RFC 3339 for a Unix time (UTC), for the images' `created`.
fn rfc3339(secs: u64) -> String {
    humantime::format_rfc3339_seconds(std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs))
        .to_string()
}

fn busybox_layer(bb: &Busybox) -> Result<Vec<u8>> {
    let mut l = Layer::new(bb.mtime);
    for d in [
        "bin", "dev", "etc", "home", "proc", "root", "sys", "tmp", "usr", "usr/bin", "usr/sbin",
        "var", "var/www", "sbin",
    ] {
        let mode = match d {
            "tmp" => 0o1777,
            "root" => 0o700,
            _ => 0o755,
        };
        l.dir(d, mode)?;
    }
    l.file("bin/busybox", 0o755, &bb.binary)?;
    for a in &bb.applets {
        l.symlink(&format!("bin/{a}"), "busybox")?;
    }
    l.file(
        "etc/passwd",
        0o644,
        b"root:x:0:0:root:/root:/bin/sh\ndaemon:x:1:1:daemon:/usr/sbin:/bin/false\nwww-data:x:33:33:www-data:/var/www:/bin/false\nnobody:x:65534:65534:nobody:/home:/bin/false\n",
    )?;
    l.file(
        "etc/group",
        0o644,
        b"root:x:0:\ndaemon:x:1:\nwww-data:x:33:\nnogroup:x:65534:\n",
    )?;
    l.finish()
}

fn httpd_layer(mtime: u64) -> Result<Vec<u8>> {
    let mut l = Layer::new(mtime);
    for d in [
        "usr/local",
        "usr/local/bin",
        "usr/local/apache2",
        "usr/local/apache2/htdocs",
        "usr/local/apache2/logs",
    ] {
        l.dir(d, 0o755)?;
    }
    l.file(
        "usr/local/apache2/htdocs/index.html",
        0o644,
        INDEX_HTML.as_bytes(),
    )?;
    // The official image's entry point has the same name; this one runs busybox's httpd.
    l.file(
        "usr/local/bin/httpd-foreground",
        0o755,
        b"#!/bin/sh\n# busybox httpd in the foreground, logging requests to stderr, serving the web root.\nset -e\nexec httpd -f -v -p 80 -h /usr/local/apache2/htdocs \"$@\"\n",
    )?;
    l.finish()
}

/// A complete static Linux program that writes `msg` to stdout and exits 0: one ELF header,
/// one program header (load the whole file, read + execute), the code, then the message.
pub fn hello_elf(msg: &[u8]) -> Result<Vec<u8>> {
    const BASE: u64 = 0x40_0000;
    const HEADERS: usize = 64 + 56;
    let len = u32::try_from(msg.len()).expect("small message");
    let (machine, code): (u16, Vec<u8>) = match std::env::consts::ARCH {
        "x86_64" => {
            let mut c = Vec::new();
            c.extend([0xb8, 1, 0, 0, 0]); // mov eax, 1 (write)
            c.extend([0xbf, 1, 0, 0, 0]); // mov edi, 1 (stdout)
            c.extend([0x48, 0x8d, 0x35, 16, 0, 0, 0]); // lea rsi, [rip+16] (the message)
            c.push(0xba); // mov edx, len
            c.extend(len.to_le_bytes());
            c.extend([0x0f, 0x05]); // syscall
            c.extend([0xb8, 60, 0, 0, 0]); // mov eax, 60 (exit)
            c.extend([0x31, 0xff]); // xor edi, edi (status 0)
            c.extend([0x0f, 0x05]); // syscall
            (62, c)
        }
        "aarch64" => {
            let words: [u32; 8] = [
                0xd280_0020,              // mov x0, #1 (stdout)
                0x1000_00e1,              // adr x1, .+28 (the message)
                0xd280_0002 | (len << 5), // mov x2, #len
                0xd280_0808,              // mov x8, #64 (write)
                0xd400_0001,              // svc #0
                0xd280_0000,              // mov x0, #0 (status 0)
                0xd280_0ba8,              // mov x8, #93 (exit)
                0xd400_0001,              // svc #0
            ];
            (183, words.iter().flat_map(|w| w.to_le_bytes()).collect())
        }
        other => {
            return Err(RegistryError::LabImage(format!(
                "the lab's hello-world program is written for x86_64 and aarch64, not {other}"
            ))
            .into())
        }
    };
    let total = (HEADERS + code.len() + msg.len()) as u64;
    let mut f = Vec::with_capacity(total as usize);
    f.extend(b"\x7fELF");
    f.extend([2, 1, 1, 0]); // 64-bit, little-endian, ELF version 1, System V ABI
    f.extend([0; 8]);
    f.extend(2u16.to_le_bytes()); // an executable
    f.extend(machine.to_le_bytes());
    f.extend(1u32.to_le_bytes());
    f.extend((BASE + HEADERS as u64).to_le_bytes()); // entry: the first instruction
    f.extend(64u64.to_le_bytes()); // program headers right after this header
    f.extend(0u64.to_le_bytes()); // no section headers
    f.extend(0u32.to_le_bytes());
    f.extend(64u16.to_le_bytes());
    f.extend(56u16.to_le_bytes());
    f.extend(1u16.to_le_bytes());
    f.extend([0; 6]);
    // The one PT_LOAD segment.
    f.extend(1u32.to_le_bytes());
    f.extend(5u32.to_le_bytes()); // read + execute
    f.extend(0u64.to_le_bytes());
    f.extend(BASE.to_le_bytes());
    f.extend(BASE.to_le_bytes());
    f.extend(total.to_le_bytes());
    f.extend(total.to_le_bytes());
    f.extend(0x1000u64.to_le_bytes());
    debug_assert_eq!(f.len(), HEADERS);
    f.extend(code);
    f.extend(msg);
    Ok(f)
}

/// The names the lab serves, in the order they are built.
pub const NAMES: &[&str] = &["busybox", "httpd", "hello-world", "bloated"];

/// Bytes of `bloated`'s big file: 1 MB of a repeated line (it compresses well, so building
/// the lab stays quick; Docker's sizes count it uncompressed all the same).
pub const BLOATED_BYTES: usize = 1_000_000;

fn noise(n: usize) -> Vec<u8> {
    b"a log line nobody will read again, kept in an image layer forever\n"
        .iter()
        .copied()
        .cycle()
        .take(n)
        .collect()
}

/// `bloated` ("where did my disk go"): busybox, then a layer that writes a 1 MB file and an
/// app cache, then one that deletes the file (a whiteout) and empties the cache by making
/// its directory anew (an opaque directory). The image is no smaller for it.
fn bloated_layers(mtime: u64) -> Result<(Vec<u8>, Vec<u8>)> {
    let mut add = Layer::new(mtime);
    for d in ["tmp", "var", "var/cache", "var/cache/app"] {
        add.dir(d, if d == "tmp" { 0o1777 } else { 0o755 })?;
    }
    add.file("tmp/big.bin", 0o644, &noise(BLOATED_BYTES))?;
    add.file("var/cache/app/index", 0o644, &[b'i'; 4000])?;
    add.file("var/cache/app/data", 0o644, &[b'd'; 6000])?;
    let mut rm = Layer::new(mtime);
    for d in ["tmp", "var", "var/cache", "var/cache/app"] {
        rm.dir(d, if d == "tmp" { 0o1777 } else { 0o755 })?;
    }
    rm.file("tmp/.wh.big.bin", 0o644, b"")?;
    rm.file("var/cache/app/.wh..wh..opq", 0o644, b"")?;
    Ok((add.finish()?, rm.finish()?))
}

/// Build the lab images into `store`, tagged `<registry>/library/<name>:latest`.
pub fn build(store: &Store, registry: &str) -> Result<Vec<(Reference, Image)>> {
    let bb = busybox()?;
    let created = rfc3339(bb.mtime);
    let tag = |name: &str| Reference::parse(&format!("{registry}/library/{name}:latest"));
    let mut out = Vec::new();

    let busybox_ref = tag("busybox")?;
    let base = store.build(
        None,
        &busybox_layer(&bb)?,
        &["CMD [\"sh\"]".into()],
        &created,
        "dockling lab: /bin/busybox from busybox-static, a link per applet, /etc/passwd and /etc/group",
        Some(&busybox_ref),
    )?;
    out.push((busybox_ref, base.clone()));

    let httpd_ref = tag("httpd")?;
    let httpd = store.build(
        Some(&base),
        &httpd_layer(bb.mtime)?,
        &[
            "ENV HTTPD_PREFIX=/usr/local/apache2".into(),
            "WORKDIR /usr/local/apache2".into(),
            "EXPOSE 80".into(),
            "STOPSIGNAL SIGWINCH".into(),
            "CMD [\"httpd-foreground\"]".into(),
        ],
        &created,
        "dockling lab: /usr/local/apache2/htdocs/index.html and httpd-foreground (busybox httpd on port 80)",
        Some(&httpd_ref),
    )?;
    out.push((httpd_ref, httpd));

    let hello_ref = tag("hello-world")?;
    let mut l = Layer::new(bb.mtime);
    l.file("hello", 0o755, &hello_elf(GREETING.as_bytes())?)?;
    let hello = store.build(
        None,
        &l.finish()?,
        &["CMD [\"/hello\"]".into()],
        &created,
        "dockling lab: /hello, a static program that writes a greeting and exits",
        Some(&hello_ref),
    )?;
    out.push((hello_ref, hello));

    let (add, rm) = bloated_layers(bb.mtime)?;
    let with_big = store.build(
        Some(&base),
        &add,
        &[],
        &created,
        "dockling lab: /tmp/big.bin (1 MB) and /var/cache/app (10 kB)",
        None,
    )?;
    let bloated_ref = tag("bloated")?;
    let bloated = store.build(
        Some(&with_big),
        &rm,
        &[],
        &created,
        "dockling lab: rm /tmp/big.bin; rm -rf /var/cache/app; mkdir /var/cache/app",
        Some(&bloated_ref),
    )?;
    out.push((bloated_ref, bloated));
    Ok(out)
}

/// Whether the host has what building the images needs.
pub fn have_busybox() -> bool {
    Path::new(BUSYBOX).is_file()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hello_program_runs_and_prints() {
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path().join("hello");
        std::fs::write(&p, hello_elf(b"hi there\n").unwrap()).unwrap();
        std::fs::set_permissions(&p, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
        let out = std::process::Command::new(&p).output().unwrap();
        assert_eq!(out.status.code(), Some(0));
        assert_eq!(out.stdout, b"hi there\n");
        assert!(std::fs::metadata(&p).unwrap().len() < 200);
    }

    #[test]
    fn building_twice_gives_the_same_digests() {
        assert!(
            have_busybox(),
            "{BUSYBOX} is missing: scripts/test installs busybox-static"
        );
        let tmp = tempfile::tempdir().unwrap();
        let a = build(
            &Store::open(&tmp.path().join("a")).unwrap(),
            "localhost:5000",
        )
        .unwrap();
        let b = build(
            &Store::open(&tmp.path().join("b")).unwrap(),
            "localhost:5000",
        )
        .unwrap();
        for ((ra, ia), (rb, ib)) in a.iter().zip(&b) {
            assert_eq!(ra, rb);
            assert_eq!(ia.manifest_digest, ib.manifest_digest, "{ra}");
        }
        let httpd = &a[1].1;
        assert_eq!(httpd.layers.len(), 2, "busybox's layer plus the web root");
        assert_eq!(
            httpd.layers[0], a[0].1.layers[0],
            "the busybox layer is shared"
        );
        // Docker's sizes (issue 12): httpd's top layer is its two files' 204 bytes (45 of
        // index.html, 159 of httpd-foreground), not its 5.63kB of tar; busybox's is the
        // binary, a 7-byte symlink target per applet and /etc/passwd and /etc/group.
        let store = Store::open(&tmp.path().join("a")).unwrap();
        let bb = busybox().unwrap();
        let top = store.docker_layer_size(&httpd.layers[1], &httpd.diff_ids[1]);
        assert_eq!(top, Some(204), "not unpacked: counted from the blob");
        let etc = 162 + 54; // /etc/passwd and /etc/group (busybox_layer)
        assert_eq!(
            store.docker_layer_size(&httpd.layers[0], &httpd.diff_ids[0]),
            Some(bb.binary.len() as u64 + 7 * bb.applets.len() as u64 + etc)
        );
        // bloated: 1 MB + 10 kB written, then all of it hidden (a whiteout, an opaque dir).
        let bloated = &a[3].1;
        let entries: Vec<_> = bloated
            .layers
            .iter()
            .zip(&bloated.diff_ids)
            .map(|(b, d)| store.layer_entries(b, d).unwrap())
            .collect();
        let mut merged = crate::layers::view::Merged::default();
        let stats: Vec<_> = entries
            .iter()
            .enumerate()
            .map(|(i, e)| merged.apply(i, e))
            .collect();
        assert_eq!(stats[1].size, 1_010_000);
        assert_eq!(stats[2].size, 0);
        assert_eq!((stats[2].whiteouts, stats[2].opaque), (1, 1));
        assert_eq!(stats[2].wasted, 1_010_000);
        // Unpacked, the marker says the same.
        store.layer_dirs(httpd).unwrap();
        assert_eq!(store.layer_size(&httpd.diff_ids[1]), Some(204));
        assert_eq!(crate::image::format::human_size(204), "204B");
        let cfg = httpd.config.config().clone().unwrap();
        assert_eq!(cfg.cmd().clone().unwrap(), vec!["httpd-foreground"]);
        assert_eq!(cfg.working_dir().as_deref(), Some("/usr/local/apache2"));
    }
}
