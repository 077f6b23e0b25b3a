//! The torrent actor: one task per torrent owns its picker, choker, per-peer state and
//! counters, and turns peer messages, disk results, timers and API calls into commands.
//!
//! # Ownership and ordering
//!
//! Everything mutable about a torrent lives in one `TorrentActor`, run by one task. It
//! receives, over bounded channels:
//!
//! - `PeerEvent`s from connections (handshake done, messages, blocks served, closed);
//! - `DiskResult`s from its disk worker (blocks written, piece hash verdicts, errors);
//! - `ApiCommand`s from [`TorrentHandle`]s (add peers, pause, shut down);
//! - its own one-second tick and the choker's rechoke timer.
//!
//! It never awaits a peer (commands go out with `try_send`; a full queue drops the peer)
//! and never blocks on the disk: blocks in flight to the disk are counted, and while
//! [`MAX_DISK_INFLIGHT`] are pending it stops reading peer events, which pushes back through
//! the peers' bounded event queue to their sockets.
//!
//! # One block, from request to disk
//!
//! 1. `TorrentActor::fill` asks the picker for up to `depth - outstanding` blocks for an
//!    unchoked peer we are interested in and sends them as one `Requests` command.
//! 2. The peer's reader decodes `piece` into a `Bytes` that shares its read buffer and
//!    forwards it in a batch.
//! 3. The actor checks the block was requested (a few stale ones are tolerated after
//!    cancels and timeouts), tells the picker, sends endgame `cancel`s, and hands the
//!    `Bytes` to the disk worker; when the piece's last block is in, it queues a hash check.
//! 4. The hash verdict comes back as a `DiskResult`: passed → `have` to every peer;
//!    failed → strikes against the peers that sent its blocks (a ban after
//!    [`BAN_ALONE_STRIKES`] pieces they sent alone or [`BAN_SHARED_STRIKES`] shared ones).

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bt_meta::{BlockInfo, Geometry, PieceIndex, BLOCK_LEN};
use bt_meta::{InfoHash, PeerId};
use bt_wire::{Handshake, Message};
use rand::rngs::StdRng;
use rand::SeedableRng;
use tokio::sync::{mpsc, oneshot, watch};

use crate::driver::disk::{Disk, DiskResult};
use crate::driver::peer::{self, BlockReader, Command, Connected, Disconnect, PeerEvent, Wiring};
use crate::proto::choker::{Choker, ChokerAction, ChokerConfig, ChokerEvent};
use crate::proto::extended::{self, ExtOutcome, PeerExtensions, TorrentExtensions};
use crate::proto::picker::{BlockReceived, PeerKey, Picker, PickerConfig};
use crate::proto::rate::RateMeter;

/// Blocks handed to the disk worker and not yet written, above which peer events wait
/// (2 MiB: two full vectored writes; memory in flight is this plus every peer's requests).
pub const MAX_DISK_INFLIGHT: usize = 128;
/// Verified pieces publish the torrent's stats at most this often (the tick does too).
const PIECE_PUBLISH_INTERVAL: Duration = Duration::from_millis(100);
/// Hash failures of pieces a peer sent alone before it is banned.
pub const BAN_ALONE_STRIKES: u32 = 2;
/// Hash failures of pieces a peer sent part of before it is banned.
pub const BAN_SHARED_STRIKES: u32 = 5;
/// Requests without any block in return for this long release them (the peer is snubbing).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// How often resume state is saved while downloading.
pub const RESUME_SAVE_INTERVAL: Duration = Duration::from_secs(30);
/// Most requests a peer may queue with us for upload.
pub const MAX_UPLOAD_QUEUE: u32 = 2048;
/// Requests for nothing we serve (while the peer is choked, or for pieces we lack) before it is dropped.
pub const MAX_IGNORED_REQUESTS: u32 = 2048;
/// Command queue slots kept free for control messages (`have`, `choke`, requests): uploads
/// and rejects are not queued into them.
pub const CONTROL_RESERVE: usize = 256;
/// Largest block a peer may request.
pub const MAX_REQUEST_LEN: u32 = BLOCK_LEN;
/// Request pipeline bounds per peer (blocks).
pub const MIN_QUEUE_DEPTH: usize = 16;
/// Request pipeline bounds per peer (blocks): 3 MiB, several milliseconds of data even at
/// 1 GiB/s, far above the bandwidth-delay product of loopback or a LAN; every requested
/// block may sit in memory until it is written, so this bounds the memory a peer costs.
/// Below the 500 or so requests common clients accept per peer (libtorrent, Transmission).
pub const MAX_QUEUE_DEPTH: usize = 192;
/// Longest wait before dialling a known address again.
pub const MAX_REDIAL_DELAY: Duration = Duration::from_secs(60);
/// At the connection limit, a peer useless for this long gives its slot to a new one.
pub const IDLE_EVICT_AFTER: Duration = Duration::from_secs(5);
/// Unrequested blocks tolerated from a peer before any cancel, choke or timeout explains one.
const BASE_STALE_BUDGET: u32 = 0;

/// Where a torrent stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TorrentState {
    /// Checking data already on disk.
    Checking,
    /// Fetching missing pieces.
    Downloading,
    /// Every wanted piece is verified and we keep serving peers.
    Seeding,
    /// Every wanted piece is verified; not seeding, so no peers are kept.
    Complete,
    /// Paused by the user: no peers.
    Paused,
    /// Stopped by an error (disk full, folder not writable, ...); verified data is intact.
    Error(String),
    /// Shut down.
    Stopped,
}

impl TorrentState {
    /// Whether every wanted piece is verified.
    pub fn is_complete(&self) -> bool {
        matches!(self, TorrentState::Seeding | TorrentState::Complete)
    }
}

/// A snapshot of a torrent's progress, published by its actor at least once a second.
#[derive(Clone, Debug)]
pub struct TorrentStats {
    /// The torrent.
    pub info_hash: InfoHash,
    /// Its name.
    pub name: String,
    /// Where it stands.
    pub state: TorrentState,
    /// Verified pieces.
    pub pieces_have: u32,
    /// Pieces in the torrent.
    pub pieces_total: u32,
    /// Bytes of verified pieces.
    pub bytes_have: u64,
    /// Total length of the torrent.
    pub total_len: u64,
    /// Piece payload received from peers (including duplicates and failed pieces).
    pub downloaded: u64,
    /// Piece payload sent to peers.
    pub uploaded: u64,
    /// Download rate, bytes per second.
    pub download_rate: u64,
    /// Upload rate, bytes per second.
    pub upload_rate: u64,
    /// Connected peers.
    pub peers: usize,
    /// Pieces that failed their hash check.
    pub hash_failures: u32,
    /// Peer IP addresses banned for sending bad data.
    pub banned: usize,
}

