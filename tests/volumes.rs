//! Volumes as a Docker user expects them: named ones outlive containers, anonymous ones go with
//! `rm -v` and `run --rm`, an image's `VOLUME` is filled from the image (through descriptors:
//! a hostile image's symlinks never lead the copy out), `volume-nocopy`, read-only mounts,
//! `volume rm` refused while a container names the volume, `--mount` errors, `ls`/`inspect`
//! formats and `prune`'s rules. Real runs against a scratch store.

mod common;

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use common::{tar_of, tree_state, Lab, E};

/// The volumes directory's entries (names), temporary and trash ones included.
fn volume_dirs(lab: &Lab) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(lab.root().join("volumes"))
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n != ".lock")
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// `volume ls -q`, sorted.
fn volume_names(lab: &Lab) -> Vec<String> {
    let o = lab.cmd(&["volume", "ls", "-q"]);
    o.expect_code(0);
    let mut v: Vec<String> = o.stdout.lines().map(str::to_string).collect();
    v.sort();
    v
}

/// The mountpoint `volume inspect` gives for `name`.
fn mountpoint(lab: &Lab, name: &str) -> PathBuf {
    let o = lab.cmd(&["volume", "inspect", "-f", "{{.Mountpoint}}", name]);
    o.expect_code(0);
    PathBuf::from(o.stdout.trim())
}

/// busybox + `layer`, with the config changes `changes` (`VOLUME /data`), tagged `name`.
fn image_with(lab: &Lab, name: &str, layer: &[u8], changes: &[&str]) {
    use dockling::image::{reference::Reference, store::Store};
    let store = Store::open(&lab.root()).unwrap();
    let base = store.find("busybox:latest").unwrap();
    let changes: Vec<String> = changes.iter().map(|c| c.to_string()).collect();
    store
        .build(
            Some(&base),
            layer,
            &changes,
            "2001-09-09T01:46:40Z",
            "volume test layer",
            Some(&Reference::parse(name).unwrap()),
        )
        .unwrap();
}

#[test]
fn named_volume_survives_rm_and_is_seen_by_a_second_container() {
    let lab = Lab::with_busybox();
    lab.cmd(&[
        "run",
        "--name",
        "writer",
        "-v",
        "data:/data",
        "busybox",
        "sh",
        "-c",
        "echo kept > /data/note",
    ])
    .expect_code(0);
    lab.cmd(&["rm", "-v", "writer"]).expect_code(0);
    // `rm -v` keeps named volumes, as Docker.
    assert_eq!(volume_names(&lab), ["data"]);
    let mp = mountpoint(&lab, "data");
    assert_eq!(mp, lab.root().join("volumes/data/_data"));
    assert_eq!(std::fs::read_to_string(mp.join("note")).unwrap(), "kept\n");
    let out = lab.ok(&["-v", "data:/data", "busybox", "cat", "/data/note"]);
    assert_eq!(out, "kept\n");
}

#[test]
fn anonymous_volume_removed_by_rm_v_and_run_rm_kept_by_plain_rm() {
    let lab = Lab::with_busybox();
    // run --rm: the anonymous volume goes with the container.
    lab.ok(&["-v", "/scratch", "busybox", "touch", "/scratch/x"]);
    assert_eq!(volume_names(&lab), Vec::<String>::new());
    // plain rm keeps it.
    lab.cmd(&["run", "--name", "keep", "-v", "/scratch", "busybox", "true"])
        .expect_code(0);
    let kept = volume_names(&lab);
    assert_eq!(kept.len(), 1, "{kept:?}");
    assert_eq!(kept[0].len(), 64, "an anonymous volume has a 64-hex name");
    lab.cmd(&["rm", "keep"]).expect_code(0);
    assert_eq!(volume_names(&lab), kept);
    // rm -v removes it.
    lab.cmd(&["run", "--name", "gone", "-v", "/scratch", "busybox", "true"])
        .expect_code(0);
    assert_eq!(volume_names(&lab).len(), 2);
    lab.cmd(&["rm", "-v", "gone"]).expect_code(0);
    assert_eq!(volume_names(&lab), kept);
    assert_eq!(
        volume_dirs(&lab),
        kept,
        "nothing but the kept volume is left"
    );
    // A detached --rm container: its monitor removes the anonymous volume when it ends.
    let o = lab.cmd(&[
        "run", "-d", "--rm", "-v", "/scratch", "busybox", "sleep", "0.2",
    ]);
    o.expect_code(0);
    common::wait_until(
        std::time::Duration::from_secs(20),
        "the detached --rm container and its anonymous volume to go",
        || (lab.containers_left().is_empty() && volume_names(&lab) == kept).then_some(()),
    );
}

