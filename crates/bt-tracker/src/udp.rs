//! UDP trackers (BEP 15): the packet codec as pure functions, and a small async
//! client on a tokio `UdpSocket` with retransmission and connection-id reuse.

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bt_meta::{InfoHash, PeerId};
use tokio::net::UdpSocket;

use crate::announce::{AnnounceRequest, AnnounceResponse, Event, Peer, ScrapeStats};
use crate::compact::{self, Family};
use crate::error::{Error, Result};

/// The magic `protocol_id` of a connect request.
pub const PROTOCOL_ID: u64 = 0x417_2710_1980;
/// Most info-hashes in one scrape (BEP 15).
pub const MAX_SCRAPE_HASHES: usize = 74;
/// Length of a connect request.
pub const CONNECT_REQUEST_LEN: usize = 16;
/// Length of an announce request without BEP 41 options.
pub const ANNOUNCE_REQUEST_LEN: usize = 98;
/// Largest datagram the client and server read; longer ones are dropped.
pub const MAX_PACKET_LEN: usize = 16 * 1024;

const CONNECT: u32 = 0;
const ANNOUNCE: u32 = 1;
const SCRAPE: u32 = 2;
const ERROR: u32 = 3;

/// The fields of a BEP 15 announce request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UdpAnnounce {
    /// From the connect response.
    pub connection_id: u64,
    /// Chosen by the client, echoed by the tracker.
    pub transaction_id: u32,
    /// The torrent.
    pub info_hash: InfoHash,
    /// The client's peer id.
    pub peer_id: PeerId,
    /// Payload bytes downloaded.
    pub downloaded: u64,
    /// Bytes still missing.
    pub left: u64,
    /// Payload bytes uploaded.
    pub uploaded: u64,
    /// Why the client announces.
    pub event: Event,
    /// An IPv4 address to report instead of the source (0 on the wire: none).
    pub ip: Option<Ipv4Addr>,
    /// The client's session key.
    pub key: u32,
    /// Peers wanted; -1 asks for the tracker's default.
    pub num_want: i32,
    /// The client's TCP port.
    pub port: u16,
}

/// A request from client to tracker.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Request {
    /// Ask for a connection id.
    Connect {
        /// Chosen by the client.
        transaction_id: u32,
    },
    /// Announce.
    Announce(UdpAnnounce),
    /// Scrape up to [`MAX_SCRAPE_HASHES`] torrents.
    Scrape {
        /// From the connect response.
        connection_id: u64,
        /// Chosen by the client.
        transaction_id: u32,
        /// The torrents.
        info_hashes: Vec<InfoHash>,
    },
}

/// A response from tracker to client.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Response {
    /// The connection id to use for the next minute.
    Connect {
        /// Echoed from the request.
        transaction_id: u32,
        /// To put in announce and scrape requests.
        connection_id: u64,
    },
    /// The answer to an announce.
    Announce {
        /// Echoed from the request.
        transaction_id: u32,
        /// Seconds until the next announce.
        interval: u32,
        /// Leechers.
        leechers: u32,
        /// Seeders.
        seeders: u32,
        /// Peers, all of the tracker socket's address family.
        peers: Vec<SocketAddr>,
    },
    /// The answer to a scrape, in request order.
    Scrape {
        /// Echoed from the request.
        transaction_id: u32,
        /// One entry per info-hash asked.
        stats: Vec<ScrapeStats>,
    },
    /// The tracker refuses.
    Error {
        /// Echoed from the request.
        transaction_id: u32,
        /// The tracker's text.
        message: String,
    },
}

/// Reads big-endian integers from a packet; every read is bounds-checked.
struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take<const N: usize>(&mut self) -> Option<[u8; N]> {
        let bytes = self.buf.get(self.pos..self.pos + N)?;
        self.pos += N;
        bytes.try_into().ok()
    }
    fn u16(&mut self) -> Option<u16> {
        self.take().map(u16::from_be_bytes)
    }
    fn u32(&mut self) -> Option<u32> {
        self.take().map(u32::from_be_bytes)
    }
    fn u64(&mut self) -> Option<u64> {
        self.take().map(u64::from_be_bytes)
    }
    fn rest(&self) -> &'a [u8] {
        self.buf.get(self.pos..).unwrap_or_default()
    }
}

