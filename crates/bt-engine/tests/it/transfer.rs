//! Downloads between in-process sessions: byte-identical files, swarms, resume.

use std::time::Duration;

use bt_engine::storage::MemoryBackend;
use bt_engine::{AddTorrentParams, StorageKind, TorrentState};

use crate::support::{complete, logs, payload, session, torrent, write_files};

#[tokio::test]
async fn single_file_download_is_byte_identical() {
    logs();
    let data = payload(5_000_000 + 123, 1);
    let files: &[(&str, &[u8])] = &[("", &data)];
    let meta = torrent("single.bin", files, 256 * 1024);
    let seed_dir = tempfile::tempdir().unwrap();
    write_files(seed_dir.path(), "single.bin", files);
    let seeder = session().await;
    let seed = seeder
        .add_torrent(AddTorrentParams::new(meta.clone(), seed_dir.path()))
        .await
        .unwrap();
    assert_eq!(seed.stats().state, TorrentState::Seeding);

    let leech_dir = tempfile::tempdir().unwrap();
    let leecher = session().await;
    let mut params = AddTorrentParams::new(meta, leech_dir.path());
    params.peers = vec![seeder.local_addr()];
    params.seed = false;
    let handle = leecher.add_torrent(params).await.unwrap();
    let stats = complete(&handle, 60).await;
    assert_eq!(stats.state, TorrentState::Complete);
    assert_eq!(stats.bytes_have, data.len() as u64);
    assert_eq!(
        std::fs::read(leech_dir.path().join("single.bin")).unwrap(),
        data
    );
    leecher.shutdown().await;
    seeder.shutdown().await;
}

#[tokio::test]
async fn multi_file_with_empty_files_and_short_last_piece() {
    logs();
    let a = payload(10_000, 2);
    let b = payload(70_001, 3);
    let c = payload(32 * 1024, 4);
    let d = payload(1, 5);
    let files: &[(&str, &[u8])] = &[
        ("empty-first", b""),
        ("a.bin", &a),
        ("sub/empty-middle", b""),
        ("sub/b.bin", &b),
        ("c.bin", &c),
        ("d/e/one-byte", &d),
        ("zz-empty-last", b""),
    ];
    // 16 KiB pieces: files span pieces, the last piece is short.
    let meta = torrent("multi", files, 16 * 1024);
    let seed_dir = tempfile::tempdir().unwrap();
    write_files(seed_dir.path(), "multi", files);
    let seeder = session().await;
    seeder
        .add_torrent(AddTorrentParams::new(meta.clone(), seed_dir.path()))
        .await
        .unwrap();

    let leech_dir = tempfile::tempdir().unwrap();
    let leecher = session().await;
    let mut params = AddTorrentParams::new(meta, leech_dir.path());
    params.peers = vec![seeder.local_addr()];
    let handle = leecher.add_torrent(params).await.unwrap();
    let stats = complete(&handle, 60).await;
    assert_eq!(stats.state, TorrentState::Seeding);
    for (path, data) in files {
        let got = std::fs::read(leech_dir.path().join("multi").join(path)).unwrap();
        assert_eq!(&got[..], *data, "{path}");
    }
    leecher.shutdown().await;
    seeder.shutdown().await;
}

#[tokio::test]
async fn memory_backend_transfer() {
    logs();
    let data = payload(1_000_000, 6);
    let files: &[(&str, &[u8])] = &[("x", &data), ("y", &data[..1000])];
    let meta = torrent("mem", files, 32 * 1024);
    let lens = [data.len() as u64, 1000];

    let seed_backend = MemoryBackend::new(&lens);
    seed_backend.set_file(0, Some(data.clone()));
    seed_backend.set_file(1, Some(data[..1000].to_vec()));
    let seeder = session().await;
    let mut params = AddTorrentParams::new(meta.clone(), "/nonexistent");
    params.storage = StorageKind::Backend(Box::new(seed_backend));
    let seed = seeder.add_torrent(params).await.unwrap();
    assert_eq!(seed.stats().state, TorrentState::Seeding);

    let leech_backend = std::sync::Arc::new(MemoryBackend::new(&lens));
    let leecher = session().await;
    let mut params = AddTorrentParams::new(meta, "/nonexistent");
    params.storage = StorageKind::Backend(Box::new(std::sync::Arc::clone(&leech_backend)));
    params.peers = vec![seeder.local_addr()];
    let handle = leecher.add_torrent(params).await.unwrap();
    complete(&handle, 60).await;
    assert_eq!(leech_backend.file(0).unwrap(), data);
    assert_eq!(leech_backend.file(1).unwrap(), &data[..1000]);
    leecher.shutdown().await;
    seeder.shutdown().await;
}

