//! Every lesson, end to end, against a lab registry on a free loopback port: each step's
//! expectation must hold, and the chapter it renders (`--format markdown`) is a snapshot.
//! The book places these snapshots in its lesson chapters, so when the engine's output
//! changes this test fails until the snapshot, and with it the book, is updated.

mod common;
use common::{free_port, Lab, NetNs};

/// The lab registry's address in the lessons: `lab up`'s default, as a student's own lab has
/// it (free here: the lessons run in a network namespace of their own).
const LAB_ADDR: &str = "127.0.0.1:5000";

/// The hex names of the lab's own content: every blob its registry holds right after `lab up`
/// (manifests, configs, layers) and every `sha256:` digest those blobs name (a config's diff
/// ids). The lab builds its images reproducibly from the host's busybox-static, so these are
/// the same on every run, and the book shows them: "the same IMAGE ID" must be visible.
fn lab_digests(lab: &Lab) -> std::collections::HashSet<String> {
    let blobs = lab
        .root()
        .join("lab/registry/docker/registry/v2/blobs/sha256");
    let digest = regex::Regex::new(r"sha256:([0-9a-f]{64})").unwrap();
    let mut out = std::collections::HashSet::new();
    for prefix in std::fs::read_dir(&blobs)
        .unwrap_or_else(|e| panic!("{}: {e}", blobs.display()))
        .flatten()
    {
        for blob in std::fs::read_dir(prefix.path()).unwrap().flatten() {
            out.insert(blob.file_name().to_string_lossy().into_owned());
            let data = std::fs::read(blob.path().join("data")).unwrap();
            if let Ok(text) = std::str::from_utf8(&data) {
                out.extend(digest.captures_iter(text).map(|c| c[1].to_string()));
            }
        }
    }
    assert!(
        out.len() >= 10,
        "the lab registry holds only {out:?} after lab up"
    );
    out
}

/// The busybox-static the snapshots were made with: the lab's images are built from it, so
/// their digests and sizes in the book are its.
const BUSYBOX_SHA256: &str = "3d9f2889d6782537624a4e1a10e68a2ddd53e0ee8bac02676f27308f42ec6bf6";

