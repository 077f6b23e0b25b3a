//! Payloads of `extended` messages: the BEP 10 extended handshake, BEP 9 `ut_metadata`
//! and BEP 11 `ut_pex`.
//!
//! Each type decodes from the payload of a [`Message::Extended`] (the bytes after the
//! extended id) and encodes back to one. Decoding follows what libtorrent and Transmission
//! accept: the payload must be a bencoded dictionary and a message's required keys must be
//! there with sensible values, but optional keys with a wrong type or out-of-range value
//! are treated as absent, unknown keys are ignored, and keys need not be sorted. Encoding
//! writes canonical bencode (sorted keys).
//!
//! Which extended id a message travels under is negotiated: the id for sending is the one
//! the *peer* put in its handshake's `m` dictionary ([`ExtendedHandshake::id`]); id 0 is
//! the handshake itself. Keeping track of that is the engine's job.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};

use bt_bencode::{DecodeOptions, Dict, Value};
use bytes::Bytes;

use crate::message::Message;

/// The extended message id of the extended handshake.
pub const EXTENDED_HANDSHAKE_ID: u8 = 0;

/// The `m` key naming BEP 9 metadata exchange.
pub const UT_METADATA: &str = "ut_metadata";

/// The `m` key naming BEP 11 peer exchange.
pub const UT_PEX: &str = "ut_pex";

/// The size of a metadata piece (BEP 9): every piece is 16 KiB except the last.
pub const METADATA_PIECE_LEN: usize = 16 * 1024;

/// The most peers [`PexMessage::decode`] takes from each of `added`, `added6`, `dropped`
/// and `dropped6`; the rest are ignored. BEP 11 senders put at most 50 in each.
pub const PEX_MAX_PEERS: usize = 200;

/// Errors decoding an extension message.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ExtensionError {
    /// The payload is not valid bencode.
    #[error("{message} message is not valid bencode: {source}")]
    Bencode {
        /// Which message (`"extended handshake"`, `"ut_metadata"`, `"ut_pex"`).
        message: &'static str,
        /// The decoder's error, with offset and path.
        #[source]
        source: bt_bencode::Error,
    },
    /// The payload is bencode, but not a dictionary.
    #[error("{message} message is a {found}, expected a dictionary")]
    NotADict {
        /// Which message.
        message: &'static str,
        /// The type found (`"list"`, `"integer"`, ...).
        found: &'static str,
    },
    /// A required key is missing, or has a value of the wrong type or out of range.
    #[error("{message} message: key {key:?} is {problem}")]
    BadKey {
        /// Which message.
        message: &'static str,
        /// The key.
        key: &'static str,
        /// What is wrong with it (`"missing"`, `"not an integer in 0..=4294967295"`, ...).
        problem: &'static str,
    },
}

/// Decoding limits for extension payloads: a frame is already bounded by the message
/// codec; nesting is kept shallow.
fn decode_options() -> DecodeOptions {
    DecodeOptions {
        strict: false,
        max_depth: 32,
        ..DecodeOptions::default()
    }
}

/// Decodes the dictionary at the start of `payload`; returns it and where it ended.
fn decode_dict<'a>(
    message: &'static str,
    payload: &'a [u8],
) -> Result<(Dict<'a>, usize), ExtensionError> {
    let (value, end) = decode_options()
        .decode_prefix(payload)
        .map_err(|source| ExtensionError::Bencode { message, source })?;
    match value {
        Value::Dict(d) => Ok((d, end)),
        other => Err(ExtensionError::NotADict {
            message,
            found: other.type_name(),
        }),
    }
}

/// An optional integer key that fits `T`; anything else counts as absent.
fn opt_int<T: TryFrom<i64>>(d: &Dict<'_>, key: &str) -> Option<T> {
    d.get(key.as_bytes())
        .and_then(Value::as_int)
        .and_then(|i| T::try_from(i).ok())
}

/// A required integer key that fits `T`.
fn req_int<T: TryFrom<i64>>(
    d: &Dict<'_>,
    message: &'static str,
    key: &'static str,
) -> Result<T, ExtensionError> {
    match d.get(key.as_bytes()) {
        None => Err(ExtensionError::BadKey {
            message,
            key,
            problem: "missing",
        }),
        Some(v) => v
            .as_int()
            .and_then(|i| T::try_from(i).ok())
            .ok_or(ExtensionError::BadKey {
                message,
                key,
                problem: "not an integer in range",
            }),
    }
}

