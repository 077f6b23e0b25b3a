//! uTP, the Micro Transport Protocol (BEP 29), sans-I/O: datagrams and time in, stream
//! bytes and datagrams out.
//!
//! # Main types
//!
//! - [`Packet`] and [`Header`]: the wire format, decoded strictly from a borrowed datagram
//!   (no allocation, typed [`Error`]s, never a panic) and encoded into a `Vec<u8>`;
//!   [`SelectiveAck`] is the extension 1 bitmask.
//! - [`Connection`]: one uTP stream. The house verbs: [`Connection::handle_datagram`],
//!   [`Connection::handle_timeout`], [`Connection::poll_transmit`],
//!   [`Connection::poll_timeout`], [`Connection::poll_event`], and on the stream side
//!   [`Connection::write`] (a bounded send buffer), [`Connection::read`] and
//!   [`Connection::close`]. It does the SYN/STATE handshake, in-order delivery through a
//!   reorder buffer bounded by the advertised window, selective ACKs both ways, fast
//!   retransmit (3 duplicate ACKs or 3 packets SACKed past a hole), retransmission timeouts
//!   from the RTT with exponential backoff, keep-alives, FIN and RESET.
//! - [`Ledbat`]: the congestion controller, LEDBAT with a 100 ms target queueing delay.
//! - [`RttEstimator`] and [`MtuSearch`] (binary search of the path MTU with probes sent
//!   with the don't-fragment bit, [`Transmit::dont_fragment`]).
//! - [`Endpoint`]: many connections on one UDP socket: demultiplexes datagrams by peer
//!   address and connection id, accepts SYNs up to [`EndpointConfig::max_incoming`], answers
//!   packets for unknown connections with a RESET.
//!
//! # Driving it
//!
//! A driver owns the UDP socket and the clock. It hands every datagram it receives to
//! [`Endpoint::handle_datagram`], calls [`Endpoint::handle_timeout`] when
//! [`Endpoint::poll_timeout`] says, and after either sends whatever
//! [`Endpoint::poll_transmit`] gives. Here two endpoints deliver to each other at once:
//!
//! ```
//! use core::time::Duration;
//! use std::net::SocketAddr;
//!
//! use bt_utp::{Endpoint, EndpointConfig};
//!
//! let a_addr: SocketAddr = "10.0.0.1:6881".parse().unwrap();
//! let b_addr: SocketAddr = "10.0.0.2:6881".parse().unwrap();
//! let mut a = Endpoint::new(EndpointConfig::default(), 1);
//! let mut b = Endpoint::new(EndpointConfig::default(), 2);
//! let now = Duration::from_secs(1);
//! let dial = a.connect(now, b_addr);
//! a.connection_mut(dial).unwrap().write(b"hello").unwrap();
//! let mut buf = Vec::new();
//! for _ in 0..3 {
//!     while let Some(t) = a.poll_transmit(now, &mut buf) {
//!         let _ = b.handle_datagram(now, a_addr, &buf[..t.len]);
//!     }
//!     while let Some(t) = b.poll_transmit(now, &mut buf) {
//!         let _ = a.handle_datagram(now, b_addr, &buf[..t.len]);
//!     }
//! }
//! let incoming = b.accept().unwrap();
//! let mut got = [0; 16];
//! let n = b.connection_mut(incoming).unwrap().read(&mut got).unwrap();
//! assert_eq!(&got[..n], b"hello");
//! ```
//!
//! # Time and randomness
//!
//! Time is a [`Duration`](core::time::Duration) since an epoch the driver chooses; packet
//! timestamps are its microseconds modulo 2^32. Connection ids and initial sequence numbers
//! come from the seed given to [`Endpoint::new`] (or are passed to [`Connection::connect`]).
//! Nothing here reads a clock, opens a socket or starts a thread.
//!
//! # What it does not do
//!
//! Own a socket, a timer or a thread (the driver does), pace packets, or choose between uTP
//! and TCP.

mod connection;
mod endpoint;
mod ledbat;
mod mtu;
mod packet;
mod rtt;
mod sack;

