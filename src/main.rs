//! hermes-warden's entry point: parse the command line, run, turn the outcome into an exit status.

use std::process::ExitCode;

use clap::Parser;
use hermes_warden::{app, cli::Cli};

fn main() -> ExitCode {
    match app::run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            eprintln!("hermes-warden: {:#}", failure.error);
            ExitCode::from(failure.code)
        }
    }
}
