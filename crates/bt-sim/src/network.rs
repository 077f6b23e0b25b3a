//! The discrete-event network the simulated swarm lives in.
//!
//! Each node runs the real [`bt_engine::proto::Torrent`] (the code the tokio driver runs)
//! and this module plays its driver: it carries out the torrent's actions and turns what
//! happens on the simulated network into the torrent's events, in virtual time.
//!
//! # The model
//!
//! - A node has an upload and a download capacity (bytes per second). `piece` messages
//!   (a block and its 13-byte header) queue for the sender's uplink, which serves the
//!   connections that have one waiting in turn, one message at a time, at the node's
//!   upload rate; after the link's latency they queue for the receiver's downlink, first
//!   come first served, at its download rate. A block's transfer so takes the time its
//!   links give it, and a node's capacity is shared by its connections.
//! - Every other message (requests, `have`, choke, PEX, ...) is small: it takes the
//!   link's latency and no capacity. On one connection, messages arrive in the order they
//!   were sent, as over TCP: a control message queued behind a `piece` leaves after it.
//! - A link's one-way latency is drawn once per pair of nodes, from the configured range.
//!   With a loss rate above zero, a `piece` message is lost that often and sent again
//!   (it costs the uplink twice and arrives a round trip later).
//! - A dial reaches a present node after one latency (the acceptor sees the connection)
//!   and the dialler hears back after two; a dial to an absent node fails after a
//!   second.
//! - The disk is instant: a write completes, and a piece's hash check passes, as soon as
//!   the torrent asks. Data is not stored (a thousand nodes of a 64 MiB torrent would
//!   need 64 GB): blocks carry zeros, and a piece passes its check when its blocks are
//!   in. Bad data is not modelled.
//! - A tracker: a node that joins gets up to `numwant` addresses of the nodes present,
//!   chosen at random, and asks again every 30 s while it has fewer than 20 peers.
//!
//! Everything random (latencies, tracker answers, arrivals, each torrent's seed) comes
//! from the simulation's seed, and nothing walks a hash map, so the same seed gives the
//! same run.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bt_engine::proto::{
    Action, Command, Event, PeerKey, PeerLimits, Torrent, TorrentConfig, TorrentParams,
};
use bt_engine::Disconnect;
use bt_meta::{BlockInfo, Geometry, InfoHash, PeerId, PieceIndex, BLOCK_LEN};
use bt_wire::{Handshake, Message, PIECE_HEADER_LEN};
use bytes::Bytes;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};

/// Nanoseconds of virtual time.
type Nanos = u64;

const NANOS: u64 = 1_000_000_000;
/// A dial to an absent node fails after this long.
const DIAL_FAIL_AFTER: Nanos = NANOS;
/// How often a node short of peers asks the tracker again.
const ANNOUNCE_INTERVAL: Nanos = 30 * NANOS;
/// Below this many peers a node asks the tracker again.
const ANNOUNCE_BELOW_PEERS: usize = 20;
/// A run in which no leecher verified a piece for this long, with nobody left to join,
/// is stuck (a seed left before its pieces were out, say) and ends.
const STALL_AFTER: Nanos = 600 * NANOS;

/// A block of zeros: what every simulated `piece` message carries.
static ZEROS: [u8; BLOCK_LEN as usize] = [0; BLOCK_LEN as usize];

/// What a node does in the swarm.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Has every piece from the start.
    Seed,
    /// Downloads, and uploads to others as its torrent decides.
    Leecher,
    /// Downloads, never uploads: every request it gets is rejected.
    FreeRider,
}

/// One node of the swarm.
#[derive(Clone, Debug)]
pub struct NodeSpec {
    /// Its role.
    pub role: Role,
    /// Upload capacity, bytes per second.
    pub up: u64,
    /// Download capacity, bytes per second.
    pub down: u64,
    /// When it joins.
    pub join_at: Duration,
}

