//! One peer connection: the handshake, then a reader and a writer that talk to the torrent
//! actor over bounded channels.
//!
//! A connection is the two halves of a [`Connection`] from the transport:
//!
//! - the **reader** decodes frames with [`MessageCodec`] into a large read buffer and hands
//!   them, a batch of whatever is already decoded at a time, to the torrent actor as
//!   `PeerEvent::Messages`. It makes no decisions: every check of a message against the
//!   torrent happens in the actor. `piece` payloads are [`bytes::Bytes`] that share the read
//!   buffer, so a block is never copied between the socket and the disk.
//! - the **writer** receives `Command`s from the actor, encodes them into one write
//!   buffer and writes it out. It serves blocks the actor approved (`Command::Serve`):
//!   queued requests are read in batches of up to 256 KiB, one blocking job per batch,
//!   straight into framed `piece` messages (the `upload` module) that go out with one write
//!   each; a few batches are in flight so reading overlaps writing. It also sends
//!   keep-alives.
//!
//! The actor never awaits a peer: it `try_send`s commands, and a peer whose command queue is
//! full is too slow and is dropped. Peers await the actor, which bounds what they read.
//! When the writer ends (the actor dropped or closed it, or a write failed) it stops the
//! reader; whichever half fails first reports `PeerEvent::Closed` with the reason.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bt_meta::BlockInfo;
use bt_wire::{Handshake, HandshakeCodec, Message, MessageCodec};
use bytes::{Bytes, BytesMut};
use futures::stream::FuturesOrdered;
use futures::{FutureExt, SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt, Chain};
use tokio::sync::mpsc;
use tokio::time::{timeout, Instant};
use tokio_util::codec::{Framed, FramedParts, FramedRead};

use crate::driver::encryption::{self, EncryptionPolicy, PeerReader, PeerStream, PeerWriter};
use crate::driver::ratelimit::Throttle;
use crate::driver::readbuf;
use crate::driver::transport::{Connection, Transport};
use crate::driver::upload::{Batch, ReadError, Uploads};
use crate::proto::{Command, Disconnect, PeerKey};

/// Under an upload limit, batches are written in slices of this size, each after its
/// wait, so a low limit spaces out small writes instead of pausing long between batches.
const THROTTLED_SLICE: usize = 16 * 1024;

/// How long a connect plus handshake may take.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// A connection on which nothing arrives for this long is closed.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(300);
/// A keep-alive is sent after this long without writing anything.
pub const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(120);
/// Most messages handed to the actor in one [`PeerEvent::Messages`].
const MAX_BATCH: usize = 64;
/// Upload batches one connection holds at most (being read, or read and waiting to be
/// written); each is up to [`BATCH_LEN`](crate::driver::upload::BATCH_LEN) bytes.
const MAX_BATCHES: usize = 3;
/// The write buffer is flushed once it holds this much, even if more is ready.
const WRITE_FLUSH_LEN: usize = 256 * 1024;

/// Reads blocks of verified data for upload (on the blocking pool).
pub(crate) type BlockReader = Uploads;

/// A connection just finished its handshake.
#[derive(Debug)]
pub(crate) struct Connected {
    /// Our key for it.
    pub key: PeerKey,
    /// The remote address.
    pub addr: SocketAddr,
    /// The peer's handshake.
    pub handshake: Handshake,
    /// Whether we dialled it.
    pub outgoing: bool,
    /// Commands to its writer.
    pub commands: mpsc::Sender<Command>,
}

/// What a connection tells its torrent actor.
#[derive(Debug)]
pub(crate) enum PeerEvent {
    /// Handshake done; the actor decides whether to keep it.
    Connected(Box<Connected>),
    /// Messages in the order they arrived.
    Messages {
        /// The connection.
        key: PeerKey,
        /// At most [`MAX_BATCH`] messages.
        msgs: Vec<Message>,
    },
    /// Blocks written to the socket or dropped since the last report.
    Served {
        /// The connection.
        key: PeerKey,
        /// `piece` messages sent.
        blocks: u32,
        /// Payload bytes sent.
        bytes: u64,
        /// Queued blocks dropped (choke, cancel).
        dropped: u32,
    },
    /// The connection ended.
    Closed {
        /// The connection.
        key: PeerKey,
        /// Why (boxed, as in [`PeerEvent::ConnectFailed`]).
        reason: Box<Disconnect>,
    },
    /// An outgoing connection failed before its handshake finished: where we dialled
    /// and why (boxed: it is rare, and the event queue's slots are sized by the largest
    /// event).
    ConnectFailed(Box<(SocketAddr, Disconnect)>),
}

