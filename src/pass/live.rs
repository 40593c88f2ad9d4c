//! A live pass (`run`, `watch`, `reprocess`): under the run lock, each ready file of the
//! inbox is claimed into processing/, its valid documents go to the target through the
//! ledger, and the file is recorded and moved to done/ or failed/ with its reports.
//!
//! Order: take the lock (or exit 4) -> refuse a lost ledger -> open the ledger, begin
//! the run, mark dead runs interrupted -> put back in order what a dead run left -> for
//! each ready file in name order: claim, check, deliver, record, move -> end the run.

use super::drop::{is_marker_of_something, ledger_path, lock_drop, recover, refuse_lost_ledger};
use super::{report_of, FileEnd, Halt, Pass, Place, Settings, Taken};
use crate::check::FileCheck;
use crate::config::{Config, Folders, TargetKind};
use crate::deliver::{Submitted, Target};
use crate::exit::{Exit, Failure};
use crate::ledger::{FileRecord, Ledger, LedgerError, RunRecord};
use crate::lifecycle::scan::{list_files_with_ids, marker_path, readiness, NotReady};
use crate::lifecycle::{
    claim, return_to_inbox, settle_with, Claimed, RunLock, DONE_SIDECARS, FAILED_SIDECARS,
};
use crate::notify::{Event, Notifier};
use crate::outcome::Outcome;
use crate::problem::{Code, Problem, Stage};
use crate::report::rejected::{rejected_name, write_rejected, RejectedInput};
use crate::report::{timestamp, FileReport};
use crate::stop::Stop;
use crate::ui::Ui;
use std::collections::HashSet;
use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// What a live pass does beyond the defaults.
#[derive(Debug, Clone)]
pub struct LiveOptions {
    pub settings: Settings,
    /// Only these inbox names (reprocess); all ready files when `None`.
    pub only: Option<HashSet<String>>,
    /// Ignore settle time (files just moved back by reprocess keep their old mtime, but a
    /// user who names files wants them now).
    pub ignore_settle: bool,
    /// Ignore the ready marker (reprocess: the file was ready once already).
    pub ignore_marker: bool,
    /// A missing or empty ledger next to done/ or failed/ with history may be started
    /// anew (`--new-ledger`); otherwise that is refused.
    pub new_ledger: bool,
    /// SIGINT/SIGTERM: the first lets the file in hand finish, the second stops after
    /// the document in flight.
    pub stop: Arc<Stop>,
}

/// One live pass: takes the lock (exit 4 when another run holds it).
pub fn run(cfg: &Config, ui: &Ui, opts: &LiveOptions) -> Result<Exit, Failure> {
    match lock_drop(cfg)? {
        Some(lock) => run_locked(cfg, ui, opts, lock),
        None => Ok(Exit::Locked),
    }
}

/// One live pass with the lock already held (reprocess moves files under it first);
/// the lock is released when it ends.
pub fn run_locked(
    cfg: &Config,
    ui: &Ui,
    opts: &LiveOptions,
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
    let mut pass = Pass::new(cfg, ui, opts.settings.clone());
    ledger.begin_run(&pass.run_id, opts.settings.command)?;
    // Under the lock no other run is alive: one without an end died.
    for id in ledger.mark_interrupted_runs(&pass.run_id)? {
        tracing::warn!(run = %id, "an earlier run ended without recording its end (killed, or stopped by an error): marked interrupted");
    }
    let result = files(&mut pass, opts, &ledger);
    let record = |pass: &Pass<'_>, exit: Exit| RunRecord {
        id: pass.run_id.clone(),
        command: opts.settings.command.to_string(),
        files: pass.totals.files,
        counts: pass.totals.counts,
        exit_code: Some(exit.code() as i64),
        ..RunRecord::default()
    };
    let exit = match result {
        Ok(halted) => pass.exit(halted),
        Err(f) => {
            // the run's end is recorded where the ledger still takes it; otherwise the
            // next run marks it interrupted
            if let Err(e) = ledger.finish_run(&record(&pass, f.exit())) {
                tracing::debug!("the run's end could not be recorded: {e}");
            }
            return Err(f);
        }
    };
    ledger.finish_run(&record(&pass, exit))?;
    let t = &pass.totals;
    tracing::info!(
        run = %pass.run_id, files = t.files, done = t.files_ok, failed = t.files_failed,
        waiting = t.files_waiting, accepted = t.counts.accepted, rejected = t.counts.rejected,
        invalid = t.counts.invalid, already_imported = t.counts.already_imported, exit = exit.code(),
        "run finished"
    );
    pass.summary(false, exit);
    Ok(exit)
}

