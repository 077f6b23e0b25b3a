//! `bt-daemon-transmission-remote`: Debian's `transmission-remote` 3.00 drives `bt daemon`
//! through its Transmission RPC (`/transmission/rpc` on the API port), with libtorrent
//! seeding and opentracker introducing the peers, all on 127.0.0.1. What the client
//! prints is parsed and checked, and each change it makes is read back through the
//! daemon's qBittorrent Web API, the other façade over the same model:
//!
//! - `-a FILE.torrent` and `-a MAGNET` (with the tracker); `-l` until both are 100% and
//!   seeding; the files byte-identical to the seeders';
//! - `-t N -i` (hash, name, percent done, location);
//! - `-t N --reannounce`, `-t N -td URL` and `-t N -tr ID` (checked with `-it` and the
//!   qBittorrent API);
//! - `-t N -S` (`-l` says Stopped, qBittorrent `stoppedUP`) and `-t N -s`;
//! - `-d`/`-u` (the global limits), `-as`/`-AS` (the alternative pair), `-t N -d` (a
//!   torrent's limit);
//! - `-t N -G 0` / `-g 0` (a file skipped and wanted again, as qBittorrent priorities);
//! - `-si` and `-st`;
//! - `-t N -r` (the data stays) and `-t N --remove-and-delete` (the files are gone).

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use anyhow::{bail, ensure, Context, Result};
use serde_json::Value;

use super::daemon::{
    magnet_link, single_file_torrent, tree_files, BtDaemon, SMALL_LEN, SMALL_PIECE_LEN, SMALL_RATE,
    TREE_RATE,
};
use super::harness::{CHECK_TIMEOUT, TRANSFER_TIMEOUT};
use super::torrents::{Shape, TestTorrent};
use super::{Ctx, Need, Scenario};
use crate::deadline::poll_until;
use crate::payload::CompareOptions;
use crate::peers::libtorrent::{LtSession, SessionOptions};
use crate::peers::opentracker::{announce_url, Opentracker};
use crate::process;

/// The scenario.
pub static TRANSMISSION_REMOTE_SCENARIOS: &[Scenario] = &[Scenario {
    name: "bt-daemon-transmission-remote",
    needs: &[
        Need::Opentracker,
        Need::Libtorrent,
        Need::Transmission,
        Need::Bt("daemon"),
    ],
    run: transmission_remote,
}];

/// Time for one `transmission-remote` call.
const CALL_TIMEOUT: Duration = Duration::from_secs(20);
/// Time for a change to show.
const SHOW_TIMEOUT: Duration = Duration::from_secs(15);

/// `transmission-remote 127.0.0.1:PORT` against the daemon.
struct Remote {
    target: String,
}

impl Remote {
    /// Runs `transmission-remote` with `args`; its stdout.
    fn run(&self, args: &[&str]) -> Result<String> {
        let mut cmd = Command::new("transmission-remote");
        cmd.arg(&self.target).args(args);
        process::run("transmission-remote", &cmd, CALL_TIMEOUT)
            .with_context(|| format!("transmission-remote {}", args.join(" ")))
    }

    /// Runs a command that must answer `success`.
    fn ok(&self, args: &[&str]) -> Result<()> {
        let out = self.run(args)?;
        ensure!(
            out.contains("responded: \"success\""),
            "transmission-remote {}: {out}",
            args.join(" ")
        );
        Ok(())
    }

    /// `-l`, parsed.
    fn list(&self) -> Result<Vec<Row>> {
        let out = self.run(&["-l"])?;
        parse_list(&out).with_context(|| format!("transmission-remote -l printed:\n{out}"))
    }

    /// Waits until `-l` shows what `want` accepts; the rows.
    fn wait_list(
        &self,
        timeout: Duration,
        what: &str,
        want: impl Fn(&[Row]) -> bool,
    ) -> Result<Vec<Row>> {
        let mut last = Vec::new();
        poll_until(timeout, what, || {
            last = self.list()?;
            Ok(want(&last).then(|| last.clone()))
        })
        .with_context(|| format!("last -l: {last:?}"))
    }
}

/// One line of `transmission-remote -l`.
#[derive(Debug, Clone, PartialEq)]
struct Row {
    id: u64,
    /// The `*` after the id: the torrent has an error.
    error: bool,
    done: String,
    status: String,
    name: String,
}

