//! `image layers`, `image layers --path`, `image diff` and Docker's sizes in `history` and
//! `images`, on images made of hand-written layers: whiteouts, an opaque directory, hard
//! links and symlinks that point out of the root file system (shown, never followed).

mod common;

use common::{layers_on_busybox, tar_of, Lab, E};

/// busybox + the two layers of the "where did my disk go" shape:
/// layer 2 adds a 5000-byte file, a file with a hard link, a cache directory, /etc/motd and
/// symlinks out of the rootfs; layer 3 deletes the big file and the linked one, makes the
/// cache opaque, replaces /etc/motd and adds one file.
fn two_layers() -> (Vec<u8>, Vec<u8>) {
    let big = "B".repeat(5000);
    let keep = "k".repeat(300);
    let low = tar_of(&[
        E::Dir("data/", 0o755),
        E::File("data/big", &big, 0o644),
        E::File("data/keep", &keep, 0o600),
        E::Hard("data/keep2", "data/keep"),
        E::Dir("cache/", 0o755),
        E::File("cache/a", "aaaa", 0o644),
        E::File("cache/b", "bb", 0o644),
        E::File("etc/motd", "hello\n", 0o644),
        E::Sym("escape", "../../../../etc/passwd"),
        E::Sym("hostetc", "/etc"),
    ]);
    let up = tar_of(&[
        E::File("data/.wh.big", "", 0o644),
        E::File("data/.wh.keep", "", 0o644),
        E::File("cache/.wh..wh..opq", "", 0o644),
        E::File("cache/new", "n", 0o644),
        E::File("etc/motd", "bye!!!\n", 0o644),
    ]);
    (low, up)
}

fn lab_with(name: &str) -> Lab {
    let lab = Lab::with_busybox();
    let (low, up) = two_layers();
    layers_on_busybox(&lab, name, &[low, up]);
    lab
}

/// The last `n` columns of the row that starts with `first`.
fn tail(table: &str, first: &str, n: usize) -> Vec<String> {
    let row = table
        .lines()
        .find(|l| l.split_whitespace().next() == Some(first))
        .unwrap_or_else(|| panic!("no row {first} in\n{table}"));
    let cells: Vec<String> = row.split_whitespace().map(String::from).collect();
    cells[cells.len() - n..].to_vec()
}

/// Docker's size of the busybox fixture, counted independently from its tar: regular files'
/// sizes plus symlink targets' lengths (hard links and directories nothing).
fn busybox_docker_size() -> u64 {
    let mut a = tar::Archive::new(std::fs::File::open(common::busybox_tar()).unwrap());
    let mut n = 0;
    for e in a.entries().unwrap() {
        let e = e.unwrap();
        n += match e.header().entry_type() {
            tar::EntryType::Regular => e.size(),
            tar::EntryType::Symlink => e.link_name_bytes().unwrap().len() as u64,
            _ => 0,
        };
    }
    n
}

#[test]
fn image_layers_counts_whiteouts_opaque_dirs_hard_links_and_wasted_bytes() {
    let lab = lab_with("disk:1");
    let out = lab.cmd(&["image", "layers", "disk:1"]);
    out.expect_code(0);
    let t = &out.stdout;
    assert!(t.starts_with("LAYER "), "{t}");
    // SIZE ADDED CHANGED WHITEOUTS OPAQUE WASTED
    // Layer 2: 5000 + 300 + 4 + 2 + 6 + the two symlink targets (22 + 4) = 5338 bytes;
    // 8 non-directories added (the hard link counts as one).
    assert_eq!(tail(t, "2", 6), ["5.34kB", "8", "0", "0", "0", "0B"], "{t}");
    // Layer 3: /cache/new and /etc/motd (1 + 7 bytes); big (5000) whited out, keep whited
    // out but still shown through its hard link keep2 (nothing wasted), cache/a and b
    // (4 + 2) hidden by the opaque marker, motd's 6 bytes replaced: 5012 bytes wasted.
    assert_eq!(tail(t, "3", 6), ["8B", "1", "1", "2", "1", "5.01kB"], "{t}");
    assert_eq!(tail(t, "TOTAL", 4)[3], "5.01kB", "{t}");
    assert!(
        t.contains("5.01kB of the image is in lower layers but hidden"),
        "{t}"
    );
    assert!(
        t.contains("hostile layer"),
        "created_by from the history: {t}"
    );
}

