//! [`StorageError`]: what can go wrong reading, writing or checking a torrent's data.

use std::io;
use std::path::PathBuf;

/// A storage failure, with the file, the piece and the underlying I/O error (whose
/// `ErrorKind` is kept, so a full disk can be told apart from other failures).
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// The download folder is missing, not a folder, or not writable.
    #[error("download folder {} is not usable: {source}", path.display())]
    Folder {
        /// The download folder.
        path: PathBuf,
        /// What failed.
        source: io::Error,
    },
    /// The disk is full (ENOSPC or a quota); data already verified is intact.
    #[error("disk full writing piece {piece} to {}: {source}", path.display())]
    DiskFull {
        /// The file being written.
        path: PathBuf,
        /// The piece being written.
        piece: u32,
        /// The I/O error (`ErrorKind::StorageFull` or `QuotaExceeded`).
        source: io::Error,
    },
    /// Writing failed for another reason.
    #[error("cannot write piece {piece} to {}: {source}", path.display())]
    Write {
        /// The file being written.
        path: PathBuf,
        /// The piece being written.
        piece: u32,
        /// The I/O error.
        source: io::Error,
    },
    /// Reading failed (including a file that is missing or too short).
    #[error("cannot read piece {piece} from {}: {source}", path.display())]
    Read {
        /// The file being read.
        path: PathBuf,
        /// The piece being read.
        piece: u32,
        /// The I/O error.
        source: io::Error,
    },
    /// Looking at a file's size and modification time failed.
    #[error("cannot stat {}: {source}", path.display())]
    Stat {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: io::Error,
    },
    /// Flushing written data to disk failed.
    #[error("cannot sync data to disk: {source}")]
    Sync {
        /// The I/O error.
        source: io::Error,
    },
    /// The torrent is of a kind this storage cannot handle.
    #[error("unsupported: {what}")]
    Unsupported {
        /// What is not supported.
        what: &'static str,
    },
    /// The parts of a [`StorageLayout`](super::StorageLayout) disagree.
    #[error("layout mismatch in {what}: expected {expected}, found {found}")]
    LayoutMismatch {
        /// What disagrees.
        what: &'static str,
        /// What the geometry says.
        expected: u64,
        /// What was given.
        found: u64,
    },
    /// A piece index, or a block's offset and length, outside the torrent.
    #[error("block out of range: piece {piece}, offset {begin}, length {len}")]
    OutOfRange {
        /// The piece index asked for.
        piece: u32,
        /// Offset within the piece.
        begin: u32,
        /// Length asked for.
        len: u64,
    },
}

impl StorageError {
    /// Whether this is a full disk (the torrent should stop with a clear message).
    pub fn is_disk_full(&self) -> bool {
        matches!(self, StorageError::DiskFull { .. })
    }

    /// The underlying I/O error, if any.
    pub fn io_error(&self) -> Option<&io::Error> {
        match self {
            StorageError::Folder { source, .. }
            | StorageError::DiskFull { source, .. }
            | StorageError::Write { source, .. }
            | StorageError::Read { source, .. }
            | StorageError::Stat { source, .. }
            | StorageError::Sync { source } => Some(source),
            StorageError::OutOfRange { .. }
            | StorageError::Unsupported { .. }
            | StorageError::LayoutMismatch { .. } => None,
        }
    }

    /// Wraps a failed write, sorting out a full disk.
    pub(crate) fn write(path: PathBuf, piece: u32, source: io::Error) -> Self {
        match source.kind() {
            io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded => StorageError::DiskFull {
                path,
                piece,
                source,
            },
            _ => StorageError::Write {
                path,
                piece,
                source,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn disk_full_is_its_own_variant() {
        let full = StorageError::write("a".into(), 3, io::Error::from_raw_os_error(28));
        assert!(full.is_disk_full(), "{full:?}");
        assert_eq!(full.io_error().unwrap().kind(), io::ErrorKind::StorageFull);
        assert!(full
            .to_string()
            .starts_with("disk full writing piece 3 to a: "));
        let other = StorageError::write("a".into(), 3, io::Error::other("boom"));
        assert!(!other.is_disk_full());
        assert_eq!(other.to_string(), "cannot write piece 3 to a: boom");
    }
}
