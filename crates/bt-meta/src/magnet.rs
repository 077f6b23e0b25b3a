//! Magnet links (BEP 9), with the v2 `btmh` hash (BEP 52), peer addresses (`x.pe`) and
//! file selection (`so`, BEP 53).
//!
//! Parsing follows libtorrent where established clients agree, and otherwise:
//! - a parameter without `=` is skipped and the rest is kept (Transmission; libtorrent
//!   2.0.8 loses the parameter after it);
//! - `magnet:///?...` is accepted like `magnet:?...` (Transmission);
//! - a malformed percent-escape anywhere makes the link invalid;
//! - `tr` and `tr.N` trackers keep only `http`, `https`, `udp`, `ws` and `wss` URLs;
//!   repeated trackers, peers and web seeds are dropped (first one kept);
//! - when several `btih` (or `btmh`) hashes are given, the last one counts (libtorrent);
//! - `so` follows libtorrent: a value with anything but digits, `-` and `,` is ignored,
//!   as are bad ranges and indices above 10000.

use std::fmt;
use std::net::SocketAddr;
use std::str::FromStr;

use crate::error::{Error, Result};
use crate::hash::{InfoHash, InfoHashV2};

/// Highest file index accepted in `so` (libtorrent's limit; guards memory).
pub const MAX_SELECT_INDEX: u32 = 10_000;

/// What a magnet link holds.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Magnet {
    /// The v1 info-hash (`xt=urn:btih:`, 40 hex or 32 base32 characters).
    pub info_hash: Option<InfoHash>,
    /// The v2 info-hash (`xt=urn:btmh:1220` + 64 hex characters).
    pub info_hash_v2: Option<InfoHashV2>,
    /// The display name (`dn`).
    pub display_name: Option<String>,
    /// Trackers (`tr`, `tr.N`), in order; each is its own tier.
    pub trackers: Vec<String>,
    /// Web seeds (`ws`).
    pub web_seeds: Vec<String>,
    /// Peers to contact (`x.pe`), IP literals only.
    pub peers: Vec<SocketAddr>,
    /// Files to download (`so`): sorted indices, `None` when absent or unusable.
    pub select_only: Option<Vec<u32>>,
}

fn invalid(reason: impl Into<String>) -> Error {
    Error::InvalidMagnet {
        reason: reason.into(),
    }
}

fn hex_val(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

/// Percent-decodes `s` (with `+` as a space when `plus_is_space`); the result is
/// converted to UTF-8 lossily.
fn percent_decode(s: &str, plus_is_space: bool) -> Result<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hi = bytes.get(i + 1).copied().and_then(hex_val);
                let lo = bytes.get(i + 2).copied().and_then(hex_val);
                match (hi, lo) {
                    (Some(hi), Some(lo)) => out.push(hi * 16 + lo),
                    _ => return Err(invalid(format!("bad percent-escape at {s:?}"))),
                }
                i += 3;
            }
            b'+' if plus_is_space => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    Ok(String::from_utf8_lossy(&out).into_owned())
}

fn base32_decode_20(s: &str) -> Option<[u8; 20]> {
    if s.len() != 32 {
        return None;
    }
    let mut out = [0u8; 20];
    let mut acc: u64 = 0;
    let mut bits = 0;
    let mut n = 0;
    for c in s.bytes() {
        let v = match c.to_ascii_uppercase() {
            c @ b'A'..=b'Z' => c - b'A',
            c @ b'2'..=b'7' => c - b'2' + 26,
            _ => return None,
        };
        acc = (acc << 5) | u64::from(v);
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out[n] = (acc >> bits) as u8;
            n += 1;
        }
    }
    Some(out)
}

fn parse_btih(s: &str) -> Result<InfoHash> {
    match s.len() {
        40 => InfoHash::from_hex(s),
        32 => base32_decode_20(s).map(InfoHash),
        _ => None,
    }
    .ok_or_else(|| invalid(format!("bad btih info-hash {s:?}")))
}

fn parse_btmh(s: &str) -> Result<InfoHashV2> {
    s.strip_prefix("1220")
        .and_then(InfoHashV2::from_hex)
        .ok_or_else(|| invalid(format!("bad btmh info-hash {s:?} (want 1220 + 64 hex)")))
}

fn strip_prefix_ignore_case<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &s[prefix.len()..])
}

