//! The choker: which interested peers we upload to (tit-for-tat).
//!
//! [`Choker`] is a sans-I/O state machine driven with the usual verbs: the
//! driver feeds it [`ChokerEvent`]s with [`Choker::handle_event`], calls
//! [`Choker::handle_timeout`] when [`Choker::poll_timeout`] comes due, and
//! carries out every [`ChokerAction`] from [`Choker::poll_action`] (send
//! `choke` / `unchoke`). Time is the `now: Instant` the caller passes in; the
//! choker never reads the clock, and its only randomness is the seeded
//! [`StdRng`] handed to [`Choker::new`]. It does not measure bandwidth itself
//! (the driver reports payload bytes) nor decide what to request.
//!
//! # Policy
//!
//! - **Regular slots.** Every [`ChokerConfig::rechoke_interval`] (10 s) up to
//!   [`ChokerConfig::regular_slots`] (4) interested peers hold a regular
//!   unchoke. While downloading they are the peers that sent us the most
//!   payload over the last two intervals (ties broken by what they sent us
//!   since they connected, then at random). While
//!   seeding they rotate round-robin: a peer keeps its slot until it has been
//!   sent [`ChokerConfig::seeding_quota`] bytes (or for
//!   [`ChokerConfig::seeding_max_hold`]), so it takes whole pieces; then at
//!   each rechoke the interested peers that have waited longest since their
//!   last unchoke ended go first (those never unchoked before all others,
//!   those unchoked now after all others), so every interested peer gets
//!   service over time. Between rechokes, a peer that becomes interested is
//!   unchoked at once if a regular slot is free.
//! - **Optimistic slot.** One more interested peer, not holding a regular
//!   slot, is unchoked every [`ChokerConfig::optimistic_interval`] (30 s).
//!   Picks are weighted: a peer connected less than
//!   [`ChokerConfig::newcomer_age`] ago (30 s, three rechoke intervals) is
//!   [`ChokerConfig::newcomer_weight`] (3) times as likely to be picked. To
//!   bound the wait, picks go in turns: a peer that had the slot is not picked
//!   again until every other candidate had a turn, so a peer waits at most
//!   (candidates + 1) optimistic intervals. The optimistic peer keeps its slot
//!   until the next rotation and then competes for a regular slot like
//!   everyone else.
//! - **Anti-snubbing.** While downloading, a peer that holds a regular slot,
//!   that we are interested in, and that sent us nothing for
//!   [`ChokerConfig::snub_timeout`] (60 s) is snubbed: from the next rechoke
//!   on it gets no regular slot (it can still be the optimistic one) until it
//!   sends us data.
//! - Peers that are not interested get no slot: a regular slot held by a peer
//!   that loses interest goes at once to the next in line.
//!
//! # Invariants
//!
//! - At most `regular_slots` peers hold a regular slot and at most one the
//!   optimistic slot; the unchoked peers are exactly those, so never more
//!   than `regular_slots + 1` peers are unchoked.
//! - The action queue holds only changes: applying it in order to the
//!   driver's view (everyone choked at connect) yields [`Choker::is_unchoked`].
//!   A disconnected peer's queued actions are dropped.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::Rng;

use crate::proto::PeerKey;

/// Choker settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChokerConfig {
    /// Number of regular unchoke slots.
    pub regular_slots: usize,
    /// Time between rechokes.
    pub rechoke_interval: Duration,
    /// Time between optimistic unchoke rotations.
    pub optimistic_interval: Duration,
    /// Silence after which an unchoked peer we want data from is snubbed.
    pub snub_timeout: Duration,
    /// Peers connected for less than this are newcomers.
    pub newcomer_age: Duration,
    /// How many times as likely a newcomer is to get the optimistic slot.
    pub newcomer_weight: u32,
    /// While seeding, a peer keeps its regular slot over rechokes until it has been sent
    /// this many bytes since it was unchoked (or for [`ChokerConfig::seeding_max_hold`]),
    /// so it takes whole pieces rather than leaving one half done at every rotation.
    pub seeding_quota: u64,
    /// While seeding, the longest a peer keeps its regular slot under the quota.
    pub seeding_max_hold: Duration,
}

impl Default for ChokerConfig {
    fn default() -> Self {
        Self {
            regular_slots: 4,
            rechoke_interval: Duration::from_secs(10),
            optimistic_interval: Duration::from_secs(30),
            snub_timeout: Duration::from_secs(60),
            newcomer_age: Duration::from_secs(30),
            newcomer_weight: 3,
            seeding_quota: 5 << 20,
            seeding_max_hold: Duration::from_secs(60),
        }
    }
}

