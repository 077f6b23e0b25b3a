//! `bt info <file.torrent|magnet-uri> [--json]`: what a torrent or magnet link holds.
//!
//! The JSON form is stable; its schema is in `crates/bt-cli/README-info-json.md`.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::{bail, Context, Result};
use bt_meta::{Magnet, MetaVersion, Metainfo};
use serde_json::{json, Value};

use crate::format;

/// Largest file `bt info` reads: the bencode decoder's input limit.
const MAX_TORRENT_FILE_LEN: u64 = 64 << 20;

/// Arguments of `bt info`.
#[derive(clap::Args)]
pub struct Args {
    /// A .torrent file, or a magnet link (`magnet:?xt=...`).
    target: String,
    /// Print JSON (stable schema) instead of text.
    #[arg(long)]
    json: bool,
}

/// What `bt info` shows.
enum Subject {
    Torrent(Box<Metainfo>),
    Magnet(Magnet),
}

fn load(target: &str) -> Result<Subject> {
    if target
        .get(..7)
        .is_some_and(|p| p.eq_ignore_ascii_case("magnet:"))
    {
        return Ok(Subject::Magnet(Magnet::parse(target)?));
    }
    let path = Path::new(target);
    let len = std::fs::metadata(path)
        .with_context(|| target.to_string())?
        .len();
    if len > MAX_TORRENT_FILE_LEN {
        bail!("{target}: {len} bytes is too large for a .torrent file");
    }
    let bytes = std::fs::read(path).with_context(|| target.to_string())?;
    let metainfo = Metainfo::from_bytes(&bytes).with_context(|| target.to_string())?;
    Ok(Subject::Torrent(Box::new(metainfo)))
}

/// Runs `bt info`.
pub fn run(args: Args) -> Result<()> {
    let subject = load(&args.target)?;
    let text = if args.json {
        let value = match &subject {
            Subject::Torrent(m) => torrent_json(m),
            Subject::Magnet(m) => magnet_json(m),
        };
        serde_json::to_string_pretty(&value)? + "\n"
    } else {
        match &subject {
            Subject::Torrent(m) => torrent_text(m),
            Subject::Magnet(m) => magnet_text(m),
        }
    };
    format::print(&text)
}

fn version_name(v: MetaVersion) -> &'static str {
    match v {
        MetaVersion::V1 => "v1",
        MetaVersion::V2 => "v2",
        MetaVersion::Hybrid => "hybrid",
    }
}

/// The `bt info --json` object for a torrent.
pub fn torrent_json(m: &Metainfo) -> Value {
    let files: Vec<Value> = m
        .info
        .files()
        .iter()
        .filter(|f| !f.is_pad())
        .map(|f| {
            let mut file = json!({ "path": f.path(), "length": f.length() });
            if let Some(target) = f.symlink_target() {
                file["symlink_target"] = json!(target);
            }
            file
        })
        .collect();
    json!({
        "kind": "torrent",
        "info_hash": m.info_hash.map(|h| h.to_hex()),
        "info_hash_v2": m.info_hash_v2.map(|h| h.to_hex()),
        "meta_version": version_name(m.info.version),
        "name": m.info.name,
        "total_length": m.info.total_len(),
        "piece_length": m.info.piece_len,
        "num_pieces": m.info.num_pieces(),
        "files": files,
        "trackers": m.trackers(),
        "web_seeds": m.web_seeds(),
        "private": m.info.private,
        "comment": m.comment,
        "created_by": m.created_by,
        "creation_date": m.creation_date,
        "source": m.info.source,
        "magnet": m.magnet().to_uri(),
    })
}

/// The `bt info --json` object for a magnet link: what the link holds, nulls for
/// what only the metadata can tell.
pub fn magnet_json(m: &Magnet) -> Value {
    json!({
        "kind": "magnet",
        "info_hash": m.info_hash.map(|h| h.to_hex()),
        "info_hash_v2": m.info_hash_v2.map(|h| h.to_hex()),
        "meta_version": null,
        "name": m.display_name,
        "total_length": null,
        "piece_length": null,
        "num_pieces": null,
        "files": null,
        "trackers": m.tracker_tiers(),
        "web_seeds": m.web_seeds,
        "private": null,
        "peers": m.peers.iter().map(|p| p.to_string()).collect::<Vec<_>>(),
        "select_only": m.select_only,
        "magnet": m.to_uri(),
    })
}

