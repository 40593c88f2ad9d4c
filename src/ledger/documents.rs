//! What the ledger knows of each document, and the statements that change it.

use super::{Ledger, LedgerError};
use crate::problem::{bound, MAX_MESSAGE_CHARS};
use rusqlite::{params, OptionalExtension};

/// A document's state.
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
    /// An operator confirmed that the ERP does not have it: the next run sends the
    /// file's content as a new document.
    NotSent,
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
            _ => return None,
        })
    }

    /// Whether an earlier attempt of the document may have reached the ERP without its
    /// answer being known: its content may not change before that is settled.
    pub fn is_unsettled(self) -> bool {
        matches!(self, DocState::InFlight | DocState::InDoubt)
    }
}

/// What the ledger knows of a document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocRecord {
    pub mapping: String,
    pub key: String,
    pub content_hash: String,
    pub state: DocState,
    pub target_id: Option<String>,
    pub attempts: i64,
    pub last_error: Option<String>,
    pub last_status: Option<i64>,
    pub file: Option<String>,
    pub run_id: Option<String>,
    pub updated: String,
}

/// Marks a document in flight, one more attempt: mapping, key, content hash, file,
/// run, time. The state it had is kept in `prior_state`, so that an attempt that is
/// then known not to have been made ([`NOT_SENT`]) does not forget an earlier one whose
/// outcome is unknown.
macro_rules! in_flight_upsert {
    () => {
        "INSERT INTO documents (mapping, key, content_hash, state, attempts, file, run_id, updated)
         VALUES (?1, ?2, ?3, 'in_flight', 1, ?4, ?5, ?6)
         ON CONFLICT (mapping, key) DO UPDATE SET
           prior_state = documents.state,
           content_hash = excluded.content_hash, state = 'in_flight',
           attempts = documents.attempts + 1, file = excluded.file,
           run_id = excluded.run_id, updated = excluded.updated"
    };
}

/// Marks a document in flight unless it is accepted with the same content, or an
/// earlier attempt with other content has no known outcome (in doubt: never sent again
/// under another idempotency key).
const CLAIM: &str = concat!(
    in_flight_upsert!(),
    " WHERE NOT (documents.state = 'accepted'
                AND documents.content_hash = excluded.content_hash)
        AND NOT (documents.state IN ('in_flight', 'in_doubt')
                AND documents.content_hash <> excluded.content_hash)"
);

/// A document marked in flight was not delivered (the target was down, or the run
/// stopped, before it went out): not sent, unless an earlier attempt's outcome is still
/// unknown (then it stays in flight). Mapping, key, reason, time.
const NOT_SENT: &str = "UPDATE documents SET
       state = CASE WHEN prior_state IN ('in_flight', 'in_doubt') THEN 'in_flight' ELSE 'not_sent' END,
       last_error = ?3, last_status = NULL, updated = ?4
     WHERE mapping = ?1 AND key = ?2";

/// Records the target's answer: mapping, key, state, target id (kept when none),
/// error, HTTP status, time.
const OUTCOME: &str = "UPDATE documents SET state = ?3, target_id = coalesce(?4, target_id),
       last_error = ?5, last_status = ?6, updated = ?7
     WHERE mapping = ?1 AND key = ?2";

impl Ledger {
    /// What the ledger knows of a document.
    pub fn document(&self, mapping: &str, key: &str) -> Result<Option<DocRecord>, LedgerError> {
        self.conn
            .prepare_cached(
                "SELECT mapping, key, content_hash, state, target_id, attempts, last_error, last_status, file, run_id, updated
                 FROM documents WHERE mapping = ?1 AND key = ?2",
            )
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
                "INSERT INTO documents (mapping, key, content_hash, state, attempts, last_error, file, run_id, updated)
                 VALUES (?1, ?2, '', 'invalid', 0, ?3, ?4, ?5, ?6)
                 ON CONFLICT (mapping, key) DO UPDATE SET
                   state = 'invalid', last_error = excluded.last_error, last_status = NULL,
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
    /// arrived with other content); `message` says what to do.
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
                "UPDATE documents SET state = 'in_doubt', last_error = ?3, updated = ?4
                 WHERE mapping = ?1 AND key = ?2 AND state IN ('in_flight', 'in_doubt')",
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
            "SELECT mapping, key, content_hash, state, target_id, attempts, last_error, last_status, file, run_id, updated
             FROM documents WHERE key = ?1 ORDER BY mapping",
            params![key],
            row_to_doc,
        )
    }

    /// Documents that are not accepted (rejected, invalid, in flight), newest first.
    pub fn failed_documents(&self, limit: usize) -> Result<Vec<DocRecord>, LedgerError> {
        self.rows(
            "SELECT mapping, key, content_hash, state, target_id, attempts, last_error, last_status, file, run_id, updated
             FROM documents WHERE state <> 'accepted' ORDER BY updated DESC LIMIT ?1",
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
}

impl DocWriter<'_> {
    /// Marks a document in flight (one more attempt) before it is submitted.
    pub fn mark_in_flight(
        &mut self,
        mapping: &str,
        key: &str,
        content_hash: &str,
        file: &str,
        run_id: &str,
    ) -> Result<(), LedgerError> {
        let doc = [mapping, key, content_hash, file, run_id];
        upsert_in_flight(self.ledger, &mut self.in_flight, doc).map(|_| ())
    }

    /// Marks a document in flight unless the ledger has it accepted with the same
    /// content, or an earlier attempt with other content has no known outcome: one
    /// statement instead of [`Ledger::document`] and
    /// [`mark_in_flight`](DocWriter::mark_in_flight), for a target that cannot tell
    /// whether it already has a document left in flight. Nothing changes unless the
    /// answer is [`Claim::Send`].
    pub fn claim(
        &mut self,
        mapping: &str,
        key: &str,
        content_hash: &str,
        file: &str,
        run_id: &str,
    ) -> Result<Claim, LedgerError> {
        let doc = [mapping, key, content_hash, file, run_id];
        if upsert_in_flight(self.ledger, &mut self.claim, doc)? > 0 {
            return Ok(Claim::Send);
        }
        // not claimed: which of the two reasons (rare: validation saw it first)
        Ok(match self.ledger.document(mapping, key)? {
            Some(r) if r.state == DocState::Accepted && r.content_hash == content_hash => {
                Claim::AlreadyImported
            }
            _ => Claim::InDoubt,
        })
    }

    /// Records that a document marked in flight did not go out (see [`NOT_SENT`]).
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

    /// Records the target's answer for a document in flight.
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
}

