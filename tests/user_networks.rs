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
            let o = ns.dockling(
                lab,
                &[
                    "run",
                    "--rm",
                    "--network",
                    network,
                    "busybox",
                    "ping",
                    "-c1",
                    "-W1",
                    host,
                ],
            );
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
    o.expect_code(1);
    assert!(
        o.stderr
            .contains("network with name classnet already exists"),
        "{}",
        o.stderr
    );
    let o = ns.dockling(&lab, &["network", "create", "bad name"]);
    o.expect_code(1);
    assert!(o.stderr.contains("invalid network name"), "{}", o.stderr);
    let o = ns.dockling(
        &lab,
        &["network", "create", "--subnet", "172.18.5.0/24", "clash"],
    );
    o.expect_code(1);
    assert!(o.stderr.contains("overlaps"), "{}", o.stderr);
    for n in ["bridge", "host", "none"] {
        let o = ns.dockling(&lab, &["network", "rm", n]);
        o.expect_code(1);
        assert!(
            o.stderr.contains(&format!(
                "{n} is a pre-defined network and cannot be removed"
            )),
            "{}",
            o.stderr
        );
    }
    let o = ns.dockling(&lab, &["network", "rm", "nosuch"]);
    o.expect_code(1);
    assert!(
        o.stderr.contains("network nosuch not found"),
        "{}",
        o.stderr
    );
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
    o.expect_code(1);
    assert!(
        o.stderr
            .contains("error while removing network: network classnet id"),
        "{}",
        o.stderr
    );
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
    let o = ns.dockling(
        &lab,
        &["run", "--rm", "busybox", "ping", "-c1", "-W1", "172.18.0.2"],
    );
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
    let o = ns.dockling(
        &lab,
        &[
            "run",
            "--rm",
            "--network",
            "classnet",
            "--ip",
            "10.20.0.77",
            "busybox",
            "ip",
            "-4",
            "addr",
            "show",
            "eth0",
        ],
    );
    o.expect_code(0);
    assert!(o.stdout.contains("inet 10.20.0.77/24"), "{}", o.stdout);
    let o = ns.dockling(
        &lab,
        &[
            "run",
            "--rm",
            "--network",
            "classnet",
            "--ip",
            "10.99.0.5",
            "busybox",
            "true",
        ],
    );
    o.expect_code(125);
    assert!(
        o.stderr
            .contains("no configured subnet contains the IP address 10.99.0.5"),
        "{}",
        o.stderr
    );
    let o = ns.dockling(
        &lab,
        &["run", "--rm", "--ip", "172.17.0.9", "busybox", "true"],
    );
    o.expect_code(125);
    assert!(
        o.stderr
            .contains("user specified IP address is supported on user defined networks only"),
        "{}",
        o.stderr
    );
    let o = ns.dockling(
        &lab,
        &["run", "--rm", "--network", "nosuch", "busybox", "true"],
    );
    o.expect_code(125);
    assert!(
        o.stderr.contains("network nosuch not found"),
        "{}",
        o.stderr
    );
    let o = ns.dockling(&lab, &["ps", "-aq"]);
    o.expect_code(0);
    assert_eq!(o.stdout, "", "refused runs leave no container");
}

