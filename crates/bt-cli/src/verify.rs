//! `bt verify <file.torrent> <DATA_DIR>`: which pieces of the data are intact.
//!
//! Hashes every piece whose files exist with the right size, prints a summary and, for
//! each damaged file, which pieces are bad. Exits 0 only if every piece is intact.
//!
//! When `bt download` left a resume state in `DATA_DIR/.bt/` that claims a piece found
//! bad here (the data changed behind its back without changing a file's size or
//! modification time, so `bt download` would trust the claim), the resume state is
//! rewritten with what this check found, so the next `bt download` fetches the bad pieces
//! again.

use std::io::IsTerminal;
use std::path::PathBuf;

use anyhow::{Context, Result};
use bt_engine::resume::ResumeState;
use bt_engine::storage::{StorageLayout, TorrentStorage};
use indicatif::{ProgressBar, ProgressStyle};

use crate::download::load_torrent;
use crate::format;

/// Arguments of `bt verify`.
#[derive(clap::Args)]
pub struct Args {
    /// The .torrent file.
    torrent: PathBuf,
    /// The folder holding the torrent's data (`DATA_DIR/<name>`).
    data_dir: PathBuf,
    /// Hashing threads (default: one per core).
    #[arg(long, value_name = "N")]
    threads: Option<usize>,
}

/// Exit status when some pieces are not intact.
const EXIT_DAMAGED: i32 = 1;

/// Runs `bt verify`; exits with status 1 if any piece is bad.
pub fn run(args: Args) -> Result<()> {
    let meta = load_torrent(&args.torrent)?;
    let dir = &args.data_dir;
    let layout = StorageLayout::from_metainfo(&meta, dir)?;
    let storage = TorrentStorage::open_existing(layout, dir)?;
    let threads = args
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()));
    let total = meta.info.num_pieces();
    let bar = if std::io::stderr().is_terminal() {
        let bar = ProgressBar::new(u64::from(total));
        bar.set_style(
            ProgressStyle::with_template("verifying {wide_bar} {pos}/{len} pieces eta {eta}")
                .expect("a valid template"),
        );
        bar
    } else {
        ProgressBar::hidden()
    };
    let good = storage
        .check_existing(threads, |p| bar.set_position(u64::from(p.done)))
        .with_context(|| dir.display().to_string())?;
    bar.finish_and_clear();

    let good_count = good.iter().filter(|g| **g).count();
    println!(
        "{}: {good_count} of {total} pieces intact ({})",
        meta.info.name,
        format::size(meta.info.total_len())
    );
    if good_count == good.len() {
        return Ok(());
    }
    let geometry = meta.info.geometry();
    for (i, file) in meta.info.files().iter().enumerate() {
        if file.is_pad() || file.length() == 0 {
            continue;
        }
        let pieces = geometry.pieces_for_file(i).unwrap_or(0..0);
        let bad: Vec<u32> = pieces
            .clone()
            .filter(|&p| !good.get(p as usize).copied().unwrap_or(false))
            .collect();
        if !bad.is_empty() {
            println!(
                "  {}: {} of {} pieces bad: {}",
                file.display_path(),
                bad.len(),
                pieces.len(),
                ranges(&bad)
            );
        }
    }
    correct_resume_state(&storage, dir, &good);
    std::process::exit(EXIT_DAMAGED);
}

/// If a resume state under `dir` claims pieces that are not intact, replaces it with one
/// recording `good` (and the files as they are now), printing what it did.
fn correct_resume_state(storage: &TorrentStorage, dir: &std::path::Path, good: &[bool]) {
    let path = bt_engine::session::resume_path(dir, &storage.info_hash());
    let state = match ResumeState::load(&path) {
        Ok(state) => state,
        Err(e) if e.is_not_found() => return,
        Err(e) => {
            eprintln!("bt verify: {e}; not corrected");
            return;
        }
    };
    if state.info_hash != storage.info_hash() || state.pieces.len() != good.len() {
        return;
    }
    let wrong: Vec<u32> = (0..good.len())
        .filter(|&i| state.pieces[i] && !good[i]) // ok: both have good.len() entries
        .map(|i| i as u32)
        .collect();
    if wrong.is_empty() {
        return;
    }
    let saved = storage
        .resume_state(good)
        .map_err(anyhow::Error::from)
        .and_then(|fresh| Ok(fresh.save(&path)?));
    match saved {
        Ok(()) => println!(
            "  resume state {} claimed bad pieces {}: corrected, `bt download` will fetch them \
             again",
            path.display(),
            ranges(&wrong)
        ),
        Err(e) => eprintln!(
            "bt verify: resume state {} claims bad pieces {} but cannot be corrected: {e:#}",
            path.display(),
            ranges(&wrong)
        ),
    }
}

/// `[1, 2, 3, 7, 9, 10]` -> `1-3, 7, 9-10`.
fn ranges(pieces: &[u32]) -> String {
    let mut out: Vec<String> = Vec::new();
    let mut iter = pieces.iter().copied().peekable();
    while let Some(start) = iter.next() {
        let mut end = start;
        while iter.peek() == Some(&(end + 1)) {
            end += 1;
            iter.next();
        }
        out.push(if start == end {
            start.to_string()
        } else {
            format!("{start}-{end}")
        });
    }
    out.join(", ")
}

#[cfg(test)]
mod tests {
    use super::ranges;

    #[test]
    fn piece_ranges() {
        assert_eq!(ranges(&[]), "");
        assert_eq!(ranges(&[4]), "4");
        assert_eq!(ranges(&[1, 2, 3, 7, 9, 10]), "1-3, 7, 9-10");
    }
}
