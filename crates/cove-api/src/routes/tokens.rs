//! `/v1/tokens`: workspace API tokens (admin token only).

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use cove_types::{CreateTokenRequest, CreatedToken, ErrorBody, Scope, TokenInfo};
use tracing::instrument;

use crate::auth::admin_only;
use crate::{ApiError, AppState};

/// Make a token for a workspace, which must be named (no `workspace` is a 400: `default`
/// is never chosen by omission); `limits`, if given, are set on the workspace with it. The answer holds the secret; it is not shown again (the
/// daemon keeps only its sha256).
#[utoipa::path(post, path = "/v1/tokens", request_body = CreateTokenRequest, responses(
    (status = 201, body = CreatedToken), (status = 400, body = ErrorBody),
    (status = 403, body = ErrorBody, description = "not the admin token"),
    (status = 409, body = ErrorBody, description = "the name is taken")))]
#[instrument(skip_all)]
pub async fn create_token(
    State(state): State<AppState>,
    Extension(scope): Extension<Scope>,
    body: Result<Json<CreateTokenRequest>, JsonRejection>,
) -> Result<(StatusCode, Json<CreatedToken>), ApiError> {
    admin_only(&scope)?;
    let Json(req) = body?;
    let limits = req
        .limits
        .as_ref()
        .map(|l| l.validate())
        .transpose()
        .map_err(ApiError::bad_request)?;
    let created = state
        .tokens
        .create(
            req.name.trim(),
            req.workspace.as_deref().map(str::trim),
            limits.as_ref(),
        )
        .await?;
    Ok((StatusCode::CREATED, Json(created)))
}

/// Every token: name, workspace, created, last used; never a secret.
#[utoipa::path(get, path = "/v1/tokens", responses(
    (status = 200, body = Vec<TokenInfo>), (status = 403, body = ErrorBody)))]
pub async fn list_tokens(
    State(state): State<AppState>,
    Extension(scope): Extension<Scope>,
) -> Result<Json<Vec<TokenInfo>>, ApiError> {
    admin_only(&scope)?;
    Ok(Json(state.tokens.list().await?))
}

/// Revoke a token by id or name: it is refused (401) from the next request on.
#[utoipa::path(delete, path = "/v1/tokens/{token}", params(("token" = String, Path, description = "id or name")),
    responses((status = 200, body = TokenInfo), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
#[instrument(skip(state, scope))]
pub async fn revoke_token(
    State(state): State<AppState>,
    Extension(scope): Extension<Scope>,
    Path(token): Path<String>,
) -> Result<Json<TokenInfo>, ApiError> {
    admin_only(&scope)?;
    Ok(Json(state.tokens.revoke(&token).await?))
}
