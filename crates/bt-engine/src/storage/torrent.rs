//! [`TorrentStorage`]: blocks and pieces of one torrent read, written and verified on a backend.

use std::cell::RefCell;
use std::io::IoSlice;
use std::path::Path;
use std::sync::{Mutex, MutexGuard};

use bt_meta::{BlockInfo, FileSpan, Geometry, InfoHash, PieceIndex};

use super::backend::{FileStamp, StorageBackend};
use super::error::StorageError;
use super::file::{FileBackend, FileSpec};
use super::hasher::{Offer, PieceHasher};
use super::layout::StorageLayout;
use crate::resume::ResumeState;

/// Bytes read per call when hashing a piece back from disk.
pub(crate) const HASH_CHUNK_LEN: usize = 1 << 20;

/// Longest block [`TorrentStorage::read_block`] allocates for (peers ask for 16 KiB).
pub const MAX_READ_BLOCK_LEN: u32 = 1 << 20;

thread_local! {
    /// Per-thread buffer for reading pieces back, so hashing allocates nothing per piece.
    static SCRATCH: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// One torrent's data: blocks written and read by piece and offset, split across files,
/// pieces hashed and verified.
///
/// All methods are blocking and meant for worker threads; the type is `Send + Sync`, so
/// one `Arc<TorrentStorage>` serves every worker. No lock is held across I/O: the only
/// locks are the per-piece hasher (taken while a block is hashed) and the backend's brief
/// handle-cache lookup.
///
/// Blocks of a piece that arrive in order are hashed as they are written, so
/// [`verify_piece`](Self::verify_piece) usually needs no read-back; blocks out of order
/// are read back when the piece is verified. The caller must not write a piece while it
/// verifies it, nor write a piece after it was verified.
pub struct TorrentStorage {
    layout: StorageLayout,
    backend: Box<dyn StorageBackend>,
    hashers: Vec<Mutex<Option<Box<PieceHasher>>>>,
}

impl std::fmt::Debug for TorrentStorage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TorrentStorage")
            .field("info_hash", &self.layout.info_hash)
            .field("pieces", &self.layout.geometry.num_pieces())
            .field("files", &self.layout.files.len())
            .finish_non_exhaustive()
    }
}

impl TorrentStorage {
    /// Storage for `layout` on `backend`, without touching it (see [`open`](Self::open)).
    pub fn new(
        layout: StorageLayout,
        backend: Box<dyn StorageBackend>,
    ) -> Result<Self, StorageError> {
        layout.validate()?;
        let hashers = (0..layout.geometry.num_pieces())
            .map(|_| Mutex::new(None))
            .collect();
        Ok(Self {
            layout,
            backend,
            hashers,
        })
    }

    /// Storage for `layout` on files under `dir`, ready for downloading: `dir` must exist
    /// and be writable (checked now, so a wrong or read-only folder fails at start), and
    /// empty files are created.
    pub fn open(layout: StorageLayout, dir: &Path) -> Result<Self, StorageError> {
        let backend = FileBackend::new(dir, layout.files.clone());
        let storage = Self::new(layout, Box::new(backend))?;
        storage.prepare(dir)?;
        Ok(storage)
    }

    /// [`open`](Self::open) for the torrent `meta` downloaded into `dir` (files at
    /// `dir/<name>` or `dir/<name>/<path...>`, see [`StorageLayout::from_metainfo`]).
    pub fn open_metainfo(meta: &bt_meta::Metainfo, dir: &Path) -> Result<Self, StorageError> {
        Self::open(StorageLayout::from_metainfo(meta, dir)?, dir)
    }

    /// Storage for `layout` on files under `dir` that creates nothing (for checking or
    /// seeding what is there; a write still creates its file).
    pub fn open_existing(layout: StorageLayout, dir: &Path) -> Result<Self, StorageError> {
        let backend = FileBackend::new(dir, layout.files.clone());
        Self::new(layout, Box::new(backend))
    }

    /// Lets the backend check it can write and create empty files; `dir` names the
    /// download folder in the error.
    pub fn prepare(&self, dir: &Path) -> Result<(), StorageError> {
        self.backend
            .prepare()
            .map_err(|source| StorageError::Folder {
                path: dir.to_owned(),
                source,
            })
    }

    /// The layout: info-hash, geometry, piece hashes, files.
    pub fn layout(&self) -> &StorageLayout {
        &self.layout
    }

    /// The piece geometry.
    pub fn geometry(&self) -> &Geometry {
        &self.layout.geometry
    }

    /// Number of pieces.
    pub fn num_pieces(&self) -> u32 {
        self.layout.geometry.num_pieces()
    }

    /// The info-hash.
    pub fn info_hash(&self) -> InfoHash {
        self.layout.info_hash
    }

    /// The expected SHA-1 of `piece`, `None` if out of range.
    pub fn expected_hash(&self, piece: PieceIndex) -> Option<&[u8; 20]> {
        self.layout.piece_hashes.get(piece.0 as usize)
    }

    /// The torrent offset of `len` bytes at `begin` in `piece`, if all inside the piece.
    fn locate(&self, piece: PieceIndex, begin: u32, len: u64) -> Result<u64, StorageError> {
        let g = &self.layout.geometry;
        let oor = StorageError::OutOfRange {
            piece: piece.0,
            begin,
            len,
        };
        match (g.piece_offset(piece), g.piece_len(piece)) {
            (Some(start), Some(piece_len)) if u64::from(begin) + len <= u64::from(piece_len) => {
                Ok(start + u64::from(begin))
            }
            _ => Err(oor),
        }
    }

    fn spans(&self, start: u64, len: u64) -> impl Iterator<Item = (FileSpan, &FileSpec)> {
        self.layout
            .geometry
            .byte_spans(start, len)
            .map(|s| (s, &self.layout.files[s.file])) // ok: geometry and files agree (validated)
    }