fn short(buf: &[u8], need: usize, action: u32) -> Error {
    Error::ShortPacket {
        len: buf.len(),
        need,
        action,
    }
}

fn sat32(n: u64) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

impl Request {
    /// The transaction id.
    pub fn transaction_id(&self) -> u32 {
        match self {
            Request::Connect { transaction_id } | Request::Scrape { transaction_id, .. } => {
                *transaction_id
            }
            Request::Announce(a) => a.transaction_id,
        }
    }

    /// Encodes the packet.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(ANNOUNCE_REQUEST_LEN);
        match self {
            Request::Connect { transaction_id } => {
                out.extend_from_slice(&PROTOCOL_ID.to_be_bytes());
                out.extend_from_slice(&CONNECT.to_be_bytes());
                out.extend_from_slice(&transaction_id.to_be_bytes());
            }
            Request::Announce(a) => {
                out.extend_from_slice(&a.connection_id.to_be_bytes());
                out.extend_from_slice(&ANNOUNCE.to_be_bytes());
                out.extend_from_slice(&a.transaction_id.to_be_bytes());
                out.extend_from_slice(a.info_hash.as_bytes());
                out.extend_from_slice(a.peer_id.as_bytes());
                out.extend_from_slice(&a.downloaded.to_be_bytes());
                out.extend_from_slice(&a.left.to_be_bytes());
                out.extend_from_slice(&a.uploaded.to_be_bytes());
                out.extend_from_slice(&a.event.as_udp().to_be_bytes());
                out.extend_from_slice(&a.ip.unwrap_or(Ipv4Addr::UNSPECIFIED).octets());
                out.extend_from_slice(&a.key.to_be_bytes());
                out.extend_from_slice(&a.num_want.to_be_bytes());
                out.extend_from_slice(&a.port.to_be_bytes());
            }
            Request::Scrape {
                connection_id,
                transaction_id,
                info_hashes,
            } => {
                out.extend_from_slice(&connection_id.to_be_bytes());
                out.extend_from_slice(&SCRAPE.to_be_bytes());
                out.extend_from_slice(&transaction_id.to_be_bytes());
                for h in info_hashes {
                    out.extend_from_slice(h.as_bytes());
                }
            }
        }
        out
    }

    /// Decodes a request. Bytes after an announce (BEP 41 options) are ignored;
    /// a scrape's hash list must be whole.
    pub fn decode(buf: &[u8]) -> Result<Self> {
        let mut r = Reader { buf, pos: 0 };
        let (Some(connection_id), Some(action), Some(transaction_id)) = (r.u64(), r.u32(), r.u32())
        else {
            return Err(short(buf, CONNECT_REQUEST_LEN, 0));
        };
        match action {
            CONNECT => {
                if connection_id != PROTOCOL_ID {
                    return Err(Error::BadProtocolId {
                        protocol_id: connection_id,
                    });
                }
                Ok(Request::Connect { transaction_id })
            }
            ANNOUNCE => {
                let err = || short(buf, ANNOUNCE_REQUEST_LEN, action);
                let info_hash = InfoHash(r.take().ok_or_else(err)?);
                let peer_id = PeerId(r.take().ok_or_else(err)?);
                let downloaded = r.u64().ok_or_else(err)?;
                let left = r.u64().ok_or_else(err)?;
                let uploaded = r.u64().ok_or_else(err)?;
                let event_n = r.u32().ok_or_else(err)?;
                let event = Event::from_udp(event_n).unwrap_or(Event::None);
                let ip = Ipv4Addr::from(r.take::<4>().ok_or_else(err)?);
                let key = r.u32().ok_or_else(err)?;
                let num_want = r.u32().ok_or_else(err)? as i32;
                let port = r.u16().ok_or_else(err)?;
                Ok(Request::Announce(UdpAnnounce {
                    connection_id,
                    transaction_id,
                    info_hash,
                    peer_id,
                    downloaded,
                    left,
                    uploaded,
                    event,
                    ip: (!ip.is_unspecified()).then_some(ip),
                    key,
                    num_want,
                    port,
                }))
            }
            SCRAPE => {
                let rest = r.rest();
                if rest.len() % 20 != 0 {
                    return Err(short(buf, buf.len() + 20 - rest.len() % 20, action));
                }
                let info_hashes = rest
                    .chunks_exact(20)
                    .filter_map(|c| <[u8; 20]>::try_from(c).ok().map(InfoHash))
                    .collect();
                Ok(Request::Scrape {
                    connection_id,
                    transaction_id,
                    info_hashes,
                })
            }
            other => Err(Error::BadAction { action: other }),
        }
    }
}