/// A stream framed for the handshake, handshakes exchanged.
pub(crate) type HandshakenStream = Framed<PeerStream, HandshakeCodec>;

/// Dials `addr`, sends our handshake and checks the answer, each attempt within
/// [`HANDSHAKE_TIMEOUT`]. The policy says whether the first attempt is encrypted (MSE/PE);
/// under [`EncryptionPolicy::Enabled`] a peer that closes our plaintext handshake (it
/// requires encryption) is dialled once more with MSE.
pub(crate) async fn dial(
    transport: &dyn Transport,
    addr: SocketAddr,
    ours: Handshake,
    policy: EncryptionPolicy,
) -> Result<(HandshakenStream, Handshake), Disconnect> {
    let attempt = |offer| async move {
        timeout(HANDSHAKE_TIMEOUT, dial_once(transport, addr, ours, offer))
            .await
            .map_err(|_| (Disconnect::HandshakeTimeout, true))?
    };
    match attempt(policy.dial_offer()).await {
        Ok(done) => Ok(done),
        Err((Disconnect::Eof | Disconnect::Io(_), true)) if policy.retry_offer().is_some() => {
            tracing::debug!(peer = %addr, "plaintext handshake closed; dialling again with encryption");
            attempt(policy.retry_offer())
                .await
                .map_err(|(reason, _)| reason)
        }
        Err((reason, _)) => Err(reason),
    }
}

/// One dial: plaintext when `offer` is `None`, else MSE offering those ciphers. The flag
/// beside an error says whether the connection was made.
async fn dial_once(
    transport: &dyn Transport,
    addr: SocketAddr,
    ours: Handshake,
    offer: Option<bt_wire::mse::CipherSet>,
) -> Result<(HandshakenStream, Handshake), (Disconnect, bool)> {
    let stream = transport
        .dial(addr)
        .await
        .map_err(|e| (Disconnect::Io(e), false))?;
    let connected = |e: Disconnect| (e, true);
    let mut framed = match offer {
        None => {
            let mut framed = Framed::new(PeerStream::plain(stream), HandshakeCodec::new());
            framed.send(ours).await.map_err(|e| connected(e.into()))?;
            framed
        }
        Some(offer) => {
            let mut initial = BytesMut::new();
            ours.encode(&mut initial);
            let (stream, rest) =
                encryption::connect(stream, ours.info_hash, offer, initial.to_vec())
                    .await
                    .map_err(|e| connected(e.into()))?;
            handshake_framed(stream, &rest)
        }
    };
    let theirs = framed
        .next()
        .await
        .ok_or(connected(Disconnect::Eof))?
        .map_err(|e| connected(e.into()))?;
    if theirs.info_hash != ours.info_hash {
        return Err(connected(Disconnect::WrongInfoHash {
            got: theirs.info_hash,
            expected: ours.info_hash,
        }));
    }
    if theirs.peer_id == ours.peer_id {
        return Err(connected(Disconnect::SelfConnection));
    }
    Ok((framed, theirs))
}

/// `stream` framed for the handshake, with `first` (bytes already read) in front.
fn handshake_framed(stream: PeerStream, first: &[u8]) -> HandshakenStream {
    let mut parts = FramedParts::new::<Handshake>(stream, HandshakeCodec::new());
    parts.read_buf = BytesMut::from(first);
    Framed::from_parts(parts)
}

