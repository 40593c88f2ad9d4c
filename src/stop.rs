//! Stopping on SIGINT/SIGTERM without leaving anything half done.
//!
//! The first signal lets the file in hand finish (all its documents), then the command
//! exits; a second signal stops after the document in flight, and the file goes back to
//! the inbox (its accepted documents are in the ledger, so nothing is sent twice).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

#[derive(Debug, Default)]
pub struct Stop {
    finish_file: AtomicBool,
    now: AtomicBool,
}

impl Stop {
    /// A stop that only a caller can trigger (tests, library use).
    pub fn new() -> Arc<Stop> {
        Arc::new(Stop::default())
    }

    /// A stop triggered by SIGINT and SIGTERM (on Unix).
    pub fn on_signals() -> Arc<Stop> {
        let stop = Stop::new();
        #[cfg(unix)]
        {
            let s = stop.clone();
            match signal_hook::iterator::Signals::new([
                signal_hook::consts::SIGINT,
                signal_hook::consts::SIGTERM,
            ]) {
                Ok(mut signals) => {
                    std::thread::spawn(move || {
                        for sig in signals.forever() {
                            s.signalled(sig);
                        }
                    });
                }
                Err(e) => tracing::warn!("cannot watch for SIGINT/SIGTERM: {e}"),
            }
        }
        // Elsewhere (Windows) Ctrl-C ends the process at once; the next run returns
        // the file in processing/ to the inbox and the ledger keeps what was accepted.
        stop
    }

    /// Counts a signal: the first finishes the file in hand, the second stops sooner.
    #[cfg_attr(not(unix), allow(dead_code))]
    fn signalled(&self, sig: i32) {
        if self.finish_file.swap(true, Ordering::SeqCst) {
            tracing::warn!(
                signal = sig,
                "second stop signal: stopping after the document in flight"
            );
            self.now.store(true, Ordering::SeqCst);
        } else {
            tracing::info!(signal = sig, "stop signal: finishing the file in hand, then exiting (signal again to stop sooner)");
        }
    }

    /// Asks for a stop after the file in hand.
    pub fn request(&self) {
        self.finish_file.store(true, Ordering::SeqCst);
    }

    /// Whether to start no new file.
    pub fn requested(&self) -> bool {
        self.finish_file.load(Ordering::SeqCst)
    }

    /// The flag that stops work at the next document.
    pub fn now_flag(&self) -> &AtomicBool {
        &self.now
    }

    /// Whether to stop at the next document.
    pub fn urgent(&self) -> bool {
        self.now.load(Ordering::SeqCst)
    }
}
