//! The transport seam: where peer connections come from.
//!
//! A [`Transport`] dials and accepts connections; each is a [`Connection`], a pair of
//! [`AsyncRead`]/[`AsyncWrite`] halves and the remote address. Everything above it (MSE,
//! the BitTorrent handshake, the peer's reader and writer tasks) works on those halves
//! alone, so a second transport (uTP) plugs in here without touching the rest.
//! [`TcpTransport`] is the first.
//!
//! [`Dialer`] is the one dial path: the transport, the encryption policy and the
//! handshake, the same for a torrent's peers and for a magnet link's metadata fetch.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use bt_wire::Handshake;
use futures::future::BoxFuture;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};

use crate::driver::encryption::EncryptionPolicy;
use crate::driver::peer::{self, HandshakenStream};
use crate::proto::Disconnect;

/// The read half of a connection.
pub type ReadHalf = Box<dyn AsyncRead + Send + Unpin>;
/// The write half of a connection.
pub type WriteHalf = Box<dyn AsyncWrite + Send + Unpin>;

/// A connection from a [`Transport`]: its two halves and where it leads.
pub struct Connection {
    /// What the peer sends.
    pub read: ReadHalf,
    /// What we send.
    pub write: WriteHalf,
    /// The remote address.
    pub remote: SocketAddr,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("remote", &self.remote)
            .finish_non_exhaustive()
    }
}

/// Makes and takes peer connections.
pub trait Transport: Send + Sync + 'static {
    /// Connects to `addr`.
    fn dial(&self, addr: SocketAddr) -> BoxFuture<'static, io::Result<Connection>>;
    /// Waits for the next incoming connection.
    fn accept(&self) -> BoxFuture<'_, io::Result<Connection>>;
    /// The address peers reach us on.
    fn local_addr(&self) -> SocketAddr;
}

/// TCP: a listening socket, and `connect` for dials (with Nagle's algorithm off).
#[derive(Debug)]
pub struct TcpTransport {
    listener: TcpListener,
    local_addr: SocketAddr,
}

impl TcpTransport {
    /// Listens on `addr` (port 0 picks a free port).
    pub async fn bind(addr: SocketAddr) -> io::Result<TcpTransport> {
        let listener = TcpListener::bind(addr).await?;
        let local_addr = listener.local_addr()?;
        Ok(TcpTransport {
            listener,
            local_addr,
        })
    }

    fn connection(stream: TcpStream, remote: SocketAddr) -> Connection {
        let _ = stream.set_nodelay(true);
        let (read, write) = stream.into_split();
        Connection {
            read: Box::new(read),
            write: Box::new(write),
            remote,
        }
    }
}

impl Transport for TcpTransport {
    fn dial(&self, addr: SocketAddr) -> BoxFuture<'static, io::Result<Connection>> {
        Box::pin(async move {
            let stream = TcpStream::connect(addr).await?;
            Ok(Self::connection(stream, addr))
        })
    }

    fn accept(&self) -> BoxFuture<'_, io::Result<Connection>> {
        Box::pin(async move {
            let (stream, remote) = self.listener.accept().await?;
            Ok(Self::connection(stream, remote))
        })
    }

    fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }
}

/// The one way out: a transport and the encryption policy every dial honours.
#[derive(Clone)]
pub struct Dialer {
    transport: Arc<dyn Transport>,
    policy: EncryptionPolicy,
}

impl std::fmt::Debug for Dialer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dialer")
            .field("local_addr", &self.transport.local_addr())
            .field("policy", &self.policy)
            .finish()
    }
}

impl Dialer {
    /// Dials over `transport`, encrypting as `policy` says.
    pub fn new(transport: Arc<dyn Transport>, policy: EncryptionPolicy) -> Self {
        Dialer { transport, policy }
    }

    /// The encryption policy.
    pub fn policy(&self) -> EncryptionPolicy {
        self.policy
    }

    /// Dials `addr` and exchanges handshakes (after an MSE handshake when the policy
    /// asks for one); the answer must name the same torrent and not be ourselves.
    pub(crate) async fn dial(
        &self,
        addr: SocketAddr,
        ours: Handshake,
    ) -> Result<(HandshakenStream, Handshake), Disconnect> {
        peer::dial(&*self.transport, addr, ours, self.policy).await
    }
}
