//! The tokio task that runs one torrent's [`proto::Torrent`](crate::proto::Torrent), and
//! the [`TorrentHandle`] that controls it.
//!
//! The task owns the state machine, each connection's command sender and the torrent's
//! disk workers. It receives, over bounded channels, [`PeerEvent`]s from connections, disk
//! results and API commands from handles, turns each into a proto [`Event`], sleeps until
//! the proto's [`poll_timeout`](crate::proto::Torrent::poll_timeout), and carries out
//! every [`Action`]: it dials, queues commands for connections' writers with `try_send`,
//! hands blocks to the disk, publishes stats. It makes no decision of its own but two
//! mechanical ones about its queues: a connection whose command queue is full is too
//! slow and is closed (the proto hears [`Disconnect::Slow`]), and uploads and rejects
//! never take the last [`CONTROL_RESERVE`] slots of a queue, which are kept for control
//! messages (an upload that does not fit is reported dropped).
//!
//! It never awaits a peer and never blocks on the disk: while the proto says
//! [`wants_peer_events`](crate::proto::Torrent::wants_peer_events) is false it stops
//! reading peer events, which pushes back through the peers' bounded event queue to their
//! sockets.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bt_meta::{InfoHash, PeerId};
use bt_wire::{Handshake, Message};
use tokio::sync::{mpsc, oneshot, watch};

use crate::driver::disk::{Disk, DiskResult};
use crate::driver::peer::{self, BlockReader, Connected, PeerEvent, Wiring};
use crate::driver::ratelimit::{Bucket, Throttle};
use crate::driver::transport::Dialer;
use crate::proto::{
    Action, Command, Disconnect, Event, PeerKey, PeerLimits, Torrent, TorrentError, TorrentState,
    TorrentStats,
};

/// Command queue slots kept free for control messages (`have`, `choke`, requests): uploads
/// and rejects are not queued into them.
pub const CONTROL_RESERVE: usize = 256;

/// A request from a [`TorrentHandle`] to its task.
#[derive(Debug)]
pub(crate) enum ApiCommand {
    /// Dial these addresses (a peer source: CLI `--peer`, trackers, DHT, PEX).
    AddPeers(Vec<SocketAddr>),
    /// Drop every peer and make no new connections.
    Pause,
    /// Undo [`ApiCommand::Pause`].
    Resume,
    /// New piece priorities.
    SetPriorities(Vec<crate::proto::Priority>),
    /// Sequential or rarest-first.
    SetSequential(bool),
    /// Close and refuse these addresses.
    BanIps(Vec<std::net::IpAddr>),
    /// Answer with the verified pieces' bitfield.
    Bitfield(oneshot::Sender<Vec<u8>>),
    /// Answer with every connected peer.
    Peers(oneshot::Sender<Vec<crate::proto::PeerSummary>>),
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
    /// Connection counts over all torrents.
    pub limits: Arc<PeerLimits>,
    /// The session's DHT node: gets the nodes of peers' `port` messages.
    pub dht: Option<bt_dht::DhtNode>,
    /// How connections are dialled (transport and encryption policy).
    pub dialer: Dialer,
    /// The session's download and upload limits.
    pub down: Arc<Bucket>,
    /// See [`SessionShared::down`].
    pub up: Arc<Bucket>,
    /// Addresses the user banned: every torrent refuses them.
    pub banned: std::sync::Mutex<std::collections::HashSet<std::net::IpAddr>>,
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
    /// The torrent's own download and upload limits.
    pub(crate) limits: [Arc<Bucket>; 2],
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

    /// Reads the latest progress snapshot in place, without copying it.
    pub fn with_stats<R>(&self, f: impl FnOnce(&TorrentStats) -> R) -> R {
        f(&self.stats.borrow())
    }

    /// Dials these peers (unless already connected, banned or over the limits).
    pub async fn add_peers(&self, addrs: Vec<SocketAddr>) -> crate::Result<()> {
        self.call(ApiCommand::AddPeers(addrs)).await
    }

