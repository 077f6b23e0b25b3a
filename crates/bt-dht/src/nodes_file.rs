//! The saved-nodes format: a bencoded list of compact node infos (26 or 38 bytes each).

use std::path::Path;

use bt_bencode::{DecodeOptions, Value};

use crate::compact::{decode_node, write_node, NodeInfo};
use crate::error::{Error, Result};

/// Longest nodes file read (far more than a full table: 160 buckets of 8 IPv6 nodes).
pub const MAX_NODES_FILE_LEN: usize = 256 * 1024;

/// Encodes nodes as a bencoded list of compact node strings.
pub fn encode(nodes: &[NodeInfo]) -> Vec<u8> {
    let items = nodes
        .iter()
        .map(|n| {
            let mut b = Vec::with_capacity(38);
            write_node(n, &mut b);
            Value::owned_bytes(b)
        })
        .collect();
    Value::List(items).encode()
}

/// Decodes a nodes file's bytes; `path` only names the file in errors.
/// Entries of the wrong length are an error, not skipped.
pub fn decode(bytes: &[u8], path: &Path) -> Result<Vec<NodeInfo>> {
    let invalid = |reason: String| Error::NodesFileInvalid {
        path: path.to_path_buf(),
        reason,
    };
    let opts = DecodeOptions {
        strict: false,
        max_depth: 2,
        max_input_len: MAX_NODES_FILE_LEN,
        max_string_len: 64,
        ..DecodeOptions::default()
    };
    let value = opts.decode(bytes).map_err(|e| invalid(e.to_string()))?;
    let Some(items) = value.as_list() else {
        return Err(invalid(format!(
            "top level is a {}, not a list",
            value.type_name()
        )));
    };
    items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            item.as_bytes()
                .and_then(decode_node)
                .ok_or_else(|| invalid(format!("entry {i} is not a 26- or 38-byte compact node")))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node_id::NodeId;

    #[test]
    fn round_trip_both_families() {
        let nodes = vec![
            NodeInfo::new(NodeId([1; 20]), "127.0.0.1:6881".parse().unwrap()),
            NodeInfo::new(NodeId([2; 20]), "[::1]:6882".parse().unwrap()),
        ];
        let bytes = encode(&nodes);
        assert!(bytes.starts_with(b"l26:"));
        assert_eq!(decode(&bytes, Path::new("x")).unwrap(), nodes);
        assert_eq!(decode(b"le", Path::new("x")).unwrap(), vec![]);
    }

    #[test]
    fn bad_files_name_the_problem() {
        let p = Path::new("dht.nodes");
        let cases: [(&[u8], &str); 4] = [
            (b"", "unexpected end"),
            (b"d1:ai1ee", "not a list"),
            (b"l3:abce", "entry 0 is not"),
            (b"l65:", "exceeds limit"),
        ];
        for (bytes, expect) in cases {
            let e = decode(bytes, p).unwrap_err().to_string();
            assert!(e.contains(expect) && e.contains("dht.nodes"), "{e}");
        }
    }
}