#[test]
fn image_volume_is_populated_from_the_image() {
    let lab = Lab::with_busybox();
    let layer = tar_of(&[
        E::Dir("data/", 0o750),
        E::File("data/hello", "from the image\n", 0o640),
        E::Dir("data/sub/", 0o700),
        E::File("data/sub/deep", "deep\n", 0o600),
    ]);
    image_with(&lab, "withvol:1", &layer, &["VOLUME /data"]);
    let o = lab.cmd(&[
        "run",
        "--name",
        "c1",
        "withvol:1",
        "cat",
        "/data/hello",
        "/data/sub/deep",
    ]);
    o.expect_code(0);
    assert_eq!(o.stdout, "from the image\ndeep\n");
    let names = volume_names(&lab);
    assert_eq!(
        names.len(),
        1,
        "the image's VOLUME is an anonymous volume: {names:?}"
    );
    let mp = mountpoint(&lab, &names[0]);
    let hello = std::fs::metadata(mp.join("hello")).unwrap();
    assert_eq!(hello.mode() & 0o7777, 0o640, "mode kept by the copy-up");
    assert_eq!(hello.mtime(), 1_700_000_000, "mtime kept by the copy-up");
    assert_eq!(
        std::fs::metadata(mp.join("sub")).unwrap().mode() & 0o7777,
        0o700
    );
    // A named volume mounted there is filled the same way when new, not when it has data.
    lab.ok(&["-v", "named:/data", "withvol:1", "true"]);
    let named = mountpoint(&lab, "named");
    assert_eq!(
        std::fs::read_to_string(named.join("hello")).unwrap(),
        "from the image\n"
    );
    std::fs::remove_file(named.join("hello")).unwrap();
    std::fs::write(named.join("mine"), "mine\n").unwrap();
    let out = lab.ok(&["-v", "named:/data", "withvol:1", "ls", "/data"]);
    assert_eq!(
        out, "mine\nsub\n",
        "a volume with data is not copied into again"
    );
    let inspect = lab.cmd(&["inspect", "-f", "{{json .Config.Volumes}}", "c1"]);
    inspect.expect_code(0);
    assert_eq!(inspect.stdout.trim(), r#"{"/data":{}}"#);
}

#[test]
fn volume_nocopy_leaves_a_new_volume_empty() {
    let lab = Lab::with_busybox();
    let layer = tar_of(&[E::Dir("data/", 0o755), E::File("data/hello", "x\n", 0o644)]);
    image_with(&lab, "withvol:1", &layer, &[]);
    let out = lab.ok(&[
        "--mount",
        "type=volume,source=empty,target=/data,volume-nocopy",
        "withvol:1",
        "ls",
        "-A",
        "/data",
    ]);
    assert_eq!(out, "", "volume-nocopy: nothing copied");
    let out = lab.ok(&["-v", "filled:/data", "withvol:1", "ls", "-A", "/data"]);
    assert_eq!(out, "hello\n", "without it the image's files are copied");
    let out = lab.ok(&["-v", "other:/data:nocopy", "withvol:1", "ls", "-A", "/data"]);
    assert_eq!(out, "", "-v …:nocopy too");
}

#[test]
fn read_only_volume_refuses_writes() {
    let lab = Lab::with_busybox();
    let o = lab.run(&["-v", "ro1:/data:ro", "busybox", "touch", "/data/x"]);
    assert_eq!(o.code, 1, "touch must fail: {o:?}");
    assert!(o.stderr.contains("Read-only file system"), "{o:?}");
    let o = lab.run(&[
        "--mount",
        "type=volume,src=ro1,dst=/data,readonly",
        "busybox",
        "touch",
        "/data/x",
    ]);
    assert_eq!(o.code, 1, "touch must fail: {o:?}");
    // The same volume read-write: the write works (so the failures above were the flag).
    lab.ok(&["-v", "ro1:/data", "busybox", "touch", "/data/x"]);
    assert!(mountpoint(&lab, "ro1").join("x").exists());
}

#[test]
fn volume_rm_is_refused_while_a_container_uses_it() {
    let lab = Lab::with_busybox();
    lab.cmd(&[
        "run",
        "--name",
        "user1",
        "-v",
        "busy:/data",
        "busybox",
        "true",
    ])
    .expect_code(0);
    let id = lab
        .cmd(&["inspect", "-f", "{{.Id}}", "user1"])
        .stdout
        .trim()
        .to_string();
    // Stopped, still refused (Docker's message and exit code 1).
    let o = lab.cmd(&["volume", "rm", "busy"]);
    assert_eq!(o.code, 1, "{o:?}");
    assert!(
        o.stderr
            .contains(&format!("remove busy: volume is in use - [{id}]")),
        "{o:?}"
    );
    assert_eq!(volume_names(&lab), ["busy"]);
    let o = lab.cmd(&["volume", "rm", "-f", "busy"]);
    assert_eq!(o.code, 1, "-f does not remove a volume in use: {o:?}");
    lab.cmd(&["rm", "user1"]).expect_code(0);
    lab.cmd(&["volume", "rm", "busy"]).expect_code(0);
    // A running container's volume: refused too; `rm -f -v` keeps the named volume.
    lab.cmd(&[
        "run",
        "-d",
        "--name",
        "live",
        "-v",
        "busy:/data",
        "busybox",
        "sleep",
        "1000",
    ])
    .expect_code(0);
    let o = lab.cmd(&["volume", "rm", "busy"]);
    assert_eq!(o.code, 1, "{o:?}");
    assert!(o.stderr.contains("volume is in use"), "{o:?}");
    lab.cmd(&["rm", "-f", "-v", "live"]).expect_code(0);
    assert_eq!(volume_names(&lab), ["busy"]);
    lab.cmd(&["volume", "rm", "busy"]).expect_code(0);
    assert_eq!(volume_dirs(&lab), Vec::<String>::new());
    // Unknown volumes: exit 1, Docker's words; -f makes it quiet.
    let o = lab.cmd(&["volume", "rm", "nosuch"]);
    assert_eq!(o.code, 1);
    assert!(o.stderr.contains("get nosuch: no such volume"), "{o:?}");
    lab.cmd(&["volume", "rm", "-f", "nosuch"]).expect_code(0);
    let o = lab.cmd(&["volume", "inspect", "nosuch"]);
    assert_eq!(o.code, 1);
    assert!(o.stderr.contains("no such volume"), "{o:?}");
}

#[test]
fn hostile_volume_names_are_refused_and_leave_nothing() {
    let lab = Lab::with_busybox();
    let bait = common::bait_dir();
    let before = tree_state(bait.path());
    let rel = format!("../../../../../../..{}", bait.path().display());
    for name in ["..", "../x", "a/b", ".hidden", rel.as_str()] {
        let o = lab.cmd(&["volume", "create", name]);
        assert_eq!(o.code, 1, "volume create {name} must fail: {o:?}");
        assert!(o.stderr.contains("includes invalid characters"), "{o:?}");
        let spec = format!("{name}:/data");
        let o = lab.cmd(&["run", "--rm", "-v", &spec, "busybox", "touch", "/data/x"]);
        assert_eq!(o.code, 125, "-v {spec}: {o:?}");
        let m = format!("type=volume,source={name},target=/data");
        let o = lab.cmd(&["run", "--rm", "--mount", &m, "busybox", "true"]);
        assert_eq!(o.code, 125, "--mount {m}: {o:?}");
    }
    assert_eq!(volume_dirs(&lab), Vec::<String>::new());
    assert!(lab.containers_left().is_empty());
    assert_eq!(tree_state(bait.path()), before);
}

#[test]
fn copy_up_through_hostile_symlinks_stays_inside_the_volume_and_rootfs() {
    let lab = Lab::with_busybox();
    let bait = common::bait_dir();
    let bait_path = bait.path().display().to_string();
    let before = tree_state(bait.path());
    let up = format!("../../../../../../../..{bait_path}");
    let abs_file = format!("{bait_path}/file");
    let layer = tar_of(&[
        E::Dir("data/", 0o755),
        E::Sym("data/etc", "/etc"),
        E::Sym("data/up", "../../.."),
        E::Sym("data/bait", &bait_path),
        E::Sym("data/baitfile", &abs_file),
        E::Sym("data/deep", &up),
        E::File("data/plain", "plain\n", 0o644),
        // The mount point itself a symlink to the host's bait (absolute).
        E::Sym("vol2", &bait_path),
        // And one climbing out.
        E::Sym("vol3", &up),
    ]);
    image_with(
        &lab,
        "hostile:1",
        &layer,
        &["VOLUME /data", "VOLUME /vol2", "VOLUME /vol3"],
    );
    let o = lab.cmd(&[
        "run",
        "--name",
        "h1",
        "hostile:1",
        "sh",
        "-c",
        "echo w > /data/etc/written; echo w > /vol2/written; echo w > /vol3/written; cat /data/plain",
    ]);
    o.expect_code(0);
    assert_eq!(o.stdout, "plain\n");
    assert_eq!(
        tree_state(bait.path()),
        before,
        "the host's bait is untouched"
    );
    // The volume holds the image's symlinks as symlinks, not what they point to on the host.
    let mounts = lab.cmd(&[
        "inspect",
        "-f",
        "{{range .Mounts}}{{.Destination}}={{.Source}}\n{{end}}",
        "h1",
    ]);
    mounts.expect_code(0);
    let data = mounts
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("/data="))
        .map(PathBuf::from)
        .unwrap_or_else(|| panic!("no /data mount: {}", mounts.stdout));
    for (name, target) in [
        ("etc", "/etc".to_string()),
        ("up", "../../..".to_string()),
        ("bait", bait_path.clone()),
        ("deep", up.clone()),
    ] {
        let p = data.join(name);
        let m = std::fs::symlink_metadata(&p).unwrap();
        assert!(m.file_type().is_symlink(), "{name} copied as a symlink");
        assert_eq!(std::fs::read_link(&p).unwrap(), Path::new(&target));
    }
    assert_eq!(
        std::fs::read_to_string(data.join("plain")).unwrap(),
        "plain\n"
    );
    // The volume directory holds only what the image had (no host content read into it).
    let mut names: Vec<String> = std::fs::read_dir(&data)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["bait", "baitfile", "deep", "etc", "plain", "up"]);
    assert_eq!(std::fs::metadata(&data).unwrap().mode() & 0o777, 0o755);
    // The store is still fine: the container and its volumes go.
    lab.cmd(&["rm", "-v", "h1"]).expect_code(0);
    assert_eq!(volume_dirs(&lab), Vec::<String>::new());
    assert_eq!(tree_state(bait.path()), before);
}

