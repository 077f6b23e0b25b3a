//! [`Torrent`]: one torrent's decisions, as a sans-I/O state machine.
//!
//! It owns the torrent's [`Picker`], [`Choker`], per-peer protocol state ([`PeerState`]),
//! address book ([`PeerBook`]: dials, redial backoff, bans), rate meters and PEX state.
//! The driver feeds it [`Event`]s (a connection finished its handshake, messages arrived,
//! blocks were served, the disk wrote or hashed something, a peer source found
//! addresses) with [`Torrent::handle_event`], calls [`Torrent::handle_timeout`] when
//! [`Torrent::poll_timeout`] comes due, and carries out every [`Action`] from
//! [`Torrent::poll_action`]: dial, send a [`Command`] to a connection, close one, write or
//! hash on the disk, save resume state, publish the stats.
//!
//! # One block, from request to disk
//!
//! 1. `Torrent::fill` asks the picker for up to `depth - outstanding` blocks for an
//!    unchoked peer we are interested in and sends them as one [`Command::Requests`].
//! 2. The `piece` message comes back as an [`Event::Messages`]; the block is checked
//!    against what was requested (a few stale ones are tolerated after cancels and
//!    timeouts), the picker is told, endgame duplicates are cancelled, and the data goes
//!    out as [`Action::Write`]; when the piece's last block is in, [`Action::Hash`].
//! 3. The verdict comes back as [`Event::Hashed`]: passed, `have` goes to every peer that
//!    lacks the piece; failed, the peers that sent its blocks get strikes (a ban after
//!    [`BAN_ALONE_STRIKES`] pieces they sent alone or [`BAN_SHARED_STRIKES`] shared ones).
//!
//! # Rules
//!
//! - Time is the `now` of each call; randomness comes from [`TorrentParams::rng_seed`].
//! - A peer that breaks the protocol is disconnected with a [`Disconnect`] reason; it is
//!   never an error of the torrent.
//! - Writes to the disk are counted: while [`MAX_DISK_INFLIGHT`] blocks are unwritten,
//!   [`Torrent::wants_peer_events`] is false and the driver stops reading peer events.

use core::net::SocketAddr;
use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bt_meta::{BlockInfo, Geometry, InfoHash, PeerId, PieceIndex, BLOCK_LEN};
use bt_wire::{Handshake, Message};
use bytes::Bytes;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::SeedableRng;

use crate::proto::choker::{Choker, ChokerAction, ChokerConfig, ChokerEvent};
use crate::proto::disconnect::Disconnect;
use crate::proto::extended::{self, ExtOutcome, TorrentExtensions};
use crate::proto::peer::PeerState;
use crate::proto::peer_book::PeerBook;
pub use crate::proto::peer_book::{BAN_ALONE_STRIKES, BAN_SHARED_STRIKES, MAX_REDIAL_DELAY};
use crate::proto::picker::{BlockReceived, Picker, PickerConfig, Priority};
use crate::proto::rate::RateMeter;
use crate::proto::PeerKey;

/// Blocks handed to the disk and not yet written, above which peer events wait (2 MiB:
/// two full vectored writes; memory in flight is this plus every peer's requests).
pub const MAX_DISK_INFLIGHT: usize = 128;
/// How often the torrent looks at its peers (request timeouts, redials, PEX, resume
/// saves, stats).
pub const TICK: Duration = Duration::from_millis(500);
/// Verified pieces publish the torrent's stats at most this often (the tick does too).
const PIECE_PUBLISH_INTERVAL: Duration = Duration::from_millis(100);
/// Requests without any block in return for this long release them (the peer is snubbing).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// How often resume state is saved while downloading.
pub const RESUME_SAVE_INTERVAL: Duration = Duration::from_secs(30);
/// Most requests a peer may queue with us for upload.
pub const MAX_UPLOAD_QUEUE: u32 = 2048;
/// Requests for nothing we serve (while the peer is choked, or for pieces we lack) before it is dropped.
pub const MAX_IGNORED_REQUESTS: u32 = 2048;
/// Largest block a peer may request.
pub const MAX_REQUEST_LEN: u32 = BLOCK_LEN;
/// At the connection limit, a peer useless for this long gives its slot to a new one.
pub const IDLE_EVICT_AFTER: Duration = Duration::from_secs(5);
/// Pieces a super-seeding torrent has offered a peer it unchokes and not seen it
/// announce, at most.
pub const SUPER_SEED_OFFERS: usize = 2;
/// Pieces of the offer order a super-seed looks at to choose one offer.
const OFFER_LOOKAHEAD: usize = 1024;

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
    Error(TorrentError),
    /// Shut down.
    Stopped,
}

impl TorrentState {
    /// Whether every wanted piece is verified.
    pub fn is_complete(&self) -> bool {
        matches!(self, TorrentState::Seeding | TorrentState::Complete)
    }
}

/// Why a torrent stopped by itself. Data already verified stays intact.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TorrentError {
    /// The disk is full (or a quota is reached); the message names the file and piece.
    #[error("{0}")]
    DiskFull(String),
    /// Reading or writing the torrent's data failed otherwise.
    #[error("{0}")]
    Storage(String),
}

/// A snapshot of a torrent's progress.
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

/// One connected peer, as a status display shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerSummary {
    /// Its address.
    pub addr: SocketAddr,
    /// Its peer id (the client's name is usually in it).
    pub id: PeerId,
    /// Pieces it has announced.
    pub pieces: u32,
    /// Payload it sends us, bytes per second.
    pub download_rate: u64,
    /// Payload we send it, bytes per second.
    pub upload_rate: u64,
    /// Payload received from it.
    pub downloaded: u64,
    /// Payload sent to it.
    pub uploaded: u64,
    /// We want pieces it has.
    pub am_interested: bool,
    /// We let it request.
    pub am_unchoked: bool,
    /// It wants pieces we have.
    pub peer_interested: bool,
    /// It lets us request.
    pub peer_unchoked: bool,
    /// We dialled it.
    pub outgoing: bool,
    /// It sent us nothing for a while though we asked.
    pub snubbed: bool,
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
    /// Capacity of each peer's command queue (the driver's).
    pub peer_command_capacity: usize,
    /// Seed of the torrent's random choices (picker ties, optimistic unchokes); `None`
    /// lets the session pick one at random.
    pub rng_seed: Option<u64>,
    /// Super-seeding (BEP 16), for an initial seed: a peer that connects while we are
    /// complete is told of one piece at a time (two while we unchoke it), each the piece
    /// uploaded least so far, and of another when it announces one it was offered. The
    /// seed so sends pieces the swarm lacks rather than copies of what it has, at the
    /// cost of a short pause per piece for each peer. Off by default.
    pub super_seeding: bool,
}

