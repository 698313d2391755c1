//! User networks end to end (`network create|ls|inspect|rm|prune`, `run --network NAME`,
//! names through /etc/hosts, `--ip`, `--link`, `--add-host`, `--dns`): each test in a network
//! namespace of its own ([`common::NetNs`]), with a store of its own ([`common::Lab`]).

mod common;

use std::time::Duration;

use common::{wait_until, Lab, NetNs};

/// A detached busybox httpd on `network` serving `text`, with extra `flags`.
fn web(ns: &NetNs, lab: &Lab, name: &str, network: &str, flags: &[&str], text: &str) -> String {
    let flags = [&["--network", network][..], flags].concat();
    common::web(ns, lab, name, "80", text, &flags)
}

/// `ping -c1 -W1 host` from a new container on `network`, retried until it answers (the
/// other container may still be starting); its output. (busybox's `wget` of the test image
/// crashes, so reachability is checked with ping, and HTTP with curl from the namespace.)
fn ping_by_name(ns: &NetNs, lab: &Lab, network: &str, host: &str) -> String {
    wait_until(
        Duration::from_secs(15),
        &format!("{host} to answer a ping on {network}"),
        || {
            let o = ns.run_rm(lab, &["--network", network], &["ping", "-c1", "-W1", host]);
            (o.code == 0).then(|| o.stdout.clone())
        },
    )
}

fn create(ns: &NetNs, lab: &Lab, args: &[&str]) -> String {
    common::create_network(ns, lab, args)
}

#[test]
fn create_ls_inspect_rm_print_dockers_output_and_refuse_as_docker() {
    let ns = NetNs::new();
    let lab = Lab::new();
    let id = create(&ns, &lab, &["classnet"]);
    let second = create(
        &ns,
        &lab,
        &[
            "--subnet",
            "10.10.0.0/24",
            "--gateway",
            "10.10.0.254",
            "labnet",
        ],
    );
    let third = create(&ns, &lab, &["other"]);

    // ls: Docker's columns; bridge, host and none always there.
    let o = ns.dockling(&lab, &["network", "ls"]);
    o.expect_code(0);
    insta::assert_snapshot!("network_ls", lab.filter(&o.stdout));
    let o = ns.dockling(&lab, &["network", "ls", "-q", "--filter", "name=class"]);
    o.expect_code(0);
    assert_eq!(o.stdout, format!("{}\n", &id[..12]));
    let o = ns.dockling(
        &lab,
        &["network", "ls", "--format", "{{.Name}} {{.Driver}}"],
    );
    o.expect_code(0);
    assert_eq!(
        o.stdout,
        "bridge bridge\nclassnet bridge\nhost host\nlabnet bridge\nnone null\nother bridge\n"
    );

    // inspect: automatic subnets are Docker's next free pools, after the default's.
    let subnet = |n: &str| {
        let o = ns.dockling(
            &lab,
            &[
                "network",
                "inspect",
                "-f",
                "{{range .IPAM.Config}}{{.Subnet}} {{.Gateway}}{{end}}",
                n,
            ],
        );
        o.expect_code(0);
        o.stdout.trim().to_string()
    };
    assert_eq!(subnet("classnet"), "172.18.0.0/16 172.18.0.1");
    assert_eq!(subnet("other"), "172.19.0.0/16 172.19.0.1");
    assert_eq!(subnet(&second[..12]), "10.10.0.0/24 10.10.0.254");
    let o = ns.dockling(&lab, &["network", "inspect", "classnet"]);
    o.expect_code(0);
    insta::assert_snapshot!(
        "network_inspect",
        regex_replace(
            &lab.filter(&o.stdout),
            r#""Created": "[^"]*""#,
            r#""Created": "[TIME]""#
        )
    );
    let o = ns.dockling(
        &lab,
        &[
            "inspect",
            "--type",
            "network",
            "-f",
            "{{.Name}} {{.Driver}}",
            &third,
        ],
    );
    o.expect_code(0);
    assert_eq!(o.stdout, "other bridge\n");

    // Refusals: Docker's text, exit 1, nothing made or removed.
    let o = ns.dockling(&lab, &["network", "create", "classnet"]);
    o.expect_stderr(1, "network with name classnet already exists");
    let o = ns.dockling(&lab, &["network", "create", "bad name"]);
    o.expect_stderr(1, "invalid network name");
    let o = ns.dockling(
        &lab,
        &["network", "create", "--subnet", "172.18.5.0/24", "clash"],
    );
    o.expect_stderr(1, "overlaps");
    for n in ["bridge", "host", "none"] {
        let o = ns.dockling(&lab, &["network", "rm", n]);
        o.expect_stderr(
            1,
            &format!("{n} is a pre-defined network and cannot be removed"),
        );
    }
    let o = ns.dockling(&lab, &["network", "rm", "nosuch"]);
    o.expect_stderr(1, "network nosuch not found");
    let o = ns.dockling(&lab, &["network", "ls", "-q"]);
    o.expect_code(0);
    assert_eq!(o.stdout.lines().count(), 6, "{}", o.stdout);

    // rm: the name printed, the network gone; prune takes the unused rest.
    let o = ns.dockling(&lab, &["network", "rm", "classnet"]);
    o.expect_code(0);
    assert_eq!(o.stdout, "classnet\n");
    let o = ns.dockling(&lab, &["network", "inspect", "classnet"]);
    o.expect_code(1);
    let o = ns.dockling(&lab, &["network", "prune", "-f"]);
    o.expect_code(0);
    assert_eq!(o.stdout, "Deleted Networks:\nlabnet\nother\n");
    let o = ns.dockling(&lab, &["network", "ls", "--format", "{{.Name}}"]);
    o.expect_code(0);
    assert_eq!(o.stdout, "bridge\nhost\nnone\n");
}

