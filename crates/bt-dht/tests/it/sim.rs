//! A network of `Dht` state machines in memory and virtual time: datagrams are
//! routed between them by address with a fixed latency, optional seeded loss,
//! and no sockets or sleeps.

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bt_dht::{Dht, DhtConfig, Event, LookupStats, NodeId, NodeInfo, PeerPort, RequestId};
use bt_meta::InfoHash;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// One hop's delay.
const LATENCY: Duration = Duration::from_millis(20);

pub struct Net {
    pub now: Instant,
    pub nodes: BTreeMap<SocketAddr, Dht>,
    /// Addresses whose packets vanish (dead nodes).
    pub dead: Vec<SocketAddr>,
    /// Chance that a datagram is lost.
    pub loss: f64,
    pub events: Vec<(SocketAddr, Event)>,
    wire: VecDeque<(Instant, SocketAddr, SocketAddr, Vec<u8>)>,
    rng: StdRng,
    pub delivered: u64,
}

/// The address of node `i`: each on its own loopback IP, as nodes on the
/// internet have their own IPs (the per-IP rate limit then applies as it would).
pub fn addr_of(i: usize) -> SocketAddr {
    SocketAddr::from(([127, 1, (i / 250) as u8, (i % 250 + 1) as u8], 6881))
}

impl Net {
    pub fn new(n: usize, seed: u64) -> Self {
        let now = Instant::now();
        let mut nodes = BTreeMap::new();
        for i in 0..n {
            let config = DhtConfig {
                seed: Some(seed * 1_000 + i as u64),
                local_port: 6881,
                ..DhtConfig::default()
            };
            nodes.insert(addr_of(i), Dht::new(config, now));
        }
        Self {
            now,
            nodes,
            dead: Vec::new(),
            loss: 0.0,
            events: Vec::new(),
            wire: VecDeque::new(),
            rng: StdRng::seed_from_u64(seed),
            delivered: 0,
        }
    }

    pub fn node(&mut self, i: usize) -> &mut Dht {
        self.nodes.get_mut(&addr_of(i)).expect("node exists")
    }

    /// Moves every queued datagram to the wire and every event to `events`.
    fn collect(&mut self) {
        for (from, dht) in self.nodes.iter_mut() {
            while let Some((to, bytes)) = dht.poll_transmit() {
                assert!(bytes.len() <= bt_dht::MAX_PACKET_OUT_LEN);
                self.wire.push_back((self.now + LATENCY, *from, to, bytes));
            }
            while let Some(ev) = dht.poll_event() {
                self.events.push((*from, ev));
            }
        }
    }

    /// Runs until `done` holds for the events so far, or `limit` of virtual time passes.
    /// Returns whether `done` held.
    pub fn run_until(
        &mut self,
        limit: Duration,
        mut done: impl FnMut(&[(SocketAddr, Event)]) -> bool,
    ) -> bool {
        let end = self.now + limit;
        loop {
            self.collect();
            if done(&self.events) {
                return true;
            }
            let next_packet = self.wire.front().map(|w| w.0);
            let next_timer = self.nodes.values().filter_map(Dht::poll_timeout).min();
            let Some(next) = [next_packet, next_timer].into_iter().flatten().min() else {
                return false;
            };
            if next > end {
                self.now = end;
                return false;
            }
            self.now = self.now.max(next);
            while self.wire.front().is_some_and(|w| w.0 <= self.now) {
                let Some((_, from, to, bytes)) = self.wire.pop_front() else {
                    break;
                };
                if self.dead.contains(&to) || self.dead.contains(&from) {
                    continue;
                }
                if self.loss > 0.0 && self.rng.gen_bool(self.loss) {
                    continue;
                }
                if let Some(dht) = self.nodes.get_mut(&to) {
                    dht.handle_packet(self.now, from, &bytes);
                    self.delivered += 1;
                }
            }
            let now = self.now;
            for dht in self.nodes.values_mut() {
                if dht.poll_timeout().is_some_and(|t| t <= now) {
                    dht.handle_timeout(now);
                }
            }
        }
    }

    /// Waits for the event of `request` on node `i` that `pick` accepts.
    pub fn wait_for<T>(
        &mut self,
        i: usize,
        limit: Duration,
        mut pick: impl FnMut(&Event) -> Option<T>,
    ) -> Option<T> {
        let at = addr_of(i);
        let mut found = None;
        self.run_until(limit, |events| {
            found = events
                .iter()
                .filter(|(a, _)| *a == at)
                .find_map(|(_, e)| pick(e));
            found.is_some()
        });
        found
    }

