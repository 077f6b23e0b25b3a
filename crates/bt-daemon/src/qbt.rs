//! The qBittorrent Web API v2 façade, under `/api/v2/`, as the *arr apps, Flood,
//! VueTorrent and the `qbittorrent-api` package speak it: the same endpoint names,
//! parameters (query string or form body), response shapes and status codes.
//!
//! Read endpoints answer GET and POST; endpoints that change anything answer POST only
//! (405 otherwise), as qBittorrent does. Endpoints not listed in [`router`] answer 404.

pub mod auth;
pub mod peers;
pub mod preferences;
pub mod request;
pub mod sync;
pub mod trackers;
pub mod view;

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::{ConnectInfo, FromRequest, Multipart, Request, State};
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, post};
use axum::{Json, Router};
use bt_meta::InfoHash;
use serde_json::{json, Map, Value};

use crate::daemon::{AddOptions, Daemon, DaemonError, Source};
use sync::{Small, SyncTable};

/// The qBittorrent version bt answers `app/version` with: the release whose Web API
/// (2.11) bt follows.
pub const QBT_VERSION: &str = "v5.0.0";
/// The Web API version bt implements.
pub const WEBAPI_VERSION: &str = "2.11.2";

/// Largest `.torrent` fetched from a URL, and the default `torrent_file_size_limit`.
pub const MAX_BODY: usize = 32 << 20;

/// What every handler shares.
#[derive(Clone)]
pub struct ApiState {
    daemon: Daemon,
    api_addr: SocketAddr,
    sync: Arc<Mutex<SyncTable>>,
    auth: Arc<auth::Auth>,
}

use request::{flag, form_pairs, limit_param, list_param, Params};

fn text(status: StatusCode, body: impl Into<String>) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=UTF-8")],
        body.into(),
    )
        .into_response()
}

fn ok() -> Response {
    text(StatusCode::OK, "Ok.")
}

fn error_response(e: DaemonError) -> Response {
    match e {
        DaemonError::NotFound(_) => text(StatusCode::NOT_FOUND, "Torrent hash was not found"),
        DaemonError::Category(m) => text(StatusCode::CONFLICT, m),
        DaemonError::Invalid(m) => text(StatusCode::BAD_REQUEST, m),
        DaemonError::InvalidTorrent(m) => text(StatusCode::UNSUPPORTED_MEDIA_TYPE, m),
        other => text(StatusCode::INTERNAL_SERVER_ERROR, other.to_string()),
    }
}

/// Reads the query string and, for a form POST, the body.
async fn params(req: Request) -> Result<Params, Response> {
    let mut out: Params = req
        .uri()
        .query()
        .map(|q| form_pairs(q.as_bytes()))
        .unwrap_or_default();
    let is_form = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    if req.method() == Method::POST && is_form {
        let body = Bytes::from_request(req, &())
            .await
            .map_err(IntoResponse::into_response)?;
        out.extend(form_pairs(&body));
    }
    Ok(out)
}

/// The torrents named by `hashes` (see [`request::hash_list`]).
fn hashes(state: &ApiState, p: &Params) -> Vec<InfoHash> {
    match request::hash_list(p) {
        request::Hashes::All => state.daemon.hashes(),
        request::Hashes::These(list) => list,
    }
}

fn one_hash(p: &Params) -> Result<InfoHash, Response> {
    let h = p
        .get("hash")
        .ok_or_else(|| text(StatusCode::BAD_REQUEST, "missing parameter: hash"))?;
    InfoHash::from_hex(h.trim())
        .ok_or_else(|| text(StatusCode::NOT_FOUND, "Torrent hash was not found"))
}

/// Every endpoint of the qBittorrent façade, under `/api/v2/`, with its handler.
fn routes() -> Vec<(&'static str, axum::routing::MethodRouter<ApiState>)> {
    vec![
        ("auth/login", post(login)),
        ("auth/logout", post(logout)),
        ("app/version", any(app_version)),
        ("app/webapiVersion", any(webapi_version)),
        ("app/buildInfo", any(build_info)),
        ("app/preferences", any(preferences)),
        ("app/setPreferences", post(set_preferences)),
        ("app/defaultSavePath", any(default_save_path)),
        ("app/shutdown", post(shutdown)),
        ("log/main", any(log_main)),
        ("sync/maindata", any(maindata)),
        ("sync/torrentPeers", any(torrent_peers)),
        ("transfer/info", any(transfer_info)),
        ("transfer/speedLimitsMode", any(speed_limits_mode)),
        (
            "transfer/toggleSpeedLimitsMode",
            post(toggle_speed_limits_mode),
        ),
        ("transfer/setSpeedLimitsMode", post(set_speed_limits_mode)),
        ("transfer/downloadLimit", any(global_download_limit)),
        ("transfer/uploadLimit", any(global_upload_limit)),
        ("transfer/setDownloadLimit", post(set_global_download_limit)),
        ("transfer/setUploadLimit", post(set_global_upload_limit)),
        ("torrents/downloadLimit", any(torrent_download_limit)),
        ("torrents/uploadLimit", any(torrent_upload_limit)),
        (
            "torrents/setDownloadLimit",
            post(set_torrent_download_limit),
        ),
        ("torrents/setUploadLimit", post(set_torrent_upload_limit)),
        ("torrents/info", any(torrents_info)),
        ("torrents/count", any(torrents_count)),
        ("torrents/properties", any(properties)),
        ("torrents/trackers", any(trackers)),
        ("torrents/webseeds", any(webseeds)),
        ("torrents/files", any(files)),
        ("torrents/add", post(add)),
        ("torrents/delete", post(delete)),
        ("torrents/stop", post(stop)),
        ("torrents/pause", post(stop)),
        ("torrents/start", post(start)),
        ("torrents/resume", post(start)),
        ("torrents/recheck", post(recheck)),
        ("torrents/setCategory", post(set_category)),
        ("torrents/categories", any(categories)),
        ("torrents/createCategory", post(create_category)),
        ("torrents/editCategory", post(edit_category)),
        ("torrents/removeCategories", post(remove_categories)),
        ("torrents/tags", any(tags)),
        ("torrents/createTags", post(create_tags)),
        ("torrents/deleteTags", post(delete_tags)),
        ("torrents/addTags", post(add_tags)),
        ("torrents/removeTags", post(remove_tags)),
        ("torrents/addPeers", post(add_peers)),
        ("torrents/filePrio", post(file_prio)),
        ("torrents/setLocation", post(set_location)),
        ("torrents/rename", post(rename)),
        ("torrents/pieceStates", any(piece_states)),
        ("torrents/pieceHashes", any(piece_hashes)),
        ("torrents/toggleSequentialDownload", post(toggle_sequential)),
        ("torrents/toggleFirstLastPiecePrio", post(toggle_first_last)),
        ("torrents/setForceStart", post(set_force_start)),
        ("torrents/setShareLimits", post(set_share_limits)),
        ("torrents/topPrio", post(top_prio)),
        ("torrents/bottomPrio", post(bottom_prio)),
        ("torrents/increasePrio", post(increase_prio)),
        ("torrents/decreasePrio", post(decrease_prio)),
        ("torrents/reannounce", post(trackers::reannounce)),
        ("torrents/addTrackers", post(trackers::add)),
        ("torrents/editTracker", post(trackers::edit)),
        ("torrents/removeTrackers", post(trackers::remove)),
        ("torrents/setAutoManagement", post(set_auto_management)),
        ("torrents/renameFile", post(rename_file)),
        ("torrents/renameFolder", post(rename_folder)),
        ("transfer/banPeers", post(ban_peers)),
    ]
}

