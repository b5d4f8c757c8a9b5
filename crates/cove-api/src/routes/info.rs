use axum::extract::State;
use axum::Json;
use cove_types::DaemonInfo;

use crate::AppState;

/// The daemon's version, domain and gateway URLs.
#[utoipa::path(get, path = "/v1/info", responses((status = 200, body = DaemonInfo)))]
pub async fn info(State(state): State<AppState>) -> Json<DaemonInfo> {
    Json((*state.info).clone())
}

/// Liveness probe; needs no token.
#[utoipa::path(get, path = "/v1/health", responses((status = 200, body = String)))]
pub async fn health() -> &'static str {
    "ok"
}

/// This API as an OpenAPI 3 document; needs no token.
#[utoipa::path(get, path = "/v1/openapi.json", responses((status = 200, body = Object)))]
pub async fn openapi_json() -> Json<utoipa::openapi::OpenApi> {
    Json(crate::openapi::document())
}
