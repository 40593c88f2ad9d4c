//! Reports: `FILE.errors.json`, `FILE.errors.csv`, `FILE.report.json`, and the summary
//! printed to the user.
//!
//! Every text of a report and of a summary has the secrets masked as it is written
//! ([`crate::redact`]): the second line of defence behind the target's own masking of
//! what the ERP sends back.

use crate::fsutil::write_atomic_with;
use crate::pipeline::FileCheck;
use crate::problem::{bound_in_place, Problem, MAX_VALUE_CHARS};
use crate::problem_log::{ProblemLog, SpillLog};
use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// What became of a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Dry run: every document is valid.
    Valid,
    /// Dry run: at least one problem.
    Invalid,
    /// Run: every document accepted (or already imported); the file is in done/.
    Done,
    /// Run: the file is in failed/.
    Failed,
    /// Run: the target was unavailable; the file stays in the inbox.
    Unavailable,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Valid => "valid",
            Outcome::Invalid => "invalid",
            Outcome::Done => "done",
            Outcome::Failed => "failed",
            Outcome::Unavailable => "unavailable",
        }
    }
}

#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct Counts {
    pub rows: u64,
    pub documents: u64,
    pub accepted: u64,
    pub rejected: u64,
    pub invalid: u64,
    pub already_imported: u64,
}

/// The contents of `FILE.errors.json` and `FILE.report.json`.
#[derive(Debug, Serialize)]
pub struct FileReport {
    #[serde(serialize_with = "masked")]
    pub file: String,
    pub sha256: String,
    pub mapping: String,
    pub run_id: String,
    pub started: String,
    pub finished: String,
    pub outcome: Outcome,
    pub counts: Counts,
    /// Where the file went (run only).
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "masked_opt")]
    pub moved_to: Option<String>,
    /// Every problem (streamed from a temporary file when there are many).
    #[serde(serialize_with = "masked_problems")]
    pub errors: ProblemLog,
    /// The documents the target accepted in this run, with the ERP's ids.
    #[serde(skip_serializing_if = "SpillLog::is_empty")]
    pub documents: SpillLog<AcceptedDoc>,
}

/// A document the target accepted.
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct AcceptedDoc {
    pub document: String,
    pub line: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
}

fn masked<S: serde::Serializer>(text: &str, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&crate::redact::redact(text))
}

fn masked_opt<S: serde::Serializer>(text: &Option<String>, s: S) -> Result<S::Ok, S::Error> {
    match text {
        Some(t) => masked(t, s),
        None => s.serialize_none(),
    }
}

/// One row of a report as users read it: the problem's message with its location, and
/// the secrets masked in every text.
#[derive(Debug, Serialize)]
pub struct Row {
    pub stage: crate::problem::Stage,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub document: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub column: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    pub code: crate::problem::Code,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
}

impl Row {
    pub fn of(p: Problem) -> Row {
        use crate::redact::{redact_opt, redact_string};
        let message = redact_string(p.message());
        let mut row = Row {
            stage: p.stage,
            document: p.document,
            line: p.line,
            column: p.column,
            field: p.field,
            value: p.value,
            code: p.code,
            message,
            status: p.status,
        };
        if crate::redact::any() {
            redact_opt(&mut row.document);
            redact_opt(&mut row.column);
            redact_opt(&mut row.field);
            redact_opt(&mut row.value);
        }
        row
    }
}

/// The problems as a JSON array of report rows, streamed.
fn masked_problems<S: serde::Serializer>(log: &ProblemLog, s: S) -> Result<S::Ok, S::Error> {
    log.serialize_as(s, Row::of)
}

impl crate::problem_log::Entry for AcceptedDoc {
    /// The key and the ERP's id as the done report shows them (bounded; the ledger keeps
    /// the id whole).
    fn bounded(mut self) -> AcceptedDoc {
        bound_in_place(&mut self.document, MAX_VALUE_CHARS);
        if let Some(id) = &mut self.id {
            bound_in_place(id, MAX_VALUE_CHARS);
        }
        self
    }
}

