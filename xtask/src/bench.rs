//! `cargo xtask bench`: `bt` side by side with the BitTorrent clients people use, over
//! 127.0.0.1, and (`--micro`) the criterion micro-benches of the library crates.
//!
//! Two payloads are made on the spot: a large one with 1 MiB pieces (per-byte costs) and
//! a small one with 16 KiB pieces (per-piece and per-message costs). For each, a tuned
//! libtorrent seeder and `bt seed` serve the same data, and every [`clients::PAIRS`]
//! entry downloads it once per round, one transfer at a time, in an order that changes
//! every round (see [`round_order`]); a fresh leecher writes into an empty folder, and
//! the copy is checked byte for byte afterwards. Medians go to a table on stdout and, with every
//! run's figures, to `target/bench/bench-<timestamp>.json`. A client that is not
//! installed, or a `bt` subcommand that does not exist yet, skips its pairs with a note.
//!
//! Modules: [`options`] the command line; [`fixture`] payloads and torrents;
//! [`clients`] the pairs, seeders and one measured transfer; [`meter`] CPU and memory of
//! a process tree from /proc; [`report`] medians, ratios, table and JSON; [`micro`] the
//! criterion benches. `cargo xtask bench parse` ([`parse`]) measures loading a
//! `.torrent` instead; `cargo xtask bench daemon` ([`daemon`]) bt daemon beside
//! qbittorrent-nox and transmission-daemon holding many torrents.

mod clients;
mod ctorrent;
mod daemon;
mod fixture;
mod meter;
mod micro;
mod options;
mod parse;
mod qbittorrent;
mod report;
mod webui;

use std::collections::BTreeMap;
use std::io::Write as _;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use self::clients::{Client, Env, Pair, Seeder, PAIRS};
use self::fixture::{Fixture, Maker};
use self::options::{Options, LARGE_PIECE_LEN, SMALL_PIECE_LEN};
use self::report::{Document, PairReport, PayloadReport, Run, Skipped};
use crate::layout::{self, Profile};
use crate::peers::bt::Bt;
use crate::peers::libtorrent;
use crate::peers::opentracker::{announce_url, Opentracker};
use crate::process;
use crate::sandbox::Sandbox;

/// Runs `cargo xtask bench <args>`.
pub fn run(args: &[&str]) -> Result<()> {
    if let Some((&"parse", rest)) = args.split_first() {
        return parse::run(rest);
    }
    if let Some((&"daemon", rest)) = args.split_first() {
        return daemon::run(rest);
    }
    if let Some((&"webui", rest)) = args.split_first() {
        return webui::run(rest);
    }
    if args.iter().any(|a| matches!(*a, "-h" | "--help")) {
        print!("{}", options::USAGE);
        return Ok(());
    }
    let opts = Options::parse(args)?;
    let mut doc = Document {
        timestamp: report::utc_timestamp(),
        command: std::iter::once("cargo xtask bench")
            .chain(args.iter().copied())
            .collect::<Vec<_>>()
            .join(" "),
        host: report::Host {
            cpus: std::thread::available_parallelism().map_or(0, |n| n.get()),
            kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease")
                .unwrap_or_default()
                .trim()
                .to_owned(),
            loadavg_start: report::loadavg(),
            loadavg_end: String::new(),
        },
        versions: BTreeMap::new(),
        method: report::METHOD.to_vec(),
        payloads: Vec::new(),
        micro: Vec::new(),
    };
    if opts.micro {
        doc.micro = micro::run_all()?;
    } else {
        loopback(&opts, &mut doc)?;
    }
    doc.host.loadavg_end = report::loadavg();
    let path = doc.write(&layout::target_dir())?;
    println!("\nbench: figures written to {}", path.display());
    if !opts.micro {
        println!("bench: micro-benches (run them with `cargo xtask bench --micro`):");
        for &(package, bench) in micro::MICRO_BENCHES {
            println!("  {}", micro::command_line(package, bench));
        }
    }
    Ok(())
}

