//! Iterative lookups (`find_node` and `get_peers`), sans-I/O.
//!
//! A [`Lookup`] keeps candidates sorted by distance to the target. It hands out
//! the closest not-yet-queried candidate among the `k` closest live ones while
//! fewer than `alpha` queries are in flight ([`Lookup::next_query`]), learns
//! closer nodes, peers and tokens from responses, and is done when the `k`
//! closest candidates that did not fail have all answered. Addresses without a
//! known id (bootstrap routers) are queried first.
//!
//! A query that is slow to answer can be marked stalled ([`Lookup::on_stall`]):
//! it stops counting against `alpha`, so the lookup moves on, but its late
//! answer is still used.

use std::collections::HashSet;
use std::net::SocketAddr;

use crate::compact::NodeInfo;
use crate::node_id::{Distance, NodeId};

/// Lookup parameters.
#[derive(Clone, Debug)]
pub struct LookupConfig {
    /// Queries in flight at once (BEP 5 / Kademlia: 3).
    pub alpha: usize,
    /// How many closest nodes must answer before the lookup ends (8).
    pub k: usize,
    /// Most candidates remembered; the farthest unqueried ones are forgotten first.
    pub max_candidates: usize,
    /// Most distinct peers collected by one `get_peers` lookup.
    pub max_peers: usize,
}

impl Default for LookupConfig {
    fn default() -> Self {
        Self {
            alpha: 3,
            k: 8,
            max_candidates: 64,
            max_peers: 2000,
        }
    }
}

/// What a lookup looks for.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash)]
pub enum LookupKind {
    /// `find_node`: the closest nodes to the target.
    FindNode,
    /// `get_peers`: peers for the target info-hash, and tokens to announce with.
    GetPeers,
}

/// Counters of one lookup.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct LookupStats {
    /// Queries sent.
    pub queries: usize,
    /// Answers received.
    pub responses: usize,
    /// Queries that timed out or were answered with an error.
    pub failures: usize,
    /// Distinct peers found.
    pub peers: usize,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum State {
    Fresh,
    InFlight,
    Stalled,
    Responded,
    Failed,
}

#[derive(Clone, Debug)]
struct Candidate {
    node: NodeInfo,
    distance: Distance,
    state: State,
    token: Option<Vec<u8>>,
}

#[derive(Clone, Debug)]
struct Router {
    addr: SocketAddr,
    state: State,
}

/// One node to query next.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct QueryTarget {
    /// Where to send the query.
    pub addr: SocketAddr,
    /// The node's id, unless it is a bootstrap address.
    pub id: Option<NodeId>,
}

/// An iterative lookup toward one target (sans-I/O; the caller sends the queries).
#[derive(Clone, Debug)]
pub struct Lookup {
    target: NodeId,
    kind: LookupKind,
    config: LookupConfig,
    candidates: Vec<Candidate>,
    routers: Vec<Router>,
    in_flight: usize,
    peers: HashSet<SocketAddr>,
    stats: LookupStats,
}

impl Lookup {
    /// A lookup for `target` starting from known nodes and from bootstrap addresses.
    pub fn new(
        target: NodeId,
        kind: LookupKind,
        config: LookupConfig,
        seeds: impl IntoIterator<Item = NodeInfo>,
        routers: impl IntoIterator<Item = SocketAddr>,
    ) -> Self {
        let mut lookup = Self {
            target,
            kind,
            config,
            candidates: Vec::new(),
            routers: Vec::new(),
            in_flight: 0,
            peers: HashSet::new(),
            stats: LookupStats::default(),
        };
        for node in seeds {
            lookup.add_candidate(node);
        }
        for addr in routers {
            let known = lookup.candidates.iter().any(|c| c.node.addr == addr)
                || lookup.routers.iter().any(|r| r.addr == addr);
            if !known && lookup.routers.len() < lookup.config.max_candidates {
                lookup.routers.push(Router {
                    addr,
                    state: State::Fresh,
                });
            }
        }
        lookup
    }

    /// The id sought.
    pub fn target(&self) -> NodeId {
        self.target
    }

    /// `find_node` or `get_peers`.
    pub fn kind(&self) -> LookupKind {
        self.kind
    }

    /// The counters so far.
    pub fn stats(&self) -> LookupStats {
        self.stats
    }

