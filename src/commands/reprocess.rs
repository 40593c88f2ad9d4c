//! `erpdrop reprocess [FILE...] [--all]`: after a fix, put failed files through again.
//! Their old reports go to `failed/.history/<time>/`; documents the ERP already accepted
//! are not submitted again (the ledger skips them); only the failed ones are.

use crate::config::Config;
use crate::exit::{Exit, Failure};
use crate::lifecycle::back_to_inbox;
use crate::lifecycle::scan::list_failed_files;
use crate::pass::live::{run_locked, LiveOptions};
use crate::pass::{lock_drop, refuse_lost_ledger, Settings};
use crate::stop::Stop;
use crate::ui::Ui;
use std::collections::HashSet;
use std::path::PathBuf;

/// Moves `files` (every file when empty: `--all`) from failed/ back to the inbox and
/// runs a live pass over them alone.
pub fn reprocess(
    cfg: &Config,
    ui: &Ui,
    settings: Settings,
    files: &[PathBuf],
    new_ledger: bool,
) -> Result<Exit, Failure> {
    let all = files.is_empty();
    let failed = &cfg.folders.failed;
    // Check everything before moving anything.
    let chosen: Vec<PathBuf> = if all {
        list_failed_files(failed).unwrap_or_default()
    } else {
        let mut v = Vec::new();
        for f in files {
            let name = f.file_name().unwrap_or_default();
            let p = failed.join(name);
            let ok = p.symlink_metadata().map(|m| m.is_file()).unwrap_or(false);
            if !ok {
                return Err(Failure::usage(format!(
                    "{} is not in {}",
                    name.to_string_lossy(),
                    failed.display()
                )));
            }
            v.push(p);
        }
        v
    };
    // Markers are moved back with their files, not as files of their own.
    let chosen: Vec<PathBuf> = chosen
        .into_iter()
        .filter(|p| {
            let n = p
                .file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned();
            cfg.mapping_for(&n).is_some() || !all
        })
        .collect();
    let Some(lock) = lock_drop(cfg)? else {
        return Ok(Exit::Locked);
    };
    // before anything moves: the pass would refuse a lost ledger too late
    refuse_lost_ledger(cfg, new_ledger)?;
    if chosen.is_empty() {
        if !ui.quiet {
            crate::outln!("nothing to reprocess in {}", failed.display());
        }
        return Ok(Exit::Ok);
    }
    let stamp = chrono::Local::now().format("%Y-%m-%dT%H%M%S").to_string();
    let history = failed.join(".history").join(&stamp);
    let mut names = HashSet::new();
    for p in &chosen {
        let name = p
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        let to = back_to_inbox(&cfg.folders, p, cfg.ready_marker.as_deref(), &history)
            .map_err(Failure::usage)?;
        tracing::info!(file = %name, "moved back to the inbox for reprocessing");
        names.insert(
            to.file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned(),
        );
    }
    run_locked(
        cfg,
        ui,
        &LiveOptions {
            settings,
            only: Some(names),
            ignore_settle: true,
            ignore_marker: true,
            new_ledger,
            stop: Stop::on_signals(),
        },
        lock,
    )
}
