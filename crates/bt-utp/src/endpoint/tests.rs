//! The endpoint between two simulated hosts: demultiplexing, limits, RESETs.

use super::*;
use crate::sim::{LinkConfig, Sim};
use crate::CloseReason;

fn closed(sim: &mut Sim, side: usize) -> Vec<(ConnectionHandle, CloseReason)> {
    std::iter::from_fn(|| sim.eps[side].poll_event())
        .filter_map(|(h, e)| match e {
            Event::Closed(r) => Some((h, r)),
            _ => None,
        })
        .collect()
}

#[test]
fn two_connections_to_one_peer_are_kept_apart() {
    let mut sim = Sim::symmetric(20, LinkConfig::default());
    let a1 = sim.eps[0].connect(sim.now, sim.addrs[1]);
    let a2 = sim.eps[0].connect(sim.now, sim.addrs[1]);
    sim.eps[0]
        .connection_mut(a1)
        .unwrap()
        .write(&[1; 5000])
        .unwrap();
    sim.eps[0]
        .connection_mut(a2)
        .unwrap()
        .write(&[2; 7000])
        .unwrap();
    sim.run_until(Duration::from_secs(1), |_| false);
    let b1 = sim.eps[1].accept().unwrap();
    let b2 = sim.eps[1].accept().unwrap();
    assert_eq!(sim.eps[1].accept(), None);
    let mut buf = vec![0; 10_000];
    let c1 = sim.eps[1].connection_mut(b1).unwrap();
    assert_eq!(c1.read(&mut buf), Ok(5000));
    assert!(buf[..5000].iter().all(|&b| b == 1));
    let c2 = sim.eps[1].connection_mut(b2).unwrap();
    assert_eq!(c2.read(&mut buf), Ok(7000));
    assert!(buf[..7000].iter().all(|&b| b == 2));
    assert_eq!(sim.eps[1].peer_addr(b1), Some(sim.addrs[0]));
}

#[test]
fn a_packet_for_no_connection_is_answered_with_a_reset() {
    let mut sim = Sim::symmetric(21, LinkConfig::default());
    let data = Header {
        packet_type: PacketType::Data,
        connection_id: 4242,
        timestamp_micros: 1,
        timestamp_difference_micros: 0,
        wnd_size: 1000,
        seq_nr: 77,
        ack_nr: 5,
    };
    let mut datagram = Vec::new();
    Packet {
        header: data,
        sack: None,
        payload: b"??",
    }
    .encode(&mut datagram);
    let stranger = SocketAddr::from(([192, 0, 2, 1], 1000));
    assert_eq!(
        sim.inject(1, stranger, &datagram),
        Err(Error::UnknownConnection {
            connection_id: 4242
        })
    );
    let mut buf = Vec::new();
    let t = sim.eps[1].poll_transmit(sim.now, &mut buf).unwrap();
    assert_eq!(t.to, stranger);
    let reset = Packet::decode(&buf).unwrap().header;
    assert_eq!(
        (reset.packet_type, reset.connection_id, reset.ack_nr),
        (PacketType::Reset, 4242, 77)
    );
    // A RESET is never answered.
    let reset_bytes = buf.clone();
    assert!(sim.inject(1, stranger, &reset_bytes).is_err());
    assert_eq!(sim.eps[1].poll_transmit(sim.now, &mut buf), None);
    // Nor are more than a bounded number of strangers at once.
    for _ in 0..1000 {
        let _ = sim.inject(1, stranger, &datagram);
    }
    let mut resets = 0;
    while sim.eps[1].poll_transmit(sim.now, &mut buf).is_some() {
        resets += 1;
    }
    assert_eq!(resets, MAX_PENDING_RESETS);
}

