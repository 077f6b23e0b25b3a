//! One uTP connection: the handshake, the byte stream both ways, acknowledgements,
//! retransmission, congestion control and closing.
//!
//! Invariants, checked in debug builds after each call that changes them:
//! - `flight[i]` is packet `una + i`, where `una = seq_nr - flight.len()` is the oldest
//!   packet not cumulatively acknowledged.
//! - `bytes_in_flight` is the sum of `len` over the packets `counted` (sent, neither
//!   SACKed nor declared lost).
//! - `reorder[i]` holds packet `ack_nr + 1 + i` if it arrived early; `reorder[0]` is
//!   always empty (that packet would have been delivered), and `reorder_bytes` is the sum
//!   of the payloads held.

use core::time::Duration;
use std::collections::VecDeque;

use crate::ledbat::Ledbat;
use crate::mtu::MtuSearch;
use crate::packet::{seq_less, Header, Packet, PacketType, HEADER_LEN};
use crate::rtt::RttEstimator;
use crate::sack::{SackBits, MAX_SACK_LEN};
use crate::{Error, Result, StreamError};

/// Most packets in flight at once (a quarter of the sequence space would be safe; this
/// keeps the peer's reorder buffer small).
const MAX_FLIGHT: usize = 2048;
/// Furthest ahead of the next expected packet a packet is buffered.
const MAX_REORDER: usize = 4096;
/// Duplicate ACKs that declare the oldest packet lost.
const DUP_ACK_THRESHOLD: u32 = 3;
/// Packets SACKed past a hole that declare it lost.
const SACK_THRESHOLD: u32 = 3;

/// Tunables of one connection; [`Config::default`] follows BEP 29 and libtorrent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Bytes [`Connection::write`] holds, unsent and unacknowledged together.
    pub send_buffer_len: usize,
    /// Bytes received and not yet read (in order or early) this side holds: the window it
    /// advertises.
    pub recv_buffer_len: usize,
    /// LEDBAT's target queueing delay.
    pub target_delay: Duration,
    /// Most bytes the congestion window moves per RTT.
    pub cwnd_gain: u32,
    /// Largest congestion window, bytes.
    pub max_cwnd: u32,
    /// Datagram length known to get through every path (ordinary packets start here).
    pub mtu_floor: u16,
    /// Largest datagram length probed.
    pub mtu_ceiling: u16,
    /// Retransmission timeout before the first RTT sample.
    pub initial_rto: Duration,
    /// Lowest retransmission timeout.
    pub min_rto: Duration,
    /// Highest retransmission timeout, backoff included.
    pub max_rto: Duration,
    /// Timeouts in a row without hearing from the peer before an open connection is
    /// given up.
    pub max_timeouts: u32,
    /// SYNs resent before a dial is given up.
    pub syn_retransmits: u32,
    /// An idle connection sends an ACK this often, to keep NAT mappings open.
    pub keepalive_interval: Duration,
    /// An open connection that hears nothing for this long is given up.
    pub idle_timeout: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            send_buffer_len: 1 << 20,
            recv_buffer_len: 1 << 20,
            target_delay: Duration::from_millis(100),
            cwnd_gain: 3000,
            max_cwnd: 8 << 20,
            mtu_floor: 1200,
            mtu_ceiling: 1452,
            initial_rto: Duration::from_secs(1),
            min_rto: Duration::from_millis(500),
            max_rto: Duration::from_secs(60),
            max_timeouts: 6,
            syn_retransmits: 2,
            keepalive_interval: Duration::from_secs(29),
            idle_timeout: Duration::from_secs(120),
        }
    }
}

/// Something the application should know.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// The handshake completed; the stream is open.
    Connected,
    /// Bytes (or the end of the stream) can be read. Given when they arrive in an empty
    /// buffer: read until [`StreamError::Blocked`] before waiting for the next.
    Readable,
    /// The send buffer is half empty again after a write that did not fit.
    Writable,
    /// The connection is over; no more packets will be sent (but for ACKs of a
    /// retransmitted FIN after [`CloseReason::Finished`]).
    Closed(CloseReason),
}

/// Why a connection ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseReason {
    /// Both sides sent FIN and both FINs were acknowledged.
    Finished,
    /// The peer sent RESET (or refused the SYN with one).
    Reset,
    /// The peer stopped answering (retransmissions or the idle timeout ran out).
    TimedOut,
    /// [`Connection::abort`] was called; a RESET was sent.
    Aborted,
}

/// A datagram [`Connection::poll_transmit`] wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transmit {
    /// Its length in the buffer.
    pub len: usize,
    /// Send it with the don't-fragment bit (an MTU probe): the driver should drop it
    /// rather than fragment it if the path cannot carry it.
    pub dont_fragment: bool,
}

