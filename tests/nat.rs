//! NAT for published ports against the real kernel (`network::nft`): the bridge's table and
//! sysctls, a container's owned table (gone when its socket closes, even by SIGKILL), and
//! the whole path end to end: a bridge, a "container" (a network namespace this test makes)
//! with a TCP server, a published port reached from the host's loopback, from the bridge's
//! address and from the container itself (hairpin). Every namespace is made by the test, on
//! a thread of its own, and dies with it.

use std::io::{BufRead, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::os::fd::{AsFd, OwnedFd};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use dockling::network::bridge::{attach, ensure_bridge, veth_name, DEFAULT_BRIDGE};
use dockling::network::ipam::Subnet;
use dockling::network::netlink::Netlink;
use dockling::network::nft::{self, PortRule, L4};
use dockling::sys::Sys;
use nix::sched::{setns, unshare, CloneFlags};

const ID: &str = "3f2a9e1b7c44aa55bb66cc77dd88ee99ff00112233445566778899aabbccddee";

fn new_netns() -> OwnedFd {
    unshare(CloneFlags::CLONE_NEWNET).expect("unshare(CLONE_NEWNET): the tests run as root");
    std::fs::File::open("/proc/thread-self/ns/net")
        .expect("/proc/thread-self/ns/net")
        .into()
}

fn in_thread(f: impl FnOnce() + Send + 'static) {
    std::thread::spawn(f).join().expect("the test thread");
}

/// `nft <args>` in the calling thread's namespace; its stdout.
fn nft(args: &[&str]) -> String {
    let out = Command::new("nft")
        .args(args)
        .output()
        .expect("nft (nftables) is installed: scripts/test installs it");
    assert!(
        out.status.success(),
        "nft {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// A listing without blank lines, handles or indentation.
fn normalise(listing: &str) -> String {
    listing
        .lines()
        .map(|l| l.split(" # ").next().unwrap().trim())
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect::<Vec<_>>()
        .join("\n")
}

fn tables() -> Vec<String> {
    nft(&["list", "tables"])
        .lines()
        .map(|l| l.trim().to_string())
        .filter(|l| !l.is_empty())
        .collect()
}

/// Wait (bounded) until no table is left: a socket's last close deletes the table it owns,
/// but while another test thread of this process is between `fork` and `execve`, its child
/// holds a copy of every descriptor, the socket too, and the close is not the last yet.
fn no_tables_left() {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let left = tables();
        if left.is_empty() {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "tables still there 10 s after their socket closed: {left:?}"
        );
        std::thread::yield_now();
    }
}

fn sysctl(bridge: &str, knob: &str) -> String {
    std::fs::read_to_string(format!("/proc/sys/net/ipv4/conf/{bridge}/{knob}"))
        .unwrap()
        .trim()
        .to_string()
}

fn rule() -> PortRule {
    PortRule {
        proto: L4::Tcp,
        host_ip: None,
        host_port: 8000,
        container_ip: Ipv4Addr::new(172, 17, 0, 2),
        container_port: 80,
    }
}

#[test]
fn the_bridge_table_and_sysctls_are_made_once_whatever_the_runs() {
    in_thread(|| {
        let _ns = new_netns();
        let sys = Sys::quiet();
        ensure_bridge(&sys, DEFAULT_BRIDGE, Subnet::DEFAULT).unwrap();
        assert_eq!(sysctl(DEFAULT_BRIDGE, "route_localnet"), "0");
        assert_eq!(sysctl(DEFAULT_BRIDGE, "forwarding"), "0");
        // With outbound NAT first, then without: the second run leaves exactly its own rules.
        let with = nft::ensure_bridge_table(&sys, DEFAULT_BRIDGE, Subnet::DEFAULT, true).unwrap();
        assert_eq!(
            normalise(&nft(&["list", "table", "ip", "dockling"])),
            normalise(&with.listing())
        );
        assert!(with.listing().contains("oifname != \"dockling0\""));
        for _ in 0..2 {
            let t = nft::ensure_bridge_table(&sys, DEFAULT_BRIDGE, Subnet::DEFAULT, false).unwrap();
            assert_eq!(
                normalise(&nft(&["list", "table", "ip", "dockling"])),
                normalise(&t.listing()),
                "run twice, the table is what one run makes"
            );
        }
        // And back on: the rebuild replaces the isolation chain's rules too (no stale drop
        // of everything leaving the bridge), and off again.
        for outbound in [true, false] {
            let t =
                nft::ensure_bridge_table(&sys, DEFAULT_BRIDGE, Subnet::DEFAULT, outbound).unwrap();
            let listed = normalise(&nft(&["list", "table", "ip", "dockling"]));
            assert_eq!(listed, normalise(&t.listing()), "outbound {outbound}");
            assert!(listed.contains("chain iso-dockling0"), "{listed}");
            assert_eq!(
                listed.contains("iifname \"dockling0\" drop"),
                !outbound,
                "{listed}"
            );
        }
        assert_eq!(tables(), ["table ip dockling"]);
        assert_eq!(sysctl(DEFAULT_BRIDGE, "route_localnet"), "1");
        assert_eq!(sysctl(DEFAULT_BRIDGE, "forwarding"), "1");
        // On that bridge only.
        assert_eq!(sysctl("all", "forwarding"), "0");
        assert_eq!(sysctl("lo", "route_localnet"), "0");
        // A prefix that ends inside a byte is masked (bitwise) before the compare.
        ensure_bridge(&sys, "dlodd0", "10.9.16.0/20".parse().unwrap()).unwrap();
        let odd = nft::ensure_bridge_table(&sys, "dlodd0", "10.9.16.0/20".parse().unwrap(), true)
            .unwrap();
        assert!(odd.listing().contains("ip saddr 10.9.16.0/20"));
        let listed = normalise(&nft(&["list", "table", "ip", "dockling"]));
        for line in normalise(&odd.listing())
            .lines()
            .filter(|l| l.contains("dlodd0"))
        {
            assert!(listed.contains(line), "{line} in\n{listed}");
        }
        // A bad name is refused before anything is sent.
        let err = nft::ensure_bridge_table(&sys, "../x", Subnet::DEFAULT, false).unwrap_err();
        assert!(err.to_string().contains("cannot name"), "{err}");
    });
}

/// The command a batch carries is a script `nft -f -` runs to the same table.
#[test]
fn the_command_of_a_batch_makes_the_same_table_with_nft() {
    in_thread(|| {
        let _ns = new_netns();
        let sys = Sys::quiet();
        ensure_bridge(&sys, "dlnft0", Subnet::DEFAULT).unwrap();
        let t = nft::ensure_bridge_table(&sys, "dlnft0", Subnet::DEFAULT, true).unwrap();
        let ours = nft(&["list", "table", "ip", "dockling"]);
        nft(&["delete", "table", "ip", "dockling"]);
        let rec = dockling::sys::record::Recorder::new();
        let rsys = Sys::new(Box::new(rec.clone()), dockling::trace::Tracer::off());
        nft::ensure_bridge_table(&rsys, "dlnft0", Subnet::DEFAULT, true).unwrap();
        let command = rec
            .calls()
            .iter()
            .find_map(|c| c.command().map(String::from))
            .unwrap();
        let script: Vec<&str> = command.lines().collect();
        assert_eq!(script[0], "nft -f - <<'EOF'");
        assert_eq!(*script.last().unwrap(), "EOF");
        let mut child = Command::new("nft")
            .args(["-f", "-"])
            .stdin(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(script[1..script.len() - 1].join("\n").as_bytes())
            .unwrap();
        assert!(child.wait().unwrap().success(), "nft -f - ran {command}");
        let theirs = nft(&["list", "table", "ip", "dockling"]);
        assert_eq!(normalise(&ours), normalise(&theirs));
        assert_eq!(normalise(&theirs), normalise(&t.listing()));
    });
}

#[test]
fn a_published_table_lives_as_long_as_its_socket() {
    in_thread(|| {
        let _ns = new_netns();
        let sys = Sys::quiet();
        let mut udp = rule();
        udp.proto = L4::Udp;
        udp.host_ip = Some(Ipv4Addr::LOCALHOST);
        udp.host_port = 5353;
        udp.container_port = 53;
        let owned = nft::publish(&sys, ID, &[rule(), udp]).unwrap();
        assert_eq!(owned.name(), "dockling-3f2a9e1b7c44");
        let listed = nft(&["list", "table", "ip", owned.name()]);
        assert_eq!(normalise(&listed), normalise(&owned.table().listing()));
        // Close-on-exec: the container's process never holds it.
        let fdinfo =
            std::fs::read_to_string(format!("/proc/thread-self/fdinfo/{}", owned.fd())).unwrap();
        let flags = fdinfo
            .lines()
            .find_map(|l| l.strip_prefix("flags:"))
            .unwrap()
            .trim();
        let flags = u32::from_str_radix(flags, 8).unwrap();
        assert_ne!(flags & libc::O_CLOEXEC as u32, 0, "{fdinfo}");
        // Another of the same name is refused while this one lives.
        assert!(nft::publish(&sys, ID, &[rule()]).is_err());
        // Closing the socket deletes it.
        owned.close(&sys);
        no_tables_left();
        // remove deletes it explicitly.
        let owned = nft::publish(&sys, ID, &[rule()]).unwrap();
        assert_eq!(tables().len(), 1);
        owned.remove(&sys).unwrap();
        // An explicit delete: gone at once, no socket close to wait for.
        assert_eq!(tables(), Vec::<String>::new());
        // A drop too.
        drop(nft::publish(&sys, ID, &[rule()]).unwrap());
        no_tables_left();
    });
}

/// The helper process of [`a_killed_owner_leaves_no_table`]: publish, say so, wait.
#[test]
fn publish_and_wait_helper() {
    if std::env::var_os("DOCKLING_NAT_HELPER").is_none() {
        return;
    }
    let sys = Sys::quiet();
    let _owned = nft::publish(&sys, ID, &[rule()]).unwrap();
    println!("published");
    std::io::stdout().flush().unwrap();
    loop {
        std::thread::park();
    }
}

#[test]
fn a_killed_owner_leaves_no_table() {
    in_thread(|| {
        let _ns = new_netns();
        // Forked from this thread, the helper is in this namespace.
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "publish_and_wait_helper", "--nocapture"])
            .env("DOCKLING_NAT_HELPER", "1")
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
        let said = lines.find(|l| {
            l.as_deref()
                .map(|l| l.contains("published"))
                .unwrap_or(true)
        });
        assert!(
            matches!(said, Some(Ok(_))),
            "the helper published: {said:?}"
        );
        assert_eq!(tables(), ["table ip dockling-3f2a9e1b7c44"]);
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(child.id() as i32),
            nix::sys::signal::SIGKILL,
        )
        .unwrap();
        let status = child.wait().unwrap();
        assert_eq!(
            std::os::unix::process::ExitStatusExt::signal(&status),
            Some(9)
        );
        let start = Instant::now();
        while !tables().is_empty() {
            assert!(
                start.elapsed() < Duration::from_secs(5),
                "the kernel deleted the killed process's table: {:?}",
                tables()
            );
            std::thread::yield_now();
        }
    });
}

