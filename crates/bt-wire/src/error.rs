//! The error type shared by the handshake and message decoders and the codecs.

use std::fmt;
use std::io;

/// What a message's payload length must be, as reported by [`WireError::PayloadLength`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PayloadLen {
    /// Exactly this many bytes (fixed-size messages such as `have` or `request`).
    Exactly(u32),
    /// At least this many bytes (`piece` needs its 8-byte header, `extended` its id byte).
    AtLeast(u32),
}

impl PayloadLen {
    /// Whether a payload of `len` bytes satisfies this rule.
    pub fn admits(self, len: u32) -> bool {
        match self {
            PayloadLen::Exactly(n) => len == n,
            PayloadLen::AtLeast(n) => len >= n,
        }
    }
}

impl fmt::Display for PayloadLen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PayloadLen::Exactly(n) => write!(f, "exactly {n}"),
            PayloadLen::AtLeast(n) => write!(f, "at least {n}"),
        }
    }
}

/// Everything that can go wrong while decoding or encoding the peer wire protocol.
///
/// Every variant but [`WireError::Io`] means the peer (or the caller, when encoding) broke
/// the protocol; the connection should be closed. Unknown message ids are *not* errors:
/// they decode to [`Message::Unknown`](crate::Message::Unknown).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WireError {
    /// A frame's length prefix is larger than the configured maximum. Raised as soon as
    /// the 4-byte prefix has been read, before any buffer is reserved for the frame.
    #[error("frame of {len} bytes exceeds the limit of {max} bytes")]
    FrameTooLarge {
        /// The frame length: the length prefix read from the wire, or the length an
        /// outgoing message would need. It counts the id byte and the payload, not the
        /// 4 prefix bytes themselves.
        len: u64,
        /// The limit in force (see [`MessageCodec::with_max_frame_len`](crate::MessageCodec::with_max_frame_len)).
        max: u32,
    },

    /// A message's payload has a length its type does not allow (a `have` of 3 bytes,
    /// a `request` of 13, a `piece` shorter than its 8-byte header, ...).
    #[error("invalid {name} message (id {id}): payload is {len} bytes, expected {expected}")]
    PayloadLength {
        /// The message id byte.
        id: u8,
        /// The message's name (`"have"`, `"request"`, ...).
        name: &'static str,
        /// The payload length: the declared frame length minus the id byte.
        len: u32,
        /// What the payload length must be for this message.
        expected: PayloadLen,
    },

    /// The first byte of a handshake (the protocol string's length) is not 19. An
    /// encrypted (MSE/PE) stream or a non-BitTorrent peer looks like this.
    #[error("handshake protocol string length is {found}, expected 19")]
    ProtocolLength {
        /// The byte that was found.
        found: u8,
    },

    /// The handshake's protocol string is not `BitTorrent protocol`.
    #[error("handshake protocol string is \"{}\", expected \"BitTorrent protocol\"", found.escape_ascii())]
    ProtocolString {
        /// The protocol string bytes received so far (up to 19). The error is raised
        /// at the first wrong byte, so this may be shorter than 19.
        found: Vec<u8>,
    },

    /// An I/O error from the underlying transport (only produced through the codecs, which
    /// tokio-util requires to be convertible from [`io::Error`]).
    #[error("i/o error: {0}")]
    Io(#[from] io::Error),
}
