//! [`Session`]: the library's entry point. One listening port, many torrents, and the
//! peer sources that feed them.
//!
//! A session owns a transport (TCP by default) and a set of torrents, each run by its own
//! task around its [`crate::proto::Torrent`]. Incoming connections are routed to a torrent
//! by the info-hash in their handshake; connections for unknown torrents are dropped.
//! Outgoing connections are made by each torrent from its address book, which the peer
//! sources fill: peers given to [`Session::add_torrent`] or
//! [`TorrentHandle::add_peers`], the torrent's trackers ([`crate::sources::announce`],
//! started for each torrent that has some), the session's DHT node
//! ([`crate::sources::dht`], when [`SessionConfig::dht`] is set; never for private
//! torrents) and PEX (inside each torrent). Magnet links are resolved here too
//! ([`Session::resolve_magnet`], [`Session::add_magnet`]). [`Session::shutdown`] stops it
//! all in order: trackers hear `stopped`, torrents save their resume state, the DHT
//! saves its routing table.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};

use std::path::{Path, PathBuf};

use bt_dht::DhtNode;
use bt_meta::{InfoHash, Magnet, Metainfo, PeerId};
use bt_tracker::TrackerClient;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

use crate::driver::disk::{Disk, Store};
use crate::driver::encryption::{self, EncryptionPolicy};
use crate::driver::peer;
use crate::driver::ratelimit::{Bucket, Throttle};
use crate::driver::torrent::{IncomingRoute, SessionShared, TaskParts, TorrentHandle, TorrentTask};
use crate::driver::transport::{Dialer, TcpTransport, Transport};
use crate::proto::{Disconnect, Event, PeerLimits, Torrent, TorrentConfig, TorrentParams};
use crate::resume::ResumeState;
use crate::sources::announce::{
    self, AnnouncerConfig, AnnouncerHandle, AnnouncerStatus, Announcing,
};
use crate::sources::dht::{self, DhtPeersHandle, DhtSettings, SessionDht};
use crate::sources::magnet::{ResolvedMagnet, Resolver};
use crate::storage::{CheckProgress, StorageBackend, StorageLayout, TorrentStorage};
use crate::{Error, Result};

/// Capacity of a torrent's peer event queue.
const EVENT_QUEUE: usize = 1024;
/// Capacity of a torrent's API queue.
const API_QUEUE: usize = 64;
/// Incoming connections whose handshake is still being read, at most; a new one beyond
/// that drops the oldest.
const MAX_PENDING_HANDSHAKES: usize = 64;

/// Settings for a [`Session`].
#[derive(Clone, Debug)]
pub struct SessionConfig {
    /// Where to accept peer connections (port 0 picks a free port).
    pub listen_addr: SocketAddr,
    /// Our peer id, sent in every handshake.
    pub peer_id: PeerId,
    /// Most connected peers over all torrents.
    pub max_peers: usize,
    /// Defaults for each torrent (connection limit, choker, picker).
    pub torrent: TorrentConfig,
    /// Which connections are encrypted (MSE/PE).
    pub encryption: EncryptionPolicy,
    /// Announcing each torrent to its trackers; `None`: trackers are not used.
    pub announce: Option<AnnouncerConfig>,
    /// The DHT, on the listening address (UDP); `None`: off.
    pub dht: Option<DhtSettings>,
    /// Addresses refused by every torrent from the start.
    pub banned_ips: Vec<std::net::IpAddr>,
}

impl Default for SessionConfig {
    fn default() -> Self {
        SessionConfig {
            listen_addr: SocketAddr::from(([0, 0, 0, 0], 6881)),
            peer_id: bt_wire::generate_peer_id(),
            max_peers: 500,
            torrent: TorrentConfig::default(),
            encryption: EncryptionPolicy::default(),
            announce: Some(AnnouncerConfig::default()),
            dht: None,
            banned_ips: Vec::new(),
        }
    }
}

