//! The binary: parse arguments, set up logging, run the command, exit with SPEC's code.

use clap::Parser;
use erpdrop::cli::Cli;

use std::io::Write;
use std::process::ExitCode;

/// mimalloc: memory freed by another thread than the one that took it (documents read
/// ahead, payloads handed to HTTP workers) is cheap there (see Cargo.toml).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    erpdrop::ui::init_logging(&cli);
    let mut exit = match erpdrop::commands::dispatch(&cli) {
        Ok(exit) => exit,
        Err(failure) => {
            error(&failure.message);
            failure.exit()
        }
    };
    if let Err(e) = erpdrop::output::finish() {
        error(&format!("cannot write the output: {e}"));
        exit = exit.with_output_lost();
    }
    exit.into()
}

/// An error line on stderr (every line of a multi-line message marked); a closed
/// stderr is no reason to panic.
fn error(message: &str) {
    let message = erpdrop::redact::redact(message);
    let _ = writeln!(
        std::io::stderr(),
        "error: {}",
        message.replace('\n', "\nerror: ")
    );
}
