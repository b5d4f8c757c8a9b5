//! Bearer-token authentication of API requests: the token becomes a [`Scope`] (admin or
//! one workspace), put in the request's extensions for handlers to filter by.

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use cove_types::Scope;

use crate::{ApiError, AppState};

pub async fn require_token(
    State(state): State<AppState>,
    mut req: Request,
    next: Next,
) -> Response {
    let given = req
        .headers()
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    let scope = match given {
        Some(t) => Some(state.tokens.scope_recording_use(t).await),
        None => None,
    };
    match scope {
        Some(Some(scope)) => {
            tracing::Span::current().record("workspace", scope.workspace());
            req.extensions_mut().insert(scope);
            next.run(req).await
        }
        Some(None) => {
            ApiError::new(StatusCode::UNAUTHORIZED, "invalid or revoked API token").into_response()
        }
        None => ApiError::new(
            StatusCode::UNAUTHORIZED,
            "missing API token: send Authorization: Bearer <token> (the daemon's token is in <data-dir>/token)",
        )
        .into_response(),
    }
}

/// Refuses workspace tokens: for routes only the admin token may use.
pub fn admin_only(scope: &Scope) -> Result<(), ApiError> {
    if scope.is_admin() {
        Ok(())
    } else {
        Err(crate::tokens::TokenError::AdminOnly.into())
    }
}
