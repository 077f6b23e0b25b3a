//! The Transmission RPC façade at `/transmission/rpc`, in the legacy request format that
//! `transmission-remote` 3.00 and the clients of its era speak: a JSON object with
//! `method`, `arguments` and `tag`, answered with `result`, `arguments` and the same `tag`.
//!
//! Like the qBittorrent façade it holds no torrent state: every method is a call on the
//! [`Daemon`] and every answer is read from its snapshot. What it keeps is its own: the
//! `X-Transmission-Session-Id` (a request without it is answered 409 with the id), and
//! Transmission's numeric torrent ids ([`ids::IdMap`]). When the daemon has a password,
//! requests carry the web UI's user name and password as HTTP Basic auth (401 otherwise);
//! the qBittorrent façade's guard checks `Host`, `Origin` and `Referer` first.
//!
//! - [`request`]: parsing a request and its `ids`;
//! - [`view`]: `torrent-get` fields, status codes, priorities and units;
//! - [`session`]: `session-get`/`session-set`/`session-stats` over [`Settings`];
//! - [`trackers`]: `torrent-set`'s tracker edits;
//! - `torrents`: `torrent-get`, `torrent-add`, `torrent-set`, `torrent-rename-path`.
//!
//! [`Settings`]: crate::Settings

pub mod ids;
pub mod request;
pub mod session;
mod torrents;
pub mod trackers;
pub mod view;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, MethodRouter};
use bt_meta::InfoHash;
use serde_json::{json, Map, Value};

use crate::daemon::{Daemon, DaemonError, Phase, QueueMove, TorrentSnapshot};
use crate::qbt::auth::{self, Auth, Verdict};
use ids::IdMap;
use request::{opt_bool, opt_str, opt_strings, RequestError, RpcRequest, Selector, TorrentRef};

/// Where the façade is mounted.
pub const PATH: &str = "/transmission/rpc";
/// The same with the trailing slash `transmission-remote` 3.00 sends.
pub const PATH_SLASH: &str = "/transmission/rpc/";
/// The header carrying the session id.
pub const SESSION_ID_HEADER: &str = "X-Transmission-Session-Id";

/// A torrent counts as recently active for this long after it last moved payload.
const ACTIVE_WINDOW: i64 = 60;

/// The façade's own state; clones share it.
#[derive(Clone)]
pub struct Rpc {
    inner: Arc<Inner>,
}

struct Inner {
    daemon: Daemon,
    session_id: String,
    ids: Mutex<IdMap>,
    auth: Arc<Auth>,
    /// The last `Authorization` header that passed, and the user name and stored password
    /// hash it passed against: PBKDF2 is slow on purpose, and clients send the header
    /// each time.
    accepted: Mutex<Option<(HeaderValue, String)>>,
    started: Instant,
    /// Torrents added through this façade since the daemon started.
    added: Mutex<u64>,
}

/// Whether `path` is the façade's.
pub fn is_rpc_path(path: &str) -> bool {
    path == PATH || path == PATH_SLASH
}

/// The route serving [`PATH`] and [`PATH_SLASH`] (one value, cloned, so both share the
/// session id and the torrent ids); `qbt::router` mounts it behind its guard.
pub fn service(daemon: Daemon, auth: Arc<Auth>) -> MethodRouter {
    any(handle)
        .with_state(Rpc::new(daemon, auth))
        .layer(axum::extract::DefaultBodyLimit::max(
            request::MAX_REQUEST_LEN,
        ))
}

impl Rpc {
    /// The façade over `daemon`, with a fresh session id, checking logins with `auth`.
    pub fn new(daemon: Daemon, auth: Arc<Auth>) -> Rpc {
        let session_id = auth::new_sid();
        Rpc {
            inner: Arc::new(Inner {
                daemon,
                session_id,
                ids: Mutex::new(IdMap::default()),
                auth,
                accepted: Mutex::new(None),
                started: Instant::now(),
                added: Mutex::new(0),
            }),
        }
    }

    fn daemon(&self) -> &Daemon {
        &self.inner.daemon
    }

    /// Numbers new torrents and notes removed ones; returns the snapshot it used.
    fn sync_ids(&self) -> Vec<TorrentSnapshot> {
        let mut all = self.daemon().snapshot();
        all.sort_by_key(|t| (t.record.added_on, t.record.queue_position));
        let hashes: Vec<InfoHash> = all.iter().map(|t| t.record.info_hash).collect();
        self.ids().sync(&hashes, Instant::now());
        all
    }