/// Counters and gauges of one connection.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Datagrams sent.
    pub packets_sent: u64,
    /// Datagrams accepted.
    pub packets_received: u64,
    /// Payload bytes sent, retransmissions included.
    pub payload_sent: u64,
    /// Payload bytes delivered in order to the read side.
    pub payload_received: u64,
    /// Packets resent (fast retransmit and timeouts).
    pub retransmits: u64,
    /// Losses found by duplicate ACKs or SACK holes.
    pub fast_losses: u64,
    /// Retransmission timeouts.
    pub timeouts: u64,
    /// The congestion window, bytes.
    pub cwnd: u32,
    /// The smoothed RTT.
    pub srtt: Option<Duration>,
    /// LEDBAT's queueing delay estimate.
    pub queueing_delay: Option<Duration>,
    /// Datagram length of ordinary packets (the MTU found so far).
    pub packet_len: u16,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    SynSent,
    Connected,
    Closed(CloseReason),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fin {
    /// [`Connection::close`] not called.
    Open,
    /// Called; the FIN goes out once the send buffer is empty.
    Requested,
    /// Sent as this packet.
    Sent(u16),
    /// Acknowledged.
    Acked,
}

/// A packet sent and not yet cumulatively acknowledged.
#[derive(Debug)]
struct Sent {
    kind: PacketType,
    /// Where its payload starts in the stream (its bytes stay in `send_buf` until it is
    /// cumulatively acknowledged).
    offset: u64,
    payload_len: usize,
    /// Datagram length at its first transmission (what the congestion window counts).
    len: u32,
    sent_at: Duration,
    transmissions: u32,
    /// Order of its last transmission among all of this connection's.
    order: u64,
    sacked: bool,
    /// Declared lost and waiting to be resent.
    lost: bool,
    /// Counted in `bytes_in_flight`.
    counted: bool,
    dont_fragment: bool,
}

/// What one incoming packet newly acknowledged.
#[derive(Debug, Default)]
struct Acked {
    /// Datagram bytes, as the congestion window counts them.
    bytes: u32,
    /// The RTT of the most recently sent packet among them that was sent only once
    /// (Karn's rule), with its transmission order.
    sample: Option<(u64, Duration)>,
}

impl Acked {
    fn add(&mut self, sent: &Sent, now: Duration) {
        self.bytes += sent.len;
        if sent.transmissions == 1 && self.sample.is_none_or(|(order, _)| sent.order > order) {
            self.sample = Some((sent.order, now.saturating_sub(sent.sent_at)));
        }
    }
}

/// One uTP connection, sans-I/O.
///
/// Feed it datagrams from its peer ([`Connection::handle_datagram`]) and the time
/// ([`Connection::handle_timeout`] when [`Connection::poll_timeout`] says), send what
/// [`Connection::poll_transmit`] writes, and move stream bytes with
/// [`Connection::write`] and [`Connection::read`].
#[derive(Debug)]
pub struct Connection {
    config: Config,
    state: State,
    recv_id: u16,
    send_id: u16,
    // The send side.
    seq_nr: u16,
    flight: VecDeque<Sent>,
    /// Payload bytes of the packets in flight (the front of `send_buf`).
    flight_payload: usize,
    /// The payloads of the packets in flight, in order, then the bytes not yet sent.
    send_buf: VecDeque<u8>,
    /// Stream offset of `send_buf[0]`.
    buf_base: u64,
    bytes_in_flight: u32,
    /// Packets of the flight marked `lost` (waiting to be sent).
    lost_count: usize,
    peer_wnd: u32,
    dup_acks: u32,
    /// Losses of packets before this one belong to the window already cut for.
    recovery_seq: Option<u16>,
    fin: Fin,
    write_blocked: bool,
    reset_pending: bool,
    rtt: RttEstimator,
    ledbat: Ledbat,
    mtu: MtuSearch,
    rto_deadline: Option<Duration>,
    timeouts: u32,
    transmissions: u64,
    // The receive side.
    ack_nr: u16,
    /// The first packet's sequence number, to recognise a retransmitted SYN.
    syn_seq: Option<u16>,
    recv_buf: VecDeque<u8>,
    reorder: VecDeque<Option<Vec<u8>>>,
    reorder_bytes: usize,
    eof_seq: Option<u16>,
    ack_pending: bool,
    /// A retransmitted SYN is to be answered.
    syn_ack_pending: bool,
    /// An idle connection's keep-alive is due.
    keepalive_pending: bool,
    /// The window in the last packet sent.
    advertised_wnd: u32,
    reply_micros: u32,
    last_recv: Duration,
    last_send: Duration,
    events: VecDeque<Event>,
    stats: Stats,
}

/// The 32-bit microsecond timestamp of `now`.
fn micros(now: Duration) -> u32 {
    now.as_micros() as u32
}

