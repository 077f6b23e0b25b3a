//! Storage: a torrent's pieces and blocks mapped onto files, read, written and hashed.
//!
//! - [`TorrentStorage`]: one torrent's data. `write_block` splits a block across files
//!   (and hashes blocks that arrive in order as they come), `read_block` reads one for
//!   uploading, `verify_piece`/`hash_piece` check a piece's SHA-1, `check_existing`
//!   hashes what is already on disk at start on several threads, `resume_state` and
//!   `trusted_pieces` connect it to [`crate::resume`].
//! - [`StorageLayout`]: the torrent's info-hash, [`Geometry`](bt_meta::Geometry), piece
//!   hashes and file paths, from a `Metainfo` and a download folder.
//! - [`StorageBackend`]: positional `read_at`/`write_at` on files by index, with
//!   [`FileBackend`] (real files: opened lazily, bounded handle cache, sparse, pad files
//!   never written), [`MemoryBackend`] (engine tests without a disk) and
//!   [`FaultyBackend`] (inject a full disk or failing reads).
//!
//! Everything here is blocking and meant for worker threads, not the async runtime.
//! It does not decide what to download, talk to peers, or save resume data by itself.

mod backend;
mod check;
mod error;
mod fault;
mod file;
mod handles;
mod hasher;
mod layout;
mod memory;
mod torrent;

#[cfg(test)]
pub(crate) mod fixture;

pub use backend::{FileStamp, MTime, StorageBackend};
pub use check::CheckProgress;
pub use error::StorageError;
pub use fault::FaultyBackend;
pub use file::{FileBackend, FileSpec, DEFAULT_MAX_OPEN_FILES};
pub use hasher::sha1;
pub(crate) use hasher::{Offer, PieceHasher};
pub use layout::{StorageLayout, STATE_DIR, STATE_DIR_STANDIN};
pub use memory::MemoryBackend;
pub use torrent::{TorrentStorage, MAX_READ_BLOCK_LEN};
