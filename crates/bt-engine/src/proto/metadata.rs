//! Fetching a torrent's info dictionary from peers (BEP 9 over BEP 10), for magnet links:
//! the decisions.
//!
//! [`MetadataAssembler`] is told which peers are ready and what they sent
//! ([`AssemblerEvent`]) and answers with [`AssemblerAction`]s (request this piece from that
//! peer, close that peer, done). It never names sockets or the clock: `now` is an
//! argument, and [`MetadataAssembler::poll_timeout`] says when to call
//! [`MetadataAssembler::handle_timeout`]. The driver side that dials peers and relays their
//! messages is `driver::metadata` ([`crate::fetch_metadata`]).
//!
//! # Trust
//!
//! The assembled dictionary must hash (SHA-1) to the info-hash; otherwise it is thrown
//! away. When every piece came from one peer, that peer is *distrusted*: closed and never
//! asked again. When several peers contributed, the culprit is unknown, so nobody is
//! blamed yet and every later attempt takes all pieces from a single peer, which pins
//! the blame on the next failure. A peer that sends a piece of the wrong length or under
//! another `total_size` than the one it announced is distrusted at once.
//!
//! # Bounds
//!
//! `metadata_size` is capped at [`MAX_METADATA_LEN`] (32 MiB) before anything is stored;
//! each piece is copied into place as it arrives, into one buffer of the announced size
//! allocated with the first piece, so an attempt holds the metadata's size plus the
//! piece being read, and the dictionary handed back is that buffer. The torrent built
//! from it is parsed within the default [`LoadConfig`] limits, like a `.torrent`
//! ([`metainfo_from_info`]). Each peer has at
//! most [`MetadataConfig::max_requests_per_peer`] requests outstanding; a request
//! unanswered for [`MetadataConfig::request_timeout`] goes to another peer and the slow one
//! is closed; at most [`MetadataConfig::max_connections`] connections at once and
//! [`MetadataConfig::max_addresses`] addresses remembered. The whole fetch has no deadline
//! of its own.

use core::net::SocketAddr;
use std::collections::{BTreeMap, HashSet, VecDeque};
use std::time::{Duration, Instant};

use bt_bencode::{Dict, Value};
use bt_meta::{InfoHash, LoadConfig, Metainfo};
use bytes::Bytes;
use sha1::{Digest, Sha1};

pub use bt_wire::extension::METADATA_PIECE_LEN;

/// Largest info dictionary accepted from a peer: 32 MiB, the default
/// [`LoadConfig::max_input_len`] of a `.torrent`.
pub const MAX_METADATA_LEN: usize = 32 << 20;

/// Errors of a metadata fetch and of turning fetched metadata into a [`Metainfo`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MetadataError {
    /// The peer sources are exhausted and no peer could provide the metadata.
    #[error("no peer could provide the metadata of {info_hash} ({tried} addresses tried)")]
    NoPeers {
        /// The torrent.
        info_hash: InfoHash,
        /// Addresses dialled.
        tried: usize,
    },
    /// The info dictionary does not hash to the info-hash.
    #[error("metadata hashes to {got}, not to {expected}")]
    HashMismatch {
        /// The info-hash asked for.
        expected: InfoHash,
        /// What the bytes hash to.
        got: InfoHash,
    },
    /// The info dictionary hashes right but is not a valid torrent.
    #[error("metadata of {info_hash} is not a valid info dictionary: {source}")]
    Invalid {
        /// The torrent.
        info_hash: InfoHash,
        /// What is wrong with it.
        #[source]
        source: bt_meta::Error,
    },
}

