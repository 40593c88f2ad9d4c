//! Reports: `FILE.errors.json`, `FILE.errors.csv` and `FILE.report.json`; the summary
//! printed to the user is in `summary`.
//!
//! Every text of a report and of a summary has the secrets masked as it is written
//! ([`crate::redact`]): the second line of defence behind the target's own masking of
//! what the ERP sends back.

pub mod rejected;
mod rejected_fixed;
mod rejected_json;
mod rejected_ods;
mod rejected_sheet;
mod rejected_trailer;
mod rejected_xls;
mod rejected_xml;
mod summary;

pub use crate::outcome::{AcceptedDoc, Counts, Outcome};
pub use crate::time::timestamp;
pub use summary::{print_file_summary, Summary, Totals};

use crate::check::FileCheck;
use crate::fsutil::write_atomic_with;
use crate::problem::{bound_in_place, Problem, MAX_VALUE_CHARS};
use crate::problem_log::{ProblemLog, SpillLog};
use serde::Serialize;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// The contents of `FILE.errors.json` and `FILE.report.json`.
#[derive(Debug, Serialize)]
pub struct FileReport {
    #[serde(serialize_with = "masked")]
    pub file: String,
    pub sha256: String,
    pub mapping: String,
    /// Master data: documents sent before with the same content are called
    /// "unchanged" in the printed summary (the JSON counts carry both names).
    #[serde(skip)]
    pub master: bool,
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
    /// What the file's counts do not say by themselves: valid documents held back.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// The delimiter of its `errors.csv`.
    #[serde(skip)]
    pub csv_delimiter: u8,
    /// Where its error report was written, for the printed summary (`None`: none was).
    #[serde(skip)]
    pub report_at: Option<PathBuf>,
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

impl FileReport {
    /// A report of a check, with counts for a dry run (`accepted` stays 0).
    /// The check's problems move into the report.
    pub fn from_check(check: &mut FileCheck, run: &str, outcome: Outcome) -> FileReport {
        FileReport {
            file: check.name.clone(),
            sha256: check.sha256.clone(),
            mapping: check.mapping.clone(),
            master: check.master,
            run_id: run.to_string(),
            started: timestamp(check.started),
            finished: timestamp(check.finished),
            outcome,
            counts: check.counts,
            moved_to: None,
            note: held_back_note(&check.counts, outcome),
            csv_delimiter: check.report_delimiter,
            report_at: None,
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
        let mut w = csv::WriterBuilder::new()
            .delimiter(self.csv_delimiter)
            .from_writer(&mut *out);
        w.write_record([
            "stage", "document", "line", "column", "field", "value", "code", "message", "status",
        ])?;
        self.errors.try_for_each(|p| {
            let r = Row::of(p);
            w.write_record([
                r.stage.as_str(),
                &cell(r.document.as_deref().unwrap_or("")),
                &r.line.map(|l| l.to_string()).unwrap_or_default(),
                &cell(r.column.as_deref().unwrap_or("")),
                r.field.as_deref().unwrap_or(""),
                &cell(r.value.as_deref().unwrap_or("")),
                r.code.as_str(),
                &cell(&r.message),
                &r.status.map(|s| s.to_string()).unwrap_or_default(),
            ])?;
            Ok(())
        })?;
        if let Some(note) = &self.note {
            // the last row: finance reads this file, and the counts are not in it
            w.write_record(["submit", "", "", "", "", "", "held_back", note, ""])?;
        }
        w.flush()?;
        Ok(())
    }
}

/// A text for a cell of `errors.csv` that a spreadsheet never runs as a formula: one
/// that begins with `=`, `+`, `-`, `@`, a tab or a carriage return gets a leading `'`
/// (OWASP's advice against CSV injection; Excel shows the text as it was), unless it is
/// a plain number (`-12.50` stays a number).
fn cell(text: &str) -> std::borrow::Cow<'_, str> {
    let risky = text.starts_with(['=', '+', '-', '@', '\t', '\r']);
    if risky && !is_plain_number(text) {
        std::borrow::Cow::Owned(format!("'{text}"))
    } else {
        std::borrow::Cow::Borrowed(text)
    }
}

/// `-12.50`, `+3`, `-1,5`: a sign, digits, at most one decimal separator.
fn is_plain_number(text: &str) -> bool {
    let digits = text.strip_prefix(['-', '+']).unwrap_or(text);
    let mut seps = 0;
    !digits.is_empty()
        && digits.bytes().all(|b| {
            if b == b'.' || b == b',' {
                seps += 1;
                seps == 1
            } else {
                b.is_ascii_digit()
            }
        })
        && digits.as_bytes()[0].is_ascii_digit()
}

/// The sentence for valid documents that a file's invalid ones held back.
fn held_back_note(c: &Counts, outcome: Outcome) -> Option<String> {
    let dry = matches!(outcome, Outcome::Valid | Outcome::Invalid);
    let (were, was) = if dry {
        ("would not be", "would not be")
    } else {
        ("were not", "was not")
    };
    let then = if dry {
        "fix those before the real run"
    } else {
        "fix those and reprocess the file"
    };
    match c.held_back {
        0 => None,
        1 => Some(format!("1 valid document {was} submitted because the file has invalid ones (on_invalid = \"reject-file\"): {then}")),
        n => Some(format!("{n} valid documents {were} submitted because the file has invalid ones (on_invalid = \"reject-file\"): {then}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::problem::{Code, Stage};

    #[test]
    fn a_report_row_leaves_out_empty_keys_and_has_its_location_in_the_message() {
        let p = Problem::file(Code::Empty, None, "The file is empty");
        let json = serde_json::to_string(&Row::of(p)).unwrap();
        assert_eq!(
            json,
            r#"{"stage":"read","code":"empty","message":"The file is empty"}"#
        );
        let p = Problem::new(
            Stage::Validate,
            Code::NotAllowed,
            "Terms code \"F48\" is not in ref/terms.csv",
        )
        .with_document("INV0042")
        .with_line(137)
        .with_column("Terms")
        .with_field("terms")
        .with_value("F48");
        let v = serde_json::to_value(Row::of(p)).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"stage": "validate", "document": "INV0042", "line": 137,
                "column": "Terms", "field": "terms", "value": "F48", "code": "not_allowed",
                "message": "Terms code \"F48\" is not in ref/terms.csv (line 137, column Terms)"})
        );
    }

    #[test]
    fn errors_json_has_spec_keys_and_csv_has_spec_columns() {
        let r = FileReport {
            file: "INV_1.csv".into(),
            sha256: "ab".into(),
            mapping: "m".into(),
            master: false,
            run_id: "r1".into(),
            started: "s".into(),
            finished: "f".into(),
            outcome: Outcome::Failed,
            counts: Counts::default(),
            moved_to: None,
            note: None,
            csv_delimiter: b',',
            report_at: None,
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
