//! A tiny HTTP server on a loopback port for registry tests (`fake_registry.rs` and the
//! hostile registry cases): it answers each request from a table the test fills, so every
//! broken or malicious answer a registry could give can be served on purpose, and it records
//! what it was sent (method, path, Authorization) so a test can check what leaked.
#![allow(dead_code)]

use serde_json::json;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// One canned answer: status, headers, body; `cut` closes the connection after that many
/// body bytes (a truncated download); `endless` sends no Content-Length and, after the body,
/// zeros until the client hangs up (at most 1 GiB).
#[derive(Clone, Default)]
pub struct Answer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub cut: Option<usize>,
    pub endless: bool,
}

pub fn ok(content_type: &str, body: Vec<u8>) -> Answer {
    Answer {
        status: 200,
        headers: vec![("Content-Type".into(), content_type.into())],
        body,
        cut: None,
        endless: false,
    }
}

/// A request as the server saw it.
#[derive(Clone, Debug)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub authorization: Option<String>,
}

/// Answers by path; a list is used in order (the last one repeats).
pub struct Fake {
    pub port: u16,
    pub routes: Arc<Mutex<HashMap<String, Vec<Answer>>>>,
    pub seen: Arc<Mutex<Vec<Seen>>>,
    /// Bytes of zeros the `endless` answers got out before the client hung up.
    pub endless_sent: Arc<Mutex<u64>>,
    stop: Arc<Mutex<bool>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Fake {
    pub fn start() -> Fake {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let routes: Arc<Mutex<HashMap<String, Vec<Answer>>>> = Arc::default();
        let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
        let stop = Arc::new(Mutex::new(false));
        let endless_sent: Arc<Mutex<u64>> = Arc::default();
        let (r, s, st, es) = (
            routes.clone(),
            seen.clone(),
            stop.clone(),
            endless_sent.clone(),
        );
        let thread = std::thread::spawn(move || {
            // Bounded: at most 60 s and 500 connections, whatever the test does.
            let deadline = Instant::now() + Duration::from_secs(60);
            let mut served = 0;
            while Instant::now() < deadline && served < 500 && !*st.lock().unwrap() {
                let Ok((conn, _)) = listener.accept() else {
                    std::thread::sleep(Duration::from_millis(5));
                    continue;
                };
                served += 1;
                conn.set_nonblocking(false).unwrap();
                conn.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
                let mut reader = BufReader::new(conn.try_clone().unwrap());
                let mut line = String::new();
                if reader.read_line(&mut line).is_err() {
                    continue;
                }
                let method = line.split_whitespace().next().unwrap_or("").to_string();
                let path = line.split_whitespace().nth(1).unwrap_or("").to_string();
                let mut authorization = None;
                let mut length = 0u64;
                loop {
                    let mut h = String::new();
                    if reader.read_line(&mut h).is_err() || h.trim().is_empty() {
                        break;
                    }
                    if let Some((k, v)) = h.split_once(':') {
                        if k.eq_ignore_ascii_case("authorization") {
                            authorization = Some(v.trim().to_string());
                        }
                        if k.eq_ignore_ascii_case("content-length") {
                            length = v.trim().parse().unwrap_or(0);
                        }
                    }
                }
                // The request body (an upload) is read before answering, bounded.
                let _ = std::io::copy(
                    &mut (&mut reader).take(length.min(64 << 20)),
                    &mut std::io::sink(),
                );
                s.lock().unwrap().push(Seen {
                    method,
                    path: path.clone(),
                    authorization,
                });
                let answer = {
                    let mut routes = r.lock().unwrap();
                    let key = path.split('?').next().unwrap_or("").to_string();
                    match routes.get_mut(&key) {
                        Some(list) if list.len() > 1 => Some(list.remove(0)),
                        Some(list) => list.first().cloned(),
                        None => None,
                    }
                };
                let a = answer.unwrap_or(Answer {
                    status: 404,
                    headers: vec![("Content-Type".into(), "application/json".into())],
                    body: br#"{"errors":[{"code":"NOT_FOUND"}]}"#.to_vec(),
                    ..Default::default()
                });
                let mut conn = conn;
                let mut head = format!(
                    "HTTP/1.1 {} X\r\nConnection: close\r\nDocker-Distribution-Api-Version: registry/2.0\r\n",
                    a.status,
                );
                if !a.endless {
                    head.push_str(&format!("Content-Length: {}\r\n", a.body.len()));
                }
                for (k, v) in &a.headers {
                    head.push_str(&format!("{k}: {v}\r\n"));
                }
                head.push_str("\r\n");
                let _ = conn.write_all(head.as_bytes());
                let n = a.cut.unwrap_or(a.body.len()).min(a.body.len());
                if !line.starts_with("HEAD") {
                    let _ = conn.write_all(&a.body[..n]);
                    if a.endless {
                        let zeros = vec![0u8; 1 << 16];
                        for _ in 0..(1 << 14) {
                            if conn.write_all(&zeros).is_err() {
                                break;
                            }
                            *es.lock().unwrap() += zeros.len() as u64;
                        }
                    }
                }
                let _ = conn.flush();
                let _ = conn.shutdown(std::net::Shutdown::Both);
                let _ = reader.read(&mut [0u8; 1]);
            }
        });
        Fake {
            port,
            routes,
            seen,
            endless_sent,
            stop,
            thread: Some(thread),
        }
    }

    pub fn route(&self, path: &str, answers: Vec<Answer>) {
        self.routes
            .lock()
            .unwrap()
            .insert(path.to_string(), answers);
    }

    pub fn name(&self, repo: &str) -> String {
        format!("127.0.0.1:{}/{repo}", self.port)
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

impl Drop for Fake {
    fn drop(&mut self) {
        *self.stop.lock().unwrap() = true;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// `sha256:<hex>` of `data`.
pub fn digest(data: &[u8]) -> String {
    format!("sha256:{:x}", Sha256::digest(data))
}

/// The media type of an OCI image manifest.
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";

/// A good one-layer image, `/greeting` (`hello\n`, 0644) with `Cmd ["/greeting"]`, for this
/// machine's architecture: (manifest bytes, config bytes, layer bytes).
pub fn image() -> (Vec<u8>, Vec<u8>, Vec<u8>) {
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_ustar();
    h.set_mode(0o644);
    h.set_size(6);
    b.append_data(&mut h, "greeting", &b"hello\n"[..]).unwrap();
    let layer = b.into_inner().unwrap();
    let config = serde_json::to_vec(&json!({
        "architecture": if cfg!(target_arch = "aarch64") { "arm64" } else { "amd64" },
        "os": "linux",
        "config": {"Cmd": ["/greeting"]},
        "rootfs": {"type": "layers", "diff_ids": [digest(&layer)]},
    }))
    .unwrap();
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": digest(&config), "size": config.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": digest(&layer), "size": layer.len()}],
    }))
    .unwrap();
    (manifest, config, layer)
}

