use cove_types::SpecError;

/// Everything a lifecycle operation can fail with; the API maps each variant
/// to an HTTP status in one place.
#[derive(Debug, thiserror::Error)]
pub enum LifecycleError {
    #[error(transparent)]
    Invalid(#[from] SpecError),
    #[error("{0}")]
    BadRequest(String),
    #[error("no container {0}")]
    ContainerNotFound(String),
    #[error("no deployment {0}")]
    DeploymentNotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error(transparent)]
    Image(#[from] cove_image::ImageError),
    #[error("network: {0}")]
    Network(#[from] cove_network::NetworkError),
    #[error("runtime: {0}")]
    Runtime(#[from] cove_runtime::RuntimeError),
    /// A workspace limit (429) or the address pool's share for workspaces (503) refused a
    /// new container; nothing was made.
    #[error(transparent)]
    Refused(cove_store::Refusal),
    #[error(transparent)]
    Store(cove_store::StoreError),
    #[error("{0}: {1}")]
    Io(String, #[source] std::io::Error),
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<cove_store::StoreError> for LifecycleError {
    fn from(e: cove_store::StoreError) -> Self {
        match e {
            cove_store::StoreError::Refused(r) => LifecycleError::Refused(r),
            e => LifecycleError::Store(e),
        }
    }
}
