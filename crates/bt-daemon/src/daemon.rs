//! The daemon's model: every torrent it holds (running in the engine's [`Session`] or
//! stopped and costing nothing), categories and tags, kept in step with the state folder.
//!
//! The API façades only read [`Daemon::snapshot`] and call the verbs here, so what one
//! changes shows at once in the other.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bt_engine::sources::dht::DhtSettings;
use bt_engine::storage::StorageLayout;
use bt_engine::{
    AddTorrentParams, Session, SessionConfig, TorrentHandle, TorrentState, TorrentStats,
};
use bt_meta::{InfoHash, LoadConfig, Magnet, Metainfo};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::log::{Log, LogKind};
use crate::record::TorrentRecord;
use crate::settings::Settings;
use crate::store::{write_atomic, Store};
use crate::{priorities, queue, share, speed};

/// How often running torrents' totals are written to their records.
const SAVE_INTERVAL: Duration = Duration::from_secs(30);
/// How often a running torrent whose totals did not move has its clocks (seeding time,
/// time active) saved.
const CLOCKS_SAVE_INTERVAL: Duration = Duration::from_secs(15 * 60);
/// Torrents the engine opens at once.
const CONCURRENT_STARTS: usize = 8;
/// How often the daemon looks at running torrents (completion, seeding time, share
/// limits, slowness) and follows the speed schedule.
const TICK: Duration = Duration::from_secs(2);

/// Why a request to the daemon failed.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    /// The torrent is already in the daemon.
    #[error("torrent {0} is already added")]
    Duplicate(InfoHash),
    /// No torrent has this info-hash.
    #[error("no torrent {0}")]
    NotFound(InfoHash),
    /// The `.torrent` or magnet link is not valid.
    #[error("{0}")]
    InvalidTorrent(String),
    /// The category does not exist, or its name is not allowed.
    #[error("{0}")]
    Category(String),
    /// A parameter is out of range.
    #[error("{0}")]
    Invalid(String),
    /// Writing the state folder failed.
    #[error("state folder: {0}")]
    Io(#[from] std::io::Error),
    /// The engine failed.
    #[error(transparent)]
    Engine(#[from] bt_engine::Error),
}

/// A category: a name and the folder its torrents go to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Category {
    /// Where its torrents are saved (`""`: the default save path).
    pub save_path: String,
}

/// Categories and tags, persisted in `catalog.json`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Catalog {
    categories: BTreeMap<String, Category>,
    tags: BTreeSet<String>,
}

/// Where a torrent's bytes come from when it is added.
#[derive(Debug, Clone)]
pub enum Source {
    /// The bytes of a `.torrent` file.
    Torrent(Vec<u8>),
    /// A magnet link.
    Magnet(String),
}

/// How to add a torrent.
#[derive(Debug, Clone, Default)]
pub struct AddOptions {
    /// The folder its files go under (`None`: the category's, else the default).
    pub save_path: Option<String>,
    /// Its category (must exist; `""`: none).
    pub category: String,
    /// Its tags (created if new).
    pub tags: Vec<String>,
    /// Added stopped.
    pub stopped: bool,
    /// Peers to dial at once.
    pub peers: Vec<SocketAddr>,
    /// Take the files as complete without hashing them.
    pub skip_checking: bool,
    /// Fetch pieces in order.
    pub sequential: bool,
    /// Fetch each file's first and last pieces first.
    pub first_last: bool,
    /// Its save path follows its category.
    pub auto_tmm: bool,
}

/// Where a torrent stands, as the façades need to know it.
#[derive(Debug, Clone, PartialEq)]
pub enum Phase {
    /// Waiting for a magnet link's metadata.
    Metadata,
    /// Opening its files or checking the data already there.
    Checking,
    /// Fetching pieces.
    Downloading,
    /// Complete and serving peers.
    Seeding,
    /// Stopped by the user.
    Stopped,
    /// Started, waiting for a queue slot.
    Queued,
    /// Its data is moving to another folder (the fraction done).
    Moving(f64),
    /// Stopped by an error; verified data is intact.
    Error(String),
}

/// One torrent at one moment: its record, its metainfo if known, its live figures.
#[derive(Debug, Clone)]
pub struct TorrentSnapshot {
    /// What is persisted of it (with live totals folded in).
    pub record: TorrentRecord,
    /// Where it stands.
    pub phase: Phase,
    /// Its metainfo (`None`: a magnet link still fetching it).
    pub meta: Option<Arc<Metainfo>>,
    /// The engine's figures while it runs.
    pub stats: Option<TorrentStats>,
    /// Payload downloaded since the daemon started.
    pub downloaded_session: u64,
    /// Payload uploaded since the daemon started.
    pub uploaded_session: u64,
}

impl TorrentSnapshot {
    /// Size of the wanted files in bytes (0 until the metadata is known).
    pub fn size(&self) -> u64 {
        self.meta.as_ref().map_or(0, |m| {
            priorities::wanted_len(m, &self.record.file_priorities)
        })
    }

    /// Size of every file in bytes (0 until the metadata is known).
    pub fn total_size(&self) -> u64 {
        self.meta.as_ref().map_or(0, |m| m.info.total_len())
    }

    /// Verified bytes of the wanted files (pieces shared with skipped files count whole).
    pub fn completed(&self) -> u64 {
        let done = match (&self.stats, self.record.completion_on) {
            (Some(s), _) if s.state.is_complete() => self.size(),
            (Some(s), _) => s.bytes_have,
            (None, Some(_)) => self.size(),
            (None, None) => 0,
        };
        done.min(self.size())
    }

    /// Fraction verified, 0 to 1.
    pub fn progress(&self) -> f64 {
        let size = self.size();
        if size == 0 {
            0.0
        } else {
            self.completed() as f64 / size as f64
        }
    }

    /// Each visible file's path under the save path, `/`-separated (renames applied).
    pub fn file_names(&self) -> Vec<String> {
        self.meta
            .as_ref()
            .map(|m| file_names(m, &self.record))
            .unwrap_or_default()
    }

    /// Its trackers as tiers: the user's edits, else the metainfo's or the magnet link's.
    pub fn trackers(&self) -> Vec<Vec<String>> {
        if let Some(t) = &self.record.trackers {
            return t.clone();
        }
        match (&self.meta, &self.record.magnet) {
            (Some(m), _) => m.trackers(),
            (None, Some(uri)) => Magnet::parse(uri)
                .map(|m| m.trackers.into_iter().map(|t| vec![t]).collect())
                .unwrap_or_default(),
            (None, None) => Vec::new(),
        }
    }

    /// Where the torrent's content is: the file of a single-file torrent, the folder of a
    /// multi-file one.
    pub fn content_path(&self) -> PathBuf {
        let base = PathBuf::from(&self.record.save_path);
        match &self.meta {
            Some(m) => content_root(m, &base),
            None => base.join(&self.record.name),
        }
    }
}

/// Sums over every torrent: the session's figures.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Totals {
    /// Payload download rate, bytes/s.
    pub download_rate: u64,
    /// Payload upload rate, bytes/s.
    pub upload_rate: u64,
    /// Payload downloaded since the daemon started.
    pub downloaded_session: u64,
    /// Payload uploaded since the daemon started.
    pub uploaded_session: u64,
    /// Payload downloaded over the torrents' lifetimes.
    pub downloaded: u64,
    /// Payload uploaded over the torrents' lifetimes.
    pub uploaded: u64,
}

/// What a list view must redraw: see [`Daemon::changes`].
#[derive(Debug, Default)]
pub struct Changes {
    /// The torrents that are new or look different, in no particular order.
    pub changed: Vec<TorrentSnapshot>,
    /// The torrents that are gone.
    pub removed: Vec<InfoHash>,
    /// The session's sums.
    pub totals: Totals,
}

/// A list view's memory of what it last showed: a fingerprint per torrent.
pub type Shown = std::collections::HashMap<InfoHash, u64>;

/// How often a running torrent's clocks (seeding time, time active) reach a list view
/// that only asks for changes.
const CLOCK_REFRESH_SECS: i64 = 60;

/// Settings the command line gives for one run.
#[derive(Debug, Clone)]
pub struct DaemonConfig {
    /// The state folder.
    pub state_dir: PathBuf,
    /// The settings (from the file, with command-line overrides applied).
    pub settings: Settings,
}

struct Entry {
    record: TorrentRecord,
    meta: Option<Arc<Metainfo>>,
    handle: Option<TorrentHandle>,
    /// A magnet resolution or an engine start under way.
    task: Option<JoinHandle<()>>,
    error: Option<String>,
    /// Totals of earlier handles in this daemon run.
    session_done: (u64, u64),
    last_tick: Option<Instant>,
    dirty: bool,
    /// Started but held back by the queue.
    queued: bool,
    /// Since when it has moved less than the slow threshold.
    slow_since: Option<Instant>,
    /// Peers to dial when it next starts.
    pending_peers: Vec<SocketAddr>,
    /// While its data moves: the fraction done.
    moving: Option<Arc<Mutex<f64>>>,
    /// Its lifetime totals (downloaded, uploaded) when its record was last written, and
    /// when that was.
    saved: (u64, u64, Instant),
}

impl Entry {
    /// A torrent not running yet.
    fn new(record: TorrentRecord, meta: Option<Arc<Metainfo>>) -> Entry {
        Entry {
            record,
            meta,
            handle: None,
            task: None,
            error: None,
            session_done: (0, 0),
            last_tick: None,
            dirty: false,
            queued: false,
            slow_since: None,
            pending_peers: Vec::new(),
            moving: None,
            saved: (0, 0, Instant::now()),
        }
    }