    /// Builds a network: node 0 first, then each node joins through node 0 and
    /// two random earlier nodes, ten at a time.
    pub fn build(n: usize, seed: u64) -> Self {
        let mut net = Net::new(n, seed);
        let mut rng = StdRng::seed_from_u64(seed ^ 0xabcdef);
        for batch in (1..n).collect::<Vec<_>>().chunks(10) {
            let now = net.now;
            let mut waiting = Vec::new();
            for &i in batch {
                let via = [0, rng.gen_range(0..i), rng.gen_range(0..i)];
                let routers: Vec<SocketAddr> = via.iter().map(|&v| addr_of(v)).collect();
                waiting.push((addr_of(i), net.node(i).bootstrap(now, &routers)));
            }
            let ok = net.run_until(Duration::from_secs(120), |events| {
                waiting.iter().all(|(a, r)| {
                    events
                        .iter()
                        .any(|(at, e)| at == a && lookup_done(e, *r).is_some())
                })
            });
            assert!(ok, "batch {batch:?} bootstrapped");
        }
        net.events.clear();
        net
    }

    pub fn ids(&self) -> Vec<(NodeId, SocketAddr)> {
        self.nodes.iter().map(|(a, d)| (d.id(), *a)).collect()
    }

    /// The k ids in the whole network closest to `target`, excluding `except`.
    pub fn true_closest(&self, target: NodeId, k: usize, except: SocketAddr) -> Vec<NodeId> {
        let mut ids: Vec<NodeId> = self
            .ids()
            .into_iter()
            .filter(|(_, a)| *a != except && !self.dead.contains(a))
            .map(|(id, _)| id)
            .collect();
        ids.sort_by_key(|id| target.distance(id));
        ids.truncate(k);
        ids
    }
}

pub fn lookup_done(e: &Event, r: RequestId) -> Option<(LookupStats, Vec<NodeInfo>)> {
    match e {
        Event::LookupDone {
            request,
            stats,
            closest,
            ..
        } if *request == r => Some((*stats, closest.clone())),
        _ => None,
    }
}

/// Node `seeker` looks up `info_hash`; returns the peers found and the stats.
pub fn get_peers(
    net: &mut Net,
    seeker: usize,
    info_hash: InfoHash,
) -> (Vec<SocketAddr>, LookupStats) {
    let now = net.now;
    let r = net.node(seeker).get_peers(now, info_hash);
    let stats = net
        .wait_for(seeker, Duration::from_secs(120), |e| {
            lookup_done(e, r).map(|(s, _)| s)
        })
        .expect("get_peers ends");
    let at = addr_of(seeker);
    let peers = net
        .events
        .iter()
        .filter(|(a, _)| *a == at)
        .flat_map(|(_, e)| match e {
            Event::PeersFound { request, peers, .. } if *request == r => peers.clone(),
            _ => Vec::new(),
        })
        .collect();
    (peers, stats)
}

/// Node `i` announces `info_hash` on `port`; returns (stored_on, tried).
pub fn announce(net: &mut Net, i: usize, info_hash: InfoHash, port: u16) -> (usize, usize) {
    let now = net.now;
    let r = net.node(i).announce(now, info_hash, PeerPort::Port(port));
    net.wait_for(i, Duration::from_secs(120), |e| match e {
        Event::AnnounceDone {
            request,
            stored_on,
            tried,
            ..
        } if *request == r => Some((*stored_on, *tried)),
        _ => None,
    })
    .expect("announce ends")
}

#[test]
fn lookups_converge_in_a_200_node_network() {
    let mut net = Net::build(200, 1);
    let sizes: Vec<usize> = net
        .nodes
        .values()
        .map(|d| d.routing_table().len())
        .collect();
    let min = sizes.iter().min().copied().unwrap_or(0);
    let avg = sizes.iter().sum::<usize>() as f64 / sizes.len() as f64;
    assert!(min >= 8, "every node knows at least k nodes (min {min})");

    // find_node from random nodes toward random targets: the k closest found
    // are the true k closest of the network.
    let mut rng = StdRng::seed_from_u64(77);
    let (mut exact, mut overlap, mut queries) = (0, 0, 0);
    let runs = 20;
    for _ in 0..runs {
        let from = rng.gen_range(0..200);
        let target = NodeId::random(&mut rng);
        let now = net.now;
        let r = net.node(from).find_node(now, target);
        let (stats, closest) = net
            .wait_for(from, Duration::from_secs(60), |e| lookup_done(e, r))
            .expect("lookup ends");
        let truth = net.true_closest(target, 8, addr_of(from));
        let got: Vec<NodeId> = closest.iter().map(|n| n.id).collect();
        overlap += got.iter().filter(|id| truth.contains(id)).count();
        exact += usize::from(got == truth);
        assert_eq!(
            got.first(),
            truth.first(),
            "the closest node is always found"
        );
        queries += stats.queries;
        net.events.clear();
    }
    println!(
        "200-node sim: table size min {min} avg {avg:.1}; {exact}/{runs} lookups found exactly \
         the 8 closest, overlap {overlap}/{}; {:.1} queries per find_node lookup",
        runs * 8,
        queries as f64 / runs as f64
    );
    assert!(overlap * 100 >= runs * 8 * 95, "overlap {overlap}");
    assert!(queries <= runs * 30, "{queries} queries for {runs} lookups");
}

