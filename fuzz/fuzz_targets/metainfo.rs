//! `Metainfo::from_bytes` on arbitrary bytes: never panics, and what it accepts keeps
//! its invariants: the info-hash is over raw info bytes found in the input; the geometry
//! agrees with the file list and the piece hashes; pieces tile the torrent, blocks tile
//! each piece and file spans tile each piece (walked for the first and last pieces, so a
//! torrent of a million pieces costs no more than a small one); every path stays under
//! the download folder and no two written files share a path (case-insensitively).
#![no_main]

use std::collections::HashSet;
use std::path::Path;

use bt_meta::{MetaVersion, Metainfo, PieceIndex};
use libfuzzer_sys::fuzz_target;
use sha1::{Digest, Sha1};

/// Pieces walked at each end of the torrent.
const WALK: u32 = 8;

fuzz_target!(|data: &[u8]| {
    let Ok(m) = Metainfo::from_bytes(data) else {
        return;
    };
    let raw = m.raw_info();
    assert!(data.windows(raw.len()).any(|w| w == raw));
    if let Some(h) = m.info_hash {
        assert_eq!(h.0, <[u8; 20]>::from(Sha1::digest(raw)));
    }
    assert_eq!(m.info_hash.is_some(), m.info.version != MetaVersion::V2);

    let g = m.info.geometry();
    assert_eq!(g.num_files(), m.info.files().len());
    assert!(g.total_len() > 0);
    assert_eq!(g.nominal_piece_len(), m.info.piece_len);
    if m.info.version != MetaVersion::V2 {
        assert_eq!(m.info.pieces().len(), g.num_pieces() as usize);
    }

    // Files: contiguous, in order, paths safe and unique.
    let base = Path::new("/base");
    let mut end = 0u64;
    let mut written = HashSet::new();
    for (i, f) in m.info.files().iter().enumerate() {
        assert_eq!(f.offset(), end, "file {i} starts where the previous ends");
        end += f.length();
        assert_eq!(g.file_offset(i), Some(f.offset()));
        assert_eq!(g.file_len(i), Some(f.length()));
        assert!(!f.path().is_empty());
        assert_eq!(f.path().len(), f.raw_path().len());
        assert!(f.path_under(base).starts_with(base));
        if !f.is_pad() {
            let key = f.display_path().to_lowercase();
            assert!(written.insert(key), "duplicate path {:?}", f.display_path());
        }
        let pieces = g.pieces_for_file(i).expect("file in range");
        assert!(pieces.end <= g.num_pieces());
        if f.length() > 0 {
            assert_eq!(g.file_at(f.offset()), Some(i));
            assert!(pieces.start < pieces.end);
        }
    }
    assert_eq!(end, g.total_len());
    assert_eq!(g.file_at(g.total_len()), None);

    // Pieces: the first and last few tile the torrent; their blocks and file spans tile
    // each piece.
    let n = g.num_pieces();
    assert!(n > 0 && !g.contains(PieceIndex(n)));
    let walk = (0..n.min(WALK)).chain(n.saturating_sub(WALK).max(WALK)..n);
    for p in walk.map(PieceIndex) {
        let len = g.piece_len(p).expect("a piece in range");
        assert!(len > 0 && len <= g.nominal_piece_len());
        if p.0 + 1 < n {
            assert_eq!(len, g.nominal_piece_len());
        } else {
            let offset = g.piece_offset(p).expect("a piece in range");
            assert_eq!(offset + u64::from(len), g.total_len());
        }
        let mut at = 0;
        for b in g.blocks(p) {
            assert_eq!(b.begin, at);
            assert!(g.is_valid_block(&b));
            at += b.len;
        }
        assert_eq!(at, len);
        let spanned: u64 = g.file_spans(p, 0, len).map(|s| s.len).sum();
        assert_eq!(spanned, u64::from(len));
    }

    let _ = m.magnet().to_uri();
});
