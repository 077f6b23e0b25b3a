//! The web UI of `bt daemon`: an HTML page, a style sheet and plain JavaScript modules,
//! compiled into the binary ([`ASSETS`]) and served by [`router`] at `/`.
//!
//! The page talks only to the daemon's public qBittorrent Web API (`/api/v2/...`), so this
//! crate knows nothing of torrents: it serves bytes with their `Content-Type`, an `ETag`
//! and `Cache-Control: no-cache` (the browser revalidates and gets `304 Not Modified` while
//! nothing changed), and a `Content-Security-Policy` that allows only the page's own
//! scripts, styles and API. It does not check logins: the daemon's guard lets the assets
//! through without one ([`is_asset_path`]) and keeps the API behind it.

use std::sync::OnceLock;

use axum::http::{header, HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

/// One file of the UI: where it is served, its media type and its bytes.
#[derive(Debug)]
pub struct Asset {
    /// The URL path, `/` for the page itself.
    pub path: &'static str,
    /// The `Content-Type` it is served with.
    pub content_type: &'static str,
    /// Its contents.
    pub body: &'static [u8],
}

macro_rules! asset {
    ($path:literal, $file:literal, $type:expr) => {
        Asset {
            path: $path,
            content_type: $type,
            body: include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/assets/", $file)),
        }
    };
}

const JS: &str = "text/javascript; charset=utf-8";

/// Every file of the UI.
pub static ASSETS: &[Asset] = &[
    asset!("/", "index.html", "text/html; charset=utf-8"),
    asset!("/style.css", "style.css", "text/css; charset=utf-8"),
    asset!("/icon.svg", "icon.svg", "image/svg+xml"),
    asset!("/js/boot.js", "js/boot.js", JS),
    asset!("/js/main.js", "js/main.js", JS),
    asset!("/js/api.js", "js/api.js", JS),
    asset!("/js/store.js", "js/store.js", JS),
    asset!("/js/format.js", "js/format.js", JS),
    asset!("/js/dom.js", "js/dom.js", JS),
    asset!("/js/list.js", "js/list.js", JS),
    asset!("/js/columns.js", "js/columns.js", JS),
    asset!("/js/filters.js", "js/filters.js", JS),
    asset!("/js/toolbar.js", "js/toolbar.js", JS),
    asset!("/js/add-dialog.js", "js/add-dialog.js", JS),
    asset!("/js/delete-dialog.js", "js/delete-dialog.js", JS),
    asset!("/js/details.js", "js/details.js", JS),
    asset!("/js/files-tree.js", "js/files-tree.js", JS),
    asset!("/js/speed-graph.js", "js/speed-graph.js", JS),
    asset!("/js/settings.js", "js/settings.js", JS),
    asset!("/js/login.js", "js/login.js", JS),
    asset!("/js/theme.js", "js/theme.js", JS),
];

/// The page's policy: its own scripts, styles and API, images drawn from `data:`, never
/// framed by another site.
const CSP: &str = "default-src 'self'; img-src 'self' data:; style-src 'self'; \
                   script-src 'self'; connect-src 'self'; object-src 'none'; \
                   base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// Whether `path` is one of the UI's files (the daemon serves them without a login).
pub fn is_asset_path(path: &str) -> bool {
    find(path).is_some()
}

fn find(path: &str) -> Option<usize> {
    let path = if path == "/index.html" { "/" } else { path };
    ASSETS.iter().position(|a| a.path == path)
}

/// The `ETag` of each asset, by its index in [`ASSETS`]: FNV-1a of its bytes.
fn etags() -> &'static [String] {
    static TAGS: OnceLock<Vec<String>> = OnceLock::new();
    TAGS.get_or_init(|| {
        ASSETS
            .iter()
            .map(|a| {
                let hash = a.body.iter().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
                    (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
                });
                format!("\"{hash:016x}\"")
            })
            .collect()
    })
}

/// The router that serves [`ASSETS`] (GET and HEAD); merge it into the API's, whatever
/// that router's state.
pub fn router<S: Clone + Send + Sync + 'static>() -> Router<S> {
    let mut router = Router::new();
    for asset in ASSETS {
        router = router.route(asset.path, get(serve));
    }
    router.route("/index.html", get(serve))
}

async fn serve(uri: Uri, headers: HeaderMap) -> Response {
    let Some(i) = find(uri.path()) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let (asset, etag) = (&ASSETS[i], &etags()[i]);
    let fresh = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"));
    let common = [
        (header::ETAG, HeaderValue::from_str(etag).ok()),
        (
            header::CACHE_CONTROL,
            Some(HeaderValue::from_static("no-cache")),
        ),
        (
            header::CONTENT_SECURITY_POLICY,
            Some(HeaderValue::from_static(CSP)),
        ),
        (
            header::X_CONTENT_TYPE_OPTIONS,
            Some(HeaderValue::from_static("nosniff")),
        ),
        (
            header::REFERRER_POLICY,
            Some(HeaderValue::from_static("same-origin")),
        ),
    ];
    let mut response = if fresh {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        ([(header::CONTENT_TYPE, asset.content_type)], asset.body).into_response()
    };
    for (name, value) in common {
        if let Some(value) = value {
            response.headers_mut().insert(name, value);
        }
    }
    response
}

#[cfg(test)]
mod tests;
