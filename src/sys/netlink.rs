//! The netlink part of the seam: what a rtnetlink request is (its exact bytes, what it does,
//! and the `ip` command that does the same), and rendering of netlink buffers the way
//! `strace` prints their headers.
//!
//! The messages themselves are built with `netlink-packet-route` in [`crate::network::netlink`];
//! here they are only bytes, sent and received through traced calls.

use std::fmt::Write as _;

/// `NLMSG_ERROR`: the kernel's answer to a request with `NLM_F_ACK` (error 0 is an ACK).
pub const NLMSG_ERROR: u16 = 2;
/// `NLMSG_DONE`: the end of a dump.
pub const NLMSG_DONE: u16 = 3;
/// `RTM_NEWLINK`.
pub const RTM_NEWLINK: u16 = 16;
/// The size of `struct nlmsghdr`.
pub const NLMSG_HDRLEN: usize = 16;
/// How much one `recvfrom` asks for: more than any answer to one request.
pub const RECV_CAP: usize = 32768;

/// The netlink protocol a socket speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NlProto {
    /// `NETLINK_ROUTE` (rtnetlink): links, addresses, routes; what `ip` talks.
    Route,
    /// `NETLINK_NETFILTER` (nfnetlink): here nf_tables, what `nft` talks.
    Netfilter,
}

impl NlProto {
    /// The protocol number `socket(2)` takes.
    pub fn number(self) -> i32 {
        match self {
            NlProto::Route => libc::NETLINK_ROUTE,
            NlProto::Netfilter => libc::NETLINK_NETFILTER,
        }
    }

    /// Its name, as strace prints it.
    pub fn name(self) -> &'static str {
        match self {
            NlProto::Route => "NETLINK_ROUTE",
            NlProto::Netfilter => "NETLINK_NETFILTER",
        }
    }
}

/// What one netlink request does: picks its explanation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NlWhat {
    /// `RTM_NEWLINK` of a bridge.
    LinkAddBridge,
    /// `RTM_NEWLINK` of a veth pair.
    LinkAddVeth,
    /// `RTM_SETLINK`: flags (up) or the controller (master).
    LinkSet,
    /// `RTM_GETLINK` of one link by name.
    LinkGet,
    /// `RTM_DELLINK`.
    LinkDel,
    /// `RTM_NEWADDR`.
    AddrAdd,
    /// `RTM_NEWROUTE`.
    RouteAdd,
    /// `RTM_SETLINK` (`AF_BRIDGE`) of a bridge port's hairpin mode.
    LinkSetHairpin,
    /// One nf_tables batch (`NFNL_MSG_BATCH_BEGIN` … `NFNL_MSG_BATCH_END`) making a
    /// bridge's table, chains and rules.
    NftBridgeTable,
    /// One nf_tables batch deleting a removed network's bridge chains.
    NftBridgeUntable,
    /// One nf_tables batch making a container's own `flags owner` table of published ports.
    NftPublish,
    /// One nf_tables batch deleting a container's table (`NFT_MSG_DELTABLE`).
    NftUnpublish,
    /// `NFT_MSG_GETTABLE` of one table by name (`explain port`'s check that it exists).
    NftGetTable,
}

impl NlWhat {
    /// The catalog key of a `sendto` carrying this request.
    pub fn explain_key(self) -> &'static str {
        match self {
            NlWhat::LinkAddBridge => "sendto.rtm_newlink.bridge",
            NlWhat::LinkAddVeth => "sendto.rtm_newlink.veth",
            NlWhat::LinkSet => "sendto.rtm_setlink",
            NlWhat::LinkGet => "sendto.rtm_getlink",
            NlWhat::LinkDel => "sendto.rtm_dellink",
            NlWhat::AddrAdd => "sendto.rtm_newaddr",
            NlWhat::RouteAdd => "sendto.rtm_newroute",
            NlWhat::LinkSetHairpin => "sendto.rtm_setlink.hairpin",
            NlWhat::NftBridgeTable => "sendto.nft_batch.bridge",
            NlWhat::NftBridgeUntable => "sendto.nft_batch.unbridge",
            NlWhat::NftPublish => "sendto.nft_batch.publish",
            NlWhat::NftUnpublish => "sendto.nft_batch.deltable",
            NlWhat::NftGetTable => "sendto.nft_gettable",
        }
    }

    /// The protocol of the socket the request goes to.
    pub fn proto(self) -> NlProto {
        match self {
            NlWhat::NftBridgeTable
            | NlWhat::NftBridgeUntable
            | NlWhat::NftPublish
            | NlWhat::NftUnpublish
            | NlWhat::NftGetTable => NlProto::Netfilter,
            _ => NlProto::Route,
        }
    }
}

