//! Property and garbage tests for the extension payloads (BEP 9, 10, 11).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};

use bt_bencode::{Dict, Value};
use bt_wire::extension::{PexFlags, PexPeer, METADATA_PIECE_LEN, PEX_MAX_PEERS};
use bt_wire::{
    ExtendedHandshake, ExtensionError, Message, MessageCodec, MetadataMessage, PexMessage,
};
use bytes::{Bytes, BytesMut};
use proptest::prelude::*;
use tokio_util::codec::{Decoder, Encoder};

fn ip() -> impl Strategy<Value = IpAddr> {
    prop_oneof![
        any::<[u8; 4]>().prop_map(|b| IpAddr::V4(Ipv4Addr::from(b))),
        any::<[u8; 16]>().prop_map(|b| IpAddr::V6(Ipv6Addr::from(b))),
    ]
}

fn v4() -> impl Strategy<Value = SocketAddr> {
    (any::<[u8; 4]>(), any::<u16>())
        .prop_map(|(ip, port)| SocketAddr::V4(SocketAddrV4::new(ip.into(), port)))
}

fn v6() -> impl Strategy<Value = SocketAddr> {
    (any::<[u8; 16]>(), any::<u16>())
        .prop_map(|(ip, port)| SocketAddr::V6(SocketAddrV6::new(ip.into(), port, 0, 0)))
}

fn extended_handshake() -> impl Strategy<Value = ExtendedHandshake> {
    (
        prop::collection::btree_map(any::<String>(), any::<u8>(), 0..8),
        prop::option::of(any::<String>()),
        prop::option::of(any::<u16>()),
        prop::option::of(any::<u32>()),
        prop::option::of(ip()),
        prop::option::of(any::<u32>()),
    )
        .prop_map(|(extensions, client, port, reqq, your_ip, metadata_size)| {
            ExtendedHandshake {
                extensions,
                client,
                port,
                reqq,
                your_ip,
                metadata_size,
            }
        })
}

fn metadata_message() -> impl Strategy<Value = MetadataMessage> {
    prop_oneof![
        any::<u32>().prop_map(|piece| MetadataMessage::Request { piece }),
        any::<u32>().prop_map(|piece| MetadataMessage::Reject { piece }),
        (
            any::<u32>(),
            any::<u32>(),
            prop::collection::vec(any::<u8>(), 0..2048)
        )
            .prop_map(|(piece, total_size, data)| MetadataMessage::Data {
                piece,
                total_size,
                data: Bytes::from(data)
            }),
        any::<i64>()
            .prop_filter("unknown type", |t| !(0..=2).contains(t))
            .prop_map(|msg_type| MetadataMessage::Unknown { msg_type }),
    ]
}

/// PEX messages as decoding returns them: IPv4 peers before IPv6 ones in each list.
fn pex_message() -> impl Strategy<Value = PexMessage> {
    let peers = |addr: BoxedStrategy<SocketAddr>| {
        prop::collection::vec((addr, any::<u8>()), 0..50).prop_map(|v| {
            v.into_iter()
                .map(|(addr, f)| PexPeer {
                    addr,
                    flags: PexFlags(f),
                })
                .collect::<Vec<_>>()
        })
    };
    (
        peers(v4().boxed()),
        peers(v6().boxed()),
        prop::collection::vec(v4(), 0..50),
        prop::collection::vec(v6(), 0..50),
    )
        .prop_map(|(mut added, added6, mut dropped, dropped6)| {
            added.extend(added6);
            dropped.extend(dropped6);
            PexMessage { added, dropped }
        })
}

/// Bencode values whose keys are often the ones the decoders look for.
fn bencode() -> impl Strategy<Value = Value<'static>> {
    const KEYS: &[&str] = &[
        "m",
        "v",
        "p",
        "reqq",
        "yourip",
        "metadata_size",
        "ut_pex",
        "ut_metadata",
        "msg_type",
        "piece",
        "total_size",
        "added",
        "added.f",
        "added6",
        "added6.f",
        "dropped",
        "dropped6",
        "x",
    ];
    let leaf = prop_oneof![
        any::<i64>().prop_map(Value::Int),
        (-3i64..300).prop_map(Value::Int),
        prop::collection::vec(any::<u8>(), 0..40).prop_map(Value::owned_bytes),
    ];
    leaf.prop_recursive(4, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::List),
            prop::collection::vec((prop::sample::select(KEYS), inner), 0..8).prop_map(|entries| {
                let mut d = Dict::new();
                for (k, v) in entries {
                    d.insert(k.as_bytes().to_vec(), v);
                }
                Value::Dict(d)
            }),
        ]
    })
}

