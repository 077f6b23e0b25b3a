//! Our own `bt` binary, driven through the CLI it is planned to have:
//!
//! ```text
//! bt info <file.torrent|magnet> [--json]
//! bt create <path> -o <out.torrent> [--tracker URL]... [--piece-length BYTES] [--private]
//!           [--comment TEXT] [--web-seed URL]...
//! bt download <file.torrent> [-o DIR] [--peer IP:PORT]... [--listen ADDR] [--seed]
//! bt seed <file.torrent> <DATA_DIR> [--listen ADDR] [--peer IP:PORT]...
//! bt verify <file.torrent> <DATA_DIR>
//! ```
//!
//! Assumptions the scenarios rely on: `DATA_DIR` of `seed`/`verify` is the folder that
//! holds the torrent's name (like `download -o`); `download` exits 0 only when complete and
//! verified; `seed` prints a line `uploaded: <bytes>` (payload bytes sent) when it stops on
//! SIGINT or SIGTERM.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::time::Duration;

use anyhow::{Context, Result};
use rustix::process::Signal;

use crate::peers::wait_listening;
use crate::process::{self, Proc};
use crate::sandbox::Sandbox;

/// Time allowed for `info`, `create`, `verify` and `--help`.
const CALL_TIMEOUT: Duration = Duration::from_secs(120);

/// The `bt` binary under test.
pub struct Bt {
    path: PathBuf,
    /// `supports` answers, so `--help` runs once per subcommand.
    supported: Mutex<HashMap<String, bool>>,
    /// Appended to every `download` and `seed` command line; `--no-dht` by default, so
    /// no test ever makes `bt` contact (or resolve the names of) the public DHT routers.
    session_args: Vec<String>,
}

impl Bt {
    /// The binary at `path` (which may not exist yet).
    pub fn new(path: PathBuf) -> Self {
        Bt {
            path,
            supported: Mutex::new(HashMap::new()),
            session_args: vec!["--no-dht".to_owned()],
        }
    }

    /// A copy that also passes `extra` to every `download` and `seed`.
    pub fn with_args(&self, extra: &[&str]) -> Bt {
        let supported = self.supported.lock().map(|m| m.clone()).unwrap_or_default();
        let mut session_args = self.session_args.clone();
        session_args.extend(extra.iter().map(|a| (*a).to_owned()));
        Bt {
            path: self.path.clone(),
            supported: Mutex::new(supported),
            session_args,
        }
    }

    /// Replaces the arguments appended to every later `download` and `seed` command
    /// (default `--no-dht`; a scenario about the DHT passes `--dht-bootstrap` to loopback).
    pub fn set_session_args(&mut self, args: &[&str]) {
        self.session_args = args.iter().map(|a| (*a).to_owned()).collect();
    }

    /// `bt <subcommand> --help`, if it exits 0.
    pub fn help(&self, subcommand: &str) -> Option<String> {
        let mut cmd = self.command();
        cmd.args([subcommand, "--help"]);
        process::run("bt --help", &cmd, Duration::from_secs(20)).ok()
    }

    /// Its path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// True if the binary exists, `bt <subcommand> --help` exits 0 and its help names
    /// the subcommand, and `bt <nonsense> --help` fails (so a stub that exits 0 whatever
    /// it is given supports nothing).
    pub fn supports(&self, subcommand: &str) -> bool {
        let mut supported = self.supported.lock().unwrap_or_else(|e| e.into_inner());
        *supported.entry(subcommand.to_owned()).or_insert_with(|| {
            self.path.is_file()
                && self
                    .help(subcommand)
                    .is_some_and(|text| text.contains(subcommand))
                && self.help("no-such-subcommand").is_none()
        })
    }

    fn command(&self) -> Command {
        let mut cmd = Command::new(&self.path);
        cmd.env("RUST_BACKTRACE", "1");
        cmd
    }

    /// `bt info <torrent> --json`, parsed.
    pub fn info_json(&self, torrent: &Path) -> Result<serde_json::Value> {
        let mut cmd = self.command();
        cmd.arg("info").arg(torrent).arg("--json");
        let out = process::run("bt info", &cmd, CALL_TIMEOUT)?;
        serde_json::from_str(&out).with_context(|| format!("`bt info --json` printed:\n{out}"))
    }

    /// `bt create <path> -o <out> <extra...>`.
    pub fn create(&self, path: &Path, out: &Path, extra: &[&str]) -> Result<()> {
        let mut cmd = self.command();
        cmd.arg("create").arg(path).arg("-o").arg(out).args(extra);
        process::run("bt create", &cmd, CALL_TIMEOUT).map(drop)
    }