/// The loopback benchmark: both payloads, every available pair, all rounds.
fn loopback(opts: &Options, doc: &mut Document) -> Result<()> {
    let (bt, bt_problem) = prepare_bt(opts);
    doc.versions = versions(&bt, bt_problem.is_none());
    let sandbox = Sandbox::new("bench")?;
    println!(
        "bench: {} round(s); bt = {}; work dir {}; load average {}",
        opts.rounds,
        bt.path().display(),
        sandbox.path().display(),
        report::loadavg()
    );

    let mut pairs = Vec::new();
    let mut skipped = Vec::new();
    for &pair in PAIRS.iter().filter(|p| opts.selects(&p.name())) {
        match clients::unavailable(pair, &bt, bt_problem.as_deref()) {
            Some(reason) => {
                println!("bench: skipping {}: {reason}", pair.name());
                skipped.push(Skipped {
                    name: pair.name(),
                    reason,
                });
            }
            None => pairs.push(pair),
        }
    }
    if pairs.is_empty() {
        bail!("no pair can run here (see the skip messages above)");
    }

    let maker = if libtorrent::is_installed() {
        Maker::Libtorrent
    } else if bt_problem.is_none() && bt.supports("create") {
        Maker::Bt(&bt)
    } else {
        bail!("neither python3-libtorrent nor `bt create` is available to make the torrents");
    };
    let tracker_addr = sandbox.addr()?;
    let tracker_url = announce_url(tracker_addr);
    let mut fixtures = Vec::new();
    for (label, len, piece_len) in [
        ("large", opts.size, LARGE_PIECE_LEN),
        ("small", opts.small_size, SMALL_PIECE_LEN),
    ] {
        if len == 0 {
            continue;
        }
        let started = Instant::now();
        let fixture = Fixture::make(&sandbox, label, len, piece_len, &tracker_url, maker)?;
        println!(
            "bench: {label} payload: {} ({:.1}s to make)",
            fixture.describe(),
            started.elapsed().as_secs_f64()
        );
        fixtures.push(fixture);
    }
    let tracker = if pairs
        .iter()
        .any(|p| matches!(p.leecher, Client::Aria2 | Client::Ctorrent))
    {
        let hashes: Vec<&str> = fixtures.iter().map(|f| f.info_hash.as_str()).collect();
        Some(Opentracker::start(
            &sandbox,
            "opentracker",
            tracker_addr,
            &hashes,
        )?)
    } else {
        None
    };
    let env = Env {
        sandbox: &sandbox,
        bt: &bt,
        tracker: tracker.as_ref(),
        peers_file: sandbox.path().join("seeder-dials.txt"),
    };
    clients::write_peers_file(&env.peers_file, &[])?;

    for fixture in &fixtures {
        let mut skipped = skipped.clone();
        let mut suited = Vec::new();
        for &pair in &pairs {
            match clients::unsuited(pair, fixture.piece_len) {
                Some(reason) => {
                    println!(
                        "bench: {}: skipping {}: {reason}",
                        fixture.label,
                        pair.name()
                    );
                    skipped.push(Skipped {
                        name: pair.name(),
                        reason,
                    });
                }
                None => suited.push(pair),
            }
        }
        let mut payload = run_payload(&env, fixture, &suited, opts.rounds)?;
        payload.skipped = skipped;
        payload.finish();
        print!("{}", payload.table(opts.rounds));
        doc.payloads.push(payload);
    }
    println!();
    for line in report::METHOD {
        println!("  {line}");
    }
    Ok(())
}

