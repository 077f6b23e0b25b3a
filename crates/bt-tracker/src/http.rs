//! HTTP trackers (BEP 3, 23, 7, 48): URL building, response parsing and encoding, and
//! a client on `ureq` (blocking, run on tokio's blocking pool by the async methods).

use std::collections::HashMap;
use std::io::Read;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use bt_bencode::{DecodeOptions, Dict, Value};
use bt_meta::{InfoHash, PeerId};

use crate::announce::{AnnounceRequest, AnnounceResponse, Peer, ScrapeStats};
use crate::compact::{self, Family};
use crate::error::{Error, Result};

/// Percent-encodes raw bytes for a query string: unreserved characters
/// (`A-Z a-z 0-9 - . _ ~`) stay, everything else becomes `%XX`.
pub fn percent_encode(bytes: &[u8], out: &mut String) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &b in bytes {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push('%');
            out.push(HEX[usize::from(b >> 4)] as char);
            out.push(HEX[usize::from(b & 15)] as char);
        }
    }
}

/// Splits `url` into the part before any `#fragment` and the separator to
/// append the first new parameter with (`?`, or `&` when a query exists).
fn query_base(url: &str) -> (&str, char) {
    let base = url.split('#').next().unwrap_or(url);
    let sep = if !base.contains('?') {
        '?'
    } else if base.ends_with('?') || base.ends_with('&') {
        // An empty separator: the URL already ends where a parameter may start.
        '\0'
    } else {
        '&'
    };
    (base, sep)
}

/// Builds the full announce URL: the tracker's URL (an existing query string is
/// kept) plus the BEP 3 parameters, `compact=1` included.
pub fn announce_url(tracker: &str, req: &AnnounceRequest) -> String {
    let (base, sep) = query_base(tracker);
    let mut url = String::with_capacity(base.len() + 256);
    url.push_str(base);
    if sep != '\0' {
        url.push(sep);
    }
    url.push_str("info_hash=");
    percent_encode(req.info_hash.as_bytes(), &mut url);
    url.push_str("&peer_id=");
    percent_encode(req.peer_id.as_bytes(), &mut url);
    url.push_str(&format!(
        "&port={}&uploaded={}&downloaded={}&left={}&compact=1",
        req.port, req.uploaded, req.downloaded, req.left
    ));
    if let Some(event) = req.event.as_http() {
        url.push_str("&event=");
        url.push_str(event);
    }
    if let Some(n) = req.numwant {
        url.push_str(&format!("&numwant={n}"));
    }
    url.push_str(&format!("&key={:08X}", req.key));
    if let Some(ip) = req.ip {
        url.push_str("&ip=");
        percent_encode(ip.to_string().as_bytes(), &mut url);
    }
    if let Some(id) = &req.tracker_id {
        url.push_str("&trackerid=");
        percent_encode(id, &mut url);
    }
    url
}

/// The scrape URL for an announce URL (BEP 48): the last path segment must
/// start with `announce`, which becomes `scrape`; anything else has no scrape.
pub fn scrape_url(announce: &str) -> Option<String> {
    let base = announce.split('#').next().unwrap_or(announce);
    let (path_part, query) = match base.find('?') {
        Some(i) => base.split_at(i),
        None => (base, ""),
    };
    let slash = path_part.rfind('/')?;
    // `http://host` alone has its last slash inside `://`.
    if path_part.get(..slash)?.ends_with('/') || !path_part.contains("://") {
        return None;
    }
    let last = path_part.get(slash + 1..)?;
    let rest = last.strip_prefix("announce")?;
    Some(format!(
        "{}/scrape{}{}",
        path_part.get(..slash)?,
        rest,
        query
    ))
}

/// The full scrape URL asking for `hashes` (none: the tracker's full scrape).
pub fn scrape_url_for(announce: &str, hashes: &[InfoHash]) -> Result<String> {
    let base = scrape_url(announce).ok_or_else(|| Error::ScrapeUnsupported {
        url: announce.to_owned(),
    })?;
    let (base, mut sep) = query_base(&base);
    let mut url = base.to_owned();
    for h in hashes {
        if sep != '\0' {
            url.push(sep);
        }
        sep = '&';
        url.push_str("info_hash=");
        percent_encode(h.as_bytes(), &mut url);
    }
    Ok(url)
}