#[test]
fn mount_flag_errors_are_clear_and_leave_nothing() {
    let lab = Lab::with_busybox();
    let cases: &[(&str, &str)] = &[
        (
            "type=volume,source=v1,target=/x,bogus=1",
            "unexpected key 'bogus'",
        ),
        ("type=volume,source=v1", "target is required"),
        ("type=bind,target=/x", "field Source must not be empty"),
        (
            "type=bind,source=/nonexistent-dockling-src,target=/x",
            "bind source path does not exist",
        ),
        ("type=bind,source=relative,target=/x", "must be absolute"),
        (
            "type=tmpfs,source=v1,target=/x",
            "field Source must be empty",
        ),
        (
            "type=bind,source=/tmp,target=/x,volume-nocopy",
            "cannot mix",
        ),
        (
            "type=tmpfs,target=/x,tmpfs-size=lots",
            "invalid value for tmpfs-size",
        ),
        ("type=nfs,target=/x", "invalid value for type"),
        ("type=volume,source=v1,target=relative", "must be absolute"),
        ("type=volume,source=v1,target=/", "destination can't be '/'"),
        (
            "type=volume,source=v1,target=/x,readonly=maybe",
            "invalid value for readonly",
        ),
    ];
    for (m, want) in cases {
        let o = lab.cmd(&["run", "--rm", "--mount", m, "busybox", "true"]);
        assert_eq!(o.code, 125, "--mount {m}: {o:?}");
        assert!(o.stderr.contains(want), "--mount {m}: want {want:?}: {o:?}");
    }
    // Two mounts on one path.
    let o = lab.cmd(&[
        "run",
        "--rm",
        "-v",
        "a1:/x",
        "--mount",
        "type=volume,src=b1,dst=/x",
        "busybox",
        "true",
    ]);
    assert_eq!(o.code, 125, "{o:?}");
    assert!(o.stderr.contains("duplicate mount point"), "{o:?}");
    assert_eq!(volume_dirs(&lab), Vec::<String>::new());
    assert!(lab.containers_left().is_empty());
    // The good forms work: tmpfs with its size, a bind, --tmpfs.
    let out = lab.ok(&[
        "--mount",
        "type=tmpfs,target=/t,tmpfs-size=1m,tmpfs-mode=1770",
        "--tmpfs",
        "/t2:size=2m",
        "--mount",
        "type=bind,source=/etc,target=/hostetc,readonly",
        "busybox",
        "sh",
        "-c",
        "stat -c %a /t; df -k /t /t2 | tail -2 | tr -s ' ' | cut -d' ' -f2; test -f /hostetc/passwd && echo bind",
    ]);
    assert_eq!(out, "1770\n1024\n2048\nbind\n");
}

