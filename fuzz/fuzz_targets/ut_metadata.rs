//! BEP 9 `ut_metadata` as the engine consumes it: bt-engine's `MetadataAssembler` (and
//! `MetadataResponder`) driven by a script of peer events read from the input, with the
//! peers' extended handshakes and `ut_metadata` messages decoded from input bytes.
//!
//! The torrent is a fixed 4-piece info dictionary. Four hostile peer slots say whatever
//! the input says; an honest peer serves the real dictionary through a
//! `MetadataResponder`. Script records (`op` byte: `op % 8` is the kind, `(op >> 3) % 4`
//! the hostile slot):
//!
//! | kind | record | what happens |
//! |---|---|---|
//! | 0 | `op len:u16be payload` | the slot connects: payload decoded as an extended handshake |
//! | 1 | `op len:u16be payload` | the slot sends a `ut_metadata` message decoded from payload |
//! | 2 | `op` | the slot's connection closes |
//! | 3 | `op secs:u8` | time passes; `handle_timeout` |
//! | 4 | `op` | an honest peer connects |
//! | 5 | `op` | honest peers answer what they were asked |
//! | 6 | `op piece:u8 fill:u8` | the slot sends a forged piece of the right length |
//! | 7 | `op piece:u8` | the slot sends the true piece |
//!
//! Checks: no panic; requests go only to ready peers, under the id they announced, for
//! pieces inside the size they announced; an honest peer is never distrusted; `Done` is
//! the true dictionary; afterwards, with the hostile peers gone and a fresh honest peer
//! connected, the fetch always completes, and the result builds a `Metainfo`. The whole
//! input is also tried as an info dictionary (`metainfo_from_info`).
#![no_main]

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use bt_engine::proto::metadata::{
    metainfo_from_info, piece_count, piece_len, AssemblerAction, AssemblerEvent, MetadataAssembler,
    MetadataConfig, SourceKey,
};
use bt_engine::proto::ut_metadata::MetadataResponder;
use bt_meta::InfoHash;
use bt_wire::extension::UT_METADATA;
use bt_wire::{ExtendedHandshake, MetadataMessage};
use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use sha1::{Digest, Sha1};

/// The `ut_metadata` id honest peers announce.
const HONEST_ID: u8 = 7;

/// A valid single-file info dictionary of 4 metadata pieces (2500 piece hashes).
fn info() -> &'static Bytes {
    static INFO: OnceLock<Bytes> = OnceLock::new();
    INFO.get_or_init(|| {
        let pieces: Vec<u8> = (0..2500u32 * 20).map(|i| (i % 251) as u8).collect();
        let length = 2500u64 * 16384 - 100;
        let mut d =
            format!("d6:lengthi{length}e4:name4:fuzz12:piece lengthi16384e6:pieces").into_bytes();
        d.extend_from_slice(format!("{}:", pieces.len()).as_bytes());
        d.extend_from_slice(&pieces);
        d.push(b'e');
        Bytes::from(d)
    })
}

/// A connection the harness opened and has not seen closed.
struct Conn {
    honest: bool,
    ut_metadata: u8,
    size: usize,
    responder: MetadataResponder,
    /// Pieces the assembler asked this peer for, not answered yet.
    asked: BTreeSet<u32>,
}

struct Harness {
    asm: MetadataAssembler,
    info_hash: InfoHash,
    now: Instant,
    next_key: SourceKey,
    /// Ready connections, by key.
    open: BTreeMap<SourceKey, Conn>,
    /// The current connection of each hostile slot (possibly closed since).
    slots: [Option<SourceKey>; 4],
    done: Option<Bytes>,
}

impl Harness {
    fn new() -> Self {
        let info_hash = InfoHash(Sha1::digest(info()).into());
        let now = Instant::now();
        Harness {
            asm: MetadataAssembler::new(info_hash, &MetadataConfig::default()),
            info_hash,
            now,
            next_key: 0,
            open: BTreeMap::new(),
            slots: [None; 4],
            done: None,
        }
    }

    fn event(&mut self, ev: AssemblerEvent) {
        self.asm.handle_event(self.now, ev);
        self.drain();
    }