/// Serve `image()` as `repo:v1` on `fake`, with `layer_answers` for the layer blob.
pub fn serve(fake: &Fake, repo: &str, layer_answers: Vec<Answer>) -> (Vec<u8>, Vec<u8>, Vec<u8>) {
    let (m, c, l) = image();
    fake.route(
        &format!("/v2/{repo}/manifests/v1"),
        vec![ok(OCI_MANIFEST, m.clone())],
    );
    fake.route(
        &format!("/v2/{repo}/blobs/{}", digest(&c)),
        vec![ok("application/octet-stream", c.clone())],
    );
    fake.route(&format!("/v2/{repo}/blobs/{}", digest(&l)), layer_answers);
    (m, c, l)
}

/// Serve `manifest` (with the config and layer of `image()`) as `repo:v1`.
pub fn serve_manifest(fake: &Fake, repo: &str, manifest: &serde_json::Value, layer: Vec<Answer>) {
    let (_, c, l) = image();
    fake.route(
        &format!("/v2/{repo}/manifests/v1"),
        vec![ok(OCI_MANIFEST, serde_json::to_vec(manifest).unwrap())],
    );
    fake.route(
        &format!("/v2/{repo}/blobs/{}", digest(&c)),
        vec![ok("application/octet-stream", c)],
    );
    fake.route(&format!("/v2/{repo}/blobs/{}", digest(&l)), layer);
}