/// Every path the API answers: the qBittorrent endpoints and the Transmission RPC.
pub fn endpoints() -> Vec<String> {
    routes()
        .into_iter()
        .map(|(path, _)| format!("/api/v2/{path}"))
        .chain([
            crate::trpc::PATH.to_string(),
            crate::trpc::PATH_SLASH.to_string(),
        ])
        .collect()
}

/// The router for the API, state included.
pub fn router(daemon: Daemon, api_addr: SocketAddr) -> Router {
    let state = ApiState {
        daemon,
        api_addr,
        sync: Arc::new(Mutex::new(SyncTable::default())),
        auth: Arc::new(auth::Auth::default()),
    };
    let rpc = crate::trpc::service(state.daemon.clone(), Arc::clone(&state.auth));
    let mut app = Router::new();
    for (path, handler) in routes() {
        app = app.route(&format!("/api/v2/{path}"), handler);
    }
    app.route_service(crate::trpc::PATH, rpc.clone())
        .route_service(crate::trpc::PATH_SLASH, rpc)
        .merge(bt_webui::router())
        // The guard bounds bodies by the settings instead.
        .layer(axum::extract::DefaultBodyLimit::disable())
        .layer(middleware::from_fn_with_state(state.clone(), guard))
        .with_state(state)
}

/// Why the API will not listen on an address.
#[derive(Debug, thiserror::Error)]
#[error(
    "the API address {0} is not a loopback address and no password is set: anyone who \
     reaches it could control the daemon's files; set one first (app/setPreferences \
     web_ui_password on a loopback API) or listen on 127.0.0.1 or ::1"
)]
pub struct ExposedApi(pub SocketAddr);

/// Whether the API may listen on `addr` with these settings: loopback always, any other
/// address only with a password.
pub fn may_listen(addr: SocketAddr, settings: &crate::Settings) -> Result<(), ExposedApi> {
    if addr.ip().is_loopback() || settings.web_ui_password_pbkdf2.is_some() {
        Ok(())
    } else {
        Err(ExposedApi(addr))
    }
}

/// Serves the API on `listener` until the daemon is asked to shut down; refuses an
/// exposed address without a password (see [`may_listen`]) and serves TLS when the
/// settings ask for it (see [`crate::server`]).
pub async fn serve(daemon: Daemon, listener: tokio::net::TcpListener) -> std::io::Result<()> {
    let limits = crate::server::Limits::for_settings(&daemon.settings());
    serve_with(daemon, listener, limits).await
}

/// [`serve`] with these bounds on clients.
pub async fn serve_with(
    daemon: Daemon,
    listener: tokio::net::TcpListener,
    limits: crate::server::Limits,
) -> std::io::Result<()> {
    let addr = listener.local_addr()?;
    let settings = daemon.settings();
    may_listen(addr, &settings).map_err(std::io::Error::other)?;
    let tls = crate::server::tls_acceptor(&settings).map_err(std::io::Error::other)?;
    let (stop_tx, stop) = tokio::sync::watch::channel(false);
    let watcher = daemon.clone();
    tokio::spawn(async move {
        watcher.shutdown_requested().await;
        let _ = stop_tx.send(true);
    });
    let app = router(daemon, addr);
    crate::server::serve(listener, app, tls, limits, stop).await
}

/// Longest a request may take to be read and answered (a slow upload is cut off).
pub const REQUEST_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

/// Room in a request body beyond `torrent_file_size_limit` for the form fields around
/// an uploaded `.torrent`.
const FORM_SLACK: u64 = 64 << 10;

/// Refuses requests another web page could make through the user's browser: a `Host`
/// that is not this machine (DNS rebinding) or an `Origin`/`Referer` from another site
/// (cross-site request forgery), as qBittorrent checks them; then requests without a
/// login when one is needed; bounds the body by `torrent_file_size_limit` and the whole
/// request by [`REQUEST_TIMEOUT`].
async fn guard(
    State(state): State<ApiState>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    req: Request,
    next: Next,
) -> Response {
    let settings = state.daemon.settings();
    let headers: &HeaderMap = req.headers();
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let local = req
        .extensions()
        .get::<crate::server::Reached>()
        .map_or(state.api_addr, |r| r.local);
    if !host.is_empty() && !request::host_allowed(host, local, &settings.web_ui_domain_list) {
        return text(
            StatusCode::UNAUTHORIZED,
            "Unauthorized: unexpected Host header",
        );
    }
    for h in [header::ORIGIN, header::REFERER] {
        if let Some(v) = headers.get(&h).and_then(|v| v.to_str().ok()) {
            if request::cross_site(v, host) {
                return text(
                    StatusCode::UNAUTHORIZED,
                    format!("Unauthorized: cross-site {h}"),
                );
            }
        }
    }
    // The Transmission façade checks HTTP Basic auth itself.
    let path = req.uri().path();
    // The web UI's files hold no data: its login page must load without a login.
    let own_login = path == "/api/v2/auth/login"
        || crate::trpc::is_rpc_path(path)
        || bt_webui::is_asset_path(path);
    if !own_login && auth::needs_login(&settings, client.ip()) {
        let sid = headers
            .get(header::COOKIE)
            .and_then(|v| v.to_str().ok())
            .and_then(auth::sid_cookie);
        if !sid.is_some_and(|sid| state.auth.check(&settings, sid)) {
            return text(StatusCode::FORBIDDEN, "Forbidden");
        }
    }
    let limit = settings.torrent_file_size_limit.saturating_add(FORM_SLACK);
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit) {
        return text(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("request body over {limit} bytes (torrent_file_size_limit)"),
        );
    }
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    let req = req.map(|body| axum::body::Body::new(http_body_util::Limited::new(body, limit)));
    match tokio::time::timeout(REQUEST_TIMEOUT, next.run(req)).await {
        Ok(response) => response,
        Err(_) => text(
            StatusCode::REQUEST_TIMEOUT,
            format!("request not read and answered within {REQUEST_TIMEOUT:?}"),
        ),
    }
}

/// Logs a failed login through `facade` from `client`, and the ban it started.
pub(crate) fn note_failed_login(daemon: &Daemon, facade: &str, client: IpAddr, banned: bool) {
    daemon.note(
        crate::log::LogKind::Warning,
        format!("failed {facade} login from {client}"),
    );
    if banned {
        let settings = daemon.settings();
        daemon.note(
            crate::log::LogKind::Critical,
            format!(
                "{client} banned from the API for {} s after {} failed logins",
                settings.web_ui_ban_duration, settings.web_ui_max_auth_fail_count
            ),
        );
    }
}

