//! The built-in tracker: HTTP (`GET /announce`, `GET /scrape`) and UDP (BEP 15)
//! on the same port, backed by [`Swarms`].
//!
//! A peer is recorded at the source IP of its request and the port it announces.
//! The `ip` parameter (HTTP) or field (UDP) is honoured only when both the source
//! and the claimed address are loopback (so several local test clients can share
//! a tracker), or everywhere when [`ServerConfig::trust_ip_param`] is set: trusting
//! it lets anyone point the swarm at a third party.
//!
//! Limits: request heads of at most [`MAX_HEAD_LEN`] bytes, read and answered within
//! [`ServerConfig::request_timeout`]; at most [`ServerConfig::max_connections`] HTTP
//! connections at once (each `Connection: close`); the swarm caps of [`SwarmConfig`].
//! UDP connection ids are a keyed hash of the client IP and the current minute, valid
//! for one to two minutes, so the server keeps no per-client state for them.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hash, Hasher};
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::SeedableRng;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::{watch, Semaphore};
use tokio::task::{JoinHandle, JoinSet};

use bt_meta::InfoHash;

use crate::announce::{AnnounceResponse, ScrapeStats};
use crate::compact::Family;
use crate::error::{Error, Result};
use crate::http::{encode_announce, encode_failure, encode_scrape};
use crate::httpd::{
    head_end, parse_announce_query, parse_request_line, parse_scrape_query, MAX_HEAD_LEN,
};
use crate::swarm::{SwarmAnnounce, SwarmConfig, Swarms};
use crate::udp::{self, Request, Response, MAX_PACKET_LEN};

/// Settings of the built-in tracker.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// The `interval` told to clients; peers expire after two of them.
    pub interval: Duration,
    /// The `min interval` told to HTTP clients, if any.
    pub min_interval: Option<Duration>,
    /// Most torrents tracked.
    pub max_torrents: usize,
    /// Most peers per torrent (the longest-unseen is evicted beyond it).
    pub max_peers_per_torrent: usize,
    /// Peers handed out when the request has no `numwant`.
    pub default_numwant: usize,
    /// Most peers handed out.
    pub max_numwant: usize,
    /// Honour the `ip` parameter from any source (default: loopback to loopback only).
    pub trust_ip_param: bool,
    /// Most HTTP connections served at once.
    pub max_connections: usize,
    /// Time to read a request head and write the answer.
    pub request_timeout: Duration,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            interval: Duration::from_secs(1800),
            min_interval: None,
            max_torrents: 10_000,
            max_peers_per_torrent: 2_000,
            default_numwant: 50,
            max_numwant: 200,
            trust_ip_param: false,
            max_connections: 256,
            request_timeout: Duration::from_secs(10),
        }
    }
}

impl ServerConfig {
    fn swarm_config(&self) -> SwarmConfig {
        SwarmConfig {
            max_torrents: self.max_torrents,
            max_peers_per_torrent: self.max_peers_per_torrent,
            peer_ttl: self.interval.saturating_mul(2),
            default_numwant: self.default_numwant,
            max_numwant: self.max_numwant,
        }
    }
}

/// Stateless UDP connection ids: a keyed hash of the client IP and the minute.
struct ConnectionIds {
    key: RandomState,
    start: Instant,
}

impl ConnectionIds {
    fn new(start: Instant) -> Self {
        Self {
            key: RandomState::new(),
            start,
        }
    }

    fn epoch(&self, now: Instant) -> u64 {
        now.saturating_duration_since(self.start).as_secs() / 60
    }

    fn make(&self, ip: IpAddr, epoch: u64) -> u64 {
        let mut h = self.key.build_hasher();
        ip.hash(&mut h);
        epoch.hash(&mut h);
        h.finish()
    }

    fn issue(&self, ip: IpAddr, now: Instant) -> u64 {
        self.make(ip, self.epoch(now))
    }

    fn check(&self, id: u64, ip: IpAddr, now: Instant) -> bool {
        let e = self.epoch(now);
        id == self.make(ip, e) || (e > 0 && id == self.make(ip, e - 1))
    }
}

/// The server's state shared by its tasks; the handlers are plain functions of
/// (source, request bytes, now) so they are tested without sockets.
struct Shared {
    config: ServerConfig,
    swarms: Mutex<(Swarms, StdRng)>,
    conn_ids: ConnectionIds,
}

