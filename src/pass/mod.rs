//! One pass over files: the engine of every command that reads exports.
//!
//! A pass takes files one at a time: take -> check -> deliver -> finish. Which files it
//! takes and what "deliver" and "finish" mean depend on its [`Mode`]:
//!
//! - **live** (`run`, `watch`, `reprocess`): under the run lock, after putting back in
//!   order what a dead run left, each ready file of the inbox is claimed into
//!   processing/, its valid documents go to the target through the ledger, and it is
//!   recorded and moved to done/ or failed/ with its reports ([`live`]);
//! - **dry** (`validate`, `run --dry-run`): files are read where they are, the ledger
//!   only read; valid documents go to an inert outbox (`--emit`) or nowhere, and the
//!   reports are written where asked (`--report`) ([`dry`]).
//!
//! Both run the same per-file step, `Pass::file`; a mode only supplies the two ends
//! (`Place`). Whether a file's documents are submitted, how they are classified by the
//! ledger and how its report and the summary are made is decided here once.

mod drop;
pub mod dry;
pub mod live;
mod retry;

pub use drop::{ledger_path, lock_drop, refuse_linked_folders, refuse_lost_ledger};

use crate::check::{check_file, classify, CheckOptions, FileCheck, Verdict};
use crate::config::Config;
use crate::config::PayloadFormat;
use crate::deliver::{Batch, DocContext, Submission, Submitted, Target};
use crate::exit::{Exit, Failure};
use crate::fsutil::FileId;
use crate::ledger::Operation;
use crate::ledger::{Ledger, LedgerError};
use crate::mapping::{MappedDocument, Mapping, Refs};
use crate::outcome::AcceptedDoc;
use crate::problem::{Code, Problem};
use crate::report::{print_file_summary, FileReport, Outcome, Summary, Totals};
use crate::spool::Spool;
use crate::spool::SpooledDoc;
use crate::ui::Ui;
use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

/// What a pass does: see the module's documentation.
pub enum Mode {
    Live(live::LiveOptions),
    Dry(dry::DryOptions),
}

/// Runs one pass.
pub fn run(cfg: &Config, ui: &Ui, mode: Mode) -> Result<Exit, Failure> {
    match mode {
        Mode::Live(opts) => live::run(cfg, ui, &opts),
        Mode::Dry(opts) => dry::run(cfg, ui, opts),
    }
}

/// Settings of a pass that every mode has.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The command, for the ledger and the summary.
    pub command: &'static str,
    /// XML is parsed on a second thread while the first maps and validates (off only
    /// to compare the two ways).
    pub read_ahead: bool,
}

/// A file taken for this pass.
pub struct Taken {
    /// Its name as it arrived (reports name it so).
    pub name: String,
    /// Where it is read from now (in processing/ for a live pass).
    pub path: PathBuf,
    /// The file that was claimed: every open must find this one.
    pub id: Option<FileId>,
    pub mapping: Arc<Mapping>,
}

/// Why a pass stops before its last file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Halt {
    /// The target, the ledger or the machine could not go on (exit 3).
    Unavailable,
    /// A stop signal.
    Interrupted,
}

/// What became of a file.
pub struct FileEnd {
    pub report: FileReport,
    /// The pass stops after this file.
    pub halt: Option<Halt>,
}

/// One end of a pass, by mode: where a file's valid documents go and what becomes of
/// the file once it is checked.
trait Place {
    /// The ledger to read, for what it says of each valid document.
    fn ledger(&self) -> Option<&Ledger>;
    /// Where the documents of a file wait until its verdict is known (`None`: the
    /// system's temporary folder).
    fn spool_dir(&self) -> Option<&Path>;
    /// Where valid documents go, and the ledger that records them; `None`: nowhere.
    fn target(&self) -> Option<(&dyn Target, &Ledger)>;
    /// The flag that stops a submission after the document in flight.
    fn stop_flag(&self) -> &AtomicBool;
    /// The report of a checked file, its documents delivered (`sent`) or not, and
    /// where the file goes.
    fn finish(
        &mut self,
        taken: &Taken,
        check: FileCheck,
        sent: Option<Submitted>,
    ) -> Result<FileEnd, Failure>;
    /// A file that could not be handled for a reason outside it.
    fn give_back(&mut self, taken: &Taken, reason: &str) -> Result<FileEnd, Failure>;
    /// The ledger failed while the file was in hand: nothing more can be promised.
    fn ledger_failed(&mut self, taken: &Taken, e: LedgerError) -> Failure;
    /// A dry pass's list of what it would create, so that references to it resolve;
    /// `None` for a live pass (the ledger has what was created).
    fn pending(&self) -> Option<&Ledger> {
        None
    }
    /// Whether each document that would be sent is listed in the file's report (a dry
    /// run with `--report`).
    fn lists_plan(&self) -> bool {
        false
    }
}

