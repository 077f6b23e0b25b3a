//! Many connections on one UDP socket: demultiplexing, accepting and refusing.

use core::net::SocketAddr;
use core::ops::Bound;
use core::time::Duration;
use std::collections::{BTreeMap, HashMap, VecDeque};

use crate::connection::{Config, Connection, Event};
use crate::packet::{Header, Packet, PacketType};
use crate::{Error, Result};

/// Most RESETs to unknown connections waiting to be sent; more are not answered.
const MAX_PENDING_RESETS: usize = 64;

/// Tunables of an [`Endpoint`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointConfig {
    /// Each connection's configuration.
    pub connection: Config,
    /// Most incoming connections open at once; further SYNs are refused with a RESET.
    pub max_incoming: usize,
}

impl Default for EndpointConfig {
    fn default() -> Self {
        Self {
            connection: Config::default(),
            max_incoming: 200,
        }
    }
}

/// Names one connection of an [`Endpoint`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ConnectionHandle(pub u64);

/// A datagram [`Endpoint::poll_transmit`] wrote, and where it goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EndpointTransmit {
    /// The peer's address.
    pub to: SocketAddr,
    /// The datagram's length in the buffer.
    pub len: usize,
    /// Send with the don't-fragment bit (an MTU probe).
    pub dont_fragment: bool,
}

/// SplitMix64: a small seeded generator for connection ids and sequence numbers.
#[derive(Debug, Clone)]
pub(crate) struct SplitMix64(u64);

impl SplitMix64 {
    pub(crate) fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn next_u16(&mut self) -> u16 {
        (self.next_u64() >> 48) as u16
    }
}

#[derive(Debug)]
struct Entry {
    addr: SocketAddr,
    conn: Connection,
    incoming: bool,
}

/// The connections behind one UDP socket, sans-I/O.
///
/// Datagrams go to the connection whose peer address and receive id match (a SYN to the
/// one it opened, if it is a retransmission); a RESET also matches a connection's send id
/// (the answer to a packet the peer did not know). A new SYN opens a connection while
/// fewer than [`EndpointConfig::max_incoming`] incoming ones are open; anything else for
/// an unknown connection is answered with a RESET. Connections stay until
/// [`Endpoint::remove`], so a closed one can still be read and still acknowledges its
/// peer's retransmitted FIN.
#[derive(Debug)]
pub struct Endpoint {
    config: EndpointConfig,
    rng: SplitMix64,
    next_handle: u64,
    conns: BTreeMap<ConnectionHandle, Entry>,
    by_recv: HashMap<(SocketAddr, u16), ConnectionHandle>,
    by_send: HashMap<(SocketAddr, u16), ConnectionHandle>,
    resets: VecDeque<(SocketAddr, Header)>,
    accepted: VecDeque<ConnectionHandle>,
    /// The connection after which [`Endpoint::poll_transmit`] looks first.
    cursor: Option<ConnectionHandle>,
}

impl Endpoint {
    /// An endpoint with no connections; `seed` drives every random choice.
    pub fn new(config: EndpointConfig, seed: u64) -> Self {
        Self {
            config,
            rng: SplitMix64::new(seed),
            next_handle: 0,
            conns: BTreeMap::new(),
            by_recv: HashMap::new(),
            by_send: HashMap::new(),
            resets: VecDeque::new(),
            accepted: VecDeque::new(),
            cursor: None,
        }
    }

    /// The number of connections held.
    pub fn len(&self) -> usize {
        self.conns.len()
    }

    /// Whether no connection is held.
    pub fn is_empty(&self) -> bool {
        self.conns.is_empty()
    }

    fn ids_free(&self, addr: SocketAddr, recv_id: u16, send_id: u16) -> bool {
        [recv_id, send_id].iter().all(|&id| {
            !self.by_recv.contains_key(&(addr, id)) && !self.by_send.contains_key(&(addr, id))
        })
    }

    fn insert(&mut self, addr: SocketAddr, conn: Connection, incoming: bool) -> ConnectionHandle {
        let handle = ConnectionHandle(self.next_handle);
        self.next_handle += 1;
        self.by_recv.insert((addr, conn.recv_id()), handle);
        self.by_send.insert((addr, conn.send_id()), handle);
        self.conns.insert(
            handle,
            Entry {
                addr,
                conn,
                incoming,
            },
        );
        handle
    }

    /// Dials `addr`: the connection's SYN goes out with the next transmits.
    pub fn connect(&mut self, now: Duration, addr: SocketAddr) -> ConnectionHandle {
        let recv_id = loop {
            let id = self.rng.next_u16();
            if self.ids_free(addr, id, id.wrapping_add(1)) {
                break id;
            }
        };
        let seq = self.rng.next_u16();
        let conn = Connection::connect(now, self.config.connection.clone(), recv_id, seq);
        self.insert(addr, conn, false)
    }

    /// A connection opened by a peer since the last call, if any.
    pub fn accept(&mut self) -> Option<ConnectionHandle> {
        self.accepted.pop_front()
    }

    /// The connection `handle`, if held.
    pub fn connection(&self, handle: ConnectionHandle) -> Option<&Connection> {
        self.conns.get(&handle).map(|e| &e.conn)
    }

    /// The connection `handle`, to read, write or close it.
    pub fn connection_mut(&mut self, handle: ConnectionHandle) -> Option<&mut Connection> {
        self.conns.get_mut(&handle).map(|e| &mut e.conn)
    }

    /// The peer address of `handle`.
    pub fn peer_addr(&self, handle: ConnectionHandle) -> Option<SocketAddr> {
        self.conns.get(&handle).map(|e| e.addr)
    }

