//! Route table: one file per resource.

mod builds;
mod containers;
mod deployments;
mod images;
mod info;
mod pods;

use axum::routing::{get, post};
use axum::Router;

use crate::AppState;

pub use builds::*;
pub use containers::*;
pub use deployments::*;
pub use images::*;
pub use info::*;
pub use pods::*;

/// Routes that need the API token.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/info", get(info::info))
        .route("/v1/pods", post(pods::create_pod))
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
        .route("/v1/containers", get(containers::list_containers))
        .route("/v1/containers/{id}", get(containers::get_container))
        .route("/v1/containers/{id}/stop", post(containers::stop_container))
        .route("/v1/containers/{id}/logs", get(containers::container_logs))
        .route("/v1/containers/{id}/exec", post(containers::exec_container))
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
}

/// Routes open without a token: health and the API's own description.
pub fn public_router() -> Router<AppState> {
    Router::new()
        .route("/v1/health", get(info::health))
        .route("/v1/openapi.json", get(info::openapi_json))
}
