//! The HTTP client against a tiny hostile server: every failure is a clear error,
//! quickly, with bounded memory.

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bt_tracker::{Error, HttpConfig, HttpTracker};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::{client, fast_config, request, AbortOnDrop};

/// Serves every connection with `handler`, after reading the request head.
/// Returns the base URL (`http://ADDR`) and the guard that stops the server.
async fn hostile<F, Fut>(handler: F) -> (String, AbortOnDrop)
where
    F: Fn(TcpStream, String) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let handler = Arc::new(handler);
    let task = tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let handler = handler.clone();
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") && head.len() < 16 * 1024 {
                    match stream.read(&mut byte).await {
                        Ok(1) => head.push(byte[0]),
                        _ => return,
                    }
                }
                let line = String::from_utf8_lossy(&head)
                    .lines()
                    .next()
                    .unwrap_or("")
                    .to_owned();
                handler(stream, line).await;
            });
        }
    });
    (base, AbortOnDrop(task))
}

/// A handler that writes `reply` and closes.
fn reply(
    bytes: &'static [u8],
) -> impl Fn(TcpStream, String) -> std::pin::Pin<Box<dyn Future<Output = ()> + Send>> + Send + Sync
{
    move |mut s, _| {
        Box::pin(async move {
            let _ = s.write_all(bytes).await;
            let _ = s.shutdown().await;
        })
    }
}

async fn announce_err(url: &str) -> Error {
    client().announce(url, &request(1, 1)).await.unwrap_err()
}

#[tokio::test]
async fn truncated_body_is_an_error() {
    let (base, _g) = hostile(reply(
        b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nd8:intervali5e",
    ))
    .await;
    let e = announce_err(&format!("{base}/announce")).await;
    assert!(matches!(e, Error::Truncated { .. }), "{e}");
}

#[tokio::test]
async fn truncated_body_without_length_is_not_bencode_with_offset() {
    let (base, _g) = hostile(reply(
        b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nd8:intervali5e5:peers",
    ))
    .await;
    let e = announce_err(&format!("{base}/announce")).await;
    assert!(matches!(e, Error::NotBencode { offset: 21, .. }), "{e}");
}

#[tokio::test]
async fn not_bencode_names_the_offset() {
    let (base, _g) = hostile(reply(
        b"HTTP/1.1 200 OK\r\nContent-Length: 15\r\n\r\n<html>hi</html>",
    ))
    .await;
    let e = announce_err(&format!("{base}/announce")).await;
    assert!(matches!(e, Error::NotBencode { offset: 0, .. }), "{e}");
    assert!(e.to_string().ends_with("at byte 0"), "{e}");
}

#[tokio::test]
async fn failure_reason_is_the_trackers_text() {
    let (base, _g) = hostile(reply(
        b"HTTP/1.1 200 OK\r\nContent-Length: 41\r\n\r\nd14:failure reason19:torrent not allowede",
    ))
    .await;
    let e = announce_err(&format!("{base}/announce")).await;
    assert_eq!(e.to_string(), "tracker failure: \"torrent not allowed\"");
}

#[tokio::test]
async fn failure_reason_with_an_error_status_is_still_the_trackers_text() {
    let (base, _g) = hostile(reply(
        b"HTTP/1.1 403 Forbidden\r\nContent-Length: 28\r\n\r\nd14:failure reason7:go awaye",
    ))
    .await;
    let e = announce_err(&format!("{base}/announce")).await;
    assert_eq!(e.to_string(), "tracker failure: \"go away\"");
}

#[tokio::test]
async fn error_status_without_reason_names_the_status() {
    let (base, _g) = hostile(reply(b"HTTP/1.1 500 Oops\r\nContent-Length: 0\r\n\r\n")).await;
    let url = format!("{base}/announce");
    let e = announce_err(&url).await;
    assert!(matches!(e, Error::HttpStatus { status: 500, .. }), "{e}");
    assert_eq!(
        e.to_string(),
        format!("tracker {url:?} answered http status 500")
    );
}

#[tokio::test]
async fn declared_huge_body_is_refused_before_reading() {
    let (base, _g) = hostile(|mut s: TcpStream, _| async move {
        let _ = s
            .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 104857600\r\n\r\n")
            .await;
        // Never send the body: the client must not wait for it.
        tokio::time::sleep(Duration::from_secs(30)).await;
    })
    .await;
    let start = Instant::now();
    let e = announce_err(&format!("{base}/announce")).await;
    assert!(
        matches!(e, Error::TooLarge { limit, .. } if limit == 2 << 20),
        "{e}"
    );
    assert!(
        start.elapsed() < Duration::from_secs(3),
        "{:?}",
        start.elapsed()
    );
}

