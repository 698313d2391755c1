//! A container on a bridge: the bridge made once (idempotently), then per container a veth
//! pair whose host end (`veth<7 hex of the id>`) is plugged into the bridge and whose peer is
//! born as `eth0` in the container's network namespace, configured from inside that
//! namespace (address, up, default route via the bridge's address).

use std::net::Ipv4Addr;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::path::Path;

use nix::errno::Errno;
use nix::sched::CloneFlags;

use super::ipam::Subnet;
use super::netlink::Netlink;
use super::NetError;
use crate::sys::{Call, Ret, Sys};

/// The default network's bridge, as Docker's `docker0`.
pub const DEFAULT_BRIDGE: &str = "dockling0";

/// The host end of a container's veth pair: `veth` and the first 7 hex digits of its id.
pub fn veth_name(id: &str) -> String {
    format!("veth{}", &id[..id.len().min(7)])
}

fn errno_is(e: &NetError, errno: Errno) -> bool {
    matches!(e, NetError::Sys(s) if s.errno == errno)
}

/// The host end of a container's `n`-th extra interface (`network connect`): `vx`, 7 hex
/// digits of the id, `.` and `n`.
pub fn extra_veth_name(id: &str, n: usize) -> String {
    format!("vx{}.{n}", &id[..id.len().min(7)])
}

/// Delete link `name` (gone already counts as done).
pub fn delete(sys: &Sys, name: &str) -> Result<(), NetError> {
    let nl = Netlink::open(sys)?;
    match nl.delete_link(name) {
        Err(e) if !errno_is(&e, Errno::ENODEV) => return Err(e),
        _ => {}
    }
    nl.close()
}

/// Make bridge `name` with the subnet's gateway address, up, unless it is there already
/// (each step takes the kernel's EEXIST as done: two commands racing converge). Its index.
pub fn ensure_bridge(sys: &Sys, name: &str, subnet: Subnet) -> Result<u32, NetError> {
    ensure_bridge_at(sys, name, subnet.gateway(), subnet)
}

/// [`ensure_bridge`] with the bridge's address `gateway` (`network create --gateway`).
pub fn ensure_bridge_at(
    sys: &Sys,
    name: &str,
    gateway: Ipv4Addr,
    subnet: Subnet,
) -> Result<u32, NetError> {
    let nl = Netlink::open(sys)?;
    match nl.create_bridge(name) {
        Err(e) if !errno_is(&e, Errno::EEXIST) => return Err(e),
        _ => {}
    }
    let index = nl.link_index(name)?;
    match nl.add_address(name, index, gateway, subnet.prefix) {
        Err(e) if !errno_is(&e, Errno::EEXIST) => return Err(e),
        _ => {}
    }
    nl.link_up(name)?;
    nl.close()?;
    Ok(index)
}

/// Plug the container whose network namespace is `netns` (of process `pid`) into `bridge`
/// with address `addr`: the veth pair, the host end on the bridge and up, then from inside
/// the namespace eth0's address, eth0 up and the default route. Returns the host end's name.
/// On failure the pair is deleted again (deleting one end deletes both).
#[allow(clippy::too_many_arguments)]
pub fn attach(
    sys: &Sys,
    bridge: &str,
    bridge_index: u32,
    id: &str,
    netns: BorrowedFd<'_>,
    pid: i32,
    addr: Ipv4Addr,
    subnet: Subnet,
) -> Result<String, NetError> {
    attach_via(
        sys,
        bridge,
        bridge_index,
        id,
        netns,
        pid,
        (addr, subnet, super::store::mac(addr)),
        subnet.gateway(),
    )
}

/// [`attach`] with the default route via `gateway` (a user network's, which
/// `network create --gateway` may put anywhere in the subnet).
#[allow(clippy::too_many_arguments)]
pub fn attach_via(
    sys: &Sys,
    bridge: &str,
    bridge_index: u32,
    id: &str,
    netns: BorrowedFd<'_>,
    pid: i32,
    (addr, subnet, mac): (Ipv4Addr, Subnet, [u8; 6]),
    gateway: Ipv4Addr,
) -> Result<String, NetError> {
    attach_as(
        sys,
        (bridge, bridge_index),
        (&veth_name(id), "eth0"),
        netns,
        pid,
        (addr, subnet, mac),
        Some(gateway),
    )
}

/// [`attach_via`] with the pair's names given (`network connect`: `eth1`… inside, see
/// [`extra_veth_name`]) and the default route only with `gateway` (the first interface's).
pub fn attach_as(
    sys: &Sys,
    (bridge, bridge_index): (&str, u32),
    (host, peer): (&str, &str),
    netns: BorrowedFd<'_>,
    pid: i32,
    (addr, subnet, mac): (Ipv4Addr, Subnet, [u8; 6]),
    gateway: Option<Ipv4Addr>,
) -> Result<String, NetError> {
    let host = host.to_string();
    let nl = Netlink::open(sys)?;
    match nl.create_veth(&host, peer, Some(mac), netns, &pid.to_string()) {
        // A pair of this container's last run that the kernel has not deleted yet (it does
        // when that run's namespace dies, asynchronously): the name is this container's
        // alone, so it goes and the pair is made again.
        Err(e) if errno_is(&e, Errno::EEXIST) => {
            match nl.delete_link(&host) {
                Err(e) if !errno_is(&e, Errno::ENODEV) => return Err(e),
                _ => {}
            }
            nl.create_veth(&host, peer, Some(mac), netns, &pid.to_string())?;
        }
        other => other?,
    }
    let done = (|| {
        nl.set_master(&host, bridge, bridge_index)?;
        nl.link_up(&host)?;
        configure_inside(sys, netns, pid, peer, (addr, subnet), gateway)
    })();
    if let Err(e) = done {
        let _ = nl.delete_link(&host);
        return Err(e);
    }
    nl.close()?;
    Ok(host)
}

