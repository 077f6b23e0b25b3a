//! `bt stop|start HASH...|--all` and `bt rm HASH... [--delete-data]`: the commands that
//! send a list of torrents to one endpoint, and print each torrent they acted on.

use anyhow::Result;
use serde_json::Value;

use super::client::Client;
use super::{select, ApiArgs};
use crate::format;

/// Which torrents `bt stop` and `bt start` act on.
#[derive(clap::Args)]
pub struct Targets {
    /// Info-hashes, or starts of them that no other torrent shares.
    #[arg(
        value_name = "HASH",
        required_unless_present = "all",
        conflicts_with = "all"
    )]
    hashes: Vec<String>,
    /// Every torrent the daemon holds.
    #[arg(long)]
    all: bool,
    #[command(flatten)]
    api: ApiArgs,
}

/// Arguments of `bt rm`.
#[derive(clap::Args)]
pub struct RmArgs {
    /// Info-hashes, or starts of them that no other torrent shares.
    #[arg(value_name = "HASH", required = true)]
    hashes: Vec<String>,
    /// Delete the torrents' downloaded files too.
    #[arg(long)]
    delete_data: bool,
    #[command(flatten)]
    api: ApiArgs,
}

/// The torrents named, and the `hashes` parameter that names them (`all` for `--all`).
fn targets(client: &Client, names: &[String], all: bool) -> Result<(Vec<Value>, String)> {
    if all {
        return Ok((select::all(client)?, "all".into()));
    }
    let torrents = select::resolve(client, names)?;
    let list: Vec<&str> = torrents.iter().map(select::hash).collect();
    let param = list.join("|");
    Ok((torrents, param))
}

/// Sends `hashes` (and `extra`) to `endpoint`, then prints `verb hash name` for each.
fn act(
    client: &Client,
    endpoint: &str,
    torrents: &[Value],
    hashes: &str,
    extra: &[(&str, &str)],
    verb: &str,
) -> Result<()> {
    let mut form = vec![("hashes", hashes)];
    form.extend_from_slice(extra);
    client.post_form(endpoint, &form)?;
    print_done(torrents, verb)
}

/// Prints `verb hash name` for each torrent.
pub(super) fn print_done(torrents: &[Value], verb: &str) -> Result<()> {
    let text: String = torrents
        .iter()
        .map(|t| format!("{verb} {}  {}\n", select::hash(t), select::name(t)))
        .collect();
    format::print(&text)
}

/// Runs `bt stop`.
pub fn stop(args: Targets) -> Result<()> {
    let client = args.api.connect()?;
    let (torrents, hashes) = targets(&client, &args.hashes, args.all)?;
    act(&client, "torrents/stop", &torrents, &hashes, &[], "stopped")
}

/// Runs `bt start`.
pub fn start(args: Targets) -> Result<()> {
    let client = args.api.connect()?;
    let (torrents, hashes) = targets(&client, &args.hashes, args.all)?;
    act(
        &client,
        "torrents/start",
        &torrents,
        &hashes,
        &[],
        "started",
    )
}

/// Runs `bt rm`.
pub fn remove(args: RmArgs) -> Result<()> {
    let client = args.api.connect()?;
    let (torrents, hashes) = targets(&client, &args.hashes, false)?;
    let delete = if args.delete_data { "true" } else { "false" };
    act(
        &client,
        "torrents/delete",
        &torrents,
        &hashes,
        &[("deleteFiles", delete)],
        "removed",
    )
}
