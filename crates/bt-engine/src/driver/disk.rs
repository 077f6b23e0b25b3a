//! The disk workers of one torrent, std threads off the async runtime: a writer, a
//! hasher and a syncer.
//!
//! - The **writer** takes the jobs queued by the torrent actor, up to [`WINDOW`] at a
//!   time, with their blocks put in torrent order (peers such as libtorrent swap
//!   neighbouring blocks). Blocks that follow each other in the torrent (across pieces
//!   too) are gathered, up to [`MAX_RUN`], and written with one vectored positional
//!   write (`pwritev`); written
//!   blocks are reported in batches ([`DiskResult::Written`]) and handed on to the hasher,
//!   followed by the checks of the pieces they completed.
//! - The **hasher** feeds blocks from memory (the same `Bytes` the socket filled) to the
//!   SHA-1 of their piece as they come in order, so hashing runs beside the writes and
//!   the network. A block that comes ahead of a gap is copied aside ([`HeldBlocks`], at
//!   most [`HELD_BYTES`]) and hashed when the gap fills; when the check arrives it reads
//!   back only what still was not hashed and reports the verdict ([`DiskResult::Hashed`]).
//! - The **syncer** flushes every [`SYNC_EVERY`] bytes written (so the page cache does
//!   not pile up dirty data to flush at the end), then lets the OS drop from its cache
//!   what the flush before it made durable, and saves resume state. A download so keeps
//!   about two flushes' worth of its data cached instead of filling the page cache, and
//!   the pages it frees are the ones its next writes reuse.
//!
//! The actor hands jobs over a bounded queue with `try_send` and never waits for the
//! disk: it counts blocks in flight and stops reading peer events while
//! [`MAX_DISK_INFLIGHT`](crate::torrent::MAX_DISK_INFLIGHT) are pending. Both its queues
//! are sized above what that accounting lets through, so neither side ever blocks on a
//! full queue. The hasher's queue is bounded ([`HASH_QUEUE`] runs); a writer ahead of it waits,
//! which holds back [`DiskResult::Written`] and so the actor. A piece's check always comes
//! after its blocks are written and offered.

use std::collections::HashMap;
use std::io;
use std::ops::Range;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc as std_mpsc, Arc};

use bt_meta::PieceIndex;
use bytes::Bytes;
use tokio::sync::{mpsc, oneshot};

use crate::driver::reorder::{HeldBlocks, Hold};
use crate::storage::{Offer, PieceHasher, StorageError, TorrentStorage};

/// Capacity of the job and result queues; above the most the actor lets be in flight.
const QUEUE_CAPACITY: usize = 4096;
/// Report written blocks at least every this many.
const WRITTEN_BATCH: usize = 64;
/// Most blocks gathered into one vectored write.
const MAX_RUN: usize = 64;
/// Most queued jobs the writer takes at once to put their blocks in torrent order.
const WINDOW: usize = 256;
/// Runs written and not yet hashed (each up to [`MAX_RUN`] blocks), above which the
/// writer waits for the hasher.
const HASH_QUEUE: usize = 2;
/// Bytes of out-of-order blocks the hasher may hold until the blocks before them come.
const HELD_BYTES: usize = 4 << 20;
/// Bytes written between two flushes.
const SYNC_EVERY: u64 = 32 << 20;
/// Most written ranges remembered for the syncer to uncache (more are left cached).
const MAX_UNCACHE_RANGES: usize = 4096;

/// A torrent's storage and where its resume state is saved. Every method blocks.
pub(crate) struct Store {
    /// The torrent's data.
    pub storage: TorrentStorage,
    /// Where resume state goes; `None` keeps none (in-memory storage).
    pub resume_path: Option<PathBuf>,
    /// The pieces the resume file on disk holds (saved, or loaded and matching the
    /// files): saving them again before anything is written would change nothing.
    pub saved: std::sync::Mutex<Option<Vec<bool>>>,
}

impl Store {
    /// Flushes written data and saves which pieces are verified (atomically).
    pub(crate) fn save_resume(&self, pieces: &[bool]) {
        self.write_resume(pieces);
    }

