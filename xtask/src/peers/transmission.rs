//! Transmission 3.00: [`TransmissionDaemon`] (driven with `transmission-remote`) as seeder
//! or leecher, and `transmission-show` to read a .torrent.
//!
//! Transmission never dials peers in 127.0.0.0/8, so as a leecher the other side must dial
//! [`TransmissionDaemon::peer_addr`]. Its rechoke runs every 10 s: the first payload byte
//! comes about 11 s after start. It does not create the 0-byte files of a torrent.

use std::fs;
use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use anyhow::{bail, Context, Result};

use crate::deadline::poll_until;
use crate::layout;
use crate::peers::wait_listening;
use crate::process::{self, Proc};
use crate::sandbox::Sandbox;

/// Time allowed for one `transmission-remote` or `transmission-show` call.
const CALL_TIMEOUT: Duration = Duration::from_secs(20);

/// The first Transmission program not on PATH, if any.
pub fn missing_program() -> Option<&'static str> {
    [
        "transmission-daemon",
        "transmission-remote",
        "transmission-show",
    ]
    .into_iter()
    .find(|p| layout::which(p).is_none())
}

/// The info-hash (lowercase hex) `transmission-show` reads from `torrent`.
pub fn show_info_hash(torrent: &Path) -> Result<String> {
    let mut cmd = Command::new("transmission-show");
    cmd.arg(torrent);
    let out = process::run("transmission-show", &cmd, CALL_TIMEOUT)?;
    field(&out, "Hash")
        .map(str::to_ascii_lowercase)
        .with_context(|| format!("no `Hash:` in transmission-show output:\n{out}"))
}

/// The value of the first `  Key: value` line of transmission's text output.
fn field<'a>(text: &'a str, key: &str) -> Option<&'a str> {
    text.lines().find_map(|line| {
        let (k, v) = line.trim().split_once(':')?;
        (k == key).then(|| v.trim())
    })
}

/// One torrent's transfer state as `transmission-remote -t 1 -i` reports it.
#[derive(Clone, Debug)]
pub struct TorrentState {
    /// e.g. `Idle`, `Seeding`, `Downloading`, `Verifying`.
    pub state: String,
    /// Percent done, 0..=100.
    pub percent_done: f64,
    /// The whole `-i` output, for messages.
    pub raw: String,
}

impl TorrentState {
    /// True once all data is here and verified and it is not busy checking.
    pub fn is_complete(&self) -> bool {
        self.percent_done >= 100.0 && matches!(self.state.as_str(), "Idle" | "Seeding")
    }
}

fn parse_state(raw: &str) -> Result<TorrentState> {
    let state = field(raw, "State").context("no `State:`")?.to_owned();
    let percent = field(raw, "Percent Done").context("no `Percent Done:`")?;
    let percent_done = percent
        .trim_end_matches('%')
        .parse()
        .with_context(|| format!("bad percent {percent:?}"))?;
    Ok(TorrentState {
        state,
        percent_done,
        raw: raw.to_owned(),
    })
}

/// A transmission-daemon with its own config dir, RPC and peer port on 127.0.0.1; killed
/// on drop.
pub struct TransmissionDaemon {
    proc: Proc,
    rpc: SocketAddr,
    peer: SocketAddr,
}

impl TransmissionDaemon {
    /// Starts a daemon (DHT, LPD, PEX, uTP, port forwarding off; no limits) whose default
    /// download dir is `download_dir`, and waits for its RPC.
    pub fn start(sandbox: &Sandbox, name: &str, download_dir: &Path) -> Result<Self> {
        Self::start_with_encryption(sandbox, name, download_dir, 1)
    }

