//! Tests of the metadata fetch against in-process fake peers.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use bt_wire::HandshakeCodec;
use tokio::net::{TcpListener, TcpStream};

use super::*;
use crate::driver::encryption::EncryptionPolicy;
use crate::driver::transport::TcpTransport;
use crate::proto::metadata::tests::{corrupt, hash_of, info_dict};
use crate::proto::metadata::{metainfo_from_info, MAX_METADATA_LEN, METADATA_PIECE_LEN};

const K16: usize = METADATA_PIECE_LEN;

// ---------------------------------------------------------------------------------------
// Driver against fake peers
// ---------------------------------------------------------------------------------------

/// How a fake peer answers metadata requests.
#[derive(Clone)]
enum Serve {
    /// These bytes (announcing their length as metadata_size).
    Bytes(Vec<u8>),
    /// Reject every request.
    Reject,
    /// Never answer.
    Silent,
    /// No extension bit in the handshake.
    NoExtensions,
}

/// A fake peer on 127.0.0.1; counts connections and requests.
struct FakePeer {
    addr: SocketAddr,
    connections: Arc<AtomicUsize>,
    requests: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FakePeer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FakePeer {
    async fn start(info_hash: InfoHash, serve: Serve, size: usize) -> FakePeer {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let connections = Arc::new(AtomicUsize::new(0));
        let requests = Arc::new(AtomicUsize::new(0));
        let (c, r) = (Arc::clone(&connections), Arc::clone(&requests));
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                c.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(serve_one(
                    stream,
                    info_hash,
                    serve.clone(),
                    size,
                    Arc::clone(&r),
                ));
            }
        });
        FakePeer {
            addr,
            connections,
            requests,
            task,
        }
    }
}

async fn serve_one(
    stream: TcpStream,
    info_hash: InfoHash,
    serve: Serve,
    size: usize,
    requests: Arc<AtomicUsize>,
) -> Option<()> {
    let mut framed = Framed::new(stream, HandshakeCodec::new());
    let theirs = framed.next().await?.ok()?;
    assert!(theirs.reserved.supports_extension_protocol());
    let mut ours = Handshake::new(info_hash, bt_wire::generate_peer_id());
    if !matches!(serve, Serve::NoExtensions) {
        ours.reserved.set_extension_protocol(true);
    }
    framed.send(ours).await.ok()?;
    let mut framed = framed.map_codec(|_| MessageCodec::new());
    // Like real clients: a bitfield, then the extended handshake.
    framed
        .send(Message::Bitfield(Bytes::from_static(&[0xff])))
        .await
        .ok()?;
    const THEIR_ID: u8 = 7;
    let mut hs = ExtendedHandshake::default();
    hs.extensions.insert(UT_METADATA.to_owned(), THEIR_ID);
    hs.metadata_size = Some(size as u32);
    framed.send(hs.to_message()).await.ok()?;
    let mut our_id = None;
    while let Some(Ok(msg)) = framed.next().await {
        let Message::Extended { id, payload } = msg else {
            continue;
        };
        if id == 0 {
            let hs = ExtendedHandshake::decode(&payload).ok()?;
            our_id = hs.id(UT_METADATA);
            continue;
        }
        assert_eq!(id, THEIR_ID, "requests come under the id we gave");
        let Ok(MetadataMessage::Request { piece }) = MetadataMessage::decode(&payload) else {
            continue;
        };
        requests.fetch_add(1, Ordering::SeqCst);
        let reply = match &serve {
            Serve::Bytes(b) => {
                let start = piece as usize * K16;
                let end = (start + K16).min(b.len());
                MetadataMessage::Data {
                    piece,
                    total_size: b.len() as u32,
                    data: Bytes::copy_from_slice(&b[start..end]),
                }
            }
            Serve::Reject => MetadataMessage::Reject { piece },
            Serve::Silent | Serve::NoExtensions => continue,
        };
        framed.send(reply.to_message(our_id?)).await.ok()?;
    }
    Some(())
}

fn quick_config() -> MetadataConfig {
    MetadataConfig {
        request_timeout: Duration::from_millis(500),
        handshake_timeout: Duration::from_secs(2),
        ..MetadataConfig::default()
    }
}

