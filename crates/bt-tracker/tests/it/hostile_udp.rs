//! The UDP client against a scripted hostile tracker: wrong transaction ids, short
//! packets, error actions, silence; plus retransmission and connection-id reuse.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bt_meta::InfoHash;
use bt_tracker::udp::{Request, Response};
use bt_tracker::{Error, UdpConfig, UdpTracker};
use tokio::net::UdpSocket;

use crate::{fast_config, request, AbortOnDrop};

/// What the fake tracker saw, in order.
type Log = Arc<Mutex<Vec<Request>>>;

/// A UDP tracker whose replies to the `n`th packet are `script(n, request)`.
async fn scripted<F>(mut script: F) -> (String, Log, AbortOnDrop)
where
    F: FnMut(usize, &Request) -> Vec<Vec<u8>> + Send + 'static,
{
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let url = format!("udp://{}/announce", socket.local_addr().unwrap());
    let log: Log = Arc::default();
    let seen = log.clone();
    let task = tokio::spawn(async move {
        let mut buf = vec![0u8; 4096];
        let mut n = 0;
        while let Ok((len, from)) = socket.recv_from(&mut buf).await {
            let Ok(req) = Request::decode(&buf[..len]) else {
                continue;
            };
            let replies = script(n, &req);
            seen.lock().unwrap().push(req);
            n += 1;
            for r in replies {
                let _ = socket.send_to(&r, from).await;
            }
        }
    });
    (url, log, AbortOnDrop(task))
}

/// The correct answer to `req`: a connection id of 77, or an announce with one peer.
fn good(req: &Request) -> Vec<u8> {
    match req {
        Request::Connect { transaction_id } => Response::Connect {
            transaction_id: *transaction_id,
            connection_id: 77,
        },
        Request::Announce(a) => Response::Announce {
            transaction_id: a.transaction_id,
            interval: 900,
            leechers: 3,
            seeders: 4,
            peers: vec!["127.0.0.9:9".parse::<SocketAddr>().unwrap()],
        },
        Request::Scrape {
            transaction_id,
            info_hashes,
            ..
        } => Response::Scrape {
            transaction_id: *transaction_id,
            stats: info_hashes.iter().map(|_| Default::default()).collect(),
        },
    }
    .encode()
}

fn tracker() -> UdpTracker {
    UdpTracker::new(fast_config().udp)
}

fn tid(req: &Request) -> u32 {
    req.transaction_id()
}

#[tokio::test]
async fn good_tracker_answers() {
    let (url, log, _g) = scripted(|_, r| vec![good(r)]).await;
    let resp = tracker().announce(&url, &request(1, 6881)).await.unwrap();
    assert_eq!(resp.interval, Duration::from_secs(900));
    assert_eq!((resp.complete, resp.incomplete), (Some(4), Some(3)));
    assert_eq!(
        resp.peer_addrs().collect::<Vec<_>>(),
        ["127.0.0.9:9".parse::<SocketAddr>().unwrap()]
    );
    let log = log.lock().unwrap();
    assert!(matches!(log[0], Request::Connect { .. }));
    let Request::Announce(a) = &log[1] else {
        panic!("{log:?}")
    };
    assert_eq!(
        (a.connection_id, a.port, a.left, a.num_want),
        (77, 6881, 100, -1)
    );
}

#[tokio::test]
async fn wrong_transaction_id_is_ignored() {
    // A forged answer with another transaction id comes first, then the real one.
    let (url, _log, _g) = scripted(|_, r| {
        let forged = Response::Connect {
            transaction_id: tid(r).wrapping_add(1),
            connection_id: 666,
        };
        vec![forged.encode(), good(r)]
    })
    .await;
    let resp = tracker().announce(&url, &request(1, 1)).await.unwrap();
    assert_eq!(resp.interval, Duration::from_secs(900));
}

#[tokio::test]
async fn only_wrong_transaction_ids_time_out() {
    let (url, log, _g) = scripted(|_, r| {
        vec![Response::Connect {
            transaction_id: tid(r) ^ 0xffff,
            connection_id: 1,
        }
        .encode()]
    })
    .await;
    let start = Instant::now();
    let e = tracker().announce(&url, &request(1, 1)).await.unwrap_err();
    assert!(matches!(e, Error::Timeout { .. }), "{e}");
    // 50 + 100 + 200 ms with the fast config, three connects sent.
    let took = start.elapsed();
    assert!(
        took >= Duration::from_millis(340) && took < Duration::from_secs(5),
        "{took:?}"
    );
    assert_eq!(log.lock().unwrap().len(), 3);
    let tids: std::collections::HashSet<u32> = log.lock().unwrap().iter().map(tid).collect();
    assert_eq!(
        tids.len(),
        3,
        "each retransmission has a fresh transaction id"
    );
}

#[tokio::test]
async fn short_packets_without_our_id_are_ignored() {
    let (url, _log, _g) = scripted(|_, r| vec![vec![0, 0, 0], vec![], good(r)]).await;
    tracker().announce(&url, &request(1, 1)).await.unwrap();
}

#[tokio::test]
async fn short_packet_with_our_id_is_an_error() {
    let (url, _log, _g) = scripted(|_, r| {
        let mut p = vec![0, 0, 0, 0];
        p.extend_from_slice(&tid(r).to_be_bytes());
        p.extend_from_slice(&[1, 2]);
        vec![p]
    })
    .await;
    let e = tracker().announce(&url, &request(1, 1)).await.unwrap_err();
    assert_eq!(
        e.to_string(),
        "udp packet of 10 bytes is shorter than 16 for action 0"
    );
}

