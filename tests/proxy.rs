//! The port proxy against the real kernel: host ports bound by `network::ports::bind_all`, the
//! real `dockling proxy` process started by `network::proxy::spawn_with` in front of servers
//! this test runs on 127.0.0.1 (standing in for a container's address). Every test runs on a
//! thread in a network namespace of its own, made by the test, loopback up; the proxy is that
//! thread's child (PR_SET_PDEATHSIG follows the thread that started it), so the thread lives
//! until the test is done with it.

mod common;

use std::io::{Read, Write};
use std::net::{Ipv4Addr, Shutdown, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::wait_until;
use dockling::network::ports::{bind_all, parse_all, Listener};
use dockling::network::proxy::{spawn_with, ProxyChild, ProxyLog, ProxyOptions};
use dockling::sys::Sys;
use sha2::{Digest, Sha256};

const LOCAL: Ipv4Addr = Ipv4Addr::LOCALHOST;

/// Run `f` on a thread in a new network namespace with loopback up.
fn in_netns(f: impl FnOnce() + Send + 'static) {
    common::require_root();
    let t = std::thread::spawn(move || {
        nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET)
            .expect("unshare(CLONE_NEWNET): the tests run as root");
        Sys::quiet().if_up("lo").expect("loopback up");
        f()
    });
    if let Err(p) = t.join() {
        std::panic::resume_unwind(p);
    }
}

fn opts() -> ProxyOptions {
    ProxyOptions {
        exe: env!("CARGO_BIN_EXE_dockling").into(),
        ..ProxyOptions::default()
    }
}

/// Publish `spec` (its container port the test's server) and start the proxy in front of
/// 127.0.0.1.
fn publish(spec: &str, o: ProxyOptions) -> (Vec<Listener>, ProxyChild) {
    let sys = Sys::quiet();
    let ls = bind_all(&sys, &parse_all(&[spec]).unwrap()).expect("bind");
    let child = spawn_with(&sys, &ls, LOCAL, o).expect("the proxy serves");
    (ls, child)
}

fn port_of(ls: &[Listener]) -> u16 {
    ls[0].published.host.port()
}

/// A TCP server on 127.0.0.1 (a free port) that answers each connection with `reply` of what
/// it read once its client half-closed.
fn server(reply: fn(Vec<u8>) -> Vec<u8>) -> u16 {
    let l = TcpListener::bind((LOCAL, 0)).unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for c in l.incoming() {
            let Ok(mut c) = c else { continue };
            std::thread::spawn(move || {
                let mut got = Vec::new();
                if c.read_to_end(&mut got).is_ok() {
                    let _ = c.write_all(&reply(got));
                }
            });
        }
    });
    port
}

/// An echo server that answers as it reads (for transfers too big to hold twice).
fn streaming_echo() -> u16 {
    let l = TcpListener::bind((LOCAL, 0)).unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for c in l.incoming() {
            let Ok(c) = c else { continue };
            std::thread::spawn(move || {
                let mut w = c.try_clone().unwrap();
                let mut r = c;
                let _ = std::io::copy(&mut r, &mut w);
                let _ = w.shutdown(Shutdown::Write);
            });
        }
    });
    port
}

