//! The peer wire protocol (BEP 3, 5, 6, 10): handshake, messages and tokio-util codecs.
//!
//! # Main types
//!
//! - [`Handshake`] with its [`Reserved`] extension bits (BEP 6 fast extension, BEP 10
//!   extension protocol, BEP 5 DHT), and [`generate_peer_id`] for Azureus-style peer ids
//!   (`-BT0001-` followed by 12 random alphanumeric bytes).
//! - [`Message`], every message of BEP 3, `port` (BEP 5), the fast extension (BEP 6) and
//!   `extended` (BEP 10). Messages with ids this crate does not know decode to
//!   [`Message::Unknown`] so the engine can ignore them; they are not errors.
//! - Plain functions [`Handshake::encode`]/[`Handshake::decode`] and
//!   [`Message::encode`]/[`Message::decode`] on [`bytes::BytesMut`], and the tokio-util
//!   codecs [`HandshakeCodec`] and [`MessageCodec`] that delegate to them.
//! - [`piece_header`]: the 13-byte header of a `piece` message, for vectored writes that
//!   send a block without copying it into a frame buffer.
//! - [`WireError`], the one error type, with the message id, declared length and limit
//!   where they apply.
//! - [`extension`]: payloads of `extended` messages: the BEP 10 extended handshake
//!   ([`ExtendedHandshake`]), BEP 9 `ut_metadata` ([`MetadataMessage`]) and BEP 11 `ut_pex`
//!   ([`PexMessage`]), with their own [`ExtensionError`].
//!
//! # Limits
//!
//! Every length prefix is checked against [`MessageCodec::max_frame_len`] (by default
//! [`MessageCodec::DEFAULT_MAX_FRAME_LEN`], 1 MiB + 1 KiB, enough for the bitfield of a
//! torrent with 8 million pieces) before anything is reserved: a prefix of `2^32 - 1` is a
//! [`WireError::FrameTooLarge`], not a 4 GiB buffer. Fixed-size messages are checked for
//! their exact payload length as soon as their id byte arrives. Only the current frame's
//! bytes are ever reserved. Decoded `bitfield`, `piece` and `extended` payloads are
//! [`bytes::Bytes`] that share the read buffer; nothing is copied.
//!
//! # Switching codecs
//!
//! A connection starts with a handshake in each direction, then carries messages. Frame
//! the stream with [`HandshakeCodec`], exchange handshakes, then swap the codec with
//! `Framed::map_codec`. The read buffer is kept, so messages the peer sent right behind its
//! handshake (often a `bitfield` and an extended handshake in the same segment) are not lost:
//!
//! ```no_run
//! use bt_meta::InfoHash;
//! use bt_wire::{generate_peer_id, Handshake, HandshakeCodec, Message, MessageCodec};
//! use futures::{SinkExt, StreamExt};
//! use tokio_util::codec::Framed;
//!
//! # async fn run(info_hash: InfoHash) -> Result<(), Box<dyn std::error::Error>> {
//! let stream = tokio::net::TcpStream::connect("127.0.0.1:6881").await?;
//! let mut framed = Framed::new(stream, HandshakeCodec::new());
//!
//! let mut ours = Handshake::new(info_hash, generate_peer_id());
//! ours.reserved.set_fast(true);
//! ours.reserved.set_extension_protocol(true);
//! framed.send(ours).await?;
//! let theirs = framed.next().await.ok_or("closed during handshake")??;
//! if theirs.info_hash != info_hash {
//!     return Err("wrong torrent".into());
//! }
//!
//! let mut framed = framed.map_codec(|_| MessageCodec::new());
//! framed.send(Message::Interested).await?;
//! while let Some(msg) = framed.next().await {
//!     match msg? {
//!         Message::Piece { index, begin, data } => { /* hand `data` to storage */ }
//!         Message::Unknown { .. } => {} // ignore
//!         _ => {}
//!     }
//! }
//! # Ok(()) }
//! ```
//!
//! # What this crate does not do
//!
//! No sockets, no timers, no encryption (MSE/PE) and no engine logic: it does not check a
//! bitfield's length against the torrent, piece indices against the piece count, blocks
//! against outstanding requests, or whether fast-extension messages were negotiated; it
//! does not time out keep-alives or choke anyone. It turns bytes into messages and back.
//!
//! # Testing
//!
//! Besides unit and property tests (`tests/`), the decoders are fuzzed by the cargo-fuzz
//! targets `wire_codec` and `wire_extension` in the repository's `fuzz/` crate
//! (`cd fuzz && RUSTC_BOOTSTRAP=1 cargo fuzz run wire_codec` on a stable toolchain), and
//! `benches/wire.rs` measures decoding throughput on a stream of 16 KiB `piece` messages.

mod codec;
mod error;
pub mod extension;
mod handshake;
mod message;
pub mod mse;

pub use codec::{HandshakeCodec, MessageCodec};
pub use error::{PayloadLen, WireError};
pub use extension::{ExtendedHandshake, ExtensionError, MetadataMessage, PexMessage};
pub use handshake::{
    generate_peer_id, generate_peer_id_with, Handshake, Reserved, HANDSHAKE_LEN, PEER_ID_PREFIX,
    PROTOCOL,
};
pub use message::{ids, piece_header, Message, PIECE_HEADER_LEN};
