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
use crate::ledger::{DocState, Ledger, LedgerError};
use crate::problem::{quote, with_location, Code, Problem, Stage};
use crate::report::AcceptedDoc;
use crate::spool::SpooledDoc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::Mutex;

/// What submitting a file's documents gave.
#[derive(Debug, Default)]
pub struct Submitted {
    pub accepted: u64,
    pub rejected: u64,
    pub already_imported: u64,
    pub problems: Vec<Problem>,
    /// The accepted documents with the ERP's ids.
    pub documents: crate::problem_log::SpillLog<AcceptedDoc>,
    /// The target is unavailable: stop the run.
    pub target_down: bool,
    /// A stop signal arrived.
    pub interrupted: bool,
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

/// A target that writes locally (the outbox): batches of documents are marked in
/// flight (one commit), submitted, made durable together (`flush`), then recorded (one
/// commit).
fn submit_in_batches(
    mut docs: impl Iterator<Item = std::io::Result<SpooledDoc>>,
    target: &dyn Target,
    ledger: &Ledger,
    batch: &Batch<'_>,
    stop: &AtomicBool,
) -> Result<Submitted, LedgerError> {
    let mut out = Submitted::default();
    let per = target.batch_size().max(1);
    let mut exhausted = false;
    while !exhausted && !out.target_down && !out.interrupted {
        let chosen = pick(
            &mut docs,
            per,
            &mut exhausted,
            target,
            ledger,
            batch,
            stop,
            &mut out,
        )?;
        let mut results: Vec<Sent> = Vec::with_capacity(chosen.len());
        for doc in chosen {
            // a stop signal ends the batch early: what was not submitted stays in
            // flight, for the next run
            if stop.load(Ordering::SeqCst) {
                out.interrupted = true;
                break;
            }
            let outcome = target.submit(&batch.ctx, &doc);
            let down = matches!(outcome, SubmitOutcome::Unavailable { .. });
            results.push(Sent {
                key: doc.key,
                line: doc.line,
                outcome,
            });
            if down {
                break;
            }
        }
        settle(results, target, ledger, batch, &mut out)?;
    }
    Ok(out)
}

/// A remote target (HTTP): worker threads submit, `concurrency` documents at a time,
/// while this thread keeps the ledger: it marks documents in flight ahead of the
/// workers and records their outcomes as they come, a few per commit, so that the
/// ledger's work overlaps the network's.
fn submit_threaded(
    mut docs: impl Iterator<Item = std::io::Result<SpooledDoc>>,
    target: &dyn Target,
    ledger: &Ledger,
    batch: &Batch<'_>,
    stop: &AtomicBool,
) -> Result<Submitted, LedgerError> {
    let mut out = Submitted::default();
    let workers = target.concurrency().max(1);
    // documents marked in flight and handed to the workers, not yet answered
    let window = (workers * 16).max(64);
    let (job_tx, job_rx) = mpsc::sync_channel::<SpooledDoc>(window);
    let job_rx = Mutex::new(job_rx);
    let (res_tx, res_rx) = mpsc::channel::<Option<Sent>>();
    // set when a document found the target unavailable: queued ones are not tried
    let down = AtomicBool::new(false);
    std::thread::scope(|s| -> Result<(), LedgerError> {
        for _ in 0..workers {
            let res_tx = res_tx.clone();
            let (job_rx, down) = (&job_rx, &down);
            s.spawn(move || loop {
                let job = job_rx.lock().map(|rx| rx.recv());
                let Ok(Ok(doc)) = job else { break };
                if down.load(Ordering::SeqCst) || stop.load(Ordering::SeqCst) {
                    // not submitted: it stays in flight, for the next run
                    if res_tx.send(None).is_err() {
                        break;
                    }
                    continue;
                }
                let outcome = target.submit(&batch.ctx, &doc);
                if matches!(outcome, SubmitOutcome::Unavailable { .. }) {
                    down.store(true, Ordering::SeqCst);
                }
                let sent = Sent {
                    key: doc.key,
                    line: doc.line,
                    outcome,
                };
                if res_tx.send(Some(sent)).is_err() {
                    break;
                }
            });
        }
        drop(res_tx);
        let result = (|| {
            let mut exhausted = false;
            let mut in_flight = 0usize;
            let mut answered: Vec<Sent> = Vec::new();
            loop {
                let more = !exhausted && !out.target_down && !out.interrupted;
                if more && in_flight + answered.len() <= window / 2 {
                    let room = window - in_flight - answered.len();
                    let chosen = pick(
                        &mut docs,
                        room,
                        &mut exhausted,
                        target,
                        ledger,
                        batch,
                        stop,
                        &mut out,
                    )?;
                    for doc in chosen {
                        if job_tx.send(doc).is_err() {
                            break;
                        }
                        in_flight += 1;
                    }
                }
                if in_flight == 0 {
                    settle(
                        std::mem::take(&mut answered),
                        target,
                        ledger,
                        batch,
                        &mut out,
                    )?;
                    if exhausted || out.target_down || out.interrupted {
                        break;
                    }
                    continue;
                }
                let Ok(first) = res_rx.recv() else { break };
                for r in std::iter::once(first).chain(res_rx.try_iter()) {
                    in_flight -= 1;
                    match r {
                        Some(sent) => answered.push(sent),
                        None if stop.load(Ordering::SeqCst) => out.interrupted = true,
                        None => {}
                    }
                }
                // outcomes are recorded a few at a time: each commit costs a write
                if answered.len() >= window / 2
                    || down.load(Ordering::SeqCst)
                    || stop.load(Ordering::SeqCst)
                {
                    settle(
                        std::mem::take(&mut answered),
                        target,
                        ledger,
                        batch,
                        &mut out,
                    )?;
                }
            }
            settle(answered, target, ledger, batch, &mut out)
        })();
        drop(job_tx);
        result
    })?;
    Ok(out)
}

/// Up to `n` documents to submit, marked in flight in one commit.
#[allow(clippy::too_many_arguments)]
fn pick(
    docs: &mut impl Iterator<Item = std::io::Result<SpooledDoc>>,
    n: usize,
    exhausted: &mut bool,
    target: &dyn Target,
    ledger: &Ledger,
    batch: &Batch<'_>,
    stop: &AtomicBool,
    out: &mut Submitted,
) -> Result<Vec<SpooledDoc>, LedgerError> {
    let mut chosen = Vec::with_capacity(n.min(1024));
    ledger.in_transaction(|| {
        while chosen.len() < n {
            let Some(doc) = docs.next() else {
                *exhausted = true;
                break;
            };
            match next_to_send(doc, target, ledger, batch, stop, out)? {
                Some(d) => chosen.push(d),
                None if out.target_down || out.interrupted => break,
                None => {}
            }
        }
        Ok(())
    })?;
    Ok(chosen)
}

/// Makes the submitted documents durable at the target (`flush`), then records their
/// outcomes in one commit: nothing is recorded as accepted before it is delivered.
fn settle(
    mut results: Vec<Sent>,
    target: &dyn Target,
    ledger: &Ledger,
    batch: &Batch<'_>,
    out: &mut Submitted,
) -> Result<(), LedgerError> {
    if results.is_empty() {
        return Ok(());
    }
    if let Err(message) = target.flush() {
        for r in &mut results {
            if matches!(r.outcome, SubmitOutcome::Accepted { .. }) {
                r.outcome = SubmitOutcome::Unavailable {
                    message: message.clone(),
                };
            }
        }
    }
    ledger.in_transaction(|| {
        for r in results {
            record(ledger, batch, r, out)?;
        }
        Ok(())
    })
}

/// Decides about the next spooled document: `Some` to send it (marked in flight).
fn next_to_send(
    doc: std::io::Result<SpooledDoc>,
    target: &dyn Target,
    ledger: &Ledger,
    batch: &Batch<'_>,
    stop: &AtomicBool,
    out: &mut Submitted,
) -> Result<Option<SpooledDoc>, LedgerError> {
    if stop.load(Ordering::SeqCst) {
        out.interrupted = true;
        return Ok(None);
    }
    let doc = match doc {
        Ok(d) => d,
        Err(e) => {
            tracing::error!("cannot read the spool file: {e}");
            out.target_down = true;
            return Ok(None);
        }
    };
    let mapping = batch.ctx.mapping;
    if let Some(rec) = ledger.document(mapping, &doc.key)? {
        if rec.content_hash == doc.content_hash {
            if rec.state == DocState::Accepted {
                out.already_imported += 1;
                return Ok(None);
            }
            if rec.state == DocState::InFlight && target.already_there(&batch.ctx, &doc) {
                // A dead run delivered it and the target has it: settle it. It was
                // imported before this run, so it counts as already imported.
                ledger.mark_outcome(
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
    ledger.mark_in_flight(
        mapping,
        &doc.key,
        &doc.content_hash,
        batch.file,
        batch.run_id,
    )?;
    Ok(Some(doc))
}

fn record(
    ledger: &Ledger,
    batch: &Batch<'_>,
    sent: Sent,
    out: &mut Submitted,
) -> Result<(), LedgerError> {
    let mapping = batch.ctx.mapping;
    match sent.outcome {
        SubmitOutcome::Accepted { id } => {
            ledger.mark_outcome(
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
            ledger.mark_outcome(
                mapping,
                &sent.key,
                DocState::Rejected,
                None,
                Some(&message),
                status,
            )?;
            out.rejected += 1;
            let msg = format!("The ERP rejected document {}: {message}", quote(&sent.key));
            out.problems.push(Problem {
                stage: Stage::Submit,
                document: Some(sent.key),
                line: Some(sent.line),
                column: None,
                field: None,
                value: None,
                code: Code::Rejected,
                message: with_location(&msg, Some(sent.line), None),
                status,
            });
        }
        SubmitOutcome::Unavailable { message } => {
            // Left in flight: the next run resends it with the same idempotency key.
            ledger.mark_outcome(
                mapping,
                &sent.key,
                DocState::InFlight,
                None,
                Some(&message),
                None,
            )?;
            if !out.target_down {
                tracing::error!(file = %batch.file, document = %sent.key, "the target is unavailable: {message}");
            }
            out.target_down = true;
        }
    }
    Ok(())
}
