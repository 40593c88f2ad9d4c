//! Submitting a file's spooled documents through the ledger.
//!
//! For each document: already accepted with the same content -> skipped; left in flight
//! by a dead run and already at the target -> settled; otherwise marked in flight
//! (committed), submitted, and its outcome recorded (committed). Documents go in
//! batches (the target's `batch_size`): a batch is marked in flight in one commit,
//! submitted, made durable at the target (`flush`: the outbox's one durability barrier
//! for all its files), and its outcomes recorded in one commit, so the ledger costs two
//! commits per batch, not two per document. With a concurrency above 1, worker threads
//! submit while this thread keeps the ledger (SQLite is used from one thread only).

use super::{DocContext, SubmitOutcome, Target};
use crate::ledger::{Claim, DocState, DocWriter, Ledger, LedgerError};
use crate::problem::{quote, Code, Problem, Stage};
use crate::report::AcceptedDoc;
use crate::spool::SpooledDoc;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::Duration;

/// What submitting a file's documents gave.
#[derive(Debug, Default)]
pub struct Submitted {
    pub accepted: u64,
    pub rejected: u64,
    pub already_imported: u64,
    /// Not sent: an earlier attempt with other content has no known outcome.
    pub in_doubt: u64,
    pub problems: Vec<Problem>,
    /// The accepted documents with the ERP's ids.
    pub documents: crate::problem_log::SpillLog<AcceptedDoc>,
    /// The target is unavailable: stop the run.
    pub target_down: bool,
    /// A stop signal arrived.
    pub interrupted: bool,
}

impl Submitted {
    /// A document not sent because an earlier attempt is in doubt (validation saw it
    /// first, unless the ledger changed since).
    fn in_doubt(&mut self, p: Problem) {
        self.in_doubt += 1;
        self.problems.push(p);
    }
}

/// Payload bytes a submission holds at most (documents chosen and not yet answered),
/// beside its count of documents: a file of very large documents must not multiply
/// its memory by the window.
const WINDOW_BYTES: usize = 8 << 20;

/// How many more documents may be chosen: a count and a payload budget (at least one
/// document is always chosen, however large).
#[derive(Debug, Clone, Copy)]
struct Room {
    docs: usize,
    bytes: usize,
}

/// Who is submitting: mapping, file and run, for the ledger.
pub struct Batch<'a> {
    pub ctx: DocContext<'a>,
    pub file: &'a str,
    pub run_id: &'a str,
}

struct Sent {
    key: String,
    line: u64,
    outcome: SubmitOutcome,
}

pub fn submit_all(
    docs: impl Iterator<Item = std::io::Result<SpooledDoc>>,
    target: &dyn Target,
    ledger: &Ledger,
    batch: &Batch<'_>,
    stop: &AtomicBool,
) -> Result<Submitted, LedgerError> {
    if target.threaded() {
        submit_threaded(docs, target, ledger, batch, stop)
    } else {
        submit_in_batches(docs, target, ledger, batch, stop)
    }
}

