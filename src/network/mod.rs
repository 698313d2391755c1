//! Container networking. Today: the host-side plumbing over rtnetlink ([`netlink`]), each
//! request a traced call through the seam; bridge networking builds on it (issue 11).
//! Published ports: [`ports`] (parsing, binding before the container starts) and [`proxy`]
//! (the userland proxy process that carries their traffic to the container).

pub mod bridge;
pub mod connect;
pub mod follow;
pub mod hosts;
pub mod ipam;
pub mod netlink;
pub mod nft;
pub mod ports;
pub mod proxy;
pub mod store;

use crate::sys::Transport;

/// Where a container on a bridge network is plugged in: the bridge link, its subnet and the
/// container's leased address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// The bridge link (`dockling0`).
    pub bridge: String,
    /// The network's subnet; its first address is the bridge's, the gateway.
    pub subnet: ipam::Subnet,
    /// The container's address.
    pub addr: std::net::Ipv4Addr,
    /// The network's name (`bridge`, or a user network's).
    pub network: String,
    /// The containers' default route: the bridge's address.
    pub gateway: std::net::Ipv4Addr,
    /// eth0's MAC address (`--mac-address`, else `02:42:` + the address).
    pub mac: [u8; 6],
}

impl Endpoint {
    /// What a dry run shows: the default network's first container address, leasing nothing.
    pub fn example() -> Endpoint {
        let subnet = ipam::Subnet::DEFAULT;
        Endpoint {
            bridge: bridge::DEFAULT_BRIDGE.into(),
            subnet,
            addr: std::net::Ipv4Addr::from(u32::from(subnet.network) + 2),
            network: store::DEFAULT_NETWORK.into(),
            gateway: subnet.gateway(),
            mac: store::mac(std::net::Ipv4Addr::from(u32::from(subnet.network) + 2)),
        }
    }

    /// The endpoint of the container of `spec` on its network (`--network NAME`, else the
    /// default one): its lease, taken now (`--ip`'s address) if it holds none.
    pub fn for_spec(
        root: &std::path::Path,
        default_subnet: ipam::Subnet,
        spec: &crate::spec::RunSpec,
    ) -> crate::error::Result<Endpoint> {
        let name = spec
            .net
            .network
            .as_deref()
            .unwrap_or(store::DEFAULT_NETWORK);
        let (net, addr) = store::lease_on(root, name, default_subnet, spec.net.ip, &spec.id)?;
        Ok(Endpoint {
            bridge: net.bridge.clone(),
            subnet: net.subnet()?,
            addr,
            network: net.name.clone(),
            gateway: net.gateway,
            mac: store::mac_of(spec, addr),
        })
    }

    /// The endpoint of container `id` on the default network of the store at `root`: its
    /// lease, taken now if it holds none (see [`store::lease`]).
    pub fn lease(
        root: &std::path::Path,
        subnet: ipam::Subnet,
        id: &str,
    ) -> crate::error::Result<Endpoint> {
        let (net, addr) = store::lease(root, subnet, id)?;
        Ok(Endpoint {
            bridge: net.bridge.clone(),
            subnet: net.subnet()?,
            addr,
            network: net.name.clone(),
            gateway: net.gateway,
            mac: store::mac(addr),
        })
    }
}