/// What changes from run to run, beyond the harness's own filters. Hex names of the lab's own
/// content (`known`) are kept; every other id or digest (containers, networks, committed and
/// built images, which hold the time they were made) becomes `[ID]`/`[DIGEST]`.
fn filter(lab: &Lab, known: &std::collections::HashSet<String>, text: &str) -> String {
    // A NUL after a known name's first character hides it from the harness's filters; the
    // NULs are taken out after.
    let short: std::collections::HashSet<&str> = known.iter().map(|d| &d[..12]).collect();
    // A pull's blob GETs have their digests masked (the lesson says so): they came in either
    // order when the config and the layers were fetched at once, and the book keeps the mask.
    let text = regex::Regex::new(r"(GET \S*/blobs/sha256:)[0-9a-f]{64}")
        .unwrap()
        .replace_all(text, "${1}[DIGEST]");
    let text = regex::Regex::new(r"\b[0-9a-f]{12}(?:[0-9a-f]{52})?\b")
        .unwrap()
        .replace_all(&text, |c: &regex::Captures| {
            let hex = &c[0];
            if known.contains(hex) || (hex.len() == 12 && short.contains(hex)) {
                format!("{}\0{}", &hex[..1], &hex[1..])
            } else {
                hex.to_string()
            }
        })
        .into_owned();
    // Sizes of the lab's own content are as reproducible as its digests (Docker's content
    // sizes, not disk usage): the lines of the "where did my disk go" lesson's own layers
    // (naming its big file or its cache, or their TOTAL), a lab image's or layer's line (it
    // holds one of the known names, marked above) and the lab's layers in a history
    // (`<missing>`, created by `dockling lab:`) keep theirs, out of the harness's [SIZE]
    // filter's reach (a NUL inside the number, taken out after).
    let own = regex::Regex::new(
        r"big\.bin|/var/cache/app|of the image is in lower layers|^TOTAL |\x00|^<missing> .*dockling lab: ",
    )
    .unwrap();
    let size = regex::Regex::new(r"\b(\d+(?:\.\d+)?)(B|kB|MB)\b").unwrap();
    let text: String = text
        .split_inclusive('\n')
        .map(|l| {
            if own.is_match(l) {
                size.replace_all(l, "$1\0$2").into_owned()
            } else {
                l.to_string()
            }
        })
        .collect();
    let text = lab.filter(&text).replace('\0', "");
    // The tests run under a cgroup parent of their own (`dockling-test-<dir>`); the book shows
    // the default a student's containers get, `dockling`.
    let mut text = text.replace(&lab.cgroup_parent(), "dockling");
    for (re, with) in [
        (r"my pid is [0-9]{2,}", "my pid is [PID]"),
        (r"(host: +NSpid:\s+)\d+", "$1[PID]"),
        (r"(clone\(.*\)) = \d+", "$1 = [PID]"),
        (r"\d+(\.\d+)? ms\b", "[TIME]"),
        (r"containers/[0-9a-f]{6,}", "containers/[ID]"),
        (r"Linux \d+\.\d+\S*", "Linux [KERNEL]"),
        (r"/proc/self/fd/\d+", "/proc/self/fd/[FD]"),
        (r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z", "[TIME]"),
        (r"(pid|mnt|net|uts|ipc|cgroup):\[\d+\]", "$1:[INODE]"),
        // A veth's host end is named after the container's id; interface numbers count every
        // link the namespace ever had.
        (r"\bveth[0-9a-f]{7}\b", "veth[ID]"),
        (r"@if\d+", "@if[N]"),
        // Which controllers a machine mounts (hugetlb, rdma...) is the machine's business.
        (r"(?m)^(cgroups +ok +v\d[^:]*:).*$", "$1 [CONTROLLERS]"),
        (
            r"Up (Less than a second|About a minute|\d+ \w+)",
            "Up [AGO]",
        ),
    ] {
        text = regex::Regex::new(re)
            .unwrap()
            .replace_all(&text, with)
            .into_owned();
    }
    // Table columns are as wide as their (filtered) contents were: compare them loosely.
    regex::Regex::new(r"([^ \n]) {2,}")
        .unwrap()
        .replace_all(&text, "$1   ")
        .into_owned()
}

/// A transcript's fenced blocks (commands, output, trace lines), less what is in the reader's
/// language: a trace highlight's title and its explanations (`↳`).
fn transcript_blocks(markdown: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    let mut current: Option<Vec<&str>> = None;
    let mut first = false;
    for line in markdown.lines() {
        match (&mut current, line.starts_with("```")) {
            (None, true) => {
                current = Some(vec![line]);
                first = true;
            }
            (Some(b), true) => {
                b.push(line);
                blocks.push(current.take().unwrap().join("\n"));
            }
            (Some(b), false) => {
                let titled = first && b[0] == "```text";
                if !titled && !line.trim_start().starts_with('↳') {
                    b.push(line);
                }
                first = false;
            }
            (None, false) => {}
        }
    }
    blocks
}

/// Whether two runs' blocks show the same thing (`None`) or where they differ: the same
/// blocks, each with the same lines, a line either the same or, where the engine explained
/// something from its catalog (`explain`'s step titles), the Korean text after the same first
/// two words.
fn same_transcript(en: &[String], ko: &[String]) -> Option<String> {
    if en.len() != ko.len() {
        return Some(format!(
            "{} blocks in English, {} in Korean",
            en.len(),
            ko.len()
        ));
    }
    let hangul = |l: &str| l.contains(|c: char| ('\u{ac00}'..='\u{d7a3}').contains(&c));
    fn head(l: &str) -> Vec<&str> {
        l.split_whitespace().take(2).collect()
    }
    for (a, b) in en.iter().zip(ko) {
        let (la, lb): (Vec<&str>, Vec<&str>) = (a.lines().collect(), b.lines().collect());
        if la.len() != lb.len() {
            return Some(format!(
                "a block of {} lines became {}:\n{a}\n---\n{b}",
                la.len(),
                lb.len()
            ));
        }
        for (x, y) in la.iter().zip(&lb) {
            if x != y && !(hangul(y) && head(x) == head(y)) {
                return Some(format!("line {x:?} became {y:?}"));
            }
        }
    }
    None
}

#[test]
fn every_lesson_runs_and_its_chapter_is_what_the_book_shows() {
    let lab = Lab::new();
    // The lessons run in a network namespace of this test's own (the lab registry too): the
    // bridge, veths and addresses they show are theirs alone, not another test's.
    let ns = NetNs::new();
    // The lessons' scratch directories go here (TMPDIR), so what they leave can be seen.
    let tmp = lab.dir.path().join("tmp");
    std::fs::create_dir_all(&tmp).unwrap();
    let busybox = std::fs::read("/bin/busybox").expect("/bin/busybox (busybox-static)");
    let busybox = sha256_hex(&busybox);
    assert_eq!(
        busybox, BUSYBOX_SHA256,
        "this host's /bin/busybox is not the one the lesson snapshots were made with: the lab \
         builds its images from it, so every digest and size of them in the book would differ. \
         Install that busybox-static, or accept new snapshots (INSTA_UPDATE=always, after \
         reading the diff) and put the new sha256 in BUSYBOX_SHA256"
    );
    ns.dockling(&lab, &["lab", "up", "--addr", LAB_ADDR])
        .expect_code(0);
    let known = lab_digests(&lab);
    let list = ns.dockling(&lab, &["lesson", "list"]);
    list.expect_code(0);
    let count = list.stdout.lines().count();
    assert!(count >= 6, "{}", list.stdout);
    let mut preloaded = 0;
    let ready =
        regex::Regex::new(r"\*Pulled from the lab before the first step: ([^.]+)\.\*").unwrap();
    // Lesson `n` as a book chapter, in `lang`.
    let chapter = |n: usize, lang: &str| -> common::Out {
        let n = n.to_string();
        let out: common::Out = ns
            .enter(lab.command(&["--lang", lang, "lesson", "run", &n, "--format", "markdown"]))
            .env("TMPDIR", &tmp)
            .output()
            .expect("run dockling")
            .into();
        assert_eq!(
            out.code, 0,
            "lesson {n} in {lang} failed:\n{}\n{}",
            out.stderr, out.stdout
        );
        out
    };
    for n in 1..=count {
        let out = chapter(n, "en");
        // A lesson's own images were pulled before it began: it shows no pull of them.
        if let Some(c) = ready.captures(&out.stdout) {
            preloaded += 1;
            for image in c[1].split(", ") {
                assert!(
                    !out.stdout
                        .contains(&format!("Unable to find image '{image}:latest'")),
                    "lesson {n} pulls {image}, which it was given:\n{}",
                    out.stdout
                );
            }
        }
        let en = filter(&lab, &known, &out.stdout);
        insta::assert_snapshot!(format!("lesson_{n:02}"), en);
        // The Korean edition's chapter: the same lesson, run again in Korean. Its commands and
        // what they printed are the English run's, line for line; only the prose, the lines
        // the runner frames them with and the trace's explanations are Korean.
        let ko = filter(&lab, &known, &chapter(n, "ko").stdout);
        if let Some(wrong) = same_transcript(&transcript_blocks(&en), &transcript_blocks(&ko)) {
            panic!("lesson {n}: the Korean run's commands and output are not the English run's: {wrong}");
        }
        assert!(
            ko.contains(|c: char| ('\u{ac00}'..='\u{d7a3}').contains(&c)),
            "lesson {n} in Korean has no Korean:\n{ko}"
        );
        insta::assert_snapshot!(format!("lesson_{n:02}_ko"), ko);
    }
    assert!(
        preloaded >= 10,
        "only {preloaded} lessons start with their images pulled"
    );
    // A lesson leaves nothing in the student's own store.
    assert!(lab.cmd(&["images", "-q"]).stdout.is_empty());
    assert!(lab.containers_left().is_empty());
    let left: Vec<_> = std::fs::read_dir(&tmp)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    assert!(left.is_empty(), "scratch directories left: {left:?}");
}

#[test]
fn lesson_check_judges_the_students_own_work_and_bad_numbers_are_clear() {
    let lab = Lab::with_busybox();
    // Every lesson's checks, both ways, are tests/lesson_checks.rs's; here only the words.
    let not_yet = lab.cmd(&["lesson", "check", "3"]);
    not_yet.expect_code(1);
    assert!(
        not_yet
            .stdout
            .contains("a container named quitter exited with code 3: not yet\n   expected a container named quitter, kept after it ended, that exited with code 3\n"),
        "{}",
        not_yet.stdout
    );
    assert!(not_yet.stdout.contains("hint:"), "{}", not_yet.stdout);
    let bad = lab.cmd(&["lesson", "run", "42"]);
    bad.expect_code(125);
    assert!(bad.stderr.contains("numbered 1 to"), "{}", bad.stderr);
    // Without the lab, lessons say what to do.
    let no_lab = lab.cmd(&["lesson", "run", "1"]);
    no_lab.expect_code(125);
    assert!(
        no_lab.stderr.contains("dockling lab up"),
        "{}",
        no_lab.stderr
    );
}

#[test]
fn tour_starts_the_lab_and_runs_every_lesson() {
    // A network namespace of its own: the lessons publish fixed host ports (8000) and make
    // dockling0, which the other lesson test, running at the same time, does too.
    let ns = NetNs::new();
    let lab = Lab::new();
    let addr = format!("127.0.0.1:{}", free_port());
    let tour = ns.dockling(&lab, &["tour", "--addr", &addr]);
    assert_eq!(tour.code, 0, "{}\n{}", tour.stdout, tour.stderr);
    assert!(
        tour.stdout
            .contains("The lab registry is not up: starting it."),
        "{}",
        tour.stdout
    );
    assert!(
        tour.stdout.contains("  ok   lesson 6 step 1/"),
        "{}",
        tour.stdout
    );
    assert!(
        regex::Regex::new(r"\n\d+ lessons, \d+ steps in [\d.]+ s: all passed\n")
            .unwrap()
            .is_match(&tour.stdout),
        "{}",
        tour.stdout
    );
}

#[test]
fn step_mode_shows_a_step_before_it_waits_and_from_starts_later() {
    use std::io::{BufRead, Write};
    let ns = NetNs::new();
    let lab = Lab::new();
    let addr = format!("127.0.0.1:{}", free_port());
    ns.dockling(&lab, &["lab", "up", "--addr", &addr])
        .expect_code(0);

    // --step, Enter given through a pipe: each step's prose and command come first, and it
    // runs only after the Enter.
    let mut stepped = ns.enter(lab.command(&["lesson", "run", "1", "--step"]));
    stepped
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = stepped.spawn().unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    let seen = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let reader = {
        let seen = seen.clone();
        std::thread::spawn(move || {
            for line in stdout.lines().map_while(Result::ok) {
                let mut s = seen.lock().unwrap();
                s.push_str(&line);
                s.push('\n');
            }
        })
    };
    let text = || seen.lock().unwrap().clone();
    let wait_for = |what: &str| {
        common::wait_until(
            std::time::Duration::from_secs(60),
            &format!("{what:?} on --step's stdout"),
            || text().contains(what).then_some(()),
        )
    };
    wait_for("\n$ dockling run --rm hello-world\n");
    assert!(
        text().contains("▸ Run the `hello-world` image."),
        "the step's prose is not shown before it runs: {}",
        text()
    );
    // Nothing runs before Enter.
    assert!(
        !common::holds_within(std::time::Duration::from_secs(2), || text()
            .contains("Hello from dockling!")),
        "the step ran before Enter: {}",
        text()
    );
    stdin.write_all(b"\n").unwrap();
    wait_for("Hello from dockling!");
    // The second step is shown, and waits.
    wait_for("▸ The image is stored now");
    let before_q = text();
    stdin.write_all(b"q\n").unwrap();
    drop(stdin);
    let status = child.wait().unwrap();
    reader.join().unwrap();
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert!(status.success(), "{}\n{stderr}", text());
    assert!(stderr.contains("⏸ lesson 1, step 1"), "{stderr}");
    assert!(stderr.contains("⏸ lesson 1, step 2"), "{stderr}");
    let out = text();
    let first_output = out.find("Hello from dockling!").unwrap();
    assert!(
        out.find("▸ Run the `hello-world` image.").unwrap() < first_output
            && out.find("$ dockling run --rm hello-world").unwrap() < first_output,
        "{out}"
    );
    assert_eq!(
        out.matches("Hello from dockling!").count(),
        1,
        "only the first step ran: {out}"
    );
    assert!(out.starts_with(&before_q), "{out}");
    assert!(!out.contains("▸ Inside its container"), "{out}");

    // --from: lesson 8's second step lists the server its first step started, which ran
    // first, unseen.
    let from = ns.dockling(&lab, &["lesson", "run", "8", "--from", "2"]);
    assert_eq!(from.code, 0, "{}\n{}", from.stdout, from.stderr);
    assert!(
        from.stdout
            .contains("(Steps 1 to 1 ran first, without being shown"),
        "{}",
        from.stdout
    );
    assert!(
        !from.stdout.contains("$ dockling run -d --name ws1 httpd"),
        "{}",
        from.stdout
    );
    assert!(
        !from
            .stdout
            .contains("A web server runs until someone stops it"),
        "the intro is shown with --from: {}",
        from.stdout
    );
    let ps = from
        .stdout
        .find("$ dockling ps\n")
        .expect("step 2 is shown");
    assert!(
        regex::Regex::new(r"httpd .*Up .*ws1")
            .unwrap()
            .is_match(&from.stdout[ps..]),
        "{}",
        from.stdout
    );
    let bad = ns.dockling(&lab, &["lesson", "run", "8", "--from", "99"]);
    bad.expect_code(125);
    assert!(
        bad.stderr.contains("lesson 8 has steps 1 to") && bad.stderr.contains("--from 99"),
        "{}",
        bad.stderr
    );
    assert!(lab.containers_left().is_empty());
    let groups = lab.cgroups_left();
    assert!(groups.is_empty(), "cgroups left: {groups:?}");
}

/// The book's figures: (lesson, a text of the `run:` of the lesson's own step whose trace is
/// drawn). Lesson 4 draws its run with `--pid host --uts host` (the namespace panel shows which
/// are the container's and which the host's); lesson 5 its plain run (the layers' mounts).
const FIGURES: &[(u32, &str)] = &[
    (4, "--pid host --uts host"),
    (5, "--trace-file trace.json busybox true"),
];

/// A lesson's step command (`run:`) whose text holds `needle` and that asks for a trace.
fn lesson_step_command(n: u32, needle: &str) -> String {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("lessons");
    let file = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with(&format!("{n:02}-"))
        })
        .unwrap_or_else(|| panic!("no lesson {n} in {}", dir.display()));
    let lesson: serde_yaml::Value =
        serde_yaml::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    lesson["steps"]
        .as_sequence()
        .unwrap()
        .iter()
        .filter(|s| s.get("trace").is_some())
        .filter_map(|s| s["run"].as_str())
        .find(|r| r.contains(needle))
        .unwrap_or_else(|| panic!("lesson {n} has no traced step running {needle:?}"))
        .trim()
        .to_string()
}

