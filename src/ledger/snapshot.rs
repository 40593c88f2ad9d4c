//! A snapshot's list of keys, and what the ERP holds that it no longer lists.
//!
//! While a snapshot file is checked, every key it has (valid document or not) goes into
//! a temporary table of this connection, on disk (`temp_store = FILE`), so that memory
//! stays flat whatever the number of records; the documents this mapping has in the ERP
//! whose keys are not in it are the ones to delete. A temporary table is this
//! connection's own, and works on a ledger opened read-only (a dry run) too.

use super::{Ledger, LedgerError};
use rusqlite::params;

/// A document the ERP has and the snapshot no longer lists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Missing {
    pub key: String,
    /// The content the ERP has.
    pub erp_hash: String,
    /// The ERP's id, when its answer gave one.
    pub erp_id: Option<String>,
    pub deletions: u64,
}

/// How many keys one statement inserts into a snapshot's list.
const KEYS_AT_ONCE: usize = 256;

/// `INSERT OR IGNORE INTO temp.snapshot_keys (key) VALUES (?),(?),...` for `n` keys
/// (the one for [`KEYS_AT_ONCE`] made once).
fn insert_keys_sql(n: usize) -> std::borrow::Cow<'static, str> {
    fn make(n: usize) -> String {
        let mut sql = String::from("INSERT OR IGNORE INTO temp.snapshot_keys (key) VALUES (?)");
        for _ in 1..n {
            sql.push_str(",(?)");
        }
        sql
    }
    static FULL: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    if n == KEYS_AT_ONCE {
        std::borrow::Cow::Borrowed(FULL.get_or_init(|| make(n)).as_str())
    } else {
        std::borrow::Cow::Owned(make(n))
    }
}

impl Ledger {
    /// Starts a snapshot's list of keys (empty).
    pub fn begin_snapshot(&self) -> Result<(), LedgerError> {
        self.snapshot_keys.borrow_mut().clear();
        self.conn
            .execute_batch(
                "PRAGMA temp_store = FILE;
                 CREATE TEMP TABLE IF NOT EXISTS snapshot_keys (key TEXT PRIMARY KEY) WITHOUT ROWID;
                 DELETE FROM temp.snapshot_keys;",
            )
            .map_err(|e| self.sql(e))
    }

    /// Adds a key the snapshot lists. Keys are held back and inserted [`KEYS_AT_ONCE`]
    /// at a time (one statement per key was most of what a snapshot cost).
    pub fn snapshot_key(&self, key: &str) -> Result<(), LedgerError> {
        let full = {
            let mut keys = self.snapshot_keys.borrow_mut();
            keys.push(key.to_string());
            keys.len() >= KEYS_AT_ONCE
        };
        if full {
            self.flush_snapshot_keys()?;
        }
        Ok(())
    }

    /// Inserts the keys held back.
    fn flush_snapshot_keys(&self) -> Result<(), LedgerError> {
        let keys = std::mem::take(&mut *self.snapshot_keys.borrow_mut());
        for chunk in keys.chunks(KEYS_AT_ONCE) {
            let sql = insert_keys_sql(chunk.len());
            self.conn
                .prepare_cached(&sql)
                .and_then(|mut st| st.execute(rusqlite::params_from_iter(chunk)))
                .map_err(|e| self.sql(e))?;
        }
        Ok(())
    }

    /// How many documents `mapping` has in the ERP.
    pub fn held(&self, mapping: &str) -> Result<u64, LedgerError> {
        self.conn
            .query_row(
                "SELECT count(*) FROM documents WHERE mapping = ?1 AND erp_hash IS NOT NULL",
                params![mapping],
                |r| r.get::<_, i64>(0),
            )
            .map(|n| n as u64)
            .map_err(|e| self.sql(e))
    }

    /// How many documents `mapping` has in the ERP that the snapshot does not list.
    pub fn missing_count(&self, mapping: &str) -> Result<u64, LedgerError> {
        self.flush_snapshot_keys()?;
        self.conn
            .query_row(
                "SELECT count(*) FROM documents d WHERE d.mapping = ?1 AND d.erp_hash IS NOT NULL
                   AND NOT EXISTS (SELECT 1 FROM temp.snapshot_keys s WHERE s.key = d.key)",
                params![mapping],
                |r| r.get::<_, i64>(0),
            )
            .map(|n| n as u64)
            .map_err(|e| self.sql(e))
    }

    /// Calls `f` with each document `mapping` has in the ERP that the snapshot does not
    /// list, by key, with its ERP id when it is known (a target whose delete request
    /// needs the id refuses to send one without it).
    pub fn for_each_missing(
        &self,
        mapping: &str,
        f: &mut dyn FnMut(Missing) -> std::io::Result<()>,
    ) -> Result<std::io::Result<()>, LedgerError> {
        self.flush_snapshot_keys()?;
        let mut st = self
            .conn
            .prepare(
                "SELECT d.key, d.erp_hash, d.target_id, d.deletions FROM documents d
                 WHERE d.mapping = ?1 AND d.erp_hash IS NOT NULL
                   AND NOT EXISTS (SELECT 1 FROM temp.snapshot_keys s WHERE s.key = d.key)
                 ORDER BY d.key",
            )
            .map_err(|e| self.sql(e))?;
        let mut rows = st.query(params![mapping]).map_err(|e| self.sql(e))?;
        while let Some(r) = rows.next().map_err(|e| self.sql(e))? {
            let m = Missing {
                key: r.get(0).map_err(|e| self.sql(e))?,
                erp_hash: r.get(1).map_err(|e| self.sql(e))?,
                erp_id: r.get(2).map_err(|e| self.sql(e))?,
                deletions: r.get::<_, i64>(3).map_err(|e| self.sql(e))?.max(0) as u64,
            };
            if let Err(e) = f(m) {
                return Ok(Err(e));
            }
        }
        Ok(Ok(()))
    }

