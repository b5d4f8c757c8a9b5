//! The OpenAPI document, generated from the handlers and wire types.

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::routes;

#[derive(OpenApi)]
#[openapi(
    info(title = "Cove API", description = "Launch pods, serve their ports, manage images."),
    paths(
        routes::info, routes::health, routes::openapi_json, routes::create_pod,
        routes::list_containers, routes::get_container, routes::stop_container,
        routes::container_logs, routes::exec_container, routes::set_container_egress,
        routes::deploy, routes::list_deployments, routes::get_deployment,
        routes::stop_deployment, routes::start_deployment, routes::delete_deployment,
        routes::deployment_versions, routes::rollback_deployment,
        routes::list_images, routes::pull_image, routes::remove_image, routes::import_image,
        routes::create_token, routes::list_tokens, routes::revoke_token,
        routes::list_workspaces, routes::set_workspace_limits,
        routes::build_image, routes::upload_build_context, routes::has_build_context,
        routes::missing_sync_files, routes::upload_sync_files, routes::assemble_sync_context,
    ),
    modifiers(&BearerAuth),
    security(("bearer" = []))
)]
struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// The API's OpenAPI 3 document.
pub fn document() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}
