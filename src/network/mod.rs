//! Container networking. Today: the host-side plumbing over rtnetlink ([`netlink`]), each
//! request a traced call through the seam; bridge networking builds on it (issue 11).

pub mod netlink;

/// A failed network operation.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    /// A call of the seam failed; for a request the kernel refused, its name is `netlink`
    /// and its object the equivalent `ip` command.
    #[error(transparent)]
    Sys(#[from] crate::sys::SysError),
    /// The kernel's answer could not be understood.
    #[error("netlink {command}: the kernel's answer is not what was expected ({detail}); report this as a dockling bug")]
    Reply {
        /// The request, as the `ip` command that sends it.
        command: String,
        /// What was wrong with the answer.
        detail: String,
    },
}
