//! NAT for published ports, in nf_tables, without `nft`: each change is one nf_tables batch
//! (`NFNL_MSG_BATCH_BEGIN`, the table, chain and rule messages, `NFNL_MSG_BATCH_END`) sent
//! with one traced `sendto` on a `NETLINK_NETFILTER` socket, carrying as its command the
//! `nft -f -` script that sends the same messages (one script line per message).
//!
//! The messages are built here by hand, as nfnetlink TLVs: `netlink-packet-netfilter` 0.4
//! builds and compiles offline against `netlink-packet-core =0.9`, but it has no nat, masq,
//! fib or ct expression (five of the nine expressions used here would be raw attributes
//! anyway), and a ~200-line writer keeps every byte in view of the strace comparison. The
//! numbers come from `linux/netfilter/nf_tables.h`, `linux/netfilter/nfnetlink.h` and
//! `linux/netfilter/nf_nat.h`, named below as there. The expressions are the ones
//! `nft --debug=netlink` (1.0.6) shows for the same rules.
//!
//! Two kinds of table (the rules of `docs/design/networking.md` §2):
//! - per bridge, [`ensure_bridge_table`]: `table ip dockling` with `guard-<bridge>` (no
//!   packet from the bridge to 127/8, since `route_localnet` is on) and `post-<bridge>`
//!   (masquerade what reaches a container from the host's own addresses, and hairpin
//!   traffic) and `iso-<bridge>` (forward: nothing enters the bridge from another bridge or
//!   the outside but published ports' and replies' traffic, so bridges stay apart with or
//!   without outbound NAT); made again, whole, in one batch each time (idempotent).
//! - per container, [`publish`]: `table ip dockling-<12 hex>` with `flags owner`, whose
//!   `prerouting` and `output` chains DNAT the published ports. The kernel deletes an owned
//!   table when the socket that made it closes, so [`OwnedTable`] keeps that socket: a
//!   killed engine (even `kill -9`) leaves no rule behind.

use std::net::Ipv4Addr;

use nix::errno::Errno;

use super::ipam::Subnet;
use super::NetError;
use crate::sys::netlink::{self as nl, NlProto, NlRequest, NlWhat, NFNL_SUBSYS_NFTABLES};
use crate::sys::{Call, Ret, Sys, SysError};

// linux/netlink.h
const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_ACK: u16 = 0x4;
const NLM_F_EXCL: u16 = 0x200;
const NLM_F_CREATE: u16 = 0x400;
const NLM_F_APPEND: u16 = 0x800;
const NLA_F_NESTED: u16 = 0x8000;
// linux/netfilter/nfnetlink.h
const NFNL_MSG_BATCH_BEGIN: u16 = 0x10;
const NFNL_MSG_BATCH_END: u16 = 0x11;
const NFPROTO_IPV4: u8 = 2;
// enum nf_tables_msg_types
const NFT_MSG_NEWTABLE: u16 = 0;
const NFT_MSG_DELTABLE: u16 = 2;
const NFT_MSG_GETTABLE: u16 = 1;
const NFT_MSG_NEWCHAIN: u16 = 3;
const NFT_MSG_DELCHAIN: u16 = 5;
const NFT_MSG_NEWRULE: u16 = 6;
const NFT_MSG_DELRULE: u16 = 8;
// NFTA_TABLE_*, NFT_TABLE_F_OWNER
const NFTA_TABLE_NAME: u16 = 1;
const NFTA_TABLE_FLAGS: u16 = 2;
const NFT_TABLE_F_OWNER: u32 = 2;
// NFTA_CHAIN_*, NFTA_HOOK_*
const NFTA_CHAIN_TABLE: u16 = 1;
const NFTA_CHAIN_NAME: u16 = 3;
const NFTA_CHAIN_HOOK: u16 = 4;
const NFTA_CHAIN_POLICY: u16 = 5;
const NFTA_CHAIN_TYPE: u16 = 7;
const NFTA_HOOK_HOOKNUM: u16 = 1;
const NFTA_HOOK_PRIORITY: u16 = 2;
const NF_ACCEPT: u32 = 1;
const NF_DROP: u32 = 0;
// enum nf_inet_hooks
const NF_INET_PRE_ROUTING: u32 = 0;
const NF_INET_FORWARD: u32 = 2;
const NF_INET_LOCAL_OUT: u32 = 3;
const NF_INET_POST_ROUTING: u32 = 4;
// NFTA_RULE_*, NFTA_LIST_ELEM, NFTA_EXPR_*, NFTA_DATA_*, NFTA_VERDICT_CODE
const NFTA_RULE_TABLE: u16 = 1;
const NFTA_RULE_CHAIN: u16 = 2;
const NFTA_RULE_EXPRESSIONS: u16 = 4;
const NFTA_LIST_ELEM: u16 = 1;
const NFTA_EXPR_NAME: u16 = 1;
const NFTA_EXPR_DATA: u16 = 2;
const NFTA_IMMEDIATE_DREG: u16 = 1;
const NFTA_IMMEDIATE_DATA: u16 = 2;
const NFTA_DATA_VALUE: u16 = 1;
const NFTA_DATA_VERDICT: u16 = 2;
const NFTA_VERDICT_CODE: u16 = 1;
// registers: NFT_REG_VERDICT, NFT_REG_1, NFT_REG_2 (16 bytes each)
const NFT_REG_VERDICT: u32 = 0;
const NFT_REG_1: u32 = 1;
const NFT_REG_2: u32 = 2;
// meta: NFTA_META_DREG, NFTA_META_KEY; NFT_META_IIFNAME, OIFNAME, L4PROTO
const NFTA_META_DREG: u16 = 1;
const NFTA_META_KEY: u16 = 2;
const NFT_META_IIFNAME: u32 = 6;
const NFT_META_OIFNAME: u32 = 7;
const NFT_META_L4PROTO: u32 = 16;
// cmp: NFTA_CMP_SREG, OP, DATA; NFT_CMP_EQ, NEQ
const NFTA_CMP_SREG: u16 = 1;
const NFTA_CMP_OP: u16 = 2;
const NFTA_CMP_DATA: u16 = 3;
const NFT_CMP_EQ: u32 = 0;
const NFT_CMP_NEQ: u32 = 1;
// payload: NFTA_PAYLOAD_DREG, BASE, OFFSET, LEN; NFT_PAYLOAD_NETWORK_HEADER, TRANSPORT_HEADER
const NFTA_PAYLOAD_DREG: u16 = 1;
const NFTA_PAYLOAD_BASE: u16 = 2;
const NFTA_PAYLOAD_OFFSET: u16 = 3;
const NFTA_PAYLOAD_LEN: u16 = 4;
const NFT_PAYLOAD_NETWORK_HEADER: u32 = 1;
const NFT_PAYLOAD_TRANSPORT_HEADER: u32 = 2;
// bitwise: NFTA_BITWISE_SREG, DREG, LEN, MASK, XOR
const NFTA_BITWISE_SREG: u16 = 1;
const NFTA_BITWISE_DREG: u16 = 2;
const NFTA_BITWISE_LEN: u16 = 3;
const NFTA_BITWISE_MASK: u16 = 4;
const NFTA_BITWISE_XOR: u16 = 5;
// fib: NFTA_FIB_DREG, RESULT, FLAGS; NFT_FIB_RESULT_ADDRTYPE; NFTA_FIB_F_SADDR, DADDR; RTN_LOCAL
const NFTA_FIB_DREG: u16 = 1;
const NFTA_FIB_RESULT: u16 = 2;
const NFTA_FIB_FLAGS: u16 = 3;
const NFT_FIB_RESULT_ADDRTYPE: u32 = 3;
const NFTA_FIB_F_SADDR: u32 = 1;
const NFTA_FIB_F_DADDR: u32 = 2;
const RTN_LOCAL: u32 = 2;
// ct: NFTA_CT_DREG, KEY; NFT_CT_STATUS; IPS_DST_NAT (linux/netfilter/nf_conntrack_common.h)
const NFTA_CT_DREG: u16 = 1;
const NFTA_CT_KEY: u16 = 2;
const NFT_CT_STATE: u32 = 0;
const NFT_CT_STATUS: u32 = 2;
const IPS_DST_NAT: u32 = 1 << 5;
// NF_CT_STATE_BIT(IP_CT_ESTABLISHED) | NF_CT_STATE_BIT(IP_CT_RELATED)
// (linux/netfilter/nf_conntrack_common.h: the bit of each ctinfo, above the untracked bit)
const CT_STATE_ESTABLISHED_RELATED: u32 = (1 << 1) | (1 << 2);
// nat: NFTA_NAT_TYPE, FAMILY, REG_ADDR_MIN, REG_PROTO_MIN, FLAGS; NFT_NAT_DNAT;
// NF_NAT_RANGE_PROTO_SPECIFIED (linux/netfilter/nf_nat.h)
const NFTA_NAT_TYPE: u16 = 1;
const NFTA_NAT_FAMILY: u16 = 2;
const NFTA_NAT_REG_ADDR_MIN: u16 = 3;
const NFTA_NAT_REG_PROTO_MIN: u16 = 5;
const NFTA_NAT_FLAGS: u16 = 7;
const NFT_NAT_DNAT: u32 = 1;
const NF_NAT_RANGE_PROTO_SPECIFIED: u32 = 2;

