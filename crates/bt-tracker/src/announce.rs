//! What an announce asks and what a tracker answers, common to HTTP and UDP.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use bt_meta::{InfoHash, PeerId};

/// The `event` of an announce.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum Event {
    /// A regular re-announce (no `event` parameter; UDP 0).
    #[default]
    None,
    /// The download just finished (UDP 1).
    Completed,
    /// The torrent just started (UDP 2).
    Started,
    /// The torrent is stopping (UDP 3).
    Stopped,
}

impl Event {
    /// The HTTP `event` parameter value, or `None` for a regular announce.
    pub fn as_http(self) -> Option<&'static str> {
        match self {
            Event::None => None,
            Event::Completed => Some("completed"),
            Event::Started => Some("started"),
            Event::Stopped => Some("stopped"),
        }
    }

    /// Parses the HTTP `event` parameter (`empty` and absent both mean none).
    pub fn from_http(s: &[u8]) -> Option<Self> {
        match s {
            b"" | b"empty" | b"none" => Some(Event::None),
            b"completed" => Some(Event::Completed),
            b"started" => Some(Event::Started),
            b"stopped" => Some(Event::Stopped),
            _ => None,
        }
    }

    /// The BEP 15 event number.
    pub fn as_udp(self) -> u32 {
        match self {
            Event::None => 0,
            Event::Completed => 1,
            Event::Started => 2,
            Event::Stopped => 3,
        }
    }

    /// The event for a BEP 15 event number.
    pub fn from_udp(n: u32) -> Option<Self> {
        match n {
            0 => Some(Event::None),
            1 => Some(Event::Completed),
            2 => Some(Event::Started),
            3 => Some(Event::Stopped),
            _ => None,
        }
    }
}

/// One announce, as the engine fills it in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AnnounceRequest {
    /// The torrent.
    pub info_hash: InfoHash,
    /// Our peer id.
    pub peer_id: PeerId,
    /// The TCP port we accept peers on.
    pub port: u16,
    /// Payload bytes uploaded since `started`.
    pub uploaded: u64,
    /// Payload bytes downloaded since `started`.
    pub downloaded: u64,
    /// Bytes still missing.
    pub left: u64,
    /// Why we announce.
    pub event: Event,
    /// How many peers we would like (`None`: the tracker's default).
    pub numwant: Option<u32>,
    /// A random number that stays the same for the session (lets a tracker
    /// recognise us across IP changes).
    pub key: u32,
    /// An address to report instead of the source address (most trackers ignore it).
    pub ip: Option<IpAddr>,
    /// The `tracker id` the same tracker gave us last time (HTTP only).
    pub tracker_id: Option<Vec<u8>>,
}

impl AnnounceRequest {
    /// A request with zero counters, no event, no numwant, key 0.
    pub fn new(info_hash: InfoHash, peer_id: PeerId, port: u16) -> Self {
        Self {
            info_hash,
            peer_id,
            port,
            uploaded: 0,
            downloaded: 0,
            left: 0,
            event: Event::None,
            numwant: None,
            key: 0,
            ip: None,
            tracker_id: None,
        }
    }
}

/// A peer handed out by a tracker.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Peer {
    /// Where to connect.
    pub addr: SocketAddr,
    /// Its peer id, when the tracker sent one (dictionary peers only).
    pub id: Option<PeerId>,
}

impl Peer {
    /// A peer known only by address.
    pub fn from_addr(addr: SocketAddr) -> Self {
        Self { addr, id: None }
    }
}

/// A tracker's successful answer to an announce.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct AnnounceResponse {
    /// How long to wait before the next regular announce.
    pub interval: Duration,
    /// Never announce sooner than this (HTTP `min interval`).
    pub min_interval: Option<Duration>,
    /// To send back as `trackerid` next time (HTTP `tracker id`).
    pub tracker_id: Option<Vec<u8>>,
    /// Seeders, when the tracker says.
    pub complete: Option<u64>,
    /// Leechers, when the tracker says.
    pub incomplete: Option<u64>,
    /// The tracker's `warning message`: the announce still succeeded.
    pub warning: Option<String>,
    /// Peers, IPv4 and IPv6 together, in the tracker's order.
    pub peers: Vec<Peer>,
}

impl AnnounceResponse {
    /// The peers' addresses.
    pub fn peer_addrs(&self) -> impl Iterator<Item = SocketAddr> + '_ {
        self.peers.iter().map(|p| p.addr)
    }
}

/// Scrape counts for one torrent.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct ScrapeStats {
    /// Seeders.
    pub complete: u64,
    /// Times the torrent was completed (`downloaded`).
    pub downloaded: u64,
    /// Leechers.
    pub incomplete: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_names_round_trip() {
        for e in [
            Event::None,
            Event::Completed,
            Event::Started,
            Event::Stopped,
        ] {
            assert_eq!(Event::from_udp(e.as_udp()), Some(e));
            let http = e.as_http().unwrap_or("");
            assert_eq!(Event::from_http(http.as_bytes()), Some(e));
        }
        assert_eq!(Event::from_udp(4), None);
        assert_eq!(Event::from_http(b"paused"), None);
    }
}