fn int(i: impl Into<i64>) -> Value<'static> {
    Value::Int(i.into())
}

fn insert(d: &mut Dict<'static>, key: &'static str, value: Value<'static>) {
    d.insert(key.as_bytes(), value);
}

fn compact_ip(ip: IpAddr) -> Vec<u8> {
    match ip {
        IpAddr::V4(v4) => v4.octets().to_vec(),
        IpAddr::V6(v6) => v6.octets().to_vec(),
    }
}

fn parse_ip(bytes: &[u8]) -> Option<IpAddr> {
    match bytes.len() {
        4 => Some(IpAddr::V4(Ipv4Addr::from(<[u8; 4]>::try_from(bytes).ok()?))),
        16 => Some(IpAddr::V6(Ipv6Addr::from(
            <[u8; 16]>::try_from(bytes).ok()?,
        ))),
        _ => None,
    }
}

// ---------------------------------------------------------------------------------------
// BEP 10 extended handshake
// ---------------------------------------------------------------------------------------

/// The BEP 10 extended handshake (extended id 0).
///
/// | field | key | notes |
/// |---|---|---|
/// | `extensions` | `m` | extension name to the id the sender wants to *receive* it under; 0 disables |
/// | `client` | `v` | client name and version, UTF-8 (invalid bytes replaced) |
/// | `port` | `p` | the sender's listen port |
/// | `reqq` | `reqq` | how many outstanding requests the sender accepts |
/// | `your_ip` | `yourip` | our address as the sender sees it (4 or 16 bytes) |
/// | `metadata_size` | `metadata_size` | BEP 9: the size of the info dictionary |
///
/// Every field is optional: a malformed one decodes as absent (as does `m` entries whose
/// id is not in 0..=255 or whose name is not UTF-8), and unknown keys are ignored.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ExtendedHandshake {
    /// `m`: extension names and the ids the sender assigned them.
    pub extensions: BTreeMap<String, u8>,
    /// `v`: client name and version.
    pub client: Option<String>,
    /// `p`: the sender's TCP listen port.
    pub port: Option<u16>,
    /// `reqq`: the sender's request queue length.
    pub reqq: Option<u32>,
    /// `yourip`: the receiver's address as seen by the sender.
    pub your_ip: Option<IpAddr>,
    /// `metadata_size` (BEP 9): the info dictionary's size in bytes.
    pub metadata_size: Option<u32>,
}

impl ExtendedHandshake {
    const NAME: &'static str = "extended handshake";

    /// The id the sender assigned to extension `name`, if it supports it (id 0 means
    /// "disabled" and gives `None`).
    pub fn id(&self, name: &str) -> Option<u8> {
        self.extensions.get(name).copied().filter(|&id| id != 0)
    }

    /// Decodes the payload of an extended message with id 0.
    pub fn decode(payload: &[u8]) -> Result<Self, ExtensionError> {
        let (d, _) = decode_dict(Self::NAME, payload)?;
        let mut extensions = BTreeMap::new();
        if let Some(m) = d.get(b"m").and_then(Value::as_dict) {
            for (name, id) in m.iter() {
                let (Ok(name), Some(id)) = (
                    std::str::from_utf8(name),
                    id.as_int().and_then(|i| u8::try_from(i).ok()),
                ) else {
                    continue;
                };
                extensions.insert(name.to_owned(), id);
            }
        }
        Ok(ExtendedHandshake {
            extensions,
            client: d
                .get(b"v")
                .and_then(Value::as_bytes)
                .map(|v| String::from_utf8_lossy(v).into_owned()),
            port: opt_int(&d, "p"),
            reqq: opt_int(&d, "reqq"),
            your_ip: d
                .get(b"yourip")
                .and_then(Value::as_bytes)
                .and_then(parse_ip),
            metadata_size: opt_int(&d, "metadata_size"),
        })
    }

    /// Encodes to a bencoded dictionary (the payload; see [`ExtendedHandshake::to_message`]).
    pub fn encode(&self) -> Bytes {
        let mut d = Dict::new();
        let mut m = Dict::new();
        for (name, &id) in &self.extensions {
            m.insert(name.as_bytes().to_vec(), int(id));
        }
        insert(&mut d, "m", Value::Dict(m));
        if let Some(v) = &self.client {
            insert(&mut d, "v", Value::owned_bytes(v.as_bytes()));
        }
        if let Some(p) = self.port {
            insert(&mut d, "p", int(p));
        }
        if let Some(r) = self.reqq {
            insert(&mut d, "reqq", int(r));
        }
        if let Some(ip) = self.your_ip {
            insert(&mut d, "yourip", Value::owned_bytes(compact_ip(ip)));
        }
        if let Some(s) = self.metadata_size {
            insert(&mut d, "metadata_size", int(s));
        }
        Bytes::from(Value::Dict(d).encode())
    }