/// A pass under way: what it has done so far.
struct Pass<'a> {
    cfg: &'a Config,
    ui: &'a Ui,
    settings: Settings,
    run_id: String,
    totals: Totals,
    reports: Vec<FileReport>,
    /// Files of the inbox left for a later pass, each with why (not settled, no ready
    /// marker, no mapping).
    waiting: Vec<String>,
}

impl<'a> Pass<'a> {
    fn new(cfg: &'a Config, ui: &'a Ui, settings: Settings) -> Pass<'a> {
        Pass {
            cfg,
            ui,
            settings,
            run_id: new_run_id(),
            totals: Totals::default(),
            reports: Vec::new(),
            waiting: Vec::new(),
        }
    }

    /// Handles one file: checks it, delivers its valid documents, finishes it, prints
    /// its line; whether the pass stops after it.
    fn file(&mut self, place: &mut dyn Place, taken: Taken) -> Result<Option<Halt>, Failure> {
        let end = self.handle(place, &taken)?;
        if !self.ui.json && !self.ui.quiet {
            crate::output::write_with(|w| print_file_summary(w, &end.report));
        }
        self.totals.add(&end.report);
        self.reports.push(end.report);
        Ok(end.halt)
    }

    fn handle(&mut self, place: &mut dyn Place, taken: &Taken) -> Result<FileEnd, Failure> {
        let mapping = &taken.mapping;
        let size = std::fs::symlink_metadata(&taken.path)
            .map(|m| m.len())
            .unwrap_or(0);
        let bar = self.ui.file_bar(&taken.name, size);
        let progress = |b: u64| bar.set_position(b);
        // documents are spooled only where they go somewhere
        let mut spool = match place.target() {
            Some(_) => match Spool::new(
                place.spool_dir(),
                self.cfg.target.format,
                &mapping.document_type,
            ) {
                Ok(s) => Some(s),
                Err(e) => {
                    let reason = format!("cannot create a spool file: {e}");
                    return place.give_back(taken, &reason);
                }
            },
            None => None,
        };
        let ledger = place.ledger();
        // a snapshot's keys go into the ledger's temporary list as they are read
        let snapshot = ledger.filter(|_| mapping.deletes_missing.is_some());
        let failure: RefCell<Option<String>> = RefCell::new(None);
        let fail = |e: LedgerError| {
            failure.borrow_mut().get_or_insert_with(|| e.to_string());
        };
        if let Some(l) = snapshot {
            l.begin_snapshot().unwrap_or_else(fail);
        }
        let refs = PassRefs {
            ledger,
            pending: place.pending(),
            failure: &failure,
        };
        // in a dry pass, what a mapping others refer to would create resolves too
        let referenced = self.cfg.is_referenced(&mapping.name);
        let pending = place.pending().filter(|_| referenced);
        let mut verdict = |d: &MappedDocument| {
            let v = classify(ledger, mapping, d);
            if let (Some(p), Verdict::Take(plan)) = (pending, &v) {
                if plan.operation == Operation::Create {
                    p.note_pending(&mapping.name, &d.key, &taken.name)
                        .unwrap_or_else(fail);
                }
            }
            v
        };
        let mut seen = |key: &str| {
            if let Some(l) = snapshot {
                l.snapshot_key(key).unwrap_or_else(fail);
            }
        };
        let mut check_it = || {
            check_file(
                &taken.path,
                mapping,
                spool.as_mut(),
                CheckOptions {
                    run_id: &self.run_id,
                    progress: &progress,
                    classify: &mut verdict,
                    file_id: taken.id,
                    read_ahead: self.settings.read_ahead,
                    refs: &refs,
                    seen: snapshot
                        .is_some()
                        .then_some(&mut seen as &mut dyn FnMut(&str)),
                    list_plan: place.lists_plan(),
                },
            )
        };
        // every document is looked up: in one read transaction
        let mut check = match ledger {
            Some(l) => l.snapshot(check_it),
            None => check_it(),
        };
        bar.finish_and_clear();
        // the check ran on the file where it is now; reports name it as it arrived
        check.name = taken.name.clone();
        if let Some(reason) = check.environment.take() {
            return place.give_back(taken, &reason);
        }
        if let Some(e) = failure.borrow_mut().take() {
            return place.give_back(taken, &format!("cannot read the ledger: {e}"));
        }
        if !check.submits(mapping) {
            // nothing of this file goes: nothing would be created or updated
            check.plan = Default::default();
            if !check.fatal {
                let c = &mut check.counts;
                c.held_back = c.valid().saturating_sub(c.already_imported);
            }
        }
        // what the snapshot no longer lists, to delete after the rest
        let deletes = match snapshot {
            Some(l) if check.submits(mapping) => {
                match plan_deletes(l, mapping, &mut check, place) {
                    Ok(d) => d,
                    Err(reason) => return place.give_back(taken, &reason),
                }
            }
            _ => None,
        };
        if let Some(p) = pending.filter(|_| !check.submits(mapping)) {
            // nothing of this file goes: references to its documents do not resolve
            if let Err(e) = p.forget_pending(&mapping.name, &taken.name) {
                return place.give_back(taken, &format!("cannot read the ledger: {e}"));
            }
        }
        let sent = match (place.target(), spool) {
            (Some((target, ledger)), Some(spool)) if check.submits(mapping) => {
                let batch = Batch {
                    ctx: DocContext {
                        mapping: &mapping.name,
                        document_type: &mapping.document_type,
                    },
                    file: &taken.name,
                    run_id: &self.run_id,
                };
                let started = std::time::Instant::now();
                // creates and updates first, deletes last
                let mut sent = Submitted::default();
                for spool in std::iter::once(spool).chain(deletes) {
                    if sent.target_down || sent.interrupted {
                        break;
                    }
                    let docs = match spool.replay() {
                        Ok(d) => d,
                        Err(e) => {
                            let reason = format!("cannot read the spool file: {e}");
                            return place.give_back(taken, &reason);
                        }
                    };
                    match Submission::run(docs, target, ledger, &batch, place.stop_flag()) {
                        Ok(s) => sent.merge(s),
                        Err(e) => return Err(place.ledger_failed(taken, e)),
                    }
                }
                log_submitted(&taken.name, &sent, started.elapsed().as_secs_f64());
                Some(sent)
            }
            _ => None,
        };
        place.finish(taken, check, sent)
    }

    /// The exit of the pass from what its files gave, unless it halted.
    fn exit(&self, halted: Option<Halt>) -> Exit {
        if halted == Some(Halt::Unavailable) {
            Exit::TargetDown
        } else if self.totals.files_failed > 0 {
            Exit::DataErrors
        } else {
            Exit::Ok
        }
    }

    /// Prints the summary of the pass.
    fn summary(self, dry_run: bool, exit: Exit) {
        Summary {
            command: self.settings.command.to_string(),
            run_id: self.run_id,
            dry_run,
            files: self.reports,
            totals: self.totals,
            waiting: self.waiting,
            exit_code: exit.code(),
        }
        .print(self.ui);
    }
}