fn decode_dict(body: &[u8]) -> Result<Dict<'_>> {
    let opts = DecodeOptions {
        max_input_len: usize::MAX,
        ..DecodeOptions::default()
    };
    match opts.decode(body)? {
        Value::Dict(d) => Ok(d),
        _ => Err(Error::BadField { field: "response" }),
    }
}

fn failure(d: &Dict<'_>) -> Option<Error> {
    let reason = d.get(b"failure reason")?;
    let text = match reason.as_bytes() {
        Some(b) => String::from_utf8_lossy(b).into_owned(),
        None => format!("{reason:?}"),
    };
    Some(Error::Failure { reason: text })
}

fn opt_u64(d: &Dict<'_>, key: &[u8], field: &'static str) -> Result<Option<u64>> {
    match d.get(key) {
        None => Ok(None),
        Some(v) => v
            .as_int()
            .and_then(|i| u64::try_from(i).ok())
            .map(Some)
            .ok_or(Error::BadField { field }),
    }
}

fn dict_peer(v: &Value<'_>) -> Option<Peer> {
    let d = v.as_dict()?;
    let ip: IpAddr = d.get(b"ip")?.as_str()?.parse().ok()?;
    let port = u16::try_from(d.get(b"port")?.as_int()?).ok()?;
    let id = d
        .get(b"peer id")
        .and_then(Value::as_bytes)
        .and_then(|b| <[u8; 20]>::try_from(b).ok())
        .map(PeerId);
    Some(Peer {
        addr: SocketAddr::new(ip, port),
        id,
    })
}

/// Parses an announce response body. A `failure reason` becomes
/// [`Error::Failure`]; dictionary peers that are not an IP literal and a port
/// (a host name, a bad port) are skipped.
pub fn parse_announce(body: &[u8]) -> Result<AnnounceResponse> {
    let d = decode_dict(body)?;
    if let Some(e) = failure(&d) {
        return Err(e);
    }
    let interval =
        opt_u64(&d, b"interval", "interval")?.ok_or(Error::BadField { field: "interval" })?;
    let min_interval = opt_u64(&d, b"min interval", "min interval")?;
    let mut peers = Vec::new();
    match d.get(b"peers") {
        None => {}
        Some(Value::Bytes(b)) => peers.extend(
            compact::decode(b, Family::V4)?
                .into_iter()
                .map(Peer::from_addr),
        ),
        Some(Value::List(items)) => peers.extend(items.iter().filter_map(dict_peer)),
        Some(_) => return Err(Error::BadField { field: "peers" }),
    }
    match d.get(b"peers6") {
        None => {}
        Some(Value::Bytes(b)) => peers.extend(
            compact::decode(b, Family::V6)?
                .into_iter()
                .map(Peer::from_addr),
        ),
        Some(_) => return Err(Error::BadField { field: "peers6" }),
    }
    let text = |key: &[u8]| {
        d.get(key)
            .and_then(Value::as_bytes)
            .map(|b| String::from_utf8_lossy(b).into_owned())
    };
    Ok(AnnounceResponse {
        interval: Duration::from_secs(interval),
        min_interval: min_interval.map(Duration::from_secs),
        tracker_id: d
            .get(b"tracker id")
            .and_then(Value::as_bytes)
            .map(<[u8]>::to_vec),
        complete: opt_u64(&d, b"complete", "complete")?,
        incomplete: opt_u64(&d, b"incomplete", "incomplete")?,
        warning: text(b"warning message"),
        peers,
    })
}

fn int(n: u64) -> Value<'static> {
    Value::Int(i64::try_from(n).unwrap_or(i64::MAX))
}

