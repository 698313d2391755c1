//! The language of the explanations: `--lang`, then `DOCKLING_LANG`, then the locale
//! (`LC_ALL`, `LC_MESSAGES`, `LANG`), English otherwise; errors stay English.

mod common;

use common::Lab;

/// Does `s` hold Hangul syllables (U+AC00..U+D7A3)?
fn hangul(s: &str) -> usize {
    s.chars()
        .filter(|c| ('\u{AC00}'..='\u{D7A3}').contains(c))
        .count()
}

/// `dockling args…` with no language in the environment but `env`.
fn dockling(lab: &Lab, args: &[&str], env: &[(&str, &str)]) -> common::Out {
    let mut c = lab.command(args);
    for k in ["DOCKLING_LANG", "LC_ALL", "LC_MESSAGES", "LANG"] {
        c.env_remove(k);
    }
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().expect("run dockling").into()
}

const EXPLAIN: &[&str] = &["explain", "run", "--rm", "busybox", "true"];

#[test]
fn explain_speaks_korean_when_asked_by_flag_variable_or_locale() {
    let lab = Lab::with_busybox();
    let en = dockling(&lab, EXPLAIN, &[]);
    en.expect_code(0);
    assert_eq!(hangul(&en.stdout), 0, "English by default:\n{}", en.stdout);
    assert!(
        en.stdout
            .contains("switch to the container's filesystem as /"),
        "{}",
        en.stdout
    );

    let mut flags = vec!["--lang", "ko"];
    flags.extend_from_slice(EXPLAIN);
    for (how, args, env) in [
        ("--lang ko", flags.as_slice(), &[][..]),
        ("DOCKLING_LANG=ko", EXPLAIN, &[("DOCKLING_LANG", "ko")][..]),
        ("LANG=ko_KR.UTF-8", EXPLAIN, &[("LANG", "ko_KR.UTF-8")][..]),
        (
            "LC_MESSAGES",
            EXPLAIN,
            &[("LC_MESSAGES", "ko_KR.UTF-8"), ("LANG", "en_US.UTF-8")][..],
        ),
        // The flag comes before the environment.
        (
            "--lang over LANG",
            flags.as_slice(),
            &[("LANG", "en_US.UTF-8")][..],
        ),
    ] {
        let ko = dockling(&lab, args, env);
        ko.expect_code(0);
        // The step titles and the syscalls' explanations, not one word here or there.
        assert!(
            hangul(&ko.stdout) > 500,
            "{how}: not Korean:\n{}",
            ko.stdout
        );
        assert!(
            ko.stdout
                .contains("컨테이너의 파일 시스템(filesystem)을 /로 바꾸고"),
            "{how}: no Korean title of rootfs.pivot_root:\n{}",
            ko.stdout
        );
        // The step keys and the syscalls themselves are the same in every language.
        assert!(ko.stdout.contains("rootfs.pivot_root"), "{how}");
        assert!(ko.stdout.contains("CLONE_NEWPID"), "{how}");
        assert!(
            !ko.stdout.contains("switch to the container's filesystem"),
            "{how}"
        );
    }

    // LC_ALL=C outranks LANG, as in any C program; and --lang en outranks everything.
    for (how, args, env) in [
        (
            "LC_ALL=C",
            EXPLAIN,
            &[("LC_ALL", "C"), ("LANG", "ko_KR.UTF-8")][..],
        ),
        (
            "--lang en",
            &["--lang", "en", "explain", "run", "--rm", "busybox", "true"][..],
            &[("DOCKLING_LANG", "ko"), ("LANG", "ko_KR.UTF-8")][..],
        ),
    ] {
        let o = dockling(&lab, args, env);
        o.expect_code(0);
        assert_eq!(
            hangul(&o.stdout),
            0,
            "{how}: English expected:\n{}",
            o.stdout
        );
    }
    assert!(
        lab.containers_left().is_empty(),
        "explain must not create anything"
    );
}

#[test]
fn errors_stay_english_in_korean() {
    let lab = Lab::with_busybox();
    let o = dockling(
        &lab,
        &[
            "--lang",
            "ko",
            "explain",
            "run",
            "--rm",
            "nosuchimage",
            "true",
        ],
        &[],
    );
    o.expect_code(125);
    assert_eq!(hangul(&o.stderr), 0, "{}", o.stderr);
    assert!(o.stderr.contains("nosuchimage"), "{}", o.stderr);
}

#[test]
fn an_unknown_language_is_refused_with_the_list() {
    let lab = Lab::new();
    for (how, args, env) in [
        ("--lang xx", &["--lang", "xx", "ps"][..], &[][..]),
        (
            "--lang after the command",
            &["ps", "--lang", "xx"][..],
            &[][..],
        ),
        (
            "DOCKLING_LANG=xx",
            &["ps"][..],
            &[("DOCKLING_LANG", "xx")][..],
        ),
    ] {
        let o = dockling(&lab, args, env);
        o.expect_code(125);
        assert!(o.stdout.is_empty(), "{how}: {}", o.stdout);
        assert!(o.stderr.contains("'xx'"), "{how}: {}", o.stderr);
        assert!(o.stderr.contains("en, ko"), "{how}: {}", o.stderr);
    }
    // An unknown locale is no error: it is the user's whole system, not a request to dockling.
    let o = dockling(&lab, &["ps"], &[("LANG", "fr_FR.UTF-8")]);
    o.expect_code(0);
}