fn payload(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

#[test]
fn hundred_concurrent_connections_each_get_their_own_answer() {
    in_netns(|| {
        let backend = server(|mut got| {
            got.reverse();
            got
        });
        let (ls, _proxy) = publish(&format!("127.0.0.1::{backend}"), opts());
        let port = port_of(&ls);
        let clients: Vec<_> = (0..100u64)
            .map(|i| {
                std::thread::spawn(move || {
                    let data = payload(i, 1000 + i as usize * 37);
                    let mut c = TcpStream::connect((LOCAL, port)).unwrap();
                    c.write_all(&data).unwrap();
                    c.shutdown(Shutdown::Write).unwrap();
                    let mut back = Vec::new();
                    c.read_to_end(&mut back).unwrap();
                    let mut want = data;
                    want.reverse();
                    assert!(
                        back == want,
                        "client {i}: a wrong answer ({} bytes)",
                        back.len()
                    );
                })
            })
            .collect();
        for c in clients {
            c.join().unwrap();
        }
    });
}

fn transfer(port: u16, data: &[u8]) -> (Vec<u8>, Duration) {
    let start = Instant::now();
    let c = TcpStream::connect((LOCAL, port)).unwrap();
    let mut w = c.try_clone().unwrap();
    let owned = data.to_vec();
    let writer = std::thread::spawn(move || {
        w.write_all(&owned).unwrap();
        w.shutdown(Shutdown::Write).unwrap();
    });
    let mut back = Vec::with_capacity(data.len());
    (&c).read_to_end(&mut back).unwrap();
    writer.join().unwrap();
    (back, start.elapsed())
}

#[test]
fn twenty_megabytes_arrive_intact_both_ways() {
    in_netns(|| {
        let backend = streaming_echo();
        let (ls, _proxy) = publish(&format!("127.0.0.1::{backend}"), opts());
        let data = payload(7, 20 << 20);
        let (back, through) = transfer(port_of(&ls), &data);
        assert_eq!(back.len(), data.len());
        assert_eq!(
            Sha256::digest(&back),
            Sha256::digest(&data),
            "the bytes changed"
        );
        let (_, direct) = transfer(backend, &data);
        let mbs = |d: Duration| 2.0 * 20.0 / d.as_secs_f64();
        eprintln!(
            "20 MiB echoed: through the proxy {:.0} MiB/s, direct {:.0} MiB/s (both directions counted)",
            mbs(through),
            mbs(direct)
        );
    });
}

#[test]
fn a_half_closed_client_still_reads_the_reply() {
    in_netns(|| {
        let backend = server(|got| format!("read {} bytes, then EOF", got.len()).into_bytes());
        let (ls, _proxy) = publish(&format!("127.0.0.1::{backend}"), opts());
        let mut c = TcpStream::connect((LOCAL, port_of(&ls))).unwrap();
        c.write_all(b"hello").unwrap();
        c.shutdown(Shutdown::Write).unwrap();
        let mut reply = String::new();
        c.read_to_string(&mut reply).unwrap();
        assert_eq!(reply, "read 5 bytes, then EOF");
    });
}

#[test]
fn udp_round_trips_per_client() {
    in_netns(|| {
        let echo = UdpSocket::bind((LOCAL, 0)).unwrap();
        let backend = echo.local_addr().unwrap().port();
        std::thread::spawn(move || {
            let mut buf = [0u8; 2048];
            while let Ok((n, from)) = echo.recv_from(&mut buf) {
                let mut r = b"echo:".to_vec();
                r.extend_from_slice(&buf[..n]);
                let _ = echo.send_to(&r, from);
            }
        });
        let (ls, _proxy) = publish(&format!("127.0.0.1::{backend}/udp"), opts());
        let to: SocketAddr = (LOCAL, port_of(&ls)).into();
        for name in ["one", "two"] {
            let c = UdpSocket::bind((LOCAL, 0)).unwrap();
            c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            c.send_to(name.as_bytes(), to).unwrap();
            let mut buf = [0u8; 2048];
            let (n, from) = c.recv_from(&mut buf).expect("a reply through the proxy");
            assert_eq!(&buf[..n], format!("echo:{name}").as_bytes());
            assert_eq!(from, to, "the reply comes from the published port");
        }
    });
}

#[test]
fn a_port_in_use_is_an_error_before_anything_and_nothing_stays_bound() {
    in_netns(|| {
        let taken = TcpListener::bind((LOCAL, 0)).unwrap();
        let busy = taken.local_addr().unwrap().port();
        let free = TcpListener::bind((LOCAL, 0))
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let specs = [
            format!("127.0.0.1:{free}:80"),
            format!("127.0.0.1:{busy}:80"),
        ];
        let err = bind_all(&Sys::quiet(), &parse_all(&specs).unwrap()).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("port {busy} on 127.0.0.1 is already in use by another program: publish on another host port (-p 127.0.0.1:{}:80) or stop that program", busy + 1)
        );
        assert_eq!(dockling::error::Error::from(err).exit_code(), 125);
        // The first port, bound before the failure, was let go. (Waited for: another test of
        // this process may fork a proxy at this moment, and its child holds a copy of every
        // descriptor, this one too, until its exec closes them.)
        wait_until(
            Duration::from_secs(5),
            "the first port to be free again",
            || TcpListener::bind((LOCAL, free)).ok(),
        );
    });
}

#[test]
fn a_refused_connect_to_the_container_resets_the_client() {
    in_netns(|| {
        let nothing = TcpListener::bind((LOCAL, 0))
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let (ls, _proxy) = publish(&format!("127.0.0.1::{nothing}"), opts());
        let mut c = TcpStream::connect((LOCAL, port_of(&ls))).unwrap();
        let mut buf = [0u8; 16];
        let e = c.read(&mut buf).expect_err("a reset, not an orderly end");
        assert_eq!(e.kind(), std::io::ErrorKind::ConnectionReset, "{e}");
    });
}