/// A run id that sorts by time and is unique: `20261125T041500.123Z-12345-0` (time,
/// process, pass within the process).
pub fn new_run_id() -> String {
    static PASS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    format!(
        "{}-{}-{}",
        chrono::Utc::now().format("%Y%m%dT%H%M%S%.3fZ"),
        std::process::id(),
        PASS.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    )
}

/// The deletes a snapshot asks for, within `max_deletes`: spooled when they go
/// somewhere (counted in the plan either way). A snapshot that asks for more is refused
/// whole: one `too_many_deletes` problem, nothing created, updated or deleted. `Err`: a
/// reason outside the file (the ledger or the spool).
fn plan_deletes(
    ledger: &Ledger,
    mapping: &Mapping,
    check: &mut FileCheck,
    place: &dyn Place,
) -> Result<Option<Spool>, String> {
    let Some(limit) = mapping.deletes_missing else {
        return Ok(None);
    };
    let ledger_failed = |e: LedgerError| format!("cannot read the ledger: {e}");
    let missing = ledger.missing_count(&mapping.name).map_err(ledger_failed)?;
    if missing == 0 {
        return Ok(None);
    }
    let held = ledger.held(&mapping.name).map_err(ledger_failed)?;
    let allowed = limit.allowed(held);
    if missing > allowed {
        check.fatal = true;
        check.counts.invalid = check.counts.documents;
        check.counts.already_imported = 0;
        check.plan = Default::default();
        check.planned.clear();
        check.problems.push(
            Problem::read(
                Code::TooManyDeletes,
                format!(
                    "The file would delete {missing} of the {held} documents that mapping {} has in the ERP, more than max_deletes allows ({limit}: {allowed}); a snapshot that lists so few records is taken for a cut-off export, so nothing was sent. If these deletes are meant, raise max_deletes",
                    mapping.name
                ),
            )
            .with_value(missing.to_string()),
        );
        return Ok(None);
    }
    check.plan.delete = missing;
    if place.lists_plan() {
        ledger
            .for_each_missing(&mapping.name, &mut |m| {
                check.planned.push(AcceptedDoc {
                    document: m.key,
                    line: 0,
                    id: m.erp_id,
                    operation: Operation::Delete,
                });
                Ok(())
            })
            .map_err(ledger_failed)?
            .map_err(|e| format!("cannot keep the plan in a temporary file: {e}"))?;
    }
    if place.target().is_none() {
        return Ok(None);
    }
    let spool_failed = |e: std::io::Error| format!("cannot write the spool file: {e}");
    let mut spool = Spool::new(
        place.spool_dir(),
        PayloadFormat::Json,
        &mapping.document_type,
    )
    .map_err(spool_failed)?;
    ledger
        .for_each_missing(&mapping.name, &mut |m| {
            spool.push_spooled(&SpooledDoc::delete(
                m.key,
                m.erp_hash,
                m.erp_id,
                m.deletions,
            ))
        })
        .map_err(ledger_failed)?
        .map_err(spool_failed)?;
    Ok(Some(spool))
}

