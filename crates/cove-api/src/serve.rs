//! The API's listener loop, hardened against hostile clients (the gateway's
//! `cove-gateway/src/server.rs` does the same for pods' traffic).
//!
//! `axum::serve` has no limits of its own, so the API runs its router on hyper-util's
//! connection builder with:
//! - a header read timeout: a client that trickles its request head (slowloris) is dropped
//!   after [`HEADER_READ_TIMEOUT`] and holds only its own task meanwhile;
//! - a request head cap ([`MAX_HEADER_BYTES`]): a bigger head is answered `431`;
//! - a connection cap ([`MAX_CONNECTIONS`]): back-pressure on accept instead of running out
//!   of memory or descriptors.
//!
//! Bodies are capped per route by axum's body limit (JSON routes: [`crate::MAX_JSON_BODY`],
//! answered `413`); uploads stream to disk, capped by `--max-upload-bytes`
//! ([`crate::AppState::max_upload_bytes`], also answered `413`).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};

/// Time a client gets to send a complete request head.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest request head.
pub const MAX_HEADER_BYTES: usize = 64 * 1024;
/// Concurrent client connections.
const MAX_CONNECTIONS: usize = 1024;
/// How long shutdown waits for requests in flight.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// Serves `router` on `listener` until `shutdown` resolves, then lets requests in flight
/// finish (bounded by a grace period).
pub(crate) async fn serve(
    listener: TcpListener,
    router: Router,
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
    let limit = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let graceful = GracefulShutdown::new();
    let (stop_tx, mut stop) = watch::channel(false);
    tokio::spawn(async move {
        shutdown.await;
        let _ = stop_tx.send(true);
    });
    loop {
        let permit = tokio::select! {
            _ = stop.changed() => break,
            p = Arc::clone(&limit).acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
        };
        let (stream, peer) = tokio::select! {
            _ = stop.changed() => break,
            r = listener.accept() => match r {
                Ok(pair) => pair,
                Err(e) => {
                    // Typically EMFILE: back off instead of spinning; never stop serving.
                    tracing::warn!(error = %e, "api accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let svc = TowerToHyperService::new(router.clone());
        let builder = Arc::clone(&builder);
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            let _permit = permit;
            let conn = builder.serve_connection_with_upgrades(TokioIo::new(stream), svc);
            if let Err(e) = watcher.watch(conn.into_owned()).await {
                tracing::debug!(%peer, error = %e, "api connection ended with error");
            }
        });
    }
    if tokio::time::timeout(SHUTDOWN_GRACE, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("api shutdown grace period elapsed with requests in flight");
    }
    Ok(())
}
