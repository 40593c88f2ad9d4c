//! The ledger: a SQLite database (`.erpdrop/ledger.sqlite`) that remembers every run,
//! file and document, so that a document the ERP accepted is never submitted again.
//!
//! WAL mode: `status` reads while `run` writes. Each document state change is its own
//! transaction, committed before the next document is submitted, so a run killed at any
//! moment leaves the ledger telling the truth (`synchronous = NORMAL`: safe against a
//! killed process; a power cut may lose the last few commits, never corrupt the file).

use crate::problem::{bound, MAX_MESSAGE_CHARS};
use rusqlite::{params, Connection, OpenFlags, OptionalExtension};
use std::path::Path;

/// The schema version this build writes.
pub const SCHEMA_VERSION: i64 = 4;

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

/// A file's line in the ledger.
#[derive(Debug, Clone, Default)]
pub struct FileRecord {
    pub run_id: String,
    pub name: String,
    pub stored_as: Option<String>,
    pub sha256: String,
    pub mapping: String,
    pub outcome: String,
    pub rows: u64,
    pub documents: u64,
    pub accepted: u64,
    pub rejected: u64,
    pub invalid: u64,
    pub already_imported: u64,
    pub started: String,
    pub finished: String,
    pub first_error: Option<String>,
}

/// A run's line in the ledger.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct RunRecord {
    pub id: String,
    pub command: String,
    pub started: String,
    /// When it ended; for an interrupted run, when it was last seen working (its start,
    /// or the end of the last file it recorded).
    pub finished: Option<String>,
    pub files: i64,
    pub accepted: i64,
    pub rejected: i64,
    pub invalid: i64,
    pub already_imported: i64,
    pub exit_code: Option<i64>,
    /// `running`, `finished` or `interrupted` (as read; not written).
    pub state: RunState,
}

/// Whether a run is going on, ended, or ended without recording its end.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RunState {
    /// No end recorded yet, and no later run found it dead.
    #[default]
    Running,
    /// Its end and exit code are recorded.
    Finished,
    /// It died (kill -9, a power cut, a ledger it could no longer write) and a later
    /// run, holding the lock, found it without an end: `finished` is set, the exit code
    /// stays empty.
    Interrupted,
}

