//! Tracker edits of the Web API (`torrents/addTrackers`, `editTracker`,
//! `removeTrackers`, `reannounce`): the list changes here, the daemon persists it and the
//! engine announces to the new list at once.

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::Response;

use super::{error_response, hashes, list_param, ok, one_hash, text, with_params, ApiState};
use crate::DaemonError;

/// Why a tracker edit was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EditError {
    /// The new URL is not an http, https or udp URL.
    Invalid(String),
    /// The URL to replace or remove is not in the list.
    Missing,
    /// The new URL is already in the list.
    Exists,
}

/// Whether `url` can be announced to: an http, https or udp URL with a host.
pub fn valid_url(url: &str) -> bool {
    let Some((scheme, rest)) = url.split_once("://") else {
        return false;
    };
    matches!(
        scheme.to_ascii_lowercase().as_str(),
        "http" | "https" | "udp"
    ) && !rest.is_empty()
        && !rest.starts_with('/')
        && !url.chars().any(char::is_whitespace)
}

/// Adds each URL not already present as a tier of its own, after the others (as
/// qBittorrent does); invalid ones are skipped.
pub fn add_urls(tiers: &mut Vec<Vec<String>>, urls: &[String]) {
    for url in urls {
        if valid_url(url) && !tiers.iter().flatten().any(|u| u == url) {
            tiers.push(vec![url.clone()]);
        }
    }
}

/// Replaces `orig` with `new` in place (same tier).
pub fn edit_url(tiers: &mut [Vec<String>], orig: &str, new: &str) -> Result<(), EditError> {
    if !valid_url(new) {
        return Err(EditError::Invalid(new.to_string()));
    }
    if tiers.iter().flatten().any(|u| u == new) {
        return Err(EditError::Exists);
    }
    let slot = tiers
        .iter_mut()
        .flatten()
        .find(|u| *u == orig)
        .ok_or(EditError::Missing)?;
    *slot = new.to_string();
    Ok(())
}

/// Removes these URLs; refused if none of them is in the list.
pub fn remove_urls(tiers: &mut Vec<Vec<String>>, urls: &[String]) -> Result<(), EditError> {
    let before: usize = tiers.iter().map(Vec::len).sum();
    for tier in tiers.iter_mut() {
        tier.retain(|u| !urls.contains(u));
    }
    tiers.retain(|t| !t.is_empty());
    let after: usize = tiers.iter().map(Vec::len).sum();
    if after == before {
        return Err(EditError::Missing);
    }
    Ok(())
}

fn refused(e: EditError) -> DaemonError {
    DaemonError::Invalid(match e {
        EditError::Invalid(u) => format!("invalid tracker URL {u:?}"),
        EditError::Missing => "tracker not found".into(),
        EditError::Exists => "the new URL is already a tracker of this torrent".into(),
    })
}

fn edit_response(result: Result<(), DaemonError>, missing: StatusCode) -> Response {
    match result {
        Ok(()) => ok(),
        Err(DaemonError::Invalid(m)) if m.starts_with("invalid") => {
            text(StatusCode::BAD_REQUEST, m)
        }
        Err(DaemonError::Invalid(m)) if m.starts_with("tracker not found") => text(missing, m),
        Err(DaemonError::Invalid(m)) => text(StatusCode::CONFLICT, m),
        Err(e) => error_response(e),
    }
}

/// `torrents/reannounce`.
pub async fn reannounce(State(s): State<ApiState>, req: Request) -> Response {
    with_params(s, req, |s, p| async move {
        s.daemon.reannounce(&hashes(&s, &p));
        ok()
    })
    .await
}

/// `torrents/addTrackers`: `hash`, `urls` one per line.
pub async fn add(State(s): State<ApiState>, req: Request) -> Response {
    with_params(s, req, |s, p| async move {
        let hash = match one_hash(&p) {
            Ok(h) => h,
            Err(r) => return r,
        };
        // One per line; `list_param` trims the `\r` of CRLF lines.
        let urls = list_param(&p, "urls", '\n');
        let result = s
            .daemon
            .edit_trackers(&hash, |tiers| {
                add_urls(tiers, &urls);
                Ok(())
            })
            .await;
        edit_response(result, StatusCode::CONFLICT)
    })
    .await
}