    fn ids(&self) -> std::sync::MutexGuard<'_, IdMap> {
        self.inner.ids.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The torrents `sel` names, in id order.
    fn select(&self, sel: &Selector) -> Vec<(u64, TorrentSnapshot)> {
        let all = self.sync_ids();
        let ids = self.ids();
        let now = unix_now();
        let mut out: Vec<(u64, TorrentSnapshot)> = all
            .into_iter()
            .filter_map(|t| ids.id(&t.record.info_hash).map(|id| (id, t)))
            .filter(|(id, t)| match sel {
                Selector::All => true,
                Selector::RecentlyActive => recently_active(t, now),
                Selector::Some(refs) => refs.iter().any(|r| match r {
                    TorrentRef::Id(n) => n == id,
                    TorrentRef::Hash(h) => *h == t.record.info_hash,
                }),
            })
            .collect();
        out.sort_by_key(|(id, _)| *id);
        out
    }

    /// The hashes of the torrents `args`' `ids` names.
    fn hashes(&self, args: &Map<String, Value>) -> Result<Vec<InfoHash>, RequestError> {
        let sel = request::selector(args)?;
        Ok(self
            .select(&sel)
            .into_iter()
            .map(|(_, t)| t.record.info_hash)
            .collect())
    }
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

fn recently_active(t: &TorrentSnapshot, now: i64) -> bool {
    t.stats
        .as_ref()
        .is_some_and(|s| s.download_rate > 0 || s.upload_rate > 0)
        || matches!(t.phase, Phase::Checking | Phase::Moving(_))
        || now - t.record.last_activity < ACTIVE_WINDOW
        || now - t.record.added_on < ACTIVE_WINDOW
}

/// A JSON answer.
fn reply(status: StatusCode, body: Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json; charset=UTF-8")],
        body.to_string(),
    )
        .into_response()
}

/// What a method gives: its arguments, or why it failed.
type Outcome = Result<Map<String, Value>, String>;

fn none() -> Outcome {
    Ok(Map::new())
}

impl From<RequestError> for String {
    fn from(e: RequestError) -> String {
        e.to_string()
    }
}

fn daemon_error(e: DaemonError) -> String {
    e.to_string()
}

async fn handle(
    State(rpc): State<Rpc>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Some(refused) = check_auth(&rpc, client, &headers).await {
        return refused;
    }
    let sent = headers.get(SESSION_ID_HEADER).and_then(|v| v.to_str().ok());
    if sent != Some(rpc.inner.session_id.as_str()) {
        return handshake(&rpc.inner.session_id);
    }
    let req = match request::parse(&body) {
        Ok(r) => r,
        Err(e) => {
            return reply(
                StatusCode::BAD_REQUEST,
                json!({"result": e.to_string(), "arguments": {}}),
            )
        }
    };
    let tag = req.tag.clone();
    let outcome = dispatch(&rpc, req).await;
    let mut body = match outcome {
        Ok(args) => json!({"result": "success", "arguments": args}),
        Err(e) => json!({"result": e, "arguments": {}}),
    };
    if let Some(tag) = tag {
        body["tag"] = tag;
    }
    reply(StatusCode::OK, body)
}

/// The 409 that tells a client the session id to send.
fn handshake(id: &str) -> Response {
    (
        StatusCode::CONFLICT,
        [
            (header::CONTENT_TYPE, "text/plain; charset=UTF-8"),
            (
                header::HeaderName::from_static("x-transmission-session-id"),
                id,
            ),
        ],
        format!("409: send the header {SESSION_ID_HEADER}: {id}\n"),
    )
        .into_response()
}

/// The user name and password of a `Basic` `Authorization` header.
pub fn basic_credentials(value: &str) -> Option<(String, String)> {
    use base64::Engine as _;
    let (scheme, rest) = value.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let raw = base64::engine::general_purpose::STANDARD
        .decode(rest.trim())
        .ok()?;
    let text = String::from_utf8(raw).ok()?;
    let (user, password) = text.split_once(':')?;
    Some((user.to_string(), password.to_string()))
}