/// An HTTP answer: status line and body.
type HttpReply = (u16, &'static str, Vec<u8>);

impl Shared {
    fn new(config: ServerConfig, now: Instant) -> Self {
        Self {
            swarms: Mutex::new((Swarms::new(config.swarm_config()), StdRng::from_entropy())),
            conn_ids: ConnectionIds::new(now),
            config,
        }
    }

    fn peer_ip(&self, src: IpAddr, claimed: Option<IpAddr>) -> IpAddr {
        let src = src.to_canonical();
        match claimed.map(|c| c.to_canonical()) {
            Some(c) if self.config.trust_ip_param || (src.is_loopback() && c.is_loopback()) => c,
            _ => src,
        }
    }

    fn announce(&self, now: Instant, a: &SwarmAnnounce) -> Result<crate::swarm::SwarmReply> {
        let mut guard = self.swarms.lock().unwrap_or_else(|p| p.into_inner());
        let (swarms, rng) = &mut *guard;
        swarms.announce(now, a, rng)
    }

    fn scrape(&self, hashes: &[InfoHash]) -> Vec<(InfoHash, ScrapeStats)> {
        let guard = self.swarms.lock().unwrap_or_else(|p| p.into_inner());
        if hashes.is_empty() {
            guard.0.scrape_all()
        } else {
            hashes.iter().map(|h| (*h, guard.0.scrape(h))).collect()
        }
    }

    fn handle_http(&self, src: SocketAddr, head: &[u8], now: Instant) -> HttpReply {
        let Some(line) = parse_request_line(head) else {
            return (400, "Bad Request", b"bad request line".to_vec());
        };
        if line.method != b"GET" {
            return (405, "Method Not Allowed", b"only GET".to_vec());
        }
        let body = match line.path {
            b"/announce" => self.http_announce(src, line.query, now),
            b"/scrape" => match parse_scrape_query(line.query) {
                Ok(hashes) => {
                    let stats = self.scrape(&hashes);
                    encode_scrape(stats.iter().map(|(h, s)| (h, s)))
                }
                Err(e) => encode_failure(&e.to_string()),
            },
            _ => return (404, "Not Found", b"not found".to_vec()),
        };
        (200, "OK", body)
    }

    fn http_announce(&self, src: SocketAddr, query: &[u8], now: Instant) -> Vec<u8> {
        let (req, compact) = match parse_announce_query(query) {
            Ok(r) => r,
            Err(e) => return encode_failure(&e.to_string()),
        };
        let ip = self.peer_ip(src.ip(), req.ip);
        let a = SwarmAnnounce {
            info_hash: req.info_hash,
            peer_id: req.peer_id,
            addr: SocketAddr::new(ip, req.port),
            event: req.event,
            left: req.left,
            numwant: req.numwant,
            family: None,
        };
        match self.announce(now, &a) {
            Ok(reply) => encode_announce(
                &AnnounceResponse {
                    interval: self.config.interval,
                    min_interval: self.config.min_interval,
                    tracker_id: None,
                    complete: Some(reply.complete),
                    incomplete: Some(reply.incomplete),
                    warning: None,
                    peers: reply.peers,
                },
                compact,
            ),
            Err(e) => encode_failure(&e.to_string()),
        }
    }

    /// The answer to one datagram; `None` for packets that do not decode (never
    /// answer garbage: the source may be spoofed).
    fn handle_udp(&self, src: SocketAddr, packet: &[u8], now: Instant) -> Option<Vec<u8>> {
        let req = match Request::decode(packet) {
            Ok(r) => r,
            Err(e) => {
                tracing::debug!(%src, error = %e, "ignoring udp packet");
                return None;
            }
        };
        let src_ip = src.ip().to_canonical();
        let transaction_id = req.transaction_id();
        let refuse = |message: String| {
            Some(
                Response::Error {
                    transaction_id,
                    message,
                }
                .encode(),
            )
        };
        let resp = match req {
            Request::Connect { transaction_id } => Response::Connect {
                transaction_id,
                connection_id: self.conn_ids.issue(src_ip, now),
            },
            Request::Announce(a) => {
                if !self.conn_ids.check(a.connection_id, src_ip, now) {
                    return refuse("invalid connection id".into());
                }
                // By the canonical address: a dual-stack socket sees IPv4 clients
                // as `::ffff:a.b.c.d`, and they expect 6-byte peers.
                let family = Family::of(&SocketAddr::new(src_ip, 0));
                // Keep the answer within one typical datagram.
                let fit = (1400 - 20) / family.entry_len();
                let want = if a.num_want < 0 {
                    self.config.default_numwant
                } else {
                    a.num_want as usize
                };
                let ip = self.peer_ip(src.ip(), a.ip.map(IpAddr::V4));
                let sa = SwarmAnnounce {
                    info_hash: a.info_hash,
                    peer_id: a.peer_id,
                    addr: SocketAddr::new(ip, a.port),
                    event: a.event,
                    left: a.left,
                    numwant: Some(u32::try_from(want.min(fit)).unwrap_or(u32::MAX)),
                    family: Some(family),
                };
                match self.announce(now, &sa) {
                    Ok(reply) => Response::Announce {
                        transaction_id,
                        interval: u32::try_from(self.config.interval.as_secs()).unwrap_or(u32::MAX),
                        leechers: u32::try_from(reply.incomplete).unwrap_or(u32::MAX),
                        seeders: u32::try_from(reply.complete).unwrap_or(u32::MAX),
                        peers: reply.peers.into_iter().map(|p| p.addr).collect(),
                    },
                    Err(e) => return refuse(e.to_string()),
                }
            }
            Request::Scrape {
                connection_id,
                info_hashes,
                ..
            } => {
                if !self.conn_ids.check(connection_id, src_ip, now) {
                    return refuse("invalid connection id".into());
                }
                let hashes = info_hashes
                    .get(..udp::MAX_SCRAPE_HASHES)
                    .unwrap_or(&info_hashes);
                if hashes.is_empty() {
                    return refuse("no info_hash to scrape".into());
                }
                Response::Scrape {
                    transaction_id,
                    stats: self.scrape(hashes).into_iter().map(|(_, s)| s).collect(),
                }
            }
        };
        Some(resp.encode())
    }
}

/// A running built-in tracker. [`TrackerServer::shutdown`] stops it and waits;
/// dropping the handle stops it too (its tasks are aborted).
pub struct TrackerServer {
    local_addr: SocketAddr,
    shared: Arc<Shared>,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl std::fmt::Debug for TrackerServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TrackerServer")
            .field("local_addr", &self.local_addr)
            .finish_non_exhaustive()
    }
}

