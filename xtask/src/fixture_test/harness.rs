//! `harness-*` scenarios: the external clients against each other, proving the drivers,
//! payloads and comparisons work before `bt` is involved; plus the shared-fixtures check.

use std::time::{Duration, Instant};

use anyhow::{ensure, Context, Result};
use sha1::{Digest, Sha1};

use super::torrents::{Shape, TestTorrent};
use super::{Ctx, Need, Scenario};
use crate::bdecode;
use crate::layout;
use crate::payload::{CompareOptions, MIB};
use crate::peers::aria2::Aria2;
use crate::peers::libtorrent::{LtSession, SessionOptions};
use crate::peers::opentracker::{announce_url, Announce, Opentracker};
use crate::peers::transmission::{show_info_hash, TransmissionDaemon};

/// Time for a client to hash-check a payload before seeding.
pub const CHECK_TIMEOUT: Duration = Duration::from_secs(90);
/// Time for a loopback transfer between two clients.
pub const TRANSFER_TIMEOUT: Duration = Duration::from_secs(120);
/// Transfers involving Transmission: its first payload byte comes ~11 s after start.
pub const TRANSMISSION_TIMEOUT: Duration = Duration::from_secs(150);

/// The harness self-tests.
pub static SCENARIOS: &[Scenario] = &[
    Scenario {
        name: "shared-fixtures-present",
        needs: &[Need::SharedFixtures],
        run: shared_fixtures_present,
    },
    Scenario {
        name: "harness-info-hash-agrees",
        needs: &[Need::Libtorrent, Need::Transmission],
        run: info_hash_agrees,
    },
    Scenario {
        name: "harness-opentracker-announce",
        needs: &[Need::Opentracker, Need::Libtorrent],
        run: opentracker_announce,
    },
    Scenario {
        name: "harness-libtorrent-to-libtorrent-single",
        needs: &[Need::Libtorrent],
        run: |ctx| libtorrent_to_libtorrent(ctx, Shape::Single),
    },
    Scenario {
        name: "harness-libtorrent-to-libtorrent-multi-file",
        needs: &[Need::Libtorrent],
        run: |ctx| libtorrent_to_libtorrent(ctx, Shape::MultiFile),
    },
    Scenario {
        name: "harness-libtorrent-upload-limit",
        needs: &[Need::Libtorrent],
        run: libtorrent_upload_limit,
    },
    Scenario {
        name: "harness-transmission-to-libtorrent",
        needs: &[Need::Transmission, Need::Libtorrent],
        run: transmission_to_libtorrent,
    },
    Scenario {
        name: "harness-libtorrent-to-transmission",
        needs: &[Need::Transmission, Need::Libtorrent],
        run: libtorrent_to_transmission,
    },
    Scenario {
        name: "harness-aria2-to-libtorrent",
        needs: &[Need::Aria2, Need::Libtorrent],
        run: aria2_to_libtorrent,
    },
    Scenario {
        name: "harness-libtorrent-to-aria2-via-opentracker",
        needs: &[Need::Aria2, Need::Opentracker, Need::Libtorrent],
        run: libtorrent_to_aria2_via_opentracker,
    },
];

/// The shared third-party fixtures are where the corpus tests expect them.
fn shared_fixtures_present(_ctx: &Ctx) -> Result<()> {
    let root = layout::shared_fixtures();
    for rel in [
        "torrents/manifest.json",
        "bencode/vectors.json",
        "magnet/vectors.json",
    ] {
        ensure!(
            root.join(rel).is_file(),
            "missing {}",
            root.join(rel).display()
        );
    }
    for dir in ["torrents/valid", "torrents/invalid"] {
        let count = std::fs::read_dir(root.join(dir))?
            .filter_map(|e| e.ok())
            .filter(|e| e.path().extension().is_some_and(|x| x == "torrent"))
            .count();
        ensure!(
            count > 0,
            "no .torrent files in {}",
            root.join(dir).display()
        );
    }
    Ok(())
}

