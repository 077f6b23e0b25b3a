//! One client for every tracker URL: picks HTTP(S) or UDP by the scheme.

use std::collections::HashMap;

use bt_meta::InfoHash;

use crate::announce::{AnnounceRequest, AnnounceResponse, ScrapeStats};
use crate::error::{Error, Result};
use crate::http::{HttpConfig, HttpTracker};
use crate::udp::{UdpConfig, UdpTracker};

/// Settings for both kinds of tracker.
#[derive(Clone, Debug, Default)]
pub struct TrackerConfig {
    /// HTTP(S) limits.
    pub http: HttpConfig,
    /// UDP timing.
    pub udp: UdpConfig,
}

/// Which protocol a tracker URL speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scheme {
    /// `http://` or `https://`.
    Http,
    /// `udp://`.
    Udp,
}

impl Scheme {
    /// The scheme of `url`, or [`Error::UnsupportedScheme`].
    pub fn of(url: &str) -> Result<Self> {
        let lower = url.get(..8).unwrap_or(url).to_ascii_lowercase();
        if lower.starts_with("http://") || lower.starts_with("https://") {
            Ok(Scheme::Http)
        } else if lower.starts_with("udp://") {
            Ok(Scheme::Udp)
        } else {
            Err(Error::UnsupportedScheme {
                url: url.to_owned(),
            })
        }
    }
}

/// Announces and scrapes to any `http://`, `https://` or `udp://` tracker.
/// Cheap to clone (the UDP connection-id cache is shared between clones).
#[derive(Clone, Debug, Default)]
pub struct TrackerClient {
    http: HttpTracker,
    udp: UdpTracker,
}

impl TrackerClient {
    /// A client with these settings.
    pub fn new(config: TrackerConfig) -> Self {
        Self {
            http: HttpTracker::new(config.http),
            udp: UdpTracker::new(config.udp),
        }
    }

    /// Announces to `url`.
    pub async fn announce(&self, url: &str, req: &AnnounceRequest) -> Result<AnnounceResponse> {
        match Scheme::of(url)? {
            Scheme::Http => self.http.announce(url, req).await,
            Scheme::Udp => self.udp.announce(url, req).await,
        }
    }

    /// Scrapes `hashes` from the tracker whose announce URL is `url`.
    pub async fn scrape(
        &self,
        url: &str,
        hashes: &[InfoHash],
    ) -> Result<HashMap<InfoHash, ScrapeStats>> {
        match Scheme::of(url)? {
            Scheme::Http => self.http.scrape(url, hashes).await,
            Scheme::Udp => self.udp.scrape(url, hashes).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scheme_by_prefix() {
        assert_eq!(Scheme::of("http://a/announce").unwrap(), Scheme::Http);
        assert_eq!(Scheme::of("HTTPS://a/announce").unwrap(), Scheme::Http);
        assert_eq!(Scheme::of("udp://a:1").unwrap(), Scheme::Udp);
        assert_eq!(
            Scheme::of("wss://a").unwrap_err().to_string(),
            "unsupported tracker url scheme in \"wss://a\""
        );
        assert!(Scheme::of("").is_err());
    }

    /// Announce and scrape futures can go to `tokio::spawn` (compile-time check).
    #[test]
    fn futures_are_send() {
        fn assert_send<T: Send>(_: &T) {}
        let client = TrackerClient::default();
        let req = AnnounceRequest::new(InfoHash([1; 20]), bt_meta::PeerId([2; 20]), 6881);
        for url in ["udp://127.0.0.1:1", "http://127.0.0.1:1/announce"] {
            assert_send(&client.announce(url, &req));
            assert_send(&client.scrape(url, &[]));
        }
    }
}