    /// Queries sent and not yet answered, failed or stalled.
    pub fn in_flight(&self) -> usize {
        self.in_flight
    }

    fn add_candidate(&mut self, node: NodeInfo) {
        if node.addr.port() == 0 || node.addr.ip().is_unspecified() {
            return;
        }
        if self
            .candidates
            .iter()
            .any(|c| c.node.id == node.id || c.node.addr == node.addr)
        {
            return;
        }
        let distance = self.target.distance(&node.id);
        let at = self.candidates.partition_point(|c| c.distance < distance);
        self.candidates.insert(
            at,
            Candidate {
                node,
                distance,
                state: State::Fresh,
                token: None,
            },
        );
        while self.candidates.len() > self.config.max_candidates {
            match self
                .candidates
                .iter()
                .rposition(|c| c.state == State::Fresh)
            {
                Some(i) => {
                    self.candidates.remove(i);
                }
                None => break,
            }
        }
    }

    /// The next node to query, if a slot is free and one is worth asking.
    /// The caller must send the query and report back with `on_response`,
    /// `on_failure` or `on_stall`.
    pub fn next_query(&mut self) -> Option<QueryTarget> {
        if self.in_flight >= self.config.alpha {
            return None;
        }
        if let Some(r) = self.routers.iter_mut().find(|r| r.state == State::Fresh) {
            r.state = State::InFlight;
            self.in_flight += 1;
            self.stats.queries += 1;
            return Some(QueryTarget {
                addr: r.addr,
                id: None,
            });
        }
        let k = self.config.k;
        let c = self
            .candidates
            .iter_mut()
            .filter(|c| c.state != State::Failed)
            .take(k)
            .find(|c| c.state == State::Fresh)?;
        c.state = State::InFlight;
        self.in_flight += 1;
        self.stats.queries += 1;
        Some(QueryTarget {
            addr: c.node.addr,
            id: Some(c.node.id),
        })
    }

    /// Whether the k closest live candidates have all answered (and no
    /// bootstrap address is still being asked).
    pub fn is_done(&self) -> bool {
        if self
            .routers
            .iter()
            .any(|r| matches!(r.state, State::Fresh | State::InFlight | State::Stalled))
        {
            return false;
        }
        self.candidates
            .iter()
            .filter(|c| c.state != State::Failed)
            .take(self.config.k)
            .all(|c| c.state == State::Responded)
    }

    fn settle(&mut self, addr: SocketAddr, to: State) -> bool {
        let in_flight = &mut self.in_flight;
        let mut hit = |state: &mut State| match *state {
            State::InFlight => {
                *in_flight = in_flight.saturating_sub(1);
                *state = to;
                true
            }
            State::Stalled if to != State::Stalled => {
                *state = to;
                true
            }
            _ => false,
        };
        if let Some(c) = self.candidates.iter_mut().find(|c| c.node.addr == addr) {
            if hit(&mut c.state) {
                return true;
            }
        }
        if let Some(r) = self.routers.iter_mut().find(|r| r.addr == addr) {
            if hit(&mut r.state) {
                return true;
            }
        }
        false
    }

    /// `from` (id `id`) answered: learns its nodes, peers and token.
    /// Returns the peers not seen before in this lookup.
    pub fn on_response(
        &mut self,
        from: SocketAddr,
        id: NodeId,
        nodes: &[NodeInfo],
        values: &[SocketAddr],
        token: Option<&[u8]>,
    ) -> Vec<SocketAddr> {
        if !self.settle(from, State::Responded) {
            return Vec::new();
        }
        self.stats.responses += 1;
        // A bootstrap address (or a node that changed id) joins the candidates
        // under the id it gave, already answered.
        let known = self
            .candidates
            .iter()
            .position(|c| c.node.addr == from && c.node.id == id);
        let idx = match known {
            Some(i) => Some(i),
            None => {
                if let Some(i) = self.candidates.iter().position(|c| c.node.addr == from) {
                    self.candidates.remove(i);
                }
                self.add_candidate(NodeInfo::new(id, from));
                self.candidates
                    .iter()
                    .position(|c| c.node.addr == from && c.node.id == id)
            }
        };
        if let Some(c) = idx.and_then(|i| self.candidates.get_mut(i)) {
            c.state = State::Responded;
            c.token = token.map(<[u8]>::to_vec);
        }
        for node in nodes {
            self.add_candidate(*node);
        }
        let mut fresh = Vec::new();
        if self.kind == LookupKind::GetPeers {
            for p in values {
                if p.port() == 0 || p.ip().is_unspecified() {
                    continue;
                }
                if self.peers.len() >= self.config.max_peers {
                    break;
                }
                if self.peers.insert(*p) {
                    fresh.push(*p);
                }
            }
            self.stats.peers = self.peers.len();
        }
        fresh
    }