/// At most this many `recvfrom` per batch beyond one per message (nf_tables answers each
/// message's ACK in a datagram of its own).
const SPARE_RECVS: usize = 4;

/// The per-bridge table.
pub const BRIDGE_TABLE: &str = "dockling";

/// A transport protocol of a published port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum L4 {
    /// TCP.
    Tcp,
    /// UDP.
    Udp,
}

impl L4 {
    fn name(self) -> &'static str {
        match self {
            L4::Tcp => "tcp",
            L4::Udp => "udp",
        }
    }

    fn number(self) -> u8 {
        match self {
            L4::Tcp => libc::IPPROTO_TCP as u8,
            L4::Udp => libc::IPPROTO_UDP as u8,
        }
    }
}

/// One published port in NAT mode: `-p [host_ip:]host_port:container_port[/proto]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortRule {
    /// tcp or udp.
    pub proto: L4,
    /// The host address it is published on; `None`: every local address (`fib daddr type
    /// local`).
    pub host_ip: Option<Ipv4Addr>,
    /// The host port.
    pub host_port: u16,
    /// The container's address.
    pub container_ip: Ipv4Addr,
    /// The container's port.
    pub container_port: u16,
}

// ---- the TLV writer ----

fn align4(n: usize) -> usize {
    (n + 3) & !3
}

fn put(buf: &mut Vec<u8>, kind: u16, data: &[u8]) {
    buf.extend_from_slice(&((4 + data.len()) as u16).to_ne_bytes());
    buf.extend_from_slice(&kind.to_ne_bytes());
    buf.extend_from_slice(data);
    buf.resize(align4(buf.len()), 0);
}

fn put_u32(buf: &mut Vec<u8>, kind: u16, v: u32) {
    // nf_tables numbers are big-endian (NLA_BE32).
    put(buf, kind, &v.to_be_bytes());
}

fn put_str(buf: &mut Vec<u8>, kind: u16, s: &str) {
    let mut d = s.as_bytes().to_vec();
    d.push(0);
    put(buf, kind, &d);
}

fn nest(buf: &mut Vec<u8>, kind: u16, f: impl FnOnce(&mut Vec<u8>)) {
    let at = buf.len();
    buf.extend_from_slice(&[0; 4]);
    f(buf);
    let len = (buf.len() - at) as u16;
    buf[at..at + 2].copy_from_slice(&len.to_ne_bytes());
    buf[at + 2..at + 4].copy_from_slice(&(kind | NLA_F_NESTED).to_ne_bytes());
}

// ---- rules: expressions and the nft text of the same thing ----

/// One rule: its expressions (the `NFTA_RULE_EXPRESSIONS` list) and its nft text.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Rule {
    exprs: Vec<u8>,
    text: Vec<String>,
}

impl Rule {
    fn expr(&mut self, name: &str, data: impl FnOnce(&mut Vec<u8>)) {
        nest(&mut self.exprs, NFTA_LIST_ELEM, |b| {
            put_str(b, NFTA_EXPR_NAME, name);
            nest(b, NFTA_EXPR_DATA, data);
        });
    }