/// Settings for one torrent.
#[derive(Clone, Debug)]
pub struct TorrentConfig {
    /// Most connected peers for this torrent.
    pub max_peers: usize,
    /// Keep serving peers once complete.
    pub seed: bool,
    /// Choker settings.
    pub choker: ChokerConfig,
    /// Picker settings.
    pub picker: PickerConfig,
    /// Capacity of each peer's command queue.
    pub peer_command_capacity: usize,
}

impl Default for TorrentConfig {
    fn default() -> Self {
        TorrentConfig {
            max_peers: 200,
            seed: true,
            choker: ChokerConfig::default(),
            picker: PickerConfig::default(),
            peer_command_capacity: 1024 + MAX_UPLOAD_QUEUE as usize,
        }
    }
}

/// A request from a [`TorrentHandle`] to its actor.
#[derive(Debug)]
pub(crate) enum ApiCommand {
    /// Dial these addresses (a peer source: CLI `--peer`, trackers, DHT, PEX).
    AddPeers(Vec<SocketAddr>),
    /// Drop every peer and make no new connections.
    Pause,
    /// Undo [`ApiCommand::Pause`].
    Resume,
    /// Save resume state, close every peer, stop; answer when done.
    Shutdown(oneshot::Sender<()>),
}

/// What is shared by all torrents of a session.
#[derive(Debug)]
pub(crate) struct SessionShared {
    /// Our peer id.
    pub peer_id: PeerId,
    /// Next [`PeerKey`].
    pub next_key: AtomicU64,
    /// Connected peers over all torrents.
    pub peers: AtomicUsize,
    /// Most connected peers over all torrents.
    pub max_peers: usize,
    /// The DHT node, once one is attached: gets the nodes of peers' `port` messages.
    pub dht: std::sync::OnceLock<bt_dht::DhtNode>,
    /// Which connections are encrypted.
    pub encryption: crate::driver::encryption::EncryptionPolicy,
}

impl SessionShared {
    /// A fresh key for a connection.
    pub fn key(&self) -> PeerKey {
        PeerKey(self.next_key.fetch_add(1, Ordering::Relaxed))
    }
}

/// Controls one torrent of a [`Session`](crate::session::Session). Cheap to clone.
#[derive(Clone, Debug)]
pub struct TorrentHandle {
    pub(crate) info_hash: InfoHash,
    pub(crate) api: mpsc::Sender<ApiCommand>,
    pub(crate) stats: watch::Receiver<TorrentStats>,
    pub(crate) download_dir: PathBuf,
}

impl TorrentHandle {
    /// The torrent's info-hash.
    pub fn info_hash(&self) -> InfoHash {
        self.info_hash
    }

    /// The folder the torrent's files are stored under.
    pub fn download_dir(&self) -> &std::path::Path {
        &self.download_dir
    }

    /// The latest progress snapshot.
    pub fn stats(&self) -> TorrentStats {
        self.stats.borrow().clone()
    }

    /// Dials these peers (unless already connected, banned or over the limits).
    pub async fn add_peers(&self, addrs: Vec<SocketAddr>) -> crate::Result<()> {
        self.api
            .send(ApiCommand::AddPeers(addrs))
            .await
            .map_err(|_| crate::Error::TorrentStopped(self.info_hash))
    }

    /// Drops every peer and stops transferring until [`TorrentHandle::resume`].
    pub async fn pause(&self) -> crate::Result<()> {
        self.api
            .send(ApiCommand::Pause)
            .await
            .map_err(|_| crate::Error::TorrentStopped(self.info_hash))
    }

    /// Resumes a paused torrent.
    pub async fn resume(&self) -> crate::Result<()> {
        self.api
            .send(ApiCommand::Resume)
            .await
            .map_err(|_| crate::Error::TorrentStopped(self.info_hash))
    }

    /// Waits until every piece is verified, or the torrent fails or stops.
    pub async fn wait_complete(&self) -> crate::Result<TorrentStats> {
        let mut rx = self.stats.clone();
        let stats = rx
            .wait_for(|s| {
                s.state.is_complete()
                    || matches!(s.state, TorrentState::Error(_) | TorrentState::Stopped)
            })
            .await
            .map_err(|_| crate::Error::TorrentStopped(self.info_hash))?
            .clone();
        match &stats.state {
            TorrentState::Error(msg) => Err(crate::Error::TorrentFailed {
                info_hash: self.info_hash,
                reason: msg.clone(),
            }),
            TorrentState::Stopped => Err(crate::Error::TorrentStopped(self.info_hash)),
            _ => Ok(stats),
        }
    }

    /// A receiver that sees every published snapshot (for progress displays).
    pub fn subscribe(&self) -> watch::Receiver<TorrentStats> {
        self.stats.clone()
    }

    /// Saves resume state, closes every peer and stops the torrent.
    pub(crate) async fn shutdown(&self) {
        let (tx, rx) = oneshot::channel();
        if self.api.send(ApiCommand::Shutdown(tx)).await.is_ok() {
            let _ = rx.await;
        }
    }
}

/// Per-connection state kept by the actor.
struct PeerState {
    addr: SocketAddr,
    id: PeerId,
    fast: bool,
    /// We dialled it (its address is one to dial again if it drops).
    outgoing: bool,
    commands: mpsc::Sender<Command>,
    /// A message other than a keep-alive arrived (bitfields must come first).
    got_first: bool,
    peer_choking: bool,
    peer_interested: bool,
    am_interested: bool,
    /// The peer's pieces, one bit each, and how many are set.
    pieces: Vec<u8>,
    piece_count: u32,
    down: RateMeter,
    up: RateMeter,
    /// Last time a block arrived, or requests were first sent after a quiet spell.
    last_block_at: Instant,
    /// When the handshake finished.
    connected_at: Instant,
    /// The peer stopped answering requests: ask for one block at a time.
    snubbed: bool,
    /// Unrequested blocks still tolerated.
    stale_budget: u32,
    /// Blocks approved for upload and not yet reported served or dropped.
    upload_queued: u32,
    /// Requests ignored (while choked, or queue full) since the last unchoke.
    ignored_requests: u32,
    /// BEP 10 extensions: ut_metadata, ut_pex, the DHT `port`.
    ext: PeerExtensions,
}

impl PeerState {
    fn set(&mut self, piece: u32) {
        if let Some(b) = self.pieces.get_mut((piece / 8) as usize) {
            let mask = 0x80 >> (piece % 8);
            if *b & mask == 0 {
                *b |= mask;
                self.piece_count += 1;
            }
        }
    }
}

/// Strikes against an address for pieces that failed their hash check.
#[derive(Default, Clone, Copy)]
struct Strikes {
    alone: u32,
    shared: u32,
}