#[test]
fn connections_beyond_the_cap_are_refused_with_a_log_line() {
    in_netns(|| {
        let backend = streaming_echo();
        let log = tempfile::NamedTempFile::new().unwrap();
        let (ls, _proxy) = publish(
            &format!("127.0.0.1::{backend}"),
            ProxyOptions {
                max_connections: 2,
                stderr: ProxyLog::To(log.reopen().unwrap().into()),
                ..opts()
            },
        );
        let port = port_of(&ls);
        let open: Vec<TcpStream> = (0..2)
            .map(|_| {
                let mut c = TcpStream::connect((LOCAL, port)).unwrap();
                c.write_all(b"x").unwrap();
                let mut b = [0u8; 1];
                c.read_exact(&mut b).expect("carried while under the cap");
                c
            })
            .collect();
        let mut third = TcpStream::connect((LOCAL, port)).unwrap();
        let mut b = [0u8; 1];
        let _ = third.write_all(b"x");
        assert!(
            !matches!(third.read(&mut b), Ok(1)),
            "a third connection was carried past the cap of 2"
        );
        let text = wait_until(Duration::from_secs(10), "the refusal on stderr", || {
            let t = std::fs::read_to_string(log.path()).unwrap();
            t.contains("refused a connection").then_some(t)
        });
        assert!(
            text.contains(&format!(
                "to 127.0.0.1:{port}: 2 connections are open already (the limit)"
            )),
            "{text}"
        );
        // Below the cap again, a new connection is carried.
        drop(open);
        wait_until(
            Duration::from_secs(10),
            "a connection under the cap again",
            || {
                let mut c = TcpStream::connect((LOCAL, port)).ok()?;
                c.write_all(b"y").ok()?;
                let mut b = [0u8; 1];
                (c.read(&mut b).ok()? == 1 && &b == b"y").then_some(())
            },
        );
    });
}

/// Not a test by itself: the parent process of a proxy for
/// `the_proxy_dies_with_its_parent`, which runs this test binary again with
/// `DOCKLING_PROXY_PARENT` set (the port to publish in front of). Without it there is
/// nothing to do.
#[test]
fn helper_parent_of_a_proxy() {
    let Ok(backend) = std::env::var("DOCKLING_PROXY_PARENT") else {
        return;
    };
    let (ls, proxy) = publish(&format!("127.0.0.1::{backend}"), opts());
    println!("PROXY {} {}", proxy.pid(), port_of(&ls));
    std::io::stdout().flush().unwrap();
    // Until the test kills this process.
    loop {
        std::thread::park();
    }
}

fn gone(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        // A zombie waiting for its new parent to reap it is gone as well.
        Ok(s) => s
            .rsplit_once(')')
            .is_some_and(|(_, r)| r.trim_start().starts_with('Z')),
    }
}

#[test]
fn the_proxy_dies_with_its_parent_even_on_sigkill() {
    in_netns(|| {
        let backend = streaming_echo();
        let mut parent = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "helper_parent_of_a_proxy",
                "--nocapture",
                "--test-threads=1",
            ])
            .env("DOCKLING_PROXY_PARENT", backend.to_string())
            .stdout(Stdio::piped())
            // A proxy that outlived its parent (the bug this test is for) must not hold the
            // harness's stderr open.
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut out = std::io::BufReader::new(parent.stdout.take().unwrap());
        let mut line = String::new();
        let (pid, port) = loop {
            line.clear();
            let n = std::io::BufRead::read_line(&mut out, &mut line).unwrap();
            assert!(n > 0, "the helper ended without starting a proxy");
            // libtest has printed `test helper_parent_of_a_proxy ... ` on the same line.
            if let Some((_, rest)) = line.split_once("PROXY ") {
                let mut it = rest.split_whitespace().map(|x| x.parse::<u32>().unwrap());
                break (it.next().unwrap(), it.next().unwrap() as u16);
            }
        };
        // It serves...
        let mut c = TcpStream::connect((LOCAL, port)).unwrap();
        c.write_all(b"z").unwrap();
        let mut b = [0u8; 1];
        c.read_exact(&mut b).unwrap();
        assert!(!gone(pid));
        // ...until its parent is killed.
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(parent.id() as i32),
            nix::sys::signal::Signal::SIGKILL,
        )
        .unwrap();
        parent.wait().unwrap();
        // A killed process's leader turns zombie before its other threads let go of the
        // descriptors: wait for both, the process and its port.
        common::wait_until_else(
            Duration::from_secs(10),
            "the proxy to die with its parent, and its port to close",
            || (gone(pid) && TcpStream::connect((LOCAL, port)).is_err()).then_some(()),
            || {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid as i32),
                    nix::sys::signal::Signal::SIGKILL,
                );
            },
        );
    });
}
