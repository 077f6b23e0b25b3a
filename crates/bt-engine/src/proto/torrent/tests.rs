//! Tests of the torrent state machine, in virtual time: no sockets, no sleeps.

use super::*;
use bt_meta::BLOCK_LEN;

use crate::proto::MIN_QUEUE_DEPTH;

/// A torrent stepped by hand; actions are collected as they come.
struct Harness {
    t: Torrent,
    now: Instant,
    start: Instant,
    actions: Vec<Action>,
}

fn addr(n: u16) -> SocketAddr {
    SocketAddr::from(([10, 0, (n >> 8) as u8, n as u8], 6881))
}

fn peer_id(n: u8) -> PeerId {
    PeerId([n; 20])
}

fn handshake(id: PeerId, fast: bool) -> Handshake {
    let mut hs = Handshake::new(InfoHash([7; 20]), id);
    hs.reserved.set_fast(fast);
    hs.reserved.set_extension_protocol(true);
    hs
}

struct Setup {
    pieces: u32,
    piece_len: u32,
    have: bool,
    config: TorrentConfig,
    limits: Arc<PeerLimits>,
    seed: u64,
}

impl Default for Setup {
    fn default() -> Self {
        Setup {
            pieces: 8,
            piece_len: 2 * BLOCK_LEN,
            have: false,
            config: TorrentConfig::default(),
            limits: Arc::new(PeerLimits::new(500)),
            seed: 1,
        }
    }
}

impl Setup {
    fn build(self) -> Harness {
        let now = Instant::now();
        let total = u64::from(self.pieces) * u64::from(self.piece_len);
        let geometry = Geometry::new(u64::from(self.piece_len), [total]).unwrap();
        let t = Torrent::new(
            now,
            TorrentParams {
                info_hash: InfoHash([7; 20]),
                name: "t".into(),
                geometry,
                peer_id: peer_id(1),
                have: vec![self.have; self.pieces as usize],
                info: None,
                private: false,
                listen_port: 6881,
                dht_port: None,
                config: self.config,
                rng_seed: self.seed,
                limits: self.limits,
                priorities: Vec::new(),
            },
        );
        let mut h = Harness {
            t,
            now,
            start: now,
            actions: Vec::new(),
        };
        h.drain();
        h
    }
}

impl Harness {
    fn drain(&mut self) -> Vec<Action> {
        while let Some(a) = self.t.poll_action() {
            self.actions.push(a);
        }
        std::mem::take(&mut self.actions)
    }

    fn event(&mut self, ev: Event) -> Vec<Action> {
        self.t.handle_event(self.now, ev);
        self.drain()
    }

    /// A connection from (or to) peer `n` finishes its handshake.
    fn connect(&mut self, n: u16, outgoing: bool) -> Vec<Action> {
        self.connect_id(n, peer_id(n as u8 + 10), outgoing)
    }

    fn connect_id(&mut self, n: u16, id: PeerId, outgoing: bool) -> Vec<Action> {
        self.event(Event::Connected {
            peer: PeerKey(u64::from(n)),
            addr: addr(n),
            handshake: handshake(id, true),
            outgoing,
        })
    }

    fn msgs(&mut self, n: u16, msgs: Vec<Message>) -> Vec<Action> {
        self.event(Event::Messages {
            peer: PeerKey(u64::from(n)),
            msgs,
        })
    }

    /// Moves time forward by `d`, running every timeout that falls due on the way.
    fn advance(&mut self, d: Duration) -> Vec<Action> {
        let end = self.now + d;
        let mut out = Vec::new();
        while let Some(at) = self.t.poll_timeout().filter(|at| *at <= end) {
            self.now = at.max(self.now);
            self.t.handle_timeout(self.now);
            out.extend(self.drain());
        }
        self.now = end;
        out
    }

    fn elapsed(&self) -> Duration {
        self.now - self.start
    }

    /// Answers every `Requests` in `actions` from peer `n` with the block, and returns
    /// the hashes asked for.
    fn serve_requests(&mut self, n: u16, actions: &[Action]) -> Vec<Action> {
        let mut out = Vec::new();
        for a in actions {
            if let Action::Send {
                peer,
                cmd: Command::Requests(blocks),
            } = a
            {
                if *peer != PeerKey(u64::from(n)) {
                    continue;
                }
                for b in blocks {
                    out.extend(self.msgs(n, vec![piece(b)]));
                }
            }
        }
        out
    }
}

