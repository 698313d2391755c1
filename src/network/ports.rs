//! Published ports (`-p`, `-P`): Docker's syntax parsed into bindings, the host ports bound
//! through the seam before the container starts, and the JSON and `dockling port` views.
//!
//! `-p [ip:][hostPort[-end]:]containerPort[-end][/tcp|/udp]`, the grammar of Docker's
//! `nat.ParsePortSpec` (go-connections), with its error texts. A missing host port (`-p 80`,
//! `-p 127.0.0.1::80`) is port 0: the kernel chooses, and `getsockname` reads its choice back.
//! Equal ranges pair up port by port; a host range with one container port is Docker's "any
//! free port in that range". IPv4 only for now (an IPv6 address is refused by name), tcp and
//! udp (sctp is refused).
//!
//! Why bind in the engine, before `clone`: a port another program holds is an error before
//! anything was created (no container to undo), and the kernel queues connections from the
//! `listen` on, so none is refused while the container is still starting. The sockets then go
//! to the proxy (`super::proxy`) already listening, or, in NAT mode, stay open as a
//! reservation (`Mode::Reserve`) that nothing accepts on: the DNAT rule sends the port's
//! traffic to the container before any local socket is looked up. A TCP reservation binds
//! with `SO_REUSEADDR` (so connections of an earlier user of the port, the proxy of a removed
//! container, say, still in `TIME_WAIT` do not block it) and listens once the rules are in
//! ([`hold`]): a listening socket is the only kind no `SO_REUSEADDR` server can bind beside,
//! and one listening before the rules would complete handshakes that nothing accepts.

use std::collections::BTreeMap;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddrV4};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use nix::errno::Errno;
use serde::{Deserialize, Serialize};

pub use crate::sys::Transport as Proto;
use crate::sys::{Call, Ret, Sys};

use super::NetError;

/// The listen backlog of a published TCP port (`SOMAXCONN` on current kernels).
pub const BACKLOG: i32 = 4096;

/// A `-p` the grammar refuses; the texts are Docker's where it has one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PortError {
    /// Not an IP address.
    #[error("invalid IP address: {0}")]
    BadIp(String),
    /// An IPv6 host address.
    #[error("invalid IP address {0}: dockling publishes on IPv4 addresses only for now; use 127.0.0.1 or 0.0.0.0")]
    Ipv6(String),
    /// No container port (`-p 8000:`).
    #[error("no port specified: {0}<empty>")]
    NoPort(String),
    /// A container port that is not a port or range.
    #[error("invalid containerPort: {0}")]
    BadContainerPort(String),
    /// A host port that is not a port or range.
    #[error("invalid hostPort: {0}")]
    BadHostPort(String),
    /// Ranges of different lengths, the container's not a single port.
    #[error("invalid ranges specified for container and host Ports: {container} and {host}")]
    Ranges {
        /// The container part.
        container: String,
        /// The host part.
        host: String,
    },
    /// Not tcp, udp or sctp.
    #[error("invalid proto: {0}")]
    BadProto(String),
    /// sctp, which Docker has and dockling not.
    #[error("invalid proto: sctp is not supported by dockling: publish tcp or udp")]
    Sctp,
}

/// One host port (or host range to choose from) published for one container port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortBinding {
    /// tcp or udp.
    pub proto: Proto,
    /// The host address given (`None`: every address, 0.0.0.0).
    pub host_ip: Option<Ipv4Addr>,
    /// The host port, or the range to take the first free port of; `None`: the kernel chooses.
    pub host_ports: Option<(u16, u16)>,
    /// The port inside the container.
    pub container_port: u16,
}

impl PortBinding {
    /// `80/tcp`, Docker's key for the container port.
    pub fn key(&self) -> String {
        format!("{}/{}", self.container_port, self.proto)
    }

    /// The address bound: the given one or 0.0.0.0.
    pub fn ip(&self) -> Ipv4Addr {
        self.host_ip.unwrap_or(Ipv4Addr::UNSPECIFIED)
    }
}

/// `a` or `a-b` as a range of ports (Go's `ParseUint(s, 10, 16)` for each).
fn port_range(s: &str) -> Option<(u16, u16)> {
    let num = |p: &str| -> Option<u16> {
        if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        p.parse().ok()
    };
    match s.split_once('-') {
        None => num(s).map(|p| (p, p)),
        Some((a, b)) => {
            let (a, b) = (num(a)?, num(b)?);
            (a <= b).then_some((a, b))
        }
    }
}

