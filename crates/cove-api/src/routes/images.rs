use axum::body::Body;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use cove_types::{ErrorBody, ImageInfo, PullRequest, Scope};
use serde::Deserialize;
use tracing::{info, instrument};

use crate::{upload, ApiError, AppState};

#[utoipa::path(get, path = "/v1/images", responses((status = 200, body = Vec<ImageInfo>)))]
pub async fn list_images(
    State(state): State<AppState>,
    Extension(scope): Extension<Scope>,
) -> Result<Json<Vec<ImageInfo>>, ApiError> {
    Ok(Json(state.lifecycle.list_images_in(&scope).await?))
}

/// Pull an image from its registry.
#[utoipa::path(post, path = "/v1/images/pull", request_body = PullRequest, responses(
    (status = 200, body = ImageInfo), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
#[instrument(skip_all)]
pub async fn pull_image(
    State(state): State<AppState>,
    Extension(scope): Extension<Scope>,
    body: Result<Json<PullRequest>, JsonRejection>,
) -> Result<Json<ImageInfo>, ApiError> {
    let Json(req) = body?;
    let lifecycle = state.lifecycle.clone();
    let workspace = scope.workspace().to_string();
    let pulled = crate::detached(async move {
        let progress = |msg: String| info!(%msg, "pull progress");
        lifecycle
            .pull_image_in(&workspace, &req.reference, req.auth.as_ref(), &progress)
            .await
    });
    Ok(Json(pulled.await?))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct ReferenceQuery {
    pub reference: Option<String>,
}

/// Remove an image (refused while a running container uses it).
#[utoipa::path(delete, path = "/v1/images", params(ReferenceQuery), responses(
    (status = 204), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn remove_image(
    State(state): State<AppState>,
    Extension(scope): Extension<Scope>,
    Query(q): Query<ReferenceQuery>,
) -> Result<StatusCode, ApiError> {
    let reference = q
        .reference
        .ok_or_else(|| ApiError::bad_request("missing ?reference="))?;
    state.lifecycle.remove_image_in(&scope, &reference).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Import images from a tar body: an OCI archive (a tarred image layout) or a
/// docker-archive (`docker save`).
#[utoipa::path(post, path = "/v1/images/import", params(ReferenceQuery),
    request_body(content = String, content_type = "application/x-tar"),
    responses((status = 200, body = Vec<ImageInfo>), (status = 400, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "a name another workspace holds or that names other content"),
        (status = 413, body = ErrorBody, description = "the upload is over the daemon's --max-upload-bytes")))]
#[instrument(skip_all)]
pub async fn import_image(
    State(state): State<AppState>,
    Extension(scope): Extension<Scope>,
    Query(q): Query<ReferenceQuery>,
    body: Body,
) -> Result<Json<Vec<ImageInfo>>, ApiError> {
    let upload = upload::save(&state, body, "import").await?;
    let lifecycle = state.lifecycle.clone();
    let reference = q.reference.clone();
    // The upload is dropped (removed) by the task, once the work is done.
    let imported = crate::detached(async move {
        lifecycle
            .import_image_in(&scope, &upload.path, reference.as_deref())
            .await
    });
    Ok(Json(imported.await?))
}
