//! The listener's accept loop, with the limits that keep slow or idle clients from holding
//! it (`[server]`): without them, a few hundred connections that never finish their headers
//! use up the process's file descriptors and every Live Event after them times out, which
//! Canvas counts towards deactivating the subscription.
//!
//! * At most `max_connections` are served at once (capped below the open-file limit). The
//!   next connection is not accepted until one ends: it waits in the kernel's accept queue
//!   ([`bind`] asks for a long one), holding no descriptor of ours.
//! * A connection that has not sent a whole request head within `header_read_timeout` is
//!   closed; the same timer closes an idle keep-alive connection.
//! * Body and whole-request timeouts answer 408 (tower-http layers on the router).
//!
//! HTTP/1.1 only: what Canvas and load balancers speak, and the protocol whose header timeout
//! hyper enforces.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use axum::http::{Request, StatusCode};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;
use tower_http::timeout::{RequestBodyTimeoutLayer, TimeoutLayer};

use crate::config::ServerConfig;

/// Descriptors kept free for the database, the log and outgoing requests.
const SPARE_FILES: usize = 128;

/// Connections the kernel completes and queues while every slot is taken (the listen
/// backlog; the kernel caps it at `net.core.somaxconn`). The default of 128 would leave a
/// client's SYN unanswered, to be retried a second or more later, as soon as a flood fills
/// the slots and the queue.
const ACCEPT_QUEUE: u32 = 4096;

/// A listener on `addr` with the accept queue above (and `SO_REUSEADDR`, so a restart can
/// bind while old connections linger in TIME_WAIT).
pub fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(ACCEPT_QUEUE)
}

/// The limits of one listener.
#[derive(Debug, Clone)]
pub struct EdgeLimits {
    pub header_read_timeout: Duration,
    pub body_timeout: Duration,
    pub request_timeout: Duration,
    pub max_connections: usize,
}

impl EdgeLimits {
    /// From `[server]`, the connection cap lowered below the open-file limit when it is known.
    pub fn from_config(server: &ServerConfig) -> Self {
        let mut max_connections = server.max_connections;
        if let Some(files) = open_file_limit() {
            let fits = files.saturating_sub(SPARE_FILES).max(16);
            if fits < max_connections {
                tracing::warn!(
                    configured = max_connections,
                    open_file_limit = files,
                    serving = fits,
                    "server.max_connections lowered below the open-file limit"
                );
                max_connections = fits;
            }
        }
        Self {
            header_read_timeout: Duration::from_secs(server.header_read_timeout_seconds),
            body_timeout: Duration::from_secs(server.body_timeout_seconds),
            request_timeout: Duration::from_secs(server.request_timeout_seconds),
            max_connections,
        }
    }
}

/// The soft `RLIMIT_NOFILE` of this process, read from `/proc` (Linux; `None` elsewhere).
fn open_file_limit() -> Option<usize> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

/// Serves `router` on `listener` until `stopping` is cancelled, then lets the connections in
/// flight finish (the caller bounds how long it waits).
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: EdgeLimits,
    stopping: CancellationToken,
) -> std::io::Result<()> {
    let router = router
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            limits.request_timeout,
        ))
        .layer(RequestBodyTimeoutLayer::new(limits.body_timeout));
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    let graceful = GracefulShutdown::new();
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout);
    loop {
        // A free slot first, then accept: past the cap, connections wait in the kernel.
        let permit = tokio::select! {
            permit = permits.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
            _ = stopping.cancelled() => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(err) => {
                    // Out of descriptors (EMFILE) or a connection reset before accept: wait
                    // a moment instead of spinning.
                    tracing::warn!(error = %err, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = stopping.cancelled() => break,
        };
        let service = router
            .clone()
            .map_request(move |mut request: Request<Incoming>| {
                request
                    .extensions_mut()
                    .insert(ConnectInfo::<SocketAddr>(peer));
                request
            });
        let connection =
            http.serve_connection(TokioIo::new(stream), TowerToHyperService::new(service));
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(err) = connection.await {
                tracing::debug!(%peer, error = %err, "connection ended with an error");
            }
            drop(permit);
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}
