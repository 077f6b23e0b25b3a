//! Misbehaving peers, as raw sockets: each is disconnected with a logged reason, bad data
//! gets its sender banned, and downloads from honest peers are unaffected.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bt_engine::{AddTorrentParams, TorrentState};
use bt_meta::{InfoHash, PeerId};
use bt_wire::{Handshake, Message, HANDSHAKE_LEN};
use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::support::{complete, payload, session, torrent, write_files};

/// Log lines written while a guard from [`capture`] is alive on this thread.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

/// Captures engine debug logs on this thread (the tests run on a current-thread runtime,
/// so the actors' logs land here too).
fn capture() -> (Captured, tracing::subscriber::DefaultGuard) {
    let out = Captured::default();
    let writer = out.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_env_filter("bt_engine=debug")
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    (out, tracing::subscriber::set_default(subscriber))
}

fn handshake(info_hash: InfoHash) -> Handshake {
    let mut hs = Handshake::new(info_hash, PeerId(*b"-XX0001-hostilepeer1"));
    hs.reserved.set_fast(true);
    hs
}

/// Connects to `addr`, exchanges handshakes, returns the stream.
async fn raw_peer(addr: std::net::SocketAddr, info_hash: InfoHash) -> TcpStream {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(&handshake(info_hash).to_bytes()).await.unwrap();
    let mut theirs = [0u8; HANDSHAKE_LEN];
    s.read_exact(&mut theirs).await.unwrap();
    s
}

/// Reads until the other side closes; panics if it stays open for 10 s.
async fn expect_closed(s: &mut TcpStream) {
    let mut buf = vec![0u8; 64 * 1024];
    let closed = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await;
    assert!(closed.is_ok(), "hostile peer was not disconnected");
}

#[tokio::test]
async fn protocol_violations_disconnect_with_a_reason() {
    let (logs, _guard) = capture();
    let data = payload(2_000_000, 20);
    let files: &[(&str, &[u8])] = &[("", &data)];
    let meta = torrent("hostile.bin", files, 64 * 1024);
    let info_hash = meta.info_hash.unwrap();
    let num_pieces = meta.info.num_pieces();
    let seed_dir = tempfile::tempdir().unwrap();
    write_files(seed_dir.path(), "hostile.bin", files);
    let seeder = session().await;
    seeder
        .add_torrent(AddTorrentParams::new(meta.clone(), seed_dir.path()))
        .await
        .unwrap();

    let frame = |m: Message| {
        let mut b = BytesMut::new();
        m.encode(&mut b);
        b.to_vec()
    };
    let bitfield_len = num_pieces.div_ceil(8) as usize;
    let mut spare = vec![0u8; bitfield_len];
    spare[bitfield_len - 1] = 0x01; // 31 pieces: bit 31 is past the end
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "huge length prefix",
            vec![0xff, 0xff, 0xff, 0xff],
            "exceeds the limit",
        ),
        (
            "short bitfield",
            frame(Message::Bitfield(vec![0xff; bitfield_len - 1].into())),
            "bad bitfield",
        ),
        (
            "spare bits",
            frame(Message::Bitfield(spare.into())),
            "spare bits",
        ),
        (
            "have out of range",
            frame(Message::Have { index: num_pieces }),
            "have for piece 31",
        ),
        (
            "oversized request",
            frame(Message::Request(bt_wire::BlockRequest {
                index: 0,
                begin: 0,
                length: 1 << 17,
            })),
            "invalid request",
        ),
        (
            "unrequested piece",
            frame(Message::Piece {
                index: 0,
                begin: 0,
                data: vec![0u8; 16 * 1024].into(),
            }),
            "unrequested block",
        ),
    ];

    // An honest leecher downloads while the hostile peers come and go.
    let leech_dir = tempfile::tempdir().unwrap();
    let leecher = session().await;
    let mut params = AddTorrentParams::new(meta, leech_dir.path());
    params.peers = vec![seeder.local_addr()];
    let handle = leecher.add_torrent(params).await.unwrap();

    for (name, bytes, reason) in &cases {
        let mut s = raw_peer(seeder.local_addr(), info_hash).await;
        // The bad message is the first one after the handshake.
        s.write_all(bytes).await.unwrap();
        expect_closed(&mut s).await;
        let text = logs.text();
        assert!(
            text.contains(reason),
            "{name}: no log line with {reason:?} in:\n{text}"
        );
    }
    let stats = complete(&handle, 60).await;
    assert!(stats.state.is_complete());
    assert_eq!(
        std::fs::read(leech_dir.path().join("hostile.bin")).unwrap(),
        data
    );
    leecher.shutdown().await;
    seeder.shutdown().await;
}

