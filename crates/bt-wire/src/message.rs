//! Peer wire messages (BEP 3, BEP 5 `port`, BEP 6 fast extension, BEP 10 `extended`),
//! their framing, and plain `encode`/`decode` functions.
//!
//! Every message but the keep-alive is framed as a 4-byte big-endian length, a 1-byte id
//! and a payload; the length counts the id and the payload. A keep-alive is a bare length
//! of zero.

use std::fmt;

use bytes::{Buf, BufMut, Bytes, BytesMut};

use bt_meta::{BlockInfo, PieceIndex};

use crate::error::{PayloadLen, WireError};

/// Message id bytes.
pub mod ids {
    /// `choke` (BEP 3).
    pub const CHOKE: u8 = 0;
    /// `unchoke` (BEP 3).
    pub const UNCHOKE: u8 = 1;
    /// `interested` (BEP 3).
    pub const INTERESTED: u8 = 2;
    /// `not interested` (BEP 3).
    pub const NOT_INTERESTED: u8 = 3;
    /// `have` (BEP 3).
    pub const HAVE: u8 = 4;
    /// `bitfield` (BEP 3).
    pub const BITFIELD: u8 = 5;
    /// `request` (BEP 3).
    pub const REQUEST: u8 = 6;
    /// `piece` (BEP 3).
    pub const PIECE: u8 = 7;
    /// `cancel` (BEP 3).
    pub const CANCEL: u8 = 8;
    /// `port` (BEP 5).
    pub const PORT: u8 = 9;
    /// `suggest piece` (BEP 6).
    pub const SUGGEST: u8 = 0x0d;
    /// `have all` (BEP 6).
    pub const HAVE_ALL: u8 = 0x0e;
    /// `have none` (BEP 6).
    pub const HAVE_NONE: u8 = 0x0f;
    /// `reject request` (BEP 6).
    pub const REJECT_REQUEST: u8 = 0x10;
    /// `allowed fast` (BEP 6).
    pub const ALLOWED_FAST: u8 = 0x11;
    /// `extended` (BEP 10).
    pub const EXTENDED: u8 = 20;
}

/// The length of a `piece` message's header on the wire: length prefix, id, index, begin.
pub const PIECE_HEADER_LEN: usize = 13;

/// A peer wire message.
///
/// Decoding checks framing only: a message's payload has the length its type requires,
/// and nothing more. Whether an index is in range, a block is one we asked for, or a fast
/// extension message is allowed on this connection is the engine's business.
#[derive(Clone, PartialEq, Eq)]
pub enum Message {
    /// A zero-length frame.
    KeepAlive,
    /// `choke`: the sender will not serve our requests.
    Choke,
    /// `unchoke`: the sender will serve our requests.
    Unchoke,
    /// `interested`: the sender wants pieces we have.
    Interested,
    /// `not interested`.
    NotInterested,
    /// `have`: the sender has piece `index`.
    Have {
        /// Piece index.
        index: u32,
    },
    /// `bitfield`: one bit per piece, high bit of the first byte is piece 0. Its length is
    /// not checked against the torrent here.
    Bitfield(Bytes),
    /// `request` a block.
    Request(BlockInfo),
    /// `piece`: a block of data. `data` shares the decoder's read buffer (no copy).
    Piece {
        /// Piece index.
        index: u32,
        /// Byte offset within the piece.
        begin: u32,
        /// The block.
        data: Bytes,
    },
    /// `cancel` a request.
    Cancel(BlockInfo),
    /// `port` (BEP 5): the sender's DHT port.
    Port(u16),
    /// `suggest piece` (BEP 6).
    Suggest {
        /// Piece index.
        index: u32,
    },
    /// `have all` (BEP 6).
    HaveAll,
    /// `have none` (BEP 6).
    HaveNone,
    /// `reject request` (BEP 6).
    RejectRequest(BlockInfo),
    /// `allowed fast` (BEP 6).
    AllowedFast {
        /// Piece index.
        index: u32,
    },
    /// `extended` (BEP 10): an extension message. `id` 0 is the extended handshake; other
    /// ids are those the *receiver* assigned in its handshake's `m` dictionary.
    Extended {
        /// Extended message id.
        id: u8,
        /// The bencoded message (and, for `ut_metadata` data, the raw bytes after it).
        payload: Bytes,
    },
    /// A message with an id this crate does not know (BEP 52 hash messages, say). Returned
    /// so the engine can ignore it rather than drop the connection.
    ///
    /// Encoding writes `id` and `payload` verbatim, even when `id` is a known id: a frame
    /// built that way may then decode as that message, or fail to.
    Unknown {
        /// The id byte.
        id: u8,
        /// The payload.
        payload: Bytes,
    },
}

