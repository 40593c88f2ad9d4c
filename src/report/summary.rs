//! The summary printed to the user: a line per file with its first problems, the
//! totals of the command, or all of it as JSON (`--json`).

use super::{Counts, FileReport, Outcome};
use serde::Serialize;
use std::io::{self, Write};

/// How many problems of a file the text summary shows.
const SHOWN: usize = 5;

/// A text for the printed summary: secrets masked, control characters escaped (one
/// line stays one line).
fn shown(text: &str) -> String {
    crate::ui::escape_controls(&crate::redact::redact(text), false).into_owned()
}

/// ` (2 created, 1 updated, 1 deleted)` when something is updated or deleted (a file
/// of creates alone says nothing more).
fn operations(c: &Counts) -> String {
    if !c.has_changes() {
        return String::new();
    }
    format!(
        " ({} created, {} updated, {} deleted)",
        c.created, c.updated, c.deleted
    )
}

/// `create 2, update 1, delete 1`: what a dry run would ask of the ERP.
fn plan(c: &Counts) -> String {
    format!(
        "create {}, update {}, delete {}",
        c.created, c.updated, c.deleted
    )
}

/// What documents sent before with the same content are called: master data that the
/// ERP follows is "unchanged", a drop of invoices seen before "already imported".
fn sent_before(master: bool) -> &'static str {
    if master {
        "unchanged"
    } else {
        "already imported"
    }
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
            ", {} accepted{}, {} rejected, {} invalid",
            c.accepted,
            operations(c),
            c.rejected,
            c.invalid
        )?,
    }
    if c.already_imported > 0 {
        write!(out, ", {} {}", c.already_imported, sent_before(r.master))?;
    }
    if c.held_back > 0 {
        write!(out, ", {} held back", c.held_back)?;
    }
    if c.skipped > 0 {
        write!(out, ", {} rows skipped", c.skipped)?;
    }
    if matches!(r.outcome, Outcome::Valid | Outcome::Invalid) && c.has_changes() {
        write!(out, "; would {}", plan(c))?;
    }
    writeln!(out)?;
    for p in r.errors.first().iter().take(SHOWN) {
        match &p.document {
            Some(d) => writeln!(out, "  {}: {} [{}]", shown(d), shown(&p.message()), p.code)?,
            None => writeln!(out, "  {} [{}]", shown(&p.message()), p.code)?,
        }
    }
    if let Some(note) = &r.note {
        writeln!(out, "  {}", shown(note))?;
    }
    let more = r.errors.len().saturating_sub(SHOWN as u64);
    let dry = matches!(r.outcome, Outcome::Valid | Outcome::Invalid);
    match (&r.report_at, more) {
        (Some(at), 0) if !r.errors.is_empty() => {
            writeln!(out, "  report: {}", shown(&at.display().to_string()))?
        }
        (Some(at), n) if n > 0 => writeln!(
            out,
            "  ... and {n} more problems, all in {}",
            shown(&at.display().to_string())
        )?,
        (None, n) if n > 0 && dry => writeln!(
            out,
            "  ... and {n} more problems (no report was written: `--report DIR` writes them all)"
        )?,
        (None, n) if n > 0 => writeln!(out, "  ... and {n} more problems")?,
        _ => {}
    }
    Ok(())
}

/// Totals over the files of a command.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Totals {
    pub files: u64,
    /// Every file was master data (the totals say "unchanged", not "already imported").
    #[serde(skip)]
    pub master: bool,
    pub files_ok: u64,
    pub files_failed: u64,
    pub files_waiting: u64,
    #[serde(flatten)]
    pub counts: Counts,
}

impl Totals {
    pub fn add(&mut self, r: &FileReport) {
        self.master = r.master && (self.master || self.files == 0);
        self.files += 1;
        match r.outcome {
            Outcome::Valid | Outcome::Done => self.files_ok += 1,
            Outcome::Invalid | Outcome::Failed => self.files_failed += 1,
            Outcome::Unavailable => self.files_waiting += 1,
        }
        self.counts.add(&r.counts);
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
    /// Files left in the inbox for a later pass, each with why.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub waiting: Vec<String>,
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
        let (t, c) = (&self.totals, &self.totals.counts);
        let waiting = waiting_list(&self.waiting);
        match (t.files, self.dry_run) {
            (0, true) => crate::outln!("nothing to check"),
            // `watch` says it every pass: only when asked (-v)
            (0, false) if self.command == "watch" && !ui.verbose => {}
            (0, false) if !waiting.is_empty() => crate::outln!("nothing to do yet: {waiting}"),
            (0, false) => crate::outln!("nothing to do"),
            (_, true) => crate::outln!(
                "{} files: {} valid, {} invalid; {} documents, {} invalid{}{}",
                t.files, t.files_ok, t.files_failed, c.documents, c.invalid,
                if c.has_changes() {
                    format!("; would {}", plan(c))
                } else {
                    String::new()
                },
                skipped(c)
            ),
            (_, false) => crate::outln!(
                "{} files: {} done, {} failed, {} back in the inbox; {} documents accepted{}, {} rejected, {} invalid, {} {}{}{}",
                t.files, t.files_ok, t.files_failed, t.files_waiting, c.accepted, operations(c),
                c.rejected, c.invalid, c.already_imported, sent_before(t.master),
                if c.held_back > 0 {
                    format!(", {} held back by invalid ones", c.held_back)
                } else {
                    String::new()
                },
                skipped(c)
            ),
        }
        if t.files > 0 && !waiting.is_empty() {
            crate::outln!("not yet: {waiting}");
        }
    }
}

/// `2 files waiting: A (why), B (why)`, at most five named.
fn waiting_list(waiting: &[String]) -> String {
    const NAMED: usize = 5;
    if waiting.is_empty() {
        return String::new();
    }
    let n = waiting.len();
    let mut s = format!(
        "{n} {} waiting in the inbox: ",
        if n == 1 { "file" } else { "files" }
    );
    let named: Vec<String> = waiting.iter().take(NAMED).map(|w| shown(w)).collect();
    s.push_str(&named.join(", "));
    if n > NAMED {
        s.push_str(&format!(
            ", and {} more (erpdrop status lists them)",
            n - NAMED
        ));
    }
    s
}

/// `; 3 rows skipped` when `[[skip]]` left rows out.
fn skipped(c: &Counts) -> String {
    if c.skipped > 0 {
        format!("; {} rows skipped", c.skipped)
    } else {
        String::new()
    }
}