pub fn timestamp(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

impl FileReport {
    /// A report of a check, with counts for a dry run (`accepted` stays 0).
    /// The check's problems move into the report.
    pub fn from_check(check: &mut FileCheck, run: &str, outcome: Outcome) -> FileReport {
        FileReport {
            file: check.name.clone(),
            sha256: check.sha256.clone(),
            mapping: check.mapping.clone(),
            run_id: run.to_string(),
            started: timestamp(check.started),
            finished: timestamp(check.finished),
            outcome,
            counts: Counts {
                rows: check.rows,
                documents: check.documents,
                accepted: 0,
                rejected: 0,
                invalid: check.invalid,
                already_imported: check.already_imported,
            },
            moved_to: None,
            errors: std::mem::take(&mut check.problems),
            documents: SpillLog::new(),
        }
    }

    /// Writes `NAME.errors.json` and `NAME.errors.csv` into `dir`; returns their paths.
    pub fn write_errors(&self, dir: &Path, name: &str) -> io::Result<(PathBuf, PathBuf)> {
        let json = dir.join(format!("{name}.errors.json"));
        let csv = dir.join(format!("{name}.errors.csv"));
        write_atomic_with(&json, &mut |w| self.write_json(w))?;
        if let Err(e) = write_atomic_with(&csv, &mut |w| self.write_errors_csv(w)) {
            // the two reports go together, or neither
            let _ = std::fs::remove_file(&json);
            return Err(e);
        }
        Ok((json, csv))
    }

    /// Writes the sidecars of a file that is about to be stored as `dir/name`: the error
    /// report for a failed file, the done report otherwise.
    pub fn write_sidecars(&self, dir: &Path, name: &str) -> io::Result<()> {
        match self.outcome {
            Outcome::Failed | Outcome::Invalid => self.write_errors(dir, name).map(|_| ()),
            _ => self.write_done(dir, name).map(|_| ()),
        }
    }

    /// Writes `NAME.report.json` into `dir`.
    pub fn write_done(&self, dir: &Path, name: &str) -> io::Result<PathBuf> {
        let path = dir.join(format!("{name}.report.json"));
        write_atomic_with(&path, &mut |w| self.write_json(w))?;
        Ok(path)
    }

    pub fn to_json(&self) -> Vec<u8> {
        let mut v = Vec::new();
        self.write_json(&mut v).expect("a report serialises");
        v
    }

    /// Writes the report as pretty JSON and a newline, streaming the problems.
    pub fn write_json<W: Write + ?Sized>(&self, out: &mut W) -> io::Result<()> {
        // an I/O error comes back as itself (a full disk stays a full disk)
        serde_json::to_writer_pretty(&mut *out, self)?;
        out.write_all(b"\n")
    }

    /// The error rows as CSV for a spreadsheet (UTF-8 with BOM, so Excel reads it right).
    pub fn errors_csv(&self) -> io::Result<Vec<u8>> {
        let mut out = Vec::new();
        self.write_errors_csv(&mut out)?;
        Ok(out)
    }

    /// Writes the error rows as CSV, streaming the problems.
    pub fn write_errors_csv<W: Write + ?Sized>(&self, out: &mut W) -> io::Result<()> {
        out.write_all("\u{feff}".as_bytes())?;
        let mut w = csv::Writer::from_writer(&mut *out);
        w.write_record([
            "stage", "document", "line", "column", "field", "value", "code", "message", "status",
        ])?;
        self.errors.try_for_each(|p| {
            let r = Row::of(p);
            w.write_record([
                r.stage.as_str(),
                r.document.as_deref().unwrap_or(""),
                &r.line.map(|l| l.to_string()).unwrap_or_default(),
                r.column.as_deref().unwrap_or(""),
                r.field.as_deref().unwrap_or(""),
                r.value.as_deref().unwrap_or(""),
                r.code.as_str(),
                &r.message,
                &r.status.map(|s| s.to_string()).unwrap_or_default(),
            ])?;
            Ok(())
        })?;
        w.flush()?;
        Ok(())
    }
}

/// How many problems of a file the text summary shows.
const SHOWN: usize = 5;

/// A text for the printed summary: secrets masked, control characters escaped (one
/// line stays one line).
fn shown(text: &str) -> String {
    crate::ui::escape_controls(&crate::redact::redact(text), false).into_owned()
}

/// Prints one file's summary line and its first problems.
pub fn print_file_summary<W: Write + ?Sized>(out: &mut W, r: &FileReport) -> io::Result<()> {
    let c = &r.counts;
    write!(
        out,
        "{}: {} ({}): {} rows, {} documents",
        r.outcome.as_str(),
        shown(&r.file),
        r.mapping,
        c.rows,
        c.documents
    )?;
    let valid = c.documents.saturating_sub(c.invalid);
    match r.outcome {
        Outcome::Valid | Outcome::Invalid => write!(out, ", {valid} valid, {} invalid", c.invalid)?,
        _ => write!(
            out,
            ", {} accepted, {} rejected, {} invalid",
            c.accepted, c.rejected, c.invalid
        )?,
    }
    if c.already_imported > 0 {
        write!(out, ", {} already imported", c.already_imported)?;
    }
    writeln!(out)?;
    for p in r.errors.first().iter().take(SHOWN) {
        match &p.document {
            Some(d) => writeln!(out, "  {}: {} [{}]", shown(d), shown(&p.message()), p.code)?,
            None => writeln!(out, "  {} [{}]", shown(&p.message()), p.code)?,
        }
    }
    if r.errors.len() > SHOWN as u64 {
        writeln!(
            out,
            "  ... and {} more problems (see the report)",
            r.errors.len() - SHOWN as u64
        )?;
    }
    Ok(())
}

/// Totals over the files of a command.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Totals {
    pub files: u64,
    pub files_ok: u64,
    pub files_failed: u64,
    pub files_waiting: u64,
    pub rows: u64,
    pub documents: u64,
    pub accepted: u64,
    pub rejected: u64,
    pub invalid: u64,
    pub already_imported: u64,
}