impl Response {
    /// The transaction id.
    pub fn transaction_id(&self) -> u32 {
        match self {
            Response::Connect { transaction_id, .. }
            | Response::Announce { transaction_id, .. }
            | Response::Scrape { transaction_id, .. }
            | Response::Error { transaction_id, .. } => *transaction_id,
        }
    }

    /// Encodes the packet; announce peers are written each in its own family's
    /// size, so the caller sends only peers of the client's family.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(20);
        let head = |out: &mut Vec<u8>, action: u32, tid: u32| {
            out.extend_from_slice(&action.to_be_bytes());
            out.extend_from_slice(&tid.to_be_bytes());
        };
        match self {
            Response::Connect {
                transaction_id,
                connection_id,
            } => {
                head(&mut out, CONNECT, *transaction_id);
                out.extend_from_slice(&connection_id.to_be_bytes());
            }
            Response::Announce {
                transaction_id,
                interval,
                leechers,
                seeders,
                peers,
            } => {
                head(&mut out, ANNOUNCE, *transaction_id);
                out.extend_from_slice(&interval.to_be_bytes());
                out.extend_from_slice(&leechers.to_be_bytes());
                out.extend_from_slice(&seeders.to_be_bytes());
                for p in peers {
                    compact::encode_one(p, &mut out);
                }
            }
            Response::Scrape {
                transaction_id,
                stats,
            } => {
                head(&mut out, SCRAPE, *transaction_id);
                for s in stats {
                    out.extend_from_slice(&sat32(s.complete).to_be_bytes());
                    out.extend_from_slice(&sat32(s.downloaded).to_be_bytes());
                    out.extend_from_slice(&sat32(s.incomplete).to_be_bytes());
                }
            }
            Response::Error {
                transaction_id,
                message,
            } => {
                head(&mut out, ERROR, *transaction_id);
                out.extend_from_slice(message.as_bytes());
            }
        }
        out
    }

    /// Decodes a response; `family` is the tracker socket's address family,
    /// which sets the size of announce peers (6 or 18 bytes).
    pub fn decode(buf: &[u8], family: Family) -> Result<Self> {
        let mut r = Reader { buf, pos: 0 };
        let (Some(action), Some(transaction_id)) = (r.u32(), r.u32()) else {
            return Err(short(buf, 8, 0));
        };
        match action {
            CONNECT => {
                let connection_id = r.u64().ok_or_else(|| short(buf, 16, action))?;
                Ok(Response::Connect {
                    transaction_id,
                    connection_id,
                })
            }
            ANNOUNCE => {
                let err = || short(buf, 20, action);
                let interval = r.u32().ok_or_else(err)?;
                let leechers = r.u32().ok_or_else(err)?;
                let seeders = r.u32().ok_or_else(err)?;
                let peers = compact::decode(r.rest(), family)?;
                Ok(Response::Announce {
                    transaction_id,
                    interval,
                    leechers,
                    seeders,
                    peers,
                })
            }
            SCRAPE => {
                let rest = r.rest();
                if rest.len() % 12 != 0 {
                    return Err(short(buf, buf.len() + 12 - rest.len() % 12, action));
                }
                let stats = rest
                    .chunks_exact(12)
                    .map(|c| {
                        let mut r = Reader { buf: c, pos: 0 };
                        let mut next = || u64::from(r.u32().unwrap_or(0)); // ok: 12-byte chunk
                        ScrapeStats {
                            complete: next(),
                            downloaded: next(),
                            incomplete: next(),
                        }
                    })
                    .collect();
                Ok(Response::Scrape {
                    transaction_id,
                    stats,
                })
            }
            ERROR => Ok(Response::Error {
                transaction_id,
                message: String::from_utf8_lossy(r.rest()).into_owned(),
            }),
            other => Err(Error::BadAction { action: other }),
        }
    }
}

