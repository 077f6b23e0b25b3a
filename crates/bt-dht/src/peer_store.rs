//! Peers announced to us, per info-hash, with expiry and caps.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bt_meta::InfoHash;
use rand::seq::IteratorRandom;
use rand::Rng;

/// Peer store limits.
#[derive(Clone, Debug)]
pub struct PeerStoreConfig {
    /// How long an announce is kept.
    pub peer_ttl: Duration,
    /// Most info-hashes stored; announces for new ones are ignored beyond it.
    pub max_info_hashes: usize,
    /// Most peers per info-hash; the one expiring soonest makes room for a new one.
    pub max_peers_per_hash: usize,
    /// Most peers returned in one `get_peers` answer.
    pub max_peers_per_answer: usize,
}

impl Default for PeerStoreConfig {
    fn default() -> Self {
        Self {
            peer_ttl: Duration::from_secs(30 * 60),
            max_info_hashes: 2_000,
            max_peers_per_hash: 500,
            max_peers_per_answer: 50,
        }
    }
}

/// What [`PeerStore::announce`] did.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Stored {
    /// A new peer (possibly in place of the one expiring soonest).
    Added,
    /// A known peer's expiry was pushed back.
    Refreshed,
    /// The store holds too many info-hashes already.
    Full,
}

/// Announced peers keyed by info-hash (sans-I/O; bounded in both dimensions).
#[derive(Clone, Debug, Default)]
pub struct PeerStore {
    config: PeerStoreConfig,
    /// Peer address to its expiry time.
    swarms: HashMap<InfoHash, HashMap<SocketAddr, Instant>>,
}

impl PeerStore {
    /// An empty store.
    pub fn new(config: PeerStoreConfig) -> Self {
        Self {
            config,
            swarms: HashMap::new(),
        }
    }

    /// Records that `peer` has `info_hash` as of `now`.
    pub fn announce(&mut self, info_hash: InfoHash, peer: SocketAddr, now: Instant) -> Stored {
        if !self.swarms.contains_key(&info_hash) && self.swarms.len() >= self.config.max_info_hashes
        {
            self.expire(now);
            if self.swarms.len() >= self.config.max_info_hashes {
                return Stored::Full;
            }
        }
        let expires = now + self.config.peer_ttl;
        let swarm = self.swarms.entry(info_hash).or_default();
        if let Some(t) = swarm.get_mut(&peer) {
            *t = expires;
            return Stored::Refreshed;
        }
        if swarm.len() >= self.config.max_peers_per_hash {
            swarm.retain(|_, t| *t > now);
            if swarm.len() >= self.config.max_peers_per_hash {
                if let Some(oldest) = swarm.iter().min_by_key(|(_, t)| **t).map(|(a, _)| *a) {
                    swarm.remove(&oldest);
                }
            }
        }
        swarm.insert(peer, expires);
        Stored::Added
    }

    /// Up to `max_peers_per_answer` live peers of `info_hash` chosen at random,
    /// only those for which `keep` is true (the asker's address family).
    pub fn peers(
        &self,
        info_hash: &InfoHash,
        now: Instant,
        keep: impl Fn(&SocketAddr) -> bool,
        rng: &mut impl Rng,
    ) -> Vec<SocketAddr> {
        let Some(swarm) = self.swarms.get(info_hash) else {
            return Vec::new();
        };
        swarm
            .iter()
            .filter(|(a, t)| **t > now && keep(a))
            .map(|(a, _)| *a)
            .choose_multiple(rng, self.config.max_peers_per_answer)
    }

    /// Drops expired peers and empty info-hashes.
    pub fn expire(&mut self, now: Instant) {
        self.swarms.retain(|_, swarm| {
            swarm.retain(|_, t| *t > now);
            !swarm.is_empty()
        });
    }

    /// Number of info-hashes stored.
    pub fn info_hash_count(&self) -> usize {
        self.swarms.len()
    }