/// Parses `-l`: a header, rows whose columns are separated by two or more spaces (ID,
/// Done, Have, ETA, Up, Down, Ratio, Status, Name), and the `Sum:` line.
fn parse_list(out: &str) -> Result<Vec<Row>> {
    let mut lines = out.lines();
    let header = lines.next().context("no header")?;
    ensure!(header.trim_start().starts_with("ID"), "header {header:?}");
    let mut rows = Vec::new();
    for line in lines {
        if line.starts_with("Sum:") {
            return Ok(rows);
        }
        let cols: Vec<&str> = line
            .trim()
            .split("  ")
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .collect();
        ensure!(cols.len() == 9, "{} columns in {line:?}", cols.len());
        let (id, error) = match cols[0].strip_suffix('*') {
            Some(id) => (id, true),
            None => (cols[0], false),
        };
        rows.push(Row {
            id: id.parse().with_context(|| format!("id in {line:?}"))?,
            error,
            done: cols[1].to_owned(),
            status: cols[7].to_owned(),
            name: cols[8].to_owned(),
        });
    }
    bail!("no Sum: line")
}

/// The value after `  Key: ` in `-i` or `-si` output.
fn field<'a>(out: &'a str, key: &str) -> Option<&'a str> {
    let prefix = format!("{key}: ");
    out.lines()
        .find_map(|l| l.trim().strip_prefix(prefix.as_str()))
        .map(str::trim)
}

fn row(rows: &[Row], id: u64) -> Option<&Row> {
    rows.iter().find(|r| r.id == id)
}

/// Seeding as `-l` shows it: 100% and a status of a complete torrent.
fn seeding(r: &Row) -> bool {
    r.done == "100%" && !r.error && matches!(r.status.as_str(), "Idle" | "Seeding" | "Uploading")
}

