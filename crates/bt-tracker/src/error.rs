//! The crate's one error type.

use std::net::SocketAddr;
use std::time::Duration;

/// Everything that can go wrong talking to a tracker or serving as one.
///
/// Network-level variants carry the tracker URL; parse-level variants carry the
/// byte offset or field name (the caller knows which tracker it asked, and
/// [`crate::Tiers`] pairs each error with its URL).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The tracker URL could not be understood.
    #[error("invalid tracker url {url:?}: {reason}")]
    InvalidUrl {
        /// The URL as given.
        url: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A scheme other than `http`, `https` or `udp`.
    #[error("unsupported tracker url scheme in {url:?}")]
    UnsupportedScheme {
        /// The URL as given.
        url: String,
    },
    /// Could not connect, resolve, send or receive.
    #[error("tracker {url:?} unreachable: {reason}")]
    Unreachable {
        /// The URL asked.
        url: String,
        /// The underlying failure, as text.
        reason: String,
    },
    /// No (complete) answer within the configured time.
    #[error("tracker {url:?} timed out after {elapsed:?}")]
    Timeout {
        /// The URL asked.
        url: String,
        /// How long we waited in total.
        elapsed: Duration,
    },
    /// The HTTP status was not 200 and the body held no failure reason.
    #[error("tracker {url:?} answered http status {status}")]
    HttpStatus {
        /// The URL asked.
        url: String,
        /// The status code.
        status: u16,
    },
    /// The connection closed before the announced body length arrived.
    #[error("response from {url:?} truncated: {reason}")]
    Truncated {
        /// The URL asked.
        url: String,
        /// The underlying failure, as text.
        reason: String,
    },
    /// The response body is longer than the configured cap.
    #[error("response from {url:?} exceeds {limit} bytes")]
    TooLarge {
        /// The URL asked.
        url: String,
        /// The cap in force.
        limit: usize,
    },
    /// More redirects than allowed (a loop, or a very long chain).
    #[error("too many redirects from {url:?} (limit {limit})")]
    RedirectLoop {
        /// The URL first asked.
        url: String,
        /// The redirect limit in force.
        limit: u32,
    },
    /// The body is not bencode.
    #[error("response is not bencode: {detail}")]
    NotBencode {
        /// Byte offset where decoding failed (also in `detail`'s message).
        offset: usize,
        /// The decoder's error.
        detail: bt_bencode::Error,
    },
    /// The response is bencode but not the expected shape.
    #[error("response field {field:?} missing or invalid")]
    BadField {
        /// The key that is missing or has the wrong type or range.
        field: &'static str,
    },
    /// The tracker refused: its `failure reason` (HTTP) or error message (UDP).
    #[error("tracker failure: {reason:?}")]
    Failure {
        /// The tracker's text, lossily decoded as UTF-8.
        reason: String,
    },
    /// Compact peers whose length is not a multiple of the entry size.
    #[error("compact peers of {len} bytes is not a multiple of {entry_len}")]
    BadCompactLength {
        /// The length of the compact string.
        len: usize,
        /// 6 for IPv4, 18 for IPv6.
        entry_len: usize,
    },
    /// A UDP packet too short for its action.
    #[error("udp packet of {len} bytes is shorter than {need} for action {action}")]
    ShortPacket {
        /// The packet length.
        len: usize,
        /// The least length the action needs.
        need: usize,
        /// The action field (or 0 when even that is missing).
        action: u32,
    },
    /// A UDP packet with an action we do not know, or one not allowed here.
    #[error("unexpected udp action {action}")]
    BadAction {
        /// The action field.
        action: u32,
    },
    /// A UDP request whose protocol id is not the BEP 15 magic.
    #[error("udp connect with bad protocol id {protocol_id:#x}")]
    BadProtocolId {
        /// The 64-bit value received.
        protocol_id: u64,
    },
    /// The tracker has no scrape URL (last path segment is not `announce...`).
    #[error("tracker {url:?} does not support scrape")]
    ScrapeUnsupported {
        /// The announce URL.
        url: String,
    },
    /// A tracker list with no usable URL.
    #[error("no trackers to ask")]
    NoTrackers,
    /// Binding or serving a socket for the built-in tracker.
    #[error("tracker server on {addr}: {source}")]
    Io {
        /// The address being bound or served.
        addr: SocketAddr,
        /// The I/O error.
        source: std::io::Error,
    },
    /// Built-in tracker: the torrent cap is reached and this torrent is new.
    #[error("tracker is full: {limit} torrents")]
    TooManyTorrents {
        /// The cap in force.
        limit: usize,
    },
    /// Built-in tracker: a request parameter is missing or malformed.
    #[error("bad request parameter {param:?}")]
    BadParam {
        /// The parameter name.
        param: &'static str,
    },
}

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl From<bt_bencode::Error> for Error {
    fn from(detail: bt_bencode::Error) -> Self {
        Error::NotBencode {
            offset: detail.offset,
            detail,
        }
    }
}
