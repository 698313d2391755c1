//! The rtnetlink requests dockling makes, built with `netlink-packet-route` and sent through
//! the seam: one traced `sendto` per request, then `recvfrom` until the kernel's ACK (or its
//! refusal) for that request. Each request carries the `ip` command that sends the same
//! message, which the trace shows under the call.
//!
//! A socket belongs to the network namespace it was opened in: [`Netlink::open`] from the
//! engine configures the host side; opened after `setns` into a container's namespace, the
//! container's interfaces.

use std::cell::Cell;
use std::net::Ipv4Addr;
use std::os::fd::{AsRawFd, BorrowedFd};

use netlink_packet_core::{
    DefaultNla, NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_ACK, NLM_F_CREATE, NLM_F_EXCL,
    NLM_F_REQUEST,
};
use netlink_packet_route::address::{AddressAttribute, AddressMessage};
use netlink_packet_route::link::{
    InfoData, InfoKind, InfoVeth, LinkAttribute, LinkFlags, LinkInfo, LinkMessage,
    LinkProtoInfoBridge,
};
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteHeader, RouteMessage, RouteProtocol, RouteScope, RouteType,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use nix::errno::Errno;

use super::NetError;
use crate::sys::netlink::{self as nl, NlRequest, NlWhat};
use crate::sys::{Call, Ret, Sys, SysError};

/// At most this many `recvfrom` per request: an answer is one or two datagrams.
const MAX_RECVS: usize = 16;

/// One NETLINK_ROUTE socket, in the network namespace of the thread that opened it.
pub struct Netlink<'a> {
    sys: &'a Sys,
    fd: i32,
    seq: Cell<u32>,
    closed: Cell<bool>,
}

impl<'a> Netlink<'a> {
    /// `socket(AF_NETLINK, SOCK_RAW|SOCK_CLOEXEC, NETLINK_ROUTE)`.
    pub fn open(sys: &'a Sys) -> Result<Self, NetError> {
        let fd = match sys.perform(Call::NetlinkSocket {
            proto: nl::NlProto::Route,
        })? {
            Ret::Fd(fd) => fd,
            other => other.value() as i32,
        };
        let nl = Netlink {
            sys,
            fd,
            seq: Cell::new(0),
            closed: Cell::new(false),
        };
        sys.run(Call::NetlinkBind { fd })?;
        Ok(nl)
    }

    /// Close the socket (traced). Dropping it closes it too, ignoring errors.
    pub fn close(self) -> Result<(), NetError> {
        self.closed.set(true);
        Ok(self.sys.run(Call::Close {
            fd: self.fd,
            object: "netlink socket".into(),
        })?)
    }

    fn next_seq(&self) -> u32 {
        // Sequence numbers start at 1 on every socket: a recorded script is deterministic.
        let s = self.seq.get() + 1;
        self.seq.set(s);
        s
    }

    fn build(&self, msg: RouteNetlinkMessage, flags: u16) -> Vec<u8> {
        let mut header = NetlinkHeader::default();
        header.flags = NLM_F_REQUEST | NLM_F_ACK | flags;
        header.sequence_number = self.next_seq();
        let mut m = NetlinkMessage::new(header, NetlinkPayload::InnerMessage(msg));
        m.finalize();
        let mut buf = vec![0u8; m.buffer_len()];
        m.serialize(&mut buf);
        buf
    }

