//! The piece picker: which 16 KiB blocks to request from which peer.
//!
//! [`Picker`] is a sans-I/O state machine. The driver tells it what each peer
//! has ([`Picker::peer_bitfield`], [`Picker::peer_have`], ...), asks it for
//! requests ([`Picker::pick_blocks`]) and reports how each request ended
//! ([`Picker::block_received`], [`Picker::request_released`],
//! [`Picker::peer_choked`], [`Picker::hash_passed`], [`Picker::hash_failed`]).
//! It never touches sockets, files or the clock; its only randomness is the
//! seeded [`StdRng`] handed to [`Picker::new`], so a run is reproducible.
//! It does not check hashes, store data, track request timeouts or decide
//! whom to unchoke (see [`crate::proto::choker`]).
//!
//! Geometry is the torrent's [`Geometry`] (pieces and 16 KiB blocks, the last block of
//! a piece and the last piece may be short); blocks are [`BlockInfo`]s.
//!
//! # Policy
//!
//! 1. **Priority.** Each piece has a [`Priority`]; level 0 means skip. Higher
//!    levels are picked first.
//! 2. **In-progress first.** Within a priority level, a piece already started
//!    (some blocks requested or received) that still has unrequested blocks
//!    and that the peer has is finished before a new piece is started.
//! 3. **Rarest first.** New pieces are started in order of availability (how
//!    many connected peers have them), ties broken at random, except that the piece
//!    after the last one started is taken when it is as rare (runs on disk).
//! 4. **Endgame.** Once every block of every wanted piece has been requested,
//!    blocks still outstanding may be requested from further peers, up to
//!    [`PickerConfig::endgame_max_requesters`] peers per block. When one copy
//!    arrives, [`BlockReceived::New`] lists the duplicate requests to cancel.
//! 5. **Sequential mode** ([`PickerConfig::sequential`]): wanted pieces are
//!    picked in index order, for streaming. Priority levels above 0 are then
//!    ignored: only "wanted or skipped" matters.
//!
//! # State and invariants
//!
//! Every piece is in exactly one [`PieceState`]:
//!
//! | state | bookkeeping |
//! |---|---|
//! | `Missing` | in the availability bucket `(priority, availability)` iff priority > 0; nothing requested or received |
//! | `Partial` | an entry in `partials`; every block is free, requested (by 1..=N peers) or received; `free + requested + received == blocks`; `requested + received > 0`; `received < blocks`; listed in `with_free` iff `free > 0` |
//! | `Complete` | all blocks received, awaiting the hash check; an entry in `awaiting` naming the contributing peers |
//! | `Have` | verified |
//!
//! Transitions: `Missing -> Partial` (picked, or an unsolicited block
//! arrived); `Partial -> Missing` (its last request was released and nothing
//! was received); `Partial -> Complete` (last block received);
//! `Complete -> Have` (hash passed); `Complete -> Missing` (hash failed);
//! `Missing -> Have` ([`Picker::mark_have`]).
//!
//! Counters kept in step with that state:
//! - each peer has a slot; the piece-major `holders` matrix has bit
//!   `(p, slot)` set iff that peer, not a have-all peer, announced `p`.
//!   `avail[p]` is the number of bits in row `p`; `seeds` counts the have-all
//!   peers (they add the same amount to every piece, so they do not change
//!   the rarest-first order, and are kept out of the matrix).
//! - for every peer, `outstanding` lists exactly the blocks whose slot names
//!   it as a requester; for a peer without have-all, `count` is the number of
//!   bits in its column, `wanted` counts the pieces it has that are wanted and
//!   not `Have`, and `candidates` those that are wanted and `Missing` (so a
//!   peer with nothing new to offer costs O(1) to pick for). For have-all
//!   peers these follow from the global counters and are kept at 0.
//! - `have`, `wanted_total`, `wanted_have` count pieces by state and priority.
//! - in sequential mode, every piece below `seq_cursor` is `Have`, `Complete`
//!   or skipped.
//!
//! [`Picker::check_invariants`] recomputes all of this from scratch; debug
//! builds run it after every mutation on small torrents (see
//! [`DEBUG_CHECK_MAX_WORK`]).
//!
//! # Cost
//!
//! Availability updates move a piece between two buckets in O(1). A piece
//! changing state updates the counters of the peers that have it by walking
//! its row of the `holders` matrix (one cache line up to 512 peers). Picking a
//! new piece visits buckets from the rarest up and scans a bucket from a random
//! start until it finds a piece the peer has, so the cost depends on how many
//! rare pieces the peer lacks, not on the number of pieces: with random
//! bitfields it is flat from 1k to 1M pieces (see `benches/picker.rs`).
//! In-progress pieces are found by scanning the short `with_free` list.
//! Endgame scans the in-progress pieces only.

use std::collections::{BTreeMap, BTreeSet};

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::Rng;

use bt_meta::{BlockInfo, Geometry, PieceIndex, BLOCK_LEN};

use crate::proto::PeerKey;

/// Debug builds check invariants after each mutation only while
/// `pieces * (peers + 1)` is at most this, so large debug runs stay usable.
pub const DEBUG_CHECK_MAX_WORK: usize = 1 << 16;

/// Number of non-zero priority levels.
const LEVELS: usize = 7;

/// Everything the picker can reject.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PickerError {
    /// A piece index past the end of the torrent.
    #[error("piece {piece} out of range (torrent has {num_pieces} pieces)")]
    PieceOutOfRange {
        /// The bad index.
        piece: u32,
        /// Number of pieces in the torrent.
        num_pieces: u32,
    },
    /// A block that is not one of the torrent's 16 KiB blocks.
    #[error(
        "block (piece {piece}, begin {begin}, length {len}) does not match the piece geometry"
    )]
    InvalidBlock {
        /// Piece index.
        piece: u32,
        /// Offset within the piece.
        begin: u32,
        /// Length in bytes.
        len: u32,
    },
    /// A bitfield of the wrong byte length.
    #[error("bitfield is {got} bytes, expected {expected}")]
    BitfieldLen {
        /// Length received.
        got: usize,
        /// Length for this torrent.
        expected: usize,
    },
    /// A bitfield with bits set past the last piece.
    #[error("bitfield has spare bits set past piece {num_pieces}")]
    BitfieldSpareBits {
        /// Number of pieces in the torrent.
        num_pieces: u32,
    },
    /// A priority level above 7.
    #[error("priority {0} out of range 0..=7")]
    InvalidPriority(u8),
    /// A priority list whose length is not the piece count.
    #[error("{got} priorities for {expected} pieces")]
    PriorityCount {
        /// Length given.
        got: usize,
        /// Number of pieces.
        expected: usize,
    },
    /// An operation on a piece in the wrong state (e.g. a hash result for a
    /// piece that is not awaiting one).
    #[error("piece {piece} is {state:?}, expected {expected:?}")]
    WrongState {
        /// Piece index.
        piece: u32,
        /// Its current state.
        state: PieceState,
        /// The state the operation needs.
        expected: PieceState,
    },
    /// [`Picker::check_invariants`] found inconsistent bookkeeping (a bug).
    #[error("picker invariant violated: {0}")]
    Invariant(String),
}

/// Download priority of a piece: 0 skips it, 1..=7 are levels, higher first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Priority(u8);

impl Priority {
    /// Do not download.
    pub const SKIP: Priority = Priority(0);
    /// Lowest wanted level.
    pub const LOWEST: Priority = Priority(1);
    /// The default level.
    pub const NORMAL: Priority = Priority(4);
    /// Highest level.
    pub const HIGHEST: Priority = Priority(7);

    /// Priority `level` (0..=7).
    pub fn new(level: u8) -> Result<Self, PickerError> {
        if usize::from(level) <= LEVELS {
            Ok(Priority(level))
        } else {
            Err(PickerError::InvalidPriority(level))
        }
    }

    /// The level, 0..=7.
    pub fn level(self) -> u8 {
        self.0
    }

    /// Whether the piece is wanted at all (level above 0).
    pub fn is_wanted(self) -> bool {
        self.0 > 0
    }
}

impl Default for Priority {
    fn default() -> Self {
        Priority::NORMAL
    }
}

/// Picker settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PickerConfig {
    /// Pick pieces in index order instead of rarest first.
    pub sequential: bool,
    /// In endgame, the most peers one block may be requested from at once.
    pub endgame_max_requesters: usize,
}

impl Default for PickerConfig {
    fn default() -> Self {
        Self {
            sequential: false,
            endgame_max_requesters: 3,
        }
    }
}

/// Where a piece stands; see the module documentation for the transitions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PieceState {
    /// Not started.
    Missing,
    /// Some blocks requested or received, not all received.
    Partial,
    /// All blocks received, awaiting the hash check.
    Complete,
    /// Verified.
    Have,
}

/// What to do with a block that arrived, from [`Picker::block_received`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BlockReceived {
    /// New data: store it.
    New {
        /// All blocks of the piece are in: check its hash, then call
        /// [`Picker::hash_passed`] or [`Picker::hash_failed`].
        piece_complete: bool,
        /// Endgame duplicates to cancel: send `cancel` for each block to its
        /// peer. The picker has already forgotten these requests.
        cancels: Vec<(PeerKey, BlockInfo)>,
    },
    /// We already have this block, or do not want its piece: drop the data.
    Ignored,
}

/// What the picker knows about one peer.
#[derive(Debug, Clone)]
struct PeerInfo {
    key: PeerKey,
    has_all: bool,
    /// Pieces announced, for a peer without have-all.
    count: u32,
    /// Pieces the peer has that are wanted and not `Have` (0 for have-all
    /// peers, whose count is `wanted_total - wanted_have`).
    wanted: u32,
    /// Pieces the peer has that are wanted and `Missing` (0 for have-all
    /// peers, whose count is the number of bucketed pieces).
    candidates: u32,
    /// Blocks requested from this peer and not yet resolved.
    outstanding: Vec<BlockInfo>,
}

impl PeerInfo {
    fn forget_request(&mut self, block: BlockInfo) -> bool {
        match self.outstanding.iter().position(|b| *b == block) {
            Some(i) => {
                self.outstanding.swap_remove(i);
                true
            }
            None => false,
        }
    }
}

/// What one peer has, borrowed from [`Peers`] for quick membership checks.
#[derive(Clone, Copy)]
struct PeerView<'a> {
    has_all: bool,
    holders: &'a [u64],
    words: usize,
    word: usize,
    mask: u64,
    /// [`PeerInfo::wanted`] (0 for have-all peers).
    wanted: u32,
    /// [`PeerInfo::candidates`] (0 for have-all peers).
    candidates: u32,
}

impl PeerView<'_> {
    fn has(&self, piece: u32) -> bool {
        self.has_all
            || self
                .holders
                .get(piece as usize * self.words + self.word)
                .is_some_and(|w| w & self.mask != 0)
    }
}

