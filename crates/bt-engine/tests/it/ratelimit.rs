//! Rate limits between in-process sessions: a session's upload limit and a torrent's
//! download limit hold over a transfer of several seconds.

use std::time::Instant;

use bt_engine::AddTorrentParams;

use crate::support::{complete, payload, session, torrent, write_files};

/// Downloads `len` bytes with the given limits; returns the payload rate seen, bytes/s.
async fn rate_with(len: usize, seed_up: u64, leech_down: u64, per_torrent: bool) -> (f64, f64) {
    let data = payload(len, 91 + len as u64);
    let files: &[(&str, &[u8])] = &[("", &data)];
    let meta = torrent("limited.bin", files, 64 * 1024);
    let seed_dir = tempfile::tempdir().unwrap();
    write_files(seed_dir.path(), "limited.bin", files);
    let seeder = session().await;
    seeder.set_rate_limits(0, seed_up);
    let seed = seeder
        .add_torrent(AddTorrentParams::new(meta.clone(), seed_dir.path()))
        .await
        .unwrap();
    complete(&seed, 10).await;
    let leecher = session().await;
    if !per_torrent {
        leecher.set_rate_limits(leech_down, 0);
    }
    let dir = tempfile::tempdir().unwrap();
    // No peer until the torrent's own limit is set, so it holds from the first byte.
    let params = AddTorrentParams::new(meta, dir.path());
    let leech = leecher.add_torrent(params).await.unwrap();
    if per_torrent {
        leech.set_rate_limits(leech_down, 0);
        assert_eq!(leech.rate_limits(), (leech_down, 0));
    }
    let started = Instant::now();
    leech.add_peers(vec![seeder.local_addr()]).await.unwrap();
    complete(&leech, 60).await;
    let secs = started.elapsed().as_secs_f64();
    assert_eq!(std::fs::read(dir.path().join("limited.bin")).unwrap(), data);
    let rate = len as f64 / secs;
    eprintln!("{len} bytes in {secs:.2} s: {rate:.0} B/s (limits: seed up {seed_up}, leech down {leech_down})");
    (rate, secs)
}

/// The most a limit lets through in `secs`: the rate for that time plus the quarter
/// second a bucket holds when idle, with 2% for timing.
fn most(limit: u64, secs: f64) -> f64 {
    limit as f64 * (secs + 0.25) / secs * 1.02
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_upload_limit_holds() {
    let limit = 1 << 20;
    let (rate, secs) = rate_with(4 << 20, limit, 0, false).await;
    // Never above the limit (plus a quarter second of burst), and not far below it.
    assert!(
        rate <= most(limit, secs),
        "{rate:.0} B/s over a {limit} B/s limit"
    );
    assert!(
        rate >= limit as f64 * 0.80,
        "{rate:.0} B/s under a {limit} B/s limit"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_torrent_download_limit_holds() {
    let limit = 2 << 20;
    let (rate, secs) = rate_with(8 << 20, 0, limit, true).await;
    assert!(
        rate <= most(limit, secs),
        "{rate:.0} B/s over a {limit} B/s limit"
    );
    assert!(
        rate >= limit as f64 * 0.80,
        "{rate:.0} B/s under a {limit} B/s limit"
    );
}
