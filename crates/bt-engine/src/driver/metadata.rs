//! Fetching a torrent's info dictionary from peers (BEP 9 over BEP 10), for magnet links:
//! the tokio side.
//!
//! [`fetch_metadata`] dials candidate addresses from a channel (magnet `x.pe`, trackers,
//! DHT) a few at a time, exchanges handshakes with the extension bit set and BEP 10
//! extended handshakes (announcing our `ut_metadata` id, reading the peer's id and
//! `metadata_size`), and runs the sans-I/O [`MetadataAssembler`] on what they send. It
//! has no deadline of its own: wrap it in `tokio::time::timeout`.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bt_meta::{InfoHash, PeerId};
use bt_wire::extension::{UT_METADATA, UT_PEX};
use bt_wire::{ExtendedHandshake, Handshake, Message, MessageCodec, MetadataMessage};
use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_util::codec::Framed;

use crate::driver::encryption::PeerStream;
use crate::driver::transport::Dialer;
use crate::proto::metadata::{
    AssemblerAction, AssemblerEvent, MetadataAssembler, MetadataConfig, MetadataError, SourceKey,
};
use crate::proto::ut_metadata::OUR_UT_METADATA_ID;
use crate::proto::Disconnect;

/// What [`fetch_metadata`] found.
#[derive(Clone, Debug)]
pub struct FetchedMetadata {
    /// The info dictionary, exactly as served; it hashes to the info-hash.
    pub info: Bytes,
    /// Peers that completed the extended handshake and were not distrusted: worth
    /// dialling for the download.
    pub peers: Vec<SocketAddr>,
}

/// What every connection of a fetch shares.
struct Fetch {
    dialer: Dialer,
    info_hash: InfoHash,
    peer_id: PeerId,
    config: MetadataConfig,
}

/// What a connection task reports.
#[derive(Debug)]
enum ConnEvent {
    Ready {
        key: SourceKey,
        addr: SocketAddr,
        handshake: ExtendedHandshake,
    },
    Metadata {
        key: SourceKey,
        msg: MetadataMessage,
    },
    Closed {
        key: SourceKey,
        addr: SocketAddr,
        reason: String,
        /// Whether it failed before its extended handshake (a dial failure).
        early: bool,
    },
}

/// A request for the connection task: send `ut_metadata` request `piece` under `id`.
#[derive(Debug)]
struct Outgoing {
    id: u8,
    piece: u32,
}

/// Dial bookkeeping of one address.
#[derive(Debug)]
struct DialRecord {
    attempts: u32,
    last: Instant,
}