async fn login(
    State(s): State<ApiState>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    req: Request,
) -> Response {
    let tls = req
        .extensions()
        .get::<crate::server::Reached>()
        .is_some_and(|r| r.tls);
    let p = params(req).await.unwrap_or_default();
    let user = p.get("username").map(String::as_str).unwrap_or("");
    let password = p.get("password").map(String::as_str).unwrap_or("");
    // PBKDF2 takes a while on purpose: off the async threads.
    let (auth, settings, ip) = (Arc::clone(&s.auth), s.daemon.settings(), client.ip());
    let (user, password) = (user.to_string(), password.to_string());
    let outcome = tokio::task::spawn_blocking(move || auth.login(&settings, ip, &user, &password))
        .await
        .unwrap_or(auth::Login::Fails { banned: false });
    match outcome {
        auth::Login::Ok(sid) => {
            let secure = if tls { "; Secure" } else { "" };
            (
                StatusCode::OK,
                [
                    (
                        header::CONTENT_TYPE,
                        "text/plain; charset=UTF-8".to_string(),
                    ),
                    (
                        header::SET_COOKIE,
                        format!("SID={sid}; HttpOnly; SameSite=Strict; path=/{secure}"),
                    ),
                ],
                "Ok.",
            )
                .into_response()
        }
        auth::Login::Fails { banned } => {
            note_failed_login(&s.daemon, "API", client.ip(), banned);
            text(StatusCode::OK, "Fails.")
        }
        auth::Login::Banned => text(
            StatusCode::FORBIDDEN,
            "Your IP address has been banned after too many failed authentication attempts.",
        ),
    }
}

async fn logout(State(s): State<ApiState>, headers: HeaderMap) -> Response {
    if let Some(sid) = headers
        .get(header::COOKIE)
        .and_then(|v| v.to_str().ok())
        .and_then(auth::sid_cookie)
    {
        s.auth.logout(sid);
    }
    ok()
}

async fn app_version() -> Response {
    text(StatusCode::OK, QBT_VERSION)
}

async fn webapi_version() -> Response {
    text(StatusCode::OK, WEBAPI_VERSION)
}

async fn build_info() -> Json<Value> {
    Json(json!({
        "qt": "", "libtorrent": "", "boost": "", "openssl": "", "zlib": "",
        "bitness": usize::BITS,
        "platform": std::env::consts::OS,
        "app": concat!("bt ", env!("CARGO_PKG_VERSION")),
    }))
}

async fn preferences(State(s): State<ApiState>) -> Json<Value> {
    Json(preferences::view(&s.daemon.settings(), s.api_addr))
}

async fn set_preferences(State(s): State<ApiState>, req: Request) -> Response {
    let p = match params(req).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let Some(raw) = p.get("json") else {
        return text(StatusCode::BAD_REQUEST, "missing parameter: json");
    };
    let prefs: Map<String, Value> = match serde_json::from_str(raw) {
        Ok(Value::Object(m)) => m,
        Ok(_) => return text(StatusCode::BAD_REQUEST, "json: not a JSON object"),
        Err(e) => return text(StatusCode::BAD_REQUEST, format!("json: {e}")),
    };
    let mut st = s.daemon.settings();
    if let Err(why) = preferences::apply(&mut st, &prefs) {
        return text(StatusCode::BAD_REQUEST, why);
    }
    // A TLS setting that cannot work would lock the user out at the next start.
    if let Err(e) = crate::server::tls_acceptor(&st) {
        return text(StatusCode::BAD_REQUEST, e.to_string());
    }
    let before = s.daemon.settings().banned_peer_ips();
    let banned: Vec<std::net::IpAddr> = st
        .banned_peer_ips()
        .into_iter()
        .filter(|ip| !before.contains(ip))
        .collect();
    match s.daemon.set_settings(st) {
        Ok(()) => {
            // Addresses newly listed are dropped now; one taken off the list is let in
            // again from the next start.
            if !banned.is_empty() {
                s.daemon.session().ban_ips(&banned).await;
            }
            ok()
        }
        Err(e) => error_response(e),
    }
}

async fn default_save_path(State(s): State<ApiState>) -> Response {
    text(
        StatusCode::OK,
        s.daemon.settings().save_path.to_string_lossy().into_owned(),
    )
}

async fn shutdown(State(s): State<ApiState>) -> Response {
    s.daemon.request_shutdown();
    ok()
}

async fn log_main(State(s): State<ApiState>, req: Request) -> Response {
    let p = params(req).await.unwrap_or_default();
    let last = p.get("last_known_id").and_then(|v| v.parse::<i64>().ok());
    let after = last.filter(|v| *v >= 0).map(|v| v as u64);
    let want = |key: &str| p.get(key).is_none_or(|v| v.eq_ignore_ascii_case("true"));
    let entries: Vec<Value> = s
        .daemon
        .logs()
        .since(after)
        .into_iter()
        .filter(|e| match e.kind {
            crate::log::LogKind::Normal => want("normal"),
            crate::log::LogKind::Info => want("info"),
            crate::log::LogKind::Warning => want("warning"),
            crate::log::LogKind::Critical => want("critical"),
        })
        .map(|e| {
            json!({"id": e.id, "message": e.message, "timestamp": e.timestamp_ms / 1000, "type": e.kind.code()})
        })
        .collect();
    Json(Value::Array(entries)).into_response()
}

/// Nodes in the DHT's routing table (0 without a DHT).
async fn dht_nodes(s: &ApiState) -> usize {
    match s.daemon.session().dht() {
        Some(d) => d.stats().await.map_or(0, |(_, n)| n),
        None => 0,
    }
}