/// The connected peers, in slots, and which of them has which piece.
///
/// `holders` is piece-major: row `p` is `words` words, bit `slot` set iff the
/// peer in `slot` (without have-all) has piece `p`. A piece's holders are one
/// cache line for up to 512 peers, so updating the counters of the peers that
/// have a piece costs O(its holders), whatever the number of pieces.
#[derive(Debug, Clone)]
struct Peers {
    index: BTreeMap<PeerKey, u32>,
    slots: Vec<Option<PeerInfo>>,
    free: Vec<u32>,
    holders: Vec<u64>,
    words: usize,
    num_pieces: usize,
    /// Peers with have-all.
    seeds: u32,
}

impl Peers {
    fn new(num_pieces: u32) -> Self {
        Self {
            index: BTreeMap::new(),
            slots: Vec::new(),
            free: Vec::new(),
            holders: Vec::new(),
            words: 0,
            num_pieces: num_pieces as usize,
            seeds: 0,
        }
    }

    /// Registered peers (only the debug-build invariant check asks).
    #[cfg(debug_assertions)]
    fn len(&self) -> usize {
        self.index.len()
    }

    fn contains(&self, key: PeerKey) -> bool {
        self.index.contains_key(&key)
    }

    fn get(&self, key: PeerKey) -> Option<&PeerInfo> {
        let slot = *self.index.get(&key)?;
        self.slots[slot as usize].as_ref()
    }

    fn get_mut(&mut self, key: PeerKey) -> Option<&mut PeerInfo> {
        let slot = *self.index.get(&key)?;
        self.slots[slot as usize].as_mut()
    }

    fn info_mut(&mut self, slot: u32) -> &mut PeerInfo {
        self.slots[slot as usize]
            .as_mut()
            .expect("occupied peer slot")
    }

    /// The slot of `key`, registering the peer (with no pieces) if new.
    fn slot_of(&mut self, key: PeerKey) -> u32 {
        if let Some(&slot) = self.index.get(&key) {
            return slot;
        }
        let slot = self.free.pop().unwrap_or(self.slots.len() as u32);
        if slot as usize == self.slots.len() {
            self.slots.push(None);
        }
        if slot as usize >= self.words * 64 {
            self.widen();
        }
        self.slots[slot as usize] = Some(PeerInfo {
            key,
            has_all: false,
            count: 0,
            wanted: 0,
            candidates: 0,
            outstanding: Vec::new(),
        });
        self.index.insert(key, slot);
        slot
    }

    /// Adds one word (64 peer slots) to every row.
    fn widen(&mut self) {
        let (old, new) = (self.words, self.words + 1);
        let mut holders = vec![0u64; self.num_pieces * new];
        for p in 0..self.num_pieces {
            holders[p * new..p * new + old].copy_from_slice(&self.holders[p * old..(p + 1) * old]);
        }
        self.holders = holders;
        self.words = new;
    }

    /// Unregisters a peer whose pieces were already cleared.
    fn remove(&mut self, key: PeerKey) -> Option<PeerInfo> {
        let slot = self.index.remove(&key)?;
        self.free.push(slot);
        self.slots[slot as usize].take()
    }

    /// Read-only view of what `key` has.
    fn view(&self, key: PeerKey) -> Option<PeerView<'_>> {
        let slot = *self.index.get(&key)?;
        let info = self.slots[slot as usize].as_ref()?;
        Some(PeerView {
            has_all: info.has_all,
            holders: &self.holders,
            words: self.words,
            word: slot as usize / 64,
            mask: 1 << (slot % 64),
            wanted: info.wanted,
            candidates: info.candidates,
        })
    }

    /// Whether the peer `key` has `piece`.
    fn key_has(&self, key: PeerKey, piece: u32) -> bool {
        self.view(key).is_some_and(|view| view.has(piece))
    }

    /// Applies `f` to every peer without have-all that has `piece`.
    fn for_each_holder(&mut self, piece: u32, mut f: impl FnMut(&mut PeerInfo)) {
        let row = piece as usize * self.words;
        for w in 0..self.words {
            let mut bits = self.holders[row + w];
            while bits != 0 {
                let slot = w * 64 + bits.trailing_zeros() as usize;
                bits &= bits - 1;
                if let Some(info) = self.slots[slot].as_mut() {
                    f(info);
                }
            }
        }
    }

    /// The peer in `slot` now has `piece` (not had before).
    fn gain(&mut self, slot: u32, piece: u32, pieces: &mut Pieces) {
        self.holders[piece as usize * self.words + slot as usize / 64] |= 1 << (slot % 64);
        pieces.add_avail(piece, true);
        let wanted = pieces.is_wanted_not_have(piece);
        let candidate = pieces.in_buckets(piece);
        let info = self.info_mut(slot);
        info.count += 1;
        info.wanted += u32::from(wanted);
        info.candidates += u32::from(candidate);
    }

    /// Forgets every piece of the peer in `slot`, undoing its availability.
    fn clear(&mut self, slot: u32, pieces: &mut Pieces) {
        let info = self.info_mut(slot);
        let (has_all, count) = (info.has_all, info.count);
        info.has_all = false;
        info.count = 0;
        info.wanted = 0;
        info.candidates = 0;
        if has_all {
            self.seeds -= 1;
        } else if count > 0 {
            let (word, mask) = (slot as usize / 64, 1u64 << (slot % 64));
            for p in 0..self.num_pieces {
                let w = &mut self.holders[p * self.words + word];
                if *w & mask != 0 {
                    *w &= !mask;
                    pieces.add_avail(p as u32, false);
                }
            }
        }
    }
}

/// The peers a block is requested from: one, or several in endgame.
#[derive(Debug, Clone)]
struct Requesters {
    first: PeerKey,
    more: Vec<PeerKey>,
}

/// Result of removing a peer from a [`Requesters`].
enum Removal {
    NotFound,
    Removed,
    /// The removed peer was the last one.
    Emptied,
}

impl Requesters {
    fn len(&self) -> usize {
        1 + self.more.len()
    }

    fn contains(&self, peer: PeerKey) -> bool {
        self.first == peer || self.more.contains(&peer)
    }

    fn iter(&self) -> impl Iterator<Item = PeerKey> + '_ {
        std::iter::once(self.first).chain(self.more.iter().copied())
    }

    fn remove(&mut self, peer: PeerKey) -> Removal {
        if self.first == peer {
            match self.more.pop() {
                Some(next) => {
                    self.first = next;
                    Removal::Removed
                }
                None => Removal::Emptied,
            }
        } else if let Some(i) = self.more.iter().position(|p| *p == peer) {
            self.more.swap_remove(i);
            Removal::Removed
        } else {
            Removal::NotFound
        }
    }
}

/// State of one block of an in-progress piece.
#[derive(Debug, Clone)]
enum Slot {
    Free,
    Requested(Requesters),
    Received(PeerKey),
}

/// An in-progress piece.
#[derive(Debug, Clone)]
struct Partial {
    slots: Vec<Slot>,
    free: u32,
    requested: u32,
    received: u32,
    /// No free slot below this index.
    next_free: u32,
    /// Position in `Picker::with_free` iff `free > 0`.
    free_pos: Option<usize>,
}

/// Per-piece arrays and the availability buckets.
#[derive(Debug, Clone)]
struct Pieces {
    state: Vec<PieceState>,
    prio: Vec<u8>,
    avail: Vec<u32>,
    /// Position within its bucket, for pieces in a bucket.
    pos: Vec<u32>,
    /// `buckets[level - 1][avail]`: the `Missing` pieces of that priority
    /// level and availability, in no particular order.
    buckets: [Vec<Vec<u32>>; LEVELS],
    /// Pieces in each level's buckets.
    band_len: [u32; LEVELS],
    /// Per level, every bucket below this index is empty.
    first_nonempty: [usize; LEVELS],
}

impl Pieces {
    fn in_buckets(&self, p: u32) -> bool {
        self.state[p as usize] == PieceState::Missing && self.prio[p as usize] > 0
    }

    fn is_wanted_not_have(&self, p: u32) -> bool {
        self.prio[p as usize] > 0 && self.state[p as usize] != PieceState::Have
    }

    fn bucket_insert(&mut self, p: u32) {
        let level = usize::from(self.prio[p as usize]) - 1;
        let a = self.avail[p as usize] as usize;
        let band = &mut self.buckets[level];
        if band.len() <= a {
            band.resize_with(a + 1, Vec::new);
        }
        self.pos[p as usize] = band[a].len() as u32;
        band[a].push(p);
        self.band_len[level] += 1;
        self.first_nonempty[level] = self.first_nonempty[level].min(a);
    }

    fn bucket_remove(&mut self, p: u32) {
        let level = usize::from(self.prio[p as usize]) - 1;
        let bucket = &mut self.buckets[level][self.avail[p as usize] as usize];
        let i = self.pos[p as usize] as usize;
        bucket.swap_remove(i);
        if let Some(&moved) = bucket.get(i) {
            self.pos[moved as usize] = i as u32;
        }
        self.band_len[level] -= 1;
    }

    fn add_avail(&mut self, p: u32, gained: bool) {
        let bucketed = self.in_buckets(p);
        if bucketed {
            self.bucket_remove(p);
        }
        let a = &mut self.avail[p as usize];
        if gained {
            *a += 1;
        } else {
            *a -= 1;
        }
        if bucketed {
            self.bucket_insert(p);
        }
    }

    fn missing_wanted(&self) -> u32 {
        self.band_len.iter().sum()
    }
}

/// Rarest-first block picker for one torrent; see the module documentation.
#[derive(Debug, Clone)]
pub struct Picker {
    geometry: Geometry,
    config: PickerConfig,
    pieces: Pieces,
    partials: BTreeMap<u32, Partial>,
    /// In-progress pieces with free blocks.
    with_free: Vec<u32>,
    /// `Complete` pieces and the peers that sent their blocks.
    awaiting: BTreeMap<u32, Vec<PeerKey>>,
    peers: Peers,
    have: u32,
    wanted_total: u32,
    wanted_have: u32,
    seq_cursor: u32,
    /// The piece started last by rarest-first picking: the next one is preferred when it
    /// is as rare, so blocks land on disk (and are read by the seeder) in runs.
    last_started: Option<u32>,
    rng: StdRng,
}

