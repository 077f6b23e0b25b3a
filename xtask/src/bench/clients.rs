//! The clients compared, the seeder -> leecher [`Pair`]s, long-lived [`Seeder`]s, and
//! [`transfer`]: one measured download, verified byte for byte afterwards.
//!
//! Each leecher is started fresh into an empty folder and timed from the moment it is
//! spawned (so its start-up counts) until it is complete: `bt download` and aria2 exit
//! on their own once every piece is verified; ctorrent runs its completion command;
//! libtorrent reports `is_seeding` (every piece hash-checked) on a status line every
//! 50 ms; Transmission is polled through `transmission-remote`, qBittorrent through its
//! Web API, every 100 ms. CPU and memory come from [`meter`].

use std::fs;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, ensure, Context, Result};
use serde::Serialize;

use super::ctorrent::{self, Ctorrent};
use super::fixture::Fixture;
use super::meter::{self, Sampler};
use super::qbittorrent::{self, Qbittorrent};
use crate::deadline::poll_until;
use crate::layout;
use crate::peers::aria2::Aria2;
use crate::peers::bt::{Bt, BtSeed};
use crate::peers::libtorrent::{self, LtSession, SessionOptions};
use crate::peers::opentracker::{Announce, Opentracker};
use crate::peers::transmission::{self, TransmissionDaemon};
use crate::process::{self, MAX_LIFETIME};
use crate::sandbox::Sandbox;

/// A BitTorrent client in the benchmark.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Client {
    /// Our `bt` (`bt download`, `bt seed`).
    Bt,
    /// libtorrent-rasterbar through python3-libtorrent.
    Libtorrent,
    /// aria2c (finds the seeder through opentracker).
    Aria2,
    /// transmission-daemon (the seeder dials it).
    Transmission,
    /// qbittorrent-nox (the seeder dials it).
    Qbittorrent,
    /// Enhanced CTorrent (finds the seeder through opentracker).
    Ctorrent,
}

impl Client {
    /// Its short name.
    pub fn name(self) -> &'static str {
        match self {
            Client::Bt => "bt",
            Client::Libtorrent => "libtorrent",
            Client::Aria2 => "aria2",
            Client::Transmission => "transmission",
            Client::Qbittorrent => "qbittorrent",
            Client::Ctorrent => "ctorrent",
        }
    }
}

/// One seeder -> leecher combination.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pair {
    /// Who serves the payload.
    pub seeder: Client,
    /// Who downloads it.
    pub leecher: Client,
}

impl Pair {
    /// `seeder->leecher`.
    pub fn name(&self) -> String {
        format!("{}->{}", self.seeder.name(), self.leecher.name())
    }
}

/// Every pair, in table order: every leecher from the libtorrent seeder (the download
/// side), then `bt seed` serving libtorrent and bt (the upload side).
pub const PAIRS: &[Pair] = &[
    Pair {
        seeder: Client::Libtorrent,
        leecher: Client::Bt,
    },
    Pair {
        seeder: Client::Libtorrent,
        leecher: Client::Libtorrent,
    },
    Pair {
        seeder: Client::Libtorrent,
        leecher: Client::Aria2,
    },
    Pair {
        seeder: Client::Libtorrent,
        leecher: Client::Transmission,
    },
    Pair {
        seeder: Client::Libtorrent,
        leecher: Client::Qbittorrent,
    },
    Pair {
        seeder: Client::Libtorrent,
        leecher: Client::Ctorrent,
    },
    Pair {
        seeder: Client::Bt,
        leecher: Client::Libtorrent,
    },
    Pair {
        seeder: Client::Bt,
        leecher: Client::Bt,
    },
];

/// Why `pair` is left out of a payload with `piece_len`-byte pieces, if it is.
pub fn unsuited(pair: Pair, piece_len: u64) -> Option<String> {
    (pair.leecher == Client::Ctorrent && piece_len < 256 * 1024).then(|| {
        "not run: when tried on 2026-11-24, ctorrent fetched 16 KiB pieces at 0.36 MiB/s \
         (16 MiB in 46 s), so a 256 MiB round would take about 12 minutes"
            .to_owned()
    })
}