impl Connection {
    fn new(
        now: Duration,
        config: Config,
        state: State,
        recv_id: u16,
        send_id: u16,
        seq_nr: u16,
    ) -> Self {
        let mtu = MtuSearch::new(config.mtu_floor, config.mtu_ceiling);
        let packet_len = u32::from(mtu.packet_len());
        Self {
            rtt: RttEstimator::new(config.initial_rto, config.min_rto, config.max_rto),
            ledbat: Ledbat::new(
                2 * packet_len,
                packet_len,
                config.max_cwnd,
                config.target_delay,
                config.cwnd_gain,
            ),
            mtu,
            state,
            recv_id,
            send_id,
            seq_nr,
            flight: VecDeque::new(),
            flight_payload: 0,
            send_buf: VecDeque::new(),
            buf_base: 0,
            bytes_in_flight: 0,
            lost_count: 0,
            peer_wnd: config.recv_buffer_len.min(u32::MAX as usize) as u32,
            dup_acks: 0,
            recovery_seq: None,
            fin: Fin::Open,
            write_blocked: false,
            reset_pending: false,
            rto_deadline: None,
            timeouts: 0,
            transmissions: 0,
            ack_nr: 0,
            syn_seq: None,
            recv_buf: VecDeque::new(),
            reorder: VecDeque::new(),
            reorder_bytes: 0,
            eof_seq: None,
            ack_pending: false,
            syn_ack_pending: false,
            keepalive_pending: false,
            advertised_wnd: 0,
            reply_micros: 0,
            last_recv: now,
            last_send: now,
            events: VecDeque::new(),
            stats: Stats::default(),
            config,
        }
    }

    /// Dials: the first [`Connection::poll_transmit`] sends a SYN with `initial_seq` as
    /// its sequence number and `recv_id` as its connection id (the peer sends to
    /// `recv_id`, this side to `recv_id + 1`). Both should be random.
    pub fn connect(now: Duration, config: Config, recv_id: u16, initial_seq: u16) -> Self {
        let mut conn = Self::new(
            now,
            config,
            State::SynSent,
            recv_id,
            recv_id.wrapping_add(1),
            initial_seq,
        );
        conn.push_flight(PacketType::Syn, 0, HEADER_LEN as u32);
        conn
    }

    /// Answers the SYN `syn` from a peer: the connection is open at once and the first
    /// [`Connection::poll_transmit`] acknowledges the SYN. `initial_seq` should be random.
    pub fn accept(now: Duration, config: Config, syn: &Header, initial_seq: u16) -> Self {
        let mut conn = Self::new(
            now,
            config,
            State::Connected,
            syn.connection_id.wrapping_add(1),
            syn.connection_id,
            initial_seq,
        );
        conn.ack_nr = syn.seq_nr;
        conn.syn_seq = Some(syn.seq_nr);
        conn.peer_wnd = syn.wnd_size;
        conn.reply_micros = micros(now).wrapping_sub(syn.timestamp_micros);
        // A STATE first, even if data is written at once: it opens the connection.
        conn.syn_ack_pending = true;
        conn.events.push_back(Event::Connected);
        conn
    }

    /// The id the peer puts in packets to this side.
    pub fn recv_id(&self) -> u16 {
        self.recv_id
    }

    /// The id this side puts in packets to the peer.
    pub fn send_id(&self) -> u16 {
        self.send_id
    }

    /// Whether the connection has ended (see [`Event::Closed`]).
    pub fn is_closed(&self) -> bool {
        matches!(self.state, State::Closed(_))
    }

    /// Why the connection ended, once it has.
    pub fn close_reason(&self) -> Option<CloseReason> {
        match self.state {
            State::Closed(reason) => Some(reason),
            _ => None,
        }
    }

    /// Counters and gauges.
    pub fn stats(&self) -> Stats {
        Stats {
            cwnd: self.ledbat.window(),
            srtt: self.rtt.srtt(),
            queueing_delay: self.ledbat.queueing_delay(),
            packet_len: self.mtu.packet_len(),
            ..self.stats
        }
    }

    /// The next event, if any.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// Queues up to `data.len()` bytes for sending; returns how many fit in the send
    /// buffer (0 when it is full: wait for [`Event::Writable`]).
    pub fn write(&mut self, data: &[u8]) -> Result<usize, StreamError> {
        if let State::Closed(reason) = self.state {
            return Err(StreamError::Closed(reason));
        }
        if self.fin != Fin::Open {
            return Err(StreamError::WriteClosed);
        }
        let room = self
            .config
            .send_buffer_len
            .saturating_sub(self.send_buf.len());
        let n = room.min(data.len());
        self.send_buf.extend(&data[..n]);
        if n < data.len() {
            self.write_blocked = true;
        }
        Ok(n)
    }