#[test]
fn two_containers_on_a_user_network_reach_each_other_by_name_and_alias_and_rm_takes_the_name_away()
{
    let ns = NetNs::new();
    let lab = Lab::with_busybox();
    create(&ns, &lab, &["classnet"]);
    let db = web(
        &ns,
        &lab,
        "db",
        "classnet",
        &["--network-alias", "database"],
        "from-db",
    );
    for name in ["db", "database", &db[..12]] {
        let out = ping_by_name(&ns, &lab, "classnet", name);
        assert!(out.contains(&format!("PING {name} (172.18.0.2)")), "{out}");
        assert!(out.contains("1 packets received"), "{out}");
    }

    // The bridge of the network is br- and 12 hex digits of its id.
    let id = ns.dockling(&lab, &["network", "inspect", "-f", "{{.Id}}", "classnet"]);
    id.expect_code(0);
    let bridge = format!("br-{}", &id.stdout.trim()[..12]);
    assert!(ns.links().contains(&bridge), "{:?}", ns.links());

    // inspect: the container in the network's Containers, its aliases in its endpoint.
    let o = ns.dockling(
        &lab,
        &[
            "network",
            "inspect",
            "-f",
            "{{range .Containers}}{{.Name}} {{.IPv4Address}}{{end}}",
            "classnet",
        ],
    );
    o.expect_code(0);
    assert_eq!(o.stdout.trim(), "db 172.18.0.2/16");
    let o = ns.dockling(
        &lab,
        &["inspect", "-f", "{{.HostConfig.NetworkMode}} {{.NetworkSettings.Networks.classnet.IPAddress}} {{json .NetworkSettings.Networks.classnet.Aliases}}", "db"],
    );
    o.expect_code(0);
    assert_eq!(o.stdout.trim(), r#"classnet 172.18.0.2 ["database"]"#);

    // A second member sees db in its /etc/hosts, and a member started later is seen by db.
    web(&ns, &lab, "web", "classnet", &[], "from-web");
    let hosts = |name: &str| {
        let o = ns.dockling(&lab, &["exec", name, "cat", "/etc/hosts"]);
        o.expect_code(0);
        o.stdout
    };
    assert!(
        hosts("web").contains(&format!("172.18.0.2\tdb {} database\n", &db[..12])),
        "{}",
        hosts("web")
    );
    assert!(hosts("db").contains("\tweb "), "{}", hosts("db"));

    // rm refuses while containers are on it.
    let o = ns.dockling(&lab, &["network", "rm", "classnet"]);
    o.expect_stderr(1, "error while removing network: network classnet id");
    assert!(o.stderr.contains("has active endpoints"), "{}", o.stderr);

    // After rm of db, its name is gone from web's hosts file (rewritten in place: the same
    // file web has mounted), and a lookup fails.
    ns.dockling(&lab, &["rm", "-f", "db"]).expect_code(0);
    wait_until(
        Duration::from_secs(10),
        "db to leave web's /etc/hosts",
        || (!hosts("web").contains("\tdb ")).then_some(()),
    );
    let o = ns.dockling(&lab, &["exec", "web", "ping", "-c1", "-W1", "db"]);
    assert_ne!(o.code, 0, "db still resolves: {}", o.stdout);
    assert!(o.stderr.contains("bad address"), "{}", o.stderr);

    ns.dockling(&lab, &["rm", "-f", "web"]).expect_code(0);
    ns.dockling(&lab, &["network", "rm", "classnet"])
        .expect_code(0);
    assert!(
        !ns.links().contains(&bridge),
        "network rm deletes {bridge}: {:?}",
        ns.links()
    );
}

#[test]
fn a_container_on_the_default_bridge_cannot_reach_one_on_a_user_network() {
    let ns = NetNs::new();
    let lab = Lab::with_busybox();
    create(&ns, &lab, &["classnet"]);
    web(&ns, &lab, "db", "classnet", &[], "from-db");
    // Reachable from its own network first: the check below is not a dead container.
    ping_by_name(&ns, &lab, "classnet", "172.18.0.2");
    let o = ns.run_rm(&lab, &[], &["ping", "-c1", "-W1", "172.18.0.2"]);
    assert_ne!(
        o.code, 0,
        "the default bridge reached classnet: {}",
        o.stdout
    );
    assert!(o.stdout.contains("0 packets received"), "{}", o.stdout);
    ns.dockling(&lab, &["rm", "-f", "db"]).expect_code(0);
}

#[test]
fn ip_is_honoured_on_a_user_network_and_refused_elsewhere() {
    let ns = NetNs::new();
    let lab = Lab::with_busybox();
    create(&ns, &lab, &["--subnet", "10.20.0.0/24", "classnet"]);
    let o = ns.run_rm(
        &lab,
        &["--network", "classnet", "--ip", "10.20.0.77"],
        &["ip", "-4", "addr", "show", "eth0"],
    );
    o.expect_stdout(0, "inet 10.20.0.77/24");
    let o = ns.run_rm(
        &lab,
        &["--network", "classnet", "--ip", "10.99.0.5"],
        &["true"],
    );
    o.expect_stderr(
        125,
        "no configured subnet contains the IP address 10.99.0.5",
    );
    let o = ns.run_rm(&lab, &["--ip", "172.17.0.9"], &["true"]);
    o.expect_stderr(
        125,
        "user specified IP address is supported on user defined networks only",
    );
    let o = ns.run_rm(&lab, &["--network", "nosuch"], &["true"]);
    o.expect_stderr(125, "network nosuch not found");
    let o = ns.dockling(&lab, &["ps", "-aq"]);
    o.expect_code(0);
    assert_eq!(o.stdout, "", "refused runs leave no container");
}

#[test]
fn link_alias_add_host_and_dns_land_in_the_containers_files() {
    let ns = NetNs::new();
    let lab = Lab::with_busybox();
    web(&ns, &lab, "db", "bridge", &[], "from-db");
    let o = ns.run_rm(
        &lab,
        &[
            "--link",
            "db:webdb",
            "--add-host",
            "printer:10.1.2.3",
            "--add-host",
            "gw:host-gateway",
            "--dns",
            "9.9.9.9",
            "--dns-search",
            "example.org",
            "--dns-option",
            "ndots:2",
        ],
        &[
            "sh",
            "-c",
            "cat /etc/hosts /etc/resolv.conf; ping -c1 -W1 webdb",
        ],
    );
    o.expect_stdout(0, "10.1.2.3\tprinter\n");
    assert!(o.stdout.contains("172.17.0.1\tgw\n"), "{}", o.stdout);
    assert!(o.stdout.contains("172.17.0.2\twebdb "), "{}", o.stdout);
    assert!(o.stdout.contains(" db\n"), "{}", o.stdout);
    assert!(
        o.stdout
            .contains("search example.org\nnameserver 9.9.9.9\noptions ndots:2\n"),
        "{}",
        o.stdout
    );
    assert!(o.stdout.contains("PING webdb (172.17.0.2)"), "{}", o.stdout);
    assert!(o.stdout.contains("1 packets received"), "{}", o.stdout);

    // A link to a container that does not run: Docker's refusal.
    ns.dockling(&lab, &["stop", "-t", "1", "db"]).expect_code(0);
    let o = ns.run_rm(&lab, &["--name", "web", "--link", "db:webdb"], &["true"]);
    o.expect_stderr(
        125,
        "Cannot link to a non running container: /db AS /web/webdb",
    );
    ns.dockling(&lab, &["rm", "-f", "db"]).expect_code(0);
}

#[test]
fn network_container_joins_the_other_containers_interfaces_for_run_and_exec() {
    let ns = NetNs::new();
    let lab = Lab::with_busybox();
    create(&ns, &lab, &["classnet"]);
    let db = web(&ns, &lab, "db", "classnet", &[], "from-db");
    let addrs = |args: &[&str]| {
        let o = ns.dockling(&lab, args);
        o.expect_code(0);
        // `ip -o -4 addr`: one line per address; the interface index differs in nothing.
        o.stdout
            .lines()
            .map(|l| l.split_whitespace().take(4).collect::<Vec<_>>().join(" "))
            .collect::<Vec<_>>()
    };
    let own = addrs(&["exec", "db", "ip", "-o", "-4", "addr"]);
    assert!(own.iter().any(|l| l.contains("172.18.0.2/16")), "{own:?}");
    let joined = addrs(&[
        "run",
        "--rm",
        "--network",
        "container:db",
        "busybox",
        "ip",
        "-o",
        "-4",
        "addr",
    ]);
    assert_eq!(joined, own);
    // A detached one: exec joins the same namespace; inspect says whose it is.
    ns.run_detached(
        &lab,
        &["--name", "side", "--network", "container:db"],
        &["sleep", "100"],
    );
    assert_eq!(addrs(&["exec", "side", "ip", "-o", "-4", "addr"]), own);
    let o = ns.dockling(
        &lab,
        &["inspect", "-f", "{{.HostConfig.NetworkMode}}", "side"],
    );
    o.expect_code(0);
    assert_eq!(o.stdout.trim(), format!("container:{db}"));
    // It reaches db's server on db's own loopback.
    let o = ns.dockling(
        &lab,
        &[
            "exec",
            "side",
            "sh",
            "-c",
            "echo -e 'GET / HTTP/1.0\\r\\n\\r' | nc 127.0.0.1 80",
        ],
    );
    o.expect_stdout(0, "from-db");
    ns.dockling(&lab, &["rm", "-f", "side"]).expect_code(0);
    // Refusals: Docker's texts, exit 125.
    let o = ns.run_rm(&lab, &["--network", "container:nosuch"], &["true"]);
    o.expect_stderr(125, "No such container: nosuch");
    ns.dockling(&lab, &["stop", "-t", "1", "db"]).expect_code(0);
    let o = ns.run_rm(&lab, &["--network", "container:db"], &["true"]);
    o.expect_stderr(
        125,
        "cannot join network namespace of a non running container",
    );
    ns.dockling(&lab, &["rm", "-f", "db"]).expect_code(0);
}

#[test]
fn mac_address_is_eth0s_and_refused_without_a_bridge_network() {
    let ns = NetNs::new();
    let lab = Lab::with_busybox();
    create(&ns, &lab, &["classnet"]);
    let o = ns.run_rm(
        &lab,
        &[
            "--network",
            "classnet",
            "--mac-address",
            "02:42:0A:0B:0C:0D",
        ],
        &["ip", "link", "show", "eth0"],
    );
    o.expect_stdout(0, "link/ether 02:42:0a:0b:0c:0d");
    let o = ns.run_rm(
        &lab,
        &["--network", "none", "--mac-address", "02:42:0a:0b:0c:0d"],
        &["true"],
    );
    o.expect_stderr(125, "conflicting options: mac-address and the network mode");
    let o = ns.run_rm(&lab, &["--mac-address", "zz"], &["true"]);
    o.expect_stderr(125, "is not a valid mac address");
}

#[test]
fn connect_adds_eth1_with_names_kept_across_restart_and_disconnect_takes_it_away() {
    let ns = NetNs::new();
    let lab = Lab::with_busybox();
    create(&ns, &lab, &["classnet"]);
    ns.run_detached(
        &lab,
        &["--name", "db", "--network", "classnet"],
        &["sleep", "100"],
    );
    ns.run_detached(&lab, &["--name", "app"], &["sleep", "100"]);
    let ping = |from: &str, to: &str| ns.dockling(&lab, &["exec", from, "ping", "-c1", "-W1", to]);
    let o = ping("app", "db");
    assert_ne!(o.code, 0, "app reaches db before connect: {}", o.stdout);

    let o = ns.dockling(
        &lab,
        &[
            "network",
            "connect",
            "--alias",
            "application",
            "--ip",
            "172.18.0.50",
            "classnet",
            "app",
        ],
    );
    o.expect_code(0);
    assert_eq!(o.stdout, "");
    let o = ns.dockling(
        &lab,
        &["exec", "app", "ip", "-o", "-4", "addr", "show", "eth1"],
    );
    o.expect_stdout(0, "inet 172.18.0.50/16");
    let o = ping("app", "db");
    o.expect_code(0);
    let o = ping("db", "application");
    o.expect_stdout(0, "PING application (172.18.0.50)");
    let o = ns.dockling(&lab, &["inspect", "-f", "{{.NetworkSettings.Networks.classnet.IPAddress}} {{json .NetworkSettings.Networks.classnet.Aliases}}", "app"]);
    o.expect_code(0);
    assert_eq!(o.stdout.trim(), r#"172.18.0.50 ["application"]"#);
    let o = ns.dockling(&lab, &["network", "connect", "classnet", "app"]);
    o.expect_stderr(
        1,
        "endpoint with name app already exists in network classnet",
    );

    // Recorded: a restart plugs eth1 again, with the same address.
    ns.dockling(&lab, &["restart", "-t", "0", "app"])
        .expect_code(0);
    let o = ns.dockling(
        &lab,
        &["exec", "app", "ip", "-o", "-4", "addr", "show", "eth1"],
    );
    o.expect_stdout(0, "inet 172.18.0.50/16");

    let o = ns.dockling(&lab, &["network", "disconnect", "classnet", "app"]);
    o.expect_code(0);
    let o = ns.dockling(&lab, &["exec", "app", "ip", "link", "show", "eth1"]);
    assert_ne!(o.code, 0, "eth1 is still there: {}", o.stdout);
    let o = ns.dockling(&lab, &["exec", "db", "cat", "/etc/hosts"]);
    o.expect_code(0);
    assert!(!o.stdout.contains("application"), "{}", o.stdout);
    let o = ns.dockling(&lab, &["network", "disconnect", "classnet", "app"]);
    o.expect_stderr(1, "is not connected to network classnet");
    // -f as Docker's: "not connected" stays an error for a container that exists...
    let o = ns.dockling(&lab, &["network", "disconnect", "-f", "classnet", "app"]);
    o.expect_stderr(1, "is not connected");
    // ...and a container that is gone is none.
    ns.dockling(&lab, &["network", "disconnect", "-f", "classnet", "ghost"])
        .expect_code(0);
    let o = ns.dockling(&lab, &["network", "disconnect", "classnet", "ghost"]);
    assert_ne!(o.code, 0, "{}", o.stdout);
    ns.dockling(&lab, &["rm", "-f", "db", "app"]).expect_code(0);
    ns.dockling(&lab, &["network", "rm", "classnet"])
        .expect_code(0);
    assert!(
        !ns.links().iter().any(|l| l.starts_with("vx")),
        "{:?}",
        ns.links()
    );
}

fn regex_replace(s: &str, re: &str, with: &str) -> String {
    regex::Regex::new(re)
        .unwrap()
        .replace_all(s, with)
        .into_owned()
}

#[test]
fn a_restart_by_policy_plugs_in_the_networks_connected_since_the_run() {
    let ns = NetNs::new();
    let lab = Lab::with_busybox();
    create(&ns, &lab, &["classnet"]);
    // Ends (code 3) when told to, through a file in its own writable layer.
    let script = "while [ ! -e /tmp/go ]; do sleep 0.1; done; rm /tmp/go; exit 3";
    ns.run_detached(
        &lab,
        &["--name", "rs", "--restart", "always"],
        &["sh", "-c", script],
    );
    ns.dockling(&lab, &["network", "connect", "classnet", "rs"])
        .expect_code(0);
    ns.dockling(&lab, &["exec", "rs", "touch", "/tmp/go"])
        .expect_code(0);
    wait_until(
        Duration::from_secs(20),
        "rs restarted by its policy",
        || {
            let o = ns.dockling(
                &lab,
                &["inspect", "-f", "{{.RestartCount}} {{.State.Status}}", "rs"],
            );
            (o.code == 0 && o.stdout.trim() == "1 running").then_some(())
        },
    );
    // The monitor started it from what the record says now: eth1 on classnet is there.
    let o = wait_until(Duration::from_secs(10), "eth1 after the restart", || {
        let o = ns.dockling(
            &lab,
            &["exec", "rs", "ip", "-o", "-4", "addr", "show", "eth1"],
        );
        (o.code == 0).then_some(o)
    });
    assert!(o.stdout.contains("inet 172.18."), "{}", o.stdout);
    ns.dockling(&lab, &["rm", "-f", "rs"]).expect_code(0);
}

#[test]
fn a_start_that_fails_after_its_name_was_given_takes_the_name_back() {
    let ns = NetNs::new();
    let lab = Lab::with_busybox();
    create(&ns, &lab, &["classnet"]);
    ns.run_detached(
        &lab,
        &["--name", "db", "--network", "classnet"],
        &["sleep", "100"],
    );
    // Made to fail at network.publish, a step after the one that gives its name out.
    let o: common::Out = ns
        .enter(lab.command(&[
            "run",
            "-d",
            "--name",
            "late",
            "--network",
            "classnet",
            "-p",
            "80",
            "busybox",
            "sleep",
            "100",
        ]))
        .env("DOCKLING_FAULT", "run.network.publish:abort")
        .output()
        .expect("run dockling")
        .into();
    assert_ne!(o.code, 0, "the fault did not stop the run: {}", o.stdout);
    let hosts = ns.dockling(&lab, &["exec", "db", "cat", "/etc/hosts"]);
    hosts.expect_code(0);
    assert!(
        hosts.stdout.contains("172.18.0.2\t"),
        "db's own line: {}",
        hosts.stdout
    );
    assert!(!hosts.stdout.contains("late"), "{}", hosts.stdout);
    ns.dockling(&lab, &["rm", "-f", "db", "late"])
        .expect_code(0);
}

#[test]
fn names_with_spaces_or_line_breaks_are_refused_before_anything_is_made() {
    let ns = NetNs::new();
    let lab = Lab::with_busybox();
    create(&ns, &lab, &["classnet"]);
    for (flag, value) in [
        ("--network-alias", "db\n10.0.0.5 bank"),
        ("--add-host", "a b:10.0.0.5"),
        ("--hostname", "box\tother"),
        ("--dns-search", "x y"),
    ] {
        let o = ns.run_rm(&lab, &["--network", "classnet", flag, value], &["true"]);
        o.expect_code(125);
        assert!(
            o.stderr
                .contains("must be one word, without spaces, tabs or line breaks"),
            "{flag}: {}",
            o.stderr
        );
    }
    assert!(lab.containers_left().is_empty());
}

/// With NAT mode on both bridges (forwarding on for each), the kernel would route between
/// them: the bridge table's `iso-<bridge>` chain keeps them apart.
#[test]
fn bridges_stay_apart_when_nat_mode_turned_forwarding_on() {
    let ns = NetNs::new();
    let lab = Lab::with_busybox();
    create(&ns, &lab, &["classnet"]);
    web(
        &ns,
        &lab,
        "db",
        "classnet",
        &["-p", "8001:80", "--publish-mode", "nat"],
        "from-db",
    );
    web(
        &ns,
        &lab,
        "front",
        "bridge",
        &["-p", "8002:80", "--publish-mode", "nat"],
        "front",
    );
    ping_by_name(&ns, &lab, "classnet", "172.18.0.2");
    let o = ns.run_rm(&lab, &[], &["ping", "-c1", "-W1", "172.18.0.2"]);
    assert_ne!(
        o.code, 0,
        "the default bridge reached classnet: {}",
        o.stdout
    );
    assert!(o.stdout.contains("0 packets received"), "{}", o.stdout);
    // The other way round too.
    let o = ns.run_rm(
        &lab,
        &["--network", "classnet"],
        &["ping", "-c1", "-W1", "172.17.0.2"],
    );
    assert_ne!(
        o.code, 0,
        "classnet reached the default bridge: {}",
        o.stdout
    );
    assert!(o.stdout.contains("0 packets received"), "{}", o.stdout);
    ns.dockling(&lab, &["rm", "-f", "db", "front"])
        .expect_code(0);
}

#[test]
fn publishing_on_a_joined_network_is_refused_as_docker_does() {
    let ns = NetNs::new();
    let lab = Lab::with_busybox();
    ns.run_detached(&lab, &["--name", "db"], &["sleep", "100"]);
    let o = ns.run_rm(
        &lab,
        &["--network", "container:db", "-p", "8000:80"],
        &["true"],
    );
    o.expect_stderr(
        125,
        "conflicting options: port publishing and the container type network mode",
    );
    ns.dockling(&lab, &["rm", "-f", "db"]).expect_code(0);
    assert!(lab.containers_left().is_empty());
}

/// `run --rm [--network NET] busybox ping -c1 -W1 host`, once.
fn ping_once(ns: &NetNs, lab: &Lab, network: &str, host: &str) -> common::Out {
    ns.run_rm(lab, &["--network", network], &["ping", "-c1", "-W1", host])
}

/// Bridges stay apart with `outbound-nat` on or off (Docker's isolation chains), while with
/// it on the containers reach the outside: here a namespace this test makes, behind a veth
/// `out0` (10.77.0.1) of the test's namespace, the "world" at 10.77.0.2.
fn bridges_apart(outbound: bool) {
    let ns = NetNs::new();
    let lab = Lab::with_busybox();
    std::fs::write(
        lab.dir.path().join("config.yaml"),
        format!("{}outbound-nat: {outbound}\n", lab.base_config()),
    )
    .unwrap();
    let world = NetNs::new();
    ns.sh(&format!(
        "ip link add out0 type veth peer name out1 && ip link set out1 netns {} \
         && ip addr add 10.77.0.1/24 dev out0 && ip link set out0 up \
         && echo 1 > /proc/sys/net/ipv4/conf/out0/forwarding",
        world.path()
    ));
    world.sh("ip addr add 10.77.0.2/24 dev out1 && ip link set out1 up");
    create(&ns, &lab, &["classnet"]);
    let nat = ["-p", "8001:80", "--publish-mode", "nat"];
    web(&ns, &lab, "db", "classnet", &nat, "from-db");
    let nat = ["-p", "8002:80", "--publish-mode", "nat"];
    web(&ns, &lab, "front", "bridge", &nat, "front");
    // Both answer on their own network: the refusals below are not dead containers.
    ping_by_name(&ns, &lab, "classnet", "172.18.0.2");
    ping_by_name(&ns, &lab, "bridge", "172.17.0.2");
    if outbound {
        ping_by_name(&ns, &lab, "bridge", "10.77.0.2");
        ping_by_name(&ns, &lab, "classnet", "10.77.0.2");
    } else {
        let o = ping_once(&ns, &lab, "bridge", "10.77.0.2");
        assert_ne!(
            o.code, 0,
            "the world reached without outbound-nat: {}",
            o.stdout
        );
        assert!(o.stdout.contains("0 packets received"), "{}", o.stdout);
    }
    for (from, to) in [("bridge", "172.18.0.2"), ("classnet", "172.17.0.2")] {
        let o = ping_once(&ns, &lab, from, to);
        assert_ne!(
            o.code, 0,
            "{from} reached {to} (outbound-nat {outbound}): {}",
            o.stdout
        );
        assert!(o.stdout.contains("0 packets received"), "{}", o.stdout);
    }
    // A published port of the other network is still reachable through the host.
    let o = ns.run_rm(
        &lab,
        &["--network", "classnet"],
        &[
            "sh",
            "-c",
            "echo -e 'GET / HTTP/1.0\\r\\n\\r' | nc 172.18.0.1 8002",
        ],
    );
    o.expect_stdout(0, "front");
    ns.dockling(&lab, &["rm", "-f", "db", "front"])
        .expect_code(0);
}

#[test]
fn bridges_stay_apart_with_outbound_nat() {
    bridges_apart(true);
}

#[test]
fn bridges_stay_apart_and_the_world_out_of_reach_without_outbound_nat() {
    bridges_apart(false);
}

/// `network rm` deletes the bridge link before the store entry: when the kernel refuses
/// (here: dockling run without CAP_NET_ADMIN, so RTM_DELLINK is EPERM) the network is kept,
/// with an error that says what to do; run again with the capability, rm succeeds.
#[test]
fn a_bridge_that_cannot_be_deleted_keeps_its_network() {
    let ns = NetNs::new();
    let lab = Lab::with_busybox();
    let id = create(&ns, &lab, &["classnet"]);
    let bridge = format!("br-{}", &id[..12]);
    ns.run_rm(&lab, &["--network", "classnet"], &["true"])
        .expect_code(0);
    assert!(ns.links().contains(&bridge), "{:?}", ns.links());
    let o: common::Out = ns
        .command("setpriv")
        .args([
            "--bounding-set=-net_admin",
            "--inh-caps=-net_admin",
            env!("CARGO_BIN_EXE_dockling"),
            "network",
            "rm",
            "classnet",
        ])
        .env("DOCKLING_ROOT", lab.root())
        .env("DOCKLING_CONFIG", lab.dir.path().join("config.yaml"))
        .env("NO_COLOR", "1")
        .stdin(std::process::Stdio::null())
        .output()
        .expect("setpriv (util-linux) is installed")
        .into();
    o.expect_code(1);
    assert!(
        o.stderr
            .contains(&format!("its bridge {bridge} could not be deleted"))
            && o.stderr
                .contains("the network is kept: run network rm classnet again")
            // The link's delete is what was refused, not an nftables query before it.
            && o.stderr.contains("EPERM")
            && !o.stderr.contains("nft"),
        "{}",
        o.stderr
    );
    assert!(ns.links().contains(&bridge), "{:?}", ns.links());
    let o = ns.dockling(&lab, &["network", "ls", "--format", "{{.Name}}"]);
    o.expect_code(0);
    assert!(o.stdout.lines().any(|l| l == "classnet"), "{}", o.stdout);
    let o = ns.dockling(&lab, &["network", "rm", "classnet"]);
    o.expect_code(0);
    assert_eq!(o.stdout, "classnet\n");
    assert!(!ns.links().contains(&bridge), "{:?}", ns.links());
}

/// `exec C ip -o -4 addr`: the container's IPv4 lines, interface and address only.
fn ipv4_of(ns: &NetNs, lab: &Lab, c: &str) -> Vec<String> {
    let o = ns.dockling(lab, &["exec", c, "ip", "-o", "-4", "addr"]);
    o.expect_code(0);
    o.stdout
        .lines()
        .map(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            format!("{} {}", w[1], w[3])
        })
        .collect()
}

/// Docker's `network connect` of a stopped container: recorded (an `--ip` held
/// at once) and plugged at its next start; `network disconnect` of a stopped one takes the
/// record and the lease away.
#[test]
fn a_stopped_container_is_connected_at_its_next_start_and_disconnected_for_good() {
    let ns = NetNs::new();
    let lab = Lab::with_busybox();
    create(&ns, &lab, &["classnet"]);
    create(&ns, &lab, &["othernet"]);
    ns.run_detached(&lab, &["--name", "app"], &["sleep", "100"]);
    ns.dockling(&lab, &["stop", "-t", "0", "app"])
        .expect_code(0);
    let o = ns.dockling(
        &lab,
        &[
            "network",
            "connect",
            "--ip",
            "172.18.0.50",
            "classnet",
            "app",
        ],
    );
    o.expect_code(0);
    assert_eq!(o.stdout, "");
    // The address is held from now: another container cannot have it.
    let o = ns.run_rm(
        &lab,
        &["--network", "classnet", "--ip", "172.18.0.50"],
        &["true"],
    );
    o.expect_stderr(125, "already in use");
    ns.dockling(&lab, &["start", "app"]).expect_code(0);
    assert_eq!(
        ipv4_of(&ns, &lab, "app"),
        [
            "lo 127.0.0.1/8",
            "eth0 172.17.0.2/16",
            "eth1 172.18.0.50/16"
        ]
    );
    // Stopped, connected to one more and disconnected from classnet.
    ns.dockling(&lab, &["stop", "-t", "0", "app"])
        .expect_code(0);
    ns.dockling(&lab, &["network", "connect", "othernet", "app"])
        .expect_code(0);
    let o = ns.dockling(&lab, &["network", "disconnect", "classnet", "app"]);
    o.expect_code(0);
    let leases = std::fs::read_to_string(lab.root().join("networks/classnet/leases.json")).unwrap();
    let v: serde_json::Value = serde_json::from_str(&leases).unwrap();
    assert_eq!(
        v["leases"],
        serde_json::json!({}),
        "lease given back: {leases}"
    );
    ns.dockling(&lab, &["start", "app"]).expect_code(0);
    assert_eq!(
        ipv4_of(&ns, &lab, "app"),
        ["lo 127.0.0.1/8", "eth0 172.17.0.2/16", "eth2 172.19.0.2/16"]
    );
    let o = ns.dockling(
        &lab,
        &[
            "inspect",
            "-f",
            "{{range $k, $v := .NetworkSettings.Networks}}{{$k}} {{end}}",
            "app",
        ],
    );
    o.expect_code(0);
    assert_eq!(o.stdout.trim(), "bridge othernet");
    ns.dockling(&lab, &["rm", "-f", "app"]).expect_code(0);
}

/// The network a container was created on can be disconnected too, running or stopped, as
/// in Docker: its eth0 goes, its name leaves the network's hosts files, and a later start
/// does not bring it back; connecting the network again plugs it as one more interface.
#[test]
fn the_first_network_can_be_disconnected_running_or_stopped() {
    let ns = NetNs::new();
    let lab = Lab::with_busybox();
    create(&ns, &lab, &["classnet"]);
    for c in ["db", "app"] {
        ns.run_detached(
            &lab,
            &["--name", c, "--network", "classnet"],
            &["sleep", "100"],
        );
    }
    let hosts = |c: &str| {
        let o = ns.dockling(&lab, &["exec", c, "cat", "/etc/hosts"]);
        o.expect_code(0);
        o.stdout.clone()
    };
    assert!(hosts("db").contains("\tapp"), "{}", hosts("db"));
    let o = ns.dockling(&lab, &["network", "disconnect", "classnet", "app"]);
    o.expect_code(0);
    assert_eq!(ipv4_of(&ns, &lab, "app"), ["lo 127.0.0.1/8"]);
    assert!(!hosts("db").contains("\tapp"), "{}", hosts("db"));
    let o = ns.dockling(&lab, &["network", "disconnect", "classnet", "app"]);
    o.expect_stderr(1, "is not connected to network classnet");
    // HostConfig keeps the mode; no endpoint is left.
    let o = ns.dockling(
        &lab,
        &[
            "inspect",
            "-f",
            "{{.HostConfig.NetworkMode}} {{json .NetworkSettings.Networks}}",
            "app",
        ],
    );
    o.expect_code(0);
    assert_eq!(o.stdout.trim(), "classnet {}");
    ns.dockling(&lab, &["restart", "-t", "0", "app"])
        .expect_code(0);
    assert_eq!(ipv4_of(&ns, &lab, "app"), ["lo 127.0.0.1/8"]);
    // Connected again: one more interface on it.
    ns.dockling(&lab, &["network", "connect", "classnet", "app"])
        .expect_code(0);
    let got = ipv4_of(&ns, &lab, "app");
    assert_eq!(got.len(), 2, "{got:?}");
    assert!(got[1].starts_with("eth1 172.18.0."), "{got:?}");
    // A stopped container on the default bridge: disconnected, it starts with loopback only.
    ns.run_detached(&lab, &["--name", "solo"], &["sleep", "100"]);
    ns.dockling(&lab, &["stop", "-t", "0", "solo"])
        .expect_code(0);
    ns.dockling(&lab, &["network", "disconnect", "bridge", "solo"])
        .expect_code(0);
    ns.dockling(&lab, &["start", "solo"]).expect_code(0);
    assert_eq!(ipv4_of(&ns, &lab, "solo"), ["lo 127.0.0.1/8"]);
    ns.dockling(&lab, &["rm", "-f", "db", "app", "solo"])
        .expect_code(0);
    // Every pair is deleted before rm returns (eth1 too), not when the kernel gets to the
    // dead namespaces.
    let links = ns.links();
    assert!(
        !links
            .iter()
            .any(|l| l.starts_with("vx") || l.starts_with("veth")),
        "{links:?}"
    );
}

/// A record that says running with a pid the kernel has given to another process (here: the
/// pid rewritten to a `sleep` of another namespace) is no proof of life: `--network
/// container:X` must not join that process's namespace, nor `network inspect` list X.
#[test]
fn a_reused_pid_is_not_taken_for_the_container() {
    let ns = NetNs::new();
    let lab = Lab::with_busybox();
    let id = ns.run_detached(&lab, &["--name", "xx"], &["sleep", "100"]);
    let other = NetNs::new();
    other.sh("ip link add decoy0 type bridge");
    let mut sleeper = other
        .command("sleep")
        .arg("100")
        .spawn()
        .expect("sleep runs");
    let state = lab.root().join("containers").join(&id).join("state.json");
    let text = std::fs::read_to_string(&state).unwrap();
    let mut v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["status"]["Status"], "running", "{text}");
    v["status"]["Pid"] = serde_json::json!(sleeper.id());
    std::fs::write(&state, serde_json::to_vec(&v).unwrap()).unwrap();
    let o = ns.run_rm(&lab, &["--network", "container:xx"], &["ip", "link"]);
    assert!(
        !o.stdout.contains("decoy0"),
        "joined another's namespace: {}",
        o.stdout
    );
    o.expect_stderr(
        125,
        "cannot join network namespace of a non running container",
    );
    let o = ns.dockling(
        &lab,
        &["network", "inspect", "-f", "{{json .Containers}}", "bridge"],
    );
    o.expect_code(0);
    assert_eq!(o.stdout.trim(), "{}");
    sleeper.kill().unwrap();
    sleeper.wait().unwrap();
    // The record as it was, so rm -f stops the real process.
    std::fs::write(&state, text).unwrap();
    ns.dockling(&lab, &["rm", "-f", "xx"]).expect_code(0);
}

