//! Registries that misbehave on purpose: a tiny HTTP server on a loopback port answers each
//! request from a table the test fills, so every broken answer a real registry (or someone in
//! the middle) could give is tried, and the store is checked to be clean afterwards.

mod common;
use common::Lab;

#[path = "fake_server/mod.rs"]
mod fake_server;
use fake_server::{digest, image, ok, serve, serve_manifest, Answer, Fake, Seen, OCI_MANIFEST};

use serde_json::json;
use std::time::{Duration, Instant};

fn assert_clean(lab: &Lab) {
    for dir in ["oci/blobs/sha256", "layers/sha256"] {
        let left: Vec<_> = std::fs::read_dir(lab.root().join(dir))
            .map(|d| d.flatten().map(|e| e.file_name()).collect())
            .unwrap_or_default();
        assert!(left.is_empty(), "{dir} holds {left:?} after a failed pull");
    }
}

#[test]
fn a_truncated_download_is_retried_and_then_succeeds() {
    let lab = Lab::new();
    let fake = Fake::start();
    let (_, _, layer) = image();
    let mut cut = ok("application/octet-stream", layer.clone());
    cut.cut = Some(layer.len() / 2);
    serve(
        &fake,
        "t/img",
        vec![cut, ok("application/octet-stream", layer.clone())],
    );
    let pull = lab.cmd(&["pull", &fake.name("t/img:v1")]);
    pull.expect_code(0);
    // Two tries of the layer: the cut one, then the whole one.
    let layer_path = format!("/v2/t/img/blobs/{}", digest(&layer));
    let tries = fake.seen().iter().filter(|s| s.path == layer_path).count();
    assert_eq!(tries, 2);
    // The layer is there, whole: its one file with its content and mode.
    let unpacked = lab.root().join("layers/sha256").join(&digest(&layer)[7..]);
    let greeting = unpacked.join("greeting");
    assert_eq!(std::fs::read(&greeting).unwrap(), b"hello\n");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&greeting).unwrap().permissions().mode() & 0o7777,
        0o644
    );
    // And it runs: the image has nothing to execute, so a missing command is 127 (not an
    // engine error, 125, which a missing or broken layer would give).
    let run = lab.run(&[&fake.name("t/img:v1"), "x"]);
    run.expect_code(127);
}

