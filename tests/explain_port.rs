//! `dockling explain port N`: the path of a published port, read live, and the classic
//! mistakes named; each test in a network namespace of its own ([`common::NetNs`]).

mod common;

use std::time::Duration;

use common::{wait_until, Lab, NetNs};

/// A detached busybox httpd on `listen` (`80`, `127.0.0.1:80`), with `flags` before the image.
fn web(ns: &NetNs, lab: &Lab, name: &str, listen: &str, flags: &[&str]) -> String {
    common::web(ns, lab, name, listen, "It-works", flags)
}

/// `natweb`: a web server published on host port 8001 by kernel NAT; its id.
fn nat_web(ns: &NetNs, lab: &Lab) -> String {
    web(
        ns,
        lab,
        "natweb",
        "80",
        &["-p", "8001:80", "--publish-mode", "nat"],
    )
}

/// `explain port` once its output mentions a listener (httpd may not have bound yet).
fn explain_when(ns: &NetNs, lab: &Lab, port: &str, ready: &str) -> common::Out {
    wait_until(Duration::from_secs(10), "httpd to listen", || {
        let o = ns.dockling(lab, &["explain", "port", port]);
        o.stdout.contains(ready).then_some(o)
    })
}

/// The host pid of the container's first process.
fn pid_of(lab: &Lab, name: &str) -> i32 {
    let v: serde_json::Value =
        serde_json::from_str(&lab.cmd(&["inspect", name]).expect_code(0).stdout).unwrap();
    v[0]["State"]["Pid"].as_i64().unwrap() as i32
}

/// The `dockling proxy` child of `monitor`.
fn proxy_of(monitor: i32) -> i32 {
    common::proxies_of(monitor)
        .into_iter()
        .next()
        .unwrap_or_else(|| panic!("no proxy child of {monitor}"))
}

#[test]
fn proxy_mode_shows_the_real_proxy_veth_and_listener() {
    let ns = NetNs::new();
    let lab = Lab::with_busybox();
    let id = web(&ns, &lab, "web", "80", &["-p", "8000:80"]);
    let o = explain_when(&ns, &lab, "8000", "listens on [::]:80");
    o.expect_code(0);
    let monitor = lab.monitor_pid(&id);
    let proxy = proxy_of(monitor);
    let s = &o.stdout;
    assert!(
        s.starts_with(&format!(
            "host port 8000/tcp on 0.0.0.0 is published by container web ({}), running, mode proxy\n",
            &id[..12]
        )),
        "{s}"
    );
    assert!(
        s.contains(&format!(
            "2. `dockling proxy` (pid {proxy}), started by web's monitor (pid {monitor}), listens on 0.0.0.0:8000"
        )),
        "{s}"
    );
    assert!(s.contains("3. it connects to 172.17.0.2:80, which the host routes to bridge dockling0 (172.17.0.1/16)"), "{s}");
    assert!(
        s.contains(&format!("through veth{} (the host end", &id[..7])),
        "{s}"
    );
    assert!(s.contains("eth0 (02:42:ac:11:00:02)"), "{s}");
    let pid = pid_of(&lab, "web");
    assert!(
        s.contains(&format!(
            "5. in the container, pid {pid} (httpd) listens on [::]:80"
        )),
        "{s}"
    );
    assert!(s.contains("the path is complete"), "{s}");
    let filtered = regex::Regex::new(r"pid \d+")
        .unwrap()
        .replace_all(&lab.filter(s), "pid [PID]")
        .into_owned();
    let filtered = regex::Regex::new(r"veth[0-9a-f]{7}")
        .unwrap()
        .replace_all(&filtered, "veth[ID7]")
        .into_owned();
    let filtered = regex::Regex::new(r"/proc/\d+/")
        .unwrap()
        .replace_all(&filtered, "/proc/[PID]/")
        .into_owned();
    insta::assert_snapshot!(filtered);
    ns.dockling(&lab, &["rm", "-f", "web"]).expect_code(0);
}

#[test]
fn nat_mode_shows_the_tables_rule() {
    let ns = NetNs::new();
    let lab = Lab::with_busybox();
    let id = nat_web(&ns, &lab);
    let o = explain_when(&ns, &lab, "8001", "listens on [::]:80");
    o.expect_code(0);
    let s = &o.stdout;
    assert!(
        s.contains(&format!(
            "2. the kernel's nftables table ip dockling-{} rewrites the destination to 172.17.0.2:80",
            &id[..12]
        )),
        "{s}"
    );
    assert!(
        s.contains("fib daddr type local tcp dport 8001 dnat to 172.17.0.2:80"),
        "{s}"
    );
    // A connection through the NAT is then tracked.
    assert!(
        ns.curl_once("http://127.0.0.1:8001/").is_some(),
        "curl through the NAT"
    );
    let o = ns.dockling(&lab, &["explain", "port", "8001"]);
    o.expect_stdout(0, "dport=8001");
    ns.dockling(&lab, &["rm", "-f", "natweb"]).expect_code(0);
}

