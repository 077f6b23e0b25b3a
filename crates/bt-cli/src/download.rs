//! `bt download <file.torrent> [-o DIR] [--peer IP:PORT]... [--listen ADDR] [--seed]
//! [--only N,M] [--sequential] [--first-last]`.
//!
//! `--only` fetches only the files with those indices (as `bt info` lists them, from 0;
//! pieces shared with a neighbouring file come too, so its edges may appear on disk);
//! `--sequential` asks for pieces in order rather than rarest first; `--first-last` gets
//! the first and last piece of each wanted file before the rest (a player reads a media
//! file's header and index there).
//!
//! Files land under DIR as the torrent names them (`DIR/<name>` for a single file,
//! `DIR/<name>/...` otherwise). Resume state lives in `DIR/.bt/<info-hash>.resume`, so an
//! interrupted download started again with the same DIR fetches only what is missing.
//! The resume state is trusted only while every file has the size and modification time
//! it records; otherwise the data is hashed again at start (after a crash, the files
//! always changed since the last save). Data changed without changing either is trusted
//! like any fast-resume client would; `bt verify` finds it and corrects the resume state.
//! Exits 0 only once every piece is verified on disk. With `--seed` it keeps serving
//! peers afterwards until SIGINT or SIGTERM, then prints `uploaded: <bytes>`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use bt_engine::proto::{first_and_last_first, piece_priorities, Priority};
use bt_engine::sources::dht::DhtSettings;
use bt_engine::EncryptionPolicy;
use bt_engine::{
    AddTorrentParams, Session, SessionConfig, TorrentHandle, TorrentState, TorrentStats,
};
use bt_meta::Metainfo;

use crate::progress::Progress;

/// Arguments of `bt download`.
#[derive(clap::Args)]
pub struct Args {
    /// The .torrent file, or a magnet link (`magnet:?xt=urn:btih:...`).
    torrent: String,
    /// The folder to download into; the torrent's files go under it as the torrent
    /// names them. Created if missing.
    #[arg(short, long, value_name = "DIR", default_value = ".")]
    output: PathBuf,
    /// A peer to connect to; repeat for more.
    #[arg(long = "peer", value_name = "IP:PORT")]
    peers: Vec<SocketAddr>,
    /// Where to accept connections from peers.
    #[arg(long, value_name = "ADDR", default_value = "0.0.0.0:6881")]
    listen: SocketAddr,
    /// Keep seeding once the download is complete, until interrupted.
    #[arg(long)]
    seed: bool,
    /// Fetch only these files (indices as `bt info` lists them, from 0).
    #[arg(long, value_name = "N,M", value_delimiter = ',')]
    only: Vec<usize>,
    /// Fetch pieces in order instead of rarest first.
    #[arg(long)]
    sequential: bool,
    /// Fetch the first and last piece of each wanted file first.
    #[arg(long)]
    first_last: bool,
    #[command(flatten)]
    magnet: crate::magnet::MagnetArgs,
    #[command(flatten)]
    dht: crate::dht::DhtArgs,
    #[command(flatten)]
    encryption: crate::encryption::EncryptionArgs,
}

/// Reads and validates a .torrent file.
pub fn load_torrent(path: &Path) -> Result<Metainfo> {
    let name = path.display().to_string();
    let bytes = std::fs::read(path).with_context(|| name.clone())?;
    Metainfo::from_bytes(&bytes).with_context(|| name)
}

/// The runtime the engine runs on.
pub fn runtime() -> Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("bt-worker")
        .build()?)
}

/// Completes on SIGINT (Ctrl-C) or SIGTERM. The handlers are installed when this is called
/// (inside the runtime), not when the future is first polled, so a signal that arrives in
/// between is not lost to the default action.
pub fn stop_signal() -> impl std::future::Future<Output = Result<()>> {
    use tokio::signal::unix::{signal, SignalKind};
    let term = signal(SignalKind::terminate());
    let int = signal(SignalKind::interrupt());
    async move {
        let (mut term, mut int) = (term?, int?);
        tokio::select! {
            _ = int.recv() => {}
            _ = term.recv() => {}
        }
        Ok(())
    }
}