#[test]
fn ls_and_inspect_formats() {
    let lab = Lab::with_busybox();
    lab.cmd(&["volume", "create", "--label", "team=web", "alpha"])
        .expect_code(0);
    let o = lab.cmd(&["volume", "create"]);
    o.expect_code(0);
    let random = o.stdout.trim().to_string();
    assert_eq!(random.len(), 64, "{o:?}");
    let o = lab.cmd(&["volume", "ls"]);
    o.expect_code(0);
    let mut want = ["local     alpha".to_string(), format!("local     {random}")];
    want.sort();
    assert_eq!(
        o.stdout,
        format!("DRIVER    VOLUME NAME\n{}\n", want.join("\n"))
    );
    let o = lab.cmd(&[
        "volume",
        "ls",
        "--format",
        "{{.Name}} {{.Driver}} {{.Labels}}",
        "--filter",
        "name=alp",
    ]);
    o.expect_code(0);
    assert_eq!(o.stdout, "alpha local team=web\n");
    let o = lab.cmd(&["volume", "ls", "-q", "--filter", "label=team=web"]);
    assert_eq!(o.stdout, "alpha\n");
    let o = lab.cmd(&[
        "volume",
        "inspect",
        "-f",
        "{{.Name}} {{.Driver}} {{.Scope}} {{.Labels.team}} {{json .Options}}",
        "alpha",
    ]);
    o.expect_code(0);
    assert_eq!(o.stdout, "alpha local local web null\n");
    let o = lab.cmd(&["volume", "inspect", "alpha"]);
    o.expect_code(0);
    let v: serde_json::Value = serde_json::from_str(&o.stdout).unwrap();
    let keys: Vec<&String> = v[0].as_object().unwrap().keys().collect();
    assert_eq!(
        keys,
        [
            "CreatedAt",
            "Driver",
            "Labels",
            "Mountpoint",
            "Name",
            "Options",
            "Scope"
        ]
    );
    // Creating an existing volume is not an error (Docker's).
    lab.cmd(&["volume", "create", "alpha"]).expect_code(0);
    let o = lab.cmd(&["volume", "create", "-d", "nfs", "beta"]);
    assert_eq!(o.code, 1, "{o:?}");
    assert!(o.stderr.contains("plugin"), "{o:?}");
    // Container inspect: Mounts as Docker shows them, and NetworkSettings.
    lab.cmd(&[
        "run",
        "--name",
        "m1",
        "-v",
        "alpha:/a:ro",
        "-v",
        "/tmp:/b",
        "-v",
        "/tmp:/f:rw",
        "-v",
        "gamma:/g",
        "--mount",
        "type=volume,src=delta,dst=/d",
        "--mount",
        "type=tmpfs,dst=/e",
        "--tmpfs",
        "/c",
        "busybox",
        "true",
    ])
    .expect_code(0);
    // Docker's Mode (moby ParseMountRaw + setBindModeIfNull): the -v mode as given, `z` for
    // a local volume given none; a --tmpfs is not in Mounts, a --mount type=tmpfs is.
    let o = lab.cmd(&["inspect", "-f", "{{range .Mounts}}{{.Type}} {{.Name}} {{.Destination}} {{.Mode}} {{.RW}} {{.Propagation}}|{{end}}", "m1"]);
    o.expect_code(0);
    assert_eq!(
        o.stdout.trim(),
        "volume alpha /a ro false |bind <no value> /b  true rprivate|bind <no value> /f rw true rprivate|volume gamma /g z true |volume delta /d z true |tmpfs <no value> /e  true |"
    );
    let o = lab.cmd(&["inspect", "--type", "volume", "-f", "{{.Name}}", "alpha"]);
    o.expect_code(0);
    assert_eq!(o.stdout, "alpha\n");
    let o = lab.cmd(&["inspect", "--type", "volume", "m1"]);
    assert_eq!(o.code, 1, "a container is no volume: {o:?}");
    let o = lab.cmd(&["inspect", "-f", "{{json .HostConfig.Binds}}", "m1"]);
    assert_eq!(
        o.stdout.trim(),
        r#"["alpha:/a:ro","/tmp:/b","/tmp:/f:rw","gamma:/g"]"#
    );
    // On the default network, not running: Docker's empty address.
    let o = lab.cmd(&["inspect", "-f", "{{.NetworkSettings.Networks.bridge.IPAddress}}|{{.NetworkSettings.IPAddress}}|{{.HostConfig.NetworkMode}}", "m1"]);
    o.expect_code(0);
    assert_eq!(o.stdout.trim(), "||bridge");
}

