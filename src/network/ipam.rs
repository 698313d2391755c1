//! Addresses for containers on a bridge network: leases kept in the store.
//!
//! `networks/<name>/leases.json` says which address each container holds and which was handed
//! out last; every change happens under `networks/<name>/.lock` (an `flock`, so a killed
//! command never leaves it held) and is written with a rename (a crash leaves the old file or
//! the new one). Allocation is serial, as Docker's: the next free address after the last one
//! handed out, wrapping, so a just-freed address (whose ARP entries may linger in other
//! containers) is not reused at once. A lease belongs to a container id: taken after the
//! container's record exists, released by `rm`; before each allocation, leases whose
//! container is gone (a killed `rm`, a failed `run`) are reclaimed.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::NetError;
use crate::error::{Error, Result};

/// An IPv4 subnet, `172.17.0.0/16`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Subnet {
    /// The network address (host bits zero).
    pub network: Ipv4Addr,
    /// The prefix length, 8 to 30.
    pub prefix: u8,
}

impl Subnet {
    /// Docker's default bridge subnet.
    pub const DEFAULT: Subnet = Subnet {
        network: Ipv4Addr::new(172, 17, 0, 0),
        prefix: 16,
    };

    fn mask(self) -> u32 {
        u32::MAX << (32 - self.prefix)
    }

    /// The gateway: the bridge's own address, the first of the subnet.
    pub fn gateway(self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.network) + 1)
    }

    /// Whether `addr` is in the subnet.
    pub fn contains(self, addr: Ipv4Addr) -> bool {
        u32::from(addr) & self.mask() == u32::from(self.network)
    }

    /// The addresses containers may get: after the gateway, before the broadcast address.
    pub fn hosts(self) -> std::ops::RangeInclusive<u32> {
        let net = u32::from(self.network);
        (net + 2)..=(net | !self.mask()) - 1
    }
}

impl std::str::FromStr for Subnet {
    type Err = NetError;
    fn from_str(s: &str) -> std::result::Result<Self, NetError> {
        let bad = || NetError::BadSubnet(s.to_string());
        let (addr, prefix) = s.split_once('/').ok_or_else(bad)?;
        let network: Ipv4Addr = addr.parse().map_err(|_| bad())?;
        let prefix: u8 = prefix.parse().map_err(|_| bad())?;
        if !(8..=30).contains(&prefix) {
            return Err(bad());
        }
        let subnet = Subnet { network, prefix };
        if u32::from(network) & !subnet.mask() != 0 {
            return Err(bad());
        }
        Ok(subnet)
    }
}

impl std::fmt::Display for Subnet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

/// One container's address.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lease {
    /// The container's full id.
    pub container: String,
}

/// `leases.json`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Leases {
    /// The address handed out last: the next allocation starts after it.
    pub last: Option<Ipv4Addr>,
    /// Address → lease.
    pub leases: BTreeMap<Ipv4Addr, Lease>,
}

impl Leases {
    /// The address `container` holds.
    pub fn of(&self, container: &str) -> Option<Ipv4Addr> {
        self.leases
            .iter()
            .find(|(_, l)| l.container == container)
            .map(|(a, _)| *a)
    }

    /// The next free address of `subnet` after `last`, wrapping; `None` when all are taken.
    pub fn next_free(&self, subnet: Subnet) -> Option<Ipv4Addr> {
        let hosts = subnet.hosts();
        let (first, end) = (*hosts.start(), *hosts.end());
        if first > end {
            return None;
        }
        let start = match self.last.map(u32::from) {
            Some(l) if (first..end).contains(&l) => l + 1,
            _ => first,
        };
        let count = end - first + 1;
        (0..count)
            .map(|i| first + (start - first + i) % count)
            .map(Ipv4Addr::from)
            .find(|a| !self.leases.contains_key(a))
    }
}

fn read(path: &Path) -> Result<Leases> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
            NetError::Leases {
                path: path.to_path_buf(),
                detail: e.to_string(),
            }
            .into()
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Leases::default()),
        Err(e) => Err(Error::io("read", path)(e)),
    }
}

