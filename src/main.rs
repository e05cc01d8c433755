//! The `tws` binary: parse the command line, run the server, map failure to an exit code.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = tws::cli::Cli::parse();
    match tws::run(&cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tws: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