impl RunState {
    fn of(finished: &Option<String>, exit_code: Option<i64>) -> RunState {
        match (finished, exit_code) {
            (None, _) => RunState::Running,
            (Some(_), Some(_)) => RunState::Finished,
            (Some(_), None) => RunState::Interrupted,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    #[error("the ledger {path} was written by a newer erpdrop (schema version {found}, this build knows {SCHEMA_VERSION}); upgrade erpdrop")]
    TooNew { path: String, found: i64 },
    #[error("the ledger has no document {key:?} of mapping {mapping:?}")]
    NotFound { mapping: String, key: String },
    #[error("the ledger {path}: {source}")]
    Sql {
        path: String,
        #[source]
        source: rusqlite::Error,
    },
}

pub struct Ledger {
    conn: Connection,
    path: String,
    /// Inside [`in_transaction`](Ledger::in_transaction): the transaction's time,
    /// which every document it touches is stamped with (formatting a timestamp per
    /// statement cost a sixth of a submission's ledger time).
    stamp: std::cell::RefCell<Option<String>>,
}

const MIGRATIONS: &[&str] = &[
    // 1: runs, files, documents
    "CREATE TABLE runs (
        id TEXT PRIMARY KEY,
        command TEXT NOT NULL,
        started TEXT NOT NULL,
        finished TEXT,
        files INTEGER NOT NULL DEFAULT 0,
        accepted INTEGER NOT NULL DEFAULT 0,
        rejected INTEGER NOT NULL DEFAULT 0,
        invalid INTEGER NOT NULL DEFAULT 0,
        already_imported INTEGER NOT NULL DEFAULT 0,
        exit_code INTEGER
    );
    CREATE TABLE files (
        id INTEGER PRIMARY KEY,
        run_id TEXT NOT NULL,
        name TEXT NOT NULL,
        sha256 TEXT NOT NULL,
        mapping TEXT NOT NULL,
        outcome TEXT NOT NULL,
        rows INTEGER NOT NULL,
        documents INTEGER NOT NULL,
        accepted INTEGER NOT NULL,
        rejected INTEGER NOT NULL,
        invalid INTEGER NOT NULL,
        started TEXT NOT NULL,
        finished TEXT NOT NULL
    );
    CREATE INDEX files_run ON files(run_id);
    CREATE TABLE documents (
        mapping TEXT NOT NULL,
        key TEXT NOT NULL,
        content_hash TEXT NOT NULL,
        state TEXT NOT NULL,
        target_id TEXT,
        attempts INTEGER NOT NULL DEFAULT 0,
        last_error TEXT,
        file TEXT,
        run_id TEXT,
        updated TEXT NOT NULL,
        PRIMARY KEY (mapping, key)
    );",
    // 2: where a file went, its first error, already-imported counts, HTTP status
    "ALTER TABLE files ADD COLUMN stored_as TEXT;
    ALTER TABLE files ADD COLUMN already_imported INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE files ADD COLUMN first_error TEXT;
    ALTER TABLE documents ADD COLUMN last_status INTEGER;
    CREATE INDEX documents_state ON documents(state, updated);",
    // 3: only documents that are not accepted are indexed by state: accepted ones are
    // nearly all of them, and indexing each on its way through `in_flight` cost a
    // fifth of the ledger's time per submitted document
    "DROP INDEX documents_state;
    CREATE INDEX documents_open ON documents(state, updated) WHERE state <> 'accepted';",
    // 4: every operation on a document, and the operators' decisions, kept for good
    "CREATE TABLE history (
        seq INTEGER PRIMARY KEY,
        time TEXT NOT NULL,
        run_id TEXT,
        file TEXT,
        mapping TEXT NOT NULL,
        key TEXT NOT NULL,
        operation TEXT NOT NULL,
        content_hash TEXT,
        outcome TEXT NOT NULL,
        status INTEGER,
        erp_id TEXT,
        message TEXT,
        actor TEXT
    );
    CREATE INDEX history_document ON history(mapping, key, seq);
    CREATE INDEX history_file ON history(file, seq);
    ALTER TABLE documents ADD COLUMN prior_state TEXT;",
];

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

fn now() -> String {
    crate::report::timestamp(chrono::Utc::now())
}

impl Ledger {
    /// Opens (creating and migrating) the ledger for writing.
    pub fn open(path: &Path) -> Result<Ledger, LedgerError> {
        let p = path.display().to_string();
        let sql = |source| LedgerError::Sql {
            path: p.clone(),
            source,
        };
        if let Some(dir) = path.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        let conn = Connection::open(path).map_err(sql)?;
        conn.busy_timeout(std::time::Duration::from_secs(10))
            .map_err(sql)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(sql)?;
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(sql)?;
        let mut ledger = Ledger {
            conn,
            path: p,
            stamp: Default::default(),
        };
        ledger.migrate()?;
        Ok(ledger)
    }

    /// Opens an existing ledger for reading only (`validate`, `status`); `None` when
    /// there is none yet.
    pub fn open_read_only(path: &Path) -> Result<Option<Ledger>, LedgerError> {
        if !path.exists() {
            return Ok(None);
        }
        let p = path.display().to_string();
        let sql = |source| LedgerError::Sql {
            path: p.clone(),
            source,
        };
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(sql)?;
        conn.busy_timeout(std::time::Duration::from_secs(10))
            .map_err(sql)?;
        let ledger = Ledger {
            conn,
            path: p,
            stamp: Default::default(),
        };
        let v = ledger.version()?;
        if v > SCHEMA_VERSION {
            return Err(LedgerError::TooNew {
                path: ledger.path.clone(),
                found: v,
            });
        }
        if v < SCHEMA_VERSION {
            // An older ledger: reading it would need the migration a run performs.
            return Ok(None);
        }
        Ok(Some(ledger))
    }

