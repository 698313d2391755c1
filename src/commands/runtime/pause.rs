//! `pause ID` / `resume ID`: every process of a container frozen by its cgroup's freezer, and
//! thawed again, as runc's commands do (the status `paused` is then read from the freezer by
//! `state`, never stored).

use std::path::Path;

use super::state::{StateRoot, Status};
use crate::error::{Error, Result};

/// Freeze (`pause`) or thaw (`resume`) container `id` and wait until the kernel says it is
/// done. A running or created container can be paused (runc allows both); only a paused one
/// resumed. The errors begin with runc's words (`container not running`, `container not
/// paused`), which callers match.
pub fn pause(root: &Path, id: &str, frozen: bool) -> Result<()> {
    let root = StateRoot::open(root)?;
    let (_lock, record) = root.lock_and_load(id)?;
    let status = record.status(&root.dir_of(id));
    match (frozen, status) {
        (true, Status::Running | Status::Created) | (false, Status::Paused) => {}
        (true, _) => {
            return Err(Error::Usage(format!(
                "container not running: {id:?} is {}; only a running or created container \
                 can be paused",
                status.as_str()
            )))
        }
        (false, _) => {
            return Err(Error::Usage(format!(
                "container not paused: {id:?} is {}; resume thaws a paused container only",
                status.as_str()
            )))
        }
    }
    let cg = record.cgroup().ok_or_else(|| {
        Error::Usage(format!(
            "container {id:?} has no cgroup (it was created with --cgroup-manager disabled), \
             so it has no freezer to pause it with"
        ))
    })?;
    let sys = super::runtime_sys(record.trace.as_deref(), &record.id)?;
    cg.freeze_settled(&sys, frozen)
}
