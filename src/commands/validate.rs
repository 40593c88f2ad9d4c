//! `erpdrop validate [PATH...]` and `erpdrop run --dry-run`: a dry pass. Parse, map and
//! validate; submit nothing, move nothing, write no ledger entry.

use crate::cli::DryRunOutputs;
use crate::config::Config;
use crate::exit::{Exit, Failure};
use crate::pass::dry::{collect, DryOptions};
use crate::pass::{self, Mode, Settings};
use crate::ui::Ui;
use std::path::PathBuf;

/// Checks `paths` (the inbox when empty), each with the mapping its name matches or the
/// one named `forced`.
pub fn validate(
    cfg: &Config,
    ui: &Ui,
    settings: Settings,
    paths: &[PathBuf],
    forced: Option<&str>,
    out: &DryRunOutputs,
) -> Result<Exit, Failure> {
    let files = collect(cfg, paths, forced)?;
    pass::run(
        cfg,
        ui,
        Mode::Dry(DryOptions {
            settings,
            files,
            report: out.report.clone(),
            emit: out.emit.clone(),
        }),
    )
}
