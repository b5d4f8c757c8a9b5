use axum::extract::rejection::JsonRejection;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use cove_types::{CreatePodRequest, CreatePodResponse, ErrorBody};
use tracing::{info, instrument};

use crate::{ApiError, AppState};

/// Launch a pod: pull its image if needed, start its container, and return
/// it with its URLs once it runs.
#[utoipa::path(post, path = "/v1/pods", request_body = CreatePodRequest, responses(
    (status = 201, body = CreatePodResponse),
    (status = 400, body = ErrorBody, description = "invalid spec, image reference or registry"),
    (status = 404, body = ErrorBody, description = "unknown image"),
))]
#[instrument(skip_all)]
pub async fn create_pod(
    State(state): State<AppState>,
    body: Result<Json<CreatePodRequest>, JsonRejection>,
) -> Result<(StatusCode, Json<CreatePodResponse>), ApiError> {
    let Json(req) = body?;
    // A client that hangs up must not cancel a create halfway: the work runs
    // in its own task, which finishes (or rolls back) whatever happens here.
    let lifecycle = state.lifecycle.clone();
    let container = crate::detached(async move {
        let progress = |msg: String| info!(%msg, "create progress");
        lifecycle.create_pod(&req, &progress).await
    })
    .await?;
    Ok((StatusCode::CREATED, Json(CreatePodResponse { container })))
}
