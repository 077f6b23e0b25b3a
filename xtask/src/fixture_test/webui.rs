//! `bt-webui-browser`: the web UI of `bt daemon` in a real browser. Debian's Chromium,
//! driven by `playwright-core` (told to use that Chromium: Playwright cannot download its
//! own browsers here) and checked by `axe-core`, runs `webui-tests/webui.test.mjs`, while
//! libtorrent seeds two torrents that opentracker introduces, all on 127.0.0.1.
//!
//! In the browser: a category and a password set through the settings dialog; the login
//! page (a wrong password refused, the right one let in); a single-file torrent added by
//! magnet link and a multi-file one by `.torrent` upload with its files chosen before the
//! download starts (one skipped); both watched to completion; the grid driven from the
//! keyboard; a stop and a start; a category set and filtered on; every screen captured in
//! light and dark at desktop (1280x800) and phone (390x844) size as PNGs in
//! `target/webui-screens/`, each checked by axe-core (a serious or critical violation
//! fails); the multi-file torrent deleted with its data; the alternative speed limits
//! toggled. The harness then checks the bytes: the magnet's file is identical to the
//! seeder's and the deleted torrent's files are gone.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{ensure, Context, Result};
use serde_json::json;

use super::daemon::{magnet_link, single_file_torrent, tree_files, BtDaemon};
use super::daemon::{SMALL_LEN, SMALL_PIECE_LEN, SMALL_RATE};
use super::harness::CHECK_TIMEOUT;
use super::torrents::{Shape, TestTorrent};
use super::{Ctx, Need, Scenario};
use crate::layout;
use crate::payload::CompareOptions;
use crate::peers::libtorrent::{LtSession, SessionOptions};
use crate::peers::opentracker::{announce_url, Opentracker};

/// The web UI scenarios.
pub static WEBUI_SCENARIOS: &[Scenario] = &[Scenario {
    name: "bt-webui-browser",
    needs: &[
        Need::Opentracker,
        Need::Libtorrent,
        Need::Browser,
        Need::Bt("daemon"),
    ],
    run: browser,
}];

/// Where Debian's Chromium is.
pub const CHROMIUM: &str = "/usr/bin/chromium";

/// The test's folder: `package.json`, the lock file and `node_modules` (`npm ci`).
pub fn tests_dir() -> PathBuf {
    layout::workspace_root().join("webui-tests")
}

/// What the browser test needs that is missing (Chromium, node, the npm packages), if
/// anything.
pub fn missing() -> Option<String> {
    let mut missing = Vec::new();
    if !Path::new(CHROMIUM).is_file() {
        missing.push("chromium (apt)".to_owned());
    }
    if layout::which("node").is_none() {
        missing.push("node".to_owned());
    }
    for package in ["playwright-core", "axe-core"] {
        if !tests_dir().join("node_modules").join(package).is_dir() {
            missing.push(format!("{package} (npm ci in webui-tests/)"));
        }
    }
    (!missing.is_empty()).then(|| missing.join(", "))
}

/// The multi-file torrent's seeder's upload limit: its 415 KiB in about 6 s, so the file
/// choice happens before the download could end.
const TREE_RATE: u64 = 64 * 1024;
/// The file of the multi-file torrent the browser skips, under the torrent's folder.
const SKIPPED: &str = "z/last.bin";
/// The browser test's own limit.
const BROWSER_TIMEOUT: Duration = Duration::from_secs(600);

fn browser(ctx: &Ctx) -> Result<()> {
    let sb = &ctx.sandbox;
    let tracker_addr = sb.addr()?;
    let tracker = announce_url(tracker_addr);
    let single = single_file_torrent(
        sb,
        "single.bin",
        SMALL_LEN,
        SMALL_PIECE_LEN,
        std::slice::from_ref(&tracker),
    )?;
    let tree = TestTorrent::make(sb, Shape::MultiFile, std::slice::from_ref(&tracker))?;
    let _tracker = Opentracker::start(
        sb,
        "opentracker",
        tracker_addr,
        &[&single.info.info_hash, &tree.info.info_hash],
    )?;
    let seed = |name: &str, t: &TestTorrent, upload_limit: u64| {
        let opts = SessionOptions {
            status_interval: Some(1.0),
            upload_limit,
            ..SessionOptions::default()
        };
        LtSession::seed(sb, name, &t.torrent, &t.data_dir, &opts)
    };
    let mut seed_single = seed("lt-seed-single", &single, SMALL_RATE)?;
    let mut seed_tree = seed("lt-seed-tree", &tree, TREE_RATE)?;
    seed_single.wait_seeding(CHECK_TIMEOUT)?;
    seed_tree.wait_seeding(CHECK_TIMEOUT)?;

    let state_dir = sb.mkdir("daemon-state")?;
    let downloads = sb.mkdir("downloads")?;
    let api = sb.addr()?;
    let daemon = BtDaemon::start(ctx, "bt-daemon", &state_dir, &downloads, api)?;

    let screens = layout::target_dir().join("webui-screens");
    // Only this run's screenshots: none left over from an earlier run.
    if screens.exists() {
        std::fs::remove_dir_all(&screens)
            .with_context(|| format!("cannot clear {}", screens.display()))?;
    }
    let plan = json!({
        "base": format!("http://{api}/"),
        "chromium": CHROMIUM,
        "screens": screens,
        "profile_parent": sb.path(),
        "timeout": 90,
        "username": "admin",
        "password": "a browser test",
        "category": "fixtures",
        "magnet": {
            "name": single.info.name,
            "link": magnet_link(&single.info.info_hash, &single.info.name, Some(&tracker)),
        },
        "upload": {
            "name": tree.info.name,
            "torrent_file": tree.torrent,
            "file_name": tree.torrent.file_name().map(|n| n.to_string_lossy()),
            "skip_path": SKIPPED,
            "skip_leaf": SKIPPED.rsplit('/').next(),
        },
    });
    let plan_path = sb.path().join("webui-plan.json");
    std::fs::write(&plan_path, serde_json::to_vec_pretty(&plan)?)?;

    let mut cmd = Command::new("node");
    cmd.arg(tests_dir().join("webui.test.mjs"))
        .arg(&plan_path)
        .current_dir(tests_dir());
    let mut proc = sb.spawn("browser", &cmd)?;
    let mut lines = Vec::new();
    // Returns only with an error: stdout closed (the test ended) or the timeout.
    let ended = proc.read_lines_until(BROWSER_TIMEOUT, "the browser test", |line| {
        lines.push(line.to_owned());
        Ok(None::<()>)
    });
    let status = proc
        .try_exit()?
        .with_context(|| format!("the browser test did not end: {ended:?}"))?;
    ensure!(
        status.success() && lines.last().map(String::as_str) == Some("webui: ok"),
        "the browser test ended {status} without `webui: ok`; its output:\n{}",
        proc.tail()
    );
    let shots = std::fs::read_dir(&screens)
        .with_context(|| format!("no screenshots in {}", screens.display()))?
        .filter(|e| {
            e.as_ref()
                .is_ok_and(|e| e.path().extension().is_some_and(|x| x == "png"))
        })
        .count();
    ctx.note(format!("{shots} screenshots in {}", screens.display()));

    single
        .check_copy(&downloads, CompareOptions::default())
        .context("the torrent added by magnet link in the browser")?;
    let left: Vec<PathBuf> = tree_files(&downloads)?
        .into_iter()
        .filter(|p| p.starts_with(&tree.info.name))
        .collect();
    ensure!(
        left.is_empty(),
        "after a delete with data in the browser these are left: {left:?}"
    );
    drop(daemon);
    Ok(())
}
