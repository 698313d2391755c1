//! Names on a network through `/etc/hosts` (design §5): every running container of a user
//! network has a hosts line for each other one (its name, its short id, its aliases), and
//! the files are rewritten whenever a member starts, stops or is removed.
//!
//! Why not an embedded DNS server, as Docker's 127.0.0.11: dockling has no daemon to run it,
//! and a resolver per container would be one more process to supervise; a file is what
//! `cat /etc/hosts` shows a student, and every libc (musl and busybox included) reads it.
//! The cost: a program that caches lookups (or read the file once) misses later changes.
//!
//! The container's `/etc/hosts` is a bind mount of `<container>/hosts`: it must be rewritten
//! in place (`O_TRUNC` through a descriptor of the same inode, opened beneath the container's
//! directory without following symlinks), never replaced by a rename, or the container would
//! keep seeing the old inode. Rewrites happen under the network's lock, so two commands
//! refreshing the same network write whole files one after the other.

use std::io::Write;
use std::net::Ipv4Addr;
use std::path::Path;

use crate::container::Containers;
use crate::error::{Error, Result};
use crate::spec::RunSpec;

/// Another container of the network, as a hosts line: its address and names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peer {
    /// Its address on the network.
    pub addr: Ipv4Addr,
    /// Its name, short id and aliases.
    pub names: Vec<String>,
}

/// The lines every hosts file starts with (Docker's).
const BASE: &str = "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n";

/// The hosts file of the container of `spec` at address `addr` (none: no bridge network),
/// whose `--add-host host-gateway` means `gateway`, with the lines of `peers` and `links`.
pub fn text(
    spec: &RunSpec,
    addr: Option<Ipv4Addr>,
    gateway: Ipv4Addr,
    links: &[Peer],
    peers: &[Peer],
) -> String {
    let mut hosts = String::from(BASE);
    for (name, ip) in &spec.net.add_hosts {
        let ip = if ip == "host-gateway" {
            gateway.to_string()
        } else {
            ip.clone()
        };
        hosts.push_str(&format!("{ip}\t{name}\n"));
    }
    for l in links {
        hosts.push_str(&format!("{}\t{}\n", l.addr, l.names.join(" ")));
    }
    if spec.namespaces.uts {
        match addr {
            Some(a) => hosts.push_str(&format!("{a}\t{}\n", spec.hostname)),
            None => hosts.push_str(&format!("127.0.1.1\t{}\n", spec.hostname)),
        }
    }
    for p in peers {
        hosts.push_str(&format!("{}\t{}\n", p.addr, p.names.join(" ")));
    }
    hosts
}

fn names(spec: &RunSpec) -> Vec<String> {
    let mut n = vec![spec.name.clone(), spec.id[..12].to_string()];
    let extra = spec.net.extra.iter().flat_map(|x| x.aliases.iter());
    for a in spec.net.aliases.iter().chain(extra) {
        if !n.contains(a) {
            n.push(a.clone());
        }
    }
    n
}

/// The running containers of user network `network` besides `except`, with `with` (a
/// container starting now, whose record does not say running yet) counted as running.
pub fn peers(root: &Path, network: &str, except: &str, with: Option<&str>) -> Vec<Peer> {
    let containers = Containers::at(root);
    let Ok(members) = super::store::members(root, network) else {
        return vec![];
    };
    members
        .into_iter()
        .filter(|(id, _)| id != except)
        .filter_map(|(id, addr)| {
            let c = containers.find(&id).ok()?;
            (Some(id.as_str()) == with || c.is_alive()).then(|| Peer {
                addr,
                names: names(&c.spec),
            })
        })
        .collect()
}

/// The user networks container `spec` is on: its `--network` one and those of
/// `network connect`.
pub fn user_networks(spec: &RunSpec) -> Vec<String> {
    let mut n: Vec<String> = spec
        .net
        .network
        .iter()
        .filter(|_| !spec.net.primary_disconnected)
        .cloned()
        .collect();
    n.extend(spec.net.extra.iter().map(|x| x.network.clone()));
    n
}

/// The running containers of every user network of `spec`, one line per address.
pub fn peers_all(root: &Path, spec: &RunSpec, with: Option<&str>) -> Vec<Peer> {
    let mut out: Vec<Peer> = vec![];
    for n in user_networks(spec) {
        for p in peers(root, &n, &spec.id, with) {
            if !out.iter().any(|o| o.addr == p.addr) {
                out.push(p);
            }
        }
    }
    out
}

