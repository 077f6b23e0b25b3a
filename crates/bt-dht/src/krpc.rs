//! KRPC messages (BEP 5): queries, responses and errors, with pure `encode` / `decode`.
//!
//! Decoding is bounded: the packet is capped at [`MAX_PACKET_IN_LEN`] before the
//! bencode decoder runs (with the same cap on its input and strings, and a small
//! depth limit), unknown keys are ignored, and every required key is checked for
//! type and length. A query with a method we do not know is
//! [`Error::UnknownMethod`]; anything else wrong is [`Error::Malformed`], which
//! carries the transaction id when one could be read.

use std::fmt;
use std::net::SocketAddr;

use bt_bencode::{DecodeOptions, Dict, Value};
use bt_meta::InfoHash;

use crate::compact::{decode_nodes, decode_peer, encode_nodes, encode_peer, NodeInfo};
use crate::error::{Error, Result};
use crate::node_id::NodeId;

/// Longest datagram decoded; longer ones are dropped unread.
pub const MAX_PACKET_IN_LEN: usize = 2048;
/// Longest datagram the state machine ever sends.
pub const MAX_PACKET_OUT_LEN: usize = 1500;
/// Longest transaction id accepted (ours are 4 bytes; BEP 5 suggests 2).
pub const MAX_TRANSACTION_ID_LEN: usize = 16;

/// A KRPC transaction id: a short byte string echoed in the reply.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TransactionId {
    len: u8,
    bytes: [u8; MAX_TRANSACTION_ID_LEN],
}

impl TransactionId {
    /// The id in `bytes`, if it is at most [`MAX_TRANSACTION_ID_LEN`] bytes long.
    pub fn new(bytes: &[u8]) -> Option<Self> {
        if bytes.len() > MAX_TRANSACTION_ID_LEN {
            return None;
        }
        let mut buf = [0u8; MAX_TRANSACTION_ID_LEN];
        buf.get_mut(..bytes.len())?.copy_from_slice(bytes);
        Some(Self {
            len: bytes.len() as u8,
            bytes: buf,
        })
    }

    /// The id's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        // ok: len is only ever set from a slice no longer than the buffer
        &self.bytes[..usize::from(self.len)]
    }
}

impl fmt::Display for TransactionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("0x")?;
        for b in self.as_bytes() {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for TransactionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TransactionId({self})")
    }
}

/// One KRPC message: the envelope keys and a query, response or error body.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct KrpcMessage {
    /// `t`: chosen by the querier, echoed by the responder.
    pub transaction_id: TransactionId,
    /// `v`: the sender's client version, if it said.
    pub version: Option<Vec<u8>>,
    /// `ro`: the sender is read-only (BEP 43) and should not be put in routing tables.
    pub read_only: bool,
    /// The body (`y` is `q`, `r` or `e`).
    pub body: Body,
}

/// The three kinds of KRPC message.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum Body {
    /// `y: q`.
    Query(Query),
    /// `y: r`.
    Response(Response),
    /// `y: e`.
    Error(ErrorMessage),
}

/// The four BEP 5 queries.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum Query {
    /// `ping`.
    Ping {
        /// The querier's id.
        id: NodeId,
    },
    /// `find_node`: the closest nodes to `target`.
    FindNode {
        /// The querier's id.
        id: NodeId,
        /// The id sought.
        target: NodeId,
    },
    /// `get_peers`: peers for `info_hash`, or the closest nodes to it.
    GetPeers {
        /// The querier's id.
        id: NodeId,
        /// The torrent.
        info_hash: InfoHash,
    },
    /// `announce_peer`: the querier downloads `info_hash` on `port` (or its UDP port).
    AnnouncePeer {
        /// The querier's id.
        id: NodeId,
        /// The torrent.
        info_hash: InfoHash,
        /// The peer port (ignored when `implied_port` is set).
        port: u16,
        /// Use the UDP source port as the peer port.
        implied_port: bool,
        /// The token from an earlier `get_peers` response.
        token: Vec<u8>,
    },
}

impl Query {
    /// The querier's id.
    pub fn id(&self) -> NodeId {
        match self {
            Query::Ping { id }
            | Query::FindNode { id, .. }
            | Query::GetPeers { id, .. }
            | Query::AnnouncePeer { id, .. } => *id,
        }
    }

