//! BEP 11 `ut_pex` as the engine consumes and produces it: an arbitrary payload is
//! decoded (`PexMessage::decode`), fed to `PexState::ingest`, and its peer lists serve as
//! the torrent's connected peers for `PexState::poll_message`.
//!
//! Checks: no panic; ingest yields at most 50 distinct dialable addresses from the
//! message, at most 100 per minute, and at most 500 over a connection's life; every message we send holds at most 50 added and 50 dropped
//! peers, adds only dialable peers not advertised yet, drops only advertised peers that
//! left, survives an encode/decode round trip, and the advertised set converges to the
//! dialable connected peers.
#![no_main]

use std::collections::HashSet;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bt_engine::proto::pex::{
    is_dialable, PexState, MAX_LEARNED_PER_PEER, MAX_LEARNED_PER_WINDOW, MAX_PEX_PEERS,
    PEX_INTERVAL, RECEIVE_WINDOW,
};
use bt_wire::extension::{PexFlags, PexPeer};
use bt_wire::PexMessage;
use libfuzzer_sys::fuzz_target;

/// Polls `state` at `now` and checks the message against the advertised set, which it
/// then updates. Returns whether a message was sent.
fn send(
    state: &mut PexState,
    now: Instant,
    connected: &[PexPeer],
    advertised: &mut HashSet<SocketAddr>,
) -> bool {
    let Some(msg) = state.poll_message(now, connected) else {
        return false;
    };
    let current: HashSet<SocketAddr> = connected.iter().map(|p| p.addr).collect();
    assert!(msg.added.len() <= MAX_PEX_PEERS && msg.dropped.len() <= MAX_PEX_PEERS);
    assert!(!msg.added.is_empty() || !msg.dropped.is_empty());
    let mut seen = HashSet::new();
    for p in &msg.added {
        assert!(is_dialable(p.addr) && current.contains(&p.addr), "{p:?}");
        assert!(
            seen.insert(p.addr) && !advertised.contains(&p.addr),
            "{p:?}"
        );
    }
    for a in &msg.dropped {
        assert!(advertised.remove(a) && !current.contains(a), "{a}");
    }
    advertised.extend(seen);
    assert_eq!(PexMessage::decode(&msg.encode()).unwrap(), msg);
    assert_eq!(state.next_send_at(), Some(now + PEX_INTERVAL));
    true
}

fuzz_target!(|data: &[u8]| {
    let Ok(msg) = PexMessage::decode(data) else {
        return;
    };
    let t0 = Instant::now();

    // Receiving.
    let mut rx = PexState::new();
    let sent: HashSet<SocketAddr> = msg.added.iter().map(|p| p.addr).collect();
    let mut learned = 0;
    for k in 0..12u32 {
        let at = t0 + RECEIVE_WINDOW * k;
        let mut in_window = 0;
        // Three messages in one window: the window's budget holds.
        for j in 0..3u32 {
            let got = rx.ingest(at + Duration::from_millis(u64::from(j)), &msg);
            assert!(got.len() <= MAX_PEX_PEERS);
            let distinct: HashSet<_> = got.iter().collect();
            assert_eq!(distinct.len(), got.len());
            assert!(got.iter().all(|a| is_dialable(*a) && sent.contains(a)));
            in_window += got.len();
            assert!(in_window <= MAX_LEARNED_PER_WINDOW);
            learned += got.len();
            assert!(learned <= MAX_LEARNED_PER_PEER);
        }
    }

    // Sending: first the message's `added` peers are connected, then its `dropped` ones.
    let mut tx = PexState::new();
    let mut advertised = HashSet::new();
    send(&mut tx, t0, &msg.added, &mut advertised);
    assert!(tx
        .poll_message(t0 + PEX_INTERVAL - Duration::from_millis(1), &[])
        .is_none());
    let later: Vec<PexPeer> = msg
        .dropped
        .iter()
        .map(|&addr| PexPeer {
            addr,
            flags: PexFlags(0),
        })
        .collect();
    let mut at = t0;
    for _ in 0..32 {
        at += PEX_INTERVAL;
        if !send(&mut tx, at, &later, &mut advertised) {
            break;
        }
    }
    let want: HashSet<SocketAddr> = later
        .iter()
        .map(|p| p.addr)
        .filter(|a| is_dialable(*a))
        .collect();
    assert_eq!(advertised, want);
});
