//! A hostile sender floods a `DhtNode` on 127.0.0.1 with malformed packets, oversized
//! datagrams and a storm of valid queries from one address: the node does not panic, its
//! memory stays bounded, the rate limits engage, and a well-behaved node on another
//! loopback address is still answered afterwards.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bt_dht::{
    Body, DhtConfig, DhtNode, KrpcMessage, NodeId, Query, RateLimitConfig, TransactionId,
};
use bt_meta::InfoHash;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::net::UdpSocket;

/// Resident memory of this process in KiB, from `/proc/self/status`.
fn vm_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS line")
}

/// Datagrams that must not decode as KRPC, some with a transaction id (they earn a 203).
fn malformed(rng: &mut StdRng, i: usize) -> Vec<u8> {
    match i % 10 {
        0 => (0..rng.gen_range(1..1400)).map(|_| rng.gen()).collect(),
        1 => b"d1:ad2:id20:".to_vec(), // truncated
        2 => vec![b'l'; 1500],         // nesting far past the depth limit
        3 => b"d1:t2:aa1:y1:q1:q4:ping1:ad2:id999999999:".to_vec(), // huge string length
        4 => b"d1:ad2:id3:abce1:q4:ping1:t2:zz1:y1:qe".to_vec(), // short node id: 203
        5 => b"d1:t2:bb1:y1:qe".to_vec(), // no method: 203
        6 => b"d1:ad2:idi42ee1:q9:find_node1:t2:cc1:y1:qe".to_vec(), // id of the wrong type
        7 => b"i-0e".to_vec(),
        8 => b"d1:y1:r1:t2:dd1:rd2:id20:0123456789abcdefghijee".to_vec(), // unmatched reply
        _ => {
            let mut v = b"d1:t4:".to_vec();
            v.extend((0..4).map(|_| rng.gen::<u8>()));
            v.extend_from_slice(b"1:y1:q1:q4:ping1:ad2:idi-1eee");
            v
        }
    }
}

/// A valid query of each kind in turn, with transaction id `i`.
fn query(rng: &mut StdRng, i: u32) -> Vec<u8> {
    let id = NodeId::random(rng);
    let q = match i % 4 {
        0 => Query::Ping { id },
        1 => Query::FindNode {
            id,
            target: NodeId::random(rng),
        },
        2 => Query::GetPeers {
            id,
            info_hash: InfoHash(rng.gen()),
        },
        _ => Query::AnnouncePeer {
            id,
            info_hash: InfoHash(rng.gen()),
            port: 6881,
            implied_port: false,
            token: b"forged".to_vec(),
        },
    };
    let tid = TransactionId::new(&i.to_be_bytes()).expect("4-byte transaction id");
    KrpcMessage::query(tid, q).encode()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flood_of_garbage_oversized_and_queries_is_bounded_and_the_node_still_answers() {
    let rss_before = vm_rss_kib();
    // The default rate limits: 5 queries/s per IP (burst 20), 500/s in all (burst 1000).
    let limits = RateLimitConfig::default();
    let node = DhtNode::bind(
        "127.0.0.1:0".parse().unwrap(),
        DhtConfig {
            seed: Some(7),
            ..DhtConfig::default()
        },
    )
    .await
    .unwrap();
    let to = node.local_addr();
    let attacker = Arc::new(UdpSocket::bind("127.0.0.1:0").await.unwrap());
    let answers = Arc::new(AtomicU64::new(0));
    let drain = {
        let (sock, answers) = (Arc::clone(&attacker), Arc::clone(&answers));
        tokio::spawn(async move {
            let mut buf = vec![0u8; 65536];
            while let Ok((n, _)) = sock.recv_from(&mut buf).await {
                // The node may ping us back to check us out: that is no answer.
                let reply = buf
                    .get(..n)
                    .and_then(|b| KrpcMessage::decode(b).ok())
                    .is_some_and(|m| !matches!(m.body, Body::Query(_)));
                if reply {
                    answers.fetch_add(1, Ordering::Relaxed);
                }
            }
        })
    };
    let started = Instant::now();
    let mut rng = StdRng::seed_from_u64(11);

    // (a) malformed packets, until the node has counted thousands.
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut garbage = 0usize;
    loop {
        for _ in 0..100 {
            attacker
                .send_to(&malformed(&mut rng, garbage), to)
                .await
                .unwrap();
            garbage += 1;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
        let (stats, _) = node.stats().await.expect("node alive during the flood");
        if stats.malformed >= 2000 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the node counted {} of {garbage} malformed packets in 60 s",
            stats.malformed
        );
    }
    // (b) oversized datagrams, up to the largest UDP payload over IPv4.
    for (i, len) in [2049usize, 4096, 9000, 16_384, 32_768, 65_507]
        .iter()
        .cycle()
        .take(120)
        .enumerate()
    {
        let mut big = vec![0u8; *len];
        // A valid-looking start: only the length gives it away.
        big[..12].copy_from_slice(b"d1:ad2:id20:");
        rng.fill(&mut big[12..]);
        attacker.send_to(&big, to).await.unwrap();
        if i % 10 == 9 {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }
    // (c) valid queries as fast as the node takes them, until it has seen thousands.
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut sent = 0u32;
    loop {
        for _ in 0..200 {
            attacker.send_to(&query(&mut rng, sent), to).await.unwrap();
            sent += 1;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
        let (stats, _) = node.stats().await.expect("node alive during the flood");
        if stats.queries_received >= 4000 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the node saw only {} of {sent} queries in 60 s: {stats:?}",
            stats.queries_received
        );
    }
    // Whatever answers are still on their way arrive before the count is read.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let elapsed = started.elapsed().as_secs_f64();
    let (stats, table) = node.stats().await.expect("node alive after the flood");
    let answered = answers.load(Ordering::Relaxed);

    assert!(stats.malformed >= 2000, "{stats:?}");
    assert!(stats.rate_limited >= 3000, "{stats:?}");
    // A token bucket gives one address at most its burst plus its rate over the time
    // the flood lasted, whatever it sends (203 errors included).
    let allowed = limits.per_ip_burst + limits.per_ip_rate * (elapsed + 1.0);
    assert!(
        (answered as f64) <= allowed,
        "{answered} answers in {elapsed:.1} s, at most {allowed:.0} allowed: {stats:?}"
    );
    assert!(answered >= 1, "the first queries are answered");
    // Forged announce tokens stored nothing; the routing table is bounded by its buckets.
    assert!(table <= 8 * 160, "table of {table} nodes");

    // A well-behaved node on another loopback address is still served.
    let honest = DhtNode::bind(
        "127.0.0.2:0".parse().unwrap(),
        DhtConfig {
            seed: Some(8),
            ..DhtConfig::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(honest.ping(to).await.expect("ping answered"), node.id());

    let rss_after = vm_rss_kib();
    let grown = rss_after.saturating_sub(rss_before);
    assert!(
        grown < 64 * 1024,
        "VmRSS grew by {grown} KiB ({rss_before} -> {rss_after})"
    );
    println!(
        "dht flood: {garbage} malformed + 120 oversized + {sent} queries in {elapsed:.1} s; \
         node counted malformed {}, queries {}, rate-limited {}; {answered} answers; \
         VmRSS {rss_before} -> {rss_after} KiB",
        stats.malformed, stats.queries_received, stats.rate_limited
    );
    drain.abort();
    honest.shutdown().await;
    node.shutdown().await;
}
