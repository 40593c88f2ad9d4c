//! Automatic retries (`[retry]`): the failed files erpdrop gave up on, by where they are
//! stored in failed/. How often each document failed is in `documents.failures`.

use super::{Ledger, LedgerError};
use crate::problem::{bound, MAX_MESSAGE_CHARS};
use rusqlite::params;

/// A failed file that erpdrop stopped retrying: its documents failed `attempts` times.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct GaveUp {
    pub stored_as: String,
    pub name: String,
    pub mapping: String,
    pub attempts: i64,
    pub last_error: Option<String>,
    pub time: String,
}

impl Ledger {
    /// Records that erpdrop gave up on the file stored as `stored_as`; `true` the first
    /// time (an event to tell someone about), `false` when it was known.
    pub fn record_gave_up(
        &self,
        stored_as: &str,
        name: &str,
        mapping: &str,
        attempts: i64,
        last_error: Option<&str>,
    ) -> Result<bool, LedgerError> {
        let last_error = last_error.map(|e| {
            let e = crate::redact::redact(e);
            bound(&e, MAX_MESSAGE_CHARS).into_owned()
        });
        self.conn
            .execute(
                "INSERT OR IGNORE INTO gave_up (stored_as, name, mapping, attempts, last_error, time)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![stored_as, name, mapping, attempts, last_error, self.now()],
            )
            .map(|n| n == 1)
            .map_err(|e| self.sql(e))
    }

    /// The file stored as `stored_as` is no longer given up (it left failed/).
    pub fn forget_gave_up(&self, stored_as: &str) -> Result<(), LedgerError> {
        self.conn
            .execute(
                "DELETE FROM gave_up WHERE stored_as = ?1",
                params![stored_as],
            )
            .map(|_| ())
            .map_err(|e| self.sql(e))
    }

    /// Every file given up on, newest first.
    pub fn gave_up_files(&self) -> Result<Vec<GaveUp>, LedgerError> {
        self.rows(
            "SELECT stored_as, name, mapping, attempts, last_error, time FROM gave_up ORDER BY time DESC",
            [],
            |r| {
                Ok(GaveUp {
                    stored_as: r.get(0)?,
                    name: r.get(1)?,
                    mapping: r.get(2)?,
                    attempts: r.get(3)?,
                    last_error: r.get(4)?,
                    time: r.get(5)?,
                })
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_is_given_up_once_and_forgotten_when_it_leaves() {
        let d = tempfile::tempdir().unwrap();
        let l = Ledger::open(&d.path().join("ledger.sqlite")).unwrap();
        let at = "drop/failed/INV_1.csv";
        assert!(l
            .record_gave_up(at, "INV_1.csv", "inv", 3, Some("no"))
            .unwrap());
        assert!(!l.record_gave_up(at, "INV_1.csv", "inv", 4, None).unwrap());
        let all = l.gave_up_files().unwrap();
        assert_eq!((all.len(), all[0].attempts), (1, 3));
        l.forget_gave_up(at).unwrap();
        assert!(l.gave_up_files().unwrap().is_empty());
    }

    #[test]
    fn failures_count_rejections_and_invalid_attempts_until_one_is_accepted() {
        let d = tempfile::tempdir().unwrap();
        let l = Ledger::open(&d.path().join("ledger.sqlite")).unwrap();
        l.mark_invalid("m", "K", "bad", "f", "r1").unwrap();
        l.mark_invalid("m", "K", "bad", "f", "r2").unwrap();
        let doc = l.document("m", "K").unwrap().unwrap();
        assert_eq!(doc.failures, 2);
    }
}
