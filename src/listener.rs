//! The accept loop: serves the router over HTTP/1 with bounds a slow or
//! hostile client cannot outlast.
//!
//! - **Header timeout**: a connection that has not sent a complete request
//!   header within `--header-timeout` is closed (hyper's
//!   `header_read_timeout`). hyper starts that timer whenever it waits for a
//!   request head, so it also runs while a kept-alive connection waits for
//!   its next request.
//! - **Idle timeout**: a connection with no request in progress and no byte
//!   read or written for `--idle-timeout` is closed (hyper has no idle
//!   timeout of its own). A response body still streaming counts as
//!   traffic, so a long download is never cut.
//! - **Connection cap**: at most `--max-connections` connections are served
//!   at once; further ones wait in the kernel's backlog (not accepted) until
//!   one closes, and a warning says so (at most once a minute).
//!
//! - **TLS on the same port** (`--tls`): the first byte of each accepted
//!   connection decides. `0x16` opens a TLS handshake record (RFC 8446
//!   §5.1, content type `handshake`); no HTTP/1 request starts with it, so
//!   such a connection is handed to rustls and every other is served as
//!   plain HTTP, as LocalStack does on its one port. The handshake shares
//!   the header timeout. Every request carries a [`Transport`] saying
//!   which it came over.
//!
//! - **Body rate**: a request body must keep arriving at `--min-body-rate`
//!   after a grace of `--body-timeout` (see [`crate::body_rate`]); only the
//!   time spent waiting for the client counts, so a 10 GB layer push over
//!   loopback, whose bytes keep flowing, is never cut.

use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::extract::ConnectInfo;
use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Semaphore};
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt as _;

/// The first byte of a TLS connection: a handshake record's content type.
const TLS_HANDSHAKE: u8 = 0x16;

/// How a request reached ecrd: the peer's address and whether its
/// connection is TLS. The accept loop puts one in every request's
/// extensions; the adapters hand it to the caller they build
/// (`aws:SourceIp`, `aws:SecureTransport`, the scheme of URLs a client
/// must fetch).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Transport {
    pub source_ip: Option<IpAddr>,
    /// The connection is TLS.
    pub secure: bool,
}

impl Transport {
    /// The transport a request's extensions record; without one (a router
    /// driven directly, as some tests do), plain HTTP from an unknown peer.
    pub fn of(extensions: &http::Extensions) -> Transport {
        extensions
            .get::<Transport>()
            .copied()
            .unwrap_or_else(|| Transport {
                source_ip: extensions
                    .get::<ConnectInfo<SocketAddr>>()
                    .map(|c| c.0.ip()),
                secure: false,
            })
    }
}

/// The bounds the accept loop applies.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Time to send a complete request header; `None` for no limit.
    pub header_timeout: Option<Duration>,
    /// Time a connection may sit without traffic between requests; `None`
    /// for no limit.
    pub idle_timeout: Option<Duration>,
    /// Connections served at once (at least 1).
    pub max_connections: u32,
    /// The pace request bodies must keep; `None` for no limit.
    pub body_rate: Option<crate::body_rate::BodyRate>,
}

/// How often the cap-reached warning may repeat.
const CAP_WARNING_EVERY: Duration = Duration::from_secs(60);

/// Serves `app` on `listener` until `shutdown` completes, then stops
/// accepting and waits for every open connection to finish its request
/// (idle ones close at once).
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: Limits,
    tls: Option<TlsAcceptor>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let all = limits.max_connections.max(1);
    // The semaphore counts in usize; a u32 always fits where ecrd runs.
    let max = usize::try_from(all)
        .unwrap_or(usize::MAX)
        .min(Semaphore::MAX_PERMITS);
    let slots = Arc::new(Semaphore::new(max));
    let (stop, stopping) = watch::channel(false);
    let mut shutdown = std::pin::pin!(shutdown);
    let mut last_warning: Option<Instant> = None;
    loop {
        // Take a slot before accepting, so connections over the cap stay in
        // the backlog rather than holding a descriptor here.
        let slot = match slots.clone().try_acquire_owned() {
            Ok(slot) => slot,
            Err(_) => {
                if last_warning.is_none_or(|t| t.elapsed() >= CAP_WARNING_EVERY) {
                    last_warning = Some(Instant::now());
                    tracing::warn!(
                        max_connections = max,
                        "connection cap reached: {max} connections open; new connections wait until one closes (--max-connections)"
                    );
                }
                tokio::select! {
                    slot = slots.clone().acquire_owned() => match slot {
                        Ok(slot) => slot,
                        Err(_) => break,
                    },
                    () = &mut shutdown => break,
                }
            }
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of descriptors and the like: wait rather than spin;
                    // the listener itself is still fine.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let app = app.clone();
        let stopping = stopping.clone();
        let tls = tls.clone();
        tokio::spawn(async move {
            serve_connection(stream, peer, app, limits, tls, stopping).await;
            drop(slot);
        });
    }
    drop(listener);
    let _ = stop.send(true);
    // Every connection holds a slot until it ends: holding them all means
    // every in-flight request has finished.
    let _ = slots.acquire_many(all).await;
    Ok(())
}