    /// Reads received bytes in order into `buf`.
    pub fn read(&mut self, buf: &mut [u8]) -> Result<usize, StreamError> {
        if !self.recv_buf.is_empty() {
            let before = self.window();
            let n = buf.len().min(self.recv_buf.len());
            let (a, b) = self.recv_buf.as_slices();
            let from_a = n.min(a.len());
            buf[..from_a].copy_from_slice(&a[..from_a]);
            buf[from_a..n].copy_from_slice(&b[..n - from_a]);
            self.recv_buf.drain(..n);
            self.maybe_update_window(before);
            return Ok(n);
        }
        match self.state {
            State::Closed(CloseReason::Finished) => Err(StreamError::Finished),
            State::Closed(reason) => Err(StreamError::Closed(reason)),
            _ if self.eof_seq == Some(self.ack_nr) => Err(StreamError::Finished),
            _ => Err(StreamError::Blocked),
        }
    }

    /// Bytes waiting to be read.
    pub fn readable_len(&self) -> usize {
        self.recv_buf.len()
    }

    /// Bytes written and not yet acknowledged.
    pub fn unacked_len(&self) -> usize {
        self.send_buf.len()
    }

    /// Ends this side of the stream: once everything written is sent, a FIN follows.
    pub fn close(&mut self) {
        if self.fin == Fin::Open {
            self.fin = Fin::Requested;
        }
    }

    /// Ends the connection at once: the next [`Connection::poll_transmit`] sends a RESET.
    pub fn abort(&mut self) {
        if !self.is_closed() {
            self.reset_pending = true;
            self.close_with(CloseReason::Aborted);
        }
    }

    /// The receive window this side advertises.
    fn window(&self) -> u32 {
        let used = self.recv_buf.len() + self.reorder_bytes;
        self.config
            .recv_buffer_len
            .saturating_sub(used)
            .min(u32::MAX as usize) as u32
    }

    /// After a read: tell the peer if the window opened from nearly shut.
    fn maybe_update_window(&mut self, before: u32) {
        let now_wnd = self.window();
        let packet = u32::from(self.mtu.packet_len());
        let half = (self.config.recv_buffer_len / 2).min(u32::MAX as usize) as u32;
        if (self.advertised_wnd < 2 * packet && now_wnd >= 2 * packet && before < now_wnd)
            || now_wnd >= self.advertised_wnd.saturating_add(half)
        {
            self.ack_pending = true;
        }
    }

    fn close_with(&mut self, reason: CloseReason) {
        if self.is_closed() {
            return;
        }
        self.state = State::Closed(reason);
        self.rto_deadline = None;
        self.events.push_back(Event::Closed(reason));
        if reason != CloseReason::Finished {
            self.send_buf.clear();
            self.flight.clear();
            self.flight_payload = 0;
            self.bytes_in_flight = 0;
            self.lost_count = 0;
        }
    }

    fn una(&self) -> u16 {
        self.seq_nr.wrapping_sub(self.flight.len() as u16)
    }

    /// Bytes written and not yet put in a packet.
    fn unsent_len(&self) -> usize {
        self.send_buf.len() - self.flight_payload
    }

    /// Puts the next `payload_len` unsent bytes in a new packet of `len` datagram bytes.
    fn push_flight(&mut self, kind: PacketType, payload_len: usize, len: u32) -> u16 {
        let seq = self.seq_nr;
        let offset = self.buf_base + self.flight_payload as u64;
        self.flight_payload += payload_len;
        self.flight.push_back(Sent {
            kind,
            offset,
            payload_len,
            len,
            sent_at: Duration::ZERO,
            transmissions: 0,
            order: 0,
            sacked: false,
            lost: true,
            counted: false,
            dont_fragment: false,
        });
        self.seq_nr = self.seq_nr.wrapping_add(1);
        self.lost_count += 1;
        seq
    }

    /// Takes one datagram from the peer. An error means it was dropped (and why); the
    /// connection goes on.
    pub fn handle_datagram(&mut self, now: Duration, datagram: &[u8]) -> Result<()> {
        let packet = Packet::decode(datagram)?;
        self.handle_packet(now, &packet)
    }