/// Timing for the UDP client.
#[derive(Clone, Debug)]
pub struct UdpConfig {
    /// Wait before the first retransmission; each later wait doubles (BEP 15: 15 s).
    pub base_timeout: Duration,
    /// Datagrams sent for one announce or scrape before giving up, connects and
    /// retransmissions included (BEP 15 retries up to `n` = 8; 9 here).
    pub max_tries: u32,
    /// How long a connection id stays usable (BEP 15: one minute).
    pub connection_id_ttl: Duration,
    /// Longest wait for the tracker's host name to resolve.
    pub resolve_timeout: Duration,
}

impl Default for UdpConfig {
    fn default() -> Self {
        Self {
            base_timeout: Duration::from_secs(15),
            max_tries: 9,
            connection_id_ttl: Duration::from_secs(60),
            resolve_timeout: Duration::from_secs(10),
        }
    }
}

/// The host and port of a `udp://host:port[/path]` URL.
pub fn parse_udp_url(url: &str) -> Result<(String, u16)> {
    let invalid = |reason| Error::InvalidUrl {
        url: url.to_owned(),
        reason,
    };
    let rest = url
        .get(..6)
        .filter(|s| s.eq_ignore_ascii_case("udp://"))
        .and_then(|_| url.get(6..))
        .ok_or_else(|| invalid("not a udp:// url"))?;
    let authority = rest.split(['/', '?', '#']).next().unwrap_or(rest);
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (host, after) = v6.split_once(']').ok_or_else(|| invalid("unclosed '['"))?;
        (host, after.strip_prefix(':'))
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        }
    };
    let port = port.ok_or_else(|| invalid("no port"))?;
    let port: u16 = port.parse().map_err(|_| invalid("bad port"))?;
    if host.is_empty() {
        return Err(invalid("no host"));
    }
    Ok((host.to_owned(), port))
}

/// A UDP tracker client. Each request uses its own ephemeral socket; the
/// connection id is cached per tracker address (trackers tie it to the source
/// IP) and reused until its TTL ends or the tracker answers with an error.
#[derive(Clone, Debug, Default)]
pub struct UdpTracker {
    config: UdpConfig,
    connections: Arc<Mutex<HashMap<SocketAddr, (u64, Instant)>>>,
}

impl UdpTracker {
    /// A client with this timing.
    pub fn new(config: UdpConfig) -> Self {
        Self {
            config,
            connections: Arc::default(),
        }
    }

    /// Announces to the tracker at `url`.
    pub async fn announce(&self, url: &str, req: &AnnounceRequest) -> Result<AnnounceResponse> {
        let mut ex = self.exchange(url).await?;
        let ip = match req.ip {
            Some(std::net::IpAddr::V4(v4)) => Some(v4),
            _ => None,
        };
        let resp = ex
            .request(|connection_id, transaction_id| {
                Request::Announce(UdpAnnounce {
                    connection_id,
                    transaction_id,
                    info_hash: req.info_hash,
                    peer_id: req.peer_id,
                    downloaded: req.downloaded,
                    left: req.left,
                    uploaded: req.uploaded,
                    event: req.event,
                    ip,
                    key: req.key,
                    num_want: req
                        .numwant
                        .map_or(-1, |n| i32::try_from(n).unwrap_or(i32::MAX)),
                    port: req.port,
                })
            })
            .await?;
        match resp {
            Response::Announce {
                interval,
                leechers,
                seeders,
                peers,
                ..
            } => Ok(AnnounceResponse {
                interval: Duration::from_secs(interval.into()),
                min_interval: None,
                tracker_id: None,
                complete: Some(seeders.into()),
                incomplete: Some(leechers.into()),
                warning: None,
                peers: peers.into_iter().map(Peer::from_addr).collect(),
            }),
            other => Err(Error::BadAction {
                action: action_of(&other),
            }),
        }
    }