/// Where a torrent's data lives.
pub enum StorageKind {
    /// Files under the download folder, which must exist and be writable; missing files
    /// are created as pieces arrive. Resume state is kept in
    /// `<download_dir>/.bt/<info-hash>.resume`.
    Files,
    /// Files under the download folder as they are: nothing is created up front and the
    /// folder may be read-only (for seeding). Resume state as for [`StorageKind::Files`],
    /// when the folder is writable.
    ExistingFiles,
    /// A custom backend (for example [`MemoryBackend`](crate::storage::MemoryBackend) in
    /// tests); no resume state is kept.
    Backend(Box<dyn StorageBackend>),
}

impl std::fmt::Debug for StorageKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StorageKind::Files => f.write_str("Files"),
            StorageKind::ExistingFiles => f.write_str("ExistingFiles"),
            StorageKind::Backend(_) => f.write_str("Backend(..)"),
        }
    }
}

/// Reports progress while existing data is checked at start.
pub type CheckCallback = Arc<dyn Fn(CheckProgress) + Send + Sync>;

/// What [`Session::add_torrent`] needs to start a torrent.
pub struct AddTorrentParams {
    /// The torrent.
    pub metainfo: Metainfo,
    /// The folder its files go under: `<dir>/<name>` for a single-file torrent,
    /// `<dir>/<name>/...` for a multi-file one.
    pub download_dir: PathBuf,
    /// Where the data lives.
    pub storage: StorageKind,
    /// Peers to dial at once.
    pub peers: Vec<SocketAddr>,
    /// Keep serving peers once complete (otherwise peers are dropped at completion).
    pub seed: bool,
    /// Trust the resume file when the files still match it, instead of hashing them.
    pub use_resume: bool,
    /// Threads hashing existing data at start.
    pub check_threads: usize,
    /// Called as existing data is checked.
    pub on_check: Option<CheckCallback>,
    /// Each piece's priority (empty: all normal); see
    /// [`piece_priorities`](crate::proto::piece_priorities).
    pub priorities: Vec<crate::proto::Priority>,
    /// Fetch pieces in order rather than rarest first.
    pub sequential: bool,
    /// Trust the files to be complete without hashing them (the user says they are).
    pub skip_check: bool,
    /// Announce to these tiers instead of the metainfo's trackers.
    pub trackers: Option<Vec<Vec<String>>>,
    /// Files placed elsewhere than the metainfo says: file index (pad files counted) and
    /// the path's components under the download folder (sanitized: they cannot leave it).
    pub file_paths: Vec<(usize, Vec<String>)>,
}

impl AddTorrentParams {
    /// Parameters for downloading `metainfo` into files under `download_dir`, seeding
    /// afterwards, trusting a matching resume file.
    pub fn new(metainfo: Metainfo, download_dir: impl Into<PathBuf>) -> Self {
        AddTorrentParams {
            metainfo,
            download_dir: download_dir.into(),
            storage: StorageKind::Files,
            peers: Vec::new(),
            seed: true,
            use_resume: true,
            check_threads: 2,
            on_check: None,
            priorities: Vec::new(),
            sequential: false,
            skip_check: false,
            trackers: None,
            file_paths: Vec::new(),
        }
    }
}

impl std::fmt::Debug for AddTorrentParams {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AddTorrentParams")
            .field("name", &self.metainfo.info.name)
            .field("download_dir", &self.download_dir)
            .field("storage", &self.storage)
            .field("peers", &self.peers)
            .field("seed", &self.seed)
            .finish_non_exhaustive()
    }
}

/// Where the resume state of `info_hash` downloaded under `dir` is kept.
pub fn resume_path(dir: &Path, info_hash: &InfoHash) -> PathBuf {
    dir.join(crate::storage::STATE_DIR)
        .join(format!("{}.resume", info_hash.to_hex()))
}

/// A torrent in the session.
struct Entry {
    handle: TorrentHandle,
    route: Arc<IncomingRoute>,
    task: JoinHandle<()>,
    /// Its trackers, if it has any and the session announces.
    announcer: Option<AnnouncerHandle>,
    /// Its DHT lookups, if the session runs the DHT and it is not private.
    dht: Option<DhtPeersHandle>,
}