#[test]
fn a_server_on_127_0_0_1_only_is_named() {
    let ns = NetNs::new();
    let lab = Lab::with_busybox();
    web(&ns, &lab, "web", "127.0.0.1:80", &["-p", "8000:80"]);
    let o = explain_when(&ns, &lab, "8000", "listens on 127.0.0.1:80");
    o.expect_code(1);
    assert!(
        o.stdout.contains("(httpd) listens on 127.0.0.1:80 inside the container: the proxy arrives on eth0 (172.17.0.2), so nothing answers; make the program listen on 0.0.0.0"),
        "{}",
        o.stdout
    );
    assert!(!o.stdout.contains("the path is complete"), "{}", o.stdout);
    ns.dockling(&lab, &["rm", "-f", "web"]).expect_code(0);
}

#[test]
fn a_stopped_publisher_is_named_with_the_start_hint() {
    let ns = NetNs::new();
    let lab = Lab::with_busybox();
    web(&ns, &lab, "web", "80", &["-p", "8000:80"]);
    ns.dockling(&lab, &["stop", "-t", "1", "web"])
        .expect_code(0);
    let o = ns.dockling(&lab, &["explain", "port", "8000"]);
    o.expect_code(1);
    assert_eq!(
        o.stdout,
        "web publishes 8000/tcp but is stopped: dockling start web\n"
    );
    ns.dockling(&lab, &["rm", "-f", "web"]).expect_code(0);
}

#[test]
fn a_port_published_on_one_address_says_which_works() {
    let ns = NetNs::new();
    let lab = Lab::with_busybox();
    web(&ns, &lab, "web", "80", &["-p", "127.0.0.1:8000:80"]);
    let o = explain_when(&ns, &lab, "8000", "listens on [::]:80");
    o.expect_stdout(0, "1. a program on the host connects to 127.0.0.1:8000: only this address works, the port is published on 127.0.0.1 alone (-p 127.0.0.1:8000:80)");
    ns.dockling(&lab, &["rm", "-f", "web"]).expect_code(0);
}

#[test]
fn nothing_published_lists_what_is() {
    let ns = NetNs::new();
    let lab = Lab::with_busybox();
    web(&ns, &lab, "web", "80", &["-p", "8000:80"]);
    let o = ns.dockling(&lab, &["explain", "port", "9000"]);
    o.expect_code(1);
    assert_eq!(
        o.stdout,
        "no container publishes host port 9000/tcp\npublished now:\n  web: 0.0.0.0:8000->80/tcp\n"
    );
    // udp is another port than tcp.
    let o = ns.dockling(&lab, &["explain", "port", "8000/udp"]);
    o.expect_code(1);
    assert!(
        o.stdout
            .starts_with("no container publishes host port 8000/udp\n"),
        "{}",
        o.stdout
    );
    ns.dockling(&lab, &["rm", "-f", "web"]).expect_code(0);
}

#[test]
fn a_bad_port_is_a_usage_error() {
    let lab = Lab::new();
    for bad in ["abc", "0", "70000", "80/sctp"] {
        let o = lab.cmd(&["explain", "port", bad]);
        o.expect_stderr(
            125,
            &format!("explain port {bad}: expected a host port such as 8000, 8000/tcp or 53/udp"),
        );
        assert_eq!(o.stdout, "");
    }
}

#[test]
fn a_dead_proxy_is_named() {
    let ns = NetNs::new();
    let lab = Lab::with_busybox();
    let id = web(&ns, &lab, "web", "80", &["-p", "8000:80"]);
    explain_when(&ns, &lab, "8000", "listens on [::]:80").expect_code(0);
    let monitor = lab.monitor_pid(&id);
    let proxy = proxy_of(monitor);
    // The test's own container's proxy, by its pid.
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(proxy),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    let o = wait_until(Duration::from_secs(10), "the proxy to be gone", || {
        let o = ns.dockling(&lab, &["explain", "port", "8000"]);
        (o.code == 1).then_some(o)
    });
    assert!(
        o.stdout.contains(&format!(
            "2. wrong: no `dockling proxy` child of web's monitor (pid {monitor}) serves tcp:0.0.0.0:8000:80: nothing accepts on 0.0.0.0:8000; dockling restart web"
        )),
        "{}",
        o.stdout
    );
    assert!(!o.stdout.contains("the path is complete"), "{}", o.stdout);
    ns.dockling(&lab, &["rm", "-f", "web"]).expect_code(0);
}

