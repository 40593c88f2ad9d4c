//! What the ledger knows of each document, and the statements that change it.
//!
//! A document's row says what the ERP has of it (`erp_hash`, `target_id`: the content
//! and the id of the last create or update it accepted; none after a delete), and what
//! the last attempt was (`operation`, `content_hash`, `state`). Every answer is also
//! appended to the history (see [`history`](super::history)).

use super::{Ledger, LedgerError};
use crate::problem::{bound, MAX_MESSAGE_CHARS};
use rusqlite::{params, OptionalExtension};

/// A document's state: the outcome of its last attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DocState {
    Accepted,
    Rejected,
    Invalid,
    /// Marked before it was submitted; the outcome is not known yet (or a run died).
    InFlight,
    /// Was in flight when a run died and then arrived with other content: whether the
    /// ERP has the first version is unknown, so neither is sent until an operator
    /// (`erpdrop resolve`) or the ERP says.
    InDoubt,
    /// Known not to have reached the ERP (an operator said so, or its turn never came):
    /// the next run sends the file's content.
    NotSent,
    /// Deleted in the ERP (a snapshot no longer listed it): forgotten; if the key comes
    /// back it is created again.
    Deleted,
}

impl DocState {
    pub fn as_str(self) -> &'static str {
        match self {
            DocState::Accepted => "accepted",
            DocState::Rejected => "rejected",
            DocState::Invalid => "invalid",
            DocState::InFlight => "in_flight",
            DocState::InDoubt => "in_doubt",
            DocState::NotSent => "not_sent",
            DocState::Deleted => "deleted",
        }
    }

    /// A state as stored; `None` for a text this build does not know.
    pub fn parse(s: &str) -> Option<DocState> {
        Some(match s {
            "accepted" => DocState::Accepted,
            "rejected" => DocState::Rejected,
            "invalid" => DocState::Invalid,
            "in_flight" => DocState::InFlight,
            "in_doubt" => DocState::InDoubt,
            "not_sent" => DocState::NotSent,
            "deleted" => DocState::Deleted,
            _ => return None,
        })
    }

    /// Whether an earlier attempt of the document may have reached the ERP without its
    /// answer being known: its content may not change before that is settled.
    pub fn is_unsettled(self) -> bool {
        matches!(self, DocState::InFlight | DocState::InDoubt)
    }
}

/// What is asked of the ERP for a document.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Operation {
    /// A document the ERP does not have (never sent, or deleted since).
    #[default]
    Create,
    /// New content for a document the ERP has, by the id it gave it.
    Update,
    /// A document the ERP has and the source no longer lists.
    Delete,
}

impl Operation {
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Create => "create",
            Operation::Update => "update",
            Operation::Delete => "delete",
        }
    }

    /// An operation as stored; `None` for a text this build does not know.
    pub fn parse(s: &str) -> Option<Operation> {
        Some(match s {
            "create" => Operation::Create,
            "update" => Operation::Update,
            "delete" => Operation::Delete,
            _ => return None,
        })
    }
}

/// What the ledger knows of a document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocRecord {
    pub mapping: String,
    pub key: String,
    /// The content of the last attempt.
    pub content_hash: String,
    pub state: DocState,
    /// The ERP's id for it.
    pub target_id: Option<String>,
    pub attempts: i64,
    pub last_error: Option<String>,
    pub last_status: Option<i64>,
    pub file: Option<String>,
    pub run_id: Option<String>,
    pub updated: String,
    /// The content the ERP has: that of the last create or update it accepted; `None`
    /// when it has nothing (never accepted, or deleted).
    pub erp_hash: Option<String>,
    /// The operation of the last attempt.
    pub operation: Operation,
    /// How many times the ERP deleted it (a key that comes back is a new document).
    pub deletions: i64,
    /// How many updates of it the ERP accepted (each update is a new request).
    pub updates: i64,
    /// How many attempts in a row failed (rejected or invalid): what `[retry]` counts.
    pub failures: i64,
}

impl DocRecord {
    /// Whether the ERP has this document (with some content).
    pub fn in_erp(&self) -> bool {
        self.erp_hash.is_some()
    }
}

