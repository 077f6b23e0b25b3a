//! LEDBAT congestion control (RFC 6817, as BEP 29 uses it): keep the queueing delay the
//! connection adds near a target (100 ms) and yield to TCP, which fills queues.

use core::time::Duration;

/// One-minute buckets of the lowest delay seen, kept for the base delay (RFC 6817's
/// BASE_HISTORY).
const BASE_HISTORY: usize = 10;
/// Length of one base delay bucket.
const BUCKET: Duration = Duration::from_secs(60);
/// Recent delay samples; the queueing delay is their minimum (RFC 6817's CURRENT_FILTER).
const CURRENT_FILTER: usize = 4;

/// Whether `a` is before `b` on the 32-bit microsecond clock, which wraps.
fn wrap_less(a: u32, b: u32) -> bool {
    a != b && b.wrapping_sub(a) < 0x8000_0000
}

/// The congestion window in bytes, from one-way delay samples, ACKs and losses.
///
/// Delay samples are the peer's `timestamp_difference` (its receive clock minus our send
/// clock, in microseconds; the clocks' offset is arbitrary). The base delay is the
/// lowest sample of the last ten minutes; the queueing delay is the lowest of the last
/// four samples above it. Each ACK moves the window by
/// `gain * (target - queueing_delay) / target * bytes_acked / cwnd` (so at most `gain`
/// bytes per RTT either way); a loss halves it (once per window, the caller decides),
/// a timeout drops it to one packet. Until the first loss or a queueing delay of half
/// the target, the window grows by the bytes acked (slow start). It only grows while
/// the sender fills it.
#[derive(Debug, Clone)]
pub struct Ledbat {
    cwnd: u32,
    ssthresh: u32,
    slow_start: bool,
    min_cwnd: u32,
    max_cwnd: u32,
    target_micros: u32,
    gain: u32,
    base: [u32; BASE_HISTORY],
    base_len: usize,
    bucket_start: Option<Duration>,
    current: [u32; CURRENT_FILTER],
    current_len: usize,
    current_next: usize,
}

impl Ledbat {
    /// A controller starting at `initial_cwnd` bytes, kept within `min_cwnd..=max_cwnd`,
    /// aiming at `target` queueing delay and moving at most `gain` bytes per RTT.
    pub fn new(
        initial_cwnd: u32,
        min_cwnd: u32,
        max_cwnd: u32,
        target: Duration,
        gain: u32,
    ) -> Self {
        Self {
            cwnd: initial_cwnd.clamp(min_cwnd, max_cwnd),
            ssthresh: max_cwnd,
            slow_start: true,
            min_cwnd,
            max_cwnd,
            target_micros: u32::try_from(target.as_micros()).unwrap_or(u32::MAX).max(1),
            gain,
            base: [0; BASE_HISTORY],
            base_len: 0,
            bucket_start: None,
            current: [0; CURRENT_FILTER],
            current_len: 0,
            current_next: 0,
        }
    }

    /// The congestion window in bytes.
    pub fn window(&self) -> u32 {
        self.cwnd
    }

    /// Whether the controller is still in slow start.
    pub fn in_slow_start(&self) -> bool {
        self.slow_start
    }

    /// Sets the smallest window (one packet: it follows the MTU).
    pub fn set_min_window(&mut self, min_cwnd: u32) {
        self.min_cwnd = min_cwnd.min(self.max_cwnd);
        self.cwnd = self.cwnd.max(self.min_cwnd);
    }

    /// Takes one one-way delay sample (microseconds, arbitrary clock offset) at `now`.
    pub fn on_delay_sample(&mut self, now: Duration, delay: u32) {
        let start = *self.bucket_start.get_or_insert(now);
        if self.base_len == 0 {
            self.base[0] = delay;
            self.base_len = 1;
        } else if now.saturating_sub(start) >= BUCKET {
            // A new minute: start a bucket, forgetting the oldest beyond the history.
            self.bucket_start = Some(now);
            if self.base_len == BASE_HISTORY {
                self.base.copy_within(1.., 0);
                self.base_len -= 1;
            }
            self.base[self.base_len] = delay;
            self.base_len += 1;
        } else {
            let last = &mut self.base[self.base_len - 1];
            if wrap_less(delay, *last) {
                *last = delay;
            }
        }
        self.current[self.current_next] = delay;
        self.current_next = (self.current_next + 1) % CURRENT_FILTER;
        self.current_len = (self.current_len + 1).min(CURRENT_FILTER);
    }

    /// The base delay: the lowest sample of the history (raw clock units).
    fn base_delay(&self) -> Option<u32> {
        let mut it = self.base[..self.base_len].iter().copied();
        let first = it.next()?;
        Some(it.fold(first, |m, d| if wrap_less(d, m) { d } else { m }))
    }

    /// The queueing delay: the lowest recent sample above the base delay.
    pub fn queueing_delay(&self) -> Option<Duration> {
        let base = self.base_delay()?;
        let micros = self.current[..self.current_len]
            .iter()
            .map(|&d| {
                let q = d.wrapping_sub(base);
                if q >= 0x8000_0000 {
                    0
                } else {
                    q
                }
            })
            .min()?;
        Some(Duration::from_micros(u64::from(micros)))
    }