/// Settings of a metadata fetch.
#[derive(Clone, Debug)]
pub struct MetadataConfig {
    /// Connections open at once.
    pub max_connections: usize,
    /// Metadata requests outstanding with one peer.
    pub max_requests_per_peer: usize,
    /// Connect, BitTorrent handshake and extended handshake must finish within this.
    pub handshake_timeout: Duration,
    /// A request unanswered this long goes to another peer; the peer is closed.
    pub request_timeout: Duration,
    /// A peer that rejects more requests than this is closed.
    pub max_rejects: u32,
    /// Distinct addresses remembered (dialled or queued); more are ignored.
    pub max_addresses: usize,
    /// Dials of one address that failed before it is given up.
    pub max_dial_attempts: u32,
    /// Wait before an address whose dial failed may be dialled again (when a source
    /// names it again).
    pub redial_delay: Duration,
    /// The `v` of our extended handshake.
    pub client: String,
}

impl Default for MetadataConfig {
    fn default() -> Self {
        MetadataConfig {
            max_connections: 8,
            max_requests_per_peer: 4,
            handshake_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(15),
            max_rejects: 8,
            max_addresses: 10_000,
            max_dial_attempts: 3,
            redial_delay: Duration::from_secs(3),
            client: format!("bt {}", env!("CARGO_PKG_VERSION")),
        }
    }
}

/// The number of 16 KiB pieces of a dictionary of `size` bytes.
pub fn piece_count(size: usize) -> usize {
    size.div_ceil(METADATA_PIECE_LEN)
}

/// The length of piece `piece` of a dictionary of `size` bytes (0 if out of range).
pub fn piece_len(size: usize, piece: usize) -> usize {
    let start = piece.saturating_mul(METADATA_PIECE_LEN);
    size.saturating_sub(start).min(METADATA_PIECE_LEN)
}

// ---------------------------------------------------------------------------------------
// The sans-I/O assembler
// ---------------------------------------------------------------------------------------

/// A connection of a fetch, as the assembler knows it (the driver numbers them).
pub type SourceKey = u64;

/// What happened on a connection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AssemblerEvent {
    /// The peer's extended handshake arrived.
    PeerReady {
        /// The connection.
        peer: SourceKey,
        /// Its address.
        addr: SocketAddr,
        /// The id the peer gave `ut_metadata` (`None`: not supported).
        ut_metadata: Option<u8>,
        /// The `metadata_size` it announced.
        metadata_size: Option<u32>,
    },
    /// A `ut_metadata` `data` message.
    Data {
        /// The connection.
        peer: SourceKey,
        /// Piece index.
        piece: u32,
        /// The `total_size` it claims.
        total_size: u32,
        /// The piece.
        data: Bytes,
    },
    /// A `ut_metadata` `reject` message.
    Reject {
        /// The connection.
        peer: SourceKey,
        /// Piece index.
        piece: u32,
    },
    /// The connection ended.
    PeerClosed {
        /// The connection.
        peer: SourceKey,
    },
}

/// Why the assembler drops a peer.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DropReason {
    /// No `ut_metadata` in its extended handshake.
    #[error("peer does not support ut_metadata")]
    NoUtMetadata,
    /// No `metadata_size` in its extended handshake: it has no metadata to give.
    #[error("peer announced no metadata_size")]
    NoMetadataSize,
    /// The announced size is 0 or above [`MAX_METADATA_LEN`].
    #[error("metadata_size {0} is out of range")]
    BadSize(u32),
    /// It sent a piece of the wrong length or with another `total_size`.
    #[error("bad metadata piece {piece}: {problem}")]
    BadPiece {
        /// Piece index.
        piece: u32,
        /// What is wrong.
        problem: &'static str,
    },
    /// Metadata it sent alone did not hash to the info-hash.
    #[error("its metadata does not match the info-hash")]
    HashMismatch,
    /// Too many rejected requests.
    #[error("rejected {0} metadata requests")]
    TooManyRejects(u32),
    /// A request went unanswered for too long.
    #[error("metadata request timed out")]
    Timeout,
    /// Its address is distrusted from an earlier connection.
    #[error("peer is distrusted")]
    Distrusted,
}

