//! The codecs over a real (in-memory) async stream: handshake, `map_codec`, messages,
//! with the peer's bytes arriving in small pieces.

use bt_meta::{BlockInfo, PieceIndex};
use bt_meta::{InfoHash, PeerId};
use bt_wire::{Handshake, HandshakeCodec, Message, MessageCodec, WireError};
use bytes::{Bytes, BytesMut};
use futures::{SinkExt, StreamExt};
use tokio::io::AsyncWriteExt;
use tokio_util::codec::{Encoder, Framed};

fn theirs() -> Handshake {
    let mut hs = Handshake::new(InfoHash([7; 20]), PeerId(*b"-TR3000-abcdefghijkl"));
    hs.reserved.set_fast(true);
    hs.reserved.set_extension_protocol(true);
    hs
}

fn their_messages() -> Vec<Message> {
    vec![
        Message::Extended {
            id: 0,
            payload: Bytes::from_static(b"d1:md11:ut_metadatai3eee"),
        },
        Message::Bitfield(Bytes::from(vec![0xff; 100])),
        Message::Unchoke,
        Message::KeepAlive,
        Message::Piece {
            index: 0,
            begin: 0,
            data: Bytes::from(vec![9; 16384]),
        },
        Message::Unknown {
            id: 22,
            payload: Bytes::from_static(b"ignored"),
        },
        Message::RejectRequest(BlockInfo {
            piece: PieceIndex(1),
            begin: 0,
            len: 16384,
        }),
    ]
}

#[tokio::test]
async fn handshake_then_map_codec_keeps_buffered_messages() {
    // A tiny pipe forces short reads everywhere, including inside the handshake.
    let (ours_io, theirs_io) = tokio::io::duplex(7);

    let (their_read, mut their_write) = tokio::io::split(theirs_io);
    // Handshake and first messages in a single write, as peers often do; concurrently
    // with reading ours, or the tiny pipe would deadlock.
    let writer = tokio::spawn(async move {
        let mut wire = BytesMut::new();
        theirs().encode(&mut wire);
        let mut codec = MessageCodec::new();
        for m in their_messages() {
            codec.encode(m, &mut wire).unwrap();
        }
        their_write.write_all(&wire).await.unwrap();
        their_write
    });
    let reader = tokio::spawn(async move {
        let mut framed = Framed::new(their_read, HandshakeCodec::new());
        let hs = framed.next().await.unwrap().unwrap();
        let mut framed = framed.map_codec(|_| MessageCodec::new());
        let msg = framed.next().await.unwrap().unwrap();
        (hs, msg)
    });

    let mut framed = Framed::new(ours_io, HandshakeCodec::new());
    let ours = Handshake::new(InfoHash([7; 20]), bt_wire::generate_peer_id());
    let got = framed.next().await.unwrap().unwrap();
    assert_eq!(got, theirs());
    assert!(got.reserved.supports_fast() && got.reserved.supports_extension_protocol());
    framed.send(ours).await.unwrap();

    let mut framed = framed.map_codec(|_| MessageCodec::new());
    framed.send(Message::Interested).await.unwrap();
    let mut got = Vec::new();
    for _ in 0..their_messages().len() {
        got.push(framed.next().await.unwrap().unwrap());
    }
    assert_eq!(got, their_messages());

    let (hs, msg) = reader.await.unwrap();
    assert_eq!(hs, ours);
    assert_eq!(msg, Message::Interested);
    drop(writer.await.unwrap());
    assert!(framed.next().await.is_none(), "clean end of stream");
}

#[tokio::test]
async fn oversized_frame_ends_the_stream_with_an_error() {
    let (ours_io, mut theirs_io) = tokio::io::duplex(64);
    theirs_io
        .write_all(&[0, 0, 0, 1, 1, 0xff, 0xff, 0xff, 0xff])
        .await
        .unwrap();
    let mut framed = Framed::new(ours_io, MessageCodec::new());
    assert_eq!(framed.next().await.unwrap().unwrap(), Message::Unchoke);
    match framed.next().await {
        Some(Err(WireError::FrameTooLarge {
            len: 0xffff_ffff, ..
        })) => {}
        other => panic!("{other:?}"),
    }
    assert!(framed.read_buffer().capacity() < 64 * 1024);
}

#[tokio::test]
async fn wrong_protocol_is_an_error() {
    let (ours_io, mut theirs_io) = tokio::io::duplex(64);
    theirs_io
        .write_all(b"\x13BitTorrent protocoL")
        .await
        .unwrap();
    let mut framed = Framed::new(ours_io, HandshakeCodec::new());
    assert!(matches!(
        framed.next().await,
        Some(Err(WireError::ProtocolString { .. }))
    ));
}

#[tokio::test]
async fn eof_inside_handshake_is_an_error() {
    let (ours_io, mut theirs_io) = tokio::io::duplex(64);
    theirs_io
        .write_all(&theirs().to_bytes()[..40])
        .await
        .unwrap();
    drop(theirs_io);
    let mut framed = Framed::new(ours_io, HandshakeCodec::new());
    assert!(matches!(framed.next().await, Some(Err(WireError::Io(_)))));
}