    fn live(&self) -> Option<TorrentStats> {
        self.handle.as_ref().map(TorrentHandle::stats)
    }

    /// The record with the running handle's totals added.
    fn current_record(&self) -> TorrentRecord {
        let mut r = self.record.clone();
        if let Some(s) = self.live() {
            r.downloaded += s.downloaded;
            r.uploaded += s.uploaded;
        }
        r
    }

    fn phase(&self) -> Phase {
        if let Some(m) = &self.moving {
            return Phase::Moving(*m.lock().unwrap_or_else(|e| e.into_inner()));
        }
        if let Some(e) = &self.error {
            return Phase::Error(e.clone());
        }
        if self.record.stopped {
            return Phase::Stopped;
        }
        if self.queued && self.handle.is_none() && self.task.is_none() {
            return Phase::Queued;
        }
        match (&self.meta, &self.handle) {
            (None, _) => Phase::Metadata,
            (Some(_), None) => Phase::Checking,
            (Some(_), Some(h)) => h.with_stats(|s| match &s.state {
                TorrentState::Checking => Phase::Checking,
                TorrentState::Downloading => Phase::Downloading,
                TorrentState::Seeding | TorrentState::Complete => Phase::Seeding,
                TorrentState::Paused | TorrentState::Stopped => Phase::Stopped,
                TorrentState::Error(e) => Phase::Error(e.to_string()),
            }),
        }
    }

    /// Notes what the engine reports that the record must keep (the completion date), then
    /// takes the snapshot.
    fn observe(&mut self) -> TorrentSnapshot {
        self.note_completion();
        self.snapshot()
    }

    /// Dates its completion the first time the engine reports it complete.
    fn note_completion(&mut self) {
        if self.record.completion_on.is_none()
            && self
                .handle
                .as_ref()
                .is_some_and(|h| h.with_stats(|s| s.state.is_complete()))
        {
            self.record.completion_on = Some(unix_now());
            self.dirty = true;
        }
    }

    fn snapshot(&self) -> TorrentSnapshot {
        let stats = self.live();
        let (d, u) = stats
            .as_ref()
            .map_or((0, 0), |s| (s.downloaded, s.uploaded));
        TorrentSnapshot {
            record: self.current_record(),
            phase: self.phase(),
            meta: self.meta.clone(),
            stats,
            downloaded_session: self.session_done.0 + d,
            uploaded_session: self.session_done.1 + u,
        }
    }

    /// Adds its figures to `t`.
    fn add_to(&self, t: &mut Totals) {
        let (dr, ur, d, u) = self.handle.as_ref().map_or((0, 0, 0, 0), |h| {
            h.with_stats(|s| (s.download_rate, s.upload_rate, s.downloaded, s.uploaded))
        });
        t.download_rate += dr;
        t.upload_rate += ur;
        t.downloaded_session += self.session_done.0 + d;
        t.uploaded_session += self.session_done.1 + u;
        t.downloaded += self.record.downloaded + d;
        t.uploaded += self.record.uploaded + u;
    }

    /// A fingerprint of everything a list view shows of it at `now` (Unix seconds): it
    /// changes when the view would. A running torrent's clocks count once a minute, at a
    /// second of the minute its hash picks, so a view of many torrents is not redrawn all
    /// at once.
    fn view_key(&self, now: i64) -> u64 {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        self.record.hash_shown(&mut h);
        let phase = self.phase();
        std::mem::discriminant(&phase).hash(&mut h);
        match &phase {
            Phase::Moving(f) => f.to_bits().hash(&mut h),
            Phase::Error(e) => e.hash(&mut h),
            _ => {}
        }
        self.meta.is_some().hash(&mut h);
        self.session_done.hash(&mut h);
        if let Some(handle) = &self.handle {
            handle.with_stats(|s| {
                std::mem::discriminant(&s.state).hash(&mut h);
                (s.bytes_have, s.downloaded, s.uploaded).hash(&mut h);
                (s.download_rate, s.upload_rate, s.peers).hash(&mut h);
            });
            let offset = i64::from(self.record.info_hash.0[0]) * CLOCK_REFRESH_SECS / 256;
            ((now + offset) / CLOCK_REFRESH_SECS).hash(&mut h);
        }
        h.finish()
    }

    /// Folds the running handle's totals into the record and forgets the handle.
    fn fold_handle(&mut self) -> Option<TorrentHandle> {
        let handle = self.handle.take()?;
        let (down, up) = handle.with_stats(|s| (s.downloaded, s.uploaded));
        self.record.downloaded += down;
        self.record.uploaded += up;
        self.session_done.0 += down;
        self.session_done.1 += up;
        // Its clocks moved too: saved with the rest (one append for all of them).
        self.dirty = true;
        Some(handle)
    }
}

struct Model {
    torrents: BTreeMap<InfoHash, Entry>,
    catalog: Catalog,
    /// Bumped on every change a façade could show.
    version: u64,
}

struct Inner {
    session: Session,
    store: Store,
    settings: Mutex<Settings>,
    model: Mutex<Model>,
    log: Log,
    started: Instant,
    shutdown: watch::Sender<bool>,
    /// Engine starts (opening files, reading resume state) under way at once: a restart
    /// with thousands of torrents opens them a few at a time, not all at once.
    starts: tokio::sync::Semaphore,
}

/// A running daemon; clones share it.
#[derive(Clone)]
pub struct Daemon {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Daemon {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Daemon")
            .field("state_dir", &self.inner.store.dir())
            .finish_non_exhaustive()
    }
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// Where `meta`'s content lands under `base`: the engine's own placement.
fn content_root(meta: &Metainfo, base: &Path) -> PathBuf {
    match StorageLayout::from_metainfo(meta, base) {
        Ok(layout) if meta.info.single_file => layout
            .files
            .first()
            .map_or_else(|| base.join(&meta.info.name), |f| f.path.clone()),
        Ok(layout) => layout
            .files
            .first()
            .and_then(|f| {
                f.path
                    .strip_prefix(base)
                    .ok()
                    .and_then(|rel| rel.components().next())
                    .map(|c| base.join(c))
            })
            .unwrap_or_else(|| base.join(&meta.info.name)),
        Err(_) => base.join(&meta.info.name),
    }
}

/// The saved metainfo of `record`'s torrent (`None`: a magnet link still fetching it).
fn load_meta(store: &Store, record: &TorrentRecord) -> Result<Option<Metainfo>, String> {
    match store.load_torrent(&record.info_hash) {
        Ok(Some(bytes)) => Metainfo::from_bytes_with(&bytes, &LoadConfig::default())
            .map(Some)
            .map_err(|e| format!("its saved .torrent is unreadable: {e}")),
        Ok(None) if record.magnet.is_some() => Ok(None),
        Ok(None) => Err("no .torrent and no magnet link".into()),
        Err(e) => Err(format!("cannot read its .torrent: {e}")),
    }
}

/// Each visible (not pad) file's path under the save path, renames applied.
fn file_names(meta: &Metainfo, record: &TorrentRecord) -> Vec<String> {
    meta.info
        .files()
        .iter()
        .filter(|f| !f.is_pad())
        .enumerate()
        .map(|(i, f)| {
            record
                .file_renames
                .get(&i)
                .cloned()
                .unwrap_or_else(|| f.display_path())
        })
        .collect()
}

/// The engine's path overrides for `record`'s renamed files: the engine counts pad
/// files, `torrents/files` does not.
fn engine_file_paths(meta: &Metainfo, record: &TorrentRecord) -> Vec<(usize, Vec<String>)> {
    if record.file_renames.is_empty() {
        return Vec::new();
    }
    meta.info
        .files()
        .iter()
        .enumerate()
        .filter(|(_, f)| !f.is_pad())
        .enumerate()
        .filter_map(|(visible, (index, _))| {
            let name = record.file_renames.get(&visible)?;
            Some((index, name.split('/').map(String::from).collect()))
        })
        .collect()
}

/// Whether `path` may name a file under a torrent's save path: relative, `/`-separated,
/// no empty, `.` or `..` component, no backslash or NUL.
pub fn valid_file_path(path: &str) -> bool {
    !path.is_empty()
        && !path.contains(['\\', '\0'])
        && path
            .split('/')
            .all(|part| !part.is_empty() && part != "." && part != "..")
}

/// A `.torrent` file for fetched metadata: the info dictionary as fetched, and trackers.
fn torrent_file(info: &[u8], trackers: &[String]) -> Vec<u8> {
    let mut out = b"d".to_vec();
    if !trackers.is_empty() {
        bt_bencode::encode_bytes(b"announce", &mut out);
        bt_bencode::encode_bytes(trackers[0].as_bytes(), &mut out);
        bt_bencode::encode_bytes(b"announce-list", &mut out);
        out.push(b'l');
        for t in trackers {
            out.push(b'l');
            bt_bencode::encode_bytes(t.as_bytes(), &mut out);
            out.push(b'e');
        }
        out.push(b'e');
    }
    bt_bencode::encode_bytes(b"info", &mut out);
    out.extend_from_slice(info);
    out.push(b'e');
    out
}

/// Whether `name` may be a category: qBittorrent's rule (no leading or trailing slash,
/// no empty or `.`/`..` component, no backslash).
pub fn valid_category_name(name: &str) -> bool {
    !name.is_empty()
        && !name.contains('\\')
        && name
            .split('/')
            .all(|part| !part.is_empty() && part != "." && part != "..")
}

impl Daemon {
    /// Starts the engine session and brings back every torrent of the state folder.
    pub async fn start(config: DaemonConfig) -> Result<Daemon, DaemonError> {
        let store = Store::open(&config.state_dir)?;
        let settings = config.settings;
        let mut session_config = SessionConfig {
            listen_addr: settings.listen,
            max_peers: settings.max_connec,
            ..SessionConfig::default()
        };
        session_config.torrent.max_peers = settings.max_connec_per_torrent;
        session_config.banned_ips = settings.banned_peer_ips();
        if settings.dht {
            session_config.dht = Some(DhtSettings {
                bootstrap: settings.dht_bootstrap.clone(),
                nodes_file: Some(store.dir().join("dht-nodes")),
                ..DhtSettings::default()
            });
        }
        let session = Session::new(session_config).await?;
        let catalog = match std::fs::read(store.dir().join("catalog.json")) {
            Ok(b) => serde_json::from_slice(&b).unwrap_or_default(),
            Err(_) => Catalog::default(),
        };
        let (shutdown, _) = watch::channel(false);
        let daemon = Daemon {
            inner: Arc::new(Inner {
                session,
                store,
                settings: Mutex::new(settings),
                model: Mutex::new(Model {
                    torrents: BTreeMap::new(),
                    catalog,
                    version: 0,
                }),
                log: Log::new(1000),
                started: Instant::now(),
                shutdown,
                starts: tokio::sync::Semaphore::new(CONCURRENT_STARTS),
            }),
        };
        daemon.apply_speed_limits();
        daemon.restore()?;
        let ticker = daemon.clone();
        tokio::spawn(async move { ticker.tick_loop().await });
        let watcher = daemon.clone();
        tokio::spawn(async move { watcher.watch_loop().await });
        daemon.log(
            LogKind::Normal,
            format!("bt daemon started, peers on {}", daemon.peer_addr()),
        );
        Ok(daemon)
    }