/// `None` when the request may go on; otherwise the 401 (or 403 for a banned address).
async fn check_auth(rpc: &Rpc, client: SocketAddr, headers: &HeaderMap) -> Option<Response> {
    let settings = rpc.daemon().settings();
    if !auth::needs_login(&settings, client.ip()) {
        return None;
    }
    let banned = || {
        (
            StatusCode::FORBIDDEN,
            "403: banned after too many failed logins\n",
        )
            .into_response()
    };
    // A ban holds even for a header that passed before it.
    if rpc.inner.auth.is_banned(client.ip()) {
        return Some(banned());
    }
    // The credentials in force: a header checked against others must be checked again.
    let stored = format!(
        "{}\n{}",
        settings.web_ui_username,
        settings
            .web_ui_password_pbkdf2
            .as_deref()
            .unwrap_or_default()
    );
    let given = headers.get(header::AUTHORIZATION);
    if let (Some(given), Some((ok_header, ok_stored))) = (
        given,
        rpc.inner
            .accepted
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref(),
    ) {
        if given == ok_header && *ok_stored == stored {
            return None;
        }
    }
    let unauthorized = |why: &str| {
        (
            StatusCode::UNAUTHORIZED,
            [
                (header::CONTENT_TYPE, "text/plain; charset=UTF-8"),
                (header::WWW_AUTHENTICATE, "Basic realm=\"bt\""),
            ],
            format!("401: {why}\n"),
        )
            .into_response()
    };
    let Some((user, password)) = given
        .and_then(|v| v.to_str().ok())
        .and_then(basic_credentials)
    else {
        return Some(unauthorized(
            "this daemon needs the web UI's user name and password (HTTP Basic auth)",
        ));
    };
    let (inner, ip) = (Arc::clone(&rpc.inner), client.ip());
    let check_settings = settings.clone();
    let outcome = tokio::task::spawn_blocking(move || {
        inner.auth.verify(&check_settings, ip, &user, &password)
    })
    .await
    .unwrap_or(Verdict::Fail { banned: false });
    match outcome {
        Verdict::Pass => {
            if let Some(given) = given {
                *rpc.inner.accepted.lock().unwrap_or_else(|e| e.into_inner()) =
                    Some((given.clone(), stored));
            }
            None
        }
        Verdict::Fail { banned } => {
            crate::qbt::note_failed_login(rpc.daemon(), "Transmission RPC", client.ip(), banned);
            Some(unauthorized("wrong user name or password"))
        }
        Verdict::Banned => Some(banned()),
    }
}

async fn dispatch(rpc: &Rpc, req: RpcRequest) -> Outcome {
    let a = &req.arguments;
    let d = rpc.daemon();
    match req.method.as_str() {
        "session-get" => session_get(rpc, a),
        "session-set" => {
            let mut s = d.settings();
            session::set(&mut s, a)?;
            d.set_settings(s).map_err(daemon_error)?;
            none()
        }
        "session-stats" => Ok(session_stats(rpc)),
        "session-close" => {
            d.request_shutdown();
            none()
        }
        "free-space" => free_space(a),
        "port-test" => Err(format!(
            "port-test: bt cannot tell from inside whether port {} is reachable from the \
             internet; test it from another machine",
            d.peer_addr().port()
        )),
        "blocklist-update" => Err("blocklist-update: bt has no blocklist".into()),
        "torrent-get" => torrents::torrent_get(rpc, a).await,
        "torrent-add" => torrents::torrent_add(rpc, a).await,
        "torrent-start" => {
            d.start_torrents(&rpc.hashes(a)?)
                .await
                .map_err(daemon_error)?;
            none()
        }
        "torrent-start-now" => {
            d.set_force_start(&rpc.hashes(a)?, true)
                .await
                .map_err(daemon_error)?;
            none()
        }
        "torrent-stop" => {
            d.stop(&rpc.hashes(a)?).await.map_err(daemon_error)?;
            none()
        }
        "torrent-verify" => {
            d.recheck(&rpc.hashes(a)?).await.map_err(daemon_error)?;
            none()
        }
        "torrent-reannounce" => {
            // Only running torrents announce, as in Transmission.
            d.reannounce(&rpc.hashes(a)?);
            none()
        }
        "torrent-remove" => {
            let hashes = rpc.hashes(a)?;
            let delete = opt_bool(a, "delete-local-data")?.unwrap_or(false);
            d.remove(&hashes, delete).await.map_err(daemon_error)?;
            rpc.sync_ids();
            none()
        }
        "torrent-set" => torrents::torrent_set(rpc, a).await,
        "torrent-set-location" => {
            let hashes = rpc.hashes(a)?;
            let location = opt_str(a, "location")?
                .ok_or("torrent-set-location: no location")?
                .to_string();
            if opt_bool(a, "move")? != Some(true) {
                return Err("torrent-set-location: bt always moves the data; \
                            send move: true"
                    .into());
            }
            d.set_location(&hashes, std::path::Path::new(&location))
                .map_err(daemon_error)?;
            none()
        }
        "torrent-rename-path" => torrents::rename_path(rpc, a).await,
        "queue-move-top" => queue(rpc, a, QueueMove::Top),
        "queue-move-up" => queue(rpc, a, QueueMove::Up),
        "queue-move-down" => queue(rpc, a, QueueMove::Down),
        "queue-move-bottom" => queue(rpc, a, QueueMove::Bottom),
        other => Err(format!("method {other:?} is not known")),
    }
}

