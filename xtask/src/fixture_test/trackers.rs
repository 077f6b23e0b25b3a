//! `tracker-*` scenarios: trackers with real clients on loopback.
//!
//! - bt-tracker's client (HTTP and UDP announce and scrape) against opentracker;
//! - a libtorrent seeder and `bt download` that know of each other only through a
//!   tracker, once opentracker, once `bt tracker`;
//! - libtorrent and Transmission announcing to `bt tracker`: a libtorrent leecher
//!   downloads from a Transmission seeder it learned of only from the tracker
//!   (Transmission never dials loopback, so libtorrent dials it).
//!
//! Every torrent here announces to `http://ADDR/announce`: libtorrent's SSRF mitigation
//! accepts a loopback tracker only with that path.

use std::net::SocketAddr;
use std::process::Command;
use std::time::Duration;

use anyhow::{bail, ensure, Context, Result};
use bt_meta::{InfoHash, PeerId};
use bt_tracker::{
    AnnounceRequest, AnnounceResponse, Event, HttpConfig, ScrapeStats, TrackerClient,
    TrackerConfig, UdpConfig,
};
use rustix::process::Signal;

use super::harness::{CHECK_TIMEOUT, TRANSFER_TIMEOUT, TRANSMISSION_TIMEOUT};
use super::torrents::{Shape, TestTorrent};
use super::{Ctx, Need, Scenario};
use crate::deadline::poll_until;
use crate::payload::CompareOptions;
use crate::peers::libtorrent::{LtSession, SessionOptions};
use crate::peers::opentracker::{announce_url, Opentracker};
use crate::peers::transmission::TransmissionDaemon;
use crate::process::Proc;
use crate::sandbox::{Sandbox, LOOPBACK};

/// The tracker scenarios.
pub static TRACKER_SCENARIOS: &[Scenario] = &[
    Scenario {
        name: "tracker-client-against-opentracker",
        needs: &[Need::Opentracker],
        run: client_against_opentracker,
    },
    Scenario {
        name: "tracker-bt-download-from-libtorrent-via-opentracker",
        needs: &[Need::Opentracker, Need::Libtorrent, Need::Bt("download")],
        run: |ctx| bt_download_via(ctx, Tracker::Opentracker),
    },
    Scenario {
        name: "tracker-bt-download-from-libtorrent-via-bt-tracker",
        needs: &[Need::Libtorrent, Need::Bt("download"), Need::Bt("tracker")],
        run: |ctx| bt_download_via(ctx, Tracker::Bt),
    },
    Scenario {
        name: "tracker-libtorrent-from-transmission-via-bt-tracker",
        needs: &[Need::Libtorrent, Need::Transmission, Need::Bt("tracker")],
        run: libtorrent_from_transmission_via_bt_tracker,
    },
];

/// How long a tracker may take to show a client that announced.
const ANNOUNCE_TIMEOUT: Duration = Duration::from_secs(30);

/// bt-tracker's client on a private runtime, with timeouts fit for loopback.
struct Probe {
    rt: tokio::runtime::Runtime,
    client: TrackerClient,
}

impl Probe {
    fn new() -> Result<Self> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let client = TrackerClient::new(TrackerConfig {
            http: HttpConfig {
                timeout: Duration::from_secs(10),
                ..HttpConfig::default()
            },
            udp: UdpConfig {
                base_timeout: Duration::from_secs(2),
                max_tries: 3,
                ..UdpConfig::default()
            },
        });
        Ok(Probe { rt, client })
    }

    fn announce(&self, url: &str, req: &AnnounceRequest) -> Result<AnnounceResponse> {
        self.rt
            .block_on(self.client.announce(url, req))
            .with_context(|| format!("{:?} announce to {url}", req.event))
    }

    fn scrape(&self, url: &str, hash: InfoHash) -> Result<ScrapeStats> {
        let all = self
            .rt
            .block_on(self.client.scrape(url, &[hash]))
            .with_context(|| format!("scrape of {url}"))?;
        all.get(&hash)
            .copied()
            .with_context(|| format!("{url} left {hash} out of its scrape: {all:?}"))
    }

    /// Waits until a scrape of `url` satisfies `done`.
    fn wait_scrape(
        &self,
        url: &str,
        hash: InfoHash,
        what: &str,
        done: impl Fn(&ScrapeStats) -> bool,
    ) -> Result<ScrapeStats> {
        let mut last = None;
        poll_until(ANNOUNCE_TIMEOUT, what, || {
            let stats = self.scrape(url, hash)?;
            last = Some(stats);
            Ok(done(&stats).then_some(stats))
        })
        .with_context(|| format!("last scrape of {url}: {last:?}"))
    }
}