/// `Icmp: … InEchos` of container `c`'s namespace: echo requests that reached it.
fn in_echos(ns: &NetNs, lab: &Lab, c: &str) -> u64 {
    let o = ns.dockling(lab, &["exec", c, "cat", "/proc/net/snmp"]);
    o.expect_code(0);
    let mut icmp = o.stdout.lines().filter(|l| l.starts_with("Icmp:"));
    let (names, values) = (icmp.next().unwrap(), icmp.next().unwrap());
    let at = names
        .split_whitespace()
        .position(|n| n == "InEchos")
        .expect("InEchos in /proc/net/snmp");
    values.split_whitespace().nth(at).unwrap().parse().unwrap()
}

/// With outbound NAT, a NAT-mode bridge lets its containers out, but not into another
/// container network, even one that never ran in NAT mode (so it has no chain of its own and
/// forwarding off): the echo request would reach it one way, though no answer came back.
#[test]
fn outbound_nat_sends_nothing_into_a_bridge_without_chains() {
    let ns = NetNs::new();
    let lab = Lab::with_busybox();
    std::fs::write(
        lab.dir.path().join("config.yaml"),
        format!("{}outbound-nat: true\n", lab.base_config()),
    )
    .unwrap();
    create(&ns, &lab, &["classnet"]);
    web(&ns, &lab, "db", "classnet", &[], "from-db");
    let nat = ["-p", "8002:80", "--publish-mode", "nat"];
    web(&ns, &lab, "front", "bridge", &nat, "front");
    // The counter counts: a ping from db's own network arrives.
    let before = in_echos(&ns, &lab, "db");
    ping_by_name(&ns, &lab, "classnet", "172.18.0.2");
    let after = in_echos(&ns, &lab, "db");
    assert!(after > before, "{before} -> {after}");
    let o = ping_once(&ns, &lab, "bridge", "172.18.0.2");
    assert_ne!(
        o.code, 0,
        "the default bridge reached classnet: {}",
        o.stdout
    );
    let last = in_echos(&ns, &lab, "db");
    assert_eq!(
        last, after,
        "an echo request from the default bridge reached db"
    );
    ns.dockling(&lab, &["rm", "-f", "db", "front"])
        .expect_code(0);
}

