//! `cargo xtask bench daemon`: bt daemon, qbittorrent-nox and transmission-daemon given
//! the same work, one after the other: N small complete torrents added through each
//! one's API, then seeding. Measured per daemon: the time to add them all (until the API
//! shows every one seeding), CPU, peak and settled memory, threads, idle CPU, the time of
//! the full and delta torrent list, a clean stop, and a restart on the same state until
//! all seed again. Prints a table with bt's ratios and writes
//! `target/bench/daemon-<timestamp>.json`.
//!
//! Modules: [`corpus`] the torrents and their data; [`servers`] starting each daemon;
//! [`webapi`] the qBittorrent Web API client (bt, qBittorrent); [`rpc`] Transmission's
//! RPC; [`webclient`] the HTTP exchange under both; [`report`] the table and JSON.
//! A daemon that is not installed is skipped with a loud message, under `CI=true` too:
//! this is a benchmark, not a test.

mod corpus;
mod report;
mod rpc;
pub(super) mod servers;
mod webapi;
mod webclient;

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use self::corpus::Corpus;
use self::report::{ClientReport, CorpusFacts, Document, Timing, METHOD};
use self::rpc::Rpc;
use self::servers::Server;
use self::webapi::WebApi;
use super::clients::Client;
use super::meter;
use super::report::{self as bench_report, Host, Skipped};
use crate::deadline::poll_until;
use crate::layout::{self, Profile};
use crate::process;
use crate::sandbox::Sandbox;

/// Usage text of `cargo xtask bench daemon`.
pub const USAGE: &str = "\
usage: cargo xtask bench daemon [OPTIONS]

bt daemon, qbittorrent-nox and transmission-daemon, one after the other, each given the
same N small complete torrents through its API (bt and qBittorrent: the qBittorrent Web
API; Transmission: its RPC) until all seed; then idle, list, stop, restart. Prints a
table with bt's ratios and writes target/bench/daemon-<timestamp>.json.

options:
  --torrents N      torrents (default 10000)
  --idle-secs S     idle period measured once all seed (default 60)
  --batch N         torrents per torrents/add request, bt and qBittorrent (default 100)
  --file-size BYTES each torrent's one file (default 4096)
  --cap-secs S      give up waiting for all to seed after S seconds, at add and at
                    restart, and report how many did (default 900); a wait also
                    gives up when no torrent started seeding for 120 s
  --only NAME,...   only these daemons: bt, qbittorrent, transmission
  --bt PATH         this bt binary (no build; default: cargo build --release -p bt-cli)
";

/// How often the API is asked whether all are seeding: every 0.5 s at first, then less
/// often the longer the wait (a thirtieth of it, at most every 5 s), so answering the
/// polls does not become a large share of a slow daemon's CPU time.
fn poll_interval(waited: Duration) -> Duration {
    (waited / 30).clamp(Duration::from_millis(500), Duration::from_secs(5))
}

/// Requests per list timing.
const LIST_SAMPLES: usize = 5;

/// Time a daemon gets to exit after being asked to.
const STOP_TIMEOUT: Duration = Duration::from_secs(300);

/// A wait for all to seed gives up when the count of seeding torrents has not moved for
/// this long (e.g. Transmission brings torrents it had not verified yet back stopped).
const STALL: Duration = Duration::from_secs(120);

/// Time a daemon's API gets to answer after it is started.
const API_TIMEOUT: Duration = Duration::from_secs(120);

/// The daemons, in the order they run.
const CLIENTS: &[Client] = &[Client::Bt, Client::Qbittorrent, Client::Transmission];

/// Parsed options.
#[derive(Clone, Debug, PartialEq)]
struct Options {
    torrents: usize,
    idle: Duration,
    batch: usize,
    file_len: u64,
    cap: Duration,
    only: Vec<Client>,
    bt: Option<PathBuf>,
}