/// A request from one of the harness's made-up peers.
fn request(hash: InfoHash, id: &[u8; 20], port: u16, left: u64, event: Event) -> AnnounceRequest {
    let mut req = AnnounceRequest::new(hash, PeerId(*id), port);
    req.left = left;
    req.event = event;
    req.numwant = Some(50);
    req
}

fn loopback(port: u16) -> SocketAddr {
    SocketAddr::from((LOOPBACK, port))
}

fn has_peer(resp: &AnnounceResponse, addr: SocketAddr) -> bool {
    resp.peer_addrs().any(|a| a == addr)
}

/// bt-tracker's client announces and scrapes to opentracker over HTTP and over UDP: two
/// peers each see the other, the counts follow `started`, `completed` and `stopped`, and
/// a torrent off the whitelist is refused with opentracker's reason.
fn client_against_opentracker(ctx: &Ctx) -> Result<()> {
    let sb = &ctx.sandbox;
    let addr = sb.addr()?;
    let over_http = InfoHash([0x31; 20]);
    let over_udp = InfoHash([0x32; 20]);
    let _tracker = Opentracker::start(
        sb,
        "opentracker",
        addr,
        &[&over_http.to_hex(), &over_udp.to_hex()],
    )?;
    let probe = Probe::new()?;
    let http = announce_url(addr);
    let udp = format!("udp://{addr}/announce");
    swarm_counts(&probe, sb, &http, over_http).with_context(|| format!("over http ({http})"))?;
    swarm_counts(&probe, sb, &udp, over_udp).with_context(|| format!("over udp ({udp})"))?;
    // Off the whitelist: over HTTP opentracker says why; over UDP it sends a truncated
    // 8-byte announce reply, which must be an error (not a panic, not an empty swarm).
    for (url, reason) in [(&http, Some("not authorized")), (&udp, None)] {
        let off_list = request(
            InfoHash([0x33; 20]),
            b"-XT0001-offlistoffli",
            sb.port()?,
            0,
            Event::Started,
        );
        match probe.announce(url, &off_list) {
            Err(e) => {
                let text = format!("{e:#}");
                ensure!(
                    reason.is_none_or(|r| text.contains(r)),
                    "{url}: refused, but not with opentracker's reason: {text}"
                );
            }
            Ok(resp) => bail!("{url} answered a torrent off its whitelist: {resp:?}"),
        }
    }
    Ok(())
}

