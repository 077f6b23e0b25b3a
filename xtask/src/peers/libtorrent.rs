//! libtorrent (python3-libtorrent 2.0) through `xtask/peers/libtorrent_peer.py`: one-shot
//! `info` and `create`, and [`LtSession`], a seeding or downloading session that reports
//! its [`Status`] as one JSON line every 0.2 s.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use serde::Deserialize;

use crate::layout;
use crate::process::{self, Proc};
use crate::sandbox::Sandbox;

/// Debian's python, the one python3-libtorrent is built for.
pub const PYTHON: &str = "/usr/bin/python3";

/// Time allowed for a one-shot `info` or `create` (hashing a few hundred MiB at most).
const ONE_SHOT_TIMEOUT: Duration = Duration::from_secs(120);

fn script() -> PathBuf {
    layout::peer_scripts().join("libtorrent_peer.py")
}

fn script_command() -> Command {
    let mut cmd = Command::new(PYTHON);
    cmd.arg(script());
    cmd
}

/// True if `/usr/bin/python3` can import libtorrent (checked once per run).
pub fn is_installed() -> bool {
    static INSTALLED: OnceLock<bool> = OnceLock::new();
    *INSTALLED.get_or_init(|| {
        let mut cmd = Command::new(PYTHON);
        cmd.args(["-c", "import libtorrent"]);
        process::run("python3-libtorrent check", &cmd, Duration::from_secs(20)).is_ok()
    })
}

/// One file of a torrent as libtorrent lists it.
#[derive(Clone, Debug, Deserialize)]
pub struct FileEntry {
    /// Path inside the torrent, starting with the torrent's name for a multi-file torrent.
    pub path: String,
    /// Length in bytes.
    pub size: u64,
    /// True for a BEP 47 padding file.
    pub pad: bool,
}

/// What libtorrent reads from a .torrent.
#[derive(Clone, Debug, Deserialize)]
pub struct TorrentInfo {
    /// v1 info-hash, lowercase hex.
    pub info_hash: String,
    /// The torrent's name.
    pub name: String,
    /// Number of pieces.
    pub num_pieces: u64,
    /// Piece length in bytes.
    pub piece_length: u64,
    /// Sum of the file lengths.
    pub total_size: u64,
    /// The files, in torrent order.
    pub files: Vec<FileEntry>,
    /// SHA-1 of every piece, lowercase hex.
    pub piece_hashes: Vec<String>,
}

/// libtorrent's view of `torrent`.
pub fn info(torrent: &Path) -> Result<TorrentInfo> {
    let mut cmd = script_command();
    cmd.arg("info").arg(torrent);
    let out = process::run("libtorrent info", &cmd, ONE_SHOT_TIMEOUT)?;
    serde_json::from_str(&out).with_context(|| format!("bad `info` output: {out}"))
}

/// Writes a v1 torrent of `path` (a file or folder) to `out` with piece length
/// `piece_len` and announce URLs `trackers`; returns libtorrent's view of it.
pub fn create(path: &Path, out: &Path, piece_len: u64, trackers: &[String]) -> Result<TorrentInfo> {
    let mut cmd = script_command();
    cmd.arg("create")
        .arg(path)
        .arg(out)
        .arg(piece_len.to_string());
    for tracker in trackers {
        cmd.arg("--tracker").arg(tracker);
    }
    let out = process::run("libtorrent create", &cmd, ONE_SHOT_TIMEOUT)?;
    serde_json::from_str(&out).with_context(|| format!("bad `create` output: {out}"))
}

/// One status line of a session. It mirrors the script's JSON; fields no scenario reads
/// yet still show in failure messages through `Debug`.
#[allow(dead_code)]
#[derive(Clone, Debug, Default, Deserialize)]
pub struct Status {
    /// libtorrent's torrent state, e.g. `checking_files`, `downloading`, `seeding`.
    pub state: String,
    /// Fraction of the wanted pieces we have, 0.0..=1.0.
    pub progress: f64,
    /// Connected peers.
    pub num_peers: u64,
    /// True once every piece is here.
    pub is_seeding: bool,
    /// True once every wanted piece is here.
    pub is_finished: bool,
    /// Bytes sent since the torrent was added, protocol overhead included.
    pub total_upload: u64,
    /// Bytes received since the torrent was added, protocol overhead included.
    pub total_download: u64,
    /// Payload bytes sent since the torrent was added.
    pub total_payload_upload: u64,
    /// Payload bytes received since the torrent was added.
    pub total_payload_download: u64,
    /// The torrent's error, if any.
    pub error: Option<String>,
    /// False while a magnet download still fetches the metadata.
    #[serde(default)]
    pub has_metadata: bool,
    /// Addresses of the connected peers.
    #[serde(default)]
    pub peer_addrs: Vec<String>,
    /// Nodes in the DHT routing table (`None` when libtorrent does not say).
    #[serde(default)]
    pub dht_nodes: Option<u64>,
    /// Connected peers whose connection is RC4-encrypted (MSE/PE).
    #[serde(default)]
    pub rc4_peers: u64,
}

