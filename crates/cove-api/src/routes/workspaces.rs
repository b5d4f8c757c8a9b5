//! `/v1/workspaces`: workspaces' limits and what they hold now (admin token only).

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::{Extension, Json};
use cove_types::{ErrorBody, Scope, SetLimitsRequest, WorkspaceInfo};
use tracing::instrument;

use crate::auth::admin_only;
use crate::{ApiError, AppState};

/// Every workspace (with a token, a pod or limits, and `default`): the limits in force and
/// the pods, cpu, memory and disk its starting and running pods hold.
#[utoipa::path(get, path = "/v1/workspaces", responses(
    (status = 200, body = Vec<WorkspaceInfo>), (status = 403, body = ErrorBody)))]
pub async fn list_workspaces(
    State(state): State<AppState>,
    Extension(scope): Extension<Scope>,
) -> Result<Json<Vec<WorkspaceInfo>>, ApiError> {
    admin_only(&scope)?;
    Ok(Json(state.lifecycle.workspaces().await?))
}

/// Set a workspace's limits; a limit left out keeps its value. Running pods stay; a create,
/// deploy or wake that would go over a limit is then a 429 naming it.
#[utoipa::path(put, path = "/v1/workspaces/{name}/limits", request_body = SetLimitsRequest,
    params(("name" = String, Path, description = "the workspace")),
    responses((status = 200, body = WorkspaceInfo), (status = 400, body = ErrorBody),
        (status = 403, body = ErrorBody)))]
#[instrument(skip(state, scope, body))]
pub async fn set_workspace_limits(
    State(state): State<AppState>,
    Extension(scope): Extension<Scope>,
    Path(name): Path<String>,
    body: Result<Json<SetLimitsRequest>, JsonRejection>,
) -> Result<Json<WorkspaceInfo>, ApiError> {
    admin_only(&scope)?;
    let Json(req) = body?;
    Ok(Json(
        state.lifecycle.set_workspace_limits(&name, &req).await?,
    ))
}