/// The netlink socket of `pid` (in its network namespace) with protocol NETLINK_NETFILTER
/// (12), as a descriptor of this process (`pidfd_getfd`: the same socket, so the same port
/// id, which is what an owner table checks).
fn steal_netfilter_socket(pid: i32) -> std::os::fd::OwnedFd {
    use std::os::fd::FromRawFd;
    let table = std::fs::read_to_string(format!("/proc/{pid}/net/netlink")).unwrap();
    let inodes: Vec<String> = table
        .lines()
        .skip(1)
        .filter_map(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            (w.len() >= 10 && w[1] == "12").then(|| w[w.len() - 1].to_string())
        })
        .collect();
    let fd = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .flatten()
        .find_map(|e| {
            let link = std::fs::read_link(e.path()).ok()?;
            let l = link.to_string_lossy();
            let ino = l.strip_prefix("socket:[")?.strip_suffix(']')?;
            inodes
                .iter()
                .any(|i| i == ino)
                .then(|| e.file_name().to_string_lossy().parse::<i32>().ok())
                .flatten()
        })
        .unwrap_or_else(|| panic!("no NETLINK_NETFILTER socket in pid {pid} ({inodes:?})"));
    // SAFETY: raw syscalls with integer arguments; each returned descriptor is new and owned
    // here.
    unsafe {
        let pidfd = libc::syscall(libc::SYS_pidfd_open, pid, 0);
        assert!(
            pidfd >= 0,
            "pidfd_open {pid}: {}",
            std::io::Error::last_os_error()
        );
        let pidfd = std::os::fd::OwnedFd::from_raw_fd(pidfd as i32);
        let got = libc::syscall(
            libc::SYS_pidfd_getfd,
            std::os::fd::AsRawFd::as_raw_fd(&pidfd),
            fd,
            0,
        );
        assert!(got >= 0, "pidfd_getfd: {}", std::io::Error::last_os_error());
        std::os::fd::OwnedFd::from_raw_fd(got as i32)
    }
}

/// NAT mode, its table deleted under the running container (by its owner's own socket, taken
/// from the monitor: nobody else may delete an owner table): `explain port` names the missing
/// table with the restart hint and exits 1.
#[test]
fn a_nat_table_gone_is_named() {
    let ns = NetNs::new();
    let lab = Lab::with_busybox();
    let id = nat_web(&ns, &lab);
    explain_when(&ns, &lab, "8001", "listens on [::]:80").expect_code(0);
    let table = format!("dockling-{}", &id[..12]);
    let sock = steal_netfilter_socket(lab.monitor_pid(&id));
    dockling::network::nft::delete_table_on(
        &dockling::sys::Sys::quiet(),
        std::os::fd::AsRawFd::as_raw_fd(&sock),
        1 << 20,
        &table,
    )
    .expect("the owner's socket deletes its table");
    let o = ns.dockling(&lab, &["explain", "port", "8001"]);
    o.expect_code(1);
    assert!(
        o.stdout.contains(&format!(
            "2. wrong: the kernel has no table ip {table}: no rule sends port 8001 to 172.17.0.2:80; dockling restart natweb"
        )),
        "{}",
        o.stdout
    );
    assert!(!o.stdout.contains("the path is complete"), "{}", o.stdout);
    drop(sock);
    ns.dockling(&lab, &["rm", "-f", "natweb"]).expect_code(0);
}

/// The host end of the container's veth deleted in the test's namespace (which takes its
/// eth0 with it): `explain port` names the missing veth and exits 1.
#[test]
fn a_veth_gone_is_named() {
    let ns = NetNs::new();
    let lab = Lab::with_busybox();
    let id = web(&ns, &lab, "web", "80", &["-p", "8000:80"]);
    explain_when(&ns, &lab, "8000", "listens on [::]:80").expect_code(0);
    let veth = format!("veth{}", &id[..7]);
    let out = ns
        .command("ip")
        .args(["link", "del", &veth])
        .output()
        .expect("ip is installed");
    assert!(out.status.success(), "ip link del {veth}: {out:?}");
    let o = ns.dockling(&lab, &["explain", "port", "8000"]);
    o.expect_stdout(
        1,
        &format!("4. wrong: the host end of web's veth pair, {veth}, is not there"),
    );
    assert!(!o.stdout.contains("the path is complete"), "{}", o.stdout);
    ns.dockling(&lab, &["rm", "-f", "web"]).expect_code(0);
}
