//! [`LoadConfig`]: the load limits that bound what one `.torrent` (or metadata fetched
//! from peers) may cost, like libtorrent's `load_torrent_limits`.
//!
//! Whatever a torrent holds, loading it costs at most about four times its size in
//! memory, and time in proportion to its size: nothing is built per bencode token
//! (the input is checked in one pass and read through borrowed views), the file table
//! keeps offsets into the `info` bytes rather than strings, and the piece hashes stay
//! where they are in those bytes. The limits below are there so that an operator can
//! decide how large a torrent may be at all; the defaults open every real torrent we
//! know of with a wide margin, and a million one-byte files (30 MB) still load.

use bt_bencode::DecodeOptions;

/// How large a torrent may be. `Default` opens every real torrent in the shared corpus
/// and the million-file torrent of `cargo xtask bench parse`; lower the limits for a
/// daemon that takes torrents from strangers and holds many at once.
///
/// Every limit that is exceeded is an error naming the limit and the value found
/// ([`crate::Error::LimitExceeded`], or [`crate::Error::Bencode`] with
/// `max_input_len`, `max_tokens` or `max_depth` in its message).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoadConfig {
    /// Longest input, in bytes: the `.torrent` file, or the metadata fetched from
    /// peers. Default 32 MiB (libtorrent: 10 MB).
    pub max_input_len: usize,
    /// Most bencode tokens: every value and every dictionary key counts one. Default
    /// 10,000,000 (libtorrent: 3,000,000, its tokens counting list and dictionary
    /// ends too); a v1 file costs about 6.
    pub max_tokens: usize,
    /// Deepest nesting of lists and dictionaries. Default 100 (as libtorrent).
    pub max_depth: usize,
    /// Most files, pad files included (those bt adds after each file of a v2 torrent
    /// too). Default 2,000,000.
    pub max_files: usize,
    /// Most pieces. Default 2,097,152 (as libtorrent's `max_pieces`).
    pub max_pieces: u32,
}

impl Default for LoadConfig {
    fn default() -> Self {
        Self {
            max_input_len: 32 << 20,
            max_tokens: 10_000_000,
            max_depth: 100,
            max_files: 2_000_000,
            max_pieces: 1 << 21,
        }
    }
}

impl LoadConfig {
    /// Limits high enough never to refuse anything this implementation can
    /// represent (offsets in the `info` bytes are 32-bit: up to 4 GiB). For tests and
    /// benchmarks; memory and time stay in proportion to the input.
    pub fn unlimited() -> Self {
        Self {
            max_input_len: u32::MAX as usize,
            max_tokens: usize::MAX,
            max_depth: usize::MAX,
            max_files: usize::MAX,
            max_pieces: u32::MAX,
        }
    }

    /// The decoder options for the whole input: lenient, with these limits.
    pub(crate) fn decode_options(&self) -> DecodeOptions {
        DecodeOptions {
            strict: false,
            max_depth: self.max_depth,
            max_input_len: self.max_input_len,
            max_string_len: self.max_input_len,
            max_tokens: self.max_tokens,
            reject_duplicate_keys: false,
        }
    }
}