/// One rtnetlink request, as it goes to the kernel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NlRequest {
    /// Exactly the bytes `sendto` passes (one netlink message).
    pub bytes: Vec<u8>,
    /// What it does.
    pub what: NlWhat,
    /// The `ip` command that sends the same request: `ip link add dockling0 type bridge`.
    pub command: String,
}

impl NlRequest {
    /// The request's sequence number (`nlmsg_seq`).
    pub fn seq(&self) -> u32 {
        header(&self.bytes).map(|h| h.seq).unwrap_or(0)
    }
}

/// A netlink message header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// `nlmsg_len`: header and payload.
    pub len: u32,
    /// `nlmsg_type`.
    pub kind: u16,
    /// `nlmsg_flags`.
    pub flags: u16,
    /// `nlmsg_seq`.
    pub seq: u32,
    /// `nlmsg_pid`.
    pub pid: u32,
}

/// The header at the start of `buf`, if there is a whole one.
pub fn header(buf: &[u8]) -> Option<Header> {
    let b = buf.get(..NLMSG_HDRLEN)?;
    let u32_at = |i: usize| u32::from_ne_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
    let u16_at = |i: usize| u16::from_ne_bytes([b[i], b[i + 1]]);
    Some(Header {
        len: u32_at(0),
        kind: u16_at(4),
        flags: u16_at(6),
        seq: u32_at(8),
        pid: u32_at(12),
    })
}

/// Every message of a buffer `recvfrom` filled: its header and its payload.
pub fn messages(buf: &[u8]) -> Vec<(Header, &[u8])> {
    let mut out = Vec::new();
    let mut at = 0;
    while let Some(h) = header(&buf[at..]) {
        let len = h.len as usize;
        if len < NLMSG_HDRLEN || at + len > buf.len() {
            break;
        }
        out.push((h, &buf[at + NLMSG_HDRLEN..at + len]));
        // Messages are aligned to 4 bytes.
        at += (len + 3) & !3;
    }
    out
}

/// The `error` field of an `NLMSG_ERROR` payload: 0 for an ACK, else a negative errno.
pub fn error_code(payload: &[u8]) -> Option<i32> {
    let b = payload.get(..4)?;
    Some(i32::from_ne_bytes([b[0], b[1], b[2], b[3]]))
}

/// An `NLMSG_ERROR` message with `code` (0: an ACK) answering the request header `req`,
/// as the kernel sends it (the request's header echoed, `NLM_F_CAPPED`).
pub fn error_message(seq: u32, code: i32, req: &[u8]) -> Vec<u8> {
    let echoed = &req[..req.len().min(NLMSG_HDRLEN)];
    let len = NLMSG_HDRLEN + 4 + echoed.len();
    let mut v = Vec::with_capacity(len);
    v.extend_from_slice(&(len as u32).to_ne_bytes());
    v.extend_from_slice(&NLMSG_ERROR.to_ne_bytes());
    // NLM_F_CAPPED: only the request's header comes back.
    v.extend_from_slice(&0x100u16.to_ne_bytes());
    v.extend_from_slice(&seq.to_ne_bytes());
    v.extend_from_slice(&0u32.to_ne_bytes());
    v.extend_from_slice(&code.to_ne_bytes());
    v.extend_from_slice(echoed);
    v
}

/// A bare `RTM_NEWLINK` answer naming link `index` (the recorder's answer to a get).
pub fn link_reply(seq: u32, index: i32) -> Vec<u8> {
    // nlmsghdr, then struct ifinfomsg (16 bytes): family, pad, type, index, flags, change.
    let len = NLMSG_HDRLEN + 16;
    let mut v = Vec::with_capacity(len);
    v.extend_from_slice(&(len as u32).to_ne_bytes());
    v.extend_from_slice(&RTM_NEWLINK.to_ne_bytes());
    v.extend_from_slice(&0u16.to_ne_bytes());
    v.extend_from_slice(&seq.to_ne_bytes());
    v.extend_from_slice(&0u32.to_ne_bytes());
    v.extend_from_slice(&[0, 0, 0, 0]);
    v.extend_from_slice(&index.to_ne_bytes());
    v.extend_from_slice(&[0; 8]);
    v
}

/// The interface index of an `RTM_NEWLINK` payload (`ifi_index`).
pub fn link_index(payload: &[u8]) -> Option<i32> {
    let b = payload.get(4..8)?;
    Some(i32::from_ne_bytes([b[0], b[1], b[2], b[3]]))
}

/// `NFNL_SUBSYS_NFTABLES`: the nfnetlink subsystem of nf_tables (the high byte of a type).
pub const NFNL_SUBSYS_NFTABLES: u16 = 10;