#[test]
fn a_network_a_running_container_publishes_through_is_not_disconnected() {
    let ns = NetNs::new();
    let lab = Lab::with_busybox();
    common::web(&ns, &lab, "web", "80", "kept", &["-p", "8000:80"]);
    assert_eq!(ns.http_get("http://127.0.0.1:8000/").trim(), "kept");
    let o = ns.dockling(&lab, &["network", "disconnect", "bridge", "web"]);
    o.expect_code(1);
    assert!(
        o.stderr
            .contains("publishes ports through network bridge (0.0.0.0:8000->80/tcp)")
            && o.stderr.contains("stop it first"),
        "{}",
        o.stderr
    );
    // Nothing was taken: the address, the interface and the port still work.
    assert!(
        ipv4_of(&ns, &lab, "web")
            .iter()
            .any(|a| a.starts_with("eth0 172.17.")),
        "{:?}",
        ipv4_of(&ns, &lab, "web")
    );
    assert_eq!(ns.http_get("http://127.0.0.1:8000/").trim(), "kept");
    // Stopped, it can be.
    ns.dockling(&lab, &["stop", "-t", "0", "web"])
        .expect_code(0);
    ns.dockling(&lab, &["network", "disconnect", "bridge", "web"])
        .expect_code(0);
    ns.dockling(&lab, &["rm", "-f", "web"]).expect_code(0);
}

