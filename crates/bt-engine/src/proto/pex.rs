//! Peer exchange (BEP 11): [`PexState`], one per connection, sans-I/O.
//!
//! Sending: [`PexState::poll_message`] is given the torrent's connected peers (their
//! listen addresses, without the recipient) and `now`; it returns the `ut_pex` message
//! to send, if one is due: the first as soon as the peer supports `ut_pex`, then at most
//! one every [`PEX_INTERVAL`], and only when something changed. `added` holds peers the
//! recipient has not been told of, `dropped` those it was told of that are gone; each
//! list holds at most [`MAX_PEX_PEERS`] (the rest go in a later message).
//!
//! Receiving: [`PexState::ingest`] turns a received [`PexMessage`] into addresses worth
//! dialling: at most [`MAX_PEX_PEERS`] per message, at most [`MAX_LEARNED_PER_WINDOW`]
//! per [`RECEIVE_WINDOW`] (a sender may send its periodic diff and a full list back to
//! back, as libtorrent does to a new peer, so messages are not simply one a minute),
//! none that cannot be a peer (port 0, unspecified, multicast or broadcast address),
//! and at most [`MAX_LEARNED_PER_PEER`] over the connection's life.
//!
//! The torrent actor owns one [`PexState`] per peer and never uses PEX for private
//! torrents (BEP 27).

use core::net::{IpAddr, SocketAddr};
use std::collections::HashSet;
use std::time::{Duration, Instant};

use bt_wire::extension::{PexMessage, PexPeer};

/// The extended id we ask peers to send `ut_pex` messages under.
pub const OUR_UT_PEX_ID: u8 = 1;
/// Shortest time between two messages we send to one peer.
pub const PEX_INTERVAL: Duration = Duration::from_secs(60);
/// The window over which [`MAX_LEARNED_PER_WINDOW`] applies.
pub const RECEIVE_WINDOW: Duration = Duration::from_secs(60);
/// Most addresses taken from one peer per [`RECEIVE_WINDOW`].
pub const MAX_LEARNED_PER_WINDOW: usize = 2 * MAX_PEX_PEERS;
/// Most peers in `added` (and in `dropped`) of one message, sent or taken.
pub const MAX_PEX_PEERS: usize = 50;
/// Most addresses taken from one connection over its life.
pub const MAX_LEARNED_PER_PEER: usize = 500;

/// PEX with one peer; see the module documentation.
#[derive(Clone, Debug, Default)]
pub struct PexState {
    /// When we last sent a message.
    last_sent: Option<Instant>,
    /// What the peer has been told is connected.
    advertised: HashSet<SocketAddr>,
    /// When the current receive window started, and addresses taken in it.
    window: Option<(Instant, usize)>,
    /// Addresses taken from the peer so far.
    learned: usize,
}

impl PexState {
    /// A fresh state: nothing sent or received.
    pub fn new() -> Self {
        Self::default()
    }

    /// When a message may next be sent (now, if none was sent yet).
    pub fn next_send_at(&self) -> Option<Instant> {
        self.last_sent.map(|at| at + PEX_INTERVAL)
    }

    /// The message to send now, if one is due and anything changed. `connected` is the
    /// torrent's connected peers by listen address, without the recipient.
    pub fn poll_message(&mut self, now: Instant, connected: &[PexPeer]) -> Option<PexMessage> {
        if self.next_send_at().is_some_and(|at| now < at) {
            return None;
        }
        let current: HashSet<SocketAddr> = connected.iter().map(|p| p.addr).collect();
        let mut msg = PexMessage::default();
        let mut seen = HashSet::new();
        for p in connected {
            if msg.added.len() >= MAX_PEX_PEERS {
                break;
            }
            if !self.advertised.contains(&p.addr) && is_dialable(p.addr) && seen.insert(p.addr) {
                msg.added.push(*p);
            }
        }
        let mut gone: Vec<SocketAddr> = self
            .advertised
            .iter()
            .filter(|a| !current.contains(a))
            .copied()
            .collect();
        gone.sort();
        gone.truncate(MAX_PEX_PEERS);
        msg.dropped = gone;
        if msg.added.is_empty() && msg.dropped.is_empty() {
            return None;
        }
        for p in &msg.added {
            self.advertised.insert(p.addr);
        }
        for a in &msg.dropped {
            self.advertised.remove(a);
        }
        self.last_sent = Some(now);
        Some(msg)
    }

    /// The addresses worth dialling from a received message (see the module
    /// documentation for the caps).
    pub fn ingest(&mut self, now: Instant, msg: &PexMessage) -> Vec<SocketAddr> {
        let (start, taken) = match self.window {
            Some((start, taken)) if now.saturating_duration_since(start) < RECEIVE_WINDOW => {
                (start, taken)
            }
            _ => (now, 0),
        };
        let room = MAX_LEARNED_PER_PEER
            .saturating_sub(self.learned)
            .min(MAX_LEARNED_PER_WINDOW.saturating_sub(taken))
            .min(MAX_PEX_PEERS);
        let mut out = Vec::new();
        for p in &msg.added {
            if out.len() >= room {
                break;
            }
            if is_dialable(p.addr) && !out.contains(&p.addr) {
                out.push(p.addr);
            }
        }
        self.learned += out.len();
        self.window = Some((start, taken + out.len()));
        out
    }
}