#[test]
fn prune_removes_unused_anonymous_volumes_and_all_unused_with_a() {
    let lab = Lab::with_busybox();
    lab.cmd(&["volume", "create", "named"]).expect_code(0);
    lab.cmd(&[
        "run",
        "--name",
        "holder",
        "-v",
        "held:/h",
        "-v",
        "/anon-held",
        "busybox",
        "true",
    ])
    .expect_code(0);
    lab.cmd(&[
        "run",
        "--name",
        "tmp1",
        "-v",
        "/anon-free",
        "busybox",
        "true",
    ])
    .expect_code(0);
    lab.cmd(&["rm", "tmp1"]).expect_code(0);
    let all = volume_names(&lab);
    assert_eq!(all.len(), 4, "{all:?}");
    let held_anon = lab.cmd(&[
        "inspect",
        "-f",
        "{{range .Mounts}}{{if eq .Destination \"/anon-held\"}}{{.Name}}{{end}}{{end}}",
        "holder",
    ]);
    let held_anon = held_anon.stdout.trim().to_string();
    assert_eq!(held_anon.len(), 64);
    // Without -a: only the unused anonymous one.
    let o = lab.cmd(&["volume", "prune", "-f"]);
    o.expect_code(0);
    assert!(o.stdout.starts_with("Deleted Volumes:\n"), "{o:?}");
    let mut want = vec!["held".to_string(), "named".to_string(), held_anon.clone()];
    want.sort();
    assert_eq!(volume_names(&lab), want);
    // -a: every unused one; the held ones stay.
    lab.cmd(&["volume", "prune", "-af"]).expect_code(0);
    let mut want = vec!["held".to_string(), held_anon];
    want.sort();
    assert_eq!(volume_names(&lab), want);
    // ls --filter dangling.
    lab.cmd(&["volume", "create", "loose"]).expect_code(0);
    let o = lab.cmd(&["volume", "ls", "-q", "--filter", "dangling=true"]);
    assert_eq!(o.stdout, "loose\n");
    // And prune without -f asks (answering no keeps everything).
    let o = lab.cmd(&["volume", "prune", "-a"]);
    o.expect_code(0);
    assert!(o.stdout.contains("Are you sure"), "{o:?}");
    assert!(volume_names(&lab).contains(&"loose".to_string()));
    // system df counts them; system prune --volumes takes unused anonymous ones only.
    let o = lab.cmd(&["system", "df"]);
    o.expect_code(0);
    let row: Vec<&str> = o
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("Local Volumes"))
        .unwrap_or_else(|| panic!("no volumes row: {o:?}"))
        .split_whitespace()
        .collect();
    assert_eq!(row[..2], ["3", "2"], "{o:?}");
    lab.cmd(&[
        "run",
        "--name",
        "tmp2",
        "-v",
        "/anon-free2",
        "busybox",
        "true",
    ])
    .expect_code(0);
    let o = lab.cmd(&["system", "prune", "-f", "--volumes"]);
    o.expect_code(0);
    assert!(o.stdout.contains("Deleted Volumes:"), "{o:?}");
    let mut names = volume_names(&lab);
    names.retain(|n| n.len() != 64);
    assert_eq!(
        names,
        ["held", "loose"],
        "named volumes are kept by system prune"
    );
}

