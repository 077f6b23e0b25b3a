//! The sans-I/O core: every decision of the engine, as state machines that take events
//! and the time as arguments and answer with actions.
//!
//! Nothing here names tokio, sockets, files, threads, the clock or ambient randomness:
//! `now` is an argument and randomness comes from seeded generators, so the same inputs
//! give the same decisions, in the tokio driver as in the swarm simulator.
//!
//! - [`Torrent`]: one torrent's decisions (whom to dial, ban or evict, what to request,
//!   whom to unchoke), built on the rest;
//! - [`picker`]: which blocks to request from whom (rarest first, endgame);
//! - [`choker`]: whom to upload to (tit-for-tat, optimistic unchoke);
//! - [`rate`]: transfer rates over a sliding window;
//! - [`pex`], `extended`, [`ut_metadata`]: BEP 10 extensions on a connection (PEX,
//!   serving our metadata);
//! - [`metadata`]: assembling a magnet link's metadata from peers.

pub mod choker;
mod disconnect;
pub(crate) mod extended;
pub mod metadata;
mod peer;
mod peer_book;
pub mod pex;
pub mod picker;
pub mod rate;
mod torrent;
pub mod ut_metadata;

pub use disconnect::{Disconnect, EncryptionError};
pub use peer::{MAX_QUEUE_DEPTH, MIN_QUEUE_DEPTH};
pub use picker::Priority;
pub use torrent::{
    first_and_last_first, our_handshake, piece_priorities, Action, Command, Event, PeerLimits,
    PeerSummary, Torrent, TorrentConfig, TorrentError, TorrentParams, TorrentState, TorrentStats,
    BAN_ALONE_STRIKES, BAN_SHARED_STRIKES, IDLE_EVICT_AFTER, MAX_DISK_INFLIGHT,
    MAX_IGNORED_REQUESTS, MAX_REDIAL_DELAY, MAX_REQUEST_LEN, MAX_UPLOAD_QUEUE, REQUEST_TIMEOUT,
    RESUME_SAVE_INTERVAL, TICK,
};

/// An opaque peer identity: the driver numbers its connections, the state machines
/// know peers by these keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PeerKey(pub u64);