    /// Saves resume state unless the file already holds `pieces` and nothing was
    /// written since (the disk workers never started).
    fn save_resume_unless_saved(&self, pieces: &[bool]) {
        if !self.holds(pieces) {
            self.write_resume(pieces);
        }
    }

    /// Whether the resume file already holds `pieces`.
    fn holds(&self, pieces: &[bool]) -> bool {
        self.saved
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_deref()
            == Some(pieces)
    }

    fn write_resume(&self, pieces: &[bool]) {
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
            Ok(()) => {
                *self.saved.lock().unwrap_or_else(|e| e.into_inner()) = Some(pieces.to_vec());
                tracing::debug!(path = %path.display(), "resume state saved");
            }
            Err(e) => tracing::warn!(error = %e, "resume state not saved"),
        }
    }
}

/// A job for the writer.
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

/// What the writer hands the hasher after each vectored write: one message, so the
/// hasher wakes once per run, not once per block. Sent back empty for reuse.
#[derive(Default)]
struct HashBatch {
    /// Written blocks, each hashed if it continues its piece in order.
    blocks: Vec<RunBlock>,
    /// Pieces whose every block is written (these or earlier): finish and report.
    verify: Vec<u32>,
    /// A write failed after the pieces above were queued: report it after their verdicts.
    fail: Option<StorageError>,
}

/// A job for the syncer.
enum SyncJob {
    /// Flush what was written so far; these torrent byte ranges were written since the
    /// last flush.
    Flush(Vec<Range<u64>>),
    /// Flush, then save resume state recording these verified pieces; answer when done.
    SaveResume(Vec<bool>, Option<oneshot::Sender<()>>),
}

/// What the disk workers report back.
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
    Failed(Box<StorageError>),
}

/// The actor's side of its disk workers. The threads start with the first write or
/// check, so a torrent that only seeds costs none.
pub(crate) struct Disk {
    /// The writer's queue, once the workers run.
    jobs: Option<mpsc::Sender<Job>>,
    /// What starting them takes.
    start: Spawn,
    /// Results, read by the actor's loop.
    pub results: mpsc::Receiver<DiskResult>,
    /// The last resume save made without the workers, still running: the next save
    /// waits for it, so two never write the same file at once or out of order.
    last_save: Option<tokio::task::JoinHandle<()>>,
}

/// What starting the workers takes.
struct Spawn {
    store: Arc<Store>,
    name: String,
    sync_every: u64,
    results: mpsc::Sender<DiskResult>,
}

impl Disk {
    /// The disk side of `store`, whose writer, hasher and syncer threads start when first
    /// needed; `name` names them.
    pub(crate) fn spawn(store: Arc<Store>, name: String) -> io::Result<Disk> {
        Self::spawn_with(store, name, SYNC_EVERY)
    }

    /// [`spawn`](Self::spawn), flushing every `sync_every` bytes written.
    fn spawn_with(store: Arc<Store>, name: String, sync_every: u64) -> io::Result<Disk> {
        let (results_tx, results_rx) = mpsc::channel(QUEUE_CAPACITY);
        Ok(Disk {
            jobs: None,
            start: Spawn {
                store,
                name,
                sync_every,
                results: results_tx,
            },
            results: results_rx,
            last_save: None,
        })
    }

    /// The writer's queue, starting the workers if they do not run yet.
    fn workers(&mut self) -> Option<&mpsc::Sender<Job>> {
        if self.jobs.is_none() {
            match self.start.threads() {
                Ok(tx) => self.jobs = Some(tx),
                Err(e) => {
                    tracing::error!(error = %e, "cannot start the disk threads");
                    let _ = self.start.results.try_send(DiskResult::Failed(Box::new(
                        StorageError::Sync { source: e },
                    )));
                }
            }
        }
        self.jobs.as_ref()
    }
}