    /// Scrapes up to [`MAX_SCRAPE_HASHES`] torrents (more are an error).
    pub async fn scrape(
        &self,
        url: &str,
        hashes: &[InfoHash],
    ) -> Result<HashMap<InfoHash, ScrapeStats>> {
        if hashes.len() > MAX_SCRAPE_HASHES {
            return Err(Error::InvalidUrl {
                url: url.to_owned(),
                reason: "more than 74 info-hashes in one udp scrape",
            });
        }
        let mut ex = self.exchange(url).await?;
        let resp = ex
            .request(|connection_id, transaction_id| Request::Scrape {
                connection_id,
                transaction_id,
                info_hashes: hashes.to_vec(),
            })
            .await?;
        match resp {
            Response::Scrape { stats, .. } => Ok(hashes.iter().copied().zip(stats).collect()),
            other => Err(Error::BadAction {
                action: action_of(&other),
            }),
        }
    }

    async fn exchange<'a>(&'a self, url: &'a str) -> Result<Exchange<'a>> {
        let unreachable = |e: std::io::Error| Error::Unreachable {
            url: url.to_owned(),
            reason: e.to_string(),
        };
        let (host, port) = parse_udp_url(url)?;
        let lookup = tokio::net::lookup_host((host.as_str(), port));
        let addr = tokio::time::timeout(self.config.resolve_timeout, lookup)
            .await
            .map_err(|_| Error::Timeout {
                url: url.to_owned(),
                elapsed: self.config.resolve_timeout,
            })?
            .map_err(unreachable)?
            .next()
            .ok_or_else(|| Error::Unreachable {
                url: url.to_owned(),
                reason: format!("no address for {host:?}"),
            })?;
        let local: SocketAddr = match addr {
            SocketAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
            SocketAddr::V6(_) => (std::net::Ipv6Addr::UNSPECIFIED, 0).into(),
        };
        let socket = UdpSocket::bind(local).await.map_err(unreachable)?;
        socket.connect(addr).await.map_err(unreachable)?;
        Ok(Exchange {
            tracker: self,
            url,
            addr,
            socket,
            tries: 0,
            start: tokio::time::Instant::now(),
        })
    }

    fn cached_connection(&self, addr: SocketAddr) -> Option<u64> {
        let map = self.connections.lock().unwrap_or_else(|p| p.into_inner());
        map.get(&addr)
            .filter(|(_, at)| at.elapsed() < self.config.connection_id_ttl)
            .map(|(id, _)| *id)
    }

    fn set_connection(&self, addr: SocketAddr, id: Option<u64>) {
        let mut map = self.connections.lock().unwrap_or_else(|p| p.into_inner());
        let ttl = self.config.connection_id_ttl;
        map.retain(|_, (_, at)| at.elapsed() < ttl);
        match id {
            Some(id) => map.insert(addr, (id, Instant::now())),
            None => map.remove(&addr),
        };
    }
}

fn action_of(r: &Response) -> u32 {
    match r {
        Response::Connect { .. } => CONNECT,
        Response::Announce { .. } => ANNOUNCE,
        Response::Scrape { .. } => SCRAPE,
        Response::Error { .. } => ERROR,
    }
}

/// One request's conversation with one tracker: the socket and the retry count.
struct Exchange<'a> {
    tracker: &'a UdpTracker,
    url: &'a str,
    addr: SocketAddr,
    socket: UdpSocket,
    tries: u32,
    start: tokio::time::Instant,
}

