//! `erpdrop run`: one pass over the inbox. Also the engine of `watch` and `reprocess`.
//!
//! Order of a pass: take the lock (or exit 4) -> return what a dead run left in
//! processing/ -> for each ready file in name order: claim it, check it (documents
//! spooled), decide, submit through the ledger, write its report, move it.

use super::new_run_id;
use crate::config::{Config, TargetKind};
use crate::exit::{Exit, Failure};
use crate::ledger::{DocState, FileRecord, Ledger, LedgerError, RunRecord};
use crate::lifecycle::scan::{list_files_with_ids, marker_path, readiness, NotReady};
use crate::lifecycle::{
    claim, ensure_folders, linked_folder, recover_move, recover_processing, return_to_inbox,
    settle_with, try_lock, Claimed, Recovered, RunLock, DONE_SIDECARS, FAILED_SIDECARS, MOVING,
};
use crate::mapping::OnInvalid;
use crate::mapping::{MappedDocument, Mapping};
use crate::pipeline::{check_file, CheckOptions, FileCheck, Verdict};
use crate::problem::{quote, Code, Problem, Stage};
use crate::report::{print_file_summary, timestamp, FileReport, Outcome, Summary, Totals};
use crate::spool::Spool;
use crate::stop::Stop;
use crate::target::http::HttpTarget;
use crate::target::outbox::Outbox;
use crate::target::submit::{submit_all, Batch};
use crate::target::{DocContext, Target};
use crate::ui::Ui;
use std::collections::HashSet;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// What a pass should do beyond the defaults.
#[derive(Debug, Clone, Default)]
pub struct PassOptions {
    /// Only these inbox names (reprocess); all ready files when `None`.
    pub only: Option<HashSet<String>>,
    /// Ignore settle time (files just moved back by reprocess keep their old mtime, but a
    /// user who names files wants them now).
    pub ignore_settle: bool,
    /// Ignore the ready marker (reprocess: the file was ready once already).
    pub ignore_marker: bool,
    /// The command recorded in the ledger.
    pub command: &'static str,
    /// A missing or empty ledger next to done/ or failed/ with history may be started
    /// anew (`--new-ledger`); otherwise that is refused (see [`refuse_lost_ledger`]).
    pub new_ledger: bool,
}

/// How a file ended in this pass.
struct FileEnd {
    report: FileReport,
    /// The target went away: stop the pass.
    target_down: bool,
    /// A stop signal arrived: stop the pass.
    interrupted: bool,
}

/// Builds the configured target.
pub fn make_target(cfg: &Config, stop: &Arc<Stop>) -> Box<dyn Target> {
    match (&cfg.target.kind, &cfg.target.http) {
        (TargetKind::Http, Some(h)) => {
            Box::new(HttpTarget::new(h, cfg.target.format).with_stop(stop.clone()))
        }
        _ => Box::new(Outbox::new(&cfg.target.dir, cfg.target.format)),
    }
}

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

/// One pass over the inbox.
pub fn run_pass(
    cfg: &Config,
    ui: &Ui,
    opts: &PassOptions,
    stop: &Arc<Stop>,
) -> Result<Exit, Failure> {
    match lock_drop(cfg)? {
        Some(lock) => run_pass_locked(cfg, ui, opts, stop, lock),
        None => Ok(Exit::Locked),
    }
}