/// One attempt at a document, as the ledger records it before it goes.
#[derive(Debug, Clone, Copy)]
pub struct Attempt<'a> {
    pub mapping: &'a str,
    pub key: &'a str,
    /// The content sent (for a delete: the content the ERP has).
    pub content_hash: &'a str,
    pub operation: Operation,
    pub file: &'a str,
    pub run_id: &'a str,
}

macro_rules! columns {
    () => {
        "mapping, key, content_hash, state, target_id, attempts, last_error, last_status, file, run_id, updated, erp_hash, operation, deletions, failures, updates"
    };
}
const COLUMNS: &str = columns!();

/// Marks a document in flight, one more attempt: mapping, key, content hash, file,
/// run, time, operation. The state it had is kept in `prior_state`, so that an attempt
/// that is then known not to have been made ([`NOT_SENT`]) does not forget an earlier
/// one whose outcome is unknown.
macro_rules! in_flight_upsert {
    () => {
        "INSERT INTO documents (mapping, key, content_hash, state, attempts, file, run_id, updated, operation)
         VALUES (?1, ?2, ?3, 'in_flight', 1, ?4, ?5, ?6, ?7)
         ON CONFLICT (mapping, key) DO UPDATE SET
           prior_state = documents.state,
           content_hash = excluded.content_hash, state = 'in_flight',
           attempts = documents.attempts + 1, file = excluded.file,
           run_id = excluded.run_id, updated = excluded.updated,
           operation = excluded.operation"
    };
}

/// Marks a document in flight unless the ERP has it with this content already (a
/// create or update), or has nothing to delete (a delete), or an earlier attempt with
/// other content has no known outcome (never sent again under another idempotency
/// key), or it is in doubt (only an operator, or the ERP, settles that).
const CLAIM: &str = concat!(
    in_flight_upsert!(),
    " WHERE NOT (excluded.operation <> 'delete'
                AND documents.erp_hash IS NOT NULL
                AND documents.erp_hash = excluded.content_hash)
        AND NOT (excluded.operation = 'delete' AND documents.erp_hash IS NULL)
        AND documents.state <> 'in_doubt'
        AND NOT (documents.state = 'in_flight'
                AND documents.content_hash <> excluded.content_hash)
     RETURNING coalesce(prior_state IN ('in_flight', 'in_doubt'), 0)"
);

/// A document marked in flight was not delivered (the target was down, or the run
/// stopped, before it went out): not sent, unless an earlier attempt's outcome is still
/// unknown (then it stays in flight). Mapping, key, reason, time.
pub(super) const NOT_SENT: &str = "UPDATE documents SET
       state = CASE WHEN prior_state IN ('in_flight', 'in_doubt') THEN 'in_flight' ELSE 'not_sent' END,
       last_error = ?3, last_status = NULL, updated = ?4
     WHERE mapping = ?1 AND key = ?2";

/// Records the target's answer: mapping, key, state, target id (kept when none),
/// error, HTTP status, time. An accepted create or update gives the ERP that content;
/// an accepted delete takes it away (the document is deleted, once more).
pub(super) const OUTCOME: &str = "UPDATE documents SET
       state = CASE WHEN ?3 = 'accepted' AND operation = 'delete' THEN 'deleted' ELSE ?3 END,
       erp_hash = CASE WHEN ?3 <> 'accepted' THEN erp_hash
                       WHEN operation = 'delete' THEN NULL
                       ELSE content_hash END,
       deletions = deletions + (CASE WHEN ?3 = 'accepted' AND operation = 'delete' THEN 1 ELSE 0 END),
       updates = updates + (CASE WHEN ?3 = 'accepted' AND operation = 'update' THEN 1 ELSE 0 END),
       failures = CASE ?3 WHEN 'rejected' THEN failures + 1 WHEN 'accepted' THEN 0 ELSE failures END,
       target_id = coalesce(?4, target_id),
       last_error = ?5, last_status = ?6, updated = ?7
     WHERE mapping = ?1 AND key = ?2";

/// Appends the answer just recorded for a document to its history: time, run, file,
/// outcome, status, id, message, mapping, key (operation and content from its row).
const HISTORY: &str =
    "INSERT INTO history (time, run_id, file, mapping, key, operation, content_hash,
       outcome, status, erp_id, message)
     SELECT ?1, ?2, ?3, mapping, key, operation, content_hash, ?4, ?5, coalesce(?6, target_id), ?7
     FROM documents WHERE mapping = ?8 AND key = ?9";

