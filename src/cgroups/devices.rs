//! The devices controller: which device nodes a container may create (`mknod`) and open.
//!
//! Capabilities and the fresh `/dev` tmpfs are not enough: root in a container keeps
//! `CAP_MKNOD`, so without this controller it could `mknod /tmp/kvm c 10 232` and open the
//! host's `/dev/kvm`, or read a device node an image ships. The kernel checks every `mknod`
//! and every `open` of a device node against the cgroup's rules (cgroups(7), the kernel's
//! `admin-guide/cgroup-v1/devices.rst`), whatever the file system the node sits on.
//!
//! The rules are a list, read in order, each overriding the ones before (the OCI runtime
//! spec's `linux.resources.devices`): a default container starts from "deny everything" and
//! gets Docker's allow list; `--privileged` allows everything. v1 writes them to
//! `devices.deny`/`devices.allow`; v2 has no such files and compiles them into a BPF program
//! ([`super::bpf`]); both use [`Effective`], the state the kernel keeps for v1.

use std::fmt;

/// The kind of device a rule applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Every device (`a`): only with both numbers wild.
    All,
    /// Character devices (`c`).
    Char,
    /// Block devices (`b`).
    Block,
}

impl Kind {
    /// The letter of the kernel's rule syntax and of the OCI spec.
    pub fn letter(self) -> char {
        match self {
            Kind::All => 'a',
            Kind::Char => 'c',
            Kind::Block => 'b',
        }
    }
}

/// Read a device (`r`).
pub const READ: u8 = 1;
/// Write a device (`w`).
pub const WRITE: u8 = 2;
/// Create a device node (`m`).
pub const MKNOD: u8 = 4;
/// `rwm`.
pub const RWM: u8 = READ | WRITE | MKNOD;

/// The `rwm` letters of an access mask.
pub fn access_letters(access: u8) -> String {
    [(READ, 'r'), (WRITE, 'w'), (MKNOD, 'm')]
        .iter()
        .filter(|(bit, _)| access & bit != 0)
        .map(|(_, c)| *c)
        .collect()
}

/// One rule: allow or deny `access` to devices of `kind` with these numbers (`None` = any).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rule {
    /// Allow (`devices.allow`) or deny (`devices.deny`).
    pub allow: bool,
    /// Which kind of device.
    pub kind: Kind,
    /// Major number, or any.
    pub major: Option<u32>,
    /// Minor number, or any.
    pub minor: Option<u32>,
    /// `READ | WRITE | MKNOD` bits.
    pub access: u8,
}

impl Rule {
    /// True when the rule names every device (`a`, both numbers wild).
    pub fn is_all(&self) -> bool {
        self.kind == Kind::All
    }

    /// The v1 control file this rule is written to.
    pub fn v1_file(&self) -> &'static str {
        if self.allow {
            "devices.allow"
        } else {
            "devices.deny"
        }
    }

    /// The line written to [`Rule::v1_file`]: `c 1:3 rwm`, or `a` for every device (the
    /// kernel reads nothing after an `a`: it switches the default and clears the list).
    pub fn v1_line(&self) -> String {
        if self.is_all() {
            "a".into()
        } else {
            self.to_string()
        }
    }

    /// True when the rule's kind and numbers cover device `kind major:minor`.
    fn covers(&self, kind: Kind, major: u32, minor: u32) -> bool {
        (self.kind == Kind::All || self.kind == kind)
            && self.major.is_none_or(|m| m == major)
            && self.minor.is_none_or(|m| m == minor)
    }
}

impl fmt::Display for Rule {
    /// The kernel's syntax, as `devices.list` prints it: `c 136:* rwm`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let num = |n: Option<u32>| n.map(|n| n.to_string()).unwrap_or_else(|| "*".into());
        write!(
            f,
            "{} {}:{} {}",
            self.kind.letter(),
            num(self.major),
            num(self.minor),
            access_letters(self.access)
        )
    }
}