/// Something the driver tells the choker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChokerEvent {
    /// A peer finished its handshake; it starts choked.
    Connected(PeerKey),
    /// A peer is gone.
    Disconnected(PeerKey),
    /// The peer sent `interested`.
    Interested(PeerKey),
    /// The peer sent `not interested`.
    NotInterested(PeerKey),
    /// We sent `interested` to the peer.
    AmInterested(PeerKey),
    /// We sent `not interested` to the peer.
    AmNotInterested(PeerKey),
    /// The peer sent us `bytes` of piece payload.
    Received {
        /// Sender.
        peer: PeerKey,
        /// Payload bytes.
        bytes: u64,
    },
    /// We sent the peer `bytes` of piece payload.
    Sent {
        /// Receiver.
        peer: PeerKey,
        /// Payload bytes.
        bytes: u64,
    },
    /// We became a seed (`true`) or started downloading again (`false`).
    Seeding(bool),
}

/// A message the driver must send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChokerAction {
    /// Send `choke` to the peer.
    Choke(PeerKey),
    /// Send `unchoke` to the peer.
    Unchoke(PeerKey),
}

/// Why a peer is unchoked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Slot {
    /// One of the regular (rate-ranked or round-robin) slots.
    Regular,
    /// The optimistic slot.
    Optimistic,
}

/// What the choker knows about one peer.
#[derive(Debug, Clone)]
struct ChokePeer {
    connected_at: Instant,
    interested: bool,
    am_interested: bool,
    am_interested_since: Instant,
    slot: Option<Slot>,
    /// Start of the current (or last) unchoke.
    unchoked_at: Option<Instant>,
    /// End of the last unchoke.
    choked_at: Option<Instant>,
    last_received_at: Option<Instant>,
    /// Payload received: since the last rechoke, and in the interval before.
    received: [u64; 2],
    /// Payload received since it connected.
    received_total: u64,
    /// Payload sent, same windows.
    sent: [u64; 2],
    /// Payload sent since the current (or last) unchoke.
    sent_since_unchoke: u64,
    snubbed: bool,
    /// Had the optimistic slot in the current round of turns.
    turn_taken: bool,
}

/// Tit-for-tat choker for one torrent; see the module documentation.
#[derive(Debug, Clone)]
pub struct Choker {
    config: ChokerConfig,
    rng: StdRng,
    peers: BTreeMap<PeerKey, ChokePeer>,
    optimistic: Option<PeerKey>,
    seeding: bool,
    next_rechoke: Instant,
    next_optimistic: Instant,
    actions: VecDeque<ChokerAction>,
}

impl Choker {
    /// A choker with no peers, downloading; the first rechoke is one interval
    /// after `now`.
    pub fn new(config: ChokerConfig, now: Instant, rng: StdRng) -> Self {
        Self {
            next_rechoke: now + config.rechoke_interval,
            next_optimistic: now,
            config,
            rng,
            peers: BTreeMap::new(),
            optimistic: None,
            seeding: false,
            actions: VecDeque::new(),
        }
    }

    /// Applies one event. Events about a peer that is not connected are
    /// ignored.
    pub fn handle_event(&mut self, now: Instant, event: ChokerEvent) {
        match event {
            ChokerEvent::Connected(key) => {
                self.peers.entry(key).or_insert(ChokePeer {
                    connected_at: now,
                    interested: false,
                    am_interested: false,
                    am_interested_since: now,
                    slot: None,
                    unchoked_at: None,
                    choked_at: None,
                    last_received_at: None,
                    received: [0; 2],
                    received_total: 0,
                    sent: [0; 2],
                    sent_since_unchoke: 0,
                    snubbed: false,
                    turn_taken: false,
                });
            }
            ChokerEvent::Disconnected(key) => {
                if let Some(gone) = self.peers.remove(&key) {
                    if self.optimistic == Some(key) {
                        self.optimistic = None;
                    }
                    self.actions.retain(|a| match a {
                        ChokerAction::Choke(p) | ChokerAction::Unchoke(p) => *p != key,
                    });
                    if gone.slot == Some(Slot::Regular) {
                        // Its slot goes to the next in line now, as when a holder loses
                        // interest.
                        self.fill_regular_slots(now);
                    }
                }
            }
            ChokerEvent::Interested(key) => {
                if let Some(peer) = self.peers.get_mut(&key) {
                    peer.interested = true;
                    // Every other candidate already holds a slot whenever one is free
                    // (each change fills them), so only this peer can take a free slot:
                    // no need to rank everyone.
                    self.fill_slot_for(now, key);
                }
            }
            ChokerEvent::NotInterested(key) => {
                let released = self.peers.get_mut(&key).is_some_and(|peer| {
                    peer.interested = false;
                    let regular = peer.slot == Some(Slot::Regular);
                    if regular {
                        peer.slot = None;
                        peer.choked_at = Some(now);
                    }
                    regular
                });
                if released {
                    // A slot held by a peer that wants nothing is upload wasted until the
                    // next rechoke: it goes to the next in line now.
                    self.actions.push_back(ChokerAction::Choke(key));
                    self.fill_regular_slots(now);
                }
            }
            ChokerEvent::AmInterested(key) => {
                if let Some(peer) = self.peers.get_mut(&key) {
                    if !peer.am_interested {
                        peer.am_interested = true;
                        peer.am_interested_since = now;
                    }
                }
            }
            ChokerEvent::AmNotInterested(key) => {
                if let Some(peer) = self.peers.get_mut(&key) {
                    peer.am_interested = false;
                }
            }
            ChokerEvent::Received { peer: key, bytes } => {
                if let Some(peer) = self.peers.get_mut(&key) {
                    peer.received[0] += bytes;
                    peer.received_total += bytes;
                    if bytes > 0 {
                        peer.last_received_at = Some(now);
                        peer.snubbed = false;
                    }
                }
            }
            ChokerEvent::Sent { peer: key, bytes } => {
                if let Some(peer) = self.peers.get_mut(&key) {
                    peer.sent[0] += bytes;
                    peer.sent_since_unchoke += bytes;
                }
            }
            ChokerEvent::Seeding(seeding) => self.seeding = seeding,
        }
    }

