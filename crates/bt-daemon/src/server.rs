//! The API's HTTP server: plain HTTP/1.1 or TLS (rustls), with bounded headers, slow
//! clients timed out and a cap on connections. Every connection's requests carry the
//! client's address ([`ConnectInfo`]) and how it reached the API ([`Reached`]).
//!
//! The bounds ([`Limits`]), with why:
//! - headers: at most [`MAX_HEADER_BYTES`] in [`MAX_HEADERS`] fields, read within
//!   [`HEADER_READ_TIMEOUT`] (a client that trickles its headers is cut off);
//! - a TLS handshake finishes within the same time;
//! - a connection that moves no byte either way for [`IDLE_TIMEOUT`] is closed;
//! - at most `web_ui_max_connections` connections at once; a connection past the cap is
//!   closed at once, so a flood cannot starve the daemon of file descriptors;
//! - a request's handling, its body included, is bounded by the guard
//!   (`qbt::REQUEST_TIMEOUT`), and its body size by `torrent_file_size_limit`.

use std::io;
use std::net::SocketAddr;
use std::path::Path;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::extract::ConnectInfo;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Semaphore};
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;

use crate::settings::Settings;

/// Largest request head (request line and headers), bytes.
pub const MAX_HEADER_BYTES: usize = 64 << 10;
/// Most header fields in one request.
pub const MAX_HEADERS: usize = 100;
/// Time a client has to send a request's headers.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// A connection with no traffic either way for this long is closed.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// Time open connections get to finish at shutdown.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// The server's bounds on its clients.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Connections open at once.
    pub max_connections: usize,
    /// Time a client has to send a request's headers, or to finish the TLS handshake.
    pub header_read_timeout: Duration,
    /// A connection with no traffic either way for this long is closed.
    pub idle_timeout: Duration,
}

impl Limits {
    /// The bounds for `settings`: its connection cap and the default timeouts.
    pub fn for_settings(settings: &Settings) -> Limits {
        Limits {
            max_connections: settings.web_ui_max_connections.max(1),
            header_read_timeout: HEADER_READ_TIMEOUT,
            idle_timeout: IDLE_TIMEOUT,
        }
    }
}

/// How a request reached the API: the local address it was sent to, and whether over TLS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reached {
    /// The address of this end of the connection.
    pub local: SocketAddr,
    /// The connection is TLS.
    pub tls: bool,
}

