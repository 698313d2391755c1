//! `dockling build`: a Dockerfile built instruction by instruction (RUN as a container of the
//! engine's run path, then a commit; COPY from the context; config-only instructions), the
//! build cache (a second build all CACHED, a changed line rebuilding from there), multi-stage
//! builds, and the bad inputs: a syntax error with its line, a failing RUN (exit 1, nothing
//! tagged, no container left), COPY out of the context. Each test in a network namespace of
//! its own (RUN containers get the default bridge).

mod common;
use std::path::Path;

use common::{Lab, NetNs, Out};

struct Build {
    lab: Lab,
    ns: NetNs,
    ctx: tempfile::TempDir,
}

impl Build {
    fn new(dockerfile: &str) -> Build {
        let lab = Lab::with_busybox();
        let ctx = tempfile::tempdir().unwrap();
        std::fs::write(ctx.path().join("Dockerfile"), dockerfile).unwrap();
        Build {
            lab,
            ns: NetNs::new(),
            ctx,
        }
    }

    fn file(&self, rel: &str, content: &str) {
        let p = self.ctx.path().join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, content).unwrap();
    }

    fn build(&self, extra: &[&str]) -> Out {
        let ctx = self.ctx.path().to_str().unwrap().to_string();
        let mut args = vec!["build"];
        args.extend_from_slice(extra);
        args.push(&ctx);
        self.ns.dockling(&self.lab, &args)
    }

    fn ok(&self, args: &[&str]) -> String {
        let o = self.ns.dockling(&self.lab, args);
        o.expect_code(0);
        o.stdout
    }

    fn no_containers(&self) {
        let o = self.ns.dockling(&self.lab, &["ps", "-a", "-q"]);
        o.expect_code(0);
        assert_eq!(o.stdout, "", "a build left containers behind");
        assert!(
            self.lab.containers_left().is_empty(),
            "{:?}",
            self.lab.containers_left()
        );
    }
}

fn step_lines<'a>(stderr: &'a str, what: &str) -> Vec<&'a str> {
    stderr.lines().filter(|l| l.contains(what)).collect()
}

const APP: &str = "\
# escape=\\
ARG BASE=busybox
FROM ${BASE}:latest
ARG GREETING=hi
ENV APP=/app \\
    MODE=test
