//! The routing table: k-buckets split around our own id, node states, replacement caches.
//!
//! Bucket `i` (for every bucket but the last) holds the nodes whose id shares
//! exactly `i` leading bits with ours; the last bucket holds every node sharing
//! at least as many bits, so it is the one whose range contains our id and the
//! only one that splits (BEP 5). A table therefore has at most 160 buckets.
//!
//! Only nodes that answered one of our queries are inserted (or nodes loaded
//! from a saved table, which start questionable). A node is **good** if it
//! answered within [`RoutingConfig::questionable_after`], or ever answered and
//! queried us within that time; **bad** after [`RoutingConfig::max_failures`]
//! queries in a row went unanswered; **questionable** otherwise. When a new node
//! finds its bucket full, it goes to that bucket's replacement cache and the
//! least recently seen questionable node is handed out for a ping
//! ([`RoutingTable::poll_ping`]); a node that turns bad is replaced by the most
//! recently seen replacement.
//!
//! Sans-I/O: every method that depends on time takes `now`.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use rand::Rng;

use crate::compact::NodeInfo;
use crate::node_id::{NodeId, ID_LEN};

/// Most buckets a table can have (one per possible common-prefix length).
pub const MAX_BUCKETS: usize = ID_LEN * 8;

/// Routing table parameters.
#[derive(Clone, Debug)]
pub struct RoutingConfig {
    /// Nodes per bucket (BEP 5: 8).
    pub k: usize,
    /// A node not heard from for this long becomes questionable (BEP 5: 15 minutes).
    pub questionable_after: Duration,
    /// Unanswered queries in a row that make a node bad.
    pub max_failures: u8,
    /// Replacement candidates kept per bucket.
    pub replacement_cache_len: usize,
    /// A bucket unchanged for this long is refreshed (BEP 5: 15 minutes).
    pub refresh_after: Duration,
}

impl Default for RoutingConfig {
    fn default() -> Self {
        Self {
            k: 8,
            questionable_after: Duration::from_secs(15 * 60),
            max_failures: 2,
            replacement_cache_len: 8,
            refresh_after: Duration::from_secs(15 * 60),
        }
    }
}

/// How much a node can be trusted to answer (BEP 5).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum NodeState {
    /// Answered recently (or answered once and queried us recently).
    Good,
    /// Not heard from lately, or never answered yet.
    Questionable,
    /// Failed to answer several queries in a row.
    Bad,
}

/// What [`RoutingTable::on_response`] and [`RoutingTable::insert_unverified`] did.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Insertion {
    /// The node was already in the table; its times were updated.
    Updated,
    /// The node took a free slot (possibly after a split).
    Added,
    /// The node took the slot of this bad node.
    Replaced(NodeInfo),
    /// The bucket is full: the node waits in the replacement cache.
    Cached,
    /// Not inserted (our own id, or its id is held by a live node at another address).
    Rejected,
}

#[derive(Clone, Debug)]
struct Slot {
    node: NodeInfo,
    /// Last answer to one of our queries.
    last_response: Option<Instant>,
    /// Last answer or query from it.
    last_seen: Instant,
    /// Unanswered queries in a row.
    failures: u8,
    /// Handed out by `poll_ping` and not yet answered or failed.
    ping_sent: bool,
}

#[derive(Clone, Debug)]
struct Bucket {
    slots: Vec<Slot>,
    /// Oldest first.
    replacements: Vec<Slot>,
    last_changed: Instant,
}

impl Bucket {
    fn new(now: Instant) -> Self {
        Self {
            slots: Vec::new(),
            replacements: Vec::new(),
            last_changed: now,
        }
    }
}

/// The k-bucket routing table (sans-I/O).
#[derive(Clone, Debug)]
pub struct RoutingTable {
    own_id: NodeId,
    config: RoutingConfig,
    buckets: Vec<Bucket>,
    pings: VecDeque<NodeInfo>,
}

impl RoutingTable {
    /// An empty table around `own_id`.
    pub fn new(own_id: NodeId, config: RoutingConfig, now: Instant) -> Self {
        Self {
            own_id,
            config,
            buckets: vec![Bucket::new(now)],
            pings: VecDeque::new(),
        }
    }

    /// Our own id.
    pub fn own_id(&self) -> NodeId {
        self.own_id
    }

