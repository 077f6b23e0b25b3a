//! `bt add FILE.torrent|MAGNET|URL... [--save-path DIR] [--category C] [--tag T]...
//! [--stopped]`: adds torrents to a running daemon and prints their info-hashes.
//!
//! Every argument is checked here first (a .torrent is read and parsed, a magnet link
//! parsed, so their info-hashes are known before anything is sent); then each goes in a
//! request of its own (`torrents/add`: a .torrent as a multipart upload, a link in
//! `urls`), so an error names the argument it is about.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use bt_meta::{InfoHash, Magnet, Metainfo};
use serde_json::{json, Value};

use super::client::{ApiError, Client, FilePart};
use super::{select, ApiArgs};
use crate::format;

/// Arguments of `bt add`.
#[derive(clap::Args)]
pub struct Args {
    /// .torrent files, magnet links, info-hashes (40 hex digits) or http(s) URLs of
    /// .torrent files.
    #[arg(required = true, value_name = "TORRENT")]
    sources: Vec<String>,
    /// The folder the torrents' files go under [the category's folder, else the daemon's
    /// default].
    #[arg(long, value_name = "DIR")]
    save_path: Option<PathBuf>,
    /// The category (created if the daemon has none of that name).
    #[arg(long, value_name = "NAME")]
    category: Option<String>,
    /// A tag; repeat for more.
    #[arg(long = "tag", value_name = "TAG")]
    tags: Vec<String>,
    /// Add without starting.
    #[arg(long)]
    stopped: bool,
    /// Print a JSON array, one `{"source", "hash", "added"}` object per argument.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    api: ApiArgs,
}

/// One argument, checked.
enum Input {
    /// A .torrent file's bytes.
    File {
        arg: String,
        bytes: Vec<u8>,
        hash: InfoHash,
    },
    /// A magnet link or a bare info-hash: sent as is in `urls`.
    Link { arg: String, hash: InfoHash },
    /// An http(s) URL the daemon fetches; its info-hash is known once it is added.
    Url { arg: String },
}

impl Input {
    fn arg(&self) -> &str {
        match self {
            Input::File { arg, .. } | Input::Link { arg, .. } | Input::Url { arg } => arg,
        }
    }
}

fn check(arg: &str) -> Result<Input> {
    let lower = arg.to_ascii_lowercase();
    if crate::magnet::is_magnet(arg) {
        let magnet = Magnet::parse(arg).context("magnet link")?;
        let Some(hash) = magnet.info_hash else {
            bail!("magnet link: bt daemon needs a v1 info-hash (xt=urn:btih:...)");
        };
        return Ok(Input::Link {
            arg: arg.to_string(),
            hash,
        });
    }
    if lower.starts_with("http://") || lower.starts_with("https://") {
        return Ok(Input::Url {
            arg: arg.to_string(),
        });
    }
    if !Path::new(arg).exists() {
        if let Some(hash) = InfoHash::from_hex(arg).filter(|_| arg.len() == 40) {
            return Ok(Input::Link {
                arg: arg.to_string(),
                hash,
            });
        }
    }
    let len = std::fs::metadata(arg)
        .with_context(|| arg.to_string())?
        .len();
    let max = bt_daemon::qbt::MAX_BODY as u64;
    if len > max {
        bail!("{arg}: {len} bytes is more than the daemon accepts ({max})");
    }
    let bytes = std::fs::read(arg).with_context(|| arg.to_string())?;
    let meta = Metainfo::from_bytes(&bytes).with_context(|| arg.to_string())?;
    let Some(hash) = meta.info_hash else {
        bail!("{arg}: bt daemon does not take v2-only torrents yet (no SHA-1 info-hash)");
    };
    Ok(Input::File {
        arg: arg.to_string(),
        bytes,
        hash,
    })
}

/// Makes sure the daemon has category `name`, creating it (with the default folder) if
/// not: `torrents/add` and `torrents/setCategory` refuse one it does not have.
pub(super) fn ensure_category(client: &Client, name: &str) -> Result<()> {
    if name.is_empty() {
        return Ok(());
    }
    let cats = client.get_json("torrents/categories", &[])?;
    if cats.get(name).is_some() {
        return Ok(());
    }
    match client.post_form("torrents/createCategory", &[("category", name)]) {
        Ok(_) => {
            eprintln!("bt: created category {name:?}");
            Ok(())
        }
        Err(e) if e.status() == Some(409) => {
            bail!("category {name:?}: {}", e.body().unwrap_or_default())
        }
        Err(e) => Err(e.into()),
    }
}

/// Refuses a tag qBittorrent's comma-separated `tags` parameter cannot carry.
pub(super) fn check_tag(tag: &str) -> Result<()> {
    if tag.trim().is_empty() {
        bail!("a tag cannot be empty");
    }
    if tag.contains(',') {
        bail!("tag {tag:?}: a tag cannot hold a comma");
    }
    Ok(())
}

