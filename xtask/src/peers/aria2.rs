//! aria2 1.36: [`Aria2`] seeding (readiness from its JSON-RPC) or downloading (exits when
//! done; no JSON-RPC then, as aria2 with RPC on keeps running after its downloads). It
//! cannot be given a peer for a .torrent download: a leecher needs a tracker.

use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use anyhow::{bail, Context, Result};

use crate::deadline::poll_until;
use crate::http;
use crate::peers::wait_listening;
use crate::process::Proc;
use crate::sandbox::Sandbox;

/// A running aria2c with one torrent; killed on drop.
pub struct Aria2 {
    proc: Proc,
    /// JSON-RPC endpoint (seeders only).
    rpc: Option<SocketAddr>,
    listen: SocketAddr,
}

impl Aria2 {
    /// Starts seeding `torrent` from `dir` (the folder holding the torrent's name) after
    /// a full hash check. Call [`Aria2::wait_seeding`] before relying on it.
    pub fn seed(sandbox: &Sandbox, name: &str, torrent: &Path, dir: &Path) -> Result<Self> {
        let rpc = sandbox.addr()?;
        let args = [
            "--seed-ratio=0.0".to_owned(),
            "--enable-rpc=true".to_owned(),
            "--rpc-listen-all=false".to_owned(),
            format!("--rpc-listen-port={}", rpc.port()),
        ];
        let mut aria2 = Self::start(sandbox, name, torrent, dir, &args)?;
        aria2.rpc = Some(rpc);
        wait_listening(rpc, Duration::from_secs(20))
            .with_context(|| format!("{name} JSON-RPC never came up"))?;
        Ok(aria2)
    }

    /// Starts downloading `torrent` into `dir`; it exits 0 once complete.
    pub fn download(sandbox: &Sandbox, name: &str, torrent: &Path, dir: &Path) -> Result<Self> {
        Self::start(sandbox, name, torrent, dir, &["--seed-time=0".to_owned()])
    }

    fn start(
        sandbox: &Sandbox,
        name: &str,
        torrent: &Path,
        dir: &Path,
        extra: &[String],
    ) -> Result<Self> {
        let listen = sandbox.addr()?;
        let mut cmd = Command::new("aria2c");
        cmd.args([
            "--no-conf=true",
            "--interface=127.0.0.1",
            "--disable-ipv6=true",
            "--enable-dht=false",
            "--enable-dht6=false",
            "--bt-enable-lpd=false",
            "--enable-peer-exchange=false",
            "--bt-max-peers=0",
            "--check-integrity=true",
            "--file-allocation=falloc",
            "--auto-save-interval=0",
            "--summary-interval=0",
            "--console-log-level=notice",
            "--enable-color=false",
        ])
        .arg(format!("--listen-port={}", listen.port()))
        .arg(format!("--stop-with-process={}", std::process::id()))
        .arg(format!("--dir={}", dir.display()))
        .args(extra)
        .arg(torrent);
        let proc = sandbox.spawn(name, &cmd)?;
        Ok(Aria2 {
            proc,
            rpc: None,
            listen,
        })
    }

    /// Where it accepts peer connections.
    pub fn listen_addr(&self) -> SocketAddr {
        self.listen
    }

    /// Its process group id (see [`Proc::pid`]).
    pub fn pid(&self) -> u32 {
        self.proc.pid()
    }

    fn tell_active(&self) -> Result<serde_json::Value> {
        let rpc = self.rpc.context("aria2 was started without JSON-RPC")?;
        let body = r#"{"jsonrpc":"2.0","id":"xtask","method":"aria2.tellActive","params":[]}"#;
        let response = http::post_json(rpc, "/jsonrpc", body)?;
        if response.status != 200 {
            bail!("aria2 JSON-RPC answered {}", response.status);
        }
        Ok(serde_json::from_slice(&response.body)?)
    }

    /// Waits at most `timeout` until it has checked the data and seeds.
    pub fn wait_seeding(&mut self, timeout: Duration) -> Result<()> {
        let name = self.proc.name().to_owned();
        poll_until(timeout, &format!("{name} to seed"), || {
            if let Some(status) = self.proc.try_exit()? {
                bail!(
                    "{name} exited ({status}); last output:\n{}",
                    self.proc.tail()
                );
            }
            let reply = self.tell_active()?;
            let seeding = reply["result"]
                .as_array()
                .is_some_and(|all| all.iter().any(|d| d["seeder"] == "true"));
            Ok(seeding.then_some(()))
        })
    }

    /// Waits at most `timeout` for the download to finish (exit 0).
    pub fn wait_done(&mut self, timeout: Duration) -> Result<()> {
        self.proc.wait_success(timeout)
    }
}
