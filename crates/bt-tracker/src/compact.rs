//! Compact peer lists (BEP 23 for IPv4, BEP 7 for IPv6): address then port, big-endian.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};

use crate::error::{Error, Result};

/// Bytes per IPv4 compact peer: 4 address bytes and 2 port bytes.
pub const V4_ENTRY_LEN: usize = 6;
/// Bytes per IPv6 compact peer: 16 address bytes and 2 port bytes.
pub const V6_ENTRY_LEN: usize = 18;

/// Which compact form a byte string holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Family {
    /// 6-byte entries.
    V4,
    /// 18-byte entries.
    V6,
}

impl Family {
    /// The family of an address.
    pub fn of(addr: &SocketAddr) -> Self {
        match addr {
            SocketAddr::V4(_) => Family::V4,
            SocketAddr::V6(_) => Family::V6,
        }
    }

    /// Bytes per entry.
    pub fn entry_len(self) -> usize {
        match self {
            Family::V4 => V4_ENTRY_LEN,
            Family::V6 => V6_ENTRY_LEN,
        }
    }
}

/// Decodes compact peers of one family; the length must be a multiple of the entry size.
pub fn decode(bytes: &[u8], family: Family) -> Result<Vec<SocketAddr>> {
    let entry_len = family.entry_len();
    if bytes.len() % entry_len != 0 {
        return Err(Error::BadCompactLength {
            len: bytes.len(),
            entry_len,
        });
    }
    // The output is proportional to the input, which the caller already holds.
    let mut out = Vec::with_capacity(bytes.len() / entry_len);
    for chunk in bytes.chunks_exact(entry_len) {
        out.push(decode_one(chunk, family));
    }
    Ok(out)
}

fn decode_one(chunk: &[u8], family: Family) -> SocketAddr {
    match family {
        Family::V4 => {
            let mut ip = [0u8; 4];
            ip.copy_from_slice(&chunk[..4]); // ok: chunks_exact gives 6 bytes
            let port = u16::from_be_bytes([chunk[4], chunk[5]]); // ok: 6 bytes
            SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::from(ip), port))
        }
        Family::V6 => {
            let mut ip = [0u8; 16];
            ip.copy_from_slice(&chunk[..16]); // ok: chunks_exact gives 18 bytes
            let port = u16::from_be_bytes([chunk[16], chunk[17]]); // ok: 18 bytes
            SocketAddr::V6(SocketAddrV6::new(Ipv6Addr::from(ip), port, 0, 0))
        }
    }
}

/// Appends one peer in its own family's compact form.
pub fn encode_one(addr: &SocketAddr, out: &mut Vec<u8>) {
    match addr {
        SocketAddr::V4(a) => out.extend_from_slice(&a.ip().octets()),
        SocketAddr::V6(a) => out.extend_from_slice(&a.ip().octets()),
    }
    out.extend_from_slice(&addr.port().to_be_bytes());
}

/// Encodes the peers of `family`, skipping those of the other family.
pub fn encode<'a>(peers: impl IntoIterator<Item = &'a SocketAddr>, family: Family) -> Vec<u8> {
    let mut out = Vec::new();
    for p in peers {
        if Family::of(p) == family {
            encode_one(p, &mut out);
        }
    }
    out
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn golden_v4() {
        let bytes = [127, 0, 0, 1, 0x1a, 0xe1, 10, 0, 0, 2, 0, 80];
        let peers = decode(&bytes, Family::V4).unwrap();
        assert_eq!(
            peers,
            vec![
                "127.0.0.1:6881".parse::<SocketAddr>().unwrap(),
                "10.0.0.2:80".parse().unwrap()
            ]
        );
        assert_eq!(encode(&peers, Family::V4), bytes);
    }

    #[test]
    fn golden_v6() {
        let mut bytes = vec![0u8; 15];
        bytes.push(1);
        bytes.extend_from_slice(&[0x1a, 0xe1]);
        let peers = decode(&bytes, Family::V6).unwrap();
        assert_eq!(peers, vec!["[::1]:6881".parse::<SocketAddr>().unwrap()]);
        assert_eq!(encode(&peers, Family::V6), bytes);
    }

    #[test]
    fn bad_length_is_an_error_naming_the_length() {
        let e = decode(&[1, 2, 3, 4, 5], Family::V4).unwrap_err();
        assert!(matches!(
            e,
            Error::BadCompactLength {
                len: 5,
                entry_len: 6
            }
        ));
        assert_eq!(
            e.to_string(),
            "compact peers of 5 bytes is not a multiple of 6"
        );
        assert!(decode(&[0; 17], Family::V6).is_err());
        assert_eq!(decode(&[], Family::V6).unwrap(), vec![]);
    }

    #[test]
    fn encode_skips_the_other_family() {
        let peers: Vec<SocketAddr> = vec!["1.2.3.4:5".parse().unwrap(), "[::2]:7".parse().unwrap()];
        assert_eq!(encode(&peers, Family::V4).len(), 6);
        assert_eq!(encode(&peers, Family::V6).len(), 18);
    }

    pub(crate) fn v4() -> impl Strategy<Value = SocketAddr> {
        (any::<[u8; 4]>(), any::<u16>())
            .prop_map(|(ip, port)| SocketAddr::V4(SocketAddrV4::new(ip.into(), port)))
    }

    pub(crate) fn v6() -> impl Strategy<Value = SocketAddr> {
        (any::<[u8; 16]>(), any::<u16>())
            .prop_map(|(ip, port)| SocketAddr::V6(SocketAddrV6::new(ip.into(), port, 0, 0)))
    }

    proptest! {
        #[test]
        fn v4_round_trip(peers in proptest::collection::vec(v4(), 0..50)) {
            let bytes = encode(&peers, Family::V4);
            prop_assert_eq!(decode(&bytes, Family::V4).unwrap(), peers);
        }

        #[test]
        fn v6_round_trip(peers in proptest::collection::vec(v6(), 0..50)) {
            let bytes = encode(&peers, Family::V6);
            prop_assert_eq!(decode(&bytes, Family::V6).unwrap(), peers);
        }

        #[test]
        fn garbage_decodes_or_errors_by_length(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            for family in [Family::V4, Family::V6] {
                let r = decode(&bytes, family);
                prop_assert_eq!(r.is_ok(), bytes.len() % family.entry_len() == 0);
            }
        }
    }
}
