//! The BitTorrent handshake (BEP 3), its reserved bits (BEP 5, 6, 10) and peer-id generation.

use std::fmt;

use bt_meta::{InfoHash, PeerId};
use bytes::{Buf, BufMut, BytesMut};
use rand::Rng;

use crate::error::WireError;

/// The protocol string, preceded by its length byte (19).
pub const PROTOCOL: &[u8; 20] = b"\x13BitTorrent protocol";

/// The length of a handshake on the wire: 1 + 19 + 8 + 20 + 20 bytes.
pub const HANDSHAKE_LEN: usize = 68;

/// The Azureus-style prefix of the peer ids this client generates: client `BT`, version 0001.
pub const PEER_ID_PREFIX: &[u8; 8] = b"-BT0001-";

/// The 8 reserved bytes of a handshake, where peers advertise protocol extensions.
///
/// Bits this crate knows by name (the byte index counts from 0 at the first reserved byte):
///
/// | extension | BEP | byte | mask |
/// |---|---|---|---|
/// | extension protocol | 10 | 5 | `0x10` |
/// | fast extension | 6 | 7 | `0x04` |
/// | DHT | 5 | 7 | `0x01` |
///
/// Any other bit is kept as received and can be read through the public byte array.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Reserved(pub [u8; 8]);

impl Reserved {
    const EXTENSION_PROTOCOL: (usize, u8) = (5, 0x10);
    const FAST: (usize, u8) = (7, 0x04);
    const DHT: (usize, u8) = (7, 0x01);

    /// No extension bits set.
    pub const fn new() -> Self {
        Reserved([0; 8])
    }

    fn get(&self, (byte, mask): (usize, u8)) -> bool {
        self.0[byte] & mask != 0
    }

    fn set(&mut self, (byte, mask): (usize, u8), on: bool) {
        if on {
            self.0[byte] |= mask;
        } else {
            self.0[byte] &= !mask;
        }
    }

    /// BEP 6 fast extension (`reserved[7] & 0x04`).
    pub fn supports_fast(&self) -> bool {
        self.get(Self::FAST)
    }
    /// Sets or clears the BEP 6 fast extension bit.
    pub fn set_fast(&mut self, on: bool) {
        self.set(Self::FAST, on)
    }

    /// BEP 10 extension protocol (`reserved[5] & 0x10`).
    pub fn supports_extension_protocol(&self) -> bool {
        self.get(Self::EXTENSION_PROTOCOL)
    }
    /// Sets or clears the BEP 10 extension protocol bit.
    pub fn set_extension_protocol(&mut self, on: bool) {
        self.set(Self::EXTENSION_PROTOCOL, on)
    }

    /// BEP 5 DHT (`reserved[7] & 0x01`): the peer will send a `port` message.
    pub fn supports_dht(&self) -> bool {
        self.get(Self::DHT)
    }
    /// Sets or clears the BEP 5 DHT bit.
    pub fn set_dht(&mut self, on: bool) {
        self.set(Self::DHT, on)
    }
}

impl fmt::Debug for Reserved {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Reserved(")?;
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        write!(
            f,
            "; fast={} ext={} dht={})",
            self.supports_fast(),
            self.supports_extension_protocol(),
            self.supports_dht()
        )
    }
}

/// A BitTorrent handshake: `\x13BitTorrent protocol`, reserved bytes, info-hash, peer id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Handshake {
    /// Extension bits.
    pub reserved: Reserved,
    /// The torrent the connection is about (for v2 torrents: the truncated v2 hash).
    pub info_hash: InfoHash,
    /// The sender's peer id.
    pub peer_id: PeerId,
}

impl Handshake {
    /// A handshake with no reserved bits set.
    pub fn new(info_hash: InfoHash, peer_id: PeerId) -> Self {
        Handshake {
            reserved: Reserved::new(),
            info_hash,
            peer_id,
        }
    }

    /// The 68 bytes sent on the wire.
    pub fn to_bytes(&self) -> [u8; HANDSHAKE_LEN] {
        let mut out = [0u8; HANDSHAKE_LEN];
        out[..20].copy_from_slice(PROTOCOL);
        out[20..28].copy_from_slice(&self.reserved.0);
        out[28..48].copy_from_slice(&self.info_hash.0);
        out[48..68].copy_from_slice(&self.peer_id.0);
        out
    }

    /// Appends the 68 wire bytes to `dst`.
    pub fn encode(&self, dst: &mut BytesMut) {
        dst.put_slice(&self.to_bytes());
    }

    /// Parses exactly 68 bytes.
    pub fn from_bytes(bytes: &[u8; HANDSHAKE_LEN]) -> Result<Self, WireError> {
        check_protocol(bytes)?;
        let mut reserved = [0u8; 8];
        let mut info_hash = [0u8; 20];
        let mut peer_id = [0u8; 20];
        reserved.copy_from_slice(&bytes[20..28]);
        info_hash.copy_from_slice(&bytes[28..48]);
        peer_id.copy_from_slice(&bytes[48..68]);
        Ok(Handshake {
            reserved: Reserved(reserved),
            info_hash: InfoHash(info_hash),
            peer_id: PeerId(peer_id),
        })
    }

    /// Decodes a handshake from the front of `src`.
    ///
    /// Returns `Ok(None)` until all 68 bytes are there, then consumes exactly 68 bytes;
    /// whatever follows (typically the peer's first messages) stays in `src`. The protocol
    /// string is checked as its bytes arrive, so a wrong one is an error even on a short read.
    pub fn decode(src: &mut BytesMut) -> Result<Option<Self>, WireError> {
        check_protocol(&src[..src.len().min(PROTOCOL.len())])?;
        if src.len() < HANDSHAKE_LEN {
            src.reserve(HANDSHAKE_LEN - src.len());
            return Ok(None);
        }
        let mut bytes = [0u8; HANDSHAKE_LEN];
        bytes.copy_from_slice(&src[..HANDSHAKE_LEN]);
        src.advance(HANDSHAKE_LEN);
        Handshake::from_bytes(&bytes).map(Some)
    }
}

