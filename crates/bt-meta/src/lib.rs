//! Metainfo (`.torrent`) parsing and validation, magnet links, piece geometry and torrent creation.

pub mod error;
pub mod geometry;
pub mod hash;
pub mod magnet;
pub mod metainfo;
pub mod path;
mod walk;

pub use error::{Error, Result};
pub use geometry::{BlockInfo, FileSpan, FileSpans, Geometry, PieceIndex, BLOCK_LEN};
pub use hash::{InfoHash, InfoHashV2, PeerId};
pub use magnet::Magnet;
pub use metainfo::{FileAttr, FileEntry, Info, MetaVersion, Metainfo};
