//! Submitting a file's spooled documents through the ledger.
//!
//! For each document: already accepted with the same content -> skipped; left in flight
//! by a dead run and already at the target -> settled; left in flight with other
//! content -> in doubt, not sent; otherwise marked in flight (committed), submitted,
//! and its outcome recorded (committed). The ledger's work is batched: the answers of
//! the documents sent so far are recorded in the same commit that marks the next ones
//! in flight, so it costs about one commit per batch, not two per document. A local
//! target writes a batch from this thread and makes it durable at once before it is
//! recorded; a remote one is fed by worker threads (see `remote`) while this thread
//! keeps the ledger (SQLite is used from one thread only).

use super::remote::Shared;
use super::window::{Job, Room, Sent, WINDOW_BYTES};
use super::{Cancel, Delivery, DocContext, LocalTarget, RemoteTarget, SubmitOutcome, Target};
use crate::check::in_doubt_problem;
use crate::ledger::{Answer, Attempt, Claim, DocState, DocWriter, Ledger, LedgerError, Operation};
use crate::problem::{quote, Code, Problem, Stage};
use crate::report::AcceptedDoc;
use crate::spool::SpooledDoc;
use std::sync::atomic::{AtomicBool, Ordering};

/// What submitting a file's documents gave.
#[derive(Debug, Default)]
pub struct Submitted {
    /// Accepted: created, updated and deleted.
    pub accepted: u64,
    pub created: u64,
    pub updated: u64,
    pub deleted: u64,
    pub rejected: u64,
    pub already_imported: u64,
    /// Not sent: an earlier attempt with other content has no known outcome.
    pub in_doubt: u64,
    pub problems: Vec<Problem>,
    /// The accepted documents with the ERP's ids.
    pub documents: crate::problem_log::SpillLog<AcceptedDoc>,
    /// The target is unavailable: stop the run.
    pub target_down: bool,
    /// Why the target was found unavailable (its first answer or transport error);
    /// `None` when it was not, or when the run stopped for another reason (the spool).
    pub down_reason: Option<String>,
    /// A stop signal arrived.
    pub interrupted: bool,
}

impl Submitted {
    /// Adds what a later submission for the same file gave (its deletes).
    pub fn merge(&mut self, other: Submitted) {
        self.accepted += other.accepted;
        self.created += other.created;
        self.updated += other.updated;
        self.deleted += other.deleted;
        self.rejected += other.rejected;
        self.already_imported += other.already_imported;
        self.in_doubt += other.in_doubt;
        self.problems.extend(other.problems);
        self.documents.append(other.documents);
        self.target_down |= other.target_down;
        if self.down_reason.is_none() {
            self.down_reason = other.down_reason;
        }
        self.interrupted |= other.interrupted;
    }
}

/// Who is submitting: mapping, file and run, for the ledger.
pub struct Batch<'a> {
    pub ctx: DocContext<'a>,
    pub file: &'a str,
    pub run_id: &'a str,
}

/// One file's documents on their way to a target, with the ledger that records them.
pub struct Submission<'a, D> {
    docs: D,
    /// No more documents to choose.
    exhausted: bool,
    delivery: Delivery<'a>,
    w: DocWriter<'a>,
    batch: &'a Batch<'a>,
    stop: &'a AtomicBool,
    out: Submitted,
    /// Creates one request may carry (1: one each): the size of a group of documents
    /// (`ordinal / per_request`).
    per_request: u64,
    /// The next document, taken from `docs` to see whether it belongs to the group
    /// of the last one chosen.
    ahead: Option<std::io::Result<SpooledDoc>>,
}

