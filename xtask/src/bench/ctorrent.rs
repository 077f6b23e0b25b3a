//! Enhanced CTorrent (dnh3.3.2) as a leecher. It has no option to dial a peer, so it
//! finds the seeder through opentracker, as aria2 does. Done is when it runs its
//! completion command (`-X`, once every piece is hash-checked), which creates a marker
//! file. Its exit comes much later: 16 MiB took 14.1 s to exit, where 64 MiB completed
//! in 0.3 s. It listens on [`LISTEN_IP`] rather than 127.0.0.1: with both ends on
//! 127.0.0.1 it took none of the tracker's peers ("new peers=0") and never connected.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};

use crate::deadline::Deadline;
use crate::process::Proc;
use crate::sandbox::Sandbox;

/// How often [`Ctorrent::wait_complete`] looks for the marker.
const POLL: Duration = Duration::from_millis(10);

/// The program.
pub const PROGRAM: &str = "ctorrent";

/// The loopback address it listens on.
pub const LISTEN_IP: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 9);

/// A running ctorrent downloading one single-file torrent; killed on drop.
pub struct Ctorrent {
    proc: Proc,
    marker: PathBuf,
}

impl Ctorrent {
    /// Starts downloading `torrent` (which announces to the bench's tracker) into
    /// `out/<file_name>`; its bitfield file goes to `<sandbox>/<name>.bf` and its
    /// completion marker to `<sandbox>/<name>.done`.
    pub fn download(
        sandbox: &Sandbox,
        name: &str,
        torrent: &Path,
        out: &Path,
        file_name: &std::ffi::OsStr,
    ) -> Result<Self> {
        // It creates the file, not the folder.
        std::fs::create_dir_all(out)?;
        let port = sandbox.addr()?.port();
        let marker = sandbox.path().join(format!("{name}.done"));
        let mut cmd = Command::new(PROGRAM);
        cmd.args(["-e", "0"])
            .arg("-X")
            .arg(format!("touch '{}'", marker.display()))
            .arg("-i")
            .arg(LISTEN_IP.to_string())
            .arg("-p")
            .arg(port.to_string())
            .arg("-s")
            .arg(out.join(file_name))
            .arg("-b")
            .arg(sandbox.path().join(format!("{name}.bf")))
            .arg(torrent);
        let proc = sandbox.spawn(name, &cmd)?;
        Ok(Ctorrent { proc, marker })
    }

    /// Its process group id (see [`Proc::pid`]).
    pub fn pid(&self) -> u32 {
        self.proc.pid()
    }

    /// Waits at most `timeout` until the download is complete and verified; returns
    /// when it saw that.
    pub fn wait_complete(&mut self, timeout: Duration) -> Result<Instant> {
        let deadline = Deadline::after(timeout);
        loop {
            if self.marker.exists() {
                return Ok(Instant::now());
            }
            if let Some(status) = self.proc.try_exit()? {
                bail!(
                    "{} exited ({status}) before completing; last output:\n{}",
                    self.proc.name(),
                    self.proc.tail()
                );
            }
            if deadline.expired() {
                bail!(
                    "timed out after {timeout:?} waiting for {}",
                    self.proc.name()
                );
            }
            std::thread::sleep(POLL);
        }
    }
}
