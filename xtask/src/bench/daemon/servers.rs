//! The three daemons as the benchmark runs them: each with its own state folder in the
//! sandbox, its API and peer port on 127.0.0.1, no DHT, LSD, PeX, UPnP or uTP, and the
//! same command to start it again on the same state. Each runs under a hard lifetime
//! long enough for the benchmark's caps (see [`Proc::spawn_for`]) and is killed, with its
//! process group, when its [`Server`] is dropped.

use std::ffi::OsString;
use std::fs;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus};
use std::time::Duration;

use anyhow::{bail, Context, Result};

use crate::bench::clients::Client;
use crate::bench::{meter, qbittorrent};
use crate::deadline::poll_until;
use crate::process::Proc;
use crate::sandbox::Sandbox;

/// A running daemon.
pub struct Server {
    /// Which client it is.
    pub client: Client,
    /// Its API (bt, qBittorrent) or RPC (Transmission) address.
    pub api: SocketAddr,
    proc: Proc,
    name: String,
    argv: Vec<OsString>,
    log_dir: PathBuf,
    lifetime: Duration,
}

impl Server {
    /// Writes `client`'s configuration under the sandbox and starts it, its downloads in
    /// `data_dir`; `bt` is the bt binary.
    pub fn start(
        client: Client,
        sandbox: &Sandbox,
        bt: &Path,
        data_dir: &Path,
        lifetime: Duration,
    ) -> Result<Server> {
        let api = sandbox.addr()?;
        let name = format!("daemon-{}", client.name());
        let state = sandbox.mkdir(&format!("{name}-state"))?;
        let argv: Vec<OsString> = match client {
            Client::Bt => vec![
                bt.into(),
                "daemon".into(),
                "--state-dir".into(),
                state.into(),
                "--download-dir".into(),
                data_dir.into(),
                "--listen".into(),
                "127.0.0.1:0".into(),
                "--api".into(),
                api.to_string().into(),
                "--no-dht".into(),
            ],
            Client::Qbittorrent => {
                let peer = sandbox.addr()?;
                let config_dir = state.join("qBittorrent").join("config");
                fs::create_dir_all(&config_dir)?;
                fs::write(
                    config_dir.join("qBittorrent.conf"),
                    qbittorrent::config(peer, api, data_dir),
                )?;
                vec![
                    qbittorrent::PROGRAM.into(),
                    format!("--profile={}", state.display()).into(),
                ]
            }
            Client::Transmission => {
                let peer = sandbox.addr()?;
                fs::write(
                    state.join("settings.json"),
                    serde_json::to_string_pretty(&transmission_settings(peer, api, data_dir))?,
                )?;
                vec![
                    "transmission-daemon".into(),
                    "--foreground".into(),
                    "--config-dir".into(),
                    state.into(),
                ]
            }
            other => bail!("{} has no daemon here", other.name()),
        };
        let log_dir = sandbox.path().join("logs");
        let proc = spawn(&name, &argv, &log_dir, lifetime)?;
        Ok(Server {
            client,
            api,
            proc,
            name,
            argv,
            log_dir,
            lifetime,
        })
    }

    /// Starts it again on the same state, once it has exited.
    pub fn respawn(&mut self) -> Result<()> {
        if self.proc.try_exit()?.is_none() {
            bail!("{} is still running", self.name);
        }
        self.proc = spawn(&self.name, &self.argv, &self.log_dir, self.lifetime)?;
        Ok(())
    }

    /// The pid of its `timeout` wrapper (the root of its process tree, for [`meter`]).
    pub fn root_pid(&self) -> u32 {
        self.proc.pid()
    }

    /// The pid of the daemon itself (the wrapper's child), for its /proc status.
    pub fn daemon_pid(&self) -> Result<u32> {
        let root = self.root_pid();
        poll_until(Duration::from_secs(10), "the daemon's pid", || {
            Ok(meter::children(root).first().copied())
        })
    }

    /// Its exit status if it has exited.
    pub fn exited(&mut self) -> Result<Option<ExitStatus>> {
        self.proc.try_exit()
    }

    /// Waits at most `timeout` for it to exit.
    pub fn wait_exit(&mut self, timeout: Duration) -> Result<ExitStatus> {
        self.proc.wait(timeout)
    }

    /// Kills it (its whole process group) if it still runs.
    pub fn kill(&mut self) {
        let _ = self.proc.kill();
    }

    /// The last lines of its output, for messages.
    pub fn tail(&self) -> String {
        self.proc.tail()
    }

    /// Its log file.
    pub fn log(&self) -> PathBuf {
        self.log_dir.join(format!("{}.log", self.name))
    }
}

fn spawn(name: &str, argv: &[OsString], log_dir: &Path, lifetime: Duration) -> Result<Proc> {
    let (program, args) = argv.split_first().context("empty command")?;
    let mut cmd = Command::new(program);
    cmd.args(args);
    Proc::spawn_for(name, &cmd, Some(log_dir), lifetime)
}

/// Transmission's `settings.json`: loopback only, discovery off, plaintext preferred (as
/// the other two), no limits; everything else its defaults.
fn transmission_settings(peer: SocketAddr, rpc: SocketAddr, data_dir: &Path) -> serde_json::Value {
    serde_json::json!({
        "bind-address-ipv4": "127.0.0.1",
        "bind-address-ipv6": "::1",
        "dht-enabled": false,
        "lpd-enabled": false,
        "pex-enabled": false,
        "utp-enabled": false,
        "port-forwarding-enabled": false,
        "peer-port": peer.port(),
        "peer-port-random-on-start": false,
        "rpc-enabled": true,
        "rpc-bind-address": "127.0.0.1",
        "rpc-port": rpc.port(),
        "rpc-authentication-required": false,
        "rpc-whitelist-enabled": false,
        "rpc-host-whitelist-enabled": false,
        "download-dir": data_dir,
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
        "encryption": 0,
        "message-level": 1,
    })
}
