//! Multitracker tiers (BEP 12): shuffled once, walked in order until a tracker
//! answers, the one that answered moved to the front of its tier.

use std::future::Future;

use rand::seq::SliceRandom;
use rand::Rng;

use crate::announce::{AnnounceRequest, AnnounceResponse};
use crate::client::TrackerClient;
use crate::error::Error;

/// A torrent's trackers as tiers of URLs, in the order to try them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Tiers {
    tiers: Vec<Vec<String>>,
}

/// The outcome of walking the tiers: who answered (if anyone) and every failure on the way.
#[derive(Debug)]
pub struct Walk<T> {
    /// The URL that answered and its answer; `None` when every tracker failed.
    pub answered: Option<(String, T)>,
    /// Each tracker tried before that, with its error, in the order tried.
    pub errors: Vec<(String, Error)>,
}

impl Tiers {
    /// The tiers of a torrent: `announce-list` with each tier shuffled by `rng`,
    /// or `announce` alone when the list is absent or holds no URL (BEP 12).
    /// Blank URLs, empty tiers and repeated URLs are dropped.
    pub fn new(announce: Option<&str>, announce_list: &[Vec<String>], rng: &mut impl Rng) -> Self {
        let mut seen = std::collections::HashSet::new();
        let mut tiers: Vec<Vec<String>> = announce_list
            .iter()
            .map(|tier| {
                tier.iter()
                    .map(|u| u.trim())
                    .filter(|u| !u.is_empty() && seen.insert(u.to_string()))
                    .map(str::to_owned)
                    .collect::<Vec<_>>()
            })
            .filter(|t| !t.is_empty())
            .collect();
        if tiers.is_empty() {
            tiers = announce
                .map(str::trim)
                .filter(|u| !u.is_empty())
                .map(|u| vec![vec![u.to_owned()]])
                .unwrap_or_default();
        }
        for tier in &mut tiers {
            tier.shuffle(rng);
        }
        Self { tiers }
    }

    /// Tiers taken as given, in this order (no shuffle), for trackers the user named.
    pub fn from_tiers(tiers: Vec<Vec<String>>) -> Self {
        Self {
            tiers: tiers.into_iter().filter(|t| !t.is_empty()).collect(),
        }
    }

    /// The tiers in their current order.
    pub fn tiers(&self) -> &[Vec<String>] {
        &self.tiers
    }

    /// Every URL in the order a walk tries them.
    pub fn urls(&self) -> impl Iterator<Item = &str> {
        self.tiers.iter().flatten().map(String::as_str)
    }

    /// Whether there is no tracker at all.
    pub fn is_empty(&self) -> bool {
        self.tiers.is_empty()
    }

    /// Moves `url` to the front of its tier (BEP 12: a tracker that answered is tried first next time).
    pub fn promote(&mut self, url: &str) {
        for tier in &mut self.tiers {
            if let Some(i) = tier.iter().position(|u| u == url) {
                tier[..=i].rotate_right(1); // ok: i < tier.len()
                return;
            }
        }
    }

    /// Calls `ask` on each URL in order until one succeeds; that URL is promoted.
    pub async fn walk<T, F, Fut>(&mut self, mut ask: F) -> Walk<T>
    where
        F: FnMut(String) -> Fut,
        Fut: Future<Output = Result<T, Error>>,
    {
        let mut errors = Vec::new();
        let urls: Vec<String> = self.urls().map(str::to_owned).collect();
        for url in urls {
            match ask(url.clone()).await {
                Ok(answer) => {
                    self.promote(&url);
                    return Walk {
                        answered: Some((url, answer)),
                        errors,
                    };
                }
                Err(e) => {
                    tracing::debug!(%url, error = %e, "tracker failed");
                    errors.push((url, e));
                }
            }
        }
        Walk {
            answered: None,
            errors,
        }
    }

    /// Announces through `client`, walking the tiers until a tracker answers.
    pub async fn announce(
        &mut self,
        client: &TrackerClient,
        req: &AnnounceRequest,
    ) -> Walk<AnnounceResponse> {
        self.walk(|url| async move { client.announce(&url, req).await })
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    fn list(tiers: &[&[&str]]) -> Vec<Vec<String>> {
        tiers
            .iter()
            .map(|t| t.iter().map(|s| s.to_string()).collect())
            .collect()
    }

    fn block_on<F: Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(f)
    }

