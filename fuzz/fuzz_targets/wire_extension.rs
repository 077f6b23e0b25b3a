//! Arbitrary bytes as the payload of an `extended` message: the BEP 10 handshake, BEP 9
//! `ut_metadata` and BEP 11 `ut_pex` decoders.
//!
//! Checks: no panic, no unbounded work; whatever decodes re-encodes to something that
//! decodes to the same value, also after a trip through an `extended` wire frame.
//! (`ut_metadata` and `ut_pex` as the engine consumes them have targets of their own.)

#![no_main]

use bt_wire::extension::PEX_MAX_PEERS;
use bt_wire::{ExtendedHandshake, Message, MessageCodec, MetadataMessage, PexMessage};
use bytes::{Bytes, BytesMut};
use libfuzzer_sys::fuzz_target;

/// `msg` framed, then decoded as a wire message: its extended id and payload.
fn through_wire(msg: &Message) -> (u8, Bytes) {
    let mut buf = BytesMut::new();
    msg.encode(&mut buf);
    match Message::decode(&mut buf, MessageCodec::DEFAULT_MAX_FRAME_LEN) {
        Ok(Some(Message::Extended { id, payload })) if buf.is_empty() => (id, payload),
        other => panic!("extended frame decoded as {other:?}"),
    }
}

fuzz_target!(|data: &[u8]| {
    if let Ok(hs) = ExtendedHandshake::decode(data) {
        assert_eq!(ExtendedHandshake::decode(&hs.encode()).unwrap(), hs);
        let (id, payload) = through_wire(&hs.to_message());
        assert_eq!(id, 0);
        assert_eq!(ExtendedHandshake::decode(&payload).unwrap(), hs);
    }
    if let Ok(md) = MetadataMessage::decode(&Bytes::copy_from_slice(data)) {
        assert_eq!(MetadataMessage::decode(&md.encode()).unwrap(), md);
        let (id, payload) = through_wire(&md.to_message(3));
        assert_eq!(id, 3);
        assert_eq!(MetadataMessage::decode(&payload).unwrap(), md);
    }
    if let Ok(pex) = PexMessage::decode(data) {
        assert!(pex.added.len() <= 2 * PEX_MAX_PEERS && pex.dropped.len() <= 2 * PEX_MAX_PEERS);
        assert_eq!(PexMessage::decode(&pex.encode()).unwrap(), pex);
        let (id, payload) = through_wire(&pex.to_message(1));
        assert_eq!(id, 1);
        assert_eq!(PexMessage::decode(&payload).unwrap(), pex);
    }
});
