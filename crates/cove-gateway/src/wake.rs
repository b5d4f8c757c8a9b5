//! The seam through which the gateway wakes a route that is asleep.
//!
//! A deployment keeps its URL while it has no container: its key is not in the [`Routes`]
//! table, so on a miss the proxy asks the [`Wake`] implementation (the lifecycle) for a
//! target. The request is held meanwhile; the waker starts one container however many
//! requests wait, and the proxy then forwards as usual (its connector retries while the new
//! container binds its port).
//!
//! [`Routes`]: crate::Routes

use futures::future::BoxFuture;

use crate::routes::Target;

/// Why a sleeping route could not be woken; each becomes a plain-text response.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WakeError {
    /// Nothing is known under that key and port (404).
    #[error("not found")]
    NotFound,
    /// Known, but not serving on purpose, e.g. a stopped deployment (503).
    #[error("{0}")]
    Unavailable(String),
    /// Its workspace is at a limit (429).
    #[error("{0}")]
    Limited(String),
    /// Starting a container failed (502).
    #[error("{0}")]
    Failed(String),
}

/// Starts whatever should serve `key`, returning where it listens.
pub trait Wake: Send + Sync {
    /// Wakes the route `key` for a request to `port`. Implementations must finish a start
    /// they began even if this future is dropped (a client that hangs up).
    fn wake<'a>(&'a self, key: &'a str, port: u16) -> BoxFuture<'a, Result<Target, WakeError>>;
}
