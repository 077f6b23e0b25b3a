//! Arbitrary bytes into `HandshakeCodec` and `MessageCodec`.
//!
//! The first input byte picks the read size (1..=64 bytes per chunk) and the frame limit;
//! the rest is the stream. Checks: no panic; the read buffer never grows past what the
//! input or one frame of the limit needs; every decoded message re-encodes to exactly the
//! bytes it was decoded from; errors only of the kinds the decoders produce.

#![no_main]

use bt_wire::{HandshakeCodec, MessageCodec, WireError, HANDSHAKE_LEN};
use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use tokio_util::codec::Decoder;

fuzz_target!(|data: &[u8]| {
    let Some((&ctl, input)) = data.split_first() else {
        return;
    };
    let chunk = usize::from(ctl & 0x3f) + 1;
    let max = [MessageCodec::DEFAULT_MAX_FRAME_LEN, 16_393, 64, 0][usize::from(ctl >> 6)];

    // The handshake codec on the whole input, in chunks: nothing decodes before all 68
    // bytes are in, and the bytes after the handshake stay buffered for the message
    // codec (as `Framed::map_codec` keeps them).
    let mut buf = BytesMut::new();
    let mut fed = 0usize;
    for piece in input.chunks(chunk) {
        buf.extend_from_slice(piece);
        fed += piece.len();
        match HandshakeCodec.decode(&mut buf) {
            Ok(Some(hs)) => {
                assert!(fed >= HANDSHAKE_LEN);
                assert_eq!(&hs.to_bytes()[..], &input[..HANDSHAKE_LEN]);
                assert_eq!(&buf[..], &input[HANDSHAKE_LEN..fed]);
                break;
            }
            Ok(None) => assert!(fed < HANDSHAKE_LEN),
            Err(WireError::ProtocolLength { .. } | WireError::ProtocolString { .. }) => break,
            Err(e) => panic!("unexpected handshake error {e:?}"),
        }
    }

    // The message codec on the whole input, in chunks.
    let mut codec = MessageCodec::with_max_frame_len(max);
    let bound = 2 * (max as usize + 4 + input.len()) + 64;
    let mut buf = BytesMut::new();
    let mut consumed = 0usize;
    let mut reencoded = BytesMut::new();
    'feed: for piece in input.chunks(chunk) {
        buf.extend_from_slice(piece);
        loop {
            let before = buf.len();
            let result = codec.decode(&mut buf);
            assert!(
                buf.capacity() <= bound,
                "capacity {} > {bound}",
                buf.capacity()
            );
            match result {
                Ok(Some(msg)) => {
                    let used = before - buf.len();
                    assert_eq!(used, msg.encoded_len());
                    msg.encode(&mut reencoded);
                    consumed += used;
                }
                Ok(None) => break,
                Err(WireError::FrameTooLarge { len, max: m }) => {
                    assert!(len > u64::from(m));
                    break 'feed;
                }
                Err(e @ WireError::PayloadLength { .. }) => {
                    let _ = e.to_string();
                    break 'feed;
                }
                Err(e) => panic!("unexpected message error {e:?}"),
            }
        }
    }
    assert_eq!(&reencoded[..], &input[..consumed]);
});