/// Parse one `-p` into its bindings (a range gives one per port).
pub fn parse_publish(spec: &str) -> Result<Vec<PortBinding>, PortError> {
    // Split as Docker's splitParts: the last part is the container's, the one before it the
    // host port's, everything before that the address (which may hold colons: IPv6).
    let parts: Vec<&str> = spec.split(':').collect();
    let n = parts.len();
    let (ip, host, container) = match n {
        1 => ("".to_string(), "", parts[0]),
        2 => ("".to_string(), parts[0], parts[1]),
        _ => (parts[..n - 2].join(":"), parts[n - 2], parts[n - 1]),
    };
    // Docker's SplitProtoPort: `80` and `80/` are tcp; `/tcp` has no port.
    let (proto, container) = match container.split_once('/') {
        _ if container.is_empty() || container.starts_with('/') => ("", ""),
        None => ("tcp", container),
        Some((p, "")) => ("tcp", p),
        Some((p, proto)) => (proto, p),
    };
    let host_ip = if ip.is_empty() {
        None
    } else {
        let bare = ip
            .strip_prefix('[')
            .and_then(|s| s.strip_suffix(']'))
            .unwrap_or(&ip);
        match bare.parse::<IpAddr>() {
            Ok(IpAddr::V4(a)) if !ip.starts_with('[') => Some(a),
            Ok(IpAddr::V6(_)) => return Err(PortError::Ipv6(ip)),
            _ => return Err(PortError::BadIp(ip)),
        }
    };
    if container.is_empty() {
        return Err(PortError::NoPort(spec.to_string()));
    }
    let (c0, c1) = port_range(container)
        .filter(|(a, _)| *a > 0)
        .ok_or_else(|| PortError::BadContainerPort(container.to_string()))?;
    let hosts = if host.is_empty() {
        None
    } else {
        Some(port_range(host).ok_or_else(|| PortError::BadHostPort(host.to_string()))?)
    };
    if let Some((h0, h1)) = hosts {
        if h1 - h0 != c1 - c0 && c1 != c0 {
            return Err(PortError::Ranges {
                container: container.to_string(),
                host: host.to_string(),
            });
        }
    }
    let proto = match proto.to_ascii_lowercase().as_str() {
        "tcp" => Proto::Tcp,
        "udp" => Proto::Udp,
        "sctp" => return Err(PortError::Sctp),
        _ => return Err(PortError::BadProto(proto.to_string())),
    };
    Ok((c0..=c1)
        .map(|c| PortBinding {
            proto,
            host_ip,
            host_ports: hosts.map(|(h0, h1)| {
                if c0 == c1 {
                    (h0, h1)
                } else {
                    let p = h0 + (c - c0);
                    (p, p)
                }
            }),
            container_port: c,
        })
        .collect())
}

/// Every `-p` of a command line, in order.
pub fn parse_all<S: AsRef<str>>(specs: &[S]) -> Result<Vec<PortBinding>, PortError> {
    let mut all = Vec::new();
    for s in specs {
        all.extend(parse_publish(s.as_ref())?);
    }
    Ok(all)
}

/// `-P`: every port the image exposes (`ExposedPorts` keys: `80/tcp`, `53/udp`, `8000-8002`)
/// on a port the kernel chooses, except those a `-p` already publishes (Docker's rule).
pub fn publish_all<S: AsRef<str>>(
    exposed: &[S],
    explicit: &[PortBinding],
) -> Result<Vec<PortBinding>, PortError> {
    let mut out = Vec::new();
    for key in exposed {
        for b in parse_publish(key.as_ref())? {
            let taken = explicit
                .iter()
                .chain(out.iter())
                .any(|e: &PortBinding| e.proto == b.proto && e.container_port == b.container_port);
            if !taken {
                out.push(b);
            }
        }
    }
    Ok(out)
}

/// The host ports a container's spec asks to bind: every `-p`, then with `-P` every exposed
/// port no `-p` has.
pub fn bindings(ports: &crate::spec::Ports) -> Result<Vec<PortBinding>, PortError> {
    let mut all = parse_all(&ports.publish)?;
    if ports.publish_all {
        let more = publish_all(&ports.exposed, &all)?;
        all.extend(more);
    }
    Ok(all)
}

