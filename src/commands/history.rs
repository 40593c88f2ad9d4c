//! `erpdrop history KEY [--mapping NAME]` and `erpdrop history --file NAME`: what was
//! sent to the ERP and when, from the ledger's history, oldest first. Reads the ledger
//! without blocking a run that writes it.

use crate::config::Config;
use crate::exit::{Exit, Failure};
use crate::ledger::{HistoryQuery, HistoryRecord, Ledger};
use crate::ui::Ui;

pub fn history(cfg: &Config, ui: &Ui, query: &HistoryQuery<'_>) -> Result<Exit, Failure> {
    let ledger = Ledger::open_read_only(&crate::pass::ledger_path(cfg))?;
    let ops = match &ledger {
        Some(l) => l.history(query)?,
        None => Vec::new(),
    };
    if ui.json {
        crate::outln!(
            "{}",
            serde_json::to_string_pretty(&ops).expect("history serialises")
        );
        return Ok(Exit::Ok);
    }
    if ui.quiet {
        return Ok(Exit::Ok);
    }
    if ops.is_empty() {
        let what = match query {
            HistoryQuery::Document {
                key,
                mapping: Some(m),
            } => format!("document {key:?} of mapping {m:?}"),
            HistoryQuery::Document { key, mapping: None } => format!("document {key:?}"),
            HistoryQuery::File(f) => format!("file {f:?}"),
        };
        let why = if ledger.is_none() {
            " (no ledger yet)"
        } else {
            ""
        };
        crate::outln!("nothing was sent for {what}{why}");
        return Ok(Exit::Ok);
    }
    for op in &ops {
        print_one(op);
    }
    Ok(Exit::Ok)
}

/// One operation: when, what, how it ended, which document, the ERP's id and status,
/// the file; the ERP's message or the decision on the next line.
fn print_one(op: &HistoryRecord) {
    let cut = |s: &str, n: usize| -> String {
        let s = crate::ui::escape_controls(s, false);
        if s.chars().count() <= n {
            s.into_owned()
        } else {
            let mut t: String = s.chars().take(n.saturating_sub(1)).collect();
            t.push('…');
            t
        }
    };
    let time = op.time.get(..19).unwrap_or(&op.time).replace('T', " ");
    let mut line = format!(
        "{time}  {:<7} {:<9} {} ({})",
        op.operation,
        op.outcome,
        cut(&op.key, 30),
        cut(&op.mapping, 20)
    );
    if let Some(id) = &op.id {
        line.push_str(&format!("  id {}", cut(id, 20)));
    }
    if let Some(s) = op.status {
        line.push_str(&format!("  HTTP {s}"));
    }
    if let Some(f) = &op.file {
        line.push_str(&format!("  {}", cut(f, 30)));
    }
    crate::outln!("{line}");
    if let Some(m) = &op.message {
        crate::outln!("    {}", cut(m, 200));
    }
}
