//! Published ports (`-p`, `-P`, `--publish-mode proxy|nat`) end to end, each test in a network
//! namespace of its own ([`common::NetNs`]): port 8000 and `dockling0` are the test's alone.

mod common;

use std::time::Duration;

use common::{wait_until, Lab, NetNs};

/// A detached busybox httpd serving `text` on port 80, with `flags` before the image.
fn web(ns: &NetNs, lab: &Lab, name: &str, text: &str, flags: &[&str]) -> String {
    common::web(ns, lab, name, "80", text, flags)
}

/// One `curl` from the test's namespace: the body, or None.
fn curl_once(ns: &NetNs, url: &str) -> Option<String> {
    ns.curl_once(url)
}

/// `curl url` retried until it answers.
fn http_get(ns: &NetNs, url: &str) -> String {
    ns.http_get(url)
}

/// Whether anything accepts a TCP connection on `addr` in the namespace (curl's exit 7 is
/// "refused"; the exit code is checked, so a missing curl is not a "closed").
fn refused(ns: &NetNs, addr: &str) -> bool {
    let out = ns
        .command("curl")
        .args(["-sS", "--max-time", "2", &format!("http://{addr}/")])
        .output()
        .expect("curl is installed");
    out.status.code() == Some(7)
}

/// The pids of `dockling proxy` processes whose parent is `ppid`.
fn proxies_of(ppid: i32) -> Vec<i32> {
    common::proxies_of(ppid)
}