    /// Notes a document that a dry pass would create from `file`, so that references to
    /// it resolve.
    pub fn note_pending(&self, mapping: &str, key: &str, file: &str) -> Result<(), LedgerError> {
        self.conn
            .execute_batch(
                "CREATE TEMP TABLE IF NOT EXISTS pending (mapping TEXT, key TEXT, file TEXT, PRIMARY KEY (mapping, key)) WITHOUT ROWID",
            )
            .map_err(|e| self.sql(e))?;
        self.conn
            .prepare_cached(
                "INSERT OR IGNORE INTO temp.pending (mapping, key, file) VALUES (?1, ?2, ?3)",
            )
            .and_then(|mut st| st.execute(params![mapping, key, file]))
            .map(|_| ())
            .map_err(|e| self.sql(e))
    }

    /// Whether a dry pass noted anything yet (its table of pending documents exists).
    fn has_pending(&self) -> Result<bool, LedgerError> {
        self.conn
            .query_row(
                "SELECT count(*) FROM temp.sqlite_master WHERE name = 'pending'",
                [],
                |r| r.get::<_, i64>(0),
            )
            .map(|n| n > 0)
            .map_err(|e| self.sql(e))
    }

    /// Forgets what a dry pass noted from `file` of `mapping`: the file submits nothing
    /// (an invalid document under reject-file, too many deletes), so the pass would
    /// create none of its documents and references to them do not resolve.
    pub fn forget_pending(&self, mapping: &str, file: &str) -> Result<(), LedgerError> {
        if !self.has_pending()? {
            return Ok(());
        }
        self.conn
            .execute(
                "DELETE FROM temp.pending WHERE mapping = ?1 AND file = ?2",
                params![mapping, file],
            )
            .map(|_| ())
            .map_err(|e| self.sql(e))
    }

    /// Whether a dry pass would create this document ([`note_pending`](Ledger::note_pending)).
    pub fn is_pending(&self, mapping: &str, key: &str) -> Result<bool, LedgerError> {
        if !self.has_pending()? {
            return Ok(false);
        }
        self.conn
            .prepare_cached("SELECT count(*) FROM temp.pending WHERE mapping = ?1 AND key = ?2")
            .and_then(|mut st| st.query_row(params![mapping, key], |r| r.get::<_, i64>(0)))
            .map(|n| n > 0)
            .map_err(|e| self.sql(e))
    }

    /// The ERP's id of `mapping`'s document `key`, when the ERP has it (`ref`).
    pub fn erp_id(&self, mapping: &str, key: &str) -> Result<Option<String>, LedgerError> {
        use rusqlite::OptionalExtension;
        self.conn
            .prepare_cached(
                "SELECT target_id FROM documents
                 WHERE mapping = ?1 AND key = ?2 AND erp_hash IS NOT NULL",
            )
            .and_then(|mut st| {
                st.query_row(params![mapping, key], |r| r.get::<_, Option<String>>(0))
                    .optional()
            })
            .map(Option::flatten)
            .map_err(|e| self.sql(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::{Attempt, DocState, Operation};

    #[test]
    fn what_the_erp_holds_and_a_snapshot_no_longer_lists() {
        let d = tempfile::tempdir().unwrap();
        let l = Ledger::open(&d.path().join("ledger.sqlite")).unwrap();
        let mut w = l.doc_writer().unwrap();
        for (m, k, id) in [
            ("c", "A", Some("1")),
            ("c", "B", Some("2")),
            ("c", "C", None),
            ("o", "D", Some("4")),
        ] {
            let a = Attempt {
                mapping: m,
                key: k,
                content_hash: "h",
                operation: Operation::Create,
                file: "f",
                run_id: "r",
            };
            w.mark_in_flight(&a).unwrap();
            w.mark_outcome(m, k, DocState::Accepted, id, None, None)
                .unwrap();
        }
        // a key that was only ever invalid is not in the ERP
        l.mark_invalid("c", "E", "bad", "f", "r").unwrap();
        drop(w);
        assert_eq!(l.held("c").unwrap(), 3);
        l.begin_snapshot().unwrap();
        l.snapshot_key("A").unwrap();
        l.snapshot_key("A").unwrap();
        // B is missing; C too, without an id (the target says whether it can delete
        // it); D belongs to another mapping
        assert_eq!(l.missing_count("c").unwrap(), 2);
        let mut got = Vec::new();
        l.for_each_missing("c", &mut |m| {
            got.push(m);
            Ok(())
        })
        .unwrap()
        .unwrap();
        assert_eq!(
            got,
            [
                Missing {
                    key: "B".into(),
                    erp_hash: "h".into(),
                    erp_id: Some("2".into()),
                    deletions: 0
                },
                Missing {
                    key: "C".into(),
                    erp_hash: "h".into(),
                    erp_id: None,
                    deletions: 0
                }
            ]
        );
        // a new snapshot starts empty
        l.begin_snapshot().unwrap();
        assert_eq!(l.missing_count("c").unwrap(), 3);
        assert_eq!(l.erp_id("c", "A").unwrap().as_deref(), Some("1"));
        assert_eq!(l.erp_id("c", "E").unwrap(), None);
        assert_eq!(l.erp_id("x", "A").unwrap(), None);
        // and it works on a ledger opened read-only
        drop(l);
        let r = Ledger::open_read_only(&d.path().join("ledger.sqlite"))
            .unwrap()
            .unwrap();
        r.begin_snapshot().unwrap();
        r.snapshot_key("B").unwrap();
        assert_eq!(r.missing_count("c").unwrap(), 2);
    }
}
