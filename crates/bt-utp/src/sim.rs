//! A tiny deterministic network for tests: two [`Endpoint`]s joined by one link each way,
//! with propagation delay, random loss, reordering, duplication, an MTU, and a bottleneck
//! (a rate and a drop-tail queue, optionally shared with cross traffic that fills it the
//! way a TCP flow would). Everything happens in virtual time from a seed.

use core::net::{Ipv4Addr, SocketAddr};
use core::time::Duration;
use std::collections::BinaryHeap;

use crate::endpoint::SplitMix64;
use crate::{Endpoint, EndpointConfig, Packet};

/// How one direction of the path behaves.
#[derive(Debug, Clone)]
pub(crate) struct LinkConfig {
    /// Propagation delay.
    pub delay: Duration,
    /// Probability that a datagram is lost.
    pub loss: f64,
    /// Probability that a datagram is held back by up to `jitter`.
    pub reorder: f64,
    /// The most a reordered datagram is held back.
    pub jitter: Duration,
    /// Probability that a datagram arrives twice.
    pub duplicate: f64,
    /// Bottleneck rate in bytes per second (none: infinitely fast).
    pub rate: Option<u64>,
    /// Longest queue at the bottleneck, in time to drain; later arrivals are dropped.
    pub queue_limit: Duration,
    /// Cross traffic into the bottleneck queue, bytes per second.
    pub cross_rate: u64,
    /// Largest datagram carried whole: bigger ones are dropped if sent with the
    /// don't-fragment bit, otherwise carried (fragmented).
    pub mtu: usize,
}

impl Default for LinkConfig {
    fn default() -> Self {
        Self {
            delay: Duration::from_millis(10),
            loss: 0.0,
            reorder: 0.0,
            jitter: Duration::ZERO,
            duplicate: 0.0,
            rate: None,
            queue_limit: Duration::from_secs(1),
            cross_rate: 0,
            mtu: 1500,
        }
    }
}

