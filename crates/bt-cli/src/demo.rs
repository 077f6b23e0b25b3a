//! `bt demo`: a swarm on 127.0.0.1 in one process, with nothing to set up.
//!
//! In a fresh temporary folder it writes a payload (a few files, one of them empty),
//! creates its torrent, starts one seeder and a few leechers as in-process sessions on
//! 127.0.0.1 that find each other through an in-process tracker (bt-tracker's
//! `TrackerServer`, as `bt tracker` runs it), shows them downloading from the seeder and from each other, checks every
//! copy byte for byte, prints who sent what, and removes the folder.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use bt_engine::proto::choker::ChokerConfig;
use bt_engine::{AddTorrentParams, Session, SessionConfig, TorrentHandle};
use bt_meta::create::{CreateOptions, Source};
use bt_meta::Metainfo;
use bt_tracker::{ServerConfig, TrackerServer};

use crate::download::{runtime, stop_signal};
use crate::format;
use crate::progress::Progress;

/// Arguments of `bt demo`.
#[derive(clap::Args)]
pub struct Args {
    /// Number of leechers.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u16).range(1..=16))]
    leechers: u16,
    /// Payload size in MiB.
    #[arg(long, value_name = "MIB", default_value_t = 64, value_parser = clap::value_parser!(u64).range(1..=4096))]
    size: u64,
}