#[test]
fn connect_and_disconnect_wait_for_a_start_in_progress() {
    use std::os::fd::AsRawFd;
    let ns = NetNs::new();
    let lab = Lab::with_busybox();
    create(&ns, &lab, &["classnet"]);
    let id = ns.run_detached(&lab, &["--name", "app"], &["true"]);
    ns.dockling(&lab, &["wait", "app"]).expect_code(0);
    // A start holds the container's engine lock while it reads the record and plugs the
    // networks: held here, connect and disconnect must not change the record under it.
    let lock = std::fs::File::options()
        .write(true)
        .open(lab.root().join("containers").join(&id).join("engine.lock"))
        .expect("the container's engine lock");
    // The exited container's monitor may still hold the lock for its last clean-up after
    // `wait` returned: taken as soon as it lets go.
    wait_until(
        Duration::from_secs(20),
        "the monitor to release the container's engine lock",
        || {
            // SAFETY: flock on a descriptor this test owns.
            (unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0)
                .then_some(())
        },
    );
    for args in [
        &["network", "connect", "classnet", "app"][..],
        &["network", "disconnect", "bridge", "app"],
    ] {
        let o = ns.dockling(&lab, args);
        assert_ne!(o.code, 0, "{args:?}: {}", o.stdout);
        assert!(
            o.stderr.contains("is being started or stopped"),
            "{}",
            o.stderr
        );
    }
    drop(lock);
    let o = ns.dockling(
        &lab,
        &["inspect", "-f", "{{len .NetworkSettings.Networks}}", "app"],
    );
    o.expect_code(0);
    assert_eq!(o.stdout.trim(), "1", "the record was not changed");
    ns.dockling(&lab, &["network", "connect", "classnet", "app"])
        .expect_code(0);
    ns.dockling(&lab, &["rm", "-f", "app"]).expect_code(0);
}