impl Options {
    fn parse(args: &[&str]) -> Result<Self> {
        let mut opts = Options {
            torrents: 10_000,
            idle: Duration::from_secs(60),
            batch: 100,
            file_len: 4096,
            cap: Duration::from_secs(900),
            only: CLIENTS.to_vec(),
            bt: None,
        };
        let mut args = args.iter().copied();
        while let Some(arg) = args.next() {
            let mut value = || args.next().with_context(|| format!("{arg} needs a value"));
            let mut number = |min: u64| -> Result<u64> {
                let text = value()?;
                text.parse::<u64>()
                    .ok()
                    .filter(|&n| n >= min)
                    .with_context(|| format!("bad {arg} {text:?} (a whole number >= {min})"))
            };
            match arg {
                "--torrents" => opts.torrents = usize::try_from(number(1)?)?,
                "--idle-secs" => opts.idle = Duration::from_secs(number(1)?),
                "--batch" => opts.batch = usize::try_from(number(1)?)?,
                "--file-size" => opts.file_len = number(1)?,
                "--cap-secs" => opts.cap = Duration::from_secs(number(1)?),
                "--bt" => opts.bt = Some(PathBuf::from(value()?)),
                "--only" => {
                    let text = value()?;
                    opts.only = text
                        .split(',')
                        .map(|name| {
                            CLIENTS
                                .iter()
                                .copied()
                                .find(|c| c.name() == name.trim())
                                .with_context(|| format!("--only: no daemon named {name:?}"))
                        })
                        .collect::<Result<_>>()?;
                }
                other => bail!("unknown option {other:?}\n{USAGE}"),
            }
        }
        Ok(opts)
    }
}

/// How many torrents are in which state, as a daemon's API reports them.
#[derive(Clone, Debug, Default)]
pub struct Tally {
    /// Torrents listed.
    pub total: usize,
    /// Those seeding.
    pub seeding: usize,
    /// Those in an error state.
    pub errored: usize,
    /// Every state by name.
    pub states: BTreeMap<String, usize>,
}

impl Tally {
    /// Counts `(state name, Some(seeding?) or None for an error)` pairs.
    pub fn of<'a>(states: impl Iterator<Item = (&'a str, Option<bool>)>) -> Tally {
        let mut tally = Tally::default();
        for (name, kind) in states {
            tally.total += 1;
            match kind {
                Some(true) => tally.seeding += 1,
                Some(false) => {}
                None => tally.errored += 1,
            }
            *tally.states.entry(name.to_owned()).or_default() += 1;
        }
        tally
    }

    fn describe(&self) -> String {
        format!(
            "{} listed: {}",
            self.total,
            report::describe_counts(&self.states)
        )
    }
}

/// A connected API of either kind.
enum Api {
    Web(WebApi),
    Rpc(Rpc),
}

impl Api {
    /// Waits until the API of `server` answers; returns it and the daemon's version.
    fn connect(server: &mut Server, timeout: Duration) -> Result<(Api, String)> {
        let addr = server.api;
        let client = server.client;
        let mut last_error = String::new();
        let waited = poll_until(timeout, &format!("the {} API", client.name()), || {
            if let Some(status) = server.exited()? {
                bail!(
                    "{} exited ({status}); last output:\n{}",
                    client.name(),
                    server.tail()
                );
            }
            let attempt = match client {
                Client::Transmission => {
                    let mut rpc = Rpc::new(addr);
                    rpc.version().map(|v| (Api::Rpc(rpc), v))
                }
                _ => {
                    let mut web = WebApi::new(addr);
                    web.login().map(|v| (Api::Web(web), v))
                }
            };
            match attempt {
                Ok(connected) => Ok(Some(connected)),
                Err(e) => {
                    last_error = format!("{e:#}");
                    Ok(None)
                }
            }
        });
        waited.with_context(|| format!("last error: {last_error}"))
    }

    fn tally(&mut self) -> Result<Tally> {
        match self {
            Api::Web(web) => web.tally(),
            Api::Rpc(rpc) => rpc.tally(),
        }
    }

    fn stop(&mut self) -> Result<()> {
        match self {
            Api::Web(web) => web.shutdown(),
            Api::Rpc(rpc) => rpc.close(),
        }
    }
}