    fn hasher(&self, piece: PieceIndex) -> MutexGuard<'_, Option<Box<PieceHasher>>> {
        // ok: callers check `piece` against the geometry first
        self.hashers[piece.0 as usize]
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    /// Writes `data` at `begin` in `piece`, across as many files as it spans (pad-file
    /// bytes are dropped). If it continues the bytes of the piece written so far in
    /// order, it is also hashed now.
    ///
    /// A full disk gives [`StorageError::DiskFull`].
    pub fn write_block(
        &self,
        piece: PieceIndex,
        begin: u32,
        data: &[u8],
    ) -> Result<(), StorageError> {
        let len = data.len() as u64;
        let start = self.locate(piece, begin, len)?;
        {
            let mut slot = self.hasher(piece);
            let hasher = slot.get_or_insert_with(Box::default);
            self.offer_at(hasher, start, begin, data);
        }
        let mut rest = data;
        for (span, spec) in self.spans(start, len) {
            let (part, tail) = rest.split_at(span.len as usize); // ok: spans sum to `len`
            rest = tail;
            if spec.pad {
                continue;
            }
            if let Err(e) = self.backend.write_at(span.file, span.offset, part) {
                // The hash may cover bytes that never reached the disk.
                if let Some(h) = self.hasher(piece).as_mut() {
                    h.poison();
                }
                return Err(StorageError::write(spec.path.clone(), piece.0, e));
            }
        }
        Ok(())
    }

    /// Offers `data`, at torrent offset `start` and `begin` in its piece, to `hasher`
    /// (pad-file bytes hashed as zeros).
    fn offer_at(&self, hasher: &mut PieceHasher, start: u64, begin: u32, data: &[u8]) -> Offer {
        let len = data.len() as u64;
        hasher.offer(u64::from(begin), len, |h| {
            let mut rest = data;
            for (span, spec) in self.spans(start, len) {
                let (part, tail) = rest.split_at(span.len as usize); // ok: spans sum to `len`
                if spec.pad {
                    h.update_zeros(span.len);
                } else {
                    h.update(part);
                }
                rest = tail;
            }
        })
    }

    /// Offers a block of `piece` to `hasher`, a hash state the caller keeps for the
    /// piece (see [`verify_with`](Self::verify_with)): hashed if it continues the blocks
    /// hashed so far in order. Nothing is written.
    pub(crate) fn hash_block(
        &self,
        hasher: &mut PieceHasher,
        piece: PieceIndex,
        begin: u32,
        data: &[u8],
    ) -> Result<Offer, StorageError> {
        let start = self.locate(piece, begin, data.len() as u64)?;
        Ok(self.offer_at(hasher, start, begin, data))
    }

    /// Writes blocks that follow each other in the torrent from `begin` in `piece` (they
    /// may run on into the next pieces), with one vectored write per file they span
    /// (pad-file bytes are dropped). Nothing is hashed: the caller offers the blocks to
    /// its own hash state with [`hash_block`](Self::hash_block).
    ///
    /// A full disk gives [`StorageError::DiskFull`] (naming `piece`).
    pub(crate) fn write_blocks<B: AsRef<[u8]>>(
        &self,
        piece: PieceIndex,
        begin: u32,
        blocks: &[B],
    ) -> Result<(), StorageError> {
        let len: u64 = blocks.iter().map(|b| b.as_ref().len() as u64).sum();
        let start = self.locate(piece, begin, 0)?;
        if start + len > self.layout.geometry.total_len() {
            return Err(StorageError::OutOfRange {
                piece: piece.0,
                begin,
                len,
            });
        }
        let mut iov: Vec<IoSlice<'_>> = Vec::with_capacity(blocks.len() + 1);
        let (mut index, mut offset) = (0usize, 0usize);
        for (span, spec) in self.spans(start, len) {
            iov.clear();
            let mut need = span.len as usize;
            while need > 0 {
                let Some(block) = blocks.get(index).map(AsRef::as_ref) else {
                    break; // unreachable: the spans cover exactly `len` bytes
                };
                let rest = block.get(offset..).unwrap_or_default();
                let take = need.min(rest.len());
                if !spec.pad && take > 0 {
                    iov.push(IoSlice::new(rest.get(..take).unwrap_or_default()));
                }
                need -= take;
                offset += take;
                if offset >= block.len() {
                    index += 1;
                    offset = 0;
                }
            }
            if spec.pad || iov.is_empty() {
                continue;
            }
            self.backend
                .write_vectored_at(span.file, span.offset, &iov)
                .map_err(|e| StorageError::write(spec.path.clone(), piece.0, e))?;
        }
        Ok(())
    }

    /// Reads a block (for uploading it to a peer); at most [`MAX_READ_BLOCK_LEN`] bytes.
    pub fn read_block(&self, block: &BlockInfo) -> Result<Vec<u8>, StorageError> {
        if block.len > MAX_READ_BLOCK_LEN {
            return Err(StorageError::OutOfRange {
                piece: block.piece.0,
                begin: block.begin,
                len: u64::from(block.len),
            });
        }
        let mut buf = vec![0; block.len as usize];
        self.read_block_into(block.piece, block.begin, &mut buf)?;
        Ok(buf)
    }

    /// Fills `buf` from `begin` in `piece` (pad-file bytes read as zeros).
    pub fn read_block_into(
        &self,
        piece: PieceIndex,
        begin: u32,
        buf: &mut [u8],
    ) -> Result<(), StorageError> {
        let start = self.locate(piece, begin, buf.len() as u64)?;
        self.read_range(piece, start, buf)
    }

    /// Fills `buf` from torrent offset `start`, which lies in `piece` (for errors).
    fn read_range(
        &self,
        piece: PieceIndex,
        start: u64,
        buf: &mut [u8],
    ) -> Result<(), StorageError> {
        let mut rest = buf;
        for (span, spec) in self.spans(start, rest.len() as u64) {
            let (part, tail) = rest.split_at_mut(span.len as usize); // ok: spans sum to the length
            rest = tail;
            if spec.pad {
                part.fill(0);
                continue;
            }
            self.backend
                .read_at(span.file, span.offset, part)
                .map_err(|source| StorageError::Read {
                    path: spec.path.clone(),
                    piece: piece.0,
                    source,
                })?;
        }
        Ok(())
    }

