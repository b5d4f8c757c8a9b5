//! The crate's one error type; each variant maps onto an HTTP status in the API.

use std::path::Path;

/// Everything that can go wrong pulling, importing, unpacking or mounting an image.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    /// A malformed image reference (HTTP 400).
    #[error("invalid image reference {0:?}")]
    InvalidReference(String),
    /// Unknown repository/tag on the registry, or unknown local image (HTTP 404).
    #[error("image not found: {0}")]
    NotFound(String),
    /// The registry refused the credentials (HTTP 401/403).
    #[error("not authorized: {0}")]
    Unauthorized(String),
    /// The registry could not be reached or answered nonsense (HTTP 502).
    #[error("registry {registry} unreachable: {reason}")]
    RegistryUnreachable { registry: String, reason: String },
    /// A media type, platform or archive format we do not handle.
    #[error("unsupported: {0}")]
    Unsupported(String),
    /// Content that does not match its digest, or malformed JSON.
    #[error("invalid image content: {0}")]
    Invalid(String),
    /// A layer entry that tries to escape its directory or create a device.
    #[error("unsafe layer content: {0}")]
    Unsafe(String),
    /// A local file-system error, with what we were doing.
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Store(#[from] cove_store::StoreError),
}

impl ImageError {
    /// An `Io` error naming the path and the action.
    pub(crate) fn io(action: &str, path: &Path, source: std::io::Error) -> ImageError {
        ImageError::Io {
            context: format!("cannot {action} {}", path.display()),
            source,
        }
    }

    /// An `Io` error from a nix call.
    pub(crate) fn nix(action: &str, path: &Path, errno: nix::errno::Errno) -> ImageError {
        ImageError::io(action, path, std::io::Error::from(errno))
    }
}
