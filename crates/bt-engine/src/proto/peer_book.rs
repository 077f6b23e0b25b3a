//! A torrent's address book: which addresses to dial, when to dial them again, and who
//! is banned.
//!
//! Addresses come from peer sources (`--peer`, trackers, the DHT, PEX). Each is dialled
//! when the torrent is below its connection limits; one that fails or drops is dialled
//! again after an exponential backoff (1, 2, 4, ... 60 s), unless the reason makes a new
//! attempt pointless (banned, both seeds, ourselves, a duplicate). A peer whose data
//! failed hash checks collects strikes and is banned by address and peer id.

use core::net::{IpAddr, SocketAddr};
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::time::{Duration, Instant};

use bt_meta::PeerId;

use crate::proto::disconnect::Disconnect;

/// Longest wait before dialling a known address again.
pub const MAX_REDIAL_DELAY: Duration = Duration::from_secs(60);
/// Hash failures of pieces a peer sent alone before it is banned.
pub const BAN_ALONE_STRIKES: u32 = 2;
/// Hash failures of pieces a peer sent part of before it is banned.
pub const BAN_SHARED_STRIKES: u32 = 5;
/// Most addresses remembered, and most waiting to be dialled.
const MAX_ADDRESSES: usize = 10_000;

/// Strikes against an address for pieces that failed their hash check.
#[derive(Default, Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Strikes {
    /// Failed pieces it sent every block of.
    pub alone: u32,
    /// Failed pieces it sent some blocks of.
    pub shared: u32,
}

impl Strikes {
    /// Whether these strikes earn a ban.
    pub fn deserve_ban(self) -> bool {
        self.alone >= BAN_ALONE_STRIKES || self.shared >= BAN_SHARED_STRIKES
    }
}

/// Addresses to dial, redial schedule, bans and strikes; see the module documentation.
#[derive(Debug, Default)]
pub(crate) struct PeerBook {
    /// Addresses to dial when below the connection limits, oldest first.
    queue: VecDeque<SocketAddr>,
    /// The addresses in `queue`.
    queued: HashSet<SocketAddr>,
    /// Dials under way.
    connecting: HashSet<SocketAddr>,
    /// Addresses from peer sources, with failed attempts in a row (ordered, so a requeue
    /// is deterministic).
    known: BTreeMap<SocketAddr, u32>,
    /// When to dial a known address again.
    redial: Vec<(Instant, SocketAddr)>,
    banned_ips: HashSet<IpAddr>,
    banned_ids: HashSet<PeerId>,
    strikes: HashMap<SocketAddr, Strikes>,
}

impl PeerBook {
    /// Addresses from a peer source: remembered, and queued to be dialled.
    pub fn add(&mut self, addrs: impl IntoIterator<Item = SocketAddr>) {
        for addr in addrs {
            if self.known.len() < MAX_ADDRESSES {
                self.known.entry(addr).or_insert(0);
            }
            self.enqueue(addr);
        }
    }

    fn enqueue(&mut self, addr: SocketAddr) {
        if self.queue.len() < MAX_ADDRESSES && self.queued.insert(addr) {
            self.queue.push_back(addr);
        }
    }

    /// Queues every remembered address again (after a pause).
    pub fn requeue_known(&mut self) {
        let known: Vec<SocketAddr> = self.known.keys().copied().collect();
        for addr in known {
            self.enqueue(addr);
        }
    }

    /// The next queued address, without taking it.
    pub fn peek(&self) -> Option<SocketAddr> {
        self.queue.front().copied()
    }

    /// Takes the next queued address.
    pub fn pop(&mut self) -> Option<SocketAddr> {
        let addr = self.queue.pop_front()?;
        self.queued.remove(&addr);
        Some(addr)
    }

    /// Number of dials under way.
    pub fn connecting(&self) -> usize {
        self.connecting.len()
    }

    /// Whether a dial to `addr` is under way.
    pub fn is_connecting(&self, addr: SocketAddr) -> bool {
        self.connecting.contains(&addr)
    }

    /// A dial to `addr` starts.
    pub fn dialling(&mut self, addr: SocketAddr) {
        self.connecting.insert(addr);
    }

    /// The dial to `addr` ended (connected or failed).
    pub fn dial_ended(&mut self, addr: SocketAddr) {
        self.connecting.remove(&addr);
    }

    /// A connection with `addr` was made: its failure count starts over.
    pub fn connected(&mut self, addr: SocketAddr) {
        if let Some(attempts) = self.known.get_mut(&addr) {
            *attempts = 0;
        }
    }

    /// Schedules another dial of a known address that failed or dropped for `reason`,
    /// with exponential backoff; nothing for hopeless reasons or banned addresses.
    pub fn schedule_redial(&mut self, now: Instant, addr: SocketAddr, reason: &Disconnect) {
        let hopeless = matches!(
            reason,
            Disconnect::Banned
                | Disconnect::HashFailures(_)
                | Disconnect::BothSeeds
                | Disconnect::Shutdown
                | Disconnect::SelfConnection
                | Disconnect::Duplicate(_)
                | Disconnect::WrongInfoHash { .. }
        );
        if hopeless || self.is_banned_ip(addr.ip()) {
            return;
        }
        let Some(attempts) = self.known.get_mut(&addr) else {
            return;
        };
        *attempts = attempts.saturating_add(1);
        let delay = Duration::from_secs(1 << (*attempts).min(6)).min(MAX_REDIAL_DELAY);
        if !self.redial.iter().any(|(_, a)| *a == addr) {
            self.redial.push((now + delay, addr));
        }
    }

