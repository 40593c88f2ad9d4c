//! Every operation on a document, and the operators' decisions, kept for good.

use super::documents::{DocRecord, DocState};
use super::{Ledger, LedgerError};
use rusqlite::params;

/// An operator's decision on a document in doubt ([`Ledger::resolve`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolution {
    /// The ERP has it, with this id where known.
    Accepted { id: Option<String> },
    /// The ERP does not have it.
    NotSent,
}

/// One operation in a document's history.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct HistoryRecord {
    pub time: String,
    pub run_id: Option<String>,
    pub file: Option<String>,
    pub mapping: String,
    pub key: String,
    /// `create`, `update`, `delete`, or `resolve` (an operator's decision).
    pub operation: String,
    pub content_hash: Option<String>,
    pub outcome: String,
    pub status: Option<i64>,
    /// The ERP's id.
    pub id: Option<String>,
    pub message: Option<String>,
    /// Who decided, for an operator's decision.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
}

/// Which operations [`Ledger::history`] gives.
#[derive(Debug, Clone, Copy)]
pub enum HistoryQuery<'a> {
    /// Of one document: its key, of one mapping or of any.
    Document {
        key: &'a str,
        mapping: Option<&'a str>,
    },
    /// Of the documents of one file (by the name it arrived under).
    File(&'a str),
}

impl Ledger {
    /// An operator's decision on a document whose earlier attempt has no known outcome:
    /// the ERP has it (`accepted`, with its id where known) or it does not (the next
    /// run sends the file's content). Recorded in the document and in its history, with
    /// who decided and when, in one transaction.
    pub fn resolve(
        &self,
        mapping: &str,
        key: &str,
        decision: Resolution,
        actor: &str,
    ) -> Result<DocRecord, LedgerError> {
        self.in_transaction(|| {
            let Some(doc) = self.document(mapping, key)? else {
                return Err(LedgerError::NotFound {
                    mapping: mapping.to_string(),
                    key: key.to_string(),
                });
            };
            let when = self.now();
            let (state, id, outcome, message) = match &decision {
                Resolution::Accepted { id } => (
                    DocState::Accepted,
                    id.clone(),
                    "accepted",
                    format!("resolved by {actor} on {when}: the ERP has it"),
                ),
                Resolution::NotSent => (
                    DocState::NotSent,
                    None,
                    "not_sent",
                    format!(
                        "resolved by {actor} on {when}: the ERP does not have it; the next run sends the file's content"
                    ),
                ),
            };
            let last_error = (state != DocState::Accepted).then_some(message.as_str());
            // accepted: the ERP has what was in flight (or, for a delete, nothing)
            self.conn
                .execute(super::documents::OUTCOME, params![mapping, key, state.as_str(), id, last_error, None::<i64>, when])
                .map_err(|e| self.sql(e))?;
            self.record_history(&HistoryRecord {
                time: when.clone(),
                run_id: None,
                file: doc.file.clone(),
                mapping: mapping.to_string(),
                key: key.to_string(),
                operation: "resolve".to_string(),
                content_hash: Some(doc.content_hash.clone()),
                outcome: outcome.to_string(),
                status: None,
                id: id.or(doc.target_id.clone()),
                message: Some(message),
                actor: Some(actor.to_string()),
            })?;
            Ok(self.document(mapping, key)?.unwrap_or(doc))
        })
    }

    /// Appends one operation to the history.
    pub fn record_history(&self, h: &HistoryRecord) -> Result<(), LedgerError> {
        self.conn
            .prepare_cached(
                "INSERT INTO history (time, run_id, file, mapping, key, operation, content_hash,
                   outcome, status, erp_id, message, actor)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
            )
            .and_then(|mut st| {
                st.execute(params![
                    h.time,
                    h.run_id,
                    h.file,
                    h.mapping,
                    h.key,
                    h.operation,
                    h.content_hash,
                    h.outcome,
                    h.status,
                    h.id,
                    h.message,
                    h.actor
                ])
            })
            .map(|_| ())
            .map_err(|e| self.sql(e))
    }

    /// The history of a document, oldest first.
    pub fn history_of(&self, mapping: &str, key: &str) -> Result<Vec<HistoryRecord>, LedgerError> {
        self.history(&HistoryQuery::Document {
            key,
            mapping: Some(mapping),
        })
    }

    /// The operations a query asks for, oldest first.
    pub fn history(&self, q: &HistoryQuery<'_>) -> Result<Vec<HistoryRecord>, LedgerError> {
        const SELECT: &str = "SELECT time, run_id, file, mapping, key, operation, content_hash,
               outcome, status, erp_id, message, actor FROM history";
        match *q {
            HistoryQuery::Document {
                key,
                mapping: Some(m),
            } => self.rows(
                &format!("{SELECT} WHERE mapping = ?1 AND key = ?2 ORDER BY seq"),
                params![m, key],
                row_to_history,
            ),
            HistoryQuery::Document { key, mapping: None } => self.rows(
                &format!("{SELECT} WHERE key = ?1 ORDER BY seq"),
                params![key],
                row_to_history,
            ),
            HistoryQuery::File(name) => self.rows(
                &format!("{SELECT} WHERE file = ?1 ORDER BY seq"),
                params![name],
                row_to_history,
            ),
        }
    }
}