fn push_trackers(out: &mut String, tiers: &[Vec<String>]) {
    if tiers.is_empty() {
        out.push_str("trackers:      none\n");
        return;
    }
    out.push_str("trackers:\n");
    for (i, tier) in tiers.iter().enumerate() {
        let _ = writeln!(out, "  tier {}: {}", i + 1, tier.join(", "));
    }
}

fn push_web_seeds(out: &mut String, seeds: &[String]) {
    if !seeds.is_empty() {
        out.push_str("web seeds:\n");
        for s in seeds {
            let _ = writeln!(out, "  {s}");
        }
    }
}

fn torrent_text(m: &Metainfo) -> String {
    let mut out = String::new();
    let info = &m.info;
    let _ = writeln!(out, "name:          {}", info.name);
    match m.info_hash {
        Some(h) => {
            let _ = writeln!(out, "info hash:     {h}");
        }
        None => out.push_str("info hash:     none (v2-only torrent)\n"),
    }
    if let Some(h) = m.info_hash_v2 {
        let _ = writeln!(out, "info hash v2:  {h}");
    }
    let _ = writeln!(out, "version:       {}", version_name(info.version));
    let _ = writeln!(
        out,
        "total size:    {} ({} bytes)",
        format::size(info.total_len()),
        info.total_len()
    );
    let _ = writeln!(
        out,
        "pieces:        {} x {}",
        info.num_pieces(),
        format::size(info.piece_len.into())
    );
    let _ = writeln!(
        out,
        "private:       {}",
        if info.private { "yes" } else { "no" }
    );
    if let Some(c) = &m.comment {
        let _ = writeln!(out, "comment:       {c}");
    }
    if let Some(c) = &m.created_by {
        let _ = writeln!(out, "created by:    {c}");
    }
    if let Some(d) = m.creation_date {
        let _ = writeln!(out, "creation date: {}", format::date(d));
    }
    if let Some(s) = &info.source {
        let _ = writeln!(out, "source:        {s}");
    }
    let real: Vec<_> = info.files().iter().filter(|f| !f.is_pad()).collect();
    let pads = info.files().len() - real.len();
    let _ = write!(out, "files ({})", real.len());
    if pads > 0 {
        let _ = write!(out, ", plus {pads} pad files");
    }
    out.push_str(":\n");
    for f in real {
        let _ = write!(
            out,
            "  {:>10}  {}",
            format::size(f.length()),
            f.display_path()
        );
        if let Some(t) = f.symlink_target() {
            let _ = write!(out, " -> {}", t.join("/"));
        }
        out.push('\n');
    }
    push_trackers(&mut out, &m.trackers());
    push_web_seeds(&mut out, &m.web_seeds());
    let _ = writeln!(out, "magnet:        {}", m.magnet());
    out
}

fn magnet_text(m: &Magnet) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "name:          {}",
        m.display_name.as_deref().unwrap_or("(unknown)")
    );
    if let Some(h) = m.info_hash {
        let _ = writeln!(out, "info hash:     {h}");
    }
    if let Some(h) = m.info_hash_v2 {
        let _ = writeln!(out, "info hash v2:  {h}");
    }
    out.push_str("size, pieces, files: unknown until the metadata is fetched\n");
    push_trackers(&mut out, &m.tracker_tiers());
    push_web_seeds(&mut out, &m.web_seeds);
    if !m.peers.is_empty() {
        out.push_str("peers:\n");
        for p in &m.peers {
            let _ = writeln!(out, "  {p}");
        }
    }
    if let Some(so) = &m.select_only {
        let list: Vec<String> = so.iter().map(u32::to_string).collect();
        let _ = writeln!(out, "select only:   files {}", list.join(", "));
    }
    out
}