impl Spawn {
    /// Starts the writer, hasher and syncer threads; returns the writer's queue.
    fn threads(&self) -> io::Result<mpsc::Sender<Job>> {
        let (store, name, sync_every) =
            (Arc::clone(&self.store), self.name.clone(), self.sync_every);
        let results_tx = self.results.clone();
        let (jobs_tx, jobs_rx) = mpsc::channel(QUEUE_CAPACITY);
        let (hash_tx, hash_rx) = std_mpsc::sync_channel(HASH_QUEUE);
        let (spare_tx, spare_rx) = std_mpsc::sync_channel(HASH_QUEUE + 1);
        let (sync_tx, sync_rx) = std_mpsc::sync_channel(4);
        let failed = Arc::new(AtomicBool::new(false));
        let reporter = Reporter {
            results: results_tx,
            failed,
        };
        // Thread names keep 15 bytes: `bt-disk-<7 hex>` gives `bt-hash-...`, `bt-sync-...`.
        let tail = name.strip_prefix("bt-disk-").unwrap_or(&name);
        let short: String = tail.chars().take(7).collect();
        let hasher = Hasher {
            store: Arc::clone(&store),
            report: reporter.clone(),
        };
        std::thread::Builder::new()
            .name(format!("bt-hash-{short}"))
            .spawn(move || hasher.run(hash_rx, spare_tx))?;
        let syncer = Arc::clone(&store);
        std::thread::Builder::new()
            .name(format!("bt-sync-{short}"))
            .spawn(move || sync_worker(&syncer, sync_rx))?;
        let writer = Writer {
            store,
            report: reporter,
            hash: hash_tx,
            spare: spare_rx,
            sync: sync_tx,
            run: Run::default(),
            verify: Vec::new(),
            written: 0,
            unsynced: 0,
            sync_every,
            written_ranges: Vec::new(),
            write_failed: false,
            failure: None,
        };
        std::thread::Builder::new()
            .name(name)
            .spawn(move || writer.run(jobs_rx))?;
        Ok(jobs_tx)
    }
}

impl Disk {
    fn submit(&mut self, job: Job) {
        let Some(jobs) = self.workers() else {
            return;
        };
        if jobs.try_send(job).is_err() {
            // Unreachable while the actor's in-flight accounting holds; the worker only
            // goes away when the actor finishes it.
            tracing::error!("disk queue full or closed; job dropped");
        }
    }

    /// Queues a block write.
    pub(crate) fn write(&mut self, piece: u32, begin: u32, data: Bytes) {
        self.submit(Job::Write { piece, begin, data });
    }

    /// Queues a hash check of a piece whose blocks are all queued.
    pub(crate) fn hash(&mut self, piece: u32) {
        self.submit(Job::Hash { piece });
    }

    /// Queues a resume save (on a blocking thread of the runtime when the workers do not
    /// run: nothing was written, only the state changed).
    pub(crate) fn save_resume(&mut self, pieces: Vec<bool>) {
        match &self.jobs {
            Some(_) => self.submit(Job::SaveResume(pieces)),
            None if self.last_save.is_none() && self.start.store.holds(&pieces) => {}
            None => {
                let store = Arc::clone(&self.start.store);
                let previous = self.last_save.take();
                self.last_save = Some(tokio::spawn(async move {
                    if let Some(p) = previous {
                        let _ = p.await;
                    }
                    let _ = tokio::task::spawn_blocking(move || {
                        store.save_resume_unless_saved(&pieces)
                    })
                    .await;
                }));
            }
        }
    }

    /// Runs every queued job, saves resume state and waits for it.
    pub(crate) async fn finish(&mut self, pieces: Vec<bool>) {
        if let Some(p) = self.last_save.take() {
            let _ = p.await;
        }
        let Some(jobs) = &self.jobs else {
            if self.start.store.holds(&pieces) {
                // Nothing to write: no thread needed either.
                return;
            }
            let store = Arc::clone(&self.start.store);
            let _ =
                tokio::task::spawn_blocking(move || store.save_resume_unless_saved(&pieces)).await;
            return;
        };
        let (done, wait) = oneshot::channel();
        if jobs.send(Job::Finish { pieces, done }).await.is_ok() {
            let _ = wait.await;
        }
    }
}