/// One pass with the lock already held; the lock is released when it ends.
pub fn run_pass_locked(
    cfg: &Config,
    ui: &Ui,
    opts: &PassOptions,
    stop: &Arc<Stop>,
    _lock: RunLock,
) -> Result<Exit, Failure> {
    refuse_lost_ledger(cfg, opts.new_ledger)?;
    if cfg.target.kind == TargetKind::Outbox {
        std::fs::create_dir_all(&cfg.target.dir).map_err(|e| {
            Failure::usage(format!(
                "cannot create the outbox {}: {e}",
                cfg.target.dir.display()
            ))
        })?;
    }
    let ledger = Ledger::open(&ledger_path(cfg))?;
    let run_id = new_run_id();
    ledger.begin_run(&run_id, opts.command)?;
    // Under the lock no other run is alive: one without an end died.
    match ledger.mark_interrupted_runs(&run_id) {
        Ok(ids) => {
            for id in ids {
                tracing::warn!(run = %id, "an earlier run ended without recording its end (killed, or stopped by an error): marked interrupted");
            }
        }
        Err(e) => return Err(e.into()),
    }
    let mut totals = Totals::default();
    let mut reports = Vec::new();
    let result = pass(
        cfg,
        ui,
        opts,
        stop,
        &ledger,
        &run_id,
        &mut totals,
        &mut reports,
    );
    let record = |exit: Exit| RunRecord {
        id: run_id.clone(),
        command: opts.command.to_string(),
        files: totals.files as i64,
        accepted: totals.accepted as i64,
        rejected: totals.rejected as i64,
        invalid: totals.invalid as i64,
        already_imported: totals.already_imported as i64,
        exit_code: Some(exit.code() as i64),
        ..RunRecord::default()
    };
    let exit = match result {
        Ok(exit) => exit,
        Err(f) => {
            // the run's end is recorded where the ledger still takes it; otherwise the
            // next run marks it interrupted
            if let Err(e) = ledger.finish_run(&record(f.exit())) {
                tracing::debug!("the run's end could not be recorded: {e}");
            }
            return Err(f);
        }
    };
    ledger.finish_run(&record(exit))?;
    tracing::info!(
        run = %run_id, files = totals.files, done = totals.files_ok, failed = totals.files_failed,
        waiting = totals.files_waiting, accepted = totals.accepted, rejected = totals.rejected,
        invalid = totals.invalid, already_imported = totals.already_imported, exit = exit.code(),
        "run finished"
    );
    Summary {
        command: opts.command.to_string(),
        run_id,
        dry_run: false,
        files: reports,
        totals,
        exit_code: exit.code(),
    }
    .print(ui);
    Ok(exit)
}

