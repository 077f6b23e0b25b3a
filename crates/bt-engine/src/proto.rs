//! The sans-I/O core: every decision of the engine, as state machines that take events
//! and the time as arguments and answer with actions.
//!
//! Nothing here names tokio, sockets, files, threads, the clock or ambient randomness:
//! `now` is an argument and randomness comes from seeded generators, so the same inputs
//! give the same decisions, in the tokio driver as in the swarm simulator.
//!
//! - [`picker`]: which blocks to request from whom (rarest first, endgame);
//! - [`choker`]: whom to upload to (tit-for-tat, optimistic unchoke);
//! - [`rate`]: transfer rates over a sliding window;
//! - [`pex`], `extended`, [`ut_metadata`]: BEP 10 extensions on a connection (PEX,
//!   serving our metadata);
//! - [`metadata`]: assembling a magnet link's metadata from peers.

pub mod choker;
pub(crate) mod extended;
pub mod metadata;
pub mod pex;
pub mod picker;
pub mod rate;
pub mod ut_metadata;
