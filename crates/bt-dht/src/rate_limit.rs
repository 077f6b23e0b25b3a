//! Inbound query rate limits: a token bucket per source IP and one for everyone.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Instant;

/// Rate limit parameters (queries per second and burst sizes).
#[derive(Clone, Debug)]
pub struct RateLimitConfig {
    /// Sustained queries per second accepted from one IP.
    pub per_ip_rate: f64,
    /// Queries one IP may send in a burst.
    pub per_ip_burst: f64,
    /// Sustained queries per second accepted from everyone together.
    pub global_rate: f64,
    /// Global burst.
    pub global_burst: f64,
    /// Most source IPs tracked; when full, unknown IPs are refused until idle ones are dropped.
    pub max_tracked_ips: usize,
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        Self {
            per_ip_rate: 5.0,
            per_ip_burst: 20.0,
            global_rate: 500.0,
            global_burst: 1000.0,
            max_tracked_ips: 10_000,
        }
    }
}

#[derive(Clone, Debug)]
struct Bucket {
    tokens: f64,
    last: Instant,
}

impl Bucket {
    fn full(burst: f64, now: Instant) -> Self {
        Self {
            tokens: burst,
            last: now,
        }
    }

    fn refill(&mut self, rate: f64, burst: f64, now: Instant) {
        let dt = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens = (self.tokens + dt * rate).min(burst);
        self.last = now;
    }
}

/// Token buckets for inbound queries (sans-I/O).
#[derive(Clone, Debug)]
pub struct RateLimiter {
    config: RateLimitConfig,
    global: Bucket,
    per_ip: HashMap<IpAddr, Bucket>,
}

impl RateLimiter {
    /// Full buckets as of `now`.
    pub fn new(config: RateLimitConfig, now: Instant) -> Self {
        Self {
            global: Bucket::full(config.global_burst, now),
            config,
            per_ip: HashMap::new(),
        }
    }

    /// Whether a query from `ip` at `now` may be answered; takes a token if so.
    pub fn allow(&mut self, ip: IpAddr, now: Instant) -> bool {
        let c = &self.config;
        self.global.refill(c.global_rate, c.global_burst, now);
        if self.global.tokens < 1.0 {
            return false;
        }
        if !self.per_ip.contains_key(&ip) && self.per_ip.len() >= c.max_tracked_ips {
            self.prune(now);
            if self.per_ip.len() >= self.config.max_tracked_ips {
                return false;
            }
        }
        let c = &self.config;
        let bucket = self
            .per_ip
            .entry(ip)
            .or_insert_with(|| Bucket::full(c.per_ip_burst, now));
        bucket.refill(c.per_ip_rate, c.per_ip_burst, now);
        if bucket.tokens < 1.0 {
            return false;
        }
        bucket.tokens -= 1.0;
        self.global.tokens -= 1.0;
        true
    }

    /// Forgets IPs whose bucket has refilled (they are as good as new).
    pub fn prune(&mut self, now: Instant) {
        let c = &self.config;
        self.per_ip.retain(|_, b| {
            b.refill(c.per_ip_rate, c.per_ip_burst, now);
            b.tokens < c.per_ip_burst
        });
    }

    /// Number of IPs tracked.
    pub fn tracked_ips(&self) -> usize {
        self.per_ip.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn ip(n: u8) -> IpAddr {
        IpAddr::from([127, 0, 0, n])
    }

    fn config() -> RateLimitConfig {
        RateLimitConfig {
            per_ip_rate: 2.0,
            per_ip_burst: 4.0,
            global_rate: 10.0,
            global_burst: 10.0,
            max_tracked_ips: 3,
        }
    }

    #[test]
    fn per_ip_burst_then_rate() {
        let t0 = Instant::now();
        let mut rl = RateLimiter::new(config(), t0);
        let ok = (0..6).filter(|_| rl.allow(ip(1), t0)).count();
        assert_eq!(ok, 4);
        assert!(rl.allow(ip(2), t0), "another IP has its own bucket");
        assert!(!rl.allow(ip(1), t0 + Duration::from_millis(400)));
        assert!(rl.allow(ip(1), t0 + Duration::from_millis(600)));
    }

    #[test]
    fn global_bucket_caps_everyone() {
        let t0 = Instant::now();
        let mut rl = RateLimiter::new(
            RateLimitConfig {
                max_tracked_ips: 100,
                ..config()
            },
            t0,
        );
        let ok = (1..=20u8).filter(|&n| rl.allow(ip(n), t0)).count();
        assert_eq!(ok, 10);
        assert!(rl.allow(ip(50), t0 + Duration::from_millis(100)));
    }

    #[test]
    fn tracked_ips_are_bounded() {
        let t0 = Instant::now();
        let mut rl = RateLimiter::new(config(), t0);
        for n in 1..=3 {
            assert!(rl.allow(ip(n), t0));
        }
        assert!(!rl.allow(ip(4), t0), "table full of busy IPs");
        assert_eq!(rl.tracked_ips(), 3);
        // Half a second later their buckets have refilled: they are dropped, room is made.
        assert!(rl.allow(ip(4), t0 + Duration::from_millis(500)));
        assert!(rl.tracked_ips() <= 3);
    }
}