    /// Queues the addresses whose redial time has come.
    pub fn redial_due(&mut self, now: Instant) {
        if self.redial.iter().all(|(at, _)| *at > now) {
            return;
        }
        let (due, later) = std::mem::take(&mut self.redial)
            .into_iter()
            .partition::<Vec<_>, _>(|(at, _)| *at <= now);
        self.redial = later;
        for (_, addr) in due {
            self.enqueue(addr);
        }
    }

    /// When the next redial is due.
    pub fn next_redial(&self) -> Option<Instant> {
        self.redial.iter().map(|(at, _)| *at).min()
    }

    /// Forgets what was queued and scheduled (the torrent stops taking peers); remembered
    /// addresses stay for [`PeerBook::requeue_known`].
    pub fn clear_queue(&mut self) {
        self.queue.clear();
        self.queued.clear();
        self.redial.clear();
    }

    /// Whether connections from or to this IP address are refused.
    pub fn is_banned_ip(&self, ip: IpAddr) -> bool {
        self.banned_ips.contains(&ip)
    }

    /// Whether this peer (address or id) is banned.
    pub fn is_banned(&self, addr: SocketAddr, id: &PeerId) -> bool {
        self.is_banned_ip(addr.ip()) || self.banned_ids.contains(id)
    }

    /// Bans an address.
    pub fn ban_ip(&mut self, ip: IpAddr) {
        self.banned_ips.insert(ip);
    }

    /// Bans an address and a peer id.
    pub fn ban(&mut self, ip: IpAddr, id: PeerId) {
        self.banned_ips.insert(ip);
        self.banned_ids.insert(id);
    }

    /// Number of banned addresses.
    pub fn banned(&self) -> usize {
        self.banned_ips.len()
    }

    /// Counts a failed piece against `addr` (it sent every block of it if `alone`);
    /// returns its strikes so far.
    pub fn strike(&mut self, addr: SocketAddr, alone: bool) -> Strikes {
        let s = self.strikes.entry(addr).or_default();
        if alone {
            s.alone += 1;
        } else {
            s.shared += 1;
        }
        *s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([10, 0, 0, 1], port))
    }

    #[test]
    fn addresses_are_queued_once_in_order() {
        let mut book = PeerBook::default();
        book.add([addr(1), addr(2), addr(1)]);
        book.add([addr(2), addr(3)]);
        assert_eq!(book.pop(), Some(addr(1)));
        assert_eq!(book.peek(), Some(addr(2)));
        assert_eq!(book.pop(), Some(addr(2)));
        assert_eq!(book.pop(), Some(addr(3)));
        assert_eq!(book.pop(), None);
        // Taken addresses can be queued again.
        book.add([addr(1)]);
        assert_eq!(book.pop(), Some(addr(1)));
    }

    #[test]
    fn redial_backs_off_exponentially_up_to_a_minute() {
        let t0 = Instant::now();
        let mut book = PeerBook::default();
        book.add([addr(1)]);
        book.pop();
        let mut delays = Vec::new();
        let mut now = t0;
        for _ in 0..9 {
            book.schedule_redial(now, addr(1), &Disconnect::Eof);
            let at = book.next_redial().unwrap();
            delays.push((at - now).as_secs());
            book.redial_due(at - Duration::from_millis(1));
            assert_eq!(book.peek(), None, "not before its time");
            book.redial_due(at);
            assert_eq!(book.pop(), Some(addr(1)));
            now = at;
        }
        assert_eq!(delays, [2, 4, 8, 16, 32, 60, 60, 60, 60]);
        // A connection resets the count.
        book.connected(addr(1));
        book.schedule_redial(now, addr(1), &Disconnect::Eof);
        assert_eq!(book.next_redial(), Some(now + Duration::from_secs(2)));
    }

    #[test]
    fn hopeless_reasons_unknown_and_banned_addresses_are_not_redialled() {
        let now = Instant::now();
        let mut book = PeerBook::default();
        book.add([addr(1), addr(2)]);
        for reason in [
            Disconnect::Banned,
            Disconnect::HashFailures(2),
            Disconnect::BothSeeds,
            Disconnect::Shutdown,
            Disconnect::SelfConnection,
            Disconnect::Duplicate(PeerId([1; 20])),
        ] {
            book.schedule_redial(now, addr(1), &reason);
        }
        book.schedule_redial(now, addr(9), &Disconnect::Eof);
        book.ban(addr(2).ip(), PeerId([2; 20]));
        book.schedule_redial(now, addr(2), &Disconnect::Eof);
        assert_eq!(book.next_redial(), None);
    }

    #[test]
    fn strikes_earn_a_ban_after_two_lone_or_five_shared_failures() {
        let mut book = PeerBook::default();
        assert!(!book.strike(addr(1), true).deserve_ban());
        assert!(book.strike(addr(1), true).deserve_ban());
        for _ in 0..4 {
            assert!(!book.strike(addr(2), false).deserve_ban());
        }
        assert!(book.strike(addr(2), false).deserve_ban());
        assert_eq!(
            book.strike(addr(2), true),
            Strikes {
                alone: 1,
                shared: 5
            }
        );
    }
}
