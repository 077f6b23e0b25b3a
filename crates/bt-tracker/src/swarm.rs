//! The built-in tracker's memory: which peers are in which torrent. Sans-I/O, with
//! an explicit clock, so expiry is tested in virtual time.
//!
//! Invariants: at most `max_torrents` torrents and `max_peers_per_torrent` peers per
//! torrent are held; a peer is keyed by its address (IP and announced port), so one
//! peer cannot remove another by sending `stopped` with its peer id; a peer unseen for
//! `peer_ttl` is gone; a torrent with no peers is dropped.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bt_meta::{InfoHash, PeerId};
use rand::seq::IteratorRandom;
use rand::Rng;

use crate::announce::{Event, Peer, ScrapeStats};
use crate::compact::Family;
use crate::error::{Error, Result};

/// Limits of the swarm store.
#[derive(Clone, Debug)]
pub struct SwarmConfig {
    /// Most torrents tracked; announces for new ones beyond it are refused.
    pub max_torrents: usize,
    /// Most peers per torrent; beyond it the longest-unseen peer is evicted.
    pub max_peers_per_torrent: usize,
    /// A peer unseen this long is dropped (the server uses two announce intervals).
    pub peer_ttl: Duration,
    /// Peers handed out when the request names no `numwant`.
    pub default_numwant: usize,
    /// Most peers handed out whatever `numwant` says.
    pub max_numwant: usize,
}

impl Default for SwarmConfig {
    fn default() -> Self {
        Self {
            max_torrents: 10_000,
            max_peers_per_torrent: 2_000,
            peer_ttl: Duration::from_secs(2 * 1800),
            default_numwant: 50,
            max_numwant: 200,
        }
    }
}

/// One announce as the server understood it.
#[derive(Clone, Debug)]
pub struct SwarmAnnounce {
    /// The torrent.
    pub info_hash: InfoHash,
    /// The announcing peer's id.
    pub peer_id: PeerId,
    /// Where other peers should connect to it.
    pub addr: SocketAddr,
    /// Why it announces.
    pub event: Event,
    /// Bytes it still misses (0: a seeder).
    pub left: u64,
    /// How many peers it wants (`None`: the default).
    pub numwant: Option<u32>,
    /// Hand out only peers of this family (UDP answers are single-family).
    pub family: Option<Family>,
}

/// What the store answers to an announce.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SwarmReply {
    /// A random subset of the other peers, never the requester.
    pub peers: Vec<Peer>,
    /// Seeders, the requester included.
    pub complete: u64,
    /// Leechers, the requester included.
    pub incomplete: u64,
}

#[derive(Clone, Debug)]
struct PeerEntry {
    id: PeerId,
    seen: Instant,
    seeder: bool,
}

#[derive(Clone, Debug, Default)]
struct Swarm {
    peers: HashMap<SocketAddr, PeerEntry>,
    downloaded: u64,
}

impl Swarm {
    fn expire(&mut self, now: Instant, ttl: Duration) {
        self.peers
            .retain(|_, p| now.saturating_duration_since(p.seen) < ttl);
    }

    fn stats(&self) -> ScrapeStats {
        let complete = self.peers.values().filter(|p| p.seeder).count() as u64;
        ScrapeStats {
            complete,
            downloaded: self.downloaded,
            incomplete: self.peers.len() as u64 - complete,
        }
    }
}

/// Every torrent the built-in tracker knows, with its peers.
#[derive(Clone, Debug, Default)]
pub struct Swarms {
    config: SwarmConfig,
    torrents: HashMap<InfoHash, Swarm>,
}

impl Swarms {
    /// An empty store with these limits.
    pub fn new(config: SwarmConfig) -> Self {
        Self {
            config,
            torrents: HashMap::new(),
        }
    }

    /// The limits in force.
    pub fn config(&self) -> &SwarmConfig {
        &self.config
    }