/// Options of a session.
#[derive(Clone, Debug, Default)]
pub struct SessionOptions {
    /// Endpoints to dial (and keep redialling until connected).
    pub peers: Vec<SocketAddr>,
    /// Upload rate limit in bytes per second; 0 for none.
    pub upload_limit: u64,
    /// A file of `IP:PORT` lines, re-read every second, naming more endpoints to dial
    /// (so a long-lived seeder can dial a leecher started later, e.g. Transmission).
    pub peers_file: Option<PathBuf>,
    /// Seconds between status lines; the script's default (0.2 s) if `None`.
    pub status_interval: Option<f64>,
    /// Download this magnet link instead of the .torrent (download mode only).
    pub magnet: Option<String>,
    /// Listen on this loopback address instead of 127.0.0.1 (a DHT session needs its own).
    pub listen_ip: Option<std::net::Ipv4Addr>,
    /// Turn the DHT on, bootstrapped from these nodes (its UDP port is the listen port).
    pub dht_nodes: Vec<SocketAddr>,
    /// Require MSE/PE with RC4 on every connection, both ways.
    pub forced_encryption: bool,
}

/// A running libtorrent session with one torrent; killed on drop.
pub struct LtSession {
    proc: Proc,
    addr: SocketAddr,
    last: Status,
}

impl LtSession {
    /// Starts seeding `torrent` from `save_path` (the folder that holds the torrent's
    /// name). Call [`LtSession::wait_seeding`] before relying on it.
    pub fn seed(
        sandbox: &Sandbox,
        name: &str,
        torrent: &Path,
        save_path: &Path,
        opts: &SessionOptions,
    ) -> Result<Self> {
        Self::start(sandbox, name, "seed", torrent, save_path, opts)
    }

    /// Starts downloading `torrent` (or `opts.magnet`, and then `torrent` is not read)
    /// into `save_path`; it keeps seeding once complete.
    pub fn download(
        sandbox: &Sandbox,
        name: &str,
        torrent: &Path,
        save_path: &Path,
        opts: &SessionOptions,
    ) -> Result<Self> {
        Self::start(sandbox, name, "download", torrent, save_path, opts)
    }

    fn start(
        sandbox: &Sandbox,
        name: &str,
        mode: &str,
        torrent: &Path,
        save_path: &Path,
        opts: &SessionOptions,
    ) -> Result<Self> {
        let addr = match opts.listen_ip {
            Some(ip) => SocketAddr::from((ip, sandbox.port()?)),
            None => sandbox.addr()?,
        };
        let mut cmd = script_command();
        cmd.arg(mode);
        match &opts.magnet {
            Some(link) => cmd.arg("--magnet").arg(link),
            None => cmd.arg("--torrent").arg(torrent),
        };
        cmd.arg("--listen-ip")
            .arg(addr.ip().to_string())
            .arg("--save-path")
            .arg(save_path)
            .arg("--port")
            .arg(addr.port().to_string())
            .arg("--upload-limit")
            .arg(opts.upload_limit.to_string());
        for peer in &opts.peers {
            cmd.arg("--peer").arg(peer.to_string());
        }
        if let Some(file) = &opts.peers_file {
            cmd.arg("--peers-file").arg(file);
        }
        for node in &opts.dht_nodes {
            cmd.arg("--dht-node").arg(node.to_string());
        }
        if opts.forced_encryption {
            cmd.arg("--encryption").arg("forced");
        }
        if let Some(interval) = opts.status_interval {
            cmd.arg("--interval").arg(interval.to_string());
        }
        let proc = sandbox.spawn(name, &cmd)?;
        Ok(LtSession {
            proc,
            addr,
            last: Status::default(),
        })
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The session's process group id (see [`Proc::pid`]).
    pub fn pid(&self) -> u32 {
        self.proc.pid()
    }

    /// Waits at most `timeout` for a status line satisfying `done`, failing early if the
    /// torrent reports an error or the session exits.
    pub fn wait_for(
        &mut self,
        timeout: Duration,
        what: &str,
        done: impl Fn(&Status) -> bool,
    ) -> Result<Status> {
        let name = self.proc.name().to_owned();
        let last = &mut self.last;
        self.proc.read_lines_until(timeout, what, |line| {
            let Some(status) = parse_status(line) else {
                return Ok(None);
            };
            if let Some(error) = &status.error {
                bail!("{name}: torrent error {error:?}");
            }
            *last = status.clone();
            Ok(done(&status).then_some(status))
        })
    }

    /// Waits at most `timeout` until it has every piece (checked data or downloaded).
    pub fn wait_seeding(&mut self, timeout: Duration) -> Result<Status> {
        self.wait_for(timeout, "seeding state", |s| s.is_seeding)
            .with_context(|| {
                format!(
                    "{} never became a seed; last {:?}",
                    self.proc.name(),
                    self.last
                )
            })
    }

    /// The newest status line received so far (without waiting).
    pub fn latest(&mut self) -> &Status {
        for line in self.proc.drain_lines() {
            if let Some(status) = parse_status(&line) {
                self.last = status;
            }
        }
        &self.last
    }

    /// The newest status after waiting for at least one fresh line.
    pub fn fresh_status(&mut self) -> Result<Status> {
        self.latest();
        self.wait_for(Duration::from_secs(10), "a status line", |_| true)
    }
}

fn parse_status(line: &str) -> Option<Status> {
    line.starts_with('{')
        .then(|| serde_json::from_str(line).ok())
        .flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_lines_parse_and_other_lines_are_ignored() {
        let line = r#"{"state": "seeding", "progress": 1.0, "num_peers": 2, "is_seeding": true, "is_finished": true, "total_upload": 10, "total_download": 3, "total_payload_upload": 8, "total_payload_download": 0, "error": null}"#;
        let status = parse_status(line).unwrap();
        assert_eq!(
            (status.state.as_str(), status.total_payload_upload),
            ("seeding", 8)
        );
        assert!(parse_status("seed: data is not complete").is_none());
    }
}