/// Two peers on one torrent at `url`: announces, peer lists and scrape counts.
fn swarm_counts(probe: &Probe, sb: &Sandbox, url: &str, hash: InfoHash) -> Result<()> {
    let (seed_port, leech_port) = (sb.port()?, sb.port()?);
    let seed_id = b"-XT0001-seedseedseed";
    let leech_id = b"-XT0001-leechleechle";

    let first = probe.announce(url, &request(hash, seed_id, seed_port, 0, Event::Started))?;
    // opentracker may hand a peer its own address back; nobody else is there yet.
    ensure!(
        first.peer_addrs().all(|a| a == loopback(seed_port)),
        "peers handed out before anyone else announced: {first:?}"
    );
    ensure!(first.interval > Duration::ZERO, "no interval: {first:?}");

    let leech = probe.announce(
        url,
        &request(hash, leech_id, leech_port, 1000, Event::Started),
    )?;
    ensure!(
        has_peer(&leech, loopback(seed_port)),
        "the leech was not handed the seed: {leech:?}"
    );
    ensure!(
        (leech.complete, leech.incomplete) == (Some(1), Some(1)),
        "counts in the leech's answer: {leech:?}"
    );
    let again = probe.announce(url, &request(hash, seed_id, seed_port, 0, Event::None))?;
    ensure!(
        has_peer(&again, loopback(leech_port)),
        "the seed was not handed the leech: {again:?}"
    );
    let counts = |s: ScrapeStats| (s.complete, s.incomplete, s.downloaded);
    let before = probe.scrape(url, hash)?;
    ensure!(
        counts(before) == (1, 1, 0),
        "scrape with one seed and one leech: {before:?}"
    );

    probe.announce(
        url,
        &request(hash, leech_id, leech_port, 0, Event::Completed),
    )?;
    let done = probe.scrape(url, hash)?;
    ensure!(
        counts(done) == (2, 0, 1),
        "scrape after the leech completed: {done:?}"
    );

    probe.announce(url, &request(hash, leech_id, leech_port, 0, Event::Stopped))?;
    let after = probe.scrape(url, hash)?;
    ensure!(
        (after.complete, after.incomplete) == (1, 0),
        "scrape after the leech stopped: {after:?}"
    );
    let last = probe.announce(url, &request(hash, seed_id, seed_port, 0, Event::None))?;
    ensure!(
        !has_peer(&last, loopback(leech_port)),
        "a stopped peer is still handed out: {last:?}"
    );
    Ok(())
}

/// Which tracker a scenario runs.
#[derive(Clone, Copy, Debug)]
enum Tracker {
    Opentracker,
    Bt,
}

/// A running tracker; stopped on drop.
#[allow(dead_code)] // held only to keep the tracker alive
enum RunningTracker {
    Opentracker(Opentracker),
    Bt(BtTracker),
}

/// Starts `kind` on `addr` for the torrent `hash_hex`.
fn start_tracker(
    ctx: &Ctx,
    kind: Tracker,
    addr: SocketAddr,
    hash_hex: &str,
) -> Result<RunningTracker> {
    Ok(match kind {
        Tracker::Opentracker => RunningTracker::Opentracker(Opentracker::start(
            &ctx.sandbox,
            "opentracker",
            addr,
            &[hash_hex],
        )?),
        Tracker::Bt => RunningTracker::Bt(BtTracker::start(ctx, addr, &[])?),
    })
}

/// `bt tracker --listen ADDR ...`; killed on drop, or stopped with [`BtTracker::stop`].
struct BtTracker {
    proc: Proc,
}

impl BtTracker {
    /// Starts it and waits for its `tracker listening on ...` line.
    fn start(ctx: &Ctx, addr: SocketAddr, extra: &[&str]) -> Result<Self> {
        let mut cmd = Command::new(ctx.bt.path());
        cmd.arg("tracker")
            .arg("--listen")
            .arg(addr.to_string())
            .args(extra)
            .env("RUST_BACKTRACE", "1");
        let mut proc = ctx.sandbox.spawn("bt-tracker", &cmd)?;
        let expected = format!("tracker listening on {addr}");
        proc.read_lines_until(Duration::from_secs(30), "its listening line", |line| {
            Ok(line.starts_with(&expected).then_some(()))
        })?;
        Ok(BtTracker { proc })
    }

    /// SIGTERM: it must exit 0 promptly, saying `tracker stopped`.
    fn stop(mut self) -> Result<()> {
        self.proc.signal(Signal::TERM)?;
        self.proc
            .read_lines_until(
                Duration::from_secs(10),
                "`tracker stopped` after SIGTERM",
                |line| Ok((line == "tracker stopped").then_some(())),
            )
            .context("bt tracker did not stop cleanly")?;
        self.proc.wait_success(Duration::from_secs(10))
    }
}