    /// Records an announce and picks peers for the reply. `stopped` removes the
    /// peer. A new torrent beyond the cap is [`Error::TooManyTorrents`].
    pub fn announce(
        &mut self,
        now: Instant,
        a: &SwarmAnnounce,
        rng: &mut impl Rng,
    ) -> Result<SwarmReply> {
        let ttl = self.config.peer_ttl;
        if !self.torrents.contains_key(&a.info_hash) {
            if a.event == Event::Stopped {
                return Ok(SwarmReply {
                    peers: Vec::new(),
                    complete: 0,
                    incomplete: 0,
                });
            }
            if self.torrents.len() >= self.config.max_torrents {
                self.expire(now);
            }
            if self.torrents.len() >= self.config.max_torrents {
                return Err(Error::TooManyTorrents {
                    limit: self.config.max_torrents,
                });
            }
        }
        let max_peers = self.config.max_peers_per_torrent.max(1);
        let swarm = self.torrents.entry(a.info_hash).or_default();
        swarm.expire(now, ttl);
        let mut peers = Vec::new();
        if a.event == Event::Stopped {
            swarm.peers.remove(&a.addr);
        } else {
            let seeder = a.left == 0;
            match swarm.peers.get_mut(&a.addr) {
                Some(p) => {
                    if a.event == Event::Completed && !p.seeder {
                        swarm.downloaded += 1;
                    }
                    *p = PeerEntry {
                        id: a.peer_id,
                        seen: now,
                        seeder,
                    };
                }
                None => {
                    while swarm.peers.len() >= max_peers {
                        let oldest = swarm
                            .peers
                            .iter()
                            .min_by_key(|(_, p)| p.seen)
                            .map(|(addr, _)| *addr);
                        match oldest {
                            Some(addr) => swarm.peers.remove(&addr),
                            None => break,
                        };
                    }
                    if a.event == Event::Completed {
                        swarm.downloaded += 1;
                    }
                    swarm.peers.insert(
                        a.addr,
                        PeerEntry {
                            id: a.peer_id,
                            seen: now,
                            seeder,
                        },
                    );
                }
            }
            let want = a
                .numwant
                .map_or(self.config.default_numwant, |n| n as usize)
                .min(self.config.max_numwant);
            peers = swarm
                .peers
                .iter()
                .filter(|(addr, p)| **addr != a.addr && p.id != a.peer_id)
                .filter(|(addr, _)| a.family.is_none_or(|f| Family::of(addr) == f))
                .map(|(addr, p)| Peer {
                    addr: *addr,
                    id: Some(p.id),
                })
                .choose_multiple(rng, want);
        }
        let stats = swarm.stats();
        if swarm.peers.is_empty() {
            self.torrents.remove(&a.info_hash);
        }
        Ok(SwarmReply {
            peers,
            complete: stats.complete,
            incomplete: stats.incomplete,
        })
    }

    /// Counts for one torrent (zeros when unknown). Peers past their TTL still
    /// count until the next [`Self::expire`] or announce.
    pub fn scrape(&self, info_hash: &InfoHash) -> ScrapeStats {
        self.torrents
            .get(info_hash)
            .map(Swarm::stats)
            .unwrap_or_default()
    }

    /// Counts for every torrent.
    pub fn scrape_all(&self) -> Vec<(InfoHash, ScrapeStats)> {
        self.torrents.iter().map(|(h, s)| (*h, s.stats())).collect()
    }

    /// Drops peers unseen for the TTL, then torrents left with no peer.
    pub fn expire(&mut self, now: Instant) {
        let ttl = self.config.peer_ttl;
        self.torrents.retain(|_, s| {
            s.expire(now, ttl);
            !s.peers.is_empty()
        });
    }

    /// How many torrents are tracked.
    pub fn torrent_count(&self) -> usize {
        self.torrents.len()
    }

