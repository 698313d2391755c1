//! Image housekeeping: `images` sizes, `history`, `image ls|inspect|prune`, retagging.

mod common;
use common::Lab;

fn count(lab: &Lab) -> usize {
    lab.cmd(&["images", "-q"]).stdout.lines().count()
}

#[test]
fn history_sizes_and_prune_follow_docker() {
    let lab = Lab::new();
    let tar = common::busybox_tar();
    let tar = tar.to_str().unwrap();
    // From stdin, so the history line does not depend on where the fixture is.
    let imported = lab
        .command(&[
            "import",
            "-c",
            "CMD [\"sh\"]",
            "-m",
            "from busybox-static",
            "-",
            "busybox",
        ])
        .stdin(std::fs::File::open(tar).unwrap())
        .output()
        .unwrap();
    assert!(imported.status.success(), "{imported:?}");
    let history = lab.cmd(&["history", "busybox"]);
    history.expect_code(0);
    insta::assert_snapshot!(lab.filter(&history.stdout), @r"
    IMAGE          CREATED                  CREATED BY          SIZE      COMMENT
    [ID]   [AGO]   dockling import -   [SIZE]    from busybox-static
    ");
    // SIZE is the uncompressed size, as Docker shows it.
    let images = lab.cmd(&["images"]).stdout;
    let tar_size = std::fs::metadata(tar).unwrap().len();
    let shown = images
        .lines()
        .nth(1)
        .unwrap()
        .split_whitespace()
        .last()
        .unwrap()
        .to_string();
    let want = format!("{:.2}MB", tar_size as f64 / 1e6);
    assert!(
        want.trim_end_matches('0')
            .trim_end_matches('.')
            .starts_with(shown.trim_end_matches("MB")),
        "images shows {shown}, the layer is {tar_size} bytes:\n{images}"
    );
    assert_eq!(lab.cmd(&["image", "ls"]).stdout, images);
    let inspect: serde_json::Value =
        serde_json::from_str(&lab.cmd(&["image", "inspect", "busybox"]).stdout).unwrap();
    assert_eq!(inspect[0]["Size"], tar_size);
    assert_eq!(inspect[0]["Config"]["Cmd"][0], "sh");

    // Retagging moves a tag; an image another tag still names does not turn into <none>.
    lab.cmd(&["tag", "busybox", "web:1"]).expect_code(0);
    lab.cmd(&["import", tar, "web:1"]).expect_code(0);
    assert!(!lab.cmd(&["images"]).stdout.contains("<none>"));
    let nothing = lab.cmd(&["image", "prune", "-f"]);
    nothing.expect_code(0);
    assert_eq!(nothing.stdout, "Total reclaimed space: 0B\n");

    // Re-importing busybox leaves the old one dangling; prune asks first, then removes it.
    lab.cmd(&["import", "-c", "CMD [\"ls\"]", tar, "busybox"])
        .expect_code(0);
    assert!(lab.cmd(&["images"]).stdout.contains("<none>"));
    assert_eq!(count(&lab), 3);
    let mut no = lab.command(&["image", "prune"]);
    no.stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped());
    let mut child = no.spawn().unwrap();
    drop(child.stdin.take());
    let refused = child.wait_with_output().unwrap();
    assert!(refused.status.success());
    assert_eq!(count(&lab), 3, "no answer means no");
    let pruned = lab.cmd(&["image", "prune", "-f"]);
    pruned.expect_code(0);
    assert!(
        pruned
            .stdout
            .starts_with("Deleted Images:\ndeleted: sha256:"),
        "{}",
        pruned.stdout
    );
    assert_eq!(count(&lab), 2);
    // -a removes every image no container uses.
    lab.cmd(&["run", "--name", "keep", "busybox", "true"])
        .expect_code(0);
    lab.cmd(&["image", "prune", "-a", "-f"]).expect_code(0);
    let left = lab.cmd(&["images"]).stdout;
    assert!(left.contains("busybox") && !left.contains("web"), "{left}");
    let refused = lab.cmd(&["rmi", "busybox"]);
    assert_eq!(refused.code, 1);
    assert!(refused.stderr.contains("container"), "{}", refused.stderr);
    // Removing one of two tags only untags, even while a container uses the image.
    lab.cmd(&["tag", "busybox", "other:1"]).expect_code(0);
    let untag = lab.cmd(&["rmi", "busybox"]);
    untag.expect_code(0);
    assert_eq!(untag.stdout, "Untagged: busybox:latest\n");
    // Forced, the last tag goes but the image stays (as <none>) for the container.
    let forced = lab.cmd(&["rmi", "-f", "other:1"]);
    forced.expect_code(0);
    assert_eq!(forced.stdout, "Untagged: other:1\n");
    let images = lab.cmd(&["images"]).stdout;
    assert!(images.contains("<none>"), "{images}");
    assert_eq!(lab.cmd(&["ps", "-aq"]).stdout.lines().count(), 1);
    // Once the container is gone, prune removes it.
    lab.cmd(&["rm", "keep"]).expect_code(0);
    lab.cmd(&["image", "prune", "-f"]).expect_code(0);
    assert_eq!(count(&lab), 0);
}