    /// The configuration in force.
    pub fn config(&self) -> &RoutingConfig {
        &self.config
    }

    /// Nodes in the buckets (replacement caches not counted).
    pub fn len(&self) -> usize {
        self.buckets.iter().map(|b| b.slots.len()).sum()
    }

    /// Whether no bucket holds a node.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Per bucket, from the farthest: (nodes, replacement candidates).
    pub fn bucket_sizes(&self) -> Vec<(usize, usize)> {
        self.buckets
            .iter()
            .map(|b| (b.slots.len(), b.replacements.len()))
            .collect()
    }

    fn bucket_index(&self, id: &NodeId) -> usize {
        let lz = self.own_id.distance(id).leading_zeros();
        // ok: the table always holds at least one bucket
        lz.min(self.buckets.len() - 1)
    }

    fn state_of(&self, slot: &Slot, now: Instant) -> NodeState {
        if slot.failures >= self.config.max_failures {
            NodeState::Bad
        } else if slot.last_response.is_some()
            && now.saturating_duration_since(slot.last_seen) < self.config.questionable_after
        {
            NodeState::Good
        } else {
            NodeState::Questionable
        }
    }

    fn find(&self, id: &NodeId) -> Option<(usize, usize)> {
        let b = self.bucket_index(id);
        let i = self
            .buckets
            .get(b)?
            .slots
            .iter()
            .position(|s| s.node.id == *id)?;
        Some((b, i))
    }

    /// The state of the node with this id, if it is in a bucket.
    pub fn state(&self, id: &NodeId, now: Instant) -> Option<NodeState> {
        let (b, i) = self.find(id)?;
        let slot = self.buckets.get(b)?.slots.get(i)?;
        Some(self.state_of(slot, now))
    }

    /// Whether a node with this id is in a bucket.
    pub fn contains(&self, id: &NodeId) -> bool {
        self.find(id).is_some()
    }

    /// The node answered one of our queries.
    pub fn on_response(&mut self, node: NodeInfo, now: Instant) -> Insertion {
        let slot = Slot {
            node,
            last_response: Some(now),
            last_seen: now,
            failures: 0,
            ping_sent: false,
        };
        self.upsert(slot, now)
    }

    /// A node we have never heard from (a saved table): inserted questionable if
    /// its bucket has room, never into a replacement cache.
    pub fn insert_unverified(&mut self, node: NodeInfo, now: Instant) -> Insertion {
        if node.id == self.own_id {
            return Insertion::Rejected;
        }
        if self.find(&node.id).is_some() {
            return Insertion::Updated;
        }
        loop {
            let b = self.bucket_index(&node.id);
            let k = self.config.k;
            let splittable = self.can_split(b);
            let Some(bucket) = self.buckets.get_mut(b) else {
                return Insertion::Rejected;
            };
            if bucket.slots.len() < k {
                bucket.slots.push(Slot {
                    node,
                    last_response: None,
                    last_seen: now,
                    failures: 0,
                    ping_sent: false,
                });
                bucket.last_changed = now;
                return Insertion::Added;
            }
            if !splittable {
                return Insertion::Rejected;
            }
            self.split(now);
        }
    }

    /// The node sent us a query: refreshes it if known. Returns whether it is known.
    pub fn on_query(&mut self, node: NodeInfo, now: Instant) -> bool {
        let Some((b, i)) = self.find(&node.id) else {
            return false;
        };
        match self.buckets.get_mut(b).and_then(|bk| bk.slots.get_mut(i)) {
            Some(slot) if slot.node.addr == node.addr => {
                slot.last_seen = now;
                true
            }
            _ => false,
        }
    }

    /// Whether an unknown node with this id would be worth verifying with a ping:
    /// its bucket has room, holds a bad or questionable node, or can split.
    pub fn wants(&self, id: &NodeId, now: Instant) -> bool {
        if *id == self.own_id || self.find(id).is_some() {
            return false;
        }
        let b = self.bucket_index(id);
        let Some(bucket) = self.buckets.get(b) else {
            return false;
        };
        bucket.slots.len() < self.config.k
            || self.can_split(b)
            || bucket
                .slots
                .iter()
                .any(|s| self.state_of(s, now) != NodeState::Good)
    }