/// Why `pair` cannot run here, if it cannot; `bt_problem` says why `bt` is unusable
/// (e.g. its build failed).
pub fn unavailable(pair: Pair, bt: &Bt, bt_problem: Option<&str>) -> Option<String> {
    let program = |name: &str| {
        layout::which(name)
            .is_none()
            .then(|| format!("{name} not installed"))
    };
    let bt_sub = |sub: &str| match bt_problem {
        Some(problem) => Some(format!("bt not available: {problem}")),
        None => (!bt.supports(sub))
            .then(|| format!("`bt {sub}` not available in {}", bt.path().display())),
    };
    let seeder = match pair.seeder {
        Client::Libtorrent => {
            (!libtorrent::is_installed()).then(|| "python3-libtorrent not installed".to_owned())
        }
        Client::Bt => bt_sub("seed"),
        other => Some(format!("{} is not used as a seeder", other.name())),
    };
    let leecher = || match pair.leecher {
        Client::Bt => bt_sub("download"),
        Client::Libtorrent => {
            (!libtorrent::is_installed()).then(|| "python3-libtorrent not installed".to_owned())
        }
        Client::Aria2 => program("aria2c").or_else(|| program("opentracker")),
        Client::Transmission | Client::Qbittorrent if pair.seeder != Client::Libtorrent => {
            Some("only the libtorrent seeder can dial it".to_owned())
        }
        Client::Transmission => {
            transmission::missing_program().map(|p| format!("{p} not installed"))
        }
        Client::Qbittorrent => program(qbittorrent::PROGRAM),
        Client::Ctorrent => program(ctorrent::PROGRAM).or_else(|| program("opentracker")),
    };
    seeder.or_else(leecher)
}

/// What every transfer of a bench run shares.
pub struct Env<'a> {
    /// Temp dir, ports and logs.
    pub sandbox: &'a Sandbox,
    /// The `bt` binary.
    pub bt: &'a Bt,
    /// The tracker aria2 finds the seeder through, if aria2 runs.
    pub tracker: Option<&'a Opentracker>,
    /// `IP:PORT` lines the libtorrent seeder dials (Transmission's address).
    pub peers_file: PathBuf,
}

/// Time a seeder gets to check its data: generous, the machine may be busy.
pub fn check_timeout(len: u64) -> Duration {
    Duration::from_secs(120 + len / (20 << 20))
}

/// Time one transfer gets: 60 s (Transmission idles ~11 s first) plus 4 MiB/s, at most
/// what leaves a seeder room under the harness's hard process lifetime.
pub fn transfer_timeout(len: u64) -> Duration {
    Duration::from_secs((60 + len / (4 << 20)).min(MAX_LIFETIME.as_secs() / 2))
}

/// A running seeder.
pub struct Seeder {
    /// Which client it is.
    pub kind: Client,
    running: Running,
    addr: SocketAddr,
    started: Instant,
}

enum Running {
    Libtorrent(LtSession),
    Bt(BtSeed),
}

impl Seeder {
    /// Starts `kind` seeding `fixture` and waits until it serves.
    pub fn start(env: &Env, fixture: &Fixture, kind: Client, name: &str) -> Result<Self> {
        let started = Instant::now();
        let (running, addr) = match kind {
            Client::Libtorrent => {
                let opts = SessionOptions {
                    peers_file: Some(env.peers_file.clone()),
                    ..SessionOptions::default()
                };
                let mut session = LtSession::seed(
                    env.sandbox,
                    name,
                    &fixture.plain_torrent,
                    &fixture.data_dir,
                    &opts,
                )?;
                session.wait_seeding(check_timeout(fixture.len))?;
                let addr = session.addr();
                (Running::Libtorrent(session), addr)
            }
            Client::Bt => {
                let listen = env.sandbox.addr()?;
                let seed = env.bt.seed(
                    env.sandbox,
                    name,
                    &fixture.plain_torrent,
                    &fixture.data_dir,
                    listen,
                    &[],
                )?;
                wait_bt_seeding(env.sandbox, name, check_timeout(fixture.len))?;
                (Running::Bt(seed), listen)
            }
            other => bail!("{} is not used as a seeder", other.name()),
        };
        Ok(Seeder {
            kind,
            running,
            addr,
            started,
        })
    }

    /// Where leechers dial it.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Its process group id.
    pub fn pid(&self) -> u32 {
        match &self.running {
            Running::Libtorrent(session) => session.pid(),
            Running::Bt(seed) => seed.pid(),
        }
    }