impl Totals {
    pub fn add(&mut self, r: &FileReport) {
        self.files += 1;
        match r.outcome {
            Outcome::Valid | Outcome::Done => self.files_ok += 1,
            Outcome::Invalid | Outcome::Failed => self.files_failed += 1,
            Outcome::Unavailable => self.files_waiting += 1,
        }
        self.rows += r.counts.rows;
        self.documents += r.counts.documents;
        self.accepted += r.counts.accepted;
        self.rejected += r.counts.rejected;
        self.invalid += r.counts.invalid;
        self.already_imported += r.counts.already_imported;
    }
}

/// The JSON printed by `--json`.
#[derive(Debug, Serialize)]
pub struct Summary {
    pub command: String,
    pub run_id: String,
    pub dry_run: bool,
    pub files: Vec<FileReport>,
    pub totals: Totals,
    pub exit_code: i32,
}

impl Summary {
    /// Prints the summary on stdout: all of it as JSON with `--json`, else the totals
    /// line (nothing with `-q`).
    pub fn print(&self, ui: &crate::ui::Ui) {
        if ui.json {
            // streamed: a file's problems may be many
            crate::output::write_with(|w| {
                let mut out = io::BufWriter::with_capacity(64 * 1024, w);
                serde_json::to_writer_pretty(&mut out, self)?;
                out.write_all(b"\n")?;
                out.flush()
            });
            return;
        }
        if ui.quiet {
            return;
        }
        let t = &self.totals;
        match (t.files, self.dry_run) {
            (0, true) => crate::outln!("nothing to check"),
            (0, false) => crate::outln!("nothing to do"),
            (_, true) => crate::outln!(
                "{} files: {} valid, {} invalid; {} documents, {} invalid",
                t.files, t.files_ok, t.files_failed, t.documents, t.invalid
            ),
            (_, false) => crate::outln!(
                "{} files: {} done, {} failed, {} back in the inbox; {} documents accepted, {} rejected, {} invalid, {} already imported",
                t.files, t.files_ok, t.files_failed, t.files_waiting, t.accepted, t.rejected, t.invalid, t.already_imported
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::problem::Code;

    #[test]
    fn errors_json_has_spec_keys_and_csv_has_spec_columns() {
        let r = FileReport {
            file: "INV_1.csv".into(),
            sha256: "ab".into(),
            mapping: "m".into(),
            run_id: "r1".into(),
            started: "s".into(),
            finished: "f".into(),
            outcome: Outcome::Failed,
            counts: Counts::default(),
            moved_to: None,
            errors: vec![Problem::file(Code::Empty, None, "The file is empty")].into(),
            documents: Default::default(),
        };
        let v: serde_json::Value = serde_json::from_slice(&r.to_json()).unwrap();
        for k in [
            "file", "sha256", "mapping", "run_id", "started", "finished", "outcome", "counts",
            "errors",
        ] {
            assert!(v.get(k).is_some(), "{k}");
        }
        for k in [
            "rows",
            "documents",
            "accepted",
            "rejected",
            "invalid",
            "already_imported",
        ] {
            assert!(v["counts"].get(k).is_some(), "{k}");
        }
        let csv = String::from_utf8(r.errors_csv().unwrap()).unwrap();
        let mut lines = csv.lines();
        assert_eq!(
            lines.next().unwrap().trim_start_matches('\u{feff}'),
            "stage,document,line,column,field,value,code,message,status"
        );
        assert_eq!(lines.next().unwrap(), "read,,,,,,empty,The file is empty,");
    }
}