impl Picker {
    /// A picker with every piece `Missing` at [`Priority::NORMAL`] and no peers.
    pub fn new(geometry: Geometry, config: PickerConfig, rng: StdRng) -> Self {
        let num_pieces = geometry.num_pieces();
        let n = num_pieces as usize;
        let mut pieces = Pieces {
            state: vec![PieceState::Missing; n],
            prio: vec![Priority::NORMAL.0; n],
            avail: vec![0; n],
            pos: vec![0; n],
            buckets: Default::default(),
            band_len: [0; LEVELS],
            first_nonempty: [0; LEVELS],
        };
        for p in 0..geometry.num_pieces() {
            pieces.bucket_insert(p);
        }
        Self {
            geometry,
            config,
            pieces,
            partials: BTreeMap::new(),
            with_free: Vec::new(),
            awaiting: BTreeMap::new(),
            peers: Peers::new(num_pieces),
            have: 0,
            wanted_total: num_pieces,
            wanted_have: 0,
            seq_cursor: 0,
            last_started: None,
            rng,
        }
    }

    /// The torrent's geometry.
    pub fn geometry(&self) -> &Geometry {
        &self.geometry
    }

    /// Switches sequential (index order) picking on or off.
    pub fn set_sequential(&mut self, sequential: bool) {
        self.config.sequential = sequential;
    }

    /// Whether pieces are picked in index order.
    pub fn is_sequential(&self) -> bool {
        self.config.sequential
    }

    // ---- what peers have ----

    /// The peer sent its bitfield (wire format: piece 0 is the high bit of
    /// byte 0). Replaces anything known about the peer's pieces.
    pub fn peer_bitfield(&mut self, peer: PeerKey, bitfield: &[u8]) -> Result<(), PickerError> {
        let n = self.geometry.num_pieces();
        let expected = n.div_ceil(8) as usize;
        if bitfield.len() != expected {
            return Err(PickerError::BitfieldLen {
                got: bitfield.len(),
                expected,
            });
        }
        let spare = expected as u32 * 8 - n;
        if spare > 0 && bitfield[expected - 1] & ((1u8 << spare) - 1) != 0 {
            return Err(PickerError::BitfieldSpareBits { num_pieces: n });
        }
        let ones: u32 = bitfield.iter().map(|b| b.count_ones()).sum();
        if ones == n {
            self.peer_have_all(peer);
            return Ok(());
        }
        let slot = self.peers.slot_of(peer);
        self.peers.clear(slot, &mut self.pieces);
        for (byte_index, &byte) in bitfield.iter().enumerate() {
            let mut rest = byte;
            while rest != 0 {
                let bit = rest.leading_zeros();
                rest &= !(0x80 >> bit);
                self.peers
                    .gain(slot, byte_index as u32 * 8 + bit, &mut self.pieces);
            }
        }
        self.debug_check();
        Ok(())
    }

    /// The peer has every piece (`have all`, or a full bitfield).
    pub fn peer_have_all(&mut self, peer: PeerKey) {
        let slot = self.peers.slot_of(peer);
        if !self.peers.info_mut(slot).has_all {
            self.peers.clear(slot, &mut self.pieces);
            self.peers.info_mut(slot).has_all = true;
            self.peers.seeds += 1;
        }
        self.debug_check();
    }

    /// The peer has no pieces (`have none`); also registers a new peer.
    pub fn peer_have_none(&mut self, peer: PeerKey) {
        let slot = self.peers.slot_of(peer);
        self.peers.clear(slot, &mut self.pieces);
        self.debug_check();
    }

    /// The peer announced one more piece (`have`).
    pub fn peer_have(
        &mut self,
        peer: PeerKey,
        piece: impl Into<PieceIndex>,
    ) -> Result<(), PickerError> {
        let piece = piece.into().0;
        self.check_piece(piece)?;
        let slot = self.peers.slot_of(peer);
        if !self.peers.key_has(peer, piece) {
            self.peers.gain(slot, piece, &mut self.pieces);
        }
        self.debug_check();
        Ok(())
    }

    /// The peer is gone: its requests return to the pool and its pieces stop
    /// counting towards availability.
    pub fn peer_disconnected(&mut self, peer: PeerKey) {
        let Some(info) = self.peers.get_mut(peer) else {
            return;
        };
        for block in std::mem::take(&mut info.outstanding) {
            self.release_slot(peer, block);
        }
        let slot = self.peers.slot_of(peer);
        self.peers.clear(slot, &mut self.pieces);
        self.peers.remove(peer);
        self.debug_check();
    }

    /// Whether `peer` is known to have `piece` (its bitfield, a `have`, or have-all).
    pub fn peer_has(&self, peer: PeerKey, piece: impl Into<PieceIndex>) -> bool {
        let piece = piece.into().0;
        self.peers.key_has(peer, piece)
    }

    /// How many pieces `peer` has announced.
    pub fn peer_piece_count(&self, peer: PeerKey) -> u32 {
        self.peers.get(peer).map_or(0, |info| {
            if info.has_all {
                self.peers.num_pieces as u32
            } else {
                info.count
            }
        })
    }

    /// Whether `peer` has every piece (have-all, or a full set of announcements).
    pub fn peer_is_seed(&self, peer: PeerKey) -> bool {
        self.peers
            .get(peer)
            .is_some_and(|info| info.has_all || info.count as usize == self.peers.num_pieces)
    }

    /// Whether the peer has a wanted piece we do not have yet (send
    /// `interested` while this holds).
    pub fn is_interesting(&self, peer: PeerKey) -> bool {
        self.peers.view(peer).is_some_and(|view| {
            if view.has_all {
                self.wanted_have < self.wanted_total
            } else {
                view.wanted > 0
            }
        })
    }

    // ---- requests ----

    /// Up to `max` new blocks to request from `peer`, now recorded as
    /// outstanding for it. Only pieces the peer has, never a block already
    /// requested from another peer (except in endgame), never a piece we have.
    /// Call it while the peer is not choking us.
    pub fn pick_blocks(&mut self, peer: PeerKey, max: usize) -> Vec<BlockInfo> {
        let mut out = Vec::new();
        if max == 0 || !self.peers.contains(peer) {
            return out;
        }
        while out.len() < max {
            let piece = if self.config.sequential {
                self.pick_sequential(peer)
            } else {
                self.pick_rarest(peer)
            };
            let Some(piece) = piece else { break };
            self.take_free_blocks(piece, peer, max - out.len(), &mut out);
        }
        if out.len() < max && self.in_endgame() {
            self.pick_endgame(peer, max - out.len(), &mut out);
        }
        if let Some(info) = self.peers.get_mut(peer) {
            info.outstanding.extend_from_slice(&out);
        }
        self.debug_check();
        out
    }

    /// Blocks requested from `peer` and not yet received or released.
    pub fn outstanding(&self, peer: PeerKey) -> &[BlockInfo] {
        self.peers.get(peer).map_or(&[], |info| &info.outstanding)
    }

    /// A block arrived from `peer`. Unsolicited or late blocks of a wanted
    /// piece are accepted too.
    pub fn block_received(
        &mut self,
        peer: PeerKey,
        block: BlockInfo,
    ) -> Result<BlockReceived, PickerError> {
        let index = self
            .geometry
            .block_index(&block)
            .ok_or(PickerError::InvalidBlock {
                piece: block.piece.0,
                begin: block.begin,
                len: block.len,
            })? as usize;
        let p = block.piece.0;
        if let Some(info) = self.peers.get_mut(peer) {
            info.forget_request(block);
        }
        match self.pieces.state[p as usize] {
            PieceState::Have | PieceState::Complete => {
                self.debug_check();
                return Ok(BlockReceived::Ignored);
            }
            PieceState::Missing if self.pieces.prio[p as usize] == 0 => {
                self.debug_check();
                return Ok(BlockReceived::Ignored);
            }
            PieceState::Missing => self.start_piece(p),
            PieceState::Partial => {}
        }
        let part = self
            .partials
            .get_mut(&p)
            .expect("partial piece has an entry");
        let mut cancels = Vec::new();
        match std::mem::replace(&mut part.slots[index], Slot::Received(peer)) {
            Slot::Received(first) => {
                part.slots[index] = Slot::Received(first);
                self.debug_check();
                return Ok(BlockReceived::Ignored);
            }
            Slot::Free => part.free -= 1,
            Slot::Requested(requesters) => {
                part.requested -= 1;
                cancels.extend(requesters.iter().filter(|r| *r != peer).map(|r| (r, block)));
            }
        }
        part.received += 1;
        let drop_free = part.free == 0 && part.free_pos.is_some();
        let piece_complete = part.received as usize == part.slots.len();
        for (other, b) in &cancels {
            if let Some(info) = self.peers.get_mut(*other) {
                info.forget_request(*b);
            }
        }
        if drop_free {
            self.with_free_remove(p);
        }
        if piece_complete {
            let part = self
                .partials
                .remove(&p)
                .expect("partial piece has an entry");
            let mut contributors: Vec<PeerKey> = part
                .slots
                .iter()
                .filter_map(|s| match s {
                    Slot::Received(who) => Some(*who),
                    _ => None,
                })
                .collect();
            contributors.sort_unstable();
            contributors.dedup();
            self.pieces.state[p as usize] = PieceState::Complete;
            self.awaiting.insert(p, contributors);
        }
        self.debug_check();
        Ok(BlockReceived::New {
            piece_complete,
            cancels,
        })
    }

    /// The request of `block` from `peer` ended without data (cancelled,
    /// rejected or timed out): the block goes back to the pool. Returns
    /// whether it was outstanding.
    pub fn request_released(&mut self, peer: PeerKey, block: BlockInfo) -> bool {
        let was = self
            .peers
            .get_mut(peer)
            .is_some_and(|info| info.forget_request(block));
        if was {
            self.release_slot(peer, block);
        }
        self.debug_check();
        was
    }

    /// The peer choked us: all its outstanding requests go back to the pool.
    /// Returns them.
    pub fn peer_choked(&mut self, peer: PeerKey) -> Vec<BlockInfo> {
        let released = match self.peers.get_mut(peer) {
            Some(info) => std::mem::take(&mut info.outstanding),
            None => Vec::new(),
        };
        for block in &released {
            self.release_slot(peer, *block);
        }
        self.debug_check();
        released
    }

    // ---- piece results ----

    /// The `Complete` piece passed its hash check: it is now `Have`.
    pub fn hash_passed(&mut self, piece: impl Into<PieceIndex>) -> Result<(), PickerError> {
        let piece = piece.into().0;
        self.expect_state(piece, PieceState::Complete)?;
        self.awaiting.remove(&piece);
        self.become_have(piece);
        self.debug_check();
        Ok(())
    }

    /// The `Complete` piece failed its hash check: it is `Missing` again, all
    /// its blocks needed. Returns the peers that sent its blocks, to blame.
    pub fn hash_failed(
        &mut self,
        piece: impl Into<PieceIndex>,
    ) -> Result<Vec<PeerKey>, PickerError> {
        let piece = piece.into().0;
        self.expect_state(piece, PieceState::Complete)?;
        let contributors = self.awaiting.remove(&piece).unwrap_or_default();
        self.pieces.state[piece as usize] = PieceState::Missing;
        if self.pieces.prio[piece as usize] > 0 {
            self.pieces.bucket_insert(piece);
            self.peers
                .for_each_holder(piece, |info| info.candidates += 1);
        }
        self.seq_cursor = self.seq_cursor.min(piece);
        self.debug_check();
        Ok(contributors)
    }