    /// Send one request and read until its ACK; returns the data messages answered before it
    /// (a get's reply). A refusal becomes `netlink <ip command>: <errno>`.
    fn request(
        &self,
        msg: RouteNetlinkMessage,
        flags: u16,
        what: NlWhat,
        command: String,
    ) -> Result<Vec<Vec<u8>>, NetError> {
        let req = NlRequest {
            bytes: self.build(msg, flags),
            what,
            command: command.clone(),
        };
        let seq = req.seq();
        self.sys.run(Call::NetlinkSend { fd: self.fd, req })?;
        let mut data = Vec::new();
        for _ in 0..MAX_RECVS {
            let buf = match self.sys.perform(Call::NetlinkRecv {
                fd: self.fd,
                cap: nl::RECV_CAP,
                seq,
                what,
                command: command.clone(),
            })? {
                Ret::Received(b) => b,
                other => {
                    return Err(NetError::Reply {
                        command,
                        detail: format!("recvfrom gave {other:?}"),
                    })
                }
            };
            for (h, payload) in nl::messages(&buf) {
                if h.seq != seq {
                    continue;
                }
                if h.kind == nl::NLMSG_ERROR {
                    return match nl::error_code(payload) {
                        Some(0) => Ok(data),
                        Some(code) => Err(SysError {
                            name: "netlink",
                            object: command,
                            errno: Errno::from_raw(-code),
                        }
                        .into()),
                        None => Err(NetError::Reply {
                            command,
                            detail: "an NLMSG_ERROR without its error code".into(),
                        }),
                    };
                }
                data.push(payload.to_vec());
            }
        }
        Err(NetError::Reply {
            command,
            detail: format!("no ACK after {MAX_RECVS} reads"),
        })
    }

    /// `ip link add <name> type bridge`.
    pub fn create_bridge(&self, name: &str) -> Result<(), NetError> {
        let mut m = LinkMessage::default();
        m.attributes.push(LinkAttribute::IfName(name.into()));
        m.attributes
            .push(LinkAttribute::LinkInfo(vec![LinkInfo::Kind(
                InfoKind::Bridge,
            )]));
        self.request(
            RouteNetlinkMessage::NewLink(m),
            NLM_F_EXCL | NLM_F_CREATE,
            NlWhat::LinkAddBridge,
            format!("ip link add {name} type bridge"),
        )
        .map(drop)
    }

    /// `ip link add <host> type veth peer name <peer> [address <mac>] netns <netns>`: the
    /// peer is created in the network namespace `netns_fd` names (`netns` is how the command
    /// names it: a pid), with MAC address `mac` if given (a random one otherwise).
    pub fn create_veth(
        &self,
        host: &str,
        peer: &str,
        mac: Option<[u8; 6]>,
        netns_fd: BorrowedFd<'_>,
        netns: &str,
    ) -> Result<(), NetError> {
        let mut p = LinkMessage::default();
        p.attributes.push(LinkAttribute::IfName(peer.into()));
        if let Some(m) = mac {
            p.attributes.push(LinkAttribute::Address(m.to_vec()));
        }
        let address = mac
            .map(|m| {
                let hex: Vec<String> = m.iter().map(|b| format!("{b:02x}")).collect();
                format!(" address {}", hex.join(":"))
            })
            .unwrap_or_default();
        p.attributes
            .push(LinkAttribute::NetNsFd(netns_fd.as_raw_fd()));
        let mut m = LinkMessage::default();
        m.attributes.push(LinkAttribute::IfName(host.into()));
        m.attributes.push(LinkAttribute::LinkInfo(vec![
            LinkInfo::Kind(InfoKind::Veth),
            LinkInfo::Data(InfoData::Veth(InfoVeth::Peer(p))),
        ]));
        self.request(
            RouteNetlinkMessage::NewLink(m),
            NLM_F_EXCL | NLM_F_CREATE,
            NlWhat::LinkAddVeth,
            format!("ip link add {host} type veth peer name {peer}{address} netns {netns}"),
        )
        .map(drop)
    }

    /// `ip link set <name> up`.
    pub fn link_up(&self, name: &str) -> Result<(), NetError> {
        let mut m = LinkMessage::default();
        m.header.flags = LinkFlags::Up;
        m.header.change_mask = LinkFlags::Up;
        m.attributes.push(LinkAttribute::IfName(name.into()));
        self.request(
            RouteNetlinkMessage::SetLink(m),
            0,
            NlWhat::LinkSet,
            format!("ip link set {name} up"),
        )
        .map(drop)
    }

