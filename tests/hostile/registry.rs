//! A hostile registry: answers made to climb out of the store through digests, or to fill
//! memory and disk with answers that never end. Each is refused with a clear error, nothing
//! outside the store changes (a bait directory's `tree_state`), memory use stays bounded (the
//! server counts what it got out before dockling hung up), and the store still pulls a good
//! image afterwards. Size and type lies about blobs are in `tests/fake_registry.rs`.

#[path = "../fake_server/mod.rs"]
mod fake_server;

use crate::common::{bait_dir, tree_state, Lab};
use fake_server::{image, ok, serve_manifest, Answer, Fake, OCI_MANIFEST};
use serde_json::json;
use std::time::{Duration, Instant};

const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";

/// The manifest of `image()`, to edit.
fn manifest() -> serde_json::Value {
    serde_json::from_slice(&image().0).unwrap()
}

/// Serve `manifest` with the config and layer of `image()` as `repo:v1`.
fn serve(fake: &Fake, repo: &str, manifest: &serde_json::Value) {
    let layer = ok("application/octet-stream", image().2);
    serve_manifest(fake, repo, manifest, vec![layer]);
}

/// The store works after a hostile answer: a good image pulls and is listed.
fn store_still_works(lab: &Lab, fake: &Fake) {
    serve(fake, "good/img", &manifest());
    lab.cmd(&["pull", &fake.name("good/img:v1")]).expect_code(0);
    let listed = lab.cmd(&["images", "-q"]);
    listed.expect_code(0);
    assert_eq!(listed.stdout.lines().count(), 1, "{}", listed.stdout);
}

/// `sha256:` followed by enough `../` to climb from the store's blob directory to `/`, then
/// `target` (absolute): where a digest used as a file name would land.
fn climbing_digest(lab: &Lab, target: &std::path::Path) -> String {
    let blobs = lab.root().join("oci/blobs/sha256");
    let depth = blobs.components().count();
    format!(
        "sha256:{}{}",
        "../".repeat(depth),
        target.strip_prefix("/").unwrap().display()
    )
}

#[test]
fn registry_a_config_digest_that_climbs_out_of_the_store_is_refused() {
    let lab = Lab::new();
    let bait = bait_dir();
    let before = tree_state(bait.path());
    let fake = Fake::start();
    let mut manifest = manifest();
    manifest["config"]["digest"] = json!(climbing_digest(&lab, &bait.path().join("file")));
    serve(&fake, "evil/config", &manifest);
    let out = lab.cmd(&["pull", &fake.name("evil/config:v1")]);
    out.expect_code(125);
    assert!(
        out.stderr.contains("the registry sent an invalid digest"),
        "{}",
        out.stderr
    );
    assert_eq!(tree_state(bait.path()), before);
    store_still_works(&lab, &fake);
}

#[test]
fn registry_an_index_entry_that_climbs_out_of_the_store_is_refused() {
    let lab = Lab::new();
    let bait = bait_dir();
    let before = tree_state(bait.path());
    let fake = Fake::start();
    let arch = if cfg!(target_arch = "aarch64") {
        "arm64"
    } else {
        "amd64"
    };
    let index = json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [{
            "mediaType": OCI_MANIFEST,
            "digest": climbing_digest(&lab, &bait.path().join("sub/passwd")),
            "size": 1,
            "platform": {"os": "linux", "architecture": arch},
        }],
    });
    fake.route(
        "/v2/evil/index/manifests/v1",
        vec![ok(OCI_INDEX, serde_json::to_vec(&index).unwrap())],
    );
    let out = lab.cmd(&["pull", &fake.name("evil/index:v1")]);
    out.expect_code(125);
    assert!(
        out.stderr.contains("the registry sent an invalid digest"),
        "{}",
        out.stderr
    );
    // Refused before it was asked for: only the index was requested.
    let asked: Vec<String> = fake.seen().into_iter().map(|s| s.path).collect();
    assert_eq!(asked, ["/v2/evil/index/manifests/v1"]);
    assert_eq!(tree_state(bait.path()), before);
    store_still_works(&lab, &fake);
}

#[test]
fn registry_an_error_page_without_end_is_not_read_to_its_end() {
    let lab = Lab::new();
    let fake = Fake::start();
    fake.route(
        "/v2/evil/errors/manifests/v1",
        vec![Answer {
            status: 404,
            endless: true,
            ..ok("text/html", b"<html>no such thing".to_vec())
        }],
    );
    let started = Instant::now();
    let out = lab.cmd(&["pull", &fake.name("evil/errors:v1")]);
    out.expect_code(125);
    assert!(
        out.stderr
            .contains("not found: the image or tag does not exist in the registry"),
        "{}",
        out.stderr
    );
    // Read a little, then hung up: what got out is what the sockets buffer, not the 1 GiB
    // the server was ready to send.
    let sent = *fake.endless_sent.lock().unwrap();
    assert!(
        sent < 64 << 20,
        "dockling read {sent} bytes of an error page"
    );
    assert!(started.elapsed() < Duration::from_secs(20));
    store_still_works(&lab, &fake);
}

#[test]
fn registry_a_token_answer_without_end_is_refused_at_one_mib() {
    let lab = Lab::new();
    let fake = Fake::start();
    let manifest = manifest();
    serve(&fake, "evil/token", &manifest);
    let realm = format!("http://127.0.0.1:{}/token", fake.port);
    let challenge = Answer {
        status: 401,
        headers: vec![(
            "WWW-Authenticate".into(),
            format!(r#"Bearer realm="{realm}",service="fake""#),
        )],
        ..Default::default()
    };
    {
        let mut routes = fake.routes.lock().unwrap();
        let m = routes.remove("/v2/evil/token/manifests/v1").unwrap();
        routes.insert(
            "/v2/evil/token/manifests/v1".into(),
            std::iter::once(challenge).chain(m).collect(),
        );
    }
    fake.route(
        "/token",
        vec![Answer {
            endless: true,
            ..ok("application/json", br#"{"token":""#.to_vec())
        }],
    );
    let out = lab.cmd(&["pull", &fake.name("evil/token:v1")]);
    out.expect_code(125);
    assert!(
        out.stderr.contains("the answer is larger than 1 MiB"),
        "{}",
        out.stderr
    );
    let sent = *fake.endless_sent.lock().unwrap();
    assert!(
        sent < 64 << 20,
        "dockling read {sent} bytes of a token answer"
    );
    store_still_works(&lab, &fake);
}
