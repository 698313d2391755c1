//! Linux capabilities: names, numbers, and Docker's default set.
//!
//! Root in a container is not all of root: Docker keeps 14 of the ~41 capabilities. The rest
//! are dropped from the bounding set, so no program in the container (not even a setuid one)
//! can ever get them back. Inheritable and ambient stay empty, as Docker leaves them; an OCI
//! config gives all five sets itself ([`Sets`]).

use crate::error::{Error, Result};

pub use crate::sys::caps::{last_cap, NAMES};

/// Docker's default capabilities (moby `oci/caps/defaults.go`).
pub const DOCKER_DEFAULT: &[&str] = &[
    "CHOWN",
    "DAC_OVERRIDE",
    "FSETID",
    "FOWNER",
    "MKNOD",
    "NET_RAW",
    "SETGID",
    "SETUID",
    "SETFCAP",
    "SETPCAP",
    "NET_BIND_SERVICE",
    "SYS_CHROOT",
    "KILL",
    "AUDIT_WRITE",
];

/// The capabilities dockling itself holds (`CapPrm` of /proc/self/status): a container can
/// never get more. On machines without some capability (no `CAP_SYS_RESOURCE` here, say),
/// `--privileged` gives all that remain, as Docker does.
pub fn available() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("CapPrm:"))
                .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        })
        .unwrap_or(u64::MAX)
}

/// The number of a capability named like Docker accepts: `NET_ADMIN`, `CAP_NET_ADMIN`, any case.
pub fn number(name: &str) -> Result<u32> {
    let upper = name.to_ascii_uppercase();
    let bare = upper.strip_prefix("CAP_").unwrap_or(&upper);
    NAMES
        .iter()
        .position(|n| *n == bare)
        .map(|i| i as u32)
        .ok_or_else(|| {
            Error::Usage(format!(
                "unknown capability: {name:?} (see capabilities(7) for names, e.g. NET_ADMIN)"
            ))
        })
}

/// The set a container keeps: Docker's defaults (or all with `--privileged`), then `--cap-add`
/// and `--cap-drop` applied in Docker's order (drop ALL first, then add).
pub fn resolve(privileged: bool, add: &[String], drop: &[String]) -> Result<Vec<u32>> {
    let last = last_cap();
    let all: Vec<u32> = (0..=last).collect();
    let mut set: Vec<u32> = if privileged {
        all.clone()
    } else {
        DOCKER_DEFAULT
            .iter()
            .map(|n| number(n))
            .collect::<Result<_>>()?
    };
    for d in drop {
        if d.eq_ignore_ascii_case("all") {
            set.clear();
        } else {
            let n = number(d)?;
            set.retain(|c| *c != n);
        }
    }
    for a in add {
        if a.eq_ignore_ascii_case("all") {
            set = all.clone();
        } else {
            let n = number(a)?;
            if n <= last && !set.contains(&n) {
                set.push(n);
            }
        }
    }
    let have = available();
    for a in add.iter().filter(|a| !a.eq_ignore_ascii_case("all")) {
        let n = number(a)?;
        if have & (1 << n) == 0 {
            return Err(super::RuntimeError::CapabilityNotHeld {
                requested: a.clone(),
                name: NAMES[n as usize],
            }
            .into());
        }
    }
    set.retain(|c| have & (1 << c) != 0);
    set.sort_unstable();
    Ok(set)
}

/// The five capability sets a container's process gets, as the masks the kernel takes. The
/// child applies them in runc's order: the bounding set first (`PR_CAPBSET_DROP` for every
/// capability outside it), then after the user switch `capset` with effective, permitted and
/// inheritable, then `PR_CAP_AMBIENT_RAISE` for each ambient one (the kernel raises only a
/// capability that is both permitted and inheritable: capabilities(7)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Sets {
    /// What the process and everything it starts can ever hold.
    pub bounding: u64,
    /// What the kernel checks.
    pub effective: u64,
    /// What the process may make effective.
    pub permitted: u64,
    /// What programs with inheritable file capabilities may keep across `execve`.
    pub inheritable: u64,
    /// What every program keeps across `execve`, file capabilities or not.
    pub ambient: u64,
}

impl Sets {
    /// Docker's sets for the capabilities a container keeps: bounding, effective and permitted
    /// all `keep`, inheritable and ambient empty (what `dockling run` and `exec` give).
    pub fn docker(keep: &[u32]) -> Sets {
        let m = mask(keep);
        Sets {
            bounding: m,
            effective: m,
            permitted: m,
            inheritable: 0,
            ambient: 0,
        }
    }
}

/// The set as the 64-bit mask `capset(2)` and `/proc/pid/status` use.
pub fn mask(caps: &[u32]) -> u64 {
    caps.iter().fold(0u64, |m, c| m | (1u64 << c))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_default_mask_matches_docker() {
        // What `grep CapBnd /proc/self/status` prints in a default Docker container.
        assert_eq!(mask(&resolve(false, &[], &[]).unwrap()), 0x00000000a80425fb);
    }

    #[test]
    fn docker_sets_leave_inheritable_and_ambient_empty() {
        let s = Sets::docker(&[0, 5]);
        assert_eq!((s.bounding, s.effective, s.permitted), (0x21, 0x21, 0x21));
        assert_eq!((s.inheritable, s.ambient), (0, 0));
    }

    #[test]
    fn add_and_drop_follow_docker() {
        let set = resolve(false, &["net_admin".into()], &["ALL".into()]).unwrap();
        assert_eq!(set, vec![number("NET_ADMIN").unwrap()]);
        assert!(resolve(false, &["BOGUS".into()], &[])
            .unwrap_err()
            .to_string()
            .contains("BOGUS"));
    }
}