/// The work of a pass, with the ledger open and the run begun; `totals` and `reports`
/// hold what was done, also when it ends in a failure.
#[allow(clippy::too_many_arguments)]
fn pass(
    cfg: &Config,
    ui: &Ui,
    opts: &PassOptions,
    stop: &Arc<Stop>,
    ledger: &Ledger,
    run_id: &str,
    totals: &mut Totals,
    reports: &mut Vec<FileReport>,
) -> Result<Exit, Failure> {
    let folders = &cfg.folders;
    // A move out of processing/ that a dead run left half done comes first: finished if
    // the file had reached its place, else undone (reports and ledger line removed).
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

    let target = make_target(cfg, stop);
    let mut target_down = false;
    let files = list_files_with_ids(&folders.inbox).map_err(|e| {
        Failure::usage(format!(
            "cannot read the inbox {}: {e}",
            folders.inbox.display()
        ))
    })?;
    let settle = if opts.ignore_settle {
        Duration::ZERO
    } else {
        Duration::from_secs(cfg.settle_seconds)
    };
    let now = SystemTime::now();
    for (file, seen) in files {
        if stop.requested() {
            tracing::info!("stop requested: no more files in this pass");
            break;
        }
        let name = file
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        if let Some(only) = &opts.only {
            if !only.contains(&name) {
                continue;
            }
        }
        let Some(mapping) = cfg.mapping_for(&name).cloned() else {
            // Markers of other files are not worth a warning.
            if !is_marker_of_something(&file, cfg) {
                tracing::warn!(file = %name, "no mapping matches this file; it stays in the inbox");
            }
            continue;
        };
        let marker_rule = if opts.ignore_marker {
            None
        } else {
            cfg.ready_marker.as_deref()
        };
        match readiness(&file, settle, marker_rule, now) {
            Ok(()) => {}
            Err(NotReady::Settling(_)) => {
                tracing::info!(file = %name, "not settled yet (modified less than {}s ago); next run", cfg.settle_seconds);
                continue;
            }
            Err(NotReady::NoMarker(m)) => {
                tracing::info!(file = %name, "waiting for its ready marker {}", m.file_name().unwrap_or_default().to_string_lossy());
                continue;
            }
        }
        let marker = cfg.ready_marker.as_deref().map(|p| marker_path(&file, p));
        let claimed = match claim(&file, seen, folders, marker.as_deref()) {
            Ok(Some(c)) => c,
            Ok(None) => continue,
            Err(e) => {
                tracing::error!(file = %name, "cannot move the file into processing/: {e}");
                continue;
            }
        };
        let end = match handle_file(
            cfg,
            ui,
            ledger,
            target.as_ref(),
            &claimed,
            &mapping,
            run_id,
            stop,
        ) {
            Ok(end) => end,
            Err(e) => {
                // The ledger cannot be written: submitting more would break the
                // exactly-once promise. The file waits in the inbox, as if the target
                // were down.
                let back = return_to_inbox(&claimed, folders);
                return Err(Failure::unavailable(format!(
                    "{e}; stopped submitting, {} is {}",
                    claimed.name,
                    if back.is_ok() {
                        "back in the inbox"
                    } else {
                        "in processing/ until the next run"
                    }
                )));
            }
        };
        if !ui.json && !ui.quiet {
            crate::output::write_with(|w| print_file_summary(w, &end.report));
        }
        totals.add(&end.report);
        reports.push(end.report);
        if end.target_down {
            target_down = true;
            break;
        }
        if end.interrupted {
            break;
        }
    }

    Ok(if target_down {
        Exit::TargetDown
    } else if totals.files_failed > 0 {
        Exit::DataErrors
    } else {
        Exit::Ok
    })
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
fn is_marker_of_something(file: &Path, cfg: &Config) -> bool {
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

/// The ledger's verdict on a valid document before it is spooled.
pub fn classify(ledger: Option<&Ledger>, mapping: &Mapping, doc: &MappedDocument) -> Verdict {
    let Some(ledger) = ledger else {
        return Verdict::Take;
    };
    let rec = match ledger.document(&mapping.name, &doc.key) {
        Ok(r) => r,
        Err(e) => {
            tracing::error!("{e}");
            return Verdict::Take;
        }
    };
    match rec {
        Some(r) if r.state == DocState::Accepted && r.content_hash == doc.content_hash => {
            Verdict::AlreadyImported
        }
        Some(r) if r.state.is_unsettled() && r.content_hash != doc.content_hash => Verdict::Reject(
            crate::target::submit::in_doubt_problem(&mapping.name, &doc.key, doc.line, Some(&r)),
        ),
        Some(r) if r.state == DocState::Accepted => {
            let when = r.updated.get(..10).unwrap_or(&r.updated).to_string();
            let from = r
                .file
                .as_deref()
                .map(|f| format!(" from {f}"))
                .unwrap_or_default();
            let msg = format!(
                "Document {} was already imported on {when}{from} with different content; it is not sent again (correct it in the ERP, or give it a new key)",
                quote(&doc.key)
            );
            Verdict::Reject(
                Problem::new(Stage::Validate, Code::Conflict, &msg)
                    .with_document(doc.key.clone())
                    .with_line(doc.line)
                    .with_value_opt(r.target_id.clone()),
            )
        }
        _ => Verdict::Take,
    }
}

#[allow(clippy::too_many_arguments)]
fn handle_file(
    cfg: &Config,
    ui: &Ui,
    ledger: &Ledger,
    target: &dyn Target,
    claimed: &Claimed,
    mapping: &Mapping,
    run_id: &str,
    stop: &Stop,
) -> Result<FileEnd, LedgerError> {
    let folders = &cfg.folders;
    let size = std::fs::symlink_metadata(&claimed.path)
        .map(|m| m.len())
        .unwrap_or(0);
    let bar = ui.file_bar(&claimed.name, size);
    let progress = |b: u64| bar.set_position(b);
    let mut spool = match Spool::new(
        Some(&folders.state),
        cfg.target.format,
        &mapping.document_type,
    ) {
        Ok(s) => s,
        Err(e) => {
            let reason = format!(
                "cannot create a spool file in {}: {e}",
                folders.state.display()
            );
            let report = unavailable_report(claimed, mapping, run_id);
            return Ok(cannot_finish(claimed, folders, report, &reason));
        }
    };
    let mut classify_doc = |d: &MappedDocument| classify(Some(ledger), mapping, d);
    // every document is looked up: in one read transaction
    let mut check = ledger.snapshot(|| {
        check_file(
            &claimed.path,
            mapping,
            Some(&mut spool),
            CheckOptions {
                run_id,
                progress: &progress,
                classify: &mut classify_doc,
                file_id: Some(claimed.id),
            },
        )
    });
    bar.finish_and_clear();
    // The check ran on the file in processing/; reports name it as it arrived.
    check.name = claimed.name.clone();
    if let Some(reason) = check.environment.take() {
        let report = unavailable_report(claimed, mapping, run_id);
        return Ok(cannot_finish(claimed, folders, report, &reason));
    }

    let mut accepted = 0u64;
    let mut rejected = 0u64;
    let mut accepted_docs = Default::default();
    let mut target_down = false;
    let mut interrupted = false;
    let submit =
        !check.fatal && (check.invalid == 0 || mapping.on_invalid == OnInvalid::SkipDocument);
    if submit {
        let docs = match spool.replay() {
            Ok(d) => d,
            Err(e) => {
                let reason = format!("cannot read the spool file: {e}");
                let report = unavailable_report(claimed, mapping, run_id);
                return Ok(cannot_finish(claimed, folders, report, &reason));
            }
        };
        let batch = Batch {
            ctx: DocContext {
                mapping: &mapping.name,
                document_type: &mapping.document_type,
            },
            file: &claimed.name,
            run_id,
        };
        let started = std::time::Instant::now();
        let sent = submit_all(docs, target, ledger, &batch, stop.now_flag())?;
        let secs = started.elapsed().as_secs_f64();
        tracing::info!(
            file = %claimed.name, accepted = sent.accepted, rejected = sent.rejected,
            already_imported = sent.already_imported, seconds = format_args!("{secs:.3}"),
            per_second = format_args!("{:.0}", (sent.accepted + sent.rejected) as f64 / secs.max(1e-9)),
            "submitted"
        );
        accepted = sent.accepted;
        rejected = sent.rejected;
        check.already_imported += sent.already_imported;
        check.invalid += sent.in_doubt;
        check.problems.extend(sent.problems);
        accepted_docs = sent.documents;
        target_down = sent.target_down;
        interrupted = sent.interrupted;
    }

    // Record invalid documents, so that `status` can say which failed and why. A
    // document's problems stand together, so its first one is the one recorded.
    let mut last: Option<String> = None;
    for p in check.problems.iter() {
        let Some(key) = p.document.clone() else {
            continue;
        };
        if p.stage == Stage::Submit || last.as_deref() == Some(key.as_str()) {
            continue;
        }
        match p.code {
            // the ledger keeps what it knew of the document
            Code::Conflict => continue,
            Code::InDoubt => {
                ledger.mark_in_doubt(&mapping.name, &key, &p.message(), &claimed.name, run_id)?
            }
            _ => ledger.mark_invalid(&mapping.name, &key, &p.message(), &claimed.name, run_id)?,
        }
        last = Some(key);
    }

    let finished = chrono::Utc::now();
    let mut report = FileReport::from_check(&mut check, run_id, Outcome::Done);
    report.counts.accepted = accepted;
    report.counts.rejected = rejected;
    report.documents = accepted_docs;
    report.finished = timestamp(finished);
    if let Some(e) = report.errors.failure().or(report.documents.failure()) {
        // what was delivered is in the ledger; the report would not be whole
        let reason = format!("cannot keep the file's report in a temporary file: {e}");
        record_file(ledger, &check, &report, None)?;
        return Ok(cannot_finish(claimed, folders, report, &reason));
    }

    if target_down || interrupted {
        report.outcome = Outcome::Unavailable;
        let back = return_to_inbox(claimed, folders);
        match &back {
            Ok(p) => {
                tracing::warn!(file = %claimed.name, "left in the inbox for the next run ({})", p.display())
            }
            Err(e) => {
                tracing::error!(file = %claimed.name, "cannot return the file to the inbox: {e}; it stays in processing/ and the next run returns it")
            }
        }
        record_file(ledger, &check, &report, None)?;
        return Ok(FileEnd {
            report,
            target_down,
            interrupted,
        });
    }

    let failed = check.fatal || check.invalid > 0 || rejected > 0;
    let (dir, sidecars) = if failed {
        report.outcome = Outcome::Failed;
        (folders.failed.clone(), FAILED_SIDECARS)
    } else {
        let day = chrono::Local::now().format("%Y-%m-%d").to_string();
        (folders.done.join(day), DONE_SIDECARS)
    };
    let r = &mut report;
    // The file's line goes into the ledger with its reports, before the file appears:
    // a run killed after the move has it; one killed before has the move undone, line
    // and reports, by the next run (see recover_move).
    let mut recorded: Option<String> = None;
    let mut ledger_error: Option<LedgerError> = None;
    let moved = settle_with(claimed, folders, &dir, sidecars, &mut |to: &Path| {
        // called again (the name was taken meanwhile): the line of the first name goes
        if let Some(prev) = recorded.take() {
            if let Err(e) = ledger.forget_file(&prev) {
                let m = e.to_string();
                ledger_error = Some(e);
                return Err(std::io::Error::other(m));
            }
        }
        r.moved_to = Some(to.display().to_string());
        let name = to.file_name().unwrap_or_default().to_string_lossy();
        r.write_sidecars(&dir, &name)?;
        if let Err(e) = record_file(ledger, &check, r, Some(to)) {
            let m = e.to_string();
            ledger_error = Some(e);
            return Err(std::io::Error::other(m));
        }
        recorded = Some(to.display().to_string());
        Ok(())
    });
    let stored = match moved {
        Ok(p) => Some(p),
        Err(e) => {
            // the reports are gone again, and so goes the line that named the move
            if let Some(prev) = recorded.take() {
                ledger.forget_file(&prev)?;
            }
            if let Some(e) = ledger_error {
                return Err(e);
            }
            // No report was left behind (each is written whole or not at all); what
            // was delivered is in the ledger, so the next run skips it.
            report.moved_to = None;
            let reason = format!(
                "cannot write the report or move the file into {}: {e}",
                dir.display()
            );
            record_file(ledger, &check, &report, None)?;
            return Ok(cannot_finish(claimed, folders, report, &reason));
        }
    };
    tracing::info!(
        file = %claimed.name, outcome = report.outcome.as_str(), documents = check.documents,
        accepted, rejected, invalid = check.invalid, already_imported = check.already_imported,
        to = %stored.as_deref().map(|p| p.display().to_string()).unwrap_or_default(),
        "file handled"
    );
    Ok(FileEnd {
        report,
        target_down: false,
        interrupted: false,
    })
}

fn record_file(
    ledger: &Ledger,
    check: &FileCheck,
    report: &FileReport,
    stored: Option<&Path>,
) -> Result<(), LedgerError> {
    ledger.record_file(&FileRecord {
        run_id: report.run_id.clone(),
        name: check.name.clone(),
        stored_as: stored.map(|p| p.display().to_string()),
        sha256: check.sha256.clone(),
        mapping: check.mapping.clone(),
        outcome: report.outcome.as_str().to_string(),
        rows: check.rows,
        documents: check.documents,
        accepted: report.counts.accepted,
        rejected: report.counts.rejected,
        invalid: check.invalid,
        already_imported: check.already_imported,
        started: report.started.clone(),
        finished: report.finished.clone(),
        first_error: report.errors.first().first().map(Problem::message),
    })
}

/// A file whose handling could not finish for a reason outside it (a temporary file,
/// the spool or a report could not be written): back to the inbox, untouched, and the
/// pass stops (exit 3) instead of calling it bad data.
fn cannot_finish(
    claimed: &Claimed,
    folders: &crate::config::Folders,
    mut report: FileReport,
    reason: &str,
) -> FileEnd {
    report.outcome = Outcome::Unavailable;
    match return_to_inbox(claimed, folders) {
        Ok(_) => {
            tracing::error!(file = %claimed.name, "cannot finish this file: {reason}; it is back in the inbox for the next run")
        }
        Err(e) => {
            tracing::error!(file = %claimed.name, "cannot finish this file: {reason}; and cannot return it to the inbox ({e}): it stays in processing/ and the next run returns it")
        }
    }
    FileEnd {
        report,
        target_down: true,
        interrupted: false,
    }
}

fn unavailable_report(c: &Claimed, mapping: &Mapping, run_id: &str) -> FileReport {
    let now = timestamp(chrono::Utc::now());
    FileReport {
        file: c.name.clone(),
        sha256: String::new(),
        mapping: mapping.name.clone(),
        run_id: run_id.to_string(),
        started: now.clone(),
        finished: now,
        outcome: Outcome::Unavailable,
        counts: Default::default(),
        moved_to: None,
        errors: Default::default(),
        documents: Default::default(),
    }
}

/// `erpdrop run`.
pub fn run(cfg: &Config, ui: &Ui, new_ledger: bool) -> Result<Exit, Failure> {
    let stop = Stop::on_signals();
    run_pass(
        cfg,
        ui,
        &PassOptions {
            command: "run",
            new_ledger,
            ..PassOptions::default()
        },
        &stop,
    )
}