/// Name and payload rule of a known message id; `None` for unknown ids.
fn layout(id: u8) -> Option<(&'static str, PayloadLen)> {
    use PayloadLen::{AtLeast, Exactly};
    Some(match id {
        ids::CHOKE => ("choke", Exactly(0)),
        ids::UNCHOKE => ("unchoke", Exactly(0)),
        ids::INTERESTED => ("interested", Exactly(0)),
        ids::NOT_INTERESTED => ("not interested", Exactly(0)),
        ids::HAVE => ("have", Exactly(4)),
        ids::BITFIELD => ("bitfield", AtLeast(0)),
        ids::REQUEST => ("request", Exactly(12)),
        ids::PIECE => ("piece", AtLeast(8)),
        ids::CANCEL => ("cancel", Exactly(12)),
        ids::PORT => ("port", Exactly(2)),
        ids::SUGGEST => ("suggest piece", Exactly(4)),
        ids::HAVE_ALL => ("have all", Exactly(0)),
        ids::HAVE_NONE => ("have none", Exactly(0)),
        ids::REJECT_REQUEST => ("reject request", Exactly(12)),
        ids::ALLOWED_FAST => ("allowed fast", Exactly(4)),
        ids::EXTENDED => ("extended", AtLeast(1)),
        _ => return None,
    })
}

/// Checks a payload length against the id's rule.
fn check_payload_len(id: u8, len: u32) -> Result<(), WireError> {
    match layout(id) {
        Some((name, expected)) if !expected.admits(len) => Err(WireError::PayloadLength {
            id,
            name,
            len,
            expected,
        }),
        _ => Ok(()),
    }
}

/// The 13-byte header of a `piece` message carrying `len` bytes of block data: length
/// prefix (`9 + len`), id 7, `index`, `begin`.
///
/// Lets a driver write the header and the block with one vectored write instead of
/// copying the block into a frame buffer. [`Message::encode`] writes the same header.
///
/// # Panics
///
/// If `len > u32::MAX - 9` (the frame length would not fit the length prefix).
pub fn piece_header(index: u32, begin: u32, len: u32) -> [u8; PIECE_HEADER_LEN] {
    let frame_len = len
        .checked_add(9)
        .expect("piece block too large for a frame");
    let mut out = [0u8; PIECE_HEADER_LEN];
    out[0..4].copy_from_slice(&frame_len.to_be_bytes());
    out[4] = ids::PIECE;
    out[5..9].copy_from_slice(&index.to_be_bytes());
    out[9..13].copy_from_slice(&begin.to_be_bytes());
    out
}

fn read_block(mut b: &[u8]) -> BlockInfo {
    BlockInfo {
        piece: PieceIndex(b.get_u32()),
        begin: b.get_u32(),
        len: b.get_u32(),
    }
}