    /// True if it has exited, or is so old that the harness's hard lifetime could end
    /// it during a transfer of up to `timeout`.
    pub fn needs_restart(&self, timeout: Duration) -> bool {
        let margin = Duration::from_secs(30);
        meter::snapshot(self.pid()).root_exited
            || self.started.elapsed() + timeout + margin > MAX_LIFETIME
    }
}

/// Waits until `bt seed` (logging as `name`) has checked its data: it listens from the
/// start, but serves only once its first status line says `seeding`.
fn wait_bt_seeding(sandbox: &Sandbox, name: &str, timeout: Duration) -> Result<()> {
    let log = sandbox.path().join("logs").join(format!("{name}.log"));
    poll_until(timeout, &format!("{name} to report `seeding`"), || {
        let text = fs::read_to_string(&log).unwrap_or_default();
        Ok(text.contains(": seeding ").then_some(()))
    })
}

/// The figures of one transfer.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct Sample {
    /// Seconds from starting the leecher until it was complete.
    pub wall_secs: f64,
    /// User+system CPU seconds of the leecher's process tree.
    pub cpu_secs: f64,
    /// The largest peak resident set (VmHWM) of a process of the leecher's tree, bytes.
    pub peak_rss_bytes: u64,
    /// CPU seconds the seeder's process tree used meanwhile.
    pub seeder_cpu_secs: f64,
}

/// Downloads `fixture` from `seeder` with a fresh `leecher` into an empty folder, checks
/// the copy byte for byte, removes it and flushes the page cache to disk, so the next
/// transfer starts alike. `tag` names the run's logs and folders.
pub fn transfer(
    env: &Env,
    fixture: &Fixture,
    seeder: &Seeder,
    leecher: Client,
    tag: &str,
) -> Result<Sample> {
    let out = env.sandbox.mkdir(&format!("{tag}-out"))?;
    let result = measure(env, fixture, seeder, leecher, tag, &out)
        .and_then(|sample| fixture.check_copy(&out).map(|()| sample));
    let _ = fs::remove_dir_all(&out);
    let _ = fs::remove_dir_all(env.sandbox.path().join(format!("{tag}-config")));
    let _ = process::run("sync", &Command::new("sync"), Duration::from_secs(120));
    result
}