/// Run `f` with a descriptor of process `pid`'s network namespace, opened through the seam
/// and closed after it, whatever `f` returned.
pub fn with_netns_of<T, E: From<crate::sys::SysError>>(
    sys: &Sys,
    pid: i32,
    f: impl FnOnce(BorrowedFd<'_>) -> Result<T, E>,
) -> Result<T, E> {
    let path = std::path::PathBuf::from(format!("/proc/{pid}/ns/net"));
    let fd = match sys.perform(Call::Open {
        path: path.clone(),
        flags: libc::O_RDONLY | libc::O_CLOEXEC,
        mode: 0,
    })? {
        Ret::Fd(fd) => fd,
        other => other.value() as i32,
    };
    // SAFETY: the seam just opened this descriptor; it stays open until the close below.
    let done = f(unsafe { BorrowedFd::borrow_raw(fd) });
    let closed = sys.run(Call::Close {
        fd,
        object: path.display().to_string(),
    });
    let value = done?;
    closed?;
    Ok(value)
}

/// eth0's side, through a netlink socket of the container's namespace: join it, configure,
/// and come back to this thread's own namespace (a descriptor of it opened first).
fn configure_inside(
    sys: &Sys,
    netns: BorrowedFd<'_>,
    pid: i32,
    ifname: &str,
    (addr, subnet): (Ipv4Addr, Subnet),
    gateway: Option<Ipv4Addr>,
) -> Result<(), NetError> {
    let own = match sys.perform(Call::Open {
        path: Path::new("/proc/thread-self/ns/net").to_path_buf(),
        flags: libc::O_RDONLY | libc::O_CLOEXEC,
        mode: 0,
    })? {
        Ret::Fd(fd) => fd,
        other => other.value() as i32,
    };
    sys.run(Call::Setns {
        fd: netns.as_raw_fd(),
        kind: CloneFlags::CLONE_NEWNET,
        pid,
    })?;
    let inside = (|| {
        let nl = Netlink::open(sys)?;
        let index = nl.link_index(ifname)?;
        nl.add_address(ifname, index, addr, subnet.prefix)?;
        nl.link_up(ifname)?;
        if let Some(g) = gateway {
            nl.add_default_route(g)?;
        }
        nl.close()
    })();
    // Back whatever happened inside: the engine must not go on in the container's network.
    let back = sys.run(Call::Setns {
        fd: own,
        kind: CloneFlags::CLONE_NEWNET,
        pid: 0,
    });
    let closed = sys.run(Call::Close {
        fd: own,
        object: "/proc/thread-self/ns/net".into(),
    });
    inside?;
    back?;
    closed?;
    Ok(())
}

/// Unplug a container: delete the host end of its pair (the kernel deletes eth0 with it).
/// A pair already gone (the namespace died first) counts as done.
pub fn detach(sys: &Sys, id: &str) -> Result<(), NetError> {
    let nl = Netlink::open(sys)?;
    match nl.delete_link(&veth_name(id)) {
        Err(e) if !errno_is(&e, Errno::ENODEV) => return Err(e),
        _ => {}
    }
    nl.close()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sys::record::Recorder;
    use crate::trace::Tracer;

    #[test]
    fn the_plan_of_a_bridge_and_a_container() {
        let rec = Recorder::new();
        let sys = Sys::new(Box::new(rec.clone()), Tracer::off());
        let index = ensure_bridge(&sys, DEFAULT_BRIDGE, Subnet::DEFAULT).unwrap();
        let devnull = std::fs::File::open("/dev/null").unwrap();
        use std::os::fd::AsFd;
        let host = attach(
            &sys,
            DEFAULT_BRIDGE,
            index,
            "3f2a9e1b7c44aa",
            devnull.as_fd(),
            4242,
            Ipv4Addr::new(172, 17, 0, 2),
            Subnet::DEFAULT,
        )
        .unwrap();
        assert_eq!(host, "veth3f2a9e1");
        detach(&sys, "3f2a9e1b7c44aa").unwrap();
        let script: Vec<String> = rec
            .calls()
            .iter()
            .map(|c| match c.command() {
                Some(cmd) => format!("{}  ≈ {cmd}", c.name()),
                None => format!("{}({})", c.name(), c.args()),
            })
            .filter(|l| !l.starts_with("recvfrom"))
            .collect();
        insta::assert_snapshot!(script
            .join("\n")
            .replace(&format!("setns({}", devnull.as_raw_fd()), "setns(N"));
    }
}
