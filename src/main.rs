//! The `journeyd` binary: parse the command line and run it.

use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = journeyd::cli::Cli::parse();
    match journeyd::cli::run(cli) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("journeyd: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
