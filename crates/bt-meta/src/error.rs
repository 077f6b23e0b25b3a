//! The one error type of this crate.
//!
//! Every variant that comes from a `.torrent` names the key path (`info.files[3].length`)
//! and, where the input has it, the byte offset of the offending value.

use std::path::PathBuf;

/// What went wrong reading a `.torrent`, a magnet link, or creating a torrent.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The input is not bencode (or breaks a limit of the decoder). The message
    /// includes the decoder's (offset and key path), so it is not also a `source`.
    #[error("bencode: {0}")]
    Bencode(bt_bencode::Error),

    /// A required key is absent.
    #[error("missing `{key}` (in the dictionary at byte {offset})")]
    MissingKey {
        /// Key path, like `info.piece length`.
        key: String,
        /// Offset of the dictionary that should hold it.
        offset: usize,
    },

    /// A key holds the wrong kind of value.
    #[error("`{key}` must be {expected}, found {found} at byte {offset}")]
    WrongType {
        /// Key path.
        key: String,
        /// What the format asks for (`an integer`, `a byte string`, ...).
        expected: &'static str,
        /// What the input holds.
        found: &'static str,
        /// Offset of the value.
        offset: usize,
    },

    /// A dictionary inside `info` has the same key twice. Which one counts is
    /// ambiguous (clients disagree), so the torrent is refused.
    #[error("duplicate key `{key}` at byte {offset}")]
    DuplicateKey {
        /// Key path of the repeated key.
        key: String,
        /// Offset of the key's second occurrence.
        offset: usize,
    },

    /// `piece length` is zero, negative, above 512 MiB, or (v2) not a power of two
    /// of at least 16 KiB.
    #[error("`{key}` {value} at byte {offset}: {reason}")]
    PieceLength {
        /// Key path (`info.piece length`).
        key: String,
        /// The value found.
        value: i64,
        /// Offset of the value.
        offset: usize,
        /// Which rule it breaks.
        reason: &'static str,
    },

    /// `pieces` is not a whole number of 20-byte SHA-1 hashes.
    #[error("`info.pieces` is {len} bytes at byte {offset}, not a multiple of 20")]
    PiecesNotMultipleOf20 {
        /// Length of the `pieces` string.
        len: usize,
        /// Offset of the value.
        offset: usize,
    },

    /// The number of hashes in `pieces` does not fit the total length.
    #[error(
        "`info.pieces` at byte {offset} holds {found} hashes, but {total_len} bytes in \
         pieces of {piece_len} need {expected}"
    )]
    PieceCountMismatch {
        /// Hashes present.
        found: u64,
        /// Hashes needed.
        expected: u64,
        /// Total length of the torrent.
        total_len: u64,
        /// Piece length.
        piece_len: u64,
        /// Offset of `pieces`.
        offset: usize,
    },

    /// A length is negative.
    #[error("`{key}` is negative ({value}) at byte {offset}")]
    NegativeLength {
        /// Key path.
        key: String,
        /// The value found.
        value: i64,
        /// Offset of the value.
        offset: usize,
    },

    /// A file is larger than this implementation (and libtorrent) accepts.
    #[error("`{key}` {value} at byte {offset} is too large")]
    FileTooLarge {
        /// Key path.
        key: String,
        /// The value found.
        value: i64,
        /// Offset of the value.
        offset: usize,
    },

    /// The sum of the file lengths does not fit 64 bits.
    #[error("total length of the files overflows 64 bits")]
    TotalLengthOverflow,

    /// The torrent holds no data at all (total length 0).
    #[error("the torrent holds no data (total length 0)")]
    EmptyTorrent,

    /// `info.files` is an empty list.
    #[error("`info.files` at byte {offset} is an empty list")]
    NoFiles {
        /// Offset of the list.
        offset: usize,
    },

    /// A limit of [`crate::LoadConfig`] is exceeded.
    #[error("{value} {what}, more than the limit {limit} = {max}")]
    LimitExceeded {
        /// The name of the limit (the field of [`crate::LoadConfig`]: `max_files`,
        /// `max_pieces`, ...).
        limit: &'static str,
        /// What was counted (`files`, `pieces`, ...).
        what: &'static str,
        /// How many the torrent has.
        value: u64,
        /// The limit in force.
        max: u64,
    },

    /// More than 2^30 pieces.
    #[error("{count} pieces is more than the limit of {limit}")]
    TooManyPieces {
        /// Pieces needed.
        count: u64,
        /// The limit.
        limit: u64,
    },

    /// A name or path element that is unusable even after sanitizing.
    #[error("`{key}` at byte {offset}: {reason}")]
    InvalidName {
        /// Key path.
        key: String,
        /// Offset of the value.
        offset: usize,
        /// What is wrong.
        reason: &'static str,
    },

    /// More duplicate file names than the renaming budget allows.
    #[error("too many duplicate file names (first: {path:?})")]
    TooManyDuplicateFilenames {
        /// The sanitized path that collided.
        path: String,
    },

    /// The `meta version` is not one this crate knows.
    #[error("`info.meta version` {value} at byte {offset} is not supported")]
    UnsupportedMetaVersion {
        /// The value found.
        value: i64,
        /// Offset of the value.
        offset: usize,
    },

    /// A BEP 52 `file tree` that breaks the format.
    #[error("`{key}` at byte {offset}: {reason}")]
    InvalidFileTree {
        /// Key path.
        key: String,
        /// Offset of the value.
        offset: usize,
        /// What is wrong.
        reason: &'static str,
    },

    /// A v2 file without a usable `pieces root`.
    #[error("`{key}` at byte {offset}: {reason}")]
    InvalidPiecesRoot {
        /// Key path.
        key: String,
        /// Offset of the file's dictionary or of the root.
        offset: usize,
        /// What is wrong.
        reason: &'static str,
    },

    /// A BEP 52 `piece layers` entry that is malformed or does not match its file.
    #[error("`piece layers` entry {root} at byte {offset}: {reason}")]
    InvalidPieceLayer {
        /// The key (a pieces root), in hex.
        root: String,
        /// Offset of the entry's value.
        offset: usize,
        /// What is wrong.
        reason: String,
    },

    /// A hybrid torrent whose v1 `files` and v2 `file tree` describe different files.
    #[error("v1 and v2 file lists disagree: {reason}")]
    InconsistentFiles {
        /// What differs.
        reason: String,
    },

    /// A magnet link that cannot be used.
    #[error("magnet link: {reason}")]
    InvalidMagnet {
        /// What is wrong.
        reason: String,
    },

    /// Torrent creation: the source holds something a torrent cannot represent.
    #[error("{}: {reason}", path.display())]
    Unsupported {
        /// The offending path.
        path: PathBuf,
        /// What is wrong.
        reason: &'static str,
    },

    /// Torrent creation: a bad option.
    #[error("{0}")]
    InvalidOption(String),

    /// Torrent creation: reading the source failed. The message includes the I/O
    /// error's, so it is not also a `source`.
    #[error("{}: {error}", path.display())]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The I/O error.
        error: std::io::Error,
    },
}

impl From<bt_bencode::Error> for Error {
    fn from(e: bt_bencode::Error) -> Self {
        Error::Bencode(e)
    }
}

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
