//! A swarm scenario in virtual time at the `Swarms` level: no sockets, no sleeping.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bt_meta::{InfoHash, PeerId};
use bt_tracker::{Event, SwarmAnnounce, SwarmConfig, Swarms};
use rand::rngs::StdRng;
use rand::SeedableRng;

fn announce(id: u8, event: Event) -> SwarmAnnounce {
    SwarmAnnounce {
        info_hash: InfoHash([1; 20]),
        peer_id: PeerId([id; 20]),
        addr: SocketAddr::from(([127, 0, 0, id], 6881)),
        event,
        left: 1,
        numwant: Some(200),
        family: None,
    }
}

#[test]
fn peers_that_stop_announcing_expire_after_two_intervals() {
    let interval = Duration::from_secs(1800);
    let mut swarms = Swarms::new(SwarmConfig {
        peer_ttl: 2 * interval,
        ..SwarmConfig::default()
    });
    let mut rng = StdRng::seed_from_u64(42);
    let t0 = Instant::now();
    let hash = InfoHash([1; 20]);
    // Ten peers start; the even ones keep announcing every interval, the odd ones vanish.
    for id in 1..=10 {
        swarms
            .announce(t0, &announce(id, Event::Started), &mut rng)
            .unwrap();
    }
    for k in 1..=3u32 {
        let now = t0 + interval * k;
        for id in (2..=10).step_by(2) {
            swarms
                .announce(now, &announce(id, Event::None), &mut rng)
                .unwrap();
        }
        swarms.expire(now);
        let want = if k < 2 { 10 } else { 5 };
        assert_eq!(swarms.peer_count(&hash), want, "after {k} intervals");
    }
    let reply = swarms
        .announce(t0 + interval * 3, &announce(2, Event::None), &mut rng)
        .unwrap();
    let mut ids: Vec<u8> = reply.peers.iter().map(|p| p.id.unwrap().0[0]).collect();
    ids.sort();
    assert_eq!(ids, [4, 6, 8, 10]);
    // Everyone goes quiet: two intervals later the torrent is gone.
    swarms.expire(t0 + interval * 5);
    assert_eq!(swarms.torrent_count(), 0);
}