#[test]
fn broken_answers_are_clear_errors_that_leave_the_store_clean() {
    let fake = Fake::start();
    let (m, c, l) = image();
    let layer_path = |repo: &str| format!("/v2/{repo}/blobs/{}", digest(&l));

    // Always truncated: three tries, then a clear error.
    let lab = Lab::new();
    let mut cut = ok("application/octet-stream", l.clone());
    cut.cut = Some(10);
    serve(&fake, "b/cut", vec![cut]);
    let out = lab.cmd(&["pull", &fake.name("b/cut:v1")]);
    out.expect_code(125);
    assert!(out.stderr.contains("failed three times"), "{}", out.stderr);
    assert_clean(&lab);
    let tries = fake
        .seen()
        .iter()
        .filter(|s| s.path == layer_path("b/cut"))
        .count();
    assert_eq!(tries, 3);

    // A manifest that is an index and an image at once.
    let lab = Lab::new();
    let mut both: serde_json::Value = serde_json::from_slice(&m).unwrap();
    both["manifests"] = json!([]);
    fake.route(
        "/v2/b/both/manifests/v1",
        vec![ok(OCI_MANIFEST, serde_json::to_vec(&both).unwrap())],
    );
    let out = lab.cmd(&["pull", &fake.name("b/both:v1")]);
    out.expect_code(125);
    assert!(
        out.stderr.contains("both an index and an image manifest"),
        "{}",
        out.stderr
    );
    assert_clean(&lab);

    // Content-Type says one thing, the document another.
    let lab = Lab::new();
    fake.route(
        "/v2/b/type/manifests/v1",
        vec![ok("application/vnd.oci.image.index.v1+json", m.clone())],
    );
    let out = lab.cmd(&["pull", &fake.name("b/type:v1")]);
    out.expect_code(125);
    assert!(out.stderr.contains("but it declares"), "{}", out.stderr);

    // A digest that is not one (it would end up in a path).
    let lab = Lab::new();
    let mut evil: serde_json::Value = serde_json::from_slice(&m).unwrap();
    evil["layers"][0]["digest"] = json!("sha256:../../../../etc/passwd");
    fake.route(
        "/v2/b/evil/manifests/v1",
        vec![ok(OCI_MANIFEST, serde_json::to_vec(&evil).unwrap())],
    );
    fake.route(
        &format!("/v2/b/evil/blobs/{}", digest(&c)),
        vec![ok("application/octet-stream", c.clone())],
    );
    let out = lab.cmd(&["pull", &fake.name("b/evil:v1")]);
    out.expect_code(125);
    assert!(out.stderr.contains("invalid digest"), "{}", out.stderr);
    assert_clean(&lab);

    // A manifest far too large.
    let lab = Lab::new();
    fake.route(
        "/v2/b/huge/manifests/v1",
        vec![ok(OCI_MANIFEST, vec![b' '; 5 << 20])],
    );
    let out = lab.cmd(&["pull", &fake.name("b/huge:v1")]);
    out.expect_code(125);
    assert!(out.stderr.contains("larger than"), "{}", out.stderr);

    // Docker schema 1.
    let lab = Lab::new();
    fake.route(
        "/v2/b/old/manifests/v1",
        vec![ok(
            "application/vnd.docker.distribution.manifest.v1+prettyjws",
            br#"{"schemaVersion":1,"name":"b/old","tag":"v1","fsLayers":[]}"#.to_vec(),
        )],
    );
    let out = lab.cmd(&["pull", &fake.name("b/old:v1")]);
    out.expect_code(125);
    assert!(out.stderr.contains("schema 1"), "{}", out.stderr);

    // A layer whose bytes do not match the config's diff_id (digest of the blob is right).
    let lab = Lab::new();
    let other = {
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_ustar();
        h.set_mode(0o644);
        h.set_size(4);
        b.append_data(&mut h, "evil", &b"evil"[..]).unwrap();
        b.into_inner().unwrap()
    };
    let mut swapped: serde_json::Value = serde_json::from_slice(&m).unwrap();
    swapped["layers"][0]["digest"] = json!(digest(&other));
    swapped["layers"][0]["size"] = json!(other.len());
    fake.route(
        "/v2/b/swap/manifests/v1",
        vec![ok(OCI_MANIFEST, serde_json::to_vec(&swapped).unwrap())],
    );
    fake.route(
        &format!("/v2/b/swap/blobs/{}", digest(&c)),
        vec![ok("application/octet-stream", c.clone())],
    );
    fake.route(
        &format!("/v2/b/swap/blobs/{}", digest(&other)),
        vec![ok("application/octet-stream", other)],
    );
    let out = lab.cmd(&["pull", &fake.name("b/swap:v1")]);
    out.expect_code(125);
    assert!(out.stderr.contains("tampered"), "{}", out.stderr);
    assert!(lab.cmd(&["images", "-q"]).stdout.is_empty());
}

