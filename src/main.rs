//! `dockling`: parse the command line, run the command, exit with Docker's codes
//! (125 engine error, 126 cannot invoke, 127 not found, else the container's own code).

/// What a user sees when dockling panics: one line saying it is a bug, never a backtrace, and
/// Docker's engine-error code. Every panic found is a bug to fix (with a test); this hook only
/// keeps the message readable meanwhile. It runs in whichever thread panicked (a download
/// thread too), so the whole process ends at once: a half-done command is what a `kill -9`
/// would leave, and the store is built to survive that (`dockling system fsck`).
fn report_panics() {
    std::panic::set_hook(Box::new(|info| {
        let what = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "a panic".into());
        // println! into a pipe whose reader left (`dockling images | head -1`): a program
        // that writes with the default SIGPIPE action dies of it, quietly, as Docker's CLI
        // does; Rust ignores SIGPIPE (the engine's relays need EPIPE), so say nothing here
        // and exit as a shell shows that death, 128 + SIGPIPE.
        if what.starts_with("failed printing to stdout") && what.contains("Broken pipe") {
            std::process::exit(141);
        }
        let at = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        eprintln!(
            "dockling: internal error: {what}{at} (this is a bug: please report it with the command you ran)"
        );
        std::process::exit(125);
    }));
}

fn main() {
    report_panics();
    // For the test that proves the hook (tests/reliability_fsck.rs): no real panic is left
    // to trigger once each one found is fixed.
    if std::env::var_os("DOCKLING_TEST_PANIC").is_some() {
        panic!("DOCKLING_TEST_PANIC is set");
    }
    dockling::fault::init();
    // Installed as `dockling-runc` (a link), dockling is an OCI runtime with runc's command
    // line from the first argument on (`dockling runtime …` reaches the same code).
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if args.first().is_some_and(|a| {
        std::path::Path::new(a).file_name() == Some(std::ffi::OsStr::new("dockling-runc"))
    }) {
        std::process::exit(dockling::commands::runtime::main(args));
    }
    // `run` and `exec` re-execute from a read-only view of this binary before any other work
    // (CVE-2019-5736; see runtime::exe): returns only when that does not apply or failed.
    dockling::runtime::exe::reexec_early();
    let cli = match dockling::cli::Cli::parse_args(args) {
        Ok(cli) => cli,
        Err(e) => {
            use clap::error::ErrorKind;
            let code = match e.kind() {
                ErrorKind::DisplayHelp
                | ErrorKind::DisplayVersion
                | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => 0,
                _ => 125,
            };
            let _ = e.print();
            std::process::exit(code);
        }
    };
    // Before anything explains a step: the OnceLock behind Catalog::get takes this choice.
    dockling::trace::catalog::choose(cli.lang);
    if cli.command.only_prints() {
        // `dockling ps | head -1`: a reader that goes away ends the command quietly with
        // SIGPIPE (exit 141), as Docker's CLI and every Unix tool does, instead of a failed
        // print. Commands that keep containers or the store in hand (run, pull...) keep
        // SIGPIPE ignored and handle EPIPE themselves, so they always clean up.
        // SAFETY: no other thread exists yet, and SIG_DFL involves no handler code.
        let _ = unsafe {
            nix::sys::signal::signal(
                nix::sys::signal::Signal::SIGPIPE,
                nix::sys::signal::SigHandler::SigDfl,
            )
        };
    }
    let code = match dockling::commands::dispatch(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("dockling: {e}");
            e.exit_code()
        }
    };
    std::process::exit(code);
}
