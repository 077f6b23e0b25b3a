//! Magnet links: the info dictionary is fetched from peers (BEP 9) and the torrent built
//! from it, so a magnet becomes a torrent like any other.
//!
//! Peers for the metadata come from the link's `x.pe`, the peers the caller gives, the
//! link's `tr` trackers (announced to every [`TRACKER_INTERVAL`] until the metadata is
//! in) and the session's DHT node when there is one. The fetched dictionary must hash to
//! the link's `btih`; the torrent built from it has the link's trackers as its announce
//! tiers. Links with only a v2 hash (`btmh`) are refused: peers are found and greeted by
//! the v1 hash.

use std::net::SocketAddr;
use std::time::Duration;

use bt_dht::DhtNode;
use bt_meta::{InfoHash, Magnet, Metainfo, PeerId};
use bt_tracker::{AnnounceRequest, TrackerClient};
use bytes::Bytes;
use tokio::sync::mpsc;

use crate::driver::metadata::fetch_metadata;
use crate::driver::transport::Dialer;
use crate::proto::metadata::{metainfo_from_info, MetadataConfig, MetadataError};

/// Time between announces to the link's trackers while the metadata is fetched.
pub const TRACKER_INTERVAL: Duration = Duration::from_secs(30);
/// Longest wait for one tracker.
const TRACKER_TIMEOUT: Duration = Duration::from_secs(20);
/// Time between DHT lookups while the metadata is fetched.
const DHT_INTERVAL: Duration = Duration::from_secs(5);

/// A magnet link's torrent, once its metadata is in.
#[derive(Clone, Debug)]
pub struct ResolvedMagnet {
    /// The torrent: the fetched info dictionary, the link's trackers.
    pub metainfo: Metainfo,
    /// The info dictionary exactly as fetched (it hashes to the info-hash).
    pub info: Bytes,
    /// Peers worth dialling: the link's `x.pe`, the given peers, and those that served the
    /// metadata.
    pub peers: Vec<SocketAddr>,
}

/// Why a magnet link gave no torrent.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MagnetError {
    /// The link names only a v2 info-hash.
    #[error("magnet link has no btih (v1) info-hash; v2-only links are not supported")]
    V2Only,
    /// Nothing to ask: no `x.pe`, no `tr`, no peers given and no DHT.
    #[error(
        "no peers to ask for the metadata (the link has no x.pe or tr, no peer was given \
         and the DHT is off)"
    )]
    NoSources,
    /// The fetch failed, or the metadata is not a valid torrent.
    #[error(transparent)]
    Metadata(#[from] MetadataError),
}

/// What a resolution works with: the session's dial path, identity and DHT.
pub(crate) struct Resolver<'a> {
    /// How peers are dialled.
    pub dialer: Dialer,
    /// Our peer id.
    pub peer_id: PeerId,
    /// Our listening port (announced to the link's trackers).
    pub port: u16,
    /// The session's DHT node.
    pub dht: Option<&'a DhtNode>,
}

impl Resolver<'_> {
    /// Fetches the metadata of `magnet` from every source it and `peers` name.
    pub async fn resolve(
        &self,
        magnet: &Magnet,
        peers: &[SocketAddr],
    ) -> Result<ResolvedMagnet, MagnetError> {
        let info_hash = magnet.info_hash.ok_or(MagnetError::V2Only)?;
        let mut known: Vec<SocketAddr> = Vec::new();
        for a in magnet.peers.iter().chain(peers) {
            if !known.contains(a) {
                known.push(*a);
            }
        }
        let sources = known.len() + magnet.trackers.len() + usize::from(self.dht.is_some());
        if sources == 0 {
            return Err(MagnetError::NoSources);
        }
        let (tx, rx) = mpsc::channel(256);
        for a in &known {
            // ok to ignore: the receiver is alive and the channel holds 256
            let _ = tx.try_send(*a);
        }
        if !magnet.trackers.is_empty() {
            let trackers = magnet.trackers.clone();
            tokio::spawn(tracker_source(
                info_hash,
                self.peer_id,
                self.port,
                trackers,
                tx.clone(),
            ));
        }
        if let Some(node) = self.dht {
            tokio::spawn(dht_source(node.clone(), info_hash, tx.clone()));
        }
        drop(tx);
        let fetched = fetch_metadata(
            self.dialer.clone(),
            info_hash,
            self.peer_id,
            rx,
            MetadataConfig::default(),
        )
        .await?;
        let metainfo = metainfo_from_info(info_hash, &fetched.info, &magnet.tracker_tiers())?;
        for a in fetched.peers {
            if !known.contains(&a) {
                known.push(a);
            }
        }
        Ok(ResolvedMagnet {
            metainfo,
            info: fetched.info,
            peers: known,
        })
    }
}

/// Announces to `trackers` every [`TRACKER_INTERVAL`] until `tx` closes, sending the peers
/// found.
async fn tracker_source(
    info_hash: InfoHash,
    peer_id: PeerId,
    port: u16,
    trackers: Vec<String>,
    tx: mpsc::Sender<SocketAddr>,
) {
    let client = TrackerClient::default();
    loop {
        for url in &trackers {
            let mut req = AnnounceRequest::new(info_hash, peer_id, port);
            // The size is unknown until the metadata is in; not 0, or we would count as a
            // seed.
            req.left = 1;
            req.numwant = Some(50);
            let announce = tokio::time::timeout(TRACKER_TIMEOUT, client.announce(url, &req));
            let answer = tokio::select! {
                r = announce => r,
                _ = tx.closed() => return,
            };
            match answer {
                Ok(Ok(resp)) => {
                    for a in resp.peer_addrs() {
                        if tx.send(a).await.is_err() {
                            return;
                        }
                    }
                }
                Ok(Err(e)) => tracing::warn!(tracker = %url, error = %e, "announce failed"),
                Err(_) => tracing::warn!(tracker = %url, "announce timed out"),
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(TRACKER_INTERVAL) => {}
            _ = tx.closed() => return,
        }
    }
}

/// Looks `info_hash` up in the DHT every [`DHT_INTERVAL`] until `tx` closes, sending the
/// peers found.
async fn dht_source(node: DhtNode, info_hash: InfoHash, tx: mpsc::Sender<SocketAddr>) {
    loop {
        match node.get_peers_stream(info_hash).await {
            Ok(mut stream) => {
                while let Some(batch) = stream.next().await {
                    for a in batch {
                        if tx.send(a).await.is_err() {
                            return;
                        }
                    }
                }
            }
            Err(e) => {
                tracing::debug!(error = %e, "dht lookup failed");
                return;
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(DHT_INTERVAL) => {}
            _ = tx.closed() => return,
        }
    }
}
