//! The API as a door: each test tries one way in and checks that it stays shut.
//!
//! Every endpoint without credentials, from another machine and from this one; logins
//! throttled and bans shared by both façades; TLS; headers, bodies and connections
//! bounded; slow clients cut off; malformed requests answered 400; names and paths that
//! would leave the torrent's folder refused.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Request, StatusCode};
use bt_daemon::server::{Limits, Reached};
use bt_daemon::{Daemon, DaemonConfig, Settings};
use tower::ServiceExt;

use crate::api::{start_daemon, torrent, Api, Running};

const PASSWORD: &str = "correct horse";

fn locked_settings(downloads: &Path) -> Settings {
    Settings {
        save_path: downloads.to_owned(),
        listen: "127.0.0.1:0".parse().unwrap(),
        api: "127.0.0.1:0".parse().unwrap(),
        dht: false,
        web_ui_username: "me".into(),
        web_ui_password_pbkdf2: Some(bt_daemon::credentials::hash_password(PASSWORD)),
        ..Settings::default()
    }
}

/// A daemon with `settings`, its API served with `limits` on loopback.
async fn start_with(state: &Path, settings: Settings, limits: Limits) -> Running {
    let daemon = Daemon::start(DaemonConfig {
        state_dir: state.to_owned(),
        settings,
    })
    .await
    .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(bt_daemon::qbt::serve_with(daemon.clone(), listener, limits));
    Running {
        daemon,
        api: Api {
            base: format!("http://{addr}"),
        },
        server,
    }
}

async fn stop_inside(d: Running) {
    d.daemon.request_shutdown();
    d.server.await.unwrap().unwrap();
    d.daemon.shutdown().await;
}

/// A form body that would do harm at every endpoint that takes it.
const HARMFUL_FORM: &str = "hashes=all&hash=all&deleteFiles=true&json=%7B%22web_ui_password%22%3A%22pwned%21pwned%22%2C%22bypass_local_auth%22%3Atrue%7D&urls=magnet%3A%3Fxt%3Durn%3Abtih%3A0123456789abcdef0123456789abcdef01234567&category=x&tags=x&location=%2Ftmp%2Fpwned&name=pwned&peers=10.0.0.1%3A1";

/// A Transmission request that would do harm.
const HARMFUL_RPC: &str =
    r#"{"method":"torrent-remove","arguments":{"ids":"all","delete-local-data":true}}"#;

/// Sends `method` to `path` through the router as a client at `client` reaching the API
/// at `local` would; returns the status.
async fn through_router(
    app: &axum::Router,
    client: SocketAddr,
    local: SocketAddr,
    method: &str,
    path: &str,
) -> StatusCode {
    let rpc = bt_daemon::trpc::is_rpc_path(path);
    let mut req = Request::builder()
        .method(method)
        .uri(path)
        .header("host", local.to_string());
    let body = if rpc {
        req = req
            .header("content-type", "application/json")
            .header(bt_daemon::trpc::SESSION_ID_HEADER, "guessed");
        Body::from(HARMFUL_RPC)
    } else {
        req = req
            .header("content-type", "application/x-www-form-urlencoded")
            .header("cookie", "SID=0123456789abcdef0123456789abcdef");
        Body::from(HARMFUL_FORM)
    };
    let mut req = req.body(body).unwrap();
    req.extensions_mut().insert(ConnectInfo(client));
    req.extensions_mut().insert(Reached { local, tls: false });
    app.clone().oneshot(req).await.unwrap().status()
}