/// `torrents/editTracker`: `hash`, `origUrl`, `newUrl`.
pub async fn edit(State(s): State<ApiState>, req: Request) -> Response {
    with_params(s, req, |s, p| async move {
        let hash = match one_hash(&p) {
            Ok(h) => h,
            Err(r) => return r,
        };
        let (Some(orig), Some(new)) = (p.get("origUrl"), p.get("newUrl")) else {
            return text(StatusCode::BAD_REQUEST, "origUrl and newUrl are required");
        };
        let (orig, new) = (orig.trim().to_string(), new.trim().to_string());
        let result = s
            .daemon
            .edit_trackers(&hash, |tiers| edit_url(tiers, &orig, &new).map_err(refused))
            .await;
        edit_response(result, StatusCode::CONFLICT)
    })
    .await
}

/// `torrents/removeTrackers`: `hash`, `urls` separated by `|`.
pub async fn remove(State(s): State<ApiState>, req: Request) -> Response {
    with_params(s, req, |s, p| async move {
        let hash = match one_hash(&p) {
            Ok(h) => h,
            Err(r) => return r,
        };
        let urls = list_param(&p, "urls", '|');
        let result = s
            .daemon
            .edit_trackers(&hash, |tiers| remove_urls(tiers, &urls).map_err(refused))
            .await;
        edit_response(result, StatusCode::CONFLICT)
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiers(t: &[&[&str]]) -> Vec<Vec<String>> {
        t.iter()
            .map(|tier| tier.iter().map(|u| u.to_string()).collect())
            .collect()
    }

    #[test]
    fn urls_must_be_http_https_or_udp_with_a_host() {
        assert!(valid_url("http://t.example/announce"));
        assert!(valid_url("udp://t.example:6969"));
        assert!(!valid_url("ftp://t.example/"));
        assert!(!valid_url("http:///announce"));
        assert!(!valid_url("http://a b/"));
        assert!(!valid_url("t.example"));
    }

    #[test]
    fn added_urls_get_tiers_of_their_own_and_duplicates_are_skipped() {
        let mut t = tiers(&[&["http://a/announce"]]);
        add_urls(
            &mut t,
            &[
                "http://a/announce".into(),
                "udp://b:1".into(),
                "junk".into(),
            ],
        );
        assert_eq!(t, tiers(&[&["http://a/announce"], &["udp://b:1"]]));
    }

    #[test]
    fn an_edit_keeps_the_tier_and_refuses_missing_duplicate_or_invalid_urls() {
        let mut t = tiers(&[&["http://a/", "http://b/"], &["http://c/"]]);
        edit_url(&mut t, "http://b/", "http://d/").unwrap();
        assert_eq!(t, tiers(&[&["http://a/", "http://d/"], &["http://c/"]]));
        assert_eq!(
            edit_url(&mut t, "http://x/", "http://y/"),
            Err(EditError::Missing)
        );
        assert_eq!(
            edit_url(&mut t, "http://a/", "http://c/"),
            Err(EditError::Exists)
        );
        assert!(matches!(
            edit_url(&mut t, "http://a/", "nope"),
            Err(EditError::Invalid(_))
        ));
    }

    #[test]
    fn removing_drops_empty_tiers_and_refuses_when_nothing_matches() {
        let mut t = tiers(&[&["http://a/"], &["http://b/", "http://c/"]]);
        remove_urls(&mut t, &["http://a/".into(), "http://c/".into()]).unwrap();
        assert_eq!(t, tiers(&[&["http://b/"]]));
        assert_eq!(
            remove_urls(&mut t, &["http://z/".into()]),
            Err(EditError::Missing)
        );
    }
}