/// Reads the handshake of an incoming connection (within [`HANDSHAKE_TIMEOUT`]), after
/// an MSE handshake if the peer starts one and `policy` allows it (`lookup` maps the
/// obfuscated info-hash to a torrent we serve); the caller routes it by info-hash and
/// answers with [`answer`].
pub(crate) async fn read_incoming(
    stream: Connection,
    policy: EncryptionPolicy,
    lookup: &(dyn Fn(&[u8; 20]) -> Option<[u8; 20]> + Sync),
) -> Result<(HandshakenStream, Handshake), Disconnect> {
    let work = async {
        let (stream, first) =
            encryption::accept(stream, policy, lookup, 2 * HANDSHAKE_TIMEOUT).await?;
        let mut framed = handshake_framed(stream, &first);
        let theirs = framed.next().await.ok_or(Disconnect::Eof)??;
        Ok((framed, theirs))
    };
    timeout(HANDSHAKE_TIMEOUT, work)
        .await
        .map_err(|_| Disconnect::HandshakeTimeout)?
}

/// Sends our handshake on an incoming connection.
pub(crate) async fn answer(
    framed: &mut HandshakenStream,
    ours: Handshake,
) -> Result<(), Disconnect> {
    timeout(HANDSHAKE_TIMEOUT, framed.send(ours))
        .await
        .map_err(|_| Disconnect::HandshakeTimeout)??;
    Ok(())
}

/// Everything a running connection needs besides its socket.
pub(crate) struct Wiring {
    /// Our key for it.
    pub key: PeerKey,
    /// Where events go.
    pub events: mpsc::Sender<PeerEvent>,
    /// Capacity of the command queue.
    pub command_capacity: usize,
    /// Reads blocks to upload.
    pub reader: BlockReader,
    /// The rate limits over it.
    pub throttle: Throttle,
}

/// Runs a connection whose handshakes are done until it ends. Reports
/// [`PeerEvent::Connected`] first and [`PeerEvent::Closed`] last (unless the actor is gone).
pub(crate) async fn run(
    framed: HandshakenStream,
    handshake: Handshake,
    ours: Handshake,
    addr: SocketAddr,
    outgoing: bool,
    wiring: Wiring,
) {
    let fast = handshake.reserved.supports_fast() && ours.reserved.supports_fast();
    let framed = framed.map_codec(|_| MessageCodec::new());
    let parts = framed.into_parts();
    let leftover = parts.read_buf;
    let (read_half, write_half) = parts.io.into_split();
    // Bytes the peer sent right behind its handshake are read first. (Putting them in the
    // new FramedRead's buffer would not do: it reads the socket before decoding them.)
    let leftover = std::io::Cursor::new(leftover.freeze());
    // The read buffer comes from the shared pool (see `readbuf`).
    let mut reader = FramedRead::with_capacity(leftover.chain(read_half), MessageCodec::new(), 0);
    *reader.read_buffer_mut() = readbuf::SHARED.take();

    let (tx, rx) = mpsc::channel(wiring.command_capacity);
    let key = wiring.key;
    let connected = Connected {
        key,
        addr,
        handshake,
        outgoing,
        commands: tx,
    };
    if wiring
        .events
        .send(PeerEvent::Connected(Box::new(connected)))
        .await
        .is_err()
    {
        return;
    }
    let events = wiring.events.clone();
    let mut read_task = tokio::spawn(read_loop(
        reader,
        key,
        wiring.events.clone(),
        wiring.throttle.clone(),
    ));
    let mut writer = Writer::new(write_half, rx, wiring.events, key, fast, wiring.reader);
    writer.throttle = Some(wiring.throttle);
    let result = tokio::select! {
        r = writer.run() => r,
        r = &mut read_task => match r {
            Ok(reason) => Some(reason),
            Err(_) => Some(Disconnect::Shutdown),
        },
    };
    read_task.abort();
    if let Some(reason) = result {
        let _ = events
            .send(PeerEvent::Closed {
                key,
                reason: Box::new(reason),
            })
            .await;
    }
}

/// Decodes messages and forwards them in batches until the connection fails.
/// The read half of a connection, behind whatever arrived with the handshake.
type ReadHalf = Chain<std::io::Cursor<Bytes>, PeerReader>;

