//! The engine: piece picker, choker, storage and the tokio driver that downloads and seeds torrents.
//!
//! # Driver
//!
//! [`Session`] owns one listening port and many torrents; [`Session::add_torrent`] opens a
//! torrent's storage, finds the pieces already there (a matching resume file in
//! `<download_dir>/.bt/<info-hash>.resume`, else hashing) and starts it. Each torrent is
//! a task that runs its sans-I/O [`proto::Torrent`] (which owns its picker, choker and
//! per-peer state); each connection is a reader and a writer task talking to it over
//! bounded channels; block writes and hash checks run on disk threads. A misbehaving peer
//! becomes a logged [`Disconnect`], never an [`Error`].
//!
//! ```no_run
//! use bt_engine::{AddTorrentParams, Session, SessionConfig};
//!
//! # async fn run(torrent_file: &[u8]) -> Result<(), Box<dyn std::error::Error>> {
//! let meta = bt_meta::Metainfo::from_bytes(torrent_file)?;
//! let session = Session::new(SessionConfig {
//!     listen_addr: "127.0.0.1:6881".parse()?,
//!     ..SessionConfig::default()
//! })
//! .await?;
//! let mut params = AddTorrentParams::new(meta, "downloads");
//! params.peers = vec!["127.0.0.1:6882".parse()?];
//! let torrent = session.add_torrent(params).await?;
//! let stats = torrent.wait_complete().await?;
//! println!("{} of {} bytes", stats.bytes_have, stats.total_len);
//! session.shutdown().await;
//! # Ok(()) }
//! ```
//!
//! `examples/embed.rs` runs a seeder and a leecher session in one process.
//!
//! Not here: argument parsing and terminal output (bt-cli), uTP.
mod driver;
pub mod error;
pub mod proto;
pub mod resume;
pub mod session;
pub mod sources;
pub mod storage;

pub use driver::encryption::{EncryptionPolicy, PeerStream};
pub use driver::metadata::{fetch_metadata, FetchedMetadata};
pub use driver::torrent::TorrentHandle;
pub use driver::transport::{Connection, Dialer, TcpTransport, Transport};
pub use error::{Error, Result};
pub use proto::EncryptionError;
pub use proto::{Disconnect, TorrentConfig, TorrentError, TorrentState, TorrentStats};
pub use session::{AddTorrentParams, Session, SessionConfig, StorageKind};
