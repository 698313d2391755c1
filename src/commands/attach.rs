//! `dockling attach`: the user's terminal to a detached container, through its monitor.
//!
//! The monitor holds the container's terminal (`-dit`) or output pipes (`-d`) and serves
//! them on its attach socket (`container::attach`). This command connects, puts the user's
//! terminal in raw mode when the container has one, and relays: keys in (watching for the
//! detach keys, Ctrl-P Ctrl-Q by default), output out, resizes in. Signals sent to it are
//! forwarded to the container's first process (`--sig-proxy`, not with a terminal, as
//! Docker). It ends with the container's exit code, or 0 when the user detaches.

use std::collections::VecDeque;
use std::io::{IsTerminal, Read, Write};
use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signalfd::{SfdFlags, SignalFd};

use crate::cli::AttachArgs;
use crate::commands::{require_root, Context};
use crate::container::attach::{self, DetachKeys};
use crate::container::{Container, Containers, Status};
use crate::error::{Error, Result};
use crate::runtime::io;
use crate::sys::Sys;

/// Docker's default detach keys.
pub const DEFAULT_DETACH_KEYS: &str = "ctrl-p,ctrl-q";

/// `dockling attach`.
pub fn run(ctx: &Context, args: &AttachArgs) -> Result<i32> {
    require_root("attach")?;
    let keys =
        attach::parse_detach_keys(args.detach_keys.as_deref().unwrap_or(DEFAULT_DETACH_KEYS))?;
    let containers = Containers::open(&ctx.root)?;
    let c = containers.find(&args.container)?;
    let Status::Running { pid, pid_start } = c.status else {
        return Err(crate::container::ContainerError::AttachStopped {
            name: c.spec.name.clone(),
        }
        .into());
    };
    if !c.is_alive() {
        return Err(crate::container::ContainerError::AttachStopped {
            name: c.spec.name.clone(),
        }
        .into());
    }
    if crate::commands::lifecycle::is_paused(ctx, &c) {
        return Err(crate::container::ContainerError::Paused {
            name: c.spec.name.clone(),
        }
        .into());
    }
    // The signals to forward are blocked before connecting, so none that comes meanwhile
    // ends this command with its default action instead of reaching the container.
    let proxy = args.sig_proxy && !c.spec.tty;
    let old_mask = io::block_signals_for(&Sys::quiet(), proxy)?;
    let stream = attach::connect(&c.spec.bundle).map_err(|e| {
        io::restore_signals(&Sys::quiet(), old_mask);
        Error::Usage(format!(
            "cannot attach to container {}: {e} (a container started in the foreground has no monitor to attach to)",
            c.spec.name
        ))
    })?;
    let stdin = c.spec.interactive && !args.no_stdin;
    let detached = relay(
        old_mask,
        stream,
        stdin,
        c.spec.tty,
        proxy,
        // As Docker's daemon: the detach keys are watched for on a terminal only; without one
        // the input is copied as it is (a 0x10 byte in piped data is data).
        DetachKeys::new(if c.spec.tty { keys } else { Vec::new() }),
        (pid, pid_start),
    )?;
    if detached {
        return Ok(0);
    }
    // The monitor closed the socket: the container ended (its code, once recorded), the
    // monitor died (the next reap records the container's end), or the monitor let this
    // client go while the container runs on (said, not passed off as an exit).
    // A container that just ended may still be a zombie its monitor has not reaped: still
    // "alive" for a moment; one still running after this grace was let go.
    let grace = Instant::now() + Duration::from_secs(2);
    let give_up = Instant::now() + Duration::from_secs(20);
    let mut watch = containers.watch(&Sys::quiet(), &c.spec.id);
    loop {
        match containers.find(&c.spec.id) {
            Ok(now) => {
                if let Status::Exited { code, .. } = now.status {
                    return Ok(code);
                }
                // Started again meanwhile (`--restart`): this run's end is not recorded.
                if now.started_at != c.started_at {
                    return Ok(0);
                }
                if !containers.engine_alive(&c.spec.id) {
                    // Killed monitor: what happened is recorded by reap (137 for a container
                    // that died with it).
                    crate::commands::rm::reap(ctx, &containers);
                    if let Ok(Container {
                        status: Status::Exited { code, .. },
                        ..
                    }) = containers.find(&c.spec.id)
                    {
                        return Ok(code);
                    }
                } else if now.is_alive() && Instant::now() > grace {
                    return Err(crate::container::ContainerError::AttachDropped {
                        name: c.spec.name.clone(),
                    }
                    .into());
                }
                if Instant::now() > give_up {
                    return Ok(0);
                }
            }
            // Removed (`--rm`, `rm -f`): Docker's attach then says nothing more either.
            Err(_) => return Ok(0),
        }
        watch.wait(Duration::from_millis(50));
    }
}

