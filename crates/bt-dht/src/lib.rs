//! The Kademlia DHT (BEP 5): KRPC messages, a routing table, iterative lookups,
//! a peer store, and a small tokio UDP node.
//!
//! Layers, from the bottom:
//! - [`krpc`]: [`KrpcMessage`] with pure [`KrpcMessage::encode`] / [`KrpcMessage::decode`]
//!   (bounded: packets over [`MAX_PACKET_IN_LEN`] are not read); [`compact`] node and
//!   peer info; [`NodeId`] and the XOR [`Distance`].
//! - Sans-I/O parts, each driven by an explicit `now: Instant`: [`RoutingTable`]
//!   (k-buckets split around our id, good/questionable/bad nodes, replacement
//!   caches, ping-before-evict), [`Lookup`] (alpha = 3 queries in flight toward the
//!   k = 8 closest), [`Tokens`] (rotating secrets), [`PeerStore`] (expiry and caps)
//!   and [`RateLimiter`] (per-IP and global token buckets).
//! - [`Dht`]: the sans-I/O state machine tying them together. Feed it
//!   [`Dht::handle_packet`] and [`Dht::handle_timeout`]; drain
//!   [`Dht::poll_transmit`] and [`Dht::poll_event`]; sleep until [`Dht::poll_timeout`].
//!   Commands ([`Dht::bootstrap`], [`Dht::get_peers`], [`Dht::announce`],
//!   [`Dht::ping`], [`Dht::add_node`], [`Dht::load_nodes`]) return a [`RequestId`]
//!   that the resulting [`Event`]s carry.
//! - [`DhtNode`]: a tokio driver owning one `UdpSocket`, with async
//!   [`DhtNode::get_peers`] (or [`DhtNode::get_peers_stream`]), [`DhtNode::announce`],
//!   [`DhtNode::ping`], [`DhtNode::bootstrap`] (host names resolved with
//!   `tokio::net::lookup_host`; [`DEFAULT_BOOTSTRAP`] names the public routers),
//!   [`DhtNode::add_node`], [`DhtNode::save_nodes`] / [`DhtNode::load_nodes`]
//!   ([`nodes_file`]: a bencoded list of compact nodes, written atomically) and
//!   [`DhtNode::shutdown`].
//!
//! Wiring, in short:
//! ```no_run
//! # async fn demo(info_hash: bt_meta::InfoHash) -> bt_dht::Result<()> {
//! use bt_dht::{DhtConfig, DhtNode, PeerPort, DEFAULT_BOOTSTRAP};
//! let node = DhtNode::bind("0.0.0.0:6881".parse().unwrap(), DhtConfig::default()).await?;
//! let _ = node.load_nodes("dht.nodes").await; // a missing file is fine
//! node.bootstrap(DEFAULT_BOOTSTRAP).await?;
//! let peers = node.get_peers(info_hash).await?;
//! let report = node.announce(info_hash, PeerPort::Port(6881)).await?;
//! println!("{} peers; stored on {} nodes", peers.len(), report.stored_on);
//! node.save_nodes("dht.nodes").await?;
//! node.shutdown().await;
//! # Ok(()) }
//! ```
//!
//! Not done here: BEP 42 (node ids derived from the IP are neither enforced nor
//! chosen; our id is random), BEP 44 (arbitrary data storage: `get`/`put` are
//! answered with error 204), BEP 33 (scrape), BEP 51 (`sample_infohashes`),
//! the BEP 32 `want` argument (we answer with the asker's address family only),
//! read-only mode for ourselves (BEP 43; read-only *peers* are honoured: they
//! are not put in the routing table), limiting nodes per IP in the routing
//! table, and re-announcing on a timer (the caller repeats [`Dht::announce`]).
//! Peer connections belong to the engine.

pub mod compact;
mod dht;
mod error;
pub mod krpc;
mod lookup;
mod node;
mod node_id;
pub mod nodes_file;
mod peer_store;
mod rate_limit;
mod routing;
mod tokens;

pub use bt_meta::InfoHash;
pub use compact::NodeInfo;
pub use dht::{Dht, DhtConfig, Event, PeerPort, RequestId, Stats};
pub use error::{Error, Result};
pub use krpc::{
    Body, ErrorCode, ErrorMessage, KrpcMessage, Query, Response, TransactionId, MAX_PACKET_IN_LEN,
    MAX_PACKET_OUT_LEN,
};
pub use lookup::{Lookup, LookupConfig, LookupKind, LookupStats, QueryTarget};
pub use node::{AnnounceReport, DhtNode, PeerStream, DEFAULT_BOOTSTRAP};
pub use node_id::{Distance, NodeId};
pub use peer_store::{PeerStore, PeerStoreConfig, Stored};
pub use rate_limit::{RateLimitConfig, RateLimiter};
pub use routing::{Insertion, NodeState, RoutingConfig, RoutingTable};
pub use tokens::Tokens;