/// Whether a tracker URL has a scheme a BitTorrent client can announce to.
fn is_tracker_url(url: &str) -> bool {
    ["http://", "https://", "udp://", "ws://", "wss://"]
        .iter()
        .any(|scheme| strip_prefix_ignore_case(url, scheme).is_some_and(|rest| !rest.is_empty()))
}

fn is_tracker_key(key: &str) -> bool {
    key == "tr"
        || key
            .strip_prefix("tr.")
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

/// Applies one `so` value to `selected` (libtorrent's rules).
fn parse_select_only(value: &str, selected: &mut Vec<u32>) {
    if !value
        .bytes()
        .all(|b| b.is_ascii_digit() || b == b'-' || b == b',')
    {
        return;
    }
    let index = |s: &str| {
        s.parse::<u64>()
            .ok()
            .filter(|&i| i <= u64::from(MAX_SELECT_INDEX))
            .map(|i| i as u32)
    };
    for token in value.split(',').filter(|t| !t.is_empty()) {
        let (first, last) = match token.split_once('-') {
            Some((a, b)) => match (index(a), index(b)) {
                (Some(a), Some(b)) if a <= b => (a, b),
                _ => continue,
            },
            None => match index(token) {
                Some(i) => (i, i),
                None => continue,
            },
        };
        selected.extend(first..=last);
    }
}

fn push_unique<T: PartialEq>(list: &mut Vec<T>, item: T) {
    if !list.contains(&item) {
        list.push(item);
    }
}

impl Magnet {
    /// Parses a magnet URI. It must carry a usable `btih` or `btmh` info-hash.
    pub fn parse(uri: &str) -> Result<Self> {
        let rest = strip_prefix_ignore_case(uri, "magnet:")
            .ok_or_else(|| invalid("does not start with \"magnet:\""))?;
        let query = rest
            .trim_start_matches('/')
            .strip_prefix('?')
            .ok_or_else(|| invalid("no query (\"?\") after \"magnet:\""))?;
        let mut m = Magnet::default();
        let mut selected = Vec::new();
        for param in query.split('&') {
            let Some((raw_key, raw_value)) = param.split_once('=') else {
                continue;
            };
            let key = percent_decode(raw_key, false)?.to_ascii_lowercase();
            let plus_is_space = key == "dn";
            let value = percent_decode(raw_value, plus_is_space)?;
            match key.as_str() {
                "xt" => {
                    if let Some(h) = strip_prefix_ignore_case(&value, "urn:btih:") {
                        m.info_hash = Some(parse_btih(h)?);
                    } else if let Some(h) = strip_prefix_ignore_case(&value, "urn:btmh:") {
                        m.info_hash_v2 = Some(parse_btmh(h)?);
                    }
                }
                "dn" => m.display_name = Some(value),
                k if is_tracker_key(k) && is_tracker_url(&value) => {
                    push_unique(&mut m.trackers, value);
                }
                "ws" if !value.is_empty() => push_unique(&mut m.web_seeds, value),
                "x.pe" => {
                    if let Ok(addr) = value.parse::<SocketAddr>() {
                        push_unique(&mut m.peers, addr);
                    }
                }
                "so" => parse_select_only(&value, &mut selected),
                _ => {}
            }
        }
        if m.info_hash.is_none() && m.info_hash_v2.is_none() {
            return Err(invalid("no urn:btih or urn:btmh info-hash"));
        }
        if !selected.is_empty() {
            selected.sort_unstable();
            selected.dedup();
            m.select_only = Some(selected);
        }
        Ok(m)
    }

    /// Trackers by tier: a magnet link puts each tracker in its own tier.
    pub fn tracker_tiers(&self) -> Vec<Vec<String>> {
        self.trackers.iter().map(|t| vec![t.clone()]).collect()
    }

    /// Formats the link as a URI (also what [`fmt::Display`] writes).
    pub fn to_uri(&self) -> String {
        self.to_string()
    }
}

impl FromStr for Magnet {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Magnet::parse(s)
    }
}

/// Percent-encodes everything but RFC 3986 unreserved characters.
fn encode(s: &str, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            write!(f, "{}", b as char)?;
        } else {
            write!(f, "%{b:02X}")?;
        }
    }
    Ok(())
}