/// One document at a time from this thread, in batches (the target's `batch_size`):
/// a batch is marked in flight in one commit, submitted, made durable at the target
/// (`flush`: the outbox's one durability barrier for all its files), and its outcomes
/// are recorded in the same commit that marks the next batch in flight: a target that
/// writes locally (the outbox).
fn submit_in_batches(
    mut docs: impl Iterator<Item = std::io::Result<SpooledDoc>>,
    target: &dyn Target,
    ledger: &Ledger,
    batch: &Batch<'_>,
    stop: &AtomicBool,
) -> Result<Submitted, LedgerError> {
    let mut out = Submitted::default();
    let mut w = ledger.doc_writer()?;
    let per = target.batch_size().max(1);
    let mut exhausted = false;
    let mut results: Vec<Sent> = Vec::with_capacity(per.min(1024));
    loop {
        let chosen = record_then_choose(
            &mut results,
            &mut docs,
            Room {
                docs: per,
                bytes: WINDOW_BYTES,
            },
            &mut exhausted,
            target,
            &mut w,
            batch,
            stop,
            &mut out,
        )?;
        if chosen.is_empty() {
            return Ok(out);
        }
        let mut skip = None;
        for doc in chosen {
            // a stop signal or the target going down ends the batch early: the rest is
            // recorded as not sent
            if skip.is_none() && stop.load(Ordering::SeqCst) {
                out.interrupted = true;
                skip = Some("not sent: the run was stopped");
            }
            let outcome = match skip {
                Some(reason) => SubmitOutcome::Skipped { reason },
                None => target.submit(&batch.ctx, &doc),
            };
            if matches!(outcome, SubmitOutcome::Unavailable { .. }) {
                skip = Some("not sent: the target was unavailable");
            }
            results.push(Sent {
                key: doc.key,
                line: doc.line,
                outcome,
            });
        }
    }
}

/// A remote target (HTTP): worker threads submit, `concurrency` documents at a time,
/// while this thread keeps the ledger: it marks documents in flight ahead of the
/// workers and records their outcomes as they come, a few dozen per commit, so that
/// the ledger's work overlaps the network's.
///
/// The threads meet in a [`Queue`] under one lock. The workers wake this thread only
/// when it has something to do (the queue is down to half its window, half a window of
/// answers waits, the target is down, a stop signal came, or everything is answered):
/// on a machine with few cores, a wake-up per document costs more than the ledger.
fn submit_threaded(
    mut docs: impl Iterator<Item = std::io::Result<SpooledDoc>>,
    target: &dyn Target,
    ledger: &Ledger,
    batch: &Batch<'_>,
    stop: &AtomicBool,
) -> Result<Submitted, LedgerError> {
    let mut out = Submitted::default();
    let mut w = ledger.doc_writer()?;
    let workers = target.concurrency().max(1);
    // documents marked in flight and handed to the workers, not yet recorded
    let window = (workers * 32).max(64);
    let half = window / 2;
    let shared = Shared {
        queue: Mutex::new(Queue::default()),
        work: Condvar::new(),
        answers: Condvar::new(),
        half,
        down: AtomicBool::new(false),
        stop,
    };
    std::thread::scope(|s| -> Result<(), LedgerError> {
        for _ in 0..workers {
            let shared = &shared;
            s.spawn(move || shared.work_loop(target, &batch.ctx));
        }
        let result = (|| {
            let mut exhausted = false;
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
                    Room { docs: 0, bytes: 0 }
                };
                let chosen = record_then_choose(
                    &mut answered,
                    &mut docs,
                    room,
                    &mut exhausted,
                    target,
                    &mut w,
                    batch,
                    stop,
                    &mut out,
                )?;
                if !chosen.is_empty() {
                    let mut q = shared.lock();
                    q.outstanding += chosen.len();
                    q.bytes += chosen.iter().map(|d| d.body.len()).sum::<usize>();
                    q.jobs.extend(chosen);
                    drop(q);
                    shared.work.notify_all();
                }
                let more = !exhausted && !out.target_down && !out.interrupted;
                // once the target is down or a stop came, only the last answers matter
                let quiet = !more || shared.down.load(Ordering::SeqCst);
                let (results, outstanding) = shared.wait_for_answers(more, quiet);
                answered.extend(results);
                if stop.load(Ordering::SeqCst) {
                    out.interrupted = true;
                }
                let more = !exhausted && !out.target_down && !out.interrupted;
                if outstanding == 0 && !more {
                    return settle(answered, target, &mut w, batch, &mut out);
                }
            }
        })();
        shared.close();
        result
    })?;
    Ok(out)
}

