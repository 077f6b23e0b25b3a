//! Metainfo (`.torrent`) parsing and validation, magnet links, piece geometry and torrent creation.

pub mod hash;

pub use hash::{InfoHash, InfoHashV2, PeerId};
