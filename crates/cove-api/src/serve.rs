//! The API's listener loop, hardened against hostile clients (the gateway's
//! `cove-gateway/src/server.rs` does the same for pods' traffic, with the same
//! `cove_listen` guard).
//!
//! `axum::serve` has no limits of its own, so the API runs its router on hyper-util's
//! connection builder with:
//! - a header read timeout: a client that trickles its request head (slowloris) is dropped
//!   after [`HEADER_READ_TIMEOUT`] and holds only its own task meanwhile;
//! - a request head cap ([`MAX_HEADER_BYTES`]): a bigger head is answered `431`;
//! - `cove_listen`'s guard ([`cove_listen::Limits`], `--api-*` flags): a deadline from
//!   accept to the first request (a client that never sends a byte), an idle keep-alive
//!   timeout, and a connection cap that closes the oldest idle connection to admit a new
//!   one, so the admin is still served while thousands of idle connections are open.
//!
//! Bodies are capped per route by axum's body limit (JSON routes: [`crate::MAX_JSON_BODY`],
//! answered `413`); uploads stream to disk, capped by `--max-upload-bytes`
//! ([`crate::AppState::max_upload_bytes`], also answered `413`).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use cove_listen::{accept_loop, Connections, Limits, TrackedService};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::watch;

/// Time a client gets to send a complete request head.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest request head.
pub const MAX_HEADER_BYTES: usize = 64 * 1024;
/// How long shutdown waits for requests in flight.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// Serves `router` on `listener` within `limits` until `shutdown` resolves, then lets
/// requests in flight finish (bounded by a grace period).
pub(crate) async fn serve(
    listener: TcpListener,
    router: Router,
    limits: Limits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .max_buf_size(MAX_HEADER_BYTES)
        .keep_alive(true);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_header_list_size(MAX_HEADER_BYTES as u32);
    let builder = Arc::new(builder);
    let conns = Connections::new("api", limits);
    let graceful = GracefulShutdown::new();
    let (stop_tx, stop) = watch::channel(false);
    tokio::spawn(async move {
        shutdown.await;
        let _ = stop_tx.send(true);
    });
    accept_loop(&listener, &conns, stop, |io, peer, conn| {
        let svc = TrackedService::new(TowerToHyperService::new(router.clone()), conn);
        let builder = Arc::clone(&builder);
        let watcher = graceful.watcher();
        async move {
            let conn = builder.serve_connection_with_upgrades(TokioIo::new(io), svc);
            if let Err(e) = watcher.watch(conn.into_owned()).await {
                tracing::debug!(%peer, error = %e, "api connection ended with error");
            }
        }
    })
    .await;
    if tokio::time::timeout(SHUTDOWN_GRACE, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("api shutdown grace period elapsed with requests in flight");
    }
    Ok(())
}