/// One host address Docker's JSON shows for a port.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostBinding {
    /// `""` (not given) or an address.
    #[serde(rename = "HostIp")]
    pub host_ip: String,
    /// `""` (not given), a port, or a range (`8000-8010`).
    #[serde(rename = "HostPort")]
    pub host_port: String,
}

/// `HostConfig.PortBindings`: what was asked for, keyed `80/tcp` (sorted as Go sorts map keys).
pub type PortBindings = BTreeMap<String, Vec<HostBinding>>;

/// `NetworkSettings.Ports`: what is bound; an exposed port that is not published is `null`.
pub type PortMap = BTreeMap<String, Option<Vec<HostBinding>>>;

/// `HostConfig.PortBindings` of these bindings.
pub fn port_bindings(bindings: &[PortBinding]) -> PortBindings {
    let mut map = PortBindings::new();
    for b in bindings {
        map.entry(b.key()).or_default().push(HostBinding {
            host_ip: b.host_ip.map(|a| a.to_string()).unwrap_or_default(),
            host_port: match b.host_ports {
                None => String::new(),
                Some((a, z)) if a == z => a.to_string(),
                Some((a, z)) => format!("{a}-{z}"),
            },
        });
    }
    map
}

/// A host port as bound: where it listens and where it leads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Published {
    /// tcp or udp.
    pub proto: Proto,
    /// The bound host address and port (the kernel's choice filled in).
    pub host: SocketAddrV4,
    /// The port inside the container.
    pub container_port: u16,
}

/// `NetworkSettings.Ports`: every exposed port (`null` if not published) and every bound one.
pub fn network_ports<S: AsRef<str>>(exposed: &[S], published: &[Published]) -> PortMap {
    let mut map = PortMap::new();
    for key in exposed {
        if let Ok(bs) = parse_publish(key.as_ref()) {
            for b in bs {
                map.entry(b.key()).or_insert(None);
            }
        }
    }
    for p in published {
        map.entry(format!("{}/{}", p.container_port, p.proto))
            .or_insert(None)
            .get_or_insert_with(Vec::new)
            .push(HostBinding {
                host_ip: p.host.ip().to_string(),
                host_port: p.host.port().to_string(),
            });
    }
    map
}

/// What `dockling port` fails with: Docker's text, and its exit code 1.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PortQueryError {
    /// The port asked for is not published. docker/cli's `cli/command/container/port.go`
    /// (v20.10 to v28): `errors.Errorf("Error: No public port '%s' published for %s",
    /// opts.port, opts.container)`, the port as typed (`port web 80` says `'80'`; only
    /// clients before 20.10 added the `/tcp`). Its `invalid port` text below is of the same
    /// versions; v29 words both in lowercase without the `Error: ` prefix.
    #[error("Error: No public port '{port}' published for {container}")]
    NotPublished {
        /// As the user typed it.
        port: String,
        /// As the user named it.
        container: String,
    },
    /// Not a port number.
    #[error("Error: invalid port ({port}): strconv.ParseUint: parsing \"{port}\": {why}")]
    BadPort {
        /// As the user typed it.
        port: String,
        /// Go's reason.
        why: &'static str,
    },
}

impl PortQueryError {
    /// The exit code of `docker port` for it.
    pub fn exit_code(&self) -> i32 {
        1
    }
}

/// `host:port`, brackets around an IPv6 address (Go's `net.JoinHostPort`).
fn join_host_port(ip: &str, port: &str) -> String {
    if ip.contains(':') {
        format!("[{ip}]:{port}")
    } else {
        format!("{ip}:{port}")
    }
}

/// Less in natural order: runs of digits compare as numbers (`9 < 10`), as the Docker CLI's
/// `sortorder.NaturalLess`.
fn natural_cmp(a: &str, b: &str) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let (mut i, mut j) = (0, 0);
    while i < a.len() && j < b.len() {
        if a[i].is_ascii_digit() && b[j].is_ascii_digit() {
            let (si, sj) = (i, j);
            while i < a.len() && a[i].is_ascii_digit() {
                i += 1;
            }
            while j < b.len() && b[j].is_ascii_digit() {
                j += 1;
            }
            let (x, y) = (
                std::str::from_utf8(&a[si..i])
                    .unwrap_or("0")
                    .trim_start_matches('0'),
                std::str::from_utf8(&b[sj..j])
                    .unwrap_or("0")
                    .trim_start_matches('0'),
            );
            let o = x.len().cmp(&y.len()).then(x.cmp(y));
            if o != Ordering::Equal {
                return o;
            }
        } else {
            if a[i] != b[j] {
                return a[i].cmp(&b[j]);
            }
            i += 1;
            j += 1;
        }
    }
    (a.len() - i).cmp(&(b.len() - j))
}