impl Entry {
    /// Stops the peer sources first (trackers hear `stopped`), then the torrent.
    async fn stop(self) {
        if let Some(announcer) = self.announcer {
            announcer.shutdown().await;
        }
        if let Some(dht) = self.dht {
            dht.stop().await;
        }
        self.handle.shutdown().await;
        let _ = self.task.await;
    }
}

/// State shared with the accept loop.
struct Inner {
    shared: Arc<SessionShared>,
    torrents: Mutex<HashMap<InfoHash, Entry>>,
}

impl Inner {
    /// The info-hash whose `HASH("req2", info_hash)` an MSE dialler sent.
    fn find_obfuscated(&self, req2: &[u8; 20]) -> Option<[u8; 20]> {
        let torrents = self.torrents.lock().unwrap_or_else(|e| e.into_inner());
        torrents
            .keys()
            .find(|ih| encryption::req2_hash(ih) == *req2)
            .map(|ih| ih.0)
    }

    fn route(&self, info_hash: &InfoHash) -> Option<Arc<IncomingRoute>> {
        let torrents = self.torrents.lock().unwrap_or_else(|e| e.into_inner());
        torrents.get(info_hash).map(|e| Arc::clone(&e.route))
    }
}

/// Downloads and seeds torrents over one listening port.
pub struct Session {
    inner: Arc<Inner>,
    config: SessionConfig,
    local_addr: SocketAddr,
    accept: JoinHandle<()>,
    dht: Option<SessionDht>,
}

impl Session {
    /// Opens the listening socket (TCP on `config.listen_addr`) and starts accepting
    /// connections.
    pub async fn new(config: SessionConfig) -> Result<Session> {
        let transport = TcpTransport::bind(config.listen_addr)
            .await
            .map_err(|source| Error::Listen {
                addr: config.listen_addr,
                source,
            })?;
        Self::with_transport(config, Arc::new(transport)).await
    }

    /// A session whose connections come from `transport` (`config.listen_addr` is not
    /// used; the DHT, if any, binds UDP on the transport's address).
    pub async fn with_transport(
        config: SessionConfig,
        transport: Arc<dyn Transport>,
    ) -> Result<Session> {
        let local_addr = transport.local_addr();
        let dht = match &config.dht {
            Some(settings) => Some(SessionDht::start(settings, local_addr).await.map_err(
                |source| Error::Dht {
                    addr: local_addr,
                    source,
                },
            )?),
            None => None,
        };
        let inner = Arc::new(Inner {
            shared: Arc::new(SessionShared {
                peer_id: config.peer_id,
                next_key: AtomicU64::new(0),
                limits: Arc::new(PeerLimits::new(config.max_peers)),
                dht: dht.as_ref().map(|d| d.node().clone()),
                dialer: Dialer::new(Arc::clone(&transport), config.encryption),
                down: Arc::new(Bucket::new(0)),
                up: Arc::new(Bucket::new(0)),
                banned: Mutex::new(config.banned_ips.iter().copied().collect()),
            }),
            torrents: Mutex::new(HashMap::new()),
        });
        let accept = tokio::spawn(accept_loop(transport, Arc::clone(&inner)));
        tracing::info!(addr = %local_addr, peer_id = %config.peer_id, "session listening");
        Ok(Session {
            inner,
            config,
            local_addr,
            accept,
            dht,
        })
    }

    /// The address peers can connect to.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// How this session dials peers (its transport and encryption policy).
    pub fn dialer(&self) -> Dialer {
        self.inner.shared.dialer.clone()
    }

    /// Our peer id.
    pub fn peer_id(&self) -> PeerId {
        self.config.peer_id
    }

    /// The session's DHT node, if it runs one.
    pub fn dht(&self) -> Option<&DhtNode> {
        self.dht.as_ref().map(SessionDht::node)
    }

    /// What the announcer of this torrent has done so far (`None`: the torrent has no
    /// trackers, or the session does not announce).
    pub fn tracker_status(&self, info_hash: &InfoHash) -> Option<watch::Receiver<AnnouncerStatus>> {
        let torrents = self
            .inner
            .torrents
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        torrents
            .get(info_hash)?
            .announcer
            .as_ref()
            .map(AnnouncerHandle::subscribe)
    }