/// Everything needed to start a torrent actor.
pub(crate) struct ActorParts {
    pub info_hash: InfoHash,
    pub geometry: Geometry,
    pub config: TorrentConfig,
    pub shared: Arc<SessionShared>,
    pub disk: Disk,
    pub reader: BlockReader,
    pub have: Vec<bool>,
    pub initial_peers: Vec<SocketAddr>,
    pub events_tx: mpsc::Sender<PeerEvent>,
    pub events_rx: mpsc::Receiver<PeerEvent>,
    pub api_rx: mpsc::Receiver<ApiCommand>,
    pub stats_tx: watch::Sender<TorrentStats>,
    pub extensions: TorrentExtensions,
}

/// The state of one torrent and the loop that drives it; see the module documentation.
pub(crate) struct TorrentActor {
    info_hash: InfoHash,
    geometry: Geometry,
    config: TorrentConfig,
    shared: Arc<SessionShared>,
    picker: Picker,
    choker: Choker,
    peers: HashMap<PeerKey, PeerState>,
    disk: Disk,
    disk_inflight: usize,
    reader: BlockReader,
    events_tx: mpsc::Sender<PeerEvent>,
    stats_tx: watch::Sender<TorrentStats>,
    state: TorrentState,
    /// Addresses to dial when below the connection limits.
    candidates: VecDeque<SocketAddr>,
    connecting: HashSet<SocketAddr>,
    /// Addresses from peer sources, with failed attempts in a row, redialled with backoff.
    known: HashMap<SocketAddr, u32>,
    /// When to dial a known address again.
    redial: Vec<(Instant, SocketAddr)>,
    /// Addresses of peers banned for bad data: no connection from or to them.
    banned_ips: HashSet<IpAddr>,
    banned_ids: HashSet<PeerId>,
    strikes: HashMap<SocketAddr, Strikes>,
    down: RateMeter,
    up: RateMeter,
    hash_failures: u32,
    /// Bytes of verified pieces.
    bytes_have: u64,
    last_resume_save: Instant,
    /// When a verified piece last published the stats.
    last_piece_publish: Instant,
    /// Pieces verified since the resume state was last saved.
    unsaved_pieces: u32,
    /// What we offer through BEP 10 (metadata, PEX).
    ext: TorrentExtensions,
}

impl TorrentActor {
    /// Builds the actor: the picker learns which pieces are already verified.
    pub(crate) fn new(
        parts: ActorParts,
    ) -> (Self, mpsc::Receiver<PeerEvent>, mpsc::Receiver<ApiCommand>) {
        let now = Instant::now();
        let seed: u64 = rand::random();
        let mut picker = Picker::new(
            parts.geometry.clone(),
            parts.config.picker.clone(),
            StdRng::seed_from_u64(seed),
        );
        let mut bytes_have = 0;
        for (i, have) in parts.have.iter().enumerate() {
            let piece = PieceIndex(i as u32);
            if *have && picker.mark_have(piece).is_ok() {
                bytes_have += u64::from(parts.geometry.piece_len(piece).unwrap_or(0));
            }
        }
        let choker = Choker::new(
            parts.config.choker.clone(),
            now,
            StdRng::seed_from_u64(seed.wrapping_add(1)),
        );
        let mut actor = TorrentActor {
            info_hash: parts.info_hash,
            geometry: parts.geometry,
            config: parts.config,
            shared: parts.shared,
            picker,
            choker,
            peers: HashMap::new(),
            disk: parts.disk,
            disk_inflight: 0,
            reader: parts.reader,
            events_tx: parts.events_tx,
            stats_tx: parts.stats_tx,
            state: TorrentState::Downloading,
            candidates: VecDeque::new(),
            connecting: HashSet::new(),
            known: HashMap::new(),
            redial: Vec::new(),
            banned_ips: HashSet::new(),
            banned_ids: HashSet::new(),
            strikes: HashMap::new(),
            down: RateMeter::new(now),
            up: RateMeter::new(now),
            hash_failures: 0,
            bytes_have,
            last_resume_save: now,
            last_piece_publish: now,
            unsaved_pieces: 0,
            ext: parts.extensions,
        };
        if actor.picker.is_complete() {
            actor.become_complete();
        }
        actor.add_candidates(parts.initial_peers);
        actor.publish();
        (actor, parts.events_rx, parts.api_rx)
    }

    /// Runs until shut down.
    pub(crate) async fn run(
        mut self,
        mut events: mpsc::Receiver<PeerEvent>,
        mut api: mpsc::Receiver<ApiCommand>,
    ) {
        let mut tick = tokio::time::interval(Duration::from_millis(500));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        self.dial_candidates();
        self.publish();
        loop {
            let rechoke_at = self
                .choker
                .poll_timeout()
                .map(tokio::time::Instant::from_std)
                .unwrap_or_else(|| tokio::time::Instant::now() + Duration::from_secs(3600));
            tokio::select! {
                biased;
                cmd = api.recv() => match cmd {
                    Some(ApiCommand::Shutdown(done)) => {
                        self.stop(TorrentState::Stopped).await;
                        let _ = done.send(());
                        return;
                    }
                    Some(cmd) => self.handle_api(cmd),
                    None => {
                        self.stop(TorrentState::Stopped).await;
                        return;
                    }
                },
                Some(result) = self.disk.results.recv() => self.handle_disk(result),
                Some(ev) = events.recv(), if self.disk_inflight < MAX_DISK_INFLIGHT => {
                    self.handle_peer_event(ev);
                }
                _ = tick.tick() => self.handle_tick(),
                _ = tokio::time::sleep_until(rechoke_at) => {
                    self.choker.handle_timeout(Instant::now());
                    self.apply_choker();
                }
            }
        }
    }

    fn handle_api(&mut self, cmd: ApiCommand) {
        match cmd {
            ApiCommand::AddPeers(addrs) => {
                self.add_candidates(addrs);
                self.dial_candidates();
            }
            ApiCommand::Pause => {
                if matches!(
                    self.state,
                    TorrentState::Downloading | TorrentState::Seeding
                ) {
                    self.close_all(|| Disconnect::Shutdown);
                    self.state = TorrentState::Paused;
                    self.publish();
                }
            }
            ApiCommand::Resume => {
                if self.state == TorrentState::Paused {
                    self.state = if self.picker.is_complete() {
                        TorrentState::Seeding
                    } else {
                        TorrentState::Downloading
                    };
                    self.publish();
                    let known: Vec<SocketAddr> = self.known.keys().copied().collect();
                    self.add_candidates(known);
                    self.dial_candidates();
                }
            }
            ApiCommand::Shutdown(_) => {} // handled in `run`
        }
    }