/// How the swarm behaves.
#[derive(Clone, Debug)]
pub struct SimConfig {
    /// The torrent's size in bytes.
    pub size: u64,
    /// Its piece length.
    pub piece_len: u32,
    /// Seed of every random choice.
    pub seed: u64,
    /// Range of one-way link latencies.
    pub latency: (Duration, Duration),
    /// Fraction of `piece` messages lost (and sent again).
    pub loss: f64,
    /// Addresses a tracker answer holds at most.
    pub numwant: usize,
    /// Leechers leave once they have every piece.
    pub leave_when_done: bool,
    /// The seed leaves once it has uploaded this many copies of the torrent.
    pub seed_leaves_after: Option<f64>,
    /// The simulation gives up at this virtual time.
    pub time_limit: Duration,
    /// Each node's torrent settings (its seed is set per node).
    pub torrent: TorrentConfig,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            size: 64 << 20,
            piece_len: 256 << 10,
            seed: 1,
            latency: (Duration::from_millis(10), Duration::from_millis(50)),
            loss: 0.0,
            numwant: 50,
            leave_when_done: false,
            seed_leaves_after: None,
            time_limit: Duration::from_secs(7200),
            torrent: TorrentConfig::default(),
        }
    }
}

/// What became of one node.
#[derive(Clone, Debug)]
pub struct NodeOutcome {
    /// Its role.
    pub role: Role,
    /// Upload capacity, bytes per second.
    pub up: u64,
    /// Download capacity, bytes per second.
    pub down: u64,
    /// When it joined, seconds.
    pub joined_s: f64,
    /// When it had every piece, seconds (`None`: never).
    pub finished_s: Option<f64>,
    /// Payload it uploaded, bytes.
    pub uploaded: u64,
}

/// What a run gave.
#[derive(Clone, Debug)]
pub struct Outcome {
    /// Every node, in the order given.
    pub nodes: Vec<NodeOutcome>,
    /// When the run ended, seconds of virtual time.
    pub end_s: f64,
    /// When every piece had reached at least one leecher, seconds.
    pub all_pieces_out_s: Option<f64>,
    /// Events processed.
    pub events: u64,
    /// Whether it hit the time limit before every leecher finished.
    pub timed_out: bool,
}

/// Something that happens at a point of virtual time.
#[derive(Debug)]
enum Ev {
    /// A node joins the swarm.
    Join(usize),
    /// A node's torrent asked to be woken now (stale unless `gen` is current).
    Timeout { node: usize, gen: u64 },
    /// A node asks the tracker again if short of peers.
    Announce(usize),
    /// One side of a connection sees the handshake done.
    Connected { conn: usize, side: usize },
    /// A dial to an absent node failed.
    ConnectFailed { node: usize, addr: SocketAddr },
    /// The other side closed the connection.
    Closed { conn: usize, side: usize },
    /// Messages reach one side of a connection.
    Deliver {
        conn: usize,
        side: usize,
        msgs: Vec<Message>,
    },
    /// A `piece` message reaches the receiver's downlink queue.
    Arrive {
        conn: usize,
        side: usize,
        block: BlockInfo,
    },
    /// A node's uplink finished sending a `piece` message from `side` of `conn`.
    UplinkDone {
        node: usize,
        conn: usize,
        side: usize,
        block: BlockInfo,
    },
    /// A node's torrent hears what happened to its uploads.
    Served {
        node: usize,
        key: PeerKey,
        blocks: u32,
        bytes: u64,
        dropped: u32,
    },
}

/// A queued event; ordered by time, then by when it was queued.
struct Item {
    at: Nanos,
    seq: u64,
    ev: Ev,
}

impl PartialEq for Item {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}
impl Eq for Item {}
impl PartialOrd for Item {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Item {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.at, self.seq).cmp(&(other.at, other.seq))
    }
}

/// What waits to go out on one side of a connection.
#[derive(Debug)]
enum Out {
    Piece(BlockInfo),
    Control(Message),
}

/// One side of a connection.
#[derive(Debug)]
struct End {
    node: usize,
    key: PeerKey,
    /// Its torrent knows the connection (its `Connected` came).
    known: bool,
    /// Messages waiting for the uplink (a `piece` first; control messages behind it).
    queue: VecDeque<Out>,
    /// Waiting in its node's uplink rotation, or on the uplink.
    in_ring: bool,
    /// A `piece` from this side is on the uplink.
    transmitting: bool,
    /// When the last message sent from this side arrives: later ones arrive after it.
    last_arrival: Nanos,
}

