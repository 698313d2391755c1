//! Networking against the real kernel: the rtnetlink requests of `network::netlink` make a
//! bridge and a veth pair whose peer is born in another network namespace, checked with
//! `ip -j`. Every namespace here is made by the test (on a thread of its own: a network
//! namespace belongs to a thread), and dies with it, with every link in it.

use std::net::Ipv4Addr;
use std::os::fd::{AsFd, OwnedFd};
use std::process::Command;

use dockling::network::netlink::Netlink;
use dockling::sys::Sys;
use nix::sched::{setns, unshare, CloneFlags};
use serde_json::Value;

/// A new network namespace for the calling thread, and a descriptor of it.
fn new_netns() -> OwnedFd {
    unshare(CloneFlags::CLONE_NEWNET).expect("unshare(CLONE_NEWNET): the tests run as root");
    std::fs::File::open("/proc/thread-self/ns/net")
        .expect("/proc/thread-self/ns/net")
        .into()
}

/// `ip -j <args>` in the calling thread's network namespace, parsed.
fn ip_json(args: &[&str]) -> Value {
    let out = Command::new("ip")
        .arg("-j")
        .args(args)
        .output()
        .expect("ip (iproute2) is installed");
    assert!(
        out.status.success(),
        "ip -j {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("ip -j prints JSON")
}

fn link<'a>(links: &'a Value, name: &str) -> Option<&'a Value> {
    links
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["ifname"] == name)
}

