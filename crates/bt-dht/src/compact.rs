//! Compact node info (26 bytes IPv4, 38 bytes IPv6) and compact peer info (6 / 18 bytes).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use crate::node_id::{NodeId, ID_LEN};

/// Length of one IPv4 compact node: id, address, port.
pub const NODE_V4_LEN: usize = ID_LEN + 6;
/// Length of one IPv6 compact node (BEP 32).
pub const NODE_V6_LEN: usize = ID_LEN + 18;
/// Length of one IPv4 compact peer.
pub const PEER_V4_LEN: usize = 6;
/// Length of one IPv6 compact peer.
pub const PEER_V6_LEN: usize = 18;

/// A node's id and UDP address.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct NodeInfo {
    /// The node's id.
    pub id: NodeId,
    /// Where it listens.
    pub addr: SocketAddr,
}

impl NodeInfo {
    /// A node with this id at this address.
    pub fn new(id: NodeId, addr: SocketAddr) -> Self {
        Self { id, addr }
    }
}

/// Appends the compact form of `addr` (4 or 16 address bytes, then the port big-endian).
pub fn write_peer(addr: &SocketAddr, out: &mut Vec<u8>) {
    match addr.ip() {
        IpAddr::V4(ip) => out.extend_from_slice(&ip.octets()),
        IpAddr::V6(ip) => out.extend_from_slice(&ip.octets()),
    }
    out.extend_from_slice(&addr.port().to_be_bytes());
}

/// The compact form of one peer address.
pub fn encode_peer(addr: &SocketAddr) -> Vec<u8> {
    let mut out = Vec::with_capacity(PEER_V6_LEN);
    write_peer(addr, &mut out);
    out
}

/// Reads a 6-byte (IPv4) or 18-byte (IPv6) compact peer; any other length is `None`.
pub fn decode_peer(bytes: &[u8]) -> Option<SocketAddr> {
    match bytes.len() {
        PEER_V4_LEN => {
            let ip: [u8; 4] = bytes.get(..4)?.try_into().ok()?;
            let port = u16::from_be_bytes(bytes.get(4..6)?.try_into().ok()?);
            Some(SocketAddr::new(Ipv4Addr::from(ip).into(), port))
        }
        PEER_V6_LEN => {
            let ip: [u8; 16] = bytes.get(..16)?.try_into().ok()?;
            let port = u16::from_be_bytes(bytes.get(16..18)?.try_into().ok()?);
            Some(SocketAddr::new(Ipv6Addr::from(ip).into(), port))
        }
        _ => None,
    }
}

/// Appends the compact node info of `node` (26 or 38 bytes, by address family).
pub fn write_node(node: &NodeInfo, out: &mut Vec<u8>) {
    out.extend_from_slice(node.id.as_bytes());
    write_peer(&node.addr, out);
}

/// Concatenated compact node infos of the nodes of one family (`v6` false: IPv4 only).
pub fn encode_nodes<'a>(nodes: impl IntoIterator<Item = &'a NodeInfo>, v6: bool) -> Vec<u8> {
    let mut out = Vec::new();
    for n in nodes {
        if n.addr.is_ipv6() == v6 {
            write_node(n, &mut out);
        }
    }
    out
}

/// Splits a `nodes` (IPv4, `v6` false) or `nodes6` string into node infos.
///
/// Returns `None` when the length is not a multiple of the entry length.
pub fn decode_nodes(bytes: &[u8], v6: bool) -> Option<Vec<NodeInfo>> {
    let entry = if v6 { NODE_V6_LEN } else { NODE_V4_LEN };
    if bytes.len() % entry != 0 {
        return None;
    }
    // The caller's input is bounded (a packet or a capped file), so this is too.
    let mut out = Vec::with_capacity(bytes.len() / entry);
    for chunk in bytes.chunks_exact(entry) {
        let (id, addr) = chunk.split_at(ID_LEN);
        out.push(NodeInfo::new(NodeId::from_slice(id)?, decode_peer(addr)?));
    }
    Some(out)
}

/// Decodes one compact node of either length (26 or 38 bytes).
pub fn decode_node(bytes: &[u8]) -> Option<NodeInfo> {
    if bytes.len() != NODE_V4_LEN && bytes.len() != NODE_V6_LEN {
        return None;
    }
    let (id, addr) = bytes.split_at(ID_LEN);
    Some(NodeInfo::new(NodeId::from_slice(id)?, decode_peer(addr)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peer_round_trip_both_families() {
        for s in ["1.2.3.4:6881", "[2001:db8::1]:51413"] {
            let a: SocketAddr = s.parse().unwrap();
            let bytes = encode_peer(&a);
            assert_eq!(decode_peer(&bytes), Some(a), "{s}");
        }
        assert_eq!(
            encode_peer(&"1.2.3.4:258".parse().unwrap()),
            [1, 2, 3, 4, 1, 2]
        );
        assert_eq!(decode_peer(&[1, 2, 3, 4, 5]), None);
    }

    #[test]
    fn nodes_split_by_family_and_length() {
        let a = NodeInfo::new(NodeId([1; 20]), "1.2.3.4:1".parse().unwrap());
        let b = NodeInfo::new(NodeId([2; 20]), "[::1]:2".parse().unwrap());
        let v4 = encode_nodes([&a, &b], false);
        let v6 = encode_nodes([&a, &b], true);
        assert_eq!(v4.len(), NODE_V4_LEN);
        assert_eq!(v6.len(), NODE_V6_LEN);
        assert_eq!(decode_nodes(&v4, false), Some(vec![a]));
        assert_eq!(decode_nodes(&v6, true), Some(vec![b]));
        assert_eq!(decode_nodes(&v4[1..], false), None);
        assert_eq!(decode_nodes(&v4, true), None);
        assert_eq!(decode_node(&v6), Some(b));
        assert_eq!(decode_node(&v6[..30]), None);
    }
}