    /// Addresses from a peer source: dialled now and again after they drop.
    fn add_candidates(&mut self, addrs: Vec<SocketAddr>) {
        for addr in addrs {
            if self.known.len() < 10_000 {
                self.known.entry(addr).or_insert(0);
            }
            if !self.candidates.contains(&addr) && self.candidates.len() < 10_000 {
                self.candidates.push_back(addr);
            }
        }
    }

    /// Schedules another dial of a known address that failed or dropped, with
    /// exponential backoff.
    fn schedule_redial(&mut self, addr: SocketAddr, reason: &Disconnect) {
        let hopeless = matches!(
            reason,
            Disconnect::Banned
                | Disconnect::HashFailures(_)
                | Disconnect::BothSeeds
                | Disconnect::Shutdown
                | Disconnect::SelfConnection
                | Disconnect::Duplicate(_)
                | Disconnect::WrongInfoHash { .. }
        );
        if hopeless || self.banned_ips.contains(&addr.ip()) || !self.active() {
            return;
        }
        let Some(attempts) = self.known.get_mut(&addr) else {
            return;
        };
        *attempts = attempts.saturating_add(1);
        let delay = Duration::from_secs(1 << (*attempts).min(6)).min(MAX_REDIAL_DELAY);
        if !self.redial.iter().any(|(_, a)| *a == addr) {
            self.redial.push((Instant::now() + delay, addr));
        }
    }

    /// Whether the torrent takes peers at all.
    fn active(&self) -> bool {
        matches!(
            self.state,
            TorrentState::Downloading | TorrentState::Seeding
        )
    }

    fn dial_candidates(&mut self) {
        if !self.active() {
            return;
        }
        self.make_room_to_dial();
        let ours = peer::our_handshake(self.info_hash, self.shared.peer_id, self.dht().is_some());
        while self.peers.len() + self.connecting.len() < self.config.max_peers
            && self.shared.peers.load(Ordering::Relaxed) + self.connecting.len()
                < self.shared.max_peers
        {
            let Some(addr) = self.candidates.pop_front() else {
                break;
            };
            if self.banned_ips.contains(&addr.ip())
                || self.connecting.contains(&addr)
                || self.peers.values().any(|p| p.addr == addr)
            {
                continue;
            }
            self.connecting.insert(addr);
            let events = self.events_tx.clone();
            let wiring = Wiring {
                key: self.shared.key(),
                events: self.events_tx.clone(),
                command_capacity: self.config.peer_command_capacity,
                reader: Arc::clone(&self.reader),
            };
            let encryption = self.shared.encryption;
            tokio::spawn(async move {
                match peer::dial(addr, ours, encryption).await {
                    Ok((framed, theirs)) => {
                        peer::run(framed, theirs, ours, addr, true, wiring).await
                    }
                    Err(reason) => {
                        let _ = events.send(PeerEvent::ConnectFailed { addr, reason }).await;
                    }
                }
            });
        }
    }

    fn handle_peer_event(&mut self, ev: PeerEvent) {
        match ev {
            PeerEvent::Connected(c) => self.handle_connected(*c),
            PeerEvent::Messages { key, msgs } => {
                if !self.peers.contains_key(&key) {
                    return;
                }
                let mut got_block = false;
                for msg in msgs {
                    got_block |= matches!(msg, Message::Piece { .. });
                    if let Err(reason) = self.handle_message(key, msg) {
                        self.disconnect(key, reason);
                        return;
                    }
                }
                if got_block {
                    self.fill(key);
                }
            }
            PeerEvent::Served {
                key,
                blocks,
                bytes,
                dropped,
            } => {
                let now = Instant::now();
                self.up.add(now, bytes);
                self.choker
                    .handle_event(now, ChokerEvent::Sent { peer: key, bytes });
                if let Some(p) = self.peers.get_mut(&key) {
                    p.up.add(now, bytes);
                    p.upload_queued = p.upload_queued.saturating_sub(blocks + dropped);
                }
            }
            PeerEvent::Closed { key, reason } => {
                if let Some(p) = self.peers.get(&key) {
                    tracing::debug!(torrent = %self.info_hash, peer = %p.addr, %reason, "peer disconnected");
                    if p.outgoing {
                        let addr = p.addr;
                        self.schedule_redial(addr, &reason);
                    }
                }
                self.remove_peer(key);
            }
            PeerEvent::ConnectFailed { addr, reason } => {
                tracing::debug!(torrent = %self.info_hash, peer = %addr, %reason, "connect failed");
                self.connecting.remove(&addr);
                self.schedule_redial(addr, &reason);
                self.dial_candidates();
            }
        }
    }

    fn handle_connected(&mut self, c: Connected) {
        if c.outgoing {
            self.connecting.remove(&c.addr);
        }
        let refuse = if !self.active() {
            Some(Disconnect::Shutdown)
        } else if self.banned_ips.contains(&c.addr.ip())
            || self.banned_ids.contains(&c.handshake.peer_id)
        {
            Some(Disconnect::Banned)
        } else if c.handshake.peer_id == self.shared.peer_id {
            Some(Disconnect::SelfConnection)
        } else if let Some((old, old_outgoing)) = self
            .peers
            .iter()
            .find(|(_, p)| p.id == c.handshake.peer_id)
            .map(|(k, p)| (*k, p.outgoing))
        {
            // Both sides dialled at once (after PEX, say): both keep the connection
            // dialled by the lower peer id, or they would each drop a different one.
            let new_by_lower = c.outgoing == (self.shared.peer_id < c.handshake.peer_id);
            if old_outgoing != c.outgoing && new_by_lower {
                self.disconnect(old, Disconnect::Duplicate(c.handshake.peer_id));
                None
            } else {
                Some(Disconnect::Duplicate(c.handshake.peer_id))
            }
        } else if (self.peers.len() >= self.config.max_peers
            || self.shared.peers.load(Ordering::Relaxed) >= self.shared.max_peers)
            && !self.evict_idle(c.addr)
        {
            Some(Disconnect::TooManyPeers)
        } else {
            None
        };
        if let Some(reason) = refuse {
            tracing::debug!(torrent = %self.info_hash, peer = %c.addr, %reason, "connection refused");
            if c.outgoing {
                self.schedule_redial(c.addr, &reason);
            }
            let _ = c.commands.try_send(Command::Close);
            return;
        }
        tracing::debug!(torrent = %self.info_hash, peer = %c.addr, id = %c.handshake.peer_id, outgoing = c.outgoing, "peer connected");
        if let Some(attempts) = self.known.get_mut(&c.addr) {
            *attempts = 0;
        }
        self.shared.peers.fetch_add(1, Ordering::Relaxed);
        let now = Instant::now();
        let fast = c.handshake.reserved.supports_fast();
        let num_pieces = self.geometry.num_pieces();
        self.peers.insert(
            c.key,
            PeerState {
                addr: c.addr,
                id: c.handshake.peer_id,
                fast,
                outgoing: c.outgoing,
                commands: c.commands,
                got_first: false,
                peer_choking: true,
                peer_interested: false,
                am_interested: false,
                pieces: vec![0; num_pieces.div_ceil(8) as usize],
                piece_count: 0,
                down: RateMeter::new(now),
                up: RateMeter::new(now),
                last_block_at: now,
                connected_at: now,
                snubbed: false,
                stale_budget: BASE_STALE_BUDGET,
                upload_queued: 0,
                ignored_requests: 0,
                ext: self.ext.new_peer(),
            },
        );
        self.picker.peer_have_none(c.key);
        self.choker.handle_event(now, ChokerEvent::Connected(c.key));
        let have = self.picker.num_have();
        let first = if fast && have == num_pieces {
            Some(Message::HaveAll)
        } else if fast && have == 0 {
            Some(Message::HaveNone)
        } else if have > 0 {
            Some(Message::Bitfield(self.picker.bitfield().into()))
        } else {
            None
        };
        if let Some(msg) = first {
            self.send(c.key, Command::Msg(msg));
        }
        if c.handshake.reserved.supports_extension_protocol() {
            let hs = self.ext.handshake(c.addr.ip());
            self.send(c.key, Command::Msg(hs));
        }
        if let (true, Some(node)) = (c.handshake.reserved.supports_dht(), self.dht()) {
            let port = node.local_addr().port();
            self.send(c.key, Command::Msg(Message::Port(port)));
        }
    }

