//! Why a connection ends: [`Disconnect`], and [`EncryptionError`] for a failed MSE/PE
//! handshake. A misbehaving peer is a `Disconnect` with a reason, logged, never an error of
//! the torrent.

use std::io;
use std::time::Duration;

use bt_meta::{InfoHash, PeerId};
use bt_wire::mse::MseError;
use bt_wire::WireError;

/// Why a connection ended. Logged, never fatal to the torrent.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Disconnect {
    /// The peer broke the framing (oversized length prefix, bad payload length, ...).
    #[error("wire error: {0}")]
    Wire(#[from] WireError),
    /// The peer closed the connection.
    #[error("connection closed by peer")]
    Eof,
    /// A socket error.
    #[error("i/o error: {0}")]
    Io(#[source] io::Error),
    /// Nothing arrived for the idle timeout (300 s).
    #[error("idle for {0:?}")]
    Idle(Duration),
    /// The connect or the handshake did not finish within the handshake timeout (10 s).
    #[error("handshake timed out")]
    HandshakeTimeout,
    /// The encrypted (MSE/PE) handshake failed, or the policy refused the connection.
    #[error(transparent)]
    Encryption(EncryptionError),
    /// The peer's handshake names a torrent we do not serve.
    #[error("handshake for unknown torrent {0}")]
    UnknownTorrent(InfoHash),
    /// The peer answered our handshake for another torrent.
    #[error("handshake info-hash {got} does not match {expected}")]
    WrongInfoHash {
        /// What the peer sent.
        got: InfoHash,
        /// What we asked for.
        expected: InfoHash,
    },
    /// The peer id in the handshake is ours.
    #[error("connected to ourselves")]
    SelfConnection,
    /// We are already connected to this peer id.
    #[error("already connected to peer id {0}")]
    Duplicate(PeerId),
    /// The peer (address or id) is banned for sending bad data.
    #[error("peer is banned")]
    Banned,
    /// The torrent or session is at its connection limit.
    #[error("connection limit reached")]
    TooManyPeers,
    /// The peer sent a `bitfield` of the wrong length or with spare bits set.
    #[error("bad bitfield: {0}")]
    BadBitfield(String),
    /// A piece index past the end of the torrent.
    #[error("{msg} for piece {index}, torrent has {num_pieces} pieces")]
    PieceOutOfRange {
        /// The message that carried it.
        msg: &'static str,
        /// The bad index.
        index: u32,
        /// Number of pieces.
        num_pieces: u32,
    },
    /// A `request` (or `cancel`, `reject`) that is not a valid block of the torrent.
    #[error("invalid {msg} (piece {index}, begin {begin}, length {length})")]
    InvalidBlock {
        /// The message that carried it.
        msg: &'static str,
        /// Piece index.
        index: u32,
        /// Offset in the piece.
        begin: u32,
        /// Length.
        length: u32,
    },
    /// A `piece` we never asked for (beyond a few stale ones after a cancel).
    #[error("unrequested block (piece {index}, begin {begin}, length {length})")]
    UnrequestedBlock {
        /// Piece index.
        index: u32,
        /// Offset in the piece.
        begin: u32,
        /// Length.
        length: u32,
    },
    /// Too many requests while we choke the peer, or too many queued.
    #[error("request flood: {0} requests ignored")]
    RequestFlood(u32),
    /// A fast-extension message from a peer that did not negotiate it.
    #[error("{0} without the fast extension")]
    FastNotNegotiated(&'static str),
    /// The peer contributed to pieces that failed their hash check.
    #[error("banned after {0} hash failures")]
    HashFailures(u32),
    /// The writer could not keep up: the command queue is full.
    #[error("peer too slow: command queue full")]
    Slow,
    /// Both sides are seeds; nothing to exchange.
    #[error("both sides are seeds")]
    BothSeeds,
    /// The torrent is stopping.
    #[error("torrent stopping")]
    Shutdown,
    /// Reading a block to upload failed.
    #[error("reading block (piece {index}, begin {begin}) failed: {source}")]
    ReadFailed {
        /// Piece index.
        index: u32,
        /// Offset in the piece.
        begin: u32,
        /// The storage error.
        source: io::Error,
    },
}

impl From<EncryptionError> for Disconnect {
    fn from(e: EncryptionError) -> Self {
        match e {
            EncryptionError::Io(e) if e.kind() == io::ErrorKind::UnexpectedEof => Disconnect::Eof,
            EncryptionError::Io(e) => Disconnect::Io(e),
            EncryptionError::Timeout => Disconnect::HandshakeTimeout,
            other => Disconnect::Encryption(other),
        }
    }
}

/// Why an encrypted handshake failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EncryptionError {
    /// The MSE exchange itself failed.
    #[error(transparent)]
    Mse(#[from] MseError),
    /// The peer sent an MSE handshake and our policy is plaintext only.
    #[error("encrypted handshake refused: encryption is disabled")]
    Refused,
    /// The peer sent a plaintext handshake and our policy requires encryption.
    #[error("plaintext handshake refused: encryption is required")]
    PlaintextRefused,
    /// The socket failed or closed during the handshake.
    #[error("i/o error during encrypted handshake: {0}")]
    Io(#[from] io::Error),
    /// The handshake did not finish in time.
    #[error("encrypted handshake timed out")]
    Timeout,
}