    /// Takes one decoded packet from the peer.
    pub(crate) fn handle_packet(&mut self, now: Duration, packet: &Packet<'_>) -> Result<()> {
        let h = &packet.header;
        let lingering = self.state == State::Closed(CloseReason::Finished);
        if self.is_closed() && !lingering {
            return Err(Error::Closed);
        }
        let expected = match h.packet_type {
            PacketType::Syn => self.recv_id.wrapping_sub(1),
            PacketType::Reset if h.connection_id == self.send_id => self.send_id,
            _ => self.recv_id,
        };
        if h.connection_id != expected {
            return Err(Error::ConnectionId {
                got: h.connection_id,
                expected,
            });
        }
        // Validate the acknowledgement before changing anything: a RESET too must
        // acknowledge nothing we never sent (libtorrent's rule, against blind resets).
        let last_sent = self.seq_nr.wrapping_sub(1);
        if h.packet_type != PacketType::Syn && seq_less(last_sent, h.ack_nr) {
            return Err(Error::AckOfUnsent {
                ack_nr: h.ack_nr,
                next_seq: self.seq_nr,
            });
        }
        match h.packet_type {
            PacketType::Reset => {
                self.close_with(CloseReason::Reset);
                return Ok(());
            }
            PacketType::Syn => {
                if self.syn_seq != Some(h.seq_nr) {
                    return Err(Error::Unexpected {
                        packet_type: h.packet_type,
                        state: self.state_name(),
                    });
                }
                // Our STATE was lost: acknowledge again, naming the first packet not yet
                // acknowledged (data may have gone out since).
                self.note_received(now, h);
                self.syn_ack_pending = true;
                return Ok(());
            }
            _ => {}
        }
        if self.state == State::SynSent {
            // Only a STATE acknowledging our SYN opens the connection: its sequence number
            // is the first the peer sends. (Data that overtook it could have lost
            // company on the way, and its sequence number says nothing about the first.)
            if h.packet_type != PacketType::State || h.ack_nr != self.una() {
                return Err(Error::Unexpected {
                    packet_type: h.packet_type,
                    state: self.state_name(),
                });
            }
            self.state = State::Connected;
            self.ack_nr = h.seq_nr.wrapping_sub(1);
            self.events.push_back(Event::Connected);
        }
        self.note_received(now, h);
        self.handle_ack(now, packet);
        match h.packet_type {
            PacketType::Data => self.handle_data(h.seq_nr, packet.payload, false),
            PacketType::Fin => self.handle_data(h.seq_nr, &[], true),
            _ => {}
        }
        self.check_finished();
        self.check_writable();
        self.debug_check();
        Ok(())
    }

