//! Feeding a remote target from worker threads while the ledger's thread keeps the
//! ledger: it marks documents in flight ahead of the workers and records their answers
//! as they come, a few dozen per commit, so that the ledger's work overlaps the
//! network's.
//!
//! The threads meet in a [`Queue`] under one lock. The workers wake the ledger's
//! thread only when it has something to do (the queue is down to half its window, half
//! a window of answers waits, the target is down, a stop signal came, or everything is
//! answered): on a machine with few cores, a wake-up per document costs more than the
//! ledger.

use super::submission::{Room, Sent, Submission, WINDOW_BYTES};
use super::{Cancel, DocContext, RemoteTarget, SubmitOutcome};
use crate::ledger::LedgerError;
use crate::spool::SpooledDoc;
use std::collections::VecDeque;
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::Duration;

/// Submits the documents of `s` to `target` with `target.concurrency()` workers.
pub(super) fn submit<D: Iterator<Item = std::io::Result<SpooledDoc>>>(
    s: &mut Submission<'_, D>,
    target: &dyn RemoteTarget,
) -> Result<(), LedgerError> {
    let workers = target.concurrency().max(1);
    // documents marked in flight and handed to the workers, not yet recorded
    let window = (workers * 32).max(64);
    let half = window / 2;
    let ctx = s.batch().ctx;
    let shared = Shared {
        queue: Mutex::new(Queue::default()),
        work: Condvar::new(),
        answers: Condvar::new(),
        half,
    };
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
                    q.bytes += chosen.iter().map(|d| d.body.len()).sum::<usize>();
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

/// What the ledger's thread and the workers share.
struct Shared {
    queue: Mutex<Queue>,
    /// Signalled when jobs arrive or the queue closes.
    work: Condvar,
    /// Signalled when the ledger's thread has something to do.
    answers: Condvar,
    /// Half the window: the ledger's thread refills and records in steps of this size.
    half: usize,
}

#[derive(Default)]
struct Queue {
    /// Marked in flight, not yet taken by a worker.
    jobs: VecDeque<SpooledDoc>,
    /// Answers not yet taken by the ledger's thread (a document not attempted because
    /// the target was down or a stop came is `Skipped`).
    results: Vec<Sent>,
    /// Jobs queued or being submitted.
    outstanding: usize,
    /// Their payload bytes.
    bytes: usize,
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
    fn lock(&self) -> MutexGuard<'_, Queue> {
        // a worker that panicked cannot leave the queue inconsistent: every update
        // is a push, a pop or a counter
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn work_loop(&self, target: &dyn RemoteTarget, ctx: &DocContext<'_>, cancel: &Cancel<'_>) {
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
            let outcome = if cancel.is_down() {
                SubmitOutcome::Skipped {
                    reason: "not sent: the target was unavailable",
                }
            } else if cancel.is_stopped() {
                SubmitOutcome::Skipped {
                    reason: "not sent: the run was stopped",
                }
            } else {
                let outcome = target.send(ctx, &doc, cancel);
                if outcome.is_unavailable() {
                    cancel.target_down();
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
    fn wait_for_answers(&self, more: bool, quiet: bool, cancel: &Cancel<'_>) -> (Vec<Sent>, usize) {
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
    fn close(&self) {
        self.lock().closed = true;
        self.work.notify_all();
    }
}