#[tokio::test]
async fn bad_compact_length_in_announce_is_an_error() {
    let (url, _log, _g) = scripted(|_, r| match r {
        Request::Announce(a) => {
            let mut p = Response::Announce {
                transaction_id: a.transaction_id,
                interval: 1,
                leechers: 0,
                seeders: 0,
                peers: vec![],
            }
            .encode();
            p.extend_from_slice(&[1, 2, 3, 4, 5]);
            vec![p]
        }
        _ => vec![good(r)],
    })
    .await;
    let e = tracker().announce(&url, &request(1, 1)).await.unwrap_err();
    assert!(
        matches!(
            e,
            Error::BadCompactLength {
                len: 5,
                entry_len: 6
            }
        ),
        "{e}"
    );
}

#[tokio::test]
async fn error_action_is_the_trackers_text_and_drops_the_connection_id() {
    let (url, log, _g) = scripted(|_, r| match r {
        Request::Announce(a) => vec![Response::Error {
            transaction_id: a.transaction_id,
            message: "unregistered torrent".into(),
        }
        .encode()],
        _ => vec![good(r)],
    })
    .await;
    let t = tracker();
    let e = t.announce(&url, &request(1, 1)).await.unwrap_err();
    assert_eq!(e.to_string(), "tracker failure: \"unregistered torrent\"");
    t.announce(&url, &request(1, 1)).await.unwrap_err();
    let connects = log
        .lock()
        .unwrap()
        .iter()
        .filter(|r| matches!(r, Request::Connect { .. }))
        .count();
    assert_eq!(connects, 2, "after an error the client connects again");
}

#[tokio::test]
async fn wrong_action_with_our_id_is_an_error() {
    // Answering the connect with an announce response.
    let (url, _log, _g) = scripted(|_, r| {
        vec![Response::Announce {
            transaction_id: tid(r),
            interval: 1,
            leechers: 0,
            seeders: 0,
            peers: vec![],
        }
        .encode()]
    })
    .await;
    let e = tracker().announce(&url, &request(1, 1)).await.unwrap_err();
    assert!(matches!(e, Error::BadAction { action: 1 }), "{e}");
}

#[tokio::test]
async fn lost_packets_are_retransmitted_with_backoff() {
    // The first two connects are lost, the third is answered.
    let (url, log, _g) = scripted(|n, r| if n < 2 { vec![] } else { vec![good(r)] }).await;
    let start = Instant::now();
    // Every datagram of the exchange counts against max_tries: 3 connects + 1 announce.
    let t = UdpTracker::new(UdpConfig {
        max_tries: 4,
        ..fast_config().udp
    });
    t.announce(&url, &request(1, 1)).await.unwrap();
    let took = start.elapsed();
    assert!(
        took >= Duration::from_millis(150),
        "waited 50 then 100 ms: {took:?}"
    );
    assert_eq!(log.lock().unwrap().len(), 4, "three connects, one announce");
}

#[tokio::test]
async fn connection_id_is_reused_within_its_ttl_and_renewed_after() {
    let (url, log, _g) = scripted(|_, r| vec![good(r)]).await;
    let t = UdpTracker::new(UdpConfig {
        connection_id_ttl: Duration::from_millis(300),
        ..fast_config().udp
    });
    t.announce(&url, &request(1, 1)).await.unwrap();
    t.announce(&url, &request(1, 1)).await.unwrap();
    t.scrape(&url, &[InfoHash([1; 20])]).await.unwrap();
    let connects = |log: &Log| {
        log.lock()
            .unwrap()
            .iter()
            .filter(|r| matches!(r, Request::Connect { .. }))
            .count()
    };
    assert_eq!(connects(&log), 1);
    tokio::time::sleep(Duration::from_millis(350)).await;
    t.announce(&url, &request(1, 1)).await.unwrap();
    assert_eq!(connects(&log), 2, "an expired id is renewed");
}

#[tokio::test]
async fn silent_tracker_times_out_after_all_tries() {
    let (url, log, _g) = scripted(|_, _| vec![]).await;
    let e = tracker().announce(&url, &request(1, 1)).await.unwrap_err();
    assert!(
        matches!(&e, Error::Timeout { url: u, .. } if *u == url),
        "{e}"
    );
    assert_eq!(log.lock().unwrap().len(), 3);
}

#[tokio::test]
async fn closed_port_is_unreachable_quickly() {
    let url = format!("udp://{}", crate::closed_udp_port());
    let start = Instant::now();
    let e = UdpTracker::new(UdpConfig {
        base_timeout: Duration::from_secs(5),
        ..UdpConfig::default()
    })
    .announce(&url, &request(1, 1))
    .await
    .unwrap_err();
    assert!(matches!(e, Error::Unreachable { .. }), "{e}");
    assert!(
        start.elapsed() < Duration::from_secs(4),
        "the ICMP refusal ends it: {:?}",
        start.elapsed()
    );
}

#[tokio::test]
async fn scrape_maps_stats_to_hashes_in_order() {
    let (url, _log, _g) = scripted(|_, r| match r {
        Request::Scrape {
            transaction_id,
            info_hashes,
            ..
        } => vec![Response::Scrape {
            transaction_id: *transaction_id,
            stats: (0..info_hashes.len() as u64)
                .map(|i| bt_tracker::ScrapeStats {
                    complete: i,
                    downloaded: 10 + i,
                    incomplete: 20 + i,
                })
                .collect(),
        }
        .encode()],
        _ => vec![good(r)],
    })
    .await;
    let hashes = [InfoHash([5; 20]), InfoHash([6; 20])];
    let stats = tracker().scrape(&url, &hashes).await.unwrap();
    assert_eq!(stats[&hashes[1]].downloaded, 11);
    assert_eq!(stats[&hashes[0]].incomplete, 20);
    let too_many = vec![InfoHash([0; 20]); 75];
    assert!(tracker().scrape(&url, &too_many).await.is_err());
}
