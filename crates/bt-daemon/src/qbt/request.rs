//! Reading what a client sent: form and query parameters, the values endpoints take from
//! them, and the headers the guard checks. Pure functions over outside bytes, fuzzed by
//! `fuzz/fuzz_targets/qbt_request.rs`.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};

use bt_meta::InfoHash;

/// A request's parameters: the query string, and the form body of a POST.
pub type Params = BTreeMap<String, String>;

/// Decodes `application/x-www-form-urlencoded` pairs (a later key wins).
pub fn form_pairs(input: &[u8]) -> Params {
    fn decode(s: &[u8]) -> String {
        let mut out = Vec::with_capacity(s.len());
        let mut i = 0;
        while i < s.len() {
            match s[i] {
                b'+' => out.push(b' '),
                b'%' if i + 2 < s.len() => {
                    let hex = std::str::from_utf8(&s[i + 1..i + 3]).ok();
                    match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                        Some(b) => {
                            out.push(b);
                            i += 2;
                        }
                        None => out.push(b'%'),
                    }
                }
                b => out.push(b),
            }
            i += 1;
        }
        String::from_utf8_lossy(&out).into_owned()
    }
    input
        .split(|b| *b == b'&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let mut it = pair.splitn(2, |b| *b == b'=');
            let k = decode(it.next().unwrap_or_default());
            let v = decode(it.next().unwrap_or_default());
            (k, v)
        })
        .collect()
}

/// Whether `key` is `true` (any case).
pub fn flag(p: &Params, key: &str) -> bool {
    p.get(key).is_some_and(|v| v.eq_ignore_ascii_case("true"))
}

/// What `hashes` (or `hash`) names: `all`, or a `|`-separated list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Hashes {
    /// Every torrent.
    All,
    /// These (unknown or malformed hashes are skipped, as qBittorrent does).
    These(Vec<InfoHash>),
}

/// The torrents a request names in `hashes` (or `hash`).
pub fn hash_list(p: &Params) -> Hashes {
    let Some(list) = p.get("hashes").or_else(|| p.get("hash")) else {
        return Hashes::These(Vec::new());
    };
    if list == "all" {
        return Hashes::All;
    }
    Hashes::These(
        list.split('|')
            .filter_map(|h| InfoHash::from_hex(h.trim()))
            .collect(),
    )
}

/// The values of a `sep`-separated list parameter, trimmed, empty ones dropped.
pub fn list_param(p: &Params, key: &str, sep: char) -> Vec<String> {
    p.get(key)
        .map(|v| {
            v.split(sep)
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect()
        })
        .unwrap_or_default()
}

/// A limit parameter: bytes/s, where 0 or a negative number means none.
pub fn limit_param(p: &Params) -> Option<u64> {
    p.get("limit")
        .and_then(|v| v.trim().parse::<i64>().ok())
        .map(|v| v.max(0) as u64)
}

/// File indices of `filePrio`'s `id` (`|`-separated).
pub fn file_ids(p: &Params) -> Result<Vec<usize>, &'static str> {
    list_param(p, "id", '|')
        .iter()
        .map(|i| i.parse::<usize>())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| "id: not a list of file indices")
}

/// The `indexes` of `torrents/files`: `None` for every file.
pub fn file_indexes(p: &Params) -> Option<Vec<usize>> {
    p.get("indexes")
        .map(|v| v.split('|').filter_map(|i| i.trim().parse().ok()).collect())
}

/// The addresses of `transfer/banPeers`' `peers` (`host:port` or bare addresses,
/// `|`-separated; the port is ignored: the whole address is banned).
pub fn peer_ips(p: &Params) -> Vec<IpAddr> {
    p.get("peers")
        .map(|v| {
            v.split('|')
                .filter_map(|peer| {
                    let peer = peer.trim();
                    peer.parse::<SocketAddr>()
                        .map(|a| a.ip())
                        .ok()
                        .or_else(|| peer.parse().ok())
                })
                .collect()
        })
        .unwrap_or_default()
}

/// `setShareLimits`' ratio, seeding minutes and inactive seeding minutes (-2: the global
/// limit); `None` without the two required ones.
pub fn share_limits(p: &Params) -> Option<(f64, i64, i64)> {
    let num = |k: &str| p.get(k).and_then(|v| v.trim().parse::<f64>().ok());
    let (ratio, seeding) = (num("ratioLimit")?, num("seedingTimeLimit")?);
    let inactive = num("inactiveSeedingTimeLimit").unwrap_or(-2.0);
    Some((ratio, seeding as i64, inactive as i64))
}

/// Whether `host` (a `Host` header value) names this machine: `localhost`, a loopback
/// address, the address the request was sent to, or a name of `domains` (qBittorrent's
/// `web_ui_domain_list`). A page whose DNS name was rebound to this machine carries its
/// own name instead.
pub fn host_allowed(host: &str, local: SocketAddr, domains: &str) -> bool {
    let name = if let Some(rest) = host.strip_prefix('[') {
        rest.split(']').next().unwrap_or("")
    } else {
        host.rsplit_once(':').map_or(host, |(h, _)| h)
    };
    if name.eq_ignore_ascii_case("localhost") {
        return true;
    }
    if let Ok(ip) = name.parse::<IpAddr>() {
        let ip = ip.to_canonical();
        return ip.is_loopback() || ip == local.ip().to_canonical();
    }
    domains
        .split(';')
        .map(str::trim)
        .filter(|d| !d.is_empty())
        .any(|pattern| wildcard_match(&pattern.to_ascii_lowercase(), &name.to_ascii_lowercase()))
}

