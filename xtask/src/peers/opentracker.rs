//! opentracker (Debian's, built in whitelist mode): [`Opentracker`] serves HTTP and UDP on
//! one 127.0.0.1 port for the info-hashes it is started with, and [`Opentracker::announce`]
//! speaks to it over HTTP. It records a peer at the source address of its announce (so a
//! harness announce made on behalf of a client on 127.0.0.1 is as good as the client's
//! own) and keeps peers ~30 minutes: start a fresh one per scenario.

use std::fs;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::os::unix::fs::PermissionsExt;
use std::process::Command;
use std::time::Duration;

use anyhow::{bail, Context, Result};

use crate::bdecode;
use crate::http;
use crate::peers::wait_listening;
use crate::process::Proc;
use crate::sandbox::Sandbox;

/// A running opentracker; killed on drop.
pub struct Opentracker {
    proc: Proc,
    addr: SocketAddr,
}

/// One HTTP announce.
#[derive(Clone, Debug)]
pub struct Announce {
    /// The torrent's info-hash.
    pub info_hash: [u8; 20],
    /// Our peer id.
    pub peer_id: [u8; 20],
    /// The port peers should dial (the address is the announce's source, 127.0.0.1).
    pub port: u16,
    /// Bytes still wanted: 0 announces a seed.
    pub left: u64,
}

/// What the tracker answered.
#[derive(Clone, Debug, Default)]
pub struct AnnounceReply {
    /// `failure reason`, if the tracker refused.
    pub failure: Option<String>,
    /// Re-announce interval in seconds.
    pub interval: Option<i64>,
    /// The peers handed out (compact IPv4 form).
    pub peers: Vec<SocketAddrV4>,
}

/// The announce URL of a tracker on `addr`: `http://ADDR/announce` (libtorrent's SSRF
/// mitigation accepts a loopback tracker only with that path).
pub fn announce_url(addr: SocketAddr) -> String {
    format!("http://{addr}/announce")
}

impl Opentracker {
    /// Starts opentracker on `addr` (from [`Sandbox::addr`], taken before the torrent is
    /// made so its announce URL can name it), answering only `whitelist` (hex
    /// info-hashes), and waits until it listens.
    pub fn start(
        sandbox: &Sandbox,
        name: &str,
        addr: SocketAddr,
        whitelist: &[&str],
    ) -> Result<Self> {
        // It chroots into this dir and drops to `nobody`: the dir must be world-readable.
        let dir = sandbox.mkdir(&format!("{name}-root"))?;
        let mut list = whitelist.join("\n");
        list.push('\n');
        fs::write(dir.join("whitelist.txt"), list)?;
        fs::write(dir.join("ot.conf"), "access.whitelist whitelist.txt\n")?;
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o755))?;
        for file in ["whitelist.txt", "ot.conf"] {
            fs::set_permissions(dir.join(file), fs::Permissions::from_mode(0o644))?;
        }
        let port = addr.port().to_string();
        let mut cmd = Command::new("opentracker");
        cmd.args(["-i", "127.0.0.1", "-p", &port, "-P", &port])
            .arg("-d")
            .arg(&dir)
            .arg("-f")
            .arg(dir.join("ot.conf"));
        let proc = sandbox.spawn(name, &cmd)?;
        let tracker = Opentracker { proc, addr };
        wait_listening(addr, Duration::from_secs(20))
            .with_context(|| format!("{name} never listened on {addr}"))?;
        Ok(tracker)
    }

    /// Sends one HTTP announce and parses the reply.
    pub fn announce(&self, req: &Announce) -> Result<AnnounceReply> {
        let query = format!(
            "/announce?info_hash={}&peer_id={}&port={}&uploaded=0&downloaded=0&left={}&compact=1",
            http::percent_encode(&req.info_hash),
            http::percent_encode(&req.peer_id),
            req.port,
            req.left
        );
        let response = http::get(self.addr, &query)
            .with_context(|| format!("announce to {} failed", self.proc.name()))?;
        if response.status != 200 {
            bail!("tracker answered HTTP {}", response.status);
        }
        parse_reply(&response.body).with_context(|| {
            format!(
                "bad announce reply {:?}",
                String::from_utf8_lossy(&response.body)
            )
        })
    }
}

/// Parses a tracker's bencoded announce reply.
fn parse_reply(body: &[u8]) -> Result<AnnounceReply> {
    let (value, rest) = bdecode::value(body)?;
    if !rest.is_empty() {
        bail!("{} bytes after the reply", rest.len());
    }
    let bdecode::Value::Dict(entries) = value else {
        bail!("reply is not a dictionary");
    };
    let mut reply = AnnounceReply::default();
    for (key, value) in entries {
        match (key.as_slice(), value) {
            (b"failure reason", bdecode::Value::Bytes(text)) => {
                reply.failure = Some(String::from_utf8_lossy(&text).into_owned());
            }
            (b"interval", bdecode::Value::Int(n)) => reply.interval = Some(n),
            (b"peers", bdecode::Value::Bytes(compact)) => {
                if compact.len() % 6 != 0 {
                    bail!("compact peers of {} bytes", compact.len());
                }
                reply.peers = compact
                    .chunks_exact(6)
                    .map(|c| {
                        let ip = Ipv4Addr::new(c[0], c[1], c[2], c[3]);
                        SocketAddrV4::new(ip, u16::from_be_bytes([c[4], c[5]]))
                    })
                    .collect();
            }
            _ => {}
        }
    }
    Ok(reply)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reply_with_compact_peers() {
        let body = b"d8:completei1e10:incompletei0e8:intervali1800e5:peers12:\x7f\x00\x00\x01\x1a\xe1\x7f\x00\x00\x02\x00\x50e";
        let reply = parse_reply(body).unwrap();
        assert_eq!(reply.interval, Some(1800));
        assert_eq!(reply.failure, None);
        assert_eq!(
            reply.peers,
            vec![
                "127.0.0.1:6881".parse::<SocketAddrV4>().unwrap(),
                "127.0.0.2:80".parse().unwrap()
            ]
        );
    }

    #[test]
    fn failure_reason_is_reported() {
        let reply =
            parse_reply(b"d14:failure reason36:Requested download is not authorizede").unwrap();
        assert_eq!(
            reply.failure.as_deref(),
            Some("Requested download is not authorized")
        );
    }

    #[test]
    fn malformed_replies_are_errors() {
        for bad in [
            &b"d5:peers7:1234567e"[..],
            b"d8:interval",
            b"le",
            b"d3:abce",
            b"i5ex",
            b"99:ab",
        ] {
            assert!(
                parse_reply(bad).is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }
}
