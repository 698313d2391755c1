//! `run --network bridge` end to end: each test in a network namespace of its own
//! ([`common::NetNs`]), where `dockling0`, the veths and the containers' addresses are its
//! alone; the store (and its leases) is the test's own `Lab`.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::{wait_until, Lab, NetNs};

/// The leases of the store's default network, as `address container` lines.
fn leases(lab: &Lab) -> Vec<String> {
    let path = lab.root().join("networks/bridge/leases.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    v["leases"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(a, l)| format!("{a} {}", l["container"].as_str().unwrap()))
        .collect()
}

fn veths(ns: &NetNs) -> Vec<String> {
    ns.links()
        .into_iter()
        .filter(|l| l.starts_with("veth"))
        .collect()
}

fn ip_of(ns: &NetNs, lab: &Lab, name: &str) -> String {
    let o = ns.dockling(
        lab,
        &["inspect", "-f", "{{.NetworkSettings.IPAddress}}", name],
    );
    o.expect_code(0);
    o.stdout.trim().to_string()
}

/// A detached busybox httpd serving `text` on port 80.
fn web(ns: &NetNs, lab: &Lab, name: &str, text: &str) -> String {
    common::web(ns, lab, name, "80", text, &["--network", "bridge"])
}

/// `curl http://addr/` from the test's namespace, retried until the server answers.
fn http_get(ns: &NetNs, addr: &str) -> String {
    ns.http_get(&format!("http://{addr}/"))
}

#[test]
fn a_container_on_the_bridge_has_eth0_its_address_mac_route_and_hosts_line() {
    let ns = NetNs::new();
    let lab = Lab::with_busybox();
    let o = ns.dockling(
        &lab,
        &[
            "run",
            "--rm",
            "--network",
            "bridge",
            "--hostname",
            "box",
            "busybox",
            "sh",
            "-c",
            "ip addr show eth0; ip route; cat /etc/hosts",
        ],
    );
    o.expect_code(0);
    assert!(o.stdout.contains("inet 172.17.0.2/16"), "{}", o.stdout);
    assert!(
        o.stdout.contains("link/ether 02:42:ac:11:00:02"),
        "{}",
        o.stdout
    );
    assert!(
        o.stdout.contains("default via 172.17.0.1 dev eth0"),
        "{}",
        o.stdout
    );
    assert!(o.stdout.contains("172.17.0.2\tbox\n"), "{}", o.stdout);
    assert!(!o.stdout.contains("127.0.1.1"), "{}", o.stdout);
    // --rm: nothing of it is left, neither its veth nor its lease; the bridge stays (docker0's way).
    assert_eq!(ns.links(), ["lo", "dockling0"]);
    assert_eq!(leases(&lab), Vec::<String>::new());
    assert_eq!(lab.containers_left(), Vec::<String>::new());
}

#[test]
fn the_namespace_and_other_containers_reach_a_container_and_stop_start_keeps_its_address() {
    let ns = NetNs::new();
    let lab = Lab::with_busybox();
    let id = web(&ns, &lab, "web", "hello-from-web");
    let addr = ip_of(&ns, &lab, "web");
    assert_eq!(addr, "172.17.0.2");
    assert_eq!(http_get(&ns, &addr), "hello-from-web\n");
    let mac = ns.dockling(&lab, &["inspect", "-f", "{{.NetworkSettings.MacAddress}} {{.NetworkSettings.Networks.bridge.Gateway}} {{.HostConfig.NetworkMode}}", "web"]);
    assert_eq!(
        mac.expect_code(0).stdout.trim(),
        "02:42:ac:11:00:02 172.17.0.1 bridge"
    );
    let ps = ns.dockling(&lab, &["ps", "--format", "{{.Names}} {{.Networks}}"]);
    assert_eq!(ps.expect_code(0).stdout.trim(), "web bridge");
    // Another container reaches it through the bridge (and has an address of its own).
    let o = ns.dockling(
        &lab,
        &[
            "run",
            "--rm",
            "--network",
            "bridge",
            "busybox",
            "sh",
            "-c",
            &format!("ip -o -4 addr show eth0; wget -qO- http://{addr}/"),
        ],
    );
    o.expect_code(0);
    assert!(o.stdout.contains("inet 172.17.0.3/16"), "{}", o.stdout);
    assert!(o.stdout.contains("hello-from-web"), "{}", o.stdout);

    // Stopped, it keeps its lease (inspect shows no address, as Docker's); started again,
    // the same address, reachable again.
    ns.dockling(&lab, &["stop", "-t", "1", "web"])
        .expect_code(0);
    assert_eq!(ip_of(&ns, &lab, "web"), "");
    assert_eq!(leases(&lab), [format!("172.17.0.2 {id}")]);
    assert_eq!(
        veths(&ns),
        Vec::<String>::new(),
        "a stopped container has no veth"
    );
    ns.dockling(&lab, &["start", "web"]).expect_code(0);
    assert_eq!(ip_of(&ns, &lab, "web"), "172.17.0.2");
    let again = ns.dockling(
        &lab,
        &["exec", "web", "sh", "-c", "echo again > /www/index.html"],
    );
    again.expect_code(0);
    assert_eq!(http_get(&ns, &addr), "again\n");

    // rm gives the address back and leaves no link.
    ns.dockling(&lab, &["rm", "-f", "web"]).expect_code(0);
    wait_until(
        Duration::from_secs(10),
        "the veth of the removed container to go",
        || veths(&ns).is_empty().then_some(()),
    );
    assert_eq!(leases(&lab), Vec::<String>::new());
}

#[test]
fn fifty_concurrent_runs_get_fifty_distinct_addresses_and_leave_nothing() {
    let ns = NetNs::new();
    let lab = Lab::with_busybox();
    let ids: Vec<String> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..50)
            .map(|_| {
                s.spawn(|| {
                    let o = ns.dockling(
                        &lab,
                        &[
                            "run",
                            "-d",
                            "--network",
                            "bridge",
                            "busybox",
                            "sleep",
                            "1000",
                        ],
                    );
                    o.expect_code(0);
                    o.stdout.trim().to_string()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let addrs: BTreeSet<String> = ids.iter().map(|id| ip_of(&ns, &lab, id)).collect();
    assert_eq!(addrs.len(), 50, "distinct addresses: {addrs:?}");
    assert!(
        addrs.iter().all(|a| a.starts_with("172.17.0.")),
        "{addrs:?}"
    );
    assert_eq!(leases(&lab).len(), 50);
    assert_eq!(veths(&ns).len(), 50);
    let mut rm = vec!["rm", "-f"];
    rm.extend(ids.iter().map(String::as_str));
    ns.dockling(&lab, &rm).expect_code(0);
    wait_until(Duration::from_secs(20), "every veth to go", || {
        veths(&ns).is_empty().then_some(())
    });
    assert_eq!(leases(&lab), Vec::<String>::new());
}

/// The nf_tables rules of the test's namespace, without handles: `nft list ruleset`.
fn ruleset(ns: &NetNs) -> String {
    let out = ns
        .command("nft")
        .args(["list", "ruleset"])
        .output()
        .expect("nft (nftables) is installed: scripts/test installs it");
    assert!(out.status.success(), "nft list ruleset");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Issue 11's census: 200 runs (two at a time) on the default bridge and on a user network,
/// half of them publishing a port in NAT mode, leave no veth, no per-container rule table, no
/// lease; the bridges and their chains stay while their networks do (as docker0 and Docker's
/// chains), and `network rm` takes the user network's bridge and chains away.
#[test]
fn two_hundred_runs_leave_no_link_rule_lease_or_bridge() {
    let ns = NetNs::new();
    let lab = Lab::with_busybox();
    let o = ns.dockling(&lab, &["network", "create", "classnet"]);
    o.expect_code(0);
    let bridge = format!("br-{}", &o.stdout.trim()[..12]);
    let start = std::time::Instant::now();
    std::thread::scope(|s| {
        for t in 0..2 {
            let (ns, lab) = (&ns, &lab);
            s.spawn(move || {
                for i in 0..100 {
                    let network = if (i + t) % 2 == 0 {
                        "bridge"
                    } else {
                        "classnet"
                    };
                    let mut args = vec!["run", "--rm", "--network", network];
                    if i % 4 < 2 {
                        args.extend_from_slice(&["-p", "80", "--publish-mode", "nat"]);
                    }
                    args.extend_from_slice(&["busybox", "true"]);
                    ns.dockling(lab, &args).expect_code(0);
                }
            });
        }
    });
    println!("200 runs in {:.1} s", start.elapsed().as_secs_f64());
    // Not eventually: right after the runs (cleanup deleted each pair itself).
    let mut links = ns.links();
    links.sort();
    assert_eq!(links, [bridge.as_str(), "dockling0", "lo"]);
    assert_eq!(leases(&lab), Vec::<String>::new());
    let last: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(lab.root().join("networks/bridge/leases.json")).unwrap(),
    )
    .unwrap();
    assert!(
        last["last"].is_string(),
        "addresses were handed out: {last}"
    );
    let classnet =
        std::fs::read_to_string(lab.root().join("networks/classnet/leases.json")).unwrap();
    let v: serde_json::Value = serde_json::from_str(&classnet).unwrap();
    assert_eq!(v["leases"], serde_json::json!({}), "{classnet}");
    // The NAT runs made the bridges' chains (kept); no container's table is left.
    let rules = ruleset(&ns);
    let tables: Vec<&str> = rules.lines().filter(|l| l.starts_with("table")).collect();
    assert_eq!(tables, ["table ip dockling {"], "{rules}");
    for chain in ["guard", "post", "iso"] {
        for b in ["dockling0", bridge.as_str()] {
            assert!(rules.contains(&format!("chain {chain}-{b} {{")), "{rules}");
        }
    }
    // network rm: the bridge and its chains go.
    ns.dockling(&lab, &["network", "rm", "classnet"])
        .expect_code(0);
    let mut links = ns.links();
    links.sort();
    assert_eq!(links, ["dockling0", "lo"]);
    let rules = ruleset(&ns);
    assert!(!rules.contains(&bridge), "{rules}");
    assert!(rules.contains("chain iso-dockling0 {"), "{rules}");
}

#[test]
fn a_failed_run_leaves_no_lease_and_an_unknown_network_nothing() {
    let ns = NetNs::new();
    let lab = Lab::with_busybox();
    let o = ns.dockling(
        &lab,
        &[
            "run",
            "--name",
            "bad",
            "--network",
            "bridge",
            "busybox",
            "no-such-program",
        ],
    );
    o.expect_code(127);
    assert_eq!(lab.state("bad"), "exited 127");
    assert_eq!(
        leases(&lab),
        Vec::<String>::new(),
        "a failed start gives its address back"
    );
    assert_eq!(veths(&ns), Vec::<String>::new());
    ns.dockling(&lab, &["rm", "bad"]).expect_code(0);

    let o = ns.dockling(
        &lab,
        &["run", "--rm", "--network", "mynet", "busybox", "true"],
    );
    o.expect_code(125);
    assert!(o.stderr.contains("network mynet not found"), "{}", o.stderr);
    assert!(
        o.stderr.contains("dockling network create mynet"),
        "{}",
        o.stderr
    );
    assert_eq!(lab.containers_left(), Vec::<String>::new());
}

#[test]
fn kill_9_of_the_monitor_then_rm_leaves_nothing() {
    let ns = NetNs::new();
    let lab = Lab::with_busybox();
    let o = ns.dockling(
        &lab,
        &[
            "run",
            "-d",
            "--network",
            "bridge",
            "busybox",
            "sleep",
            "1000",
        ],
    );
    o.expect_code(0);
    let id = o.stdout.trim().to_string();
    assert_eq!(veths(&ns), [format!("veth{}", &id[..7])]);
    let monitor = lab.monitor_pid(&id);
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(monitor),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    // The container dies with its monitor (PDEATHSIG), its namespace with it, and the kernel
    // deletes the pair.
    wait_until(
        Duration::from_secs(10),
        "the veth of the dead container to go",
        || veths(&ns).is_empty().then_some(()),
    );
    assert_eq!(leases(&lab).len(), 1, "the lease stays until rm");
    ns.dockling(&lab, &["rm", &id]).expect_code(0);
    assert_eq!(leases(&lab), Vec::<String>::new());
    assert_eq!(ns.links(), ["lo", "dockling0"]);
}
