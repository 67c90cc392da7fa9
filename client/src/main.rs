//! `sealchain`: the client and auditor tool. Everything lives in the
//! library; this only parses the command line, runs it on an actix system
//! (awc needs one) and turns an error into one line on stderr.

#![forbid(unsafe_code)]

use std::process::ExitCode;

use clap::Parser;
use sealchain_client::cli::Cli;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let system = actix_rt::System::new();
    match system.block_on(sealchain_client::commands::run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {}", sealchain_client::output::one_line(&error));
            ExitCode::FAILURE
        }
    }
}