    fn cmp(&mut self, op: u32, value: &[u8]) {
        self.expr("cmp", |b| {
            put_u32(b, NFTA_CMP_SREG, NFT_REG_1);
            put_u32(b, NFTA_CMP_OP, op);
            nest(b, NFTA_CMP_DATA, |b| put(b, NFTA_DATA_VALUE, value));
        });
    }

    fn meta(&mut self, key: u32) {
        self.expr("meta", |b| {
            put_u32(b, NFTA_META_DREG, NFT_REG_1);
            put_u32(b, NFTA_META_KEY, key);
        });
    }

    fn payload(&mut self, base: u32, offset: u32, len: u32) {
        self.expr("payload", |b| {
            put_u32(b, NFTA_PAYLOAD_DREG, NFT_REG_1);
            put_u32(b, NFTA_PAYLOAD_BASE, base);
            put_u32(b, NFTA_PAYLOAD_OFFSET, offset);
            put_u32(b, NFTA_PAYLOAD_LEN, len);
        });
    }

    fn bitwise(&mut self, mask: &[u8]) {
        self.expr("bitwise", |b| {
            put_u32(b, NFTA_BITWISE_SREG, NFT_REG_1);
            put_u32(b, NFTA_BITWISE_DREG, NFT_REG_1);
            put_u32(b, NFTA_BITWISE_LEN, mask.len() as u32);
            nest(b, NFTA_BITWISE_MASK, |b| put(b, NFTA_DATA_VALUE, mask));
            nest(b, NFTA_BITWISE_XOR, |b| {
                put(b, NFTA_DATA_VALUE, &vec![0; mask.len()])
            });
        });
    }

    /// `oifname "br-*"`: the name begins with `prefix` (as nft does it, a compare of the
    /// prefix's bytes alone, no NUL).
    fn ifname_prefix(mut self, out: bool, prefix: &str) -> Self {
        self.meta(if out {
            NFT_META_OIFNAME
        } else {
            NFT_META_IIFNAME
        });
        self.cmp(NFT_CMP_EQ, prefix.as_bytes());
        self.text.push(format!(
            "{} \"{prefix}*\"",
            if out { "oifname" } else { "iifname" }
        ));
        self
    }

    /// `iifname "x"` / `oifname != "x"`: the name as 16 bytes (IFNAMSIZ), NUL-padded.
    fn ifname(mut self, out: bool, equal: bool, name: &str) -> Self {
        self.meta(if out {
            NFT_META_OIFNAME
        } else {
            NFT_META_IIFNAME
        });
        let mut v = name.as_bytes().to_vec();
        v.resize(16, 0);
        self.cmp(if equal { NFT_CMP_EQ } else { NFT_CMP_NEQ }, &v);
        self.text.push(format!(
            "{}{} \"{name}\"",
            if out { "oifname" } else { "iifname" },
            if equal { "" } else { " !=" }
        ));
        self
    }

    /// `ip saddr|daddr <net>/<prefix>` (or one address at /32): as nft does, a prefix of
    /// whole bytes loads and compares those bytes; any other loads the whole address and
    /// masks it first.
    fn ip(mut self, dst: bool, net: Ipv4Addr, prefix: u8) -> Self {
        let aligned = prefix.is_multiple_of(8);
        let bytes = if aligned { u32::from(prefix) / 8 } else { 4 };
        self.payload(NFT_PAYLOAD_NETWORK_HEADER, if dst { 16 } else { 12 }, bytes);
        if !aligned {
            let mask = (u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0)).to_be_bytes();
            self.bitwise(&mask);
        }
        self.cmp(NFT_CMP_EQ, &net.octets()[..bytes as usize]);
        let what = if dst { "daddr" } else { "saddr" };
        self.text.push(if prefix == 32 {
            format!("ip {what} {net}")
        } else {
            format!("ip {what} {net}/{prefix}")
        });
        self
    }

    /// `fib saddr|daddr type local`: the address is one of this namespace's own.
    fn fib_local(mut self, dst: bool) -> Self {
        self.expr("fib", |b| {
            put_u32(b, NFTA_FIB_DREG, NFT_REG_1);
            put_u32(b, NFTA_FIB_RESULT, NFT_FIB_RESULT_ADDRTYPE);
            put_u32(
                b,
                NFTA_FIB_FLAGS,
                if dst {
                    NFTA_FIB_F_DADDR
                } else {
                    NFTA_FIB_F_SADDR
                },
            );
        });
        self.cmp(NFT_CMP_EQ, &RTN_LOCAL.to_ne_bytes());
        self.text.push(format!(
            "fib {} type local",
            if dst { "daddr" } else { "saddr" }
        ));
        self
    }

    /// `ct status dnat`: the connection's destination was rewritten (by a DNAT rule).
    fn ct_dnat(mut self) -> Self {
        self.expr("ct", |b| {
            put_u32(b, NFTA_CT_DREG, NFT_REG_1);
            put_u32(b, NFTA_CT_KEY, NFT_CT_STATUS);
        });
        self.bitwise(&IPS_DST_NAT.to_ne_bytes());
        self.cmp(NFT_CMP_NEQ, &0u32.to_ne_bytes());
        self.text.push("ct status dnat".into());
        self
    }

    /// `ct state established,related`: a packet of a connection already seen both ways, or
    /// one related to it (an ICMP error).
    fn ct_established(mut self) -> Self {
        self.expr("ct", |b| {
            put_u32(b, NFTA_CT_DREG, NFT_REG_1);
            put_u32(b, NFTA_CT_KEY, NFT_CT_STATE);
        });
        self.bitwise(&CT_STATE_ESTABLISHED_RELATED.to_ne_bytes());
        self.cmp(NFT_CMP_NEQ, &0u32.to_ne_bytes());
        self.text.push("ct state established,related".into());
        self
    }

    /// `tcp dport 8000`.
    fn dport(mut self, proto: L4, port: u16) -> Self {
        self.meta(NFT_META_L4PROTO);
        self.cmp(NFT_CMP_EQ, &[proto.number()]);
        self.payload(NFT_PAYLOAD_TRANSPORT_HEADER, 2, 2);
        self.cmp(NFT_CMP_EQ, &port.to_be_bytes());
        self.text.push(format!("{} dport {port}", proto.name()));
        self
    }

    fn drop_(self) -> Self {
        self.verdict(NF_DROP, "drop")
    }

    fn accept(self) -> Self {
        self.verdict(NF_ACCEPT, "accept")
    }

    fn verdict(mut self, code: u32, word: &str) -> Self {
        self.expr("immediate", |b| {
            put_u32(b, NFTA_IMMEDIATE_DREG, NFT_REG_VERDICT);
            nest(b, NFTA_IMMEDIATE_DATA, |b| {
                nest(b, NFTA_DATA_VERDICT, |b| {
                    put_u32(b, NFTA_VERDICT_CODE, code)
                })
            });
        });
        self.text.push(word.into());
        self
    }

    fn masquerade(mut self) -> Self {
        nest(&mut self.exprs, NFTA_LIST_ELEM, |b| {
            put_str(b, NFTA_EXPR_NAME, "masq")
        });
        self.text.push("masquerade".into());
        self
    }

    /// `dnat to IP:PORT`: the address into register 1, the port into register 2, nat.
    fn dnat(mut self, ip: Ipv4Addr, port: u16) -> Self {
        for (reg, value) in [
            (NFT_REG_1, ip.octets().to_vec()),
            (NFT_REG_2, port.to_be_bytes().to_vec()),
        ] {
            self.expr("immediate", |b| {
                put_u32(b, NFTA_IMMEDIATE_DREG, reg);
                nest(b, NFTA_IMMEDIATE_DATA, |b| put(b, NFTA_DATA_VALUE, &value));
            });
        }
        self.expr("nat", |b| {
            put_u32(b, NFTA_NAT_TYPE, NFT_NAT_DNAT);
            put_u32(b, NFTA_NAT_FAMILY, u32::from(NFPROTO_IPV4));
            put_u32(b, NFTA_NAT_REG_ADDR_MIN, NFT_REG_1);
            put_u32(b, NFTA_NAT_REG_PROTO_MIN, NFT_REG_2);
            put_u32(b, NFTA_NAT_FLAGS, NF_NAT_RANGE_PROTO_SPECIFIED);
        });
        self.text.push(format!("dnat to {ip}:{port}"));
        self
    }
}