    /// Checks and applies every pending action.
    fn drain(&mut self) {
        while let Some(action) = self.asm.poll_action() {
            match action {
                AssemblerAction::Request {
                    peer,
                    ut_metadata,
                    piece,
                } => {
                    let c = self.open.get_mut(&peer).expect("request to a ready peer");
                    assert_eq!(ut_metadata, c.ut_metadata);
                    assert!((piece as usize) < piece_count(c.size), "piece {piece}");
                    assert!(c.asked.insert(piece), "piece {piece} asked twice");
                }
                AssemblerAction::Close {
                    peer,
                    reason,
                    distrust,
                } => {
                    if let Some(c) = self.open.remove(&peer) {
                        assert!(!(c.honest && distrust), "honest peer distrusted: {reason}");
                    }
                }
                AssemblerAction::Done(bytes) => {
                    assert!(self.done.is_none(), "done twice");
                    assert_eq!(&bytes, info());
                    self.done = Some(bytes);
                }
            }
        }
    }

    /// Opens a connection: the driver reports its extended handshake.
    fn connect(&mut self, addr: SocketAddr, hs: &ExtendedHandshake, honest: bool) -> SourceKey {
        let key = self.next_key;
        self.next_key += 1;
        let ut_metadata = hs.id(UT_METADATA);
        if let (Some(id), Some(size)) = (ut_metadata, hs.metadata_size) {
            let conn = Conn {
                honest,
                ut_metadata: id,
                size: size as usize,
                responder: MetadataResponder::new(info().len()),
                asked: BTreeSet::new(),
            };
            self.open.insert(key, conn);
        }
        self.event(AssemblerEvent::PeerReady {
            peer: key,
            addr,
            ut_metadata,
            metadata_size: hs.metadata_size,
        });
        key
    }

    fn connect_honest(&mut self) {
        let mut hs = ExtendedHandshake::default();
        hs.extensions.insert(UT_METADATA.into(), HONEST_ID);
        hs.metadata_size = Some(info().len() as u32);
        self.connect(SocketAddr::from(([127, 0, 0, 1], 6881)), &hs, true);
    }

    fn close(&mut self, key: SourceKey) {
        self.open.remove(&key);
        self.event(AssemblerEvent::PeerClosed { peer: key });
    }

    /// A `ut_metadata` message from `peer`, as the driver maps it.
    fn message(&mut self, peer: SourceKey, msg: MetadataMessage) {
        if let Some(c) = self.open.get_mut(&peer) {
            if let MetadataMessage::Data { piece, .. } | MetadataMessage::Reject { piece } = msg {
                c.asked.remove(&piece);
            }
        }
        match msg {
            MetadataMessage::Data {
                piece,
                total_size,
                data,
            } => self.event(AssemblerEvent::Data {
                peer,
                piece,
                total_size,
                data,
            }),
            MetadataMessage::Reject { piece } => self.event(AssemblerEvent::Reject { peer, piece }),
            MetadataMessage::Request { piece } => {
                // A fetching node has no metadata to serve, but the responder must cope
                // with any request against the real dictionary.
                if let Some(c) = self.open.get_mut(&peer) {
                    check_reply(piece, c.responder.respond(Some(info()), &msg));
                }
            }
            MetadataMessage::Unknown { .. } => {}
        }
    }

    /// Honest peers answer every request they hold, through the wire encoding.
    fn answer(&mut self) {
        let mut replies = Vec::new();
        for (&key, c) in self.open.iter_mut().filter(|(_, c)| c.honest) {
            for piece in std::mem::take(&mut c.asked) {
                let req = MetadataMessage::Request { piece };
                let reply = c.responder.respond(Some(info()), &req);
                check_reply(piece, reply.clone());
                if let Some(reply) = reply {
                    replies.push((key, reply.encode()));
                }
            }
        }
        for (key, payload) in replies {
            let msg = MetadataMessage::decode(&payload).expect("our reply decodes");
            self.message(key, msg);
        }
    }
}