#[test]
fn announced_peer_is_found_by_another_node() {
    let mut net = Net::build(200, 2);
    let info_hash = InfoHash([0x42; 20]);
    let (stored_on, tried) = announce(&mut net, 17, info_hash, 5555);
    assert_eq!(tried, 8, "announce goes to the 8 closest that gave tokens");
    assert_eq!(stored_on, 8);
    // The nodes that store it are the 8 closest to the info-hash.
    let holders: Vec<NodeId> = net
        .nodes
        .values()
        .filter(|d| d.peer_store().peer_count() > 0)
        .map(Dht::id)
        .collect();
    let truth = net.true_closest(info_hash.into(), 8, addr_of(17));
    assert!(holders.iter().all(|h| truth.contains(h)), "{holders:?}");
    net.events.clear();
    let (peers, stats) = get_peers(&mut net, 123, info_hash);
    let announcer = SocketAddr::new(addr_of(17).ip(), 5555);
    assert_eq!(peers, vec![announcer]);
    println!("200-node sim: get_peers found the announcer with {stats:?}");
    assert!(stats.queries <= 30, "{stats:?}");
}

#[test]
fn lookups_survive_loss_and_dead_nodes() {
    let mut net = Net::build(100, 3);
    let info_hash = InfoHash([0x99; 20]);
    let (stored_on, _) = announce(&mut net, 5, info_hash, 7000);
    assert!(stored_on >= 6);
    // A fifth of the network dies and one datagram in five is lost.
    net.dead = (50..70).map(addr_of).collect();
    net.loss = 0.2;
    net.events.clear();
    let start = net.now;
    let (peers, stats) = get_peers(&mut net, 90, info_hash);
    let took = net.now - start;
    println!("100-node sim, 20 dead, 20% loss: {stats:?} in {took:?} virtual time");
    assert!(
        peers.contains(&SocketAddr::new(addr_of(5).ip(), 7000)),
        "{stats:?}"
    );
    assert!(stats.failures > 0, "losses were noticed: {stats:?}");
    assert!(took < Duration::from_secs(30), "{took:?}");
}

#[test]
fn silent_nodes_are_evicted_from_tables_over_time() {
    let mut net = Net::build(60, 4);
    let victim = addr_of(33);
    let holders_before = net
        .nodes
        .values()
        .filter(|d| {
            d.routing_table()
                .nodes(net.now)
                .iter()
                .any(|(n, _)| n.addr == victim)
        })
        .count();
    assert!(holders_before > 0);
    net.dead = vec![victim];
    // An hour of virtual time: buckets are refreshed every 15 minutes, so the
    // victim is queried, fails, and turns bad or is replaced.
    net.run_until(Duration::from_secs(3600), |_| false);
    let now = net.now;
    let still_good = net
        .nodes
        .values()
        .flat_map(|d| d.routing_table().nodes(now))
        .filter(|(n, s)| n.addr == victim && *s == bt_dht::NodeState::Good)
        .count();
    assert_eq!(still_good, 0);
    // Nodes that look the victim up twice see two failures: it turns bad and
    // they stop handing it out.
    let victim_id = net.nodes[&victim].id();
    let askers = [3, 14, 41];
    for _ in 0..2 {
        for &i in &askers {
            let now = net.now;
            let r = net.node(i).find_node(now, victim_id);
            net.wait_for(i, Duration::from_secs(60), |e| lookup_done(e, r))
                .expect("lookup ends");
        }
    }
    let now = net.now;
    let handed_out = askers
        .iter()
        .filter(|&&i| {
            net.nodes[&addr_of(i)]
                .routing_table()
                .closest(&victim_id, 8, now)
                .iter()
                .any(|n| n.addr == victim)
        })
        .count();
    println!("victim was in {holders_before} tables; after an hour and two lookups, handed out by {handed_out} of the askers");
    assert_eq!(handed_out, 0);
}