    /// `ip link set <name> master <bridge>` (`bridge_index` from [`Netlink::link_index`]).
    pub fn set_master(&self, name: &str, bridge: &str, bridge_index: u32) -> Result<(), NetError> {
        let mut m = LinkMessage::default();
        m.attributes.push(LinkAttribute::IfName(name.into()));
        m.attributes.push(LinkAttribute::Controller(bridge_index));
        self.request(
            RouteNetlinkMessage::SetLink(m),
            0,
            NlWhat::LinkSet,
            format!("ip link set {name} master {bridge}"),
        )
        .map(drop)
    }

    /// `bridge link set dev <name> hairpin on`: the bridge may send a frame back out of the
    /// port it came in on, so a container reaches its own published port through the host
    /// (`RTM_SETLINK` of family `AF_BRIDGE` on link `index`, `IFLA_PROTINFO` carrying
    /// `IFLA_BRPORT_MODE` 1, as `bridge` sends it).
    pub fn set_hairpin(&self, name: &str, index: u32) -> Result<(), NetError> {
        /// `IFLA_BRPORT_MODE` (linux/if_link.h): the port's hairpin mode.
        const IFLA_BRPORT_MODE: u16 = 4;
        let mut m = LinkMessage::default();
        m.header.interface_family = AddressFamily::Bridge;
        m.header.index = index;
        m.attributes.push(LinkAttribute::ProtoInfoBridge(vec![
            LinkProtoInfoBridge::Other(DefaultNla::new(IFLA_BRPORT_MODE, vec![1])),
        ]));
        self.request(
            RouteNetlinkMessage::SetLink(m),
            0,
            NlWhat::LinkSetHairpin,
            format!("bridge link set dev {name} hairpin on"),
        )
        .map(drop)
    }

    /// `ip link show <name>`: the link's index.
    pub fn link_index(&self, name: &str) -> Result<u32, NetError> {
        let mut m = LinkMessage::default();
        m.attributes.push(LinkAttribute::IfName(name.into()));
        let command = format!("ip link show {name}");
        let data = self.request(
            RouteNetlinkMessage::GetLink(m),
            0,
            NlWhat::LinkGet,
            command.clone(),
        )?;
        data.first()
            .and_then(|p| nl::link_index(p))
            .map(|i| i as u32)
            .ok_or(NetError::Reply {
                command,
                detail: "no link in the answer".into(),
            })
    }

    /// `ip link del <name>`.
    pub fn delete_link(&self, name: &str) -> Result<(), NetError> {
        let mut m = LinkMessage::default();
        m.attributes.push(LinkAttribute::IfName(name.into()));
        self.request(
            RouteNetlinkMessage::DelLink(m),
            0,
            NlWhat::LinkDel,
            format!("ip link del {name}"),
        )
        .map(drop)
    }

    /// `ip addr add <addr>/<prefix> dev <name>` (`index` from [`Netlink::link_index`]).
    pub fn add_address(
        &self,
        name: &str,
        index: u32,
        addr: Ipv4Addr,
        prefix: u8,
    ) -> Result<(), NetError> {
        let mut m = AddressMessage::default();
        m.header.family = AddressFamily::Inet;
        m.header.prefix_len = prefix;
        m.header.index = index;
        m.attributes.push(AddressAttribute::Local(addr.into()));
        m.attributes.push(AddressAttribute::Address(addr.into()));
        self.request(
            RouteNetlinkMessage::NewAddress(m),
            NLM_F_EXCL | NLM_F_CREATE,
            NlWhat::AddrAdd,
            format!("ip addr add {addr}/{prefix} dev {name}"),
        )
        .map(drop)
    }