    /// The method name on the wire.
    pub fn method(&self) -> &'static str {
        match self {
            Query::Ping { .. } => "ping",
            Query::FindNode { .. } => "find_node",
            Query::GetPeers { .. } => "get_peers",
            Query::AnnouncePeer { .. } => "announce_peer",
        }
    }
}

/// A response. KRPC responses do not name their query, so every field a BEP 5
/// response may carry is here; absent ones are empty.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Response {
    /// The responder's id.
    pub id: NodeId,
    /// Closer nodes: IPv4 ones travel in `nodes`, IPv6 ones in `nodes6`
    /// (decoding gives the IPv4 ones first).
    pub nodes: Vec<NodeInfo>,
    /// Peers (`values`), each a 6- or 18-byte compact address.
    pub values: Vec<SocketAddr>,
    /// The write token (`get_peers` responses).
    pub token: Option<Vec<u8>>,
}

impl Response {
    /// A response carrying only the responder's id (ping, announce_peer).
    pub fn id_only(id: NodeId) -> Self {
        Self {
            id,
            nodes: Vec::new(),
            values: Vec::new(),
            token: None,
        }
    }
}

/// The standard KRPC error codes.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum ErrorCode {
    /// 201.
    Generic = 201,
    /// 202.
    Server = 202,
    /// 203: malformed packet, invalid arguments or bad token.
    Protocol = 203,
    /// 204.
    MethodUnknown = 204,
}

/// An error reply: `e: [code, message]`.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct ErrorMessage {
    /// The error code (201 to 204 are standard).
    pub code: i64,
    /// The message, lossily decoded as UTF-8.
    pub message: String,
}

impl ErrorMessage {
    /// An error with a standard code.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code: code as i64,
            message: message.into(),
        }
    }
}

impl KrpcMessage {
    /// A query with no version or read-only flag.
    pub fn query(transaction_id: TransactionId, query: Query) -> Self {
        Self::plain(transaction_id, Body::Query(query))
    }

    /// A response with no version or read-only flag.
    pub fn response(transaction_id: TransactionId, response: Response) -> Self {
        Self::plain(transaction_id, Body::Response(response))
    }

    /// An error reply with no version or read-only flag.
    pub fn error(transaction_id: TransactionId, error: ErrorMessage) -> Self {
        Self::plain(transaction_id, Body::Error(error))
    }

    fn plain(transaction_id: TransactionId, body: Body) -> Self {
        Self {
            transaction_id,
            version: None,
            read_only: false,
            body,
        }
    }

    /// The canonical bencoding (keys sorted).
    pub fn encode(&self) -> Vec<u8> {
        let mut d = Dict::new();
        d.insert(&b"t"[..], Value::bytes(self.transaction_id.as_bytes()));
        if let Some(v) = &self.version {
            d.insert(&b"v"[..], Value::bytes(v));
        }
        if self.read_only {
            d.insert(&b"ro"[..], Value::Int(1));
        }
        match &self.body {
            Body::Query(q) => {
                d.insert(&b"y"[..], Value::bytes(b"q"));
                d.insert(&b"q"[..], Value::bytes(q.method().as_bytes()));
                d.insert(&b"a"[..], Value::Dict(query_args(q)));
            }
            Body::Response(r) => {
                d.insert(&b"y"[..], Value::bytes(b"r"));
                d.insert(&b"r"[..], Value::Dict(response_dict(r)));
            }
            Body::Error(e) => {
                d.insert(&b"y"[..], Value::bytes(b"e"));
                d.insert(
                    &b"e"[..],
                    Value::List(vec![Value::Int(e.code), Value::bytes(e.message.as_bytes())]),
                );
            }
        }
        Value::Dict(d).encode()
    }

