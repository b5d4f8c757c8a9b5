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
    let progress = |msg: String| info!(%msg, "create progress");
    let container = state.lifecycle.create_pod(&req, &progress).await?;
    Ok((StatusCode::CREATED, Json(CreatePodResponse { container })))
}
