//! Where documents go. A target says how it takes them ([`Delivery`]): written locally in
//! batches behind one durability barrier (the outbox), or sent to a remote ERP from
//! worker threads (http). [`Submission`] drives either for a whole file, with the
//! ledger: a document is marked in flight before it goes, and its outcome is recorded
//! after it was delivered.

pub mod http;
pub mod outbox;
mod remote;
mod settle;
mod submission;
mod window;

pub use settle::settle_open_documents;
pub use submission::{Batch, Submission, Submitted};

use crate::config::{Config, TargetKind};
use crate::spool::SpooledDoc;
use std::sync::atomic::{AtomicBool, Ordering};

/// What the target said about one document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SubmitOutcome {
    /// Accepted, with the ERP's id for it where known, and the HTTP status.
    Accepted {
        id: Option<String>,
        status: Option<u16>,
    },
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
    /// The ERP answered, but the answer does not say whether it created this document
    /// (a refused batch that the ERP may have taken in part, an answer with fewer ids
    /// than documents): never sent again until an operator, or the ERP, says.
    InDoubt {
        status: Option<u16>,
        message: String,
    },
}

impl SubmitOutcome {
    pub fn is_unavailable(&self) -> bool {
        matches!(self, SubmitOutcome::Unavailable { .. })
    }
}

/// Which mapping a document comes from.
#[derive(Debug, Clone, Copy)]
pub struct DocContext<'a> {
    pub mapping: &'a str,
    pub document_type: &'a str,
}

/// Why a submission stops sending: shared by everyone who submits for one file.
#[derive(Debug)]
pub struct Cancel<'a> {
    /// Set by the first document that found the target unavailable: no one starts
    /// another attempt.
    down: AtomicBool,
    /// A second stop signal (SIGINT/SIGTERM): stop after the document in flight.
    stop: &'a AtomicBool,
}

impl<'a> Cancel<'a> {
    pub fn new(stop: &'a AtomicBool) -> Cancel<'a> {
        Cancel {
            down: AtomicBool::new(false),
            stop,
        }
    }

    /// The target is unavailable: everyone stops.
    pub fn target_down(&self) {
        self.down.store(true, Ordering::SeqCst);
    }

    pub fn is_down(&self) -> bool {
        self.down.load(Ordering::SeqCst)
    }

    pub fn is_stopped(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }

    /// Whether to start no other attempt: the target is down or a stop came.
    pub fn any(&self) -> bool {
        self.is_down() || self.is_stopped()
    }
}

/// A target that writes where this process can see it (the outbox). Documents go in
/// batches from the ledger's thread; a batch is made durable at once ([`flush`]) before
/// its documents are recorded as accepted, and a document a dead run left in flight is
/// settled by looking whether it is there.
///
/// [`flush`]: LocalTarget::flush
pub trait LocalTarget {
    /// Documents marked in flight (one ledger commit) before they are written: a dead
    /// run leaves at most this many in flight.
    fn batch_size(&self) -> usize;
    /// Writes one document (not yet durable nor visible).
    fn write(&self, ctx: &DocContext<'_>, doc: &SpooledDoc) -> SubmitOutcome;
    /// Makes what [`write`](LocalTarget::write) accepted since the last flush durable
    /// and visible. `Err`: the target is unavailable (some may have reached it).
    fn flush(&self) -> Result<(), String>;
    /// Whether this document, with this content, is already at the target.
    fn already_there(&self, ctx: &DocContext<'_>, doc: &SpooledDoc) -> bool;
}

/// A target over the network (an ERP's API). Worker threads send, [`concurrency`] at a
/// time, while the ledger's thread marks the next documents in flight and records the
/// answers; whether a document left in flight arrived cannot be seen, so it is sent
/// again (with the same idempotency key).
///
/// [`concurrency`]: RemoteTarget::concurrency
pub trait RemoteTarget: Sync {
    /// How many documents may be in flight at once.
    fn concurrency(&self) -> usize;
    /// Sends one document, retrying transient failures unless `cancel` says stop.
    fn send(&self, ctx: &DocContext<'_>, doc: &SpooledDoc, cancel: &Cancel<'_>) -> SubmitOutcome;
    /// How many creates one request may carry, if creates go in batches (`None`: a
    /// request for each document).
    fn batch_size(&self) -> Option<usize> {
        None
    }
    /// Sends creates of one group together (at most [`batch_size`] of them): an
    /// outcome for each, in their order.
    ///
    /// [`batch_size`]: RemoteTarget::batch_size
    fn send_batch(
        &self,
        ctx: &DocContext<'_>,
        docs: &[SpooledDoc],
        cancel: &Cancel<'_>,
    ) -> Vec<SubmitOutcome> {
        docs.iter().map(|d| self.send(ctx, d, cancel)).collect()
    }
    /// Asks the ERP whether it has the document of this key; `None` when the target
    /// cannot ask (no `verify`).
    fn look_up(&self, _ctx: &DocContext<'_>, _key: &str) -> Option<LookUp> {
        None
    }
}

/// What the ERP said when asked whether it has a document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LookUp {
    /// It has it, with this id where the answer gives one.
    Has { id: Option<String> },
    /// It does not.
    HasNot,
    /// It could not say (unreachable, an error answer): why.
    Unanswered(String),
}

/// How a target takes documents.
pub enum Delivery<'a> {
    Local(&'a dyn LocalTarget),
    Remote(&'a dyn RemoteTarget),
}

/// A destination for documents.
pub trait Target {
    fn delivery(&self) -> Delivery<'_>;
}

/// The configured target.
pub fn make_target(cfg: &Config) -> Box<dyn Target> {
    match (&cfg.target.kind, &cfg.target.http) {
        (TargetKind::Http, Some(h)) => Box::new(http::HttpTarget::new(h, cfg.target.format)),
        _ => Box::new(outbox::Outbox::new(&cfg.target.dir, cfg.target.format)),
    }
}