impl<'a, D: Iterator<Item = std::io::Result<SpooledDoc>>> Submission<'a, D> {
    /// Submits every document of `docs` to `target`, recording each in `ledger`; stops
    /// early when the target is unavailable or `stop` is set (what was not sent is
    /// recorded as not sent).
    pub fn run(
        docs: D,
        target: &'a dyn Target,
        ledger: &'a Ledger,
        batch: &'a Batch<'a>,
        stop: &'a AtomicBool,
    ) -> Result<Submitted, LedgerError> {
        let delivery = target.delivery();
        let per_request = match delivery {
            Delivery::Remote(t) => t.batch_size().unwrap_or(1).max(1) as u64,
            Delivery::Local(_) => 1,
        };
        let mut s = Submission {
            docs,
            exhausted: false,
            delivery,
            w: ledger.doc_writer()?,
            batch,
            stop,
            out: Submitted::default(),
            per_request,
            ahead: None,
        };
        match s.delivery {
            Delivery::Local(t) => s.local(t)?,
            Delivery::Remote(t) => s.remote(t)?,
        }
        Ok(s.out)
    }

    /// A local target: batches of its `batch_size` written from this thread, each
    /// made durable before it is recorded (in the commit that marks the next batch).
    fn local(&mut self, t: &dyn LocalTarget) -> Result<(), LedgerError> {
        let per = t.batch_size().max(1);
        let mut results: Vec<Sent> = Vec::with_capacity(per.min(1024));
        loop {
            let room = Room {
                docs: per,
                bytes: WINDOW_BYTES,
            };
            let chosen = self.record_then_choose(&mut results, room)?;
            if chosen.is_empty() {
                return Ok(());
            }
            // a stop signal or the target going down ends the batch early: the rest is
            // recorded as not sent
            let mut skip = None;
            for Job { doc, .. } in chosen {
                if skip.is_none() && self.stopped() {
                    self.out.interrupted = true;
                    skip = Some("not sent: the run was stopped");
                }
                let outcome = match skip {
                    Some(reason) => SubmitOutcome::Skipped { reason },
                    None => t.write(&self.batch.ctx, &doc),
                };
                if outcome.is_unavailable() {
                    skip = Some("not sent: the target was unavailable");
                }
                results.push(Sent {
                    key: doc.key,
                    line: doc.line,
                    operation: doc.operation,
                    outcome,
                });
            }
        }
    }

    /// A remote target (HTTP): worker threads submit, `concurrency` documents at a
    /// time, while this thread keeps the ledger: it marks documents in flight ahead of
    /// the workers and records their answers as they come, a few dozen per commit, so
    /// that the ledger's work overlaps the network's.
    fn remote(&mut self, target: &dyn RemoteTarget) -> Result<(), LedgerError> {
        let s = self;
        let workers = target.concurrency().max(1);
        // documents marked in flight and handed to the workers, not yet recorded: with
        // batches, enough for every worker to have one at the ERP and one waiting
        let per_request = target.batch_size().unwrap_or(1).max(1);
        let window = (workers * 32).max(64).max(workers * per_request * 2);
        let half = window / 2;
        let ctx = s.batch().ctx;
        let shared = Shared::new(half);
        let stop = s.stop_flag();
        let cancel = Cancel::new(stop);
        std::thread::scope(|scope| -> Result<(), LedgerError> {
            for _ in 0..workers {
                let (shared, cancel) = (&shared, &cancel);
                scope.spawn(move || shared.work_loop(target, &ctx, cancel));
            }
            let result = (|| {
                // answered, not yet recorded
                let mut answered: Vec<Sent> = Vec::new();
                loop {
                    // Record the answers and mark the next documents in flight: one commit.
                    let (outstanding, bytes) = {
                        let q = shared.lock();
                        (q.outstanding, q.bytes)
                    };
                    let room = if outstanding <= half && bytes <= WINDOW_BYTES / 2 {
                        Room {
                            docs: window - outstanding,
                            bytes: WINDOW_BYTES - bytes,
                        }
                    } else {
                        Room::NONE
                    };
                    let chosen = s.record_then_choose(&mut answered, room)?;
                    if !chosen.is_empty() {
                        let mut q = shared.lock();
                        q.outstanding += chosen.len();
                        q.bytes += chosen.iter().map(|j| j.doc.body.len()).sum::<usize>();
                        q.jobs.extend(chosen);
                        drop(q);
                        shared.work.notify_all();
                    }
                    let more = s.more();
                    // once the target is down or a stop came, only the last answers matter
                    let quiet = !more || cancel.is_down();
                    let (results, outstanding) = shared.wait_for_answers(more, quiet, &cancel);
                    answered.extend(results);
                    if s.stopped() {
                        s.interrupt();
                    }
                    if outstanding == 0 && !s.more() {
                        return s.settle(answered);
                    }
                }
            })();
            shared.close();
            result
        })
    }