/// libtorrent, transmission-show and a SHA-1 of the raw `info` bytes agree on the
/// info-hash of libtorrent-made torrents (so either tool can serve as an oracle).
fn info_hash_agrees(ctx: &Ctx) -> Result<()> {
    for shape in [Shape::MultiFile, Shape::Single] {
        let t = TestTorrent::make(&ctx.sandbox, shape, &[])?;
        let raw = std::fs::read(&t.torrent)?;
        let info = bdecode::dict_entry_bytes(&raw, b"info")?.context("no info dictionary")?;
        let ours = hex::encode(Sha1::digest(info));
        let tr = show_info_hash(&t.torrent)?;
        ensure!(
            ours == t.info.info_hash && ours == tr,
            "{shape:?}: SHA-1 of info {ours}, libtorrent {}, transmission-show {tr}",
            t.info.info_hash
        );
    }
    Ok(())
}

/// opentracker answers a whitelisted info-hash with an interval and the peers announced
/// before, and refuses one not on its list.
fn opentracker_announce(ctx: &Ctx) -> Result<()> {
    let allowed = [0x11u8; 20];
    let refused = [0x22u8; 20];
    let tracker_addr = ctx.sandbox.addr()?;
    let tracker = Opentracker::start(
        &ctx.sandbox,
        "opentracker",
        tracker_addr,
        &[&hex::encode(allowed)],
    )?;
    let seed = Announce {
        info_hash: allowed,
        peer_id: *b"-XT0001-seedseedseed",
        port: 6881,
        left: 0,
    };
    let first = tracker.announce(&seed)?;
    ensure!(
        first.failure.is_none(),
        "whitelisted hash refused: {:?}",
        first.failure
    );
    ensure!(
        first.interval.is_some_and(|i| i > 0),
        "no interval in {first:?}"
    );

    let leech = Announce {
        peer_id: *b"-XT0001-leechleechle",
        port: 6882,
        left: 1000,
        ..seed.clone()
    };
    let second = tracker.announce(&leech)?;
    let expected = "127.0.0.1:6881".parse()?;
    ensure!(
        second.peers.contains(&expected),
        "the seed's announce is not handed out: {second:?}"
    );

    let other = tracker.announce(&Announce {
        info_hash: refused,
        ..seed
    })?;
    ensure!(
        other.failure.is_some(),
        "hash not on the whitelist was answered: {other:?}"
    );
    Ok(())
}

/// libtorrent seeds, a second libtorrent session downloads.
fn libtorrent_to_libtorrent(ctx: &Ctx, shape: Shape) -> Result<()> {
    let sb = &ctx.sandbox;
    let t = TestTorrent::make(sb, shape, &[])?;
    let expected_pieces = shape.total_len().div_ceil(shape.piece_len());
    ensure!(
        t.info.num_pieces == expected_pieces
            && !shape.total_len().is_multiple_of(shape.piece_len()),
        "payload should end in a short piece: {} pieces",
        t.info.num_pieces
    );
    let mut seed = LtSession::seed(
        sb,
        "lt-seed",
        &t.torrent,
        &t.data_dir,
        &SessionOptions::default(),
    )?;
    seed.wait_seeding(CHECK_TIMEOUT)?;
    let out = sb.mkdir("download")?;
    let opts = SessionOptions {
        peers: vec![seed.addr()],
        ..SessionOptions::default()
    };
    let mut leech = LtSession::download(sb, "lt-leech", &t.torrent, &out, &opts)?;
    leech.wait_seeding(TRANSFER_TIMEOUT)?;
    t.check_copy(&out, CompareOptions::default())?;
    let sent = seed.fresh_status()?.total_payload_upload;
    ensure!(
        sent >= t.info.total_size,
        "seeder reports {sent} payload bytes sent, less than the {} downloaded",
        t.info.total_size
    );
    Ok(())
}

/// A libtorrent seeder's upload limit holds on loopback (scenarios that must interrupt a
/// transfer half-way rely on it).
fn libtorrent_upload_limit(ctx: &Ctx) -> Result<()> {
    let sb = &ctx.sandbox;
    let t = TestTorrent::make(sb, Shape::Single, &[])?;
    let limit = 16 * MIB;
    let opts = SessionOptions {
        upload_limit: limit,
        ..SessionOptions::default()
    };
    let mut seed = LtSession::seed(sb, "lt-seed", &t.torrent, &t.data_dir, &opts)?;
    seed.wait_seeding(CHECK_TIMEOUT)?;
    let out = sb.mkdir("download")?;
    let opts = SessionOptions {
        peers: vec![seed.addr()],
        ..SessionOptions::default()
    };
    let started = Instant::now();
    let mut leech = LtSession::download(sb, "lt-leech", &t.torrent, &out, &opts)?;
    leech.wait_seeding(TRANSFER_TIMEOUT)?;
    let took = started.elapsed().as_secs_f64();
    let floor = 0.7 * t.info.total_size as f64 / limit as f64;
    ctx.note(format!(
        "{:.1} MiB/s at a {} MiB/s limit",
        t.info.total_size as f64 / took / MIB as f64,
        limit / MIB
    ));
    ensure!(
        took >= floor,
        "{} bytes at {limit} B/s took {took:.1}s, less than {floor:.1}s: the limit does not hold",
        t.info.total_size
    );
    t.check_copy(&out, CompareOptions::default())
}