/// What the driver should do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AssemblerAction {
    /// Send a `ut_metadata` request.
    Request {
        /// The connection.
        peer: SourceKey,
        /// The id the peer gave `ut_metadata`.
        ut_metadata: u8,
        /// Piece index.
        piece: u32,
    },
    /// Close the connection; if `distrust`, never dial its address again.
    Close {
        /// The connection.
        peer: SourceKey,
        /// Why.
        reason: DropReason,
        /// Whether the address is now distrusted.
        distrust: bool,
    },
    /// The info dictionary, hashing to the info-hash.
    Done(Bytes),
}

/// A ready peer.
#[derive(Debug)]
struct Source {
    addr: SocketAddr,
    ut_metadata: u8,
    size: usize,
    inflight: usize,
    rejects: u32,
}

/// One piece of the current attempt.
#[derive(Clone, Copy, Debug)]
enum Piece {
    Missing,
    Requested {
        peer: SourceKey,
        at: Instant,
    },
    /// Copied into the attempt's buffer.
    Have {
        from: SourceKey,
    },
}

/// One try at assembling a dictionary of a given size.
#[derive(Debug)]
struct Attempt {
    size: usize,
    pieces: Vec<Piece>,
    /// The dictionary as its pieces arrive, each copied in place (allocated with the
    /// first piece), so an attempt holds the metadata's size and no more.
    buf: Vec<u8>,
    /// Single-source mode: the one peer everything is asked from.
    source: Option<SourceKey>,
}

impl Attempt {
    fn new(size: usize, source: Option<SourceKey>) -> Self {
        Attempt {
            size,
            pieces: vec![Piece::Missing; piece_count(size)],
            buf: Vec::new(),
            source,
        }
    }

    /// Copies piece `idx` into place.
    fn store(&mut self, idx: usize, data: &[u8], from: SourceKey) {
        if self.buf.is_empty() {
            self.buf = vec![0; self.size];
        }
        let start = idx * METADATA_PIECE_LEN;
        if let (Some(dest), Some(slot)) = (
            self.buf.get_mut(start..start + data.len()),
            self.pieces.get_mut(idx),
        ) {
            dest.copy_from_slice(data);
            *slot = Piece::Have { from };
        }
    }
}

/// Assembles an info dictionary from pieces sent by several peers; see the module
/// documentation.
///
/// Invariant: a peer's `inflight` equals the number of pieces in `Requested { peer }`
/// state; every `Requested` peer is in `sources`.
#[derive(Debug)]
pub struct MetadataAssembler {
    info_hash: InfoHash,
    max_requests_per_peer: usize,
    request_timeout: Duration,
    max_rejects: u32,
    /// Ready peers by key (ordered, so assignment is deterministic).
    sources: BTreeMap<SourceKey, Source>,
    attempt: Option<Attempt>,
    /// After a failed attempt with several contributors: one source per attempt.
    single_source: bool,
    distrusted: HashSet<SocketAddr>,
    /// Addresses of peers whose metadata failed as part of a mix: tried as single
    /// sources last.
    suspects: HashSet<SourceKey>,
    actions: VecDeque<AssemblerAction>,
    done: bool,
}

impl MetadataAssembler {
    /// An assembler for the torrent `info_hash`.
    pub fn new(info_hash: InfoHash, config: &MetadataConfig) -> Self {
        MetadataAssembler {
            info_hash,
            max_requests_per_peer: config.max_requests_per_peer.max(1),
            request_timeout: config.request_timeout,
            max_rejects: config.max_rejects,
            sources: BTreeMap::new(),
            attempt: None,
            single_source: false,
            distrusted: HashSet::new(),
            suspects: HashSet::new(),
            actions: VecDeque::new(),
            done: false,
        }
    }

    /// Whether `addr` sent bad metadata.
    pub fn is_distrusted(&self, addr: &SocketAddr) -> bool {
        self.distrusted.contains(addr)
    }

    /// Addresses of the ready peers, none of them distrusted.
    pub fn ready_addrs(&self) -> Vec<SocketAddr> {
        self.sources.values().map(|s| s.addr).collect()
    }