/// A responder's reply to a request for `piece` is that piece of the dictionary, or a
/// reject.
fn check_reply(piece: u32, reply: Option<MetadataMessage>) {
    let info = info();
    match reply {
        Some(MetadataMessage::Data {
            piece: p,
            total_size,
            data,
        }) => {
            assert_eq!(p, piece);
            assert_eq!(total_size as usize, info.len());
            let start = piece as usize * 16384;
            assert_eq!(data.len(), piece_len(info.len(), piece as usize));
            assert_eq!(&data[..], &info[start..start + data.len()]);
        }
        Some(MetadataMessage::Reject { piece: p }) => assert_eq!(p, piece),
        other => panic!("reply to a request: {other:?}"),
    }
}

/// Reads `len:u16be payload` (the payload cut short at the end of the input).
fn payload<'a>(input: &mut &'a [u8]) -> &'a [u8] {
    let len = match input {
        [a, b, ..] => usize::from(u16::from_be_bytes([*a, *b])),
        _ => 0,
    };
    let rest = input.get(2..).unwrap_or_default();
    let (p, rest) = rest.split_at(len.min(rest.len()));
    *input = rest;
    p
}

fn byte(input: &mut &[u8]) -> u8 {
    match input.split_first() {
        Some((&b, rest)) => {
            *input = rest;
            b
        }
        None => 0,
    }
}

fuzz_target!(|data: &[u8]| {
    // The whole input as a fetched info dictionary.
    let ih = InfoHash(Sha1::digest(data).into());
    if let Ok(m) = metainfo_from_info(ih, data, &[]) {
        assert_eq!(m.raw_info(), data);
        assert_eq!(m.info_hash, Some(ih));
    }

    let mut h = Harness::new();
    let mut input = data;
    while let Some(op) = input.first().copied() {
        input = &input[1..];
        let slot = usize::from(op >> 3) % 4;
        let addr = SocketAddr::from(([127, 0, 0, 10 + slot as u8], 6881));
        match op % 8 {
            0 => {
                let p = payload(&mut input);
                if let Some(old) = h.slots[slot].take() {
                    h.close(old);
                }
                // A handshake that does not decode ends the connection before it is
                // ready: the assembler never hears of it.
                if let Ok(hs) = ExtendedHandshake::decode(p) {
                    h.slots[slot] = Some(h.connect(addr, &hs, false));
                }
            }
            1 => {
                let p = Bytes::copy_from_slice(payload(&mut input));
                if let (Some(key), Ok(msg)) = (h.slots[slot], MetadataMessage::decode(&p)) {
                    h.message(key, msg);
                }
            }
            2 => {
                if let Some(key) = h.slots[slot].take() {
                    h.close(key);
                }
            }
            3 => {
                h.now += Duration::from_secs(u64::from(byte(&mut input)));
                h.asm.handle_timeout(h.now);
                h.drain();
            }
            4 => h.connect_honest(),
            5 => h.answer(),
            kind => {
                // 6: forged, 7: true.
                let piece = byte(&mut input);
                let fill = (kind == 6).then(|| byte(&mut input));
                let Some(key) = h.slots[slot] else { continue };
                let size = h.open.get(&key).map_or(info().len(), |c| c.size);
                let len = piece_len(size, usize::from(piece));
                let start = usize::from(piece) * 16384;
                let data = match fill {
                    Some(f) => Bytes::from(vec![f; len]),
                    None => info().slice(start.min(info().len())..(start + len).min(info().len())),
                };
                h.message(
                    key,
                    MetadataMessage::Data {
                        piece: u32::from(piece),
                        total_size: size as u32,
                        data,
                    },
                );
            }
        }
        if let Some(t) = h.asm.poll_timeout() {
            assert!(t > h.now, "timeout due but not handled");
        }
    }

    // The hostile peers leave, an honest one comes: the fetch must finish.
    for slot in 0..4 {
        if let Some(key) = h.slots[slot].take() {
            h.close(key);
        }
    }
    h.connect_honest();
    for _ in 0..64 {
        if h.done.is_some() {
            break;
        }
        h.answer();
    }
    let info = h.done.as_ref().expect("an honest peer completes the fetch");
    let m = metainfo_from_info(h.info_hash, info, &[]).expect("the real dictionary builds");
    assert_eq!(m.info.name, "fuzz");
});
