//! A deployment's versions and rollback.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::Response;
use axum::Json;
use cove_types::{Deployment, DeploymentVersion, ErrorBody, RollbackRequest};
use tracing::instrument;

use crate::{ApiError, AppState};

/// Every kept version of a deployment, oldest first, with the current one marked.
#[utoipa::path(get, path = "/v1/deployments/{name}/versions", responses(
    (status = 200, body = Vec<DeploymentVersion>), (status = 404, body = ErrorBody)))]
pub async fn deployment_versions(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<Vec<DeploymentVersion>>, ApiError> {
    Ok(Json(state.lifecycle.deployment_versions(&name).await?))
}

/// Roll a deployment back: deploy an earlier version's spec again as its newest
/// version (default: the version before the current one). The switch drains
/// requests in flight like any deploy. With `Accept: application/x-ndjson` the
/// answer streams [`DeployEvent`] lines as `POST /v1/deployments` does.
#[utoipa::path(post, path = "/v1/deployments/{name}/rollback", request_body = RollbackRequest,
    responses(
        (status = 201, body = Deployment, description = "the deployment, at its new version, serving"),
        (status = 400, body = ErrorBody, description = "no such version, or none before the current one"),
        (status = 404, body = ErrorBody, description = "unknown deployment"),
        (status = 409, body = ErrorBody, description = "that version is the current one"),
    ))]
#[instrument(skip(state, headers, body))]
pub async fn rollback_deployment(
    State(state): State<AppState>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    // An empty body is the default: the version before the current one.
    let req: RollbackRequest = if body.iter().all(u8::is_ascii_whitespace) {
        RollbackRequest::default()
    } else {
        serde_json::from_slice(&body)
            .map_err(|e| ApiError::bad_request(format!("invalid rollback request: {e}")))?
    };
    let lifecycle = state.lifecycle.clone();
    super::deployments::deploying(&headers, move |progress| async move {
        lifecycle
            .rollback_deployment(&name, req.version, &*progress)
            .await
    })
    .await
}