/// A JSON trace made stable: only what `trace render` reads (type, process, subsystem, step,
/// variant, syscall, args, result, errno), times replaced by the events' order (`at_us` = its
/// index, no durations: real microseconds differ on every run, so the figures are drawn
/// `--by-order`), paths, ids and pids filtered as the transcripts are.
fn stable_trace(lab: &Lab, text: &str) -> String {
    let keep = [
        "v",
        "type",
        "process",
        "subsystem",
        "step",
        "variant",
        "syscall",
        "args",
        "result",
        "errno",
    ];
    let mut out = String::new();
    let events: Vec<serde_json::Value> = text
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .filter(|e: &serde_json::Value| matches!(e["type"].as_str(), Some("step" | "syscall")))
        // Which cgroup hierarchies a machine mounts (hugetlb, rdma...), and so how many
        // directories and files a run makes and how many controllers it mounts under the
        // container's /sys/fs/cgroup, is the machine's business: the fixture keeps the cgroup
        // steps but not their calls, and of the mount step only its mounts, less the
        // per-controller ones.
        // So is which signals the engine's own parent left ignored (a shell's SIGINT for `&`,
        // nohup's SIGHUP): the container gets one rt_sigaction per signal to reset, and CI's
        // parent differs from a terminal's.
        .filter(|e| {
            let call = e["syscall"].as_str().unwrap_or("");
            e["type"] != "syscall"
                || !(e["subsystem"] == "cgroups"
                    || call == "rt_sigaction"
                    || (e["step"] == "rootfs.mounts" && call != "mount")
                    || e["args"]
                        .as_str()
                        .is_some_and(|a| a.contains("/sys/fs/cgroup/")))
        })
        .collect();
    // An order that does not depend on how the engine and the container raced: each
    // process's own events in their order, placed at the start of the step they belong to
    // (a step's start is causal: the container's steps begin when the engine lets them).
    let mut by_time: Vec<usize> = (0..events.len()).collect();
    by_time.sort_by_key(|&i| events[i]["at_us"].as_u64().unwrap_or(0));
    let text_of = |e: &serde_json::Value, k: &str| e[k].as_str().unwrap_or("").to_string();
    let mut starts: std::collections::HashMap<(String, String), u64> = Default::default();
    let mut any_start: std::collections::HashMap<String, u64> = Default::default();
    let mut seq: std::collections::HashMap<String, usize> = Default::default();
    let mut keys = vec![(0u64, String::new(), 0usize); events.len()];
    // Per-process sequence: the file's order within one process.
    for (i, e) in events.iter().enumerate() {
        let n = seq.entry(text_of(e, "process")).or_default();
        keys[i].2 = *n;
        *n += 1;
        keys[i].1 = text_of(e, "process");
    }
    // A call can be stamped before its own process announced its step (the final execve is
    // written down before the container's last step begins): it then belongs to that step's
    // first start, not to whatever the other process was doing at that moment.
    let mut first_start: std::collections::HashMap<(String, String), u64> = Default::default();
    for &i in &by_time {
        let e = &events[i];
        if e["type"] == "step" {
            first_start
                .entry((text_of(e, "process"), text_of(e, "step")))
                .or_insert(e["at_us"].as_u64().unwrap_or(0));
        }
    }
    for &i in &by_time {
        let e = &events[i];
        let (process, step) = (text_of(e, "process"), text_of(e, "step"));
        let at = e["at_us"].as_u64().unwrap_or(0);
        if e["type"] == "step" {
            starts.insert((process.clone(), step.clone()), at);
            any_start.insert(step.clone(), at);
        }
        let own = (process, step.clone());
        keys[i].0 = starts
            .get(&own)
            .or_else(|| first_start.get(&own))
            .or_else(|| any_start.get(&step))
            .copied()
            .unwrap_or(at);
    }
    let mut order: Vec<usize> = (0..events.len()).collect();
    order.sort_by(|&a, &b| keys[a].cmp(&keys[b]));
    let events: Vec<&serde_json::Value> = order.iter().map(|&i| &events[i]).collect();
    // Arguments and results only of the calls the picture reads (namespaces, mounts, the new
    // root); of the others, which vary with the host (fstatfs, pids written to cgroups, the
    // hosts file's lines), their name, step and whether they failed.
    let drawn = [
        "clone",
        "clone3",
        "unshare",
        "mount",
        "umount2",
        "chdir",
        "pivot_root",
    ];
    for (i, e) in events.iter().enumerate() {
        let mut o = serde_json::Map::new();
        for k in keep {
            if let Some(v) = e.get(k) {
                o.insert(k.to_string(), v.clone());
            }
        }
        let call = e["syscall"].as_str().unwrap_or("");
        if e["type"] == "syscall" && !drawn.contains(&call) {
            o.remove("args");
        }
        if e["result"].as_i64().is_some_and(|r| r > 0) && !(call == "mount" || call == "chdir") {
            o.insert("result".into(), serde_json::json!(0));
        }
        o.insert("at_us".into(), serde_json::json!(i));
        out.push_str(&serde_json::to_string(&o).unwrap());
        out.push('\n');
    }
    let mut out = lab
        .filter(&out)
        .replace(&lab.cgroup_parent(), "[CGROUP_PARENT]");
    // The numbers of the engine's fds depend on how many its own parent left open to it (CI's
    // runner leaves some; a terminal none): the figure reads the path the comment names.
    for (re, with) in [
        (r"/proc/\d+/", "/proc/[PID]/"),
        (r"/proc/self/fd/\d+", "/proc/self/fd/[FD]"),
        (r"\b[0-9a-f]{12,}\b", "[ID]"),
    ] {
        out = regex::Regex::new(re)
            .unwrap()
            .replace_all(&out, with)
            .into_owned();
    }
    out
}

