//! Misbehaving peers, as raw sockets: each is disconnected with a logged reason, bad data
//! gets its sender banned, and downloads from honest peers are unaffected.

use std::io::Write;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bt_engine::{AddTorrentParams, TorrentState};
use bt_meta::{BlockInfo, InfoHash, PeerId, PieceIndex};
use bt_wire::{Handshake, Message, HANDSHAKE_LEN};
use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::support::{complete, payload, session, torrent, write_files};

/// Log lines written while a guard from [`capture`] is alive on this thread.
#[derive(Clone, Default)]
pub struct Captured(Arc<Mutex<Vec<u8>>>);

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
    /// Everything logged so far.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }

    /// Waits (up to 20 s) for a log line about `peer` that contains `reason`.
    pub async fn wait_for(&self, peer: SocketAddr, reason: &str) {
        let needle = format!("peer={peer} ");
        let found = tokio::time::timeout(Duration::from_secs(20), async {
            loop {
                if self
                    .text()
                    .lines()
                    .any(|l| l.contains(&needle) && l.contains(reason))
                {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await;
        assert!(
            found.is_ok(),
            "no log line about {peer} with {reason:?} in:\n{}",
            self.text()
        );
    }

    /// Log lines about `peer`.
    pub fn about(&self, peer: SocketAddr) -> Vec<String> {
        let needle = format!("peer={peer} ");
        self.text()
            .lines()
            .filter(|l| l.contains(&needle))
            .map(str::to_owned)
            .collect()
    }
}

/// Captures engine debug logs on this thread (the tests run on a current-thread runtime,
/// so the actors' logs land here too).
pub fn capture() -> (Captured, tracing::subscriber::DefaultGuard) {
    let out = Captured::default();
    let writer = out.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_env_filter("bt_engine=debug")
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    (out, tracing::subscriber::set_default(subscriber))
}

/// Resident memory of this process in KiB, from `/proc/self/status`.
pub fn vm_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS line")
}

/// Our hostile peer's handshake for `info_hash` (fast extension on).
pub fn handshake(info_hash: InfoHash) -> Handshake {
    let mut hs = Handshake::new(info_hash, PeerId(*b"-XX0001-hostilepeer1"));
    hs.reserved.set_fast(true);
    hs
}

/// Connects to `addr`, exchanges handshakes, returns the stream.
pub async fn raw_peer(addr: std::net::SocketAddr, info_hash: InfoHash) -> TcpStream {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(&handshake(info_hash).to_bytes()).await.unwrap();
    let mut theirs = [0u8; HANDSHAKE_LEN];
    s.read_exact(&mut theirs).await.unwrap();
    s
}

/// Reads until the other side closes; panics if it stays open for 10 s.
pub async fn expect_closed(s: &mut TcpStream) {
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
    let rss_before = vm_rss_kib();
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
                                    // A piece frame longer than any block (16 KiB + 9) but under the frame limit.
    let long_piece = frame(Message::Piece {
        index: 0,
        begin: 0,
        data: vec![0u8; 16 * 1024 + 1].into(),
    });
    // A frame over the 1 MiB + 1 KiB limit: only its prefix and id are sent.
    let mut over_limit = ((2u32 << 20) + 9).to_be_bytes().to_vec();
    over_limit.push(7);
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "huge length prefix",
            vec![0xff, 0xff, 0xff, 0xff],
            "wire error: frame of 4294967295 bytes exceeds the limit of 1049600 bytes",
        ),
        (
            "frame over the limit",
            over_limit,
            "wire error: frame of 2097161 bytes exceeds the limit of 1049600 bytes",
        ),
        (
            "have of the wrong length",
            vec![0, 0, 0, 6, 4, 0, 0, 0, 1, 0],
            "wire error: invalid have message (id 4): payload is 5 bytes, expected exactly 4",
        ),
        (
            "piece longer than a block",
            long_piece,
            "unrequested block (piece 0, begin 0, length 16385)",
        ),
        (
            "short bitfield",
            frame(Message::Bitfield(vec![0xff; bitfield_len - 1].into())),
            "bad bitfield: bitfield is 3 bytes, expected 4",
        ),
        (
            "long bitfield",
            frame(Message::Bitfield(vec![0x00; bitfield_len + 1].into())),
            "bad bitfield: bitfield is 5 bytes, expected 4",
        ),
        (
            "spare bits",
            frame(Message::Bitfield(spare.into())),
            "bad bitfield: bitfield has spare bits set past piece 31",
        ),
        (
            "have out of range",
            frame(Message::Have { index: num_pieces }),
            "have for piece 31, torrent has 31 pieces",
        ),
        (
            "request out of range",
            frame(Message::Request(BlockInfo {
                piece: PieceIndex(num_pieces + 7),
                begin: 0,
                len: 16 * 1024,
            })),
            "request for piece 38, torrent has 31 pieces",
        ),
        (
            "request over 16 KiB",
            frame(Message::Request(BlockInfo {
                piece: PieceIndex(0),
                begin: 0,
                len: 16 * 1024 + 1,
            })),
            "invalid request (piece 0, begin 0, length 16385)",
        ),
        (
            "request of 128 KiB",
            frame(Message::Request(BlockInfo {
                piece: PieceIndex(0),
                begin: 0,
                len: 1 << 17,
            })),
            "invalid request (piece 0, begin 0, length 131072)",
        ),
        (
            "unrequested piece",
            frame(Message::Piece {
                index: 0,
                begin: 0,
                data: vec![0u8; 16 * 1024].into(),
            }),
            "unrequested block (piece 0, begin 0, length 16384)",
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
        let me = s.local_addr().unwrap();
        // The bad message is the first one after the handshake.
        s.write_all(bytes).await.unwrap();
        expect_closed(&mut s).await;
        println!("{name}: disconnected");
        logs.wait_for(me, reason).await;
    }
    let stats = complete(&handle, 60).await;
    assert!(stats.state.is_complete());
    assert_eq!(
        std::fs::read(leech_dir.path().join("hostile.bin")).unwrap(),
        data
    );
    // Frames are refused on their length prefix: nothing was reserved for them.
    let grown = vm_rss_kib().saturating_sub(rss_before);
    assert!(grown < 64 * 1024, "VmRSS grew by {grown} KiB");
    leecher.shutdown().await;
    seeder.shutdown().await;
}

/// A fake seed: claims every piece, unchokes, answers every request with garbage.
/// Counts connections in `accepted`.
async fn lying_seed(listener: TcpListener, info_hash: InfoHash, accepted: Arc<AtomicUsize>) {
    loop {
        let Ok((mut s, _)) = listener.accept().await else {
            return;
        };
        accepted.fetch_add(1, Ordering::SeqCst);
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
                        let data = vec![0xA5u8; r.len as usize];
                        Message::Piece {
                            index: r.piece.0,
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
    let (logs, _guard) = capture();
    let data = payload(3_000_000, 21);
    let files: &[(&str, &[u8])] = &[("", &data)];
    let meta = torrent("corrupt.bin", files, 64 * 1024);
    let info_hash = meta.info_hash.unwrap();

    // The liar has an address of its own: a ban covers its IP, and the honest seeder is on
    // 127.0.0.1.
    let liar = TcpListener::bind("127.0.0.3:0").await.unwrap();
    let liar_addr = liar.local_addr().unwrap();
    let accepted = Arc::new(AtomicUsize::new(0));
    tokio::spawn(lying_seed(liar, info_hash, Arc::clone(&accepted)));

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
    logs.wait_for(liar_addr, "banning peer for bad data").await;
    logs.wait_for(liar_addr, "reason=banned after 2 hash failures")
        .await;
    let dials = accepted.load(Ordering::SeqCst);

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
    assert_eq!(
        accepted.load(Ordering::SeqCst),
        dials,
        "banned peer dialled again"
    );

    // The liar connecting back from its address, under a new peer id, is refused too.
    let sock = tokio::net::TcpSocket::new_v4().unwrap();
    sock.bind("127.0.0.3:0".parse().unwrap()).unwrap();
    let mut s = sock.connect(leecher.local_addr()).await.unwrap();
    let me = s.local_addr().unwrap();
    let mut hs = handshake(info_hash);
    hs.peer_id = PeerId(*b"-XX0001-hostilepeer2");
    s.write_all(&hs.to_bytes()).await.unwrap();
    expect_closed(&mut s).await;
    logs.wait_for(me, "connection refused").await;
    logs.wait_for(me, "reason=peer is banned").await;
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

/// Reads messages until one matches `want` (true) or the connection ends (false), for up to
/// 20 s.
async fn read_until(
    s: &mut TcpStream,
    buf: &mut BytesMut,
    mut want: impl FnMut(&Message) -> bool,
) -> bool {
    tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            match Message::decode(buf, 1 << 20) {
                Ok(Some(m)) if want(&m) => return true,
                Ok(Some(_)) => {}
                Ok(None) => match s.read_buf(buf).await {
                    Ok(0) | Err(_) => return false,
                    Ok(_) => {}
                },
                Err(_) => return false,
            }
        }
    })
    .await
    .unwrap_or(false)
}

/// A seeding session for `files` of a torrent named `name`, and the torrent.
async fn seeding(
    name: &str,
    files: &[(&str, &[u8])],
    piece_len: u32,
) -> (bt_engine::Session, bt_meta::Metainfo, tempfile::TempDir) {
    let meta = torrent(name, files, piece_len);
    let dir = tempfile::tempdir().unwrap();
    write_files(dir.path(), name, files);
    let seeder = session().await;
    seeder
        .add_torrent(AddTorrentParams::new(meta.clone(), dir.path()))
        .await
        .unwrap();
    (seeder, meta, dir)
}

/// A leecher session downloading `meta` from `peers` into a fresh folder.
async fn leeching(
    meta: &bt_meta::Metainfo,
    peers: Vec<SocketAddr>,
) -> (
    bt_engine::Session,
    bt_engine::TorrentHandle,
    tempfile::TempDir,
) {
    let dir = tempfile::tempdir().unwrap();
    let leecher = session().await;
    let mut params = AddTorrentParams::new(meta.clone(), dir.path());
    params.peers = peers;
    let handle = leecher.add_torrent(params).await.unwrap();
    (leecher, handle, dir)
}

#[tokio::test]
async fn unknown_message_ids_are_ignored_and_the_connection_carries_on() {
    let (logs, _guard) = capture();
    let data = payload(100_000, 23);
    let files: &[(&str, &[u8])] = &[("", &data)];
    let (seeder, meta, _dir) = seeding("unknown.bin", files, 16 * 1024).await;
    let mut s = raw_peer(seeder.local_addr(), meta.info_hash.unwrap()).await;
    let me = s.local_addr().unwrap();
    let mut out = BytesMut::new();
    for (id, len) in [(99u8, 1000usize), (21, 0), (255, 64 * 1024), (30, 7)] {
        Message::Unknown {
            id,
            payload: vec![0x5a; len].into(),
        }
        .encode(&mut out);
    }
    Message::Interested.encode(&mut out);
    s.write_all(&out).await.unwrap();
    let mut buf = BytesMut::new();
    assert!(
        read_until(&mut s, &mut buf, |m| *m == Message::Unchoke).await,
        "dropped after unknown messages, or never unchoked"
    );
    // Still a working connection: a block is served.
    let mut out = BytesMut::new();
    Message::Unknown {
        id: 200,
        payload: b"more".to_vec().into(),
    }
    .encode(&mut out);
    Message::Request(BlockInfo {
        piece: PieceIndex(1),
        begin: 0,
        len: 16 * 1024,
    })
    .encode(&mut out);
    s.write_all(&out).await.unwrap();
    let mut block = None;
    let served = read_until(&mut s, &mut buf, |m| match m {
        Message::Piece { index: 1, data, .. } => {
            block = Some(data.clone());
            true
        }
        _ => false,
    })
    .await;
    assert!(served, "no block after unknown messages");
    assert_eq!(block.unwrap(), &data[16 * 1024..32 * 1024]);
    logs.wait_for(me, "id=255 len=65536").await;
    logs.wait_for(me, "id=200 len=4").await;
    let about = logs.about(me);
    let ignored = about
        .iter()
        .filter(|l| l.contains("unknown message ignored"))
        .count();
    assert_eq!(ignored, 5, "{about:#?}");
    assert!(
        !about.iter().any(|l| l.contains("disconnect")),
        "{about:#?}"
    );
    seeder.shutdown().await;
}

#[tokio::test]
async fn request_flood_while_choked_disconnects_and_uploads_nothing() {
    let (logs, _guard) = capture();
    let data = payload(1_000_000, 24);
    let files: &[(&str, &[u8])] = &[("", &data)];
    let (seeder, meta, _dir) = seeding("flood.bin", files, 64 * 1024).await;
    let (leecher, handle, leech_dir) = leeching(&meta, vec![seeder.local_addr()]).await;

    // Never `interested`, so never unchoked: every request is one we ignore.
    let mut s = raw_peer(seeder.local_addr(), meta.info_hash.unwrap()).await;
    let me = s.local_addr().unwrap();
    // Valid blocks of the full-length pieces (the last one is shorter).
    let full_pieces = meta.info.num_pieces() - 1;
    let mut out = BytesMut::new();
    for i in 0..3000u32 {
        Message::Request(BlockInfo {
            piece: PieceIndex(i % full_pieces),
            begin: (i / full_pieces % 4) * 16 * 1024,
            len: 16 * 1024,
        })
        .encode(&mut out);
    }
    s.write_all(&out).await.unwrap();
    let (mut pieces, mut unchokes, mut rejects) = (0, 0, 0);
    let mut buf = BytesMut::new();
    let ended = read_until(&mut s, &mut buf, |m| {
        match m {
            Message::Piece { .. } => pieces += 1,
            Message::Unchoke => unchokes += 1,
            Message::RejectRequest(_) => rejects += 1,
            _ => {}
        }
        false
    })
    .await;
    assert!(!ended);
    assert_eq!((pieces, unchokes), (0, 0), "data uploaded to a choked peer");
    // Ignored requests are rejected (fast extension), at most one each; rejects still
    // queued when the connection is closed are not sent.
    assert!(rejects <= 2048, "{rejects} rejects");
    logs.wait_for(me, "request flood: 2049 requests ignored")
        .await;

    let stats = complete(&handle, 60).await;
    assert!(stats.state.is_complete());
    assert_eq!(
        std::fs::read(leech_dir.path().join("flood.bin")).unwrap(),
        data
    );
    leecher.shutdown().await;
    seeder.shutdown().await;
}

/// Answers every handshake with one for `answer` (another torrent), once per connection;
/// counts connections.
async fn wrong_hash_peer(listener: TcpListener, answer: InfoHash, accepted: Arc<AtomicUsize>) {
    while let Ok((mut s, _)) = listener.accept().await {
        accepted.fetch_add(1, Ordering::SeqCst);
        tokio::spawn(async move {
            let mut theirs = [0u8; HANDSHAKE_LEN];
            if s.read_exact(&mut theirs).await.is_ok() {
                let _ = s.write_all(&handshake(answer).to_bytes()).await;
                let mut sink = [0u8; 1024];
                while matches!(s.read(&mut sink).await, Ok(n) if n > 0) {}
            }
        });
    }
}

#[tokio::test]
async fn wrong_info_hash_is_refused_incoming_and_outgoing() {
    let (logs, _guard) = capture();
    let data = payload(500_000, 25);
    let files: &[(&str, &[u8])] = &[("", &data)];
    let (seeder, meta, _dir) = seeding("wronghash.bin", files, 32 * 1024).await;
    let real = meta.info_hash.unwrap();
    let other = InfoHash([0x42; 20]);

    // Incoming: a handshake for a torrent the session does not have gets no answer.
    let mut s = TcpStream::connect(seeder.local_addr()).await.unwrap();
    let me = s.local_addr().unwrap();
    s.write_all(&handshake(other).to_bytes()).await.unwrap();
    let mut got = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(20), s.read_to_end(&mut got)).await;
    assert!(read.is_ok(), "connection for another torrent left open");
    assert!(got.is_empty(), "answered a handshake for another torrent");
    logs.wait_for(me, &format!("handshake for unknown torrent {other}"))
        .await;

    // Outgoing: a peer that answers for another torrent is dropped and not dialled again;
    // the honest seeder serves the download meanwhile.
    let liar = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let liar_addr = liar.local_addr().unwrap();
    let accepted = Arc::new(AtomicUsize::new(0));
    tokio::spawn(wrong_hash_peer(liar, other, Arc::clone(&accepted)));
    let (leecher, handle, leech_dir) = leeching(&meta, vec![liar_addr, seeder.local_addr()]).await;
    logs.wait_for(
        liar_addr,
        &format!("handshake info-hash {other} does not match {real}"),
    )
    .await;
    let stats = complete(&handle, 60).await;
    assert_eq!(stats.state, TorrentState::Seeding);
    assert_eq!(
        std::fs::read(leech_dir.path().join("wronghash.bin")).unwrap(),
        data
    );
    // A redial would come after 2 s; none comes.
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(
        accepted.load(Ordering::SeqCst),
        1,
        "wrong-hash peer dialled again"
    );
    leecher.shutdown().await;
    seeder.shutdown().await;
}