/// What the ledger thread and the workers share.
struct Shared<'a> {
    queue: Mutex<Queue>,
    /// Signalled when jobs arrive or the queue closes.
    work: Condvar,
    /// Signalled when the ledger thread has something to do.
    answers: Condvar,
    /// Half the window: the ledger thread refills and records in steps of this size.
    half: usize,
    /// Set when a document found the target unavailable: queued ones are not tried.
    down: AtomicBool,
    stop: &'a AtomicBool,
}

#[derive(Default)]
struct Queue {
    /// Marked in flight, not yet taken by a worker.
    jobs: VecDeque<SpooledDoc>,
    /// Answers not yet taken by the ledger thread (a document not attempted because
    /// the target was down or a stop came is `Skipped`).
    results: Vec<Sent>,
    /// Jobs queued or being submitted.
    outstanding: usize,
    /// Their payload bytes.
    bytes: usize,
    /// No more jobs: the workers leave.
    closed: bool,
    /// The ledger thread waits for room for more documents (`true`), or for everything
    /// to be answered.
    wants_room: bool,
}

impl Queue {
    /// What the ledger thread waits for: room to choose more documents (half the
    /// window free, by count and by bytes), or nothing outstanding.
    fn room_or_done(&self, half: usize) -> bool {
        if self.wants_room {
            self.outstanding <= half && self.bytes <= WINDOW_BYTES / 2
        } else {
            self.outstanding == 0
        }
    }
}

impl Shared<'_> {
    fn lock(&self) -> MutexGuard<'_, Queue> {
        // a worker that panicked cannot leave the queue inconsistent: every update
        // is a push, a pop or a counter
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn work_loop(&self, target: &dyn Target, ctx: &DocContext<'_>) {
        loop {
            let doc = {
                let mut q = self.lock();
                loop {
                    if let Some(d) = q.jobs.pop_front() {
                        break d;
                    }
                    if q.closed {
                        return;
                    }
                    q = self.work.wait(q).unwrap_or_else(|e| e.into_inner());
                }
            };
            let size = doc.body.len();
            let outcome = if self.down.load(Ordering::SeqCst) {
                SubmitOutcome::Skipped {
                    reason: "not sent: the target was unavailable",
                }
            } else if self.stop.load(Ordering::SeqCst) {
                SubmitOutcome::Skipped {
                    reason: "not sent: the run was stopped",
                }
            } else {
                let outcome = target.submit(ctx, &doc);
                if matches!(outcome, SubmitOutcome::Unavailable { .. }) {
                    self.down.store(true, Ordering::SeqCst);
                }
                outcome
            };
            let result = Sent {
                key: doc.key,
                line: doc.line,
                outcome,
            };
            let mut q = self.lock();
            q.results.push(result);
            q.outstanding -= 1;
            q.bytes -= size;
            let wake = q.room_or_done(self.half)
                || q.results.len() >= self.half
                || self.down.load(Ordering::SeqCst)
                || self.stop.load(Ordering::SeqCst);
            drop(q);
            if wake {
                self.answers.notify_one();
            }
        }
    }

    /// Waits until there is something to do: room to choose more documents (when
    /// `more` are to come) or nothing outstanding, half a window of answers, or (unless
    /// `quiet`: the ledger thread knows already) the target down or a stop. Returns the
    /// answers and what is still outstanding.
    fn wait_for_answers(&self, more: bool, quiet: bool) -> (Vec<Sent>, usize) {
        let mut q = self.lock();
        q.wants_room = more;
        loop {
            let ready = q.room_or_done(self.half)
                || q.results.len() >= self.half
                || (!quiet
                    && (self.down.load(Ordering::SeqCst) || self.stop.load(Ordering::SeqCst)));
            if ready {
                break;
            }
            // a stop signal sets its flag without waking anyone: look again now and then
            q = self
                .answers
                .wait_timeout(q, Duration::from_millis(100))
                .map(|(q, _)| q)
                .unwrap_or_else(|e| e.into_inner().0);
        }
        (std::mem::take(&mut q.results), q.outstanding)
    }

    /// No more jobs: the workers finish what they hold and leave.
    fn close(&self) {
        self.lock().closed = true;
        self.work.notify_all();
    }
}

