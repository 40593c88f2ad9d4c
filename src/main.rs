//! The erpdrop binary: parse arguments, set up logging, run the command, exit with
//! SPEC's code.

use clap::Parser;
use erpdrop::cli::Cli;
use std::process::ExitCode;

/// mimalloc: memory freed by another thread than the one that took it (documents read
/// ahead, payloads handed to HTTP workers) is cheap there (see Cargo.toml).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    erpdrop::ui::init_logging(&cli);
    match erpdrop::commands::dispatch(&cli) {
        Ok(exit) => exit.into(),
        Err(failure) => {
            let message = erpdrop::redact::redact(&failure.message);
            eprintln!("error: {}", message.replace('\n', "\nerror: "));
            failure.exit.into()
        }
    }
}