fn server_state(s: &ApiState, totals: &crate::Totals, dht_nodes: usize) -> Map<String, Value> {
    let (dl, ul, dls, uls) = (
        totals.download_rate,
        totals.upload_rate,
        totals.downloaded_session,
        totals.uploaded_session,
    );
    let (all_dl, all_ul) = (totals.downloaded, totals.uploaded);
    let settings = s.daemon.settings();
    let limits = crate::speed::limits(&settings);
    let free = free_space(&settings.save_path);
    match json!({
        "dl_info_speed": dl,
        "up_info_speed": ul,
        "dl_info_data": dls,
        "up_info_data": uls,
        "dl_rate_limit": limits.0,
        "up_rate_limit": limits.1,
        "alltime_dl": all_dl,
        "alltime_ul": all_ul,
        "dht_nodes": dht_nodes,
        "connection_status": "connected",
        "free_space_on_disk": free,
        "queueing": false,
        "use_alt_speed_limits": settings.use_alt_speed_limits,
        "refresh_interval": 1500,
    }) {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

/// Free bytes on the filesystem holding `path` (0 if unknown).
pub(crate) fn free_space(path: &std::path::Path) -> u64 {
    let mut p = path.to_path_buf();
    loop {
        if let Ok(st) = rustix_statvfs(&p) {
            return st;
        }
        if !p.pop() {
            return 0;
        }
    }
}

fn rustix_statvfs(p: &std::path::Path) -> std::io::Result<u64> {
    let st = rustix::fs::statvfs(p).map_err(std::io::Error::from)?;
    Ok(st.f_bavail.saturating_mul(st.f_frsize))
}

async fn maindata(State(s): State<ApiState>, req: Request) -> Response {
    let p = params(req).await.unwrap_or_default();
    let rid = p.get("rid").and_then(|v| v.parse().ok()).unwrap_or(0);
    let dht = dht_nodes(&s).await;
    let mut table = s.sync.lock().unwrap_or_else(|e| e.into_inner());
    let changes = s.daemon.changes(table.shown_mut());
    let changed = changes
        .changed
        .iter()
        .map(|t| (t.record.info_hash, view::fields(t)))
        .collect();
    let small = Small {
        categories: s
            .daemon
            .categories()
            .into_iter()
            .map(|(name, c)| {
                let v = json!({"name": name, "savePath": c.save_path});
                (name, v)
            })
            .collect(),
        tags: s.daemon.tags().into_iter().collect(),
        server_state: server_state(&s, &changes.totals, dht),
    };
    table.advance(changed, changes.removed, small);
    let body = table.respond(rid);
    drop(table);
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        body,
    )
        .into_response()
}

async fn torrent_peers(State(s): State<ApiState>, req: Request) -> Response {
    let p = params(req).await.unwrap_or_default();
    let Ok(hash) = one_hash(&p) else {
        return text(StatusCode::NOT_FOUND, "Torrent hash was not found");
    };
    let Some(t) = s.daemon.torrent(&hash) else {
        return text(StatusCode::NOT_FOUND, "Torrent hash was not found");
    };
    let list = s.daemon.peers(&hash).await;
    let num_pieces = t.meta.as_ref().map_or(0, |m| m.info.num_pieces());
    let rid = p
        .get("rid")
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(0)
        + 1;
    // Always the whole list: a torrent's peers are few and change all the time.
    Json(json!({
        "full_update": true,
        "rid": rid,
        "peers": peers::peers_object(&list, num_pieces),
        "show_flags": true,
    }))
    .into_response()
}

async fn transfer_info(State(s): State<ApiState>) -> Json<Value> {
    let st = server_state(&s, &s.daemon.totals(), dht_nodes(&s).await);
    let pick = |k: &str| st.get(k).cloned().unwrap_or(json!(0));
    Json(json!({
        "dl_info_speed": pick("dl_info_speed"),
        "dl_info_data": pick("dl_info_data"),
        "up_info_speed": pick("up_info_speed"),
        "up_info_data": pick("up_info_data"),
        "dl_rate_limit": pick("dl_rate_limit"),
        "up_rate_limit": pick("up_rate_limit"),
        "dht_nodes": pick("dht_nodes"),
        "connection_status": "connected",
    }))
}

async fn speed_limits_mode(State(s): State<ApiState>) -> Response {
    let alt = s.daemon.settings().use_alt_speed_limits;
    text(StatusCode::OK, if alt { "1" } else { "0" })
}

async fn toggle_speed_limits_mode(State(s): State<ApiState>) -> Response {
    let alt = s.daemon.settings().use_alt_speed_limits;
    match s.daemon.set_alt_speed_limits(!alt) {
        Ok(()) => ok(),
        Err(e) => error_response(e),
    }
}

async fn set_speed_limits_mode(State(s): State<ApiState>, req: Request) -> Response {
    with_params(s, req, |s, p| async move {
        let on = match p.get("mode").map(String::as_str) {
            Some("1") => true,
            Some("0") => false,
            _ => return text(StatusCode::BAD_REQUEST, "mode: 0 or 1"),
        };
        match s.daemon.set_alt_speed_limits(on) {
            Ok(()) => ok(),
            Err(e) => error_response(e),
        }
    })
    .await
}

async fn global_download_limit(State(s): State<ApiState>) -> Response {
    let (down, _) = crate::speed::limits(&s.daemon.settings());
    text(StatusCode::OK, down.to_string())
}

async fn global_upload_limit(State(s): State<ApiState>) -> Response {
    let (_, up) = crate::speed::limits(&s.daemon.settings());
    text(StatusCode::OK, up.to_string())
}

async fn set_global_limit(s: ApiState, req: Request, download: bool) -> Response {
    with_params(s, req, |s, p| async move {
        let Some(limit) = limit_param(&p) else {
            return text(StatusCode::BAD_REQUEST, "limit: bytes per second");
        };
        match s.daemon.set_global_limit(download, limit) {
            Ok(()) => ok(),
            Err(e) => error_response(e),
        }
    })
    .await
}

async fn set_global_download_limit(State(s): State<ApiState>, req: Request) -> Response {
    set_global_limit(s, req, true).await
}

async fn set_global_upload_limit(State(s): State<ApiState>, req: Request) -> Response {
    set_global_limit(s, req, false).await
}

async fn torrent_limits(s: ApiState, req: Request, download: bool) -> Response {
    with_params(s, req, |s, p| async move {
        let wanted = hashes(&s, &p);
        let map: Map<String, Value> = s
            .daemon
            .snapshot()
            .into_iter()
            .filter(|t| wanted.contains(&t.record.info_hash))
            .map(|t| {
                let l = if download {
                    t.record.dl_limit
                } else {
                    t.record.up_limit
                };
                (t.record.info_hash.to_hex(), json!(l))
            })
            .collect();
        Json(Value::Object(map)).into_response()
    })
    .await
}

async fn torrent_download_limit(State(s): State<ApiState>, req: Request) -> Response {
    torrent_limits(s, req, true).await
}

async fn torrent_upload_limit(State(s): State<ApiState>, req: Request) -> Response {
    torrent_limits(s, req, false).await
}

async fn set_torrent_limit(s: ApiState, req: Request, download: bool) -> Response {
    with_params(s, req, |s, p| async move {
        let Some(limit) = limit_param(&p) else {
            return text(StatusCode::BAD_REQUEST, "limit: bytes per second");
        };
        s.daemon.set_torrent_limit(&hashes(&s, &p), download, limit);
        ok()
    })
    .await
}

async fn set_torrent_download_limit(State(s): State<ApiState>, req: Request) -> Response {
    set_torrent_limit(s, req, true).await
}

async fn set_torrent_upload_limit(State(s): State<ApiState>, req: Request) -> Response {
    set_torrent_limit(s, req, false).await
}

fn selected(s: &ApiState, p: &Params) -> Vec<crate::TorrentSnapshot> {
    let filter = p.get("filter").map(String::as_str).unwrap_or("all");
    let category = p.get("category");
    let tag = p.get("tag");
    let wanted: Option<Vec<InfoHash>> = p.get("hashes").map(|_| hashes(s, p));
    s.daemon
        .snapshot()
        .into_iter()
        .filter(|t| view::matches_filter(t, filter))
        .filter(|t| category.is_none_or(|c| &t.record.category == c))
        .filter(|t| {
            tag.is_none_or(|g| {
                g.is_empty() && t.record.tags.is_empty() || t.record.tags.contains(g)
            })
        })
        .filter(|t| {
            wanted
                .as_ref()
                .is_none_or(|w| w.contains(&t.record.info_hash))
        })
        .collect()
}

async fn torrents_info(State(s): State<ApiState>, req: Request) -> Response {
    let p = match params(req).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let mut rows: Vec<Map<String, Value>> = selected(&s, &p).iter().map(view::torrent).collect();
    if let Some(key) = p.get("sort") {
        rows.sort_by(|a, b| compare(a.get(key), b.get(key)));
    }
    if flag(&p, "reverse") {
        rows.reverse();
    }
    let offset = p
        .get("offset")
        .and_then(|v| v.parse::<i64>().ok())
        .unwrap_or(0);
    let len = rows.len() as i64;
    let start = if offset < 0 {
        (len + offset).max(0)
    } else {
        offset.min(len)
    } as usize;
    let mut rows = rows.split_off(start);
    if let Some(limit) = p.get("limit").and_then(|v| v.parse::<i64>().ok()) {
        if limit > 0 {
            rows.truncate(limit as usize);
        }
    }
    Json(Value::Array(rows.into_iter().map(Value::Object).collect())).into_response()
}

/// Orders JSON values of one field: numbers numerically, strings as text.
fn compare(a: Option<&Value>, b: Option<&Value>) -> std::cmp::Ordering {
    match (a, b) {
        (Some(Value::Number(x)), Some(Value::Number(y))) => x
            .as_f64()
            .unwrap_or(0.0)
            .total_cmp(&y.as_f64().unwrap_or(0.0)),
        (Some(Value::String(x)), Some(Value::String(y))) => x.to_lowercase().cmp(&y.to_lowercase()),
        (Some(Value::Bool(x)), Some(Value::Bool(y))) => x.cmp(y),
        _ => std::cmp::Ordering::Equal,
    }
}

async fn torrents_count(State(s): State<ApiState>) -> Response {
    text(StatusCode::OK, s.daemon.hashes().len().to_string())
}

fn found(s: &ApiState, p: &Params) -> Result<crate::TorrentSnapshot, Response> {
    let hash = one_hash(p)?;
    s.daemon
        .torrent(&hash)
        .ok_or_else(|| text(StatusCode::NOT_FOUND, "Torrent hash was not found"))
}

async fn properties(State(s): State<ApiState>, req: Request) -> Response {
    let p = params(req).await.unwrap_or_default();
    let t = match found(&s, &p) {
        Ok(t) => t,
        Err(r) => return r,
    };
    let obj = view::torrent(&t);
    let g = |k: &str| obj.get(k).cloned().unwrap_or(Value::Null);
    let meta = t.meta.as_ref();
    Json(json!({
        "hash": g("hash"),
        "infohash_v1": g("infohash_v1"),
        "infohash_v2": "",
        "name": g("name"),
        "save_path": g("save_path"),
        "creation_date": meta.and_then(|m| m.creation_date).unwrap_or(-1),
        "created_by": meta.and_then(|m| m.created_by.clone()).unwrap_or_default(),
        "comment": g("comment"),
        "piece_size": meta.map_or(-1, |m| i64::from(m.info.piece_len)),
        "pieces_num": meta.map_or(-1, |m| i64::from(m.info.num_pieces())),
        "pieces_have": t.stats.as_ref().map_or(if t.record.completion_on.is_some() { meta.map_or(0, |m| i64::from(m.info.num_pieces())) } else { 0 }, |st| i64::from(st.pieces_have)),
        "total_size": g("total_size"),
        "total_downloaded": g("downloaded"),
        "total_downloaded_session": g("downloaded_session"),
        "total_uploaded": g("uploaded"),
        "total_uploaded_session": g("uploaded_session"),
        "total_wasted": 0,
        "dl_speed": g("dlspeed"),
        "up_speed": g("upspeed"),
        "dl_speed_avg": 0,
        "up_speed_avg": 0,
        "dl_limit": -1,
        "up_limit": -1,
        "eta": g("eta"),
        "share_ratio": g("ratio"),
        "seeding_time": g("seeding_time"),
        "time_elapsed": g("time_active"),
        "addition_date": g("added_on"),
        "completion_date": g("completion_on"),
        "last_seen": g("seen_complete"),
        "nb_connections": t.stats.as_ref().map_or(0, |st| st.peers),
        "nb_connections_limit": s.daemon.settings().max_connec_per_torrent,
        "peers": 0, "peers_total": 0, "seeds": g("num_seeds"), "seeds_total": 0,
        "reannounce": 0,
        "is_private": g("private"),
        "has_metadata": g("has_metadata"),
        "popularity": 0,
        "download_path": "",
    }))
    .into_response()
}

async fn trackers(State(s): State<ApiState>, req: Request) -> Response {
    let p = params(req).await.unwrap_or_default();
    let t = match found(&s, &p) {
        Ok(t) => t,
        Err(r) => return r,
    };
    let status = s
        .daemon
        .session()
        .tracker_status(&t.record.info_hash)
        .map(|rx| rx.borrow().clone());
    let peers = t.stats.as_ref().map_or(0, |st| st.peers);
    let mut rows = vec![
        json!({"url": "** [DHT] **", "status": if s.daemon.settings().dht { 2 } else { 0 }, "tier": -1, "num_peers": 0, "num_seeds": 0, "num_leeches": 0, "num_downloaded": 0, "msg": ""}),
        json!({"url": "** [PeX] **", "status": if t.phase == crate::Phase::Stopped { 0 } else { 2 }, "tier": -1, "num_peers": peers, "num_seeds": 0, "num_leeches": 0, "num_downloaded": 0, "msg": ""}),
        json!({"url": "** [LSD] **", "status": 0, "tier": -1, "num_peers": 0, "num_seeds": 0, "num_leeches": 0, "num_downloaded": 0, "msg": ""}),
    ];
    let tiers = t.trackers();
    for (tier, urls) in tiers.iter().enumerate() {
        for url in urls {
            let (code, msg, seeds, leeches, n) = match &status {
                None => (
                    if t.phase == crate::Phase::Stopped {
                        0
                    } else {
                        1
                    },
                    String::new(),
                    -1,
                    -1,
                    0,
                ),
                Some(st) if st.tracker.as_deref() == Some(url.as_str()) => (
                    2,
                    st.warning.clone().unwrap_or_default(),
                    st.seeders.map_or(-1, |v| v as i64),
                    st.leechers.map_or(-1, |v| v as i64),
                    st.last_peers,
                ),
                Some(st) => match &st.last_error {
                    Some(e) if e.contains(url.as_str()) => (4, e.clone(), -1, -1, 0),
                    _ => (1, String::new(), -1, -1, 0),
                },
            };
            rows.push(json!({
                "url": url, "status": code, "tier": tier, "num_peers": n,
                "num_seeds": seeds, "num_leeches": leeches, "num_downloaded": -1, "msg": msg,
            }));
        }
    }
    Json(Value::Array(rows)).into_response()
}

async fn webseeds(State(s): State<ApiState>, req: Request) -> Response {
    let p = params(req).await.unwrap_or_default();
    let t = match found(&s, &p) {
        Ok(t) => t,
        Err(r) => return r,
    };
    let seeds: Vec<Value> = t
        .meta
        .as_ref()
        .map(|m| m.web_seeds())
        .unwrap_or_default()
        .into_iter()
        .map(|url| json!({"url": url}))
        .collect();
    Json(Value::Array(seeds)).into_response()
}

async fn files(State(s): State<ApiState>, req: Request) -> Response {
    let p = params(req).await.unwrap_or_default();
    let t = match found(&s, &p) {
        Ok(t) => t,
        Err(r) => return r,
    };
    let Some(meta) = &t.meta else {
        return Json(json!([])).into_response();
    };
    let piece_len = u64::from(meta.info.piece_len.max(1));
    let progress = s
        .daemon
        .file_progress(&t.record.info_hash)
        .await
        .unwrap_or_default();
    let wanted = request::file_indexes(&p);
    let names = t.file_names();
    let rows: Vec<Value> = meta
        .info
        .files()
        .iter()
        .filter(|f| !f.is_pad())
        .enumerate()
        .filter(|(i, _)| wanted.as_ref().is_none_or(|w| w.contains(i)))
        .map(|(i, f)| {
            let first = f.offset() / piece_len;
            let last = (f.offset() + f.length().max(1) - 1) / piece_len;
            let done = progress.get(i).copied().unwrap_or(0.0);
            json!({
                "index": i,
                // Starts with the torrent's folder, as qBittorrent's names do.
                "name": names.get(i).cloned().unwrap_or_else(|| f.display_path()),
                "size": f.length(),
                "progress": done,
                "priority": crate::priorities::file_priority(&t.record.file_priorities, i),
                "is_seed": done >= 1.0,
                "piece_range": [first, last],
                "availability": if t.stats.as_ref().is_some_and(|st| st.peers > 0) { 1.0 } else { 0.0 },
            })
        })
        .collect();
    Json(Value::Array(rows)).into_response()
}

/// A `.torrent` from an `http(s)` URL, at most [`MAX_BODY`] bytes.
pub(crate) fn fetch_torrent(url: &str) -> Result<Vec<u8>, String> {
    use std::io::Read;
    let resp = ureq::get(url)
        .timeout(std::time::Duration::from_secs(30))
        .call()
        .map_err(|e| e.to_string())?;
    let mut body = Vec::new();
    resp.into_reader()
        .take(MAX_BODY as u64 + 1)
        .read_to_end(&mut body)
        .map_err(|e| format!("{url}: {e}"))?;
    if body.len() > MAX_BODY {
        return Err(format!("{url}: larger than {MAX_BODY} bytes"));
    }
    Ok(body)
}

async fn add(State(s): State<ApiState>, req: Request) -> Response {
    let is_multipart = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("multipart/form-data"));
    let mut p = Params::new();
    let mut files: Vec<Vec<u8>> = Vec::new();
    if is_multipart {
        let mut mp = match Multipart::from_request(req, &()).await {
            Ok(m) => m,
            Err(e) => return e.into_response(),
        };
        loop {
            match mp.next_field().await {
                Ok(Some(field)) => {
                    let name = field.name().unwrap_or("").to_string();
                    let is_file = field.file_name().is_some() || name == "torrents";
                    match field.bytes().await {
                        Ok(b) if is_file => files.push(b.to_vec()),
                        Ok(b) => {
                            p.insert(name, String::from_utf8_lossy(&b).into_owned());
                        }
                        Err(e) => return text(StatusCode::BAD_REQUEST, e.to_string()),
                    }
                }
                Ok(None) => break,
                Err(e) => return text(StatusCode::BAD_REQUEST, e.to_string()),
            }
        }
    } else {
        p = match params(req).await {
            Ok(p) => p,
            Err(r) => return r,
        };
    }
    let after = AfterAdd {
        ratio: p.get("ratioLimit").and_then(|v| v.parse().ok()),
        seeding: p.get("seedingTimeLimit").and_then(|v| v.parse().ok()),
        inactive: p
            .get("inactiveSeedingTimeLimit")
            .and_then(|v| v.parse().ok()),
    };
    let opts = AddOptions {
        save_path: p.get("savepath").cloned(),
        category: p.get("category").cloned().unwrap_or_default(),
        tags: list_param(&p, "tags", ','),
        stopped: flag(&p, "stopped") || flag(&p, "paused"),
        peers: Vec::new(),
        skip_checking: flag(&p, "skip_checking"),
        sequential: flag(&p, "sequentialDownload"),
        first_last: flag(&p, "firstLastPiecePrio"),
        auto_tmm: flag(&p, "autoTMM"),
    };
    let mut sources: Vec<Result<Source, String>> =
        files.into_iter().map(|b| Ok(Source::Torrent(b))).collect();
    for url in p
        .get("urls")
        .map(|u| {
            u.lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .map(String::from)
                .collect::<Vec<_>>()
        })
        .unwrap_or_default()
    {
        if url.starts_with("magnet:") {
            sources.push(Ok(Source::Magnet(url)));
        } else if url.len() == 40 && InfoHash::from_hex(&url).is_some() {
            sources.push(Ok(Source::Magnet(format!("magnet:?xt=urn:btih:{url}"))));
        } else if url.starts_with("http://") || url.starts_with("https://") {
            let fetched = tokio::task::spawn_blocking(move || fetch_torrent(&url))
                .await
                .unwrap_or_else(|e| Err(e.to_string()));
            sources.push(fetched.map(Source::Torrent));
        } else {
            sources.push(Err(format!(
                "{url}: not a magnet link, info-hash or http(s) URL"
            )));
        }
    }
    if sources.is_empty() {
        return text(StatusCode::BAD_REQUEST, "no torrent files or urls given");
    }
    let (mut added, mut invalid) = (0, Vec::new());
    for src in sources {
        match src {
            Ok(src) => match s.daemon.add(src, opts.clone()).await {
                Ok(hash) => {
                    added += 1;
                    after.apply(&s.daemon, hash).await;
                }
                Err(DaemonError::Duplicate(_)) => {}
                Err(DaemonError::Category(m)) => return text(StatusCode::CONFLICT, m),
                Err(e) => invalid.push(e.to_string()),
            },
            Err(e) => invalid.push(e),
        }
    }
    if added == 0 && !invalid.is_empty() {
        return text(StatusCode::UNSUPPORTED_MEDIA_TYPE, invalid.join("\n"));
    }
    if added == 0 {
        return text(StatusCode::OK, "Fails.");
    }
    ok()
}

