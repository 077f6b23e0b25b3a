//! Connection encryption (MSE/PE): the policy, the handshake driven over a socket, and the
//! stream that applies RC4 when it was negotiated.
//!
//! The handshake itself is [`bt_wire::mse`]; this module does the I/O. An incoming
//! connection is told apart by its first 20 bytes: `\x13BitTorrent protocol` is a
//! plaintext handshake, anything else is taken as the start of an MSE key exchange (when
//! the policy allows it). After an MSE handshake the stream is plaintext or RC4, as
//! negotiated; [`PeerStream`] hides which, and its halves keep one cipher each, so reading
//! and writing need no lock.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bt_meta::InfoHash;
use bt_wire::mse::{Cipher, CipherSet, Established, MseHandshake, Rc4};

use crate::driver::transport::{Connection, ReadHalf, WriteHalf};
use crate::proto::EncryptionError;
use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};

/// Which connections are encrypted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum EncryptionPolicy {
    /// Plaintext only: incoming MSE handshakes are refused, outgoing ones never tried.
    Disabled,
    /// Accept both; dial in plaintext; when a peer offers both, choose plaintext (the
    /// handshake is still obfuscated, the data costs no cipher).
    #[default]
    Enabled,
    /// Accept both; dial with MSE; choose RC4 whenever the peer offers it.
    Preferred,
    /// MSE with RC4 only, both ways; plaintext connections are refused.
    Required,
}

impl EncryptionPolicy {
    /// Ciphers accepted from an MSE dialler, and the one chosen when both are offered.
    fn accept(self) -> Option<(CipherSet, Cipher)> {
        match self {
            EncryptionPolicy::Disabled => None,
            EncryptionPolicy::Enabled => Some((CipherSet::BOTH, Cipher::Plaintext)),
            EncryptionPolicy::Preferred => Some((CipherSet::BOTH, Cipher::Rc4)),
            EncryptionPolicy::Required => Some((CipherSet::RC4, Cipher::Rc4)),
        }
    }

    /// Ciphers offered when we dial with MSE, or `None` to dial in plaintext.
    pub fn dial_offer(self) -> Option<CipherSet> {
        match self {
            EncryptionPolicy::Disabled | EncryptionPolicy::Enabled => None,
            EncryptionPolicy::Preferred => Some(CipherSet::BOTH),
            EncryptionPolicy::Required => Some(CipherSet::RC4),
        }
    }

    /// Ciphers offered when a plaintext dial failed and we try again with MSE.
    pub fn retry_offer(self) -> Option<CipherSet> {
        match self {
            EncryptionPolicy::Enabled => Some(CipherSet::BOTH),
            _ => None,
        }
    }
}

/// The first bytes of a plaintext BitTorrent handshake.
const PLAINTEXT_PREFIX: &[u8; 20] = b"\x13BitTorrent protocol";
/// Read size during the handshake.
const HANDSHAKE_READ: usize = 4096;

/// A peer connection after its (optional) MSE handshake: a read and a write half that
/// each own their cipher.
#[derive(Debug)]
pub struct PeerStream {
    reader: PeerReader,
    writer: PeerWriter,
}

impl PeerStream {
    /// A plaintext stream.
    pub fn plain(conn: Connection) -> Self {
        PeerStream {
            reader: PeerReader::Plain(conn.read),
            writer: PeerWriter::Plain(conn.write),
        }
    }

    /// Splits into its halves.
    pub fn into_split(self) -> (PeerReader, PeerWriter) {
        (self.reader, self.writer)
    }

    /// Whether the stream is RC4-encrypted.
    pub fn is_encrypted(&self) -> bool {
        matches!(self.reader, PeerReader::Rc4 { .. })
    }

    fn from_established(conn: Connection, est: Established) -> (PeerStream, Bytes) {
        let payload = Bytes::from(est.payload);
        match (est.decrypt, est.encrypt) {
            (Some(decrypt), Some(encrypt)) => {
                let s = PeerStream {
                    reader: PeerReader::Rc4 {
                        half: conn.read,
                        decrypt: Box::new(decrypt),
                    },
                    writer: PeerWriter::Rc4 {
                        half: conn.write,
                        encrypt: Box::new(encrypt),
                        pending: Vec::new(),
                        sent: 0,
                    },
                };
                (s, payload)
            }
            _ => (PeerStream::plain(conn), payload),
        }
    }
}