fn piece(b: &BlockInfo) -> Message {
    Message::Piece {
        index: b.piece.0,
        begin: b.begin,
        data: Bytes::from(vec![0u8; b.len as usize]),
    }
}

fn sent(actions: &[Action], n: u16) -> Vec<&Command> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Send { peer, cmd } if *peer == PeerKey(u64::from(n)) => Some(cmd),
            _ => None,
        })
        .collect()
}

fn sent_msg(actions: &[Action], n: u16, msg: &Message) -> bool {
    sent(actions, n)
        .iter()
        .any(|c| matches!(c, Command::Msg(m) if m == msg))
}

fn requests(actions: &[Action], n: u16) -> Vec<BlockInfo> {
    sent(actions, n)
        .into_iter()
        .filter_map(|c| match c {
            Command::Requests(b) => Some(b.clone()),
            _ => None,
        })
        .flatten()
        .collect()
}

fn closed(actions: &[Action], n: u16) -> bool {
    actions
        .iter()
        .any(|a| matches!(a, Action::Close(k) if *k == PeerKey(u64::from(n))))
}

fn dials(actions: &[Action]) -> Vec<SocketAddr> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Dial(addr) => Some(*addr),
            _ => None,
        })
        .collect()
}

fn hashes(actions: &[Action]) -> Vec<PieceIndex> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Hash(p) => Some(*p),
            _ => None,
        })
        .collect()
}

#[test]
fn a_leecher_gets_every_piece_from_a_seed_and_drops_it_when_complete() {
    let mut h = Setup::default().build();
    let a = h.connect(2, true);
    assert!(
        sent_msg(&a, 2, &Message::HaveNone),
        "fast peers hear have none"
    );
    let a = h.msgs(2, vec![Message::HaveAll]);
    assert!(sent_msg(&a, 2, &Message::Interested));
    assert!(requests(&a, 2).is_empty(), "no requests while choked");
    let mut a = h.msgs(2, vec![Message::Unchoke]);
    let mut written = 0;
    let mut verified = 0;
    while !requests(&a, 2).is_empty() {
        let got = h.serve_requests(2, &a);
        written += got
            .iter()
            .filter(|x| matches!(x, Action::Write { .. }))
            .count();
        a = got;
        let pieces = hashes(&a);
        for p in pieces {
            verified += 1;
            a.extend(h.event(Event::Hashed { piece: p, ok: true }));
        }
    }
    assert_eq!(written, 16);
    assert_eq!(verified, 8);
    assert_eq!(h.t.state(), &TorrentState::Seeding);
    assert!(closed(&a, 2), "seed to seed links are dropped");
    assert!(a
        .iter()
        .any(|x| matches!(x, Action::SaveResume(v) if v.iter().all(|h| *h))));
    assert!(a.iter().any(|x| matches!(x, Action::Publish)));
}

#[test]
fn endgame_asks_a_second_peer_for_the_last_blocks_and_cancels_the_loser() {
    let mut h = Setup {
        pieces: 1,
        piece_len: 4 * BLOCK_LEN,
        ..Setup::default()
    }
    .build();
    h.connect(2, true);
    h.connect(3, true);
    h.msgs(2, vec![Message::HaveAll]);
    h.msgs(3, vec![Message::HaveAll]);
    let first = h.msgs(2, vec![Message::Unchoke]);
    assert_eq!(requests(&first, 2).len(), 4, "peer 2 takes every block");
    // Every block is requested: peer 3 gets duplicates (endgame).
    let second = h.msgs(3, vec![Message::Unchoke]);
    let dup = requests(&second, 3);
    assert!(!dup.is_empty(), "endgame duplicates");
    assert!(h.t.picker().in_endgame());
    // Peer 3 answers first: peer 2 hears a cancel for that block.
    let won = dup[0];
    let a = h.msgs(3, vec![piece(&won)]);
    assert!(sent_msg(&a, 2, &Message::Cancel(won)), "{a:?}");
    // Peer 2's late copy is tolerated once (it was cancelled), then unrequested blocks
    // disconnect.
    let a = h.msgs(2, vec![piece(&won)]);
    assert!(!closed(&a, 2));
    let a = h.msgs(2, vec![piece(&won)]);
    assert!(
        closed(&a, 2),
        "a block asked of nobody is a protocol violation"
    );
}