    fn sql(&self, source: rusqlite::Error) -> LedgerError {
        LedgerError::Sql {
            path: self.path.clone(),
            source,
        }
    }

    fn version(&self) -> Result<i64, LedgerError> {
        let has_table: bool = self
            .conn
            .query_row(
                "SELECT count(*) FROM sqlite_master WHERE type='table' AND name='schema_version'",
                [],
                |r| r.get::<_, i64>(0),
            )
            .map_err(|e| self.sql(e))?
            > 0;
        if !has_table {
            return Ok(0);
        }
        self.conn
            .query_row("SELECT max(version) FROM schema_version", [], |r| {
                r.get::<_, Option<i64>>(0)
            })
            .map(|v| v.unwrap_or(0))
            .map_err(|e| self.sql(e))
    }

    fn migrate(&mut self) -> Result<(), LedgerError> {
        self.conn
            .execute_batch(
                "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL, applied TEXT NOT NULL)",
            )
            .map_err(|e| self.sql(e))?;
        let current = self.version()?;
        if current > SCHEMA_VERSION {
            return Err(LedgerError::TooNew {
                path: self.path.clone(),
                found: current,
            });
        }
        for (i, m) in MIGRATIONS.iter().enumerate() {
            let v = i as i64 + 1;
            if v <= current {
                continue;
            }
            let tx = self.conn.transaction().map_err(|e| LedgerError::Sql {
                path: self.path.clone(),
                source: e,
            })?;
            tx.execute_batch(m)
                .and_then(|_| {
                    tx.execute(
                        "INSERT INTO schema_version (version, applied) VALUES (?1, ?2)",
                        params![v, now()],
                    )
                })
                .and_then(|_| tx.commit())
                .map_err(|e| LedgerError::Sql {
                    path: self.path.clone(),
                    source: e,
                })?;
            tracing::debug!(version = v, "ledger migrated");
        }
        Ok(())
    }

    /// Runs `f` in one transaction (one commit for many documents); rolled back when
    /// `f` fails.
    pub fn in_transaction<T>(
        &self,
        f: impl FnOnce() -> Result<T, LedgerError>,
    ) -> Result<T, LedgerError> {
        self.conn.execute_batch("BEGIN").map_err(|e| self.sql(e))?;
        let outer = self.stamp.replace(Some(now()));
        let result = f();
        self.stamp.replace(outer);
        match result {
            Ok(v) => {
                self.conn.execute_batch("COMMIT").map_err(|e| self.sql(e))?;
                Ok(v)
            }
            Err(e) => {
                let _ = self.conn.execute_batch("ROLLBACK");
                Err(e)
            }
        }
    }

    /// Runs `f`, a series of reads, in one read transaction: one consistent view, and
    /// one lock for all of them instead of one per statement (validating a file looks
    /// up each of its documents). Outside a transaction only; if the transaction cannot
    /// begin, `f` still runs, each read on its own.
    pub fn snapshot<T>(&self, f: impl FnOnce() -> T) -> T {
        let began = self.conn.is_autocommit() && self.conn.execute_batch("BEGIN").is_ok();
        let v = f();
        if began {
            // nothing was written: ending the read transaction cannot lose anything
            let _ = self.conn.execute_batch("COMMIT");
        }
        v
    }

