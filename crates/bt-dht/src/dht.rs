//! The sans-I/O DHT: routing table, lookups, tokens, peer store and rate limits
//! behind one state machine that takes packets and time and gives packets and events.
//!
//! Nothing here reads the clock, touches a socket or spawns a task: the caller
//! passes `now` to every method, feeds datagrams to [`Dht::handle_packet`],
//! calls [`Dht::handle_timeout`] when [`Dht::poll_timeout`] says, and sends what
//! [`Dht::poll_transmit`] gives. Commands ([`Dht::get_peers`], [`Dht::announce`]...)
//! return a [`RequestId`] that the matching [`Event`]s carry.
//!
//! Invariants:
//! - every outbound query has one entry in `pending`, keyed by a transaction id
//!   unique among pending ones; an answer is matched by transaction id **and**
//!   source address, and removes the entry;
//! - a lookup's in-flight queries are exactly its `pending` entries that are not stalled;
//! - no datagram longer than [`MAX_PACKET_OUT_LEN`] is queued.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bt_meta::InfoHash;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::compact::NodeInfo;
use crate::error::Error;
use crate::krpc::{
    Body, ErrorCode, ErrorMessage, KrpcMessage, Query, Response, TransactionId, MAX_PACKET_OUT_LEN,
};
use crate::lookup::{Lookup, LookupConfig, LookupKind, LookupStats};
use crate::node_id::NodeId;
use crate::peer_store::{PeerStore, PeerStoreConfig};
use crate::rate_limit::{RateLimitConfig, RateLimiter};
use crate::routing::{NodeState, RoutingConfig, RoutingTable};
use crate::tokens::Tokens;

/// Datagrams queued for sending beyond which new ones are dropped.
const MAX_QUEUED_TRANSMITS: usize = 4096;
/// How often expired peers and idle rate-limit entries are swept.
const MAINTENANCE_EVERY: Duration = Duration::from_secs(60);

/// Everything the state machine can be tuned with. `Default` is BEP 5 behaviour.
#[derive(Clone, Debug)]
pub struct DhtConfig {
    /// Our node id; random when `None`.
    pub node_id: Option<NodeId>,
    /// Seed for every random choice (ids, transaction ids, secrets); from the OS when `None`.
    pub seed: Option<u64>,
    /// Routing table parameters.
    pub routing: RoutingConfig,
    /// Lookup parameters.
    pub lookup: LookupConfig,
    /// Peer store limits.
    pub peer_store: PeerStoreConfig,
    /// Inbound query rate limits.
    pub rate_limit: RateLimitConfig,
    /// A query unanswered for this long has failed.
    pub query_timeout: Duration,
    /// A lookup query unanswered for this long stops holding one of the `alpha` slots.
    pub stall_after: Duration,
    /// Most queries awaiting an answer (eviction pings may exceed it by one per bucket).
    pub max_pending: usize,
    /// `v` sent in every message (client id and version), if any.
    pub version: Option<[u8; 4]>,
    /// Our UDP port, sent as `port` in announces that ask for the implied port (0 if unknown).
    pub local_port: u16,
    /// Whether IPv4 nodes can be reached (false: they are never queried).
    pub ipv4: bool,
    /// Whether IPv6 nodes can be reached (false: they are never queried).
    pub ipv6: bool,
}

impl Default for DhtConfig {
    fn default() -> Self {
        Self {
            node_id: None,
            seed: None,
            routing: RoutingConfig::default(),
            lookup: LookupConfig::default(),
            peer_store: PeerStoreConfig::default(),
            rate_limit: RateLimitConfig::default(),
            query_timeout: Duration::from_secs(5),
            stall_after: Duration::from_secs(1),
            max_pending: 512,
            version: Some(*b"bt\x00\x01"),
            local_port: 0,
            ipv4: true,
            ipv6: true,
        }
    }
}

/// Names one command; the events it causes carry it.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct RequestId(pub u64);

/// The port to announce.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum PeerPort {
    /// This TCP/uTP port.
    Port(u16),
    /// The UDP source port of the announce (`implied_port`, BEP 5).
    Implied,
}

/// What the state machine reports.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum Event {
    /// A `get_peers` or `announce` lookup found peers not reported before.
    PeersFound {
        /// The command.
        request: RequestId,
        /// The torrent.
        info_hash: InfoHash,
        /// The new peers.
        peers: Vec<SocketAddr>,
    },
    /// A lookup (bootstrap, find_node, get_peers, or the search part of an announce) ended.
    LookupDone {
        /// The command.
        request: RequestId,
        /// The id sought.
        target: NodeId,
        /// What was sought.
        kind: LookupKind,
        /// Queries, answers, failures, peers.
        stats: LookupStats,
        /// The closest nodes that answered, closest first (at most k).
        closest: Vec<NodeInfo>,
    },
    /// An announce's `announce_peer` queries have all been answered or failed.
    AnnounceDone {
        /// The command.
        request: RequestId,
        /// The torrent.
        info_hash: InfoHash,
        /// Nodes that acknowledged the announce.
        stored_on: usize,
        /// Nodes asked (the closest that gave a token, at most k).
        tried: usize,
    },
    /// A [`Dht::ping`] was answered (`id` is the node's id) or failed (`None`).
    PingDone {
        /// The command.
        request: RequestId,
        /// The node pinged.
        addr: SocketAddr,
        /// Its id, if it answered.
        id: Option<NodeId>,
    },
}