    /// At start-up: `piece` was verified on disk. Allowed on `Missing` and
    /// (as a no-op) `Have` pieces.
    pub fn mark_have(&mut self, piece: impl Into<PieceIndex>) -> Result<(), PickerError> {
        let piece = piece.into().0;
        self.check_piece(piece)?;
        match self.pieces.state[piece as usize] {
            PieceState::Have => {}
            PieceState::Missing => {
                if self.pieces.prio[piece as usize] > 0 {
                    self.pieces.bucket_remove(piece);
                    self.peers
                        .for_each_holder(piece, |info| info.candidates -= 1);
                }
                self.become_have(piece);
            }
            state => {
                return Err(PickerError::WrongState {
                    piece,
                    state,
                    expected: PieceState::Missing,
                })
            }
        }
        self.debug_check();
        Ok(())
    }

    // ---- priorities ----

    /// Sets one piece's priority. Lowering an in-progress piece to
    /// [`Priority::SKIP`] keeps its outstanding requests but picks no more.
    pub fn set_priority(
        &mut self,
        piece: impl Into<PieceIndex>,
        priority: Priority,
    ) -> Result<(), PickerError> {
        let piece = piece.into().0;
        self.check_piece(piece)?;
        self.apply_priority(piece, priority.0);
        self.debug_check();
        Ok(())
    }

    /// Sets every piece's priority (one entry per piece).
    pub fn set_priorities(&mut self, priorities: &[Priority]) -> Result<(), PickerError> {
        let expected = self.geometry.num_pieces() as usize;
        if priorities.len() != expected {
            return Err(PickerError::PriorityCount {
                got: priorities.len(),
                expected,
            });
        }
        for (p, prio) in priorities.iter().enumerate() {
            self.apply_priority(p as u32, prio.0);
        }
        self.debug_check();
        Ok(())
    }

    /// A piece's priority ([`Priority::SKIP`] if out of range).
    pub fn priority(&self, piece: impl Into<PieceIndex>) -> Priority {
        let piece = piece.into().0;
        Priority(self.pieces.prio.get(piece as usize).copied().unwrap_or(0))
    }

    // ---- queries ----

    /// State of `piece`, or `None` if out of range.
    pub fn piece_state(&self, piece: impl Into<PieceIndex>) -> Option<PieceState> {
        let piece = piece.into().0;
        self.pieces.state.get(piece as usize).copied()
    }

    /// Whether `piece` is verified.
    pub fn has_piece(&self, piece: impl Into<PieceIndex>) -> bool {
        self.piece_state(piece) == Some(PieceState::Have)
    }

    /// Number of connected peers that have `piece`.
    pub fn availability(&self, piece: impl Into<PieceIndex>) -> u32 {
        let piece = piece.into().0;
        self.pieces
            .avail
            .get(piece as usize)
            .map_or(0, |a| a + self.peers.seeds)
    }

    /// Number of verified pieces.
    pub fn num_have(&self) -> u32 {
        self.have
    }

    /// Whether every wanted piece is verified.
    pub fn is_complete(&self) -> bool {
        self.wanted_have == self.wanted_total
    }

    /// Whether every block of every wanted piece is requested or received
    /// while some are still outstanding, so duplicate requests are allowed.
    pub fn in_endgame(&self) -> bool {
        let prio = &self.pieces.prio;
        self.pieces.missing_wanted() == 0
            && !self.with_free.iter().any(|&p| prio[p as usize] > 0)
            && self.partials.keys().any(|&p| prio[p as usize] > 0)
    }

    /// Our verified pieces as a wire bitfield (piece 0 is the high bit of
    /// byte 0).
    pub fn bitfield(&self) -> Vec<u8> {
        let mut out = vec![0u8; self.geometry.num_pieces().div_ceil(8) as usize];
        for (p, state) in self.pieces.state.iter().enumerate() {
            if *state == PieceState::Have {
                out[p / 8] |= 0x80 >> (p % 8);
            }
        }
        out
    }

    /// Recomputes all bookkeeping from scratch and compares (see the module
    /// documentation). Cost O(pieces * peers).
    pub fn check_invariants(&self) -> Result<(), PickerError> {
        let fail = |msg: String| Err(PickerError::Invariant(msg));
        let n = self.geometry.num_pieces() as usize;
        let pieces = &self.pieces;

        // Buckets hold exactly the wanted Missing pieces, each once, in the
        // right place.
        let mut bucketed = vec![false; n];
        for (level, band) in pieces.buckets.iter().enumerate() {
            let mut count = 0u32;
            for (a, bucket) in band.iter().enumerate() {
                for (i, &p) in bucket.iter().enumerate() {
                    let pu = p as usize;
                    if bucketed[pu] {
                        return fail(format!("piece {p} in two buckets"));
                    }
                    bucketed[pu] = true;
                    if usize::from(pieces.prio[pu]) != level + 1
                        || pieces.avail[pu] as usize != a
                        || pieces.pos[pu] as usize != i
                    {
                        return fail(format!("piece {p} in the wrong bucket slot"));
                    }
                    count += 1;
                }
            }
            if band[..pieces.first_nonempty[level].min(band.len())]
                .iter()
                .any(|b| !b.is_empty())
            {
                return fail(format!(
                    "band {} has pieces below its first bucket",
                    level + 1
                ));
            }
            if pieces.band_len[level] != count {
                return fail(format!(
                    "band {} length {count} recorded as {}",
                    level + 1,
                    pieces.band_len[level]
                ));
            }
        }

        // Exactly one state per piece, matching the side tables.
        let (mut have, mut wanted_total, mut wanted_have) = (0, 0, 0);
        for (p, &state) in pieces.state.iter().enumerate() {
            let key = p as u32;
            if bucketed[p] != pieces.in_buckets(key) {
                return fail(format!("piece {p} ({state:?}) bucket membership wrong"));
            }
            if self.partials.contains_key(&key) != (state == PieceState::Partial) {
                return fail(format!("piece {p} ({state:?}) partial entry wrong"));
            }
            if self.awaiting.contains_key(&key) != (state == PieceState::Complete) {
                return fail(format!("piece {p} ({state:?}) awaiting entry wrong"));
            }
            have += u32::from(state == PieceState::Have);
            wanted_total += u32::from(pieces.prio[p] > 0);
            wanted_have += u32::from(pieces.prio[p] > 0 && state == PieceState::Have);
        }
        if (have, wanted_total, wanted_have) != (self.have, self.wanted_total, self.wanted_have) {
            return fail("piece counters".into());
        }

        // In-progress pieces: block counters and the free list.
        let mut requests = BTreeSet::new();
        for (&p, part) in &self.partials {
            if part.slots.len() != self.geometry.block_count(PieceIndex(p)).unwrap_or(0) as usize {
                return fail(format!("piece {p} slot count"));
            }
            let (mut free, mut requested, mut received) = (0, 0, 0);
            for (i, slot) in part.slots.iter().enumerate() {
                match slot {
                    Slot::Free => {
                        free += 1;
                        if (i as u32) < part.next_free {
                            return fail(format!("piece {p} free block {i} below next_free"));
                        }
                    }
                    Slot::Requested(r) => {
                        requested += 1;
                        let block = block_at(&self.geometry, p, i as u32);
                        for peer in r.iter() {
                            if !requests.insert((peer, block)) {
                                return fail(format!("{peer:?} requests {block:?} twice"));
                            }
                        }
                    }
                    Slot::Received(_) => received += 1,
                }
            }
            if (free, requested, received) != (part.free, part.requested, part.received) {
                return fail(format!("piece {p} block counters"));
            }
            if requested + received == 0 || received as usize == part.slots.len() {
                return fail(format!("piece {p} should not be Partial"));
            }
            let listed = part
                .free_pos
                .is_some_and(|i| self.with_free.get(i) == Some(&p));
            if listed != (free > 0) {
                return fail(format!("piece {p} free list entry wrong"));
            }
        }
        if self
            .with_free
            .iter()
            .any(|p| !self.partials.contains_key(p))
        {
            return fail("free list names a piece not in progress".into());
        }

        // Peers: outstanding requests, availability, counters.
        let mut avail = vec![0u32; n];
        let mut seeds = 0;
        let peers = &self.peers;
        let occupied = peers.slots.iter().filter(|s| s.is_some()).count();
        if occupied != peers.index.len() || peers.free.len() + occupied != peers.slots.len() {
            return fail("peer slots and index disagree".into());
        }
        for (&key, &slot) in &peers.index {
            let Some(info) = peers.slots[slot as usize].as_ref().filter(|i| i.key == key) else {
                return fail(format!("{key:?} slot {slot} holds another peer"));
            };
            for &block in &info.outstanding {
                if !requests.remove(&(key, block)) {
                    return fail(format!("{key:?} outstanding {block:?} not in a slot"));
                }
            }
            let view = peers.view(key).expect("indexed peer");
            let (mut wanted, mut candidates, mut count) = (0, 0, 0);
            for (p, a) in avail.iter_mut().enumerate() {
                let held = view.holders[p * view.words + view.word] & view.mask != 0;
                if held {
                    *a += 1;
                    count += 1;
                    wanted += u32::from(pieces.is_wanted_not_have(p as u32));
                    candidates += u32::from(pieces.in_buckets(p as u32));
                }
            }
            if info.has_all {
                seeds += 1;
                if count != 0 {
                    return fail(format!("{key:?} has-all with pieces in its column"));
                }
            }
            if (count, wanted, candidates) != (info.count, info.wanted, info.candidates) {
                return fail(format!("{key:?} count/wanted/candidate counters"));
            }
        }
        if peers.free.iter().any(|&slot| {
            (0..n).any(|p| {
                peers.holders[p * peers.words + slot as usize / 64] & (1 << (slot % 64)) != 0
            })
        }) {
            return fail("a free peer slot has pieces".into());
        }
        if let Some((peer, block)) = requests.first() {
            return fail(format!(
                "slot names {peer:?} for {block:?} but it is not outstanding"
            ));
        }
        if avail != pieces.avail || seeds != self.peers.seeds {
            return fail("availability".into());
        }
        let cursor = (self.seq_cursor as usize).min(n);
        if (0..cursor).any(|p| {
            pieces.prio[p] > 0
                && matches!(pieces.state[p], PieceState::Missing | PieceState::Partial)
        }) {
            return fail("sequential cursor past a wanted piece".into());
        }
        Ok(())
    }

    // ---- internals ----

    fn debug_check(&self) {
        #[cfg(debug_assertions)]
        if (self.geometry.num_pieces() as usize).saturating_mul(self.peers.len() + 1)
            <= DEBUG_CHECK_MAX_WORK
        {
            if let Err(e) = self.check_invariants() {
                panic!("{e}");
            }
        }
    }