impl AsyncRead for PeerStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().reader).poll_read(cx, buf)
    }
}

impl AsyncWrite for PeerStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().writer).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().writer).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().writer).poll_shutdown(cx)
    }
}

fn poll_read_decrypt<R: AsyncRead>(
    inner: Pin<&mut R>,
    decrypt: &mut Rc4,
    cx: &mut Context<'_>,
    buf: &mut ReadBuf<'_>,
) -> Poll<io::Result<()>> {
    let before = buf.filled().len();
    let r = inner.poll_read(cx, buf);
    if let Poll::Ready(Ok(())) = r {
        decrypt.apply(&mut buf.filled_mut()[before..]);
    }
    r
}

/// The read half of a [`PeerStream`].
pub enum PeerReader {
    /// Plaintext.
    Plain(ReadHalf),
    /// RC4.
    Rc4 {
        /// The connection's read half.
        half: ReadHalf,
        /// Decrypts what arrives.
        decrypt: Box<Rc4>,
    },
}

impl AsyncRead for PeerReader {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            PeerReader::Plain(h) => Pin::new(h).poll_read(cx, buf),
            PeerReader::Rc4 { half, decrypt } => {
                poll_read_decrypt(Pin::new(half), decrypt, cx, buf)
            }
        }
    }
}

impl std::fmt::Debug for PeerReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            PeerReader::Plain(_) => "PeerReader::Plain",
            PeerReader::Rc4 { .. } => "PeerReader::Rc4",
        })
    }
}

/// The write half of a [`PeerStream`].
pub enum PeerWriter {
    /// Plaintext.
    Plain(WriteHalf),
    /// RC4: what was accepted is encrypted into `pending` and written from there.
    Rc4 {
        /// The connection's write half.
        half: WriteHalf,
        /// Encrypts what we send.
        encrypt: Box<Rc4>,
        /// Encrypted bytes not yet written.
        pending: Vec<u8>,
        /// How much of `pending` is written.
        sent: usize,
    },
}

impl std::fmt::Debug for PeerWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            PeerWriter::Plain(_) => "PeerWriter::Plain",
            PeerWriter::Rc4 { .. } => "PeerWriter::Rc4",
        })
    }
}

