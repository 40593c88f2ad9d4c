//! The runs and the files they handled.

use super::{now, Ledger, LedgerError};
use crate::outcome::{Counts, Outcome};
use crate::problem::{bound, MAX_MESSAGE_CHARS};
use rusqlite::params;

/// A file's line in the ledger.
#[derive(Debug, Clone)]
pub struct FileRecord {
    pub run_id: String,
    pub name: String,
    pub stored_as: Option<String>,
    pub sha256: String,
    pub mapping: String,
    pub outcome: Outcome,
    pub counts: Counts,
    pub started: String,
    pub finished: String,
    pub first_error: Option<String>,
}

#[cfg(test)]
impl Default for FileRecord {
    /// A file line for tests: done, nothing in it.
    fn default() -> FileRecord {
        FileRecord {
            run_id: String::new(),
            name: String::new(),
            stored_as: None,
            sha256: String::new(),
            mapping: String::new(),
            outcome: Outcome::Done,
            counts: Counts::default(),
            started: String::new(),
            finished: String::new(),
            first_error: None,
        }
    }
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
    pub files: u64,
    #[serde(flatten)]
    pub counts: Counts,
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

impl Ledger {
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
                   invalid = ?6, already_imported = ?7, exit_code = ?8, rows = ?9, documents = ?10,
                   created = ?11, updated = ?12, deleted = ?13, skipped = ?14
                 WHERE id = ?1",
                params![
                    r.id,
                    now(),
                    r.files as i64,
                    r.counts.accepted as i64,
                    r.counts.rejected as i64,
                    r.counts.invalid as i64,
                    r.counts.already_imported as i64,
                    r.exit_code,
                    r.counts.rows as i64,
                    r.counts.documents as i64,
                    r.counts.created as i64,
                    r.counts.updated as i64,
                    r.counts.deleted as i64,
                    r.counts.skipped as i64
                ],
            )
            .map(|_| ())
            .map_err(|e| self.sql(e))
    }

    pub fn record_file(&self, f: &FileRecord) -> Result<(), LedgerError> {
        self.conn
            .execute(
                "INSERT INTO files (run_id, name, stored_as, sha256, mapping, outcome, rows, documents,
                   accepted, rejected, invalid, already_imported, started, finished, first_error,
                   created, updated, deleted, skipped)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19)",
                params![
                    f.run_id,
                    f.name,
                    f.stored_as,
                    f.sha256,
                    f.mapping,
                    f.outcome.as_str(),
                    f.counts.rows as i64,
                    f.counts.documents as i64,
                    f.counts.accepted as i64,
                    f.counts.rejected as i64,
                    f.counts.invalid as i64,
                    f.counts.already_imported as i64,
                    f.started,
                    f.finished,
                    f.first_error
                        .as_deref()
                        .map(|e| bound(&crate::redact::redact(e), MAX_MESSAGE_CHARS).into_owned()),
                    f.counts.created as i64,
                    f.counts.updated as i64,
                    f.counts.deleted as i64,
                    f.counts.skipped as i64
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

    /// The most recent runs, newest first.
    pub fn recent_runs(&self, limit: usize) -> Result<Vec<RunRecord>, LedgerError> {
        self.runs_where("1", limit)
    }

    /// The most recent runs that handled a file or did not end well (a non-zero exit,
    /// or no recorded end), newest first: the passes of `watch` that found nothing to
    /// do are left out, so that they never push a failed run out of sight.
    pub fn recent_runs_with_work(&self, limit: usize) -> Result<Vec<RunRecord>, LedgerError> {
        self.runs_where(
            "files > 0 OR exit_code IS NULL OR exit_code NOT IN (0, 4)",
            limit,
        )
    }

    /// The most recent runs that failed (exit 1 or 3, or no recorded end), newest first.
    pub fn recent_failed_runs(&self, limit: usize) -> Result<Vec<RunRecord>, LedgerError> {
        self.runs_where("exit_code IS NULL OR exit_code IN (1, 3)", limit)
    }

    /// How many runs started after `since` (an RFC 3339 time) handled no file and
    /// ended well.
    pub fn empty_runs_since(&self, since: &str) -> Result<u64, LedgerError> {
        self.conn
            .query_row(
                "SELECT count(*) FROM runs WHERE started > ?1 AND files = 0 AND exit_code IN (0, 4)",
                params![since],
                |r| r.get::<_, i64>(0),
            )
            .map(|n| n as u64)
            .map_err(|e| self.sql(e))
    }

    fn runs_where(&self, filter: &str, limit: usize) -> Result<Vec<RunRecord>, LedgerError> {
        self.rows(
            &format!(
                "SELECT id, command, started, finished, files, accepted, rejected, invalid, already_imported, exit_code,
                   rows, documents, created, updated, deleted, skipped
                 FROM runs WHERE {filter} ORDER BY started DESC, id DESC LIMIT ?1"
            ),
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
                    files: r.get::<_, i64>(4)? as u64,
                    counts: Counts {
                        rows: r.get::<_, i64>(10)? as u64,
                        documents: r.get::<_, i64>(11)? as u64,
                        accepted: r.get::<_, i64>(5)? as u64,
                        rejected: r.get::<_, i64>(6)? as u64,
                        invalid: r.get::<_, i64>(7)? as u64,
                        already_imported: r.get::<_, i64>(8)? as u64,
                        unchanged: r.get::<_, i64>(8)? as u64,
                        created: r.get::<_, i64>(12)? as u64,
                        updated: r.get::<_, i64>(13)? as u64,
                        deleted: r.get::<_, i64>(14)? as u64,
                        skipped: r.get::<_, i64>(15)? as u64,
                        // held_back is not kept in the ledger
                        ..Counts::default()
                    },
                    exit_code,
                })
            },
        )
    }

    /// The files of recent runs, newest first.
    pub fn recent_files(&self, limit: usize) -> Result<Vec<FileRecord>, LedgerError> {
        self.rows(
            "SELECT run_id, name, stored_as, sha256, mapping, outcome, rows, documents, accepted, rejected,
               invalid, already_imported, started, finished, first_error, created, updated, deleted,
               skipped
             FROM files ORDER BY finished DESC, id DESC LIMIT ?1",
            params![limit as i64],
            |r| {
                Ok(FileRecord {
                    run_id: r.get(0)?,
                    name: r.get(1)?,
                    stored_as: r.get(2)?,
                    sha256: r.get(3)?,
                    mapping: r.get(4)?,
                    outcome: outcome_of(r, 5)?,
                    counts: Counts {
                        rows: r.get::<_, i64>(6)? as u64,
                        documents: r.get::<_, i64>(7)? as u64,
                        accepted: r.get::<_, i64>(8)? as u64,
                        rejected: r.get::<_, i64>(9)? as u64,
                        invalid: r.get::<_, i64>(10)? as u64,
                        already_imported: r.get::<_, i64>(11)? as u64,
                        unchanged: r.get::<_, i64>(11)? as u64,
                        created: r.get::<_, i64>(15)? as u64,
                        updated: r.get::<_, i64>(16)? as u64,
                        deleted: r.get::<_, i64>(17)? as u64,
                        skipped: r.get::<_, i64>(18)? as u64,
                        // held_back is not kept in the ledger
                        ..Counts::default()
                    },
                    started: r.get(12)?,
                    finished: r.get(13)?,
                    first_error: r.get(14)?,
                })
            },
        )
    }
}

/// A file's outcome as stored; a text this build does not know is an error, never
/// taken for another outcome.
fn outcome_of(r: &rusqlite::Row<'_>, i: usize) -> rusqlite::Result<Outcome> {
    let text: String = r.get(i)?;
    Outcome::parse(&text).ok_or_else(|| {
        rusqlite::Error::FromSqlConversionFailure(
            i,
            rusqlite::types::Type::Text,
            format!("unknown file outcome {text:?} (a newer erpdrop wrote it?)").into(),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