    /// Fetches a magnet link's metadata from the peers its `x.pe`, `peers`, its trackers
    /// and the DHT name, through this session's dial path (so its encryption policy
    /// holds), and builds the torrent. Drop the future to give up; it has no deadline of
    /// its own.
    pub async fn resolve_magnet(
        &self,
        magnet: &Magnet,
        peers: &[SocketAddr],
    ) -> Result<ResolvedMagnet> {
        let resolver = Resolver {
            dialer: self.dialer(),
            peer_id: self.config.peer_id,
            port: self.local_addr.port(),
            dht: self.dht(),
        };
        Ok(resolver.resolve(magnet, peers).await?)
    }

    /// [`Session::resolve_magnet`], then [`Session::add_torrent`] into `download_dir`
    /// with the default parameters, dialling the peers that served the metadata.
    pub async fn add_magnet(
        &self,
        magnet: &Magnet,
        download_dir: impl Into<PathBuf>,
        peers: &[SocketAddr],
    ) -> Result<TorrentHandle> {
        let resolved = self.resolve_magnet(magnet, peers).await?;
        let mut params = AddTorrentParams::new(resolved.metainfo, download_dir);
        params.peers = resolved.peers;
        self.add_torrent(params).await
    }

    /// Limits the download and upload of every torrent together, bytes per second (0:
    /// unlimited); each torrent's own limits apply beside these.
    pub fn set_rate_limits(&self, download: u64, upload: u64) {
        self.inner.shared.down.set_rate(download);
        self.inner.shared.up.set_rate(upload);
    }

    /// The session's limits: download, upload (0: unlimited).
    pub fn rate_limits(&self) -> (u64, u64) {
        (self.inner.shared.down.rate(), self.inner.shared.up.rate())
    }

    /// The torrent with this info-hash, if it is in the session.
    pub fn torrent(&self, info_hash: &InfoHash) -> Option<TorrentHandle> {
        let torrents = self
            .inner
            .torrents
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        torrents.get(info_hash).map(|e| e.handle.clone())
    }

    /// Every torrent in the session.
    pub fn torrents(&self) -> Vec<TorrentHandle> {
        let torrents = self
            .inner
            .torrents
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        torrents.values().map(|e| e.handle.clone()).collect()
    }

