//! The daemon's HTTP/JSON API (axum). Handlers are thin: they decode the
//! request, call the lifecycle, and encode the answer. Errors become HTTP
//! statuses in one place ([`error`]); the OpenAPI document is generated from
//! the handlers and the `cove-types` wire types ([`openapi`]).

mod auth;
mod distribution;
mod error;
mod host_check;
pub mod openapi;
mod ownership;
mod routes;
mod serve;
mod stream;
pub mod tokens;
mod upload;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use axum::extract::{DefaultBodyLimit, Request};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::Router;
use cove_lifecycle::Lifecycle;
use cove_types::DaemonInfo;
use tokio::net::TcpListener;
use tracing::{info, Instrument};

pub use error::ApiError;

/// What handlers share.
#[derive(Clone)]
pub struct AppState {
    pub lifecycle: Lifecycle,
    /// The admin token and the workspace tokens.
    pub tokens: tokens::TokenCache,
    pub info: Arc<DaemonInfo>,
    /// Largest upload (image archive, build context, sync files) saved to disk; a bigger
    /// one is a 413.
    pub max_upload_bytes: u64,
}

/// The default of `--max-upload-bytes`: 8 GiB.
pub const DEFAULT_MAX_UPLOAD_BYTES: u64 = 8 << 30;

/// The whole API as a router.
pub fn router(state: AppState) -> Router {
    // Outermost last: the token is checked first, then the workspace of what it names.
    let authed = routes::router()
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            ownership::require_owner,
        ))
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            auth::require_token,
        ));
    Router::new()
        .merge(authed)
        .merge(routes::public_router())
        // The internal OCI read endpoint checks its own token (registry clients expect
        // its 401 challenge and error bodies).
        .merge(distribution::router())
        .fallback(|| async {
            ApiError::new(
                axum::http::StatusCode::NOT_FOUND,
                "no such API route (see /v1/openapi.json)",
            )
        })
        .layer(DefaultBodyLimit::max(MAX_JSON_BODY))
        .layer(middleware::from_fn(host_check::require_valid_host))
        .layer(middleware::from_fn(trace_request))
        .with_state(state)
}

/// Binds the API listener now, so a busy port is reported at startup.
pub async fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(addr).await
}

/// Largest body the JSON routes read (a bigger one is a 413); uploads stream to disk
/// and are capped by [`AppState::max_upload_bytes`].
pub const MAX_JSON_BODY: usize = 2 * 1024 * 1024;

/// Serves the API until `shutdown` resolves, with the limits of [`serve`](mod@serve):
/// header read timeout, head size cap, and `limits` (connection cap, per-address cap,
/// first-request and idle deadlines; [`cove_listen::Limits::API`] by default).
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    limits: cove_listen::Limits,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve::serve(listener, router(state), limits, shutdown).await
}

/// Runs a state-changing operation in its own task, so that a client
/// disconnecting (which drops the handler's future) cannot interrupt it
/// between two steps; the handler just waits for its result.
pub(crate) async fn detached<T: Send + 'static>(
    work: impl std::future::Future<Output = Result<T, cove_lifecycle::LifecycleError>> + Send + 'static,
) -> Result<T, ApiError> {
    match tokio::spawn(work.in_current_span()).await {
        Ok(r) => Ok(r?),
        Err(e) => Err(ApiError::new(
            axum::http::StatusCode::INTERNAL_SERVER_ERROR,
            format!("internal error: {e}"),
        )),
    }
}

/// One span per request, with its method, path, status and latency.
async fn trace_request(req: Request, next: Next) -> Response {
    let span = tracing::info_span!(
        "api",
        method = %req.method(),
        path = %req.uri().path(),
        workspace = tracing::field::Empty
    );
    async move {
        let start = Instant::now();
        let resp = next.run(req).await;
        info!(
            status = resp.status().as_u16(),
            ms = start.elapsed().as_millis() as u64,
            "request"
        );
        resp
    }
    .instrument(span)
    .await
}