/// A temporary folder removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Result<Self> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .subsec_nanos();
        let path = std::env::temp_dir().join(format!("bt-demo-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&path).with_context(|| path.display().to_string())?;
        Ok(TempDir(path))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Deterministic filler bytes (xorshift64*), so nothing compresses or repeats.
fn fill(seed: u64, len: u64, out: &mut impl Write) -> std::io::Result<()> {
    let mut x = seed | 1;
    let mut chunk = vec![0u8; 1 << 20];
    let mut left = len;
    while left > 0 {
        let n = left.min(chunk.len() as u64) as usize;
        for word in chunk[..n].chunks_mut(8) {
            x ^= x >> 12;
            x ^= x << 25;
            x ^= x >> 27;
            let v = x.wrapping_mul(0x2545_f491_4f6c_dd1d).to_le_bytes();
            word.copy_from_slice(&v[..word.len()]);
        }
        out.write_all(&chunk[..n])?;
        left -= n as u64;
    }
    Ok(())
}

/// Writes the demo payload under `dir/bt-demo` and returns its torrent, which announces
/// to `tracker`.
fn make_payload(dir: &Path, total: u64, tracker: &str) -> Result<Metainfo> {
    let root = dir.join("bt-demo");
    std::fs::create_dir_all(root.join("docs"))?;
    let files: [(&str, u64); 4] = [
        ("video.bin", total * 3 / 4),
        ("docs/notes.bin", total - total * 3 / 4 - 1000),
        ("docs/readme.txt", 1000),
        ("docs/empty.txt", 0),
    ];
    for (i, (name, len)) in files.iter().enumerate() {
        let mut f = std::io::BufWriter::new(std::fs::File::create(root.join(name))?);
        fill(i as u64 + 1, *len, &mut f)?;
        f.flush()?;
    }
    let source = Source::scan(&root)?;
    let opts = CreateOptions {
        piece_len: Some(256 * 1024),
        trackers: vec![vec![tracker.to_owned()]],
        ..CreateOptions::default()
    };
    let created = source.create(&opts, |_| {})?;
    std::fs::write(dir.join("bt-demo.torrent"), &created.bytes)?;
    Ok(Metainfo::from_bytes(&created.bytes)?)
}

/// Whether every file under `a` equals the one under `b`.
fn same_tree(meta: &Metainfo, a: &Path, b: &Path) -> Result<bool> {
    for f in meta.info.files() {
        let (x, y) = (f.path_under(a), f.path_under(b));
        let x = std::fs::read(&x).with_context(|| x.display().to_string())?;
        let y = std::fs::read(&y).with_context(|| y.display().to_string())?;
        if x != y {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Runs `bt demo`.
pub fn run(args: Args) -> Result<()> {
    let tmp = TempDir::new()?;
    let result = runtime()?.block_on(demo(&args, &tmp.0));
    drop(tmp);
    println!("temporary folder removed");
    result
}

async fn demo(args: &Args, dir: &Path) -> Result<()> {
    let total = args.size << 20;
    println!("working in {}", dir.display());
    let seed_dir = dir.join("seeder");
    std::fs::create_dir_all(&seed_dir)?;
    let local = "127.0.0.1:0".parse()?;
    // The swarm meets through its own tracker: nobody is told another's address.
    let tracker = TrackerServer::bind(local, ServerConfig::default()).await?;
    println!("tracker listening on {}", tracker.http_url());
    let meta = make_payload(&seed_dir, total, &tracker.http_url())?;
    println!(
        "created bt-demo.torrent: {} in {} files, {} pieces of {}, info-hash {}",
        format::size(meta.info.total_len()),
        meta.info.files().len(),
        meta.info.num_pieces(),
        format::size(u64::from(meta.info.piece_len)),
        meta.info_hash.map(|h| h.to_hex()).unwrap_or_default(),
    );

    // The seeder unchokes one peer (plus an optimistic one) at a time, so the leechers
    // have to trade pieces among themselves.
    let mut seed_config = SessionConfig {
        listen_addr: local,
        ..SessionConfig::default()
    };
    seed_config.torrent.choker = ChokerConfig {
        regular_slots: 1,
        ..ChokerConfig::default()
    };
    let seeder = Session::new(seed_config).await?;
    let seed = seeder
        .add_torrent(AddTorrentParams::new(meta.clone(), &seed_dir))
        .await?;
    println!(
        "seeder listening on {}, announcing to the tracker",
        seeder.local_addr()
    );

    let multi = indicatif::MultiProgress::new();
    let mut leechers: Vec<(Session, TorrentHandle, PathBuf, Progress)> = Vec::new();
    for i in 1..=args.leechers {
        let session = Session::new(SessionConfig {
            listen_addr: local,
            ..SessionConfig::default()
        })
        .await?;
        let leech_dir = dir.join(format!("leecher-{i}"));
        std::fs::create_dir_all(&leech_dir)?;
        let params = AddTorrentParams::new(meta.clone(), &leech_dir);
        let handle = session.add_torrent(params).await?;
        println!(
            "leecher-{i} on {}, announcing to the tracker",
            session.local_addr()
        );
        let progress = Progress::in_multi(&multi, &format!("leecher-{i}"), total);
        leechers.push((session, handle, leech_dir, progress));
    }

    let mut stop = Box::pin(stop_signal());
    let mut tick = tokio::time::interval(std::time::Duration::from_millis(200));
    loop {
        let mut all = true;
        for (_, handle, _, progress) in &mut leechers {
            let stats = handle.stats();
            progress.update(&stats);
            all &= stats.state.is_complete();
        }
        if all {
            break;
        }
        tokio::select! {
            r = stop.as_mut() => {
                r?;
                bail!("interrupted");
            }
            _ = tick.tick() => {}
        }
    }
    for (_, handle, _, progress) in &mut leechers {
        progress.finish(&handle.stats());
    }
    // Let the last `have`s and upload counts arrive.
    tokio::time::sleep(std::time::Duration::from_millis(600)).await;

    println!();
    println!(
        "{:<10} {:>12} {:>12}  copy",
        "peer", "downloaded", "uploaded"
    );
    let s = seed.stats();
    println!(
        "{:<10} {:>12} {:>12}",
        "seeder",
        format::size(s.downloaded),
        format::size(s.uploaded)
    );
    let mut all_same = true;
    for (i, (_, handle, leech_dir, _)) in leechers.iter().enumerate() {
        let s = handle.stats();
        let same = same_tree(&meta, &seed_dir, leech_dir)?;
        all_same &= same;
        println!(
            "{:<10} {:>12} {:>12}  {}",
            format!("leecher-{}", i + 1),
            format::size(s.downloaded),
            format::size(s.uploaded),
            if same { "byte-identical" } else { "DIFFERS" }
        );
    }
    let shared: u64 = leechers.iter().map(|(_, h, _, _)| h.stats().uploaded).sum();
    println!(
        "leechers sent each other {}; the seeder sent {}",
        format::size(shared),
        format::size(s.uploaded)
    );
    let counts = meta
        .info_hash
        .map(|h| tracker.scrape(&h))
        .unwrap_or_default();
    println!(
        "the tracker counts {} seeders, {} leechers, {} completed downloads",
        counts.complete, counts.incomplete, counts.downloaded
    );
    for (session, ..) in leechers {
        session.shutdown().await;
    }
    seeder.shutdown().await;
    tracker.shutdown().await;
    if !all_same {
        bail!("a downloaded copy differs from the original");
    }
    Ok(())
}