#[test]
fn an_index_picks_this_platform_and_skips_attestations() {
    let lab = Lab::new();
    let fake = Fake::start();
    let (m, _, l) = image();
    serve(&fake, "i/img", vec![ok("application/octet-stream", l)]);
    let arch = if cfg!(target_arch = "aarch64") {
        "arm64"
    } else {
        "amd64"
    };
    let index = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [
            {"mediaType": OCI_MANIFEST, "digest": format!("sha256:{}", "1".repeat(64)), "size": 1,
             "platform": {"os": "linux", "architecture": "s390x"}},
            {"mediaType": OCI_MANIFEST, "digest": format!("sha256:{}", "2".repeat(64)), "size": 1,
             "platform": {"os": "unknown", "architecture": "unknown"},
             "annotations": {"vnd.docker.reference.type": "attestation-manifest"}},
            {"mediaType": OCI_MANIFEST, "digest": digest(&m), "size": m.len(),
             "platform": {"os": "linux", "architecture": arch}},
        ],
    }))
    .unwrap();
    fake.route(
        "/v2/i/img/manifests/multi",
        vec![ok("application/vnd.oci.image.index.v1+json", index)],
    );
    fake.route(
        &format!("/v2/i/img/manifests/{}", digest(&m)),
        vec![ok(OCI_MANIFEST, m.clone())],
    );
    lab.cmd(&["pull", &fake.name("i/img:multi")]).expect_code(0);
    let asked: Vec<String> = fake.seen().into_iter().map(|s| s.path).collect();
    assert!(
        !asked
            .iter()
            .any(|p| p.contains(&"1".repeat(64)) || p.contains(&"2".repeat(64))),
        "{asked:?}"
    );
    // By digest: the manifest must hash to what was asked.
    let lab = Lab::new();
    lab.cmd(&["pull", &format!("{}@{}", fake.name("i/img"), digest(&m))])
        .expect_code(0);
    fake.route(
        &format!("/v2/i/img/manifests/sha256:{}", "3".repeat(64)),
        vec![ok(OCI_MANIFEST, m)],
    );
    let out = lab.cmd(&[
        "pull",
        &format!("{}@sha256:{}", fake.name("i/img"), "3".repeat(64)),
    ]);
    out.expect_code(125);
    assert!(out.stderr.contains("hashes to"), "{}", out.stderr);
}