    /// The query to `from` timed out or was answered with an error.
    pub fn on_failure(&mut self, from: SocketAddr) {
        if self.settle(from, State::Failed) {
            self.stats.failures += 1;
        }
    }

    /// The query to `from` is slow: stop counting it against `alpha`.
    pub fn on_stall(&mut self, from: SocketAddr) {
        self.settle(from, State::Stalled);
    }

    /// Every distinct peer found so far.
    pub fn peers(&self) -> Vec<SocketAddr> {
        self.peers.iter().copied().collect()
    }

    /// Up to `n` closest nodes that answered, closest first.
    pub fn closest_responded(&self, n: usize) -> Vec<NodeInfo> {
        self.candidates
            .iter()
            .filter(|c| c.state == State::Responded)
            .take(n)
            .map(|c| c.node)
            .collect()
    }

    /// Up to `n` closest nodes that answered with a token, and their tokens
    /// (whom to send `announce_peer` to).
    pub fn closest_with_tokens(&self, n: usize) -> Vec<(NodeInfo, Vec<u8>)> {
        self.candidates
            .iter()
            .filter(|c| c.state == State::Responded)
            .filter_map(|c| c.token.clone().map(|t| (c.node, t)))
            .take(n)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(first: u8) -> NodeId {
        let mut b = [0u8; 20];
        b[0] = first;
        NodeId(b)
    }

    fn node(first: u8) -> NodeInfo {
        NodeInfo::new(
            id(first),
            SocketAddr::from(([127, 0, 0, 1], 1000 + u16::from(first))),
        )
    }

    fn config() -> LookupConfig {
        LookupConfig {
            k: 2,
            ..LookupConfig::default()
        }
    }

    #[test]
    fn at_most_alpha_in_flight_closest_first() {
        let seeds = [node(0x40), node(0x10), node(0x80), node(0x20), node(0xf0)];
        let mut l = Lookup::new(
            id(0),
            LookupKind::FindNode,
            LookupConfig::default(),
            seeds,
            [],
        );
        let got: Vec<_> = std::iter::from_fn(|| l.next_query()).collect();
        assert_eq!(
            got.iter().map(|q| q.id.unwrap().0[0]).collect::<Vec<_>>(),
            vec![0x10, 0x20, 0x40]
        );
        assert_eq!(l.in_flight(), 3);
        assert!(!l.is_done());
    }

    #[test]
    fn converges_and_ends_when_k_closest_answered() {
        let mut l = Lookup::new(
            id(0),
            LookupKind::FindNode,
            config(),
            [node(0x80), node(0x40)],
            [],
        );
        let a = l.next_query().unwrap();
        let b = l.next_query().unwrap();
        assert_eq!(l.next_query(), None, "only the k=2 closest are asked");
        // 0x40 answers with two closer nodes.
        l.on_response(a.addr, id(0x40), &[node(0x08), node(0x04)], &[], None);
        let c = l.next_query().unwrap();
        assert_eq!(c.id, Some(id(0x04)));
        let d = l.next_query().unwrap();
        assert_eq!(d.id, Some(id(0x08)));
        assert!(!l.is_done());
        l.on_failure(b.addr);
        l.on_response(c.addr, id(0x04), &[], &[], None);
        assert!(!l.is_done());
        l.on_response(d.addr, id(0x08), &[], &[], None);
        assert!(l.is_done());
        assert_eq!(
            l.closest_responded(8)
                .iter()
                .map(|n| n.id.0[0])
                .collect::<Vec<_>>(),
            vec![0x04, 0x08, 0x40]
        );
        assert_eq!(
            l.stats(),
            LookupStats {
                queries: 4,
                responses: 3,
                failures: 1,
                peers: 0
            }
        );
    }

    #[test]
    fn failed_nodes_make_room_for_farther_ones() {
        let mut l = Lookup::new(
            id(0),
            LookupKind::FindNode,
            config(),
            [node(0x01), node(0x02), node(0x03)],
            [],
        );
        let a = l.next_query().unwrap();
        let b = l.next_query().unwrap();
        assert_eq!(l.next_query(), None);
        l.on_failure(a.addr);
        assert_eq!(l.next_query().unwrap().id, Some(id(0x03)));
        l.on_failure(b.addr);
        assert!(!l.is_done());
    }

    #[test]
    fn stalled_queries_free_a_slot_and_late_answers_count() {
        let mut l = Lookup::new(
            id(0),
            LookupKind::FindNode,
            LookupConfig {
                alpha: 1,
                ..config()
            },
            [node(0x01), node(0x02)],
            [],
        );
        let a = l.next_query().unwrap();
        assert_eq!(l.next_query(), None);
        l.on_stall(a.addr);
        let b = l.next_query().unwrap();
        assert_eq!(b.id, Some(id(0x02)));
        l.on_response(b.addr, id(0x02), &[], &[], None);
        assert!(!l.is_done(), "the stalled closest node may still answer");
        l.on_response(a.addr, id(0x01), &[], &[], None);
        assert!(l.is_done());
        assert_eq!(l.in_flight(), 0);
    }

    #[test]
    fn routers_go_first_and_join_under_their_id() {
        let router: SocketAddr = "127.0.0.9:6881".parse().unwrap();
        let mut l = Lookup::new(id(0), LookupKind::GetPeers, config(), [], [router]);
        assert!(!l.is_done());
        let q = l.next_query().unwrap();
        assert_eq!(
            q,
            QueryTarget {
                addr: router,
                id: None
            }
        );
        assert_eq!(l.next_query(), None);
        let peer: SocketAddr = "127.0.0.5:5000".parse().unwrap();
        let fresh = l.on_response(router, id(0x70), &[node(0x10)], &[peer, peer], Some(b"tok"));
        assert_eq!(fresh, vec![peer]);
        assert_eq!(l.next_query().unwrap().id, Some(id(0x10)));
        l.on_response(node(0x10).addr, id(0x10), &[], &[peer], Some(b"t2"));
        assert!(l.is_done());
        assert_eq!(l.peers(), vec![peer]);
        assert_eq!(l.stats().peers, 1);
        let tokens = l.closest_with_tokens(8);
        assert_eq!(tokens[0], (node(0x10), b"t2".to_vec()));
        assert_eq!(
            tokens[1],
            (NodeInfo::new(id(0x70), router), b"tok".to_vec())
        );
    }

    #[test]
    fn unsolicited_answers_are_ignored() {
        let mut l = Lookup::new(id(0), LookupKind::GetPeers, config(), [node(0x01)], []);
        let stranger: SocketAddr = "127.0.0.77:1".parse().unwrap();
        let p: SocketAddr = "127.0.0.5:5000".parse().unwrap();
        assert!(l
            .on_response(stranger, id(0x02), &[node(0x03)], &[p], None)
            .is_empty());
        // Answers from a node we have not queried yet are ignored too.
        assert!(l
            .on_response(node(0x01).addr, id(0x01), &[], &[p], None)
            .is_empty());
        assert_eq!(l.stats().responses, 0);
    }

    #[test]
    fn candidate_list_is_bounded() {
        let mut l = Lookup::new(
            id(0),
            LookupKind::FindNode,
            LookupConfig {
                max_candidates: 10,
                ..config()
            },
            [node(0xff)],
            [],
        );
        let q = l.next_query().unwrap();
        let many: Vec<NodeInfo> = (1..=200u8).map(node).collect();
        l.on_response(q.addr, id(0xff), &many, &[], None);
        assert!(l.candidates.len() <= 10);
        // The kept ones are the closest.
        assert_eq!(l.next_query().unwrap().id, Some(id(0x01)));
    }

    #[test]
    fn bogus_addresses_are_not_candidates() {
        let zero_port = NodeInfo::new(id(1), "127.0.0.1:0".parse().unwrap());
        let unspecified = NodeInfo::new(id(2), "0.0.0.0:80".parse().unwrap());
        let mut l = Lookup::new(
            id(0),
            LookupKind::FindNode,
            config(),
            [zero_port, unspecified],
            [],
        );
        assert_eq!(l.next_query(), None);
        assert!(l.is_done());
    }
}
