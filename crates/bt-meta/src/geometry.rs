//! Piece geometry: how the torrent's byte stream splits into pieces, pieces into
//! 16 KiB blocks, and how a byte range maps onto the files.
//!
//! The torrent's files are laid end to end (pad files included: they occupy the piece
//! space like any file). A piece is `piece_len` bytes except the last, which may be
//! shorter; a block is [`BLOCK_LEN`] bytes except the last block of a piece.
//! Zero-length files occupy no bytes and never appear in [`Geometry::file_spans`].

use std::fmt;
use std::ops::Range;

use crate::error::{Error, Result};

/// The block size every client requests: 16 KiB.
pub const BLOCK_LEN: u32 = 16 * 1024;

/// Largest piece length accepted: 512 MiB.
pub const MAX_PIECE_LEN: u64 = 512 * 1024 * 1024;

/// Most pieces a torrent may have: 2^30.
pub const MAX_PIECES: u64 = 1 << 30;

/// The index of a piece.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Debug)]
pub struct PieceIndex(pub u32);

impl fmt::Display for PieceIndex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl From<u32> for PieceIndex {
    fn from(i: u32) -> Self {
        PieceIndex(i)
    }
}

/// A block: a byte range inside one piece, as in `request`, `piece` and `cancel`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct BlockInfo {
    /// The piece.
    pub piece: PieceIndex,
    /// Offset of the block inside the piece.
    pub begin: u32,
    /// Length in bytes.
    pub len: u32,
}

/// Part of a byte range that falls in one file.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct FileSpan {
    /// Index of the file in the torrent's file list.
    pub file: usize,
    /// Offset inside the file.
    pub offset: u64,
    /// Length in bytes.
    pub len: u64,
}

/// The piece, block and file layout of a torrent.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Geometry {
    piece_len: u32,
    total_len: u64,
    num_pieces: u32,
    /// Start offset of every file in the torrent's byte stream; non-decreasing.
    file_starts: Vec<u64>,
    /// End offset (start + length) of every file; non-decreasing.
    file_ends: Vec<u64>,
}

impl Geometry {
    /// Lays out files of the given lengths with pieces of `piece_len` bytes.
    ///
    /// Errors: `piece_len` 0 or above 512 MiB, a total that overflows, more than
    /// 2^30 pieces. A total of 0 is allowed here (0 pieces).
    pub fn new(piece_len: u64, file_lens: impl IntoIterator<Item = u64>) -> Result<Self> {
        if piece_len == 0 || piece_len > MAX_PIECE_LEN {
            return Err(Error::PieceLength {
                key: "piece length".into(),
                value: i64::try_from(piece_len).unwrap_or(i64::MAX),
                offset: 0,
                reason: "must be between 1 and 536870912",
            });
        }
        let mut file_starts = Vec::new();
        let mut file_ends = Vec::new();
        let mut total: u64 = 0;
        for len in file_lens {
            file_starts.push(total);
            total = total.checked_add(len).ok_or(Error::TotalLengthOverflow)?;
            file_ends.push(total);
        }
        let num_pieces = total.div_ceil(piece_len);
        if num_pieces > MAX_PIECES {
            return Err(Error::TooManyPieces {
                count: num_pieces,
                limit: MAX_PIECES,
            });
        }
        Ok(Self {
            piece_len: piece_len as u32, // ok: <= 512 MiB
            total_len: total,
            num_pieces: num_pieces as u32, // ok: <= 2^30
            file_starts,
            file_ends,
        })
    }

    /// The nominal piece length (every piece but possibly the last).
    pub fn nominal_piece_len(&self) -> u32 {
        self.piece_len
    }

    /// Total bytes (pad files included).
    pub fn total_len(&self) -> u64 {
        self.total_len
    }

    /// Number of pieces.
    pub fn num_pieces(&self) -> u32 {
        self.num_pieces
    }

    /// Number of files (pad and zero-length files included).
    pub fn num_files(&self) -> usize {
        self.file_starts.len()
    }

    /// Whether `piece` exists.
    pub fn contains(&self, piece: PieceIndex) -> bool {
        piece.0 < self.num_pieces
    }

    /// Offset of the first byte of `piece` in the torrent, or `None` past the last piece.
    pub fn piece_offset(&self, piece: PieceIndex) -> Option<u64> {
        self.contains(piece)
            .then(|| u64::from(piece.0) * u64::from(self.piece_len))
    }