/// `actual` against the file `path` holds, as insta compares snapshots: a difference fails
/// (the new text is left in `path.new` to read) unless `INSTA_UPDATE=always`, which accepts it.
fn assert_file_snapshot(path: &std::path::Path, actual: &str) {
    let update = std::env::var("INSTA_UPDATE").is_ok_and(|v| v == "always");
    let old = std::fs::read_to_string(path).ok();
    if old.as_deref() == Some(actual) {
        let _ = std::fs::remove_file(format!("{}.new", path.display()));
        return;
    }
    if update {
        std::fs::write(path, actual).unwrap();
        return;
    }
    let new = format!("{}.new", path.display());
    std::fs::write(&new, actual).unwrap();
    // The first lines that differ, in the message itself: a clean clone's CI keeps no `.new`.
    let old_text = old.as_deref().unwrap_or("");
    let (was, now): (Vec<&str>, Vec<&str>) = (old_text.lines().collect(), actual.lines().collect());
    let differing: Vec<String> = (0..was.len().max(now.len()))
        .filter(|&i| was.get(i) != now.get(i))
        .take(6)
        .map(|i| {
            format!(
                "line {}:\n  - {}\n  + {}",
                i + 1,
                was.get(i).unwrap_or(&"(none)"),
                now.get(i).unwrap_or(&"(none)")
            )
        })
        .collect();
    panic!(
        "{} differs from what this run made ({}; {new} holds the new one): read the diff, \
         then accept it with INSTA_UPDATE=always\n{}",
        path.display(),
        if old.is_some() { "changed" } else { "missing" },
        differing.join("\n")
    );
}