#[cfg(test)]
mod sim;
#[cfg(test)]
mod tests;

pub use connection::{CloseReason, Config, Connection, Event, Stats, Transmit};
pub use endpoint::{ConnectionHandle, Endpoint, EndpointConfig, EndpointTransmit};
pub use ledbat::Ledbat;
pub use mtu::MtuSearch;
pub use packet::{Header, Packet, PacketType, EXTENSION_SACK, HEADER_LEN, VERSION};
pub use rtt::RttEstimator;
pub use sack::{SackBits, SelectiveAck, MAX_SACK_LEN};

/// Why a datagram was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// Shorter than the fixed header.
    #[error("datagram of {len} bytes is shorter than the 20-byte uTP header")]
    TooShort {
        /// The datagram's length.
        len: usize,
    },
    /// A version other than 1.
    #[error("uTP version {version}, expected 1")]
    Version {
        /// The version nibble.
        version: u8,
    },
    /// A type nibble above 4.
    #[error("unknown packet type {value}")]
    PacketType {
        /// The type nibble.
        value: u8,
    },
    /// An extension's two header bytes run past the datagram.
    #[error("extension header at offset {offset} runs past the datagram")]
    ExtensionTruncated {
        /// Offset of the extension header.
        offset: usize,
    },
    /// An extension claims more bytes than the datagram has left.
    #[error("extension {extension} at offset {offset} claims {len} bytes, {left} left")]
    ExtensionLength {
        /// The extension's type.
        extension: u8,
        /// The length it claims.
        len: usize,
        /// Offset of the extension header.
        offset: usize,
        /// Bytes after the extension header.
        left: usize,
    },
    /// An empty selective ACK.
    #[error("selective ack of {len} bytes")]
    SackLength {
        /// The bitmask's length.
        len: usize,
    },
    /// A second selective ACK in one packet.
    #[error("second selective ack at offset {offset}")]
    DuplicateSack {
        /// Offset of the second extension header.
        offset: usize,
    },
    /// Payload on a packet other than `Data`.
    #[error("{len} payload bytes on a {packet_type:?} packet")]
    UnexpectedPayload {
        /// The packet's type.
        packet_type: PacketType,
        /// The payload's length.
        len: usize,
    },
    /// A packet for another connection.
    #[error("connection id {got}, expected {expected}")]
    ConnectionId {
        /// The id in the packet.
        got: u16,
        /// This connection's receive id.
        expected: u16,
    },
    /// An acknowledgement of a sequence number never sent.
    #[error("ack_nr {ack_nr} acknowledges packets never sent (next is {next_seq})")]
    AckOfUnsent {
        /// The ack_nr in the packet.
        ack_nr: u16,
        /// The next sequence number this side would send.
        next_seq: u16,
    },
    /// A packet that makes no sense in the connection's state (a SYN on an open
    /// connection with another sequence number, data before the handshake).
    #[error("{packet_type:?} packet unexpected in state {state}")]
    Unexpected {
        /// The packet's type.
        packet_type: PacketType,
        /// The connection's state.
        state: &'static str,
    },
    /// A SYN refused: too many incoming connections, or its ids are taken.
    #[error("SYN refused")]
    Refused,
    /// A packet for no connection this endpoint holds.
    #[error("no connection with id {connection_id}")]
    UnknownConnection {
        /// The id in the packet.
        connection_id: u16,
    },
    /// The connection is closed and takes no more packets.
    #[error("connection closed")]
    Closed,
}

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = core::result::Result<T, E>;

/// Why a stream read or write did not move bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum StreamError {
    /// Nothing to read yet, or the send buffer is full; wait for an [`Event`].
    #[error("would block")]
    Blocked,
    /// The peer finished its side (FIN) and every byte before it has been read.
    #[error("stream finished")]
    Finished,
    /// [`Connection::close`] was called: no more writes.
    #[error("stream closed for writing")]
    WriteClosed,
    /// The connection is gone.
    #[error("connection closed: {0:?}")]
    Closed(CloseReason),
}