/// Fetches the info dictionary of `info_hash` from peers named on `addrs`, dialled
/// through `dialer` (so its encryption policy holds here as for any connection).
///
/// Dials at most [`MetadataConfig::max_connections`] addresses at once; an address is
/// dialled again (up to [`MetadataConfig::max_dial_attempts`] times) only when a source
/// names it again after [`MetadataConfig::redial_delay`]. Returns once the dictionary is
/// in and hashes right, or [`MetadataError::NoPeers`] once `addrs` is closed and every
/// address has been tried. It has no deadline of its own.
pub async fn fetch_metadata(
    dialer: Dialer,
    info_hash: InfoHash,
    peer_id: PeerId,
    mut addrs: mpsc::Receiver<SocketAddr>,
    config: MetadataConfig,
) -> Result<FetchedMetadata, MetadataError> {
    let mut assembler = MetadataAssembler::new(info_hash, &config);
    let fetch = Arc::new(Fetch {
        dialer,
        info_hash,
        peer_id,
        config: config.clone(),
    });
    let (events_tx, mut events) = mpsc::channel::<ConnEvent>(256);
    let mut tasks = JoinSet::new();
    let mut conns: HashMap<SourceKey, (SocketAddr, mpsc::Sender<Outgoing>)> = HashMap::new();
    let mut queue: VecDeque<SocketAddr> = VecDeque::new();
    let mut dialled: HashMap<SocketAddr, DialRecord> = HashMap::new();
    let mut next_key: SourceKey = 0;
    let mut addrs_open = true;
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);

    loop {
        // Dial what the limits allow.
        while conns.len() < config.max_connections {
            let Some(addr) = queue.pop_front() else {
                break;
            };
            if assembler.is_distrusted(&addr) || conns.values().any(|(a, _)| *a == addr) {
                continue;
            }
            let rec = dialled.entry(addr).or_insert(DialRecord {
                attempts: 0,
                last: Instant::now(),
            });
            rec.attempts += 1;
            rec.last = Instant::now();
            let key = next_key;
            next_key += 1;
            let (tx, rx) = mpsc::channel(config.max_requests_per_peer.max(1) * 2);
            conns.insert(key, (addr, tx));
            tasks.spawn(run_connection(
                Arc::clone(&fetch),
                key,
                addr,
                events_tx.clone(),
                rx,
            ));
        }
        // Apply the assembler's decisions.
        while let Some(action) = assembler.poll_action() {
            match action {
                AssemblerAction::Done(info) => {
                    tasks.abort_all();
                    return Ok(FetchedMetadata {
                        info,
                        peers: assembler.ready_addrs(),
                    });
                }
                AssemblerAction::Request {
                    peer,
                    ut_metadata,
                    piece,
                } => {
                    let sent = conns.get(&peer).is_some_and(|(_, tx)| {
                        tx.try_send(Outgoing {
                            id: ut_metadata,
                            piece,
                        })
                        .is_ok()
                    });
                    if !sent {
                        // The connection is gone or stuck: its PeerClosed follows, or
                        // the request times out.
                        tracing::debug!(peer, piece, "metadata request not queued");
                    }
                }
                AssemblerAction::Close {
                    peer,
                    reason,
                    distrust,
                } => {
                    if let Some((addr, _)) = conns.remove(&peer) {
                        tracing::debug!(%addr, %reason, distrust, "closing metadata peer");
                    }
                }
            }
        }
        if !addrs_open && queue.is_empty() && conns.is_empty() {
            return Err(MetadataError::NoPeers {
                info_hash,
                tried: dialled.len(),
            });
        }
        let wake = assembler.poll_timeout().map(tokio::time::Instant::from_std);
        tokio::select! {
            addr = addrs.recv(), if addrs_open => match addr {
                Some(addr) => {
                    let again = match dialled.get(&addr) {
                        None => dialled.len() + queue.len() < config.max_addresses,
                        Some(rec) => rec.attempts < config.max_dial_attempts
                            && rec.last.elapsed() >= config.redial_delay,
                    };
                    if again && !queue.contains(&addr) && !assembler.is_distrusted(&addr) {
                        queue.push_back(addr);
                    }
                }
                None => addrs_open = false,
            },
            Some(ev) = events.recv() => {
                let now = Instant::now();
                match ev {
                    ConnEvent::Ready { key, addr, handshake } => {
                        if conns.contains_key(&key) {
                            if let Some(rec) = dialled.get_mut(&addr) {
                                rec.attempts = 0;
                            }
                            assembler.handle_event(now, AssemblerEvent::PeerReady {
                                peer: key,
                                addr,
                                ut_metadata: handshake.id(UT_METADATA),
                                metadata_size: handshake.metadata_size,
                            });
                        }
                    }
                    ConnEvent::Metadata { key, msg } => {
                        let ev = match msg {
                            MetadataMessage::Data { piece, total_size, data } => {
                                AssemblerEvent::Data { peer: key, piece, total_size, data }
                            }
                            MetadataMessage::Reject { piece } => {
                                AssemblerEvent::Reject { peer: key, piece }
                            }
                            _ => continue,
                        };
                        assembler.handle_event(now, ev);
                    }
                    ConnEvent::Closed { key, addr, reason, early } => {
                        tracing::debug!(%addr, %reason, early, "metadata connection ended");
                        conns.remove(&key);
                        assembler.handle_event(now, AssemblerEvent::PeerClosed { peer: key });
                    }
                }
            }
            _ = async {
                match wake {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            } => assembler.handle_timeout(Instant::now()),
            _ = tick.tick() => {}
            Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
        }
    }
}