/// Docker's device rules for a default container, in order: its daemon's default spec (deny
/// everything, allow the standard devices, deny `/dev/fuse`) followed by the allowances runc
/// adds to every container (`mknod` of any node, `/dev/full`, the pseudo-terminals, `/dev/net/tun`),
/// so dockling enforces what `docker run` ends up enforcing.
///
/// `mknod` stays allowed for any node because images unpack and create nodes (a `mknod` alone
/// reaches nothing); opening one is what the rules guard.
pub const DEFAULT: &[Rule] = &[
    rule(false, Kind::All, None, None, RWM),
    rule(true, Kind::Char, Some(1), Some(5), RWM), // /dev/zero
    rule(true, Kind::Char, Some(1), Some(3), RWM), // /dev/null
    rule(true, Kind::Char, Some(1), Some(9), RWM), // /dev/urandom
    rule(true, Kind::Char, Some(1), Some(8), RWM), // /dev/random
    rule(true, Kind::Char, Some(5), Some(0), RWM), // /dev/tty
    rule(true, Kind::Char, Some(5), Some(1), RWM), // /dev/console
    rule(false, Kind::Char, Some(10), Some(229), RWM), // /dev/fuse
    rule(true, Kind::Char, None, None, MKNOD),     // mknod of any character device
    rule(true, Kind::Block, None, None, MKNOD),    // mknod of any block device
    rule(true, Kind::Char, Some(1), Some(7), RWM), // /dev/full
    rule(true, Kind::Char, Some(136), None, RWM),  // /dev/pts/*
    rule(true, Kind::Char, Some(5), Some(2), RWM), // /dev/ptmx
    rule(true, Kind::Char, Some(10), Some(200), RWM), // /dev/net/tun
];

/// What every OCI container may use whatever its config's rules say (runc's allowed
/// devices, appended after the config's rules so they win): `mknod` of any node, the standard
/// devices, the console, the pseudo-terminals and `/dev/net/tun`. Unlike [`DEFAULT`], no
/// deny of `/dev/fuse`: that is Docker's, and a config may allow it.
pub const ALLOWED: &[Rule] = &[
    rule(true, Kind::Char, None, None, MKNOD),
    rule(true, Kind::Block, None, None, MKNOD),
    rule(true, Kind::Char, Some(1), Some(3), RWM), // /dev/null
    rule(true, Kind::Char, Some(1), Some(5), RWM), // /dev/zero
    rule(true, Kind::Char, Some(1), Some(7), RWM), // /dev/full
    rule(true, Kind::Char, Some(1), Some(8), RWM), // /dev/random
    rule(true, Kind::Char, Some(1), Some(9), RWM), // /dev/urandom
    rule(true, Kind::Char, Some(5), Some(0), RWM), // /dev/tty
    rule(true, Kind::Char, Some(5), Some(1), RWM), // /dev/console
    rule(true, Kind::Char, Some(136), None, RWM),  // /dev/pts/*
    rule(true, Kind::Char, Some(5), Some(2), RWM), // /dev/ptmx
    rule(true, Kind::Char, Some(10), Some(200), RWM), // /dev/net/tun
];

/// The rules of an OCI container: the config's `linux.resources.devices` (or "deny
/// everything" when it has none), then [`ALLOWED`], then an allow of each node its
/// `linux.devices` makes (`kind` `c`, `u` or `b`; a FIFO is no device), as runc composes them.
pub fn for_oci(config: &[Rule], nodes: &[(char, u64, u64)]) -> Vec<Rule> {
    let mut out: Vec<Rule> = if config.is_empty() {
        vec![rule(false, Kind::All, None, None, RWM)]
    } else {
        config.to_vec()
    };
    out.extend_from_slice(ALLOWED);
    for (kind, major, minor) in nodes {
        let kind = match kind {
            'b' => Kind::Block,
            'c' | 'u' => Kind::Char,
            _ => continue,
        };
        out.push(Rule {
            allow: true,
            kind,
            major: u32::try_from(*major).ok(),
            minor: u32::try_from(*minor).ok(),
            access: RWM,
        });
    }
    out
}

/// The runtime spec's `linux.resources.devices` as rules; a bad entry is refused by its index.
pub fn from_oci(list: &[oci_spec::runtime::LinuxDeviceCgroup]) -> Result<Vec<Rule>, String> {
    use oci_spec::runtime::LinuxDeviceType;
    let mut out = Vec::new();
    for (i, d) in list.iter().enumerate() {
        let field = format!("entry {i}");
        let kind = match d.typ() {
            None | Some(LinuxDeviceType::A) => Kind::All,
            Some(LinuxDeviceType::C) | Some(LinuxDeviceType::U) => Kind::Char,
            Some(LinuxDeviceType::B) => Kind::Block,
            Some(LinuxDeviceType::P) => {
                return Err(format!(
                    "{field}: type p: a FIFO is not a device the cgroup controls; use a, c or b"
                ))
            }
        };
        let number = |n: Option<i64>, what: &str| -> Result<Option<u32>, String> {
            match n {
                None | Some(-1) => Ok(None),
                Some(n) => u32::try_from(n)
                    .map(Some)
                    .map_err(|_| format!("{field}: {what} {n} is not a device number")),
            }
        };
        let (major, minor) = (number(d.major(), "major")?, number(d.minor(), "minor")?);
        let mut access = 0;
        for c in d.access().as_deref().unwrap_or("rwm").chars() {
            access |= match c {
                'r' => READ,
                'w' => WRITE,
                'm' => MKNOD,
                other => {
                    return Err(format!(
                        "{field}: access {other:?}: use the letters r, w and m"
                    ))
                }
            };
        }
        // `a` with numbers is not the kernel's `a`: it covers both kinds with those numbers.
        if kind == Kind::All && (major.is_some() || minor.is_some()) {
            for kind in [Kind::Char, Kind::Block] {
                out.push(rule(d.allow(), kind, major, minor, access));
            }
            continue;
        }
        out.push(rule(d.allow(), kind, major, minor, access));
    }
    Ok(out)
}