async fn read_loop(
    mut reader: FramedRead<ReadHalf, MessageCodec>,
    key: PeerKey,
    events: mpsc::Sender<PeerEvent>,
    throttle: Throttle,
) -> Disconnect {
    loop {
        readbuf::SHARED.ensure_room(reader.read_buffer_mut());
        let first = match timeout(IDLE_TIMEOUT, reader.next()).await {
            Err(_) => return Disconnect::Idle(IDLE_TIMEOUT),
            Ok(None) => return Disconnect::Eof,
            Ok(Some(Err(e))) => return e.into(),
            Ok(Some(Ok(m))) => m,
        };
        tracing::trace!(key = ?key, msg = ?first, "read");
        let mut msgs = Vec::with_capacity(8);
        msgs.push(first);
        let mut end = None;
        while msgs.len() < MAX_BATCH {
            readbuf::SHARED.ensure_room(reader.read_buffer_mut());
            match reader.next().now_or_never() {
                Some(Some(Ok(m))) => msgs.push(m),
                Some(Some(Err(e))) => {
                    end = Some(e.into());
                    break;
                }
                Some(None) => {
                    end = Some(Disconnect::Eof);
                    break;
                }
                None => break,
            }
        }
        let payload: u64 = msgs
            .iter()
            .map(|m| match m {
                Message::Piece { data, .. } => data.len() as u64,
                _ => 0,
            })
            .sum();
        if events
            .send(PeerEvent::Messages { key, msgs })
            .await
            .is_err()
        {
            return Disconnect::Shutdown;
        }
        if let Some(reason) = end {
            return reason;
        }
        // Over a download limit, the socket is not read until the debt is paid: the
        // peer's sends back up in TCP.
        throttle.received(payload).await;
    }
}

/// The writing half of a connection and its upload queue.
struct Writer {
    half: PeerWriter,
    buf: BytesMut,
    commands: mpsc::Receiver<Command>,
    events: mpsc::Sender<PeerEvent>,
    key: PeerKey,
    fast: bool,
    source: Uploads,
    /// Approved requests not yet being read.
    queued: VecDeque<BlockInfo>,
    /// Batches not in use, their buffers kept.
    spare: Vec<Batch>,
    /// Batches allocated so far (spare, being read or ready), at most [`MAX_BATCHES`].
    batches: usize,
    /// Batches read and not yet written, in order.
    ready: VecDeque<Batch>,
    sent_blocks: u32,
    sent_bytes: u64,
    dropped: u32,
    /// The rate limits over the connection (`None`: unlimited).
    throttle: Option<Throttle>,
}

/// A batch being read on the blocking pool.
type ReadJob = tokio::task::JoinHandle<(Batch, Result<(), ReadError>)>;

impl Writer {
    /// A writer with empty queues and no upload buffers yet.
    fn new(
        half: PeerWriter,
        commands: mpsc::Receiver<Command>,
        events: mpsc::Sender<PeerEvent>,
        key: PeerKey,
        fast: bool,
        source: Uploads,
    ) -> Self {
        Writer {
            half,
            buf: BytesMut::with_capacity(64 * 1024),
            commands,
            events,
            key,
            fast,
            source,
            queued: VecDeque::new(),
            spare: Vec::new(),
            batches: 0,
            ready: VecDeque::new(),
            sent_blocks: 0,
            sent_bytes: 0,
            dropped: 0,
            throttle: None,
        }
    }

    /// Writes a batch of `piece` messages (`payload` bytes of blocks); under an upload
    /// limit, in slices, each after its share of the limit's wait.
    async fn write_batch(&mut self, bytes: &[u8], payload: u64) -> std::io::Result<()> {
        let Some(throttle) = self.throttle.as_ref().filter(|t| t.limits_up()).cloned() else {
            return self.half.write_all(bytes).await;
        };
        let total = bytes.len().max(1) as u64;
        for chunk in bytes.chunks(THROTTLED_SLICE) {
            throttle.sending(payload * chunk.len() as u64 / total).await;
            self.half.write_all(chunk).await?;
        }
        Ok(())
    }