    /// The handshake as a wire message (extended id 0).
    pub fn to_message(&self) -> Message {
        Message::Extended {
            id: EXTENDED_HANDSHAKE_ID,
            payload: self.encode(),
        }
    }
}

// ---------------------------------------------------------------------------------------
// BEP 9 ut_metadata
// ---------------------------------------------------------------------------------------

/// A BEP 9 `ut_metadata` message.
///
/// `data` messages carry the raw metadata piece right after the bencoded dictionary; it is
/// sliced out of the payload without copying. Whether `piece` and the data's length agree
/// with `total_size` (or with the `metadata_size` of the handshake) is for the engine to
/// check; decoding only rejects a data piece longer than [`METADATA_PIECE_LEN`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MetadataMessage {
    /// `msg_type` 0: please send metadata piece `piece`.
    Request {
        /// Piece index.
        piece: u32,
    },
    /// `msg_type` 1: metadata piece `piece`.
    Data {
        /// Piece index.
        piece: u32,
        /// The size of the whole info dictionary.
        total_size: u32,
        /// The piece's bytes (16 KiB, or less for the last piece).
        data: Bytes,
    },
    /// `msg_type` 2: the sender will not send piece `piece`.
    Reject {
        /// Piece index.
        piece: u32,
    },
    /// Another `msg_type`: BEP 9 says to ignore it.
    Unknown {
        /// The message type.
        msg_type: i64,
    },
}

impl MetadataMessage {
    const NAME: &'static str = "ut_metadata";

    /// Decodes the payload of a `ut_metadata` extended message.
    ///
    /// Takes [`Bytes`] so a data piece can share it.
    pub fn decode(payload: &Bytes) -> Result<Self, ExtensionError> {
        let (d, end) = decode_dict(Self::NAME, payload)?;
        let msg_type: i64 = req_int(&d, Self::NAME, "msg_type")?;
        if !(0..=2).contains(&msg_type) {
            return Ok(MetadataMessage::Unknown { msg_type });
        }
        let piece = req_int(&d, Self::NAME, "piece")?;
        Ok(match msg_type {
            0 => MetadataMessage::Request { piece },
            2 => MetadataMessage::Reject { piece },
            _ => {
                let total_size = req_int(&d, Self::NAME, "total_size")?;
                let data = payload.slice(end..);
                if data.len() > METADATA_PIECE_LEN {
                    return Err(ExtensionError::BadKey {
                        message: Self::NAME,
                        key: "piece",
                        problem: "followed by more than 16 KiB of data",
                    });
                }
                MetadataMessage::Data {
                    piece,
                    total_size,
                    data,
                }
            }
        })
    }

    /// Encodes to a payload: the bencoded dictionary, then a data piece's bytes.
    pub fn encode(&self) -> Bytes {
        let mut d = Dict::new();
        let (msg_type, piece) = match self {
            MetadataMessage::Request { piece } => (0, Some(*piece)),
            MetadataMessage::Data { piece, .. } => (1, Some(*piece)),
            MetadataMessage::Reject { piece } => (2, Some(*piece)),
            MetadataMessage::Unknown { msg_type } => (*msg_type, None),
        };
        insert(&mut d, "msg_type", int(msg_type));
        if let Some(piece) = piece {
            insert(&mut d, "piece", int(piece));
        }
        if let MetadataMessage::Data { total_size, .. } = self {
            insert(&mut d, "total_size", int(*total_size));
        }
        let mut out = Value::Dict(d).encode();
        if let MetadataMessage::Data { data, .. } = self {
            out.extend_from_slice(data);
        }
        Bytes::from(out)
    }

    /// The message as a wire message under the extended id the peer assigned to
    /// [`UT_METADATA`].
    pub fn to_message(&self, id: u8) -> Message {
        Message::Extended {
            id,
            payload: self.encode(),
        }
    }
}

// ---------------------------------------------------------------------------------------
// BEP 11 ut_pex
// ---------------------------------------------------------------------------------------

/// The per-peer flags of BEP 11's `added.f` / `added6.f`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct PexFlags(pub u8);