    /// At the connection limit, makes room for a new connection by closing the oldest
    /// peer that has been useless for [`IDLE_EVICT_AFTER`]: neither side interested, no
    /// requests either way. Connections that hold slots without doing anything (a flood of
    /// handshakes, say) so cannot lock honest peers out. Whether one was closed.
    fn evict_idle(&mut self, for_addr: SocketAddr) -> bool {
        let now = Instant::now();
        let victim = self
            .peers
            .iter()
            .filter(|(k, p)| {
                !p.peer_interested
                    && !p.am_interested
                    && p.upload_queued == 0
                    && now.duration_since(p.connected_at) >= IDLE_EVICT_AFTER
                    && self.picker.outstanding(**k).is_empty()
            })
            .min_by_key(|(_, p)| p.connected_at)
            .map(|(k, p)| (*k, p.addr));
        let Some((key, addr)) = victim else {
            return false;
        };
        tracing::debug!(torrent = %self.info_hash, peer = %addr, new = %for_addr, "idle peer evicted to make room");
        self.disconnect(key, Disconnect::TooManyPeers);
        true
    }

    /// At the connection limit with an address waiting to be dialled, closes one idle peer
    /// (see [`TorrentActor::evict_idle`]): idle connections (incoming ones above all) so
    /// cannot keep a downloading torrent from reaching the peers its sources found.
    fn make_room_to_dial(&mut self) {
        let at_limit = self.peers.len() >= self.config.max_peers
            || self.shared.peers.load(Ordering::Relaxed) >= self.shared.max_peers;
        if !at_limit || !self.connecting.is_empty() {
            return;
        }
        // Addresses the dial loop would skip anyway go first.
        while let Some(addr) = self.candidates.front().copied() {
            if self.banned_ips.contains(&addr.ip()) || self.peers.values().any(|p| p.addr == addr) {
                self.candidates.pop_front();
            } else {
                self.evict_idle(addr);
                return;
            }
        }
    }

    /// The DHT node, unless there is none or the torrent is private (BEP 27).
    fn dht(&self) -> Option<&bt_dht::DhtNode> {
        if self.ext.private {
            return None;
        }
        self.shared.dht.get()
    }

    /// A peer's `port` message: its DHT node is worth a ping (once per connection).
    fn handle_dht_port(&mut self, key: PeerKey, port: u16) {
        let Some(node) = self.dht().cloned() else {
            return;
        };
        let Some(p) = self.peers.get_mut(&key) else {
            return;
        };
        if port == 0 || !p.ext.take_dht_port() {
            return;
        }
        let addr = SocketAddr::new(p.addr.ip(), port);
        tokio::spawn(async move {
            let _ = node.add_node(addr).await;
        });
    }

    /// An extended message: answered (ut_metadata), or peers learned (ut_pex).
    fn handle_extended(&mut self, key: PeerKey, id: u8, payload: &bytes::Bytes, now: Instant) {
        let Some(p) = self.peers.get_mut(&key) else {
            return;
        };
        match p.ext.handle(&self.ext, now, id, payload) {
            ExtOutcome::Nothing => {}
            ExtOutcome::Reply(msg) => self.send(key, Command::Msg(msg)),
            ExtOutcome::Peers(addrs) => {
                tracing::debug!(torrent = %self.info_hash, from = %p.addr, peers = addrs.len(), "peers from pex");
                if self.active() {
                    self.add_candidates(addrs);
                    self.dial_candidates();
                }
            }
        }
    }

    /// Sends the PEX messages that are due: each peer hears of the others by listen
    /// address.
    fn send_pex(&mut self, now: Instant) {
        let due: Vec<PeerKey> = self
            .peers
            .iter()
            .filter(|(_, p)| p.ext.pex_due(&self.ext, now))
            .map(|(k, _)| *k)
            .collect();
        if due.is_empty() {
            return;
        }
        let num_pieces = self.geometry.num_pieces();
        let all: Vec<(PeerKey, bt_wire::extension::PexPeer)> = self
            .peers
            .iter()
            .filter_map(|(k, p)| {
                let listen = p.ext.listen_addr(p.addr, p.outgoing)?;
                let seed = p.piece_count == num_pieces;
                Some((*k, extended::pex_peer(listen, p.outgoing, seed)))
            })
            .collect();
        for key in due {
            let others: Vec<_> = all
                .iter()
                .filter(|(k, _)| *k != key)
                .map(|(_, p)| *p)
                .collect();
            let Some(p) = self.peers.get_mut(&key) else {
                continue;
            };
            if let Some(msg) = p.ext.poll_pex(&self.ext, now, &others) {
                self.send(key, Command::Msg(msg));
            }
        }
    }