    /// Opens the torrent's storage, finds which pieces are already there (from the resume
    /// file if it still matches the files, else by hashing them), and starts it: it dials
    /// `params.peers` and accepts connections for its info-hash.
    pub async fn add_torrent(&self, params: AddTorrentParams) -> Result<TorrentHandle> {
        let dir = params.download_dir.clone();
        let mut layout = StorageLayout::from_metainfo(&params.metainfo, &dir)?;
        layout.place(&dir, &params.file_paths)?;
        let info_hash = layout.info_hash;
        if self.torrent(&info_hash).is_some() {
            return Err(Error::DuplicateTorrent(info_hash));
        }
        let geometry = layout.geometry.clone();
        let (storage, resume) = match params.storage {
            StorageKind::Backend(backend) => {
                let storage = TorrentStorage::new(layout, backend)?;
                storage.prepare(&dir)?;
                (storage, None)
            }
            kind => {
                match std::fs::metadata(&dir) {
                    Ok(m) if m.is_dir() => {}
                    Ok(_) => {
                        let source =
                            std::io::Error::new(std::io::ErrorKind::NotADirectory, "not a folder");
                        return Err(Error::DownloadDir { path: dir, source });
                    }
                    Err(source) => return Err(Error::DownloadDir { path: dir, source }),
                }
                let storage = if matches!(kind, StorageKind::Files) {
                    TorrentStorage::open(layout, &dir)?
                } else {
                    TorrentStorage::open_existing(layout, &dir)?
                };
                (storage, Some(resume_path(&dir, &info_hash)))
            }
        };
        let use_resume = params.use_resume;
        let skip_check = params.skip_check;
        let threads = params.check_threads.max(1);
        let on_check = params.on_check.clone();
        let store = Arc::new(Store {
            storage,
            resume_path: resume,
            saved: Default::default(),
        });
        let check_store = Arc::clone(&store);
        let have = tokio::task::spawn_blocking(move || -> Result<Vec<bool>> {
            let storage = &check_store.storage;
            if skip_check {
                tracing::info!("the check is skipped: the files are taken as complete");
                return Ok(vec![true; storage.geometry().num_pieces() as usize]);
            }
            if let (true, Some(path)) = (use_resume, &check_store.resume_path) {
                match ResumeState::load(path) {
                    Ok(state) => {
                        if let Some(have) = storage.trusted_pieces(&state)? {
                            tracing::info!(path = %path.display(), "resume state matches the files");
                            *check_store.saved.lock().unwrap_or_else(|e| e.into_inner()) =
                                Some(have.clone());
                            return Ok(have);
                        }
                        tracing::info!(path = %path.display(), "files changed since the resume state was saved; checking");
                    }
                    Err(e) if e.is_not_found() => {}
                    Err(e) => tracing::warn!(error = %e, "resume state ignored"),
                }
            }
            let progress = |p: CheckProgress| {
                if let Some(cb) = &on_check {
                    cb(p);
                }
            };
            Ok(storage.check_existing(threads, progress)?)
        })
        .await
        .map_err(|e| Error::Thread(std::io::Error::other(e.to_string())))??;
        let mut config = self.config.torrent.clone();
        config.seed = params.seed;
        let shared = &self.inner.shared;
        let proto = TorrentParams {
            info_hash,
            name: params.metainfo.info.name.clone(),
            geometry,
            peer_id: shared.peer_id,
            have,
            info: Some(bytes::Bytes::copy_from_slice(params.metainfo.raw_info())),
            private: params.metainfo.info.private,
            listen_port: self.local_addr.port(),
            dht_port: shared.dht.as_ref().map(|node| node.local_addr().port()),
            rng_seed: config.rng_seed.unwrap_or_else(rand::random),
            config,
            limits: Arc::clone(&shared.limits),
            priorities: params.priorities,
        };
        let handle = self.start_torrent(proto, store, params.peers, dir)?;
        if params.sequential {
            handle.set_sequential(true).await?;
        }
        self.start_sources(&handle, &params.metainfo, params.trackers.as_deref());
        Ok(handle)
    }

    /// Starts the torrent's trackers and DHT lookups, as the session is configured.
    fn start_sources(
        &self,
        handle: &TorrentHandle,
        metainfo: &Metainfo,
        trackers: Option<&[Vec<String>]>,
    ) {
        let us = self.announcing();
        let tiers = match trackers {
            Some(list) => bt_tracker::Tiers::new(None, list, &mut rand::thread_rng()),
            None => announce::tiers(metainfo),
        };
        let announcer = self.announcer(handle, tiers);
        let dht = match (&self.dht, &self.config.dht) {
            (Some(node), Some(settings)) if !metainfo.info.private => Some(dht::spawn(
                node.node().clone(),
                handle.clone(),
                us.port,
                settings.peers.clone(),
            )),
            (Some(_), _) => {
                tracing::info!(torrent = %handle.info_hash(), "private torrent: not using the DHT");
                None
            }
            _ => None,
        };
        let mut torrents = self
            .inner
            .torrents
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if let Some(entry) = torrents.get_mut(&handle.info_hash()) {
            entry.announcer = announcer;
            entry.dht = dht;
        }
    }

