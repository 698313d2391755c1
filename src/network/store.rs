//! Networks in the store: `<root>/networks/<name>/network.json` (what the network is) next to
//! its `leases.json` ([`super::ipam`]). The default network `bridge` (link `dockling0`) is
//! made on first use with the config's `default-subnet`; once made it keeps its subnet, as
//! Docker's `bridge` keeps its own until the daemon is reconfigured. User networks
//! (`network create`, link `br-<12 hex of the id>`) are made under `networks/.lock`: the
//! directory first, `network.json` last by a rename, so a killed `create` leaves a
//! directory without it, which the next `create` or `ls` removes. Their bridge link is made
//! on first use, as the default one.

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
    /// `--label KEY=VALUE` of `network create`.
    #[serde(default)]
    pub labels: std::collections::BTreeMap<String, String>,
}

/// The networks that are no bridge of the store and always listed, as Docker's.
pub const PREDEFINED: [&str; 3] = ["bridge", "host", "none"];

/// The pools `network create` takes a subnet from when none is given, in Docker's order:
/// 172.17.0.0/16 to 172.31.0.0/16, then 192.168.0.0/20, 192.168.16.0/20, …
pub fn default_pools() -> impl Iterator<Item = Subnet> {
    let big = (17..=31u8).map(|b| Subnet {
        network: Ipv4Addr::new(172, b, 0, 0),
        prefix: 16,
    });
    let small = (0..16u8).map(|i| Subnet {
        network: Ipv4Addr::new(192, 168, i * 16, 0),
        prefix: 20,
    });
    big.chain(small)
}

fn overlaps(a: Subnet, b: Subnet) -> bool {
    let p = a.prefix.min(b.prefix);
    let m = u32::MAX << (32 - p);
    u32::from(a.network) & m == u32::from(b.network) & m
}

/// Docker's rule for network names: a letter or digit, then letters, digits, `_.-`.
pub fn valid_name(name: &str) -> bool {
    let mut c = name.chars();
    c.next().is_some_and(|f| f.is_ascii_alphanumeric())
        && c.all(|x| x.is_ascii_alphanumeric() || "_.-".contains(x))
        && name.len() <= 128
}

/// The networks of the store, by name (the default one only once it was made).
pub fn list(root: &Path) -> Result<Vec<Network>> {
    let d = root.join("networks");
    let entries = match std::fs::read_dir(&d) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(vec![]),
        Err(e) => return Err(Error::io("read", &d)(e)),
    };
    let mut out = vec![];
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') {
            continue;
        }
        if let Some(n) = read(root, &name)? {
            out.push(n);
        }
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// The network named `key`, or whose id is or starts with `key`.
pub fn find(root: &Path, key: &str) -> Result<Network> {
    if valid_name(key) {
        if let Some(n) = read(root, key)? {
            return Ok(n);
        }
    }
    let all = list(root)?;
    let mut hits = all
        .iter()
        .filter(|n| n.id.starts_with(key) && !key.is_empty());
    match (hits.next(), hits.next()) {
        (Some(n), None) => Ok(n.clone()),
        _ => Err(NetError::NotFound(key.to_string()).into()),
    }
}

/// `network create`: a user network in the store (its bridge is made on first use).
pub fn create(
    root: &Path,
    name: &str,
    subnet: Option<Subnet>,
    gateway: Option<Ipv4Addr>,
    default_subnet: Subnet,
    labels: std::collections::BTreeMap<String, String>,
) -> Result<Network> {
    if !valid_name(name) {
        return Err(NetError::BadName(name.to_string()).into());
    }
    if PREDEFINED.contains(&name) {
        return Err(NetError::Exists(name.to_string()).into());
    }
    let nets = root.join("networks");
    std::fs::create_dir_all(&nets).map_err(Error::io("create", &nets))?;
    let _lock = crate::files::lock(&nets.join(".lock"))?;
    sweep_half_made(root);
    let existing = list(root)?;
    if existing.iter().any(|n| n.name == name) {
        return Err(NetError::Exists(name.to_string()).into());
    }
    // The default network's subnet is taken even before it was made.
    let mut taken: Vec<(String, Subnet)> = vec![];
    if !existing.iter().any(|n| n.name == DEFAULT_NETWORK) {
        taken.push((DEFAULT_NETWORK.into(), default_subnet));
    }
    for n in &existing {
        taken.push((n.name.clone(), n.subnet()?));
    }
    let subnet = match subnet {
        Some(s) => {
            if let Some((other, _)) = taken.iter().find(|(_, t)| overlaps(*t, s)) {
                return Err(NetError::Overlap {
                    subnet: s,
                    other: other.clone(),
                }
                .into());
            }
            s
        }
        None => default_pools()
            .find(|p| !taken.iter().any(|(_, t)| overlaps(*t, *p)))
            .ok_or(NetError::PoolsExhausted)?,
    };
    let gateway = match gateway {
        Some(g)
            if !subnet.contains(g)
                || !subnet.hosts().contains(&u32::from(g)) && g != subnet.gateway() =>
        {
            return Err(NetError::BadGateway { gateway: g, subnet }.into())
        }
        Some(g) => g,
        None => subnet.gateway(),
    };
    let id = crate::container::new_id();
    let n = Network {
        bridge: format!("br-{}", &id[..12]),
        id,
        name: name.into(),
        driver: "bridge".into(),
        subnet: subnet.to_string(),
        gateway,
        created: crate::container::now_rfc3339(),
        labels,
    };
    let d = dir(root, name);
    std::fs::create_dir_all(&d).map_err(Error::io("create", &d))?;
    crate::fault::point("network.create.dir");
    let json = serde_json::to_vec_pretty(&n).expect("network serialises");
    crate::files::replace_atomic(&d.join("network.json"), &json)?;
    Ok(n)
}

