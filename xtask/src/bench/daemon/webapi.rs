//! A client of the qBittorrent Web API v2, as bt daemon and qbittorrent-nox serve it:
//! the session cookie (qBittorrent keeps `sync/maindata` history per session, so the
//! cookie must come back), `torrents/add` with many `.torrent` parts in one multipart
//! request, `sync/maindata` followed through its `rid` deltas, and `app/shutdown`.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde_json::Value;

use super::webclient::{exchange, Reply};
use super::Tally;

/// The multipart boundary (never occurs in a bencoded torrent of ours: no `-` runs).
const BOUNDARY: &str = "----bt-bench-daemon-boundary-7c1f";

/// One client of one daemon.
pub struct WebApi {
    addr: SocketAddr,
    cookie: Option<String>,
    rid: u64,
    states: HashMap<String, String>,
}

impl WebApi {
    /// A client of the API on `addr`.
    pub fn new(addr: SocketAddr) -> Self {
        WebApi {
            addr,
            cookie: None,
            rid: 0,
            states: HashMap::new(),
        }
    }

    fn call(
        &mut self,
        method: &str,
        path: &str,
        content_type: Option<&str>,
        body: &[u8],
    ) -> Result<Reply> {
        let cookie = self.cookie.as_ref().map(|c| format!("SID={c}"));
        let mut headers = Vec::new();
        if let Some(cookie) = &cookie {
            headers.push(("Cookie", cookie.as_str()));
        }
        if let Some(ct) = content_type {
            headers.push(("Content-Type", ct));
        }
        let reply = exchange(
            self.addr,
            method,
            &format!("/api/v2/{path}"),
            &headers,
            body,
        )?;
        if let Some(sid) = reply
            .header("set-cookie")
            .and_then(|c| c.strip_prefix("SID="))
            .and_then(|c| c.split(';').next())
        {
            self.cookie = Some(sid.to_owned());
        }
        Ok(reply)
    }

    fn ok(&mut self, method: &str, path: &str, ct: Option<&str>, body: &[u8]) -> Result<Reply> {
        let reply = self.call(method, path, ct, body)?;
        if reply.status != 200 {
            bail!("{path}: HTTP {}: {}", reply.status, reply.text().trim());
        }
        Ok(reply)
    }

    /// Logs in (both accept any credentials from loopback) and returns `app/version`.
    pub fn login(&mut self) -> Result<String> {
        self.ok(
            "POST",
            "auth/login",
            Some("application/x-www-form-urlencoded"),
            b"username=admin&password=adminadmin",
        )?;
        Ok(self
            .ok("GET", "app/version", None, b"")?
            .text()
            .trim()
            .to_owned())
    }

    /// Adds `torrents` in one `torrents/add` request with the form `fields`.
    pub fn add(&mut self, torrents: &[&[u8]], fields: &[(&str, &str)]) -> Result<()> {
        let body = multipart(torrents, fields);
        let ct = format!("multipart/form-data; boundary={BOUNDARY}");
        let reply = self.ok("POST", "torrents/add", Some(&ct), &body)?;
        let text = reply.text();
        if text.trim() != "Ok." {
            bail!("torrents/add answered {:?}", text.trim());
        }
        Ok(())
    }

    /// Asks the daemon to exit (`app/shutdown`).
    pub fn shutdown(&mut self) -> Result<()> {
        self.ok("POST", "app/shutdown", None, b"").map(drop)
    }

    /// Follows `sync/maindata` from the last `rid` and counts the torrents' states.
    pub fn tally(&mut self) -> Result<Tally> {
        let reply = self.ok("GET", &format!("sync/maindata?rid={}", self.rid), None, b"")?;
        let data: Value = serde_json::from_slice(&reply.body).context("sync/maindata JSON")?;
        if data["full_update"].as_bool() == Some(true) {
            self.states.clear();
        }
        self.rid = data["rid"].as_u64().context("sync/maindata without rid")?;
        if let Some(torrents) = data["torrents"].as_object() {
            for (hash, fields) in torrents {
                if let Some(state) = fields["state"].as_str() {
                    self.states.insert(hash.clone(), state.to_owned());
                } else {
                    self.states.entry(hash.clone()).or_default();
                }
            }
        }
        if let Some(removed) = data["torrents_removed"].as_array() {
            for hash in removed.iter().filter_map(Value::as_str) {
                self.states.remove(hash);
            }
        }
        Ok(Tally::of(self.states.values().map(|s| {
            let kind = match s.as_str() {
                "uploading" | "stalledUP" => Some(true),
                "error" | "missingFiles" => None,
                _ => Some(false),
            };
            (s.as_str(), kind)
        })))
    }

    /// One `sync/maindata` request with `rid` (0: the full state): how long it took, the
    /// body's length, and the `rid` it returned.
    pub fn maindata(&mut self, rid: u64) -> Result<(Duration, usize, u64)> {
        let started = Instant::now();
        let reply = self.ok("GET", &format!("sync/maindata?rid={rid}"), None, b"")?;
        let took = started.elapsed();
        let data: Value = serde_json::from_slice(&reply.body).context("sync/maindata JSON")?;
        let new_rid = data["rid"].as_u64().context("sync/maindata without rid")?;
        Ok((took, reply.body.len(), new_rid))
    }
}

/// A `multipart/form-data` body: the `fields`, then every torrent as a `torrents` file.
fn multipart(torrents: &[&[u8]], fields: &[(&str, &str)]) -> Vec<u8> {
    let mut body = Vec::new();
    for (name, value) in fields {
        body.extend_from_slice(
            format!(
                "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
            )
            .as_bytes(),
        );
    }
    for (i, torrent) in torrents.iter().enumerate() {
        body.extend_from_slice(
            format!(
                "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"torrents\"; \
                 filename=\"{i}.torrent\"\r\nContent-Type: application/x-bittorrent\r\n\r\n"
            )
            .as_bytes(),
        );
        body.extend_from_slice(torrent);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{BOUNDARY}--\r\n").as_bytes());
    body
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multipart_holds_fields_then_files() {
        let body = multipart(&[b"d4:infodee", b"xyz"], &[("savepath", "/d")]);
        let text = String::from_utf8(body).unwrap();
        assert!(text.starts_with(&format!(
            "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"savepath\"\r\n\r\n/d\r\n"
        )));
        assert_eq!(text.matches("name=\"torrents\"").count(), 2);
        assert!(text.contains("filename=\"1.torrent\""));
        assert!(text.contains("\r\n\r\nd4:infodee\r\n"));
        assert!(text.ends_with(&format!("--{BOUNDARY}--\r\n")));
    }
}