    #[test]
    fn announce_alone_without_list() {
        let mut rng = StdRng::seed_from_u64(1);
        let t = Tiers::new(Some("http://a/announce"), &[], &mut rng);
        assert_eq!(t.tiers(), list(&[&["http://a/announce"]]));
        let t = Tiers::new(Some("http://a/announce"), &list(&[&[""], &[]]), &mut rng);
        assert_eq!(t.tiers(), list(&[&["http://a/announce"]]));
        assert!(Tiers::new(None, &[], &mut rng).is_empty());
        assert!(Tiers::new(Some(" "), &[], &mut rng).is_empty());
    }

    #[test]
    fn list_wins_over_announce_and_each_tier_is_shuffled_in_place() {
        let tiers = list(&[&["a", "b", "c", "d", "e", "f"], &["x", "y"]]);
        let mut orders = std::collections::HashSet::new();
        for seed in 0..20 {
            let t = Tiers::new(Some("ignored"), &tiers, &mut StdRng::seed_from_u64(seed));
            assert_eq!(t.tiers().len(), 2);
            let mut first = t.tiers()[0].clone();
            orders.insert(first.clone());
            first.sort();
            assert_eq!(first, tiers[0], "a tier keeps its members");
            assert!(!t.urls().any(|u| u == "ignored"));
        }
        assert!(
            orders.len() > 1,
            "shuffling changes the order for some seed"
        );
        // The same seed gives the same order.
        let a = Tiers::new(None, &tiers, &mut StdRng::seed_from_u64(7));
        let b = Tiers::new(None, &tiers, &mut StdRng::seed_from_u64(7));
        assert_eq!(a, b);
    }

    #[test]
    fn duplicates_and_blanks_are_dropped() {
        let t = Tiers::new(
            None,
            &list(&[&["a", " a ", ""], &["a"], &["b"]]),
            &mut StdRng::seed_from_u64(0),
        );
        assert_eq!(t.tiers(), list(&[&["a"], &["b"]]));
    }

    #[test]
    fn promote_moves_to_front_of_its_tier_only() {
        let mut t = Tiers::from_tiers(list(&[&["a", "b", "c"], &["d", "e"]]));
        t.promote("c");
        assert_eq!(t.tiers(), list(&[&["c", "a", "b"], &["d", "e"]]));
        t.promote("e");
        assert_eq!(t.tiers(), list(&[&["c", "a", "b"], &["e", "d"]]));
        t.promote("c");
        t.promote("zzz");
        assert_eq!(t.tiers(), list(&[&["c", "a", "b"], &["e", "d"]]));
    }

    #[test]
    fn walk_tries_in_order_and_stops_at_first_answer() {
        let mut t = Tiers::from_tiers(list(&[&["a", "b"], &["c", "d"], &["e"]]));
        let mut asked = Vec::new();
        let walk = block_on(t.walk(|url| {
            asked.push(url.clone());
            async move {
                if url == "d" {
                    Ok(42)
                } else {
                    Err(Error::NoTrackers)
                }
            }
        }));
        assert_eq!(asked, ["a", "b", "c", "d"]);
        assert_eq!(walk.answered, Some(("d".to_string(), 42)));
        let failed: Vec<&str> = walk.errors.iter().map(|(u, _)| u.as_str()).collect();
        assert_eq!(failed, ["a", "b", "c"]);
        assert_eq!(t.tiers(), list(&[&["a", "b"], &["d", "c"], &["e"]]));
    }

    #[test]
    fn walk_with_no_answer_reports_every_error() {
        let mut t = Tiers::from_tiers(list(&[&["a"], &["b"]]));
        let walk: Walk<()> = block_on(t.walk(|_| async { Err(Error::NoTrackers) }));
        assert!(walk.answered.is_none());
        assert_eq!(walk.errors.len(), 2);
        assert_eq!(t.tiers(), list(&[&["a"], &["b"]]));
    }
}
