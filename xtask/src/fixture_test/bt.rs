//! `bt-*` scenarios: our `bt` against libtorrent, Transmission, aria2 and itself.
//!
//! Each needs `Need::Bt(subcommand)`, so it is skipped (`bt <sub> not implemented yet`)
//! until the CLI has that subcommand. They are written against the CLI described in
//! [`crate::peers::bt`], including its assumptions (the `uploaded: <bytes>` line of
//! `bt seed`).

use std::collections::BTreeSet;
use std::fs;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use anyhow::{bail, ensure, Context, Result};

use super::harness::{CHECK_TIMEOUT, TRANSFER_TIMEOUT, TRANSMISSION_TIMEOUT};
use super::torrents::{piece_hashes, piece_len_at, verified_pieces, Shape, TestTorrent};
use super::{Ctx, Need, Scenario};
use crate::deadline::Deadline;
use crate::payload::{self, CompareOptions, MIB};
use crate::peers::aria2::Aria2;
use crate::peers::libtorrent::{self, LtSession, SessionOptions};
use crate::peers::opentracker::{announce_url, Announce, Opentracker};
use crate::peers::transmission::{self, TransmissionDaemon};

/// The scenarios for `bt` itself.
pub static BT_SCENARIOS: &[Scenario] = &[
    Scenario {
        name: "bt-info-matches-libtorrent",
        needs: &[Need::Libtorrent, Need::Bt("info")],
        run: info_matches_libtorrent,
    },
    Scenario {
        name: "bt-create-loads-in-libtorrent-and-transmission",
        needs: &[
            Need::Libtorrent,
            Need::Transmission,
            Need::Bt("create"),
            Need::Bt("info"),
        ],
        run: create_loads_elsewhere,
    },
    Scenario {
        name: "bt-verify-accepts-good-and-rejects-corrupt-data",
        needs: &[Need::Libtorrent, Need::Bt("verify")],
        run: verify_good_and_corrupt,
    },
    Scenario {
        name: "bt-download-from-libtorrent-single",
        needs: &[Need::Libtorrent, Need::Bt("download")],
        run: |ctx| download_from(ctx, Client::Libtorrent, Shape::Single),
    },
    Scenario {
        name: "bt-download-from-libtorrent-multi-file",
        needs: &[Need::Libtorrent, Need::Bt("download")],
        run: |ctx| download_from(ctx, Client::Libtorrent, Shape::MultiFile),
    },
    Scenario {
        name: "bt-download-from-transmission-single",
        needs: &[Need::Libtorrent, Need::Transmission, Need::Bt("download")],
        run: |ctx| download_from(ctx, Client::Transmission, Shape::Single),
    },
    Scenario {
        name: "bt-download-from-transmission-multi-file",
        needs: &[Need::Libtorrent, Need::Transmission, Need::Bt("download")],
        run: |ctx| download_from(ctx, Client::Transmission, Shape::MultiFile),
    },
    Scenario {
        name: "bt-download-from-aria2-single",
        needs: &[Need::Libtorrent, Need::Aria2, Need::Bt("download")],
        run: |ctx| download_from(ctx, Client::Aria2, Shape::Single),
    },
    Scenario {
        name: "bt-download-from-aria2-multi-file",
        needs: &[Need::Libtorrent, Need::Aria2, Need::Bt("download")],
        run: |ctx| download_from(ctx, Client::Aria2, Shape::MultiFile),
    },
    Scenario {
        name: "bt-seed-to-libtorrent-single",
        needs: &[Need::Libtorrent, Need::Bt("seed")],
        run: |ctx| seed_to(ctx, Client::Libtorrent, Shape::Single),
    },
    Scenario {
        name: "bt-seed-to-libtorrent-multi-file",
        needs: &[Need::Libtorrent, Need::Bt("seed")],
        run: |ctx| seed_to(ctx, Client::Libtorrent, Shape::MultiFile),
    },
    Scenario {
        name: "bt-seed-to-transmission-single",
        needs: &[Need::Libtorrent, Need::Transmission, Need::Bt("seed")],
        run: |ctx| seed_to(ctx, Client::Transmission, Shape::Single),
    },
    Scenario {
        name: "bt-seed-to-transmission-multi-file",
        needs: &[Need::Libtorrent, Need::Transmission, Need::Bt("seed")],
        run: |ctx| seed_to(ctx, Client::Transmission, Shape::MultiFile),
    },
    Scenario {
        name: "bt-seed-to-aria2-via-opentracker-single",
        needs: &[
            Need::Libtorrent,
            Need::Aria2,
            Need::Opentracker,
            Need::Bt("seed"),
        ],
        run: |ctx| seed_to(ctx, Client::Aria2, Shape::Single),
    },
    Scenario {
        name: "bt-seed-to-aria2-via-opentracker-multi-file",
        needs: &[
            Need::Libtorrent,
            Need::Aria2,
            Need::Opentracker,
            Need::Bt("seed"),
        ],
        run: |ctx| seed_to(ctx, Client::Aria2, Shape::MultiFile),
    },
    Scenario {
        name: "bt-swarm-one-seed-four-downloads",
        needs: &[Need::Libtorrent, Need::Bt("seed"), Need::Bt("download")],
        run: swarm_one_seed_four_downloads,
    },
    Scenario {
        name: "bt-download-resumes-after-sigkill",
        needs: &[Need::Libtorrent, Need::Bt("download")],
        run: download_resumes_after_sigkill,
    },
];