impl PexFlags {
    /// `0x01`: prefers encryption.
    pub const PREFERS_ENCRYPTION: u8 = 0x01;
    /// `0x02`: is a seed / upload only.
    pub const SEED: u8 = 0x02;
    /// `0x04`: supports uTP.
    pub const UTP: u8 = 0x04;
    /// `0x08`: supports `ut_holepunch`.
    pub const HOLEPUNCH: u8 = 0x08;
    /// `0x10`: reachable (the sender connected to it, not the other way round).
    pub const REACHABLE: u8 = 0x10;

    /// Whether all bits of `mask` are set.
    pub fn contains(self, mask: u8) -> bool {
        self.0 & mask == mask
    }
}

/// A peer in a `ut_pex` `added` list.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PexPeer {
    /// Address and port.
    pub addr: SocketAddr,
    /// Flags (0 when the sender sent none, or not one per peer).
    pub flags: PexFlags,
}

/// A BEP 11 `ut_pex` message: peers added and dropped since the last one.
///
/// IPv4 and IPv6 peers share each list; on the wire they go to `added`/`dropped` and
/// `added6`/`dropped6`. Decoding yields the IPv4 peers first. Malformed lists are read
/// leniently: a trailing partial entry is ignored, flags that are not one byte per peer are
/// ignored (all 0), and at most [`PEX_MAX_PEERS`] peers are taken from each list.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PexMessage {
    /// `added` and `added6`, with `added.f` and `added6.f`.
    pub added: Vec<PexPeer>,
    /// `dropped` and `dropped6`.
    pub dropped: Vec<SocketAddr>,
}

fn parse_compact(bytes: &[u8], ipv6: bool) -> impl Iterator<Item = SocketAddr> + '_ {
    let size = if ipv6 { 18 } else { 6 };
    bytes.chunks_exact(size).take(PEX_MAX_PEERS).map(move |c| {
        let port = u16::from_be_bytes([c[size - 2], c[size - 1]]);
        if ipv6 {
            let ip: [u8; 16] = c[..16].try_into().expect("16 bytes");
            SocketAddr::V6(SocketAddrV6::new(Ipv6Addr::from(ip), port, 0, 0))
        } else {
            let ip: [u8; 4] = c[..4].try_into().expect("4 bytes");
            SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::from(ip), port))
        }
    })
}

fn push_compact(out: &mut Vec<u8>, addr: SocketAddr) {
    out.extend_from_slice(&compact_ip(addr.ip()));
    out.extend_from_slice(&addr.port().to_be_bytes());
}

impl PexMessage {
    const NAME: &'static str = "ut_pex";

    /// Decodes the payload of a `ut_pex` extended message.
    pub fn decode(payload: &[u8]) -> Result<Self, ExtensionError> {
        let (d, _) = decode_dict(Self::NAME, payload)?;
        let list = |key: &str| {
            d.get(key.as_bytes())
                .and_then(Value::as_bytes)
                .unwrap_or(&[])
        };
        let mut msg = PexMessage::default();
        for (key, flags_key, ipv6) in [("added", "added.f", false), ("added6", "added6.f", true)] {
            let peers: Vec<SocketAddr> = parse_compact(list(key), ipv6).collect();
            let flags = list(flags_key);
            let entries = list(key).len() / if ipv6 { 18 } else { 6 };
            let flags_ok = flags.len() == entries;
            msg.added
                .extend(peers.into_iter().enumerate().map(|(i, addr)| PexPeer {
                    addr,
                    flags: PexFlags(if flags_ok { flags[i] } else { 0 }),
                }));
        }
        for (key, ipv6) in [("dropped", false), ("dropped6", true)] {
            msg.dropped.extend(parse_compact(list(key), ipv6));
        }
        Ok(msg)
    }

    /// Encodes to a payload. Every key is written, empty lists included, as libtorrent does.
    pub fn encode(&self) -> Bytes {
        let (mut added, mut added_f, mut added6, mut added6_f) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for p in &self.added {
            if p.addr.is_ipv4() {
                push_compact(&mut added, p.addr);
                added_f.push(p.flags.0);
            } else {
                push_compact(&mut added6, p.addr);
                added6_f.push(p.flags.0);
            }
        }
        let (mut dropped, mut dropped6) = (Vec::new(), Vec::new());
        for &addr in &self.dropped {
            push_compact(
                if addr.is_ipv4() {
                    &mut dropped
                } else {
                    &mut dropped6
                },
                addr,
            );
        }
        let mut d = Dict::new();
        for (key, bytes) in [
            ("added", added),
            ("added.f", added_f),
            ("added6", added6),
            ("added6.f", added6_f),
            ("dropped", dropped),
            ("dropped6", dropped6),
        ] {
            insert(&mut d, key, Value::owned_bytes(bytes));
        }
        Bytes::from(Value::Dict(d).encode())
    }