// ---- tables and chains ----

#[derive(Debug, Clone, PartialEq, Eq)]
struct Chain {
    name: String,
    kind: &'static str,
    hook: u32,
    priority: i32,
    rules: Vec<Rule>,
}

impl Chain {
    fn hook_name(&self) -> &'static str {
        match self.hook {
            NF_INET_PRE_ROUTING => "prerouting",
            NF_INET_LOCAL_OUT => "output",
            NF_INET_FORWARD => "forward",
            _ => "postrouting",
        }
    }

    /// The priority as nft 1.0.6 prints it (its names where it has one for this hook).
    fn priority_text(&self) -> String {
        match (self.kind, self.hook, self.priority) {
            ("filter", _, -300) => "raw".into(),
            ("filter", _, 0) => "filter".into(),
            ("nat", NF_INET_PRE_ROUTING, -100) => "dstnat".into(),
            ("nat", NF_INET_POST_ROUTING, 100) => "srcnat".into(),
            (_, _, p) => p.to_string(),
        }
    }

    fn spec(&self) -> String {
        format!(
            "type {} hook {} priority {}; policy accept;",
            self.kind,
            self.hook_name(),
            self.priority_text()
        )
    }
}

/// A table as dockling makes it: what the messages carry and what `nft list` shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Table {
    name: String,
    owner: bool,
    chains: Vec<Chain>,
}

impl Table {
    /// Its name (`dockling`, `dockling-3f2a9e1b7c44`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The table as `nft list table ip <name>` prints it (tabs, a blank line between
    /// chains), without handles.
    pub fn listing(&self) -> String {
        let mut s = format!("table ip {} {{\n", self.name);
        if self.owner {
            s.push_str("\tflags owner\n");
        }
        for (i, c) in self.chains.iter().enumerate() {
            if i > 0 || self.owner {
                s.push('\n');
            }
            s.push_str(&format!("\tchain {} {{\n\t\t{}\n", c.name, c.spec()));
            for r in &c.rules {
                s.push_str(&format!("\t\t{}\n", r.text.join(" ")));
            }
            s.push_str("\t}\n");
        }
        s.push_str("}\n");
        s
    }

    /// The batch that makes the table (again): table, chains, a flush of each chain, the
    /// rules; with the `nft` script line of each message. `exclusive`: the table must not
    /// exist yet (NLM_F_EXCL).
    fn batch(&self, seq: u32, exclusive: bool) -> Batch {
        let mut b = Batch::begin(seq);
        let t = &self.name;
        b.push(
            NFT_MSG_NEWTABLE,
            NLM_F_CREATE | if exclusive { NLM_F_EXCL } else { 0 },
            |m| {
                put_str(m, NFTA_TABLE_NAME, t);
                if self.owner {
                    put_u32(m, NFTA_TABLE_FLAGS, NFT_TABLE_F_OWNER);
                }
            },
            if self.owner {
                format!("add table ip {t} {{ flags owner; }}")
            } else {
                format!("add table ip {t}")
            },
        );
        for c in &self.chains {
            push_new_chain(&mut b, t, c);
        }
        if !exclusive {
            for c in &self.chains {
                b.push(
                    NFT_MSG_DELRULE,
                    0,
                    |m| {
                        put_str(m, NFTA_RULE_TABLE, t);
                        put_str(m, NFTA_RULE_CHAIN, &c.name);
                    },
                    format!("flush chain ip {t} {}", c.name),
                );
            }
        }
        for c in &self.chains {
            for r in &c.rules {
                b.push(
                    NFT_MSG_NEWRULE,
                    NLM_F_CREATE | NLM_F_APPEND,
                    |m| {
                        put_str(m, NFTA_RULE_TABLE, t);
                        put_str(m, NFTA_RULE_CHAIN, &c.name);
                        nest(m, NFTA_RULE_EXPRESSIONS, |m| m.extend_from_slice(&r.exprs));
                    },
                    format!("add rule ip {t} {} {}", c.name, r.text.join(" ")),
                );
            }
        }
        b
    }
}