/// A layer whose `data/` directory is owned by 999:999, mode 0700 (a postgres-style image).
fn layer_with_owned_dir() -> Vec<u8> {
    let mut h = common::raw_header("data/", tar::EntryType::Directory, 0o700, 0, None);
    h.set_uid(999);
    h.set_gid(999);
    h.set_cksum();
    let mut b = tar::Builder::new(Vec::new());
    b.append(&h, &b""[..]).unwrap();
    for e in [
        E::File("data/a", "linked\n", 0o644),
        E::Hard("data/b", "data/a"),
    ] {
        let one = tar_of(&[e]);
        let mut a = tar::Archive::new(&one[..]);
        for entry in a.entries().unwrap() {
            let entry = entry.unwrap();
            let h = entry.header().clone();
            b.append(&h, entry).unwrap();
        }
    }
    b.into_inner().unwrap()
}

/// Docker's copy-up gives the volume's top directory the image directory's owner and mode
/// (`copyOwnership`: a non-root image can write its own VOLUME), and the copy is fd to fd:
/// a hard link in the image stays one link, not two files.
#[test]
fn copy_up_keeps_the_top_directory_owner_and_mode_and_hard_links() {
    let lab = Lab::with_busybox();
    image_with(&lab, "owned:1", &layer_with_owned_dir(), &["VOLUME /data"]);
    lab.cmd(&["run", "--name", "c1", "owned:1", "true"])
        .expect_code(0);
    let names = volume_names(&lab);
    assert_eq!(names.len(), 1, "{names:?}");
    let mp = mountpoint(&lab, &names[0]);
    let md = std::fs::metadata(&mp).unwrap();
    assert_eq!(
        (md.mode() & 0o7777, md.uid(), md.gid()),
        (0o700, 999, 999),
        "_data has the image directory's mode and owner"
    );
    let (a, b) = (
        std::fs::metadata(mp.join("a")).unwrap(),
        std::fs::metadata(mp.join("b")).unwrap(),
    );
    assert_eq!(std::fs::read_to_string(mp.join("b")).unwrap(), "linked\n");
    assert_eq!(a.ino(), b.ino(), "a hard link is copied as a hard link");
    assert_eq!(a.nlink(), 2);
    // The same from a flattened copy of the layers (`--layers copy`).
    lab.ok(&["--layers", "copy", "-v", "flat:/data", "owned:1", "true"]);
    let flat = mountpoint(&lab, "flat");
    let md = std::fs::metadata(&flat).unwrap();
    assert_eq!((md.mode() & 0o7777, md.uid()), (0o700, 999));
    assert_eq!(
        std::fs::metadata(flat.join("a")).unwrap().ino(),
        std::fs::metadata(flat.join("b")).unwrap().ino()
    );
}

/// Without a devices cgroup (`--no-cgroups`, not `--privileged`) nothing keeps a device node
/// closed but `nodev`: the image's device nodes are not copied into its volume, and every
/// volume and `-v` directory is mounted nodev (a node a normal run copied, or one in a host
/// directory, cannot be opened).
#[test]
fn no_cgroups_volumes_and_binds_are_nodev_and_get_no_device_nodes() {
    let lab = Lab::with_busybox();
    let (path, major, minor) = common::host_char_device();
    let layer = tar_of(&[
        E::Dir("d/", 0o755),
        E::Dev("d/node", tar::EntryType::Char, major, minor),
    ]);
    image_with(&lab, "devvol:1", &layer, &["VOLUME /d"]);
    let probe = "[ -e /d/node ] && echo present || echo absent; (exec 3</d/node) 2>/dev/null && echo opened || echo refused";
    let o = lab.run(&["--no-cgroups", "devvol:1", "sh", "-c", probe]);
    o.expect_code(0);
    assert_eq!(o.stdout, "absent\nrefused\n", "{path}: {}", o.stderr);
    // A named volume a normal run filled (Docker copies device nodes; the devices cgroup
    // keeps them closed there), then mounted with no cgroups: nodev keeps it closed.
    lab.ok(&["-v", "withdev:/d", "devvol:1", "true"]);
    let node = mountpoint(&lab, "withdev").join("node");
    assert!(
        std::fs::symlink_metadata(&node).is_ok(),
        "a normal run copies the node, as Docker"
    );
    let o = lab.run(&[
        "--no-cgroups",
        "-v",
        "withdev:/d",
        "devvol:1",
        "sh",
        "-c",
        probe,
    ]);
    o.expect_code(0);
    assert_eq!(o.stdout, "present\nrefused\n", "{path}: {}", o.stderr);
    // A host directory holding a device node.
    let host = tempfile::tempdir().unwrap();
    nix::sys::stat::mknod(
        &host.path().join("node"),
        nix::sys::stat::SFlag::S_IFCHR,
        nix::sys::stat::Mode::from_bits_truncate(0o666),
        nix::sys::stat::makedev(major.into(), minor.into()),
    )
    .unwrap();
    let bind = format!("{}:/d", host.path().display());
    for ro in ["", ":ro"] {
        let o = lab.run(&[
            "--no-cgroups",
            "-v",
            &format!("{bind}{ro}"),
            "busybox",
            "sh",
            "-c",
            probe,
        ]);
        o.expect_code(0);
        assert_eq!(
            o.stdout, "present\nrefused\n",
            "-v {bind}{ro}: {}",
            o.stderr
        );
    }
    // --privileged keeps every device, as before.
    let o = lab.run(&[
        "--no-cgroups",
        "--privileged",
        "-v",
        &bind,
        "busybox",
        "sh",
        "-c",
        probe,
    ]);
    o.expect_code(0);
    assert_eq!(o.stdout, "present\nopened\n", "{}", o.stderr);
}

