use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use cove_lifecycle::validate_deploy;
use cove_types::{CreatePodRequest, DeployEvent, Deployment, ErrorBody, Scope};
use tracing::instrument;

use crate::{stream, ApiError, AppState};

/// Deploy a pod under its `name`: the first deploy creates the deployment and
/// its stable URL, later ones add a version that replaces the running one
/// without dropping requests in flight. The body is a pod spec whose `name`
/// is required.
///
/// With `Accept: application/x-ndjson` the answer is a stream of
/// [`DeployEvent`] lines: `{"progress": "..."}` as the work happens, then
/// `{"deployment": {...}}` or `{"error": "...", "status": <http status>}`.
/// An invalid spec is still refused with a 4xx before any stream starts.
#[utoipa::path(post, path = "/v1/deployments", request_body = CreatePodRequest, responses(
    (status = 201, body = Deployment, description = "the deployment, at its new version, serving"),
    (status = 200, body = DeployEvent, description = "with Accept: application/x-ndjson: progress lines, then the deployment or an error", content_type = "application/x-ndjson"),
    (status = 400, body = ErrorBody, description = "no name, invalid spec, image reference or registry"),
    (status = 404, body = ErrorBody, description = "unknown image"),
))]
#[instrument(skip_all)]
pub async fn deploy(
    State(state): State<AppState>,
    Extension(scope): Extension<Scope>,
    headers: HeaderMap,
    body: Result<Json<CreatePodRequest>, JsonRejection>,
) -> Result<Response, ApiError> {
    let Json(req) = body?;
    validate_deploy(&req)?;
    let lifecycle = state.lifecycle.clone();
    let workspace = scope.workspace().to_string();
    deploying(&headers, move |progress| async move {
        lifecycle.deploy_in(&workspace, &req, &*progress).await
    })
    .await
}

impl stream::Event for DeployEvent {
    type Done = Deployment;
    fn progress(msg: String) -> Self {
        DeployEvent {
            progress: Some(msg),
            ..Default::default()
        }
    }
    fn done(d: Deployment) -> Self {
        DeployEvent {
            deployment: Some(d),
            ..Default::default()
        }
    }
}

/// Answers a deploying operation (deploy, rollback): 201 with the deployment, or the
/// [`DeployEvent`] stream.
pub(crate) async fn deploying<F, Fut>(headers: &HeaderMap, op: F) -> Result<Response, ApiError>
where
    F: FnOnce(stream::Progress) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = Result<Deployment, cove_lifecycle::LifecycleError>>
        + Send
        + 'static,
{
    stream::progress_or_result::<DeployEvent, _, _>(headers, op, |d| {
        (StatusCode::CREATED, Json(d)).into_response()
    })
    .await
}

/// Every deployment, by name.
#[utoipa::path(get, path = "/v1/deployments", responses((status = 200, body = Vec<Deployment>)))]
pub async fn list_deployments(
    State(state): State<AppState>,
    Extension(scope): Extension<Scope>,
) -> Result<Json<Vec<Deployment>>, ApiError> {
    Ok(Json(state.lifecycle.list_deployments_in(&scope).await?))
}

#[utoipa::path(get, path = "/v1/deployments/{name}", responses(
    (status = 200, body = Deployment), (status = 404, body = ErrorBody)))]
pub async fn get_deployment(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<Deployment>, ApiError> {
    Ok(Json(state.lifecycle.deployment(&name).await?))
}

/// Stop a deployment's container and keep it stopped: its URL answers 503
/// until it is started again.
#[utoipa::path(post, path = "/v1/deployments/{name}/stop", responses(
    (status = 200, body = Deployment), (status = 404, body = ErrorBody)))]
#[instrument(skip(state))]
pub async fn stop_deployment(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<Deployment>, ApiError> {
    let lifecycle = state.lifecycle.clone();
    let d = crate::detached(async move { lifecycle.stop_deployment(&name).await });
    Ok(Json(d.await?))
}

/// Start a stopped deployment's current version.
#[utoipa::path(post, path = "/v1/deployments/{name}/start", responses(
    (status = 200, body = Deployment), (status = 404, body = ErrorBody)))]
#[instrument(skip(state))]
pub async fn start_deployment(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<Deployment>, ApiError> {
    let lifecycle = state.lifecycle.clone();
    let d = crate::detached(async move { lifecycle.start_deployment(&name).await });
    Ok(Json(d.await?))
}

/// Stop and remove a deployment; its URL then answers 404.
#[utoipa::path(delete, path = "/v1/deployments/{name}", responses(
    (status = 204), (status = 404, body = ErrorBody)))]
#[instrument(skip(state))]
pub async fn delete_deployment(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    let lifecycle = state.lifecycle.clone();
    crate::detached(async move { lifecycle.delete_deployment(&name).await }).await?;
    Ok(StatusCode::NO_CONTENT)
}
