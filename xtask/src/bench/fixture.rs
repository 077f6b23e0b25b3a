//! A benchmark payload: a deterministic file made on the spot and two .torrent files for
//! it with the same info-hash, one naming the tracker (for aria2, which cannot be given a
//! peer) and one without (every other client is told the seeder's address).

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use sha1::{Digest, Sha1};

use crate::bdecode;
use crate::payload::{self, CompareOptions, MIB};
use crate::peers::bt::Bt;
use crate::peers::libtorrent;
use crate::sandbox::Sandbox;

/// What writes the .torrent files.
#[derive(Clone, Copy)]
pub enum Maker<'a> {
    /// python3-libtorrent (an independent oracle, preferred).
    Libtorrent,
    /// `bt create`, when libtorrent is not installed.
    Bt(&'a Bt),
}

/// A payload on disk and its torrents.
pub struct Fixture {
    /// `large` or `small`.
    pub label: &'static str,
    /// Payload length in bytes.
    pub len: u64,
    /// Piece length in bytes.
    pub piece_len: u64,
    /// The folder holding the payload (a seeder's save path).
    pub data_dir: PathBuf,
    /// The payload file, `data_dir/<name>`.
    pub content: PathBuf,
    /// A .torrent without trackers.
    pub plain_torrent: PathBuf,
    /// The same torrent announcing to the bench's tracker.
    pub tracker_torrent: PathBuf,
    /// The info-hash, lowercase hex.
    pub info_hash: String,
}

impl Fixture {
    /// Writes a `len`-byte payload under `<sandbox>/<label>-seed` and its two torrents
    /// with `piece_len` pieces, the second announcing to `tracker_url`.
    pub fn make(
        sandbox: &Sandbox,
        label: &'static str,
        len: u64,
        piece_len: u64,
        tracker_url: &str,
        maker: Maker,
    ) -> Result<Self> {
        let data_dir = sandbox.mkdir(&format!("{label}-seed"))?;
        let content = payload::single_file(&data_dir, &format!("bench-{label}.bin"), len)?;
        let plain_torrent = sandbox.path().join(format!("{label}.torrent"));
        let tracker_torrent = sandbox.path().join(format!("{label}-tracker.torrent"));
        create(maker, &content, &plain_torrent, piece_len, None)?;
        create(
            maker,
            &content,
            &tracker_torrent,
            piece_len,
            Some(tracker_url),
        )?;
        let other = info_hash(&tracker_torrent)?;
        let info_hash = info_hash(&plain_torrent)?;
        if info_hash != other {
            bail!("the two torrents of {label} differ in info-hash: {info_hash} and {other}");
        }
        Ok(Fixture {
            label,
            len,
            piece_len,
            data_dir,
            content,
            plain_torrent,
            tracker_torrent,
            info_hash,
        })
    }

    /// Number of pieces.
    pub fn pieces(&self) -> u64 {
        self.len.div_ceil(self.piece_len)
    }

    /// A description such as `1024 MiB in 1024 pieces of 1024 KiB`.
    pub fn describe(&self) -> String {
        format!(
            "{} MiB in {} pieces of {} KiB",
            fmt_mib(self.len),
            self.pieces(),
            self.piece_len / 1024
        )
    }

    /// Checks that `download_dir/<name>` holds exactly the payload.
    pub fn check_copy(&self, download_dir: &Path) -> Result<()> {
        let name = self.content.file_name().context("payload has a name")?;
        payload::compare_trees(
            &self.content,
            &download_dir.join(name),
            CompareOptions::default(),
        )
        .context("downloaded data differs from the original")
    }
}

/// MiB with at most one decimal, e.g. `1024` or `0.5`.
fn fmt_mib(len: u64) -> String {
    let mib = len as f64 / MIB as f64;
    if mib.fract() == 0.0 {
        format!("{mib:.0}")
    } else {
        format!("{mib:.1}")
    }
}

/// Writes a v1 torrent of `content` to `out`.
fn create(
    maker: Maker,
    content: &Path,
    out: &Path,
    piece_len: u64,
    tracker: Option<&str>,
) -> Result<()> {
    let trackers: Vec<String> = tracker.into_iter().map(str::to_owned).collect();
    match maker {
        Maker::Libtorrent => libtorrent::create(content, out, piece_len, &trackers).map(drop),
        Maker::Bt(bt) => {
            let piece = piece_len.to_string();
            let mut extra = vec!["--piece-length", piece.as_str(), "--force"];
            for url in &trackers {
                extra.extend(["--tracker", url.as_str()]);
            }
            bt.create(content, out, &extra)
        }
    }
    .with_context(|| format!("cannot make {}", out.display()))
}

/// SHA-1 (hex) of the raw `info` bytes of `torrent`.
fn info_hash(torrent: &Path) -> Result<String> {
    let raw = fs::read(torrent).with_context(|| format!("cannot read {}", torrent.display()))?;
    let info = bdecode::dict_entry_bytes(&raw, b"info")?
        .with_context(|| format!("no info dictionary in {}", torrent.display()))?;
    Ok(hex::encode(Sha1::digest(info)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mib_formatting() {
        assert_eq!(fmt_mib(1024 * MIB), "1024");
        assert_eq!(fmt_mib(MIB / 2), "0.5");
    }
}
