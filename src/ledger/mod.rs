//! The ledger: a SQLite database (`.erpdrop/ledger.sqlite`) that remembers every run,
//! file and document, so that a document the ERP accepted is never submitted again.
//!
//! WAL mode: `status` reads while `run` writes. A document is marked in flight, and that
//! is committed, before it is submitted, so a run killed at any moment leaves the ledger
//! telling the truth (`synchronous = NORMAL`: safe against a killed process; a power cut
//! may lose the last few commits, never corrupt the file).
//!
//! `schema` holds the migrations, `documents` what the ledger knows of each
//! document and the statements that change it, `runs` the runs and files, `history`
//! every decision made on a document.

mod documents;
mod history;
mod notices;
mod retries;
mod runs;
mod schema;
mod snapshot;

pub use documents::{Answer, Attempt, Claim, DocRecord, DocState, DocWriter, Glance, Operation};
pub use history::{HistoryQuery, HistoryRecord, Resolution};
pub use retries::GaveUp;
pub use runs::{FileRecord, RunRecord, RunState};
pub use snapshot::Missing;

use rusqlite::{params, Connection, OpenFlags};
use schema::MIGRATIONS;
use std::path::Path;

/// The schema version this build writes.
pub const SCHEMA_VERSION: i64 = 8;

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
    /// A snapshot's keys not yet in its temporary table (they go in many at a time).
    snapshot_keys: std::cell::RefCell<Vec<String>>,
    /// A read-only ledger of an older schema is read through a migrated private copy,
    /// removed when the ledger is dropped.
    _copy: Option<tempfile::TempDir>,
}

fn now() -> String {
    crate::time::timestamp(chrono::Utc::now())
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
            snapshot_keys: Default::default(),
            _copy: None,
        };
        ledger.migrate()?;
        Ok(ledger)
    }

    /// A ledger in memory, gone when dropped: what a dry run's inert outbox records
    /// (`--emit`), so that it goes through the same submission as a real one.
    pub fn open_in_memory() -> Result<Ledger, LedgerError> {
        let p = ":memory:".to_string();
        let conn = Connection::open_in_memory().map_err(|source| LedgerError::Sql {
            path: p.clone(),
            source,
        })?;
        let mut ledger = Ledger {
            conn,
            path: p,
            stamp: Default::default(),
            snapshot_keys: Default::default(),
            _copy: None,
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
            snapshot_keys: Default::default(),
            _copy: None,
        };
        let v = ledger.version()?;
        if v > SCHEMA_VERSION {
            return Err(LedgerError::TooNew {
                path: ledger.path.clone(),
                found: v,
            });
        }
        if v < SCHEMA_VERSION {
            // An older ledger (erpdrop was upgraded, no run has migrated it yet): read
            // through a copy migrated as a run would, the ledger itself untouched
            return ledger.migrated_copy().map(Some);
        }
        Ok(Some(ledger))
    }

    /// A private copy of this (read-only, older) ledger, migrated to this schema.
    fn migrated_copy(self) -> Result<Ledger, LedgerError> {
        let dir = tempfile::Builder::new()
            .prefix("erpdrop-ledger-")
            .tempdir()
            .map_err(|e| LedgerError::Sql {
                path: self.path.clone(),
                source: rusqlite::Error::ToSqlConversionFailure(Box::new(e)),
            })?;
        let copy = dir.path().join("ledger.sqlite");
        self.conn
            .execute("VACUUM INTO ?1", [copy.to_string_lossy()])
            .map_err(|e| self.sql(e))?;
        let conn = Connection::open(&copy).map_err(|e| self.sql(e))?;
        let mut ledger = Ledger {
            conn,
            path: self.path.clone(),
            stamp: Default::default(),
            snapshot_keys: Default::default(),
            _copy: Some(dir),
        };
        ledger.migrate()?;
        Ok(ledger)
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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_transaction_stamps_its_documents_with_one_time() {
        let d = tempfile::tempdir().unwrap();
        let l = Ledger::open(&d.path().join("ledger.sqlite")).unwrap();
        l.in_transaction(|| {
            l.doc_writer().unwrap().claim(&Attempt {
                mapping: "m",
                key: "K1",
                content_hash: "h",
                operation: Operation::Create,
                file: "f.csv",
                run_id: "r",
            })?;
            std::thread::sleep(std::time::Duration::from_millis(5));
            l.doc_writer().unwrap().claim(&Attempt {
                mapping: "m",
                key: "K2",
                content_hash: "h",
                operation: Operation::Create,
                file: "f.csv",
                run_id: "r",
            })?;
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
            .claim(&Attempt {
                mapping: "m",
                key: "K1",
                content_hash: "h",
                operation: Operation::Create,
                file: "f.csv",
                run_id: "r",
            })
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
                .claim(&Attempt {
                    mapping: "m",
                    key: "K2",
                    content_hash: "h",
                    operation: Operation::Create,
                    file: "f.csv",
                    run_id: "r",
                })
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
    fn a_version_7_ledger_counts_the_updates_that_resolve_settled() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("ledger.sqlite");
        let c = Connection::open(&p).unwrap();
        c.execute_batch(
            "CREATE TABLE schema_version (version INTEGER NOT NULL, applied TEXT NOT NULL);",
        )
        .unwrap();
        for (i, m) in MIGRATIONS[..7].iter().enumerate() {
            c.execute_batch(m).unwrap();
            c.execute(
                "INSERT INTO schema_version VALUES (?1, 'then')",
                params![i as i64 + 1],
            )
            .unwrap();
        }
        // R: created, then updated to B and back to A, both settled by `resolve
        // --accepted`; U: one update the ERP accepted; N: a resolve that found nothing
        for k in ["R", "U", "N"] {
            c.execute(
                "INSERT INTO documents (mapping, key, content_hash, state, attempts, updated, operation)
                 VALUES ('m', ?1, 'hA', 'accepted', 1, 'then', 'update')",
                params![k],
            )
            .unwrap();
        }
        for (k, op, hash, outcome) in [
            ("R", "create", "hA", "accepted"),
            ("R", "resolve", "hB", "accepted"),
            ("R", "resolve", "hA", "accepted"),
            ("U", "create", "hA", "accepted"),
            ("U", "update", "hB", "accepted"),
            ("N", "create", "hA", "accepted"),
            ("N", "resolve", "hB", "not_sent"),
        ] {
            c.execute(
                "INSERT INTO history (time, file, mapping, key, operation, content_hash, outcome)
                 VALUES ('then', 'f', 'm', ?1, ?2, ?3, ?4)",
                params![k, op, hash, outcome],
            )
            .unwrap();
        }
        drop(c);
        let l = Ledger::open(&p).unwrap();
        assert_eq!(l.version().unwrap(), SCHEMA_VERSION);
        let updates = |k| l.document("m", k).unwrap().unwrap().updates;
        // the next update of R to B is not taken for its first, resolved, update to B
        assert_eq!(updates("R"), 2);
        assert_eq!(updates("U"), 1);
        assert_eq!(updates("N"), 0);
    }
}
