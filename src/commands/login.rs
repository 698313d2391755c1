//! `dockling login` / `logout`: credentials checked against the registry, then stored like
//! Docker stores them (base64 in `auths`, which is not encryption: Docker warns, so do we).

use std::io::{BufRead, IsTerminal, Write};

use crate::cli::{LoginArgs, LogoutArgs};
use crate::commands::Context;
use crate::error::{Error, Result};
use crate::image::reference::DEFAULT_REGISTRY;
use crate::registry::{auth_store, endpoint, Registry, RegistryError};

fn server(s: Option<&str>) -> String {
    match s {
        None
        | Some("docker.io")
        | Some("index.docker.io")
        | Some("https://index.docker.io/v1/") => DEFAULT_REGISTRY.into(),
        Some(s) => s
            .trim_start_matches("https://")
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_string(),
    }
}

/// `dockling login`.
pub fn login(ctx: &Context, args: &LoginArgs) -> Result<i32> {
    let registry = server(args.server.as_deref());
    // An unparsable credentials file is refused before anything is asked: rewriting it
    // would lose what it holds.
    auth_store::check_own_file()?;
    let stdin = std::io::stdin();
    let user = match &args.username {
        Some(u) => u.clone(),
        None if stdin.is_terminal() => {
            eprint!("Username: ");
            let mut line = String::new();
            stdin
                .lock()
                .read_line(&mut line)
                .map_err(Error::io("read", "stdin"))?;
            line.trim().to_string()
        }
        None => {
            return Err(RegistryError::LoginInput(
                "give a user name with -u (stdin is not a terminal)",
            )
            .into())
        }
    };
    let password = match (&args.password, args.password_stdin) {
        (Some(_), true) => {
            return Err(RegistryError::LoginInput(
                "--password and --password-stdin are mutually exclusive",
            )
            .into())
        }
        (Some(p), false) => {
            eprintln!("WARNING! Using --password via the CLI is insecure. Use --password-stdin.");
            p.clone()
        }
        (None, true) => {
            let mut line = String::new();
            stdin
                .lock()
                .read_line(&mut line)
                .map_err(Error::io("read", "stdin"))?;
            line.trim_end_matches(['\n', '\r']).to_string()
        }
        (None, false) => rpassword_prompt()?,
    };
    if user.is_empty() || password.is_empty() {
        return Err(RegistryError::LoginInput("a user name and a password are both needed").into());
    }
    let insecure = ctx.config.insecure_registries.clone().unwrap_or_default();
    let reg = Registry::connect(
        &registry,
        endpoint(&registry, &insecure),
        Some((user.clone(), password.clone())),
    )?;
    let url = format!("{}/v2/", reg.base);
    let resp = reg.send("", |h| h.get(&url))?;
    if !resp.status().is_success() {
        return Err(RegistryError::LoginRefused {
            registry,
            status: resp.status(),
        }
        .into());
    }
    if let auth_store::Stored::File(path) = auth_store::save(&registry, &user, &password)? {
        eprintln!(
            "WARNING! Your password will be stored unencrypted in {}.\nConfigure a credential helper to remove this warning.",
            path.display()
        );
    }
    let _ = writeln!(std::io::stdout(), "Login Succeeded");
    Ok(0)
}

/// Read a password from the terminal with echo off.
fn rpassword_prompt() -> Result<String> {
    use nix::sys::termios;
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        return Err(RegistryError::LoginInput(
            "give the password with --password-stdin (stdin is not a terminal)",
        )
        .into());
    }
    eprint!("Password: ");
    let saved = termios::tcgetattr(&stdin).map_err(RegistryError::Terminal)?;
    let mut quiet = saved.clone();
    quiet.local_flags.remove(termios::LocalFlags::ECHO);
    let _ = termios::tcsetattr(&stdin, termios::SetArg::TCSANOW, &quiet);
    let mut line = String::new();
    let r = stdin.lock().read_line(&mut line);
    let _ = termios::tcsetattr(&stdin, termios::SetArg::TCSANOW, &saved);
    eprintln!();
    r.map_err(Error::io("read", "stdin"))?;
    Ok(line.trim_end_matches(['\n', '\r']).to_string())
}

/// `dockling logout`.
pub fn logout(_ctx: &Context, args: &LogoutArgs) -> Result<i32> {
    let registry = server(args.server.as_deref());
    if auth_store::remove(&registry)? {
        println!("Removing login credentials for {registry}");
    } else {
        println!("Not logged in to {registry}");
    }
    Ok(0)
}