    /// Feeds one event.
    pub fn handle_event(&mut self, now: Instant, event: AssemblerEvent) {
        if self.done {
            return;
        }
        match event {
            AssemblerEvent::PeerReady {
                peer,
                addr,
                ut_metadata,
                metadata_size,
            } => self.peer_ready(peer, addr, ut_metadata, metadata_size),
            AssemblerEvent::Data {
                peer,
                piece,
                total_size,
                data,
            } => self.data(peer, piece, total_size, data),
            AssemblerEvent::Reject { peer, piece } => self.reject(peer, piece),
            AssemblerEvent::PeerClosed { peer } => self.peer_closed(peer),
        }
        self.assign(now);
    }

    /// Requests unanswered for the request timeout go back to the pool; their peers are
    /// closed.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.done {
            return;
        }
        let mut slow = Vec::new();
        if let Some(attempt) = &self.attempt {
            for p in &attempt.pieces {
                if let Piece::Requested { peer, at } = p {
                    if now.saturating_duration_since(*at) >= self.request_timeout
                        && !slow.contains(peer)
                    {
                        slow.push(*peer);
                    }
                }
            }
        }
        for peer in slow {
            self.drop_source(peer, DropReason::Timeout, false);
        }
        self.assign(now);
    }

    /// When [`MetadataAssembler::handle_timeout`] should next be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let attempt = self.attempt.as_ref()?;
        attempt
            .pieces
            .iter()
            .filter_map(|p| match p {
                Piece::Requested { at, .. } => Some(*at + self.request_timeout),
                _ => None,
            })
            .min()
    }

    /// The next thing to do.
    pub fn poll_action(&mut self) -> Option<AssemblerAction> {
        self.actions.pop_front()
    }

    fn peer_ready(
        &mut self,
        peer: SourceKey,
        addr: SocketAddr,
        ut_metadata: Option<u8>,
        size: Option<u32>,
    ) {
        let close = |reason| AssemblerAction::Close {
            peer,
            reason,
            distrust: false,
        };
        if self.distrusted.contains(&addr) {
            self.actions.push_back(close(DropReason::Distrusted));
            return;
        }
        let Some(ut_metadata) = ut_metadata else {
            self.actions.push_back(close(DropReason::NoUtMetadata));
            return;
        };
        let Some(size) = size else {
            self.actions.push_back(close(DropReason::NoMetadataSize));
            return;
        };
        if size == 0 || size as usize > MAX_METADATA_LEN {
            self.actions.push_back(close(DropReason::BadSize(size)));
            return;
        }
        self.sources.insert(
            peer,
            Source {
                addr,
                ut_metadata,
                size: size as usize,
                inflight: 0,
                rejects: 0,
            },
        );
    }

    fn data(&mut self, peer: SourceKey, piece: u32, total_size: u32, data: Bytes) {
        let Some(source) = self.sources.get(&peer) else {
            return;
        };
        let Some(attempt) = &mut self.attempt else {
            return;
        };
        let idx = piece as usize;
        let requested_here =
            matches!(attempt.pieces.get(idx), Some(Piece::Requested { peer: p, .. }) if *p == peer);
        if !requested_here {
            // Late (after a timeout) or unasked: ignore.
            return;
        }
        let problem = if total_size as usize != source.size {
            Some("total_size differs from its metadata_size")
        } else if data.len() != piece_len(attempt.size, idx) {
            Some("wrong length")
        } else {
            None
        };
        if let Some(problem) = problem {
            self.drop_source(peer, DropReason::BadPiece { piece, problem }, true);
            return;
        }
        attempt.store(idx, &data, peer);
        if let Some(s) = self.sources.get_mut(&peer) {
            s.inflight = s.inflight.saturating_sub(1);
        }
        self.check_complete();
    }

    fn reject(&mut self, peer: SourceKey, piece: u32) {
        let Some(attempt) = &mut self.attempt else {
            return;
        };
        let idx = piece as usize;
        if !matches!(attempt.pieces.get(idx), Some(Piece::Requested { peer: p, .. }) if *p == peer)
        {
            return;
        }
        attempt.pieces[idx] = Piece::Missing; // ok: get(idx) matched above
        let Some(s) = self.sources.get_mut(&peer) else {
            return;
        };
        s.inflight = s.inflight.saturating_sub(1);
        s.rejects += 1;
        if s.rejects > self.max_rejects {
            let n = s.rejects;
            self.drop_source(peer, DropReason::TooManyRejects(n), false);
        }
    }

    fn peer_closed(&mut self, peer: SourceKey) {
        self.forget(peer);
    }

    /// Closes a peer (telling the driver) and forgets it.
    fn drop_source(&mut self, peer: SourceKey, reason: DropReason, distrust: bool) {
        if let Some(s) = self.sources.get(&peer) {
            if distrust {
                self.distrusted.insert(s.addr);
            }
            self.actions.push_back(AssemblerAction::Close {
                peer,
                reason,
                distrust,
            });
        }
        self.forget(peer);
    }

    /// Removes a peer: its requests go back to the pool; a single-source attempt from
    /// it is abandoned.
    fn forget(&mut self, peer: SourceKey) {
        if self.sources.remove(&peer).is_none() {
            return;
        }
        self.suspects.remove(&peer);
        let Some(attempt) = &mut self.attempt else {
            return;
        };
        if attempt.source == Some(peer) {
            self.attempt = None;
            return;
        }
        for p in &mut attempt.pieces {
            if matches!(p, Piece::Requested { peer: q, .. } if *q == peer) {
                *p = Piece::Missing;
            }
        }
    }

    /// When every piece is in: hash, then done or blame.
    fn check_complete(&mut self) {
        let Some(attempt) = &self.attempt else {
            return;
        };
        if !attempt
            .pieces
            .iter()
            .all(|p| matches!(p, Piece::Have { .. }))
        {
            return;
        }
        let mut contributors = Vec::new();
        for p in &attempt.pieces {
            if let Piece::Have { from } = p {
                if !contributors.contains(from) {
                    contributors.push(*from);
                }
            }
        }
        let Some(attempt) = self.attempt.take() else {
            return;
        };
        let info = attempt.buf;
        let got = InfoHash(Sha1::digest(&info).into());
        if got == self.info_hash {
            self.done = true;
            self.actions
                .push_back(AssemblerAction::Done(Bytes::from(info)));
            return;
        }
        tracing::info!(info_hash = %self.info_hash, %got, peers = contributors.len(), "assembled metadata does not match the info-hash");
        if let [only] = contributors[..] {
            self.drop_source(only, DropReason::HashMismatch, true);
        } else {
            self.single_source = true;
            self.suspects.extend(contributors);
        }
    }

    /// Starts an attempt if none is running, and hands missing pieces to peers.
    fn assign(&mut self, now: Instant) {
        if self.done {
            return;
        }
        self.maybe_start_attempt();
        let Some(attempt) = &mut self.attempt else {
            return;
        };
        for (idx, p) in attempt.pieces.iter_mut().enumerate() {
            if !matches!(p, Piece::Missing) {
                continue;
            }
            // The eligible peer with the fewest requests outstanding (lowest key on ties).
            let pick = self
                .sources
                .iter_mut()
                .filter(|(k, s)| {
                    s.size == attempt.size
                        && s.inflight < self.max_requests_per_peer
                        && attempt.source.is_none_or(|only| only == **k)
                })
                .min_by_key(|(_, s)| s.inflight);
            let Some((&key, source)) = pick else {
                break;
            };
            source.inflight += 1;
            *p = Piece::Requested { peer: key, at: now };
            self.actions.push_back(AssemblerAction::Request {
                peer: key,
                ut_metadata: source.ut_metadata,
                piece: idx as u32, // ok: at most 2048 pieces of 16 KiB in 32 MiB
            });
        }
    }

    fn maybe_start_attempt(&mut self) {
        if let Some(attempt) = &self.attempt {
            // A multi-source attempt whose size no ready peer offers any more is given up
            // when another size is on offer.
            let offered = self.sources.values().any(|s| s.size == attempt.size);
            if offered || self.sources.is_empty() {
                return;
            }
            self.attempt = None;
        }
        if self.single_source {
            // Unsuspected peers first, then suspects (one of them may well be honest).
            let pick = self
                .sources
                .keys()
                .copied()
                .find(|k| !self.suspects.contains(k))
                .or_else(|| self.sources.keys().copied().next());
            if let Some(key) = pick {
                self.suspects.remove(&key);
                let size = self.sources[&key].size; // ok: key comes from sources
                self.attempt = Some(Attempt::new(size, Some(key)));
            }
        } else if let Some(s) = self.sources.values().next() {
            self.attempt = Some(Attempt::new(s.size, None));
        }
    }
}