    /// [`TransmissionDaemon::start`] with Transmission's `encryption` setting: 0 prefers
    /// plaintext, 1 (the default above) prefers RC4, 2 requires it.
    pub fn start_with_encryption(
        sandbox: &Sandbox,
        name: &str,
        download_dir: &Path,
        encryption: u8,
    ) -> Result<Self> {
        let rpc = sandbox.addr()?;
        let peer = sandbox.addr()?;
        let config_dir = sandbox.mkdir(&format!("{name}-config"))?;
        let settings = serde_json::json!({
            "bind-address-ipv4": "127.0.0.1",
            "bind-address-ipv6": "::1",
            "dht-enabled": false,
            "lpd-enabled": false,
            "pex-enabled": false,
            "utp-enabled": false,
            "port-forwarding-enabled": false,
            "peer-port": peer.port(),
            "peer-port-random-on-start": false,
            "peer-limit-global": 200,
            "peer-limit-per-torrent": 100,
            "rpc-enabled": true,
            "rpc-bind-address": "127.0.0.1",
            "rpc-port": rpc.port(),
            "rpc-authentication-required": false,
            "rpc-whitelist-enabled": false,
            "rpc-host-whitelist-enabled": false,
            "download-dir": download_dir,
            "incomplete-dir-enabled": false,
            "rename-partial-files": false,
            "watch-dir-enabled": false,
            "start-added-torrents": true,
            "speed-limit-up-enabled": false,
            "speed-limit-down-enabled": false,
            "alt-speed-enabled": false,
            "ratio-limit-enabled": false,
            "idle-seeding-limit-enabled": false,
            "blocklist-enabled": false,
            "encryption": encryption,
            "cache-size-mb": 4,
            "message-level": 2,
        });
        fs::write(
            config_dir.join("settings.json"),
            serde_json::to_string_pretty(&settings)?,
        )?;
        let mut cmd = Command::new("transmission-daemon");
        cmd.arg("--foreground").arg("--config-dir").arg(&config_dir);
        let proc = sandbox.spawn(name, &cmd)?;
        let daemon = TransmissionDaemon { proc, rpc, peer };
        wait_listening(rpc, Duration::from_secs(20))
            .with_context(|| format!("{name} RPC never came up"))?;
        Ok(daemon)
    }

    /// Where it accepts peer connections (dial it: it never dials loopback peers).
    pub fn peer_addr(&self) -> SocketAddr {
        self.peer
    }

    /// The daemon's process group id (see [`Proc::pid`]).
    pub fn pid(&self) -> u32 {
        self.proc.pid()
    }

    fn remote(&self, args: &[&std::ffi::OsStr]) -> Result<String> {
        let mut cmd = Command::new("transmission-remote");
        cmd.arg(self.rpc.to_string()).args(args);
        process::run("transmission-remote", &cmd, CALL_TIMEOUT)
            .with_context(|| format!("{} RPC call failed", self.proc.name()))
    }

    /// Adds `torrent` (it becomes torrent id 1 of a fresh daemon) with its data in
    /// `download_dir`; Transmission checks existing data, then seeds or downloads.
    pub fn add(&self, torrent: &Path, download_dir: &Path) -> Result<()> {
        let out = self.remote(&[
            "--add".as_ref(),
            torrent.as_os_str(),
            "--download-dir".as_ref(),
            download_dir.as_os_str(),
        ])?;
        if !out.contains("success") {
            bail!("adding {} failed: {out}", torrent.display());
        }
        Ok(())
    }

    /// The state of torrent 1.
    pub fn state(&self) -> Result<TorrentState> {
        let raw = self.remote(&["-t".as_ref(), "1".as_ref(), "--info".as_ref()])?;
        parse_state(&raw).with_context(|| format!("unexpected transmission-remote output:\n{raw}"))
    }

    /// Waits at most `timeout` until torrent 1 has all its data verified (seeding).
    pub fn wait_complete(&mut self, timeout: Duration) -> Result<TorrentState> {
        let name = self.proc.name().to_owned();
        let mut last = None;
        let waited = poll_until(timeout, &format!("{name} to complete"), || {
            if let Some(status) = self.proc.try_exit()? {
                bail!(
                    "{name} exited ({status}); last output:\n{}",
                    self.proc.tail()
                );
            }
            let state = self.state()?;
            let done = state.is_complete();
            last = Some(state.clone());
            Ok(done.then_some(state))
        });
        waited.with_context(|| match &last {
            Some(state) => format!("last state:\n{}", state.raw),
            None => String::new(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const INFO: &str = "NAME\n  Id: 1\n  Name: tree\n  Hash: 18E66C01e3\n\nTRANSFER\n  \
                        State: Idle\n  Percent Done: 100%\n  Downloaded: None\n  Uploaded: 1.2 MB\n";

    #[test]
    fn info_output_parses() {
        let state = parse_state(INFO).unwrap();
        assert_eq!(state.state, "Idle");
        assert_eq!(state.percent_done, 100.0);
        assert!(state.is_complete());
        assert_eq!(field(INFO, "Hash"), Some("18E66C01e3"));
    }

    #[test]
    fn partial_or_verifying_is_not_complete() {
        let partial = INFO.replace("100%", "42.5%").replace("Idle", "Downloading");
        let state = parse_state(&partial).unwrap();
        assert_eq!(state.percent_done, 42.5);
        assert!(!state.is_complete());
        let verifying = parse_state(&INFO.replace("Idle", "Verifying")).unwrap();
        assert!(!verifying.is_complete());
        assert!(parse_state("garbage").is_err());
    }
}