/// Runs `cargo xtask bench daemon <args>`.
pub fn run(args: &[&str]) -> Result<()> {
    if args.iter().any(|a| matches!(*a, "-h" | "--help")) {
        print!("{USAGE}");
        return Ok(());
    }
    let opts = Options::parse(args)?;
    let mut skipped = Vec::new();
    let mut skip = |client: Client, reason: String| {
        println!(
            "bench daemon: SKIPPING {}: {reason} (a benchmark skips a missing client, \
             under CI=true too)",
            client.name()
        );
        skipped.push(Skipped {
            name: client.name().to_owned(),
            reason,
        });
    };
    let mut clients = Vec::new();
    let bt = if opts.only.contains(&Client::Bt) {
        prepare_bt(opts.bt.as_deref())
    } else {
        Ok(PathBuf::new())
    };
    for &client in &opts.only {
        let missing = match client {
            Client::Bt => bt.as_ref().err().map(|e| format!("{e:#}")),
            Client::Qbittorrent => layout::which("qbittorrent-nox")
                .is_none()
                .then(|| "qbittorrent-nox not installed (apt-get install qbittorrent-nox)".into()),
            _ => layout::which("transmission-daemon").is_none().then(|| {
                "transmission-daemon not installed (apt-get install transmission-daemon)".into()
            }),
        };
        match missing {
            Some(reason) => skip(client, reason),
            None => clients.push(client),
        }
    }
    if clients.is_empty() {
        bail!("no daemon can run here (see the skip messages above)");
    }
    let bt = bt.unwrap_or_default();

    let sandbox = Sandbox::new("bench-daemon")?;
    let started = Instant::now();
    let corpus = Corpus::make(&sandbox.path().join("data"), opts.torrents, opts.file_len)?;
    let make_secs = started.elapsed().as_secs_f64();
    println!(
        "bench daemon: {} torrents of {} bytes made in {make_secs:.1} s in {}; load average {}",
        opts.torrents,
        opts.file_len,
        sandbox.path().display(),
        bench_report::loadavg()
    );
    let mut doc = Document {
        timestamp: bench_report::utc_timestamp(),
        command: std::iter::once("cargo xtask bench daemon")
            .chain(args.iter().copied())
            .collect::<Vec<_>>()
            .join(" "),
        host: Host {
            cpus: std::thread::available_parallelism().map_or(0, |n| n.get()),
            kernel: fs::read_to_string("/proc/sys/kernel/osrelease")
                .unwrap_or_default()
                .trim()
                .to_owned(),
            loadavg_start: bench_report::loadavg(),
            loadavg_end: String::new(),
        },
        bt_binary: bt.display().to_string(),
        batch: opts.batch,
        corpus: CorpusFacts {
            torrents: opts.torrents,
            file_len: opts.file_len,
            piece_len: corpus::PIECE_LEN,
            make_secs,
        },
        clients: Vec::new(),
        skipped,
        method: METHOD.to_vec(),
    };
    for client in clients {
        sync_disks();
        println!(
            "\nbench daemon: {} (load average {})",
            client.name(),
            bench_report::loadavg()
        );
        let mut report = ClientReport::new(client, opts.torrents, opts.idle.as_secs_f64());
        if let Err(e) = measure(&opts, &sandbox, &bt, &corpus, &mut report) {
            let text = format!("{e:#}");
            println!("  FAILED: {text}");
            report.error = Some(text);
        }
        doc.clients.push(report);
    }
    doc.host.loadavg_end = bench_report::loadavg();
    print!("{}", doc.table());
    println!();
    for line in METHOD {
        println!("  {line}");
    }
    let path = doc.write(&layout::target_dir())?;
    println!("\nbench daemon: figures written to {}", path.display());
    Ok(())
}