impl Default for TorrentConfig {
    fn default() -> Self {
        TorrentConfig {
            max_peers: 200,
            seed: true,
            choker: ChokerConfig::default(),
            picker: PickerConfig::default(),
            peer_command_capacity: 1024 + MAX_UPLOAD_QUEUE as usize,
            rng_seed: None,
            super_seeding: false,
        }
    }
}

/// Connection counts shared by all torrents of a session.
#[derive(Debug)]
pub struct PeerLimits {
    /// Most connected peers over all torrents.
    pub max_peers: usize,
    /// Connected peers over all torrents.
    connected: AtomicUsize,
}

impl PeerLimits {
    /// At most `max_peers` peers over all torrents sharing these limits.
    pub fn new(max_peers: usize) -> Self {
        PeerLimits {
            max_peers,
            connected: AtomicUsize::new(0),
        }
    }

    /// Connected peers over all torrents.
    pub fn connected(&self) -> usize {
        self.connected.load(Ordering::Relaxed)
    }
}

/// What a torrent is started with.
#[derive(Debug)]
pub struct TorrentParams {
    /// The torrent.
    pub info_hash: InfoHash,
    /// Its name (for the stats).
    pub name: String,
    /// Its pieces and blocks.
    pub geometry: Geometry,
    /// Our peer id.
    pub peer_id: PeerId,
    /// Which pieces are verified already, one entry per piece.
    pub have: Vec<bool>,
    /// The raw info dictionary, served over `ut_metadata`.
    pub info: Option<Bytes>,
    /// BEP 27: no PEX, no DHT.
    pub private: bool,
    /// Our TCP listen port, announced in the extended handshake.
    pub listen_port: u16,
    /// Our DHT node's port, if we run one: sent in `port` messages.
    pub dht_port: Option<u16>,
    /// Settings.
    pub config: TorrentConfig,
    /// Seed of every random choice the torrent makes.
    pub rng_seed: u64,
    /// The session's connection counts.
    pub limits: Arc<PeerLimits>,
    /// Each piece's priority (empty: every piece normal); see [`piece_priorities`].
    pub priorities: Vec<Priority>,
}

/// Each piece's priority from each file's (one per file of the geometry, pad files
/// included): a piece takes the highest priority of the files it touches, so a piece
/// shared by a skipped file and a wanted one is fetched. Empty files touch no piece.
pub fn piece_priorities(geometry: &Geometry, files: &[Priority]) -> Vec<Priority> {
    let mut out = vec![Priority::SKIP; geometry.num_pieces() as usize];
    for (file, prio) in files.iter().enumerate() {
        if geometry.file_len(file).unwrap_or(0) == 0 {
            continue;
        }
        if let Some(range) = geometry.pieces_for_file(file) {
            for p in range {
                if let Some(slot) = out.get_mut(p as usize) {
                    if prio.level() > slot.level() {
                        *slot = *prio;
                    }
                }
            }
        }
    }
    out
}

/// Raises the first and last piece of every file not skipped in `files` to the highest
/// priority in `pieces` (from [`piece_priorities`]), so a player can read a media file's
/// header and index before the rest arrives.
pub fn first_and_last_first(geometry: &Geometry, files: &[Priority], pieces: &mut [Priority]) {
    for (file, prio) in files.iter().enumerate() {
        if *prio == Priority::SKIP || geometry.file_len(file).unwrap_or(0) == 0 {
            continue;
        }
        if let Some(range) = geometry.pieces_for_file(file).filter(|r| !r.is_empty()) {
            for p in [range.start, range.end - 1] {
                if let Some(slot) = pieces.get_mut(p as usize) {
                    *slot = Priority::HIGHEST;
                }
            }
        }
    }
}

/// What a connection's writer is told to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Send one message.
    Msg(Message),
    /// Send these `request`s.
    Requests(Vec<BlockInfo>),
    /// Read this block from storage and send it as `piece`.
    Serve(BlockInfo),
    /// The peer cancelled a request: drop it if not sent yet.
    CancelServe(BlockInfo),
    /// Send `choke` and drop every queued block (rejecting them under the fast extension).
    Choke,
}

/// Something that happened, for [`Torrent::handle_event`].
#[derive(Debug)]
pub enum Event {
    /// A connection finished its handshake. The torrent keeps it or closes it at once.
    Connected {
        /// The driver's key for it.
        peer: PeerKey,
        /// The remote address.
        addr: SocketAddr,
        /// The peer's handshake.
        handshake: Handshake,
        /// Whether we dialled it.
        outgoing: bool,
    },
    /// Messages from a connection, in the order they arrived.
    Messages {
        /// The connection.
        peer: PeerKey,
        /// The messages.
        msgs: Vec<Message>,
    },
    /// Blocks written to a connection or dropped since its last report.
    Served {
        /// The connection.
        peer: PeerKey,
        /// `piece` messages sent.
        blocks: u32,
        /// Payload bytes sent.
        bytes: u64,
        /// Queued blocks dropped (choke, cancel, a full queue).
        dropped: u32,
    },
    /// A connection ended.
    Closed {
        /// The connection.
        peer: PeerKey,
        /// Why.
        reason: Disconnect,
    },
    /// A dial failed before its handshake finished.
    ConnectFailed {
        /// Where we dialled.
        addr: SocketAddr,
        /// Why it failed.
        reason: Disconnect,
    },
    /// This many [`Action::Write`]s are done (written, or failed: see
    /// [`Event::DiskFailed`]).
    Written(usize),
    /// A piece's hash verdict, after [`Action::Hash`].
    Hashed {
        /// The piece.
        piece: PieceIndex,
        /// Whether it matched.
        ok: bool,
    },
    /// The torrent's storage failed: the torrent stops.
    DiskFailed(TorrentError),
    /// Addresses from a peer source, to dial.
    AddPeers(Vec<SocketAddr>),
    /// Drop every peer and make no new connections.
    Pause,
    /// Undo [`Event::Pause`].
    Resume,
    /// New piece priorities, one per piece ([`Priority::SKIP`]: not fetched). Completion
    /// means every wanted piece: the torrent becomes complete, or downloads again.
    SetPriorities(Vec<Priority>),
    /// Fetch pieces in order (`true`) or rarest first.
    SetSequential(bool),
    /// The user bans these addresses: their connections close, none is accepted again.
    BanIps(Vec<core::net::IpAddr>),
}