/// A fake seed: claims every piece, unchokes, answers every request with garbage.
async fn lying_seed(listener: TcpListener, info_hash: InfoHash) {
    loop {
        let Ok((mut s, _)) = listener.accept().await else {
            return;
        };
        tokio::spawn(async move {
            let mut theirs = [0u8; HANDSHAKE_LEN];
            if s.read_exact(&mut theirs).await.is_err() {
                return;
            }
            let mut out = BytesMut::new();
            handshake(info_hash).encode(&mut out);
            Message::HaveAll.encode(&mut out);
            Message::Unchoke.encode(&mut out);
            if s.write_all(&out).await.is_err() {
                return;
            }
            let mut buf = BytesMut::new();
            loop {
                match Message::decode(&mut buf, 1 << 20) {
                    Ok(Some(Message::Request(r))) => {
                        let mut out = BytesMut::new();
                        let data = vec![0xA5u8; r.length as usize];
                        Message::Piece {
                            index: r.index,
                            begin: r.begin,
                            data: data.into(),
                        }
                        .encode(&mut out);
                        if s.write_all(&out).await.is_err() {
                            return;
                        }
                    }
                    Ok(Some(_)) => {}
                    Ok(None) => match s.read_buf(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(_) => {}
                    },
                    Err(_) => return,
                }
            }
        });
    }
}

#[tokio::test]
async fn peer_sending_corrupt_data_is_banned_and_download_completes() {
    let data = payload(3_000_000, 21);
    let files: &[(&str, &[u8])] = &[("", &data)];
    let meta = torrent("corrupt.bin", files, 64 * 1024);
    let info_hash = meta.info_hash.unwrap();

    let liar = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let liar_addr = liar.local_addr().unwrap();
    tokio::spawn(lying_seed(liar, info_hash));

    let leech_dir = tempfile::tempdir().unwrap();
    let leecher = session().await;
    let mut params = AddTorrentParams::new(meta.clone(), leech_dir.path());
    params.peers = vec![liar_addr];
    let handle = leecher.add_torrent(params).await.unwrap();
    let mut rx = handle.subscribe();
    tokio::time::timeout(Duration::from_secs(30), rx.wait_for(|s| s.banned == 1))
        .await
        .expect("liar banned")
        .unwrap();
    assert!(handle.stats().hash_failures >= 2);

    // The banned address is refused when offered again; the honest seed finishes the job.
    let seed_dir = tempfile::tempdir().unwrap();
    write_files(seed_dir.path(), "corrupt.bin", files);
    let seeder = session().await;
    seeder
        .add_torrent(AddTorrentParams::new(meta, seed_dir.path()))
        .await
        .unwrap();
    handle
        .add_peers(vec![liar_addr, seeder.local_addr()])
        .await
        .unwrap();
    let stats = complete(&handle, 60).await;
    assert_eq!(stats.state, TorrentState::Seeding);
    assert_eq!(stats.banned, 1);
    assert_eq!(
        std::fs::read(leech_dir.path().join("corrupt.bin")).unwrap(),
        data
    );
    leecher.shutdown().await;
    seeder.shutdown().await;
}

#[tokio::test]
async fn extension_handshake_first_and_late_bitfield_are_accepted() {
    // libtorrent sends its BEP 10 handshake before `have all`; aria2 sends a bitfield again
    // after other messages. Neither is dropped.
    let data = payload(100_000, 22);
    let files: &[(&str, &[u8])] = &[("", &data)];
    let meta = torrent("ext.bin", files, 16 * 1024);
    let seed_dir = tempfile::tempdir().unwrap();
    write_files(seed_dir.path(), "ext.bin", files);
    let seeder = session().await;
    seeder
        .add_torrent(AddTorrentParams::new(meta.clone(), seed_dir.path()))
        .await
        .unwrap();
    let mut s = raw_peer(seeder.local_addr(), meta.info_hash.unwrap()).await;
    let mut out = BytesMut::new();
    Message::Extended {
        id: 0,
        payload: b"de".to_vec().into(),
    }
    .encode(&mut out);
    Message::HaveNone.encode(&mut out);
    Message::Interested.encode(&mut out);
    let pieces = meta.info.num_pieces().div_ceil(8) as usize;
    Message::Bitfield(vec![0u8; pieces].into()).encode(&mut out);
    s.write_all(&out).await.unwrap();
    let mut buf = BytesMut::new();
    let unchoked = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match Message::decode(&mut buf, 1 << 20) {
                Ok(Some(Message::Unchoke)) => return true,
                Ok(Some(_)) => {}
                Ok(None) => match s.read_buf(&mut buf).await {
                    Ok(0) | Err(_) => return false,
                    Ok(_) => {}
                },
                Err(_) => return false,
            }
        }
    })
    .await;
    assert_eq!(unchoked, Ok(true), "peer was dropped or never unchoked");
    seeder.shutdown().await;
}
