//! The `calamus` binary.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    calamus::cli::run(calamus::cli::Cli::parse())
}
