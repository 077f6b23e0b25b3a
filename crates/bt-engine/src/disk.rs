//! The disk worker: block writes, piece hash checks and resume saves for one torrent, on a
//! std thread, off the async runtime.
//!
//! The torrent actor hands jobs over a bounded queue with `try_send` and never waits for
//! the disk: it counts blocks in flight and stops reading peer events while
//! [`MAX_DISK_INFLIGHT`](crate::torrent::MAX_DISK_INFLIGHT) are pending. Both queues are
//! sized above what that accounting lets through, so neither side ever blocks on a full
//! queue. Jobs run in order, so a piece's hash check always comes after its blocks.
//! Written blocks are reported in batches ([`DiskResult::Written`]), not one event each.

use std::io;
use std::sync::Arc;

use bytes::Bytes;
use tokio::sync::{mpsc, oneshot};

use crate::storage::{StorageError, TorrentStorage};
use bt_meta::PieceIndex;
use std::path::PathBuf;

/// Capacity of the job and result queues; above the most the actor lets be in flight.
const QUEUE_CAPACITY: usize = 4096;
/// Report written blocks at least every this many.
const WRITTEN_BATCH: usize = 64;

/// A torrent's storage and where its resume state is saved. Every method blocks.
pub(crate) struct Store {
    /// The torrent's data.
    pub storage: TorrentStorage,
    /// Where resume state goes; `None` keeps none (in-memory storage).
    pub resume_path: Option<PathBuf>,
}

impl Store {
    /// Stores one block of a piece.
    fn write_block(&self, piece: u32, begin: u32, data: &[u8]) -> Result<(), StorageError> {
        self.storage.write_block(PieceIndex(piece), begin, data)
    }

    /// Whether the piece's stored bytes match its hash.
    fn verify_piece(&self, piece: u32) -> Result<bool, StorageError> {
        self.storage.verify_piece(PieceIndex(piece))
    }

    /// Flushes written data and saves which pieces are verified (atomically).
    pub(crate) fn save_resume(&self, pieces: &[bool]) {
        let Some(path) = &self.resume_path else {
            if let Err(e) = self.storage.sync() {
                tracing::warn!(error = %e, "sync failed");
            }
            return;
        };
        let saved = self
            .storage
            .resume_state(pieces)
            .map_err(|e| e.to_string())
            .and_then(|state| {
                if let Some(dir) = path.parent() {
                    std::fs::create_dir_all(dir)
                        .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
                }
                state.save(path).map_err(|e| e.to_string())
            });
        match saved {
            Ok(()) => tracing::debug!(path = %path.display(), "resume state saved"),
            Err(e) => tracing::warn!(error = %e, "resume state not saved"),
        }
    }
}

/// A job for the disk worker.
enum Job {
    Write {
        piece: u32,
        begin: u32,
        data: Bytes,
    },
    Hash {
        piece: u32,
    },
    SaveResume(Vec<bool>),
    Finish {
        pieces: Vec<bool>,
        done: oneshot::Sender<()>,
    },
}

/// What the disk worker reports back.
#[derive(Debug)]
pub(crate) enum DiskResult {
    /// This many blocks were written (or failed to be; see [`DiskResult::Failed`]).
    Written(usize),
    /// A piece's hash verdict.
    Hashed {
        /// The piece.
        piece: u32,
        /// Whether it matched.
        ok: bool,
    },
    /// A write or hash read failed; reported once, the torrent should stop.
    Failed(StorageError),
}

/// The actor's side of its disk worker.
pub(crate) struct Disk {
    jobs: mpsc::Sender<Job>,
    /// Results, read by the actor's loop.
    pub results: mpsc::Receiver<DiskResult>,
}

impl Disk {
    /// Starts a worker thread for `store`.
    pub(crate) fn spawn(store: Arc<Store>, name: String) -> io::Result<Disk> {
        let (jobs_tx, jobs_rx) = mpsc::channel(QUEUE_CAPACITY);
        let (results_tx, results_rx) = mpsc::channel(QUEUE_CAPACITY);
        std::thread::Builder::new()
            .name(name)
            .spawn(move || worker(store, jobs_rx, results_tx))?;
        Ok(Disk {
            jobs: jobs_tx,
            results: results_rx,
        })
    }

    fn submit(&self, job: Job) {
        if self.jobs.try_send(job).is_err() {
            // Unreachable while the actor's in-flight accounting holds; the worker only
            // goes away when the actor finishes it.
            tracing::error!("disk queue full or closed; job dropped");
        }
    }

    /// Queues a block write.
    pub(crate) fn write(&self, piece: u32, begin: u32, data: Bytes) {
        self.submit(Job::Write { piece, begin, data });
    }

    /// Queues a hash check of a piece whose blocks are all queued.
    pub(crate) fn hash(&self, piece: u32) {
        self.submit(Job::Hash { piece });
    }

    /// Queues a resume save.
    pub(crate) fn save_resume(&self, pieces: Vec<bool>) {
        self.submit(Job::SaveResume(pieces));
    }

    /// Runs every queued job, saves resume state and waits for it.
    pub(crate) async fn finish(&mut self, pieces: Vec<bool>) {
        let (done, wait) = oneshot::channel();
        if self.jobs.send(Job::Finish { pieces, done }).await.is_ok() {
            let _ = wait.await;
        }
    }
}

fn worker(store: Arc<Store>, mut jobs: mpsc::Receiver<Job>, results: mpsc::Sender<DiskResult>) {
    let mut failed = false;
    let mut written = 0usize;
    let report = |r: DiskResult| results.blocking_send(r).is_ok();
    while let Some(first) = jobs.blocking_recv() {
        let mut next = Some(first);
        while let Some(job) = next {
            match job {
                Job::Write { piece, begin, data } => {
                    if let Err(e) = store.write_block(piece, begin, &data) {
                        if !failed {
                            failed = true;
                            if !report(DiskResult::Failed(e)) {
                                return;
                            }
                        }
                    }
                    written += 1;
                    if written >= WRITTEN_BATCH {
                        if !report(DiskResult::Written(written)) {
                            return;
                        }
                        written = 0;
                    }
                }
                Job::Hash { piece } => {
                    let verdict = if failed {
                        Ok(false)
                    } else {
                        store.verify_piece(piece)
                    };
                    let r = match verdict {
                        Ok(ok) => DiskResult::Hashed { piece, ok },
                        Err(e) => {
                            failed = true;
                            DiskResult::Failed(e)
                        }
                    };
                    if (!failed || matches!(r, DiskResult::Failed(_))) && !report(r) {
                        return;
                    }
                }
                Job::SaveResume(pieces) => store.save_resume(&pieces),
                Job::Finish { pieces, done } => {
                    store.save_resume(&pieces);
                    let _ = done.send(());
                }
            }
            next = jobs.try_recv().ok();
        }
        if written > 0 {
            if !report(DiskResult::Written(written)) {
                return;
            }
            written = 0;
        }
    }
}
