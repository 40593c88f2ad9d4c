//! One module per subcommand; [`dispatch`] wires them to the parsed command line.

pub mod check;
pub mod history;
pub mod init;
pub mod reprocess;
pub mod resolve;
pub mod run;
pub mod status;
pub mod validate;
pub mod watch;

use crate::cli::{Cli, Command};
use crate::config::{default_config_path, Config};
use crate::exit::{Exit, Failure};
use crate::ui::Ui;

/// Runs the command and returns the exit code to end with.
pub fn dispatch(cli: &Cli) -> Result<Exit, Failure> {
    let ui = Ui::from_cli(cli);
    match &cli.command {
        Command::Validate {
            paths,
            mapping,
            out,
        } => {
            let cfg = load_config(cli)?;
            validate::validate(
                &cfg,
                &ui,
                settings(cli, "validate"),
                paths,
                mapping.as_deref(),
                out,
            )
        }
        Command::Run {
            dry_run: true,
            report,
            emit,
            ..
        } => {
            let cfg = load_config(cli)?;
            let out = crate::cli::DryRunOutputs {
                report: report.clone(),
                emit: emit.clone(),
            };
            validate::validate(&cfg, &ui, settings(cli, "run"), &[], None, &out)
        }
        Command::Run {
            dry_run: false,
            new_ledger,
            ..
        } => {
            let cfg = load_config(cli)?;
            run::run(&cfg, &ui, settings(cli, "run"), *new_ledger)
        }
        Command::Watch {
            interval,
            new_ledger,
        } => watch::watch(
            &|| load_config(cli),
            &ui,
            settings(cli, "watch"),
            *interval,
            *new_ledger,
        ),
        Command::Reprocess {
            files,
            all: _,
            new_ledger,
        } => {
            let cfg = load_config(cli)?;
            // clap lets only one of FILES and --all through: no files means --all
            reprocess::reprocess(&cfg, &ui, settings(cli, "reprocess"), files, *new_ledger)
        }
        Command::Status { failed } => {
            let cfg = load_config(cli)?;
            status::status(&cfg, &ui, *failed)
        }
        Command::Check {
            sample,
            mapping,
            notify_test,
        } => {
            if ui.json && !sample.is_empty() {
                return Err(Failure::usage(
                    "check --sample prints text; for the sample as JSON run `erpdrop validate --json FILE`",
                ));
            }
            let exit = check::check(cli, &ui, *notify_test)?;
            if sample.is_empty() {
                return Ok(exit);
            }
            // the sample as a dry run would see it: the same messages, nothing written
            let cfg = load_config(cli)?;
            validate::validate(
                &cfg,
                &ui,
                settings(cli, "check"),
                sample,
                mapping.as_deref(),
                &crate::cli::DryRunOutputs::default(),
            )
        }
        Command::History { key, mapping, file } => {
            let cfg = load_config(cli)?;
            let query = match (key, file) {
                (Some(key), _) => crate::ledger::HistoryQuery::Document {
                    key,
                    mapping: mapping.as_deref(),
                },
                (None, Some(file)) => crate::ledger::HistoryQuery::File(file),
                // clap asks for one of the two
                (None, None) => return Err(Failure::usage("name a document KEY or --file NAME")),
            };
            history::history(&cfg, &ui, &query)
        }
        Command::Resolve {
            key,
            mapping,
            accepted: _,
            id,
            not_sent,
            by,
        } => {
            let cfg = load_config(cli)?;
            let decision = if *not_sent {
                crate::ledger::Resolution::NotSent
            } else {
                crate::ledger::Resolution::Accepted { id: id.clone() }
            };
            resolve::resolve(&cfg, &ui, key, mapping.as_deref(), decision, by.as_deref())
        }
        Command::Init { dir, force } => init::init(
            dir.as_deref(),
            cli.config.as_deref(),
            *force,
            ui.quiet || ui.json,
        ),
    }
}

/// The settings of a pass that come from the command line.
fn settings(cli: &Cli, command: &'static str) -> crate::pass::Settings {
    crate::pass::Settings {
        command,
        read_ahead: cli.read_ahead,
    }
}

/// The config path from `-c`, `ERPDROP_CONFIG`, or `./erpdrop.toml`.
pub fn config_path(cli: &Cli) -> std::path::PathBuf {
    cli.config.clone().unwrap_or_else(default_config_path)
}

/// Loads the config; every problem found becomes one line of a usage failure (exit 2).
pub fn load_config(cli: &Cli) -> Result<Config, Failure> {
    let mut cfg = Config::load(&config_path(cli))?;
    // memory budgets of the readers: their defaults, unless a test shrinks them
    if cli.sort_memory.is_some() || cli.key_window.is_some() {
        for m in &mut cfg.mappings {
            let budget = &mut std::sync::Arc::make_mut(m).source.budget;
            budget.sort_bytes = cli.sort_memory.unwrap_or(budget.sort_bytes);
            budget.key_window = cli.key_window.unwrap_or(budget.key_window);
        }
    }
    Ok(cfg)
}
