//! Checking data already on disk at start: [`TorrentStorage::check_existing`].

use std::io;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Mutex;

use bt_meta::PieceIndex;

use super::error::StorageError;
use super::hasher::PieceHasher;
use super::torrent::TorrentStorage;

/// How far a check has come, passed to the progress callback after every piece.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CheckProgress {
    /// Pieces done (hashed, or skipped because a file is missing or has the wrong size).
    pub done: u32,
    /// Pieces in the torrent.
    pub total: u32,
    /// Pieces found valid so far.
    pub valid: u32,
}

impl TorrentStorage {
    /// Finds which pieces are already on disk and correct: every piece whose files all
    /// exist with the right size is hashed, on `threads` threads; pieces touching a missing
    /// or wrongly sized file are skipped (not valid). If no file with data exists at all,
    /// returns at once. `progress` is called once for the skipped pieces, then (from the
    /// checking threads) after each hashed piece.
    ///
    /// A file that disappears or shrinks during the check only makes its pieces invalid;
    /// any other read error stops the check.
    pub fn check_existing(
        &self,
        threads: usize,
        progress: impl Fn(CheckProgress) + Sync,
    ) -> Result<Vec<bool>, StorageError> {
        let total = self.num_pieces();
        let files = &self.layout().files;
        let stamps = self.file_stamps()?;
        let present: Vec<bool> = files
            .iter()
            .zip(&stamps)
            .map(|(spec, stamp)| spec.pad || stamp.is_some_and(|s| s.len == spec.len))
            .collect();
        let any_data = files
            .iter()
            .zip(&stamps)
            .any(|(spec, stamp)| !spec.pad && spec.len > 0 && stamp.is_some());
        if !any_data {
            progress(CheckProgress {
                done: total,
                total,
                valid: 0,
            });
            return Ok(vec![false; total as usize]);
        }

        let g = self.geometry();
        let candidates: Vec<PieceIndex> = (0..total)
            .map(PieceIndex)
            .filter(|&p| {
                g.file_spans(p, 0, u32::MAX).all(|s| present[s.file]) // ok: geometry and files agree
            })
            .collect();

        let skipped = total - candidates.len() as u32;
        if skipped > 0 {
            progress(CheckProgress {
                done: skipped,
                total,
                valid: 0,
            });
        }
        let valid: Vec<AtomicBool> = (0..total).map(|_| AtomicBool::new(false)).collect();
        let next = AtomicU32::new(0);
        let done = AtomicU32::new(skipped);
        let valid_count = AtomicU32::new(0);
        let stop = AtomicBool::new(false);
        let failure: Mutex<Option<StorageError>> = Mutex::new(None);

        let worker = || {
            // One buffer per checking thread, dropped when the check ends.
            let mut buf = Vec::new();
            loop {
                if stop.load(Ordering::Relaxed) {
                    return;
                }
                let i = next.fetch_add(1, Ordering::Relaxed) as usize;
                let Some(&piece) = candidates.get(i) else {
                    return;
                };
                let ok = match self.finish_hash_with(piece, PieceHasher::new(), &mut buf) {
                    Ok(hash) => Some(&hash) == self.expected_hash(piece),
                    Err(e) if vanished(&e) => false,
                    Err(e) => {
                        stop.store(true, Ordering::Relaxed);
                        failure
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .get_or_insert(e);
                        return;
                    }
                };
                if ok {
                    valid[piece.0 as usize].store(true, Ordering::Relaxed); // ok: piece < total
                    valid_count.fetch_add(1, Ordering::Relaxed);
                }
                progress(CheckProgress {
                    done: done.fetch_add(1, Ordering::Relaxed) + 1,
                    total,
                    valid: valid_count.load(Ordering::Relaxed),
                });
            }
        };
        let threads = threads.clamp(1, candidates.len().max(1));
        std::thread::scope(|s| {
            for _ in 1..threads {
                s.spawn(worker);
            }
            worker();
        });

        if let Some(e) = failure.into_inner().unwrap_or_else(|p| p.into_inner()) {
            return Err(e);
        }
        Ok(valid.into_iter().map(AtomicBool::into_inner).collect())
    }
}