/// The output of `dockling port CONTAINER [PRIVATE_PORT[/PROTO]]` (lines end in `\n`; empty
/// when nothing is published): `80/tcp -> 0.0.0.0:8000` for every binding, or just
/// `0.0.0.0:8000` for the one port asked, in the Docker CLI's natural order.
pub fn format_port(
    container: &str,
    ports: &PortMap,
    private: Option<&str>,
) -> Result<String, PortQueryError> {
    let mut out: Vec<String> = Vec::new();
    match private {
        Some(asked) => {
            let (port, proto) = asked.split_once('/').unwrap_or((asked, "tcp"));
            let proto = if proto.is_empty() { "tcp" } else { proto };
            if port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()) {
                return Err(PortQueryError::BadPort {
                    port: port.to_string(),
                    why: "invalid syntax",
                });
            }
            if port.parse::<u16>().is_err() {
                return Err(PortQueryError::BadPort {
                    port: port.to_string(),
                    why: "value out of range",
                });
            }
            let frontends = ports
                .get(&format!("{port}/{proto}"))
                .and_then(|f| f.as_ref())
                .filter(|f| !f.is_empty())
                .ok_or_else(|| PortQueryError::NotPublished {
                    port: asked.to_string(),
                    container: container.to_string(),
                })?;
            out.extend(
                frontends
                    .iter()
                    .map(|f| join_host_port(&f.host_ip, &f.host_port)),
            );
        }
        None => {
            for (from, frontends) in ports {
                for f in frontends.iter().flatten() {
                    out.push(format!(
                        "{from} -> {}",
                        join_host_port(&f.host_ip, &f.host_port)
                    ));
                }
            }
        }
    }
    out.sort_by(|a, b| natural_cmp(a, b));
    Ok(out.into_iter().map(|l| l + "\n").collect())
}

/// `ps`'s PORTS cell: `0.0.0.0:8000->80/tcp` for a bound port, `80/tcp` for one exposed and
/// not published, joined by `, ` in the Docker CLI's order (natural, by the text). Docker
/// folds runs of consecutive ports into ranges; dockling lists them one by one.
pub fn display_ports(ports: &PortMap) -> String {
    let mut cells: Vec<String> = Vec::new();
    for (key, frontends) in ports {
        match frontends {
            Some(f) if !f.is_empty() => cells.extend(
                f.iter()
                    .map(|h| format!("{}->{key}", join_host_port(&h.host_ip, &h.host_port))),
            ),
            _ => cells.push(key.clone()),
        }
    }
    cells.sort_by(|a, b| natural_cmp(a, b));
    cells.join(", ")
}

/// Bind the sockets for the proxy to accept on, or as a reservation for NAT mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// socket, bind, listen (TCP): the proxy accepts.
    Listen,
    /// socket, bind; TCP listens with a backlog of one once the NAT rules are in ([`hold`]):
    /// the port is held, nothing accepts on it (the rules take its traffic first).
    Reserve,
}

/// The backlog of a TCP reservation: nothing is meant to arrive.
const RESERVE_BACKLOG: i32 = 1;

/// One bound host port, its socket open. Dropping it closes the socket (frees the port).
#[derive(Debug)]
pub struct Listener {
    /// Where it is bound and where it leads.
    pub published: Published,
    /// True if `listen` was called (TCP: at bind time for the proxy, at [`hold`] for NAT).
    pub listening: bool,
    /// Bound for the proxy or as a NAT-mode reservation.
    pub mode: Mode,
    raw: RawFd,
    // None in a dry run: the recorder's descriptors are made up, never closed.
    fd: Option<OwnedFd>,
}

impl Listener {
    /// The socket's descriptor.
    pub fn as_raw_fd(&self) -> RawFd {
        self.raw
    }

    /// The socket (None in a dry run).
    pub fn fd(&self) -> Option<&OwnedFd> {
        self.fd.as_ref()
    }
}