/// Sends results to the actor; shared by the writer and the hasher.
#[derive(Clone)]
struct Reporter {
    results: mpsc::Sender<DiskResult>,
    /// A write or read failed (and was reported): no verdict is reported after it.
    failed: Arc<AtomicBool>,
}

impl Reporter {
    /// Sends `r`; `false` if the actor is gone.
    fn send(&self, r: DiskResult) -> bool {
        self.results.blocking_send(r).is_ok()
    }

    /// Reports the first failure only; `false` if the actor is gone.
    fn fail(&self, e: StorageError) -> bool {
        if self.failed.swap(true, Ordering::AcqRel) {
            return true;
        }
        self.send(DiskResult::Failed(Box::new(e)))
    }

    fn has_failed(&self) -> bool {
        self.failed.load(Ordering::Acquire)
    }
}

/// Blocks gathered for one vectored write: they follow each other in the torrent.
#[derive(Default)]
struct Run {
    /// Torrent offset of the first block.
    start: u64,
    /// Torrent offset just past the last block.
    end: u64,
    blocks: Vec<RunBlock>,
}

/// One block of a [`Run`].
struct RunBlock {
    piece: u32,
    begin: u32,
    data: Bytes,
}

impl AsRef<[u8]> for RunBlock {
    fn as_ref(&self) -> &[u8] {
        &self.data
    }
}

/// The writer thread's state.
struct Writer {
    store: Arc<Store>,
    report: Reporter,
    hash: std_mpsc::SyncSender<HashBatch>,
    /// Batches the hasher is done with.
    spare: std_mpsc::Receiver<HashBatch>,
    sync: std_mpsc::SyncSender<SyncJob>,
    run: Run,
    /// Pieces whose last block is in the run: checked once it is written.
    verify: Vec<u32>,
    /// Blocks written and not yet reported.
    written: usize,
    /// Bytes written since the syncer was last asked to flush.
    unsynced: u64,
    /// Bytes written between two flushes ([`SYNC_EVERY`] but in tests).
    sync_every: u64,
    /// Torrent byte ranges written since then (neighbours merged).
    written_ranges: Vec<Range<u64>>,
    /// A write failed: nothing more is written or checked.
    write_failed: bool,
    /// The failure, until it goes to the hasher.
    failure: Option<StorageError>,
}

impl Writer {
    /// Runs jobs until the actor drops its queue (or is gone): whatever is queued, up to
    /// [`WINDOW`] jobs or a resume save, is taken at once and put in torrent order
    /// ([`in_torrent_order`]), so blocks that arrived slightly out of order still make
    /// one run (and reach the hasher in order).
    fn run(mut self, mut jobs: mpsc::Receiver<Job>) {
        let mut window: Vec<Job> = Vec::with_capacity(WINDOW);
        while let Some(first) = jobs.blocking_recv() {
            let mut next = Some(first);
            while let Some(job) = next {
                window.push(job);
                while window.len() < WINDOW && !window.last().is_some_and(Job::is_save) {
                    match jobs.try_recv() {
                        Ok(job) => window.push(job),
                        Err(_) => break,
                    }
                }
                in_torrent_order(&mut window, self.store.storage.geometry());
                let mut queued = window.drain(..).peekable();
                while let Some(job) = queued.next() {
                    if job.is_replaced_by(queued.peek()) {
                        // The later copy is what ends up on disk: only it is written.
                        self.written += 1;
                        continue;
                    }
                    if !self.apply(job) {
                        return;
                    }
                }
                next = jobs.try_recv().ok();
            }
            // The queue is empty: write what was gathered and report it.
            if !self.flush() || !self.report_written() {
                return;
            }
        }
    }