/// Decides to drop a packet (true) before the link sees it.
pub(crate) type Filter = Box<dyn FnMut(&Packet<'_>) -> bool>;

/// One direction of the path and what it saw.
pub(crate) struct Link {
    pub config: LinkConfig,
    pub filter: Option<Filter>,
    busy_until: Duration,
    cross_until: Duration,
    /// Datagrams offered, dropped, and the queueing delay each accepted one met.
    pub sent: u64,
    pub dropped: u64,
    pub delivered_bytes: u64,
    pub cross_bytes: u64,
    pub queueing: Vec<(Duration, Duration)>,
}

impl Link {
    fn new(config: LinkConfig) -> Self {
        Self {
            config,
            filter: None,
            busy_until: Duration::ZERO,
            cross_until: Duration::ZERO,
            sent: 0,
            dropped: 0,
            delivered_bytes: 0,
            cross_bytes: 0,
            queueing: Vec::new(),
        }
    }

    fn serialization(&self, len: usize) -> Duration {
        self.config.rate.map_or(Duration::ZERO, |rate| {
            Duration::from_nanos(len as u64 * 1_000_000_000 / rate.max(1))
        })
    }

    /// Lets cross traffic fill the queue up to `now`: it arrives at `cross_rate` and is
    /// dropped at the queue limit, like a flow that always has data.
    fn run_cross_traffic(&mut self, now: Duration) {
        let (Some(rate), cross) = (self.config.rate, self.config.cross_rate) else {
            return;
        };
        if cross == 0 {
            return;
        }
        let start = self
            .cross_until
            .max(now.saturating_sub(Duration::from_secs(1)));
        let arrived =
            (now.saturating_sub(start).as_nanos() as u64).saturating_mul(cross) / 1_000_000_000;
        self.cross_until = now;
        if arrived == 0 {
            return;
        }
        let limit = now + self.config.queue_limit;
        let base = self.busy_until.max(now);
        let wanted = base + Duration::from_nanos(arrived * 1_000_000_000 / rate.max(1));
        let until = wanted.min(limit);
        self.cross_bytes += (until - base).as_nanos() as u64 * rate / 1_000_000_000;
        self.busy_until = until;
    }

    /// When `datagram`, sent at `now`, arrives (one entry per copy), if at all.
    fn send(
        &mut self,
        now: Duration,
        datagram: &[u8],
        dont_fragment: bool,
        rng: &mut SplitMix64,
    ) -> Vec<Duration> {
        self.sent += 1;
        if let Some(filter) = &mut self.filter {
            if let Ok(packet) = Packet::decode(datagram) {
                if filter(&packet) {
                    self.dropped += 1;
                    return Vec::new();
                }
            }
        }
        let too_big = datagram.len() > self.config.mtu;
        if chance(rng, self.config.loss) || (too_big && dont_fragment) {
            self.dropped += 1;
            return Vec::new();
        }
        self.run_cross_traffic(now);
        let start = self.busy_until.max(now);
        let queued = start - now;
        if self.config.rate.is_some() && queued > self.config.queue_limit {
            self.dropped += 1;
            return Vec::new();
        }
        self.queueing.push((now, queued));
        self.busy_until = start + self.serialization(datagram.len());
        self.delivered_bytes += datagram.len() as u64;
        let mut at = self.busy_until + self.config.delay;
        if chance(rng, self.config.reorder) {
            let jitter = self.config.jitter.as_nanos() as u64;
            at += Duration::from_nanos(rng.next_u64() % jitter.max(1));
        }
        let mut copies = vec![at];
        if chance(rng, self.config.duplicate) {
            copies.push(at + Duration::from_micros(rng.next_u64() % 5000));
        }
        copies
    }

    /// Mean queueing delay of datagrams sent in `from..to`.
    pub fn mean_queueing(&self, from: Duration, to: Duration) -> Duration {
        let window: Vec<Duration> = self
            .queueing
            .iter()
            .filter(|(t, _)| *t >= from && *t < to)
            .map(|&(_, q)| q)
            .collect();
        if window.is_empty() {
            return Duration::ZERO;
        }
        window.iter().sum::<Duration>() / window.len() as u32
    }
}

fn chance(rng: &mut SplitMix64, p: f64) -> bool {
    p > 0.0 && (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64 <= p
}

#[derive(PartialEq, Eq)]
struct InFlight {
    at: Duration,
    order: u64,
    to: usize,
    datagram: Vec<u8>,
}

impl Ord for InFlight {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        // A min-heap on (at, order).
        (other.at, other.order).cmp(&(self.at, self.order))
    }
}

impl PartialOrd for InFlight {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

/// Two endpoints, `eps[0]` at `addrs[0]` and `eps[1]` at `addrs[1]`; `links[0]` carries
/// what 0 sends to 1, `links[1]` the way back. Endpoint `i` reads the clock as
/// `now + clocks[i]` (their epochs differ, as real hosts' do).
pub(crate) struct Sim {
    pub now: Duration,
    pub clocks: [Duration; 2],
    pub eps: [Endpoint; 2],
    pub addrs: [SocketAddr; 2],
    pub links: [Link; 2],
    queue: BinaryHeap<InFlight>,
    order: u64,
    rng: SplitMix64,
    buf: Vec<u8>,
}

impl Sim {
    /// A path with `forward` from 0 to 1 and `back` from 1 to 0.
    pub fn new(seed: u64, forward: LinkConfig, back: LinkConfig, config: EndpointConfig) -> Self {
        Self {
            // Not zero, so clocks start somewhere arbitrary, as real ones do.
            now: Duration::from_secs(1000),
            clocks: [Duration::ZERO; 2],
            eps: [
                Endpoint::new(config.clone(), seed ^ 0xa),
                Endpoint::new(config, seed ^ 0xb),
            ],
            addrs: [
                SocketAddr::from((Ipv4Addr::new(10, 0, 0, 1), 6881)),
                SocketAddr::from((Ipv4Addr::new(10, 0, 0, 2), 6881)),
            ],
            links: [Link::new(forward), Link::new(back)],
            queue: BinaryHeap::new(),
            order: 0,
            rng: SplitMix64::new(seed),
            buf: Vec::with_capacity(2048),
        }
    }

    /// A symmetric path.
    pub fn symmetric(seed: u64, link: LinkConfig) -> Self {
        Self::new(seed, link.clone(), link, EndpointConfig::default())
    }

    /// Endpoint `i`'s clock.
    pub fn local(&self, i: usize) -> Duration {
        self.now + self.clocks[i]
    }

    /// Sends everything both endpoints have to send.
    pub fn flush(&mut self) {
        for from in 0..2 {
            let local = self.local(from);
            while let Some(t) = self.eps[from].poll_transmit(local, &mut self.buf) {
                let to = 1 - from;
                debug_assert_eq!(t.to, self.addrs[to]);
                let datagram = &self.buf[..t.len];
                for at in self.links[from].send(self.now, datagram, t.dont_fragment, &mut self.rng)
                {
                    self.order += 1;
                    self.queue.push(InFlight {
                        at,
                        order: self.order,
                        to,
                        datagram: datagram.to_vec(),
                    });
                }
            }
        }
    }

    /// Injects a datagram for endpoint `to` as if sent by `from_addr`, now.
    pub fn inject(
        &mut self,
        to: usize,
        from_addr: SocketAddr,
        datagram: &[u8],
    ) -> crate::Result<crate::ConnectionHandle> {
        let local = self.local(to);
        self.eps[to].handle_datagram(local, from_addr, datagram)
    }

    /// Advances to the next delivery or timer, handles everything due, sends what
    /// follows. False if nothing is scheduled before `limit`.
    pub fn step(&mut self, limit: Duration) -> bool {
        self.flush();
        let next_delivery = self.queue.peek().map(|f| f.at);
        let next_timer = (0..2)
            .filter_map(|i| Some(self.eps[i].poll_timeout()? - self.clocks[i]))
            .min();
        let Some(next) = [next_delivery, next_timer].into_iter().flatten().min() else {
            return false;
        };
        if next > limit {
            self.now = limit;
            return false;
        }
        self.now = self.now.max(next);
        while self.queue.peek().is_some_and(|f| f.at <= self.now) {
            let f = self.queue.pop().expect("peeked");
            let from = self.addrs[1 - f.to];
            let local = self.local(f.to);
            let _ = self.eps[f.to].handle_datagram(local, from, &f.datagram);
        }
        for i in 0..2 {
            let local = self.local(i);
            if self.eps[i].poll_timeout().is_some_and(|t| t <= local) {
                self.eps[i].handle_timeout(local);
            }
        }
        self.flush();
        true
    }

    /// Steps until `done` says so (called after every step, it may act on the endpoints)
    /// or `timeout` of virtual time passes. True if `done`.
    pub fn run_until(&mut self, timeout: Duration, mut done: impl FnMut(&mut Sim) -> bool) -> bool {
        let limit = self.now + timeout;
        loop {
            if done(self) {
                return true;
            }
            self.flush();
            if !self.step(limit) {
                return done(self);
            }
        }
    }
}
