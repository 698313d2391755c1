//! Issue 9, item 9: bad input gets a clear error, exit 125, and leaves nothing behind — no
//! container record, no cgroup, no host directory, no store change. Each test is named after
//! what broke.

mod common;
use std::path::PathBuf;

use common::{tree_state, Lab, Out};
use dockling::image::reference::Reference;
use dockling::image::store::Store;

/// The CPUs this process may use, as Docker counts them (sched_getaffinity).
fn cpus() -> usize {
    dockling::cgroups::available_cpus()
}

/// Run `dockling args…` and check that it failed with exit 125 and exactly `message`, and
/// that it changed nothing in the store (every file's mode, owner, mtime and content), made
/// no container record and no cgroup.
fn refused(lab: &Lab, args: &[&str], message: &str) -> Out {
    let before = tree_state(&lab.root());
    let o = lab.cmd(args);
    o.expect_code(125);
    assert_eq!(o.stderr, format!("dockling: {message}\n"), "{args:?}");
    assert_eq!(o.stdout, "");
    assert_eq!(lab.containers_left(), Vec::<String>::new(), "{args:?}");
    assert_eq!(lab.cgroups_left(), Vec::<PathBuf>::new(), "{args:?}");
    assert_eq!(
        tree_state(&lab.root()),
        before,
        "{args:?} changed the store"
    );
    o
}

fn range() -> String {
    let n = cpus();
    format!("range of CPUs is from 0.01 to {n}.00, as there are only {n} CPUs available")
}

#[test]
fn cpus_nan_passed_validation_and_failed_later_with_einval() {
    let lab = Lab::with_busybox();
    for bad in ["nan", "inf", "NaN", "-inf"] {
        refused(
            &lab,
            &["run", "--rm", "--cpus", bad, "busybox", "true"],
            &format!("invalid argument \"{bad}\" for \"--cpus\" flag: failed to parse {bad} as a rational number: give a number of CPUs like 0.5 or 2"),
        );
    }
}

#[test]
fn cpus_0_0000001_passed_validation_and_failed_later_with_einval() {
    let lab = Lab::with_busybox();
    refused(
        &lab,
        &["run", "--rm", "--cpus", "0.0000001", "busybox", "true"],
        &range(),
    );
    refused(
        &lab,
        &["run", "--rm", "--cpus", "0.0000000001", "busybox", "true"],
        "invalid argument \"0.0000000001\" for \"--cpus\" flag: value is too precise: give a number of CPUs like 0.5 or 2",
    );
}

#[test]
fn cpus_minus_1_got_claps_use_dash_dash_tip() {
    let lab = Lab::with_busybox();
    let o = refused(
        &lab,
        &["run", "--rm", "--cpus", "-1", "busybox", "true"],
        &range(),
    );
    assert!(!o.stderr.contains("'--"), "{}", o.stderr);
    let too_many = (cpus() + 1).to_string();
    refused(
        &lab,
        &["run", "--rm", "--cpus", &too_many, "busybox", "true"],
        &range(),
    );
    // explain is a dry run of the same flags: the same refusal.
    refused(
        &lab,
        &["explain", "run", "--cpus", "-1", "busybox", "true"],
        &range(),
    );
}

#[test]
fn cpus_within_range_and_zero_still_run() {
    let lab = Lab::with_busybox();
    lab.ok(&["--cpus", "0.01", "busybox", "true"]);
    lab.ok(&["--cpus", "1/2", "busybox", "true"]);
    // 0 is "no limit", as in Docker.
    let o = lab.cmd(&["run", "--name", "c0", "--cpus", "0", "busybox", "true"]);
    o.expect_code(0);
    let inspect = lab.cmd(&["inspect", "c0"]);
    inspect.expect_code(0);
    assert!(
        inspect.stdout.contains("\"NanoCpus\": 0"),
        "{}",
        inspect.stdout
    );
}