    /// Handles one message; an error disconnects the peer.
    fn handle_message(&mut self, key: PeerKey, msg: Message) -> Result<(), Disconnect> {
        let num_pieces = self.geometry.num_pieces();
        let now = Instant::now();
        let Some(p) = self.peers.get_mut(&key) else {
            return Ok(());
        };
        tracing::trace!(peer = %p.addr, msg = ?msg, "message");
        // The bitfield (or have all / have none) comes before any other message of the
        // base protocol; extension messages (BEP 10 handshake first of all) may precede it.
        let first = !p.got_first
            && !matches!(
                msg,
                Message::KeepAlive
                    | Message::Extended { .. }
                    | Message::Port(_)
                    | Message::Unknown { .. }
                    | Message::AllowedFast { .. }
                    | Message::Suggest { .. }
            );
        if first {
            p.got_first = true;
        }
        match msg {
            Message::KeepAlive | Message::Suggest { .. } => {}
            Message::AllowedFast { .. } => {}
            Message::Unknown { id, payload } => {
                // BEP 3: messages of unknown ids are ignored, not fatal.
                tracing::debug!(peer = %p.addr, id, len = payload.len(), "unknown message ignored");
            }
            Message::Port(port) => self.handle_dht_port(key, port),
            Message::Extended { id, payload } => self.handle_extended(key, id, &payload, now),
            Message::Choke => {
                p.peer_choking = true;
                let released = self.picker.peer_choked(key);
                if let Some(p) = self.peers.get_mut(&key) {
                    p.stale_budget = p.stale_budget.saturating_add(released.len() as u32);
                }
                if !released.is_empty() {
                    self.fill_all();
                }
            }
            Message::Unchoke => {
                p.peer_choking = false;
                p.last_block_at = now;
                self.fill(key);
            }
            Message::Interested => {
                p.peer_interested = true;
                self.choker.handle_event(now, ChokerEvent::Interested(key));
                self.apply_choker();
            }
            Message::NotInterested => {
                p.peer_interested = false;
                self.choker
                    .handle_event(now, ChokerEvent::NotInterested(key));
                self.apply_choker();
            }
            Message::Have { index } => {
                if index >= num_pieces {
                    return Err(Disconnect::PieceOutOfRange {
                        msg: "have",
                        index,
                        num_pieces,
                    });
                }
                p.set(index);
                // ok to ignore: the index was range-checked above
                let _ = self.picker.peer_have(key, PieceIndex(index));
                self.after_peer_pieces(key)?;
            }
            Message::Bitfield(bits) => {
                // BEP 3 wants it first, but some clients (aria2) send it again later; it
                // replaces what we knew, checked as strictly as the first one.
                if !first {
                    tracing::debug!(peer = %p.addr, "late bitfield accepted");
                }
                self.picker
                    .peer_bitfield(key, &bits)
                    .map_err(|e| Disconnect::BadBitfield(e.to_string()))?;
                let count = bits.iter().map(|b| b.count_ones()).sum();
                p.pieces.copy_from_slice(&bits); // ok: the picker checked the length
                p.piece_count = count;
                self.after_peer_pieces(key)?;
            }
            Message::HaveAll | Message::HaveNone => {
                let name = if msg == Message::HaveAll {
                    "have all"
                } else {
                    "have none"
                };
                if !p.fast {
                    return Err(Disconnect::FastNotNegotiated(name));
                }
                if !first {
                    tracing::debug!(peer = %p.addr, msg = name, "late message accepted");
                }
                // A late `have none` does not take back pieces the peer announced.
                if msg == Message::HaveAll {
                    p.pieces.fill(0xff);
                    let spare = p.pieces.len() as u32 * 8 - num_pieces;
                    if let Some(last) = p.pieces.last_mut() {
                        *last &= 0xffu8 << spare;
                    }
                    p.piece_count = num_pieces;
                    self.picker.peer_have_all(key);
                }
                self.after_peer_pieces(key)?;
            }
            Message::Request(req) => self.handle_request(key, req)?,
            Message::Cancel(req) => {
                self.send(key, Command::CancelServe(req));
            }
            Message::RejectRequest(req) => {
                if !p.fast {
                    return Err(Disconnect::FastNotNegotiated("reject request"));
                }
                if self.picker.request_released(key, req) {
                    // Give the block to someone else; this peer is topped up later.
                    self.fill_others(key);
                }
            }
            Message::Piece { index, begin, data } => {
                self.handle_block(key, index, begin, data, now)?;
            }
        }
        Ok(())
    }

    /// After the peer's bitfield or a `have`: update interest, drop seed-to-seed links.
    fn after_peer_pieces(&mut self, key: PeerKey) -> Result<(), Disconnect> {
        let num_pieces = self.geometry.num_pieces();
        if let Some(p) = self.peers.get(&key) {
            if p.piece_count == num_pieces
                && self.picker.is_complete()
                && self.picker.num_have() == num_pieces
            {
                return Err(Disconnect::BothSeeds);
            }
        }
        self.update_interest(key);
        Ok(())
    }

    fn handle_request(&mut self, key: PeerKey, req: BlockInfo) -> Result<(), Disconnect> {
        let num_pieces = self.geometry.num_pieces();
        if req.piece.0 >= num_pieces {
            return Err(Disconnect::PieceOutOfRange {
                msg: "request",
                index: req.piece.0,
                num_pieces,
            });
        }
        let piece_len = self.geometry.piece_len(req.piece).unwrap_or(0);
        let in_range = req.len > 0
            && req.len <= MAX_REQUEST_LEN
            && u64::from(req.begin) + u64::from(req.len) <= u64::from(piece_len);
        if !in_range {
            return Err(Disconnect::InvalidBlock {
                msg: "request",
                index: req.piece.0,
                begin: req.begin,
                length: req.len,
            });
        }
        let unchoked = self.choker.is_unchoked(key);
        let have = self.picker.has_piece(req.piece);
        let Some(p) = self.peers.get_mut(&key) else {
            return Ok(());
        };
        // Serves and rejects never take the command slots kept for control messages:
        // a peer that requests faster than it reads waits, it is not dropped as slow.
        let room = p.commands.capacity();
        if !unchoked || !have || p.upload_queued >= MAX_UPLOAD_QUEUE || room <= CONTROL_RESERVE {
            // A full queue is the peer's pipeline outrunning our disk; only requests we
            // could never serve count towards a flood.
            if !unchoked || !have {
                p.ignored_requests += 1;
                if p.ignored_requests > MAX_IGNORED_REQUESTS {
                    return Err(Disconnect::RequestFlood(p.ignored_requests));
                }
            }
            if p.fast && room > CONTROL_RESERVE {
                self.send(key, Command::Msg(Message::RejectRequest(req)));
            }
            return Ok(());
        }
        p.upload_queued += 1;
        self.send(key, Command::Serve(req));
        Ok(())
    }