/// Writes sorted indices as BEP 53 ranges: `0,2-4,7`.
fn write_ranges(indices: &[u32], f: &mut fmt::Formatter<'_>) -> fmt::Result {
    let mut i = 0;
    let mut first = true;
    while i < indices.len() {
        let start = indices[i];
        let mut end = start;
        while i + 1 < indices.len() && indices[i + 1] == end + 1 {
            i += 1;
            end += 1;
        }
        if !first {
            f.write_str(",")?;
        }
        first = false;
        if start == end {
            write!(f, "{start}")?;
        } else {
            write!(f, "{start}-{end}")?;
        }
        i += 1;
    }
    Ok(())
}

impl fmt::Display for Magnet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("magnet:?")?;
        let mut sep = "";
        if let Some(h) = &self.info_hash {
            write!(f, "xt=urn:btih:{h}")?;
            sep = "&";
        }
        if let Some(h) = &self.info_hash_v2 {
            write!(f, "{sep}xt=urn:btmh:1220{h}")?;
            sep = "&";
        }
        if let Some(dn) = &self.display_name {
            write!(f, "{sep}dn=")?;
            encode(dn, f)?;
            sep = "&";
        }
        for (key, values) in [("tr", &self.trackers), ("ws", &self.web_seeds)] {
            for v in values {
                write!(f, "{sep}{key}=")?;
                encode(v, f)?;
                sep = "&";
            }
        }
        for p in &self.peers {
            write!(f, "{sep}x.pe=")?;
            encode(&p.to_string(), f)?;
            sep = "&";
        }
        if let Some(so) = self.select_only.as_deref().filter(|s| !s.is_empty()) {
            write!(f, "{sep}so=")?;
            write_ranges(so, f)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEX: &str = "cdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcd";

    #[test]
    fn base32() {
        let m = Magnet::parse("magnet:?xt=urn:btih:MFRGCYTBMJQWEYLCMFRGCYTBMJQWEYLC").unwrap();
        assert_eq!(m.info_hash.unwrap().to_hex(), "61626162".repeat(5));
        let lower = Magnet::parse("magnet:?xt=urn:btih:mfrgcytbmjqweylcmfrgcytbmjqweylc").unwrap();
        assert_eq!(m, lower);
        assert!(Magnet::parse("magnet:?xt=urn:btih:MFRGCYTBMJQWEYLCMFRGCYTBMJQWEYL1").is_err());
    }

    #[test]
    fn invalid_links() {
        for uri in [
            "",
            "magnet:",
            "magnet:?",
            "magnet:?dn=x",
            "magnet:?xt=urn:btih:abc",
            "magnet:?xt=urn%%3A",
            "http://example.com/?xt=urn:btih:cdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcd",
            "magnet:?xt=urn:btmh:1114cdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcd",
        ] {
            assert!(Magnet::parse(uri).is_err(), "{uri:?}");
        }
    }

    #[test]
    fn select_only_rules() {
        let so = |v: &str| {
            Magnet::parse(&format!("magnet:?xt=urn:btih:{HEX}&so={v}"))
                .unwrap()
                .select_only
        };
        assert_eq!(so("0,2,4,6-8"), Some(vec![0, 2, 4, 6, 7, 8]));
        assert_eq!(so("7-4"), None);
        assert_eq!(so("-4"), None);
        assert_eq!(so("3-"), None);
        assert_eq!(so("10001"), None);
        assert_eq!(so("10000"), Some(vec![10000]));
        assert_eq!(so("\"1,2\""), None);
        assert_eq!(so(",,1"), Some(vec![1]));
    }

    #[test]
    fn round_trip() {
        let m = Magnet {
            info_hash: InfoHash::from_hex(HEX),
            info_hash_v2: InfoHashV2::from_hex(&"ab".repeat(32)),
            display_name: Some("a b+c/é&d=e".into()),
            trackers: vec![
                "udp://t.example:6969/announce".into(),
                "http://x/a?b=c&d".into(),
            ],
            web_seeds: vec!["http://seed.example/files/".into()],
            peers: vec![
                "127.0.0.1:6881".parse().unwrap(),
                "[::1]:45".parse().unwrap(),
            ],
            select_only: Some(vec![0, 2, 3, 4, 9]),
        };
        let uri = m.to_uri();
        assert!(uri.contains("so=0,2-4,9"), "{uri}");
        assert_eq!(Magnet::parse(&uri).unwrap(), m);
        let v1_only = Magnet {
            info_hash: InfoHash::from_hex(HEX),
            ..Magnet::default()
        };
        assert_eq!(v1_only.to_uri(), format!("magnet:?xt=urn:btih:{HEX}"));
    }
}