impl PeerWriter {
    /// Writes out encrypted bytes left from an earlier call.
    fn poll_drain(
        half: &mut WriteHalf,
        pending: &mut Vec<u8>,
        sent: &mut usize,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<()>> {
        while *sent < pending.len() {
            match Pin::new(&mut *half).poll_write(cx, &pending[*sent..]) {
                Poll::Ready(Ok(0)) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                Poll::Ready(Ok(n)) => *sent += n,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => return Poll::Pending,
            }
        }
        pending.clear();
        *sent = 0;
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for PeerWriter {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            PeerWriter::Plain(h) => Pin::new(h).poll_write(cx, buf),
            PeerWriter::Rc4 {
                half,
                encrypt,
                pending,
                sent,
            } => {
                match Self::poll_drain(half, pending, sent, cx) {
                    Poll::Ready(Ok(())) => {}
                    other => return other.map(|r| r.map(|()| 0)),
                }
                pending.extend_from_slice(buf);
                encrypt.apply(&mut pending[..]);
                // Start writing now; whatever is left goes out on the next call or flush.
                match Self::poll_drain(half, pending, sent, cx) {
                    Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
                    _ => Poll::Ready(Ok(buf.len())),
                }
            }
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            PeerWriter::Plain(h) => Pin::new(h).poll_flush(cx),
            PeerWriter::Rc4 {
                half,
                pending,
                sent,
                ..
            } => match Self::poll_drain(half, pending, sent, cx) {
                Poll::Ready(Ok(())) => Pin::new(half).poll_flush(cx),
                other => other,
            },
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            PeerWriter::Plain(h) => Pin::new(h).poll_shutdown(cx),
            PeerWriter::Rc4 {
                half,
                pending,
                sent,
                ..
            } => match Self::poll_drain(half, pending, sent, cx) {
                Poll::Ready(Ok(())) => Pin::new(half).poll_shutdown(cx),
                other => other,
            },
        }
    }
}

/// Runs the MSE exchange on `conn` with `hs`, starting from bytes already read.
async fn drive(
    conn: &mut Connection,
    hs: &mut MseHandshake,
    first: &[u8],
    lookup: &(dyn Fn(&[u8; 20]) -> Option<[u8; 20]> + Sync),
) -> Result<Established, EncryptionError> {
    let mut buf = vec![0u8; HANDSHAKE_READ];
    let mut data = first.to_vec();
    loop {
        let done = if data.is_empty() {
            None
        } else {
            hs.receive(&data, lookup)?
        };
        let out = hs.take_output();
        if !out.is_empty() {
            conn.write.write_all(&out).await?;
        }
        if let Some(est) = done {
            return Ok(est);
        }
        let n = conn.read.read(&mut buf).await?;
        if n == 0 {
            return Err(EncryptionError::Io(io::ErrorKind::UnexpectedEof.into()));
        }
        data.clear();
        data.extend_from_slice(&buf[..n]);
    }
}

/// Reads the start of an incoming connection and, if it is an MSE handshake, answers it
/// (for one of the torrents `lookup` finds). Returns the stream and the plaintext bytes
/// received so far (the start of the peer's BitTorrent handshake), within `limit`.
pub async fn accept(
    mut conn: Connection,
    policy: EncryptionPolicy,
    lookup: &(dyn Fn(&[u8; 20]) -> Option<[u8; 20]> + Sync),
    limit: Duration,
) -> Result<(PeerStream, Bytes), EncryptionError> {
    let work = async {
        let mut first = Vec::with_capacity(PLAINTEXT_PREFIX.len());
        let mut buf = [0u8; 20];
        while first.len() < PLAINTEXT_PREFIX.len() {
            let want = PLAINTEXT_PREFIX.len() - first.len();
            let n = conn.read.read(&mut buf[..want]).await?;
            if n == 0 {
                return Err(EncryptionError::Io(io::ErrorKind::UnexpectedEof.into()));
            }
            first.extend_from_slice(&buf[..n]);
            // A plaintext handshake is recognised byte by byte; stop as soon as it differs.
            if !PLAINTEXT_PREFIX.starts_with(&first) {
                break;
            }
        }
        if PLAINTEXT_PREFIX.starts_with(&first) {
            if policy == EncryptionPolicy::Required {
                return Err(EncryptionError::PlaintextRefused);
            }
            return Ok((PeerStream::plain(conn), Bytes::from(first)));
        }
        let Some((allow, prefer)) = policy.accept() else {
            return Err(EncryptionError::Refused);
        };
        let mut hs = MseHandshake::responder(allow, prefer);
        let est = drive(&mut conn, &mut hs, &first, lookup).await?;
        Ok(PeerStream::from_established(conn, est))
    };
    tokio::time::timeout(limit, work)
        .await
        .map_err(|_| EncryptionError::Timeout)?
}

/// Runs an MSE handshake as the dialling side for `info_hash`, offering `offer`, with
/// `initial` (our BitTorrent handshake) sent inside it. Returns the stream and the
/// plaintext bytes the peer sent behind its answer (the start of its handshake).
pub async fn connect(
    mut conn: Connection,
    info_hash: InfoHash,
    offer: CipherSet,
    initial: Vec<u8>,
) -> Result<(PeerStream, Bytes), EncryptionError> {
    let mut hs = MseHandshake::initiator(info_hash.0, offer, initial);
    let est = drive(&mut conn, &mut hs, &[], &|_| None).await?;
    Ok(PeerStream::from_established(conn, est))
}

/// `HASH("req2", info_hash)`: how an MSE dialler names the torrent.
pub fn req2_hash(info_hash: &InfoHash) -> [u8; 20] {
    use sha1::Digest;
    let mut h = sha1::Sha1::new();
    h.update(b"req2");
    h.update(info_hash.0);
    h.finalize().into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::{TcpListener, TcpStream};

    const IH: InfoHash = InfoHash([5; 20]);

    fn lookup(req2: &[u8; 20]) -> Option<[u8; 20]> {
        (*req2 == req2_hash(&IH)).then_some(IH.0)
    }

    fn conn(stream: TcpStream) -> Connection {
        let remote = stream.peer_addr().unwrap();
        let (read, write) = stream.into_split();
        Connection {
            read: Box::new(read),
            write: Box::new(write),
            remote,
        }
    }

    async fn pair() -> (Connection, Connection) {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let (a, b) = tokio::join!(TcpStream::connect(addr), l.accept());
        (conn(a.unwrap()), conn(b.unwrap().0))
    }

    async fn send(w: &mut PeerWriter, data: Vec<u8>) {
        w.write_all(&data).await.unwrap();
        w.flush().await.unwrap();
    }

    async fn recv(r: &mut PeerReader, n: usize) -> Vec<u8> {
        let mut got = vec![0u8; n];
        r.read_exact(&mut got).await.unwrap();
        got
    }

    /// Dials with `offer`, accepts with `policy`, then sends a large message each way.
    async fn round_trip(offer: CipherSet, policy: EncryptionPolicy) -> (bool, bool) {
        let (a, b) = pair().await;
        let hs = PLAINTEXT_PREFIX.to_vec();
        let limit = Duration::from_secs(10);
        let (ra, rb) = tokio::join!(
            connect(a, IH, offer, hs.clone()),
            accept(b, policy, &lookup, limit)
        );
        let (sa, rest_a) = ra.unwrap();
        let (sb, rest_b) = rb.unwrap();
        assert!(rest_a.is_empty());
        assert_eq!(&rest_b[..], &hs[..]);
        let (enc_a, enc_b) = (sa.is_encrypted(), sb.is_encrypted());
        let (mut ar, mut aw) = sa.into_split();
        let (mut br, mut bw) = sb.into_split();
        let big: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
        let (_, got_b, _, got_a) = tokio::join!(
            send(&mut aw, big.clone()),
            recv(&mut br, big.len()),
            send(&mut bw, big.clone()),
            recv(&mut ar, big.len())
        );
        assert!(got_b == big && got_a == big, "stream corrupted");
        (enc_a, enc_b)
    }

    #[tokio::test]
    async fn encrypted_and_obfuscated_streams_carry_data_both_ways() {
        assert_eq!(
            round_trip(CipherSet::BOTH, EncryptionPolicy::Enabled).await,
            (false, false)
        );
        assert_eq!(
            round_trip(CipherSet::BOTH, EncryptionPolicy::Preferred).await,
            (true, true)
        );
        assert_eq!(
            round_trip(CipherSet::RC4, EncryptionPolicy::Enabled).await,
            (true, true)
        );
    }

    #[tokio::test]
    async fn plaintext_is_recognised_and_policies_refuse() {
        let limit = Duration::from_secs(10);
        let (mut a, b) = pair().await;
        a.write
            .write_all(b"\x13BitTorrent protocol\0\0\0\0")
            .await
            .unwrap();
        let (s, first) = accept(b, EncryptionPolicy::Enabled, &lookup, limit)
            .await
            .unwrap();
        assert!(!s.is_encrypted());
        assert_eq!(&first[..], PLAINTEXT_PREFIX);

        let (mut a, b) = pair().await;
        a.write.write_all(PLAINTEXT_PREFIX).await.unwrap();
        let err = accept(b, EncryptionPolicy::Required, &lookup, limit)
            .await
            .unwrap_err();
        assert!(matches!(err, EncryptionError::PlaintextRefused), "{err}");

        let (a, b) = pair().await;
        let (ra, rb) = tokio::join!(
            connect(a, IH, CipherSet::BOTH, Vec::new()),
            accept(b, EncryptionPolicy::Disabled, &lookup, limit)
        );
        assert!(matches!(rb.unwrap_err(), EncryptionError::Refused));
        assert!(ra.is_err());

        let (a, b) = pair().await;
        let (_, rb) = tokio::join!(
            connect(a, InfoHash([6; 20]), CipherSet::BOTH, Vec::new()),
            accept(b, EncryptionPolicy::Enabled, &lookup, limit)
        );
        let err = rb.unwrap_err();
        assert!(err.to_string().contains("matches no torrent"), "{err}");
    }

    #[tokio::test]
    async fn a_silent_peer_times_out() {
        let (_a, b) = pair().await;
        let err = accept(
            b,
            EncryptionPolicy::Enabled,
            &lookup,
            Duration::from_millis(200),
        )
        .await
        .unwrap_err();
        assert!(matches!(err, EncryptionError::Timeout));
    }
}