/// Options of `torrents/add` applied once the torrent is in.
struct AfterAdd {
    ratio: Option<f64>,
    seeding: Option<i64>,
    inactive: Option<i64>,
}

impl AfterAdd {
    async fn apply(&self, daemon: &Daemon, hash: InfoHash) {
        if self.ratio.is_some() || self.seeding.is_some() || self.inactive.is_some() {
            daemon.set_share_limits(
                &[hash],
                self.ratio.unwrap_or(-2.0),
                self.seeding.unwrap_or(-2),
                self.inactive.unwrap_or(-2),
            );
        }
    }
}

async fn file_prio(State(s): State<ApiState>, req: Request) -> Response {
    with_params(s, req, |s, p| async move {
        let hash = match one_hash(&p) {
            Ok(h) => h,
            Err(r) => return r,
        };
        let ids = match request::file_ids(&p) {
            Ok(ids) => ids,
            Err(why) => return text(StatusCode::BAD_REQUEST, why),
        };
        let Some(prio) = p.get("priority").and_then(|v| v.parse::<u8>().ok()) else {
            return text(StatusCode::BAD_REQUEST, "priority: not 0, 1, 6 or 7");
        };
        match s.daemon.set_file_priority(&hash, &ids, prio).await {
            Ok(()) => ok(),
            Err(DaemonError::Invalid(m)) if m.starts_with("its metadata") => {
                text(StatusCode::CONFLICT, m)
            }
            Err(e) => error_response(e),
        }
    })
    .await
}

