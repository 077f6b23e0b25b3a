//! Magnet links, PEX and the DHT `port` message between in-process sessions.

use std::borrow::Cow;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bt_bencode::{Dict, Value};
use bt_dht::DhtNode;
use bt_engine::fetch_metadata;
use bt_engine::proto::metadata::{metainfo_from_info, MetadataConfig};
use bt_engine::sources::dht::DhtSettings;
use bt_engine::{
    AddTorrentParams, Dialer, EncryptionPolicy, Session, SessionConfig, TcpTransport,
    TorrentHandle, TorrentState,
};
use bt_meta::Metainfo;
use sha1::{Digest, Sha1};
use tokio::io::AsyncReadExt;
use tokio::net::TcpListener;
use tokio::sync::mpsc;

use crate::support::{complete, logs, payload, session, torrent, write_files};

/// Fetches the metadata of `meta` from `addrs` (then the channel closes) through
/// `dialer`, within 20 s.
async fn fetch_with(
    dialer: Dialer,
    meta: &Metainfo,
    addrs: &[SocketAddr],
) -> Result<bt_engine::FetchedMetadata, bt_engine::proto::metadata::MetadataError> {
    let (tx, rx) = mpsc::channel(16);
    for a in addrs {
        tx.send(*a).await.unwrap();
    }
    drop(tx);
    let info_hash = meta.info_hash.unwrap();
    let peer_id = bt_wire::generate_peer_id();
    tokio::time::timeout(
        Duration::from_secs(20),
        fetch_metadata(dialer, info_hash, peer_id, rx, MetadataConfig::default()),
    )
    .await
    .expect("fetch finishes")
}