    pub(super) fn stop_flag(&self) -> &'a AtomicBool {
        self.stop
    }

    pub(super) fn stopped(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }

    /// Whether more documents are to be chosen.
    pub(super) fn more(&self) -> bool {
        !self.exhausted && !self.out.target_down && !self.out.interrupted
    }

    pub(super) fn interrupt(&mut self) {
        self.out.interrupted = true;
    }

    pub(super) fn batch(&self) -> &'a Batch<'a> {
        self.batch
    }

    /// Makes the answers durable at the target and records them, then marks as many
    /// next documents in flight as there is `room` for (none when there is none, the
    /// documents are exhausted, the target is down or a stop came): one commit.
    /// Nothing is recorded as accepted before it is durable at the target, and no
    /// document is handed out before its mark is committed.
    pub(super) fn record_then_choose(
        &mut self,
        answered: &mut Vec<Sent>,
        room: Room,
    ) -> Result<Vec<Job>, LedgerError> {
        self.flush(answered);
        let ledger = self.w.ledger;
        ledger.in_transaction(|| {
            for sent in answered.drain(..) {
                self.record(sent)?;
            }
            if room.docs == 0 || !self.more() {
                return Ok(Vec::new());
            }
            self.choose(room)
        })
    }

    /// Makes the last answers durable at the target and records them, in one commit.
    pub(super) fn settle(&mut self, mut answered: Vec<Sent>) -> Result<(), LedgerError> {
        if answered.is_empty() {
            return Ok(());
        }
        self.record_then_choose(&mut answered, Room::NONE)
            .map(|_| ())
    }

    /// Documents to submit, as many as there is `room` for, marked in flight (in the
    /// caller's transaction). With batches, a group is never cut: the documents of the
    /// last one chosen are chosen with it, so that they can go in one request.
    fn choose(&mut self, room: Room) -> Result<Vec<Job>, LedgerError> {
        let mut chosen: Vec<Job> = Vec::with_capacity(room.docs.min(1024));
        let mut bytes = 0;
        loop {
            let filled = chosen.len() >= room.docs || (!chosen.is_empty() && bytes >= room.bytes);
            if filled && !self.group_goes_on(chosen.last()) {
                break;
            }
            let Some(doc) = self.ahead.take().or_else(|| self.docs.next()) else {
                self.exhausted = true;
                break;
            };
            match self.next_to_send(doc)? {
                Some(doc) => {
                    bytes += doc.body.len();
                    let group = doc.ordinal / self.per_request;
                    chosen.push(Job { doc, group });
                }
                None if !self.more() => break,
                None => {}
            }
        }
        Ok(chosen)
    }

    /// Whether the next document belongs to the group of `last` (looked at ahead).
    fn group_goes_on(&mut self, last: Option<&Job>) -> bool {
        let Some(last) = last else {
            return false;
        };
        if self.per_request == 1 {
            return false;
        }
        if self.ahead.is_none() {
            self.ahead = self.docs.next();
        }
        matches!(&self.ahead, Some(Ok(d)) if d.ordinal / self.per_request == last.group)
    }

    /// The spooled document, unless a stop came (`interrupted`) or the spool cannot be
    /// read (the run stops as if the target were down).
    fn readable(&mut self, doc: std::io::Result<SpooledDoc>) -> Option<SpooledDoc> {
        if self.stopped() {
            self.out.interrupted = true;
            return None;
        }
        match doc {
            Ok(d) => Some(d),
            Err(e) => {
                tracing::error!("cannot read the spool file: {e}");
                self.out.target_down = true;
                None
            }
        }
    }

    /// Decides about the next spooled document: `Some` to send it (marked in flight).
    fn next_to_send(
        &mut self,
        doc: std::io::Result<SpooledDoc>,
    ) -> Result<Option<SpooledDoc>, LedgerError> {
        let Some(doc) = self.readable(doc) else {
            return Ok(None);
        };
        let (mapping, file, run) = (self.batch.ctx.mapping, self.batch.file, self.batch.run_id);
        let local = match self.delivery {
            Delivery::Local(t) => t,
            Delivery::Remote(_) => {
                // Whether a document a dead run left in flight arrived cannot be seen:
                // one statement marks it in flight unless it is already accepted with
                // this content, or in doubt.
                match self.w.claim(&attempt(&doc, mapping, file, run))? {
                    Claim::Send => return Ok(Some(doc)),
                    Claim::Resend => {
                        return Ok(Some(SpooledDoc {
                            resend: true,
                            ..doc
                        }))
                    }
                    Claim::AlreadyImported => self.out.already_imported += 1,
                    Claim::InDoubt => {
                        let rec = self.w.ledger.document(mapping, &doc.key)?;
                        self.in_doubt(in_doubt_problem(mapping, &doc.key, doc.line, rec.as_ref()));
                    }
                }
                return Ok(None);
            }
        };
        if let Some(rec) = self.w.ledger.document(mapping, &doc.key)? {
            if rec.state.is_unsettled() && rec.content_hash != doc.content_hash {
                self.in_doubt(in_doubt_problem(mapping, &doc.key, doc.line, Some(&rec)));
                return Ok(None);
            }
            // the ERP has this already: this content (a create or an update), or
            // nothing (a delete)
            let done = match doc.operation {
                Operation::Delete => rec.erp_hash.is_none(),
                _ => rec.erp_hash.as_deref() == Some(doc.content_hash.as_str()),
            };
            if done && !rec.state.is_unsettled() {
                self.out.already_imported += 1;
                return Ok(None);
            }
            if rec.content_hash == doc.content_hash
                && rec.state == DocState::InFlight
                && local.already_there(&self.batch.ctx, &doc)
            {
                // A dead run delivered it and the target has it: settle it. It was
                // imported before this run, so it counts as already imported.
                self.w.mark_outcome(
                    mapping,
                    &doc.key,
                    DocState::Accepted,
                    rec.target_id.as_deref(),
                    None,
                    None,
                )?;
                self.out.already_imported += 1;
                return Ok(None);
            }
        }
        self.w.mark_in_flight(&attempt(&doc, mapping, file, run))?;
        Ok(Some(doc))
    }

    /// A document not sent because an earlier attempt is in doubt (validation saw it
    /// first, unless the ledger changed since).
    fn in_doubt(&mut self, p: Problem) {
        self.out.in_doubt += 1;
        self.out.problems.push(p);
    }

    /// Makes what a local target accepted durable there (`flush`); if it cannot,
    /// those documents were not delivered for certain: the target is unavailable.
    fn flush(&self, answered: &mut [Sent]) {
        let Delivery::Local(t) = self.delivery else {
            return;
        };
        if answered.is_empty() {
            return;
        }
        if let Err(message) = t.flush() {
            for r in answered {
                if matches!(r.outcome, SubmitOutcome::Accepted { .. }) {
                    // some files may have reached the outbox before the failure
                    r.outcome = SubmitOutcome::Unavailable {
                        message: message.clone(),
                        maybe_delivered: true,
                    };
                }
            }
        }
    }

    /// Records one answer, in the document's row and its history.
    fn record(&mut self, sent: Sent) -> Result<(), LedgerError> {
        let mapping = self.batch.ctx.mapping;
        let (file, run_id) = (self.batch.file, self.batch.run_id);
        let out = &mut self.out;
        let w = &mut self.w;
        let key = sent.key.as_str();
        let answer = |state, target_id, error, status| Answer {
            mapping,
            key,
            state,
            target_id,
            error,
            status,
            file,
            run_id,
        };
        match &sent.outcome {
            SubmitOutcome::Accepted { id, status } => {
                w.record(&answer(DocState::Accepted, id.as_deref(), None, *status))?;
                out.accepted += 1;
                match sent.operation {
                    Operation::Create => out.created += 1,
                    Operation::Update => out.updated += 1,
                    Operation::Delete => out.deleted += 1,
                }
                out.documents.push(AcceptedDoc {
                    document: sent.key.clone(),
                    line: sent.line,
                    id: id.clone(),
                    operation: sent.operation,
                });
            }
            SubmitOutcome::Rejected { status, message } => {
                w.record(&answer(DocState::Rejected, None, Some(message), *status))?;
                out.rejected += 1;
                // no status: the target refused it without asking the ERP
                let what = match sent.operation {
                    Operation::Create => "",
                    Operation::Update => "the update of ",
                    Operation::Delete => "the delete of ",
                };
                let msg = match status {
                    Some(_) => format!("The ERP rejected {what}document {}: {message}", quote(key)),
                    None => format!("Document {} was not sent: {message}", quote(key)),
                };
                // a delete has no line: the file no longer has the document
                out.problems.push(
                    Problem::new(Stage::Submit, Code::Rejected, msg)
                        .with_document(key)
                        .with_line((sent.line > 0).then_some(sent.line))
                        .with_status(*status),
                );
            }
            SubmitOutcome::Unavailable {
                message,
                maybe_delivered,
            } => {
                // Maybe delivered: left in flight, the next run resends it with the
                // same idempotency key (and other content is in doubt). Known not
                // delivered: nothing to settle.
                if *maybe_delivered {
                    w.record(&answer(DocState::InFlight, None, Some(message), None))?;
                } else {
                    w.mark_not_sent(mapping, key, message)?;
                }
                if !out.target_down {
                    let message = crate::problem::bound(message, crate::problem::MAX_MESSAGE_CHARS);
                    tracing::error!(file = %file, document = %key, "the target is unavailable: {message}");
                }
                out.target_down = true;
                if out.down_reason.is_none() {
                    out.down_reason = Some(
                        crate::problem::bound(message, crate::problem::MAX_MESSAGE_CHARS)
                            .into_owned(),
                    );
                }
            }
            SubmitOutcome::Skipped { reason } => w.mark_not_sent(mapping, key, reason)?,
            SubmitOutcome::InDoubt { status, message } => {
                w.record(&answer(DocState::InDoubt, None, Some(message), *status))?;
                out.in_doubt += 1;
                let msg = format!(
                    "The ERP's answer does not say whether it created document {}: {message}. It is not sent again until that is settled: look in the ERP, then run `erpdrop resolve {key} --mapping {mapping} --accepted` (the ERP has it; add --id ID) or `--not-sent` (it does not), and reprocess the file",
                    quote(key)
                );
                out.problems.push(
                    Problem::new(Stage::Submit, Code::InDoubt, msg)
                        .with_document(key)
                        .with_line((sent.line > 0).then_some(sent.line))
                        .with_status(*status),
                );
            }
        }
        Ok(())
    }
}