async fn serve_connection(
    stream: TcpStream,
    peer: SocketAddr,
    app: Router,
    limits: Limits,
    tls: Option<TlsAcceptor>,
    stopping: watch::Receiver<bool>,
) {
    // A response goes out in several writes (headers, then a streamed
    // body): with Nagle's algorithm on, a write after the first waits for
    // the client's delayed ACK, about 40 ms on Linux loopback.
    if let Err(e) = stream.set_nodelay(true) {
        tracing::debug!(error = %e, "TCP_NODELAY refused");
    }
    let activity = Arc::new(Activity::new());
    let tracked = Tracked {
        inner: stream,
        activity: activity.clone(),
    };
    let Some(tls) = tls else {
        return serve_http(tracked, peer, false, app, limits, activity, stopping).await;
    };
    // Waiting for the first byte is waiting for a request header: the same
    // limit applies, and a connection that never speaks is closed.
    let mut first = [0u8; 1];
    let peeked = match limits.header_timeout {
        Some(limit) => tokio::time::timeout(limit, tracked.inner.peek(&mut first))
            .await
            .unwrap_or_else(|_| Err(io::ErrorKind::TimedOut.into())),
        None => tracked.inner.peek(&mut first).await,
    };
    match peeked {
        Ok(1..) if first[0] == TLS_HANDSHAKE => {}
        Ok(1..) => return serve_http(tracked, peer, false, app, limits, activity, stopping).await,
        Ok(_) | Err(_) => return,
    }
    let handshake = tls.accept(tracked);
    let accepted = match limits.header_timeout {
        Some(limit) => match tokio::time::timeout(limit, handshake).await {
            Ok(accepted) => accepted,
            Err(_) => {
                tracing::debug!(%peer, "TLS handshake timed out");
                return;
            }
        },
        None => handshake.await,
    };
    match accepted {
        Ok(stream) => serve_http(stream, peer, true, app, limits, activity, stopping).await,
        Err(e) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
    }
}

async fn serve_http<S>(
    stream: S,
    peer: SocketAddr,
    secure: bool,
    app: Router,
    limits: Limits,
    activity: Arc<Activity>,
    mut stopping: watch::Receiver<bool>,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let io = TokioIo::new(stream);
    let transport = Transport {
        source_ip: Some(peer.ip()),
        secure,
    };
    let requests = activity.clone();
    let body_rate = limits.body_rate;
    let service = hyper::service::service_fn(move |request: hyper::Request<_>| {
        let mut request = match body_rate {
            Some(rule) => {
                request.map(|b| axum::body::Body::new(crate::body_rate::Paced::new(b, rule)))
            }
            None => request.map(axum::body::Body::new),
        };
        request.extensions_mut().insert(ConnectInfo(peer));
        request.extensions_mut().insert(transport);
        let app = app.clone();
        let in_flight = InFlight::start(requests.clone());
        async move {
            let response = app.oneshot(request).await;
            drop(in_flight);
            response
        }
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .keep_alive(true);
    let connection = builder.serve_connection(io, service);
    let mut connection = std::pin::pin!(connection);
    // Checks idleness a few times per timeout, so a connection closes within
    // about a quarter of the timeout after it is due.
    let tick = limits
        .idle_timeout
        .map(|t| (t / 4).max(Duration::from_millis(50)));
    let mut closing = false;
    loop {
        let idle_check = async {
            match tick {
                Some(tick) => tokio::time::sleep(tick).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            result = connection.as_mut() => {
                if let Err(e) = result {
                    tracing::debug!(%peer, error = %e, "connection ended with an error");
                }
                return;
            }
            changed = stopping.changed(), if !closing => {
                let _ = changed;
                closing = true;
                connection.as_mut().graceful_shutdown();
            }
            () = idle_check, if !closing => {
                if let Some(idle) = limits.idle_timeout {
                    if activity.idle_for() >= idle {
                        tracing::debug!(%peer, "closing idle connection");
                        closing = true;
                        connection.as_mut().graceful_shutdown();
                    }
                }
            }
        }
    }
}

/// A connection's last traffic and its requests in progress.
struct Activity {
    started: Instant,
    /// Milliseconds after `started` of the last byte read or written.
    last_io_ms: AtomicU64,
    in_flight: AtomicUsize,
}

impl Activity {
    fn new() -> Self {
        Activity {
            started: Instant::now(),
            last_io_ms: AtomicU64::new(0),
            in_flight: AtomicUsize::new(0),
        }
    }

    fn touch(&self) {
        let ms = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_io_ms.store(ms, Ordering::Relaxed);
    }

    /// How long the connection has been idle: zero while a request is in
    /// progress, otherwise the time since its last traffic.
    fn idle_for(&self) -> Duration {
        if self.in_flight.load(Ordering::Relaxed) > 0 {
            return Duration::ZERO;
        }
        let last = Duration::from_millis(self.last_io_ms.load(Ordering::Relaxed));
        self.started.elapsed().saturating_sub(last)
    }
}

/// Marks a request in progress for as long as it lives.
struct InFlight(Arc<Activity>);

impl InFlight {
    fn start(activity: Arc<Activity>) -> Self {
        activity.in_flight.fetch_add(1, Ordering::Relaxed);
        InFlight(activity)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.touch();
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A TCP stream that records when bytes last moved (below TLS, so a
/// handshake and encrypted traffic count too).
struct Tracked {
    inner: TcpStream,
    activity: Arc<Activity>,
}

impl AsyncRead for Tracked {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.activity.touch();
        }
        polled
    }
}

impl AsyncWrite for Tracked {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, buf);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        polled
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