/// Counters since the state machine was made.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct Stats {
    /// Queries we sent.
    pub queries_sent: u64,
    /// Answers to our queries.
    pub responses_received: u64,
    /// Error replies to our queries.
    pub errors_received: u64,
    /// Our queries that timed out.
    pub timeouts: u64,
    /// Queries received (well-formed, known method).
    pub queries_received: u64,
    /// Queries (or malformed packets) dropped by the rate limits.
    pub rate_limited: u64,
    /// Packets that did not decode (including oversized ones).
    pub malformed: u64,
    /// Queries with an unknown method.
    pub unknown_methods: u64,
    /// Replies matching no pending query from that address.
    pub unmatched: u64,
    /// Datagrams not sent (queue full, too long, or a bogus address).
    pub dropped_outbound: u64,
}

#[derive(Clone, Copy, Debug)]
enum Purpose {
    Lookup(RequestId),
    Announce(RequestId),
    Ping(Option<RequestId>),
}

#[derive(Clone, Debug)]
struct Pending {
    addr: SocketAddr,
    id: Option<NodeId>,
    purpose: Purpose,
    sent_at: Instant,
    stalled: bool,
}

#[derive(Clone, Copy, Debug)]
enum Phase {
    Searching,
    Announcing {
        pending: usize,
        stored: usize,
        tried: usize,
    },
}

#[derive(Clone, Debug)]
struct ActiveLookup {
    lookup: Lookup,
    /// Events are reported (false for internal bucket refreshes).
    user: bool,
    announce: Option<PeerPort>,
    phase: Phase,
}

/// The DHT state machine. See the module docs.
#[derive(Debug)]
pub struct Dht {
    config: DhtConfig,
    id: NodeId,
    rng: StdRng,
    table: RoutingTable,
    tokens: Tokens,
    store: PeerStore,
    limiter: RateLimiter,
    pending: HashMap<TransactionId, Pending>,
    lookups: BTreeMap<RequestId, ActiveLookup>,
    transmits: VecDeque<(SocketAddr, Vec<u8>)>,
    events: VecDeque<Event>,
    next_request: u64,
    routers: Vec<SocketAddr>,
    next_maintenance: Instant,
    stats: Stats,
}

/// The address with an IPv4-mapped IPv6 IP turned into plain IPv4.
fn canonical(addr: SocketAddr) -> SocketAddr {
    SocketAddr::new(addr.ip().to_canonical(), addr.port())
}

fn same_family(a: &SocketAddr, b: &SocketAddr) -> bool {
    a.is_ipv4() == b.is_ipv4()
}

impl Dht {
    /// A fresh node with an empty routing table, as of `now`.
    pub fn new(config: DhtConfig, now: Instant) -> Self {
        let mut rng = match config.seed {
            Some(seed) => StdRng::seed_from_u64(seed),
            None => StdRng::from_entropy(),
        };
        let id = config.node_id.unwrap_or_else(|| NodeId::random(&mut rng));
        let tokens = Tokens::new(now, &mut rng);
        Self {
            table: RoutingTable::new(id, config.routing.clone(), now),
            store: PeerStore::new(config.peer_store.clone()),
            limiter: RateLimiter::new(config.rate_limit.clone(), now),
            tokens,
            id,
            rng,
            config,
            pending: HashMap::new(),
            lookups: BTreeMap::new(),
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            next_request: 0,
            routers: Vec::new(),
            next_maintenance: now + MAINTENANCE_EVERY,
            stats: Stats::default(),
        }
    }

    /// Our node id.
    pub fn id(&self) -> NodeId {
        self.id
    }

    /// The configuration in force.
    pub fn config(&self) -> &DhtConfig {
        &self.config
    }

    /// The routing table (read-only).
    pub fn routing_table(&self) -> &RoutingTable {
        &self.table
    }

    /// The peers announced to us (read-only).
    pub fn peer_store(&self) -> &PeerStore {
        &self.store
    }

    /// Counters since start.
    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// Queries awaiting an answer.
    pub fn pending_queries(&self) -> usize {
        self.pending.len()
    }

    /// Lookups and announces still running.
    pub fn active_lookups(&self) -> usize {
        self.lookups.len()
    }

    /// The nodes worth saving for the next start (good ones first, bad ones left out).
    pub fn routing_table_snapshot(&self, now: Instant) -> Vec<NodeInfo> {
        let mut nodes = self.table.nodes(now);
        nodes.retain(|(_, s)| *s != NodeState::Bad);
        nodes.sort_by_key(|(_, s)| *s != NodeState::Good);
        nodes.into_iter().map(|(n, _)| n).collect()
    }

    /// Puts saved nodes in the table (questionable until they answer, only where
    /// buckets have room). Returns how many were added.
    pub fn load_nodes(&mut self, now: Instant, nodes: impl IntoIterator<Item = NodeInfo>) -> usize {
        let mut added = 0;
        for node in nodes {
            let node = NodeInfo::new(node.id, canonical(node.addr));
            if self.reachable(&node.addr)
                && self.table.insert_unverified(node, now) == crate::routing::Insertion::Added
            {
                added += 1;
            }
        }
        added
    }

    fn reachable(&self, addr: &SocketAddr) -> bool {
        addr.port() != 0
            && !addr.ip().is_unspecified()
            && !addr.ip().is_multicast()
            && if addr.is_ipv4() {
                self.config.ipv4
            } else {
                self.config.ipv6
            }
    }

    fn next_request_id(&mut self) -> RequestId {
        self.next_request += 1;
        RequestId(self.next_request)
    }

    /// Joins the network: a `find_node` lookup for our own id through `routers`
    /// (any reachable nodes; they are also used to seed later lookups while the
    /// table is thin) and the nodes already in the table. Ends with [`Event::LookupDone`].
    pub fn bootstrap(&mut self, now: Instant, routers: &[SocketAddr]) -> RequestId {
        let mut routers: Vec<SocketAddr> = routers
            .iter()
            .map(|a| canonical(*a))
            .filter(|a| self.reachable(a))
            .collect();
        routers.dedup();
        self.routers = routers.clone();
        let target = self.id;
        self.start_lookup(now, target, LookupKind::FindNode, None, true, routers)
    }

