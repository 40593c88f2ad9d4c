//! What notifications remember between runs (`notices`): a name and its value, e.g.
//! `target` = `down`, or `no_file:billing-invoices` = the day one was sent.

use super::{now, Ledger, LedgerError};
use rusqlite::{params, OptionalExtension};

impl Ledger {
    /// The value remembered under `name`, if any.
    pub fn notice(&self, name: &str) -> Result<Option<String>, LedgerError> {
        self.conn
            .query_row(
                "SELECT value FROM notices WHERE name = ?1",
                params![name],
                |r| r.get::<_, String>(0),
            )
            .optional()
            .map_err(|e| self.sql(e))
    }

    /// Remembers `value` under `name` (replacing what was there).
    pub fn set_notice(&self, name: &str, value: &str) -> Result<(), LedgerError> {
        self.conn
            .execute(
                "INSERT INTO notices (name, value, updated) VALUES (?1, ?2, ?3)
                 ON CONFLICT(name) DO UPDATE SET value = excluded.value, updated = excluded.updated",
                params![name, value, now()],
            )
            .map(|_| ())
            .map_err(|e| self.sql(e))
    }

    /// How many files of `mapping` a run started handling at or after `since` (a
    /// timestamp as the ledger writes them, UTC).
    pub fn files_of_mapping_since(&self, mapping: &str, since: &str) -> Result<u64, LedgerError> {
        self.conn
            .query_row(
                "SELECT count(*) FROM files WHERE mapping = ?1 AND started >= ?2",
                params![mapping, since],
                |r| r.get::<_, i64>(0),
            )
            .map(|n| n as u64)
            .map_err(|e| self.sql(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_notice_is_remembered_and_replaced() {
        let l = Ledger::open_in_memory().unwrap();
        assert_eq!(l.notice("target").unwrap(), None);
        l.set_notice("target", "down").unwrap();
        assert_eq!(l.notice("target").unwrap().as_deref(), Some("down"));
        l.set_notice("target", "up").unwrap();
        assert_eq!(l.notice("target").unwrap().as_deref(), Some("up"));
    }
}