    /// Length of `piece`: the nominal length, or less for the last piece; `None` past
    /// the last piece.
    pub fn piece_len(&self, piece: PieceIndex) -> Option<u32> {
        let start = self.piece_offset(piece)?;
        // ok: at most the nominal piece length, which fits in a u32
        Some((self.total_len - start).min(u64::from(self.piece_len)) as u32)
    }

    /// Number of blocks in `piece`, or `None` past the last piece.
    pub fn block_count(&self, piece: PieceIndex) -> Option<u32> {
        Some(self.piece_len(piece)?.div_ceil(BLOCK_LEN))
    }

    /// Length of block `block` of `piece`, or `None` if either is out of range.
    pub fn block_len(&self, piece: PieceIndex, block: u32) -> Option<u32> {
        let len = self.piece_len(piece)?;
        let begin = block.checked_mul(BLOCK_LEN).filter(|&b| b < len)?;
        Some((len - begin).min(BLOCK_LEN))
    }

    /// The [`BlockInfo`] of block `block` of `piece`, or `None` if out of range.
    pub fn block(&self, piece: PieceIndex, block: u32) -> Option<BlockInfo> {
        Some(BlockInfo {
            piece,
            begin: block * BLOCK_LEN,
            len: self.block_len(piece, block)?,
        })
    }

    /// Every block of `piece`, in order (none past the last piece).
    pub fn blocks(&self, piece: PieceIndex) -> impl Iterator<Item = BlockInfo> + '_ {
        (0..self.block_count(piece).unwrap_or(0)).filter_map(move |b| self.block(piece, b))
    }

    /// The index of `b` among its piece's blocks, if it is exactly one of this torrent's
    /// blocks (see [`Geometry::is_valid_block`]).
    pub fn block_index(&self, b: &BlockInfo) -> Option<u32> {
        let index = b.begin / BLOCK_LEN;
        (b.begin % BLOCK_LEN == 0 && self.block_len(b.piece, index) == Some(b.len)).then_some(index)
    }

    /// Whether a peer's `request`/`piece` range is a well-formed block of this torrent:
    /// inside an existing piece, starting on a block boundary, of the block's exact
    /// length.
    pub fn is_valid_block(&self, b: &BlockInfo) -> bool {
        self.block_index(b).is_some()
    }

    /// Offset in the torrent where file `file` starts, or `None` past the last file.
    pub fn file_offset(&self, file: usize) -> Option<u64> {
        self.file_starts.get(file).copied()
    }

    /// Length of file `file`, or `None` past the last file.
    pub fn file_len(&self, file: usize) -> Option<u64> {
        Some(self.file_ends.get(file)? - self.file_starts.get(file)?)
    }

    /// The non-empty file holding byte `offset` of the torrent, or `None` past the end.
    /// O(log files).
    pub fn file_at(&self, offset: u64) -> Option<usize> {
        let i = self.file_ends.partition_point(|&end| end <= offset);
        (i < self.file_ends.len()).then_some(i)
    }

    /// The files that the `len` bytes at `begin` in `piece` fall in, in order, as
    /// (file, offset in file, length). Zero-length files are skipped. The range is
    /// clipped to the piece; a piece out of range has no spans.
    pub fn file_spans(&self, piece: PieceIndex, begin: u32, len: u32) -> FileSpans<'_> {
        let (Some(start), Some(piece_len)) = (self.piece_offset(piece), self.piece_len(piece))
        else {
            return self.byte_spans(self.total_len, 0);
        };
        let begin = begin.min(piece_len);
        let len = len.min(piece_len - begin);
        self.byte_spans(start + u64::from(begin), u64::from(len))
    }

    /// Like [`Geometry::file_spans`] for any byte range of the torrent (clipped to
    /// the total length).
    pub fn byte_spans(&self, start: u64, len: u64) -> FileSpans<'_> {
        let start = start.min(self.total_len);
        let end = start.saturating_add(len).min(self.total_len);
        let file = self.file_at(start).unwrap_or(self.file_ends.len());
        FileSpans {
            geometry: self,
            file,
            pos: start,
            end,
        }
    }

    /// The pieces that hold bytes of file `file`: empty for a zero-length file, `None`
    /// past the last file.
    pub fn pieces_for_file(&self, file: usize) -> Option<Range<u32>> {
        let (start, end) = (*self.file_starts.get(file)?, *self.file_ends.get(file)?);
        let pl = u64::from(self.piece_len);
        // ok: offsets are below total_len, so the quotients are below num_pieces (a u32)
        let first = (start / pl) as u32;
        if start == end {
            return Some(first..first);
        }
        Some(first..((end - 1) / pl) as u32 + 1)
    }
}

