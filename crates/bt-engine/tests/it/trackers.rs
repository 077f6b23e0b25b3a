//! The announcer ([`bt_engine::sources::announce`]) against the built-in tracker and fake HTTP
//! trackers on 127.0.0.1: sessions that know each other only through a tracker complete
//! a transfer; dead, silent and garbage trackers are skipped; shutdown is bounded.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bt_engine::sources::announce::{
    self, AnnouncerConfig, AnnouncerHandle, AnnouncerStatus, Announcing,
};
use bt_engine::{AddTorrentParams, Session, SessionConfig, TorrentHandle, TorrentState};
use bt_meta::Metainfo;
use bt_tracker::{ScheduleConfig, ServerConfig, Tiers, TrackerClient, TrackerServer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use crate::support::{complete, logs, payload, session, torrent, write_files};

/// Announcer settings scaled down for tests: 1 s floors and back-off, short timeouts.
fn config() -> AnnouncerConfig {
    AnnouncerConfig {
        tracker_timeout: Duration::from_secs(1),
        stop_timeout: Duration::from_secs(1),
        schedule: ScheduleConfig {
            min_interval_floor: Duration::from_secs(1),
            default_min_interval: Duration::from_secs(1),
            retry_base: Duration::from_secs(1),
            retry_max: Duration::from_secs(2),
        },
        ..AnnouncerConfig::default()
    }
}

/// Who `session` announces as.
fn us(session: &Session) -> Announcing {
    Announcing {
        peer_id: session.peer_id(),
        port: session.local_addr().port(),
    }
}

fn start(session: &Session, handle: &TorrentHandle, tiers: Tiers) -> AnnouncerHandle {
    announce::spawn(
        handle.clone(),
        tiers,
        TrackerClient::default(),
        us(session),
        config(),
    )
}

/// A built-in tracker whose `interval` is long and `min interval` short, so a peer
/// announcing again within the test does so only because it is short of peers.
async fn tracker() -> TrackerServer {
    let config = ServerConfig {
        interval: Duration::from_secs(1800),
        min_interval: Some(Duration::from_secs(1)),
        ..ServerConfig::default()
    };
    TrackerServer::bind("127.0.0.1:0".parse().unwrap(), config)
        .await
        .unwrap()
}

/// Polls `f` every 50 ms until it holds, failing after `secs` seconds.
async fn eventually(secs: u64, what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !f() {
        assert!(Instant::now() < deadline, "not true after {secs} s: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

struct Swarm {
    meta: Metainfo,
    data: Vec<u8>,
    seed_dir: tempfile::TempDir,
}

fn swarm(announce_url: Option<String>) -> Swarm {
    let data = payload(3_000_000 + 17, 9);
    let files: &[(&str, &[u8])] = &[("", &data)];
    let mut meta = torrent("tracked.bin", files, 64 * 1024);
    meta.announce = announce_url;
    let seed_dir = tempfile::tempdir().unwrap();
    write_files(seed_dir.path(), "tracked.bin", files);
    Swarm {
        meta,
        data,
        seed_dir,
    }
}

/// A session on 127.0.0.1 announcing its torrents with `config`.
async fn announcing(config: AnnouncerConfig) -> Session {
    Session::new(SessionConfig {
        listen_addr: "127.0.0.1:0".parse().unwrap(),
        announce: Some(config),
        ..SessionConfig::default()
    })
    .await
    .unwrap()
}

#[tokio::test]
async fn two_sessions_meet_only_through_the_tracker() {
    logs();
    let server = tracker().await;
    let s = swarm(Some(server.http_url()));
    let info_hash = s.meta.info_hash.unwrap();

    // The leecher comes first: the tracker has nobody for it yet. Its session announces
    // the torrent because the torrent names a tracker.
    let leech_dir = tempfile::tempdir().unwrap();
    let leecher = announcing(config()).await;
    let mut params = AddTorrentParams::new(s.meta.clone(), leech_dir.path());
    params.seed = false;
    let leech = leecher.add_torrent(params).await.unwrap();
    let leech_ann = leecher.tracker_status(&info_hash).expect("an announcer");
    let status = || leech_ann.borrow().clone();
    eventually(10, "the leecher announced", || status().announces >= 1).await;
    assert_eq!(status().last_peers, 0);

    // The seeder announces asking for no peers (so it does not dial the leecher); the
    // leecher, short of peers, asks again after `min interval` (not the 1800 s
    // interval) and finds it.
    let seeder = announcing(AnnouncerConfig {
        numwant: 0,
        ..config()
    })
    .await;
    seeder
        .add_torrent(AddTorrentParams::new(s.meta.clone(), s.seed_dir.path()))
        .await
        .unwrap();
    let stats = complete(&leech, 60).await;
    assert_eq!(stats.state, TorrentState::Complete);
    assert_eq!(
        std::fs::read(leech_dir.path().join("tracked.bin")).unwrap(),
        s.data
    );
    let st = status();
    assert!(st.announces >= 2, "{st:?}");
    assert!(st.peers_from_trackers >= 1, "{st:?}");
    assert_eq!(st.tracker.as_deref(), Some(server.http_url().as_str()));
    assert_eq!(st.last_error, None);

    // `completed` reached the tracker; `stopped`, sent as each session shuts down, takes
    // each peer out of the swarm.
    eventually(10, "the tracker counted a completed download", || {
        server.scrape(&info_hash).downloaded == 1
    })
    .await;
    leecher.shutdown().await;
    assert_eq!(server.scrape(&info_hash).incomplete, 0);
    assert_eq!(server.scrape(&info_hash).complete, 1, "the seeder is left");
    seeder.shutdown().await;
    assert_eq!(server.torrent_count(), 0, "both said stopped");
    server.shutdown().await;
}

/// What a fake tracker does with the n-th request (0-based).
#[derive(Clone, Copy)]
enum Reply {
    /// Answers with these bytes as the body of a 200.
    Body(&'static [u8]),
    /// Sends these bytes as the whole response.
    Raw(&'static [u8]),
    /// A 200 whose body is 3 MiB (more than the client accepts).
    Huge,
    /// Reads the request and never answers.
    Silence,
}

/// A fake HTTP tracker on 127.0.0.1; records each request line.
struct FakeTracker {
    addr: SocketAddr,
    requests: Arc<Mutex<Vec<String>>>,
    task: tokio::task::JoinHandle<()>,
}

impl FakeTracker {
    async fn start(reply: fn(usize) -> Reply) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::clone(&requests);
        let task = tokio::spawn(async move {
            let mut held = Vec::new();
            loop {
                let Ok((mut stream, _)) = listener.accept().await else {
                    return;
                };
                let mut head = Vec::new();
                let mut buf = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 16 * 1024 {
                    match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let line = String::from_utf8_lossy(&head)
                    .lines()
                    .next()
                    .unwrap_or("")
                    .to_owned();
                let n = {
                    let mut r = seen.lock().unwrap();
                    r.push(line);
                    r.len() - 1
                };
                match reply(n) {
                    Reply::Body(body) => {
                        let head = format!(
                            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                            body.len()
                        );
                        let _ = stream.write_all(head.as_bytes()).await;
                        let _ = stream.write_all(body).await;
                        let _ = stream.shutdown().await;
                    }
                    Reply::Raw(bytes) => {
                        let _ = stream.write_all(bytes).await;
                        let _ = stream.shutdown().await;
                    }
                    Reply::Huge => {
                        let len = 3 << 20;
                        let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {len}\r\n\r\n");
                        let _ = stream.write_all(head.as_bytes()).await;
                        let _ = stream.write_all(&vec![b'x'; len]).await;
                        let _ = stream.shutdown().await;
                    }
                    Reply::Silence => held.push(stream),
                }
            }
        });
        FakeTracker {
            addr,
            requests,
            task,
        }
    }

    fn url(&self) -> String {
        format!("http://{}/announce", self.addr)
    }

    fn requests(&self) -> Vec<String> {
        self.requests.lock().unwrap().clone()
    }
}

impl Drop for FakeTracker {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A URL on 127.0.0.1 where nothing listens.
async fn refused_url() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    format!("http://{addr}/announce")
}

#[tokio::test]
async fn dead_silent_and_garbage_trackers_are_skipped() {
    logs();
    let server = tracker().await;
    let refused = refused_url().await;
    let silent = FakeTracker::start(|_| Reply::Silence).await;
    let garbage = FakeTracker::start(|_| Reply::Body(b"<html>not bencode</html>")).await;
    let refusing = FakeTracker::start(|_| Reply::Body(b"d14:failure reason11:not allowede")).await;
    let huge = FakeTracker::start(|_| Reply::Huge).await;
    let looping = FakeTracker::start(|_| {
        Reply::Raw(b"HTTP/1.1 302 Found\r\nLocation: /announce\r\nContent-Length: 0\r\n\r\n")
    })
    .await;
    let tiers = || {
        Tiers::from_tiers(vec![
            vec![refused.clone(), silent.url()],
            vec![garbage.url(), refusing.url(), huge.url(), looping.url()],
            vec![server.udp_url()],
        ])
    };
    let s = swarm(None);

    let seeder = session().await;
    let seed = seeder
        .add_torrent(AddTorrentParams::new(s.meta.clone(), s.seed_dir.path()))
        .await
        .unwrap();
    let seed_ann = start(&seeder, &seed, tiers());
    eventually(20, "the seeder reached the udp tracker", || {
        seed_ann.status().announces >= 1
    })
    .await;

    let leech_dir = tempfile::tempdir().unwrap();
    let leecher = session().await;
    let leech = leecher
        .add_torrent(AddTorrentParams::new(s.meta.clone(), leech_dir.path()))
        .await
        .unwrap();
    let leech_ann = start(&leecher, &leech, tiers());
    complete(&leech, 60).await;
    assert_eq!(
        std::fs::read(leech_dir.path().join("tracked.bin")).unwrap(),
        s.data
    );

    let status: AnnouncerStatus = leech_ann.status();
    assert_eq!(status.tracker.as_deref(), Some(server.udp_url().as_str()));
    let error = status
        .last_error
        .clone()
        .expect("the failures are recorded");
    for (url, why) in [
        (&refused, "unreachable"),
        (&silent.url(), "timed out"),
        (&garbage.url(), "not bencode"),
        (&refusing.url(), "not allowed"),
        (&huge.url(), "exceeds"),
        (&looping.url(), "redirects"),
    ] {
        assert!(error.contains(url.as_str()), "{url} missing from {error}");
        assert!(error.contains(why), "{why:?} missing from {error}");
    }
    assert!(
        garbage.requests().len() >= 2,
        "both peers walked past it: {:?}",
        garbage.requests()
    );
    leech_ann.shutdown().await;
    seed_ann.shutdown().await;
    leecher.shutdown().await;
    seeder.shutdown().await;
    server.shutdown().await;
}

#[tokio::test]
async fn shutdown_is_bounded_when_the_tracker_goes_silent() {
    logs();
    // Answers `started`, then never again.
    let tracker = FakeTracker::start(|n| match n {
        0 => Reply::Body(b"d8:intervali1800e5:peers0:e"),
        _ => Reply::Silence,
    })
    .await;
    let s = swarm(Some(tracker.url()));
    // The session announces nothing itself: this test drives its own announcer.
    let seeder = Session::new(SessionConfig {
        listen_addr: "127.0.0.1:0".parse().unwrap(),
        announce: None,
        ..SessionConfig::default()
    })
    .await
    .unwrap();
    let seed = seeder
        .add_torrent(AddTorrentParams::new(s.meta.clone(), s.seed_dir.path()))
        .await
        .unwrap();
    let ann = start(&seeder, &seed, announce::tiers(&s.meta));
    eventually(10, "started was answered", || ann.status().announces == 1).await;
    let began = Instant::now();
    ann.shutdown().await;
    let took = began.elapsed();
    assert!(took < Duration::from_secs(3), "shutdown took {took:?}");
    let requests = tracker.requests();
    assert_eq!(requests.len(), 2, "{requests:?}");
    assert!(requests[0].contains("event=started"), "{requests:?}");
    assert!(requests[0].contains("left=0"), "a seed: {requests:?}");
    assert!(requests[1].contains("event=stopped"), "{requests:?}");
    seeder.shutdown().await;
}

#[tokio::test]
async fn completed_is_sent_once_even_when_stopping_right_after() {
    logs();
    let server = tracker().await;
    let recorder = FakeTracker::start(|_| Reply::Body(b"d8:intervali1800e5:peers0:e")).await;
    let s = swarm(None);
    let seeder = session().await;
    let seed = seeder
        .add_torrent(AddTorrentParams::new(s.meta.clone(), s.seed_dir.path()))
        .await
        .unwrap();
    let seed_ann = start(
        &seeder,
        &seed,
        Tiers::from_tiers(vec![vec![server.http_url()]]),
    );
    eventually(10, "the seeder announced", || {
        seed_ann.status().announces >= 1
    })
    .await;

    // The leecher finds the seeder through the real tracker, then reports to the
    // recorder alone (its first tier) so every request it makes is seen.
    let leech_dir = tempfile::tempdir().unwrap();
    let leecher = session().await;
    let mut params = AddTorrentParams::new(s.meta.clone(), leech_dir.path());
    params.seed = false;
    let leech = leecher.add_torrent(params).await.unwrap();
    let finder = start(
        &leecher,
        &leech,
        Tiers::from_tiers(vec![vec![server.http_url()]]),
    );
    let reporter = start(
        &leecher,
        &leech,
        Tiers::from_tiers(vec![vec![recorder.url()]]),
    );
    complete(&leech, 60).await;
    reporter.shutdown().await;
    finder.shutdown().await;
    let events: Vec<&str> = recorder
        .requests()
        .iter()
        .map(|r| {
            ["started", "completed", "stopped"]
                .into_iter()
                .find(|e| r.contains(&format!("event={e}")))
                .unwrap_or("none")
        })
        .collect();
    assert_eq!(events.first(), Some(&"started"), "{events:?}");
    assert_eq!(
        events.iter().filter(|e| **e == "completed").count(),
        1,
        "{events:?}"
    );
    assert_eq!(events.last(), Some(&"stopped"), "{events:?}");
    let stopped = recorder.requests().last().cloned().unwrap();
    assert!(stopped.contains("left=0"), "{stopped}");
    seed_ann.shutdown().await;
    leecher.shutdown().await;
    seeder.shutdown().await;
    server.shutdown().await;
}