/// An external client on the other end of a transfer.
#[derive(Clone, Copy, Debug)]
enum Client {
    Libtorrent,
    Transmission,
    Aria2,
}

impl Client {
    /// How long a whole transfer with this client may take.
    fn transfer_timeout(self) -> Duration {
        match self {
            Client::Transmission => TRANSMISSION_TIMEOUT,
            Client::Libtorrent | Client::Aria2 => TRANSFER_TIMEOUT,
        }
    }

    /// What a copy made by this client may lack.
    fn compare_options(self) -> CompareOptions {
        CompareOptions {
            // Transmission does not create 0-byte files.
            missing_empty_files_ok: matches!(self, Client::Transmission),
        }
    }
}

/// A running external client; killed on drop. Held only to keep it alive.
#[allow(dead_code)]
enum Running {
    Libtorrent(LtSession),
    Transmission(TransmissionDaemon),
    Aria2(Aria2),
}

/// Starts `client` seeding `t` and returns it with the address to dial.
fn start_seeder(ctx: &Ctx, client: Client, t: &TestTorrent) -> Result<(Running, SocketAddr)> {
    let sb = &ctx.sandbox;
    Ok(match client {
        Client::Libtorrent => {
            let mut lt = LtSession::seed(
                sb,
                "lt-seed",
                &t.torrent,
                &t.data_dir,
                &SessionOptions::default(),
            )?;
            lt.wait_seeding(CHECK_TIMEOUT)?;
            let addr = lt.addr();
            (Running::Libtorrent(lt), addr)
        }
        Client::Transmission => {
            let mut tr = TransmissionDaemon::start(sb, "transmission-seed", &t.data_dir)?;
            tr.add(&t.torrent, &t.data_dir)?;
            tr.wait_complete(CHECK_TIMEOUT)?;
            let addr = tr.peer_addr();
            (Running::Transmission(tr), addr)
        }
        Client::Aria2 => {
            let mut aria2 = Aria2::seed(sb, "aria2-seed", &t.torrent, &t.data_dir)?;
            aria2.wait_seeding(CHECK_TIMEOUT)?;
            let addr = aria2.listen_addr();
            (Running::Aria2(aria2), addr)
        }
    })
}

/// `bt info --json` gives libtorrent's info-hash.
fn info_matches_libtorrent(ctx: &Ctx) -> Result<()> {
    for shape in [Shape::MultiFile, Shape::Single] {
        let t = TestTorrent::make(&ctx.sandbox, shape, &[])?;
        let ours = bt_info_hash(ctx, &t.torrent)?;
        ensure!(
            ours == t.info.info_hash,
            "{shape:?}: bt info says {ours}, libtorrent says {}",
            t.info.info_hash
        );
    }
    Ok(())
}