/// `add chain ip <t> <c> { type … hook … priority …; policy accept; }` (created if missing).
fn push_new_chain(b: &mut Batch, t: &str, c: &Chain) {
    b.push(
        NFT_MSG_NEWCHAIN,
        NLM_F_CREATE,
        |m| {
            put_str(m, NFTA_CHAIN_TABLE, t);
            put_str(m, NFTA_CHAIN_NAME, &c.name);
            put_str(m, NFTA_CHAIN_TYPE, c.kind);
            put_u32(m, NFTA_CHAIN_POLICY, NF_ACCEPT);
            nest(m, NFTA_CHAIN_HOOK, |m| {
                put_u32(m, NFTA_HOOK_HOOKNUM, c.hook);
                put_u32(m, NFTA_HOOK_PRIORITY, c.priority as u32);
            });
        },
        format!("add chain ip {t} {} {{ {} }}", c.name, c.spec()),
    );
}

impl Table {
    /// The batch that takes this table's chains out of the kernel, whatever is there: the
    /// table and each chain created if missing (so no message can fail with ENOENT), each
    /// chain flushed, then deleted. The table itself stays (other bridges' chains live in it).
    fn removal_batch(&self, seq: u32) -> Batch {
        let mut b = Batch::begin(seq);
        let t = &self.name;
        b.push(
            NFT_MSG_NEWTABLE,
            NLM_F_CREATE,
            |m| put_str(m, NFTA_TABLE_NAME, t),
            format!("add table ip {t}"),
        );
        for c in &self.chains {
            push_new_chain(&mut b, t, c);
        }
        // A rule message names its chain in NFTA_RULE_CHAIN, a chain message in
        // NFTA_CHAIN_NAME.
        for (kind, verb, name_attr) in [
            (NFT_MSG_DELRULE, "flush", NFTA_RULE_CHAIN),
            (NFT_MSG_DELCHAIN, "delete", NFTA_CHAIN_NAME),
        ] {
            for c in &self.chains {
                b.push(
                    kind,
                    0,
                    |m| {
                        put_str(m, NFTA_CHAIN_TABLE, t);
                        put_str(m, name_attr, &c.name);
                    },
                    format!("{verb} chain ip {t} {}", c.name),
                );
            }
        }
        b
    }
}

/// The per-bridge table: `guard-<bridge>` and `post-<bridge>` (see the module's text), and
/// with `outbound` the masquerade of the subnet's traffic leaving by another interface.
pub fn bridge_table(bridge: &str, subnet: Subnet, outbound: bool) -> Table {
    // route_localnet on the bridge makes 127/8 routable there: a container must reach no
    // service of the host's loopback (to 127/8), nor pass for one (from 127/8, a source a
    // service bound to 0.0.0.0 may trust).
    let loopback = Ipv4Addr::new(127, 0, 0, 0);
    let guard = vec![
        Rule::default()
            .ifname(false, true, bridge)
            .ip(true, loopback, 8)
            .drop_(),
        Rule::default()
            .ifname(false, true, bridge)
            .ip(false, loopback, 8)
            .drop_(),
    ];
    let mut post = vec![
        Rule::default()
            .ifname(true, true, bridge)
            .fib_local(false)
            .masquerade(),
        Rule::default()
            .ifname(true, true, bridge)
            .ip(false, subnet.network, subnet.prefix)
            .ct_dnat()
            .masquerade(),
    ];
    if outbound {
        post.push(
            Rule::default()
                .ifname(true, false, bridge)
                .ip(false, subnet.network, subnet.prefix)
                .masquerade(),
        );
    }
    // Forwarding is on for this bridge (see ensure_bridge_table), so the kernel would route
    // between two dockling bridges: this chain keeps them apart as Docker's isolation chains
    // do, whatever `outbound`. Into the bridge goes only traffic from the bridge itself
    // (hairpin), a connection to a published port (DNAT), or a reply to a connection the
    // bridge's containers opened; everything else entering it (another bridge's containers,
    // the outside) is dropped. Each bridge has this chain, so traffic between two bridges
    // is dropped by the receiving one's. Out of the bridge: with outbound NAT, anything may
    // leave (another bridge's chain still drops it on the way in); without, only published
    // ports' traffic. The chain is always there, so a rebuild flushes it and a change of
    // `outbound` leaves no stale rule.
    let mut iso = vec![
        Rule::default()
            .ifname(false, true, bridge)
            .ifname(true, true, bridge)
            .accept(),
        Rule::default()
            .ifname(false, true, bridge)
            .ct_dnat()
            .accept(),
        Rule::default()
            .ifname(true, true, bridge)
            .ct_dnat()
            .accept(),
        Rule::default()
            .ifname(true, true, bridge)
            .ct_established()
            .accept(),
        Rule::default().ifname(true, true, bridge).drop_(),
    ];
    if outbound {
        // Out to the world, but not into another container network: a bridge whose own
        // chain was never made (no NAT-mode run on it, forwarding off) would not drop it on
        // the way in. dockling's bridges are `dockling0` and `br-<12 hex>` (Docker's user
        // bridges are `br-` too: kept apart as well).
        for other in ["dockling0", "br-"] {
            let r = Rule::default().ifname(false, true, bridge);
            let r = if other.ends_with('-') {
                r.ifname_prefix(true, other)
            } else {
                r.ifname(true, true, other)
            };
            iso.push(r.drop_());
        }
    } else {
        iso.push(Rule::default().ifname(false, true, bridge).drop_());
    }
    let isolate = Chain {
        name: format!("iso-{bridge}"),
        kind: "filter",
        hook: NF_INET_FORWARD,
        priority: 0,
        rules: iso,
    };
    Table {
        name: BRIDGE_TABLE.into(),
        owner: false,
        chains: vec![
            Chain {
                name: format!("guard-{bridge}"),
                kind: "filter",
                hook: NF_INET_PRE_ROUTING,
                priority: -300,
                rules: guard,
            },
            Chain {
                name: format!("post-{bridge}"),
                kind: "nat",
                hook: NF_INET_POST_ROUTING,
                priority: 100,
                rules: post,
            },
            isolate,
        ],
    }
}