/// Whether a document's content is what the ERP has, read without its whole row: the
/// one question a check asks of every document of every file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Glance {
    pub state: DocState,
    /// The last attempt was of this content.
    pub same_as_last: bool,
    /// The ERP has this content.
    pub erp_has_it: bool,
    pub operation: Operation,
}

impl Ledger {
    /// A [`Glance`] at a document: is `content_hash` what the ERP has of it?
    pub fn glance(
        &self,
        mapping: &str,
        key: &str,
        content_hash: &str,
    ) -> Result<Option<Glance>, LedgerError> {
        self.conn
            .prepare_cached(
                "SELECT state, content_hash = ?3, coalesce(erp_hash = ?3, 0), operation
                 FROM documents WHERE mapping = ?1 AND key = ?2",
            )
            .and_then(|mut st| {
                st.query_row(params![mapping, key, content_hash], |r| {
                    let text = |i: usize| -> rusqlite::Result<Option<&str>> {
                        match r.get_ref(i)? {
                            rusqlite::types::ValueRef::Null => Ok(None),
                            v => v.as_str().map(Some).map_err(Into::into),
                        }
                    };
                    let unknown = |i: usize, text: &str| {
                        rusqlite::Error::FromSqlConversionFailure(
                            i,
                            rusqlite::types::Type::Text,
                            format!("unknown document state or operation {text:?} (a newer erpdrop wrote it?)").into(),
                        )
                    };
                    let state = text(0)?.unwrap_or_default();
                    let state = DocState::parse(state).ok_or_else(|| unknown(0, state))?;
                    let operation = match text(3)? {
                        None => Operation::Create,
                        Some(o) => Operation::parse(o).ok_or_else(|| unknown(3, o))?,
                    };
                    Ok(Glance {
                        state,
                        same_as_last: r.get(1)?,
                        erp_has_it: r.get(2)?,
                        operation,
                    })
                })
                .optional()
            })
            .map_err(|e| self.sql(e))
    }

    /// What the ledger knows of a document.
    pub fn document(&self, mapping: &str, key: &str) -> Result<Option<DocRecord>, LedgerError> {
        self.conn
            // a literal: asked once per document of every file
            .prepare_cached(concat!(
                "SELECT ",
                columns!(),
                " FROM documents WHERE mapping = ?1 AND key = ?2"
            ))
            .and_then(|mut st| st.query_row(params![mapping, key], row_to_doc).optional())
            .map_err(|e| self.sql(e))
    }