/// The `bt` to measure: `--bt PATH`, or a fresh release build.
pub(super) fn prepare_bt(path: Option<&Path>) -> Result<PathBuf> {
    let bt = match path {
        Some(path) => path.to_path_buf(),
        None => {
            println!("bench daemon: building bt (cargo build --release -p bt-cli)");
            let status = Command::new(layout::cargo())
                .args(["build", "--release", "-p", "bt-cli"])
                .current_dir(layout::workspace_root())
                .status()
                .context("cannot run cargo")?;
            if !status.success() {
                bail!("`cargo build --release -p bt-cli` failed ({status}); use --bt PATH");
            }
            layout::bt_binary(Profile::Release)
        }
    };
    let mut cmd = Command::new(&bt);
    cmd.args(["daemon", "--help"]);
    process::run("bt daemon --help", &cmd, Duration::from_secs(30))
        .with_context(|| format!("`{} daemon` is not available", bt.display()))?;
    Ok(bt)
}

/// The version `bt --version` prints.
fn bt_version(bt: &Path) -> Option<String> {
    let mut cmd = Command::new(bt);
    cmd.arg("--version");
    let text = process::run("bt --version", &cmd, Duration::from_secs(30)).ok()?;
    let text = text.trim();
    Some(text.strip_prefix("bt ").unwrap_or(text).to_owned())
}

/// Flushes dirty pages, so what one daemon (or making the corpus) left unwritten does
/// not land on the next one's figures.
fn sync_disks() {
    let _ = process::run("sync", &Command::new("sync"), Duration::from_secs(300));
}

/// Everything measured of one daemon, into `report` as it goes (so a failure keeps what
/// was measured before it).
fn measure(
    opts: &Options,
    sandbox: &Sandbox,
    bt: &Path,
    corpus: &Corpus,
    report: &mut ClientReport,
) -> Result<()> {
    let client = report.client;
    let n = corpus.items.len();
    // Long enough for the add (capped), the idle period, the lists and the stop.
    let lifetime = opts.cap + opts.idle + Duration::from_secs(900);
    let mut server = Server::start(client, sandbox, bt, &corpus.data_dir, lifetime)?;
    let result = (|| -> Result<()> {
        let (mut api, version) = Api::connect(&mut server, API_TIMEOUT)?;
        report.version = match client {
            // Its API answers qBittorrent's version; the binary knows its own.
            Client::Bt => bt_version(bt).unwrap_or(version),
            _ => version,
        };
        let pid = server.daemon_pid()?;
        println!(
            "  {} {} up; log {}",
            client.name(),
            report.version,
            server.log().display()
        );

        // Add them all.
        let started = Instant::now();
        add_all(&mut api, corpus, opts.batch, report)?;
        let add_calls = started.elapsed();
        report.add_calls_secs = Some(add_calls.as_secs_f64());
        println!(
            "  {n} torrents added in {:.2} s ({})",
            add_calls.as_secs_f64(),
            report.add_method
        );
        let waited = wait_seeding(&mut api, &mut server, n, started, opts.cap)?;
        report.seeding = waited.last.seeding;
        report.add_cpu_secs = Some(meter::snapshot(server.root_pid()).cpu_secs);
        report.add_read_bytes = read_bytes(pid);
        match waited.secs {
            Some(secs) => {
                report.all_seeding_secs = Some(secs);
                println!(
                    "  all {n} seeding after {secs:.2} s (CPU {:.2} s)",
                    report.add_cpu_secs.unwrap_or(f64::NAN)
                );
            }
            None => {
                let note = format!(
                    "add: {}; {} of {n} were seeding ({})",
                    waited.gave_up.as_deref().unwrap_or("gave up"),
                    waited.last.seeding,
                    waited.last.describe()
                );
                println!("  {note}");
                report.notes.push(note);
            }
        }

        // Idle.
        let before = meter::snapshot(server.root_pid()).cpu_secs;
        std::thread::sleep(opts.idle);
        let after = meter::snapshot(server.root_pid());
        if after.root_exited {
            bail!("{} exited while idle:\n{}", client.name(), server.tail());
        }
        report.idle_cpu_secs = Some(after.cpu_secs - before);
        let status = ProcStatus::read(pid)?;
        report.peak_rss_bytes = Some(status.hwm);
        report.settled_rss_bytes = Some(status.rss);
        report.threads = Some(status.threads);
        println!(
            "  idle {} s: CPU {:.2} s; RSS {:.1} MiB (peak {:.1}); {} threads",
            opts.idle.as_secs(),
            after.cpu_secs - before,
            status.rss as f64 / 1048576.0,
            status.hwm as f64 / 1048576.0,
            status.threads
        );

        // The torrent list, full and delta.
        let (full, delta) = time_lists(&mut api)?;
        println!(
            "  {}: {:.1} ms ({} bytes); delta: {:.2} ms ({} bytes)",
            full.request, full.median_ms, full.body_bytes, delta.median_ms, delta.body_bytes
        );
        report.list_full = Some(full);
        report.list_delta = Some(delta);
        report.rss_after_lists_bytes = ProcStatus::read(pid).ok().map(|s| s.rss);

        // A clean stop, then a restart on the same state.
        report.stop_secs = Some(stop(&mut api, &mut server)?.as_secs_f64());
        println!("  stopped in {:.2} s", report.stop_secs.unwrap_or(f64::NAN));
        server.respawn()?;
        let restarted = Instant::now();
        let (mut api, _) = Api::connect(&mut server, opts.cap)?;
        report.restart_api_secs = Some(restarted.elapsed().as_secs_f64());
        let pid = server.daemon_pid()?;
        let waited = wait_seeding(&mut api, &mut server, n, restarted, opts.cap)?;
        report.restart_seeding = waited.last.seeding;
        report.restart_cpu_secs = Some(meter::snapshot(server.root_pid()).cpu_secs);
        report.restart_read_bytes = read_bytes(pid);
        report.restart_peak_rss_bytes = ProcStatus::read(pid).ok().map(|s| s.hwm);
        match waited.secs {
            Some(secs) => {
                report.restart_secs = Some(secs);
                println!(
                    "  restart: API up after {:.2} s, all seeding after {secs:.2} s \
                     (CPU {:.2} s, read {:.1} MiB of {:.1} MiB data)",
                    report.restart_api_secs.unwrap_or(f64::NAN),
                    report.restart_cpu_secs.unwrap_or(f64::NAN),
                    report.restart_read_bytes.unwrap_or(0) as f64 / 1048576.0,
                    corpus.total_len() as f64 / 1048576.0
                );
            }
            None => {
                let note = format!(
                    "restart: {}; {} of {n} were seeding ({})",
                    waited.gave_up.as_deref().unwrap_or("gave up"),
                    waited.last.seeding,
                    waited.last.describe()
                );
                println!("  {note}");
                report.notes.push(note);
            }
        }
        stop(&mut api, &mut server)?;
        Ok(())
    })();
    server.kill();
    result
}