    /// Rechokes if the rechoke time has come; does nothing before.
    pub fn handle_timeout(&mut self, now: Instant) {
        if now < self.next_rechoke {
            return;
        }
        self.rechoke(now);
        self.next_rechoke += self.config.rechoke_interval;
        if self.next_rechoke <= now {
            self.next_rechoke = now + self.config.rechoke_interval;
        }
    }

    /// The next `choke` / `unchoke` to send, oldest first.
    pub fn poll_action(&mut self) -> Option<ChokerAction> {
        self.actions.pop_front()
    }

    /// When [`Choker::handle_timeout`] should next be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        Some(self.next_rechoke)
    }

    /// Whether the peer is unchoked (after the queued actions are carried out).
    pub fn is_unchoked(&self, key: PeerKey) -> bool {
        self.slot(key).is_some()
    }

    /// The slot the peer holds, if unchoked.
    pub fn slot(&self, key: PeerKey) -> Option<Slot> {
        self.peers.get(&key).and_then(|p| p.slot)
    }

    /// Whether the peer is currently considered snubbing us.
    pub fn is_snubbed(&self, key: PeerKey) -> bool {
        self.peers.get(&key).is_some_and(|p| p.snubbed)
    }

    /// Number of unchoked peers.
    pub fn num_unchoked(&self) -> usize {
        self.peers.values().filter(|p| p.slot.is_some()).count()
    }

    /// Whether we are seeding.
    pub fn is_seeding(&self) -> bool {
        self.seeding
    }

    fn regular_count(&self) -> usize {
        self.peers
            .values()
            .filter(|p| p.slot == Some(Slot::Regular))
            .count()
    }

    fn rechoke(&mut self, now: Instant) {
        self.mark_snubbed(now);

        // The optimistic peer keeps its slot until rotation time, as long as
        // it is still interested.
        let keep = self
            .optimistic
            .filter(|key| self.peers.get(key).is_some_and(|p| p.interested));
        let rotate = now >= self.next_optimistic || keep.is_none();
        let previous = self.optimistic;
        let kept_optimistic = if rotate { None } else { keep };

        let regulars = self.rank_regulars(now, kept_optimistic);
        let optimistic = if rotate {
            let chosen = self.choose_optimistic(now, &regulars, previous);
            if chosen.is_some() {
                self.next_optimistic = now + self.config.optimistic_interval;
            }
            chosen
        } else {
            kept_optimistic
        };
        self.optimistic = optimistic;

        // Apply: chokes first, so the driver never exceeds the slot count.
        let mut unchokes = Vec::new();
        for (&key, peer) in &mut self.peers {
            let slot = if regulars.contains(&key) {
                Some(Slot::Regular)
            } else if optimistic == Some(key) {
                Some(Slot::Optimistic)
            } else {
                None
            };
            match (peer.slot.is_some(), slot.is_some()) {
                (true, false) => {
                    peer.choked_at = Some(now);
                    self.actions.push_back(ChokerAction::Choke(key));
                }
                (false, true) => {
                    peer.unchoked_at = Some(now);
                    peer.sent_since_unchoke = 0;
                    unchokes.push(ChokerAction::Unchoke(key));
                }
                _ => {}
            }
            peer.slot = slot;
            peer.received = [0, peer.received[0]];
            peer.sent = [0, peer.sent[0]];
        }
        self.actions.extend(unchokes);
    }

    /// Flags regular-slot holders that sent nothing for the snub timeout
    /// while we wanted data from them.
    fn mark_snubbed(&mut self, now: Instant) {
        if self.seeding {
            return;
        }
        for peer in self.peers.values_mut() {
            if peer.slot != Some(Slot::Regular) || !peer.am_interested {
                continue;
            }
            let since = [
                Some(peer.connected_at),
                Some(peer.am_interested_since),
                peer.unchoked_at,
                peer.last_received_at,
            ]
            .into_iter()
            .flatten()
            .max()
            .unwrap_or(now);
            if now.saturating_duration_since(since) >= self.config.snub_timeout {
                peer.snubbed = true;
            }
        }
    }

    /// Gives `key` a free regular slot if there is one and it may have it.
    fn fill_slot_for(&mut self, now: Instant, key: PeerKey) {
        let seeding = self.seeding;
        let candidate = self.optimistic != Some(key)
            && self
                .peers
                .get(&key)
                .is_some_and(|p| p.interested && p.slot.is_none() && (seeding || !p.snubbed));
        if !candidate || self.regular_count() >= self.config.regular_slots {
            return;
        }
        let Some(peer) = self.peers.get_mut(&key) else {
            return;
        };
        peer.slot = Some(Slot::Regular);
        peer.unchoked_at = Some(now);
        peer.sent_since_unchoke = 0;
        self.actions.push_back(ChokerAction::Unchoke(key));
    }

    /// Gives free regular slots to the best ranked interested peers that hold none.
    fn fill_regular_slots(&mut self, now: Instant) {
        let free = self
            .config
            .regular_slots
            .saturating_sub(self.regular_count());
        if free == 0 {
            return;
        }
        let ranked = self.ranked(now, self.optimistic);
        let chosen: Vec<PeerKey> = ranked
            .into_iter()
            .filter(|key| self.peers.get(key).is_some_and(|p| p.slot.is_none()))
            .take(free)
            .collect();
        for key in chosen {
            if let Some(peer) = self.peers.get_mut(&key) {
                peer.slot = Some(Slot::Regular);
                peer.unchoked_at = Some(now);
                peer.sent_since_unchoke = 0;
                self.actions.push_back(ChokerAction::Unchoke(key));
            }
        }
    }

    /// The peers that get regular slots at this rechoke.
    fn rank_regulars(&mut self, now: Instant, optimistic: Option<PeerKey>) -> BTreeSet<PeerKey> {
        self.ranked(now, optimistic)
            .into_iter()
            .take(self.config.regular_slots)
            .collect()
    }

    /// The candidates for a regular slot (interested, not the optimistic peer, not
    /// snubbed while downloading), best first.
    fn ranked(&mut self, now: Instant, optimistic: Option<PeerKey>) -> Vec<PeerKey> {
        let seeding = self.seeding;
        let mut candidates: Vec<(PeerKey, &ChokePeer)> = self
            .peers
            .iter()
            .filter(|(key, p)| p.interested && Some(**key) != optimistic && (seeding || !p.snubbed))
            .map(|(key, p)| (*key, p))
            .collect();
        candidates.shuffle(&mut self.rng);
        if seeding {
            // Round robin: regular holders still under their quota keep their slot;
            // then never served first, then the longest waiting; peers being served
            // now go last.
            let quota = self.config.seeding_quota;
            let max_hold = self.config.seeding_max_hold;
            candidates.sort_by_key(|(_, p)| {
                let keeps = p.slot == Some(Slot::Regular)
                    && p.sent_since_unchoke < quota
                    && p.unchoked_at
                        .is_some_and(|at| now.saturating_duration_since(at) < max_hold);
                let turn = if p.slot.is_some() {
                    Some(now)
                } else {
                    p.choked_at
                };
                (!keeps, turn)
            });
        } else {
            // Who sent us the most lately; among equals (none lately, often), who sent
            // us the most ever, so a peer that never uploads gets a regular slot only
            // when nobody who ever did is interested.
            candidates.sort_by_key(|(_, p)| {
                std::cmp::Reverse((p.received[0] + p.received[1], p.received_total))
            });
        }
        candidates.into_iter().map(|(key, _)| key).collect()
    }

    /// Picks the optimistic peer among interested peers without a regular
    /// slot: weighted lottery among those whose turn has not come yet.
    fn choose_optimistic(
        &mut self,
        now: Instant,
        regulars: &BTreeSet<PeerKey>,
        previous: Option<PeerKey>,
    ) -> Option<PeerKey> {
        let pool: Vec<PeerKey> = self
            .peers
            .iter()
            .filter(|(key, p)| p.interested && !regulars.contains(key))
            .map(|(key, _)| *key)
            .collect();
        if pool.is_empty() {
            return None;
        }
        let mut fresh: Vec<PeerKey> = pool
            .iter()
            .copied()
            .filter(|key| !self.peers[key].turn_taken)
            .collect();
        if fresh.is_empty() {
            // Everyone had a turn: start a new round, the last holder last.
            for peer in self.peers.values_mut() {
                peer.turn_taken = false;
            }
            fresh = pool
                .iter()
                .copied()
                .filter(|key| Some(*key) != previous)
                .collect();
            if fresh.is_empty() {
                fresh = pool;
            }
        }
        let weights: Vec<u32> = fresh
            .iter()
            .map(|key| {
                let age = now.saturating_duration_since(self.peers[key].connected_at);
                if age < self.config.newcomer_age {
                    self.config.newcomer_weight.max(1)
                } else {
                    1
                }
            })
            .collect();
        let chosen = fresh[weighted_index(&mut self.rng, &weights)];
        if let Some(peer) = self.peers.get_mut(&chosen) {
            peer.turn_taken = true;
        }
        Some(chosen)
    }
}