#[test]
fn peers_that_send_bad_pieces_are_banned_never_redialled_nor_accepted() {
    let mut h = Setup {
        pieces: 4,
        piece_len: BLOCK_LEN,
        ..Setup::default()
    }
    .build();
    h.event(Event::AddPeers(vec![addr(2)]));
    h.connect(2, true);
    h.msgs(2, vec![Message::HaveAll]);
    let a = h.msgs(2, vec![Message::Unchoke]);
    let got = h.serve_requests(2, &a);
    let bad = hashes(&got);
    assert_eq!(bad.len(), 4);
    // First failure: a strike. Second: banned.
    let a = h.event(Event::Hashed {
        piece: bad[0],
        ok: false,
    });
    assert!(!closed(&a, 2));
    let a = h.event(Event::Hashed {
        piece: bad[1],
        ok: false,
    });
    assert!(closed(&a, 2), "banned after two pieces it sent alone");
    assert!(h.t.is_banned(addr(2)));
    assert_eq!(h.t.stats(h.now).banned, 1);
    assert_eq!(h.t.stats(h.now).hash_failures, 2);
    // Never dialled again, and refused when it calls back, even under another id.
    let later = h.advance(Duration::from_secs(300));
    assert!(dials(&later).is_empty(), "{later:?}");
    let a = h.connect_id(9, peer_id(99), false);
    assert!(!closed(&a, 9), "another address is fine");
    let a = h.event(Event::Connected {
        peer: PeerKey(10),
        addr: SocketAddr::new(addr(2).ip(), 7000),
        handshake: handshake(peer_id(50), true),
        outgoing: false,
    });
    assert!(closed(&a, 10), "the banned address is refused on any port");
    let a = h.connect_id(11, peer_id(12), false);
    assert!(
        closed(&a, 11),
        "the banned peer id is refused from any address"
    );
}

#[test]
fn addresses_the_user_bans_are_closed_and_refused() {
    let mut h = Setup::default().build();
    h.event(Event::AddPeers(vec![addr(2), addr(3)]));
    h.connect(2, true);
    h.connect(3, true);
    let a = h.event(Event::BanIps(vec![addr(2).ip()]));
    assert!(closed(&a, 2), "{a:?}");
    assert!(!closed(&a, 3), "other addresses stay");
    assert!(h.t.is_banned(addr(2)));
    let a = h.event(Event::Connected {
        peer: PeerKey(10),
        addr: SocketAddr::new(addr(2).ip(), 7000),
        handshake: handshake(peer_id(50), true),
        outgoing: false,
    });
    assert!(closed(&a, 10), "refused on any port");
}

#[test]
fn failed_dials_are_retried_with_exponential_backoff() {
    let mut h = Setup::default().build();
    let a = h.event(Event::AddPeers(vec![addr(2)]));
    assert_eq!(dials(&a), [addr(2)]);
    let mut retries = Vec::new();
    for _ in 0..8 {
        h.event(Event::ConnectFailed {
            addr: addr(2),
            reason: Disconnect::Eof,
        });
        let failed_at = h.elapsed();
        let mut waited = Duration::ZERO;
        loop {
            let a = h.advance(TICK);
            waited += TICK;
            if !dials(&a).is_empty() {
                break;
            }
            assert!(waited < Duration::from_secs(120), "never redialled");
        }
        retries.push((h.elapsed() - failed_at).as_secs());
    }
    // 2, 4, 8, ... seconds (to the next tick), never more than a minute.
    assert_eq!(retries, [2, 4, 8, 16, 32, 60, 60, 60]);
    // A dial that connects resets the backoff.
    h.connect(2, true);
    h.event(Event::Closed {
        peer: PeerKey(2),
        reason: Disconnect::Eof,
    });
    let a = h.advance(Duration::from_millis(2500));
    assert_eq!(dials(&a), [addr(2)]);
}