    /// The time to record: the transaction's, or now.
    fn now(&self) -> String {
        self.stamp.borrow().clone().unwrap_or_else(now)
    }

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
            self.conn
                .execute(
                    "UPDATE documents SET state = ?3, target_id = coalesce(?4, target_id),
                       last_error = ?5, last_status = NULL, updated = ?6
                     WHERE mapping = ?1 AND key = ?2",
                    params![mapping, key, state.as_str(), id, last_error, when],
                )
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
        self.rows(
            "SELECT time, run_id, file, mapping, key, operation, content_hash, outcome, status, erp_id,
               message, actor
             FROM history WHERE mapping = ?1 AND key = ?2 ORDER BY seq",
            params![mapping, key],
            row_to_history,
        )
    }

    pub fn begin_run(&self, id: &str, command: &str) -> Result<(), LedgerError> {
        self.conn
            .execute(
                "INSERT OR REPLACE INTO runs (id, command, started) VALUES (?1, ?2, ?3)",
                params![id, command, now()],
            )
            .map(|_| ())
            .map_err(|e| self.sql(e))
    }

    /// Marks every run without an end, other than `current`, as interrupted: called by
    /// a run that holds the lock, so no such run is alive. Its `finished` becomes the
    /// last time it was seen working (its start, or its last file's end) and its exit
    /// code stays empty. Returns the ids marked.
    pub fn mark_interrupted_runs(&self, current: &str) -> Result<Vec<String>, LedgerError> {
        let ids: Vec<String> = self.rows(
            "SELECT id FROM runs WHERE finished IS NULL AND id <> ?1 ORDER BY started",
            params![current],
            |r| r.get(0),
        )?;
        if !ids.is_empty() {
            self.conn
                .execute(
                    "UPDATE runs SET finished = max(started,
                       coalesce((SELECT max(f.finished) FROM files f WHERE f.run_id = runs.id), started))
                     WHERE finished IS NULL AND id <> ?1",
                    params![current],
                )
                .map_err(|e| self.sql(e))?;
        }
        Ok(ids)
    }

    pub fn finish_run(&self, r: &RunRecord) -> Result<(), LedgerError> {
        self.conn
            .execute(
                "UPDATE runs SET finished = ?2, files = ?3, accepted = ?4, rejected = ?5,
                   invalid = ?6, already_imported = ?7, exit_code = ?8 WHERE id = ?1",
                params![
                    r.id,
                    now(),
                    r.files,
                    r.accepted,
                    r.rejected,
                    r.invalid,
                    r.already_imported,
                    r.exit_code
                ],
            )
            .map(|_| ())
            .map_err(|e| self.sql(e))
    }

    pub fn record_file(&self, f: &FileRecord) -> Result<(), LedgerError> {
        self.conn
            .execute(
                "INSERT INTO files (run_id, name, stored_as, sha256, mapping, outcome, rows, documents,
                   accepted, rejected, invalid, already_imported, started, finished, first_error)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)",
                params![
                    f.run_id,
                    f.name,
                    f.stored_as,
                    f.sha256,
                    f.mapping,
                    f.outcome,
                    f.rows as i64,
                    f.documents as i64,
                    f.accepted as i64,
                    f.rejected as i64,
                    f.invalid as i64,
                    f.already_imported as i64,
                    f.started,
                    f.finished,
                    f.first_error
                        .as_deref()
                        .map(|e| bound(&crate::redact::redact(e), MAX_MESSAGE_CHARS).into_owned())
                ],
            )
            .map(|_| ())
            .map_err(|e| self.sql(e))
    }

    /// Forgets the file lines that say a file was stored as `stored_as`: a move that a
    /// dead run recorded and never made (see `lifecycle::recover_move`).
    pub fn forget_file(&self, stored_as: &str) -> Result<(), LedgerError> {
        self.conn
            .execute("DELETE FROM files WHERE stored_as = ?1", params![stored_as])
            .map(|_| ())
            .map_err(|e| self.sql(e))
    }

    /// Runs a query and collects its rows.
    fn rows<T>(
        &self,
        sql: &str,
        params: impl rusqlite::Params,
        row: impl FnMut(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
    ) -> Result<Vec<T>, LedgerError> {
        self.conn
            .prepare(sql)
            .and_then(|mut st| st.query_map(params, row)?.collect())
            .map_err(|e| self.sql(e))
    }

    /// The most recent runs, newest first.
    pub fn recent_runs(&self, limit: usize) -> Result<Vec<RunRecord>, LedgerError> {
        self.rows(
            "SELECT id, command, started, finished, files, accepted, rejected, invalid, already_imported, exit_code
             FROM runs ORDER BY started DESC, id DESC LIMIT ?1",
            params![limit as i64],
            |r| {
                let finished: Option<String> = r.get(3)?;
                let exit_code: Option<i64> = r.get(9)?;
                Ok(RunRecord {
                    id: r.get(0)?,
                    command: r.get(1)?,
                    started: r.get(2)?,
                    state: RunState::of(&finished, exit_code),
                    finished,
                    files: r.get(4)?,
                    accepted: r.get(5)?,
                    rejected: r.get(6)?,
                    invalid: r.get(7)?,
                    already_imported: r.get(8)?,
                    exit_code,
                })
            },
        )
    }

    /// The files of recent runs, newest first.
    pub fn recent_files(&self, limit: usize) -> Result<Vec<FileRecord>, LedgerError> {
        self.rows(
            "SELECT run_id, name, stored_as, sha256, mapping, outcome, rows, documents, accepted, rejected,
               invalid, already_imported, started, finished, first_error
             FROM files ORDER BY finished DESC, id DESC LIMIT ?1",
            params![limit as i64],
            |r| {
                Ok(FileRecord {
                    run_id: r.get(0)?,
                    name: r.get(1)?,
                    stored_as: r.get(2)?,
                    sha256: r.get(3)?,
                    mapping: r.get(4)?,
                    outcome: r.get(5)?,
                    rows: r.get::<_, i64>(6)? as u64,
                    documents: r.get::<_, i64>(7)? as u64,
                    accepted: r.get::<_, i64>(8)? as u64,
                    rejected: r.get::<_, i64>(9)? as u64,
                    invalid: r.get::<_, i64>(10)? as u64,
                    already_imported: r.get::<_, i64>(11)? as u64,
                    started: r.get(12)?,
                    finished: r.get(13)?,
                    first_error: r.get(14)?,
                })
            },
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
    fn other_content_after_an_unknown_outcome_is_in_doubt_until_resolved() {
        let d = tempfile::tempdir().unwrap();
        let l = Ledger::open(&d.path().join("ledger.sqlite")).unwrap();
        let claim = |k: &str, h: &str| {
            l.doc_writer()
                .unwrap()
                .claim("m", k, h, "f.csv", "r")
                .unwrap()
        };
        let get = |k: &str| l.document("m", k).unwrap().unwrap();
        // a dead run left K1 in flight with h1
        assert_eq!(claim("K1", "h1"), Claim::Send);
        // the same content is sent again (same idempotency key); other content is not
        assert_eq!(claim("K1", "h1"), Claim::Send);
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
    fn a_transaction_stamps_its_documents_with_one_time() {
        let d = tempfile::tempdir().unwrap();
        let l = Ledger::open(&d.path().join("ledger.sqlite")).unwrap();
        l.in_transaction(|| {
            l.doc_writer()
                .unwrap()
                .claim("m", "K1", "h", "f.csv", "r")?;
            std::thread::sleep(std::time::Duration::from_millis(5));
            l.doc_writer()
                .unwrap()
                .claim("m", "K2", "h", "f.csv", "r")?;
            Ok(())
        })
        .unwrap();
        let (a, b) = (
            l.document("m", "K1").unwrap().unwrap().updated,
            l.document("m", "K2").unwrap().unwrap().updated,
        );
        assert_eq!(a, b);
        // outside a transaction each statement takes the time it runs at
        std::thread::sleep(std::time::Duration::from_millis(5));
        l.doc_writer()
            .unwrap()
            .mark_outcome("m", "K1", DocState::Accepted, None, None, None)
            .unwrap();
        assert!(l.document("m", "K1").unwrap().unwrap().updated > a);
        assert!(l.stamp.borrow().is_none());
    }

    #[test]
    fn a_snapshot_reads_and_leaves_no_transaction_open() {
        let d = tempfile::tempdir().unwrap();
        let l = Ledger::open(&d.path().join("ledger.sqlite")).unwrap();
        l.doc_writer()
            .unwrap()
            .claim("m", "K1", "h", "f.csv", "r")
            .unwrap();
        let state = l.snapshot(|| l.document("m", "K1").unwrap().unwrap().state);
        assert_eq!(state, DocState::InFlight);
        assert!(l.conn.is_autocommit());
        // inside a transaction it neither begins nor ends one
        l.in_transaction(|| {
            l.snapshot(|| assert!(!l.conn.is_autocommit()));
            assert!(!l.conn.is_autocommit());
            l.doc_writer()
                .unwrap()
                .claim("m", "K2", "h", "f.csv", "r")
                .map(|_| ())
        })
        .unwrap();
        assert!(l.document("m", "K2").unwrap().is_some());
        // a read-only ledger takes snapshots too
        let r = Ledger::open_read_only(&d.path().join("ledger.sqlite"))
            .unwrap()
            .unwrap();
        assert!(r.snapshot(|| r.document("m", "K2").unwrap().is_some()));
        assert!(r.conn.is_autocommit());
    }

    #[test]
    fn a_newer_schema_is_refused() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("ledger.sqlite");
        drop(Ledger::open(&p).unwrap());
        let c = Connection::open(&p).unwrap();
        c.execute("INSERT INTO schema_version VALUES (99, 'x')", [])
            .unwrap();
        drop(c);
        assert!(matches!(
            Ledger::open(&p),
            Err(LedgerError::TooNew { found: 99, .. })
        ));
    }

    #[test]
    fn a_version_1_ledger_is_migrated_and_keeps_its_documents() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("ledger.sqlite");
        let c = Connection::open(&p).unwrap();
        c.execute_batch(
            "CREATE TABLE schema_version (version INTEGER NOT NULL, applied TEXT NOT NULL);
             INSERT INTO schema_version VALUES (1, 'then');",
        )
        .unwrap();
        c.execute_batch(MIGRATIONS[0]).unwrap();
        c.execute(
            "INSERT INTO documents (mapping, key, content_hash, state, attempts, updated) VALUES ('m','K','h','accepted',1,'then')",
            [],
        )
        .unwrap();
        drop(c);
        let l = Ledger::open(&p).unwrap();
        assert_eq!(l.version().unwrap(), SCHEMA_VERSION);
        let rec = l.document("m", "K").unwrap().unwrap();
        assert_eq!(rec.state, DocState::Accepted);
        assert_eq!(rec.last_status, None);
    }

    #[test]
    fn a_version_2_ledger_is_migrated_and_counts_and_failures_read_the_open_index() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("ledger.sqlite");
        let c = Connection::open(&p).unwrap();
        c.execute_batch(
            "CREATE TABLE schema_version (version INTEGER NOT NULL, applied TEXT NOT NULL);
             INSERT INTO schema_version VALUES (1, 'then'), (2, 'then');",
        )
        .unwrap();
        c.execute_batch(MIGRATIONS[0]).unwrap();
        c.execute_batch(MIGRATIONS[1]).unwrap();
        for (k, state, at) in [
            ("A1", "accepted", "2026-01-01"),
            ("A2", "accepted", "2026-01-02"),
            ("A3", "accepted", "2026-01-03"),
            ("R1", "rejected", "2026-01-04"),
            ("I1", "invalid", "2026-01-05"),
            ("F1", "in_flight", "2026-01-06"),
            ("R2", "rejected", "2026-01-07"),
        ] {
            c.execute(
                "INSERT INTO documents (mapping, key, content_hash, state, attempts, updated) VALUES ('m', ?1, 'h', ?2, 1, ?3)",
                params![k, state, at],
            )
            .unwrap();
        }
        drop(c);
        let l = Ledger::open(&p).unwrap();
        assert_eq!(l.version().unwrap(), SCHEMA_VERSION);
        let counts = l.document_counts().unwrap();
        let want: Vec<(String, i64)> = [
            ("accepted", 3),
            ("in_flight", 1),
            ("invalid", 1),
            ("rejected", 2),
        ]
        .iter()
        .map(|(s, n)| (s.to_string(), *n))
        .collect();
        assert_eq!(counts, want);
        let failed: Vec<String> = l
            .failed_documents(10)
            .unwrap()
            .into_iter()
            .map(|r| r.key)
            .collect();
        assert_eq!(failed, ["R2", "F1", "I1", "R1"]);
        // a document accepted later leaves the open index and the failures
        l.doc_writer()
            .unwrap()
            .mark_outcome("m", "R2", DocState::Accepted, None, None, None)
            .unwrap();
        assert_eq!(l.failed_documents(10).unwrap().len(), 3);
        assert!(l
            .document_counts()
            .unwrap()
            .contains(&("accepted".into(), 4)));
        // and SQLite reads the failures from that index, not the whole table
        let plan: Vec<String> = l
            .rows(
                "EXPLAIN QUERY PLAN SELECT key FROM documents WHERE state <> 'accepted' ORDER BY updated DESC LIMIT 50",
                [],
                |r| r.get::<_, String>(3),
            )
            .unwrap();
        assert!(
            plan.iter().any(|d| d.contains("documents_open")),
            "{plan:?}"
        );
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
    fn runs_without_an_end_are_marked_interrupted_by_a_later_run() {
        let d = tempfile::tempdir().unwrap();
        let l = Ledger::open(&d.path().join("ledger.sqlite")).unwrap();
        l.begin_run("r1", "run").unwrap(); // killed before any file
        l.begin_run("r2", "run").unwrap(); // killed after a file
        l.record_file(&FileRecord {
            run_id: "r2".into(),
            name: "f.csv".into(),
            finished: "2999-01-01T00:00:00.000Z".into(),
            ..FileRecord::default()
        })
        .unwrap();
        l.begin_run("r3", "run").unwrap();
        l.finish_run(&RunRecord {
            id: "r3".into(),
            exit_code: Some(1),
            ..RunRecord::default()
        })
        .unwrap();
        l.begin_run("r4", "run").unwrap(); // this one
        let state = |id: &str| {
            let r = l.recent_runs(10).unwrap();
            let r = r.iter().find(|r| r.id == id).unwrap();
            (r.state, r.finished.clone(), r.exit_code)
        };
        assert_eq!(state("r1").0, RunState::Running);
        assert_eq!(l.mark_interrupted_runs("r4").unwrap(), ["r1", "r2"]);
        let (s1, f1, e1) = state("r1");
        assert_eq!((s1, e1), (RunState::Interrupted, None));
        let started = l
            .recent_runs(10)
            .unwrap()
            .iter()
            .find(|r| r.id == "r1")
            .unwrap()
            .started
            .clone();
        assert_eq!(f1, Some(started), "last seen at its start");
        assert_eq!(
            state("r2"),
            (
                RunState::Interrupted,
                Some("2999-01-01T00:00:00.000Z".into()),
                None
            )
        );
        assert_eq!(state("r3").0, RunState::Finished);
        assert_eq!(state("r4").0, RunState::Running);
        assert!(l.mark_interrupted_runs("r4").unwrap().is_empty());
    }

    #[test]
    fn counts_of_an_empty_ledger_are_empty() {
        let d = tempfile::tempdir().unwrap();
        let l = Ledger::open(&d.path().join("ledger.sqlite")).unwrap();
        assert!(l.document_counts().unwrap().is_empty());
    }
}