/// One HTTP-ish exchange: connect, read the server's line.
fn fetch(to: SocketAddr) -> std::io::Result<String> {
    let mut s = TcpStream::connect_timeout(&to, Duration::from_secs(3))?;
    s.set_read_timeout(Some(Duration::from_secs(3)))?;
    let mut out = String::new();
    s.read_to_string(&mut out)?;
    Ok(out)
}

#[test]
fn published_ports_reach_the_container_from_loopback_the_bridge_and_itself() {
    in_thread(|| {
        let host = new_netns();
        let container = new_netns();
        setns(host.as_fd(), CloneFlags::CLONE_NEWNET).unwrap();
        let sys = Sys::quiet();
        let subnet = Subnet::DEFAULT;
        let index = ensure_bridge(&sys, DEFAULT_BRIDGE, subnet).unwrap();
        let ip = Ipv4Addr::new(172, 17, 0, 2);
        let veth = attach(
            &sys,
            DEFAULT_BRIDGE,
            index,
            ID,
            container.as_fd(),
            1,
            ip,
            subnet,
        )
        .unwrap();
        assert_eq!(veth, veth_name(ID));
        let nl = Netlink::open(&sys).unwrap();
        // A new namespace's loopback is down.
        nl.link_up("lo").unwrap();
        let vindex = nl.link_index(&veth).unwrap();
        nl.set_hairpin(&veth, vindex).unwrap();
        nl.close().unwrap();
        let link = Command::new("ip")
            .args(["-d", "-j", "link", "show", &veth])
            .output()
            .unwrap();
        let link: serde_json::Value = serde_json::from_slice(&link.stdout).unwrap();
        assert_eq!(
            link[0]["linkinfo"]["info_slave_data"]["hairpin"], true,
            "{link}"
        );

        // The container's server: port 80, one line per connection, in its namespace.
        let cns = container.try_clone().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            setns(cns.as_fd(), CloneFlags::CLONE_NEWNET).unwrap();
            let l = TcpListener::bind("0.0.0.0:80").unwrap();
            tx.send(()).unwrap();
            for c in l.incoming() {
                let mut c = c.unwrap();
                let peer = c.peer_addr().unwrap();
                let _ = writeln!(c, "hello from the container to {}", peer.ip());
            }
        });
        rx.recv().unwrap();

        let t0 = Instant::now();
        nft::ensure_bridge_table(&sys, DEFAULT_BRIDGE, subnet, false).unwrap();
        let owned = nft::publish(&sys, ID, &[rule()]).unwrap();
        eprintln!("ensure_bridge_table + publish: {:?}", t0.elapsed());

        let gateway = subnet.gateway();
        for to in [
            SocketAddr::from((Ipv4Addr::LOCALHOST, 8000)),
            SocketAddr::from((gateway, 8000)),
        ] {
            let got = fetch(to).unwrap_or_else(|e| panic!("connect {to}: {e}"));
            // Masqueraded: the container sees the bridge's address, not 127.0.0.1.
            assert_eq!(
                got,
                format!("hello from the container to {gateway}\n"),
                "{to}"
            );
        }
        // Hairpin: the container to its own published port on the gateway.
        let cns = container.try_clone().unwrap();
        let hairpin = std::thread::spawn(move || {
            setns(cns.as_fd(), CloneFlags::CLONE_NEWNET).unwrap();
            fetch(SocketAddr::from((gateway, 8000)))
        })
        .join()
        .unwrap()
        .expect("the container reaches its own published port through the host");
        assert!(hairpin.starts_with("hello from the container"), "{hairpin}");

        let entries = nft::conntrack_entries(8000).unwrap();
        assert!(
            entries
                .iter()
                .any(|e| e.contains("dst=127.0.0.1") && e.contains("src=172.17.0.2")),
            "the DNAT of 127.0.0.1:8000 is in conntrack: {entries:#?}"
        );
        // Without the table, nothing answers on 8000.
        owned.remove(&sys).unwrap();
        assert!(fetch(SocketAddr::from((Ipv4Addr::LOCALHOST, 8000))).is_err());
    });
}

/// `network rm`'s batch takes one bridge's chains away and leaves the others; run where
/// there is nothing to take (again, or without the table) it succeeds and makes nothing.
#[test]
fn a_removed_bridges_chains_go_and_the_others_stay() {
    in_thread(|| {
        let _ns = new_netns();
        let sys = Sys::quiet();
        nft::remove_bridge_chains(&sys, "dlgone0").unwrap();
        assert_eq!(
            tables(),
            Vec::<String>::new(),
            "nothing made without a table"
        );
        for b in ["dlgone0", "dlstay0"] {
            ensure_bridge(&sys, b, Subnet::DEFAULT).unwrap();
        }
        nft::ensure_bridge_table(&sys, "dlgone0", Subnet::DEFAULT, true).unwrap();
        let stay = nft::ensure_bridge_table(&sys, "dlstay0", Subnet::DEFAULT, false).unwrap();
        assert!(nft(&["list", "table", "ip", "dockling"]).contains("dlgone0"));
        for _ in 0..2 {
            nft::remove_bridge_chains(&sys, "dlgone0").unwrap();
            assert_eq!(
                normalise(&nft(&["list", "table", "ip", "dockling"])),
                normalise(&stay.listing())
            );
        }
    });
}