    /// Decodes one datagram. See the module docs for what is checked.
    pub fn decode(packet: &[u8]) -> Result<Self> {
        if packet.len() > MAX_PACKET_IN_LEN {
            return Err(Error::PacketTooLarge {
                len: packet.len(),
                limit: MAX_PACKET_IN_LEN,
            });
        }
        let opts = DecodeOptions {
            strict: false,
            max_depth: 8,
            max_input_len: MAX_PACKET_IN_LEN,
            max_string_len: MAX_PACKET_IN_LEN,
            ..DecodeOptions::default()
        };
        let value = opts
            .decode(packet)
            .map_err(|source| Error::Bencode { source })?;
        let Some(dict) = value.as_dict() else {
            return Err(Error::Malformed {
                transaction_id: None,
                is_reply: false,
                reason: format!("top level is a {}, not a dictionary", value.type_name()),
            });
        };
        let y = dict.get(b"y").and_then(Value::as_bytes);
        let is_reply = matches!(y, Some(b"r") | Some(b"e"));
        let transaction_id = match dict.get(b"t") {
            Some(Value::Bytes(t)) => TransactionId::new(t).ok_or_else(|| Error::Malformed {
                transaction_id: None,
                is_reply,
                reason: format!("transaction id of {} bytes is too long", t.len()),
            })?,
            Some(other) => {
                return Err(Error::Malformed {
                    transaction_id: None,
                    is_reply,
                    reason: format!("key \"t\" is a {}, not a byte string", other.type_name()),
                })
            }
            None => {
                return Err(Error::Malformed {
                    transaction_id: None,
                    is_reply,
                    reason: "missing key \"t\"".to_string(),
                })
            }
        };
        let bad = |reason: String| Error::Malformed {
            transaction_id: Some(transaction_id),
            is_reply,
            reason,
        };
        let version = dict.get(b"v").and_then(Value::as_bytes).map(<[u8]>::to_vec);
        let read_only = dict.get(b"ro").and_then(Value::as_int) == Some(1);
        let body = match y {
            Some(b"q") => Body::Query(decode_query(dict).map_err(|e| match e {
                QueryFail::Bad(reason) => bad(reason),
                QueryFail::Unknown(method) => Error::UnknownMethod {
                    transaction_id,
                    method,
                },
            })?),
            Some(b"r") => Body::Response(decode_response(dict).map_err(bad)?),
            Some(b"e") => Body::Error(decode_error(dict).map_err(bad)?),
            Some(other) => {
                return Err(bad(format!(
                    "unknown message type {:?}",
                    String::from_utf8_lossy(other)
                )))
            }
            None => return Err(bad("missing or non-string key \"y\"".to_string())),
        };
        Ok(Self {
            transaction_id,
            version,
            read_only,
            body,
        })
    }
}

fn query_args(q: &Query) -> Dict<'_> {
    let mut a = Dict::new();
    a.insert(&b"id"[..], Value::bytes(q.id().0.as_slice()).into_owned());
    match q {
        Query::Ping { .. } => {}
        Query::FindNode { target, .. } => {
            a.insert(&b"target"[..], Value::bytes(&target.0));
        }
        Query::GetPeers { info_hash, .. } => {
            a.insert(&b"info_hash"[..], Value::bytes(&info_hash.0));
        }
        Query::AnnouncePeer {
            info_hash,
            port,
            implied_port,
            token,
            ..
        } => {
            a.insert(&b"info_hash"[..], Value::bytes(&info_hash.0));
            a.insert(&b"port"[..], Value::Int(i64::from(*port)));
            a.insert(&b"token"[..], Value::bytes(token));
            if *implied_port {
                a.insert(&b"implied_port"[..], Value::Int(1));
            }
        }
    }
    a
}

fn response_dict(r: &Response) -> Dict<'_> {
    let mut d = Dict::new();
    d.insert(&b"id"[..], Value::bytes(&r.id.0));
    let v4 = encode_nodes(&r.nodes, false);
    if !v4.is_empty() {
        d.insert(&b"nodes"[..], Value::owned_bytes(v4));
    }
    let v6 = encode_nodes(&r.nodes, true);
    if !v6.is_empty() {
        d.insert(&b"nodes6"[..], Value::owned_bytes(v6));
    }
    if let Some(token) = &r.token {
        d.insert(&b"token"[..], Value::bytes(token));
    }
    if !r.values.is_empty() {
        let values = r
            .values
            .iter()
            .map(|p| Value::owned_bytes(encode_peer(p)))
            .collect();
        d.insert(&b"values"[..], Value::List(values));
    }
    d
}

enum QueryFail {
    Bad(String),
    Unknown(String),
}