/// Adds every torrent of `corpus` through `api`: bt and qBittorrent `batch` per
/// `torrents/add` request, Transmission one `torrent-add` call each.
fn add_all(api: &mut Api, corpus: &Corpus, batch: usize, report: &mut ClientReport) -> Result<()> {
    let data_dir = corpus.data_dir.to_string_lossy().into_owned();
    match api {
        Api::Web(web) => {
            // The same request for both: the data is known complete, as a user who
            // moves a finished library to a new client says with skip_checking.
            let fields = vec![
                ("savepath", data_dir.as_str()),
                ("skip_checking", "true"),
                ("autoTMM", "false"),
                ("paused", "false"),
            ];
            report.add_method = format!(
                "torrents/add, {batch} .torrent parts per multipart request, skip_checking=true"
            );
            for (i, chunk) in corpus.items.chunks(batch).enumerate() {
                let torrents: Vec<&[u8]> = chunk.iter().map(|t| t.torrent.as_slice()).collect();
                let started = Instant::now();
                web.add(&torrents, &fields).with_context(|| {
                    format!(
                        "add request {} of {}",
                        i + 1,
                        corpus.items.len().div_ceil(batch)
                    )
                })?;
                report
                    .add_batch_ms
                    .push(started.elapsed().as_secs_f64() * 1e3);
            }
        }
        Api::Rpc(rpc) => {
            report.add_method = format!(
                "torrent-add RPC, one call per torrent (metainfo in base64), timed in groups of {batch}; \
                 Transmission verifies each new torrent's data"
            );
            for chunk in corpus.items.chunks(batch) {
                let started = Instant::now();
                for item in chunk {
                    rpc.add(&item.torrent, &corpus.data_dir)
                        .with_context(|| format!("torrent-add of {}", item.hash))?;
                }
                report
                    .add_batch_ms
                    .push(started.elapsed().as_secs_f64() * 1e3);
            }
        }
    }
    Ok(())
}