#[tokio::test]
async fn swarm_of_one_seed_and_three_leechers_share_pieces() {
    logs();
    let data = payload(8 * 1024 * 1024, 7);
    let files: &[(&str, &[u8])] = &[("", &data)];
    let meta = torrent("swarm.bin", files, 64 * 1024);
    let seed_dir = tempfile::tempdir().unwrap();
    write_files(seed_dir.path(), "swarm.bin", files);
    let seeder = session().await;
    seeder
        .add_torrent(AddTorrentParams::new(meta.clone(), seed_dir.path()))
        .await
        .unwrap();

    let mut leechers = Vec::new();
    for _ in 0..3 {
        leechers.push((session().await, tempfile::tempdir().unwrap()));
    }
    let addrs: Vec<_> = leechers.iter().map(|(s, _)| s.local_addr()).collect();
    let mut handles = Vec::new();
    for (i, (s, dir)) in leechers.iter().enumerate() {
        let mut params = AddTorrentParams::new(meta.clone(), dir.path());
        params.peers = vec![seeder.local_addr()];
        // Each leecher dials the ones before it, so every pair is connected once.
        params.peers.extend(&addrs[..i]);
        handles.push(s.add_torrent(params).await.unwrap());
    }
    let mut leecher_upload = 0;
    for h in &handles {
        complete(h, 120).await;
    }
    // Let the last `have`s and served counts settle.
    tokio::time::sleep(Duration::from_millis(600)).await;
    for ((_, dir), h) in leechers.iter().zip(&handles) {
        assert_eq!(std::fs::read(dir.path().join("swarm.bin")).unwrap(), data);
        leecher_upload += h.stats().uploaded;
    }
    assert!(
        leecher_upload > 0,
        "leechers uploaded nothing to each other"
    );
    for (s, _) in leechers {
        s.shutdown().await;
    }
    seeder.shutdown().await;
}

#[tokio::test]
async fn resumed_download_fetches_only_missing_pieces() {
    logs();
    let piece_len = 64 * 1024u32;
    let data = payload(40 * piece_len as usize, 8);
    let files: &[(&str, &[u8])] = &[("", &data)];
    let meta = torrent("resume.bin", files, piece_len);

    // A seeder with only the first half: the leecher stops at exactly half.
    let half_dir = tempfile::tempdir().unwrap();
    let mut half = data.clone();
    half[20 * piece_len as usize..].fill(0);
    write_files(half_dir.path(), "resume.bin", &[("", &half)]);
    let half_seeder = session().await;
    let h = half_seeder
        .add_torrent(AddTorrentParams::new(meta.clone(), half_dir.path()))
        .await
        .unwrap();
    assert_eq!(h.stats().pieces_have, 20);

    let dir = tempfile::tempdir().unwrap();
    let leecher = session().await;
    let mut params = AddTorrentParams::new(meta.clone(), dir.path());
    params.peers = vec![half_seeder.local_addr()];
    let handle = leecher.add_torrent(params).await.unwrap();
    let mut stats = handle.subscribe();
    tokio::time::timeout(
        Duration::from_secs(60),
        stats.wait_for(|s| s.pieces_have == 20),
    )
    .await
    .expect("first half arrives")
    .unwrap();
    leecher.shutdown().await;
    half_seeder.shutdown().await;
    assert!(
        bt_engine::session::resume_path(dir.path(), &meta.info_hash.unwrap()).exists(),
        "resume state saved at shutdown"
    );

    // Restart against a full seeder: the first half is trusted from the resume file.
    let full_dir = tempfile::tempdir().unwrap();
    write_files(full_dir.path(), "resume.bin", files);
    let seeder = session().await;
    seeder
        .add_torrent(AddTorrentParams::new(meta.clone(), full_dir.path()))
        .await
        .unwrap();
    let leecher = session().await;
    let mut params = AddTorrentParams::new(meta, dir.path());
    params.peers = vec![seeder.local_addr()];
    let handle = leecher.add_torrent(params).await.unwrap();
    assert_eq!(handle.stats().pieces_have, 20, "verified half restored");
    let stats = complete(&handle, 60).await;
    let missing = 20 * u64::from(piece_len);
    assert!(
        stats.downloaded >= missing,
        "downloaded {}",
        stats.downloaded
    );
    // Endgame may fetch a few blocks twice, never the half we had.
    assert!(
        stats.downloaded < missing + missing / 4,
        "downloaded {}",
        stats.downloaded
    );
    assert_eq!(std::fs::read(dir.path().join("resume.bin")).unwrap(), data);
    leecher.shutdown().await;
    seeder.shutdown().await;
}

