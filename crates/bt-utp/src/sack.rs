//! The selective ACK extension (BEP 29, extension 1).
//!
//! A bitmask whose bit `i` (least significant bit of byte 0 first) says that packet
//! `ack_nr + 2 + i` arrived; `ack_nr + 1` is the hole that keeps `ack_nr` where it is.
//! BEP 29 makes its length a multiple of 4 bytes, and this crate sends it so; but clients
//! in the wild (libutp's descendants) send 1-byte masks, so any positive length is read.

use crate::{Error, Result};

/// Longest bitmask this crate sends: 64 bytes, 512 packets past the first hole.
pub const MAX_SACK_LEN: usize = 64;

/// A checked selective ACK bitmask borrowed from a datagram (or a [`SackBits`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SelectiveAck<'a> {
    bitmask: &'a [u8],
}

impl<'a> SelectiveAck<'a> {
    /// Checks that `bitmask` is not empty.
    pub fn new(bitmask: &'a [u8]) -> Result<Self> {
        if bitmask.is_empty() {
            return Err(Error::SackLength { len: bitmask.len() });
        }
        Ok(Self { bitmask })
    }

    /// The raw bitmask.
    pub fn bitmask(&self) -> &'a [u8] {
        self.bitmask
    }

    /// Whether packet `ack_nr + 2 + i` is acknowledged.
    pub fn is_set(&self, i: usize) -> bool {
        self.bitmask
            .get(i / 8)
            .is_some_and(|byte| byte & (1 << (i % 8)) != 0)
    }

    /// The offsets `i` (packet `ack_nr + 2 + i`) of every acknowledged packet, in order.
    pub fn offsets(&self) -> impl Iterator<Item = usize> + 'a {
        let bitmask = self.bitmask;
        bitmask.iter().enumerate().flat_map(|(byte_index, &byte)| {
            (0..8)
                .filter(move |bit| byte & (1 << bit) != 0)
                .map(move |bit| byte_index * 8 + bit)
        })
    }
}

/// A bitmask being built by a receiver, up to [`MAX_SACK_LEN`] bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SackBits {
    bytes: [u8; MAX_SACK_LEN],
    len: usize,
}

impl Default for SackBits {
    fn default() -> Self {
        Self {
            bytes: [0; MAX_SACK_LEN],
            len: 0,
        }
    }
}

impl SackBits {
    /// Marks packet `ack_nr + 2 + i`; offsets past the longest bitmask are ignored.
    pub fn set(&mut self, i: usize) {
        if i < MAX_SACK_LEN * 8 {
            self.bytes[i / 8] |= 1 << (i % 8);
            self.len = self.len.max((i / 32 + 1) * 4);
        }
    }

    /// The bitmask cut to at most `max_len` bytes (rounded down to a multiple of 4), or
    /// `None` if nothing is marked within it.
    pub fn as_sack(&self, max_len: usize) -> Option<SelectiveAck<'_>> {
        let len = self.len.min(max_len / 4 * 4);
        let bits = &self.bytes[..len];
        if bits.iter().all(|&b| b == 0) {
            return None;
        }
        Some(SelectiveAck { bitmask: bits })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bit_zero_of_byte_zero_is_ack_nr_plus_two() {
        let sack = SelectiveAck::new(&[0b0000_0101, 0, 0, 0x80]).unwrap();
        assert!(sack.is_set(0));
        assert!(!sack.is_set(1));
        assert!(sack.is_set(2));
        assert!(sack.is_set(31));
        assert!(!sack.is_set(32));
        assert_eq!(sack.offsets().collect::<Vec<_>>(), [0, 2, 31]);
    }

    #[test]
    fn any_positive_length_is_read() {
        assert_eq!(SelectiveAck::new(&[]), Err(Error::SackLength { len: 0 }));
        for len in [1, 3, 4, 5, 252, 255] {
            assert!(SelectiveAck::new(&vec![0; len]).is_ok(), "{len}");
        }
        let one_byte = SelectiveAck::new(&[0b1000_0001]).unwrap();
        assert_eq!(one_byte.offsets().collect::<Vec<_>>(), [0, 7]);
    }

    #[test]
    fn built_bitmask_rounds_up_to_four_bytes_and_cuts_to_room() {
        let mut bits = SackBits::default();
        assert_eq!(bits.as_sack(64), None);
        bits.set(0);
        bits.set(40);
        bits.set(10_000);
        assert_eq!(bits.as_sack(64).unwrap().bitmask().len(), 8);
        assert_eq!(bits.as_sack(7).unwrap().offsets().collect::<Vec<_>>(), [0]);
        assert_eq!(bits.as_sack(3), None);
    }
}