#[tokio::test]
async fn endless_body_is_capped_quickly() {
    let written = Arc::new(AtomicUsize::new(0));
    let counter = written.clone();
    let (base, _g) = hostile(move |mut s: TcpStream, _| {
        let counter = counter.clone();
        async move {
            // No Content-Length: 100 MB, then close; stops when the client hangs up.
            let _ = s
                .write_all(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n")
                .await;
            let chunk = vec![b'x'; 64 * 1024];
            for _ in 0..1600 {
                if s.write_all(&chunk).await.is_err() {
                    return;
                }
                counter.fetch_add(chunk.len(), Ordering::Relaxed);
            }
        }
    })
    .await;
    let start = Instant::now();
    let e = announce_err(&format!("{base}/announce")).await;
    assert!(matches!(e, Error::TooLarge { .. }), "{e}");
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "{:?}",
        start.elapsed()
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    let sent = written.load(Ordering::Relaxed);
    // The client stopped reading at the cap: the server could only push the cap
    // plus what the socket buffers hold, far from 100 MB.
    assert!(
        sent < 32 << 20,
        "server wrote {sent} bytes before the client hung up"
    );
}

#[tokio::test]
async fn redirect_loop_is_a_clear_error() {
    let (base, _g) = hostile(|mut s: TcpStream, line: String| async move {
        // Redirect to the very same target, forever.
        let target = line.split(' ').nth(1).unwrap_or("/").to_owned();
        let resp = format!("HTTP/1.1 302 Found\r\nLocation: {target}\r\nContent-Length: 0\r\n\r\n");
        let _ = s.write_all(resp.as_bytes()).await;
        let _ = s.shutdown().await;
    })
    .await;
    let url = format!("{base}/announce");
    let e = announce_err(&url).await;
    assert!(matches!(&e, Error::RedirectLoop { limit: 5, .. }), "{e}");
    assert_eq!(
        e.to_string(),
        format!("too many redirects from {url:?} (limit 5)")
    );
}

#[tokio::test]
async fn one_redirect_is_followed() {
    let good = crate::loopback_server().await;
    let target = good.http_url();
    let (base, _g) = hostile(move |mut s: TcpStream, line: String| {
        // Keep the query: the tracker needs the announce parameters.
        let query = line
            .split(' ')
            .nth(1)
            .and_then(|t| t.split_once('?'))
            .map(|(_, q)| q.to_owned());
        let location = format!("{target}?{}", query.unwrap_or_default());
        async move {
            let resp =
                format!("HTTP/1.1 301 Moved\r\nLocation: {location}\r\nContent-Length: 0\r\n\r\n");
            let _ = s.write_all(resp.as_bytes()).await;
            let _ = s.shutdown().await;
        }
    })
    .await;
    let resp = client()
        .announce(&format!("{base}/announce"), &request(1, 1))
        .await
        .unwrap();
    assert_eq!(resp.incomplete, Some(1));
    assert_eq!(good.torrent_count(), 1);
}

#[tokio::test]
async fn trickling_server_hits_the_overall_timeout() {
    let (base, _g) = hostile(|mut s: TcpStream, _| async move {
        let _ = s
            .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n")
            .await;
        // One byte every 200 ms: each read is quick, the whole is not.
        for _ in 0..1000 {
            if s.write_all(b"d").await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    })
    .await;
    let start = Instant::now();
    let e = announce_err(&format!("{base}/announce")).await;
    let took = start.elapsed();
    assert!(matches!(e, Error::Timeout { .. }), "{e}");
    let limit = fast_config().http.timeout;
    assert!(
        took >= limit - Duration::from_millis(100) && took < limit + Duration::from_secs(3),
        "{took:?}"
    );
}

#[tokio::test]
async fn trickling_headers_hit_the_overall_timeout() {
    let (base, _g) = hostile(|mut s: TcpStream, _| async move {
        for b in b"HTTP/1.1 200 OK\r\nX-Slow: "
            .iter()
            .chain([b'a'; 100].iter())
        {
            if s.write_all(&[*b]).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await;
    let start = Instant::now();
    let e = announce_err(&format!("{base}/announce")).await;
    assert!(matches!(e, Error::Timeout { .. }), "{e}");
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "{:?}",
        start.elapsed()
    );
}

#[tokio::test]
async fn silent_server_hits_the_timeout() {
    let (base, _g) = hostile(|s: TcpStream, _| async move {
        let _open = s;
        tokio::time::sleep(Duration::from_secs(30)).await;
    })
    .await;
    let e = announce_err(&format!("{base}/announce")).await;
    assert!(matches!(e, Error::Timeout { .. }), "{e}");
}

#[tokio::test]
async fn small_cap_from_config_is_enforced() {
    let (base, _g) = hostile(reply(
        b"HTTP/1.1 200 OK\r\nContent-Length: 21\r\n\r\nd8:intervali5e5:xxxxe",
    ))
    .await;
    let http = HttpTracker::new(HttpConfig {
        max_response_len: 10,
        ..fast_config().http
    });
    let e = http
        .announce(&format!("{base}/announce"), &request(1, 1))
        .await
        .unwrap_err();
    assert!(matches!(e, Error::TooLarge { limit: 10, .. }), "{e}");
}

#[tokio::test]
async fn request_carries_the_announce_parameters() {
    let seen = Arc::new(std::sync::Mutex::new(String::new()));
    let store = seen.clone();
    let (base, _g) = hostile(move |mut s: TcpStream, line: String| {
        *store.lock().unwrap() = line;
        async move {
            let _ = s
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 15\r\n\r\nd8:intervali5ee")
                .await;
            let _ = s.shutdown().await;
        }
    })
    .await;
    let resp = client()
        .announce(&format!("{base}/announce?passkey=k"), &request(1, 6881))
        .await
        .unwrap();
    assert_eq!(resp.interval, Duration::from_secs(5));
    let line = seen.lock().unwrap().clone();
    let ih = "%01".repeat(20);
    assert!(
        line.starts_with(&format!("GET /announce?passkey=k&info_hash={ih}&peer_id=")),
        "{line}"
    );
    assert!(
        line.contains("&port=6881&") && line.contains("&compact=1"),
        "{line}"
    );
}

#[tokio::test]
async fn redirect_without_location_names_the_status() {
    let (base, _g) = hostile(reply(b"HTTP/1.1 302 Found\r\nContent-Length: 0\r\n\r\n")).await;
    let e = announce_err(&format!("{base}/announce")).await;
    assert!(matches!(e, Error::HttpStatus { status: 302, .. }), "{e}");
}