#[test]
fn hopeless_disconnects_are_not_redialled() {
    let mut h = Setup::default().build();
    h.event(Event::AddPeers(vec![addr(2), addr(3)]));
    h.connect(2, true);
    h.connect(3, true);
    h.event(Event::Closed {
        peer: PeerKey(2),
        reason: Disconnect::SelfConnection,
    });
    h.event(Event::Closed {
        peer: PeerKey(3),
        reason: Disconnect::Io(std::io::ErrorKind::ConnectionReset.into()),
    });
    let a = h.advance(Duration::from_secs(10));
    assert_eq!(dials(&a), [addr(3)]);
}

#[test]
fn at_the_limit_an_idle_peer_gives_way_but_a_busy_or_young_one_does_not() {
    let mut h = Setup {
        config: TorrentConfig {
            max_peers: 2,
            ..TorrentConfig::default()
        },
        ..Setup::default()
    }
    .build();
    h.connect(2, false);
    h.connect(3, false);
    // Peer 3 is useful: it has pieces we want (we are interested).
    h.msgs(3, vec![Message::HaveAll]);
    // Young idle peers keep their slot.
    let a = h.connect(4, false);
    assert!(closed(&a, 4), "refused: nobody idle for 5 s");
    h.advance(IDLE_EVICT_AFTER);
    let a = h.connect(5, false);
    assert!(closed(&a, 2), "idle peer 2 evicted");
    assert!(!closed(&a, 3), "peer 3 we want data from stays");
    assert!(!closed(&a, 5));
    assert_eq!(h.t.num_peers(), 2);
}

#[test]
fn a_full_torrent_makes_room_to_dial_an_address_its_sources_found() {
    let mut h = Setup {
        config: TorrentConfig {
            max_peers: 1,
            ..TorrentConfig::default()
        },
        ..Setup::default()
    }
    .build();
    h.connect(2, false);
    h.advance(IDLE_EVICT_AFTER);
    let a = h.event(Event::AddPeers(vec![addr(3)]));
    assert!(closed(&a, 2), "the idle incoming peer gives its slot");
    assert_eq!(dials(&a), [addr(3)]);
}

#[test]
fn the_session_limit_holds_over_several_torrents() {
    let limits = Arc::new(PeerLimits::new(3));
    let mut a = Setup {
        limits: Arc::clone(&limits),
        ..Setup::default()
    }
    .build();
    let mut b = Setup {
        limits: Arc::clone(&limits),
        ..Setup::default()
    }
    .build();
    a.connect(2, false);
    a.connect(3, false);
    b.connect(4, false);
    assert_eq!(limits.connected(), 3);
    let refused = b.connect(5, false);
    assert!(closed(&refused, 5));
    // Neither dials beyond the limit.
    let d = b.event(Event::AddPeers(vec![addr(6), addr(7)]));
    assert!(dials(&d).is_empty());
    a.event(Event::Closed {
        peer: PeerKey(2),
        reason: Disconnect::Eof,
    });
    assert_eq!(limits.connected(), 2);
    let d = b.advance(TICK);
    assert_eq!(dials(&d), [addr(6)], "one slot freed, one dial");
}

#[test]
fn a_seed_rotates_its_unchokes_over_every_interested_peer() {
    let mut h = Setup {
        have: true,
        ..Setup::default()
    }
    .build();
    assert_eq!(h.t.state(), &TorrentState::Seeding);
    let n = 12u16;
    for i in 2..2 + n {
        h.connect(i, false);
        h.msgs(i, vec![Message::HaveNone, Message::Interested]);
    }
    let mut unchoked = std::collections::BTreeSet::new();
    for _ in 0..12 {
        // Each unchoked peer takes 3 MiB a round: past the seeding quota in two.
        for i in 2..2 + n {
            if h.t.choker.is_unchoked(PeerKey(u64::from(i))) {
                h.event(Event::Served {
                    peer: PeerKey(u64::from(i)),
                    blocks: 192,
                    bytes: 3 << 20,
                    dropped: 0,
                });
            }
        }
        let a = h.advance(Duration::from_secs(10));
        for i in 2..2 + n {
            if sent_msg(&a, i, &Message::Unchoke) {
                unchoked.insert(i);
            }
        }
        // At most 4 regular slots and one optimistic at any time.
        let open = (2..2 + n)
            .filter(|i| h.t.choker.is_unchoked(PeerKey(u64::from(*i))))
            .count();
        assert!(open <= 5, "{open} unchoked");
    }
    assert_eq!(
        unchoked.len(),
        n as usize,
        "every peer got a turn: {unchoked:?}"
    );
}