    fn handle_block(
        &mut self,
        key: PeerKey,
        index: u32,
        begin: u32,
        data: bytes::Bytes,
        now: Instant,
    ) -> Result<(), Disconnect> {
        let len = u32::try_from(data.len()).unwrap_or(u32::MAX);
        let block = BlockInfo {
            piece: PieceIndex(index),
            begin,
            len,
        };
        let unrequested = || Disconnect::UnrequestedBlock {
            index,
            begin,
            length: len,
        };
        if !self.geometry.is_valid_block(&block) {
            return Err(unrequested());
        }
        let requested = self.picker.outstanding(key).contains(&block);
        let Some(p) = self.peers.get_mut(&key) else {
            return Ok(());
        };
        if !requested {
            if p.stale_budget == 0 {
                return Err(unrequested());
            }
            p.stale_budget -= 1;
        }
        let bytes = u64::from(len);
        p.down.add(now, bytes);
        p.last_block_at = now;
        p.snubbed = false;
        self.down.add(now, bytes);
        self.choker
            .handle_event(now, ChokerEvent::Received { peer: key, bytes });
        let received = match self.picker.block_received(key, block) {
            Ok(r) => r,
            Err(_) => return Err(unrequested()),
        };
        if let BlockReceived::New {
            piece_complete,
            cancels,
        } = received
        {
            for (other, b) in cancels {
                if let Some(o) = self.peers.get_mut(&other) {
                    o.stale_budget = o.stale_budget.saturating_add(1);
                }
                self.send(other, Command::Msg(Message::Cancel(b)));
            }
            self.disk_inflight += 1;
            self.disk.write(index, begin, data);
            if piece_complete {
                self.disk.hash(index);
            }
        }
        Ok(())
    }

    fn handle_disk(&mut self, result: DiskResult) {
        match result {
            DiskResult::Written(n) => self.disk_inflight = self.disk_inflight.saturating_sub(n),
            DiskResult::Hashed { piece, ok: true } => {
                if self.picker.hash_passed(PieceIndex(piece)).is_err() {
                    return;
                }
                self.unsaved_pieces += 1;
                self.bytes_have +=
                    u64::from(self.geometry.piece_len(PieceIndex(piece)).unwrap_or(0));
                let keys: Vec<PeerKey> = self.peers.keys().copied().collect();
                for key in &keys {
                    // A peer that has the piece (a seed above all) gains nothing from it.
                    if !self.picker.peer_has(*key, PieceIndex(piece)) {
                        self.send(*key, Command::Msg(Message::Have { index: piece }));
                    }
                }
                for key in keys {
                    self.update_interest(key);
                }
                if self.picker.is_complete() {
                    self.become_complete();
                } else {
                    // At most 10 times a second; the tick publishes the rest.
                    let now = Instant::now();
                    if now.duration_since(self.last_piece_publish) >= PIECE_PUBLISH_INTERVAL {
                        self.last_piece_publish = now;
                        self.publish();
                    }
                }
            }
            DiskResult::Hashed { piece, ok: false } => {
                self.hash_failures += 1;
                let Ok(contributors) = self.picker.hash_failed(PieceIndex(piece)) else {
                    return;
                };
                tracing::info!(torrent = %self.info_hash, piece, peers = contributors.len(), "piece failed its hash check");
                let alone = contributors.len() == 1;
                for key in contributors {
                    let Some(addr) = self.peers.get(&key).map(|p| p.addr) else {
                        continue;
                    };
                    let s = self.strikes.entry(addr).or_default();
                    if alone {
                        s.alone += 1;
                    } else {
                        s.shared += 1;
                    }
                    let s = *s;
                    if s.alone >= BAN_ALONE_STRIKES || s.shared >= BAN_SHARED_STRIKES {
                        self.ban(key, s.alone + s.shared);
                    }
                }
                self.fill_all();
            }
            DiskResult::Failed(err) => {
                tracing::error!(torrent = %self.info_hash, error = %err, "storage failed; torrent stopped");
                // A full disk already reads "disk full writing piece N to <path>: ...".
                let msg = err.to_string();
                self.close_all(|| Disconnect::Shutdown);
                self.state = TorrentState::Error(msg);
                self.publish();
            }
        }
    }

    fn ban(&mut self, key: PeerKey, strikes: u32) {
        if let Some(p) = self.peers.get(&key) {
            tracing::warn!(torrent = %self.info_hash, peer = %p.addr, id = %p.id, strikes, "banning peer for bad data");
            self.banned_ips.insert(p.addr.ip());
            self.banned_ids.insert(p.id);
        }
        self.disconnect(key, Disconnect::HashFailures(strikes));
    }

    fn become_complete(&mut self) {
        let now = Instant::now();
        self.choker.handle_event(now, ChokerEvent::Seeding(true));
        if self.config.seed {
            self.state = TorrentState::Seeding;
            let seeds: Vec<PeerKey> = self
                .peers
                .iter()
                .filter(|(_, p)| p.piece_count == self.geometry.num_pieces())
                .map(|(k, _)| *k)
                .collect();
            for key in seeds {
                self.disconnect(key, Disconnect::BothSeeds);
            }
        } else {
            self.state = TorrentState::Complete;
            self.close_all(|| Disconnect::Shutdown);
        }
        self.save_resume();
        self.publish();
    }

    fn handle_tick(&mut self) {
        let now = Instant::now();
        // Requests that went unanswered: give them to other peers.
        let mut timed_out = Vec::new();
        for (key, p) in &self.peers {
            if !p.snubbed
                && now.duration_since(p.last_block_at) > REQUEST_TIMEOUT
                && !self.picker.outstanding(*key).is_empty()
            {
                timed_out.push(*key);
            }
        }
        for key in timed_out {
            let released = self.picker.peer_choked(key);
            if let Some(p) = self.peers.get_mut(&key) {
                tracing::debug!(torrent = %self.info_hash, peer = %p.addr, blocks = released.len(), "requests timed out");
                p.snubbed = true;
                p.stale_budget = p.stale_budget.saturating_add(released.len() as u32);
            }
        }
        self.fill_all();
        let (due, later) = std::mem::take(&mut self.redial)
            .into_iter()
            .partition::<Vec<_>, _>(|(at, _)| *at <= now);
        self.redial = later;
        for (_, addr) in due {
            if !self.candidates.contains(&addr) {
                self.candidates.push_back(addr);
            }
        }
        self.dial_candidates();
        if self.active() {
            self.send_pex(now);
        }
        if self.unsaved_pieces > 0
            && now.duration_since(self.last_resume_save) >= RESUME_SAVE_INTERVAL
        {
            self.save_resume();
        }
        self.publish();
    }

    fn save_resume(&mut self) {
        self.last_resume_save = Instant::now();
        self.unsaved_pieces = 0;
        let pieces: Vec<bool> = (0..self.geometry.num_pieces())
            .map(|i| self.picker.has_piece(PieceIndex(i)))
            .collect();
        self.disk.save_resume(pieces);
    }