async fn bind_pair(addr: SocketAddr) -> Result<(TcpListener, UdpSocket)> {
    let io = |addr, source| Error::Io { addr, source };
    if addr.port() != 0 {
        let tcp = TcpListener::bind(addr).await.map_err(|e| io(addr, e))?;
        let udp = UdpSocket::bind(addr).await.map_err(|e| io(addr, e))?;
        return Ok((tcp, udp));
    }
    // Port 0: let TCP pick a port, then take the same number for UDP; retry if taken.
    let mut last = None;
    for _ in 0..16 {
        let tcp = TcpListener::bind(addr).await.map_err(|e| io(addr, e))?;
        let port_addr = tcp.local_addr().map_err(|e| io(addr, e))?;
        match UdpSocket::bind(port_addr).await {
            Ok(udp) => return Ok((tcp, udp)),
            Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => last = Some((port_addr, e)),
            Err(e) => return Err(io(port_addr, e)),
        }
    }
    let (a, e) = last.unwrap_or_else(|| (addr, std::io::ErrorKind::AddrInUse.into()));
    Err(io(a, e))
}

impl TrackerServer {
    /// Binds TCP and UDP on `addr` (port 0: one free port for both) and starts serving.
    pub async fn bind(addr: SocketAddr, config: ServerConfig) -> Result<Self> {
        let (tcp, udp) = bind_pair(addr).await?;
        let local_addr = tcp
            .local_addr()
            .map_err(|source| Error::Io { addr, source })?;
        let shared = Arc::new(Shared::new(config, Instant::now()));
        let (stop, stopped) = watch::channel(false);
        let tasks = vec![
            tokio::spawn(serve_tcp(tcp, shared.clone(), stopped.clone())),
            tokio::spawn(serve_udp(udp, shared.clone(), stopped.clone())),
            tokio::spawn(sweep(shared.clone(), stopped)),
        ];
        tracing::info!(%local_addr, "tracker listening (http and udp)");
        Ok(Self {
            local_addr,
            shared,
            stop,
            tasks,
        })
    }

