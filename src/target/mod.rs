//! Where documents go. A target takes one document at a time and says what became of it.

pub mod outbox;

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
    /// Not reachable after retries: stop submitting.
    Unavailable { message: String },
}

/// A destination for documents.
pub trait Target {
    /// Submits one document of the given mapping.
    fn submit(&mut self, document_type: &str, doc: &SpooledDoc) -> SubmitOutcome;
    /// Whether this document is already at the target (used to settle a document that a
    /// dead run left in flight).
    fn already_there(&mut self, document_type: &str, doc: &SpooledDoc) -> bool;
}
