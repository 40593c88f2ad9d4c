//! What the ledger says of a valid document before it is spooled: new (take it),
//! already accepted with this content (not sent again), or not to be sent (a conflict
//! with what the ERP has, or an earlier attempt whose outcome is unknown).

use crate::ledger::{DocState, Ledger};
use crate::mapping::{MappedDocument, Mapping};
use crate::problem::{quote, Code, Problem, Stage};

/// What the ledger decides about a valid document before it is spooled.
pub enum Verdict {
    Take,
    AlreadyImported,
    Reject(Problem),
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
            in_doubt_problem(&mapping.name, &doc.key, doc.line, Some(&r)),
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

/// The problem of a document whose earlier attempt has no known outcome and that
/// arrived with other content: what happened and how to settle it.
pub fn in_doubt_problem(
    mapping: &str,
    key: &str,
    line: u64,
    earlier: Option<&crate::ledger::DocRecord>,
) -> Problem {
    let when = earlier
        .map(|r| {
            let file = r
                .file
                .as_deref()
                .map(|f| format!(" from {f}"))
                .unwrap_or_default();
            format!(
                " (on {}{file})",
                r.updated.get(..19).unwrap_or(&r.updated).replace('T', " ")
            )
        })
        .unwrap_or_default();
    let msg = format!(
        "Document {k} was being sent{when} when that run stopped, and now arrives with different content; it is not known whether the ERP has the first version, so neither is sent. Check the ERP, then run `erpdrop resolve {key} --mapping {mapping} --accepted` (the ERP has it; add --id ID) or `--not-sent` (it does not), and reprocess the file",
        k = quote(key),
    );
    Problem::new(Stage::Validate, Code::InDoubt, msg)
        .with_document(key)
        .with_line(line)
}
