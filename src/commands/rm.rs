//! `dockling rm`: remove containers (with `-f`, kill running ones first).

use std::time::{Duration, Instant};

use crate::cli::RmArgs;
use crate::commands::{require_root, Context};
use crate::container::{Containers, Status};
use crate::error::{Error, Result};
use crate::sys::{Call, Sys};

/// Remove one container; returns what to print.
pub fn remove(ctx: &Context, containers: &Containers, name: &str, force: bool) -> Result<()> {
    let c = containers.find(name)?;
    if c.is_alive() {
        if !force {
            return Err(Error::Usage(format!(
                "cannot remove container {name}: it is running: stop it first or use rm -f"
            )));
        }
        if let Status::Running { pid, .. } = c.status {
            let sys = Sys::quiet();
            sys.run(Call::Kill {
                pid,
                signal: libc::SIGKILL,
            })?;
            // The container's own dockling process reaps it; wait (bounded) until it is gone.
            let deadline = Instant::now() + Duration::from_secs(10);
            while c.is_alive() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(10));
            }
            if c.is_alive() {
                return Err(Error::Usage(format!(
                    "container {name} did not die within 10 s of SIGKILL"
                )));
            }
            crate::fault::check("rm.killed")?;
        }
    }
    if c.spec.cgroup.is_some() {
        if let Ok(Some(cg)) = crate::commands::run::cgroup_for(ctx, &c.spec) {
            let _ = cg.destroy(&Sys::quiet());
        }
        crate::fault::check("rm.cgroup_removed")?;
    }
    crate::fault::check("rm.before_remove_dir")?;
    containers.remove_dir(&c.spec.id)?;
    crate::fault::check("rm.dir_removed")
}

/// `dockling rm`.
pub fn run(ctx: &Context, args: &RmArgs) -> Result<i32> {
    require_root("rm")?;
    let containers = Containers::open(&ctx.root)?;
    let mut code = 0;
    for name in &args.containers {
        match remove(ctx, &containers, name, args.force) {
            Ok(()) => println!("{name}"),
            Err(e) => {
                eprintln!("Error response from dockling: {e}");
                code = 1;
            }
        }
    }
    Ok(code)
}