fn row_to_history(r: &rusqlite::Row<'_>) -> rusqlite::Result<HistoryRecord> {
    Ok(HistoryRecord {
        time: r.get(0)?,
        run_id: r.get(1)?,
        file: r.get(2)?,
        mapping: r.get(3)?,
        key: r.get(4)?,
        operation: r.get(5)?,
        content_hash: r.get(6)?,
        outcome: r.get(7)?,
        status: r.get(8)?,
        id: r.get(9)?,
        message: r.get(10)?,
        actor: r.get(11)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::Claim;

    #[test]
    fn other_content_after_an_unknown_outcome_is_in_doubt_until_resolved() {
        let d = tempfile::tempdir().unwrap();
        let l = Ledger::open(&d.path().join("ledger.sqlite")).unwrap();
        let claim = |k: &str, h: &str| {
            l.doc_writer()
                .unwrap()
                .claim(&crate::ledger::Attempt {
                    mapping: "m",
                    key: k,
                    content_hash: h,
                    operation: crate::ledger::Operation::Create,
                    file: "f.csv",
                    run_id: "r",
                })
                .unwrap()
        };
        let get = |k: &str| l.document("m", k).unwrap().unwrap();
        // a dead run left K1 in flight with h1
        assert_eq!(claim("K1", "h1"), Claim::Send);
        // the same content is sent again (same idempotency key); other content is not
        assert_eq!(claim("K1", "h1"), Claim::Resend);
        assert_eq!(claim("K1", "h2"), Claim::InDoubt);
        assert_eq!(
            get("K1").content_hash,
            "h1",
            "the ledger keeps what was in flight"
        );
        // it stays in doubt: validation never marks it invalid over that
        l.mark_in_doubt("m", "K1", "check the ERP", "f.csv", "r")
            .unwrap();
        l.mark_invalid("m", "K1", "bad", "g.csv", "r2").unwrap();
        assert_eq!(get("K1").state, DocState::InDoubt);
        assert_eq!(claim("K1", "h3"), Claim::InDoubt);
        // an operator: the ERP does not have it; then the new content goes
        let r = l.resolve("m", "K1", Resolution::NotSent, "alice").unwrap();
        assert_eq!(r.state, DocState::NotSent);
        assert_eq!(claim("K1", "h3"), Claim::Send);
        assert_eq!(get("K1").content_hash, "h3");
        // or: the ERP has it, with its id; then it counts as accepted
        assert_eq!(claim("K2", "h1"), Claim::Send);
        let r = l
            .resolve(
                "m",
                "K2",
                Resolution::Accepted {
                    id: Some("77".into()),
                },
                "bob",
            )
            .unwrap();
        assert_eq!(
            (r.state, r.target_id.as_deref()),
            (DocState::Accepted, Some("77"))
        );
        assert_eq!(claim("K2", "h1"), Claim::AlreadyImported);
        // both decisions are in the history, with who made them
        let h = l.history_of("m", "K2").unwrap();
        assert_eq!(h.len(), 1);
        assert_eq!(
            (h[0].operation.as_str(), h[0].outcome.as_str()),
            ("resolve", "accepted")
        );
        assert_eq!(h[0].actor.as_deref(), Some("bob"));
        assert_eq!(h[0].id.as_deref(), Some("77"));
        assert!(matches!(
            l.resolve("m", "nope", Resolution::NotSent, "x"),
            Err(LedgerError::NotFound { .. })
        ));
    }
}
