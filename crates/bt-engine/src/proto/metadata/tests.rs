//! Tests of the assembler, in virtual time.

use bt_bencode::{Dict, Value};
use rand::{Rng, SeedableRng};

use super::*;

const K16: usize = METADATA_PIECE_LEN;

/// A valid info dictionary of about `pieces * 20` bytes (the `pieces` string dominates).
pub(crate) fn info_dict(pieces: usize, seed: u64) -> Vec<u8> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut hashes = vec![0u8; pieces * 20];
    rng.fill(&mut hashes[..]);
    let mut info = Dict::new();
    info.insert(&b"length"[..], Value::Int((pieces * K16) as i64));
    info.insert(&b"name"[..], Value::owned_bytes(&b"payload.bin"[..]));
    info.insert(&b"piece length"[..], Value::Int(K16 as i64));
    info.insert(&b"pieces"[..], Value::owned_bytes(hashes));
    Value::Dict(info).encode()
}

pub(crate) fn hash_of(info: &[u8]) -> InfoHash {
    InfoHash(Sha1::digest(info).into())
}

/// The same length, one byte flipped near the end of every 16 KiB piece.
pub(crate) fn corrupt(info: &[u8]) -> Vec<u8> {
    let mut bad = info.to_vec();
    for chunk in bad.chunks_mut(K16) {
        let i = chunk.len() - 3;
        chunk[i] ^= 0x55;
    }
    bad
}

