//! A [`Sandbox`] is what one scenario owns: a temp dir (removed afterwards), loopback
//! ports no other scenario of this run gets, and the child processes it spawns (logged
//! into the temp dir).

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::fs;
use std::net::{Ipv4Addr, SocketAddr, TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context, Result};
use tempfile::TempDir;

use crate::payload::XorShift;
use crate::process::Proc;

/// Ports handed out so far in this run, so no two scenarios or clients share one.
static USED_PORTS: Mutex<BTreeSet<u16>> = Mutex::new(BTreeSet::new());

/// Ports are picked from here: below Linux's ephemeral range (32768..), so an outgoing
/// connection cannot take a port between our check and the client's bind.
const PORT_RANGE: std::ops::Range<u16> = 20_000..32_000;

/// The loopback address every client binds to.
pub const LOOPBACK: Ipv4Addr = Ipv4Addr::LOCALHOST;

/// One scenario's private temp dir, ports and logs.
pub struct Sandbox {
    dir: TempDir,
}

impl Sandbox {
    /// A new sandbox under the system temp dir, its name starting with `label`.
    pub fn new(label: &str) -> Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix(&format!("bt-fixture-{label}-"))
            .tempdir_in(std::env::temp_dir())
            .context("cannot create a temp dir")?;
        fs::create_dir(dir.path().join("logs"))?;
        Ok(Sandbox { dir })
    }

    /// The sandbox's root dir.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Creates (if needed) and returns the folder `rel` inside the sandbox.
    pub fn mkdir(&self, rel: &str) -> Result<PathBuf> {
        let path = self.path().join(rel);
        fs::create_dir_all(&path).with_context(|| format!("cannot create {}", path.display()))?;
        Ok(path)
    }

    /// A free TCP+UDP port on 127.0.0.1 that nothing else in this run was given.
    pub fn port(&self) -> Result<u16> {
        free_port()
    }

    /// `127.0.0.1:<a free port>`.
    pub fn addr(&self) -> Result<SocketAddr> {
        Ok(SocketAddr::from((LOOPBACK, self.port()?)))
    }

    /// Spawns `cmd` as a [`Proc`] logging to `logs/<name>.log` in the sandbox.
    pub fn spawn(&self, name: &str, cmd: &Command) -> Result<Proc> {
        Proc::spawn(name, cmd, Some(&self.path().join("logs")))
    }

    /// The last `lines` lines of every log, for a failure report.
    pub fn log_tails(&self, lines: usize) -> String {
        let mut out = String::new();
        let Ok(entries) = fs::read_dir(self.path().join("logs")) else {
            return out;
        };
        let mut paths: Vec<_> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
        paths.sort();
        for path in paths {
            let text = fs::read_to_string(&path).unwrap_or_default();
            let all: Vec<&str> = text.lines().collect();
            let shown = &all[all.len().saturating_sub(lines)..];
            let _ = writeln!(out, "  --- {} (last {} lines)", path.display(), shown.len());
            for line in shown {
                let _ = writeln!(out, "    | {line}");
            }
        }
        out
    }

    /// Keeps the temp dir on disk (for debugging a failure) and returns its path.
    pub fn keep(self) -> PathBuf {
        self.dir.keep()
    }
}

/// Picks a port in [`PORT_RANGE`] that binds on 127.0.0.1 for both TCP and UDP (an
/// opentracker serves both on one port) and records it as used.
fn free_port() -> Result<u16> {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    let mut rng = XorShift::new(nanos ^ u64::from(std::process::id()));
    let span = u64::from(PORT_RANGE.end - PORT_RANGE.start);
    for _ in 0..200 {
        let port = PORT_RANGE.start + (rng.next_u64() % span) as u16;
        let mut used = USED_PORTS.lock().unwrap_or_else(|e| e.into_inner());
        if used.contains(&port) {
            continue;
        }
        let free = TcpListener::bind((LOOPBACK, port)).is_ok()
            && UdpSocket::bind((LOOPBACK, port)).is_ok();
        if free {
            used.insert(port);
            return Ok(port);
        }
    }
    bail!("no free port on 127.0.0.1 in {PORT_RANGE:?}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_are_distinct_and_bindable() {
        let ports: BTreeSet<u16> = (0..20).map(|_| free_port().unwrap()).collect();
        assert_eq!(ports.len(), 20);
        for port in ports {
            assert!(PORT_RANGE.contains(&port));
            TcpListener::bind((LOOPBACK, port)).unwrap();
        }
    }

    #[test]
    fn sandbox_is_removed_on_drop_and_logs_spawned_output() {
        let sandbox = Sandbox::new("selftest").unwrap();
        let root = sandbox.path().to_path_buf();
        let mut cmd = Command::new("sh");
        cmd.arg("-c").arg("echo hello-log");
        let mut proc = sandbox.spawn("echo", &cmd).unwrap();
        proc.wait_success(std::time::Duration::from_secs(10))
            .unwrap();
        crate::deadline::poll_until(std::time::Duration::from_secs(5), "log line", || {
            Ok(sandbox.log_tails(5).contains("| hello-log").then_some(()))
        })
        .unwrap();
        drop(sandbox);
        assert!(!root.exists());
    }
}