/// Encodes an announce response. Compact: IPv4 peers in `peers`, IPv6 in
/// `peers6`, peer ids dropped. Otherwise a `peers` list of dictionaries.
pub fn encode_announce(resp: &AnnounceResponse, compact: bool) -> Vec<u8> {
    let mut d = Dict::new();
    d.insert(&b"interval"[..], int(resp.interval.as_secs()));
    if let Some(m) = resp.min_interval {
        d.insert(&b"min interval"[..], int(m.as_secs()));
    }
    if let Some(c) = resp.complete {
        d.insert(&b"complete"[..], int(c));
    }
    if let Some(i) = resp.incomplete {
        d.insert(&b"incomplete"[..], int(i));
    }
    if let Some(id) = &resp.tracker_id {
        d.insert(&b"tracker id"[..], Value::bytes(id));
    }
    if let Some(w) = &resp.warning {
        d.insert(&b"warning message"[..], Value::bytes(w.as_bytes()));
    }
    if compact {
        let addrs: Vec<SocketAddr> = resp.peer_addrs().collect();
        d.insert(
            &b"peers"[..],
            Value::from(compact::encode(&addrs, Family::V4)),
        );
        let v6 = compact::encode(&addrs, Family::V6);
        if !v6.is_empty() {
            d.insert(&b"peers6"[..], Value::from(v6));
        }
    } else {
        let list = resp
            .peers
            .iter()
            .map(|p| {
                let mut pd = Dict::new();
                pd.insert(
                    &b"ip"[..],
                    Value::from(p.addr.ip().to_string().into_bytes()),
                );
                pd.insert(&b"port"[..], Value::Int(i64::from(p.addr.port())));
                if let Some(id) = &p.id {
                    pd.insert(&b"peer id"[..], Value::from(id.0.to_vec()));
                }
                Value::Dict(pd)
            })
            .collect::<Vec<_>>();
        d.insert(&b"peers"[..], Value::List(list));
    }
    Value::Dict(d).encode()
}

/// Encodes a `failure reason` response.
pub fn encode_failure(reason: &str) -> Vec<u8> {
    let mut d = Dict::new();
    d.insert(&b"failure reason"[..], Value::bytes(reason.as_bytes()));
    Value::Dict(d).encode()
}

/// Parses a scrape response's `files` dictionary; keys that are not 20 bytes
/// long are skipped.
pub fn parse_scrape(body: &[u8]) -> Result<HashMap<InfoHash, ScrapeStats>> {
    let d = decode_dict(body)?;
    if let Some(e) = failure(&d) {
        return Err(e);
    }
    let files = d
        .get(b"files")
        .and_then(Value::as_dict)
        .ok_or(Error::BadField { field: "files" })?;
    let mut out = HashMap::new();
    for (key, value) in files.iter() {
        let Ok(hash) = <[u8; 20]>::try_from(key) else {
            continue;
        };
        let stats = value.as_dict().ok_or(Error::BadField { field: "files" })?;
        let get = |k: &[u8], field| opt_u64(stats, k, field).map(Option::unwrap_or_default);
        out.insert(
            InfoHash(hash),
            ScrapeStats {
                complete: get(b"complete", "complete")?,
                downloaded: get(b"downloaded", "downloaded")?,
                incomplete: get(b"incomplete", "incomplete")?,
            },
        );
    }
    Ok(out)
}

/// Encodes a scrape response.
pub fn encode_scrape<'a>(
    files: impl IntoIterator<Item = (&'a InfoHash, &'a ScrapeStats)>,
) -> Vec<u8> {
    let mut fd = Dict::new();
    for (h, s) in files {
        let mut sd = Dict::new();
        sd.insert(&b"complete"[..], int(s.complete));
        sd.insert(&b"downloaded"[..], int(s.downloaded));
        sd.insert(&b"incomplete"[..], int(s.incomplete));
        fd.insert(h.0.to_vec(), Value::Dict(sd));
    }
    let mut d = Dict::new();
    d.insert(&b"files"[..], Value::Dict(fd));
    Value::Dict(d).encode()
}

