//! Golden byte strings for every message, and the decoder fed a stream of all of them
//! split at every offset and in random chunks.

use bt_meta::{BlockInfo, PieceIndex};
use bt_wire::{Message, MessageCodec, WireError};
use bytes::{Bytes, BytesMut};
use rand::{rngs::StdRng, Rng, SeedableRng};
use tokio_util::codec::{Decoder, Encoder};

/// Parses hex with optional whitespace.
fn hex(s: &str) -> Vec<u8> {
    let digits: Vec<u8> = s.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    assert!(digits.len() % 2 == 0, "odd hex: {s}");
    digits
        .chunks(2)
        .map(|p| u8::from_str_radix(std::str::from_utf8(p).unwrap(), 16).unwrap())
        .collect()
}

const BLOCK: BlockInfo = BlockInfo {
    piece: PieceIndex(1),
    begin: 0x4000,
    len: 0x4000,
};

fn golden() -> Vec<(Message, Vec<u8>)> {
    let ext_handshake = b"d1:md6:ut_pexi1eee";
    let mut extended = hex("00000014 14 00");
    extended.extend_from_slice(ext_handshake);
    vec![
        (Message::KeepAlive, hex("00000000")),
        (Message::Choke, hex("00000001 00")),
        (Message::Unchoke, hex("00000001 01")),
        (Message::Interested, hex("00000001 02")),
        (Message::NotInterested, hex("00000001 03")),
        (
            Message::Have { index: 0x01020304 },
            hex("00000005 04 01020304"),
        ),
        (
            Message::Bitfield(Bytes::from_static(&[0xff, 0x80])),
            hex("00000003 05 ff80"),
        ),
        (Message::Bitfield(Bytes::new()), hex("00000001 05")),
        (
            Message::Request(BLOCK),
            hex("0000000d 06 00000001 00004000 00004000"),
        ),
        (
            Message::Piece {
                index: 1,
                begin: 0x4000,
                data: Bytes::from_static(b"abcd"),
            },
            hex("0000000d 07 00000001 00004000 61626364"),
        ),
        (
            Message::Piece {
                index: 0xffffffff,
                begin: 0,
                data: Bytes::new(),
            },
            hex("00000009 07 ffffffff 00000000"),
        ),
        (
            Message::Cancel(BLOCK),
            hex("0000000d 08 00000001 00004000 00004000"),
        ),
        (Message::Port(6881), hex("00000003 09 1ae1")),
        (Message::Suggest { index: 7 }, hex("00000005 0d 00000007")),
        (Message::HaveAll, hex("00000001 0e")),
        (Message::HaveNone, hex("00000001 0f")),
        (
            Message::RejectRequest(BLOCK),
            hex("0000000d 10 00000001 00004000 00004000"),
        ),
        (
            Message::AllowedFast { index: 9 },
            hex("00000005 11 00000009"),
        ),
        (
            Message::Extended {
                id: 0,
                payload: Bytes::from_static(ext_handshake),
            },
            extended,
        ),
        (
            Message::Extended {
                id: 3,
                payload: Bytes::new(),
            },
            hex("00000002 14 03"),
        ),
        // BEP 52 hash request (id 21): unknown here, passed through for the engine to ignore.
        (
            Message::Unknown {
                id: 21,
                payload: Bytes::from_static(&[1, 2, 3]),
            },
            hex("00000004 15 010203"),
        ),
        (
            Message::Unknown {
                id: 0xff,
                payload: Bytes::new(),
            },
            hex("00000001 ff"),
        ),
    ]
}

#[test]
fn golden_encode() {
    for (msg, bytes) in golden() {
        assert_eq!(msg.to_bytes()[..], bytes[..], "{msg:?}");
        assert_eq!(msg.encoded_len(), bytes.len(), "{msg:?}");
        let mut buf = BytesMut::new();
        MessageCodec::new().encode(msg.clone(), &mut buf).unwrap();
        assert_eq!(buf[..], bytes[..], "{msg:?}");
    }
}

#[test]
fn golden_decode() {
    for (msg, bytes) in golden() {
        let mut buf = BytesMut::from(&bytes[..]);
        let got = MessageCodec::new().decode(&mut buf).unwrap();
        assert_eq!(got.as_ref(), Some(&msg), "{}", bytes.escape_ascii());
        assert!(buf.is_empty());
        // Every strict prefix is incomplete, not an error, and consumes nothing.
        for n in 0..bytes.len() {
            let mut buf = BytesMut::from(&bytes[..n]);
            assert!(
                MessageCodec::new().decode(&mut buf).unwrap().is_none(),
                "{msg:?} prefix {n}"
            );
            assert_eq!(buf.len(), n);
        }
    }
}