/// nf_tables message names by `NFT_MSG_*` number (linux/netfilter/nf_tables.h).
const NFT_MSG_NAMES: [&str; 25] = [
    "NFT_MSG_NEWTABLE",
    "NFT_MSG_GETTABLE",
    "NFT_MSG_DELTABLE",
    "NFT_MSG_NEWCHAIN",
    "NFT_MSG_GETCHAIN",
    "NFT_MSG_DELCHAIN",
    "NFT_MSG_NEWRULE",
    "NFT_MSG_GETRULE",
    "NFT_MSG_DELRULE",
    "NFT_MSG_NEWSET",
    "NFT_MSG_GETSET",
    "NFT_MSG_DELSET",
    "NFT_MSG_NEWSETELEM",
    "NFT_MSG_GETSETELEM",
    "NFT_MSG_DELSETELEM",
    "NFT_MSG_NEWGEN",
    "NFT_MSG_GETGEN",
    "NFT_MSG_TRACE",
    "NFT_MSG_NEWOBJ",
    "NFT_MSG_GETOBJ",
    "NFT_MSG_DELOBJ",
    "NFT_MSG_GETOBJ_RESET",
    "NFT_MSG_NEWFLOWTABLE",
    "NFT_MSG_GETFLOWTABLE",
    "NFT_MSG_DELFLOWTABLE",
];

/// What an nfnetlink message type is: new, get or delete (which picks the flag names), or
/// neither (batch begin and end, the generic types).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Verb {
    New,
    Get,
    Del,
    Error,
    Other,
}

fn verb(proto: NlProto, kind: u16) -> Verb {
    match (proto, kind) {
        (_, NLMSG_ERROR) => Verb::Error,
        (NlProto::Route, 18 | 22 | 26) => Verb::Get,
        (NlProto::Route, 17 | 21 | 25) => Verb::Del,
        (NlProto::Route, _) => Verb::New,
        (NlProto::Netfilter, k) if k >> 8 == NFNL_SUBSYS_NFTABLES => {
            match NFT_MSG_NAMES.get(usize::from(k & 0xff)) {
                Some(n) if n.contains("_NEW") => Verb::New,
                Some(n) if n.contains("_GET") => Verb::Get,
                Some(n) if n.contains("_DEL") => Verb::Del,
                _ => Verb::Other,
            }
        }
        (NlProto::Netfilter, _) => Verb::Other,
    }
}

fn type_name_of(proto: NlProto, kind: u16) -> String {
    if proto == NlProto::Netfilter {
        match kind {
            0x10 => return "NFNL_MSG_BATCH_BEGIN".into(),
            0x11 => return "NFNL_MSG_BATCH_END".into(),
            k if k >> 8 == NFNL_SUBSYS_NFTABLES => {
                if let Some(n) = NFT_MSG_NAMES.get(usize::from(k & 0xff)) {
                    return format!("NFNL_SUBSYS_NFTABLES<<8|{n}");
                }
            }
            1..=3 => {}
            other => return format!("{other:#x}"),
        }
    }
    type_name(kind)
}

fn type_name(kind: u16) -> String {
    let name = match kind {
        1 => "NLMSG_NOOP",
        NLMSG_ERROR => "NLMSG_ERROR",
        NLMSG_DONE => "NLMSG_DONE",
        16 => "RTM_NEWLINK",
        17 => "RTM_DELLINK",
        18 => "RTM_GETLINK",
        19 => "RTM_SETLINK",
        20 => "RTM_NEWADDR",
        21 => "RTM_DELADDR",
        22 => "RTM_GETADDR",
        24 => "RTM_NEWROUTE",
        25 => "RTM_DELROUTE",
        26 => "RTM_GETROUTE",
        other => return format!("{other:#x}"),
    };
    name.to_string()
}

