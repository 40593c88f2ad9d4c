//! What the user sees besides the summary: logs on stderr and progress bars on a
//! terminal (never in cron output).

use crate::cli::{Cli, LogFormat};
use indicatif::{ProgressBar, ProgressStyle};
use std::io::IsTerminal;
use tracing_subscriber::EnvFilter;

/// Output settings shared by every command.
#[derive(Debug, Clone)]
pub struct Ui {
    pub progress: bool,
    pub quiet: bool,
    pub json: bool,
}

impl Ui {
    pub fn from_cli(cli: &Cli) -> Ui {
        Ui {
            progress: !cli.no_progress && !cli.quiet && std::io::stderr().is_terminal(),
            quiet: cli.quiet,
            json: cli.json,
        }
    }

    /// A byte progress bar for one file, hidden when bars are off.
    pub fn file_bar(&self, name: &str, size: u64) -> ProgressBar {
        if !self.progress {
            return ProgressBar::hidden();
        }
        let bar = ProgressBar::new(size);
        bar.set_style(
            ProgressStyle::with_template(
                "{msg:30!} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} {eta}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
        bar.set_message(name.to_string());
        bar
    }
}

/// Sets up tracing on stderr: `-q` errors only, default info, `-v` debug, `-vv` trace;
/// `RUST_LOG` overrides. The levels above `warn` are erpdrop's own: a library's debug
/// output is not for users, and an HTTP client's would print every request's headers,
/// custom credential headers included (it hides only `Authorization` and `Cookie`),
/// and cost more than the request.
pub fn init_logging(cli: &Cli) {
    let level = if cli.quiet {
        "error"
    } else {
        match cli.verbose {
            0 => "warn,erpdrop=info",
            1 => "warn,erpdrop=debug",
            _ => "warn,erpdrop=trace",
        }
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false);
    let _ = match cli.log_format {
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
        LogFormat::Text => builder
            .with_ansi(std::io::stderr().is_terminal())
            .try_init(),
    };
}