fn session_get(rpc: &Rpc, a: &Map<String, Value>) -> Outcome {
    let d = rpc.daemon();
    let settings = d.settings();
    let facts = session::Facts {
        peer_port: d.peer_addr().port(),
        free_space: crate::qbt::free_space(&settings.save_path),
        session_id: rpc.inner.session_id.clone(),
    };
    let mut all = session::get(&settings, &facts);
    if let Some(fields) = opt_strings(a, "fields")? {
        all.retain(|k, _| fields.iter().any(|f| f == k));
    }
    Ok(all)
}

fn session_stats(rpc: &Rpc) -> Map<String, Value> {
    let d = rpc.daemon();
    let all = rpc.sync_ids();
    let totals = d.totals();
    let active = all
        .iter()
        .filter(|t| {
            t.stats
                .as_ref()
                .is_some_and(|s| s.download_rate > 0 || s.upload_rate > 0)
        })
        .count();
    let stopped = all
        .iter()
        .filter(|t| view::status(t) == view::status::STOPPED)
        .count();
    let seconds = rpc.inner.started.elapsed().as_secs();
    let added = *rpc.inner.added.lock().unwrap_or_else(|e| e.into_inner());
    let cumulative = session::Period {
        uploaded: totals.uploaded,
        downloaded: totals.downloaded,
        files_added: all.len() as u64,
        seconds,
    };
    let current = session::Period {
        uploaded: totals.uploaded_session,
        downloaded: totals.downloaded_session,
        files_added: added,
        seconds,
    };
    match session::stats(&totals, all.len(), active, stopped, cumulative, current) {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

fn free_space(a: &Map<String, Value>) -> Outcome {
    let path = opt_str(a, "path")?.ok_or("free-space: no path")?;
    let stat = rustix::fs::statvfs(path).map_err(|e| format!("free-space: {path}: {e}"))?;
    let mut out = Map::new();
    out.insert("path".into(), json!(path));
    out.insert(
        "size-bytes".into(),
        json!(stat.f_bavail.saturating_mul(stat.f_frsize)),
    );
    out.insert(
        "total_size".into(),
        json!(stat.f_blocks.saturating_mul(stat.f_frsize)),
    );
    Ok(out)
}

fn queue(rpc: &Rpc, a: &Map<String, Value>, to: QueueMove) -> Outcome {
    rpc.daemon().move_in_queue(&rpc.hashes(a)?, to);
    none()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_credentials_are_decoded() {
        // "admin:secret pw"
        assert_eq!(
            basic_credentials("Basic YWRtaW46c2VjcmV0IHB3"),
            Some(("admin".into(), "secret pw".into()))
        );
        assert_eq!(
            basic_credentials("basic YTpiOmM="),
            Some(("a".into(), "b:c".into()))
        );
        assert_eq!(basic_credentials("Bearer abc"), None);
        assert_eq!(basic_credentials("Basic !!!"), None);
        assert_eq!(basic_credentials("Basic bm9jb2xvbg=="), None, "no colon");
    }

    #[test]
    fn the_handshake_carries_the_session_id() {
        let r = handshake("abc");
        assert_eq!(r.status(), StatusCode::CONFLICT);
        assert_eq!(r.headers()[SESSION_ID_HEADER], "abc");
    }
}
