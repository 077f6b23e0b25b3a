//! Integration tests for bt-bencode: the shared corpus (bencode vectors and
//! real torrents) and property tests.

mod props;
mod torrents;
mod vectors;
mod views;

use std::path::PathBuf;

/// The shared fixture corpus, or `None` (with a loud message) when it is not
/// there; under CI (`CI=true`) a missing corpus is a failure.
pub fn fixtures() -> Option<PathBuf> {
    let dir = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/fixtures"
    ));
    if dir.is_dir() {
        return Some(dir);
    }
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("shared fixtures not found at {}", dir.display());
    }
    eprintln!(
        "!!!!! SKIPPED: shared fixtures not found at {} — corpus tests did not run !!!!!",
        dir.display()
    );
    None
}

/// Lowercase hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    hex::encode(bytes)
}
