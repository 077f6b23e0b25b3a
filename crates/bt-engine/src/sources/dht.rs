//! The DHT as a peer source: the session's node, and a task per torrent that looks the
//! torrent up and announces it.
//!
//! The session's node: bound on the session's address (UDP beside TCP),
//! its routing table loaded from [`DhtSettings::nodes_file`] at start and saved there at
//! shutdown, bootstrapped in the background through [`DhtSettings::bootstrap`] (the
//! public routers by default, never when the session listens on a loopback address).
//!
//! [`spawn`] starts the per-torrent task, built only on the public [`TorrentHandle`] API
//! and `bt-dht`'s [`DhtNode`], like [`crate::sources::announce`] for trackers. The
//! schedule:
//!
//! - a `get_peers` + `announce_peer` round at start, then one every
//!   [`DhtPeersConfig::interval`] (15 minutes: the DHT forgets announces after about 30),
//!   or after [`DhtPeersConfig::retry_interval`] when no node took the announce (the
//!   routing table was still empty, say);
//! - while the torrent downloads with fewer than [`DhtPeersConfig::low_peers`] peers, a
//!   `get_peers` lookup every [`DhtPeersConfig::low_peers_interval`];
//! - nothing while paused; the task ends when the torrent stops or the handle is shut
//!   down.
//!
//! Private torrents (BEP 27) never reach this module: the session checks `info.private`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use bt_dht::{DhtConfig, DhtNode, PeerPort, DEFAULT_BOOTSTRAP};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::driver::torrent::TorrentHandle;
use crate::proto::TorrentState;

/// Settings of a session's DHT.
#[derive(Clone, Debug, Default)]
pub struct DhtSettings {
    /// Nodes to join through (`HOST:PORT`). `None`: the public routers
    /// ([`DEFAULT_BOOTSTRAP`]), unless the session listens on a loopback address, which
    /// never contacts them.
    pub bootstrap: Option<Vec<String>>,
    /// Where the routing table is loaded from at start and saved at shutdown.
    pub nodes_file: Option<PathBuf>,
    /// The node's own settings.
    pub node: DhtConfig,
    /// How each torrent uses it.
    pub peers: DhtPeersConfig,
}

/// The session's DHT node; see the module documentation.
#[derive(Debug)]
pub(crate) struct SessionDht {
    node: DhtNode,
    nodes_file: Option<PathBuf>,
}

impl SessionDht {
    /// Binds the node on UDP `listen`, loads the saved routing table and starts
    /// bootstrapping in the background.
    pub async fn start(settings: &DhtSettings, listen: SocketAddr) -> bt_dht::Result<SessionDht> {
        let node = DhtNode::bind(listen, settings.node.clone()).await?;
        if let Some(file) = &settings.nodes_file {
            match node.load_nodes(file).await {
                Ok(n) => tracing::info!(nodes = n, file = %file.display(), "dht nodes loaded"),
                Err(e) => tracing::debug!(error = %e, "no saved dht nodes"),
            }
        }
        let hosts: Vec<String> = match &settings.bootstrap {
            Some(hosts) => hosts.clone(),
            None if listen.ip().is_loopback() => {
                tracing::info!("listening on loopback: the public DHT routers are not used");
                Vec::new()
            }
            None => DEFAULT_BOOTSTRAP.iter().map(|s| s.to_string()).collect(),
        };
        let boot = node.clone();
        tokio::spawn(async move {
            match boot.bootstrap(&hosts).await {
                Ok(stats) => tracing::info!(?stats, "dht bootstrapped"),
                Err(e) => tracing::warn!(error = %e, "dht bootstrap failed"),
            }
        });
        Ok(SessionDht {
            node,
            nodes_file: settings.nodes_file.clone(),
        })
    }

    /// The node.
    pub fn node(&self) -> &DhtNode {
        &self.node
    }

    /// Saves the routing table and closes the socket.
    pub async fn shutdown(self) {
        if let Some(file) = &self.nodes_file {
            if let Some(dir) = file.parent() {
                let _ = std::fs::create_dir_all(dir);
            }
            match self.node.save_nodes(file).await {
                Ok(n) => tracing::info!(nodes = n, file = %file.display(), "dht nodes saved"),
                Err(e) => tracing::warn!(error = %e, "dht nodes not saved"),
            }
        }
        self.node.shutdown().await;
    }
}