/// Limits for the HTTP client.
#[derive(Clone, Debug)]
pub struct HttpConfig {
    /// Time to establish the TCP (and TLS) connection.
    pub connect_timeout: Duration,
    /// Deadline for the whole request: connect, redirects, headers and body.
    /// A server trickling one byte a second is cut off here. (Host-name lookup
    /// is not covered: the system resolver cannot be interrupted.)
    pub timeout: Duration,
    /// Largest response body accepted, in bytes.
    pub max_response_len: usize,
    /// Redirects followed before giving up with [`Error::RedirectLoop`].
    pub max_redirects: u32,
    /// The `User-Agent` header.
    pub user_agent: String,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(10),
            timeout: Duration::from_secs(30),
            max_response_len: 2 << 20,
            max_redirects: 5,
            user_agent: concat!("bt/", env!("CARGO_PKG_VERSION")).to_owned(),
        }
    }
}

/// An HTTP(S) tracker client. Cheap to clone; the async methods run the
/// blocking `ureq` call on tokio's blocking pool.
#[derive(Clone, Debug)]
pub struct HttpTracker {
    agent: ureq::Agent,
    config: HttpConfig,
}

impl Default for HttpTracker {
    fn default() -> Self {
        Self::new(HttpConfig::default())
    }
}

impl HttpTracker {
    /// A client with these limits.
    pub fn new(config: HttpConfig) -> Self {
        let agent = ureq::AgentBuilder::new()
            .timeout_connect(config.connect_timeout)
            .timeout(config.timeout)
            .redirects(config.max_redirects)
            .user_agent(&config.user_agent)
            .build();
        Self { agent, config }
    }

    /// The limits in force.
    pub fn config(&self) -> &HttpConfig {
        &self.config
    }

    /// Announces, blocking the calling thread.
    pub fn announce_blocking(
        &self,
        tracker: &str,
        req: &AnnounceRequest,
    ) -> Result<AnnounceResponse> {
        let body = self.fetch(&announce_url(tracker, req), tracker)?;
        parse_announce(&body)
    }

    /// Scrapes, blocking the calling thread.
    pub fn scrape_blocking(
        &self,
        tracker: &str,
        hashes: &[InfoHash],
    ) -> Result<HashMap<InfoHash, ScrapeStats>> {
        let url = scrape_url_for(tracker, hashes)?;
        let body = self.fetch(&url, tracker)?;
        parse_scrape(&body)
    }

    /// Announces on tokio's blocking pool.
    pub async fn announce(&self, tracker: &str, req: &AnnounceRequest) -> Result<AnnounceResponse> {
        let (this, t, r) = (self.clone(), tracker.to_owned(), req.clone());
        run_blocking(tracker, move || this.announce_blocking(&t, &r)).await
    }

    /// Scrapes on tokio's blocking pool.
    pub async fn scrape(
        &self,
        tracker: &str,
        hashes: &[InfoHash],
    ) -> Result<HashMap<InfoHash, ScrapeStats>> {
        let (this, t, h) = (self.clone(), tracker.to_owned(), hashes.to_vec());
        run_blocking(tracker, move || this.scrape_blocking(&t, &h)).await
    }

    /// GETs `url` and returns the body, capped; `tracker` names it in errors.
    fn fetch(&self, url: &str, tracker: &str) -> Result<Vec<u8>> {
        let start = Instant::now();
        match self.agent.get(url).call() {
            // A 3xx that ureq did not follow (no Location header).
            Ok(resp) if (300..400).contains(&resp.status()) => Err(Error::HttpStatus {
                url: tracker.to_owned(),
                status: resp.status(),
            }),
            Ok(resp) => self.read_body(resp, tracker, start),
            Err(ureq::Error::Status(status, resp)) => {
                // Some trackers send their failure reason with a 4xx/5xx status.
                let body = self.read_body(resp, tracker, start)?;
                match decode_dict(&body).ok().as_ref().and_then(failure) {
                    Some(e) => Err(e),
                    None => Err(Error::HttpStatus {
                        url: tracker.to_owned(),
                        status,
                    }),
                }
            }
            Err(ureq::Error::Transport(t)) => Err(self.transport_error(t, tracker, start)),
        }
    }