/// `info_hash` of `bt info --json`, lowercase.
fn bt_info_hash(ctx: &Ctx, torrent: &Path) -> Result<String> {
    let json = ctx.bt.info_json(torrent)?;
    let hash = json["info_hash"]
        .as_str()
        .with_context(|| format!("no string `info_hash` in `bt info --json`: {json}"))?;
    Ok(hash.to_ascii_lowercase())
}

/// A torrent from `bt create` loads in libtorrent and transmission-show with the info-hash
/// `bt info` reports, and has the right files and piece hashes.
fn create_loads_elsewhere(ctx: &Ctx) -> Result<()> {
    for shape in [Shape::Single, Shape::MultiFile] {
        let data = ctx.sandbox.mkdir(&format!("{shape:?}"))?;
        let content = shape.write(&data)?;
        let name = content
            .file_name()
            .context("payload has a name")?
            .to_string_lossy()
            .into_owned();
        let torrent = ctx.sandbox.path().join(format!("{name}-by-bt.torrent"));
        let piece_len = shape.piece_len().to_string();
        ctx.bt.create(
            &content,
            &torrent,
            &[
                "--piece-length",
                &piece_len,
                "--tracker",
                "http://127.0.0.1:6969/announce",
                "--comment",
                "made by bt fixture-test",
            ],
        )?;
        let lt = libtorrent::info(&torrent).context("libtorrent cannot load bt's torrent")?;
        let tr = transmission::show_info_hash(&torrent)
            .context("transmission-show cannot load bt's torrent")?;
        let ours = bt_info_hash(ctx, &torrent)?;
        ensure!(
            lt.info_hash == tr && tr == ours,
            "{shape:?}: info-hashes differ: libtorrent {}, transmission {tr}, bt {ours}",
            lt.info_hash
        );
        ensure!(
            lt.name == name,
            "{shape:?}: name {:?}, expected {name:?}",
            lt.name
        );
        ensure!(
            lt.piece_length == shape.piece_len() && lt.total_size == shape.total_len(),
            "{shape:?}: piece length {} / total {}, expected {} / {}",
            lt.piece_length,
            lt.total_size,
            shape.piece_len(),
            shape.total_len()
        );
        ensure!(
            lt.files.iter().all(|f| !f.pad),
            "{shape:?}: unexpected padding files"
        );
        let got: BTreeSet<(String, u64)> =
            lt.files.iter().map(|f| (f.path.clone(), f.size)).collect();
        let want: BTreeSet<(String, u64)> = match shape {
            Shape::Single => [(name.clone(), shape.total_len())].into(),
            Shape::MultiFile => payload::tree_layout(shape.piece_len())
                .into_iter()
                .map(|(rel, len)| (format!("{name}/{rel}"), len))
                .collect(),
        };
        ensure!(got == want, "{shape:?}: files {got:?}, expected {want:?}");
        // Piece hashes computed here, over the files in the order the torrent lists them.
        let paths: Vec<_> = lt.files.iter().map(|f| data.join(&f.path)).collect();
        let hashes = piece_hashes(&paths, shape.piece_len())?;
        ensure!(
            hashes == lt.piece_hashes,
            "{shape:?}: piece hashes do not match the data"
        );
    }
    Ok(())
}

/// `bt verify` passes intact data and fails after one flipped byte.
fn verify_good_and_corrupt(ctx: &Ctx) -> Result<()> {
    let t = TestTorrent::make(&ctx.sandbox, Shape::MultiFile, &[])?;
    ensure!(
        ctx.bt.verify(&t.torrent, &t.data_dir)?,
        "bt verify rejected intact data"
    );
    let victim = t.content.join("sub/deeper/c.bin");
    let mut bytes = fs::read(&victim)?;
    bytes[1000] ^= 0x01;
    fs::write(&victim, bytes)?;
    ensure!(
        !ctx.bt.verify(&t.torrent, &t.data_dir)?,
        "bt verify accepted data with a flipped byte in {}",
        victim.display()
    );
    Ok(())
}

/// `client` seeds; `bt download --peer` dials it and must exit 0 with a byte-identical copy.
fn download_from(ctx: &Ctx, client: Client, shape: Shape) -> Result<()> {
    let sb = &ctx.sandbox;
    let t = TestTorrent::make(sb, shape, &[])?;
    let (_seeder, seeder_addr) = start_seeder(ctx, client, &t)?;
    let out = sb.mkdir("download")?;
    let mut bt = ctx.bt.download(
        sb,
        "bt-download",
        &t.torrent,
        &out,
        sb.addr()?,
        &[seeder_addr],
    )?;
    bt.wait_success(client.transfer_timeout())?;
    t.check_copy(&out, CompareOptions::default())
}