/// How a wait for all to seed ended.
struct Waited {
    /// Seconds from `since` until all were seeding; none if it gave up first.
    secs: Option<f64>,
    /// The last tally.
    last: Tally,
    /// Why it gave up, if it did.
    gave_up: Option<String>,
}

/// Polls until `n` torrents are seeding, `cap` has passed since `since`, or the seeding
/// count has not moved for [`STALL`].
fn wait_seeding(
    api: &mut Api,
    server: &mut Server,
    n: usize,
    since: Instant,
    cap: Duration,
) -> Result<Waited> {
    let mut last = Tally::default();
    let mut reported = Instant::now();
    let mut moved = (0, Instant::now());
    let waiting = Instant::now();
    loop {
        if let Some(status) = server.exited()? {
            bail!(
                "{} exited ({status}) with {}; last output:\n{}",
                server.client.name(),
                last.describe(),
                server.tail()
            );
        }
        last = api.tally()?;
        if last.seeding >= n {
            return Ok(Waited {
                secs: Some(since.elapsed().as_secs_f64()),
                last,
                gave_up: None,
            });
        }
        if last.errored > 0 && last.total >= n {
            bail!(
                "torrents in error: {}; last output:\n{}",
                last.describe(),
                server.tail()
            );
        }
        if last.seeding != moved.0 {
            moved = (last.seeding, Instant::now());
        }
        let gave_up = if since.elapsed() >= cap {
            Some(format!("capped at {} s", cap.as_secs()))
        } else if moved.1.elapsed() >= STALL {
            Some(format!(
                "gave up after {:.0} s: no torrent started seeding in the last {} s",
                since.elapsed().as_secs_f64(),
                STALL.as_secs()
            ))
        } else {
            None
        };
        if gave_up.is_some() {
            return Ok(Waited {
                secs: None,
                last,
                gave_up,
            });
        }
        if reported.elapsed() >= Duration::from_secs(30) {
            println!(
                "    {:.0} s: {}",
                since.elapsed().as_secs_f64(),
                last.describe()
            );
            reported = Instant::now();
        }
        std::thread::sleep(poll_interval(waiting.elapsed()));
    }
}

/// The full and the delta torrent list, [`LIST_SAMPLES`] requests each.
fn time_lists(api: &mut Api) -> Result<(Timing, Timing)> {
    let timing = |request: String, samples: Vec<(Duration, usize)>| Timing {
        request,
        median_ms: bench_report::median(
            &samples
                .iter()
                .map(|(d, _)| d.as_secs_f64() * 1e3)
                .collect::<Vec<_>>(),
        )
        .unwrap_or(f64::NAN),
        samples_ms: samples.iter().map(|(d, _)| d.as_secs_f64() * 1e3).collect(),
        body_bytes: samples.last().map_or(0, |(_, len)| *len),
    };
    match api {
        Api::Web(web) => {
            let mut full = Vec::new();
            let mut rid = 0;
            for _ in 0..LIST_SAMPLES {
                let (took, len, new_rid) = web.maindata(0)?;
                full.push((took, len));
                rid = new_rid;
            }
            let mut delta = Vec::new();
            for _ in 0..LIST_SAMPLES {
                let (took, len, new_rid) = web.maindata(rid)?;
                delta.push((took, len));
                rid = new_rid;
            }
            Ok((
                timing("sync/maindata rid=0".into(), full),
                timing("sync/maindata rid=previous".into(), delta),
            ))
        }
        Api::Rpc(rpc) => {
            let mut fields = rpc::WEB_REFRESH_FIELDS.to_vec();
            fields.extend(["name", "totalSize", "hashString", "addedDate"]);
            let full = (0..LIST_SAMPLES)
                .map(|_| rpc.get_timed(&fields, false))
                .collect::<Result<Vec<_>>>()?;
            let delta = (0..LIST_SAMPLES)
                .map(|_| rpc.get_timed(rpc::WEB_REFRESH_FIELDS, true))
                .collect::<Result<Vec<_>>>()?;
            Ok((
                timing("torrent-get (web client fields, all)".into(), full),
                timing("torrent-get ids=recently-active".into(), delta),
            ))
        }
    }
}

