//! Streamed answers: work that runs in its own task and reports as it goes,
//! one JSON object per line (NDJSON), ending with its result or an error.

use std::convert::Infallible;
use std::future::Future;

use axum::body::Body;
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use cove_lifecycle::LifecycleError;
use futures::StreamExt;
use serde::Serialize;
use tokio::sync::mpsc::{unbounded_channel, UnboundedSender};
use tracing::Instrument;

use crate::ApiError;

/// The media type of a streamed answer.
pub const NDJSON: &str = "application/x-ndjson";

/// Whether the client asked for a streamed answer.
pub fn wants_ndjson(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains(NDJSON))
}

/// Where streamed work sends its lines. Cheap to clone; sending after the
/// client has gone is a no-op.
#[derive(Clone)]
pub struct Lines(UnboundedSender<String>);

impl Lines {
    /// Sends one event as a line.
    pub fn send<T: Serialize>(&self, event: &T) {
        let mut line = serde_json::to_string(event)
            .unwrap_or_else(|e| format!("{{\"error\":\"encoding an event: {e}\"}}"));
        line.push('\n');
        let _ = self.0.send(line);
    }

    /// Sends the final line of failed work: `{"error": "...", "status": N}`,
    /// with the status the error would have had as a plain answer.
    pub fn error(&self, e: LifecycleError) {
        let e = ApiError::from(e);
        self.send(&serde_json::json!({ "error": e.message, "status": e.status.as_u16() }));
    }
}

/// Runs `work` in its own task, so a client hanging up cannot interrupt it
/// halfway, and answers with its lines as they come.
pub fn ndjson<F, Fut>(work: F) -> Response
where
    F: FnOnce(Lines) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let (tx, rx) = unbounded_channel::<String>();
    tokio::spawn(work(Lines(tx)).in_current_span());
    let lines = tokio_stream::wrappers::UnboundedReceiverStream::new(rx)
        .map(|line| Ok::<_, Infallible>(bytes::Bytes::from(line)));
    (
        [
            (header::CONTENT_TYPE, NDJSON),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        Body::from_stream(lines),
    )
        .into_response()
}

/// Progress as long-running work (create, deploy, rollback) reports it.
pub type Progress = std::sync::Arc<dyn Fn(String) + Send + Sync>;

/// The lines of a streamed answer whose work ends with one result.
pub trait Event: Serialize {
    /// What the work ends with (a container, a deployment).
    type Done: Send + 'static;
    /// A `{"progress": "..."}` line.
    fn progress(msg: String) -> Self;
    /// The last line of work that succeeded.
    fn done(result: Self::Done) -> Self;
}

/// Answers long-running work: with `Accept: application/x-ndjson`, a stream of `E` lines
/// (progress, then the result or the error); otherwise `created(result)` once it is done,
/// progress going to the log. Either way it runs in its own task, so a client hanging up
/// cannot interrupt it halfway.
pub async fn progress_or_result<E, F, Fut>(
    headers: &HeaderMap,
    work: F,
    created: impl FnOnce(E::Done) -> Response,
) -> Result<Response, ApiError>
where
    E: Event + 'static,
    F: FnOnce(Progress) -> Fut + Send + 'static,
    Fut: Future<Output = Result<E::Done, LifecycleError>> + Send + 'static,
{
    if !wants_ndjson(headers) {
        let progress: Progress =
            std::sync::Arc::new(|msg: String| tracing::info!(%msg, "progress"));
        let done = crate::detached(async move { work(progress).await }).await?;
        return Ok(created(done));
    }
    Ok(ndjson(move |lines| async move {
        let progress: Progress = {
            let lines = lines.clone();
            std::sync::Arc::new(move |msg: String| lines.send(&E::progress(msg)))
        };
        match work(progress).await {
            Ok(done) => lines.send(&E::done(done)),
            Err(e) => lines.error(e),
        }
    }))
}