/// `bt seed` serves `client`, which must end with a byte-identical copy.
fn seed_to(ctx: &Ctx, client: Client, shape: Shape) -> Result<()> {
    let sb = &ctx.sandbox;
    let out = sb.mkdir("download")?;
    match client {
        Client::Libtorrent => {
            let t = TestTorrent::make(sb, shape, &[])?;
            let seed = ctx
                .bt
                .seed(sb, "bt-seed", &t.torrent, &t.data_dir, sb.addr()?, &[])?;
            let opts = SessionOptions {
                peers: vec![seed.addr()],
                ..SessionOptions::default()
            };
            let mut lt = LtSession::download(sb, "lt-leech", &t.torrent, &out, &opts)?;
            lt.wait_seeding(client.transfer_timeout())?;
            t.check_copy(&out, client.compare_options())
        }
        Client::Transmission => {
            // Transmission never dials loopback peers: bt must dial it.
            let t = TestTorrent::make(sb, shape, &[])?;
            let mut tr = TransmissionDaemon::start(sb, "transmission-leech", &out)?;
            tr.add(&t.torrent, &out)?;
            let _seed = ctx.bt.seed(
                sb,
                "bt-seed",
                &t.torrent,
                &t.data_dir,
                sb.addr()?,
                &[tr.peer_addr()],
            )?;
            tr.wait_complete(client.transfer_timeout())?;
            t.check_copy(&out, client.compare_options())
        }
        Client::Aria2 => {
            // aria2 takes peers only from a tracker. The harness announces bt's listen
            // port itself (opentracker records the announce's source, 127.0.0.1), so this
            // tests bt's wire protocol with aria2, not bt's tracker client.
            let tracker_addr = sb.addr()?;
            let t = TestTorrent::make(sb, shape, &[announce_url(tracker_addr)])?;
            let tracker =
                Opentracker::start(sb, "opentracker", tracker_addr, &[&t.info.info_hash])?;
            let seed = ctx
                .bt
                .seed(sb, "bt-seed", &t.torrent, &t.data_dir, sb.addr()?, &[])?;
            let reply = tracker.announce(&Announce {
                info_hash: t.info_hash()?,
                peer_id: *b"-XT0001-onbehalfofbt",
                port: seed.addr().port(),
                left: 0,
            })?;
            ensure!(
                reply.failure.is_none(),
                "tracker refused: {:?}",
                reply.failure
            );
            let mut aria2 = Aria2::download(sb, "aria2-leech", &t.torrent, &out)?;
            aria2.wait_done(client.transfer_timeout())?;
            t.check_copy(&out, client.compare_options())
        }
    }
}

/// One `bt seed` and four `bt download`s, each told of all the others: every copy is
/// intact and the seed uploaded at least one copy but fewer than four (the downloaders
/// traded pieces among themselves).
fn swarm_one_seed_four_downloads(ctx: &Ctx) -> Result<()> {
    const DOWNLOADS: usize = 4;
    let sb = &ctx.sandbox;
    let t = TestTorrent::make(sb, Shape::Single, &[])?;
    let seed = ctx
        .bt
        .seed(sb, "bt-seed", &t.torrent, &t.data_dir, sb.addr()?, &[])?;
    let addrs: Vec<SocketAddr> = (0..DOWNLOADS).map(|_| sb.addr()).collect::<Result<_>>()?;
    let mut downloads = Vec::new();
    for (i, &listen) in addrs.iter().enumerate() {
        let out = sb.mkdir(&format!("download-{i}"))?;
        let peers: Vec<SocketAddr> = std::iter::once(seed.addr())
            .chain(addrs.iter().copied().filter(|&a| a != listen))
            .collect();
        let proc = ctx.bt.download(
            sb,
            &format!("bt-download-{i}"),
            &t.torrent,
            &out,
            listen,
            &peers,
        )?;
        downloads.push((proc, out));
    }
    let deadline = Deadline::after(TRANSFER_TIMEOUT * 2);
    for (proc, out) in &mut downloads {
        proc.wait_success(deadline.remaining())?;
        t.check_copy(out, CompareOptions::default())
            .with_context(|| format!("{} made a bad copy", proc.name()))?;
    }
    let uploaded = seed.stop()?;
    let size = t.info.total_size;
    ctx.note(format!(
        "seed sent {:.2} copies for {DOWNLOADS} downloads",
        uploaded as f64 / size as f64
    ));
    ensure!(
        uploaded >= size,
        "bt seed reports {uploaded} bytes uploaded, less than one copy ({size})"
    );
    ensure!(
        uploaded < DOWNLOADS as u64 * size,
        "bt seed uploaded {uploaded} bytes = {:.2} copies for {DOWNLOADS} downloads: \
         the downloaders did not share pieces",
        uploaded as f64 / size as f64
    );
    Ok(())
}