/// The files of a pass, with the ledger open and the run begun: whether it halted.
fn files(
    pass: &mut Pass<'_>,
    opts: &LiveOptions,
    ledger: &Ledger,
) -> Result<Option<Halt>, Failure> {
    let cfg = pass.cfg;
    recover(cfg, ledger)?;
    // [retry]: failed files whose time has come go back to the inbox first (not in a
    // reprocess, which takes only the files it was given)
    let retried = if opts.only.is_none() {
        super::retry::move_due(cfg, ledger)?
    } else {
        HashSet::new()
    };
    let folders = &cfg.folders;
    let target = crate::deliver::make_target(cfg);
    // documents whose earlier attempt has no known outcome: the ERP says, if it can
    crate::deliver::settle_open_documents(cfg, ledger, target.as_ref())?;
    let mut place = DropFolders {
        cfg,
        ledger,
        target: target.as_ref(),
        stop: opts.stop.now_flag(),
        run_id: pass.run_id.clone(),
        claimed: None,
        notifier: Notifier::new(cfg),
        down: None,
        reached: false,
        retried: retried.clone(),
    };
    let mut files = list_files_with_ids(&folders.inbox).map_err(|e| {
        Failure::usage(format!(
            "cannot read the inbox {}: {e}",
            folders.inbox.display()
        ))
    })?;
    // files of mappings that others refer to first, then by name
    files.sort_by_cached_key(|(file, _)| {
        let name = file
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        (
            cfg.mapping_for(&name).map_or(0, |m| cfg.rank(&m.name)),
            name,
        )
    });
    let settle = if opts.ignore_settle {
        Duration::ZERO
    } else {
        Duration::from_secs(cfg.settle_seconds)
    };
    let marker_rule = if opts.ignore_marker {
        None
    } else {
        cfg.ready_marker.as_deref()
    };
    let now = SystemTime::now();
    let mut halted = None;
    for (file, seen) in files {
        if opts.stop.requested() {
            tracing::info!("stop requested: no more files in this pass");
            break;
        }
        let name = file
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        if opts.only.as_ref().is_some_and(|only| !only.contains(&name)) {
            continue;
        }
        let Some(mapping) = cfg.mapping_for(&name).cloned() else {
            // Markers of other files are not worth a warning.
            if !is_marker_of_something(&file, cfg) {
                tracing::warn!(file = %name, "no mapping matches this file; it stays in the inbox");
                pass.waiting.push(format!("{name} (matches no mapping)"));
            }
            continue;
        };
        // a retried file was ready once already, as a reprocessed one
        let ready = if retried.contains(&name) {
            Ok(())
        } else {
            readiness(&file, settle, marker_rule, now)
        };
        match ready {
            Ok(()) => {}
            Err(NotReady::Settling(_)) => {
                tracing::info!(file = %name, "not settled yet (modified less than {}s ago); next run", cfg.settle_seconds);
                pass.waiting.push(format!(
                    "{name} (not settled yet: modified less than {}s ago)",
                    cfg.settle_seconds
                ));
                continue;
            }
            Err(NotReady::NoMarker(m)) => {
                let marker = m
                    .file_name()
                    .unwrap_or_default()
                    .to_string_lossy()
                    .into_owned();
                tracing::info!(file = %name, "waiting for its ready marker {marker}");
                pass.waiting
                    .push(format!("{name} (waiting for its ready marker {marker})"));
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
        let taken = Taken {
            name: claimed.name.clone(),
            path: claimed.path.clone(),
            id: Some(claimed.id),
            mapping,
        };
        place.claimed = Some(claimed);
        if let Some(halt) = pass.file(&mut place, taken)? {
            halted = Some(halt);
            break;
        }
    }
    // notifications that depend on the whole pass; one that cannot be sent is a
    // warning, and the ledger's memory of them never fails the run
    let told = crate::notify::target_state(
        &place.notifier,
        ledger,
        place.down.as_deref(),
        place.reached,
    )
    .and_then(|()| {
        crate::notify::expected_files(cfg, &place.notifier, ledger, chrono::Local::now())
    });
    if let Err(e) = told {
        tracing::warn!("cannot remember what was notified in the ledger: {e}");
    }
    Ok(halted)
}

/// The drop folders as a pass's [`Place`]: valid documents go to the target through the
/// ledger; a checked file is recorded and moved to done/ or failed/ with its reports,
/// or back to the inbox.
struct DropFolders<'a> {
    cfg: &'a Config,
    ledger: &'a Ledger,
    target: &'a dyn Target,
    stop: &'a AtomicBool,
    run_id: String,
    /// The file in hand.
    claimed: Option<Claimed>,
    notifier: Notifier<'a>,
    /// Why the target was found unavailable in this pass, if it was.
    down: Option<String>,
    /// The target answered documents in this pass.
    reached: bool,
    /// Files that `[retry]` put back into the inbox in this pass: one that fails again
    /// is not told as `file_failed` again (its first failure was; `gave_up` ends it).
    retried: HashSet<String>,
}

impl DropFolders<'_> {
    fn folders(&self) -> &Folders {
        &self.cfg.folders
    }

    fn claimed(&self) -> &Claimed {
        self.claimed.as_ref().expect("a file is in hand")
    }

    /// Records the invalid documents of a file, so that `status` can say which failed
    /// and why. A document's problems stand together, so its first one is recorded;
    /// what the ledger knows of a document in conflict is kept.
    fn record_invalid(&self, report: &FileReport, mapping: &str) -> Result<(), LedgerError> {
        let file = &self.claimed().name;
        let mut last: Option<String> = None;
        for p in report.errors.iter() {
            let Some(key) = p.document.as_deref() else {
                continue;
            };
            if p.stage == Stage::Submit || last.as_deref() == Some(key) {
                continue;
            }
            match p.code {
                Code::Conflict => continue,
                Code::InDoubt => {
                    self.ledger
                        .mark_in_doubt(mapping, key, &p.message(), file, &self.run_id)?
                }
                _ => self
                    .ledger
                    .mark_invalid(mapping, key, &p.message(), file, &self.run_id)?,
            }
            last = Some(key.to_string());
        }
        Ok(())
    }

    fn record_file(&self, report: &FileReport, stored: Option<&Path>) -> Result<(), LedgerError> {
        self.ledger.record_file(&FileRecord {
            run_id: report.run_id.clone(),
            name: report.file.clone(),
            stored_as: stored.map(|p| p.display().to_string()),
            sha256: report.sha256.clone(),
            mapping: report.mapping.clone(),
            outcome: report.outcome,
            counts: report.counts,
            started: report.started.clone(),
            finished: report.finished.clone(),
            first_error: report.errors.first().first().map(Problem::message),
        })
    }

    /// A file whose handling could not finish for a reason outside it (a temporary file,
    /// the spool or a report could not be written): back to the inbox, untouched, and
    /// the pass stops (exit 3) instead of calling it bad data.
    fn cannot_finish(&mut self, mut report: FileReport, reason: &str) -> FileEnd {
        report.outcome = Outcome::Unavailable;
        let claimed = self.claimed.take().expect("a file is in hand");
        match return_to_inbox(&claimed, self.folders()) {
            Ok(_) => {
                tracing::error!(file = %claimed.name, "cannot finish this file: {reason}; it is back in the inbox for the next run")
            }
            Err(e) => {
                tracing::error!(file = %claimed.name, "cannot finish this file: {reason}; and cannot return it to the inbox ({e}): it stays in processing/ and the next run returns it")
            }
        }
        FileEnd {
            report,
            halt: Some(Halt::Unavailable),
        }
    }

    fn unavailable_report(&self, taken: &Taken) -> FileReport {
        let now = timestamp(chrono::Utc::now());
        FileReport {
            file: taken.name.clone(),
            sha256: String::new(),
            mapping: taken.mapping.name.clone(),
            master: taken.mapping.follows_changes(),
            run_id: self.run_id.clone(),
            started: now.clone(),
            finished: now,
            outcome: Outcome::Unavailable,
            counts: Default::default(),
            moved_to: None,
            note: None,
            csv_delimiter: taken.mapping.report_delimiter,
            report_at: None,
            errors: Default::default(),
            documents: Default::default(),
        }
    }

    /// Moves the file into `dir` with its reports, its ledger line written with them
    /// (a run killed after the move has it; one killed before has the move undone,
    /// line and reports, by the next run: see `lifecycle::recover_move`). The path it
    /// was stored as, or `Err` with why it could not be.
    fn store(
        &self,
        report: &mut FileReport,
        dir: &Path,
        sidecars: &[&str],
        rejected: Option<&crate::mapping::Mapping>,
    ) -> Result<Result<std::path::PathBuf, String>, LedgerError> {
        let mut recorded: Option<String> = None;
        let mut ledger_error: Option<LedgerError> = None;
        let moved = settle_with(
            self.claimed(),
            self.folders(),
            dir,
            sidecars,
            &mut |to: &Path| {
                // called again (the name was taken meanwhile): the line of the first name goes
                if let Some(prev) = recorded.take() {
                    if let Err(e) = self.ledger.forget_file(&prev) {
                        let m = e.to_string();
                        ledger_error = Some(e);
                        return Err(std::io::Error::other(m));
                    }
                }
                report.moved_to = Some(to.display().to_string());
                let name = to.file_name().unwrap_or_default().to_string_lossy();
                report.write_sidecars(dir, &name)?;
                if let Some(mapping) = rejected {
                    if let Err(e) =
                        self.write_rejected(report, mapping, &dir.join(rejected_name(&name)))
                    {
                        // the reports go together, or none
                        for s in FAILED_SIDECARS {
                            let _ = std::fs::remove_file(
                                dir.join(crate::fsutil::sidecar_name(&name, s)),
                            );
                        }
                        return Err(e);
                    }
                }
                report.report_at = matches!(report.outcome, Outcome::Failed | Outcome::Invalid)
                    .then(|| dir.join(format!("{name}.errors.csv")));
                if let Err(e) = self.record_file(report, Some(to)) {
                    let m = e.to_string();
                    ledger_error = Some(e);
                    return Err(std::io::Error::other(m));
                }
                recorded = Some(to.display().to_string());
                Ok(())
            },
        );
        match moved {
            Ok(p) => Ok(Ok(p)),
            Err(e) => {
                // the reports are gone again, and so goes the line that named the move
                if let Some(prev) = recorded.take() {
                    self.ledger.forget_file(&prev)?;
                }
                if let Some(e) = ledger_error {
                    return Err(e);
                }
                report.moved_to = None;
                report.report_at = None;
                Ok(Err(format!(
                    "cannot write the report or move the file into {}: {e}",
                    dir.display()
                )))
            }
        }
    }

    /// Writes the rejected rows of a failed file beside its reports (see
    /// [`crate::report::rejected`]).
    fn write_rejected(
        &self,
        report: &FileReport,
        mapping: &crate::mapping::Mapping,
        to: &Path,
    ) -> std::io::Result<()> {
        let claimed = self.claimed();
        let in_erp = |key: &str| {
            self.ledger
                .document(&mapping.name, key)
                .ok()
                .flatten()
                .is_some_and(|d| d.in_erp())
        };
        write_rejected(
            &RejectedInput {
                source: &claimed.path,
                id: Some(claimed.id),
                mapping,
                problems: &report.errors,
                held_back: report.counts.held_back > 0,
                in_erp: &in_erp,
            },
            to,
        )
        .map(|_| ())
    }

    fn finish_file(
        &mut self,
        taken: &Taken,
        check: FileCheck,
        sent: Option<Submitted>,
    ) -> Result<FileEnd, LedgerError> {
        if let Some(s) = &sent {
            match &s.down_reason {
                Some(r) => {
                    self.down.get_or_insert_with(|| r.clone());
                }
                None => self.reached |= s.accepted + s.rejected > 0,
            }
        }
        let halt = sent.as_ref().and_then(|s| {
            if s.target_down {
                Some(Halt::Unavailable)
            } else if s.interrupted {
                Some(Halt::Interrupted)
            } else {
                None
            }
        });
        let (mut report, check) = report_of(check, sent, &self.run_id, Outcome::Done);
        report.finished = timestamp(chrono::Utc::now());
        self.record_invalid(&report, &taken.mapping.name)?;
        if let Some(e) = report.errors.failure().or(report.documents.failure()) {
            // what was delivered is in the ledger; the report would not be whole
            let reason = format!("cannot keep the file's report in a temporary file: {e}");
            report.outcome = Outcome::Unavailable;
            self.record_file(&report, None)?;
            return Ok(self.cannot_finish(report, &reason));
        }
        if let Some(halt) = halt {
            report.outcome = Outcome::Unavailable;
            let claimed = self.claimed.take().expect("a file is in hand");
            match return_to_inbox(&claimed, self.folders()) {
                Ok(p) => {
                    tracing::warn!(file = %claimed.name, "left in the inbox for the next run ({})", p.display())
                }
                Err(e) => {
                    tracing::error!(file = %claimed.name, "cannot return the file to the inbox: {e}; it stays in processing/ and the next run returns it")
                }
            }
            self.record_file(&report, None)?;
            return Ok(FileEnd {
                report,
                halt: Some(halt),
            });
        }
        let c = &report.counts;
        let failed = check.fatal || c.invalid > 0 || c.rejected > 0;
        let (dir, sidecars) = if failed {
            report.outcome = Outcome::Failed;
            (self.folders().failed.clone(), FAILED_SIDECARS)
        } else {
            let day = chrono::Local::now().format("%Y-%m-%d").to_string();
            (self.folders().done.join(day), DONE_SIDECARS)
        };
        // a file unusable as a whole has no rows to fix one by one
        let rejected = (failed && !check.fatal).then_some(&*taken.mapping);
        let stored = match self.store(&mut report, &dir, sidecars, rejected)? {
            Ok(p) => {
                // a file given up on before under this name is not that file
                self.ledger.forget_gave_up(&p.display().to_string())?;
                p
            }
            Err(reason) => {
                // No report was left behind (each is written whole or not at all); what
                // was delivered is in the ledger, so the next run skips it.
                report.outcome = Outcome::Unavailable;
                self.record_file(&report, None)?;
                return Ok(self.cannot_finish(report, &reason));
            }
        };
        let c = &report.counts;
        if failed {
            // an error, so that `-q` (cron) prints it: where the file and its report are
            let mut errors = stored.clone().into_os_string();
            errors.push(".errors.csv");
            tracing::error!(
                file = %taken.name, outcome = report.outcome.as_str(), documents = c.documents,
                accepted = c.accepted, rejected = c.rejected, invalid = c.invalid,
                already_imported = c.already_imported, report = %std::path::Path::new(&errors).display(),
                "file failed"
            );
            if !self.retried.contains(&taken.name) {
                self.notifier
                    .send(&Event::file_failed(&report, report.report_at.clone()));
            }
        } else {
            tracing::info!(
                file = %taken.name, outcome = report.outcome.as_str(), documents = c.documents,
                accepted = c.accepted, rejected = c.rejected, invalid = c.invalid,
                already_imported = c.already_imported, to = %stored.display(),
                "file handled"
            );
        }
        self.claimed = None;
        Ok(FileEnd { report, halt: None })
    }
}