    /// Finds peers for `info_hash`: [`Event::PeersFound`] as they come, then [`Event::LookupDone`].
    pub fn get_peers(&mut self, now: Instant, info_hash: InfoHash) -> RequestId {
        let routers = self.thin_table_routers();
        self.start_lookup(
            now,
            info_hash.into(),
            LookupKind::GetPeers,
            None,
            true,
            routers,
        )
    }

    /// Finds the closest nodes to `target` ([`Event::LookupDone`]).
    pub fn find_node(&mut self, now: Instant, target: NodeId) -> RequestId {
        let routers = self.thin_table_routers();
        self.start_lookup(now, target, LookupKind::FindNode, None, true, routers)
    }

    /// Announces that we have `info_hash` on `port`: a `get_peers` lookup (with
    /// its events), then `announce_peer` to the closest nodes that gave a token,
    /// ending with [`Event::AnnounceDone`]. Repeat it every 15 to 30 minutes:
    /// stored announces expire.
    pub fn announce(&mut self, now: Instant, info_hash: InfoHash, port: PeerPort) -> RequestId {
        let routers = self.thin_table_routers();
        self.start_lookup(
            now,
            info_hash.into(),
            LookupKind::GetPeers,
            Some(port),
            true,
            routers,
        )
    }

    /// Pings `addr`; [`Event::PingDone`] tells whether it answered. A node that
    /// answers goes in the routing table.
    pub fn ping(&mut self, now: Instant, addr: SocketAddr) -> RequestId {
        let request = self.next_request_id();
        let addr = canonical(addr);
        let query = Query::Ping { id: self.id };
        if !self.reachable(&addr)
            || !self.send_query(now, addr, None, query, Purpose::Ping(Some(request)), false)
        {
            self.events.push_back(Event::PingDone {
                request,
                addr,
                id: None,
            });
        }
        request
    }

    /// A node worth knowing (from a peer's `port` message, BEP 5): pinged, and put
    /// in the routing table if it answers. No event.
    pub fn add_node(&mut self, now: Instant, addr: SocketAddr) {
        let addr = canonical(addr);
        if self.reachable(&addr) && !self.pinging(&addr) {
            let query = Query::Ping { id: self.id };
            self.send_query(now, addr, None, query, Purpose::Ping(None), false);
        }
    }

    /// Stops a lookup or announce; its outstanding queries are still matched
    /// (and feed the routing table) but report nothing.
    pub fn cancel(&mut self, request: RequestId) {
        self.lookups.remove(&request);
    }

    fn thin_table_routers(&self) -> Vec<SocketAddr> {
        if self.table.len() < self.config.lookup.k {
            self.routers.clone()
        } else {
            Vec::new()
        }
    }

    fn start_lookup(
        &mut self,
        now: Instant,
        target: NodeId,
        kind: LookupKind,
        announce: Option<PeerPort>,
        user: bool,
        routers: Vec<SocketAddr>,
    ) -> RequestId {
        let request = self.next_request_id();
        let seeds: Vec<NodeInfo> = self
            .table
            .closest(&target, 2 * self.config.lookup.k, now)
            .into_iter()
            .filter(|n| self.reachable(&n.addr))
            .collect();
        let lookup = Lookup::new(target, kind, self.config.lookup.clone(), seeds, routers);
        self.lookups.insert(
            request,
            ActiveLookup {
                lookup,
                user,
                announce,
                phase: Phase::Searching,
            },
        );
        self.drive_lookup(request, now);
        request
    }

    /// Sends the queries a lookup wants, and finishes it if it is done.
    fn drive_lookup(&mut self, request: RequestId, now: Instant) {
        loop {
            if self.pending.len() >= self.config.max_pending {
                return;
            }
            let Some(active) = self.lookups.get_mut(&request) else {
                return;
            };
            if !matches!(active.phase, Phase::Searching) {
                return;
            }
            let Some(next) = active.lookup.next_query() else {
                break;
            };
            let target = active.lookup.target();
            let query = match active.lookup.kind() {
                LookupKind::FindNode => Query::FindNode {
                    id: self.id,
                    target,
                },
                LookupKind::GetPeers => Query::GetPeers {
                    id: self.id,
                    info_hash: target.into(),
                },
            };
            if !self.send_query(
                now,
                next.addr,
                next.id,
                query,
                Purpose::Lookup(request),
                false,
            ) {
                if let Some(active) = self.lookups.get_mut(&request) {
                    active.lookup.on_failure(next.addr);
                }
            }
        }
        let done = match self.lookups.get(&request) {
            Some(a) => matches!(a.phase, Phase::Searching) && a.lookup.is_done(),
            None => false,
        };
        if done {
            self.finish_lookup(request, now);
        }
    }

    fn drive_all(&mut self, now: Instant) {
        let searching: Vec<RequestId> = self
            .lookups
            .iter()
            .filter(|(_, a)| matches!(a.phase, Phase::Searching))
            .map(|(r, _)| *r)
            .collect();
        for r in searching {
            self.drive_lookup(r, now);
        }
    }