/// Every golden message in a row; with `big_block`, also a 16 KiB `piece` so frames span
/// many chunks.
fn stream(big_block: bool) -> (Vec<Message>, Vec<u8>) {
    let mut msgs = Vec::new();
    let mut bytes = Vec::new();
    for (m, b) in golden() {
        msgs.push(m);
        bytes.extend_from_slice(&b);
    }
    if big_block {
        let big = Message::Piece {
            index: 5,
            begin: 0,
            data: Bytes::from((0..16384u32).map(|i| i as u8).collect::<Vec<_>>()),
        };
        bytes.extend_from_slice(&big.to_bytes());
        msgs.push(big);
    }
    msgs.push(Message::KeepAlive);
    bytes.extend_from_slice(&[0, 0, 0, 0]);
    (msgs, bytes)
}

/// Feeds `chunks` one after the other, decoding as much as possible after each.
fn feed<'a>(chunks: impl IntoIterator<Item = &'a [u8]>) -> Vec<Message> {
    let mut codec = MessageCodec::new();
    let mut buf = BytesMut::new();
    let mut out = Vec::new();
    for chunk in chunks {
        buf.extend_from_slice(chunk);
        while let Some(m) = codec.decode(&mut buf).unwrap() {
            out.push(m);
        }
    }
    assert!(buf.is_empty());
    assert!(codec.decode_eof(&mut buf).unwrap().is_none());
    out
}

#[test]
fn whole_stream_in_one_read() {
    let (msgs, bytes) = stream(true);
    assert_eq!(feed([&bytes[..]]), msgs);
}

#[test]
fn stream_split_at_every_offset() {
    let (msgs, bytes) = stream(false);
    for k in 0..=bytes.len() {
        let (a, b) = bytes.split_at(k);
        assert_eq!(feed([a, b]), msgs, "split at {k}");
    }
}

#[test]
fn stream_in_random_chunks() {
    let (msgs, bytes) = stream(true);
    let mut rng = StdRng::seed_from_u64(0x6274_7769_7265);
    for round in 0..120 {
        let max_chunk = [1, 2, 3, 7, 13, 64, 1000, 20000][round % 8];
        let mut chunks = Vec::new();
        let mut rest = &bytes[..];
        while !rest.is_empty() {
            let n = rng.gen_range(1..=max_chunk.min(rest.len()));
            let (a, b) = rest.split_at(n);
            chunks.push(a);
            rest = b;
        }
        assert_eq!(feed(chunks), msgs, "round {round}");
    }
}

#[test]
fn truncated_stream_at_eof_is_an_error() {
    let (_, bytes) = stream(true);
    let mut codec = MessageCodec::new();
    let mut buf = BytesMut::from(&bytes[..bytes.len() - 1]);
    while codec.decode(&mut buf).unwrap().is_some() {}
    assert!(matches!(codec.decode_eof(&mut buf), Err(WireError::Io(_))));
}

#[test]
fn wrong_lengths_for_every_fixed_size_message() {
    // (id, name, correct payload length)
    let fixed = [
        (0u8, "choke", 0u32),
        (1, "unchoke", 0),
        (2, "interested", 0),
        (3, "not interested", 0),
        (4, "have", 4),
        (6, "request", 12),
        (8, "cancel", 12),
        (9, "port", 2),
        (13, "suggest piece", 4),
        (14, "have all", 0),
        (15, "have none", 0),
        (16, "reject request", 12),
        (17, "allowed fast", 4),
    ];
    for (id, name, good) in fixed {
        for bad in [good.wrapping_sub(1), good + 1, good + 100] {
            if bad == u32::MAX {
                continue;
            }
            let mut frame = (bad + 1).to_be_bytes().to_vec();
            frame.push(id);
            frame.resize(frame.len() + bad as usize, 0);
            let mut buf = BytesMut::from(&frame[..]);
            match MessageCodec::new().decode(&mut buf) {
                Err(e @ WireError::PayloadLength { .. }) => {
                    let WireError::PayloadLength {
                        id: eid,
                        name: ename,
                        len,
                        ..
                    } = e
                    else {
                        unreachable!()
                    };
                    assert_eq!((eid, ename, len), (id, name, bad));
                    assert!(e.to_string().contains(name), "{e}");
                }
                other => panic!("{name} with {bad} bytes: {other:?}"),
            }
        }
    }
}