/// A failed network operation.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    /// A call of the seam failed; for a request the kernel refused, its name is `netlink`
    /// and its object the equivalent `ip` command.
    #[error(transparent)]
    Sys(#[from] crate::sys::SysError),
    /// A subnet that is not `a.b.c.d/len` with host bits zero.
    #[error("subnet {0} is not valid: write it as a network address and a prefix length from 8 to 30, such as 172.17.0.0/16")]
    BadSubnet(String),
    /// Every address of a subnet is leased.
    #[error("no free address on {subnet}: all {taken} are leased to containers; remove some (dockling rm) or use a larger subnet")]
    Exhausted {
        /// The subnet.
        subnet: ipam::Subnet,
        /// How many leases it has.
        taken: usize,
    },
    /// A leases file that is not what dockling writes.
    #[error("the address leases {} cannot be read ({detail}): remove the file if no container of that network runs", path.display())]
    Leases {
        /// The file.
        path: std::path::PathBuf,
        /// What is wrong with it.
        detail: String,
    },
    /// An interface name (at most 15 letters, digits, `-`, `_`, `.`) or container id (hex)
    /// that cannot name a bridge, its sysctls or an nf_tables table.
    #[error("{0:?} cannot name a network interface or an nf_tables table: use at most 15 letters, digits, '-', '_' or '.' (a container id: its hex digits)")]
    BadInterfaceName(String),
    /// `--ip` outside the network's subnet (or its gateway, network or broadcast address).
    #[error("no configured subnet contains the IP address {addr}: pick one of {subnet} other than its gateway (see dockling network inspect)")]
    IpNotInSubnet {
        /// The address asked for.
        addr: std::net::Ipv4Addr,
        /// The network's subnet.
        subnet: ipam::Subnet,
    },
    /// `--ip` that another container holds.
    #[error("address {0} is already in use by another container: pick another --ip, or leave it out for a free one")]
    IpInUse(std::net::Ipv4Addr),
    /// A network that is not in the store.
    #[error("network {0} not found")]
    NotFound(String),
    /// `network create` with a name that is taken.
    #[error("network with name {0} already exists")]
    Exists(String),
    /// A network name Docker would refuse.
    #[error("invalid network name {0:?}: use letters, digits and '_', '.', '-', starting with a letter or digit")]
    BadName(String),
    /// `network create --subnet` overlapping another network's.
    #[error("invalid pool request: Pool overlaps with other one on this address space ({subnet} overlaps {other}'s); pick another --subnet")]
    Overlap {
        /// The subnet asked for.
        subnet: ipam::Subnet,
        /// The network that has it.
        other: String,
    },
    /// `network create --gateway` outside the subnet.
    #[error("invalid gateway {gateway}: it must be an address of {subnet}")]
    BadGateway {
        /// The gateway asked for.
        gateway: std::net::Ipv4Addr,
        /// The subnet.
        subnet: ipam::Subnet,
    },
    /// Every predefined pool is taken.
    #[error("could not find an available, non-overlapping IPv4 address pool among the defaults to assign to the network: remove unused networks (dockling network prune) or give --subnet")]
    PoolsExhausted,
    /// `network rm` of bridge, host or none.
    #[error("{0} is a pre-defined network and cannot be removed")]
    Predefined(String),
    /// `network rm` could not delete the network's bridge link: the network is kept.
    #[error("error while removing network {name}: its bridge {bridge} could not be deleted ({source}); the network is kept: run network rm {name} again, or delete the link (ip link delete {bridge}) and then run it")]
    LinkKept {
        /// The network's name.
        name: String,
        /// Its bridge.
        bridge: String,
        /// Why the link stayed.
        source: Box<crate::error::Error>,
    },
    /// `network rm` of a network containers are on.
    #[error("error while removing network: network {name} id {id} has active endpoints")]
    InUse {
        /// Its name.
        name: String,
        /// Its id.
        id: String,
    },
    /// The kernel's answer could not be understood.
    #[error("netlink {command}: the kernel's answer is not what was expected ({detail}); report this as a dockling bug")]
    Reply {
        /// The request, as the `ip` command that sends it.
        command: String,
        /// What was wrong with the answer.
        detail: String,
    },
    /// A `-p` that is not Docker's syntax.
    #[error(transparent)]
    Port(#[from] ports::PortError),
    /// A host port another program holds.
    #[error("port {} on {} is already in use by another program: publish on another host port (-p {}{}:{container_port}) or stop that program", addr.port(), addr.ip(), ip_prefix(addr.ip()), next_port(addr.port()))]
    PortInUse {
        /// tcp or udp.
        proto: Transport,
        /// The address and port asked for.
        addr: std::net::SocketAddrV4,
        /// The container port it was for (for the suggestion).
        container_port: u16,
    },
    /// Every port of a host range is taken.
    #[error("no free {proto} port in {first}-{last} on {ip}: every one is in use by other programs; publish on another range or stop some of them")]
    RangeInUse {
        /// tcp or udp.
        proto: Transport,
        /// The address.
        ip: std::net::Ipv4Addr,
        /// The range.
        first: u16,
        /// The range's end.
        last: u16,
    },
    /// Two `-p` of one container ask for the same host port.
    #[error("host port {port}/{proto} is published twice: give each -p its own host port")]
    PortTwice {
        /// tcp or udp.
        proto: Transport,
        /// The port.
        port: u16,
    },
    /// Binding a host port failed otherwise.
    #[error("bind {proto} {addr}: {errno}")]
    Bind {
        /// tcp or udp.
        proto: Transport,
        /// The address and port.
        addr: std::net::SocketAddrV4,
        /// The kernel's error.
        errno: nix::errno::Errno,
    },
    /// The port proxy could not be started or did not come up.
    #[error("the port proxy (dockling proxy) failed: {0}")]
    Proxy(String),
}

/// The port to suggest instead of a taken one.
fn next_port(p: u16) -> u16 {
    if p == u16::MAX {
        p - 1
    } else {
        p + 1
    }
}

/// `127.0.0.1:` for a suggested `-p` on a given address; nothing for every address.
fn ip_prefix(ip: &std::net::Ipv4Addr) -> String {
    if ip.is_unspecified() {
        String::new()
    } else {
        format!("{ip}:")
    }
}