fn nft_tables(ns: &NetNs) -> String {
    let out = ns
        .command("nft")
        .args(["list", "tables"])
        .output()
        .expect("nft is installed");
    assert!(out.status.success(), "nft list tables");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `wget` from another container on the bridge.
fn from_container(ns: &NetNs, lab: &Lab, url: &str) -> String {
    let o = ns.run_rm(
        lab,
        &[],
        &[
            "sh",
            "-c",
            &format!("for i in 1 2 3 4 5; do wget -qO- {url} && exit 0; sleep 1; done; exit 1"),
        ],
    );
    o.expect_code(0);
    o.stdout
}

/// Everything both modes must do: reachable on 127.0.0.1 and on the bridge's address, from
/// another container through the host, `port`, ps, inspect; stop closes it (and what
/// `gone` checks), start opens it again.
fn publishes(mode: &str, gone: impl Fn(&NetNs, &Lab, &str, i32) -> bool) {
    let ns = NetNs::new();
    let lab = Lab::with_busybox();
    let id = web(
        &ns,
        &lab,
        "web",
        "It-works",
        &["-p", "8000:80", "--publish-mode", mode],
    );
    assert_eq!(http_get(&ns, "http://127.0.0.1:8000/"), "It-works\n");
    assert_eq!(http_get(&ns, "http://172.17.0.1:8000/"), "It-works\n");
    // Another container through the host's published port (hairpin in NAT mode).
    assert_eq!(
        from_container(&ns, &lab, "http://172.17.0.1:8000/"),
        "It-works\n"
    );
    let port = ns.dockling(&lab, &["port", "web"]);
    assert_eq!(port.expect_code(0).stdout, "80/tcp -> 0.0.0.0:8000\n");
    let one = ns.dockling(&lab, &["port", "web", "80/tcp"]);
    assert_eq!(one.expect_code(0).stdout, "0.0.0.0:8000\n");
    let none = ns.dockling(&lab, &["port", "web", "81"]);
    none.expect_code(1);
    assert_eq!(
        none.stderr.trim(),
        "Error: No public port '81' published for web"
    );
    let ps = ns.dockling(&lab, &["ps", "--format", "{{.Names}} {{.Ports}}"]);
    assert_eq!(ps.expect_code(0).stdout, "web 0.0.0.0:8000->80/tcp\n");
    let ps = ns.dockling(&lab, &["ps"]);
    assert!(
        ps.expect_code(0)
            .stdout
            .contains("   0.0.0.0:8000->80/tcp   web\n"),
        "{}",
        ps.stdout
    );
    let insp = ns.dockling(&lab, &["inspect", "web"]);
    let v: serde_json::Value = serde_json::from_str(&insp.expect_code(0).stdout).unwrap();
    assert_eq!(
        v[0]["HostConfig"]["PortBindings"],
        serde_json::json!({"80/tcp": [{"HostIp": "", "HostPort": "8000"}]})
    );
    assert_eq!(
        v[0]["NetworkSettings"]["Ports"],
        serde_json::json!({"80/tcp": [{"HostIp": "0.0.0.0", "HostPort": "8000"}]})
    );
    assert_eq!(
        v[0]["Config"]["ExposedPorts"],
        serde_json::json!({"80/tcp": {}})
    );

    let monitor = lab.monitor_pid(&id);
    ns.dockling(&lab, &["stop", "-t", "1", "web"])
        .expect_code(0);
    assert!(refused(&ns, "127.0.0.1:8000"), "closed after stop");
    assert!(
        gone(&ns, &lab, &id, monitor),
        "nothing of it left after stop"
    );
    let port = ns.dockling(&lab, &["port", "web"]);
    assert_eq!(
        port.expect_code(0).stdout,
        "",
        "nothing published when stopped"
    );

    ns.dockling(&lab, &["start", "web"]).expect_code(0);
    assert_eq!(http_get(&ns, "http://127.0.0.1:8000/"), "It-works\n");

    // A monitor killed with SIGKILL takes the publishing with it.
    let monitor = lab.monitor_pid(&id);
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(monitor),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    wait_until(Duration::from_secs(10), "the publishing to go", || {
        gone(&ns, &lab, &id, monitor).then_some(())
    });
    ns.dockling(&lab, &["rm", "-f", "web"]).expect_code(0);
}

#[test]
fn proxy_mode_publishes_a_port_and_stop_closes_it() {
    publishes("proxy", |_, _, _, monitor| proxies_of(monitor).is_empty());
}

#[test]
fn nat_mode_publishes_a_port_and_stop_closes_it() {
    publishes("nat", |ns, _, id, _| {
        !nft_tables(ns).contains(&format!("dockling-{}", &id[..12]))
    });
}

#[test]
fn the_proxy_runs_as_a_child_of_the_monitor_and_nat_has_its_table() {
    let ns = NetNs::new();
    let lab = Lab::with_busybox();
    let id = web(&ns, &lab, "prox", "x", &["-p", "8000:80"]);
    http_get(&ns, "http://127.0.0.1:8000/");
    let proxies = proxies_of(lab.monitor_pid(&id));
    assert_eq!(proxies.len(), 1, "one dockling proxy under the monitor");
    let id2 = web(
        &ns,
        &lab,
        "natc",
        "y",
        &["-p", "8001:80", "--publish-mode", "nat"],
    );
    assert_eq!(http_get(&ns, "http://127.0.0.1:8001/"), "y\n");
    assert!(
        proxies_of(lab.monitor_pid(&id2)).is_empty(),
        "no proxy in NAT mode"
    );
    assert!(
        nft_tables(&ns).contains(&format!("table ip dockling-{}", &id2[..12])),
        "{}",
        nft_tables(&ns)
    );
    ns.dockling(&lab, &["rm", "-f", "prox", "natc"])
        .expect_code(0);
}

#[test]
fn publish_all_gets_a_kernel_chosen_port_that_port_prints() {
    for mode in ["proxy", "nat"] {
        let ns = NetNs::new();
        let lab = Lab::with_busybox();
        web(
            &ns,
            &lab,
            "web",
            "chosen",
            &["--expose", "80", "-P", "--publish-mode", mode],
        );
        let o = ns.dockling(&lab, &["port", "web", "80"]);
        let addr = o.expect_code(0).stdout.trim().to_string();
        let (ip, port) = addr.rsplit_once(':').unwrap();
        assert_eq!(ip, "0.0.0.0");
        let port: u16 = port.parse().unwrap();
        assert_ne!(port, 0);
        assert_eq!(
            http_get(&ns, &format!("http://127.0.0.1:{port}/")),
            "chosen\n"
        );
        ns.dockling(&lab, &["rm", "-f", "web"]).expect_code(0);
    }
}

#[test]
fn a_port_published_on_loopback_is_not_reachable_on_other_addresses() {
    for mode in ["proxy", "nat"] {
        let ns = NetNs::new();
        let lab = Lab::with_busybox();
        web(
            &ns,
            &lab,
            "web",
            "lo-only",
            &["-p", "127.0.0.1:8000:80", "--publish-mode", mode],
        );
        assert_eq!(http_get(&ns, "http://127.0.0.1:8000/"), "lo-only\n");
        assert!(
            curl_once(&ns, "http://172.17.0.1:8000/").is_none(),
            "{mode}: not on the bridge's address"
        );
        let port = ns.dockling(&lab, &["port", "web"]);
        assert_eq!(port.expect_code(0).stdout, "80/tcp -> 127.0.0.1:8000\n");
        ns.dockling(&lab, &["rm", "-f", "web"]).expect_code(0);
    }
}

#[test]
fn a_port_in_use_is_exit_125_before_anything_runs() {
    for mode in ["proxy", "nat"] {
        let ns = NetNs::new();
        let lab = Lab::with_busybox();
        let _held = ns.listen_tcp("0.0.0.0:8000");
        let o = ns.busybox(
            &lab,
            &[
                "-d",
                "--name",
                "web",
                "-p",
                "8001:80",
                "-p",
                "8000:81",
                "--publish-mode",
                mode,
            ],
            &["sleep", "60"],
        );
        o.expect_code(125);
        assert!(
            o.stderr
                .contains("port 8000 on 0.0.0.0 is already in use by another program"),
            "{mode}: {}",
            o.stderr
        );
        // Nothing runs, and 8001 (bound first) was let go again.
        let ps = ns.dockling(&lab, &["ps", "-q"]);
        assert_eq!(ps.expect_code(0).stdout, "", "{mode}: nothing running");
        let again = ns.listen_tcp("0.0.0.0:8001");
        drop(again);
        assert!(
            !nft_tables(&ns).contains("dockling-"),
            "{mode}: no table of the container"
        );
    }
}

#[test]
fn a_nat_reservation_keeps_the_port_from_every_other_program() {
    let ns = NetNs::new();
    let lab = Lab::with_busybox();
    web(
        &ns,
        &lab,
        "web",
        "first",
        &["-p", "8000:80", "--publish-mode", "nat"],
    );
    assert_eq!(http_get(&ns, "http://127.0.0.1:8000/").trim(), "first");
    // A second NAT container on the same host port is refused before it starts...
    let second = ns.busybox(
        &lab,
        &[
            "-d",
            "--name",
            "web2",
            "-p",
            "8000:80",
            "--publish-mode",
            "nat",
        ],
        &["sleep", "60"],
    );
    second.expect_stderr(
        125,
        "port 8000 on 0.0.0.0 is already in use by another program",
    );
    // ...and so is a server that sets SO_REUSEADDR (as Rust's TcpListener, nginx and python
    // do): the reservation, a socket nothing accepts on, must keep it out.
    let taken = ns.within(|| std::net::TcpListener::bind("0.0.0.0:8000").map(|_| ()));
    let err = taken.expect_err("a program could bind the port a NAT container publishes");
    assert_eq!(err.kind(), std::io::ErrorKind::AddrInUse, "{err}");
}

#[test]
fn a_hundred_concurrent_requests_through_the_proxy_all_succeed() {
    let ns = NetNs::new();
    let lab = Lab::with_busybox();
    web(&ns, &lab, "web", "many", &["-p", "8000:80"]);
    http_get(&ns, "http://127.0.0.1:8000/");
    let codes: Vec<String> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..100)
            .map(|_| {
                s.spawn(|| {
                    let out = ns
                        .command("curl")
                        .args([
                            "-s",
                            "-o",
                            "/dev/null",
                            "-w",
                            "%{http_code}",
                            "--max-time",
                            "10",
                            "http://127.0.0.1:8000/",
                        ])
                        .output()
                        .expect("curl is installed");
                    String::from_utf8_lossy(&out.stdout).into_owned()
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert!(codes.iter().all(|c| c == "200"), "{codes:?}");
    ns.dockling(&lab, &["rm", "-f", "web"]).expect_code(0);
}

#[test]
fn host_network_discards_published_ports_with_docker_warning() {
    let ns = NetNs::new();
    let lab = Lab::with_busybox();
    let o = ns.run_rm(&lab, &["--network", "host", "-p", "8000:80"], &["true"]);
    o.expect_stderr(
        0,
        "WARNING: Published ports are discarded when using host network mode",
    );
    let bad = ns.run_rm(&lab, &["-p", "8000:"], &["true"]);
    bad.expect_stderr(125, "no port specified");
    assert_eq!(lab.containers_left(), Vec::<String>::new());
}

/// UDP: the host port is held while it runs (another bind gets EADDRINUSE) and `port`
/// shows it. (The data path is not checked end to end: busybox's nc has no UDP mode and
/// busybox has no UDP server to answer.)
#[test]
fn udp_is_published_and_its_host_port_held() {
    for mode in ["proxy", "nat"] {
        let ns = NetNs::new();
        let lab = Lab::with_busybox();
        ns.run_detached(
            &lab,
            &[
                "--name",
                "udp1",
                "-p",
                "5353:53/udp",
                "--publish-mode",
                mode,
            ],
            &["sleep", "60"],
        );
        let port = ns.dockling(&lab, &["port", "udp1", "53/udp"]);
        assert_eq!(port.expect_code(0).stdout, "0.0.0.0:5353\n");
        let bind = || {
            ns.within(|| {
                std::net::UdpSocket::bind("0.0.0.0:5353")
                    .map(drop)
                    .map_err(|e| e.kind())
            })
        };
        assert_eq!(bind(), Err(std::io::ErrorKind::AddrInUse), "{mode}: held");
        ns.dockling(&lab, &["rm", "-f", "udp1"]).expect_code(0);
        assert_eq!(bind(), Ok(()), "{mode}: let go after rm");
    }
}

#[test]
fn nat_mode_takes_a_port_whose_proxy_connections_are_still_in_time_wait() {
    let ns = NetNs::new();
    let lab = Lab::with_busybox();
    web(&ns, &lab, "web", "proxied", &["-p", "8000:80"]);
    for _ in 0..3 {
        assert_eq!(http_get(&ns, "http://127.0.0.1:8000/").trim(), "proxied");
    }
    ns.dockling(&lab, &["rm", "-f", "web"]).expect_code(0);
    // The proxy closed those connections first (httpd closed its side), so the host end of
    // each sits in TIME_WAIT on port 8000 for a minute: the condition this test is about.
    let ss = ns
        .command("ss")
        .args(["-Htan", "state", "time-wait", "( sport = :8000 )"])
        .output()
        .expect("ss (iproute2) is installed");
    assert!(
        ss.status.success(),
        "{}",
        String::from_utf8_lossy(&ss.stderr)
    );
    assert!(
        !String::from_utf8_lossy(&ss.stdout).trim().is_empty(),
        "no connection of port 8000 in TIME_WAIT after the proxy served three: the test \
         cannot show what it is for"
    );
    web(
        &ns,
        &lab,
        "web2",
        "natted",
        &["-p", "8000:80", "--publish-mode", "nat"],
    );
    assert_eq!(http_get(&ns, "http://127.0.0.1:8000/").trim(), "natted");
    ns.dockling(&lab, &["rm", "-f", "web2"]).expect_code(0);
}

/// A TCP connect from inside the network namespace of process `pid` (a thread that joined
/// it), within 2 s.
fn connect_from(pid: i32, addr: &str) -> std::io::Result<std::net::TcpStream> {
    let addr: std::net::SocketAddr = addr.parse().unwrap();
    std::thread::spawn(move || {
        let ns = std::fs::File::open(format!("/proc/{pid}/ns/net"))?;
        nix::sched::setns(ns, nix::sched::CloneFlags::CLONE_NEWNET)?;
        std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(2))
    })
    .join()
    .expect("the thread in the container's namespace")
}

/// NAT mode turns `route_localnet` on for the bridge (so 127.0.0.1 may be DNATed to a
/// container): the bridge table's guard chain keeps a container from using it the other
/// way, to reach a service the host (here the test's namespace) keeps on 127.0.0.1. The
/// container's namespace is made to route 127/8 to its gateway (its own loopback address
/// gone, else the answers would be martians), as a hostile container with the right
/// capabilities could; without the guard the connection is made.
#[test]
fn a_container_cannot_reach_the_hosts_loopback_services_in_nat_mode() {
    let ns = NetNs::new();
    let lab = Lab::with_busybox();
    web(
        &ns,
        &lab,
        "web",
        "published",
        &["-p", "127.0.0.1:8000:80", "--publish-mode", "nat"],
    );
    // The published port on 127.0.0.1 works from the host.
    assert_eq!(http_get(&ns, "http://127.0.0.1:8000/"), "published\n");
    let secret = ns.listen_tcp("127.0.0.1:9000");
    let open = ns.listen_tcp("172.17.0.1:9001");
    let o = ns.dockling(&lab, &["inspect", "-f", "{{.State.Pid}}", "web"]);
    o.expect_code(0);
    let pid: i32 = o.stdout.trim().parse().unwrap();
    let o: common::Out = std::process::Command::new("nsenter")
        .arg(format!("--net=/proc/{pid}/ns/net"))
        .args([
            "sh",
            "-c",
            "ip addr del 127.0.0.1/8 dev lo \
             && echo 1 > /proc/sys/net/ipv4/conf/eth0/route_localnet \
             && ip route add 127.0.0.0/8 via 172.17.0.1 dev eth0",
        ])
        .output()
        .expect("nsenter (util-linux) is installed")
        .into();
    o.expect_code(0);
    // The way to the host is open (this is no dead container or missing route)…
    connect_from(pid, "172.17.0.1:9001").expect("a host service on the bridge's address");
    open.accept().expect("the connection arrived");
    // …but not to its loopback.
    let err = connect_from(pid, "127.0.0.1:9000")
        .expect_err("the host's 127.0.0.1:9000 reached from the container");
    assert!(
        matches!(
            err.kind(),
            std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock
        ),
        "dropped, not refused: {err}"
    );
    secret.set_nonblocking(true).unwrap();
    assert!(
        secret.accept().is_err(),
        "nothing arrived on 127.0.0.1:9000"
    );
    ns.dockling(&lab, &["rm", "-f", "web"]).expect_code(0);
}

#[test]
fn a_client_that_comes_before_the_server_listens_is_served_not_reset() {
    let ns = NetNs::new();
    let lab = Lab::with_busybox();
    // The server starts listening a moment after the container started (the `sleep` is the
    // container's, not this test's).
    ns.run_detached(&lab, &["--name", "late", "-p", "8000:80"], &["sh", "-c", "mkdir -p /www && echo late > /www/index.html && sleep 0.5 && exec httpd -f -p 80 -h /www"]);
    // One request, at once: the port is listened on before the container starts, and the
    // proxy waits for the server instead of resetting the connection.
    let out = ns
        .command("curl")
        .args(["-sS", "--max-time", "5", "http://127.0.0.1:8000/"])
        .output()
        .expect("curl is installed");
    assert!(
        out.status.success(),
        "curl: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "late");
    ns.dockling(&lab, &["rm", "-f", "late"]).expect_code(0);
}