/// Relay until the monitor closes the socket (false) or the user types the detach keys
/// (true).
fn relay(
    old_mask: u64,
    mut stream: std::os::unix::net::UnixStream,
    mut stdin_open: bool,
    tty: bool,
    proxy: bool,
    mut keys: DetachKeys,
    (pid, pid_start): (i32, u64),
) -> Result<bool> {
    let quiet = Sys::quiet();
    let sfd = SignalFd::with_flags(
        &io::relay_signals_for(proxy),
        SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK,
    )
    .map_err(|source| crate::runtime::RuntimeError::Signalfd { source })?;
    let _raw = io::RawMode::enter(tty && stdin_open && std::io::stdin().is_terminal());
    stream
        .set_nonblocking(true)
        .map_err(Error::io("set non-blocking", "attach socket"))?;
    let mut to_monitor: VecDeque<u8> = VecDeque::new();
    if tty {
        send_size(&mut to_monitor);
    }
    let mut from_monitor = Vec::new();
    let mut buf = [0u8; 16384];
    let result = loop {
        let stdin = std::io::stdin();
        let mut fds = vec![
            PollFd::new(sfd.as_fd(), PollFlags::POLLIN),
            PollFd::new(
                stream.as_fd(),
                if to_monitor.is_empty() {
                    PollFlags::POLLIN
                } else {
                    PollFlags::POLLIN | PollFlags::POLLOUT
                },
            ),
        ];
        // Keys are read while the monitor keeps up (backpressure on the user's side).
        let read_stdin = stdin_open && to_monitor.len() < attach::MAX_BACKLOG;
        if read_stdin {
            fds.push(PollFd::new(stdin.as_fd(), PollFlags::POLLIN));
        }
        match poll(&mut fds, PollTimeout::NONE) {
            Ok(_) => {}
            Err(nix::errno::Errno::EINTR) => continue,
            Err(source) => break Err(crate::runtime::RuntimeError::Poll { source }.into()),
        }
        let revents: Vec<PollFlags> = fds
            .iter()
            .map(|f| f.revents().unwrap_or(PollFlags::empty()))
            .collect();
        drop(fds);
        if revents[1].intersects(PollFlags::POLLIN | PollFlags::POLLHUP | PollFlags::POLLERR) {
            match stream.read(&mut buf) {
                Ok(0) => break Ok(false),
                Ok(n) => {
                    from_monitor.extend_from_slice(&buf[..n]);
                    for (kind, data) in attach::unframe(&mut from_monitor) {
                        let written = if kind == attach::STDERR {
                            let mut e = std::io::stderr().lock();
                            e.write_all(&data).and_then(|()| e.flush())
                        } else {
                            let mut o = std::io::stdout().lock();
                            o.write_all(&data).and_then(|()| o.flush())
                        };
                        if written.is_err() {
                            // Nobody reads this command's output: detach, as Docker's
                            // client does when its output is gone.
                            return finish(&quiet, old_mask, Ok(true));
                        }
                    }
                }
                Err(e) if crate::files::retry(&e) => {}
                Err(_) => break Ok(false),
            }
        }
        if revents[1].contains(PollFlags::POLLOUT)
            && crate::files::write_now(&mut stream, &mut to_monitor).is_err()
        {
            break Ok(false);
        }
        if read_stdin && revents.get(2).is_some_and(|r| !r.is_empty()) {
            match stdin.lock().read(&mut buf) {
                Ok(0) | Err(_) => stdin_open = false,
                Ok(n) => {
                    let mut keyed = Vec::new();
                    let detach = keys.filter(&buf[..n], &mut keyed);
                    if !keyed.is_empty() {
                        attach::frame(&mut to_monitor, attach::STDIN, &keyed);
                    }
                    let flushed = crate::files::write_now(&mut stream, &mut to_monitor);
                    if detach {
                        break Ok(true);
                    }
                    if flushed.is_err() {
                        break Ok(false);
                    }
                }
            }
        }
        if !revents[0].is_empty() {
            while let Ok(Some(info)) = sfd.read_signal() {
                let signo = info.ssi_signo as i32;
                if signo == libc::SIGWINCH {
                    if tty {
                        send_size(&mut to_monitor);
                        let _ = crate::files::write_now(&mut stream, &mut to_monitor);
                    }
                } else if proxy && signo != libc::SIGCHLD {
                    // Through the seam's pidfd: the container's own process, checked by
                    // its start time, whatever reuses the number later.
                    let _ = crate::commands::rm::signal(pid, pid_start, signo);
                }
            }
        }
    };
    finish(&quiet, old_mask, result)
}

fn finish(quiet: &Sys, old_mask: u64, result: Result<bool>) -> Result<bool> {
    io::restore_signals(quiet, old_mask);
    result
}

/// Queue the user's terminal size for the monitor.
fn send_size(out: &mut VecDeque<u8>) {
    if let Some(ws) = io::user_winsize() {
        let mut data = ws.ws_row.to_be_bytes().to_vec();
        data.extend(ws.ws_col.to_be_bytes());
        attach::frame(out, attach::RESIZE, &data);
    }
}
