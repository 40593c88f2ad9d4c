//! The pace of requests to the ERP, shared by every worker: `max_requests_per_second`
//! as even spacing, and the pause that a 429 with `Retry-After` asks of everyone.
//!
//! Spacing rather than a token bucket: a bucket of `r` tokens lets `r` requests go at
//! once after a quiet moment and `r` more as it refills, `2r` in one sliding second,
//! which is what an ERP that counts per sliding second refuses. With requests at least
//! `1/r` apart, no second (from whatever instant it is counted) holds more than `r`.
//! The throughput is the same; the burst is one request.
//!
//! A slot is taken under a lock held for a few instructions; the wait for it is outside
//! the lock, so workers sleep in parallel, each until its own slot.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub(super) struct Gate {
    /// The spacing between two requests, when the ERP has a limit.
    interval: Option<Duration>,
    /// Whether a pause was ever asked for: without a limit and before any 429, a
    /// request passes without taking the lock.
    paused_once: AtomicBool,
    state: Mutex<State>,
}

struct State {
    /// The earliest instant of the next slot.
    next: Instant,
    /// No request starts before this (a 429's `Retry-After`).
    paused_until: Option<Instant>,
}

impl Gate {
    pub(super) fn new(per_second: Option<f64>) -> Gate {
        Gate {
            interval: per_second
                .filter(|r| r.is_finite() && *r > 0.0)
                .map(|r| Duration::from_secs_f64(1.0 / r)),
            paused_once: AtomicBool::new(false),
            state: Mutex::new(State {
                next: Instant::now(),
                paused_until: None,
            }),
        }
    }

    /// Waits until this request may start: after any pause, and in a slot of its own
    /// under the rate limit.
    pub(super) fn wait(&self) {
        if self.interval.is_none() && !self.paused_once.load(Ordering::Acquire) {
            return;
        }
        loop {
            let slot = {
                let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
                let now = Instant::now();
                match s.paused_until {
                    Some(p) if p > now => Err(p),
                    _ => {
                        s.paused_until = None;
                        let at = match self.interval {
                            Some(iv) => {
                                let at = s.next.max(now);
                                s.next = at + iv;
                                at
                            }
                            None => now,
                        };
                        Ok(at)
                    }
                }
            };
            match slot {
                // a pause: wait it out, then take a slot like everyone else
                Err(until) => sleep_until(until),
                Ok(at) => {
                    sleep_until(at);
                    if self.interval.is_none() || !self.paused_now() {
                        return;
                    }
                    // a pause began while this worker waited for its slot: the slot is
                    // given up, and a new one taken after the pause
                }
            }
        }
    }

    /// Whether a pause is on now (it began after a slot was taken).
    fn paused_now(&self) -> bool {
        let s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        s.paused_until.is_some_and(|p| p > Instant::now())
    }

    /// No worker starts a request for this long (a 429 with `Retry-After`). A longer
    /// pause already on stays.
    pub(super) fn pause(&self, d: Duration) {
        let until = Instant::now() + d;
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        self.paused_once.store(true, Ordering::Release);
        if s.paused_until.is_none_or(|p| p < until) {
            s.paused_until = Some(until);
        }
        // spacing starts again after the pause
        s.next = s.next.max(until);
    }
}

fn sleep_until(at: Instant) {
    let now = Instant::now();
    if at > now {
        std::thread::sleep(at - now);
    }
}

/// A `Retry-After` value: seconds (`120`) or an HTTP date (`Wed, 21 Oct 2015 07:28:00
/// GMT`, the time left until then; a date passed is no wait).
pub(super) fn retry_after(value: &str) -> Option<Duration> {
    let v = value.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = chrono::DateTime::parse_from_rfc2822(v).ok()?;
    let left = at.with_timezone(&chrono::Utc) - chrono::Utc::now();
    Some(left.to_std().unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn retry_after_takes_seconds_and_http_dates() {
        assert_eq!(retry_after(" 7 "), Some(Duration::from_secs(7)));
        assert_eq!(retry_after("0"), Some(Duration::ZERO));
        let later = chrono::Utc::now() + chrono::Duration::seconds(30);
        let date = later.format("%a, %d %b %Y %H:%M:%S GMT").to_string();
        let d = retry_after(&date).unwrap();
        assert!(
            d > Duration::from_secs(27) && d <= Duration::from_secs(30),
            "{d:?}"
        );
        assert_eq!(
            retry_after("Wed, 21 Oct 2015 07:28:00 GMT"),
            Some(Duration::ZERO)
        );
        assert_eq!(retry_after("soon"), None);
        assert_eq!(retry_after("-3"), None);
    }

    #[test]
    fn workers_share_the_spacing() {
        // 4 threads, 5 requests each, 200 per second: 20 slots 5 ms apart
        let gate = Arc::new(Gate::new(Some(200.0)));
        let start = Instant::now();
        let times: Vec<Duration> = std::thread::scope(|s| {
            let hs: Vec<_> = (0..4)
                .map(|_| {
                    let g = gate.clone();
                    s.spawn(move || {
                        (0..5)
                            .map(|_| {
                                g.wait();
                                start.elapsed()
                            })
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            hs.into_iter().flat_map(|h| h.join().unwrap()).collect()
        });
        let mut times = times;
        times.sort();
        // sleeping never ends early: the last of 20 slots is at least 19 intervals in
        assert!(times[19] >= Duration::from_millis(95), "{times:?}");
    }

    #[test]
    fn a_pause_holds_every_worker() {
        let gate = Gate::new(None);
        gate.wait();
        gate.pause(Duration::from_millis(80));
        let t = Instant::now();
        gate.wait();
        assert!(t.elapsed() >= Duration::from_millis(80));
        // a shorter pause does not cut a longer one short
        gate.pause(Duration::from_millis(60));
        gate.pause(Duration::from_millis(10));
        let t = Instant::now();
        gate.wait();
        assert!(t.elapsed() >= Duration::from_millis(60));
    }
}