impl Message {
    /// The id byte, or `None` for a keep-alive.
    pub fn id(&self) -> Option<u8> {
        Some(match self {
            Message::KeepAlive => return None,
            Message::Choke => ids::CHOKE,
            Message::Unchoke => ids::UNCHOKE,
            Message::Interested => ids::INTERESTED,
            Message::NotInterested => ids::NOT_INTERESTED,
            Message::Have { .. } => ids::HAVE,
            Message::Bitfield(_) => ids::BITFIELD,
            Message::Request(_) => ids::REQUEST,
            Message::Piece { .. } => ids::PIECE,
            Message::Cancel(_) => ids::CANCEL,
            Message::Port(_) => ids::PORT,
            Message::Suggest { .. } => ids::SUGGEST,
            Message::HaveAll => ids::HAVE_ALL,
            Message::HaveNone => ids::HAVE_NONE,
            Message::RejectRequest(_) => ids::REJECT_REQUEST,
            Message::AllowedFast { .. } => ids::ALLOWED_FAST,
            Message::Extended { .. } => ids::EXTENDED,
            Message::Unknown { id, .. } => *id,
        })
    }

    /// A short human-readable name (`"keep-alive"`, `"have"`, `"unknown"`, ...).
    pub fn name(&self) -> &'static str {
        match self {
            Message::KeepAlive => "keep-alive",
            Message::Unknown { .. } => "unknown",
            _ => self
                .id()
                .and_then(layout)
                .map_or("unknown", |(name, _)| name),
        }
    }

    /// The frame length: the value of the length prefix (id byte plus payload).
    pub fn frame_len(&self) -> usize {
        let payload = match self {
            Message::KeepAlive => return 0,
            Message::Choke
            | Message::Unchoke
            | Message::Interested
            | Message::NotInterested
            | Message::HaveAll
            | Message::HaveNone => 0,
            Message::Have { .. } | Message::Suggest { .. } | Message::AllowedFast { .. } => 4,
            Message::Request(_) | Message::Cancel(_) | Message::RejectRequest(_) => 12,
            Message::Port(_) => 2,
            Message::Bitfield(b) => b.len(),
            Message::Piece { data, .. } => 8 + data.len(),
            Message::Extended { payload, .. } => 1 + payload.len(),
            Message::Unknown { payload, .. } => payload.len(),
        };
        1 + payload
    }

    /// The number of bytes [`Message::encode`] writes: 4 + [`Message::frame_len`].
    pub fn encoded_len(&self) -> usize {
        4 + self.frame_len()
    }

    /// Appends the message, framed, to `dst` (reserving exactly the space it needs).
    ///
    /// A `piece` block is copied into `dst` once; to avoid even that, write
    /// [`piece_header`] and the block with a vectored write.
    ///
    /// # Panics
    ///
    /// If the frame length does not fit the 32-bit length prefix (a payload of 4 GiB).
    /// [`MessageCodec`](crate::MessageCodec) checks its frame limit first and returns an
    /// error instead.
    pub fn encode(&self, dst: &mut BytesMut) {
        let frame_len = u32::try_from(self.frame_len()).expect("message too large for a frame");
        dst.reserve(4 + frame_len as usize);
        dst.put_u32(frame_len);
        let Some(id) = self.id() else { return };
        dst.put_u8(id);
        match self {
            Message::KeepAlive
            | Message::Choke
            | Message::Unchoke
            | Message::Interested
            | Message::NotInterested
            | Message::HaveAll
            | Message::HaveNone => {}
            Message::Have { index }
            | Message::Suggest { index }
            | Message::AllowedFast { index } => dst.put_u32(*index),
            Message::Request(r) | Message::Cancel(r) | Message::RejectRequest(r) => {
                dst.put_u32(r.piece.0);
                dst.put_u32(r.begin);
                dst.put_u32(r.len);
            }
            Message::Port(port) => dst.put_u16(*port),
            Message::Bitfield(bits) => dst.put_slice(bits),
            Message::Piece { index, begin, data } => {
                dst.put_u32(*index);
                dst.put_u32(*begin);
                dst.put_slice(data);
            }
            Message::Extended { id, payload } => {
                dst.put_u8(*id);
                dst.put_slice(payload);
            }
            Message::Unknown { payload, .. } => dst.put_slice(payload),
        }
    }

    /// The framed message as a fresh buffer.
    ///
    /// # Panics
    ///
    /// As [`Message::encode`].
    pub fn to_bytes(&self) -> Bytes {
        let mut buf = BytesMut::with_capacity(self.encoded_len());
        self.encode(&mut buf);
        buf.freeze()
    }

    /// Decodes one message from the front of `src`.
    ///
    /// Returns `Ok(None)` while the frame is incomplete, consuming nothing. Otherwise
    /// consumes exactly one frame; what follows stays in `src` for the next call.
    ///
    /// Checks, in order and as soon as the bytes are there:
    /// 1. the length prefix against `max_frame_len` ([`WireError::FrameTooLarge`]), before
    ///    anything is reserved, so a prefix of `2^32 - 1` costs nothing;
    /// 2. the payload length against the message id ([`WireError::PayloadLength`]), as soon
    ///    as the id byte has arrived and again before anything is reserved.
    ///
    /// Only then does it reserve room in `src` for the rest of the current frame (never more
    /// than `4 + max_frame_len` bytes in all).
    ///
    /// `bitfield`, `piece`, `extended` and unknown payloads are split off `src` and frozen:
    /// they share its allocation rather than being copied.
    pub fn decode(src: &mut BytesMut, max_frame_len: u32) -> Result<Option<Message>, WireError> {
        let Some(prefix) = src.get(..4) else {
            return Ok(None);
        };
        let len = u32::from_be_bytes(prefix.try_into().expect("4 bytes"));
        if len == 0 {
            src.advance(4);
            return Ok(Some(Message::KeepAlive));
        }
        if len > max_frame_len {
            return Err(WireError::FrameTooLarge {
                len: len.into(),
                max: max_frame_len,
            });
        }
        let Some(&id) = src.get(4) else {
            return Ok(None);
        };
        check_payload_len(id, len - 1)?;
        let total = usize::try_from(len)
            .ok()
            .and_then(|len| len.checked_add(4))
            .ok_or(WireError::FrameTooLarge {
                len: len.into(),
                max: max_frame_len,
            })?;
        if src.len() < total {
            src.reserve(total - src.len());
            return Ok(None);
        }
        let msg = match id {
            // Payloads we keep as `Bytes`: split off and freeze, no copy.
            ids::BITFIELD | ids::PIECE | ids::EXTENDED => {
                src.advance(5);
                let mut payload = src.split_to(total - 5);
                match id {
                    ids::BITFIELD => Message::Bitfield(payload.freeze()),
                    ids::PIECE => {
                        let index = payload.get_u32();
                        let begin = payload.get_u32();
                        Message::Piece {
                            index,
                            begin,
                            data: payload.freeze(),
                        }
                    }
                    _ => {
                        let id = payload.get_u8();
                        Message::Extended {
                            id,
                            payload: payload.freeze(),
                        }
                    }
                }
            }
            _ if layout(id).is_none() => {
                src.advance(5);
                Message::Unknown {
                    id,
                    payload: src.split_to(total - 5).freeze(),
                }
            }
            // Fixed-size messages: read in place, then drop the frame.
            _ => {
                let p = &src[5..total];
                let msg = match id {
                    ids::CHOKE => Message::Choke,
                    ids::UNCHOKE => Message::Unchoke,
                    ids::INTERESTED => Message::Interested,
                    ids::NOT_INTERESTED => Message::NotInterested,
                    ids::HAVE => Message::Have {
                        index: (&p[..]).get_u32(),
                    },
                    ids::REQUEST => Message::Request(read_block(p)),
                    ids::CANCEL => Message::Cancel(read_block(p)),
                    ids::PORT => Message::Port((&p[..]).get_u16()),
                    ids::SUGGEST => Message::Suggest {
                        index: (&p[..]).get_u32(),
                    },
                    ids::HAVE_ALL => Message::HaveAll,
                    ids::HAVE_NONE => Message::HaveNone,
                    ids::REJECT_REQUEST => Message::RejectRequest(read_block(p)),
                    ids::ALLOWED_FAST => Message::AllowedFast {
                        index: (&p[..]).get_u32(),
                    },
                    _ => unreachable!("every known id is handled above"),
                };
                src.advance(total);
                msg
            }
        };
        Ok(Some(msg))
    }
}