#[test]
fn link_alias_add_host_and_dns_land_in_the_containers_files() {
    let ns = NetNs::new();
    let lab = Lab::with_busybox();
    web(&ns, &lab, "db", "bridge", &[], "from-db");
    let o = ns.dockling(
        &lab,
        &[
            "run",
            "--rm",
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
            "busybox",
            "sh",
            "-c",
            "cat /etc/hosts /etc/resolv.conf; ping -c1 -W1 webdb",
        ],
    );
    o.expect_code(0);
    assert!(o.stdout.contains("10.1.2.3\tprinter\n"), "{}", o.stdout);
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
    let o = ns.dockling(
        &lab,
        &[
            "run", "--rm", "--name", "web", "--link", "db:webdb", "busybox", "true",
        ],
    );
    o.expect_code(125);
    assert!(
        o.stderr
            .contains("Cannot link to a non running container: /db AS /web/webdb"),
        "{}",
        o.stderr
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
    ns.dockling(
        &lab,
        &[
            "run",
            "-d",
            "--name",
            "side",
            "--network",
            "container:db",
            "busybox",
            "sleep",
            "100",
        ],
    )
    .expect_code(0);
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
    o.expect_code(0);
    assert!(o.stdout.contains("from-db"), "{}", o.stdout);
    ns.dockling(&lab, &["rm", "-f", "side"]).expect_code(0);
    // Refusals: Docker's texts, exit 125.
    let o = ns.dockling(
        &lab,
        &[
            "run",
            "--rm",
            "--network",
            "container:nosuch",
            "busybox",
            "true",
        ],
    );
    o.expect_code(125);
    assert!(
        o.stderr.contains("No such container: nosuch"),
        "{}",
        o.stderr
    );
    ns.dockling(&lab, &["stop", "-t", "1", "db"]).expect_code(0);
    let o = ns.dockling(
        &lab,
        &[
            "run",
            "--rm",
            "--network",
            "container:db",
            "busybox",
            "true",
        ],
    );
    o.expect_code(125);
    assert!(
        o.stderr
            .contains("cannot join network namespace of a non running container"),
        "{}",
        o.stderr
    );
    ns.dockling(&lab, &["rm", "-f", "db"]).expect_code(0);
}

#[test]
fn mac_address_is_eth0s_and_refused_without_a_bridge_network() {
    let ns = NetNs::new();
    let lab = Lab::with_busybox();
    create(&ns, &lab, &["classnet"]);
    let o = ns.dockling(
        &lab,
        &[
            "run",
            "--rm",
            "--network",
            "classnet",
            "--mac-address",
            "02:42:0A:0B:0C:0D",
            "busybox",
            "ip",
            "link",
            "show",
            "eth0",
        ],
    );
    o.expect_code(0);
    assert!(
        o.stdout.contains("link/ether 02:42:0a:0b:0c:0d"),
        "{}",
        o.stdout
    );
    let o = ns.dockling(
        &lab,
        &[
            "run",
            "--rm",
            "--network",
            "none",
            "--mac-address",
            "02:42:0a:0b:0c:0d",
            "busybox",
            "true",
        ],
    );
    o.expect_code(125);
    assert!(
        o.stderr
            .contains("conflicting options: mac-address and the network mode"),
        "{}",
        o.stderr
    );
    let o = ns.dockling(
        &lab,
        &["run", "--rm", "--mac-address", "zz", "busybox", "true"],
    );
    o.expect_code(125);
    assert!(
        o.stderr.contains("is not a valid mac address"),
        "{}",
        o.stderr
    );
}

#[test]
fn connect_adds_eth1_with_names_kept_across_restart_and_disconnect_takes_it_away() {
    let ns = NetNs::new();
    let lab = Lab::with_busybox();
    create(&ns, &lab, &["classnet"]);
    ns.dockling(
        &lab,
        &[
            "run",
            "-d",
            "--name",
            "db",
            "--network",
            "classnet",
            "busybox",
            "sleep",
            "100",
        ],
    )
    .expect_code(0);
    ns.dockling(
        &lab,
        &["run", "-d", "--name", "app", "busybox", "sleep", "100"],
    )
    .expect_code(0);
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
    o.expect_code(0);
    assert!(o.stdout.contains("inet 172.18.0.50/16"), "{}", o.stdout);
    let o = ping("app", "db");
    o.expect_code(0);
    let o = ping("db", "application");
    o.expect_code(0);
    assert!(
        o.stdout.contains("PING application (172.18.0.50)"),
        "{}",
        o.stdout
    );
    let o = ns.dockling(&lab, &["inspect", "-f", "{{.NetworkSettings.Networks.classnet.IPAddress}} {{json .NetworkSettings.Networks.classnet.Aliases}}", "app"]);
    o.expect_code(0);
    assert_eq!(o.stdout.trim(), r#"172.18.0.50 ["application"]"#);
    let o = ns.dockling(&lab, &["network", "connect", "classnet", "app"]);
    o.expect_code(1);
    assert!(
        o.stderr
            .contains("endpoint with name app already exists in network classnet"),
        "{}",
        o.stderr
    );

    // Recorded: a restart plugs eth1 again, with the same address.
    ns.dockling(&lab, &["restart", "-t", "0", "app"])
        .expect_code(0);
    let o = ns.dockling(
        &lab,
        &["exec", "app", "ip", "-o", "-4", "addr", "show", "eth1"],
    );
    o.expect_code(0);
    assert!(o.stdout.contains("inet 172.18.0.50/16"), "{}", o.stdout);

    let o = ns.dockling(&lab, &["network", "disconnect", "classnet", "app"]);
    o.expect_code(0);
    let o = ns.dockling(&lab, &["exec", "app", "ip", "link", "show", "eth1"]);
    assert_ne!(o.code, 0, "eth1 is still there: {}", o.stdout);
    let o = ns.dockling(&lab, &["exec", "db", "cat", "/etc/hosts"]);
    o.expect_code(0);
    assert!(!o.stdout.contains("application"), "{}", o.stdout);
    let o = ns.dockling(&lab, &["network", "disconnect", "classnet", "app"]);
    o.expect_code(1);
    assert!(
        o.stderr.contains("is not connected to network classnet"),
        "{}",
        o.stderr
    );
    ns.dockling(&lab, &["network", "disconnect", "-f", "classnet", "app"])
        .expect_code(0);
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
    ns.dockling(
        &lab,
        &[
            "run",
            "-d",
            "--name",
            "rs",
            "--restart",
            "always",
            "busybox",
            "sh",
            "-c",
            script,
        ],
    )
    .expect_code(0);
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
    ns.dockling(
        &lab,
        &[
            "run",
            "-d",
            "--name",
            "db",
            "--network",
            "classnet",
            "busybox",
            "sleep",
            "100",
        ],
    )
    .expect_code(0);
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
        let o = ns.dockling(
            &lab,
            &[
                "run",
                "--rm",
                "--network",
                "classnet",
                flag,
                value,
                "busybox",
                "true",
            ],
        );
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
    let o = ns.dockling(
        &lab,
        &["run", "--rm", "busybox", "ping", "-c1", "-W1", "172.18.0.2"],
    );
    assert_ne!(
        o.code, 0,
        "the default bridge reached classnet: {}",
        o.stdout
    );
    assert!(o.stdout.contains("0 packets received"), "{}", o.stdout);
    // The other way round too.
    let o = ns.dockling(
        &lab,
        &[
            "run",
            "--rm",
            "--network",
            "classnet",
            "busybox",
            "ping",
            "-c1",
            "-W1",
            "172.17.0.2",
        ],
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
    ns.dockling(
        &lab,
        &["run", "-d", "--name", "db", "busybox", "sleep", "100"],
    )
    .expect_code(0);
    let o = ns.dockling(
        &lab,
        &[
            "run",
            "--rm",
            "--network",
            "container:db",
            "-p",
            "8000:80",
            "busybox",
            "true",
        ],
    );
    o.expect_code(125);
    assert!(
        o.stderr
            .contains("conflicting options: port publishing and the container type network mode"),
        "{}",
        o.stderr
    );
    ns.dockling(&lab, &["rm", "-f", "db"]).expect_code(0);
    assert!(lab.containers_left().is_empty());
}
