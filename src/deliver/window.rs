//! What a submission has chosen and what came back: the documents chosen are bounded by
//! a count and by their payload bytes; an answer waits to be recorded.

use super::SubmitOutcome;
use crate::spool::SpooledDoc;

/// Payload bytes a submission holds at most (documents chosen and not yet answered),
/// beside its count of documents: a file of very large documents must not multiply
/// its memory by the window.
pub(super) const WINDOW_BYTES: usize = 8 << 20;

/// How many more documents may be chosen: a count and a payload budget (at least one
/// document is always chosen, however large).
#[derive(Debug, Clone, Copy)]
pub(super) struct Room {
    pub docs: usize,
    pub bytes: usize,
}

impl Room {
    pub const NONE: Room = Room { docs: 0, bytes: 0 };
}

/// A document's answer, not yet recorded.
pub(super) struct Sent {
    pub key: String,
    pub line: u64,
    pub operation: crate::ledger::Operation,
    pub outcome: SubmitOutcome,
}

/// A document chosen to be sent, with its group (`ordinal / batch size`, its place
/// among all the file's documents): only the documents of one group may share a
/// request. A group is a fixed stretch of the file, so a run after one that died
/// groups what the dead run left in flight as the dead run did, whatever became of
/// the other documents, and a resent batch carries the same idempotency key.
pub(super) struct Job {
    pub doc: SpooledDoc,
    pub group: u64,
}
