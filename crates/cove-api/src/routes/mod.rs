//! Route table: one file per resource.

mod builds;
mod containers;
mod deployment_versions;
mod deployments;
mod egress;
mod images;
mod info;
mod pods;
mod sync_files;
mod tokens;
mod workspaces;

use axum::extract::DefaultBodyLimit;
use axum::routing::{delete, get, post};
use axum::Router;

use crate::AppState;

pub use builds::*;
pub use containers::*;
pub use deployment_versions::*;
pub use deployments::*;
pub use egress::*;
pub use images::*;
pub use info::*;
pub use pods::*;
pub use sync_files::*;
pub use tokens::*;
pub use workspaces::*;

/// Routes that need the API token.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/info", get(info::info))
        .route("/v1/pods", post(pods::create_pod))
        .route(
            "/v1/tokens",
            get(tokens::list_tokens).post(tokens::create_token),
        )
        .route("/v1/tokens/{token}", delete(tokens::revoke_token))
        .route("/v1/workspaces", get(workspaces::list_workspaces))
        .route(
            "/v1/workspaces/{name}/limits",
            axum::routing::put(workspaces::set_workspace_limits),
        )
        .route(
            "/v1/deployments",
            get(deployments::list_deployments).post(deployments::deploy),
        )
        .route(
            "/v1/deployments/{name}",
            get(deployments::get_deployment).delete(deployments::delete_deployment),
        )
        .route(
            "/v1/deployments/{name}/stop",
            post(deployments::stop_deployment),
        )
        .route(
            "/v1/deployments/{name}/start",
            post(deployments::start_deployment),
        )
        .route(
            "/v1/deployments/{name}/versions",
            get(deployment_versions::deployment_versions),
        )
        .route(
            "/v1/deployments/{name}/rollback",
            post(deployment_versions::rollback_deployment),
        )
        .route("/v1/containers", get(containers::list_containers))
        .route("/v1/containers/{id}", get(containers::get_container))
        .route("/v1/containers/{id}/stop", post(containers::stop_container))
        .route("/v1/containers/{id}/logs", get(containers::container_logs))
        .route("/v1/containers/{id}/exec", post(containers::exec_container))
        .route(
            "/v1/containers/{id}/egress",
            axum::routing::put(egress::set_container_egress),
        )
        .route(
            "/v1/images",
            get(images::list_images).delete(images::remove_image),
        )
        .route("/v1/images/pull", post(images::pull_image))
        .route("/v1/images/import", post(images::import_image))
        .route("/v1/images/build", post(builds::build_image))
        .route(
            "/v1/images/build/context",
            post(builds::upload_build_context),
        )
        .route(
            "/v1/images/build/context/{digest}",
            get(builds::has_build_context),
        )
        .route(
            "/v1/images/build/files/missing",
            post(sync_files::missing_sync_files)
                .layer(DefaultBodyLimit::max(sync_files::MANIFEST_BODY_LIMIT)),
        )
        .route(
            "/v1/images/build/files",
            post(sync_files::upload_sync_files),
        )
        .route(
            "/v1/images/build/files/context",
            post(sync_files::assemble_sync_context)
                .layer(DefaultBodyLimit::max(sync_files::MANIFEST_BODY_LIMIT)),
        )
}

/// Routes open without a token: health and the API's own description.
pub fn public_router() -> Router<AppState> {
    Router::new()
        .route("/v1/health", get(info::health))
        .route("/v1/openapi.json", get(info::openapi_json))
}
