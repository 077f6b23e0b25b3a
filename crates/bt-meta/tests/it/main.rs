//! bt-meta against the shared third-party corpus (`../shared/fixtures`, see its README):
//! magnet vectors, the torrent manifest, plus creation round trips.

mod create;
mod hostile;
mod limits;
mod magnet;
mod torrents;

use std::path::PathBuf;

/// The shared fixtures: `$BT_SHARED_FIXTURES`, else `<workspace>/../shared/fixtures`.
pub fn fixtures() -> PathBuf {
    if let Some(dir) = std::env::var_os("BT_SHARED_FIXTURES") {
        return PathBuf::from(dir);
    }
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/fixtures");
    assert!(
        dir.join("README.md").is_file(),
        "shared fixtures not found at {} (set BT_SHARED_FIXTURES)",
        dir.display()
    );
    dir
}