    /// Drops every peer and stops transferring until [`TorrentHandle::resume`].
    pub async fn pause(&self) -> crate::Result<()> {
        self.call(ApiCommand::Pause).await
    }

    /// Resumes a paused torrent.
    pub async fn resume(&self) -> crate::Result<()> {
        self.call(ApiCommand::Resume).await
    }

    /// Sets each piece's priority (one per piece; see
    /// [`piece_priorities`](crate::proto::piece_priorities) to derive them from files').
    pub async fn set_piece_priorities(
        &self,
        priorities: Vec<crate::proto::Priority>,
    ) -> crate::Result<()> {
        self.call(ApiCommand::SetPriorities(priorities)).await
    }

    /// Limits the torrent's download and upload, bytes per second (0: unlimited), beside
    /// the session's limits.
    pub fn set_rate_limits(&self, download: u64, upload: u64) {
        self.limits[0].set_rate(download);
        self.limits[1].set_rate(upload);
    }

    /// The torrent's own limits: download, upload (0: unlimited).
    pub fn rate_limits(&self) -> (u64, u64) {
        (self.limits[0].rate(), self.limits[1].rate())
    }

    /// Fetches pieces in order (`true`) or rarest first (`false`).
    pub async fn set_sequential(&self, sequential: bool) -> crate::Result<()> {
        self.call(ApiCommand::SetSequential(sequential)).await
    }

    /// Closes the connections from these addresses and refuses them from now on.
    pub async fn ban_ips(&self, ips: Vec<std::net::IpAddr>) -> crate::Result<()> {
        self.call(ApiCommand::BanIps(ips)).await
    }

    /// Every connected peer.
    pub async fn peers(&self) -> crate::Result<Vec<crate::proto::PeerSummary>> {
        let (tx, rx) = oneshot::channel();
        self.call(ApiCommand::Peers(tx)).await?;
        rx.await
            .map_err(|_| crate::Error::TorrentStopped(self.info_hash))
    }

    /// The verified pieces, as a bitfield (piece 0 in the high bit of the first byte).
    pub async fn piece_bitfield(&self) -> crate::Result<Vec<u8>> {
        let (tx, rx) = oneshot::channel();
        self.call(ApiCommand::Bitfield(tx)).await?;
        rx.await
            .map_err(|_| crate::Error::TorrentStopped(self.info_hash))
    }