/// Makes the answers durable at the target and records them, then marks as many next
/// documents in flight as there is `room` for (none when there is none, the documents
/// are exhausted, the target is down or a stop came): one commit. Nothing is recorded
/// as accepted before it is durable at the target, and no document is handed out
/// before its mark is committed.
#[allow(clippy::too_many_arguments)]
fn record_then_choose(
    answered: &mut Vec<Sent>,
    docs: &mut impl Iterator<Item = std::io::Result<SpooledDoc>>,
    room: Room,
    exhausted: &mut bool,
    target: &dyn Target,
    w: &mut DocWriter<'_>,
    batch: &Batch<'_>,
    stop: &AtomicBool,
    out: &mut Submitted,
) -> Result<Vec<SpooledDoc>, LedgerError> {
    flush_results(answered, target);
    let ledger = w.ledger;
    ledger.in_transaction(|| {
        for sent in answered.drain(..) {
            record(w, batch, sent, out)?;
        }
        if room.docs == 0 || *exhausted || out.target_down || out.interrupted {
            return Ok(Vec::new());
        }
        choose(docs, room, exhausted, target, w, batch, stop, out)
    })
}

/// Documents to submit, as many as there is `room` for, marked in flight (in the
/// caller's transaction).
#[allow(clippy::too_many_arguments)]
fn choose(
    docs: &mut impl Iterator<Item = std::io::Result<SpooledDoc>>,
    room: Room,
    exhausted: &mut bool,
    target: &dyn Target,
    w: &mut DocWriter<'_>,
    batch: &Batch<'_>,
    stop: &AtomicBool,
    out: &mut Submitted,
) -> Result<Vec<SpooledDoc>, LedgerError> {
    let mut chosen = Vec::with_capacity(room.docs.min(1024));
    let mut bytes = 0;
    while chosen.len() < room.docs && (chosen.is_empty() || bytes < room.bytes) {
        let Some(doc) = docs.next() else {
            *exhausted = true;
            break;
        };
        match next_to_send(doc, target, w, batch, stop, out)? {
            Some(d) => {
                bytes += d.body.len();
                chosen.push(d);
            }
            None if out.target_down || out.interrupted => break,
            None => {}
        }
    }
    Ok(chosen)
}

/// The spooled document, unless a stop came (`interrupted`) or the spool cannot be
/// read (the run stops as if the target were down).
fn readable(
    doc: std::io::Result<SpooledDoc>,
    stop: &AtomicBool,
    out: &mut Submitted,
) -> Option<SpooledDoc> {
    if stop.load(Ordering::SeqCst) {
        out.interrupted = true;
        return None;
    }
    match doc {
        Ok(d) => Some(d),
        Err(e) => {
            tracing::error!("cannot read the spool file: {e}");
            out.target_down = true;
            None
        }
    }
}

/// Makes the submitted documents durable at the target (`flush`), then records their
/// outcomes in one commit: nothing is recorded as accepted before it is delivered.
fn settle(
    mut results: Vec<Sent>,
    target: &dyn Target,
    w: &mut DocWriter<'_>,
    batch: &Batch<'_>,
    out: &mut Submitted,
) -> Result<(), LedgerError> {
    if results.is_empty() {
        return Ok(());
    }
    flush_results(&mut results, target);
    let ledger = w.ledger;
    ledger.in_transaction(|| {
        for r in results {
            record(w, batch, r, out)?;
        }
        Ok(())
    })
}