#[test]
fn memory_99999999999g_overflowed() {
    let lab = Lab::with_busybox();
    refused(
        &lab,
        &["run", "--rm", "-m", "99999999999g", "busybox", "true"],
        "invalid argument \"99999999999g\" for \"-m, --memory\" flag: invalid size: '99999999999g': more than the largest memory limit (4 EiB, 4611686018427387903 bytes): give a size like 512m or 4g",
    );
}

/// The largest limit accepted really starts a container (memory + swap, twice it, fits the
/// runtime spec's signed 64-bit count).
#[test]
fn memory_at_the_largest_limit_still_runs() {
    let lab = Lab::with_busybox();
    assert_eq!(lab.ok(&["-m", "4095p", "busybox", "echo", "ran"]), "ran\n");
    let o = lab.cmd(&[
        "run",
        "--rm",
        "-m",
        "4611686018427387904",
        "busybox",
        "true",
    ]);
    o.expect_code(125);
    assert!(
        o.stderr.contains("more than the largest memory limit"),
        "{}",
        o.stderr
    );
}

#[test]
fn memory_1b_abc_and_minus_1_are_refused_with_dockers_words() {
    let lab = Lab::with_busybox();
    refused(
        &lab,
        &["run", "--rm", "-m", "1b", "busybox", "true"],
        "invalid argument \"1b\" for \"-m, --memory\" flag: minimum memory limit allowed is 6MB (got 1b): give at least 6m, or 0 for no limit",
    );
    for bad in ["abc", "-1"] {
        refused(
            &lab,
            &["run", "--rm", "--memory", bad, "busybox", "true"],
            &format!("invalid argument \"{bad}\" for \"-m, --memory\" flag: invalid size: '{bad}': use a number with an optional unit b, k, m, g, t, p (like 64m)"),
        );
    }
}

#[test]
fn memory_0_is_no_limit_as_in_docker() {
    let lab = Lab::with_busybox();
    let o = lab.cmd(&["run", "--name", "m0", "-m", "0", "busybox", "true"]);
    o.expect_code(0);
    let inspect = lab.cmd(&["inspect", "m0"]);
    inspect.expect_code(0);
    assert!(
        inspect.stdout.contains("\"Memory\": 0"),
        "{}",
        inspect.stdout
    );
}

/// A host directory that does not exist yet, in a scratch directory the test owns.
fn missing_source() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("made/by/dockling");
    (dir, src)
}

