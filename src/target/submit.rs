//! Submitting a file's spooled documents through the ledger.
//!
//! For each document: already accepted with the same content -> skipped; left in flight
//! by a dead run and already at the target -> settled; otherwise marked in flight
//! (committed), submitted, and its outcome recorded (committed). With a concurrency
//! above 1, worker threads submit while this thread keeps the ledger (SQLite is used
//! from one thread only).

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
    pub documents: Vec<AcceptedDoc>,
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
    let mut out = Submitted::default();
    let workers = target.concurrency().max(1);
    if workers == 1 {
        for doc in docs {
            let Some(doc) = next_to_send(doc, target, ledger, batch, stop, &mut out)? else {
                if out.target_down || out.interrupted {
                    break;
                }
                continue;
            };
            let outcome = target.submit(&batch.ctx, &doc);
            record(
                ledger,
                batch,
                Sent {
                    key: doc.key,
                    line: doc.line,
                    outcome,
                },
                &mut out,
            )?;
            if out.target_down {
                break;
            }
        }
        return Ok(out);
    }

    let (job_tx, job_rx) = mpsc::sync_channel::<SpooledDoc>(0);
    let job_rx = Mutex::new(job_rx);
    let (res_tx, res_rx) = mpsc::channel::<Sent>();
    std::thread::scope(|s| -> Result<(), LedgerError> {
        for _ in 0..workers {
            let res_tx = res_tx.clone();
            let job_rx = &job_rx;
            s.spawn(move || loop {
                let job = job_rx.lock().map(|rx| rx.recv());
                let Ok(Ok(doc)) = job else { break };
                let outcome = target.submit(&batch.ctx, &doc);
                let sent = Sent {
                    key: doc.key,
                    line: doc.line,
                    outcome,
                };
                if res_tx.send(sent).is_err() {
                    break;
                }
            });
        }
        drop(res_tx);
        let mut in_flight = 0usize;
        let mut result = Ok(());
        for doc in docs {
            // Free a slot first, so that nothing is marked in flight and then held back.
            while in_flight >= workers {
                let Ok(sent) = res_rx.recv() else { break };
                in_flight -= 1;
                if let Err(e) = record(ledger, batch, sent, &mut out) {
                    result = Err(e);
                }
            }
            if out.target_down || result.is_err() {
                break;
            }
            match next_to_send(doc, target, ledger, batch, stop, &mut out) {
                Ok(Some(doc)) => {
                    if job_tx.send(doc).is_err() {
                        break;
                    }
                    in_flight += 1;
                }
                Ok(None) if out.interrupted || out.target_down => break,
                Ok(None) => {}
                Err(e) => {
                    result = Err(e);
                    break;
                }
            }
        }
        drop(job_tx);
        while in_flight > 0 {
            let Ok(sent) = res_rx.recv() else { break };
            in_flight -= 1;
            if let Err(e) = record(ledger, batch, sent, &mut out) {
                result = Err(e);
            }
        }
        result
    })?;
    Ok(out)
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
                // A dead run submitted it and the target has it: settle it.
                ledger.mark_outcome(
                    mapping,
                    &doc.key,
                    DocState::Accepted,
                    rec.target_id.as_deref(),
                    None,
                    None,
                )?;
                out.accepted += 1;
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