/// Bind and listen on every published host port, through the seam, in order. On any error
/// every socket opened so far is closed again: nothing is left bound.
pub fn bind_all(sys: &Sys, bindings: &[PortBinding]) -> Result<Vec<Listener>, NetError> {
    bind_with(sys, bindings, Mode::Listen)
}

/// NAT mode, once the container's rules are in: every reserved TCP port starts listening
/// (backlog 1; nothing accepts, the rules take its traffic first), so no other server can
/// bind beside it. A port some other program took in the meantime is the same error as at
/// bind time.
pub fn hold(sys: &Sys, listeners: &mut [Listener]) -> Result<(), NetError> {
    for l in listeners
        .iter_mut()
        .filter(|l| l.mode == Mode::Reserve && l.published.proto == Proto::Tcp && !l.listening)
    {
        let addr = l.published.host;
        match sys.run(Call::Listen {
            fd: l.raw,
            backlog: RESERVE_BACKLOG,
            addr,
        }) {
            Ok(_) => l.listening = true,
            Err(e) if e.errno == Errno::EADDRINUSE => {
                return Err(NetError::PortInUse {
                    proto: l.published.proto,
                    addr,
                    container_port: l.published.container_port,
                })
            }
            Err(e) => {
                return Err(NetError::Bind {
                    proto: l.published.proto,
                    addr,
                    errno: e.errno,
                })
            }
        }
    }
    Ok(())
}

/// [`bind_all`] in either [`Mode`].
pub fn bind_with(
    sys: &Sys,
    bindings: &[PortBinding],
    mode: Mode,
) -> Result<Vec<Listener>, NetError> {
    let mut done: Vec<Listener> = Vec::new();
    for b in bindings {
        let (first, last) = b.host_ports.unwrap_or((0, 0));
        let mut port = first;
        let listener = loop {
            let addr = SocketAddrV4::new(b.ip(), port);
            // Two SO_REUSEADDR sockets that do not listen yet may share a port: the kernel
            // would not catch a port this run already holds, so it is checked here.
            let taken = port != 0
                && done.iter().any(|l| {
                    l.published.proto == b.proto
                        && l.published.host.port() == port
                        && (l.published.host.ip() == addr.ip()
                            || l.published.host.ip().is_unspecified()
                            || addr.ip().is_unspecified())
                });
            let bound = if taken {
                Err(Errno::EADDRINUSE)
            } else {
                bind_one(sys, b, addr, mode)
            };
            match bound {
                Ok(l) => break l,
                Err(Errno::EADDRINUSE) if port < last => port += 1,
                Err(Errno::EADDRINUSE) => {
                    let twice = done.iter().any(|l| {
                        l.published.proto == b.proto
                            && l.published.host.port() == port
                            && (l.published.host.ip() == addr.ip()
                                || l.published.host.ip().is_unspecified()
                                || addr.ip().is_unspecified())
                    });
                    return Err(if twice {
                        NetError::PortTwice {
                            proto: b.proto,
                            port,
                        }
                    } else if first != last {
                        NetError::RangeInUse {
                            proto: b.proto,
                            ip: b.ip(),
                            first,
                            last,
                        }
                    } else {
                        NetError::PortInUse {
                            proto: b.proto,
                            addr,
                            container_port: b.container_port,
                        }
                    });
                }
                Err(errno) => {
                    return Err(NetError::Bind {
                        proto: b.proto,
                        addr,
                        errno,
                    })
                }
            }
        };
        done.push(listener);
    }
    Ok(done)
}