#[test]
fn volume_onto_root_failed_with_openat_dev_null_enoent() {
    let lab = Lab::with_busybox();
    let (dir, src) = missing_source();
    let spec = format!("{}:/", src.display());
    refused(
        &lab,
        &["run", "--rm", "-v", &spec, "busybox", "true"],
        &format!("invalid volume specification: '{spec}': invalid mount config for type \"bind\": invalid specification: destination can't be '/'"),
    );
    let spec2 = format!("{}:/tmp/..", src.display());
    let o = lab.cmd(&["run", "--rm", "-v", &spec2, "busybox", "true"]);
    o.expect_code(125);
    assert!(
        o.stderr.contains("destination can't be '/'"),
        "{}",
        o.stderr
    );
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

#[test]
fn volume_onto_proc_was_accepted() {
    let lab = Lab::with_busybox();
    let (dir, src) = missing_source();
    let allowed = dockling::runtime::rootfs::PROC_BIND_ALLOWED.join(", ");
    let spec = format!("{}:/proc", src.display());
    refused(
        &lab,
        &["run", "--rm", "-v", &spec, "busybox", "true"],
        &format!("invalid volume '{spec}': \"/proc\" cannot be mounted because it is not of type proc: the container's /proc is its own procfs; bind a single file runc allows ({allowed}) instead"),
    );
    let spec = format!("{}:/proc/sys/kernel:ro", src.display());
    refused(
        &lab,
        &["run", "--rm", "-v", &spec, "busybox", "true"],
        &format!("invalid volume '{spec}': \"/proc/sys/kernel\" cannot be mounted because it is inside /proc: only {allowed} may be covered"),
    );
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    // What runc allows still works: a file over /proc/meminfo.
    let file = dir.path().join("meminfo");
    std::fs::write(&file, "MemTotal: 42 kB\n").unwrap();
    let o = lab.ok(&[
        "-v",
        &format!("{}:/proc/meminfo:ro", file.display()),
        "busybox",
        "head",
        "-1",
        "/proc/meminfo",
    ]);
    assert_eq!(o, "MemTotal: 42 kB\n");
}

#[test]
fn volume_with_a_relative_destination_is_refused() {
    let lab = Lab::with_busybox();
    let (dir, src) = missing_source();
    let spec = format!("{}:data", src.display());
    refused(
        &lab,
        &["run", "--rm", "-v", &spec, "busybox", "true"],
        &format!("invalid volume specification: '{spec}': invalid mount config for type \"bind\": invalid mount path: 'data' mount path must be absolute"),
    );
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

#[test]
fn two_volumes_onto_one_path_hid_the_first() {
    let lab = Lab::with_busybox();
    let (dir, src) = missing_source();
    let a = format!("{}:/data", src.display());
    let b = format!("{}/other:/data/", dir.path().display());
    refused(
        &lab,
        &["run", "--rm", "-v", &a, "-v", &b, "busybox", "true"],
        "duplicate mount point: /data: give each -v, --mount and --tmpfs its own container path",
    );
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

#[test]
fn explain_created_the_volume_host_directories() {
    let lab = Lab::with_busybox();
    let (dir, src) = missing_source();
    let spec = format!("{}:/data", src.display());
    let o = lab.cmd(&["explain", "run", "-v", &spec, "busybox", "true"]);
    o.expect_code(0);
    assert!(o.stdout.contains("rootfs.volumes"), "{}", o.stdout);
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        0,
        "explain made {}",
        src.display()
    );
    // A real run makes it (as Docker does) and keeps it.
    lab.ok(&["-v", &spec, "busybox", "true"]);
    assert!(src.is_dir());
}

/// A run that fails after the volume directories were made (the image's /data leads into
/// /proc, found only once the image's symlinks are followed) takes them back.
#[test]
fn failing_run_left_the_volume_host_directories_behind() {
    let lab = Lab::with_busybox();
    let store = Store::open(&lab.root()).unwrap();
    let base = store.find("busybox:latest").unwrap();
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(tar::EntryType::Symlink);
    h.set_mode(0o777);
    h.set_mtime(1_000_000_000);
    h.set_size(0);
    b.append_link(&mut h, "data", "/proc/sys").unwrap();
    store
        .build(
            Some(&base),
            &b.into_inner().unwrap(),
            &[],
            "2001-09-09T01:46:40Z",
            "data leads into /proc",
            Some(&Reference::parse("data-in-proc:1").unwrap()),
        )
        .unwrap();
    let (dir, src) = missing_source();
    let spec = format!("{}:/data", src.display());
    let o = lab.run(&["-v", &spec, "data-in-proc:1", "true"]);
    o.expect_code(125);
    assert!(
        o.stderr
            .contains("\"/proc/sys\" cannot be mounted because it is inside /proc"),
        "{}",
        o.stderr
    );
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        0,
        "the failed run left {}",
        src.display()
    );
    assert_eq!(lab.containers_left(), Vec::<String>::new());
    assert_eq!(lab.cgroups_left(), Vec::<PathBuf>::new());
}

/// Take the lock at `path` as a hung dockling would: `flock` held, our pid written in it.
fn hold_lock(path: &std::path::Path) -> std::fs::File {
    use std::io::Write;
    use std::os::fd::AsRawFd;
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let mut f = std::fs::File::options()
        .create(true)
        .truncate(true)
        .write(true)
        .open(path)
        .unwrap();
    // SAFETY: flock on a file we hold open; released when it is closed.
    assert_eq!(unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX) }, 0);
    writeln!(f, "{}", std::process::id()).unwrap();
    f
}

