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
///
/// `accepted` is `created + updated + deleted`. In a dry run, `created`, `updated` and
/// `deleted` count what would be asked of the ERP, and `accepted` stays 0.
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq, Eq)]
pub struct Counts {
    pub rows: u64,
    pub documents: u64,
    pub accepted: u64,
    pub rejected: u64,
    pub invalid: u64,
    /// Accepted before with the same content: not sent again.
    pub already_imported: u64,
    pub created: u64,
    pub updated: u64,
    pub deleted: u64,
    /// The same as `already_imported`, under the name master data uses.
    pub unchanged: u64,
    /// Valid documents not submitted because the file has invalid ones
    /// (`on_invalid = "reject-file"`).
    pub held_back: u64,
    /// Rows left out by `[[skip]]` (`VOID`, `CANCELLED`): they make no document.
    pub skipped: u64,
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
        self.created += other.created;
        self.updated += other.updated;
        self.deleted += other.deleted;
        self.unchanged += other.unchanged;
        self.held_back += other.held_back;
        self.skipped += other.skipped;
    }

    /// Whether any document is (or would be) updated or deleted: summaries name the
    /// operations then.
    pub fn has_changes(&self) -> bool {
        self.updated > 0 || self.deleted > 0
    }

    /// Documents that passed validation (some may have been rejected later).
    pub fn valid(&self) -> u64 {
        self.documents.saturating_sub(self.invalid)
    }
}

/// A document the target accepted (or, in a dry run, would be sent), with what was
/// asked of the ERP and the id it gave.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct AcceptedDoc {
    pub document: String,
    /// The line of the file; 0 for a delete (the file no longer has the document).
    #[serde(skip_serializing_if = "is_zero", default)]
    pub line: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// What was (or in a dry run, would be) asked of the ERP.
    #[serde(default)]
    pub operation: crate::ledger::Operation,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}
