//! The worker threads that feed a remote target, and the queue where they meet the
//! ledger's thread (which marks documents in flight ahead of them and records their
//! answers as they come: see `Submission::remote`).
//!
//! The threads meet in a [`Queue`] under one lock. The workers wake the ledger's
//! thread only when it has something to do (the queue is down to half its window, half
//! a window of answers waits, the target is down, a stop signal came, or everything is
//! answered): on a machine with few cores, a wake-up per document costs more than the
//! ledger.

use super::window::{Job, Sent, WINDOW_BYTES};
use super::{Cancel, DocContext, RemoteTarget, SubmitOutcome};
use crate::ledger::Operation;
use crate::spool::SpooledDoc;
use std::collections::VecDeque;
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::Duration;

/// What the ledger's thread and the workers share.
pub(super) struct Shared {
    queue: Mutex<Queue>,
    /// Signalled when jobs arrive or the queue closes.
    pub work: Condvar,
    /// Signalled when the ledger's thread has something to do.
    answers: Condvar,
    /// Half the window: the ledger's thread refills and records in steps of this size.
    half: usize,
}

#[derive(Default)]
pub(super) struct Queue {
    /// Marked in flight, not yet taken by a worker.
    pub jobs: VecDeque<Job>,
    /// Answers not yet taken by the ledger's thread (a document not attempted because
    /// the target was down or a stop came is `Skipped`).
    results: Vec<Sent>,
    /// Jobs queued or being submitted.
    pub outstanding: usize,
    /// Their payload bytes.
    pub bytes: usize,
    /// No more jobs: the workers leave.
    closed: bool,
    /// The ledger's thread waits for room for more documents (`true`), or for
    /// everything to be answered.
    wants_room: bool,
}

impl Queue {
    /// What the ledger's thread waits for: room to choose more documents (half the
    /// window free, by count and by bytes), or nothing outstanding.
    fn room_or_done(&self, half: usize) -> bool {
        if self.wants_room {
            self.outstanding <= half && self.bytes <= WINDOW_BYTES / 2
        } else {
            self.outstanding == 0
        }
    }
}

impl Shared {
    /// A queue for a window of `2 * half` documents.
    pub(super) fn new(half: usize) -> Shared {
        Shared {
            queue: Mutex::new(Queue::default()),
            work: Condvar::new(),
            answers: Condvar::new(),
            half,
        }
    }

    pub(super) fn lock(&self) -> MutexGuard<'_, Queue> {
        // a worker that panicked cannot leave the queue inconsistent: every update
        // is a push, a pop or a counter
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(super) fn work_loop(
        &self,
        target: &dyn RemoteTarget,
        ctx: &DocContext<'_>,
        cancel: &Cancel<'_>,
    ) {
        let batches = target.batch_size();
        let per_request = batches.unwrap_or(1).max(1);
        loop {
            let docs = {
                let mut q = self.lock();
                loop {
                    if let Some(first) = q.jobs.pop_front() {
                        break take_batch(&mut q.jobs, first, per_request);
                    }
                    if q.closed {
                        return;
                    }
                    q = self.work.wait(q).unwrap_or_else(|e| e.into_inner());
                }
            };
            let size: usize = docs.iter().map(|d| d.body.len()).sum();
            let skipped = if cancel.is_down() {
                Some("not sent: the target was unavailable")
            } else if cancel.is_stopped() {
                Some("not sent: the run was stopped")
            } else {
                None
            };
            let outcomes: Vec<SubmitOutcome> = match skipped {
                Some(reason) => docs
                    .iter()
                    .map(|_| SubmitOutcome::Skipped { reason })
                    .collect(),
                None if batches.is_some() && docs[0].operation == Operation::Create => {
                    target.send_batch(ctx, &docs, cancel)
                }
                None => vec![target.send(ctx, &docs[0], cancel)],
            };
            if outcomes.iter().any(SubmitOutcome::is_unavailable) {
                cancel.target_down();
            }
            let n = docs.len();
            let mut q = self.lock();
            for (doc, outcome) in docs.into_iter().zip(outcomes) {
                q.results.push(Sent {
                    key: doc.key,
                    line: doc.line,
                    operation: doc.operation,
                    outcome,
                });
            }
            q.outstanding -= n;
            q.bytes -= size;
            let wake = q.room_or_done(self.half) || q.results.len() >= self.half || cancel.any();
            drop(q);
            if wake {
                self.answers.notify_one();
            }
        }
    }

    /// Waits until there is something to do: room to choose more documents (when
    /// `more` are to come) or nothing outstanding, half a window of answers, or (unless
    /// `quiet`: the ledger's thread knows already) the target down or a stop. Returns
    /// the answers and what is still outstanding.
    pub(super) fn wait_for_answers(
        &self,
        more: bool,
        quiet: bool,
        cancel: &Cancel<'_>,
    ) -> (Vec<Sent>, usize) {
        let mut q = self.lock();
        q.wants_room = more;
        loop {
            let ready = q.room_or_done(self.half)
                || q.results.len() >= self.half
                || (!quiet && cancel.any());
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
    pub(super) fn close(&self) {
        self.lock().closed = true;
        self.work.notify_all();
    }
}

/// The documents of one request: `first`, and the creates of its group that follow it
/// (up to `per_request`); an update or a delete goes alone.
fn take_batch(jobs: &mut VecDeque<Job>, first: Job, per_request: usize) -> Vec<SpooledDoc> {
    let group = first.group;
    let batches = per_request > 1 && first.doc.operation == Operation::Create;
    let mut docs = vec![first.doc];
    while batches && docs.len() < per_request {
        match jobs.front() {
            Some(j) if j.group == group && j.doc.operation == Operation::Create => {
                docs.extend(jobs.pop_front().map(|j| j.doc));
            }
            _ => break,
        }
    }
    docs
}