fn decode_query(dict: &Dict<'_>) -> Result<Query, QueryFail> {
    let method = match dict.get(b"q") {
        Some(Value::Bytes(m)) => m,
        Some(other) => {
            return Err(QueryFail::Bad(format!(
                "key \"q\" is a {}, not a byte string",
                other.type_name()
            )))
        }
        None => return Err(QueryFail::Bad("missing key \"q\"".to_string())),
    };
    let known = matches!(
        method.as_ref(),
        b"ping" | b"find_node" | b"get_peers" | b"announce_peer"
    );
    if !known {
        return Err(QueryFail::Unknown(
            String::from_utf8_lossy(method).into_owned(),
        ));
    }
    let args = match dict.get(b"a") {
        Some(Value::Dict(a)) => a,
        Some(other) => {
            return Err(QueryFail::Bad(format!(
                "key \"a\" is a {}, not a dictionary",
                other.type_name()
            )))
        }
        None => return Err(QueryFail::Bad("missing key \"a\"".to_string())),
    };
    let id = NodeId(id20(args, "a", "id").map_err(QueryFail::Bad)?);
    let q = match method.as_ref() {
        b"ping" => Query::Ping { id },
        b"find_node" => Query::FindNode {
            id,
            target: NodeId(id20(args, "a", "target").map_err(QueryFail::Bad)?),
        },
        b"get_peers" => Query::GetPeers {
            id,
            info_hash: InfoHash(id20(args, "a", "info_hash").map_err(QueryFail::Bad)?),
        },
        _ => {
            let info_hash = InfoHash(id20(args, "a", "info_hash").map_err(QueryFail::Bad)?);
            let port = match args.get(b"port") {
                Some(Value::Int(p)) => u16::try_from(*p).map_err(|_| {
                    QueryFail::Bad(format!("key \"a.port\" value {p} out of range"))
                })?,
                Some(other) => {
                    return Err(QueryFail::Bad(format!(
                        "key \"a.port\" is a {}, not an integer",
                        other.type_name()
                    )))
                }
                None => return Err(QueryFail::Bad("missing key \"a.port\"".to_string())),
            };
            let token = match args.get(b"token") {
                Some(Value::Bytes(t)) => t.to_vec(),
                Some(other) => {
                    return Err(QueryFail::Bad(format!(
                        "key \"a.token\" is a {}, not a byte string",
                        other.type_name()
                    )))
                }
                None => return Err(QueryFail::Bad("missing key \"a.token\"".to_string())),
            };
            let implied_port = matches!(args.get(b"implied_port"), Some(Value::Int(i)) if *i != 0);
            Query::AnnouncePeer {
                id,
                info_hash,
                port,
                implied_port,
                token,
            }
        }
    };
    Ok(q)
}

/// A 20-byte string under `key` in `dict` (named `parent.key` in errors).
fn id20(dict: &Dict<'_>, parent: &str, key: &str) -> Result<[u8; 20], String> {
    match dict.get(key.as_bytes()) {
        Some(Value::Bytes(b)) => b
            .as_ref()
            .try_into()
            .map_err(|_| format!("key \"{parent}.{key}\" is {} bytes, not 20", b.len())),
        Some(other) => Err(format!(
            "key \"{parent}.{key}\" is a {}, not a byte string",
            other.type_name()
        )),
        None => Err(format!("missing key \"{parent}.{key}\"")),
    }
}

