//! Property tests: round trips, arbitrary chunking, and arbitrary bytes (no panics, no
//! huge buffers, and whatever decodes re-encodes to exactly the bytes consumed).

use bt_meta::{BlockInfo, PieceIndex};
use bt_meta::{InfoHash, PeerId};
use bt_wire::{
    Handshake, HandshakeCodec, Message, MessageCodec, Reserved, WireError, HANDSHAKE_LEN,
};
use bytes::{Bytes, BytesMut};
use proptest::prelude::*;
use tokio_util::codec::{Decoder, Encoder};

const KNOWN_IDS: &[u8] = &[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 13, 14, 15, 16, 17, 20];

fn bytes(max: usize) -> impl Strategy<Value = Bytes> {
    prop::collection::vec(any::<u8>(), 0..=max).prop_map(Bytes::from)
}

fn block() -> impl Strategy<Value = BlockInfo> {
    (any::<u32>(), any::<u32>(), any::<u32>()).prop_map(|(index, begin, length)| BlockInfo {
        piece: PieceIndex(index),
        begin,
        len: length,
    })
}

fn message() -> impl Strategy<Value = Message> {
    prop_oneof![
        Just(Message::KeepAlive),
        Just(Message::Choke),
        Just(Message::Unchoke),
        Just(Message::Interested),
        Just(Message::NotInterested),
        any::<u32>().prop_map(|index| Message::Have { index }),
        bytes(300).prop_map(Message::Bitfield),
        block().prop_map(Message::Request),
        (any::<u32>(), any::<u32>(), bytes(300)).prop_map(|(index, begin, data)| Message::Piece {
            index,
            begin,
            data
        }),
        block().prop_map(Message::Cancel),
        any::<u16>().prop_map(Message::Port),
        any::<u32>().prop_map(|index| Message::Suggest { index }),
        Just(Message::HaveAll),
        Just(Message::HaveNone),
        block().prop_map(Message::RejectRequest),
        any::<u32>().prop_map(|index| Message::AllowedFast { index }),
        (any::<u8>(), bytes(100)).prop_map(|(id, payload)| Message::Extended { id, payload }),
        (
            any::<u8>().prop_filter("unknown id", |id| !KNOWN_IDS.contains(id)),
            bytes(100)
        )
            .prop_map(|(id, payload)| Message::Unknown { id, payload }),
    ]
}

fn handshake() -> impl Strategy<Value = Handshake> {
    (any::<[u8; 8]>(), any::<[u8; 20]>(), any::<[u8; 20]>()).prop_map(|(r, h, p)| Handshake {
        reserved: Reserved(r),
        info_hash: InfoHash(h),
        peer_id: PeerId(p),
    })
}

/// Splits `bytes` at the given (sorted, deduplicated) cut points.
fn chunks(bytes: &[u8], mut cuts: Vec<usize>) -> Vec<&[u8]> {
    cuts.iter_mut().for_each(|c| *c %= bytes.len() + 1);
    cuts.sort_unstable();
    cuts.dedup();
    let mut out = Vec::new();
    let mut start = 0;
    for c in cuts.into_iter().chain([bytes.len()]) {
        out.push(&bytes[start..c]);
        start = c;
    }
    out
}

/// Upper bound on the capacity a decode loop may reach: at most twice what the input or
/// one frame needs (Vec-style doubling), never what a length prefix merely claims.
fn capacity_bound(max_frame_len: u32, input_len: usize) -> usize {
    2 * (max_frame_len as usize + 4 + input_len) + 64
}