    /// `bytes_acked` newly acknowledged; `window_full` if the sender had filled the window.
    pub fn on_ack(&mut self, bytes_acked: u32, window_full: bool) {
        let Some(queueing) = self.queueing_delay() else {
            return;
        };
        let queueing = u32::try_from(queueing.as_micros()).unwrap_or(u32::MAX);
        if self.slow_start {
            if queueing > self.target_micros / 2 || self.cwnd >= self.ssthresh {
                self.slow_start = false;
            } else {
                if window_full {
                    self.cwnd = self.cwnd.saturating_add(bytes_acked).min(self.max_cwnd);
                }
                return;
            }
        }
        // off_target in [-1, 1], scaled by target: gain * off_target * acked / cwnd.
        let target = i64::from(self.target_micros);
        let off_target = (target - i64::from(queueing)).clamp(-target, target);
        let delta = i64::from(self.gain) * off_target * i64::from(bytes_acked)
            / (target * i64::from(self.cwnd.max(1)));
        if delta > 0 && !window_full {
            return;
        }
        let cwnd = (i64::from(self.cwnd) + delta)
            .clamp(i64::from(self.min_cwnd), i64::from(self.max_cwnd));
        self.cwnd = cwnd as u32;
    }

    /// A packet was lost (call once per window): halve the window, end slow start.
    pub fn on_loss(&mut self) {
        self.cwnd = (self.cwnd / 2).max(self.min_cwnd);
        self.ssthresh = self.cwnd;
        self.slow_start = false;
    }

    /// The retransmission timer fired: one packet, slow start up to half the old window.
    pub fn on_timeout(&mut self) {
        self.ssthresh = (self.cwnd / 2).max(self.min_cwnd);
        self.cwnd = self.min_cwnd;
        self.slow_start = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u32 = 1000;

    fn ledbat() -> Ledbat {
        Ledbat::new(3000, 1500, 1 << 20, Duration::from_millis(100), 3000)
    }

    fn ack_rtt(l: &mut Ledbat, now: Duration, delay: u32) {
        // One window's worth of ACKs, 1000 bytes each, with the same delay.
        let packets = (l.window() / 1000).max(1);
        for _ in 0..packets {
            l.on_delay_sample(now, delay);
            l.on_ack(1000, true);
        }
    }

    #[test]
    fn slow_start_doubles_until_delay_builds() {
        let mut l = ledbat();
        let t = Duration::ZERO;
        ack_rtt(&mut l, t, 7_000_000);
        assert_eq!(l.window(), 6000);
        ack_rtt(&mut l, t, 7_000_000);
        assert_eq!(l.window(), 12000);
        ack_rtt(&mut l, t, 7_000_000 + 60 * MS);
        assert!(!l.in_slow_start());
    }

    #[test]
    fn grows_below_target_shrinks_above_by_at_most_gain_per_rtt() {
        let mut l = ledbat();
        l.on_loss();
        l.cwnd = 100_000;
        let t = Duration::ZERO;
        l.on_delay_sample(t, 5_000_000);
        let before = l.window();
        ack_rtt(&mut l, t, 5_000_000);
        let grown = l.window() - before;
        assert!((2900..=3000).contains(&grown), "{grown}");
        let before = l.window();
        ack_rtt(&mut l, t, 5_000_000 + 150 * MS);
        let shrunk = before - l.window();
        assert!(
            (1200..=1500).contains(&shrunk),
            "half the gain at 1.5 x target: {shrunk}"
        );
        let before = l.window();
        ack_rtt(&mut l, t, 5_000_000 + 100 * MS);
        assert!(before.abs_diff(l.window()) < 10, "steady at the target");
    }

    #[test]
    fn base_delay_is_wrap_aware_and_forgets_after_ten_minutes() {
        let mut l = ledbat();
        let t0 = Duration::ZERO;
        l.on_delay_sample(t0, u32::MAX - 10 * MS + 1);
        l.on_delay_sample(t0, 20 * MS); // 30 ms later on the wrapped clock
        assert_eq!(l.queueing_delay(), Some(Duration::from_millis(0)));
        for _ in 0..CURRENT_FILTER {
            l.on_delay_sample(t0, 20 * MS);
        }
        assert_eq!(l.queueing_delay(), Some(Duration::from_millis(30)));
        for minute in 1..=11 {
            l.on_delay_sample(Duration::from_secs(60 * minute), 20 * MS);
        }
        assert_eq!(
            l.queueing_delay(),
            Some(Duration::ZERO),
            "old base forgotten"
        );
    }

    #[test]
    fn loss_halves_timeout_drops_to_minimum() {
        let mut l = ledbat();
        l.cwnd = 64_000;
        l.on_loss();
        assert_eq!(l.window(), 32_000);
        l.on_timeout();
        assert_eq!(l.window(), 1500);
        assert!(l.in_slow_start());
        l.on_loss();
        assert_eq!(l.window(), 1500, "never below the minimum");
    }

    #[test]
    fn does_not_grow_when_the_sender_leaves_the_window_empty() {
        let mut l = ledbat();
        l.on_delay_sample(Duration::ZERO, 1000);
        l.on_ack(1000, false);
        assert_eq!(l.window(), 3000);
    }
}