fn decode_response(dict: &Dict<'_>) -> Result<Response, String> {
    let r = match dict.get(b"r") {
        Some(Value::Dict(r)) => r,
        Some(other) => {
            return Err(format!(
                "key \"r\" is a {}, not a dictionary",
                other.type_name()
            ))
        }
        None => return Err("missing key \"r\"".to_string()),
    };
    let id = NodeId(id20(r, "r", "id")?);
    let mut nodes = Vec::new();
    for (key, v6) in [("nodes", false), ("nodes6", true)] {
        match r.get(key.as_bytes()) {
            Some(Value::Bytes(b)) => {
                let decoded = decode_nodes(b, v6).ok_or_else(|| {
                    format!(
                        "key \"r.{key}\" length {} is not a multiple of {}",
                        b.len(),
                        if v6 { 38 } else { 26 }
                    )
                })?;
                nodes.extend(decoded);
            }
            Some(other) => {
                return Err(format!(
                    "key \"r.{key}\" is a {}, not a byte string",
                    other.type_name()
                ))
            }
            None => {}
        }
    }
    let mut values = Vec::new();
    match r.get(b"values") {
        Some(Value::List(items)) => {
            for (i, item) in items.iter().enumerate() {
                let peer = item.as_bytes().and_then(decode_peer).ok_or_else(|| {
                    format!("key \"r.values[{i}]\" is not a 6- or 18-byte compact peer")
                })?;
                values.push(peer);
            }
        }
        Some(other) => {
            return Err(format!(
                "key \"r.values\" is a {}, not a list",
                other.type_name()
            ))
        }
        None => {}
    }
    let token = match r.get(b"token") {
        Some(Value::Bytes(t)) => Some(t.to_vec()),
        Some(other) => {
            return Err(format!(
                "key \"r.token\" is a {}, not a byte string",
                other.type_name()
            ))
        }
        None => None,
    };
    Ok(Response {
        id,
        nodes,
        values,
        token,
    })
}