#[test]
fn requests_while_choked_are_rejected_and_a_flood_disconnects() {
    let mut h = Setup {
        have: true,
        ..Setup::default()
    }
    .build();
    h.connect(2, false);
    let req = BlockInfo {
        piece: PieceIndex(0),
        begin: 0,
        len: BLOCK_LEN,
    };
    let a = h.msgs(2, vec![Message::Request(req)]);
    assert!(sent_msg(&a, 2, &Message::RejectRequest(req)));
    let flood = vec![Message::Request(req); MAX_IGNORED_REQUESTS as usize + 1];
    let a = h.msgs(2, flood);
    assert!(closed(&a, 2));
    assert!(!sent(&a, 2).iter().any(|c| matches!(c, Command::Serve(_))));
}

#[test]
fn an_unchoked_peer_is_served_up_to_its_queue_bound() {
    let mut h = Setup {
        have: true,
        ..Setup::default()
    }
    .build();
    h.connect(2, false);
    let a = h.msgs(2, vec![Message::HaveNone, Message::Interested]);
    assert!(
        sent_msg(&a, 2, &Message::Unchoke),
        "a free slot unchokes at once"
    );
    let req = |i: u32| BlockInfo {
        piece: PieceIndex(i % 8),
        begin: (i / 8 % 2) * BLOCK_LEN,
        len: BLOCK_LEN,
    };
    let reqs: Vec<Message> = (0..MAX_UPLOAD_QUEUE + 5)
        .map(|i| Message::Request(req(i)))
        .collect();
    let a = h.msgs(2, reqs);
    let serves = sent(&a, 2)
        .iter()
        .filter(|c| matches!(c, Command::Serve(_)))
        .count();
    assert_eq!(serves, MAX_UPLOAD_QUEUE as usize);
    // Served blocks free the queue.
    h.event(Event::Served {
        peer: PeerKey(2),
        blocks: 10,
        bytes: 10 * u64::from(BLOCK_LEN),
        dropped: 0,
    });
    let a = h.msgs(2, vec![Message::Request(req(1))]);
    assert_eq!(sent(&a, 2), [&Command::Serve(req(1))]);
    assert_eq!(h.t.stats(h.now).uploaded, 10 * u64::from(BLOCK_LEN));
}

#[test]
fn protocol_violations_disconnect_with_their_reason() {
    let cases: Vec<(Vec<Message>, &str)> = vec![
        (vec![Message::Have { index: 8 }], "have past the end"),
        (
            vec![Message::Bitfield(vec![0xff, 0x00].into())],
            "bitfield too long",
        ),
        (
            vec![Message::Request(BlockInfo {
                piece: PieceIndex(0),
                begin: 0,
                len: BLOCK_LEN + 1,
            })],
            "oversized request",
        ),
        (
            vec![Message::Piece {
                index: 0,
                begin: 0,
                data: Bytes::from(vec![0; 10]),
            }],
            "unrequested block",
        ),
    ];
    for (msgs, what) in cases {
        let mut h = Setup::default().build();
        h.connect(2, false);
        let a = h.msgs(2, msgs);
        assert!(closed(&a, 2), "{what}");
        assert_eq!(h.t.num_peers(), 0, "{what}");
    }
    // Without the fast extension, have-all is a violation too.
    let mut h = Setup::default().build();
    h.event(Event::Connected {
        peer: PeerKey(2),
        addr: addr(2),
        handshake: handshake(peer_id(5), false),
        outgoing: false,
    });
    let a = h.msgs(2, vec![Message::HaveAll]);
    assert!(closed(&a, 2));
}