/// A copy-up that was killed half way left `.copying` beside `_data`: the next start empties
/// `_data` and copies again, instead of using half a copy forever.
#[test]
fn an_unfinished_copy_up_is_redone_by_the_next_start() {
    let lab = Lab::with_busybox();
    let layer = tar_of(&[
        E::Dir("data/", 0o755),
        E::File("data/hello", "from the image\n", 0o644),
    ]);
    image_with(&lab, "withvol:2", &layer, &["VOLUME /data"]);
    lab.cmd(&["volume", "create", "half"]).expect_code(0);
    let mp = mountpoint(&lab, "half");
    std::fs::create_dir(mp.join("partial")).unwrap();
    std::fs::write(mp.join("partial/junk"), "half a copy\n").unwrap();
    let marker = mp.parent().unwrap().join(".copying");
    std::fs::write(&marker, "").unwrap();
    let out = lab.ok(&["-v", "half:/data", "withvol:2", "ls", "-A", "/data"]);
    assert_eq!(out, "hello\n", "the half copy is replaced by a whole one");
    assert!(!marker.exists(), "the marker goes when the copy is done");
    // Done: a later start leaves the volume's data alone.
    std::fs::write(mp.join("mine"), "x").unwrap();
    let out = lab.ok(&["-v", "half:/data", "withvol:2", "ls", "-A", "/data"]);
    assert_eq!(out, "hello\nmine\n");
}

/// The copy-up reads the image, not what the engine mounts: a VOLUME at /etc is filled before
/// /etc/hosts, /etc/hostname and /etc/resolv.conf are bound there, and a VOLUME under a `-v`
/// directory is not filled from the host's.
#[test]
fn copy_up_reads_the_image_not_what_is_mounted_over_it() {
    let lab = Lab::with_busybox();
    let layer = tar_of(&[
        E::Dir("etc/", 0o755),
        E::File("etc/hosts", "image hosts\n", 0o644),
        E::Dir("srv/", 0o755),
        E::Dir("srv/in/", 0o755),
        E::File("srv/in/img", "image\n", 0o644),
    ]);
    image_with(&lab, "etcvol:1", &layer, &["VOLUME /etc"]);
    lab.cmd(&["run", "--name", "c1", "etcvol:1", "true"])
        .expect_code(0);
    let names = volume_names(&lab);
    let mp = mountpoint(&lab, &names[0]);
    assert_eq!(
        std::fs::read_to_string(mp.join("hosts")).unwrap(),
        "image hosts\n",
        "the image's /etc/hosts, not the engine's bind"
    );
    assert!(
        !mp.join("hostname").exists(),
        "the engine's hostname is not copied"
    );
    let host = tempfile::tempdir().unwrap();
    std::fs::create_dir(host.path().join("in")).unwrap();
    std::fs::write(host.path().join("in/hostfile"), "host\n").unwrap();
    let srv = format!("{}:/srv", host.path().display());
    lab.ok(&["-v", &srv, "-v", "under:/srv/in", "etcvol:1", "true"]);
    let under = mountpoint(&lab, "under");
    assert!(under.join("img").exists() && !under.join("hostfile").exists());
}