/// [`fetch_with`] a dialer of the default policy; the fetch must succeed.
async fn fetch(meta: &Metainfo, addrs: &[SocketAddr]) -> bt_engine::FetchedMetadata {
    let transport = TcpTransport::bind("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let dialer = Dialer::new(Arc::new(transport), EncryptionPolicy::Enabled);
    fetch_with(dialer, meta, addrs)
        .await
        .expect("metadata fetched")
}

/// A session on a free port of 127.0.0.1 with this encryption policy.
async fn session_with(encryption: EncryptionPolicy) -> Session {
    Session::new(SessionConfig {
        listen_addr: "127.0.0.1:0".parse().unwrap(),
        encryption,
        ..SessionConfig::default()
    })
    .await
    .expect("session starts")
}

#[tokio::test]
async fn required_encryption_holds_while_a_magnet_fetches_its_metadata() {
    logs();
    let data = payload(300 * 16 * 1024, 31);
    let files: &[(&str, &[u8])] = &[("", &data)];
    let meta = torrent("enc.bin", files, 16 * 1024);

    // A listener that notes the first bytes it is sent: never a plaintext handshake.
    let spy = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let spy_addr = spy.local_addr().unwrap();
    let first = tokio::spawn(async move {
        let (mut s, _) = spy.accept().await.unwrap();
        let mut buf = [0u8; 20];
        s.read_exact(&mut buf).await.unwrap();
        buf
    });
    let client = session_with(EncryptionPolicy::Required).await;
    let err = fetch_with(client.dialer(), &meta, &[spy_addr]).await;
    assert!(err.is_err(), "the spy serves nothing");
    let first = first.await.unwrap();
    assert_ne!(
        &first, b"\x13BitTorrent protocol",
        "a plaintext handshake went out"
    );

    // Between two sessions that require encryption, the metadata comes over RC4.
    let seed_dir = tempfile::tempdir().unwrap();
    write_files(seed_dir.path(), "enc.bin", files);
    let seeder = session_with(EncryptionPolicy::Required).await;
    seeder
        .add_torrent(AddTorrentParams::new(meta.clone(), seed_dir.path()))
        .await
        .unwrap();
    let fetched = fetch_with(client.dialer(), &meta, &[seeder.local_addr()])
        .await
        .expect("metadata fetched under required encryption");
    assert!(fetched.info == meta.raw_info());
    // And a plaintext-only client cannot get it from that seeder.
    let plain = session_with(EncryptionPolicy::Disabled).await;
    assert!(fetch_with(plain.dialer(), &meta, &[seeder.local_addr()])
        .await
        .is_err());
    for s in [plain, client, seeder] {
        s.shutdown().await;
    }
}

#[tokio::test]
async fn a_magnet_download_from_a_session_is_byte_identical() {
    logs();
    // 16 KiB pieces: 1100 piece hashes make an info dictionary of two metadata pieces.
    let data = payload(1100 * 16 * 1024 - 77, 30);
    let files: &[(&str, &[u8])] = &[("", &data)];
    let meta = torrent("magnet.bin", files, 16 * 1024);
    assert!(meta.raw_info().len() > 16 * 1024);
    let seed_dir = tempfile::tempdir().unwrap();
    write_files(seed_dir.path(), "magnet.bin", files);
    let seeder = session().await;
    seeder
        .add_torrent(AddTorrentParams::new(meta.clone(), seed_dir.path()))
        .await
        .unwrap();

    let fetched = fetch(&meta, &[seeder.local_addr()]).await;
    assert!(fetched.info == meta.raw_info(), "served metadata differs");
    assert_eq!(fetched.peers, vec![seeder.local_addr()]);
    let trackers = vec![vec!["http://127.0.0.1:1/announce".to_owned()]];
    let from_magnet =
        metainfo_from_info(meta.info_hash.unwrap(), &fetched.info, &trackers).unwrap();
    assert_eq!(from_magnet.info_hash, meta.info_hash);
    assert_eq!(from_magnet.trackers(), trackers);

    let leech_dir = tempfile::tempdir().unwrap();
    let leecher = session().await;
    let mut params = AddTorrentParams::new(from_magnet, leech_dir.path());
    params.peers = fetched.peers;
    params.seed = false;
    let handle = leecher.add_torrent(params).await.unwrap();
    complete(&handle, 60).await;
    assert!(std::fs::read(leech_dir.path().join("magnet.bin")).unwrap() == data);
    leecher.shutdown().await;
    seeder.shutdown().await;
}

/// A torrent of `data` as `name`, private or not.
fn torrent_with(name: &str, data: &[u8], piece_len: usize, private: bool) -> Metainfo {
    let pieces: Vec<u8> = data
        .chunks(piece_len)
        .flat_map(|c| <[u8; 20]>::from(Sha1::digest(c)))
        .collect();
    let bytes = |b: &[u8]| Value::Bytes(Cow::Owned(b.to_vec()));
    let mut info = Dict::new();
    info.insert(&b"length"[..], Value::Int(data.len() as i64));
    info.insert(&b"name"[..], bytes(name.as_bytes()));
    info.insert(&b"piece length"[..], Value::Int(piece_len as i64));
    info.insert(&b"pieces"[..], bytes(&pieces));
    if private {
        info.insert(&b"private"[..], Value::Int(1));
    }
    let mut root = Dict::new();
    root.insert(&b"info"[..], Value::Dict(info));
    Metainfo::from_bytes(&Value::Dict(root).encode()).unwrap()
}

/// Adds `meta` to `session`, data from `dir`, dialling `peers`.
async fn add(
    session: &Session,
    meta: &Metainfo,
    dir: &Path,
    peers: Vec<SocketAddr>,
) -> TorrentHandle {
    let mut params = AddTorrentParams::new(meta.clone(), dir);
    params.peers = peers;
    session.add_torrent(params).await.unwrap()
}

/// Waits up to `secs` for `handle` to have `peers` connections; the last count.
async fn wait_peers(handle: &TorrentHandle, peers: usize, secs: u64) -> usize {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        let n = handle.stats().peers;
        if n >= peers || tokio::time::Instant::now() >= deadline {
            return n;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// B has all but the last piece (so nobody ever completes and everyone stays
/// connected); C and A know only B. Returns A's peer count after `secs`.
async fn pex_triangle(private: bool, secs: u64) -> usize {
    let piece_len = 16 * 1024;
    let data = payload(20 * piece_len + 5, 31);
    let meta = torrent_with("pex.bin", &data, piece_len, private);
    let mut partial = data.clone();
    let last = partial.len() - 3;
    partial[last] ^= 0xff;
    let (b_dir, c_dir, a_dir) = (
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
    );
    write_files(b_dir.path(), "pex.bin", &[("", &partial)]);
    let (b, c, a) = (session().await, session().await, session().await);
    let hb = add(&b, &meta, b_dir.path(), vec![]).await;
    assert_eq!(hb.stats().state, TorrentState::Downloading);
    let hc = add(&c, &meta, c_dir.path(), vec![b.local_addr()]).await;
    assert_eq!(wait_peers(&hc, 1, 10).await, 1, "C connects to B");
    let ha = add(&a, &meta, a_dir.path(), vec![b.local_addr()]).await;
    let n = wait_peers(&ha, 2, secs).await;
    for s in [a, b, c] {
        s.shutdown().await;
    }
    n
}

#[tokio::test]
async fn a_peer_learns_a_third_through_pex_and_connects_to_it() {
    logs();
    assert_eq!(pex_triangle(false, 10).await, 2, "A never connected to C");
}

#[tokio::test]
async fn private_torrents_exchange_no_peers() {
    logs();
    assert_eq!(
        pex_triangle(true, 3).await,
        1,
        "A learned of C for a private torrent"
    );
}

#[tokio::test]
async fn a_port_message_adds_the_peer_s_dht_node() {
    logs();
    let data = payload(100_000, 32);
    let files: &[(&str, &[u8])] = &[("", &data)];
    let meta = torrent("port.bin", files, 16 * 1024);
    let seed_dir = tempfile::tempdir().unwrap();
    write_files(seed_dir.path(), "port.bin", files);
    // Sessions with a DHT node that knows nobody (no bootstrap).
    let with_dht = || {
        Session::new(SessionConfig {
            listen_addr: "127.0.0.1:0".parse().unwrap(),
            dht: Some(DhtSettings {
                bootstrap: Some(Vec::new()),
                ..DhtSettings::default()
            }),
            ..SessionConfig::default()
        })
    };
    let (seeder, leecher) = (with_dht().await.unwrap(), with_dht().await.unwrap());
    let seed_dht = seeder.dht().unwrap().clone();
    let leech_dht = leecher.dht().unwrap().clone();
    assert_eq!(seed_dht.local_addr(), seeder.local_addr(), "UDP beside TCP");
    add(&seeder, &meta, seed_dir.path(), vec![]).await;
    let leech_dir = tempfile::tempdir().unwrap();
    let handle = add(&leecher, &meta, leech_dir.path(), vec![seeder.local_addr()]).await;
    complete(&handle, 30).await;
    // Each side's `port` message makes the other ping it and keep it.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let knows = |node: &DhtNode, addr: SocketAddr| {
        let node = node.clone();
        async move {
            node.routing_table_snapshot()
                .await
                .unwrap()
                .iter()
                .any(|n| n.addr == addr)
        }
    };
    loop {
        let a = knows(&seed_dht, leech_dht.local_addr()).await;
        let b = knows(&leech_dht, seed_dht.local_addr()).await;
        if a && b {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "routing tables after 10 s: seeder knows leecher {a}, leecher knows seeder {b}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    leecher.shutdown().await;
    seeder.shutdown().await;
}
