//! Container networking. Today: the host-side plumbing over rtnetlink ([`netlink`]), each
//! request a traced call through the seam; bridge networking builds on it (issue 11).

pub mod bridge;
pub mod ipam;
pub mod netlink;
pub mod store;

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
}

impl Endpoint {
    /// What a dry run shows: the default network's first container address, leasing nothing.
    pub fn example() -> Endpoint {
        let subnet = ipam::Subnet::DEFAULT;
        Endpoint {
            bridge: bridge::DEFAULT_BRIDGE.into(),
            subnet,
            addr: std::net::Ipv4Addr::from(u32::from(subnet.network) + 2),
        }
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
    /// The kernel's answer could not be understood.
    #[error("netlink {command}: the kernel's answer is not what was expected ({detail}); report this as a dockling bug")]
    Reply {
        /// The request, as the `ip` command that sends it.
        command: String,
        /// What was wrong with the answer.
        detail: String,
    },
}