WORKDIR $APP
COPY hello.txt dir ./
RUN echo \"$GREETING from $(pwd) in $MODE\" > out.txt && cat out.txt
LABEL version=\"1.0\"
EXPOSE 8080
CMD [\"cat\", \"/app/out.txt\"]
";

#[test]
fn a_dockerfile_builds_runs_and_rebuilds_from_its_cache() {
    let b = Build::new(APP);
    b.file("hello.txt", "hello\n");
    b.file("dir/f", "inner\n");
    b.file("x.log", "left out\n");
    b.file(".dockerignore", "*.log\n");

    let first = b.build(&["-t", "web:1", "--build-arg", "GREETING=hey"]);
    first.expect_code(0);
    assert!(!first.stderr.contains("CACHED"), "{}", first.stderr);
    // The RUN's own output, with BuildKit's step prefix.
    assert!(
        first
            .stderr
            .lines()
            .any(|l| l.starts_with("#6 ") && l.ends_with(" hey from /app in test")),
        "{}",
        first.stderr
    );
    assert!(
        first.stderr.contains("#6 [6/9] RUN echo"),
        "{}",
        first.stderr
    );
    b.no_containers();

    let out = b.ok(&["run", "--rm", "web:1"]);
    assert_eq!(out, "hey from /app in test\n");
    let listing = b.ok(&["run", "--rm", "web:1", "ls", "-a", "/app"]);
    assert_eq!(listing, ".\n..\nf\nhello.txt\nout.txt\n");
    let cfg = b.ok(&[
        "inspect",
        "-f",
        "{{.Config.WorkingDir}} {{.Config.Env}} {{.Config.Labels}} {{.Config.ExposedPorts}} {{.Config.Cmd}}",
        "web:1",
    ]);
    assert!(cfg.starts_with("/app "), "{cfg}");
    assert!(
        cfg.contains("APP=/app") && cfg.contains("MODE=test"),
        "{cfg}"
    );
    assert!(cfg.contains("version:1.0"), "{cfg}");
    assert!(cfg.contains("8080/tcp"), "{cfg}");
    assert!(cfg.contains("[cat /app/out.txt]"), "{cfg}");
    // ENV is config only: an empty layer in the history, as Docker records it.
    let history = b.ok(&["history", "--no-trunc", "web:1"]);
    assert!(history.contains("ENV APP=/app MODE=test"), "{history}");
    assert!(
        history.contains("RUN |1 GREETING=hey /bin/sh -c"),
        "{history}"
    );

    // The same build again: every step from the cache, the same image.
    let id1 = b.ok(&["inspect", "-f", "{{.Id}}", "web:1"]);
    let again = b.build(&["-t", "web:1", "--build-arg", "GREETING=hey"]);
    again.expect_code(0);
    assert_eq!(
        step_lines(&again.stderr, "CACHED").len(),
        7,
        "{}",
        again.stderr
    );
    assert!(
        !again.stderr.contains("hey from"),
        "the RUN ran again:\n{}",
        again.stderr
    );
    assert_eq!(b.ok(&["inspect", "-f", "{{.Id}}", "web:1"]), id1);

    // A changed file: COPY and what follows rebuild, what precedes stays cached.
    b.file("hello.txt", "changed\n");
    let changed = b.build(&["-t", "web:2", "--build-arg", "GREETING=hey"]);
    changed.expect_code(0);
    assert_eq!(
        step_lines(&changed.stderr, "CACHED").len(),
        2,
        "{}",
        changed.stderr
    );
    assert!(
        changed.stderr.contains(" hey from /app"),
        "{}",
        changed.stderr
    );
    assert_eq!(
        b.ok(&["run", "--rm", "web:2", "cat", "/app/hello.txt"]),
        "changed\n"
    );

    // --no-cache runs everything.
    let fresh = b.build(&["--no-cache", "-t", "web:3", "--build-arg", "GREETING=hey"]);
    fresh.expect_code(0);
    assert!(!fresh.stderr.contains("CACHED"), "{}", fresh.stderr);

    // The steps' images are hidden from `images` (shown with -a).
    let images = b.ok(&["images", "-q"]);
    let all = b.ok(&["images", "-a", "-q"]);
    assert!(
        all.lines().count() > images.lines().count() + 5,
        "{images}\n{all}"
    );
    b.no_containers();
}

#[test]
fn multi_stage_copies_from_a_stage_and_stops_at_the_target() {
    let b = Build::new(
        "FROM busybox AS build\n\
         RUN mkdir -p /out/sub /out/opq && echo built > /out/artifact && echo gone > /out/deleted && echo x > /out/sub/x && echo old > /out/opq/old\n\
         RUN rm -r /out/deleted /out/sub /out/opq && mkdir /out/opq && echo new > /out/opq/new && echo later > /out/later\n\
         FROM busybox AS final\nCOPY --from=build --chown=1000:1000 /out/artifact /srv/\n\
         RUN ls -ln /srv/artifact | awk '{print $3\":\"$4}'\nCOPY --from=build /out /all\nCMD [\"cat\", \"/srv/artifact\"]\n\
         FROM final AS extra\nRUN false\n",
    );
    let o = b.build(&["--target", "final", "-t", "multi:1", "--progress", "plain"]);
    o.expect_code(0);
    assert!(
        o.stderr.contains("[final 2/5] COPY --from=build"),
        "{}",
        o.stderr
    );
    assert!(o.stderr.contains(" 1000:1000"), "{}", o.stderr);
    assert_eq!(b.ok(&["run", "--rm", "multi:1"]), "built\n");
    // The stage's layers merged as overlayfs shows them: what a later RUN deleted (a
    // whiteout in its layer: a file, a directory with what it held) is not copied, nor what
    // was in a directory it made again (an opaque directory).
    assert_eq!(
        b.ok(&["run", "--rm", "multi:1", "sh", "-c", "find /all | sort"]),
        "/all\n/all/artifact\n/all/later\n/all/opq\n/all/opq/new\n"
    );
    // A file a later step of the stage deleted is not there to copy.
    std::fs::write(
        b.ctx.path().join("Dockerfile.gone"),
        "FROM busybox AS build\nRUN echo x > /gone\nRUN rm /gone\nFROM busybox\nCOPY --from=build /gone /\n",
    )
    .unwrap();
    let gone = b.ctx.path().join("Dockerfile.gone");
    let o = b.build(&["-f", gone.to_str().unwrap()]);
    o.expect_code(1);
    assert!(o.stderr.contains("\"/gone\": not found"), "{}", o.stderr);
    // Without --target, the last stage (`extra`, whose RUN fails) is built.
    let o = b.build(&["-t", "bad:1"]);
    o.expect_code(1);
    assert!(o.stderr.contains("[extra 2/2] RUN false"), "{}", o.stderr);
    let tagged = b.ns.dockling(&b.lab, &["inspect", "bad:1"]);
    assert_ne!(tagged.code, 0, "a failed build tagged its image");
    b.no_containers();
}

#[test]
fn a_failing_run_shows_its_output_and_tags_nothing() {
    let b = Build::new("FROM busybox\nRUN echo before\nRUN echo doomed; exit 3\nCMD [\"sh\"]\n");
    let o = b.build(&["-t", "broken:1"]);
    o.expect_code(1);
    assert!(o.stderr.contains(" doomed"), "{}", o.stderr);
    assert!(
        o.stderr.contains(
            "ERROR: process \"/bin/sh -c echo doomed; exit 3\" did not complete successfully: exit code: 3"
        ),
        "{}",
        o.stderr
    );
    let inspect = b.ns.dockling(&b.lab, &["inspect", "broken:1"]);
    assert_ne!(inspect.code, 0, "the failed build was tagged");
    b.no_containers();
    // The step before the failure is cached for the next try.
    let again = b.build(&["-t", "broken:1"]);
    again.expect_code(1);
    assert_eq!(
        step_lines(&again.stderr, "CACHED").len(),
        1,
        "{}",
        again.stderr
    );
}

#[test]
fn syntax_errors_name_the_dockerfile_line() {
    let b = Build::new("FROM busybox\n\n# comment\nRUN true \\\n  && true\nRUNN echo\n");
    let o = b.build(&["-t", "x:1"]);
    o.expect_code(1);
    assert!(
        o.stderr
            .contains("Dockerfile:6: unknown instruction: RUNN (did you mean run?)"),
        "{}",
        o.stderr
    );
    assert_eq!(o.stdout, "");
    // A -f file is named by its name.
    std::fs::write(b.ctx.path().join("Other.df"), "FROM busybox\nCOPY\n").unwrap();
    let f = b.ctx.path().join("Other.df");
    let o = b.build(&["-f", f.to_str().unwrap()]);
    o.expect_code(1);
    assert!(
        o.stderr
            .contains("Other.df:2: COPY requires at least one argument"),
        "{}",
        o.stderr
    );
}

#[test]
fn copy_refuses_paths_out_of_the_context() {
    let b = Build::new("FROM busybox\nCOPY link /x\n");
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("secret"), "s").unwrap();
    std::os::unix::fs::symlink(outside.path().join("secret"), b.ctx.path().join("link")).unwrap();
    let o = b.build(&["-t", "leak:1"]);
    o.expect_code(1);
    assert!(
        o.stderr
            .contains("Dockerfile:2: link: the path leads outside the build context"),
        "{}",
        o.stderr
    );
    std::fs::write(
        b.ctx.path().join("Dockerfile"),
        "FROM busybox\nCOPY ../x /x\n",
    )
    .unwrap();
    let o = b.build(&[]);
    o.expect_code(1);
    assert!(
        o.stderr.contains("leads outside the build context"),
        "{}",
        o.stderr
    );
    std::fs::write(
        b.ctx.path().join("Dockerfile"),
        "FROM busybox\nADD https://example.com/x /x\n",
    )
    .unwrap();
    let o = b.build(&[]);
    o.expect_code(1);
    assert!(
        o.stderr.contains("remote sources are not supported"),
        "{}",
        o.stderr
    );
    assert!(!Path::new(&b.lab.root()).join("build-cache").exists());
}

#[test]
fn add_extracts_a_local_tar() {
    let b = Build::new(
        "FROM busybox\nADD files.tar /opt/\nADD files.tar /srv\nCOPY --chown=student files.tar /home/\nCMD [\"cat\", \"/opt/a/b\"]\n",
    );
    let mut t = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_size(3);
    h.set_mode(0o644);
    h.set_entry_type(tar::EntryType::Regular);
    t.append_data(&mut h, "a/b", &b"in\n"[..]).unwrap();
    std::fs::write(b.ctx.path().join("files.tar"), t.into_inner().unwrap()).unwrap();
    b.build(&["-t", "add:1"]).expect_code(0);
    assert_eq!(b.ok(&["run", "--rm", "add:1"]), "in\n");
    // A destination without a trailing slash is the directory the archive is unpacked into,
    // as Docker does (not its parent).
    assert_eq!(b.ok(&["run", "--rm", "add:1", "cat", "/srv/a/b"]), "in\n");
    // COPY does not extract, and --chown takes a name of the image's /etc/passwd (its uid as
    // the gid too, as Docker documents).
    let owner = b.ok(&[
        "run",
        "--rm",
        "add:1",
        "stat",
        "-c",
        "%u:%g %s",
        "/home/files.tar",
    ]);
    assert_eq!(owner, "1000:1000 2048\n");
}

