//! `bt show HASH [--json]`: one torrent's properties, files and trackers.

use std::fmt::Write as _;

use anyhow::Result;
use serde_json::{json, Value};

use super::client::{ApiError, Client};
use super::fields::{date, eta, float, int, percent, rate, ratio, text, tracker_status, uint};
use super::table::{Align, Table};
use super::{select, ApiArgs};
use crate::format;

/// Arguments of `bt show`.
#[derive(clap::Args)]
pub struct Args {
    /// The torrent's info-hash, or the start of it that no other torrent shares.
    hash: String,
    /// Print one JSON object: `torrent` (its `torrents/info` object), `properties`,
    /// `files` and `trackers`, each as the daemon gives it.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    api: ApiArgs,
}

/// A per-torrent endpoint's answer; 404 means the torrent is gone.
pub(super) fn about(client: &Client, endpoint: &str, hash: &str) -> Result<Value> {
    match client.get_json(endpoint, &[("hash", hash)]) {
        Err(e) if e.status() == Some(404) => Err(anyhow::anyhow!("no torrent {hash}")),
        other => Ok(other?),
    }
}

/// Runs `bt show`.
pub fn run(args: Args) -> Result<()> {
    let client = args.api.connect()?;
    let torrent = select::resolve(&client, std::slice::from_ref(&args.hash))?
        .pop()
        .ok_or_else(|| ApiError::Other {
            what: "torrents/info".into(),
            message: "the torrent vanished".into(),
        })?;
    let hash = select::hash(&torrent).to_string();
    let properties = about(&client, "torrents/properties", &hash)?;
    let files = about(&client, "torrents/files", &hash)?;
    let trackers = about(&client, "torrents/trackers", &hash)?;
    if args.json {
        let all = json!({
            "torrent": torrent,
            "properties": properties,
            "files": files,
            "trackers": trackers,
        });
        return format::print(&(serde_json::to_string_pretty(&all)? + "\n"));
    }
    format::print(&render(&torrent, &properties, &files, &trackers))
}

/// The text `bt show` prints.
fn render(t: &Value, p: &Value, files: &Value, trackers: &Value) -> String {
    let mut out = String::new();
    let mut line = |label: &str, value: String| {
        let _ = writeln!(out, "{:<15}{value}", format!("{label}:"));
    };
    let state = text(t, "state");
    line("name", select::name(t).to_string());
    line("info hash", select::hash(t).to_string());
    line("state", state.to_string());
    line(
        "progress",
        format!(
            "{} of {} ({} left)",
            percent(float(t, "progress")),
            format::size(uint(t, "size")),
            format::size(uint(t, "amount_left"))
        ),
    );
    let pieces = int(p, "pieces_num");
    if pieces >= 0 {
        line(
            "pieces",
            format!(
                "{} of {} x {}",
                int(p, "pieces_have").max(0),
                pieces,
                format::size(uint(p, "piece_size"))
            ),
        );
    }
    line("save path", text(t, "save_path").to_string());
    for (label, key) in [("category", "category"), ("tags", "tags")] {
        let v = text(t, key);
        line(label, if v.is_empty() { "-" } else { v }.to_string());
    }
    line(
        "rates",
        format!(
            "down {}, up {}, eta {}",
            rate(uint(t, "dlspeed")),
            rate(uint(t, "upspeed")),
            eta(uint(t, "eta"), state)
        ),
    );
    line(
        "transferred",
        format!(
            "down {}, up {}, ratio {}",
            format::size(uint(t, "downloaded")),
            format::size(uint(t, "uploaded")),
            ratio(float(t, "ratio"))
        ),
    );
    line("connections", uint(p, "nb_connections").to_string());
    line("added", date(int(t, "added_on")));
    line("completed", date(int(t, "completion_on")));
    let created = int(p, "creation_date");
    let by = text(p, "created_by");
    if created > 0 || !by.is_empty() {
        let mut v = date(created);
        if !by.is_empty() {
            let _ = write!(v, " by {by}");
        }
        line("created", v);
    }
    let comment = text(p, "comment");
    if !comment.is_empty() {
        line("comment", comment.to_string());
    }
    let magnet = text(t, "magnet_uri");
    if !magnet.is_empty() {
        line("magnet", magnet.to_string());
    }

    let files = files.as_array().map(Vec::as_slice).unwrap_or_default();
    let _ = writeln!(out, "files ({}):", files.len());
    let mut table = Table::new(&[
        ("  SIZE", Align::Right),
        ("DONE", Align::Right),
        ("NAME", Align::Left),
    ]);
    for f in files {
        table.push(vec![
            format!("  {}", format::size(uint(f, "size"))),
            percent(float(f, "progress")),
            text(f, "name").to_string(),
        ]);
    }
    if !files.is_empty() {
        out.push_str(&table.render());
    }

    let trackers = trackers.as_array().map(Vec::as_slice).unwrap_or_default();
    out.push_str("trackers:\n");
    let mut table = Table::new(&[
        ("  TIER", Align::Right),
        ("STATUS", Align::Left),
        ("PEERS", Align::Right),
        ("URL", Align::Left),
        ("MESSAGE", Align::Left),
    ]);
    for tr in trackers {
        let tier = int(tr, "tier");
        table.push(vec![
            format!(
                "  {}",
                if tier < 0 {
                    "-".into()
                } else {
                    tier.to_string()
                }
            ),
            tracker_status(int(tr, "status")).to_string(),
            int(tr, "num_peers").max(0).to_string(),
            text(tr, "url").to_string(),
            text(tr, "msg").to_string(),
        ]);
    }
    out.push_str(&table.render());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_names_the_torrent_its_files_and_trackers() {
        let t = json!({
            "hash": "0123456789abcdef0123456789abcdef01234567", "name": "multi",
            "state": "stoppedDL", "progress": 0.25, "size": 4096, "amount_left": 3072,
            "save_path": "/data", "category": "", "tags": "a, b", "added_on": 1_700_000_000,
            "completion_on": -1, "eta": 8_640_000, "ratio": 0.0,
        });
        let p = json!({"pieces_num": 4, "pieces_have": 1, "piece_size": 1024,
                       "creation_date": -1, "created_by": "bt/0.1.0", "comment": ""});
        let files = json!([{"name": "multi/a.bin", "size": 4096, "progress": 0.25}]);
        let trackers = json!([
            {"url": "** [DHT] **", "status": 0, "tier": -1, "num_peers": 0, "msg": ""},
            {"url": "http://t/announce", "status": 4, "tier": 0, "num_peers": 0, "msg": "refused"},
        ]);
        let text = render(&t, &p, &files, &trackers);
        for needle in [
            "name:          multi\n",
            "state:         stoppedDL\n",
            "progress:      25% of 4 KiB (3 KiB left)\n",
            "pieces:        1 of 4 x 1 KiB\n",
            "category:      -\n",
            "tags:          a, b\n",
            "eta -\n",
            "added:         2023-11-14 22:13:20 UTC\n",
            "completed:     -\n",
            "created:       - by bt/0.1.0\n",
            "files (1):\n",
            "  4 KiB   25%  multi/a.bin\n",
            "  0  not working      0  http://t/announce  refused\n",
            "  -  disabled         0  ** [DHT] **\n",
        ] {
            assert!(text.contains(needle), "{needle:?} not in:\n{text}");
        }
    }
}
