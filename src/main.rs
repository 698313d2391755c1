//! `dockling`: parse the command line, run the command, exit with Docker's codes
//! (125 engine error, 126 cannot invoke, 127 not found, else the container's own code).

use clap::Parser;

fn main() {
    dockling::fault::init();
    let cli = match dockling::cli::Cli::try_parse() {
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
    let code = match dockling::commands::dispatch(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("dockling: {e}");
            e.exit_code()
        }
    };
    std::process::exit(code);
}
