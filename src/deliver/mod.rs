//! Where documents go. A target takes one document at a time and says what became of it;
//! [`submit`](crate::deliver::submit) drives it, with the ledger, for a whole file.

pub mod http;
pub mod outbox;
pub mod submit;

use crate::spool::SpooledDoc;

/// What the target said about one document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SubmitOutcome {
    /// Accepted, with the ERP's id for it where known.
    Accepted { id: Option<String> },
    /// Refused for good (the ERP's message and HTTP status).
    Rejected {
        status: Option<u16>,
        message: String,
    },
    /// Not reachable after retries: stop submitting. `maybe_delivered`: whether an
    /// attempt may have reached the target without its answer being known (a timeout
    /// or a dropped connection after the request went out); then the document stays in
    /// flight, else it is known not to have been delivered.
    Unavailable {
        message: String,
        maybe_delivered: bool,
    },
    /// Not attempted: the target went down, or a stop came, before its turn.
    Skipped { reason: &'static str },
}

/// Which mapping a document comes from.
#[derive(Debug, Clone, Copy)]
pub struct DocContext<'a> {
    pub mapping: &'a str,
    pub document_type: &'a str,
}

/// A destination for documents, shared by the submitting threads.
pub trait Target: Sync {
    /// Submits one document.
    fn submit(&self, ctx: &DocContext<'_>, doc: &SpooledDoc) -> SubmitOutcome;
    /// Whether this document is already at the target (settles a document that a dead
    /// run left in flight without sending it again).
    fn already_there(&self, ctx: &DocContext<'_>, doc: &SpooledDoc) -> bool;
    /// Whether [`already_there`](Target::already_there) can ever say yes. When it
    /// cannot, a document left in flight is simply sent again, and the ledger decides
    /// in one statement.
    fn checks_delivery(&self) -> bool {
        true
    }
    /// How many documents may be in flight at once.
    fn concurrency(&self) -> usize {
        1
    }
    /// How many documents are marked in flight (one ledger commit) before they are
    /// submitted, for a target that is not [`threaded`](Target::threaded): a dead run
    /// leaves at most this many in flight.
    fn batch_size(&self) -> usize {
        32
    }
    /// Whether documents are submitted from worker threads while the ledger is kept
    /// (a remote target, whose answers take a network round trip).
    fn threaded(&self) -> bool {
        false
    }
    /// Makes what [`submit`](Target::submit) accepted since the last flush durable; a
    /// document is recorded as accepted only after this succeeded. `Err`: the target
    /// is unavailable and those documents were not delivered.
    fn flush(&self) -> Result<(), String> {
        Ok(())
    }
}