#[test]
fn the_books_figures_are_the_lessons_own_traces_drawn() {
    // The run of a figure's step publishes nothing, but makes dockling0: a namespace of its own.
    let ns = NetNs::new();
    let lab = Lab::with_busybox();
    let snapshots = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/snapshots");
    for &(n, needle) in FIGURES {
        let command = lesson_step_command(n, needle);
        let trace = lab.dir.path().join(format!("trace-{n}.json"));
        let args: Vec<String> = command
            .strip_prefix("dockling ")
            .unwrap_or_else(|| panic!("lesson {n}'s step does not start with dockling: {command}"))
            .split_whitespace()
            .map(|w| {
                if w == "trace.json" {
                    trace.display().to_string()
                } else {
                    w.to_string()
                }
            })
            .collect();
        assert!(
            args.iter().all(|a| !a.contains(['\'', '"', '|', '$'])),
            "lesson {n}'s step is more than plain words, which this test runs without a shell: {command}"
        );
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let run = ns.dockling(&lab, &args);
        assert_eq!(run.code, 0, "lesson {n}: {command}: {}", run.stderr);
        let fixture = snapshots.join(format!("lesson_{n:02}.trace.json"));
        let stable = stable_trace(&lab, &std::fs::read_to_string(&trace).unwrap());
        assert_file_snapshot(&fixture, &stable);
        let svg = lab.cmd(&["trace", "render", "--by-order", fixture.to_str().unwrap()]);
        assert_eq!(svg.code, 0, "{}", svg.stderr);
        assert!(
            svg.stdout.contains("data-ns=\"mnt\" data-new=\"true\""),
            "{}",
            svg.stdout
        );
        assert_file_snapshot(&snapshots.join(format!("lesson_{n:02}.svg")), &svg.stdout);
        // The Korean edition's figure: the same trace, its steps titled from the Korean
        // catalog.
        let ko = lab.cmd(&[
            "--lang",
            "ko",
            "trace",
            "render",
            "--by-order",
            fixture.to_str().unwrap(),
        ]);
        assert_eq!(ko.code, 0, "{}", ko.stderr);
        assert!(
            ko.stdout.contains("엔진을") && ko.stdout != svg.stdout,
            "the Korean figure has no Korean step titles:\n{}",
            ko.stdout
        );
        assert_file_snapshot(&snapshots.join(format!("lesson_{n:02}_ko.svg")), &ko.stdout);
    }
    assert!(lab.containers_left().is_empty());
}

fn sha256_hex(data: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