#[test]
fn requests_a_peer_leaves_unanswered_go_to_another_peer() {
    let mut h = Setup {
        pieces: 8,
        piece_len: 4 * BLOCK_LEN,
        ..Setup::default()
    }
    .build();
    h.connect(2, true);
    h.msgs(2, vec![Message::HaveAll]);
    let a = h.msgs(2, vec![Message::Unchoke]);
    let silent: Vec<BlockInfo> = requests(&a, 2);
    assert_eq!(silent.len(), MIN_QUEUE_DEPTH);
    h.advance(Duration::from_secs(20));
    h.connect(3, true);
    h.msgs(3, vec![Message::HaveAll]);
    let a = h.msgs(3, vec![Message::Unchoke]);
    let mut pending = requests(&a, 3);
    assert!(pending.iter().all(|b| !silent.contains(b)));
    // Peer 2 has sent nothing for 30 s: its requests are released, and it is asked for
    // one block at a time.
    let a = h.advance(Duration::from_secs(11));
    assert!(requests(&a, 2).len() <= 1, "{:?}", requests(&a, 2));
    assert!(h.t.picker().outstanding(PeerKey(2)).len() <= 1);
    // Peer 3 answers, and gets peer 2's blocks next.
    let mut taken_over = 0;
    while let Some(b) = pending.pop() {
        let a = h.msgs(3, vec![piece(&b)]);
        let next = requests(&a, 3);
        taken_over += next.iter().filter(|b| silent.contains(b)).count();
        pending.extend(next);
    }
    assert!(
        taken_over >= silent.len() - 1,
        "{taken_over} of {} released blocks went to peer 3",
        silent.len()
    );
}

#[test]
fn a_disk_failure_stops_the_torrent_with_a_typed_error() {
    let mut h = Setup::default().build();
    h.connect(2, false);
    let err = TorrentError::DiskFull("disk full writing piece 3 to /x: no space".into());
    let a = h.event(Event::DiskFailed(err.clone()));
    assert!(closed(&a, 2));
    assert_eq!(h.t.state(), &TorrentState::Error(err));
    // It stays an error when shut down.
    h.t.stopped();
    assert!(matches!(h.t.state(), TorrentState::Error(_)));
}

#[test]
fn the_disk_backlog_holds_peer_events_back() {
    let mut h = Setup {
        pieces: 64,
        piece_len: 4 * BLOCK_LEN,
        ..Setup::default()
    }
    .build();
    h.connect(2, true);
    h.msgs(2, vec![Message::HaveAll]);
    let a = h.msgs(2, vec![Message::Unchoke]);
    let mut pending: VecDeque<BlockInfo> = requests(&a, 2).into();
    let mut delivered = 0;
    // The driver hands over peer events only while the proto wants them.
    while h.t.wants_peer_events() {
        let b = pending.pop_front().expect("requests keep coming");
        let a = h.msgs(2, vec![piece(&b)]);
        delivered += a
            .iter()
            .filter(|x| matches!(x, Action::Write { .. }))
            .count();
        pending.extend(requests(&a, 2));
    }
    assert_eq!(delivered, MAX_DISK_INFLIGHT);
    h.event(Event::Written(MAX_DISK_INFLIGHT));
    assert!(h.t.wants_peer_events());
}

#[test]
fn the_same_seed_gives_the_same_decisions() {
    let run = |seed: u64| {
        let mut h = Setup {
            pieces: 64,
            piece_len: BLOCK_LEN,
            seed,
            ..Setup::default()
        }
        .build();
        let mut log = Vec::new();
        for i in 2..6 {
            h.connect(i, true);
            h.msgs(i, vec![Message::HaveAll]);
            let a = h.msgs(i, vec![Message::Unchoke]);
            log.push(format!("{:?}", requests(&a, i)));
        }
        log
    };
    assert_eq!(run(7), run(7));
    assert_ne!(run(7), run(8), "the seed matters");
}

fn offers(actions: &[Action], n: u16) -> Vec<u32> {
    sent(actions, n)
        .iter()
        .filter_map(|c| match c {
            Command::Msg(Message::Have { index }) => Some(*index),
            _ => None,
        })
        .collect()
}

