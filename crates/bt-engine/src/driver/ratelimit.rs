//! Rate limits: token buckets shared by every connection they cover (the session's, a
//! torrent's). A connection takes what it moved from each bucket over it and, if that put
//! a bucket in debt, waits until the debt is paid, so over any stretch of time the bytes
//! that pass are the rate times the time, plus one batch. A bucket with no limit costs one
//! atomic load.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The most a bucket holds while nobody takes from it: a quarter second of its rate, so
/// an idle link does not get to burst far above the limit.
const BURST: Duration = Duration::from_millis(250);

/// A token bucket (0: unlimited).
#[derive(Debug)]
pub(crate) struct Bucket {
    rate: AtomicU64,
    /// Tokens (may be negative: debt) and when they were counted.
    state: Mutex<(f64, Instant)>,
}

impl Bucket {
    /// A bucket of `rate` bytes per second (0: unlimited).
    pub(crate) fn new(rate: u64) -> Bucket {
        Bucket {
            rate: AtomicU64::new(rate),
            state: Mutex::new((0.0, Instant::now())),
        }
    }

    /// Changes the rate (0: unlimited); debt is forgiven.
    pub(crate) fn set_rate(&self, rate: u64) {
        self.rate.store(rate, Ordering::Relaxed);
        *self.state.lock().unwrap_or_else(|e| e.into_inner()) = (0.0, Instant::now());
    }

    /// The rate, bytes per second (0: unlimited).
    pub(crate) fn rate(&self) -> u64 {
        self.rate.load(Ordering::Relaxed)
    }

    /// Takes `n` bytes at `now`; returns how long the taker must wait to stay within the
    /// rate.
    pub(crate) fn take(&self, n: u64, now: Instant) -> Duration {
        let rate = self.rate();
        if rate == 0 || n == 0 {
            return Duration::ZERO;
        }
        let rate = rate as f64;
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let elapsed = now.saturating_duration_since(st.1).as_secs_f64();
        st.0 = (st.0 + elapsed * rate).min(rate * BURST.as_secs_f64());
        st.1 = now;
        st.0 -= n as f64;
        if st.0 >= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(-st.0 / rate)
        }
    }
}

/// The buckets over one connection: the session's and its torrent's, each way.
#[derive(Debug, Clone)]
pub(crate) struct Throttle {
    /// Download: session, torrent.
    pub down: [Arc<Bucket>; 2],
    /// Upload: session, torrent.
    pub up: [Arc<Bucket>; 2],
}

impl Throttle {
    /// Whether any upload bucket limits.
    pub(crate) fn limits_up(&self) -> bool {
        self.up.iter().any(|b| b.rate() > 0)
    }

    /// Accounts `n` bytes received and waits as long as the limits say.
    pub(crate) async fn received(&self, n: u64) {
        wait(&self.down, n).await;
    }

    /// Accounts `n` bytes about to be sent and waits as long as the limits say.
    pub(crate) async fn sending(&self, n: u64) {
        wait(&self.up, n).await;
    }
}

async fn wait(buckets: &[Arc<Bucket>; 2], n: u64) {
    if buckets.iter().all(|b| b.rate() == 0) {
        return;
    }
    let now = Instant::now();
    let pause = buckets
        .iter()
        .map(|b| b.take(n, now))
        .max()
        .unwrap_or_default();
    if !pause.is_zero() {
        tokio::time::sleep(pause).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_taken_over_time_stay_at_the_rate_plus_one_take() {
        let b = Bucket::new(1000);
        let t0 = Instant::now();
        // Someone takes 100 bytes every time its last wait ends, for 10 s of virtual time.
        let mut now = t0;
        let mut taken = 0u64;
        while now < t0 + Duration::from_secs(10) {
            let wait = b.take(100, now);
            taken += 100;
            now += wait.max(Duration::from_millis(1));
        }
        assert!((10_000..=10_400).contains(&taken), "{taken}");
    }

    #[test]
    fn unlimited_never_waits_and_an_idle_bucket_bursts_only_a_quarter_second() {
        let b = Bucket::new(0);
        let now = Instant::now();
        assert_eq!(b.take(u64::MAX / 2, now), Duration::ZERO);
        b.set_rate(1000);
        let later = now + Duration::from_secs(60);
        assert_eq!(
            b.take(250, later),
            Duration::ZERO,
            "a quarter second's worth"
        );
        let w = b.take(500, later);
        assert_eq!(w, Duration::from_millis(500));
    }
}