/// Makes what the target accepted durable there (`flush`); if it cannot, those
/// documents were not delivered: the target is unavailable.
fn flush_results(results: &mut [Sent], target: &dyn Target) {
    if results.is_empty() {
        return;
    }
    if let Err(message) = target.flush() {
        for r in results {
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

/// Decides about the next spooled document: `Some` to send it (marked in flight).
fn next_to_send(
    doc: std::io::Result<SpooledDoc>,
    target: &dyn Target,
    w: &mut DocWriter<'_>,
    batch: &Batch<'_>,
    stop: &AtomicBool,
    out: &mut Submitted,
) -> Result<Option<SpooledDoc>, LedgerError> {
    let Some(doc) = readable(doc, stop, out) else {
        return Ok(None);
    };
    let mapping = batch.ctx.mapping;
    if !target.checks_delivery() {
        // one statement: marked in flight unless already accepted with this content,
        // or in doubt
        match w.claim(
            mapping,
            &doc.key,
            &doc.content_hash,
            batch.file,
            batch.run_id,
        )? {
            Claim::Send => return Ok(Some(doc)),
            Claim::AlreadyImported => out.already_imported += 1,
            Claim::InDoubt => {
                let rec = w.ledger.document(mapping, &doc.key)?;
                out.in_doubt(in_doubt_problem(mapping, &doc.key, doc.line, rec.as_ref()));
            }
        }
        return Ok(None);
    }
    let ledger = w.ledger;
    if let Some(rec) = ledger.document(mapping, &doc.key)? {
        if rec.state.is_unsettled() && rec.content_hash != doc.content_hash {
            out.in_doubt(in_doubt_problem(mapping, &doc.key, doc.line, Some(&rec)));
            return Ok(None);
        }
        if rec.content_hash == doc.content_hash {
            if rec.state == DocState::Accepted {
                out.already_imported += 1;
                return Ok(None);
            }
            if rec.state == DocState::InFlight && target.already_there(&batch.ctx, &doc) {
                // A dead run delivered it and the target has it: settle it. It was
                // imported before this run, so it counts as already imported.
                w.mark_outcome(
                    mapping,
                    &doc.key,
                    DocState::Accepted,
                    rec.target_id.as_deref(),
                    None,
                    None,
                )?;
                out.already_imported += 1;
                return Ok(None);
            }
        }
    }
    w.mark_in_flight(
        mapping,
        &doc.key,
        &doc.content_hash,
        batch.file,
        batch.run_id,
    )?;
    Ok(Some(doc))
}

/// The problem of a document whose earlier attempt has no known outcome and that
/// arrived with other content: what happened and how to settle it.
pub fn in_doubt_problem(
    mapping: &str,
    key: &str,
    line: u64,
    earlier: Option<&crate::ledger::DocRecord>,
) -> Problem {
    let when = earlier
        .map(|r| {
            let file = r
                .file
                .as_deref()
                .map(|f| format!(" from {f}"))
                .unwrap_or_default();
            format!(
                " (on {}{file})",
                r.updated.get(..19).unwrap_or(&r.updated).replace('T', " ")
            )
        })
        .unwrap_or_default();
    let msg = format!(
        "Document {k} was being sent{when} when that run stopped, and now arrives with different content; it is not known whether the ERP has the first version, so neither is sent. Check the ERP, then run `erpdrop resolve {key} --mapping {mapping} --accepted` (the ERP has it; add --id ID) or `--not-sent` (it does not), and reprocess the file",
        k = quote(key),
    );
    Problem::new(Stage::Validate, Code::InDoubt, &msg)
        .with_document(key.to_string())
        .with_line(line)
}

fn record(
    w: &mut DocWriter<'_>,
    batch: &Batch<'_>,
    sent: Sent,
    out: &mut Submitted,
) -> Result<(), LedgerError> {
    let mapping = batch.ctx.mapping;
    match sent.outcome {
        SubmitOutcome::Accepted { id } => {
            w.mark_outcome(
                mapping,
                &sent.key,
                DocState::Accepted,
                id.as_deref(),
                None,
                None,
            )?;
            out.accepted += 1;
            out.documents.push(AcceptedDoc {
                document: sent.key,
                line: sent.line,
                id,
            });
        }
        SubmitOutcome::Rejected { status, message } => {
            w.mark_outcome(
                mapping,
                &sent.key,
                DocState::Rejected,
                None,
                Some(&message),
                status,
            )?;
            out.rejected += 1;
            // no status: the target refused it without asking the ERP
            let msg = match status {
                Some(_) => format!("The ERP rejected document {}: {message}", quote(&sent.key)),
                None => format!("Document {} was not sent: {message}", quote(&sent.key)),
            };
            out.problems.push(
                Problem::new(Stage::Submit, Code::Rejected, msg)
                    .with_document(sent.key)
                    .with_line(sent.line)
                    .with_status(status),
            );
        }
        SubmitOutcome::Unavailable {
            message,
            maybe_delivered,
        } => {
            // Maybe delivered: left in flight, the next run resends it with the same
            // idempotency key (and other content is in doubt). Known not delivered:
            // nothing to settle.
            if maybe_delivered {
                w.mark_outcome(
                    mapping,
                    &sent.key,
                    DocState::InFlight,
                    None,
                    Some(&message),
                    None,
                )?;
            } else {
                w.mark_not_sent(mapping, &sent.key, &message)?;
            }
            if !out.target_down {
                let message = crate::problem::bound(&message, crate::problem::MAX_MESSAGE_CHARS);
                tracing::error!(file = %batch.file, document = %sent.key, "the target is unavailable: {message}");
            }
            out.target_down = true;
        }
        SubmitOutcome::Skipped { reason } => w.mark_not_sent(mapping, &sent.key, reason)?,
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A target that accepts everything and cannot tell what it already has.
    struct Sink;

    impl Target for Sink {
        fn submit(&self, _: &DocContext<'_>, _: &SpooledDoc) -> SubmitOutcome {
            SubmitOutcome::Accepted { id: None }
        }
        fn already_there(&self, _: &DocContext<'_>, _: &SpooledDoc) -> bool {
            false
        }
        fn checks_delivery(&self) -> bool {
            false
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
                body: vec![b'x'; size],
            })
        })
    }

    #[test]
    fn documents_are_chosen_by_count_and_by_payload_bytes() {
        let d = tempfile::tempdir().unwrap();
        let ledger = Ledger::open(&d.path().join("ledger.sqlite")).unwrap();
        let mut w = ledger.doc_writer().unwrap();
        let batch = Batch {
            ctx: DocContext {
                mapping: "m",
                document_type: "d",
            },
            file: "f.csv",
            run_id: "r",
        };
        let stop = AtomicBool::new(false);
        let mut pick = |docs: &mut dyn Iterator<Item = std::io::Result<SpooledDoc>>, room: Room| {
            let mut out = Submitted::default();
            let mut exhausted = false;
            let chosen = ledger
                .in_transaction(|| {
                    choose(
                        &mut &mut *docs,
                        room,
                        &mut exhausted,
                        &Sink,
                        &mut w,
                        &batch,
                        &stop,
                        &mut out,
                    )
                })
                .unwrap();
            chosen.iter().map(|d| d.key.clone()).collect::<Vec<_>>()
        };
        // small documents: the count decides
        let mut small = docs("S", 100, 1_000);
        let got = pick(
            &mut small,
            Room {
                docs: 10,
                bytes: WINDOW_BYTES,
            },
        );
        assert_eq!(got.len(), 10);
        // large ones: the bytes decide (the budget is passed by the last one taken)
        let mut large = docs("L", 100, 3 << 20);
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
        // each chosen document is in flight in the ledger
        assert_eq!(
            ledger.document("m", "L3").unwrap().unwrap().state,
            DocState::InFlight
        );
        assert!(ledger.document("m", "L4").unwrap().is_none());
    }
}