/// transmission-daemon seeds the multi-file tree, libtorrent downloads it.
fn transmission_to_libtorrent(ctx: &Ctx) -> Result<()> {
    let sb = &ctx.sandbox;
    let t = TestTorrent::make(sb, Shape::MultiFile, &[])?;
    let mut tr = TransmissionDaemon::start(sb, "transmission-seed", &t.data_dir)?;
    tr.add(&t.torrent, &t.data_dir)?;
    tr.wait_complete(CHECK_TIMEOUT)?;
    let out = sb.mkdir("download")?;
    let opts = SessionOptions {
        peers: vec![tr.peer_addr()],
        ..SessionOptions::default()
    };
    let mut leech = LtSession::download(sb, "lt-leech", &t.torrent, &out, &opts)?;
    leech.wait_seeding(TRANSMISSION_TIMEOUT)?;
    t.check_copy(&out, CompareOptions::default())
}

/// libtorrent seeds and dials transmission-daemon, which downloads (it never dials
/// loopback peers itself).
fn libtorrent_to_transmission(ctx: &Ctx) -> Result<()> {
    let sb = &ctx.sandbox;
    let t = TestTorrent::make(sb, Shape::MultiFile, &[])?;
    let out = sb.mkdir("download")?;
    let mut tr = TransmissionDaemon::start(sb, "transmission-leech", &out)?;
    tr.add(&t.torrent, &out)?;
    let opts = SessionOptions {
        peers: vec![tr.peer_addr()],
        ..SessionOptions::default()
    };
    let mut seed = LtSession::seed(sb, "lt-seed", &t.torrent, &t.data_dir, &opts)?;
    seed.wait_seeding(CHECK_TIMEOUT)?;
    tr.wait_complete(TRANSMISSION_TIMEOUT)?;
    let lenient = CompareOptions {
        missing_empty_files_ok: true,
    };
    t.check_copy(&out, lenient)
}

/// aria2 seeds; libtorrent dials it and downloads.
fn aria2_to_libtorrent(ctx: &Ctx) -> Result<()> {
    let sb = &ctx.sandbox;
    let t = TestTorrent::make(sb, Shape::MultiFile, &[])?;
    let mut aria2 = Aria2::seed(sb, "aria2-seed", &t.torrent, &t.data_dir)?;
    aria2.wait_seeding(CHECK_TIMEOUT)?;
    let out = sb.mkdir("download")?;
    let opts = SessionOptions {
        peers: vec![aria2.listen_addr()],
        ..SessionOptions::default()
    };
    let mut leech = LtSession::download(sb, "lt-leech", &t.torrent, &out, &opts)?;
    leech.wait_seeding(TRANSFER_TIMEOUT)?;
    t.check_copy(&out, CompareOptions::default())
}

/// libtorrent seeds and announces to opentracker; aria2 finds it there and downloads.
fn libtorrent_to_aria2_via_opentracker(ctx: &Ctx) -> Result<()> {
    let sb = &ctx.sandbox;
    let tracker_addr = sb.addr()?;
    let t = TestTorrent::make(sb, Shape::MultiFile, &[announce_url(tracker_addr)])?;
    let _tracker = Opentracker::start(sb, "opentracker", tracker_addr, &[&t.info.info_hash])?;
    let mut seed = LtSession::seed(
        sb,
        "lt-seed",
        &t.torrent,
        &t.data_dir,
        &SessionOptions::default(),
    )?;
    seed.wait_seeding(CHECK_TIMEOUT)?;
    let out = sb.mkdir("download")?;
    let mut aria2 = Aria2::download(sb, "aria2-leech", &t.torrent, &out)?;
    aria2.wait_done(TRANSFER_TIMEOUT)?;
    t.check_copy(&out, CompareOptions::default())
}
