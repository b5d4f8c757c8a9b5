use axum::body::Body;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use cove_types::{Container, ErrorBody, ExecRequest, ExecResponse, Scope};
use serde::Deserialize;
use tracing::instrument;

use crate::{ApiError, AppState};

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct ListQuery {
    /// Include containers that have ended.
    #[serde(default)]
    pub all: bool,
}

/// Containers, newest first: live ones, or all with `all=true`.
#[utoipa::path(get, path = "/v1/containers", params(ListQuery), responses((status = 200, body = Vec<Container>)))]
pub async fn list_containers(
    State(state): State<AppState>,
    Extension(scope): Extension<Scope>,
    Query(q): Query<ListQuery>,
) -> Result<Json<Vec<Container>>, ApiError> {
    Ok(Json(
        state.lifecycle.list_containers_in(&scope, q.all).await?,
    ))
}

#[utoipa::path(get, path = "/v1/containers/{id}", responses(
    (status = 200, body = Container), (status = 404, body = ErrorBody)))]
pub async fn get_container(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Container>, ApiError> {
    Ok(Json(state.lifecycle.container(&id).await?))
}

/// Stop a container: SIGTERM, then SIGKILL after the grace period.
#[utoipa::path(post, path = "/v1/containers/{id}/stop", responses(
    (status = 200, body = Container), (status = 404, body = ErrorBody)))]
#[instrument(skip(state))]
pub async fn stop_container(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Container>, ApiError> {
    let lifecycle = state.lifecycle.clone();
    let stopped = crate::detached(async move { lifecycle.stop(&id, "stopped by user").await });
    Ok(Json(stopped.await?))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct LogsQuery {
    /// Keep the stream open and send new output until the container ends.
    #[serde(default)]
    pub follow: bool,
}

/// The container's stdout and stderr, as plain text.
#[utoipa::path(get, path = "/v1/containers/{id}/logs", params(LogsQuery), responses(
    (status = 200, body = String, content_type = "text/plain"), (status = 404, body = ErrorBody)))]
pub async fn container_logs(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<LogsQuery>,
) -> Result<Response, ApiError> {
    let stream = state.lifecycle.logs(&id, q.follow).await?;
    Ok((
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        Body::from_stream(stream),
    )
        .into_response())
}

/// Run a command in a running container.
#[utoipa::path(post, path = "/v1/containers/{id}/exec", request_body = ExecRequest, responses(
    (status = 200, body = ExecResponse), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
#[instrument(skip(state, body))]
pub async fn exec_container(
    State(state): State<AppState>,
    Path(id): Path<String>,
    body: Result<Json<ExecRequest>, JsonRejection>,
) -> Result<Json<ExecResponse>, ApiError> {
    let Json(req) = body?;
    Ok(Json(state.lifecycle.exec(&id, &req).await?))
}