    /// Runs one job; `false` if the actor or the hasher is gone.
    fn apply(&mut self, job: Job) -> bool {
        match job {
            Job::Write { piece, begin, data } => {
                let geometry = self.store.storage.geometry();
                // ok: the actor only writes blocks the geometry holds
                let at = geometry.piece_offset(PieceIndex(piece)).unwrap_or(0) + u64::from(begin);
                let r = &self.run;
                let follows = !r.blocks.is_empty() && r.end == at;
                if (!follows || r.blocks.len() >= MAX_RUN) && !self.flush() {
                    return false;
                }
                if self.run.blocks.is_empty() {
                    self.run.start = at;
                }
                self.run.end = at + data.len() as u64;
                self.run.blocks.push(RunBlock { piece, begin, data });
                true
            }
            Job::Hash { piece } => {
                // Sent to the hasher by the next flush, after the run that may hold the
                // piece's last block; the queue running dry flushes at the latest.
                self.verify.push(piece);
                true
            }
            Job::SaveResume(pieces) => {
                // Verified pieces were written before they were verified: the syncer may
                // save them while the writer goes on.
                self.flush() && self.sync.send(SyncJob::SaveResume(pieces, None)).is_ok()
            }
            Job::Finish { pieces, done } => {
                // Through the syncer, so an earlier save it still has queued cannot land
                // after this one.
                let job = SyncJob::SaveResume(pieces, Some(done));
                self.flush() && self.sync.send(job).is_ok()
            }
        }
    }

    /// Writes the gathered run, hands its blocks to the hasher, then the checks of the
    /// pieces it completed, and reports every [`WRITTEN_BATCH`] blocks; `false` if the
    /// actor or the hasher is gone.
    fn flush(&mut self) -> bool {
        if let Some(first) = self.run.blocks.first() {
            let (piece, begin) = (first.piece, first.begin);
            if !self.report.has_failed() && !self.write_failed {
                let res =
                    self.store
                        .storage
                        .write_blocks(PieceIndex(piece), begin, &self.run.blocks);
                if let Err(e) = res {
                    // The failure goes to the hasher behind the checks of the pieces
                    // written before, so their verdicts are reported first and nothing
                    // verified is lost.
                    self.write_failed = true;
                    self.failure = Some(e);
                }
            }
            self.written += self.run.blocks.len();
            self.unsynced += self.run.end - self.run.start;
            let range = self.run.start..self.run.end;
            let room = self.written_ranges.len() < MAX_UNCACHE_RANGES;
            match self.written_ranges.last_mut() {
                Some(last) if last.end == range.start => last.end = range.end,
                _ if room => self.written_ranges.push(range),
                _ => {}
            }
        }
        if self.write_failed {
            // Pieces completed from here on are not on disk: never checked.
            self.verify.clear();
            self.run.blocks.clear();
        }
        if !self.run.blocks.is_empty() || !self.verify.is_empty() || self.failure.is_some() {
            let mut next = self.spare.try_recv().unwrap_or_default();
            next.fail = self.failure.take();
            std::mem::swap(&mut next.blocks, &mut self.run.blocks);
            std::mem::swap(&mut next.verify, &mut self.verify);
            if self.hash.send(next).is_err() {
                return false;
            }
        }
        if self.unsynced >= self.sync_every {
            let ranges = std::mem::take(&mut self.written_ranges);
            match self.sync.try_send(SyncJob::Flush(ranges)) {
                Ok(()) => self.unsynced = 0,
                // The syncer is busy: ask again after the next run.
                Err(std_mpsc::TrySendError::Full(SyncJob::Flush(ranges))) => {
                    self.written_ranges = ranges;
                }
                Err(_) => {}
            }
        }
        if self.written >= WRITTEN_BATCH {
            return self.report_written();
        }
        true
    }

    /// Reports the blocks written since the last report.
    fn report_written(&mut self) -> bool {
        if self.written == 0 {
            return true;
        }
        let n = std::mem::take(&mut self.written);
        self.report.send(DiskResult::Written(n))
    }
}

impl Job {
    /// A resume save, which the writer never reorders anything across.
    fn is_save(&self) -> bool {
        matches!(self, Job::SaveResume(_) | Job::Finish { .. })
    }

