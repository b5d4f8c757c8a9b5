use axum::body::Body;
use axum::extract::rejection::JsonRejection;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::{Extension, Json};
use cove_types::{BuildContext, BuildEvent, BuildRequest, ErrorBody, Scope};
use tracing::instrument;

use crate::{stream, upload, ApiError, AppState};

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
    Extension(scope): Extension<Scope>,
    body: Result<Json<BuildRequest>, JsonRejection>,
) -> Result<Response, ApiError> {
    let Json(req) = body?;
    req.validate().map_err(ApiError::bad_request)?;
    let lifecycle = state.lifecycle.clone();
    let workspace = scope.workspace().to_string();
    Ok(stream::ndjson(move |lines| async move {
        let sink = {
            let lines = lines.clone();
            move |event: BuildEvent| lines.send(&event)
        };
        match lifecycle.build_image_in(&workspace, &req, &sink).await {
            Ok(image) => lines.send(&serde_json::json!({ "image": image })),
            Err(e) => lines.error(e),
        }
    }))
}

/// Upload a tar for `local_path` build steps; answers its digest. The tar is
/// checked with the same safe unpacker as image layers, then stored by digest
/// (uploading the same content again is harmless).
#[utoipa::path(post, path = "/v1/images/build/context",
    request_body(content = String, content_type = "application/x-tar"),
    responses((status = 200, body = BuildContext), (status = 400, body = ErrorBody)))]
#[instrument(skip_all)]
pub async fn upload_build_context(
    State(state): State<AppState>,
    body: Body,
) -> Result<Json<BuildContext>, ApiError> {
    let upload = upload::save(&state, body, "context").await?;
    let lifecycle = state.lifecycle.clone();
    // The upload is dropped (removed) by the task, once the work is done.
    let stored = crate::detached(async move { lifecycle.store_build_context(&upload.path).await });
    Ok(Json(stored.await?))
}

/// Whether a build context is stored: 200 if the daemon has the tar with this
/// digest (`sha256:<hex>`), 404 if not. Clients ask before uploading so
/// unchanged content is not sent again. Answers `HEAD` too (no body).
#[utoipa::path(get, path = "/v1/images/build/context/{digest}",
    params(("digest" = String, Path, description = "sha256:<hex> of the tar")),
    responses((status = 200, description = "stored"), (status = 404, description = "not stored")))]
#[instrument(skip_all)]
pub async fn has_build_context(
    State(state): State<AppState>,
    axum::extract::Path(digest): axum::extract::Path<String>,
) -> StatusCode {
    if state.lifecycle.has_build_context(&digest) {
        StatusCode::OK
    } else {
        StatusCode::NOT_FOUND
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_build_route_and_its_types_are_in_the_openapi_document() {
        let doc = crate::openapi::document();
        assert!(doc.paths.paths.contains_key("/v1/images/build"));
        assert!(doc
            .paths
            .paths
            .contains_key("/v1/images/build/context/{digest}"));
        let json = serde_json::to_string(&doc).unwrap();
        for name in ["BuildRequest", "BuildStep", "BuildEvent"] {
            assert!(json.contains(&format!("\"{name}\"")), "{name} missing");
        }
    }
}