#[test]
fn layers_path_shows_who_gives_a_file_and_who_hides_it() {
    let lab = lab_with("disk:1");
    let out = lab.cmd(&["image", "layers", "disk:1", "--path", "/data/big"]);
    out.expect_code(0);
    let t = &out.stdout;
    let rows: Vec<&str> = t.lines().skip(1).collect();
    assert!(
        rows[0].starts_with("2 ") && rows[0].contains("adds /data/big: file 5kB 0644 0:0"),
        "{t}"
    );
    assert!(
        rows[1].starts_with("3 ") && rows[1].contains("deletes /data/big: whiteout /data/.wh.big"),
        "{t}"
    );
    assert_eq!(
        rows[2], "/data/big is not in the image: a layer above hides it",
        "{t}"
    );

    let out = lab.cmd(&["image", "layers", "disk:1", "--path", "cache/a"]);
    out.expect_code(0);
    assert!(
        out.stdout
            .contains("hides /cache/a: opaque directory /cache (.wh..wh..opq)"),
        "{}",
        out.stdout
    );

    let out = lab.cmd(&["image", "layers", "disk:1", "--path", "/etc/motd"]);
    out.expect_code(0);
    assert!(
        out.stdout.contains("adds /etc/motd: file 6B 0644 0:0"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("replaces /etc/motd: file 7B 0644 0:0"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.ends_with("/etc/motd is given by layer 3\n"),
        "{}",
        out.stdout
    );

    // The kept file's hard link names its target inside the layer.
    let out = lab.cmd(&["image", "layers", "disk:1", "--path", "/data/keep2"]);
    out.expect_code(0);
    assert!(
        out.stdout.contains("hard link to /data/keep"),
        "{}",
        out.stdout
    );
}

#[test]
fn symlinks_out_of_the_rootfs_are_shown_never_followed() {
    let lab = lab_with("disk:1");
    let out = lab.cmd(&["image", "layers", "disk:1", "--path", "/escape"]);
    out.expect_code(0);
    assert!(
        out.stdout
            .contains("adds /escape: symlink -> ../../../../etc/passwd"),
        "{}",
        out.stdout
    );
    // A path through a symlink to the host's /etc is not resolved: no layer has it.
    let out = lab.cmd(&["image", "layers", "disk:1", "--path", "/hostetc/passwd"]);
    out.expect_code(1);
    assert_eq!(out.stdout, "");
    assert_eq!(out.stderr, "/hostetc/passwd: no layer of disk:1 has it\n");
}

#[test]
fn image_diff_lists_changes_between_two_images() {
    let lab = lab_with("disk:1");
    let out = lab.cmd(&["image", "diff", "busybox", "disk:1"]);
    out.expect_code(0);
    assert_eq!(
        out.stdout,
        "A /cache\nA /cache/new\nA /data\nA /data/keep2\nA /escape\nC /etc\nA /etc/motd\nA /hostetc\n"
    );
    // The other way round: what busybox lacks is deleted (the top name only).
    let out = lab.cmd(&["image", "diff", "disk:1", "busybox"]);
    out.expect_code(0);
    assert_eq!(
        out.stdout,
        "D /cache\nD /data\nD /escape\nC /etc\nD /etc/motd\nD /hostetc\n"
    );
    // Same size, same mode, other content: changed (the content digest is compared).
    let (low, up) = two_layers();
    let same_size = tar_of(&[E::File("etc/motd", "BYE!!!\n", 0o644)]);
    layers_on_busybox(&lab, "disk:2", &[low, up, same_size]);
    let out = lab.cmd(&["image", "diff", "disk:1", "disk:2"]);
    out.expect_code(0);
    assert_eq!(out.stdout, "C /etc\nC /etc/motd\n");
    // Identical images: nothing.
    let out = lab.cmd(&["image", "diff", "disk:1", "disk:1"]);
    out.expect_code(0);
    assert_eq!(out.stdout, "");
    let out = lab.cmd(&["image", "diff", "disk:1", "nothere"]);
    out.expect_code(125);
    assert!(out.stderr.contains("nothere"), "{}", out.stderr);
}

#[test]
fn history_and_images_show_docker_sizes_not_tar_lengths() {
    let lab = lab_with("disk:1");
    let out = lab.cmd(&["history", "-H=false", "disk:1"]);
    out.expect_code(0);
    let sizes: Vec<String> = out
        .stdout
        .lines()
        .skip(1)
        .map(|l| {
            let c: Vec<&str> = l.split_whitespace().collect();
            c[c.len() - 1].to_string()
        })
        .collect();
    let bb = busybox_docker_size();
    assert!(bb < std::fs::metadata(common::busybox_tar()).unwrap().len());
    assert_eq!(sizes, ["8", "5338", &bb.to_string()], "{}", out.stdout);
    // After a run unpacks the layers, the markers give the same numbers.
    lab.cmd(&["run", "--rm", "--network", "none", "disk:1", "true"])
        .expect_code(0);
    let again = lab.cmd(&["history", "-H=false", "disk:1"]);
    again.expect_code(0);
    assert_eq!(again.stdout, out.stdout);
    let out = lab.cmd(&["images", "--format", "{{.Size}}", "disk:1"]);
    out.expect_code(0);
    let total = dockling::image::format::human_size(bb + 5338 + 8);
    assert_eq!(out.stdout, format!("{total}\n"));
    let human = lab.cmd(&["history", "disk:1"]);
    human.expect_code(0);
    assert!(human.stdout.contains(" 8B\n"), "{}", human.stdout);
    assert!(human.stdout.contains(" 5.34kB\n"), "{}", human.stdout);
}