#[test]
fn an_untagged_build_is_listed_and_a_dockerfile_symlink_stays_in_the_context() {
    let b = Build::new("FROM busybox\nRUN echo made > /made\n");
    let o = b.build(&[]);
    o.expect_code(0);
    // As Docker: the result of a build without -t is an image named <none>, listed.
    let id = b.ok(&["inspect", "-f", "{{.Id}}", "--type", "image", "busybox"]);
    assert!(!id.trim().is_empty());
    let images = b.ok(&["images", "--format", "{{.Repository}} {{.ID}}"]);
    assert!(
        images.lines().any(|l| l.starts_with("<none> ")),
        "the untagged result is not listed: {images}"
    );
    // A Dockerfile that is a symlink to a host file is resolved inside the context: the
    // host's file is never read as the Dockerfile.
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(
        outside.path().join("Dockerfile"),
        "FROM busybox\nRUN true\n",
    )
    .unwrap();
    std::fs::remove_file(b.ctx.path().join("Dockerfile")).unwrap();
    std::os::unix::fs::symlink(
        outside.path().join("Dockerfile"),
        b.ctx.path().join("Dockerfile"),
    )
    .unwrap();
    let o = b.build(&["-t", "leak:1"]);
    o.expect_code(1);
    assert!(
        o.stderr.contains("failed to read dockerfile"),
        "{}",
        o.stderr
    );
    b.no_containers();
}

#[test]
fn copy_into_a_directory_the_image_has_without_a_trailing_slash() {
    let b = Build::new("FROM busybox\nCOPY hello.txt /etc\n");
    b.file("hello.txt", "hi\n");
    b.build(&["-t", "into:1"]).expect_code(0);
    // As BuildKit: /etc stays the image's directory, the file goes into it.
    let o = b.ns.dockling(
        &b.lab,
        &[
            "run",
            "--rm",
            "into:1",
            "sh",
            "-c",
            "cat /etc/hello.txt && test -f /etc/passwd",
        ],
    );
    o.expect_code(0);
    assert_eq!(o.stdout, "hi\n");
    b.no_containers();
}

#[test]
fn a_context_file_named_like_a_whiteout_is_refused() {
    let b = Build::new("FROM busybox\nCOPY .wh.passwd /etc/\n");
    b.file(".wh.passwd", "");
    let o = b.build(&["-t", "wh:1"]);
    o.expect_code(1);
    assert!(
        o.stderr
            .contains(".wh.passwd: a file named .wh.* cannot go into a layer"),
        "{}",
        o.stderr
    );
    // Nothing tagged: the image's /etc/passwd was never at risk.
    let o = b.ns.dockling(&b.lab, &["images", "-q", "wh:1"]);
    o.expect_code(0);
    assert_eq!(o.stdout.trim(), "");
    b.no_containers();
}