fn flag_names_of(verb: Verb, flags: u16) -> String {
    let mut names: Vec<String> = Vec::new();
    let mut left = flags;
    let mut take = |bit: u16, name: &str, names: &mut Vec<String>| {
        if left & bit != 0 {
            names.push(name.to_string());
            left &= !bit;
        }
    };
    for (bit, name) in [
        (0x1, "NLM_F_REQUEST"),
        (0x2, "NLM_F_MULTI"),
        (0x4, "NLM_F_ACK"),
        (0x8, "NLM_F_ECHO"),
        (0x10, "NLM_F_DUMP_INTR"),
        (0x20, "NLM_F_DUMP_FILTERED"),
    ] {
        take(bit, name, &mut names);
    }
    // The high bits mean different things for new, get and error messages (strace's tables).
    let high: &[(u16, &str)] = match verb {
        Verb::Error => &[(0x100, "NLM_F_CAPPED"), (0x200, "NLM_F_ACK_TLVS")],
        Verb::Get => &[
            (0x100, "NLM_F_ROOT"),
            (0x200, "NLM_F_MATCH"),
            (0x400, "NLM_F_ATOMIC"),
        ],
        Verb::Del => &[(0x100, "NLM_F_NONREC"), (0x200, "NLM_F_BULK")],
        Verb::Other => &[],
        Verb::New => &[
            (0x100, "NLM_F_REPLACE"),
            (0x200, "NLM_F_EXCL"),
            (0x400, "NLM_F_CREATE"),
            (0x800, "NLM_F_APPEND"),
        ],
    };
    for (bit, name) in high {
        take(*bit, name, &mut names);
    }
    if flags == 0 {
        return "0".into();
    }
    if left != 0 {
        names.push(format!("{left:#x}"));
    }
    names.join("|")
}

/// The headers of a netlink buffer as strace prints them, the payloads as `…`:
/// `[{nlmsg_len=36, nlmsg_type=NLMSG_ERROR, …}, …]` (several messages: a list of them).
pub fn render(buf: &[u8]) -> String {
    render_of(NlProto::Route, buf)
}

/// [`render`] for a socket of protocol `proto`: nfnetlink types are named as strace names
/// them (`NFNL_MSG_BATCH_BEGIN`, `NFNL_SUBSYS_NFTABLES<<8|NFT_MSG_NEWTABLE`).
pub fn render_of(proto: NlProto, buf: &[u8]) -> String {
    let msgs = messages(buf);
    let one = |h: &Header, payload: &[u8]| {
        // An answer's error, as strace shows it: `{error=-EEXIST, msg=…}` (0: an ACK).
        let body = match (h.kind, error_code(payload)) {
            (NLMSG_ERROR, Some(0)) => "{error=0, msg=…}".to_string(),
            (NLMSG_ERROR, Some(code)) => format!(
                "{{error=-{}, msg=…}}",
                nix::errno::Errno::from_raw(-code)
                    .to_string()
                    .split(':')
                    .next()
                    .unwrap_or("")
            ),
            _ => "…".into(),
        };
        format!(
            "[{{nlmsg_len={}, nlmsg_type={}, nlmsg_flags={}, nlmsg_seq={}, nlmsg_pid={}}}, {body}]",
            h.len,
            type_name_of(proto, h.kind),
            flag_names_of(verb(proto, h.kind), h.flags),
            h.seq,
            h.pid
        )
    };
    match msgs.as_slice() {
        [] => "\"\"".into(),
        [(h, p)] => one(h, p),
        many => {
            let mut s = String::from("[");
            for (i, (h, p)) in many.iter().enumerate() {
                if i > 0 {
                    s.push_str(", ");
                }
                s.push_str(&one(h, p));
            }
            s.push(']');
            s
        }
    }
}

/// A command as one line, for the comment after a call's arguments: a multi-line `nft -f -`
/// script (`nft -f - <<'EOF'`, its lines, `EOF`) becomes the one command `nft '<line>; …'`
/// that does the same; any other command is itself.
pub fn one_line(command: &str) -> std::borrow::Cow<'_, str> {
    let mut lines = command.lines();
    match (lines.next(), command.contains('\n')) {
        (Some(first), true) if first.starts_with("nft -f -") => {
            let body: Vec<&str> = lines.filter(|l| *l != "EOF").collect();
            format!("nft '{}'", body.join("; ")).into()
        }
        _ => command.into(),
    }
}

/// Lower-case hex of `bytes`, no separators (the JSON trace's `data`).
pub fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_ack_renders_and_parses() {
        let req = [
            56u8, 0, 0, 0, 16, 0, 5, 6, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        ];
        let ack = error_message(1, 0, &req);
        assert_eq!(ack.len(), 36);
        let msgs = messages(&ack);
        assert_eq!(msgs.len(), 1);
        assert_eq!(msgs[0].0.kind, NLMSG_ERROR);
        assert_eq!(error_code(msgs[0].1), Some(0));
        assert_eq!(
            render(&ack),
            "[{nlmsg_len=36, nlmsg_type=NLMSG_ERROR, nlmsg_flags=NLM_F_CAPPED, nlmsg_seq=1, nlmsg_pid=0}, {error=0, msg=…}]"
        );
        assert_eq!(
            render(&req),
            "\"\"",
            "a header whose length is past the buffer is no message"
        );
        assert_eq!(
            flag_names_of(verb(NlProto::Route, 16), 0x605),
            "NLM_F_REQUEST|NLM_F_ACK|NLM_F_EXCL|NLM_F_CREATE"
        );
    }
}
