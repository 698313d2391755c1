//! Networks in the store: `<root>/networks/<name>/network.json` (what the network is) next to
//! its `leases.json` ([`super::ipam`]). Today only the default network `bridge` (link
//! `dockling0`), made on first use with the config's `default-subnet`; once made it keeps its
//! subnet, as Docker's `bridge` keeps its own until the daemon is reconfigured.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::ipam::{self, Subnet};
use super::NetError;
use crate::error::{Error, Result};

/// The default network's name, as Docker's.
pub const DEFAULT_NETWORK: &str = "bridge";

/// `network.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Network {
    /// 64 hex digits, as Docker's network ids.
    pub id: String,
    /// `bridge`.
    pub name: String,
    /// `bridge`: the only driver.
    pub driver: String,
    /// The bridge link, `dockling0`.
    pub bridge: String,
    /// `172.17.0.0/16`.
    pub subnet: String,
    /// The bridge's own address, the containers' default route.
    pub gateway: Ipv4Addr,
    /// When it was made (RFC 3339).
    pub created: String,
}

impl Network {
    /// The subnet, parsed.
    pub fn subnet(&self) -> Result<Subnet> {
        Ok(self.subnet.parse::<Subnet>()?)
    }
}

/// The directory of network `name`.
pub fn dir(root: &Path, name: &str) -> PathBuf {
    root.join("networks").join(name)
}

/// Network `name` as the store has it, if it was made.
pub fn read(root: &Path, name: &str) -> Result<Option<Network>> {
    let path = dir(root, name).join("network.json");
    match std::fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|e| {
            NetError::Leases {
                path: path.clone(),
                detail: e.to_string(),
            }
            .into()
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io("read", &path)(e)),
    }
}

/// The default network, made in the store (not yet as a link: see
/// [`super::bridge::ensure_bridge`]) with `subnet` if it is not there.
pub fn default_network(root: &Path, subnet: Subnet) -> Result<Network> {
    if let Some(n) = read(root, DEFAULT_NETWORK)? {
        return Ok(n);
    }
    let d = dir(root, DEFAULT_NETWORK);
    std::fs::create_dir_all(&d).map_err(Error::io("create", &d))?;
    let _lock = crate::files::lock(&d.join(".lock"))?;
    // Another command may have made it while this one waited for the lock.
    if let Some(n) = read(root, DEFAULT_NETWORK)? {
        return Ok(n);
    }
    let n = Network {
        id: crate::container::new_id(),
        name: DEFAULT_NETWORK.into(),
        driver: "bridge".into(),
        bridge: super::bridge::DEFAULT_BRIDGE.into(),
        subnet: subnet.to_string(),
        gateway: subnet.gateway(),
        created: crate::container::now_rfc3339(),
    };
    let json = serde_json::to_vec_pretty(&n).expect("network serialises");
    crate::files::replace_atomic(&d.join("network.json"), &json)?;
    Ok(n)
}

/// Lease container `id` an address on the default network (the one it holds already, or the
/// next free one), reclaiming first the leases of containers whose record is gone.
pub fn lease(root: &Path, subnet: Subnet, id: &str) -> Result<(Network, Ipv4Addr)> {
    let net = default_network(root, subnet)?;
    let containers = crate::container::Containers::at(root);
    let addr = ipam::allocate(&dir(root, &net.name), net.subnet()?, id, |other| {
        containers.bundle(other).join("state.json").exists()
    })?;
    Ok((net, addr))
}

/// The address container `id` holds on the default network, if any (read without the lock:
/// the file is replaced whole).
pub fn leased(root: &Path, id: &str) -> Option<(Network, Ipv4Addr)> {
    let net = read(root, DEFAULT_NETWORK).ok()??;
    let addr = ipam::held(&dir(root, &net.name), id).ok()??;
    Some((net, addr))
}

/// Give back container `id`'s address on the default network (nothing if it holds none).
pub fn release(root: &Path, id: &str) -> Result<Option<Ipv4Addr>> {
    ipam::release(&dir(root, DEFAULT_NETWORK), id)
}

/// A container's MAC address: `02:42:` and its IPv4 address's four bytes, as Docker's was
/// (locally administered, and the same for the same address).
pub fn mac(addr: Ipv4Addr) -> [u8; 6] {
    let o = addr.octets();
    [0x02, 0x42, o[0], o[1], o[2], o[3]]
}

/// [`mac`] as `02:42:ac:11:00:02`.
pub fn mac_string(addr: Ipv4Addr) -> String {
    mac(addr)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mac_is_made_of_the_address() {
        assert_eq!(
            mac_string(Ipv4Addr::new(172, 17, 0, 2)),
            "02:42:ac:11:00:02"
        );
    }

    #[test]
    fn a_lease_is_kept_until_released_and_reclaimed_when_the_record_is_gone() {
        let root = tempfile::tempdir().unwrap();
        let r = root.path();
        for id in ["aaaa", "bbbb"] {
            std::fs::create_dir_all(r.join("containers").join(id)).unwrap();
            std::fs::write(r.join("containers").join(id).join("state.json"), "{}").unwrap();
        }
        let (net, a) = lease(r, Subnet::DEFAULT, "aaaa").unwrap();
        assert_eq!(net.bridge, "dockling0");
        assert_eq!(a, Ipv4Addr::new(172, 17, 0, 2));
        assert_eq!(lease(r, Subnet::DEFAULT, "aaaa").unwrap().1, a);
        let (_, b) = lease(r, Subnet::DEFAULT, "bbbb").unwrap();
        assert_eq!(b, Ipv4Addr::new(172, 17, 0, 3));
        assert_eq!(leased(r, "bbbb").map(|l| l.1), Some(b));
        // aaaa's record goes (a killed rm): the next allocation reclaims its lease.
        std::fs::remove_dir_all(r.join("containers/aaaa")).unwrap();
        lease(r, Subnet::DEFAULT, "cccc").unwrap();
        assert_eq!(leased(r, "aaaa"), None);
        assert_eq!(release(r, "bbbb").unwrap(), Some(b));
        assert_eq!(leased(r, "bbbb"), None);
    }
}