/// socket, SO_REUSEADDR (TCP), bind, listen, and getsockname for a port the kernel chose.
/// The socket is closed on failure.
fn bind_one(sys: &Sys, b: &PortBinding, addr: SocketAddrV4, mode: Mode) -> Result<Listener, Errno> {
    let raw = match sys.perform(Call::SocketPort { transport: b.proto }) {
        Ok(Ret::Fd(fd)) => fd,
        Ok(other) => other.value() as RawFd,
        Err(e) => return Err(e.errno),
    };
    let fd = if sys.is_dry_run() {
        None
    } else {
        // SAFETY: socket(2) just returned this descriptor and nothing else owns it.
        Some(unsafe { OwnedFd::from_raw_fd(raw) })
    };
    let fail = |e: crate::sys::SysError| e.errno;
    // SO_REUSEADDR only for TCP: on a datagram socket it would let a second program bind the
    // very same port. With it a TCP port binds while connections of its previous user (a
    // removed container's proxy) wait out TIME_WAIT. A reservation listens only once its NAT
    // rules are in ([`hold`]): a listener before them would complete handshakes nothing
    // ever accepts, and conntrack would keep those flows from the rules for good.
    let tcp = b.proto == Proto::Tcp;
    if tcp {
        sys.run(Call::SetReuseAddr { fd: raw }).map_err(fail)?;
    }
    sys.run(Call::BindInet {
        fd: raw,
        addr,
        transport: b.proto,
    })
    .map_err(fail)?;
    let listening = tcp && mode == Mode::Listen;
    if listening {
        sys.run(Call::Listen {
            fd: raw,
            backlog: BACKLOG,
            addr,
        })
        .map_err(fail)?;
    }
    let host = if addr.port() == 0 {
        match sys.perform(Call::Getsockname { fd: raw }).map_err(fail)? {
            Ret::SockName(a) => SocketAddrV4::new(*addr.ip(), a.port()),
            _ => addr,
        }
    } else {
        addr
    };
    debug_assert!(fd.as_ref().is_none_or(|f| f.as_raw_fd() == raw));
    Ok(Listener {
        published: Published {
            proto: b.proto,
            host,
            container_port: b.container_port,
        },
        listening,
        mode,
        raw,
        fd,
    })
}

impl fmt::Display for Published {
    /// `tcp:0.0.0.0:8000:80`, the proxy's `--map`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.proto, self.host, self.container_port)
    }
}