#[test]
fn a_stale_pair_of_the_last_run_does_not_stop_the_next_start() {
    let ns = NetNs::new();
    let lab = Lab::with_busybox();
    create(&ns, &lab, &["classnet"]);
    let id = ns.run_detached(&lab, &["--name", "app"], &["sleep", "100"]);
    ns.dockling(&lab, &["network", "connect", "classnet", "app"])
        .expect_code(0);
    ns.dockling(&lab, &["stop", "-t", "0", "app"])
        .expect_code(0);
    // What the kernel may still hold a moment after a run: links with the container's own
    // pair names (the first network's and the connected one's), made here as bridges. The
    // run's own pair may itself still be there (a dead namespace's links go in the kernel's
    // own time, and `ip` then says the name exists): tried again until the name is free, so
    // the stale link is surely there when `start` runs.
    for name in [format!("veth{}", &id[..7]), format!("vx{}.1", &id[..7])] {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let out = ns
                .command("ip")
                .args(["link", "add", &name, "type", "bridge"])
                .output()
                .expect("ip");
            if out.status.success() {
                break;
            }
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(
                err.contains("File exists") && std::time::Instant::now() < deadline,
                "{name}: {err}"
            );
            std::thread::yield_now();
        }
    }
    ns.dockling(&lab, &["start", "app"]).expect_code(0);
    let got = ipv4_of(&ns, &lab, "app");
    assert_eq!(got.len(), 3, "{got:?}");
    assert!(
        got[1].starts_with("eth0 172.17.") && got[2].starts_with("eth1 172.18."),
        "{got:?}"
    );
    ns.dockling(&lab, &["rm", "-f", "app"]).expect_code(0);
}