    /// Hashes the bytes of `piece` from `hasher.hashed_len()` to its end, read back in
    /// chunks of up to [`HASH_CHUNK_LEN`] bytes through `buf` (grown as needed, reused).
    pub(super) fn finish_hash_with(
        &self,
        piece: PieceIndex,
        mut hasher: PieceHasher,
        buf: &mut Vec<u8>,
    ) -> Result<[u8; 20], StorageError> {
        let g = &self.layout.geometry;
        let (Some(piece_start), Some(piece_len)) = (g.piece_offset(piece), g.piece_len(piece))
        else {
            return Err(StorageError::OutOfRange {
                piece: piece.0,
                begin: 0,
                len: 0,
            });
        };
        let piece_len = u64::from(piece_len);
        let want = HASH_CHUNK_LEN.min(piece_len as usize);
        if buf.len() < want {
            buf.resize(want, 0);
        }
        while hasher.hashed_len() < piece_len {
            let n = (piece_len - hasher.hashed_len()).min(buf.len() as u64) as usize;
            let chunk = &mut buf[..n]; // ok: n <= buf.len()
            self.read_range(piece, piece_start + hasher.hashed_len(), chunk)?;
            hasher.update(chunk);
        }
        Ok(hasher.finish())
    }

    /// [`finish_hash_with`](Self::finish_hash_with) through this thread's scratch buffer,
    /// so verifying allocates nothing per piece (each thread that hashes keeps up to
    /// [`HASH_CHUNK_LEN`] bytes).
    fn finish_hash(
        &self,
        piece: PieceIndex,
        hasher: PieceHasher,
    ) -> Result<[u8; 20], StorageError> {
        SCRATCH.with(|scratch| self.finish_hash_with(piece, hasher, &mut scratch.borrow_mut()))
    }

    /// The SHA-1 of `piece` as stored now, read back whole (the in-order hash state, if
    /// any, is left alone).
    pub fn hash_piece(&self, piece: PieceIndex) -> Result<[u8; 20], StorageError> {
        self.locate(piece, 0, 0)?;
        self.finish_hash(piece, PieceHasher::new())
    }

    /// Whether `piece` as written matches its expected SHA-1. Uses the hash of the blocks
    /// written in order and reads back only the rest; forgets that hash either way.
    pub fn verify_piece(&self, piece: PieceIndex) -> Result<bool, StorageError> {
        self.locate(piece, 0, 0)?;
        let state = self.hasher(piece).take().map(|h| *h);
        self.verify_with(piece, state)
    }

    /// Whether `piece` as written matches its expected SHA-1, finishing `state` (the
    /// caller's hash of the blocks it offered in order with [`hash_block`](Self::hash_block))
    /// by reading back the rest; `None` or a poisoned state reads back the whole piece.
    /// Every block of the piece must be written first.
    pub(crate) fn verify_with(
        &self,
        piece: PieceIndex,
        state: Option<PieceHasher>,
    ) -> Result<bool, StorageError> {
        self.locate(piece, 0, 0)?;
        let expected = self.expected_hash(piece).copied();
        let hash = match state {
            Some(h) if !h.is_poisoned() => self.finish_hash(piece, h)?,
            _ => self.finish_hash(piece, PieceHasher::new())?,
        };
        Ok(Some(hash) == expected)
    }

    /// Forgets the in-order hash of `piece` (when the piece is abandoned and will be
    /// downloaded again from scratch).
    pub fn forget_piece(&self, piece: PieceIndex) {
        if self.layout.geometry.contains(piece) {
            self.hasher(piece).take();
        }
    }

    /// Size and modification time of every file as stored now (`None`: missing or pad).
    pub fn file_stamps(&self) -> Result<Vec<Option<FileStamp>>, StorageError> {
        self.layout
            .files
            .iter()
            .enumerate()
            .map(|(i, spec)| {
                if spec.pad {
                    return Ok(None);
                }
                self.backend.stamp(i).map_err(|source| StorageError::Stat {
                    path: spec.path.clone(),
                    source,
                })
            })
            .collect()
    }

    /// Makes everything written so far durable.
    pub fn sync(&self) -> Result<(), StorageError> {
        self.backend
            .sync()
            .map_err(|source| StorageError::Sync { source })
    }

    /// Lets the OS drop `len` bytes from torrent offset `start`, already written and
    /// synced, from its page cache (see [`StorageBackend::uncache`]); advice only, so a
    /// failure is ignored.
    pub(crate) fn uncache(&self, start: u64, len: u64) {
        for (span, spec) in self.spans(start, len) {
            if !spec.pad {
                let _ = self.backend.uncache(span.file, span.offset, span.len);
            }
        }
    }

    /// Resume state recording `verified` as the verified pieces: syncs the data first, then
    /// records every file's size and modification time. Save it with
    /// [`ResumeState::save`].
    pub fn resume_state(&self, verified: &[bool]) -> Result<ResumeState, StorageError> {
        if verified.len() != self.num_pieces() as usize {
            return Err(StorageError::LayoutMismatch {
                what: "resume pieces",
                expected: u64::from(self.num_pieces()),
                found: verified.len() as u64,
            });
        }
        self.sync()?;
        Ok(ResumeState {
            info_hash: self.layout.info_hash,
            pieces: verified.to_vec(),
            files: self.file_stamps()?,
        })
    }