/// Where `ref` fields of a pass find the ERP's ids: the ledger, and in a dry pass what
/// the pass would create first.
struct PassRefs<'a> {
    ledger: Option<&'a Ledger>,
    pending: Option<&'a Ledger>,
    /// The first failure to read the ledger: the file is given back.
    failure: &'a RefCell<Option<String>>,
}

impl Refs for PassRefs<'_> {
    fn erp_id(&self, mapping: &str, key: &str) -> Option<String> {
        let found = |l: &Ledger| match l.erp_id(mapping, key) {
            Ok(id) => id,
            Err(e) => {
                self.failure
                    .borrow_mut()
                    .get_or_insert_with(|| e.to_string());
                None
            }
        };
        if let Some(id) = self.ledger.and_then(found) {
            return Some(id);
        }
        let pending = self.pending?;
        match pending.is_pending(mapping, key) {
            Ok(true) => Some(format!("(the id {mapping} {key:?} will have)")),
            Ok(false) => None,
            Err(e) => {
                self.failure
                    .borrow_mut()
                    .get_or_insert_with(|| e.to_string());
                None
            }
        }
    }
}

/// One log line per submission, with its rate: what was sent (the file's totals, with
/// what was already imported, are on its "file handled" line).
fn log_submitted(file: &str, sent: &Submitted, secs: f64) {
    tracing::info!(
        file,
        accepted = sent.accepted,
        rejected = sent.rejected,
        seconds = format_args!("{secs:.3}"),
        per_second = format_args!(
            "{:.0}",
            (sent.accepted + sent.rejected) as f64 / secs.max(1e-9)
        ),
        "submitted"
    );
}

/// A file's report from its check and what its submission gave: the submission's
/// problems and counts join the check's.
fn report_of(
    mut check: FileCheck,
    sent: Option<Submitted>,
    run_id: &str,
    outcome: Outcome,
) -> (FileReport, FileCheck) {
    let mut report;
    match sent {
        Some(sent) => {
            check.counts.already_imported += sent.already_imported;
            check.counts.invalid += sent.in_doubt;
            check.problems.extend(sent.problems);
            report = FileReport::from_check(&mut check, run_id, outcome);
            report.counts.accepted = sent.accepted;
            report.counts.created = sent.created;
            report.counts.updated = sent.updated;
            report.counts.deleted = sent.deleted;
            report.counts.rejected = sent.rejected;
            report.documents = sent.documents;
        }
        None => report = FileReport::from_check(&mut check, run_id, outcome),
    }
    report.counts.unchanged = report.counts.already_imported;
    (report, check)
}
