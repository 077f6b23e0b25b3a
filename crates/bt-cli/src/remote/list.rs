//! `bt ls [--filter F] [--category C] [--tag T] [--sort FIELD] [--reverse] [--json]`: the
//! daemon's torrents as a table, or `torrents/info`'s JSON array as is.

use anyhow::{bail, Result};
use serde_json::Value;

use super::fields::{eta, float, percent, rate, ratio, text, uint};
use super::table::{truncate, Align, Table};
use super::{select, ApiArgs};
use crate::format;

/// The `filter` values `torrents/info` knows.
const FILTERS: [&str; 14] = [
    "all",
    "downloading",
    "seeding",
    "completed",
    "stopped",
    "running",
    "active",
    "inactive",
    "stalled",
    "stalled_uploading",
    "stalled_downloading",
    "checking",
    "moving",
    "errored",
];

/// Widest name shown in the table.
const NAME_WIDTH: usize = 40;
/// Hex digits of the info-hash shown in the table (enough to name it in other commands).
const SHORT_HASH: usize = 8;

/// Arguments of `bt ls`.
#[derive(clap::Args)]
pub struct Args {
    /// Only torrents in this state.
    #[arg(long, value_name = "F", value_parser = clap::builder::PossibleValuesParser::new(FILTERS))]
    filter: Option<String>,
    /// Only torrents in this category (`""`: those without one).
    #[arg(long, value_name = "NAME")]
    category: Option<String>,
    /// Only torrents with this tag (`""`: those without one).
    #[arg(long, value_name = "TAG")]
    tag: Option<String>,
    /// Order by a field of the torrent objects (`name`, `size`, `progress`, `added_on`,
    /// `ratio`, `dlspeed`, ... as `--json` shows them).
    #[arg(long, value_name = "FIELD")]
    sort: Option<String>,
    /// Reverse the order.
    #[arg(long)]
    reverse: bool,
    /// Print `torrents/info`'s JSON array as the daemon gives it.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    api: ApiArgs,
}

/// Runs `bt ls`.
pub fn run(args: Args) -> Result<()> {
    let client = args.api.connect()?;
    let mut query: Vec<(&str, &str)> = Vec::new();
    if let Some(f) = &args.filter {
        query.push(("filter", f));
    }
    if let Some(c) = &args.category {
        query.push(("category", c));
    }
    if let Some(t) = &args.tag {
        query.push(("tag", t));
    }
    if let Some(s) = &args.sort {
        query.push(("sort", s));
    }
    if args.reverse {
        query.push(("reverse", "true"));
    }
    let rows = select::list(&client, &query)?;
    if let (Some(field), Some(first)) = (&args.sort, rows.first()) {
        // The API leaves the order alone for a field it does not have.
        if first.get(field).is_none() {
            let mut known: Vec<&str> = first
                .as_object()
                .map(|o| o.keys().map(String::as_str).collect())
                .unwrap_or_default();
            known.sort_unstable();
            bail!(
                "--sort {field}: torrents have no such field (they have {})",
                known.join(", ")
            );
        }
    }
    if args.json {
        return format::print(&(serde_json::to_string_pretty(&Value::Array(rows))? + "\n"));
    }
    format::print(&table(&rows))
}

/// The table `bt ls` prints.
fn table(rows: &[Value]) -> String {
    let mut t = Table::new(&[
        ("HASH", Align::Left),
        ("NAME", Align::Left),
        ("SIZE", Align::Right),
        ("DONE", Align::Right),
        ("STATE", Align::Left),
        ("DOWN", Align::Right),
        ("UP", Align::Right),
        ("ETA", Align::Right),
        ("RATIO", Align::Right),
        ("CATEGORY", Align::Left),
    ]);
    for r in rows {
        let state = text(r, "state");
        let hash = select::hash(r);
        t.push(vec![
            hash.get(..SHORT_HASH).unwrap_or(hash).to_string(),
            truncate(select::name(r), NAME_WIDTH),
            format::size(uint(r, "size")),
            percent(float(r, "progress")),
            state.to_string(),
            rate(uint(r, "dlspeed")),
            rate(uint(r, "upspeed")),
            eta(uint(r, "eta"), state),
            ratio(float(r, "ratio")),
            text(r, "category").to_string(),
        ]);
    }
    t.render()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_row_shows_the_fields_a_user_looks_at() {
        let row = serde_json::json!({
            "hash": "0123456789abcdef0123456789abcdef01234567",
            "name": "a name much longer than the forty characters the table allows",
            "size": 1_572_864, "progress": 0.5, "state": "downloading",
            "dlspeed": 2048, "upspeed": 0, "eta": 3725, "ratio": 0.0, "category": "movies",
        });
        let text = table(&[row]);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2);
        assert!(lines[0].starts_with("HASH      NAME"), "{text}");
        let cells: Vec<&str> = lines[1]
            .split("  ")
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .collect();
        assert_eq!(
            cells,
            [
                "01234567",
                "a name much longer than the forty chara…",
                "1.5 MiB",
                "50%",
                "downloading",
                "2 KiB/s",
                "0 B/s",
                "1h02m",
                "0.00",
                "movies"
            ],
            "{text}"
        );
    }
}