/// Asks the daemon to stop and waits until it has exited; returns how long that took.
fn stop(api: &mut Api, server: &mut Server) -> Result<Duration> {
    let started = Instant::now();
    // It may exit before it answers: only its exit counts.
    let asked = api.stop();
    let status = server
        .wait_exit(STOP_TIMEOUT)
        .with_context(|| match &asked {
            Ok(()) => "it was asked to stop".to_owned(),
            Err(e) => format!("asking it to stop failed: {e:#}"),
        })?;
    let took = started.elapsed();
    if !status.success() {
        bail!(
            "{} exited with {status} when asked to stop; last output:\n{}",
            server.client.name(),
            server.tail()
        );
    }
    Ok(took)
}

/// The figures of `/proc/PID/status` the table shows.
struct ProcStatus {
    hwm: u64,
    rss: u64,
    threads: u64,
}

impl ProcStatus {
    fn read(pid: u32) -> Result<ProcStatus> {
        let text = fs::read_to_string(format!("/proc/{pid}/status"))
            .with_context(|| format!("process {pid} is gone"))?;
        let field = |name: &str| -> Result<u64> {
            text.lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
                .with_context(|| format!("no {name} in /proc/{pid}/status"))
        };
        Ok(ProcStatus {
            hwm: field("VmHWM:")? * 1024,
            rss: field("VmRSS:")? * 1024,
            threads: field("Threads:")?,
        })
    }
}

/// `rchar` of `/proc/PID/io`: bytes the process read through read(2) and the like.
fn read_bytes(pid: u32) -> Option<u64> {
    fs::read_to_string(format!("/proc/{pid}/io"))
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("rchar:"))?
        .trim()
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_have_defaults_and_parse() {
        let opts = Options::parse(&[]).unwrap();
        assert_eq!(opts.torrents, 10_000);
        assert_eq!(opts.idle, Duration::from_secs(60));
        assert_eq!(opts.only, CLIENTS);
        let opts = Options::parse(&[
            "--torrents",
            "500",
            "--idle-secs",
            "10",
            "--only",
            "bt,transmission",
        ])
        .unwrap();
        assert_eq!((opts.torrents, opts.idle.as_secs()), (500, 10));
        assert_eq!(opts.only, [Client::Bt, Client::Transmission]);
        assert!(Options::parse(&["--torrents", "0"]).is_err());
        assert!(Options::parse(&["--only", "aria2"]).is_err());
        assert!(Options::parse(&["--frobnicate"]).is_err());
    }

    #[test]
    fn polls_slow_down_as_a_wait_grows() {
        assert_eq!(poll_interval(Duration::ZERO), Duration::from_millis(500));
        assert_eq!(
            poll_interval(Duration::from_secs(60)),
            Duration::from_secs(2)
        );
        assert_eq!(
            poll_interval(Duration::from_secs(1000)),
            Duration::from_secs(5)
        );
    }

    #[test]
    fn tally_counts_seeding_and_errors() {
        let tally = Tally::of(
            [
                ("stalledUP", Some(true)),
                ("uploading", Some(true)),
                ("checkingUP", Some(false)),
                ("error", None),
            ]
            .into_iter(),
        );
        assert_eq!((tally.total, tally.seeding, tally.errored), (4, 2, 1));
        assert!(tally
            .describe()
            .starts_with("4 listed: 1 checkingUP, 1 error"));
    }

    #[test]
    fn own_status_reads() {
        let status = ProcStatus::read(std::process::id()).unwrap();
        assert!(status.rss > 0 && status.hwm >= status.rss && status.threads >= 1);
        assert!(read_bytes(std::process::id()).is_some());
    }
}