/// Runs the leecher until complete and reads the meters.
fn measure(
    env: &Env,
    fixture: &Fixture,
    seeder: &Seeder,
    leecher: Client,
    tag: &str,
    out: &Path,
) -> Result<Sample> {
    let timeout = transfer_timeout(fixture.len);
    let seeder_before = meter::snapshot(seeder.pid()).cpu_secs;
    let started = Instant::now();
    let (finished, usage) = match leecher {
        Client::Bt => {
            let listen = env.sandbox.addr()?;
            let peers = [seeder.addr()];
            let mut proc = env.bt.download(
                env.sandbox,
                tag,
                &fixture.plain_torrent,
                out,
                listen,
                &peers,
            )?;
            let sampler = Sampler::start(proc.pid());
            let finished = meter::wait_exit(proc.pid(), timeout, tag)
                .map_err(|e| anyhow!("{e:#}; last output:\n{}", proc.tail()))?;
            let usage = sampler.finish();
            proc.wait_success(Duration::from_secs(10))?;
            (finished, usage)
        }
        Client::Libtorrent => {
            let opts = SessionOptions {
                peers: vec![seeder.addr()],
                status_interval: Some(0.05),
                ..SessionOptions::default()
            };
            let mut session =
                LtSession::download(env.sandbox, tag, &fixture.plain_torrent, out, &opts)?;
            let sampler = Sampler::start(session.pid());
            session.wait_seeding(timeout)?;
            (Instant::now(), sampler.finish())
        }
        Client::Aria2 => {
            let tracker = env
                .tracker
                .context("aria2 needs the tracker, which is not running")?;
            announce_seeder(tracker, fixture, seeder)?;
            let mut aria2 = Aria2::download(env.sandbox, tag, &fixture.tracker_torrent, out)?;
            let sampler = Sampler::start(aria2.pid());
            let finished = meter::wait_exit(aria2.pid(), timeout, tag)?;
            let usage = sampler.finish();
            aria2.wait_done(Duration::from_secs(10))?;
            (finished, usage)
        }
        Client::Ctorrent => {
            let tracker = env
                .tracker
                .context("ctorrent needs the tracker, which is not running")?;
            announce_seeder(tracker, fixture, seeder)?;
            let name = fixture.content.file_name().context("payload has a name")?;
            let mut ct = Ctorrent::download(env.sandbox, tag, &fixture.tracker_torrent, out, name)?;
            let sampler = Sampler::start(ct.pid());
            let finished = ct.wait_complete(timeout)?;
            (finished, sampler.finish())
        }
        Client::Transmission => {
            ensure!(
                seeder.kind == Client::Libtorrent,
                "only the libtorrent seeder can dial Transmission"
            );
            // Plaintext, as with every other pair (Transmission prefers RC4 otherwise).
            let mut daemon = TransmissionDaemon::start_with_encryption(env.sandbox, tag, out, 0)?;
            let sampler = Sampler::start(daemon.pid());
            daemon.add(&fixture.plain_torrent, out)?;
            write_peers_file(&env.peers_file, &[daemon.peer_addr()])?;
            let waited = daemon.wait_complete(timeout);
            write_peers_file(&env.peers_file, &[])?;
            waited?;
            (Instant::now(), sampler.finish())
        }
        Client::Qbittorrent => {
            ensure!(
                seeder.kind == Client::Libtorrent,
                "only the libtorrent seeder can dial qBittorrent"
            );
            let mut qbt = Qbittorrent::download(env.sandbox, tag, &fixture.plain_torrent, out)?;
            let sampler = Sampler::start(qbt.pid());
            write_peers_file(&env.peers_file, &[qbt.peer_addr()])?;
            let waited = qbt.wait_complete(timeout);
            write_peers_file(&env.peers_file, &[])?;
            waited?;
            (Instant::now(), sampler.finish())
        }
    };
    let seeder_after = meter::snapshot(seeder.pid()).cpu_secs;
    Ok(Sample {
        wall_secs: (finished - started).as_secs_f64(),
        cpu_secs: usage.cpu_secs,
        peak_rss_bytes: usage.peak_rss,
        seeder_cpu_secs: (seeder_after - seeder_before).max(0.0),
    })
}

/// Announces the seeder to the tracker (it records the announce's source, 127.0.0.1), so
/// aria2 is handed its address; a fresh announce before each aria2 run.
fn announce_seeder(tracker: &Opentracker, fixture: &Fixture, seeder: &Seeder) -> Result<()> {
    let info_hash: [u8; 20] = hex::decode(&fixture.info_hash)?
        .try_into()
        .map_err(|_| anyhow!("info-hash is not 20 bytes"))?;
    let reply = tracker.announce(&Announce {
        info_hash,
        peer_id: *b"-XB0001-bench-seeder",
        port: seeder.addr().port(),
        left: 0,
    })?;
    if let Some(failure) = reply.failure {
        bail!("tracker refused the seeder's announce: {failure}");
    }
    Ok(())
}

/// Replaces the libtorrent seeder's dial list (it re-reads the file every second).
pub fn write_peers_file(path: &Path, peers: &[SocketAddr]) -> Result<()> {
    let text: String = peers.iter().map(|p| format!("{p}\n")).collect();
    let tmp = path.with_extension("tmp");
    fs::write(&tmp, text)?;
    fs::rename(&tmp, path).with_context(|| format!("cannot write {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pair_names_are_unique() {
        let names: std::collections::BTreeSet<String> = PAIRS.iter().map(Pair::name).collect();
        assert_eq!(names.len(), PAIRS.len());
        assert!(names.contains("libtorrent->bt"));
    }

    #[test]
    fn timeouts_grow_with_size_and_stay_under_the_lifetime() {
        assert!(transfer_timeout(64 << 20) < transfer_timeout(1 << 30));
        assert!(transfer_timeout(1 << 40) <= MAX_LIFETIME / 2);
    }

    #[test]
    fn peers_file_is_replaced_whole() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("peers.txt");
        let a: SocketAddr = "127.0.0.1:20001".parse().unwrap();
        write_peers_file(&path, &[a, "127.0.0.1:20002".parse().unwrap()]).unwrap();
        assert_eq!(
            fs::read_to_string(&path).unwrap(),
            "127.0.0.1:20001\n127.0.0.1:20002\n"
        );
        write_peers_file(&path, &[]).unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), "");
    }
}