    fn read_body(&self, resp: ureq::Response, tracker: &str, start: Instant) -> Result<Vec<u8>> {
        let limit = self.config.max_response_len;
        let too_large = || Error::TooLarge {
            url: tracker.to_owned(),
            limit,
        };
        let declared = resp
            .header("content-length")
            .and_then(|v| v.trim().parse::<u64>().ok());
        if declared.is_some_and(|n| n > limit as u64) {
            return Err(too_large());
        }
        let mut body = Vec::new();
        let cap = u64::try_from(limit).unwrap_or(u64::MAX).saturating_add(1);
        match resp.into_reader().take(cap).read_to_end(&mut body) {
            Ok(_) if body.len() > limit => Err(too_large()),
            Ok(_) => Ok(body),
            Err(e) if is_timeout(&e) => Err(Error::Timeout {
                url: tracker.to_owned(),
                elapsed: start.elapsed(),
            }),
            Err(e) => Err(Error::Truncated {
                url: tracker.to_owned(),
                reason: format!("{e} after {} bytes", body.len()),
            }),
        }
    }

    fn transport_error(&self, t: ureq::Transport, tracker: &str, start: Instant) -> Error {
        let url = tracker.to_owned();
        match t.kind() {
            ureq::ErrorKind::TooManyRedirects => Error::RedirectLoop {
                url,
                limit: self.config.max_redirects,
            },
            ureq::ErrorKind::InvalidUrl => Error::InvalidUrl {
                url,
                reason: "not a valid http url",
            },
            ureq::ErrorKind::UnknownScheme => Error::UnsupportedScheme { url },
            _ => {
                let mut src: Option<&(dyn std::error::Error + 'static)> =
                    std::error::Error::source(&t);
                while let Some(e) = src {
                    if let Some(io) = e.downcast_ref::<std::io::Error>() {
                        if is_timeout(io) {
                            return Error::Timeout {
                                url,
                                elapsed: start.elapsed(),
                            };
                        }
                    }
                    src = e.source();
                }
                // Not `t.to_string()`: it repeats the whole URL, query included.
                let mut reason = t.kind().to_string();
                if let Some(m) = t.message() {
                    reason = format!("{reason}: {m}");
                }
                if let Some(e) = std::error::Error::source(&t) {
                    reason = format!("{reason}: {e}");
                }
                Error::Unreachable { url, reason }
            }
        }
    }
}

fn is_timeout(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock
    )
}

