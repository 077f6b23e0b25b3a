//! File priorities as qBittorrent numbers them (0 skip, 1 normal, 6 high, 7 maximum), and
//! the engine's piece priorities they give.
//!
//! File indices are those the API shows: the torrent's files without its pad files.

use bt_engine::proto::{first_and_last_first, piece_priorities, Priority};
use bt_meta::Metainfo;

/// qBittorrent's "do not download".
pub const SKIP: u8 = 0;
/// qBittorrent's normal priority.
pub const NORMAL: u8 = 1;

/// Whether `p` is one of qBittorrent's file priorities.
pub fn is_valid(p: u8) -> bool {
    matches!(p, 0 | 1 | 6 | 7)
}

/// The engine priority for a qBittorrent file priority.
fn engine(p: u8) -> Priority {
    match p {
        SKIP => Priority::SKIP,
        7 => Priority::HIGHEST,
        6 => Priority::new(6).unwrap_or(Priority::HIGHEST),
        _ => Priority::NORMAL,
    }
}

/// The files the API shows (pad files left out), as indices into the torrent's files.
pub fn visible_files(meta: &Metainfo) -> Vec<usize> {
    meta.info
        .files()
        .iter()
        .enumerate()
        .filter(|(_, f)| !f.is_pad())
        .map(|(i, _)| i)
        .collect()
}

/// The priority of visible file `i` (`prios` may be shorter: missing ones are normal).
pub fn file_priority(prios: &[u8], i: usize) -> u8 {
    prios.get(i).copied().unwrap_or(NORMAL)
}

/// Bytes of the files not skipped.
pub fn wanted_len(meta: &Metainfo, prios: &[u8]) -> u64 {
    let files = meta.info.files();
    visible_files(meta)
        .iter()
        .enumerate()
        .filter(|(i, _)| file_priority(prios, *i) != SKIP)
        .filter_map(|(_, &f)| files.get(f).map(|e| e.length()))
        .sum()
}

/// The engine's piece priorities for these file priorities; with `first_last`, the first
/// and last piece of every wanted file go first. Empty when every file is normal and
/// nothing is first (the engine's default).
pub fn pieces(meta: &Metainfo, prios: &[u8], first_last: bool) -> Vec<Priority> {
    if prios.iter().all(|p| *p == NORMAL) && !first_last {
        return Vec::new();
    }
    let visible = visible_files(meta);
    let geometry = meta.info.geometry();
    let mut per_file = vec![Priority::SKIP; geometry.num_files()];
    for (i, &f) in visible.iter().enumerate() {
        if let Some(slot) = per_file.get_mut(f) {
            *slot = engine(file_priority(prios, i));
        }
    }
    let mut out = piece_priorities(geometry, &per_file);
    if first_last {
        first_and_last_first(geometry, &per_file, &mut out);
    }
    out
}

/// Each visible file's verified fraction, from the torrent's bitfield.
pub fn file_progress(meta: &Metainfo, bitfield: &[u8]) -> Vec<f64> {
    let geometry = meta.info.geometry();
    let has = |p: u32| {
        bitfield
            .get((p / 8) as usize)
            .is_some_and(|b| b & (0x80 >> (p % 8)) != 0)
    };
    visible_files(meta)
        .into_iter()
        .map(|f| {
            let len = geometry.file_len(f).unwrap_or(0);
            let start = geometry.file_offset(f).unwrap_or(0);
            if len == 0 {
                return 1.0;
            }
            let Some(range) = geometry.pieces_for_file(f) else {
                return 0.0;
            };
            let mut done = 0u64;
            for p in range {
                if !has(p) {
                    continue;
                }
                let piece = bt_meta::PieceIndex(p);
                let ps = geometry.piece_offset(piece).unwrap_or(0);
                let pe = ps + u64::from(geometry.piece_len(piece).unwrap_or(0));
                done += pe.min(start + len).saturating_sub(ps.max(start));
            }
            done as f64 / len as f64
        })
        .collect()
}