/// A container's table of published ports: `dockling-<12 hex of its id>`, `flags owner`,
/// the same DNAT rules in `prerouting` (packets from outside) and `output` (from the host
/// itself; priority -100, as nft 1.0.6 refuses `dstnat` on that hook).
pub fn container_table(container_id: &str, rules: &[PortRule]) -> Table {
    let dnat: Vec<Rule> = rules
        .iter()
        .map(|p| {
            let r = match p.host_ip {
                Some(ip) => Rule::default().ip(true, ip, 32),
                None => Rule::default().fib_local(true),
            };
            r.dport(p.proto, p.host_port)
                .dnat(p.container_ip, p.container_port)
        })
        .collect();
    Table {
        name: table_name(container_id),
        owner: true,
        chains: vec![
            Chain {
                name: "prerouting".into(),
                kind: "nat",
                hook: NF_INET_PRE_ROUTING,
                priority: -100,
                rules: dnat.clone(),
            },
            Chain {
                name: "output".into(),
                kind: "nat",
                hook: NF_INET_LOCAL_OUT,
                priority: -100,
                rules: dnat,
            },
        ],
    }
}

/// `dockling-<the first 12 characters of the id>`.
pub fn table_name(container_id: &str) -> String {
    format!(
        "{BRIDGE_TABLE}-{}",
        &container_id[..container_id.len().min(12)]
    )
}

// ---- batches ----

/// One nf_tables batch being built, with the script line of each message by its sequence
/// number.
struct Batch {
    buf: Vec<u8>,
    seq: u32,
    lines: Vec<(u32, String)>,
}

fn header(buf: &mut Vec<u8>, kind: u16, flags: u16, seq: u32, family: u8, res_id: u16) {
    // nlmsghdr (its length set when the message is done), then struct nfgenmsg.
    buf.extend_from_slice(&0u32.to_ne_bytes());
    buf.extend_from_slice(&kind.to_ne_bytes());
    buf.extend_from_slice(&flags.to_ne_bytes());
    buf.extend_from_slice(&seq.to_ne_bytes());
    buf.extend_from_slice(&0u32.to_ne_bytes());
    buf.push(family);
    buf.push(0); // NFNETLINK_V0
    buf.extend_from_slice(&res_id.to_be_bytes());
}

fn finish(buf: &mut [u8], at: usize) {
    let len = (buf.len() - at) as u32;
    buf[at..at + 4].copy_from_slice(&len.to_ne_bytes());
}

impl Batch {
    fn begin(seq: u32) -> Batch {
        let mut buf = Vec::new();
        header(
            &mut buf,
            NFNL_MSG_BATCH_BEGIN,
            NLM_F_REQUEST,
            seq,
            libc::AF_UNSPEC as u8,
            NFNL_SUBSYS_NFTABLES,
        );
        finish(&mut buf, 0);
        Batch {
            buf,
            seq: seq + 1,
            lines: Vec::new(),
        }
    }

    /// One message (each asks for its ACK, so the kernel names the one it refuses).
    fn push(&mut self, msg: u16, flags: u16, attrs: impl FnOnce(&mut Vec<u8>), line: String) {
        let at = self.buf.len();
        header(
            &mut self.buf,
            (NFNL_SUBSYS_NFTABLES << 8) | msg,
            NLM_F_REQUEST | NLM_F_ACK | flags,
            self.seq,
            NFPROTO_IPV4,
            0,
        );
        attrs(&mut self.buf);
        finish(&mut self.buf, at);
        self.lines.push((self.seq, line));
        self.seq += 1;
    }

    /// The end message; the bytes, the script lines, and the next free sequence number.
    fn end(mut self) -> (Vec<u8>, Vec<(u32, String)>, u32) {
        let at = self.buf.len();
        header(
            &mut self.buf,
            NFNL_MSG_BATCH_END,
            NLM_F_REQUEST,
            self.seq,
            libc::AF_UNSPEC as u8,
            NFNL_SUBSYS_NFTABLES,
        );
        finish(&mut self.buf, at);
        (self.buf, self.lines, self.seq + 1)
    }
}

/// The `nft -f -` command of a script.
fn script_command(lines: &[(u32, String)]) -> String {
    let mut s = String::from("nft -f - <<'EOF'\n");
    for (_, l) in lines {
        s.push_str(l);
        s.push('\n');
    }
    s.push_str("EOF");
    s
}

/// A NETLINK_NETFILTER socket: `socket`, `bind`, traced.
fn open_socket(sys: &Sys) -> Result<i32, NetError> {
    let fd = match sys.perform(Call::NetlinkSocket {
        proto: NlProto::Netfilter,
    })? {
        Ret::Fd(fd) => fd,
        other => other.value() as i32,
    };
    if let Err(e) = sys.run(Call::NetlinkBind { fd }) {
        close(sys, fd);
        return Err(e.into());
    }
    Ok(fd)
}

fn close(sys: &Sys, fd: i32) {
    let _ = sys.run(Call::Close {
        fd,
        object: "netlink socket".into(),
    });
}

/// Send one batch and read the ACKs until the last message's: a refusal becomes
/// `netlink <the script line of the refused message>: <errno>`. Returns the next sequence
/// number.
fn send(sys: &Sys, fd: i32, what: NlWhat, batch: Batch) -> Result<u32, NetError> {
    let (bytes, lines, next) = batch.end();
    let command = script_command(&lines);
    exchange(sys, fd, what, bytes, &lines, command).map(|()| next)
}

