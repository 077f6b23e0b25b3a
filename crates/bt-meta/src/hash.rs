//! Identifiers that are easy to mix up: info-hashes and peer ids.

use std::fmt;

/// A v1 info-hash: the SHA-1 of the raw bytes of a torrent's `info` dictionary.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct InfoHash(pub [u8; 20]);

/// A v2 info-hash: the SHA-256 of the raw bytes of a v2 `info` dictionary (BEP 52).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct InfoHashV2(pub [u8; 32]);

/// A 20-byte peer id as sent in the handshake and to trackers.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct PeerId(pub [u8; 20]);

fn write_hex(f: &mut fmt::Formatter<'_>, bytes: &[u8]) -> fmt::Result {
    for b in bytes {
        write!(f, "{b:02x}")?;
    }
    Ok(())
}

fn parse_hex<const N: usize>(s: &str) -> Option<[u8; N]> {
    if s.len() != 2 * N || !s.is_ascii() {
        return None;
    }
    let mut out = [0u8; N];
    for (i, chunk) in s.as_bytes().chunks(2).enumerate() {
        let hi = (chunk[0] as char).to_digit(16)?;
        let lo = (chunk[1] as char).to_digit(16)?;
        out[i] = (hi * 16 + lo) as u8;
    }
    Some(out)
}

impl InfoHash {
    /// Parses 40 hexadecimal characters (either case).
    pub fn from_hex(s: &str) -> Option<Self> {
        parse_hex::<20>(s).map(Self)
    }
    /// Lowercase hexadecimal form.
    pub fn to_hex(&self) -> String {
        self.to_string()
    }
    /// The raw bytes.
    pub fn as_bytes(&self) -> &[u8; 20] {
        &self.0
    }
}

impl InfoHashV2 {
    /// Parses 64 hexadecimal characters (either case).
    pub fn from_hex(s: &str) -> Option<Self> {
        parse_hex::<32>(s).map(Self)
    }
    /// Lowercase hexadecimal form.
    pub fn to_hex(&self) -> String {
        self.to_string()
    }
    /// The first 20 bytes, used where a v2 hash must fit a v1 slot (handshake, trackers).
    pub fn truncated(&self) -> InfoHash {
        let mut out = [0u8; 20];
        out.copy_from_slice(&self.0[..20]);
        InfoHash(out)
    }
}

impl PeerId {
    /// The raw bytes.
    pub fn as_bytes(&self) -> &[u8; 20] {
        &self.0
    }
}

impl fmt::Display for InfoHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_hex(f, &self.0)
    }
}
impl fmt::Debug for InfoHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "InfoHash({self})")
    }
}
impl fmt::Display for InfoHashV2 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_hex(f, &self.0)
    }
}
impl fmt::Debug for InfoHashV2 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "InfoHashV2({self})")
    }
}
impl fmt::Display for PeerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for &b in &self.0 {
            if b.is_ascii_graphic() {
                write!(f, "{}", b as char)?;
            } else {
                write!(f, "\\x{b:02x}")?;
            }
        }
        Ok(())
    }
}
impl fmt::Debug for PeerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PeerId({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trip() {
        let h = InfoHash::from_hex("C12FE1C06BBA254A9DC9F519B335AA7C1367A88A").unwrap();
        assert_eq!(h.to_hex(), "c12fe1c06bba254a9dc9f519b335aa7c1367a88a");
        assert!(InfoHash::from_hex("zz2fe1c06bba254a9dc9f519b335aa7c1367a88a").is_none());
        assert!(InfoHash::from_hex("c12f").is_none());
    }

    #[test]
    fn peer_id_display_escapes() {
        let mut id = [b'a'; 20];
        id[0] = 0;
        assert!(PeerId(id).to_string().starts_with("\\x00a"));
    }
}