    /// Starts a torrent whose storage is open and whose verified pieces are known.
    fn start_torrent(
        &self,
        params: TorrentParams,
        store: Arc<Store>,
        initial_peers: Vec<SocketAddr>,
        download_dir: PathBuf,
    ) -> Result<TorrentHandle> {
        let info_hash = params.info_hash;
        let mut torrents = self
            .inner
            .torrents
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if torrents.contains_key(&info_hash) {
            return Err(Error::DuplicateTorrent(info_hash));
        }
        let disk = Disk::spawn(
            Arc::clone(&store),
            format!("bt-disk-{}", &info_hash.to_hex()[..8]),
        )
        .map_err(Error::Thread)?;
        let reader: peer::BlockReader = store;
        let (events_tx, events_rx) = mpsc::channel(EVENT_QUEUE);
        let (api_tx, api_rx) = mpsc::channel(API_QUEUE);
        let command_capacity = params.config.peer_command_capacity;
        let now = std::time::Instant::now();
        let mut proto = Torrent::new(now, params);
        let banned: Vec<std::net::IpAddr> = self
            .inner
            .shared
            .banned
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .copied()
            .collect();
        if !banned.is_empty() {
            proto.handle_event(now, Event::BanIps(banned));
        }
        proto.handle_event(now, Event::AddPeers(initial_peers));
        let (stats_tx, stats_rx) = watch::channel(proto.stats(now));
        let limits = [Arc::new(Bucket::new(0)), Arc::new(Bucket::new(0))];
        let shared = &self.inner.shared;
        let throttle = Throttle {
            down: [Arc::clone(&shared.down), Arc::clone(&limits[0])],
            up: [Arc::clone(&shared.up), Arc::clone(&limits[1])],
        };
        let route = Arc::new(IncomingRoute {
            events: events_tx.clone(),
            reader: Arc::clone(&reader),
            command_capacity,
            handshake: proto.handshake(),
            throttle: throttle.clone(),
        });
        let task = TorrentTask::new(TaskParts {
            proto,
            shared: Arc::clone(&self.inner.shared),
            disk,
            reader,
            command_capacity,
            events_tx,
            stats_tx,
            throttle,
        });
        let task = tokio::spawn(Box::new(task).run(events_rx, api_rx));
        let handle = TorrentHandle {
            limits,
            info_hash,
            api: api_tx,
            stats: stats_rx,
            download_dir,
        };
        torrents.insert(
            info_hash,
            Entry {
                handle: handle.clone(),
                route,
                task,
                announcer: None,
                dht: None,
            },
        );
        Ok(handle)
    }

    /// Who this session announces as.
    fn announcing(&self) -> Announcing {
        Announcing {
            peer_id: self.config.peer_id,
            port: self.local_addr.port(),
        }
    }

    /// An announcer for `handle`'s torrent on `tiers`, if the session announces and there
    /// are trackers.
    fn announcer(
        &self,
        handle: &TorrentHandle,
        tiers: bt_tracker::Tiers,
    ) -> Option<AnnouncerHandle> {
        match &self.config.announce {
            Some(config) if !tiers.is_empty() => Some(announce::spawn(
                handle.clone(),
                tiers,
                TrackerClient::default(),
                self.announcing(),
                config.clone(),
            )),
            _ => None,
        }
    }

    /// Announces the torrent to its trackers now, whatever their `min interval` says.
    pub fn reannounce(&self, info_hash: &InfoHash) -> Result<()> {
        let torrents = self
            .inner
            .torrents
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let entry = torrents
            .get(info_hash)
            .ok_or(Error::TorrentStopped(*info_hash))?;
        if let Some(a) = &entry.announcer {
            a.reannounce();
        }
        Ok(())
    }

    /// Announces the torrent to these tiers from now on: the trackers it leaves hear
    /// `stopped`, the new ones `started`.
    pub async fn set_trackers(&self, info_hash: &InfoHash, tiers: &[Vec<String>]) -> Result<()> {
        let (handle, old) = {
            let mut torrents = self
                .inner
                .torrents
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            let entry = torrents
                .get_mut(info_hash)
                .ok_or(Error::TorrentStopped(*info_hash))?;
            (entry.handle.clone(), entry.announcer.take())
        };
        if let Some(old) = old {
            old.shutdown().await;
        }
        let new = self.announcer(
            &handle,
            bt_tracker::Tiers::new(None, tiers, &mut rand::thread_rng()),
        );
        let mut torrents = self
            .inner
            .torrents
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        match torrents.get_mut(info_hash) {
            Some(entry) => entry.announcer = new,
            // Removed meanwhile: the new announcer stops with its handle.
            None => drop(new),
        }
        Ok(())
    }

