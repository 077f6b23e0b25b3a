//! [`HeldBlocks`]: blocks that arrived ahead of their piece's hashed prefix, kept (within
//! a byte budget) until the blocks before them come, so the piece is hashed from memory.
//!
//! Peers do not always send a piece's blocks in the order they were requested
//! (libtorrent answers from several disk threads and swaps neighbours). A block that
//! leaves a gap cannot be hashed yet; without this, every later block of that piece
//! is read back from disk when the piece is verified. The disk writer already puts what
//! is queued at once in torrent order, so what lands here is mostly a swap that straddles
//! two of its windows.
//!
//! Held blocks are copies, not the `Bytes` the socket filled: such a slice keeps its
//! whole read buffer (up to 256 KiB) alive, so the budget would not bound memory.

use std::collections::HashMap;

/// What [`HeldBlocks::hold`] did with a block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Hold {
    /// Copied in (replacing an earlier copy of the same block, if any).
    Held,
    /// Not kept: the budget is spent. The piece reads it back when verified.
    Full,
    /// It overlaps a held block without being the same block: the piece's held blocks
    /// are dropped and its hash state must be given up.
    Overlap,
}

/// One held block.
#[derive(Debug)]
struct Held {
    begin: u32,
    data: Box<[u8]>,
}

/// Out-of-order blocks of the pieces being hashed, at most `limit` bytes in all.
#[derive(Debug)]
pub(crate) struct HeldBlocks {
    /// Per piece, sorted by `begin`, never overlapping.
    pieces: HashMap<u32, Vec<Held>>,
    bytes: usize,
    limit: usize,
    /// Buffers no longer holding anything, reused before allocating (all of them together
    /// never exceed the most ever held at once, so `limit`).
    spare: Vec<Box<[u8]>>,
}

impl HeldBlocks {
    /// Nothing held; at most `limit` bytes will be.
    pub(crate) fn new(limit: usize) -> Self {
        Self {
            pieces: HashMap::new(),
            bytes: 0,
            limit,
            spare: Vec::new(),
        }
    }