fn decode_error(dict: &Dict<'_>) -> Result<ErrorMessage, String> {
    let items = match dict.get(b"e") {
        Some(Value::List(items)) => items,
        Some(other) => return Err(format!("key \"e\" is a {}, not a list", other.type_name())),
        None => return Err("missing key \"e\"".to_string()),
    };
    let code = items
        .first()
        .and_then(Value::as_int)
        .ok_or_else(|| "key \"e[0]\" is not an integer error code".to_string())?;
    let message = items
        .get(1)
        .and_then(Value::as_bytes)
        .map(|m| String::from_utf8_lossy(m).into_owned())
        .unwrap_or_default();
    Ok(ErrorMessage { code, message })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn tid(b: &[u8]) -> TransactionId {
        TransactionId::new(b).unwrap()
    }

    fn id(s: &[u8; 20]) -> NodeId {
        NodeId(*s)
    }

    /// Decodes `bytes` to `msg` and encodes `msg` back to exactly `bytes`.
    fn check(bytes: &[u8], msg: KrpcMessage) {
        let decoded = KrpcMessage::decode(bytes)
            .unwrap_or_else(|e| panic!("{}: {e}", String::from_utf8_lossy(bytes)));
        assert_eq!(decoded, msg);
        assert_eq!(
            String::from_utf8_lossy(&msg.encode()),
            String::from_utf8_lossy(bytes)
        );
    }

    // The examples of BEP 5, byte for byte (the nodes strings, which BEP 5
    // abbreviates, are filled in with one real 26-byte entry).
    #[test]
    fn bep5_ping() {
        check(
            b"d1:ad2:id20:abcdefghij0123456789e1:q4:ping1:t2:aa1:y1:qe",
            KrpcMessage::query(
                tid(b"aa"),
                Query::Ping {
                    id: id(b"abcdefghij0123456789"),
                },
            ),
        );
        check(
            b"d1:rd2:id20:mnopqrstuvwxyz123456e1:t2:aa1:y1:re",
            KrpcMessage::response(tid(b"aa"), Response::id_only(id(b"mnopqrstuvwxyz123456"))),
        );
    }

    #[test]
    fn bep5_find_node() {
        check(
            b"d1:ad2:id20:abcdefghij01234567896:target20:mnopqrstuvwxyz123456e1:q9:find_node1:t2:aa1:y1:qe",
            KrpcMessage::query(
                tid(b"aa"),
                Query::FindNode {
                    id: id(b"abcdefghij0123456789"),
                    target: id(b"mnopqrstuvwxyz123456"),
                },
            ),
        );
        check(
            b"d1:rd2:id20:0123456789abcdefghij5:nodes26:zyxwvutsrqponmlkjihg\x7f\x00\x00\x01\x1a\xe1e1:t2:aa1:y1:re",
            KrpcMessage::response(
                tid(b"aa"),
                Response {
                    nodes: vec![NodeInfo::new(
                        id(b"zyxwvutsrqponmlkjihg"),
                        "127.0.0.1:6881".parse().unwrap(),
                    )],
                    ..Response::id_only(id(b"0123456789abcdefghij"))
                },
            ),
        );
    }

    #[test]
    fn bep5_get_peers() {
        check(
            b"d1:ad2:id20:abcdefghij01234567899:info_hash20:mnopqrstuvwxyz123456e1:q9:get_peers1:t2:aa1:y1:qe",
            KrpcMessage::query(
                tid(b"aa"),
                Query::GetPeers {
                    id: id(b"abcdefghij0123456789"),
                    info_hash: InfoHash(*b"mnopqrstuvwxyz123456"),
                },
            ),
        );
        // With values: "axje.u" is 97.120.106.101:11893, "idhtnm" 105.100.104.116:28269.
        check(
            b"d1:rd2:id20:abcdefghij01234567895:token8:aoeusnth6:valuesl6:axje.u6:idhtnmee1:t2:aa1:y1:re",
            KrpcMessage::response(
                tid(b"aa"),
                Response {
                    token: Some(b"aoeusnth".to_vec()),
                    values: vec![
                        "97.120.106.101:11893".parse().unwrap(),
                        "105.100.104.116:28269".parse().unwrap(),
                    ],
                    ..Response::id_only(id(b"abcdefghij0123456789"))
                },
            ),
        );
        // With nodes.
        check(
            b"d1:rd2:id20:abcdefghij01234567895:nodes26:zyxwvutsrqponmlkjihg\x7f\x00\x00\x01\x1a\xe15:token8:aoeusnthe1:t2:aa1:y1:re",
            KrpcMessage::response(
                tid(b"aa"),
                Response {
                    token: Some(b"aoeusnth".to_vec()),
                    nodes: vec![NodeInfo::new(
                        id(b"zyxwvutsrqponmlkjihg"),
                        "127.0.0.1:6881".parse().unwrap(),
                    )],
                    ..Response::id_only(id(b"abcdefghij0123456789"))
                },
            ),
        );
    }

    #[test]
    fn bep5_announce_peer() {
        check(
            b"d1:ad2:id20:abcdefghij012345678912:implied_porti1e9:info_hash20:mnopqrstuvwxyz1234564:porti6881e5:token8:aoeusnthe1:q13:announce_peer1:t2:aa1:y1:qe",
            KrpcMessage::query(
                tid(b"aa"),
                Query::AnnouncePeer {
                    id: id(b"abcdefghij0123456789"),
                    info_hash: InfoHash(*b"mnopqrstuvwxyz123456"),
                    port: 6881,
                    implied_port: true,
                    token: b"aoeusnth".to_vec(),
                },
            ),
        );
        check(
            b"d1:rd2:id20:mnopqrstuvwxyz123456e1:t2:aa1:y1:re",
            KrpcMessage::response(tid(b"aa"), Response::id_only(id(b"mnopqrstuvwxyz123456"))),
        );
    }

    #[test]
    fn bep5_error() {
        check(
            b"d1:eli201e23:A Generic Error Ocurrede1:t2:aa1:y1:ee",
            KrpcMessage::error(
                tid(b"aa"),
                ErrorMessage::new(ErrorCode::Generic, "A Generic Error Ocurred"),
            ),
        );
    }

    #[test]
    fn version_read_only_and_nodes6() {
        let msg = KrpcMessage {
            transaction_id: tid(b"\x00\x01\x02\x03"),
            version: Some(b"LT\x01\x02".to_vec()),
            read_only: true,
            body: Body::Response(Response {
                nodes: vec![
                    NodeInfo::new(id(&[1; 20]), "1.2.3.4:5".parse().unwrap()),
                    NodeInfo::new(id(&[2; 20]), "[2001:db8::7]:6881".parse().unwrap()),
                ],
                ..Response::id_only(id(&[9; 20]))
            }),
        };
        let bytes = msg.encode();
        assert!(bytes.windows(8).any(|w| w == b"6:nodes6"));
        assert_eq!(KrpcMessage::decode(&bytes).unwrap(), msg);
    }

    /// What each bad packet decodes to: the error's display text and transaction id.
    fn bad(bytes: &[u8], expect: &str, tid_expected: Option<&[u8]>) {
        let err = KrpcMessage::decode(bytes).unwrap_err();
        let text = err.to_string();
        assert!(text.contains(expect), "{text:?} lacks {expect:?}");
        assert_eq!(
            err.transaction_id().map(|t| t.as_bytes().to_vec()),
            tid_expected.map(<[u8]>::to_vec),
            "{text}"
        );
    }

    #[test]
    fn malformed_packets_name_the_problem() {
        bad(b"", "not bencode", None);
        bad(b"i42e", "top level is a integer", None);
        bad(b"d1:y1:qe", "missing key \"t\"", None);
        bad(b"d1:ti1e1:y1:qe", "\"t\" is a integer", None);
        bad(
            b"d1:t17:aaaaaaaaaaaaaaaaa1:y1:qe",
            "17 bytes is too long",
            None,
        );
        bad(b"d1:t2:aae", "missing or non-string key \"y\"", Some(b"aa"));
        bad(
            b"d1:t2:aa1:y1:xe",
            "unknown message type \"x\"",
            Some(b"aa"),
        );
        bad(
            b"d1:q4:ping1:t2:aa1:y1:qe",
            "missing key \"a\"",
            Some(b"aa"),
        );
        bad(
            b"d1:ad2:id3:abce1:q4:ping1:t2:aa1:y1:qe",
            "\"a.id\" is 3 bytes, not 20",
            Some(b"aa"),
        );
        bad(
            b"d1:ad2:id20:abcdefghij0123456789e1:q9:find_node1:t2:aa1:y1:qe",
            "missing key \"a.target\"",
            Some(b"aa"),
        );
        bad(
            b"d1:ad2:id20:abcdefghij01234567899:info_hash20:mnopqrstuvwxyz1234564:porti70000e5:token1:xe1:q13:announce_peer1:t2:aa1:y1:qe",
            "\"a.port\" value 70000 out of range",
            Some(b"aa"),
        );
        bad(
            b"d1:rd2:id20:abcdefghij01234567895:nodes3:abce1:t2:aa1:y1:re",
            "\"r.nodes\" length 3 is not a multiple of 26",
            Some(b"aa"),
        );
        bad(
            b"d1:rd2:id20:abcdefghij01234567896:valuesl5:abcdeee1:t2:aa1:y1:re",
            "\"r.values[0]\"",
            Some(b"aa"),
        );
    }

    #[test]
    fn error_without_message_is_read() {
        let m = KrpcMessage::decode(b"d1:eli202ee1:t2:aa1:y1:ee").unwrap();
        assert_eq!(
            m.body,
            Body::Error(ErrorMessage {
                code: 202,
                message: String::new()
            })
        );
        bad(
            b"d1:el3:abce1:t2:aa1:y1:ee",
            "\"e[0]\" is not an integer",
            Some(b"aa"),
        );
    }

    #[test]
    fn unknown_method_keeps_transaction_id() {
        let err = KrpcMessage::decode(b"d1:ad2:id20:abcdefghij0123456789e1:q3:put1:t2:xy1:y1:qe")
            .unwrap_err();
        assert!(matches!(&err, Error::UnknownMethod { method, .. } if method == "put"));
        assert_eq!(err.transaction_id().unwrap().as_bytes(), b"xy");
    }

    #[test]
    fn replies_are_flagged_so_they_are_never_answered() {
        let err = KrpcMessage::decode(b"d1:rd2:id1:xe1:t2:aa1:y1:re").unwrap_err();
        assert!(matches!(err, Error::Malformed { is_reply: true, .. }));
        let err = KrpcMessage::decode(b"d1:ad2:id1:xe1:q4:ping1:t2:aa1:y1:qe").unwrap_err();
        assert!(matches!(
            err,
            Error::Malformed {
                is_reply: false,
                ..
            }
        ));
    }

    #[test]
    fn oversized_packet_is_rejected_unread() {
        let big = vec![b'x'; MAX_PACKET_IN_LEN + 1];
        assert!(matches!(
            KrpcMessage::decode(&big),
            Err(Error::PacketTooLarge {
                len: 2049,
                limit: 2048
            })
        ));
    }

    fn arb_addr() -> impl Strategy<Value = SocketAddr> {
        prop_oneof![
            (any::<[u8; 4]>(), any::<u16>()).prop_map(|(ip, port)| SocketAddr::from((ip, port))),
            (any::<[u8; 16]>(), any::<u16>())
                .prop_map(|(ip, port)| SocketAddr::from((std::net::Ipv6Addr::from(ip), port))),
        ]
    }

    fn arb_id() -> impl Strategy<Value = NodeId> {
        any::<[u8; 20]>().prop_map(NodeId)
    }

    fn arb_node(v6: bool) -> impl Strategy<Value = NodeInfo> {
        let addr = if v6 {
            (any::<[u8; 16]>(), any::<u16>())
                .prop_map(|(ip, p)| SocketAddr::from((std::net::Ipv6Addr::from(ip), p)))
                .boxed()
        } else {
            (any::<[u8; 4]>(), any::<u16>())
                .prop_map(|(ip, p)| SocketAddr::from((ip, p)))
                .boxed()
        };
        (arb_id(), addr).prop_map(|(id, addr)| NodeInfo::new(id, addr))
    }

    fn arb_query() -> impl Strategy<Value = Query> {
        prop_oneof![
            arb_id().prop_map(|id| Query::Ping { id }),
            (arb_id(), arb_id()).prop_map(|(id, target)| Query::FindNode { id, target }),
            (arb_id(), any::<[u8; 20]>()).prop_map(|(id, h)| Query::GetPeers {
                id,
                info_hash: InfoHash(h)
            }),
            (
                arb_id(),
                any::<[u8; 20]>(),
                any::<u16>(),
                any::<bool>(),
                proptest::collection::vec(any::<u8>(), 0..40)
            )
                .prop_map(|(id, h, port, implied_port, token)| Query::AnnouncePeer {
                    id,
                    info_hash: InfoHash(h),
                    port,
                    implied_port,
                    token
                }),
        ]
    }

    fn arb_response() -> impl Strategy<Value = Response> {
        (
            arb_id(),
            proptest::collection::vec(arb_node(false), 0..10),
            proptest::collection::vec(arb_node(true), 0..5),
            proptest::collection::vec(arb_addr(), 0..20),
            proptest::option::of(proptest::collection::vec(any::<u8>(), 0..30)),
        )
            .prop_map(|(id, mut nodes, nodes6, values, token)| {
                nodes.extend(nodes6);
                Response {
                    id,
                    nodes,
                    values,
                    token,
                }
            })
    }

    fn arb_message() -> impl Strategy<Value = KrpcMessage> {
        let body = prop_oneof![
            arb_query().prop_map(Body::Query),
            arb_response().prop_map(Body::Response),
            (any::<i64>(), ".{0,40}")
                .prop_map(|(code, message)| Body::Error(ErrorMessage { code, message })),
        ];
        (
            proptest::collection::vec(any::<u8>(), 0..=MAX_TRANSACTION_ID_LEN),
            proptest::option::of(proptest::collection::vec(any::<u8>(), 0..6)),
            any::<bool>(),
            body,
        )
            .prop_map(|(t, version, read_only, body)| KrpcMessage {
                transaction_id: TransactionId::new(&t).unwrap(),
                version,
                read_only,
                body,
            })
    }

    proptest! {
        #[test]
        fn encode_then_decode_gives_the_message(msg in arb_message()) {
            let bytes = msg.encode();
            prop_assert_eq!(KrpcMessage::decode(&bytes).unwrap(), msg);
        }

        #[test]
        fn garbage_gives_an_error_never_a_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = KrpcMessage::decode(&bytes);
        }

        #[test]
        fn mutated_messages_never_panic(msg in arb_message(), flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..8)) {
            let mut bytes = msg.encode();
            for (at, b) in flips {
                let len = bytes.len();
                bytes[at % len] = b;
            }
            if let Ok(m) = KrpcMessage::decode(&bytes) {
                // Whatever decodes re-encodes to something that decodes the same.
                prop_assert_eq!(KrpcMessage::decode(&m.encode()).unwrap(), m);
            }
        }

        #[test]
        fn truncated_messages_are_errors(msg in arb_message(), cut in any::<usize>()) {
            let bytes = msg.encode();
            let cut = cut % bytes.len();
            prop_assert!(KrpcMessage::decode(&bytes[..cut]).is_err());
        }
    }
}