/// Checks `prefix` (up to 20 bytes) against the expected length byte and protocol string.
fn check_protocol(prefix: &[u8]) -> Result<(), WireError> {
    let prefix = &prefix[..prefix.len().min(PROTOCOL.len())];
    match prefix.split_first() {
        None => Ok(()),
        Some((&len, _)) if len != PROTOCOL[0] => Err(WireError::ProtocolLength { found: len }),
        Some((_, rest)) if rest != &PROTOCOL[1..1 + rest.len()] => Err(WireError::ProtocolString {
            found: rest.to_vec(),
        }),
        Some(_) => Ok(()),
    }
}

/// A fresh Azureus-style peer id: [`PEER_ID_PREFIX`] followed by 12 random alphanumeric bytes.
pub fn generate_peer_id() -> PeerId {
    generate_peer_id_with(&mut rand::thread_rng())
}

/// [`generate_peer_id`] with a caller-supplied random number generator (for reproducible tests).
pub fn generate_peer_id_with<R: Rng + ?Sized>(rng: &mut R) -> PeerId {
    const ALPHANUMERIC: &[u8; 62] =
        b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let mut id = [0u8; 20];
    id[..8].copy_from_slice(PEER_ID_PREFIX);
    for b in &mut id[8..] {
        *b = ALPHANUMERIC[rng.gen_range(0..ALPHANUMERIC.len())];
    }
    PeerId(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Handshake {
        let mut reserved = Reserved::new();
        reserved.set_fast(true);
        reserved.set_extension_protocol(true);
        reserved.set_dht(true);
        Handshake {
            reserved,
            info_hash: InfoHash([0xab; 20]),
            peer_id: PeerId(*b"-BT0001-abcdefghijkl"),
        }
    }

    #[test]
    fn golden_bytes() {
        let bytes = sample().to_bytes();
        let mut expected = Vec::new();
        expected.extend_from_slice(b"\x13BitTorrent protocol");
        expected.extend_from_slice(&[0, 0, 0, 0, 0, 0x10, 0, 0x05]);
        expected.extend_from_slice(&[0xab; 20]);
        expected.extend_from_slice(b"-BT0001-abcdefghijkl");
        assert_eq!(&bytes[..], &expected[..]);
    }

    #[test]
    fn reserved_bits() {
        let mut r = Reserved::new();
        assert!(!r.supports_fast() && !r.supports_extension_protocol() && !r.supports_dht());
        r.set_fast(true);
        assert_eq!(r.0, [0, 0, 0, 0, 0, 0, 0, 0x04]);
        r.set_dht(true);
        assert_eq!(r.0, [0, 0, 0, 0, 0, 0, 0, 0x05]);
        r.set_extension_protocol(true);
        assert_eq!(r.0, [0, 0, 0, 0, 0, 0x10, 0, 0x05]);
        r.set_fast(false);
        assert!(!r.supports_fast() && r.supports_dht() && r.supports_extension_protocol());
        // Unknown bits survive and do not count as known ones.
        let r = Reserved([0xff, 0xff, 0xff, 0xff, 0xff, !0x10, 0xff, !0x05]);
        assert!(!r.supports_fast() && !r.supports_extension_protocol() && !r.supports_dht());
    }

    #[test]
    fn decode_whole_and_rest_stays() {
        let mut buf = BytesMut::from(&sample().to_bytes()[..]);
        buf.extend_from_slice(&[0, 0, 0, 0]);
        assert_eq!(Handshake::decode(&mut buf).unwrap(), Some(sample()));
        assert_eq!(&buf[..], &[0, 0, 0, 0]);
    }

    #[test]
    fn decode_short_reads() {
        let bytes = sample().to_bytes();
        for n in 0..HANDSHAKE_LEN {
            let mut buf = BytesMut::from(&bytes[..n]);
            assert_eq!(Handshake::decode(&mut buf).unwrap(), None, "prefix of {n}");
            assert_eq!(buf.len(), n, "nothing consumed on a short read");
        }
    }

    #[test]
    fn wrong_protocol() {
        let mut buf = BytesMut::from(&b"\x13BitTorrent protocoX"[..]);
        match Handshake::decode(&mut buf) {
            Err(WireError::ProtocolString { found }) => assert_eq!(found, b"BitTorrent protocoX"),
            other => panic!("{other:?}"),
        }
        // Detected at the first wrong byte, before the handshake is complete.
        let mut buf = BytesMut::from(&b"\x13Bad"[..]);
        assert!(matches!(
            Handshake::decode(&mut buf),
            Err(WireError::ProtocolString { .. })
        ));
        let mut buf = BytesMut::from(&b"GET / HTTP/1.1\r\n"[..]);
        assert!(matches!(
            Handshake::decode(&mut buf),
            Err(WireError::ProtocolLength { found: b'G' })
        ));
        let mut bytes = sample().to_bytes();
        bytes[0] = 18;
        assert!(matches!(
            Handshake::from_bytes(&bytes),
            Err(WireError::ProtocolLength { found: 18 })
        ));
    }

    #[test]
    fn peer_ids() {
        let a = generate_peer_id();
        let b = generate_peer_id();
        assert_ne!(a, b);
        for id in [a, b] {
            assert_eq!(&id.0[..8], PEER_ID_PREFIX);
            assert!(id.0[8..].iter().all(u8::is_ascii_alphanumeric));
        }
    }
}