/// `--privileged`: every device.
pub const ALLOW_ALL: &[Rule] = &[rule(true, Kind::All, None, None, RWM)];

const fn rule(allow: bool, kind: Kind, major: Option<u32>, minor: Option<u32>, access: u8) -> Rule {
    Rule {
        allow,
        kind,
        major,
        minor,
        access,
    }
}

/// The rules of a container: Docker's defaults, or everything with `--privileged`.
pub fn rules(privileged: bool) -> &'static [Rule] {
    if privileged {
        ALLOW_ALL
    } else {
        DEFAULT
    }
}

/// What a list of rules leaves in force, as the v1 kernel keeps it: a default (allow or deny)
/// and the exceptions to it (see `devcgroup_update_access` in `security/device_cgroup.c`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Effective {
    /// Everything not excepted is allowed.
    pub default_allow: bool,
    /// Devices treated the other way round from the default; never of kind `All`.
    pub exceptions: Vec<Rule>,
}

impl Effective {
    /// Apply `rules` in order, starting from "allow everything" (a new group under a parent
    /// that allows everything, as the container's parent does).
    pub fn of(rules: &[Rule]) -> Effective {
        let mut e = Effective {
            default_allow: true,
            exceptions: Vec::new(),
        };
        for r in rules {
            if r.is_all() {
                // `a`: switch the default, forget every exception.
                e.default_allow = r.allow;
                e.exceptions.clear();
            } else if r.allow != e.default_allow {
                // An exception to the default: merge with the same device's entry.
                match e.exceptions.iter_mut().find(|x| same_device(x, r)) {
                    Some(x) => x.access |= r.access,
                    None => e.exceptions.push(Rule {
                        allow: r.allow,
                        ..*r
                    }),
                }
            } else {
                // Same way as the default: take the access back from a matching exception.
                for x in e.exceptions.iter_mut().filter(|x| same_device(x, r)) {
                    x.access &= !r.access;
                }
                e.exceptions.retain(|x| x.access != 0);
            }
        }
        e
    }

    /// Whether `access` to device `kind major:minor` is allowed. With a deny default one
    /// exception must cover every bit asked for; with an allow default any denied bit denies
    /// (the kernel's `match_exception` and `match_exception_partial`).
    pub fn permits(&self, kind: Kind, major: u32, minor: u32, access: u8) -> bool {
        let hits = self
            .exceptions
            .iter()
            .filter(|x| x.covers(kind, major, minor));
        if self.default_allow {
            !hits.into_iter().any(|x| x.access & access != 0)
        } else {
            hits.into_iter().any(|x| access & !x.access == 0)
        }
    }
}

fn same_device(a: &Rule, b: &Rule) -> bool {
    a.kind == b.kind && a.major == b.major && a.minor == b.minor
}

/// The rules as the OCI runtime spec's `linux.resources.devices`.
pub fn to_oci(rules: &[Rule]) -> Vec<oci_spec::runtime::LinuxDeviceCgroup> {
    use oci_spec::runtime::{LinuxDeviceCgroup, LinuxDeviceType};
    rules
        .iter()
        .map(|r| {
            let mut d = LinuxDeviceCgroup::default();
            d.set_allow(r.allow)
                .set_typ(match r.kind {
                    Kind::All => None,
                    Kind::Char => Some(LinuxDeviceType::C),
                    Kind::Block => Some(LinuxDeviceType::B),
                })
                .set_major(r.major.map(i64::from))
                .set_minor(r.minor.map(i64::from))
                .set_access(Some(access_letters(r.access)));
            d
        })
        .collect()
}