#[test]
fn syns_beyond_the_limit_are_refused_with_a_reset() {
    let config = EndpointConfig {
        max_incoming: 1,
        ..EndpointConfig::default()
    };
    let mut sim = Sim::new(22, LinkConfig::default(), LinkConfig::default(), config);
    let a1 = sim.eps[0].connect(sim.now, sim.addrs[1]);
    sim.run_until(Duration::from_secs(1), |_| false);
    let a2 = sim.eps[0].connect(sim.now, sim.addrs[1]);
    sim.run_until(Duration::from_secs(1), |_| false);
    assert_eq!(closed(&mut sim, 0), [(a2, CloseReason::Reset)]);
    assert!(!sim.eps[0].connection(a1).unwrap().is_closed());
    assert_eq!(sim.eps[1].len(), 1);
    // Once the first is gone, a new dial gets in.
    let b1 = sim.eps[1].accept().unwrap();
    sim.eps[1].connection_mut(b1).unwrap().abort();
    sim.run_until(Duration::from_secs(1), |_| false);
    sim.eps[1].remove(b1);
    assert_eq!(closed(&mut sim, 0), [(a1, CloseReason::Reset)]);
    let a3 = sim.eps[0].connect(sim.now, sim.addrs[1]);
    sim.run_until(Duration::from_secs(1), |_| false);
    assert!(!sim.eps[0].connection(a3).unwrap().is_closed());
    assert!(sim.eps[1].accept().is_some());
}

#[test]
fn a_peer_that_forgot_the_connection_resets_it() {
    let mut sim = Sim::symmetric(23, LinkConfig::default());
    let a = sim.eps[0].connect(sim.now, sim.addrs[1]);
    sim.run_until(Duration::from_secs(1), |_| false);
    let b = sim.eps[1].accept().unwrap();
    sim.eps[1].remove(b); // e.g. the peer restarted
    closed(&mut sim, 0);
    sim.eps[0]
        .connection_mut(a)
        .unwrap()
        .write(b"anyone?")
        .unwrap();
    sim.run_until(Duration::from_secs(1), |_| false);
    assert_eq!(closed(&mut sim, 0), [(a, CloseReason::Reset)]);
}

#[test]
fn ids_are_unique_per_peer_and_seeded() {
    let mut ep = Endpoint::new(EndpointConfig::default(), 1);
    let peer = SocketAddr::from(([192, 0, 2, 1], 1000));
    let mut ids = std::collections::HashSet::new();
    for _ in 0..2000 {
        let h = ep.connect(Duration::ZERO, peer);
        let c = ep.connection(h).unwrap();
        assert!(ids.insert(c.recv_id()) && ids.insert(c.send_id()));
    }
    let mut again = Endpoint::new(EndpointConfig::default(), 1);
    let h = again.connect(Duration::ZERO, peer);
    assert_eq!(
        again.connection(h).unwrap().recv_id(),
        ep.connection(ConnectionHandle(0)).unwrap().recv_id()
    );
}

#[test]
fn a_connection_that_gave_up_resets_a_peer_still_talking() {
    let mut sim = Sim::symmetric(24, LinkConfig::default());
    let a = sim.eps[0].connect(sim.now, sim.addrs[1]);
    sim.run_until(Duration::from_secs(1), |_| false);
    let b = sim.eps[1].accept().unwrap();
    // The receiving side stops hearing its peer and gives up; the sender never noticed.
    sim.links[0].config.loss = 1.0;
    sim.run_until(Duration::from_secs(200), |sim| {
        sim.eps[1].connection(b).unwrap().is_closed()
    });
    assert_eq!(
        sim.eps[1].connection(b).unwrap().close_reason(),
        Some(CloseReason::TimedOut)
    );
    closed(&mut sim, 0);
    assert!(!sim.eps[0].connection(a).unwrap().is_closed());
    sim.links[0].config.loss = 0.0;
    sim.eps[0]
        .connection_mut(a)
        .unwrap()
        .write(b"still there?")
        .unwrap();
    sim.run_until(Duration::from_secs(2), |_| false);
    assert_eq!(closed(&mut sim, 0), [(a, CloseReason::Reset)]);
}
