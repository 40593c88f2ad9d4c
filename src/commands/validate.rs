//! `erpdrop validate [PATH...]` and `erpdrop run --dry-run`: parse, map and validate,
//! submit nothing, move nothing, write no ledger entry.

use super::new_run_id;
use crate::cli::DryRunOutputs;
use crate::config::Config;
use crate::exit::{Exit, Failure};
use crate::fsutil::DurableBatch;
use crate::ledger::Ledger;
use crate::lifecycle::scan::list_files;
use crate::mapping::Mapping;
use crate::mapping::OnInvalid;
use crate::pipeline::{check_file, CheckOptions};
use crate::report::{print_file_summary, FileReport, Outcome, Summary, Totals};
use crate::spool::Spool;
use crate::target::outbox::payload_file_name;
use crate::ui::Ui;
use std::path::{Path, PathBuf};
use std::sync::Arc;

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
    Ok(out)
}

/// Whether a file with this check would have documents submitted.
pub fn would_submit(m: &Mapping, fatal: bool, invalid: u64) -> bool {
    !fatal && (invalid == 0 || m.on_invalid == OnInvalid::SkipDocument)
}

/// Checks the files, prints the summary, writes `--report` and `--emit` outputs.
pub fn dry_run(
    cfg: &Config,
    files: Vec<(PathBuf, Arc<Mapping>)>,
    out: &DryRunOutputs,
    ui: &Ui,
    command: &str,
) -> Result<Exit, Failure> {
    let run_id = new_run_id();
    for dir in [&out.report, &out.emit].into_iter().flatten() {
        std::fs::create_dir_all(dir)
            .map_err(|e| Failure::usage(format!("cannot create {}: {e}", dir.display())))?;
    }
    // The ledger is read (already imported, conflicts), never written.
    let ledger = Ledger::open_read_only(&cfg.folders.state.join("ledger.sqlite"))?;
    let mut reports = Vec::new();
    let mut totals = Totals::default();
    for (path, mapping) in files {
        let bar = ui.file_bar(
            &path.file_name().unwrap_or_default().to_string_lossy(),
            std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0),
        );
        let mut spool = match &out.emit {
            Some(_) => Some(
                Spool::new(None, cfg.target.format, &mapping.document_type).map_err(|e| {
                    Failure::unavailable(format!("cannot create a temporary file: {e}"))
                })?,
            ),
            None => None,
        };
        let progress = |b: u64| bar.set_position(b);
        let mut classify =
            |d: &crate::mapping::MappedDocument| super::run::classify(ledger.as_ref(), &mapping, d);
        let mut check_it = || {
            check_file(
                &path,
                &mapping,
                spool.as_mut(),
                CheckOptions {
                    run_id: &run_id,
                    progress: &progress,
                    classify: &mut classify,
                    file_id: None,
                },
            )
        };
        // every document is looked up: in one read transaction
        let mut check = match &ledger {
            Some(l) => l.snapshot(check_it),
            None => check_it(),
        };
        bar.finish_and_clear();
        if let Some(reason) = check.environment.take() {
            return Err(Failure::unavailable(format!(
                "{}: the check could not finish: {reason}",
                path.display()
            )));
        }
        let outcome = if check.is_clean() {
            Outcome::Valid
        } else {
            Outcome::Invalid
        };
        let report = FileReport::from_check(&mut check, &run_id, outcome);
        if let Some(dir) = &out.report {
            report.write_errors(dir, &check.name).map_err(|e| {
                Failure::unavailable(format!(
                    "cannot write the report into {}: {e}",
                    dir.display()
                ))
            })?;
        }
        if let (Some(dir), Some(spool)) = (&out.emit, spool) {
            if would_submit(&mapping, check.fatal, check.invalid) {
                let docs = spool.replay().map_err(|e| {
                    Failure::unavailable(format!("cannot read the spool file: {e}"))
                })?;
                // Written in batches behind one durability barrier each, not one
                // flush per file.
                let mut files = DurableBatch::new();
                let cannot = |e: std::io::Error| {
                    Failure::unavailable(format!("cannot write into {}: {e}", dir.display()))
                };
                for doc in docs {
                    let doc = doc.map_err(|e| {
                        Failure::unavailable(format!("cannot read the spool file: {e}"))
                    })?;
                    let name =
                        payload_file_name(&mapping.document_type, &doc.key, cfg.target.format);
                    files.stage(&dir.join(name), &doc.body).map_err(cannot)?;
                    if files.len() >= 256 {
                        files.commit().map_err(cannot)?;
                    }
                }
                files.commit().map_err(cannot)?;
            }
        }
        tracing::debug!(
            file = %check.name, mapping = %check.mapping, outcome = outcome.as_str(),
            rows = check.rows, documents = check.documents, invalid = check.invalid,
            "checked"
        );
        if !ui.json && !ui.quiet {
            crate::output::write_with(|w| print_file_summary(w, &report));
        }
        totals.add(&report);
        reports.push(report);
    }
    let exit = if totals.files_failed > 0 {
        Exit::DataErrors
    } else {
        Exit::Ok
    };
    Summary {
        command: command.to_string(),
        run_id,
        dry_run: true,
        files: reports,
        totals,
        exit_code: exit.code(),
    }
    .print(ui);
    Ok(exit)
}