#[derive(Debug)]
struct Conn {
    ends: [End; 2],
    latency: Nanos,
    open: bool,
}

/// A node and the driver state around its torrent.
struct Node {
    spec: NodeSpec,
    addr: SocketAddr,
    peer_id: PeerId,
    torrent: Option<Torrent>,
    /// The torrent's keys of its connections.
    keys: HashMap<PeerKey, (usize, usize)>,
    /// Connection sides with a `piece` waiting, served in turn.
    ring: VecDeque<(usize, usize)>,
    uplink_busy: bool,
    /// When its downlink is free again.
    down_free_at: Nanos,
    timer_gen: u64,
    timer_at: Option<Nanos>,
    joined_at: Option<Nanos>,
    finished_at: Option<Nanos>,
    left: bool,
    uploaded: u64,
}

/// A swarm being simulated; see the module documentation.
pub struct Swarm {
    config: SimConfig,
    geometry: Geometry,
    base: Instant,
    now: Nanos,
    seq: u64,
    queue: BinaryHeap<Reverse<Item>>,
    nodes: Vec<Node>,
    by_addr: HashMap<SocketAddr, usize>,
    conns: Vec<Conn>,
    latencies: HashMap<(usize, usize), Nanos>,
    next_key: u64,
    rng: StdRng,
    /// Leechers holding each piece (to see when every piece has left the seed).
    holders: Vec<u32>,
    pieces_out: u32,
    all_pieces_out: Option<Nanos>,
    /// When a leecher last verified a piece.
    last_progress: Nanos,
    /// The latest join time.
    last_join: Nanos,
    events: u64,
    actions: Vec<Action>,
}