#[test]
fn copy_of_more_files_than_the_open_file_limit() {
    // Each file is opened only while its content is written: 1500 files copy under a limit
    // of 256 open descriptors (before: one descriptor per file held until the tar was
    // written, and EMFILE).
    let b = Build::new("FROM busybox\nCOPY many /many\n");
    for i in 0..1500 {
        b.file(&format!("many/d{}/f{i}", i % 10), &format!("{i}\n"));
    }
    let ctx = b.ctx.path().to_str().unwrap().to_string();
    let mut c = b.ns.enter(b.lab.command(&["build", "-t", "many:1", &ctx]));
    // SAFETY: setrlimit only, in the child between fork and exec.
    unsafe {
        std::os::unix::process::CommandExt::pre_exec(&mut c, || {
            let lim = libc::rlimit {
                rlim_cur: 256,
                rlim_max: 256,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let o: Out = c.output().expect("run dockling").into();
    o.expect_code(0);
    assert_eq!(
        b.ok(&[
            "run",
            "--rm",
            "--network",
            "none",
            "many:1",
            "sh",
            "-c",
            "find /many -type f | wc -l; cat /many/d7/f1497",
        ]),
        "1500\n1497\n"
    );
}

#[test]
fn copy_from_a_stage_reads_it_as_its_containers_saw_it() {
    // The stage's layers merged as overlayfs merges them (a file a later RUN deleted is not
    // there), and its symlinks resolved inside the stage's root: an absolute one names the
    // stage's file, never the host's (nor is it refused).
    let b = Build::new(
        "FROM busybox AS s\n\
         RUN mkdir -p /a /etc/x && echo f > /a/f && echo g > /a/g && echo stage > /etc/x/what\n\
         RUN rm /a/f && ln -s /etc/x /lnk && ln -s /a/g /a/abs && ln -s /lnk/what /via\n\
         FROM busybox\n\
         COPY --from=0 /a /a\n\
         COPY --from=0 /lnk /copied\n\
         COPY --from=0 /via /via\n",
    );
    b.build(&["-t", "merged:1"]).expect_code(0);
    assert_eq!(
        b.ok(&[
            "run",
            "--rm",
            "--network",
            "none",
            "merged:1",
            "sh",
            "-c",
            "ls -A /a; readlink /a/abs; cat /copied/what /via",
        ]),
        "abs\ng\n/a/g\nstage\nstage\n"
    );
}

#[test]
fn a_touched_file_keeps_its_copy_cached_a_changed_one_does_not() {
    // Docker's cache does not consider mtimes: the COPY step is keyed on paths, modes,
    // owners and contents (before: on the tar, whose headers carry the mtime).
    let b = Build::new("FROM busybox\nCOPY f /f\n");
    b.file("f", "one\n");
    let set_mtime = |secs: u64| {
        std::fs::File::options()
            .write(true)
            .open(b.ctx.path().join("f"))
            .unwrap()
            .set_modified(std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs))
            .unwrap();
    };
    set_mtime(1_000_000_000);
    b.build(&["-t", "t:1"]).expect_code(0);
    let id = b.ok(&["inspect", "-f", "{{.Id}}", "t:1"]);
    set_mtime(1_500_000_000);
    let again = b.build(&["-t", "t:2"]);
    again.expect_code(0);
    // `#N [2/2] COPY f /f` is followed by `#N CACHED` on a hit.
    let copy_cached = |stderr: &str| {
        stderr
            .split("COPY f /f")
            .nth(1)
            .and_then(|after| after.lines().nth(1))
            .is_some_and(|l| l.ends_with(" CACHED"))
    };
    assert!(
        copy_cached(&again.stderr),
        "the COPY of a touched file ran again:\n{}",
        again.stderr
    );
    assert_eq!(b.ok(&["inspect", "-f", "{{.Id}}", "t:2"]), id);
    b.file("f", "two\n");
    set_mtime(1_500_000_000);
    let changed = b.build(&["-t", "t:3"]);
    changed.expect_code(0);
    assert!(!copy_cached(&changed.stderr), "{}", changed.stderr);
    assert_ne!(b.ok(&["inspect", "-f", "{{.Id}}", "t:3"]), id);
    assert_eq!(
        b.ok(&["run", "--rm", "--network", "none", "t:3", "cat", "/f"]),
        "two\n"
    );
}

#[test]
fn copy_from_a_stage_finds_nothing_under_a_directory_it_deleted() {
    // The whiteout of /d in the later layer stops the lookup of /d/f: the lower layer's file
    // is not there any more (before: each layer was looked in on its own, and the lower
    // layer's /d/f was copied).
    let b = Build::new(
        "FROM busybox AS s\nRUN mkdir /d && echo old > /d/f\nRUN rm -rf /d\n\
         FROM busybox\nCOPY --from=s /d/f /f\n",
    );
    let o = b.build(&["-t", "gone:1"]);
    o.expect_code(1);
    assert!(o.stderr.contains("\"/d/f\": not found"), "{}", o.stderr);
    let tagged = b.ns.dockling(&b.lab, &["inspect", "gone:1"]);
    assert_ne!(tagged.code, 0, "a failed build tagged its image");
    b.no_containers();
}

#[test]
fn shell_changes_the_shell_of_later_shell_form_instructions() {
    // /bin/echo as the "shell" shows exactly which argv a shell-form line became.
    let b = Build::new(
        "FROM busybox\nRUN echo before && touch /before\nSHELL [\"/bin/echo\", \"shell:\"]\nRUN hello there\nCMD ls /\n",
    );
    let o = b.build(&["-t", "sh:1"]);
    o.expect_code(0);
    assert!(
        o.stderr.lines().any(|l| l.ends_with(" shell: hello there")),
        "{}",
        o.stderr
    );
    assert!(
        o.stderr.lines().any(|l| l.ends_with(" before")),
        "{}",
        o.stderr
    );
    let cfg = b.ok(&[
        "inspect",
        "-f",
        "{{json .Config.Shell}} {{json .Config.Cmd}}",
        "sh:1",
    ]);
    assert_eq!(
        cfg.trim(),
        r#"["/bin/echo","shell:"] ["/bin/echo","shell:","ls /"]"#
    );
    let history = b.ok(&["history", "--no-trunc", "sh:1"]);
    assert!(history.contains("SHELL [/bin/echo shell:]"), "{history}");
    assert!(
        history.contains("RUN /bin/echo shell: hello there"),
        "{history}"
    );
    // A build FROM it inherits the shell, as Docker's does.
    std::fs::write(
        b.ctx.path().join("Child"),
        "FROM sh:1\nRUN from the child\n",
    )
    .unwrap();
    let f = b.ctx.path().join("Child");
    let o = b.build(&["-f", f.to_str().unwrap(), "-t", "sh:2"]);
    o.expect_code(0);
    assert!(
        o.stderr
            .lines()
            .any(|l| l.ends_with(" shell: from the child")),
        "{}",
        o.stderr
    );
    // Only the JSON form: the error names the line.
    std::fs::write(
        b.ctx.path().join("Bad"),
        "FROM busybox\n\nSHELL /bin/sh -c\n",
    )
    .unwrap();
    let f = b.ctx.path().join("Bad");
    let o = b.build(&["-f", f.to_str().unwrap(), "-t", "sh:3"]);
    o.expect_code(1);
    assert!(
        o.stderr
            .contains("Bad:3: SHELL requires the arguments to be in JSON form"),
        "{}",
        o.stderr
    );
    b.no_containers();
}

#[test]
fn a_large_copy_is_built_in_little_memory() {
    // The COPY layer streams from the context into an unlinked file and from there into the
    // gzip blob: a 200 MiB file never sits in memory (before: the tar and its gzip, both
    // whole, about 230 MiB resident).
    let b = Build::new("FROM busybox\nCOPY big /big\n");
    let big = std::fs::File::create(b.ctx.path().join("big")).unwrap();
    std::io::Write::write_all(&mut &big, &vec![0u8; 1 << 20].repeat(200)).unwrap();
    std::io::Write::write_all(&mut &big, b"tail\n").unwrap();
    drop(big);
    let time = Path::new("/usr/bin/time");
    assert!(
        time.exists(),
        "/usr/bin/time is needed to measure the build's memory: install the `time` package"
    );
    let ctx = b.ctx.path().to_str().unwrap().to_string();
    let probe = b.lab.command(&["build", "-q", "-t", "big:1", &ctx]);
    let mut c = std::process::Command::new(time);
    c.args(["-f", "maxrss_kib=%M"])
        .arg(probe.get_program())
        .args(probe.get_args())
        .envs(probe.get_envs().filter_map(|(k, v)| v.map(|v| (k, v))))
        .stdin(std::process::Stdio::null());
    let o: Out = b.ns.enter(c).output().expect("run dockling").into();
    o.expect_code(0);
    let rss: u64 = o
        .stderr
        .lines()
        .find_map(|l| l.strip_prefix("maxrss_kib="))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no maxrss in {}", o.stderr));
    assert!(
        rss < 100 * 1024,
        "a 200 MiB COPY peaked at {rss} KiB resident"
    );
    assert_eq!(
        b.ok(&[
            "run",
            "--rm",
            "--network",
            "none",
            "big:1",
            "sh",
            "-c",
            "wc -c < /big; tail -c 5 /big",
        ]),
        "209715205\ntail\n"
    );
}

#[test]
fn healthcheck_is_stored_as_docker_stores_it() {
    let b = Build::new(
        "FROM busybox\nHEALTHCHECK --interval=30s --timeout=3s --start-period=1m --retries=3 \\\n  CMD wget -q -O- http://localhost/ || exit 1\n",
    );
    let o = b.build(&["-t", "hc:1"]);
    o.expect_code(0);
    let hc = b.ok(&["inspect", "-f", "{{json .Config.Healthcheck}}", "hc:1"]);
    assert_eq!(
        hc.trim(),
        r#"{"Test":["CMD-SHELL","wget -q -O- http://localhost/ || exit 1"],"Interval":30000000000,"Timeout":3000000000,"StartPeriod":60000000000,"Retries":3}"#
    );
    let history = b.ok(&["history", "--no-trunc", "hc:1"]);
    assert!(
        history.contains("HEALTHCHECK {Test:[CMD-SHELL wget -q -O- http://localhost/ || exit 1] Interval:30s Timeout:3s StartPeriod:1m0s StartInterval:0s Retries:3}"),
        "{history}"
    );
    // NONE, in an image built FROM it, switches the inherited check off.
    std::fs::write(b.ctx.path().join("None"), "FROM hc:1\nHEALTHCHECK NONE\n").unwrap();
    let f = b.ctx.path().join("None");
    b.build(&["-f", f.to_str().unwrap(), "-t", "hc:2"])
        .expect_code(0);
    let hc = b.ok(&["inspect", "-f", "{{json .Config.Healthcheck}}", "hc:2"]);
    assert_eq!(hc.trim(), r#"{"Test":["NONE"]}"#);
    // A bad flag value names the line.
    std::fs::write(
        b.ctx.path().join("Bad"),
        "FROM busybox\nHEALTHCHECK --interval=5 CMD true\n",
    )
    .unwrap();
    let f = b.ctx.path().join("Bad");
    let o = b.build(&["-f", f.to_str().unwrap()]);
    o.expect_code(1);
    assert!(
        o.stderr
            .contains("Bad:2: time: missing unit in duration \"5\""),
        "{}",
        o.stderr
    );
}

#[test]
fn onbuild_triggers_run_after_the_from_of_a_later_build() {
    let b = Build::new(
        "FROM busybox\nONBUILD RUN echo triggered | tee /onbuild.txt\nONBUILD ENV FROM_TRIGGER=yes\nRUN touch /parent\n",
    );
    b.build(&["-t", "ob:1"]).expect_code(0);
    let cfg = b.ok(&["inspect", "-f", "{{json .Config.OnBuild}}", "ob:1"]);
    assert_eq!(
        cfg.trim(),
        r#"["RUN echo triggered | tee /onbuild.txt","ENV FROM_TRIGGER=yes"]"#
    );
    // The parent's own build does not run them, and (as BuildKit) records no history line.
    let out = b.ok(&["run", "--rm", "ob:1", "ls", "/"]);
    assert!(
        out.contains("parent") && !out.contains("onbuild.txt"),
        "{out}"
    );
    let history = b.ok(&["history", "--no-trunc", "ob:1"]);
    assert!(!history.contains("ONBUILD"), "{history}");

    std::fs::write(
        b.ctx.path().join("Child"),
        "FROM ob:1\nRUN cat /onbuild.txt\n",
    )
    .unwrap();
    let f = b.ctx.path().join("Child");
    let o = b.build(&["-f", f.to_str().unwrap(), "-t", "ob:2"]);
    o.expect_code(0);
    assert!(
        o.stderr
            .contains("[2/4] ONBUILD RUN echo triggered | tee /onbuild.txt"),
        "{}",
        o.stderr
    );
    assert!(o.stderr.contains("#1 [1/4] FROM ob:1"), "{}", o.stderr);
    assert!(
        o.stderr.contains("[3/4] ONBUILD ENV FROM_TRIGGER=yes"),
        "{}",
        o.stderr
    );
    assert!(
        o.stderr
            .lines()
            .any(|l| l.starts_with("#4 ") && l.ends_with(" triggered")),
        "{}",
        o.stderr
    );
    let env = b.ok(&[
        "run",
        "--rm",
        "ob:2",
        "sh",
        "-c",
        "cat /onbuild.txt; echo $FROM_TRIGGER",
    ]);
    assert_eq!(env, "triggered\nyes\n");
    // Triggers are not passed on: the child has none, and its own child runs none.
    let cfg = b.ok(&["inspect", "-f", "{{json .Config.OnBuild}}", "ob:2"]);
    assert_eq!(cfg.trim(), "null");
    std::fs::write(b.ctx.path().join("Grandchild"), "FROM ob:2\nENV X=1\n").unwrap();
    let f = b.ctx.path().join("Grandchild");
    let o = b.build(&["-f", f.to_str().unwrap(), "-t", "ob:3"]);
    o.expect_code(0);
    assert!(!o.stderr.contains("ONBUILD"), "{}", o.stderr);

    // What Docker refuses, at its line.
    std::fs::write(
        b.ctx.path().join("Bad"),
        "FROM busybox\nONBUILD ONBUILD RUN x\n",
    )
    .unwrap();
    let f = b.ctx.path().join("Bad");
    let o = b.build(&["-f", f.to_str().unwrap()]);
    o.expect_code(1);
    assert!(
        o.stderr
            .contains("Bad:2: Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed"),
        "{}",
        o.stderr
    );
    b.no_containers();
}

#[test]
fn run_heredocs_as_buildkit_runs_them() {
    let b = Build::new(concat!(
        "FROM busybox\n",
        "RUN <<EOF\n",
        "echo one > /one\n",
        "# a comment of the script, not of the Dockerfile\n",
        "echo \"two $((1+1))\" > /two\n",
        "EOF\n",
        "RUN <<-EOF\n",
        "\techo chomped > /chomped\n",
        "\tEOF\n",
        "RUN cat <<A > /a && cat <<'B' > /b\n",
        "$HOME\n",
        "A\n",
        "$HOME\n",
        "B\n",
        "RUN <<EOF\n",
        "#!/bin/sh\n",
        "echo \"script ran as $0\" > /script\n",
        "EOF\n",
        "CMD [\"sh\"]\n",
    ));
    let o = b.build(&["-t", "hd:1"]);
    o.expect_code(0);
    assert!(
        o.stderr.contains("[2/6] RUN <<EOF (echo one > /one...)"),
        "{}",
        o.stderr
    );
    let out = b.ok(&[
        "run",
        "--rm",
        "hd:1",
        "sh",
        "-c",
        "cat /one /two /chomped /a /b /script",
    ]);
    assert_eq!(
        out,
        "one\ntwo 2\nchomped\n/root\n$HOME\nscript ran as /dev/pipes/EOF\n"
    );
    // The content is in the cache key: a changed heredoc runs again.
    let again = b.build(&["-t", "hd:1"]);
    again.expect_code(0);
    assert_eq!(
        step_lines(&again.stderr, "CACHED").len(),
        5,
        "{}",
        again.stderr
    );
    let df = std::fs::read_to_string(b.ctx.path().join("Dockerfile")).unwrap();
    std::fs::write(
        b.ctx.path().join("Dockerfile"),
        df.replace("script ran as", "the script ran as"),
    )
    .unwrap();
    let changed = b.build(&["-t", "hd:2"]);
    changed.expect_code(0);
    assert_eq!(
        step_lines(&changed.stderr, "CACHED").len(),
        3,
        "{}",
        changed.stderr
    );
    let out = b.ok(&["run", "--rm", "hd:2", "cat", "/script"]);
    assert_eq!(out, "the script ran as /dev/pipes/EOF\n");
    b.no_containers();
}

#[test]
fn ctrl_c_during_a_run_cancels_the_build_and_leaves_nothing() {
    use common::{wait_exit, wait_until};
    let b = Build::new("FROM busybox\nRUN echo waiting && sleep 1017\nCMD [\"sh\"]\n");
    let ctx = b.ctx.path().to_str().unwrap().to_string();
    let mut child =
        b.ns.enter(b.lab.command(&["build", "-t", "int:1", &ctx]))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("spawn dockling build");
    // The RUN's container runs (its record says so, and its output came).
    let id = wait_until(
        std::time::Duration::from_secs(60),
        "the RUN container to be running",
        || {
            let o = b.ns.dockling(&b.lab, &["ps", "-q", "--no-trunc"]);
            let id = o.stdout.trim().to_string();
            (o.code == 0 && !id.is_empty()).then_some(id)
        },
    );
    assert_eq!(b.lab.state(&id), "running 0");
    let pid = child.id() as i32;
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let status = wait_exit(
        &mut child,
        std::time::Duration::from_secs(60),
        "dockling build to end on SIGINT",
    );
    let mut stderr = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut stderr).unwrap();
    assert_eq!(status.code(), Some(130), "{stderr}");
    assert!(
        stderr.contains("ERROR: canceled: the build was interrupted by SIGINT"),
        "{stderr}"
    );
    assert!(stderr.contains(" waiting"), "{stderr}");
    let tagged = b.ns.dockling(&b.lab, &["inspect", "int:1"]);
    assert_ne!(tagged.code, 0, "a cancelled build tagged its image");
    b.no_containers();
    assert!(
        b.lab.cgroups_left().is_empty(),
        "{:?}",
        b.lab.cgroups_left()
    );
    let root = b.lab.root().display().to_string();
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(
        !mounts.lines().any(|l| l.contains(&root)),
        "mounts left under {root}:\n{mounts}"
    );
    // The container's process is gone with its cgroup: no `sleep 1017` anywhere.
    let sleeping = std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| std::fs::read(e.path().join("cmdline")).ok())
        .any(|c| c == b"sleep\x001017\x00");
    assert!(!sleeping, "the RUN's process outlived the build");
}

#[test]
fn env_replaces_a_variable_in_its_place_as_docker_does() {
    let b = Build::new("FROM busybox\nENV A=1\nENV PATH=/opt/bin:$PATH B=2\nLABEL x=1 x=2\n");
    b.build(&["-t", "env:1"]).expect_code(0);
    let cfg = b.ok(&[
        "inspect",
        "-f",
        "{{json .Config.Env}} {{json .Config.Labels}}",
        "env:1",
    ]);
    assert_eq!(
        cfg.trim(),
        r#"["PATH=/opt/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin","A=1","B=2"] {"x":"2"}"#
    );
}

#[test]
fn a_dockerignore_exception_brings_back_a_file_of_a_left_out_directory() {
    let b = Build::new("FROM busybox\nCOPY . /ctx/\nCOPY build /only/\n");
    b.file(".dockerignore", "build\n!build/keep\n");
    b.file("build/keep", "kept\n");
    b.file("build/drop", "dropped\n");
    b.file("build/sub/deep", "dropped\n");
    b.file("other", "o\n");
    b.build(&["-t", "ign:1"]).expect_code(0);
    let out = b.ok(&[
        "run",
        "--rm",
        "ign:1",
        "sh",
        "-c",
        "cd /ctx && find build other | sort && cat build/keep && cd /only && find . | sort",
    ]);
    assert_eq!(out, "build\nbuild/keep\nother\nkept\n.\n./keep\n");
}

#[test]
fn run_mount_cache_persists_between_builds_and_stays_out_of_the_layer() {
    let b = Build::new(concat!(
        "FROM busybox\n",
        "RUN --mount=type=cache,target=/var/cache/thing echo run >> /var/cache/thing/log && wc -l < /var/cache/thing/log > /count\n",
        "RUN --mount=type=tmpfs,target=/scratch echo x > /scratch/f && grep -q ' /scratch tmpfs ' /proc/mounts && touch /tmpfs-ok\n",
    ));
    b.build(&["-t", "mnt:1"]).expect_code(0);
    let check = "cat /count; ls /tmpfs-ok; test -e /var/cache/thing || echo no thing; test -e /scratch || echo no scratch";
    let out = b.ok(&["run", "--rm", "mnt:1", "sh", "-c", check]);
    // Nothing of the mounts in the image: neither their targets nor what was written there.
    assert_eq!(out, "1\n/tmpfs-ok\nno thing\nno scratch\n");
    // The cache outlives the build: a second build (no build cache) sees the first's file.
    b.build(&["--no-cache", "-t", "mnt:2"]).expect_code(0);
    let out = b.ok(&["run", "--rm", "mnt:2", "cat", "/count"]);
    assert_eq!(out, "2\n");
    let caches: Vec<_> = std::fs::read_dir(b.lab.root().join("build-cache-mounts"))
        .unwrap()
        .flatten()
        .collect();
    assert_eq!(caches.len(), 1, "one cache, keyed by its target");
    b.no_containers();
}

#[test]
fn maintainer_sets_the_author_as_docker_does() {
    let b = Build::new("FROM busybox\nMAINTAINER Jane Doe <jane@example.com>\n");
    b.build(&["-t", "who:1"]).expect_code(0);
    let author = b.ok(&["inspect", "-f", "{{.Author}}", "who:1"]);
    assert_eq!(author, "Jane Doe <jane@example.com>\n");
    let history = b.ok(&["history", "--no-trunc", "who:1"]);
    assert!(
        history.contains("MAINTAINER Jane Doe <jane@example.com>"),
        "{history}"
    );
}

#[test]
fn an_image_that_holds_the_same_empty_layer_twice_builds_and_runs() {
    // Two RUNs that change nothing make the same (empty) layer; overlayfs refuses a directory
    // named twice in lowerdir (ELOOP), so the third RUN failed to start its container.
    let b = Build::new("FROM busybox\nRUN true\nRUN echo hi > /f\nRUN true\nRUN true\n");
    let o = b.build(&["-t", "twice:1"]);
    o.expect_code(0);
    let layers = b.ok(&["inspect", "-f", "{{json .RootFS.Layers}}", "twice:1"]);
    let ids: Vec<&str> = layers.trim().trim_matches(['[', ']']).split(',').collect();
    let unique: std::collections::BTreeSet<&str> = ids.iter().copied().collect();
    assert!(
        unique.len() < ids.len(),
        "the image should repeat a layer: {layers}"
    );
    assert_eq!(
        b.ok(&["run", "--rm", "--network", "none", "twice:1", "cat", "/f"]),
        "hi\n"
    );
    b.no_containers();
}

/// The Build Cache row of `system df`: (TOTAL, SIZE).
fn build_cache_row(b: &Build) -> (String, String) {
    let df = b.ok(&["system", "df"]);
    let row = df
        .lines()
        .find(|l| l.starts_with("Build Cache"))
        .unwrap_or_else(|| panic!("no Build Cache row:\n{df}"));
    let cells: Vec<&str> = row["Build Cache".len()..].split_whitespace().collect();
    (cells[0].to_string(), cells[2].to_string())
}

#[test]
fn image_prune_keeps_the_build_cache_builder_prune_empties_it() {
    let b = Build::new(concat!(
        "FROM busybox\n",
        "RUN echo one > /one\n",
        "RUN --mount=type=cache,target=/cache echo x >> /cache/log && echo two > /two\n",
        "CMD [\"cat\", \"/two\"]\n",
    ));
    b.build(&["-t", "pruned:1"]).expect_code(0);
    let (objects, size) = build_cache_row(&b);
    // Two step images no tag names (the RUNs; the last, CMD, is the tagged result) and the
    // cache mount.
    assert_eq!(objects, "3", "{objects} {size}");
    assert_ne!(size, "0B");
    // image prune: the step images are the build cache, not dangling images.
    let o = b.ns.dockling(&b.lab, &["image", "prune", "-f"]);
    o.expect_code(0);
    assert!(!o.stdout.contains("deleted:"), "{}", o.stdout);
    let again = b.build(&["-t", "pruned:1"]);
    again.expect_code(0);
    assert_eq!(
        step_lines(&again.stderr, "CACHED").len(),
        3,
        "{}",
        again.stderr
    );
    // builder prune asks first, as Docker's: no answer, nothing removed.
    let o = b.ns.dockling(&b.lab, &["builder", "prune"]);
    o.expect_code(0);
    assert!(
        o.stderr
            .contains("WARNING! This will remove all dangling build cache."),
        "{}",
        o.stderr
    );
    assert_eq!(build_cache_row(&b).0, "3");
    let o = b.ns.dockling(&b.lab, &["builder", "prune", "-f"]);
    o.expect_code(0);
    assert!(
        o.stdout.starts_with("Deleted build cache objects:\n"),
        "{}",
        o.stdout
    );
    assert!(o.stdout.contains("Total reclaimed space: "), "{}", o.stdout);
    assert_eq!(build_cache_row(&b), ("0".to_string(), "0B".to_string()));
    assert_eq!(
        std::fs::read_dir(b.lab.root().join("build-cache-mounts"))
            .unwrap()
            .count(),
        0,
        "the cache mount is gone"
    );
    // The tagged result is untouched and runs; the next build starts from scratch.
    assert_eq!(b.ok(&["run", "--rm", "pruned:1"]), "two\n");
    let fresh = b.build(&["-t", "pruned:2"]);
    fresh.expect_code(0);
    assert_eq!(
        step_lines(&fresh.stderr, "CACHED").len(),
        0,
        "{}",
        fresh.stderr
    );
    b.no_containers();
}

#[test]
fn copy_and_workdir_through_a_symlinked_directory_keep_the_link() {
    let b = Build::new(concat!(
        "FROM busybox\n",
        "RUN mkdir /real /real2 && ln -s real /lnk && ln -s /real2 /abs\n",
        "COPY f /lnk/\n",
        "COPY f /abs\n",
        "COPY dir /lnk/sub/\n",
        "WORKDIR /lnk/made\n",
        "WORKDIR /abs/../lnk2\n",
    ));
    b.file("f", "f\n");
    b.file("dir/g", "g\n");
    b.build(&["-t", "lnk:1"]).expect_code(0);
    let out = b.ok(&[
        "run",
        "--rm",
        "lnk:1",
        "sh",
        "-c",
        "readlink /lnk; readlink /abs; cat /real/f /real2/f /real/sub/g; test -d /real/made && echo made; pwd",
    ]);
    // The links stay links; what went "into" them is where they lead. `WORKDIR /abs/../lnk2`
    // is taken lexically first (as BuildKit's path cleaning), so it is /lnk2.
    assert_eq!(out, "real\n/real2\nf\nf\ng\nmade\n/lnk2\n");
    b.no_containers();
}

#[test]
fn dockerignore_cannot_be_bypassed_through_a_symlink() {
    let b = Build::new("FROM busybox\nCOPY link /leak\n");
    b.file(".dockerignore", "secret\nbuild/\n");
    b.file("secret", "s3cret\n");
    b.file("build/x", "built\n");
    std::os::unix::fs::symlink("secret", b.ctx.path().join("link")).unwrap();
    std::os::unix::fs::symlink("build/", b.ctx.path().join("linkdir")).unwrap();
    let o = b.build(&["-t", "leak:1"]);
    o.expect_code(1);
    assert!(o.stderr.contains("\"/link\": not found"), "{}", o.stderr);
    std::fs::write(
        b.ctx.path().join("Dockerfile"),
        "FROM busybox\nCOPY linkdir/x /leak\n",
    )
    .unwrap();
    let o = b.build(&["-t", "leak:2"]);
    o.expect_code(1);
    assert!(o.stderr.contains("not found"), "{}", o.stderr);
    std::fs::write(
        b.ctx.path().join("Dockerfile"),
        "FROM busybox\nCOPY linkdir /leak/\n",
    )
    .unwrap();
    let o = b.build(&["-t", "leak:3"]);
    o.expect_code(1);
    assert!(o.stderr.contains("not found"), "{}", o.stderr);
    let o = b.ns.dockling(&b.lab, &["image", "inspect", "leak:3"]);
    assert_ne!(o.code, 0, "nothing tagged");
    b.no_containers();
}

#[test]
fn a_copied_directory_leaves_an_existing_destinations_mode_alone() {
    use std::os::unix::fs::PermissionsExt;
    let b = Build::new(concat!(
        "FROM busybox\n",
        "RUN mkdir -m 1777 -p /tmp && mkdir -m 0711 /keep && mkdir -m 0713 /f && chown 3:4 /f\n",
        "COPY tdir/x /f/\n",
        "WORKDIR /f/w\n",
        "COPY tdir /tmp/\n",
        "COPY tdir/x /keep/y\n",
        "WORKDIR /keep/w\n",
        "COPY tdir /keep\n",
        "COPY --chown=7:8 tdir /new\n",
        "COPY --chown=5:6 tdir/x /newf/deep/\n",
        "COPY . /app\n",
    ));
    b.file("tdir/x", "x\n");
    std::fs::set_permissions(
        b.ctx.path().join("tdir"),
        std::fs::Permissions::from_mode(0o750),
    )
    .unwrap();
    std::fs::set_permissions(b.ctx.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
    b.build(&["-t", "modes:1"]).expect_code(0);
    let out = b.ok(&[
        "run",
        "--rm",
        "modes:1",
        "stat",
        "-c",
        "%n %a %u:%g",
        "/tmp",
        "/keep",
        "/f",
        "/new",
        "/newf",
        "/newf/deep",
        "/app",
        "/app/tdir",
        "/tmp/x",
    ]);
    assert_eq!(
        out,
        "/tmp 1777 0:0\n/keep 711 0:0\n/f 713 3:4\n/new 755 7:8\n/newf 755 5:6\n/newf/deep 755 5:6\n/app 755 0:0\n/app/tdir 750 0:0\n/tmp/x 644 0:0\n"
    );
    b.no_containers();
}

#[test]
fn a_wildcard_that_matches_nothing_is_no_error() {
    let b = Build::new("FROM busybox\nWORKDIR /app\nCOPY package.json yarn.lock* ./\n");
    b.file("package.json", "{}\n");
    b.build(&["-t", "glob:1"]).expect_code(0);
    let out = b.ok(&["run", "--rm", "glob:1", "ls", "/app"]);
    assert_eq!(out, "package.json\n");
    // A name without a wildcard must still be there.
    std::fs::write(
        b.ctx.path().join("Dockerfile"),
        "FROM busybox\nCOPY package.json yarn.lock ./\n",
    )
    .unwrap();
    let o = b.build(&["-t", "glob:2"]);
    o.expect_code(1);
    assert!(
        o.stderr.contains("\"/yarn.lock\": not found"),
        "{}",
        o.stderr
    );
    b.no_containers();
}

#[test]
fn copy_from_a_stage_of_many_deep_layers_under_a_small_open_file_limit() {
    // 30 layers each touching a 20-deep path: a lookup or walk that kept every layer's
    // descriptor at each depth open needed 30 × 20 = 600 of them (EMFILE under 256).
    let deep: String = (1..=20).map(|i| format!("/d{i}")).collect();
    let mut df = String::from("FROM busybox AS s\n");
    for i in 0..30 {
        df.push_str(&format!("COPY f{i} {deep}/\n"));
    }
    df.push_str("FROM busybox\nCOPY --from=s /d1 /out\n");
    let b = Build::new(&df);
    for i in 0..30 {
        b.file(&format!("f{i}"), &format!("{i}\n"));
    }
    let ctx = b.ctx.path().to_str().unwrap().to_string();
    let mut c = b.ns.enter(b.lab.command(&["build", "-t", "deep:1", &ctx]));
    // SAFETY: setrlimit only, in the child between fork and exec.
    unsafe {
        std::os::unix::process::CommandExt::pre_exec(&mut c, || {
            let lim = libc::rlimit {
                rlim_cur: 256,
                rlim_max: 256,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let o: Out = c.output().expect("run dockling").into();
    o.expect_code(0);
    let inner: String = (2..=20).map(|i| format!("/d{i}")).collect();
    assert_eq!(
        b.ok(&[
            "run",
            "--rm",
            "--network",
            "none",
            "deep:1",
            "sh",
            "-c",
            &format!("find /out -type f | wc -l; cat /out{inner}/f29"),
        ]),
        "30\n29\n"
    );
}

#[test]
fn ctrl_c_during_the_pull_of_a_copy_from_image_stops_it_at_once() {
    use common::{wait_exit, wait_until};
    use std::os::unix::process::ExitStatusExt;
    // A registry that accepts the connection and never answers: the pull waits on it.
    let b = Build::new("");
    let listener = b.ns.listen_tcp("127.0.0.1:0");
    let port = listener.local_addr().unwrap().port();
    std::fs::write(
        b.ctx.path().join("Dockerfile"),
        format!("FROM busybox\nCOPY --from=127.0.0.1:{port}/hang:1 /x /x\n"),
    )
    .unwrap();
    listener.set_nonblocking(true).unwrap();
    let ctx = b.ctx.path().to_str().unwrap().to_string();
    let mut child =
        b.ns.enter(b.lab.command(&["build", "-t", "hang:1", &ctx]))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("spawn dockling build");
    let _conn = wait_until(
        std::time::Duration::from_secs(60),
        "the pull to connect to the registry",
        || listener.accept().ok(),
    );
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    // Before: SIGINT stayed blocked through the pull, which waited on the silent registry.
    let status = wait_exit(
        &mut child,
        std::time::Duration::from_secs(20),
        "dockling build to end on SIGINT during COPY --from's pull",
    );
    assert_eq!(status.signal(), Some(libc::SIGINT), "{status:?}");
    let tagged = b.ns.dockling(&b.lab, &["inspect", "hang:1"]);
    assert_ne!(tagged.code, 0, "a cancelled build tagged its image");
    b.no_containers();
}

#[test]
fn run_mount_cache_sharing_locked_waits_and_private_gets_its_own() {
    use common::{wait_exit, wait_until};
    let b = Build::new(concat!(
        "FROM busybox\n",
        "RUN --mount=type=cache,id=k,target=/c,sharing=locked sh -c 'echo 1 >> /c/log; while [ ! -e /c/go ]; do sleep 0.05; done; echo 1end >> /c/log'\n",
    ));
    let cache = b
        .lab
        .root()
        .join("build-cache-mounts")
        .join(common_sha256(b"k"));
    let log = cache.join("log");
    let ctx = b.ctx.path().to_str().unwrap().to_string();
    let spawn = |ctx: &str, tag: &str| {
        b.ns.enter(b.lab.command(&["build", "--no-cache", "-t", tag, ctx]))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("spawn dockling build")
    };
    // However the test ends, the first RUN is let go (nothing left waiting).
    struct Go(std::path::PathBuf);
    impl Drop for Go {
        fn drop(&mut self) {
            let _ = std::fs::write(&self.0, "");
        }
    }
    let _go = Go(cache.join("go"));
    let mut first = spawn(&ctx, "lock:1");
    wait_until(
        std::time::Duration::from_secs(60),
        "the first RUN to use the cache",
        || (std::fs::read_to_string(&log).ok()? == "1\n").then_some(()),
    );
    // A locked RUN of another build waits; a private one gets an empty directory of its own.
    let ctx2 = tempfile::tempdir().unwrap();
    std::fs::write(
        ctx2.path().join("Dockerfile"),
        "FROM busybox\nRUN --mount=type=cache,id=k,target=/c,sharing=locked sh -c 'echo 2 >> /c/log'\n",
    )
    .unwrap();
    let ctx3 = tempfile::tempdir().unwrap();
    std::fs::write(
        ctx3.path().join("Dockerfile"),
        "FROM busybox\nRUN --mount=type=cache,id=k,target=/c,sharing=private sh -c 'ls -A /c | wc -l > /n; echo p > /c/p'\n",
    )
    .unwrap();
    let mut private = spawn(ctx3.path().to_str().unwrap(), "private:1");
    let status = wait_exit(
        &mut private,
        std::time::Duration::from_secs(60),
        "the private build",
    );
    assert!(status.success(), "{status:?}");
    assert_eq!(b.ok(&["run", "--rm", "private:1", "cat", "/n"]), "0\n");
    let mut second = spawn(ctx2.path().to_str().unwrap(), "lock:2");
    // It waits on the cache's lock: the kernel lists the blocked request ("->") on the
    // cache directory's inode in /proc/locks.
    let ino = std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(&cache).unwrap());
    wait_until(
        std::time::Duration::from_secs(30),
        "the second build to wait for the cache's lock",
        || {
            std::fs::read_to_string("/proc/locks")
                .unwrap()
                .lines()
                .any(|l| l.contains("-> FLOCK") && l.contains(&format!(":{ino} ")))
                .then_some(())
        },
    );
    assert_eq!(std::fs::read_to_string(&log).unwrap(), "1\n");
    std::fs::write(cache.join("go"), "").unwrap();
    for (c, what) in [(&mut first, "the first build"), (&mut second, "the second")] {
        let status = wait_exit(c, std::time::Duration::from_secs(60), what);
        assert!(status.success(), "{what}: {status:?}");
    }
    assert_eq!(std::fs::read_to_string(&log).unwrap(), "1\n1end\n2\n");
    // The private directory went with its RUN; the shared cache never saw its file.
    assert!(!cache.join("p").exists());
    let left: Vec<_> = std::fs::read_dir(b.lab.root().join("build-cache-mounts"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert_eq!(left.len(), 1, "{left:?}");
    b.no_containers();
}

fn common_sha256(data: &[u8]) -> String {
    use sha2::Digest;
    format!("{:x}", sha2::Sha256::digest(data))
}