// ---------------------------------------------------------------------------------------
// Building a torrent from the fetched dictionary
// ---------------------------------------------------------------------------------------

/// A `.torrent` holding `info` (the exact bytes) with `trackers` as `announce` (the first)
/// and `announce-list` (all tiers); canonical bencode (keys sorted).
pub fn torrent_file(info: &[u8], trackers: &[Vec<String>]) -> Vec<u8> {
    let tiers: Vec<Vec<String>> = trackers
        .iter()
        .map(|t| t.iter().filter(|u| !u.is_empty()).cloned().collect())
        .filter(|t: &Vec<String>| !t.is_empty())
        .collect();
    let mut root = Dict::new();
    if let Some(first) = tiers.first().and_then(|t| t.first()) {
        root.insert(&b"announce"[..], Value::owned_bytes(first.as_bytes()));
        let list = tiers
            .iter()
            .map(|t| Value::List(t.iter().map(|u| Value::owned_bytes(u.as_bytes())).collect()))
            .collect();
        root.insert(&b"announce-list"[..], Value::List(list));
    }
    // "info" sorts after both announce keys: splice the raw bytes in before the final 'e'.
    let mut out = Value::Dict(root).encode();
    out.pop();
    bt_bencode::encode_bytes(b"info", &mut out);
    out.extend_from_slice(info);
    out.push(b'e');
    out
}