    fn publish(&mut self) {
        let now = Instant::now();
        let (download_rate, upload_rate) = (self.down.rate(now), self.up.rate(now));
        let state = self.state.clone();
        self.stats_tx.send_modify(|s| {
            s.state = state;
            s.pieces_have = self.picker.num_have();
            s.bytes_have = self.bytes_have;
            s.downloaded = self.down.total();
            s.uploaded = self.up.total();
            s.download_rate = download_rate;
            s.upload_rate = upload_rate;
            s.peers = self.peers.len();
            s.hash_failures = self.hash_failures;
            s.banned = self.banned_ips.len();
        });
    }

    /// Sends `interested` / `not interested` if the picker's view changed.
    fn update_interest(&mut self, key: PeerKey) {
        let want = self.picker.is_interesting(key);
        let Some(p) = self.peers.get_mut(&key) else {
            return;
        };
        if want == p.am_interested {
            if want {
                self.fill(key);
            }
            return;
        }
        p.am_interested = want;
        let now = Instant::now();
        if want {
            self.choker
                .handle_event(now, ChokerEvent::AmInterested(key));
            self.send(key, Command::Msg(Message::Interested));
            self.fill(key);
        } else {
            self.choker
                .handle_event(now, ChokerEvent::AmNotInterested(key));
            self.send(key, Command::Msg(Message::NotInterested));
        }
    }

    /// How many requests to keep outstanding with a peer: about one second of its measured
    /// rate (bandwidth-delay product), within [`MIN_QUEUE_DEPTH`]..=[`MAX_QUEUE_DEPTH`].
    fn queue_depth(p: &mut PeerState, now: Instant) -> usize {
        if p.snubbed {
            return 1;
        }
        let per_sec = p.down.rate(now) / u64::from(BLOCK_LEN);
        (per_sec as usize).clamp(MIN_QUEUE_DEPTH, MAX_QUEUE_DEPTH)
    }

    /// Tops up the request pipeline of one peer.
    fn fill(&mut self, key: PeerKey) {
        if self.state != TorrentState::Downloading {
            return;
        }
        let now = Instant::now();
        let Some(p) = self.peers.get_mut(&key) else {
            return;
        };
        if p.peer_choking || !p.am_interested {
            return;
        }
        let depth = Self::queue_depth(p, now);
        let outstanding = self.picker.outstanding(key).len();
        // Small top-ups cost a command each; wait until a few slots are free.
        let min_batch = (depth / 8).clamp(1, 16);
        if outstanding + min_batch > depth {
            return;
        }
        let blocks = self.picker.pick_blocks(key, depth - outstanding);
        if blocks.is_empty() {
            return;
        }
        if outstanding == 0 {
            p.last_block_at = now;
        }
        self.send(key, Command::Requests(blocks));
    }

    fn fill_all(&mut self) {
        let keys: Vec<PeerKey> = self.peers.keys().copied().collect();
        for key in keys {
            self.fill(key);
        }
    }

    fn fill_others(&mut self, except: PeerKey) {
        let keys: Vec<PeerKey> = self
            .peers
            .keys()
            .copied()
            .filter(|k| *k != except)
            .collect();
        for key in keys {
            self.fill(key);
        }
    }

    fn apply_choker(&mut self) {
        while let Some(action) = self.choker.poll_action() {
            match action {
                ChokerAction::Choke(key) => self.send(key, Command::Choke),
                ChokerAction::Unchoke(key) => {
                    if let Some(p) = self.peers.get_mut(&key) {
                        p.ignored_requests = 0;
                    }
                    self.send(key, Command::Msg(Message::Unchoke));
                }
            }
        }
    }

    /// Queues a command for a peer's writer; a full queue drops the peer.
    fn send(&mut self, key: PeerKey, cmd: Command) {
        let Some(p) = self.peers.get(&key) else {
            return;
        };
        match p.commands.try_send(cmd) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(_)) => self.disconnect(key, Disconnect::Slow),
            Err(mpsc::error::TrySendError::Closed(_)) => self.remove_peer(key),
        }
    }

    /// Closes a connection for `reason` and forgets it.
    fn disconnect(&mut self, key: PeerKey, reason: Disconnect) {
        if let Some(p) = self.peers.get(&key) {
            tracing::debug!(torrent = %self.info_hash, peer = %p.addr, %reason, "disconnecting peer");
            let _ = p.commands.try_send(Command::Close);
            if p.outgoing {
                let addr = p.addr;
                self.schedule_redial(addr, &reason);
            }
        }
        self.remove_peer(key);
    }

    fn remove_peer(&mut self, key: PeerKey) {
        if self.peers.remove(&key).is_none() {
            return;
        }
        self.shared.peers.fetch_sub(1, Ordering::Relaxed);
        let had_requests = !self.picker.outstanding(key).is_empty();
        self.picker.peer_disconnected(key);
        self.choker
            .handle_event(Instant::now(), ChokerEvent::Disconnected(key));
        self.apply_choker();
        if had_requests {
            self.fill_all();
        }
    }

    fn close_all(&mut self, reason: impl Fn() -> Disconnect) {
        let keys: Vec<PeerKey> = self.peers.keys().copied().collect();
        for key in keys {
            self.disconnect(key, reason());
        }
        self.candidates.clear();
        self.redial.clear();
    }

    /// Closes every peer, waits for the disk worker to finish, saves resume state.
    async fn stop(&mut self, state: TorrentState) {
        self.close_all(|| Disconnect::Shutdown);
        let pieces: Vec<bool> = (0..self.geometry.num_pieces())
            .map(|i| self.picker.has_piece(PieceIndex(i)))
            .collect();
        self.disk.finish(pieces).await;
        if !matches!(self.state, TorrentState::Error(_)) {
            self.state = state;
        }
        self.publish();
    }
}

/// Runs an incoming connection whose handshake named this torrent.
pub(crate) struct IncomingRoute {
    /// The torrent's event queue.
    pub events: mpsc::Sender<PeerEvent>,
    /// Reads blocks to upload.
    pub reader: BlockReader,
    /// Capacity of each peer's command queue.
    pub command_capacity: usize,
    /// BEP 27: the DHT bit stays off in our handshake.
    pub private: bool,
}

impl IncomingRoute {
    /// Answers the handshake and runs the connection.
    pub(crate) async fn run(
        &self,
        mut framed: peer::HandshakenStream,
        theirs: Handshake,
        ours: Handshake,
        addr: SocketAddr,
        key: PeerKey,
    ) {
        if let Err(reason) = peer::answer(&mut framed, ours).await {
            tracing::debug!(peer = %addr, %reason, "incoming handshake failed");
            return;
        }
        let wiring = Wiring {
            key,
            events: self.events.clone(),
            command_capacity: self.command_capacity,
            reader: Arc::clone(&self.reader),
        };
        peer::run(framed, theirs, ours, addr, false, wiring).await;
    }
}