    async fn call(&self, cmd: ApiCommand) -> crate::Result<()> {
        self.api
            .send(cmd)
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
            TorrentState::Error(e) => Err(crate::Error::TorrentFailed {
                info_hash: self.info_hash,
                reason: e.to_string(),
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

/// Everything needed to start a torrent task.
pub(crate) struct TaskParts {
    pub proto: Torrent,
    pub shared: Arc<SessionShared>,
    pub disk: Disk,
    pub reader: BlockReader,
    pub command_capacity: usize,
    pub events_tx: mpsc::Sender<PeerEvent>,
    pub stats_tx: watch::Sender<TorrentStats>,
    pub throttle: Throttle,
}

/// One torrent's task: the proto state machine and the I/O around it.
pub(crate) struct TorrentTask {
    proto: Torrent,
    shared: Arc<SessionShared>,
    /// Command queues of the connections the proto knows, by key; dropping one closes
    /// its connection once the commands already queued are written.
    conns: HashMap<PeerKey, mpsc::Sender<Command>>,
    disk: Disk,
    reader: BlockReader,
    command_capacity: usize,
    events_tx: mpsc::Sender<PeerEvent>,
    stats_tx: watch::Sender<TorrentStats>,
    throttle: Throttle,
}

impl TorrentTask {
    /// A task for `parts`, not yet running.
    pub(crate) fn new(parts: TaskParts) -> Self {
        TorrentTask {
            proto: parts.proto,
            shared: parts.shared,
            conns: HashMap::new(),
            disk: parts.disk,
            reader: parts.reader,
            command_capacity: parts.command_capacity,
            events_tx: parts.events_tx,
            stats_tx: parts.stats_tx,
            throttle: parts.throttle,
        }
    }

    /// Runs until shut down. Boxed: an `async fn` keeps its arguments beside its locals,
    /// and a task per torrent should not hold two copies of its state.
    pub(crate) async fn run(
        mut self: Box<Self>,
        mut events: mpsc::Receiver<PeerEvent>,
        mut api: mpsc::Receiver<ApiCommand>,
    ) {
        loop {
            self.carry_out();
            let wake = self
                .proto
                .poll_timeout()
                .map(tokio::time::Instant::from_std)
                .unwrap_or_else(|| tokio::time::Instant::now() + Duration::from_secs(3600));
            tokio::select! {
                biased;
                cmd = api.recv() => match cmd {
                    Some(ApiCommand::Shutdown(done)) => {
                        self.stop().await;
                        let _ = done.send(());
                        return;
                    }
                    Some(ApiCommand::AddPeers(addrs)) => self.event(Event::AddPeers(addrs)),
                    Some(ApiCommand::Pause) => self.event(Event::Pause),
                    Some(ApiCommand::Resume) => self.event(Event::Resume),
                    Some(ApiCommand::SetPriorities(p)) => self.event(Event::SetPriorities(p)),
                    Some(ApiCommand::SetSequential(on)) => self.event(Event::SetSequential(on)),
                    Some(ApiCommand::BanIps(ips)) => self.event(Event::BanIps(ips)),
                    Some(ApiCommand::Bitfield(tx)) => {
                        let _ = tx.send(self.proto.bitfield());
                    }
                    Some(ApiCommand::Peers(tx)) => {
                        let _ = tx.send(self.proto.peer_summaries(std::time::Instant::now()));
                    }
                    None => {
                        self.stop().await;
                        return;
                    }
                },
                Some(result) = self.disk.results.recv() => self.event(match result {
                    DiskResult::Written(n) => Event::Written(n),
                    DiskResult::Hashed { piece, ok } => Event::Hashed { piece: piece.into(), ok },
                    DiskResult::Failed(err) => {
                        let err = *err;
                        // A full disk already reads "disk full writing piece N to <path>: ...".
                        let msg = err.to_string();
                        Event::DiskFailed(if err.is_disk_full() {
                            TorrentError::DiskFull(msg)
                        } else {
                            TorrentError::Storage(msg)
                        })
                    }
                }),
                Some(ev) = events.recv(), if self.proto.wants_peer_events() => {
                    self.peer_event(ev);
                }
                _ = tokio::time::sleep_until(wake) => self.proto.handle_timeout(Instant::now()),
            }
        }
    }

    fn event(&mut self, event: Event) {
        self.proto.handle_event(Instant::now(), event);
    }

    fn peer_event(&mut self, ev: PeerEvent) {
        let event = match ev {
            PeerEvent::Connected(c) => {
                let Connected {
                    key,
                    addr,
                    handshake,
                    outgoing,
                    commands,
                } = *c;
                self.conns.insert(key, commands);
                Event::Connected {
                    peer: key,
                    addr,
                    handshake,
                    outgoing,
                }
            }
            PeerEvent::Messages { key, msgs } => Event::Messages { peer: key, msgs },
            PeerEvent::Served {
                key,
                blocks,
                bytes,
                dropped,
            } => Event::Served {
                peer: key,
                blocks,
                bytes,
                dropped,
            },
            PeerEvent::Closed { key, reason } => {
                self.conns.remove(&key);
                Event::Closed {
                    peer: key,
                    reason: *reason,
                }
            }
            PeerEvent::ConnectFailed(failed) => {
                let (addr, reason) = *failed;
                Event::ConnectFailed { addr, reason }
            }
        };
        self.event(event);
    }

    /// Carries out every action the proto has queued.
    fn carry_out(&mut self) {
        while let Some(action) = self.proto.poll_action() {
            match action {
                Action::Dial(addr) => self.dial(addr),
                Action::Send { peer, cmd } => self.send(peer, cmd),
                Action::Close(peer) => {
                    self.conns.remove(&peer);
                }
                Action::Write { piece, begin, data } => self.disk.write(piece.0, begin, data),
                Action::Hash(piece) => self.disk.hash(piece.0),
                Action::SaveResume(pieces) => self.disk.save_resume(pieces),
                Action::AddDhtNode(addr) => {
                    if let Some(node) = self.shared.dht.clone() {
                        tokio::spawn(async move {
                            let _ = node.add_node(addr).await;
                        });
                    }
                }
                Action::Publish => {
                    let stats = self.proto.stats(Instant::now());
                    self.stats_tx.send_replace(stats);
                }
            }
        }
    }

    /// Queues a command for a connection's writer. Uploads and rejects leave
    /// [`CONTROL_RESERVE`] slots free; a full queue closes the connection.
    fn send(&mut self, peer: PeerKey, cmd: Command) {
        let Some(tx) = self.conns.get(&peer) else {
            return;
        };
        let bulk = matches!(
            cmd,
            Command::Serve(_) | Command::Msg(Message::RejectRequest(_))
        );
        if bulk && tx.capacity() <= CONTROL_RESERVE {
            // The peer requests faster than it reads: it waits, it is not dropped.
            if matches!(cmd, Command::Serve(_)) {
                self.event(Event::Served {
                    peer,
                    blocks: 0,
                    bytes: 0,
                    dropped: 1,
                });
            }
            return;
        }
        match tx.try_send(cmd) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.conns.remove(&peer);
                self.event(Event::Closed {
                    peer,
                    reason: Disconnect::Slow,
                });
            }
            // The writer is gone; its reader reports why.
            Err(mpsc::error::TrySendError::Closed(_)) => {}
        }
    }

    /// Dials `addr` on a task of its own, which reports back as a peer event.
    fn dial(&self, addr: SocketAddr) {
        let ours = self.proto.handshake();
        let events = self.events_tx.clone();
        let wiring = Wiring {
            key: self.shared.key(),
            events: self.events_tx.clone(),
            command_capacity: self.command_capacity,
            reader: Arc::clone(&self.reader),
            throttle: self.throttle.clone(),
        };
        let dialer = self.shared.dialer.clone();
        tokio::spawn(async move {
            match dialer.dial(addr, ours).await {
                Ok((framed, theirs)) => peer::run(framed, theirs, ours, addr, true, wiring).await,
                Err(reason) => {
                    let _ = events
                        .send(PeerEvent::ConnectFailed(Box::new((addr, reason))))
                        .await;
                }
            }
        });
    }

    /// Closes every peer, waits for the disk workers to finish, saves resume state.
    async fn stop(&mut self) {
        self.proto.close(Instant::now());
        self.carry_out();
        self.disk.finish(self.proto.verified()).await;
        self.proto.stopped();
        self.carry_out();
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
    /// Our handshake for this torrent.
    pub handshake: Handshake,
    /// The rate limits over its connections.
    pub throttle: Throttle,
}

impl IncomingRoute {
    /// Answers the handshake and runs the connection.
    pub(crate) async fn run(
        &self,
        mut framed: peer::HandshakenStream,
        theirs: Handshake,
        addr: SocketAddr,
        key: PeerKey,
    ) {
        if let Err(reason) = peer::answer(&mut framed, self.handshake).await {
            tracing::debug!(peer = %addr, %reason, "incoming handshake failed");
            return;
        }
        let wiring = Wiring {
            key,
            events: self.events.clone(),
            command_capacity: self.command_capacity,
            reader: Arc::clone(&self.reader),
            throttle: self.throttle.clone(),
        };
        peer::run(framed, theirs, self.handshake, addr, false, wiring).await;
    }
}