    /// `ip route add default via <gateway>`.
    pub fn add_default_route(&self, gateway: Ipv4Addr) -> Result<(), NetError> {
        let mut m = RouteMessage::default();
        m.header.address_family = AddressFamily::Inet;
        m.header.table = RouteHeader::RT_TABLE_MAIN;
        m.header.protocol = RouteProtocol::Boot;
        m.header.scope = RouteScope::Universe;
        m.header.kind = RouteType::Unicast;
        m.attributes
            .push(RouteAttribute::Gateway(RouteAddress::Inet(gateway)));
        self.request(
            RouteNetlinkMessage::NewRoute(m),
            NLM_F_EXCL | NLM_F_CREATE,
            NlWhat::RouteAdd,
            format!("ip route add default via {gateway}"),
        )
        .map(drop)
    }
}

impl Drop for Netlink<'_> {
    fn drop(&mut self) {
        if !self.closed.get() {
            let _ = self.sys.run(Call::Close {
                fd: self.fd,
                object: "netlink socket".into(),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sys::record::Recorder;
    use crate::trace::Tracer;

    fn recorded() -> (Recorder, Sys) {
        let rec = Recorder::new();
        let sys = Sys::new(Box::new(rec.clone()), Tracer::off());
        (rec, sys)
    }

    #[test]
    fn a_bridge_and_a_veth_are_one_request_and_one_ack_each() {
        let (rec, sys) = recorded();
        let nl = Netlink::open(&sys).unwrap();
        nl.create_bridge("dockling0").unwrap();
        let index = nl.link_index("dockling0").unwrap();
        assert_eq!(index, 7, "the recorder answers a get with index 7");
        nl.add_address("dockling0", index, Ipv4Addr::new(172, 17, 0, 1), 16)
            .unwrap();
        nl.link_up("dockling0").unwrap();
        let devnull = std::fs::File::open("/dev/null").unwrap();
        use std::os::fd::AsFd;
        nl.create_veth("veth3f2a9e1", "eth0", None, devnull.as_fd(), "4242")
            .unwrap();
        nl.set_master("veth3f2a9e1", "dockling0", index).unwrap();
        nl.add_default_route(Ipv4Addr::new(172, 17, 0, 1)).unwrap();
        nl.delete_link("veth3f2a9e1").unwrap();
        nl.close().unwrap();
        let script: Vec<String> = rec
            .calls()
            .iter()
            .map(|c| format!("{}({})", c.name(), c.args()))
            .collect();
        // The command names the namespace as given ("4242"), never by its descriptor.
        let script = script.join("\n");
        insta::assert_snapshot!(script);
        // Sequence numbers count from 1 on the socket, one per request.
        let seqs: Vec<u32> = rec
            .calls()
            .iter()
            .filter_map(|c| match c {
                Call::NetlinkSend { req, .. } => Some(req.seq()),
                _ => None,
            })
            .collect();
        assert_eq!(seqs, (1..=8).collect::<Vec<_>>());
    }

    #[test]
    fn the_bytes_are_what_the_kernel_reads() {
        let (rec, sys) = recorded();
        let nl = Netlink::open(&sys).unwrap();
        nl.create_bridge("dockling0").unwrap();
        let Call::NetlinkSend { req, .. } = &rec.calls()[2] else {
            panic!("no sendto: {:?}", rec.calls())
        };
        let h = nl::header(&req.bytes).unwrap();
        assert_eq!(h.len as usize, req.bytes.len());
        assert_eq!(h.kind, nl::RTM_NEWLINK);
        assert_eq!(h.flags, 0x605, "REQUEST|ACK|EXCL|CREATE");
        // struct ifinfomsg, then IFLA_IFNAME "dockling0\0" padded to 4 bytes.
        let name_attr = &req.bytes[32..48];
        assert_eq!(&name_attr[..4], &[14, 0, 3, 0]);
        assert_eq!(&name_attr[4..14], b"dockling0\0");
    }

    #[test]
    fn a_refused_request_names_the_command() {
        let (rec, sys) = recorded();
        rec.fail_next("sendto", Errno::ENOBUFS);
        let nl = Netlink::open(&sys).unwrap();
        let err = nl.create_bridge("dockling0").unwrap_err();
        assert_eq!(
            err.to_string(),
            "sendto ip link add dockling0 type bridge: ENOBUFS: No buffer space available"
        );
    }
}