    /// The bound address (TCP and UDP share the port).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// `http://ADDR/announce`.
    pub fn http_url(&self) -> String {
        format!("http://{}/announce", self.local_addr)
    }

    /// `udp://ADDR/announce`.
    pub fn udp_url(&self) -> String {
        format!("udp://{}/announce", self.local_addr)
    }

    /// Current counts for one torrent.
    pub fn scrape(&self, info_hash: &InfoHash) -> ScrapeStats {
        self.shared
            .scrape(std::slice::from_ref(info_hash))
            .first()
            .map(|(_, s)| *s)
            .unwrap_or_default()
    }

    /// How many torrents are tracked.
    pub fn torrent_count(&self) -> usize {
        let guard = self.shared.swarms.lock().unwrap_or_else(|p| p.into_inner());
        guard.0.torrent_count()
    }

    /// Stops accepting, closes open connections, and waits for the tasks to end.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        for task in std::mem::take(&mut self.tasks) {
            let _ = task.await;
        }
    }
}

impl Drop for TrackerServer {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

async fn serve_tcp(listener: TcpListener, shared: Arc<Shared>, mut stop: watch::Receiver<bool>) {
    let permits = Arc::new(Semaphore::new(shared.config.max_connections.max(1)));
    let mut conns = JoinSet::new();
    loop {
        while conns.try_join_next().is_some() {}
        let permit = tokio::select! {
            _ = stop.changed() => break,
            p = permits.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
        };
        let (stream, src) = tokio::select! {
            _ = stop.changed() => break,
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    // Out of descriptors and the like: back off instead of spinning.
                    tracing::debug!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let shared = shared.clone();
        conns.spawn(async move {
            let _permit = permit;
            serve_conn(stream, src, &shared).await;
        });
    }
    conns.shutdown().await;
}

/// Why no request head was read.
enum HeadError {
    TooLarge,
    Closed,
}

async fn read_head(stream: &mut TcpStream) -> Result<Vec<u8>, HeadError> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    loop {
        let n = stream
            .read(&mut chunk)
            .await
            .map_err(|_| HeadError::Closed)?;
        let Some(data) = chunk.get(..n).filter(|d| !d.is_empty()) else {
            return Err(HeadError::Closed);
        };
        let from = buf.len().saturating_sub(3);
        buf.extend_from_slice(data);
        if let Some(end) = buf.get(from..).and_then(head_end) {
            buf.truncate(from + end);
            return Ok(buf);
        }
        if buf.len() > MAX_HEAD_LEN {
            return Err(HeadError::TooLarge);
        }
    }
}

async fn serve_conn(mut stream: TcpStream, src: SocketAddr, shared: &Shared) {
    let limit = shared.config.request_timeout;
    let (status, reason, body) = match tokio::time::timeout(limit, read_head(&mut stream)).await {
        Ok(Ok(head)) => shared.handle_http(src, &head, Instant::now()),
        Ok(Err(HeadError::TooLarge)) => (431, "Request Header Fields Too Large", Vec::new()),
        Ok(Err(HeadError::Closed)) | Err(_) => return,
    };
    let mut out = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    out.extend_from_slice(&body);
    let _ = tokio::time::timeout(limit, async {
        stream.write_all(&out).await?;
        stream.shutdown().await
    })
    .await;
    if status == 431 {
        // The client may still be sending its oversized head; closing with unread
        // input would reset the connection and could destroy our answer in flight.
        // Discard a bounded amount for a bounded time first.
        let _ = tokio::time::timeout(Duration::from_secs(1), async {
            let mut sink = [0u8; 4096];
            let mut left = 256 * 1024usize;
            while left > 0 {
                match stream.read(&mut sink).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => left = left.saturating_sub(n),
                }
            }
        })
        .await;
    }
}

