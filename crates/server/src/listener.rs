//! The listener: accepts connections within bounds and serves the router on them.
//!
//! `axum::serve` reads headers and bodies for as long as a client likes and
//! accepts until the process runs out of descriptors. Here every connection
//! counts against [`ConnectionSettings::max_connections`] (kept below the
//! process's descriptor limit; one over it is closed at once, so `accept` never
//! fails and the service keeps answering); a request's headers must arrive within
//! `header_read_timeout_ms` (the same bound closes an idle keep-alive
//! connection), and its body within `body_read_timeout_ms` (408 after that, see
//! `state::read_body`).
//! Built on hyper-util's server (the same stack axum uses underneath).

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use crate::config::ConnectionSettings;

/// Descriptors kept free for everything else the process opens (boxes' pipes,
/// the database, the compile cache) when the connection bound is derived from
/// the descriptor limit.
const RESERVED_DESCRIPTORS: u64 = 512;

/// The connection bound in force: the configured one, never more than the
/// process's descriptor limit minus what boxes and the database need.
pub fn max_connections(settings: &ConnectionSettings) -> usize {
    let limit = rustix::process::getrlimit(rustix::process::Resource::Nofile)
        .current
        .unwrap_or(u64::MAX);
    let room = limit.saturating_sub(RESERVED_DESCRIPTORS).max(16);
    (settings.max_connections as u64).min(room) as usize
}

/// Raises the soft descriptor limit to the hard one (what a server is allowed),
/// so the connection bound is not needlessly small.
pub fn raise_descriptor_limit() {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let limit = getrlimit(Resource::Nofile);
    if limit.current != limit.maximum {
        let raised = rustix::process::Rlimit {
            current: limit.maximum,
            maximum: limit.maximum,
        };
        if let Err(error) = setrlimit(Resource::Nofile, raised) {
            tracing::debug!(%error, "cannot raise the descriptor limit");
        }
    }
}

/// Serves `app` on `listener` within `settings` until `shutdown` completes, then
/// stops accepting and lets open connections finish their requests.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    settings: &ConnectionSettings,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    let slots = Arc::new(Semaphore::new(max_connections(settings)));
    let mut builder = Builder::new(TokioExecutor::new());
    // hyper starts the header timer whenever it waits for a request head, idle
    // keep-alive time included: it is also the idle timeout of HTTP/1.
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(Duration::from_millis(settings.header_read_timeout_ms))
        .keep_alive(true);
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(Duration::from_millis(settings.header_read_timeout_ms))
        .keep_alive_timeout(Duration::from_millis(settings.header_read_timeout_ms));
    let builder = Arc::new(builder);
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let (stream, addr) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of descriptors or memory for a moment: wait, never spin.
                    tracing::warn!(%error, "cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            metrics::counter!("runbox_rejected_connections_total", "reason" => "too_many")
                .increment(1);
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let service = TowerToHyperService::new(with_connect_info(app.clone(), addr));
        let builder = builder.clone();
        let io = TokioIo::new(stream);
        let connection = builder
            .serve_connection_with_upgrades(io, service)
            .into_owned();
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(%error, %addr, "connection ended with an error");
            }
            drop(slot);
        });
    }
    drop(listener);
    graceful.shutdown().await;
}

/// `service` with the client's address where axum's `ConnectInfo` looks for it.
fn with_connect_info(
    service: Router,
    addr: SocketAddr,
) -> impl tower::Service<
    axum::http::Request<hyper::body::Incoming>,
    Response = axum::response::Response,
    Error = std::convert::Infallible,
    Future = impl Future<Output = Result<axum::response::Response, std::convert::Infallible>> + Send,
> + Clone
+ Send {
    tower::util::MapRequest::new(service, move |mut request: axum::http::Request<_>| {
        request.extensions_mut().insert(ConnectInfo(addr));
        request.map(axum::body::Body::new)
    })
}