/// Shows at most a few bytes of a payload, then its length: a `piece` must not dump 16 KiB
/// into a log line.
struct Abbrev<'a>(&'a [u8]);

impl fmt::Debug for Abbrev<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const SHOWN: usize = 32;
        let shown = &self.0[..self.0.len().min(SHOWN)];
        write!(f, "b\"{}\"", shown.escape_ascii())?;
        if self.0.len() > SHOWN {
            write!(f, "... ({} bytes)", self.0.len())?;
        }
        Ok(())
    }
}

impl fmt::Debug for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Message::KeepAlive => f.write_str("KeepAlive"),
            Message::Choke => f.write_str("Choke"),
            Message::Unchoke => f.write_str("Unchoke"),
            Message::Interested => f.write_str("Interested"),
            Message::NotInterested => f.write_str("NotInterested"),
            Message::HaveAll => f.write_str("HaveAll"),
            Message::HaveNone => f.write_str("HaveNone"),
            Message::Have { index } => f.debug_struct("Have").field("index", index).finish(),
            Message::Suggest { index } => f.debug_struct("Suggest").field("index", index).finish(),
            Message::AllowedFast { index } => {
                f.debug_struct("AllowedFast").field("index", index).finish()
            }
            Message::Request(r) => f.debug_tuple("Request").field(r).finish(),
            Message::Cancel(r) => f.debug_tuple("Cancel").field(r).finish(),
            Message::RejectRequest(r) => f.debug_tuple("RejectRequest").field(r).finish(),
            Message::Port(p) => f.debug_tuple("Port").field(p).finish(),
            Message::Bitfield(b) => f.debug_tuple("Bitfield").field(&Abbrev(b)).finish(),
            Message::Piece { index, begin, data } => f
                .debug_struct("Piece")
                .field("index", index)
                .field("begin", begin)
                .field("data", &Abbrev(data))
                .finish(),
            Message::Extended { id, payload } => f
                .debug_struct("Extended")
                .field("id", id)
                .field("payload", &Abbrev(payload))
                .finish(),
            Message::Unknown { id, payload } => f
                .debug_struct("Unknown")
                .field("id", id)
                .field("payload", &Abbrev(payload))
                .finish(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAX: u32 = 1 << 20;

    fn decode_all(bytes: &[u8]) -> Result<Vec<Message>, WireError> {
        let mut buf = BytesMut::from(bytes);
        let mut out = Vec::new();
        while let Some(m) = Message::decode(&mut buf, MAX)? {
            out.push(m);
        }
        assert!(buf.is_empty(), "left over: {:?}", &buf[..]);
        Ok(out)
    }

    #[test]
    fn piece_header_matches_encode() {
        let msg = Message::Piece {
            index: 1,
            begin: 0x4000,
            data: Bytes::from_static(b"abc"),
        };
        let bytes = msg.to_bytes();
        assert_eq!(&bytes[..13], &piece_header(1, 0x4000, 3));
        assert_eq!(&bytes[13..], b"abc");
        assert_eq!(
            piece_header(1, 2, 16384),
            [0, 0, 0x40, 9, 7, 0, 0, 0, 1, 0, 0, 0, 2]
        );
    }

    #[test]
    fn piece_payload_is_not_copied() {
        let msg = Message::Piece {
            index: 3,
            begin: 0,
            data: Bytes::from(vec![7u8; 100]),
        };
        let mut buf = BytesMut::new();
        msg.encode(&mut buf);
        let base = buf.as_ptr() as usize;
        let Some(Message::Piece { data, .. }) = Message::decode(&mut buf, MAX).unwrap() else {
            panic!()
        };
        assert_eq!(
            data.as_ptr() as usize,
            base + 13,
            "block shares the read buffer"
        );
    }

    #[test]
    fn fixed_size_length_errors_name_the_message() {
        let err = decode_all(&[0, 0, 0, 4, 4, 0, 0, 1]).unwrap_err();
        assert!(matches!(
            err,
            WireError::PayloadLength {
                id: 4,
                name: "have",
                len: 3,
                expected: PayloadLen::Exactly(4)
            }
        ));
        assert_eq!(
            err.to_string(),
            "invalid have message (id 4): payload is 3 bytes, expected exactly 4"
        );
        // Detected from the header alone, before the payload arrives.
        let mut buf = BytesMut::from(&[0u8, 0, 0, 14, 6][..]);
        assert!(matches!(
            Message::decode(&mut buf, MAX),
            Err(WireError::PayloadLength {
                id: 6,
                name: "request",
                len: 13,
                ..
            })
        ));
        let mut buf = BytesMut::from(&[0u8, 0, 0, 5, 7][..]);
        assert!(matches!(
            Message::decode(&mut buf, MAX),
            Err(WireError::PayloadLength {
                id: 7,
                name: "piece",
                len: 4,
                expected: PayloadLen::AtLeast(8)
            })
        ));
        let mut buf = BytesMut::from(&[0u8, 0, 0, 1, 20][..]);
        assert!(matches!(
            Message::decode(&mut buf, MAX),
            Err(WireError::PayloadLength { id: 20, .. })
        ));
        let mut buf = BytesMut::from(&[0u8, 0, 0, 2, 0, 0][..]);
        assert!(matches!(
            Message::decode(&mut buf, MAX),
            Err(WireError::PayloadLength { id: 0, .. })
        ));
    }

    #[test]
    fn huge_prefix_is_an_error_without_reserving() {
        let mut buf = BytesMut::from(&[0xffu8, 0xff, 0xff, 0xff][..]);
        let cap = buf.capacity();
        match Message::decode(&mut buf, MAX) {
            Err(WireError::FrameTooLarge { len, max }) => {
                assert_eq!(len, u64::from(u32::MAX));
                assert_eq!(max, MAX);
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(buf.capacity(), cap);
        // Also with the largest limit there is: the prefix alone reserves nothing.
        let mut buf = BytesMut::from(&[0xffu8, 0xff, 0xff, 0xff][..]);
        assert!(Message::decode(&mut buf, u32::MAX).unwrap().is_none());
        assert_eq!(buf.capacity(), cap);
    }

    #[test]
    fn reserves_current_frame_only() {
        let mut buf = BytesMut::from(&[0u8, 0, 0x40, 9, 7][..]);
        assert!(Message::decode(&mut buf, MAX).unwrap().is_none());
        assert!(buf.capacity() >= 16384 + 13);
        assert!(buf.capacity() <= 2 * (16384 + 13));
        assert_eq!(buf.len(), 5, "nothing consumed");
    }

    #[test]
    fn debug_abbreviates_blocks() {
        let msg = Message::Piece {
            index: 1,
            begin: 2,
            data: Bytes::from(vec![b'x'; 16384]),
        };
        let s = format!("{msg:?}");
        assert!(s.len() < 200, "{s}");
        assert!(s.contains("16384 bytes"), "{s}");
    }

    #[test]
    fn names() {
        assert_eq!(Message::KeepAlive.name(), "keep-alive");
        assert_eq!(Message::Have { index: 0 }.name(), "have");
        assert_eq!(
            Message::Unknown {
                id: 4,
                payload: Bytes::new()
            }
            .name(),
            "unknown"
        );
        assert_eq!(
            Message::RejectRequest(BlockInfo {
                piece: PieceIndex(0),
                begin: 0,
                len: 0
            })
            .name(),
            "reject request"
        );
    }
}
