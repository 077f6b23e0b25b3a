//! bt-dht's KRPC decoder and the `Dht` state machine on arbitrary datagrams.
//!
//! Checks: decoding never panics; whatever decodes re-encodes to bytes that
//! decode to the same message; `Dht::handle_packet` never panics, whether the
//! bytes come as they are or (when they decode as a reply) re-addressed to a
//! query the node really has pending; everything the node sends afterwards is
//! valid KRPC of at most 1500 bytes; timers keep working.
#![no_main]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bt_dht::{Body, Dht, DhtConfig, KrpcMessage, NodeId, NodeInfo, MAX_PACKET_OUT_LEN};
use libfuzzer_sys::fuzz_target;

fn drain(dht: &mut Dht) {
    while let Some((to, bytes)) = dht.poll_transmit() {
        assert!(
            bytes.len() <= MAX_PACKET_OUT_LEN,
            "{} bytes to {to}",
            bytes.len()
        );
        KrpcMessage::decode(&bytes).expect("we send valid krpc");
    }
    while dht.poll_event().is_some() {}
}

fuzz_target!(|data: &[u8]| {
    let decoded = KrpcMessage::decode(data);
    if let Ok(msg) = &decoded {
        let again = KrpcMessage::decode(&msg.encode()).expect("re-encoded message decodes");
        assert_eq!(&again, msg);
    }

    let t0 = Instant::now();
    let config = DhtConfig {
        seed: Some(1),
        ..DhtConfig::default()
    };
    let mut dht = Dht::new(config, t0);
    let peer: SocketAddr = "127.0.0.2:6881".parse().unwrap();
    dht.load_nodes(
        t0,
        (1..=10u8)
            .map(|i| NodeInfo::new(NodeId([i; 20]), SocketAddr::from(([127, 0, 0, i], 6881)))),
    );
    // A lookup and a ping in flight, so replies have something to match.
    dht.get_peers(t0, bt_dht::InfoHash([0x55; 20]));
    dht.ping(t0, peer);
    let mut pending = Vec::new();
    while let Some((to, bytes)) = dht.poll_transmit() {
        if let Ok(m) = KrpcMessage::decode(&bytes) {
            pending.push((to, m.transaction_id));
        }
    }

    let v6: SocketAddr = "[::1]:6881".parse().unwrap();
    let from = if data.first().is_some_and(|b| b & 1 == 1) {
        v6
    } else {
        peer
    };
    dht.handle_packet(t0, from, data);
    drain(&mut dht);

    if let Ok(mut msg) = decoded {
        if matches!(msg.body, Body::Response(_) | Body::Error(_)) {
            for (to, tid) in pending {
                msg.transaction_id = tid;
                dht.handle_packet(t0, to, &msg.encode());
                drain(&mut dht);
            }
        }
    }

    let later = t0 + Duration::from_secs(10);
    dht.handle_timeout(later);
    drain(&mut dht);
    assert!(dht.poll_timeout().is_some());
});