#[test]
fn credentials_do_not_follow_a_redirect_to_another_host() {
    let lab = Lab::with_busybox();
    let home = tempfile::tempdir().unwrap();
    let registry = Fake::start();
    let storage = Fake::start();
    let (_, _, l) = image();
    let blob_path = format!("/v2/r/img/blobs/{}", digest(&l));
    serve(
        &registry,
        "r/img",
        vec![Answer {
            status: 307,
            headers: vec![(
                "Location".into(),
                format!("http://127.0.0.1:{}/storage/layer", storage.port),
            )],
            body: Vec::new(),
            ..Default::default()
        }],
    );
    storage.route("/storage/layer", vec![ok("application/octet-stream", l)]);
    // The registry wants Basic credentials for everything but the blob redirect.
    std::fs::create_dir_all(home.path().join(".dockling")).unwrap();
    std::fs::write(
        home.path().join(".dockling/config.json"),
        format!(
            r#"{{"auths":{{"127.0.0.1:{}":{{"auth":"c3R1ZGVudDpzZWNyZXQ="}}}}}}"#,
            registry.port
        ),
    )
    .unwrap();
    let mut challenge = registry.routes.lock().unwrap();
    let manifest = challenge.remove("/v2/r/img/manifests/v1").unwrap();
    challenge.insert(
        "/v2/r/img/manifests/v1".into(),
        vec![Answer {
            status: 401,
            headers: vec![("WWW-Authenticate".into(), r#"Basic realm="fake""#.into())],
            body: Vec::new(),
            ..Default::default()
        }]
        .into_iter()
        .chain(manifest)
        .collect(),
    );
    drop(challenge);
    let out = lab.cmd_env(
        &["pull", &registry.name("r/img:v1")],
        &[("HOME", home.path().as_os_str())],
    );
    out.expect_code(0);
    let sent = registry.seen();
    assert!(
        sent.iter().any(|s| s.path == blob_path
            && s.authorization
                .as_deref()
                .is_some_and(|a| a.starts_with("Basic "))),
        "the registry itself gets the credentials: {sent:?}"
    );
    let at_storage = storage.seen();
    assert_eq!(at_storage.len(), 1, "{at_storage:?}");
    assert_eq!(
        at_storage[0].authorization, None,
        "Authorization leaked to another host"
    );
}

#[test]
fn a_bearer_challenge_gets_one_token_per_scope_which_is_then_used() {
    let lab = Lab::new();
    let fake = Fake::start();
    let (_, _, l) = image();
    serve(&fake, "b/img", vec![ok("application/octet-stream", l)]);
    let realm = format!("http://127.0.0.1:{}/token", fake.port);
    let challenge = Answer {
        status: 401,
        headers: vec![(
            "WWW-Authenticate".into(),
            format!(
                r#"Bearer realm="{realm}",service="fake-registry",scope="repository:b/img:pull""#
            ),
        )],
        body: Vec::new(),
        ..Default::default()
    };
    {
        let mut routes = fake.routes.lock().unwrap();
        let manifest = routes.remove("/v2/b/img/manifests/v1").unwrap();
        routes.insert(
            "/v2/b/img/manifests/v1".into(),
            std::iter::once(challenge).chain(manifest).collect(),
        );
        routes.insert(
            "/token".into(),
            vec![ok(
                "application/json",
                br#"{"token":"t0ken","expires_in":300}"#.to_vec(),
            )],
        );
    }
    lab.cmd(&["pull", &fake.name("b/img:v1")]).expect_code(0);
    let seen = fake.seen();
    let tokens: Vec<&Seen> = seen
        .iter()
        .filter(|s| s.path.starts_with("/token"))
        .collect();
    assert_eq!(
        tokens.len(),
        1,
        "one token for the scope, then cached: {seen:?}"
    );
    assert!(
        tokens[0].path.contains("service=fake-registry"),
        "{}",
        tokens[0].path
    );
    assert!(
        tokens[0].path.contains("scope=repository%3Ab%2Fimg%3Apull"),
        "{}",
        tokens[0].path
    );
    assert_eq!(tokens[0].authorization, None, "anonymous without a login");
    let after: Vec<&Seen> = seen
        .iter()
        .skip_while(|s| !s.path.starts_with("/token"))
        .skip(1)
        .collect();
    assert!(
        after.len() >= 3,
        "manifest, config and layer after the token: {seen:?}"
    );
    for s in after {
        assert_eq!(
            s.authorization.as_deref(),
            Some("Bearer t0ken"),
            "{}",
            s.path
        );
    }
}

#[test]
fn too_many_requests_waits_as_retry_after_says_then_goes_on() {
    let lab = Lab::new();
    let fake = Fake::start();
    let (_, _, l) = image();
    let slow_down = Answer {
        status: 429,
        headers: vec![("Retry-After".into(), "1".into())],
        body: Vec::new(),
        ..Default::default()
    };
    serve(
        &fake,
        "r/img",
        vec![slow_down, ok("application/octet-stream", l)],
    );
    let started = Instant::now();
    lab.cmd(&["pull", &fake.name("r/img:v1")]).expect_code(0);
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "Retry-After was not honoured"
    );
}

#[test]
fn an_endless_blob_is_cut_off_at_its_size_and_refused() {
    let lab = Lab::new();
    let fake = Fake::start();
    let (_, _, l) = image();
    let endless = Answer {
        endless: true,
        ..ok("application/octet-stream", l.clone())
    };
    serve(&fake, "e/img", vec![endless]);
    let started = Instant::now();
    let out = lab.cmd(&["pull", &fake.name("e/img:v1")]);
    out.expect_code(125);
    let took = started.elapsed();
    assert!(
        out.stderr.contains(&format!(
            "the registry sent more than the {} bytes the manifest gives: refusing it",
            l.len()
        )),
        "{}",
        out.stderr
    );
    // Refused at once (no retries of a blob that lies), long before 1 GiB went by.
    let layer_path = format!("/v2/e/img/blobs/{}", digest(&l));
    let tries = fake.seen().iter().filter(|s| s.path == layer_path).count();
    assert_eq!(tries, 1);
    assert!(took < Duration::from_secs(20), "took {took:?}");
    // Nothing is left, not even a temporary file.
    assert_clean(&lab);
}

#[test]
fn a_blob_whose_size_disagrees_with_the_manifest_is_refused() {
    let fake = Fake::start();
    let (m, c, l) = image();
    // The manifest says one byte less than the registry serves (Content-Length).
    let lab = Lab::new();
    let mut short: serde_json::Value = serde_json::from_slice(&m).unwrap();
    short["layers"][0]["size"] = json!(l.len() - 1);
    serve_manifest(
        &fake,
        "s/short",
        &short,
        vec![ok("application/octet-stream", l.clone())],
    );
    let out = lab.cmd(&["pull", &fake.name("s/short:v1")]);
    out.expect_code(125);
    assert!(
        out.stderr.contains(&format!(
            "the registry sends {} bytes (Content-Length) but the manifest gives {}: refusing it",
            l.len(),
            l.len() - 1
        )),
        "{}",
        out.stderr
    );
    assert_clean(&lab);
    // One more than served: refused the same way, before a byte is stored.
    let lab = Lab::new();
    let mut long: serde_json::Value = serde_json::from_slice(&m).unwrap();
    long["layers"][0]["size"] = json!(l.len() + 1);
    serve_manifest(
        &fake,
        "s/long",
        &long,
        vec![ok("application/octet-stream", l.clone())],
    );
    let out = lab.cmd(&["pull", &fake.name("s/long:v1")]);
    out.expect_code(125);
    assert!(
        out.stderr
            .contains("(Content-Length) but the manifest gives"),
        "{}",
        out.stderr
    );
    assert_clean(&lab);
    // No size at all: nothing bounds the download, so it is not started.
    let lab = Lab::new();
    let mut none: serde_json::Value = serde_json::from_slice(&m).unwrap();
    none["layers"][0].as_object_mut().unwrap().remove("size");
    serve_manifest(
        &fake,
        "s/none",
        &none,
        vec![ok("application/octet-stream", l.clone())],
    );
    let out = lab.cmd(&["pull", &fake.name("s/none:v1")]);
    out.expect_code(125);
    assert!(out.stderr.contains("no size"), "{}", out.stderr);
    // A config larger than dockling reads is refused before it is fetched.
    let lab = Lab::new();
    let mut big: serde_json::Value = serde_json::from_slice(&m).unwrap();
    big["config"]["size"] = json!(9 << 20);
    serve_manifest(
        &fake,
        "s/config",
        &big,
        vec![ok("application/octet-stream", l)],
    );
    let out = lab.cmd(&["pull", &fake.name("s/config:v1")]);
    out.expect_code(125);
    assert!(
        out.stderr
            .contains("more than the 8388608 (8 MiB) dockling reads"),
        "{}",
        out.stderr
    );
    let config_path = format!("/v2/s/config/blobs/{}", digest(&c));
    assert!(
        !fake.seen().iter().any(|s| s.path == config_path),
        "the config was fetched"
    );
    assert_clean(&lab);
}

#[test]
fn a_huge_manifest_is_refused_by_its_length_before_it_is_read() {
    let lab = Lab::new();
    let fake = Fake::start();
    // Content-Length says 5 MiB, and the connection closes before a byte of it: reading would
    // fail with a broken transfer, so the error below shows the length was checked first.
    fake.route(
        "/v2/h/img/manifests/v1",
        vec![Answer {
            cut: Some(0),
            ..ok(OCI_MANIFEST, vec![b' '; 5 << 20])
        }],
    );
    let out = lab.cmd(&["pull", &fake.name("h/img:v1")]);
    out.expect_code(125);
    assert!(
        out.stderr
            .contains("the manifest is larger than 4194304 bytes (4 MiB, the most a registry stores): refusing it"),
        "{}",
        out.stderr
    );
}

#[test]
fn a_layer_of_an_unknown_media_type_is_refused_by_name() {
    let lab = Lab::new();
    let fake = Fake::start();
    let (m, _, l) = image();
    let mut odd: serde_json::Value = serde_json::from_slice(&m).unwrap();
    odd["layers"][0]["mediaType"] = json!("application/vnd.example.squashfs");
    serve_manifest(
        &fake,
        "u/img",
        &odd,
        vec![ok("application/octet-stream", l.clone())],
    );
    let out = lab.cmd(&["pull", &fake.name("u/img:v1")]);
    out.expect_code(125);
    assert!(
        out.stderr.contains(&format!(
            "layer {} of {} has the media type \"application/vnd.example.squashfs\", which dockling does not know how to unpack",
            digest(&l),
            fake.name("u/img:v1")
        )),
        "{}",
        out.stderr
    );
    let layer_path = format!("/v2/u/img/blobs/{}", digest(&l));
    assert!(
        !fake.seen().iter().any(|s| s.path == layer_path),
        "the layer was downloaded"
    );
    assert_clean(&lab);
    // Not an image at all (an artifact's config type): refused too, by name.
    let lab = Lab::new();
    let mut artifact: serde_json::Value = serde_json::from_slice(&m).unwrap();
    artifact["config"]["mediaType"] = json!("application/vnd.cncf.helm.config.v1+json");
    serve_manifest(
        &fake,
        "u/chart",
        &artifact,
        vec![ok("application/octet-stream", l)],
    );
    let out = lab.cmd(&["pull", &fake.name("u/chart:v1")]);
    out.expect_code(125);
    assert!(
        out.stderr.contains("is not a container image") && out.stderr.contains("helm"),
        "{}",
        out.stderr
    );
    assert_clean(&lab);
}

/// `{"auths": {key: user:password, …}}` as Docker stores it, in `home/.dockling/config.json`.
fn store_credentials(home: &std::path::Path, auths: &[(&str, &str)]) {
    let mut v = json!({"auths": {}});
    for (k, up) in auths {
        v["auths"][*k] = json!({ "auth": b64(up.as_bytes()) });
    }
    std::fs::create_dir_all(home.join(".dockling")).unwrap();
    std::fs::write(home.join(".dockling/config.json"), v.to_string()).unwrap();
}

/// Base64 as Docker writes it (standard alphabet, padded).
fn b64(data: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(data)
}

fn basic_challenge() -> Answer {
    Answer {
        status: 401,
        headers: vec![("WWW-Authenticate".into(), r#"Basic realm="fake""#.into())],
        ..Default::default()
    }
}

#[test]
fn a_push_upload_location_on_another_host_gets_no_credentials() {
    let lab = Lab::new();
    let home = tempfile::tempdir().unwrap();
    let registry = Fake::start();
    let elsewhere = Fake::start();
    // A small image of our own (the fake server keeps every upload in memory).
    let (_, _, l) = image();
    let tar = lab.dir.path().join("layer.tar");
    std::fs::write(&tar, &l).unwrap();
    let target = registry.name("p/img:v1");
    lab.cmd(&["import", tar.to_str().unwrap(), &target])
        .expect_code(0);
    let layer_head = format!("/v2/p/img/blobs/{}", digest(&l));
    // The first request is challenged (Basic), so every later one to the registry carries
    // the credentials; the upload is sent to another port on the same host.
    registry.route(
        &layer_head,
        vec![
            basic_challenge(),
            Answer {
                status: 404,
                ..Default::default()
            },
        ],
    );
    registry.route(
        "/v2/p/img/blobs/uploads/",
        vec![Answer {
            status: 202,
            headers: vec![(
                "Location".into(),
                format!("http://127.0.0.1:{}/upload/1?state=x", elsewhere.port),
            )],
            ..Default::default()
        }],
    );
    registry.route(
        "/v2/p/img/manifests/v1",
        vec![Answer {
            status: 201,
            ..Default::default()
        }],
    );
    elsewhere.route(
        "/upload/1",
        vec![Answer {
            status: 201,
            ..Default::default()
        }],
    );
    store_credentials(
        home.path(),
        &[(&format!("127.0.0.1:{}", registry.port), "student:secret")],
    );
    let out = lab.cmd_env(&["push", &target], &[("HOME", home.path().as_os_str())]);
    out.expect_code(0);
    let at_registry = registry.seen();
    let manifest_put = at_registry
        .iter()
        .find(|s| s.method == "PUT" && s.path == "/v2/p/img/manifests/v1")
        .unwrap_or_else(|| panic!("no manifest PUT: {at_registry:?}"));
    assert_eq!(
        manifest_put.authorization.as_deref(),
        Some("Basic c3R1ZGVudDpzZWNyZXQ="),
        "the registry itself gets the credentials"
    );
    let uploads = elsewhere.seen();
    // Two blobs (layer and config) were uploaded there, neither with credentials.
    assert_eq!(uploads.len(), 2, "{uploads:?}");
    for u in &uploads {
        assert_eq!(u.method, "PUT");
        assert!(
            u.path.starts_with("/upload/1?state=x&digest=sha256:"),
            "{}",
            u.path
        );
        assert_eq!(u.authorization, None, "credentials leaked to {}", u.path);
    }
}

#[test]
fn a_mirror_that_challenges_gets_its_own_credentials_never_docker_hubs() {
    let lab = Lab::new();
    let home = tempfile::tempdir().unwrap();
    let mirror = Fake::start();
    std::fs::write(
        lab.dir.path().join("config.yaml"),
        format!(
            "{}registry-mirrors:\n  - http://127.0.0.1:{}\n",
            lab.base_config(),
            mirror.port
        ),
    )
    .unwrap();
    let (m, _, l) = image();
    serve(
        &mirror,
        "library/img",
        vec![ok("application/octet-stream", l)],
    );
    {
        let mut routes = mirror.routes.lock().unwrap();
        let manifest = routes.remove("/v2/library/img/manifests/v1").unwrap();
        routes.insert(
            "/v2/library/img/manifests/v1".into(),
            std::iter::once(basic_challenge()).chain(manifest).collect(),
        );
    }
    let env = [("HOME", home.path().as_os_str())];
    // Only Docker Hub credentials stored: the mirror's challenge is not answered with them.
    store_credentials(
        home.path(),
        &[("https://index.docker.io/v1/", "hub:hubsecret")],
    );
    let out = lab.cmd_env(&["pull", "img:v1"], &env);
    // The mirror failed (it wants credentials), then Docker Hub is out of reach here.
    out.expect_code(125);
    assert!(
        out.stderr
            .contains("the registry wants a user name and password"),
        "{}",
        out.stderr
    );
    let seen = mirror.seen();
    assert!(!seen.is_empty(), "the mirror was not asked");
    assert!(
        seen.iter().all(|s| s.authorization.is_none()),
        "Docker Hub credentials went to the mirror: {seen:?}"
    );
    // With credentials for the mirror's own host, those (and only those) are sent.
    let lab2 = &lab;
    mirror.routes.lock().unwrap().insert(
        "/v2/library/img/manifests/v1".into(),
        vec![basic_challenge(), ok(OCI_MANIFEST, m)],
    );
    let before = mirror.seen().len();
    store_credentials(
        home.path(),
        &[
            ("https://index.docker.io/v1/", "hub:hubsecret"),
            (&format!("127.0.0.1:{}", mirror.port), "mirror:mirrorsecret"),
        ],
    );
    lab2.cmd_env(&["pull", "img:v1"], &env).expect_code(0);
    let mirror_auth = format!("Basic {}", b64(b"mirror:mirrorsecret"));
    let after: Vec<Seen> = mirror.seen().into_iter().skip(before).collect();
    assert!(after.len() >= 4, "{after:?}");
    for s in &after[1..] {
        assert_eq!(
            s.authorization.as_deref(),
            Some(mirror_auth.as_str()),
            "{}",
            s.path
        );
    }
}

#[test]
fn a_foreign_layer_comes_from_the_registry_never_from_its_urls() {
    let fake = Fake::start();
    let elsewhere = Fake::start();
    let (m, _, l) = image();
    let mut foreign: serde_json::Value = serde_json::from_slice(&m).unwrap();
    foreign["layers"][0]["mediaType"] =
        json!("application/vnd.docker.image.rootfs.foreign.diff.tar.gzip");
    foreign["layers"][0]["urls"] =
        json!([format!("http://127.0.0.1:{}/foreign/layer", elsewhere.port)]);
    elsewhere.route(
        "/foreign/layer",
        vec![ok("application/octet-stream", l.clone())],
    );
    // The registry holds it: pulled from there like any layer.
    let lab = Lab::new();
    serve_manifest(
        &fake,
        "f/held",
        &foreign,
        vec![ok("application/octet-stream", l.clone())],
    );
    lab.cmd(&["pull", &fake.name("f/held:v1")]).expect_code(0);
    // The registry does not hold it: a clear error, and the URL is not tried.
    let lab = Lab::new();
    serve_manifest(
        &fake,
        "f/missing",
        &foreign,
        vec![Answer {
            status: 404,
            ..Default::default()
        }],
    );
    let out = lab.cmd(&["pull", &fake.name("f/missing:v1")]);
    out.expect_code(125);
    assert!(
        out.stderr.contains(&format!(
            "layer {} is a non-distributable (application/vnd.docker.image.rootfs.foreign.diff.tar.gzip) layer the registry does not hold, and dockling never downloads layers from the URLs an image names",
            digest(&l)
        )),
        "{}",
        out.stderr
    );
    assert_clean(&lab);
    assert!(elsewhere.seen().is_empty(), "{:?}", elsewhere.seen());
}

/// A manifest may claim a layer of any size; the download of one larger than max-layer-size
/// (the bound on what it may unpack to) is refused before it starts, not after the disk filled.
#[test]
fn a_layer_larger_than_max_layer_size_is_refused_before_its_download() {
    let fake = Fake::start();
    let (m, _, l) = image();
    let lab = Lab::new();
    std::fs::write(
        lab.dir.path().join("config.yaml"),
        lab.base_config() + "max-layer-size: 1m\n",
    )
    .unwrap();
    let mut huge: serde_json::Value = serde_json::from_slice(&m).unwrap();
    huge["layers"][0]["size"] = json!(10_u64 << 40);
    serve_manifest(
        &fake,
        "h/huge",
        &huge,
        vec![ok("application/octet-stream", l.clone())],
    );
    let out = lab.cmd(&["pull", &fake.name("h/huge:v1")]);
    out.expect_code(125);
    assert!(
        out.stderr
            .contains("larger than max-layer-size (1048576 bytes)"),
        "{}",
        out.stderr
    );
    let layer_path = format!("/v2/h/huge/blobs/{}", digest(&l));
    assert!(
        !fake.seen().iter().any(|s| s.path == layer_path),
        "the layer was requested"
    );
    assert_clean(&lab);
}

#[test]
fn an_image_the_mirror_does_not_have_is_said_plainly_not_buried_under_a_dns_error() {
    let lab = Lab::new();
    let mirror = Fake::start();
    std::fs::write(
        lab.dir.path().join("config.yaml"),
        format!(
            "{}registry-mirrors:\n  - http://127.0.0.1:{}\n",
            lab.base_config(),
            mirror.port
        ),
    )
    .unwrap();
    // Docker Hub is out of reach here (no network in the test's namespace): only the mirror
    // answers, with the API's 404 (the fake server's answer for a path it has no route for).
    let plain = format!(
        "dockling: manifest for nosuchimage:latest not found: NOT_FOUND: the image or tag does not exist in the registry at http://127.0.0.1:{}",
        mirror.port
    );
    let pull = lab.cmd(&["pull", "nosuchimage"]);
    pull.expect_code(125);
    assert!(
        pull.stderr.lines().any(|l| l.starts_with(&plain)),
        "{}",
        pull.stderr
    );
    let run = lab.cmd(&["run", "--rm", "nosuchimage"]);
    run.expect_code(125);
    assert!(
        run.stderr.lines().any(|l| l.starts_with(&plain)),
        "{}",
        run.stderr
    );
    // A 404 whose body is not the API's JSON: never shown raw.
    mirror.route(
        "/v2/library/other/manifests/v1",
        vec![Answer {
            status: 404,
            headers: vec![("Content-Type".into(), "application/json".into())],
            body: br#"{"detail":"secret-ish internals","trace":[1,2,3]}"#.to_vec(),
            ..Default::default()
        }],
    );
    let raw = lab.cmd(&["pull", "other:v1"]);
    raw.expect_code(125);
    assert!(
        raw.stderr.starts_with(&format!(
            "dockling: manifest for other:v1 not found: the image or tag does not exist in the registry at http://127.0.0.1:{}",
            mirror.port
        )),
        "{}",
        raw.stderr
    );
    assert!(!raw.stderr.contains('{'), "raw JSON: {}", raw.stderr);
}