    /// The verified pieces of `state` if it can be trusted: same torrent, same number of
    /// pieces, and every file still has the recorded size and modification time. `None`
    /// means the caller should run [`check_existing`](Self::check_existing).
    pub fn trusted_pieces(&self, state: &ResumeState) -> Result<Option<Vec<bool>>, StorageError> {
        if state.info_hash != self.layout.info_hash
            || state.pieces.len() != self.num_pieces() as usize
        {
            return Ok(None);
        }
        let now = self.file_stamps()?;
        Ok(state.matches_files(&now).then(|| state.pieces.clone()))
    }
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::io;
    use std::sync::Arc;

    use super::*;
    use crate::storage::fixture::{Fixture, F};
    use crate::storage::{FaultyBackend, FileBackend, MemoryBackend};

    const K16: u64 = 16 * 1024;

    /// Files spanning pieces, 0-byte files at start, middle and end, a short last piece.
    const MULTI: &[F<'static>] = &[
        ("empty-first", 0, false),
        ("a.bin", 10_000, false),
        ("sub/empty-middle", 0, false),
        ("sub/b.bin", 70_001, false),
        ("c.bin", 7, false),
        ("sub/deeper/d.bin", 33_000, false),
        ("empty-last", 0, false),
    ];

    fn on_disk(fx: &Fixture, dir: &Path) -> TorrentStorage {
        TorrentStorage::open(fx.layout.clone(), dir).unwrap()
    }

    fn in_memory(fx: &Fixture) -> (TorrentStorage, Arc<MemoryBackend>) {
        let mem = Arc::new(MemoryBackend::new(&fx.layout.file_lens()));
        let s = TorrentStorage::new(fx.layout.clone(), Box::new(Arc::clone(&mem))).unwrap();
        s.prepare(Path::new("memory")).unwrap();
        (s, mem)
    }

    fn write_all(s: &TorrentStorage, fx: &Fixture) {
        for b in fx.blocks() {
            s.write_block(b.piece, b.begin, fx.bytes(&b)).unwrap();
        }
    }

    fn assert_all_verified(s: &TorrentStorage, fx: &Fixture) {
        for p in 0..s.num_pieces() {
            let piece = PieceIndex(p);
            assert_eq!(
                s.hash_piece(piece).unwrap(),
                fx.layout.piece_hashes[p as usize],
                "piece {p}"
            );
            assert!(s.verify_piece(piece).unwrap(), "piece {p}");
        }
    }

    fn assert_files_on_disk(fx: &Fixture) {
        for (i, spec) in fx.layout.files.iter().enumerate() {
            if spec.pad {
                assert!(
                    !spec.path.exists(),
                    "pad file {} created",
                    spec.path.display()
                );
            } else {
                let got = fs::read(&spec.path).unwrap();
                assert!(got == fx.file_bytes(i), "{} differs", spec.path.display());
            }
        }
    }

    /// Writes each piece's blocks in `order` (indices into the piece's blocks) as runs
    /// of blocks that follow each other, each run with one `write_blocks`, and offers
    /// them to a hash state kept here, as the disk workers do. The states, by piece.
    fn write_runs(s: &TorrentStorage, fx: &Fixture, order: &[usize]) -> Vec<PieceHasher> {
        let blocks = fx.blocks();
        (0..s.num_pieces())
            .map(|p| {
                let mine: Vec<_> = blocks.iter().filter(|b| b.piece.0 == p).collect();
                let mut state = PieceHasher::new();
                let picked: Vec<_> = order.iter().filter_map(|&i| mine.get(i)).collect();
                let mut i = 0;
                while i < picked.len() {
                    let mut j = i + 1;
                    while j < picked.len()
                        && picked[j].begin == picked[j - 1].begin + picked[j - 1].len
                    {
                        j += 1;
                    }
                    let run: Vec<&[u8]> = picked[i..j].iter().map(|b| fx.bytes(b)).collect();
                    s.write_blocks(picked[i].piece, picked[i].begin, &run)
                        .unwrap();
                    for b in &picked[i..j] {
                        s.hash_block(&mut state, b.piece, b.begin, fx.bytes(b))
                            .unwrap();
                    }
                    i = j;
                }
                state
            })
            .collect()
    }

    #[test]
    fn runs_of_blocks_land_across_files_and_verify_from_memory() {
        let tmp = tempfile::tempdir().unwrap();
        let files: &[F<'_>] = &[
            ("a.bin", 10_000, false),
            ("pad", 6_384, true),
            ("b.bin", 70_001, false),
            ("empty", 0, false),
            ("c.bin", 7, false),
            ("d.bin", 33_000, false),
        ];
        let fx = Fixture::new(tmp.path(), "t", 4 * K16, files, 21);
        let s = on_disk(&fx, tmp.path());
        let states = write_runs(&s, &fx, &[0, 1, 2, 3]);
        for (p, state) in states.into_iter().enumerate() {
            let piece = PieceIndex(p as u32);
            // Every block came in order: the whole piece is hashed, nothing is read back.
            let len = u64::from(s.geometry().piece_len(piece).unwrap());
            assert_eq!(state.hashed_len(), len, "piece {p}");
            assert!(s.verify_with(piece, Some(state)).unwrap(), "piece {p}");
        }
        s.sync().unwrap();
        assert_files_on_disk(&fx);
    }