/// Something for the driver to do, from [`Torrent::poll_action`].
#[derive(Debug)]
pub enum Action {
    /// Dial this address and report [`Event::Connected`] or [`Event::ConnectFailed`].
    Dial(SocketAddr),
    /// Give a connection's writer this command.
    Send {
        /// The connection.
        peer: PeerKey,
        /// What to do.
        cmd: Command,
    },
    /// Close the connection (after the commands already given); no [`Event::Closed`] is
    /// needed for it.
    Close(PeerKey),
    /// Write a block.
    Write {
        /// Its piece.
        piece: PieceIndex,
        /// Offset in the piece.
        begin: u32,
        /// The block.
        data: Bytes,
    },
    /// Check a piece whose blocks are all written; report [`Event::Hashed`].
    Hash(PieceIndex),
    /// Save which pieces are verified (resume state), one entry per piece.
    SaveResume(Vec<bool>),
    /// Tell this DHT node about us (a peer's `port` message named it).
    AddDhtNode(SocketAddr),
    /// The stats changed: publish [`Torrent::stats`].
    Publish,
}

/// One torrent's decisions; see the module documentation.
#[derive(Debug)]
pub struct Torrent {
    info_hash: InfoHash,
    name: String,
    geometry: Geometry,
    config: TorrentConfig,
    peer_id: PeerId,
    dht_port: Option<u16>,
    limits: Arc<PeerLimits>,
    picker: Picker,
    choker: Choker,
    /// Connected peers, in key order (so every walk over them is deterministic).
    peers: BTreeMap<PeerKey, PeerState>,
    book: PeerBook,
    state: TorrentState,
    disk_inflight: usize,
    down: RateMeter,
    up: RateMeter,
    hash_failures: u32,
    /// Bytes of verified pieces.
    bytes_have: u64,
    next_tick: Instant,
    last_resume_save: Instant,
    /// When a verified piece last published the stats.
    last_piece_publish: Instant,
    /// Pieces verified since the resume state was last saved.
    unsaved_pieces: u32,
    /// What we offer through BEP 10 (metadata, PEX).
    ext: TorrentExtensions,
    actions: VecDeque<Action>,
    /// An [`Action::Publish`] is queued.
    publish_queued: bool,
    /// The last tick found nothing to do and published zero rates; no tick is needed
    /// until an event comes (a seed with no peers costs no wake-ups).
    quiet: bool,
    /// Counts changes to the set of connected peers (and their listen addresses), for PEX.
    peer_set_generation: u64,
    /// Super-seeding: the order pieces are offered in, and where the next offer looks.
    offer_order: Vec<u32>,
    offer_cursor: usize,
    /// Super-seeding, per piece: blocks approved for upload, and live offers.
    served_blocks: Vec<u32>,
    live_offers: Vec<u32>,
}

impl Torrent {
    /// A torrent whose verified pieces are `params.have`, downloading (or seeding when
    /// they are all there), with no peers yet.
    pub fn new(now: Instant, params: TorrentParams) -> Self {
        let mut picker = Picker::new(
            params.geometry.clone(),
            params.config.picker.clone(),
            StdRng::seed_from_u64(params.rng_seed),
        );
        if !params.priorities.is_empty() {
            if let Err(e) = picker.set_priorities(&params.priorities) {
                tracing::warn!(torrent = %params.info_hash, error = %e, "piece priorities ignored");
            }
        }
        let mut bytes_have = 0;
        for (i, have) in params.have.iter().enumerate() {
            let piece = PieceIndex(i as u32);
            if *have && picker.mark_have(piece).is_ok() {
                bytes_have += u64::from(params.geometry.piece_len(piece).unwrap_or(0));
            }
        }
        let choker = Choker::new(
            params.config.choker.clone(),
            now,
            StdRng::seed_from_u64(params.rng_seed.wrapping_add(1)),
        );
        let ext = TorrentExtensions {
            info: params.info,
            private: params.private,
            listen_port: params.listen_port,
            reqq: MAX_UPLOAD_QUEUE,
        };
        let offer_order = if params.config.super_seeding {
            let mut order: Vec<u32> = (0..params.geometry.num_pieces()).collect();
            order.shuffle(&mut StdRng::seed_from_u64(params.rng_seed.wrapping_add(2)));
            order
        } else {
            Vec::new()
        };
        let mut torrent = Torrent {
            info_hash: params.info_hash,
            name: params.name,
            geometry: params.geometry,
            config: params.config,
            peer_id: params.peer_id,
            dht_port: params.dht_port.filter(|_| !params.private),
            limits: params.limits,
            picker,
            choker,
            peers: BTreeMap::new(),
            book: PeerBook::default(),
            state: TorrentState::Downloading,
            disk_inflight: 0,
            down: RateMeter::new(now),
            up: RateMeter::new(now),
            hash_failures: 0,
            bytes_have,
            next_tick: now + TICK,
            last_resume_save: now,
            last_piece_publish: now,
            unsaved_pieces: 0,
            ext,
            actions: VecDeque::new(),
            publish_queued: false,
            quiet: false,
            peer_set_generation: 0,
            served_blocks: vec![0; offer_order.len()],
            live_offers: vec![0; offer_order.len()],
            offer_order,
            offer_cursor: 0,
        };
        if torrent.picker.is_complete() {
            torrent.become_complete(now);
        }
        torrent.publish();
        torrent
    }

    /// The torrent's info-hash.
    pub fn info_hash(&self) -> InfoHash {
        self.info_hash
    }

    /// Our handshake for this torrent: fast extension and extension protocol bits set,
    /// and the DHT bit when we run a DHT node and the torrent is not private.
    pub fn handshake(&self) -> Handshake {
        our_handshake(self.info_hash, self.peer_id, self.dht_port.is_some())
    }

