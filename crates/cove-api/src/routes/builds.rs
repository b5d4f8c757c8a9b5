use axum::body::Body;
use axum::extract::rejection::JsonRejection;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::Json;
use cove_types::{BuildEvent, BuildRequest, ErrorBody};
use futures::StreamExt;
use tracing::{instrument, Instrument};

use crate::routes::pods::NDJSON;
use crate::{ApiError, AppState};

/// Build an image: run each step in a container on top of the previous
/// result and keep its changes as a layer. Identical builds (same base
/// digest, steps and env) are answered from the cache.
///
/// The answer is a stream, one JSON object per line, sent as the work
/// happens: `{"progress": "..."}` (`Building image`, `Using cached image`,
/// `Step i/n: ...`), `{"log": "<output line>"}` while a step runs, then
/// `{"image": {...}}` or `{"error": "...", "status": <http status>}`. An
/// invalid request is refused with a 4xx before any stream starts. The build
/// runs in its own task: a client hanging up does not interrupt it.
#[utoipa::path(post, path = "/v1/images/build", request_body = BuildRequest, responses(
    (status = 200, body = BuildEvent, content_type = "application/x-ndjson",
        description = "progress and log lines, then the image or an error"),
    (status = 400, body = ErrorBody, description = "empty base image, step or command"),
))]
#[instrument(skip_all)]
pub async fn build_image(
    State(state): State<AppState>,
    body: Result<Json<BuildRequest>, JsonRejection>,
) -> Result<Response, ApiError> {
    let Json(req) = body?;
    req.validate().map_err(ApiError::bad_request)?;
    let lifecycle = state.lifecycle.clone();
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    tokio::spawn(
        async move {
            let sink = {
                let tx = tx.clone();
                move |ev: BuildEvent| {
                    let line = serde_json::to_string(&ev).unwrap_or_default();
                    let _ = tx.send(line);
                }
            };
            let last = match lifecycle.build_image(&req, &sink).await {
                Ok(image) => serde_json::json!({ "image": image }),
                Err(e) => {
                    let e = ApiError::from(e);
                    serde_json::json!({ "error": e.message, "status": e.status.as_u16() })
                }
            };
            let _ = tx.send(last.to_string());
        }
        .in_current_span(),
    );
    let lines = tokio_stream::wrappers::UnboundedReceiverStream::new(rx)
        .map(|line| Ok::<_, std::convert::Infallible>(bytes::Bytes::from(line + "\n")));
    Ok((
        [
            (header::CONTENT_TYPE, NDJSON),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        Body::from_stream(lines),
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_build_route_and_its_types_are_in_the_openapi_document() {
        let doc = crate::openapi::document();
        assert!(doc.paths.paths.contains_key("/v1/images/build"));
        let json = serde_json::to_string(&doc).unwrap();
        for name in ["BuildRequest", "BuildStep", "BuildEvent"] {
            assert!(json.contains(&format!("\"{name}\"")), "{name} missing");
        }
    }
}