    fn finish_lookup(&mut self, request: RequestId, now: Instant) {
        let Some(active) = self.lookups.get_mut(&request) else {
            return;
        };
        let k = self.config.lookup.k;
        let target = active.lookup.target();
        if active.user {
            self.events.push_back(Event::LookupDone {
                request,
                target,
                kind: active.lookup.kind(),
                stats: active.lookup.stats(),
                closest: active.lookup.closest_responded(k),
            });
        }
        let Some(port) = active.announce else {
            self.lookups.remove(&request);
            return;
        };
        let targets = active.lookup.closest_with_tokens(k);
        let tried = targets.len();
        active.phase = Phase::Announcing {
            pending: tried,
            stored: 0,
            tried,
        };
        let (port, implied_port) = match port {
            PeerPort::Port(p) => (p, false),
            PeerPort::Implied => (self.config.local_port, true),
        };
        for (node, token) in targets {
            let query = Query::AnnouncePeer {
                id: self.id,
                info_hash: target.into(),
                port,
                implied_port,
                token,
            };
            if !self.send_query(
                now,
                node.addr,
                Some(node.id),
                query,
                Purpose::Announce(request),
                true,
            ) {
                self.announce_settled(request, false);
            }
        }
        if tried == 0 {
            self.announce_settled_final(request);
        }
    }

    fn announce_settled(&mut self, request: RequestId, stored_ok: bool) {
        let Some(active) = self.lookups.get_mut(&request) else {
            return;
        };
        if let Phase::Announcing {
            pending, stored, ..
        } = &mut active.phase
        {
            *pending = pending.saturating_sub(1);
            if stored_ok {
                *stored += 1;
            }
            if *pending == 0 {
                self.announce_settled_final(request);
            }
        }
    }

    fn announce_settled_final(&mut self, request: RequestId) {
        if let Some(active) = self.lookups.remove(&request) {
            if let Phase::Announcing { stored, tried, .. } = active.phase {
                self.events.push_back(Event::AnnounceDone {
                    request,
                    info_hash: active.lookup.target().into(),
                    stored_on: stored,
                    tried,
                });
            }
        }
    }

    fn pinging(&self, addr: &SocketAddr) -> bool {
        self.pending
            .values()
            .any(|p| p.addr == *addr && matches!(p.purpose, Purpose::Ping(_)))
    }

    /// Queues a query; `force` lets it past `max_pending` (eviction pings and
    /// announces, which are bounded on their own). Returns false if not sent.
    fn send_query(
        &mut self,
        now: Instant,
        addr: SocketAddr,
        id: Option<NodeId>,
        query: Query,
        purpose: Purpose,
        force: bool,
    ) -> bool {
        if !force && self.pending.len() >= self.config.max_pending {
            return false;
        }
        if !self.reachable(&addr) {
            return false;
        }
        let mut tid = None;
        for _ in 0..16 {
            let candidate: [u8; 4] = self.rng.gen();
            let Some(t) = TransactionId::new(&candidate) else {
                continue;
            };
            if !self.pending.contains_key(&t) {
                tid = Some(t);
                break;
            }
        }
        let Some(tid) = tid else {
            return false;
        };
        let msg = self.message(tid, Body::Query(query));
        if !self.push_transmit(addr, msg.encode()) {
            return false;
        }
        self.stats.queries_sent += 1;
        self.pending.insert(
            tid,
            Pending {
                addr,
                id,
                purpose,
                sent_at: now,
                stalled: false,
            },
        );
        true
    }

    fn message(&self, transaction_id: TransactionId, body: Body) -> KrpcMessage {
        KrpcMessage {
            transaction_id,
            version: self.config.version.map(|v| v.to_vec()),
            read_only: false,
            body,
        }
    }

    fn push_transmit(&mut self, addr: SocketAddr, bytes: Vec<u8>) -> bool {
        if bytes.len() > MAX_PACKET_OUT_LEN
            || self.transmits.len() >= MAX_QUEUED_TRANSMITS
            || addr.port() == 0
            || addr.ip().is_unspecified()
        {
            self.stats.dropped_outbound += 1;
            return false;
        }
        self.transmits.push_back((addr, bytes));
        true
    }

    fn send_error(&mut self, to: SocketAddr, tid: TransactionId, code: ErrorCode, text: &str) {
        let msg = self.message(tid, Body::Error(ErrorMessage::new(code, text)));
        self.push_transmit(to, msg.encode());
    }

    /// Sends a response, halving `values` then `nodes` until it fits in a datagram.
    fn send_response(&mut self, to: SocketAddr, tid: TransactionId, mut r: Response) {
        loop {
            let bytes = self.message(tid, Body::Response(r.clone())).encode();
            if bytes.len() <= MAX_PACKET_OUT_LEN {
                self.push_transmit(to, bytes);
                return;
            }
            if !r.values.is_empty() {
                r.values.truncate(r.values.len() / 2);
            } else if !r.nodes.is_empty() {
                r.nodes.truncate(r.nodes.len() / 2);
            } else {
                self.stats.dropped_outbound += 1;
                return;
            }
        }
    }

    /// Feeds one datagram received from `from`.
    pub fn handle_packet(&mut self, now: Instant, from: SocketAddr, packet: &[u8]) {
        let from = canonical(from);
        self.tokens.rotate(now, &mut self.rng);
        match KrpcMessage::decode(packet) {
            Ok(msg) => match msg.body {
                Body::Query(q) => self.on_query(now, from, msg.transaction_id, msg.read_only, q),
                Body::Response(r) => {
                    self.on_response(now, from, msg.transaction_id, msg.read_only, r)
                }
                Body::Error(e) => self.on_error(now, from, msg.transaction_id, e),
            },
            Err(Error::UnknownMethod { transaction_id, .. }) => {
                self.stats.unknown_methods += 1;
                if self.limiter.allow(from.ip(), now) {
                    self.send_error(
                        from,
                        transaction_id,
                        ErrorCode::MethodUnknown,
                        "Method Unknown",
                    );
                } else {
                    self.stats.rate_limited += 1;
                }
            }
            Err(Error::Malformed {
                transaction_id: Some(tid),
                is_reply,
                ..
            }) => {
                self.stats.malformed += 1;
                if is_reply {
                    // A garbled answer to one of our queries counts as no answer.
                    if let Some(p) = self.take_pending(tid, from) {
                        self.query_failed(now, p);
                    }
                } else if self.limiter.allow(from.ip(), now) {
                    self.send_error(from, tid, ErrorCode::Protocol, "Protocol Error");
                } else {
                    self.stats.rate_limited += 1;
                }
            }
            Err(_) => self.stats.malformed += 1,
        }
        self.drive_all(now);
    }