async fn serve_udp(socket: UdpSocket, shared: Arc<Shared>, mut stop: watch::Receiver<bool>) {
    let mut buf = vec![0u8; MAX_PACKET_LEN];
    loop {
        let (n, src) = tokio::select! {
            _ = stop.changed() => break,
            r = socket.recv_from(&mut buf) => match r {
                Ok(x) => x,
                Err(e) => {
                    tracing::debug!(error = %e, "udp receive failed");
                    continue;
                }
            },
        };
        let Some(packet) = buf.get(..n) else { continue };
        if let Some(reply) = shared.handle_udp(src, packet, Instant::now()) {
            if let Err(e) = socket.send_to(&reply, src).await {
                tracing::debug!(%src, error = %e, "udp send failed");
            }
        }
    }
}

async fn sweep(shared: Arc<Shared>, mut stop: watch::Receiver<bool>) {
    let every = (shared.config.interval / 2).clamp(Duration::from_secs(1), Duration::from_secs(60));
    let mut tick = tokio::time::interval(every);
    loop {
        tokio::select! {
            _ = stop.changed() => break,
            _ = tick.tick() => {
                let mut guard = shared.swarms.lock().unwrap_or_else(|p| p.into_inner());
                guard.0.expire(Instant::now());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::announce::{AnnounceRequest, Event};
    use crate::http::{announce_url, parse_announce, parse_scrape};
    use crate::udp::UdpAnnounce;
    use bt_meta::PeerId;

    fn shared() -> Shared {
        Shared::new(
            ServerConfig {
                interval: Duration::from_secs(60),
                ..ServerConfig::default()
            },
            Instant::now(),
        )
    }

    fn get(s: &Shared, src: &str, target: &str) -> HttpReply {
        let head = format!("GET {target} HTTP/1.1\r\nHost: x\r\n\r\n");
        s.handle_http(src.parse().unwrap(), head.as_bytes(), Instant::now())
    }

    fn announce_target(id: u8, port: u16, ip: Option<&str>, compact: bool) -> String {
        let mut r = AnnounceRequest::new(InfoHash([1; 20]), PeerId([id; 20]), port);
        r.left = 10;
        r.event = Event::Started;
        r.ip = ip.map(|i| i.parse().unwrap());
        let mut url = announce_url("http://t/announce", &r);
        if !compact {
            url = url.replace("compact=1", "compact=0");
        }
        url.trim_start_matches("http://t").to_owned()
    }

    #[test]
    fn http_routes_and_statuses() {
        let s = shared();
        assert_eq!(get(&s, "127.0.0.1:1", "/nope").0, 404);
        let head = b"POST /announce HTTP/1.1\r\n\r\n";
        assert_eq!(
            s.handle_http("127.0.0.1:1".parse().unwrap(), head, Instant::now())
                .0,
            405
        );
        assert_eq!(
            s.handle_http(
                "127.0.0.1:1".parse().unwrap(),
                b"garbage\r\n\r\n",
                Instant::now()
            )
            .0,
            400
        );
        let (status, _, body) = get(&s, "127.0.0.1:1", "/announce?info_hash=x");
        assert_eq!(status, 200);
        assert_eq!(
            parse_announce(&body).unwrap_err().to_string(),
            "tracker failure: \"bad request parameter \\\"info_hash\\\"\""
        );
    }

    #[test]
    fn dict_peers_carry_ids_and_compact_splits_families() {
        let s = shared();
        get(&s, "10.0.0.1:5000", &announce_target(1, 6881, None, true));
        get(
            &s,
            "[2001:db8::1]:5000",
            &announce_target(2, 6882, None, true),
        );
        let (_, _, body) = get(&s, "10.0.0.3:5000", &announce_target(3, 6883, None, false));
        let mut peers = parse_announce(&body).unwrap().peers;
        peers.sort_by_key(|p| p.addr);
        assert_eq!(peers.len(), 2);
        assert_eq!(peers[0].addr, "10.0.0.1:6881".parse().unwrap());
        assert_eq!(peers[0].id, Some(PeerId([1; 20])));
        assert_eq!(peers[1].addr, "[2001:db8::1]:6882".parse().unwrap());
        let (_, _, body) = get(&s, "10.0.0.3:5000", &announce_target(3, 6883, None, true));
        assert!(
            body.windows(7).any(|w| w == b"peers6:"),
            "compact IPv6 peers go in peers6"
        );
        let r = parse_announce(&body).unwrap();
        assert_eq!(r.peers.len(), 2);
        assert!(r.peers.iter().all(|p| p.id.is_none()));
        assert_eq!((r.complete, r.incomplete), (Some(0), Some(3)));
        assert_eq!(r.interval, Duration::from_secs(60));
    }

    #[test]
    fn ip_param_is_honoured_only_loopback_to_loopback() {
        let s = shared();
        // A remote source cannot claim another address...
        get(
            &s,
            "10.0.0.1:5000",
            &announce_target(1, 1, Some("10.9.9.9"), true),
        );
        // ...nor can a loopback source claim a non-loopback one...
        get(
            &s,
            "127.0.0.1:5000",
            &announce_target(2, 2, Some("10.9.9.8"), true),
        );
        // ...but a loopback source may name another loopback address.
        get(
            &s,
            "127.0.0.1:5000",
            &announce_target(3, 3, Some("127.0.0.5"), true),
        );
        let (_, _, body) = get(&s, "10.0.0.7:5000", &announce_target(4, 4, None, true));
        let mut addrs: Vec<String> = parse_announce(&body)
            .unwrap()
            .peer_addrs()
            .map(|a| a.to_string())
            .collect();
        addrs.sort();
        assert_eq!(addrs, ["10.0.0.1:1", "127.0.0.1:2", "127.0.0.5:3"]);

        let trusting = Shared::new(
            ServerConfig {
                trust_ip_param: true,
                ..ServerConfig::default()
            },
            Instant::now(),
        );
        assert_eq!(
            trusting.peer_ip(
                "10.0.0.1".parse().unwrap(),
                Some("10.9.9.9".parse().unwrap())
            ),
            "10.9.9.9".parse::<IpAddr>().unwrap()
        );
        // IPv4-mapped sources (dual-stack sockets) are recorded as IPv4.
        assert_eq!(
            s.peer_ip("::ffff:10.0.0.1".parse().unwrap(), None),
            "10.0.0.1".parse::<IpAddr>().unwrap()
        );
    }

    #[test]
    fn http_scrape_one_and_all() {
        let s = shared();
        get(&s, "10.0.0.1:5000", &announce_target(1, 1, None, true));
        let mut target = String::from("/scrape?info_hash=");
        crate::http::percent_encode(&[1; 20], &mut target);
        let (_, _, body) = get(&s, "10.0.0.1:1", &target);
        let files = parse_scrape(&body).unwrap();
        assert_eq!(files[&InfoHash([1; 20])].incomplete, 1);
        let (_, _, body) = get(&s, "10.0.0.1:1", "/scrape");
        assert_eq!(parse_scrape(&body).unwrap().len(), 1);
        let (_, _, body) = get(&s, "10.0.0.1:1", "/scrape?info_hash=short");
        assert!(parse_scrape(&body).is_err());
    }

    fn udp(s: &Shared, src: &str, req: Request, now: Instant) -> Response {
        let family = Family::of(&src.parse().unwrap());
        let reply = s
            .handle_udp(src.parse().unwrap(), &req.encode(), now)
            .unwrap();
        Response::decode(&reply, family).unwrap()
    }

    fn udp_announce(conn: u64, id: u8, port: u16) -> Request {
        Request::Announce(UdpAnnounce {
            connection_id: conn,
            transaction_id: 9,
            info_hash: InfoHash([1; 20]),
            peer_id: PeerId([id; 20]),
            downloaded: 0,
            left: 1,
            uploaded: 0,
            event: Event::Started,
            ip: None,
            key: 0,
            num_want: -1,
            port,
        })
    }

    #[test]
    fn udp_connection_ids_are_per_ip_and_expire() {
        let t0 = Instant::now();
        let s = Shared::new(ServerConfig::default(), t0);
        let Response::Connect {
            connection_id,
            transaction_id,
        } = udp(&s, "10.0.0.1:7", Request::Connect { transaction_id: 5 }, t0)
        else {
            panic!("not a connect response")
        };
        assert_eq!(transaction_id, 5);
        let ok = udp(
            &s,
            "10.0.0.1:8",
            udp_announce(connection_id, 1, 1),
            t0 + Duration::from_secs(119),
        );
        assert!(
            matches!(
                ok,
                Response::Announce {
                    transaction_id: 9,
                    ..
                }
            ),
            "{ok:?}"
        );
        let other_ip = udp(&s, "10.0.0.2:7", udp_announce(connection_id, 2, 1), t0);
        assert_eq!(
            other_ip,
            Response::Error {
                transaction_id: 9,
                message: "invalid connection id".into()
            }
        );
        let late = udp(
            &s,
            "10.0.0.1:7",
            udp_announce(connection_id, 1, 1),
            t0 + Duration::from_secs(120),
        );
        assert!(matches!(late, Response::Error { .. }));
        assert_eq!(
            s.handle_udp("10.0.0.1:7".parse().unwrap(), b"junk", t0),
            None
        );
    }

    #[test]
    fn udp_peers_are_of_the_requesters_family() {
        let t0 = Instant::now();
        let s = Shared::new(ServerConfig::default(), t0);
        let conn = |src: &str| match udp(&s, src, Request::Connect { transaction_id: 1 }, t0) {
            Response::Connect { connection_id, .. } => connection_id,
            other => panic!("{other:?}"),
        };
        let c6 = conn("[2001:db8::1]:1");
        udp(&s, "[2001:db8::1]:1", udp_announce(c6, 1, 1000), t0);
        let c4 = conn("10.0.0.1:1");
        let r = udp(&s, "10.0.0.1:1", udp_announce(c4, 2, 2000), t0);
        assert!(
            matches!(&r, Response::Announce { peers, leechers: 2, .. } if peers.is_empty()),
            "{r:?}"
        );
        let c4b = conn("10.0.0.2:1");
        let r = udp(&s, "10.0.0.2:1", udp_announce(c4b, 3, 3000), t0);
        let Response::Announce { peers, .. } = r else {
            panic!("{r:?}")
        };
        assert_eq!(peers, vec!["10.0.0.1:2000".parse::<SocketAddr>().unwrap()]);
        // A v4 client seen through a dual-stack socket gets 6-byte v4 peers.
        let mapped = "[::ffff:10.0.0.3]:1";
        let packet = udp_announce(conn(mapped), 5, 5000).encode();
        let reply = s.handle_udp(mapped.parse().unwrap(), &packet, t0).unwrap();
        let r = Response::decode(&reply, Family::V4).unwrap();
        let Response::Announce { peers, .. } = r else {
            panic!("{r:?}")
        };
        assert_eq!(peers.len(), 2);
        assert!(peers.iter().all(|p| p.is_ipv4()), "{peers:?}");
        let r = udp(
            &s,
            "[2001:db8::2]:1",
            udp_announce(conn("[2001:db8::2]:1"), 4, 4000),
            t0,
        );
        let Response::Announce { peers, .. } = r else {
            panic!("{r:?}")
        };
        assert_eq!(
            peers,
            vec!["[2001:db8::1]:1000".parse::<SocketAddr>().unwrap()]
        );
    }

    #[test]
    fn udp_scrape_and_refusals() {
        let t0 = Instant::now();
        let s = Shared::new(
            ServerConfig {
                max_torrents: 1,
                ..ServerConfig::default()
            },
            t0,
        );
        let Response::Connect {
            connection_id: c, ..
        } = udp(&s, "10.0.0.1:1", Request::Connect { transaction_id: 1 }, t0)
        else {
            panic!()
        };
        udp(&s, "10.0.0.1:1", udp_announce(c, 1, 1), t0);
        let scrape = |hashes: Vec<InfoHash>| Request::Scrape {
            connection_id: c,
            transaction_id: 3,
            info_hashes: hashes,
        };
        let r = udp(
            &s,
            "10.0.0.1:1",
            scrape(vec![InfoHash([1; 20]), InfoHash([2; 20])]),
            t0,
        );
        let Response::Scrape { stats, .. } = r else {
            panic!("{r:?}")
        };
        assert_eq!(stats.len(), 2);
        assert_eq!((stats[0].incomplete, stats[1].incomplete), (1, 0));
        assert!(matches!(
            udp(&s, "10.0.0.1:1", scrape(vec![]), t0),
            Response::Error { .. }
        ));
        let mut other = udp_announce(c, 1, 1);
        if let Request::Announce(a) = &mut other {
            a.info_hash = InfoHash([2; 20]);
        }
        assert_eq!(
            udp(&s, "10.0.0.1:1", other, t0),
            Response::Error {
                transaction_id: 9,
                message: "tracker is full: 1 torrents".into()
            }
        );
    }
}