    /// How many peers one torrent has (expired ones included until swept).
    pub fn peer_count(&self, info_hash: &InfoHash) -> usize {
        self.torrents.get(info_hash).map_or(0, |s| s.peers.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    const S: Duration = Duration::from_secs(1);

    fn ann(hash: u8, id: u8, addr: &str, event: Event, left: u64) -> SwarmAnnounce {
        SwarmAnnounce {
            info_hash: InfoHash([hash; 20]),
            peer_id: PeerId([id; 20]),
            addr: addr.parse().unwrap(),
            event,
            left,
            numwant: None,
            family: None,
        }
    }

    fn addrs(r: &SwarmReply) -> Vec<String> {
        let mut v: Vec<String> = r.peers.iter().map(|p| p.addr.to_string()).collect();
        v.sort();
        v
    }

    fn config() -> SwarmConfig {
        SwarmConfig {
            peer_ttl: 100 * S,
            ..SwarmConfig::default()
        }
    }

    #[test]
    fn two_peers_see_each_other_never_themselves() {
        let mut s = Swarms::new(config());
        let mut rng = StdRng::seed_from_u64(1);
        let t = Instant::now();
        let r = s
            .announce(t, &ann(1, 1, "10.0.0.1:1", Event::Started, 5), &mut rng)
            .unwrap();
        assert!(r.peers.is_empty());
        assert_eq!((r.complete, r.incomplete), (0, 1));
        let r = s
            .announce(t, &ann(1, 2, "10.0.0.2:2", Event::Started, 0), &mut rng)
            .unwrap();
        assert_eq!(addrs(&r), ["10.0.0.1:1"]);
        assert_eq!(r.peers[0].id, Some(PeerId([1; 20])));
        assert_eq!((r.complete, r.incomplete), (1, 1));
        let r = s
            .announce(t, &ann(1, 1, "10.0.0.1:1", Event::None, 5), &mut rng)
            .unwrap();
        assert_eq!(addrs(&r), ["10.0.0.2:2"]);
    }

    #[test]
    fn stopped_removes_only_the_sender() {
        let mut s = Swarms::new(config());
        let mut rng = StdRng::seed_from_u64(1);
        let t = Instant::now();
        s.announce(t, &ann(1, 1, "10.0.0.1:1", Event::Started, 5), &mut rng)
            .unwrap();
        s.announce(t, &ann(1, 2, "10.0.0.2:2", Event::Started, 5), &mut rng)
            .unwrap();
        // Another address claiming peer 1's id cannot remove it.
        s.announce(t, &ann(1, 1, "10.0.0.9:1", Event::Stopped, 5), &mut rng)
            .unwrap();
        assert_eq!(s.peer_count(&InfoHash([1; 20])), 2);
        let r = s
            .announce(t, &ann(1, 1, "10.0.0.1:1", Event::Stopped, 5), &mut rng)
            .unwrap();
        assert!(r.peers.is_empty());
        assert_eq!((r.complete, r.incomplete), (0, 1));
        s.announce(t, &ann(1, 2, "10.0.0.2:2", Event::Stopped, 5), &mut rng)
            .unwrap();
        assert_eq!(s.torrent_count(), 0, "an empty torrent is dropped");
        // Stopped for an unknown torrent creates nothing.
        s.announce(t, &ann(9, 2, "10.0.0.2:2", Event::Stopped, 5), &mut rng)
            .unwrap();
        assert_eq!(s.torrent_count(), 0);
    }

    #[test]
    fn peers_expire_after_ttl_in_virtual_time() {
        let mut s = Swarms::new(config());
        let mut rng = StdRng::seed_from_u64(1);
        let t0 = Instant::now();
        s.announce(t0, &ann(1, 1, "10.0.0.1:1", Event::Started, 5), &mut rng)
            .unwrap();
        s.announce(
            t0 + 50 * S,
            &ann(1, 2, "10.0.0.2:2", Event::Started, 5),
            &mut rng,
        )
        .unwrap();
        s.expire(t0 + 99 * S);
        assert_eq!(s.peer_count(&InfoHash([1; 20])), 2);
        s.expire(t0 + 100 * S);
        assert_eq!(
            s.peer_count(&InfoHash([1; 20])),
            1,
            "peer 1 unseen for the ttl"
        );
        // Announcing refreshes: peer 2 re-announces and lives on.
        let r = s
            .announce(
                t0 + 140 * S,
                &ann(1, 2, "10.0.0.2:2", Event::None, 5),
                &mut rng,
            )
            .unwrap();
        assert!(r.peers.is_empty());
        s.expire(t0 + 239 * S);
        assert_eq!(s.torrent_count(), 1);
        s.expire(t0 + 240 * S);
        assert_eq!(s.torrent_count(), 0);
    }

    #[test]
    fn expired_peers_are_not_handed_out_even_before_a_sweep() {
        let mut s = Swarms::new(config());
        let mut rng = StdRng::seed_from_u64(1);
        let t0 = Instant::now();
        s.announce(t0, &ann(1, 1, "10.0.0.1:1", Event::Started, 5), &mut rng)
            .unwrap();
        let r = s
            .announce(
                t0 + 100 * S,
                &ann(1, 2, "10.0.0.2:2", Event::Started, 5),
                &mut rng,
            )
            .unwrap();
        assert!(r.peers.is_empty());
    }

    #[test]
    fn scrape_counts_and_downloaded_once_per_completion() {
        let mut s = Swarms::new(config());
        let mut rng = StdRng::seed_from_u64(1);
        let t = Instant::now();
        s.announce(t, &ann(1, 1, "10.0.0.1:1", Event::Started, 5), &mut rng)
            .unwrap();
        s.announce(t, &ann(1, 2, "10.0.0.2:2", Event::Started, 0), &mut rng)
            .unwrap();
        s.announce(t, &ann(1, 1, "10.0.0.1:1", Event::Completed, 0), &mut rng)
            .unwrap();
        s.announce(t, &ann(1, 1, "10.0.0.1:1", Event::Completed, 0), &mut rng)
            .unwrap();
        let st = s.scrape(&InfoHash([1; 20]));
        assert_eq!((st.complete, st.downloaded, st.incomplete), (2, 1, 0));
        assert_eq!(s.scrape(&InfoHash([7; 20])), ScrapeStats::default());
        assert_eq!(s.scrape_all(), vec![(InfoHash([1; 20]), st)]);
    }

    #[test]
    fn torrent_cap_refuses_new_torrents_until_one_expires() {
        let mut s = Swarms::new(SwarmConfig {
            max_torrents: 2,
            ..config()
        });
        let mut rng = StdRng::seed_from_u64(1);
        let t = Instant::now();
        s.announce(t, &ann(1, 1, "10.0.0.1:1", Event::Started, 5), &mut rng)
            .unwrap();
        s.announce(
            t + 10 * S,
            &ann(2, 1, "10.0.0.1:1", Event::Started, 5),
            &mut rng,
        )
        .unwrap();
        let e = s
            .announce(t, &ann(3, 1, "10.0.0.1:1", Event::Started, 5), &mut rng)
            .unwrap_err();
        assert_eq!(e.to_string(), "tracker is full: 2 torrents");
        // Known torrents still work when full.
        s.announce(t, &ann(2, 2, "10.0.0.2:1", Event::Started, 5), &mut rng)
            .unwrap();
        // Once torrent 1's only peer expires, there is room.
        s.announce(
            t + 100 * S,
            &ann(3, 1, "10.0.0.1:1", Event::Started, 5),
            &mut rng,
        )
        .unwrap();
        assert_eq!(s.torrent_count(), 2);
    }

    #[test]
    fn peer_cap_evicts_the_longest_unseen() {
        let mut s = Swarms::new(SwarmConfig {
            max_peers_per_torrent: 3,
            ..config()
        });
        let mut rng = StdRng::seed_from_u64(1);
        let t = Instant::now();
        for i in 1..=5u8 {
            let addr = format!("10.0.0.{i}:1");
            s.announce(
                t + u32::from(i) * S,
                &ann(1, i, &addr, Event::Started, 5),
                &mut rng,
            )
            .unwrap();
        }
        assert_eq!(s.peer_count(&InfoHash([1; 20])), 3);
        let r = s
            .announce(
                t + 6 * S,
                &ann(1, 5, "10.0.0.5:1", Event::None, 5),
                &mut rng,
            )
            .unwrap();
        assert_eq!(addrs(&r), ["10.0.0.3:1", "10.0.0.4:1"]);
    }

    #[test]
    fn numwant_default_max_and_family_filter() {
        let mut s = Swarms::new(SwarmConfig {
            default_numwant: 3,
            max_numwant: 5,
            ..config()
        });
        let mut rng = StdRng::seed_from_u64(1);
        let t = Instant::now();
        for i in 1..=10u8 {
            let addr = format!("10.0.0.{i}:1");
            s.announce(t, &ann(1, i, &addr, Event::Started, 5), &mut rng)
                .unwrap();
        }
        s.announce(t, &ann(1, 20, "[::1]:1", Event::Started, 5), &mut rng)
            .unwrap();
        let mut a = ann(1, 30, "[::2]:2", Event::None, 5);
        assert_eq!(s.announce(t, &a, &mut rng).unwrap().peers.len(), 3);
        a.numwant = Some(1000);
        assert_eq!(s.announce(t, &a, &mut rng).unwrap().peers.len(), 5);
        a.family = Some(Family::V6);
        assert_eq!(addrs(&s.announce(t, &a, &mut rng).unwrap()), ["[::1]:1"]);
        a.numwant = Some(0);
        a.family = None;
        assert!(s.announce(t, &a, &mut rng).unwrap().peers.is_empty());
    }

    #[test]
    fn peer_subset_is_random() {
        let mut s = Swarms::new(SwarmConfig {
            default_numwant: 2,
            ..config()
        });
        let mut rng = StdRng::seed_from_u64(3);
        let t = Instant::now();
        for i in 1..=10u8 {
            s.announce(
                t,
                &ann(1, i, &format!("10.0.0.{i}:1"), Event::Started, 5),
                &mut rng,
            )
            .unwrap();
        }
        let mut seen = std::collections::HashSet::new();
        for _ in 0..20 {
            let r = s
                .announce(t, &ann(1, 1, "10.0.0.1:1", Event::None, 5), &mut rng)
                .unwrap();
            seen.extend(addrs(&r));
        }
        assert!(
            seen.len() > 2,
            "different peers over repeated announces: {seen:?}"
        );
    }
}
