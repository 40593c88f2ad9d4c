//! `erpdrop run`: one live pass over the inbox; `run --dry-run`: a dry one.

use crate::config::Config;
use crate::exit::{Exit, Failure};
use crate::pass::live::LiveOptions;
use crate::pass::{self, Mode, Settings};
use crate::stop::Stop;
use crate::ui::Ui;

/// `erpdrop run`.
pub fn run(cfg: &Config, ui: &Ui, settings: Settings, new_ledger: bool) -> Result<Exit, Failure> {
    pass::run(
        cfg,
        ui,
        Mode::Live(LiveOptions {
            settings,
            only: None,
            ignore_settle: false,
            ignore_marker: false,
            new_ledger,
            stop: Stop::on_signals(),
        }),
    )
}