/// Directories of networks whose `create` was killed before `network.json` (the caller
/// holds `networks/.lock`).
fn sweep_half_made(root: &Path) {
    let Ok(entries) = std::fs::read_dir(root.join("networks")) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') || name == DEFAULT_NETWORK {
            continue;
        }
        let p = e.path();
        if !p.join("network.json").exists() {
            let _ = std::fs::remove_dir_all(&p);
        }
    }
}

/// The containers holding an address on network `name` whose record still exists.
pub fn members(root: &Path, name: &str) -> Result<Vec<(String, Ipv4Addr)>> {
    let containers = crate::container::Containers::at(root);
    Ok(ipam::all(&dir(root, name))?
        .leases
        .into_iter()
        .filter(|(_, l)| containers.bundle(&l.container).join("state.json").exists())
        .map(|(a, l)| (l.container, a))
        .collect())
}

/// `network rm`: the network out of the store, refused while containers hold addresses on
/// it. `delete_link` deletes its bridge link first, under the network's locks: if it fails,
/// the network stays in the store (so `network rm` can be run again) and the error says so.
/// Returns the network.
pub fn remove(
    root: &Path,
    key: &str,
    delete_link: impl FnOnce(&Network) -> Result<()>,
) -> Result<Network> {
    if PREDEFINED.contains(&key) {
        return Err(NetError::Predefined(key.to_string()).into());
    }
    let n = find(root, key)?;
    if n.name == DEFAULT_NETWORK {
        return Err(NetError::Predefined(n.name).into());
    }
    let nets = root.join("networks");
    let _lock = crate::files::lock(&nets.join(".lock"))?;
    let d = dir(root, &n.name);
    let _net_lock = crate::files::lock(&d.join(".lock"))?;
    if !members(root, &n.name)?.is_empty() {
        return Err(NetError::InUse {
            name: n.name.clone(),
            id: n.id.clone(),
        }
        .into());
    }
    delete_link(&n).map_err(|e| NetError::LinkKept {
        name: n.name.clone(),
        bridge: n.bridge.clone(),
        source: Box::new(e),
    })?;
    // network.json first: a kill after it leaves a half-made directory, swept later.
    let json = d.join("network.json");
    std::fs::remove_file(&json).map_err(Error::io("remove", &json))?;
    let _ = std::fs::remove_dir_all(&d);
    Ok(n)
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
/// A name that is not one (`../volumes/v/_data`) names no network: it never becomes a path.
/// A file whose name or bridge is not what dockling writes is refused, so nothing read from
/// it can lead the engine to another directory or to a link that is not its own bridge.
pub fn read(root: &Path, name: &str) -> Result<Option<Network>> {
    if !valid_name(name) {
        return Ok(None);
    }
    let path = dir(root, name).join("network.json");
    let bad = |detail: String| -> Error {
        NetError::Leases {
            path: path.clone(),
            detail,
        }
        .into()
    };
    match std::fs::read(&path) {
        Ok(bytes) => {
            let n: Network = serde_json::from_slice(&bytes).map_err(|e| bad(e.to_string()))?;
            let own_bridge = n.bridge == super::bridge::DEFAULT_BRIDGE
                || n.bridge
                    .strip_prefix("br-")
                    .is_some_and(|h| h.len() == 12 && h.bytes().all(|b| b.is_ascii_hexdigit()));
            if n.name != name || !own_bridge {
                return Err(bad(format!(
                    "it names network {:?} on link {:?}, not a network dockling made",
                    n.name, n.bridge
                )));
            }
            Ok(Some(n))
        }
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
        labels: Default::default(),
    };
    let json = serde_json::to_vec_pretty(&n).expect("network serialises");
    crate::files::replace_atomic(&d.join("network.json"), &json)?;
    Ok(n)
}

/// Lease container `id` an address on network `name` (the default one made if needed):
/// `want` with `--ip`.
pub fn lease_on(
    root: &Path,
    name: &str,
    default_subnet: Subnet,
    want: Option<Ipv4Addr>,
    id: &str,
) -> Result<(Network, Ipv4Addr)> {
    let containers = crate::container::Containers::at(root);
    let alive = |other: &str| containers.bundle(other).join("state.json").exists();
    if name == DEFAULT_NETWORK {
        let net = default_network(root, default_subnet)?;
        let addr = ipam::allocate_with(
            &dir(root, &net.name),
            net.subnet()?,
            id,
            want,
            net.gateway,
            alive,
        )?;
        return Ok((net, addr));
    }
    // A user network is read under its lock, the one `network rm` holds while it deletes
    // it: either the lease is taken first (and rm sees a member and refuses), or the network
    // is gone, never a lease in the directory of a deleted network.
    let gone = || Error::from(NetError::NotFound(name.to_string()));
    if read(root, name)?.is_none() {
        return Err(gone());
    }
    let d = dir(root, name);
    let _lock = match crate::files::lock(&d.join(".lock")) {
        Ok(l) => l,
        Err(_) if !d.join("network.json").exists() => return Err(gone()),
        Err(e) => return Err(e),
    };
    let net = read(root, name)?.ok_or_else(gone)?;
    let addr = ipam::allocate_locked(&d, net.subnet()?, id, want, net.gateway, alive)?;
    Ok((net, addr))
}

/// The address container `id` holds on network `name`, if any.
pub fn leased_on(root: &Path, name: &str, id: &str) -> Option<(Network, Ipv4Addr)> {
    let net = read(root, name).ok()??;
    let addr = ipam::held(&dir(root, &net.name), id).ok()??;
    Some((net, addr))
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

/// Give back container `id`'s addresses on every network; the first it held, if any.
pub fn release(root: &Path, id: &str) -> Result<Option<Ipv4Addr>> {
    let mut first = ipam::release(&dir(root, DEFAULT_NETWORK), id)?;
    for n in list(root)? {
        if n.name != DEFAULT_NETWORK {
            let a = ipam::release(&dir(root, &n.name), id)?;
            first = first.or(a);
        }
    }
    Ok(first)
}

/// A container's MAC address: `02:42:` and its IPv4 address's four bytes, as Docker's was
/// (locally administered, and the same for the same address).
pub fn mac(addr: Ipv4Addr) -> [u8; 6] {
    let o = addr.octets();
    [0x02, 0x42, o[0], o[1], o[2], o[3]]
}

/// The MAC address of the container of `spec` at `addr`: its `--mac-address`, else [`mac`].
pub fn mac_of(spec: &crate::spec::RunSpec, addr: Ipv4Addr) -> [u8; 6] {
    let parsed = spec.net.mac.as_deref().and_then(|m| {
        let v: Vec<u8> = m
            .split(':')
            .filter_map(|b| u8::from_str_radix(b, 16).ok())
            .collect();
        <[u8; 6]>::try_from(v).ok()
    });
    parsed.unwrap_or_else(|| mac(addr))
}

/// `aa:bb:cc:dd:ee:ff`.
pub fn mac_text(m: [u8; 6]) -> String {
    m.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// [`mac`] as `02:42:ac:11:00:02`.
pub fn mac_string(addr: Ipv4Addr) -> String {
    mac_text(mac(addr))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_networks_take_dockers_pools_in_order_and_a_half_made_one_is_swept() {
        let root = tempfile::tempdir().unwrap();
        let r = root.path();
        let none = Default::default;
        let a = create(r, "a", None, None, Subnet::DEFAULT, none()).unwrap();
        assert_eq!(a.subnet, "172.18.0.0/16");
        assert_eq!(a.bridge, format!("br-{}", &a.id[..12]));
        let b = create(r, "web", None, None, Subnet::DEFAULT, none()).unwrap();
        assert_eq!(b.subnet, "172.19.0.0/16");
        let err = create(r, "a", None, None, Subnet::DEFAULT, none()).unwrap_err();
        assert!(
            err.to_string()
                .contains("network with name a already exists"),
            "{err}"
        );
        let err = create(
            r,
            "c",
            Some("172.18.4.0/24".parse().unwrap()),
            None,
            Subnet::DEFAULT,
            none(),
        )
        .unwrap_err();
        assert!(err.to_string().contains("overlaps a's"), "{err}");
        // A name that is a path reaches no file; a file that lies about itself is refused.
        let planted = r.join("volumes/v/_data");
        std::fs::create_dir_all(&planted).unwrap();
        let lie = serde_json::to_vec(&Network {
            name: "../volumes/v/_data".into(),
            bridge: "eth0".into(),
            ..a.clone()
        })
        .unwrap();
        std::fs::write(planted.join("network.json"), &lie).unwrap();
        assert!(read(r, "../volumes/v/_data").unwrap().is_none());
        let err = lease_on(r, "../volumes/v/_data", Subnet::DEFAULT, None, "c1").unwrap_err();
        assert!(err.to_string().contains("not found"), "{err}");
        std::fs::create_dir_all(dir(r, "z")).unwrap();
        std::fs::write(dir(r, "z").join("network.json"), &lie).unwrap();
        let err = read(r, "z").unwrap_err();
        assert!(
            err.to_string().contains("not a network dockling made"),
            "{err}"
        );
        std::fs::remove_dir_all(dir(r, "z")).unwrap();
        for bad in ["-x", "a b", "", "x/y"] {
            assert!(
                create(r, bad, None, None, Subnet::DEFAULT, none()).is_err(),
                "{bad}"
            );
        }
        // A create killed before network.json: its directory is swept by the next create.
        std::fs::create_dir_all(dir(r, "half")).unwrap();
        assert_eq!(list(r).unwrap().len(), 2);
        create(r, "d", None, None, Subnet::DEFAULT, none()).unwrap();
        assert!(!dir(r, "half").exists());
        // rm: a link that cannot be deleted keeps the network, and says what to do.
        let kept = remove(r, "web", |_| {
            Err(Error::Usage("netlink ip link delete: EOPNOTSUPP".into()))
        })
        .unwrap_err()
        .to_string();
        assert!(
            kept.contains("the network is kept: run network rm web again"),
            "{kept}"
        );
        assert!(find(r, "web").is_ok());
        // By name or id prefix; predefined names refused.
        let ok = |_: &Network| Ok(());
        assert_eq!(remove(r, &b.id[..6], ok).unwrap().name, "web");
        assert!(remove(r, "bridge", ok)
            .unwrap_err()
            .to_string()
            .contains("pre-defined"));
        // (named "web", not "b": "b" is also a prefix of an id such as "b0bb…", and rm
        // takes id prefixes as Docker does)
        // A lease on a removed network: not found, and no directory made again for it.
        let e = lease_on(r, "web", Subnet::DEFAULT, None, "c1").unwrap_err();
        assert!(e.to_string().contains("network web not found"), "{e}");
        assert!(!dir(r, "web").exists());
        assert!(remove(r, "web", ok)
            .unwrap_err()
            .to_string()
            .contains("not found"));
        // The freed pool is the next one taken.
        assert_eq!(
            create(r, "e", None, None, Subnet::DEFAULT, none())
                .unwrap()
                .subnet,
            "172.19.0.0/16"
        );
    }

    #[test]
    fn the_mac_is_made_of_the_address() {
        assert_eq!(
            mac_string(Ipv4Addr::new(172, 17, 0, 2)),
            "02:42:ac:11:00:02"
        );
    }

    /// `network rm` (here: its locks held while network.json goes) racing a run's lease: the
    /// lease waits for the lock and finds the network gone, rather than leasing on it.
    #[test]
    fn a_lease_racing_network_rm_finds_the_network_gone() {
        let root = tempfile::tempdir().unwrap();
        let r = root.path().to_path_buf();
        create(&r, "n", None, None, Subnet::DEFAULT, Default::default()).unwrap();
        let d = dir(&r, "n");
        let held = crate::files::lock(&d.join(".lock")).unwrap();
        let racer = {
            let r = r.clone();
            std::thread::spawn(move || lease_on(&r, "n", Subnet::DEFAULT, None, "c1"))
        };
        // The lease is waiting on the lock (it read network.json before it, and found it).
        std::thread::sleep(std::time::Duration::from_millis(200));
        std::fs::remove_file(d.join("network.json")).unwrap();
        let _ = std::fs::remove_dir_all(&d);
        drop(held);
        let e = racer.join().unwrap().unwrap_err();
        assert!(e.to_string().contains("network n not found"), "{e}");
        assert!(!d.exists(), "no lease written for a removed network");
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