/// Reads until the other side closes, for up to `secs`; whether it did.
async fn closed_within(s: &mut TcpStream, secs: u64) -> bool {
    let mut buf = [0u8; 1024];
    tokio::time::timeout(Duration::from_secs(secs), async {
        while matches!(s.read(&mut buf).await, Ok(n) if n > 0) {}
    })
    .await
    .is_ok()
}

#[tokio::test]
async fn unfinished_handshakes_time_out_and_never_lock_peers_out() {
    let (logs, _guard) = capture();
    let data = payload(300_000, 26);
    let files: &[(&str, &[u8])] = &[("", &data)];
    let (seeder, meta, _dir) = seeding("stall.bin", files, 32 * 1024).await;
    let info_hash = meta.info_hash.unwrap();
    let full = handshake(info_hash).to_bytes();

    // 64 connections (the pending-handshake limit): half say nothing, half send 30 of the
    // 68 handshake bytes.
    let mut stalled = Vec::new();
    for i in 0..64 {
        let mut s = TcpStream::connect(seeder.local_addr()).await.unwrap();
        if i % 2 == 1 {
            s.write_all(&full[..30]).await.unwrap();
        }
        stalled.push(s);
    }
    // A 65th stalled connection makes the oldest one give way.
    let mut newest = TcpStream::connect(seeder.local_addr()).await.unwrap();
    let oldest = stalled[0].local_addr().unwrap();
    logs.wait_for(oldest, "too many pending handshakes: the oldest gave way")
        .await;
    assert!(closed_within(&mut stalled[0], 20).await);
    // An honest peer is still answered while the others stall...
    let mut honest = raw_peer(seeder.local_addr(), info_hash).await;
    let mut buf = BytesMut::new();
    assert!(read_until(&mut honest, &mut buf, |m| *m == Message::HaveAll).await);
    // ...and so is an honest leecher session, whose download completes.
    let (leecher, handle, leech_dir) = leeching(&meta, vec![seeder.local_addr()]).await;

    // Outgoing: a peer that accepts and never answers costs a dial, not a slot.
    let mute = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let mute_addr = mute.local_addr().unwrap();
    let _mute_task = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = mute.accept().await {
            held.push(s);
        }
    });
    handle.add_peers(vec![mute_addr]).await.unwrap();

    // Every stalled connection is closed after the 10 s handshake timeout.
    for s in stalled
        .iter_mut()
        .skip(1)
        .chain(std::iter::once(&mut newest))
    {
        let addr = s.local_addr().unwrap();
        assert!(closed_within(s, 30).await, "{addr} still open");
    }
    // (The honest connections made the next oldest give way; the last ones timed out.)
    for s in &stalled[62..] {
        let addr = s.local_addr().unwrap();
        logs.wait_for(addr, "incoming handshake failed").await;
        logs.wait_for(addr, "reason=handshake timed out").await;
    }
    logs.wait_for(mute_addr, "reason=handshake timed out").await;

    let stats = complete(&handle, 60).await;
    assert!(stats.state.is_complete());
    assert_eq!(
        std::fs::read(leech_dir.path().join("stall.bin")).unwrap(),
        data
    );
    drop(honest);
    leecher.shutdown().await;
    seeder.shutdown().await;
}
