//! The built-in tracker's minimal HTTP/1.1 request parsing: the request head
//! (bounded), the request line, and announce/scrape query strings. Pure functions.

use std::net::IpAddr;

use bt_meta::{InfoHash, PeerId};

use crate::announce::{AnnounceRequest, Event};
use crate::error::{Error, Result};

/// Longest request head (request line and headers) the server reads.
pub const MAX_HEAD_LEN: usize = 8 * 1024;

/// Most `info_hash` parameters honoured in one scrape.
pub const MAX_SCRAPE_HASHES: usize = 100;

/// Where the head ends (just past the blank line), if it is complete in `buf`.
pub fn head_end(buf: &[u8]) -> Option<usize> {
    buf.windows(4).position(|w| w == b"\r\n\r\n").map(|i| i + 4)
}

/// A parsed request line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestLine<'a> {
    /// The method, like `GET`.
    pub method: &'a [u8],
    /// The path, without the query.
    pub path: &'a [u8],
    /// The raw query string after `?` (empty when none).
    pub query: &'a [u8],
}

/// Parses the first line of a request head: `METHOD TARGET HTTP/1.x`.
pub fn parse_request_line(head: &[u8]) -> Option<RequestLine<'_>> {
    let end = head.windows(2).position(|w| w == b"\r\n")?;
    let line = head.get(..end)?;
    let mut parts = line.split(|&b| b == b' ');
    let method = parts.next()?;
    let target = parts.next()?;
    let version = parts.next()?;
    if parts.next().is_some() || !version.starts_with(b"HTTP/1.") || method.is_empty() {
        return None;
    }
    let (path, query) = match target.iter().position(|&b| b == b'?') {
        Some(i) => (target.get(..i)?, target.get(i + 1..)?),
        None => (target, &b""[..]),
    };
    Some(RequestLine {
        method,
        path,
        query,
    })
}

/// Decodes `%XX` escapes into raw bytes (`+` stays `+`); `None` on a bad escape.
pub fn percent_decode(s: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while let Some(&b) = s.get(i) {
        if b == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            if !hex.iter().all(u8::is_ascii_hexdigit) {
                return None;
            }
            let text = std::str::from_utf8(hex).ok()?;
            out.push(u8::from_str_radix(text, 16).ok()?);
            i += 3;
        } else {
            out.push(b);
            i += 1;
        }
    }
    Some(out)
}

/// A query string split into `name=value` pairs (values still escaped).
pub struct Query<'a> {
    pairs: Vec<(&'a [u8], &'a [u8])>,
}

impl<'a> Query<'a> {
    /// Splits on `&`; a pair without `=` has an empty value.
    pub fn parse(query: &'a [u8]) -> Self {
        let pairs = query
            .split(|&b| b == b'&')
            .filter(|p| !p.is_empty())
            .map(|p| match p.iter().position(|&b| b == b'=') {
                Some(i) => (&p[..i], &p[i + 1..]), // ok: i < p.len()
                None => (p, &b""[..]),
            })
            .collect();
        Self { pairs }
    }

    /// The first value of `name`, decoded.
    pub fn get(&self, name: &'static str) -> Result<Option<Vec<u8>>> {
        match self.pairs.iter().find(|(k, _)| *k == name.as_bytes()) {
            None => Ok(None),
            Some((_, v)) => percent_decode(v)
                .map(Some)
                .ok_or(Error::BadParam { param: name }),
        }
    }