#[tokio::test]
async fn every_endpoint_refuses_a_client_without_credentials_on_a_non_loopback_api() {
    let state = tempfile::tempdir().unwrap();
    let downloads = tempfile::tempdir().unwrap();
    let mut settings = locked_settings(downloads.path());
    // The bypass for this machine's own clients must not open the door to others.
    settings.bypass_local_auth = true;
    let daemon = Daemon::start(DaemonConfig {
        state_dir: state.path().to_owned(),
        settings: settings.clone(),
    })
    .await
    .unwrap();
    let t = torrent("kept.bin", &[("", b"data")], 16384);
    daemon
        .add(
            bt_daemon::daemon::Source::Torrent(t),
            bt_daemon::daemon::AddOptions {
                stopped: true,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let api: SocketAddr = "192.0.2.1:8080".parse().unwrap();
    let client: SocketAddr = "192.0.2.7:40000".parse().unwrap();
    let app = bt_daemon::qbt::router(daemon.clone(), api);
    let endpoints = bt_daemon::qbt::endpoints();
    assert!(endpoints.len() > 70, "{endpoints:?}");
    let mut tried = 0;
    for path in &endpoints {
        for method in ["GET", "POST"] {
            let status = through_router(&app, client, api, method, path).await;
            let expected = if bt_daemon::trpc::is_rpc_path(path) {
                StatusCode::UNAUTHORIZED
            } else if path == "/api/v2/auth/login" && method == "GET" {
                // POST only: refused before any credentials are looked at.
                StatusCode::METHOD_NOT_ALLOWED
            } else if path == "/api/v2/auth/login" {
                // The harmful form carries no user name or password: a failed login.
                StatusCode::OK
            } else {
                StatusCode::FORBIDDEN
            };
            assert_eq!(status, expected, "{method} {path}");
            tried += 1;
        }
    }
    assert_eq!(tried, 2 * endpoints.len());
    // Nothing moved: the torrent and its options, the settings, the daemon itself.
    assert_eq!(daemon.hashes().len(), 1);
    let after = daemon.settings();
    assert_eq!(
        after.web_ui_password_pbkdf2,
        settings.web_ui_password_pbkdf2
    );
    assert_eq!(after.web_ui_username, "me");
    // The same requests from this machine pass the bypass (proof the door was there).
    let local: SocketAddr = "127.0.0.1:40000".parse().unwrap();
    let status = through_router(&app, local, api, "GET", "/api/v2/app/version").await;
    assert_eq!(status, StatusCode::OK);
    daemon.request_shutdown();
    daemon.shutdown().await;
}

/// Status of a raw `method path` request to `base` over loopback with `body`.
fn raw_status(base: &str, method: &str, path: &str, content_type: &str, body: &str) -> u16 {
    let url = format!("{base}{path}");
    let req = ureq::request(method, &url).set("Content-Type", content_type);
    let r = if method == "GET" {
        req.call()
    } else {
        req.send_string(body)
    };
    status_of(r, &url)
}

/// The HTTP status of a ureq call to `url` (an error status included).
fn status_of(r: Result<ureq::Response, ureq::Error>, url: &str) -> u16 {
    match r {
        Ok(r) => r.status(),
        Err(ureq::Error::Status(c, _)) => c,
        Err(e) => panic!("{url}: {e}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_endpoint_refuses_this_machine_too_when_the_bypass_is_off() {
    let state = tempfile::tempdir().unwrap();
    let downloads = tempfile::tempdir().unwrap();
    let settings = locked_settings(downloads.path());
    let d = start_with(
        state.path(),
        settings,
        Limits::for_settings(&Settings::default()),
    )
    .await;
    let base = d.api.base.clone();
    let refused = tokio::task::spawn_blocking(move || {
        let mut out = Vec::new();
        for path in bt_daemon::qbt::endpoints() {
            for method in ["GET", "POST"] {
                let rpc = bt_daemon::trpc::is_rpc_path(&path);
                let (ct, body) = if rpc {
                    ("application/json", HARMFUL_RPC)
                } else {
                    ("application/x-www-form-urlencoded", HARMFUL_FORM)
                };
                out.push((
                    method,
                    path.clone(),
                    raw_status(&base, method, &path, ct, body),
                ));
            }
        }
        out
    })
    .await
    .unwrap();
    for (method, path, status) in &refused {
        let ok = match (path.as_str(), *method) {
            (p, _) if bt_daemon::trpc::is_rpc_path(p) => *status == 401,
            ("/api/v2/auth/login", "GET") => *status == 405,
            ("/api/v2/auth/login", _) => *status == 200,
            _ => *status == 403,
        };
        assert!(ok, "{method} {path}: {status}");
    }
    assert_eq!(d.daemon.settings().web_ui_username, "me");
    stop_inside(d).await;
}

fn login(base: &str, user: &str, password: &str) -> (u16, String) {
    let url = format!("{base}/api/v2/auth/login");
    match ureq::post(&url).send_form(&[("username", user), ("password", password)]) {
        Ok(r) => (r.status(), r.into_string().unwrap()),
        Err(ureq::Error::Status(c, r)) => (c, r.into_string().unwrap()),
        Err(e) => panic!("{e}"),
    }
}

fn rpc_with_password(base: &str, password: &str) -> u16 {
    let url = format!("{base}/transmission/rpc");
    let auth = base64_basic("me", password);
    let r = ureq::post(&url)
        .set("Authorization", &auth)
        .send_string(r#"{"method":"session-get"}"#);
    status_of(r, &url)
}

fn base64_basic(user: &str, password: &str) -> String {
    use base64::Engine as _;
    let b = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    format!("Basic {b}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_logins_through_either_facade_ban_the_address_and_the_ban_is_logged() {
    let state = tempfile::tempdir().unwrap();
    let downloads = tempfile::tempdir().unwrap();
    let settings = locked_settings(downloads.path());
    assert_eq!(
        settings.web_ui_max_auth_fail_count, 5,
        "qBittorrent's default"
    );
    assert_eq!(settings.web_ui_ban_duration, 3600, "qBittorrent's default");
    let d = start_with(
        state.path(),
        settings,
        Limits::for_settings(&Settings::default()),
    )
    .await;
    let base = d.api.base.clone();
    let seen = tokio::task::spawn_blocking(move || {
        let mut seen = Vec::new();
        // The right Basic credentials pass (409: on to the session-id handshake), and
        // the façade remembers the header that passed.
        seen.push(rpc_with_password(&base, PASSWORD).to_string());
        // Three wrong through the qBittorrent façade, two through Transmission's: five.
        for _ in 0..3 {
            seen.push(login(&base, "me", "wrong").1);
        }
        for _ in 0..2 {
            seen.push(rpc_with_password(&base, "wrong").to_string());
        }
        // Now even the right password is refused, on both (the remembered header too).
        seen.push(login(&base, "me", PASSWORD).0.to_string());
        seen.push(rpc_with_password(&base, PASSWORD).to_string());
        seen
    })
    .await
    .unwrap();
    assert_eq!(
        seen,
        ["409", "Fails.", "Fails.", "Fails.", "401", "401", "403", "403"],
        "five failures in all ban the address"
    );
    let log: Vec<String> = d
        .daemon
        .logs()
        .since(None)
        .into_iter()
        .map(|e| e.message)
        .collect();
    assert!(
        log.iter()
            .any(|m| m.contains("127.0.0.1 banned from the API for 3600 s")),
        "{log:?}"
    );
    stop_inside(d).await;
}

/// A self-signed certificate for 127.0.0.1 and localhost, written as PEM files.
fn certificate(dir: &Path) -> (std::path::PathBuf, std::path::PathBuf, Vec<u8>) {
    let cert =
        rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()]).unwrap();
    let cert_path = dir.join("cert.pem");
    let key_path = dir.join("key.pem");
    std::fs::write(&cert_path, cert.cert.pem()).unwrap();
    std::fs::write(&key_path, cert.key_pair.serialize_pem()).unwrap();
    (cert_path, key_path, cert.cert.der().to_vec())
}

/// One HTTP/1.1 request over TLS to `addr`, trusting only `cert_der`; the raw response.
async fn https_request(addr: SocketAddr, cert_der: &[u8], request: String) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(rustls_pki_types::CertificateDer::from(cert_der.to_vec()))
        .unwrap();
    #[allow(deprecated)] // see server::acceptor
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let name = rustls_pki_types::ServerName::try_from("127.0.0.1").unwrap();
    let mut tls = connector.connect(name, tcp).await.unwrap();
    tls.write_all(request.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    let _ = tls.read_to_end(&mut out).await;
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_speaks_tls_with_a_certificate_and_key_and_its_cookie_is_secure() {
    let state = tempfile::tempdir().unwrap();
    let downloads = tempfile::tempdir().unwrap();
    let certs = tempfile::tempdir().unwrap();
    let (cert, key, der) = certificate(certs.path());
    let mut settings = locked_settings(downloads.path());
    settings.use_https = true;
    settings.web_ui_https_cert_path = Some(cert);
    settings.web_ui_https_key_path = Some(key.clone());
    let d = start_with(
        state.path(),
        settings,
        Limits::for_settings(&Settings::default()),
    )
    .await;
    let addr: SocketAddr = d.api.base.trim_start_matches("http://").parse().unwrap();

    let version = https_request(
        addr,
        &der,
        format!("GET /api/v2/app/version HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"),
    )
    .await;
    assert!(version.starts_with("HTTP/1.1 403"), "locked: {version}");
    let body = format!("username=me&password={}", PASSWORD.replace(' ', "+"));
    let login = https_request(
        addr,
        &der,
        format!(
            "POST /api/v2/auth/login HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\
             Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        ),
    )
    .await;
    assert!(login.starts_with("HTTP/1.1 200"), "{login}");
    let cookie = login
        .lines()
        .find(|l| l.to_ascii_lowercase().starts_with("set-cookie:"))
        .unwrap_or_else(|| panic!("no cookie: {login}"))
        .to_string();
    for attr in ["HttpOnly", "SameSite=Strict", "Secure"] {
        assert!(cookie.contains(attr), "{attr} missing: {cookie}");
    }
    let sid = cookie
        .split_once("SID=")
        .unwrap()
        .1
        .split(';')
        .next()
        .unwrap();
    assert_eq!(sid.len(), 32, "128 bits in hex: {sid}");
    let inside = https_request(
        addr,
        &der,
        format!(
            "GET /api/v2/app/version HTTP/1.1\r\nHost: {addr}\r\nCookie: SID={sid}\r\n\
             Connection: close\r\n\r\n"
        ),
    )
    .await;
    assert!(inside.starts_with("HTTP/1.1 200"), "{inside}");

    // Plain HTTP on the TLS port gets no HTTP answer.
    let plain = tokio::task::spawn_blocking(move || {
        let mut s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
        s.write_all(b"GET /api/v2/app/version HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap();
        let mut out = Vec::new();
        let _ = s.read_to_end(&mut out);
        out
    })
    .await
    .unwrap();
    assert!(!plain.starts_with(b"HTTP/1.1 200"), "plain HTTP answered");

    // A TLS setting that cannot work is refused before it locks the user out.
    let bad = serde_json::json!({"web_ui_https_key_path": certs.path().join("missing.pem")});
    let bad_req = format!(
        "POST /api/v2/app/setPreferences HTTP/1.1\r\nHost: {addr}\r\nCookie: SID={sid}\r\n\
         Connection: close\r\nContent-Type: application/x-www-form-urlencoded\r\n\
         Content-Length: {}\r\n\r\njson={}",
        5 + urlencode(&bad.to_string()).len(),
        urlencode(&bad.to_string())
    );
    let refused = https_request(addr, &der, bad_req).await;
    assert!(refused.starts_with("HTTP/1.1 400"), "{refused}");
    assert!(refused.contains("missing.pem"), "{refused}");
    stop_inside(d).await;
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => {
                char::from(b).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[test]
fn a_tls_identity_that_does_not_load_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key, _) = certificate(dir.path());
    let garbage = dir.path().join("garbage.pem");
    std::fs::write(&garbage, "not a pem file").unwrap();
    let e = bt_daemon::server::acceptor(&garbage, &key)
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("garbage.pem"), "{e}");
    let e = bt_daemon::server::acceptor(&cert, &cert)
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("cert.pem"), "the key file holds no key: {e}");
    let s = Settings {
        use_https: true,
        ..Settings::default()
    };
    let e = bt_daemon::server::tls_acceptor(&s)
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("web_ui_https_cert_path"), "{e}");
}

/// Reads what the server sends on `s` until it closes or `limit` passes; whether it
/// closed, and what it sent.
fn read_until_closed(s: &mut TcpStream, limit: Duration) -> (bool, Vec<u8>) {
    s.set_read_timeout(Some(limit)).unwrap();
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return (true, out),
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return (true, out),
            Err(_) => return (false, out),
        }
    }
}

fn short_limits() -> Limits {
    Limits {
        max_connections: 4,
        header_read_timeout: Duration::from_secs(1),
        idle_timeout: Duration::from_secs(2),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_clients_huge_headers_and_too_many_connections_are_cut_off() {
    let state = tempfile::tempdir().unwrap();
    let downloads = tempfile::tempdir().unwrap();
    let d = start_with(
        state.path(),
        Settings {
            save_path: downloads.path().to_owned(),
            listen: "127.0.0.1:0".parse().unwrap(),
            dht: false,
            ..Settings::default()
        },
        short_limits(),
    )
    .await;
    let addr: SocketAddr = d.api.base.trim_start_matches("http://").parse().unwrap();
    let base = d.api.base.clone();
    tokio::task::spawn_blocking(move || {
        // Headers trickled in: cut off after the header timeout.
        let mut slow = TcpStream::connect(addr).unwrap();
        slow.write_all(b"GET /api/v2/app/version HTTP/1.1\r\nHost: 127.0.0.1\r\n")
            .unwrap();
        let started = Instant::now();
        let (closed, sent) = read_until_closed(&mut slow, Duration::from_secs(10));
        assert!(closed, "a client that never ends its headers is cut off");
        assert!(!sent.starts_with(b"HTTP/1.1 200"));
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{:?}",
            started.elapsed()
        );

        // A connection that says nothing after its request is closed when idle.
        let mut idle = TcpStream::connect(addr).unwrap();
        idle.write_all(b"GET /api/v2/app/version HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            .unwrap();
        let (closed, sent) = read_until_closed(&mut idle, Duration::from_secs(10));
        assert!(closed, "an idle keep-alive connection is closed");
        assert!(sent.starts_with(b"HTTP/1.1 200"), "it was answered first");

        // Headers past the cap: refused, not buffered.
        let mut huge = TcpStream::connect(addr).unwrap();
        let mut req = b"GET /api/v2/app/version HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Pad: ".to_vec();
        req.extend(std::iter::repeat_n(b'a', 200 << 10));
        req.extend_from_slice(b"\r\n\r\n");
        let _ = huge.write_all(&req);
        let (closed, sent) = read_until_closed(&mut huge, Duration::from_secs(10));
        assert!(closed);
        let head = String::from_utf8_lossy(&sent);
        assert!(
            sent.is_empty() || head.starts_with("HTTP/1.1 431"),
            "oversized headers: {head}"
        );

        // Four connections held open: a fifth is closed at once; once one ends, there is
        // room again.
        let mut held: Vec<TcpStream> = (0..4).map(|_| TcpStream::connect(addr).unwrap()).collect();
        std::thread::sleep(Duration::from_millis(200));
        let mut fifth = TcpStream::connect(addr).unwrap();
        let _ = fifth.write_all(b"GET /api/v2/app/version HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
        let (closed, sent) = read_until_closed(&mut fifth, Duration::from_secs(5));
        assert!(closed && sent.is_empty(), "the fifth connection was served");
        held.pop();
        // The held ones end when their header timeout passes; then a request goes through.
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let url = format!("{base}/api/v2/app/version");
            if let Ok(r) = ureq::get(&url).timeout(Duration::from_secs(2)).call() {
                assert_eq!(r.status(), 200);
                break;
            }
            assert!(Instant::now() < deadline, "the API never came back");
            std::thread::sleep(Duration::from_millis(200));
        }
    })
    .await
    .unwrap();
    stop_inside(d).await;
}

/// Sends `head` to `addr`, then `body_len` bytes of chunked body in 16 KiB chunks while
/// a second thread reads the answer (the server may answer and close before the body is
/// all sent); the answer.
fn exchange(addr: &str, head: &str, body_len: usize) -> String {
    let mut stream = TcpStream::connect(addr).unwrap();
    let mut reader = stream.try_clone().unwrap();
    reader
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let answer = std::thread::spawn(move || {
        let mut out = Vec::new();
        let _ = reader.read_to_end(&mut out);
        String::from_utf8_lossy(&out).into_owned()
    });
    let _ = stream.write_all(head.as_bytes());
    let chunk = vec![b'a'; 16384];
    let mut sent = 0;
    while sent < body_len {
        let mut piece = format!("{:x}\r\n", chunk.len()).into_bytes();
        piece.extend_from_slice(&chunk);
        piece.extend_from_slice(b"\r\n");
        if stream.write_all(&piece).is_err() {
            break;
        }
        sent += chunk.len();
    }
    if body_len > 0 {
        let _ = stream.write_all(b"0\r\n\r\n");
    }
    let _ = stream.shutdown(std::net::Shutdown::Write);
    answer.join().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_are_bounded_and_malformed_requests_get_a_400_with_a_reason() {
    let state = tempfile::tempdir().unwrap();
    let downloads = tempfile::tempdir().unwrap();
    let d = start_daemon(state.path(), downloads.path()).await;
    d.api
        .ok(
            "app/setPreferences",
            &[("json", r#"{"torrent_file_size_limit":100000}"#)],
        )
        .await;
    let base = d.api.base.clone();
    let results = tokio::task::spawn_blocking(move || {
        let status = |r: Result<ureq::Response, ureq::Error>| match r {
            Ok(r) => (r.status(), r.into_string().unwrap()),
            Err(ureq::Error::Status(c, r)) => (c, r.into_string().unwrap()),
            Err(e) => panic!("{e}"),
        };
        let url = |p: &str| format!("{base}{p}");
        let addr = base.trim_start_matches("http://").to_string();
        // A declared length past the limit: answered before any of the body is sent.
        let declared = exchange(
            &addr,
            "POST /api/v2/torrents/add HTTP/1.1\r\nHost: 127.0.0.1\r\n\
             Content-Type: multipart/form-data; boundary=x\r\nContent-Length: 300000\r\n\r\n",
            0,
        );
        // The same without a length: chunked, cut off as it streams in.
        let chunked = exchange(
            &addr,
            "POST /api/v2/app/setPreferences HTTP/1.1\r\nHost: 127.0.0.1\r\n\
             Content-Type: application/x-www-form-urlencoded\r\n\
             Transfer-Encoding: chunked\r\n\r\n",
            300_000,
        );
        let bad_json = status(
            ureq::post(&url("/api/v2/app/setPreferences"))
                .send_form(&[("json", "{\"dl_limit\": ")]),
        );
        let bad_multipart = status(
            ureq::post(&url("/api/v2/torrents/add"))
                .set("Content-Type", "multipart/form-data; boundary=x")
                .send_string("--x\r\nContent-Disposition: form-data; name=\"urls\"\r\n\r\nab"),
        );
        let bad_rpc = {
            let probe = status(ureq::post(&url("/transmission/rpc")).send_string("{}"));
            assert_eq!(probe.0, 409, "{probe:?}");
            let sid = ureq::post(&url("/transmission/rpc"))
                .send_string("{}")
                .err()
                .and_then(|e| match e {
                    ureq::Error::Status(_, r) => r
                        .header(bt_daemon::trpc::SESSION_ID_HEADER)
                        .map(String::from),
                    _ => None,
                })
                .unwrap();
            status(
                ureq::post(&url("/transmission/rpc"))
                    .set(bt_daemon::trpc::SESSION_ID_HEADER, &sid)
                    .send_string("{\"method\": [1,"),
            )
        };
        (declared, chunked, bad_json, bad_multipart, bad_rpc)
    })
    .await
    .unwrap();
    let (declared, chunked, bad_json, bad_multipart, bad_rpc) = results;
    assert!(declared.starts_with("HTTP/1.1 413"), "{declared}");
    assert!(declared.contains("torrent_file_size_limit"), "{declared}");
    assert!(chunked.starts_with("HTTP/1.1 413"), "{chunked}");
    assert_eq!(bad_json.0, 400, "{bad_json:?}");
    assert!(bad_json.1.contains("json"), "{bad_json:?}");
    assert_eq!(bad_multipart.0, 400, "{bad_multipart:?}");
    assert!(!bad_multipart.1.is_empty());
    assert_eq!(bad_rpc.0, 400, "{bad_rpc:?}");
    assert!(!bad_rpc.1.is_empty());
    let (code, _) = d.api.call("app/version", &[]).await;
    assert_eq!(code, 200, "still serving");
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn names_and_paths_from_the_api_never_leave_the_torrent_folder() {
    let state = tempfile::tempdir().unwrap();
    let downloads = tempfile::tempdir().unwrap();
    let d = start_daemon(state.path(), downloads.path()).await;
    let t = torrent(
        "box",
        &[("a/one.bin", b"one"), ("b/two.bin", b"two")],
        16384,
    );
    let (code, body) = d.api.upload(&t, &[("stopped", "true")]).await;
    assert_eq!(code, 200, "{body}");
    let hash = bt_meta::Metainfo::from_bytes(&t)
        .unwrap()
        .info_hash
        .unwrap()
        .to_hex();
    let bad_names = [
        "../escape",
        "/etc",
        "a/../../x",
        "..",
        ".",
        "a\\..\\..\\x",
        "x\0y",
    ];
    for bad in bad_names {
        let (code, body) = d
            .api
            .call(
                "torrents/renameFolder",
                &[("hash", &hash), ("oldPath", "box/a"), ("newPath", bad)],
            )
            .await;
        assert_eq!(code, 409, "renameFolder to {bad:?}: {body}");
        let (code, body) = d
            .api
            .call(
                "torrents/renameFile",
                &[
                    ("hash", &hash),
                    ("oldPath", "box/a/one.bin"),
                    ("newPath", bad),
                ],
            )
            .await;
        assert_eq!(code, 409, "renameFile to {bad:?}: {body}");
    }
    for bad in ["../escape", "a/b", "..", "a\\b"] {
        let (code, body) = d
            .api
            .call("torrents/rename", &[("hash", &hash), ("name", bad)])
            .await;
        assert_eq!(code, 409, "rename to {bad:?}: {body}");
    }
    let names: Vec<String> = d
        .api
        .json("torrents/files", &[("hash", &hash)])
        .await
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(names, ["box/a/one.bin", "box/b/two.bin"], "nothing moved");
    // Nothing appeared beside the downloads folder.
    let parent = downloads.path().parent().unwrap();
    assert!(!parent.join("escape").exists());
    assert!(!parent.join("x").exists());
    d.stop().await;
}
