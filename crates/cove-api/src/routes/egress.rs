//! `PUT /v1/containers/{id}/egress`: change a running pod's egress policy without restarting it.

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::Json;
use cove_types::{Container, EgressRequest, ErrorBody};
use tracing::instrument;

use crate::{ApiError, AppState};

/// Set a running container's egress: `{"block_network": true}`, `{"allow_list": ["10.0.0.0/8"]}`, or `{}`
/// to open it again. Takes effect at once (existing connections included) and is kept across restarts.
#[utoipa::path(put, path = "/v1/containers/{id}/egress", request_body = EgressRequest, responses(
    (status = 200, body = Container), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody),
    (status = 409, body = ErrorBody)))]
#[instrument(skip(state, body))]
pub async fn set_container_egress(
    State(state): State<AppState>,
    Path(id): Path<String>,
    body: Result<Json<EgressRequest>, JsonRejection>,
) -> Result<Json<Container>, ApiError> {
    let Json(req) = body?;
    let lifecycle = state.lifecycle.clone();
    let changed = crate::detached(async move { lifecycle.set_egress(&id, &req).await });
    Ok(Json(changed.await?))
}