/// All rounds of every pair on one payload.
fn run_payload(
    env: &Env,
    fixture: &Fixture,
    pairs: &[Pair],
    rounds: usize,
) -> Result<PayloadReport> {
    println!("\nbench: {}: {}", fixture.label, fixture.describe());
    let mut reports: Vec<PairReport> = pairs.iter().map(|&p| PairReport::new(p)).collect();
    let mut seeders: Vec<Seeder> = Vec::new();
    let timeout = clients::transfer_timeout(fixture.len);
    for round in 0..rounds {
        for index in round_order(pairs.len(), round) {
            let pair = pairs[index];
            let tag = format!(
                "{}-r{}-{}-{}",
                fixture.label,
                round + 1,
                pair.seeder.name(),
                pair.leecher.name()
            );
            print!("  round {}/{rounds}  {:<26} ", round + 1, pair.name());
            let _ = std::io::stdout().flush();
            let loadavg = report::loadavg_1m();
            let result = seeder_for(env, fixture, &mut seeders, pair.seeder, timeout)
                .and_then(|seeder| clients::transfer(env, fixture, seeder, pair.leecher, &tag));
            let run = match result {
                Ok(sample) => {
                    let speed = report::mib_per_s(fixture.len, sample.wall_secs);
                    println!(
                        "{:6.2} s {:7.1} MiB/s  CPU {:5.2} s  RSS {:6.1} MiB  seeder CPU {:5.2} s",
                        sample.wall_secs,
                        speed,
                        sample.cpu_secs,
                        sample.peak_rss_bytes as f64 / crate::payload::MIB as f64,
                        sample.seeder_cpu_secs
                    );
                    Run {
                        round: round + 1,
                        loadavg,
                        sample: Some(sample),
                        mib_per_s: Some(speed),
                        error: None,
                    }
                }
                Err(err) => {
                    let error = format!("{err:#}");
                    println!("FAILED: {}", brief(&error));
                    let log = env.sandbox.path().join("logs").join(format!("{tag}.log"));
                    println!("    (log: {}, kept until the bench ends)", log.display());
                    Run {
                        round: round + 1,
                        loadavg,
                        sample: None,
                        mib_per_s: None,
                        error: Some(error),
                    }
                }
            };
            reports[index].runs.push(run);
        }
    }
    Ok(PayloadReport {
        label: fixture.label.to_owned(),
        len: fixture.len,
        piece_len: fixture.piece_len,
        pieces: fixture.pieces(),
        pairs: reports,
        skipped: Vec::new(),
    })
}

/// The order in which round `round` (from 0) runs `n` pairs: pair
/// `(round + i * stride) % n` at step `i`, the stride cycling through the numbers coprime
/// to `n`. So no pair always runs first, and a pair does not always follow the same one:
/// what a transfer leaves behind (freed memory the VM hands back to its host, dirty
/// pages, a busy disk) would otherwise tax the same neighbour every round.
fn round_order(n: usize, round: usize) -> Vec<usize> {
    let strides: Vec<usize> = (1..n.max(2)).filter(|&s| gcd(s, n) == 1).collect();
    let stride = strides
        .get(round % strides.len().max(1))
        .copied()
        .unwrap_or(1);
    (0..n).map(|i| (round + i * stride) % n).collect()
}

/// Greatest common divisor.
fn gcd(a: usize, b: usize) -> usize {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

/// The first line of a (multi-line) error and its last few lines, indented under the
/// progress line; the JSON keeps all of it.
fn brief(text: &str) -> String {
    const TAIL: usize = 3;
    let lines: Vec<&str> = text.lines().collect();
    let mut shown = lines.iter().take(1).copied().collect::<Vec<_>>();
    if lines.len() > 1 + TAIL {
        shown.push("...");
    }
    shown.extend(lines.iter().skip(1.max(lines.len().saturating_sub(TAIL))));
    shown.join("\n    ")
}

/// The running seeder of `kind`, started (or restarted, if it died or could reach the
/// harness's hard lifetime during the next transfer) as needed.
fn seeder_for<'s>(
    env: &Env,
    fixture: &Fixture,
    seeders: &'s mut Vec<Seeder>,
    kind: Client,
    timeout: Duration,
) -> Result<&'s Seeder> {
    if let Some(i) = seeders.iter().position(|s| s.kind == kind) {
        if !seeders[i].needs_restart(timeout) {
            return Ok(&seeders[i]);
        }
        seeders.remove(i);
    }
    let name = format!("{}-seed-{}-{}", fixture.label, kind.name(), seeders.len());
    let name = unique_log_name(env, &name);
    let seeder = Seeder::start(env, fixture, kind, &name)
        .with_context(|| format!("cannot start the {} seeder", kind.name()))?;
    seeders.push(seeder);
    Ok(seeders.last().expect("just pushed"))
}

/// `name`, or `name-2`, `name-3`... if a log of that name exists already.
fn unique_log_name(env: &Env, name: &str) -> String {
    let logs = env.sandbox.path().join("logs");
    (1..)
        .map(|n| {
            if n == 1 {
                name.to_owned()
            } else {
                format!("{name}-{n}")
            }
        })
        .find(|n| !logs.join(format!("{n}.log")).exists())
        .expect("an unused name exists")
}

