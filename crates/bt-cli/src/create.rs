//! `bt create <path> -o <out.torrent> [--tracker URL]... [--piece-length BYTES]
//! [--private] [--comment TEXT] [--web-seed URL]... [--source TEXT] [--no-date]`.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use bt_meta::create::{CreateOptions, Source};
use indicatif::{ProgressBar, ProgressStyle};

use crate::format;

/// Arguments of `bt create`.
#[derive(clap::Args)]
pub struct Args {
    /// The file or folder to share.
    path: PathBuf,
    /// Where to write the .torrent.
    #[arg(short, long)]
    output: PathBuf,
    /// A tracker URL; repeat for more. Each flag is a tier; URLs joined with commas
    /// share one tier. The first is also written as `announce`.
    #[arg(short, long = "tracker", value_name = "URL")]
    trackers: Vec<String>,
    /// Piece length in bytes (a power of two from 16 KiB to 16 MiB; `K` and `M`
    /// suffixes allowed). Default: chosen from the total size.
    #[arg(long, value_name = "BYTES", value_parser = parse_piece_length)]
    piece_length: Option<u32>,
    /// Mark the torrent private (BEP 27: trackers only, no DHT or PEX).
    #[arg(long)]
    private: bool,
    /// A comment.
    #[arg(long, value_name = "TEXT")]
    comment: Option<String>,
    /// A web seed URL (BEP 19); repeat for more.
    #[arg(long = "web-seed", value_name = "URL")]
    web_seeds: Vec<String>,
    /// `info.source`, which private trackers use to make info-hashes their own.
    #[arg(long, value_name = "TEXT")]
    source: Option<String>,
    /// Leave out the creation date, so the same input gives the same bytes.
    #[arg(long)]
    no_date: bool,
    /// Overwrite the output file if it exists.
    #[arg(short, long)]
    force: bool,
    /// Hashing threads (default: all cores).
    #[arg(long, value_name = "N", default_value_t = 0, hide_default_value = true)]
    threads: usize,
}

fn parse_piece_length(s: &str) -> Result<u32, String> {
    let (digits, mult) = match s.as_bytes().last() {
        Some(b'k' | b'K') => (&s[..s.len() - 1], 1024),
        Some(b'm' | b'M') => (&s[..s.len() - 1], 1024 * 1024),
        _ => (s, 1),
    };
    digits
        .parse::<u32>()
        .ok()
        .and_then(|n| n.checked_mul(mult))
        .ok_or_else(|| format!("{s:?} is not a byte count"))
}

fn progress_bar(total: u64) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(total);
    bar.set_style(
        ProgressStyle::with_template(
            "hashing {wide_bar} {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
        )
        .expect("a valid template"),
    );
    bar
}

/// Writes `bytes` to `path` through a temporary file in the same folder.
fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Runs `bt create`.
pub fn run(args: Args) -> Result<()> {
    let out_name = args.output.display().to_string();
    if args.output.exists() && !args.force {
        bail!("{out_name}: already exists (use --force to overwrite)");
    }
    let in_name = args.path.display().to_string();
    let source = Source::scan(&args.path)?;
    let creation_date = if args.no_date {
        None
    } else {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?;
        Some(now.as_secs() as i64)
    };
    let opts = CreateOptions {
        piece_len: args.piece_length,
        trackers: args
            .trackers
            .iter()
            .map(|t| t.split(',').map(|u| u.trim().to_string()).collect())
            .collect(),
        web_seeds: args.web_seeds,
        private: args.private,
        comment: args.comment,
        creation_date,
        source: args.source,
        threads: args.threads,
        ..CreateOptions::default()
    };
    let bar = progress_bar(source.total_len());
    tracing::info!(
        files = source.files.len(),
        bytes = source.total_len(),
        "hashing"
    );
    let created = source
        .create(&opts, |done| bar.set_position(done))
        .map_err(|e| match e {
            // These already name the file.
            bt_meta::Error::Io { .. } | bt_meta::Error::Unsupported { .. } => e.into(),
            e => anyhow::Error::new(e).context(in_name),
        })?;
    bar.finish_and_clear();
    write_atomically(&args.output, &created.bytes).with_context(|| out_name.clone())?;
    format::print(&format!(
        "{out_name}: info hash {}, {} in {} pieces of {}\n",
        created.info_hash,
        format::size(created.total_len),
        created.num_pieces,
        format::size(created.piece_len.into()),
    ))
}