/// Runs `bt add`.
pub fn run(args: Args) -> Result<()> {
    let inputs = args
        .sources
        .iter()
        .map(|s| check(s))
        .collect::<Result<Vec<_>>>()?;
    for t in &args.tags {
        check_tag(t)?;
    }
    let save_path = match &args.save_path {
        Some(p) => {
            let abs = std::path::absolute(p).with_context(|| p.display().to_string())?;
            Some(
                abs.to_str()
                    .with_context(|| format!("{}: not UTF-8", abs.display()))?
                    .to_string(),
            )
        }
        None => None,
    };

    let client = args.api.connect()?;
    let category = args.category.clone().unwrap_or_default();
    ensure_category(&client, &category)?;
    let tags = args.tags.join(",");
    let mut fields: Vec<(&str, &str)> = Vec::new();
    if let Some(p) = &save_path {
        fields.push(("savepath", p));
    }
    if !category.is_empty() {
        fields.push(("category", &category));
    }
    if !tags.is_empty() {
        fields.push(("tags", &tags));
    }
    if args.stopped {
        // `stopped` since Web API 2.11, `paused` before.
        fields.push(("stopped", "true"));
        fields.push(("paused", "true"));
    }

    let mut report = Vec::new();
    let mut text = String::new();
    for input in &inputs {
        let (answer, hash) = match input {
            Input::File { arg, bytes, hash } => {
                let file_name = Path::new(arg)
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_else(|| "file.torrent".into());
                let files = [FilePart {
                    field: "torrents",
                    file_name: &file_name,
                    bytes,
                }];
                let answer = client.post_multipart("torrents/add", &fields, &files);
                (answer, Some(hash.to_hex()))
            }
            Input::Link { arg, hash } => (send_link(&client, &fields, arg), Some(hash.to_hex())),
            Input::Url { arg } => {
                // The daemon fetches the .torrent: its info-hash is the one that is new.
                let before = hashes(&client)?;
                let answer = send_link(&client, &fields, arg);
                let after = hashes(&client)?;
                (answer, after.difference(&before).next().cloned())
            }
        };
        let arg = input.arg();
        let added = match answer {
            Ok(body) if body.trim() == "Ok." => true,
            // qBittorrent's answer when nothing was added: here, it was already there.
            Ok(body) if body.trim() == "Fails." => false,
            Ok(body) => bail!(
                "{arg}: unexpected answer from torrents/add: {:?}",
                body.trim()
            ),
            Err(e) => return Err(add_error(arg, e)),
        };
        if !added {
            eprintln!("bt: {arg}: already in the daemon");
        }
        if let Some(h) = &hash {
            text.push_str(h);
            text.push('\n');
        }
        report.push(json!({"source": arg, "hash": hash, "added": added}));
    }
    if args.json {
        format::print(&(serde_json::to_string_pretty(&Value::Array(report))? + "\n"))
    } else {
        format::print(&text)
    }
}

fn send_link(client: &Client, fields: &[(&str, &str)], link: &str) -> Result<String, ApiError> {
    let mut form = fields.to_vec();
    form.push(("urls", link));
    client.post_form("torrents/add", &form)
}

fn hashes(client: &Client) -> Result<BTreeSet<String>> {
    Ok(select::all(client)?
        .iter()
        .map(|t| select::hash(t).to_string())
        .collect())
}

/// `torrents/add` answers 415 with why a torrent is not valid, 409 for a category.
fn add_error(arg: &str, e: ApiError) -> anyhow::Error {
    match (e.status(), e.body()) {
        (Some(409 | 415), Some(body)) if !body.is_empty() => {
            anyhow::anyhow!("{arg}: the daemon refused it: {}", reason(arg, body))
        }
        _ => anyhow::Error::new(e).context(arg.to_string()),
    }
}

/// The first line of the daemon's answer, without the `arg: ` it may start with (a URL
/// the daemon could not fetch comes back as `URL: URL: Connection Failed: ...`).
fn reason<'a>(arg: &str, body: &'a str) -> &'a str {
    let mut line = body.lines().next().unwrap_or("").trim();
    while let Some(rest) = line
        .strip_prefix(arg)
        .and_then(|r| r.strip_prefix(':'))
        .map(str::trim_start)
    {
        line = rest;
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refusal_reads_once_without_the_repeated_source() {
        let url = "http://127.0.0.1:1/x.torrent";
        assert_eq!(
            reason(
                url,
                &format!("{url}: {url}: Connection Failed: refused\nmore")
            ),
            "Connection Failed: refused"
        );
        assert_eq!(
            reason("a.torrent", "not a valid torrent: bencode: bad"),
            "not a valid torrent: bencode: bad"
        );
    }

    #[test]
    fn inputs_are_told_apart_before_anything_is_sent() {
        let hash = "0123456789abcdef0123456789abcdef01234567";
        assert!(matches!(check(hash), Ok(Input::Link { hash: h, .. }) if h.to_hex() == hash));
        let magnet = format!("magnet:?xt=urn:btih:{hash}&dn=x");
        assert!(matches!(check(&magnet), Ok(Input::Link { .. })));
        assert!(matches!(
            check("HTTPS://example.org/a.torrent"),
            Ok(Input::Url { .. })
        ));
        let err = check("magnet:?xt=urn:btih:zz").err().unwrap();
        assert!(format!("{err:#}").starts_with("magnet link: "), "{err:#}");
        let err = check("/nonexistent/a.torrent").err().unwrap();
        assert!(
            format!("{err:#}").starts_with("/nonexistent/a.torrent: "),
            "{err:#}"
        );
        assert!(check_tag("a,b").is_err() && check_tag(" ").is_err() && check_tag("ok").is_ok());
    }
}