    fn check_piece(&self, piece: u32) -> Result<(), PickerError> {
        let num_pieces = self.geometry.num_pieces();
        if piece < num_pieces {
            Ok(())
        } else {
            Err(PickerError::PieceOutOfRange { piece, num_pieces })
        }
    }

    fn expect_state(&self, piece: u32, expected: PieceState) -> Result<(), PickerError> {
        self.check_piece(piece)?;
        let state = self.pieces.state[piece as usize];
        if state == expected {
            Ok(())
        } else {
            Err(PickerError::WrongState {
                piece,
                state,
                expected,
            })
        }
    }

    /// `Missing` or `Complete` -> `Have`, with counters (bucket already left).
    fn become_have(&mut self, piece: u32) {
        self.pieces.state[piece as usize] = PieceState::Have;
        self.have += 1;
        if self.pieces.prio[piece as usize] > 0 {
            self.wanted_have += 1;
            self.peers.for_each_holder(piece, |info| info.wanted -= 1);
        }
    }

    fn apply_priority(&mut self, piece: u32, level: u8) {
        let p = piece as usize;
        let old = self.pieces.prio[p];
        if old == level {
            return;
        }
        let state = self.pieces.state[p];
        if self.pieces.in_buckets(piece) {
            self.pieces.bucket_remove(piece);
        }
        self.pieces.prio[p] = level;
        if self.pieces.in_buckets(piece) {
            self.pieces.bucket_insert(piece);
        }
        if (old > 0) != (level > 0) {
            let gained = level > 0;
            let step = |c: &mut u32| if gained { *c += 1 } else { *c -= 1 };
            step(&mut self.wanted_total);
            if state == PieceState::Have {
                step(&mut self.wanted_have);
            }
            self.peers.for_each_holder(piece, |info| {
                if state != PieceState::Have {
                    step(&mut info.wanted);
                }
                if state == PieceState::Missing {
                    step(&mut info.candidates);
                }
            });
        }
        if level > 0 {
            self.seq_cursor = self.seq_cursor.min(piece);
        }
    }

    fn with_free_add(&mut self, piece: u32) {
        let part = self
            .partials
            .get_mut(&piece)
            .expect("partial piece has an entry");
        if part.free_pos.is_none() {
            part.free_pos = Some(self.with_free.len());
            self.with_free.push(piece);
        }
    }

    fn with_free_remove(&mut self, piece: u32) {
        let Some(i) = self
            .partials
            .get_mut(&piece)
            .and_then(|part| part.free_pos.take())
        else {
            return;
        };
        self.with_free.swap_remove(i);
        if let Some(&moved) = self.with_free.get(i) {
            if let Some(part) = self.partials.get_mut(&moved) {
                part.free_pos = Some(i);
            }
        }
    }

    /// `Missing` -> `Partial` with every block free.
    fn start_piece(&mut self, piece: u32) {
        if self.pieces.in_buckets(piece) {
            self.pieces.bucket_remove(piece);
            self.peers
                .for_each_holder(piece, |info| info.candidates -= 1);
        }
        self.pieces.state[piece as usize] = PieceState::Partial;
        let blocks = self.geometry.block_count(PieceIndex(piece)).unwrap_or(0);
        self.partials.insert(
            piece,
            Partial {
                slots: vec![Slot::Free; blocks as usize],
                free: blocks,
                requested: 0,
                received: 0,
                next_free: 0,
                free_pos: None,
            },
        );
        self.with_free_add(piece);
    }

    /// `Partial` with nothing requested or received -> `Missing`.
    fn revert_to_missing(&mut self, piece: u32) {
        self.with_free_remove(piece);
        self.partials.remove(&piece);
        self.pieces.state[piece as usize] = PieceState::Missing;
        if self.pieces.in_buckets(piece) {
            self.pieces.bucket_insert(piece);
            self.peers
                .for_each_holder(piece, |info| info.candidates += 1);
        }
        self.seq_cursor = self.seq_cursor.min(piece);
    }

    /// Removes `peer` from the requesters of `block`; frees the block when no
    /// requester is left. The caller has already updated `outstanding`.
    fn release_slot(&mut self, peer: PeerKey, block: BlockInfo) {
        let Some(index) = self.geometry.block_index(&block) else {
            return;
        };
        let Some(part) = self.partials.get_mut(&block.piece.0) else {
            return;
        };
        let slot = &mut part.slots[index as usize];
        let Slot::Requested(requesters) = slot else {
            return;
        };
        match requesters.remove(peer) {
            Removal::NotFound | Removal::Removed => return,
            Removal::Emptied => {}
        }
        *slot = Slot::Free;
        part.requested -= 1;
        part.free += 1;
        part.next_free = part.next_free.min(index);
        if part.requested == 0 && part.received == 0 {
            self.revert_to_missing(block.piece.0);
        } else {
            self.with_free_add(block.piece.0);
        }
    }

    /// Requests up to `n` free blocks of the in-progress `piece` from `peer`.
    fn take_free_blocks(&mut self, piece: u32, peer: PeerKey, n: usize, out: &mut Vec<BlockInfo>) {
        let part = self
            .partials
            .get_mut(&piece)
            .expect("picked piece is in progress");
        let mut taken = 0;
        let mut i = part.next_free as usize;
        while taken < n && i < part.slots.len() {
            if let Slot::Free = part.slots[i] {
                part.slots[i] = Slot::Requested(Requesters {
                    first: peer,
                    more: Vec::new(),
                });
                part.free -= 1;
                part.requested += 1;
                out.push(block_at(&self.geometry, piece, i as u32));
                taken += 1;
            }
            i += 1;
        }
        part.next_free = i as u32;
        if part.free == 0 {
            self.with_free_remove(piece);
        }
    }

    /// The next piece with free blocks for `peer`: the best in-progress piece, unless a
    /// new piece of a higher priority level exists, or one of the same level that only
    /// this peer has while the in-progress one can come from others too.
    fn pick_rarest(&mut self, peer: PeerKey) -> Option<u32> {
        let view = self.peers.view(peer)?;
        let prio = &self.pieces.prio;
        let mut best: Option<(u8, u32)> = None;
        for &p in &self.with_free {
            let level = prio[p as usize];
            if level > 0 && view.has(p) && best.is_none_or(|(b, _)| level > b) {
                best = Some((level, p));
            }
        }
        if view.has_all || view.candidates > 0 {
            let floor = best.map_or(0, |(level, _)| level);
            for level in (floor + 1..=LEVELS as u8).rev() {
                if let Some(found) = find_in_band(&mut self.pieces, &view, &mut self.rng, level) {
                    let p = self.continue_run(&view, level, found);
                    return Some(self.start_new(p));
                }
            }
            // Finishing a piece that other peers can also give us can wait while this
            // peer has pieces nobody else has: a lone seed's upload then goes to pieces
            // the swarm lacks, not to copies of what it already has.
            if let Some((level, partial)) = best {
                let seeds = self.peers.seeds;
                let shared = self.pieces.avail[partial as usize] + seeds > 1;
                if shared {
                    if let Some(found) = find_in_band(&mut self.pieces, &view, &mut self.rng, level)
                    {
                        if self.pieces.avail[found as usize] + seeds == 1 {
                            let p = self.continue_run(&view, level, found);
                            return Some(self.start_new(p));
                        }
                    }
                }
            }
        }
        best.map(|(_, p)| p)
    }

    /// The new piece rarest-first takes instead of `found`: the piece after the last one
    /// started when it is as rare (so blocks land on disk in runs), else `found`.
    fn continue_run(&self, view: &PeerView<'_>, level: u8, found: u32) -> u32 {
        let pieces = &self.pieces;
        self.last_started
            .and_then(|last| last.checked_add(1))
            .filter(|&next| {
                next < self.geometry.num_pieces()
                    && pieces.in_buckets(next)
                    && pieces.prio[next as usize] == level
                    && pieces.avail[next as usize] == pieces.avail[found as usize]
                    && view.has(next)
            })
            .unwrap_or(found)
    }

    /// Starts `piece`, remembered as the last one started.
    fn start_new(&mut self, piece: u32) -> u32 {
        self.last_started = Some(piece);
        self.start_piece(piece);
        piece
    }

    /// The lowest-index wanted piece with free blocks that `peer` has.
    fn pick_sequential(&mut self, peer: PeerKey) -> Option<u32> {
        let n = self.geometry.num_pieces();
        while self.seq_cursor < n {
            let c = self.seq_cursor as usize;
            if self.pieces.prio[c] > 0
                && matches!(
                    self.pieces.state[c],
                    PieceState::Missing | PieceState::Partial
                )
            {
                break;
            }
            self.seq_cursor += 1;
        }
        let view = self.peers.view(peer)?;
        let prio = &self.pieces.prio;
        let partial_for_peer = self
            .with_free
            .iter()
            .any(|&p| prio[p as usize] > 0 && view.has(p));
        let candidates = view.has_all && self.pieces.missing_wanted() > 0 || view.candidates > 0;
        if !candidates && !partial_for_peer {
            return None;
        }
        for p in self.seq_cursor..n {
            if prio[p as usize] == 0 || !view.has(p) {
                continue;
            }
            match self.pieces.state[p as usize] {
                PieceState::Missing => {
                    self.start_piece(p);
                    return Some(p);
                }
                PieceState::Partial if self.partials[&p].free > 0 => return Some(p),
                _ => {}
            }
        }
        None
    }

    /// Endgame: duplicate requests of outstanding blocks, fewest requesters
    /// first.
    fn pick_endgame(&mut self, peer: PeerKey, n: usize, out: &mut Vec<BlockInfo>) {
        let Some(view) = self.peers.view(peer) else {
            return;
        };
        let max = self.config.endgame_max_requesters;
        let mut candidates = Vec::new();
        for (&p, part) in &self.partials {
            if self.pieces.prio[p as usize] == 0 || !view.has(p) {
                continue;
            }
            for (i, slot) in part.slots.iter().enumerate() {
                if let Slot::Requested(r) = slot {
                    if r.len() < max && !r.contains(peer) {
                        candidates.push((r.len(), p, i));
                    }
                }
            }
        }
        candidates.shuffle(&mut self.rng);
        candidates.sort_by_key(|c| c.0);
        for (_, p, i) in candidates.into_iter().take(n) {
            let part = self
                .partials
                .get_mut(&p)
                .expect("endgame piece is in progress");
            if let Slot::Requested(r) = &mut part.slots[i] {
                r.more.push(peer);
            }
            out.push(block_at(&self.geometry, p, i as u32));
        }
    }
}