/// Checks that `info` hashes to `info_hash` and builds the torrent (with `trackers` as its
/// announce tiers, as a magnet link gives them), within the default [`LoadConfig`]
/// limits (the info dictionary counted against `max_input_len`, not the trackers
/// wrapped around it).
pub fn metainfo_from_info(
    info_hash: InfoHash,
    info: &[u8],
    trackers: &[Vec<String>],
) -> Result<Metainfo, MetadataError> {
    let got = InfoHash(Sha1::digest(info).into());
    if got != info_hash {
        return Err(MetadataError::HashMismatch {
            expected: info_hash,
            got,
        });
    }
    let torrent = torrent_file(info, trackers);
    let mut limits = LoadConfig::default();
    if info.len() > limits.max_input_len {
        return Err(MetadataError::Invalid {
            info_hash,
            source: bt_meta::Error::LimitExceeded {
                limit: "max_input_len",
                what: "metadata bytes",
                value: info.len() as u64,
                max: limits.max_input_len as u64,
            },
        });
    }
    limits.max_input_len += torrent.len() - info.len();
    let meta = Metainfo::from_bytes_with(&torrent, &limits)
        .map_err(|source| MetadataError::Invalid { info_hash, source })?;
    if meta.info_hash != Some(info_hash) {
        // A v2-only dictionary has no v1 hash even though its bytes hash right.
        return Err(MetadataError::HashMismatch {
            expected: info_hash,
            got,
        });
    }
    Ok(meta)
}

#[cfg(test)]
pub(crate) mod tests;