/// Runs a fetch over `addrs` (the channel then closes), within 10 s.
async fn fetch(
    info_hash: InfoHash,
    addrs: &[SocketAddr],
    config: MetadataConfig,
) -> Result<FetchedMetadata, MetadataError> {
    let (tx, rx) = mpsc::channel(16);
    for a in addrs {
        tx.send(*a).await.unwrap();
    }
    drop(tx);
    let peer_id = bt_wire::generate_peer_id();
    let transport = TcpTransport::bind("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let dialer = Dialer::new(Arc::new(transport), EncryptionPolicy::Enabled);
    tokio::time::timeout(
        Duration::from_secs(10),
        fetch_metadata(dialer, info_hash, peer_id, rx, config),
    )
    .await
    .expect("fetch finishes within 10 s")
}

#[tokio::test]
async fn fetches_from_a_good_peer() {
    let info = info_dict(2500, 20);
    let h = hash_of(&info);
    let good = FakePeer::start(h, Serve::Bytes(info.clone()), info.len()).await;
    let got = fetch(h, &[good.addr], quick_config()).await.unwrap();
    assert!(got.info == info, "fetched metadata differs");
    assert_eq!(got.peers, vec![good.addr]);
    assert_eq!(good.requests.load(Ordering::SeqCst), 4);
    let meta = metainfo_from_info(h, &got.info, &[]).unwrap();
    assert_eq!(meta.info.name, "payload.bin");
}

#[tokio::test]
async fn corrupt_metadata_is_rejected_and_the_good_peer_used() {
    let info = info_dict(2500, 21);
    let h = hash_of(&info);
    let bad = FakePeer::start(h, Serve::Bytes(corrupt(&info)), info.len()).await;
    let good = FakePeer::start(h, Serve::Bytes(info.clone()), info.len()).await;
    // The bad peer is named twice: once distrusted it is never dialled again.
    let got = fetch(h, &[bad.addr, good.addr, bad.addr], quick_config())
        .await
        .unwrap();
    assert!(got.info == info, "fetched metadata differs");
    assert_eq!(hash_of(&got.info), h);
    assert!(!got.peers.contains(&bad.addr), "{:?}", got.peers);
    assert_eq!(bad.connections.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn only_a_corrupt_peer_means_no_metadata() {
    let info = info_dict(100, 22);
    let h = hash_of(&info);
    let bad = FakePeer::start(h, Serve::Bytes(corrupt(&info)), info.len()).await;
    let err = fetch(h, &[bad.addr], quick_config()).await.unwrap_err();
    assert!(
        matches!(err, MetadataError::NoPeers { tried: 1, .. }),
        "{err}"
    );
    assert_eq!(bad.requests.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn rejecting_silent_and_extensionless_peers_are_passed_over() {
    let info = info_dict(1000, 23);
    let h = hash_of(&info);
    let rejecting = FakePeer::start(h, Serve::Reject, info.len()).await;
    let silent = FakePeer::start(h, Serve::Silent, info.len()).await;
    let plain = FakePeer::start(h, Serve::NoExtensions, info.len()).await;
    let good = FakePeer::start(h, Serve::Bytes(info.clone()), info.len()).await;
    let got = fetch(
        h,
        &[rejecting.addr, silent.addr, plain.addr, good.addr],
        quick_config(),
    )
    .await
    .unwrap();
    assert!(got.info == info, "fetched metadata differs");
}

#[tokio::test]
async fn no_reachable_peer_is_an_error() {
    // A port nobody listens on: bind, note the port, close.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let dead = listener.local_addr().unwrap();
    drop(listener);
    let err = fetch(InfoHash([7; 20]), &[dead], quick_config())
        .await
        .unwrap_err();
    assert!(
        matches!(err, MetadataError::NoPeers { tried: 1, .. }),
        "{err}"
    );
    let err = fetch(InfoHash([7; 20]), &[], quick_config())
        .await
        .unwrap_err();
    assert!(
        matches!(err, MetadataError::NoPeers { tried: 0, .. }),
        "{err}"
    );
}

#[tokio::test]
async fn an_oversized_metadata_size_is_refused_before_any_request() {
    let h = InfoHash([9; 20]);
    let huge = FakePeer::start(h, Serve::Bytes(vec![0; 10]), MAX_METADATA_LEN + 1).await;
    let err = fetch(h, &[huge.addr], quick_config()).await.unwrap_err();
    assert!(matches!(err, MetadataError::NoPeers { .. }), "{err}");
    assert_eq!(huge.requests.load(Ordering::SeqCst), 0);
}
