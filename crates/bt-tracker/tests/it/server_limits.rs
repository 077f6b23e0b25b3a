//! The built-in tracker against misbehaving clients: bounded heads, timeouts, a
//! connection cap, garbage datagrams.

use std::time::{Duration, Instant};

use bt_tracker::{ServerConfig, TrackerServer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};

use crate::{client, request};

async fn server(config: ServerConfig) -> TrackerServer {
    TrackerServer::bind("127.0.0.1:0".parse().unwrap(), config)
        .await
        .unwrap()
}

async fn raw(server: &TrackerServer, bytes: &[u8]) -> String {
    let mut s = TcpStream::connect(server.local_addr()).await.unwrap();
    s.write_all(bytes).await.unwrap();
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut out)).await;
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test]
async fn oversized_head_is_refused() {
    let s = server(ServerConfig::default()).await;
    let mut head = b"GET /announce HTTP/1.1\r\nX-Pad: ".to_vec();
    head.extend(std::iter::repeat_n(b'a', 20_000));
    let reply = raw(&s, &head).await;
    assert!(reply.starts_with("HTTP/1.1 431 "), "{reply:?}");
}

#[tokio::test]
async fn unknown_path_and_method_get_statuses() {
    let s = server(ServerConfig::default()).await;
    assert!(raw(&s, b"GET /x HTTP/1.1\r\n\r\n")
        .await
        .starts_with("HTTP/1.1 404 "));
    assert!(raw(&s, b"PUT /announce HTTP/1.1\r\n\r\n")
        .await
        .starts_with("HTTP/1.1 405 "));
    assert!(raw(&s, b"\x16\x03\x01 tls?\r\n\r\n")
        .await
        .starts_with("HTTP/1.1 400 "));
    let ok = raw(&s, b"GET /scrape HTTP/1.1\r\n\r\n").await;
    assert!(
        ok.starts_with("HTTP/1.1 200 OK\r\n") && ok.ends_with("d5:filesdee"),
        "{ok:?}"
    );
}

#[tokio::test]
async fn slow_client_is_dropped_and_the_cap_frees_up() {
    // One connection at a time, 300 ms to send a head.
    let s = server(ServerConfig {
        max_connections: 1,
        request_timeout: Duration::from_millis(300),
        ..ServerConfig::default()
    })
    .await;
    let mut idle = TcpStream::connect(s.local_addr()).await.unwrap();
    idle.write_all(b"GET /announce?").await.unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    // The announce waits for the idle connection's slot, which its timeout frees.
    let start = Instant::now();
    client()
        .announce(&s.http_url(), &request(1, 1))
        .await
        .unwrap();
    let waited = start.elapsed();
    assert!(
        waited >= Duration::from_millis(200),
        "the cap held it back: {waited:?}"
    );
    let mut rest = Vec::new();
    let n = tokio::time::timeout(Duration::from_secs(2), idle.read_to_end(&mut rest)).await;
    assert!(
        matches!(n, Ok(Ok(0))),
        "the slow client was closed without an answer: {n:?}"
    );
}

#[tokio::test]
async fn garbage_datagrams_get_no_answer_and_do_no_harm() {
    let s = server(ServerConfig::default()).await;
    let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    sock.connect(s.local_addr()).await.unwrap();
    for junk in [&b""[..], b"x", &[0u8; 16], &[0xff; 98], &[0u8; 4000]] {
        sock.send(junk).await.unwrap();
    }
    let mut buf = [0u8; 64];
    let got = tokio::time::timeout(Duration::from_millis(200), sock.recv(&mut buf)).await;
    assert!(got.is_err(), "no reply to garbage: {got:?}");
    client()
        .announce(&s.udp_url(), &request(1, 1))
        .await
        .unwrap();
}