impl Place for DropFolders<'_> {
    fn ledger(&self) -> Option<&Ledger> {
        Some(self.ledger)
    }

    fn spool_dir(&self) -> Option<&Path> {
        Some(&self.cfg.folders.state)
    }

    fn target(&self) -> Option<(&dyn Target, &Ledger)> {
        Some((self.target, self.ledger))
    }

    fn stop_flag(&self) -> &AtomicBool {
        self.stop
    }

    fn finish(
        &mut self,
        taken: &Taken,
        check: FileCheck,
        sent: Option<Submitted>,
    ) -> Result<FileEnd, Failure> {
        self.finish_file(taken, check, sent)
            .map_err(|e| self.ledger_failed(taken, e))
    }

    fn give_back(&mut self, taken: &Taken, reason: &str) -> Result<FileEnd, Failure> {
        let report = self.unavailable_report(taken);
        Ok(self.cannot_finish(report, reason))
    }

    fn ledger_failed(&mut self, taken: &Taken, e: LedgerError) -> Failure {
        // The ledger cannot be written: submitting more would break the exactly-once
        // promise. The file waits in the inbox, as if the target were down.
        let back = match self.claimed.take() {
            Some(c) => return_to_inbox(&c, self.folders()).is_ok(),
            None => true,
        };
        Failure::unavailable(format!(
            "{e}; stopped submitting, {} is {}",
            taken.name,
            if back {
                "back in the inbox"
            } else {
                "in processing/ until the next run"
            }
        ))
    }
}
