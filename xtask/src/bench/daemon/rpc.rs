//! A client of Transmission's JSON RPC (`/transmission/rpc`): the
//! `X-Transmission-Session-Id` handshake (a 409 carries the id to send), `torrent-add`
//! with the metainfo in base64, `torrent-get` of every torrent's status, `session-close`.

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};

use super::webclient::exchange;
use super::Tally;

/// The RPC path.
const PATH: &str = "/transmission/rpc";

/// `status` of a seeding torrent (`TR_STATUS_SEED`).
const SEEDING: u64 = 6;

/// The fields Transmission's web client asks for on every refresh (its `stat` set), for
/// the `torrent-get` timings beside `sync/maindata`.
pub const WEB_REFRESH_FIELDS: &[&str] = &[
    "id",
    "error",
    "errorString",
    "eta",
    "isFinished",
    "isStalled",
    "leftUntilDone",
    "metadataPercentComplete",
    "peersConnected",
    "peersGettingFromUs",
    "peersSendingToUs",
    "percentDone",
    "queuePosition",
    "rateDownload",
    "rateUpload",
    "recheckProgress",
    "seedRatioMode",
    "seedRatioLimit",
    "sizeWhenDone",
    "status",
    "trackers",
    "downloadDir",
    "uploadedEver",
    "uploadRatio",
    "webseedsSendingToUs",
];

/// One client of one transmission-daemon.
pub struct Rpc {
    addr: SocketAddr,
    session: String,
}

impl Rpc {
    /// A client of the RPC on `addr`.
    pub fn new(addr: SocketAddr) -> Self {
        Rpc {
            addr,
            session: String::new(),
        }
    }

    /// Calls `method` and returns its reply's `arguments`; a 409 is answered with the
    /// session id it carries, once.
    pub fn call(&mut self, method: &str, arguments: Value) -> Result<Value> {
        Ok(self.call_sized(method, arguments)?.0)
    }

    /// [`Rpc::call`], also returning the reply body's length.
    fn call_sized(&mut self, method: &str, arguments: Value) -> Result<(Value, usize)> {
        let body = serde_json::to_vec(&json!({"method": method, "arguments": arguments}))?;
        for _ in 0..2 {
            let headers = [
                ("X-Transmission-Session-Id", self.session.as_str()),
                ("Content-Type", "application/json"),
            ];
            let reply = exchange(self.addr, "POST", PATH, &headers, &body)?;
            if reply.status == 409 {
                self.session = reply
                    .header("x-transmission-session-id")
                    .context("409 without X-Transmission-Session-Id")?
                    .to_owned();
                continue;
            }
            if reply.status != 200 {
                bail!("{method}: HTTP {}: {}", reply.status, reply.text().trim());
            }
            let mut answer: Value =
                serde_json::from_slice(&reply.body).with_context(|| format!("{method} JSON"))?;
            if answer["result"] != "success" {
                bail!("{method}: {}", answer["result"]);
            }
            return Ok((answer["arguments"].take(), reply.body.len()));
        }
        bail!("{method}: the session id was refused twice")
    }

    /// The daemon's version (`session-get`).
    pub fn version(&mut self) -> Result<String> {
        let args = self.call("session-get", json!({"fields": ["version"]}))?;
        Ok(args["version"].as_str().unwrap_or("?").to_owned())
    }

    /// Adds one torrent from its bytes, its data in `download_dir`.
    pub fn add(&mut self, metainfo: &[u8], download_dir: &Path) -> Result<()> {
        let args = self.call(
            "torrent-add",
            json!({
                "metainfo": base64(metainfo),
                "download-dir": download_dir,
                "paused": false,
            }),
        )?;
        if args.get("torrent-added").is_none() && args.get("torrent-duplicate").is_none() {
            bail!("torrent-add added nothing: {args}");
        }
        Ok(())
    }

    /// Counts the torrents' states.
    pub fn tally(&mut self) -> Result<Tally> {
        let args = self.call("torrent-get", json!({"fields": ["id", "status", "error"]}))?;
        let torrents = args["torrents"]
            .as_array()
            .context("torrent-get without torrents")?;
        Ok(Tally::of(torrents.iter().map(|t| {
            let status = t["status"].as_u64().unwrap_or(u64::MAX);
            let name = match status {
                0 => "stopped",
                1 => "check-wait",
                2 => "checking",
                3 => "download-wait",
                4 => "downloading",
                5 => "seed-wait",
                SEEDING => "seeding",
                _ => "unknown",
            };
            let kind = if t["error"].as_u64().unwrap_or(0) != 0 {
                None
            } else {
                Some(status == SEEDING)
            };
            (name, kind)
        })))
    }

    /// One `torrent-get` of `fields` of every torrent (`recently_active`: only those that
    /// changed lately, as the web client asks after its first refresh): how long it took
    /// and the body's length.
    pub fn get_timed(
        &mut self,
        fields: &[&str],
        recently_active: bool,
    ) -> Result<(Duration, usize)> {
        let mut args = json!({"fields": fields});
        if recently_active {
            args["ids"] = json!("recently-active");
        }
        let started = Instant::now();
        let (_, len) = self.call_sized("torrent-get", args)?;
        Ok((started.elapsed(), len))
    }

    /// Asks the daemon to save its state and exit (`session-close`).
    pub fn close(&mut self) -> Result<()> {
        self.call("session-close", json!({})).map(drop)
    }
}

/// Standard base64 with padding.
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, &b)| n | u32::from(b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[(n >> (18 - 6 * i) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc_4648_vectors() {
        for (input, expected) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(input.as_bytes()), expected);
        }
        assert_eq!(base64(&[0xff, 0xfe, 0x00]), "//4A");
    }
}