/// Whether `text` matches `pattern`, where `*` stands for any run of characters.
pub fn wildcard_match(pattern: &str, text: &str) -> bool {
    let mut parts = pattern.split('*');
    let first = parts.next().unwrap_or("");
    let Some(mut rest) = text.strip_prefix(first) else {
        return false;
    };
    let parts: Vec<&str> = parts.collect();
    let Some((last, middle)) = parts.split_last() else {
        return rest.is_empty();
    };
    for part in middle {
        match rest.find(part) {
            Some(i) => rest = &rest[i + part.len()..],
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last)
}

/// Whether an `Origin` or `Referer` value names another site than `host` (cross-site
/// request forgery); `null` (a sandboxed page's origin) passes, as qBittorrent lets it.
pub fn cross_site(value: &str, host: &str) -> bool {
    let authority = value
        .split_once("://")
        .map_or("", |(_, rest)| rest.split('/').next().unwrap_or(""));
    value != "null" && authority != host
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_pairs_decode_percent_and_plus() {
        let p = form_pairs(b"urls=magnet%3A%3Fxt%3Durn&name=a+b&bad=%zz&tail=%4");
        assert_eq!(p["urls"], "magnet:?xt=urn");
        assert_eq!(p["name"], "a b");
        assert_eq!(p["bad"], "%zz");
        assert_eq!(p["tail"], "%4");
    }

    #[test]
    fn only_this_machine_is_an_allowed_host() {
        let api: SocketAddr = "127.0.0.1:8080".parse().unwrap();
        for ok in [
            "127.0.0.1:8080",
            "localhost:8080",
            "[::1]:8080",
            "localhost",
            "127.0.0.2",
        ] {
            assert!(host_allowed(ok, api, ""), "{ok}");
        }
        for bad in [
            "evil.example:8080",
            "192.168.1.2:8080",
            "127.0.0.1.evil.example",
        ] {
            assert!(!host_allowed(bad, api, ""), "{bad}");
        }
    }

    #[test]
    fn a_lan_api_answers_its_own_address_and_the_listed_names() {
        let lan: SocketAddr = "192.168.1.5:8080".parse().unwrap();
        let names = "nas.home; *.example.org";
        for ok in [
            "192.168.1.5:8080",
            "nas.home:8080",
            "NAS.home",
            "bt.example.org:8080",
        ] {
            assert!(host_allowed(ok, lan, names), "{ok}");
        }
        for bad in [
            "192.168.1.6:8080",
            "nas.home.evil.example",
            "example.org",
            "evil.example",
        ] {
            assert!(!host_allowed(bad, lan, names), "{bad}");
        }
        assert!(
            host_allowed("anything.example", lan, "*"),
            "qBittorrent's *"
        );
        let mapped: SocketAddr = "[::ffff:192.168.1.5]:8080".parse().unwrap();
        assert!(host_allowed("192.168.1.5:8080", mapped, ""));
    }

    #[test]
    fn wildcards_match_runs_of_characters() {
        assert!(wildcard_match("*", ""));
        assert!(wildcard_match("a*c", "abbbc"));
        assert!(wildcard_match("*.b.c", "x.y.b.c"));
        assert!(!wildcard_match("*.b.c", "b.c"));
        assert!(!wildcard_match("a*c", "ab"));
        assert!(wildcard_match("a*b*c", "aXbYc"));
        assert!(!wildcard_match("a*b*c", "aXcYb"));
        assert!(!wildcard_match("ab", "abc"));
    }

    #[test]
    fn other_sites_are_cross_site() {
        assert!(!cross_site("http://127.0.0.1:8080", "127.0.0.1:8080"));
        assert!(!cross_site("http://127.0.0.1:8080/page", "127.0.0.1:8080"));
        assert!(!cross_site("null", "127.0.0.1:8080"));
        assert!(cross_site("http://evil.example", "127.0.0.1:8080"));
        assert!(cross_site("http://127.0.0.1:8081", "127.0.0.1:8080"));
        assert!(cross_site("garbage", "127.0.0.1:8080"));
    }

    #[test]
    fn endpoint_values_are_read_or_refused() {
        let p = form_pairs(b"id=1|2|x&peers=10.0.0.1:5|[::1]:6|::2|junk&ratioLimit=1.5&seedingTimeLimit=60&hashes=all");
        assert!(file_ids(&p).is_err());
        let ips: Vec<String> = peer_ips(&p).iter().map(ToString::to_string).collect();
        assert_eq!(ips, ["10.0.0.1", "::1", "::2"]);
        assert_eq!(share_limits(&p), Some((1.5, 60, -2)));
        assert_eq!(hash_list(&p), Hashes::All);
        let p = form_pairs(b"id=3|4&hash=zz|0123456789abcdef0123456789abcdef01234567");
        assert_eq!(file_ids(&p), Ok(vec![3, 4]));
        assert!(matches!(hash_list(&p), Hashes::These(h) if h.len() == 1));
        assert_eq!(share_limits(&p), None);
    }
}