async fn run_blocking<T: Send + 'static>(
    tracker: &str,
    f: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    match tokio::task::spawn_blocking(f).await {
        Ok(r) => r,
        Err(e) => Err(Error::Unreachable {
            url: tracker.to_owned(),
            reason: format!("http task failed: {e}"),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::announce::Event;
    use crate::compact::tests::{v4, v6};
    use crate::httpd::percent_decode;
    use proptest::prelude::*;

    fn req() -> AnnounceRequest {
        let mut hash = [0u8; 20];
        hash[0] = 0x12;
        hash[1] = b' ';
        hash[2] = b'~';
        hash[19] = 0xff;
        let mut r = AnnounceRequest::new(InfoHash(hash), PeerId(*b"-BT0001-abcdefghij%&"), 6881);
        r.left = 1000;
        r.key = 0xdead_beef;
        r
    }

    #[test]
    fn announce_url_golden() {
        let mut r = req();
        r.event = Event::Started;
        r.numwant = Some(50);
        assert_eq!(
            announce_url("http://t.example/announce", &r),
            "http://t.example/announce?info_hash=%12%20~%00%00%00%00%00%00%00%00%00%00%00%00%00%00%00%00%FF\
             &peer_id=-BT0001-abcdefghij%25%26&port=6881&uploaded=0&downloaded=0&left=1000&compact=1\
             &event=started&numwant=50&key=DEADBEEF"
        );
    }

    #[test]
    fn announce_url_respects_existing_query() {
        let check = |base: &str, prefix: &str| {
            let url = announce_url(base, &req());
            assert!(url.starts_with(prefix), "{base} gave {url}");
        };
        check("http://t/announce", "http://t/announce?info_hash=");
        check(
            "http://t/announce?passkey=abc",
            "http://t/announce?passkey=abc&info_hash=",
        );
        check("http://t/announce?", "http://t/announce?info_hash=");
        check("http://t/announce?a=1&", "http://t/announce?a=1&info_hash=");
        check("http://t/announce#frag", "http://t/announce?info_hash=");
    }

    #[test]
    fn announce_url_optional_params() {
        let mut r = req();
        r.tracker_id = Some(b"id 1".to_vec());
        r.ip = Some("::1".parse().unwrap());
        r.event = Event::Stopped;
        let url = announce_url("http://t/a", &r);
        assert!(
            url.ends_with("&event=stopped&key=DEADBEEF&ip=%3A%3A1&trackerid=id%201"),
            "{url}"
        );
        assert!(!announce_url("http://t/a", &req()).contains("event="));
    }

    #[test]
    fn scrape_url_cases() {
        let check = |a: &str, s: Option<&str>| assert_eq!(scrape_url(a).as_deref(), s, "{a}");
        check("http://e.com/announce", Some("http://e.com/scrape"));
        check("http://e.com/x/announce", Some("http://e.com/x/scrape"));
        check("http://e.com/announce.php", Some("http://e.com/scrape.php"));
        check(
            "http://e.com/announce?x2%0644",
            Some("http://e.com/scrape?x2%0644"),
        );
        check("http://e.com/x%064announce", None);
        check("http://e.com/a", None);
        check("http://e.com/announce/x", None);
        check("http://e.com", None);
        check("announce", None);
        assert_eq!(
            scrape_url_for("http://e.com/announce?k=1", &[InfoHash([b'a'; 20])]).unwrap(),
            format!("http://e.com/scrape?k=1&info_hash={}", "a".repeat(20))
        );
        assert!(matches!(
            scrape_url_for("http://e.com/a", &[]),
            Err(Error::ScrapeUnsupported { .. })
        ));
    }

    #[test]
    fn parse_compact_golden() {
        let body = b"d8:completei3e10:incompletei1e8:intervali1800e12:min intervali60e\
                     5:peers12:\x7f\x00\x00\x01\x1a\xe1\x0a\x00\x00\x02\x00\x50\
                     6:peers618:\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01\x00\x07\
                     10:tracker id3:xyz15:warning message4:slowe";
        let r = parse_announce(body).unwrap();
        assert_eq!(r.interval, Duration::from_secs(1800));
        assert_eq!(r.min_interval, Some(Duration::from_secs(60)));
        assert_eq!((r.complete, r.incomplete), (Some(3), Some(1)));
        assert_eq!(r.tracker_id.as_deref(), Some(&b"xyz"[..]));
        assert_eq!(r.warning.as_deref(), Some("slow"));
        let addrs: Vec<String> = r.peer_addrs().map(|a| a.to_string()).collect();
        assert_eq!(addrs, ["127.0.0.1:6881", "10.0.0.2:80", "[::1]:7"]);
    }

    #[test]
    fn parse_dict_peers_golden_skips_bad_entries() {
        let body = b"d8:intervali60e5:peersl\
                     d2:ip9:127.0.0.17:peer id20:aaaaaaaaaaaaaaaaaaaa4:porti6881ee\
                     d2:ip11:example.com4:porti1ee\
                     d2:ip3:::14:porti70000ee\
                     d2:ip3:::14:porti9eeee";
        let r = parse_announce(body).unwrap();
        assert_eq!(
            r.peers,
            vec![
                Peer {
                    addr: "127.0.0.1:6881".parse().unwrap(),
                    id: Some(PeerId([b'a'; 20]))
                },
                Peer::from_addr("[::1]:9".parse().unwrap()),
            ]
        );
    }

    #[test]
    fn parse_errors_are_clear() {
        let check = |body: &[u8], msg: &str| {
            let e = parse_announce(body).unwrap_err();
            assert_eq!(e.to_string(), msg, "{}", String::from_utf8_lossy(body));
        };
        check(
            b"d14:failure reason9:not knowne",
            "tracker failure: \"not known\"",
        );
        check(
            b"d8:intervali5e5:peers5:abcdee",
            "compact peers of 5 bytes is not a multiple of 6",
        );
        check(
            b"d8:intervali5e6:peers66:abcdefe",
            "compact peers of 6 bytes is not a multiple of 18",
        );
        check(
            b"d5:peers0:e",
            "response field \"interval\" missing or invalid",
        );
        check(
            b"d8:intervali-5ee",
            "response field \"interval\" missing or invalid",
        );
        check(
            b"d8:intervali5e5:peersi3ee",
            "response field \"peers\" missing or invalid",
        );
        check(b"i3e", "response field \"response\" missing or invalid");
        check(
            b"<html>",
            "response is not bencode: invalid byte '<' where a value should start at byte 0",
        );
        let e = parse_announce(b"d8:intervali5e5:peers").unwrap_err();
        assert!(matches!(e, Error::NotBencode { offset: 21, .. }), "{e}");
    }

    #[test]
    fn scrape_golden() {
        let body =
            b"d5:filesd20:aaaaaaaaaaaaaaaaaaaad8:completei5e10:downloadedi50e10:incompletei10ee\
                     3:bad0:ee";
        let files = parse_scrape(body).unwrap();
        assert_eq!(files.len(), 1);
        assert_eq!(
            files[&InfoHash([b'a'; 20])],
            ScrapeStats {
                complete: 5,
                downloaded: 50,
                incomplete: 10
            }
        );
        let again = encode_scrape(files.iter());
        assert_eq!(parse_scrape(&again).unwrap(), files);
        assert!(matches!(
            parse_scrape(b"de"),
            Err(Error::BadField { field: "files" })
        ));
    }

    fn any_peer() -> impl Strategy<Value = Peer> {
        (
            prop_oneof![v4(), v6()],
            proptest::option::of(any::<[u8; 20]>()),
        )
            .prop_map(|(addr, id)| Peer {
                addr,
                id: id.map(PeerId),
            })
    }

    fn response(
        peers: impl Strategy<Value = Vec<Peer>>,
    ) -> impl Strategy<Value = AnnounceResponse> {
        (
            0u64..1 << 40,
            proptest::option::of(0u64..1 << 40),
            proptest::option::of(proptest::collection::vec(any::<u8>(), 0..30)),
            proptest::option::of(any::<u32>()),
            proptest::option::of(any::<u32>()),
            proptest::option::of("[a-z ]{0,20}"),
            peers,
        )
            .prop_map(|(i, m, tid, c, inc, w, peers)| AnnounceResponse {
                interval: Duration::from_secs(i),
                min_interval: m.map(Duration::from_secs),
                tracker_id: tid,
                complete: c.map(u64::from),
                incomplete: inc.map(u64::from),
                warning: w,
                peers,
            })
    }

    proptest! {
        #[test]
        fn dict_response_round_trip(r in response(proptest::collection::vec(any_peer(), 0..20))) {
            prop_assert_eq!(parse_announce(&encode_announce(&r, false)).unwrap(), r);
        }

        #[test]
        fn compact_response_round_trip(
            r in response((proptest::collection::vec(v4(), 0..20), proptest::collection::vec(v6(), 0..20))
                .prop_map(|(a, b)| a.into_iter().chain(b).map(Peer::from_addr).collect()))
        ) {
            prop_assert_eq!(parse_announce(&encode_announce(&r, true)).unwrap(), r);
        }

        #[test]
        fn garbage_never_panics(body in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = parse_announce(&body);
            let _ = parse_scrape(&body);
        }

        #[test]
        fn truncated_response_is_an_error(
            r in response(proptest::collection::vec(any_peer(), 0..5)), cut in any::<prop::sample::Index>()
        ) {
            let body = encode_announce(&r, false);
            let cut = cut.index(body.len());
            prop_assert!(parse_announce(&body[..cut]).is_err());
        }

        #[test]
        fn percent_encoding_round_trips(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let mut s = String::new();
            percent_encode(&bytes, &mut s);
            prop_assert!(s.bytes().all(|b| b.is_ascii_graphic() && b != b'&' && b != b'=' && b != b'+'));
            prop_assert_eq!(percent_decode(s.as_bytes()).unwrap(), bytes);
        }
    }
}