#[tokio::test]
async fn missing_download_folder_is_a_clear_error() {
    let data = payload(1000, 9);
    let meta = torrent("x", &[("", &data)], 16 * 1024);
    let s = session().await;
    let err = s
        .add_torrent(AddTorrentParams::new(meta, "/nonexistent/bt-test-folder"))
        .await
        .unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("/nonexistent/bt-test-folder"), "{msg}");
    s.shutdown().await;
}

#[tokio::test]
async fn disk_full_stops_the_torrent_with_a_clear_error() {
    logs();
    let data = payload(2_000_000, 11);
    let files: &[(&str, &[u8])] = &[("", &data)];
    let meta = torrent("full.bin", files, 64 * 1024);
    let seed_dir = tempfile::tempdir().unwrap();
    write_files(seed_dir.path(), "full.bin", files);
    let seeder = session().await;
    seeder
        .add_torrent(AddTorrentParams::new(meta.clone(), seed_dir.path()))
        .await
        .unwrap();

    let disk = std::sync::Arc::new(bt_engine::storage::FaultyBackend::new(MemoryBackend::new(
        &[data.len() as u64],
    )));
    disk.fail_writes_after(500_000);
    let leecher = session().await;
    let mut params = AddTorrentParams::new(meta, "/nonexistent");
    params.storage = StorageKind::Backend(Box::new(std::sync::Arc::clone(&disk)));
    params.peers = vec![seeder.local_addr()];
    let handle = leecher.add_torrent(params).await.unwrap();
    let err = tokio::time::timeout(Duration::from_secs(30), handle.wait_complete())
        .await
        .expect("torrent stops")
        .unwrap_err();
    assert!(err.to_string().contains("disk full"), "{err}");
    let stats = handle.stats();
    assert!(
        matches!(stats.state, TorrentState::Error(_)),
        "{:?}",
        stats.state
    );
    assert_eq!(stats.peers, 0, "peers dropped when the torrent stops");
    assert!(stats.pieces_have < stats.pieces_total);
    leecher.shutdown().await;
    seeder.shutdown().await;
}

/// Names of this process's threads.
fn thread_names() -> Vec<String> {
    std::fs::read_dir("/proc/self/task")
        .map(|d| {
            d.flatten()
                .filter_map(|t| std::fs::read_to_string(t.path().join("comm")).ok())
                .map(|n| n.trim().to_string())
                .collect()
        })
        .unwrap_or_default()
}

/// A torrent that only seeds starts no disk threads; one that downloads starts its
/// writer, hasher and syncer.
#[tokio::test]
async fn a_seeding_torrent_costs_no_disk_threads() {
    let data = payload(300_000, 77);
    let files: &[(&str, &[u8])] = &[("", &data)];
    let meta = torrent("threads.bin", files, 32 * 1024);
    let hex = meta.info_hash.unwrap().to_hex();
    let ours = |names: &[String]| -> usize {
        names
            .iter()
            .filter(|n| {
                n.starts_with(&format!("bt-disk-{}", &hex[..7]))
                    || n == &&format!("bt-hash-{}", &hex[..7])
                    || n == &&format!("bt-sync-{}", &hex[..7])
            })
            .count()
    };
    let seed_dir = tempfile::tempdir().unwrap();
    write_files(seed_dir.path(), "threads.bin", files);
    let seeder = session().await;
    let seed = seeder
        .add_torrent(AddTorrentParams::new(meta.clone(), seed_dir.path()))
        .await
        .unwrap();
    complete(&seed, 10).await;
    assert_eq!(ours(&thread_names()), 0, "a seed needs no disk threads");

    let leech_dir = tempfile::tempdir().unwrap();
    let leecher = session().await;
    let mut params = AddTorrentParams::new(meta.clone(), leech_dir.path());
    params.peers = vec![seeder.local_addr()];
    let leech = leecher.add_torrent(params).await.unwrap();
    complete(&leech, 30).await;
    assert_eq!(
        ours(&thread_names()),
        3,
        "the download ran its writer, hasher and syncer"
    );
    assert_eq!(
        std::fs::read(leech_dir.path().join("threads.bin")).unwrap(),
        data
    );
}