    /// The statements that write a document's state, prepared once for a whole
    /// submission (looking a statement up in the cache per document was a sixth of
    /// their time).
    pub fn doc_writer(&self) -> Result<DocWriter<'_>, LedgerError> {
        let prepare = |sql| self.conn.prepare_cached(sql).map_err(|e| self.sql(e));
        Ok(DocWriter {
            ledger: self,
            in_flight: prepare(in_flight_upsert!())?,
            claim: prepare(CLAIM)?,
            outcome: prepare(OUTCOME)?,
            not_sent: prepare(NOT_SENT)?,
            history: prepare(HISTORY)?,
        })
    }

    /// Records a document that failed validation (never over an accepted one, nor over
    /// one whose earlier attempt has no known outcome: that must stay known).
    pub fn mark_invalid(
        &self,
        mapping: &str,
        key: &str,
        error: &str,
        file: &str,
        run_id: &str,
    ) -> Result<(), LedgerError> {
        self.conn
            .prepare_cached(
                "INSERT INTO documents (mapping, key, content_hash, state, attempts, last_error, file, run_id, updated, failures)
                 VALUES (?1, ?2, '', 'invalid', 0, ?3, ?4, ?5, ?6, 1)
                 ON CONFLICT (mapping, key) DO UPDATE SET
                   state = 'invalid', last_error = excluded.last_error, last_status = NULL,
                   failures = documents.failures + 1,
                   file = excluded.file, run_id = excluded.run_id, updated = excluded.updated
                 WHERE documents.state NOT IN ('accepted', 'in_flight', 'in_doubt')",
            )
            .and_then(|mut st| {
                let error = crate::redact::redact(error);
                let error = bound(&error, MAX_MESSAGE_CHARS);
                st.execute(params![mapping, key, error, file, run_id, self.now()])
            })
            .map(|_| ())
            .map_err(|e| self.sql(e))
    }

    /// Marks a document whose earlier attempt has no known outcome as in doubt (it
    /// arrived with other content); `message` says what to do. A document that the
    /// ERP's answer left in doubt (it has a status) keeps that answer.
    pub fn mark_in_doubt(
        &self,
        mapping: &str,
        key: &str,
        message: &str,
        file: &str,
        run_id: &str,
    ) -> Result<(), LedgerError> {
        self.conn
            .prepare_cached(
                "UPDATE documents SET state = 'in_doubt', last_error = ?3, last_status = NULL, updated = ?4
                 WHERE mapping = ?1 AND key = ?2
                   AND (state = 'in_flight' OR (state = 'in_doubt' AND last_status IS NULL))",
            )
            .and_then(|mut st| st.execute(params![mapping, key, message, self.now()]))
            .map(|_| ())
            .map_err(|e| self.sql(e))?;
        tracing::debug!(mapping, key, file, run = run_id, "in doubt");
        Ok(())
    }

    /// The documents of every mapping with this key.
    pub fn documents_with_key(&self, key: &str) -> Result<Vec<DocRecord>, LedgerError> {
        self.rows(
            &format!("SELECT {COLUMNS} FROM documents WHERE key = ?1 ORDER BY mapping"),
            params![key],
            row_to_doc,
        )
    }

    /// Documents whose last attempt failed or is not settled (rejected, invalid, in
    /// flight, in doubt, not sent), newest first.
    pub fn failed_documents(&self, limit: usize) -> Result<Vec<DocRecord>, LedgerError> {
        // `state <> 'accepted'` as written lets SQLite read the open index; documents
        // of one file share their millisecond: the file and key keep the list the same
        // from one call to the next
        self.rows(
            &format!(
                "SELECT {COLUMNS} FROM documents WHERE state <> 'accepted' AND state <> 'deleted'
                 ORDER BY updated DESC, file DESC, key DESC LIMIT ?1"
            ),
            params![limit as i64],
            row_to_doc,
        )
    }

    /// Creates whose last attempt has no known outcome (in flight or in doubt), oldest
    /// first: the ones an ERP can be asked about.
    pub fn unsettled_creates(&self, limit: usize) -> Result<Vec<DocRecord>, LedgerError> {
        self.rows(
            &format!(
                "SELECT {COLUMNS} FROM documents WHERE state IN ('in_flight', 'in_doubt')
                   AND coalesce(operation, 'create') = 'create'
                 ORDER BY updated LIMIT ?1"
            ),
            params![limit as i64],
            row_to_doc,
        )
    }

    /// Counts of documents by state (states with none are left out).
    pub fn document_counts(&self) -> Result<Vec<(String, i64)>, LedgerError> {
        // the open states from their index; accepted = all (the primary key's index)
        // minus those, without reading the table
        let mut counts: Vec<(String, i64)> = self.rows(
            "SELECT state, count(*) FROM documents WHERE state <> 'accepted' GROUP BY state",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        let all: i64 = self
            .conn
            .query_row("SELECT count(*) FROM documents", [], |r| r.get(0))
            .map_err(|e| self.sql(e))?;
        let accepted = all - counts.iter().map(|(_, n)| n).sum::<i64>();
        if accepted > 0 {
            counts.push((DocState::Accepted.as_str().to_string(), accepted));
        }
        counts.sort();
        Ok(counts)
    }
}

/// Marks documents in flight and records their outcomes with statements prepared once
/// (see [`Ledger::doc_writer`]); reads and the ledger's other writes go through
/// `ledger`.
pub struct DocWriter<'a> {
    pub ledger: &'a Ledger,
    in_flight: rusqlite::CachedStatement<'a>,
    claim: rusqlite::CachedStatement<'a>,
    outcome: rusqlite::CachedStatement<'a>,
    not_sent: rusqlite::CachedStatement<'a>,
    history: rusqlite::CachedStatement<'a>,
}