/// Send `bytes` (whose messages are `lines` by sequence number) and read until the ACK of the
/// last one; answers that are no ACK (a get's reply) are passed over.
fn exchange(
    sys: &Sys,
    fd: i32,
    what: NlWhat,
    bytes: Vec<u8>,
    lines: &[(u32, String)],
    command: String,
) -> Result<(), NetError> {
    let last = lines.last().map(|(s, _)| *s).unwrap_or(0);
    sys.run(Call::NetlinkSend {
        fd,
        req: NlRequest {
            bytes,
            what,
            command: command.clone(),
        },
    })?;
    let most = lines.len() + SPARE_RECVS;
    for _ in 0..most {
        let buf = match sys.perform(Call::NetlinkRecv {
            fd,
            cap: nl::RECV_CAP,
            seq: last,
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
            if h.kind != nl::NLMSG_ERROR {
                continue;
            }
            match nl::error_code(payload) {
                Some(0) if h.seq == last => return Ok(()),
                Some(0) => {}
                Some(code) => {
                    let line = lines
                        .iter()
                        .find(|(s, _)| *s == h.seq)
                        .map(|(_, l)| format!("nft '{l}'"))
                        .unwrap_or_else(|| nl::one_line(&command).into_owned());
                    return Err(SysError {
                        name: "netlink",
                        object: line,
                        errno: Errno::from_raw(-code),
                    }
                    .into());
                }
                None => {
                    return Err(NetError::Reply {
                        command,
                        detail: "an NLMSG_ERROR without its error code".into(),
                    })
                }
            }
        }
    }
    Err(NetError::Reply {
        command,
        detail: format!("no ACK after {most} reads"),
    })
}

fn check_ifname(name: &str) -> Result<(), NetError> {
    let ok = !name.is_empty()
        && name.len() < 16
        && name != "."
        && name != ".."
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.');
    if ok {
        Ok(())
    } else {
        Err(NetError::BadInterfaceName(name.to_string()))
    }
}

/// Make (or make again) `table ip dockling`'s chains for `bridge` in one batch (the table
/// and chains created if missing, each chain flushed, its rules added: running it twice
/// leaves one copy), with `outbound` (config, off by default) the masquerade of the
/// subnet's traffic to the outside; then the bridge's own sysctls, `route_localnet=1` (so
/// 127.0.0.1 may be DNATed to a container) and `forwarding=1` (container to published port
/// and hairpin), on that bridge only, through traced writes.
pub fn ensure_bridge_table(
    sys: &Sys,
    bridge: &str,
    subnet: Subnet,
    outbound: bool,
) -> Result<Table, NetError> {
    check_ifname(bridge)?;
    let table = bridge_table(bridge, subnet, outbound);
    let fd = open_socket(sys)?;
    let sent = send(sys, fd, NlWhat::NftBridgeTable, table.batch(1, false));
    close(sys, fd);
    sent?;
    for knob in ["route_localnet", "forwarding"] {
        sys.write_file(
            std::path::Path::new(&format!("/proc/sys/net/ipv4/conf/{bridge}/{knob}")),
            "1",
        )?;
    }
    Ok(table)
}

/// `network rm`: bridge `bridge`'s chains (`guard-`, `post-`, `iso-<bridge>`) out of
/// `table ip dockling`, in one batch ([`Table::removal_batch`]: nothing fails on a chain
/// NAT mode never made); nothing at all when the table is not there (no NAT-mode run in this
/// namespace, so no chain of any bridge).
pub fn remove_bridge_chains(sys: &Sys, bridge: &str) -> Result<(), NetError> {
    check_ifname(bridge)?;
    if !table_exists(sys, BRIDGE_TABLE)? {
        return Ok(());
    }
    let table = bridge_table(bridge, Subnet::DEFAULT, false);
    let fd = open_socket(sys)?;
    let sent = send(sys, fd, NlWhat::NftBridgeUntable, table.removal_batch(1));
    close(sys, fd);
    sent.map(drop)
}

/// A container's published ports, in the kernel as long as this lives: the table is owned by
/// the socket kept here (`flags owner`), so the kernel deletes it when the socket closes
/// ([`OwnedTable::close`], a drop, or the death of the process, even by SIGKILL);
/// [`OwnedTable::remove`] deletes it explicitly first, so the trace shows it.
/// The socket is close-on-exec: the container's process never holds it.
#[derive(Debug)]
pub struct OwnedTable {
    fd: i32,
    seq: u32,
    table: Table,
    open: bool,
}

impl OwnedTable {
    /// The table's name.
    pub fn name(&self) -> &str {
        &self.table.name
    }

    /// The table (its `nft list` text: [`Table::listing`]).
    pub fn table(&self) -> &Table {
        &self.table
    }

    /// The socket that owns the table.
    pub fn fd(&self) -> i32 {
        self.fd
    }

    /// `nft delete table ip <name>` (one batch), then close the socket.
    pub fn remove(mut self, sys: &Sys) -> Result<(), NetError> {
        let sent = delete_table_on(sys, self.fd, self.seq, &self.table.name);
        self.open = false;
        close(sys, self.fd);
        sent
    }

    /// Close the socket (traced): the kernel deletes the table.
    pub fn close(mut self, sys: &Sys) {
        self.open = false;
        close(sys, self.fd);
    }
}

impl Drop for OwnedTable {
    fn drop(&mut self) {
        if self.open {
            // Untraced (no `Sys` here): the path of a panic or an early return. The kernel
            // deletes the table as the socket goes.
            let _ = nix::unistd::close(self.fd);
        }
    }
}

/// `nft delete table ip <name>` as one batch (first sequence number `seq`) on the netlink
/// socket `fd`, which must own the table if it has `flags owner` (the socket that made it, or
/// a duplicate of that descriptor): what [`OwnedTable::remove`] sends.
pub fn delete_table_on(sys: &Sys, fd: i32, seq: u32, name: &str) -> Result<(), NetError> {
    let mut b = Batch::begin(seq);
    b.push(
        NFT_MSG_DELTABLE,
        0,
        |m| put_str(m, NFTA_TABLE_NAME, name),
        format!("delete table ip {name}"),
    );
    send(sys, fd, NlWhat::NftUnpublish, b).map(drop)
}

/// Publish `rules` for container `container_id` in NAT mode: one batch making its owned
/// table (an error if one of that name exists), on a socket kept in the answer.
pub fn publish(sys: &Sys, container_id: &str, rules: &[PortRule]) -> Result<OwnedTable, NetError> {
    if container_id.len() < 12 || !container_id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(NetError::BadInterfaceName(container_id.to_string()));
    }
    let table = container_table(container_id, rules);
    let fd = open_socket(sys)?;
    match send(sys, fd, NlWhat::NftPublish, table.batch(1, true)) {
        Ok(seq) => Ok(OwnedTable {
            fd,
            seq,
            table,
            open: true,
        }),
        Err(e) => {
            close(sys, fd);
            Err(e)
        }
    }
}

