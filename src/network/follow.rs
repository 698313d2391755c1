//! `dockling explain port N`: the path a connection to host port N takes on this machine now,
//! as numbered lines a student can follow, each fact read live: the container records, the
//! proxy process (`/proc`), the NAT table and the veth (traced netlink gets through the seam),
//! the container's listening sockets (`/proc/<pid>/net/tcp*`, untraced kernel information) and
//! the conntrack entries. The classic mistakes are named: a server listening on 127.0.0.1 only
//! or not at all, a stopped publisher, a port published on one address only, nothing published.

use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::container::Container;
use crate::network::ports::{Proto, Published};
use crate::network::{bridge, netlink::Netlink, nft, ports, store};
use crate::spec::PublishMode;
use crate::sys::Sys;

/// `N`, `N/tcp` or `N/udp` (tcp when not given); an error text saying what is expected.
pub fn parse_port(s: &str) -> Result<(u16, Proto), String> {
    let bad = || format!("explain port {s}: expected a host port such as 8000, 8000/tcp or 53/udp");
    let (n, proto) = match s.split_once('/') {
        Some((n, "tcp")) => (n, Proto::Tcp),
        Some((n, "udp")) => (n, Proto::Udp),
        Some(_) => return Err(bad()),
        None => (s, Proto::Tcp),
    };
    match n.parse::<u16>() {
        Ok(p) if p > 0 => Ok((p, proto)),
        _ => Err(bad()),
    }
}

/// The report and whether the path is complete (false: a mistake was named).
pub struct Report {
    /// The text to print.
    pub text: String,
    /// True when every hop was found.
    pub complete: bool,
}

fn short(id: &str) -> &str {
    &id[..id.len().min(12)]
}

/// Field `n` (1-based as proc(5) counts) of `/proc/<pid>/stat`.
fn stat_field(pid: i32, n: usize) -> Option<i64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = stat.rsplit_once(") ")?.1;
    after.split_whitespace().nth(n - 3)?.parse().ok()
}

fn comm(pid: i32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "?".into())
}