/// Iterator over the [`FileSpan`]s of a byte range; see [`Geometry::file_spans`].
#[derive(Clone, Debug)]
pub struct FileSpans<'a> {
    geometry: &'a Geometry,
    file: usize,
    pos: u64,
    end: u64,
}

impl Iterator for FileSpans<'_> {
    type Item = FileSpan;

    fn next(&mut self) -> Option<FileSpan> {
        let g = self.geometry;
        while self.pos < self.end && self.file < g.file_ends.len() {
            let (fstart, fend) = (g.file_starts[self.file], g.file_ends[self.file]);
            if fend <= self.pos {
                self.file += 1;
                continue;
            }
            let stop = fend.min(self.end);
            let span = FileSpan {
                file: self.file,
                offset: self.pos - fstart,
                len: stop - self.pos,
            };
            self.pos = stop;
            self.file += 1;
            return Some(span);
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn g(piece_len: u64, files: &[u64]) -> Geometry {
        Geometry::new(piece_len, files.iter().copied()).unwrap()
    }

    fn spans(g: &Geometry, piece: u32, begin: u32, len: u32) -> Vec<(usize, u64, u64)> {
        g.file_spans(PieceIndex(piece), begin, len)
            .map(|s| (s.file, s.offset, s.len))
            .collect()
    }

    #[test]
    fn one_byte_torrent() {
        let g = g(16384, &[1]);
        assert_eq!(g.num_pieces(), 1);
        assert_eq!(g.piece_len(PieceIndex(0)).unwrap(), 1);
        assert_eq!(g.block_count(PieceIndex(0)).unwrap(), 1);
        assert_eq!(g.block_len(PieceIndex(0), 0).unwrap(), 1);
        assert_eq!(spans(&g, 0, 0, 1), vec![(0, 0, 1)]);
        assert_eq!(g.pieces_for_file(0).unwrap(), 0..1);
        assert!(g.is_valid_block(&BlockInfo {
            piece: PieceIndex(0),
            begin: 0,
            len: 1
        }));
        assert!(!g.is_valid_block(&BlockInfo {
            piece: PieceIndex(0),
            begin: 0,
            len: 16384
        }));
        assert!(!g.is_valid_block(&BlockInfo {
            piece: PieceIndex(1),
            begin: 0,
            len: 1
        }));
    }

    #[test]
    fn exact_multiple() {
        let g = g(32768, &[65536]);
        assert_eq!(g.num_pieces(), 2);
        assert_eq!(g.piece_len(PieceIndex(1)).unwrap(), 32768);
        assert_eq!(g.block_count(PieceIndex(1)).unwrap(), 2);
        assert_eq!(g.block_len(PieceIndex(1), 1).unwrap(), BLOCK_LEN);
        assert_eq!(g.pieces_for_file(0).unwrap(), 0..2);
        let blocks: Vec<_> = g.blocks(PieceIndex(1)).collect();
        assert_eq!(
            blocks,
            vec![
                BlockInfo {
                    piece: PieceIndex(1),
                    begin: 0,
                    len: 16384
                },
                BlockInfo {
                    piece: PieceIndex(1),
                    begin: 16384,
                    len: 16384
                },
            ]
        );
    }

    #[test]
    fn short_last_piece_and_block() {
        let g = g(65536, &[65536 + 20000]);
        assert_eq!(g.num_pieces(), 2);
        assert_eq!(g.piece_len(PieceIndex(1)).unwrap(), 20000);
        assert_eq!(g.block_count(PieceIndex(1)).unwrap(), 2);
        assert_eq!(g.block_len(PieceIndex(1), 0).unwrap(), 16384);
        assert_eq!(g.block_len(PieceIndex(1), 1).unwrap(), 20000 - 16384);
        assert_eq!(g.block_count(PieceIndex(0)).unwrap(), 4);
    }

    #[test]
    fn indices_out_of_range_are_none_not_panics() {
        let g = g(65536, &[100]);
        assert_eq!(g.block_len(PieceIndex(0), 1), None);
        assert_eq!(g.block_len(PieceIndex(0), u32::MAX), None);
        assert_eq!(g.block(PieceIndex(1), 0), None);
        assert_eq!(g.piece_len(PieceIndex(1)), None);
        assert_eq!(g.piece_offset(PieceIndex(u32::MAX)), None);
        assert_eq!(g.block_count(PieceIndex(7)), None);
        assert_eq!(g.blocks(PieceIndex(1)).count(), 0);
        assert_eq!(g.file_spans(PieceIndex(1), 0, 10).count(), 0);
        assert_eq!(g.file_offset(1), None);
        assert_eq!(g.file_len(1), None);
        assert_eq!(g.pieces_for_file(1), None);
        let b = |begin, len| BlockInfo {
            piece: PieceIndex(0),
            begin,
            len,
        };
        assert_eq!(g.block_index(&b(0, 100)), Some(0));
        assert_eq!(g.block_index(&b(0, 99)), None);
        assert_eq!(g.block_index(&b(1, 99)), None);
        assert_eq!(g.block_index(&b(16384, 100)), None);
    }

    #[test]
    fn files_spanning_pieces() {
        // files: [0,10) [10,40) [40,45) with 16-byte pieces
        let g = g(16, &[10, 30, 5]);
        assert_eq!(g.num_pieces(), 3);
        assert_eq!(spans(&g, 0, 0, 16), vec![(0, 0, 10), (1, 0, 6)]);
        assert_eq!(spans(&g, 1, 0, 16), vec![(1, 6, 16)]);
        assert_eq!(spans(&g, 2, 0, 13), vec![(1, 22, 8), (2, 0, 5)]);
        assert_eq!(spans(&g, 2, 8, 100), vec![(2, 0, 5)]);
        assert_eq!(g.pieces_for_file(0).unwrap(), 0..1);
        assert_eq!(g.pieces_for_file(1).unwrap(), 0..3);
        assert_eq!(g.pieces_for_file(2).unwrap(), 2..3);
        assert_eq!(g.file_at(9), Some(0));
        assert_eq!(g.file_at(10), Some(1));
        assert_eq!(g.file_at(44), Some(2));
        assert_eq!(g.file_at(45), None);
    }

    #[test]
    fn zero_byte_files_at_start_middle_end() {
        let g = g(16, &[0, 0, 10, 0, 20, 0, 0]);
        assert_eq!(g.num_files(), 7);
        assert_eq!(g.total_len(), 30);
        assert_eq!(spans(&g, 0, 0, 16), vec![(2, 0, 10), (4, 0, 6)]);
        assert_eq!(spans(&g, 1, 0, 14), vec![(4, 6, 14)]);
        assert_eq!(g.file_at(0), Some(2));
        assert_eq!(g.file_at(10), Some(4));
        assert_eq!(g.pieces_for_file(0).unwrap(), 0..0);
        assert_eq!(g.pieces_for_file(3).unwrap(), 0..0);
        assert!(g.pieces_for_file(3).unwrap().is_empty());
        assert_eq!(g.pieces_for_file(5).unwrap(), 1..1);
        assert_eq!(g.pieces_for_file(6).unwrap(), 1..1);
        assert_eq!(g.file_offset(6).unwrap(), 30);
    }

    #[test]
    fn only_empty_files() {
        let g = g(16, &[0, 0]);
        assert_eq!(g.num_pieces(), 0);
        assert_eq!(g.file_at(0), None);
        assert_eq!(g.byte_spans(0, 10).count(), 0);
        assert!(!g.contains(PieceIndex(0)));
    }

    #[test]
    fn limits() {
        assert!(matches!(
            Geometry::new(0, [1]),
            Err(Error::PieceLength { .. })
        ));
        assert!(matches!(
            Geometry::new(MAX_PIECE_LEN + 1, [1]),
            Err(Error::PieceLength { .. })
        ));
        assert!(Geometry::new(MAX_PIECE_LEN, [1]).is_ok());
        assert!(matches!(
            Geometry::new(1, [MAX_PIECES + 1]),
            Err(Error::TooManyPieces { .. })
        ));
        assert!(matches!(
            Geometry::new(16384, [u64::MAX, 1]),
            Err(Error::TotalLengthOverflow)
        ));
    }

    #[test]
    fn spans_cover_every_piece_exactly() {
        let files = [0, 7, 0, 33, 16, 1, 0, 100, 0];
        let g = g(16, &files);
        let mut per_file = vec![0u64; files.len()];
        for p in 0..g.num_pieces() {
            let covered: u64 = g
                .file_spans(PieceIndex(p), 0, g.piece_len(PieceIndex(p)).unwrap())
                .map(|s| {
                    per_file[s.file] += s.len;
                    assert!(s.offset + s.len <= files[s.file]);
                    assert!(g.pieces_for_file(s.file).unwrap().contains(&p));
                    s.len
                })
                .sum();
            assert_eq!(covered, u64::from(g.piece_len(PieceIndex(p)).unwrap()));
        }
        assert_eq!(per_file, files);
    }
}