/// Block `index` of `piece`, both in range (they come from the picker's own slots).
fn block_at(geometry: &Geometry, piece: u32, index: u32) -> BlockInfo {
    let begin = index * BLOCK_LEN;
    let piece_len = geometry.piece_len(PieceIndex(piece)).unwrap_or(0);
    BlockInfo {
        piece: PieceIndex(piece),
        begin,
        len: piece_len.saturating_sub(begin).min(BLOCK_LEN),
    }
}

/// A `Missing` piece of priority `level` that the peer has: rarest bucket
/// first, scanning each bucket from a random start.
fn find_in_band(
    pieces: &mut Pieces,
    view: &PeerView<'_>,
    rng: &mut StdRng,
    level: u8,
) -> Option<u32> {
    let l = usize::from(level) - 1;
    if pieces.band_len[l] == 0 {
        return None;
    }
    let first = pieces.first_nonempty[l];
    let mut skipping = true;
    for (a, bucket) in pieces.buckets[l].iter().enumerate().skip(first) {
        let len = bucket.len();
        if len == 0 {
            continue;
        }
        if skipping {
            pieces.first_nonempty[l] = a;
            skipping = false;
        }
        let start = if len == 1 { 0 } else { rng.gen_range(0..len) };
        let (tail, head) = bucket.split_at(start);
        if let Some(&p) = head.iter().chain(tail).find(|&&p| view.has(p)) {
            return Some(p);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rand::SeedableRng;

    const A: PeerKey = PeerKey(1);
    const B: PeerKey = PeerKey(2);
    const C: PeerKey = PeerKey(3);

    fn picker_with(total_len: u64, piece_len: u32, config: PickerConfig, seed: u64) -> Picker {
        let geometry = Geometry::new(u64::from(piece_len), [total_len]).unwrap();
        Picker::new(geometry, config, StdRng::seed_from_u64(seed))
    }

    /// A picker of `n` one-block pieces.
    fn one_block_pieces(n: u32) -> Picker {
        picker_with(
            u64::from(n) * u64::from(BLOCK_LEN),
            BLOCK_LEN,
            PickerConfig::default(),
            0,
        )
    }

    fn bitfield(num_pieces: u32, have: &[u32]) -> Vec<u8> {
        let mut out = vec![0u8; num_pieces.div_ceil(8) as usize];
        for &p in have {
            out[p as usize / 8] |= 0x80 >> (p % 8);
        }
        out
    }

    fn pieces_of(blocks: &[BlockInfo]) -> Vec<u32> {
        blocks.iter().map(|b| b.piece.0).collect()
    }

    /// Receives every outstanding block of `peer` and passes the hash of
    /// every piece that completes.
    fn deliver_all(picker: &mut Picker, peer: PeerKey) {
        for block in picker.outstanding(peer).to_vec() {
            if let BlockReceived::New {
                piece_complete: true,
                ..
            } = picker.block_received(peer, block).unwrap()
            {
                picker.hash_passed(block.piece).unwrap();
            }
        }
    }

    #[test]
    fn priority_range() {
        assert_eq!(Priority::new(7).unwrap(), Priority::HIGHEST);
        assert_eq!(Priority::new(8), Err(PickerError::InvalidPriority(8)));
        assert!(!Priority::SKIP.is_wanted());
        assert!(Priority::default().is_wanted());
    }

    #[test]
    fn a_piece_only_this_peer_has_comes_before_finishing_a_shared_one() {
        let mut picker = picker_with(
            3 * 4 * u64::from(BLOCK_LEN),
            4 * BLOCK_LEN,
            PickerConfig::default(),
            0,
        );
        picker.peer_bitfield(B, &bitfield(3, &[0])).unwrap();
        picker.peer_have_all(A);
        // Piece 0 is started from B and left with free blocks.
        assert_eq!(pieces_of(&picker.pick_blocks(B, 2)), [0, 0]);
        // A (a lone seed) is asked for what only it has, not for the rest of piece 0.
        let from_a = pieces_of(&picker.pick_blocks(A, 4));
        assert_eq!(from_a.len(), 4);
        assert!(!from_a.contains(&0), "{from_a:?}");
        // B still finishes piece 0.
        assert_eq!(pieces_of(&picker.pick_blocks(B, 4)), [0, 0]);
        // With a second seed no piece is unique: in-progress first again.
        let mut picker = picker_with(
            3 * 4 * u64::from(BLOCK_LEN),
            4 * BLOCK_LEN,
            PickerConfig::default(),
            0,
        );
        picker.peer_have_all(A);
        picker.peer_have_all(C);
        assert_eq!(pieces_of(&picker.pick_blocks(C, 2)).len(), 2);
        let started = pieces_of(picker.outstanding(C))[0];
        assert_eq!(pieces_of(&picker.pick_blocks(A, 2)), [started, started]);
    }

    #[test]
    fn rarest_first_chooses_the_rarest() {
        let mut picker = one_block_pieces(4);
        picker
            .peer_bitfield(A, &bitfield(4, &[0, 1, 2, 3]))
            .unwrap();
        picker.peer_bitfield(B, &bitfield(4, &[0, 1, 2])).unwrap();
        picker.peer_bitfield(C, &bitfield(4, &[0, 1])).unwrap();
        assert_eq!(
            (0..4).map(|p| picker.availability(p)).collect::<Vec<_>>(),
            [3, 3, 2, 1]
        );
        assert_eq!(pieces_of(&picker.pick_blocks(A, 1)), [3]);
        assert_eq!(pieces_of(&picker.pick_blocks(A, 1)), [2]);
        let mut rest = pieces_of(&picker.pick_blocks(A, 5));
        rest.sort_unstable();
        assert_eq!(rest, [0, 1]);
    }

    #[test]
    fn availability_changes_reorder_picks() {
        let mut picker = one_block_pieces(3);
        picker.peer_have_all(A);
        picker.peer_have(B, 0).unwrap();
        picker.peer_have(B, 1).unwrap();
        picker.peer_have(C, 1).unwrap();
        // Piece 2 is rarest (only the seed), then 0, then 1.
        assert_eq!(picker.availability(2), 1);
        assert_eq!(pieces_of(&picker.pick_blocks(A, 3)), [2, 0, 1]);
        // A bitfield replaces what was known.
        picker.peer_bitfield(C, &bitfield(3, &[0, 2])).unwrap();
        assert_eq!([0, 1, 2].map(|p| picker.availability(p)), [3, 2, 2]);
        picker.peer_have_none(B);
        assert_eq!([0, 1, 2].map(|p| picker.availability(p)), [2, 1, 2]);
    }

    #[test]
    fn equally_rare_pieces_are_started_in_runs() {
        let mut picker = one_block_pieces(64);
        picker.peer_have_all(A);
        let picks = pieces_of(&picker.pick_blocks(A, 64));
        let first = picks[0];
        // From a random start, on to the end, then from another random start.
        let run: Vec<u32> = (first..64).collect();
        assert_eq!(&picks[..run.len()], &run[..], "{picks:?}");
        let mut all = picks.clone();
        all.sort_unstable();
        assert_eq!(all, (0..64).collect::<Vec<_>>());
    }

    #[test]
    fn a_run_stops_at_a_more_common_piece() {
        // Piece 1 is held by two peers, the rest by A only: after 0, 2 is rarer than 1.
        let mut picker = one_block_pieces(3);
        picker.peer_have_all(A);
        picker.peer_have(B, 1).unwrap();
        picker.peer_have(B, 0).unwrap();
        picker.peer_have(C, 0).unwrap();
        // Availabilities 3, 2, 1: strictly rarest first, no run can form.
        assert_eq!(pieces_of(&picker.pick_blocks(A, 3)), [2, 1, 0]);
        let mut picker = one_block_pieces(4);
        picker.peer_have_all(A);
        picker.peer_have(B, 1).unwrap();
        let picks = pieces_of(&picker.pick_blocks(A, 4));
        assert_eq!(
            picks.last(),
            Some(&1),
            "the common piece comes last: {picks:?}"
        );
    }

    #[test]
    fn ties_are_broken_randomly() {
        let mut first = [0u32; 2];
        for seed in 0..200 {
            let mut picker = picker_with(
                2 * u64::from(BLOCK_LEN),
                BLOCK_LEN,
                PickerConfig::default(),
                seed,
            );
            picker.peer_have_all(A);
            picker.peer_have(B, 0).unwrap();
            picker.peer_have(B, 1).unwrap();
            let blocks = picker.pick_blocks(A, 1);
            first[blocks[0].piece.0 as usize] += 1;
        }
        // Both tied pieces come first in a fair share of the seeds.
        assert!(first[0] > 60 && first[1] > 60, "{first:?}");
    }

    #[test]
    fn partial_pieces_are_finished_first() {
        // Two pieces of 4 blocks; piece 0 is rarer than piece 1.
        let mut picker = picker_with(
            8 * u64::from(BLOCK_LEN),
            4 * BLOCK_LEN,
            PickerConfig::default(),
            0,
        );
        picker.peer_bitfield(A, &bitfield(2, &[0, 1])).unwrap();
        picker.peer_bitfield(B, &bitfield(2, &[0, 1])).unwrap();
        picker.peer_have(C, 1).unwrap();
        let a = picker.pick_blocks(A, 2);
        assert_eq!(
            a.iter()
                .map(|b| (b.piece.0, b.begin / BLOCK_LEN))
                .collect::<Vec<_>>(),
            [(0, 0), (0, 1)]
        );
        // B finishes piece 0 before starting piece 1.
        let b = picker.pick_blocks(B, 4);
        assert_eq!(
            b.iter()
                .map(|b| (b.piece.0, b.begin / BLOCK_LEN))
                .collect::<Vec<_>>(),
            [(0, 2), (0, 3), (1, 0), (1, 1)]
        );
    }

    #[test]
    fn partial_piece_beats_a_rarer_new_piece() {
        let mut picker = picker_with(
            8 * u64::from(BLOCK_LEN),
            4 * BLOCK_LEN,
            PickerConfig::default(),
            0,
        );
        picker.peer_have_all(A);
        picker.peer_have_all(B);
        let first = picker.pick_blocks(A, 4);
        let started = first[0].piece.0;
        let other = 1 - started;
        // A released request makes its piece in progress with a free block...
        assert!(picker.request_released(A, first[3]));
        // ...while the other piece becomes the rarer one.
        picker.peer_have(C, started).unwrap();
        assert!(picker.availability(other) < picker.availability(started));
        assert_eq!(picker.pick_blocks(B, 1), [first[3]]);
    }

    #[test]
    fn a_peer_never_gets_a_piece_it_lacks() {
        let n = 64;
        let mut picker = picker_with(
            u64::from(n) * 2 * u64::from(BLOCK_LEN),
            2 * BLOCK_LEN,
            PickerConfig::default(),
            7,
        );
        let a_has: Vec<u32> = (0..n).filter(|p| p % 3 == 0).collect();
        picker.peer_bitfield(A, &bitfield(n, &a_has)).unwrap();
        picker.peer_have_all(B);
        picker.peer_have_none(C);
        assert!(picker.pick_blocks(C, 10).is_empty());
        assert!(!picker.is_interesting(C));
        let mut got = Vec::new();
        loop {
            let blocks = picker.pick_blocks(A, 3);
            if blocks.is_empty() {
                break;
            }
            got.extend(pieces_of(&blocks));
        }
        got.sort_unstable();
        got.dedup();
        assert_eq!(got, a_has);
    }

    #[test]
    fn no_block_is_requested_twice_outside_endgame() {
        let mut picker = picker_with(
            10 * u64::from(BLOCK_LEN),
            2 * BLOCK_LEN,
            PickerConfig::default(),
            3,
        );
        picker.peer_have_all(A);
        picker.peer_have_all(B);
        let a = picker.pick_blocks(A, 6);
        let b = picker.pick_blocks(B, 4);
        assert_eq!(a.len(), 6);
        assert_eq!(b.len(), 4);
        assert!(a.iter().all(|x| !b.contains(x)));
        // Every block is requested now: endgame lets B duplicate A's blocks.
        assert!(picker.in_endgame());
        let dup = picker.pick_blocks(B, 10);
        assert_eq!(dup.len(), 6);
        assert!(dup.iter().all(|x| a.contains(x)));
    }

    #[test]
    fn endgame_duplicates_and_cancels() {
        let config = PickerConfig {
            endgame_max_requesters: 2,
            ..PickerConfig::default()
        };
        let mut picker = picker_with(2 * u64::from(BLOCK_LEN), 2 * BLOCK_LEN, config, 0);
        for peer in [A, B, C] {
            picker.peer_have_all(peer);
        }
        let a = picker.pick_blocks(A, 2);
        assert_eq!(a.len(), 2);
        assert!(picker.in_endgame());
        let mut b = picker.pick_blocks(B, 5);
        b.sort_unstable();
        assert_eq!(b, a, "B duplicates both outstanding blocks");
        assert!(
            picker.pick_blocks(C, 5).is_empty(),
            "at most 2 requesters per block"
        );
        assert!(
            picker.pick_blocks(B, 5).is_empty(),
            "never the same block twice to one peer"
        );

        let got = picker.block_received(A, a[0]).unwrap();
        assert_eq!(
            got,
            BlockReceived::New {
                piece_complete: false,
                cancels: vec![(B, a[0])]
            }
        );
        assert_eq!(picker.outstanding(B), [a[1]]);
        // The late duplicate is dropped.
        assert_eq!(
            picker.block_received(B, a[0]).unwrap(),
            BlockReceived::Ignored
        );
        let got = picker.block_received(B, a[1]).unwrap();
        assert_eq!(
            got,
            BlockReceived::New {
                piece_complete: true,
                cancels: vec![(A, a[1])]
            }
        );
        assert!(picker.outstanding(A).is_empty() && picker.outstanding(B).is_empty());
        assert!(!picker.in_endgame());
        picker.hash_passed(0).unwrap();
        assert!(picker.is_complete());
    }

    #[test]
    fn endgame_releasing_one_requester_keeps_the_other() {
        let mut picker = one_block_pieces(1);
        picker.peer_have_all(A);
        picker.peer_have_all(B);
        let block = picker.pick_blocks(A, 1)[0];
        assert_eq!(picker.pick_blocks(B, 1), [block]);
        picker.peer_choked(A);
        assert!(picker.in_endgame(), "still requested from B");
        assert!(picker.pick_blocks(C, 1).is_empty(), "C has nothing");
        assert_eq!(picker.pick_blocks(A, 1), [block], "A may duplicate again");
    }

    #[test]
    fn hash_failure_requeues_and_names_contributors() {
        let mut picker = picker_with(
            3 * u64::from(BLOCK_LEN),
            3 * BLOCK_LEN,
            PickerConfig::default(),
            0,
        );
        picker.peer_have_all(A);
        picker.peer_have_all(B);
        let a = picker.pick_blocks(A, 2);
        let b = picker.pick_blocks(B, 1);
        assert!(b.iter().all(|x| !a.contains(x)));
        for block in &a {
            picker.block_received(A, *block).unwrap();
        }
        let got = picker.block_received(B, b[0]).unwrap();
        assert_eq!(
            got,
            BlockReceived::New {
                piece_complete: true,
                cancels: vec![]
            }
        );
        assert_eq!(picker.piece_state(0), Some(PieceState::Complete));
        assert_eq!(picker.hash_failed(0).unwrap(), [A, B]);
        assert_eq!(picker.piece_state(0), Some(PieceState::Missing));
        assert_eq!(picker.pick_blocks(C, 3), [], "C has nothing");
        assert_eq!(picker.pick_blocks(B, 3).len(), 3, "all blocks needed again");
        assert_eq!(
            picker.hash_passed(0),
            Err(PickerError::WrongState {
                piece: 0,
                state: PieceState::Partial,
                expected: PieceState::Complete
            })
        );
    }

    #[test]
    fn priorities_order_and_skip() {
        let mut picker = one_block_pieces(4);
        picker.peer_have_all(A);
        // Piece 3 is the most common, but has the highest priority.
        picker.peer_have(B, 3).unwrap();
        picker.peer_have(C, 3).unwrap();
        picker
            .set_priorities(&[
                Priority::LOWEST,
                Priority::SKIP,
                Priority::NORMAL,
                Priority::HIGHEST,
            ])
            .unwrap();
        assert_eq!(pieces_of(&picker.pick_blocks(A, 10)), [3, 2, 0]);
        deliver_all(&mut picker, A);
        assert!(picker.is_complete());
        assert!(!picker.has_piece(1));
        assert!(!picker.is_interesting(A), "nothing wanted left");
        // Wanting piece 1 again reopens the download.
        picker.set_priority(1, Priority::NORMAL).unwrap();
        assert!(!picker.is_complete());
        assert!(picker.is_interesting(A));
        assert_eq!(pieces_of(&picker.pick_blocks(A, 10)), [1]);
        assert_eq!(
            picker.set_priorities(&[Priority::NORMAL]),
            Err(PickerError::PriorityCount {
                got: 1,
                expected: 4
            })
        );
    }

    #[test]
    fn skipped_piece_data_is_ignored() {
        let mut picker = one_block_pieces(2);
        picker.set_priority(1, Priority::SKIP).unwrap();
        let block = picker.geometry().block(PieceIndex(1), 0).unwrap();
        assert_eq!(
            picker.block_received(A, block).unwrap(),
            BlockReceived::Ignored
        );
        assert_eq!(picker.piece_state(1), Some(PieceState::Missing));
    }

    #[test]
    fn higher_priority_new_piece_beats_lower_partial() {
        let mut picker = picker_with(
            4 * u64::from(BLOCK_LEN),
            2 * BLOCK_LEN,
            PickerConfig::default(),
            0,
        );
        picker.peer_have_all(A);
        picker.set_priority(1, Priority::SKIP).unwrap();
        let first = picker.pick_blocks(A, 1);
        assert_eq!(pieces_of(&first), [0]);
        picker.set_priority(1, Priority::HIGHEST).unwrap();
        assert_eq!(pieces_of(&picker.pick_blocks(A, 3)), [1, 1, 0]);
    }

    #[test]
    fn sequential_mode_picks_in_index_order() {
        let config = PickerConfig {
            sequential: true,
            ..PickerConfig::default()
        };
        let mut picker = picker_with(8 * u64::from(BLOCK_LEN), BLOCK_LEN, config, 0);
        picker.peer_have_all(A);
        picker.peer_bitfield(B, &bitfield(8, &[1, 5, 6])).unwrap();
        picker.mark_have(2).unwrap();
        picker.set_priority(4, Priority::SKIP).unwrap();
        assert_eq!(pieces_of(&picker.pick_blocks(B, 2)), [1, 5]);
        assert_eq!(pieces_of(&picker.pick_blocks(A, 4)), [0, 3, 6, 7]);
        // A released request is picked again first.
        picker.peer_choked(B);
        assert_eq!(pieces_of(&picker.pick_blocks(A, 10)), [1, 5]);
        picker.set_sequential(false);
        assert!(!picker.is_sequential());
    }

    #[test]
    fn disconnect_releases_requests_and_availability() {
        let mut picker = picker_with(
            4 * u64::from(BLOCK_LEN),
            2 * BLOCK_LEN,
            PickerConfig::default(),
            0,
        );
        picker.peer_have_all(A);
        picker.peer_bitfield(B, &bitfield(2, &[0])).unwrap();
        let a = picker.pick_blocks(A, 3);
        assert_eq!(a.len(), 3);
        assert_eq!(picker.availability(0), 2);
        picker.peer_disconnected(A);
        assert_eq!(picker.availability(0), 1);
        assert_eq!(picker.availability(1), 0);
        assert!(picker.outstanding(A).is_empty());
        assert_eq!(picker.piece_state(0), Some(PieceState::Missing));
        assert_eq!(picker.pick_blocks(B, 5).len(), 2, "piece 0 free again");
        // A peer that is gone gets nothing.
        assert!(picker.pick_blocks(A, 5).is_empty());
    }

    #[test]
    fn choke_and_release_return_blocks_to_the_pool() {
        let mut picker = picker_with(
            4 * u64::from(BLOCK_LEN),
            4 * BLOCK_LEN,
            PickerConfig::default(),
            0,
        );
        picker.peer_have_all(A);
        picker.peer_have_all(B);
        let a = picker.pick_blocks(A, 3);
        picker.block_received(A, a[0]).unwrap();
        assert!(picker.request_released(A, a[1]));
        assert!(!picker.request_released(A, a[1]), "already released");
        assert!(!picker.request_released(B, a[2]), "never requested from B");
        assert_eq!(picker.peer_choked(A), [a[2]]);
        assert_eq!(picker.piece_state(0), Some(PieceState::Partial));
        let b = picker.pick_blocks(B, 5);
        assert_eq!(
            b,
            [
                a[1],
                a[2],
                picker.geometry().block(PieceIndex(0), 3).unwrap()
            ]
        );
    }

    #[test]
    fn resume_marks_pieces_as_have() {
        let mut picker = one_block_pieces(3);
        picker.peer_have_all(A);
        picker.mark_have(0).unwrap();
        picker.mark_have(0).unwrap();
        picker.mark_have(2).unwrap();
        assert_eq!(picker.num_have(), 2);
        assert_eq!(picker.bitfield(), [0b1010_0000]);
        let blocks = picker.pick_blocks(A, 3);
        assert_eq!(pieces_of(&blocks), [1]);
        assert_eq!(
            picker.mark_have(1),
            Err(PickerError::WrongState {
                piece: 1,
                state: PieceState::Partial,
                expected: PieceState::Missing
            })
        );
        assert_eq!(
            picker.mark_have(3),
            Err(PickerError::PieceOutOfRange {
                piece: 3,
                num_pieces: 3
            })
        );
        deliver_all(&mut picker, A);
        assert!(picker.is_complete());
        assert_eq!(picker.bitfield(), [0b1110_0000]);
    }

    #[test]
    fn unsolicited_and_invalid_blocks() {
        let mut picker = picker_with(
            2 * u64::from(BLOCK_LEN),
            2 * BLOCK_LEN,
            PickerConfig::default(),
            0,
        );
        let block = picker.geometry().block(PieceIndex(0), 1).unwrap();
        let got = picker.block_received(A, block).unwrap();
        assert_eq!(
            got,
            BlockReceived::New {
                piece_complete: false,
                cancels: vec![]
            }
        );
        assert_eq!(
            picker.block_received(B, block).unwrap(),
            BlockReceived::Ignored
        );
        let bad = BlockInfo {
            piece: PieceIndex(0),
            begin: 1,
            len: 10,
        };
        assert_eq!(
            picker.block_received(A, bad),
            Err(PickerError::InvalidBlock {
                piece: 0,
                begin: 1,
                len: 10
            })
        );
        picker.peer_have_all(B);
        assert_eq!(
            picker.pick_blocks(B, 5),
            [picker.geometry().block(PieceIndex(0), 0).unwrap()]
        );
    }

    #[test]
    fn bitfield_validation() {
        let mut picker = one_block_pieces(10);
        assert_eq!(
            picker.peer_bitfield(A, &[0]),
            Err(PickerError::BitfieldLen {
                got: 1,
                expected: 2
            })
        );
        assert_eq!(
            picker.peer_bitfield(A, &[0, 0b0010_0000]),
            Err(PickerError::BitfieldSpareBits { num_pieces: 10 })
        );
        assert_eq!(
            picker.peer_have(A, 10),
            Err(PickerError::PieceOutOfRange {
                piece: 10,
                num_pieces: 10
            })
        );
        picker.peer_bitfield(A, &[0xff, 0b1100_0000]).unwrap();
        assert_eq!(picker.availability(9), 1);
        assert!(picker.is_interesting(A));
    }

    #[test]
    fn interest_follows_what_we_still_need() {
        let mut picker = one_block_pieces(2);
        picker.peer_have(A, 0).unwrap();
        assert!(picker.is_interesting(A));
        let blocks = picker.pick_blocks(A, 2);
        assert!(picker.is_interesting(A), "in progress is still needed");
        picker.block_received(A, blocks[0]).unwrap();
        picker.hash_passed(0).unwrap();
        assert!(!picker.is_interesting(A));
        picker.peer_have(A, 1).unwrap();
        assert!(picker.is_interesting(A));
    }

    #[test]
    fn many_peers_widen_the_holders_matrix_and_reuse_slots() {
        let n = 16;
        let mut picker = one_block_pieces(n);
        for k in 0..150u64 {
            picker
                .peer_have(PeerKey(k), (k % u64::from(n)) as u32)
                .unwrap();
        }
        assert_eq!(picker.peers.words, 3);
        assert_eq!(picker.availability(0), 10);
        assert_eq!(picker.availability(15), 9);
        for k in (0..150u64).step_by(2) {
            picker.peer_disconnected(PeerKey(k));
        }
        assert_eq!(picker.availability(0), 0);
        assert_eq!(picker.availability(1), 10);
        // New peers take the freed slots; the matrix does not grow.
        for k in 200..275u64 {
            picker.peer_have_all(PeerKey(k));
        }
        assert_eq!(picker.peers.words, 3);
        assert_eq!(picker.availability(0), 75);
        let blocks = picker.pick_blocks(PeerKey(149), 4);
        assert_eq!(pieces_of(&blocks), [5]);
        assert_eq!(picker.check_invariants(), Ok(()));
    }

    // ---- property test: random event sequences ----

    #[derive(Debug, Clone)]
    enum Op {
        Bitfield(u64, u64),
        Have(u64, u32),
        HaveAll(u64),
        HaveNone(u64),
        Pick(u64, usize),
        Receive(u64, usize),
        Unsolicited(u64, u32, u32),
        Release(u64, usize),
        Choke(u64),
        Disconnect(u64),
        HashResult(usize, bool),
        Priority(u32, u8),
        Sequential(bool),
    }

    fn op() -> impl Strategy<Value = Op> {
        let peer = 0..4u64;
        prop_oneof![
            (peer.clone(), any::<u64>()).prop_map(|(p, bits)| Op::Bitfield(p, bits)),
            (peer.clone(), 0..40u32).prop_map(|(p, i)| Op::Have(p, i)),
            peer.clone().prop_map(Op::HaveAll),
            peer.clone().prop_map(Op::HaveNone),
            (peer.clone(), 0..6usize).prop_map(|(p, n)| Op::Pick(p, n)),
            (peer.clone(), 0..8usize).prop_map(|(p, n)| Op::Pick(p, n)),
            (peer.clone(), any::<usize>()).prop_map(|(p, i)| Op::Receive(p, i)),
            (peer.clone(), any::<usize>()).prop_map(|(p, i)| Op::Receive(p, i)),
            (peer.clone(), 0..40u32, 0..4u32).prop_map(|(p, i, b)| Op::Unsolicited(p, i, b)),
            (peer.clone(), any::<usize>()).prop_map(|(p, i)| Op::Release(p, i)),
            peer.clone().prop_map(Op::Choke),
            peer.prop_map(Op::Disconnect),
            (any::<usize>(), prop::bool::weighted(0.8)).prop_map(|(i, ok)| Op::HashResult(i, ok)),
            (0..40u32, 0..8u8).prop_map(|(i, l)| Op::Priority(i, l)),
            any::<bool>().prop_map(Op::Sequential),
        ]
    }

    fn apply(picker: &mut Picker, op: &Op) {
        let n = picker.geometry().num_pieces();
        match *op {
            Op::Bitfield(p, bits) => {
                let have: Vec<u32> = (0..n).filter(|i| (bits >> (i % 64)) & 1 == 1).collect();
                picker
                    .peer_bitfield(PeerKey(p), &bitfield(n, &have))
                    .unwrap();
            }
            Op::Have(p, i) => {
                let result = picker.peer_have(PeerKey(p), i);
                assert_eq!(result.is_ok(), i < n);
            }
            Op::HaveAll(p) => picker.peer_have_all(PeerKey(p)),
            Op::HaveNone(p) => picker.peer_have_none(PeerKey(p)),
            Op::Pick(p, max) => {
                let peer = PeerKey(p);
                let others: Vec<BlockInfo> = (0..4)
                    .filter(|&q| q != p)
                    .flat_map(|q| picker.outstanding(PeerKey(q)).to_vec())
                    .collect();
                let before = picker.outstanding(peer).to_vec();
                let blocks = picker.pick_blocks(peer, max);
                assert!(blocks.len() <= max);
                for block in &blocks {
                    assert!(
                        picker.peers.key_has(peer, block.piece.0),
                        "peer lacks {block:?}"
                    );
                    assert!(picker.priority(block.piece).is_wanted());
                    assert_eq!(picker.piece_state(block.piece), Some(PieceState::Partial));
                    assert!(
                        !before.contains(block),
                        "{block:?} requested twice from one peer"
                    );
                    // Duplicates only once every wanted block is requested.
                    assert!(
                        picker.in_endgame() || !others.contains(block),
                        "{block:?} duplicated outside endgame"
                    );
                }
            }
            Op::Receive(p, i) => {
                let peer = PeerKey(p);
                let outstanding = picker.outstanding(peer).to_vec();
                if !outstanding.is_empty() {
                    let block = outstanding[i % outstanding.len()];
                    let got = picker.block_received(peer, block).unwrap();
                    assert!(
                        matches!(got, BlockReceived::New { .. }),
                        "requested block refused"
                    );
                }
            }
            Op::Unsolicited(p, i, b) => {
                if let Some(block) = picker.geometry().block(PieceIndex(i), b) {
                    picker.block_received(PeerKey(p), block).unwrap();
                }
            }
            Op::Release(p, i) => {
                let peer = PeerKey(p);
                let outstanding = picker.outstanding(peer).to_vec();
                if !outstanding.is_empty() {
                    assert!(picker.request_released(peer, outstanding[i % outstanding.len()]));
                }
            }
            Op::Choke(p) => {
                picker.peer_choked(PeerKey(p));
                assert!(picker.outstanding(PeerKey(p)).is_empty());
            }
            Op::Disconnect(p) => picker.peer_disconnected(PeerKey(p)),
            Op::HashResult(i, ok) => {
                let complete: Vec<u32> = picker.awaiting.keys().copied().collect();
                if !complete.is_empty() {
                    let piece = complete[i % complete.len()];
                    if ok {
                        picker.hash_passed(piece).unwrap();
                    } else {
                        assert!(!picker.hash_failed(piece).unwrap().is_empty());
                    }
                }
            }
            Op::Priority(i, level) => {
                if i < n {
                    picker
                        .set_priority(i, Priority::new(level).unwrap())
                        .unwrap();
                }
            }
            Op::Sequential(on) => picker.set_sequential(on),
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn random_events_keep_invariants_and_a_seed_completes(
            num_pieces in 1..40u32,
            piece_blocks in 1..4u32,
            tail in 1..=BLOCK_LEN,
            seed in any::<u64>(),
            ops in prop::collection::vec(op(), 0..120),
        ) {
            let piece_len = piece_blocks * BLOCK_LEN;
            let total_len = u64::from(num_pieces - 1) * u64::from(piece_len) + u64::from(tail);
            let mut picker = picker_with(total_len, piece_len, PickerConfig::default(), seed);
            for op in &ops {
                apply(&mut picker, op);
                prop_assert_eq!(picker.check_invariants(), Ok(()));
            }
            // The other peers' requests time out; a seed arrives.
            for p in 0..4 {
                picker.peer_choked(PeerKey(p));
            }
            let pending: Vec<u32> = picker.awaiting.keys().copied().collect();
            for piece in pending {
                picker.hash_passed(piece).unwrap();
            }
            let seed_peer = PeerKey(99);
            picker.peer_have_all(seed_peer);
            let mut rounds = 0;
            while !picker.is_complete() {
                rounds += 1;
                prop_assert!(rounds <= 200, "download stalled");
                let blocks = picker.pick_blocks(seed_peer, 7);
                prop_assert!(!blocks.is_empty(), "seed has nothing to give but download incomplete");
                deliver_all(&mut picker, seed_peer);
            }
            prop_assert_eq!(picker.check_invariants(), Ok(()));
            for p in 0..num_pieces {
                prop_assert!(!picker.priority(p).is_wanted() || picker.has_piece(p));
            }
        }
    }
}