    /// Where the torrent stands.
    pub fn state(&self) -> &TorrentState {
        &self.state
    }

    /// Whether the driver should hand over peer events now (false while the disk is
    /// [`MAX_DISK_INFLIGHT`] blocks behind).
    pub fn wants_peer_events(&self) -> bool {
        self.disk_inflight < MAX_DISK_INFLIGHT
    }

    /// Which pieces are verified, one entry per piece.
    pub fn verified(&self) -> Vec<bool> {
        (0..self.geometry.num_pieces())
            .map(|i| self.picker.has_piece(i))
            .collect()
    }

    /// The choker (read-only), for inspection.
    pub fn choker(&self) -> &Choker {
        &self.choker
    }

    /// The picker (read-only), for inspection.
    pub fn picker(&self) -> &Picker {
        &self.picker
    }

    /// Connected peers.
    pub fn num_peers(&self) -> usize {
        self.peers.len()
    }

    /// Whether `addr` is banned.
    pub fn is_banned(&self, addr: SocketAddr) -> bool {
        self.book.is_banned_ip(addr.ip())
    }

    /// The progress snapshot at `now`.
    pub fn stats(&mut self, now: Instant) -> TorrentStats {
        TorrentStats {
            info_hash: self.info_hash,
            name: self.name.clone(),
            state: self.state.clone(),
            pieces_have: self.picker.num_have(),
            pieces_total: self.geometry.num_pieces(),
            bytes_have: self.bytes_have,
            total_len: self.geometry.total_len(),
            downloaded: self.down.total(),
            uploaded: self.up.total(),
            download_rate: self.down.rate(now),
            upload_rate: self.up.rate(now),
            peers: self.peers.len(),
            hash_failures: self.hash_failures,
            banned: self.book.banned(),
        }
    }

    /// The next thing to do.
    pub fn poll_action(&mut self) -> Option<Action> {
        let action = self.actions.pop_front()?;
        if matches!(action, Action::Publish) {
            self.publish_queued = false;
        }
        Some(action)
    }