/// A libtorrent seeder and `bt download` (no `--peer`) that know of each other only
/// through `kind`'s tracker.
fn bt_download_via(ctx: &Ctx, kind: Tracker) -> Result<()> {
    let sb = &ctx.sandbox;
    let tracker_addr = sb.addr()?;
    let url = announce_url(tracker_addr);
    let t = TestTorrent::make(sb, Shape::MultiFile, std::slice::from_ref(&url))?;
    let hash = InfoHash(t.info_hash()?);
    let tracker = start_tracker(ctx, kind, tracker_addr, &t.info.info_hash)?;
    let probe = Probe::new()?;

    let mut seed = LtSession::seed(
        sb,
        "lt-seed",
        &t.torrent,
        &t.data_dir,
        &SessionOptions::default(),
    )?;
    seed.wait_seeding(CHECK_TIMEOUT)?;
    probe.wait_scrape(&url, hash, "libtorrent's announce as a seed", |s| {
        s.complete >= 1
    })?;

    let out = sb.mkdir("download")?;
    let mut bt = ctx
        .bt
        .download(sb, "bt-download", &t.torrent, &out, sb.addr()?, &[])?;
    bt.wait_success(TRANSFER_TIMEOUT)?;
    t.check_copy(&out, CompareOptions::default())?;
    // bt said `completed` and then `stopped` on its way out: only the seeder is left.
    let stats = probe.wait_scrape(&url, hash, "bt's completed and stopped", |s| {
        s.downloaded >= 1 && s.complete == 1 && s.incomplete == 0
    })?;
    ctx.note(format!(
        "{kind:?} counts after bt left: {} seed, {} leechers, {} completed",
        stats.complete, stats.incomplete, stats.downloaded
    ));
    if let RunningTracker::Bt(bt_tracker) = tracker {
        bt_tracker.stop()?;
    }
    Ok(())
}

/// Transmission seeds and libtorrent leeches; both announce to `bt tracker`, which holds
/// both, and libtorrent dials the Transmission it learned of there and downloads.
fn libtorrent_from_transmission_via_bt_tracker(ctx: &Ctx) -> Result<()> {
    let sb = &ctx.sandbox;
    let tracker_addr = sb.addr()?;
    let url = announce_url(tracker_addr);
    let t = TestTorrent::make(sb, Shape::MultiFile, std::slice::from_ref(&url))?;
    let hash = InfoHash(t.info_hash()?);
    // A short interval, so each client announces again (and is handed the other)
    // within the test.
    let tracker = BtTracker::start(ctx, tracker_addr, &["--interval", "5"])?;
    let probe = Probe::new()?;

    let mut tr = TransmissionDaemon::start(sb, "transmission-seed", &t.data_dir)?;
    tr.add(&t.torrent, &t.data_dir)?;
    tr.wait_complete(CHECK_TIMEOUT)?;
    probe.wait_scrape(&url, hash, "Transmission's announce as a seed", |s| {
        s.complete >= 1
    })?;

    let out = sb.mkdir("download")?;
    let mut lt = LtSession::download(sb, "lt-leech", &t.torrent, &out, &SessionOptions::default())?;
    probe.wait_scrape(&url, hash, "libtorrent's announce as a leech", |s| {
        s.complete >= 1 && s.incomplete >= 1
    })?;
    // What the tracker hands out for this torrent: both clients, at their peer ports.
    let watcher = request(hash, b"-XT0001-watchwatchwa", sb.port()?, 1, Event::Started);
    let seen = probe.announce(&url, &watcher)?;
    probe.announce(
        &url,
        &AnnounceRequest {
            event: Event::Stopped,
            ..watcher
        },
    )?;
    for (who, addr) in [("Transmission", tr.peer_addr()), ("libtorrent", lt.addr())] {
        ensure!(
            has_peer(&seen, addr),
            "bt tracker does not hand out {who} at {addr}: {seen:?}"
        );
    }

    lt.wait_seeding(TRANSMISSION_TIMEOUT)?;
    t.check_copy(&out, CompareOptions::default())?;
    tracker.stop()
}

/// The scenario names and their needs stay consistent with the runner's rules.
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scenarios_name_tracker_and_declare_bt_needs() {
        for s in TRACKER_SCENARIOS {
            assert!(s.name.starts_with("tracker-"), "{}", s.name);
            let uses_bt = s.name.contains("bt-");
            let needs_bt = s.needs.iter().any(|n| matches!(n, Need::Bt(_)));
            assert_eq!(uses_bt, needs_bt, "{}", s.name);
        }
    }
}
