//! The HTTPS listener: TLS on a TCP port, HTTP/1.1 inside, the API router
//! ([`crate::api::router`]) behind it. There is no plain-HTTP listener: a
//! plain request to the port fails the TLS handshake and gets no HTTP
//! answer.
//!
//! Limits for a small (two-core) box facing a network:
//!
//! - at most [`HttpsLimits::max_connections`] connections at once; the
//!   next waits in the kernel's backlog until one closes;
//! - the TLS handshake must finish within
//!   [`HttpsLimits::handshake_timeout`];
//! - a request's headers must arrive within
//!   [`HttpsLimits::header_read_timeout`] (hyper's timer, which also
//!   closes a kept-alive connection that stays idle that long), so a
//!   slowloris client cannot hold connections; a request's body and answer
//!   are bounded by [`crate::api::REQUEST_TIMEOUT`];
//! - headers up to 64 KiB, bodies up to [`crate::api::MAX_BODY`].

use crate::api::ClientAddr;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use rustls::ServerConfig;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_rustls::TlsAcceptor;
use tower::Service;

/// The listener's limits.
#[derive(Debug, Clone, Copy)]
pub struct HttpsLimits {
    /// Connections open at once.
    pub max_connections: usize,
    /// Time for the TLS handshake.
    pub handshake_timeout: Duration,
    /// Time for a request's headers (and a kept-alive connection's idle
    /// wait for the next request).
    pub header_read_timeout: Duration,
}

impl Default for HttpsLimits {
    fn default() -> Self {
        HttpsLimits {
            max_connections: 1024,
            handshake_timeout: Duration::from_secs(10),
            header_read_timeout: Duration::from_secs(10),
        }
    }
}

/// Largest request head (request line and headers) read.
const MAX_HEAD: usize = 64 * 1024;

/// Serve `app` over TLS (`tls`) on `listener` until `shutdown` resolves.
/// Connections open then are left to finish on their own.
pub async fn serve(
    listener: TcpListener,
    tls: Arc<ServerConfig>,
    app: Router,
    limits: HttpsLimits,
    shutdown: impl Future<Output = ()>,
) {
    let acceptor = TlsAcceptor::from(tls);
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    tokio::pin!(shutdown);
    loop {
        let slot = tokio::select! {
            s = Arc::clone(&slots).acquire_owned() => match s {
                Ok(s) => s,
                Err(_) => return,
            },
            _ = &mut shutdown => return,
        };
        let (tcp, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    // Out of descriptors and the like: do not spin.
                    tracing::warn!("HTTPS accept: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = &mut shutdown => return,
        };
        let acceptor = acceptor.clone();
        let app = app.clone();
        tokio::spawn(async move {
            connection(acceptor, tcp, peer, app, limits).await;
            drop(slot);
        });
    }
}

async fn connection(
    acceptor: TlsAcceptor,
    tcp: TcpStream,
    peer: SocketAddr,
    app: Router,
    limits: HttpsLimits,
) {
    let _ = tcp.set_nodelay(true);
    let tls = match tokio::time::timeout(limits.handshake_timeout, acceptor.accept(tcp)).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            tracing::debug!("TLS handshake with {peer} failed: {e}");
            return;
        }
        Err(_) => {
            tracing::debug!("TLS handshake with {peer} timed out");
            return;
        }
    };
    let service = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
        req.extensions_mut().insert(ClientAddr(peer));
        let mut app = app.clone();
        async move { app.call(req).await }
    });
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_buf_size(MAX_HEAD);
    if let Err(e) = http.serve_connection(TokioIo::new(tls), service).await {
        tracing::debug!("HTTPS connection with {peer}: {e}");
    }
}
