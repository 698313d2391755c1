//! What goes wrong talking to a registry, by kind: the registry cannot be reached, it answers
//! with an unexpected status, it refuses our credentials, or what it sends is refused here
//! (a digest that is not one, a manifest too large, a media type dockling cannot use). Each
//! message names the operation and the object, and says what the user can do next; every one
//! exits with 125 (an engine failure, in Docker's convention) through
//! [`crate::error::Error::Registry`].
//!
//! The lab (`dockling lab`) and `dockling login` report through this type too: they are the
//! registry's other users.

use std::io;
use std::path::PathBuf;

use reqwest::StatusCode;

/// Everything that goes wrong with a registry, its credentials or the lab's own registry.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    // --- reaching the registry -------------------------------------------------------------
    /// The HTTP client could not be built (no TLS roots, say).
    #[error("http client: {0}")]
    Client(String),
    /// The registry could not be reached: name resolution, connection, TLS or a timeout.
    #[error("cannot reach the registry {registry} at {base}: {cause}: check the name, that it runs, and the network{hint}")]
    Unreachable {
        /// The registry as named in references.
        registry: String,
        /// Where it was reached.
        base: String,
        /// The last two causes reqwest gives.
        cause: String,
        /// What else can help (the lab, for Docker Hub), with a leading space, or empty.
        hint: &'static str,
    },
    /// A response body broke off while it was read.
    #[error("reading the {what}: {source}")]
    Read {
        /// What was being read (`manifest`).
        what: &'static str,
        /// The I/O error.
        #[source]
        source: io::Error,
    },

    // --- HTTP answers ----------------------------------------------------------------------
    /// 404: the manifest (tag or digest) or blob is not in the repository.
    #[error("{what} of {reference} not found: check the name and tag ({body})")]
    NotFound {
        /// What was asked for (`manifest`, `blob sha256:…`).
        what: String,
        /// The image reference.
        reference: String,
        /// The first bytes of the registry's answer.
        body: String,
    },
    /// 404 for a manifest: the registry has no such image or tag. Said plainly, as Docker's
    /// `manifest for nosuch:latest not found: manifest unknown`, with the registry's own
    /// error codes (never its raw body).
    #[error("manifest for {reference} not found{}: the image or tag does not exist in the registry at {registry}: check the name and tag", if codes.is_empty() { String::new() } else { format!(": {codes}") })]
    NoSuchImage {
        /// The image as the user named it (`nosuch:latest`).
        reference: String,
        /// Where it was asked for (`http://127.0.0.1:5000`).
        registry: String,
        /// The registry's error codes and messages (`MANIFEST_UNKNOWN: manifest unknown`),
        /// empty when its answer was not the API's JSON.
        codes: String,
    },
    /// A mirror said the image does not exist, and the registry itself could not be asked:
    /// the mirror's answer comes first, it is the one that says something.
    #[error("{not_found} ({rest})")]
    NotOnMirror {
        /// The mirror's [`RegistryError::NoSuchImage`].
        not_found: Box<RegistryError>,
        /// Why the registry itself (and other mirrors) gave no answer.
        rest: String,
    },
    /// 401 or 403 after any challenge was answered: no access with what we have.
    #[error("pull access denied for {repository}: the repository does not exist or needs `dockling login` ({status})")]
    AccessDenied {
        /// The repository, as the user named it.
        repository: String,
        /// 401 or 403.
        status: StatusCode,
    },
    /// Any other status than the one the protocol step expects.
    #[error("{what} of {reference}: the registry answered {status}: {body}")]
    Status {
        /// What was being done (`manifest`, `upload of sha256:…`).
        what: String,
        /// The image reference.
        reference: String,
        /// The status received.
        status: StatusCode,
        /// The first bytes of the registry's answer.
        body: String,
    },
    /// An upload answer without the `Location` of the next step.
    #[error("the registry answered an upload without a Location header")]
    NoUploadLocation,

    // --- authentication --------------------------------------------------------------------
    /// A `Basic` challenge, and no stored credentials to answer it.
    #[error("the registry wants a user name and password: run `dockling login <registry>` first")]
    LoginNeeded,
    /// A `Bearer` challenge without a realm to fetch a token from.
    #[error("bad Bearer challenge (no realm): {0}")]
    BadChallenge(String),
    /// A challenge of a scheme dockling does not speak.
    #[error("the registry asks for an unsupported authentication: {0:?}")]
    UnsupportedChallenge(String),
    /// An https registry naming a plain-http token realm while we hold credentials.
    #[error("the registry {base} asks for your credentials to be sent to {realm}, which is not https: refusing to send them in plain text (use the registry over https, or `dockling logout` to pull anonymously)")]
    PlainTextRealm {
        /// The registry.
        base: String,
        /// The token realm it named.
        realm: String,
    },
    /// The token server could not be asked, or its answer could not be used.
    #[error("token server {realm}: {reason}")]
    TokenServer {
        /// The token realm.
        realm: String,
        /// What went wrong.
        reason: String,
    },
    /// The token server refused to hand out a token.
    #[error("the token server {realm} refused ({status}): check `dockling login`")]
    TokenRefused {
        /// The token realm.
        realm: String,
        /// Its status.
        status: StatusCode,
    },
    /// `dockling login`: the registry refused the user name and password.
    #[error("login to {registry} failed ({status}): unauthorized: incorrect username or password")]
    LoginRefused {
        /// The registry.
        registry: String,
        /// Its status.
        status: StatusCode,
    },
    /// `dockling login` was not given what it needs (the message says what to give).
    #[error("{0}")]
    LoginInput(&'static str),
    /// The terminal could not be switched to read a password without echo.
    #[error("terminal: {0}")]
    Terminal(nix::Error),

    // --- stored credentials ----------------------------------------------------------------
    /// A credential helper named in a config file could not be started.
    #[error("credential helper {program}: {source}: install it or remove \"{helper}\" from credsStore/credHelpers")]
    HelperMissing {
        /// `docker-credential-<helper>`.
        program: String,
        /// The helper's name in the config file.
        helper: String,
        /// Why it could not start.
        #[source]
        source: io::Error,
    },
    /// A credential helper could not be waited for.
    #[error("credential helper {program}: {source}")]
    HelperWait {
        /// `docker-credential-<helper>`.
        program: String,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// A credential helper ran and failed.
    #[error("credential helper {program} {action} failed: {output}")]
    HelperFailed {
        /// `docker-credential-<helper>`.
        program: String,
        /// `get`, `store` or `erase`.
        action: String,
        /// Its stdout and stderr.
        output: String,
    },
    /// dockling's credentials file cannot be parsed; it is left untouched.
    #[error("{} is not valid JSON ({reason}): fix it or move it away; it is left as it is", path.display())]
    AuthFileInvalid {
        /// The file.
        path: PathBuf,
        /// The parser's message.
        reason: String,
    },
    /// dockling's credentials file is JSON but not an object; it is left untouched.
    #[error("{} is not a JSON object: fix it or move it away; it is left as it is", path.display())]
    AuthFileNotObject {
        /// The file.
        path: PathBuf,
    },

    // --- what the registry sent -------------------------------------------------------------
    /// A manifest larger than dockling reads.
    #[error(
        "the {what} is larger than {limit} bytes (4 MiB, the most a registry stores): refusing it"
    )]
    TooLarge {
        /// `manifest`.
        what: &'static str,
        /// The limit in bytes ([`super::MAX_MANIFEST`]).
        limit: u64,
    },
    /// A digest that is not `sha256:<64 hex>` (it would become a path and a URL).
    #[error("the registry sent an invalid digest {0:?}")]
    InvalidDigest(String),
    /// A manifest fetched by digest whose bytes hash to another.
    #[error("the registry's manifest for {wanted} hashes to {got}: refusing it")]
    ManifestDigest {
        /// The digest asked for.
        wanted: String,
        /// What the bytes hash to.
        got: String,
    },
    /// A blob whose bytes hash to another digest than its descriptor's.
    #[error("blob {digest} from the registry hashes to {got}: refusing it")]
    BlobDigest {
        /// The descriptor's digest.
        digest: String,
        /// What the bytes hash to.
        got: String,
    },
    /// A blob longer than its descriptor says.
    #[error("blob {digest}: the registry sent more than the {size} bytes the manifest gives: refusing it")]
    BlobTooLong {
        /// The blob.
        digest: String,
        /// The size its descriptor gives.
        size: u64,
    },
    /// A blob whose `Content-Length` disagrees with its descriptor.
    #[error("blob {digest}: the registry sends {sent} bytes (Content-Length) but the manifest gives {size}: refusing it")]
    BlobLength {
        /// The blob.
        digest: String,
        /// The Content-Length.
        sent: u64,
        /// The size its descriptor gives.
        size: u64,
    },
    /// A blob download that broke off every time it was tried.
    #[error("downloading blob {digest} failed three times: {last}")]
    BlobRetries {
        /// The blob.
        digest: String,
        /// The last failure.
        last: String,
    },
    /// A manifest that cannot be parsed as what it says it is.
    #[error("{what}: {reason}")]
    BadManifest {
        /// `manifest of <reference>`, `index`, `manifest`.
        what: String,
        /// The parser's message.
        reason: String,
    },
    /// A Docker schema 1 manifest.
    #[error("{0} is a Docker schema 1 image, which is deprecated and not supported: push it again with a current tool")]
    Schema1(String),
    /// `Content-Type` says one manifest type, the document another.
    #[error("the registry says the manifest is {header} but it declares {declared}")]
    MediaTypeMismatch {
        /// The Content-Type header.
        header: String,
        /// The document's `mediaType`.
        declared: String,
    },
    /// A document with both `manifests` and `layers`.
    #[error("the manifest is both an index and an image manifest: refusing it")]
    Ambiguous,
    /// An index naming another index for this platform.
    #[error("an index inside an index: refusing it")]
    NestedIndex,
    /// An index without an image for this machine.
    #[error("{reference} has no image for linux/{arch}")]
    NoPlatform {
        /// The image reference.
        reference: String,
        /// Go's name for this machine's architecture.
        arch: &'static str,
    },
    /// A descriptor without a size (the size bounds the download).
    #[error(
        "the manifest gives {what} {digest} no size: refusing it (the size bounds the download)"
    )]
    NoSize {
        /// `the config`, `a layer`.
        what: &'static str,
        /// The descriptor's digest.
        digest: String,
    },
    /// An image manifest without a `layers` list.
    #[error("manifest {digest} ({media_type}) has no layers")]
    NoLayers {
        /// The manifest's digest.
        digest: String,
        /// Its media type.
        media_type: String,
    },
    /// An artifact (a Helm chart, a signature), not a container image.
    #[error("{reference} is not a container image: its config is {media_type:?}, not an image config ({expected}): it cannot be pulled or run")]
    NotAnImage {
        /// The image reference.
        reference: String,
        /// The config's media type.
        media_type: String,
        /// The config media types dockling runs.
        expected: String,
    },
    /// A config larger than dockling reads.
    #[error("the image config of {reference} is {size} bytes, more than the {limit} (8 MiB) dockling reads: refusing it")]
    ConfigTooLarge {
        /// The image reference.
        reference: String,
        /// The size the manifest gives.
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// A layer of a media type dockling does not unpack.
    #[error("layer {digest} of {reference} has the media type {media_type:?}, which dockling does not know how to unpack (it knows {known}): refusing the image")]
    UnknownLayerType {
        /// The layer.
        digest: String,
        /// The image reference.
        reference: String,
        /// Its media type.
        media_type: String,
        /// The layer media types dockling unpacks.
        known: String,
    },
    /// A config with another number of `diff_ids` than the manifest has layers.
    #[error("{layers} layers but {diff_ids} diff_ids in the config")]
    DiffIdCount {
        /// Layers in the manifest.
        layers: usize,
        /// `rootfs.diff_ids` in the config.
        diff_ids: usize,
    },
    /// A non-distributable layer the registry does not hold.
    #[error("{source}: layer {digest} is a non-distributable ({media_type}) layer the registry does not hold, and dockling never downloads layers from the URLs an image names")]
    ForeignLayer {
        /// The registry's 404.
        source: Box<RegistryError>,
        /// The layer.
        digest: String,
        /// Its media type.
        media_type: String,
    },
    /// Every source failed: the last one's error, after why each mirror was passed over.
    #[error("{last} (after {mirrors})")]
    Mirrors {
        /// The registry's own error.
        last: Box<crate::error::Error>,
        /// `mirror <url>: <error>` for each mirror, joined with `; `.
        mirrors: String,
    },
    /// A worker thread of a pull panicked (a bug).
    #[error("{0} thread panicked")]
    Panicked(&'static str),

    // --- the lab -----------------------------------------------------------------------------
    /// `--addr` is not an IP address and port.
    #[error("--addr {0}: give an IP address and port, like {default}", default = crate::lab::DEFAULT_ADDR)]
    LabAddr(String),
    /// `--addr` is not on loopback.
    #[error("--addr {0}: the lab registry listens on loopback only (127.0.0.1:PORT), so nothing outside this machine can reach it")]
    LabNotLoopback(String),
    /// Debian packages the lab needs are missing.
    #[error("the lab needs Debian packages that are not installed: {0}: install them with `apt-get install {0}`, then run `dockling lab up` again")]
    LabPackages(String),
    /// The lab runs on another address.
    #[error("the lab registry already runs on {at} (pid {pid}): run `dockling lab down` first to move it to {addr}")]
    LabElsewhere {
        /// Where it runs.
        at: String,
        /// Its pid.
        pid: i32,
        /// Where it was asked to run.
        addr: String,
    },
    /// A registry the lab did not start answers on its address.
    #[error("a registry already answers on {0}, and it is not this lab's (dockling did not start it for this store): the lab will not push into it; give the lab a free port with `dockling lab up --addr 127.0.0.1:<port>`, or stop what runs on {0}")]
    LabAddrTaken(String),
    /// `docker-registry` could not be started.
    #[error("starting {program}: {source}")]
    LabStart {
        /// The registry binary.
        program: &'static str,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// `docker-registry` exited right after it started.
    #[error("docker-registry exited ({status}) right after starting; its last words ({}):\n{tail}", log.display())]
    LabExited {
        /// Its exit status.
        status: std::process::ExitStatus,
        /// Its log file.
        log: PathBuf,
        /// The last lines of its log.
        tail: String,
    },
    /// `docker-registry` did not answer in time (it was killed).
    #[error("docker-registry did not answer on {addr} within 15 s: see {}", log.display())]
    LabTimeout {
        /// Where it should have answered.
        addr: String,
        /// Its log file.
        log: PathBuf,
    },
    /// `docker-registry` did not stop.
    #[error("the lab registry (pid {0}) did not stop after SIGKILL")]
    LabStuck(i32),
    /// A lab image could not be built.
    #[error("{0}")]
    LabImage(String),
}