fn write(path: &Path, leases: &Leases) -> Result<()> {
    let json = serde_json::to_vec_pretty(leases).expect("leases serialise");
    crate::files::replace_atomic(path, &json)
}

/// Give `container` an address of `subnet` on the network whose directory is `dir` (made if
/// missing): the one it holds already, or the next free one. First, under the same lock, the
/// leases of containers for which `alive` says false are dropped.
pub fn allocate(
    dir: &Path,
    subnet: Subnet,
    container: &str,
    alive: impl Fn(&str) -> bool,
) -> Result<Ipv4Addr> {
    allocate_with(dir, subnet, container, None, subnet.gateway(), alive)
}

/// [`allocate`], with the address `want`ed (`--ip`: refused when another container holds
/// it) and a `gateway` that is never handed out (`network create --gateway` may put it
/// anywhere in the subnet).
pub fn allocate_with(
    dir: &Path,
    subnet: Subnet,
    container: &str,
    want: Option<Ipv4Addr>,
    gateway: Ipv4Addr,
    alive: impl Fn(&str) -> bool,
) -> Result<Ipv4Addr> {
    std::fs::create_dir_all(dir).map_err(Error::io("create", dir))?;
    let _lock = crate::files::lock(&dir.join(".lock"))?;
    allocate_locked(dir, subnet, container, want, gateway, alive)
}

/// [`allocate_with`] for a caller that holds `networks/<name>/.lock` already (and checked,
/// under it, that the network still exists).
pub fn allocate_locked(
    dir: &Path,
    subnet: Subnet,
    container: &str,
    want: Option<Ipv4Addr>,
    gateway: Ipv4Addr,
    alive: impl Fn(&str) -> bool,
) -> Result<Ipv4Addr> {
    let path = dir.join("leases.json");
    let mut leases = read(&path)?;
    let before = leases.leases.len();
    leases
        .leases
        .retain(|_, l| l.container == container || alive(&l.container));
    if let Some(addr) = leases.of(container) {
        if leases.leases.len() != before {
            write(&path, &leases)?;
        }
        return Ok(addr);
    }
    let addr = match want {
        Some(a) => {
            let hosts = subnet.hosts();
            if !subnet.contains(a) || !hosts.contains(&u32::from(a)) || a == gateway {
                return Err(NetError::IpNotInSubnet { addr: a, subnet }.into());
            }
            if leases.leases.contains_key(&a) {
                return Err(NetError::IpInUse(a).into());
            }
            a
        }
        None => {
            let mut probe = leases.clone();
            probe.leases.insert(
                gateway,
                Lease {
                    container: String::new(),
                },
            );
            probe.next_free(subnet).ok_or(NetError::Exhausted {
                subnet,
                taken: leases.leases.len(),
            })?
        }
    };
    leases.leases.insert(
        addr,
        Lease {
            container: container.to_string(),
        },
    );
    leases.last = Some(addr);
    write(&path, &leases)?;
    Ok(addr)
}

/// The address `container` holds on the network in `dir`, read without the lock (the file
/// is replaced whole, never written in place).
pub fn held(dir: &Path, container: &str) -> Result<Option<Ipv4Addr>> {
    Ok(read(&dir.join("leases.json"))?.of(container))
}

/// Every lease of the network in `dir` (read without the lock, as [`held`]).
pub fn all(dir: &Path) -> Result<Leases> {
    read(&dir.join("leases.json"))
}

