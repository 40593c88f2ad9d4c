//! A dry pass (`validate`, `run --dry-run`): files are read where they are, the ledger is
//! only read (what was already imported, conflicts, documents in doubt), nothing is
//! submitted or moved. Valid documents go to an inert outbox (`--emit DIR`) through the
//! same submission as a live pass, recorded in a ledger of its own in memory; reports
//! are written where asked (`--report DIR`).

use super::{report_of, FileEnd, Pass, Place, Settings, Taken};
use crate::check::FileCheck;
use crate::config::Config;
use crate::deliver::outbox::Outbox;
use crate::deliver::{Submitted, Target};
use crate::exit::{Exit, Failure};
use crate::ledger::{Ledger, LedgerError};
use crate::lifecycle::scan::list_files;
use crate::mapping::Mapping;
use crate::outcome::Outcome;
use crate::ui::Ui;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

/// What a dry pass checks and writes.
#[derive(Debug, Clone)]
pub struct DryOptions {
    pub settings: Settings,
    /// The files and the mapping each is read with ([`collect`]).
    pub files: Vec<(PathBuf, Arc<Mapping>)>,
    /// Write `FILE.errors.json` and `FILE.errors.csv` of every file here.
    pub report: Option<PathBuf>,
    /// Write the payloads that would have been submitted here.
    pub emit: Option<PathBuf>,
}

