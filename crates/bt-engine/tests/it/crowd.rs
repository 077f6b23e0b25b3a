//! 500 connections at once to one seeding session: half send a valid handshake and then
//! nothing, half send nothing at all. The connection limits hold, memory stays bounded,
//! and an honest leecher still downloads the torrent while the crowd is connected.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bt_engine::{AddTorrentParams, Session, SessionConfig, TorrentConfig};
use bt_meta::PeerId;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpSocket, TcpStream};

use crate::hostile::{capture, handshake, vm_rss_kib};
use crate::support::{complete, payload, session, torrent, write_files};

/// Whether the other side has closed `s` (data waiting to be read is drained first).
fn is_closed(s: &TcpStream) -> bool {
    let mut buf = [0u8; 4096];
    loop {
        match s.try_read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return false,
            Err(_) => return true,
        }
    }
}

/// Connects to `to` from 127.0.0.`host`.
async fn connect_from(host: u8, to: SocketAddr) -> std::io::Result<TcpStream> {
    let sock = TcpSocket::new_v4()?;
    sock.bind(SocketAddr::from(([127, 0, 0, host], 0)))?;
    sock.connect(to).await
}

const TORRENT_MAX_PEERS: usize = 20;
const SESSION_MAX_PEERS: usize = 30;

#[tokio::test]
async fn five_hundred_connections_at_once_keep_the_limits_and_an_honest_peer_is_served() {
    let (logs, _guard) = capture();
    let rss_before = vm_rss_kib();
    let data = payload(2_000_000, 30);
    let files: &[(&str, &[u8])] = &[("", &data)];
    let meta = torrent("crowd.bin", files, 64 * 1024);
    let info_hash = meta.info_hash.unwrap();
    let seed_dir = tempfile::tempdir().unwrap();
    write_files(seed_dir.path(), "crowd.bin", files);
    let seeder = Session::new(SessionConfig {
        listen_addr: "127.0.0.1:0".parse().unwrap(),
        max_peers: SESSION_MAX_PEERS,
        torrent: TorrentConfig {
            max_peers: TORRENT_MAX_PEERS,
            ..TorrentConfig::default()
        },
        ..SessionConfig::default()
    })
    .await
    .unwrap();
    let seed = seeder
        .add_torrent(AddTorrentParams::new(meta.clone(), seed_dir.path()))
        .await
        .unwrap();
    let to = seeder.local_addr();

    // Records the most peers the seeding torrent ever reports.
    let mut stats_rx = seed.subscribe();
    let watcher = tokio::spawn(async move {
        let mut most = 0;
        while stats_rx.changed().await.is_ok() {
            most = most.max(stats_rx.borrow().peers);
        }
        most
    });

    // The crowd, from 50 addresses of 127.0.0.0/8 (10..=59).
    let mut crowd = Vec::new();
    let mut refused = 0;
    for i in 0..500u32 {
        let host = 10 + (i % 50) as u8;
        match connect_from(host, to).await {
            Ok(mut s) => {
                if i % 2 == 0 {
                    let mut hs = handshake(info_hash);
                    let mut id = *b"-XX0001-crowd0000000";
                    id[13..].copy_from_slice(format!("{i:07}").as_bytes());
                    hs.peer_id = PeerId(id);
                    let _ = s.write_all(&hs.to_bytes()).await;
                }
                crowd.push((i, s));
            }
            // A full accept backlog may refuse some: that is the kernel's limit holding.
            Err(_) => refused += 1,
        }
    }
    println!("crowd: {} connected, {refused} refused", crowd.len());

    // An honest leecher joins while the crowd is still connected.
    let started = Instant::now();
    let leech_dir = tempfile::tempdir().unwrap();
    let leecher = session().await;
    let mut params = AddTorrentParams::new(meta, leech_dir.path());
    params.peers = vec![to];
    let handle = leecher.add_torrent(params).await.unwrap();
    let stats = complete(&handle, 120).await;
    assert!(stats.state.is_complete());
    assert_eq!(
        std::fs::read(leech_dir.path().join("crowd.bin")).unwrap(),
        data
    );
    let took = started.elapsed();

    // The seeder's actor kept publishing meanwhile and never exceeded its limit.
    let mut rx = seed.subscribe();
    // (The guard `wait_for` returns is dropped at once: it blocks the actor's publishing.)
    let uploaded = tokio::time::timeout(
        Duration::from_secs(10),
        rx.wait_for(|s| s.uploaded >= data.len() as u64),
    )
    .await
    .is_ok_and(|r| r.is_ok());
    assert!(uploaded, "seeder stats stale: {:?}", seed.stats());
    let now = seed.stats();
    assert!(now.peers <= TORRENT_MAX_PEERS, "{now:?}");
    let open_handshaken = crowd
        .iter()
        .filter(|(i, s)| i % 2 == 0 && !is_closed(s))
        .count();
    assert!(
        open_handshaken <= TORRENT_MAX_PEERS,
        "{open_handshaken} handshaken connections still open"
    );
    assert!(
        logs.text().contains("reason=connection limit reached"),
        "no connection refused at the limit"
    );
    assert!(
        logs.text().contains("idle peer evicted to make room"),
        "the honest leecher got no slot from an idle crowd peer"
    );
    assert!(
        logs.text().contains("too many pending handshakes"),
        "no pending handshake dropped"
    );

    // Memory stays bounded with the crowd connected.
    let rss_after = vm_rss_kib();
    let grown = rss_after.saturating_sub(rss_before);
    assert!(
        grown < 64 * 1024,
        "VmRSS grew by {grown} KiB ({rss_before} -> {rss_after})"
    );

    // Connections that never handshook are all closed by the handshake timeout.
    let deadline = Instant::now() + Duration::from_secs(40);
    loop {
        let open_silent = crowd
            .iter()
            .filter(|(i, s)| i % 2 == 1 && !is_closed(s))
            .count();
        if open_silent == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{open_silent} silent connections still open after 40 s"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    leecher.shutdown().await;
    seeder.shutdown().await;
    let most = watcher.await.unwrap();
    assert!(most <= TORRENT_MAX_PEERS, "{most} peers at once");
    println!(
        "500 connections: honest leecher done in {took:?} with the crowd connected; \
         at most {most} peers; {open_handshaken} handshaken crowd connections kept; \
         VmRSS {rss_before} -> {rss_after} KiB"
    );
}
