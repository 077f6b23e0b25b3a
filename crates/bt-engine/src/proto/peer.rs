//! What a torrent knows about one connected peer: the protocol state of the connection
//! (choke and interest both ways, the first-message rule), its transfer rates, and the
//! budgets that bound what it may cost us. What pieces it has is the picker's to know.

use core::net::SocketAddr;
use std::time::Instant;

use bt_meta::{PeerId, BLOCK_LEN};

use crate::proto::extended::PeerExtensions;
use crate::proto::rate::RateMeter;

/// Request pipeline bounds per peer (blocks).
pub const MIN_QUEUE_DEPTH: usize = 16;
/// Request pipeline bounds per peer (blocks): 3 MiB, several milliseconds of data even at
/// 1 GiB/s, far above the bandwidth-delay product of loopback or a LAN; every requested
/// block may sit in memory until it is written, so this bounds the memory a peer costs.
/// Below the 500 or so requests common clients accept per peer (libtorrent, Transmission).
pub const MAX_QUEUE_DEPTH: usize = 192;

/// One connected peer; see the module documentation.
#[derive(Debug)]
pub(crate) struct PeerState {
    /// Where it is.
    pub addr: SocketAddr,
    /// The id from its handshake.
    pub id: PeerId,
    /// Both sides support the fast extension (BEP 6).
    pub fast: bool,
    /// We dialled it (its address is one to dial again if it drops).
    pub outgoing: bool,
    /// A message other than a keep-alive arrived (bitfields must come first).
    pub got_first: bool,
    /// It chokes us.
    pub peer_choking: bool,
    /// It wants to download from us.
    pub peer_interested: bool,
    /// We want to download from it.
    pub am_interested: bool,
    /// Payload it sent us.
    pub down: RateMeter,
    /// Payload we sent it.
    pub up: RateMeter,
    /// Last time a block arrived, or requests were first sent after a quiet spell.
    pub last_block_at: Instant,
    /// When the handshake finished.
    pub connected_at: Instant,
    /// The peer stopped answering requests: ask for one block at a time.
    pub snubbed: bool,
    /// Unrequested blocks still tolerated (after cancels, chokes and timeouts).
    pub stale_budget: u32,
    /// Blocks approved for upload and not yet reported served or dropped.
    pub upload_queued: u32,
    /// Requests ignored (while choked, or for pieces we lack) since the last unchoke.
    pub ignored_requests: u32,
    /// BEP 10 extensions: ut_metadata, ut_pex, the DHT `port`.
    pub ext: PeerExtensions,
    /// Super-seeding: the pieces we told this peer we have and it has not announced
    /// (`None`: the connection is not super-seeded).
    pub offered: Option<Vec<u32>>,
    /// The torrent's peer-set generation when PEX last had nothing to tell this peer.
    pub pex_looked: Option<u64>,
}

impl PeerState {
    /// A peer that just finished its handshake: choked and not interested both ways.
    pub fn new(
        now: Instant,
        addr: SocketAddr,
        id: PeerId,
        fast: bool,
        outgoing: bool,
        ext: PeerExtensions,
    ) -> Self {
        PeerState {
            addr,
            id,
            fast,
            outgoing,
            got_first: false,
            peer_choking: true,
            peer_interested: false,
            am_interested: false,
            down: RateMeter::new(now),
            up: RateMeter::new(now),
            last_block_at: now,
            connected_at: now,
            snubbed: false,
            stale_budget: 0,
            upload_queued: 0,
            ignored_requests: 0,
            ext,
            offered: None,
            pex_looked: None,
        }
    }

    /// How many requests to keep outstanding: about one second of its measured rate
    /// (bandwidth-delay product), within [`MIN_QUEUE_DEPTH`]..=[`MAX_QUEUE_DEPTH`]; one at
    /// a time while it snubs us.
    pub fn queue_depth(&mut self, now: Instant) -> usize {
        if self.snubbed {
            return 1;
        }
        let per_sec = self.down.rate(now) / u64::from(BLOCK_LEN);
        (per_sec as usize).clamp(MIN_QUEUE_DEPTH, MAX_QUEUE_DEPTH)
    }
}