/// How a torrent uses the DHT.
#[derive(Clone, Debug)]
pub struct DhtPeersConfig {
    /// Time between announce rounds.
    pub interval: Duration,
    /// Time before another round when no node stored the last announce.
    pub retry_interval: Duration,
    /// Below this many connected peers a downloading torrent looks up more often.
    pub low_peers: usize,
    /// Time between lookups while short of peers.
    pub low_peers_interval: Duration,
}

impl Default for DhtPeersConfig {
    fn default() -> Self {
        DhtPeersConfig {
            interval: Duration::from_secs(15 * 60),
            retry_interval: Duration::from_secs(5),
            low_peers: 10,
            low_peers_interval: Duration::from_secs(20),
        }
    }
}

/// A running DHT peer source; dropping it leaves it running, [`DhtPeersHandle::stop`]
/// ends it.
#[derive(Debug)]
pub struct DhtPeersHandle {
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl DhtPeersHandle {
    /// Stops the task and waits for it.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

/// Starts finding peers for `handle`'s torrent through `node`, announcing TCP `port`.
/// Needs a tokio runtime.
pub fn spawn(
    node: DhtNode,
    handle: TorrentHandle,
    port: u16,
    config: DhtPeersConfig,
) -> DhtPeersHandle {
    let (stop, mut stop_rx) = watch::channel(false);
    let task = tokio::spawn(async move {
        let info_hash = handle.info_hash();
        let mut stats = handle.subscribe();
        let mut next_announce = tokio::time::Instant::now();
        let mut next_lookup = next_announce;
        loop {
            let state = handle.stats().state;
            if matches!(state, TorrentState::Stopped | TorrentState::Error(_)) {
                return;
            }
            let active = matches!(state, TorrentState::Downloading | TorrentState::Seeding);
            let now = tokio::time::Instant::now();
            if active && now >= next_announce {
                next_announce = now + config.interval;
                next_lookup = now + config.low_peers_interval;
                match node.announce(info_hash, PeerPort::Port(port)).await {
                    Ok(report) => {
                        tracing::debug!(torrent = %info_hash, peers = report.peers.len(), stored_on = report.stored_on, "dht announce");
                        if report.stored_on == 0 {
                            next_announce = tokio::time::Instant::now() + config.retry_interval;
                        }
                        if !give(&handle, report.peers).await {
                            return;
                        }
                    }
                    Err(bt_dht::Error::Shutdown) => return,
                    Err(e) => {
                        tracing::debug!(torrent = %info_hash, error = %e, "dht announce failed")
                    }
                }
            } else if active && now >= next_lookup && short_of_peers(&handle, &config) {
                next_lookup = now + config.low_peers_interval;
                match node.get_peers(info_hash).await {
                    Ok(peers) => {
                        if !give(&handle, peers).await {
                            return;
                        }
                    }
                    Err(bt_dht::Error::Shutdown) => return,
                    Err(e) => {
                        tracing::debug!(torrent = %info_hash, error = %e, "dht lookup failed")
                    }
                }
            }
            let now = tokio::time::Instant::now();
            let wake = if !active {
                // Woken by a state change (resume) through `stats`.
                now + Duration::from_secs(3600)
            } else if short_of_peers(&handle, &config) {
                next_lookup.min(next_announce).max(now)
            } else {
                next_announce.max(now)
            };
            // Stats are published about once a second: each wakes this loop, which then
            // does nothing until a deadline passes or the state changes.
            tokio::select! {
                _ = tokio::time::sleep_until(wake) => {}
                r = stats.changed() => if r.is_err() { return },
                _ = stop_rx.changed() => return,
            }
        }
    });
    DhtPeersHandle { stop, task }
}

fn short_of_peers(handle: &TorrentHandle, config: &DhtPeersConfig) -> bool {
    let s = handle.stats();
    s.state == TorrentState::Downloading && s.peers < config.low_peers
}

/// Hands peers to the torrent; `false` once it has stopped.
async fn give(handle: &TorrentHandle, peers: Vec<SocketAddr>) -> bool {
    peers.is_empty() || handle.add_peers(peers).await.is_ok()
}
