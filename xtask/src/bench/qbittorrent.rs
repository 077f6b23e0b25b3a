//! qBittorrent-nox 4.5 (libtorrent-rasterbar underneath, with qBittorrent's own
//! settings) as a leecher: a private profile whose `qBittorrent.conf` binds it to
//! 127.0.0.1 with DHT, LSD, PeX, UPnP, uTP and encryption off (its default RC4 costs
//! both sides several CPU seconds per GiB, which no other pair pays); the torrent is given on its command
//! line and completion is read from its Web API (`/api/v2/torrents/info`, no login from
//! localhost). The seeder dials [`Qbittorrent::peer_addr`], as for Transmission.

use std::fs;
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

/// The program.
pub const PROGRAM: &str = "qbittorrent-nox";

/// A running qbittorrent-nox downloading one torrent; killed on drop.
pub struct Qbittorrent {
    proc: Proc,
    webui: SocketAddr,
    peer: SocketAddr,
}

impl Qbittorrent {
    /// Starts downloading `torrent` into `out` with a fresh profile in
    /// `<sandbox>/<name>-config`, and waits for its Web API.
    pub fn download(sandbox: &Sandbox, name: &str, torrent: &Path, out: &Path) -> Result<Self> {
        let webui = sandbox.addr()?;
        let peer = sandbox.addr()?;
        let profile = sandbox.mkdir(&format!("{name}-config"))?;
        let config_dir = profile.join("qBittorrent").join("config");
        fs::create_dir_all(&config_dir)?;
        fs::write(
            config_dir.join("qBittorrent.conf"),
            config(peer, webui, out),
        )?;
        let mut cmd = Command::new(PROGRAM);
        cmd.arg(format!("--profile={}", profile.display()))
            .arg(format!("--save-path={}", out.display()))
            .arg(torrent);
        let proc = sandbox.spawn(name, &cmd)?;
        let qbt = Qbittorrent { proc, webui, peer };
        wait_listening(webui, Duration::from_secs(30))
            .with_context(|| format!("{name} Web API never came up"))?;
        Ok(qbt)
    }

    /// Where it accepts peer connections.
    pub fn peer_addr(&self) -> SocketAddr {
        self.peer
    }

    /// Its process group id.
    pub fn pid(&self) -> u32 {
        self.proc.pid()
    }

    /// Waits at most `timeout` until its torrent has every piece verified (polled every
    /// 100 ms).
    pub fn wait_complete(&mut self, timeout: Duration) -> Result<()> {
        let name = self.proc.name().to_owned();
        let mut last = String::new();
        let waited = poll_until(timeout, &format!("{name} to complete"), || {
            if let Some(status) = self.proc.try_exit()? {
                bail!(
                    "{name} exited ({status}); last output:\n{}",
                    self.proc.tail()
                );
            }
            let response = http::get(self.webui, "/api/v2/torrents/info")?;
            let torrents: serde_json::Value = serde_json::from_slice(&response.body)
                .with_context(|| format!("bad Web API reply ({})", response.status))?;
            let torrent = &torrents[0];
            last = format!(
                "state {} progress {}",
                torrent["state"], torrent["progress"]
            );
            let done = torrent["progress"].as_f64() == Some(1.0)
                && torrent["state"]
                    .as_str()
                    .is_some_and(|s| s.ends_with("UP") && s != "checkingUP");
            Ok(done.then_some(()))
        });
        waited.with_context(|| format!("last {last}"))
    }
}

/// The `qBittorrent.conf` of a loopback-only leecher.
pub(super) fn config(peer: SocketAddr, webui: SocketAddr, out: &Path) -> String {
    format!(
        "[LegalNotice]\n\
         Accepted=true\n\
         \n\
         [BitTorrent]\n\
         Session\\Port={peer_port}\n\
         Session\\Interface=lo\n\
         Session\\InterfaceName=lo\n\
         Session\\InterfaceAddress=127.0.0.1\n\
         Session\\DHTEnabled=false\n\
         Session\\LSDEnabled=false\n\
         Session\\PeXEnabled=false\n\
         Session\\BTProtocol=TCP\n\
         Session\\QueueingSystemEnabled=false\n\
         Session\\DefaultSavePath={out}\n\
         Session\\AddTorrentPaused=false\n\
         Session\\GlobalMaxRatio=-1\n\
         Session\\Encryption=2\n\
         \n\
         [Preferences]\n\
         Connection\\UPnP=false\n\
         General\\Locale=en\n\
         WebUI\\Enabled=true\n\
         WebUI\\Address=127.0.0.1\n\
         WebUI\\Port={webui_port}\n\
         WebUI\\LocalHostAuth=false\n\
         WebUI\\CSRFProtection=false\n\
         WebUI\\HostHeaderValidation=false\n",
        peer_port = peer.port(),
        webui_port = webui.port(),
        out = out.display(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_binds_loopback_and_turns_discovery_off() {
        let text = config(
            "127.0.0.1:20001".parse().unwrap(),
            "127.0.0.1:20002".parse().unwrap(),
            Path::new("/tmp/out"),
        );
        for line in [
            "Session\\Port=20001",
            "WebUI\\Port=20002",
            "Session\\InterfaceAddress=127.0.0.1",
            "Session\\DHTEnabled=false",
            "Session\\LSDEnabled=false",
            "Session\\PeXEnabled=false",
            "Session\\BTProtocol=TCP",
            "Session\\Encryption=2",
            "Connection\\UPnP=false",
            "WebUI\\Address=127.0.0.1",
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line}:\n{text}");
        }
    }
}
