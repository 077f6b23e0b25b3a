//! 160-bit node ids and the XOR metric.

use std::fmt;

use bt_meta::InfoHash;
use rand::Rng;

/// Length of a node id in bytes.
pub const ID_LEN: usize = 20;

/// A DHT node id: 160 bits, compared to info-hashes and other ids by XOR distance.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct NodeId(pub [u8; ID_LEN]);

/// The XOR of two ids, ordered as a 160-bit big-endian number (smaller is closer).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Debug)]
pub struct Distance(pub [u8; ID_LEN]);

impl NodeId {
    /// A uniformly random id.
    pub fn random(rng: &mut impl Rng) -> Self {
        let mut id = [0u8; ID_LEN];
        rng.fill(&mut id);
        NodeId(id)
    }

    /// The id in `bytes`, if it is exactly 20 bytes long.
    pub fn from_slice(bytes: &[u8]) -> Option<Self> {
        bytes.try_into().ok().map(NodeId)
    }

    /// Parses 40 hexadecimal characters.
    pub fn from_hex(s: &str) -> Option<Self> {
        InfoHash::from_hex(s).map(|h| NodeId(h.0))
    }

    /// The raw bytes.
    pub fn as_bytes(&self) -> &[u8; ID_LEN] {
        &self.0
    }

    /// XOR distance to `other`.
    pub fn distance(&self, other: &NodeId) -> Distance {
        let mut d = [0u8; ID_LEN];
        for ((out, a), b) in d.iter_mut().zip(&self.0).zip(&other.0) {
            *out = a ^ b;
        }
        Distance(d)
    }

    /// Bit `index` (0 is the most significant bit of the first byte).
    pub fn bit(&self, index: usize) -> bool {
        match self.0.get(index / 8) {
            Some(byte) => byte & (0x80 >> (index % 8)) != 0,
            None => false,
        }
    }

    /// A random id sharing exactly the first `prefix_len` bits with `self` and
    /// differing at bit `prefix_len` (`prefix_len` 160 gives `self`).
    pub fn random_at_prefix(&self, prefix_len: usize, exact: bool, rng: &mut impl Rng) -> NodeId {
        if prefix_len >= ID_LEN * 8 {
            return *self;
        }
        let mut out = NodeId::random(rng);
        for i in 0..prefix_len {
            out.set_bit(i, self.bit(i));
        }
        if exact {
            out.set_bit(prefix_len, !self.bit(prefix_len));
        }
        out
    }

    fn set_bit(&mut self, index: usize, value: bool) {
        if let Some(byte) = self.0.get_mut(index / 8) {
            let mask = 0x80 >> (index % 8);
            if value {
                *byte |= mask;
            } else {
                *byte &= !mask;
            }
        }
    }
}

impl Distance {
    /// Number of leading zero bits: the length of the common prefix (160 for equal ids).
    pub fn leading_zeros(&self) -> usize {
        let mut n = 0;
        for b in self.0 {
            if b == 0 {
                n += 8;
            } else {
                return n + b.leading_zeros() as usize;
            }
        }
        n
    }
}

impl From<InfoHash> for NodeId {
    fn from(h: InfoHash) -> Self {
        NodeId(h.0)
    }
}

impl From<NodeId> for InfoHash {
    fn from(id: NodeId) -> Self {
        InfoHash(id.0)
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NodeId({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn id(first: u8) -> NodeId {
        let mut b = [0u8; 20];
        b[0] = first;
        NodeId(b)
    }

    #[test]
    fn distance_orders_by_xor() {
        let me = id(0b1000_0000);
        assert!(me.distance(&id(0b1000_0001)) < me.distance(&id(0b1100_0000)));
        assert!(me.distance(&id(0b1100_0000)) < me.distance(&id(0)));
        assert_eq!(me.distance(&me), Distance::default());
    }

    #[test]
    fn leading_zeros_is_common_prefix_len() {
        assert_eq!(id(0).distance(&id(0)).leading_zeros(), 160);
        assert_eq!(id(0).distance(&id(0x80)).leading_zeros(), 0);
        assert_eq!(id(0).distance(&id(0x01)).leading_zeros(), 7);
        let mut b = [0u8; 20];
        b[19] = 1;
        assert_eq!(id(0).distance(&NodeId(b)).leading_zeros(), 159);
    }

    #[test]
    fn random_at_prefix_shares_exactly_prefix() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let me = NodeId::random(&mut rng);
        for p in [0, 1, 7, 8, 9, 100, 159] {
            for _ in 0..20 {
                let other = me.random_at_prefix(p, true, &mut rng);
                assert_eq!(me.distance(&other).leading_zeros(), p, "prefix {p}");
                let loose = me.random_at_prefix(p, false, &mut rng);
                assert!(me.distance(&loose).leading_zeros() >= p, "prefix {p}");
            }
        }
        assert_eq!(me.random_at_prefix(160, true, &mut rng), me);
    }

    #[test]
    fn hex_and_info_hash_conversions() {
        let s = "0123456789abcdefghij";
        let idv = NodeId(*b"0123456789abcdefghij");
        assert_eq!(NodeId::from_hex(&idv.to_string()), Some(idv));
        assert_eq!(NodeId::from(InfoHash::from(idv)), idv);
        assert_eq!(NodeId::from_slice(s.as_bytes()), Some(idv));
        assert_eq!(NodeId::from_slice(&s.as_bytes()[1..]), None);
    }
}