proptest! {
    #[test]
    fn message_round_trip(msg in message()) {
        let mut buf = BytesMut::new();
        MessageCodec::new().encode(&msg, &mut buf).unwrap();
        prop_assert_eq!(buf.len(), msg.encoded_len());
        let got = MessageCodec::new().decode(&mut buf).unwrap();
        prop_assert_eq!(got, Some(msg));
        prop_assert!(buf.is_empty());
    }

    #[test]
    fn message_sequence_round_trip_in_chunks(
        msgs in prop::collection::vec(message(), 0..30),
        cuts in prop::collection::vec(any::<usize>(), 0..40),
    ) {
        let mut wire = BytesMut::new();
        let mut codec = MessageCodec::new();
        for m in &msgs {
            codec.encode(m, &mut wire).unwrap();
        }
        let mut buf = BytesMut::new();
        let mut got = Vec::new();
        for chunk in chunks(&wire, cuts) {
            buf.extend_from_slice(chunk);
            while let Some(m) = codec.decode(&mut buf).unwrap() {
                got.push(m);
            }
        }
        prop_assert!(buf.is_empty());
        prop_assert_eq!(got, msgs);
    }

    #[test]
    fn handshake_round_trip(hs in handshake(), cuts in prop::collection::vec(any::<usize>(), 0..5), tail in bytes(20)) {
        let mut wire = BytesMut::new();
        HandshakeCodec.encode(hs, &mut wire).unwrap();
        prop_assert_eq!(wire.len(), HANDSHAKE_LEN);
        wire.extend_from_slice(&tail);
        let mut buf = BytesMut::new();
        let mut got = None;
        for chunk in chunks(&wire, cuts) {
            buf.extend_from_slice(chunk);
            if got.is_none() {
                got = HandshakeCodec.decode(&mut buf).unwrap();
            }
        }
        prop_assert_eq!(got, Some(hs));
        prop_assert_eq!(&buf[..], &tail[..]);
    }

    /// Arbitrary bytes through the message codec: no panic, bounded buffers, and every
    /// message that decodes re-encodes to exactly the bytes it was decoded from.
    #[test]
    fn garbage_into_message_codec(
        input in prop::collection::vec(any::<u8>(), 0..2048),
        cuts in prop::collection::vec(any::<usize>(), 0..10),
        max in prop_oneof![Just(MessageCodec::DEFAULT_MAX_FRAME_LEN), 0u32..64, Just(16393u32)],
    ) {
        let mut codec = MessageCodec::with_max_frame_len(max);
        let mut buf = BytesMut::new();
        let mut consumed = Vec::new();
        let mut reencoded = BytesMut::new();
        let mut fed = 0;
        'outer: for chunk in chunks(&input, cuts) {
            buf.extend_from_slice(chunk);
            fed += chunk.len();
            loop {
                let before = buf.len();
                let result = codec.decode(&mut buf);
                prop_assert!(buf.capacity() <= capacity_bound(max, input.len()), "capacity {}", buf.capacity());
                match result {
                    Ok(Some(m)) => {
                        let start = fed - before;
                        consumed.extend_from_slice(&input[start..start + (before - buf.len())]);
                        m.encode(&mut reencoded);
                    }
                    Ok(None) => break,
                    Err(e) => {
                        // Errors carry their detail and render without panicking.
                        let _ = e.to_string();
                        match e {
                            WireError::FrameTooLarge { len, max: m } => prop_assert!(len > u64::from(m)),
                            WireError::PayloadLength { .. } => {}
                            other => prop_assert!(false, "unexpected {other:?}"),
                        }
                        break 'outer;
                    }
                }
            }
        }
        prop_assert_eq!(&reencoded[..], &consumed[..]);
    }

    /// Well-framed frames with arbitrary ids and payloads: each one decodes to a message
    /// that re-encodes to the same bytes, or is rejected for its payload length.
    #[test]
    fn arbitrary_frames(frames in prop::collection::vec((any::<u8>(), prop::collection::vec(any::<u8>(), 0..20)), 0..40)) {
        let mut codec = MessageCodec::new();
        for (id, payload) in frames {
            let mut frame = BytesMut::new();
            frame.extend_from_slice(&(payload.len() as u32 + 1).to_be_bytes());
            frame.extend_from_slice(&[id]);
            frame.extend_from_slice(&payload);
            let wire = frame.clone().freeze();
            match codec.decode(&mut frame) {
                Ok(Some(m)) => {
                    prop_assert_eq!(m.id(), Some(id));
                    prop_assert_eq!(m.to_bytes(), wire);
                    prop_assert!(frame.is_empty());
                }
                Err(WireError::PayloadLength { id: eid, len, .. }) => {
                    prop_assert_eq!(eid, id);
                    prop_assert_eq!(len as usize, payload.len());
                    prop_assert!(KNOWN_IDS.contains(&id));
                }
                other => prop_assert!(false, "unexpected {other:?}"),
            }
        }
    }

    #[test]
    fn garbage_into_handshake_codec(input in prop::collection::vec(any::<u8>(), 0..200)) {
        let mut buf = BytesMut::from(&input[..]);
        match HandshakeCodec.decode(&mut buf) {
            Ok(Some(hs)) => {
                prop_assert_eq!(&hs.to_bytes()[..], &input[..HANDSHAKE_LEN]);
                prop_assert_eq!(&buf[..], &input[HANDSHAKE_LEN..]);
            }
            Ok(None) => {
                prop_assert!(input.len() < HANDSHAKE_LEN);
                prop_assert!(input.iter().zip(bt_wire::PROTOCOL).all(|(a, b)| a == b));
            }
            Err(WireError::ProtocolLength { found }) => prop_assert_eq!(found, input[0]),
            Err(WireError::ProtocolString { found }) => prop_assert!(!found.is_empty() && found.len() <= 19),
            Err(other) => prop_assert!(false, "unexpected {other:?}"),
        }
        prop_assert!(buf.capacity() <= 2 * (HANDSHAKE_LEN + input.len()) + 64);
    }

    /// A frame header claiming up to the limit, followed by garbage: the buffer grows to
    /// at most the frame, and the frame is only complete once all its bytes are there.
    #[test]
    fn declared_length_within_limit(len in 1u32..=MessageCodec::DEFAULT_MAX_FRAME_LEN, id in any::<u8>(), extra in 0usize..100) {
        let mut buf = BytesMut::new();
        buf.extend_from_slice(&len.to_be_bytes());
        buf.extend_from_slice(&[id]);
        buf.extend_from_slice(&vec![0u8; extra]);
        let mut codec = MessageCodec::new();
        match codec.decode(&mut buf) {
            Ok(None) => {
                prop_assert!(buf.capacity() <= 2 * (len as usize + 4) + 64);
                prop_assert!((len as usize) > extra);
            }
            Ok(Some(m)) => prop_assert_eq!(m.frame_len(), len as usize),
            Err(WireError::PayloadLength { id: eid, len: plen, .. }) => {
                prop_assert_eq!(eid, id);
                prop_assert_eq!(plen, len - 1);
            }
            Err(other) => prop_assert!(false, "unexpected {other:?}"),
        }
    }
}