    /// Bytes held now.
    #[cfg(test)]
    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }

    /// Keeps a copy of `data`, the block at `begin` in `piece` (the bytes that were just
    /// written there, so a newer copy of the same block replaces the older one).
    pub(crate) fn hold(&mut self, piece: u32, begin: u32, data: &[u8]) -> Hold {
        if data.is_empty() {
            return Hold::Full;
        }
        let end = u64::from(begin) + data.len() as u64;
        let held = self.pieces.entry(piece).or_default();
        let at = held.partition_point(|h| h.begin < begin);
        if let Some(same) = held.get_mut(at).filter(|h| h.begin == begin) {
            if same.data.len() == data.len() {
                same.data.copy_from_slice(data);
                return Hold::Held;
            }
            return self.overlap(piece);
        }
        let overlaps_before = at
            .checked_sub(1)
            .and_then(|i| held.get(i))
            .is_some_and(|h| u64::from(h.begin) + h.data.len() as u64 > u64::from(begin));
        let overlaps_after = held.get(at).is_some_and(|h| u64::from(h.begin) < end);
        if overlaps_before || overlaps_after {
            return self.overlap(piece);
        }
        if self.bytes + data.len() > self.limit {
            return Hold::Full;
        }
        let buf = match self.spare.iter().position(|b| b.len() == data.len()) {
            Some(i) => {
                let mut b = self.spare.swap_remove(i);
                b.copy_from_slice(data);
                b
            }
            None => data.into(),
        };
        held.insert(at, Held { begin, data: buf });
        self.bytes += data.len();
        Hold::Held
    }

    fn overlap(&mut self, piece: u32) -> Hold {
        self.forget(piece);
        Hold::Overlap
    }

    /// Takes out the held block of `piece` that starts at `begin`, if there is one.
    pub(crate) fn take(&mut self, piece: u32, begin: u64) -> Option<(u32, Box<[u8]>)> {
        let held = self.pieces.get_mut(&piece)?;
        let first = held.first()?;
        if u64::from(first.begin) != begin {
            return None;
        }
        let h = held.remove(0);
        self.bytes -= h.data.len();
        if held.is_empty() {
            self.pieces.remove(&piece);
        }
        Some((h.begin, h.data))
    }

    /// Hands back a buffer from [`take`](Self::take) once its bytes are used.
    pub(crate) fn recycle(&mut self, buf: Box<[u8]>) {
        self.spare.push(buf);
    }

    /// Drops every held block of `piece`.
    pub(crate) fn forget(&mut self, piece: u32) {
        if let Some(held) = self.pieces.remove(&piece) {
            for h in held {
                self.bytes -= h.data.len();
                self.spare.push(h.data);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn held_blocks_come_back_in_order_of_the_prefix() {
        let mut h = HeldBlocks::new(100);
        assert_eq!(h.hold(1, 20, &[2; 10]), Hold::Held);
        assert_eq!(h.hold(1, 10, &[1; 10]), Hold::Held);
        assert_eq!(h.bytes(), 20);
        assert_eq!(h.take(1, 20), None, "10 comes first");
        assert_eq!(h.take(2, 10), None);
        assert_eq!(h.take(1, 10), Some((10, vec![1; 10].into())));
        let (_, second) = h.take(1, 20).unwrap();
        assert_eq!(&second[..], &[2; 10]);
        h.recycle(second);
        assert_eq!(h.hold(4, 0, &[3; 10]), Hold::Held);
        assert!(h.spare.is_empty(), "the recycled buffer was reused");
        assert_eq!(h.take(4, 0), Some((0, vec![3; 10].into())));
        assert_eq!(h.take(1, 30), None);
        assert_eq!(h.bytes(), 0);
        assert!(h.pieces.is_empty());
    }

    #[test]
    fn a_newer_copy_replaces_the_held_one() {
        let mut h = HeldBlocks::new(100);
        assert_eq!(h.hold(0, 10, &[1; 10]), Hold::Held);
        assert_eq!(h.hold(0, 10, &[9; 10]), Hold::Held);
        assert_eq!(h.bytes(), 10);
        assert_eq!(h.take(0, 10), Some((10, vec![9; 10].into())));
    }

    #[test]
    fn partial_overlaps_drop_the_piece() {
        for (begin, len) in [(5u32, 10usize), (15, 10), (10, 5), (0, 40)] {
            let mut h = HeldBlocks::new(100);
            assert_eq!(h.hold(0, 10, &[1; 10]), Hold::Held);
            assert_eq!(h.hold(3, 10, &[1; 10]), Hold::Held);
            assert_eq!(
                h.hold(0, begin, &vec![2; len]),
                Hold::Overlap,
                "{begin}+{len}"
            );
            assert_eq!(h.bytes(), 10, "piece 3 keeps its block");
            assert_eq!(h.take(0, 10), None);
        }
        let mut h = HeldBlocks::new(100);
        assert_eq!(h.hold(0, 10, &[1; 10]), Hold::Held);
        assert_eq!(
            h.hold(0, 20, &[1; 10]),
            Hold::Held,
            "touching is not overlapping"
        );
        assert_eq!(h.hold(0, 0, &[1; 10]), Hold::Held);
    }

    #[test]
    fn the_budget_is_never_exceeded() {
        let mut h = HeldBlocks::new(25);
        assert_eq!(h.hold(0, 10, &[1; 10]), Hold::Held);
        assert_eq!(h.hold(1, 10, &[1; 10]), Hold::Held);
        assert_eq!(h.hold(2, 10, &[1; 10]), Hold::Full);
        assert_eq!(h.hold(2, 10, &[]), Hold::Full);
        assert_eq!(h.bytes(), 20);
        h.forget(0);
        assert_eq!(h.bytes(), 10);
        assert_eq!(h.hold(2, 10, &[1; 10]), Hold::Held);
        h.forget(7);
        assert_eq!(h.bytes(), 20);
    }
}
