//! The drop folders around a live pass: checked (no folder under the root is a
//! symbolic link, no lost ledger), created, locked, and cleaned of what a killed run
//! left (a half-made move, files in processing/, temporary files).

use crate::config::{Config, TargetKind};
use crate::exit::Failure;
use crate::ledger::Ledger;
use crate::lifecycle::{
    ensure_folders, linked_folder, recover_move, recover_processing, try_lock, Recovered, RunLock,
    MOVING,
};
use std::path::Path;

/// Refuses (exit 2) a drop whose folders under the root include a symbolic link.
pub fn refuse_linked_folders(cfg: &Config) -> Result<(), Failure> {
    let outbox = (cfg.target.kind == TargetKind::Outbox).then_some(cfg.target.dir.as_path());
    match linked_folder(&cfg.folders, outbox) {
        Some(p) => Err(Failure::usage(format!(
            "{} is a symbolic link: erpdrop never reads or writes through a link under the drop root {} (files and reports would land elsewhere); make it a real folder",
            p.display(),
            cfg.folders.root.display()
        ))),
        None => Ok(()),
    }
}

/// The ledger's path.
pub fn ledger_path(cfg: &Config) -> std::path::PathBuf {
    cfg.folders.state.join("ledger.sqlite")
}

/// Refuses (exit 2) to start a new ledger where one was lost: the ledger is missing or
/// empty (a zero-length file, no WAL) while done/ or failed/ hold files that were
/// handled, so a new one would submit again a file dropped again. `allow_new`
/// (`--new-ledger`) starts one deliberately.
pub fn refuse_lost_ledger(cfg: &Config, allow_new: bool) -> Result<(), Failure> {
    let path = ledger_path(cfg);
    let len = |p: &Path| std::fs::metadata(p).map(|m| m.len()).ok();
    let wal = path.with_file_name("ledger.sqlite-wal");
    let how = match len(&path) {
        None => "missing",
        Some(0) if len(&wal).unwrap_or(0) == 0 => "empty (zero length)",
        Some(_) => return Ok(()),
    };
    let Some(handled) = handled_before(cfg) else {
        return Ok(());
    };
    if allow_new {
        tracing::warn!(ledger = %path.display(), "the ledger is {how} and {} was handled before: starting a new ledger as asked (--new-ledger); documents dropped again will be submitted again", handled.display());
        return Ok(());
    }
    Err(Failure::usage(format!(
        "the ledger {} is {how}, but {} holds files handled before (e.g. {}): with a new ledger, a file dropped again would be submitted again. If the ledger was lost, put it back from a backup; to start a new ledger deliberately, run once with --new-ledger",
        path.display(),
        if handled.starts_with(&cfg.folders.failed) { "failed/" } else { "done/" },
        handled.display()
    )))
}

/// A file in done/ (in a day folder) or failed/, if there is one.
fn handled_before(cfg: &Config) -> Option<std::path::PathBuf> {
    let f = &cfg.folders;
    let days = std::fs::read_dir(&f.done).into_iter().flatten().flatten();
    for d in days.filter(|d| d.file_type().is_ok_and(|t| t.is_dir())) {
        if let Some(p) = crate::lifecycle::scan::list_files(&d.path())
            .ok()
            .and_then(|v| v.into_iter().next())
        {
            return Some(p);
        }
    }
    crate::lifecycle::scan::list_files(&f.failed)
        .ok()
        .and_then(|v| v.into_iter().next())
}

/// Checks the drop folders (no symbolic links), creates those missing and takes the run
/// lock; `Ok(None)` when another run holds it (logged).
pub fn lock_drop(cfg: &Config) -> Result<Option<RunLock>, Failure> {
    let folders = &cfg.folders;
    refuse_linked_folders(cfg)?;
    ensure_folders(folders).map_err(|e| {
        Failure::usage(format!(
            "cannot create the drop folders under {}: {e}",
            folders.root.display()
        ))
    })?;
    let lock = try_lock(&folders.state).map_err(|e| {
        Failure::usage(format!(
            "cannot open the lock in {}: {e}",
            folders.state.display()
        ))
    })?;
    if lock.is_none() {
        tracing::warn!(
            "another erpdrop run holds the lock in {}; this one does nothing",
            folders.state.display()
        );
    }
    Ok(lock)
}

/// Puts back in order what a dead run left: a move out of processing/ half made
/// (finished if the file had reached its place, else undone, its reports and ledger line
/// removed), files in processing/ (back to the inbox), temporary files.
pub fn recover(cfg: &Config, ledger: &Ledger) -> Result<(), Failure> {
    let folders = &cfg.folders;
    match recover_move(folders) {
        Ok(None) => {}
        Ok(Some(Recovered::Finished { file, to })) => {
            tracing::warn!(file = %file.display(), to = %to.display(), "a previous run stopped while moving this file out of processing/; the move is finished, the file is not handled again");
        }
        Ok(Some(Recovered::Undone { file, to })) => {
            ledger.forget_file(&to.display().to_string())?;
            tracing::warn!(file = %file.display(), to = %to.display(), "a previous run stopped before moving this file out of processing/; the reports it wrote are removed and the file is handled again");
        }
        Err(e) => {
            return Err(Failure::usage(format!(
                "cannot finish the move that a previous run left in {}: {e}",
                folders.state.join(MOVING).display()
            )))
        }
    }
    match recover_processing(folders) {
        Ok(moved) => {
            for name in moved {
                tracing::warn!(file = %name, "a previous run stopped while handling this file; it is back in the inbox");
            }
        }
        Err(e) => {
            return Err(Failure::usage(format!(
                "cannot return files from {} to the inbox: {e}",
                folders.processing.display()
            )))
        }
    }
    // A run killed while writing left temporary files behind; no writer is active now.
    for dir in [&cfg.target.dir, &folders.failed, &folders.state] {
        remove_stale_temp_files(dir);
    }
    if let Ok(days) = std::fs::read_dir(&folders.done) {
        // real folders only: an old day folder made a link is not emptied through it
        for d in days.filter_map(Result::ok) {
            if d.file_type().is_ok_and(|t| t.is_dir()) {
                remove_stale_temp_files(&d.path());
            }
        }
    }
    Ok(())
}

/// Removes `.erpdrop-*.tmp` files (half-written payloads or reports of a killed run),
/// and payloads a killed run left waiting for their durability barrier.
fn remove_stale_temp_files(dir: &Path) {
    crate::fsutil::remove_staging(dir);
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.filter_map(Result::ok) {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with(".erpdrop-") && name.ends_with(".tmp") {
            match std::fs::remove_file(e.path()) {
                Ok(()) => {
                    tracing::debug!(file = %e.path().display(), "removed a temporary file a killed run left")
                }
                Err(err) => {
                    tracing::warn!(file = %e.path().display(), "cannot remove a stale temporary file: {err}")
                }
            }
        }
    }
}

/// Whether `file` is the ready marker of a file that a mapping takes.
pub(super) fn is_marker_of_something(file: &Path, cfg: &Config) -> bool {
    let Some(pattern) = &cfg.ready_marker else {
        return false;
    };
    let name = file.file_name().unwrap_or_default().to_string_lossy();
    let Some((prefix, suffix)) = pattern.split_once("{name}") else {
        return false;
    };
    name.strip_prefix(prefix)
        .and_then(|n| n.strip_suffix(suffix))
        .is_some_and(|base| cfg.mapping_for(base).is_some())
}