    fn on_query(
        &mut self,
        now: Instant,
        from: SocketAddr,
        tid: TransactionId,
        read_only: bool,
        query: Query,
    ) {
        self.stats.queries_received += 1;
        if !self.limiter.allow(from.ip(), now) {
            self.stats.rate_limited += 1;
            return;
        }
        let sender = query.id();
        if sender == self.id {
            return;
        }
        let node = NodeInfo::new(sender, from);
        if !read_only
            && self.reachable(&from)
            && !self.table.on_query(node, now)
            && self.table.wants(&sender, now)
            && self.pending.len() < self.config.max_pending / 2
            && !self.pinging(&from)
        {
            // Verify the querier before it goes in the table.
            let ping = Query::Ping { id: self.id };
            self.send_query(now, from, Some(sender), ping, Purpose::Ping(None), false);
        }
        let k = self.config.lookup.k;
        let response = match query {
            Query::Ping { .. } => Response::id_only(self.id),
            Query::FindNode { target, .. } => Response {
                nodes: self.closest_for(&from, &target, k, now),
                ..Response::id_only(self.id)
            },
            Query::GetPeers { info_hash, .. } => {
                let values =
                    self.store
                        .peers(&info_hash, now, |p| same_family(p, &from), &mut self.rng);
                let nodes = if values.is_empty() {
                    self.closest_for(&from, &info_hash.into(), k, now)
                } else {
                    Vec::new()
                };
                Response {
                    id: self.id,
                    nodes,
                    values,
                    token: Some(self.tokens.token_for(from.ip())),
                }
            }
            Query::AnnouncePeer {
                info_hash,
                port,
                implied_port,
                token,
                ..
            } => {
                if !self.tokens.verify(from.ip(), &token) {
                    self.send_error(from, tid, ErrorCode::Protocol, "Bad Token");
                    return;
                }
                let port = if implied_port { from.port() } else { port };
                if port == 0 {
                    self.send_error(from, tid, ErrorCode::Protocol, "Invalid Port");
                    return;
                }
                self.store
                    .announce(info_hash, SocketAddr::new(from.ip(), port), now);
                Response::id_only(self.id)
            }
        };
        self.send_response(from, tid, response);
    }

    /// The `n` closest table nodes to `target` of the asker's family, without the asker.
    fn closest_for(
        &self,
        asker: &SocketAddr,
        target: &NodeId,
        n: usize,
        now: Instant,
    ) -> Vec<NodeInfo> {
        self.table
            .closest(target, 2 * n + 1, now)
            .into_iter()
            .filter(|node| node.addr != *asker && same_family(&node.addr, asker))
            .take(n)
            .collect()
    }

    fn on_response(
        &mut self,
        now: Instant,
        from: SocketAddr,
        tid: TransactionId,
        read_only: bool,
        mut r: Response,
    ) {
        let Some(p) = self.take_pending(tid, from) else {
            return;
        };
        self.stats.responses_received += 1;
        if r.id == self.id {
            self.query_failed(now, p);
            return;
        }
        if let Some(expected) = p.id {
            if expected != r.id {
                self.table.on_failure(&expected, now);
            }
        }
        if !read_only {
            self.table.on_response(NodeInfo::new(r.id, from), now);
        }
        self.send_table_pings(now);
        let own = self.id;
        r.nodes
            .retain(|n| n.id != own && n.addr != from && self.reachable(&n.addr));
        match p.purpose {
            Purpose::Lookup(request) => {
                if let Some(active) = self.lookups.get_mut(&request) {
                    let fresh = active.lookup.on_response(
                        from,
                        r.id,
                        &r.nodes,
                        &r.values,
                        r.token.as_deref(),
                    );
                    if active.user && !fresh.is_empty() {
                        self.events.push_back(Event::PeersFound {
                            request,
                            info_hash: active.lookup.target().into(),
                            peers: fresh,
                        });
                    }
                }
                self.drive_lookup(request, now);
            }
            Purpose::Announce(request) => self.announce_settled(request, true),
            Purpose::Ping(Some(request)) => self.events.push_back(Event::PingDone {
                request,
                addr: from,
                id: Some(r.id),
            }),
            Purpose::Ping(None) => {}
        }
    }

    /// Removes and returns the pending query `tid` if `from` is where it went.
    fn take_pending(&mut self, tid: TransactionId, from: SocketAddr) -> Option<Pending> {
        match self.pending.get(&tid) {
            Some(p) if p.addr == from => self.pending.remove(&tid),
            _ => {
                self.stats.unmatched += 1;
                None
            }
        }
    }

    fn on_error(&mut self, now: Instant, from: SocketAddr, tid: TransactionId, _e: ErrorMessage) {
        let Some(p) = self.take_pending(tid, from) else {
            return;
        };
        self.stats.errors_received += 1;
        // The node is alive but would not help: the query failed, the node is not penalized.
        self.settle_failed(now, p);
    }

    /// A query timed out (or got a garbled answer): the node is penalized.
    fn query_failed(&mut self, now: Instant, p: Pending) {
        if let Some(id) = p.id {
            self.table.on_failure(&id, now);
            self.send_table_pings(now);
        }
        self.settle_failed(now, p);
    }