    fn model(&self) -> MutexGuard<'_, Model> {
        self.inner.model.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The settings in force.
    pub fn settings(&self) -> Settings {
        self.inner
            .settings
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Replaces the settings and writes the settings file.
    pub fn set_settings(&self, settings: Settings) -> Result<(), DaemonError> {
        settings
            .save(&self.inner.store.settings_path())
            .map_err(|e| DaemonError::Io(std::io::Error::other(e.to_string())))?;
        *self
            .inner
            .settings
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = settings;
        self.model().version += 1;
        self.apply_speed_limits();
        // The queue's limits may have changed.
        self.schedule();
        Ok(())
    }

    /// The address peers connect to.
    pub fn peer_addr(&self) -> SocketAddr {
        self.inner.session.local_addr()
    }

    /// The engine session.
    pub fn session(&self) -> &Session {
        &self.inner.session
    }

    /// The daemon's log.
    pub fn logs(&self) -> &Log {
        &self.inner.log
    }

    /// Logs a message (stderr and `log/main`).
    pub fn note(&self, kind: LogKind, message: String) {
        self.log(kind, message);
    }

    fn log(&self, kind: LogKind, message: String) {
        match kind {
            LogKind::Critical | LogKind::Warning => tracing::warn!("{message}"),
            _ => tracing::info!("{message}"),
        }
        self.inner.log.push(kind, message);
    }

    /// A counter that changes whenever anything a façade shows may have changed.
    pub fn version(&self) -> u64 {
        self.model().version
    }

    /// How long the daemon has run.
    pub fn uptime(&self) -> Duration {
        self.inner.started.elapsed()
    }

    /// Resolves when [`Daemon::request_shutdown`] is called.
    pub async fn shutdown_requested(&self) {
        let mut rx = self.inner.shutdown.subscribe();
        let _ = rx.wait_for(|stop| *stop).await;
    }

    /// Asks the daemon to stop (`app/shutdown`, a signal).
    pub fn request_shutdown(&self) {
        self.inner.shutdown.send_replace(true);
    }

    /// Stops every torrent (saving resume state and totals) and the session.
    pub async fn shutdown(self) {
        let handles: Vec<TorrentHandle> = {
            let mut model = self.model();
            let mut handles = Vec::new();
            for entry in model.torrents.values_mut() {
                if let Some(task) = entry.task.take() {
                    task.abort();
                }
                if let Some(h) = entry.fold_handle() {
                    handles.push(h);
                }
            }
            handles
        };
        self.save_dirty();
        self.inner.store.flush();
        match Arc::try_unwrap(self.inner) {
            // Stops every torrent at once.
            Ok(inner) => inner.session.shutdown().await,
            Err(inner) => {
                tracing::debug!("daemon still shared at shutdown; stopping its torrents");
                let session = &inner.session;
                futures::future::join_all(
                    handles
                        .iter()
                        .map(|h| async move { session.remove_torrent(&h.info_hash()).await }),
                )
                .await;
            }
        }
    }

    fn restore(&self) -> Result<(), DaemonError> {
        let (records, bad) = self.inner.store.load_records()?;
        for b in bad {
            self.log(
                LogKind::Warning,
                format!("skipping {}: {}", b.path.display(), b.reason),
            );
        }
        let count = records.len();
        // Reading and parsing the `.torrent` files is most of a restart: spread over the
        // cores.
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        let chunk = records.len().div_ceil(threads).max(1);
        let store = &self.inner.store;
        let loaded: Vec<(TorrentRecord, Result<Option<Metainfo>, String>)> =
            std::thread::scope(|scope| {
                let workers: Vec<_> = records
                    .chunks(chunk)
                    .map(|part| {
                        scope.spawn(move || {
                            part.iter()
                                .map(|r| (r.clone(), load_meta(store, r)))
                                .collect::<Vec<_>>()
                        })
                    })
                    .collect();
                workers
                    .into_iter()
                    .flat_map(|w| w.join().unwrap_or_default())
                    .collect()
            });
        let mut entries = Vec::with_capacity(loaded.len());
        for (record, meta) in loaded {
            match meta {
                Ok(meta) => entries.push(Entry::new(record, meta.map(Arc::new))),
                Err(why) => self.log(
                    LogKind::Warning,
                    format!("{}: {why}; skipped", record.info_hash.to_hex()),
                ),
            }
        }
        {
            let mut model = self.model();
            for e in entries {
                model.torrents.insert(e.record.info_hash, e);
            }
        }
        self.log(LogKind::Info, format!("restored {count} torrents"));
        self.compact_journal();
        self.schedule();
        Ok(())
    }

    /// Adds a torrent; returns its info-hash.
    pub async fn add(&self, source: Source, opts: AddOptions) -> Result<InfoHash, DaemonError> {
        let (hash, meta, magnet, name) = match &source {
            Source::Torrent(bytes) => {
                let meta =
                    Metainfo::from_bytes_with(bytes, &LoadConfig::default()).map_err(|e| {
                        DaemonError::InvalidTorrent(format!("not a valid torrent: {e}"))
                    })?;
                let hash = meta.info_hash.ok_or_else(|| {
                    DaemonError::InvalidTorrent(
                        "v2-only torrents are not supported yet (no SHA-1 info-hash)".into(),
                    )
                })?;
                let name = meta.info.name.clone();
                (hash, Some(Arc::new(meta)), None, name)
            }
            Source::Magnet(uri) => {
                let magnet = Magnet::parse(uri).map_err(|e| {
                    DaemonError::InvalidTorrent(format!("not a valid magnet link: {e}"))
                })?;
                let hash = magnet.info_hash.ok_or_else(|| {
                    DaemonError::InvalidTorrent(
                        "magnet links without a v1 info-hash (btih) are not supported yet".into(),
                    )
                })?;
                let name = magnet.display_name.clone().unwrap_or_else(|| hash.to_hex());
                (hash, None, Some(magnet.to_uri()), name)
            }
        };
        let save_path = {
            let model = self.model();
            if model.torrents.contains_key(&hash) {
                return Err(DaemonError::Duplicate(hash));
            }
            if !opts.category.is_empty() && !valid_category_name(&opts.category) {
                return Err(DaemonError::Category(format!(
                    "invalid category name {:?}",
                    opts.category
                )));
            }
            self.save_path_for(&model, opts.save_path.as_deref(), &opts.category)
        };
        let mut record = TorrentRecord::new(hash, name, save_path, unix_now());
        record.magnet = magnet;
        record.category = opts.category.clone();
        record.stopped = opts.stopped;
        record.skip_check = opts.skip_checking;
        record.sequential = opts.sequential;
        record.first_last = opts.first_last;
        record.auto_tmm = opts.auto_tmm;
        let mut tags: Vec<String> = opts
            .tags
            .iter()
            .filter(|t| !t.is_empty())
            .cloned()
            .collect();
        tags.sort();
        tags.dedup();
        record.tags = tags;
        if let Source::Torrent(bytes) = &source {
            self.inner.store.save_torrent(&hash, bytes)?;
        }
        {
            let mut model = self.model();
            if model.torrents.contains_key(&hash) {
                return Err(DaemonError::Duplicate(hash));
            }
            record.queue_position = model.torrents.len() as u32;
            // A category named at add time is created if new, as qBittorrent does.
            if !record.category.is_empty()
                && !model.catalog.categories.contains_key(&record.category)
            {
                model.catalog.categories.insert(
                    record.category.clone(),
                    Category {
                        save_path: String::new(),
                    },
                );
                self.save_catalog(&model.catalog);
            }
            self.inner.store.save_record(&record)?;
            let mut catalog_changed = false;
            for t in &record.tags {
                catalog_changed |= model.catalog.tags.insert(t.clone());
            }
            if catalog_changed {
                self.save_catalog(&model.catalog);
            }
            model.torrents.insert(hash, Entry::new(record, meta));
            model.version += 1;
        }
        self.log(LogKind::Normal, format!("added {}", hash.to_hex()));
        if let Some(e) = self.model().torrents.get_mut(&hash) {
            e.pending_peers = opts.peers;
        }
        if self.settings().queueing_enabled {
            self.schedule();
        } else if !opts.stopped {
            // Nothing else can change: only this one starts (the whole schedule costs a
            // pass over every torrent).
            self.launch(hash);
        }
        Ok(hash)
    }

    fn save_path_for(&self, model: &Model, explicit: Option<&str>, category: &str) -> String {
        let default = self.settings().save_path;
        if let Some(p) = explicit.filter(|p| !p.is_empty()) {
            return p.to_string();
        }
        if let Some(cat) = model.catalog.categories.get(category) {
            if !cat.save_path.is_empty() {
                let p = Path::new(&cat.save_path);
                return if p.is_absolute() {
                    cat.save_path.clone()
                } else {
                    default.join(p).to_string_lossy().into_owned()
                };
            }
        }
        default.to_string_lossy().into_owned()
    }

    /// Starts the torrent in the engine in the background: the metadata first for a
    /// magnet link, then the files (checked against the resume state).
    fn launch(&self, hash: InfoHash) {
        let peers = self
            .model()
            .torrents
            .get_mut(&hash)
            .map(|e| std::mem::take(&mut e.pending_peers))
            .unwrap_or_default();
        let this = self.clone();
        let task = tokio::spawn(async move {
            let result = this.run_start(hash, peers).await;
            let mut model = this.model();
            if let Some(entry) = model.torrents.get_mut(&hash) {
                entry.task = None;
                if let Err(e) = result {
                    entry.error = Some(e.to_string());
                }
            }
            model.version += 1;
        });
        let mut model = self.model();
        if let Some(entry) = model.torrents.get_mut(&hash) {
            if let Some(old) = entry.task.replace(task) {
                old.abort();
            }
            entry.error = None;
            entry.queued = false;
        }
    }

    /// Starts the torrents that should run and holds back those the queue does not let
    /// run (when queueing is on).
    fn schedule(&self) {
        let settings = self.settings();
        if !settings.queueing_enabled {
            // Every torrent that should run, runs: no order to keep.
            let to_start: Vec<InfoHash> = {
                let mut model = self.model();
                let mut to_start = Vec::new();
                for e in model.torrents.values_mut() {
                    e.queued = false;
                    let idle = e.handle.is_none() && e.task.is_none();
                    if idle && !e.record.stopped && e.error.is_none() && e.moving.is_none() {
                        to_start.push(e.record.info_hash);
                    }
                }
                if !to_start.is_empty() {
                    model.version += 1;
                }
                to_start
            };
            for hash in to_start {
                self.launch(hash);
            }
            return;
        }
        let (to_start, to_queue) = {
            let mut model = self.model();
            let mut order: Vec<&mut Entry> = model
                .torrents
                .values_mut()
                .filter(|e| !e.record.stopped && e.error.is_none() && e.moving.is_none())
                .collect();
            order.sort_by_key(|e| e.record.queue_position);
            let admitted = if settings.queueing_enabled {
                let slow_after = Duration::from_secs(settings.slow_torrent_inactive_timer);
                let candidates: Vec<queue::Candidate> = order
                    .iter()
                    .map(|e| {
                        let running = e.handle.is_some() || e.task.is_some();
                        queue::Candidate {
                            complete: e.record.completion_on.is_some()
                                || e.live().is_some_and(|s| s.state.is_complete()),
                            forced: e.record.force_start,
                            slow: running
                                && e.slow_since.is_some_and(|t| t.elapsed() >= slow_after),
                            running,
                        }
                    })
                    .collect();
                queue::admit(
                    &candidates,
                    queue::Limits {
                        downloads: settings.max_active_downloads,
                        uploads: settings.max_active_uploads,
                        torrents: settings.max_active_torrents,
                        dont_count_slow: settings.dont_count_slow_torrents,
                    },
                )
            } else {
                vec![true; order.len()]
            };
            let mut to_start = Vec::new();
            let mut to_queue = Vec::new();
            for (e, ok) in order.into_iter().zip(admitted) {
                let running = e.handle.is_some() || e.task.is_some();
                if ok && !running {
                    to_start.push(e.record.info_hash);
                } else if !ok {
                    if running {
                        if let Some(task) = e.task.take() {
                            task.abort();
                        }
                        if let Some(h) = e.fold_handle() {
                            to_queue.push(h);
                        }
                    }
                    if !e.queued {
                        e.queued = true;
                        e.dirty = true;
                    }
                }
            }
            if !to_start.is_empty() || !to_queue.is_empty() {
                model.version += 1;
            }
            (to_start, to_queue)
        };
        for hash in to_start {
            self.launch(hash);
        }
        if !to_queue.is_empty() {
            let session = self.clone();
            tokio::spawn(async move {
                for h in to_queue {
                    let _ = session.inner.session.remove_torrent(&h.info_hash()).await;
                }
            });
        }
    }

    async fn run_start(
        &self,
        hash: InfoHash,
        mut peers: Vec<SocketAddr>,
    ) -> Result<(), DaemonError> {
        let (meta, magnet, save_path, recheck, skip_check, trackers) = {
            let model = self.model();
            let e = model
                .torrents
                .get(&hash)
                .ok_or(DaemonError::NotFound(hash))?;
            (
                e.meta.clone(),
                e.record.magnet.clone(),
                e.record.save_path.clone(),
                e.record.recheck,
                e.record.skip_check,
                e.record.trackers.clone(),
            )
        };
        let meta = match (meta, magnet) {
            (Some(m), _) => m,
            (None, Some(uri)) => {
                let magnet =
                    Magnet::parse(&uri).map_err(|e| DaemonError::InvalidTorrent(e.to_string()))?;
                let resolved = self.inner.session.resolve_magnet(&magnet, &peers).await?;
                let trackers: Vec<String> = magnet.trackers.clone();
                self.inner
                    .store
                    .save_torrent(&hash, &torrent_file(&resolved.info, &trackers))?;
                peers = resolved.peers;
                let meta = Arc::new(resolved.metainfo);
                {
                    let mut model = self.model();
                    let e = model
                        .torrents
                        .get_mut(&hash)
                        .ok_or(DaemonError::NotFound(hash))?;
                    e.meta = Some(meta.clone());
                    e.record.magnet = None;
                    e.record.name = meta.info.name.clone();
                    self.inner.store.save_record(&e.current_record())?;
                    model.version += 1;
                }
                self.log(
                    LogKind::Normal,
                    format!("{}: metadata received", hash.to_hex()),
                );
                meta
            }
            (None, None) => return Err(DaemonError::NotFound(hash)),
        };
        std::fs::create_dir_all(&save_path)?;
        let (prios, sequential) = {
            let model = self.model();
            let e = model
                .torrents
                .get(&hash)
                .ok_or(DaemonError::NotFound(hash))?;
            (
                priorities::pieces(&meta, &e.record.file_priorities, e.record.first_last),
                e.record.sequential,
            )
        };
        let mut params = AddTorrentParams::new((*meta).clone(), &save_path);
        params.peers = peers;
        params.use_resume = !recheck;
        params.priorities = prios;
        params.sequential = sequential;
        params.skip_check = skip_check && !recheck;
        params.trackers = trackers;
        params.file_paths = {
            let model = self.model();
            let e = model
                .torrents
                .get(&hash)
                .ok_or(DaemonError::NotFound(hash))?;
            engine_file_paths(&meta, &e.record)
        };
        let handle = {
            let _permit = self.inner.starts.acquire().await;
            self.inner.session.add_torrent(params).await?
        };
        let kept = {
            let mut model = self.model();
            let kept = match model.torrents.get_mut(&hash) {
                Some(e) if !e.record.stopped => {
                    handle.set_rate_limits(e.record.dl_limit, e.record.up_limit);
                    e.handle = Some(handle);
                    e.last_tick = Some(Instant::now());
                    if e.record.recheck || e.record.skip_check {
                        e.record.recheck = false;
                        e.record.skip_check = false;
                        e.dirty = true;
                    }
                    true
                }
                _ => false,
            };
            model.version += 1;
            kept
        };
        if !kept {
            // Stopped or removed while it was starting.
            let _ = self.inner.session.remove_torrent(&hash).await;
        }
        Ok(())
    }

    /// Every torrent, in queue order.
    pub fn snapshot(&self) -> Vec<TorrentSnapshot> {
        let mut model = self.model();
        let mut all: Vec<TorrentSnapshot> =
            model.torrents.values_mut().map(Entry::observe).collect();
        all.sort_by_key(|t| t.record.queue_position);
        all
    }

    /// The torrents a list view that last showed `shown` must redraw, and those it must
    /// drop; `shown` is brought up to date. Costs a fingerprint per torrent and a snapshot
    /// per changed one, so a view over thousands of idle torrents stays cheap.
    pub fn changes(&self, shown: &mut Shown) -> Changes {
        let now = unix_now();
        let mut out = Changes::default();
        let mut model = self.model();
        for (hash, e) in model.torrents.iter_mut() {
            e.note_completion();
            e.add_to(&mut out.totals);
            let key = e.view_key(now);
            if shown.insert(*hash, key) != Some(key) {
                out.changed.push(e.snapshot());
            }
        }
        if shown.len() != model.torrents.len() {
            shown.retain(|h, _| {
                let keep = model.torrents.contains_key(h);
                if !keep {
                    out.removed.push(*h);
                }
                keep
            });
        }
        out
    }

    /// The session's sums over every torrent.
    pub fn totals(&self) -> Totals {
        let mut t = Totals::default();
        for e in self.model().torrents.values() {
            e.add_to(&mut t);
        }
        t
    }

    /// One torrent.
    pub fn torrent(&self, hash: &InfoHash) -> Option<TorrentSnapshot> {
        self.model().torrents.get_mut(hash).map(Entry::observe)
    }

    /// Every info-hash, in queue order.
    pub fn hashes(&self) -> Vec<InfoHash> {
        self.snapshot()
            .into_iter()
            .map(|t| t.record.info_hash)
            .collect()
    }

    /// Stops torrents: their peers are dropped, resume state saved; they cost nothing.
    pub async fn stop(&self, hashes: &[InfoHash]) -> Result<(), DaemonError> {
        for hash in hashes {
            let handle = {
                let mut model = self.model();
                let Some(e) = model.torrents.get_mut(hash) else {
                    continue;
                };
                if let Some(task) = e.task.take() {
                    task.abort();
                }
                e.record.stopped = true;
                e.queued = false;
                e.dirty = true;
                let h = e.fold_handle();
                model.version += 1;
                h
            };
            if handle.is_some() {
                let _ = self.inner.session.remove_torrent(hash).await;
            }
        }
        self.save_dirty();
        self.schedule();
        Ok(())
    }

    /// Starts stopped torrents (and retries failed ones).
    pub async fn start_torrents(&self, hashes: &[InfoHash]) -> Result<(), DaemonError> {
        for hash in hashes {
            {
                let mut model = self.model();
                let Some(e) = model.torrents.get_mut(hash) else {
                    continue;
                };
                if e.record.stopped || (e.error.is_some() && e.handle.is_none()) {
                    e.record.stopped = false;
                    e.error = None;
                    e.dirty = true;
                    model.version += 1;
                }
            };
        }
        self.save_dirty();
        self.schedule();
        Ok(())
    }

    /// Hashes the data of these torrents again from scratch.
    pub async fn recheck(&self, hashes: &[InfoHash]) -> Result<(), DaemonError> {
        for hash in hashes {
            let was_stopped = {
                let mut model = self.model();
                let Some(e) = model.torrents.get_mut(hash) else {
                    continue;
                };
                if e.meta.is_none() {
                    continue;
                }
                e.record.recheck = true;
                e.record.completion_on = None;
                e.dirty = true;
                e.record.stopped
            };
            if !was_stopped {
                self.stop(std::slice::from_ref(hash)).await?;
            }
            self.start_torrents(std::slice::from_ref(hash)).await?;
            if was_stopped {
                // qBittorrent checks a stopped torrent and leaves it stopped; bt checks it
                // when it is next started.
                self.stop(std::slice::from_ref(hash)).await?;
            }
        }
        Ok(())
    }

    /// Removes torrents, with their downloaded files if `delete_files`.
    pub async fn remove(&self, hashes: &[InfoHash], delete_files: bool) -> Result<(), DaemonError> {
        for hash in hashes {
            let entry = {
                let mut model = self.model();
                let e = model.torrents.remove(hash);
                model.version += 1;
                e
            };
            let Some(mut entry) = entry else { continue };
            if let Some(task) = entry.task.take() {
                task.abort();
            }
            if entry.handle.take().is_some() {
                let _ = self.inner.session.remove_torrent(hash).await;
            }
            self.inner.store.remove(hash)?;
            let save = PathBuf::from(&entry.record.save_path);
            let resume = bt_engine::session::resume_path(&save, hash);
            let _ = std::fs::remove_file(&resume);
            if delete_files {
                if let Some(meta) = &entry.meta {
                    self.delete_content(meta, &entry.record, &save);
                }
            }
            self.log(
                LogKind::Normal,
                format!(
                    "removed {}{}",
                    hash.to_hex(),
                    if delete_files { " and its files" } else { "" }
                ),
            );
        }
        self.schedule();
        Ok(())
    }

    /// Deletes the torrent's files (only those it names, under its save path) and the
    /// folders they leave empty.
    fn delete_content(&self, meta: &Metainfo, record: &TorrentRecord, save: &Path) {
        let Ok(mut layout) = StorageLayout::from_metainfo(meta, save) else {
            return;
        };
        if layout
            .place(save, &engine_file_paths(meta, record))
            .is_err()
        {
            return;
        }
        let mut dirs = BTreeSet::new();
        for f in &layout.files {
            if !f.path.starts_with(save) {
                continue;
            }
            let _ = std::fs::remove_file(&f.path);
            let mut p = f.path.parent();
            while let Some(d) = p {
                if d == save || !d.starts_with(save) {
                    break;
                }
                dirs.insert(d.to_path_buf());
                p = d.parent();
            }
        }
        // Deepest first; a folder that still holds other files stays.
        for d in dirs.iter().rev() {
            let _ = std::fs::remove_dir(d);
        }
    }

    /// Sets the category of torrents (`""`: none).
    pub fn set_category(&self, hashes: &[InfoHash], category: &str) -> Result<(), DaemonError> {
        let mut model = self.model();
        if !category.is_empty() && !model.catalog.categories.contains_key(category) {
            return Err(DaemonError::Category(format!(
                "category {category:?} does not exist"
            )));
        }
        let mut moves = Vec::new();
        for h in hashes {
            if let Some(e) = model.torrents.get_mut(h) {
                e.record.category = category.to_string();
                e.dirty = true;
                if e.record.auto_tmm {
                    moves.push(*h);
                }
            }
        }
        model.version += 1;
        drop(model);
        self.save_dirty();
        self.follow_categories(&moves)
    }

    /// Moves the torrents whose save path follows their category to its folder.
    fn follow_categories(&self, hashes: &[InfoHash]) -> Result<(), DaemonError> {
        let targets: Vec<(InfoHash, String)> = {
            let model = self.model();
            hashes
                .iter()
                .filter_map(|h| {
                    let e = model.torrents.get(h)?;
                    let target = self.save_path_for(&model, None, &e.record.category);
                    (target != e.record.save_path).then_some((*h, target))
                })
                .collect()
        };
        for (hash, target) in targets {
            self.set_location(&[hash], Path::new(&target))?;
        }
        Ok(())
    }

    /// Turns qBittorrent's automatic torrent management on or off: when on, the save
    /// path follows the category (and the data moves there now).
    pub fn set_auto_management(&self, hashes: &[InfoHash], on: bool) -> Result<(), DaemonError> {
        {
            let mut model = self.model();
            for h in hashes {
                if let Some(e) = model.torrents.get_mut(h) {
                    if e.record.auto_tmm != on {
                        e.record.auto_tmm = on;
                        e.dirty = true;
                    }
                }
            }
            model.version += 1;
        }
        self.save_dirty();
        if on {
            self.follow_categories(hashes)?;
        }
        Ok(())
    }

    /// Renames one of a torrent's files (`old` and `new` as `torrents/files` names them):
    /// the file moves on disk, a running torrent stops for the move and starts again.
    /// `new` stays under the save path and may not be another file's path.
    pub async fn rename_file(
        &self,
        hash: &InfoHash,
        old: &str,
        new: &str,
    ) -> Result<(), DaemonError> {
        if !valid_file_path(new) {
            return Err(DaemonError::Invalid(format!(
                "{new:?} is not a relative path of normal names separated by /"
            )));
        }
        let (meta, mut record, running) = {
            let mut model = self.model();
            let e = model
                .torrents
                .get_mut(hash)
                .ok_or(DaemonError::NotFound(*hash))?;
            let meta = e
                .meta
                .clone()
                .ok_or_else(|| DaemonError::Invalid("its metadata has not arrived yet".into()))?;
            let names = file_names(&meta, &e.record);
            if names.iter().any(|n| n == new) {
                return Err(DaemonError::Invalid(format!(
                    "{new:?} is already a file of it"
                )));
            }
            if !names.iter().any(|n| n == old) {
                return Err(DaemonError::Invalid(format!("it has no file {old:?}")));
            }
            let starting = e.task.take().map(|t| t.abort()).is_some();
            let running = e.fold_handle().is_some() || starting;
            (meta, e.record.clone(), running)
        };
        if running {
            let _ = self.inner.session.remove_torrent(hash).await;
        }
        let index = file_names(&meta, &record)
            .iter()
            .position(|n| n == old)
            .ok_or_else(|| DaemonError::Invalid(format!("it has no file {old:?}")))?;
        let save = PathBuf::from(&record.save_path);
        let place = |r: &TorrentRecord| -> Result<Vec<PathBuf>, DaemonError> {
            let mut layout = StorageLayout::from_metainfo(&meta, &save)
                .map_err(|e| DaemonError::Invalid(e.to_string()))?;
            layout
                .place(&save, &engine_file_paths(&meta, r))
                .map_err(|e| DaemonError::Invalid(e.to_string()))?;
            Ok(layout
                .files
                .into_iter()
                .filter(|f| !f.pad)
                .map(|f| f.path)
                .collect())
        };
        let before = place(&record)?;
        record.file_renames.insert(index, new.to_string());
        let after = place(&record)?;
        let (from, to) = (&before[index], &after[index]);
        let moved = if from.exists() {
            if let Some(dir) = to.parent() {
                std::fs::create_dir_all(dir)?;
            }
            std::fs::rename(from, to)
        } else {
            Ok(())
        };
        if let Err(e) = moved {
            if running {
                self.launch(*hash);
            }
            return Err(DaemonError::Io(e));
        }
        {
            let mut model = self.model();
            if let Some(e) = model.torrents.get_mut(hash) {
                e.record.file_renames = record.file_renames.clone();
                e.dirty = true;
            }
            model.version += 1;
        }
        self.save_dirty();
        self.log(
            LogKind::Normal,
            format!("{}: renamed {old} to {new}", hash.to_hex()),
        );
        if running {
            self.launch(*hash);
        }
        Ok(())
    }

    /// Announces running torrents to their trackers now.
    pub fn reannounce(&self, hashes: &[InfoHash]) {
        let running: Vec<InfoHash> = {
            let model = self.model();
            hashes
                .iter()
                .filter(|h| model.torrents.get(h).is_some_and(|e| e.handle.is_some()))
                .copied()
                .collect()
        };
        for h in running {
            let _ = self.inner.session.reannounce(&h);
        }
    }

    /// Changes a torrent's tracker list with `edit` (given the list in force) and
    /// persists it; a running torrent announces to the new list at once.
    pub async fn edit_trackers(
        &self,
        hash: &InfoHash,
        edit: impl FnOnce(&mut Vec<Vec<String>>) -> Result<(), DaemonError>,
    ) -> Result<(), DaemonError> {
        let (tiers, running) = {
            let mut model = self.model();
            let e = model
                .torrents
                .get_mut(hash)
                .ok_or(DaemonError::NotFound(*hash))?;
            let mut tiers = e.snapshot().trackers();
            edit(&mut tiers)?;
            tiers.retain(|t| !t.is_empty());
            e.record.trackers = Some(tiers.clone());
            e.dirty = true;
            let running = e.handle.is_some();
            model.version += 1;
            (tiers, running)
        };
        self.save_dirty();
        if running {
            let _ = self.inner.session.set_trackers(hash, &tiers).await;
        }
        Ok(())
    }

    /// Bans peer addresses: their connections close, and the daemon refuses them from
    /// now on (kept in the settings' `banned_IPs`).
    pub async fn ban_peers(&self, ips: &[std::net::IpAddr]) -> Result<(), DaemonError> {
        let mut settings = self.settings();
        let mut known = settings.banned_peer_ips();
        for ip in ips {
            if !known.contains(ip) {
                known.push(*ip);
            }
        }
        settings.banned_ips = known
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("\n");
        self.set_settings(settings)?;
        self.inner.session.ban_ips(ips).await;
        Ok(())
    }

    /// Every category.
    pub fn categories(&self) -> BTreeMap<String, Category> {
        self.model().catalog.categories.clone()
    }

    /// Creates a category (`edit`: changes an existing one's path instead).
    pub fn put_category(&self, name: &str, save_path: &str, edit: bool) -> Result<(), DaemonError> {
        if !valid_category_name(name) {
            return Err(DaemonError::Category(format!(
                "invalid category name {name:?}"
            )));
        }
        let mut model = self.model();
        let exists = model.catalog.categories.contains_key(name);
        if edit && !exists {
            return Err(DaemonError::Category(format!(
                "category {name:?} does not exist"
            )));
        }
        if !edit && exists {
            return Err(DaemonError::Category(format!(
                "category {name:?} already exists"
            )));
        }
        model.catalog.categories.insert(
            name.to_string(),
            Category {
                save_path: save_path.to_string(),
            },
        );
        model.version += 1;
        self.save_catalog(&model.catalog);
        Ok(())
    }

    /// Removes categories; their torrents lose them.
    pub fn remove_categories(&self, names: &[String]) {
        let mut model = self.model();
        for n in names {
            model.catalog.categories.remove(n);
        }
        for e in model.torrents.values_mut() {
            if names.contains(&e.record.category) {
                e.record.category.clear();
                e.dirty = true;
            }
        }
        model.version += 1;
        self.save_catalog(&model.catalog);
        drop(model);
        self.save_dirty();
    }

    /// Every tag.
    pub fn tags(&self) -> BTreeSet<String> {
        self.model().catalog.tags.clone()
    }

    /// Creates tags.
    pub fn create_tags(&self, tags: &[String]) {
        let mut model = self.model();
        for t in tags.iter().filter(|t| !t.is_empty()) {
            model.catalog.tags.insert(t.clone());
        }
        model.version += 1;
        self.save_catalog(&model.catalog);
    }

    /// Deletes tags, from every torrent too.
    pub fn delete_tags(&self, tags: &[String]) {
        let mut model = self.model();
        for t in tags {
            model.catalog.tags.remove(t);
        }
        for e in model.torrents.values_mut() {
            let before = e.record.tags.len();
            e.record.tags.retain(|t| !tags.contains(t));
            e.dirty |= e.record.tags.len() != before;
        }
        model.version += 1;
        self.save_catalog(&model.catalog);
        drop(model);
        self.save_dirty();
    }

    /// Adds tags to torrents (creating them), or takes them off (`add == false`; no tags:
    /// all of them).
    pub fn tag(&self, hashes: &[InfoHash], tags: &[String], add: bool) {
        let mut model = self.model();
        if add {
            for t in tags.iter().filter(|t| !t.is_empty()) {
                model.catalog.tags.insert(t.clone());
            }
            self.save_catalog(&model.catalog);
        }
        for h in hashes {
            if let Some(e) = model.torrents.get_mut(h) {
                if add {
                    e.record
                        .tags
                        .extend(tags.iter().filter(|t| !t.is_empty()).cloned());
                    e.record.tags.sort();
                    e.record.tags.dedup();
                } else if tags.is_empty() {
                    e.record.tags.clear();
                } else {
                    e.record.tags.retain(|t| !tags.contains(t));
                }
                e.dirty = true;
            }
        }
        model.version += 1;
        drop(model);
        self.save_dirty();
    }

    /// Dials peers for running torrents.
    pub async fn add_peers(&self, hashes: &[InfoHash], peers: &[SocketAddr]) {
        let handles: Vec<TorrentHandle> = {
            let model = self.model();
            hashes
                .iter()
                .filter_map(|h| model.torrents.get(h)?.handle.clone())
                .collect()
        };
        for h in handles {
            let _ = h.add_peers(peers.to_vec()).await;
        }
    }

    fn save_catalog(&self, catalog: &Catalog) {
        let path = self.inner.store.dir().join("catalog.json");
        let result = serde_json::to_vec_pretty(catalog)
            .map_err(std::io::Error::other)
            .and_then(|b| write_atomic(&path, &b));
        if let Err(e) = result {
            self.log(
                LogKind::Critical,
                format!("cannot save {}: {e}", path.display()),
            );
        }
    }

    /// Writes every record marked changed.
    fn save_dirty(&self) {
        // Appended under the model's lock, so records reach the journal in the order
        // they changed.
        let mut model = self.model();
        let records: Vec<TorrentRecord> = model
            .torrents
            .values_mut()
            .filter_map(|e| {
                std::mem::take(&mut e.dirty).then(|| {
                    let r = e.current_record();
                    e.saved = (r.downloaded, r.uploaded, Instant::now());
                    r
                })
            })
            .collect();
        if let Err(e) = self.inner.store.save_records(&records) {
            self.log(
                LogKind::Critical,
                format!("cannot save {} torrent records: {e}", records.len()),
            );
        }
    }

    /// Rewrites the journal of records as the torrents are now.
    fn compact_journal(&self) {
        let model = self.model();
        let records: Vec<TorrentRecord> =
            model.torrents.values().map(Entry::current_record).collect();
        if let Err(e) = self.inner.store.compact(&records) {
            self.log(
                LogKind::Critical,
                format!(
                    "cannot rewrite {}: {e}",
                    self.inner.store.journal_path().display()
                ),
            );
        }
    }

    /// Once a second: completion dates, seeding and active time, slowness, share limits,
    /// the queue; every [`SAVE_INTERVAL`], the running torrents' totals.
    async fn tick_loop(self) {
        let mut stop = self.inner.shutdown.subscribe();
        let mut interval = tokio::time::interval(TICK);
        let mut last_save = Instant::now();
        let mut in_window = None;
        loop {
            tokio::select! {
                _ = interval.tick() => {}
                _ = stop.wait_for(|s| *s) => return,
            }
            let now = Instant::now();
            let periodic = now.duration_since(last_save) >= SAVE_INTERVAL;
            let settings = self.settings();
            let wall = unix_now();
            let mut limited = Vec::new();
            let mut changed = false;
            {
                let mut model = self.model();
                for e in model.torrents.values_mut() {
                    let Some(handle) = &e.handle else { continue };
                    let (complete, down, up, totals) = handle.with_stats(|s| {
                        (
                            s.state.is_complete(),
                            s.download_rate,
                            s.upload_rate,
                            (
                                e.record.downloaded + s.downloaded,
                                e.record.uploaded + s.uploaded,
                            ),
                        )
                    });
                    let elapsed = e.last_tick.map_or(0, |t| now.duration_since(t).as_secs());
                    if elapsed > 0 {
                        e.last_tick = Some(now);
                        e.record.active_secs += elapsed;
                        if complete {
                            e.record.seeding_secs += elapsed;
                        }
                    }
                    if down > 0 || up > 0 {
                        e.record.last_activity = wall;
                    }
                    let threshold = 1024
                        * if complete {
                            settings.slow_torrent_ul_rate_threshold
                        } else {
                            settings.slow_torrent_dl_rate_threshold
                        };
                    let rate = if complete { up } else { down };
                    if rate < threshold {
                        e.slow_since.get_or_insert(now);
                    } else {
                        e.slow_since = None;
                    }
                    if complete && e.record.completion_on.is_none() {
                        e.record.completion_on = Some(wall);
                        e.dirty = true;
                        changed = true;
                    }
                    if complete && share::limited(&e.record, &settings) {
                        let record = e.current_record();
                        let held = e
                            .meta
                            .as_ref()
                            .map_or(0, |m| priorities::wanted_len(m, &record.file_priorities));
                        if let Some(why) = share::reached(&record, &settings, held, wall) {
                            limited.push((record.info_hash, why));
                        }
                    }
                    // Totals that moved are saved every SAVE_INTERVAL; clocks alone, seldom.
                    if periodic
                        && ((totals.0, totals.1) != (e.saved.0, e.saved.1)
                            || now.duration_since(e.saved.2) >= CLOCKS_SAVE_INTERVAL)
                    {
                        e.dirty = true;
                    }
                }
                if changed {
                    model.version += 1;
                }
            }
            for (hash, why) in limited {
                let action = settings.max_ratio_act;
                self.log(
                    LogKind::Normal,
                    format!(
                        "{}: share limit reached ({why:?}); {}",
                        hash.to_hex(),
                        match action {
                            1 => "removing it",
                            3 => "removing it and its files",
                            _ => "stopping it",
                        }
                    ),
                );
                let result = match action {
                    1 => self.remove(&[hash], false).await,
                    3 => self.remove(&[hash], true).await,
                    _ => self.stop(&[hash]).await,
                };
                if let Err(e) = result {
                    self.log(LogKind::Warning, format!("{}: {e}", hash.to_hex()));
                }
            }
            self.follow_schedule(&mut in_window);
            self.apply_speed_limits();
            self.schedule();
            if periodic {
                last_save = now;
            }
            // Records marked changed anywhere (a completion a list view noticed first,
            // the periodic totals) are written now.
            self.save_dirty();
            let torrents = self.model().torrents.len();
            if self.inner.store.journal_lines() > (4 * torrents).max(10_000) {
                self.compact_journal();
            }
            if self.inner.store.has_unsynced() {
                let store = self.inner.store.clone();
                let _ = tokio::task::spawn_blocking(move || store.flush()).await;
            }
        }
    }

    /// Sets the session's limits to the pair in force.
    fn apply_speed_limits(&self) {
        let (down, up) = speed::limits(&self.settings());
        if self.inner.session.rate_limits() != (down, up) {
            self.inner.session.set_rate_limits(down, up);
        }
    }

    /// With the scheduler on, switches the alternative limits on when the window opens
    /// and off when it closes (a switch by hand holds until the next edge).
    fn follow_schedule(&self, last: &mut Option<bool>) {
        let settings = self.settings();
        if !settings.scheduler_enabled {
            *last = None;
            return;
        }
        let now = speed::in_window_now(&settings);
        if *last != Some(now) {
            *last = Some(now);
            if settings.use_alt_speed_limits != now {
                let _ = self.set_alt_speed_limits(now);
            }
        }
    }

    /// Switches the alternative limits on or off (and persists it).
    pub fn set_alt_speed_limits(&self, on: bool) -> Result<(), DaemonError> {
        let mut s = self.settings();
        s.use_alt_speed_limits = on;
        self.set_settings(s)?;
        self.apply_speed_limits();
        Ok(())
    }

    /// Sets the global download or upload limit of the pair in force, bytes/s (0: none).
    pub fn set_global_limit(&self, download: bool, limit: u64) -> Result<(), DaemonError> {
        let mut s = self.settings();
        match (s.use_alt_speed_limits, download) {
            (false, true) => s.dl_limit = limit,
            (false, false) => s.up_limit = limit,
            (true, true) => s.alt_dl_limit = limit,
            (true, false) => s.alt_up_limit = limit,
        }
        self.set_settings(s)?;
        self.apply_speed_limits();
        Ok(())
    }

    /// Sets torrents' own download or upload limit, bytes/s (0: none).
    pub fn set_torrent_limit(&self, hashes: &[InfoHash], download: bool, limit: u64) {
        let mut model = self.model();
        for h in hashes {
            if let Some(e) = model.torrents.get_mut(h) {
                if download {
                    e.record.dl_limit = limit;
                } else {
                    e.record.up_limit = limit;
                }
                if let Some(handle) = &e.handle {
                    handle.set_rate_limits(e.record.dl_limit, e.record.up_limit);
                }
                e.dirty = true;
            }
        }
        model.version += 1;
        drop(model);
        self.save_dirty();
    }

    /// Looks at the watch folder every few seconds while it is set.
    async fn watch_loop(self) {
        let mut stop = self.inner.shutdown.subscribe();
        let mut interval = tokio::time::interval(Duration::from_secs(2));
        loop {
            tokio::select! {
                _ = interval.tick() => {}
                _ = stop.wait_for(|s| *s) => return,
            }
            if let Some(dir) = self.settings().scan_dir {
                crate::watch::scan(&self, &dir).await;
            }
        }
    }

    /// Sets the priority of files (visible indices) of a torrent.
    pub async fn set_file_priority(
        &self,
        hash: &InfoHash,
        files: &[usize],
        priority: u8,
    ) -> Result<(), DaemonError> {
        if !priorities::is_valid(priority) {
            return Err(DaemonError::Invalid(format!(
                "priority {priority}: not 0, 1, 6 or 7"
            )));
        }
        self.update_priorities(hash, |meta, r| {
            let n = priorities::visible_files(meta).len();
            if let Some(bad) = files.iter().find(|i| **i >= n) {
                return Err(DaemonError::Invalid(format!(
                    "file {bad}: the torrent has {n} files"
                )));
            }
            if r.file_priorities.len() < n {
                r.file_priorities.resize(n, priorities::NORMAL);
            }
            for &i in files {
                r.file_priorities[i] = priority;
            }
            Ok(())
        })
        .await
    }

    /// Flips first-and-last-piece-first of torrents.
    pub async fn toggle_first_last(&self, hashes: &[InfoHash]) -> Result<(), DaemonError> {
        for h in hashes {
            self.update_priorities(h, |_, r| {
                r.first_last = !r.first_last;
                Ok(())
            })
            .await?;
        }
        Ok(())
    }

    /// Changes a record's priorities, persists it and tells the running engine torrent.
    async fn update_priorities(
        &self,
        hash: &InfoHash,
        change: impl FnOnce(&Metainfo, &mut TorrentRecord) -> Result<(), DaemonError>,
    ) -> Result<(), DaemonError> {
        let (handle, prios) = {
            let mut model = self.model();
            let e = model
                .torrents
                .get_mut(hash)
                .ok_or(DaemonError::NotFound(*hash))?;
            let meta = e
                .meta
                .clone()
                .ok_or_else(|| DaemonError::Invalid("its metadata has not arrived yet".into()))?;
            change(&meta, &mut e.record)?;
            e.dirty = true;
            let mut prios =
                priorities::pieces(&meta, &e.record.file_priorities, e.record.first_last);
            if prios.is_empty() {
                prios = vec![bt_engine::proto::Priority::NORMAL; meta.info.num_pieces() as usize];
            }
            if e.record.completion_on.is_some()
                && priorities::wanted_len(&meta, &e.record.file_priorities) > 0
            {
                // Wanting more may make it incomplete again; the engine says when.
                e.record.completion_on = None;
            }
            let h = e.handle.clone();
            model.version += 1;
            (h, prios)
        };
        self.save_dirty();
        if let Some(h) = handle {
            h.set_piece_priorities(prios).await?;
        }
        Ok(())
    }

    /// Flips sequential download of torrents.
    pub async fn toggle_sequential(&self, hashes: &[InfoHash]) -> Result<(), DaemonError> {
        for hash in hashes {
            let (handle, on) = {
                let mut model = self.model();
                let Some(e) = model.torrents.get_mut(hash) else {
                    continue;
                };
                e.record.sequential = !e.record.sequential;
                e.dirty = true;
                let out = (e.handle.clone(), e.record.sequential);
                model.version += 1;
                out
            };
            if let Some(h) = handle {
                h.set_sequential(on).await?;
            }
        }
        self.save_dirty();
        Ok(())
    }

    /// Sets or clears force start: a forced torrent runs regardless of the queue.
    pub async fn set_force_start(&self, hashes: &[InfoHash], on: bool) -> Result<(), DaemonError> {
        {
            let mut model = self.model();
            for h in hashes {
                if let Some(e) = model.torrents.get_mut(h) {
                    e.record.force_start = on;
                    if on {
                        e.record.stopped = false;
                    }
                    e.dirty = true;
                }
            }
            model.version += 1;
        }
        self.save_dirty();
        self.schedule();
        Ok(())
    }

    /// Sets the share limits of torrents (ratio; seeding and inactive minutes; -2 global,
    /// -1 none).
    pub fn set_share_limits(&self, hashes: &[InfoHash], ratio: f64, seeding: i64, inactive: i64) {
        let mut model = self.model();
        for h in hashes {
            if let Some(e) = model.torrents.get_mut(h) {
                e.record.ratio_limit = ratio;
                e.record.seeding_time_limit = seeding;
                e.record.inactive_seeding_time_limit = inactive;
                e.dirty = true;
            }
        }
        model.version += 1;
        drop(model);
        self.save_dirty();
    }

    /// Moves torrents in the queue: to the top or bottom, or one place up or down.
    pub fn move_in_queue(&self, hashes: &[InfoHash], to: QueueMove) {
        {
            let mut model = self.model();
            let mut order: Vec<InfoHash> = model.torrents.keys().copied().collect();
            order.sort_by_key(|h| model.torrents[h].record.queue_position);
            let picked = |h: &InfoHash| hashes.contains(h);
            match to {
                QueueMove::Top => {
                    let (mut a, b): (Vec<_>, Vec<_>) = order.into_iter().partition(picked);
                    a.extend(b);
                    order = a;
                }
                QueueMove::Bottom => {
                    let (a, mut b): (Vec<_>, Vec<_>) = order.into_iter().partition(|h| !picked(h));
                    let mut a = a;
                    a.append(&mut b);
                    order = a;
                }
                QueueMove::Up => {
                    for i in 1..order.len() {
                        if picked(&order[i]) && !picked(&order[i - 1]) {
                            order.swap(i, i - 1);
                        }
                    }
                }
                QueueMove::Down => {
                    for i in (0..order.len().saturating_sub(1)).rev() {
                        if picked(&order[i]) && !picked(&order[i + 1]) {
                            order.swap(i, i + 1);
                        }
                    }
                }
            }
            for (pos, h) in order.iter().enumerate() {
                if let Some(e) = model.torrents.get_mut(h) {
                    if e.record.queue_position != pos as u32 {
                        e.record.queue_position = pos as u32;
                        e.dirty = true;
                    }
                }
            }
            model.version += 1;
        }
        self.save_dirty();
        self.schedule();
    }

    /// Gives torrents a new display name (their files keep theirs).
    pub fn rename(&self, hash: &InfoHash, name: &str) -> Result<(), DaemonError> {
        if name.trim().is_empty() {
            return Err(DaemonError::Invalid("name: empty".into()));
        }
        // The name of a torrent without metadata is its folder's until the metadata comes.
        if name.contains(['/', '\\', '\0']) || name == "." || name == ".." {
            return Err(DaemonError::Invalid(format!(
                "name {name:?}: a torrent's name is one path component"
            )));
        }
        let mut model = self.model();
        let e = model
            .torrents
            .get_mut(hash)
            .ok_or(DaemonError::NotFound(*hash))?;
        e.record.name = name.to_string();
        e.dirty = true;
        model.version += 1;
        drop(model);
        self.save_dirty();
        Ok(())
    }

    /// Moves torrents' data (and resume state) to `location`, across filesystems too; a
    /// running torrent stops while its data moves and starts again after.
    pub fn set_location(&self, hashes: &[InfoHash], location: &Path) -> Result<(), DaemonError> {
        if !location.is_absolute() {
            return Err(DaemonError::Invalid(format!(
                "location {}: not an absolute path",
                location.display()
            )));
        }
        std::fs::create_dir_all(location).map_err(|e| {
            DaemonError::Category(format!("cannot create {}: {e}", location.display()))
        })?;
        for hash in hashes {
            let progress = Arc::new(Mutex::new(0.0));
            let (handle, meta, from) = {
                let mut model = self.model();
                let Some(e) = model.torrents.get_mut(hash) else {
                    continue;
                };
                if e.moving.is_some() || Path::new(&e.record.save_path) == location {
                    continue;
                }
                if let Some(task) = e.task.take() {
                    task.abort();
                }
                e.moving = Some(Arc::clone(&progress));
                let h = e.fold_handle();
                let out = (h, e.meta.clone(), PathBuf::from(&e.record.save_path));
                model.version += 1;
                out
            };
            let this = self.clone();
            let (hash, to) = (*hash, location.to_path_buf());
            tokio::spawn(async move {
                if handle.is_some() {
                    let _ = this.inner.session.remove_torrent(&hash).await;
                }
                let moved = {
                    let (from, to) = (from.clone(), to.clone());
                    tokio::task::spawn_blocking(move || -> std::io::Result<()> {
                        if let Some(meta) = meta {
                            let src = content_root(&meta, &from);
                            if src.exists() {
                                let dst = content_root(&meta, &to);
                                crate::relocate::move_path(&src, &dst, &|p| {
                                    *progress.lock().unwrap_or_else(|e| e.into_inner()) = p;
                                })?;
                            }
                        }
                        let resume = bt_engine::session::resume_path(&from, &hash);
                        if resume.exists() {
                            let target = bt_engine::session::resume_path(&to, &hash);
                            if let Some(dir) = target.parent() {
                                std::fs::create_dir_all(dir)?;
                            }
                            std::fs::copy(&resume, &target)?;
                            std::fs::remove_file(&resume)?;
                        }
                        Ok(())
                    })
                    .await
                    .unwrap_or_else(|e| Err(std::io::Error::other(e.to_string())))
                };
                {
                    let mut model = this.model();
                    if let Some(e) = model.torrents.get_mut(&hash) {
                        e.moving = None;
                        match &moved {
                            Ok(()) => e.record.save_path = to.to_string_lossy().into_owned(),
                            Err(err) => {
                                e.error = Some(format!("moving to {} failed: {err}", to.display()))
                            }
                        }
                        e.dirty = true;
                    }
                    model.version += 1;
                }
                match moved {
                    Ok(()) => this.log(
                        LogKind::Normal,
                        format!("{}: moved to {}", hash.to_hex(), to.display()),
                    ),
                    Err(e) => this.log(
                        LogKind::Critical,
                        format!("{}: moving to {} failed: {e}", hash.to_hex(), to.display()),
                    ),
                }
                this.save_dirty();
                this.schedule();
            });
        }
        Ok(())
    }

    /// Each piece's state, qBittorrent's numbers: 0 missing, 2 verified (`None`: no such
    /// torrent or no metadata yet).
    pub async fn piece_states(&self, hash: &InfoHash) -> Option<Vec<u8>> {
        let (meta, handle, complete) = {
            let model = self.model();
            let e = model.torrents.get(hash)?;
            (
                e.meta.clone()?,
                e.handle.clone(),
                e.record.completion_on.is_some(),
            )
        };
        let n = meta.info.num_pieces() as usize;
        let bitfield = match handle {
            Some(h) => h.piece_bitfield().await.ok(),
            None => None,
        };
        Some(match bitfield {
            Some(b) => (0..n)
                .map(|p| {
                    let have = b.get(p / 8).is_some_and(|x| x & (0x80 >> (p % 8)) != 0);
                    if have {
                        2
                    } else {
                        0
                    }
                })
                .collect(),
            None => vec![if complete { 2 } else { 0 }; n],
        })
    }

    /// The connected peers of a running torrent (none for a stopped one).
    pub async fn peers(&self, hash: &InfoHash) -> Vec<bt_engine::proto::PeerSummary> {
        let handle = self
            .model()
            .torrents
            .get(hash)
            .and_then(|e| e.handle.clone());
        match handle {
            Some(h) => h.peers().await.unwrap_or_default(),
            None => Vec::new(),
        }
    }

    /// Each visible file's verified fraction (`None`: no such torrent).
    pub async fn file_progress(&self, hash: &InfoHash) -> Option<Vec<f64>> {
        let (meta, handle, complete) = {
            let model = self.model();
            let e = model.torrents.get(hash)?;
            (
                e.meta.clone(),
                e.handle.clone(),
                e.record.completion_on.is_some(),
            )
        };
        let meta = meta?;
        let bitfield = match handle {
            Some(h) => h.piece_bitfield().await.ok(),
            None => None,
        };
        Some(match bitfield {
            Some(b) => priorities::file_progress(&meta, &b),
            // A stopped torrent: complete, or not known without its resume state.
            None => {
                let n = priorities::visible_files(&meta).len();
                vec![if complete { 1.0 } else { 0.0 }; n]
            }
        })
    }
}

/// Where [`Daemon::move_in_queue`] moves torrents.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueueMove {
    /// To the front.
    Top,
    /// One place up.
    Up,
    /// One place down.
    Down,
    /// To the end.
    Bottom,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn category_names_follow_qbittorrents_rule() {
        for ok in ["tv", "tv/hd", "a b"] {
            assert!(valid_category_name(ok), "{ok}");
        }
        for bad in ["", "/tv", "tv/", "a//b", "..", "a/../b", "a\\b"] {
            assert!(!valid_category_name(bad), "{bad}");
        }
    }

    #[test]
    fn fetched_metadata_becomes_a_torrent_with_the_same_info_hash() {
        let info = b"d6:lengthi5e4:name1:a12:piece lengthi16384e6:pieces20:aaaaaaaaaaaaaaaaaaaae";
        let bytes = torrent_file(info, &["http://127.0.0.1:1/announce".to_string()]);
        let meta = Metainfo::from_bytes(&bytes).unwrap();
        assert_eq!(meta.raw_info(), &info[..]);
        assert_eq!(
            meta.trackers(),
            vec![vec!["http://127.0.0.1:1/announce".to_string()]]
        );
        let bare = Metainfo::from_bytes(&torrent_file(info, &[])).unwrap();
        assert_eq!(bare.info_hash, meta.info_hash);
    }
}