/// A session listening on `listen` with this encryption policy and DHT (trackers are
/// announced to as the torrents name them).
pub async fn session(
    listen: SocketAddr,
    encryption: EncryptionPolicy,
    dht: Option<DhtSettings>,
) -> Result<Session> {
    Ok(Session::new(SessionConfig {
        listen_addr: listen,
        encryption,
        dht,
        ..SessionConfig::default()
    })
    .await?)
}

/// Prints what `handle`'s trackers do as `<label>: tracker: ...` lines.
pub fn log_trackers(session: &Session, handle: &TorrentHandle) {
    if let Some(status) = session.tracker_status(&handle.info_hash()) {
        crate::tracker::log_status(status, &handle.stats().name);
    }
}

/// Shows progress until `done` holds for the torrent's stats, the torrent fails, or a
/// stop signal arrives (`Ok(false)`).
pub async fn watch(
    handle: &TorrentHandle,
    progress: &mut Progress,
    done: impl Fn(&TorrentState) -> bool,
    stop: &mut std::pin::Pin<Box<impl std::future::Future<Output = Result<()>>>>,
) -> Result<bool> {
    let mut rx = handle.subscribe();
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    loop {
        let stats = handle.stats();
        progress.update(&stats);
        if let TorrentState::Error(e) = &stats.state {
            progress.finish(&stats);
            bail!("{}: {e}", stats.name);
        }
        if done(&stats.state) {
            return Ok(true);
        }
        tokio::select! {
            r = stop.as_mut() => {
                r?;
                return Ok(false);
            }
            _ = tick.tick() => {}
            r = rx.changed() => if r.is_err() {
                bail!("{}: torrent stopped", stats.name);
            },
        }
    }
}

/// Runs `bt download`.
pub fn run(args: Args) -> Result<()> {
    std::fs::create_dir_all(&args.output)
        .with_context(|| format!("cannot create {}", args.output.display()))?;
    runtime()?.block_on(download(args))
}

async fn download(args: Args) -> Result<()> {
    let dht = args.dht.settings(&args.output);
    let session = session(args.listen, args.encryption.policy(), dht).await?;
    let result = download_with(&session, &args).await;
    // One way out: trackers hear `stopped`, resume state and DHT nodes are saved.
    session.shutdown().await;
    let stats = result?;
    if args.seed {
        println!("uploaded: {}", stats.uploaded);
    }
    if !stats.state.is_complete() {
        bail!(
            "{}: interrupted with {} of {} pieces; run the same command again to resume",
            stats.name,
            stats.pieces_have,
            stats.pieces_total
        );
    }
    Ok(())
}

/// Resolves the torrent, downloads it (and seeds with `--seed`) until done or
/// interrupted; the final stats.
async fn download_with(session: &Session, args: &Args) -> Result<TorrentStats> {
    let resolved =
        crate::magnet::resolve(&args.torrent, session, &args.peers, &args.magnet).await?;
    let meta = resolved.meta;
    let wanted = wanted_files(&meta, &args.only)?;
    let wanted_len: u64 = meta
        .info
        .files()
        .iter()
        .zip(&wanted)
        .filter(|(_, w)| **w)
        .map(|(f, _)| f.length())
        .sum();
    let priorities = piece_order(&meta, &wanted, args.first_last);
    let mut progress = Progress::new(&meta.info.name, wanted_len);
    let mut params = AddTorrentParams::new(meta, &args.output);
    params.priorities = priorities;
    params.sequential = args.sequential;
    params.peers = resolved.peers;
    params.seed = args.seed;
    params.on_check = Some(progress.check_callback());
    let handle = session.add_torrent(params).await?;
    log_trackers(session, &handle);
    let mut stop = Box::pin(stop_signal());
    let complete = watch(&handle, &mut progress, TorrentState::is_complete, &mut stop).await?;
    if complete && args.seed {
        // Seed until interrupted.
        watch(&handle, &mut progress, |_| false, &mut stop).await?;
    }
    let stats = handle.stats();
    progress.finish(&stats);
    Ok(stats)
}