/// Rewrite in place the hosts file of container `id` (a running one), from the store.
pub fn rewrite_one(root: &Path, id: &str) -> Result<()> {
    let containers = Containers::at(root);
    let Ok(c) = containers.find(id) else {
        return Ok(());
    };
    let own = super::store::leased_on(root, c.spec.network_name(), id);
    let gateway = own
        .as_ref()
        .map(|(n, _)| n.gateway)
        .unwrap_or(Ipv4Addr::UNSPECIFIED);
    let others = peers_all(root, &c.spec, None);
    let links = link_peers(root, &c.spec);
    let t = text(&c.spec, own.map(|(_, a)| a), gateway, &links, &others);
    rewrite_in_place(&c.spec.bundle, &t)
}

/// Rewrite in place the hosts file of every running container of user network `network`
/// (and of `with`, starting now; never of `gone`, stopping now).
pub fn refresh(root: &Path, network: &str, with: Option<&str>, gone: Option<&str>) -> Result<()> {
    if network == super::store::DEFAULT_NETWORK {
        return Ok(());
    }
    let dir = super::store::dir(root, network);
    if !dir.join("network.json").exists() {
        return Ok(());
    }
    let _lock = crate::files::lock(&dir.join(".lock"))?;
    let containers = Containers::at(root);
    let gateway = super::store::read(root, network)?
        .map(|n| n.gateway)
        .unwrap_or(Ipv4Addr::UNSPECIFIED);
    for (id, addr) in super::store::members(root, network)? {
        if Some(id.as_str()) == gone {
            continue;
        }
        let Ok(c) = containers.find(&id) else {
            continue;
        };
        if !(Some(id.as_str()) == with || c.is_alive()) {
            continue;
        }
        // Its own line is its address on its first network (this one's if that is it).
        let addr = super::store::leased_on(root, c.spec.network_name(), &id)
            .map(|(_, a)| a)
            .unwrap_or(addr);
        let others: Vec<Peer> = peers_all(root, &c.spec, with)
            .into_iter()
            .filter(|p| Some(p.names[1].as_str()) != gone.map(|g| &g[..12]))
            .collect();
        let links = link_peers(root, &c.spec);
        let t = text(&c.spec, Some(addr), gateway, &links, &others);
        rewrite_in_place(&c.spec.bundle, &t)?;
    }
    Ok(())
}

/// The hosts lines of `--link`: the linked containers' addresses on the default network,
/// with the alias, their hostname and name.
pub fn link_peers(root: &Path, spec: &RunSpec) -> Vec<Peer> {
    let containers = Containers::at(root);
    spec.net
        .links
        .iter()
        .filter_map(|(id, name, alias)| {
            let c = containers.find(id).ok()?;
            let (_, addr) = super::store::leased_on(root, c.spec.network_name(), id)?;
            let hostname = c.spec.hostname;
            let mut n = vec![alias.clone()];
            for x in [hostname, name.clone()] {
                if !x.is_empty() && !n.contains(&x) {
                    n.push(x);
                }
            }
            Some(Peer { addr, names: n })
        })
        .collect()
}

/// `<bundle>/hosts` opened with `flags` through a descriptor of the bundle, beneath it and
/// with no symlink followed (the container's root owns the file it has bind-mounted).
/// O_NONBLOCK always: that root may hold a lease on it (or make it anything but a file);
/// the engine, maybe holding a network's lock, must never wait on it: the open fails at
/// once (EWOULDBLOCK) instead, and the caller warns.
fn open_hosts(bundle: &Path, flags: i32) -> Result<std::fs::File> {
    let dirfd = crate::sys::fs::open_root(bundle).map_err(Error::io("open", bundle))?;
    let fd = crate::sys::fs::openat2(
        std::os::fd::AsFd::as_fd(&dirfd),
        Path::new("hosts"),
        flags | libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC,
        0,
        libc::RESOLVE_BENEATH | libc::RESOLVE_NO_SYMLINKS,
    )
    .map_err(Error::io("open", &bundle.join("hosts")))?;
    Ok(std::fs::File::from(fd))
}

/// The hosts file of the container whose bundle is `bundle` (`--network container:` shares
/// it), read through [`open_hosts`].
pub fn read_of(bundle: &Path) -> Result<String> {
    use std::io::Read as _;
    let mut text = String::new();
    open_hosts(bundle, libc::O_RDONLY)?
        .read_to_string(&mut text)
        .map_err(Error::io("read", &bundle.join("hosts")))?;
    Ok(text)
}

/// `<bundle>/hosts` truncated and written in place: the same inode the container has
/// bind-mounted.
fn rewrite_in_place(bundle: &Path, text: &str) -> Result<()> {
    open_hosts(bundle, libc::O_WRONLY | libc::O_TRUNC)?
        .write_all(text.as_bytes())
        .map_err(Error::io("write", &bundle.join("hosts")))
}