impl std::str::FromStr for Published {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || {
            format!("{s}: expected PROTO:IP:HOSTPORT:CONTAINERPORT, such as tcp:0.0.0.0:8000:80")
        };
        let mut it = s.splitn(2, ':');
        let proto = match it.next() {
            Some("tcp") => Proto::Tcp,
            Some("udp") => Proto::Udp,
            _ => return Err(bad()),
        };
        let rest = it.next().ok_or_else(bad)?;
        let (host, port) = rest.rsplit_once(':').ok_or_else(bad)?;
        Ok(Published {
            proto,
            host: host.parse().map_err(|_| bad())?,
            container_port: port.parse().map_err(|_| bad())?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sys::record::Recorder;
    use crate::trace::Tracer;

    fn b(proto: Proto, ip: Option<&str>, hosts: Option<(u16, u16)>, c: u16) -> PortBinding {
        PortBinding {
            proto,
            host_ip: ip.map(|i| i.parse().unwrap()),
            host_ports: hosts,
            container_port: c,
        }
    }

    #[test]
    fn good_specs_parse_as_docker_does() {
        use Proto::*;
        let table: &[(&str, Vec<PortBinding>)] = &[
            ("80", vec![b(Tcp, None, None, 80)]),
            ("8000:80", vec![b(Tcp, None, Some((8000, 8000)), 80)]),
            ("8000:80/udp", vec![b(Udp, None, Some((8000, 8000)), 80)]),
            ("8000:80/UDP", vec![b(Udp, None, Some((8000, 8000)), 80)]),
            ("8000:80/", vec![b(Tcp, None, Some((8000, 8000)), 80)]),
            ("127.0.0.1::80", vec![b(Tcp, Some("127.0.0.1"), None, 80)]),
            (
                "127.0.0.1:8000:80",
                vec![b(Tcp, Some("127.0.0.1"), Some((8000, 8000)), 80)],
            ),
            (
                "8000-8001:80-81",
                vec![
                    b(Tcp, None, Some((8000, 8000)), 80),
                    b(Tcp, None, Some((8001, 8001)), 81),
                ],
            ),
            ("8000-8010:80", vec![b(Tcp, None, Some((8000, 8010)), 80)]),
            (
                "80-81/udp",
                vec![b(Udp, None, None, 80), b(Udp, None, None, 81)],
            ),
        ];
        for (spec, want) in table {
            assert_eq!(&parse_publish(spec).unwrap(), want, "-p {spec}");
        }
    }

    #[test]
    fn bad_specs_give_dockers_errors() {
        let table = [
            ("", "no port specified: <empty>"),
            ("8000:", "no port specified: 8000:<empty>"),
            ("/tcp", "no port specified: /tcp<empty>"),
            ("foo", "invalid containerPort: foo"),
            ("70000", "invalid containerPort: 70000"),
            ("0", "invalid containerPort: 0"),
            ("81-80", "invalid containerPort: 81-80"),
            ("x:80", "invalid hostPort: x"),
            ("70000:80", "invalid hostPort: 70000"),
            ("1.2.3:8000:80", "invalid IP address: 1.2.3"),
            (
                "8000-8001:80-82",
                "invalid ranges specified for container and host Ports: 80-82 and 8000-8001",
            ),
            (
                "8000:80-81",
                "invalid ranges specified for container and host Ports: 80-81 and 8000",
            ),
            ("80/icmp", "invalid proto: icmp"),
            (
                "80/sctp",
                "invalid proto: sctp is not supported by dockling: publish tcp or udp",
            ),
            (
                "[::1]:8000:80",
                "invalid IP address [::1]: dockling publishes on IPv4 addresses only for now; use 127.0.0.1 or 0.0.0.0",
            ),
            (
                "::1:8000:80",
                "invalid IP address ::1: dockling publishes on IPv4 addresses only for now; use 127.0.0.1 or 0.0.0.0",
            ),
            ("[127.0.0.1]:8000:80", "invalid IP address: [127.0.0.1]"),
        ];
        for (spec, want) in table {
            let got = parse_publish(spec).expect_err(spec);
            assert_eq!(got.to_string(), want, "-p {spec}");
        }
    }

    #[test]
    fn publish_all_takes_exposed_ports_not_already_published() {
        let explicit = parse_publish("8000:80").unwrap();
        let all = publish_all(&["80/tcp", "53/udp", "443/tcp", "443/tcp"], &explicit).unwrap();
        assert_eq!(
            all,
            vec![
                b(Proto::Udp, None, None, 53),
                b(Proto::Tcp, None, None, 443)
            ]
        );
    }

    #[test]
    fn json_shapes_are_dockers() {
        let bs = parse_all(&["8000:80", "127.0.0.1::80", "9000-9010:443", "53/udp"]).unwrap();
        assert_eq!(
            serde_json::to_string(&port_bindings(&bs)).unwrap(),
            r#"{"443/tcp":[{"HostIp":"","HostPort":"9000-9010"}],"53/udp":[{"HostIp":"","HostPort":""}],"80/tcp":[{"HostIp":"","HostPort":"8000"},{"HostIp":"127.0.0.1","HostPort":""}]}"#
        );
        let published = [Published {
            proto: Proto::Tcp,
            host: "0.0.0.0:8000".parse().unwrap(),
            container_port: 80,
        }];
        assert_eq!(
            serde_json::to_string(&network_ports(&["80/tcp", "22/tcp"], &published)).unwrap(),
            r#"{"22/tcp":null,"80/tcp":[{"HostIp":"0.0.0.0","HostPort":"8000"}]}"#
        );
    }

    fn sample() -> PortMap {
        let p = |s: &str| s.parse::<Published>().unwrap();
        network_ports(
            &["22/tcp"],
            &[
                p("tcp:0.0.0.0:8000:80"),
                p("udp:127.0.0.1:5353:53"),
                p("tcp:127.0.0.1:9000:9"),
                p("tcp:0.0.0.0:10000:10"),
                p("tcp:127.0.0.1:8001:80"),
            ],
        )
    }

    #[test]
    fn port_lists_in_dockers_natural_order() {
        assert_eq!(
            format_port("web", &sample(), None).unwrap(),
            "9/tcp -> 127.0.0.1:9000\n10/tcp -> 0.0.0.0:10000\n53/udp -> 127.0.0.1:5353\n80/tcp -> 0.0.0.0:8000\n80/tcp -> 127.0.0.1:8001\n"
        );
        assert_eq!(
            format_port("web", &sample(), Some("80")).unwrap(),
            "0.0.0.0:8000\n127.0.0.1:8001\n"
        );
        assert_eq!(
            format_port("web", &sample(), Some("53/udp")).unwrap(),
            "127.0.0.1:5353\n"
        );
        assert_eq!(format_port("web", &PortMap::new(), None).unwrap(), "");
    }

    #[test]
    fn port_not_published_is_dockers_error() {
        for (asked, want) in [
            ("81/tcp", "Error: No public port '81/tcp' published for web"),
            ("53", "Error: No public port '53' published for web"),
            ("22", "Error: No public port '22' published for web"),
            (
                "x",
                "Error: invalid port (x): strconv.ParseUint: parsing \"x\": invalid syntax",
            ),
        ] {
            let e = format_port("web", &sample(), Some(asked)).unwrap_err();
            assert_eq!(e.to_string(), want);
            assert_eq!(e.exit_code(), 1);
        }
    }

    #[test]
    fn binding_is_traced_socket_bind_listen() {
        let rec = Recorder::new();
        let sys = Sys::new(Box::new(rec.clone()), Tracer::off());
        let bs = parse_all(&["127.0.0.1:8000:80", "53/udp"]).unwrap();
        let ls = bind_all(&sys, &bs).unwrap();
        assert_eq!(
            rec.script(),
            "socket(AF_INET, SOCK_STREAM|SOCK_CLOEXEC, IPPROTO_IP)\n\
             setsockopt(100, SOL_SOCKET, SO_REUSEADDR, [1], 4)\n\
             bind(100, {sa_family=AF_INET, sin_port=htons(8000), sin_addr=inet_addr(\"127.0.0.1\")}, 16)\n\
             listen(100, 4096)\n\
             socket(AF_INET, SOCK_DGRAM|SOCK_CLOEXEC, IPPROTO_IP)\n\
             bind(100, {sa_family=AF_INET, sin_port=htons(0), sin_addr=inet_addr(\"0.0.0.0\")}, 16)\n\
             getsockname(100, …, [16])\n"
        );
        assert_eq!(ls[1].published.host.port(), 32768);
        assert!(ls[0].listening && !ls[1].listening);
    }

    #[test]
    fn reserve_mode_binds_and_listens_only_when_held() {
        let rec = Recorder::new();
        let sys = Sys::new(Box::new(rec.clone()), Tracer::off());
        let mut ls = bind_with(
            &sys,
            &parse_all(&["8000:80", "53:53/udp"]).unwrap(),
            Mode::Reserve,
        )
        .unwrap();
        assert_eq!(
            rec.script(),
            "socket(AF_INET, SOCK_STREAM|SOCK_CLOEXEC, IPPROTO_IP)\n\
             setsockopt(100, SOL_SOCKET, SO_REUSEADDR, [1], 4)\n\
             bind(100, {sa_family=AF_INET, sin_port=htons(8000), sin_addr=inet_addr(\"0.0.0.0\")}, 16)\n\
             socket(AF_INET, SOCK_DGRAM|SOCK_CLOEXEC, IPPROTO_IP)\n\
             bind(100, {sa_family=AF_INET, sin_port=htons(53), sin_addr=inet_addr(\"0.0.0.0\")}, 16)\n"
        );
        assert!(ls.iter().all(|l| l.mode == Mode::Reserve && !l.listening));
        hold(&sys, &mut ls).unwrap();
        assert!(
            rec.script().ends_with("listen(100, 1)\n"),
            "{}",
            rec.script()
        );
        assert!(ls[0].listening && !ls[1].listening);
        // Held twice: nothing more.
        let calls = rec.script().lines().count();
        hold(&sys, &mut ls).unwrap();
        assert_eq!(rec.script().lines().count(), calls);
    }

    #[test]
    fn a_port_given_twice_is_refused_even_before_anything_listens() {
        let sys = Sys::new(Box::new(Recorder::new()), Tracer::off());
        let e = bind_with(
            &sys,
            &parse_all(&["8000:80", "8000:81"]).unwrap(),
            Mode::Reserve,
        )
        .unwrap_err();
        assert!(matches!(e, NetError::PortTwice { port: 8000, .. }), "{e}");
    }

    #[test]
    fn in_use_names_the_port_and_what_to_do() {
        let rec = Recorder::new();
        rec.fail_next("bind", Errno::EADDRINUSE);
        let sys = Sys::new(Box::new(rec.clone()), Tracer::off());
        let e = bind_all(&sys, &parse_all(&["8000:80"]).unwrap()).unwrap_err();
        assert_eq!(
            e.to_string(),
            "port 8000 on 0.0.0.0 is already in use by another program: publish on another host port (-p 8001:80) or stop that program"
        );
    }

    #[test]
    fn map_round_trips() {
        for s in ["tcp:0.0.0.0:8000:80", "udp:127.0.0.1:53:53"] {
            assert_eq!(s.parse::<Published>().unwrap().to_string(), s);
        }
        assert!("sctp:1.2.3.4:1:1".parse::<Published>().is_err());
    }
}
