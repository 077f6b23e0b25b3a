//! Real `DhtNode`s on 127.0.0.1: fifty of them bootstrapped from one another,
//! announce and get_peers across the network, ping, nodes files, shutdown.
//! Every bootstrap address is a loopback node of the test.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bt_dht::{DhtConfig, DhtNode, Error, PeerPort, RateLimitConfig};
use bt_meta::InfoHash;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const LOCALHOST: &str = "127.0.0.1:0";

/// All nodes share 127.0.0.1, so the per-IP limit is lifted to the global one;
/// timeouts are short because loopback answers in microseconds.
fn config(seed: u64) -> DhtConfig {
    DhtConfig {
        seed: Some(seed),
        query_timeout: Duration::from_millis(1500),
        stall_after: Duration::from_millis(300),
        rate_limit: RateLimitConfig {
            per_ip_rate: 2000.0,
            per_ip_burst: 4000.0,
            global_rate: 2000.0,
            global_burst: 4000.0,
            ..RateLimitConfig::default()
        },
        ..DhtConfig::default()
    }
}

async fn spawn(n: usize) -> Vec<DhtNode> {
    let mut nodes = Vec::new();
    for i in 0..n {
        let node = DhtNode::bind(LOCALHOST.parse().unwrap(), config(100 + i as u64))
            .await
            .expect("bind 127.0.0.1:0");
        nodes.push(node);
    }
    nodes
}

/// Node 0 starts alone; the others join ten at a time through node 0 and two
/// random earlier nodes, given as `host:port` strings.
async fn build(n: usize) -> Vec<DhtNode> {
    let nodes = spawn(n).await;
    let mut rng = StdRng::seed_from_u64(5);
    for batch in (1..n).collect::<Vec<_>>().chunks(10) {
        let mut set = tokio::task::JoinSet::new();
        for &i in batch {
            let hosts: Vec<String> = [0, rng.gen_range(0..i), rng.gen_range(0..i)]
                .iter()
                .map(|&v| nodes[v].local_addr().to_string())
                .collect();
            let node = nodes[i].clone();
            set.spawn(async move { node.bootstrap(&hosts).await });
        }
        while let Some(joined) = set.join_next().await {
            joined.expect("task").expect("bootstrap");
        }
    }
    nodes
}

