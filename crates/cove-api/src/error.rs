//! The one mapping from errors to HTTP statuses and `{"error": "..."}` bodies.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use cove_image::ImageError;
use cove_lifecycle::LifecycleError;
use cove_network::NetworkError;
use cove_store::{Refusal, StoreError};
use cove_types::ErrorBody;

/// An error on its way to the client.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        ApiError {
            status,
            message: message.into(),
        }
    }
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }
}

fn image_status(e: &ImageError) -> StatusCode {
    match e {
        ImageError::InvalidReference(..)
        | ImageError::Unauthorized(..)
        | ImageError::RegistryUnreachable { .. }
        | ImageError::Unsupported(..)
        | ImageError::Unsafe(..) => StatusCode::BAD_REQUEST,
        ImageError::NotFound(..) => StatusCode::NOT_FOUND,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// A cluster store without quorum is a 503 (try again later); a write under a binding that
/// moved is a 409; anything else the store says is the server's fault.
fn store_status(e: &StoreError) -> StatusCode {
    match e {
        StoreError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        StoreError::Fenced(_) => StatusCode::CONFLICT,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

impl From<LifecycleError> for ApiError {
    fn from(e: LifecycleError) -> Self {
        let status = match &e {
            LifecycleError::Invalid(_) | LifecycleError::BadRequest(_) => StatusCode::BAD_REQUEST,
            LifecycleError::ContainerNotFound(_) | LifecycleError::DeploymentNotFound(_) => {
                StatusCode::NOT_FOUND
            }
            LifecycleError::Conflict(_) => StatusCode::CONFLICT,
            LifecycleError::Refused(Refusal::Limit { .. }) => StatusCode::TOO_MANY_REQUESTS,
            LifecycleError::Refused(Refusal::Pool { .. }) => StatusCode::SERVICE_UNAVAILABLE,
            LifecycleError::Network(ne @ NetworkError::AddressesExhausted { .. }) => {
                // The network's own words, without the "network: " prefix.
                tracing::warn!(error = %ne, "create refused");
                return ApiError::new(StatusCode::SERVICE_UNAVAILABLE, ne.to_string());
            }
            LifecycleError::Image(ie) => image_status(ie),
            LifecycleError::Store(se) => store_status(se),
            LifecycleError::Network(_)
            | LifecycleError::Runtime(_)
            | LifecycleError::Io(..)
            | LifecycleError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        if status.is_server_error() {
            tracing::error!(error = %e, "request failed");
        }
        // One line: the client prints it as is.
        let message = e.to_string().replace('\n', " ");
        ApiError { status, message }
    }
}

impl From<crate::tokens::TokenError> for ApiError {
    fn from(e: crate::tokens::TokenError) -> Self {
        use crate::tokens::TokenError;
        let status = match &e {
            TokenError::Invalid(_) => StatusCode::BAD_REQUEST,
            TokenError::Taken(_) => StatusCode::CONFLICT,
            TokenError::NotFound(_) => StatusCode::NOT_FOUND,
            TokenError::AdminOnly => StatusCode::FORBIDDEN,
            TokenError::Store(se) => store_status(se),
            TokenError::Random(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        if status.is_server_error() {
            tracing::error!(error = %e, "token request failed");
        }
        ApiError::new(status, e.to_string())
    }
}

impl From<axum::extract::rejection::JsonRejection> for ApiError {
    fn from(r: axum::extract::rejection::JsonRejection) -> Self {
        ApiError::new(
            r.status(),
            format!("invalid request body: {}", r.body_text().replace('\n', " ")),
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (
            self.status,
            Json(ErrorBody {
                error: self.message,
            }),
        )
            .into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cluster_store_without_quorum_is_a_503_in_one_line() {
        let e = StoreError::Unavailable("no quorum answered within 5s at http://a:2379".into());
        let api = ApiError::from(LifecycleError::from(e));
        assert_eq!(api.status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(
            api.message.contains("etcd cluster unavailable: no quorum"),
            "{}",
            api.message
        );
        let fenced = ApiError::from(LifecycleError::from(StoreError::Fenced("pod p".into())));
        assert_eq!(fenced.status, StatusCode::CONFLICT);
        let other = ApiError::from(LifecycleError::from(StoreError::Corrupt("x".into())));
        assert_eq!(other.status, StatusCode::INTERNAL_SERVER_ERROR);
    }
}