    /// `bt verify <torrent> <data_dir>`: Ok(true) if it exits 0, Ok(false) otherwise.
    pub fn verify(&self, torrent: &Path, data_dir: &Path) -> Result<bool> {
        let mut cmd = self.command();
        cmd.arg("verify").arg(torrent).arg(data_dir);
        let mut proc = Proc::spawn("bt verify", &cmd, None)?;
        Ok(proc.wait(CALL_TIMEOUT)?.success())
    }

    /// Starts `bt download <torrent> -o <out> --listen <listen> --peer <peer>...`; wait
    /// on the returned process for it to exit.
    pub fn download(
        &self,
        sandbox: &Sandbox,
        name: &str,
        torrent: &Path,
        out: &Path,
        listen: SocketAddr,
        peers: &[SocketAddr],
    ) -> Result<Proc> {
        let mut cmd = self.command();
        cmd.arg("download")
            .arg(torrent)
            .arg("-o")
            .arg(out)
            .arg("--listen")
            .arg(listen.to_string());
        for peer in peers {
            cmd.arg("--peer").arg(peer.to_string());
        }
        cmd.args(&self.session_args);
        sandbox.spawn(name, &cmd)
    }

    /// Starts `bt seed <torrent> <data_dir> --listen <listen> --peer <peer>...` and waits
    /// until it accepts connections.
    pub fn seed(
        &self,
        sandbox: &Sandbox,
        name: &str,
        torrent: &Path,
        data_dir: &Path,
        listen: SocketAddr,
        peers: &[SocketAddr],
    ) -> Result<BtSeed> {
        let mut cmd = self.command();
        cmd.arg("seed")
            .arg(torrent)
            .arg(data_dir)
            .arg("--listen")
            .arg(listen.to_string());
        for peer in peers {
            cmd.arg("--peer").arg(peer.to_string());
        }
        cmd.args(&self.session_args);
        let proc = sandbox.spawn(name, &cmd)?;
        let seed = BtSeed { proc, listen };
        wait_listening(listen, Duration::from_secs(60))
            .with_context(|| format!("{name} never listened on {listen}"))?;
        Ok(seed)
    }
}

/// A running `bt seed`; killed on drop, or stopped politely with [`BtSeed::stop`].
pub struct BtSeed {
    proc: Proc,
    listen: SocketAddr,
}

impl BtSeed {
    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.listen
    }

    /// Its process group id (see [`Proc::pid`]).
    pub fn pid(&self) -> u32 {
        self.proc.pid()
    }

    /// Sends SIGTERM and returns the payload bytes it reports in its final
    /// `uploaded: <bytes>` line.
    pub fn stop(mut self) -> Result<u64> {
        self.proc.signal(Signal::TERM)?;
        let uploaded = self.proc.read_lines_until(
            Duration::from_secs(30),
            "an `uploaded: <bytes>` line",
            |line| Ok(parse_uploaded(line)),
        )?;
        self.proc.wait(Duration::from_secs(30))?;
        Ok(uploaded)
    }
}

/// The byte count of an `uploaded: <bytes>` line.
fn parse_uploaded(line: &str) -> Option<u64> {
    line.trim().strip_prefix("uploaded:")?.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uploaded_line() {
        assert_eq!(parse_uploaded("uploaded: 12345"), Some(12345));
        assert_eq!(parse_uploaded("  uploaded:7 "), Some(7));
        assert_eq!(parse_uploaded("uploaded: lots"), None);
        assert_eq!(parse_uploaded("downloaded: 5"), None);
    }

    /// A fake `bt`: a shell script running `script`.
    fn fake_bt(dir: &Path, script: &str) -> Bt {
        use std::os::unix::fs::PermissionsExt;
        let path = dir.join("bt");
        std::fs::write(&path, format!("#!/bin/sh\n{script}\n")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        Bt::new(path)
    }

    #[test]
    fn stub_that_always_exits_0_supports_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let bt = fake_bt(dir.path(), "echo 'bt: not yet'");
        assert!(!bt.supports("download"));
    }

    #[test]
    fn real_subcommands_are_supported() {
        let dir = tempfile::tempdir().unwrap();
        let script = r#"case "$1" in info|seed) echo "Usage: bt $1 [OPTIONS]";; *) echo "unrecognized subcommand '$1'" >&2; exit 2;; esac"#;
        let bt = fake_bt(dir.path(), script);
        assert!(bt.supports("info"));
        assert!(bt.supports("seed"));
        assert!(!bt.supports("download"));
    }

    #[test]
    fn download_and_seed_stay_off_the_public_dht_by_default() {
        let bt = Bt::new(PathBuf::from("/nonexistent/bt"));
        assert_eq!(bt.session_args, ["--no-dht"]);
    }

    #[test]
    fn missing_binary_supports_nothing() {
        let bt = Bt::new(PathBuf::from("/nonexistent/bt"));
        assert!(!bt.supports("download"));
    }
}