fn decode_all(payload: &[u8]) {
    let _ = ExtendedHandshake::decode(payload).map_err(|e| e.to_string());
    let _ = MetadataMessage::decode(&Bytes::copy_from_slice(payload)).map_err(|e| e.to_string());
    if let Ok(pex) = PexMessage::decode(payload) {
        let v4 = pex.added.iter().filter(|p| p.addr.is_ipv4()).count();
        assert!(v4 <= PEX_MAX_PEERS && pex.added.len() - v4 <= PEX_MAX_PEERS);
        assert!(pex.dropped.len() <= 2 * PEX_MAX_PEERS);
        // What decoded re-encodes and decodes the same.
        assert_eq!(PexMessage::decode(&pex.encode()).unwrap(), pex);
    }
}

proptest! {
    #[test]
    fn extended_handshake_round_trip(hs in extended_handshake()) {
        prop_assert_eq!(ExtendedHandshake::decode(&hs.encode()).unwrap(), hs);
    }

    #[test]
    fn metadata_round_trip(msg in metadata_message()) {
        prop_assert_eq!(MetadataMessage::decode(&msg.encode()).unwrap(), msg);
    }

    #[test]
    fn pex_round_trip(msg in pex_message()) {
        prop_assert_eq!(PexMessage::decode(&msg.encode()).unwrap(), msg);
    }

    /// Through the message codec too, as they travel.
    #[test]
    fn extension_messages_through_codec(hs in extended_handshake(), md in metadata_message(), pex in pex_message()) {
        let mut codec = MessageCodec::new();
        let mut buf = BytesMut::new();
        codec.encode(hs.to_message(), &mut buf).unwrap();
        codec.encode(md.to_message(3), &mut buf).unwrap();
        codec.encode(pex.to_message(1), &mut buf).unwrap();
        let Some(Message::Extended { id: 0, payload }) = codec.decode(&mut buf).unwrap() else { panic!() };
        prop_assert_eq!(ExtendedHandshake::decode(&payload).unwrap(), hs);
        let Some(Message::Extended { id: 3, payload }) = codec.decode(&mut buf).unwrap() else { panic!() };
        prop_assert_eq!(MetadataMessage::decode(&payload).unwrap(), md);
        let Some(Message::Extended { id: 1, payload }) = codec.decode(&mut buf).unwrap() else { panic!() };
        prop_assert_eq!(PexMessage::decode(&payload).unwrap(), pex);
    }

    #[test]
    fn arbitrary_bytes_never_panic(payload in prop::collection::vec(any::<u8>(), 0..512)) {
        decode_all(&payload);
    }

    #[test]
    fn arbitrary_bencode_never_panics(value in bencode(), tail in prop::collection::vec(any::<u8>(), 0..20)) {
        let mut payload = value.encode();
        payload.extend_from_slice(&tail);
        decode_all(&payload);
        // Any dictionary is an extended handshake (every field is optional).
        if matches!(value, Value::Dict(_)) {
            prop_assert!(ExtendedHandshake::decode(&payload).is_ok());
        } else {
            let is_not_a_dict = matches!(ExtendedHandshake::decode(&payload), Err(ExtensionError::NotADict { .. }));
            prop_assert!(is_not_a_dict);
        }
    }

    /// A data message: whatever follows the dictionary is the piece, byte for byte.
    #[test]
    fn metadata_data_follows_dict(piece in any::<u32>(), total in any::<u32>(), data in prop::collection::vec(any::<u8>(), 0..100)) {
        let mut payload = format!("d8:msg_typei1e5:piecei{piece}e10:total_sizei{total}ee").into_bytes();
        payload.extend_from_slice(&data);
        let msg = MetadataMessage::decode(&Bytes::from(payload)).unwrap();
        prop_assert_eq!(msg, MetadataMessage::Data { piece, total_size: total, data: Bytes::from(data) });
    }
}

#[test]
fn full_size_metadata_piece() {
    let data = Bytes::from(vec![0x42; METADATA_PIECE_LEN]);
    let msg = MetadataMessage::Data {
        piece: 2,
        total_size: 3 * 16384 + 5,
        data,
    };
    assert_eq!(MetadataMessage::decode(&msg.encode()).unwrap(), msg);
    // Fits the default frame limit with room to spare.
    let frame = msg.to_message(2).to_bytes();
    assert!(frame.len() < MessageCodec::DEFAULT_MAX_FRAME_LEN as usize);
}

#[test]
fn deep_nesting_is_an_error_not_a_stack_overflow() {
    let mut payload = vec![b'l'; 100_000];
    payload.extend(std::iter::repeat_n(b'e', 100_000));
    assert!(matches!(
        ExtendedHandshake::decode(&payload),
        Err(ExtensionError::Bencode { .. })
    ));
    let mut payload = b"d1:m".to_vec();
    payload.extend(std::iter::repeat_n(b'l', 100_000));
    assert!(matches!(
        PexMessage::decode(&payload),
        Err(ExtensionError::Bencode { .. })
    ));
}