#[test]
fn a_super_seed_offers_pieces_one_at_a_time_and_serves_only_those() {
    let mut h = Setup {
        have: true,
        config: TorrentConfig {
            super_seeding: true,
            ..TorrentConfig::default()
        },
        ..Setup::default()
    }
    .build();
    // A new peer hears of one piece, so it gets interested and in line.
    let a = h.connect(2, false);
    assert!(
        sent_msg(&a, 2, &Message::HaveNone),
        "no bitfield, no have all"
    );
    let mut offered = offers(&a, 2);
    assert_eq!(offered.len(), 1);
    // Unchoked, it is told of a second.
    let a = h.msgs(2, vec![Message::HaveNone, Message::Interested]);
    assert!(sent_msg(&a, 2, &Message::Unchoke));
    offered.extend(offers(&a, 2));
    assert_eq!(offered.len(), SUPER_SEED_OFFERS);
    // A piece it was not offered is refused; an offered one is served.
    let other = (0..8).find(|p| !offered.contains(p)).unwrap();
    let block = |piece: u32| BlockInfo {
        piece: PieceIndex(piece),
        begin: 0,
        len: BLOCK_LEN,
    };
    let a = h.msgs(2, vec![Message::Request(block(other))]);
    assert!(sent_msg(&a, 2, &Message::RejectRequest(block(other))));
    let a = h.msgs(2, vec![Message::Request(block(offered[0]))]);
    assert_eq!(sent(&a, 2), [&Command::Serve(block(offered[0]))]);
    // Once it announces an offer, it is told of a new piece.
    let a = h.msgs(2, vec![Message::Have { index: offered[0] }]);
    let next = offers(&a, 2);
    assert_eq!(next.len(), 1);
    assert!(!offered.contains(&next[0]));
    // Another peer is offered pieces nobody was offered: each once before any twice.
    let a = h.connect(3, false);
    let theirs = offers(&a, 3);
    assert_eq!(theirs.len(), 1);
    assert!(!offered.contains(&theirs[0]) && !next.contains(&theirs[0]));
}

#[test]
fn a_completed_piece_is_announced_to_every_peer_but_seeds() {
    let mut h = Setup {
        pieces: 2,
        piece_len: BLOCK_LEN,
        ..Setup::default()
    }
    .build();
    for i in 2..6 {
        h.connect(i, true);
    }
    // Peers 2 and 3 have piece 0 only, peer 5 is a seed, peer 4 has nothing.
    h.msgs(2, vec![Message::Have { index: 0 }]);
    h.msgs(3, vec![Message::Have { index: 0 }]);
    h.msgs(5, vec![Message::HaveAll]);
    let a = h.msgs(2, vec![Message::Unchoke]);
    let got = h.serve_requests(2, &a);
    assert_eq!(hashes(&got), [PieceIndex(0)]);
    let a = h.event(Event::Hashed {
        piece: PieceIndex(0),
        ok: true,
    });
    let have = Message::Have { index: 0 };
    assert!(sent_msg(&a, 4, &have));
    // Peers that have it still hear (a super-seed counts on it), seeds do not.
    assert!(sent_msg(&a, 2, &have) && sent_msg(&a, 3, &have));
    assert!(!sent_msg(&a, 5, &have), "a seed gains nothing from it");
}

/// A BEP 10 handshake naming `ut_pex`.
fn pex_handshake() -> Message {
    let mut hs = bt_wire::ExtendedHandshake::default();
    hs.extensions
        .insert(bt_wire::extension::UT_PEX.to_owned(), 9);
    hs.to_message()
}

fn pex_sent(actions: &[Action], n: u16) -> usize {
    sent(actions, n)
        .iter()
        .filter(|c| matches!(c, Command::Msg(Message::Extended { id: 9, .. })))
        .count()
}

#[test]
fn pex_tells_peers_of_newcomers_after_a_quiet_spell() {
    let mut h = Setup::default().build();
    for i in [2, 3] {
        h.connect(i, true);
        h.msgs(i, vec![pex_handshake()]);
    }
    let a = h.advance(Duration::from_secs(61));
    assert_eq!((pex_sent(&a, 2), pex_sent(&a, 3)), (1, 1));
    // Nothing changes: nothing is sent (and nothing is looked at again).
    let a = h.advance(Duration::from_secs(180));
    assert_eq!((pex_sent(&a, 2), pex_sent(&a, 3)), (0, 0));
    // A newcomer: both hear of it at their next interval.
    h.connect(4, true);
    h.msgs(4, vec![pex_handshake()]);
    let a = h.advance(Duration::from_secs(61));
    assert_eq!((pex_sent(&a, 2), pex_sent(&a, 3)), (1, 1));
    assert_eq!(pex_sent(&a, 4), 1, "and it hears of them");
}