/// The ledger's record of an attempt at a spooled document.
fn attempt<'d>(doc: &'d SpooledDoc, mapping: &'d str, file: &'d str, run: &'d str) -> Attempt<'d> {
    Attempt {
        mapping,
        key: &doc.key,
        content_hash: &doc.content_hash,
        operation: doc.operation,
        file,
        run_id: run,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::deliver::{Cancel, RemoteTarget};

    /// A remote target that accepts everything.
    struct Sink;

    impl RemoteTarget for Sink {
        fn concurrency(&self) -> usize {
            1
        }
        fn send(&self, _: &DocContext<'_>, _: &SpooledDoc, _: &Cancel<'_>) -> SubmitOutcome {
            SubmitOutcome::Accepted {
                id: None,
                status: None,
            }
        }
    }

    impl Target for Sink {
        fn delivery(&self) -> Delivery<'_> {
            Delivery::Remote(self)
        }
    }

    fn docs(
        prefix: &'static str,
        n: usize,
        size: usize,
    ) -> impl Iterator<Item = std::io::Result<SpooledDoc>> {
        (0..n).map(move |i| {
            Ok(SpooledDoc {
                key: format!("{prefix}{i}"),
                line: i as u64 + 2,
                content_hash: format!("h{i}"),
                operation: Operation::Create,
                erp_id: None,
                deletions: 0,
                updates: 0,
                body: vec![b'x'; size],
                resend: false,
                ordinal: i as u64,
            })
        })
    }

    #[test]
    fn documents_are_chosen_by_count_and_by_payload_bytes() {
        let d = tempfile::tempdir().unwrap();
        let ledger = Ledger::open(&d.path().join("ledger.sqlite")).unwrap();
        let batch = Batch {
            ctx: DocContext {
                mapping: "m",
                document_type: "d",
            },
            file: "f.csv",
            run_id: "r",
        };
        let stop = AtomicBool::new(false);
        let pick = |s: &mut Submission<'_, _>, room: Room| {
            let chosen = ledger.in_transaction(|| s.choose(room)).unwrap();
            chosen.iter().map(|j| j.doc.key.clone()).collect::<Vec<_>>()
        };
        let submission = |docs| Submission {
            docs,
            exhausted: false,
            delivery: Sink.delivery(),
            w: ledger.doc_writer().unwrap(),
            batch: &batch,
            stop: &stop,
            out: Submitted::default(),
            per_request: 1,
            ahead: None,
        };
        // small documents: the count decides
        let mut small = submission(Box::new(docs("S", 100, 1_000)) as Box<dyn Iterator<Item = _>>);
        let got = pick(
            &mut small,
            Room {
                docs: 10,
                bytes: WINDOW_BYTES,
            },
        );
        assert_eq!(got.len(), 10);
        // large ones: the bytes decide (the budget is passed by the last one taken)
        let mut large = submission(Box::new(docs("L", 100, 3 << 20)));
        let got = pick(
            &mut large,
            Room {
                docs: 100,
                bytes: 8 << 20,
            },
        );
        assert_eq!(got, ["L0", "L1", "L2"]);
        // and the next ones follow where it stopped
        let got = pick(
            &mut large,
            Room {
                docs: 100,
                bytes: 1,
            },
        );
        assert_eq!(got, ["L3"], "at least one document, however large");
        // with batches of 10, a group is never cut: room for 15 takes 20, grouped by
        // their place in the file, whatever is missing from it (already imported)
        let mut grouped = submission(Box::new(
            docs("G", 100, 10).filter(|d| d.as_ref().unwrap().ordinal != 3),
        ));
        grouped.per_request = 10;
        let room = Room {
            docs: 15,
            bytes: WINDOW_BYTES,
        };
        let chosen = ledger.in_transaction(|| grouped.choose(room)).unwrap();
        let groups: Vec<u64> = chosen.iter().map(|j| j.group).collect();
        assert_eq!(groups, [[0; 9].as_slice(), &[1; 10]].concat());
        let next = ledger.in_transaction(|| grouped.choose(room)).unwrap();
        assert_eq!(next[0].doc.key, "G20");
        assert_eq!(next[0].group, 2);
        assert_eq!(next.len(), 20);
        // each chosen document is in flight in the ledger
        assert_eq!(
            ledger.document("m", "L3").unwrap().unwrap().state,
            DocState::InFlight
        );
        assert!(ledger.document("m", "L4").unwrap().is_none());
    }
}