    #[test]
    fn runs_out_of_order_are_read_back_and_bad_data_fails() {
        let fx = Fixture::new(Path::new("t"), "t", 4 * K16, MULTI, 22);
        let faulty = Arc::new(FaultyBackend::new(MemoryBackend::new(
            &fx.layout.file_lens(),
        )));
        let s = TorrentStorage::new(fx.layout.clone(), Box::new(Arc::clone(&faulty))).unwrap();
        let mut states = write_runs(&s, &fx, &[2, 3, 0, 1]);
        let first = states.remove(0);
        assert_eq!(
            first.hashed_len(),
            2 * K16,
            "blocks 0 and 1 hashed in order"
        );
        faulty.set_fail_reads(true);
        assert!(matches!(
            s.verify_with(PieceIndex(0), Some(first.clone())),
            Err(StorageError::Read { .. })
        ));
        faulty.set_fail_reads(false);
        assert!(s.verify_with(PieceIndex(0), Some(first)).unwrap());
        assert!(s.verify_with(PieceIndex(1), None).unwrap());
        // A corrupt block in a run: the piece fails, whether hashed in order or read back.
        let blocks = fx.blocks();
        let b = &blocks[0];
        let mut bad = fx.bytes(b).to_vec();
        bad[7] ^= 0x40;
        let rest: Vec<&[u8]> = blocks[1..4].iter().map(|b| fx.bytes(b)).collect();
        s.write_blocks(b.piece, 0, &[bad.as_slice()]).unwrap();
        s.write_blocks(b.piece, blocks[1].begin, &rest).unwrap();
        let mut state = PieceHasher::new();
        s.hash_block(&mut state, b.piece, 0, &bad).unwrap();
        assert!(!s.verify_with(PieceIndex(0), Some(state)).unwrap());
        assert!(!s.verify_with(PieceIndex(0), None).unwrap());
    }

    #[test]
    fn run_past_the_torrent_or_on_a_full_disk_is_an_error() {
        let fx = Fixture::new(Path::new("dl"), "t", 2 * K16, MULTI, 23);
        let faulty = Arc::new(FaultyBackend::new(MemoryBackend::new(
            &fx.layout.file_lens(),
        )));
        let s = TorrentStorage::new(fx.layout.clone(), Box::new(Arc::clone(&faulty))).unwrap();
        let block = vec![1u8; K16 as usize];
        let three = [block.as_slice(), &block, &block];
        // Runs may go on into the next piece, not past the end of the torrent.
        let last = s.num_pieces() - 1;
        assert!(matches!(
            s.write_blocks(PieceIndex(last), 0, &three),
            Err(StorageError::OutOfRange { begin: 0, .. })
        ));
        assert!(matches!(
            s.write_blocks(PieceIndex(last + 1), 0, &three[..1]),
            Err(StorageError::OutOfRange { .. })
        ));
        assert!(matches!(
            s.hash_block(&mut PieceHasher::new(), PieceIndex(99), 0, &block),
            Err(StorageError::OutOfRange { piece: 99, .. })
        ));
        faulty.fail_writes_after(1000);
        let err = s.write_blocks(PieceIndex(0), 0, &three[..2]).unwrap_err();
        assert!(err.is_disk_full(), "{err}");
    }

    #[test]
    fn one_run_may_span_pieces_and_files() {
        let fx = Fixture::new(Path::new("t"), "t", K16, MULTI, 24);
        let (s, _) = in_memory(&fx);
        let blocks = fx.blocks();
        let all: Vec<&[u8]> = blocks.iter().map(|b| fx.bytes(b)).collect();
        s.write_blocks(PieceIndex(0), 0, &all).unwrap();
        for p in 0..s.num_pieces() {
            assert!(s.verify_with(PieceIndex(p), None).unwrap(), "piece {p}");
        }
    }

    #[test]
    fn single_file_lands_at_dir_name_and_verifies() {
        let tmp = tempfile::tempdir().unwrap();
        let fx = Fixture::new(tmp.path(), "movie.mkv", 2 * K16, &[("", 100_000, false)], 1);
        assert_eq!(fx.layout.files[0].path, tmp.path().join("movie.mkv"));
        let s = on_disk(&fx, tmp.path());
        assert_eq!(s.num_pieces(), 4);
        assert_eq!(
            s.geometry().piece_len(PieceIndex(3)),
            Some(100_000 - 3 * 2 * K16 as u32)
        );
        write_all(&s, &fx);
        assert_all_verified(&s, &fx);
        s.sync().unwrap();
        assert_files_on_disk(&fx);
    }

    #[test]
    fn multi_file_with_empty_files_verifies_and_matches_payload() {
        let tmp = tempfile::tempdir().unwrap();
        let fx = Fixture::new(tmp.path(), "album", 2 * K16, MULTI, 2);
        let s = on_disk(&fx, tmp.path());
        for name in [
            "album/empty-first",
            "album/sub/empty-middle",
            "album/empty-last",
        ] {
            assert_eq!(
                fs::metadata(tmp.path().join(name)).unwrap().len(),
                0,
                "{name}"
            );
        }
        write_all(&s, &fx);
        assert_all_verified(&s, &fx);
        assert_files_on_disk(&fx);
    }

    #[test]
    fn read_block_across_file_boundaries() {
        let tmp = tempfile::tempdir().unwrap();
        let fx = Fixture::new(tmp.path(), "album", 2 * K16, MULTI, 3);
        let s = on_disk(&fx, tmp.path());
        write_all(&s, &fx);
        let g = s.geometry().clone();
        for p in 0..g.num_pieces() {
            let piece = PieceIndex(p);
            let plen = g.piece_len(piece).unwrap();
            // Every window of a few lengths, stepping over every file boundary.
            for len in [1u32, 7, 9_999, 10_001, plen] {
                let mut begin = 0;
                while begin + len <= plen {
                    let b = BlockInfo { piece, begin, len };
                    assert_eq!(s.read_block(&b).unwrap(), fx.bytes(&b), "{b:?}");
                    begin += 997;
                }
            }
        }
    }

    #[test]
    fn out_of_range_is_an_error() {
        let fx = Fixture::new(Path::new("t"), "x", K16, &[("", 40_000, false)], 4);
        let (s, _) = in_memory(&fx);
        let last = PieceIndex(2);
        let last_len = s.geometry().piece_len(last).unwrap();
        let oor = |r: Result<(), StorageError>| matches!(r, Err(StorageError::OutOfRange { .. }));
        assert!(oor(s.write_block(PieceIndex(3), 0, b"x")));
        assert!(oor(s.write_block(last, last_len, b"x")));
        assert!(oor(s.write_block(PieceIndex(0), K16 as u32 - 1, b"xy")));
        assert!(s.write_block(last, last_len - 1, b"x").is_ok());
        let read = |piece, begin, len| s.read_block(&BlockInfo { piece, begin, len }).map(|_| ());
        assert!(oor(read(last, 0, last_len + 1)));
        assert!(oor(read(PieceIndex(0), u32::MAX, 1)));
        assert!(oor(read(PieceIndex(0), 0, MAX_READ_BLOCK_LEN + 1)));
        assert!(matches!(
            s.hash_piece(PieceIndex(3)),
            Err(StorageError::OutOfRange { .. })
        ));
        assert!(matches!(
            s.verify_piece(PieceIndex(3)),
            Err(StorageError::OutOfRange { .. })
        ));
    }