async fn set_location(State(s): State<ApiState>, req: Request) -> Response {
    with_params(s, req, |s, p| async move {
        let location = p.get("location").map(|l| l.trim()).unwrap_or("");
        if location.is_empty() {
            return text(StatusCode::BAD_REQUEST, "location: empty");
        }
        match s
            .daemon
            .set_location(&hashes(&s, &p), std::path::Path::new(location))
        {
            Ok(()) => ok(),
            Err(e) => error_response(e),
        }
    })
    .await
}

async fn rename(State(s): State<ApiState>, req: Request) -> Response {
    with_params(s, req, |s, p| async move {
        let hash = match one_hash(&p) {
            Ok(h) => h,
            Err(r) => return r,
        };
        let name = p.get("name").cloned().unwrap_or_default();
        match s.daemon.rename(&hash, &name) {
            Ok(()) => ok(),
            Err(DaemonError::Invalid(m)) => text(StatusCode::CONFLICT, m),
            Err(e) => error_response(e),
        }
    })
    .await
}

async fn piece_states(State(s): State<ApiState>, req: Request) -> Response {
    let p = params(req).await.unwrap_or_default();
    let hash = match one_hash(&p) {
        Ok(h) => h,
        Err(r) => return r,
    };
    if s.daemon.torrent(&hash).is_none() {
        return text(StatusCode::NOT_FOUND, "Torrent hash was not found");
    }
    let states = s.daemon.piece_states(&hash).await.unwrap_or_default();
    Json(json!(states)).into_response()
}

