//! [`PieceHasher`]: SHA-1 of a piece fed block by block as blocks arrive in order.

use sha1::{Digest, Sha1};

/// Zeros fed to the hasher for pad-file bytes (BEP 47), which are never stored.
static ZEROS: [u8; 16 * 1024] = [0; 16 * 1024];

/// The running SHA-1 of a piece's first `hashed_len` bytes.
///
/// Blocks that arrive in order extend the prefix, so when the last block is in, the
/// piece is verified without reading it back; a block that leaves a gap is not hashed
/// (the rest of the piece is read back from disk when it is verified); a block that
/// lands inside the hashed prefix poisons the state (the disk may now hold other bytes
/// than the ones hashed), and the whole piece is read back.
#[derive(Clone, Debug)]
pub struct PieceHasher {
    sha: Sha1,
    hashed_len: u64,
    poisoned: bool,
}

/// What [`PieceHasher::offer`] did with a block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Offer {
    /// The block continued the prefix and was hashed.
    Hashed,
    /// The block starts after the prefix (or is empty); it was left for the read-back.
    Gap,
    /// The block overlaps the prefix: the hasher is now poisoned.
    Poisoned,
}

impl Default for PieceHasher {
    fn default() -> Self {
        Self::new()
    }
}

impl PieceHasher {
    /// A hasher at the start of a piece.
    pub fn new() -> Self {
        Self {
            sha: Sha1::new(),
            hashed_len: 0,
            poisoned: false,
        }
    }

    /// How many bytes from the start of the piece are hashed.
    pub fn hashed_len(&self) -> u64 {
        self.hashed_len
    }

    /// Whether a block overlapped the hashed prefix (the piece must be read back whole).
    pub fn is_poisoned(&self) -> bool {
        self.poisoned
    }

    /// Decides what to do with a block of `len` bytes at `begin` in the piece; if it
    /// continues the prefix, `feed` is called with the hasher to hash its bytes.
    pub fn offer(&mut self, begin: u64, len: u64, feed: impl FnOnce(&mut Self)) -> Offer {
        if self.poisoned {
            return Offer::Poisoned;
        }
        if len == 0 {
            return Offer::Gap;
        }
        if begin == self.hashed_len {
            feed(self);
            debug_assert_eq!(
                self.hashed_len,
                begin + len,
                "feed must hash the whole block"
            );
            Offer::Hashed
        } else if begin > self.hashed_len {
            Offer::Gap
        } else {
            self.poison();
            Offer::Poisoned
        }
    }

    /// Marks the state unusable: the piece will be read back whole.
    pub fn poison(&mut self) {
        self.poisoned = true;
    }

    /// Hashes the next bytes of the piece.
    pub fn update(&mut self, bytes: &[u8]) {
        self.sha.update(bytes);
        self.hashed_len += bytes.len() as u64;
    }

    /// Hashes `len` zero bytes (a pad region).
    pub fn update_zeros(&mut self, mut len: u64) {
        while len > 0 {
            let n = len.min(ZEROS.len() as u64);
            self.update(&ZEROS[..n as usize]); // ok: n <= ZEROS.len()
            len -= n;
        }
    }

    /// The SHA-1 of everything hashed.
    pub fn finish(self) -> [u8; 20] {
        self.sha.finalize().into()
    }
}

/// The SHA-1 of `bytes`, for tests and checks.
pub fn sha1(bytes: &[u8]) -> [u8; 20] {
    Sha1::digest(bytes).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn in_order_blocks_hash_the_whole_piece() {
        let data: Vec<u8> = (0..100u8).collect();
        let mut h = PieceHasher::new();
        for chunk in data.chunks(30) {
            let begin = h.hashed_len();
            assert_eq!(
                h.offer(begin, chunk.len() as u64, |h| h.update(chunk)),
                Offer::Hashed
            );
        }
        assert_eq!(h.finish(), sha1(&data));
    }

    #[test]
    fn gap_is_skipped_and_overlap_poisons() {
        let mut h = PieceHasher::new();
        assert_eq!(h.offer(0, 4, |h| h.update(b"abcd")), Offer::Hashed);
        assert_eq!(
            h.offer(8, 4, |_| panic!("a gap must not be hashed")),
            Offer::Gap
        );
        assert_eq!(h.hashed_len(), 4);
        assert_eq!(h.offer(4, 0, |_| panic!("nothing to hash")), Offer::Gap);
        assert_eq!(
            h.offer(2, 4, |_| panic!("an overlap must not be hashed")),
            Offer::Poisoned
        );
        assert!(h.is_poisoned());
        assert_eq!(h.offer(4, 4, |_| panic!("poisoned")), Offer::Poisoned);
    }

    #[test]
    fn zeros_hash_like_zero_bytes() {
        let mut h = PieceHasher::new();
        h.update(b"x");
        h.update_zeros(40_000);
        h.update(b"y");
        let mut expect = vec![b'x'];
        expect.extend(std::iter::repeat_n(0u8, 40_000));
        expect.push(b'y');
        assert_eq!(h.hashed_len(), 40_002);
        assert_eq!(h.finish(), sha1(&expect));
    }
}