#[test]
fn skipped_pieces_are_not_fetched_and_wanting_them_again_resumes_the_download() {
    use crate::proto::{piece_priorities, Priority};
    let mut h = Setup::default().build();
    // Two files of four pieces each; the second is skipped.
    let geometry = Geometry::new(u64::from(2 * BLOCK_LEN), [8 * u64::from(BLOCK_LEN); 2]).unwrap();
    let prios = piece_priorities(&geometry, &[Priority::NORMAL, Priority::SKIP]);
    assert_eq!(prios.iter().filter(|p| p.is_wanted()).count(), 4);
    h.event(Event::SetPriorities(prios));
    h.connect(2, true);
    h.msgs(2, vec![Message::HaveAll]);
    let mut a = h.msgs(2, vec![Message::Unchoke]);
    let mut fetched = Vec::new();
    while !requests(&a, 2).is_empty() {
        fetched.extend(requests(&a, 2).iter().map(|b| b.piece));
        a = h.serve_requests(2, &a);
        for p in hashes(&a) {
            a.extend(h.event(Event::Hashed { piece: p, ok: true }));
        }
    }
    fetched.sort();
    fetched.dedup();
    assert_eq!(fetched, (0..4).map(PieceIndex).collect::<Vec<_>>());
    assert_eq!(
        h.t.state(),
        &TorrentState::Seeding,
        "every wanted piece is there"
    );
    // Wanting everything again: it downloads the rest from a peer that has it.
    h.event(Event::SetPriorities(vec![Priority::NORMAL; 8]));
    assert_eq!(h.t.state(), &TorrentState::Downloading);
    let before = h.t.bitfield();
    assert_eq!(before, vec![0b1111_0000]);
}

#[test]
fn a_piece_shared_by_a_skipped_file_and_a_wanted_one_is_wanted() {
    use crate::proto::{piece_priorities, Priority};
    // Pieces of 10 bytes; files of 15, 0, 15 bytes: piece 1 holds the end of the first
    // file and the start of the third.
    let geometry = Geometry::new(10, [15, 0, 15]).unwrap();
    let p = piece_priorities(
        &geometry,
        &[Priority::SKIP, Priority::HIGHEST, Priority::NORMAL],
    );
    assert_eq!(p, vec![Priority::SKIP, Priority::NORMAL, Priority::NORMAL]);
}

#[test]
fn peer_summaries_show_what_each_peer_has_and_how_we_stand() {
    let mut h = Setup::default().build();
    h.connect(2, true);
    h.msgs(2, vec![Message::HaveAll]);
    h.connect(3, false);
    h.msgs(3, vec![Message::Have { index: 1 }]);
    let now = h.now;
    let mut s = h.t.peer_summaries(now);
    s.sort_by_key(|p| p.addr);
    assert_eq!(s.len(), 2);
    assert_eq!((s[0].addr, s[0].pieces, s[0].outgoing), (addr(2), 8, true));
    assert!(s[0].am_interested && !s[0].peer_unchoked);
    assert_eq!((s[1].addr, s[1].pieces, s[1].outgoing), (addr(3), 1, false));
}

#[test]
fn a_seed_without_peers_sleeps_until_something_happens() {
    let mut h = Setup {
        have: true,
        ..Setup::default()
    }
    .build();
    assert_eq!(h.t.state(), &TorrentState::Seeding);
    // A tick that finds nothing to do publishes quiet stats; then no timer is asked for.
    assert!(h.t.poll_timeout().is_some(), "a first tick");
    h.advance(Duration::from_secs(1));
    assert_eq!(h.t.poll_timeout(), None, "an idle seed needs no wake-up");
    // Nothing happens however long it sleeps.
    assert!(h.advance(Duration::from_secs(3600)).is_empty());
    // A peer source brings an address: it wakes up and dials.
    let a = h.event(Event::AddPeers(vec![addr(9)]));
    assert!(dials(&a).contains(&addr(9)));
    assert!(h.t.poll_timeout().is_some());
}