    /// Runs until the torrent drops the command queue (`None`) or a write fails.
    async fn run(mut self) -> Option<Disconnect> {
        let mut reads: FuturesOrdered<ReadJob> = FuturesOrdered::new();
        let mut last_write = Instant::now();
        loop {
            let keepalive_at = last_write + KEEPALIVE_INTERVAL;
            tokio::select! {
                biased;
                cmd = self.commands.recv() => {
                    // Closed: the torrent dropped the connection (what it queued before
                    // is written first).
                    self.apply(cmd?);
                    while self.buf.len() < WRITE_FLUSH_LEN {
                        match self.commands.try_recv() {
                            Ok(cmd) => self.apply(cmd),
                            Err(_) => break,
                        }
                    }
                }
                Some(done) = reads.next(), if !reads.is_empty() => {
                    if let Err(reason) = self.read_done(done) {
                        return Some(reason);
                    }
                    while let Some(Some(done)) = reads.next().now_or_never() {
                        if let Err(reason) = self.read_done(done) {
                            return Some(reason);
                        }
                    }
                }
                _ = tokio::time::sleep_until(keepalive_at) => {
                    Message::KeepAlive.encode(&mut self.buf);
                }
            }
            self.start_reads(&mut reads);
            let mut wrote = false;
            if !self.buf.is_empty() {
                if let Err(e) = self.half.write_all(&self.buf).await {
                    return Some(Disconnect::Io(e));
                }
                self.buf.clear();
                wrote = true;
            }
            while let Some(mut batch) = self.ready.pop_front() {
                if let Err(e) = self.write_batch(batch.bytes(), batch.payload_len()).await {
                    return Some(Disconnect::Io(e));
                }
                self.sent_blocks += batch.requests().len() as u32;
                self.sent_bytes += batch.payload_len();
                batch.clear();
                self.spare.push(batch);
                wrote = true;
                self.start_reads(&mut reads);
            }
            if wrote {
                // A no-op on a plain socket; an encrypting writer may hold bytes back.
                if let Err(e) = self.half.flush().await {
                    return Some(Disconnect::Io(e));
                }
                last_write = Instant::now();
                if self.sent_blocks > 0 || self.dropped > 0 {
                    let ev = PeerEvent::Served {
                        key: self.key,
                        blocks: std::mem::take(&mut self.sent_blocks),
                        bytes: std::mem::take(&mut self.sent_bytes),
                        dropped: std::mem::take(&mut self.dropped),
                    };
                    if self.events.send(ev).await.is_err() {
                        return None;
                    }
                }
            }
        }
    }

    /// Starts reading queued requests, a batch at a time, while batches are free.
    fn start_reads(&mut self, reads: &mut FuturesOrdered<ReadJob>) {
        while !self.queued.is_empty() {
            let mut batch = match self.spare.pop() {
                Some(batch) => batch,
                None if self.batches < MAX_BATCHES => {
                    self.batches += 1;
                    Batch::default()
                }
                None => return,
            };
            while let Some(req) = self.queued.front() {
                if !batch.has_room(req.len) {
                    break;
                }
                batch.push(*req);
                self.queued.pop_front();
            }
            let source = Arc::clone(&self.source);
            reads.push_back(tokio::task::spawn_blocking(move || {
                let result = batch.read(&*source);
                (batch, result)
            }));
        }
    }

    /// Takes a finished read: the batch waits to be written.
    fn read_done(
        &mut self,
        done: Result<(Batch, Result<(), ReadError>), tokio::task::JoinError>,
    ) -> Result<(), Disconnect> {
        let Ok((batch, result)) = done else {
            return Err(Disconnect::Shutdown);
        };
        if let Err(ReadError { req, source }) = result {
            return Err(Disconnect::ReadFailed {
                index: req.piece.0,
                begin: req.begin,
                source,
            });
        }
        self.ready.push_back(batch);
        Ok(())
    }