fn names(links: &Value) -> Vec<String> {
    links
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["ifname"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn a_bridge_and_a_veth_into_another_namespace() {
    std::thread::spawn(|| {
        let outer = new_netns();
        let inner = new_netns();
        setns(outer.as_fd(), CloneFlags::CLONE_NEWNET).unwrap();
        let sys = Sys::quiet();

        // The host side: a bridge with an address, up.
        let nl = Netlink::open(&sys).unwrap();
        nl.create_bridge("dltest0").unwrap();
        let br = nl.link_index("dltest0").unwrap();
        nl.add_address("dltest0", br, Ipv4Addr::new(10, 200, 0, 1), 24)
            .unwrap();
        nl.link_up("dltest0").unwrap();
        // A second bridge of the same name: the kernel's EEXIST, naming the request.
        let err = nl.create_bridge("dltest0").unwrap_err().to_string();
        assert!(
            err.starts_with("netlink ip link add dltest0 type bridge: EEXIST"),
            "{err}"
        );
        // The veth pair: the host end here, eth0 born in the inner namespace.
        nl.create_veth("vethdltest", "eth0", None, inner.as_fd(), "inner")
            .unwrap();
        nl.set_master("vethdltest", "dltest0", br).unwrap();
        nl.link_up("vethdltest").unwrap();

        let links = ip_json(&["link"]);
        let bridge = link(&links, "dltest0").expect("the bridge is there");
        assert_eq!(bridge["ifindex"], br);
        assert!(
            bridge["flags"]
                .as_array()
                .unwrap()
                .iter()
                .any(|f| f == "UP"),
            "{bridge}"
        );
        let veth = link(&links, "vethdltest").expect("the host end is there");
        assert_eq!(veth["master"], "dltest0", "{veth}");
        assert!(
            link(&links, "eth0").is_none(),
            "eth0 is not on the host side"
        );
        let addrs = ip_json(&["addr", "show", "dltest0"]);
        assert_eq!(addrs[0]["addr_info"][0]["local"], "10.200.0.1");
        assert_eq!(addrs[0]["addr_info"][0]["prefixlen"], 24);

        let listener = std::net::UdpSocket::bind("10.200.0.1:0").unwrap();
        listener
            .set_read_timeout(Some(std::time::Duration::from_secs(5)))
            .unwrap();

        // The inner side, through a socket opened there.
        setns(inner.as_fd(), CloneFlags::CLONE_NEWNET).unwrap();
        let inl = Netlink::open(&sys).unwrap();
        let eth0 = inl.link_index("eth0").unwrap();
        inl.add_address("eth0", eth0, Ipv4Addr::new(10, 200, 0, 2), 24)
            .unwrap();
        inl.link_up("eth0").unwrap();
        inl.add_default_route(Ipv4Addr::new(10, 200, 0, 1)).unwrap();
        inl.close().unwrap();
        let addrs = ip_json(&["addr", "show", "eth0"]);
        assert_eq!(addrs[0]["addr_info"][0]["local"], "10.200.0.2");
        let routes = ip_json(&["route"]);
        assert!(
            routes
                .as_array()
                .unwrap()
                .iter()
                .any(|r| r["dst"] == "default" && r["gateway"] == "10.200.0.1"),
            "{routes}"
        );
        // Packets cross the pair: one datagram from eth0's address to a socket on the
        // bridge's (made in the outer namespace above), bounded in time.
        let sender = std::net::UdpSocket::bind("10.200.0.2:0").unwrap();
        sender
            .send_to(b"over the veth", listener.local_addr().unwrap())
            .unwrap();
        let mut buf = [0u8; 64];
        let (n, from) = listener
            .recv_from(&mut buf)
            .expect("the datagram crossed eth0 -> veth -> bridge within 5 s");
        assert_eq!(&buf[..n], b"over the veth");
        assert_eq!(from.ip(), Ipv4Addr::new(10, 200, 0, 2));

        // Deleting the host end deletes eth0 too.
        setns(outer.as_fd(), CloneFlags::CLONE_NEWNET).unwrap();
        nl.delete_link("vethdltest").unwrap();
        nl.delete_link("dltest0").unwrap();
        let err = nl.delete_link("dltest0").unwrap_err().to_string();
        assert!(
            err.starts_with("netlink ip link del dltest0: ENODEV"),
            "{err}"
        );
        nl.close().unwrap();
        assert_eq!(names(&ip_json(&["link"])), ["lo"]);
        setns(inner.as_fd(), CloneFlags::CLONE_NEWNET).unwrap();
        assert_eq!(names(&ip_json(&["link"])), ["lo"]);
    })
    .join()
    .expect("the test thread");
}

/// Two "containers" (network namespaces this test makes) on one bridge: addresses from the
/// IPAM, eth0 configured from inside each, a datagram from one to the other's address
/// through the bridge; the bridge made twice is one bridge; detach removes both ends.
#[test]
fn two_namespaces_on_a_bridge_reach_each_other() {
    use dockling::network::bridge::{attach, detach, ensure_bridge, DEFAULT_BRIDGE};
    use dockling::network::ipam::{self, Subnet};
    std::thread::spawn(|| {
        let store = tempfile::tempdir().unwrap();
        let leases = store.path().join("networks/bridge");
        let host = new_netns();
        let a_ns = new_netns();
        let b_ns = new_netns();
        setns(host.as_fd(), CloneFlags::CLONE_NEWNET).unwrap();
        let sys = Sys::quiet();
        let subnet = Subnet::DEFAULT;
        let index = ensure_bridge(&sys, DEFAULT_BRIDGE, subnet).unwrap();
        assert_eq!(
            ensure_bridge(&sys, DEFAULT_BRIDGE, subnet).unwrap(),
            index,
            "a second ensure finds the same bridge"
        );
        let ids = ["aaaaaaa1111", "bbbbbbb2222"];
        let mut addrs = Vec::new();
        for (id, ns) in ids.iter().zip([&a_ns, &b_ns]) {
            let addr = ipam::allocate(&leases, subnet, id, |_| true).unwrap();
            let veth =
                attach(&sys, DEFAULT_BRIDGE, index, id, ns.as_fd(), 1, addr, subnet).unwrap();
            assert_eq!(veth, format!("veth{}", &id[..7]));
            addrs.push(addr);
        }
        assert_eq!(
            addrs,
            [Ipv4Addr::new(172, 17, 0, 2), Ipv4Addr::new(172, 17, 0, 3)]
        );
        let links = ip_json(&["link"]);
        for id in ids {
            let veth = link(&links, &format!("veth{}", &id[..7])).expect("host end");
            assert_eq!(veth["master"], DEFAULT_BRIDGE);
        }
        // This thread is back in the host namespace after each attach.
        assert!(link(&links, DEFAULT_BRIDGE).is_some());

        setns(b_ns.as_fd(), CloneFlags::CLONE_NEWNET).unwrap();
        let addr = ip_json(&["addr", "show", "eth0"]);
        assert_eq!(addr[0]["addr_info"][0]["local"], "172.17.0.3");
        let listener = std::net::UdpSocket::bind("172.17.0.3:0").unwrap();
        listener
            .set_read_timeout(Some(std::time::Duration::from_secs(5)))
            .unwrap();
        setns(a_ns.as_fd(), CloneFlags::CLONE_NEWNET).unwrap();
        let sender = std::net::UdpSocket::bind("172.17.0.2:0").unwrap();
        sender
            .send_to(b"from a to b", listener.local_addr().unwrap())
            .unwrap();
        let mut buf = [0u8; 64];
        let (n, from) = listener
            .recv_from(&mut buf)
            .expect("the datagram crossed a's eth0 -> bridge -> b's eth0 within 5 s");
        assert_eq!(&buf[..n], b"from a to b");
        assert_eq!(from.ip(), Ipv4Addr::new(172, 17, 0, 2));

        setns(host.as_fd(), CloneFlags::CLONE_NEWNET).unwrap();
        for id in ids {
            detach(&sys, id).unwrap();
            detach(&sys, id).unwrap(); // already gone: done
            assert!(
                ipam::release(&leases, id).unwrap().is_some(),
                "{id} held a lease"
            );
        }
        assert_eq!(names(&ip_json(&["link"])), ["lo", DEFAULT_BRIDGE]);
        setns(a_ns.as_fd(), CloneFlags::CLONE_NEWNET).unwrap();
        assert_eq!(names(&ip_json(&["link"])), ["lo"]);
    })
    .join()
    .expect("the test thread");
}
