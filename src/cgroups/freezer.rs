//! The freezer: every process of a group stopped where it stands (`pause`) and let go again
//! (`resume`), the way runc's `pause`/`resume` do it.
//!
//! A write only asks. On v1 `freezer.state` reads `FREEZING` until the kernel has caught every
//! task, and stays there when one cannot be caught (a task in an uninterruptible sleep, a
//! vfork parent): writing `FROZEN` again makes the kernel try again (the kernel's
//! `cgroup-v1/freezer-subsystem.rst`). On v2 `cgroup.freeze` is the wish and the `frozen`
//! line of `cgroup.events` the fact (`cgroup-v2.rst`, "Core Interface Files"). So the write
//! is followed by reads until the state settles, bounded: a group that does not freeze in
//! time is thawed again and the caller told, never left half frozen.

use std::time::{Duration, Instant};

use super::{Cgroup, Version};
use crate::error::{Error, Result};
use crate::sys::Sys;

/// How long a freeze or a thaw may take before it is given up.
const SETTLE: Duration = Duration::from_secs(2);

/// How often a v1 freeze stuck in `FREEZING` is asked again.
const RETRY: Duration = Duration::from_millis(10);

impl Cgroup {
    /// Freeze (`true`) or thaw the group and wait until the kernel reports it done. A freeze
    /// that does not settle within two seconds is undone (the group thawed) and reported.
    pub fn freeze_settled(&self, sys: &Sys, frozen: bool) -> Result<()> {
        let (knob, on, off) = self.freezer(sys).ok_or(super::CgroupError::NoFreezer)?;
        let want = if frozen { on } else { off };
        sys.write_file(&knob, want)?;
        if sys.is_dry_run() {
            return Ok(());
        }
        let start = Instant::now();
        let mut asked = start;
        loop {
            let now = self.freezer_state(sys);
            if now.as_deref() == Some(if frozen { "frozen" } else { "thawed" }) {
                return Ok(());
            }
            if start.elapsed() >= SETTLE {
                if frozen {
                    // Never leave a group half frozen: whatever was caught runs again.
                    let _ = sys.write_file(&knob, off);
                }
                return Err(Error::Usage(format!(
                    "the cgroup {} did not {} within {} s (its state: {}){}",
                    knob.parent().unwrap_or(&knob).display(),
                    if frozen { "freeze" } else { "thaw" },
                    SETTLE.as_secs(),
                    now.as_deref().unwrap_or("unreadable"),
                    if frozen {
                        ": it was thawed again; a process in an uninterruptible sleep \
                         (disk or NFS I/O) holds it up, try again later"
                    } else {
                        ""
                    }
                )));
            }
            if frozen && self.version == Version::V1 && asked.elapsed() >= RETRY {
                // Still FREEZING: ask the kernel to try the tasks it missed again.
                sys.write_file(&knob, on)?;
                asked = Instant::now();
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// What the kernel says the group is: `frozen`, `freezing` (v1 only: asked, not all
    /// caught) or `thawed`; `None` when there is no freezer to read. Read through the seam.
    pub fn freezer_state(&self, sys: &Sys) -> Option<String> {
        match self.version {
            Version::V1 => {
                let (knob, ..) = self.freezer(sys)?;
                let text = sys.read_file(&knob).ok()?;
                Some(text.trim().to_ascii_lowercase())
            }
            Version::V2 => {
                let dir = self.paths().into_iter().next()?;
                let text = sys.read_file(&dir.join("cgroup.events")).ok()?;
                let frozen = text.lines().find_map(|l| l.strip_prefix("frozen "))?;
                Some(
                    if frozen.trim() == "1" {
                        "frozen"
                    } else {
                        "thawed"
                    }
                    .into(),
                )
            }
        }
    }
}