    /// Every value of `name`, decoded, in order.
    pub fn get_all(&self, name: &'static str) -> impl Iterator<Item = Result<Vec<u8>>> + '_ {
        self.pairs
            .iter()
            .filter(move |(k, _)| *k == name.as_bytes())
            .map(move |(_, v)| percent_decode(v).ok_or(Error::BadParam { param: name }))
    }

    fn number<T: std::str::FromStr>(&self, name: &'static str) -> Result<Option<T>> {
        match self.get(name)? {
            None => Ok(None),
            Some(v) => std::str::from_utf8(&v)
                .ok()
                .and_then(|s| s.parse().ok())
                .map(Some)
                .ok_or(Error::BadParam { param: name }),
        }
    }

    fn bytes20(&self, name: &'static str) -> Result<[u8; 20]> {
        self.get(name)?
            .and_then(|v| <[u8; 20]>::try_from(v.as_slice()).ok())
            .ok_or(Error::BadParam { param: name })
    }
}

/// Parses an announce query into the request it describes and whether
/// compact peers were asked for (`compact=0` asks for dictionaries).
pub fn parse_announce_query(query: &[u8]) -> Result<(AnnounceRequest, bool)> {
    let q = Query::parse(query);
    let info_hash = InfoHash(q.bytes20("info_hash")?);
    let peer_id = PeerId(q.bytes20("peer_id")?);
    let port = q.number("port")?.ok_or(Error::BadParam { param: "port" })?;
    let event = match q.get("event")? {
        None => Event::None,
        Some(v) => Event::from_http(&v).ok_or(Error::BadParam { param: "event" })?,
    };
    let key = match q.get("key")? {
        None => 0,
        Some(v) => std::str::from_utf8(&v)
            .ok()
            .and_then(|s| u32::from_str_radix(s, 16).ok())
            .unwrap_or(0),
    };
    let ip = match q.get("ip")? {
        None => None,
        Some(v) => std::str::from_utf8(&v)
            .ok()
            .and_then(|s| s.parse::<IpAddr>().ok()),
    };
    let compact = q.get("compact")?.as_deref() != Some(b"0");
    let req = AnnounceRequest {
        info_hash,
        peer_id,
        port,
        uploaded: q.number("uploaded")?.unwrap_or(0),
        downloaded: q.number("downloaded")?.unwrap_or(0),
        left: q.number("left")?.unwrap_or(0),
        event,
        numwant: q.number("numwant")?,
        key,
        ip,
        tracker_id: q.get("trackerid")?,
    };
    Ok((req, compact))
}

/// The info-hashes of a scrape query, at most [`MAX_SCRAPE_HASHES`]; hashes of
/// the wrong length are an error.
pub fn parse_scrape_query(query: &[u8]) -> Result<Vec<InfoHash>> {
    let q = Query::parse(query);
    q.get_all("info_hash")
        .take(MAX_SCRAPE_HASHES)
        .map(|v| {
            let v = v?;
            <[u8; 20]>::try_from(v.as_slice())
                .map(InfoHash)
                .map_err(|_| Error::BadParam { param: "info_hash" })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::announce_url;
    use proptest::prelude::*;

    #[test]
    fn request_line_cases() {
        let check = |head: &[u8], want: Option<(&[u8], &[u8], &[u8])>| {
            let got = parse_request_line(head).map(|r| (r.method, r.path, r.query));
            assert_eq!(got, want, "{}", String::from_utf8_lossy(head));
        };
        check(
            b"GET /announce?a=1 HTTP/1.1\r\nHost: x\r\n\r\n",
            Some((b"GET", b"/announce", b"a=1")),
        );
        check(
            b"GET /scrape HTTP/1.0\r\n\r\n",
            Some((b"GET", b"/scrape", b"")),
        );
        check(b"GET /scrape HTTP/2\r\n\r\n", None);
        check(b"GET /a b HTTP/1.1\r\n\r\n", None);
        check(b"GET /a\r\n\r\n", None);
        check(b"GET /a HTTP/1.1", None);
        check(b" /a HTTP/1.1\r\n", None);
    }

    #[test]
    fn head_end_finds_blank_line() {
        assert_eq!(head_end(b"GET / HTTP/1.1\r\n\r\nbody"), Some(18));
        assert_eq!(head_end(b"GET / HTTP/1.1\r\n"), None);
    }

    #[test]
    fn percent_decode_rejects_bad_escapes() {
        assert_eq!(percent_decode(b"a%20b+").unwrap(), b"a b+");
        assert_eq!(percent_decode(b"%ff%FF").unwrap(), [255, 255]);
        assert_eq!(percent_decode(b"%"), None);
        assert_eq!(percent_decode(b"%4"), None);
        assert_eq!(percent_decode(b"%zz"), None);
        assert_eq!(percent_decode(b"%+1"), None);
    }

    #[test]
    fn announce_query_errors_name_the_param() {
        let check = |q: &str, param: &str| {
            let e = parse_announce_query(q.as_bytes()).unwrap_err();
            assert_eq!(
                e.to_string(),
                format!("bad request parameter {param:?}"),
                "{q}"
            );
        };
        let h = "a".repeat(20);
        check("peer_id=x", "info_hash");
        check(&format!("info_hash={h}"), "peer_id");
        check(&format!("info_hash=%zz&peer_id={h}"), "info_hash");
        check(&format!("info_hash={h}&peer_id={h}"), "port");
        check(&format!("info_hash={h}&peer_id={h}&port=70000"), "port");
        check(&format!("info_hash={h}&peer_id={h}&port=1&left=-1"), "left");
        check(
            &format!("info_hash={h}&peer_id={h}&port=1&event=paused"),
            "event",
        );
        let (r, compact) =
            parse_announce_query(format!("info_hash={h}&peer_id={h}&port=1&compact=0").as_bytes())
                .unwrap();
        assert!(!compact);
        assert_eq!(r.port, 1);
    }

    #[test]
    fn scrape_query_is_bounded() {
        let one = format!("info_hash={}", "b".repeat(20));
        let many = vec![one.as_str(); MAX_SCRAPE_HASHES + 5].join("&");
        assert_eq!(
            parse_scrape_query(many.as_bytes()).unwrap().len(),
            MAX_SCRAPE_HASHES
        );
        assert!(parse_scrape_query(b"info_hash=short").is_err());
        assert_eq!(parse_scrape_query(b"").unwrap(), vec![]);
    }

    proptest! {
        #[test]
        fn announce_url_parses_back(
            hash in any::<[u8; 20]>(), id in any::<[u8; 20]>(), port in any::<u16>(),
            up in any::<u64>(), down in any::<u64>(), left in any::<u64>(), ev in 0u32..4,
            numwant in proptest::option::of(any::<u32>()), key in any::<u32>(),
            tid in proptest::option::of(proptest::collection::vec(any::<u8>(), 0..10)),
            ip in proptest::option::of(any::<[u8; 4]>()),
        ) {
            let req = AnnounceRequest {
                info_hash: InfoHash(hash), peer_id: PeerId(id), port, uploaded: up, downloaded: down,
                left, event: Event::from_udp(ev).unwrap(), numwant, key,
                ip: ip.map(IpAddr::from), tracker_id: tid,
            };
            let url = announce_url("http://t/announce?x=1", &req);
            let line = format!("GET {} HTTP/1.1\r\n\r\n", url.trim_start_matches("http://t"));
            let parsed = parse_request_line(line.as_bytes()).unwrap();
            prop_assert_eq!(parsed.path, b"/announce");
            let (back, compact) = parse_announce_query(parsed.query).unwrap();
            prop_assert!(compact);
            prop_assert_eq!(back, req);
        }

        #[test]
        fn garbage_queries_never_panic(q in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = parse_announce_query(&q);
            let _ = parse_scrape_query(&q);
            let _ = parse_request_line(&q);
        }
    }
}