/// Index drawn with probability proportional to its weight (weights >= 1).
fn weighted_index(rng: &mut StdRng, weights: &[u32]) -> usize {
    let total: u64 = weights.iter().map(|w| u64::from(*w)).sum();
    let mut ticket = rng.gen_range(0..total);
    for (i, w) in weights.iter().enumerate() {
        let w = u64::from(*w);
        if ticket < w {
            return i;
        }
        ticket -= w;
    }
    weights.len() - 1
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rand::SeedableRng;

    const SEC: Duration = Duration::from_secs(1);

    /// A driver stand-in: applies the choker's actions to its own view of
    /// who is unchoked and checks every action is a change and the slot
    /// bound always holds.
    struct Sim {
        choker: Choker,
        now: Instant,
        unchoked: BTreeSet<PeerKey>,
        slots: usize,
    }

    impl Sim {
        fn new(seed: u64) -> Self {
            Self::with_config(ChokerConfig::default(), seed)
        }

        fn with_config(config: ChokerConfig, seed: u64) -> Self {
            let now = Instant::now();
            let slots = config.regular_slots;
            Self {
                choker: Choker::new(config, now, StdRng::seed_from_u64(seed)),
                now,
                unchoked: BTreeSet::new(),
                slots,
            }
        }

        fn event(&mut self, event: ChokerEvent) {
            self.choker.handle_event(self.now, event);
            if let ChokerEvent::Disconnected(key) = event {
                self.unchoked.remove(&key);
            }
            self.drain();
        }

        fn drain(&mut self) {
            while let Some(action) = self.choker.poll_action() {
                match action {
                    ChokerAction::Unchoke(key) => {
                        assert!(self.unchoked.insert(key), "{key:?} unchoked twice")
                    }
                    ChokerAction::Choke(key) => {
                        assert!(self.unchoked.remove(&key), "{key:?} choked twice")
                    }
                }
                assert!(
                    self.unchoked.len() <= self.slots + 1,
                    "{} unchoked",
                    self.unchoked.len()
                );
            }
            for key in &self.unchoked {
                assert!(
                    self.choker.is_unchoked(*key),
                    "{key:?} driver and choker disagree"
                );
            }
            assert_eq!(self.unchoked.len(), self.choker.num_unchoked());
        }

        /// Moves virtual time forward, firing timeouts on the way.
        fn advance(&mut self, by: Duration) {
            let target = self.now + by;
            while let Some(deadline) = self.choker.poll_timeout() {
                if deadline > target {
                    break;
                }
                self.now = deadline;
                self.choker.handle_timeout(self.now);
                self.drain();
            }
            self.now = target;
        }

        /// `secs` seconds in which each listed peer sends `bytes` per second.
        fn run(&mut self, secs: u32, rates: &[(PeerKey, u64)]) {
            for _ in 0..secs {
                for &(peer, bytes) in rates {
                    self.event(ChokerEvent::Received { peer, bytes });
                }
                self.advance(SEC);
            }
        }

        /// Connects a peer that is interested in us and we in it.
        fn join(&mut self, key: PeerKey) {
            self.event(ChokerEvent::Connected(key));
            self.event(ChokerEvent::AmInterested(key));
            self.event(ChokerEvent::Interested(key));
        }
    }

    fn keys(range: std::ops::Range<u64>) -> Vec<PeerKey> {
        range.map(PeerKey).collect()
    }

    #[test]
    fn rechoke_timer_fires_every_interval() {
        let mut sim = Sim::new(0);
        let start = sim.now;
        assert_eq!(sim.choker.poll_timeout(), Some(start + 10 * SEC));
        sim.choker.handle_timeout(start + 9 * SEC);
        assert_eq!(sim.choker.poll_timeout(), Some(start + 10 * SEC));
        sim.choker.handle_timeout(start + 10 * SEC);
        assert_eq!(sim.choker.poll_timeout(), Some(start + 20 * SEC));
        // A late call does not try to catch up on missed rounds.
        sim.choker.handle_timeout(start + 95 * SEC);
        assert_eq!(sim.choker.poll_timeout(), Some(start + 105 * SEC));
    }

    #[test]
    fn free_slots_are_filled_at_once() {
        let mut sim = Sim::new(0);
        for key in keys(0..6) {
            sim.join(key);
        }
        assert_eq!(sim.unchoked, keys(0..4).into_iter().collect());
        // A holder that leaves gives its slot to the next in line at once.
        sim.event(ChokerEvent::Disconnected(PeerKey(0)));
        assert_eq!(sim.unchoked.len(), 4, "{:?}", sim.unchoked);
        assert!(!sim.unchoked.contains(&PeerKey(0)));
        assert!(sim.unchoked.contains(&PeerKey(4)) || sim.unchoked.contains(&PeerKey(5)));
        // Unknown peers are ignored.
        sim.event(ChokerEvent::Interested(PeerKey(42)));
        assert!(!sim.choker.is_unchoked(PeerKey(42)));
    }

    #[test]
    fn free_rider_ends_up_choked_while_downloading() {
        let mut sim = Sim::new(1);
        let free_rider = PeerKey(0);
        sim.join(free_rider);
        let uploaders = keys(1..7);
        for &key in &uploaders {
            sim.join(key);
        }
        assert!(
            sim.choker.is_unchoked(free_rider),
            "got a free slot at first"
        );
        let rates: Vec<(PeerKey, u64)> =
            uploaders.iter().map(|&k| (k, 10_000 * (k.0 + 1))).collect();
        let mut unchoked_rounds = 0;
        for _ in 0..30 {
            sim.run(10, &rates);
            assert_ne!(sim.choker.slot(free_rider), Some(Slot::Regular));
            unchoked_rounds += u32::from(sim.choker.is_unchoked(free_rider));
            // The four fastest uploaders hold the regular slots.
            for key in keys(3..7) {
                assert_eq!(sim.choker.slot(key), Some(Slot::Regular), "{key:?}");
            }
        }
        // Only ever as the optimistic peer, which it shares with two others.
        assert!(
            unchoked_rounds > 0 && unchoked_rounds <= 15,
            "{unchoked_rounds}"
        );
    }

    #[test]
    fn fast_uploader_keeps_its_slot() {
        let mut sim = Sim::new(2);
        let fast = PeerKey(100);
        for key in keys(0..10) {
            sim.join(key);
        }
        sim.join(fast);
        for round in 0..100u64 {
            let mut rates: Vec<(PeerKey, u64)> = (0..10)
                .map(|k| (PeerKey(k), (k * 7 + round * 13) % 50 * 1000))
                .collect();
            rates.push((fast, 200_000));
            sim.run(10, &rates);
            assert_eq!(sim.choker.slot(fast), Some(Slot::Regular), "round {round}");
        }
    }

    #[test]
    fn newcomer_gets_the_optimistic_slot_in_bounded_time() {
        for seed in 0..20 {
            let mut sim = Sim::new(seed);
            let uploaders = keys(0..4);
            let rates: Vec<(PeerKey, u64)> = uploaders.iter().map(|&k| (k, 50_000)).collect();
            for &key in &uploaders {
                sim.join(key);
            }
            for key in keys(10..16) {
                sim.join(key);
            }
            sim.run(95, &rates);
            let newcomer = PeerKey(99);
            sim.join(newcomer);
            assert!(!sim.choker.is_unchoked(newcomer));
            // Seven candidates for the optimistic slot: each gets a turn
            // within seven rotations, plus one rotation of slack.
            let mut waited = 0;
            while !sim.choker.is_unchoked(newcomer) {
                sim.run(1, &rates);
                waited += 1;
                assert!(waited <= 8 * 30, "seed {seed}: newcomer still choked");
            }
            assert_eq!(sim.choker.slot(newcomer), Some(Slot::Optimistic));
        }
    }

    #[test]
    fn newcomers_are_three_times_as_likely_to_be_picked() {
        let mut first = BTreeMap::new();
        let newcomer = PeerKey(99);
        for seed in 0..400 {
            let mut sim = Sim::new(seed);
            let uploaders = keys(0..4);
            let rates: Vec<(PeerKey, u64)> = uploaders.iter().map(|&k| (k, 50_000)).collect();
            for &key in &uploaders {
                sim.join(key);
            }
            let old = keys(10..13);
            for &key in &old {
                sim.event(ChokerEvent::Connected(key));
            }
            sim.run(35, &rates);
            sim.event(ChokerEvent::Connected(newcomer));
            for &key in old.iter().chain([&newcomer]) {
                sim.event(ChokerEvent::Interested(key));
            }
            assert!(sim.choker.optimistic.is_none());
            sim.run(5, &rates);
            let chosen = sim
                .choker
                .optimistic
                .expect("an optimistic peer at the rechoke");
            *first.entry(chosen).or_insert(0u32) += 1;
        }
        // Expected: newcomer 3/6 of the picks, each old peer 1/6.
        let new = first[&newcomer];
        assert!((160..=240).contains(&new), "{first:?}");
        for key in keys(10..13) {
            let got = first.get(&key).copied().unwrap_or(0);
            assert!((40..=95).contains(&got), "{first:?}");
        }
    }

    #[test]
    fn weighted_index_follows_weights() {
        let mut rng = StdRng::seed_from_u64(5);
        let mut counts = [0u32; 3];
        for _ in 0..6000 {
            counts[weighted_index(&mut rng, &[1, 3, 2])] += 1;
        }
        assert!((850..1150).contains(&counts[0]), "{counts:?}");
        assert!((2800..3200).contains(&counts[1]), "{counts:?}");
        assert!((1800..2200).contains(&counts[2]), "{counts:?}");
    }

    #[test]
    fn snubbing_peer_loses_its_regular_slot() {
        let mut sim = Sim::new(3);
        let (good, snubber) = (PeerKey(1), PeerKey(2));
        sim.join(good);
        sim.join(snubber);
        // Both hold regular slots: plenty of room.
        assert_eq!(sim.choker.slot(snubber), Some(Slot::Regular));
        sim.run(55, &[(good, 10_000)]);
        assert_eq!(
            sim.choker.slot(snubber),
            Some(Slot::Regular),
            "not yet 60 s"
        );
        assert!(!sim.choker.is_snubbed(snubber));
        sim.run(10, &[(good, 10_000)]);
        assert!(sim.choker.is_snubbed(snubber));
        assert_ne!(sim.choker.slot(snubber), Some(Slot::Regular));
        assert_eq!(sim.choker.slot(good), Some(Slot::Regular));
        for _ in 0..10 {
            sim.run(10, &[(good, 10_000)]);
            assert_ne!(sim.choker.slot(snubber), Some(Slot::Regular));
        }
        // It can still be the optimistic peer: it is the only candidate.
        assert_eq!(sim.choker.slot(snubber), Some(Slot::Optimistic));
        // Sending data lifts the snub.
        sim.run(10, &[(good, 10_000), (snubber, 1)]);
        assert!(!sim.choker.is_snubbed(snubber));
    }

    #[test]
    fn no_snub_when_we_want_nothing_from_the_peer() {
        let mut sim = Sim::new(4);
        let key = PeerKey(1);
        sim.event(ChokerEvent::Connected(key));
        sim.event(ChokerEvent::Interested(key));
        sim.run(120, &[]);
        assert!(!sim.choker.is_snubbed(key));
        assert_eq!(sim.choker.slot(key), Some(Slot::Regular));
        // Becoming interested starts the snub clock from then.
        sim.event(ChokerEvent::AmInterested(key));
        sim.run(50, &[]);
        assert!(!sim.choker.is_snubbed(key));
        sim.run(20, &[]);
        assert!(sim.choker.is_snubbed(key));
    }

    #[test]
    fn seeding_rotation_serves_every_interested_peer() {
        let mut sim = Sim::new(5);
        let peers = keys(0..12);
        for &key in &peers {
            sim.event(ChokerEvent::Connected(key));
            sim.event(ChokerEvent::Interested(key));
        }
        sim.event(ChokerEvent::Seeding(true));
        assert!(sim.choker.is_seeding());
        let mut served: BTreeMap<PeerKey, u32> = BTreeMap::new();
        for _ in 0..30 {
            // Each unchoked peer takes 3 MiB a round: past the 5 MiB quota in two.
            let unchoked: Vec<PeerKey> = sim.unchoked.iter().copied().collect();
            for peer in unchoked {
                sim.event(ChokerEvent::Sent {
                    peer,
                    bytes: 3 << 20,
                });
            }
            sim.advance(10 * SEC);
            for &key in &sim.unchoked {
                *served.entry(key).or_default() += 1;
            }
        }
        // 30 rounds of 5 slots over 12 peers: each about 12 rounds.
        for key in &peers {
            let rounds = served.get(key).copied().unwrap_or(0);
            assert!(
                (8..=16).contains(&rounds),
                "{key:?} served {rounds} rounds: {served:?}"
            );
        }
        // A peer that loses interest gets no slot.
        sim.event(ChokerEvent::NotInterested(PeerKey(0)));
        sim.advance(10 * SEC);
        assert!(!sim.choker.is_unchoked(PeerKey(0)));
    }

    #[test]
    fn a_seed_keeps_a_peer_unchoked_until_its_quota_or_the_hold_limit() {
        let mut sim = Sim::new(9);
        sim.event(ChokerEvent::Seeding(true));
        for key in keys(0..10) {
            sim.event(ChokerEvent::Connected(key));
            sim.event(ChokerEvent::Interested(key));
        }
        let first: BTreeSet<PeerKey> = keys(0..4).into_iter().collect();
        assert!(first
            .iter()
            .all(|k| sim.choker.slot(*k) == Some(Slot::Regular)));
        // Under quota: peers 0 and 1 keep their slots over rechokes; 2 and 3 are past
        // it and give theirs up.
        for peer in [PeerKey(2), PeerKey(3)] {
            sim.event(ChokerEvent::Sent {
                peer,
                bytes: 6 << 20,
            });
        }
        sim.advance(10 * SEC);
        assert_eq!(sim.choker.slot(PeerKey(0)), Some(Slot::Regular));
        assert_eq!(sim.choker.slot(PeerKey(1)), Some(Slot::Regular));
        assert_ne!(sim.choker.slot(PeerKey(2)), Some(Slot::Regular));
        assert_ne!(sim.choker.slot(PeerKey(3)), Some(Slot::Regular));
        // The hold limit ends even a slow peer's turn.
        sim.advance(60 * SEC);
        assert_ne!(sim.choker.slot(PeerKey(0)), Some(Slot::Regular));
        assert_ne!(sim.choker.slot(PeerKey(1)), Some(Slot::Regular));
    }

    #[test]
    fn not_interested_peer_gives_back_its_slot() {
        let mut sim = Sim::new(6);
        for key in keys(0..6) {
            sim.join(key);
        }
        assert!(sim.choker.is_unchoked(PeerKey(0)));
        sim.event(ChokerEvent::NotInterested(PeerKey(0)));
        sim.run(10, &[(PeerKey(0), 100_000)]);
        assert!(!sim.choker.is_unchoked(PeerKey(0)));
        assert!(sim.choker.is_unchoked(PeerKey(4)) && sim.choker.is_unchoked(PeerKey(5)));
    }

    #[test]
    fn disconnect_drops_queued_actions() {
        let mut sim = Sim::new(7);
        sim.choker
            .handle_event(sim.now, ChokerEvent::Connected(PeerKey(1)));
        sim.choker
            .handle_event(sim.now, ChokerEvent::Interested(PeerKey(1)));
        sim.choker
            .handle_event(sim.now, ChokerEvent::Disconnected(PeerKey(1)));
        assert_eq!(sim.choker.poll_action(), None);
    }

    #[derive(Debug, Clone)]
    enum Op {
        Connect(u64),
        Disconnect(u64),
        Interested(u64, bool),
        AmInterested(u64, bool),
        Received(u64, u64),
        Sent(u64, u64),
        Seeding(bool),
        Advance(u64),
    }

    fn op() -> impl Strategy<Value = Op> {
        let peer = 0..12u64;
        prop_oneof![
            peer.clone().prop_map(Op::Connect),
            peer.clone().prop_map(Op::Disconnect),
            (peer.clone(), any::<bool>()).prop_map(|(p, b)| Op::Interested(p, b)),
            (peer.clone(), any::<bool>()).prop_map(|(p, b)| Op::AmInterested(p, b)),
            (peer.clone(), 0..100_000u64).prop_map(|(p, n)| Op::Received(p, n)),
            (peer, 0..100_000u64).prop_map(|(p, n)| Op::Sent(p, n)),
            any::<bool>().prop_map(Op::Seeding),
            (0..40_000u64).prop_map(Op::Advance),
        ]
    }

    proptest! {
        #[test]
        fn random_events_never_exceed_the_slots(
            slots in 1..5usize,
            seed in any::<u64>(),
            ops in prop::collection::vec(op(), 0..200),
        ) {
            let config = ChokerConfig { regular_slots: slots, ..ChokerConfig::default() };
            let mut sim = Sim::with_config(config, seed);
            for op in ops {
                match op {
                    Op::Connect(p) => sim.event(ChokerEvent::Connected(PeerKey(p))),
                    Op::Disconnect(p) => sim.event(ChokerEvent::Disconnected(PeerKey(p))),
                    Op::Interested(p, true) => sim.event(ChokerEvent::Interested(PeerKey(p))),
                    Op::Interested(p, false) => sim.event(ChokerEvent::NotInterested(PeerKey(p))),
                    Op::AmInterested(p, true) => sim.event(ChokerEvent::AmInterested(PeerKey(p))),
                    Op::AmInterested(p, false) => sim.event(ChokerEvent::AmNotInterested(PeerKey(p))),
                    Op::Received(p, n) => sim.event(ChokerEvent::Received { peer: PeerKey(p), bytes: n }),
                    Op::Sent(p, n) => sim.event(ChokerEvent::Sent { peer: PeerKey(p), bytes: n }),
                    Op::Seeding(s) => sim.event(ChokerEvent::Seeding(s)),
                    Op::Advance(ms) => sim.advance(Duration::from_millis(ms)),
                }
                let regular = sim.choker.peers.values().filter(|p| p.slot == Some(Slot::Regular)).count();
                let optimistic = sim.choker.peers.values().filter(|p| p.slot == Some(Slot::Optimistic)).count();
                prop_assert!(regular <= slots);
                prop_assert!(optimistic <= 1);
                prop_assert_eq!(optimistic == 1, sim.choker.optimistic.is_some());
            }
            // After a rechoke only interested peers are unchoked.
            sim.advance(Duration::from_secs(10));
            for (key, peer) in &sim.choker.peers {
                prop_assert!(peer.interested || peer.slot.is_none(), "{:?}", key);
            }
        }
    }
}