    #[test]
    fn pad_files_are_never_written_and_read_as_zeros() {
        let tmp = tempfile::tempdir().unwrap();
        let files: &[F<'_>] = &[
            ("a", 10_000, false),
            (".pad/22768", 22_768, true),
            ("b", 40_000, false),
            (".pad/25536", 25_536, true),
            ("c", 5, false),
        ];
        let fx = Fixture::new(tmp.path(), "padded", 2 * K16, files, 5);
        let s = on_disk(&fx, tmp.path());
        // A peer may send anything in pad regions: it is neither stored nor hashed.
        for b in fx.blocks() {
            let data: Vec<u8> = fx.bytes(&b).iter().map(|&x| x ^ 0x5a).collect();
            let garbage_in_pads = s
                .geometry()
                .file_spans(b.piece, b.begin, b.len)
                .all(|sp| fx.layout.files[sp.file].pad);
            let data = if garbage_in_pads {
                &data[..]
            } else {
                fx.bytes(&b)
            };
            s.write_block(b.piece, b.begin, data).unwrap();
        }
        assert_all_verified(&s, &fx);
        assert_files_on_disk(&fx);
        let pad = BlockInfo {
            piece: PieceIndex(0),
            begin: 10_000,
            len: 22_768,
        };
        assert_eq!(s.read_block(&pad).unwrap(), vec![0; 22_768]);
        // Mixed blocks: real bytes plus pad garbage hash like real bytes plus zeros.
        let (m, _) = in_memory(&fx);
        for b in fx.blocks() {
            let mut data = fx.bytes(&b).to_vec();
            let mut at = 0;
            for sp in m.geometry().file_spans(b.piece, b.begin, b.len) {
                if fx.layout.files[sp.file].pad {
                    data[at..at + sp.len as usize].fill(0xee);
                }
                at += sp.len as usize;
            }
            m.write_block(b.piece, b.begin, &data).unwrap();
        }
        assert_all_verified(&m, &fx);
    }

    #[test]
    fn memory_backend_matches_file_backend() {
        let tmp = tempfile::tempdir().unwrap();
        let files: &[F<'_>] = &[
            ("x", 1, false),
            ("p", 16_383, true),
            ("y", 50_000, false),
            ("z", 0, false),
        ];
        let fx = Fixture::new(tmp.path(), "t", K16, files, 6);
        let disk = on_disk(&fx, tmp.path());
        let (mem, backend) = in_memory(&fx);
        // Only some blocks, so both hold holes too.
        for b in fx.blocks().iter().step_by(2) {
            disk.write_block(b.piece, b.begin, fx.bytes(b)).unwrap();
            mem.write_block(b.piece, b.begin, fx.bytes(b)).unwrap();
        }
        for p in 0..fx.layout.geometry.num_pieces() {
            let piece = PieceIndex(p);
            assert_eq!(
                disk.hash_piece(piece).unwrap(),
                mem.hash_piece(piece).unwrap()
            );
            assert_eq!(
                disk.verify_piece(piece).unwrap(),
                mem.verify_piece(piece).unwrap()
            );
            let b = BlockInfo {
                piece,
                begin: 0,
                len: disk.geometry().piece_len(piece).unwrap(),
            };
            assert_eq!(disk.read_block(&b).unwrap(), mem.read_block(&b).unwrap());
        }
        for (i, spec) in fx.layout.files.iter().enumerate() {
            let on_disk = fs::read(&spec.path).ok();
            assert_eq!(on_disk, backend.file(i), "{}", spec.path.display());
        }
        assert_eq!(
            disk.file_stamps()
                .unwrap()
                .iter()
                .map(|s| s.map(|s| s.len))
                .collect::<Vec<_>>(),
            mem.file_stamps()
                .unwrap()
                .iter()
                .map(|s| s.map(|s| s.len))
                .collect::<Vec<_>>(),
        );
    }

    #[test]
    fn in_order_blocks_verify_without_reading_back() {
        let fx = Fixture::new(Path::new("t"), "t", 4 * K16, MULTI, 7);
        let faulty = Arc::new(FaultyBackend::new(MemoryBackend::new(
            &fx.layout.file_lens(),
        )));
        let s = TorrentStorage::new(fx.layout.clone(), Box::new(Arc::clone(&faulty))).unwrap();
        write_all(&s, &fx);
        faulty.set_fail_reads(true);
        for p in 0..s.num_pieces() {
            assert!(
                s.verify_piece(PieceIndex(p)).unwrap(),
                "piece {p} needed a read"
            );
        }
        // The state was consumed: a second verify reads back, and reads now fail.
        assert!(matches!(
            s.verify_piece(PieceIndex(0)),
            Err(StorageError::Read { .. })
        ));
    }

    #[test]
    fn out_of_order_blocks_are_read_back() {
        let fx = Fixture::new(Path::new("t"), "t", 4 * K16, &[("", 4 * K16, false)], 8);
        let faulty = Arc::new(FaultyBackend::new(MemoryBackend::new(
            &fx.layout.file_lens(),
        )));
        let s = TorrentStorage::new(fx.layout.clone(), Box::new(Arc::clone(&faulty))).unwrap();
        let blocks = fx.blocks();
        for i in [0, 2, 1, 3] {
            let b = &blocks[i];
            s.write_block(b.piece, b.begin, fx.bytes(b)).unwrap();
        }
        faulty.set_fail_reads(true);
        assert!(matches!(
            s.verify_piece(PieceIndex(0)),
            Err(StorageError::Read { .. })
        ));
        faulty.set_fail_reads(false);
        assert!(s.verify_piece(PieceIndex(0)).unwrap());
    }