    /// Bans these addresses in every torrent, now and for torrents added later.
    pub async fn ban_ips(&self, ips: &[std::net::IpAddr]) {
        self.inner
            .shared
            .banned
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend(ips.iter().copied());
        for handle in self.torrents() {
            let _ = handle.ban_ips(ips.to_vec()).await;
        }
    }

    /// Stops a torrent (saving its resume state) and takes it out of the session. Its
    /// files stay on disk.
    pub async fn remove_torrent(&self, info_hash: &InfoHash) -> Result<()> {
        let entry = {
            let mut torrents = self
                .inner
                .torrents
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            torrents.remove(info_hash)
        };
        let entry = entry.ok_or(Error::TorrentStopped(*info_hash))?;
        entry.stop().await;
        Ok(())
    }

    /// Stops every torrent (its trackers hear `stopped`, it saves its resume state), saves
    /// the DHT's routing table and closes the listening socket.
    pub async fn shutdown(self) {
        self.accept.abort();
        let entries: Vec<Entry> = {
            let mut torrents = self
                .inner
                .torrents
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            torrents.drain().map(|(_, e)| e).collect()
        };
        futures::future::join_all(entries.into_iter().map(Entry::stop)).await;
        if let Some(dht) = self.dht {
            dht.shutdown().await;
        }
    }
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("local_addr", &self.local_addr)
            .field("peer_id", &self.config.peer_id)
            .finish_non_exhaustive()
    }
}

/// Incoming connections still reading their handshake, oldest first, each with the
/// sender that tells it to give up.
#[derive(Default)]
struct Pending {
    next: u64,
    waiting: VecDeque<(u64, SocketAddr, oneshot::Sender<()>)>,
}

/// Accepts connections and routes each by the info-hash of its handshake.
///
/// At most [`MAX_PENDING_HANDSHAKES`] connections wait for their handshake at once; a new
/// one beyond that drops the oldest waiting one rather than being refused, so connections
/// that never finish their handshake cannot lock honest peers out until they time out.
async fn accept_loop(transport: Arc<dyn Transport>, inner: Arc<Inner>) {
    let pending = Arc::new(Mutex::new(Pending::default()));
    loop {
        let (stream, addr) = match transport.accept().await {
            Ok(conn) => {
                let remote = conn.remote;
                (conn, remote)
            }
            Err(e) => {
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                continue;
            }
        };
        let (evict_tx, evict_rx) = oneshot::channel::<()>();
        let id = {
            let mut p = pending.lock().unwrap_or_else(|e| e.into_inner());
            if p.waiting.len() >= MAX_PENDING_HANDSHAKES {
                if let Some((_, _, oldest)) = p.waiting.pop_front() {
                    let _ = oldest.send(());
                }
            }
            let id = p.next;
            p.next += 1;
            p.waiting.push_back((id, addr, evict_tx));
            id
        };
        let inner = Arc::clone(&inner);
        let pending = Arc::clone(&pending);
        tokio::spawn(async move {
            let lookup = |req2: &[u8; 20]| inner.find_obfuscated(req2);
            let read = tokio::select! {
                r = peer::read_incoming(stream, inner.shared.dialer.policy(), &lookup) => Some(r),
                _ = evict_rx => None,
            };
            {
                let mut p = pending.lock().unwrap_or_else(|e| e.into_inner());
                if let Some(pos) = p.waiting.iter().position(|(i, _, _)| *i == id) {
                    p.waiting.remove(pos);
                }
            }
            let (framed, theirs) = match read {
                Some(Ok(x)) => x,
                Some(Err(reason)) => {
                    tracing::debug!(peer = %addr, %reason, "incoming handshake failed");
                    return;
                }
                None => {
                    let reason = "too many pending handshakes: the oldest gave way";
                    tracing::debug!(peer = %addr, %reason, "incoming handshake failed");
                    return;
                }
            };
            let Some(route) = inner.route(&theirs.info_hash) else {
                let reason = Disconnect::UnknownTorrent(theirs.info_hash);
                tracing::debug!(peer = %addr, %reason, "incoming connection dropped");
                return;
            };
            let key = inner.shared.key();
            route.run(framed, theirs, addr, key).await;
        });
    }
}