/// Finds the files to check: the given paths (files or folders), else the inbox.
/// A named file that no mapping takes is a usage error; in a folder it is skipped.
pub fn collect(
    cfg: &Config,
    paths: &[PathBuf],
    forced: Option<&str>,
) -> Result<Vec<(PathBuf, Arc<Mapping>)>, Failure> {
    let forced = match forced {
        Some(name) => Some(cfg.mapping_named(name).cloned().ok_or_else(|| {
            Failure::usage(format!(
                "there is no mapping named {name:?} (mappings: {})",
                cfg.mappings
                    .iter()
                    .map(|m| m.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
        })?),
        None => None,
    };
    let pick = |p: &Path| -> Option<Arc<Mapping>> {
        if let Some(m) = &forced {
            return Some(m.clone());
        }
        let name = p.file_name()?.to_str()?;
        cfg.mapping_for(name).cloned()
    };
    let mut out = Vec::new();
    let default = [cfg.folders.inbox.clone()];
    let roots: &[PathBuf] = if paths.is_empty() { &default } else { paths };
    for p in roots {
        let md = std::fs::symlink_metadata(p)
            .map_err(|e| Failure::usage(format!("{}: {e}", p.display())))?;
        if md.is_dir() {
            for f in list_files(p).map_err(|e| Failure::usage(format!("{}: {e}", p.display())))? {
                match pick(&f) {
                    Some(m) => out.push((f, m)),
                    None => {
                        tracing::info!(file = %f.display(), "no mapping matches this file; skipped")
                    }
                }
            }
        } else if md.is_file() {
            match pick(p) {
                Some(m) => out.push((p.clone(), m)),
                None => {
                    return Err(Failure::usage(format!(
                    "{}: no mapping matches this file name (patterns: {}); name one with --mapping",
                    p.display(),
                    cfg.mappings
                        .iter()
                        .flat_map(|m| m.match_globs.iter().cloned())
                        .collect::<Vec<_>>()
                        .join(", ")
                )))
                }
            }
        } else {
            return Err(Failure::usage(format!(
                "{}: not a regular file or folder (symbolic links are not followed)",
                p.display()
            )));
        }
    }
    // files of mappings that others refer to first (stable: otherwise as given)
    out.sort_by_key(|(_, m)| cfg.rank(&m.name));
    Ok(out)
}

/// Checks the files, prints the summary, writes the `--report` and `--emit` outputs.
pub fn run(cfg: &Config, ui: &Ui, opts: DryOptions) -> Result<Exit, Failure> {
    for dir in [&opts.report, &opts.emit].into_iter().flatten() {
        std::fs::create_dir_all(dir)
            .map_err(|e| Failure::usage(format!("cannot create {}: {e}", dir.display())))?;
    }
    // The ledger is read (already imported, conflicts), never written.
    let ledger = Ledger::open_read_only(&super::ledger_path(cfg))?;
    // what the inert outbox records, and what the pass would create (for references)
    let memory = Ledger::open_in_memory()?;
    let outbox = opts
        .emit
        .as_ref()
        .map(|dir| Outbox::new(dir, cfg.target.format));
    let never = AtomicBool::new(false);
    let mut pass = Pass::new(cfg, ui, opts.settings);
    let mut place = InPlace {
        ledger: ledger.as_ref(),
        emit: outbox.as_ref().map(|o| (o as &dyn Target, &memory)),
        memory: &memory,
        emit_dir: opts.emit.as_deref(),
        report: opts.report.as_deref(),
        never: &never,
        run_id: pass.run_id.clone(),
    };
    let mut halted = None;
    for (path, mapping) in opts.files {
        let taken = Taken {
            name: path
                .file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned(),
            path,
            id: None,
            mapping,
        };
        if let Some(h) = pass.file(&mut place, taken)? {
            halted = Some(h);
            break;
        }
    }
    let exit = pass.exit(halted);
    pass.summary(true, exit);
    Ok(exit)
}

/// Files read where they are, as a pass's [`Place`].
struct InPlace<'a> {
    ledger: Option<&'a Ledger>,
    /// The inert outbox and the ledger in memory that records what went there.
    emit: Option<(&'a dyn Target, &'a Ledger)>,
    /// What the pass would create, for references to it.
    memory: &'a Ledger,
    emit_dir: Option<&'a Path>,
    report: Option<&'a Path>,
    /// No stop signal stops a dry pass in the middle of a file.
    never: &'a AtomicBool,
    run_id: String,
}

impl Place for InPlace<'_> {
    fn ledger(&self) -> Option<&Ledger> {
        self.ledger
    }

    fn spool_dir(&self) -> Option<&Path> {
        None
    }

    fn target(&self) -> Option<(&dyn Target, &Ledger)> {
        self.emit
    }

    fn stop_flag(&self) -> &AtomicBool {
        self.never
    }

    fn finish(
        &mut self,
        taken: &Taken,
        mut check: FileCheck,
        sent: Option<Submitted>,
    ) -> Result<FileEnd, Failure> {
        if sent.as_ref().is_some_and(|s| s.target_down) {
            return Err(Failure::unavailable(format!(
                "cannot write the payloads of {} into {}",
                taken.name,
                self.emit_dir
                    .map(|d| d.display().to_string())
                    .unwrap_or_default()
            )));
        }
        let outcome = if check.is_clean() {
            Outcome::Valid
        } else {
            Outcome::Invalid
        };
        // what a dry run would submit is counted as valid, never as accepted; what it
        // would create, update and delete is said
        let plan = check.plan;
        let planned = std::mem::take(&mut check.planned);
        let (mut report, _) = report_of(check, None, &self.run_id, outcome);
        if plan.create + plan.update + plan.delete > 0 {
            report.documents = planned;
        }
        report.counts.created = plan.create;
        report.counts.updated = plan.update;
        report.counts.deleted = plan.delete;
        if let Some(dir) = self.report {
            let (_, csv) = report.write_errors(dir, &report.file).map_err(|e| {
                Failure::unavailable(format!(
                    "cannot write the report into {}: {e}",
                    dir.display()
                ))
            })?;
            report.report_at = Some(csv);
        }
        let c = &report.counts;
        tracing::debug!(
            file = %report.file, mapping = %report.mapping, outcome = outcome.as_str(),
            rows = c.rows, documents = c.documents, invalid = c.invalid,
            "checked"
        );
        Ok(FileEnd { report, halt: None })
    }

    fn give_back(&mut self, taken: &Taken, reason: &str) -> Result<FileEnd, Failure> {
        Err(Failure::unavailable(format!(
            "{}: the check could not finish: {reason}",
            taken.path.display()
        )))
    }

    fn ledger_failed(&mut self, taken: &Taken, e: LedgerError) -> Failure {
        Failure::unavailable(format!("{}: {e}", taken.path.display()))
    }

    fn pending(&self) -> Option<&Ledger> {
        Some(self.memory)
    }

    fn lists_plan(&self) -> bool {
        self.report.is_some()
    }
}