/// One damaged `opts.json` hides nothing else: `volume ls`, `system df` and `prune` warn and
/// go on, `volume rm` removes the damaged volume. A name of 255 characters (Docker's limit)
/// is removed too (its trash name does not grow with it).
#[test]
fn a_damaged_volume_blocks_nothing_and_long_names_are_removable() {
    let lab = Lab::with_busybox();
    for n in ["bad", "good"] {
        lab.cmd(&["volume", "create", n]).expect_code(0);
    }
    std::fs::write(lab.root().join("volumes/bad/opts.json"), "{").unwrap();
    let o = lab.cmd(&["volume", "ls", "-q"]);
    o.expect_code(0);
    assert_eq!(o.stdout, "good\n");
    assert!(o.stderr.contains("bad"), "a warning names it: {}", o.stderr);
    lab.cmd(&["system", "df"]).expect_code(0);
    let o = lab.cmd(&["volume", "rm", "bad"]);
    o.expect_code(0);
    assert_eq!(o.stdout, "bad\n");
    let o = lab.cmd(&["volume", "prune", "-a", "-f"]);
    o.expect_code(0);
    assert!(o.stdout.contains("good"), "{}", o.stdout);
    assert_eq!(volume_dirs(&lab), Vec::<String>::new());
    let long = "v".repeat(255);
    let o = lab.cmd(&["volume", "create", &long]);
    o.expect_code(0);
    let o = lab.cmd(&["volume", "rm", &long]);
    o.expect_code(0);
    assert_eq!(o.stdout.trim(), long, "{}", o.stderr);
    assert_eq!(volume_dirs(&lab), Vec::<String>::new(), "nothing left");
}

/// Docker's flags and defaults for tmpfs mounts, `--mount` keys and `-v` forms: `--tmpfs` and
/// `--mount type=tmpfs` are `noexec,nosuid,nodev` unless told otherwise, `--tmpfs` takes
/// mount flags and tmpfs options (`rw,noexec,nosuid,size=65536k`), `tmpfs-size` takes
/// Docker's units (`64MB`), `consistency` is accepted and ignored, the keys dockling lacks
/// are refused by name, `-v /data:ro` is refused as Docker refuses it.
#[test]
fn tmpfs_and_mount_options_as_docker() {
    let lab = Lab::with_busybox();
    let flags = |p: &str| {
        format!("grep ' {p} tmpfs ' /proc/mounts | cut -d' ' -f4 | tr ',' '\\n' | grep -E '^(ro|rw|noexec|nosuid|nodev)$' | sort | tr '\\n' ' '; echo")
    };
    let script = [
        flags("/a"),
        flags("/b"),
        flags("/c"),
        "df -k /b /c | tail -2 | tr -s ' ' | cut -d' ' -f2".into(),
    ]
    .join("; ");
    let out = lab.ok(&[
        "--tmpfs",
        "/a",
        "--tmpfs",
        "/b:rw,noexec,nosuid,size=65536k",
        "--mount",
        "type=tmpfs,target=/c,tmpfs-size=64MB,consistency=cached",
        "busybox",
        "sh",
        "-c",
        &script,
    ]);
    assert_eq!(
        out,
        "nodev noexec nosuid rw \nnodev noexec nosuid rw \nnodev noexec nosuid rw \n65536\n65536\n"
    );
    let out = lab.ok(&[
        "--tmpfs",
        "/x:exec,mode=755",
        "busybox",
        "sh",
        "-c",
        &flags("/x"),
    ]);
    assert_eq!(out, "nodev nosuid rw \n", "exec overrides Docker's noexec");
    for (args, want) in [
        (
            vec!["-v", "/data:ro"],
            "invalid volume specification: '/data:ro'",
        ),
        (vec!["--tmpfs", "/x:bogus"], "neither a mount flag"),
        (
            vec!["--mount", "type=volume,src=v,dst=/x,volume-opt=type=nfs"],
            "'volume-opt' is a Docker option dockling does not support",
        ),
        (
            vec!["--mount", "type=volume,src=v,dst=/x,volume-label=a=b"],
            "volume create --label",
        ),
        (
            vec!["--mount", "type=volume,src=v,dst=/x,consistency=sometimes"],
            "invalid value for consistency",
        ),
    ] {
        let mut all = args.clone();
        all.extend(["busybox", "true"]);
        let o = lab.run(&all);
        assert_eq!(o.code, 125, "{args:?}: {o:?}");
        assert!(o.stderr.contains(want), "{args:?}: want {want:?}: {o:?}");
    }
    assert_eq!(volume_dirs(&lab), Vec::<String>::new(), "nothing made");
}

/// Mounts are made in Docker's order, by the destination's depth: a `-v` under an image's
/// `VOLUME` is mounted on top of it, not hidden by it.
#[test]
fn a_volume_under_an_image_volume_is_not_hidden() {
    let lab = Lab::with_busybox();
    let layer = tar_of(&[
        E::Dir("data/", 0o755),
        E::File("data/img", "image\n", 0o644),
    ]);
    image_with(&lab, "deep:1", &layer, &["VOLUME /data"]);
    lab.cmd(&["volume", "create", "cfg"]).expect_code(0);
    std::fs::write(mountpoint(&lab, "cfg").join("conf"), "mine\n").unwrap();
    let out = lab.ok(&[
        "-v",
        "cfg:/data/cfg",
        "deep:1",
        "cat",
        "/data/cfg/conf",
        "/data/img",
    ]);
    assert_eq!(out, "mine\nimage\n");
}
