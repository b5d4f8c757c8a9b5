//! Workspace isolation of the routes that name one container or deployment: a workspace
//! token asking for another workspace's `/v1/containers/{id}/...` or
//! `/v1/deployments/{name}/...` gets the same 404 as for one that does not exist. One
//! check in front of every such route, so a route added later is covered too.

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use cove_types::Scope;

use crate::{ApiError, AppState};

pub async fn require_owner(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let scope = req.extensions().get::<Scope>().cloned();
    let Some(scope) = scope.filter(|s| !s.is_admin()) else {
        // The admin token (or no scope: the auth layer refused it already).
        return next.run(req).await;
    };
    let mut parts = req.uri().path().trim_start_matches('/').split('/');
    let checked = match (parts.next(), parts.next(), parts.next()) {
        (Some("v1"), Some("containers"), Some(id)) if !id.is_empty() => {
            state.lifecycle.check_container(&scope, id).await
        }
        (Some("v1"), Some("deployments"), Some(name)) if !name.is_empty() => {
            state.lifecycle.check_deployment(&scope, name).await
        }
        _ => Ok(()),
    };
    match checked {
        Ok(()) => next.run(req).await,
        Err(e) => ApiError::from(e).into_response(),
    }
}
