//! `cargo xtask bench webui`: the web UI of bt daemon beside qbittorrent-nox's, each
//! holding the same N torrents (stopped magnet links, added through the Web API), in
//! Debian's Chromium driven by `webui-tests/bench.mjs`: the time from navigation to the
//! first painted row of the torrent list, and the longest frame while the list scrolls
//! from top to bottom. Targets for bt: first row within 500 ms, no frame over 50 ms.
//! Prints the figures and writes `target/bench/webui-<timestamp>.json`. A missing
//! qbittorrent-nox is skipped loudly; this is a benchmark, not a test.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};

use super::clients::Client;
use super::daemon::{prepare_bt, servers::Server};
use super::report as bench_report;
use crate::fixture_test::webui;
use crate::layout;
use crate::peers::wait_listening;
use crate::sandbox::Sandbox;

/// Usage text of `cargo xtask bench webui`.
pub const USAGE: &str = "\
usage: cargo xtask bench webui [--torrents N] [--runs N] [--only bt|qbittorrent] [--bt PATH]

The web UI of bt daemon and of qbittorrent-nox, each holding N stopped magnet links
(default 10000), in Debian's Chromium at 1280x800: time to the first painted row of the
list, and the longest frame while scrolling it from top to bottom (median of --runs
page loads, default 3). Targets for bt: 500 ms and 50 ms. Writes
target/bench/webui-<timestamp>.json.
";

/// bt's targets: first row painted, longest frame while scrolling (ms).
const TARGETS: (f64, f64) = (500.0, 50.0);

/// Runs the benchmark.
pub fn run(args: &[&str]) -> Result<()> {
    let (mut torrents, mut runs, mut only, mut bt_path) = (10_000u64, 3u64, None, None);
    let mut it = args.iter().copied();
    while let Some(arg) = it.next() {
        let mut value = || it.next().with_context(|| format!("{arg} needs a value"));
        match arg {
            "-h" | "--help" => {
                print!("{USAGE}");
                return Ok(());
            }
            "--torrents" => torrents = value()?.parse().context("--torrents")?,
            "--runs" => runs = value()?.parse().context("--runs")?,
            "--only" => only = Some(value()?.to_owned()),
            "--bt" => bt_path = Some(PathBuf::from(value()?)),
            other => bail!("unknown bench webui option {other:?}\n{USAGE}"),
        }
    }
    if let Some(missing) = webui::missing() {
        bail!("bench webui needs {missing}");
    }
    let wanted = |name: &str| only.as_deref().is_none_or(|o| o == name);
    let mut clients = Vec::new();
    if wanted("bt") {
        clients.push(Client::Bt);
    }
    if wanted("qbittorrent") {
        if layout::which(super::qbittorrent::PROGRAM).is_some() {
            clients.push(Client::Qbittorrent);
        } else {
            println!("bench webui: SKIPPING qbittorrent: qbittorrent-nox not installed");
        }
    }
    let bt = if clients.contains(&Client::Bt) {
        prepare_bt(bt_path.as_deref())?
    } else {
        PathBuf::new()
    };
    let sandbox = Sandbox::new("bench-webui")?;
    let data = sandbox.mkdir("data")?;
    let mut servers = Vec::new();
    let mut targets = Vec::new();
    for client in clients {
        let server = Server::start(client, &sandbox, &bt, &data, Duration::from_secs(3600))?;
        wait_listening(server.api, Duration::from_secs(60))
            .with_context(|| format!("{}'s web UI", client.name()))?;
        let (row, scroller) = match client {
            Client::Bt => ("#torrent-grid .tbody [role=row]", "#torrent-grid"),
            _ => ("#torrentsTableDiv tbody tr", "#torrentsTableDiv"),
        };
        targets.push(json!({
            "name": client.name(),
            "base": format!("http://{}/", server.api),
            "row": row,
            "scroller": scroller,
        }));
        servers.push(server);
    }
    let plan = json!({
        "torrents": torrents,
        "runs": runs,
        "chromium": webui::CHROMIUM,
        "profile_parent": sandbox.path(),
        "targets": targets,
    });
    let plan_path = sandbox.path().join("bench-plan.json");
    std::fs::write(&plan_path, serde_json::to_vec_pretty(&plan)?)?;
    let mut cmd = Command::new("node");
    cmd.arg(webui::tests_dir().join("bench.mjs"))
        .arg(&plan_path)
        .current_dir(webui::tests_dir());
    let out = cmd.output().context("cannot run node")?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    for line in stdout.lines().filter(|l| l.starts_with("bench webui:")) {
        println!("{line}");
    }
    for mut server in servers {
        server.kill();
    }
    if !out.status.success() {
        bail!(
            "bench.mjs failed ({}):\n{stdout}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let figures: Value = stdout
        .lines()
        .last()
        .and_then(|l| serde_json::from_str(l).ok())
        .context("bench.mjs printed no figures")?;
    println!(
        "\n{:<12} {:>10} {:>18} {:>20} {:>18}",
        "web UI", "torrents", "first row (ms)", "longest gap (ms)", "longest LoAF (ms)"
    );
    for r in figures["results"].as_array().into_iter().flatten() {
        println!(
            "{:<12} {:>10} {:>18} {:>20.1} {:>18.1}",
            r["name"].as_str().unwrap_or("?"),
            r["torrents"],
            r["median_first_row_paint_ms"],
            r["median_longest_gap_ms"].as_f64().unwrap_or(f64::NAN),
            r["median_longest_loaf_ms"].as_f64().unwrap_or(f64::NAN),
        );
        if r["name"] == "bt" {
            let first = r["median_first_row_paint_ms"].as_f64().unwrap_or(f64::MAX);
            let frame = r["median_longest_gap_ms"].as_f64().unwrap_or(f64::MAX);
            println!(
                "bt targets: first row {} ({first:.0} ms of {} ms), longest frame {} ({frame:.1} ms of {} ms)",
                if first <= TARGETS.0 { "met" } else { "MISSED" },
                TARGETS.0,
                if frame <= TARGETS.1 { "met" } else { "MISSED" },
                TARGETS.1
            );
        }
    }
    let dir = layout::target_dir().join("bench");
    std::fs::create_dir_all(&dir)?;
    let path = dir.join(format!("webui-{}.json", bench_report::utc_timestamp()));
    std::fs::write(&path, serde_json::to_vec_pretty(&figures)?)?;
    println!("bench webui: figures written to {}", path.display());
    Ok(())
}
