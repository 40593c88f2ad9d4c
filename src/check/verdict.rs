//! What the ledger says of a valid document before it is spooled: new (take it),
//! already accepted with this content (not sent again), or not to be sent (a conflict
//! with what the ERP has, or an earlier attempt whose outcome is unknown).

use crate::ledger::{DocState, Ledger, Operation};
use crate::mapping::{MappedDocument, Mapping, OnChange};
use crate::problem::{quote, Code, Problem, Stage};

/// What the ledger decides about a valid document before it is spooled.
#[derive(Debug)]
pub enum Verdict {
    /// Send it, so.
    Take(Plan),
    /// The ERP has it with this content: not sent again (unchanged).
    AlreadyImported,
    /// Not to be sent: this problem says why.
    Reject(Problem),
}

/// What is asked of the ERP for a document: create it, or update it by its id;
/// `deletions`: how many times the key was deleted before.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub operation: Operation,
    pub erp_id: Option<String>,
    pub deletions: u64,
    /// How many updates of it the ERP accepted before.
    pub updates: u64,
}

impl Plan {
    /// A document the ERP has never had.
    pub const CREATE: Plan = Plan {
        operation: Operation::Create,
        erp_id: None,
        deletions: 0,
        updates: 0,
    };
}

/// The ledger's verdict on a valid document before it is spooled.
pub fn classify(ledger: Option<&Ledger>, mapping: &Mapping, doc: &MappedDocument) -> Verdict {
    let Some(ledger) = ledger else {
        return Verdict::Take(Plan::CREATE);
    };
    // the common case, unchanged, from a glance at the document (its whole row is read
    // only when something is to be done with it)
    match ledger.glance(&mapping.name, &doc.key, &doc.content_hash) {
        Ok(None) => return Verdict::Take(Plan::CREATE),
        Ok(Some(g))
            if g.erp_has_it
                && !(g.state.is_unsettled()
                    && (!g.same_as_last || g.operation == Operation::Delete)) =>
        {
            return Verdict::AlreadyImported
        }
        _ => {}
    }
    let rec = match ledger.document(&mapping.name, &doc.key) {
        Ok(r) => r,
        Err(e) => {
            // the submission asks the ledger again before it sends anything
            tracing::error!("{e}");
            return Verdict::Take(Plan::CREATE);
        }
    };
    let Some(r) = rec else {
        return Verdict::Take(Plan::CREATE);
    };
    let in_doubt = || {
        Verdict::Reject(in_doubt_problem(
            &mapping.name,
            &doc.key,
            doc.line,
            Some(&r),
        ))
    };
    if r.state == DocState::InDoubt
        || (r.state.is_unsettled()
            && (r.content_hash != doc.content_hash || r.operation == Operation::Delete))
    {
        // an earlier attempt with other content, or a delete, has no known outcome; or
        // the ERP's answer left it in doubt (a batch): settled only by an operator
        return in_doubt();
    }
    let deletions = r.deletions.max(0) as u64;
    match &r.erp_hash {
        Some(h) if *h == doc.content_hash => Verdict::AlreadyImported,
        Some(_) if mapping.on_change == OnChange::Update => match &r.target_id {
            Some(id) => Verdict::Take(Plan {
                operation: Operation::Update,
                erp_id: Some(id.clone()),
                deletions,
                updates: r.updates.max(0) as u64,
            }),
            None => Verdict::Reject(
                Problem::new(
                    Stage::Validate,
                    Code::Conflict,
                    format!(
                        "Document {} changed, but the ERP's id for it is not known, so it cannot be updated (the target's id_pointer finds the id in the ERP's answer)",
                        quote(&doc.key)
                    ),
                )
                .with_document(doc.key.clone())
                .with_line(doc.line),
            ),
        },
        Some(_) => {
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
        // never in the ERP, or deleted since: created (again)
        None => Verdict::Take(Plan {
            operation: Operation::Create,
            erp_id: None,
            deletions,
            updates: 0,
        }),
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
    let settle = format!("run `erpdrop resolve {key} --mapping {mapping} --accepted` (the ERP has it; add --id ID) or `--not-sent` (it does not), and reprocess the file");
    // in doubt from the ERP's own answer (a batch that does not say what it created),
    // with that answer kept as the document's last error
    let answered = earlier.filter(|r| r.state == DocState::InDoubt && r.last_status.is_some());
    let msg = match answered.and_then(|r| r.last_error.as_deref()) {
        Some(why) => format!(
            "Document {k} is in doubt since it was sent{when}: {why}; it is not sent again until that is settled. Check the ERP, then {settle}",
            k = quote(key),
        ),
        None => format!(
            "Document {k} was being sent{when} when that run stopped, and now arrives with different content; it is not known whether the ERP has the first version, so neither is sent. Check the ERP, then {settle}",
            k = quote(key),
        ),
    };
    Problem::new(Stage::Validate, Code::InDoubt, msg)
        .with_document(key)
        .with_line(line)
}