/// Whether table `ip <name>` is in the kernel now: one `NFT_MSG_GETTABLE` asking for its ACK
/// (`nft list table ip <name>`), traced; ENOENT is "no".
pub fn table_exists(sys: &Sys, name: &str) -> Result<bool, NetError> {
    let mut buf = Vec::new();
    header(
        &mut buf,
        (NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_GETTABLE,
        NLM_F_REQUEST | NLM_F_ACK,
        1,
        NFPROTO_IPV4,
        0,
    );
    put_str(&mut buf, NFTA_TABLE_NAME, name);
    finish(&mut buf, 0);
    let fd = open_socket(sys)?;
    let line = format!("list table ip {name}");
    let asked = exchange(
        sys,
        fd,
        NlWhat::NftGetTable,
        buf,
        &[(1, line.clone())],
        format!("nft {line}"),
    );
    close(sys, fd);
    match asked {
        Ok(()) => Ok(true),
        Err(NetError::Sys(e)) if e.errno == Errno::ENOENT => Ok(false),
        Err(e) => Err(e),
    }
}

/// The lines of this thread's network namespace's conntrack table
/// (`/proc/thread-self/net/nf_conntrack`) whose original direction goes to `port`: what
/// `explain port` shows of live NAT. A read of kernel information, untraced.
pub fn conntrack_entries(port: u16) -> std::io::Result<Vec<String>> {
    let text = std::fs::read_to_string("/proc/thread-self/net/nf_conntrack")?;
    let want = format!("dport={port}");
    Ok(text
        .lines()
        .filter(|l| l.split_whitespace().find(|w| w.starts_with("dport=")) == Some(&want))
        .map(String::from)
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sys::record::Recorder;
    use crate::trace::Tracer;

    const ID: &str = "3f2a9e1b7c44aa55";

    fn rule() -> PortRule {
        PortRule {
            proto: L4::Tcp,
            host_ip: None,
            host_port: 8000,
            container_ip: Ipv4Addr::new(172, 17, 0, 2),
            container_port: 80,
        }
    }

    #[test]
    fn the_listings_are_nfts() {
        let t = bridge_table("dockling0", Subnet::DEFAULT, false);
        insta::assert_snapshot!(t.listing());
        let mut udp = rule();
        udp.proto = L4::Udp;
        udp.host_ip = Some(Ipv4Addr::LOCALHOST);
        udp.host_port = 53;
        let t = container_table(ID, &[rule(), udp]);
        insta::assert_snapshot!(t.listing());
    }

    #[test]
    fn a_table_is_asked_for_by_name_in_one_gettable_outside_any_batch() {
        let rec = Recorder::new();
        let sys = Sys::new(Box::new(rec.clone()), Tracer::off());
        // The recorder answers with an ACK: the table is there.
        assert!(table_exists(&sys, "dockling-3f2a9e1b7c44").unwrap());
        let calls = rec.calls();
        let Call::NetlinkSend { req, .. } = &calls[2] else {
            panic!("{calls:?}")
        };
        assert_eq!(req.what, NlWhat::NftGetTable);
        assert_eq!(req.command, "nft list table ip dockling-3f2a9e1b7c44");
        let msgs = nl::messages(&req.bytes);
        assert_eq!(msgs.len(), 1, "no batch around a get");
        assert_eq!(
            msgs[0].0.kind,
            (NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_GETTABLE
        );
        assert_eq!(msgs[0].0.flags, NLM_F_REQUEST | NLM_F_ACK);
        assert!(req.bytes.windows(21).any(|w| w == b"dockling-3f2a9e1b7c44"));
        assert!(
            matches!(calls.last(), Some(Call::Close { .. })),
            "the socket is closed: {calls:?}"
        );
    }

    #[test]
    fn a_batch_is_begin_messages_end_with_a_script_line_each() {
        let rec = Recorder::new();
        let sys = Sys::new(Box::new(rec.clone()), Tracer::off());
        let owned = publish(&sys, ID, &[rule()]).unwrap();
        let calls = rec.calls();
        let Call::NetlinkSend { req, .. } = &calls[2] else {
            panic!("{calls:?}")
        };
        let msgs = nl::messages(&req.bytes);
        // begin, table, 2 chains, 2 rules, end
        assert_eq!(msgs.len(), 7);
        assert_eq!(msgs[0].0.kind, NFNL_MSG_BATCH_BEGIN);
        assert_eq!(msgs[6].0.kind, NFNL_MSG_BATCH_END);
        let seqs: Vec<u32> = msgs.iter().map(|m| m.0.seq).collect();
        assert_eq!(seqs, (1..=7).collect::<Vec<_>>());
        assert_eq!(req.command.lines().count(), 5 + 2, "{}", req.command);
        insta::assert_snapshot!(format!("{}\n{}", calls[2], nl::one_line(&req.command)));
        owned.remove(&sys).unwrap();
        let last = rec.calls();
        assert!(
            matches!(&last[last.len() - 3], Call::NetlinkSend { req, .. } if req.command.contains("delete table ip dockling-3f2a9e1b7c44")),
            "{last:?}"
        );
    }

    #[test]
    fn a_refusal_names_the_line() {
        let rec = Recorder::new();
        rec.fail_next("sendto", Errno::EPERM);
        let sys = Sys::new(Box::new(rec.clone()), Tracer::off());
        let err = publish(&sys, ID, &[rule()]).unwrap_err().to_string();
        assert!(err.starts_with("sendto nft '"), "{err}");
        assert!(
            bad_names().all(|n| ensure_bridge_table(&sys, n, Subnet::DEFAULT, false).is_err()),
            "bad bridge names are refused"
        );
    }

    fn bad_names() -> impl Iterator<Item = &'static str> {
        ["", "..", "a/b", "way-too-long-name0", "x y"].into_iter()
    }
}