    #[test]
    fn rewritten_block_is_verified_as_stored() {
        let fx = Fixture::new(Path::new("t"), "t", 2 * K16, &[("", 2 * K16, false)], 9);
        let (s, _) = in_memory(&fx);
        let blocks = fx.blocks();
        let (b0, b1) = (&blocks[0], &blocks[1]);
        // Good data first, then a duplicate with bad bytes: the disk holds the bad bytes.
        s.write_block(b0.piece, b0.begin, fx.bytes(b0)).unwrap();
        s.write_block(b0.piece, b0.begin, &vec![0xff; b0.len as usize])
            .unwrap();
        s.write_block(b1.piece, b1.begin, fx.bytes(b1)).unwrap();
        assert!(!s.verify_piece(PieceIndex(0)).unwrap());
        // Bad first, good duplicate later: the disk holds good bytes.
        s.write_block(b0.piece, b0.begin, &vec![0xff; b0.len as usize])
            .unwrap();
        s.write_block(b0.piece, b0.begin, fx.bytes(b0)).unwrap();
        s.write_block(b1.piece, b1.begin, fx.bytes(b1)).unwrap();
        assert!(s.verify_piece(PieceIndex(0)).unwrap());
    }

    #[test]
    fn corrupt_block_fails_verification_and_piece_can_be_redone() {
        let fx = Fixture::new(Path::new("t"), "t", 2 * K16, &[("", 3 * K16, false)], 10);
        let (s, _) = in_memory(&fx);
        let blocks = fx.blocks();
        let mut bad = fx.bytes(&blocks[1]).to_vec();
        bad[100] ^= 1;
        s.write_block(blocks[0].piece, 0, fx.bytes(&blocks[0]))
            .unwrap();
        s.write_block(blocks[1].piece, blocks[1].begin, &bad)
            .unwrap();
        assert!(!s.verify_piece(PieceIndex(0)).unwrap());
        // Downloaded again from scratch after the failure.
        s.write_block(blocks[0].piece, 0, fx.bytes(&blocks[0]))
            .unwrap();
        s.write_block(blocks[1].piece, blocks[1].begin, fx.bytes(&blocks[1]))
            .unwrap();
        assert!(s.verify_piece(PieceIndex(0)).unwrap());
        // An abandoned partial piece leaves no stale state behind.
        s.write_block(blocks[2].piece, 0, &bad[..K16 as usize])
            .unwrap();
        s.forget_piece(PieceIndex(1));
        s.write_block(blocks[2].piece, 0, fx.bytes(&blocks[2]))
            .unwrap();
        assert!(s.verify_piece(PieceIndex(1)).unwrap());
    }

    #[test]
    fn disk_full_is_reported_and_verified_data_stays_intact() {
        let fx = Fixture::new(Path::new("dl"), "t", 2 * K16, MULTI, 11);
        let faulty = Arc::new(FaultyBackend::new(MemoryBackend::new(
            &fx.layout.file_lens(),
        )));
        let s = TorrentStorage::new(fx.layout.clone(), Box::new(Arc::clone(&faulty))).unwrap();
        let blocks = fx.blocks();
        for b in blocks.iter().filter(|b| b.piece.0 == 0) {
            s.write_block(b.piece, b.begin, fx.bytes(b)).unwrap();
        }
        assert!(s.verify_piece(PieceIndex(0)).unwrap());
        faulty.fail_writes_after(1000);
        let b = blocks.iter().find(|b| b.piece.0 == 1).unwrap();
        let err = s.write_block(b.piece, b.begin, fx.bytes(b)).unwrap_err();
        assert!(err.is_disk_full(), "{err}");
        assert_eq!(err.io_error().unwrap().kind(), io::ErrorKind::StorageFull);
        match &err {
            StorageError::DiskFull { path, piece, .. } => {
                assert_eq!(*piece, 1);
                assert_eq!(path, &Path::new("dl/t/sub/b.bin"));
            }
            other => panic!("expected DiskFull, got {other:?}"),
        }
        assert!(s.hash_piece(PieceIndex(0)).is_ok());
        assert!(s.verify_piece(PieceIndex(0)).unwrap());
        // Space freed: the torrent can go on, and the half-written piece verifies.
        faulty.set_disk_full(false);
        for b in blocks.iter().filter(|b| b.piece.0 == 1) {
            s.write_block(b.piece, b.begin, fx.bytes(b)).unwrap();
        }
        assert!(s.verify_piece(PieceIndex(1)).unwrap());
    }

    #[test]
    fn failed_write_poisons_the_in_order_hash() {
        let fx = Fixture::new(Path::new("t"), "t", 2 * K16, &[("", 2 * K16, false)], 12);
        let faulty = Arc::new(FaultyBackend::new(MemoryBackend::new(
            &fx.layout.file_lens(),
        )));
        let s = TorrentStorage::new(fx.layout.clone(), Box::new(Arc::clone(&faulty))).unwrap();
        let blocks = fx.blocks();
        faulty.set_disk_full(true);
        assert!(s
            .write_block(blocks[0].piece, 0, fx.bytes(&blocks[0]))
            .is_err());
        faulty.set_disk_full(false);
        s.write_block(blocks[1].piece, blocks[1].begin, fx.bytes(&blocks[1]))
            .unwrap();
        // Block 0 was hashed but never stored: the piece must not pass.
        assert!(!s.verify_piece(PieceIndex(0)).unwrap());
    }