    /// A query to this node went unanswered. Returns its state afterwards, if it is in a bucket.
    pub fn on_failure(&mut self, id: &NodeId, now: Instant) -> Option<NodeState> {
        let b = self.bucket_index(id);
        if let Some(bucket) = self.buckets.get_mut(b) {
            bucket.replacements.retain(|s| s.node.id != *id);
        }
        let (b, i) = self.find(id)?;
        let max = self.config.max_failures;
        let bucket = self.buckets.get_mut(b)?;
        let slot = bucket.slots.get_mut(i)?;
        slot.failures = slot.failures.saturating_add(1);
        slot.ping_sent = false;
        if slot.failures >= max {
            if let Some(repl) = bucket.replacements.pop() {
                *slot = repl;
                bucket.last_changed = now;
            }
        }
        let state = self
            .buckets
            .get(b)?
            .slots
            .get(i)
            .map(|s| self.state_of(s, now));
        self.maybe_ping(b, now);
        state
    }

    /// The next node to ping before evicting it (each is handed out once per round).
    pub fn poll_ping(&mut self) -> Option<NodeInfo> {
        self.pings.pop_front()
    }

    /// Up to `n` non-bad nodes closest to `target`, closest first.
    pub fn closest(&self, target: &NodeId, n: usize, now: Instant) -> Vec<NodeInfo> {
        let mut all: Vec<NodeInfo> = self
            .buckets
            .iter()
            .flat_map(|b| b.slots.iter())
            .filter(|s| self.state_of(s, now) != NodeState::Bad)
            .map(|s| s.node)
            .collect();
        all.sort_by_key(|n| target.distance(&n.id));
        all.truncate(n);
        all
    }

    /// Every node in a bucket with its state, farthest bucket first.
    pub fn nodes(&self, now: Instant) -> Vec<(NodeInfo, NodeState)> {
        self.buckets
            .iter()
            .flat_map(|b| b.slots.iter())
            .map(|s| (s.node, self.state_of(s, now)))
            .collect()
    }

    /// Targets for refreshing buckets unchanged for [`RoutingConfig::refresh_after`]:
    /// a random id in each such bucket's range. Marks those buckets refreshed.
    pub fn refresh_targets(&mut self, now: Instant, rng: &mut impl Rng) -> Vec<NodeId> {
        // ok: the table always holds at least one bucket
        let last = self.buckets.len() - 1;
        let mut out = Vec::new();
        for (i, bucket) in self.buckets.iter_mut().enumerate() {
            if now.saturating_duration_since(bucket.last_changed) >= self.config.refresh_after {
                bucket.last_changed = now;
                out.push(self.own_id.random_at_prefix(i, i != last, rng));
            }
        }
        out
    }

    /// When the next bucket falls due for a refresh.
    pub fn next_refresh(&self) -> Option<Instant> {
        self.buckets
            .iter()
            .map(|b| b.last_changed + self.config.refresh_after)
            .min()
    }

    fn can_split(&self, b: usize) -> bool {
        b + 1 == self.buckets.len() && self.buckets.len() < MAX_BUCKETS
    }

    /// Splits the last bucket: nodes sharing more bits with us move to a new last bucket.
    fn split(&mut self, now: Instant) {
        let own = self.own_id;
        // ok: the table always holds at least one bucket
        let depth = self.buckets.len() - 1;
        let Some(old) = self.buckets.last_mut() else {
            return;
        };
        let deeper = |s: &Slot| own.distance(&s.node.id).leading_zeros() > depth;
        let (moved, kept): (Vec<Slot>, Vec<Slot>) = old.slots.drain(..).partition(deeper);
        old.slots = kept;
        let (moved_r, kept_r): (Vec<Slot>, Vec<Slot>) =
            old.replacements.drain(..).partition(deeper);
        old.replacements = kept_r;
        let mut new = Bucket::new(now);
        new.slots = moved;
        new.replacements = moved_r;
        self.buckets.push(new);
    }