fn addr(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

// ---------------------------------------------------------------------------------------
// Assembler
// ---------------------------------------------------------------------------------------

/// An assembler driven in virtual time.
struct Harness {
    asm: MetadataAssembler,
    now: Instant,
}

impl Harness {
    fn new(info_hash: InfoHash) -> Self {
        Harness {
            asm: MetadataAssembler::new(info_hash, &MetadataConfig::default()),
            now: Instant::now(),
        }
    }

    fn ready(&mut self, peer: SourceKey, size: usize) {
        self.asm.handle_event(
            self.now,
            AssemblerEvent::PeerReady {
                peer,
                addr: addr(1000 + peer as u16),
                ut_metadata: Some(2),
                metadata_size: Some(size as u32),
            },
        );
    }

    fn actions(&mut self) -> Vec<AssemblerAction> {
        std::iter::from_fn(|| self.asm.poll_action()).collect()
    }

    /// Requests among `actions`, as (peer, piece).
    fn requests(actions: &[AssemblerAction]) -> Vec<(SourceKey, u32)> {
        actions
            .iter()
            .filter_map(|a| match a {
                AssemblerAction::Request { peer, piece, .. } => Some((*peer, *piece)),
                _ => None,
            })
            .collect()
    }

    fn send(&mut self, peer: SourceKey, piece: u32, content: &[u8]) {
        let start = (piece as usize * K16).min(content.len());
        let end = (start + K16).min(content.len());
        self.asm.handle_event(
            self.now,
            AssemblerEvent::Data {
                peer,
                piece,
                total_size: content.len() as u32,
                data: Bytes::copy_from_slice(&content[start..end]),
            },
        );
    }

    /// Answers every request in `actions` from `serve(peer)`, repeatedly, until nothing
    /// more is asked; returns every action seen.
    fn serve_all(
        &mut self,
        mut actions: Vec<AssemblerAction>,
        serve: impl Fn(SourceKey) -> Vec<u8>,
    ) -> Vec<AssemblerAction> {
        let mut seen = Vec::new();
        while !actions.is_empty() {
            for (peer, piece) in Self::requests(&actions) {
                self.send(peer, piece, &serve(peer));
            }
            seen.extend(actions);
            actions = self.actions();
        }
        seen
    }
}

/// The info-hash of the dictionary in a `Done` action (hashes keep failure messages short).
fn done_info(actions: &[AssemblerAction]) -> Option<InfoHash> {
    actions.iter().find_map(|a| match a {
        AssemblerAction::Done(info) => Some(hash_of(info)),
        _ => None,
    })
}

fn closes(actions: &[AssemblerAction]) -> Vec<(SourceKey, DropReason, bool)> {
    actions
        .iter()
        .filter_map(|a| match a {
            AssemblerAction::Close {
                peer,
                reason,
                distrust,
            } => Some((*peer, reason.clone(), *distrust)),
            _ => None,
        })
        .collect()
}

#[test]
fn piece_geometry() {
    assert_eq!(piece_count(1), 1);
    assert_eq!(piece_count(K16), 1);
    assert_eq!(piece_count(K16 + 1), 2);
    assert_eq!(piece_len(K16 + 1, 0), K16);
    assert_eq!(piece_len(K16 + 1, 1), 1);
    assert_eq!(piece_len(K16 + 1, 2), 0);
    assert_eq!(piece_count(MAX_METADATA_LEN), 2048);
}

#[test]
fn one_peer_serves_every_piece() {
    let info = info_dict(2500, 1);
    assert_eq!(piece_count(info.len()), 4);
    let mut h = Harness::new(hash_of(&info));
    h.ready(0, info.len());
    let first = h.actions();
    assert_eq!(
        Harness::requests(&first),
        vec![(0, 0), (0, 1), (0, 2), (0, 3)]
    );
    let all = h.serve_all(first, |_| info.clone());
    assert_eq!(done_info(&all), Some(hash_of(&info)));
}

#[test]
fn pieces_are_spread_over_peers_and_capped_per_peer() {
    let info = info_dict(8000, 2); // 160 KB: 10 pieces
    assert_eq!(piece_count(info.len()), 10);
    let mut h = Harness::new(hash_of(&info));
    h.ready(0, info.len());
    h.ready(1, info.len());
    h.ready(2, info.len());
    let mut reqs = Harness::requests(&h.actions());
    // Peer 0 took four when it alone was ready, then 1 and 2 got four each.
    reqs.sort();
    let per = |p| reqs.iter().filter(|(q, _)| *q == p).count();
    assert_eq!((per(0), per(1), per(2)), (4, 4, 2));
    let all = h.serve_all(
        reqs.iter()
            .map(|&(peer, piece)| AssemblerAction::Request {
                peer,
                ut_metadata: 2,
                piece,
            })
            .collect(),
        |_| info.clone(),
    );
    assert_eq!(done_info(&all), Some(hash_of(&info)));
}

#[test]
fn a_lone_corrupt_peer_is_distrusted_and_a_good_one_used() {
    let info = info_dict(2500, 3);
    let bad = corrupt(&info);
    let mut h = Harness::new(hash_of(&info));
    h.ready(0, info.len());
    let acts = h.actions();
    let all = h.serve_all(acts, |_| bad.clone());
    assert_eq!(done_info(&all), None);
    assert_eq!(closes(&all), vec![(0, DropReason::HashMismatch, true)]);
    assert!(h.asm.is_distrusted(&addr(1000)));
    // The distrusted address is refused on a new connection.
    h.asm.handle_event(
        h.now,
        AssemblerEvent::PeerReady {
            peer: 5,
            addr: addr(1000),
            ut_metadata: Some(2),
            metadata_size: Some(info.len() as u32),
        },
    );
    assert_eq!(
        closes(&h.actions()),
        vec![(5, DropReason::Distrusted, false)]
    );
    h.ready(1, info.len());
    let acts = h.actions();
    let all = h.serve_all(acts, |_| info.clone());
    assert_eq!(done_info(&all), Some(hash_of(&info)));
}

#[test]
fn a_mixed_failure_blames_nobody_then_single_sources_find_the_liar() {
    for liar in [0, 1] {
        let info = info_dict(2500, 4);
        let bad = corrupt(&info);
        let mut h = Harness::new(hash_of(&info));
        h.ready(0, info.len());
        h.ready(1, info.len());
        // Peer 0 got pieces 0-3 when it alone was ready; move two to peer 1 by rejects
        // so both contribute.
        let first = Harness::requests(&h.actions());
        assert_eq!(first, vec![(0, 0), (0, 1), (0, 2), (0, 3)]);
        h.asm
            .handle_event(h.now, AssemblerEvent::Reject { peer: 0, piece: 2 });
        h.asm
            .handle_event(h.now, AssemblerEvent::Reject { peer: 0, piece: 3 });
        let moved = Harness::requests(&h.actions());
        assert_eq!(moved, vec![(1, 2), (1, 3)]);
        let serve = |p: SourceKey| if p == liar { bad.clone() } else { info.clone() };
        for (peer, piece) in [(0, 0), (0, 1), (1, 2), (1, 3)] {
            h.send(peer, piece, &serve(peer));
        }
        let after_mix = h.actions();
        assert!(closes(&after_mix).is_empty(), "nobody is blamed for a mix");
        assert_eq!(done_info(&after_mix), None);
        // Single-source attempts: every request of the next attempt goes to one peer.
        let reqs = Harness::requests(&after_mix);
        assert!(reqs.iter().all(|(p, _)| *p == reqs[0].0), "{reqs:?}");
        let all = h.serve_all(after_mix, serve);
        assert_eq!(done_info(&all), Some(hash_of(&info)), "liar {liar}");
        let blamed = closes(&all);
        if reqs[0].0 == liar {
            assert_eq!(blamed, vec![(liar, DropReason::HashMismatch, true)]);
        } else {
            assert!(blamed.is_empty());
        }
        assert!(!h.asm.is_distrusted(&addr(1000 + (1 - liar) as u16)));
    }
}

#[test]
fn bad_handshakes_are_closed() {
    let check = |ut: Option<u8>, size: Option<u32>, reason: DropReason| {
        let mut h = Harness::new(InfoHash([1; 20]));
        h.asm.handle_event(
            h.now,
            AssemblerEvent::PeerReady {
                peer: 9,
                addr: addr(9),
                ut_metadata: ut,
                metadata_size: size,
            },
        );
        assert_eq!(closes(&h.actions()), vec![(9, reason, false)]);
    };
    check(None, Some(100), DropReason::NoUtMetadata);
    check(Some(1), None, DropReason::NoMetadataSize);
    check(Some(1), Some(0), DropReason::BadSize(0));
    let too_big = MAX_METADATA_LEN as u32 + 1;
    check(Some(1), Some(too_big), DropReason::BadSize(too_big));
    check(Some(1), Some(u32::MAX), DropReason::BadSize(u32::MAX));
}

#[test]
fn wrong_pieces_distrust_the_sender() {
    let info = info_dict(2500, 5);
    let cases: [(&str, u32, Bytes); 3] = [
        ("short", info.len() as u32, Bytes::from_static(b"abc")),
        ("long", info.len() as u32, Bytes::from(vec![0u8; K16 + 1])),
        (
            "other total_size",
            info.len() as u32 + 1,
            Bytes::copy_from_slice(&info[..K16]),
        ),
    ];
    for (what, total_size, data) in cases {
        let mut h = Harness::new(hash_of(&info));
        h.ready(0, info.len());
        h.actions();
        h.asm.handle_event(
            h.now,
            AssemblerEvent::Data {
                peer: 0,
                piece: 0,
                total_size,
                data,
            },
        );
        let c = closes(&h.actions());
        assert!(
            matches!(&c[..], [(0, DropReason::BadPiece { piece: 0, .. }, true)]),
            "{what}: {c:?}"
        );
    }
}

#[test]
fn unrequested_and_late_data_is_ignored() {
    let info = info_dict(100, 6);
    let mut h = Harness::new(hash_of(&info));
    h.ready(0, info.len());
    h.ready(1, info.len());
    assert_eq!(Harness::requests(&h.actions()), vec![(0, 0)]);
    // Peer 1 was not asked: ignored, no completion.
    h.send(1, 0, &info);
    assert!(h.actions().is_empty());
    // Out of range piece: ignored.
    h.send(0, 7, &info);
    assert!(h.actions().is_empty());
    h.send(0, 0, &info);
    assert_eq!(done_info(&h.actions()), Some(hash_of(&info)));
}

#[test]
fn unanswered_requests_time_out_and_move_on() {
    let info = info_dict(100, 7);
    let mut h = Harness::new(hash_of(&info));
    h.ready(0, info.len());
    h.ready(1, info.len());
    assert_eq!(Harness::requests(&h.actions()), vec![(0, 0)]);
    let timeout = MetadataConfig::default().request_timeout;
    assert_eq!(h.asm.poll_timeout(), Some(h.now + timeout));
    h.now += timeout - Duration::from_millis(1);
    h.asm.handle_timeout(h.now);
    assert!(h.actions().is_empty());
    h.now += Duration::from_millis(1);
    h.asm.handle_timeout(h.now);
    let acts = h.actions();
    assert_eq!(closes(&acts), vec![(0, DropReason::Timeout, false)]);
    assert_eq!(Harness::requests(&acts), vec![(1, 0)]);
    // The slow peer's late answer changes nothing.
    h.send(0, 0, &info);
    assert!(h.actions().is_empty());
    h.send(1, 0, &info);
    assert!(done_info(&h.actions()).is_some());
}

#[test]
fn too_many_rejects_close_the_peer() {
    let info = info_dict(100, 8);
    let mut h = Harness::new(hash_of(&info));
    h.ready(0, info.len());
    let max = MetadataConfig::default().max_rejects;
    for i in 0..=max {
        assert_eq!(Harness::requests(&h.actions()), vec![(0, 0)], "round {i}");
        h.asm
            .handle_event(h.now, AssemblerEvent::Reject { peer: 0, piece: 0 });
    }
    assert_eq!(
        closes(&h.actions()),
        vec![(0, DropReason::TooManyRejects(max + 1), false)]
    );
}

#[test]
fn a_stalling_peer_with_another_size_gives_way() {
    let info = info_dict(100, 9);
    let mut h = Harness::new(hash_of(&info));
    // A liar announcing another size comes first and takes the attempt.
    h.ready(0, 5 * K16);
    h.ready(1, info.len());
    let reqs = Harness::requests(&h.actions());
    assert!(reqs.iter().all(|(p, _)| *p == 0), "{reqs:?}");
    h.now += MetadataConfig::default().request_timeout;
    h.asm.handle_timeout(h.now);
    let acts = h.actions();
    assert_eq!(closes(&acts), vec![(0, DropReason::Timeout, false)]);
    let all = h.serve_all(acts, |_| info.clone());
    assert_eq!(done_info(&all), Some(hash_of(&info)));
}

#[test]
fn a_closed_peer_returns_its_requests() {
    let info = info_dict(100, 10);
    let mut h = Harness::new(hash_of(&info));
    h.ready(0, info.len());
    h.actions();
    h.asm
        .handle_event(h.now, AssemblerEvent::PeerClosed { peer: 0 });
    assert!(h.actions().is_empty());
    assert_eq!(h.asm.poll_timeout(), None);
    h.ready(1, info.len());
    assert_eq!(Harness::requests(&h.actions()), vec![(1, 0)]);
}

// ---------------------------------------------------------------------------------------
// Building the torrent
// ---------------------------------------------------------------------------------------

#[test]
fn torrent_file_is_canonical_and_keeps_the_info_bytes() {
    let info = info_dict(10, 11);
    let trackers = vec![
        vec!["http://127.0.0.1:1/announce".to_owned()],
        vec!["udp://127.0.0.1:2".to_owned(), String::new()],
        vec![],
    ];
    let bytes = torrent_file(&info, &trackers);
    bt_bencode::decode_strict(&bytes).expect("canonical bencode");
    let meta = metainfo_from_info(hash_of(&info), &info, &trackers).unwrap();
    assert_eq!(meta.raw_info(), &info[..]);
    assert_eq!(meta.info_hash, Some(hash_of(&info)));
    assert_eq!(
        meta.announce.as_deref(),
        Some("http://127.0.0.1:1/announce")
    );
    assert_eq!(
        meta.trackers(),
        vec![
            vec!["http://127.0.0.1:1/announce".to_owned()],
            vec!["udp://127.0.0.1:2".to_owned()]
        ]
    );
    // No trackers: just the info dictionary.
    let bare = torrent_file(&info, &[]);
    let mut expected = b"d4:info".to_vec();
    expected.extend_from_slice(&info);
    expected.push(b'e');
    assert_eq!(bare, expected);
}

#[test]
fn metainfo_from_info_checks_hash_and_validity() {
    let info = info_dict(10, 12);
    assert!(matches!(
        metainfo_from_info(InfoHash([0; 20]), &info, &[]),
        Err(MetadataError::HashMismatch { .. })
    ));
    let junk = b"d4:name1:xe".to_vec();
    assert!(matches!(
        metainfo_from_info(hash_of(&junk), &junk, &[]),
        Err(MetadataError::Invalid { .. })
    ));
}

#[test]
fn metadata_past_the_load_limit_is_refused_naming_the_limit() {
    let huge = vec![b'x'; MAX_METADATA_LEN + 1];
    let err = metainfo_from_info(hash_of(&huge), &huge, &[]).unwrap_err();
    assert!(
        matches!(
            err,
            MetadataError::Invalid {
                source: bt_meta::Error::LimitExceeded {
                    limit: "max_input_len",
                    ..
                },
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("max_input_len"), "{err}");
    // A dictionary right at the limit is parsed like any: here, not a torrent at all.
    let at_limit = vec![b'x'; MAX_METADATA_LEN];
    let err = metainfo_from_info(hash_of(&at_limit), &at_limit, &[]).unwrap_err();
    assert!(!err.to_string().contains("max_input_len"), "{err}");
}