fn all_pids() -> Vec<i32> {
    std::fs::read_dir("/proc")
        .map(|d| {
            d.flatten()
                .filter_map(|e| e.file_name().to_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// The `dockling proxy` child of `monitor` serving `map` (`tcp:0.0.0.0:8000:80`).
fn find_proxy(monitor: i32, map: &str) -> Option<i32> {
    all_pids().into_iter().find(|&pid| {
        stat_field(pid, 4) == Some(i64::from(monitor)) && {
            let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            let args: Vec<&[u8]> = cmd.split(|b| *b == 0).collect();
            args.get(1) == Some(&&b"proxy"[..]) && args.contains(&map.as_bytes())
        }
    })
}

/// One listening socket of the container's namespace.
struct Listening {
    addr: IpAddr,
    inode: u64,
}

fn hex_addr(h: &str) -> Option<IpAddr> {
    match h.len() {
        8 => {
            let v = u32::from_str_radix(h, 16).ok()?;
            Some(IpAddr::V4(Ipv4Addr::from(v.to_ne_bytes())))
        }
        32 => {
            let mut b = [0u8; 16];
            for i in 0..4 {
                let v = u32::from_str_radix(&h[i * 8..i * 8 + 8], 16).ok()?;
                b[i * 4..i * 4 + 4].copy_from_slice(&v.to_ne_bytes());
            }
            Some(IpAddr::V6(Ipv6Addr::from(b)))
        }
        _ => None,
    }
}

/// The sockets listening on `port` in the network namespace of `pid` (`/proc/<pid>/net/tcp`,
/// `tcp6`, or the udp files: TCP state 0A LISTEN, UDP state 07 unconnected).
fn listening(pid: i32, proto: Proto, port: u16) -> Vec<Listening> {
    let (files, state) = match proto {
        Proto::Tcp => (["tcp", "tcp6"], "0A"),
        Proto::Udp => (["udp", "udp6"], "07"),
    };
    let mut out = vec![];
    for f in files {
        let Ok(text) = std::fs::read_to_string(format!("/proc/{pid}/net/{f}")) else {
            continue;
        };
        for line in text.lines().skip(1) {
            let w: Vec<&str> = line.split_whitespace().collect();
            if w.len() < 10 || w[3] != state {
                continue;
            }
            let Some((a, p)) = w[1].rsplit_once(':') else {
                continue;
            };
            if u16::from_str_radix(p, 16).ok() != Some(port) {
                continue;
            }
            if let Some(addr) = hex_addr(a) {
                out.push(Listening {
                    addr,
                    inode: w[9].parse().unwrap_or(0),
                });
            }
        }
    }
    out
}

/// The process (host pid, name) holding socket `inode`, among those in `pid`'s net namespace.
fn owner_of(pid: i32, inode: u64) -> Option<(i32, String)> {
    let ns = std::fs::read_link(format!("/proc/{pid}/ns/net")).ok()?;
    let want = format!("socket:[{inode}]");
    all_pids().into_iter().find_map(|p| {
        if std::fs::read_link(format!("/proc/{p}/ns/net")).ok()? != ns {
            return None;
        }
        std::fs::read_dir(format!("/proc/{p}/fd"))
            .ok()?
            .flatten()
            .any(|e| std::fs::read_link(e.path()).is_ok_and(|l| l.as_os_str() == want.as_str()))
            .then(|| (p, comm(p)))
    })
}

/// Whether a listening address takes what arrives on eth0 (not only loopback).
fn reachable(a: &IpAddr) -> bool {
    match a {
        IpAddr::V4(v) => !v.is_loopback(),
        IpAddr::V6(v) => match v.to_ipv4_mapped() {
            Some(v4) => !v4.is_loopback(),
            None => !v.is_loopback(),
        },
    }
}

fn show_addr(a: &IpAddr, port: u16) -> String {
    match a {
        IpAddr::V4(v) => format!("{v}:{port}"),
        IpAddr::V6(v) if v.is_unspecified() => format!("[::]:{port} (every address, IPv4 too)"),
        IpAddr::V6(v) => format!("[{v}]:{port}"),
    }
}

/// The published ports a stopped container's flags ask for that cover `port`.
fn asks_for(c: &Container, port: u16, proto: Proto) -> bool {
    ports::bindings(&c.spec.ports)
        .unwrap_or_default()
        .iter()
        .any(|b| {
            b.proto == proto
                && b.host_ports
                    .is_some_and(|(lo, hi)| lo <= port && port <= hi)
        })
}

/// Follow host port `port`/`proto` through `containers` (the records, reaped), with `sys` for
/// the netlink checks.
pub fn follow(
    sys: &Sys,
    root: &std::path::Path,
    containers: &[Container],
    port: u16,
    proto: Proto,
) -> Report {
    let mut out = String::new();
    // Only a live container shows published ports; its namespace is opened through
    // /proc/<pid>, so the pid must still be its process (live_pid checks the start time).
    let found = containers.iter().find_map(|c| {
        let pid = c.live_pid()?;
        c.published_ports(true)
            .into_iter()
            .find(|p| p.proto == proto && p.host.port() == port)
            .map(|p| (c, p, pid))
    });
    let Some((c, p, pid)) = found else {
        return not_published(containers, port, proto);
    };
    let name = &c.spec.name;
    let id = &c.spec.id;
    let mode = c.spec.ports.mode;
    let mut complete = true;
    let _ = writeln!(
        out,
        "host port {port}/{proto} on {} is published by container {name} ({}), running, mode {}",
        p.host.ip(),
        short(id),
        match mode {
            PublishMode::Proxy => "proxy",
            PublishMode::Nat => "nat",
        }
    );
    let host_ip = *p.host.ip();
    if host_ip.is_unspecified() {
        let _ = writeln!(
            out,
            "1. a program on the host connects to 127.0.0.1:{port} (or any address of the host)"
        );
    } else {
        let _ = writeln!(
            out,
            "1. a program on the host connects to {host_ip}:{port}: only this address works, the port \
             is published on {host_ip} alone (-p {host_ip}:{port}:{}); the host's other addresses \
             have nothing on {port}",
            p.container_port
        );
    }
    let lease = store::leased_on(root, c.spec.network_name(), id);
    let Some((net, caddr)) = lease else {
        let _ = writeln!(
            out,
            "wrong: {name} holds no address on network {} (its lease is gone): nothing can reach it",
            c.spec.network_name()
        );
        return Report {
            text: out,
            complete: false,
        };
    };
    let target = format!("{caddr}:{}", p.container_port);
    let monitor = stat_field(pid, 4).unwrap_or(0) as i32;
    match mode {
        PublishMode::Proxy => {
            let map = format!("{proto}:{}:{}", p.host, p.container_port);
            match find_proxy(monitor, &map) {
                Some(proxy) => {
                    let _ = writeln!(
                        out,
                        "2. `dockling proxy` (pid {proxy}), started by {name}'s monitor (pid \
                         {monitor}), listens on {} and accepts it",
                        p.host
                    );
                    let _ = writeln!(
                        out,
                        "3. it connects to {target}, which the host routes to bridge {} ({}/{})",
                        net.bridge,
                        net.gateway,
                        net.subnet.rsplit('/').next().unwrap_or("")
                    );
                }
                None => {
                    complete = false;
                    let _ = writeln!(
                        out,
                        "2. wrong: no `dockling proxy` child of {name}'s monitor (pid {monitor}) serves \
                         {map}: nothing accepts on {}; dockling restart {name}",
                        p.host
                    );
                }
            }
        }
        PublishMode::Nat => {
            let table = nft::table_name(id);
            match nft::table_exists(sys, &table) {
                Ok(true) => {
                    let rule = nft::PortRule {
                        proto: match proto {
                            Proto::Tcp => nft::L4::Tcp,
                            Proto::Udp => nft::L4::Udp,
                        },
                        host_ip: (!host_ip.is_unspecified()).then_some(host_ip),
                        host_port: port,
                        container_ip: caddr,
                        container_port: p.container_port,
                    };
                    let listing = nft::container_table(id, &[rule]).listing();
                    let _ = writeln!(
                        out,
                        "2. the kernel's nftables table ip {table} rewrites the destination to \
                         {target} (output chain for the host's own connections, prerouting for \
                         others); its rule for this port:"
                    );
                    let mut chain = "";
                    for l in listing.lines().map(str::trim) {
                        if let Some(c) = l.strip_prefix("chain ") {
                            chain = c.trim_end_matches(" {");
                        } else if l.contains("dnat to") {
                            let _ = writeln!(out, "     chain {chain}: {l}");
                        }
                    }
                    let _ = writeln!(
                        out,
                        "3. the packet, now to {target}, is routed to bridge {} ({}/{})",
                        net.bridge,
                        net.gateway,
                        net.subnet.rsplit('/').next().unwrap_or("")
                    );
                }
                Ok(false) => {
                    complete = false;
                    let _ = writeln!(
                        out,
                        "2. wrong: the kernel has no table ip {table}: no rule sends port {port} to \
                         {target}; dockling restart {name}"
                    );
                }
                Err(e) => {
                    complete = false;
                    let _ = writeln!(out, "2. could not ask the kernel for table ip {table}: {e}");
                }
            }
        }
    }
    let veth = bridge::veth_name(id);
    let mac = store::mac_text(store::mac_of(&c.spec, caddr));
    let veth_ok = Netlink::open(sys).and_then(|nl| {
        let r = nl.link_index(&veth);
        let _ = nl.close();
        r
    });
    match veth_ok {
        Ok(_) => {
            let _ = writeln!(
                out,
                "4. the bridge forwards it through {veth} (the host end of {name}'s veth pair) to \
                 eth0 ({mac}) inside {name}'s network namespace"
            );
        }
        Err(e) => {
            complete = false;
            let _ = writeln!(
                out,
                "4. wrong: the host end of {name}'s veth pair, {veth}, is not there ({e})"
            );
        }
    }
    let socks = listening(pid, proto, p.container_port);
    let described: Vec<String> = socks
        .iter()
        .map(|s| {
            let who = owner_of(pid, s.inode)
                .map(|(p, c)| format!("pid {p} ({c})"))
                .unwrap_or_else(|| "a process".into());
            format!("{who} listens on {}", show_addr(&s.addr, p.container_port))
        })
        .collect();
    if socks.iter().any(|s| reachable(&s.addr)) {
        let _ = writeln!(out, "5. in the container, {}", described.join("; "));
    } else if socks.is_empty() {
        complete = false;
        let _ = writeln!(
            out,
            "5. wrong: nothing listens on port {}/{proto} inside {name}: the connection is \
             refused there; start the server on port {} (listening on 0.0.0.0)",
            p.container_port, p.container_port
        );
    } else {
        complete = false;
        let _ = writeln!(
            out,
            "5. wrong: {} inside the container: the {} arrives on eth0 ({caddr}), so nothing \
             answers; make the program listen on 0.0.0.0",
            described.join("; "),
            match mode {
                PublishMode::Proxy => "proxy",
                PublishMode::Nat => "NAT",
            }
        );
    }
    let _ = writeln!(
        out,
        "(sockets read from /proc/{pid}/net/{proto} and {proto}6: untraced kernel information)"
    );
    if complete {
        let _ = writeln!(out, "the path is complete");
    }
    match nft::conntrack_entries(port) {
        Ok(e) if e.is_empty() => {
            let _ = writeln!(out, "conntrack: no connection is being tracked now");
        }
        Ok(e) => {
            let _ = writeln!(out, "conntrack (untraced kernel information):");
            for l in e {
                let _ = writeln!(
                    out,
                    "  {}",
                    l.split_whitespace().collect::<Vec<_>>().join(" ")
                );
            }
        }
        Err(_) => {
            let _ = writeln!(
                out,
                "conntrack: not available (no nf_conntrack in this namespace)"
            );
        }
    }
    Report {
        text: out,
        complete,
    }
}

/// No running container publishes the port: a stopped one that would, or what is published.
fn not_published(containers: &[Container], port: u16, proto: Proto) -> Report {
    let mut out = String::new();
    let stopped: Vec<&Container> = containers
        .iter()
        .filter(|c| !c.is_alive() && asks_for(c, port, proto))
        .collect();
    if !stopped.is_empty() {
        for c in stopped {
            let _ = writeln!(
                out,
                "{} publishes {port}/{proto} but is stopped: dockling start {}",
                c.spec.name, c.spec.name
            );
        }
        return Report {
            text: out,
            complete: false,
        };
    }
    let _ = writeln!(out, "no container publishes host port {port}/{proto}");
    let published: Vec<(String, String)> = containers
        .iter()
        .filter(|c| c.is_alive())
        .filter_map(|c| {
            let ports: Vec<Published> = c.published_ports(true);
            (!ports.is_empty())
                .then(|| (c.spec.name.clone(), ports::display_ports(&c.port_map(true))))
        })
        .collect();
    if published.is_empty() {
        let _ = writeln!(
            out,
            "no running container publishes any port (run -p HOSTPORT:CONTAINERPORT)"
        );
    } else {
        let _ = writeln!(out, "published now:");
        for (n, p) in published {
            let _ = writeln!(out, "  {n}: {p}");
        }
    }
    Report {
        text: out,
        complete: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_parse_or_say_what_is_expected() {
        assert_eq!(parse_port("8000").unwrap(), (8000, Proto::Tcp));
        assert_eq!(parse_port("53/udp").unwrap(), (53, Proto::Udp));
        assert_eq!(parse_port("80/tcp").unwrap(), (80, Proto::Tcp));
        for bad in ["abc", "0", "70000", "80/sctp", "", "/tcp"] {
            assert!(
                parse_port(bad)
                    .unwrap_err()
                    .contains("expected a host port"),
                "{bad}"
            );
        }
    }

    #[test]
    fn proc_net_addresses_decode() {
        assert_eq!(hex_addr("0100007F"), Some(IpAddr::V4(Ipv4Addr::LOCALHOST)));
        assert_eq!(
            hex_addr("00000000000000000000000000000000"),
            Some(IpAddr::V6(Ipv6Addr::UNSPECIFIED))
        );
        assert!(!reachable(&hex_addr("0100007F").unwrap()));
        assert!(reachable(&hex_addr("00000000").unwrap()));
        assert!(!reachable(
            &hex_addr("0000000000000000FFFF00000100007F").unwrap()
        ));
    }
}
