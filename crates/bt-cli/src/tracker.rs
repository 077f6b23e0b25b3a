//! `bt tracker [--listen ADDR] [--interval SECS] [--min-interval SECS] [--quiet]`: the
//! built-in tracker, HTTP (`/announce`, `/scrape`) and UDP (BEP 15) on one port, until
//! SIGINT or SIGTERM.
//!
//! On start it prints `tracker listening on ADDR: http://ADDR/announce udp://ADDR/announce`.
//! Then, unless `--quiet`, it prints a line whenever a torrent's counts change
//! (`<info-hash>: seeders S, leechers L, completed C`) or it leaves the tracker
//! (`<info-hash>: no peers`); the counts are read by scraping itself once a second.
//!
//! Also here, for `download` and `seed`: [`log_status`] prints what a torrent's trackers
//! do (the session announces to them) on stderr.

use std::collections::HashMap;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use bt_engine::sources::announce::AnnouncerStatus;
use bt_meta::InfoHash;
use bt_tracker::{ScrapeStats, ServerConfig, TrackerClient, TrackerServer};
use tokio::sync::watch;

/// How often the counts are read for the change log.
const WATCH_INTERVAL: Duration = Duration::from_secs(1);

/// Arguments of `bt tracker`.
#[derive(clap::Args)]
pub struct Args {
    /// Where to serve HTTP and UDP (the same port for both).
    #[arg(long, value_name = "ADDR", default_value = "0.0.0.0:6969")]
    listen: SocketAddr,
    /// The announce interval told to clients, in seconds (peers expire after two).
    #[arg(long, value_name = "SECS", default_value_t = 1800,
          value_parser = clap::value_parser!(u64).range(1..=86_400))]
    interval: u64,
    /// The `min interval` told to HTTP clients, in seconds.
    #[arg(long, value_name = "SECS")]
    min_interval: Option<u64>,
    /// Do not print a line when a torrent's counts change.
    #[arg(short, long)]
    quiet: bool,
}

/// Runs `bt tracker`.
pub fn run(args: Args) -> Result<()> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .worker_threads(2)
        .thread_name("bt-tracker")
        .build()?
        .block_on(serve(args))
}

async fn serve(args: Args) -> Result<()> {
    let config = ServerConfig {
        interval: Duration::from_secs(args.interval),
        min_interval: args.min_interval.map(Duration::from_secs),
        ..ServerConfig::default()
    };
    let server = TrackerServer::bind(args.listen, config)
        .await
        .with_context(|| format!("cannot serve on {}", args.listen))?;
    println!(
        "tracker listening on {}: {} {}",
        server.local_addr(),
        server.http_url(),
        server.udp_url()
    );
    let watcher = async {
        if args.quiet {
            std::future::pending::<()>().await;
        }
        watch_counts(&self_url(server.local_addr())).await;
    };
    let result = tokio::select! {
        r = stop_signal() => r,
        () = watcher => Ok(()),
    };
    server.shutdown().await;
    println!("tracker stopped");
    result
}

/// The announce URL to reach our own tracker (loopback when bound to every address).
fn self_url(addr: SocketAddr) -> String {
    let ip = match addr {
        SocketAddr::V4(a) if a.ip().is_unspecified() => Ipv4Addr::LOCALHOST.into(),
        SocketAddr::V6(a) if a.ip().is_unspecified() => Ipv6Addr::LOCALHOST.into(),
        a => a.ip(),
    };
    format!("http://{}/announce", SocketAddr::new(ip, addr.port()))
}

/// Prints a line for each torrent whose counts changed, scraping `url` once a second.
async fn watch_counts(url: &str) {
    let client = TrackerClient::default();
    let started = Instant::now();
    let mut known: HashMap<InfoHash, ScrapeStats> = HashMap::new();
    let mut tick = tokio::time::interval(WATCH_INTERVAL);
    loop {
        tick.tick().await;
        let now = match client.scrape(url, &[]).await {
            Ok(now) => now,
            Err(e) => {
                tracing::debug!(error = %e, "self-scrape failed");
                continue;
            }
        };
        let at = started.elapsed().as_secs_f64();
        for line in changes(&known, &now) {
            println!("[{at:8.1}s] {line}");
        }
        known = now;
    }
}

