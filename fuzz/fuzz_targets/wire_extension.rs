//! Arbitrary bytes as the payload of an `extended` message: the BEP 10 handshake, BEP 9
//! `ut_metadata` and BEP 11 `ut_pex` decoders.
//!
//! Checks: no panic, no unbounded work; whatever decodes re-encodes to something that
//! decodes to the same value.

#![no_main]

use bt_wire::extension::PEX_MAX_PEERS;
use bt_wire::{ExtendedHandshake, MetadataMessage, PexMessage};
use bytes::Bytes;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(hs) = ExtendedHandshake::decode(data) {
        assert_eq!(ExtendedHandshake::decode(&hs.encode()).unwrap(), hs);
    }
    if let Ok(md) = MetadataMessage::decode(&Bytes::copy_from_slice(data)) {
        assert_eq!(MetadataMessage::decode(&md.encode()).unwrap(), md);
    }
    if let Ok(pex) = PexMessage::decode(data) {
        assert!(pex.added.len() <= 2 * PEX_MAX_PEERS && pex.dropped.len() <= 2 * PEX_MAX_PEERS);
        assert_eq!(PexMessage::decode(&pex.encode()).unwrap(), pex);
    }
});
