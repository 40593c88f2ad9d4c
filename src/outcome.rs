//! What became of a file, and the counts of its documents: one type each, shared by the
//! check, the reports, the summaries and the ledger.

use serde::{Deserialize, Serialize};

/// What became of a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Dry run: every document is valid.
    Valid,
    /// Dry run: at least one problem.
    Invalid,
    /// Run: every document accepted (or already imported); the file is in done/.
    Done,
    /// Run: the file is in failed/.
    Failed,
    /// Run: the target (or the machine) was unavailable; the file stays in the inbox.
    Unavailable,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Valid => "valid",
            Outcome::Invalid => "invalid",
            Outcome::Done => "done",
            Outcome::Failed => "failed",
            Outcome::Unavailable => "unavailable",
        }
    }

    /// An outcome as stored; `None` for a text this build does not know.
    pub fn parse(s: &str) -> Option<Outcome> {
        Some(match s {
            "valid" => Outcome::Valid,
            "invalid" => Outcome::Invalid,
            "done" => Outcome::Done,
            "failed" => Outcome::Failed,
            "unavailable" => Outcome::Unavailable,
            _ => return None,
        })
    }
}

/// How many rows and documents a file (or a run) had, and what became of them.
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq, Eq)]
pub struct Counts {
    pub rows: u64,
    pub documents: u64,
    pub accepted: u64,
    pub rejected: u64,
    pub invalid: u64,
    /// Accepted before with the same content: not sent again.
    pub already_imported: u64,
}

impl Counts {
    /// Adds another file's counts.
    pub fn add(&mut self, other: &Counts) {
        self.rows += other.rows;
        self.documents += other.documents;
        self.accepted += other.accepted;
        self.rejected += other.rejected;
        self.invalid += other.invalid;
        self.already_imported += other.already_imported;
    }

    /// Documents that passed validation (some may have been rejected later).
    pub fn valid(&self) -> u64 {
        self.documents.saturating_sub(self.invalid)
    }
}
