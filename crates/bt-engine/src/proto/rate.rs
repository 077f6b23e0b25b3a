//! Transfer rates: a byte counter with a sliding-window rate, fed the time by its caller.
//!
//! [`RateMeter`] never reads the clock: every call that needs the time takes `now`, so it
//! can be tested in virtual time. It keeps one bucket per second over a short window
//! ([`RateMeter::WINDOW_SECS`]) and reports the average over the filled part of it.

use std::time::{Duration, Instant};

/// Counts bytes and estimates bytes per second over the last few seconds.
#[derive(Debug, Clone)]
pub struct RateMeter {
    /// When bucket 0 of the current ring started.
    epoch: Instant,
    /// Bytes per one-second slot, indexed by `second % WINDOW_SECS`.
    buckets: [u64; Self::WINDOW_SECS as usize],
    /// The second (since `epoch`) of the newest bucket written.
    head: u64,
    /// All bytes ever counted.
    total: u64,
}

impl RateMeter {
    /// Length of the averaging window in seconds.
    pub const WINDOW_SECS: u64 = 5;

    /// An empty meter whose clock starts at `now`.
    pub fn new(now: Instant) -> Self {
        RateMeter {
            epoch: now,
            buckets: [0; Self::WINDOW_SECS as usize],
            head: 0,
            total: 0,
        }
    }

    fn second(&self, now: Instant) -> u64 {
        now.saturating_duration_since(self.epoch).as_secs()
    }

    /// Moves the window forward to `now`, zeroing the buckets that fell out of it.
    fn advance(&mut self, now: Instant) {
        let sec = self.second(now);
        if sec <= self.head {
            return;
        }
        let gap = (sec - self.head).min(Self::WINDOW_SECS);
        for i in 1..=gap {
            self.buckets[((self.head + i) % Self::WINDOW_SECS) as usize] = 0;
        }
        self.head = sec;
    }

    /// Counts `bytes` transferred at `now`.
    pub fn add(&mut self, now: Instant, bytes: u64) {
        self.advance(now);
        self.buckets[(self.head % Self::WINDOW_SECS) as usize] += bytes;
        self.total += bytes;
    }

    /// All bytes counted since the meter was made.
    pub fn total(&self) -> u64 {
        self.total
    }

    /// Bytes per second over the window ending at `now`.
    ///
    /// The current second counts as a fraction of a second, so a burst right after start is
    /// not divided by the whole window: during the first second the rate is
    /// `bytes / elapsed`.
    pub fn rate(&mut self, now: Instant) -> u64 {
        self.advance(now);
        let elapsed = now.saturating_duration_since(self.epoch);
        let full = self.head.min(Self::WINDOW_SECS - 1);
        let partial = elapsed
            .saturating_sub(Duration::from_secs(self.head))
            .as_secs_f64();
        let span = (full as f64 + partial).max(0.25);
        let sum: u64 = self.buckets.iter().sum();
        (sum as f64 / span) as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(start: Instant, ms: u64) -> Instant {
        start + Duration::from_millis(ms)
    }

    #[test]
    fn steady_rate() {
        let t0 = Instant::now();
        let mut m = RateMeter::new(t0);
        for ms in (0..10_000).step_by(100) {
            m.add(at(t0, ms), 1000);
        }
        let r = m.rate(at(t0, 10_000));
        assert!((9_000..=11_000).contains(&r), "rate {r}");
        assert_eq!(m.total(), 100 * 1000);
    }

    #[test]
    fn decays_to_zero_after_window() {
        let t0 = Instant::now();
        let mut m = RateMeter::new(t0);
        m.add(at(t0, 500), 1_000_000);
        assert!(m.rate(at(t0, 900)) > 0);
        assert_eq!(m.rate(at(t0, 7_000)), 0);
        assert_eq!(m.total(), 1_000_000);
    }

    #[test]
    fn early_burst_is_not_diluted() {
        let t0 = Instant::now();
        let mut m = RateMeter::new(t0);
        m.add(at(t0, 500), 500_000);
        let r = m.rate(at(t0, 500));
        assert!((900_000..=1_100_000).contains(&r), "rate {r}");
    }

    #[test]
    fn long_gap_clears_every_bucket() {
        let t0 = Instant::now();
        let mut m = RateMeter::new(t0);
        for s in 0..5 {
            m.add(at(t0, s * 1000), 100);
        }
        m.add(at(t0, 100_000), 7);
        let r = m.rate(at(t0, 100_500));
        // Only the 7 bytes of the current second remain, spread over 4.5 s.
        assert!(r <= 2, "rate {r}");
    }
}
