//! `sync/torrentPeers`: a torrent's connected peers in qBittorrent's shape, with the
//! client's name read from its peer id.

use bt_engine::proto::PeerSummary;
use serde_json::{json, Map, Value};

/// Azureus-style client codes (`-XXvvvv-`) of the clients people meet most.
const CLIENTS: &[(&str, &str)] = &[
    ("BT", "bt"),
    ("qB", "qBittorrent"),
    ("TR", "Transmission"),
    ("LT", "libtorrent"),
    ("lt", "libTorrent (rakshasa)"),
    ("UT", "µTorrent"),
    ("DE", "Deluge"),
    ("AZ", "Vuze"),
    ("BI", "BiglyBT"),
    ("rq", "rqbit"),
    ("WW", "WebTorrent"),
    ("FD", "Free Download Manager"),
    ("BC", "BitComet"),
    ("KT", "KTorrent"),
];

/// A readable name for a peer id: `-qB4520-...` gives `qBittorrent 4.5.2.0`.
pub fn client_name(id: &[u8; 20]) -> String {
    if id[0] == b'-' && id[7] == b'-' {
        let code = String::from_utf8_lossy(&id[1..3]).into_owned();
        let version: Vec<String> = id[3..7].iter().map(|b| (*b as char).to_string()).collect();
        let name = CLIENTS
            .iter()
            .find(|(c, _)| *c == code)
            .map_or(code.clone(), |(_, n)| n.to_string());
        return format!("{name} {}", version.join("."));
    }
    if id.starts_with(b"A2-") {
        return "aria2".into();
    }
    // Printable prefix, or nothing useful.
    let printable: String = id
        .iter()
        .take_while(|b| b.is_ascii_graphic())
        .map(|b| *b as char)
        .collect();
    if printable.len() >= 3 {
        printable
    } else {
        "Unknown".into()
    }
}

/// qBittorrent's flags string: `D`/`d` downloading from it or wanting to, `U`/`u` the
/// same for uploading, `S` snubbed, `I` incoming.
fn flags(p: &PeerSummary) -> String {
    let mut f = Vec::new();
    if p.am_interested {
        f.push(if p.peer_unchoked { "D" } else { "d" });
    }
    if p.peer_interested {
        f.push(if p.am_unchoked { "U" } else { "u" });
    }
    if p.snubbed {
        f.push("S");
    }
    if !p.outgoing {
        f.push("I");
    }
    f.join(" ")
}

/// The `peers` object: one entry per peer, keyed `ip:port`.
pub fn peers_object(peers: &[PeerSummary], num_pieces: u32) -> Map<String, Value> {
    peers
        .iter()
        .map(|p| {
            let progress = if num_pieces == 0 {
                0.0
            } else {
                f64::from(p.pieces) / f64::from(num_pieces)
            };
            let v = json!({
                "ip": p.addr.ip().to_string(),
                "port": p.addr.port(),
                "client": client_name(&p.id.0),
                "peer_id_client": hex::encode(&p.id.0[..8]),
                "connection": "BT",
                "country": "",
                "country_code": "",
                "dl_speed": p.download_rate,
                "up_speed": p.upload_rate,
                "downloaded": p.downloaded,
                "uploaded": p.uploaded,
                "progress": progress,
                "relevance": 0,
                "files": "",
                "flags": flags(p),
                "flags_desc": "",
            });
            (p.addr.to_string(), v)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(s: &[u8]) -> [u8; 20] {
        let mut out = [b'x'; 20];
        out[..s.len()].copy_from_slice(s);
        out
    }

    #[test]
    fn peer_ids_name_their_clients() {
        assert_eq!(client_name(&id(b"-qB4520-")), "qBittorrent 4.5.2.0");
        assert_eq!(client_name(&id(b"-ZZ1000-")), "ZZ 1.0.0.0");
        assert_eq!(client_name(&id(b"A2-1-37-0-")), "aria2");
        assert_eq!(client_name(&[0; 20]), "Unknown");
    }
}