    /// The message as a wire message under the extended id the peer assigned to [`UT_PEX`].
    pub fn to_message(&self, id: u8) -> Message {
        Message::Extended {
            id,
            payload: self.encode(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handshake_golden() {
        let mut hs = ExtendedHandshake::default();
        hs.extensions.insert(UT_METADATA.into(), 3);
        hs.extensions.insert(UT_PEX.into(), 1);
        hs.client = Some("bt 0.1".into());
        hs.port = Some(6881);
        hs.reqq = Some(250);
        hs.your_ip = Some(IpAddr::V4(Ipv4Addr::new(1, 2, 3, 4)));
        hs.metadata_size = Some(31235);
        let bytes = hs.encode();
        assert_eq!(
            &bytes[..],
            &b"d1:md11:ut_metadatai3e6:ut_pexi1ee13:metadata_sizei31235e1:pi6881e4:reqqi250e1:v6:bt 0.16:yourip4:\x01\x02\x03\x04e"[..]
        );
        assert_eq!(ExtendedHandshake::decode(&bytes).unwrap(), hs);
        assert_eq!(hs.id(UT_PEX), Some(1));
        assert_eq!(hs.id("lt_donthave"), None);
    }

    #[test]
    fn handshake_from_libtorrent_style_peer() {
        // Unsorted keys, unknown keys, an `m` entry disabled with 0, one with a bad id,
        // a bad port, an IPv6 yourip.
        let mut payload = b"d1:v14:Transmission 41:pi70000e1:md6:ut_pexi0e11:ut_metadatai2e5:weirdi300e3:badli1eee".to_vec();
        payload.extend_from_slice(b"6:yourip16:");
        payload.extend_from_slice(&[0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
        payload.extend_from_slice(b"12:complete_agoi-1e4:ipv64:\xff\xff\xff\xffe");
        let hs = ExtendedHandshake::decode(&payload).unwrap();
        assert_eq!(hs.client.as_deref(), Some("Transmission 4"));
        assert_eq!(hs.port, None);
        assert_eq!(hs.id(UT_PEX), None);
        assert_eq!(hs.extensions.get(UT_PEX), Some(&0));
        assert_eq!(hs.id(UT_METADATA), Some(2));
        assert!(!hs.extensions.contains_key("weird") && !hs.extensions.contains_key("bad"));
        assert_eq!(hs.your_ip, Some("2001:db8::1".parse().unwrap()));
        assert_eq!(hs.metadata_size, None);
    }

    #[test]
    fn handshake_errors() {
        assert!(matches!(
            ExtendedHandshake::decode(b"li1ee"),
            Err(ExtensionError::NotADict { found: "list", .. })
        ));
        assert!(matches!(
            ExtendedHandshake::decode(b"d1:m"),
            Err(ExtensionError::Bencode { .. })
        ));
        assert!(matches!(
            ExtendedHandshake::decode(b""),
            Err(ExtensionError::Bencode { .. })
        ));
        assert_eq!(
            ExtendedHandshake::decode(b"de").unwrap(),
            ExtendedHandshake::default()
        );
    }

    #[test]
    fn metadata_golden() {
        let req = MetadataMessage::Request { piece: 0 };
        assert_eq!(&req.encode()[..], b"d8:msg_typei0e5:piecei0ee");
        let rej = MetadataMessage::Reject { piece: 5 };
        assert_eq!(&rej.encode()[..], b"d8:msg_typei2e5:piecei5ee");
        let data = MetadataMessage::Data {
            piece: 1,
            total_size: 16390,
            data: Bytes::from_static(b"d4:name"),
        };
        let bytes = data.encode();
        assert_eq!(
            &bytes[..],
            b"d8:msg_typei1e5:piecei1e10:total_sizei16390eed4:name"
        );
        for m in [req, rej, data] {
            assert_eq!(MetadataMessage::decode(&m.encode()).unwrap(), m);
        }
    }

    #[test]
    fn metadata_data_is_not_copied() {
        let payload = MetadataMessage::Data {
            piece: 0,
            total_size: 3,
            data: Bytes::from_static(b"abc"),
        }
        .encode();
        let MetadataMessage::Data { data, .. } = MetadataMessage::decode(&payload).unwrap() else {
            panic!()
        };
        assert_eq!(data.as_ptr(), payload[payload.len() - 3..].as_ptr());
    }

    #[test]
    fn metadata_errors_and_unknown() {
        let d = |s: &[u8]| MetadataMessage::decode(&Bytes::copy_from_slice(s));
        assert!(matches!(
            d(b"d5:piecei0ee"),
            Err(ExtensionError::BadKey {
                key: "msg_type",
                problem: "missing",
                ..
            })
        ));
        assert!(matches!(
            d(b"d8:msg_typei0ee"),
            Err(ExtensionError::BadKey { key: "piece", .. })
        ));
        assert!(matches!(
            d(b"d8:msg_typei0e5:piecei-1ee"),
            Err(ExtensionError::BadKey { key: "piece", .. })
        ));
        assert!(matches!(
            d(b"d8:msg_typei1e5:piecei0ee"),
            Err(ExtensionError::BadKey {
                key: "total_size",
                ..
            })
        ));
        assert!(matches!(
            d(b"d8:msg_type1:05:piecei0ee"),
            Err(ExtensionError::BadKey {
                key: "msg_type",
                ..
            })
        ));
        assert_eq!(
            d(b"d8:msg_typei7ee").unwrap(),
            MetadataMessage::Unknown { msg_type: 7 }
        );
        let mut big = b"d8:msg_typei1e5:piecei0e10:total_sizei99999ee".to_vec();
        big.resize(big.len() + METADATA_PIECE_LEN + 1, b'x');
        assert!(matches!(
            d(&big),
            Err(ExtensionError::BadKey { key: "piece", .. })
        ));
        // Unsorted keys are accepted, as real clients send them.
        assert_eq!(
            d(b"d5:piecei4e8:msg_typei2ee").unwrap(),
            MetadataMessage::Reject { piece: 4 }
        );
    }

    #[test]
    fn pex_golden() {
        let v4: SocketAddr = "10.0.0.1:6881".parse().unwrap();
        let v6: SocketAddr = "[2001:db8::2]:51413".parse().unwrap();
        let dropped: SocketAddr = "192.168.1.9:80".parse().unwrap();
        let msg = PexMessage {
            added: vec![
                PexPeer {
                    addr: v4,
                    flags: PexFlags(PexFlags::SEED | PexFlags::UTP),
                },
                PexPeer {
                    addr: v6,
                    flags: PexFlags(PexFlags::REACHABLE),
                },
            ],
            dropped: vec![dropped],
        };
        let bytes = msg.encode();
        let mut expected = b"d5:added6:\x0a\x00\x00\x01\x1a\xe17:added.f1:\x066:added618:".to_vec();
        expected.extend_from_slice(&[
            0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 0xc8, 0xd5,
        ]);
        expected
            .extend_from_slice(b"8:added6.f1:\x107:dropped6:\xc0\xa8\x01\x09\x00\x508:dropped60:e");
        assert_eq!(&bytes[..], &expected[..]);
        assert_eq!(PexMessage::decode(&bytes).unwrap(), msg);
    }

    #[test]
    fn pex_lenient() {
        // Trailing partial entry ignored; flags of the wrong length ignored; missing keys empty.
        let msg = PexMessage::decode(
            b"d5:added8:\x01\x02\x03\x04\x00\x50\xff\xff7:added.f3:\x01\x02\x03e",
        )
        .unwrap();
        assert_eq!(
            msg.added,
            vec![PexPeer {
                addr: "1.2.3.4:80".parse().unwrap(),
                flags: PexFlags(0)
            }]
        );
        assert!(msg.dropped.is_empty());
        assert_eq!(PexMessage::decode(b"de").unwrap(), PexMessage::default());
        // Wrong types are treated as absent.
        assert_eq!(
            PexMessage::decode(b"d5:addedi3e7:droppedlee").unwrap(),
            PexMessage::default()
        );
        // Bounded: at most PEX_MAX_PEERS per list.
        let mut payload = format!("d5:added{}:", 6 * 1000).into_bytes();
        payload.resize(payload.len() + 6000, 7);
        payload.push(b'e');
        assert_eq!(
            PexMessage::decode(&payload).unwrap().added.len(),
            PEX_MAX_PEERS
        );
    }
}
