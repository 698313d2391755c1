//! `ps ID [--format table|json] [-- PS_ARGS]`: the processes of a container, as runc lists
//! them. They are the processes of its cgroup (its own group and every group below it, which
//! a container with a cgroup namespace may make), not of its pid namespace: what the
//! container started is in its group wherever its parent went. `json` prints their host pids;
//! `table` runs the host's `ps` (`-ef` unless other options are given) and keeps its header
//! and the lines of those pids.

use std::io::Write;
use std::path::Path;

use super::state::StateRoot;
use crate::cli::runtime::ListFormat;
use crate::error::{Error, Result};
use crate::sys::{Call, Ret};

/// Print container `id`'s processes.
pub fn ps(root: &Path, id: &str, format: ListFormat, ps_args: &[String]) -> Result<()> {
    let root = StateRoot::open(root)?;
    let record = root.load(id)?;
    let cg = record.cgroup().ok_or_else(|| {
        Error::Usage(format!(
            "container {id:?} has no cgroup (it was created with --cgroup-manager disabled), \
             so its processes cannot be told from the host's"
        ))
    })?;
    let sys = super::runtime_sys(record.trace.as_deref(), &record.id)?;
    let pids = cg.all_procs(&sys);
    let out = match format {
        ListFormat::Json => {
            if !ps_args.is_empty() {
                return Err(Error::Usage(format!(
                    "ps options ({}) go with the table format only: drop them, or drop \
                     --format json",
                    ps_args.join(" ")
                )));
            }
            let mut text =
                serde_json::to_string(&pids).map_err(|e| Error::Corrupt(e.to_string()))?;
            text.push('\n');
            text
        }
        ListFormat::Table => {
            let mut argv = vec!["ps".to_string()];
            if ps_args.is_empty() {
                argv.push("-ef".into());
            } else {
                argv.extend(ps_args.iter().cloned());
            }
            let shown = argv.join(" ");
            let ran = sys.perform(Call::RunHost { argv }).map_err(|e| {
                Error::Usage(format!(
                    "run the host's {shown}: {e} (is procps installed? --format json needs no ps)"
                ))
            })?;
            let Ret::Ran {
                status,
                stdout,
                stderr,
                ..
            } = ran
            else {
                return Err(Error::Corrupt(format!("{shown}: no output came back")));
            };
            if !libc::WIFEXITED(status) || libc::WEXITSTATUS(status) != 0 {
                return Err(Error::Usage(format!(
                    "{shown} failed ({}): {}",
                    if libc::WIFEXITED(status) {
                        format!("exit code {}", libc::WEXITSTATUS(status))
                    } else {
                        format!("killed by signal {}", libc::WTERMSIG(status))
                    },
                    String::from_utf8_lossy(&stderr).trim()
                )));
            }
            filter(&String::from_utf8_lossy(&stdout), &pids)
                .map_err(|why| Error::Usage(format!("{shown}: {why}")))?
        }
    };
    std::io::stdout()
        .write_all(out.as_bytes())
        .map_err(|e| Error::Usage(format!("write the list: {e}")))
}

/// `ps`'s header and the lines whose PID column holds one of `pids` (runc's filter: the
/// column found by its header, each line split on white space).
fn filter(text: &str, pids: &[i32]) -> std::result::Result<String, String> {
    let mut lines = text.lines();
    let header = lines.next().unwrap_or("");
    let col = header
        .split_whitespace()
        .position(|h| h == "PID")
        .ok_or("its output has no PID column: give ps options that keep one (like -ef)")?;
    let mut out = format!("{header}\n");
    for line in lines.filter(|l| !l.trim().is_empty()) {
        let field = line.split_whitespace().nth(col).unwrap_or("");
        let pid: i32 = field
            .parse()
            .map_err(|_| format!("cannot read a pid in {line:?}"))?;
        if pids.contains(&pid) {
            out.push_str(line);
            out.push('\n');
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_keeps_the_header_and_the_containers_lines() {
        let text = "UID          PID    PPID  C STIME TTY          TIME CMD\n\
                    root           1       0  0 10:00 ?        00:00:01 /sbin/init\n\
                    root        4242       1  0 10:01 ?        00:00:00 /init pause\n\
                    root        4243    4242  0 10:01 ?        00:00:00 sleep 100\n";
        insta::assert_snapshot!(filter(text, &[4242, 4243]).unwrap(), @r"
        UID          PID    PPID  C STIME TTY          TIME CMD
        root        4242       1  0 10:01 ?        00:00:00 /init pause
        root        4243    4242  0 10:01 ?        00:00:00 sleep 100
        ");
        let err = filter("USER COMMAND\nroot init\n", &[1]).unwrap_err();
        assert!(err.contains("no PID column"), "{err}");
        let err = filter("PID CMD\nx init\n", &[1]).unwrap_err();
        assert!(err.contains("cannot read a pid"), "{err}");
    }
}
