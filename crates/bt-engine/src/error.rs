//! The engine's error type for session and torrent operations.
//!
//! A misbehaving peer is never an [`Error`]: it becomes a logged
//! [`Disconnect`](crate::Disconnect) and the torrent goes on.

use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;

use bt_meta::InfoHash;

use crate::storage::StorageError;

/// Everything a [`Session`](crate::session::Session) or
/// [`TorrentHandle`](crate::TorrentHandle) call can fail with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The listening socket could not be opened.
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        /// The address asked for.
        addr: SocketAddr,
        /// The socket error.
        source: io::Error,
    },
    /// The torrent is already in the session.
    #[error("torrent {0} is already added")]
    DuplicateTorrent(InfoHash),
    /// The torrent has stopped (shut down or removed), so it takes no more calls.
    #[error("torrent {0} has stopped")]
    TorrentStopped(InfoHash),
    /// The torrent stopped because of an error (disk full, unwritable folder, ...).
    #[error("torrent {info_hash} failed: {reason}")]
    TorrentFailed {
        /// The torrent.
        info_hash: InfoHash,
        /// What went wrong.
        reason: String,
    },
    /// Opening, checking or accessing the torrent's data failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// The download folder is missing or unusable.
    #[error("download folder {} is not usable: {source}", path.display())]
    DownloadDir {
        /// The folder.
        path: PathBuf,
        /// What failed.
        source: io::Error,
    },
    /// A worker thread could not be started.
    #[error("cannot start disk worker: {0}")]
    Thread(#[source] io::Error),
    /// The DHT node could not start.
    #[error("cannot start the DHT on UDP {addr}: {source}")]
    Dht {
        /// Where it should have listened.
        addr: SocketAddr,
        /// What failed.
        source: bt_dht::Error,
    },
    /// A magnet link gave no torrent.
    #[error(transparent)]
    Magnet(#[from] crate::sources::magnet::MagnetError),
    /// The session has been shut down.
    #[error("session is shut down")]
    SessionClosed,
}

/// The engine's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