/// Why the API's TLS could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// `use_https` is on but a path is missing.
    #[error("use_https is on but web_ui_https_{0}_path is not set")]
    Missing(&'static str),
    /// A PEM file could not be read or holds nothing usable.
    #[error("{path}: {what}")]
    Pem {
        /// The file.
        path: String,
        /// What was wrong.
        what: String,
    },
    /// rustls refused the certificate and key.
    #[error("the certificate and key do not form a usable TLS identity: {0}")]
    Identity(#[from] rustls::Error),
}

/// The TLS acceptor the settings ask for: `None` without `use_https`.
pub fn tls_acceptor(settings: &Settings) -> Result<Option<TlsAcceptor>, TlsError> {
    if !settings.use_https {
        return Ok(None);
    }
    let cert = settings
        .web_ui_https_cert_path
        .as_deref()
        .ok_or(TlsError::Missing("cert"))?;
    let key = settings
        .web_ui_https_key_path
        .as_deref()
        .ok_or(TlsError::Missing("key"))?;
    Ok(Some(acceptor(cert, key)?))
}

fn pem_error(path: &Path, what: impl ToString) -> TlsError {
    TlsError::Pem {
        path: path.display().to_string(),
        what: what.to_string(),
    }
}

/// A TLS acceptor for the certificate chain and private key in the PEM files `cert` and
/// `key`.
pub fn acceptor(cert: &Path, key: &Path) -> Result<TlsAcceptor, TlsError> {
    let chain = CertificateDer::pem_file_iter(cert)
        .map_err(|e| pem_error(cert, e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| pem_error(cert, e))?;
    if chain.is_empty() {
        return Err(pem_error(cert, "no certificate in the file"));
    }
    let key_der = PrivateKeyDer::from_pem_file(key).map_err(|e| pem_error(key, e))?;
    // ring: already in the tree (through ureq) and built with cc alone. rustls 0.23.48
    // deprecates its provider for lacking post-quantum key exchange, which a web UI on a
    // home network can do without.
    #[allow(deprecated)]
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(chain, key_der)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// Serves `app` on `listener` until `stop` turns true, then lets open connections finish
/// (within a few seconds).
pub async fn serve(
    listener: TcpListener,
    app: Router,
    tls: Option<TlsAcceptor>,
    limits: Limits,
    mut stop: watch::Receiver<bool>,
) -> io::Result<()> {
    let max_connections = limits.max_connections.max(1);
    let slots = Arc::new(Semaphore::new(max_connections));
    let mut refused_logged: Option<Instant> = None;
    loop {
        let (stream, remote) = tokio::select! {
            _ = stopped(&mut stop) => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of descriptors or a connection reset before accept: wait a little
                    // rather than spin.
                    tracing::warn!("API accept: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let Ok(slot) = Arc::clone(&slots).try_acquire_owned() else {
            if refused_logged.is_none_or(|t| t.elapsed() > Duration::from_secs(60)) {
                tracing::warn!(
                    "API: {max_connections} connections open; refusing more (from {remote})"
                );
                refused_logged = Some(Instant::now());
            }
            drop(stream);
            continue;
        };
        let (app, tls, stop) = (app.clone(), tls.clone(), stop.clone());
        tokio::spawn(async move {
            connection(stream, remote, app, tls, limits, stop).await;
            drop(slot);
        });
    }
    // Every slot back means every connection has ended.
    let all = u32::try_from(max_connections).unwrap_or(u32::MAX);
    let _ = tokio::time::timeout(SHUTDOWN_GRACE, slots.acquire_many(all)).await;
    Ok(())
}

async fn connection(
    stream: TcpStream,
    remote: SocketAddr,
    app: Router,
    tls: Option<TlsAcceptor>,
    limits: Limits,
    stop: watch::Receiver<bool>,
) {
    let _ = stream.set_nodelay(true);
    let Ok(local) = stream.local_addr() else {
        return;
    };
    let reached = Reached {
        local,
        tls: tls.is_some(),
    };
    match tls {
        None => http(stream, remote, reached, app, limits, stop).await,
        Some(acceptor) => {
            let handshake = acceptor.accept(stream);
            match tokio::time::timeout(limits.header_read_timeout, handshake).await {
                Ok(Ok(tls_stream)) => http(tls_stream, remote, reached, app, limits, stop).await,
                Ok(Err(e)) => tracing::debug!("API TLS handshake with {remote}: {e}"),
                Err(_) => tracing::debug!("API TLS handshake with {remote}: timed out"),
            }
        }
    }
}

async fn http<S>(
    stream: S,
    remote: SocketAddr,
    reached: Reached,
    app: Router,
    limits: Limits,
    mut stop: watch::Receiver<bool>,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let started = Instant::now();
    let activity = Arc::new(AtomicU64::new(0));
    let io = TokioIo::new(Tracked {
        inner: stream,
        started,
        activity: Arc::clone(&activity),
    });
    let service = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
        req.extensions_mut().insert(ConnectInfo(remote));
        req.extensions_mut().insert(reached);
        app.clone().oneshot(req.map(axum::body::Body::new))
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_buf_size(MAX_HEADER_BYTES.max(8192))
        .max_headers(MAX_HEADERS);
    let conn = builder.serve_connection(io, service).with_upgrades();
    tokio::pin!(conn);
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            r = conn.as_mut() => {
                if let Err(e) = r {
                    tracing::debug!("API connection from {remote}: {e}");
                }
                return;
            }
            _ = stopped(&mut stop) => break,
            _ = tick.tick() => {
                let last = Duration::from_millis(activity.load(Ordering::Relaxed));
                if started.elapsed().saturating_sub(last) > limits.idle_timeout {
                    tracing::debug!("API connection from {remote}: idle, closed");
                    return;
                }
            }
        }
    }
    conn.as_mut().graceful_shutdown();
    let _ = tokio::time::timeout(SHUTDOWN_GRACE, conn).await;
}

/// Resolves once `stop` turns true (or its sender is gone).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    while !*stop.borrow_and_update() {
        if stop.changed().await.is_err() {
            return;
        }
    }
}

/// A stream that notes when bytes last moved, for the idle timeout.
struct Tracked<S> {
    inner: S,
    started: Instant,
    activity: Arc<AtomicU64>,
}

impl<S> Tracked<S> {
    fn touch(&self) {
        let ms = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.activity.store(ms, Ordering::Relaxed);
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Tracked<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(r, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.touch();
        }
        r
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Tracked<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write(cx, buf);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            self.touch();
        }
        r
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            self.touch();
        }
        r
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}