    fn settle_failed(&mut self, now: Instant, p: Pending) {
        match p.purpose {
            Purpose::Lookup(request) => {
                if let Some(active) = self.lookups.get_mut(&request) {
                    active.lookup.on_failure(p.addr);
                }
                self.drive_lookup(request, now);
            }
            Purpose::Announce(request) => self.announce_settled(request, false),
            Purpose::Ping(Some(request)) => self.events.push_back(Event::PingDone {
                request,
                addr: p.addr,
                id: None,
            }),
            Purpose::Ping(None) => {}
        }
    }

    fn send_table_pings(&mut self, now: Instant) {
        while let Some(node) = self.table.poll_ping() {
            let query = Query::Ping { id: self.id };
            if !self.send_query(
                now,
                node.addr,
                Some(node.id),
                query,
                Purpose::Ping(None),
                true,
            ) {
                // Could not even queue it: count it as unanswered so the bucket moves on.
                self.table.on_failure(&node.id, now);
            }
        }
    }

    /// Expires queries, stalls slow lookup queries, rotates token secrets, sweeps
    /// the peer store and refreshes stale buckets. Call it when `poll_timeout` is due.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.tokens.rotate(now, &mut self.rng);
        let timeout = self.config.query_timeout;
        let mut expired: Vec<(Instant, TransactionId)> = self
            .pending
            .iter()
            .filter(|(_, p)| p.sent_at + timeout <= now)
            .map(|(t, p)| (p.sent_at, *t))
            .collect();
        expired.sort();
        for (_, tid) in expired {
            if let Some(p) = self.pending.remove(&tid) {
                self.stats.timeouts += 1;
                self.query_failed(now, p);
            }
        }
        let stall = self.config.stall_after;
        let mut stalls: Vec<(Instant, TransactionId)> = self
            .pending
            .iter()
            .filter(|(_, p)| {
                !p.stalled && matches!(p.purpose, Purpose::Lookup(_)) && p.sent_at + stall <= now
            })
            .map(|(t, p)| (p.sent_at, *t))
            .collect();
        stalls.sort();
        for (_, tid) in stalls {
            let Some(p) = self.pending.get_mut(&tid) else {
                continue;
            };
            p.stalled = true;
            let (addr, purpose) = (p.addr, p.purpose);
            if let Purpose::Lookup(request) = purpose {
                if let Some(active) = self.lookups.get_mut(&request) {
                    active.lookup.on_stall(addr);
                }
            }
        }
        if now >= self.next_maintenance {
            self.store.expire(now);
            self.limiter.prune(now);
            self.next_maintenance = now + MAINTENANCE_EVERY;
        }
        if self.table.next_refresh().is_some_and(|t| t <= now) {
            for target in self.table.refresh_targets(now, &mut self.rng) {
                let routers = self.thin_table_routers();
                self.start_lookup(now, target, LookupKind::FindNode, None, false, routers);
            }
        }
        self.drive_all(now);
    }

    /// When `handle_timeout` should next be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let timeout = self.config.query_timeout;
        let stall = self.config.stall_after;
        let queries = self.pending.values().map(|p| {
            if !p.stalled && matches!(p.purpose, Purpose::Lookup(_)) {
                p.sent_at + stall.min(timeout)
            } else {
                p.sent_at + timeout
            }
        });
        [
            Some(self.tokens.next_rotation()),
            Some(self.next_maintenance),
            self.table.next_refresh(),
        ]
        .into_iter()
        .flatten()
        .chain(queries)
        .min()
    }

    /// The next datagram to send, and where.
    pub fn poll_transmit(&mut self) -> Option<(SocketAddr, Vec<u8>)> {
        self.transmits.pop_front()
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::krpc::MAX_PACKET_IN_LEN;

    fn addr(last: u8, port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, last], port))
    }

    fn config(seed: u64) -> DhtConfig {
        DhtConfig {
            seed: Some(seed),
            ..DhtConfig::default()
        }
    }

    fn tid(b: &[u8]) -> TransactionId {
        TransactionId::new(b).unwrap()
    }

    fn query(t: &[u8], q: Query) -> Vec<u8> {
        KrpcMessage::query(tid(t), q).encode()
    }

    /// Every datagram queued, decoded.
    fn sent(dht: &mut Dht) -> Vec<(SocketAddr, KrpcMessage)> {
        std::iter::from_fn(|| dht.poll_transmit())
            .map(|(a, b)| {
                assert!(b.len() <= MAX_PACKET_OUT_LEN);
                (a, KrpcMessage::decode(&b).expect("we send valid krpc"))
            })
            .collect()
    }

    fn responses(dht: &mut Dht) -> Vec<(SocketAddr, KrpcMessage)> {
        sent(dht)
            .into_iter()
            .filter(|(_, m)| !matches!(m.body, Body::Query(_)))
            .collect()
    }

    fn error_code(msg: &KrpcMessage) -> Option<i64> {
        match &msg.body {
            Body::Error(e) => Some(e.code),
            _ => None,
        }
    }

    const PEER_ID: NodeId = NodeId([7; 20]);

    #[test]
    fn answers_ping_with_its_id_and_echoes_the_transaction() {
        let t0 = Instant::now();
        let mut dht = Dht::new(config(1), t0);
        dht.handle_packet(
            t0,
            addr(2, 1000),
            &query(b"xy", Query::Ping { id: PEER_ID }),
        );
        let out = responses(&mut dht);
        assert_eq!(out.len(), 1);
        let (to, msg) = &out[0];
        assert_eq!(*to, addr(2, 1000));
        assert_eq!(msg.transaction_id.as_bytes(), b"xy");
        assert_eq!(msg.version.as_deref(), Some(&b"bt\x00\x01"[..]));
        assert_eq!(msg.body, Body::Response(Response::id_only(dht.id())));
        assert_eq!(dht.stats().queries_received, 1);
    }

    #[test]
    fn unknown_querier_is_pinged_before_it_enters_the_table() {
        let t0 = Instant::now();
        let mut dht = Dht::new(config(1), t0);
        let from = addr(2, 1000);
        dht.handle_packet(t0, from, &query(b"xy", Query::Ping { id: PEER_ID }));
        let pings: Vec<_> = sent(&mut dht)
            .into_iter()
            .filter(|(_, m)| matches!(m.body, Body::Query(Query::Ping { .. })))
            .collect();
        assert_eq!(pings.len(), 1);
        assert!(dht.routing_table().is_empty());
        let answer = KrpcMessage::response(pings[0].1.transaction_id, Response::id_only(PEER_ID));
        dht.handle_packet(t0, from, &answer.encode());
        assert_eq!(
            dht.routing_table().state(&PEER_ID, t0),
            Some(NodeState::Good)
        );
    }

    #[test]
    fn unknown_method_gets_204_and_malformed_query_gets_203() {
        let t0 = Instant::now();
        let mut dht = Dht::new(config(1), t0);
        let from = addr(2, 1000);
        dht.handle_packet(
            t0,
            from,
            b"d1:ad2:id20:abcdefghij0123456789e1:q3:put1:t2:aa1:y1:qe",
        );
        dht.handle_packet(t0, from, b"d1:ad2:id3:abce1:q4:ping1:t2:bb1:y1:qe");
        dht.handle_packet(t0, from, b"d1:t2:cc1:y1:xe");
        let out = responses(&mut dht);
        let codes: Vec<_> = out
            .iter()
            .map(|(_, m)| (m.transaction_id.as_bytes().to_vec(), error_code(m)))
            .collect();
        assert_eq!(
            codes,
            vec![
                (b"aa".to_vec(), Some(204)),
                (b"bb".to_vec(), Some(203)),
                (b"cc".to_vec(), Some(203))
            ]
        );
    }

    #[test]
    fn unreadable_packets_and_bad_replies_are_dropped_silently() {
        let t0 = Instant::now();
        let mut dht = Dht::new(config(1), t0);
        let from = addr(2, 1000);
        for junk in [
            &b""[..],
            b"garbage",
            b"d1:y1:qe",                                        // no transaction id
            b"le",                                              // not a dictionary
            b"d1:rd2:id1:xe1:t2:aa1:y1:re",                     // malformed reply
            b"d1:eli201e1:xe1:t2:aa1:y1:ee",                    // error nobody asked for
            b"d1:rd2:id20:abcdefghij0123456789e1:t2:aa1:y1:re", // unmatched reply
        ] {
            dht.handle_packet(t0, from, junk);
        }
        dht.handle_packet(t0, from, &vec![b'd'; MAX_PACKET_IN_LEN + 1]);
        assert!(sent(&mut dht).is_empty());
        assert_eq!(dht.stats().malformed, 6);
        assert_eq!(dht.stats().unmatched, 3);
    }

    #[test]
    fn get_peers_then_announce_with_token_stores_the_peer() {
        let t0 = Instant::now();
        let mut dht = Dht::new(config(1), t0);
        let from = addr(2, 1000);
        let info_hash = InfoHash([5; 20]);
        dht.handle_packet(
            t0,
            from,
            &query(
                b"g1",
                Query::GetPeers {
                    id: PEER_ID,
                    info_hash,
                },
            ),
        );
        let out = responses(&mut dht);
        let Body::Response(r) = &out[0].1.body else {
            panic!("{out:?}")
        };
        assert!(r.values.is_empty());
        let token = r.token.clone().expect("get_peers answers carry a token");
        let announce = |t: &[u8], port: u16, implied_port: bool, token: Vec<u8>| {
            query(
                t,
                Query::AnnouncePeer {
                    id: PEER_ID,
                    info_hash,
                    port,
                    implied_port,
                    token,
                },
            )
        };
        // A wrong token, a token from another IP, and port 0 are refused with 203.
        dht.handle_packet(t0, from, &announce(b"a1", 6881, false, b"nope".to_vec()));
        dht.handle_packet(
            t0,
            addr(3, 1000),
            &announce(b"a2", 6881, false, token.clone()),
        );
        dht.handle_packet(t0, from, &announce(b"a3", 0, false, token.clone()));
        let codes: Vec<_> = responses(&mut dht)
            .iter()
            .map(|(_, m)| error_code(m))
            .collect();
        assert_eq!(codes, vec![Some(203), Some(203), Some(203)]);
        // Explicit port, then implied port (the UDP source port).
        dht.handle_packet(t0, from, &announce(b"a4", 6881, false, token.clone()));
        dht.handle_packet(t0, from, &announce(b"a5", 9, true, token));
        let acks = responses(&mut dht);
        assert!(acks
            .iter()
            .all(|(_, m)| matches!(m.body, Body::Response(_))));
        dht.handle_packet(
            t0,
            addr(4, 1),
            &query(
                b"g2",
                Query::GetPeers {
                    id: PEER_ID,
                    info_hash,
                },
            ),
        );
        let Body::Response(r) = &responses(&mut dht)[0].1.body else {
            panic!()
        };
        let mut values = r.values.clone();
        values.sort();
        assert_eq!(values, vec![addr(2, 1000), addr(2, 6881)]);
        assert!(r.nodes.is_empty(), "values or nodes, not both");
    }

    #[test]
    fn token_expires_after_two_rotations() {
        let t0 = Instant::now();
        let mut dht = Dht::new(config(1), t0);
        let from = addr(2, 1000);
        let info_hash = InfoHash([5; 20]);
        dht.handle_packet(
            t0,
            from,
            &query(
                b"g1",
                Query::GetPeers {
                    id: PEER_ID,
                    info_hash,
                },
            ),
        );
        let Body::Response(r) = &responses(&mut dht)[0].1.body else {
            panic!()
        };
        let token = r.token.clone().unwrap();
        let t = t0 + Duration::from_secs(10 * 60);
        dht.handle_timeout(t0 + Duration::from_secs(5 * 60));
        dht.handle_timeout(t);
        let q = Query::AnnouncePeer {
            id: PEER_ID,
            info_hash,
            port: 1,
            implied_port: false,
            token,
        };
        dht.handle_packet(t, from, &query(b"a1", q));
        assert_eq!(error_code(&responses(&mut dht)[0].1), Some(203));
    }

    #[test]
    fn answers_never_exceed_1500_bytes() {
        let t0 = Instant::now();
        let mut cfg = config(1);
        cfg.peer_store.max_peers_per_answer = 200;
        let mut dht = Dht::new(cfg, t0);
        let info_hash = InfoHash([5; 20]);
        for i in 0..200u16 {
            let p: SocketAddr = format!("[2001:db8::{i:x}]:{}", 1000 + i).parse().unwrap();
            dht.store.announce(info_hash, p, t0);
        }
        let from: SocketAddr = "[2001:db8::ffff]:1".parse().unwrap();
        dht.handle_packet(
            t0,
            from,
            &query(
                b"g1",
                Query::GetPeers {
                    id: PEER_ID,
                    info_hash,
                },
            ),
        );
        let out = responses(&mut dht);
        let Body::Response(r) = &out[0].1.body else {
            panic!()
        };
        // 200 peers of 18 bytes would not fit; the answer was cut down to fit.
        assert!(!r.values.is_empty() && r.values.len() < 200);
    }

    #[test]
    fn queries_beyond_the_per_ip_rate_are_dropped() {
        let t0 = Instant::now();
        let mut dht = Dht::new(config(1), t0);
        let burst = dht.config().rate_limit.per_ip_burst as usize;
        for i in 0..100u32 {
            let t = i.to_be_bytes();
            dht.handle_packet(t0, addr(2, 1000), &query(&t, Query::Ping { id: PEER_ID }));
        }
        assert_eq!(responses(&mut dht).len(), burst);
        assert_eq!(dht.stats().rate_limited, 100 - burst as u64);
        // Another IP is still served.
        dht.handle_packet(t0, addr(3, 1000), &query(b"z", Query::Ping { id: PEER_ID }));
        assert_eq!(responses(&mut dht).len(), 1);
    }

    #[test]
    fn ping_times_out_and_spoofed_answers_are_ignored() {
        let t0 = Instant::now();
        let mut dht = Dht::new(config(1), t0);
        let target = addr(9, 9);
        let request = dht.ping(t0, target);
        let out = sent(&mut dht);
        assert_eq!(out.len(), 1);
        let t = out[0].1.transaction_id;
        // The right transaction id from the wrong address does not count.
        let answer = KrpcMessage::response(t, Response::id_only(PEER_ID)).encode();
        dht.handle_packet(t0, addr(10, 9), &answer);
        assert_eq!(dht.poll_event(), None);
        let deadline = dht.poll_timeout().unwrap();
        assert_eq!(deadline, t0 + dht.config().query_timeout);
        dht.handle_timeout(deadline - Duration::from_millis(1));
        assert_eq!(dht.poll_event(), None);
        dht.handle_timeout(deadline);
        assert_eq!(
            dht.poll_event(),
            Some(Event::PingDone {
                request,
                addr: target,
                id: None
            })
        );
        // A late answer is unmatched.
        dht.handle_packet(deadline, target, &answer);
        assert_eq!(dht.poll_event(), None);
        assert_eq!(dht.stats().timeouts, 1);
    }

    #[test]
    fn lookup_with_nobody_to_ask_ends_at_once() {
        let t0 = Instant::now();
        let mut dht = Dht::new(config(1), t0);
        let r = dht.get_peers(t0, InfoHash([1; 20]));
        match dht.poll_event() {
            Some(Event::LookupDone { request, stats, .. }) => {
                assert_eq!(request, r);
                assert_eq!(stats.queries, 0);
            }
            other => panic!("{other:?}"),
        }
        let r = dht.announce(t0, InfoHash([1; 20]), PeerPort::Implied);
        assert!(matches!(dht.poll_event(), Some(Event::LookupDone { .. })));
        assert_eq!(
            dht.poll_event(),
            Some(Event::AnnounceDone {
                request: r,
                info_hash: InfoHash([1; 20]),
                stored_on: 0,
                tried: 0
            })
        );
        assert_eq!(dht.active_lookups(), 0);
    }

    #[test]
    fn snapshot_and_load_nodes_round_trip() {
        let t0 = Instant::now();
        let mut a = Dht::new(config(1), t0);
        let nodes: Vec<NodeInfo> = (1..=20u8)
            .map(|i| NodeInfo::new(NodeId([i; 20]), addr(i, 6881)))
            .collect();
        let added = a.load_nodes(t0, nodes.iter().copied());
        assert!(added >= 8);
        let snap = a.routing_table_snapshot(t0);
        assert_eq!(snap.len(), added);
        let mut b = Dht::new(config(2), t0);
        assert!(b.load_nodes(t0, snap.clone()) > 0);
        // Bootstrapping with no routers asks the loaded nodes.
        b.bootstrap(t0, &[]);
        let asked: Vec<_> = sent(&mut b).into_iter().map(|(a, _)| a).collect();
        assert_eq!(asked.len(), 3, "alpha queries in flight");
        assert!(asked.iter().all(|a| snap.iter().any(|n| n.addr == *a)));
        // Bogus addresses never get in.
        assert_eq!(
            b.load_nodes(t0, [NodeInfo::new(NodeId([99; 20]), addr(0, 0))]),
            0
        );
    }
}
