//! `network connect`: a running container gets one more interface (`eth1`, `eth2`…) on a
//! network, through the same path as its first (`bridge::attach_as`: a veth pair whose peer
//! is born in the container's namespace, configured from inside it by `setns`), without a
//! default route. The attachment is recorded in the container's spec
//! ([`crate::spec::Attachment`]), so every later start plugs it again.

use std::path::Path;

use crate::error::Result;
use crate::spec::{Attachment, RunSpec};
use crate::sys::Sys;

use super::{bridge, ipam::Subnet, store};

/// Plug `att` into the running container of `spec` (process `pid`): its lease on the network
/// (taken now if it holds none), the network's bridge (made if missing), the veth pair.
pub fn plug_extra(
    sys: &Sys,
    root: &Path,
    default_subnet: Subnet,
    spec: &RunSpec,
    att: &Attachment,
    pid: i32,
) -> Result<std::net::Ipv4Addr> {
    let (net, addr) = store::lease_on(root, &att.network, default_subnet, att.ip, &spec.id)?;
    let subnet = net.subnet()?;
    let index = bridge::ensure_bridge_at(sys, &net.bridge, net.gateway, subnet)?;
    bridge::with_netns_of(sys, pid, |netns| {
        bridge::attach_as(
            sys,
            (&net.bridge, index),
            (
                &bridge::extra_veth_name(&spec.id, att.index),
                &format!("eth{}", att.index),
            ),
            netns,
            pid,
            (addr, subnet, store::mac(addr)),
            None,
        )
    })?;
    Ok(addr)
}