/// A `bt download` SIGKILLed half-way and restarted completes without fetching again the
/// pieces it had verified on disk (counted from the libtorrent seeder's upload counter).
fn download_resumes_after_sigkill(ctx: &Ctx) -> Result<()> {
    let sb = &ctx.sandbox;
    let t = TestTorrent::make(sb, Shape::Single, &[])?;
    let size = t.info.total_size;
    // Throttled so the kill lands mid-transfer (about 4 s for the whole payload).
    let opts = SessionOptions {
        upload_limit: 16 * MIB,
        ..SessionOptions::default()
    };
    let mut seeder = LtSession::seed(sb, "lt-seed", &t.torrent, &t.data_dir, &opts)?;
    seeder.wait_seeding(CHECK_TIMEOUT)?;
    let out = sb.mkdir("download")?;

    let mut first = ctx.bt.download(
        sb,
        "bt-download-1",
        &t.torrent,
        &out,
        sb.addr()?,
        &[seeder.addr()],
    )?;
    seeder.wait_for(TRANSFER_TIMEOUT, "half the payload uploaded", |s| {
        s.total_payload_upload >= size / 2
    })?;
    let status = first.kill()?;
    if status.success() {
        bail!("bt finished before it could be killed half-way");
    }
    let before = seeder
        .wait_for(
            Duration::from_secs(30),
            "the killed peer to disconnect",
            |s| s.num_peers == 0,
        )?
        .total_payload_upload;

    let good = verified_pieces(&out.join(&t.info.name), &t.info)?;
    let good_count = good.iter().filter(|&&g| g).count();
    let missing_len: u64 = (0..good.len())
        .filter(|&i| !good[i])
        .map(|i| piece_len_at(&t.info, i))
        .sum();
    ensure!(
        good_count > 0,
        "no verified piece on disk after the seeder sent {before} bytes (is bt writing pieces?)"
    );
    ensure!(
        good_count < good.len(),
        "bt had every piece before it was killed"
    );

    let mut second = ctx.bt.download(
        sb,
        "bt-download-2",
        &t.torrent,
        &out,
        sb.addr()?,
        &[seeder.addr()],
    )?;
    second.wait_success(TRANSFER_TIMEOUT)?;
    t.check_copy(&out, CompareOptions::default())?;
    let after = seeder.fresh_status()?.total_payload_upload;
    let refetched = after.saturating_sub(before);
    ctx.note(format!(
        "{good_count}/{} pieces verified at the kill; {refetched} bytes fetched after the \
         restart for {missing_len} missing",
        good.len()
    ));
    // Allow for a couple of pieces of requests in flight or re-requested.
    let slack = 2 * t.info.piece_length;
    ensure!(
        refetched <= missing_len + slack,
        "after restart the seeder sent {refetched} bytes, but only {missing_len} bytes of \
         pieces were missing ({good_count}/{} pieces were verified on disk)",
        good.len()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_transmission_may_skip_empty_files() {
        assert!(
            Client::Transmission
                .compare_options()
                .missing_empty_files_ok
        );
        assert!(!Client::Libtorrent.compare_options().missing_empty_files_ok);
        assert!(!Client::Aria2.compare_options().missing_empty_files_ok);
    }
}
