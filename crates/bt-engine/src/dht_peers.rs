//! The DHT as a peer source for one torrent: [`spawn`] starts a task that looks the
//! torrent up in the DHT, announces it, and hands the peers found to its
//! [`TorrentHandle`].
//!
//! Built only on the public [`TorrentHandle`] API and `bt-dht`'s [`DhtNode`], like
//! [`crate::announce`] for trackers. The schedule:
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
//! Private torrents (BEP 27) must never reach this module: the caller checks
//! `info.private` (the CLI does).

use std::net::SocketAddr;
use std::time::Duration;

use bt_dht::{DhtNode, PeerPort};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::driver::torrent::TorrentHandle;
use crate::proto::TorrentState;

/// Settings of a DHT peer source.
#[derive(Clone, Debug)]
pub struct DhtPeersConfig {
    /// The TCP port we accept peers on (announced to the DHT).
    pub port: u16,
    /// Time between announce rounds.
    pub interval: Duration,
    /// Time before another round when no node stored the last announce.
    pub retry_interval: Duration,
    /// Below this many connected peers a downloading torrent looks up more often.
    pub low_peers: usize,
    /// Time between lookups while short of peers.
    pub low_peers_interval: Duration,
}

impl DhtPeersConfig {
    /// Defaults for peers reaching us on TCP `port`.
    pub fn new(port: u16) -> Self {
        DhtPeersConfig {
            port,
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

/// Starts finding peers for `handle`'s torrent through `node`. Needs a tokio runtime.
pub fn spawn(node: DhtNode, handle: TorrentHandle, config: DhtPeersConfig) -> DhtPeersHandle {
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
                match node.announce(info_hash, PeerPort::Port(config.port)).await {
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