/// The `bt` to benchmark: `--bt PATH`, or a fresh release build; with why it cannot be
/// used, if it cannot.
fn prepare_bt(opts: &Options) -> (Bt, Option<String>) {
    let (mut bt, problem) = match &opts.bt {
        Some(path) => (Bt::new(path.clone()), None),
        None => {
            println!("bench: building bt (cargo build --release -p bt-cli)");
            let mut cmd = Command::new(layout::cargo());
            cmd.args(["build", "--release", "-p", "bt-cli"])
                .current_dir(layout::workspace_root());
            let problem = match cmd.status() {
                Ok(status) if status.success() => None,
                Ok(status) => Some(format!(
                    "`cargo build --release -p bt-cli` failed ({status}); \
                     use --bt PATH to run an existing binary"
                )),
                Err(err) => Some(format!("cannot run cargo: {err}")),
            };
            (Bt::new(layout::bt_binary(Profile::Release)), problem)
        }
    };
    // Like every other client here: no DHT (bt has it on by default).
    let has_no_dht = ["download", "seed"]
        .iter()
        .all(|sub| bt.help(sub).is_some_and(|text| text.contains("--no-dht")));
    if has_no_dht {
        bt.set_session_args(&["--no-dht"]);
    }
    (bt, problem)
}

/// The version of every client, as each reports it.
fn versions(bt: &Bt, bt_usable: bool) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut ask = |name: &str, program: &str, script: &str| {
        if layout::which(program).is_none() {
            return;
        }
        let mut cmd = Command::new("sh");
        cmd.arg("-c").arg(script);
        if let Ok(text) = process::run(name, &cmd, Duration::from_secs(20)) {
            let line = text.lines().next().unwrap_or("").trim().to_owned();
            out.insert(name.to_owned(), line);
        }
    };
    ask(
        "libtorrent",
        libtorrent::PYTHON,
        "/usr/bin/python3 -c 'import libtorrent; print(libtorrent.__version__)'",
    );
    ask(
        "transmission",
        "transmission-daemon",
        "transmission-daemon -V 2>&1",
    );
    ask("aria2", "aria2c", "aria2c --version");
    ask("ctorrent", "ctorrent", "ctorrent -h 2>&1");
    ask(
        "qbittorrent",
        "qbittorrent-nox",
        "qbittorrent-nox --version 2>&1",
    );
    if bt_usable && bt.path().is_file() {
        let mut cmd = Command::new(bt.path());
        cmd.arg("--version");
        if let Ok(text) = process::run("bt --version", &cmd, Duration::from_secs(20)) {
            out.insert("bt".to_owned(), text.trim().to_owned());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn brief_keeps_the_first_and_last_lines() {
        assert_eq!(brief("one"), "one");
        assert_eq!(brief("a\nb\nc"), "a\n    b\n    c");
        let long = (1..=10)
            .map(|i| i.to_string())
            .collect::<Vec<_>>()
            .join("\n");
        assert_eq!(brief(&long), "1\n    ...\n    8\n    9\n    10");
    }

    #[test]
    fn every_round_runs_every_pair_once() {
        for n in 1..=9 {
            for round in 0..6 {
                let mut order = round_order(n, round);
                order.sort_unstable();
                assert_eq!(order, (0..n).collect::<Vec<_>>(), "n {n} round {round}");
            }
        }
    }

    #[test]
    fn a_pair_follows_a_different_one_each_round() {
        // Seven and eight pairs (the two tables), three rounds: no pair has the same
        // predecessor twice, and no pair starts two rounds.
        for n in [7, 8] {
            a_pair_follows_a_different_one_each_round_of(n);
        }
    }

    fn a_pair_follows_a_different_one_each_round_of(n: usize) {
        let orders: Vec<Vec<usize>> = (0..3).map(|r| round_order(n, r)).collect();
        for pair in 0..n {
            let before: Vec<Option<usize>> = orders
                .iter()
                .map(|o| {
                    let at = o.iter().position(|&p| p == pair).unwrap();
                    at.checked_sub(1).map(|i| o[i])
                })
                .collect();
            let mut seen: Vec<usize> = before.iter().flatten().copied().collect();
            let count = seen.len();
            seen.sort_unstable();
            seen.dedup();
            assert_eq!(seen.len(), count, "pair {pair}: {orders:?}");
        }
        let firsts: Vec<usize> = orders.iter().map(|o| o[0]).collect();
        assert_eq!(firsts, vec![0, 1, 2]);
    }
}