async fn piece_hashes(State(s): State<ApiState>, req: Request) -> Response {
    let p = params(req).await.unwrap_or_default();
    let t = match found(&s, &p) {
        Ok(t) => t,
        Err(r) => return r,
    };
    let hashes: Vec<String> = t
        .meta
        .as_ref()
        .map(|m| m.info.pieces().map(hex::encode).collect())
        .unwrap_or_default();
    Json(json!(hashes)).into_response()
}

async fn toggle_sequential(State(s): State<ApiState>, req: Request) -> Response {
    with_params(s, req, |s, p| async move {
        match s.daemon.toggle_sequential(&hashes(&s, &p)).await {
            Ok(()) => ok(),
            Err(e) => error_response(e),
        }
    })
    .await
}

async fn toggle_first_last(State(s): State<ApiState>, req: Request) -> Response {
    with_params(s, req, |s, p| async move {
        match s.daemon.toggle_first_last(&hashes(&s, &p)).await {
            Ok(()) => ok(),
            Err(e) => error_response(e),
        }
    })
    .await
}

/// The `hash`, `oldPath` and `newPath` of a rename.
fn rename_params(p: &Params) -> Result<(InfoHash, &str, &str), Response> {
    let hash = one_hash(p)?;
    match (p.get("oldPath"), p.get("newPath")) {
        (Some(old), Some(new)) => Ok((hash, old, new)),
        _ => Err(text(
            StatusCode::BAD_REQUEST,
            "oldPath and newPath are required",
        )),
    }
}

/// `torrents/renameFile`: `hash`, `oldPath`, `newPath`.
async fn rename_file(State(s): State<ApiState>, req: Request) -> Response {
    with_params(s, req, |s, p| async move {
        let (hash, old, new) = match rename_params(&p) {
            Ok(v) => v,
            Err(r) => return r,
        };
        match s.daemon.rename_file(&hash, old, new).await {
            Ok(()) => ok(),
            Err(DaemonError::Invalid(m)) => text(StatusCode::CONFLICT, m),
            Err(e) => error_response(e),
        }
    })
    .await
}

/// `torrents/renameFolder`: `hash`, `oldPath`, `newPath`; every file under the folder
/// moves.
async fn rename_folder(State(s): State<ApiState>, req: Request) -> Response {
    with_params(s, req, |s, p| async move {
        let (hash, old, new) = match rename_params(&p) {
            Ok(v) => v,
            Err(r) => return r,
        };
        let Some(t) = s.daemon.torrent(&hash) else {
            return text(StatusCode::NOT_FOUND, "Torrent hash was not found");
        };
        let prefix = format!("{}/", old.trim_end_matches('/'));
        let moves: Vec<(String, String)> = t
            .file_names()
            .into_iter()
            .filter_map(|n| {
                let rest = n.strip_prefix(&prefix)?.to_string();
                Some((n, format!("{}/{rest}", new.trim_end_matches('/'))))
            })
            .collect();
        if moves.is_empty() {
            return text(StatusCode::CONFLICT, format!("no folder {old:?}"));
        }
        for (from, to) in moves {
            match s.daemon.rename_file(&hash, &from, &to).await {
                Ok(()) => {}
                Err(DaemonError::Invalid(m)) => return text(StatusCode::CONFLICT, m),
                Err(e) => return error_response(e),
            }
        }
        ok()
    })
    .await
}

async fn set_auto_management(State(s): State<ApiState>, req: Request) -> Response {
    with_params(s, req, |s, p| async move {
        match s
            .daemon
            .set_auto_management(&hashes(&s, &p), flag(&p, "enable"))
        {
            Ok(()) => ok(),
            Err(e) => error_response(e),
        }
    })
    .await
}

/// `transfer/banPeers`: `peers` as `host:port` separated by `|` (the port is ignored:
/// the whole address is banned, as in qBittorrent).
async fn ban_peers(State(s): State<ApiState>, req: Request) -> Response {
    with_params(s, req, |s, p| async move {
        let ips = request::peer_ips(&p);
        match s.daemon.ban_peers(&ips).await {
            Ok(()) => ok(),
            Err(e) => error_response(e),
        }
    })
    .await
}

