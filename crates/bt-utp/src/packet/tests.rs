use proptest::prelude::*;

use super::*;

fn header(packet_type: PacketType) -> Header {
    Header {
        packet_type,
        connection_id: 0x1234,
        timestamp_micros: 0xdead_beef,
        timestamp_difference_micros: 0x0102_0304,
        wnd_size: 0x0010_0000,
        seq_nr: 0xfffe,
        ack_nr: 7,
    }
}

const GOLDEN_STATE: [u8; 28] = [
    0x21,
    0x01,
    0x12,
    0x34,
    0xde,
    0xad,
    0xbe,
    0xef,
    0x01,
    0x02,
    0x03,
    0x04,
    0x00,
    0x10,
    0x00,
    0x00,
    0xff,
    0xfe,
    0x00,
    0x07, // header
    0x00,
    0x04,
    0b0000_0101,
    0,
    0,
    0x80, // sack: next 0, len 4, bits
    0,
    0, // two bytes that are not payload: see below
];

#[test]
fn golden_state_with_sack() {
    let bytes = &GOLDEN_STATE[..26];
    let packet = Packet::decode(bytes).unwrap();
    assert_eq!(packet.header, header(PacketType::State));
    let sack = packet.sack.unwrap();
    assert_eq!(sack.offsets().collect::<Vec<_>>(), [0, 2, 31]);
    assert!(packet.payload.is_empty());
    let mut out = Vec::new();
    packet.encode(&mut out);
    assert_eq!(out, bytes);
    assert_eq!(packet.encoded_len(), bytes.len());
}

#[test]
fn golden_data_without_extensions() {
    let mut bytes = vec![0x01, 0x00];
    bytes.extend_from_slice(&GOLDEN_STATE[2..20]);
    bytes.extend_from_slice(b"hello");
    let packet = Packet::decode(&bytes).unwrap();
    assert_eq!(packet.header, header(PacketType::Data));
    assert_eq!(packet.sack, None);
    assert_eq!(packet.payload, b"hello");
}

#[test]
fn unknown_extensions_are_skipped() {
    let mut bytes = vec![0x41, 0x02];
    bytes.extend_from_slice(&GOLDEN_STATE[2..20]);
    // extension 2 (3 bytes) -> extension 1 (4 bytes) -> end
    bytes.extend_from_slice(&[0x01, 3, 9, 9, 9, 0x00, 4, 1, 0, 0, 0]);
    let packet = Packet::decode(&bytes).unwrap();
    assert_eq!(packet.header.packet_type, PacketType::Syn);
    assert_eq!(packet.sack.unwrap().offsets().collect::<Vec<_>>(), [0]);
}

#[test]
fn one_byte_selective_acks_from_the_wild_are_read() {
    let mut bytes = vec![0x21, 0x01];
    bytes.extend_from_slice(&GOLDEN_STATE[2..20]);
    bytes.extend_from_slice(&[0x00, 1, 0b0000_0010]);
    let packet = Packet::decode(&bytes).unwrap();
    assert_eq!(packet.sack.unwrap().offsets().collect::<Vec<_>>(), [1]);
}

/// Decodes `bytes` (a state packet's header with `first` and `ext` patched in, then `tail`).
fn check(first: u8, ext: u8, tail: &[u8], expected: Error) {
    let mut bytes = vec![first, ext];
    bytes.extend_from_slice(&GOLDEN_STATE[2..20]);
    bytes.extend_from_slice(tail);
    assert_eq!(Packet::decode(&bytes), Err(expected), "{bytes:02x?}");
}

#[test]
fn hostile_datagrams_are_typed_errors() {
    for len in 0..HEADER_LEN {
        assert_eq!(
            Packet::decode(&GOLDEN_STATE[..len]),
            Err(Error::TooShort { len })
        );
    }
    check(0x22, 0, &[], Error::Version { version: 2 });
    check(0x20, 0, &[], Error::Version { version: 0 });
    check(0x51, 0, &[], Error::PacketType { value: 5 });
    check(0xf1, 0, &[], Error::PacketType { value: 15 });
    check(0x21, 1, &[], Error::ExtensionTruncated { offset: 20 });
    check(0x21, 1, &[0], Error::ExtensionTruncated { offset: 20 });
    check(
        0x21,
        1,
        &[0, 255, 1, 2],
        Error::ExtensionLength {
            extension: 1,
            len: 255,
            offset: 20,
            left: 2,
        },
    );
    check(
        0x21,
        7,
        &[0, 200],
        Error::ExtensionLength {
            extension: 7,
            len: 200,
            offset: 20,
            left: 0,
        },
    );
    check(0x21, 1, &[0, 0], Error::SackLength { len: 0 });
    check(
        0x21,
        1,
        &[1, 4, 1, 0, 0, 0, 0, 4, 1, 0, 0, 0],
        Error::DuplicateSack { offset: 26 },
    );
    check(
        0x21,
        0,
        b"xy",
        Error::UnexpectedPayload {
            packet_type: PacketType::State,
            len: 2,
        },
    );
    // A chain that never ends runs out of datagram.
    check(
        0x21,
        9,
        &[9, 0, 9, 0, 9],
        Error::ExtensionTruncated { offset: 24 },
    );
}

fn arb_type() -> impl Strategy<Value = PacketType> {
    (0u8..5).prop_map(|v| PacketType::from_wire(v).unwrap())
}

proptest! {
    #[test]
    fn encode_decode_round_trip(
        packet_type in arb_type(),
        connection_id: u16,
        timestamp_micros: u32,
        timestamp_difference_micros: u32,
        wnd_size: u32,
        seq_nr: u16,
        ack_nr: u16,
        sack_words in proptest::option::of(1usize..=63),
        sack_seed: u64,
        payload in proptest::collection::vec(any::<u8>(), 0..1500),
    ) {
        let header = Header {
            packet_type, connection_id, timestamp_micros, timestamp_difference_micros,
            wnd_size, seq_nr, ack_nr,
        };
        let sack_bytes: Vec<u8> = sack_words.map_or(Vec::new(), |w| {
            (0..w * 4).map(|i| (sack_seed >> (i % 57)) as u8).collect()
        });
        let sack = sack_words.map(|_| SelectiveAck::new(&sack_bytes).unwrap());
        let payload = if packet_type == PacketType::Data { &payload[..] } else { &[][..] };
        let packet = Packet { header, sack, payload };
        let mut out = Vec::new();
        packet.encode(&mut out);
        prop_assert_eq!(out.len(), packet.encoded_len());
        prop_assert_eq!(Packet::decode(&out), Ok(packet));
    }

    #[test]
    fn garbage_never_panics_and_what_decodes_reencodes(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        if let Ok(packet) = Packet::decode(&bytes) {
            let mut out = Vec::new();
            packet.encode(&mut out);
            prop_assert_eq!(Packet::decode(&out), Ok(packet));
            prop_assert!(out.len() <= bytes.len(), "unknown extensions are dropped, nothing added");
        }
    }

    #[test]
    fn seq_less_is_a_strict_order_within_half_the_space(a: u16, d in 1u16..0x8000) {
        let b = a.wrapping_add(d);
        prop_assert!(seq_less(a, b));
        prop_assert!(!seq_less(b, a));
        prop_assert!(!seq_less(a, a));
    }
}