    /// Forgets `handle` (abort it first to tell the peer).
    pub fn remove(&mut self, handle: ConnectionHandle) -> Option<Connection> {
        let entry = self.conns.remove(&handle)?;
        self.by_recv.remove(&(entry.addr, entry.conn.recv_id()));
        self.by_send.remove(&(entry.addr, entry.conn.send_id()));
        Some(entry.conn)
    }

    fn open_incoming(&self) -> usize {
        self.conns
            .values()
            .filter(|e| e.incoming && !e.conn.is_closed())
            .count()
    }

    /// Takes one datagram from `from`; returns the connection it went to. An error means
    /// it was dropped (and, for an unknown connection, answered with a RESET).
    pub fn handle_datagram(
        &mut self,
        now: Duration,
        from: SocketAddr,
        datagram: &[u8],
    ) -> Result<ConnectionHandle> {
        let packet = Packet::decode(datagram)?;
        let h = packet.header;
        let handle = match h.packet_type {
            PacketType::Syn => self.by_recv.get(&(from, h.connection_id.wrapping_add(1))),
            PacketType::Reset => self
                .by_recv
                .get(&(from, h.connection_id))
                .or_else(|| self.by_send.get(&(from, h.connection_id))),
            _ => self.by_recv.get(&(from, h.connection_id)),
        }
        .copied();
        if let Some(handle) = handle {
            let entry = self
                .conns
                .get_mut(&handle)
                .expect("indexed connections exist");
            let result = entry.conn.handle_packet(now, &packet);
            if result == Err(Error::Closed) && h.packet_type != PacketType::Reset {
                // Gone (reset, timed out, aborted): tell the peer, who may not know.
                let send_id = entry.conn.send_id();
                self.queue_reset(now, from, send_id, h.seq_nr);
            }
            return result.map(|()| handle);
        }
        let recv_id = h.connection_id.wrapping_add(1);
        if h.packet_type == PacketType::Syn
            && self.open_incoming() < self.config.max_incoming
            && self.ids_free(from, recv_id, h.connection_id)
        {
            let seq = self.rng.next_u16();
            let conn = Connection::accept(now, self.config.connection.clone(), &h, seq);
            let handle = self.insert(from, conn, true);
            self.accepted.push_back(handle);
            return Ok(handle);
        }
        if h.packet_type != PacketType::Reset {
            self.queue_reset(now, from, h.connection_id, h.seq_nr);
        }
        Err(if h.packet_type == PacketType::Syn {
            Error::Refused
        } else {
            Error::UnknownConnection {
                connection_id: h.connection_id,
            }
        })
    }

    /// Queues a RESET to `to` (unless too many wait already).
    fn queue_reset(&mut self, now: Duration, to: SocketAddr, connection_id: u16, ack_nr: u16) {
        if self.resets.len() >= MAX_PENDING_RESETS {
            return;
        }
        let reset = Header {
            packet_type: PacketType::Reset,
            connection_id,
            timestamp_micros: now.as_micros() as u32,
            timestamp_difference_micros: 0,
            wnd_size: 0,
            seq_nr: self.rng.next_u16(),
            ack_nr,
        };
        self.resets.push_back((to, reset));
    }

    /// Writes the next datagram to send into `buf` (cleared first), taking connections in
    /// turn.
    pub fn poll_transmit(&mut self, now: Duration, buf: &mut Vec<u8>) -> Option<EndpointTransmit> {
        buf.clear();
        if let Some((to, header)) = self.resets.pop_front() {
            Packet {
                header,
                sack: None,
                payload: &[],
            }
            .encode(buf);
            return Some(EndpointTransmit {
                to,
                len: buf.len(),
                dont_fragment: false,
            });
        }
        let first = |conns: &BTreeMap<ConnectionHandle, Entry>| conns.keys().next().copied();
        let after = |conns: &BTreeMap<ConnectionHandle, Entry>, h: ConnectionHandle| {
            conns
                .range((Bound::Excluded(h), Bound::Unbounded))
                .next()
                .map(|(&h, _)| h)
                .or_else(|| first(conns))
        };
        let mut handle = match self.cursor {
            Some(c) => after(&self.conns, c),
            None => first(&self.conns),
        }?;
        for _ in 0..self.conns.len() {
            let entry = self.conns.get_mut(&handle).expect("listed");
            if let Some(t) = entry.conn.poll_transmit(now, buf) {
                self.cursor = Some(handle);
                return Some(EndpointTransmit {
                    to: entry.addr,
                    len: t.len,
                    dont_fragment: t.dont_fragment,
                });
            }
            handle = after(&self.conns, handle)?;
        }
        None
    }

    /// Acts on the time for every connection whose timer is due.
    pub fn handle_timeout(&mut self, now: Duration) {
        for entry in self.conns.values_mut() {
            if entry.conn.poll_timeout().is_some_and(|t| t <= now) {
                entry.conn.handle_timeout(now);
            }
        }
    }

    /// When [`Endpoint::handle_timeout`] should next be called.
    pub fn poll_timeout(&self) -> Option<Duration> {
        self.conns
            .values()
            .filter_map(|e| e.conn.poll_timeout())
            .min()
    }

    /// The next event of any connection.
    pub fn poll_event(&mut self) -> Option<(ConnectionHandle, Event)> {
        self.conns
            .iter_mut()
            .find_map(|(&h, e)| e.conn.poll_event().map(|ev| (h, ev)))
    }
}

#[cfg(test)]
mod tests;