/// Whether a read failed only because a file went missing or got shorter.
fn vanished(e: &StorageError) -> bool {
    matches!(
        e.io_error().map(io::Error::kind),
        Some(io::ErrorKind::NotFound | io::ErrorKind::UnexpectedEof)
    )
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::path::Path;
    use std::sync::Arc;

    use super::*;
    use crate::storage::fixture::{Fixture, F};
    use crate::storage::{FaultyBackend, MemoryBackend};

    const K16: u64 = 16 * 1024;

    /// Four files over 2-block pieces: piece 0 = a + start of b, b spans pieces 0..=3,
    /// c is alone in piece 4 and d shares piece 5 with the end of c.
    const FILES: &[F<'static>] = &[
        ("a", 20_000, false),
        ("b", 120_000, false),
        ("empty", 0, false),
        ("c", 40_000, false),
        ("d", 3, false),
    ];

    fn write_piece(s: &TorrentStorage, fx: &Fixture, piece: u32) {
        for b in fx.blocks().iter().filter(|b| b.piece.0 == piece) {
            s.write_block(b.piece, b.begin, fx.bytes(b)).unwrap();
        }
    }

    fn check(s: &TorrentStorage, threads: usize) -> (Vec<bool>, Vec<CheckProgress>) {
        let seen = Mutex::new(Vec::new());
        let have = s
            .check_existing(threads, |p| seen.lock().unwrap().push(p))
            .unwrap();
        let mut seen = seen.into_inner().unwrap();
        seen.sort_by_key(|p| p.done);
        (have, seen)
    }

    #[test]
    fn partial_data_is_found_piece_by_piece() {
        let tmp = tempfile::tempdir().unwrap();
        let fx = Fixture::new(tmp.path(), "t", 2 * K16, FILES, 1);
        let s = TorrentStorage::open(fx.layout.clone(), tmp.path()).unwrap();
        assert_eq!(s.num_pieces(), 6);
        for p in [0, 2, 4] {
            write_piece(&s, &fx, p);
        }
        // Piece 1: one block only; piece 3: a corrupted byte; piece 5 never written.
        let b = fx.blocks().into_iter().find(|b| b.piece.0 == 1).unwrap();
        s.write_block(b.piece, b.begin, fx.bytes(&b)).unwrap();
        write_piece(&s, &fx, 3);
        s.write_block(
            PieceIndex(3),
            5,
            &[fx.payload[3 * 2 * K16 as usize + 5] ^ 1],
        )
        .unwrap();
        s.sync().unwrap();
        drop(s);

        for threads in [1, 2, 5] {
            let s = TorrentStorage::open_existing(fx.layout.clone(), tmp.path()).unwrap();
            let (have, progress) = check(&s, threads);
            assert_eq!(
                have,
                [true, false, true, false, true, false],
                "{threads} threads"
            );
            let last = progress.last().unwrap();
            assert_eq!((last.done, last.total, last.valid), (6, 6, 3));
            let dones: Vec<u32> = progress.iter().map(|p| p.done).collect();
            // Piece 5 lies in `d`, never written (so never created): skipped first.
            assert_eq!(dones, (1..=6).collect::<Vec<_>>(), "one call per piece");
        }
    }

    #[test]
    fn pieces_of_missing_or_resized_files_are_skipped() {
        let tmp = tempfile::tempdir().unwrap();
        let fx = Fixture::new(tmp.path(), "t", 2 * K16, FILES, 2);
        let s = TorrentStorage::open(fx.layout.clone(), tmp.path()).unwrap();
        for p in 0..6 {
            write_piece(&s, &fx, p);
        }
        drop(s);
        let s = TorrentStorage::open_existing(fx.layout.clone(), tmp.path()).unwrap();
        assert_eq!(check(&s, 2).0, [true; 6]);
        // `a` gone: only piece 0 touches it.
        fs::remove_file(tmp.path().join("t/a")).unwrap();
        assert_eq!(check(&s, 2).0, [false, true, true, true, true, true]);
        // `d` one byte longer, its first 3 bytes still right: piece 5 is not hashed.
        let mut d = fx.file_bytes(4).to_vec();
        d.push(0);
        fs::write(tmp.path().join("t/d"), d).unwrap();
        assert_eq!(check(&s, 2).0, [false, true, true, true, true, false]);
        // The empty file missing changes nothing: it holds no piece.
        fs::remove_file(tmp.path().join("t/empty")).unwrap();
        assert_eq!(check(&s, 2).0, [false, true, true, true, true, false]);
    }

    #[test]
    fn no_files_returns_at_once_without_reading() {
        let fx = Fixture::new(Path::new("t"), "t", 2 * K16, FILES, 3);
        let faulty = Arc::new(FaultyBackend::new(MemoryBackend::new(
            &fx.layout.file_lens(),
        )));
        faulty.set_fail_reads(true);
        let s = TorrentStorage::new(fx.layout.clone(), Box::new(Arc::clone(&faulty))).unwrap();
        s.prepare(Path::new("t")).unwrap(); // creates the empty file: still no data
        let (have, progress) = check(&s, 4);
        assert_eq!(have, [false; 6]);
        assert_eq!(
            progress,
            [CheckProgress {
                done: 6,
                total: 6,
                valid: 0
            }]
        );
    }

    #[test]
    fn read_error_stops_the_check() {
        let fx = Fixture::new(Path::new("t"), "t", 2 * K16, FILES, 4);
        let faulty = Arc::new(FaultyBackend::new(MemoryBackend::new(
            &fx.layout.file_lens(),
        )));
        let s = TorrentStorage::new(fx.layout.clone(), Box::new(Arc::clone(&faulty))).unwrap();
        for p in 0..6 {
            write_piece(&s, &fx, p);
        }
        assert_eq!(s.check_existing(2, |_| {}).unwrap(), [true; 6]);
        faulty.set_fail_reads(true);
        let err = s.check_existing(2, |_| {}).unwrap_err();
        assert!(matches!(err, StorageError::Read { .. }), "{err}");
    }

    #[test]
    fn vanished_files_only_invalidate() {
        let gone = |kind| StorageError::Read {
            path: "x".into(),
            piece: 0,
            source: io::Error::from(kind),
        };
        assert!(vanished(&gone(io::ErrorKind::NotFound)));
        assert!(vanished(&gone(io::ErrorKind::UnexpectedEof)));
        assert!(!vanished(&gone(io::ErrorKind::PermissionDenied)));
    }

    #[test]
    fn pad_only_piece_checks_as_zeros() {
        let files: &[F<'_>] = &[
            ("a", 2 * K16, false),
            ("pad", 2 * K16, true),
            ("b", 5, false),
        ];
        let fx = Fixture::new(Path::new("t"), "t", 2 * K16, files, 5);
        let mem = MemoryBackend::new(&fx.layout.file_lens());
        let s = TorrentStorage::new(fx.layout.clone(), Box::new(mem)).unwrap();
        write_piece(&s, &fx, 2);
        assert_eq!(s.check_existing(1, |_| {}).unwrap(), [false, true, true]);
    }
}