fn transmission_remote(ctx: &Ctx) -> Result<()> {
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
    let remote = Remote {
        target: api.to_string(),
    };

    // Add a .torrent and a magnet link; both download and seed.
    let torrent_path = single.torrent.to_str().context("torrent path")?;
    remote.ok(&["-a", torrent_path])?;
    let link = magnet_link(&tree.info.info_hash, &tree.info.name, Some(&tracker));
    remote.ok(&["-a", &link])?;
    let rows = remote.wait_list(TRANSFER_TIMEOUT, "both torrents 100% and seeding", |rows| {
        rows.len() == 2 && rows.iter().all(seeding)
    })?;
    let id_of = |name: &str| {
        rows.iter()
            .find(|r| r.name == name)
            .map(|r| r.id)
            .with_context(|| format!("-l does not list {name}: {rows:?}"))
    };
    let (single_id, tree_id) = (id_of(&single.info.name)?, id_of(&tree.info.name)?);
    ensure!(single_id != tree_id, "two torrents, one id: {rows:?}");
    single
        .check_copy(&downloads, CompareOptions::default())
        .context("the .torrent added with -a")?;
    tree.check_copy(&downloads, CompareOptions::default())
        .context("the magnet link added with -a")?;

    // -i: the torrent as Transmission describes it.
    let info = remote.run(&["-t", &single_id.to_string(), "-i"])?;
    let want = [
        ("Hash", single.info.info_hash.as_str()),
        ("Name", single.info.name.as_str()),
        ("Percent Done", "100%"),
        ("Location", downloads.to_str().unwrap_or_default()),
    ];
    for (key, value) in want {
        ensure!(
            field(&info, key).is_some_and(|v| v.eq_ignore_ascii_case(value)),
            "-t {single_id} -i: {key} is not {value:?}:\n{info}"
        );
    }

    // Trackers: --reannounce; one added with -td (seen by -it and the qBittorrent API) and
    // removed with -tr by its id (the opentracker is 0, the new one 1).
    let single_s = single_id.to_string();
    remote.ok(&["-t", &single_s, "--reannounce"])?;
    let extra = "http://127.0.0.3:9/announce";
    remote.ok(&["-t", &single_s, "-td", extra])?;
    let it = remote.run(&["-t", &single_s, "-it"])?;
    ensure!(
        it.contains("127.0.0.3") && it.contains(&tracker_addr.to_string()),
        "-it does not list both trackers:\n{it}"
    );
    let q = daemon.get_json(&format!("torrents/trackers?hash={}", single.info.info_hash))?;
    ensure!(
        q.as_array()
            .is_some_and(|rows| rows.iter().any(|r| r["url"] == extra)),
        "the qBittorrent API does not list the tracker added with -td: {q}"
    );
    remote.ok(&["-t", &single_s, "-tr", "1"])?;
    let it = remote.run(&["-t", &single_s, "-it"])?;
    ensure!(!it.contains("127.0.0.3"), "-tr 1 left the tracker:\n{it}");

    // Stop and start: -l and the qBittorrent API agree.
    remote.ok(&["-t", &single_s, "-S"])?;
    remote.wait_list(SHOW_TIMEOUT, "the stopped torrent listed Stopped", |rows| {
        row(rows, single_id).is_some_and(|r| r.status == "Stopped" && r.done == "100%")
    })?;
    let state = daemon.torrent(&single.info.info_hash)?["state"].clone();
    ensure!(
        state == "stoppedUP",
        "qBittorrent API state after -S: {state}"
    );
    remote.ok(&["-t", &single_s, "-s"])?;
    remote.wait_list(SHOW_TIMEOUT, "the started torrent seeding again", |rows| {
        row(rows, single_id).is_some_and(seeding)
    })?;

    // Limits, in Transmission's kB/s (1000 bytes).
    remote.ok(&["-d", "100", "-u", "50"])?;
    let prefs = daemon.get_json("app/preferences")?;
    ensure!(
        prefs["dl_limit"] == 100_000 && prefs["up_limit"] == 50_000,
        "after -d 100 -u 50: dl_limit {}, up_limit {}",
        prefs["dl_limit"],
        prefs["up_limit"]
    );
    remote.ok(&["-as"])?;
    ensure!(
        daemon.get_json("transfer/speedLimitsMode")? == 1,
        "-as did not switch to the alternative limits"
    );
    remote.ok(&["-AS"])?;
    ensure!(
        daemon.get_json("transfer/speedLimitsMode")? == 0,
        "-AS did not switch back"
    );
    remote.ok(&["-D", "-U"])?;
    remote.ok(&["-t", &single_s, "-d", "30"])?;
    let t = daemon.torrent(&single.info.info_hash)?;
    ensure!(
        t["dl_limit"] == 30_000,
        "after -t {single_id} -d 30: dl_limit {}",
        t["dl_limit"]
    );

    // A file unwanted and wanted again.
    let tree_s = tree_id.to_string();
    let priority = |daemon: &BtDaemon| -> Result<Value> {
        let files = daemon.get_json(&format!("torrents/files?hash={}", tree.info.info_hash))?;
        Ok(files[0]["priority"].clone())
    };
    remote.ok(&["-t", &tree_s, "-G", "0"])?;
    ensure!(
        priority(&daemon)? == 0,
        "after -G 0 file 0 has priority {}",
        priority(&daemon)?
    );
    remote.ok(&["-t", &tree_s, "-g", "0"])?;
    ensure!(
        priority(&daemon)? == 1,
        "after -g 0 file 0 has priority {}",
        priority(&daemon)?
    );

    // Session information and statistics.
    let si = remote.run(&["-si"])?;
    ensure!(
        field(&si, "Download directory") == downloads.to_str(),
        "-si does not show the download directory:\n{si}"
    );
    ensure!(field(&si, "RPC version").is_some(), "-si:\n{si}");
    let st = remote.run(&["-st"])?;
    ensure!(
        st.contains("CURRENT SESSION") && field(&st, "Downloaded").is_some_and(|v| v != "None"),
        "-st shows nothing downloaded:\n{st}"
    );

    // Remove: the data stays; remove and delete: the files go.
    remote.ok(&["-t", &single_s, "-r"])?;
    remote.wait_list(SHOW_TIMEOUT, "the removed torrent gone from -l", |rows| {
        row(rows, single_id).is_none() && row(rows, tree_id).is_some()
    })?;
    ensure!(
        single
            .check_copy(&downloads, CompareOptions::default())
            .is_ok(),
        "-r deleted the data"
    );
    remote.ok(&["-t", &tree_s, "--remove-and-delete"])?;
    remote.wait_list(SHOW_TIMEOUT, "an empty list", <[Row]>::is_empty)?;
    // What may stay: the removed (not deleted) torrent's file and resume state.
    let kept_resume = Path::new(".bt").join(format!("{}.resume", single.info.info_hash));
    let left: Vec<_> = tree_files(&downloads)?
        .into_iter()
        .filter(|p| {
            !p.starts_with(&single.info.name) && *p != Path::new(".bt") && *p != kept_resume
        })
        .collect();
    ensure!(
        left.is_empty(),
        "after --remove-and-delete these are left in {}: {left:?}",
        downloads.display()
    );
    ctx.note(format!("ids {single_id} and {tree_id}"));
    drop(daemon);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIST: &str = "    ID   Done       Have  ETA           Up    Down  Ratio  Status       Name\n     1   100%    3.1 MB  Done         0.0     0.0    0.0  Idle         single.bin\n     2*   n/a       None  Unknown      0.0     0.0   None  Up & Down    tree\nSum:             3.1 MB               0.0     0.0\n";

    #[test]
    fn list_output_parses() {
        let rows = parse_list(LIST).unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(
            rows[0],
            Row {
                id: 1,
                error: false,
                done: "100%".into(),
                status: "Idle".into(),
                name: "single.bin".into()
            }
        );
        assert!(seeding(&rows[0]));
        assert!(rows[1].error && rows[1].status == "Up & Down" && rows[1].done == "n/a");
        assert!(parse_list("garbage").is_err());
        assert_eq!(field("  Hash: abc\n  Name: x y\n", "Name"), Some("x y"));
    }
}