async fn set_force_start(State(s): State<ApiState>, req: Request) -> Response {
    with_params(s, req, |s, p| async move {
        match s
            .daemon
            .set_force_start(&hashes(&s, &p), flag(&p, "value"))
            .await
        {
            Ok(()) => ok(),
            Err(e) => error_response(e),
        }
    })
    .await
}

async fn set_share_limits(State(s): State<ApiState>, req: Request) -> Response {
    with_params(s, req, |s, p| async move {
        let Some((ratio, seeding, inactive)) = request::share_limits(&p) else {
            return text(
                StatusCode::BAD_REQUEST,
                "ratioLimit and seedingTimeLimit are required",
            );
        };
        s.daemon
            .set_share_limits(&hashes(&s, &p), ratio, seeding, inactive);
        ok()
    })
    .await
}

async fn queue_move(s: ApiState, req: Request, to: crate::daemon::QueueMove) -> Response {
    with_params(s, req, |s, p| async move {
        if !s.daemon.settings().queueing_enabled {
            return text(StatusCode::CONFLICT, "Torrent queueing must be enabled");
        }
        s.daemon.move_in_queue(&hashes(&s, &p), to);
        ok()
    })
    .await
}

async fn top_prio(State(s): State<ApiState>, req: Request) -> Response {
    queue_move(s, req, crate::daemon::QueueMove::Top).await
}

async fn bottom_prio(State(s): State<ApiState>, req: Request) -> Response {
    queue_move(s, req, crate::daemon::QueueMove::Bottom).await
}

async fn increase_prio(State(s): State<ApiState>, req: Request) -> Response {
    queue_move(s, req, crate::daemon::QueueMove::Up).await
}

async fn decrease_prio(State(s): State<ApiState>, req: Request) -> Response {
    queue_move(s, req, crate::daemon::QueueMove::Down).await
}

async fn with_params<F, Fut>(s: ApiState, req: Request, f: F) -> Response
where
    F: FnOnce(ApiState, Params) -> Fut,
    Fut: std::future::Future<Output = Response>,
{
    match params(req).await {
        Ok(p) => f(s, p).await,
        Err(r) => r,
    }
}

async fn delete(State(s): State<ApiState>, req: Request) -> Response {
    with_params(s, req, |s, p| async move {
        let hs = hashes(&s, &p);
        match s.daemon.remove(&hs, flag(&p, "deleteFiles")).await {
            Ok(()) => ok(),
            Err(e) => error_response(e),
        }
    })
    .await
}

async fn stop(State(s): State<ApiState>, req: Request) -> Response {
    with_params(s, req, |s, p| async move {
        match s.daemon.stop(&hashes(&s, &p)).await {
            Ok(()) => ok(),
            Err(e) => error_response(e),
        }
    })
    .await
}

async fn start(State(s): State<ApiState>, req: Request) -> Response {
    with_params(s, req, |s, p| async move {
        match s.daemon.start_torrents(&hashes(&s, &p)).await {
            Ok(()) => ok(),
            Err(e) => error_response(e),
        }
    })
    .await
}

async fn recheck(State(s): State<ApiState>, req: Request) -> Response {
    with_params(s, req, |s, p| async move {
        match s.daemon.recheck(&hashes(&s, &p)).await {
            Ok(()) => ok(),
            Err(e) => error_response(e),
        }
    })
    .await
}

async fn set_category(State(s): State<ApiState>, req: Request) -> Response {
    with_params(s, req, |s, p| async move {
        let cat = p.get("category").cloned().unwrap_or_default();
        match s.daemon.set_category(&hashes(&s, &p), &cat) {
            Ok(()) => ok(),
            Err(e) => error_response(e),
        }
    })
    .await
}

async fn categories(State(s): State<ApiState>) -> Json<Value> {
    let map: Map<String, Value> = s
        .daemon
        .categories()
        .into_iter()
        .map(|(name, c)| {
            let v = json!({"name": name, "savePath": c.save_path});
            (name, v)
        })
        .collect();
    Json(Value::Object(map))
}

async fn create_category(State(s): State<ApiState>, req: Request) -> Response {
    put_category(s, req, false).await
}

async fn edit_category(State(s): State<ApiState>, req: Request) -> Response {
    put_category(s, req, true).await
}

async fn put_category(s: ApiState, req: Request, edit: bool) -> Response {
    with_params(s, req, |s, p| async move {
        let Some(name) = p.get("category") else {
            return text(StatusCode::BAD_REQUEST, "missing parameter: category");
        };
        let path = p.get("savePath").cloned().unwrap_or_default();
        match s.daemon.put_category(name, &path, edit) {
            Ok(()) => ok(),
            Err(e) => error_response(e),
        }
    })
    .await
}

async fn remove_categories(State(s): State<ApiState>, req: Request) -> Response {
    with_params(s, req, |s, p| async move {
        s.daemon
            .remove_categories(&list_param(&p, "categories", '\n'));
        ok()
    })
    .await
}

async fn tags(State(s): State<ApiState>) -> Json<Value> {
    Json(json!(s.daemon.tags()))
}

async fn create_tags(State(s): State<ApiState>, req: Request) -> Response {
    with_params(s, req, |s, p| async move {
        s.daemon.create_tags(&list_param(&p, "tags", ','));
        ok()
    })
    .await
}

async fn delete_tags(State(s): State<ApiState>, req: Request) -> Response {
    with_params(s, req, |s, p| async move {
        s.daemon.delete_tags(&list_param(&p, "tags", ','));
        ok()
    })
    .await
}

async fn add_tags(State(s): State<ApiState>, req: Request) -> Response {
    with_params(s, req, |s, p| async move {
        s.daemon
            .tag(&hashes(&s, &p), &list_param(&p, "tags", ','), true);
        ok()
    })
    .await
}

async fn remove_tags(State(s): State<ApiState>, req: Request) -> Response {
    with_params(s, req, |s, p| async move {
        s.daemon
            .tag(&hashes(&s, &p), &list_param(&p, "tags", ','), false);
        ok()
    })
    .await
}

async fn add_peers(State(s): State<ApiState>, req: Request) -> Response {
    with_params(s, req, |s, p| async move {
        let peers: Vec<SocketAddr> = list_param(&p, "peers", '|')
            .iter()
            .filter_map(|a| a.parse().ok())
            .collect();
        if peers.is_empty() {
            return text(
                StatusCode::BAD_REQUEST,
                "no valid peers (IP:PORT, |-separated)",
            );
        }
        s.daemon.add_peers(&hashes(&s, &p), &peers).await;
        ok()
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_route_is_listed_once() {
        let all = endpoints();
        let distinct: std::collections::BTreeSet<&String> = all.iter().collect();
        assert_eq!(distinct.len(), all.len(), "a path is routed twice");
        assert!(all.len() >= 70, "{}", all.len());
    }
}