    /// Whether this is a write that `next` writes again: same place, same length.
    fn is_replaced_by(&self, next: Option<&Job>) -> bool {
        match (self, next) {
            (
                Job::Write { piece, begin, data },
                Some(Job::Write {
                    piece: p,
                    begin: b,
                    data: d,
                }),
            ) => piece == p && begin == b && data.len() == d.len(),
            _ => false,
        }
    }
}

/// Puts the jobs of a window in the order the writer runs them: the writes by torrent
/// offset (a stable sort, so a later copy of a block is still written last), then the
/// piece checks as they came, then the resume save that may end the window. A check
/// comes after all its piece's blocks, so running it later changes nothing but when it
/// is reported; writes only ever move ahead of checks, never behind them.
fn in_torrent_order(window: &mut [Job], geometry: &bt_meta::Geometry) {
    window.sort_by_key(|job| match job {
        Job::Write { piece, begin, .. } => (
            0,
            geometry.piece_offset(PieceIndex(*piece)).unwrap_or(0) + u64::from(*begin),
        ),
        Job::Hash { .. } => (1, 0),
        Job::SaveResume(_) | Job::Finish { .. } => (2, 0),
    });
}

/// The hasher thread's state.
struct Hasher {
    store: Arc<Store>,
    report: Reporter,
}

impl Hasher {
    /// Hashes blocks and verifies pieces until the writer goes away; hands emptied
    /// batches back through `spare`.
    fn run(self, jobs: std_mpsc::Receiver<HashBatch>, spare: std_mpsc::SyncSender<HashBatch>) {
        let storage = &self.store.storage;
        // The running hash of each piece with blocks in flight.
        let mut states: HashMap<u32, PieceHasher> = HashMap::new();
        // Blocks that came ahead of their piece's hashed prefix.
        let mut held = HeldBlocks::new(HELD_BYTES);
        while let Ok(mut batch) = jobs.recv() {
            for b in batch.blocks.drain(..) {
                let state = states.entry(b.piece).or_default();
                let index = PieceIndex(b.piece);
                // An out-of-range block was refused by the write already.
                match storage.hash_block(state, index, b.begin, &b.data) {
                    Ok(Offer::Hashed) => {
                        // The gap may be filled: hash the held blocks that follow.
                        while let Some((begin, data)) = held.take(b.piece, state.hashed_len()) {
                            let r = storage.hash_block(state, index, begin, &data);
                            held.recycle(data);
                            if r.is_err() {
                                break;
                            }
                        }
                    }
                    Ok(Offer::Gap) => {
                        if held.hold(b.piece, b.begin, &b.data) == Hold::Overlap {
                            state.poison();
                        }
                    }
                    Ok(Offer::Poisoned) => held.forget(b.piece),
                    Err(_) => {}
                }
            }
            for piece in batch.verify.drain(..) {
                // What is still held lies past a gap: the check reads it back.
                held.forget(piece);
                let state = states.remove(&piece);
                if self.report.has_failed() {
                    continue;
                }
                let r = match storage.verify_with(PieceIndex(piece), state) {
                    Ok(ok) => self.report.send(DiskResult::Hashed { piece, ok }),
                    Err(e) => self.report.fail(e),
                };
                if !r {
                    return;
                }
            }
            if let Some(e) = batch.fail.take() {
                if !self.report.fail(e) {
                    return;
                }
            }
            let _ = spare.try_send(batch);
        }
    }
}