/// Which of the torrent's files (pad files included, in order) `--only` wants: all when
/// it names none. Indices are those `bt info` shows, which leaves pad files out.
fn wanted_files(meta: &Metainfo, only: &[usize]) -> Result<Vec<bool>> {
    let files = meta.info.files();
    if only.is_empty() {
        return Ok(vec![true; files.len()]);
    }
    let shown: Vec<usize> = files
        .iter()
        .enumerate()
        .filter(|(_, f)| !f.is_pad())
        .map(|(i, _)| i)
        .collect();
    let mut wanted = vec![false; files.len()];
    for &n in only {
        let Some(&i) = shown.get(n) else {
            bail!(
                "--only {n}: the torrent has {} files (0 to {})",
                shown.len(),
                shown.len().saturating_sub(1)
            );
        };
        wanted[i] = true;
    }
    Ok(wanted)
}

/// The engine's piece priorities for these wanted files and `--first-last`: empty (the
/// engine's default order) when every file is wanted and nothing goes first.
fn piece_order(meta: &Metainfo, wanted: &[bool], first_last: bool) -> Vec<Priority> {
    if wanted.iter().all(|w| *w) && !first_last {
        return Vec::new();
    }
    let geometry = meta.info.geometry();
    let files: Vec<Priority> = wanted
        .iter()
        .map(|w| if *w { Priority::NORMAL } else { Priority::SKIP })
        .collect();
    let mut pieces = piece_priorities(geometry, &files);
    if first_last {
        first_and_last_first(geometry, &files, &mut pieces);
    }
    pieces
}

#[cfg(test)]
mod tests {
    use super::*;

    fn multi(lens: &[u64], piece_len: u32) -> Metainfo {
        let total: u64 = lens.iter().sum();
        let pieces = total.div_ceil(u64::from(piece_len)) as usize;
        let mut files = String::new();
        for (i, len) in lens.iter().enumerate() {
            files += &format!("d6:lengthi{len}e4:pathl2:f{i}ee");
        }
        let mut out = format!(
            "d4:infod5:filesl{files}e4:name1:m12:piece lengthi{piece_len}e6:pieces{}:",
            20 * pieces
        )
        .into_bytes();
        out.extend(std::iter::repeat_n(0u8, 20 * pieces));
        out.extend_from_slice(b"ee");
        Metainfo::from_bytes(&out).unwrap()
    }

    #[test]
    fn only_names_files_as_bt_info_shows_them_and_refuses_others() {
        let m = multi(&[40_000, 70_000, 10_000], 16384);
        assert_eq!(wanted_files(&m, &[]).unwrap(), [true, true, true]);
        assert_eq!(wanted_files(&m, &[2, 0]).unwrap(), [true, false, true]);
        let e = wanted_files(&m, &[3]).unwrap_err().to_string();
        assert!(e.contains("0 to 2"), "{e}");
    }

    #[test]
    fn skipped_files_skip_their_own_pieces_and_first_last_go_first() {
        // Pieces of 16 KiB: f0 covers 0..=2, f1 2..=6, f2 6..=7.
        let m = multi(&[40_000, 70_000, 10_000], 16384);
        assert!(piece_order(&m, &[true, true, true], false).is_empty());
        let p = piece_order(&m, &[false, true, false], false);
        assert_eq!(p[0], Priority::SKIP);
        assert_eq!(p[1], Priority::SKIP);
        assert_eq!(p[2], Priority::NORMAL, "shared with the wanted file");
        assert_eq!(p[4], Priority::NORMAL);
        assert_eq!(p[7], Priority::SKIP);
        let p = piece_order(&m, &[false, true, false], true);
        assert_eq!((p[2], p[6]), (Priority::HIGHEST, Priority::HIGHEST));
        assert_eq!(p[4], Priority::NORMAL);
        assert_eq!(p[0], Priority::SKIP);
    }
}