/// One line per torrent that appeared, changed or left between two scrapes, sorted.
fn changes(
    before: &HashMap<InfoHash, ScrapeStats>,
    after: &HashMap<InfoHash, ScrapeStats>,
) -> Vec<String> {
    let mut lines: Vec<String> = after
        .iter()
        .filter(|(hash, stats)| before.get(hash) != Some(stats))
        .map(|(hash, s)| {
            format!(
                "{hash}: seeders {}, leechers {}, completed {}",
                s.complete, s.incomplete, s.downloaded
            )
        })
        .chain(
            before
                .keys()
                .filter(|hash| !after.contains_key(hash))
                .map(|hash| format!("{hash}: no peers")),
        )
        .collect();
    lines.sort();
    lines
}

/// Prints `<label>: tracker: ...` on stderr each time the trackers' answer or error
/// changes, until the announcer stops.
pub fn log_status(
    mut rx: watch::Receiver<AnnouncerStatus>,
    label: &str,
) -> tokio::task::JoinHandle<()> {
    let label = label.to_owned();
    tokio::spawn(async move {
        let mut shown = None;
        while rx.changed().await.is_ok() {
            let line = status_line(&rx.borrow_and_update());
            if line.is_some() && line != shown {
                if let Some(text) = &line {
                    eprintln!("{label}: {text}");
                }
                shown = line;
            }
        }
    })
}

/// What a status line says about the trackers: the latest error, else who answered.
pub fn status_line(s: &AnnouncerStatus) -> Option<String> {
    match (&s.last_error, &s.tracker) {
        (Some(error), _) => Some(format!("tracker: {error}")),
        (None, Some(url)) => Some(format!(
            "tracker: {url} answered ({} peers, {} from trackers so far)",
            s.last_peers, s.peers_from_trackers
        )),
        (None, None) => None,
    }
}

/// Completes on SIGINT (Ctrl-C) or SIGTERM.
async fn stop_signal() -> Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate())?;
    tokio::select! {
        r = tokio::signal::ctrl_c() => r?,
        _ = term.recv() => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stats(complete: u64, incomplete: u64, downloaded: u64) -> ScrapeStats {
        ScrapeStats {
            complete,
            downloaded,
            incomplete,
        }
    }

    #[test]
    fn changes_name_new_changed_and_gone_torrents() {
        let (a, b, c) = (InfoHash([1; 20]), InfoHash([2; 20]), InfoHash([3; 20]));
        let before = HashMap::from([(a, stats(1, 0, 0)), (b, stats(0, 1, 0))]);
        let after = HashMap::from([
            (a, stats(1, 0, 0)),
            (b, stats(1, 0, 1)),
            (c, stats(0, 2, 0)),
        ]);
        let hex = |h: InfoHash| h.to_hex();
        assert_eq!(
            changes(&before, &after),
            [
                format!("{}: seeders 1, leechers 0, completed 1", hex(b)),
                format!("{}: seeders 0, leechers 2, completed 0", hex(c)),
            ]
        );
        assert_eq!(
            changes(&after, &HashMap::new()),
            [
                format!("{}: no peers", hex(a)),
                format!("{}: no peers", hex(b)),
                format!("{}: no peers", hex(c)),
            ]
        );
        assert!(changes(&after, &after).is_empty());
    }

    #[test]
    fn status_line_prefers_the_error() {
        let mut s = AnnouncerStatus::default();
        assert_eq!(status_line(&s), None);
        s.tracker = Some("http://t/announce".into());
        s.last_peers = 3;
        s.peers_from_trackers = 7;
        assert_eq!(
            status_line(&s).as_deref(),
            Some("tracker: http://t/announce answered (3 peers, 7 from trackers so far)")
        );
        s.last_error = Some("http://u/announce: timed out".into());
        assert_eq!(
            status_line(&s).as_deref(),
            Some("tracker: http://u/announce: timed out")
        );
    }

    #[test]
    fn self_url_is_loopback_for_wildcard_binds() {
        let url = |a: &str| self_url(a.parse().unwrap());
        assert_eq!(url("0.0.0.0:6969"), "http://127.0.0.1:6969/announce");
        assert_eq!(url("[::]:6969"), "http://[::1]:6969/announce");
        assert_eq!(url("127.0.0.5:1"), "http://127.0.0.5:1/announce");
    }
}