/// Why a metadata connection ended.
#[derive(Debug, thiserror::Error)]
enum ConnError {
    #[error("{0}")]
    Dial(#[from] Disconnect),
    #[error("{0}")]
    Wire(#[from] bt_wire::WireError),
    #[error("timed out")]
    Timeout,
    #[error("closed by peer")]
    Eof,
    #[error("peer does not support the extension protocol")]
    NoExtensions,
    #[error("bad extension message: {0}")]
    Extension(#[from] bt_wire::ExtensionError),
    #[error("closed by us")]
    Closed,
}

/// One connection: handshakes, then relays `ut_metadata` messages both ways.
async fn run_connection(
    fetch: Arc<Fetch>,
    key: SourceKey,
    addr: SocketAddr,
    events: mpsc::Sender<ConnEvent>,
    mut outgoing: mpsc::Receiver<Outgoing>,
) {
    let setup = tokio::time::timeout(fetch.config.handshake_timeout, connect(&fetch, addr))
        .await
        .unwrap_or(Err(ConnError::Timeout));
    let (mut framed, handshake) = match setup {
        Ok(x) => x,
        Err(e) => {
            let _ = events
                .send(ConnEvent::Closed {
                    key,
                    addr,
                    reason: e.to_string(),
                    early: true,
                })
                .await;
            return;
        }
    };
    if events
        .send(ConnEvent::Ready {
            key,
            addr,
            handshake,
        })
        .await
        .is_err()
    {
        return;
    }
    let reason = loop {
        tokio::select! {
            msg = framed.next() => {
                let msg = match msg {
                    None => break ConnError::Eof,
                    Some(Err(e)) => break e.into(),
                    Some(Ok(m)) => m,
                };
                let Message::Extended { id, payload } = msg else { continue };
                if id != OUR_UT_METADATA_ID {
                    continue;
                }
                let msg = match MetadataMessage::decode(&payload) {
                    Ok(m) => m,
                    Err(e) => break e.into(),
                };
                if let MetadataMessage::Request { .. } = msg {
                    // We have no metadata to give (we announced no metadata_size).
                    continue;
                }
                if events.send(ConnEvent::Metadata { key, msg }).await.is_err() {
                    return;
                }
            }
            out = outgoing.recv() => {
                let Some(Outgoing { id, piece }) = out else { break ConnError::Closed };
                let msg = MetadataMessage::Request { piece }.to_message(id);
                if let Err(e) = framed.send(msg).await {
                    break e.into();
                }
            }
        }
    };
    let _ = events
        .send(ConnEvent::Closed {
            key,
            addr,
            reason: reason.to_string(),
            early: false,
        })
        .await;
}

/// Dials (through the session's one dial path), exchanges handshakes and extended
/// handshakes.
async fn connect(
    fetch: &Fetch,
    addr: SocketAddr,
) -> Result<(Framed<PeerStream, MessageCodec>, ExtendedHandshake), ConnError> {
    let mut ours = Handshake::new(fetch.info_hash, fetch.peer_id);
    ours.reserved.set_extension_protocol(true);
    let (framed, theirs) = fetch.dialer.dial(addr, ours).await?;
    if !theirs.reserved.supports_extension_protocol() {
        return Err(ConnError::NoExtensions);
    }
    let mut framed = framed.map_codec(|_| MessageCodec::new());
    let mut hs = ExtendedHandshake::default();
    hs.extensions
        .insert(UT_METADATA.to_owned(), OUR_UT_METADATA_ID);
    // Named as disabled: we take no PEX on this short-lived connection.
    hs.extensions.insert(UT_PEX.to_owned(), 0);
    hs.client = Some(fetch.config.client.clone());
    framed.send(hs.to_message()).await?;
    loop {
        match framed.next().await.ok_or(ConnError::Eof)?? {
            Message::Extended { id: 0, payload } => {
                return Ok((framed, ExtendedHandshake::decode(&payload)?));
            }
            _ => continue,
        }
    }
}

#[cfg(test)]
mod tests;