impl Exchange<'_> {
    /// Sends the request built by `make(connection_id, transaction_id)`,
    /// connecting first when needed, retransmitting on silence.
    async fn request(&mut self, make: impl Fn(u64, u32) -> Request + Sync) -> Result<Response> {
        let connect = |tid| Request::Connect {
            transaction_id: tid,
        };
        loop {
            let connection_id = match self.tracker.cached_connection(self.addr) {
                Some(id) => id,
                None => match self.send_and_wait(&connect).await? {
                    Some(Response::Connect { connection_id, .. }) => {
                        self.tracker.set_connection(self.addr, Some(connection_id));
                        connection_id
                    }
                    Some(other) => return Err(self.unexpected(other)),
                    None => continue,
                },
            };
            match self.send_and_wait(&|tid| make(connection_id, tid)).await? {
                Some(Response::Connect { .. }) => return Err(self.unexpected_action(CONNECT)),
                Some(Response::Error { message, .. }) => return Err(self.failure(message)),
                Some(resp) => return Ok(resp),
                // Silence: a stale connection id is one cause, so reconnect when it expired.
                None => continue,
            }
        }
    }

    fn unexpected(&self, r: Response) -> Error {
        match r {
            Response::Error { message, .. } => self.failure(message),
            other => self.unexpected_action(action_of(&other)),
        }
    }

    fn unexpected_action(&self, action: u32) -> Error {
        Error::BadAction { action }
    }

    fn failure(&self, message: String) -> Error {
        // The id may be why we were refused; the next request reconnects.
        self.tracker.set_connection(self.addr, None);
        Error::Failure { reason: message }
    }

    /// One send and the wait for its answer: `Some` with a response carrying our
    /// transaction id, `None` after the timeout for this try (the caller loops),
    /// or an error once the tries run out. Packets with another transaction id (or
    /// too short to hold one) are ignored: anyone can send us a datagram. A packet
    /// with ours that does not decode is an error.
    async fn send_and_wait(
        &mut self,
        make: &(dyn Fn(u32) -> Request + Sync),
    ) -> Result<Option<Response>> {
        let cfg = &self.tracker.config;
        if self.tries >= cfg.max_tries.max(1) {
            return Err(Error::Timeout {
                url: self.url.to_owned(),
                elapsed: self.start.elapsed(),
            });
        }
        let wait = cfg
            .base_timeout
            .saturating_mul(1u32.checked_shl(self.tries.min(16)).unwrap_or(u32::MAX));
        self.tries += 1;
        let transaction_id: u32 = rand::random();
        let packet = make(transaction_id).encode();
        let io_err = |e: std::io::Error| Error::Unreachable {
            url: self.url.to_owned(),
            reason: e.to_string(),
        };
        self.socket.send(&packet).await.map_err(io_err)?;
        let deadline = tokio::time::Instant::now() + wait;
        let family = Family::of(&self.addr);
        let mut buf = vec![0u8; MAX_PACKET_LEN];
        loop {
            let n = match tokio::time::timeout_at(deadline, self.socket.recv(&mut buf)).await {
                Err(_) => return Ok(None),
                Ok(Err(e)) => return Err(io_err(e)),
                Ok(Ok(n)) => n,
            };
            let Some(packet) = buf.get(..n).filter(|_| n < MAX_PACKET_LEN) else {
                tracing::debug!(url = self.url, n, "ignoring oversized udp tracker packet");
                continue;
            };
            // Match the transaction id before judging the rest of the packet.
            let tid = packet.get(4..8).and_then(|b| <[u8; 4]>::try_from(b).ok());
            if tid != Some(transaction_id.to_be_bytes()) {
                tracing::debug!(
                    url = self.url,
                    n,
                    "ignoring udp packet with another transaction id"
                );
                continue;
            }
            return Response::decode(packet, family).map(Some);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compact::tests::{v4, v6};
    use proptest::prelude::*;

    #[test]
    fn connect_golden() {
        let req = Request::Connect {
            transaction_id: 0x0102_0304,
        };
        let bytes = req.encode();
        assert_eq!(
            bytes,
            [0, 0, 4, 0x17, 0x27, 0x10, 0x19, 0x80, 0, 0, 0, 0, 1, 2, 3, 4]
        );
        assert_eq!(Request::decode(&bytes).unwrap(), req);
        let resp = Response::Connect {
            transaction_id: 7,
            connection_id: 0x1122_3344_5566_7788,
        };
        let bytes = resp.encode();
        assert_eq!(
            bytes,
            [0, 0, 0, 0, 0, 0, 0, 7, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88]
        );
        assert_eq!(Response::decode(&bytes, Family::V4).unwrap(), resp);
    }

    #[test]
    fn announce_golden_length_and_fields() {
        let a = UdpAnnounce {
            connection_id: 1,
            transaction_id: 2,
            info_hash: InfoHash([3; 20]),
            peer_id: PeerId([4; 20]),
            downloaded: 5,
            left: 6,
            uploaded: 7,
            event: Event::Started,
            ip: None,
            key: 8,
            num_want: -1,
            port: 6881,
        };
        let bytes = Request::Announce(a.clone()).encode();
        assert_eq!(bytes.len(), ANNOUNCE_REQUEST_LEN);
        assert_eq!(bytes[8..12], [0, 0, 0, 1]);
        assert_eq!(bytes[80..84], [0, 0, 0, 2]);
        assert_eq!(bytes[92..96], [0xff; 4]);
        assert_eq!(bytes[96..98], [0x1a, 0xe1]);
        // BEP 41 options after the fixed part are ignored.
        let mut with_options = bytes.clone();
        with_options.extend_from_slice(&[2, 5, b'/', b'a', b'n', b'n', b'o']);
        assert_eq!(
            Request::decode(&with_options).unwrap(),
            Request::Announce(a)
        );
    }

    #[test]
    fn short_and_bad_packets_are_errors() {
        let check = |r: Result<Response>, msg: &str| assert_eq!(r.unwrap_err().to_string(), msg);
        check(
            Response::decode(&[0, 0, 0], Family::V4),
            "udp packet of 3 bytes is shorter than 8 for action 0",
        );
        check(
            Response::decode(&[0, 0, 0, 0, 0, 0, 0, 1, 9], Family::V4),
            "udp packet of 9 bytes is shorter than 16 for action 0",
        );
        check(
            Response::decode(&[0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 9], Family::V4),
            "udp packet of 12 bytes is shorter than 20 for action 1",
        );
        check(
            Response::decode(&[0, 0, 0, 9, 0, 0, 0, 1], Family::V4),
            "unexpected udp action 9",
        );
        let mut bad_peers = Response::Announce {
            transaction_id: 1,
            interval: 1,
            leechers: 0,
            seeders: 0,
            peers: vec![],
        }
        .encode();
        bad_peers.extend_from_slice(&[1, 2, 3, 4, 5, 6, 7]);
        check(
            Response::decode(&bad_peers, Family::V4),
            "compact peers of 7 bytes is not a multiple of 6",
        );
        assert!(matches!(
            Request::decode(&[0; 16]),
            Err(Error::BadProtocolId { protocol_id: 0 })
        ));
        assert!(matches!(
            Request::decode(&[0; 12]),
            Err(Error::ShortPacket { len: 12, .. })
        ));
    }

    #[test]
    fn udp_url_cases() {
        let check = |u: &str, want: Option<(&str, u16)>| {
            let got = parse_udp_url(u).ok();
            assert_eq!(got.as_ref().map(|(h, p)| (h.as_str(), *p)), want, "{u}");
        };
        check(
            "udp://tracker.example:6969",
            Some(("tracker.example", 6969)),
        );
        check(
            "udp://tracker.example:6969/announce",
            Some(("tracker.example", 6969)),
        );
        check("UDP://127.0.0.1:80?x", Some(("127.0.0.1", 80)));
        check("udp://[::1]:6969/announce", Some(("::1", 6969)));
        check("udp://[::1]/announce", None);
        check("udp://host", None);
        check("udp://:80", None);
        check("udp://h:99999", None);
        check("http://h:80", None);
        check("udp:/", None);
    }

    fn stats() -> impl Strategy<Value = ScrapeStats> {
        (any::<u32>(), any::<u32>(), any::<u32>()).prop_map(|(c, d, i)| ScrapeStats {
            complete: c.into(),
            downloaded: d.into(),
            incomplete: i.into(),
        })
    }

    fn request() -> impl Strategy<Value = Request> {
        let announce = (
            (
                any::<u64>(),
                any::<u32>(),
                any::<[u8; 20]>(),
                any::<[u8; 20]>(),
            ),
            (any::<u64>(), any::<u64>(), any::<u64>(), 0u32..4),
            (proptest::option::of(any::<[u8; 4]>().prop_filter("nonzero", |b| *b != [0; 4]))),
            (any::<u32>(), any::<i32>(), any::<u16>()),
        )
            .prop_map(|((c, t, h, p), (d, l, u, e), ip, (k, n, port))| {
                Request::Announce(UdpAnnounce {
                    connection_id: c,
                    transaction_id: t,
                    info_hash: InfoHash(h),
                    peer_id: PeerId(p),
                    downloaded: d,
                    left: l,
                    uploaded: u,
                    event: Event::from_udp(e).unwrap_or_default(),
                    ip: ip.map(Ipv4Addr::from),
                    key: k,
                    num_want: n,
                    port,
                })
            });
        prop_oneof![
            any::<u32>().prop_map(|t| Request::Connect { transaction_id: t }),
            announce,
            (
                any::<u64>(),
                any::<u32>(),
                proptest::collection::vec(any::<[u8; 20]>(), 0..MAX_SCRAPE_HASHES)
            )
                .prop_map(|(c, t, hs)| Request::Scrape {
                    connection_id: c,
                    transaction_id: t,
                    info_hashes: hs.into_iter().map(InfoHash).collect(),
                }),
        ]
    }

    fn response(family: Family) -> impl Strategy<Value = Response> {
        let peer = match family {
            Family::V4 => v4().boxed(),
            Family::V6 => v6().boxed(),
        };
        prop_oneof![
            (any::<u32>(), any::<u64>()).prop_map(|(t, c)| Response::Connect {
                transaction_id: t,
                connection_id: c
            }),
            (
                any::<u32>(),
                any::<u32>(),
                any::<u32>(),
                any::<u32>(),
                proptest::collection::vec(peer, 0..50)
            )
                .prop_map(|(t, i, l, s, peers)| Response::Announce {
                    transaction_id: t,
                    interval: i,
                    leechers: l,
                    seeders: s,
                    peers
                }),
            (
                any::<u32>(),
                proptest::collection::vec(stats(), 0..MAX_SCRAPE_HASHES)
            )
                .prop_map(|(t, stats)| Response::Scrape {
                    transaction_id: t,
                    stats
                }),
            (any::<u32>(), ".{0,40}").prop_map(|(t, message)| Response::Error {
                transaction_id: t,
                message
            }),
        ]
    }

    proptest! {
        #[test]
        fn request_round_trip(req in request()) {
            let bytes = req.encode();
            prop_assert_eq!(Request::decode(&bytes).unwrap(), req);
        }

        #[test]
        fn v4_response_round_trip(resp in response(Family::V4)) {
            prop_assert_eq!(Response::decode(&resp.encode(), Family::V4).unwrap(), resp);
        }

        #[test]
        fn v6_response_round_trip(resp in response(Family::V6)) {
            prop_assert_eq!(Response::decode(&resp.encode(), Family::V6).unwrap(), resp);
        }

        #[test]
        fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = Request::decode(&bytes);
            let _ = Response::decode(&bytes, Family::V4);
            let _ = Response::decode(&bytes, Family::V6);
        }

        #[test]
        fn truncated_requests_are_errors(req in request(), cut in any::<prop::sample::Index>()) {
            let bytes = req.encode();
            let cut = cut.index(bytes.len());
            // A scrape cut at a hash boundary is a shorter valid scrape; anything else errs.
            let cut_scrape_ok = matches!(req, Request::Scrape { .. }) && cut >= 16 && (cut - 16) % 20 == 0;
            prop_assert_eq!(Request::decode(&bytes[..cut]).is_ok(), cut_scrape_ok);
        }
    }
}