/// Give back the address `container` holds on the network in `dir`; its address, if it held
/// one.
pub fn release(dir: &Path, container: &str) -> Result<Option<Ipv4Addr>> {
    let path = dir.join("leases.json");
    if !path.exists() {
        return Ok(None);
    }
    let _lock = crate::files::lock(&dir.join(".lock"))?;
    let mut leases = read(&path)?;
    let held = leases.of(container);
    if let Some(addr) = held {
        leases.leases.remove(&addr);
        write(&path, &leases)?;
    }
    Ok(held)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(s: &str) -> Ipv4Addr {
        s.parse().unwrap()
    }

    #[test]
    fn subnets_parse_and_refuse() {
        let s: Subnet = "172.17.0.0/16".parse().unwrap();
        assert_eq!(s, Subnet::DEFAULT);
        assert_eq!(s.gateway(), a("172.17.0.1"));
        assert!(s.contains(a("172.17.255.254")));
        assert!(!s.contains(a("172.18.0.1")));
        for bad in [
            "172.17.0.1/16",
            "172.17.0.0",
            "172.17.0.0/31",
            "x/16",
            "10.0.0.0/4",
        ] {
            let err = bad.parse::<Subnet>().unwrap_err().to_string();
            assert!(err.contains(bad), "{bad}: {err}");
        }
    }

    #[test]
    fn allocation_is_serial_wraps_and_does_not_reuse_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let net: Subnet = "10.9.0.0/29".parse().unwrap(); // hosts .2 to .6
        let alive = |_: &str| true;
        let got: Vec<_> = ["c1", "c2", "c3"]
            .iter()
            .map(|c| allocate(dir.path(), net, c, alive).unwrap())
            .collect();
        assert_eq!(got, [a("10.9.0.2"), a("10.9.0.3"), a("10.9.0.4")]);
        assert_eq!(
            allocate(dir.path(), net, "c2", alive).unwrap(),
            a("10.9.0.3")
        );
        assert_eq!(release(dir.path(), "c2").unwrap(), Some(a("10.9.0.3")));
        assert_eq!(release(dir.path(), "c2").unwrap(), None);
        // .3 is free again, but the next ones come first.
        assert_eq!(
            allocate(dir.path(), net, "c4", alive).unwrap(),
            a("10.9.0.5")
        );
        assert_eq!(
            allocate(dir.path(), net, "c5", alive).unwrap(),
            a("10.9.0.6")
        );
        assert_eq!(
            allocate(dir.path(), net, "c6", alive).unwrap(),
            a("10.9.0.3")
        );
        let err = allocate(dir.path(), net, "c7", alive)
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "no free address on 10.9.0.0/29: all 5 are leased to containers; remove some (dockling rm) or use a larger subnet"
        );
    }

    #[test]
    fn leases_of_gone_containers_are_reclaimed() {
        let dir = tempfile::tempdir().unwrap();
        let net: Subnet = "10.9.0.0/29".parse().unwrap();
        for c in ["c1", "c2", "c3", "c4", "c5"] {
            allocate(dir.path(), net, c, |_| true).unwrap();
        }
        // c2 and c4 have no record any more.
        let alive = |c: &str| c != "c2" && c != "c4";
        assert_eq!(
            allocate(dir.path(), net, "c6", alive).unwrap(),
            a("10.9.0.3")
        );
        let leases = read(&dir.path().join("leases.json")).unwrap();
        assert_eq!(leases.of("c2"), None);
        assert_eq!(leases.of("c4"), None);
        assert_eq!(leases.leases.len(), 4);
    }

    #[test]
    fn concurrent_allocations_get_distinct_addresses() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().to_path_buf();
        let threads: Vec<_> = (0..50)
            .map(|i| {
                let path = path.clone();
                std::thread::spawn(move || {
                    allocate(&path, Subnet::DEFAULT, &format!("c{i}"), |_| true).unwrap()
                })
            })
            .collect();
        let mut got: Vec<Ipv4Addr> = threads.into_iter().map(|t| t.join().unwrap()).collect();
        got.sort();
        got.dedup();
        assert_eq!(got.len(), 50, "50 containers, 50 addresses");
        assert_eq!(read(&path.join("leases.json")).unwrap().leases.len(), 50);
    }

    #[test]
    fn a_damaged_leases_file_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("leases.json"), "{not json").unwrap();
        let err = allocate(dir.path(), Subnet::DEFAULT, "c1", |_| true)
            .unwrap_err()
            .to_string();
        assert!(err.contains("leases.json"), "{err}");
        assert!(
            err.contains("system fsck") || err.contains("remove"),
            "{err}"
        );
        assert_eq!(
            std::fs::read_to_string(dir.path().join("leases.json")).unwrap(),
            "{not json",
            "nothing overwritten"
        );
    }
}