/// This process's command line as `ps` would show it.
fn my_cmdline() -> String {
    let raw = std::fs::read("/proc/self/cmdline").unwrap();
    raw.split(|b| *b == 0)
        .filter(|w| !w.is_empty())
        .map(|w| String::from_utf8_lossy(w).into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

#[test]
fn a_hung_lock_holder_blocked_every_command_silently() {
    let lab = Lab::with_busybox();
    std::fs::write(
        lab.dir.path().join("config.yaml"),
        format!("{}lock-timeout: 1s\n", lab.base_config()),
    )
    .unwrap();
    let held_by = format!("held by pid {}: {}", std::process::id(), my_cmdline());
    for (lock, args) in [
        ("containers/.lock", &["run", "--rm", "busybox", "true"][..]),
        ("oci/.lock", &["tag", "busybox", "other:1"][..]),
    ] {
        let path = lab.root().join(lock);
        let holder = hold_lock(&path);
        let start = std::time::Instant::now();
        let o = lab.cmd(args);
        let took = start.elapsed();
        o.expect_code(125);
        let lines: Vec<&str> = o.stderr.lines().collect();
        assert_eq!(
            lines,
            [
                format!("dockling: waiting for the lock {} ({held_by})", path.display()),
                format!("dockling: gave up waiting for the lock {} after 1s: it is {held_by}; if that command is hung, stop it, or raise lock-timeout in the config", path.display()),
            ],
            "{args:?}"
        );
        assert!(
            took >= std::time::Duration::from_secs(1) && took < std::time::Duration::from_secs(10),
            "{args:?} gave up after {took:?}"
        );
        assert_eq!(lab.containers_left(), Vec::<String>::new());
        assert_eq!(lab.cgroups_left(), Vec::<PathBuf>::new());
        // Once the holder lets go, the same command works.
        drop(holder);
        lab.cmd(args).expect_code(0);
    }
    let o = lab.cmd(&["images", "-q", "other:1"]);
    o.expect_code(0);
    assert_eq!(o.stdout.lines().count(), 1, "{}", o.stdout);
}

#[test]
fn lock_timeout_that_is_not_a_duration_is_refused() {
    let lab = Lab::with_busybox();
    std::fs::write(
        lab.dir.path().join("config.yaml"),
        format!("{}lock-timeout: soon\n", lab.base_config()),
    )
    .unwrap();
    let o = lab.cmd(&["images"]);
    o.expect_code(125);
    assert_eq!(
        o.stderr,
        "dockling: config: lock-timeout \"soon\" is not a duration: use a number of seconds or a duration like 60s, 2m or 500ms\n"
    );
}

/// A tmpfs of `size` mounted at `dir`, unmounted when dropped. The test must run in a
/// private mount namespace (scripts/test runs every test under `unshare --mount`), so the
/// mount never reaches the host even if the test dies.
struct SmallDisk(PathBuf);

impl SmallDisk {
    fn mount(dir: &std::path::Path, size: &str) -> SmallDisk {
        // In `unshare --mount --propagation private`, `/` is a private mount: no "shared:"
        // peer group in its optional fields (proc(5), /proc/self/mountinfo).
        let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        let root_shared = mountinfo.lines().any(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            f.len() > 6 && f[4] == "/" && l.split(" - ").next().unwrap().contains("shared:")
        });
        assert!(
            !root_shared,
            "this test mounts a tmpfs: run it in a private mount namespace (scripts/test does: unshare --mount --propagation private)"
        );
        std::fs::create_dir_all(dir).unwrap();
        nix::mount::mount(
            Some("tmpfs"),
            dir,
            Some("tmpfs"),
            nix::mount::MsFlags::empty(),
            Some(format!("size={size},mode=0711").as_str()),
        )
        .expect("mount a small tmpfs");
        SmallDisk(dir.to_path_buf())
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = nix::mount::umount2(&self.0, nix::mount::MntFlags::MNT_DETACH);
    }
}

/// Every path under `root` and the content of every regular file: what a failed command may
/// not add to or change in the store (directory times change when a temporary file comes and
/// goes, and are left out; so is the `.lock` file the clean-up takes).
fn store_content(root: &std::path::Path) -> Vec<(PathBuf, Vec<u8>)> {
    tree_state(root)
        .into_keys()
        .filter(|p| p.file_name() != Some(std::ffi::OsStr::new(".lock")))
        .map(|p| {
            let full = root.join(&p);
            let data = if full.is_file() {
                std::fs::read(&full).unwrap()
            } else {
                Vec::new()
            };
            (p, data)
        })
        .collect()
}

/// The digest in a message.
fn digest_in(s: &str) -> String {
    let at = s.find("sha256:").expect("a digest in the message");
    s[at..at + 71].to_string()
}

#[test]
fn a_full_disk_was_reported_as_a_download_failure_and_retried_three_times() {
    let source = Lab::with_busybox();
    let reg = common::registry::DockerRegistry::start();
    reg.push_busybox(&source, "lab/busybox:v1");
    let lab = Lab::new();
    let _disk = SmallDisk::mount(&lab.root(), "1m");
    lab.cmd(&["images"]).expect_code(0);
    let before = store_content(&lab.root());

    let name = reg.name("lab/busybox:v1");
    let o = lab.cmd(&["pull", &name]);
    o.expect_code(125);
    let blob = digest_in(&o.stderr);
    assert_eq!(
        o.stderr,
        format!(
            "dockling: no space left on {}/oci/blobs/sha256 (ENOSPC) while downloading blob {blob}: free space on that file system (dockling rmi, dockling image prune) or put the store elsewhere (--root)\n",
            lab.root().display()
        )
    );
    assert_eq!(
        reg.blob_gets(&blob),
        1,
        "the blob was asked for more than once"
    );
    assert_eq!(
        store_content(&lab.root()),
        before,
        "the failed pull left something"
    );

    // The same full disk under import: the same message, nothing left.
    let tar = common::busybox_tar();
    let o = lab.cmd(&["import", tar.to_str().unwrap(), "big:1"]);
    o.expect_code(125);
    assert_eq!(
        o.stderr,
        format!(
            "dockling: no space left on {}/oci/blobs/sha256 (ENOSPC) while writing a blob: free space on that file system (dockling rmi, dockling image prune) or put the store elsewhere (--root)\n",
            lab.root().display()
        )
    );
    assert_eq!(
        store_content(&lab.root()),
        before,
        "the failed import left something"
    );
    // The store still works: `images` lists nothing, without a warning.
    let o = lab.cmd(&["images", "-q"]);
    o.expect_code(0);
    assert_eq!((o.stdout.as_str(), o.stderr.as_str()), ("", ""));
}

/// A layer whose compressed blob fits but whose files do not: the unpacker's failed write
/// read as "layer …: entry …: No space left on device", a corrupt layer.
#[test]
fn a_full_disk_while_unpacking_looked_like_a_corrupt_layer() {
    use std::io::Write;
    let lab = Lab::new();
    let _disk = SmallDisk::mount(&lab.root(), "1m");
    let store = Store::open(&lab.root()).unwrap();
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(tar::EntryType::Regular);
    h.set_mode(0o644);
    h.set_mtime(1_000_000_000);
    let zeros = vec![0u8; 2 << 20];
    h.set_size(zeros.len() as u64);
    b.append_data(&mut h, "zeros", &zeros[..]).unwrap();
    let tar = b.into_inner().unwrap();
    let diff_id = format!("sha256:{:x}", <sha2::Sha256 as sha2::Digest>::digest(&tar));
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gz.write_all(&tar).unwrap();
    let (blob, size) = store.write_blob(&gz.finish().unwrap()).unwrap();
    assert!(size < 64 << 10, "the compressed layer fits ({size} bytes)");
    let err = store.ensure_unpacked(&blob, &diff_id).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "no space left on {}/layers/sha256 (ENOSPC) while unpacking layer {blob}: free space on that file system (dockling rmi, dockling image prune) or put the store elsewhere (--root)",
            lab.root().display()
        )
    );
    assert_eq!(err.exit_code(), 125);
    let left: Vec<_> = std::fs::read_dir(lab.root().join("layers/sha256"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert_eq!(
        left,
        Vec::<std::ffi::OsString>::new(),
        "half-unpacked layer left"
    );
}