    /// When [`Torrent::handle_timeout`] should next be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.is_idle() {
            // Only a scheduled redial wakes an idle torrent (through the tick).
            return self.book.next_redial().map(|at| at.max(self.next_tick));
        }
        let tick = Some(self.next_tick);
        tick.into_iter().chain(self.choker.poll_timeout()).min()
    }

    /// Runs what is due at `now`: the periodic tick and the choker's rechoke.
    pub fn handle_timeout(&mut self, now: Instant) {
        if now >= self.next_tick {
            self.tick(now);
            self.next_tick = now + TICK;
        }
        self.choker.handle_timeout(now);
        self.apply_choker();
    }

    /// Whether nothing can happen until an event comes: no peers, no dial in flight or
    /// waiting, nothing unsaved, and quiet stats published.
    fn is_idle(&self) -> bool {
        self.quiet
            && self.peers.is_empty()
            && self.book.connecting() == 0
            && self.book.peek().is_none()
            && self.unsaved_pieces == 0
    }

    /// Takes in one event.
    pub fn handle_event(&mut self, now: Instant, event: Event) {
        self.quiet = false;
        match event {
            Event::Connected {
                peer,
                addr,
                handshake,
                outgoing,
            } => self.handle_connected(now, peer, addr, handshake, outgoing),
            Event::Messages { peer, msgs } => self.handle_messages(now, peer, msgs),
            Event::Served {
                peer,
                blocks,
                bytes,
                dropped,
            } => {
                self.up.add(now, bytes);
                self.choker
                    .handle_event(now, ChokerEvent::Sent { peer, bytes });
                if let Some(p) = self.peers.get_mut(&peer) {
                    p.up.add(now, bytes);
                    p.upload_queued = p.upload_queued.saturating_sub(blocks + dropped);
                }
            }
            Event::Closed { peer, reason } => {
                if let Some(p) = self.peers.get(&peer) {
                    tracing::debug!(torrent = %self.info_hash, peer = %p.addr, %reason, "peer disconnected");
                    if p.outgoing {
                        let addr = p.addr;
                        self.schedule_redial(now, addr, &reason);
                    }
                }
                self.remove_peer(now, peer);
            }
            Event::ConnectFailed { addr, reason } => {
                tracing::debug!(torrent = %self.info_hash, peer = %addr, %reason, "connect failed");
                self.book.dial_ended(addr);
                self.schedule_redial(now, addr, &reason);
                self.dial(now);
            }
            Event::Written(n) => self.disk_inflight = self.disk_inflight.saturating_sub(n),
            Event::Hashed { piece, ok: true } => self.hash_passed(now, piece),
            Event::Hashed { piece, ok: false } => self.hash_failed(now, piece),
            Event::DiskFailed(err) => {
                tracing::error!(torrent = %self.info_hash, error = %err, "storage failed; torrent stopped");
                self.close_all(now, || Disconnect::Shutdown);
                self.state = TorrentState::Error(err);
                self.publish();
            }
            Event::AddPeers(addrs) => {
                self.book.add(addrs);
                self.dial(now);
            }
            Event::Pause => {
                if self.active() {
                    self.close_all(now, || Disconnect::Shutdown);
                    self.state = TorrentState::Paused;
                    self.publish();
                }
            }
            Event::SetPriorities(prios) => self.set_priorities(now, &prios),
            Event::SetSequential(on) => self.picker.set_sequential(on),
            Event::BanIps(ips) => {
                for ip in &ips {
                    self.book.ban_ip(*ip);
                }
                let doomed: Vec<PeerKey> = self
                    .peers
                    .iter()
                    .filter(|(_, p)| ips.contains(&p.addr.ip()))
                    .map(|(k, _)| *k)
                    .collect();
                for key in doomed {
                    self.disconnect(now, key, Disconnect::Banned);
                }
            }
            Event::Resume => {
                if self.state == TorrentState::Paused {
                    self.state = if self.picker.is_complete() {
                        TorrentState::Seeding
                    } else {
                        TorrentState::Downloading
                    };
                    self.publish();
                    self.book.requeue_known();
                    self.dial(now);
                }
            }
        }
    }

    /// Closes every peer and stops taking new ones (the driver then finishes the disk
    /// work and calls [`Torrent::stopped`]).
    pub fn close(&mut self, now: Instant) {
        self.close_all(now, || Disconnect::Shutdown);
    }

    /// The torrent is shut down (unless an error stopped it first).
    pub fn stopped(&mut self) {
        if !matches!(self.state, TorrentState::Error(_)) {
            self.state = TorrentState::Stopped;
        }
        self.publish();
    }

    // ---- peers coming and going ----

    /// Whether the torrent takes peers at all.
    fn active(&self) -> bool {
        matches!(
            self.state,
            TorrentState::Downloading | TorrentState::Seeding
        )
    }

    fn at_limit(&self, extra: usize) -> bool {
        self.peers.len() + extra >= self.config.max_peers
            || self.limits.connected() + extra >= self.limits.max_peers
    }

    fn schedule_redial(&mut self, now: Instant, addr: SocketAddr, reason: &Disconnect) {
        if self.active() {
            self.book.schedule_redial(now, addr, reason);
        }
    }

    /// Dials queued addresses while below the connection limits.
    fn dial(&mut self, now: Instant) {
        if !self.active() {
            return;
        }
        self.make_room_to_dial(now);
        while !self.at_limit(self.book.connecting()) {
            let Some(addr) = self.book.pop() else {
                break;
            };
            if self.book.is_banned_ip(addr.ip())
                || self.book.is_connecting(addr)
                || self.peers.values().any(|p| p.addr == addr)
            {
                continue;
            }
            self.book.dialling(addr);
            self.actions.push_back(Action::Dial(addr));
        }
    }

    /// At the connection limit with an address waiting to be dialled, closes one idle peer
    /// (see [`Torrent::evict_idle`]): idle connections (incoming ones above all) so cannot
    /// keep a downloading torrent from reaching the peers its sources found.
    fn make_room_to_dial(&mut self, now: Instant) {
        if !self.at_limit(0) || self.book.connecting() > 0 {
            return;
        }
        // Addresses the dial loop would skip anyway go first.
        while let Some(addr) = self.book.peek() {
            if self.book.is_banned_ip(addr.ip()) || self.peers.values().any(|p| p.addr == addr) {
                self.book.pop();
            } else {
                self.evict_idle(now, addr);
                return;
            }
        }
    }

    /// At the connection limit, makes room for a new connection by closing the oldest
    /// peer that has been useless for [`IDLE_EVICT_AFTER`]: neither side interested, no
    /// requests either way. Connections that hold slots without doing anything (a flood of
    /// handshakes, say) so cannot lock honest peers out. Whether one was closed.
    fn evict_idle(&mut self, now: Instant, for_addr: SocketAddr) -> bool {
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
        self.disconnect(now, key, Disconnect::TooManyPeers);
        true
    }

    fn handle_connected(
        &mut self,
        now: Instant,
        key: PeerKey,
        addr: SocketAddr,
        handshake: Handshake,
        outgoing: bool,
    ) {
        if outgoing {
            self.book.dial_ended(addr);
        }
        let id = handshake.peer_id;
        let refuse = if !self.active() {
            Some(Disconnect::Shutdown)
        } else if self.book.is_banned(addr, &id) {
            Some(Disconnect::Banned)
        } else if id == self.peer_id {
            Some(Disconnect::SelfConnection)
        } else if let Some((old, old_outgoing)) = self
            .peers
            .iter()
            .find(|(_, p)| p.id == id)
            .map(|(k, p)| (*k, p.outgoing))
        {
            // Both sides dialled at once (after PEX, say): both keep the connection
            // dialled by the lower peer id, or they would each drop a different one.
            let new_by_lower = outgoing == (self.peer_id < id);
            if old_outgoing != outgoing && new_by_lower {
                self.disconnect(now, old, Disconnect::Duplicate(id));
                None
            } else {
                Some(Disconnect::Duplicate(id))
            }
        } else if self.at_limit(0) && !self.evict_idle(now, addr) {
            Some(Disconnect::TooManyPeers)
        } else {
            None
        };
        if let Some(reason) = refuse {
            tracing::debug!(torrent = %self.info_hash, peer = %addr, %reason, "connection refused");
            if outgoing {
                self.schedule_redial(now, addr, &reason);
            }
            self.actions.push_back(Action::Close(key));
            return;
        }
        tracing::debug!(torrent = %self.info_hash, peer = %addr, %id, outgoing, "peer connected");
        self.book.connected(addr);
        self.limits.connected.fetch_add(1, Ordering::Relaxed);
        self.peer_set_generation += 1;
        let fast = handshake.reserved.supports_fast();
        let num_pieces = self.geometry.num_pieces();
        let mut peer = PeerState::new(now, addr, id, fast, outgoing, self.ext.new_peer());
        let super_seeding = self.config.super_seeding && self.picker.is_complete();
        if super_seeding {
            peer.offered = Some(Vec::new());
        }
        self.peers.insert(key, peer);
        self.picker.peer_have_none(key);
        self.choker.handle_event(now, ChokerEvent::Connected(key));
        let have = self.picker.num_have();
        let first = if super_seeding {
            // Pieces are announced one offer at a time, once the peer said what it has.
            fast.then_some(Message::HaveNone)
        } else if fast && have == num_pieces {
            Some(Message::HaveAll)
        } else if fast && have == 0 {
            Some(Message::HaveNone)
        } else if have > 0 {
            Some(Message::Bitfield(self.picker.bitfield().into()))
        } else {
            None
        };
        if let Some(msg) = first {
            self.send(key, Command::Msg(msg));
        }
        self.offer(key);
        if handshake.reserved.supports_extension_protocol() {
            let hs = self.ext.handshake(addr.ip());
            self.send(key, Command::Msg(hs));
        }
        if let (true, Some(port)) = (handshake.reserved.supports_dht(), self.dht_port) {
            self.send(key, Command::Msg(Message::Port(port)));
        }
    }

    /// Closes a connection for `reason` and forgets it.
    fn disconnect(&mut self, now: Instant, key: PeerKey, reason: Disconnect) {
        if let Some(p) = self.peers.get(&key) {
            tracing::debug!(torrent = %self.info_hash, peer = %p.addr, %reason, "disconnecting peer");
            self.actions.push_back(Action::Close(key));
            if p.outgoing {
                let addr = p.addr;
                self.schedule_redial(now, addr, &reason);
            }
        }
        self.remove_peer(now, key);
    }

    fn remove_peer(&mut self, now: Instant, key: PeerKey) {
        let Some(peer) = self.peers.remove(&key) else {
            return;
        };
        self.peer_set_generation += 1;
        for piece in peer.offered.into_iter().flatten() {
            if let Some(l) = self.live_offers.get_mut(piece as usize) {
                *l = l.saturating_sub(1);
            }
        }
        self.limits.connected.fetch_sub(1, Ordering::Relaxed);
        let had_requests = !self.picker.outstanding(key).is_empty();
        self.picker.peer_disconnected(key);
        self.choker
            .handle_event(now, ChokerEvent::Disconnected(key));
        self.apply_choker();
        if had_requests {
            self.fill_all(now);
        }
    }

    fn close_all(&mut self, now: Instant, reason: impl Fn() -> Disconnect) {
        let keys: Vec<PeerKey> = self.peers.keys().copied().collect();
        for key in keys {
            self.disconnect(now, key, reason());
        }
        self.book.clear_queue();
    }

    fn ban(&mut self, now: Instant, key: PeerKey, strikes: u32) {
        if let Some(p) = self.peers.get(&key) {
            tracing::warn!(torrent = %self.info_hash, peer = %p.addr, id = %p.id, strikes, "banning peer for bad data");
            self.book.ban(p.addr.ip(), p.id);
        }
        self.disconnect(now, key, Disconnect::HashFailures(strikes));
    }

    // ---- messages ----

    fn handle_messages(&mut self, now: Instant, key: PeerKey, msgs: Vec<Message>) {
        if !self.peers.contains_key(&key) {
            return;
        }
        let mut got_block = false;
        for msg in msgs {
            got_block |= matches!(msg, Message::Piece { .. });
            if let Err(reason) = self.handle_message(now, key, msg) {
                self.disconnect(now, key, reason);
                return;
            }
        }
        if got_block {
            self.fill(now, key);
        }
    }

    /// Handles one message; an error disconnects the peer.
    fn handle_message(
        &mut self,
        now: Instant,
        key: PeerKey,
        msg: Message,
    ) -> Result<(), Disconnect> {
        let num_pieces = self.geometry.num_pieces();
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
            Message::Extended { id, payload } => self.handle_extended(now, key, id, &payload),
            Message::Choke => {
                p.peer_choking = true;
                let released = self.picker.peer_choked(key);
                if let Some(p) = self.peers.get_mut(&key) {
                    p.stale_budget = p.stale_budget.saturating_add(released.len() as u32);
                }
                if !released.is_empty() {
                    self.fill_all(now);
                }
            }
            Message::Unchoke => {
                p.peer_choking = false;
                p.last_block_at = now;
                self.fill(now, key);
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
                // ok to ignore: the index was range-checked above
                let _ = self.picker.peer_have(key, index);
                self.after_peer_pieces(now, key)?;
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
                self.after_peer_pieces(now, key)?;
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
                    self.picker.peer_have_all(key);
                }
                self.after_peer_pieces(now, key)?;
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
                    self.fill_others(now, key);
                }
            }
            Message::Piece { index, begin, data } => {
                self.handle_block(now, key, index, begin, data)?;
            }
        }
        Ok(())
    }

    /// After the peer's bitfield or a `have`: update interest, drop seed-to-seed links,
    /// offer the next pieces to a super-seeded peer.
    fn after_peer_pieces(&mut self, now: Instant, key: PeerKey) -> Result<(), Disconnect> {
        let num_pieces = self.geometry.num_pieces();
        if self.picker.peer_is_seed(key)
            && self.picker.is_complete()
            && self.picker.num_have() == num_pieces
        {
            return Err(Disconnect::BothSeeds);
        }
        self.update_interest(now, key);
        self.offer(key);
        Ok(())
    }

    /// Super-seeding: forgets the offers the peer now has, and tops its offers up: to
    /// [`SUPER_SEED_OFFERS`] while we unchoke it, to one otherwise (so it stays
    /// interested and gets in line). Each offer is the piece uploaded least so far, with
    /// the fewest live offers, that the peer lacks: a piece is offered to a peer that is
    /// being served before it is offered to one waiting in line.
    fn offer(&mut self, key: PeerKey) {
        if self.offer_order.is_empty() {
            // Not super-seeding.
            return;
        }
        let unchoked = self.choker.is_unchoked(key);
        let Some(offered) = self.peers.get_mut(&key).and_then(|p| p.offered.as_mut()) else {
            return;
        };
        let live = &mut self.live_offers;
        offered.retain(|piece| {
            let keep = !self.picker.peer_has(key, *piece);
            if !keep {
                if let Some(l) = live.get_mut(*piece as usize) {
                    *l = l.saturating_sub(1);
                }
            }
            keep
        });
        let want = if unchoked { SUPER_SEED_OFFERS } else { 1 };
        let n = self.offer_order.len();
        let mut new = Vec::new();
        while offered.len() < want && n > 0 {
            // The least served and least offered piece the peer lacks, among the next
            // pieces of the order (a bounded look, so a huge torrent costs little).
            let mut best: Option<(u32, u32, usize)> = None;
            for step in 0..n.min(OFFER_LOOKAHEAD) {
                let at = (self.offer_cursor + step) % n;
                // ok: `at` is below the order's length, and pieces below num_pieces
                let piece = self.offer_order[at];
                if self.picker.peer_has(key, piece) || offered.contains(&piece) {
                    continue;
                }
                let score = (self.served_blocks[piece as usize], live[piece as usize], at);
                if best.is_none_or(|b| (score.0, score.1) < (b.0, b.1)) {
                    best = Some(score);
                    if score.0 == 0 && score.1 == 0 {
                        break;
                    }
                }
            }
            let Some((_, _, at)) = best else {
                break;
            };
            let piece = self.offer_order[at];
            self.offer_cursor = (at + 1) % n;
            live[piece as usize] += 1;
            offered.push(piece);
            new.push(piece);
        }
        for piece in new {
            self.send(key, Command::Msg(Message::Have { index: piece }));
        }
    }

    fn handle_request(&mut self, key: PeerKey, req: BlockInfo) -> Result<(), Disconnect> {
        let num_pieces = self.geometry.num_pieces();
        let Some(piece_len) = self.geometry.piece_len(req.piece) else {
            return Err(Disconnect::PieceOutOfRange {
                msg: "request",
                index: req.piece.0,
                num_pieces,
            });
        };
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
        let Some(p) = self.peers.get_mut(&key) else {
            return Ok(());
        };
        // A super-seeded peer was told only of its offers.
        let have = self.picker.has_piece(req.piece)
            && p.offered
                .as_ref()
                .is_none_or(|offered| offered.contains(&req.piece.0));
        if !unchoked || !have || p.upload_queued >= MAX_UPLOAD_QUEUE {
            // A full queue is the peer's pipeline outrunning our disk; only requests we
            // could never serve count towards a flood.
            if !unchoked || !have {
                p.ignored_requests += 1;
                if p.ignored_requests > MAX_IGNORED_REQUESTS {
                    return Err(Disconnect::RequestFlood(p.ignored_requests));
                }
            }
            if p.fast {
                self.send(key, Command::Msg(Message::RejectRequest(req)));
            }
            return Ok(());
        }
        p.upload_queued += 1;
        if let Some(served) = self.served_blocks.get_mut(req.piece.0 as usize) {
            *served += 1;
        }
        self.send(key, Command::Serve(req));
        Ok(())
    }

    fn handle_block(
        &mut self,
        now: Instant,
        key: PeerKey,
        index: u32,
        begin: u32,
        data: Bytes,
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
            self.actions.push_back(Action::Write {
                piece: block.piece,
                begin,
                data,
            });
            if piece_complete {
                self.actions.push_back(Action::Hash(block.piece));
            }
        }
        Ok(())
    }

    /// A peer's `port` message: its DHT node is worth a ping (once per connection).
    fn handle_dht_port(&mut self, key: PeerKey, port: u16) {
        if self.dht_port.is_none() {
            return;
        }
        let Some(p) = self.peers.get_mut(&key) else {
            return;
        };
        if port == 0 || !p.ext.take_dht_port() {
            return;
        }
        let addr = SocketAddr::new(p.addr.ip(), port);
        self.actions.push_back(Action::AddDhtNode(addr));
    }

    /// An extended message: answered (ut_metadata), or peers learned (ut_pex).
    fn handle_extended(&mut self, now: Instant, key: PeerKey, id: u8, payload: &Bytes) {
        if id == 0 {
            // Its handshake may name the port it listens on: what PEX tells others.
            self.peer_set_generation += 1;
        }
        let Some(p) = self.peers.get_mut(&key) else {
            return;
        };
        match p.ext.handle(&self.ext, now, id, payload) {
            ExtOutcome::Nothing => {}
            ExtOutcome::Reply(msg) => self.send(key, Command::Msg(msg)),
            ExtOutcome::Peers(addrs) => {
                tracing::debug!(torrent = %self.info_hash, from = %p.addr, peers = addrs.len(), "peers from pex");
                if self.active() {
                    self.book.add(addrs);
                    self.dial(now);
                }
            }
        }
    }

    /// Sends the PEX messages that are due: each peer hears of the others by listen
    /// address. A peer that had nothing to hear is not looked at again until the set of
    /// peers changes (a quiet swarm would otherwise cost a pass over every peer for every
    /// peer each tick).
    fn send_pex(&mut self, now: Instant) {
        let generation = self.peer_set_generation;
        let due: Vec<PeerKey> = self
            .peers
            .iter()
            .filter(|(_, p)| p.pex_looked != Some(generation) && p.ext.pex_due(&self.ext, now))
            .map(|(k, _)| *k)
            .collect();
        if due.is_empty() {
            return;
        }
        let all: Vec<(PeerKey, bt_wire::extension::PexPeer)> = self
            .peers
            .iter()
            .filter_map(|(k, p)| {
                let listen = p.ext.listen_addr(p.addr, p.outgoing)?;
                let seed = self.picker.peer_is_seed(*k);
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
            match p.ext.poll_pex(&self.ext, now, &others) {
                Some(msg) => self.send(key, Command::Msg(msg)),
                None => p.pex_looked = Some(generation),
            }
        }
    }

    // ---- pieces ----

    fn hash_passed(&mut self, now: Instant, piece: PieceIndex) {
        if self.picker.hash_passed(piece).is_err() {
            return;
        }
        self.unsaved_pieces += 1;
        self.bytes_have += u64::from(self.geometry.piece_len(piece).unwrap_or(0));
        let keys: Vec<PeerKey> = self.peers.keys().copied().collect();
        for key in &keys {
            // A seed gains nothing from it. A peer that has the piece still hears (as
            // libtorrent's send_redundant_have does): a super-seed (BEP 16) learns
            // from it that its offer was taken.
            if !self.picker.peer_is_seed(*key) {
                self.send(*key, Command::Msg(Message::Have { index: piece.0 }));
            }
        }
        for key in keys {
            self.update_interest(now, key);
        }
        if self.picker.is_complete() {
            self.become_complete(now);
        } else if now.duration_since(self.last_piece_publish) >= PIECE_PUBLISH_INTERVAL {
            // At most 10 times a second; the tick publishes the rest.
            self.last_piece_publish = now;
            self.publish();
        }
    }

    fn hash_failed(&mut self, now: Instant, piece: PieceIndex) {
        self.hash_failures += 1;
        let Ok(contributors) = self.picker.hash_failed(piece) else {
            return;
        };
        tracing::info!(torrent = %self.info_hash, piece = piece.0, peers = contributors.len(), "piece failed its hash check");
        let alone = contributors.len() == 1;
        for key in contributors {
            let Some(addr) = self.peers.get(&key).map(|p| p.addr) else {
                continue;
            };
            let s = self.book.strike(addr, alone);
            if s.deserve_ban() {
                self.ban(now, key, s.alone + s.shared);
            }
        }
        self.fill_all(now);
    }

    fn set_priorities(&mut self, now: Instant, prios: &[Priority]) {
        if let Err(e) = self.picker.set_priorities(prios) {
            tracing::warn!(torrent = %self.info_hash, error = %e, "piece priorities ignored");
            return;
        }
        let complete = self.picker.is_complete();
        match self.state {
            TorrentState::Downloading if complete => self.become_complete(now),
            TorrentState::Seeding | TorrentState::Complete if !complete => {
                self.state = TorrentState::Downloading;
                self.choker.handle_event(now, ChokerEvent::Seeding(false));
                self.book.requeue_known();
                self.dial(now);
            }
            _ => {}
        }
        let keys: Vec<PeerKey> = self.peers.keys().copied().collect();
        for key in keys {
            self.update_interest(now, key);
        }
        self.publish();
    }

    /// Every connected peer.
    pub fn peer_summaries(&mut self, now: Instant) -> Vec<PeerSummary> {
        let keys: Vec<PeerKey> = self.peers.keys().copied().collect();
        keys.into_iter()
            .filter_map(|key| {
                let am_unchoked = self.choker.is_unchoked(key);
                let pieces = self.picker.peer_piece_count(key);
                let p = self.peers.get_mut(&key)?;
                Some(PeerSummary {
                    addr: p.addr,
                    id: p.id,
                    pieces,
                    download_rate: p.down.rate(now),
                    upload_rate: p.up.rate(now),
                    downloaded: p.down.total(),
                    uploaded: p.up.total(),
                    am_interested: p.am_interested,
                    am_unchoked,
                    peer_interested: p.peer_interested,
                    peer_unchoked: !p.peer_choking,
                    outgoing: p.outgoing,
                    snubbed: p.snubbed,
                })
            })
            .collect()
    }

    /// The verified pieces, as a bitfield (the first piece in the high bit of byte 0).
    pub fn bitfield(&self) -> Vec<u8> {
        self.picker.bitfield()
    }

    fn become_complete(&mut self, now: Instant) {
        self.choker.handle_event(now, ChokerEvent::Seeding(true));
        if self.config.seed {
            self.state = TorrentState::Seeding;
            let seeds: Vec<PeerKey> = self
                .peers
                .keys()
                .copied()
                .filter(|k| self.picker.peer_is_seed(*k))
                .collect();
            for key in seeds {
                self.disconnect(now, key, Disconnect::BothSeeds);
            }
        } else {
            self.state = TorrentState::Complete;
            self.close_all(now, || Disconnect::Shutdown);
        }
        self.save_resume(now);
        self.publish();
    }

    fn save_resume(&mut self, now: Instant) {
        self.last_resume_save = now;
        self.unsaved_pieces = 0;
        self.actions.push_back(Action::SaveResume(self.verified()));
    }

    fn publish(&mut self) {
        if !self.publish_queued {
            self.publish_queued = true;
            self.actions.push_back(Action::Publish);
        }
    }

    // ---- time ----

    fn tick(&mut self, now: Instant) {
        // Requests that went unanswered: give them to other peers.
        let timed_out: Vec<PeerKey> = self
            .peers
            .iter()
            .filter(|(key, p)| {
                !p.snubbed
                    && now.duration_since(p.last_block_at) > REQUEST_TIMEOUT
                    && !self.picker.outstanding(**key).is_empty()
            })
            .map(|(key, _)| *key)
            .collect();
        for key in timed_out {
            let released = self.picker.peer_choked(key);
            if let Some(p) = self.peers.get_mut(&key) {
                tracing::debug!(torrent = %self.info_hash, peer = %p.addr, blocks = released.len(), "requests timed out");
                p.snubbed = true;
                p.stale_budget = p.stale_budget.saturating_add(released.len() as u32);
            }
        }
        self.fill_all(now);
        if self.active() {
            self.book.redial_due(now);
        }
        self.dial(now);
        if self.active() {
            self.send_pex(now);
        }
        if self.unsaved_pieces > 0
            && now.duration_since(self.last_resume_save) >= RESUME_SAVE_INTERVAL
        {
            self.save_resume(now);
        }
        self.quiet = self.peers.is_empty() && self.down.rate(now) == 0 && self.up.rate(now) == 0;
        self.publish();
    }

    // ---- requests ----

    /// Sends `interested` / `not interested` if the picker's view changed; tops up the
    /// requests of a peer we stay interested in.
    fn update_interest(&mut self, now: Instant, key: PeerKey) {
        let want = self.picker.is_interesting(key);
        let Some(p) = self.peers.get_mut(&key) else {
            return;
        };
        if want == p.am_interested {
            if want {
                self.fill(now, key);
            }
            return;
        }
        p.am_interested = want;
        if want {
            self.choker
                .handle_event(now, ChokerEvent::AmInterested(key));
            self.send(key, Command::Msg(Message::Interested));
            self.fill(now, key);
        } else {
            self.choker
                .handle_event(now, ChokerEvent::AmNotInterested(key));
            self.send(key, Command::Msg(Message::NotInterested));
        }
    }

    /// Tops up the request pipeline of one peer.
    fn fill(&mut self, now: Instant, key: PeerKey) {
        if self.state != TorrentState::Downloading {
            return;
        }
        let Some(p) = self.peers.get_mut(&key) else {
            return;
        };
        if p.peer_choking || !p.am_interested {
            return;
        }
        let depth = p.queue_depth(now);
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

    fn fill_all(&mut self, now: Instant) {
        let keys: Vec<PeerKey> = self.peers.keys().copied().collect();
        for key in keys {
            self.fill(now, key);
        }
    }

    fn fill_others(&mut self, now: Instant, except: PeerKey) {
        let keys: Vec<PeerKey> = self
            .peers
            .keys()
            .copied()
            .filter(|k| *k != except)
            .collect();
        for key in keys {
            self.fill(now, key);
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
                    self.offer(key);
                }
            }
        }
    }

    /// Queues a command for a connected peer.
    fn send(&mut self, peer: PeerKey, cmd: Command) {
        if self.peers.contains_key(&peer) {
            self.actions.push_back(Action::Send { peer, cmd });
        }
    }
}

/// Our handshake: fast extension and extension protocol bits set, and the DHT bit when
/// `dht` (we run a DHT node and the torrent is not private).
pub fn our_handshake(info_hash: InfoHash, peer_id: PeerId, dht: bool) -> Handshake {
    let mut hs = Handshake::new(info_hash, peer_id);
    hs.reserved.set_fast(true);
    hs.reserved.set_extension_protocol(true);
    hs.reserved.set_dht(dht);
    hs
}

#[cfg(test)]
mod tests;