    #[test]
    fn open_checks_the_download_folder() {
        let tmp = tempfile::tempdir().unwrap();
        let missing = tmp.path().join("missing");
        let fx = Fixture::new(&missing, "t", K16, &[("", 10, false)], 13);
        let err = TorrentStorage::open(fx.layout.clone(), &missing).unwrap_err();
        assert!(
            matches!(&err, StorageError::Folder { path, .. } if *path == missing),
            "{err}"
        );
        assert!(err.to_string().starts_with(&format!(
            "download folder {} is not usable: ",
            missing.display()
        )));
        // A folder we cannot write in (simulated: the probe file cannot be created, which
        // also works when the tests run as root).
        let blocked = tmp.path().join("blocked");
        fs::create_dir_all(blocked.join(format!(".bt-write-probe-{}", std::process::id())))
            .unwrap();
        let fx = Fixture::new(&blocked, "t", K16, &[("", 10, false)], 13);
        let err = TorrentStorage::open(fx.layout.clone(), &blocked).unwrap_err();
        assert!(matches!(err, StorageError::Folder { .. }), "{err}");
        // A file where the folder should be.
        let file = tmp.path().join("file");
        fs::write(&file, b"").unwrap();
        let fx = Fixture::new(&file, "t", K16, &[("", 10, false)], 13);
        assert!(matches!(
            TorrentStorage::open(fx.layout.clone(), &file),
            Err(StorageError::Folder { .. })
        ));
    }

    #[test]
    fn resume_is_trusted_until_a_file_changes() {
        let tmp = tempfile::tempdir().unwrap();
        let fx = Fixture::new(tmp.path(), "album", 2 * K16, MULTI, 14);
        let s = on_disk(&fx, tmp.path());
        write_all(&s, &fx);
        let verified: Vec<bool> = (0..s.num_pieces())
            .map(|p| s.verify_piece(PieceIndex(p)).unwrap())
            .collect();
        assert!(verified.iter().all(|&v| v));
        let path = tmp.path().join("album.resume");
        s.resume_state(&verified).unwrap().save(&path).unwrap();
        drop(s);

        let s = TorrentStorage::open_existing(fx.layout.clone(), tmp.path()).unwrap();
        let state = ResumeState::load(&path).unwrap();
        assert_eq!(s.trusted_pieces(&state).unwrap(), Some(verified.clone()));

        // Another torrent's state is never trusted.
        let mut other = state.clone();
        other.info_hash = InfoHash([0xee; 20]);
        assert_eq!(s.trusted_pieces(&other).unwrap(), None);

        // Touched: same size, other mtime.
        let b = &fx.layout.files[3].path;
        let f = fs::File::options().write(true).open(b).unwrap();
        let old = f.metadata().unwrap().modified().unwrap();
        f.set_modified(old + std::time::Duration::from_secs(1))
            .unwrap();
        assert_eq!(s.trusted_pieces(&state).unwrap(), None);
        f.set_modified(old).unwrap();
        assert_eq!(s.trusted_pieces(&state).unwrap(), Some(verified.clone()));

        // Size changed, mtime put back.
        f.set_len(70_000).unwrap();
        f.set_modified(old).unwrap();
        assert_eq!(s.trusted_pieces(&state).unwrap(), None);

        // Missing file.
        let c = &fx.layout.files[4].path;
        fs::remove_file(c).unwrap();
        assert_eq!(s.trusted_pieces(&state).unwrap(), None);
        assert!(s.resume_state(&verified[1..]).is_err());
    }

    #[test]
    fn concurrent_writers_share_one_storage() {
        fn send_sync<T: Send + Sync>() {}
        send_sync::<TorrentStorage>();
        let tmp = tempfile::tempdir().unwrap();
        let fx = Fixture::new(tmp.path(), "t", 4 * K16, MULTI, 15);
        // Two open files at most for seven: handles are evicted while others use them.
        let backend = FileBackend::with_max_open_files(tmp.path(), fx.layout.files.clone(), 2);
        let s = TorrentStorage::new(fx.layout.clone(), Box::new(backend)).unwrap();
        s.prepare(tmp.path()).unwrap();
        let mut blocks = fx.blocks();
        // Mostly in order with some neighbours swapped, spread over four threads.
        for i in (0..blocks.len() - 1).step_by(3) {
            blocks.swap(i, i + 1);
        }
        std::thread::scope(|scope| {
            for t in 0..4 {
                let (s, fx, blocks) = (&s, &fx, &blocks);
                scope.spawn(move || {
                    for b in blocks.iter().skip(t).step_by(4) {
                        s.write_block(b.piece, b.begin, fx.bytes(b)).unwrap();
                    }
                });
            }
        });
        std::thread::scope(|scope| {
            for t in 0..2 {
                let s = &s;
                scope.spawn(move || {
                    for p in (t..s.num_pieces()).step_by(2) {
                        assert!(s.verify_piece(PieceIndex(p)).unwrap(), "piece {p}");
                    }
                });
            }
        });
        s.sync().unwrap();
        assert_files_on_disk(&fx);
    }

    mod prop {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(24))]

            /// Blocks written in any order give the same files, and every piece verifies.
            #[test]
            fn random_block_order_gives_identical_files(
                seed in any::<u64>(),
                order in any::<u64>(),
            ) {
                let tmp = tempfile::tempdir().unwrap();
                let fx = Fixture::new(tmp.path(), "t", 2 * K16, MULTI, seed);
                let s = on_disk(&fx, tmp.path());
                let mut blocks = fx.blocks();
                let mut rng = rand::rngs::StdRng::seed_from_u64(order);
                blocks.shuffle(&mut rng);
                for b in &blocks {
                    s.write_block(b.piece, b.begin, fx.bytes(b)).unwrap();
                }
                for p in 0..s.num_pieces() {
                    prop_assert!(s.verify_piece(PieceIndex(p)).unwrap());
                }
                assert_files_on_disk(&fx);
            }
        }

        use rand::seq::SliceRandom;
        use rand::SeedableRng;
    }
}