    fn upsert(&mut self, slot: Slot, now: Instant) -> Insertion {
        let id = slot.node.id;
        if id == self.own_id {
            return Insertion::Rejected;
        }
        if let Some((b, i)) = self.find(&id) {
            let max = self.config.max_failures;
            let Some(bucket) = self.buckets.get_mut(b) else {
                return Insertion::Rejected;
            };
            let Some(existing) = bucket.slots.get_mut(i) else {
                return Insertion::Rejected;
            };
            if existing.node.addr != slot.node.addr && existing.failures < max {
                return Insertion::Rejected;
            }
            existing.node = slot.node;
            existing.last_response = slot.last_response.or(existing.last_response);
            existing.last_seen = now;
            existing.failures = 0;
            existing.ping_sent = false;
            bucket.last_changed = now;
            self.maybe_ping(b, now);
            return Insertion::Updated;
        }
        loop {
            let b = self.bucket_index(&id);
            let k = self.config.k;
            let max = self.config.max_failures;
            let splittable = self.can_split(b);
            let Some(bucket) = self.buckets.get_mut(b) else {
                return Insertion::Rejected;
            };
            if bucket.slots.len() < k {
                bucket.replacements.retain(|s| s.node.id != id);
                bucket.slots.push(slot);
                bucket.last_changed = now;
                return Insertion::Added;
            }
            if let Some(bad) = bucket.slots.iter_mut().find(|s| s.failures >= max) {
                let old = bad.node;
                *bad = slot;
                bucket.replacements.retain(|s| s.node.id != id);
                bucket.last_changed = now;
                return Insertion::Replaced(old);
            }
            if splittable {
                self.split(now);
                continue;
            }
            bucket.replacements.retain(|s| s.node.id != id);
            bucket.replacements.push(slot);
            if bucket.replacements.len() > self.config.replacement_cache_len {
                bucket.replacements.remove(0);
            }
            self.maybe_ping(b, now);
            return Insertion::Cached;
        }
    }

