//! The engine: piece picker, choker, storage and the tokio driver that downloads and seeds torrents.
pub mod announce;
pub mod choker;
pub mod dht_peers;
mod disk;
pub mod error;
mod extended;
pub mod metadata;
pub mod peer;
pub mod pex;
pub mod picker;
pub mod rate;
pub mod resume;
pub mod session;
pub mod storage;
pub mod torrent;
pub mod ut_metadata;

pub use error::{Error, Result};
pub use session::{AddTorrentParams, Session, SessionConfig, StorageKind};
pub use torrent::{TorrentConfig, TorrentHandle, TorrentState, TorrentStats};