/// An answer of the target, as [`DocWriter::record`] keeps it.
#[derive(Debug, Clone, Copy)]
pub struct Answer<'a> {
    pub mapping: &'a str,
    pub key: &'a str,
    /// Accepted, rejected, or in flight (maybe delivered: the outcome is unknown).
    pub state: DocState,
    pub target_id: Option<&'a str>,
    pub error: Option<&'a str>,
    pub status: Option<u16>,
    pub file: &'a str,
    pub run_id: &'a str,
}

impl DocWriter<'_> {
    /// Marks a document in flight (one more attempt) before it is submitted.
    pub fn mark_in_flight(&mut self, a: &Attempt<'_>) -> Result<(), LedgerError> {
        upsert_in_flight(self.ledger, &mut self.in_flight, a).map(|_| ())
    }

    /// Marks a document in flight unless the ERP has it with this content already, or
    /// an earlier attempt with other content has no known outcome: one statement
    /// instead of [`Ledger::document`] and [`mark_in_flight`](DocWriter::mark_in_flight),
    /// for a target that cannot tell whether it already has a document left in flight.
    /// Nothing changes unless the answer is [`Claim::Send`].
    pub fn claim(&mut self, a: &Attempt<'_>) -> Result<Claim, LedgerError> {
        let unsettled: Option<bool> = self
            .claim
            .query_row(
                params![
                    a.mapping,
                    a.key,
                    a.content_hash,
                    a.file,
                    a.run_id,
                    self.ledger.now(),
                    a.operation.as_str()
                ],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| self.ledger.sql(e))?;
        match unsettled {
            Some(false) => return Ok(Claim::Send),
            Some(true) => return Ok(Claim::Resend),
            None => {}
        }
        // not claimed: which reason (rare: validation saw it first)
        Ok(match self.ledger.document(a.mapping, a.key)? {
            Some(r)
                if r.state == DocState::InDoubt
                    || (r.state.is_unsettled() && r.content_hash != a.content_hash) =>
            {
                Claim::InDoubt
            }
            _ => Claim::AlreadyImported,
        })
    }

    /// Records that a document marked in flight did not go out (see `NOT_SENT`).
    pub fn mark_not_sent(
        &mut self,
        mapping: &str,
        key: &str,
        reason: &str,
    ) -> Result<(), LedgerError> {
        let now = self.ledger.now();
        self.not_sent
            .execute(params![mapping, key, reason, now])
            .map(|_| ())
            .map_err(|e| self.ledger.sql(e))
    }

    /// Records the target's answer for a document in flight, without a history line
    /// (an answer the ledger settles on its own, or a test's).
    pub fn mark_outcome(
        &mut self,
        mapping: &str,
        key: &str,
        state: DocState,
        target_id: Option<&str>,
        error: Option<&str>,
        status: Option<u16>,
    ) -> Result<(), LedgerError> {
        let now = self.ledger.now();
        // the ERP's words and id: secrets masked (the target masks them already)
        let target_id = target_id.map(crate::redact::redact);
        let error = error.map(crate::redact::redact);
        self.outcome
            .execute(params![
                mapping,
                key,
                state.as_str(),
                target_id,
                error.as_deref().map(|e| bound(e, MAX_MESSAGE_CHARS)),
                status.map(i64::from),
                now
            ])
            .map(|_| ())
            .map_err(|e| self.ledger.sql(e))
    }

    /// Records the target's answer for a document in flight, and appends it to the
    /// document's history.
    pub fn record(&mut self, a: &Answer<'_>) -> Result<(), LedgerError> {
        self.mark_outcome(a.mapping, a.key, a.state, a.target_id, a.error, a.status)?;
        let outcome = match a.state {
            DocState::InFlight => "unknown",
            s => s.as_str(),
        };
        let now = self.ledger.now();
        let id = a.target_id.map(crate::redact::redact);
        let message = a
            .error
            .map(|e| bound(&crate::redact::redact(e), MAX_MESSAGE_CHARS).into_owned());
        self.history
            .execute(params![
                now,
                a.run_id,
                a.file,
                outcome,
                a.status.map(i64::from),
                id,
                message,
                a.mapping,
                a.key
            ])
            .map(|_| ())
            .map_err(|e| self.ledger.sql(e))
    }
}

