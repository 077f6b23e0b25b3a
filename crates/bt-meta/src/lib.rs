//! Metainfo (`.torrent`) parsing and validation, magnet links, piece geometry and
//! torrent creation.
//!
//! Main types:
//! - [`Metainfo`] ([`metainfo`]): a validated `.torrent` (v1, v2 or hybrid) with its
//!   [`Info`], the v1 and v2 info-hashes computed over the exact `info` bytes (kept,
//!   see [`Metainfo::raw_info`], for ut_metadata) and the checked BEP 52 piece layers.
//!   [`Info::files`] gives the [`Files`] as [`FileEntry`] views (sanitized and raw
//!   paths, offsets, BEP 47 attributes, pad files); [`Info::pieces`] the v1 hashes.
//! - [`LoadConfig`] ([`limits`]): the load limits (input size, bencode tokens, depth,
//!   files, pieces); [`Metainfo::from_bytes_with`] applies them.
//! - [`Geometry`] ([`geometry`]): pieces -> 16 KiB blocks ([`BlockInfo`]) -> file spans,
//!   file lookup by offset in O(log files).
//! - [`Magnet`] ([`magnet`]): BEP 9 links, `btih` and `btmh` hashes, `x.pe`, `so`.
//! - [`path`]: how torrent-supplied names become local paths that stay inside the
//!   download folder.
//! - [`create`]: making a torrent from a file or a folder, hashing on every core.
//! - [`Error`]: one error type; errors from a `.torrent` name the key path
//!   (`info.files[3].length`) and the byte offset.
//!
//! Parsing reads borrowed views of the input ([`bt_bencode::ValueRef`]) after one
//! checking pass, rather than a decoded tree or private serde structs (as STYLE.md
//! suggests): nothing is allocated per bencode token, every error still names the key
//! path *and* the byte offset, the `info` bytes are taken from the input as they are
//! (never re-encoded), and BEP 52's dictionary-shaped `file tree` (keys are file names)
//! needs no serde gymnastics. A loaded torrent keeps its `info` bytes and a compact
//! file table that points into them ([`files`]): about 5 bytes per v1 file besides the
//! geometry's 16, whatever the paths. Loading costs at most about four times the
//! input in memory, and time in proportion to it.
//!
//! Policies worth knowing (each documented where it is implemented):
//! - Trailing bytes after the top-level dictionary are ignored; non-canonical bencode is
//!   accepted in v1 torrents but not inside a v2 `info` dictionary (as libtorrent).
//! - A key repeated inside `info` is refused (clients disagree on which one counts).
//! - Duplicate file paths after sanitizing are renamed `name.1.ext` (like libtorrent;
//!   Transmission refuses such torrents), up to a budget of 1000 collisions.
//! - Pad files are listed like libtorrent does: those in v1 `files`, and for a v2-only
//!   multi-file torrent one synthesized after each file that does not end on a piece
//!   boundary, so the piece geometry is the same for every kind of torrent.
//! - A piece layer must belong to a file and hash to its pieces root.
//!
//! This crate does no networking and no disk I/O except reading the files it hashes
//! when creating a torrent.

pub mod create;
mod dedup;
pub mod error;
pub mod files;
pub mod geometry;
pub mod hash;
pub mod limits;
pub mod magnet;
pub mod metainfo;
pub mod path;
mod urls;
mod walk;

pub use error::{Error, Result};
pub use files::{FileEntry, Files, FilesIter};
pub use geometry::{BlockInfo, FileSpan, FileSpans, Geometry, PieceIndex, BLOCK_LEN};
pub use hash::{InfoHash, InfoHashV2, PeerId};
pub use limits::LoadConfig;
pub use magnet::Magnet;
pub use metainfo::{FileAttr, Info, MetaVersion, Metainfo, Pieces};