/// Whether an address could be a peer at all.
pub fn is_dialable(addr: SocketAddr) -> bool {
    if addr.port() == 0 {
        return false;
    }
    match addr.ip() {
        IpAddr::V4(ip) => !(ip.is_unspecified() || ip.is_multicast() || ip.is_broadcast()),
        IpAddr::V6(ip) => !(ip.is_unspecified() || ip.is_multicast()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bt_wire::extension::PexFlags;

    fn peer(s: &str) -> PexPeer {
        PexPeer {
            addr: s.parse().unwrap(),
            flags: PexFlags(0),
        }
    }

    fn addrs(list: &[&str]) -> Vec<SocketAddr> {
        list.iter().map(|s| s.parse().unwrap()).collect()
    }

    fn added(msg: &PexMessage) -> Vec<SocketAddr> {
        msg.added.iter().map(|p| p.addr).collect()
    }

    #[test]
    fn first_message_at_once_then_at_most_once_a_minute() {
        let t0 = Instant::now();
        let mut s = PexState::new();
        let msg = s
            .poll_message(t0, &[peer("10.0.0.1:1"), peer("10.0.0.2:2")])
            .unwrap();
        assert_eq!(added(&msg), addrs(&["10.0.0.1:1", "10.0.0.2:2"]));
        assert!(msg.dropped.is_empty());
        // A change 10 s later waits for the minute.
        let later = [peer("10.0.0.2:2"), peer("10.0.0.3:3")];
        assert_eq!(s.poll_message(t0 + Duration::from_secs(10), &later), None);
        assert_eq!(s.next_send_at(), Some(t0 + PEX_INTERVAL));
        let msg = s.poll_message(t0 + PEX_INTERVAL, &later).unwrap();
        assert_eq!(added(&msg), addrs(&["10.0.0.3:3"]));
        assert_eq!(msg.dropped, addrs(&["10.0.0.1:1"]));
    }

    #[test]
    fn nothing_changed_sends_nothing() {
        let t0 = Instant::now();
        let mut s = PexState::new();
        assert_eq!(s.poll_message(t0, &[]), None);
        let set = [peer("10.0.0.1:1")];
        assert!(s.poll_message(t0, &set).is_some());
        assert_eq!(s.poll_message(t0 + 2 * PEX_INTERVAL, &set), None);
    }

    #[test]
    fn sent_lists_are_capped_and_the_rest_follows() {
        let t0 = Instant::now();
        let mut s = PexState::new();
        let many: Vec<PexPeer> = (1..=120u16)
            .map(|i| peer(&format!("10.0.1.1:{i}")))
            .collect();
        let first = s.poll_message(t0, &many).unwrap();
        assert_eq!(first.added.len(), MAX_PEX_PEERS);
        let second = s.poll_message(t0 + PEX_INTERVAL, &many).unwrap();
        assert_eq!(second.added.len(), MAX_PEX_PEERS);
        let third = s.poll_message(t0 + 2 * PEX_INTERVAL, &many).unwrap();
        assert_eq!(third.added.len(), 20);
        let all: HashSet<SocketAddr> = [first, second, third].iter().flat_map(added).collect();
        assert_eq!(all.len(), 120);
    }

    #[test]
    fn undialable_addresses_are_neither_sent_nor_taken() {
        let t0 = Instant::now();
        let bad = [
            peer("0.0.0.0:5"),
            peer("10.0.0.1:0"),
            peer("224.0.0.1:5"),
            peer("255.255.255.255:5"),
            peer("[::]:5"),
        ];
        let mut s = PexState::new();
        assert_eq!(s.poll_message(t0, &bad), None);
        let msg = PexMessage {
            added: bad
                .iter()
                .copied()
                .chain([peer("127.0.0.1:6881")])
                .collect(),
            dropped: vec![],
        };
        assert_eq!(s.ingest(t0, &msg), addrs(&["127.0.0.1:6881"]));
    }

    #[test]
    fn received_messages_are_rate_limited_and_capped() {
        let t0 = Instant::now();
        let mut s = PexState::new();
        let msg = |base: u16, n: u16| PexMessage {
            added: (0..n)
                .map(|i| peer(&format!("10.0.0.1:{}", base + i)))
                .collect(),
            dropped: vec![],
        };
        assert_eq!(s.ingest(t0, &msg(1000, 80)).len(), MAX_PEX_PEERS);
        // A second message at once (a full list after a diff) is read too, within the
        // window's budget.
        let soon = t0 + Duration::from_secs(1);
        assert_eq!(s.ingest(soon, &msg(2000, 10)).len(), 10);
        assert_eq!(
            s.ingest(soon, &msg(2100, 80)).len(),
            MAX_LEARNED_PER_WINDOW - MAX_PEX_PEERS - 10
        );
        assert!(
            s.ingest(soon, &msg(2200, 80)).is_empty(),
            "window budget spent"
        );
        let mut at = t0;
        let mut total = MAX_LEARNED_PER_WINDOW;
        for round in 1..20u16 {
            at += RECEIVE_WINDOW;
            total += s.ingest(at, &msg(3000 + round * 100, 60)).len();
        }
        assert_eq!(total, MAX_LEARNED_PER_PEER);
    }

    #[test]
    fn duplicates_in_a_message_count_once() {
        let mut s = PexState::new();
        let msg = PexMessage {
            added: vec![peer("10.0.0.9:9"), peer("10.0.0.9:9")],
            dropped: vec![],
        };
        assert_eq!(s.ingest(Instant::now(), &msg), addrs(&["10.0.0.9:9"]));
    }
}