    /// Applies one command.
    fn apply(&mut self, cmd: Command) {
        tracing::trace!(key = ?self.key, cmd = ?cmd, "command");
        match cmd {
            Command::Msg(m) => m.encode(&mut self.buf),
            Command::Requests(blocks) => {
                for b in blocks {
                    Message::Request(b).encode(&mut self.buf);
                }
            }
            Command::Serve(req) => self.queued.push_back(req),
            Command::CancelServe(req) => {
                if let Some(pos) = self.queued.iter().position(|r| *r == req) {
                    self.queued.remove(pos);
                    self.dropped += 1;
                    if self.fast {
                        Message::RejectRequest(req).encode(&mut self.buf);
                    }
                }
            }
            Command::Choke => {
                Message::Choke.encode(&mut self.buf);
                // A choked peer needs no buffers until it is unchoked again.
                self.batches -= self.spare.len();
                self.spare.clear();
                for req in self.queued.drain(..) {
                    self.dropped += 1;
                    if self.fast {
                        Message::RejectRequest(req).encode(&mut self.buf);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::driver::upload::BlockSource;
    use bt_meta::PieceIndex;
    use std::io;

    /// Byte `i` of a block is `piece * 7 + begin + i` (mod 256); piece 9 cannot be read.
    struct Pattern;

    impl BlockSource for Pattern {
        fn read_into(&self, piece: u32, begin: u32, buf: &mut [u8]) -> io::Result<()> {
            if piece == 9 {
                return Err(io::Error::other("bad sector"));
            }
            for (i, b) in buf.iter_mut().enumerate() {
                *b = (piece as usize * 7 + begin as usize + i) as u8;
            }
            Ok(())
        }
    }

    fn block(req: BlockInfo) -> Message {
        let mut data = vec![0; req.len as usize];
        Pattern
            .read_into(req.piece.0, req.begin, &mut data)
            .unwrap();
        Message::Piece {
            index: req.piece.0,
            begin: req.begin,
            data: data.into(),
        }
    }

    fn req(index: u32, begin: u32) -> BlockInfo {
        BlockInfo {
            piece: PieceIndex(index),
            begin,
            len: 16384,
        }
    }

    struct Harness {
        commands: mpsc::Sender<Command>,
        events: mpsc::Receiver<PeerEvent>,
        remote: FramedRead<tokio::io::DuplexStream, MessageCodec>,
        writer: Option<Writer>,
    }

    /// A writer on one end of an in-memory connection, not yet running, so commands sent
    /// before [`Harness::start`] all arrive in its first batch.
    async fn harness(fast: bool) -> Harness {
        let (ours, theirs) = tokio::io::duplex(1 << 20);
        let (read, write) = tokio::io::split(ours);
        let conn = Connection {
            read: Box::new(read),
            write: Box::new(write),
            remote: "127.0.0.1:1".parse().unwrap(),
        };
        let (_read_half, write_half) = PeerStream::plain(conn).into_split();
        let (commands, rx) = mpsc::channel(4096);
        let (ev_tx, events) = mpsc::channel(4096);
        let writer = Writer::new(write_half, rx, ev_tx, PeerKey(1), fast, Arc::new(Pattern));
        Harness {
            commands,
            events,
            remote: FramedRead::new(theirs, MessageCodec::new()),
            writer: Some(writer),
        }
    }

    impl Harness {
        async fn send(&self, cmd: Command) {
            self.commands.send(cmd).await.unwrap();
        }

        fn start(&mut self) -> tokio::task::JoinHandle<Option<Disconnect>> {
            let writer = self.writer.take().unwrap();
            tokio::spawn(writer.run())
        }

        async fn next(&mut self) -> Message {
            timeout(Duration::from_secs(30), self.remote.next())
                .await
                .expect("no message within 30 s")
                .expect("connection closed")
                .expect("bad frame")
        }

        /// Sums `Served` reports until `blocks + dropped` reaches `n`.
        async fn served(&mut self, n: u32) -> (u32, u64, u32) {
            let (mut blocks, mut bytes, mut dropped) = (0, 0, 0);
            while blocks + dropped < n {
                let ev = timeout(Duration::from_secs(30), self.events.recv())
                    .await
                    .expect("no event within 30 s")
                    .expect("writer gone");
                if let PeerEvent::Served {
                    blocks: b,
                    bytes: n,
                    dropped: d,
                    ..
                } = ev
                {
                    blocks += b;
                    bytes += n;
                    dropped += d;
                }
            }
            (blocks, bytes, dropped)
        }
    }

    #[tokio::test]
    async fn serves_requests_in_order_across_batches_and_reports_them() {
        let mut h = harness(true).await;
        h.start();
        let reqs: Vec<BlockInfo> = (0..50).map(|i| req(10 + i / 4, (i % 4) * 16384)).collect();
        for r in &reqs {
            h.send(Command::Serve(*r)).await;
        }
        let short = BlockInfo {
            piece: PieceIndex(30),
            begin: 100,
            len: 7,
        };
        h.send(Command::Serve(short)).await;
        for r in reqs.iter().chain([&short]) {
            assert_eq!(h.next().await, block(*r));
        }
        assert_eq!(h.served(51).await, (51, 50 * 16384 + 7, 0));
    }

    #[tokio::test]
    async fn cancel_drops_a_queued_request_and_rejects_it_under_fast() {
        let mut h = harness(true).await;
        h.send(Command::Serve(req(0, 0))).await;
        h.send(Command::Serve(req(0, 16384))).await;
        h.send(Command::Serve(req(0, 32768))).await;
        h.send(Command::CancelServe(req(0, 16384))).await;
        h.send(Command::CancelServe(req(5, 0))).await;
        h.start();
        assert_eq!(h.next().await, Message::RejectRequest(req(0, 16384)));
        assert_eq!(h.next().await, block(req(0, 0)));
        assert_eq!(h.next().await, block(req(0, 32768)));
        assert_eq!(h.served(3).await, (2, 32768, 1));
    }

    #[tokio::test]
    async fn choke_drops_queued_requests_rejecting_each_under_fast() {
        for fast in [true, false] {
            let mut h = harness(fast).await;
            for i in 0..40 {
                h.send(Command::Serve(req(i, 0))).await;
            }
            h.send(Command::Choke).await;
            h.send(Command::Msg(Message::Have { index: 3 })).await;
            h.start();
            assert_eq!(h.next().await, Message::Choke);
            if fast {
                for i in 0..40 {
                    assert_eq!(h.next().await, Message::RejectRequest(req(i, 0)));
                }
            }
            assert_eq!(h.next().await, Message::Have { index: 3 });
            assert_eq!(h.served(40).await, (0, 0, 40));
            // Served again after an unchoke.
            h.send(Command::Msg(Message::Unchoke)).await;
            h.send(Command::Serve(req(1, 0))).await;
            assert_eq!(h.next().await, Message::Unchoke);
            assert_eq!(h.next().await, block(req(1, 0)));
        }
    }

    #[tokio::test]
    async fn a_failed_read_ends_the_connection_naming_the_block() {
        let mut h = harness(false).await;
        h.send(Command::Serve(req(1, 0))).await;
        h.send(Command::Serve(req(9, 16384))).await;
        let end = timeout(Duration::from_secs(30), h.start())
            .await
            .unwrap()
            .unwrap();
        match end {
            Some(Disconnect::ReadFailed { index, begin, .. }) => {
                assert_eq!((index, begin), (9, 16384))
            }
            other => panic!("ended with {other:?}"),
        }
    }

    #[tokio::test]
    async fn dropping_the_queue_writes_what_it_held_then_ends_quietly() {
        let mut h = harness(false).await;
        h.send(Command::Msg(Message::Unchoke)).await;
        let task = h.start();
        let Harness {
            commands,
            mut remote,
            ..
        } = h;
        drop(commands);
        let end = timeout(Duration::from_secs(30), task)
            .await
            .unwrap()
            .unwrap();
        assert!(end.is_none());
        let written = timeout(Duration::from_secs(30), remote.next())
            .await
            .unwrap();
        assert_eq!(written.unwrap().unwrap(), Message::Unchoke);
    }
}
