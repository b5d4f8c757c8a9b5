use axum::extract::rejection::JsonRejection;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use cove_lifecycle::LifecycleError;
use cove_types::{
    validate_pod_spec, CreateEvent, CreatePodRequest, CreatePodResponse, ErrorBody, Scope,
};
use tracing::instrument;

use crate::{stream, ApiError, AppState};

/// Launch a pod: pull its image if needed, start its container, and return
/// it with its URLs once it runs.
///
/// With `Accept: application/x-ndjson` the answer is a stream, one JSON
/// object per line, sent as the work happens: `{"progress": "..."}` lines,
/// then `{"container": {...}}` or `{"error": "...", "status": <http status>}`.
/// A request whose spec is invalid is still refused with a 4xx before any
/// stream starts.
#[utoipa::path(post, path = "/v1/pods", request_body = CreatePodRequest, responses(
    (status = 201, body = CreatePodResponse),
    (status = 200, description = "with Accept: application/x-ndjson: progress lines, then the container or an error", content_type = "application/x-ndjson"),
    (status = 400, body = ErrorBody, description = "invalid spec, image reference or registry"),
    (status = 404, body = ErrorBody, description = "unknown image"),
))]
#[instrument(skip_all)]
pub async fn create_pod(
    State(state): State<AppState>,
    Extension(scope): Extension<Scope>,
    headers: HeaderMap,
    body: Result<Json<CreatePodRequest>, JsonRejection>,
) -> Result<Response, ApiError> {
    let Json(req) = body?;
    let lifecycle = state.lifecycle.clone();
    let workspace = scope.workspace().to_string();
    validate_pod_spec(&req).map_err(LifecycleError::from)?;
    stream::progress_or_result::<CreateEvent, _, _>(
        &headers,
        move |progress| async move { lifecycle.create_pod_in(&workspace, &req, &*progress).await },
        |container| (StatusCode::CREATED, Json(CreatePodResponse { container })).into_response(),
    )
    .await
}

impl stream::Event for CreateEvent {
    type Done = cove_types::Container;
    fn progress(msg: String) -> Self {
        CreateEvent {
            progress: Some(msg),
            ..Default::default()
        }
    }
    fn done(container: cove_types::Container) -> Self {
        CreateEvent {
            container: Some(container),
            ..Default::default()
        }
    }
}
