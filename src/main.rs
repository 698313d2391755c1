//! `dockling`: parse the command line, run the command, exit with Docker's codes.

use clap::Parser;

fn main() {
    let _cli = dockling::cli::Cli::parse();
}