/// What [`DocWriter::claim`] decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// Marked in flight: send it.
    Send,
    /// Accepted before with the same content.
    AlreadyImported,
    /// An earlier attempt with other content has no known outcome.
    InDoubt,
}

/// Runs an [`in_flight_upsert!`] statement (mapping, key, content hash, file, run);
/// the number of rows it changed.
fn upsert_in_flight(
    ledger: &Ledger,
    st: &mut rusqlite::CachedStatement<'_>,
    [mapping, key, hash, file, run_id]: [&str; 5],
) -> Result<usize, LedgerError> {
    st.execute(params![mapping, key, hash, file, run_id, ledger.now()])
        .map_err(|e| ledger.sql(e))
}

fn row_to_doc(r: &rusqlite::Row<'_>) -> rusqlite::Result<DocRecord> {
    let state: String = r.get(3)?;
    let state = DocState::parse(&state).ok_or_else(|| {
        rusqlite::Error::FromSqlConversionFailure(
            3,
            rusqlite::types::Type::Text,
            format!("unknown document state {state:?} (a newer erpdrop wrote it?)").into(),
        )
    })?;
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
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::FileRecord;

    #[test]
    fn documents_move_through_states() {
        let d = tempfile::tempdir().unwrap();
        let l = Ledger::open(&d.path().join("ledger.sqlite")).unwrap();
        assert!(l.document("m", "K1").unwrap().is_none());
        l.doc_writer()
            .unwrap()
            .mark_in_flight("m", "K1", "h1", "f.csv", "r1")
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
        w.mark_in_flight("m", "K2", "h", "f.csv", "r1").unwrap();
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
            l.doc_writer().unwrap().claim("m", k, h, f, r).unwrap()
        };
        // new: marked in flight
        assert_eq!(claim("K1", "h1", "f.csv", "r1"), Claim::Send);
        assert_eq!(get("K1").state, DocState::InFlight);
        assert_eq!(get("K1").attempts, 1);
        // left in flight: sent again, one more attempt
        assert_eq!(claim("K1", "h1", "g.csv", "r2"), Claim::Send);
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
                .claim("n", "K2", "h9", "f.csv", "r5")
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
        assert_eq!(w.claim("m", "K1", "h1", "f", "r1").unwrap(), Claim::Send);
        w.mark_not_sent("m", "K1", "down").unwrap();
        assert_eq!(
            l.document("m", "K1").unwrap().unwrap().state,
            DocState::NotSent
        );
        assert_eq!(w.claim("m", "K1", "h2", "f", "r2").unwrap(), Claim::Send);
        // in flight after a timeout, claimed again and not sent: still in flight
        assert_eq!(w.claim("m", "K2", "h1", "f", "r1").unwrap(), Claim::Send);
        w.mark_outcome("m", "K2", DocState::InFlight, None, Some("timeout"), None)
            .unwrap();
        assert_eq!(w.claim("m", "K2", "h1", "f", "r2").unwrap(), Claim::Send);
        w.mark_not_sent("m", "K2", "down").unwrap();
        assert_eq!(
            l.document("m", "K2").unwrap().unwrap().state,
            DocState::InFlight
        );
        assert_eq!(w.claim("m", "K2", "h9", "f", "r3").unwrap(), Claim::InDoubt);
    }

    #[test]
    fn stored_texts_have_the_secrets_masked() {
        crate::redact::add("ledg3r-secret");
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("ledger.sqlite");
        let l = Ledger::open(&path).unwrap();
        let mut w = l.doc_writer().unwrap();
        w.mark_in_flight("m", "K1", "h", "f.csv", "r").unwrap();
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