    fn state_name(&self) -> &'static str {
        match self.state {
            State::SynSent => "syn-sent",
            State::Connected => "connected",
            State::Closed(_) => "closed",
        }
    }

    fn note_received(&mut self, now: Duration, h: &Header) {
        self.stats.packets_received += 1;
        self.last_recv = now;
        self.timeouts = 0;
        self.peer_wnd = h.wnd_size;
        self.reply_micros = micros(now).wrapping_sub(h.timestamp_micros);
    }

    fn handle_ack(&mut self, now: Duration, packet: &Packet<'_>) {
        let h = &packet.header;
        let una = self.una();
        let last_acked = una.wrapping_sub(1);
        if seq_less(h.ack_nr, last_acked) {
            return; // an old packet, overtaken
        }
        let cwnd = self.ledbat.window();
        let window_full = self.bytes_in_flight + u32::from(self.mtu.packet_len()) > cwnd;
        let mut acked = Acked::default();
        let cumulative = h.ack_nr.wrapping_sub(last_acked);
        for i in 0..cumulative {
            let Some(sent) = self.flight.pop_front() else {
                break;
            };
            let seq = una.wrapping_add(i);
            self.flight_payload -= sent.payload_len;
            self.send_buf.drain(..sent.payload_len);
            self.buf_base += sent.payload_len as u64;
            self.lost_count -= usize::from(sent.lost);
            if sent.counted {
                self.bytes_in_flight -= sent.len;
            }
            if !sent.sacked && sent.transmissions > 0 {
                acked.add(&sent, now);
                self.mtu.on_acked(seq);
            }
            if sent.kind == PacketType::Fin {
                self.fin = Fin::Acked;
            }
        }
        let mut sacked_any = false;
        if let Some(sack) = packet.sack {
            let base = h.ack_nr.wrapping_add(2);
            for offset in sack.offsets() {
                let seq = base.wrapping_add(offset as u16);
                let index = usize::from(seq.wrapping_sub(h.ack_nr.wrapping_add(1)));
                let Some(sent) = self.flight.get_mut(index) else {
                    break;
                };
                if sent.sacked || sent.transmissions == 0 {
                    continue;
                }
                sent.sacked = true;
                self.lost_count -= usize::from(sent.lost);
                sent.lost = false;
                if sent.counted {
                    sent.counted = false;
                    self.bytes_in_flight -= sent.len;
                }
                sacked_any = true;
                acked.add(sent, now);
                self.mtu.on_acked(seq);
            }
        }
        if cumulative > 0 || sacked_any {
            self.dup_acks = 0;
            if let Some((_, rtt)) = acked.sample {
                self.rtt.sample(rtt);
            }
            if h.timestamp_difference_micros != 0 {
                self.ledbat
                    .on_delay_sample(now, h.timestamp_difference_micros);
            }
            if acked.bytes > 0 {
                self.ledbat.on_ack(acked.bytes, window_full);
            }
            self.rto_deadline = (self.bytes_in_flight > 0).then(|| now + self.rtt.rto());
        } else if h.packet_type == PacketType::State && !self.flight.is_empty() {
            self.dup_acks += 1;
            if self.dup_acks == DUP_ACK_THRESHOLD {
                let front = &self.flight[0];
                if front.transmissions == 1 && !front.lost && !front.sacked {
                    self.declare_lost(0);
                }
            }
        }
        if sacked_any {
            self.detect_sack_losses();
        }
    }

    /// A packet with at least [`SACK_THRESHOLD`] packets SACKed after it, one of them sent
    /// after its own last transmission, is lost.
    fn detect_sack_losses(&mut self) {
        let mut sacked_after = 0;
        let mut newest_sacked_order = 0;
        let mut lost = Vec::new();
        for (i, sent) in self.flight.iter().enumerate().rev() {
            if sent.sacked {
                sacked_after += 1;
                newest_sacked_order = newest_sacked_order.max(sent.order);
            } else if sacked_after >= SACK_THRESHOLD
                && !sent.lost
                && sent.transmissions > 0
                && sent.order < newest_sacked_order
            {
                lost.push(i);
            }
        }
        for i in lost.into_iter().rev() {
            self.declare_lost(i);
        }
    }

    fn declare_lost(&mut self, index: usize) {
        let seq = self.una().wrapping_add(index as u16);
        let sent = &mut self.flight[index];
        sent.lost = true;
        self.lost_count += 1;
        if sent.counted {
            sent.counted = false;
            self.bytes_in_flight -= sent.len;
        }
        self.stats.fast_losses += 1;
        if self.mtu.is_probe(seq) {
            // Too big for the path, most likely: not congestion.
            self.mtu.on_lost(seq);
            self.flight[index].dont_fragment = false;
            return;
        }
        if self.recovery_seq.is_none_or(|r| !seq_less(seq, r)) {
            self.ledbat.on_loss();
            self.recovery_seq = Some(self.seq_nr);
        }
    }

    /// A DATA payload or a FIN (`fin`, no payload) with sequence number `seq`.
    fn handle_data(&mut self, seq: u16, payload: &[u8], fin: bool) {
        self.ack_pending = true;
        if let Some(eof) = self.eof_seq {
            if seq_less(eof, seq) || (fin && seq != eof) {
                return; // nothing counts after the FIN
            }
        }
        let next = self.ack_nr.wrapping_add(1);
        let ahead = usize::from(seq.wrapping_sub(next));
        if ahead >= 0x8000 {
            return; // a duplicate of something delivered
        }
        let used = self.recv_buf.len() + self.reorder_bytes;
        if used + payload.len() > self.config.recv_buffer_len || ahead >= MAX_REORDER {
            return; // no room: the peer will resend
        }
        if fin {
            self.eof_seq = Some(seq);
            // Anything held past the end never counts.
            for held in self
                .reorder
                .drain((ahead + 1).min(self.reorder.len())..)
                .flatten()
            {
                self.reorder_bytes -= held.len();
            }
        }
        if ahead > 0 {
            if self.reorder.len() <= ahead {
                self.reorder.resize_with(ahead + 1, || None);
            }
            if self.reorder[ahead].is_none() {
                self.reorder_bytes += payload.len();
                self.reorder[ahead] = Some(payload.to_vec());
            }
            return;
        }
        let was_empty = self.recv_buf.is_empty();
        self.deliver(payload);
        self.reorder.pop_front();
        while let Some(Some(_)) = self.reorder.front() {
            let Some(Some(held)) = self.reorder.pop_front() else {
                unreachable!("front was checked")
            };
            self.reorder_bytes -= held.len();
            self.deliver(&held);
        }
        if was_empty && (!self.recv_buf.is_empty() || self.eof_seq == Some(self.ack_nr)) {
            self.events.push_back(Event::Readable);
        }
    }

    fn deliver(&mut self, payload: &[u8]) {
        self.ack_nr = self.ack_nr.wrapping_add(1);
        self.recv_buf.extend(payload);
        self.stats.payload_received += payload.len() as u64;
    }

    fn check_finished(&mut self) {
        if self.fin == Fin::Acked
            && self.eof_seq == Some(self.ack_nr)
            && self.state == State::Connected
        {
            self.close_with(CloseReason::Finished);
        }
    }

    fn check_writable(&mut self) {
        if self.write_blocked
            && self.fin == Fin::Open
            && self.send_buf.len() <= self.config.send_buffer_len / 2
        {
            self.write_blocked = false;
            self.events.push_back(Event::Writable);
        }
    }

    /// Acts on the time: retransmission, keep-alive and idle timeouts.
    pub fn handle_timeout(&mut self, now: Duration) {
        if self.is_closed() {
            return;
        }
        if self.rto_deadline.is_some_and(|d| now >= d) {
            self.on_rto();
        }
        if self.state == State::Connected {
            if now.saturating_sub(self.last_recv) >= self.config.idle_timeout {
                self.close_with(CloseReason::TimedOut);
                return;
            }
            if now.saturating_sub(self.last_send) >= self.config.keepalive_interval {
                self.keepalive_pending = true;
            }
        }
        self.debug_check();
    }

    fn on_rto(&mut self) {
        self.rto_deadline = None;
        // A peer whose window is shut drops what we send; resending then probes the
        // window and is no sign of congestion or of a dead peer (the idle timeout
        // still applies).
        let window_probe =
            self.state == State::Connected && self.peer_wnd < u32::from(self.mtu.packet_len());
        if !window_probe {
            self.timeouts += 1;
            self.stats.timeouts += 1;
            let limit = match self.state {
                State::SynSent => self.config.syn_retransmits,
                _ => self.config.max_timeouts,
            };
            if self.timeouts > limit {
                self.close_with(CloseReason::TimedOut);
                return;
            }
            if self.state == State::Connected {
                self.ledbat.on_timeout();
            }
        }
        self.rtt.back_off();
        let una = self.una();
        for (i, sent) in self.flight.iter_mut().enumerate() {
            if sent.sacked || sent.lost {
                continue;
            }
            sent.lost = true;
            self.lost_count += 1;
            if sent.counted {
                sent.counted = false;
                self.bytes_in_flight -= sent.len;
            }
            let seq = una.wrapping_add(i as u16);
            if self.mtu.is_probe(seq) {
                self.mtu.on_lost(seq);
                sent.dont_fragment = false;
            }
        }
        self.recovery_seq = Some(self.seq_nr);
        self.ledbat.set_min_window(u32::from(self.mtu.packet_len()));
    }

    /// When [`Connection::handle_timeout`] should next be called.
    pub fn poll_timeout(&self) -> Option<Duration> {
        if self.is_closed() {
            return None;
        }
        let mut next = self.rto_deadline;
        if self.state == State::Connected {
            for t in [
                self.last_recv + self.config.idle_timeout,
                self.last_send + self.config.keepalive_interval,
            ] {
                next = Some(next.map_or(t, |n| n.min(t)));
            }
        }
        next
    }

    /// Writes the next datagram to send into `buf` (cleared first), if there is one.
    pub fn poll_transmit(&mut self, now: Duration, buf: &mut Vec<u8>) -> Option<Transmit> {
        buf.clear();
        if self.reset_pending {
            self.reset_pending = false;
            let header = self.header(now, PacketType::Reset, self.seq_nr);
            Packet {
                header,
                sack: None,
                payload: &[],
            }
            .encode(buf);
            return Some(self.sent(now, buf.len(), false));
        }
        let lingering = self.state == State::Closed(CloseReason::Finished);
        if self.is_closed() && !lingering {
            return None;
        }
        if self.syn_ack_pending {
            self.syn_ack_pending = false;
            let header = self.header(now, PacketType::State, self.una());
            Packet {
                header,
                sack: None,
                payload: &[],
            }
            .encode(buf);
            return Some(self.sent(now, buf.len(), false));
        }
        if !lingering {
            if let Some(t) = self.transmit_flight(now, buf) {
                return Some(t);
            }
        }
        if self.ack_pending || self.keepalive_pending {
            let mut header = self.header(now, PacketType::State, self.seq_nr);
            if !self.ack_pending {
                // A keep-alive acknowledges one packet less, so the peer cannot take it
                // for a duplicate ACK.
                header.ack_nr = header.ack_nr.wrapping_sub(1);
            }
            self.keepalive_pending = false;
            let mut bits = SackBits::default();
            let sack = self
                .sack_bits(&mut bits)
                .then(|| bits.as_sack(MAX_SACK_LEN))
                .flatten();
            Packet {
                header,
                sack,
                payload: &[],
            }
            .encode(buf);
            self.ack_pending = false;
            return Some(self.sent(now, buf.len(), false));
        }
        None
    }

    fn sent(&mut self, now: Duration, len: usize, dont_fragment: bool) -> Transmit {
        self.stats.packets_sent += 1;
        self.last_send = now;
        self.advertised_wnd = self.window();
        Transmit { len, dont_fragment }
    }

    fn header(&self, now: Duration, packet_type: PacketType, seq_nr: u16) -> Header {
        Header {
            packet_type,
            connection_id: if packet_type == PacketType::Syn {
                self.recv_id
            } else {
                self.send_id
            },
            timestamp_micros: micros(now),
            timestamp_difference_micros: self.reply_micros,
            wnd_size: self.window(),
            seq_nr,
            ack_nr: if packet_type == PacketType::Syn {
                0
            } else {
                self.ack_nr
            },
        }
    }

    /// Marks packets held early; false if none.
    fn sack_bits(&self, bits: &mut SackBits) -> bool {
        let mut any = false;
        for (i, slot) in self.reorder.iter().enumerate().skip(1) {
            if slot.is_some() {
                bits.set(i - 1);
                any = true;
            }
        }
        any
    }

    /// The next packet of the flight to (re)send, or a new one, window permitting.
    fn transmit_flight(&mut self, now: Duration, buf: &mut Vec<u8>) -> Option<Transmit> {
        let window = self.ledbat.window().min(self.peer_wnd);
        let fits = |len: u32, in_flight: u32| in_flight == 0 || in_flight + len <= window;
        let first_lost = if self.lost_count > 0 {
            self.flight.iter().position(|s| s.lost)
        } else {
            None
        };
        let index = match first_lost {
            Some(i) => {
                if !fits(self.flight[i].len, self.bytes_in_flight) {
                    return None;
                }
                self.stats.retransmits += u64::from(self.flight[i].transmissions > 0);
                i
            }
            None => {
                if self.state != State::Connected || self.flight.len() >= MAX_FLIGHT {
                    return None;
                }
                let unsent = self.unsent_len();
                if unsent > 0 {
                    let probe = self
                        .mtu
                        .probe_len()
                        .filter(|&p| unsent >= usize::from(p) - HEADER_LEN);
                    let len = probe.unwrap_or(self.mtu.packet_len());
                    let payload_len = unsent.min(usize::from(len) - HEADER_LEN);
                    let len = (HEADER_LEN + payload_len) as u32;
                    if !fits(len, self.bytes_in_flight) {
                        return None;
                    }
                    let seq = self.push_flight(PacketType::Data, payload_len, len);
                    if let Some(p) = probe {
                        self.mtu.on_probe_sent(seq, p);
                        self.flight.back_mut().expect("just pushed").dont_fragment = true;
                    }
                } else if self.fin == Fin::Requested {
                    let seq = self.push_flight(PacketType::Fin, 0, HEADER_LEN as u32);
                    self.fin = Fin::Sent(seq);
                } else {
                    return None;
                }
                self.flight.len() - 1
            }
        };
        let seq = self.una().wrapping_add(index as u16);
        self.transmissions += 1;
        let sent = &self.flight[index];
        let header = self.header(now, sent.kind, seq);
        let max_len = usize::try_from(sent.len).unwrap_or(usize::MAX);
        let room = max_len
            .max(usize::from(self.mtu.packet_len()))
            .saturating_sub(HEADER_LEN + sent.payload_len + 2);
        let mut bits = SackBits::default();
        let has_sack = self.sack_bits(&mut bits);
        let sack = if has_sack { bits.as_sack(room) } else { None };
        Packet {
            header,
            sack,
            payload: &[],
        }
        .encode(buf);
        // The payload comes last: copy it straight from the send buffer.
        let start = (sent.offset - self.buf_base) as usize;
        let end = start + sent.payload_len;
        let (a, b) = self.send_buf.as_slices();
        if start < a.len() {
            buf.extend_from_slice(&a[start..end.min(a.len())]);
        }
        if end > a.len() {
            buf.extend_from_slice(&b[start.saturating_sub(a.len())..end - a.len()]);
        }
        let full_ack = !has_sack || sack.is_some_and(|s| Some(s) == bits.as_sack(MAX_SACK_LEN));
        if full_ack && sent.kind != PacketType::Syn {
            self.ack_pending = false;
        }
        let dont_fragment = sent.dont_fragment;
        let payload_len = sent.payload_len as u64;
        let order = self.transmissions;
        let sent = &mut self.flight[index];
        sent.lost = false;
        self.lost_count -= 1;
        sent.counted = true;
        sent.transmissions += 1;
        sent.sent_at = now;
        sent.order = order;
        self.bytes_in_flight += sent.len;
        self.stats.payload_sent += payload_len;
        if self.rto_deadline.is_none() {
            self.rto_deadline = Some(now + self.rtt.rto());
        }
        self.debug_check();
        Some(self.sent(now, buf.len(), dont_fragment))
    }

    fn debug_check(&self) {
        if cfg!(debug_assertions) {
            let counted: u32 = self
                .flight
                .iter()
                .filter(|s| s.counted)
                .map(|s| s.len)
                .sum();
            debug_assert_eq!(counted, self.bytes_in_flight, "bytes in flight");
            let lost = self.flight.iter().filter(|s| s.lost).count();
            debug_assert_eq!(lost, self.lost_count, "lost packets");
            debug_assert!(
                self.flight.iter().all(|s| !(s.lost && s.sacked)),
                "lost and sacked"
            );
            let mut offset = self.buf_base;
            for sent in &self.flight {
                debug_assert_eq!(sent.offset, offset, "flight payloads are contiguous");
                offset += sent.payload_len as u64;
            }
            debug_assert_eq!(
                offset - self.buf_base,
                self.flight_payload as u64,
                "flight payload"
            );
            debug_assert!(
                self.flight_payload <= self.send_buf.len(),
                "payloads are buffered"
            );
            debug_assert!(
                self.reorder.front().is_none_or(|s| s.is_none()),
                "reorder front"
            );
            let held: usize = self.reorder.iter().flatten().map(Vec::len).sum();
            debug_assert_eq!(held, self.reorder_bytes, "reorder bytes");
        }
    }
}

#[cfg(test)]
mod tests;
