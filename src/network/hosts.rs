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

use std::net::Ipv4Addr;
use std::os::fd::{IntoRawFd, OwnedFd};
use std::path::Path;

use crate::container::Containers;
use crate::error::{Error, Result};
use crate::spec::RunSpec;
use crate::sys::{Call, Ret, Sys};

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
    let sys = Sys::quiet();
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
    rewrite_in_place(&sys, &c.spec.bundle, &t)
}

/// Rewrite in place the hosts file of every running container of user network `network`
/// (and of `with`, starting now; never of `gone`, stopping now). Untraced: see
/// [`refresh_traced`].
pub fn refresh(root: &Path, network: &str, with: Option<&str>, gone: Option<&str>) -> Result<()> {
    refresh_traced(&Sys::quiet(), root, network, with, gone)
}

/// [`refresh`] through the seam (the start path's): the network's lock (`openat`, `flock`)
/// and each rewrite (the container's directory opened, its hosts file `openat2`'d beneath it
/// with `O_TRUNC`, `write`, `close`) are traced calls. The records it reads (the network's
/// `network.json` and `leases.json`, each member's `state.json`) are store files, untraced
/// by design: a trace note names them.
pub fn refresh_traced(
    sys: &Sys,
    root: &Path,
    network: &str,
    with: Option<&str>,
    gone: Option<&str>,
) -> Result<()> {
    if network == super::store::DEFAULT_NETWORK {
        return Ok(());
    }
    let dir = super::store::dir(root, network);
    if !dir.join("network.json").exists() {
        return Ok(());
    }
    let _lock = crate::files::lock_traced(sys, &dir.join(".lock"))?;
    let containers = Containers::at(root);
    let gateway = super::store::read(root, network)?
        .map(|n| n.gateway)
        .unwrap_or(Ipv4Addr::UNSPECIFIED);
    let members = super::store::members(root, network)?;
    sys.tracer.note(&format!(
        "names on network {network}: read its network.json and leases.json and the records of its {} member(s) (store files, untraced), then rewrite the hosts file of each running one",
        members.len()
    ));
    for (id, addr) in members {
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
        rewrite_in_place(sys, &c.spec.bundle, &t)?;
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
/// Both opens go through the seam; the directory's descriptor is closed after the lookup,
/// untraced.
fn open_hosts(sys: &Sys, bundle: &Path, flags: i32) -> Result<OwnedFd> {
    let dirfd = sys.open(bundle, libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC)?;
    Ok(sys.openat2(
        std::os::fd::AsFd::as_fd(&dirfd),
        Path::new("hosts"),
        flags | libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC,
        0,
        libc::RESOLVE_BENEATH | libc::RESOLVE_NO_SYMLINKS,
    )?)
}

/// The hosts file of the container whose bundle is `bundle` (`--network container:` shares
/// it), read through [`open_hosts`] (the read itself is plumbing, untraced).
pub fn read_of(sys: &Sys, bundle: &Path) -> Result<String> {
    use std::io::Read as _;
    let mut text = String::new();
    std::fs::File::from(open_hosts(sys, bundle, libc::O_RDONLY)?)
        .read_to_string(&mut text)
        .map_err(Error::io("read", &bundle.join("hosts")))?;
    Ok(text)
}

/// `<bundle>/hosts` truncated and written in place: the same inode the container has
/// bind-mounted (`openat2`, `write`, `close`, traced).
fn rewrite_in_place(sys: &Sys, bundle: &Path, text: &str) -> Result<()> {
    let path = bundle.join("hosts");
    let fd = open_hosts(sys, bundle, libc::O_WRONLY | libc::O_TRUNC)?.into_raw_fd();
    let written = sys.perform(Call::Write {
        fd,
        path: path.clone(),
        data: text.to_string(),
    });
    // Closed whatever the write gave: the descriptor is ours alone.
    let closed = sys.run(Call::Close {
        fd,
        object: path.display().to_string(),
    });
    match written? {
        Ret::Bytes(n) if n < text.len() && !sys.is_dry_run() => {
            return Err(Error::io("write", &path)(std::io::Error::new(
                std::io::ErrorKind::WriteZero,
                format!("wrote {n} of {} bytes", text.len()),
            )))
        }
        _ => {}
    }
    Ok(closed?)
}