async fn shutdown(nodes: &[DhtNode]) {
    for n in nodes {
        n.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_nodes_find_an_announced_peer() {
    let started = Instant::now();
    let nodes = build(50).await;
    let built = started.elapsed();
    let mut sizes = Vec::new();
    for n in &nodes {
        sizes.push(n.stats().await.unwrap().1);
    }
    assert!(sizes.iter().all(|&s| s >= 8), "table sizes {sizes:?}");

    let info_hash = InfoHash([0x5a; 20]);
    let announcer = &nodes[17];
    let report = announcer
        .announce(info_hash, PeerPort::Port(5555))
        .await
        .unwrap();
    assert!(report.stored_on >= 6, "{report:?}");

    // Several seekers, each a full get_peers lookup across the network.
    let expected: SocketAddr = SocketAddr::new(announcer.local_addr().ip(), 5555);
    let mut counts = Vec::new();
    for seeker in [42, 8, 25, 33, 49] {
        let (peers, stats) = nodes[seeker]
            .get_peers_stream(info_hash)
            .await
            .unwrap()
            .finish()
            .await
            .unwrap();
        assert_eq!(peers, vec![expected], "seeker {seeker}: {stats:?}");
        assert!(stats.queries <= 60, "seeker {seeker}: {stats:?}");
        counts.push(stats.queries);
    }
    println!(
        "50 DhtNodes on 127.0.0.1: built in {built:?}; table sizes {}..{}; announce stored on \
         {}/{}; get_peers found the announcer from 5 seekers with {:?} queries (mean {:.1}); \
         total {:?}",
        sizes.iter().min().unwrap(),
        sizes.iter().max().unwrap(),
        report.stored_on,
        report.tried,
        counts,
        counts.iter().sum::<usize>() as f64 / counts.len() as f64,
        started.elapsed()
    );

    // An implied-port announce is stored under the announcer's UDP port.
    let other = InfoHash([0x77; 20]);
    let report = nodes[3].announce(other, PeerPort::Implied).await.unwrap();
    assert!(report.stored_on >= 6, "{report:?}");
    assert_eq!(
        nodes[30].get_peers(other).await.unwrap(),
        vec![nodes[3].local_addr()]
    );
    shutdown(&nodes).await;
    assert!(started.elapsed() < Duration::from_secs(20));
}

#[tokio::test]
async fn ping_answers_with_the_node_id_and_times_out_on_silence() {
    let nodes = spawn(2).await;
    let id = nodes[0].ping(nodes[1].local_addr()).await.unwrap();
    assert_eq!(id, nodes[1].id());
    // A bound socket that never answers.
    let silent = tokio::net::UdpSocket::bind(LOCALHOST).await.unwrap();
    let silent_addr = silent.local_addr().unwrap();
    let err = nodes[0].ping(silent_addr).await.unwrap_err();
    assert!(
        matches!(err, Error::Timeout { addr } if addr == silent_addr),
        "{err}"
    );
    // The pinged node is now in node 0's table; the silent one is not.
    let table = nodes[0].routing_table_snapshot().await.unwrap();
    assert_eq!(table.len(), 1);
    assert_eq!(table[0].id, nodes[1].id());
    shutdown(&nodes).await;
}

#[tokio::test]
async fn add_node_pings_and_keeps_a_live_node() {
    let nodes = spawn(2).await;
    nodes[0].add_node(nodes[1].local_addr()).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let table = nodes[0].routing_table_snapshot().await.unwrap();
        if table.iter().any(|n| n.id == nodes[1].id()) {
            break;
        }
        assert!(Instant::now() < deadline, "node added within 5 s");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    shutdown(&nodes).await;
}

#[tokio::test]
async fn saved_nodes_bootstrap_a_fresh_node_without_routers() {
    let nodes = build(12).await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dht.nodes");
    let saved = nodes[0].save_nodes(&path).await.unwrap();
    assert!(saved >= 8);
    assert!(
        !dir.path().join("dht.nodes.tmp").exists(),
        "temp file renamed"
    );

    let info_hash = InfoHash([0x31; 20]);
    nodes[2]
        .announce(info_hash, PeerPort::Port(4000))
        .await
        .unwrap();

    let fresh = DhtNode::bind(LOCALHOST.parse().unwrap(), config(999))
        .await
        .unwrap();
    assert_eq!(fresh.load_nodes(&path).await.unwrap(), saved);
    let no_hosts: [&str; 0] = [];
    let stats = fresh.bootstrap(&no_hosts).await.unwrap();
    assert!(stats.responses >= 8, "{stats:?}");
    let peers = fresh.get_peers(info_hash).await.unwrap();
    assert_eq!(
        peers,
        vec![SocketAddr::new(nodes[2].local_addr().ip(), 4000)]
    );
    fresh.shutdown().await;
    shutdown(&nodes).await;
}

#[tokio::test]
async fn bad_nodes_files_and_hosts_are_errors() {
    let node = DhtNode::bind(LOCALHOST.parse().unwrap(), config(1))
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.nodes");
    assert!(matches!(
        node.load_nodes(&missing).await,
        Err(Error::NodesFileIo { .. })
    ));
    let junk = dir.path().join("junk.nodes");
    std::fs::write(&junk, b"d3:fooi1ee").unwrap();
    let err = node.load_nodes(&junk).await.unwrap_err();
    assert!(err.to_string().contains("not a list"), "{err}");
    let huge = dir.path().join("huge.nodes");
    std::fs::write(
        &huge,
        vec![b'l'; bt_dht::nodes_file::MAX_NODES_FILE_LEN + 1],
    )
    .unwrap();
    let err = node.load_nodes(&huge).await.unwrap_err();
    assert!(err.to_string().contains("exceeds limit"), "{err}");
    // A host string that cannot resolve (bad port: no DNS is asked) with an
    // empty table is an error that names it.
    let err = node.bootstrap(&["127.0.0.1:notaport"]).await.unwrap_err();
    assert!(
        matches!(&err, Error::Resolve { host, .. } if host == "127.0.0.1:notaport"),
        "{err}"
    );
    node.shutdown().await;
    // After shutdown every call says so.
    assert!(matches!(
        node.get_peers(InfoHash([1; 20])).await,
        Err(Error::Shutdown)
    ));
}

#[tokio::test]
async fn garbage_datagrams_get_203_or_nothing_and_the_node_keeps_serving() {
    let node = DhtNode::bind(LOCALHOST.parse().unwrap(), config(1))
        .await
        .unwrap();
    let sock = tokio::net::UdpSocket::bind(LOCALHOST).await.unwrap();
    let to = node.local_addr();
    sock.send_to(&[0xff; 3000], to).await.unwrap(); // oversized
    sock.send_to(b"i1e", to).await.unwrap(); // no transaction id: dropped
    sock.send_to(b"d1:ad2:id3:abce1:q4:ping1:t2:zz1:y1:qe", to)
        .await
        .unwrap();
    let mut buf = [0u8; 1500];
    let (n, _) = tokio::time::timeout(Duration::from_secs(5), sock.recv_from(&mut buf))
        .await
        .expect("an answer")
        .unwrap();
    let msg = bt_dht::KrpcMessage::decode(&buf[..n]).unwrap();
    assert_eq!(msg.transaction_id.as_bytes(), b"zz");
    assert!(matches!(msg.body, bt_dht::Body::Error(ref e) if e.code == 203));
    let (stats, _) = node.stats().await.unwrap();
    assert_eq!(stats.malformed, 3);
    node.shutdown().await;
}
