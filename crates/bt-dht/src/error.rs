//! The crate's one error type.

use std::net::SocketAddr;
use std::path::PathBuf;

use crate::krpc::TransactionId;

/// Everything that can go wrong decoding KRPC, running a node or reading a nodes file.
///
/// Decoding variants carry the transaction id when one could be read, so the
/// state machine can answer a malformed query with error 203.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A datagram longer than the inbound cap; nothing of it was decoded.
    #[error("krpc packet of {len} bytes exceeds limit of {limit}")]
    PacketTooLarge {
        /// The datagram's length.
        len: usize,
        /// The cap in force.
        limit: usize,
    },
    /// The datagram is not one bencoded value (the source has the byte offset).
    #[error("krpc packet is not bencode: {source}")]
    Bencode {
        /// The decoder's error, with byte offset and key path.
        #[source]
        source: bt_bencode::Error,
    },
    /// Bencode, but not a KRPC message we understand.
    #[error(
        "malformed krpc message (transaction id {}): {reason}",
        fmt_tid(transaction_id)
    )]
    Malformed {
        /// The `t` key, when it was readable.
        transaction_id: Option<TransactionId>,
        /// Whether `y` said `r` or `e` (a reply, which is never answered).
        is_reply: bool,
        /// What is wrong, naming the key and quoting the value.
        reason: String,
    },
    /// A well-formed query with a method we do not serve (answered with 204).
    #[error("unknown krpc method {method:?} (transaction id {transaction_id})")]
    UnknownMethod {
        /// The query's transaction id.
        transaction_id: TransactionId,
        /// The method name, lossily decoded.
        method: String,
    },
    /// A query got no answer in time.
    #[error("query to {addr} timed out")]
    Timeout {
        /// The node asked.
        addr: SocketAddr,
    },
    /// A bootstrap host name did not resolve.
    #[error("cannot resolve {host:?}: {reason}")]
    Resolve {
        /// The `host:port` string as given.
        host: String,
        /// Why, as text.
        reason: String,
    },
    /// Binding, sending or receiving on the UDP socket failed.
    #[error("udp socket {addr}: {source}")]
    Io {
        /// The local address (or the one we tried to bind).
        addr: SocketAddr,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// Reading or writing a nodes file failed.
    #[error("nodes file {path:?}: {source}")]
    NodesFileIo {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A nodes file that is not a bencoded list of compact nodes.
    #[error("nodes file {path:?} is invalid: {reason}")]
    NodesFileInvalid {
        /// The file (empty when decoding bytes that came from no file).
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The node's task has stopped (after `shutdown`, or it failed).
    #[error("dht node has shut down")]
    Shutdown,
}

fn fmt_tid(tid: &Option<TransactionId>) -> String {
    match tid {
        Some(t) => t.to_string(),
        None => "unreadable".to_string(),
    }
}

impl Error {
    /// The transaction id a decoding error could read, if any.
    pub fn transaction_id(&self) -> Option<&TransactionId> {
        match self {
            Error::Malformed { transaction_id, .. } => transaction_id.as_ref(),
            Error::UnknownMethod { transaction_id, .. } => Some(transaction_id),
            _ => None,
        }
    }
}

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