    /// If bucket `b` has replacements waiting and no eviction ping out, pings its
    /// least recently seen questionable node.
    fn maybe_ping(&mut self, b: usize, now: Instant) {
        let Some(bucket) = self.buckets.get(b) else {
            return;
        };
        if bucket.replacements.is_empty() || bucket.slots.iter().any(|s| s.ping_sent) {
            return;
        }
        let target = bucket
            .slots
            .iter()
            .enumerate()
            .filter(|(_, s)| self.state_of(s, now) == NodeState::Questionable)
            .min_by_key(|(_, s)| s.last_seen)
            .map(|(i, _)| i);
        if let Some(slot) =
            target.and_then(|i| self.buckets.get_mut(b).and_then(|bk| bk.slots.get_mut(i)))
        {
            slot.ping_sent = true;
            self.pings.push_back(slot.node);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::SocketAddr;

    fn node(id: NodeId, n: u16) -> NodeInfo {
        NodeInfo::new(id, SocketAddr::from(([127, 0, 0, 1], n)))
    }

    /// An id whose first byte is `first` (the rest zero).
    fn id_first(first: u8, last: u8) -> NodeId {
        let mut b = [0u8; 20];
        b[0] = first;
        b[19] = last;
        NodeId(b)
    }

    fn own() -> NodeId {
        NodeId([0u8; 20])
    }

    const MIN: Duration = Duration::from_secs(60);

    #[test]
    fn own_bucket_splits_others_do_not() {
        let t0 = Instant::now();
        let mut rt = RoutingTable::new(own(), RoutingConfig::default(), t0);
        // Eight far nodes (first bit 1) fill the only bucket.
        for i in 0..8 {
            assert_eq!(
                rt.on_response(node(id_first(0x80, i), i.into()), t0),
                Insertion::Added
            );
        }
        assert_eq!(rt.bucket_sizes(), vec![(8, 0)]);
        // A ninth far node splits the bucket (it holds our id), but the far half stays full.
        assert_eq!(
            rt.on_response(node(id_first(0x80, 9), 9), t0),
            Insertion::Cached
        );
        assert_eq!(rt.bucket_sizes(), vec![(8, 1), (0, 0)]);
        // More far nodes never split the far bucket again.
        assert_eq!(
            rt.on_response(node(id_first(0xc0, 1), 10), t0),
            Insertion::Cached
        );
        assert_eq!(rt.bucket_sizes().len(), 2);
        // Near nodes go to the new bucket; filling it and one more splits again.
        for i in 0..8 {
            rt.on_response(node(id_first(0x40, i), 20 + u16::from(i)), t0);
        }
        assert_eq!(rt.bucket_sizes(), vec![(8, 2), (8, 0)]);
        assert_eq!(
            rt.on_response(node(id_first(0x20, 1), 40), t0),
            Insertion::Added
        );
        assert_eq!(rt.bucket_sizes(), vec![(8, 2), (8, 0), (1, 0)]);
        assert_eq!(rt.len(), 17);
    }

    #[test]
    fn deep_split_stops_at_160_buckets() {
        let t0 = Instant::now();
        let mut rt = RoutingTable::new(own(), RoutingConfig::default(), t0);
        // Ids that differ from ours only in the last byte all land in deep buckets.
        for i in 1..=40u8 {
            rt.on_response(node(id_first(0, i), i.into()), t0);
        }
        assert!(rt.bucket_sizes().len() <= MAX_BUCKETS);
        assert!(rt.len() >= 8);
        assert_eq!(rt.on_response(node(own(), 1), t0), Insertion::Rejected);
    }

    #[test]
    fn states_follow_the_clock() {
        let t0 = Instant::now();
        let mut rt = RoutingTable::new(own(), RoutingConfig::default(), t0);
        let n = node(id_first(0x80, 1), 1);
        rt.on_response(n, t0);
        assert_eq!(rt.state(&n.id, t0 + 14 * MIN), Some(NodeState::Good));
        assert_eq!(
            rt.state(&n.id, t0 + 15 * MIN),
            Some(NodeState::Questionable)
        );
        // A query from a node that answered before makes it good again.
        assert!(rt.on_query(n, t0 + 16 * MIN));
        assert_eq!(rt.state(&n.id, t0 + 17 * MIN), Some(NodeState::Good));
        // One failure leaves it good; two make it bad.
        assert_eq!(rt.on_failure(&n.id, t0 + 17 * MIN), Some(NodeState::Good));
        assert_eq!(rt.on_failure(&n.id, t0 + 17 * MIN), Some(NodeState::Bad));
        assert!(rt.closest(&n.id, 8, t0 + 17 * MIN).is_empty());
        // An answer clears the failures.
        rt.on_response(n, t0 + 18 * MIN);
        assert_eq!(rt.state(&n.id, t0 + 18 * MIN), Some(NodeState::Good));
    }

    /// Fills the far bucket (ids 0x80..) with eight nodes at t0 and splits once.
    fn full_far_bucket(t0: Instant) -> RoutingTable {
        let mut rt = RoutingTable::new(own(), RoutingConfig::default(), t0);
        for i in 0..8 {
            rt.on_response(node(id_first(0x80, i), i.into()), t0);
        }
        rt.on_response(node(id_first(0x01, 0), 99), t0); // forces the split
        rt
    }

    #[test]
    fn full_bucket_of_good_nodes_pings_nobody() {
        let t0 = Instant::now();
        let mut rt = full_far_bucket(t0);
        let newcomer = node(id_first(0x90, 0), 100);
        assert_eq!(rt.on_response(newcomer, t0 + MIN), Insertion::Cached);
        assert_eq!(rt.poll_ping(), None);
        assert!(!rt.wants(&id_first(0x91, 0), t0 + MIN));
    }

    #[test]
    fn questionable_node_is_pinged_before_eviction() {
        let t0 = Instant::now();
        let mut rt = full_far_bucket(t0);
        // Keep all but node 3 fresh; at t0+16 min node 3 is the only questionable one.
        let t1 = t0 + 16 * MIN;
        for i in (0..8).filter(|&i| i != 3) {
            rt.on_response(node(id_first(0x80, i), i.into()), t0 + 10 * MIN);
        }
        assert!(rt.wants(&id_first(0x91, 0), t1));
        let newcomer = node(id_first(0x90, 0), 100);
        assert_eq!(rt.on_response(newcomer, t1), Insertion::Cached);
        let pinged = rt.poll_ping().expect("questionable node pinged");
        assert_eq!(pinged.id, id_first(0x80, 3));
        assert_eq!(rt.poll_ping(), None, "one eviction ping at a time");
        // Another newcomer does not ping again while the first ping is out.
        rt.on_response(node(id_first(0x90, 1), 101), t1);
        assert_eq!(rt.poll_ping(), None);
        // First failure: not bad yet (max_failures 2), so it is pinged again.
        assert_eq!(rt.on_failure(&pinged.id, t1), Some(NodeState::Questionable));
        assert_eq!(rt.poll_ping().map(|n| n.id), Some(pinged.id));
        // Second failure: bad, replaced by the most recent replacement.
        rt.on_failure(&pinged.id, t1);
        assert!(!rt.contains(&pinged.id));
        assert!(rt.contains(&id_first(0x90, 1)));
        assert!(!rt.contains(&id_first(0x90, 0)));
        assert_eq!(rt.bucket_sizes()[0], (8, 1));
    }

    #[test]
    fn questionable_node_that_answers_stays() {
        let t0 = Instant::now();
        let mut rt = full_far_bucket(t0);
        let t1 = t0 + 16 * MIN; // everyone questionable now
        rt.on_response(node(id_first(0x90, 0), 100), t1);
        let first = rt.poll_ping().unwrap();
        // It answers: it stays, and the next least recently seen one is pinged.
        assert_eq!(rt.on_response(first, t1), Insertion::Updated);
        let second = rt.poll_ping().unwrap();
        assert_ne!(second.id, first.id);
        assert_eq!(rt.state(&first.id, t1), Some(NodeState::Good));
        rt.on_failure(&second.id, t1);
        rt.on_failure(&second.id, t1);
        assert!(rt.contains(&id_first(0x90, 0)));
        assert!(rt.contains(&first.id));
    }

    #[test]
    fn bad_node_is_replaced_directly_by_a_newcomer() {
        let t0 = Instant::now();
        let mut rt = full_far_bucket(t0);
        let victim = id_first(0x80, 5);
        rt.on_failure(&victim, t0);
        rt.on_failure(&victim, t0);
        let newcomer = node(id_first(0x90, 0), 100);
        assert_eq!(
            rt.on_response(newcomer, t0),
            Insertion::Replaced(node(victim, 5))
        );
    }

    #[test]
    fn id_at_new_address_does_not_hijack_a_live_slot() {
        let t0 = Instant::now();
        let mut rt = RoutingTable::new(own(), RoutingConfig::default(), t0);
        let n = node(id_first(0x80, 1), 1);
        rt.on_response(n, t0);
        assert_eq!(rt.on_response(node(n.id, 2), t0), Insertion::Rejected);
        assert_eq!(rt.closest(&n.id, 1, t0), vec![n]);
    }

    #[test]
    fn unverified_nodes_start_questionable_and_never_evict() {
        let t0 = Instant::now();
        let mut rt = full_far_bucket(t0);
        assert_eq!(
            rt.insert_unverified(node(id_first(0x90, 0), 100), t0),
            Insertion::Rejected
        );
        let near = node(id_first(0x02, 0), 101);
        assert_eq!(rt.insert_unverified(near, t0), Insertion::Added);
        assert_eq!(rt.state(&near.id, t0), Some(NodeState::Questionable));
    }

    #[test]
    fn closest_orders_by_distance() {
        let t0 = Instant::now();
        let mut rt = RoutingTable::new(own(), RoutingConfig::default(), t0);
        for (i, first) in [0x10u8, 0x20, 0x30, 0x80, 0xf0].into_iter().enumerate() {
            rt.on_response(node(id_first(first, 0), i as u16), t0);
        }
        let got: Vec<u8> = rt
            .closest(&id_first(0x31, 0), 3, t0)
            .iter()
            .map(|n| n.id.0[0])
            .collect();
        assert_eq!(got, vec![0x30, 0x20, 0x10]);
    }

    #[test]
    fn stale_buckets_are_refreshed_with_targets_in_range() {
        use rand::SeedableRng;
        let t0 = Instant::now();
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        let mut rt = full_far_bucket(t0);
        assert!(rt.refresh_targets(t0 + 14 * MIN, &mut rng).is_empty());
        assert_eq!(rt.next_refresh(), Some(t0 + 15 * MIN));
        let targets = rt.refresh_targets(t0 + 15 * MIN, &mut rng);
        assert_eq!(targets.len(), 2);
        assert_eq!(own().distance(&targets[0]).leading_zeros(), 0);
        assert!(own().distance(&targets[1]).leading_zeros() >= 1);
        assert!(rt.refresh_targets(t0 + 16 * MIN, &mut rng).is_empty());
        assert_eq!(rt.next_refresh(), Some(t0 + 30 * MIN));
    }
}