fn nanos(d: Duration) -> Nanos {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

fn secs(t: Nanos) -> f64 {
    t as f64 / NANOS as f64
}

/// Nanoseconds to move `bytes` at `rate` bytes per second.
fn transfer(bytes: u64, rate: u64) -> Nanos {
    if rate == 0 {
        return u64::MAX / 4;
    }
    ((u128::from(bytes) * u128::from(NANOS)) / u128::from(rate)) as Nanos
}

impl Swarm {
    /// A swarm of `nodes` sharing one torrent of `config.size` bytes.
    ///
    /// # Panics
    /// If the size and piece length make no torrent (zero, or more than 2^30 pieces).
    pub fn new(config: SimConfig, nodes: Vec<NodeSpec>) -> Swarm {
        let geometry = Geometry::new(u64::from(config.piece_len), [config.size])
            .expect("a valid torrent size and piece length");
        let rng = StdRng::seed_from_u64(config.seed);
        let nodes: Vec<Node> = nodes
            .into_iter()
            .enumerate()
            .map(|(i, spec)| {
                let mut id = [0u8; 20];
                id[..8].copy_from_slice(b"-SIM001-");
                id[8..16].copy_from_slice(&(i as u64).to_be_bytes());
                Node {
                    spec,
                    addr: SocketAddr::from(([10, (i >> 16) as u8, (i >> 8) as u8, i as u8], 6881)),
                    peer_id: PeerId(id),
                    torrent: None,
                    keys: HashMap::new(),
                    ring: VecDeque::new(),
                    uplink_busy: false,
                    down_free_at: 0,
                    timer_gen: 0,
                    timer_at: None,
                    joined_at: None,
                    finished_at: None,
                    left: false,
                    uploaded: 0,
                }
            })
            .collect();
        let by_addr = nodes.iter().enumerate().map(|(i, n)| (n.addr, i)).collect();
        let holders = vec![0; geometry.num_pieces() as usize];
        let mut swarm = Swarm {
            config,
            geometry,
            base: Instant::now(),
            now: 0,
            seq: 0,
            queue: BinaryHeap::new(),
            nodes,
            by_addr,
            conns: Vec::new(),
            latencies: HashMap::new(),
            next_key: 1,
            rng,
            holders,
            pieces_out: 0,
            all_pieces_out: None,
            last_progress: 0,
            last_join: 0,
            events: 0,
            actions: Vec::new(),
        };
        for i in 0..swarm.nodes.len() {
            let at = nanos(swarm.nodes[i].spec.join_at);
            swarm.last_join = swarm.last_join.max(at);
            swarm.push(at, Ev::Join(i));
        }
        swarm
    }

    fn push(&mut self, at: Nanos, ev: Ev) {
        self.seq += 1;
        self.queue.push(Reverse(Item {
            at,
            seq: self.seq,
            ev,
        }));
    }

    fn instant(&self) -> Instant {
        self.base + Duration::from_nanos(self.now)
    }

    /// Runs until every leecher has every piece, or the time limit.
    pub fn run(mut self) -> Outcome {
        let limit = nanos(self.config.time_limit);
        let mut timed_out = false;
        while let Some(Reverse(item)) = self.queue.pop() {
            if item.at > limit {
                timed_out = true;
                self.now = limit;
                break;
            }
            if item.at > self.last_join.max(self.last_progress) + STALL_AFTER {
                timed_out = true;
                break;
            }
            self.now = item.at;
            self.events += 1;
            self.handle(item.ev);
            if self.all_done() {
                break;
            }
        }
        if !self.all_done() {
            timed_out = true;
        }
        let end_s = secs(self.now);
        Outcome {
            nodes: self
                .nodes
                .iter()
                .map(|n| NodeOutcome {
                    role: n.spec.role,
                    up: n.spec.up,
                    down: n.spec.down,
                    joined_s: secs(nanos(n.spec.join_at)),
                    finished_s: n.finished_at.map(secs),
                    uploaded: n.uploaded,
                })
                .collect(),
            end_s,
            all_pieces_out_s: self.all_pieces_out.map(secs),
            events: self.events,
            timed_out,
        }
    }

    fn all_done(&self) -> bool {
        self.nodes
            .iter()
            .all(|n| n.spec.role == Role::Seed || n.finished_at.is_some())
    }

    fn alive(&self, node: usize) -> bool {
        let n = &self.nodes[node];
        n.torrent.is_some() && !n.left
    }

    fn handle(&mut self, ev: Ev) {
        match ev {
            Ev::Join(node) => self.join(node),
            Ev::Timeout { node, gen } => {
                if self.alive(node) && self.nodes[node].timer_gen == gen {
                    self.nodes[node].timer_at = None;
                    let now = self.instant();
                    if let Some(t) = &mut self.nodes[node].torrent {
                        t.handle_timeout(now);
                    }
                    self.carry_out(node);
                }
            }
            Ev::Announce(node) => {
                if self.alive(node) {
                    let short = self.nodes[node]
                        .torrent
                        .as_ref()
                        .is_some_and(|t| t.num_peers() < ANNOUNCE_BELOW_PEERS);
                    if short {
                        let peers = self.tracker_answer(node);
                        self.event(node, Event::AddPeers(peers));
                    }
                    self.push(self.now + ANNOUNCE_INTERVAL, Ev::Announce(node));
                }
            }
            Ev::Connected { conn, side } => self.connected(conn, side),
            Ev::ConnectFailed { node, addr } => {
                if self.alive(node) {
                    self.event(
                        node,
                        Event::ConnectFailed {
                            addr,
                            reason: Disconnect::Eof,
                        },
                    );
                }
            }
            Ev::Closed { conn, side } => {
                let end = &self.conns[conn].ends[side];
                let (node, key, known) = (end.node, end.key, end.known);
                if known && self.alive(node) {
                    self.nodes[node].keys.remove(&key);
                    self.event(
                        node,
                        Event::Closed {
                            peer: key,
                            reason: Disconnect::Eof,
                        },
                    );
                }
            }
            Ev::Deliver { conn, side, msgs } => {
                let end = &self.conns[conn].ends[side];
                let (node, key, known) = (end.node, end.key, end.known);
                if self.conns[conn].open && known && self.alive(node) {
                    self.event(node, Event::Messages { peer: key, msgs });
                }
            }
            Ev::Arrive { conn, side, block } => {
                let node = self.conns[conn].ends[side].node;
                let size = u64::from(block.len) + PIECE_HEADER_LEN as u64;
                let n = &mut self.nodes[node];
                let start = n.down_free_at.max(self.now);
                let done = start + transfer(size, n.spec.down);
                n.down_free_at = done;
                let msg = Message::Piece {
                    index: block.piece.0,
                    begin: block.begin,
                    data: Bytes::from_static(&ZEROS[..block.len as usize]),
                };
                self.push(
                    done,
                    Ev::Deliver {
                        conn,
                        side,
                        msgs: vec![msg],
                    },
                );
            }
            Ev::UplinkDone {
                node,
                conn,
                side,
                block,
            } => self.uplink_done(node, conn, side, block),
            Ev::Served {
                node,
                key,
                blocks,
                bytes,
                dropped,
            } => {
                if self.alive(node) && self.nodes[node].keys.contains_key(&key) {
                    self.event(
                        node,
                        Event::Served {
                            peer: key,
                            blocks,
                            bytes,
                            dropped,
                        },
                    );
                }
            }
        }
    }

    /// Hands `event` to `node`'s torrent and carries out what it asks.
    fn event(&mut self, node: usize, event: Event) {
        let now = self.instant();
        if let Some(t) = &mut self.nodes[node].torrent {
            t.handle_event(now, event);
        }
        self.carry_out(node);
    }

    fn join(&mut self, node: usize) {
        let seed = self.config.seed;
        let have = self.nodes[node].spec.role == Role::Seed;
        let n = &mut self.nodes[node];
        let params = TorrentParams {
            info_hash: InfoHash([0x5A; 20]),
            name: "sim".into(),
            geometry: self.geometry.clone(),
            peer_id: n.peer_id,
            have: vec![have; self.geometry.num_pieces() as usize],
            info: None,
            private: false,
            listen_port: 6881,
            dht_port: None,
            config: self.config.torrent.clone(),
            rng_seed: seed
                .wrapping_mul(0x9E37_79B9_7F4A_7C15)
                .wrapping_add(node as u64),
            limits: Arc::new(PeerLimits::new(500)),
            priorities: Vec::new(),
        };
        n.torrent = Some(Torrent::new(
            self.base + Duration::from_nanos(self.now),
            params,
        ));
        n.joined_at = Some(self.now);
        let peers = self.tracker_answer(node);
        self.event(node, Event::AddPeers(peers));
        self.push(self.now + ANNOUNCE_INTERVAL, Ev::Announce(node));
    }

    /// Up to `numwant` addresses of other nodes present, at random.
    fn tracker_answer(&mut self, node: usize) -> Vec<SocketAddr> {
        let mut present: Vec<usize> = (0..self.nodes.len())
            .filter(|&i| i != node && self.alive(i))
            .collect();
        present.shuffle(&mut self.rng);
        present.truncate(self.config.numwant);
        present.into_iter().map(|i| self.nodes[i].addr).collect()
    }

    fn latency(&mut self, a: usize, b: usize) -> Nanos {
        let pair = (a.min(b), a.max(b));
        if let Some(l) = self.latencies.get(&pair) {
            return *l;
        }
        let (lo, hi) = (nanos(self.config.latency.0), nanos(self.config.latency.1));
        let l = if hi > lo {
            self.rng.gen_range(lo..=hi)
        } else {
            lo
        };
        self.latencies.insert(pair, l);
        l
    }

    /// Carries out every action `node`'s torrent has queued (the disk at once).
    fn carry_out(&mut self, node: usize) {
        loop {
            let mut actions = std::mem::take(&mut self.actions);
            if let Some(t) = &mut self.nodes[node].torrent {
                while let Some(a) = t.poll_action() {
                    actions.push(a);
                }
            }
            if actions.is_empty() {
                self.actions = actions;
                break;
            }
            let mut written = 0;
            let mut hashed = Vec::new();
            for action in actions.drain(..) {
                match action {
                    Action::Dial(addr) => self.dial(node, addr),
                    Action::Send { peer, cmd } => self.send(node, peer, cmd),
                    Action::Close(peer) => self.close(node, peer),
                    Action::Write { .. } => written += 1,
                    Action::Hash(piece) => hashed.push(piece),
                    Action::SaveResume(_) | Action::AddDhtNode(_) | Action::Publish => {}
                }
            }
            self.actions = actions;
            let now = self.instant();
            if let Some(t) = &mut self.nodes[node].torrent {
                if written > 0 {
                    t.handle_event(now, Event::Written(written));
                }
                for piece in &hashed {
                    t.handle_event(
                        now,
                        Event::Hashed {
                            piece: *piece,
                            ok: true,
                        },
                    );
                }
            }
            if self.nodes[node].spec.role != Role::Seed {
                for piece in hashed {
                    self.piece_verified(piece);
                }
            }
        }
        self.after(node);
    }

    /// Completion, leaving, and the torrent's next wake-up.
    fn after(&mut self, node: usize) {
        let n = &mut self.nodes[node];
        let Some(t) = &n.torrent else {
            return;
        };
        if n.left {
            return;
        }
        if n.spec.role != Role::Seed && n.finished_at.is_none() && t.state().is_complete() {
            n.finished_at = Some(self.now);
            if self.config.leave_when_done {
                self.leave(node);
                return;
            }
        }
        if n.spec.role == Role::Seed {
            if let Some(copies) = self.config.seed_leaves_after {
                if n.uploaded as f64 >= copies * self.config.size as f64 {
                    self.leave(node);
                    return;
                }
            }
        }
        let n = &mut self.nodes[node];
        let Some(t) = &n.torrent else {
            return;
        };
        let wake = t
            .poll_timeout()
            .map(|at| nanos(at.saturating_duration_since(self.base)).max(self.now));
        if wake != n.timer_at {
            n.timer_at = wake;
            n.timer_gen += 1;
            if let Some(at) = wake {
                let gen = n.timer_gen;
                self.push(at, Ev::Timeout { node, gen });
            }
        }
    }

    fn piece_verified(&mut self, piece: PieceIndex) {
        self.last_progress = self.now;
        if let Some(h) = self.holders.get_mut(piece.0 as usize) {
            *h += 1;
            if *h == 1 {
                self.pieces_out += 1;
                if self.pieces_out == self.geometry.num_pieces() {
                    self.all_pieces_out = Some(self.now);
                }
            }
        }
    }

    /// The node leaves: every connection closes.
    fn leave(&mut self, node: usize) {
        let mut keys: Vec<PeerKey> = self.nodes[node].keys.keys().copied().collect();
        keys.sort_unstable();
        for key in keys {
            self.close(node, key);
        }
        let n = &mut self.nodes[node];
        n.left = true;
        n.ring.clear();
    }

    fn dial(&mut self, node: usize, addr: SocketAddr) {
        let Some(&target) = self.by_addr.get(&addr) else {
            self.push(self.now + DIAL_FAIL_AFTER, Ev::ConnectFailed { node, addr });
            return;
        };
        if !self.alive(target) {
            self.push(self.now + DIAL_FAIL_AFTER, Ev::ConnectFailed { node, addr });
            return;
        }
        let latency = self.latency(node, target);
        let end = |node: usize, key: u64| End {
            node,
            key: PeerKey(key),
            known: false,
            queue: VecDeque::new(),
            in_ring: false,
            transmitting: false,
            last_arrival: 0,
        };
        let (ka, kb) = (self.next_key, self.next_key + 1);
        self.next_key += 2;
        let conn = self.conns.len();
        self.conns.push(Conn {
            ends: [end(node, ka), end(target, kb)],
            latency,
            open: true,
        });
        self.push(self.now + latency, Ev::Connected { conn, side: 1 });
        self.push(self.now + 2 * latency, Ev::Connected { conn, side: 0 });
    }

    fn connected(&mut self, conn: usize, side: usize) {
        let c = &self.conns[conn];
        let (node, key) = (c.ends[side].node, c.ends[side].key);
        let other = c.ends[1 - side].node;
        if !self.alive(node) {
            return;
        }
        if !c.open || !self.alive(other) {
            if side == 0 {
                // The acceptor refused (or left) before the dialler heard back.
                let addr = self.nodes[other].addr;
                self.event(
                    node,
                    Event::ConnectFailed {
                        addr,
                        reason: Disconnect::Eof,
                    },
                );
            }
            return;
        }
        self.conns[conn].ends[side].known = true;
        self.nodes[node].keys.insert(key, (conn, side));
        let mut handshake = Handshake::new(InfoHash([0x5A; 20]), self.nodes[other].peer_id);
        handshake.reserved.set_fast(true);
        handshake.reserved.set_extension_protocol(true);
        let addr = self.nodes[other].addr;
        self.event(
            node,
            Event::Connected {
                peer: key,
                addr,
                handshake,
                outgoing: side == 0,
            },
        );
    }

    /// `node` closes its side of a connection: the other side hears of it after the
    /// link's latency.
    fn close(&mut self, node: usize, key: PeerKey) {
        let Some((conn, side)) = self.nodes[node].keys.remove(&key) else {
            return;
        };
        let c = &mut self.conns[conn];
        if !c.open {
            return;
        }
        c.open = false;
        c.ends[0].queue.clear();
        c.ends[1].queue.clear();
        let at = self.now + c.latency;
        self.push(
            at,
            Ev::Closed {
                conn,
                side: 1 - side,
            },
        );
    }

    fn send(&mut self, node: usize, key: PeerKey, cmd: Command) {
        let Some(&(conn, side)) = self.nodes[node].keys.get(&key) else {
            return;
        };
        if !self.conns[conn].open {
            return;
        }
        match cmd {
            // A free rider keeps every peer choked, as BitThief-style clients do.
            Command::Msg(Message::Unchoke) if self.nodes[node].spec.role == Role::FreeRider => {}
            Command::Msg(m) => self.control(conn, side, vec![m]),
            Command::Requests(blocks) => {
                let msgs = blocks.into_iter().map(Message::Request).collect();
                self.control(conn, side, msgs);
            }
            Command::Serve(block) => {
                if self.nodes[node].spec.role == Role::FreeRider {
                    self.push(
                        self.now,
                        Ev::Served {
                            node,
                            key,
                            blocks: 0,
                            bytes: 0,
                            dropped: 1,
                        },
                    );
                    self.control(conn, side, vec![Message::RejectRequest(block)]);
                    return;
                }
                let end = &mut self.conns[conn].ends[side];
                end.queue.push_back(Out::Piece(block));
                if !end.in_ring {
                    end.in_ring = true;
                    self.nodes[node].ring.push_back((conn, side));
                }
                self.kick(node);
            }
            Command::CancelServe(block) => {
                let end = &mut self.conns[conn].ends[side];
                let pos = end
                    .queue
                    .iter()
                    .position(|o| matches!(o, Out::Piece(b) if *b == block));
                if let Some(pos) = pos {
                    end.queue.remove(pos);
                    self.push(
                        self.now,
                        Ev::Served {
                            node,
                            key,
                            blocks: 0,
                            bytes: 0,
                            dropped: 1,
                        },
                    );
                    self.control(conn, side, vec![Message::RejectRequest(block)]);
                }
            }
            Command::Choke => {
                let end = &mut self.conns[conn].ends[side];
                let mut msgs = vec![Message::Choke];
                let mut kept = VecDeque::new();
                for out in end.queue.drain(..) {
                    match out {
                        Out::Piece(b) => msgs.push(Message::RejectRequest(b)),
                        control => kept.push_back(control),
                    }
                }
                end.queue = kept;
                let dropped = (msgs.len() - 1) as u32;
                if dropped > 0 {
                    self.push(
                        self.now,
                        Ev::Served {
                            node,
                            key,
                            blocks: 0,
                            bytes: 0,
                            dropped,
                        },
                    );
                }
                self.control(conn, side, msgs);
            }
        }
    }

    /// Small messages from `side` of `conn`: they take the latency only, in order behind
    /// whatever that side already has waiting.
    fn control(&mut self, conn: usize, side: usize, msgs: Vec<Message>) {
        let end = &mut self.conns[conn].ends[side];
        if !end.queue.is_empty() || end.transmitting {
            end.queue.extend(msgs.into_iter().map(Out::Control));
            return;
        }
        self.deliver_now(conn, side, msgs);
    }

    /// Sends `msgs` from `side` of `conn` now: they arrive after the latency, and after
    /// what this side sent before.
    fn deliver_now(&mut self, conn: usize, side: usize, msgs: Vec<Message>) {
        let c = &mut self.conns[conn];
        let latency = c.latency;
        let end = &mut c.ends[side];
        let at = (self.now + latency).max(end.last_arrival);
        end.last_arrival = at;
        self.push(
            at,
            Ev::Deliver {
                conn,
                side: 1 - side,
                msgs,
            },
        );
    }

    /// Sends the control messages at the head of `side`'s queue.
    fn flush_controls(&mut self, conn: usize, side: usize) {
        let end = &mut self.conns[conn].ends[side];
        let mut msgs = Vec::new();
        while let Some(Out::Control(_)) = end.queue.front() {
            if let Some(Out::Control(m)) = end.queue.pop_front() {
                msgs.push(m);
            }
        }
        if !msgs.is_empty() {
            self.deliver_now(conn, side, msgs);
        }
    }

    /// Starts the next `piece` message on `node`'s uplink, if it is free.
    fn kick(&mut self, node: usize) {
        if self.nodes[node].uplink_busy {
            return;
        }
        while let Some((conn, side)) = self.nodes[node].ring.pop_front() {
            if !self.conns[conn].open {
                self.conns[conn].ends[side].in_ring = false;
                continue;
            }
            self.flush_controls(conn, side);
            let end = &mut self.conns[conn].ends[side];
            let Some(Out::Piece(block)) = end.queue.pop_front() else {
                end.in_ring = false;
                continue;
            };
            end.transmitting = true;
            let size = u64::from(block.len) + PIECE_HEADER_LEN as u64;
            let mut took = transfer(size, self.nodes[node].spec.up);
            if self.config.loss > 0.0 && self.rng.gen_bool(self.config.loss.min(1.0)) {
                took *= 2;
            }
            self.nodes[node].uplink_busy = true;
            self.push(
                self.now + took,
                Ev::UplinkDone {
                    node,
                    conn,
                    side,
                    block,
                },
            );
            return;
        }
    }

    fn uplink_done(&mut self, node: usize, conn: usize, side: usize, block: BlockInfo) {
        self.nodes[node].uplink_busy = false;
        let c = &mut self.conns[conn];
        c.ends[side].transmitting = false;
        if c.open {
            let len = u64::from(block.len);
            let latency = c.latency;
            let receiver = c.ends[1 - side].node;
            let end = &mut c.ends[side];
            let at = (self.now + latency).max(end.last_arrival);
            let receive = transfer(
                len + PIECE_HEADER_LEN as u64,
                self.nodes[receiver].spec.down,
            );
            end.last_arrival = at + receive;
            let key = end.key;
            let more = !end.queue.is_empty();
            self.push(
                at,
                Ev::Arrive {
                    conn,
                    side: 1 - side,
                    block,
                },
            );
            self.nodes[node].uploaded += len;
            self.push(
                self.now,
                Ev::Served {
                    node,
                    key,
                    blocks: 1,
                    bytes: len,
                    dropped: 0,
                },
            );
            self.flush_controls(conn, side);
            let end = &mut self.conns[conn].ends[side];
            if more && !end.queue.is_empty() {
                self.nodes[node].ring.push_back((conn, side));
            } else {
                end.in_ring = false;
            }
        } else {
            c.ends[side].in_ring = false;
        }
        if self.alive(node) {
            self.kick(node);
        }
    }
}
