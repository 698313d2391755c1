//! Container networking. Today: the host-side plumbing over rtnetlink ([`netlink`]), each
//! request a traced call through the seam; bridge networking builds on it (issue 11).

pub mod bridge;
pub mod ipam;
pub mod netlink;
pub mod nft;

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
    /// The kernel's answer could not be understood.
    #[error("netlink {command}: the kernel's answer is not what was expected ({detail}); report this as a dockling bug")]
    Reply {
        /// The request, as the `ip` command that sends it.
        command: String,
        /// What was wrong with the answer.
        detail: String,
    },
}