    /// Number of peers stored over all info-hashes (expired ones included until `expire`).
    pub fn peer_count(&self) -> usize {
        self.swarms.values().map(HashMap::len).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    const MIN: Duration = Duration::from_secs(60);

    fn peer(n: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], n))
    }

    fn hash(n: u8) -> InfoHash {
        InfoHash([n; 20])
    }

    fn all(store: &PeerStore, h: u8, now: Instant) -> Vec<SocketAddr> {
        let mut rng = rand::rngs::StdRng::seed_from_u64(0);
        let mut v = store.peers(&hash(h), now, |_| true, &mut rng);
        v.sort();
        v
    }

    #[test]
    fn peers_expire_after_ttl() {
        let t0 = Instant::now();
        let mut s = PeerStore::new(PeerStoreConfig::default());
        assert_eq!(s.announce(hash(1), peer(1), t0), Stored::Added);
        assert_eq!(s.announce(hash(1), peer(2), t0 + 10 * MIN), Stored::Added);
        assert_eq!(all(&s, 1, t0 + 29 * MIN), vec![peer(1), peer(2)]);
        assert_eq!(all(&s, 1, t0 + 30 * MIN), vec![peer(2)]);
        // Re-announcing pushes the expiry back.
        assert_eq!(
            s.announce(hash(1), peer(2), t0 + 35 * MIN),
            Stored::Refreshed
        );
        assert_eq!(all(&s, 1, t0 + 60 * MIN), vec![peer(2)]);
        s.expire(t0 + 65 * MIN);
        assert_eq!(s.info_hash_count(), 0);
        assert_eq!(s.peer_count(), 0);
    }

    #[test]
    fn info_hash_cap_refuses_new_hashes_until_some_expire() {
        let t0 = Instant::now();
        let mut s = PeerStore::new(PeerStoreConfig {
            max_info_hashes: 3,
            ..PeerStoreConfig::default()
        });
        for h in 0..3 {
            assert_eq!(s.announce(hash(h), peer(1), t0), Stored::Added);
        }
        assert_eq!(s.announce(hash(9), peer(1), t0 + MIN), Stored::Full);
        assert_eq!(s.announce(hash(0), peer(2), t0 + MIN), Stored::Added);
        assert_eq!(s.info_hash_count(), 3);
        // Once hashes 1 and 2 expire, a new one fits.
        assert_eq!(s.announce(hash(9), peer(1), t0 + 30 * MIN), Stored::Added);
        assert_eq!(s.info_hash_count(), 2);
    }

    #[test]
    fn per_hash_cap_evicts_the_oldest_peer() {
        let t0 = Instant::now();
        let mut s = PeerStore::new(PeerStoreConfig {
            max_peers_per_hash: 3,
            ..PeerStoreConfig::default()
        });
        for p in 1..=3u16 {
            s.announce(hash(1), peer(p), t0 + u32::from(p) * MIN);
        }
        s.announce(hash(1), peer(4), t0 + 5 * MIN);
        assert_eq!(all(&s, 1, t0 + 5 * MIN), vec![peer(2), peer(3), peer(4)]);
        assert_eq!(s.peer_count(), 3);
    }

    #[test]
    fn answers_hold_at_most_fifty_random_peers_of_the_family() {
        let t0 = Instant::now();
        let mut s = PeerStore::new(PeerStoreConfig::default());
        for p in 1..=200u16 {
            s.announce(hash(1), peer(p), t0);
        }
        s.announce(hash(1), "[::1]:7".parse().unwrap(), t0);
        let mut rng = rand::rngs::StdRng::seed_from_u64(9);
        let a = s.peers(&hash(1), t0, |p| p.is_ipv4(), &mut rng);
        let b = s.peers(&hash(1), t0, |p| p.is_ipv4(), &mut rng);
        assert_eq!(a.len(), 50);
        assert!(a.iter().all(SocketAddr::is_ipv4));
        assert_ne!(a, b, "a different sample each time");
        assert_eq!(s.peers(&hash(1), t0, |p| p.is_ipv6(), &mut rng).len(), 1);
        assert!(s.peers(&hash(2), t0, |_| true, &mut rng).is_empty());
    }
}