/// Flushes written data and saves resume state when asked, until the writer goes away.
fn sync_worker(store: &Store, jobs: std_mpsc::Receiver<SyncJob>) {
    // Ranges made durable by the last flush, uncached after the next one: one flush's
    // worth stays cached for the hasher's read-backs.
    let mut behind: Vec<Range<u64>> = Vec::new();
    while let Ok(job) = jobs.recv() {
        match job {
            SyncJob::Flush(ranges) => {
                if let Err(e) = store.storage.sync() {
                    tracing::warn!(error = %e, "sync failed");
                    continue;
                }
                for r in behind.drain(..) {
                    store.storage.uncache(r.start, r.end - r.start);
                }
                behind = ranges;
            }
            SyncJob::SaveResume(pieces, done) => {
                store.save_resume(&pieces);
                if let Some(done) = done {
                    let _ = done.send(());
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::storage::fixture::Fixture;
    use crate::storage::{FaultyBackend, MemoryBackend};

    const K16: u64 = 16 * 1024;

    /// Disk workers over memory whose reads fail: a check that reads anything back fails.
    fn no_read_back(fx: &Fixture) -> Disk {
        let mem = MemoryBackend::new(&fx.layout.file_lens());
        let faulty = FaultyBackend::new(mem);
        faulty.set_fail_reads(true);
        let storage = TorrentStorage::new(fx.layout.clone(), Box::new(faulty)).unwrap();
        let store = Arc::new(Store {
            storage,
            resume_path: None,
            saved: Default::default(),
        });
        Disk::spawn(store, "bt-disk-test".into()).unwrap()
    }

    #[test]
    fn resume_state_already_on_disk_is_not_written_again() {
        let fx = Fixture::new(Path::new("t"), "t", 2 * K16, &[("", 4 * K16, false)], 5);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.resume");
        let mem = MemoryBackend::new(&fx.layout.file_lens());
        let store = Store {
            storage: TorrentStorage::new(fx.layout.clone(), Box::new(mem)).unwrap(),
            resume_path: Some(path.clone()),
            saved: Default::default(),
        };
        store.save_resume_unless_saved(&[true, false]);
        assert!(path.exists(), "nothing saved yet: it is written");
        std::fs::remove_file(&path).unwrap();
        store.save_resume_unless_saved(&[true, false]);
        assert!(!path.exists(), "the same pieces are not written twice");
        store.save_resume_unless_saved(&[true, true]);
        assert!(path.exists(), "new pieces are written");
        std::fs::remove_file(&path).unwrap();
        store.save_resume(&[true, true]);
        assert!(path.exists(), "a save after writes always writes");
    }

    async fn verdict(disk: &mut Disk) -> DiskResult {
        loop {
            match disk.results.recv().await.unwrap() {
                DiskResult::Written(_) => continue,
                other => return other,
            }
        }
    }

    #[tokio::test]
    async fn blocks_out_of_order_are_hashed_from_memory() {
        let fx = Fixture::new(Path::new("t"), "t", 8 * K16, &[("", 16 * K16, false)], 5);
        let mut disk = no_read_back(&fx);
        let blocks = fx.blocks();
        // Piece 0 with neighbours swapped, piece 1 backwards.
        for i in [1, 0, 3, 2, 5, 4, 7, 6, 15, 14, 13, 12, 11, 10, 9, 8] {
            let b = &blocks[i];
            let data = Bytes::copy_from_slice(fx.bytes(b));
            disk.write(b.piece.0, b.begin, data);
        }
        disk.hash(0);
        disk.hash(1);
        for piece in [0, 1] {
            match verdict(&mut disk).await {
                DiskResult::Hashed { piece: p, ok } => assert!(ok && p == piece, "{p} {ok}"),
                other => panic!("piece {piece}: {other:?} (was it read back?)"),
            }
        }
    }

    #[test]
    fn a_window_runs_writes_in_torrent_order_then_checks_then_the_save() {
        let fx = Fixture::new(Path::new("t"), "t", 2 * K16, &[("", 4 * K16, false)], 8);
        let k = K16 as u32;
        let write = |piece, begin, tag: &'static str| Job::Write {
            piece,
            begin,
            data: Bytes::from_static(tag.as_bytes()),
        };
        let mut window = vec![
            write(0, k, "a"),
            write(0, 0, "b"),
            Job::Hash { piece: 0 },
            write(1, k, "c"),
            write(0, k, "d"), // a later copy of the block "a" was
            write(1, 0, "e"),
            Job::Hash { piece: 1 },
            Job::SaveResume(vec![true, false]),
        ];
        in_torrent_order(&mut window, &fx.layout.geometry);
        let order: Vec<String> = window
            .iter()
            .map(|job| match job {
                Job::Write { data, .. } => String::from_utf8_lossy(data).into_owned(),
                Job::Hash { piece } => format!("check {piece}"),
                Job::SaveResume(_) => "save".into(),
                Job::Finish { .. } => "finish".into(),
            })
            .collect();
        assert_eq!(
            order,
            ["b", "a", "d", "e", "c", "check 0", "check 1", "save"]
        );
    }

    /// Memory storage that records what it is asked to uncache.
    struct Uncaching {
        inner: MemoryBackend,
        uncached: Arc<std::sync::Mutex<Vec<(usize, u64, u64)>>>,
    }

    impl crate::storage::StorageBackend for Uncaching {
        fn read_at(&self, file: usize, offset: u64, buf: &mut [u8]) -> io::Result<()> {
            self.inner.read_at(file, offset, buf)
        }
        fn write_at(&self, file: usize, offset: u64, buf: &[u8]) -> io::Result<()> {
            self.inner.write_at(file, offset, buf)
        }
        fn stamp(&self, file: usize) -> io::Result<Option<crate::storage::FileStamp>> {
            self.inner.stamp(file)
        }
        fn sync(&self) -> io::Result<()> {
            self.inner.sync()
        }
        fn uncache(&self, file: usize, offset: u64, len: u64) -> io::Result<()> {
            self.uncached.lock().unwrap().push((file, offset, len));
            Ok(())
        }
    }

    #[tokio::test]
    async fn each_flush_uncaches_what_the_flush_before_it_made_durable() {
        // 16 blocks over two files (100 KiB and 156 KiB), a flush every 4 blocks.
        let files = [("a", 100 * 1024, false), ("b", 156 * 1024, false)];
        let fx = Fixture::new(Path::new("t"), "t", 4 * K16, &files, 7);
        let uncached = Arc::default();
        let backend = Uncaching {
            inner: MemoryBackend::new(&fx.layout.file_lens()),
            uncached: Arc::clone(&uncached),
        };
        let storage = TorrentStorage::new(fx.layout.clone(), Box::new(backend)).unwrap();
        let store = Arc::new(Store {
            storage,
            resume_path: None,
            saved: Default::default(),
        });
        let mut disk = Disk::spawn_with(store, "bt-disk-test".into(), 4 * K16).unwrap();
        for b in fx.blocks() {
            disk.write(b.piece.0, b.begin, Bytes::copy_from_slice(fx.bytes(&b)));
            // One block per run, so the flushes come exactly every 4 blocks.
            match disk.results.recv().await.unwrap() {
                DiskResult::Written(1) => {}
                other => panic!("{other:?}"),
            }
        }
        disk.finish(vec![false; 4]).await;
        // Four flushes; each after the first uncaches the 64 KiB before the last one.
        // The last 64 KiB stays cached.
        let got = uncached.lock().unwrap().clone();
        let want = vec![
            (0, 0, 64 * 1024),
            (0, 64 * 1024, 36 * 1024),
            (1, 0, 28 * 1024),
            (1, 28 * 1024, 64 * 1024),
        ];
        assert_eq!(got, want);
    }

    #[tokio::test]
    async fn a_changed_copy_of_a_held_block_is_what_gets_hashed() {
        let fx = Fixture::new(Path::new("t"), "t", 4 * K16, &[("", 4 * K16, false)], 6);
        let mut disk = no_read_back(&fx);
        let blocks = fx.blocks();
        let bytes = |i: usize| Bytes::copy_from_slice(fx.bytes(&blocks[i]));
        // Block 2 arrives corrupt, then correct (as written last), before the gap fills.
        disk.write(0, blocks[2].begin, Bytes::from(vec![0xAA; K16 as usize]));
        disk.write(0, blocks[2].begin, bytes(2));
        for i in [3, 0, 1] {
            disk.write(0, blocks[i].begin, bytes(i));
        }
        disk.hash(0);
        match verdict(&mut disk).await {
            DiskResult::Hashed { piece: 0, ok } => assert!(ok),
            other => panic!("{other:?}"),
        }
    }
}