/// What [`DocWriter::claim`] decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// Marked in flight: send it.
    Send,
    /// Marked in flight, but an earlier attempt of this content has no known outcome
    /// (a timeout after the request went out, a run that died with it in flight): the
    /// ERP may have it already. Sent with the same idempotency key, after asking the ERP
    /// where the target can (`verify`).
    Resend,
    /// The ERP has it with this content already (or, for a delete, has nothing).
    AlreadyImported,
    /// An earlier attempt with other content has no known outcome.
    InDoubt,
}

/// Runs an [`in_flight_upsert!`] statement; the number of rows it changed.
fn upsert_in_flight(
    ledger: &Ledger,
    st: &mut rusqlite::CachedStatement<'_>,
    a: &Attempt<'_>,
) -> Result<usize, LedgerError> {
    st.execute(params![
        a.mapping,
        a.key,
        a.content_hash,
        a.file,
        a.run_id,
        ledger.now(),
        a.operation.as_str()
    ])
    .map_err(|e| ledger.sql(e))
}

pub(super) fn row_to_doc(r: &rusqlite::Row<'_>) -> rusqlite::Result<DocRecord> {
    let bad = |i: usize, what: &str, text: &str| {
        rusqlite::Error::FromSqlConversionFailure(
            i,
            rusqlite::types::Type::Text,
            format!("unknown document {what} {text:?} (a newer erpdrop wrote it?)").into(),
        )
    };
    let state: String = r.get(3)?;
    let state = DocState::parse(&state).ok_or_else(|| bad(3, "state", &state))?;
    let operation: Option<String> = r.get(12)?;
    let operation = match operation.as_deref() {
        None => Operation::Create,
        Some(o) => Operation::parse(o).ok_or_else(|| bad(12, "operation", o))?,
    };
    Ok(DocRecord {
        mapping: r.get(0)?,
        key: r.get(1)?,
        content_hash: r.get(2)?,
        state,
        target_id: r.get(4)?,
        attempts: r.get(5)?,
        last_error: r.get(6)?,
        last_status: r.get(7)?,
        file: r.get(8)?,
        run_id: r.get(9)?,
        updated: r.get(10)?,
        erp_hash: r.get(11)?,
        operation,
        deletions: r.get(13)?,
        failures: r.get(14)?,
        updates: r.get(15)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::FileRecord;

    /// A create of `key` with content `hash` from `file` in `run`, of mapping `m`.
    fn att<'a>(
        m: &'a str,
        key: &'a str,
        hash: &'a str,
        file: &'a str,
        run: &'a str,
    ) -> Attempt<'a> {
        Attempt {
            mapping: m,
            key,
            content_hash: hash,
            operation: Operation::Create,
            file,
            run_id: run,
        }
    }

    #[test]
    fn a_glance_says_whether_the_erp_has_this_content() {
        let d = tempfile::tempdir().unwrap();
        let l = Ledger::open(&d.path().join("ledger.sqlite")).unwrap();
        assert_eq!(l.glance("m", "K1", "h1").unwrap(), None);
        let mut w = l.doc_writer().unwrap();
        w.mark_in_flight(&att("m", "K1", "h1", "f.csv", "r1"))
            .unwrap();
        let g = l.glance("m", "K1", "h1").unwrap().unwrap();
        // in flight: the ERP has nothing of it yet
        assert_eq!(
            (g.state, g.same_as_last, g.erp_has_it, g.operation),
            (DocState::InFlight, true, false, Operation::Create)
        );
        w.mark_outcome("m", "K1", DocState::Accepted, Some("7"), None, None)
            .unwrap();
        let g = l.glance("m", "K1", "h1").unwrap().unwrap();
        assert_eq!((g.state, g.erp_has_it), (DocState::Accepted, true));
        let g = l.glance("m", "K1", "h2").unwrap().unwrap();
        assert_eq!((g.same_as_last, g.erp_has_it), (false, false));
        // another mapping's key is another document
        assert_eq!(l.glance("other", "K1", "h1").unwrap(), None);
    }

    #[test]
    fn documents_move_through_states() {
        let d = tempfile::tempdir().unwrap();
        let l = Ledger::open(&d.path().join("ledger.sqlite")).unwrap();
        assert!(l.document("m", "K1").unwrap().is_none());
        l.doc_writer()
            .unwrap()
            .mark_in_flight(&att("m", "K1", "h1", "f.csv", "r1"))
            .unwrap();
        assert_eq!(
            l.document("m", "K1").unwrap().unwrap().state,
            DocState::InFlight
        );
        l.doc_writer()
            .unwrap()
            .mark_outcome("m", "K1", DocState::Accepted, Some("42"), None, None)
            .unwrap();
        let rec = l.document("m", "K1").unwrap().unwrap();
        assert_eq!(rec.state, DocState::Accepted);
        assert_eq!(rec.target_id.as_deref(), Some("42"));
        assert_eq!(rec.attempts, 1);
        // an invalid copy never overwrites an accepted document
        l.mark_invalid("m", "K1", "bad", "g.csv", "r2").unwrap();
        assert_eq!(
            l.document("m", "K1").unwrap().unwrap().state,
            DocState::Accepted
        );
    }

    #[test]
    fn errors_are_stored_bounded() {
        let d = tempfile::tempdir().unwrap();
        let l = Ledger::open(&d.path().join("ledger.sqlite")).unwrap();
        let long = "e".repeat(50_000);
        let bounded = |s: Option<String>| {
            let s = s.unwrap();
            assert_eq!(s.chars().count(), MAX_MESSAGE_CHARS);
            assert!(s.ends_with(" more characters)"), "{s}");
        };
        l.mark_invalid("m", "K1", &long, "f.csv", "r1").unwrap();
        bounded(l.document("m", "K1").unwrap().unwrap().last_error);
        let mut w = l.doc_writer().unwrap();
        w.mark_in_flight(&att("m", "K2", "h", "f.csv", "r1"))
            .unwrap();
        w.mark_outcome("m", "K2", DocState::Rejected, None, Some(&long), Some(400))
            .unwrap();
        drop(w);
        bounded(l.document("m", "K2").unwrap().unwrap().last_error);
        l.record_file(&FileRecord {
            first_error: Some(long.clone()),
            ..FileRecord::default()
        })
        .unwrap();
        bounded(l.recent_files(1).unwrap().remove(0).first_error);
    }

    #[test]
    fn claim_skips_only_what_is_accepted_with_the_same_content() {
        let d = tempfile::tempdir().unwrap();
        let l = Ledger::open(&d.path().join("ledger.sqlite")).unwrap();
        let get = |k: &str| l.document("m", k).unwrap().unwrap();
        let claim = |k: &str, h: &str, f: &str, r: &str| {
            l.doc_writer()
                .unwrap()
                .claim(&att("m", k, h, f, r))
                .unwrap()
        };
        // new: marked in flight
        assert_eq!(claim("K1", "h1", "f.csv", "r1"), Claim::Send);
        assert_eq!(get("K1").state, DocState::InFlight);
        assert_eq!(get("K1").attempts, 1);
        // left in flight: sent again, one more attempt, said to be a resend
        assert_eq!(claim("K1", "h1", "g.csv", "r2"), Claim::Resend);
        assert_eq!(
            (get("K1").attempts, get("K1").file.as_deref()),
            (2, Some("g.csv"))
        );
        // accepted with the same content: untouched
        l.doc_writer()
            .unwrap()
            .mark_outcome("m", "K1", DocState::Accepted, Some("7"), None, None)
            .unwrap();
        let before = get("K1");
        assert_eq!(claim("K1", "h1", "h.csv", "r3"), Claim::AlreadyImported);
        let after = get("K1");
        assert_eq!(after.state, DocState::Accepted);
        assert_eq!(
            (after.attempts, after.file.clone()),
            (before.attempts, before.file)
        );
        assert_eq!(after.run_id.as_deref(), Some("r2"));
        // accepted with other content: claimed (the caller decided to send it)
        assert_eq!(claim("K1", "h2", "h.csv", "r3"), Claim::Send);
        assert_eq!(
            (get("K1").state, get("K1").content_hash),
            (DocState::InFlight, "h2".into())
        );
        // rejected or invalid with the same content: sent again
        l.doc_writer()
            .unwrap()
            .mark_outcome("m", "K1", DocState::Rejected, None, Some("no"), Some(400))
            .unwrap();
        assert_eq!(claim("K1", "h2", "h.csv", "r4"), Claim::Send);
        l.mark_invalid("m", "K2", "bad", "f.csv", "r1").unwrap();
        assert_eq!(claim("K2", "h9", "f.csv", "r5"), Claim::Send);
        assert_eq!(get("K2").state, DocState::InFlight);
        // another mapping's document of the same key is another document
        l.doc_writer()
            .unwrap()
            .mark_outcome("m", "K2", DocState::Accepted, None, None, None)
            .unwrap();
        assert_eq!(
            l.doc_writer()
                .unwrap()
                .claim(&att("n", "K2", "h9", "f.csv", "r5"))
                .unwrap(),
            Claim::Send
        );
    }

    #[test]
    fn a_document_that_did_not_go_out_keeps_an_earlier_unknown_outcome() {
        let d = tempfile::tempdir().unwrap();
        let l = Ledger::open(&d.path().join("ledger.sqlite")).unwrap();
        let mut w = l.doc_writer().unwrap();
        // new, claimed, not sent: known not sent, other content may go next time
        assert_eq!(
            w.claim(&att("m", "K1", "h1", "f", "r1")).unwrap(),
            Claim::Send
        );
        w.mark_not_sent("m", "K1", "down").unwrap();
        assert_eq!(
            l.document("m", "K1").unwrap().unwrap().state,
            DocState::NotSent
        );
        assert_eq!(
            w.claim(&att("m", "K1", "h2", "f", "r2")).unwrap(),
            Claim::Send
        );
        // in flight after a timeout, claimed again and not sent: still in flight
        assert_eq!(
            w.claim(&att("m", "K2", "h1", "f", "r1")).unwrap(),
            Claim::Send
        );
        w.mark_outcome("m", "K2", DocState::InFlight, None, Some("timeout"), None)
            .unwrap();
        assert_eq!(
            w.claim(&att("m", "K2", "h1", "f", "r2")).unwrap(),
            Claim::Resend
        );
        w.mark_not_sent("m", "K2", "down").unwrap();
        assert_eq!(
            l.document("m", "K2").unwrap().unwrap().state,
            DocState::InFlight
        );
        assert_eq!(
            w.claim(&att("m", "K2", "h9", "f", "r3")).unwrap(),
            Claim::InDoubt
        );
    }

    #[test]
    fn stored_texts_have_the_secrets_masked() {
        crate::redact::add("ledg3r-secret");
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("ledger.sqlite");
        let l = Ledger::open(&path).unwrap();
        let mut w = l.doc_writer().unwrap();
        w.mark_in_flight(&att("m", "K1", "h", "f.csv", "r"))
            .unwrap();
        w.mark_outcome(
            "m",
            "K1",
            DocState::Rejected,
            Some("id ledg3r-secret"),
            Some("echo: Bearer ledg3r-secret"),
            Some(400),
        )
        .unwrap();
        drop(w);
        l.mark_invalid("m", "K2", "bad ledg3r-secret", "f.csv", "r")
            .unwrap();
        l.record_file(&FileRecord {
            name: "f.csv".into(),
            first_error: Some("first ledg3r-secret".into()),
            ..FileRecord::default()
        })
        .unwrap();
        let k1 = l.document("m", "K1").unwrap().unwrap();
        assert_eq!(k1.last_error.as_deref(), Some("echo: Bearer ***"));
        assert_eq!(k1.target_id.as_deref(), Some("id ***"));
        let k2 = l.document("m", "K2").unwrap().unwrap();
        assert_eq!(k2.last_error.as_deref(), Some("bad ***"));
        let f = l.recent_files(1).unwrap();
        assert_eq!(f[0].first_error.as_deref(), Some("first ***"));
        drop(l);
        for file in std::fs::read_dir(d.path()).unwrap() {
            let bytes = std::fs::read(file.unwrap().path()).unwrap();
            assert!(!String::from_utf8_lossy(&bytes).contains("ledg3r-secret"));
        }
    }

    #[test]
    fn counts_of_an_empty_ledger_are_empty() {
        let d = tempfile::tempdir().unwrap();
        let l = Ledger::open(&d.path().join("ledger.sqlite")).unwrap();
        assert!(l.document_counts().unwrap().is_empty());
    }
}
