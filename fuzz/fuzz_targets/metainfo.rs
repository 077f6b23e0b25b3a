//! `Metainfo::from_bytes` on arbitrary bytes: never panics, and what it accepts keeps
//! its invariants (hash over the raw info bytes, geometry agrees with the file list,
//! every path stays under the download folder).
#![no_main]

use std::path::Path;

use bt_meta::Metainfo;
use libfuzzer_sys::fuzz_target;
use sha1::{Digest, Sha1};

fuzz_target!(|data: &[u8]| {
    let Ok(m) = Metainfo::from_bytes(data) else {
        return;
    };
    let raw = m.raw_info();
    assert!(data.windows(raw.len()).any(|w| w == raw));
    if let Some(h) = m.info_hash {
        assert_eq!(h.0, <[u8; 20]>::from(Sha1::digest(raw)));
    }
    let g = m.info.geometry();
    assert_eq!(g.num_files(), m.info.files.len());
    assert!(g.total_len() > 0);
    let base = Path::new("/base");
    for (i, f) in m.info.files.iter().enumerate() {
        assert_eq!(g.file_offset(i), f.offset);
        assert_eq!(g.file_len(i), f.length);
        assert_eq!(f.path.len(), f.raw_path.len());
        assert!(f.path_under(base).starts_with(base));
    }
    let _ = m.magnet().to_uri();
});
