//! Round-trip time and the retransmission timeout (RFC 6298 as BEP 29 uses it).

use core::time::Duration;

/// Smoothed RTT, its variance, and the retransmission timeout with backoff.
///
/// `rto = max(srtt + 4 * rttvar, min_rto)`, doubled after each timeout up to `max_rto`
/// until a new sample arrives. Before the first sample the timeout is `initial_rto`.
#[derive(Debug, Clone)]
pub struct RttEstimator {
    srtt: Option<Duration>,
    rttvar: Duration,
    min_rtt: Option<Duration>,
    backoff: u32,
    initial_rto: Duration,
    min_rto: Duration,
    max_rto: Duration,
}

impl RttEstimator {
    /// An estimator with no samples yet.
    pub fn new(initial_rto: Duration, min_rto: Duration, max_rto: Duration) -> Self {
        Self {
            srtt: None,
            rttvar: Duration::ZERO,
            min_rtt: None,
            backoff: 0,
            initial_rto,
            min_rto,
            max_rto,
        }
    }

    /// Takes one RTT sample (from a packet sent once, Karn's rule) and ends any backoff.
    pub fn sample(&mut self, rtt: Duration) {
        self.backoff = 0;
        self.min_rtt = Some(self.min_rtt.map_or(rtt, |m| m.min(rtt)));
        match self.srtt {
            None => {
                self.srtt = Some(rtt);
                self.rttvar = rtt / 2;
            }
            Some(srtt) => {
                let delta = srtt.abs_diff(rtt);
                // rttvar += (|delta| - rttvar) / 4; srtt += (rtt - srtt) / 8
                self.rttvar = self.rttvar * 3 / 4 + delta / 4;
                self.srtt = Some(srtt * 7 / 8 + rtt / 8);
            }
        }
    }

    /// Doubles the timeout (after a timeout fired).
    pub fn back_off(&mut self) {
        self.backoff = (self.backoff + 1).min(16);
    }

    /// The smoothed RTT, once there is a sample.
    pub fn srtt(&self) -> Option<Duration> {
        self.srtt
    }

    /// The lowest RTT seen.
    pub fn min_rtt(&self) -> Option<Duration> {
        self.min_rtt
    }

    /// The current retransmission timeout, backoff included.
    pub fn rto(&self) -> Duration {
        let base = match self.srtt {
            None => self.initial_rto,
            Some(srtt) => (srtt + self.rttvar * 4).max(self.min_rto),
        };
        base.saturating_mul(1 << self.backoff).min(self.max_rto)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn initial_then_floor_then_backoff() {
        let mut rtt = RttEstimator::new(ms(1000), ms(500), ms(60_000));
        assert_eq!(rtt.rto(), ms(1000));
        rtt.sample(ms(20));
        assert_eq!(rtt.srtt(), Some(ms(20)));
        assert_eq!(
            rtt.rto(),
            ms(500),
            "20 + 4 * 10 ms is below the 500 ms floor"
        );
        rtt.back_off();
        rtt.back_off();
        assert_eq!(rtt.rto(), ms(2000));
        rtt.sample(ms(20));
        assert_eq!(rtt.rto(), ms(500), "a sample ends the backoff");
        for _ in 0..40 {
            rtt.back_off();
        }
        assert_eq!(rtt.rto(), ms(60_000));
    }

    #[test]
    fn smooths_toward_samples() {
        let mut rtt = RttEstimator::new(ms(1000), ms(10), ms(60_000));
        rtt.sample(ms(100));
        for _ in 0..50 {
            rtt.sample(ms(300));
        }
        let srtt = rtt.srtt().unwrap();
        assert!(srtt > ms(290) && srtt <= ms(300), "{srtt:?}");
        assert!(rtt.rto() < ms(320), "variance decays: {:?}", rtt.rto());
        assert_eq!(rtt.min_rtt(), Some(ms(100)));
    }
}