#[test]
fn max_prefix_is_an_error_not_a_4gib_buffer() {
    for max in [0, 16393, MessageCodec::DEFAULT_MAX_FRAME_LEN, u32::MAX - 1] {
        let mut codec = MessageCodec::with_max_frame_len(max);
        let mut buf = BytesMut::from(&[0xffu8, 0xff, 0xff, 0xff, 7, 0, 0][..]);
        let cap = buf.capacity();
        match codec.decode(&mut buf) {
            Err(WireError::FrameTooLarge { len, max: m }) => {
                assert_eq!(len, 0xffff_ffff);
                assert_eq!(m, max);
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(buf.capacity(), cap);
    }
    let err = MessageCodec::new()
        .decode(&mut BytesMut::from(&[0xffu8; 4][..]))
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "frame of 4294967295 bytes exceeds the limit of 1049600 bytes"
    );
}

#[test]
fn limit_is_inclusive() {
    let msg = Message::Bitfield(Bytes::from(vec![0x55; 99]));
    let mut codec = MessageCodec::with_max_frame_len(100);
    let mut buf = BytesMut::new();
    codec.encode(&msg, &mut buf).unwrap();
    assert_eq!(codec.decode(&mut buf).unwrap(), Some(msg));
    let mut buf = BytesMut::from(&[0u8, 0, 0, 101, 5][..]);
    assert!(matches!(
        codec.decode(&mut buf),
        Err(WireError::FrameTooLarge { len: 101, max: 100 })
    ));
}
